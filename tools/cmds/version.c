/* version.c: `poolprof version`: prints the version. */
#include <stdio.h>

#include "cmds.h"

static int exec_version(char **args, int nargs)
{
    (void)args, (void)nargs;
    printf("poolprof %s\n", POOLPROF_VERSION);
    return CLI_EXIT_OK;
}

const struct cli_cmd cmd_version = {
    .name = "version",
    .summary = "print the version",
    .usage = "",
    .about = "Print poolprof's version on standard output.",
    .exits = "exit status: 0.",
    .args = CLI_ARGS_LIST,
    .arg_name = "nothing",
    .min_args = 0,
    .max_args = 0,
    .exec = exec_version,
};
