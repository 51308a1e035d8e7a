/*
 * tests/nn/test_layers.c — the layers of nn.h as modules: parameter names, shapes and
 * default initialisation, forward values against plain C loops (Linear, Sequential,
 * activations, Flatten, Dropout in eval), gradcheck in f64 through a module, forwards with
 * no scope open (nothing may leak), constructor validation and ownership.
 *
 * Forward values and gradchecks of Conv2d, pooling, BatchNorm, LayerNorm, Dropout in
 * training, Embedding and the residual block as modules are in test_layers_ops.c; here only
 * the module side of those layers (names, shapes, init, errors) is checked.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static void set_values(ig_tensor *t, const float *v) {
    memcpy(ig_tensor_data(t), v, sizeof(float) * (size_t)ig_tensor_numel(t));
}

/* ---- Linear ---------------------------------------------------------------------------- */

Test(nn, linear_parameters_and_default_init) {
    ig_manual_seed(11);
    ig_module *m = ig_nn_linear(100, 50, true);
    cr_assert_str_eq(ig_module_type(m), "Linear");
    ig_named_tensor sd[2];
    cr_assert_eq(ig_module_state_dict(m, sd, 2), 2);
    cr_assert_str_eq(sd[0].name, "weight");
    cr_assert_str_eq(sd[1].name, "bias");
    assert_shape(sd[0].tensor, IG_DIMS(50, 100));
    assert_shape(sd[1].tensor, IG_DIMS(50));
    /* kaiming_uniform(a=sqrt(5)) with fan_in 100: U(-0.1, 0.1); the bias the same bound. */
    double bound = 1.0 / sqrt(100.0), sum = 0, sq = 0, mx = 0;
    for (int i = 0; i < 5000; i++) {
        double v = ig_tensor_get(sd[0].tensor, i);
        cr_assert(fabs(v) <= bound, "%g", v);
        mx = fmax(mx, fabs(v));
        sum += v;
        sq += v * v;
    }
    cr_assert(mx > 0.99 * bound);
    cr_assert(fabs(sum / 5000) < 0.005);
    cr_assert(fabs(sq / 5000 / (bound * bound / 3) - 1) < 0.1, "variance %g", sq / 5000);
    for (int i = 0; i < 50; i++) cr_assert(fabs(ig_tensor_get(sd[1].tensor, i)) <= bound);
    cr_assert_neq(ig_tensor_get(sd[1].tensor, 0), ig_tensor_get(sd[1].tensor, 1));
    ig_module_free(m);
    /* Without bias: only the weight. */
    m = ig_nn_linear(3, 2, false);
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 1);
    cr_assert_null(ig_module_get(m, "bias"));
    ig_module_free(m);
    /* Same seed, same weights. */
    ig_manual_seed(5);
    ig_module *a = ig_nn_linear(4, 3, true);
    ig_manual_seed(5);
    ig_module *b = ig_nn_linear(4, 3, true);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(ig_tensor_get(ig_module_get(a, "weight"), i), ig_tensor_get(ig_module_get(b, "weight"), i));
    ig_module_free(a);
    ig_module_free(b);
}

/* y[n][o] = sum_i x[n][i] w[o][i] + b[o] by loops. */
static void linear_ref(const float *x, int64_t n, const float *w, const float *b, int64_t in, int64_t out,
                       double *y) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b ? b[o] : 0;
            for (int64_t i = 0; i < in; i++) acc += (double)x[r * in + i] * w[o * in + i];
            y[r * out + o] = acc;
        }
}

