/* machine.c: reads the CPUs, cores and memory a run may really use (affinity, cgroup v1/v2 quotas, /proc/meminfo). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "monitor/machine.h"
#include "prof.h"

/* Largest believable memory limit: cgroup v1 reports "no limit" as a page-rounded LONG_MAX. */
#define HUGE_LIMIT (1ULL << 60)

/* Parse a decimal integer that may be surrounded by blanks; 0 or PROF_EFORMAT. */
static int parse_ll(const char *s, long long *out)
{
    char *end;

    if (!s)
        return PROF_EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno)
        return PROF_EFORMAT;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return PROF_EFORMAT;
    *out = v;
    return 0;
}

double prof_cgroup_v2_quota(const char *cpu_max)
{
    char quota[32], period[32];
    long long q, p = 100000;

    if (!cpu_max)
        return PROF_EINVAL;
    int n = sscanf(cpu_max, " %31s %31s", quota, period);
    if (n < 1)
        return PROF_EFORMAT;
    if (strcmp(quota, "max") == 0)
        return n == 2 && parse_ll(period, &p) < 0 ? PROF_EFORMAT : 0;
    if (parse_ll(quota, &q) < 0 || (n == 2 && parse_ll(period, &p) < 0))
        return PROF_EFORMAT;
    if (p <= 0 || q < 0)
        return PROF_EFORMAT;
    return (double)q / (double)p;
}

double prof_cgroup_v1_quota(const char *quota_us, const char *period_us)
{
    long long q, p;

    if (parse_ll(quota_us, &q) < 0)
        return PROF_EFORMAT;
    if (q < 0) /* -1: no quota */
        return 0;
    if (parse_ll(period_us, &p) < 0 || p <= 0)
        return PROF_EFORMAT;
    return (double)q / (double)p;
}

int prof_stat_cpu_times(const char *stat, uint64_t *busy, uint64_t *steal)
{
    unsigned long long v[8] = {0};
    int n = 0;

    if (!stat || !busy || !steal || strncmp(stat, "cpu ", 4) != 0)
        return PROF_EFORMAT;
    const char *p = stat + 4;
    while (n < 8) {
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            break;
        char *end;
        errno = 0;
        v[n] = strtoull(p, &end, 10);
        if (errno)
            return PROF_EFORMAT;
        p = end;
        n++;
    }
    if (n < 4) /* user nice system idle: every kernel has them */
        return PROF_EFORMAT;
    *busy = v[0] + v[1] + v[2] + v[5] + v[6];
    *steal = v[7];
    return 0;
}

int prof_usable_cpus(int affinity_cpus, double quota_cpus)
{
    int n = affinity_cpus > 0 ? affinity_cpus : 1;

    if (quota_cpus > 0) {
        /* 1e-9: 150000/100000 must give 2, not 3 through rounding noise. */
        double c = ceil(quota_cpus - 1e-9);
        if (c < n)
            n = (int)c;
    }
    return n < 1 ? 1 : n;
}

/* Read a small file into buf (NUL-terminated); length or a negative PROF_E*. */
static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return prof_err_from_errno(errno);
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return prof_err_from_errno(e);
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    return (int)len;
}

/* Does the comma-separated list contain word? */
static int list_has(const char *list, size_t len, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list, *end = list + len;

    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t tl = c ? (size_t)(c - p) : (size_t)(end - p);
        if (tl == wl && memcmp(p, word, wl) == 0)
            return 1;
        p += tl + 1;
    }
    return 0;
}

/*
 * Find the directory of the calling process's cgroup for a controller.
 * v1: the line of /proc/self/cgroup whose controller list holds ctrl, and the
 * cgroup mount whose super options hold it; v2: the "0::" line and the
 * cgroup2 mount. Returns the cgroup version (1, 2) or 0 when not found; dir
 * and mnt (the mount point, where walking up stops) are filled.
 */
