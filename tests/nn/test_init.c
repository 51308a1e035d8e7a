/*
 * tests/nn/test_init.c — the initialisers against torch.nn.init's formulas: bounds and
 * standard deviations computed here from the fans (fan_in = size(1) * receptive field,
 * fan_out = size(0) * receptive field), sample statistics on large tensors, strided
 * targets, determinism under a seed, and the error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats sample_stats(const ig_tensor *t) {
    int64_t n = ig_tensor_numel(t);
    stats s = {0, 0, INFINITY, -INFINITY};
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = ig_tensor_get(t, i);
        sum += v;
        sq += v * v;
        s.min = fmin(s.min, v);
        s.max = fmax(s.max, v);
    }
    s.mean = sum / (double)n;
    s.std = sqrt(sq / (double)n - s.mean * s.mean);
    return s;
}

Test(nn, init_kaiming_uniform_bounds) {
    ig_manual_seed(21);
    ig_scope *sc = ig_scope_begin();
    /* [64, 32, 3, 3]: fan_in = 32*9 = 288, fan_out = 64*9 = 576. */
    ig_tensor *t = ig_empty(IG_DIMS(64, 32, 3, 3), IG_F32);
    cr_assert_eq(ig_init_kaiming_uniform(t, 0, IG_FAN_IN), IG_OK, "%s", ig_last_error());
    double bound = sqrt(2.0) * sqrt(3.0 / 288); /* gain sqrt(2) for a = 0 */
    stats s = sample_stats(t);
    cr_assert(s.min >= -bound && s.max <= bound, "[%g, %g] vs %g", s.min, s.max, bound);
    cr_assert(s.max > 0.99 * bound && s.min < -0.99 * bound);
    cr_assert(fabs(s.mean) < 0.01 * bound * 3);
    cr_assert(fabs(s.std - bound / sqrt(3.0)) < 0.02 * bound, "std %g", s.std);
    /* a = sqrt(5), fan_out: gain sqrt(2/6), bound gain * sqrt(3/576) = 1/sqrt(576). */
    cr_assert_eq(ig_init_kaiming_uniform(t, sqrt(5.0), IG_FAN_OUT), IG_OK);
    bound = 1.0 / 24.0;
    s = sample_stats(t);
    cr_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound, "[%g, %g]", s.min, s.max);
    ig_scope_end(sc);
}

Test(nn, init_kaiming_normal_std) {
    ig_manual_seed(22);
    ig_scope *sc = ig_scope_begin();
    /* [512, 256] f64: fan_in 256, fan_out 512; leaky slope 0.1. */
    ig_tensor *t = ig_empty(IG_DIMS(512, 256), IG_F64);
    cr_assert_eq(ig_init_kaiming_normal(t, 0.1, IG_FAN_OUT), IG_OK, "%s", ig_last_error());
    double std = sqrt(2.0 / (1 + 0.01)) / sqrt(512.0);
    stats s = sample_stats(t);
    cr_assert(fabs(s.std / std - 1) < 0.01, "std %g want %g", s.std, std);
    cr_assert(fabs(s.mean) < 0.01 * std);
    cr_assert_eq(ig_init_kaiming_normal(t, 0, IG_FAN_IN), IG_OK);
    s = sample_stats(t);
    cr_assert(fabs(s.std / sqrt(2.0 / 256) - 1) < 0.01, "std %g", s.std);
    ig_scope_end(sc);
}

Test(nn, init_xavier) {
    ig_manual_seed(23);
    ig_scope *sc = ig_scope_begin();
    /* [300, 200, 2]: fan_in 400, fan_out 600. */
    ig_tensor *t = ig_empty(IG_DIMS(300, 200, 2), IG_F32);
    cr_assert_eq(ig_init_xavier_uniform(t, 1.5), IG_OK, "%s", ig_last_error());
    double bound = 1.5 * sqrt(6.0 / 1000);
    stats s = sample_stats(t);
    cr_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound, "[%g, %g] vs %g", s.min, s.max, bound);
    cr_assert_eq(ig_init_xavier_normal(t, 2.0), IG_OK);
    s = sample_stats(t);
    cr_assert(fabs(s.std / (2.0 * sqrt(2.0 / 1000)) - 1) < 0.01, "std %g", s.std);
    ig_scope_end(sc);
}

Test(nn, init_uniform_normal_constant) {
    ig_manual_seed(24);
    ig_scope *sc = ig_scope_begin();
    ig_tensor *t = ig_empty(IG_DIMS(100000), IG_F64);
    cr_assert_eq(ig_init_uniform(t, -3, 5), IG_OK);
    stats s = sample_stats(t);
    cr_assert(s.min >= -3 && s.max < 5 && s.min < -2.99 && s.max > 4.99);
    cr_assert(fabs(s.mean - 1) < 0.05 && fabs(s.std - 8 / sqrt(12.0)) < 0.02, "%g %g", s.mean, s.std);
    cr_assert_eq(ig_init_normal(t, 2, 0.5), IG_OK);
    s = sample_stats(t);
    cr_assert(fabs(s.mean - 2) < 0.01 && fabs(s.std - 0.5) < 0.01, "%g %g", s.mean, s.std);
    cr_assert_eq(ig_init_constant(t, 0.75), IG_OK);
    s = sample_stats(t);
    cr_assert(s.min == 0.75 && s.max == 0.75);
    /* Degenerate ranges. */
    cr_assert_eq(ig_init_uniform(t, 2, 2), IG_OK);
    cr_assert_eq(ig_tensor_get(t, 17), 2.0);
    cr_assert_eq(ig_init_normal(t, -1, 0), IG_OK);
    cr_assert_eq(ig_tensor_get(t, 17), -1.0);
    ig_scope_end(sc);
}

