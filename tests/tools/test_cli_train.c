/*
 * tests/tools/test_cli_train.c — `ignis train`, `eval` and `predict` through the built
 * binary: argument errors and exit codes, the outputs of a small run (metrics.csv,
 * curves.png, last/best checkpoints and their optimizer files), eval and predict on its
 * checkpoint, and the bit-exact --resume.
 */
#include <math.h>
#include <png.h>

#include "cli_test_util.h"
#include "tools/checkpoint_impl.h"

typedef struct arg_case {
    const char *args[12];
    int code;
    const char *message; /* expected in the output */
} arg_case;

Test(tools, cli_argument_errors_and_exit_codes) {
    char dir[256];
    make_tmpdir(dir);
    const arg_case cases[] = {
        {{"train", "--bogus", NULL}, 2, "unknown option '--bogus'"},
        {{"train", "stray", NULL}, 2, "unexpected argument 'stray'"},
        {{"train", "--epochs", "0", NULL}, 2, "--epochs"},
        {{"train", "--epochs", "x3", NULL}, 2, "not an integer"},
        {{"train", "--batch", NULL}, 2, "needs a value"},
        {{"train", "--lr", "-1", NULL}, 2, "--lr"},
        {{"train", "--lr", "fast", NULL}, 2, "not a number"},
        {{"train", "--optimizer", "lbfgs", NULL}, 2, "unknown 'lbfgs'"},
        {{"train", "--schedule", "linear", NULL}, 2, "unknown 'linear'"},
        {{"train", "--momentum", "1.5", NULL}, 2, "--momentum"},
        {{"train", "--optimizer", "adam", "--nesterov", NULL}, 2, "--nesterov"},
        {{"train", "--label-smoothing", "1", NULL}, 2, "--label-smoothing"},
        {{"train", "--val-split", "0.95", NULL}, 2, "--val-split"},
        {{"train", "--augment", "crop:x", NULL}, 2, "crop:x"},
        {{"train", "--augment", "sharpen", NULL}, 2, "unknown transform"},
        {{"train", "--device", "tpu", NULL}, 2, "unknown 'tpu'"},
        {{"train", "--model", "transformer", NULL}, 2, "unknown model 'transformer'"},
        {{"train", "--resume", NULL}, 2, "--resume needs --out"},
        {{"train", "--resume", "--out", dir, "--lr", "0.1", NULL}, 2, "--lr cannot be changed"},
        {{"train", "--resume", "--out", dir, NULL}, 1, "has no checkpoint"},
        {{"train", "--data", "/nonexistent-ignis-data", "--out", dir, NULL}, 1, "/nonexistent-ignis-data"},
        {{"eval", NULL}, 2, "--checkpoint FILE is required"},
        {{"eval", "--checkpoint", "/nonexistent.safetensors", NULL}, 1, "/nonexistent.safetensors"},
        {{"eval", "--checkpoint", "x", "--batch", "0", NULL}, 2, "--batch"},
        {{"predict", "--checkpoint", "x", NULL}, 2, "no images"},
        {{"predict", "a.png", NULL}, 2, "--checkpoint FILE is required"},
        {{"predict", "--checkpoint", "x", "--top", "0", "a.png", NULL}, 2, "--top"},
        {{"predict", "--checkpoint", "/nonexistent.safetensors", "a.png", NULL}, 1, "/nonexistent.safetensors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int rc = cli_run(&out, dir, cases[i].args);
        cr_expect_eq(rc, cases[i].code, "case %zu (%s %s): exit %d, want %d; output:\n%s", i, cases[i].args[0],
                     cases[i].args[1] ? cases[i].args[1] : "", rc, cases[i].code, out);
        cr_expect(strstr(out, cases[i].message) != NULL, "case %zu: '%s' not in output:\n%s", i, cases[i].message, out);
        /* errors are one line "ignis: error: ..." */
        cr_expect(strncmp(out, "ignis: error: ", 14) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
                  "case %zu: not one error line:\n%s", i, out);
        free(out);
    }
    /* --device cuda without a usable device (or without CUDA in the build): one clear error
     * line, exit 1, for every command that takes it (on a GPU machine these would run). */
    if (!ig_cuda_is_available()) {
        const char *dev_cases[][10] = {
            {"train", "--device", "cuda", "--data", "/nonexistent-ignis-data", "--out", dir, NULL},
            {"eval", "--device", "cuda", "--checkpoint", "/nonexistent.safetensors", NULL},
            {"predict", "--device", "cuda", "--checkpoint", "/nonexistent.safetensors", "a.png", NULL},
            {"bench", "--device", "cuda", "--synthetic", NULL},
        };
        for (size_t i = 0; i < sizeof dev_cases / sizeof dev_cases[0]; i++) {
            char *out = NULL;
            int rc = cli_run(&out, dir, dev_cases[i]);
            char want[64];
            snprintf(want, sizeof want, "ignis: error: %s: --device cuda: ", dev_cases[i][0]);
            cr_expect_eq(rc, 1, "%s --device cuda: exit %d; output:\n%s", dev_cases[i][0], rc, out);
            cr_expect(strncmp(out, want, strlen(want)) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
                      "%s --device cuda: not one error line '%s...':\n%s", dev_cases[i][0], want, out);
            free(out);
        }
    }
    /* help goes to stdout, exit 0, for every command */
    const char *helps[] = {"train", "eval", "predict"};
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        const char *args[] = {helps[i], "--help", NULL};
        cr_expect_eq(cli_run(&out, dir, args), 0);
        cr_expect(strstr(out, "usage: ignis ") != NULL, "%s --help:\n%s", helps[i], out);
        free(out);
    }
    rm_tree(dir);
}

