/*
 * tests/dist/test_cli_mpi.c — `mpirun -np 2 ignis train`, end to end, on a small synthetic
 * IDX dataset: the job trains and rank 0 alone writes the run folder and prints; --sync-bn
 * on resnet8 and --resume under mpirun continue bit for bit; resuming with another world
 * size is refused; a rank that is killed or cannot read its data, and ranks started with
 * different models or options (mpirun's MPMD syntax "A : B"), end the job non-zero within
 * 30 s with an error naming the rank. mpirun runs with --oversubscribe (plus
 * --allow-run-as-root as root) in its own process group, killed if it outlives its limit.
 * Skipped with a message in builds without MPI or where mpirun is not installed.
 *
 * Limits are bounds, not timings (nothing is timed): training jobs get minutes (they take
 * seconds; sanitizer builds are slower); a fault must end the job within 30 s.
 */
#include "../tools/cli_test_util.h"
#include "mpi_test_util.h"
#include "tools/checkpoint_impl.h"

typedef mpi_job job;

/* Starts `mpirun --oversubscribe [--allow-run-as-root] args...`; "IGNIS" in args stands
 * for the ignis binary. */
static mpi_launch start(const char *const *args) {
    static char mpirun[1024];
    mpi_need(mpirun, sizeof mpirun);
    const char *argv[CLI_MAX_ARGS + 4];
    int k = 0;
    argv[k++] = mpirun;
    argv[k++] = "--oversubscribe";
    if (geteuid() == 0) argv[k++] = "--allow-run-as-root";
    for (; *args && k < CLI_MAX_ARGS; args++) argv[k++] = strcmp(*args, "IGNIS") ? *args : IGNIS_CLI;
    argv[k] = NULL;
    return mpi_spawn(argv);
}

#define TRAIN_LIMIT 600.0
#define FAULT_LIMIT 30.0

static void run_job(job *j, double limit_s, const char *const *args) {
    mpi_launch l = start(args);
    mpi_finish(&l, j, l.t0, limit_s);
}

#define MPI_JOB(j, limit, ...) run_job((j), (limit), (const char *const[]){__VA_ARGS__, NULL})

/* A fresh folder with the synthetic dataset (train_n / 64 images of 8x8, 4 classes). */
static void fixture(char dir[256], int64_t train_n) {
    make_tmpdir(dir);
    write_syn_dataset(dir, train_n, 64, 8);
}

static int count_substr(const char *text, const char *s) {
    int n = 0;
    for (const char *p = strstr(text, s); p; p = strstr(p + 1, s)) n++;
    return n;
}

Test(dist, cli_mpi_train_two_ranks_writes_the_run_once) {
    char dir[256], run[300], p[400];
    fixture(dir, 256);
    fmt_path(run, sizeof run, "%s/run", dir);
    static job j;
    MPI_JOB(&j, TRAIN_LIMIT, "-np", "2", "IGNIS", "train", "--data", dir, "--model", "mlp", "--epochs", "2", "--batch",
            "16", "--threads", "1", "--out", run);
    cr_assert_eq(j.status, 0, "status %d after %.0f s\n%s", j.status, j.seconds, j.out);
    /* rank 0 alone prints: one header, one line per epoch */
    cr_assert_eq(count_substr(j.out, "ignis train: model mlp"), 1, "%s", j.out);
    cr_assert(strstr(j.out, "batch 16 per rank x 2 ranks = global batch 32"), "%s", j.out);
    cr_assert(strstr(j.out, "data parallel: 2 processes (mpi backend)"), "%s", j.out);
    cr_assert_eq(count_lines_with(j.out, "epoch 1/2  train loss"), 1, "%s", j.out);
    cr_assert_eq(count_lines_with(j.out, "epoch 2/2  train loss"), 1, "%s", j.out);
    cr_assert_eq(count_substr(j.out, "done: best"), 1, "%s", j.out);
    cr_assert_null(strstr(j.out, "error"), "%s", j.out);

    char *csv = read_text(fmt_path(p, sizeof p, "%s/metrics.csv", run), NULL);
    cr_assert_not_null(csv, "no metrics.csv\n%s", j.out);
    metrics_row *rows = NULL;
    cr_assert_eq(metrics_parse(csv, false, &rows), 2, "metrics.csv:\n%s", csv);
    for (int i = 0; i < 2; i++) {
        cr_expect(rows[i].train_acc >= 0 && rows[i].train_acc <= 1 && rows[i].test_acc >= 0 && rows[i].test_acc <= 1);
        cr_expect(isfinite(rows[i].train_loss) && isfinite(rows[i].test_loss));
    }
    cr_expect_gt(rows[1].test_acc, 0.5, "the synthetic task is easy: %s", csv);
    free(rows);
    free(csv);

    ckpt_run r;
    ig_module *m = NULL;
    cr_assert_eq(ckpt_load_model(fmt_path(p, sizeof p, "%s/last.safetensors", run), &r, &m), IG_OK, "%s",
                 ig_last_error());
    cr_expect_eq(r.world_size, 2);
    cr_expect_eq(r.batch, 16);
    cr_expect_eq(r.epoch, 2);
    cr_expect_eq(r.steps_per_epoch, 8, "256 images / 2 ranks / batch 16");
    cr_expect_not(r.sync_bn);
    ig_module_free(m);
    ckpt_run_free(&r);
    rm_tree(dir);
}

