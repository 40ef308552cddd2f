/* test_pystack.c: the ELF symbol reader on this test binary, and CPython 3.11 stacks read from live Debian and pyenv interpreters. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format/elfsym.h"
#include "prof.h"
#include "pystack.h"

#define DEBIAN_PY "/usr/bin/python3"
#define PYENV_PY "/root/.pyenv/versions/3.11.7/bin/python3.11"

/* ---- elfsym ---- */

/* A local function with a known name, kept out of line so it has its own symbol. */
__attribute__((noinline, used)) static int elfsym_target(int x)
{
    return x * 3 + 1;
}

/* Load bias and file offset of a text address of this process, from /proc/self/maps. */
static int self_mapping(uintptr_t addr, uint64_t *file_off)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 128];
    int rc = -1;

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long s, e, off;
        if (sscanf(line, "%llx-%llx %*s %llx", &s, &e, &off) == 3 && addr >= s && addr < e) {
            *file_off = addr - s + off;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

Test(elfsym, symbolize_own_function)
{
    struct prof_elf *e;
    uint64_t v, off, fo, v2;
    const char *name;

    cr_assert_eq(prof_elf_open("/proc/self/exe", &e), 0);
    cr_assert_eq(prof_elf_symbol_value(e, "elfsym_target", &v), 0);
    cr_assert_eq(prof_elf_symbolize(e, v + 3, &name, &off), 0);
    cr_expect_str_eq(name, "elfsym_target");
    cr_expect_eq(off, 3);
    cr_assert_eq(prof_elf_symbolize(e, v, &name, &off), 0);
    cr_expect_str_eq(name, "elfsym_target");
    cr_expect_eq(off, 0);

    /* The file offset of the function's run-time address maps back to its link-time address. */
    uintptr_t addr = (uintptr_t)&elfsym_target;
    cr_assert_eq(self_mapping(addr, &fo), 0);
    cr_assert_eq(prof_elf_offset_to_vaddr(e, fo, &v2), 0);
    cr_expect_eq(v2, v, "offset_to_vaddr %#llx, symbol %#llx", (unsigned long long)v2, (unsigned long long)v);
    cr_expect_eq(prof_elf_is_dyn(e), 1);  /* tests are built as PIE */
    cr_expect_eq((addr - v) % (uint64_t)sysconf(_SC_PAGESIZE), 0, "load bias is page aligned");

    cr_expect_eq(prof_elf_symbol_value(e, "no_such_symbol_anywhere", &v), PROF_ENOENT);
    cr_expect_eq(prof_elf_offset_to_vaddr(e, 1ULL << 50, &v), PROF_ENOENT);
    cr_expect_eq(prof_elf_symbolize(e, 0, &name, &off), PROF_ENOENT);
    prof_elf_close(e);
    cr_expect_eq(elfsym_target(1), 4);
}

Test(elfsym, dynsym_of_stripped_python)
{
    struct prof_elf *e;
    uint64_t v;
    const char *name;
    uint64_t off;

    if (access(DEBIAN_PY, R_OK) != 0)
        cr_skip_test("no " DEBIAN_PY);
    cr_assert_eq(prof_elf_open(DEBIAN_PY, &e), 0);
    cr_expect_eq(prof_elf_symbol_value(e, "_PyRuntime", &v), 0);
    cr_expect_neq(v, 0);
    cr_assert_eq(prof_elf_symbol_value(e, "PyEval_EvalCode", &v), 0);
    cr_assert_eq(prof_elf_symbolize(e, v + 1, &name, &off), 0);
    cr_expect_str_eq(name, "PyEval_EvalCode");
    cr_expect_eq(off, 1);
    prof_elf_close(e);
}

/* DT_NEEDED: this test binary needs Criterion and no libpython; the two interpreters differ. */
Test(elfsym, needed_libraries)
{
    struct prof_elf *e;

    cr_assert_eq(prof_elf_open("/proc/self/exe", &e), 0);
    cr_expect_eq(prof_elf_needs(e, "libcriterion."), 1);
    cr_expect_eq(prof_elf_needs(e, "libpython3."), 0);
    cr_expect_eq(prof_elf_needs(e, "libcriterion.so.999"), 0);
    prof_elf_close(e);
    if (access(DEBIAN_PY, R_OK) == 0) {
        cr_assert_eq(prof_elf_open(DEBIAN_PY, &e), 0);
        cr_expect_eq(prof_elf_needs(e, "libpython3."), 0, "the static interpreter");
        prof_elf_close(e);
    }
    if (access(PYENV_PY, R_OK) != 0)
        cr_skip_test("no " PYENV_PY);
    cr_assert_eq(prof_elf_open(PYENV_PY, &e), 0);
    cr_expect_eq(prof_elf_needs(e, "libpython3."), 1, "python3 built with a shared libpython");
    prof_elf_close(e);
}

/* Write the first len bytes of src to a temporary file; returns its path (static buffer). */
static const char *truncated_copy(const char *src, size_t len, int corrupt_shdrs)
{
    static char path[64];
    int in = open(src, O_RDONLY), out;
    struct stat st;

    cr_assert_geq(in, 0);
    cr_assert_eq(fstat(in, &st), 0);
    if (len > (size_t)st.st_size)
        len = (size_t)st.st_size;
    char *buf = malloc((size_t)st.st_size);
    cr_assert_not_null(buf);
    cr_assert_eq(read(in, buf, (size_t)st.st_size), st.st_size);
    close(in);
    if (corrupt_shdrs) {
        /* Scribble over the section headers: absurd offsets, sizes and links. */
        uint64_t shoff;
        memcpy(&shoff, buf + 0x28, 8);
        srand(corrupt_shdrs);
        for (uint64_t i = shoff; i < (uint64_t)st.st_size; i++)
            if (rand() % 7 == 0)
                buf[i] = (char)rand();
    }
    strcpy(path, "/tmp/test_pystack_elf.XXXXXX");
    out = mkstemp(path);
    cr_assert_geq(out, 0);
    cr_assert_eq(write(out, buf, len), (ssize_t)len);
    close(out);
    free(buf);
    return path;
}

Test(elfsym, malformed_files)
{
    static const size_t lens[] = {0, 10, 63, 64, 200, 4096, 100000};
    struct prof_elf *e;

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        const char *p = truncated_copy("/proc/self/exe", lens[i], 0);
        cr_expect_eq(prof_elf_open(p, &e), PROF_EFORMAT, "truncated to %zu bytes", lens[i]);
        unlink(p);
    }
    /* Corrupted section headers: any answer but a crash; a successful open must still answer queries. */
    for (int seed = 1; seed <= 20; seed++) {
        const char *p = truncated_copy("/proc/self/exe", SIZE_MAX, seed);
        if (prof_elf_open(p, &e) == 0) {
            uint64_t v, off;
            const char *name;
            prof_elf_symbol_value(e, "elfsym_target", &v);
            prof_elf_symbolize(e, 0x1000, &name, &off);
            prof_elf_needs(e, "libc.");
            prof_elf_close(e);
        }
        unlink(p);
    }
    cr_expect_eq(prof_elf_open("/etc/hostname", &e), PROF_EFORMAT);
    cr_expect_eq(prof_elf_open("/no/such/file", &e), PROF_ENOENT);
}

