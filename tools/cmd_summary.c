/*
 * tools/cmd_summary.c — `ignis summary` (placeholder until its issue lands).
 */
#include "cli_impl.h"

int cmd_summary(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAILED, "'summary' is not yet available");
}
