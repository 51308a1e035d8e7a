/*
 * tests/core/test_bf16.c — the bfloat16 dtype: its conversions (hand-checked bit patterns),
 * storage in tensors, and ops on bf16 tensors, which compute in f32 and round each result
 * once (on the CPU through recorded f32 copies, core/ops/bf16.c). References are computed
 * here: the f32 op on the widened values, rounded by a bit-level routine of this file.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../core/tensor_impl.h"
#include "ignis.h"

/* Round to nearest, ties to even, on the bit pattern: written here, independently of core. */
static uint16_t ref_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    uint32_t lower = u & 0xffffu, upper = u >> 16;
    if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) upper++;
    return (uint16_t)upper;
}

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static float bf16_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* A bf16 tensor holding the bf16 roundings of vals. */
static ig_tensor *bf16_of(int ndim, const int64_t *shape, const float *vals) {
    ig_tensor *t = ig_empty(ndim, shape, IG_BF16);
    uint16_t *p = ig_tensor_data(t);
    for (int64_t i = 0; i < ig_tensor_numel(t); i++) p[i] = ref_bf16(vals[i]);
    return t;
}

/* Awkward values (need more than 8 significant bits), deterministic. */
static void fill_awkward(float *v, int64_t n, float base) {
    for (int64_t i = 0; i < n; i++) v[i] = base + 0.0123457f * (float)(i % 13) - 0.0311111f * (float)(i % 7);
}

static ig_tensor *bf16_awkward(int ndim, const int64_t *shape, float base) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float v[4096];
    cr_assert_leq(n, 4096);
    fill_awkward(v, n, base);
    return bf16_of(ndim, shape, v);
}

/* Asserts that bf16 tensor got holds exactly the bf16 roundings of f32 tensor want. */
static void expect_rounded(ig_tensor *got, ig_tensor *want, const char *what) {
    cr_assert_not_null(got, "%s: %s", what, ig_last_error());
    cr_assert_eq(ig_tensor_dtype(got), IG_BF16, "%s: dtype %s", what, ig_dtype_name(ig_tensor_dtype(got)));
    cr_assert_eq(ig_tensor_dtype(want), IG_F32);
    ig_tensor *g = ig_contiguous(got), *w = ig_contiguous(want);
    cr_assert_eq(ig_tensor_numel(g), ig_tensor_numel(w), "%s", what);
    const uint16_t *gp = ig_tensor_data(g);
    const float *wp = ig_tensor_data(w);
    for (int64_t i = 0; i < ig_tensor_numel(g); i++)
        cr_assert_eq(gp[i], ref_bf16(wp[i]), "%s[%lld]: 0x%04x, want 0x%04x (%g)", what, (long long)i, gp[i],
                     ref_bf16(wp[i]), (double)wp[i]);
}

Test(core, bf16_dtype_facts) {
    cr_expect_eq(ig_dtype_size(IG_BF16), 2);
    cr_expect_str_eq(ig_dtype_name(IG_BF16), "bfloat16");
    cr_expect(ig_dtype_is_float(IG_BF16));
}

Test(core, bf16_rounding_hand_values) {
    struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0x3f808000u, 0x3f80}, /* tie, even side down */
        {0x3f818000u, 0x3f82}, /* tie, even side up */
        {0x3f808001u, 0x3f81}, /* just above the tie */
        {0x3f807fffu, 0x3f80}, /* just below */
        {0xbf818000u, 0xbf82}, /* negative tie */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX rounds up to inf */
        {0x7f800000u, 0x7f80}, /* inf */
        {0xff800000u, 0xff80}, /* -inf */
        {0x80000000u, 0x8000}, /* -0 */
        {0x00010000u, 0x0001}, /* smallest bf16 subnormal */
        {0x00008000u, 0x0000}, /* half of it: tie to even (0) */
        {0x00018000u, 0x0002}, /* tie to even (2) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(igi_bf16_from_f32(bits_f32(cases[i].in)), cases[i].out, "0x%08x", cases[i].in);
        cr_expect_eq(ref_bf16(bits_f32(cases[i].in)), cases[i].out, "reference 0x%08x", cases[i].in);
    }
    uint16_t n = igi_bf16_from_f32(NAN);
    cr_expect(isnan(bf16_f32(n)), "NaN stays NaN");
    cr_expect(isnan(bf16_f32(igi_bf16_from_f32(bits_f32(0x7f800001u)))), "a NaN with only low payload bits stays NaN");
    cr_expect_eq(igi_bf16_to_f32(0x3f81), bits_f32(0x3f810000u));
    /* the same bits as autocast's f32 -> bf16 rounding */
    for (uint32_t u = 0x3f7f0000u; u < 0x3f820000u; u += 0x1111u)
        cr_expect_eq(bf16_f32(igi_bf16_from_f32(bits_f32(u))), igi_round_bf16(bits_f32(u)));
}