/* ---- pystack ---- */

static char script[PATH_MAX];

/* The fixture script, next to this source file (tests/fixtures/py/). */
static const char *script_path(void)
{
    if (!script[0]) {
        char src[PATH_MAX];
        snprintf(src, sizeof(src), "%s", __FILE__);
        char *slash = strrchr(src, '/');
        cr_assert_not_null(slash);
        *slash = '\0';  /* tests/unit */
        slash = strrchr(src, '/');
        cr_assert_not_null(slash);
        *slash = '\0';  /* tests */
        char rel[PATH_MAX + 64];
        snprintf(rel, sizeof(rel), "%s/fixtures/py/pystack_target.py", src);
        /* The interpreter reports co_filename as given on its command line: pass the canonical path. */
        cr_assert_not_null(realpath(rel, script), "fixture %s", rel);
    }
    return script;
}

/* The line carrying "# LINE:<tag>" in the fixture. */
static int marker_line(const char *tag)
{
    char want[64], line[512];
    int n = 0;
    FILE *f = fopen(script_path(), "r");

    cr_assert_not_null(f);
    snprintf(want, sizeof(want), "# LINE:%s", tag);
    while (fgets(line, sizeof(line), f)) {
        n++;
        char *p = strstr(line, want);
        if (p && (p[strlen(want)] == '\n' || p[strlen(want)] == '\0' || p[strlen(want)] == ' ')) {
            fclose(f);
            return n;
        }
    }
    fclose(f);
    cr_assert_fail("no marker %s", tag);
    return 0;
}

struct child {
    pid_t pid;
    int spin_tid, waiter_tid, deep_tid;
};

/* Start `exe script` and wait (10 s at most) for its "ready spin=N waiter=M" line. */
static void child_start(const char *exe, struct child *c)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    const char *path = script_path();
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (c->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[256];
    size_t len = 0;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    while (!memchr(buf, '\n', len) && len < sizeof(buf) - 1 && poll(&pfd, 1, 10000) == 1) {
        ssize_t n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fds[0]);
    cr_assert_eq(sscanf(buf, "ready spin=%d waiter=%d deep=%d", &c->spin_tid, &c->waiter_tid, &c->deep_tid), 3,
                 "%s did not get ready: \"%s\"", exe, buf);
}

static void child_stop(struct child *c)
{
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
}

