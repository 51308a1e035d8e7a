/*
 * tests/nn/test_layers_ops.c — the layers whose values come from the functional ops
 * (Conv2d, BatchNorm, LayerNorm, Dropout, pooling, Embedding), checked as modules:
 *
 *   - every layer through ig_gradcheck in f64 at module level (ig_module_to_dtype), with
 *     respect to the input and to every parameter (parameters are leaves requiring grad;
 *     gradcheck perturbs them in place), including Conv2d over all combinations of stride,
 *     padding, dilation, groups and bias, BatchNorm in train and eval mode, Sequential and
 *     both kinds of BasicBlock;
 *   - forward values against plain C loops written here (Conv2d with groups and bias,
 *     BatchNorm in train and eval mode with its running statistics and batch counter,
 *     LayerNorm, Embedding, the pools).
 *
 * Shapes are tiny (N = 2, C <= 4, H, W <= 6) so the gradchecks stay fast under the
 * sanitizers.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* Copies v (numel doubles, row-major) into t whatever t's float dtype. */
static void set_values(ig_tensor *t, const double *v) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *src = ig_from_data(ig_tensor_ndim(t), ig_tensor_shape(t), IG_F64, v);
    cr_assert_eq(ig_copy_(t, src), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

/* t's elements as doubles into a malloc'd array (the caller frees). */
static double *values(const ig_tensor *t) {
    int64_t n = ig_tensor_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    cr_assert_not_null(v);
    cr_assert_eq(ig_tensor_to_buffer(t, IG_F64, v, n), IG_OK, "%s", ig_last_error());
    return v;
}

/* Overwrites every parameter of m with fresh N(0, scale^2) draws around base (1 for
 * normalisation weights so they stay away from 0): the default init of BN/LN (1s and 0s)
 * would hide a gradient that swaps weight and bias. */
static void randomise_params(ig_module *m, double scale) {
    ig_named_tensor ps[32];
    int n = ig_module_named_parameters(m, ps, 32);
    cr_assert(n >= 0 && n <= 32);
    for (int i = 0; i < n; i++) {
        int64_t k = ig_tensor_numel(ps[i].tensor);
        double *v = values(ps[i].tensor);
        ig_scope *s = ig_scope_begin();
        double *r = values(ig_randn(IG_DIMS(k), IG_F64));
        for (int64_t j = 0; j < k; j++) v[j] += scale * r[j];
        ig_scope_end(s);
        set_values(ps[i].tensor, v);
        free(r);
        free(v);
    }
}

/* A f64 tensor whose values are distinct, 0.1 apart and at least 0.05 away from zero (a
 * permutation of a grid): no ReLU kink and no max-pool tie within gradcheck's eps. */
static ig_tensor *graded(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    int64_t k = 7; /* coprime to n, so i -> i*k mod n is a permutation */
    for (;;) {
        int64_t a = n, b = k;
        while (b) {
            int64_t t = a % b;
            a = b;
            b = t;
        }
        if (a == 1) break;
        k += 2;
    }
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) v[i] = 0.1 * (double)((i * k) % n - n / 2) + 0.05;
    ig_tensor *t = ig_from_data(ndim, shape, IG_F64, v);
    free(v);
    return t;
}

static ig_tensor *module_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return ig_module_forward(ctx, in[0]);
}

/* Gradchecks m at x with respect to x (if it requires grad) and every parameter of m. m
 * must already be f64. */
static void gradcheck_module(ig_module *m, ig_tensor *x, ig_gradcheck_fn fn, const char *what) {
    ig_named_tensor ps[32];
    int np = ig_module_named_parameters(m, ps, 32);
    cr_assert(np >= 0 && np <= 32, "%s", what);
    ig_tensor *in[33];
    in[0] = x;
    for (int i = 0; i < np; i++) {
        cr_assert_eq(ig_tensor_dtype(ps[i].tensor), IG_F64, "%s: %s", what, ps[i].name);
        cr_assert(ig_requires_grad(ps[i].tensor), "%s: %s is checked only if it requires grad", what, ps[i].name);
        in[i + 1] = ps[i].tensor;
    }
    ig_status st = ig_gradcheck(fn ? fn : module_fn, in, np + 1, m, NULL);
    cr_assert_eq(st, IG_OK, "%s: %s", what, ig_last_error());
}

static ig_tensor *randn_x(int ndim, const int64_t *shape) {
    ig_tensor *x = ig_randn(ndim, shape, IG_F64);
    ig_set_requires_grad(x, true);
    return x;
}

/* ---- reference implementations (plain loops, doubles) ---------------------------------- */

/* torch's conv2d: y[n][o][i][j] = b[o] + sum over c in o's group, kernel (p, q) of
 * x[n][c][i*s - pad + p*d][j*s - pad + q*d] * w[o][c - group start][p][q] (zero outside). */
