/* ptrace_follow.c: runs a command under a tracer that follows every process and thread by ptrace events and does nothing else: what following a tree by ptrace costs it on this machine (the floor under the sampler's own work), for bench/fanout.py. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The options poolprof's sampler sets by default (fork, vfork and exec events, exit stops),
 * clones too: each event stops the tracee until the tracer resumes it, which is the cost
 * measured. The command's exit status is passed on.
 */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ptrace_follow [--no-clone] CMD [ARGS...]\n");
        return 2;
    }
    int clones = 1, first = 1;
    if (argc > 2 && argv[1][0] == '-' && argv[1][1] == '-') {
        clones = 0;
        first = 2;
    }
    pid_t root = fork();
    if (root < 0)
        return 1;
    if (root == 0) {
        raise(SIGSTOP);
        execvp(argv[first], argv + first);
        _exit(127);
    }
    int st;
    if (waitpid(root, &st, WUNTRACED) != root || !WIFSTOPPED(st))
        return 1;
    long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT |
                (clones ? PTRACE_O_TRACECLONE : 0) | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, root, 0, opts) != 0)
        return 1;
    kill(root, SIGCONT);
    int status = 0;
    for (;;) {
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break; /* no child left */
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (pid == root)
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st), event = st >> 16;
        /* An event stop or a new tracee's first stop: no signal to pass on. */
        if (event || sig == SIGTRAP || sig == SIGSTOP)
            sig = 0;
        ptrace(PTRACE_CONT, pid, 0, sig);
    }
    return status;
}