static const struct prof_py_thread *find_thread(const struct prof_py_thread *t, size_t n, int tid)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].tid == tid)
            return &t[i];
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The whole check for one interpreter: stacks, lines, files, thread ids and the GIL. */
static void check_interpreter(const char *exe)
{
    struct child c;
    struct prof_py *py;
    char why[128];
    const int l_spin = marker_line("spin"), l_middle = marker_line("middle"), l_outer = marker_line("outer"),
              l_module = marker_line("module"), l_waiter = marker_line("waiter"), l_gen = marker_line("gen"),
              l_deep0 = marker_line("deep0"), l_deep = marker_line("deep"), l_umlaut = marker_line("umlaut");

    if (access(exe, X_OK) != 0)
        cr_skip_test("no %s", exe);
    child_start(exe, &c);
    int rc = prof_py_open(c.pid, &py, why, sizeof(why));
    cr_assert_eq(rc, 0, "prof_py_open(%s): %s %s", exe, prof_strerror(rc), why);

    int spin_gil = 0;
    const int rounds = 50;
    for (int r = 0; r < rounds; r++) {
        const struct prof_py_thread *t;
        size_t n;
        cr_assert_eq(prof_py_sample(py, &t, &n), 0);
        cr_assert_eq(n, 3, "%s: %zu thread states", exe, n);
        /* The GIL's condition and mutex, known once a sample has found the interpreter. */
        uint64_t cond, cond_len, mutex, mutex_len;
        prof_py_gil_addrs(py, &cond, &cond_len, &mutex, &mutex_len);
        cr_expect_neq(cond, 0);
        cr_expect_gt(cond_len, 0);
        cr_expect_gt(mutex, cond);
        cr_expect_gt(mutex_len, 0);
        cr_expect_eq(prof_py_has_gil(py), 1);

        int holders = 0;
        for (size_t i = 0; i < n; i++)
            holders += t[i].holds_gil != 0;
        cr_expect_leq(holders, 1, "two GIL holders in one sample");

        const struct prof_py_thread *s = find_thread(t, n, c.spin_tid);
        cr_assert_not_null(s, "%s: no thread with native id %d", exe, c.spin_tid);
        cr_assert_eq(s->nframes, 4, "%s: spinning thread has %zu frames", exe, s->nframes);
        const char *want[] = {"spin", "middle", "outer", "<module>"};
        const int lines[] = {l_spin, l_middle, l_outer, l_module};
        for (int k = 0; k < 4; k++) {
            cr_assert_str_eq(s->frames[k].func, want[k], "%s: frame %d", exe, k);
            cr_expect_str_eq(s->frames[k].qualname, want[k]);
            cr_expect_str_eq(s->frames[k].file, script_path());
            cr_expect_eq(s->frames[k].line, lines[k], "%s: %s at line %d, want %d", exe, want[k],
                         s->frames[k].line, lines[k]);
        }
        spin_gil += s->holds_gil != 0;

        const struct prof_py_thread *w = find_thread(t, n, c.waiter_tid);
        cr_assert_not_null(w, "%s: no thread with native id %d", exe, c.waiter_tid);
        int seen = 0;
        for (size_t k = 0; k < w->nframes; k++) {
            if (strcmp(w->frames[k].func, "waiter") == 0) {
                seen = 1;
                cr_expect_eq(w->frames[k].line, l_waiter);
                cr_expect_str_eq(w->frames[k].file, script_path());
            }
        }
        cr_expect(seen, "%s: waiter not on the waiting thread's stack (innermost %s)", exe,
                  w->nframes ? w->frames[0].func : "-");
        /* A name with Latin-1 and wider characters (a str of 2-byte kind), as UTF-8. */
        int umlaut = 0;
        for (size_t k = 0; k < w->nframes; k++) {
            if (strcmp(w->frames[k].func, "auf_größe_ŵarten") == 0) {
                umlaut = 1;
                cr_expect_str_eq(w->frames[k].qualname, "auf_größe_ŵarten");
                cr_expect_eq(w->frames[k].line, l_umlaut);
            }
        }
        cr_expect(umlaut, "%s: the non-ASCII function is not on the waiting thread's stack", exe);
        cr_expect_eq(w->holds_gil, 0);
        cr_expect_gt(w->nframes, 1);
        cr_expect_str_eq(w->frames[0].func, "wait");  /* Condition.wait under Event.wait */

        /* A generator's frame (kept in its object) under 200 recursive calls, which span
         * more than one data-stack chunk: every frame, in order, with its line. */
        const struct prof_py_thread *d = find_thread(t, n, c.deep_tid);
        cr_assert_not_null(d, "%s: no thread with native id %d", exe, c.deep_tid);
        size_t g = d->nframes;
        for (size_t k = 0; k < d->nframes && g == d->nframes; k++)
            if (strcmp(d->frames[k].func, "gen") == 0)
                g = k;
        cr_assert_lt(g, d->nframes, "%s: no generator frame on the deep thread", exe);
        cr_expect_eq(d->frames[g].line, l_gen);
        cr_assert_gt(d->nframes, g + 1 + 200, "%s: %zu frames on the deep thread", exe, d->nframes);
        cr_expect_str_eq(d->frames[g + 1].func, "deep");
        cr_expect_eq(d->frames[g + 1].line, l_deep0);
        for (size_t k = g + 2; k <= g + 1 + 200; k++) {
            cr_assert_str_eq(d->frames[k].func, "deep", "%s: deep frame %zu is %s", exe, k, d->frames[k].func);
            cr_assert_eq(d->frames[k].line, l_deep, "%s: deep frame %zu at line %d", exe, k, d->frames[k].line);
        }
        sleep_ms(2);
    }
    cr_expect_gt(spin_gil, rounds / 2, "%s: spinning thread held the GIL in %d of %d samples", exe, spin_gil,
                 rounds);

    prof_py_close(py);
    child_stop(&c);
}