static void conv_ref(const double *x, int N, int C, int H, int W, const double *w, int O, int kh, int kw,
                     const double *b, const int st[2], const int pad[2], const int dil[2], int groups, double *y,
                     int Ho, int Wo) {
    int cg = C / groups, og = O / groups;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    double acc = b ? b[o] : 0;
                    int g = o / og;
                    for (int c = 0; c < cg; c++)
                        for (int p = 0; p < kh; p++)
                            for (int q = 0; q < kw; q++) {
                                int r = i * st[0] - pad[0] + p * dil[0], cc = j * st[1] - pad[1] + q * dil[1];
                                if (r < 0 || r >= H || cc < 0 || cc >= W) continue;
                                acc += x[((n * C + g * cg + c) * H + r) * W + cc] * w[((o * cg + c) * kh + p) * kw + q];
                            }
                    y[((n * O + o) * Ho + i) * Wo + j] = acc;
                }
}

/* Per-channel mean and biased variance of x [N,C,L] (L = H*W or 1). */
static void channel_stats(const double *x, int N, int C, int L, double *mean, double *var) {
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int n = 0; n < N; n++)
            for (int l = 0; l < L; l++) s += x[(n * C + c) * L + l];
        double m = s / (N * L);
        for (int n = 0; n < N; n++)
            for (int l = 0; l < L; l++) {
                double d = x[(n * C + c) * L + l] - m;
                q += d * d;
            }
        mean[c] = m;
        var[c] = q / (N * L);
    }
}

/* ---- gradchecks --------------------------------------------------------------------------- */

Test(nn_ops, linear_gradcheck_input_and_params) {
    ig_manual_seed(101);
    for (int bias = 0; bias < 2; bias++) {
        ig_module *m = ig_nn_linear(3, 2, bias);
        cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK, "%s", ig_last_error());
        ig_scope *s = ig_scope_begin();
        gradcheck_module(m, randn_x(IG_DIMS(2, 3)), NULL, "Linear [2,3]");
        gradcheck_module(m, randn_x(IG_DIMS(2, 2, 3)), NULL, "Linear [2,2,3]");
        ig_scope_end(s);
        ig_module_free(m);
    }
    assert_no_live_bytes();
}

Test(nn_ops, conv2d_gradcheck_all_combinations) {
    /* 2 strides x 2 paddings x 2 dilations x 2 group counts x bias on/off = 32 configs,
     * kernel 3x2 on a 5x6 image so the two axes differ. */
    ig_manual_seed(102);
    int configs = 0;
    for (int stride = 1; stride <= 2; stride++)
        for (int pad = 0; pad <= 1; pad++)
            for (int dil = 1; dil <= 2; dil++)
                for (int groups = 1; groups <= 2; groups++)
                    for (int bias = 0; bias < 2; bias++) {
                        ig_conv2d_params p = {.stride = {stride, stride}, .padding = {pad, pad},
                                              .dilation = {dil, dil}, .groups = groups};
                        ig_module *m = ig_nn_conv2d(2, 4, 3, 2, &p, bias);
                        cr_assert_not_null(m, "%s", ig_last_error());
                        cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK);
                        ig_scope *s = ig_scope_begin();
                        ig_tensor *x = randn_x(IG_DIMS(2, 2, 5, 6));
                        char what[96];
                        snprintf(what, sizeof what, "Conv2d stride %d pad %d dil %d groups %d bias %d", stride,
                                 pad, dil, groups, bias);
                        /* The output shape, from torch's formula. */
                        int ho = (5 + 2 * pad - dil * 2 - 1) / stride + 1, wo = (6 + 2 * pad - dil * 1 - 1) / stride + 1;
                        ig_tensor *y = ig_module_forward(m, x);
                        assert_shape(y, IG_DIMS(2, 4, ho, wo));
                        gradcheck_module(m, x, NULL, what);
                        ig_scope_end(s);
                        ig_module_free(m);
                        configs++;
                    }
    cr_assert_eq(configs, 32);
    assert_no_live_bytes();
}

