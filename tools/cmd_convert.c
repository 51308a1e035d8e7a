/*
 * tools/cmd_convert.c — `ignis convert` (placeholder until its issue lands).
 */
#include "cli_impl.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAILED, "'convert' is not yet available");
}