Test(pystack, debian_static_interpreter, .timeout = 60)
{
    check_interpreter(DEBIAN_PY);
}

Test(pystack, pyenv_shared_libpython, .timeout = 60)
{
    check_interpreter(PYENV_PY);
}

/* 3.12: the table generated from its headers (pylayouts/py312.inc). */
Test(pystack, python312, .timeout = 60)
{
    check_interpreter("/root/.pyenv/versions/3.12.1/bin/python3.12");
}

/* 3.13: the offsets its _PyRuntime.debug_offsets give. */
Test(pystack, python313, .timeout = 60)
{
    check_interpreter("/root/.pyenv/versions/3.13.0/bin/python3.13");
}

/* prof_py_sample_since: a thread said not to have run keeps the frames of the previous sample
 * (a local mark on them survives: nothing was read); any other thread is read again. */
struct still_ctx {
    int keep_tid, asked;
};

static int still_cb(void *ctx, pid_t tid)
{
    struct still_ctx *c = ctx;
    c->asked++;
    return tid == c->keep_tid;
}

Test(pystack, sample_since_keeps_threads_that_did_not_run, .timeout = 60)
{
    struct child c;
    struct prof_py *py;
    char why[128];
    const struct prof_py_thread *t;
    size_t n;

    child_start(DEBIAN_PY, &c);
    cr_assert_eq(prof_py_open(c.pid, &py, why, sizeof(why)), 0, "%s", why);
    struct still_ctx sc = {c.waiter_tid, 0};
    cr_assert_eq(prof_py_sample_since(py, still_cb, &sc, &t, &n), 0);
    cr_expect_eq(sc.asked, 0, "the first sample has nothing to keep");
    cr_assert_eq(n, 3);
    const struct prof_py_thread *w = find_thread(t, n, c.waiter_tid), *sp = find_thread(t, n, c.spin_tid);
    cr_assert(w && sp && w->nframes > 0 && sp->nframes > 0);
    const int l_spin = marker_line("spin"), l_wait0 = w->frames[0].line;  /* inside threading.py */
    cr_assert_gt(l_wait0, 0);
    ((struct prof_py_frame *)w->frames)[0].line = -7;   /* marks: a read would overwrite them */
    ((struct prof_py_frame *)sp->frames)[0].line = -7;

    cr_assert_eq(prof_py_sample_since(py, still_cb, &sc, &t, &n), 0);
    cr_expect_eq(sc.asked, 3, "asked about every thread with frames in the same place");
    w = find_thread(t, n, c.waiter_tid);
    sp = find_thread(t, n, c.spin_tid);
    cr_assert(w && sp);
    cr_expect_eq(w->frames[0].line, -7, "the still thread's frames were kept");
    cr_expect_eq(sp->frames[0].line, l_spin, "the running thread's frames were read again");

    sc.keep_tid = -1;
    cr_assert_eq(prof_py_sample_since(py, still_cb, &sc, &t, &n), 0);
    w = find_thread(t, n, c.waiter_tid);
    cr_assert(w);
    cr_expect_eq(w->frames[0].line, l_wait0, "read again once it is not said to be still");
    prof_py_close(py);
    child_stop(&c);
}

/* A child running exe with up to two arguments, and its end. */
static pid_t spawn(const char *exe, const char *arg1, const char *arg2)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl(exe, exe, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(pystack, not_python)
{
    struct prof_py *py;
    char why[128];
    pid_t pid = spawn("/bin/sleep", "30", NULL);

    sleep_ms(100);  /* let exec happen */
    cr_expect_eq(prof_py_open(pid, &py, why, sizeof(why)), PROF_ENOENT);
    reap(pid);
    cr_expect_eq(prof_py_open(pid, &py, why, sizeof(why)), PROF_ESRCH);
}

/*
 * prof_py_libpython_mapped, the sampler's repeated look at processes that are not CPython: no
 * for a native program and for the statically linked interpreter (its executable is no
 * libpython), yes once a program has dlopen'ed one, and the process's end told apart.
 */
#define PYENV_LIBPYTHON "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"

Test(pystack, libpython_mapped, .timeout = 30)
{
    pid_t pid = spawn("/bin/sleep", "30", NULL);
    sleep_ms(100);
    cr_expect_eq(prof_py_libpython_mapped(pid), 0, "sleep");
    reap(pid);
    cr_expect_eq(prof_py_libpython_mapped(pid), PROF_ESRCH);

    if (access(DEBIAN_PY, X_OK) == 0) {
        pid = spawn(DEBIAN_PY, "-c", "import time; time.sleep(30)");
        sleep_ms(300);
        cr_expect_eq(prof_py_libpython_mapped(pid), 0, "the static interpreter maps no libpython");
        reap(pid);
    }

    if (access(PYENV_LIBPYTHON, R_OK) != 0)
        cr_skip_test("no " PYENV_LIBPYTHON);
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        if (!dlopen(PYENV_LIBPYTHON, RTLD_NOW | RTLD_LOCAL))
            _exit(1);
        for (;;)
            pause();
    }
    close(go[0]);
    sleep_ms(50);
    cr_expect_eq(prof_py_libpython_mapped(pid), 0, "before the dlopen");
    cr_assert_eq(write(go[1], "x", 1), 1);
    int rc = 0;
    for (int i = 0; i < 200 && rc == 0; i++) {
        sleep_ms(10);
        rc = prof_py_libpython_mapped(pid);
    }
    cr_expect_eq(rc, 1, "after the dlopen: %d", rc);
    close(go[1]);
    reap(pid);
}