Test(nn, linear_forward_matches_hand_matmul) {
    ig_module *m = ig_nn_linear(3, 2, true);
    float w[6] = {0.5f, -1, 2, 1.5f, 0.25f, -0.75f}, b[2] = {0.1f, -0.2f};
    set_values(ig_module_get(m, "weight"), w);
    set_values(ig_module_get(m, "bias"), b);
    ig_scope *s = ig_scope_begin();
    float xv[12] = {1, 2, 3, -1, 0, 4, 0.5f, 0.5f, -2, 3, -3, 1};
    double want[8];
    linear_ref(xv, 4, w, b, 3, 2, want);
    /* Hand check of one entry: row 0: 0.5 - 2 + 6 + 0.1 = 4.6. */
    cr_assert_float_eq(want[0], 4.6, 1e-6);
    ig_tensor *x = ig_from_data(IG_DIMS(4, 3), IG_F32, xv);
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(4, 2));
    for (int i = 0; i < 8; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-5, "%d", i);
    /* The same rows through a transposed (non-contiguous) input. */
    float xt[12];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++) xt[c * 4 + r] = xv[r * 3 + c];
    ig_tensor *xtv = ig_transpose(ig_from_data(IG_DIMS(3, 4), IG_F32, xt), 0, 1);
    cr_assert(!ig_tensor_is_contiguous(xtv));
    y = ig_module_forward(m, xtv);
    for (int i = 0; i < 8; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-5, "%d", i);
    /* Leading batch dims [2,2,3] -> [2,2,2], and a 1-D input [3] -> [2]. */
    y = ig_module_forward(m, ig_view(x, IG_DIMS(2, 2, 3)));
    assert_shape(y, IG_DIMS(2, 2, 2));
    for (int i = 0; i < 8; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-5, "%d", i);
    y = ig_module_forward(m, ig_select(x, 0, 1));
    assert_shape(y, IG_DIMS(2));
    cr_assert_float_eq(ig_tensor_get(y, 1), want[3], 1e-5);
    /* Zero rows. */
    y = ig_module_forward(m, ig_zeros(IG_DIMS(0, 3), IG_F32));
    assert_shape(y, IG_DIMS(0, 2));
    /* Wrong feature count: named error. */
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(4, 5), IG_F32)) == NULL, "ig_module_forward");
    cr_assert(strstr(ig_last_error(), "Linear") && strstr(ig_last_error(), "[4,5]"), "%s", ig_last_error());
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

static ig_tensor *module_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return ig_module_forward(ctx, in[0]);
}

