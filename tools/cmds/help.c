/* help.c: `poolprof help [COMMAND]`: the commands, the output formats and the exit statuses, or every option of one command, all from their tables. */
#include <stdio.h>

#include "cmds.h"
#include "output.h"

void help_overview(FILE *out)
{
    fprintf(out, "usage: poolprof COMMAND [OPTIONS] [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; cli_command_at(i); i++) {
        const struct cli_cmd *c = cli_command_at(i);
        cli_wrap(out, c->summary, 12, fprintf(out, "  %-9s ", c->name));
    }
    fprintf(out, "\n");
    outputs_help(out);
    fprintf(out, "\nexit status:\n");
    cli_help_exits(out);
    fprintf(out, "\npoolprof help COMMAND (or poolprof COMMAND --help) describes every option of COMMAND.\n"
                 "example: poolprof run -- python3 pipeline.py\n");
}

void help_not_a_command(const char *word)
{
    char names[128];
    size_t len = 0;

    names[0] = '\0';
    for (size_t i = 0; cli_command_at(i) && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", cli_command_at(i)->name);
    cli_msg("'%s' is not a poolprof command (commands: %s)", word, names);
}

static int exec_help(char **args, int nargs)
{
    if (nargs == 0) {
        help_overview(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *c = cli_command_find(args[0]);
    if (!c) {
        help_not_a_command(args[0]);
        return CLI_EXIT_USAGE;
    }
    cli_help(c, stdout);
    return CLI_EXIT_OK;
}

const struct cli_cmd cmd_help = {
    .name = "help",
    .summary = "the commands, output formats and exit statuses; with COMMAND, every option of it",
    .usage = "[COMMAND]",
    .about = "Without COMMAND: the commands, the output formats and the exit statuses of poolprof. With COMMAND: "
             "what it does and every option it takes, as poolprof COMMAND --help prints them.",
    .exits = "exit status: 0; 2 when COMMAND is not a poolprof command.",
    .args = CLI_ARGS_LIST,
    .arg_name = "COMMAND",
    .min_args = 0,
    .max_args = 1,
    .exec = exec_help,
};
