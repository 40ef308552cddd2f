/* test_counters.c: the counters' fallback ladder on scripted system calls (every rung, no kernel needed), the run's event list, roles; and libpfm4's real encodings. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/perf_event.h>

#include "counters/counters.h"
#include "prof.h"

#define PFM_NOTFOUND (-4) /* PFM_ERR_NOTFOUND of pfmlib.h, which this file does not include */

/* ---- a fake libpfm4 and kernel ------------------------------------------------------------- */

struct fake {
    int script[8];      /* the next opens' results, in order (>= 0: a descriptor, < 0: -errno) */
    int nscript, next;
    int sw_rc, hw_rc;   /* then: by the event's kind */
    int paranoid;
    int opens, closes;
    struct prof_ctr_attr opened[16];
};

static const struct {
    const char *name;
    uint32_t type;
    uint64_t config;
    int exclude_user;
} known[] = {
    {"perf::CONTEXT-SWITCHES", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, 0},
    {"perf::CS", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, 0},
    {"perf::CPU-MIGRATIONS", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, 0},
    {"perf::MINOR-FAULTS", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN, 0},
    {"perf::MAJOR-FAULTS", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ, 0},
    {"perf::TASK-CLOCK", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, 0},
    {"perf::CYCLES", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, 0},
    {"cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, 0},
    {"cycles:k", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, 1},
    {"perf::INSTRUCTIONS", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, 0},
    {"perf::LLC-LOAD-MISSES", PERF_TYPE_HW_CACHE, 0x10002, 0},
    {"zen::RETIRED_OPS", 9 /* a PMU's dynamic type */, 0xc1, 0},
};

static int fake_encode(void *ctx, const char *name, struct prof_ctr_attr *a, char *fstr, size_t cap, const char **msg)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name, known[i].name) == 0) {
            memset(a, 0, sizeof *a);
            a->type = known[i].type;
            a->config = known[i].config;
            a->exclude_user = known[i].exclude_user;
            a->exclude_hv = 1;
            if (fstr && cap)
                snprintf(fstr, cap, "fake::%s:u=1:k=1", name);
            return 0;
        }
    *msg = "event not found";
    return PFM_NOTFOUND;
}

static int fake_open(void *ctx, const struct prof_ctr_attr *a)
{
    struct fake *f = ctx;
    if (f->opens < 16)
        f->opened[f->opens] = *a;
    f->opens++;
    if (f->next < f->nscript)
        return f->script[f->next++];
    return prof_ctr_hardware_of(a) ? f->hw_rc : f->sw_rc;
}

static void fake_close(void *ctx, int fd)
{
    struct fake *f = ctx;
    cr_assert_geq(fd, 0, "close of a descriptor the fake never gave");
    f->closes++;
}

static int fake_paranoid(void *ctx)
{
    return ((struct fake *)ctx)->paranoid;
}

/* A fake where software events open (descriptor 7) and hardware ones have no PMU, then the script. */
static struct prof_ctr_sys fake_sys(struct fake *f, int n, ...)
{
    va_list ap;
    memset(f, 0, sizeof *f);
    f->sw_rc = 7;
    f->hw_rc = -ENOENT;
    f->paranoid = 2;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        f->script[f->nscript++] = va_arg(ap, int);
    va_end(ap);
    return (struct prof_ctr_sys){fake_encode, fake_open, fake_close, fake_paranoid, f};
}

static struct prof_ctr_event resolve(const struct prof_ctr_sys *sys, const char *name)
{
    struct prof_ctr_event ev;
    cr_assert_eq(prof_ctr_resolve(sys, name, &ev), 0, "resolve %s", name);
    return ev;
}

#define assert_reason(ev, want) cr_assert_str_eq((ev).reason, want, "reason of %s: '%s'", (ev).name, (ev).reason)

/* ---- the ladder, one rung at a time -------------------------------------------------------- */