Test(nn_ops, batchnorm_gradcheck_train_and_eval) {
    ig_manual_seed(103);
    /* BatchNorm1d on [N,C] and [N,C,L], BatchNorm2d on [N,C,H,W]. Train mode normalises with
     * the batch statistics (each forward also updates the running ones, which the train-mode
     * output does not read); eval mode uses the running statistics, set away from 0/1. */
    struct {
        bool two_d;
        int ndim;
        int64_t shape[4];
    } cases[] = {{false, 2, {4, 3}}, {false, 3, {2, 3, 4}}, {true, 4, {2, 3, 3, 3}}};
    for (int k = 0; k < 3; k++)
        for (int train = 1; train >= 0; train--) {
            ig_module *m = cases[k].two_d ? ig_nn_batchnorm2d(3) : ig_nn_batchnorm1d(3);
            cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK);
            randomise_params(m, 0.5);
            set_values(ig_module_get(m, "running_mean"), (const double[]){0.3, -0.2, 0.1});
            set_values(ig_module_get(m, "running_var"), (const double[]){0.5, 2.0, 1.5});
            ig_module_train(m, train);
            ig_scope *s = ig_scope_begin();
            char what[64];
            snprintf(what, sizeof what, "%s %dd %s", ig_module_type(m), cases[k].ndim, train ? "train" : "eval");
            gradcheck_module(m, randn_x(cases[k].ndim, cases[k].shape), NULL, what);
            ig_scope_end(s);
            if (!train) cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "running_var"), 1), 2.0, 1e-12);
            ig_module_free(m);
        }
    assert_no_live_bytes();
}

Test(nn_ops, layernorm_gradcheck) {
    ig_manual_seed(104);
    ig_module *m = ig_nn_layernorm(2, (const int64_t[]){3, 4}, 1e-5);
    cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK);
    randomise_params(m, 0.5);
    ig_scope *s = ig_scope_begin();
    gradcheck_module(m, randn_x(IG_DIMS(2, 3, 4)), NULL, "LayerNorm (3,4)");
    ig_scope_end(s);
    ig_module_free(m);
    m = ig_nn_layernorm(1, (const int64_t[]){5}, 1e-3);
    cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK);
    randomise_params(m, 0.5);
    s = ig_scope_begin();
    gradcheck_module(m, randn_x(IG_DIMS(2, 2, 5)), NULL, "LayerNorm (5)");
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

/* The dropout mask is drawn from the default generator: reseeding before each evaluation
 * gives every one of gradcheck's forwards the same mask. */
static ig_tensor *dropout_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    ig_manual_seed(4242);
    return ig_module_forward(ctx, in[0]);
}

