/*
 * tests/core/test_rng.c — the counter-based generator: Philox4x32-10 known answers,
 * reproducibility (seed, state save/restore, prefix stability), the ranges and moments of
 * rand/randn/randint, and their dtype and range errors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* Random123's known-answer tests for philox4x32-10; the library packs the four counter
 * words as counter_lo = c0 | c1 << 32, counter_hi = c2 | c3 << 32, key = k0 | k1 << 32. */
Test(core, philox_known_answers) {
    uint32_t out[4];
    ig_philox4x32(0, 0, 0, out);
    const uint32_t zero[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], zero[i], "word %d: %08x", i, out[i]);
    ig_philox4x32(UINT64_MAX, UINT64_MAX, UINT64_MAX, out);
    const uint32_t ones[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], ones[i], "word %d: %08x", i, out[i]);
}

/* Copies a draw's bytes out so it can be compared after its scope. */
static void draw_bytes(ig_tensor *t, void *buf, size_t nbytes) {
    cr_assert_not_null(t, "%s", ig_last_error());
    memcpy(buf, ig_tensor_data(t), nbytes);
}

Test(core, rng_same_seed_same_numbers) {
    ig_scope *s = ig_scope_begin();
    float a[64], b[64];
    double c[64], d[64];
    int64_t e[64], f[64];
    for (int round = 0; round < 2; round++) {
        ig_manual_seed(42);
        draw_bytes(ig_rand(IG_DIMS(8, 8), IG_F32), round ? b : a, sizeof a);
        draw_bytes(ig_randn(IG_DIMS(64), IG_F64), round ? d : c, sizeof c);
        draw_bytes(ig_randint(-50, 50, IG_DIMS(4, 16), IG_I64), round ? f : e, sizeof e);
    }
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(memcmp(c, d, sizeof c), 0);
    cr_assert_eq(memcmp(e, f, sizeof e), 0);
    /* The stream does not depend on the shape, only on the element count and order. */
    ig_manual_seed(42);
    draw_bytes(ig_rand(IG_DIMS(2, 2, 16), IG_F32), b, sizeof b);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    ig_scope_end(s);
}

Test(core, rng_different_seeds_and_draws_differ) {
    ig_scope *s = ig_scope_begin();
    double a[100], b[100], c[100];
    ig_manual_seed(1);
    draw_bytes(ig_rand(IG_DIMS(100), IG_F64), a, sizeof a);
    draw_bytes(ig_rand(IG_DIMS(100), IG_F64), c, sizeof c); /* next draw of the same seed */
    ig_manual_seed(2);
    draw_bytes(ig_rand(IG_DIMS(100), IG_F64), b, sizeof b);
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < 100; i++) {
        same_ab += a[i] == b[i];
        same_ac += a[i] == c[i];
    }
    cr_assert_eq(same_ab, 0);
    cr_assert_eq(same_ac, 0);
    ig_scope_end(s);
}

Test(core, rng_state_replays_a_draw) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(7);
    uint64_t seed, off;
    ig_rng_get_state(&seed, &off);
    cr_assert_eq(seed, 7);
    cr_assert_eq(off, 0);
    ig_rand(IG_DIMS(10), IG_F32); /* 20 words: 5 counters */
    ig_rng_get_state(&seed, &off);
    cr_assert_eq(off, 5);
    ig_randn(IG_DIMS(3), IG_F64); /* 6 words: 2 counters */
    ig_rng_get_state(NULL, &off);
    cr_assert_eq(off, 7);
    double first[33], again[33];
    draw_bytes(ig_randn(IG_DIMS(33), IG_F64), first, sizeof first);
    ig_rng_set_state(seed, off);
    draw_bytes(ig_randn(IG_DIMS(33), IG_F64), again, sizeof again);
    cr_assert_eq(memcmp(first, again, sizeof first), 0);
    ig_rng_get_state(&seed, &off);
    cr_assert_eq(seed, 7);
    cr_assert_eq(off, 7 + 17);
    ig_scope_end(s);
}

/* Element i depends only on (seed, offset, i): a longer draw starts with a shorter one,
 * and element 0 of an f32 draw is the top 24 bits of the first Philox word. */
Test(core, rng_prefix_stable_and_matches_philox) {
    ig_scope *s = ig_scope_begin();
    float shorter[10], longer[1000];
    ig_manual_seed(99);
    draw_bytes(ig_rand(IG_DIMS(10), IG_F32), shorter, sizeof shorter);
    ig_manual_seed(99);
    draw_bytes(ig_rand(IG_DIMS(1000), IG_F32), longer, sizeof longer);
    cr_assert_eq(memcmp(shorter, longer, sizeof shorter), 0);
    uint32_t w[4];
    ig_philox4x32(99, 0, 0, w);
    cr_assert_eq(shorter[0], (float)((double)(w[0] >> 8) / 16777216.0));
    cr_assert_eq(shorter[1], (float)((double)(w[2] >> 8) / 16777216.0));
    ig_philox4x32(99, 0, 1, w);
    cr_assert_eq(shorter[2], (float)((double)(w[0] >> 8) / 16777216.0));
    ig_scope_end(s);
}