Test(ladder, an_event_that_opens_is_counted_as_asked)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev = resolve(&sys, "perf::CONTEXT-SWITCHES");
    cr_assert_eq(ev.source, PROF_CTR_SRC_PERF);
    assert_reason(ev, "");
    cr_assert_str_eq(ev.name, "perf::CONTEXT-SWITCHES");
    cr_assert_str_eq(ev.fstr, "fake::perf::CONTEXT-SWITCHES:u=1:k=1");
    cr_assert_eq(ev.role, PROF_CTR_ROLE_CS);
    cr_assert_not(ev.hardware);
    cr_assert_eq(ev.attr.exclude_kernel, 0);
    cr_assert_eq(f.opens, 1);
    cr_assert_eq(f.closes, 1, "the probe's descriptor is closed");
}

Test(ladder, no_pmu_says_so_with_the_errno)
{
    static const struct {
        int err;
        const char *reason;
    } cases[] = {
        {ENOENT, "no PMU counts it here (perf_event_open: ENOENT)"},
        {ENODEV, "no PMU counts it here (perf_event_open: ENODEV)"},
        {EOPNOTSUPP, "no PMU counts it here (perf_event_open: EOPNOTSUPP)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fake f;
        struct prof_ctr_sys sys = fake_sys(&f, 1, -cases[i].err);
        struct prof_ctr_event ev = resolve(&sys, "perf::CYCLES");
        cr_assert_eq(ev.source, PROF_CTR_SRC_NONE);
        assert_reason(ev, cases[i].reason);
        cr_assert(ev.hardware);
        cr_assert_eq(ev.role, PROF_CTR_ROLE_CYCLES);
        cr_assert_eq(f.opens, 1, "no retry for a missing PMU");
        cr_assert_eq(f.closes, 0);
    }
    /* a PMU's own event (dynamic type) and a generic cache event are hardware too */
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev = resolve(&sys, "zen::RETIRED_OPS");
    cr_assert(ev.hardware);
    assert_reason(ev, "no PMU counts it here (perf_event_open: ENOENT)");
    ev = resolve(&sys, "perf::LLC-LOAD-MISSES");
    cr_assert(ev.hardware);
    cr_assert_eq(ev.role, PROF_CTR_ROLE_LLC_MISSES);
}

Test(ladder, eacces_retries_user_only)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 2, -EACCES, 5);
    struct prof_ctr_event ev = resolve(&sys, "perf::CYCLES");
    cr_assert_eq(ev.source, PROF_CTR_SRC_PERF);
    assert_reason(ev, "EACCES: retried user-only");
    cr_assert_eq(f.opens, 2);
    cr_assert_eq(f.opened[0].exclude_kernel, 0, "first as asked: user and kernel");
    cr_assert_eq(f.opened[1].exclude_kernel, 1, "then user mode only");
    cr_assert_eq(f.opened[1].exclude_hv, 1);
    cr_assert_eq(ev.attr.exclude_kernel, 1, "the event keeps the encoding that opened");
    cr_assert_eq(f.closes, 1);

    sys = fake_sys(&f, 2, -EPERM, 5);
    ev = resolve(&sys, "perf::MINOR-FAULTS");
    cr_assert_eq(ev.source, PROF_CTR_SRC_PERF);
    assert_reason(ev, "EPERM: retried user-only");
}

Test(ladder, refused_user_only_too_names_perf_event_paranoid)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 2, -EACCES, -EACCES);
    f.paranoid = 3;
    struct prof_ctr_event ev = resolve(&sys, "perf::CYCLES");
    cr_assert_eq(ev.source, PROF_CTR_SRC_NONE);
    assert_reason(ev, "perf_event_paranoid=3 (EACCES, user-only too)");
    cr_assert_eq(f.opens, 2);
    cr_assert_eq(ev.attr.exclude_kernel, 0, "the encoding asked for, not the refused retry");

    /* a software event the monitor also reads from /proc: counted from there */
    sys = fake_sys(&f, 2, -EACCES, -EPERM);
    f.paranoid = 3;
    ev = resolve(&sys, "perf::CONTEXT-SWITCHES");
    cr_assert_eq(ev.source, PROF_CTR_SRC_PROC);
    assert_reason(ev, "perf_event_paranoid=3: /proc figures instead");
    cr_assert_eq(f.closes, 0);

    sys = fake_sys(&f, 2, -EACCES, -EACCES);
    f.paranoid = INT32_MIN;
    ev = resolve(&sys, "perf::TASK-CLOCK");
    cr_assert_eq(ev.source, PROF_CTR_SRC_PROC);
    assert_reason(ev, "perf_event_paranoid unreadable: /proc figures instead");
}

