/* pystack.h: CPython 3.11+ stacks and GIL state of another process, read with process_vm_readv without stopping it. */
#ifndef POOLPROF_PYSTACK_H
#define POOLPROF_PYSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Structure offsets come from tables generated from each version's headers
 * (pylayouts/py3XX.inc, by pylayouts/gen.c: 3.11 and 3.12, never typed in by
 * hand) or, from 3.13 on, from the target's own _PyRuntime.debug_offsets.
 * Works for a statically linked interpreter (Debian's /usr/bin/python3.11:
 * _PyRuntime in the executable's .dynsym) and for a shared libpython3.X.so
 * (pyenv's). Every read may race with the target: a torn read yields a
 * shorter stack or PROF_EIO, never a crash or a wrong pointer dereferenced
 * locally.
 */
struct prof_py;

struct prof_py_frame {
    const char *func;      /* co_name          (owned by the prof_py; stable until prof_py_close) */
    const char *qualname;  /* co_qualname */
    const char *file;      /* co_filename */
    int line;              /* current line, from prev_instr and co_linetable; 0 if unknown */
};

struct prof_py_thread {
    pid_t tid;             /* PyThreadState.native_thread_id */
    int holds_gil;         /* the GIL is locked and this thread state is its last holder */
    size_t nframes;
    const struct prof_py_frame *frames;   /* innermost first */
};

/* Recognise CPython in pid (executable or a mapped libpython3.X.so). Returns
 * 0; PROF_ENOENT when pid is not a CPython process (no _PyRuntime symbol);
 * PROF_ENOTSUP when it is a CPython whose layout the reader does not know
 * (why receives a one-line reason, e.g. "CPython 3.10 is not supported (3.11
 * or later only)"); PROF_ESRCH if pid is gone; PROF_ACCES when its memory
 * cannot be read. */
int prof_py_open(pid_t pid, struct prof_py **out, char *why, size_t whycap);
/* prof_py_open, and *needs_lib = 1 when the executable names a libpython3.* among the
 * libraries it needs (DT_NEEDED): the dynamic linker is about to map it, if it has not yet. */
int prof_py_probe(pid_t pid, struct prof_py **out, int *needs_lib, char *why, size_t whycap);
void prof_py_close(struct prof_py *py);

/* Does pid map a libpython3.* (other than as its executable)? 1, 0, or PROF_ESRCH /
 * another error. Reads only /proc/PID/maps: how to tell cheaply that a process whose
 * executable is not CPython has loaded the interpreter since it was last looked at. */
int prof_py_libpython_mapped(pid_t pid);

/* A reader for a CPython whose _PyRuntime is at runtime in pid and whose Py_Version is
 * version, found by other means than its symbols (and how the tests feed it synthetic
 * structures): no type checks of the objects read. 0, PROF_ENOTSUP (why said) or an error. */
int prof_py_open_runtime(pid_t pid, uint64_t runtime, unsigned long version, struct prof_py **out, char *why,
                         size_t whycap);

/* A reader for pid, a fork of parent's process that has not exec'd: a fork's address
 * space is its parent's, so the addresses prof_py_open found hold there too, and
 * nothing is read from /proc or the ELF file again. 0 or PROF_ENOMEM. */
int prof_py_fork(const struct prof_py *parent, pid_t pid, struct prof_py **out);

/* Read every thread state of the main interpreter. *threads is owned by py and
 * valid until the next call. Returns 0, PROF_ESRCH (process gone), PROF_EIO
 * (memory changed under us: try again next tick) or PROF_EFORMAT (three walks
 * found thread states that do not point back at their interpreter: the layout
 * is not this interpreter's; give up on this process). */
int prof_py_sample(struct prof_py *py, const struct prof_py_thread **threads, size_t *n);

/* The same, but a thread for which still(ctx, tid) returns 1 (it has not run since the
 * previous sample) keeps the frames that sample read, without a read: on a tree of
 * mostly waiting threads those reads were a quarter of the tracer's CPU. still is only
 * asked about a thread that had frames at the same place in the previous sample. */
int prof_py_sample_since(struct prof_py *py, int (*still)(void *ctx, pid_t tid), void *ctx,
                         const struct prof_py_thread **threads, size_t *n);

/* The GIL's condition variable and mutex in the target (gil->cond and gil->mutex)
 * with their sizes: a thread blocked in futex() on an address inside either is
 * waiting for the GIL. All 0 while not known yet: a GIL kept in the interpreter
 * (3.13 and later) is known from the first sample that finds the interpreter. */
void prof_py_gil_addrs(const struct prof_py *py, uint64_t *cond, uint64_t *cond_len,
                       uint64_t *mutex, uint64_t *mutex_len);

/* What a sample reads first, without the thread states: the interpreter (so, from 3.13 on,
 * where its GIL is: prof_py_gil_addrs) and the GIL's state (prof_py_has_gil). For a sampler
 * that takes no Python stacks. 0, PROF_ESRCH or PROF_EIO. */
int prof_py_peek(struct prof_py *py);

/* The interpreter's version as major * 100 + minor (311, 312, 313, ...). */
int prof_py_version(const struct prof_py *py);

/* 1 for a free-threaded build (Py_GIL_DISABLED), whose GIL may be off or switched on at run time. */
int prof_py_free_threaded(const struct prof_py *py);

/* 0 when the last sample found a free-threaded build running without its GIL (the GIL's
 * figures are then absent, not zero); 1 otherwise. */
int prof_py_has_gil(const struct prof_py *py);

#endif
