/*
 * tests/core/test_norm.c — batch norm and layer norm: values against plain-loop references
 * written here (training statistics for [N,C], [N,C,L] and [N,C,H,W], eval with running
 * stats, optional affine, non-contiguous inputs, empty batches), the running-stat update
 * after one and two calls checked by the hand formula, gradients (ig_gradcheck in f64, in
 * train and eval mode) and every user-error path.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static void check_close(ig_tensor *y, const double *want, int64_t n, double tol) {
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(y), n);
    for (int64_t i = 0; i < n; i++) {
        double got = ig_tensor_get(y, i);
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])), "element %lld: got %.10g want %.10g",
                  (long long)i, got, want[i]);
    }
}

/* ---- batch norm reference ---------------------------------------------------------------- */

/* x [N,C,S...] read through ig_tensor_get (any strides); per-channel batch mean and biased
 * variance into mean/var (C entries). */
static void ref_bn_stats(ig_tensor *x, double *mean, double *var) {
    int64_t N = ig_tensor_size(x, 0), C = ig_tensor_size(x, 1), S = ig_tensor_numel(x) / (N * C);
    for (int64_t c = 0; c < C; c++) {
        long double s = 0, v = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++) s += ig_tensor_get(x, (n * C + c) * S + k);
        long double m = s / (N * S);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++) {
                long double d = ig_tensor_get(x, (n * C + c) * S + k) - m;
                v += d * d;
            }
        mean[c] = (double)m;
        var[c] = (double)(v / (N * S));
    }
}

/* y = (x - mean) / sqrt(var + eps) * w + b, with w/b optional (NULL: 1 and 0). */
static void ref_bn_apply(ig_tensor *x, const double *mean, const double *var, ig_tensor *w, ig_tensor *b,
                         double eps, double *out) {
    int64_t N = ig_tensor_size(x, 0), C = ig_tensor_size(x, 1), S = ig_tensor_numel(x) / (N * C);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < S; k++) {
                int64_t i = (n * C + c) * S + k;
                double y = (ig_tensor_get(x, i) - mean[c]) / sqrt(var[c] + eps);
                if (w) y *= ig_tensor_get(w, c);
                if (b) y += ig_tensor_get(b, c);
                out[i] = y;
            }
}

static void check_bn_train(ig_tensor *x, ig_tensor *w, ig_tensor *b) {
    double mean[16], var[16], want[512];
    cr_assert_leq(ig_tensor_size(x, 1), 16);
    cr_assert_leq(ig_tensor_numel(x), 512);
    ref_bn_stats(x, mean, var);
    ref_bn_apply(x, mean, var, w, b, 1e-5, want);
    ig_tensor *y = ig_batch_norm(x, NULL, NULL, w, b, true, 0.1, 1e-5);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), ig_tensor_ndim(x));
    for (int k = 0; k < ig_tensor_ndim(x); k++) cr_assert_eq(ig_tensor_shape(y)[k], ig_tensor_shape(x)[k]);
    cr_assert_eq(ig_tensor_dtype(y), ig_tensor_dtype(x));
    check_close(y, want, ig_tensor_numel(x), ig_tensor_dtype(x) == IG_F32 ? 1e-5 : 1e-12);
}

Test(core, batch_norm_train_values) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(101);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        ig_tensor *w = ig_randn(IG_DIMS(3), d), *b = ig_randn(IG_DIMS(3), d);
        /* Shifted and scaled inputs: the statistics must really be computed. */
        ig_tensor *x2 = ig_add_scalar(ig_mul_scalar(ig_randn(IG_DIMS(5, 3), d), 3.0), 2.0);
        check_bn_train(x2, w, b);
        check_bn_train(x2, NULL, NULL);
        check_bn_train(x2, w, NULL);
        check_bn_train(x2, NULL, b);
        check_bn_train(ig_randn(IG_DIMS(2, 3, 4), d), w, b);
        check_bn_train(ig_randn(IG_DIMS(2, 3, 2, 3), d), w, b);
        check_bn_train(ig_randn(IG_DIMS(2, 3, 2, 3), d), NULL, NULL);
        /* One sample, several positions per channel is allowed. */
        check_bn_train(ig_randn(IG_DIMS(1, 3, 2, 2), d), w, b);
        /* size-1 channel dim */
        check_bn_train(ig_randn(IG_DIMS(4, 1, 3), d), NULL, NULL);
    }
    ig_scope_end(s);
}

