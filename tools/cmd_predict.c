/*
 * tools/cmd_predict.c — `ignis predict` (placeholder until its issue lands).
 */
#include "cli_impl.h"

int cmd_predict(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAILED, "'predict' is not yet available");
}