/* Other CPython versions (pyenv builds) are recognised and refused with a reason. */
static void check_unsupported(const char *exe, const char *version)
{
    struct prof_py *py;
    char why[128] = "";

    if (access(exe, X_OK) != 0)
        cr_skip_test("no %s", exe);
    pid_t pid = spawn(exe, "-c", "import time; time.sleep(30)");
    int rc = PROF_ENOENT;
    /* Until the interpreter has mapped libpython it looks like anything else. */
    for (int i = 0; i < 100 && rc == PROF_ENOENT; i++) {
        sleep_ms(20);
        rc = prof_py_open(pid, &py, why, sizeof(why));
    }
    reap(pid);
    cr_expect_eq(rc, PROF_ENOTSUP, "%s: %s", exe, prof_strerror(rc));
    cr_expect(strstr(why, version) != NULL, "why: \"%s\"", why);
}


Test(pystack, python310_refused)
{
    check_unsupported("/root/.pyenv/versions/3.10.13/bin/python3.10", "3.10");
}

/* ---- a synthetic CPython of a made-up future version, described by its _Py_DebugOffsets ---- */

/*
 * The structures of a "CPython 3.15" built in this process's memory and read back through
 * process_vm_readv on ourselves: its _Py_DebugOffsets (3.13's form) give offsets unlike any
 * real version's, so the reader can only get the frames right by following them. Names,
 * files and lines are known; so is the GIL's holder.
 */
struct dbg {   /* _Py_DebugOffsets, 3.13's form: what the parser reads */
    char cookie[8];
    uint64_t version, free_threaded;
    uint64_t rt[3];          /* size, finalizing, interpreters_head */
    uint64_t is[13];         /* size, id, next, threads_head, gc, modules, sysdict, builtins, ceval_gil,
                                gil_runtime_state, gil_enabled, gil_locked, gil_holder */
    uint64_t ts[9];          /* size, prev, next, interp, current_frame, thread_id, native_thread_id,
                                datastack_chunk, status */
    uint64_t fr[6];          /* size, previous, executable, instr_ptr, localsplus, owner */
    uint64_t co[10];         /* size, filename, name, qualname, linetable, firstlineno, argcount,
                                localsplusnames, localspluskinds, co_code_adaptive */
    uint64_t ob[2];          /* size, ob_type */
    uint64_t other[4 + 3 + 3 + 3 + 2 + 3];   /* type, tuple, list, dict, float, long: not read */
    uint64_t by[3];          /* size, ob_size, ob_sval */
    uint64_t un[4];          /* size, state, length, asciiobject_size */
    uint64_t gc[2];
};

/* Offsets of the made-up version (bytes into each synthetic structure). */
enum {
    RT_SIZE = 2048, RT_HEAD = 1032,
    IS_SIZE = 4096, IS_NEXT = 24, IS_THREADS = 3000, IS_GIL_ENABLED = 3400, IS_GIL_LOCKED = 3520, IS_GIL_HOLDER = 3504,
    TS_SIZE = 512, TS_NEXT = 40, TS_INTERP = 48, TS_FRAME = 200, TS_NATIVE = 328, TS_CHUNK = 400,
    FR_SIZE = 104, FR_PREV = 16, FR_EXEC = 32, FR_INSTR = 64, FR_LOCALS = 96, FR_OWNER = 90,
    CO_SIZE = 400, CO_FILE = 160, CO_NAME = 176, CO_QUAL = 192, CO_LT = 208, CO_FIRST = 100, CO_CODE = 256,
    OB_SIZE = 24, OB_TYPE = 16,
    BY_SIZE = 64, BY_LEN = 24, BY_SVAL = 40,
    UN_SIZE = 72, UN_STATE = 48, UN_LEN = 32, UN_ASCII = 64,
};

struct synth {
    _Alignas(16) unsigned char rt[RT_SIZE];
    _Alignas(16) unsigned char is[IS_SIZE];
    _Alignas(16) unsigned char ts[TS_SIZE];
    _Alignas(16) unsigned char fr[2][FR_SIZE + 64];
    _Alignas(16) unsigned char co[2][CO_SIZE];
    _Alignas(16) unsigned char str[6][UN_ASCII + 64];
    _Alignas(16) unsigned char lt[2][BY_SVAL + 64];
};

static void put64(unsigned char *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, 8);
}

static void put32(unsigned char *b, size_t off, uint32_t v)
{
    memcpy(b + off, &v, 4);
}

/* A compact ASCII str in the layout above (3.12+ state bits: kind 1 at bit 2, compact bit 5, ascii bit 6). */
static uint64_t synth_str(unsigned char *o, const char *s)
{
    memset(o, 0, UN_ASCII + 64);
    put64(o, UN_LEN, strlen(s));
    put32(o, UN_STATE, (1u << 2) | (1u << 5) | (1u << 6));
    memcpy(o + UN_ASCII, s, strlen(s));
    return (uint64_t)(uintptr_t)o;
}

