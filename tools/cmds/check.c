/* check.c: `poolprof check`: the CI gate: profiles a base and a current command in interleaved rounds (or reads saved reports), holds one against the other under the rules, renders the result and exits with what it found. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wordexp.h>

#include "cmds.h"
#include "core/check.h"
#include "output.h"
#include "prof.h"
#include "readreport.h"
#include "reports/check_render.h"
#include "session.h"

#define DEFAULT_ROUNDS 5
#define MAX_ROUNDS 100
#define MAX_CONFIRM 10
#define MAX_FLAGS 32
#define MAX_REPORTS 256
#define DEFAULT_CHECK_SEED 20261207

/* The options, with their defaults; the table below fills them. */
static struct check {
    const char *base_cmd;  /* --base */
    const char *baseline;  /* --baseline LIST */
    int rounds;
    int confirm;
    int strict;
    const char *config;    /* --config FILE */
    const char *flags[MAX_FLAGS]; /* --threshold FIGURE=FRACTION */
    size_t nflags;
    const char *keep;
    unsigned long long seed;
    struct outputs out;
} check = {
    .rounds = DEFAULT_ROUNDS,
    .seed = DEFAULT_CHECK_SEED,
    .out = {.table = prof_check_renderer_at},
};

static int parse_threshold(const struct cli_opt *o, const char *arg, void *dst, char *why, size_t cap)
{
    struct check *c = dst;
    struct prof_check_rules probe = {0};

    (void)o;
    if (c->nflags == MAX_FLAGS) {
        snprintf(why, cap, "at most %d thresholds", MAX_FLAGS);
        return PROF_ERANGE;
    }
    /* Checked here, so a typo is one line before anything runs. */
    int err = prof_check_rules_add_flag(&probe, arg, why, cap);
    prof_check_rules_free(&probe);
    if (err < 0)
        return err;
    c->flags[c->nflags++] = arg;
    return 0;
}

static const struct cli_opt options[] = {
    {"base", 0, "CMD",
     "same-job mode: the base command, one string split as a shell splits words (quotes kept together, no "
     "command substitution); CMD after the options is the current one",
     cli_string, offsetof(struct check, base_cmd), 0, 0, NULL},
    {"baseline", 0, "REPORTS",
     "saved mode: the base's reports, comma-separated report files or run directories; what follows the options "
     "is the current side's, in the same form",
     cli_string, offsetof(struct check, baseline), 0, 0, NULL},
    {"rounds", 0, "N", "same-job mode: runs of each command, interleaved ABBA, 1 to " CLI_STR(MAX_ROUNDS)
     " (default " CLI_STR(DEFAULT_ROUNDS) "; below 5 no time figure can be found regressed)",
     cli_int, offsetof(struct check, rounds), 1, MAX_ROUNDS, "rounds"},
    {"confirm", 0, "K",
     "same-job mode: a regression found is measured again in K more sets of rounds, and fails the gate only if "
     "every one finds it too (0 to " CLI_STR(MAX_CONFIRM) ", default 0)",
     cli_int, offsetof(struct check, confirm), 0, MAX_CONFIRM, "confirmations"},
    {"config", 0, "FILE", "the thresholds file (default ./" PROF_CHECK_CONFIG_FILE " when there is one)", cli_string,
     offsetof(struct check, config), 0, 0, NULL},
    {"threshold", 0, "FIGURE=FRACTION",
     "allow FIGURE to grow by FRACTION on every stage (wall_seconds=0.2: +20%), over the thresholds file's "
     "rules for all stages (\"*\"), not over its rules for named stages; repeatable",
     parse_threshold, 0, 0, 0, NULL},
    {"strict", 0, NULL, "an inconclusive comparison exits 4 (default: 0, with a warning)", cli_flag_on,
     offsetof(struct check, strict), 0, 0, NULL},
    {"format", 0, "FORMAT[=PATH]",
     "render the result in FORMAT (below) to PATH, '-' for standard output; without PATH, to standard output in "
     "place of the terminal table; repeatable. GITHUB_ACTIONS=true in the environment adds github on standard "
     "output unless a github output is given",
     output_parse_format, offsetof(struct check, out), 0, 0, NULL},
    {"keep", 0, "DIR",
     "same-job mode: keep every run directory (DIR/base-N, DIR/current-N, each with report.json and the "
     "command's output in run.log), created if missing",
     cli_string, offsetof(struct check, keep), 0, 0, NULL},
    {"seed", 0, "N", "the bootstrap's seed, a non-negative integer (default " CLI_STR(DEFAULT_CHECK_SEED) ")",
     cli_u64, offsetof(struct check, seed), 0, 0, NULL},
    {NULL, 0, NULL, NULL, NULL, 0, 0, 0, NULL},
};