Test(core, batch_norm_train_noncontiguous) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(102);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        ig_tensor *w = ig_randn(IG_DIMS(3), d), *b = ig_randn(IG_DIMS(3), d);
        /* [3,5] transposed to [5,3]; [2,2,3,3] permuted to [2,3,3,2]; a sliced channel dim;
         * strided weight and bias. */
        check_bn_train(ig_transpose(ig_randn(IG_DIMS(3, 5), d), 0, 1), w, b);
        check_bn_train(ig_permute(ig_randn(IG_DIMS(2, 2, 3, 3), d), (int[]){0, 3, 1, 2}), w, b);
        check_bn_train(ig_slice(ig_randn(IG_DIMS(4, 9, 2), d), 1, 0, 9, 3), w, b);
        ig_tensor *ws = ig_slice(ig_randn(IG_DIMS(6), d), 0, 0, 6, 2);
        check_bn_train(ig_randn(IG_DIMS(4, 3), d), ws, ig_expand(ig_randn(IG_DIMS(1), d), IG_DIMS(3)));
        /* An expanded input: each channel constant over the batch -> zeros plus bias. */
        check_bn_train(ig_expand(ig_randn(IG_DIMS(1, 3), d), IG_DIMS(4, 3)), w, b);
    }
    ig_scope_end(s);
}

Test(core, batch_norm_running_stats_update) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(103);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        double tol = d == IG_F32 ? 1e-6 : 1e-13;
        ig_tensor *rm = ig_zeros(IG_DIMS(3), d), *rv = ig_ones(IG_DIMS(3), d);
        ig_tensor *x1 = ig_add_scalar(ig_randn(IG_DIMS(4, 3, 2), d), 1.5);
        ig_tensor *x2 = ig_mul_scalar(ig_randn(IG_DIMS(4, 3, 2), d), 2.0);
        double m1[3], v1[3], m2[3], v2[3];
        ref_bn_stats(x1, m1, v1);
        ref_bn_stats(x2, m2, v2);
        double unbias = 8.0 / 7.0; /* n = 4 * 2 values per channel */
        cr_assert(ig_batch_norm(x1, rm, rv, NULL, NULL, true, 0.1, 1e-5), "%s", ig_last_error());
        for (int c = 0; c < 3; c++) {
            double wm = 0.9 * 0.0 + 0.1 * m1[c], wv = 0.9 * 1.0 + 0.1 * v1[c] * unbias;
            cr_assert(fabs(ig_tensor_get(rm, c) - wm) <= tol * (1 + fabs(wm)), "rm[%d] %g vs %g", c,
                      ig_tensor_get(rm, c), wm);
            cr_assert(fabs(ig_tensor_get(rv, c) - wv) <= tol * (1 + fabs(wv)), "rv[%d] %g vs %g", c,
                      ig_tensor_get(rv, c), wv);
        }
        cr_assert(ig_batch_norm(x2, rm, rv, NULL, NULL, true, 0.1, 1e-5), "%s", ig_last_error());
        for (int c = 0; c < 3; c++) {
            double wm = 0.9 * (0.1 * m1[c]) + 0.1 * m2[c];
            double wv = 0.9 * (0.9 + 0.1 * v1[c] * unbias) + 0.1 * v2[c] * unbias;
            cr_assert(fabs(ig_tensor_get(rm, c) - wm) <= tol * (1 + fabs(wm)), "rm[%d] %g vs %g", c,
                      ig_tensor_get(rm, c), wm);
            cr_assert(fabs(ig_tensor_get(rv, c) - wv) <= tol * (1 + fabs(wv)), "rv[%d] %g vs %g", c,
                      ig_tensor_get(rv, c), wv);
        }
        /* Only one of the two running stats given: that one is updated. Momentum 1 copies. */
        ig_tensor *rm_only = ig_zeros(IG_DIMS(3), d);
        cr_assert(ig_batch_norm(x1, rm_only, NULL, NULL, NULL, true, 1.0, 1e-5), "%s", ig_last_error());
        for (int c = 0; c < 3; c++) cr_assert(fabs(ig_tensor_get(rm_only, c) - m1[c]) <= tol * (1 + fabs(m1[c])));
        /* Strided running stats are updated in place through their strides. */
        ig_tensor *base = ig_zeros(IG_DIMS(6), d);
        ig_tensor *rs = ig_slice(base, 0, 1, 6, 2);
        cr_assert(ig_batch_norm(x1, rs, NULL, NULL, NULL, true, 0.5, 1e-5), "%s", ig_last_error());
        for (int c = 0; c < 3; c++) {
            cr_assert(fabs(ig_tensor_get(base, 2 * c + 1) - 0.5 * m1[c]) <= tol * (1 + fabs(m1[c])));
            cr_assert_eq(ig_tensor_get(base, 2 * c), 0.0);
        }
        /* Training output never depends on the running stats. */
        double mean[3], var[3], want[24];
        ref_bn_stats(x2, mean, var);
        ref_bn_apply(x2, mean, var, NULL, NULL, 1e-5, want);
        check_close(ig_batch_norm(x2, rm, rv, NULL, NULL, true, 0.1, 1e-5), want, 24, d == IG_F32 ? 1e-5 : 1e-12);
    }
    ig_scope_end(s);
}

