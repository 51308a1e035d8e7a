/*
 * tests/core/test_amp.c — autocast: the bf16 / fp16 rounding against hand-computed values,
 * ig_matmul and ig_conv2d under autocast against the f32 ops on operands rounded in the
 * test, their backward against the gradients of that rounded computation, and the mode's
 * per-thread state. ig_gradcheck is not used here: a rounded op is piecewise constant in
 * its operands, so finite differences of it say nothing about its gradient (which, as in
 * PyTorch, is the rounded computation's own backward).
 */
#include <criterion/criterion.h>
#include <float.h>
#include <ignis.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/tensor_impl.h"

static float bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(core, amp_round_bf16_hand_values) {
    cr_expect_eq(igi_round_bf16(1.0f), 1.0f);
    /* bf16 keeps 8 significant bits: near 1 the spacing is 2^-7 */
    cr_expect_eq(igi_round_bf16(1.0f + 0x1p-8f), 1.0f);                 /* tie: to even (1.0) */
    cr_expect_eq(igi_round_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);   /* tie: to even (1+2^-6) */
    cr_expect_eq(igi_round_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f); /* above the tie: up */
    cr_expect_eq(igi_round_bf16(-3.14159265f), -3.140625f);
    cr_expect_eq(igi_round_bf16(FLT_MAX), INFINITY);                    /* past bf16's max + half ulp */
    cr_expect_eq(igi_round_bf16(bits(0x7f7f0000u)), bits(0x7f7f0000u)); /* bf16's max itself */
    cr_expect_eq(igi_round_bf16(-INFINITY), -INFINITY);
    cr_expect(isnan(igi_round_bf16(NAN)));
    cr_expect(isnan(igi_round_bf16(bits(0x7f800001u)))); /* a NaN whose payload sits in the dropped bits */
    float z = igi_round_bf16(-0.0f);
    cr_expect(z == 0.0f && signbit(z));
    cr_expect_eq(igi_round_bf16(bits(0x00018000u)), bits(0x00020000u)); /* subnormal tie: to even */
}

