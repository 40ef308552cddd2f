/* exec.c: follow exec and posix_spawn: re-inject the shim into the new image's environment, close this image. */
#include <alloca.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "format/rundir.h"
#include "shim.h"

extern char **environ;

/*
 * Runs in vfork children (posix_spawn's, or the target's own): no malloc,
 * no locks. The new environment is built on the caller's stack, bounded so
 * that a huge environment is passed through untouched rather than risking
 * the stack.
 */
#define SHIM_ENV_MAX_ENTRIES 16384
#define SHIM_ENV_MAX_PRELOAD 16384
#define LD_KEY "LD_PRELOAD="
#define DIR_KEY PROF_ENV_DIR "="
#define SHIM_KEY PROF_ENV_SHIM "="

struct shim_envplan {
    size_t n;              /* entries in envp */
    long ld_idx;           /* LD_PRELOAD entry, -1 if none */
    const char *shim;      /* the library LD_PRELOAD must name */
    int fix_ld, add_dir, add_shim;
    size_t ld_bytes;       /* size of the rewritten LD_PRELOAD entry, NUL included */
};

static int shim_has_prefix(const char *s, const char *prefix, size_t len)
{
    return strncmp(s, prefix, len) == 0;
}

static int shim_preload_names(const char *list, const char *lib)
{
    size_t len = strlen(lib);
    const char *p = list;
    while (*p) {
        while (*p == ':' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ':' && *e != ' ')
            e++;
        if ((size_t)(e - p) == len && memcmp(p, lib, len) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* 1: the environment needs rewriting, 0: it already carries everything (or cannot be rewritten). */
static int shim_env_plan(char *const *envp, struct shim_envplan *pl)
{
    static const char empty_list[1];
    memset(pl, 0, sizeof *pl);
    pl->ld_idx = -1;
    if (!shim_active)
        return 0;
    const char *env_shim = NULL;
    int have_dir = 0;
    size_t n = 0;
    for (; envp && envp[n]; n++) {
        const char *e = envp[n];
        if (e[0] == 'L' && pl->ld_idx < 0 && shim_has_prefix(e, LD_KEY, sizeof LD_KEY - 1))
            pl->ld_idx = (long)n;
        else if (e[0] == 'P' && shim_has_prefix(e, DIR_KEY, sizeof DIR_KEY - 1))
            have_dir = 1;
        else if (e[0] == 'P' && shim_has_prefix(e, SHIM_KEY, sizeof SHIM_KEY - 1))
            env_shim = e + sizeof SHIM_KEY - 1;
        if (n >= SHIM_ENV_MAX_ENTRIES)
            return 0;
    }
    pl->n = n;
    /* A nested poolprof's own settings win over ours. */
    pl->shim = env_shim && *env_shim ? env_shim : shim_path;
    pl->add_dir = !have_dir;
    pl->add_shim = !env_shim;
    const char *list = pl->ld_idx >= 0 ? envp[pl->ld_idx] + sizeof LD_KEY - 1 : empty_list;
    if (!shim_preload_names(list, pl->shim)) {
        pl->fix_ld = 1;
        pl->ld_bytes = sizeof LD_KEY + strlen(list) + 1 + strlen(pl->shim);
        if (pl->ld_bytes > SHIM_ENV_MAX_PRELOAD)
            return 0;
    }
    return pl->fix_ld || pl->add_dir || pl->add_shim;
}

static char dir_kv[sizeof DIR_KEY + SHIM_PATH_MAX];
static char shim_kv[sizeof SHIM_KEY + SHIM_PATH_MAX];

/* Built once at init: a vfork child only reads them. */
void shim_exec_prepare(void)
{
    shim_stpcpy(shim_stpcpy(dir_kv, DIR_KEY), shim_dir);
    shim_stpcpy(shim_stpcpy(shim_kv, SHIM_KEY), shim_path);
}

static char *const *shim_env_build(char *const *envp, const struct shim_envplan *pl, char **out,
                                   char *ldbuf)
{
    size_t k = 0;
    for (size_t i = 0; i < pl->n; i++)
        out[k++] = envp[i];
    if (pl->fix_ld) {
        char *p = shim_stpcpy(ldbuf, LD_KEY);
        if (pl->ld_idx >= 0) {
            const char *old = envp[pl->ld_idx] + sizeof LD_KEY - 1;
            p = shim_stpcpy(p, old);
            if (*old)
                *p++ = ':';
        }
        shim_stpcpy(p, pl->shim);
        if (pl->ld_idx >= 0)
            out[pl->ld_idx] = ldbuf;
        else
            out[k++] = ldbuf;
    }
    if (pl->add_dir)
        out[k++] = dir_kv;
    if (pl->add_shim)
        out[k++] = shim_kv;
    out[k] = NULL;
    return out;
}

/* Declares `var`: envp, or a stack copy that carries the shim. */
#define SHIM_ENV_FIX(envp, var)                                                          \
    char *const *var = (envp);                                                           \
    struct shim_envplan var##_plan;                                                      \
    if (shim_env_plan(var, &var##_plan)) {                                               \
        char **var##_out = alloca((var##_plan.n + 4) * sizeof(char *));                  \
        char *var##_ld = var##_plan.fix_ld ? alloca(var##_plan.ld_bytes) : NULL;         \
        var = shim_env_build(var, &var##_plan, var##_out, var##_ld);                     \
    }

/* 1 if this image was closed (end_how EXEC) and must be reopened should exec fail. */
static int shim_exec_begin(void)
{
    if (!shim_owner())
        return 0; /* vfork child: the record is the parent's */
    shim_proc_end(PROF_END_EXEC);
    return 1;
}

static void shim_exec_failed(int closed)
{
    if (closed) {
        int saved = errno;
        shim_proc_end_undo();
        errno = saved;
    }
}

static int shim_execve(const char *path, char *const argv[], char *const envp[])
{
    shim_init();
    SHIM_ENV_FIX(envp, env);
    int closed = shim_exec_begin();
    int r = shim_real.execve(path, argv, env);
    shim_exec_failed(closed);
    return r;
}

static int shim_execvpe(const char *file, char *const argv[], char *const envp[])
{
    shim_init();
    SHIM_ENV_FIX(envp, env);
    int closed = shim_exec_begin();
    int r = shim_real.execvpe(file, argv, env);
    shim_exec_failed(closed);
    return r;
}

SHIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return shim_execve(path, argv, envp);
}

SHIM_EXPORT int execv(const char *path, char *const argv[])
{
    return shim_execve(path, argv, environ);
}

SHIM_EXPORT int execvp(const char *file, char *const argv[])
{
    return shim_execvpe(file, argv, environ);
}

SHIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return shim_execvpe(file, argv, envp);
}

/* The execl* argument lists, gathered on the stack. */
#define SHIM_COLLECT_ARGS(arg0, ap, argv)                                                \
    size_t argv##_n = 1;                                                                 \
    va_start(ap, arg0);                                                                  \
    while (va_arg(ap, char *))                                                           \
        argv##_n++;                                                                      \
    va_end(ap);                                                                          \
    char **argv = alloca((argv##_n + 1) * sizeof(char *));                               \
    argv[0] = (char *)(arg0);                                                            \
    va_start(ap, arg0);                                                                  \
    for (size_t argv##_i = 1; argv##_i <= argv##_n; argv##_i++)                          \
        argv[argv##_i] = va_arg(ap, char *);

SHIM_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    SHIM_COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    return shim_execve(path, argv, environ);
}

SHIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    SHIM_COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    return shim_execvpe(file, argv, environ);
}

SHIM_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    SHIM_COLLECT_ARGS(arg, ap, argv);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return shim_execve(path, argv, envp);
}

SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    shim_init();
    SHIM_ENV_FIX(envp, env);
    int closed = shim_exec_begin();
    int r = shim_real.fexecve(fd, argv, env);
    shim_exec_failed(closed);
    return r;
}

SHIM_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                         int flags)
{
    shim_init();
    SHIM_ENV_FIX(envp, env);
    int closed = shim_exec_begin();
    int r = shim_real.execveat(dirfd, path, argv, env, flags);
    shim_exec_failed(closed);
    return r;
}

/* posix_spawn's child execs from inside libc, out of our reach: hand it the fixed environment. */
SHIM_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                            const posix_spawnattr_t *attr, char *const argv[],
                            char *const envp[])
{
    shim_init();
    SHIM_ENV_FIX(envp, env);
    return shim_real.posix_spawn(pid, path, fa, attr, argv, env);
}

SHIM_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                             const posix_spawnattr_t *attr, char *const argv[],
                             char *const envp[])
{
    shim_init();
    SHIM_ENV_FIX(envp, env);
    return shim_real.posix_spawnp(pid, file, fa, attr, argv, env);
}
