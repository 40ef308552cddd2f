/* proc.c: /proc readers and number formatting for the shim, usable right after fork (no malloc, no stdio). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

ssize_t shim_read_file(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return -1;
    int fd = shim_sys_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = shim_sys_read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    shim_sys_close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

char *shim_fmt_u64(char *dst, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *dst++ = tmp[--n];
    *dst = '\0';
    return dst;
}

char *shim_stpcpy(char *dst, const char *src)
{
    while ((*dst = *src++))
        dst++;
    return dst;
}

uint64_t shim_parse_u64(const char *s, const char **end)
{
    uint64_t v = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    if (end)
        *end = s;
    return v;
}

uint64_t shim_status_field(const char *buf, const char *key)
{
    size_t klen = strlen(key);
    const char *p = buf;
    while (*p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':')
            return shim_parse_u64(p + klen + 1, NULL);
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

int shim_environ_has(pid_t pid, const char *kv)
{
    char path[48];
    shim_stpcpy(shim_fmt_u64(shim_stpcpy(path, "/proc/"), (uint64_t)pid), "/environ");
    int fd = shim_sys_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    /* Streamed: an environment may be larger than any buffer here. m: bytes of kv matched by
     * the entry being read, -1 once it differs; an entry ends at its NUL, which kv's must meet. */
    size_t len = strlen(kv);
    long m = 0;
    int found = 0;
    char buf[4096];
    while (!found) {
        ssize_t n = shim_sys_read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && !found; i++) {
            char c = buf[i];
            if (c == '\0') {
                found = m == (long)len;
                m = 0;
            } else if (m >= 0) {
                m = (size_t)m < len && kv[m] == c ? m + 1 : -1;
            }
        }
    }
    shim_sys_close(fd);
    return found;
}

/* Append the pids of a children file ("pid pid ... ") not already in v. */
static void shim_add_children(const char *path, pid_t *v, size_t *n, size_t cap)
{
    char buf[4096];
    if (shim_read_file(path, buf, sizeof buf) <= 0)
        return;
    const char *p = buf;
    while (*n < cap) {
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            break;
        pid_t c = (pid_t)shim_parse_u64(p, &p);
        size_t i = 0;
        while (i < *n && v[i] != c)
            i++;
        if (i == *n)
            v[(*n)++] = c;
    }
}

/* One entry of a raw getdents64 buffer. */
struct shim_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int shim_each_numeric(const char *dir, int (*fn)(int dfd, const char *name, uint64_t num, void *arg), void *arg)
{
    int dfd = shim_sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0)
        return 0;
    char buf[2048] __attribute__((aligned(8)));
    int r = 0;
    while (!r) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (got <= 0)
            break;
        for (long off = 0; off < got && !r;) {
            struct shim_dirent64 *d = (struct shim_dirent64 *)(buf + off);
            off += d->d_reclen;
            const char *end;
            uint64_t num = shim_parse_u64(d->d_name, &end);
            if (d->d_name[0] >= '0' && d->d_name[0] <= '9' && !*end)
                r = fn(dfd, d->d_name, num, arg);
        }
    }
    shim_sys_close(dfd);
    return r;
}

struct children_walk {
    pid_t *v;
    size_t *n, cap;
    char *path, *base; /* "/proc/PID/task", base its end */
};

static int shim_task_children(int dfd, const char *name, uint64_t tid, void *arg)
{
    (void)dfd;
    (void)tid;
    struct children_walk *w = arg;
    if (strlen(name) > 10)
        return 0;
    shim_stpcpy(shim_stpcpy(shim_stpcpy(w->base, "/"), name), "/children");
    shim_add_children(w->path, w->v, w->n, w->cap);
    *w->base = '\0';
    return *w->n >= w->cap;
}

void shim_children_of(pid_t pid, pid_t *v, size_t *n, size_t cap)
{
    char path[64];
    char *base = shim_stpcpy(shim_fmt_u64(shim_stpcpy(path, "/proc/"), (uint64_t)pid), "/task");
    struct children_walk w = {v, n, cap, path, base};
    if (*n < cap)
        shim_each_numeric(path, shim_task_children, &w);
}

pid_t shim_ppid_of(pid_t pid)
{
    char path[48], buf[512];
    shim_stpcpy(shim_fmt_u64(shim_stpcpy(path, "/proc/"), (uint64_t)pid), "/stat");
    if (shim_read_file(path, buf, sizeof buf) <= 0)
        return 0;
    /* "pid (comm) S ppid ...": the comm may hold spaces and parentheses, the last ')' ends it. */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return 0;
    return (pid_t)shim_parse_u64(p + 4, NULL);
}