Test(core, amp_round_fp16_hand_values) {
    cr_expect_eq(igi_round_fp16(1.0f), 1.0f);
    /* fp16 keeps 11 significant bits: near 1 the spacing is 2^-10 */
    cr_expect_eq(igi_round_fp16(1.0f + 0x1p-11f), 1.0f);               /* tie: to even */
    cr_expect_eq(igi_round_fp16(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f); /* tie: to even */
    cr_expect_eq(igi_round_fp16(0.1f), 0.0999755859375f);
    cr_expect_eq(igi_round_fp16(65504.0f), 65504.0f); /* the largest half */
    cr_expect_eq(igi_round_fp16(65519.0f), 65504.0f);
    cr_expect_eq(igi_round_fp16(65520.0f), INFINITY); /* the tie rounds to the even side, 2^16: overflow */
    cr_expect_eq(igi_round_fp16(-1e6f), -INFINITY);
    /* subnormals: multiples of 2^-24 */
    cr_expect_eq(igi_round_fp16(0x1p-24f), 0x1p-24f);
    cr_expect_eq(igi_round_fp16(0x1p-25f), 0.0f);            /* tie between 0 and 2^-24: 0 */
    cr_expect_eq(igi_round_fp16(3 * 0x1p-25f), 0x1p-23f);    /* tie between 1 and 2 x 2^-24: 2 */
    cr_expect_eq(igi_round_fp16(0x1p-20f + 0x1p-26f), 0x1p-20f);
    cr_expect_eq(igi_round_fp16(0x1p-14f - 0x1p-30f), 0x1p-14f); /* rounds up into the normal range */
    float z = igi_round_fp16(-1e-10f);
    cr_expect(z == 0.0f && signbit(z));
    z = igi_round_fp16(-0.0f);
    cr_expect(z == 0.0f && signbit(z));
    cr_expect(isnan(igi_round_fp16(NAN)));
    cr_expect_eq(igi_round_fp16(INFINITY), INFINITY);
}

/* A [n] f32 tensor of values that need more than 11 significant bits. */
static ig_tensor *awkward(int64_t n, float base) {
    ig_tensor *t = ig_empty(IG_DIMS(n), IG_F32);
    float *p = ig_tensor_data(t);
    for (int64_t i = 0; i < n; i++) p[i] = base + 0.0123457f * (float)(i % 13) - 0.0311111f * (float)(i % 7);
    return t;
}

/* A contiguous copy of t with every element rounded in the test. */
static ig_tensor *rounded(ig_tensor *t, ig_amp mode) {
    ig_tensor *c = ig_contiguous(t);
    ig_tensor *r = ig_empty(ig_tensor_ndim(c), ig_tensor_shape(c), IG_F32);
    const float *s = ig_tensor_data(c);
    float *d = ig_tensor_data(r);
    for (int64_t i = 0; i < ig_tensor_numel(c); i++) d[i] = mode == IG_AMP_BF16 ? igi_round_bf16(s[i]) : igi_round_fp16(s[i]);
    return r;
}

/* Largest |a - b| over the elements (either may be bf16: compared as f32). */
static float max_abs_diff(ig_tensor *a, ig_tensor *b) {
    ig_tensor *ca = ig_to_dtype(a, IG_F32), *cb = ig_to_dtype(b, IG_F32);
    cr_assert_eq(ig_tensor_numel(ca), ig_tensor_numel(cb));
    const float *x = ig_tensor_data(ca), *y = ig_tensor_data(cb);
    float m = 0;
    for (int64_t i = 0; i < ig_tensor_numel(ca); i++) m = fmaxf(m, fabsf(x[i] - y[i]));
    return m;
}

/* got (bf16) holds exactly the bf16 roundings of want (f32; any strides). */
static void expect_bits_bf16(ig_tensor *got, ig_tensor *want, const char *what) {
    ig_tensor *g = ig_to_dtype(got, IG_F32), *w = ig_contiguous(want);
    cr_assert_eq(ig_tensor_numel(g), ig_tensor_numel(w), "%s", what);
    const float *gp = ig_tensor_data(g), *wp = ig_tensor_data(w);
    for (int64_t i = 0; i < ig_tensor_numel(g); i++)
        cr_assert_eq(gp[i], igi_round_bf16(wp[i]), "%s[%lld]: %.9g, want %.9g", what, (long long)i, (double)gp[i],
                     (double)igi_round_bf16(wp[i]));
}

Test(core, amp_matmul_equals_f32_on_rounded_operands) {
    ig_amp modes[2] = {IG_AMP_BF16, IG_AMP_FP16};
    for (int k = 0; k < 2; k++) {
        ig_scope *s = ig_scope_begin();
        /* a [2,5,7] (batched), b given as a transposed view of [9,7] (non-contiguous) */
        ig_tensor *a = ig_reshape(awkward(70, 0.3f), IG_DIMS(2, 5, 7));
        ig_tensor *b = ig_transpose(ig_reshape(awkward(63, -0.7f), IG_DIMS(9, 7)), 0, 1);
        ig_amp prev = ig_autocast_set(modes[k]);
        ig_tensor *y = ig_matmul(a, b);
        cr_expect_eq(ig_autocast_set(prev), modes[k]);
        cr_assert_not_null(y, "%s", ig_last_error());
        ig_tensor *want = ig_matmul(rounded(a, modes[k]), rounded(b, modes[k]));
        ig_tensor *plain = ig_matmul(a, b);
        if (modes[k] == IG_AMP_BF16) {
            /* bf16 autocast returns bf16: the f32 product of the rounded operands, rounded */
            cr_assert_eq(ig_tensor_dtype(y), IG_BF16);
            expect_bits_bf16(y, want, "matmul");
        } else {
            cr_expect_eq(ig_tensor_dtype(y), IG_F32);
            cr_expect_lt(max_abs_diff(y, want), 1e-6f, "mode %d", k);
        }
        cr_expect_gt(max_abs_diff(y, plain), 1e-5f, "mode %d: rounding made no difference", k);
        /* f64 is never rounded */
        ig_tensor *a64 = ig_to_dtype(a, IG_F64), *b64 = ig_to_dtype(b, IG_F64);
        ig_autocast_set(modes[k]);
        ig_tensor *y64 = ig_matmul(a64, b64);
        ig_autocast_set(IG_AMP_OFF);
        ig_tensor *p64 = ig_matmul(a64, b64);
        const double *u = ig_tensor_data(y64), *v = ig_tensor_data(p64);
        for (int64_t i = 0; i < ig_tensor_numel(y64); i++) cr_expect_eq(u[i], v[i], "f64 changed under autocast");
        ig_scope_end(s);
    }
}

/* fp16 autocast keeps f32 tensors and rounds GEMM operands, in backward too. */
Test(core, amp_matmul_backward_is_the_rounded_computation) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_reshape(awkward(12, 0.9f), IG_DIMS(3, 4)), *b = ig_reshape(awkward(20, -0.2f), IG_DIMS(4, 5));
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    ig_amp prev = ig_autocast_set(IG_AMP_FP16);
    ig_tensor *y = ig_matmul(a, b);
    ig_autocast_set(prev);
    cr_assert_eq(ig_tensor_dtype(y), IG_F32);
    ig_tensor *g = ig_reshape(awkward(15, 1.1f), IG_DIMS(3, 5));
    /* backward runs outside the autocast region and still rounds as the forward did */
    cr_assert_eq(ig_backward(y, g), IG_OK, "%s", ig_last_error());
    ig_tensor *ra = rounded(a, IG_AMP_FP16), *rb = rounded(b, IG_AMP_FP16), *rg = rounded(g, IG_AMP_FP16);
    ig_tensor *da = ig_matmul(rg, ig_transpose(rb, 0, 1)), *db = ig_matmul(ig_transpose(ra, 0, 1), rg);
    cr_expect_lt(max_abs_diff(ig_grad(a), da), 1e-6f);
    cr_expect_lt(max_abs_diff(ig_grad(b), db), 1e-6f);
    cr_expect_gt(max_abs_diff(ig_grad(a), ig_matmul(g, ig_transpose(b, 0, 1))), 1e-5f);

    /* the reverse: forward in f32, backward called inside an autocast region: no rounding */
    ig_zero_grad(a);
    ig_zero_grad(b);
    ig_tensor *y2 = ig_matmul(a, b);
    ig_autocast_set(IG_AMP_FP16);
    cr_assert_eq(ig_backward(y2, g), IG_OK);
    cr_expect_eq(ig_autocast_get(), IG_AMP_FP16, "backward must restore the mode");
    ig_autocast_set(IG_AMP_OFF);
    cr_expect_lt(max_abs_diff(ig_grad(a), ig_matmul(g, ig_transpose(b, 0, 1))), 1e-6f);
    ig_scope_end(s);
}

