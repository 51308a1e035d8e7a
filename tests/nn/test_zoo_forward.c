/*
 * tests/nn/test_zoo_forward.c — the zoo models run: output shapes for 1x28x28 and 3x32x32
 * inputs and 10 or 7 classes; a training step (forward, cross-entropy, backward, SGD on the
 * flat parameter buffer) that changes the parameters; the loss of mlp and cnn falling while
 * they memorise a fixed tiny batch; ig_model_summary of cnn and resnet8 (parameter counts,
 * per-layer output shapes in the printed table, and FLOPs per image against a formula
 * worked out here from the layer shapes with the rules at the top of nn/summary.c).
 *
 * Batches are small (2 images; 8 for the memorisation runs) so the suite stays quick under
 * the sanitizers.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static const char *const train_models[] = {"mlp", "cnn", "resnet8", "resnet20"};
static const int64_t inputs[2][3] = {{1, 28, 28}, {3, 32, 32}};

/* One SGD step on the flat buffer of m for a batch of n random images with random labels.
 * Returns the loss before the step. */
static double train_step(ig_module *m, ig_optimizer *opt, ig_tensor *x, ig_tensor *y) {
    ig_scope *s = ig_scope_begin();
    ig_optim_zero_grad(opt);
    ig_tensor *logits = ig_module_forward(m, x);
    cr_assert_not_null(logits, "%s", ig_last_error());
    ig_tensor *loss = ig_cross_entropy(logits, y, NULL);
    cr_assert_not_null(loss, "%s", ig_last_error());
    double l = ig_item(loss);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_optim_step(opt), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
    return l;
}

Test(nn_zoo, output_shapes_for_both_inputs_and_class_counts) {
    ig_manual_seed(201);
    const int64_t classes[2] = {10, 7};
    for (int k = 0; k < 4; k++)
        for (int in = 0; in < 2; in++)
            for (int c = 0; c < 2; c++) {
                ig_module *m = ig_model_create(train_models[k], inputs[in][0], inputs[in][1], inputs[in][2], classes[c]);
                cr_assert_not_null(m, "%s: %s", train_models[k], ig_last_error());
                ig_scope *s = ig_scope_begin();
                ig_no_grad_begin();
                ig_tensor *x = ig_randn(IG_DIMS(2, inputs[in][0], inputs[in][1], inputs[in][2]), IG_F32);
                ig_tensor *y = ig_module_forward(m, x);
                ig_no_grad_end();
                cr_assert_not_null(y, "%s %lldx%lld: %s", train_models[k], (long long)inputs[in][1],
                                   (long long)inputs[in][2], ig_last_error());
                cr_assert_eq(ig_tensor_ndim(y), 2);
                cr_assert_eq(ig_tensor_shape(y)[0], 2, "%s", train_models[k]);
                cr_assert_eq(ig_tensor_shape(y)[1], classes[c], "%s", train_models[k]);
                cr_assert_eq(ig_tensor_dtype(y), IG_F32);
                for (int i = 0; i < 2 * classes[c]; i++) cr_assert(isfinite(ig_tensor_get(y, i)));
                ig_scope_end(s);
                ig_module_free(m);
            }
    assert_no_live_bytes();
}

