/* io.c: time and bytes of reads, writes and waits, split into I/O (network, disk) and IPC inside the tree. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "format/rundir.h"
#include "shim.h"

/*
 * Every descriptor is classified once (fstat, getsockopt) and the class is
 * cached in fd_class[fd]: one byte, read with a relaxed load on every call.
 * Creation calls we see set it (pipe/socketpair mark the descriptor "tree":
 * both ends are ours, and fork copies the array, so children inherit the
 * mark); close/dup/fcntl(F_DUPFD) clear it, and the next use reclassifies.
 * A vfork child shares this array with its parent: it only ever clears
 * entries (a stale clear costs one reclassification, a stale copy would lie).
 *
 * Regular-file writes are the one untimed path (a page-cache copy): a
 * relaxed load, a compare and two adds around the real call.
 */

#define FD_CACHE 65536

enum {
    FDC_FILE = 1,     /* regular file, block device */
    FDC_PIPE = 2,
    FDC_FIFO = 3,
    FDC_UNIX = 4,
    FDC_SOCKPAIR = 5,
    FDC_TCP = 6,
    FDC_UDP = 7,
    FDC_CHR = 8,      /* tty, /dev/null, /dev/zero: neither I/O nor IPC, not counted */
    FDC_OTHER = 9,    /* eventfd, epoll, timerfd, signalfd, inotify */
    FDC_OTHERSOCK = 10,
    FDC_TREE = 0x10,  /* peer inside the profiled tree */
    /* accounting category, bits 5-6 */
    CAT_NONE = 0 << 5,
    CAT_DISK = 1 << 5,
    CAT_NET = 2 << 5,
    CAT_IPC = 3 << 5,
    CAT_MASK = 3 << 5,
    FDC_SENT = 1 << 7, /* network: the last transfer on it was a send */
};

static uint8_t fd_class[FD_CACHE];
/*
 * When the request now open on each network descriptor was sent (the send that set FDC_SENT):
 * its answer's first receive closes it, and the time between is how long the request was in
 * flight. Summed, over the wall time, that is how many requests a program kept open at once
 * (Little's law): an event loop that overlaps its requests keeps many open on one thread, which
 * its blocked time alone never shows (issue 25, class 4). Only the pages of descriptors in use
 * are ever touched.
 */
static uint64_t fd_sent_ns[FD_CACHE];

static inline uint8_t shim_cat_of(uint8_t cls)
{
    switch (cls & 0x0f) {
    case FDC_FILE:
        return CAT_DISK;
    case FDC_PIPE:
    case FDC_FIFO:
    case FDC_UNIX:
    case FDC_SOCKPAIR:
        return (cls & FDC_TREE) ? CAT_IPC : CAT_NET;
    case FDC_TCP:
    case FDC_UDP:
    case FDC_OTHERSOCK:
        return CAT_NET;
    default:
        return CAT_NONE;
    }
}

static inline void fdc_set(int fd, uint8_t cls)
{
    if (fd >= 0 && fd < FD_CACHE)
        __atomic_store_n(&fd_class[fd], cls ? (uint8_t)(cls | shim_cat_of(cls)) : 0,
                         __ATOMIC_RELAXED);
}

static inline void fdc_clear(int fd)
{
    if (fd >= 0 && fd < FD_CACHE)
        __atomic_store_n(&fd_class[fd], 0, __ATOMIC_RELAXED);
}

/*
 * close and its kin run in vfork children (subprocess closing the parent's
 * pipe ends before exec) where fd_class is the parent's memory: clearing it
 * there would make the parent forget its pipes are the tree's. The getpid
 * costs a syscall on top of one, and only when the entry is set.
 */
static inline void fdc_close(int fd)
{
    if (fd >= 0 && fd < FD_CACHE && __atomic_load_n(&fd_class[fd], __ATOMIC_RELAXED) &&
        (shim_owner() || !shim_hdr))
        __atomic_store_n(&fd_class[fd], 0, __ATOMIC_RELAXED);
}