/* bf16 autocast: the f32 operands become bf16 (recorded conversions), the product is bf16,
 * and the gradients of the f32 leaves are f32 holding the bf16 gradients of their bf16
 * copies: each the f32 product of bf16 values, rounded once (torch.autocast's). */
Test(core, amp_bf16_matmul_backward_rounds_each_gradient_once) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_reshape(awkward(12, 0.9f), IG_DIMS(3, 4)), *b = ig_reshape(awkward(20, -0.2f), IG_DIMS(4, 5));
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    ig_amp prev = ig_autocast_set(IG_AMP_BF16);
    ig_tensor *y = ig_matmul(a, b);
    ig_autocast_set(prev);
    cr_assert_not_null(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(y), IG_BF16);
    ig_tensor *g = ig_to_dtype(ig_reshape(awkward(15, 1.1f), IG_DIMS(3, 5)), IG_BF16);
    cr_assert_eq(ig_backward(y, g), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(ig_grad(a)), IG_F32, "master weights keep f32 gradients");
    ig_tensor *ra = rounded(a, IG_AMP_BF16), *rb = rounded(b, IG_AMP_BF16), *rg = ig_to_dtype(g, IG_F32);
    expect_bits_bf16(ig_grad(a), ig_matmul(rg, ig_transpose(rb, 0, 1)), "da");
    expect_bits_bf16(ig_grad(b), ig_matmul(ig_transpose(ra, 0, 1), rg), "db");
    /* a bf16 operand beside an f32 one: the f32 one is converted (autocast), not promoted */
    ig_autocast_set(IG_AMP_BF16);
    ig_tensor *mixed = ig_matmul(ig_to_dtype(a, IG_BF16), b);
    ig_autocast_set(IG_AMP_OFF);
    cr_assert_not_null(mixed, "%s", ig_last_error());
    expect_bits_bf16(mixed, ig_matmul(ra, rb), "mixed");
    /* outside autocast, the same pair is a dtype error */
    cr_expect_null(ig_matmul(ig_to_dtype(a, IG_BF16), b));
    cr_expect(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    ig_scope_end(s);
}

