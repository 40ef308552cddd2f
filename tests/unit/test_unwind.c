/* test_unwind.c: the native unwinder against fixtures whose threads sit in known stacks, dynamic and static. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format/elfsym.h"
#include "sampler/procstate.h"
#include "prof.h"
#include "unwind.h"

#define FIXTURES POOLPROF_BUILD_DIR "/tests/fixtures/"
#define MAX_NAMES 64

struct fixture {
    pid_t pid;
    pid_t reader;               /* the thread blocked in read(2) */
};

/* First word of /proc/PID/task/TID/syscall: a syscall number, or "running". */
static void task_syscall(pid_t pid, pid_t tid, char *line, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    FILE *fp = fopen(path, "r");
    line[0] = '\0';
    if (fp) {
        if (!fgets(line, (int)len, fp))
            line[0] = '\0';
        fclose(fp);
    }
}

/* Start a program and wait for the "ready" line it prints once it is where a test wants it. */
static pid_t spawn_ready_argv(char *const argv[])
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* A failed assertion ends the test process: take the fixture along. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    /* To the end of the line: a writer may send it in two writes (seen of CPython's print
     * under load: "ready", then the newline). */
    char buf[16] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(buf) - 1 && (got == 0 || buf[got - 1] != '\n') &&
           (r = read(out[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)r;
    cr_assert_gt(got, 0, "%s did not start", argv[0]);
    close(out[0]);
    cr_assert_str_eq(buf, "ready\n");
    return pid;
}

static pid_t spawn_ready(const char *name)
{
    char *const argv[] = {(char *)name, NULL};
    return spawn_ready_argv(argv);
}

/* Start a known_stack fixture, wait for "ready" and for its second thread to sit in read(2). */
static void fixture_start(const char *name, struct fixture *f)
{
    pid_t pid = spawn_ready(name);
    f->pid = pid;
    f->reader = 0;

    char path[128];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && atoi(de->d_name) != pid)
            f->reader = atoi(de->d_name);
    closedir(d);
    cr_assert_gt(f->reader, 0, "no second thread");

    /* main spins in level_c once "ready" is written; syscall 0 is read on
     * x86_64: wait until the reader is inside it. */
    for (int i = 0; i < 500; i++) {
        char a[256];
        task_syscall(pid, f->reader, a, sizeof(a));
        if (strncmp(a, "0 ", 2) == 0)
            return;
        usleep(10000);
    }
    cr_assert_fail("the fixture's threads never reached their known stacks");
}

static void fixture_stop(struct fixture *f)
{
    kill(f->pid, SIGKILL);
    /* The leader is reaped only after its traced threads: reap those too. */
    pid_t r;
    while ((r = waitpid(-1, NULL, __WALL)) > 0 && r != f->pid)
        ;
}

static void seize(pid_t tid)
{
    cr_assert_eq(ptrace(PTRACE_SEIZE, tid, NULL, NULL), 0, "PTRACE_SEIZE %d: %s", (int)tid, strerror(errno));
}

/* Stop tid, copy its registers and stack, resume it. */
static void sample(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap)
{
    int st;
    cr_assert_eq(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
    cr_assert_eq(waitpid(tid, &st, __WALL), tid);
    cr_assert(WIFSTOPPED(st), "tid %d not stopped (status %#x)", (int)tid, st);
    cr_assert_eq(prof_unw_capture(u, tid, snap), 0);
    cr_assert_eq(ptrace(PTRACE_CONT, tid, NULL, NULL), 0);
}

/* Function names of the frames, innermost first; "?" where unknown. Return
 * addresses (every frame but the first) are looked up at ip - 1, as the merge does. */
static size_t symbolise(struct prof_unw *u, const struct prof_unw_frame *fr, size_t n, const char **names)
{
    for (size_t i = 0; i < n && i < MAX_NAMES; i++) {
        names[i] = "?";
        const char *path = prof_unw_module_path(u, fr[i].module);
        struct prof_elf *e;
        if (!path || prof_elf_open(path, &e) != 0)
            continue;
        uint64_t va, off;
        const char *name;
        if (prof_elf_offset_to_vaddr(e, fr[i].offset - (i > 0), &va) == 0 &&
            prof_elf_symbolize(e, va, &name, &off) == 0)
            names[i] = strdup(name);
        prof_elf_close(e);
    }
    return n < MAX_NAMES ? n : MAX_NAMES;
}

static void names_free(const char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "?") != 0)
            free((char *)names[i]);
}

