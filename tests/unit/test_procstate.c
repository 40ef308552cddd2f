/* test_procstate.c: /proc/TID/syscall parsing, the syscall-to-state table and descriptor kinds, on real-format input (x86_64). */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/syscall.h>

#include "prof.h"
#include "procstate.h"

/* A blocked syscall nr with args (the rest zero). */
static struct prof_syscall sc_of(long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
    struct prof_syscall sc;
    memset(&sc, 0, sizeof sc);
    sc.state = 1;
    sc.nr = nr;
    sc.args[0] = a0;
    sc.args[1] = a1;
    sc.args[2] = a2;
    return sc;
}

Test(syscall_parse, running)
{
    struct prof_syscall sc;
    cr_assert_eq(prof_syscall_parse("running\n", &sc), 0);
    cr_assert_eq(sc.state, 0);
    cr_assert_eq(prof_syscall_fd(&sc), -1);
}

Test(syscall_parse, blocked_outside_a_syscall)
{
    struct prof_syscall sc;
    cr_assert_eq(prof_syscall_parse("-1 0x7ffd3a6c1e48 0x7f2b9c0a1b2c\n", &sc), 0);
    cr_assert_eq(sc.state, -1);
    cr_assert_eq(sc.sp, 0x7ffd3a6c1e48ULL);
    cr_assert_eq(sc.pc, 0x7f2b9c0a1b2cULL);
    cr_assert_eq(prof_syscall_fd(&sc), -1);
}

Test(syscall_parse, futex_line)
{
    struct prof_syscall sc;
    cr_assert_eq(prof_syscall_parse("202 0x55d0 0x80 0x2 0x0 0x0 0x0 0x7ffc 0x7f12\n", &sc), 0);
    cr_assert_eq(sc.state, 1);
    cr_assert_eq(sc.nr, 202);
    cr_assert_eq(sc.nr, SYS_futex);
    cr_assert_eq(sc.args[0], 0x55d0);
    cr_assert_eq(sc.args[1], 0x80);
    cr_assert_eq(sc.args[2], 0x2);
    cr_assert_eq(sc.args[3], 0);
    cr_assert_eq(sc.args[5], 0);
    cr_assert_eq(sc.sp, 0x7ffc);
    cr_assert_eq(sc.pc, 0x7f12);
}

Test(syscall_parse, read_line_gives_its_descriptor)
{
    struct prof_syscall sc;
    cr_assert_eq(prof_syscall_parse("0 0x3 0x7ffc8e2f1a40 0x1000 0x0 0x0 0x0 0x7ffc8e2f1a08 0x7f3e1c914992", &sc), 0);
    cr_assert_eq(sc.nr, SYS_read);
    cr_assert_eq(prof_syscall_fd(&sc), 3);
    cr_assert_eq(sc.pc, 0x7f3e1c914992ULL);
}

Test(syscall_parse, malformed)
{
    struct prof_syscall sc;
    cr_assert_lt(prof_syscall_parse("", &sc), 0);
    cr_assert_lt(prof_syscall_parse("garbage", &sc), 0);
    cr_assert_lt(prof_syscall_parse("202 0x1 0x2", &sc), 0, "a truncated argument list is an error");
}

Test(syscall_parse, poll_args)
{
    struct prof_syscall sc;
    uint64_t fds = 0, n = 0;
    cr_assert_eq(prof_syscall_parse("7 0x7ffe1000 0x1 0x1388 0x0 0x0 0x0 0x7ffe0ff0 0x7f00", &sc), 0);
    cr_assert_eq(prof_syscall_is_poll(&sc, &fds, &n), 1);
    cr_assert_eq(fds, 0x7ffe1000);
    cr_assert_eq(n, 1);
    cr_assert_eq(prof_syscall_fd(&sc), -1, "poll's set is for the caller to read");
    struct prof_syscall r = sc_of(SYS_read, 0, 0, 0);
    cr_assert_eq(prof_syscall_is_poll(&r, &fds, &n), 0);
}

Test(classify, runnable_and_running)
{
    struct prof_syscall run;
    prof_syscall_parse("running", &run);
    cr_assert_eq(prof_tstate_classify('R', &run, PROF_FD_UNKNOWN, 0), PROF_TS_RUNNING);
    cr_assert_eq(prof_tstate_classify('R', NULL, PROF_FD_UNKNOWN, 0), PROF_TS_RUNNING);
    struct prof_syscall fx = sc_of(SYS_futex, 0x1000, 128, 2);
    cr_assert_eq(prof_tstate_classify('R', &fx, PROF_FD_UNKNOWN, 0), PROF_TS_RUNNING, "R wins over a stale syscall");
}