Test(nn_ops, dropout_gradcheck_train_and_eval) {
    ig_module *m = ig_nn_dropout(0.4);
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(105);
    ig_tensor *x = randn_x(IG_DIMS(2, 3, 4));
    /* Train: some elements zeroed, the rest scaled by 1/(1-p); the gradient follows. */
    ig_tensor *y = dropout_fn(&x, 1, m);
    int zeros = 0;
    for (int i = 0; i < 24; i++) {
        double v = ig_tensor_get(y, i), xv = ig_tensor_get(x, i);
        if (v == 0) zeros++;
        else cr_assert_float_eq(v, xv / 0.6, 1e-12, "%d", i);
    }
    cr_assert(zeros > 0 && zeros < 24, "%d zeros", zeros);
    gradcheck_module(m, x, dropout_fn, "Dropout train");
    ig_module_train(m, false);
    gradcheck_module(m, x, NULL, "Dropout eval");
    ig_scope_end(s);
    ig_module_free(m);
    /* p = 1 in training zeroes everything (no 0 * inf NaNs), and so does its gradient. */
    m = ig_nn_dropout(1.0);
    s = ig_scope_begin();
    x = randn_x(IG_DIMS(2, 3, 4));
    y = dropout_fn(&x, 1, m);
    for (int i = 0; i < 24; i++) cr_assert_eq(ig_tensor_get(y, i), 0.0, "%d", i);
    gradcheck_module(m, x, dropout_fn, "Dropout p=1");
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_ops, pool_gradchecks) {
    ig_manual_seed(106);
    const ig_pool2d_params maxp[] = {
        {.kernel = {2, 2}},
        {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
        {.kernel = {3, 2}, .stride = {2, 1}, .ceil_mode = true},
    };
    const ig_pool2d_params avgp[] = {
        {.kernel = {2, 2}},
        {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
        {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .exclude_padding = true},
        {.kernel = {2, 3}, .stride = {2, 2}, .ceil_mode = true},
    };
    ig_scope *s = ig_scope_begin();
    /* graded: distinct values 0.1 apart, so no max is within eps of a tie. */
    ig_tensor *x = graded(IG_DIMS(2, 2, 5, 6));
    ig_set_requires_grad(x, true);
    for (int i = 0; i < 3; i++) {
        ig_module *m = ig_nn_maxpool2d(&maxp[i]);
        gradcheck_module(m, x, NULL, "MaxPool2d");
        ig_module_free(m);
    }
    for (int i = 0; i < 4; i++) {
        ig_module *m = ig_nn_avgpool2d(&avgp[i]);
        gradcheck_module(m, x, NULL, "AvgPool2d");
        ig_module_free(m);
    }
    const int64_t adaptive[][2] = {{1, 1}, {2, 3}, {3, 4}};
    for (int i = 0; i < 3; i++) {
        ig_module *m = ig_nn_adaptive_avgpool2d(adaptive[i][0], adaptive[i][1]);
        gradcheck_module(m, x, NULL, "AdaptiveAvgPool2d");
        ig_module_free(m);
    }
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(nn_ops, flatten_and_activation_gradchecks) {
    ig_manual_seed(107);
    ig_scope *s = ig_scope_begin();
    ig_module *f = ig_nn_flatten(1, -1);
    gradcheck_module(f, randn_x(IG_DIMS(2, 2, 3, 3)), NULL, "Flatten");
    ig_module_free(f);
    ig_module *mods[7];
    mods[0] = ig_nn_relu();
    mods[1] = ig_nn_leaky_relu(0.1);
    mods[2] = ig_nn_gelu();
    mods[3] = ig_nn_silu();
    mods[4] = ig_nn_sigmoid();
    mods[5] = ig_nn_tanh();
    mods[6] = ig_nn_softmax(1);
    /* graded keeps ReLU/LeakyReLU inputs at least 0.05 from their kink. */
    ig_tensor *x = graded(IG_DIMS(2, 3, 4));
    ig_set_requires_grad(x, true);
    for (int k = 0; k < 7; k++) {
        gradcheck_module(mods[k], x, NULL, ig_module_type(mods[k]));
        ig_module_free(mods[k]);
    }
    /* Softmax over the last dim too. */
    ig_module *sm = ig_nn_softmax(-1);
    gradcheck_module(sm, randn_x(IG_DIMS(2, 3, 4)), NULL, "Softmax(-1)");
    ig_module_free(sm);
    ig_scope_end(s);
    assert_no_live_bytes();
}

static ig_tensor *embedding_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return ig_module_forward(ctx, in[0]); /* in[0]: the indices; in[1]: the weight */
}

Test(nn_ops, embedding_gradcheck_weight) {
    ig_manual_seed(108);
    ig_module *m = ig_nn_embedding(5, 3);
    cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK);
    ig_scope *s = ig_scope_begin();
    /* Repeated indices: their gradients must add up in the shared row; row 4 gets none. */
    int64_t idx[6] = {1, 3, 1, 0, 2, 1};
    ig_tensor *in[2] = {ig_from_data(IG_DIMS(2, 3), IG_I64, idx), ig_module_get(m, "weight")};
    cr_assert_eq(ig_gradcheck(embedding_fn, in, 2, m, NULL), IG_OK, "%s", ig_last_error());
    /* The accumulated gradient of a sum: each row's count of uses. */
    ig_tensor *loss = ig_sum(ig_module_forward(m, in[0]), 0, NULL, false);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    ig_tensor *g = ig_grad(ig_module_get(m, "weight"));
    const double uses[5] = {1, 3, 1, 1, 0};
    for (int r = 0; r < 5; r++)
        for (int d = 0; d < 3; d++) cr_assert_float_eq(ig_tensor_get(g, r * 3 + d), uses[r], 1e-12, "row %d", r);
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_ops, sequential_gradcheck_conv_bn_relu_pool_linear) {
    ig_manual_seed(109);
    ig_module *l[6];
    l[0] = ig_nn_conv2d(2, 3, 3, 3, &(ig_conv2d_params){.padding = {1, 1}}, true);
    l[1] = ig_nn_batchnorm2d(3);
    l[2] = ig_nn_relu();
    l[3] = ig_nn_maxpool2d(&(ig_pool2d_params){.kernel = {2, 2}});
    l[4] = ig_nn_flatten(1, -1);
    l[5] = ig_nn_linear(12, 2, true);
    ig_module *m = ig_nn_sequential(6, l);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK);
    randomise_params(ig_module_child(m, "1"), 0.3);
    cr_assert_eq(ig_module_named_parameters(m, NULL, 0), 6);
    ig_scope *s = ig_scope_begin();
    gradcheck_module(m, randn_x(IG_DIMS(2, 2, 4, 4)), NULL, "Sequential train");
    ig_module_train(m, false);
    gradcheck_module(m, randn_x(IG_DIMS(2, 2, 4, 4)), NULL, "Sequential eval");
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_ops, basic_block_gradcheck_train) {
    ig_manual_seed(110);
    /* Identity shortcut (2 -> 2, stride 1) and projection shortcut (2 -> 4, stride 2: the
     * sc 1x1 conv + BN), both in train mode; x and every conv and BN parameter. */
    struct {
        int64_t cin, cout;
        int stride;
        int n_params;
        int64_t ho;
    } cases[] = {{2, 2, 1, 6, 4}, {2, 4, 2, 9, 2}};
    for (int k = 0; k < 2; k++) {
        ig_module *b = ig_nn_basic_block(cases[k].cin, cases[k].cout, cases[k].stride);
        cr_assert_not_null(b, "%s", ig_last_error());
        cr_assert_eq(ig_module_to_dtype(b, IG_F64), IG_OK);
        randomise_params(b, 0.3);
        cr_assert_eq(ig_module_named_parameters(b, NULL, 0), cases[k].n_params);
        cr_assert(ig_module_is_training(b));
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = randn_x(IG_DIMS(2, cases[k].cin, 4, 4));
        assert_shape(ig_module_forward(b, x), IG_DIMS(2, cases[k].cout, cases[k].ho, cases[k].ho));
        gradcheck_module(b, x, NULL, cases[k].stride == 1 ? "BasicBlock identity" : "BasicBlock projection");
        ig_scope_end(s);
        ig_module_free(b);
    }
    assert_no_live_bytes();
}