Test(core, bf16_tensors_convert_store_and_print) {
    ig_scope *s = ig_scope_begin();
    float v[6] = {1.0f, bits_f32(0x3f808000u), bits_f32(0x3f818000u), -2.5f, 1e30f, 3.0e-39f};
    ig_tensor *f = ig_from_data(IG_DIMS(2, 3), IG_F32, v);
    /* from a transposed view: the conversion walks strides */
    ig_tensor *b = ig_to_dtype(ig_transpose(f, 0, 1), IG_BF16);
    cr_assert_not_null(b, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(b), IG_BF16);
    const uint16_t *bp = ig_tensor_data(b);
    const int order[6] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++) cr_expect_eq(bp[i], ref_bf16(v[order[i]]), "element %d", i);
    /* ig_tensor_get reads the value exactly; back to f32 and f64 exactly */
    cr_expect_eq(ig_tensor_get(b, 2), (double)bf16_f32(ref_bf16(v[1])));
    ig_tensor *back = ig_to_dtype(b, IG_F64);
    for (int i = 0; i < 6; i++) cr_expect_eq(ig_tensor_get(back, i), (double)bf16_f32(ref_bf16(v[order[i]])));
    /* fill, zeros, full: through f32 */
    ig_tensor *z = ig_zeros(IG_DIMS(3), IG_BF16);
    cr_expect_eq(((uint16_t *)ig_tensor_data(z))[2], 0);
    ig_tensor *fl = ig_full(IG_DIMS(2), IG_BF16, 1.00390625 /* 1 + 2^-8: a tie */);
    cr_expect_eq(((uint16_t *)ig_tensor_data(fl))[1], 0x3f80);
    cr_assert_eq(ig_fill_(fl, -3.0), IG_OK);
    cr_expect_eq(((uint16_t *)ig_tensor_data(fl))[0], 0xc040);
    float out[6];
    cr_assert_eq(ig_tensor_to_buffer(b, IG_F32, out, 6), IG_OK);
    cr_expect_eq(out[1], -2.5f);
    /* integer <-> bf16 saturates as other float -> integer conversions */
    ig_tensor *i32 = ig_to_dtype(b, IG_I32);
    cr_expect_eq(ig_tensor_get(i32, 1), -2.0);
    cr_expect_eq(ig_tensor_get(i32, 3), 2147483647.0); /* 1e30 saturates */
    ig_scope_end(s);
}