Test(core, batch_norm_eval_uses_running_stats) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(104);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        double tol = d == IG_F32 ? 1e-5 : 1e-12;
        ig_tensor *rm = ig_from_data(IG_DIMS(3), IG_F64, (double[]){0.5, -1.0, 2.0});
        ig_tensor *rv = ig_from_data(IG_DIMS(3), IG_F64, (double[]){1.5, 0.25, 4.0});
        rm = ig_to_dtype(rm, d);
        rv = ig_to_dtype(rv, d);
        ig_tensor *w = ig_randn(IG_DIMS(3), d), *b = ig_randn(IG_DIMS(3), d);
        double mean[3] = {0.5, -1.0, 2.0}, var[3] = {1.5, 0.25, 4.0}, want[64];
        ig_tensor *xs[3] = {ig_randn(IG_DIMS(4, 3), d), ig_randn(IG_DIMS(2, 3, 2, 2), d),
                            ig_transpose(ig_randn(IG_DIMS(2, 3, 4), d), 0, 2)};
        for (int k = 0; k < 3; k++) {
            ig_tensor *x = xs[k]; /* the last is [4,3,2] strided */
            ref_bn_apply(x, mean, var, w, b, 1e-3, want);
            check_close(ig_batch_norm(x, rm, rv, w, b, false, 0.1, 1e-3), want, ig_tensor_numel(x), tol);
            ref_bn_apply(x, mean, var, NULL, NULL, 1e-3, want);
            check_close(ig_batch_norm(x, rm, rv, NULL, NULL, false, 0.1, 1e-3), want, ig_tensor_numel(x), tol);
        }
        /* Eval never changes the running stats, and a single value per channel is fine. */
        ig_tensor *one = ig_randn(IG_DIMS(1, 3), d);
        cr_assert(ig_batch_norm(one, rm, rv, NULL, NULL, false, 0.1, 1e-5), "%s", ig_last_error());
        for (int c = 0; c < 3; c++) {
            cr_assert_float_eq(ig_tensor_get(rm, c), mean[c], 1e-7);
            cr_assert_float_eq(ig_tensor_get(rv, c), var[c], 1e-7);
        }
    }
    ig_scope_end(s);
}

Test(core, batch_norm_empty_batch) {
    ig_scope *s = ig_scope_begin();
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        ig_tensor *rm = ig_full(IG_DIMS(3), d, 0.25), *rv = ig_full(IG_DIMS(3), d, 2.0);
        ig_tensor *x = ig_zeros(IG_DIMS(0, 3, 2), d);
        ig_tensor *y = ig_batch_norm(x, rm, rv, NULL, NULL, true, 0.1, 1e-5);
        cr_assert(y, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(y), 0);
        cr_assert_eq(ig_tensor_shape(y)[1], 3);
        for (int c = 0; c < 3; c++) {
            cr_assert_eq(ig_tensor_get(rm, c), 0.25);
            cr_assert_eq(ig_tensor_get(rv, c), 2.0);
        }
        y = ig_batch_norm(ig_zeros(IG_DIMS(2, 0), d), NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
        cr_assert(y, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(y), 0);
    }
    ig_scope_end(s);
}

/* ---- batch norm gradients ---------------------------------------------------------------- */

typedef struct {
    bool training;
    bool strided; /* feed x transposed */
    ig_tensor *rm, *rv;
} bn_case;