static char *names_join(const char **names, size_t n)
{
    static char buf[4096];
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(buf, names[i], sizeof(buf) - strlen(buf) - 4);
        if (i + 1 < n)
            strncat(buf, " <- ", sizeof(buf) - strlen(buf) - 1);
    }
    return buf;
}

/* want[] appear in this order (innermost first), want[0] being frame `first` or later. */
static int in_order(const char **names, size_t n, const char *const *want, size_t nwant)
{
    size_t w = 0;
    for (size_t i = 0; i < n && w < nwant; i++)
        if (strcmp(names[i], want[w]) == 0)
            w++;
    return w == nwant;
}

static void unwind_and_check(struct prof_unw *u, const struct prof_unw_snap *snap, const char *const *want,
                             size_t nwant, int innermost)
{
    struct prof_unw_frame fr[PROF_UNW_MAX_FRAMES];
    size_t n = 0;
    const char *names[MAX_NAMES];
    cr_assert_eq(prof_unw_unwind(u, snap, fr, PROF_UNW_MAX_FRAMES, &n), 0);
    cr_assert_geq(n, 1);
    size_t k = symbolise(u, fr, n, names);
    cr_assert(in_order(names, k, want, nwant), "stack %s lacks the expected frames", names_join(names, k));
    if (innermost)
        cr_assert_str_eq(names[0], want[0], "innermost frame %s, stack %s", names[0], names_join(names, k));
    names_free(names, k);
}

static const char *const spinning[] = {"level_c", "level_b", "level_a", "main"};
static const char *const reading[] = {"blocked_in_read", "thread_main"};

static void known_stacks(const char *fixture)
{
    struct fixture f;
    fixture_start(fixture, &f);
    struct prof_unw *u;
    cr_assert_eq(prof_unw_open(f.pid, &u), 0);
    seize(f.pid);
    seize(f.reader);
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    cr_assert_not_null(snap);

    /* Several samples each: the first fills libunwind's caches, the later ones use them. */
    for (int i = 0; i < 20; i++) {
        sample(u, f.pid, snap);
        cr_assert_gt(snap->len, 0);
        unwind_and_check(u, snap, spinning, 4, 1);
        sample(u, f.reader, snap);
        unwind_and_check(u, snap, reading, 2, 0);
    }

    /* After an invalidation (what the sampler does on exec) everything is read again. */
    prof_unw_invalidate(u);
    sample(u, f.pid, snap);
    unwind_and_check(u, snap, spinning, 4, 1);

    free(snap);
    prof_unw_close(u);
    fixture_stop(&f);
}

Test(unwind, dynamic_known_stacks, .timeout = 30)
{
    known_stacks(FIXTURES "known_stack");
}

Test(unwind, static_known_stacks, .timeout = 30)
{
    known_stacks(FIXTURES "static_known_stack");
}

/* The reader's stack copied without a stop, as /proc gives its pc and sp: the frames and the
 * return-address slots a stop finds, but for the pc, which a stop may rewind by 2 (the
 * syscall instruction, for the read's restart). */