Test(ladder, kernel_only_is_not_retried_user_only)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 2, -EACCES, 5);
    f.paranoid = 2;
    struct prof_ctr_event ev = resolve(&sys, "cycles:k");
    cr_assert_eq(f.opens, 1, "user-only would count nothing of a kernel-only event");
    cr_assert_eq(ev.source, PROF_CTR_SRC_NONE);
    assert_reason(ev, "perf_event_paranoid=2 (EACCES)");
}

Test(ladder, allowed_user_only_but_no_pmu_says_no_pmu)
{
    /* an unprivileged user, paranoid 2, on a VM: kernel mode refused, then no PMU */
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 2, -EACCES, -ENOENT);
    struct prof_ctr_event ev = resolve(&sys, "perf::CYCLES");
    cr_assert_eq(f.opens, 2);
    cr_assert_eq(ev.source, PROF_CTR_SRC_NONE);
    assert_reason(ev, "no PMU counts it here (perf_event_open: ENOENT)");
    cr_assert_eq(ev.attr.exclude_kernel, 0);
}

Test(ladder, other_refusals)
{
    static const struct {
        const char *name;
        int err;
        enum prof_ctr_source source;
        const char *reason;
    } cases[] = {
        {"perf::CYCLES", EINVAL, PROF_CTR_SRC_NONE, "the kernel rejects this encoding (EINVAL)"},
        {"perf::CONTEXT-SWITCHES", EINVAL, PROF_CTR_SRC_NONE, "the kernel rejects this encoding (EINVAL)"},
        {"perf::CYCLES", EMFILE, PROF_CTR_SRC_NONE, "no descriptor left (EMFILE)"},
        {"perf::MINOR-FAULTS", ENFILE, PROF_CTR_SRC_NONE, "no descriptor left (ENFILE)"},
        {"perf::CYCLES", E2BIG, PROF_CTR_SRC_NONE, "perf_event_open failed (E2BIG)"},
        /* a software event this kernel lacks: /proc where the monitor has the figure */
        {"perf::MAJOR-FAULTS", ENOENT, PROF_CTR_SRC_PROC,
         "this kernel has no such event (perf_event_open: ENOENT): /proc figures instead"},
        {"perf::CPU-MIGRATIONS", EOPNOTSUPP, PROF_CTR_SRC_PROC,
         "this kernel has no such event (perf_event_open: EOPNOTSUPP): /proc figures instead"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fake f;
        struct prof_ctr_sys sys = fake_sys(&f, 1, -cases[i].err);
        struct prof_ctr_event ev = resolve(&sys, cases[i].name);
        cr_assert_eq(ev.source, cases[i].source, "%s errno %d", cases[i].name, cases[i].err);
        assert_reason(ev, cases[i].reason);
        cr_assert_eq(f.opens, 1);
    }
}

Test(ladder, a_software_alias_libpfm4_does_not_know_is_encoded_raw)
{
    static const struct {
        const char *name;
        uint64_t config;
        enum prof_ctr_role role;
    } cases[] = {
        {"context-switches", PERF_COUNT_SW_CONTEXT_SWITCHES, PROF_CTR_ROLE_CS},
        {"CS", PERF_COUNT_SW_CONTEXT_SWITCHES, PROF_CTR_ROLE_CS},
        {"perf::Migrations", PERF_COUNT_SW_CPU_MIGRATIONS, PROF_CTR_ROLE_MIGRATIONS},
        {"cpu-migrations", PERF_COUNT_SW_CPU_MIGRATIONS, PROF_CTR_ROLE_MIGRATIONS},
        {"page-faults", PERF_COUNT_SW_PAGE_FAULTS, PROF_CTR_ROLE_FAULTS},
        {"faults", PERF_COUNT_SW_PAGE_FAULTS, PROF_CTR_ROLE_FAULTS},
        {"PERF::MINOR-FAULTS", PERF_COUNT_SW_PAGE_FAULTS_MIN, PROF_CTR_ROLE_MINFLT},
        {"major-faults", PERF_COUNT_SW_PAGE_FAULTS_MAJ, PROF_CTR_ROLE_MAJFLT},
        {"task-clock", PERF_COUNT_SW_TASK_CLOCK, PROF_CTR_ROLE_TASK_CLOCK},
        {"cpu-clock", PERF_COUNT_SW_CPU_CLOCK, PROF_CTR_ROLE_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fake f;
        struct prof_ctr_sys sys = fake_sys(&f, 0);
        struct prof_ctr_event ev = resolve(&sys, cases[i].name);
        cr_assert_eq(ev.source, PROF_CTR_SRC_RAW, "%s", cases[i].name);
        cr_assert_eq(ev.attr.type, PERF_TYPE_SOFTWARE);
        cr_assert_eq(ev.attr.config, cases[i].config, "%s", cases[i].name);
        cr_assert_eq(ev.role, cases[i].role, "%s", cases[i].name);
        cr_assert_str_eq(ev.fstr, "", "not libpfm4's encoding");
        cr_assert_not(ev.hardware);
        assert_reason(ev, "libpfm4 could not encode it (event not found): counted as raw PERF_TYPE_SOFTWARE");
    }

    /* raw, then refused: both steps in the reason */
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 2, -EACCES, -EACCES);
    f.paranoid = 3;
    struct prof_ctr_event ev = resolve(&sys, "context-switches");
    cr_assert_eq(ev.source, PROF_CTR_SRC_PROC);
    assert_reason(ev, "libpfm4 could not encode it (event not found): counted as raw PERF_TYPE_SOFTWARE; "
                      "perf_event_paranoid=3: /proc figures instead");
    sys = fake_sys(&f, 1, -ENOENT);
    ev = resolve(&sys, "cpu-clock");
    cr_assert_eq(ev.source, PROF_CTR_SRC_NONE, "no /proc figure for cpu-clock");
    assert_reason(ev, "libpfm4 could not encode it (event not found): counted as raw PERF_TYPE_SOFTWARE; "
                      "this kernel has no such event (perf_event_open: ENOENT)");
}

Test(ladder, a_name_libpfm4_does_not_know_is_not_counted)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev = resolve(&sys, "intel::NO_SUCH_EVENT");
    cr_assert_eq(ev.source, PROF_CTR_SRC_NONE);
    assert_reason(ev, "not supported by libpfm4 here (event not found)");
    cr_assert_eq(f.opens, 0, "nothing to open");
    cr_assert_eq(ev.role, PROF_CTR_ROLE_OTHER);
    cr_assert_str_eq(ev.name, "intel::NO_SUCH_EVENT");
}

