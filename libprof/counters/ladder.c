/* ladder.c: what an event name becomes: libpfm4's encoding or a raw software one, a probe open, the fallbacks, and the reason in words, decided from the attempts' results alone (struct prof_ctr_sys). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <linux/perf_event.h>

#include "counters/counters.h"
#include "prof.h"

/*
 * Pure: no system call and no libpfm4 here, only sys's. So every rung (EACCES, a paranoid
 * kernel, no PMU, a libpfm4 that does not know a name) is tested with scripted results
 * (tests/unit/test_counters.c), where a real kernel gives only the one this machine gives.
 */

/* perf's generic software event names (perf list), for a libpfm4 that cannot encode them:
 * too old, not initialised, or built without its perf_events table. */
static const struct {
    const char *name;
    uint64_t config;
} sw_aliases[] = {
    {"context-switches", PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cs", PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cpu-migrations", PERF_COUNT_SW_CPU_MIGRATIONS},
    {"migrations", PERF_COUNT_SW_CPU_MIGRATIONS},
    {"page-faults", PERF_COUNT_SW_PAGE_FAULTS},
    {"faults", PERF_COUNT_SW_PAGE_FAULTS},
    {"minor-faults", PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"major-faults", PERF_COUNT_SW_PAGE_FAULTS_MAJ},
    {"task-clock", PERF_COUNT_SW_TASK_CLOCK},
    {"cpu-clock", PERF_COUNT_SW_CPU_CLOCK},
};

/* The software alias name stands for (case-insensitive, with or without "perf::"): 1 and *config. */
static int sw_alias(const char *name, uint64_t *config)
{
    if (strncasecmp(name, "perf::", 6) == 0)
        name += 6;
    for (size_t i = 0; i < sizeof sw_aliases / sizeof *sw_aliases; i++)
        if (strcasecmp(name, sw_aliases[i].name) == 0) {
            *config = sw_aliases[i].config;
            return 1;
        }
    return 0;
}

enum prof_ctr_role prof_ctr_role_of(const struct prof_ctr_attr *a)
{
    if (a->type == PERF_TYPE_SOFTWARE) {
        switch (a->config) {
        case PERF_COUNT_SW_CONTEXT_SWITCHES:
            return PROF_CTR_ROLE_CS;
        case PERF_COUNT_SW_CPU_MIGRATIONS:
            return PROF_CTR_ROLE_MIGRATIONS;
        case PERF_COUNT_SW_PAGE_FAULTS:
            return PROF_CTR_ROLE_FAULTS;
        case PERF_COUNT_SW_PAGE_FAULTS_MIN:
            return PROF_CTR_ROLE_MINFLT;
        case PERF_COUNT_SW_PAGE_FAULTS_MAJ:
            return PROF_CTR_ROLE_MAJFLT;
        case PERF_COUNT_SW_TASK_CLOCK:
            return PROF_CTR_ROLE_TASK_CLOCK;
        }
    } else if (a->type == PERF_TYPE_HARDWARE) {
        switch (a->config) {
        case PERF_COUNT_HW_CPU_CYCLES:
            return PROF_CTR_ROLE_CYCLES;
        case PERF_COUNT_HW_INSTRUCTIONS:
            return PROF_CTR_ROLE_INSTRUCTIONS;
        case PERF_COUNT_HW_CACHE_MISSES: /* perf's generic mapping: last-level cache misses */
            return PROF_CTR_ROLE_LLC_MISSES;
        }
    } else if (a->type == PERF_TYPE_HW_CACHE) {
        uint64_t ll_read_miss = PERF_COUNT_HW_CACHE_LL | (uint64_t)PERF_COUNT_HW_CACHE_OP_READ << 8 |
                                (uint64_t)PERF_COUNT_HW_CACHE_RESULT_MISS << 16;
        if (a->config == ll_read_miss)
            return PROF_CTR_ROLE_LLC_MISSES;
    }
    return PROF_CTR_ROLE_OTHER;
}

