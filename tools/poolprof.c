/* poolprof.c: the poolprof command line: one table of subcommands, each implemented in tools/cmds/. */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cmd commands[] = {
    {"run", cmd_run, "run a command under the profiler and report per-stage verdicts"},
    {"attach", cmd_attach, "profile a running process and its descendants, then detach and report"},
    {"report", cmd_report, "merge a run directory again and render its report"},
    {"sweep", cmd_sweep, "run a command at several worker counts: wall time, speedup, Amdahl and USL fits, against poolprof's recommendation"},
    {"help", cmd_help, "show this help, or a command's help (poolprof help run)"},
    {"version", cmd_version, "print the version"},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static void usage(FILE *out)
{
    fprintf(out, "usage: poolprof [--help] [--version] COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nexample: poolprof run -- python3 pipeline.py\n");
}

static const struct cmd *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const struct cmd *c = find(argv[1]);
    if (!c || c->fn == cmd_help || c->fn == cmd_version) {
        if (!c) {
            fprintf(stderr, "poolprof: '%s' is not a poolprof command\n", argv[1]);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    char *args[] = {argv[1], "--help", NULL};
    return c->fn(2, args);
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("poolprof %s\n", POOLPROF_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        name = "version";
    const struct cmd *c = find(name);
    if (!c) {
        fprintf(stderr, "poolprof: '%s' is not a poolprof command\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->fn(argc - 1, argv + 1);
}
