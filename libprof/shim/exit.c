/* exit.c: how a process image's program begins and ends: the start-up spent before main, return from main, exit(), _exit()/_Exit(), and the exit code. */
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

void shim_note_exit_code(int code)
{
    shim_self(); /* a fork child that ends before it made its record makes it now */
    if (shim_owner())
        shim_hdr->exit_code = code & 0xff; /* what wait() will report */
}

static int (*main_real)(int, char **, char **);

/*
 * What the task had spent when main() began: exec, the dynamic loader, constructors (the shim's
 * own among them). A pool of workers would repeat it, never divide it, so the advice keeps it
 * apart from the work. Cumulative like the CPU clock (an image exec'd by another counts what its
 * predecessors spent too).
 */
static void shim_note_startup(void)
{
    struct prof_shm_thread *t = shim_tls_slot;
    if (!t || !shim_owner())
        return;
    int saved = errno;
    t->startup_cpu_ns = shim_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    errno = saved;
}

/* libc calls exit() from inside itself after main returns: the one exit code no interposer sees. */
static int shim_main(int argc, char **argv, char **envp)
{
    shim_note_startup();
    int code = main_real(argc, argv, envp);
    shim_note_exit_code(code);
    return code;
}

SHIM_EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                                  void (*init)(void), void (*fini)(void),
                                  void (*rtld_fini)(void), void *stack_end)
{
    shim_init();
    if (!shim_real.libc_start_main)
        syscall(SYS_exit_group, 127);
    if (!shim_hdr)
        return shim_real.libc_start_main(main, argc, argv, init, fini, rtld_fini, stack_end);
    main_real = main;
    return shim_real.libc_start_main(shim_main, argc, argv, init, fini, rtld_fini, stack_end);
}

SHIM_EXPORT void exit(int status)
{
    shim_init();
    shim_note_exit_code(status);
    if (shim_real.exit)
        shim_real.exit(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

/* _exit skips atexit and destructors, so the end is recorded here. Also the usual end of a vfork child: shim_owner() keeps it silent. */
static void shim_underscore_exit(int status)
{
    shim_resolve();
    shim_note_exit_code(status);
    shim_proc_end(PROF_END_UNDERSCORE_EXIT);
}

SHIM_EXPORT void _exit(int status)
{
    shim_underscore_exit(status);
    if (shim_real.uexit)
        shim_real.uexit(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

SHIM_EXPORT void _Exit(int status)
{
    shim_underscore_exit(status);
    if (shim_real.uExit)
        shim_real.uExit(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

/* exit() or return from main: after the atexit handlers, so their CPU time is counted. */
__attribute__((destructor(101))) static void shim_dtor(void)
{
    shim_self();
    shim_proc_end(PROF_END_EXIT);
}
