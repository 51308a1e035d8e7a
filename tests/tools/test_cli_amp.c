/*
 * tests/tools/test_cli_amp.c — `--amp` and `--tf32` through the built binary: bad values
 * (and --tf32 on the CPU) refused with a message naming the option for every command, and a
 * tiny --amp bf16 / fp16 training run on the CPU (emulated precision) that finishes with a
 * loss close to the fp32 run's.
 */
#include <math.h>

#include "cli_test_util.h"

/* Each command refuses a bad --amp, and --tf32 on the CPU, naming the option: exit 2. */
Test(tools, cli_amp_and_tf32_refuse_bad_values) {
    char dir[256];
    make_tmpdir(dir);
    const char *cmds[][5] = {
        {"train", NULL},
        {"bench", "--synthetic", NULL},
        {"eval", "--checkpoint", "x", NULL},
        {"predict", "--checkpoint", "x", "a.png", NULL},
    };
    const char *opts[2][3] = {{"--amp", "nonsense", NULL}, {"--tf32", NULL, NULL}};
    const char *msgs[2] = {"--amp: unknown 'nonsense' (off, bf16, fp16)", "--tf32 needs --device cuda"};
    for (int o = 0; o < 2; o++)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            const char *args[10];
            int n = 0;
            args[n++] = cmds[i][0];
            for (int k = 0; opts[o][k]; k++) args[n++] = opts[o][k];
            for (int k = 1; cmds[i][k]; k++) args[n++] = cmds[i][k];
            args[n] = NULL;
            char *out = NULL;
            int rc = cli_run(&out, dir, args);
            char want[96];
            snprintf(want, sizeof want, "ignis: error: %s: %s", cmds[i][0], msgs[o]);
            cr_expect_eq(rc, 2, "%s %s: exit %d; output:\n%s", cmds[i][0], opts[o][0], rc, out);
            cr_expect(strstr(out, want) != NULL, "%s: '%s' not in:\n%s", cmds[i][0], want, out);
            free(out);
        }
    rm_tree(dir);
}

/* The train loss of epoch `epoch` in a train log ("epoch E/N  train loss L ..."). */
static double train_loss(const char *text, int epoch) {
    char key[64];
    snprintf(key, sizeof key, "epoch %d/", epoch);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        const char *l = strstr(p, "train loss ");
        if (strncmp(p, key, strlen(key)) == 0 && l && l < strchr(p, '\n')) return strtod(l + 11, NULL);
    }
    return NAN;
}

/* The accuracy after `what` ("train loss" or "test loss") on epoch `epoch`'s line. */
static double epoch_acc(const char *text, int epoch, const char *what) {
    char key[64];
    snprintf(key, sizeof key, "epoch %d/", epoch);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        const char *l = strstr(p, what), *a = l ? strstr(l, " acc ") : NULL;
        if (strncmp(p, key, strlen(key)) == 0 && a && a < strchr(p, '\n')) return strtod(a + 5, NULL);
    }
    return NAN;
}

Test(tools, cli_amp_training_runs_close_to_fp32) {
    char dir[256], data[512], out[512];
    make_tmpdir(dir);
    fmt_path(data, sizeof data, "%s/data", dir);
    mkdir(data, 0755);
    write_syn_dataset(data, 192, 64, 8);
    const char *modes[3] = {"off", "bf16", "fp16"};
    double loss[3], acc[3][2];
    for (int m = 0; m < 3; m++) {
        fmt_path(out, sizeof out, "%s/run-%s", dir, modes[m]);
        const char *args[] = {"train", "--data", data, "--model", "cnn", "--epochs", "2", "--batch", "32",
                              "--schedule", "const", "--lr", "0.02", "--amp", modes[m], "--out", out, NULL};
        char *text = NULL;
        cr_assert_eq(cli_run(&text, dir, args), 0, "--amp %s:\n%s", modes[m], text);
        loss[m] = train_loss(text, 2);
        acc[m][0] = epoch_acc(text, 2, "train loss");
        acc[m][1] = epoch_acc(text, 2, "test loss");
        cr_expect(isfinite(acc[m][0]) && isfinite(acc[m][1]), "--amp %s: no accuracies in:\n%s", modes[m], text);
        cr_expect(isfinite(loss[m]), "--amp %s: no epoch-2 loss in:\n%s", modes[m], text);
        free(text);
    }
    /* fp32 learns the synthetic classes well above chance (12.5%) in two epochs; the
     * accuracies read the logits, which are bf16 under --amp bf16 */
    cr_expect_gt(acc[0][0], 40.0, "fp32 train accuracy %g", acc[0][0]);
    for (int m = 1; m < 3; m++) {
        cr_expect(fabs(loss[m] - loss[0]) < 0.05 * loss[0] + 0.02, "--amp %s loss %g vs fp32 %g", modes[m], loss[m],
                  loss[0]);
        for (int k = 0; k < 2; k++)
            cr_expect(fabs(acc[m][k] - acc[0][k]) < 10.0, "--amp %s %s accuracy %g vs fp32 %g", modes[m],
                      k ? "test" : "train", acc[m][k], acc[0][k]);
    }
    rm_tree(dir);
}