const char *prof_ctr_role_key(enum prof_ctr_role r)
{
    switch (r) {
    case PROF_CTR_ROLE_CS:
        return "context_switches";
    case PROF_CTR_ROLE_MIGRATIONS:
        return "cpu_migrations";
    case PROF_CTR_ROLE_FAULTS:
        return "page_faults";
    case PROF_CTR_ROLE_MINFLT:
        return "minor_faults";
    case PROF_CTR_ROLE_MAJFLT:
        return "major_faults";
    case PROF_CTR_ROLE_TASK_CLOCK:
        return "task_clock";
    case PROF_CTR_ROLE_CYCLES:
        return "cycles";
    case PROF_CTR_ROLE_INSTRUCTIONS:
        return "instructions";
    case PROF_CTR_ROLE_LLC_MISSES:
        return "llc_misses";
    case PROF_CTR_ROLE_OTHER:
    case PROF_CTR_ROLE_COUNT:
        break;
    }
    return "";
}

int prof_ctr_hardware_of(const struct prof_ctr_attr *a)
{
    return a->type == PERF_TYPE_HARDWARE || a->type == PERF_TYPE_HW_CACHE || a->type == PERF_TYPE_RAW ||
           a->type >= PERF_TYPE_MAX;
}

/* The monitor reads these per thread from /proc (status, stat, sched): a refused software
 * event of these roles is still counted, coarser. */
static int proc_has(enum prof_ctr_role r)
{
    return r == PROF_CTR_ROLE_CS || r == PROF_CTR_ROLE_MIGRATIONS || r == PROF_CTR_ROLE_FAULTS ||
           r == PROF_CTR_ROLE_MINFLT || r == PROF_CTR_ROLE_MAJFLT || r == PROF_CTR_ROLE_TASK_CLOCK;
}

/* "ENOENT": users search for the name, not for strerror's sentence. */
static const char *errno_name(int e, char *buf, size_t cap)
{
    const char *n = strerrorname_np(e);
    if (n)
        return n;
    snprintf(buf, cap, "errno %d", e);
    return buf;
}

/* ev->reason = the ladder's note before it (libpfm4 could not encode it) and this rung's, "; " between. */
__attribute__((format(printf, 3, 4))) static void say(struct prof_ctr_event *ev, const char *before, const char *fmt, ...)
{
    char rung[PROF_CTR_REASON_BYTES];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rung, sizeof rung, fmt, ap);
    va_end(ap);
    /* Cut to fit: the reason field is for people, its start says the most. */
    size_t len = strnlen(before, sizeof ev->reason - 1);
    memcpy(ev->reason, before, len);
    const char *parts[2] = {len && rung[0] ? "; " : "", rung};
    for (int k = 0; k < 2; k++) {
        size_t add = strnlen(parts[k], sizeof ev->reason - 1 - len);
        memcpy(ev->reason + len, parts[k], add);
        len += add;
    }
    ev->reason[len] = '\0';
}