/* "POOLPROF_DIR=<run directory>": every image of the tree is exec'd with it, and its fork children
 * share their parent's environment block; a process outside the tree has another or none. */
static int shim_pid_has_rundir(pid_t pid)
{
    char kv[SHIM_PATH_MAX + 32];
    shim_stpcpy(shim_stpcpy(shim_stpcpy(kv, PROF_ENV_DIR), "="), shim_dir);
    return shim_environ_has(pid, kv);
}

int shim_pid_in_tree(pid_t pid)
{
    if (pid <= 0 || !shim_dir[0])
        return 0;
    if (pid == getpid())
        return 1;
    return shim_pid_has_rundir(pid);
}

struct peer_walk {
    const char *link;   /* "pipe:[ino]" */
    size_t llen;
    int want_read;      /* the other end reads (we write) */
    int skip_fd;        /* our own descriptor, when pid is us; else -1 */
    char *path, *fdpart; /* "/proc/PID/fd", fdpart where "/fd" begins */
};

/* Descriptor `name` of the process: the pipe, open with an access mode that can talk to ours? */
static int shim_fd_is_peer(int dfd, const char *name, uint64_t fdn, void *arg)
{
    const struct peer_walk *w = arg;
    char tgt[64];
    long tl = syscall(SYS_readlinkat, dfd, name, tgt, sizeof tgt);
    if (tl != (long)w->llen || memcmp(tgt, w->link, w->llen) != 0 || (w->skip_fd >= 0 && (int)fdn == w->skip_fd))
        return 0;
    /* /proc/PID/fdinfo/N "flags:\t0100001": octal, access mode in the low bits. */
    char ipath[96], info[256];
    memcpy(ipath, w->path, (size_t)(w->fdpart - w->path));
    shim_stpcpy(shim_stpcpy(ipath + (w->fdpart - w->path), "/fdinfo/"), name);
    if (shim_read_file(ipath, info, sizeof info) <= 0)
        return 0;
    const char *f = strstr(info, "flags:");
    if (!f)
        return 0;
    f += 6;
    while (*f == ' ' || *f == '\t')
        f++;
    unsigned acc = 0;
    while (*f >= '0' && *f <= '7')
        acc = acc * 8 + (unsigned)(*f++ - '0');
    acc &= O_ACCMODE;
    return w->want_read ? (acc == O_RDONLY || acc == O_RDWR) : (acc == O_WRONLY || acc == O_RDWR);
}

/* Does process `pid` hold pipe `link` ("pipe:[ino]") open with an access mode that can talk to ours? */
static int shim_pid_holds_peer(pid_t pid, const char *link, size_t llen, int want_read, int skip_fd)
{
    char path[64];
    char *fdpart = shim_fmt_u64(shim_stpcpy(path, "/proc/"), (uint64_t)pid);
    shim_stpcpy(fdpart, "/fd");
    struct peer_walk w = {link, llen, want_read, skip_fd, path, fdpart};
    return shim_each_numeric(path, shim_fd_is_peer, &w);
}

/* Processes looked at for the other end of an inherited pipe, at most. */
#define PEER_CANDIDATES 256

/*
 * An anonymous pipe we did not see created (inherited across exec: a subprocess's stdin/stdout,
 * a shell pipeline): it is IPC if a process of the tree holds its other end. The kernel names no
 * pipe's holders, and a scan of every process costs as much as the tree is large, so the other end
 * is looked for where pipelines and subprocesses put it: this process under another descriptor, its
 * parent, the parent's other children (a shell's pipeline), its own children, then the grandparent
 * and its children. Once per descriptor; siblings that merely share our end do not count.
 */