/* A line table (3.11+ form): `units` code units with no column, each entry a line delta of `delta`. */
static uint64_t synth_lt(unsigned char *o, const int *deltas, const int *units, int n)
{
    memset(o, 0, BY_SVAL + 64);
    unsigned char *p = o + BY_SVAL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        p[len++] = (unsigned char)(0x80 | (13 << 3) | (units[i] - 1));
        unsigned v = deltas[i] < 0 ? ((unsigned)-deltas[i] << 1) | 1 : (unsigned)deltas[i] << 1;
        p[len++] = (unsigned char)v;   /* small deltas: one 6-bit group */
    }
    put64(o, BY_LEN, len);
    return (uint64_t)(uintptr_t)o;
}

static uint64_t synth_code(struct synth *S, int k, const char *name, const char *file, int first, uint64_t lt)
{
    unsigned char *c = S->co[k];
    memset(c, 0, CO_SIZE);
    put64(c, CO_NAME, synth_str(S->str[3 * k], name));
    put64(c, CO_QUAL, synth_str(S->str[3 * k + 1], name));
    put64(c, CO_FILE, synth_str(S->str[3 * k + 2], file));
    put64(c, CO_LT, lt);
    put32(c, CO_FIRST, (uint32_t)first);
    return (uint64_t)(uintptr_t)c;
}

static struct dbg synth_dbg(uint64_t version, int free_threaded)
{
    struct dbg d;
    memset(&d, 0, sizeof d);
    memcpy(d.cookie, "xdebugpy", 8);
    d.version = version;
    d.free_threaded = (uint64_t)free_threaded;
    d.rt[0] = RT_SIZE, d.rt[2] = RT_HEAD;
    d.is[0] = IS_SIZE, d.is[2] = IS_NEXT, d.is[3] = IS_THREADS, d.is[10] = IS_GIL_ENABLED, d.is[11] = IS_GIL_LOCKED,
    d.is[12] = IS_GIL_HOLDER;
    d.ts[0] = TS_SIZE, d.ts[2] = TS_NEXT, d.ts[3] = TS_INTERP, d.ts[4] = TS_FRAME, d.ts[6] = TS_NATIVE, d.ts[7] = TS_CHUNK;
    d.fr[0] = FR_SIZE, d.fr[1] = FR_PREV, d.fr[2] = FR_EXEC, d.fr[3] = FR_INSTR, d.fr[4] = FR_LOCALS, d.fr[5] = FR_OWNER;
    d.co[0] = CO_SIZE, d.co[1] = CO_FILE, d.co[2] = CO_NAME, d.co[3] = CO_QUAL, d.co[4] = CO_LT, d.co[5] = CO_FIRST,
    d.co[9] = CO_CODE;
    d.ob[0] = OB_SIZE, d.ob[1] = OB_TYPE;
    d.by[0] = BY_SIZE, d.by[1] = BY_LEN, d.by[2] = BY_SVAL;
    d.un[0] = UN_SIZE, d.un[1] = UN_STATE, d.un[2] = UN_LEN, d.un[3] = UN_ASCII;
    return d;
}

/* Lay out runtime -> interpreter -> one thread state -> frames inner (work, line 12) and outer (main, line 31). */
static void synth_build(struct synth *S, const struct dbg *d)
{
    memset(S, 0, sizeof *S);
    memcpy(S->rt, d, sizeof *d);
    put64(S->rt, RT_HEAD, (uint64_t)(uintptr_t)S->is);
    put64(S->is, IS_THREADS, (uint64_t)(uintptr_t)S->ts);
    put32(S->is, IS_GIL_LOCKED, 1);
    put64(S->is, IS_GIL_HOLDER, (uint64_t)(uintptr_t)S->ts);
    put64(S->ts, TS_INTERP, (uint64_t)(uintptr_t)S->is);
    put64(S->ts, TS_NATIVE, 4242);
    put64(S->ts, TS_FRAME, (uint64_t)(uintptr_t)S->fr[0]);

    /* work() starts at line 10: units 0-1 on line 10, 2-4 on line 12 (delta +2), 5 on line 11 (delta -1). */
    static const int d0[] = {0, 2, -1}, u0[] = {2, 3, 1};
    uint64_t c0 = synth_code(S, 0, "work", "/srv/app/stage.py", 10, synth_lt(S->lt[0], d0, u0, 3));
    /* main() starts at line 30: units 0-3 on line 31 (delta +1). */
    static const int d1[] = {1}, u1[] = {4};
    uint64_t c1 = synth_code(S, 1, "main", "/srv/app/run.py", 30, synth_lt(S->lt[1], d1, u1, 1));
    /* The executable is tagged in its low bit, as 3.14's _PyStackRef is. */
    put64(S->fr[0], FR_EXEC, c0 | 1);
    put64(S->fr[0], FR_INSTR, c0 + CO_CODE + 2 * 3);   /* unit 3: line 12 */
    put64(S->fr[0], FR_PREV, (uint64_t)(uintptr_t)S->fr[1]);
    put64(S->fr[1], FR_EXEC, c1);
    put64(S->fr[1], FR_INSTR, c1 + CO_CODE + 2 * 2);   /* unit 2: line 31 */
}