/* Step 2: the probe open, and what a refusal leaves. source is PERF or RAW (what step 1 gave). */
static void probe(const struct prof_ctr_sys *sys, struct prof_ctr_event *ev, enum prof_ctr_source source,
                  const char *before)
{
    char buf[24];
    int fd = sys->open(sys->ctx, &ev->attr);

    if (fd >= 0) {
        sys->close(sys->ctx, fd);
        ev->source = source;
        say(ev, before, "%s", "");
        return;
    }
    int e = -fd, retried = 0;
    const char *en = errno_name(e, buf, sizeof buf);
    int software = !ev->hardware;
    /* perf_event_paranoid 2 refuses kernel-mode counting to the unprivileged: user mode alone
     * may still be allowed. Not when only kernel mode was asked for: nothing would be left. */
    if ((e == EACCES || e == EPERM) && !ev->attr.exclude_user) {
        struct prof_ctr_attr user = ev->attr;
        user.exclude_kernel = 1;
        user.exclude_hv = 1;
        fd = sys->open(sys->ctx, &user);
        if (fd >= 0) {
            sys->close(sys->ctx, fd);
            ev->attr = user;
            ev->source = source;
            say(ev, before, "%s: retried user-only", en);
            return;
        }
        retried = 1;
        /* Allowed user-only but still failing (no PMU): that answer is the reason, not the permission. */
        if (fd != -EACCES && fd != -EPERM) {
            e = -fd;
            en = errno_name(e, buf, sizeof buf);
        }
    }
    if (e == EACCES || e == EPERM) {
        int p = sys->paranoid(sys->ctx);
        char para[48];
        if (p == INT32_MIN)
            snprintf(para, sizeof para, "perf_event_paranoid unreadable");
        else
            snprintf(para, sizeof para, "perf_event_paranoid=%d", p);
        if (software && proc_has(ev->role)) {
            ev->source = PROF_CTR_SRC_PROC;
            say(ev, before, "%s: /proc figures instead", para);
        } else {
            ev->source = PROF_CTR_SRC_NONE;
            say(ev, before, "%s (%s%s)", para, en, retried ? ", user-only too" : "");
        }
        return;
    }
    if (e == ENOENT || e == ENODEV || e == EOPNOTSUPP) {
        if (!software) {
            ev->source = PROF_CTR_SRC_NONE;
            say(ev, before, "no PMU counts it here (perf_event_open: %s)", en);
        } else if (proc_has(ev->role)) {
            ev->source = PROF_CTR_SRC_PROC;
            say(ev, before, "this kernel has no such event (perf_event_open: %s): /proc figures instead", en);
        } else {
            ev->source = PROF_CTR_SRC_NONE;
            say(ev, before, "this kernel has no such event (perf_event_open: %s)", en);
        }
        return;
    }
    ev->source = PROF_CTR_SRC_NONE;
    if (e == EINVAL)
        say(ev, before, "the kernel rejects this encoding (EINVAL)");
    else if (e == EMFILE || e == ENFILE)
        say(ev, before, "no descriptor left (%s)", en);
    else
        say(ev, before, "perf_event_open failed (%s)", en);
}

int prof_ctr_resolve(const struct prof_ctr_sys *sys, const char *name, struct prof_ctr_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!name || !name[0] || strlen(name) >= sizeof ev->name)
        return PROF_EINVAL;
    memcpy(ev->name, name, strlen(name) + 1);

    /* Step 1: an encoding. */
    const char *msg = NULL;
    char before[PROF_CTR_REASON_BYTES] = "";
    enum prof_ctr_source source = PROF_CTR_SRC_PERF;
    int rc = sys->encode(sys->ctx, name, &ev->attr, ev->fstr, sizeof ev->fstr, &msg);
    if (rc < 0) {
        uint64_t config;
        memset(&ev->attr, 0, sizeof ev->attr);
        ev->fstr[0] = '\0';
        if (!msg)
            msg = "no message";
        if (!sw_alias(name, &config)) {
            ev->source = PROF_CTR_SRC_NONE;
            snprintf(ev->reason, sizeof ev->reason, "not supported by libpfm4 here (%s)", msg);
            return 0;
        }
        ev->attr.type = PERF_TYPE_SOFTWARE;
        ev->attr.config = config;
        source = PROF_CTR_SRC_RAW;
        snprintf(before, sizeof before, "libpfm4 could not encode it (%s): counted as raw PERF_TYPE_SOFTWARE", msg);
    } else if (!ev->fstr[0]) {
        /* fstr marks an encoding (counters.h): an encoder that gave none still encoded it. */
        snprintf(ev->fstr, sizeof ev->fstr, "%s", name);
    }
    ev->role = prof_ctr_role_of(&ev->attr);
    ev->hardware = prof_ctr_hardware_of(&ev->attr);

    /* Step 2. */
    probe(sys, ev, source, before);
    return 0;
}

/* counters.h: libpfm4's encodings have an fstr; the raw ones (whatever the probe then said) are
 * software; a name not encoded at all has neither (attr all zero). */