static int shim_pipe_peer_in_tree(int fd, uint64_t ino)
{
    if (!shim_dir[0])
        return 0;
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    if (fl < 0)
        return 0;
    int want_read = (fl & O_ACCMODE) == O_WRONLY;
    char link[40];
    char *e = shim_fmt_u64(shim_stpcpy(link, "pipe:["), ino);
    e = shim_stpcpy(e, "]");
    size_t llen = (size_t)(e - link);
    pid_t self = getpid();
    if (shim_pid_holds_peer(self, link, llen, want_read, fd))
        return 1;
    /* Ourselves first, looked at above, so the children files below do not add us again. */
    pid_t cand[PEER_CANDIDATES] = {self}, parent = getppid();
    size_t n = 1, done = 1;
    for (int level = 0; level < 2 && parent > 1; level++) {
        if (n < PEER_CANDIDATES)
            cand[n++] = parent;
        shim_children_of(parent, cand, &n, PEER_CANDIDATES);
        if (level == 0)
            shim_children_of(self, cand, &n, PEER_CANDIDATES);
        for (; done < n; done++)
            if (shim_pid_holds_peer(cand[done], link, llen, want_read, -1) && shim_pid_in_tree(cand[done]))
                return 1;
        parent = shim_ppid_of(parent);
    }
    return 0;
}

#ifndef PIPEFS_MAGIC
#define PIPEFS_MAGIC 0x50495045
#endif

/* Raw syscalls only: this runs inside the interposers, possibly in a fork child. */
static uint8_t shim_classify(int fd)
{
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) != 0)
        return 0;
    uint8_t cls = FDC_OTHER;
    switch (st.st_mode & S_IFMT) {
    case S_IFREG:
    case S_IFBLK:
        cls = FDC_FILE;
        break;
    case S_IFCHR:
        cls = FDC_CHR;
        break;
    case S_IFIFO: {
        struct statfs sf;
        if (syscall(SYS_fstatfs, fd, &sf) == 0 && sf.f_type == PIPEFS_MAGIC) {
            /* anonymous, made where we did not see it (before an exec, inside libc) */
            cls = FDC_PIPE;
            if (shim_pipe_peer_in_tree(fd, (uint64_t)st.st_ino))
                cls |= FDC_TREE;
        } else
            cls = FDC_FIFO | FDC_TREE; /* named: opened by path, taken as the tree's own */
        break;
    }
    case S_IFSOCK: {
        int dom = 0, type = 0;
        socklen_t len = sizeof dom;
        if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) != 0)
            dom = -1;
        len = sizeof type;
        if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
            type = -1;
        if (dom == AF_UNIX) {
            cls = FDC_UNIX;
            struct ucred cr;
            len = sizeof cr;
            if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
                shim_pid_in_tree(cr.pid))
                cls |= FDC_TREE;
        } else if (dom == AF_INET || dom == AF_INET6) {
            cls = type == SOCK_STREAM ? FDC_TCP : type == SOCK_DGRAM ? FDC_UDP : FDC_OTHERSOCK;
        } else {
            cls = FDC_OTHERSOCK;
        }
        break;
    }
    default:
        break;
    }
    return (uint8_t)(cls | shim_cat_of(cls));
}

static inline uint8_t fdc_get(int fd)
{
    if (SHIM_UNLIKELY(fd < 0 || fd >= FD_CACHE))
        return 0;
    uint8_t c = __atomic_load_n(&fd_class[fd], __ATOMIC_RELAXED);
    if (SHIM_UNLIKELY(!c)) {
        int saved = errno;
        c = shim_classify(fd);
        errno = saved;
        if (c)
            __atomic_store_n(&fd_class[fd], c, __ATOMIC_RELAXED);
    }
    return c;
}

/* Charge dt and n bytes moved on a descriptor of class c; send: n went out. */
static inline void shim_io_account(struct prof_shm_thread *t, uint8_t c, int send, ssize_t n,
                                   uint64_t dt)
{
    uint64_t b = n > 0 ? (uint64_t)n : 0;
    switch (c & CAT_MASK) {
    case CAT_IPC:
        t->ipc_ns += dt;
        if (send) {
            t->ipc_bytes_sent += b;
            t->ipc_sends++;
        } else
            t->ipc_bytes_received += b;
        t->ipc_calls++;
        break;
    case CAT_NET:
        t->net_wait_ns += dt;
        t->net_bytes += b;
        /* fall through */
    case CAT_DISK:
        t->io_wait_ns += dt;
        t->io_bytes += b;
        t->io_calls++;
        /* Reads of different files or blocks could be in flight together: each is one wait to spread. */
        if (!send && (c & CAT_MASK) == CAT_DISK)
            t->disk_reads++;
        break;
    default:
        break;
    }
}