Test(nn_zoo, resnet56_one_image) {
    ig_manual_seed(202);
    ig_module *m = ig_model_create("resnet56", 3, 32, 32, 7);
    cr_assert_not_null(m, "%s", ig_last_error());
    ig_module_train(m, false);
    ig_scope *s = ig_scope_begin();
    ig_no_grad_begin();
    ig_tensor *y = ig_module_forward(m, ig_randn(IG_DIMS(1, 3, 32, 32), IG_F32));
    ig_no_grad_end();
    cr_assert_not_null(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), 2);
    cr_assert_eq(ig_tensor_shape(y)[0], 1);
    cr_assert_eq(ig_tensor_shape(y)[1], 7);
    for (int i = 0; i < 7; i++) cr_assert(isfinite(ig_tensor_get(y, i)));
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_zoo, train_step_changes_parameters) {
    /* Each trainable model and input: forward in train mode, cross-entropy, backward, one
     * SGD step on the flat buffer. Every parameter tensor must get a gradient in the flat
     * gradient buffer, and the step must move the parameters by -lr * grad. */
    ig_manual_seed(203);
    for (int k = 0; k < 4; k++)
        for (int in = 0; in < 2; in++) {
            int64_t classes = in ? 7 : 10;
            ig_module *m = ig_model_create(train_models[k], inputs[in][0], inputs[in][1], inputs[in][2], classes);
            cr_assert_not_null(m);
            cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
            ig_tensor *flat = ig_module_flat_params(m), *fg = ig_module_flat_grads(m);
            int64_t n = ig_tensor_numel(flat);
            cr_assert_eq(n, ig_module_num_params(m));
            float *before = malloc(sizeof(float) * (size_t)n);
            memcpy(before, ig_tensor_data(flat), sizeof(float) * (size_t)n);
            ig_sgd_opts o = ig_sgd_defaults();
            o.lr = 0.1;
            ig_optimizer *opt = ig_optim_sgd(&flat, 1, &o);
            cr_assert_not_null(opt, "%s", ig_last_error());
            ig_scope *s = ig_scope_begin();
            ig_tensor *x = ig_randn(IG_DIMS(2, inputs[in][0], inputs[in][1], inputs[in][2]), IG_F32);
            ig_tensor *y = ig_randint(0, classes, IG_DIMS(2), IG_I64);
            double loss = train_step(m, opt, x, y);
            cr_assert(isfinite(loss) && loss > 0, "%s loss %g", train_models[k], loss);
            const float *after = ig_tensor_data(flat), *g = ig_tensor_data(fg);
            int64_t changed = 0;
            for (int64_t i = 0; i < n; i++) {
                cr_assert_float_eq(after[i], before[i] - 0.1f * g[i], 1e-6f, "%s param %lld", train_models[k],
                                   (long long)i);
                changed += after[i] != before[i];
            }
            /* Every parameter tensor has some non-zero gradient (each is used by the forward;
             * ReLUs dead on random data zero part of a layer, not all of it). */
            ig_named_tensor ps[128];
            int np = ig_module_named_parameters(m, ps, 128);
            cr_assert(np > 0 && np <= 128);
            for (int p = 0; p < np; p++) {
                ig_tensor *gp = ig_grad(ps[p].tensor);
                cr_assert_not_null(gp, "%s %s", train_models[k], ps[p].name);
                bool any = false;
                for (int64_t i = 0; i < ig_tensor_numel(gp) && !any; i++) any = ig_tensor_get(gp, i) != 0;
                cr_assert(any, "%s: %s has an all-zero gradient", train_models[k], ps[p].name);
            }
            cr_assert(changed > n / 4, "%s: %lld of %lld parameters changed", train_models[k], (long long)changed,
                      (long long)n);
            /* Train mode: the BatchNorms of the resnets counted the batch. */
            if (k >= 2) cr_assert_eq(ig_tensor_get(ig_module_get(m, "1.num_batches_tracked"), 0), 1);
            ig_scope_end(s);
            ig_optim_free(opt);
            free(before);
            ig_module_free(m);
        }
    assert_no_live_bytes();
}

/* 20 SGD+momentum steps on one batch of 8 random images with random labels: the model
 * memorises it, so the loss must fall well below its start (ln 10 ~ 2.3 at init). */