Test(nn, linear_and_sequential_gradcheck_f64) {
    ig_manual_seed(12);
    ig_module *lin = ig_nn_linear(4, 3, true);
    cr_assert_eq(ig_module_to_dtype(lin, IG_F64), IG_OK, "%s", ig_last_error());
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(2, 4), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *in[3] = {x, ig_module_get(lin, "weight"), ig_module_get(lin, "bias")};
    cr_assert_eq(ig_gradcheck(module_fn, in, 3, lin, NULL), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
    ig_module_free(lin);

    /* Linear -> Tanh -> Linear -> Sigmoid (smooth, no kinks). */
    ig_module *l[4];
    l[0] = ig_nn_linear(3, 5, true);
    l[1] = ig_nn_tanh();
    l[2] = ig_nn_linear(5, 2, true);
    l[3] = ig_nn_sigmoid();
    ig_module *seq = ig_nn_sequential(4, l);
    cr_assert_eq(ig_module_to_dtype(seq, IG_F64), IG_OK);
    s = ig_scope_begin();
    x = ig_randn(IG_DIMS(3, 3), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *in2[3] = {x, ig_module_get(seq, "0.weight"), ig_module_get(seq, "2.bias")};
    cr_assert_eq(ig_gradcheck(module_fn, in2, 3, seq, NULL), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
    ig_module_free(seq);
    assert_no_live_bytes();
}

/* ---- Sequential ---------------------------------------------------------------------------- */

Test(nn, sequential_linear_relu_matches_loops) {
    ig_module *l[3];
    l[0] = ig_nn_linear(3, 4, true);
    l[1] = ig_nn_relu();
    l[2] = ig_nn_linear(4, 2, true);
    ig_module *m = ig_nn_sequential(3, l);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_str_eq(ig_module_type(m), "Sequential");
    cr_assert_eq(ig_module_num_children(m), 3);
    cr_assert_str_eq(ig_module_type(ig_module_child(m, "1")), "ReLU");
    float w0[12] = {1, -1, 0.5f, 0, 2, 1, -1, 1, 1, 1, 1, 1}, b0[4] = {0, -1, 0.5f, -10};
    float w1[8] = {1, 2, 3, 4, -1, 0.5f, 0, 2}, b1[2] = {0.25f, -0.25f};
    set_values(ig_module_get(m, "0.weight"), w0);
    set_values(ig_module_get(m, "0.bias"), b0);
    set_values(ig_module_get(m, "2.weight"), w1);
    set_values(ig_module_get(m, "2.bias"), b1);
    float xv[6] = {1, 2, 3, -2, 0.5f, 1};
    double h[8], want[4];
    linear_ref(xv, 2, w0, b0, 3, 4, h);
    float hr[8];
    int clipped = 0;
    for (int i = 0; i < 8; i++) {
        hr[i] = (float)(h[i] > 0 ? h[i] : 0);
        clipped += h[i] < 0;
    }
    cr_assert(clipped >= 2, "the data exercises the ReLU");
    linear_ref(hr, 2, w1, b1, 4, 2, want);
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = ig_module_forward(m, ig_from_data(IG_DIMS(2, 3), IG_F32, xv));
    assert_shape(y, IG_DIMS(2, 2));
    for (int i = 0; i < 4; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-4, "%d", i);
    ig_scope_end(s);
    /* Append names the next child by its index. */
    cr_assert_eq(ig_nn_sequential_append(m, ig_nn_sigmoid()), IG_OK);
    cr_assert_str_eq(ig_module_type(ig_module_child(m, "3")), "Sigmoid");
    ig_module_free(m);
    /* An empty Sequential is the identity. */
    m = ig_nn_sequential(0, NULL);
    s = ig_scope_begin();
    ig_tensor *x = ig_arange(0, 4, 1, IG_F32);
    y = ig_module_forward(m, x);
    cr_assert_eq(ig_tensor_get(y, 3), 3.0);
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, forward_without_scope_frees_intermediates) {
    /* With no scope open every tensor is a heap tensor: the forward must not leak its
     * intermediates (sanitizer run) and freeing the output frees the graph. */
    ig_manual_seed(13);
    ig_module *l[4];
    l[0] = ig_nn_flatten(1, -1);
    l[1] = ig_nn_linear(6, 4, true);
    l[2] = ig_nn_relu();
    l[3] = ig_nn_linear(4, 2, true);
    ig_module *m = ig_nn_sequential(4, l);
    ig_module *d = ig_nn_dropout(0.5);
    ig_module_train(d, false);
    cr_assert_eq(ig_nn_sequential_append(m, d), IG_OK);
    ig_tensor *x = ig_randn(IG_DIMS(5, 2, 3), IG_F32);
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(5, 2));
    ig_tensor *loss = ig_sum(y, 0, NULL, false);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    cr_assert_not_null(ig_grad(ig_module_get(m, "1.weight")));
    ig_tensor_free(loss);
    ig_tensor_free(y);
    ig_tensor_free(x);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, sequential_null_child_fails_without_leaking) {
    /* The failing constructor's message is kept; the other children are freed. */
    ig_module *l[3];
    ig_clear_error();
    l[0] = ig_nn_linear(3, 4, true);
    l[1] = ig_nn_linear(0, 4, true); /* fails */
    l[2] = ig_nn_relu();
    cr_assert_null(l[1]);
    cr_assert_null(ig_nn_sequential(3, l));
    cr_assert(strstr(ig_last_error(), "ig_nn_linear"), "%s", ig_last_error());
    /* With no earlier failure the message names ig_nn_sequential and the child. */
    ig_clear_error();
    l[0] = ig_nn_relu();
    l[1] = NULL;
    l[2] = ig_nn_linear(2, 2, true);
    cr_assert_null(ig_nn_sequential(3, l));
    cr_assert(strstr(ig_last_error(), "ig_nn_sequential") && strstr(ig_last_error(), "children[1]"), "%s",
              ig_last_error());
    EXPECT_ERR(ig_nn_sequential(-1, NULL) == NULL, "ig_nn_sequential");
    EXPECT_ERR(ig_nn_sequential(2, NULL) == NULL, "ig_nn_sequential");
    /* Nested constructors: a failure deep inside propagates without leaks. */
    ig_clear_error();
    ig_module *inner[2];
    inner[0] = ig_nn_relu();
    inner[1] = ig_nn_conv2d(3, 4, 3, 3, &(ig_conv2d_params){.groups = 2}, true); /* 3 % 2 != 0 */
    ig_module *outer[2];
    outer[0] = ig_nn_sequential(2, inner);
    outer[1] = ig_nn_tanh();
    cr_assert_null(ig_nn_sequential(2, outer));
    cr_assert(strstr(ig_last_error(), "ig_nn_conv2d"), "%s", ig_last_error());
    /* Append: ownership passes even on failure. */
    ig_module *notseq = ig_nn_relu();
    EXPECT_ERR(ig_nn_sequential_append(notseq, ig_nn_tanh()) == IG_ERR_ARG, "ig_nn_sequential_append");
    EXPECT_ERR(ig_nn_sequential_append(NULL, ig_nn_tanh()) == IG_ERR_ARG, "ig_nn_sequential_append");
    ig_module *seq = ig_nn_sequential(0, NULL);
    EXPECT_ERR(ig_nn_sequential_append(seq, NULL) == IG_ERR_ARG, "ig_nn_sequential_append");
    cr_assert_eq(ig_module_num_children(seq), 0);
    ig_module_free(seq);
    ig_module_free(notseq);
    assert_no_live_bytes();
}

/* ---- Conv2d ------------------------------------------------------------------------------- */

Test(nn, conv2d_parameters_and_default_init) {
    ig_manual_seed(14);
    ig_conv2d_params p = {.stride = {2, 1}, .padding = {1, 0}, .groups = 2};
    ig_module *m = ig_nn_conv2d(4, 6, 3, 2, &p, true);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_str_eq(ig_module_type(m), "Conv2d");
    ig_tensor *w = ig_module_get(m, "weight"), *b = ig_module_get(m, "bias");
    assert_shape(w, IG_DIMS(6, 2, 3, 2)); /* [out, in/groups, kh, kw] */
    assert_shape(b, IG_DIMS(6));
    double bound = 1.0 / sqrt(2.0 * 3 * 2), mx = 0; /* fan_in = in/groups * kh * kw = 12 */
    for (int i = 0; i < 72; i++) {
        double v = ig_tensor_get(w, i);
        cr_assert(fabs(v) <= bound);
        mx = fmax(mx, fabs(v));
    }
    cr_assert(mx > 0.8 * bound);
    for (int i = 0; i < 6; i++) cr_assert(fabs(ig_tensor_get(b, i)) <= bound);
    ig_module_free(m);
    m = ig_nn_conv2d(3, 8, 1, 1, NULL, false);
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 1);
    assert_shape(ig_module_get(m, "weight"), IG_DIMS(8, 3, 1, 1));
    ig_module_free(m);
    EXPECT_ERR(ig_nn_conv2d(3, 6, 3, 3, &(ig_conv2d_params){.groups = 2}, true) == NULL, "ig_nn_conv2d");
    EXPECT_ERR(ig_nn_conv2d(4, 6, 3, 3, &(ig_conv2d_params){.padding = {-1, 0}}, true) == NULL, "ig_nn_conv2d");
    EXPECT_ERR(ig_nn_conv2d(4, 6, 0, 3, NULL, true) == NULL, "ig_nn_conv2d");
    EXPECT_ERR(ig_nn_conv2d(0, 6, 3, 3, NULL, true) == NULL, "ig_nn_conv2d");
    EXPECT_ERR(ig_nn_conv2d(4, 6, 3, 3, &(ig_conv2d_params){.groups = -1}, true) == NULL, "ig_nn_conv2d");
}

/* ---- normalisation ----------------------------------------------------------------------- */

Test(nn, batchnorm_parameters_buffers_and_input_checks) {
    ig_module *m = ig_nn_batchnorm2d(3);
    cr_assert_str_eq(ig_module_type(m), "BatchNorm2d");
    static const char *names[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    static const double fill[] = {1, 0, 0, 1, 0};
    ig_named_tensor sd[5];
    cr_assert_eq(ig_module_state_dict(m, sd, 5), 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(sd[i].name, names[i]);
        for (int64_t j = 0; j < ig_tensor_numel(sd[i].tensor); j++)
            cr_assert_eq(ig_tensor_get(sd[i].tensor, j), fill[i], "%s", names[i]);
    }
    assert_shape(sd[2].tensor, IG_DIMS(3));
    cr_assert_eq(ig_tensor_ndim(sd[4].tensor), 0);
    cr_assert_eq(ig_tensor_dtype(sd[4].tensor), IG_I64);
    cr_assert_eq(ig_module_num_params(m), 6);
    cr_assert_eq(ig_module_named_parameters(m, NULL, 0), 2);
    ig_scope *s = ig_scope_begin();
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(2, 3), IG_F32)) == NULL, "ig_module_forward");
    cr_assert(strstr(ig_last_error(), "BatchNorm2d") && strstr(ig_last_error(), "4-D"), "%s", ig_last_error());
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(2, 4, 5, 5), IG_F32)) == NULL, "ig_module_forward");
    cr_assert(strstr(ig_last_error(), "3 channels"), "%s", ig_last_error());
    ig_scope_end(s);
    cr_assert_eq(ig_tensor_get(sd[4].tensor, 0), 0, "a failed forward does not count a batch");
    ig_module_free(m);

    m = ig_nn_batchnorm1d(4);
    cr_assert_str_eq(ig_module_type(m), "BatchNorm1d");
    s = ig_scope_begin();
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(2, 4, 1, 1), IG_F32)) == NULL, "ig_module_forward");
    cr_assert(strstr(ig_last_error(), "BatchNorm1d"), "%s", ig_last_error());
    ig_scope_end(s);
    ig_module_free(m);
    EXPECT_ERR(ig_nn_batchnorm2d(0) == NULL, "ig_nn_batchnorm2d");
    EXPECT_ERR(ig_nn_batchnorm1d(-3) == NULL, "ig_nn_batchnorm1d");
    assert_no_live_bytes();
}