/*
 * A round trip on a network descriptor: a receive that follows a send (a request and its
 * answer; the rest of a long answer and a reply sent in pieces count once). Their number is
 * the most waits the program's requests could spread over, and the time from the request's
 * send (t0) to its answer's receive (t1) is its time in flight. Compare-and-swap: the descriptor
 * may have been closed and reclassified since c was read, and a stale class must not return.
 */
static inline void shim_net_turn(struct prof_shm_thread *t, int fd, uint8_t c, int send, ssize_t n, uint64_t t0,
                                 uint64_t t1)
{
    if ((c & CAT_MASK) != CAT_NET || n <= 0 || fd < 0 || fd >= FD_CACHE || !send == !(c & FDC_SENT))
        return;
    uint8_t want = send ? (uint8_t)(c | FDC_SENT) : (uint8_t)(c & ~FDC_SENT);
    if (!__atomic_compare_exchange_n(&fd_class[fd], &c, want, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    if (send) {
        __atomic_store_n(&fd_sent_ns[fd], t0, __ATOMIC_RELAXED);
        return;
    }
    t->net_round_trips++;
    uint64_t sent = __atomic_load_n(&fd_sent_ns[fd], __ATOMIC_RELAXED);
    if (sent && t1 > sent)
        t->net_request_ns += t1 - sent;
}

/*
 * The body of every read/write-like interposer. A regular-file write is counted, not timed. A
 * send that reaches here is on a pipe or socket (network or IPC): it returns once the reader has
 * taken enough of what was sent, so its time is also kept apart as back-pressure (*_send_wait_ns).
 */
#define SHIM_IO(fd, send, realcall, rawcall)                                             \
    do {                                                                                 \
        if (SHIM_UNLIKELY(!shim_resolved)) {                                             \
            shim_resolve();                                                              \
            if (!__atomic_load_n(&shim_resolved, __ATOMIC_ACQUIRE))                      \
                return rawcall;                                                          \
        }                                                                                \
        struct prof_shm_thread *t = shim_self();                                         \
        if (!t)                                                                          \
            return realcall;                                                             \
        uint8_t c = fdc_get(fd);                                                         \
        if ((c & CAT_MASK) == CAT_NONE)                                                  \
            return realcall;                                                             \
        if ((send) && (c & CAT_MASK) == CAT_DISK) {                                      \
            ssize_t r_ = realcall;                                                       \
            if (r_ > 0)                                                                  \
                t->io_bytes += (uint64_t)r_;                                             \
            t->io_calls++;                                                               \
            return r_;                                                                   \
        }                                                                                \
        uint64_t t0_ = shim_mono_ns();                                                   \
        ssize_t r_ = realcall;                                                           \
        uint64_t dt_ = shim_mono_ns() - t0_;                                             \
        shim_io_account(t, c, send, r_, dt_);                                            \
        if ((send) && (c & CAT_MASK) == CAT_IPC)                                         \
            t->ipc_send_wait_ns += dt_;                                                  \
        else if (send)                                                                   \
            t->net_send_wait_ns += dt_;                                                  \
        shim_net_turn(t, fd, c, send, r_, t0_, t0_ + dt_);                               \
        return r_;                                                                       \
    } while (0)

#define RAW(...) syscall(__VA_ARGS__)
#define RAW_NOSYS (errno = ENOSYS, -1)

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    SHIM_IO(fd, 0, shim_real.read(fd, buf, n), RAW(SYS_read, fd, buf, n));
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    SHIM_IO(fd, 1, shim_real.write(fd, buf, n), RAW(SYS_write, fd, buf, n));
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    SHIM_IO(fd, 0, shim_real.readv(fd, iov, cnt), RAW(SYS_readv, fd, iov, cnt));
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    SHIM_IO(fd, 1, shim_real.writev(fd, iov, cnt), RAW(SYS_writev, fd, iov, cnt));
}

SHIM_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    SHIM_IO(fd, 0, shim_real.pread(fd, buf, n, off), RAW(SYS_pread64, fd, buf, n, off));
}