/* Decodes a PNG with libpng's simplified API; returns its size. */
static void png_size(const char *path, uint32_t *w, uint32_t *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&img, path), "%s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    void *buf = malloc(PNG_IMAGE_SIZE(img));
    cr_assert(png_image_finish_read(&img, NULL, buf, 0, NULL), "%s: %s", path, img.message);
    *w = img.width, *h = img.height;
    free(buf);
}

/* Writes a gray PNG of s x s whose pixels are syn_pixel(key) (class key % 4). */
static void write_syn_png(const char *path, int64_t key, int s) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (uint32_t)s, img.height = (uint32_t)s, img.format = PNG_FORMAT_GRAY;
    uint8_t px[64 * 64];
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) px[y * s + x] = syn_pixel(key, y, x, s);
    cr_assert(png_image_write_to_file(&img, path, 0, px, 0, NULL), "%s", img.message);
}

/* The names of ig_model_create(name, ...)'s state dict equal the file's tensor names. */
static void expect_model_names(ig_safetensors *st, const char *model, int64_t c, int64_t h, int64_t w, int64_t k) {
    ig_module *m = ig_model_create(model, c, h, w, k);
    cr_assert_not_null(m);
    int n = ig_module_state_dict(m, NULL, 0);
    ig_named_tensor *sd = malloc(sizeof *sd * (size_t)n);
    ig_module_state_dict(m, sd, n);
    cr_expect_eq(ig_safetensors_count(st), n);
    for (int i = 0; i < n && i < ig_safetensors_count(st); i++)
        cr_expect_str_eq(ig_safetensors_name(st, i), sd[i].name);
    free(sd);
    ig_module_free(m);
}

