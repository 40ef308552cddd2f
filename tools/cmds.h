/* cmds.h: the poolprof subcommands, each in tools/cmds/<name>.c, dispatched from the table in tools/poolprof.c. */
#ifndef POOLPROF_CMDS_H
#define POOLPROF_CMDS_H

/* argv[0] is the command name; the return value is poolprof's exit status. */
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

#endif