/* ---- forward values ------------------------------------------------------------------------- */

Test(nn_ops, conv2d_forward_groups_bias_matches_loops) {
    ig_manual_seed(111);
    const int N = 2, C = 4, H = 5, W = 6, O = 6, kh = 3, kw = 2;
    const int st[2] = {2, 1}, pad[2] = {1, 2}, dil[2] = {1, 2};
    ig_conv2d_params p = {.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}, .groups = 2};
    ig_module *m = ig_nn_conv2d(C, O, kh, kw, &p, true);
    cr_assert_not_null(m, "%s", ig_last_error());
    int Ho = (H + 2 * pad[0] - dil[0] * (kh - 1) - 1) / st[0] + 1;
    int Wo = (W + 2 * pad[1] - dil[1] * (kw - 1) - 1) / st[1] + 1;
    cr_assert_eq(Ho, 3);
    cr_assert_eq(Wo, 8);
    double *w = values(ig_module_get(m, "weight")), *b = values(ig_module_get(m, "bias"));
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(N, C, H, W), IG_F32);
    double *xv = values(x);
    double *want = malloc(sizeof(double) * (size_t)(N * O * Ho * Wo));
    conv_ref(xv, N, C, H, W, w, O, kh, kw, b, st, pad, dil, 2, want, Ho, Wo);
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(N, O, Ho, Wo));
    for (int i = 0; i < N * O * Ho * Wo; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-4, "%d", i);
    /* The same image through a non-contiguous input: NHWC memory viewed as NCHW. */
    ig_tensor *nhwc = ig_contiguous(ig_permute(x, (const int[]){0, 2, 3, 1}));
    ig_tensor *xp = ig_permute(nhwc, (const int[]){0, 3, 1, 2});
    cr_assert(!ig_tensor_is_contiguous(xp));
    y = ig_module_forward(m, xp);
    for (int i = 0; i < N * O * Ho * Wo; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-4, "%d", i);
    /* A wrong channel count is a named error. */
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(1, 3, 5, 5), IG_F32)) == NULL, "ig_conv2d");
    ig_scope_end(s);
    free(want);
    free(xv);
    free(w);
    free(b);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_ops, batchnorm2d_train_eval_running_stats) {
    ig_manual_seed(112);
    const int N = 2, C = 3, H = 3, W = 4, L = H * W;
    const double eps = 1e-5;
    ig_module *m = ig_nn_batchnorm2d(C);
    const double wv[3] = {1.5, -0.5, 2.0}, bv[3] = {0.25, 1.0, -0.75};
    const double rm0[3] = {0.5, -1.0, 2.0}, rv0[3] = {2.0, 0.5, 1.0};
    set_values(ig_module_get(m, "weight"), wv);
    set_values(ig_module_get(m, "bias"), bv);
    set_values(ig_module_get(m, "running_mean"), rm0);
    set_values(ig_module_get(m, "running_var"), rv0);
    ig_tensor *nbt = ig_module_get(m, "num_batches_tracked");
    cr_assert_eq(ig_tensor_get(nbt, 0), 0);

    ig_scope *s = ig_scope_begin();
    /* Channels with different means and spreads. */
    ig_tensor *x = ig_add(ig_mul(ig_randn(IG_DIMS(N, C, H, W), IG_F32), ig_scalar(2.0, IG_F32)),
                          ig_scalar(1.0, IG_F32));
    double *xv = values(x);
    double mean[3], var[3];
    channel_stats(xv, N, C, L, mean, var);

    /* Train: the batch's mean and biased variance normalise; the output has per-channel
     * mean b and std |w| (up to eps). */
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(N, C, H, W));
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int l = 0; l < L; l++) {
                int i = (n * C + c) * L + l;
                double want = (xv[i] - mean[c]) / sqrt(var[c] + eps) * wv[c] + bv[c];
                cr_assert_float_eq(ig_tensor_get(y, i), want, 1e-4, "%d", i);
            }
    cr_assert_eq(ig_tensor_get(nbt, 0), 1);
    /* Running stats: 0.9 * old + 0.1 * batch, the variance unbiased (n / (n - 1)). */
    int cnt = N * L;
    for (int c = 0; c < C; c++) {
        double rm = 0.9 * rm0[c] + 0.1 * mean[c];
        double rv = 0.9 * rv0[c] + 0.1 * var[c] * cnt / (cnt - 1);
        cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "running_mean"), c), rm, 1e-5, "mean %d", c);
        cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "running_var"), c), rv, 1e-5, "var %d", c);
    }
    ig_module_forward(m, x);
    cr_assert_eq(ig_tensor_get(nbt, 0), 2);

    /* Eval: the running stats, set by hand, normalise; nothing is updated or counted. */
    const double rme[3] = {0.1, -0.3, 1.2}, rve[3] = {0.8, 1.7, 0.25};
    set_values(ig_module_get(m, "running_mean"), rme);
    set_values(ig_module_get(m, "running_var"), rve);
    ig_module_train(m, false);
    y = ig_module_forward(m, x);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int l = 0; l < L; l++) {
                int i = (n * C + c) * L + l;
                double want = (xv[i] - rme[c]) / sqrt(rve[c] + eps) * wv[c] + bv[c];
                cr_assert_float_eq(ig_tensor_get(y, i), want, 1e-4, "%d", i);
            }
    cr_assert_eq(ig_tensor_get(nbt, 0), 2, "eval does not count batches");
    for (int c = 0; c < C; c++) {
        cr_assert_eq(ig_tensor_get(ig_module_get(m, "running_mean"), c), (float)rme[c]);
        cr_assert_eq(ig_tensor_get(ig_module_get(m, "running_var"), c), (float)rve[c]);
    }
    /* Train mode with one value per channel is an error (as torch), counted as no batch. */
    ig_module_train(m, true);
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(1, C, 1, 1), IG_F32)) == NULL, "ig_batch_norm");
    cr_assert_eq(ig_tensor_get(nbt, 0), 2);
    cr_assert_eq(ig_tensor_get(ig_module_get(m, "running_var"), 0), (float)rve[0], "stats untouched");
    ig_module_train(m, false);
    /* Eval works on a single image (train needs more than one value per channel in torch;
     * eval never does). */
    y = ig_module_forward(m, ig_narrow(x, 0, 1, 1));
    assert_shape(y, IG_DIMS(1, C, H, W));
    cr_assert_float_eq(ig_tensor_get(y, 0), (xv[C * L] - rme[0]) / sqrt(rve[0] + eps) * wv[0] + bv[0], 1e-4);
    ig_scope_end(s);
    free(xv);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_ops, batchnorm1d_train_and_eval_matches_loops) {
    ig_manual_seed(113);
    const double eps = 1e-5;
    const double wv[2] = {0.75, -1.25}, bv[2] = {0.5, 0.1}, rmv[2] = {0.2, -0.4}, rvv[2] = {1.3, 0.6};
    /* [N,C] (L = 1) and [N,C,L]. */
    for (int k = 0; k < 2; k++) {
        int N = k ? 2 : 5, C = 2, L = k ? 3 : 1;
        ig_module *m = ig_nn_batchnorm1d(C);
        set_values(ig_module_get(m, "weight"), wv);
        set_values(ig_module_get(m, "bias"), bv);
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = k ? ig_randn(IG_DIMS(N, C, L), IG_F32) : ig_randn(IG_DIMS(N, C), IG_F32);
        double *xv = values(x);
        double mean[2], var[2];
        channel_stats(xv, N, C, L, mean, var);
        ig_tensor *y = ig_module_forward(m, x);
        for (int i = 0; i < N * C * L; i++) {
            int c = (i / L) % C;
            cr_assert_float_eq(ig_tensor_get(y, i), (xv[i] - mean[c]) / sqrt(var[c] + eps) * wv[c] + bv[c], 1e-4,
                               "%d", i);
        }
        int cnt = N * L;
        for (int c = 0; c < C; c++) {
            cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "running_mean"), c), 0.1 * mean[c], 1e-5);
            cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "running_var"), c),
                               0.9 + 0.1 * var[c] * cnt / (cnt - 1), 1e-5);
        }
        cr_assert_eq(ig_tensor_get(ig_module_get(m, "num_batches_tracked"), 0), 1);
        set_values(ig_module_get(m, "running_mean"), rmv);
        set_values(ig_module_get(m, "running_var"), rvv);
        ig_module_train(m, false);
        y = ig_module_forward(m, x);
        for (int i = 0; i < N * C * L; i++) {
            int c = (i / L) % C;
            cr_assert_float_eq(ig_tensor_get(y, i), (xv[i] - rmv[c]) / sqrt(rvv[c] + eps) * wv[c] + bv[c], 1e-4,
                               "%d", i);
        }
        cr_assert_eq(ig_tensor_get(ig_module_get(m, "num_batches_tracked"), 0), 1);
        ig_scope_end(s);
        free(xv);
        ig_module_free(m);
    }
    assert_no_live_bytes();
}

