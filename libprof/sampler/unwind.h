/* unwind.h: native stacks of a traced thread, copied while it is stopped and unwound with libunwind after it resumes. */
#ifndef POOLPROF_UNWIND_H
#define POOLPROF_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/*
 * The caller stops the thread (PTRACE_INTERRUPT), calls prof_unw_capture
 * (registers + the top of the stack, copied with process_vm_readv), resumes
 * it, and only then calls prof_unw_unwind: the stop lasts as long as the copy,
 * not the unwind. A stack whose every frame has a plain .eh_frame rule is
 * unwound by those rules (cfi.h); any other goes through libunwind with our own accessors:
 * stack reads come from the copy, other reads (.eh_frame, .eh_frame_hdr,
 * read-only data) from a page cache of the process's read-only file mappings,
 * read once. Frames are module + file offset; names are the merge's job.
 */
struct prof_unw;

#define PROF_UNW_STACK_BYTES (64 * 1024)
#define PROF_UNW_MAX_FRAMES 128

struct prof_unw_snap {
    pid_t tid;
    struct user_regs_struct regs;
    uint64_t sp;                /* address of stack[0] */
    size_t len;                 /* bytes copied (may be less near the top of the mapping) */
    int no_rbp;                 /* regs hold rip and rsp only (prof_unw_copy_blocked) */
    unsigned char stack[PROF_UNW_STACK_BYTES];
};

/* frames[0] holds the pc; every later frame holds a return address, kept raw:
 * the merge subtracts 1 before symbolising it (the call may be the last
 * instruction of its function). Module indices stay valid for the life of the
 * unwinder, across invalidations. vDSO frames count as anonymous memory. */
struct prof_unw_frame {
    uint32_t module;            /* index for prof_unw_module_path; UINT32_MAX = not in a file mapping */
    uint64_t offset;            /* file offset within the module (pc for anonymous memory, e.g. a JIT) */
};

/* One unwinder per process (address space), used by one thread at a time. 0 or PROF_E*. */
int prof_unw_open(pid_t pid, struct prof_unw **out);
void prof_unw_close(struct prof_unw *u);
/* The address space changed (exec, dlopen/munmap suspected): re-read /proc/PID/maps and drop caches. */
void prof_unw_invalidate(struct prof_unw *u);

/* tid must be in a ptrace-stop of the calling thread. 0 or PROF_ESRCH/PROF_EIO. */
int prof_unw_capture(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap);
/* The same, copying the stack only up to top (exclusive) when sp lies below it and within
 * PROF_UNW_STACK_BYTES of it (0: up to the end of sp's mapping as last read, if it is known):
 * the stop lasts as long as the copy. */
int prof_unw_capture_to(struct prof_unw *u, pid_t tid, struct prof_unw_snap *snap, uint64_t top);

/* The stack of a thread blocked in a system call, copied without stopping it: its user pc
 * and sp as /proc/TID/syscall gives them, the copy bounded as prof_unw_capture_to's. Only
 * rip and rsp of snap->regs are known (snap->no_rbp): the unwind of such a copy fails
 * rather than guess rbp. The caller makes sure the thread did not run during the copy.
 * 0 or PROF_ESRCH/PROF_EIO. */
int prof_unw_copy_blocked(struct prof_unw *u, pid_t tid, uint64_t pc, uint64_t sp, struct prof_unw_snap *snap,
                          uint64_t top);

/* Unwind a snapshot: frames innermost first (frames[0] is the pc). 0 or PROF_E*;
 * a partial stack (unwinding stopped early) is still 0 with *n >= 1. */
int prof_unw_unwind(struct prof_unw *u, const struct prof_unw_snap *snap,
                    struct prof_unw_frame *frames, size_t cap, size_t *n);

/* Where frame k+1's return address was read from (the slot at its CFA - 8) and the value
 * read: while a thread stays blocked at the same pc and sp, the same values in the same
 * slots mean the same callers, without stopping it again. */
struct prof_unw_slot {
    uint64_t addr, value;
};

/* prof_unw_unwind, also filling slots[0 .. *n - 2] (slots may be NULL) and *whole (may be
 * NULL): 1 when the unwind reached the outermost frame or cap, 0 when it stopped at a
 * frame it could not step through. */
int prof_unw_unwind_slots(struct prof_unw *u, const struct prof_unw_snap *snap, struct prof_unw_frame *frames,
                          struct prof_unw_slot *slots, size_t cap, size_t *n, int *whole);

/* A stack copy held elsewhere (a perf sample's, in its ring): the registers, the address
 * of stack[0] and the bytes copied, unwound where they lie. */
struct prof_unw_view {
    const struct user_regs_struct *regs;
    uint64_t sp;
    const unsigned char *stack;
    size_t len;
    int no_rbp;                 /* regs->rbp is not known: PROF_ENOTSUP where a frame needs it */
};

/* prof_unw_unwind_slots for a view. */
int prof_unw_unwind_view(struct prof_unw *u, const struct prof_unw_view *v, struct prof_unw_frame *frames,
                         struct prof_unw_slot *slots, size_t cap, size_t *n, int *whole);

/* One-off work done inside unwinds so far: modules opened and their unwind tables indexed,
 * /proc/PID/maps re-read for an address outside every known mapping (ns spent, how many). */
void prof_unw_load_stats(const struct prof_unw *u, uint64_t *ns, uint64_t *n);

/* Rules decoded so far from modules' .eh_frame (ns spent, module loads apart, and how
 * many): an address's first unwind decodes its rule, later ones find it cached. */
void prof_unw_decode_stats(const struct prof_unw *u, uint64_t *ns, uint64_t *n);

/* Unwinds so far done whole by the fast path's cached rules, and by libunwind (a frame the
 * rules do not describe, or POOLPROF_UNWIND=libunwind). */
void prof_unw_path_stats(const struct prof_unw *u, uint64_t *fast, uint64_t *slow);

/* Path of a module index (as in /proc/PID/maps); NULL when out of range. */
const char *prof_unw_module_path(const struct prof_unw *u, uint32_t module);

#endif