static void blocked_copy(const char *fixture)
{
    struct fixture f;
    fixture_start(fixture, &f);
    struct prof_unw *u;
    cr_assert_eq(prof_unw_open(f.pid, &u), 0);
    struct prof_unw_snap *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a && b);
    char line[256];
    struct prof_syscall sc;
    task_syscall(f.pid, f.reader, line, sizeof line);
    cr_assert_eq(prof_syscall_parse(line, &sc), 0, "syscall line %s", line);
    cr_assert_eq(sc.state, 1);
    cr_assert_eq(prof_unw_copy_blocked(u, f.reader, sc.pc, sc.sp, a, 0), 0);
    cr_assert(a->no_rbp && a->len > 0 && a->sp == sc.sp);
    struct prof_unw_frame fa[PROF_UNW_MAX_FRAMES], fb[PROF_UNW_MAX_FRAMES];
    struct prof_unw_slot sa[PROF_UNW_MAX_FRAMES], sb[PROF_UNW_MAX_FRAMES];
    size_t na = 0, nb = 0;
    int wa = 0, wb = 0;
    cr_assert_eq(prof_unw_unwind_slots(u, a, fa, sa, PROF_UNW_MAX_FRAMES, &na, &wa), 0);
    cr_assert(wa, "the copy without a stop did not unwind to the outermost frame");
    const char *names[MAX_NAMES];
    size_t k = symbolise(u, fa, na, names);
    cr_assert(in_order(names, k, reading, 2), "stack %s lacks the expected frames", names_join(names, k));
    names_free(names, k);

    seize(f.reader);
    sample(u, f.reader, b);
    cr_assert_eq(prof_unw_unwind_slots(u, b, fb, sb, PROF_UNW_MAX_FRAMES, &nb, &wb), 0);
    cr_assert_eq(na, nb, "%zu frames without a stop, %zu with one", na, nb);
    cr_assert(fa[0].module == fb[0].module && (fa[0].offset == fb[0].offset || fa[0].offset == fb[0].offset + 2));
    for (size_t i = 1; i < na; i++) {
        cr_assert(fa[i].module == fb[i].module && fa[i].offset == fb[i].offset, "frame %zu differs", i);
        cr_assert(sa[i - 1].addr == sb[i - 1].addr && sa[i - 1].value == sb[i - 1].value, "slot %zu differs", i - 1);
    }
    free(a);
    free(b);
    prof_unw_close(u);
    fixture_stop(&f);
}

Test(unwind, blocked_copy_without_a_stop, .timeout = 30)
{
    blocked_copy(FIXTURES "known_stack");
    blocked_copy(FIXTURES "static_known_stack");
}

/* A copy whose rbp is not known is not unwound through a frame whose CFA is rbp-based: the
 * same stack with its registers is. */
Test(unwind, no_rbp_refused_where_a_frame_needs_it, .timeout = 30)
{
    pid_t pid = spawn_ready(FIXTURES "fp_spin");
    struct prof_unw *u;
    cr_assert_eq(prof_unw_open(pid, &u), 0);
    seize(pid);
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    cr_assert_not_null(snap);
    static const char *const want[] = {"fp_spin", "main"};
    for (int i = 0; i < 5; i++) {
        sample(u, pid, snap);
        unwind_and_check(u, snap, want, 2, 1);
        snap->no_rbp = 1;
        struct prof_unw_frame fr[PROF_UNW_MAX_FRAMES];
        size_t n = 7;
        cr_assert_eq(prof_unw_unwind_slots(u, snap, fr, NULL, PROF_UNW_MAX_FRAMES, &n, NULL), PROF_ENOTSUP);
        cr_assert_eq(n, 0);
    }
    free(snap);
    prof_unw_close(u);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, __WALL);
}

/* Start a static_cfi fixture: after "ready", main spins in spin() at once. */
static pid_t cfi_start(const char *name)
{
    pid_t pid = spawn_ready(name);
    usleep(20000); /* from puts to the loop */
    return pid;
}