static int cgroup_dir(const char *ctrl, char *dir, size_t dcap, char *mnt, size_t mcap)
{
    char *line = NULL;
    size_t lcap = 0;
    char v1path[4096] = "", v2path[4096] = "";
    int have_v1 = 0, have_v2 = 0;

    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    while (getline(&line, &lcap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        const char *ctrls = c1 + 1;
        size_t clen = (size_t)(c2 - ctrls);
        if (clen == 0 && strncmp(line, "0:", 2) == 0) {
            snprintf(v2path, sizeof v2path, "%s", c2 + 1);
            have_v2 = 1;
        } else if (list_has(ctrls, clen, ctrl)) {
            snprintf(v1path, sizeof v1path, "%s", c2 + 1);
            have_v1 = 1;
        }
    }
    fclose(f);

    int version = 0;
    f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        free(line);
        return 0;
    }
    while (version == 0 && getline(&line, &lcap, f) > 0) {
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *fields[6] = {0}, *save = NULL, *tok;
        int n = 0;
        line[strcspn(line, "\n")] = '\0';
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        *sep = '\0';
        for (tok = strtok_r(line, " ", &save); tok && n < 6; tok = strtok_r(NULL, " ", &save))
            fields[n++] = tok;
        if (n < 5)
            continue;
        char *fstype = strtok_r(sep + 3, " ", &save);
        char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
        char *sopts = source ? strtok_r(NULL, " ", &save) : NULL;
        if (!sopts)
            continue;
        const char *root = fields[3], *point = fields[4], *path;
        if (have_v1 && strcmp(fstype, "cgroup") == 0 && list_has(sopts, strlen(sopts), ctrl)) {
            path = v1path;
            version = 1;
        } else if (!have_v1 && have_v2 && strcmp(fstype, "cgroup2") == 0) {
            path = v2path;
            version = 2;
        } else {
            continue;
        }
        /* The mount may expose a subtree (containers): strip its root from our path. */
        size_t rl = strlen(root);
        if (strcmp(root, "/") == 0)
            snprintf(dir, dcap, "%s%s", point, path);
        else if (strncmp(path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0'))
            snprintf(dir, dcap, "%s%s", point, path + rl);
        else
            snprintf(dir, dcap, "%s", point); /* our cgroup is outside what is mounted: best we can see */
        snprintf(mnt, mcap, "%s", point);
    }
    fclose(f);
    free(line);
    return version;
}

/* Strip the last path component of dir, not going above mnt; 0 when at mnt. */
static int walk_up(char *dir, const char *mnt)
{
    size_t ml = strlen(mnt);
    size_t dl = strlen(dir);

    while (dl > 1 && dir[dl - 1] == '/')
        dir[--dl] = '\0';
    if (dl <= ml)
        return 0;
    char *slash = strrchr(dir, '/');
    if (!slash || (size_t)(slash - dir) < ml)
        return 0;
    *slash = '\0';
    if (strlen(dir) < ml)
        snprintf(dir, ml + 1, "%s", mnt);
    return 1;
}

/* The tightest CPU quota on the path from our cgroup to the mount point (a parent's limit binds too). */
static double cgroup_cpu_quota(int *version)
{
    char dir[4096], mnt[4096], a[128], b[128], path[4200];
    double best = 0;

    *version = cgroup_dir("cpu", dir, sizeof dir, mnt, sizeof mnt);
    if (*version == 0)
        return 0;
    do {
        double q = -1;
        if (*version == 1) {
            snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
            if (read_small(path, a, sizeof a) >= 0) {
                snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
                if (read_small(path, b, sizeof b) >= 0)
                    q = prof_cgroup_v1_quota(a, b);
            }
        } else {
            snprintf(path, sizeof path, "%s/cpu.max", dir);
            if (read_small(path, a, sizeof a) >= 0)
                q = prof_cgroup_v2_quota(a);
        }
        if (q > 0 && (best == 0 || q < best))
            best = q;
    } while (walk_up(dir, mnt));
    return best;
}

/* The tightest memory limit on the path from our cgroup to the mount point; 0 = none. */
static uint64_t cgroup_mem_limit(void)
{
    char dir[4096], mnt[4096], a[128], path[4200];
    uint64_t best = 0;

    int version = cgroup_dir("memory", dir, sizeof dir, mnt, sizeof mnt);
    if (version == 0)
        return 0;
    do {
        snprintf(path, sizeof path, "%s/%s", dir, version == 1 ? "memory.limit_in_bytes" : "memory.max");
        long long v;
        if (read_small(path, a, sizeof a) >= 0 && parse_ll(a, &v) == 0 && v > 0 &&
            (uint64_t)v < HUGE_LIMIT && (best == 0 || (uint64_t)v < best))
            best = (uint64_t)v; /* "max" (v2) fails to parse: no limit at this level */
    } while (walk_up(dir, mnt));
    return best;
}

static void read_meminfo(struct prof_machine *m)
{
    char buf[8192];

    if (read_small("/proc/meminfo", buf, sizeof buf) < 0)
        return;
    for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            m->mem_total_bytes = kb * 1024;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            m->mem_available_bytes = kb * 1024;
    }
}

/* Count distinct (package, core) pairs among the CPUs we may run on. */
static int count_cores(const cpu_set_t *set, size_t setsize, int ncpus)
{
    long long *keys = calloc((size_t)ncpus + 1, sizeof *keys);
    int n = 0;
    char path[128], a[32], b[32];

    if (!keys)
        return 0;
    for (int cpu = 0; cpu < (int)(setsize * 8) && n < ncpus; cpu++) {
        if (!CPU_ISSET_S(cpu, setsize, set))
            continue;
        long long pkg, core, key;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        int ok = read_small(path, a, sizeof a) >= 0 && parse_ll(a, &pkg) == 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        ok = ok && read_small(path, b, sizeof b) >= 0 && parse_ll(b, &core) == 0;
        /* Without topology, each CPU counts as its own core. */
        key = ok ? (pkg << 32 | (core & 0xffffffff)) : -1 - cpu;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++)
            dup = keys[i] == key;
        if (!dup)
            keys[n++] = key;
    }
    free(keys);
    return n;
}