Test(pystack, future_version_by_its_debug_offsets)
{
    static struct synth S;
    struct dbg d = synth_dbg(0x030F00F0, 0);   /* "3.15.0" */
    synth_build(&S, &d);
    struct prof_py *py;
    char why[160];
    int rc = prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030F00F0, &py, why, sizeof why);
    cr_assert_eq(rc, 0, "%s: %s", prof_strerror(rc), why);
    cr_expect_eq(prof_py_version(py), 315);

    const struct prof_py_thread *t;
    size_t n;
    cr_assert_eq(prof_py_sample(py, &t, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(t[0].tid, 4242);
    cr_expect_eq(t[0].holds_gil, 1);
    cr_assert_eq(t[0].nframes, 2);
    cr_expect_str_eq(t[0].frames[0].func, "work");
    cr_expect_str_eq(t[0].frames[0].file, "/srv/app/stage.py");
    cr_expect_eq(t[0].frames[0].line, 12);
    cr_expect_str_eq(t[0].frames[1].func, "main");
    cr_expect_str_eq(t[0].frames[1].file, "/srv/app/run.py");
    cr_expect_eq(t[0].frames[1].line, 31);
    cr_expect_eq(prof_py_has_gil(py), 1);

    /* The GIL's condition and mutex: where they sit after `locked` in every version. */
    uint64_t cond, cond_len, mutex, mutex_len;
    prof_py_gil_addrs(py, &cond, &cond_len, &mutex, &mutex_len);
    cr_expect_gt(cond, (uint64_t)(uintptr_t)S.is + IS_GIL_LOCKED);
    cr_expect_gt(mutex, cond);

    /* The thread moves on: instruction 5 of work is line 11; the GIL is released. */
    put64(S.fr[0], FR_INSTR, (uint64_t)(uintptr_t)S.co[0] + CO_CODE + 2 * 5);
    put32(S.is, IS_GIL_LOCKED, 0);
    cr_assert_eq(prof_py_sample(py, &t, &n), 0);
    cr_expect_eq(t[0].frames[0].line, 11);
    cr_expect_eq(t[0].holds_gil, 0);
    prof_py_close(py);
}

Test(pystack, free_threaded_build_without_its_gil)
{
    static struct synth S;
    struct dbg d = synth_dbg(0x030D00F0, 1);   /* a 3.13t */
    synth_build(&S, &d);
    struct prof_py *py;
    char why[160];
    cr_assert_eq(prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030D00F0, &py, why, sizeof why), 0, "%s", why);
    const struct prof_py_thread *t;
    size_t n;
    put32(S.is, IS_GIL_ENABLED, 0);
    cr_assert_eq(prof_py_sample(py, &t, &n), 0);
    cr_expect_eq(prof_py_has_gil(py), 0, "GIL disabled: absent");
    cr_expect_eq(t[0].holds_gil, 0, "no thread holds an absent GIL");
    cr_expect_str_eq(t[0].frames[0].func, "work");
    put32(S.is, IS_GIL_ENABLED, 1);   /* switched on at run time (an extension that needs it) */
    cr_assert_eq(prof_py_sample(py, &t, &n), 0);
    cr_expect_eq(prof_py_has_gil(py), 1);
    cr_expect_eq(t[0].holds_gil, 1);
    prof_py_close(py);
}

Test(pystack, debug_offsets_refused_when_wrong)
{
    static struct synth S;
    struct prof_py *py;
    char why[200];

    /* No cookie: not a _Py_DebugOffsets block. */
    struct dbg d = synth_dbg(0x030F00F0, 0);
    memcpy(d.cookie, "notdebug", 8);
    synth_build(&S, &d);
    cr_expect_eq(prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030F00F0, &py, why, sizeof why), PROF_ENOTSUP);
    cr_expect_str_eq(why, "CPython 3.15 is not supported (no _Py_DebugOffsets in its _PyRuntime)");

    /* An offset outside its structure: a layout the parser's form does not describe. */
    d = synth_dbg(0x030F00F0, 0);
    d.is[3] = IS_SIZE + 8;
    synth_build(&S, &d);
    cr_expect_eq(prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030F00F0, &py, why, sizeof why), PROF_ENOTSUP);
    cr_expect(strstr(why, "CPython 3.15") && strstr(why, "interpreter field outside its structure"), "why: %s", why);

    /* The block's version is not the interpreter's. */
    d = synth_dbg(0x030E00F0, 0);
    synth_build(&S, &d);
    cr_expect_eq(prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030F00F0, &py, why, sizeof why), PROF_ENOTSUP);
    cr_expect(strstr(why, "say version 3.14") != NULL, "why: %s", why);

    /* Offsets that pass every check but are not this interpreter's: its thread state does not
     * point back at it. Three walks say so (one may be torn), then the reader gives up. */
    d = synth_dbg(0x030F00F0, 0);
    synth_build(&S, &d);
    put64(S.ts, TS_INTERP, 0xdead0000);
    cr_assert_eq(prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030F00F0, &py, why, sizeof why), 0);
    const struct prof_py_thread *t;
    size_t n;
    cr_expect_eq(prof_py_sample(py, &t, &n), PROF_EIO);
    cr_expect_eq(prof_py_sample(py, &t, &n), PROF_EIO);
    cr_expect_eq(prof_py_sample(py, &t, &n), PROF_EFORMAT);
    prof_py_close(py);

    /* Before 3.11 (no Py_Version, so no table) and 3.12 without a block read from its table. */
    cr_expect_eq(prof_py_open_runtime(getpid(), (uint64_t)(uintptr_t)S.rt, 0x030A00F0, &py, why, sizeof why), PROF_ENOTSUP);
    cr_expect_str_eq(why, "CPython 3.10 is not supported (3.11 or later only)");
}

