/* err.c: messages for the PROF_E* codes, from the one table in prof.h. */
#include <errno.h>

#include "prof.h"

PROF_API const char *prof_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define PROF_ERRNO_CASE(name, value, msg) \
    case PROF_E##name:                    \
        return msg;
        PROF_ERRNO_MAP(PROF_ERRNO_CASE)
#undef PROF_ERRNO_CASE
    }
    return "unknown error";
}

PROF_API int prof_err_from_errno(int e)
{
    switch (e) {
    case ENOMEM:
        return PROF_ENOMEM;
    case ENOENT:
    case ENOTDIR:
        return PROF_ENOENT;
    case EEXIST:
        return PROF_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS:
        return PROF_EACCES;
    case ENOTEMPTY:
        return PROF_ENOTEMPTY;
    case ENOSPC:
    case EDQUOT:
        return PROF_ENOSPC;
    case ESRCH:
        return PROF_ESRCH;
    case ERANGE:
    case ENAMETOOLONG:
        return PROF_ERANGE;
    case ENOEXEC:
        return PROF_ENOEXEC;
    case EINVAL:
        return PROF_EINVAL;
    case ENOTSUP:
        return PROF_ENOTSUP;
    default:
        return PROF_EIO;
    }
}
