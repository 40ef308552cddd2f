/* counters.c: `poolprof counters`: which perf events this machine counts (the default set first), or with --all every event libpfm4 knows here and why each does not open. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "counters/counters.h"
#include "prof.h"

struct counters_opts {
    int all;
};
static struct counters_opts opts;

static const struct cli_opt options[] = {
    {"all", 0, NULL, "every event libpfm4 knows for this machine's PMUs, available or not, with the reason",
     cli_flag_on, offsetof(struct counters_opts, all), 0, 0, NULL},
    {NULL, 0, NULL, NULL, NULL, 0, 0, 0, NULL},
};

/* One line of the table. */
struct row {
    char *name, *note;
    int hardware, available;
};

struct rows {
    struct row *r;
    size_t n, cap;
    int nomem;
};

static void push(struct rows *rs, const char *name, int hardware, int available, const char *note)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 256;
        struct row *r = realloc(rs->r, cap * sizeof *r);
        if (!r) {
            rs->nomem = 1;
            return;
        }
        rs->r = r;
        rs->cap = cap;
    }
    struct row *w = &rs->r[rs->n];
    w->name = strdup(name);
    w->note = strdup(note);
    if (!w->name || !w->note) {
        free(w->name);
        free(w->note);
        rs->nomem = 1;
        return;
    }
    w->hardware = hardware;
    w->available = available;
    rs->n++;
}

static void on_listing(void *ctx, const struct prof_ctr_listing *l)
{
    push(ctx, l->name, l->hardware, l->available, l->reason);
}

static int counted(const struct prof_ctr_event *ev)
{
    return ev->source == PROF_CTR_SRC_PERF || ev->source == PROF_CTR_SRC_RAW;
}

/* What a PMU said, first: most VMs have none, and then every hardware row below says no. */
static void print_machine(void)
{
    const char *msg = NULL;
    int p = prof_ctr_sys_real.paranoid(prof_ctr_sys_real.ctx);

    if (p == INT32_MIN)
        printf("perf_event_paranoid: unreadable\n");
    else
        printf("perf_event_paranoid=%d\n", p);
    if (prof_ctr_lib_init(&msg) < 0)
        printf("libpfm4 could not initialise (%s): only perf's generic software events, encoded raw\n",
               msg ? msg : "no message");

    struct prof_ctr_event cyc;
    const char *name = prof_ctr_default_hw[0];
    if (prof_ctr_resolve(&prof_ctr_sys_real, name, &cyc) < 0)
        return;
    if (!counted(&cyc))
        printf("no hardware PMU here: %s: %s\n", name, cyc.reason);
    else if (cyc.reason[0])
        printf("a hardware PMU counts here: %s opens (%s)\n", name, cyc.reason);
    else
        printf("a hardware PMU counts here: %s opens\n", name);
}

static void print_rows(const struct rows *rs)
{
    int w = (int)strlen("NAME");
    for (size_t i = 0; i < rs->n; i++)
        if ((int)strlen(rs->r[i].name) > w)
            w = (int)strlen(rs->r[i].name);
    printf("\n%-*s  %-8s  %-9s  %s\n", w, "NAME", "KIND", "AVAILABLE", "NOTE");
    for (size_t i = 0; i < rs->n; i++) {
        const struct row *r = &rs->r[i];
        const char *kind = r->hardware ? "hardware" : "software", *avail = r->available ? "yes" : "no";
        if (r->note[0])
            printf("%-*s  %-8s  %-9s  %s\n", w, r->name, kind, avail, r->note);
        else
            printf("%-*s  %-8s  %s\n", w, r->name, kind, avail);
    }
}

static int exec_counters(char **args, int nargs)
{
    struct prof_ctr_event def[PROF_CTR_MAX];
    struct rows shown = {0}, listed = {0};
    const char *bad = NULL;

    (void)args, (void)nargs;
    print_machine();

    /* The default set: what every run counts, in the order its records list it. */
    int ndef = prof_ctr_resolve_list(&prof_ctr_sys_real, NULL, def, PROF_CTR_MAX, &bad);
    for (int i = 0; i < ndef; i++) {
        char note[PROF_CTR_REASON_BYTES + 16];
        snprintf(note, sizeof note, "default%s%s", def[i].reason[0] ? "; " : "", def[i].reason);
        push(&shown, def[i].name, def[i].hardware, counted(&def[i]), note);
    }
    int n = prof_ctr_list(&prof_ctr_sys_real, on_listing, &listed), open_here = 0;
    for (size_t i = 0; i < listed.n; i++) {
        const struct row *r = &listed.r[i];
        int is_default = 0;
        open_here += r->available;
        for (int k = 0; k < ndef; k++)
            is_default |= strcmp(def[k].name, r->name) == 0;
        if (!is_default && (opts.all || r->available))
            push(&shown, r->name, r->hardware, r->available, r->note);
    }
    if (shown.nomem || listed.nomem)
        cli_msg("out of memory: the table below is cut short");
    print_rows(&shown);
    if (n < 0)
        printf("\nlibpfm4 lists nothing here (%s): the default set only\n", prof_strerror(n));
    else if (!opts.all)
        printf("\n%d of the %d events libpfm4 knows here open; poolprof counters --all lists every one, with why "
               "not\n",
               open_here, n);
    for (size_t i = 0; i < shown.n; i++)
        free(shown.r[i].name), free(shown.r[i].note);
    for (size_t i = 0; i < listed.n; i++)
        free(listed.r[i].name), free(listed.r[i].note);
    free(shown.r);
    free(listed.r);
    return CLI_EXIT_OK;
}

const struct cli_cmd cmd_counters = {
    .name = "counters",
    .summary = "the perf events this machine counts per thread (the default set first)",
    .usage = "[--all]",
    .about = "List the perf events poolprof can count per thread here: first whether a hardware PMU answers "
             "(most VMs have none) and perf_event_paranoid, then a table of NAME, KIND (software or hardware), "
             "AVAILABLE (it opens here) and NOTE. The default set, counted in every run, comes first, marked "
             "default; then every other event that opens. A NAME is what libpfm4 takes (perf::CONTEXT-SWITCHES, "
             "perf::CYCLES, a core PMU's own events). With --all, every event libpfm4 knows for the PMUs it "
             "finds, with why an event does not open (no PMU, perf_event_paranoid, a unit mask it needs).",
    .exits = "exit status: 0 (the table says what is not available); 2 for bad usage.",
    .opts = options,
    .dst = &opts,
    .args = CLI_ARGS_LIST,
    .arg_name = "nothing",
    .min_args = 0,
    .max_args = 0,
    .exec = exec_counters,
};