Test(nn, layernorm_parameters_and_errors) {
    ig_module *m = ig_nn_layernorm(2, (const int64_t[]){3, 4}, 1e-5);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_str_eq(ig_module_type(m), "LayerNorm");
    ig_tensor *w = ig_module_get(m, "weight"), *b = ig_module_get(m, "bias");
    assert_shape(w, IG_DIMS(3, 4));
    assert_shape(b, IG_DIMS(3, 4));
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(ig_tensor_get(w, i), 1.0);
        cr_assert_eq(ig_tensor_get(b, i), 0.0);
    }
    ig_module_free(m);
    EXPECT_ERR(ig_nn_layernorm(0, (const int64_t[]){3}, 1e-5) == NULL, "ig_nn_layernorm");
    EXPECT_ERR(ig_nn_layernorm(1, NULL, 1e-5) == NULL, "ig_nn_layernorm");
    EXPECT_ERR(ig_nn_layernorm(1, (const int64_t[]){0}, 1e-5) == NULL, "ig_nn_layernorm");
    EXPECT_ERR(ig_nn_layernorm(1, (const int64_t[]){3}, -1) == NULL, "ig_nn_layernorm");
}

/* ---- Dropout, Flatten, pooling, Embedding ------------------------------------------------- */

Test(nn, dropout_follows_the_module_mode) {
    ig_module *m = ig_nn_dropout(0.5);
    cr_assert_str_eq(ig_module_type(m), "Dropout");
    ig_module_train(m, false);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_arange(1, 7, 1, IG_F32);
    ig_tensor *y = ig_module_forward(m, x);
    for (int i = 0; i < 6; i++) cr_assert_eq(ig_tensor_get(y, i), i + 1.0);
    ig_scope_end(s);
    ig_module_free(m);
    /* p = 0 is the identity in training too. */
    m = ig_nn_dropout(0);
    s = ig_scope_begin();
    y = ig_module_forward(m, ig_ones(IG_DIMS(3), IG_F32));
    cr_assert_eq(ig_tensor_get(y, 2), 1.0);
    ig_scope_end(s);
    ig_module_free(m);
    EXPECT_ERR(ig_nn_dropout(-0.1) == NULL, "ig_nn_dropout");
    EXPECT_ERR(ig_nn_dropout(1.5) == NULL, "ig_nn_dropout");
    EXPECT_ERR(ig_nn_dropout(NAN) == NULL, "ig_nn_dropout");
}

