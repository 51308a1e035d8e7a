/*
 * tests/core/test_dropout.c — dropout: identity in eval mode and for p = 0, zeros for
 * p = 1, the mask against Philox words computed here, statistics on 100k elements, the
 * scale of kept elements, determinism under ig_manual_seed, strided inputs, gradients
 * (backward uses the forward's mask; ig_gradcheck with the generator reseeded in the
 * function so every evaluation draws the same mask) and the user-error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

Test(core, dropout_identity_when_eval_or_p0) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(1);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_randn(IG_DIMS(3, 4), (ig_dtype)dt);
        uint64_t seed0, off0, seed1, off1;
        ig_rng_get_state(&seed0, &off0);
        ig_tensor *a = ig_dropout(x, 0.5, false), *b = ig_dropout(x, 0.0, true), *c = ig_dropout(x, 1.0, false);
        cr_assert(a && b && c, "%s", ig_last_error());
        ig_rng_get_state(&seed1, &off1);
        cr_assert_eq(off0, off1, "identity must not draw random numbers");
        for (int64_t i = 0; i < 12; i++) {
            cr_assert_eq(ig_tensor_get(a, i), ig_tensor_get(x, i));
            cr_assert_eq(ig_tensor_get(b, i), ig_tensor_get(x, i));
            cr_assert_eq(ig_tensor_get(c, i), ig_tensor_get(x, i));
        }
    }
    ig_scope_end(s);
    /* A heap tensor gets a new reference the caller frees. */
    ig_tensor *h = ig_ones(IG_DIMS(2), IG_F32);
    ig_tensor *r = ig_dropout(h, 0.3, false);
    cr_assert(r);
    ig_tensor_free(r);
    cr_assert_eq(ig_tensor_get(h, 1), 1.0);
    ig_tensor_free(h);
}

Test(core, dropout_p1_gives_zeros) {
    ig_scope *s = ig_scope_begin();
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_randn(IG_DIMS(4, 5), (ig_dtype)dt);
        ig_set_requires_grad(x, true);
        ig_tensor *y = ig_dropout(x, 1.0, true);
        cr_assert(y, "%s", ig_last_error());
        for (int64_t i = 0; i < 20; i++) cr_assert_eq(ig_tensor_get(y, i), 0.0);
        cr_assert_eq(ig_backward(ig_sum(y, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        for (int64_t i = 0; i < 20; i++) cr_assert_eq(ig_tensor_get(ig_grad(x), i), 0.0);
    }
    ig_scope_end(s);
}

Test(core, dropout_mask_matches_philox_stream) {
    ig_scope *s = ig_scope_begin();
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        double p = 0.4, scale = 1.0 / 0.6;
        ig_tensor *x = ig_add_scalar(ig_arange(0, 37, 1, (ig_dtype)dt), 1.0); /* 1..37, never 0 */
        ig_manual_seed(99);
        ig_tensor *y = ig_dropout(x, p, true);
        cr_assert(y, "%s", ig_last_error());
        /* Element i is kept iff word i of the stream at (seed 99, offset 0) is >= p * 2^32. */
        for (int64_t i = 0; i < 37; i++) {
            uint32_t w[4];
            ig_philox4x32(99, 0, (uint64_t)(i / 4), w);
            bool keep = (double)w[i % 4] >= p * 4294967296.0;
            double want = keep ? (double)(i + 1) * scale : 0.0;
            cr_assert(fabs(ig_tensor_get(y, i) - want) <= 1e-6 * want, "element %lld: got %g want %g", (long long)i,
                      ig_tensor_get(y, i), want);
        }
        uint64_t seed, off;
        ig_rng_get_state(&seed, &off);
        cr_assert_eq(seed, 99u);
        cr_assert_eq(off, 10u, "37 words take 10 counters, got %llu", (unsigned long long)off);
    }
    ig_scope_end(s);
}

Test(core, dropout_statistics) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(5);
    double ps[3] = {0.1, 0.3, 0.75};
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        for (int k = 0; k < 3; k++) {
            double p = ps[k];
            int64_t n = 100000;
            ig_tensor *y = ig_dropout(ig_ones(IG_DIMS(n), (ig_dtype)dt), p, true);
            cr_assert(y, "%s", ig_last_error());
            double kept_value = dt == IG_F32 ? (double)(float)(1.0 / (1.0 - p)) : 1.0 / (1.0 - p);
            int64_t zeros = 0;
            double sum = 0;
            for (int64_t i = 0; i < n; i++) {
                double v = ig_tensor_get(y, i);
                if (v == 0.0) zeros++;
                else cr_assert_eq(v, kept_value, "kept element %lld is %.17g, want %.17g", (long long)i, v, kept_value);
                sum += v;
            }
            /* Standard deviation of the fraction is sqrt(p(1-p)/n) <= 0.0016: 0.01 is > 6 sigma. */
            double frac = (double)zeros / (double)n;
            cr_assert(fabs(frac - p) < 0.01, "p %g: fraction zeroed %g", p, frac);
            cr_assert(fabs(sum / (double)n - 1.0) < 0.05, "p %g: mean %g", p, sum / (double)n);
        }
    }
    ig_scope_end(s);
}

