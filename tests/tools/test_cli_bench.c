/*
 * tests/tools/test_cli_bench.c — `ignis bench` run as a program: argument errors with their
 * exit status (2 usage, 1 runtime) and messages, help, and the machine-readable output of a
 * tiny synthetic run (every key present once, values well-formed and consistent). Nothing
 * here compares times: only the format and the invariants that hold on any machine.
 *
 * mlp on [1,28,28], 10 classes: forward FLOPs (a multiply-add is 2; linear out*(2*in+1),
 * relu 1 per output): 512*1569 + 512 + 256*1025 + 256 + 10*513 = 803328 + 512 + 262400 +
 * 256 + 5130 = 1071626; training counts 3x: 3214878.
 */
#include <math.h>

#include "cli_run.h"

/* The number after "\nkey: " in out (asserting the key is present exactly once; never the
 * first line, which is "model: ..."). */
static double value_of(const char *out, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s: ", key);
    const char *p = strstr(out, pat);
    cr_assert_not_null(p, "no '%s' line in:\n%s", key, out);
    cr_assert_null(strstr(p + 1, pat), "'%s' printed twice:\n%s", key, out);
    char *end = NULL;
    double v = strtod(p + strlen(pat), &end);
    cr_assert(end != p + strlen(pat), "'%s' has no number:\n%s", key, out);
    return v;
}