/* resnet8 with --sync-bn: 3 epochs in one go, and 1 + 2 with --resume under mpirun, log the
 * same per-step losses bit for bit; resuming with another world size is refused. */
Test(dist, cli_mpi_sync_bn_resume_is_bit_exact) {
    char dir[256], a[300], b[300], la[300], lb[300], p[400];
    fixture(dir, 128);
    fmt_path(a, sizeof a, "%s/a", dir);
    fmt_path(b, sizeof b, "%s/b", dir);
    fmt_path(la, sizeof la, "%s/a.log", dir);
    fmt_path(lb, sizeof lb, "%s/b.log", dir);
    static job j;
    MPI_JOB(&j, TRAIN_LIMIT, "-np", "2", "IGNIS", "train", "--data", dir, "--model", "resnet8", "--sync-bn", "--epochs",
            "3", "--batch", "16", "--threads", "1", "--out", a, "--log-steps", la);
    cr_assert_eq(j.status, 0, "status %d\n%s", j.status, j.out);
    cr_assert(strstr(j.out, "BatchNorm statistics synchronised (--sync-bn)"), "%s", j.out);
    MPI_JOB(&j, TRAIN_LIMIT, "-np", "2", "IGNIS", "train", "--data", dir, "--model", "resnet8", "--sync-bn", "--epochs",
            "3", "--stop-after", "1", "--batch", "16", "--threads", "1", "--quiet", "--out", b, "--log-steps", lb);
    cr_assert_eq(j.status, 0, "status %d\n%s", j.status, j.out);
    cr_assert(strstr(j.out, "stopped after epoch 1 of 3"), "%s", j.out);

    /* one process cannot continue a 2-process run */
    char *out = NULL;
    const char *single[] = {"train", "--out", b, "--resume", "--quiet", NULL};
    cr_assert_eq(cli_run(&out, dir, single), 1, "%s", out);
    cr_assert(strstr(out, "trained by 2 processes, this job has 1"), "%s", out);
    free(out);

    MPI_JOB(&j, TRAIN_LIMIT, "-np", "2", "IGNIS", "train", "--out", b, "--resume", "--quiet", "--log-steps", lb);
    cr_assert_eq(j.status, 0, "status %d\n%s", j.status, j.out);
    cr_assert_eq(count_lines_with(j.out, "epoch 2/3  train loss"), 1, "%s", j.out);
    cr_assert_eq(count_lines_with(j.out, "epoch 3/3  train loss"), 1, "%s", j.out);

    char *ta = read_text(la, NULL), *tb = read_text(lb, NULL);
    cr_assert(ta && tb);
    cr_assert_eq(count_lines_with(ta, "1 "), 4, "128 images / 2 ranks / batch 16 = 4 steps an epoch:\n%s", ta);
    cr_assert_str_eq(ta, tb, "the resumed run differs:\n%s\nvs\n%s", ta, tb);
    free(ta);
    free(tb);

    /* both hold the same model (the running statistics included) */
    ckpt_run ra, rb;
    ig_module *ma = NULL, *mb = NULL;
    cr_assert_eq(ckpt_load_model(fmt_path(p, sizeof p, "%s/last.safetensors", a), &ra, &ma), IG_OK);
    cr_assert_eq(ckpt_load_model(fmt_path(p, sizeof p, "%s/last.safetensors", b), &rb, &mb), IG_OK);
    cr_expect(ra.sync_bn && rb.sync_bn && ra.world_size == 2 && rb.world_size == 2);
    int n = ig_module_state_dict(ma, NULL, 0);
    ig_named_tensor *sa = calloc((size_t)n, sizeof *sa), *sb = calloc((size_t)n, sizeof *sb);
    cr_assert(n > 0 && sa && sb && ig_module_state_dict(mb, NULL, 0) == n);
    ig_module_state_dict(ma, sa, n);
    ig_module_state_dict(mb, sb, n);
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)ig_tensor_numel(sa[i].tensor) * ig_dtype_size(ig_tensor_dtype(sa[i].tensor));
        cr_expect_eq(memcmp(ig_tensor_data(sa[i].tensor), ig_tensor_data(sb[i].tensor), bytes), 0, "%s differs",
                     sa[i].name);
    }
    free(sa);
    free(sb);
    ig_module_free(ma);
    ig_module_free(mb);
    ckpt_run_free(&ra);
    ckpt_run_free(&rb);
    rm_tree(dir);
}