/* ---- the layouts themselves ---- */

#include "pylayout.h"

/* The shim finds the GIL's switch mutex from its mutex with the first table's offset: every table must agree. */
Test(pylayout, tables_agree_where_the_shim_assumes)
{
    const struct py_layout *t311 = py_layout_table(0x030B0000), *t312 = py_layout_table(0x030C07F0),
                           *t313 = py_layout_table(0x030D00F0);
    cr_assert(t311 && t312 && t313);
    cr_expect_eq(py_layout_table(0x030A0000), NULL);
    cr_expect_eq(py_layout_newest(), t313);
    cr_expect_eq(t311->gil_switch_mutex_from_mutex, t312->gil_switch_mutex_from_mutex);
    cr_expect_eq(t311->gil_switch_mutex_from_mutex, t313->gil_switch_mutex_from_mutex);
    struct py_spans sp;
    cr_expect_eq(py_layout_spans(t311, &sp), 0);
    cr_expect_eq(py_layout_spans(t312, &sp), 0);
    cr_expect_eq(py_layout_spans(t313, &sp), 0);
}

/*
 * A real 3.13's _Py_DebugOffsets (libpython's _PyRuntime as initialised in its data, loaded
 * here without starting the interpreter) give, for every field both describe, the offsets
 * generated from the 3.13 headers: the parser reads the block's form right.
 */
#define PY313_LIB "/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0"

Test(pylayout, debug_offsets_of_a_real_313_match_its_headers)
{
    if (access(PY313_LIB, R_OK) != 0)
        cr_skip_test("no " PY313_LIB);
    void *h = dlopen(PY313_LIB, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    const void *rt = dlsym(h, "_PyRuntime");
    cr_assert_not_null(rt);
    struct py_layout L;
    char why[160] = "";
    cr_assert_eq(py_layout_from_debug_offsets(rt, py_layout_debug_offsets_size(), &L, why, sizeof why), 0, "%s", why);
    const struct py_layout *T = py_layout_table(0x030D0000);
    cr_expect_eq(L.version, T->version);
    cr_expect_eq(L.free_threaded, 0);
    cr_expect_eq(L.rt_interp_head, T->rt_interp_head);
    cr_expect_eq(L.interp_next, T->interp_next);
    cr_expect_eq(L.interp_threads_head, T->interp_threads_head);
    cr_expect_eq(L.ts_next, T->ts_next);
    cr_expect_eq(L.ts_interp, T->ts_interp);
    cr_expect_eq(L.ts_current_frame, T->ts_current_frame);
    cr_expect_eq(L.ts_native_thread_id, T->ts_native_thread_id);
    cr_expect_eq(L.ts_datastack_chunk, T->ts_datastack_chunk);
    cr_expect_eq(L.ts_datastack_top, T->ts_datastack_top);
    cr_expect_eq(L.fr_code, T->fr_code);
    cr_expect_eq(L.fr_instr, T->fr_instr);
    cr_expect_eq(L.fr_previous, T->fr_previous);
    cr_expect_eq(L.fr_owner, T->fr_owner);
    cr_expect_eq(L.fr_size, T->fr_size);
    cr_expect_eq(L.ob_type, T->ob_type);
    cr_expect_eq(L.var_size, T->var_size);
    cr_expect_eq(L.bytes_sval, T->bytes_sval);
    cr_expect_eq(L.co_filename, T->co_filename);
    cr_expect_eq(L.co_name, T->co_name);
    cr_expect_eq(L.co_qualname, T->co_qualname);
    cr_expect_eq(L.co_linetable, T->co_linetable);
    cr_expect_eq(L.co_firstlineno, T->co_firstlineno);
    cr_expect_eq(L.co_firsttraceable, T->co_firsttraceable);
    cr_expect_eq(L.co_code_adaptive, T->co_code_adaptive);
    cr_expect_eq(L.str_length, T->str_length);
    cr_expect_eq(L.str_state, T->str_state);
    cr_expect_eq(L.str_ascii_size, T->str_ascii_size);
    cr_expect_eq(L.str_compact_size, T->str_compact_size);
    /* The GIL, counted from the main interpreter there and from _PyRuntime in the table. */
    cr_expect_eq(L.gil_locked - L.gil_holder, T->gil_locked - T->gil_holder);
    cr_expect_eq(L.gil_cond - L.gil_locked, T->gil_cond - T->gil_locked);
    cr_expect_eq(L.gil_mutex - L.gil_locked, T->gil_mutex - T->gil_locked);
    dlclose(h);
}
