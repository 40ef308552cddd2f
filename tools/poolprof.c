/* poolprof.c: the poolprof command line: the table of commands, each an entry in tools/cmds/, and the dispatcher that walks it. */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

/* Every command, in the order `poolprof help` lists them. */
static const struct cli_cmd *const commands[] = {&cmd_run, &cmd_attach, &cmd_report, &cmd_sweep, &cmd_check, &cmd_counters, &cmd_help, &cmd_version};
#define NCOMMANDS (sizeof commands / sizeof *commands)

const struct cli_cmd *cli_command_at(size_t i)
{
    return i < NCOMMANDS ? commands[i] : NULL;
}

const struct cli_cmd *cli_command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help_overview(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        name = "version";
    const struct cli_cmd *c = cli_command_find(name);
    if (!c) {
        help_not_a_command(argv[1]);
        return CLI_EXIT_USAGE;
    }
    return cli_run(c, argc - 1, argv + 1);
}