Test(tools, cli_train_writes_metrics_curves_and_checkpoints_then_eval_and_predict) {
    char dir[256], data[512], out[512], p[700];
    make_tmpdir(dir);
    fmt_path(data, sizeof data, "%s/data", dir);
    fmt_path(out, sizeof out, "%s/run", dir);
    mkdir(data, 0755);
    write_syn_dataset(data, 192, 64, 8);
    const char *args[] = {"train", "--data", data, "--model", "mlp", "--epochs", "2", "--batch", "32",
                          "--schedule", "cosine", "--lr", "0.02", "--out", out, NULL};
    char *text = NULL;
    cr_assert_eq(cli_run(&text, dir, args), 0, "%s", text);
    cr_expect_eq(count_lines_with(text, "epoch 1/2  train loss"), 1, "%s", text);
    cr_expect_eq(count_lines_with(text, "epoch 2/2  train loss"), 1, "%s", text);
    /* not a terminal: plain progress lines, ~every 10% of the 6 batches */
    cr_expect(count_lines_with(text, "epoch 1/2  batch ") >= 2, "%s", text);
    free(text);

    /* metrics.csv: header and one row per epoch, every value a number */
    text = read_text(fmt_path(p, sizeof p, "%s/metrics.csv", out), NULL);
    cr_assert_not_null(text);
    const char *hdr = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n";
    cr_expect(strncmp(text, hdr, strlen(hdr)) == 0, "%s", text);
    int rows = 0;
    for (char *line = strchr(text, '\n') + 1; *line; rows++) {
        char *end;
        for (int f = 0; f < 7; f++) {
            double v = strtod(line, &end);
            cr_expect(end != line && isfinite(v), "row %d field %d: %s", rows, f, line);
            if (f == 0) cr_expect_eq(v, rows + 1);
            if (f == 2 || f == 4) cr_expect(v >= 0 && v <= 1);
            line = end + 1;
        }
        cr_expect_eq(end[0], '\n');
    }
    cr_expect_eq(rows, 2);
    free(text);

    uint32_t w = 0, h = 0;
    png_size(fmt_path(p, sizeof p, "%s/curves.png", out), &w, &h);
    cr_expect_eq(w, 960);
    cr_expect_eq(h, 360);

    /* last and best: model names only, torch-style metadata; the optimizer file exists */
    const char *which[2] = {"last", "best"};
    for (int i = 0; i < 2; i++) {
        ig_safetensors *st = ig_safetensors_load(fmt_path(p, sizeof p, "%s/%s.safetensors", out, which[i]));
        cr_assert_not_null(st, "%s", ig_last_error());
        expect_model_names(st, "mlp", 1, 8, 8, 4);
        cr_expect_str_eq(ig_safetensors_meta(st, "format"), "pt");
        cr_expect_str_eq(ig_safetensors_meta(st, "model"), "mlp");
        cr_expect_str_eq(ig_safetensors_meta(st, "num_classes"), "4");
        cr_expect_str_eq(ig_safetensors_meta(st, "class_names"), "[\"0\", \"1\", \"2\", \"3\"]");
        cr_expect_str_eq(ig_safetensors_meta(st, "optimizer"), "sgd");
        cr_expect_not_null(ig_safetensors_meta(st, "rng_offset"));
        if (i == 0) cr_expect_str_eq(ig_safetensors_meta(st, "epoch"), "2");
        const char *of = ig_safetensors_meta(st, "optimizer_state");
        cr_assert(of && *of);
        ig_safetensors *os = ig_safetensors_load(fmt_path(p, sizeof p, "%s/%s", out, of));
        cr_assert_not_null(os, "%s", ig_last_error());
        cr_expect_not_null(ig_safetensors_find(os, "0.momentum_buffer"));
        ig_safetensors_free(os);
        ig_safetensors_free(st);
    }
    /* no optimizer file that neither checkpoint names */
    ckpt_run r;
    ig_module *m = NULL;
    cr_assert_eq(ckpt_load_model(fmt_path(p, sizeof p, "%s/last.safetensors", out), &r, &m), IG_OK, "%s",
                 ig_last_error());
    int optim_files = 0;
    DIR *d = opendir(out);
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, "optim-", 6) == 0) {
            optim_files++;
            cr_expect(!strcmp(e->d_name, r.optim_file) || !strcmp(e->d_name, r.best_optim_file), "%s", e->d_name);
        }
    closedir(d);
    cr_expect(optim_files >= 1 && optim_files <= 2);
    cr_expect_eq(r.nhistory, 2);
    ig_module_free(m);
    ckpt_run_free(&r);

    /* eval: accuracy, per-class table, confusion matrix that sums to the test set */
    const char *eargs[] = {"eval", "--checkpoint", fmt_path(p, sizeof p, "%s/best.safetensors", out), NULL};
    cr_assert_eq(cli_run(&text, dir, eargs), 0, "%s", text);
    const char *acc = strstr(text, "accuracy: ");
    cr_assert_not_null(acc, "%s", text);
    double a = strtod(acc + 10, NULL);
    cr_expect(a >= 0 && a <= 100);
    cr_expect(strstr(text, "precision") && strstr(text, "recall") && strstr(text, "f1"), "%s", text);
    cr_expect(strstr(text, "top-5") == NULL, "4 classes: no top-5\n%s", text);
    const char *cm = strstr(text, "confusion matrix");
    cr_assert_not_null(cm, "%s", text);
    long total = 0;
    cm = strchr(strchr(cm, '\n') + 1, '\n') + 1; /* skip the title and the column header */
    for (int row = 0; row < 4; row++) {
        char *end;
        strtol(cm, &end, 10); /* the row's class index */
        for (int col = 0; col < 4; col++) total += strtol(end, &end, 10);
        cm = strchr(end, '\n') + 1;
    }
    cr_expect_eq(total, 64, "%s", text);
    free(text);

    /* predict: an 8x8 image and a 16x16 one (resized), top 2 of each; a broken file fails */
    char img1[600], img2[600], bad[600];
    write_syn_png(fmt_path(img1, sizeof img1, "%s/a.png", dir), 1000003 + 0, 8);
    write_syn_png(fmt_path(img2, sizeof img2, "%s/b.png", dir), 1000003 + 1, 16);
    FILE *f = fopen(fmt_path(bad, sizeof bad, "%s/bad.png", dir), "wb");
    fputs("not a png", f);
    fclose(f);
    const char *pargs[] = {"predict", "--checkpoint", p, "--top", "2", img1, img2, NULL};
    cr_assert_eq(cli_run(&text, dir, pargs), 0, "%s", text);
    cr_expect(strstr(text, img1) && strstr(text, img2), "%s", text);
    cr_expect_eq(count_lines_with(text, "  "), 4, "%s", text);
    double sum = 0;
    for (const char *q = strchr(text, '\n') + 1; q && *q == ' '; q = strchr(q, '\n') + 1) sum += strtod(q, NULL);
    cr_expect(sum > 0 && sum <= 100.01, "%s", text);
    free(text);
    const char *bargs[] = {"predict", "--checkpoint", p, bad, img1, NULL};
    cr_expect_eq(cli_run(&text, dir, bargs), 1, "%s", text);
    cr_expect(strstr(text, "ignis: error: ") && strstr(text, "bad.png"), "%s", text);
    cr_expect(strstr(text, img1) != NULL, "the good image is still predicted:\n%s", text);
    free(text);

    /* a second plain train into the same folder refuses to overwrite the run */
    cr_expect_eq(cli_run(&text, dir, args), 1);
    cr_expect(strstr(text, "already holds a run"), "%s", text);
    free(text);
    rm_tree(dir);
}