Test(classify, futex_families)
{
    struct prof_syscall wait_priv = sc_of(SYS_futex, 0x55d0, 128 /* FUTEX_WAIT_PRIVATE */, 2);
    struct prof_syscall wait = sc_of(SYS_futex, 0x55d0, 0 /* FUTEX_WAIT */, 2);
    struct prof_syscall lock_pi = sc_of(SYS_futex, 0x55d0, 6 | 128 /* FUTEX_LOCK_PI_PRIVATE */, 0);
    struct prof_syscall bitset = sc_of(SYS_futex, 0x55d0, 137 /* FUTEX_WAIT_BITSET_PRIVATE */, 0);
    struct prof_syscall bitset_rt = sc_of(SYS_futex, 0x55d0, 137 | 256 /* + FUTEX_CLOCK_REALTIME */, 0);
    cr_assert_eq(prof_tstate_classify('S', &wait_priv, PROF_FD_UNKNOWN, 0), PROF_TS_LOCK);
    cr_assert_eq(prof_tstate_classify('S', &wait, PROF_FD_UNKNOWN, 0), PROF_TS_LOCK);
    cr_assert_eq(prof_tstate_classify('S', &lock_pi, PROF_FD_UNKNOWN, 0), PROF_TS_LOCK);
    cr_assert_eq(prof_tstate_classify('S', &bitset, PROF_FD_UNKNOWN, 0), PROF_TS_SYNC);
    cr_assert_eq(prof_tstate_classify('S', &bitset_rt, PROF_FD_UNKNOWN, 0), PROF_TS_SYNC);
    /* the GIL flag wins over the futex op */
    cr_assert_eq(prof_tstate_classify('S', &bitset, PROF_FD_UNKNOWN, 1), PROF_TS_GIL);
    cr_assert_eq(prof_tstate_classify('S', &wait_priv, PROF_FD_UNKNOWN, 1), PROF_TS_GIL);
}

Test(classify, read_on_each_fd_kind)
{
    struct prof_syscall rd = sc_of(SYS_read, 3, 0x7ffc0000, 4096);
    cr_assert_eq(prof_tstate_classify('S', &rd, PROF_FD_NET, 0), PROF_TS_NET);
    cr_assert_eq(prof_tstate_classify('S', &rd, PROF_FD_IPC, 0), PROF_TS_IPC);
    cr_assert_eq(prof_tstate_classify('S', &rd, PROF_FD_LOCAL, 0), PROF_TS_NET,
                 "a pipe to outside the tree is waited on like any input");
    cr_assert_eq(prof_tstate_classify('D', &rd, PROF_FD_FILE, 0), PROF_TS_DISK);
    cr_assert_eq(prof_tstate_classify('S', &rd, PROF_FD_OTHER, 0), PROF_TS_OTHER, "a terminal");
    cr_assert_eq(prof_tstate_classify('S', &rd, PROF_FD_UNKNOWN, 0), PROF_TS_OTHER);
    struct prof_syscall rv = sc_of(SYS_recvfrom, 5, 0, 0);
    cr_assert_eq(prof_tstate_classify('S', &rv, PROF_FD_NET, 0), PROF_TS_NET);
    cr_assert_eq(prof_syscall_fd(&rv), 5);
    struct prof_syscall ac = sc_of(SYS_accept4, 7, 0, 0);
    cr_assert_eq(prof_tstate_classify('S', &ac, PROF_FD_NET, 0), PROF_TS_NET);
    struct prof_syscall wr = sc_of(SYS_write, 1, 0, 0);
    cr_assert_eq(prof_tstate_classify('S', &wr, PROF_FD_IPC, 0), PROF_TS_IPC, "a writer blocked on a full pipe");
}