SHIM_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    SHIM_IO(fd, 0, shim_real.pread(fd, buf, n, off), RAW(SYS_pread64, fd, buf, n, off));
}

SHIM_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    SHIM_IO(fd, 1, shim_real.pwrite(fd, buf, n, off), RAW(SYS_pwrite64, fd, buf, n, off));
}

SHIM_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    SHIM_IO(fd, 1, shim_real.pwrite(fd, buf, n, off), RAW(SYS_pwrite64, fd, buf, n, off));
}

SHIM_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    SHIM_IO(fd, 0, shim_real.preadv(fd, iov, cnt, off), RAW_NOSYS);
}

SHIM_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    SHIM_IO(fd, 0, shim_real.preadv(fd, iov, cnt, off), RAW_NOSYS);
}

SHIM_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    SHIM_IO(fd, 1, shim_real.pwritev(fd, iov, cnt, off), RAW_NOSYS);
}

SHIM_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    SHIM_IO(fd, 1, shim_real.pwritev(fd, iov, cnt, off), RAW_NOSYS);
}

SHIM_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
    SHIM_IO(fd, 0, shim_real.preadv2(fd, iov, cnt, off, fl), RAW_NOSYS);
}

SHIM_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
    SHIM_IO(fd, 0, shim_real.preadv2(fd, iov, cnt, off, fl), RAW_NOSYS);
}

SHIM_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
    SHIM_IO(fd, 1, shim_real.pwritev2(fd, iov, cnt, off, fl), RAW_NOSYS);
}

SHIM_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
    SHIM_IO(fd, 1, shim_real.pwritev2(fd, iov, cnt, off, fl), RAW_NOSYS);
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int fl)
{
    SHIM_IO(fd, 1, shim_real.send(fd, buf, n, fl), RAW(SYS_sendto, fd, buf, n, fl, NULL, 0));
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int fl)
{
    SHIM_IO(fd, 0, shim_real.recv(fd, buf, n, fl), RAW(SYS_recvfrom, fd, buf, n, fl, NULL, NULL));
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int fl, const struct sockaddr *a,
                           socklen_t al)
{
    SHIM_IO(fd, 1, shim_real.sendto(fd, buf, n, fl, a, al), RAW(SYS_sendto, fd, buf, n, fl, a, al));
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *a, socklen_t *al)
{
    SHIM_IO(fd, 0, shim_real.recvfrom(fd, buf, n, fl, a, al),
            RAW(SYS_recvfrom, fd, buf, n, fl, a, al));
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int fl)
{
    SHIM_IO(fd, 1, shim_real.sendmsg(fd, m, fl), RAW(SYS_sendmsg, fd, m, fl));
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int fl)
{
    SHIM_IO(fd, 0, shim_real.recvmsg(fd, m, fl), RAW(SYS_recvmsg, fd, m, fl));
}

/* Time goes to the input side (where a splice waits); bytes are counted on both sides. */
SHIM_EXPORT ssize_t splice(int in, loff_t *oin, int out, loff_t *oout, size_t n, unsigned int fl)
{
    shim_resolve();
    struct prof_shm_thread *t = shim_self();
    if (!shim_real.splice)
        return RAW(SYS_splice, in, oin, out, oout, n, fl);
    if (!t)
        return shim_real.splice(in, oin, out, oout, n, fl);
    uint8_t ci = fdc_get(in), co = fdc_get(out);
    uint64_t t0 = shim_mono_ns();
    ssize_t r = shim_real.splice(in, oin, out, oout, n, fl);
    uint64_t dt = shim_mono_ns() - t0;
    shim_io_account(t, ci, 0, r, dt);
    shim_io_account(t, co, 1, r, 0);
    return r;
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t al)
{
    shim_resolve();
    if (!shim_real.connect)
        return (int)RAW(SYS_connect, fd, a, al);
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.connect(fd, a, al);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.connect(fd, a, al);
    uint64_t dt = shim_mono_ns() - t0;
    /* The peer is known now (a UNIX socket's tree membership): classify afresh. */
    fdc_clear(fd);
    shim_io_account(t, fdc_get(fd), 1, 0, dt);
    return r;
}