static void cfi_unwind(const char *fixture)
{
    static const char *const want[] = {"spin", "main"};
    pid_t pid = cfi_start(fixture);
    struct prof_unw *u;
    cr_assert_eq(prof_unw_open(pid, &u), 0);
    seize(pid);
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    cr_assert_not_null(snap);
    for (int i = 0; i < 3; i++) {
        sample(u, pid, snap);
        unwind_and_check(u, snap, want, 2, 1);
    }
    free(snap);
    prof_unw_close(u);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/*
 * Both rule caches (the fast path's and libunwind's) are keyed by ip alone. Two static
 * programs with the same ip under other rules, unwound one after the other (the first
 * closed before the second is opened, as when a process of the tree exits and another is
 * exec'd): the second must not be unwound with the first's rules (its return address would
 * be read 32 bytes off). Each way in turn: POOLPROF_UNWIND=libunwind is the second.
 */
Test(unwind, no_rules_carried_to_another_process, .timeout = 30)
{
    for (int way = 0; way < 2; way++) {
        if (way)
            cr_assert_eq(setenv("POOLPROF_UNWIND", "libunwind", 1), 0);
        cfi_unwind(FIXTURES "static_cfi_16");
        cfi_unwind(FIXTURES "static_cfi_48");
        cfi_unwind(FIXTURES "static_cfi_16");
    }
    unsetenv("POOLPROF_UNWIND");
}

/* The same two programs running side by side, unwound in turn, as the sampler does at each tick. */
static void cfi_side_by_side(void)
{
    static const char *const want[] = {"spin", "main"};
    pid_t pa = cfi_start(FIXTURES "static_cfi_16"), pb = cfi_start(FIXTURES "static_cfi_48");
    struct prof_unw *ua, *ub;
    cr_assert_eq(prof_unw_open(pa, &ua), 0);
    cr_assert_eq(prof_unw_open(pb, &ub), 0);
    seize(pa);
    seize(pb);
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    cr_assert_not_null(snap);
    for (int i = 0; i < 4; i++) {
        sample(ua, pa, snap);
        unwind_and_check(ua, snap, want, 2, 1);
        sample(ub, pb, snap);
        unwind_and_check(ub, snap, want, 2, 1);
    }
    free(snap);
    prof_unw_close(ua);
    prof_unw_close(ub);
    kill(pa, SIGKILL);
    kill(pb, SIGKILL);
    waitpid(pa, NULL, 0);
    waitpid(pb, NULL, 0);
}

Test(unwind, no_rules_shared_between_live_processes, .timeout = 30)
{
    cfi_side_by_side();
    cr_assert_eq(setenv("POOLPROF_UNWIND", "libunwind", 1), 0);
    cfi_side_by_side();
    unsetenv("POOLPROF_UNWIND");
}

/* known_stack with an unwinder open on it, its main thread (spinning in level_c) seized. */
struct spinner {
    struct fixture f;
    struct prof_unw *u;
    struct prof_unw_snap *snap;
};

static void spinner_start(struct spinner *k)
{
    fixture_start(FIXTURES "known_stack", &k->f);
    cr_assert_eq(prof_unw_open(k->f.pid, &k->u), 0);
    seize(k->f.pid);
    k->snap = malloc(sizeof(*k->snap));
    cr_assert_not_null(k->snap);
}

static void spinner_stop(struct spinner *k)
{
    free(k->snap);
    prof_unw_close(k->u);
    fixture_stop(&k->f);
}

static int mask_has(int sig)
{
    sigset_t cur;
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, sig);
}

/*
 * An unwind through libunwind blocks every signal while it runs and answers libunwind's own
 * mask calls itself: afterwards the thread's mask is what it was, and sigprocmask outside an
 * unwind is glibc's, errors included.
 */
