/*
 * tools/ignis.c - the `ignis` command-line tool.
 *
 * One binary with subcommands (train, eval, predict, bench, summary), in the
 * style of git: `ignis <command> [options]`. For now only --version and --help
 * work; the commands are listed so the interface is visible, and each says it
 * is not yet available. Conventions: help goes to stdout and exits 0; usage
 * mistakes print "ignis: error: ..." on stderr and exit 2; a known command
 * that cannot run exits 1. Only tools/ may call exit(); the library never does.
 */
#include <stdio.h>
#include <string.h>

#include "core/version.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* The commands the CLI will offer, with a one-line summary each. */
static const struct {
    const char *name;
    const char *summary;
} commands[] = {
    {"train",   "train a model on a dataset and save a checkpoint"},
    {"eval",    "report loss and accuracy of a checkpoint on a dataset"},
    {"predict", "run a checkpoint on inputs and print its predictions"},
    {"bench",   "measure training and inference throughput"},
    {"summary", "print a model's layers, shapes and parameter counts"},
};

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: ignis <command> [options]\n"
            "       ignis --version\n"
            "       ignis --help\n"
            "\n"
            "commands (not yet available in ignis %s):\n",
            ig_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s  %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
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
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(arg, commands[i].name) == 0) {
            fprintf(stderr, "ignis: error: '%s' is not yet available in ignis %s\n",
                    arg, ig_version());
            return EXIT_FAILED;
        }
    }
    return usage_error("unknown command", arg);
}