Test(nn_ops, layernorm_forward_matches_loops) {
    ig_manual_seed(114);
    const double eps = 1e-5;
    ig_module *m = ig_nn_layernorm(2, (const int64_t[]){3, 4}, eps);
    double wv[12], bv[12];
    for (int i = 0; i < 12; i++) {
        wv[i] = 0.5 + 0.1 * i;
        bv[i] = 0.3 - 0.05 * i;
    }
    set_values(ig_module_get(m, "weight"), wv);
    set_values(ig_module_get(m, "bias"), bv);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(2, 2, 3, 4), IG_F32);
    double *xv = values(x);
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(2, 2, 3, 4));
    /* Each of the 4 leading rows is normalised over its 12 trailing elements (biased
     * variance), then scaled and shifted element-wise. */
    for (int r = 0; r < 4; r++) {
        double mu = 0, var = 0;
        for (int i = 0; i < 12; i++) mu += xv[r * 12 + i];
        mu /= 12;
        for (int i = 0; i < 12; i++) var += (xv[r * 12 + i] - mu) * (xv[r * 12 + i] - mu);
        var /= 12;
        for (int i = 0; i < 12; i++) {
            double want = (xv[r * 12 + i] - mu) / sqrt(var + eps) * wv[i] + bv[i];
            cr_assert_float_eq(ig_tensor_get(y, r * 12 + i), want, 1e-4, "row %d el %d", r, i);
        }
    }
    /* A non-contiguous input gives the same rows. */
    ig_tensor *xt = ig_transpose(ig_contiguous(ig_transpose(x, 0, 1)), 0, 1);
    cr_assert(!ig_tensor_is_contiguous(xt));
    ig_tensor *yc = ig_module_forward(m, x);
    y = ig_module_forward(m, xt);
    for (int i = 0; i < 48; i++) cr_assert_float_eq(ig_tensor_get(y, i), ig_tensor_get(yc, i), 1e-6);
    /* Training and eval give the same (no batch statistics). */
    ig_module_train(m, false);
    cr_assert_float_eq(ig_tensor_get(ig_module_forward(m, x), 5), ig_tensor_get(y, 5), 1e-6);
    /* A trailing shape that does not match is a named error. */
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(2, 4, 3), IG_F32)) == NULL, "ig_layer_norm");
    ig_scope_end(s);
    free(xv);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn_ops, embedding_forward_picks_rows) {
    ig_manual_seed(115);
    ig_module *m = ig_nn_embedding(6, 4);
    double *w = values(ig_module_get(m, "weight"));
    ig_scope *s = ig_scope_begin();
    int64_t idx[6] = {5, 0, 2, 2, 4, 1};
    ig_tensor *y = ig_module_forward(m, ig_from_data(IG_DIMS(2, 3), IG_I64, idx));
    assert_shape(y, IG_DIMS(2, 3, 4));
    for (int i = 0; i < 6; i++)
        for (int d = 0; d < 4; d++) cr_assert_eq(ig_tensor_get(y, i * 4 + d), (float)w[idx[i] * 4 + d], "%d %d", i, d);
    /* int32 indices, a 0-dim index, an empty index. */
    int32_t idx32[3] = {3, 3, 0};
    y = ig_module_forward(m, ig_from_data(IG_DIMS(3), IG_I32, idx32));
    assert_shape(y, IG_DIMS(3, 4));
    cr_assert_eq(ig_tensor_get(y, 4 + 1), (float)w[3 * 4 + 1]);
    y = ig_module_forward(m, ig_scalar(4, IG_I64));
    assert_shape(y, IG_DIMS(4));
    cr_assert_eq(ig_tensor_get(y, 2), (float)w[4 * 4 + 2]);
    y = ig_module_forward(m, ig_zeros(IG_DIMS(0), IG_I64));
    assert_shape(y, IG_DIMS(0, 4));
    /* Out-of-range and float indices are named errors. */
    EXPECT_ERR(ig_module_forward(m, ig_from_data(IG_DIMS(1), IG_I64, (const int64_t[]){6})) == NULL, "ig_embedding");
    EXPECT_ERR(ig_module_forward(m, ig_from_data(IG_DIMS(1), IG_I64, (const int64_t[]){-1})) == NULL, "ig_embedding");
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(2), IG_F32)) == NULL, "ig_embedding");
    ig_scope_end(s);
    free(w);
    ig_module_free(m);
    assert_no_live_bytes();
}

