/*
 * tools/cmd_train.c — `ignis train` (placeholder until its issue lands).
 */
#include "cli_impl.h"

int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAILED, "'train' is not yet available");
}
