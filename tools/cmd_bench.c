/*
 * tools/cmd_bench.c — `ignis bench` (placeholder until its issue lands).
 */
#include "cli_impl.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(EXIT_FAILED, "'bench' is not yet available");
}