Test(classify, poll_and_event_loops)
{
    struct prof_syscall p1 = sc_of(SYS_poll, 0x7ffe1000, 1, 5000);
    cr_assert_eq(prof_tstate_classify('S', &p1, PROF_FD_NET, 0), PROF_TS_NET, "one socket: a timeout, not a loop");
    cr_assert_eq(prof_tstate_classify('S', &p1, PROF_FD_IPC, 0), PROF_TS_IPC);
    cr_assert_eq(prof_tstate_classify('S', &p1, PROF_FD_UNKNOWN, 0), PROF_TS_EVLOOP);
    struct prof_syscall pp1 = sc_of(SYS_ppoll, 0x7ffe1000, 1, 0);
    cr_assert_eq(prof_tstate_classify('S', &pp1, PROF_FD_NET, 0), PROF_TS_NET);
    struct prof_syscall p3 = sc_of(SYS_poll, 0x7ffe1000, 3, 5000);
    cr_assert_eq(prof_tstate_classify('S', &p3, PROF_FD_UNKNOWN, 0), PROF_TS_EVLOOP);
    struct prof_syscall p0 = sc_of(SYS_poll, 0, 0, 100);
    cr_assert_eq(prof_tstate_classify('S', &p0, PROF_FD_UNKNOWN, 0), PROF_TS_SLEEP, "poll(NULL, 0, ms) is a sleep");
    struct prof_syscall ep = sc_of(SYS_epoll_wait, 4, 0x7ffe2000, 64);
    cr_assert_eq(prof_tstate_classify('S', &ep, PROF_FD_UNKNOWN, 0), PROF_TS_EVLOOP);
    struct prof_syscall epp = sc_of(SYS_epoll_pwait, 4, 0x7ffe2000, 64);
    cr_assert_eq(prof_tstate_classify('S', &epp, PROF_FD_UNKNOWN, 0), PROF_TS_EVLOOP);
    struct prof_syscall sel = sc_of(SYS_select, 9, 0, 0);
    cr_assert_eq(prof_tstate_classify('S', &sel, PROF_FD_UNKNOWN, 0), PROF_TS_EVLOOP);
    struct prof_syscall ps = sc_of(SYS_pselect6, 9, 0, 0);
    cr_assert_eq(prof_tstate_classify('S', &ps, PROF_FD_UNKNOWN, 0), PROF_TS_EVLOOP);
}

Test(classify, sleeps_waits_and_locks)
{
    struct prof_syscall cn = sc_of(SYS_clock_nanosleep, 1, 0, 0x7ffc);
    struct prof_syscall ns = sc_of(SYS_nanosleep, 0x7ffc, 0, 0);
    struct prof_syscall pa = sc_of(SYS_pause, 0, 0, 0);
    struct prof_syscall ss = sc_of(SYS_rt_sigsuspend, 0x7ffc, 8, 0);
    struct prof_syscall w4 = sc_of(SYS_wait4, (uint64_t)-1, 0x7ffc, 0);
    struct prof_syscall wid = sc_of(SYS_waitid, 0, 0, 0);
    struct prof_syscall fl = sc_of(SYS_flock, 3, 2, 0);
    struct prof_syscall lkw = sc_of(SYS_fcntl, 3, 7 /* F_SETLKW */, 0x7ffc);
    struct prof_syscall getfl = sc_of(SYS_fcntl, 3, 3 /* F_GETFL */, 0);
    struct prof_syscall sem = sc_of(SYS_semop, 1, 0x7ffc, 1);
    cr_assert_eq(prof_tstate_classify('S', &cn, PROF_FD_UNKNOWN, 0), PROF_TS_SLEEP);
    cr_assert_eq(prof_tstate_classify('S', &ns, PROF_FD_UNKNOWN, 0), PROF_TS_SLEEP);
    cr_assert_eq(prof_tstate_classify('S', &pa, PROF_FD_UNKNOWN, 0), PROF_TS_SLEEP);
    cr_assert_eq(prof_tstate_classify('S', &ss, PROF_FD_UNKNOWN, 0), PROF_TS_SLEEP);
    cr_assert_eq(prof_tstate_classify('S', &w4, PROF_FD_UNKNOWN, 0), PROF_TS_SYNC);
    cr_assert_eq(prof_tstate_classify('S', &wid, PROF_FD_UNKNOWN, 0), PROF_TS_SYNC);
    cr_assert_eq(prof_tstate_classify('S', &fl, PROF_FD_UNKNOWN, 0), PROF_TS_LOCK);
    cr_assert_eq(prof_tstate_classify('S', &lkw, PROF_FD_UNKNOWN, 0), PROF_TS_LOCK);
    cr_assert_eq(prof_tstate_classify('S', &getfl, PROF_FD_UNKNOWN, 0), PROF_TS_OTHER);
    cr_assert_eq(prof_tstate_classify('S', &sem, PROF_FD_UNKNOWN, 0), PROF_TS_LOCK);
}