Test(nn, init_strided_target_and_determinism) {
    ig_scope *sc = ig_scope_begin();
    /* A transposed view of a buffer: every element is written, the layout respected. */
    ig_tensor *base = ig_full(IG_DIMS(40, 30), IG_F32, 100);
    ig_tensor *v = ig_transpose(base, 0, 1);
    ig_manual_seed(25);
    cr_assert_eq(ig_init_kaiming_uniform(v, 0, IG_FAN_IN), IG_OK, "%s", ig_last_error());
    double bound = sqrt(6.0 / 40); /* v is [30, 40]: fan_in 40 */
    stats s = sample_stats(base);
    cr_assert(s.max <= bound && s.min >= -bound, "all elements written");
    /* The same seed gives the same values as a contiguous [30, 40] tensor would get. */
    ig_tensor *c = ig_empty(IG_DIMS(30, 40), IG_F32);
    ig_manual_seed(25);
    ig_init_kaiming_uniform(c, 0, IG_FAN_IN);
    for (int i = 0; i < 1200; i++) cr_assert_eq(ig_tensor_get(v, i), ig_tensor_get(c, i));
    /* A slice with a step only touches its elements. */
    ig_tensor *row = ig_full(IG_DIMS(10), IG_F32, 9);
    cr_assert_eq(ig_init_uniform(ig_slice(row, 0, 0, 10, 2), 0, 1), IG_OK);
    for (int i = 0; i < 10; i++) {
        double x = ig_tensor_get(row, i);
        cr_assert(i % 2 ? x == 9 : (x >= 0 && x < 1), "%d: %g", i, x);
    }
    /* Zero elements: nothing to do. */
    cr_assert_eq(ig_init_kaiming_uniform(ig_empty(IG_DIMS(0, 5), IG_F32), 0, IG_FAN_IN), IG_OK);
    cr_assert_eq(ig_init_xavier_normal(ig_empty(IG_DIMS(4, 0), IG_F32), 1), IG_OK);
    ig_scope_end(sc);
    assert_no_live_bytes();
}

Test(nn, init_errors_name_the_function) {
    ig_scope *sc = ig_scope_begin();
    ig_tensor *v1 = ig_empty(IG_DIMS(5), IG_F32);
    ig_tensor *i2 = ig_zeros(IG_DIMS(2, 2), IG_I64);
    ig_tensor *f2 = ig_empty(IG_DIMS(2, 2), IG_F32);
    EXPECT_ERR(ig_init_kaiming_uniform(v1, 0, IG_FAN_IN) == IG_ERR_SHAPE, "ig_init_kaiming_uniform");
    EXPECT_ERR(ig_init_kaiming_normal(v1, 0, IG_FAN_IN) == IG_ERR_SHAPE, "ig_init_kaiming_normal");
    EXPECT_ERR(ig_init_xavier_uniform(v1, 1) == IG_ERR_SHAPE, "ig_init_xavier_uniform");
    EXPECT_ERR(ig_init_xavier_normal(v1, 1) == IG_ERR_SHAPE, "ig_init_xavier_normal");
    EXPECT_ERR(ig_init_kaiming_uniform(i2, 0, IG_FAN_IN) == IG_ERR_DTYPE, "ig_init_kaiming_uniform");
    EXPECT_ERR(ig_init_uniform(i2, 0, 1) == IG_ERR_DTYPE, "ig_init_uniform");
    EXPECT_ERR(ig_init_kaiming_uniform(f2, 0, (ig_fan_mode)7) == IG_ERR_ARG, "ig_init_kaiming_uniform");
    EXPECT_ERR(ig_init_uniform(f2, 1, 0) == IG_ERR_ARG, "ig_init_uniform");
    EXPECT_ERR(ig_init_uniform(f2, 0, INFINITY) == IG_ERR_ARG, "ig_init_uniform");
    EXPECT_ERR(ig_init_normal(f2, 0, -1) == IG_ERR_ARG, "ig_init_normal");
    EXPECT_ERR(ig_init_normal(NULL, 0, 1) == IG_ERR_ARG, "ig_init_normal");
    EXPECT_ERR(ig_init_constant(NULL, 0) == IG_ERR_ARG, "ig_init_constant");
    EXPECT_ERR(ig_init_xavier_uniform(NULL, 1) == IG_ERR_ARG, "ig_init_xavier_uniform");
    EXPECT_ERR(ig_init_kaiming_normal(NULL, 0, IG_FAN_IN) == IG_ERR_ARG, "ig_init_kaiming_normal");
    /* Integer tensors take constants. */
    cr_assert_eq(ig_init_constant(i2, 3), IG_OK);
    cr_assert_eq(ig_tensor_get(i2, 3), 3.0);
    ig_scope_end(sc);
}
