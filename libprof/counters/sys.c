/* sys.c: the counters' system calls: perf_event_open as a probe on poolprof itself and for one task, close, /proc/sys/kernel/perf_event_paranoid. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/perf_event.h>

#include "counters/counters.h"

/* Counting (no sampling), enabled at once, both times read beside the value so a multiplexed
 * hardware counter can be scaled. inherit 0 for the observer: a counter follows one task, and it
 * opens one per thread it sees (counters.h); 1 for a whole tree (sweep's timed runs). */
static int open_event(const struct prof_ctr_attr *a, pid_t pid, int inherit, int group)
{
    struct perf_event_attr pa;

    memset(&pa, 0, sizeof pa);
    pa.size = sizeof pa;
    pa.type = a->type;
    pa.config = a->config;
    pa.config1 = a->config1;
    pa.config2 = a->config2;
    pa.exclude_user = a->exclude_user ? 1 : 0;
    pa.exclude_kernel = a->exclude_kernel ? 1 : 0;
    pa.exclude_hv = a->exclude_hv ? 1 : 0;
    pa.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
    pa.disabled = 0;
    pa.inherit = inherit ? 1 : 0;
    long fd = syscall(SYS_perf_event_open, &pa, pid, -1, group, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

int prof_ctr_sys_open_task(const struct prof_ctr_attr *a, pid_t tid, int group)
{
    return open_event(a, tid, 0, group);
}

int prof_ctr_sys_open_tree(const struct prof_ctr_attr *a, pid_t pid)
{
    return open_event(a, pid, 1, -1);
}

static int real_encode(void *ctx, const char *name, struct prof_ctr_attr *a, char *fstr, size_t cap, const char **msg)
{
    (void)ctx;
    return prof_ctr_encode(name, a, fstr, cap, msg);
}

static int real_open(void *ctx, const struct prof_ctr_attr *a)
{
    (void)ctx;
    return open_event(a, 0, 0, -1);
}

static void real_close(void *ctx, int fd)
{
    (void)ctx;
    close(fd);
}

static int real_paranoid(void *ctx)
{
    char buf[32];
    (void)ctx;
    int fd = open("/proc/sys/kernel/perf_event_paranoid", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return INT32_MIN;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return INT32_MIN;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf || v < INT32_MIN + 1 || v > INT32_MAX)
        return INT32_MIN;
    return (int)v;
}

const struct prof_ctr_sys prof_ctr_sys_real = {real_encode, real_open, real_close, real_paranoid, NULL};
