/*
 * tools/args.c — error reporting and the option parser shared by the subcommands.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

static int error_rank = -1;

void cli_set_rank(int rank) { error_rank = rank; }

int cli_error(int code, const char *fmt, ...) {
    /* One write, so that lines of ranks sharing a terminal (mpirun) do not interleave. */
    char line[8192];
    int n = error_rank >= 0 ? snprintf(line, sizeof line, "ignis: error: rank %d: ", error_rank)
                            : snprintf(line, sizeof line, "ignis: error: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len] = '\n';
    fwrite(line, 1, len + 1, stderr);
    return code;
}

void cli_print_help(FILE *f, const char *cmd, const char *usage, const char *description,
                    const cli_option *opts, int nopts) {
    fprintf(f, "usage: ignis %s %s\n", cmd, usage ? usage : "[options]");
    if (description) fprintf(f, "\n%s\n", description);
    fprintf(f, "\noptions:\n");
    for (int i = 0; i < nopts; i++) {
        char left[64];
        if (opts[i].kind == CLI_FLAG) snprintf(left, sizeof left, "--%s", opts[i].name);
        else snprintf(left, sizeof left, "--%s %s", opts[i].name, opts[i].metavar ? opts[i].metavar : "X");
        fprintf(f, "  %-24s %s\n", left, opts[i].help ? opts[i].help : "");
    }
    fprintf(f, "  %-24s %s\n", "-h, --help", "show this help and exit");
}

static int set_value(const char *cmd, const cli_option *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case CLI_INT: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return cli_error(EXIT_USAGE, "%s: --%s: '%s' is not an integer", cmd, o->name, v);
        *(int64_t *)o->dest = (int64_t)x;
        break;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x))
            return cli_error(EXIT_USAGE, "%s: --%s: '%s' is not a number", cmd, o->name, v);
        *(double *)o->dest = x;
        break;
    }
    case CLI_STRING:
        if (!*v) return cli_error(EXIT_USAGE, "%s: --%s: empty value", cmd, o->name);
        *(const char **)o->dest = v;
        break;
    case CLI_FLAG:
        break;
    }
    if (o->seen) *o->seen = true;
    return 0;
}

int cli_parse(const char *cmd, const char *usage, const char *description, int argc, char **argv,
              const cli_option *opts, int nopts, char **pos, int *npos, int max_pos) {
    int n = 0;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!only_positional && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            cli_print_help(stdout, cmd, usage, description, opts, nopts);
            return -1;
        }
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const cli_option *o = NULL;
            for (int k = 0; k < nopts; k++)
                if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0) o = &opts[k];
            if (!o)
                return cli_error(EXIT_USAGE, "%s: unknown option '--%.*s' (see 'ignis %s --help')", cmd,
                                 (int)len, name, cmd);
            if (o->kind == CLI_FLAG) {
                if (eq) return cli_error(EXIT_USAGE, "%s: --%s takes no value", cmd, o->name);
                *(bool *)o->dest = true;
                if (o->seen) *o->seen = true;
                continue;
            }
            const char *v = eq ? eq + 1 : NULL;
            if (!v) {
                if (i + 1 >= argc) return cli_error(EXIT_USAGE, "%s: --%s needs a value", cmd, o->name);
                v = argv[++i];
            }
            int rc = set_value(cmd, o, v);
            if (rc) return rc;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] != '\0')
            return cli_error(EXIT_USAGE, "%s: unknown option '%s' (see 'ignis %s --help')", cmd, a, cmd);
        if (n >= max_pos) return cli_error(EXIT_USAGE, "%s: unexpected argument '%s'", cmd, a);
        pos[n++] = a;
    }
    if (npos) *npos = n;
    return 0;
}
