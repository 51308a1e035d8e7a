/*
 * tools/cli_impl.h — what the `ignis` subcommands share: exit codes, error reporting and
 * a small declarative option parser.
 *
 * Conventions (Unix): help goes to stdout and exits 0; a usage mistake (unknown flag, bad
 * value, missing argument) prints "ignis: error: ..." on stderr and exits 2; a runtime
 * failure prints one line "ignis: error: ..." on stderr and exits 1. Only tools/ exits.
 */
#ifndef IGNIS_TOOLS_CLI_IMPL_H
#define IGNIS_TOOLS_CLI_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* Prints "ignis: error: <formatted>" to stderr; returns code (EXIT_FAILED or EXIT_USAGE).
 * In a data-parallel job (after cli_set_rank) it prints "ignis: error: rank R: ...". */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes cli_error name this process' rank (-1: no rank, the default). */
void cli_set_rank(int rank);

typedef enum { CLI_FLAG, CLI_INT, CLI_DOUBLE, CLI_STRING } cli_kind;

/* One option "--name VALUE" (or "--name=VALUE"; flags take no value). dest points at a
 * bool (flag), int64_t, double or const char * (pointing into argv). */
typedef struct cli_option {
    const char *name;    /* without the dashes */
    cli_kind kind;
    void *dest;
    const char *metavar; /* e.g. "N", "DIR"; NULL for flags */
    const char *help;
    bool *seen;          /* optional: set when the option was given */
} cli_option;

/* Parses argv[0..argc) (the arguments after the command name). Positional arguments are
 * stored in pos[0..*npos) (at most max_pos; more is a usage error). -h/--help prints the
 * help (usage line, description, options) to stdout and returns -1 (caller exits 0).
 * Returns 0 on success or EXIT_USAGE after printing the error. */
int cli_parse(const char *cmd, const char *usage, const char *description, int argc, char **argv,
              const cli_option *opts, int nopts, char **pos, int *npos, int max_pos);
void cli_print_help(FILE *f, const char *cmd, const char *usage, const char *description,
                    const cli_option *opts, int nopts);

/* The subcommands: argc/argv are the arguments after the command name. Each returns an
 * exit code. */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