/* inputs: x, weight (may be absent: n == 1), bias. */
static ig_tensor *f_bn(ig_tensor *const *in, int n, void *vctx) {
    bn_case *c = vctx;
    ig_tensor *x = c->strided ? ig_transpose(in[0], 0, 2) : in[0];
    ig_tensor *y = ig_batch_norm(x, c->rm, c->rv, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, c->training, 0.1, 1e-5);
    /* Weigh the outputs unevenly so sum-to-zero directions are not invisible. */
    ig_tensor *wts = ig_reshape(ig_arange(1, 1 + (double)ig_tensor_numel(y), 1, IG_F64), ig_tensor_ndim(y), ig_tensor_shape(y));
    return ig_mul(y, wts);
}

Test(core, batch_norm_gradcheck) {
    ig_manual_seed(105);
    for (int training = 0; training < 2; training++) {
        for (int strided = 0; strided < 2; strided++) {
            ig_scope *s = ig_scope_begin();
            /* x is [3,2,4] (or [4,2,3] transposed to [3,2,4]): N=3, C=2, L=4. */
            ig_tensor *x = strided ? ig_randn(IG_DIMS(4, 2, 3), IG_F64) : ig_randn(IG_DIMS(3, 2, 4), IG_F64);
            ig_tensor *w = ig_randn(IG_DIMS(2), IG_F64), *b = ig_randn(IG_DIMS(2), IG_F64);
            ig_tensor *rm = ig_randn(IG_DIMS(2), IG_F64);
            ig_tensor *rv = ig_add_scalar(ig_rand(IG_DIMS(2), IG_F64), 0.5);
            ig_set_requires_grad(x, true);
            ig_set_requires_grad(w, true);
            ig_set_requires_grad(b, true);
            bn_case c = {training, strided, training ? NULL : rm, training ? NULL : rv};
            cr_assert(ig_gradcheck(f_bn, (ig_tensor *[]){x, w, b}, 3, &c, NULL) == IG_OK, "train %d strided %d: %s",
                      training, strided, ig_last_error());
            /* x alone (no affine). */
            cr_assert(ig_gradcheck(f_bn, &x, 1, &c, NULL) == IG_OK, "train %d x only: %s", training, ig_last_error());
            /* Only the parameters need grad. */
            ig_tensor *xc = ig_randn(IG_DIMS(3, 2, 4), IG_F64);
            bn_case c2 = {training, false, c.rm, c.rv};
            cr_assert(ig_gradcheck(f_bn, (ig_tensor *[]){xc, w, b}, 3, &c2, NULL) == IG_OK, "%s", ig_last_error());
            ig_scope_end(s);
        }
    }
    /* 2-D and 4-D inputs in training mode. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x2 = ig_randn(IG_DIMS(5, 3), IG_F64), *x4 = ig_randn(IG_DIMS(2, 2, 2, 3), IG_F64);
    ig_tensor *w3 = ig_randn(IG_DIMS(3), IG_F64), *w2 = ig_randn(IG_DIMS(2), IG_F64);
    ig_tensor *b3 = ig_randn(IG_DIMS(3), IG_F64), *b2 = ig_randn(IG_DIMS(2), IG_F64);
    ig_tensor *all[6] = {x2, x4, w3, w2, b3, b2};
    for (int k = 0; k < 6; k++) ig_set_requires_grad(all[k], true);
    bn_case c = {true, false, NULL, NULL};
    cr_assert(ig_gradcheck(f_bn, (ig_tensor *[]){x2, w3, b3}, 3, &c, NULL) == IG_OK, "%s", ig_last_error());
    cr_assert(ig_gradcheck(f_bn, (ig_tensor *[]){x4, w2, b2}, 3, &c, NULL) == IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, batch_norm_backward_sums) {
    /* Training mode: the gradient of sum(y) w.r.t. x is zero, dbias = N*S, dweight = 0. */
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(106);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        ig_tensor *x = ig_randn(IG_DIMS(4, 3, 2), d), *w = ig_randn(IG_DIMS(3), d), *b = ig_randn(IG_DIMS(3), d);
        ig_set_requires_grad(x, true);
        ig_set_requires_grad(w, true);
        ig_set_requires_grad(b, true);
        cr_assert_eq(ig_backward(ig_sum(ig_batch_norm(x, NULL, NULL, w, b, true, 0.1, 1e-5), 0, NULL, false), NULL), IG_OK,
                     "%s", ig_last_error());
        double tol = d == IG_F32 ? 1e-5 : 1e-12;
        for (int64_t i = 0; i < 24; i++) cr_assert(fabs(ig_tensor_get(ig_grad(x), i)) <= tol);
        for (int c = 0; c < 3; c++) {
            cr_assert(fabs(ig_tensor_get(ig_grad(b), c) - 8.0) <= tol);
            cr_assert(fabs(ig_tensor_get(ig_grad(w), c)) <= tol);
        }
    }
    ig_scope_end(s);
}