static int encoded(const struct prof_ctr_event *ev)
{
    return ev->fstr[0] || ev->attr.type == PERF_TYPE_SOFTWARE;
}

static int same_event(const struct prof_ctr_event *a, const struct prof_ctr_event *b)
{
    if (strcmp(a->name, b->name) == 0)
        return 1;
    return encoded(a) && encoded(b) && a->attr.type == b->attr.type && a->attr.config == b->attr.config &&
           a->attr.config1 == b->attr.config1 && a->attr.config2 == b->attr.config2;
}

/* Add ev to list[*n]: merged into an event it duplicates, else appended. 0, or PROF_ERANGE when full. */
static int add(struct prof_ctr_event *list, size_t *n, size_t cap, const struct prof_ctr_event *ev)
{
    for (size_t i = 0; i < *n; i++)
        if (same_event(&list[i], ev)) {
            /* Asked for by name: the asker's spelling and modifiers, in the default's place. */
            if (list[i].is_default && !ev->is_default)
                list[i] = *ev;
            return 0;
        }
    if (*n >= cap)
        return PROF_ERANGE;
    list[(*n)++] = *ev;
    return 0;
}

/* The static text *bad points at. */
static char bad_item[PROF_CTR_NAME_BYTES + 64];

static const char *describe(const char *item, size_t len, const char *why)
{
    int shown = len > 40 ? 40 : (int)len;
    snprintf(bad_item, sizeof bad_item, "'%.*s%s'%s", shown, item, len > 40 ? "..." : "", why);
    return bad_item;
}

int prof_ctr_resolve_list(const struct prof_ctr_sys *sys, const char *asked, struct prof_ctr_event *ev, size_t cap,
                          const char **bad)
{
    struct prof_ctr_event one;
    size_t n = 0;
    const char *dummy;

    if (!bad)
        bad = &dummy;
    *bad = NULL;
    for (size_t i = 0; prof_ctr_default_sw[i]; i++) {
        if (prof_ctr_resolve(sys, prof_ctr_default_sw[i], &one) < 0)
            continue;
        one.is_default = 1;
        if (add(ev, &n, cap, &one) < 0) {
            *bad = prof_ctr_default_sw[i];
            return PROF_ERANGE;
        }
    }
    /* A hardware default that does not open is left out, not listed as missing: on a machine
     * without a PMU (most VMs) it would say so in every report. Asked for, it is listed. */
    for (size_t i = 0; prof_ctr_default_hw[i]; i++) {
        if (prof_ctr_resolve(sys, prof_ctr_default_hw[i], &one) < 0 || one.source == PROF_CTR_SRC_NONE)
            continue;
        one.is_default = 1;
        if (add(ev, &n, cap, &one) < 0) {
            *bad = prof_ctr_default_hw[i];
            return PROF_ERANGE;
        }
    }
    if (!asked)
        return (int)n;
    const char *p = asked;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return (int)n; /* blank: nothing asked */
    for (p = asked;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        size_t len = (size_t)(e - b);
        if (len == 0) {
            *bad = "'' (an empty name: two commas in a row, or a comma at an end)";
            return PROF_EINVAL;
        }
        if (len >= PROF_CTR_NAME_BYTES) {
            char why[48];
            snprintf(why, sizeof why, " (%zu bytes, at most %d)", len, PROF_CTR_NAME_BYTES - 1);
            *bad = describe(b, len, why);
            return PROF_EINVAL;
        }
        char name[PROF_CTR_NAME_BYTES];
        memcpy(name, b, len);
        name[len] = '\0';
        if (prof_ctr_resolve(sys, name, &one) < 0) {
            *bad = describe(b, len, "");
            return PROF_EINVAL;
        }
        if (add(ev, &n, cap, &one) < 0) {
            char why[48];
            snprintf(why, sizeof why, " (more than %zu events)", cap);
            *bad = describe(b, len, why);
            return PROF_ERANGE;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return (int)n;
}