Test(classify, disk_without_a_syscall)
{
    struct prof_syscall out;
    prof_syscall_parse("-1 0x7ffd0000 0x7f000000", &out);
    cr_assert_eq(prof_tstate_classify('D', &out, PROF_FD_UNKNOWN, 0), PROF_TS_DISK, "D outside a syscall: page-in");
    cr_assert_eq(prof_tstate_classify('D', NULL, PROF_FD_UNKNOWN, 0), PROF_TS_DISK, "D, syscall unreadable");
    cr_assert_eq(prof_tstate_classify('S', &out, PROF_FD_UNKNOWN, 0), PROF_TS_OTHER);
    cr_assert_eq(prof_tstate_classify('t', &out, PROF_FD_UNKNOWN, 0), PROF_TS_OTHER, "a traced stop");
    struct prof_syscall op = sc_of(SYS_openat, (uint64_t)-100, 0x55d0, 0);
    cr_assert_eq(prof_tstate_classify('D', &op, PROF_FD_UNKNOWN, 0), PROF_TS_DISK);
    struct prof_syscall unknown = sc_of(SYS_getpid, 0, 0, 0);
    cr_assert_eq(prof_tstate_classify('D', &unknown, PROF_FD_UNKNOWN, 0), PROF_TS_DISK);
    cr_assert_eq(prof_tstate_classify('S', &unknown, PROF_FD_UNKNOWN, 0), PROF_TS_OTHER);
}

Test(fdkind, from_link)
{
    cr_assert_eq(prof_fdkind_from_link("socket:[123456]", 0, 0), PROF_FD_NET, "TCP");
    cr_assert_eq(prof_fdkind_from_link("socket:[123456]", 0, 1), PROF_FD_NET, "TCP, even inside the tree");
    cr_assert_eq(prof_fdkind_from_link("socket:[123456]", 1, 1), PROF_FD_IPC, "AF_UNIX within the tree");
    cr_assert_eq(prof_fdkind_from_link("socket:[123456]", 1, 0), PROF_FD_LOCAL, "AF_UNIX to outside");
    cr_assert_eq(prof_fdkind_from_link("pipe:[98765]", 0, 1), PROF_FD_IPC);
    cr_assert_eq(prof_fdkind_from_link("pipe:[98765]", 0, 0), PROF_FD_LOCAL);
    cr_assert_eq(prof_fdkind_from_link("/home/u/data.csv", 0, 0), PROF_FD_FILE);
    cr_assert_eq(prof_fdkind_from_link("/tmp/x (deleted)", 0, 0), PROF_FD_FILE);
    cr_assert_eq(prof_fdkind_from_link("/dev/shm/seg", 0, 0), PROF_FD_FILE);
    cr_assert_eq(prof_fdkind_from_link("/dev/sda1", 0, 0), PROF_FD_FILE);
    cr_assert_eq(prof_fdkind_from_link("/dev/nvme0n1p2", 0, 0), PROF_FD_FILE);
    cr_assert_eq(prof_fdkind_from_link("/dev/vdb", 0, 0), PROF_FD_FILE);
    cr_assert_eq(prof_fdkind_from_link("/dev/pts/3", 0, 0), PROF_FD_OTHER);
    cr_assert_eq(prof_fdkind_from_link("/dev/null", 0, 0), PROF_FD_OTHER);
    cr_assert_eq(prof_fdkind_from_link("anon_inode:[eventfd]", 0, 0), PROF_FD_OTHER);
    cr_assert_eq(prof_fdkind_from_link("", 0, 0), PROF_FD_UNKNOWN);
    cr_assert_eq(prof_fdkind_from_link(NULL, 0, 0), PROF_FD_UNKNOWN);
}

Test(tstate, names_round_trip)
{
    const char *want[] = {"running", "runq", "gil", "lock", "sync", "net", "disk", "ipc", "evloop", "sleep", "other"};
    cr_assert_eq(sizeof want / sizeof *want, PROF_TS_COUNT);
    for (int i = 0; i < PROF_TS_COUNT; i++) {
        cr_assert_str_eq(prof_tstate_name((enum prof_tstate)i), want[i]);
        cr_assert_eq(prof_tstate_from_name(want[i]), i);
    }
    cr_assert_eq(prof_tstate_from_name("bogus"), -1);
    cr_assert_str_eq(prof_tstate_name(PROF_TS_COUNT), "other");
}