static int shim_accept(int fd, struct sockaddr *a, socklen_t *al, int fl, int four)
{
    shim_resolve();
    if (!shim_real.accept4)
        return (int)RAW(SYS_accept4, fd, a, al, four ? fl : 0);
    struct prof_shm_thread *t = shim_self();
    uint64_t t0 = t ? shim_mono_ns() : 0;
    int r = four ? shim_real.accept4(fd, a, al, fl) : shim_real.accept(fd, a, al);
    if (r >= 0)
        fdc_clear(r);
    if (t)
        shim_io_account(t, fdc_get(fd), 0, 0, shim_mono_ns() - t0);
    return r;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *al)
{
    return shim_accept(fd, a, al, 0, 0);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
    return shim_accept(fd, a, al, fl, 1);
}

/*
 * Readiness waits. On one descriptor it is a blocking wait on that
 * descriptor (CPython's socket timeouts, multiprocessing's poll): its
 * category decides. On several (or none) it is an event loop.
 */
static inline void shim_wait_account(struct prof_shm_thread *t, int one_fd, uint64_t dt)
{
    uint8_t c = one_fd >= 0 ? fdc_get(one_fd) : 0;
    if (one_fd >= 0 && (c & CAT_MASK) != CAT_NONE) {
        shim_io_account(t, c, 0, 0, dt);
        return;
    }
    t->evloop_wait_ns += dt;
    t->evloop_calls++;
}

static inline int shim_poll_one(const struct pollfd *fds, nfds_t n)
{
    return n == 1 && fds ? fds[0].fd : -1;
}

static int shim_select_one(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    int found = -1;
    fd_set *sets[3] = {r, w, e};
    for (int s = 0; s < 3; s++) {
        if (!sets[s])
            continue;
        for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
            if (!FD_ISSET(fd, sets[s]))
                continue;
            if (found >= 0 && found != fd)
                return -1;
            found = fd;
        }
    }
    return found;
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    shim_resolve();
    if (!shim_real.poll)
        return RAW_NOSYS;
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.poll(fds, n, timeout);
    int one = shim_poll_one(fds, n);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.poll(fds, n, timeout);
    uint64_t dt = shim_mono_ns() - t0;
    int saved = errno;
    shim_wait_account(t, one, dt);
    errno = saved;
    return r;
}

SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss)
{
    shim_resolve();
    if (!shim_real.ppoll)
        return RAW_NOSYS;
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.ppoll(fds, n, ts, ss);
    int one = shim_poll_one(fds, n);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.ppoll(fds, n, ts, ss);
    uint64_t dt = shim_mono_ns() - t0;
    int saved = errno;
    shim_wait_account(t, one, dt);
    errno = saved;
    return r;
}

SHIM_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    shim_resolve();
    if (!shim_real.select)
        return RAW_NOSYS;
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.select(nfds, r, w, e, tv);
    int one = shim_select_one(nfds, r, w, e);
    uint64_t t0 = shim_mono_ns();
    int rc = shim_real.select(nfds, r, w, e, tv);
    uint64_t dt = shim_mono_ns() - t0;
    int saved = errno;
    shim_wait_account(t, one, dt);
    errno = saved;
    return rc;
}

SHIM_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                        const sigset_t *ss)
{
    shim_resolve();
    if (!shim_real.pselect)
        return RAW_NOSYS;
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.pselect(nfds, r, w, e, ts, ss);
    int one = shim_select_one(nfds, r, w, e);
    uint64_t t0 = shim_mono_ns();
    int rc = shim_real.pselect(nfds, r, w, e, ts, ss);
    uint64_t dt = shim_mono_ns() - t0;
    int saved = errno;
    shim_wait_account(t, one, dt);
    errno = saved;
    return rc;
}

