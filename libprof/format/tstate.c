/* tstate.c: the names of sampler.rec's thread states, one table for writer and reader. */
#include <string.h>

#include "format/tstate.h"

static const char *const names[PROF_TS_COUNT] = {
    "running", "runq", "gil", "lock", "sync", "net", "disk", "ipc", "evloop", "sleep", "other",
};

const char *prof_tstate_name(enum prof_tstate s)
{
    return (unsigned)s < PROF_TS_COUNT ? names[s] : "other";
}

int prof_tstate_from_name(const char *s)
{
    for (int i = 0; i < PROF_TS_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
