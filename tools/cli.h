/* cli.h: what every poolprof command shares: its entry, its option table and the one parser, the exit statuses, the messages. */
#ifndef POOLPROF_CLI_H
#define POOLPROF_CLI_H

#include <stddef.h>
#include <stdio.h>

/*
 * X(name, value, status as shown, meaning): every exit status of the CLI, one table for
 * the code (CLI_EXIT_name) and for `poolprof help`. SIGNAL is a base (128 + N); CHILD has
 * no value of its own: `run` passes the target's status through.
 */
#define CLI_EXIT_MAP(X)                                                                                       \
    X(OK, 0, "0", "success")                                                                                  \
    X(FAILED, 1, "1",                                                                                         \
      "failure: a run directory or report could not be read or written (report, attach); a run of sweep "    \
      "failed; check: a regression")                                                                          \
    X(USAGE, 2, "2",                                                                                          \
      "bad usage: unknown command or option, bad option value, an output path that cannot be written, "       \
      "RUNDIR not empty without --force, no such PID, a thresholds file or baseline report that cannot be "   \
      "read -- checked before the target starts")                                                             \
    X(UNMEASURED, 3, "3", "check: could not measure: a command failed, or its report could not be read")   \
    X(INCONCLUSIVE, 4, "4", "check --strict: a comparison was inconclusive")                                \
    X(NOTFOUND, 127, "127", "CMD not found or cannot be executed (run, sweep)")                               \
    X(SIGNAL, 128, "128+N", "run: CMD was killed by signal N; sweep, check: poolprof was stopped by signal N") \
    X(CHILD, -1, "CMD's own", "run: CMD exited with that status (poolprof passes it through)")

enum cli_exit {
#define CLI_EXIT_ENUM(name, value, shown, meaning) CLI_EXIT_##name = (value),
    CLI_EXIT_MAP(CLI_EXIT_ENUM)
#undef CLI_EXIT_ENUM
};

/* A number in a help string: "(default " CLI_STR(DEFAULT_RATE_HZ) ")". */
#define CLI_STR_(x) #x
#define CLI_STR(x) CLI_STR_(x)

struct cli_opt;

/*
 * An option's parser: turn value (NULL for a flag) into the field at dst. 0, or a negative
 * PROF_E* code with why filled in ("wants milliseconds from 1 to 60000"); the caller prints
 * the one line naming the command, the option and the value.
 */
typedef int (*cli_parse_fn)(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);

/* One row of a command's option table; a row with name NULL ends it. */
struct cli_opt {
    const char *name;  /* long name, without "--" */
    char short_name;   /* -o; 0: none */
    const char *value; /* the value's name in help ("MS"); NULL: a flag, which takes none */
    const char *help;  /* what it does and its default, for poolprof help CMD */
    cli_parse_fn parse;
    size_t offset;     /* of the field parse writes, in the command's options (cli_cmd.dst) */
    long min, max;     /* bounds for cli_int and cli_seconds */
    const char *unit;  /* what the number counts, for cli_int's message ("milliseconds") */
};

/* What follows a command's options. */
enum cli_args {
    CLI_ARGS_LIST,    /* min_args to max_args words, options before, between and after them, up to "--" */
    CLI_ARGS_COMMAND, /* a command: the first word that is not an option, or what follows "--", and all after it */
};

/* A command of poolprof: tools/cmds/<name>.c defines one, the dispatcher (poolprof.c) only walks the table. */
struct cli_cmd {
    const char *name;
    const char *summary;        /* one line, for poolprof help */
    const char *usage;          /* what follows "poolprof NAME ": "[OPTIONS] PID [OPTIONS]" */
    const char *about;          /* paragraphs for poolprof help NAME (already wrapped) */
    const char *exits;          /* its exit statuses, one sentence for poolprof help NAME */
    const struct cli_opt *opts; /* its options; -h/--help is every command's */
    void *dst;                  /* the command's options, with its defaults, that parse fills */
    enum cli_args args;
    const char *arg_name;       /* "PID", "RUNDIR", "CMD": in messages */
    int min_args, max_args;     /* CLI_ARGS_LIST; CLI_ARGS_COMMAND: min_args 0 or 1 */
    void (*help_more)(FILE *out); /* more for poolprof help NAME (the output formats), or NULL */
    /* Run the command on its parsed options and its args (NULL-terminated); poolprof's exit status. */
    int (*exec)(char **args, int nargs);
};

/* The command table (poolprof.c), for the dispatcher and for help: NULL past the last. */
const struct cli_cmd *cli_command_at(size_t i);
const struct cli_cmd *cli_command_find(const char *name);

/*
 * Parse argv[1..argc-1] (argv[0] is the command's name) with c's table into c->dst, and run
 * c->exec on what is left. --help anywhere before "--" prints the help and exits 0. A bad
 * option, value or argument count: one line on stderr, CLI_EXIT_USAGE. The exit status.
 */
int cli_run(const struct cli_cmd *c, int argc, char **argv);

/* poolprof help NAME: usage, description, every option from the table, more, exit statuses. */
void cli_help(const struct cli_cmd *c, FILE *out);
/* The exit-status table, for poolprof help. */
void cli_help_exits(FILE *out);
/* Print text from column col (what the line already holds) wrapped to the help width, every line of
 * it starting at column indent; line breaks in text are kept, and the last line is ended. */
void cli_wrap(FILE *out, const char *text, int indent, int col);

/* "poolprof: CMD: " + the message + newline, on stderr: every message of the CLI. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The command running now ("poolprof" before one is chosen). */
const char *cli_name(void);

/* Option parsers for the tables. */
int cli_flag_on(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);  /* int = 1 */
int cli_flag_off(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap); /* int = 0 */
int cli_string(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);   /* const char * */
int cli_int(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);      /* int in [min, max] */
int cli_u64(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);      /* unsigned long long (a seed) */
int cli_seconds(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);  /* double in (0, max] */
/* A path an output can be written to (the file, or a temporary file beside it, then renamed): const char *. */
int cli_output_path(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap);

/* Whether poolprof can write path now, as a renderer does (a temporary file beside it, renamed over
 * it; a device or pipe in place); nothing is left behind. 0, or PROF_E* with why filled in. */
int cli_check_writable(const char *path, char *why, size_t cap);

#endif