Test(core, rand_range_and_moments) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(3);
    const int n = 100000;
    ig_tensor *a = ig_rand(IG_DIMS(n), IG_F32);
    ig_tensor *b = ig_rand(IG_DIMS(100, 1000), IG_F64);
    const float *pa = ig_tensor_data(a);
    const double *pb = ig_tensor_data(b);
    double sa = 0, sb = 0, qa = 0, qb = 0;
    for (int i = 0; i < n; i++) {
        cr_assert(pa[i] >= 0.0f && pa[i] < 1.0f, "f32 %d: %g", i, pa[i]);
        cr_assert(pb[i] >= 0.0 && pb[i] < 1.0, "f64 %d: %g", i, pb[i]);
        sa += pa[i];
        sb += pb[i];
        qa += (double)pa[i] * pa[i];
        qb += pb[i] * pb[i];
    }
    /* Mean 1/2 and variance 1/12; the standard error of the mean is about 0.0009. */
    double ma = sa / n, mb = sb / n;
    cr_assert_float_eq(ma, 0.5, 0.005);
    cr_assert_float_eq(mb, 0.5, 0.005);
    cr_assert_float_eq(qa / n - ma * ma, 1.0 / 12, 0.003);
    cr_assert_float_eq(qb / n - mb * mb, 1.0 / 12, 0.003);
    ig_scope_end(s);
}

Test(core, randn_moments) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(5);
    const int n = 100000;
    for (int k = 0; k < 2; k++) {
        ig_tensor *t = ig_randn(IG_DIMS(n), k ? IG_F64 : IG_F32);
        double buf_sum = 0, sq = 0, quad = 0;
        for (int i = 0; i < n; i++) {
            double v = ig_tensor_get(t, i);
            cr_assert(isfinite(v));
            buf_sum += v;
            sq += v * v;
        }
        double mean = buf_sum / n, var = sq / n - mean * mean;
        for (int i = 0; i < n; i++) {
            double z = ig_tensor_get(t, i) - mean;
            quad += z * z * z * z;
        }
        /* Standard errors: mean 0.0032, variance 0.0045, fourth moment (3) about 0.03. */
        cr_assert_float_eq(mean, 0.0, 0.02, "mean %g", mean);
        cr_assert_float_eq(var, 1.0, 0.03, "variance %g", var);
        cr_assert_float_eq(quad / n, 3.0, 0.2, "fourth moment %g", quad / n);
    }
    ig_scope_end(s);
}

Test(core, randint_range_and_coverage) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(8);
    const ig_dtype dts[5] = {IG_I64, IG_I32, IG_U8, IG_F32, IG_F64};
    const int64_t lo[5] = {-3, -3, 250, -3, -3}, hi[5] = {5, 5, 256, 5, 5};
    for (int k = 0; k < 5; k++) {
        ig_tensor *t = ig_randint(lo[k], hi[k], IG_DIMS(2000), dts[k]);
        cr_assert_not_null(t, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_dtype(t), dts[k]);
        int hits[8] = {0};
        for (int i = 0; i < 2000; i++) {
            double v = ig_tensor_get(t, i);
            cr_assert(v == floor(v) && v >= (double)lo[k] && v < (double)hi[k], "%s: %g",
                      ig_dtype_name(dts[k]), v);
            hits[(int)(v - (double)lo[k])]++;
        }
        for (int j = 0; j < hi[k] - lo[k]; j++)
            cr_assert_gt(hits[j], 100, "%s: value %lld hit %d times", ig_dtype_name(dts[k]),
                         (long long)(lo[k] + j), hits[j]);
    }
    /* The widest int64 range, whose width does not fit int64. */
    ig_tensor *w = ig_randint(INT64_MIN, INT64_MAX, IG_DIMS(1000), IG_I64);
    cr_assert_not_null(w, "%s", ig_last_error());
    const int64_t *pw = ig_tensor_data(w);
    int neg = 0;
    for (int i = 0; i < 1000; i++) {
        cr_assert_neq(pw[i], INT64_MAX);
        neg += pw[i] < 0;
    }
    cr_assert(neg > 400 && neg < 600, "%d negatives of 1000", neg);
    ig_tensor *one = ig_randint(7, 8, IG_DIMS(5), IG_I32);
    for (int i = 0; i < 5; i++) cr_assert_eq(ig_tensor_get(one, i), 7.0);
    ig_scope_end(s);
}

Test(core, rng_errors) {
    ig_scope *s = ig_scope_begin();
    const ig_dtype ints[3] = {IG_I32, IG_I64, IG_U8};
    for (int k = 0; k < 3; k++) {
        ig_clear_error();
        cr_assert_null(ig_rand(IG_DIMS(3), ints[k]));
        ASSERT_ERR(IG_ERR_DTYPE, "ig_rand");
        ig_clear_error();
        cr_assert_null(ig_randn(IG_DIMS(3), ints[k]));
        ASSERT_ERR(IG_ERR_DTYPE, "ig_randn");
    }
    ig_clear_error();
    cr_assert_null(ig_randint(5, 5, IG_DIMS(3), IG_I64));
    ASSERT_ERR(IG_ERR_ARG, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_randint(5, 2, IG_DIMS(3), IG_I64));
    ASSERT_ERR(IG_ERR_ARG, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_randint(0, 300, IG_DIMS(3), IG_U8));
    ASSERT_ERR(IG_ERR_ARG, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_randint(-1, 10, IG_DIMS(3), IG_U8));
    ASSERT_ERR(IG_ERR_ARG, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_randint(0, INT64_C(1) << 32, IG_DIMS(3), IG_I32));
    ASSERT_ERR(IG_ERR_ARG, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_randint(0, INT64_C(1) << 40, IG_DIMS(3), IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_randint(0, 2, IG_DIMS(3), IG_DTYPE_COUNT));
    ASSERT_ERR(IG_ERR_DTYPE, "ig_randint");
    ig_clear_error();
    cr_assert_null(ig_rand(IG_DIMS(-3), IG_F32));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_rand");
    /* A failed draw does not advance the generator. */
    ig_manual_seed(4);
    ig_randint(3, 1, IG_DIMS(100), IG_I64);
    ig_rand(IG_DIMS(100), IG_U8);
    uint64_t off;
    ig_rng_get_state(NULL, &off);
    cr_assert_eq(off, 0);
    ig_scope_end(s);
}
