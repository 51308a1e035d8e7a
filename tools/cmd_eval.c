/*
 * tools/cmd_eval.c — `ignis eval` (placeholder until its issue lands).
 */
#include "cli_impl.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAILED, "'eval' is not yet available");
}
