/*
 * tools/ignis.c - the `ignis` command-line tool: dispatches `ignis <command> [options]`
 * to the subcommands in tools/cmd_*.c, in the style of git. Conventions are in
 * tools/cli_impl.h: help to stdout and exit 0; usage mistakes "ignis: error: ..." and exit
 * 2; runtime failures one "ignis: error: ..." line and exit 1. Only tools/ calls exit().
 */
#include <stdio.h>
#include <string.h>

#include "cli_impl.h"
#include "core/version.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a model on a dataset, writing checkpoints and metrics"},
    {"eval", cmd_eval, "accuracy, per-class metrics and confusion matrix of a checkpoint"},
    {"predict", cmd_predict, "top classes of images under a checkpoint"},
    {"summary", cmd_summary, "a model's layers, output shapes, parameters and FLOPs"},
    {"bench", cmd_bench, "measure training throughput"},
    {"convert", cmd_convert, "write a dataset out as a PNG image folder"},
};

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: ignis <command> [options]\n"
            "       ignis --version\n"
            "       ignis --help\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s  %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Run 'ignis <command> --help' for a command's options.\n"
            "\n"
            "options:\n"
            "  -h, --help   show this help and exit\n"
            "  --version    print the version and exit\n");
}

/* Prints "ignis: error: <message>" plus a hint on stderr; returns EXIT_USAGE. */
static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "ignis: error: %s '%s'\n", what, arg);
    fprintf(stderr, "Try 'ignis --help' for more information.\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *arg = argv[1];
    int is_help = strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
    int is_version = strcmp(arg, "--version") == 0;

    if (is_help || is_version) {
        if (argc > 2)
            return usage_error("unexpected argument", argv[2]);
        if (is_help)
            print_usage(stdout);
        else
            printf("ignis %s\n", ig_version());
        return EXIT_OK;
    }
    if (arg[0] == '-')
        return usage_error("unknown option", arg);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(arg, commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    return usage_error("unknown command", arg);
}
