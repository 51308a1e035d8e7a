/*
 * tests/tools/cli_test_util.h — helpers the CLI tests share: running the built `ignis`
 * binary (IGNIS_CLI, its absolute path, comes from the Makefile) with its output captured,
 * a small synthetic IDX dataset, and file helpers; the temporary folder (make_tmpdir,
 * rm_tree) comes from tests/test_util.h. Everything is static so each test file takes only
 * what it uses.
 */
#ifndef IGNIS_TESTS_TOOLS_CLI_TEST_UTIL_H
#define IGNIS_TESTS_TOOLS_CLI_TEST_UTIL_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../test_util.h"
#include "ignis.h"

#ifndef IGNIS_CLI
#error "IGNIS_CLI (the path of the built ignis binary) must be defined by the Makefile"
#endif

#define CLI_MAX_ARGS 64

/* Starts the CLI with args (NULL-terminated, without the program name), stdout and stderr
 * both going to out_path (NULL: /dev/null). Returns the child's pid. */
static inline pid_t cli_spawn(const char *out_path, const char *const *args) {
    const char *argv[CLI_MAX_ARGS + 2];
    int n = 0;
    argv[n++] = IGNIS_CLI;
    for (; args[n - 1] && n <= CLI_MAX_ARGS; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        int fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(IGNIS_CLI, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Exit status of a finished child: its exit code, or 128 + signal. */
static inline int cli_wait(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The whole file into a NUL-terminated malloc'd buffer (NULL if it cannot be read). */
static inline char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) b = realloc(b, (cap *= 2) + 1);
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = '\0';
    if (len) *len = n;
    return b;
}

/* Runs the CLI to completion; *output (may be NULL) gets stdout+stderr (free it). */
static inline int cli_run(char **output, const char *tmpdir, const char *const *args) {
    char out_path[512];
    snprintf(out_path, sizeof out_path, "%s/cli-output-%d.txt", tmpdir, (int)getpid());
    int rc = cli_wait(cli_spawn(out_path, args));
    if (output) {
        *output = read_text(out_path, NULL);
        cr_assert_not_null(*output);
    }
    unlink(out_path);
    return rc;
}

/* cli_run for a command that once hung: a run still going after `seconds` is killed and
 * fails the test (returns -1, *output ""), so a regression cannot leave the suite (or a
 * child) waiting forever, and the test's other cases still run. */
static inline int cli_run_within(char **output, const char *tmpdir, int seconds, const char *const *args) {
    char out_path[512];
    snprintf(out_path, sizeof out_path, "%s/cli-output-%d.txt", tmpdir, (int)getpid());
    pid_t pid = cli_spawn(out_path, args);
    int status = 0;
    pid_t got = 0;
    for (long tick = 0; tick < 10L * seconds && (got = waitpid(pid, &status, WNOHANG)) == 0; tick++)
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    if (got != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        unlink(out_path);
        cr_expect_fail("ignis %s did not finish within %d s (killed)", args[0], seconds);
        if (output) {
            *output = calloc(1, 1);
            cr_assert_not_null(*output);
        }
        return -1;
    }
    if (output) {
        *output = read_text(out_path, NULL);
        cr_assert_not_null(*output);
    }
    unlink(out_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* snprintf into a static-sized buffer the caller gives. */
static inline const char *fmt_path(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline const char *fmt_path(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < cap, "path too long");
    return out;
}

/* Pixel (y, x) of synthetic item i of size s x s: four classes that a horizontal flip does
 * not confuse (0: top half bright, 1: bottom half, 2: centre square, 3: border), plus
 * deterministic noise. */
static inline uint8_t syn_pixel(int64_t i, int y, int x, int s) {
    int c = (int)(i % 4);
    bool on = c == 0   ? y < s / 2
              : c == 1 ? y >= s / 2
              : c == 2 ? (y >= s / 4 && y < s - s / 4 && x >= s / 4 && x < s - s / 4)
                       : (y == 0 || x == 0 || y == s - 1 || x == s - 1);
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(y * 40503u + x * 9973u);
    h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
    int v = (on ? 190 : 40) + (int)(h % 61) - 30;
    return (uint8_t)v;
}

/* Writes dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte: n_train and n_test s x s images
 * of 4 classes (raw IDX, not gzip'd). */
static inline void write_syn_dataset(const char *dir, int64_t n_train, int64_t n_test, int s) {
    const char *prefix[2] = {"train", "t10k"};
    int64_t counts[2] = {n_train, n_test};
    for (int k = 0; k < 2; k++) {
        int64_t n = counts[k];
        size_t isz = 16 + (size_t)n * (size_t)(s * s), lsz = 8 + (size_t)n;
        uint8_t *img = malloc(isz), *lab = malloc(lsz);
        cr_assert(img && lab);
        put_be32(img, 0x803), put_be32(img + 4, (uint32_t)n), put_be32(img + 8, (uint32_t)s), put_be32(img + 12, (uint32_t)s);
        put_be32(lab, 0x801), put_be32(lab + 4, (uint32_t)n);
        for (int64_t i = 0; i < n; i++) {
            int64_t key = k * 1000003 + i; /* test items differ from training items */
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++) img[16 + (size_t)i * (size_t)(s * s) + (size_t)(y * s + x)] = syn_pixel(key, y, x, s);
            lab[8 + i] = (uint8_t)(key % 4);
        }
        char p[512];
        FILE *f = fopen(fmt_path(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, prefix[k]), "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(img, 1, isz, f), isz);
        fclose(f);
        f = fopen(fmt_path(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, prefix[k]), "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(lab, 1, lsz, f), lsz);
        fclose(f);
        free(img);
        free(lab);
    }
}

/* Number of lines of text starting with prefix. */
static inline int count_lines_with(const char *text, const char *prefix) {
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, pl) == 0) n++;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return n;
}

#endif