Test(nn, flatten_module) {
    ig_module *m = ig_nn_flatten(1, -1);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_reshape(ig_arange(0, 24, 1, IG_F32), IG_DIMS(2, 3, 4));
    ig_tensor *y = ig_module_forward(m, x);
    assert_shape(y, IG_DIMS(2, 12));
    for (int i = 0; i < 24; i++) cr_assert_eq(ig_tensor_get(y, i), i);
    ig_scope_end(s);
    ig_module_free(m);
    m = ig_nn_flatten(0, 1);
    s = ig_scope_begin();
    y = ig_module_forward(m, ig_zeros(IG_DIMS(2, 3, 4), IG_F32));
    assert_shape(y, IG_DIMS(6, 4));
    EXPECT_ERR(ig_module_forward(m, ig_zeros(IG_DIMS(5), IG_F32)) == NULL, "ig_flatten");
    ig_scope_end(s);
    ig_module_free(m);
}

Test(nn, pooling_constructors) {
    ig_pool2d_params p = {.kernel = {2, 2}};
    ig_module *m = ig_nn_maxpool2d(&p);
    cr_assert_str_eq(ig_module_type(m), "MaxPool2d");
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 0);
    ig_module_free(m);
    m = ig_nn_avgpool2d(&(ig_pool2d_params){.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}});
    cr_assert_str_eq(ig_module_type(m), "AvgPool2d");
    ig_module_free(m);
    m = ig_nn_adaptive_avgpool2d(1, 1);
    cr_assert_str_eq(ig_module_type(m), "AdaptiveAvgPool2d");
    ig_module_free(m);
    EXPECT_ERR(ig_nn_maxpool2d(NULL) == NULL, "ig_nn_maxpool2d");
    EXPECT_ERR(ig_nn_maxpool2d(&(ig_pool2d_params){.kernel = {0, 2}}) == NULL, "ig_nn_maxpool2d");
    EXPECT_ERR(ig_nn_avgpool2d(&(ig_pool2d_params){.kernel = {2, 2}, .padding = {2, 0}}) == NULL,
               "ig_nn_avgpool2d");
    EXPECT_ERR(ig_nn_avgpool2d(&(ig_pool2d_params){.kernel = {2, 2}, .stride = {-1, 1}}) == NULL,
               "ig_nn_avgpool2d");
    EXPECT_ERR(ig_nn_adaptive_avgpool2d(0, 1) == NULL, "ig_nn_adaptive_avgpool2d");
}