typedef struct conv_case {
    int64_t C, H, O, k;
    int stride, pad;
} conv_case;

Test(core, amp_conv2d_forward_and_backward_are_the_rounded_computation) {
    /* 3x3 padding 1 (the direct kernels on AVX2 CPUs), 5x5 stride 2 (im2col + GEMM), 1x1 */
    const conv_case cases[] = {{3, 6, 4, 3, 1, 1}, {2, 9, 3, 5, 2, 1}, {4, 5, 2, 1, 1, 0}};
    ig_amp modes[2] = {IG_AMP_BF16, IG_AMP_FP16};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int m = 0; m < 2; m++) {
            const conv_case *k = &cases[c];
            ig_scope *s = ig_scope_begin();
            ig_tensor *x = ig_reshape(awkward(2 * k->C * k->H * k->H, 0.4f), IG_DIMS(2, k->C, k->H, k->H));
            ig_tensor *w = ig_reshape(awkward(k->O * k->C * k->k * k->k, -0.3f), IG_DIMS(k->O, k->C, k->k, k->k));
            ig_tensor *b = awkward(k->O, 0.05f);
            ig_set_requires_grad(x, true);
            ig_set_requires_grad(w, true);
            ig_set_requires_grad(b, true);
            ig_conv2d_params p = {.stride = {k->stride, k->stride}, .padding = {k->pad, k->pad}};
            ig_amp prev = ig_autocast_set(modes[m]);
            ig_tensor *y = ig_conv2d(x, w, b, &p);
            ig_autocast_set(prev);
            cr_assert_not_null(y, "%s", ig_last_error());

            ig_tensor *rx = rounded(x, modes[m]), *rw = rounded(w, modes[m]);
            ig_set_requires_grad(rx, true);
            ig_set_requires_grad(rw, true);
            if (modes[m] == IG_AMP_BF16) {
                /* bf16: x, w and b converted, a bf16 result; each gradient rounded once */
                ig_tensor *rb = rounded(b, IG_AMP_BF16);
                ig_set_requires_grad(rb, true);
                ig_tensor *want = ig_conv2d(rx, rw, rb, &p);
                cr_assert_eq(ig_tensor_dtype(y), IG_BF16);
                expect_bits_bf16(y, want, "conv2d");
                ig_tensor *g = ig_to_dtype(ig_reshape(awkward(ig_tensor_numel(y), -0.6f), ig_tensor_ndim(y),
                                                      ig_tensor_shape(y)), IG_BF16);
                cr_assert_eq(ig_backward(y, g), IG_OK, "%s", ig_last_error());
                cr_assert_eq(ig_backward(want, ig_to_dtype(g, IG_F32)), IG_OK);
                expect_bits_bf16(ig_grad(x), ig_grad(rx), "dx");
                expect_bits_bf16(ig_grad(w), ig_grad(rw), "dw");
                expect_bits_bf16(ig_grad(b), ig_grad(rb), "db");
                ig_scope_end(s);
                continue;
            }
            ig_tensor *want = ig_conv2d(rx, rw, b, &p);
            cr_expect_lt(max_abs_diff(y, want), 1e-5f, "case %zu mode %d", c, m);
            cr_expect_gt(max_abs_diff(y, ig_conv2d(x, w, b, &p)), 1e-5f, "case %zu mode %d: no rounding", c, m);

            ig_tensor *g = ig_reshape(awkward(ig_tensor_numel(y), -0.6f), ig_tensor_ndim(y), ig_tensor_shape(y));
            cr_assert_eq(ig_backward(y, g), IG_OK, "%s", ig_last_error());
            float gbp[8]; /* the bias gradient, kept before the reference run adds to it */
            memcpy(gbp, ig_tensor_data(ig_grad(b)), sizeof(float) * (size_t)k->O);
            ig_zero_grad(b);
            cr_assert_eq(ig_backward(want, rounded(g, modes[m])), IG_OK);
            cr_expect_lt(max_abs_diff(ig_grad(x), ig_grad(rx)), 1e-5f, "case %zu mode %d: dx", c, m);
            cr_expect_lt(max_abs_diff(ig_grad(w), ig_grad(rw)), 1e-4f, "case %zu mode %d: dw", c, m);
            /* the bias gradient sums the unrounded g, in f32 */
            const float *gp = ig_tensor_data(ig_contiguous(g));
            int64_t P = ig_tensor_size(y, 2) * ig_tensor_size(y, 3);
            for (int64_t o = 0; o < k->O; o++) {
                double acc = 0;
                for (int64_t n = 0; n < 2; n++)
                    for (int64_t q = 0; q < P; q++) acc += gp[(n * k->O + o) * P + q];
                cr_expect_float_eq(gbp[o], (float)acc, 1e-4, "case %zu: db[%lld]", c, (long long)o);
            }
            ig_scope_end(s);
        }
}

