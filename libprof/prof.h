/* prof.h: the one public header of libprof: stage markers for programs, error codes for tools. */
#ifndef POOLPROF_PROF_H
#define POOLPROF_PROF_H

#ifdef __cplusplus
extern "C" {
#endif

#define PROF_API __attribute__((visibility("default")))

/*
 * Stage markers. Exported by the preloaded shim (libprof.so). A program that
 * wants to run unchanged without the shim looks them up at run time with
 * dlsym(RTLD_DEFAULT, "prof_stage_begin") or ctypes.CDLL(None) instead of
 * linking against them. Nestable per thread; the name is copied.
 */
PROF_API void prof_stage_begin(const char *name);
PROF_API void prof_stage_end(void);

/*
 * Errors. Every libprof function returns 0 or a negative PROF_E* code.
 * X(name, value, message): one table, the codes and their messages.
 */
#define PROF_ERRNO_MAP(X)                                                     \
    X(INVAL, -1, "invalid argument")                                          \
    X(NOMEM, -2, "out of memory")                                             \
    X(IO, -3, "input/output error")                                           \
    X(NOENT, -4, "no such file or directory")                                 \
    X(EXIST, -5, "already exists")                                            \
    X(ACCES, -6, "permission denied")                                         \
    X(FORMAT, -7, "malformed record")                                         \
    X(VERSION, -8, "unsupported record version")                              \
    X(NOTEMPTY, -9, "directory not empty")                                    \
    X(NOSPC, -10, "no space left on device")                                  \
    X(SRCH, -11, "no such process")                                           \
    X(RANGE, -12, "value out of range")                                       \
    X(NOEXEC, -13, "cannot execute")                                          \
    X(NOTSUP, -14, "not supported")

enum prof_errno {
#define PROF_ERRNO_ENUM(name, value, msg) PROF_E##name = (value),
    PROF_ERRNO_MAP(PROF_ERRNO_ENUM)
#undef PROF_ERRNO_ENUM
};

/* A static message for a PROF_E* code (never NULL). */
PROF_API const char *prof_strerror(int err);

/* Map an errno value to the nearest PROF_E* code (always negative). */
PROF_API int prof_err_from_errno(int e);

#ifdef __cplusplus
}
#endif
#endif