Test(ladder, malformed_names)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev;
    char longname[PROF_CTR_NAME_BYTES + 1];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(prof_ctr_resolve(&sys, "", &ev), PROF_EINVAL);
    cr_assert_eq(prof_ctr_resolve(&sys, NULL, &ev), PROF_EINVAL);
    cr_assert_eq(prof_ctr_resolve(&sys, longname, &ev), PROF_EINVAL);
    longname[PROF_CTR_NAME_BYTES - 1] = '\0'; /* 95 bytes: the longest taken */
    cr_assert_eq(prof_ctr_resolve(&sys, longname, &ev), 0);
    cr_assert_eq(f.opens, 0);
}

/* ---- the run's list ------------------------------------------------------------------------ */

Test(list, the_default_set_and_hardware_only_when_it_opens)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev[PROF_CTR_MAX];
    const char *bad = "unset";

    int n = prof_ctr_resolve_list(&sys, NULL, ev, PROF_CTR_MAX, &bad);
    cr_assert_eq(n, 4, "no PMU: the software set only");
    cr_assert_null(bad);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(ev[i].name, prof_ctr_default_sw[i]);
        cr_assert(ev[i].is_default);
        cr_assert_eq(ev[i].source, PROF_CTR_SRC_PERF);
    }
    cr_assert_eq(ev[0].role, PROF_CTR_ROLE_CS);
    cr_assert_eq(ev[1].role, PROF_CTR_ROLE_MIGRATIONS);
    cr_assert_eq(ev[2].role, PROF_CTR_ROLE_MINFLT);
    cr_assert_eq(ev[3].role, PROF_CTR_ROLE_MAJFLT);
    cr_assert_eq(prof_ctr_resolve_list(&sys, "  ", ev, PROF_CTR_MAX, &bad), 4, "blank: nothing asked");

    sys = fake_sys(&f, 0);
    f.hw_rc = 9; /* a PMU */
    n = prof_ctr_resolve_list(&sys, NULL, ev, PROF_CTR_MAX, &bad);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(ev[4].name, "perf::CYCLES");
    cr_assert_str_eq(ev[5].name, "perf::INSTRUCTIONS");
    cr_assert(ev[4].is_default && ev[4].hardware);
    cr_assert_eq(ev[5].role, PROF_CTR_ROLE_INSTRUCTIONS);
}

