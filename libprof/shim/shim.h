/* shim.h: private interface shared by the files of the LD_PRELOAD shim: its state, the real symbols, small helpers. */
#ifndef POOLPROF_SHIM_H
#define POOLPROF_SHIM_H

#include <pthread.h>
#include <semaphore.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "shm.h"

/* Interposers must win symbol lookup although the library is built -fvisibility=hidden. */
#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHIM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SHIM_TLS __thread __attribute__((tls_model("initial-exec")))

#define SHIM_PATH_MAX 4096

/* The next definition of every interposed symbol, resolved once (dlsym RTLD_NEXT). */
struct shim_real {
    int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*mutex_lock)(pthread_mutex_t *);
    int (*mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
    int (*sem_wait)(sem_t *);
    int (*sem_timedwait)(sem_t *, const struct timespec *);
    int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
    int (*cond_wait)(pthread_cond_t *, pthread_mutex_t *);
    int (*cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
    int (*cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
    void (*exit)(int);
    void (*uexit)(int);
    void (*uExit)(int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
    int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                       const posix_spawnattr_t *, char *const[], char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);
    pid_t (*wait)(int *);
    pid_t (*waitpid)(pid_t, int *, int);
    pid_t (*wait3)(int *, int, struct rusage *);
    pid_t (*wait4)(pid_t, int *, int, struct rusage *);
    int (*waitid)(idtype_t, id_t, siginfo_t *, int);
    int (*libc_start_main)(int (*)(int, char **, char **), int, char **, void (*)(void),
                           void (*)(void), void (*)(void), void *);
};

extern struct shim_real shim_real;
extern int shim_resolved;                 /* shim_real is complete (acquire) */
extern struct prof_shm_header *shim_hdr;  /* NULL: inert, or not initialised yet */
extern int shim_active;                   /* POOLPROF_DIR set: follow execs */
extern int shim_python;                   /* this image runs CPython */
extern char shim_dir[SHIM_PATH_MAX];      /* POOLPROF_DIR */
extern char shim_path[SHIM_PATH_MAX];     /* POOLPROF_SHIM (or our own path) */
extern long shim_clk_tck;
extern pthread_key_t shim_key;            /* destructor records a thread's end */
extern unsigned char shim_slot_final[PROF_SHM_MAX_THREADS]; /* 1: slot's final figures taken */
extern SHIM_TLS struct prof_shm_thread *shim_tls_slot;

/* init.c */
void shim_resolve(void);
void shim_init(void);
/* A record of our own for process `pid` (file, else anonymous memory); NULL if even that fails. */
struct prof_shm_header *shim_record_map(pid_t pid, uint64_t start_ns);

/* thread.c */
void shim_thread_fill_self(struct prof_shm_thread *t, uint64_t now);
/* The process ends (exit, _exit, exec): snapshot the survivors, store end_how then end_ns. Once. */
void shim_proc_end(uint32_t how);
/* An exec failed: the image lives on, undo shim_proc_end. */
void shim_proc_end_undo(void);
/* A forked child starts a new image: its end is still to come. */
void shim_proc_end_reset(void);
/* 1 when called in the process that owns shim_hdr (not a vfork child or raw clone). */
int shim_owner(void);

/* exec.c */
void shim_exec_prepare(void);

/* exit.c */
void shim_note_exit_code(int code);

/* proc.c: /proc readers and formatting without malloc or stdio (fork child, exit, exec paths). */
ssize_t shim_read_file(const char *path, char *buf, size_t cap);
char *shim_fmt_u64(char *dst, uint64_t v);
char *shim_stpcpy(char *dst, const char *src);
uint64_t shim_parse_u64(const char *s, const char **end);
/* Value of a "Key:   123" line of a /proc status file, 0 if absent. */
uint64_t shim_status_field(const char *buf, const char *key);

static inline uint64_t shim_clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t shim_mono_ns(void)
{
    return shim_clock_ns(CLOCK_MONOTONIC);
}

#endif