Test(nn, embedding_parameters_normal_init) {
    ig_manual_seed(15);
    ig_module *m = ig_nn_embedding(1000, 64);
    cr_assert_str_eq(ig_module_type(m), "Embedding");
    ig_tensor *w = ig_module_get(m, "weight");
    assert_shape(w, IG_DIMS(1000, 64));
    double sum = 0, sq = 0;
    for (int i = 0; i < 64000; i++) {
        double v = ig_tensor_get(w, i);
        sum += v;
        sq += v * v;
    }
    double mean = sum / 64000, sd = sqrt(sq / 64000 - mean * mean);
    cr_assert(fabs(mean) < 0.02, "mean %g", mean);
    cr_assert(fabs(sd - 1) < 0.02, "std %g", sd);
    ig_module_free(m);
    EXPECT_ERR(ig_nn_embedding(0, 4) == NULL, "ig_nn_embedding");
    EXPECT_ERR(ig_nn_embedding(4, -1) == NULL, "ig_nn_embedding");
}

/* ---- activations ------------------------------------------------------------------------- */

Test(nn, activation_modules_match_formulas) {
    float xv[6] = {-2, -0.5f, 0.25f, 1, 3, -1.5f};
    ig_module *mods[7];
    mods[0] = ig_nn_relu();
    mods[1] = ig_nn_leaky_relu(0.2);
    mods[2] = ig_nn_gelu();
    mods[3] = ig_nn_silu();
    mods[4] = ig_nn_sigmoid();
    mods[5] = ig_nn_tanh();
    mods[6] = ig_nn_softmax(1);
    static const char *types[] = {"ReLU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax"};
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(2, 3), IG_F32, xv);
    for (int k = 0; k < 7; k++) {
        cr_assert_str_eq(ig_module_type(mods[k]), types[k]);
        ig_tensor *y = ig_module_forward(mods[k], x);
        assert_shape(y, IG_DIMS(2, 3));
        for (int i = 0; i < 6; i++) {
            double v = xv[i], want = 0;
            switch (k) {
            case 0: want = v > 0 ? v : 0; break;
            case 1: want = v > 0 ? v : 0.2 * v; break;
            case 2: want = 0.5 * v * (1 + erf(v / sqrt(2.0))); break;
            case 3: want = v / (1 + exp(-v)); break;
            case 4: want = 1 / (1 + exp(-v)); break;
            case 5: want = tanh(v); break;
            case 6: {
                int r = i / 3;
                double z = 0;
                for (int j = 0; j < 3; j++) z += exp(xv[r * 3 + j]);
                want = exp(v) / z;
                break;
            }
            }
            cr_assert_float_eq(ig_tensor_get(y, i), want, 1e-5, "%s at %d", types[k], i);
        }
    }
    ig_scope_end(s);
    for (int k = 0; k < 7; k++) ig_module_free(mods[k]);
    EXPECT_ERR(ig_nn_leaky_relu(INFINITY) == NULL, "ig_nn_leaky_relu");
    assert_no_live_bytes();
}