static void check_memorises(const char *name, double lr) {
    ig_manual_seed(204);
    ig_module *m = ig_model_create(name, 1, 28, 28, 10);
    cr_assert_eq(ig_module_flatten(m), IG_OK);
    ig_tensor *flat = ig_module_flat_params(m);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = lr;
    o.momentum = 0.9;
    ig_optimizer *opt = ig_optim_sgd(&flat, 1, &o);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(8, 1, 28, 28), IG_F32);
    ig_tensor *y = ig_randint(0, 10, IG_DIMS(8), IG_I64);
    double first = 0, last = 0, min_loss = 1e30;
    for (int step = 0; step < 20; step++) {
        last = train_step(m, opt, x, y);
        cr_assert(isfinite(last), "%s step %d", name, step);
        if (step == 0) first = last;
        if (last < min_loss) min_loss = last;
    }
    /* The loss after the last step, evaluated once more. */
    ig_tensor *end = ig_cross_entropy(ig_module_forward(m, x), y, NULL);
    double final_loss = ig_item(end);
    cr_assert(first > 1.5, "%s starts near ln 10: %g", name, first);
    cr_assert(final_loss < 0.3 * first, "%s: loss %g -> %g (last step %g, min %g)", name, first, final_loss, last,
              min_loss);
    ig_scope_end(s);
    ig_optim_free(opt);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_zoo, mlp_loss_falls_on_a_fixed_batch) { check_memorises("mlp", 0.02); }
Test(nn_zoo, cnn_loss_falls_on_a_fixed_batch) { check_memorises("cnn", 0.02); }

/* ---- summary ------------------------------------------------------------------------------- */

/* FLOPs of one layer by the rules of nn/summary.c (out = output elements of one image). */
static int64_t conv_flops(int64_t cout, int64_t ho, int64_t wo, int64_t cin_per_group, int64_t k, bool bias) {
    return cout * ho * wo * (2 * cin_per_group * k * k + (bias ? 1 : 0));
}
static int64_t linear_flops(int64_t out, int64_t in, bool bias) { return out * (2 * in + (bias ? 1 : 0)); }