/* Compares the tensors (names and bytes) of two model files. */
static void expect_same_tensors(const char *a, const char *b) {
    ig_safetensors *x = ig_safetensors_load(a), *y = ig_safetensors_load(b);
    cr_assert(x && y, "%s", ig_last_error());
    cr_assert_eq(ig_safetensors_count(x), ig_safetensors_count(y));
    for (int i = 0; i < ig_safetensors_count(x); i++) {
        ig_tensor *s = ig_safetensors_tensor(x, i), *t = ig_safetensors_tensor(y, i);
        cr_expect_str_eq(ig_safetensors_name(x, i), ig_safetensors_name(y, i));
        cr_assert_eq(ig_tensor_numel(s), ig_tensor_numel(t));
        size_t bytes = (size_t)ig_tensor_numel(s) * (ig_tensor_dtype(s) == IG_I64 ? 8 : 4);
        cr_expect(memcmp(ig_tensor_data(s), ig_tensor_data(t), bytes) == 0, "tensor %s differs",
                  ig_safetensors_name(x, i));
    }
    ig_safetensors_free(x);
    ig_safetensors_free(y);
}

/* A run stopped after epoch 1 and resumed logs the same per-step losses, bit for bit, as an
 * uninterrupted run, and ends with the same weights: resnet8 (batch norm buffers), adam
 * (moments), cosine with warm-up, augmentation, and a validation split. */
