/*
 * tests/dist/mpi_test_util.h — running mpirun from a test (test_ddp_mpi.c, test_cli_mpi.c):
 * finding mpirun, skipping without MPI, spawning it in its own process group with its
 * output in an unlinked temp file, and waiting with a limit (killing the whole group when
 * it is exceeded). Static inline, so each test file takes what it uses.
 */
#ifndef IGNIS_TESTS_DIST_MPI_TEST_UTIL_H
#define IGNIS_TESTS_DIST_MPI_TEST_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A finished mpirun job. */
typedef struct mpi_job {
    int status;      /* exit status; 128 + signal if killed; -1 if it outlived its limit */
    double seconds;  /* from the start (or from the fault, for kill tests) to its end */
    char out[32768]; /* stdout and stderr (the start, truncated) */
} mpi_job;

/* A running mpirun. */
typedef struct mpi_launch {
    pid_t pid;
    int fd; /* its output */
    double t0;
} mpi_launch;

static inline double mpi_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The mpirun on PATH (into buf), or NULL. */
static inline const char *mpi_find_mpirun(char *buf, size_t cap) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, cap, "%.*s/mpirun", (int)n, path);
        if (n && access(buf, X_OK) == 0) return buf;
        path += n + (path[n] == ':');
    }
    return NULL;
}

/* Skips the test unless MPI is built in and mpirun is on PATH; fills mpirun. */
static inline void mpi_need(char *mpirun, size_t cap) {
#ifndef IGNIS_WITH_MPI
    (void)mpirun, (void)cap;
    cr_skip_test("dist: this build has no MPI (install libopenmpi-dev and openmpi-bin, or make deps)");
#else
    if (!mpi_find_mpirun(mpirun, cap)) cr_skip_test("dist: mpirun not found on PATH (install openmpi-bin)");
#endif
}

/* The environment for mpirun: ours, except that under AddressSanitizer mallocs record
 * full stacks (fast_unwind_on_malloc=0; OpenMPI's libraries have no frame pointers), so
 * the OpenMPI-only suppressions of tests/dist/lsan-openmpi.supp can match their frames. */
static inline char **mpi_child_env(char *asan, size_t cap) {
    static char *env[512];
    int n = 0;
    for (char **e = environ; *e && n < 510; e++) {
        if (strncmp(*e, "ASAN_OPTIONS=", 13) == 0) {
            snprintf(asan, cap, "%s:fast_unwind_on_malloc=0", *e);
            env[n++] = asan;
        } else {
            env[n++] = *e;
        }
    }
    env[n] = NULL;
    return env;
}

/* Starts argv (argv[0] the mpirun path) in its own process group, stdin from /dev/null,
 * stdout and stderr into an unlinked temp file. */
static inline mpi_launch mpi_spawn(const char *const *argv) {
    char log[] = "/tmp/ignis-mpi-test-XXXXXX";
    mpi_launch l;
    l.fd = mkstemp(log);
    cr_assert(l.fd >= 0, "mkstemp: %s", strerror(errno));
    unlink(log);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, l.fd, 1);
    posix_spawn_file_actions_adddup2(&fa, l.fd, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP); /* its own group: killable as a whole */
    posix_spawnattr_setpgroup(&at, 0);
    char asan[2048];
    l.t0 = mpi_now();
    int err = posix_spawn(&l.pid, argv[0], &fa, &at, (char *const *)argv, mpi_child_env(asan, sizeof asan));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    cr_assert(err == 0, "posix_spawn %s: %s", argv[0], strerror(err));
    return l;
}

/* Waits for l to end, killing its process group after limit_s from since; fills j. */
static inline void mpi_finish(mpi_launch *l, mpi_job *j, double since, double limit_s) {
    int ws = 0;
    j->status = -1;
    for (;;) {
        pid_t w = waitpid(l->pid, &ws, WNOHANG);
        if (w == l->pid) {
            j->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
            break;
        }
        if (mpi_now() - since > limit_s) {
            kill(-l->pid, SIGKILL);
            waitpid(l->pid, &ws, 0);
            break;
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    j->seconds = mpi_now() - since;
    ssize_t n = pread(l->fd, j->out, sizeof j->out - 1, 0);
    j->out[n > 0 ? n : 0] = '\0';
    close(l->fd);
}

#endif