/* The summary printed to a tmpfile, as text (the caller frees). */
static char *summary_text(ig_module *m, int64_t c, int64_t h, int64_t w, ig_model_stats *st) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(ig_model_summary(m, c, h, w, f, st), IG_OK, "%s", ig_last_error());
    long len = ftell(f);
    cr_assert(len > 0);
    char *text = malloc((size_t)len + 1);
    rewind(f);
    size_t n = fread(text, 1, (size_t)len, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Checks the table row of path: its type, output shape and parameter count columns. */
static void expect_row(const char *text, const char *path, const char *type, const char *shape, long long params) {
    const char *line = text;
    while (line && *line) {
        char p[64], t[32], sh[64];
        long long n;
        if (sscanf(line, "%63s %31s %63s %lld", p, t, sh, &n) == 4 && strcmp(p, path) == 0) {
            cr_assert_str_eq(t, type, "row %s", path);
            cr_assert_str_eq(sh, shape, "row %s", path);
            cr_assert_eq(n, params, "row %s: %lld params", path, n);
            return;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    cr_assert_fail("no row '%s' in\n%s", path, text);
}

Test(nn_zoo, summary_cnn) {
    ig_module *m = ig_model_create("cnn", 1, 28, 28, 10);
    cr_assert_not_null(m);
    ig_model_stats st = {0};
    char *text = summary_text(m, 1, 28, 28, &st);
    cr_assert_eq(st.params, 421642);
    cr_assert_eq(ig_module_num_params(m), 421642);
    /* conv(1->32, 3x3, pad 1) 28x28, relu, pool -> 14x14, conv(32->64) 14x14, relu,
     * pool -> 7x7, flatten, linear(3136 -> 128), relu, linear(128 -> 10). */
    int64_t flops = conv_flops(32, 28, 28, 1, 3, true) + 32 * 28 * 28 + 32 * 14 * 14 +
                    conv_flops(64, 14, 14, 32, 3, true) + 64 * 14 * 14 + 64 * 7 * 7 + linear_flops(128, 3136, true) +
                    128 + linear_flops(10, 128, true);
    cr_assert_eq(flops, 8567242);
    cr_assert_eq(st.flops_per_image, flops, "%lld vs %lld", (long long)st.flops_per_image, (long long)flops);
    expect_row(text, "0", "Conv2d", "[1,32,28,28]", 320);
    expect_row(text, "2", "MaxPool2d", "[1,32,14,14]", 0);
    expect_row(text, "3", "Conv2d", "[1,64,14,14]", 18496);
    expect_row(text, "5", "MaxPool2d", "[1,64,7,7]", 0);
    expect_row(text, "6", "Flatten", "[1,3136]", 0);
    expect_row(text, "7", "Linear", "[1,128]", 401536);
    expect_row(text, "9", "Linear", "[1,10]", 1290);
    cr_assert(strstr(text, "total params: 421642"), "%s", text);
    cr_assert(strstr(text, "FLOPs per image: 8567242"), "%s", text);
    free(text);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_zoo, summary_resnet8) {
    ig_module *m = ig_model_create("resnet8", 1, 28, 28, 10);
    cr_assert_not_null(m);
    ig_model_stats st = {0};
    char *text = summary_text(m, 1, 28, 28, &st);
    cr_assert_eq(st.params, 77754);
    /* Stem: conv(1->16, no bias) + BN + ReLU at 28x28. Then one block per stage:
     * c1, b1, c2, b2 (+ sc conv 1x1 and sc BN when projecting) and 3 per output element for
     * the block's own relu / add / relu. Then the global average pool (64 outputs), Flatten
     * (0) and Linear(64 -> 10). */
    int64_t flops = conv_flops(16, 28, 28, 1, 3, false) + 2 * 16 * 28 * 28;
    struct {
        int64_t cin, cout, hw;
        bool proj;
    } blocks[3] = {{16, 16, 28, false}, {16, 32, 14, true}, {32, 64, 7, true}};
    for (int b = 0; b < 3; b++) {
        int64_t cout = blocks[b].cout, hw = blocks[b].hw, n = cout * hw * hw;
        flops += conv_flops(cout, hw, hw, blocks[b].cin, 3, false) + n;  /* c1, b1 */
        flops += conv_flops(cout, hw, hw, cout, 3, false) + n;           /* c2, b2 */
        if (blocks[b].proj) flops += conv_flops(cout, hw, hw, blocks[b].cin, 1, false) + n; /* sc.0, sc.1 */
        flops += 3 * n;
    }
    flops += 64 + linear_flops(10, 64, true);
    cr_assert_eq(st.flops_per_image, flops, "%lld vs %lld", (long long)st.flops_per_image, (long long)flops);
    expect_row(text, "0", "Conv2d", "[1,16,28,28]", 144);
    expect_row(text, "1", "BatchNorm2d", "[1,16,28,28]", 32);
    expect_row(text, "3.c1", "Conv2d", "[1,16,28,28]", 2304);
    expect_row(text, "4.c1", "Conv2d", "[1,32,14,14]", 4608);
    expect_row(text, "4.sc.0", "Conv2d", "[1,32,14,14]", 512);
    expect_row(text, "4.sc.1", "BatchNorm2d", "[1,32,14,14]", 64);
    expect_row(text, "5.c2", "Conv2d", "[1,64,7,7]", 36864);
    expect_row(text, "5.b2", "BatchNorm2d", "[1,64,7,7]", 128);
    expect_row(text, "6", "AdaptiveAvgPool2d", "[1,64,1,1]", 0);
    expect_row(text, "7", "Flatten", "[1,64]", 0);
    expect_row(text, "8", "Linear", "[1,10]", 650);
    cr_assert(strstr(text, "total params: 77754"), "%s", text);
    /* The summary runs in eval mode: no batch was counted, and train mode is restored. */
    cr_assert_eq(ig_tensor_get(ig_module_get(m, "1.num_batches_tracked"), 0), 0);
    cr_assert(ig_module_is_training(ig_module_child(m, "4")));
    free(text);
    ig_module_free(m);
    assert_no_live_bytes();
}