Test(list, cycles_asked_for_is_listed_with_its_reason)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev[PROF_CTR_MAX];
    const char *bad;

    int n = prof_ctr_resolve_list(&sys, "cycles", ev, PROF_CTR_MAX, &bad);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(ev[4].name, "cycles");
    cr_assert_eq(ev[4].source, PROF_CTR_SRC_NONE);
    cr_assert_not(ev[4].is_default);
    assert_reason(ev[4], "no PMU counts it here (perf_event_open: ENOENT)");
}

Test(list, the_same_encoding_is_one_event)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev[PROF_CTR_MAX];
    const char *bad;

    /* perf::CS is the default's encoding: it takes its place, by the asked name; context-switches
     * (raw, the same encoding) and a repeated unknown name merge too */
    int n = prof_ctr_resolve_list(&sys, " perf::CS ,\tcontext-switches, no::SUCH,no::SUCH , other::UNKNOWN", ev,
                                  PROF_CTR_MAX, &bad);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(ev[0].name, "perf::CS");
    cr_assert_not(ev[0].is_default);
    cr_assert_eq(ev[0].source, PROF_CTR_SRC_PERF, "the first asker's resolution");
    for (int i = 1; i < 4; i++)
        cr_assert(ev[i].is_default);
    cr_assert_str_eq(ev[4].name, "no::SUCH");
    cr_assert_str_eq(ev[5].name, "other::UNKNOWN", "two names without an encoding are two events");

    /* raw encodings merge whatever their probe said: here both fall back to /proc */
    sys = fake_sys(&f, 0);
    f.sw_rc = -EACCES;
    f.paranoid = 3;
    n = prof_ctr_resolve_list(&sys, "context-switches,cs", ev, PROF_CTR_MAX, &bad);
    cr_assert_eq(n, 4, "both raw names are the default perf::CONTEXT-SWITCHES");
    cr_assert_eq(ev[0].source, PROF_CTR_SRC_PROC);
    cr_assert_str_eq(ev[0].name, "context-switches");
    cr_assert_not(ev[0].is_default);

    /* with a PMU: cycles asked for is the default one, asked */
    sys = fake_sys(&f, 0);
    f.hw_rc = 9;
    n = prof_ctr_resolve_list(&sys, "cycles,perf::CPU-MIGRATIONS", ev, PROF_CTR_MAX, &bad);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(ev[4].name, "cycles");
    cr_assert_not(ev[4].is_default);
    cr_assert_str_eq(ev[1].name, "perf::CPU-MIGRATIONS");
    cr_assert_not(ev[1].is_default);
}