Test(core, bf16_elementwise_ops_are_the_rounded_f32_ops) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = bf16_awkward(IG_DIMS(3, 4), 0.7f), *b = bf16_awkward(IG_DIMS(4), -0.3f);
    ig_tensor *af = ig_to_dtype(a, IG_F32), *bf = ig_to_dtype(b, IG_F32);
    /* broadcasting, and a transposed view */
    expect_rounded(ig_add(a, b), ig_add(af, bf), "add");
    expect_rounded(ig_sub(a, b), ig_sub(af, bf), "sub");
    expect_rounded(ig_mul(a, b), ig_mul(af, bf), "mul");
    expect_rounded(ig_div(a, b), ig_div(af, bf), "div");
    expect_rounded(ig_mul(ig_transpose(a, 0, 1), ig_transpose(a, 0, 1)), ig_mul(ig_transpose(af, 0, 1), ig_transpose(af, 0, 1)), "mul of views");
    expect_rounded(ig_relu(ig_sub(a, b)), ig_relu(ig_to_dtype(ig_sub(a, b), IG_F32)), "relu");
    expect_rounded(ig_exp(a), ig_exp(af), "exp");
    expect_rounded(ig_tanh(a), ig_tanh(af), "tanh");
    expect_rounded(ig_gelu(a), ig_gelu(af), "gelu");
    expect_rounded(ig_clamp(a, 0.5, 0.8), ig_clamp(af, 0.5, 0.8), "clamp");
    expect_rounded(ig_mul_scalar(a, 1.0 / 3.0), ig_mul_scalar(af, 1.0 / 3.0), "mul_scalar");
    expect_rounded(ig_add_scalar(a, 0.001), ig_add_scalar(af, 0.001), "add_scalar");
    /* comparisons give u8 masks */
    ig_tensor *gt = ig_gt(a, b);
    cr_assert_eq(ig_tensor_dtype(gt), IG_U8);
    ig_tensor *gtf = ig_gt(af, bf);
    for (int i = 0; i < 12; i++) cr_expect_eq(ig_tensor_get(gt, i), ig_tensor_get(gtf, i));
    /* where moves bf16 values */
    ig_tensor *w = ig_where(gt, a, ig_expand(b, IG_DIMS(3, 4)));
    cr_assert_eq(ig_tensor_dtype(w), IG_BF16);
    for (int i = 0; i < 12; i++)
        cr_expect_eq(ig_tensor_get(w, i), ig_tensor_get(gtf, i) ? ig_tensor_get(a, i) : ig_tensor_get(b, i % 4));
    /* torch's promotion: bf16 beside f32 computes in f32 */
    ig_tensor *mixed = ig_add(a, bf);
    cr_assert_not_null(mixed, "%s", ig_last_error());
    cr_expect_eq(ig_tensor_dtype(mixed), IG_F32);
    ig_tensor *mf = ig_add(af, bf);
    for (int i = 0; i < 12; i++) cr_expect_eq(ig_tensor_get(mixed, i), ig_tensor_get(mf, i));
    /* an integer beside bf16 is still a dtype error */
    cr_expect_null(ig_add(a, ig_zeros(IG_DIMS(4), IG_I64)));
    cr_expect(strstr(ig_last_error(), "ig_add") && strstr(ig_last_error(), "bfloat16"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, bf16_reductions_round_the_f32_result) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = bf16_awkward(IG_DIMS(5, 6), 1.3f), *af = ig_to_dtype(a, IG_F32);
    int d1[1] = {1}, d0[1] = {0};
    expect_rounded(ig_sum(a, 1, d1, false), ig_sum(af, 1, d1, false), "sum");
    expect_rounded(ig_mean(a, 1, d0, true), ig_mean(af, 1, d0, true), "mean");
    expect_rounded(ig_var(a, 1, d1, 1, false), ig_var(af, 1, d1, 1, false), "var");
    expect_rounded(ig_max(a, 1, d1, false), ig_max(af, 1, d1, false), "max");
    ig_tensor *am = ig_argmax(a, 1, false), *amf = ig_argmax(af, 1, false);
    cr_assert_eq(ig_tensor_dtype(am), IG_I64);
    for (int i = 0; i < 5; i++) cr_expect_eq(ig_tensor_get(am, i), ig_tensor_get(amf, i));
    ig_scope_end(s);
}

Test(core, bf16_gradients_are_bf16_and_computed_in_f32) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = bf16_awkward(IG_DIMS(3, 4), 0.2f), *b = bf16_awkward(IG_DIMS(4), 0.9f);
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    ig_tensor *y = ig_sum(ig_mul(ig_relu(a), b), 0, NULL, false);
    cr_assert_not_null(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(y), IG_BF16);
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
    ig_tensor *ga = ig_grad(a), *gb = ig_grad(b);
    cr_assert_eq(ig_tensor_dtype(ga), IG_BF16);
    cr_assert_eq(ig_tensor_dtype(gb), IG_BF16);
    /* d/da = b * (a > 0), exact in bf16; d/db = sum over rows of relu(a), rounded once per
     * op: each relu(a)*b product rounded... the sum's gradient is 1, so db = sum_i relu(a)[i,j] */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            double av = ig_tensor_get(a, i * 4 + j);
            cr_expect_eq(ig_tensor_get(ga, i * 4 + j), av > 0 ? ig_tensor_get(b, j) : 0.0, "da[%d,%d]", i, j);
        }
    for (int j = 0; j < 4; j++) {
        float acc = 0;
        for (int i = 0; i < 3; i++) acc += fmaxf((float)ig_tensor_get(a, i * 4 + j), 0.0f);
        cr_expect_eq(ig_tensor_get(gb, j), (double)bf16_f32(ref_bf16(acc)), "db[%d]", j);
    }
    /* a second backward accumulates into the bf16 gradient (rounded sum) */
    ig_tensor *y2 = ig_sum(ig_mul(ig_relu(a), b), 0, NULL, false);
    cr_assert_eq(ig_backward(y2, NULL), IG_OK, "%s", ig_last_error());
    for (int j = 0; j < 4; j++) cr_expect_eq(ig_tensor_get(ig_grad(a), j), 2 * ig_tensor_get(b, j) * (ig_tensor_get(a, j) > 0));
    ig_scope_end(s);
}