static void *read_mode(void *arg) {
    *(ig_amp *)arg = ig_autocast_get();
    return NULL;
}

Test(core, amp_autocast_is_per_thread_and_restored) {
    cr_expect_eq(ig_autocast_get(), IG_AMP_OFF);
    cr_expect_eq(ig_autocast_set(IG_AMP_FP16), IG_AMP_OFF);
    ig_amp other = IG_AMP_BF16;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, read_mode, &other), 0);
    pthread_join(th, NULL);
    cr_expect_eq(other, IG_AMP_OFF, "another thread sees its own mode");
    cr_expect_eq(ig_autocast_get(), IG_AMP_FP16);
    cr_expect_eq(ig_autocast_set(IG_AMP_OFF), IG_AMP_FP16);
    cr_expect_str_eq(ig_amp_name(IG_AMP_BF16), "bf16");
    cr_expect_null(ig_amp_name((ig_amp)9));
}

Test(core, amp_autocast_set_rejects_an_invalid_mode) {
    ig_autocast_set(IG_AMP_BF16);
    cr_expect_eq(ig_autocast_set((ig_amp)7), IG_AMP_BF16);
    cr_expect_eq(ig_last_status(), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_autocast_set: mode 7") != NULL, "%s", ig_last_error());
    cr_expect_eq(ig_autocast_get(), IG_AMP_BF16, "mode unchanged");
    ig_autocast_set(IG_AMP_OFF);
}