Test(unwind, signal_mask_kept)
{
    struct spinner k;
    cr_assert_eq(setenv("POOLPROF_UNWIND", "libunwind", 1), 0);
    spinner_start(&k);
    unsetenv("POOLPROF_UNWIND");
    struct fixture f = k.f;
    struct prof_unw *u = k.u;
    struct prof_unw_snap *snap = k.snap;
    sigset_t one, before;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    cr_assert_eq(pthread_sigmask(SIG_SETMASK, &one, &before), 0);
    for (int i = 0; i < 3; i++) {
        sample(u, f.pid, snap);
        unwind_and_check(u, snap, spinning, 4, 1);
        for (int sig = 1; sig < 65; sig++)
            cr_assert_eq(mask_has(sig), sig == SIGUSR1, "signal %d %s after an unwind", sig,
                         sig == SIGUSR1 ? "unblocked" : "blocked");
    }
    /* A signal pending across an unwind is still pending after it. */
    sigset_t two;
    sigemptyset(&two);
    sigaddset(&two, SIGUSR2);
    sigset_t old;
    cr_assert_eq(sigprocmask(SIG_BLOCK, &two, &old), 0);
    cr_assert(sigismember(&old, SIGUSR1) && !sigismember(&old, SIGUSR2));
    cr_assert(mask_has(SIGUSR1) && mask_has(SIGUSR2));
    cr_assert_eq(raise(SIGUSR2), 0);
    sample(u, f.pid, snap);
    unwind_and_check(u, snap, spinning, 4, 1);
    sigset_t pend;
    cr_assert_eq(sigpending(&pend), 0);
    cr_assert(sigismember(&pend, SIGUSR2), "a pending signal was lost");
    int got = 0;
    cr_assert_eq(sigwait(&two, &got), 0);
    cr_assert_eq(got, SIGUSR2);
    errno = 0;
    cr_assert_eq(sigprocmask(12345, &two, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(sigprocmask(SIG_SETMASK, &before, NULL), 0);
    cr_assert(!mask_has(SIGUSR1) && !mask_has(SIGUSR2));
    uint64_t fast, slow;
    prof_unw_path_stats(u, &fast, &slow);
    cr_assert(fast == 0 && slow == 4, "%llu fast and %llu libunwind unwinds", (unsigned long long)fast,
              (unsigned long long)slow);
    spinner_stop(&k);
}

/* Unwind snap with both unwinders of a process: the fast path's and libunwind's answers match
 * frame for frame, slot for slot. */
static void same_unwind(struct prof_unw *fa, struct prof_unw *sl, const struct prof_unw_snap *snap)
{
    static struct prof_unw_frame a[PROF_UNW_MAX_FRAMES], b[PROF_UNW_MAX_FRAMES];
    static struct prof_unw_slot sa[PROF_UNW_MAX_FRAMES], sb[PROF_UNW_MAX_FRAMES];
    size_t na = 0, nb = 0;
    int wa = -1, wb = -1;
    cr_assert_eq(prof_unw_unwind_slots(fa, snap, a, sa, PROF_UNW_MAX_FRAMES, &na, &wa), 0);
    cr_assert_eq(prof_unw_unwind_slots(sl, snap, b, sb, PROF_UNW_MAX_FRAMES, &nb, &wb), 0);
    cr_assert_eq(na, nb, "%zu frames, libunwind %zu (pc %llx)", na, nb, (unsigned long long)snap->regs.rip);
    cr_assert_eq(wa, wb, "whole %d, libunwind %d", wa, wb);
    for (size_t i = 0; i < na; i++) {
        const char *pa = prof_unw_module_path(fa, a[i].module), *pb = prof_unw_module_path(sl, b[i].module);
        cr_assert((pa == NULL) == (pb == NULL) && (!pa || strcmp(pa, pb) == 0) && a[i].offset == b[i].offset,
                  "frame %zu: %s+%llx, libunwind %s+%llx", i, pa ? pa : "-", (unsigned long long)a[i].offset,
                  pb ? pb : "-", (unsigned long long)b[i].offset);
        if (i + 1 < na)
            cr_assert(sa[i].addr == sb[i].addr && sa[i].value == sb[i].value, "slot %zu differs", i);
    }
}

/* Sample pid's threads n times, each snapshot unwound both ways; returns the fast unwinds. */
static uint64_t fast_matches(pid_t pid, int n)
{
    pid_t tids[8];
    int nt = 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) && nt < 8)
        if (atoi(de->d_name) > 0)
            tids[nt++] = atoi(de->d_name);
    closedir(d);
    struct prof_unw *fa, *sl;
    cr_assert_eq(prof_unw_open(pid, &fa), 0);
    cr_assert_eq(setenv("POOLPROF_UNWIND", "libunwind", 1), 0);
    cr_assert_eq(prof_unw_open(pid, &sl), 0);
    unsetenv("POOLPROF_UNWIND");
    for (int t = 0; t < nt; t++)
        seize(tids[t]);
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    cr_assert_not_null(snap);
    for (int i = 0; i < n; i++) {
        sample(fa, tids[i % nt], snap);
        same_unwind(fa, sl, snap);
        usleep(500); /* somewhere else in the code next time */
    }
    uint64_t fast, slow, f2, s2;
    prof_unw_path_stats(fa, &fast, &slow);
    prof_unw_path_stats(sl, &f2, &s2);
    cr_assert_eq(f2, 0);
    cr_assert_eq(s2, (uint64_t)n);
    cr_log_info("pid %d: %llu of %d unwinds by the fast path", (int)pid, (unsigned long long)fast, n);
    free(snap);
    prof_unw_close(fa);
    prof_unw_close(sl);
    return fast;
}

/* Python's interpreter (the static /usr/bin/python3): a thread in nested Python calls doing
 * arithmetic, another asleep; their C stacks through the eval loop, sampled at random points. */