/* The first "model name" of /proc/cpuinfo, blanks squeezed; "" on machines that name none (some arm64). */
static void read_cpu_model(char *out, size_t cap)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "re");

    out[0] = '\0';
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            break;
        size_t n = 0;
        for (v++; *v && *v != '\n' && n + 1 < cap; v++) {
            if (isspace((unsigned char)*v) && (n == 0 || out[n - 1] == ' '))
                continue;
            out[n++] = isspace((unsigned char)*v) ? ' ' : *v;
        }
        while (n > 0 && out[n - 1] == ' ')
            n--;
        out[n] = '\0';
        break;
    }
    fclose(f);
}

/* Whether the CPU's cycle counter can be opened for this process (user space only, so a
 * perf_event_paranoid of 2 does not hide it): a VM without a virtual PMU says ENOENT. */
static int has_pmu(void)
{
    struct perf_event_attr pe;

    memset(&pe, 0, sizeof pe);
    pe.type = PERF_TYPE_HARDWARE;
    pe.size = sizeof pe;
    pe.config = PERF_COUNT_HW_CPU_CYCLES;
    pe.disabled = 1;
    pe.exclude_kernel = 1;
    pe.exclude_hv = 1;
    int fd = (int)syscall(SYS_perf_event_open, &pe, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int prof_machine_read(struct prof_machine *m)
{
    if (!m)
        return PROF_EINVAL;
    memset(m, 0, sizeof *m);
    m->online_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->clock_ticks = sysconf(_SC_CLK_TCK);
    m->page_size = sysconf(_SC_PAGESIZE);

    /* The mask may be larger than cpu_set_t on big machines: grow until the kernel accepts it. */
    int conf = (int)sysconf(_SC_NPROCESSORS_CONF);
    for (int ncpu = conf > 1024 ? conf : 1024; ncpu <= (1 << 20); ncpu *= 2) {
        size_t sz = CPU_ALLOC_SIZE(ncpu);
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            return PROF_ENOMEM;
        CPU_ZERO_S(sz, set);
        if (sched_getaffinity(0, sz, set) == 0) {
            m->affinity_cpus = CPU_COUNT_S(sz, set);
            m->physical_cores = count_cores(set, sz, m->affinity_cpus);
            CPU_FREE(set);
            break;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    if (m->affinity_cpus <= 0)
        m->affinity_cpus = m->online_cpus > 0 ? m->online_cpus : 1;
    if (m->physical_cores <= 0)
        m->physical_cores = m->affinity_cpus;

    m->quota_cpus = cgroup_cpu_quota(&m->cgroup_version);
    m->usable_cpus = prof_usable_cpus(m->affinity_cpus, m->quota_cpus);
    read_meminfo(m);
    m->cgroup_mem_limit_bytes = cgroup_mem_limit();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        m->nofile_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    read_cpu_model(m->cpu_model, sizeof m->cpu_model);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%s", u.release);
    m->pmu = has_pmu();
    return 0;
}