Test(tools, cli_resume_is_bit_exact) {
    char dir[256], data[512], a[512], b[512], la[600], lb[600], p[700], q[700];
    make_tmpdir(dir);
    fmt_path(data, sizeof data, "%s/data", dir);
    fmt_path(a, sizeof a, "%s/a", dir);
    fmt_path(b, sizeof b, "%s/b", dir);
    fmt_path(la, sizeof la, "%s/a.steps", dir);
    fmt_path(lb, sizeof lb, "%s/b.steps", dir);
    mkdir(data, 0755);
    write_syn_dataset(data, 160, 32, 8);
    const char *common[] = {"train", "--data", data, "--model", "resnet8", "--epochs", "3", "--batch", "16",
                            "--optimizer", "adam", "--schedule", "cosine", "--warmup", "0.5", "--augment",
                            "flip,crop:1", "--val-split", "0.2", "--seed", "7", "--quiet"};
    const int nc = (int)(sizeof common / sizeof common[0]);
    const char *args[40];
    char *text = NULL;

    memcpy(args, common, sizeof common);
    args[nc] = "--out", args[nc + 1] = a, args[nc + 2] = "--log-steps", args[nc + 3] = la, args[nc + 4] = NULL;
    cr_assert_eq(cli_run(&text, dir, args), 0, "%s", text);
    free(text);

    args[nc + 1] = b, args[nc + 3] = lb, args[nc + 4] = "--stop-after", args[nc + 5] = "1", args[nc + 6] = NULL;
    cr_assert_eq(cli_run(&text, dir, args), 0, "%s", text);
    cr_expect(strstr(text, "stopped after epoch 1 of 3"), "%s", text);
    free(text);
    const char *rargs[] = {"train", "--out", b, "--resume", "--stop-after", "2", "--log-steps", lb, NULL};
    cr_assert_eq(cli_run(&text, dir, rargs), 0, "%s", text);
    free(text);
    const char *rargs2[] = {"train", "--out", b, "--resume", "--log-steps", lb, NULL};
    cr_assert_eq(cli_run(&text, dir, rargs2), 0, "%s", text);
    free(text);

    size_t na = 0, nb = 0;
    char *sa = read_text(la, &na), *sb = read_text(lb, &nb);
    cr_assert(sa && sb);
    cr_expect_eq(count_lines_with(sa, "3 "), 8, "3 epochs of 8 steps:\n%s", sa);
    cr_expect(na == nb && memcmp(sa, sb, na) == 0, "step logs differ:\n--- uninterrupted\n%s--- resumed\n%s", sa, sb);
    free(sa);
    free(sb);
    expect_same_tensors(fmt_path(p, sizeof p, "%s/last.safetensors", a), fmt_path(q, sizeof q, "%s/last.safetensors", b));

    /* metrics.csv has the val columns and all three epochs after the resumes */
    text = read_text(fmt_path(p, sizeof p, "%s/metrics.csv", b), NULL);
    cr_assert_not_null(text);
    const char *hdr = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,val_loss,val_acc\n";
    cr_expect(strncmp(text, hdr, strlen(hdr)) == 0, "%s", text);
    cr_expect_eq(count_lines_with(text, "3,"), 1, "%s", text);
    free(text);

    /* resuming a finished run has nothing to do; --epochs extends it */
    cr_expect_eq(cli_run(&text, dir, rargs2), 0, "%s", text);
    free(text);
    const char *ext[] = {"train", "--out", b, "--resume", "--epochs", "4", "--quiet", NULL};
    cr_expect_eq(cli_run(&text, dir, ext), 0, "%s", text);
    cr_expect(strstr(text, "epoch 4/4"), "%s", text);
    free(text);
    rm_tree(dir);
}