Test(unwind, fast_path_matches_libunwind_python, .timeout = 60)
{
    char *const argv[] = {"/usr/bin/python3", "-c",
                          "import threading, time\n"
                          "def leaf(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n"
                          "def rec(d):\n    return rec(d - 1) if d else leaf(2000)\n"
                          "threading.Thread(target=lambda: time.sleep(1000), daemon=True).start()\n"
                          "print('ready', flush=True)\n"
                          "while True:\n    rec(20)\n",
                          NULL};
    pid_t pid = spawn_ready_argv(argv);
    usleep(50000);
    cr_assert_geq(fast_matches(pid, 400), 200, "the fast path unwound under half the stacks");
    kill(pid, SIGKILL);
    pid_t r;
    while ((r = waitpid(-1, NULL, __WALL)) > 0 && r != pid)
        ;
}

Test(unwind, fast_path_matches_libunwind_c, .timeout = 60)
{
    static const char *const fixtures[] = {FIXTURES "known_stack", FIXTURES "static_known_stack"};
    for (int i = 0; i < 2; i++) {
        struct fixture f;
        fixture_start(fixtures[i], &f);
        cr_assert_geq(fast_matches(f.pid, 100), 50, "%s: the fast path unwound under half the stacks", fixtures[i]);
        fixture_stop(&f);
    }
}

Test(unwind, frames_name_file_offsets)
{
    struct spinner k;
    spinner_start(&k);
    struct fixture f = k.f;
    struct prof_unw *u = k.u;
    struct prof_unw_snap *snap = k.snap;
    sample(u, f.pid, snap);
    struct prof_unw_frame fr[PROF_UNW_MAX_FRAMES];
    size_t n;
    cr_assert_eq(prof_unw_unwind(u, snap, fr, PROF_UNW_MAX_FRAMES, &n), 0);
    /* The pc is in the executable's text, as a file offset. */
    const char *path = prof_unw_module_path(u, fr[0].module);
    cr_assert_not_null(path);
    cr_assert(strstr(path, "/known_stack") != NULL, "pc in %s", path);
    cr_assert_lt(fr[0].offset, 1u << 24, "a file offset, not an address");
    cr_assert_null(prof_unw_module_path(u, UINT32_MAX));
    /* A capped unwind stops at the cap. */
    cr_assert_eq(prof_unw_unwind(u, snap, fr, 2, &n), 0);
    cr_assert_eq(n, 2);
    spinner_stop(&k);
}

Test(unwind, errors)
{
    struct prof_unw *u;
    cr_assert_eq(prof_unw_open(0, &u), PROF_EINVAL);
    /* A pid that does not exist: fork a child and reap it. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    cr_assert_eq(prof_unw_open(pid, &u), PROF_ESRCH);
    cr_assert_eq(prof_unw_open(getpid(), &u), 0);
    struct prof_unw_snap *snap = malloc(sizeof(*snap));
    /* Not traced by us: no registers. */
    cr_assert_eq(prof_unw_capture(u, pid, snap), PROF_ESRCH);
    free(snap);
    prof_unw_close(u);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Not a benchmark (bench/unwind_micro.c is): a loose bound that catches a
 * /proc read or an allocation creeping into the stop window. */
Test(unwind, stop_window_is_short, .timeout = 60)
{
    struct spinner k;
    spinner_start(&k);
    struct fixture f = k.f;
    struct prof_unw *u = k.u;
    struct prof_unw_snap *snap = k.snap;
    enum { N = 200 };
    static uint64_t t[N];
    for (int i = 0; i < N; i++) {
        int st;
        cr_assert_eq(ptrace(PTRACE_INTERRUPT, f.pid, NULL, NULL), 0);
        cr_assert_eq(waitpid(f.pid, &st, __WALL), f.pid);
        uint64_t t0 = now_ns();
        cr_assert_eq(prof_unw_capture(u, f.pid, snap), 0);
        t[i] = now_ns() - t0;
        cr_assert_eq(ptrace(PTRACE_CONT, f.pid, NULL, NULL), 0);
    }
    qsort(t, N, sizeof(t[0]), cmp_u64);
    cr_log_info("capture p50 %llu ns", (unsigned long long)t[N / 2]);
    cr_assert_lt(t[N / 2], 500000, "capture p50 %llu ns", (unsigned long long)t[N / 2]);
    spinner_stop(&k);
}