Test(tools, bench_synthetic_output_format) {
    cli_result r = cli_run((const char *const[]){"bench", "--synthetic", "--model", "mlp", "--batch", "4", "--steps",
                                                 "3", "--warmup", "1", "--threads", "1", "--sgemm-size", "64", NULL});
    cr_assert_eq(r.status, 0, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert_str_empty(r.err);
    cr_assert(strstr(r.out, "model: mlp\n") && strstr(r.out, "data: synthetic\n"), "%s", r.out);
    cr_assert_eq(value_of(r.out, "batch"), 4);
    cr_assert_eq(value_of(r.out, "threads"), 1);
    cr_assert_eq(value_of(r.out, "steps"), 3);
    cr_assert_eq(value_of(r.out, "warmup"), 1);
    cr_assert_gt(value_of(r.out, "train_images_per_s"), 0);
    double step_ms = value_of(r.out, "step_ms");
    cr_assert_gt(step_ms, 0);
    /* The four phases partition the step: their ms add up to step_ms (rounding to 3
     * decimals each) and the percentages to 100 (one decimal each, plus the loop's own
     * few instructions). */
    static const char *phases[] = {"data", "forward", "backward", "optimizer"};
    double ms = 0, pct = 0;
    for (int i = 0; i < 4; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s_ms", phases[i]);
        double v = value_of(r.out, k);
        cr_assert_geq(v, 0);
        ms += v;
        snprintf(k, sizeof k, "%s_pct", phases[i]);
        double p = value_of(r.out, k);
        cr_assert(p >= 0 && p <= 100.05, "%s = %g", k, p);
        pct += p;
    }
    cr_assert(ms <= step_ms + 0.003 && ms >= 0.9 * step_ms - 0.003, "phases %g ms of a %g ms step", ms, step_ms);
    cr_assert(pct <= 100.3 && pct >= 90, "phases add up to %g%%", pct);
    cr_assert_eq(value_of(r.out, "forward_flops_per_image"), 1071626);
    cr_assert_eq(value_of(r.out, "train_flops_per_image"), 3214878);
    cr_assert(strstr(r.out, "train_flops_per_image: 3214878 (3x forward)\n"), "%s", r.out);
    cr_assert_gt(value_of(r.out, "train_gflop_per_s"), 0);
    cr_assert_gt(value_of(r.out, "sgemm_gflop_per_s"), 0);
    cr_assert(strstr(r.out, "(64^3, 1 threads, best of 5)"), "%s", r.out);
    cr_assert_gt(value_of(r.out, "sgemm_fraction_pct"), 0);
    cr_assert_gt(value_of(r.out, "peak_rss_mib"), 1);
    cr_assert_geq(value_of(r.out, "os_allocs_per_step"), 0);
    cr_assert(isfinite(value_of(r.out, "final_loss")));
    /* Under a sanitizer the allocator is the sanitizer's and the count is not available. */
    if (!strstr(r.out, "heap_allocs_per_step: unavailable")) {
        cr_assert_geq(value_of(r.out, "heap_allocs_per_step"), 0);
        cr_assert_geq(value_of(r.out, "heap_frees_per_step"), 0);
    }
    cli_result_free(&r);
}

Test(tools, bench_skips_sgemm_and_runs_a_model_file) {
    char dir[] = "/tmp/ignis-cli-bench.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/net.txt", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("conv 4 3 pad=1\nrelu\nmaxpool 2\nflatten\nlinear classes\n", f);
    cr_assert_eq(fclose(f), 0);
    /* conv 4x1x3x3 on 28x28: 3136 outputs * 19 = 59584; relu 3136; pool 784; linear 10 *
     * (2*784 + 1) = 15690: 79194 forward FLOPs. */
    cli_result r = cli_run((const char *const[]){"bench", "--synthetic", "--model", path, "--batch=2", "--steps=2",
                                                 "--warmup=0", "--threads=1", "--sgemm-size=0", NULL});
    cr_assert_eq(r.status, 0, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_assert(strstr(r.out, "sgemm_gflop_per_s: skipped\n"), "%s", r.out);
    cr_assert_null(strstr(r.out, "sgemm_fraction_pct"), "%s", r.out);
    cr_assert_eq(value_of(r.out, "forward_flops_per_image"), 79194);
    cr_assert_eq(value_of(r.out, "warmup"), 0);
    cli_result_free(&r);
    unlink(path);
    rmdir(dir);
}

Test(tools, bench_argument_errors) {
    CLI_EXPECT(2, NULL, "bench: --batch: 0 is not in 1..65536", "bench", "--synthetic", "--batch", "0");
    CLI_EXPECT(2, NULL, "bench: --batch: 'x' is not an integer", "bench", "--batch", "x");
    CLI_EXPECT(2, NULL, "bench: --steps: 0 is not in 1..100000000", "bench", "--synthetic", "--steps=0");
    CLI_EXPECT(2, NULL, "bench: --warmup: -1 is not in", "bench", "--synthetic", "--warmup=-1");
    CLI_EXPECT(2, NULL, "bench: --threads: -2 is not in 0..1024", "bench", "--synthetic", "--threads", "-2");
    CLI_EXPECT(2, NULL, "bench: --sgemm-size: 9000 is not in 0..8192", "bench", "--sgemm-size", "9000");
    CLI_EXPECT(2, NULL, "bench: --data and --synthetic exclude each other", "bench", "--synthetic", "--data", "/tmp");
    CLI_EXPECT(2, NULL, "bench: unknown option '--epochs'", "bench", "--epochs", "3");
    CLI_EXPECT(2, NULL, "bench: unexpected argument 'mlp'", "bench", "mlp");
    CLI_EXPECT(2, NULL, "bench: --synthetic takes no value", "bench", "--synthetic=1");
    CLI_EXPECT(2, NULL, "bench: --model needs a value", "bench", "--model");
    /* Runtime failures: exit 1, one error line naming the cause. */
    CLI_EXPECT(1, NULL, "use --synthetic to run without a dataset", "bench", "--data", "/tmp/ignis-no-such-dir",
               "--steps", "1");
    CLI_EXPECT(1, NULL, "ignis: error: bench: ig_model_build: 'vgg' is neither a zoo model", "bench", "--synthetic",
               "--model", "vgg", "--steps", "1");
}

Test(tools, bench_help) {
    cli_result r = cli_run((const char *const[]){"bench", "--help", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "usage: ignis bench") && strstr(r.out, "--batch B") && strstr(r.out, "--threads T") &&
              strstr(r.out, "--steps S") && strstr(r.out, "--warmup W") && strstr(r.out, "--synthetic") &&
              strstr(r.out, "--data DIR"), "%s", r.out);
    cr_assert_str_empty(r.err);
    cli_result_free(&r);
    CLI_EXPECT(0, "measure training throughput", NULL, "--help");
}
