/*
 * tests/tools/test_cli_kill.c — SIGKILL at random moments never leaves DIR/last unreadable
 * and --resume then finishes the run. Many tiny epochs make checkpoint writes (model,
 * optimizer, best, metrics, curves) a large part of the run, so many kills land inside one.
 * The kill moments are fractions of the length of one uninterrupted run of the same job
 * (measured here, so the test adapts to a slow or sanitized build; nothing is asserted on
 * time).
 */
#include "cli_test_util.h"
#include "tools/checkpoint_impl.h"

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool exists(const char *p) { return access(p, F_OK) == 0; }

/* Checks that the run folder is consistent: last (if any) loads and names an optimizer
 * file that loads; best likewise. Returns the epoch of last (0 if none). */
static int64_t check_run(const char *run, const char *when) {
    char p[700];
    int64_t epoch = 0;
    const char *which[2] = {"last", "best"};
    for (int i = 0; i < 2; i++) {
        fmt_path(p, sizeof p, "%s/%s.safetensors", run, which[i]);
        if (!exists(p)) continue;
        ckpt_run r;
        ig_module *m = NULL;
        cr_assert_eq(ckpt_load_model(p, &r, &m), IG_OK, "%s: %s does not load: %s", when, p, ig_last_error());
        if (i == 0) epoch = r.epoch;
        fmt_path(p, sizeof p, "%s/%s", run, r.optim_file);
        ig_safetensors *os = ig_safetensors_load(p);
        cr_assert_not_null(os, "%s: %s's optimizer file: %s", when, which[i], ig_last_error());
        ig_safetensors_free(os);
        ig_module_free(m);
        ckpt_run_free(&r);
    }
    return epoch;
}

Test(tools, cli_sigkill_at_random_moments_then_resume_finishes, .timeout = 600) {
    char dir[256], data[512], run[512], run0[512], p[700];
    make_tmpdir(dir);
    fmt_path(data, sizeof data, "%s/data", dir);
    fmt_path(run, sizeof run, "%s/run", dir);
    fmt_path(run0, sizeof run0, "%s/run0", dir);
    mkdir(data, 0755);
    write_syn_dataset(data, 64, 16, 4);
    const char *fresh[] = {"train", "--data", data, "--model", "cnn", "--epochs", "12", "--batch", "16",
                           "--schedule", "const", "--augment", "none", "--quiet", "--out", run, NULL};
    const char *resume[] = {"train", "--out", run, "--resume", "--quiet", NULL};

    /* one uninterrupted run: how long the job takes here */
    fresh[15] = run0;
    double t0 = mono_now();
    cr_assert_eq(cli_run(NULL, dir, fresh), 0);
    double total = mono_now() - t0;
    cr_assert_eq(check_run(run0, "uninterrupted"), 12);
    fresh[15] = run;

    uint64_t lcg = 0x2545F4914F6CDD1DULL;
    int kills = 0, with_last = 0;
    for (int attempt = 0; kills < 20 && attempt < 200; attempt++) {
        lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = 0.03 + 0.6 * (double)(lcg >> 11) / 9007199254740992.0;
        bool has_last = exists(fmt_path(p, sizeof p, "%s/last.safetensors", run));
        pid_t pid = cli_spawn(NULL, has_last ? resume : fresh);
        double delay = u * total;
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        while (nanosleep(&ts, &ts) != 0) {
        }
        kill(pid, SIGKILL);
        int rc = cli_wait(pid);
        char when[64];
        snprintf(when, sizeof when, "kill %d (%.0f%% of a run)", kills + 1, 100 * u);
        int64_t epoch = check_run(run, when);
        if (rc == 128 + SIGKILL) {
            kills++;
            with_last += epoch > 0;
        } else {
            cr_assert_eq(rc, 0, "%s: exit %d", when, rc);
            cr_assert_eq(epoch, 12);
            rm_tree(run); /* finished before the kill: start over */
        }
    }
    cr_expect_eq(kills, 20);
    cr_log_info("SIGKILL test: %d kills, %d after the first checkpoint; one run takes %.2f s", kills, with_last,
                total);

    /* finish the run */
    bool has_last = exists(fmt_path(p, sizeof p, "%s/last.safetensors", run));
    char *out = NULL;
    cr_assert_eq(cli_run(&out, dir, has_last ? resume : fresh), 0, "%s", out);
    free(out);
    cr_expect_eq(check_run(run, "after the final resume"), 12);
    /* interrupted writes left nothing behind once a checkpoint completed */
    int optim = 0;
    DIR *d = opendir(run);
    for (struct dirent *e; (e = readdir(d));) {
        cr_expect(strstr(e->d_name, ".tmp") == NULL, "left over: %s", e->d_name);
        optim += strncmp(e->d_name, "optim-", 6) == 0;
    }
    closedir(d);
    cr_expect(optim >= 1 && optim <= 2, "%d optimizer files", optim);
    rm_tree(dir);
}
