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