/* ---- the rules ---------------------------------------------------------------------------------------- */

/* Defaults, then the thresholds file (--config, or ./poolprof-check.json), then the flags. 0, or
 * CLI_EXIT_USAGE after one line naming the file. */
static int load_rules(const struct check *c, struct prof_check_rules *rs)
{
    char why[1400];
    const char *path = c->config;
    struct stat st;

    if (prof_check_rules_default(rs) < 0) {
        cli_msg("out of memory");
        return CLI_EXIT_FAILED;
    }
    if (!path && stat(PROF_CHECK_CONFIG_FILE, &st) == 0)
        path = PROF_CHECK_CONFIG_FILE;
    if (path) {
        json_error_t je;
        json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!cfg) {
            if (stat(path, &st) < 0)
                cli_msg("%s: %s", path, strerror(errno));
            else
                cli_msg("%s:%d:%d: not JSON: %s", path, je.line, je.column, je.text);
            return CLI_EXIT_USAGE;
        }
        int err = prof_check_rules_add_config(rs, cfg, why, sizeof why);
        json_decref(cfg);
        if (err < 0) {
            cli_msg("%s: %s", path, why);
            return CLI_EXIT_USAGE;
        }
    }
    for (size_t i = 0; i < c->nflags; i++) {
        if (prof_check_rules_add_flag(rs, c->flags[i], why, sizeof why) < 0) {
            cli_msg("--threshold %s: %s", c->flags[i], why);
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* ---- one side's reports --------------------------------------------------------------------------------- */

struct side {
    json_t *docs[MAX_REPORTS];
    char *paths[MAX_REPORTS];
    size_t n;
    char *label;
};

static void side_free(struct side *s)
{
    for (size_t i = 0; i < s->n; i++) {
        json_decref(s->docs[i]);
        free(s->paths[i]);
    }
    free(s->label);
    memset(s, 0, sizeof *s);
}

/* The reports of a comma-separated list. 0, or -1 after one line naming the file. */
static int read_list(struct side *s, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int rc = 0;

    if (!copy)
        return -1;
    for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (s->n == MAX_REPORTS) {
            cli_msg("%s: more than %d reports on a side", p, MAX_REPORTS);
            rc = -1;
            break;
        }
        if (readreport_doc(p, NULL, &s->docs[s->n]) < 0) {
            rc = -1;
            break;
        }
        s->paths[s->n++] = strdup(p);
    }
    free(copy);
    return rc;
}

/* "a b c": argv joined, for labels. */
static char *join(char *const *argv)
{
    size_t len = 1;
    for (size_t i = 0; argv[i]; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; argv[i]; i++)
        p += sprintf(p, "%s%s", i ? " " : "", argv[i]);
    *p = '\0';
    return s;
}

/* ---- measuring -------------------------------------------------------------------------------------------- */

struct measure {
    char dir[PATH_MAX];   /* where the run directories go */
    int temporary;        /* dir is ours to remove */
    char self[PATH_MAX];
    char **argv[2];       /* base, current */
    int count[2];         /* runs made of each, for their names */
    int progress;
};

static const char *const side_name[2] = {"base", "current"};

/* A stop signal (Ctrl-C, a CI runner's SIGTERM) that came during the rounds: the running profile
 * is passed it, and the check ends with 128+N once its scratch directory is removed. */
static volatile sig_atomic_t stopped_by;

static void on_stop(int sig)
{
    stopped_by = sig;
}

static void catch_stops(int on)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_stop : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction cur;
        /* One the caller ignored (nohup) stays ignored. */
        if (sigaction(sigs[i], NULL, &cur) == 0 && cur.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

/*
 * Profile argv once (`poolprof run -o DIR/NAME-N`), its output in DIR/NAME-N.log, and read its
 * report into s. 0, or CLI_EXIT_UNMEASURED after one line (the command failed, or left no report).
 */
static int measure_one(struct measure *m, int which, struct side *s, int round, int nrounds)
{
    char rundir[PATH_MAX + 32], log[PATH_MAX + 48];
    int n = ++m->count[which];

    if (stopped_by) {
        cli_msg("stopped by signal %d (%s) before round %d", (int)stopped_by, strsignal(stopped_by), round);
        return CLI_EXIT_SIGNAL + stopped_by;
    }
    snprintf(rundir, sizeof rundir, "%s/%s-%d", m->dir, side_name[which], n);
    snprintf(log, sizeof log, "%s/%s-%d.log", m->dir, side_name[which], n);
    if (m->progress)
        fprintf(stderr, "\rpoolprof check: round %d/%d: %s...\033[K", round, nrounds, side_name[which]);
    size_t argc = 0;
    while (m->argv[which][argc])
        argc++;
    char **argv = calloc(argc + 6, sizeof *argv);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!argv || fd < 0) {
        cli_msg("%s: cannot write: %s", log, strerror(errno ? errno : ENOMEM));
        free(argv);
        if (fd >= 0)
            close(fd);
        return CLI_EXIT_UNMEASURED;
    }
    argv[0] = m->self;
    argv[1] = "run";
    argv[2] = "-o";
    argv[3] = rundir;
    argv[4] = "--";
    memcpy(argv + 5, m->argv[which], argc * sizeof *argv);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(m->self, argv);
        _exit(CLI_EXIT_NOTFOUND);
    }
    int status = 0, passed_on = 0;
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            if (stopped_by && !passed_on) {
                kill(pid, stopped_by); /* poolprof run ends its target and leaves a readable run */
                passed_on = 1;
            }
        }
    }
    close(fd);
    free(argv);
    if (m->progress)
        fprintf(stderr, "\r\033[K");
    if (stopped_by) {
        cli_msg("stopped by signal %d (%s) in round %d", (int)stopped_by, strsignal(stopped_by), round);
        return CLI_EXIT_SIGNAL + stopped_by;
    }
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char st[64];
        if (pid < 0)
            snprintf(st, sizeof st, "cannot fork: %s", strerror(errno));
        else if (WIFSIGNALED(status))
            snprintf(st, sizeof st, "killed by signal %d", WTERMSIG(status));
        else
            snprintf(st, sizeof st, "exit status %d", WEXITSTATUS(status));
        if (m->temporary)
            cli_msg("the %s command failed in round %d: %s (--keep DIR keeps its output)", side_name[which], round, st);
        else
            cli_msg("the %s command failed in round %d: %s; its output: %s", side_name[which], round, st, log);
        return CLI_EXIT_UNMEASURED;
    }
    if (readreport_doc(rundir, NULL, &s->docs[s->n]) < 0)
        return CLI_EXIT_UNMEASURED;
    s->paths[s->n++] = m->temporary ? NULL : strdup(rundir);
    return 0;
}