/* Max (or average) pooling by loops: windows start at o*stride - pad; max treats padding as
 * -inf; avg divides by the window clipped to the padded input (count_include_pad). */
static void pool_ref(const double *x, int NC, int H, int W, const ig_pool2d_params *p, bool max, double *y,
                     int Ho, int Wo) {
    int sh = p->stride[0] ? p->stride[0] : p->kernel[0], sw = p->stride[1] ? p->stride[1] : p->kernel[1];
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                int r0 = i * sh - p->padding[0], c0 = j * sw - p->padding[1];
                double acc = max ? -INFINITY : 0;
                int r1 = r0 + p->kernel[0], c1 = c0 + p->kernel[1];
                int pr1 = r1 < H + p->padding[0] ? r1 : H + p->padding[0];
                int pc1 = c1 < W + p->padding[1] ? c1 : W + p->padding[1];
                int count = (pr1 - r0) * (pc1 - c0);
                for (int r = r0; r < r1; r++)
                    for (int q = c0; q < c1; q++) {
                        if (r < 0 || r >= H || q < 0 || q >= W) continue;
                        double v = x[(c * H + r) * W + q];
                        if (max) acc = v > acc ? v : acc;
                        else acc += v;
                    }
                y[(c * Ho + i) * Wo + j] = max ? acc : acc / count;
            }
}

