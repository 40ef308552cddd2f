/* cmds.h: the poolprof commands, one entry each in tools/cmds/<name>.c, walked by the dispatcher in tools/poolprof.c. */
#ifndef POOLPROF_CMDS_H
#define POOLPROF_CMDS_H

#include "cli.h"

extern const struct cli_cmd cmd_run;
extern const struct cli_cmd cmd_attach;
extern const struct cli_cmd cmd_report;
extern const struct cli_cmd cmd_sweep;
extern const struct cli_cmd cmd_check;
extern const struct cli_cmd cmd_counters;
extern const struct cli_cmd cmd_help;
extern const struct cli_cmd cmd_version;

/* help.c: what `poolprof help` prints (the commands, the formats, the exit statuses), and the one
 * line for a word that is no command. */
void help_overview(FILE *out);
void help_not_a_command(const char *word);

#endif
