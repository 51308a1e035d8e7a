/*
 * tests/tools/cli_run.h — runs the built `ignis` binary (its absolute path comes from the
 * Makefile as IGNIS_CLI) with posix_spawn, stdout and stderr captured in temporary files,
 * and returns its exit status, so the CLI tests check exit codes, output and messages of
 * the real program. Under SANITIZE=1 the binary is sanitized too and inherits the
 * environment (ASAN_OPTIONS with its log_path), so a leak in a command fails the run.
 */
#ifndef IGNIS_TESTS_TOOLS_CLI_RUN_H
#define IGNIS_TESTS_TOOLS_CLI_RUN_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IGNIS_CLI
#error "IGNIS_CLI (the path of the built ignis binary) must be defined by the Makefile"
#endif

extern char **environ;

typedef struct cli_result {
    int status; /* exit status; -1 if killed by a signal */
    char *out;  /* stdout, NUL-terminated (malloc'd) */
    char *err;  /* stderr */
} cli_result;

static inline char *cli_slurp_fd_(int fd) {
    off_t size = lseek(fd, 0, SEEK_END);
    cr_assert(size >= 0);
    char *b = malloc((size_t)size + 1);
    cr_assert_not_null(b);
    cr_assert_eq(pread(fd, b, (size_t)size, 0), (ssize_t)size);
    b[size] = '\0';
    return b;
}

/* Runs IGNIS_CLI with args (NULL-terminated, without argv[0]). */
static inline cli_result cli_run(const char *const *args) {
    char out_path[] = "/tmp/ignis-cli-out.XXXXXX", err_path[] = "/tmp/ignis-cli-err.XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    cr_assert(out_fd >= 0 && err_fd >= 0, "mkstemp failed");
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)IGNIS_CLI;
    for (; *args; args++) {
        cr_assert_lt(n, 63);
        argv[n++] = (char *)*args;
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, IGNIS_CLI, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s", IGNIS_CLI, strerror(rc));
    int ws;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cli_result r = {WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, cli_slurp_fd_(out_fd), cli_slurp_fd_(err_fd)};
    close(out_fd);
    close(err_fd);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static inline void cli_result_free(cli_result *r) {
    free(r->out);
    free(r->err);
}

/* Runs the command and asserts its exit status and that stdout / stderr contain out_has /
 * err_has (NULL: no check); then frees the result. */
static inline void cli_expect_(int status, const char *out_has, const char *err_has, const char *const *args) {
    cli_result r = cli_run(args);
    cr_assert_eq(r.status, status, "exit %d, want %d\nstdout: %s\nstderr: %s", r.status, status, r.out, r.err);
    if (out_has) cr_assert(strstr(r.out, out_has), "stdout lacks \"%s\":\n%s", out_has, r.out);
    if (err_has) cr_assert(strstr(r.err, err_has), "stderr lacks \"%s\":\n%s", err_has, r.err);
    cli_result_free(&r);
}

#define CLI_EXPECT(status, out_has, err_has, ...) \
    cli_expect_((status), (out_has), (err_has), (const char *const[]){__VA_ARGS__, NULL})

#endif