/* ---- f32 against a double reference ------------------------------------------------------ */

/* |got - want| <= tol * (scale + |want|) over n elements of t against want (doubles). */
static void check_near(ig_tensor *t, const double *want, int64_t n, double tol, double scale, const char *what) {
    cr_assert(t, "%s: %s", what, ig_last_error());
    cr_assert_eq(ig_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        double got = ig_tensor_get(t, i);
        cr_assert(fabs(got - want[i]) <= tol * (scale + fabs(want[i])), "%s element %lld: got %.10g want %.10g", what,
                  (long long)i, got, want[i]);
    }
}

/* Training forward and backward of an f32 batch norm on contiguous x [N,C,S...] against a
 * plain long-double computation from the same f32 values: y, the running stats after one
 * step from (0, 1), and the gradients of sum(y * r) for x, weight and bias. */
static void check_bn_f32_train(ig_tensor *x) {
    int64_t N = ig_tensor_size(x, 0), C = ig_tensor_size(x, 1), n = ig_tensor_numel(x), S = n / (N * C);
    ig_tensor *w = ig_add_scalar(ig_rand(IG_DIMS(C), IG_F32), 0.5), *b = ig_randn(IG_DIMS(C), IG_F32);
    ig_tensor *r = ig_randn(ig_tensor_ndim(x), ig_tensor_shape(x), IG_F32);
    ig_tensor *rm = ig_zeros(IG_DIMS(C), IG_F32), *rv = ig_ones(IG_DIMS(C), IG_F32);
    double *want = calloc((size_t)(3 * n + 6 * C), sizeof(double));
    cr_assert(want);
    double *want_dx = want + n, *xhat = want + 2 * n, *mean = want + 3 * n, *var = mean + C;
    double *want_rm = var + C, *want_rv = want_rm + C, *want_dw = want_rv + C, *want_db = want_dw + C;
    for (int64_t c = 0; c < C; c++) {
        long double s = 0, v = 0, cnt = (long double)(N * S);
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) s += ig_tensor_get(x, (i * C + c) * S + k);
        long double m = s / cnt;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                long double d = ig_tensor_get(x, (i * C + c) * S + k) - m;
                v += d * d;
            }
        mean[c] = (double)m;
        var[c] = (double)(v / cnt);
        want_rm[c] = 0.1 * mean[c];
        want_rv[c] = 0.9 + 0.1 * (double)(v / (cnt - 1));
        double is = 1.0 / sqrt(var[c] + 1e-5), wc = ig_tensor_get(w, c);
        long double sg = 0, sgx = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                int64_t e = (i * C + c) * S + k;
                xhat[e] = (double)(((long double)ig_tensor_get(x, e) - m) * is);
                want[e] = xhat[e] * wc + ig_tensor_get(b, c);
                sg += ig_tensor_get(r, e);
                sgx += (long double)ig_tensor_get(r, e) * xhat[e];
            }
        want_db[c] = (double)sg;
        want_dw[c] = (double)sgx;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                int64_t e = (i * C + c) * S + k;
                want_dx[e] = (double)(wc * is * (ig_tensor_get(r, e) - sg / cnt - xhat[e] * sgx / cnt));
            }
    }
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    ig_tensor *y = ig_batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    check_near(y, want, n, 2e-6, 1, "y");
    /* The mean's error is relative to the channel's spread, not to the mean itself. */
    double spread = INFINITY;
    for (int64_t c = 0; c < C; c++) spread = fmin(spread, sqrt(var[c]));
    check_near(rm, want_rm, C, 2e-6, 0.1 * spread, "running_mean");
    check_near(rv, want_rv, C, 2e-6, 0, "running_var");
    cr_assert_eq(ig_backward(ig_sum(ig_mul(y, r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    /* dx is a difference of terms of size weight * invstd * |r|: its float rounding is
     * relative to the largest of them, not to each (possibly cancelled) element. */
    double dx_scale = 1;
    for (int64_t e = 0; e < n; e++) dx_scale = fmax(dx_scale, fabs(want_dx[e]));
    check_near(ig_grad(x), want_dx, n, 2e-6, dx_scale, "dx");
    check_near(ig_grad(w), want_dw, C, 2e-6, sqrt((double)(N * S)), "dweight");
    check_near(ig_grad(b), want_db, C, 2e-6, sqrt((double)(N * S)), "dbias");
    free(want);
}

Test(core, batch_norm_f32_matches_double_reference) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(107);
    /* Plane sizes that leave every kind of tail after the 16- and 8-wide blocks: 37 (16 + 16
     * + 5), 27 (16 + 8 + 3), 3 (scalar only), 400 (25 blocks), 1 ([N,C] input). */
    check_bn_f32_train(ig_add_scalar(ig_mul_scalar(ig_randn(IG_DIMS(3, 5, 37), IG_F32), 2.0), 0.5));
    check_bn_f32_train(ig_randn(IG_DIMS(2, 3, 9, 3), IG_F32));
    check_bn_f32_train(ig_randn(IG_DIMS(4, 2, 3), IG_F32));
    check_bn_f32_train(ig_randn(IG_DIMS(5, 3, 20, 20), IG_F32));
    check_bn_f32_train(ig_randn(IG_DIMS(9, 4), IG_F32));
    /* A large offset over small noise: a variance (or a normalisation) formed from x^2 or x * a
     * in float would lose all but the first digits to cancellation. */
    check_bn_f32_train(ig_add_scalar(ig_mul_scalar(ig_randn(IG_DIMS(6, 4, 29), IG_F32), 0.01), 1000.0));
    check_bn_f32_train(ig_add_scalar(ig_mul_scalar(ig_randn(IG_DIMS(3, 2, 7, 7), IG_F32), 0.001), -300.0));
    ig_scope_end(s);
}

/* Eval mode on the f32 path: running stats far from zero with a small variance. */
Test(core, batch_norm_f32_eval_large_offset) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(108);
    ig_tensor *x = ig_add_scalar(ig_mul_scalar(ig_randn(IG_DIMS(3, 2, 19), IG_F32), 0.01), 1000.0);
    ig_tensor *rm = ig_full(IG_DIMS(2), IG_F32, 1000.001), *rv = ig_full(IG_DIMS(2), IG_F32, 1e-4);
    ig_tensor *w = ig_randn(IG_DIMS(2), IG_F32), *b = ig_randn(IG_DIMS(2), IG_F32);
    double mean[2] = {ig_tensor_get(rm, 0), ig_tensor_get(rm, 1)}, var[2] = {ig_tensor_get(rv, 0), ig_tensor_get(rv, 1)};
    double want[114] = {0};
    ref_bn_apply(x, mean, var, w, b, 1e-5, want);
    check_near(ig_batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5), want, 114, 2e-6, 1, "y");
    ig_scope_end(s);
}