Test(nn_ops, pool_forwards_match_loops) {
    ig_manual_seed(116);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(2, 3, 5, 6), IG_F32);
    double *xv = values(x);
    struct {
        ig_pool2d_params p;
        int ho, wo;
    } cases[] = {
        {{.kernel = {2, 2}}, 2, 3},
        {{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}, 3, 3},
        {{.kernel = {3, 2}, .stride = {1, 2}, .padding = {1, 1}}, 5, 4},
    };
    double want[2 * 3 * 5 * 4];
    for (int k = 0; k < 3; k++)
        for (int max = 1; max >= 0; max--) {
            ig_module *m = max ? ig_nn_maxpool2d(&cases[k].p) : ig_nn_avgpool2d(&cases[k].p);
            ig_tensor *y = ig_module_forward(m, x);
            assert_shape(y, IG_DIMS(2, 3, cases[k].ho, cases[k].wo));
            pool_ref(xv, 6, 5, 6, &cases[k].p, max, want, cases[k].ho, cases[k].wo);
            for (int i = 0; i < 6 * cases[k].ho * cases[k].wo; i++)
                cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-5, "%s case %d at %d", ig_module_type(m), k, i);
            ig_module_free(m);
        }
    /* Adaptive average to 2x4 on 5x6: bins [floor(i*in/out), ceil((i+1)*in/out)). */
    ig_module *m = ig_nn_adaptive_avgpool2d(2, 4);
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(2, 3, 2, 4));
    for (int c = 0; c < 6; c++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++) {
                int r0 = i * 5 / 2, r1 = ((i + 1) * 5 + 1) / 2, c0 = j * 6 / 4, c1 = ((j + 1) * 6 + 3) / 4;
                double acc = 0;
                for (int r = r0; r < r1; r++)
                    for (int q = c0; q < c1; q++) acc += xv[(c * 5 + r) * 6 + q];
                cr_assert_float_eq(ig_tensor_get(y, (c * 2 + i) * 4 + j), acc / ((r1 - r0) * (c1 - c0)), 1e-5);
            }
    ig_module_free(m);
    /* A padding whose double overflows an int is refused, not undefined behaviour; half the
     * kernel is the most allowed (2 for 5, 1 for 3). */
    EXPECT_ERR(ig_nn_maxpool2d(&(ig_pool2d_params){.kernel = {2, 2}, .padding = {INT_MAX, 0}}) == NULL,
               "ig_nn_maxpool2d");
    EXPECT_ERR(ig_nn_avgpool2d(&(ig_pool2d_params){.kernel = {3, 3}, .padding = {0, INT_MAX / 2 + 1}}) == NULL,
               "ig_nn_avgpool2d");
    EXPECT_ERR(ig_nn_avgpool2d(&(ig_pool2d_params){.kernel = {5, 3}, .padding = {3, 1}}) == NULL, "ig_nn_avgpool2d");
    m = ig_nn_avgpool2d(&(ig_pool2d_params){.kernel = {5, 3}, .padding = {2, 1}});
    cr_assert_not_null(m, "%s", ig_last_error());
    ig_module_free(m);
    /* Pools take [N,C,H,W] or one [C,H,W] image: a 2-D input is a named error. */
    m = ig_nn_maxpool2d(&cases[0].p);
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(4, 4), IG_F32)) == NULL, "ig_max_pool2d");
    ig_module_free(m);
    ig_scope_end(s);
    free(xv);
    assert_no_live_bytes();
}