Test(list, malformed_items)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev[PROF_CTR_MAX];
    const char *bad = NULL;

    cr_assert_eq(prof_ctr_resolve_list(&sys, "cs,,migrations", ev, PROF_CTR_MAX, &bad), PROF_EINVAL);
    cr_assert_not_null(bad);
    cr_assert(strstr(bad, "empty"), "bad: %s", bad);
    bad = NULL;
    cr_assert_eq(prof_ctr_resolve_list(&sys, "cs, ", ev, PROF_CTR_MAX, &bad), PROF_EINVAL);
    cr_assert(bad && strstr(bad, "empty"));

    char asked[PROF_CTR_NAME_BYTES + 16];
    memset(asked, 'y', sizeof asked);
    memcpy(asked, "cs,", 3);
    asked[3 + PROF_CTR_NAME_BYTES] = '\0'; /* an item of 96 bytes */
    bad = NULL;
    cr_assert_eq(prof_ctr_resolve_list(&sys, asked, ev, PROF_CTR_MAX, &bad), PROF_EINVAL);
    cr_assert(bad && strstr(bad, "(96 bytes, at most 95)"), "bad: %s", bad);
    cr_assert(strncmp(bad, "'yyyy", 5) == 0, "bad names the item: %s", bad);
}

Test(list, more_than_cap)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct prof_ctr_event ev[PROF_CTR_MAX];
    const char *bad = NULL;

    cr_assert_eq(prof_ctr_resolve_list(&sys, "perf::TASK-CLOCK", ev, 5, &bad), 5, "exactly cap");
    cr_assert_eq(prof_ctr_resolve_list(&sys, "perf::TASK-CLOCK, perf::LLC-LOAD-MISSES", ev, 5, &bad), PROF_ERANGE);
    cr_assert(bad && strncmp(bad, "'perf::LLC-LOAD-MISSES'", 23) == 0, "bad: %s", bad);
    cr_assert_eq(prof_ctr_resolve_list(&sys, NULL, ev, 3, &bad), PROF_ERANGE, "not even the default set fits");

    /* a duplicate takes no room */
    cr_assert_eq(prof_ctr_resolve_list(&sys, "perf::TASK-CLOCK,perf::CS,task-clock", ev, 5, &bad), 5);
}

/* ---- roles --------------------------------------------------------------------------------- */

Test(roles, by_encoding)
{
    static const struct {
        uint32_t type;
        uint64_t config;
        enum prof_ctr_role role;
        const char *key;
    } cases[] = {
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, PROF_CTR_ROLE_CS, "context_switches"},
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, PROF_CTR_ROLE_MIGRATIONS, "cpu_migrations"},
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, PROF_CTR_ROLE_FAULTS, "page_faults"},
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN, PROF_CTR_ROLE_MINFLT, "minor_faults"},
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ, PROF_CTR_ROLE_MAJFLT, "major_faults"},
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, PROF_CTR_ROLE_TASK_CLOCK, "task_clock"},
        {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, PROF_CTR_ROLE_OTHER, ""},
        {PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, PROF_CTR_ROLE_CYCLES, "cycles"},
        {PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, PROF_CTR_ROLE_INSTRUCTIONS, "instructions"},
        {PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES, PROF_CTR_ROLE_LLC_MISSES, "llc_misses"},
        {PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES, PROF_CTR_ROLE_OTHER, ""},
        {PERF_TYPE_HW_CACHE, 0x10002, PROF_CTR_ROLE_LLC_MISSES, "llc_misses"},
        {PERF_TYPE_HW_CACHE, 0x00002, PROF_CTR_ROLE_OTHER, ""},      /* LL read accesses */
        {PERF_TYPE_HW_CACHE, 0x10102, PROF_CTR_ROLE_OTHER, ""},      /* LL write misses */
        {PERF_TYPE_RAW, PERF_COUNT_HW_CPU_CYCLES, PROF_CTR_ROLE_OTHER, ""}, /* raw 0 is no cycles */
        {PERF_TYPE_TRACEPOINT, PERF_COUNT_SW_CONTEXT_SWITCHES, PROF_CTR_ROLE_OTHER, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct prof_ctr_attr a = {.type = cases[i].type, .config = cases[i].config};
        cr_assert_eq(prof_ctr_role_of(&a), cases[i].role, "type %u config %#llx", cases[i].type,
                     (unsigned long long)cases[i].config);
        cr_assert_str_eq(prof_ctr_role_key(cases[i].role), cases[i].key);
    }
    cr_assert_str_eq(prof_ctr_role_key(PROF_CTR_ROLE_COUNT), "");
}

