/*
 * tests/tools/test_cli_torch.c — a checkpoint from `ignis train` loads into the equivalent
 * PyTorch model with load_state_dict(strict=True) and gives the same test predictions.
 *
 * Needs /usr/bin/python3 with torch (Debian's python3-torch); skips with a message without
 * it. PyTorch's side is tests/tools/torch_check.py; ignis's side runs in process on the same
 * normalised images, and the two sets of logits must agree.
 */
#include "cli_test_util.h"

static bool have_torch(void) {
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

/* Parses the JSON array of doubles in a metadata value ("[0.5, 0.25]"). */
static int parse_doubles(const char *s, double *out, int cap) {
    int n = 0;
    while (s && *s && n < cap) {
        while (*s == '[' || *s == ' ' || *s == ',') s++;
        if (*s == ']' || !*s) break;
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s) break;
        s = end;
    }
    return n;
}

Test(tools, checkpoint_loads_into_torch_with_same_predictions, .timeout = 300) {
    if (!have_torch()) cr_skip_test("torch interop: /usr/bin/python3 with torch (python3-torch) is not installed");
    char dir[256], data[512], run[512], ck[512], out[512], cmd[2048], imgs[512];
    make_tmpdir(dir);
    fmt_path(data, sizeof data, "%s/data", dir);
    cr_assert_eq(mkdir(data, 0755), 0);
    write_syn_dataset(data, 96, 40, 8);
    fmt_path(run, sizeof run, "%s/run", dir);
    char *log = NULL;
    int rc = cli_run(&log, dir,
                     (const char *const[]){"train", "--data", data, "--out", run, "--model", "cnn", "--epochs", "2",
                                           "--batch", "16", "--quiet", NULL});
    cr_assert_eq(rc, 0, "ignis train failed:\n%s", log ? log : "");
    free(log);

    /* PyTorch's predictions. */
    fmt_path(ck, sizeof ck, "%s/last.safetensors", run);
    fmt_path(imgs, sizeof imgs, "%s/t10k-images-idx3-ubyte", data);
    fmt_path(out, sizeof out, "%s/torch.txt", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/tools/torch_check.py '%s' '%s' '%s' 2>'%s/py.err'",
             IGNIS_SOURCE_DIR, ck, imgs, out, dir);
    if (system(cmd) != 0) {
        char e[512];
        char *err = read_text(fmt_path(e, sizeof e, "%s/py.err", dir), NULL);
        cr_assert_fail("torch_check.py failed:\n%s", err ? err : "(no output)");
    }

    /* ignis's predictions on the same images, in process. */
    ig_scope *s = ig_scope_begin();
    ig_safetensors *f = ig_safetensors_load(ck);
    cr_assert_not_null(f, "%s", ig_last_error());
    double mean[1], stdv[1];
    cr_assert_eq(parse_doubles(ig_safetensors_meta(f, "mean"), mean, 1), 1);
    cr_assert_eq(parse_doubles(ig_safetensors_meta(f, "std"), stdv, 1), 1);
    ig_module *net = ig_model_create("cnn", 1, 8, 8, 4);
    cr_assert_not_null(net, "%s", ig_last_error());
    int n = ig_safetensors_count(f);
    ig_named_tensor *entries = calloc((size_t)n, sizeof *entries);
    for (int i = 0; i < n; i++) entries[i] = (ig_named_tensor){ig_safetensors_name(f, i), ig_safetensors_tensor(f, i)};
    cr_assert_eq(ig_module_load_state_dict(net, entries, n, true), IG_OK, "%s", ig_last_error());
    ig_module_train(net, false);
    char lab[512];
    ig_dataset *ds = ig_dataset_idx(imgs, fmt_path(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte", data));
    cr_assert_not_null(ds, "%s", ig_last_error());
    int64_t count = ig_dataset_len(ds);
    ig_tensor *x = ig_empty(IG_DIMS(count, 1, 8, 8), IG_F32);
    float *xp = ig_tensor_data(x);
    for (int64_t i = 0; i < count; i++) {
        int64_t label;
        cr_assert_eq(ig_dataset_get(ds, i, xp + i * 64, &label), IG_OK);
        for (int p = 0; p < 64; p++) xp[i * 64 + p] = (float)((xp[i * 64 + p] - mean[0]) / stdv[0]);
    }
    ig_no_grad_begin();
    ig_tensor *logits = ig_module_forward(net, x);
    ig_no_grad_end();
    cr_assert_not_null(logits, "%s", ig_last_error());

    char *text = read_text(out, NULL);
    cr_assert_not_null(text);
    const char *p = text;
    for (int64_t i = 0; i < count; i++) {
        char *end;
        long cls = strtol(p, &end, 10);
        p = end;
        double best = -INFINITY;
        long mine = -1;
        for (int c = 0; c < 4; c++) {
            double t = strtod(p, &end);
            p = end;
            double v = ig_tensor_get(logits, i * 4 + c);
            cr_assert(fabs(v - t) <= 1e-4 + 1e-4 * fabs(t), "image %lld class %d: ignis %.7g, torch %.7g", (long long)i, c, v, t);
            if (v > best) best = v, mine = c;
        }
        cr_assert_eq(mine, cls, "image %lld: ignis predicts %ld, torch %ld", (long long)i, mine, cls);
    }
    free(text);
    free(entries);
    ig_dataset_free(ds);
    ig_module_free(net);
    ig_safetensors_free(f);
    ig_scope_end(s); /* x and logits were made in it */
    rm_tree(dir);
}