Test(core, dropout_deterministic_under_seed) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_DIMS(8, 16), IG_F32);
    ig_manual_seed(1234);
    ig_tensor *a = ig_dropout(x, 0.5, true);
    ig_tensor *c = ig_dropout(x, 0.5, true); /* the generator moved on: another mask */
    ig_manual_seed(1234);
    ig_tensor *b = ig_dropout(x, 0.5, true);
    cr_assert(a && b && c, "%s", ig_last_error());
    int differ = 0;
    for (int64_t i = 0; i < 128; i++) {
        cr_assert_eq(ig_tensor_get(a, i), ig_tensor_get(b, i));
        if (ig_tensor_get(a, i) != ig_tensor_get(c, i)) differ++;
    }
    cr_assert_gt(differ, 20);
    ig_scope_end(s);
}

Test(core, dropout_strided_and_empty) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(8);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *base = ig_add_scalar(ig_rand(IG_DIMS(6, 10), (ig_dtype)dt), 1.0); /* in [1, 2) */
        ig_tensor *views[3] = {ig_transpose(base, 0, 1), ig_slice(base, 1, 1, 10, 3),
                               ig_expand(ig_slice(base, 0, 0, 1, 1), IG_DIMS(4, 10))};
        for (int k = 0; k < 3; k++) {
            ig_tensor *x = views[k];
            ig_tensor *y = ig_dropout(x, 0.5, true);
            cr_assert(y, "%s", ig_last_error());
            cr_assert_eq(ig_tensor_ndim(y), 2);
            cr_assert_eq(ig_tensor_shape(y)[0], ig_tensor_shape(x)[0]);
            cr_assert_eq(ig_tensor_shape(y)[1], ig_tensor_shape(x)[1]);
            for (int64_t i = 0; i < ig_tensor_numel(x); i++) {
                double v = ig_tensor_get(y, i), want = ig_tensor_get(x, i) * 2.0;
                cr_assert(v == 0.0 || fabs(v - want) <= 1e-6 * want, "view %d element %lld: %g vs %g", k,
                          (long long)i, v, want);
            }
        }
        ig_tensor *e = ig_dropout(ig_zeros(IG_DIMS(3, 0), (ig_dtype)dt), 0.5, true);
        cr_assert(e, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(e), 0);
        cr_assert_eq(ig_tensor_get(ig_dropout(ig_scalar(3.0, (ig_dtype)dt), 0.0, true), 0), 3.0);
        ig_tensor *sc = ig_dropout(ig_scalar(3.0, (ig_dtype)dt), 0.5, true);
        cr_assert(sc, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_ndim(sc), 0);
        cr_assert(ig_item(sc) == 0.0 || ig_item(sc) == 6.0);
    }
    ig_scope_end(s);
}

Test(core, dropout_backward_uses_forward_mask) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(21);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_add_scalar(ig_rand(IG_DIMS(5, 7), (ig_dtype)dt), 0.5);
        ig_set_requires_grad(x, true);
        ig_tensor *y = ig_dropout(x, 0.3, true);
        /* Draw more numbers between forward and backward: backward must not redraw. */
        ig_rand(IG_DIMS(100), IG_F32);
        ig_tensor *seed = ig_arange(1, 36, 1, (ig_dtype)dt);
        cr_assert_eq(ig_backward(y, ig_reshape(seed, IG_DIMS(5, 7))), IG_OK, "%s", ig_last_error());
        double scale = 1.0 / 0.7;
        for (int64_t i = 0; i < 35; i++) {
            bool kept = ig_tensor_get(y, i) != 0.0;
            double want = kept ? (double)(i + 1) * scale : 0.0;
            cr_assert(fabs(ig_tensor_get(ig_grad(x), i) - want) <= 1e-6 * (1 + want), "element %lld", (long long)i);
        }
    }
    ig_scope_end(s);
}

typedef struct {
    double p;
    bool strided;
} drop_case;

static ig_tensor *f_dropout(ig_tensor *const *in, int n, void *vctx) {
    (void)n;
    drop_case *c = vctx;
    ig_manual_seed(777); /* every evaluation draws the same mask */
    ig_tensor *x = c->strided ? ig_transpose(in[0], 0, 1) : in[0];
    return ig_dropout(x, c->p, true);
}

Test(core, dropout_gradcheck) {
    ig_manual_seed(22);
    double ps[3] = {0.2, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        for (int strided = 0; strided < 2; strided++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *x = ig_randn(IG_DIMS(4, 6), IG_F64);
            ig_set_requires_grad(x, true);
            drop_case c = {ps[k], strided};
            cr_assert(ig_gradcheck(f_dropout, &x, 1, &c, NULL) == IG_OK, "p %g strided %d: %s", ps[k], strided,
                      ig_last_error());
            ig_scope_end(s);
        }
    }
}

Test(core, dropout_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_DIMS(3), IG_F32);
    ig_clear_error();
    cr_assert_null(ig_dropout(NULL, 0.5, true));
    ERR_HAS("ig_dropout");
    cr_assert_null(ig_dropout(x, -0.1, true));
    ERR_HAS("ig_dropout: p must be in [0, 1]");
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert_null(ig_dropout(x, 1.5, true));
    ERR_HAS("ig_dropout: p must be in [0, 1], got 1.5");
    cr_assert_null(ig_dropout(x, NAN, true));
    ERR_HAS("ig_dropout: p must be in [0, 1]");
    cr_assert_null(ig_dropout(x, 2.0, false)); /* checked in eval mode too */
    ERR_HAS("ig_dropout");
    cr_assert_null(ig_dropout(ig_ones(IG_DIMS(3), IG_I64), 0.5, true));
    ERR_HAS("ig_dropout");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ig_scope_end(s);
}