SHIM_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
    shim_resolve();
    if (!shim_real.epoll_wait)
        return RAW_NOSYS;
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.epoll_wait(ep, ev, max, timeout);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.epoll_wait(ep, ev, max, timeout);
    t->evloop_wait_ns += shim_mono_ns() - t0;
    t->evloop_calls++;
    return r;
}

SHIM_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout,
                            const sigset_t *ss)
{
    shim_resolve();
    if (!shim_real.epoll_pwait)
        return RAW_NOSYS;
    struct prof_shm_thread *t = shim_self();
    if (!t)
        return shim_real.epoll_pwait(ep, ev, max, timeout, ss);
    uint64_t t0 = shim_mono_ns();
    int r = shim_real.epoll_pwait(ep, ev, max, timeout, ss);
    t->evloop_wait_ns += shim_mono_ns() - t0;
    t->evloop_calls++;
    return r;
}

/* ---- descriptor life: creation marks, close and dup invalidate ---- */

SHIM_EXPORT int close(int fd)
{
    if (SHIM_UNLIKELY(!shim_real.close)) {
        shim_resolve();
        if (!shim_real.close) {
            fdc_clear(fd);
            return (int)RAW(SYS_close, fd);
        }
    }
    int r = shim_real.close(fd);
    int saved = errno;
    fdc_close(fd);
    errno = saved;
    return r;
}

SHIM_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    shim_resolve();
    int r = shim_real.close_range ? shim_real.close_range(first, last, flags)
                                  : (int)RAW(SYS_close_range, first, last, flags);
    /* CLOSE_RANGE_CLOEXEC closes nothing now; clearing is harmless either way. */
    if (r == 0 && (shim_owner() || !shim_hdr))
        for (unsigned int fd = first; fd <= last && fd < FD_CACHE; fd++)
            fdc_clear((int)fd);
    return r;
}

SHIM_EXPORT void closefrom(int lowfd)
{
    shim_resolve();
    if (shim_real.closefrom)
        shim_real.closefrom(lowfd);
    else
        RAW(SYS_close_range, (unsigned)lowfd, ~0u, 0);
    int saved = errno;
    if (shim_owner() || !shim_hdr)
        for (int fd = lowfd < 0 ? 0 : lowfd; fd < FD_CACHE; fd++)
            fdc_clear(fd);
    errno = saved;
}

/* A duplicate shares the open file: same class, unless we are a vfork child (shared memory). */
static void fdc_dup(int oldfd, int newfd)
{
    if (newfd < 0 || newfd >= FD_CACHE)
        return;
    if (shim_hdr && !shim_owner())
        return; /* vfork child: the parent's cache, the parent's descriptors */
    uint8_t c = 0;
    if (oldfd >= 0 && oldfd < FD_CACHE)
        c = __atomic_load_n(&fd_class[oldfd], __ATOMIC_RELAXED);
    __atomic_store_n(&fd_class[newfd], c, __ATOMIC_RELAXED);
}