/* ---- residual block ------------------------------------------------------------------------ */

Test(nn, basic_block_structure) {
    ig_module *b = ig_nn_basic_block(16, 16, 1);
    cr_assert_not_null(b, "%s", ig_last_error());
    cr_assert_str_eq(ig_module_type(b), "BasicBlock");
    static const char *kids[] = {"c1", "b1", "c2", "b2"};
    cr_assert_eq(ig_module_num_children(b), 4);
    for (int i = 0; i < 4; i++) cr_assert_not_null(ig_module_child(b, kids[i]));
    cr_assert_null(ig_module_child(b, "sc"));
    cr_assert_null(ig_module_get(b, "c1.bias"), "convs have no bias");
    assert_shape(ig_module_get(b, "c2.weight"), IG_DIMS(16, 16, 3, 3));
    ig_module_free(b);
    /* Stride or width change: the shortcut is Sequential(1x1 conv, BN) named sc. */
    b = ig_nn_basic_block(16, 32, 2);
    ig_module *sc = ig_module_child(b, "sc");
    cr_assert_not_null(sc);
    cr_assert_str_eq(ig_module_type(sc), "Sequential");
    cr_assert_str_eq(ig_module_type(ig_module_child(sc, "0")), "Conv2d");
    cr_assert_str_eq(ig_module_type(ig_module_child(sc, "1")), "BatchNorm2d");
    assert_shape(ig_module_get(b, "sc.0.weight"), IG_DIMS(32, 16, 1, 1));
    assert_shape(ig_module_get(b, "c1.weight"), IG_DIMS(32, 16, 3, 3));
    ig_module_free(b);
    b = ig_nn_basic_block(8, 16, 1); /* width change alone also needs the shortcut */
    cr_assert_not_null(ig_module_child(b, "sc"));
    ig_module_free(b);
    EXPECT_ERR(ig_nn_basic_block(16, 16, 0) == NULL, "ig_nn_basic_block");
    EXPECT_ERR(ig_nn_basic_block(0, 16, 1) == NULL, "ig_nn_basic_block");
}