/* nrounds rounds, ABBA: base first in odd rounds, current first in even ones, so a drift of the
 * machine weighs on both sides alike. 0 or CLI_EXIT_UNMEASURED. */
static int measure_rounds(struct measure *m, struct side *sides, int nrounds)
{
    for (int r = 1; r <= nrounds; r++) {
        for (int k = 0; k < 2; k++) {
            int which = (r % 2 == 1) ? k : 1 - k;
            if (sides[which].n == MAX_REPORTS) {
                cli_msg("more than %d runs on a side", MAX_REPORTS);
                return CLI_EXIT_UNMEASURED;
            }
            int rc = measure_one(m, which, &sides[which], r, nrounds);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* The base command's words. 0, or CLI_EXIT_USAGE after one line. */
static int split_base(const char *cmd, wordexp_t *we)
{
    int err = wordexp(cmd, we, WRDE_NOCMD);
    if (err == 0 && we->we_wordc > 0)
        return 0;
    if (err == 0)
        wordfree(we);
    cli_msg("--base '%s': %s", cmd,
            err == 0 ? "no command in it"
            : err == WRDE_CMDSUB ? "command substitution is not taken (give the command itself)"
            : err == WRDE_BADCHAR ? "a character the shell would treat specially (| & ; < > ( ) { } or newline): give "
                                    "one command, or wrap the pipeline in sh -c '...'"
            : "unbalanced quotes or a bad word");
    return CLI_EXIT_USAGE;
}

/* Both programs exist, before anything runs. 0, or CLI_EXIT_UNMEASURED after one line. */
static int resolve(char **base, char **cur)
{
    char found[PATH_MAX];
    char *prog[2] = {base[0], cur[0]};
    for (int k = 0; k < 2; k++) {
        int err = session_resolve_command(prog[k], found, sizeof found);
        if (err < 0) {
            session_exec_error(prog[k], err);
            return CLI_EXIT_UNMEASURED;
        }
    }
    return 0;
}

static int make_dir(struct measure *m, const char *keep)
{
    const char *tmp = getenv("TMPDIR");
    if (keep) {
        if (mkdir(keep, 0755) < 0 && errno != EEXIST) {
            cli_msg("--keep '%s': cannot create: %s", keep, strerror(errno));
            return CLI_EXIT_USAGE;
        }
        snprintf(m->dir, sizeof m->dir, "%s", keep);
        return 0;
    }
    snprintf(m->dir, sizeof m->dir, "%s/poolprof-check.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(m->dir)) {
        cli_msg("%s: cannot make a directory for the runs: %s", m->dir, strerror(errno));
        return CLI_EXIT_UNMEASURED;
    }
    m->temporary = 1;
    return 0;
}

/* ---- the check ---------------------------------------------------------------------------------------------- */

static int compare(const struct prof_check_rules *rs, struct side *sides, const struct check *c, const char *mode,
                   json_t **doc)
{
    struct prof_check_side s[2];
    for (int k = 0; k < 2; k++) {
        s[k] = (struct prof_check_side){.reports = sides[k].docs, .n = sides[k].n, .label = sides[k].label,
                                        .paths = (const char *const *)sides[k].paths};
        /* Runs in a directory removed at the end have no path to give. */
        for (size_t i = 0; i < sides[k].n; i++)
            if (!sides[k].paths[i])
                s[k].paths = NULL;
    }
    struct prof_check_opts o = {.mode = mode, .rounds = c->base_cmd ? c->rounds : 0, .confirm = c->confirm,
                                .strict = c->strict, .seed = c->seed};
    if (prof_check_compare(rs, &s[0], &s[1], &o, doc) < 0) {
        cli_msg("out of memory");
        return CLI_EXIT_FAILED;
    }
    return 0;
}

/* Render what was asked, and github annotations on standard output under GitHub Actions. */
static int render(struct check *c, json_t *doc)
{
    struct prof_report r = {.doc = doc};
    const char *gha = getenv("GITHUB_ACTIONS");
    int has_github = 0;

    for (size_t i = 0; i < c->out.n; i++)
        has_github |= c->out.o[i].rd == &prof_check_render_github;
    if (gha && strcmp(gha, "true") == 0 && !has_github && c->out.n < OUTPUTS_MAX) {
        /* In addition to the table, not in place of it: a path of "-" keeps the summary. */
        c->out.o[c->out.n].rd = &prof_check_render_github;
        c->out.o[c->out.n].path = "-";
        c->out.n++;
    }
    return outputs_render(&c->out, &r, stdout) < 0 ? CLI_EXIT_FAILED : 0;
}

static int exec_check(char **args, int nargs)
{
    struct check *c = &check;
    struct prof_check_rules rules = {0};
    struct side sides[2];
    struct measure m = {0};
    wordexp_t we = {0};
    int have_we = 0, rc;
    json_t *doc = NULL;

    memset(sides, 0, sizeof sides);
    if (!!c->base_cmd == !!c->baseline) {
        cli_msg(c->base_cmd ? "--base and --baseline exclude each other"
                            : "--base CMD or --baseline REPORTS is required (poolprof check --base 'CMD_A' -- CMD_B)");
        return CLI_EXIT_USAGE;
    }
    if (c->baseline && (c->confirm || c->keep)) {
        cli_msg("--%s needs --base: saved reports cannot be measured again", c->confirm ? "confirm" : "keep");
        return CLI_EXIT_USAGE;
    }
    if ((rc = load_rules(c, &rules)))
        goto done;

    if (c->baseline) {
        rc = CLI_EXIT_USAGE;
        if (read_list(&sides[0], c->baseline) < 0)
            goto done;
        for (int i = 0; i < nargs; i++) {
            struct stat st;
            /* Everything after the first report is a report: an option there is a slip worth naming. */
            if (args[i][0] == '-' && stat(args[i], &st) < 0) {
                cli_msg("'%s': options come before the current reports (poolprof check [OPTIONS] --baseline BASE "
                        "CURRENT...)", args[i]);
                goto done;
            }
            if (read_list(&sides[1], args[i]) < 0)
                goto done;
        }
        if (!sides[1].n) {
            cli_msg("no current reports after the options");
            goto done;
        }
        sides[0].label = strdup(c->baseline);
        sides[1].label = join(args);
        if ((rc = compare(&rules, sides, c, "saved", &doc)))
            goto done;
    } else {
        if ((rc = split_base(c->base_cmd, &we)))
            goto done;
        have_we = 1;
        m.argv[0] = we.we_wordv;
        m.argv[1] = args;
        if ((rc = resolve(m.argv[0], m.argv[1])) || (rc = make_dir(&m, c->keep)))
            goto done;
        session_self(m.self, sizeof m.self);
        m.progress = isatty(STDERR_FILENO);
        catch_stops(1);
        sides[0].label = strdup(c->base_cmd);
        sides[1].label = join(args);
        if ((rc = measure_rounds(&m, sides, c->rounds)) || (rc = compare(&rules, sides, c, "same-job", &doc)))
            goto done;
        /* Each confirmation measures fresh rounds and compares them alone: a false alarm of
         * probability p must then recur K more times, p^(K+1). */
        for (int k = 1; k <= c->confirm && prof_check_regressed(doc); k++) {
            struct side again[2];
            json_t *doc2 = NULL;
            memset(again, 0, sizeof again);
            again[0].label = strdup(c->base_cmd);
            again[1].label = join(args);
            rc = measure_rounds(&m, again, c->rounds);
            if (!rc)
                rc = compare(&rules, again, c, "same-job", &doc2);
            if (!rc)
                prof_check_confirm(doc, doc2, k, c->rounds);
            json_decref(doc2);
            side_free(&again[0]);
            side_free(&again[1]);
            if (rc)
                goto done;
        }
    }
    if ((rc = render(c, doc)))
        goto done;
    rc = (int)json_integer_value(json_object_get(doc, "exit_status"));
done:
    if (m.temporary)
        session_remove_tree(m.dir);
    if (have_we)
        catch_stops(0);
    if (have_we)
        wordfree(&we);
    json_decref(doc);
    side_free(&sides[0]);
    side_free(&sides[1]);
    prof_check_rules_free(&rules);
    return rc;
}

static void check_help_more(FILE *out)
{
    fprintf(out,
            "rules (built in, then " PROF_CHECK_CONFIG_FILE ", then --threshold; for each stage and figure the most\n"
            "specific stage glob wins: a plain name over any pattern, then more literal characters, then the later):\n"
            "  timing    wall_seconds +10%%, cpu_seconds +5%%, lock.wait_seconds +10%% by default. With 2 or more runs a\n"
            "            side, a regression when the Mann-Whitney U test gives p < 0.01 AND the 95%% bootstrap interval\n"
            "            (10 000 resamples) of median(current) / median(base) lies wholly above 1 + threshold; an\n"
            "            improvement the same way below 1 - threshold; inconclusive when the ratio of the medians is\n"
            "            above 1 + threshold but the two tests do not establish it. One run a side: the ratio alone\n"
            "            (\"single sample\"). Reports from machines whose fingerprints differ (CPU model, usable\n"
            "            CPUs, kernel, PMU, poolprof version): inconclusive, not compared. Below 1 ms counts as 1 ms.\n"
            "  count     ipc.bytes, ipc.messages, rss.peak_bytes +10%%, threads, processes +25%% by default: the ratio\n"
            "            of the medians against the threshold.\n"
            "  limit     only from the file: {\"figure\": \"lock.wait_fraction\", \"max\": 0.2}, \"min\", or\n"
            "            {\"figure\": \"rss.leak_suspected\", \"equals\": false}: the current side's median (majority for\n"
            "            true/false) against the bound; a base that broke it and a current that does not is an\n"
            "            improvement.\n"
            "  verdict   \"recommendation\": fails when a stage's model changes or its workers move by more than\n"
            "            workers_step (default 1), unless one side predicts the other's verdict within 10%% of its own\n"
            "            (a tie); inconclusive when half or fewer of a side's runs agree on its verdict.\n"
            "Improvements are listed, never failures. A stage on one side only, or a figure not measured, is\n"
            "unmeasured: a warning, and skipped in JUnit.\n\n"
            "thresholds file (" PROF_CHECK_CONFIG_FILE "):\n"
            "  {\"schema\": \"" PROF_CHECK_CONFIG_SCHEMA "\",\n"
            "   \"rules\": [{\"stage\": \"*\", \"figure\": \"wall_seconds\", \"max_increase\": 0.15},\n"
            "             {\"stage\": \"overall\", \"figure\": \"ipc.fraction\", \"max\": 0.15},\n"
            "             {\"figure\": \"rss.leak_suspected\", \"equals\": false},\n"
            "             {\"stage\": \"load*\", \"figure\": \"recommendation\", \"workers_step\": 2},\n"
            "             {\"stage\": \"warmup\", \"figure\": \"cpu_seconds\", \"off\": true}],\n"
            "   \"ignore\": [\"debug_*\"]}\n\n");
    outputs_help_table(out, prof_check_renderer_at);
}

const struct cli_cmd cmd_check = {
    .name = "check",
    .summary = "the CI gate: compare a current command or reports with a base, figure by figure and verdict by "
               "verdict, and exit 1 on a regression",
    .usage = "--base 'CMD_A ...' [OPTIONS] [--] CMD_B [ARGS...]  |  --baseline BASE[,...] [OPTIONS] CURRENT[,...]",
    .about = "Same-job mode (preferred): profile the base command and the current command --rounds times each "
             "under poolprof run, interleaved ABBA, and compare them. Saved mode: compare reports saved earlier "
             "(report.json files or run directories). Every stage of either side that no ignore glob names is held "
             "against the rules below; the result is a table on standard output (or the --format outputs) and the "
             "exit status.",
    .exits = "exit status: 0 when nothing regressed (improvements listed; an inconclusive comparison warns); 1 when "
             "a figure or verdict regressed; 2 for bad usage, a thresholds file that cannot be read or is wrong, or "
             "a baseline or current report that is missing, empty, broken or not of schema poolprof.report/1 (one "
             "line naming the file); 3 when a command could not be measured (not found, it failed, or its report "
             "could not be read); 4 with --strict when the comparison was inconclusive; 128+N when poolprof was stopped "
             "by signal N (the running profile is stopped, the scratch runs removed).",
    .opts = options,
    .dst = &check,
    .args = CLI_ARGS_COMMAND,
    .arg_name = "CMD",
    .min_args = 1,
    .help_more = check_help_more,
    .exec = exec_check,
};