Test(roles, hardware_is_what_a_pmu_counts)
{
    uint32_t hw[] = {PERF_TYPE_HARDWARE, PERF_TYPE_HW_CACHE, PERF_TYPE_RAW, PERF_TYPE_MAX, 11};
    uint32_t sw[] = {PERF_TYPE_SOFTWARE, PERF_TYPE_TRACEPOINT, PERF_TYPE_BREAKPOINT};
    for (size_t i = 0; i < sizeof hw / sizeof *hw; i++)
        cr_assert(prof_ctr_hardware_of(&(struct prof_ctr_attr){.type = hw[i]}), "type %u", hw[i]);
    for (size_t i = 0; i < sizeof sw / sizeof *sw; i++)
        cr_assert_not(prof_ctr_hardware_of(&(struct prof_ctr_attr){.type = sw[i]}), "type %u", sw[i]);
}

/* ---- the real libpfm4 ---------------------------------------------------------------------- */

Test(libpfm4, encodes_the_default_set)
{
    struct prof_ctr_attr a;
    char fstr[PROF_CTR_NAME_BYTES];
    const char *msg = NULL;

    cr_assert_eq(prof_ctr_lib_init(&msg), 0, "libpfm4: %s", msg ? msg : "");
    cr_assert_eq(prof_ctr_encode("perf::CONTEXT-SWITCHES", &a, fstr, sizeof fstr, &msg), 0);
    cr_assert_eq(a.type, PERF_TYPE_SOFTWARE);
    cr_assert_eq(a.config, PERF_COUNT_SW_CONTEXT_SWITCHES);
    cr_assert_eq(a.exclude_kernel, 0, "kernel mode counted: that is where a switch happens");
    cr_assert(strncmp(fstr, "perf::PERF_COUNT_SW_CONTEXT_SWITCHES", 36) == 0, "fstr %s", fstr);
    static const uint64_t sw_config[] = {PERF_COUNT_SW_CONTEXT_SWITCHES, PERF_COUNT_SW_CPU_MIGRATIONS,
                                         PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_PAGE_FAULTS_MAJ};
    for (size_t i = 0; prof_ctr_default_sw[i]; i++) {
        cr_assert_eq(prof_ctr_encode(prof_ctr_default_sw[i], &a, fstr, sizeof fstr, &msg), 0, "%s: %s",
                     prof_ctr_default_sw[i], msg);
        cr_assert_eq(a.type, PERF_TYPE_SOFTWARE);
        cr_assert_eq(a.config, sw_config[i], "%s", prof_ctr_default_sw[i]);
    }
    static const uint64_t hw_config[] = {PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS};
    for (size_t i = 0; prof_ctr_default_hw[i]; i++) {
        cr_assert_eq(prof_ctr_encode(prof_ctr_default_hw[i], &a, fstr, sizeof fstr, &msg), 0);
        cr_assert_eq(a.type, PERF_TYPE_HARDWARE);
        cr_assert_eq(a.config, hw_config[i], "%s", prof_ctr_default_hw[i]);
    }
    cr_assert_eq(prof_ctr_encode("cycles:u", &a, fstr, sizeof fstr, &msg), 0);
    cr_assert_eq(a.exclude_kernel, 1, "libpfm4's modifiers are kept");
    cr_assert_lt(prof_ctr_encode("perf::NO_SUCH_EVENT_HERE", &a, fstr, sizeof fstr, &msg), 0);
    cr_assert_not_null(msg);
}