/* The pid of the ignis process of rank `rank` whose command line mentions marker. */
static pid_t find_rank(const char *marker, int rank) {
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    struct dirent *e;
    pid_t found = 0;
    while (!found && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char p[64], buf[8192];
        snprintf(p, sizeof p, "/proc/%ld/cmdline", pid);
        int fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        bool is_ignis = strcmp(buf, IGNIS_CLI) == 0, has_marker = false;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) has_marker |= strcmp(buf + i, marker) == 0;
        if (!is_ignis || !has_marker) continue;
        snprintf(p, sizeof p, "/proc/%ld/environ", pid);
        fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strnlen(buf + i, (size_t)(n - i)) + 1)
            if (strncmp(buf + i, want, strlen(want)) == 0 && buf[i + strlen(want)] == '\0') found = (pid_t)pid;
    }
    closedir(d);
    return found;
}

/* SIGKILL to rank 1 once the first epoch is written: the job ends non-zero within 30 s. */
Test(dist, cli_mpi_killed_rank_ends_the_job) {
    char dir[256], run[300], csv[400];
    fixture(dir, 1024);
    fmt_path(run, sizeof run, "%s/run", dir);
    fmt_path(csv, sizeof csv, "%s/metrics.csv", run);
    mpi_launch l = start((const char *const[]){"-np", "2", "IGNIS", "train", "--data", dir, "--model", "mlp",
                                               "--epochs", "100000", "--batch", "8", "--threads", "1", "--quiet", "--out", run, NULL});
    /* wait (bounded) until training runs: the first epoch's metrics exist */
    pid_t victim = 0;
    for (double t0 = mpi_now(); mpi_now() - t0 < TRAIN_LIMIT && !victim;) {
        int ws;
        if (waitpid(l.pid, &ws, WNOHANG) == l.pid) cr_assert_fail("mpirun ended before the fault");
        if (access(csv, F_OK) == 0) victim = find_rank(run, 1);
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    cr_assert(victim > 0, "rank 1's process was not found");
    cr_assert_eq(kill(victim, SIGKILL), 0);
    double fault = mpi_now();
    static job j;
    mpi_finish(&l, &j, fault, FAULT_LIMIT);
    cr_assert_neq(j.status, -1, "the job was still running 30 s after rank 1 was killed\n%s", j.out);
    cr_assert_neq(j.status, 0, "%s", j.out);
    cr_assert(strstr(j.out, "rank 1"), "mpirun names the rank:\n%s", j.out);
    rm_tree(dir);
}

/* Faults at set-up, on rank 1 only (MPMD syntax): the job ends non-zero within 30 s and
 * the error names the rank. */
static void expect_setup_fault(const char *const *args, const char *message) {
    static job j;
    run_job(&j, FAULT_LIMIT, args);
    cr_assert_neq(j.status, -1, "the job was still running after 30 s\n%s", j.out);
    cr_assert_neq(j.status, 0, "%s", j.out);
    cr_assert(strstr(j.out, message), "no '%s' in the output:\n%s", message, j.out);
}

Test(dist, cli_mpi_rank_that_cannot_read_its_data_ends_the_job) {
    char dir[256], run[300], bad[300];
    fixture(dir, 128);
    fmt_path(run, sizeof run, "%s/run", dir);
    fmt_path(bad, sizeof bad, "%s/missing", dir);
    expect_setup_fault((const char *const[]){"-np", "1", "IGNIS", "train", "--data", dir, "--model", "mlp", "--batch",
                                             "16", "--quiet", "--out", run, ":", "-np", "1", "IGNIS", "train", "--data",
                                             bad, "--model", "mlp", "--batch", "16", "--quiet", "--out", run, NULL},
                       "ignis: error: rank 1: cannot read the training data");
    rm_tree(dir);
}

Test(dist, cli_mpi_different_models_fail_fast_naming_the_rank) {
    char dir[256], run[300];
    fixture(dir, 128);
    fmt_path(run, sizeof run, "%s/run", dir);
    expect_setup_fault((const char *const[]){"-np", "1", "IGNIS", "train", "--data", dir, "--model", "mlp", "--batch",
                                             "16", "--quiet", "--out", run, ":", "-np", "1", "IGNIS", "train", "--data",
                                             dir, "--model", "cnn", "--batch", "16", "--quiet", "--out", run, NULL},
                       "rank 1 does not match rank 0");
    rm_tree(dir);
}

Test(dist, cli_mpi_different_options_fail_fast_naming_the_rank) {
    char dir[256], run[300];
    fixture(dir, 128);
    fmt_path(run, sizeof run, "%s/run", dir);
    expect_setup_fault((const char *const[]){"-np", "1", "IGNIS", "train", "--data", dir, "--model", "mlp", "--batch",
                                             "16", "--epochs", "2", "--quiet", "--out", run, ":", "-np", "1", "IGNIS",
                                             "train", "--data", dir, "--model", "mlp", "--batch", "16", "--epochs", "3",
                                             "--quiet", "--out", run, NULL},
                       "the training options");
    rm_tree(dir);
}