SHIM_EXPORT int dup(int fd)
{
    shim_resolve();
    int r = shim_real.dup ? shim_real.dup(fd) : (int)RAW(SYS_dup, fd);
    if (r >= 0) {
        int saved = errno;
        fdc_dup(fd, r);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT int dup2(int fd, int fd2)
{
    shim_resolve();
    int r = shim_real.dup2 ? shim_real.dup2(fd, fd2) : (int)RAW(SYS_dup2, fd, fd2);
    if (r >= 0) {
        int saved = errno;
        fdc_dup(fd, r);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT int dup3(int fd, int fd2, int fl)
{
    shim_resolve();
    int r = shim_real.dup3 ? shim_real.dup3(fd, fd2, fl) : (int)RAW(SYS_dup3, fd, fd2, fl);
    if (r >= 0) {
        int saved = errno;
        fdc_dup(fd, r);
        errno = saved;
    }
    return r;
}

/* fcntl's third argument is an int or a pointer: pass it on as the widest of the two. */
static int shim_fcntl(int fd, int cmd, va_list ap)
{
    shim_resolve();
    void *arg = va_arg(ap, void *);
    int r = shim_real.fcntl ? shim_real.fcntl(fd, cmd, arg) : (int)RAW(SYS_fcntl, fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
        int saved = errno;
        fdc_dup(fd, r);
        errno = saved;
    }
    return r;
}

SHIM_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = shim_fcntl(fd, cmd, ap);
    va_end(ap);
    return r;
}

SHIM_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = shim_fcntl(fd, cmd, ap);
    va_end(ap);
    return r;
}

SHIM_EXPORT int socket(int dom, int type, int proto)
{
    shim_resolve();
    int r = shim_real.socket ? shim_real.socket(dom, type, proto)
                             : (int)RAW(SYS_socket, dom, type, proto);
    if (r >= 0)
        fdc_clear(r); /* classified at first use: a UNIX socket's peer is not known yet */
    return r;
}

SHIM_EXPORT int socketpair(int dom, int type, int proto, int sv[2])
{
    shim_resolve();
    int r = shim_real.socketpair ? shim_real.socketpair(dom, type, proto, sv)
                                 : (int)RAW(SYS_socketpair, dom, type, proto, sv);
    if (r == 0) {
        uint8_t c = dom == AF_UNIX ? FDC_SOCKPAIR | FDC_TREE : 0;
        fdc_set(sv[0], c);
        fdc_set(sv[1], c);
    }
    return r;
}

SHIM_EXPORT int pipe(int fds[2])
{
    shim_resolve();
    int r = shim_real.pipe ? shim_real.pipe(fds) : (int)RAW(SYS_pipe2, fds, 0);
    if (r == 0) {
        fdc_set(fds[0], FDC_PIPE | FDC_TREE);
        fdc_set(fds[1], FDC_PIPE | FDC_TREE);
    }
    return r;
}

SHIM_EXPORT int pipe2(int fds[2], int fl)
{
    shim_resolve();
    int r = shim_real.pipe2 ? shim_real.pipe2(fds, fl) : (int)RAW(SYS_pipe2, fds, fl);
    if (r == 0) {
        fdc_set(fds[0], FDC_PIPE | FDC_TREE);
        fdc_set(fds[1], FDC_PIPE | FDC_TREE);
    }
    return r;
}

/* open's mode is present only with O_CREAT or O_TMPFILE. */
static int shim_open_at(int dirfd, const char *path, int fl, va_list ap)
{
    shim_resolve();
    mode_t mode = 0;
    if ((fl & O_CREAT) || (fl & O_TMPFILE) == O_TMPFILE)
        mode = (mode_t)va_arg(ap, int);
    int r;
    if (dirfd == AT_FDCWD && shim_real.open)
        r = shim_real.open(path, fl, mode);
    else if (shim_real.openat)
        r = shim_real.openat(dirfd, path, fl, mode);
    else
        r = (int)RAW(SYS_openat, dirfd, path, fl, mode);
    if (r >= 0)
        fdc_clear(r);
    return r;
}

SHIM_EXPORT int open(const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    int r = shim_open_at(AT_FDCWD, path, fl, ap);
    va_end(ap);
    return r;
}

SHIM_EXPORT int open64(const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    int r = shim_open_at(AT_FDCWD, path, fl, ap);
    va_end(ap);
    return r;
}

SHIM_EXPORT int openat(int dirfd, const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    int r = shim_open_at(dirfd, path, fl, ap);
    va_end(ap);
    return r;
}

SHIM_EXPORT int openat64(int dirfd, const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    int r = shim_open_at(dirfd, path, fl, ap);
    va_end(ap);
    return r;
}

SHIM_EXPORT int creat(const char *path, mode_t mode)
{
    shim_resolve();
    int r = shim_real.open ? shim_real.open(path, O_CREAT | O_WRONLY | O_TRUNC, mode)
                           : (int)RAW(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
    if (r >= 0)
        fdc_clear(r);
    return r;
}

SHIM_EXPORT int creat64(const char *path, mode_t mode)
{
    return creat(path, mode);
}