Test(libpfm4, cycles_here_is_measured_or_says_no_pmu)
{
    /* Whether this machine has a PMU, asked of the kernel directly; user mode only, which
     * perf_event_paranoid 2 allows anyone. */
    struct perf_event_attr pa = {.size = sizeof pa, .type = PERF_TYPE_HARDWARE,
                                 .config = PERF_COUNT_HW_CPU_CYCLES, .exclude_kernel = 1, .exclude_hv = 1};
    long fd = syscall(SYS_perf_event_open, &pa, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0)
        close((int)fd);

    struct prof_ctr_event ev;
    cr_assert_eq(prof_ctr_resolve(&prof_ctr_sys_real, "cycles", &ev), 0);
    cr_assert(ev.hardware);
    cr_assert_eq(ev.role, PROF_CTR_ROLE_CYCLES);
    if (fd >= 0) {
        cr_assert_eq(ev.source, PROF_CTR_SRC_PERF, "a PMU here: %s", ev.reason);
        cr_assert(ev.reason[0] == '\0' || strstr(ev.reason, "retried user-only"), "reason: %s", ev.reason);
    } else if (err == ENOENT || err == ENODEV || err == EOPNOTSUPP) {
        cr_assert_eq(ev.source, PROF_CTR_SRC_NONE);
        cr_assert(strncmp(ev.reason, "no PMU", 6) == 0, "reason: %s", ev.reason);
    } else {
        cr_log_info("cycles: perf_event_open: errno %d here; the ladder says: %s", err, ev.reason);
        cr_assert_neq(ev.reason[0], '\0');
    }

    /* the software default set opens everywhere these tests run (as root, or paranoid <= 2) */
    cr_assert_eq(prof_ctr_resolve(&prof_ctr_sys_real, "perf::CONTEXT-SWITCHES", &ev), 0);
    cr_assert_neq(ev.source, PROF_CTR_SRC_NONE, "%s", ev.reason);
}

/* The listing: every event of the present PMUs, probed once per encoding. */
struct listed {
    int n, cs_available, cycles_seen, cycles_available;
    char cycles_reason[PROF_CTR_REASON_BYTES];
};

static void on_listing(void *ctx, const struct prof_ctr_listing *l)
{
    struct listed *s = ctx;
    s->n++;
    cr_assert(l->pmu && l->name && l->desc && l->reason);
    if (strcmp(l->name, "perf::CONTEXT-SWITCHES") == 0)
        s->cs_available = l->available && !l->hardware;
    if (strcmp(l->name, "perf::CYCLES") == 0) {
        s->cycles_seen = 1;
        s->cycles_available = l->available;
        cr_assert(l->hardware);
        snprintf(s->cycles_reason, sizeof s->cycles_reason, "%s", l->reason);
    }
}

Test(libpfm4, the_listing_probes_each_encoding_once)
{
    struct fake f;
    struct prof_ctr_sys sys = fake_sys(&f, 0);
    struct listed s = {0};

    int n = prof_ctr_list(&sys, on_listing, &s);
    cr_assert_gt(n, 20, "libpfm4's perf table alone has dozens");
    cr_assert_eq(n, s.n);
    cr_assert(s.cs_available);
    cr_assert(s.cycles_seen);
    cr_assert_not(s.cycles_available);
    cr_assert_str_eq(s.cycles_reason, "no PMU counts it here (perf_event_open: ENOENT)");
    cr_assert_lt(f.opens, n, "%d opens for %d events: aliases share a probe", f.opens, n);
    cr_assert_leq(f.closes, f.opens, "every descriptor the fake gave is closed once, placeholders never");
}

Test(sys, a_counter_of_one_task)
{
    struct prof_ctr_attr a = {.type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_TASK_CLOCK};
    int fd = prof_ctr_sys_open_task(&a, (pid_t)syscall(SYS_gettid), -1);
    if (fd == -EACCES || fd == -EPERM) {
        cr_log_info("perf_event_open refused here (%d): nothing to read", fd);
        return;
    }
    cr_assert_geq(fd, 0, "open_task: %d", fd);
    volatile unsigned long spin = 0;
    for (unsigned long i = 0; i < 2000000; i++)
        spin += i;
    uint64_t v[3]; /* value, time enabled, time running */
    cr_assert_eq(read(fd, v, sizeof v), (ssize_t)sizeof v);
    cr_assert_gt(v[0], 0, "task clock ran");
    cr_assert_gt(v[1], 0);
    close(fd);
    cr_assert_eq(prof_ctr_sys_open_task(&a, 0x7ffffff0, -1), -ESRCH);
}