Test(core, bf16_nn_ops_are_the_rounded_f32_ops) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = bf16_awkward(IG_DIMS(2, 3, 6, 6), 0.1f), *xf = ig_to_dtype(x, IG_F32);
    ig_tensor *w = bf16_awkward(IG_DIMS(4, 3, 3, 3), -0.2f), *wf = ig_to_dtype(w, IG_F32);
    ig_tensor *bias = bf16_awkward(IG_DIMS(4), 0.05f), *bf = ig_to_dtype(bias, IG_F32);
    ig_conv2d_params cp = {.stride = {2, 1}, .padding = {1, 1}};
    expect_rounded(ig_conv2d(x, w, bias, &cp), ig_conv2d(xf, wf, bf, &cp), "conv2d");
    ig_pool2d_params pp = {.kernel = {2, 2}};
    expect_rounded(ig_max_pool2d(x, &pp), ig_max_pool2d(xf, &pp), "max_pool2d");
    expect_rounded(ig_avg_pool2d(x, &pp), ig_avg_pool2d(xf, &pp), "avg_pool2d");
    expect_rounded(ig_adaptive_avg_pool2d(x, 1, 1), ig_adaptive_avg_pool2d(xf, 1, 1), "adaptive_avg_pool2d");
    ig_tensor *m = bf16_awkward(IG_DIMS(5, 7), 0.4f), *n = bf16_awkward(IG_DIMS(7, 3), -0.6f);
    expect_rounded(ig_matmul(m, n), ig_matmul(ig_to_dtype(m, IG_F32), ig_to_dtype(n, IG_F32)), "matmul");
    /* batch norm: bf16 x with f32 parameters and running statistics */
    ig_tensor *gw = ig_full(IG_DIMS(3), IG_F32, 1.5), *gb = ig_full(IG_DIMS(3), IG_F32, -0.25);
    ig_tensor *rm = ig_zeros(IG_DIMS(3), IG_F32), *rv = ig_ones(IG_DIMS(3), IG_F32);
    ig_tensor *rm2 = ig_zeros(IG_DIMS(3), IG_F32), *rv2 = ig_ones(IG_DIMS(3), IG_F32);
    expect_rounded(ig_batch_norm(x, rm, rv, gw, gb, true, 0.1, 1e-5), ig_batch_norm(xf, rm2, rv2, gw, gb, true, 0.1, 1e-5),
                   "batch_norm");
    for (int c = 0; c < 3; c++) {
        cr_expect_eq(ig_tensor_get(rm, c), ig_tensor_get(rm2, c), "running mean, f32, updated");
        cr_expect_neq(ig_tensor_get(rm, c), 0.0);
    }
    cr_expect_null(ig_batch_norm(x, ig_to_dtype(rm, IG_BF16), rv, gw, gb, true, 0.1, 1e-5));
    cr_expect(strstr(ig_last_error(), "ig_batch_norm") && strstr(ig_last_error(), "running_mean"), "%s",
              ig_last_error());
    cr_expect_null(ig_batch_norm(x, rm, rv, ig_zeros(IG_DIMS(3), IG_F64), gb, true, 0.1, 1e-5));
    cr_expect(strstr(ig_last_error(), "ig_batch_norm"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, bf16_f32_ops_take_bf16_and_give_f32) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = bf16_awkward(IG_DIMS(4, 5), 0.3f), *xf = ig_to_dtype(x, IG_F32);
    int64_t tv[4] = {0, 4, 2, 1};
    ig_tensor *t = ig_from_data(IG_DIMS(4), IG_I64, tv);
    struct { ig_tensor *got, *want; const char *what; } c[] = {
        {ig_softmax(x, 1), ig_softmax(xf, 1), "softmax"},
        {ig_log_softmax(x, 1), ig_log_softmax(xf, 1), "log_softmax"},
        {ig_cross_entropy(x, t, NULL), ig_cross_entropy(xf, t, NULL), "cross_entropy"},
        {ig_mse_loss(x, ig_zeros(IG_DIMS(4, 5), IG_F32), IG_REDUCTION_MEAN), ig_mse_loss(xf, ig_zeros(IG_DIMS(4, 5), IG_F32), IG_REDUCTION_MEAN), "mse_loss"},
        {ig_layer_norm(x, 1, (int64_t[]){5}, NULL, NULL, 1e-5), ig_layer_norm(xf, 1, (int64_t[]){5}, NULL, NULL, 1e-5), "layer_norm"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        cr_assert_not_null(c[i].got, "%s: %s", c[i].what, ig_last_error());
        cr_assert_eq(ig_tensor_dtype(c[i].got), IG_F32, "%s", c[i].what);
        for (int64_t k = 0; k < ig_tensor_numel(c[i].got); k++)
            cr_expect_eq(ig_tensor_get(c[i].got, k), ig_tensor_get(c[i].want, k), "%s[%lld]", c[i].what, (long long)k);
    }
    /* the loss's gradient reaches the bf16 logits as bf16 */
    ig_set_requires_grad(x, true);
    ig_tensor *loss = ig_cross_entropy(x, t, NULL);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    cr_expect_eq(ig_tensor_dtype(ig_grad(x)), IG_BF16);
    ig_scope_end(s);
}

Test(core, bf16_indexing_and_dropout) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = bf16_awkward(IG_DIMS(4, 3), 0.5f);
    ig_set_requires_grad(x, true);
    int64_t iv[3] = {3, 0, 3};
    ig_tensor *ix = ig_from_data(IG_DIMS(3), IG_I64, iv);
    ig_tensor *sel = ig_index_select(x, 0, ix);
    cr_assert_not_null(sel, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(sel), IG_BF16);
    for (int k = 0; k < 3; k++) cr_expect_eq(ig_tensor_get(sel, 3 + k), ig_tensor_get(x, k));
    cr_assert_eq(ig_backward(ig_sum(sel, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    cr_expect_eq(ig_tensor_get(ig_grad(x), 9), 2.0, "row 3 picked twice");
    cr_expect_eq(ig_tensor_get(ig_grad(x), 3), 0.0);
    ig_tensor *d = ig_dropout(x, 0.5, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_expect_eq(ig_tensor_dtype(d), IG_BF16);
    for (int k = 0; k < 12; k++) {
        double v = ig_tensor_get(d, k);
        cr_expect(v == 0.0 || v == 2.0 * ig_tensor_get(x, k), "dropout keeps a value scaled by 2 (exact) or drops it");
    }
    ig_scope_end(s);
}

Test(core, bf16_random_tensors) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(7);
    ig_tensor *u = ig_rand(IG_DIMS(4096), IG_BF16);
    cr_assert_not_null(u, "%s", ig_last_error());
    double mean = 0;
    for (int i = 0; i < 4096; i++) {
        double v = ig_tensor_get(u, i);
        cr_assert(v >= 0.0 && v < 1.0, "%g", v);
        cr_assert_eq(v * 256.0, floor(v * 256.0), "8 random bits: %g", v);
        mean += v / 4096;
    }
    cr_expect(fabs(mean - 0.498) < 0.02, "mean %g", mean);
    ig_tensor *n = ig_randn(IG_DIMS(2048), IG_BF16);
    cr_assert_not_null(n);
    double m2 = 0;
    for (int i = 0; i < 2048; i++) m2 += ig_tensor_get(n, i) * ig_tensor_get(n, i) / 2048;
    cr_expect(fabs(m2 - 1.0) < 0.1, "variance %g", m2);
    ig_tensor *ri = ig_randint(-256, 256, IG_DIMS(64), IG_BF16);
    cr_assert_not_null(ri, "%s", ig_last_error());
    for (int i = 0; i < 64; i++) cr_expect_eq(ig_tensor_get(ri, i), floor(ig_tensor_get(ri, i)));
    cr_expect_null(ig_randint(0, 257, IG_DIMS(4), IG_BF16));
    cr_expect(strstr(ig_last_error(), "ig_randint") && strstr(ig_last_error(), "bfloat16"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, bf16_parameters_are_refused_by_optimizers) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = ig_zeros(IG_DIMS(3), IG_BF16);
    ig_set_requires_grad(p, true);
    ig_sgd_opts o = {.lr = 0.1};
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    cr_expect_null(opt);
    cr_expect(strstr(ig_last_error(), "params[0]") && strstr(ig_last_error(), "bfloat16"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, bf16_safetensors_round_trip) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = bf16_awkward(IG_DIMS(2, 3), -1.7f);
    char path[] = "/tmp/ignis_bf16_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    ig_named_tensor nt = {"x", x};
    cr_assert_eq(ig_safetensors_save(path, &nt, 1, NULL, NULL, 0), IG_OK, "%s", ig_last_error());
    ig_safetensors *st = ig_safetensors_load(path);
    cr_assert_not_null(st, "%s", ig_last_error());
    ig_tensor *y = ig_safetensors_find(st, "x");
    cr_assert_not_null(y);
    cr_expect_eq(ig_tensor_dtype(y), IG_BF16);
    cr_expect_eq(memcmp(ig_tensor_data(y), ig_tensor_data(x), 12), 0);
    ig_safetensors_free(st);
    unlink(path);
    ig_scope_end(s);
}