Test(core, batch_norm_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(4, 3), IG_F32);
    ig_tensor *c3 = ig_ones(IG_DIMS(3), IG_F32), *c4 = ig_ones(IG_DIMS(4), IG_F32);
    ig_tensor *c3d = ig_ones(IG_DIMS(3), IG_F64), *c13 = ig_ones(IG_DIMS(1, 3), IG_F32);

    ig_clear_error();
    cr_assert_null(ig_batch_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm");
    ERR_HAS("x");
    cr_assert_null(ig_batch_norm(ig_randn(IG_DIMS(4), IG_F32), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm");
    ERR_HAS("at least 2 dims");
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert_null(ig_batch_norm(ig_scalar(1, IG_F32), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm");
    cr_assert_null(ig_batch_norm(ig_ones(IG_DIMS(4, 3), IG_I64), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    /* Wrong shapes of each per-channel tensor. */
    cr_assert_null(ig_batch_norm(x, c4, c3, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: running_mean");
    ERR_HAS("[4]");
    cr_assert_null(ig_batch_norm(x, c3, c4, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: running_var");
    cr_assert_null(ig_batch_norm(x, NULL, NULL, c4, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: weight");
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert_null(ig_batch_norm(x, NULL, NULL, c13, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: weight");
    cr_assert_null(ig_batch_norm(x, NULL, NULL, NULL, c4, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: bias");
    /* dtype mismatches. */
    cr_assert_null(ig_batch_norm(x, NULL, NULL, c3d, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: weight is float64");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    cr_assert_null(ig_batch_norm(x, NULL, NULL, NULL, c3d, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: bias");
    cr_assert_null(ig_batch_norm(x, c3d, c3, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: running_mean");
    cr_assert_null(ig_batch_norm(x, c3, c3d, NULL, NULL, false, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: running_var");
    /* Eval needs both running stats. */
    cr_assert_null(ig_batch_norm(x, NULL, NULL, c3, c3, false, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm");
    ERR_HAS("running_mean and running_var");
    cr_assert_null(ig_batch_norm(x, c3, NULL, NULL, NULL, false, 0.1, 1e-5));
    ERR_HAS("running_mean and running_var");
    /* One value per channel in training. */
    cr_assert_null(ig_batch_norm(ig_randn(IG_DIMS(1, 3), IG_F32), c3, c3, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("ig_batch_norm: expected more than 1 value per channel when training");
    cr_assert_null(ig_batch_norm(ig_randn(IG_DIMS(1, 3, 1, 1), IG_F32), NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    ERR_HAS("more than 1 value per channel");
    cr_assert_eq(ig_tensor_get(c3, 0), 1.0); /* the failed call left running stats alone */
    ig_scope_end(s);
}

/* ---- layer norm -------------------------------------------------------------------------- */

/* Reference over the last nd dims of x (any strides); w/b (normalized shape) optional. */
static void ref_ln(ig_tensor *x, int nd, ig_tensor *w, ig_tensor *b, double eps, double *out) {
    int64_t D = 1;
    for (int k = 0; k < nd; k++) D *= ig_tensor_size(x, -1 - k);
    int64_t R = ig_tensor_numel(x) / D;
    for (int64_t r = 0; r < R; r++) {
        long double s = 0, v = 0;
        for (int64_t k = 0; k < D; k++) s += ig_tensor_get(x, r * D + k);
        long double m = s / D;
        for (int64_t k = 0; k < D; k++) {
            long double d = ig_tensor_get(x, r * D + k) - m;
            v += d * d;
        }
        double is = 1.0 / sqrt((double)(v / D) + eps);
        for (int64_t k = 0; k < D; k++) {
            double y = (ig_tensor_get(x, r * D + k) - (double)m) * is;
            if (w) y *= ig_tensor_get(w, k);
            if (b) y += ig_tensor_get(b, k);
            out[r * D + k] = y;
        }
    }
}

static void check_ln(ig_tensor *x, int nd, ig_tensor *w, ig_tensor *b) {
    double want[512];
    cr_assert_leq(ig_tensor_numel(x), 512);
    ref_ln(x, nd, w, b, 1e-5, want);
    const int64_t *ns = ig_tensor_shape(x) + ig_tensor_ndim(x) - nd;
    ig_tensor *y = ig_layer_norm(x, nd, ns, w, b, 1e-5);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), ig_tensor_ndim(x));
    cr_assert_eq(ig_tensor_dtype(y), ig_tensor_dtype(x));
    check_close(y, want, ig_tensor_numel(x), ig_tensor_dtype(x) == IG_F32 ? 1e-5 : 1e-12);
}

Test(core, layer_norm_values) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(201);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_dtype d = (ig_dtype)dt;
        ig_tensor *x = ig_add_scalar(ig_mul_scalar(ig_randn(IG_DIMS(2, 3, 4), d), 2.0), -1.0);
        ig_tensor *w4 = ig_randn(IG_DIMS(4), d), *b4 = ig_randn(IG_DIMS(4), d);
        ig_tensor *w34 = ig_randn(IG_DIMS(3, 4), d), *b34 = ig_randn(IG_DIMS(3, 4), d);
        check_ln(x, 1, w4, b4);
        check_ln(x, 1, NULL, NULL);
        check_ln(x, 1, w4, NULL);
        check_ln(x, 1, NULL, b4);
        check_ln(x, 2, w34, b34);
        check_ln(x, 3, NULL, NULL);
        check_ln(ig_randn(IG_DIMS(5), d), 1, NULL, NULL);
        check_ln(ig_randn(IG_DIMS(3, 1), d), 1, NULL, NULL); /* one element per group: zeros */
        /* Non-contiguous x and parameters. */
        check_ln(ig_transpose(ig_randn(IG_DIMS(4, 3), d), 0, 1), 1, w4, b4);
        check_ln(ig_permute(ig_randn(IG_DIMS(4, 2, 3), d), (int[]){1, 2, 0}), 2, ig_transpose(ig_randn(IG_DIMS(4, 3), d), 0, 1), b34);
        check_ln(ig_slice(ig_randn(IG_DIMS(3, 8), d), 1, 0, 8, 2), 1, ig_slice(ig_randn(IG_DIMS(8), d), 0, 1, 8, 2), b4);
        check_ln(ig_expand(ig_randn(IG_DIMS(1, 4), d), IG_DIMS(3, 4)), 1, w4, b4);
        /* Zero-size leading dim. */
        ig_tensor *e = ig_layer_norm(ig_zeros(IG_DIMS(0, 4), d), 1, (int64_t[]){4}, w4, b4, 1e-5);
        cr_assert(e, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(e), 0);
    }
    ig_scope_end(s);
}

typedef struct {
    int nd;
    bool strided;
} ln_case;

static ig_tensor *f_ln(ig_tensor *const *in, int n, void *vctx) {
    ln_case *c = vctx;
    ig_tensor *x = c->strided ? ig_transpose(in[0], 0, 1) : in[0];
    const int64_t *ns = ig_tensor_shape(x) + ig_tensor_ndim(x) - c->nd;
    ig_tensor *y = ig_layer_norm(x, c->nd, ns, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, 1e-5);
    ig_tensor *wts = ig_reshape(ig_arange(1, 1 + (double)ig_tensor_numel(y), 1, IG_F64), ig_tensor_ndim(y), ig_tensor_shape(y));
    return ig_mul(y, wts);
}

Test(core, layer_norm_gradcheck) {
    ig_manual_seed(202);
    for (int nd = 1; nd <= 2; nd++) {
        for (int strided = 0; strided < 2; strided++) {
            ig_scope *s = ig_scope_begin();
            /* x [2,3,4] (strided: [3,2,4] transposed to [2,3,4]). */
            ig_tensor *x = strided ? ig_randn(IG_DIMS(3, 2, 4), IG_F64) : ig_randn(IG_DIMS(2, 3, 4), IG_F64);
            ig_tensor *w = nd == 1 ? ig_randn(IG_DIMS(4), IG_F64) : ig_randn(IG_DIMS(3, 4), IG_F64);
            ig_tensor *b = nd == 1 ? ig_randn(IG_DIMS(4), IG_F64) : ig_randn(IG_DIMS(3, 4), IG_F64);
            ig_set_requires_grad(x, true);
            ig_set_requires_grad(w, true);
            ig_set_requires_grad(b, true);
            ln_case c = {nd, strided};
            cr_assert(ig_gradcheck(f_ln, (ig_tensor *[]){x, w, b}, 3, &c, NULL) == IG_OK, "nd %d strided %d: %s", nd,
                      strided, ig_last_error());
            cr_assert(ig_gradcheck(f_ln, &x, 1, &c, NULL) == IG_OK, "nd %d x only: %s", nd, ig_last_error());
            ig_tensor *xc = ig_randn(IG_DIMS(2, 3, 4), IG_F64);
            ln_case c2 = {nd, false};
            cr_assert(ig_gradcheck(f_ln, (ig_tensor *[]){xc, w, b}, 3, &c2, NULL) == IG_OK, "%s", ig_last_error());
            ig_scope_end(s);
        }
    }
}

Test(core, layer_norm_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(2, 3, 4), IG_F32);
    int64_t ns4[1] = {4}, ns34[2] = {3, 4}, ns5[1] = {5};
    ig_clear_error();
    cr_assert_null(ig_layer_norm(NULL, 1, ns4, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm");
    ig_clear_error();
    cr_assert_null(ig_layer_norm(x, 1, NULL, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm");
    ERR_HAS("normalized_shape");
    cr_assert_null(ig_layer_norm(x, 0, ns4, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm: n_dims");
    cr_assert_null(ig_layer_norm(x, 4, (int64_t[]){1, 2, 3, 4}, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm: n_dims");
    cr_assert_null(ig_layer_norm(x, 1, ns5, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm");
    ERR_HAS("[5]");
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert_null(ig_layer_norm(x, 2, (int64_t[]){4, 3}, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm");
    cr_assert_null(ig_layer_norm(x, 2, ns34, ig_ones(IG_DIMS(4), IG_F32), NULL, 1e-5));
    ERR_HAS("ig_layer_norm: weight");
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert_null(ig_layer_norm(x, 1, ns4, NULL, ig_ones(IG_DIMS(3), IG_F32), 1e-5));
    ERR_HAS("ig_layer_norm: bias");
    cr_assert_null(ig_layer_norm(x, 1, ns4, ig_ones(IG_DIMS(4), IG_F64), NULL, 1e-5));
    ERR_HAS("ig_layer_norm: weight is float64");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    cr_assert_null(ig_layer_norm(ig_ones(IG_DIMS(2, 4), IG_I32), 1, ns4, NULL, NULL, 1e-5));
    ERR_HAS("ig_layer_norm");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ig_scope_end(s);
}
