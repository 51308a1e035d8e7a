/*
 * tests/core/test_softmax.c — softmax and log_softmax: values against a plain-loop
 * reference written here (in long double), every dim (negative too), non-contiguous,
 * zero-size, size-1 and 0-dim inputs, large and very negative values, gradients
 * (ig_gradcheck in f64) and the user-error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* Reference along dim d of t (logical elements via ig_tensor_get), row-major into out. */
static void ref_softmax(ig_tensor *t, int d, bool log_out, double *out) {
    int nd = ig_tensor_ndim(t);
    const int64_t *sh = ig_tensor_shape(t);
    int64_t n = ig_tensor_numel(t);
    if (nd == 0) {
        out[0] = log_out ? 0.0 : 1.0;
        return;
    }
    int64_t inner = 1;
    for (int k = d + 1; k < nd; k++) inner *= sh[k];
    int64_t len = sh[d];
    for (int64_t f = 0; f < n; f++) {
        /* The row of f: same index on every dim but d. */
        int64_t pos = (f / inner) % len, start = f - pos * inner;
        long double m = -INFINITY, sum = 0;
        for (int64_t r = 0; r < len; r++) {
            long double v = ig_tensor_get(t, start + r * inner);
            if (v > m) m = v;
        }
        for (int64_t r = 0; r < len; r++) sum += expl((long double)ig_tensor_get(t, start + r * inner) - m);
        long double x = ig_tensor_get(t, f);
        out[f] = log_out ? (double)(x - m - logl(sum)) : (double)(expl(x - m) / sum);
    }
}

static void check_softmax(ig_tensor *t, int dim, bool log_out) {
    int nd = ig_tensor_ndim(t);
    ig_tensor *y = log_out ? ig_log_softmax(t, dim) : ig_softmax(t, dim);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), nd);
    for (int k = 0; k < nd; k++) cr_assert_eq(ig_tensor_shape(y)[k], ig_tensor_shape(t)[k]);
    cr_assert_eq(ig_tensor_dtype(y), ig_tensor_dtype(t));
    static double want[512];
    int64_t n = ig_tensor_numel(t);
    cr_assert_leq(n, 512);
    ref_softmax(t, nd ? (dim < 0 ? dim + nd : dim) : 0, log_out, want);
    double tol = ig_tensor_dtype(t) == IG_F32 ? 1e-5 : 1e-12;
    for (int64_t i = 0; i < n; i++) {
        double got = ig_tensor_get(y, i);
        cr_assert(isfinite(got), "dim %d log %d element %lld not finite: %g", dim, log_out, (long long)i, got);
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])), "dim %d log %d element %lld: got %.10g want %.10g",
                  dim, log_out, (long long)i, got, want[i]);
    }
}

static void check_every_dim(ig_tensor *t) {
    int nd = ig_tensor_ndim(t);
    for (int log_out = 0; log_out < 2; log_out++) {
        for (int d = 0; d < nd; d++) {
            check_softmax(t, d, log_out);
            check_softmax(t, d - nd, log_out);
        }
    }
}

Test(core, softmax_values_contiguous) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(31);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        check_every_dim(ig_mul_scalar(ig_randn(IG_DIMS(3, 4), (ig_dtype)dt), 3.0));
        check_every_dim(ig_randn(IG_DIMS(2, 3, 4), (ig_dtype)dt));
        check_every_dim(ig_randn(IG_DIMS(7), (ig_dtype)dt));
        check_every_dim(ig_randn(IG_DIMS(3, 1, 2), (ig_dtype)dt)); /* size-1 dim: ones / zeros */
    }
    ig_scope_end(s);
}

Test(core, softmax_values_strided) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(32);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_randn(IG_DIMS(2, 3, 4), (ig_dtype)dt);
        check_every_dim(ig_transpose(x, 0, 2));
        check_every_dim(ig_permute(x, (int[]){1, 2, 0}));
        check_every_dim(ig_slice(ig_randn(IG_DIMS(3, 8), (ig_dtype)dt), 1, 1, 8, 3));
        check_every_dim(ig_expand(ig_randn(IG_DIMS(3, 1), (ig_dtype)dt), IG_DIMS(3, 5)));
        check_every_dim(ig_expand(ig_randn(IG_DIMS(4), (ig_dtype)dt), IG_DIMS(2, 4)));
    }
    ig_scope_end(s);
}

Test(core, softmax_zero_size_and_scalar) {
    ig_scope *s = ig_scope_begin();
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *e = ig_zeros(IG_DIMS(3, 0), (ig_dtype)dt);
        for (int d = -2; d < 2; d++) {
            ig_tensor *y = ig_softmax(e, d), *l = ig_log_softmax(e, d);
            cr_assert(y && l, "%s", ig_last_error());
            cr_assert_eq(ig_tensor_numel(y), 0);
            cr_assert_eq(ig_tensor_shape(l)[0], 3);
            cr_assert_eq(ig_tensor_shape(l)[1], 0);
        }
        ig_tensor *x = ig_scalar(-7.5, (ig_dtype)dt);
        cr_assert_float_eq(ig_item(ig_softmax(x, 0)), 1.0, 1e-7);
        cr_assert_float_eq(ig_item(ig_log_softmax(x, -1)), 0.0, 1e-7);
        cr_assert_eq(ig_tensor_ndim(ig_softmax(x, -1)), 0);
    }
    ig_scope_end(s);
}

Test(core, softmax_large_and_very_negative_values) {
    ig_scope *s = ig_scope_begin();
    double e1 = exp(1.0);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *big = ig_to_dtype(ig_from_data(IG_DIMS(2), IG_F64, (double[]){1000, 1001}), (ig_dtype)dt);
        ig_tensor *y = ig_softmax(big, 0);
        cr_assert_float_eq(ig_tensor_get(y, 0), 1 / (1 + e1), 1e-6);
        cr_assert_float_eq(ig_tensor_get(y, 1), e1 / (1 + e1), 1e-6);
        ig_tensor *lb = ig_log_softmax(big, 0);
        cr_assert_float_eq(ig_tensor_get(lb, 0), -log1p(e1), 1e-5);
        cr_assert_float_eq(ig_tensor_get(lb, 1), 1 - log1p(e1), 1e-5);
        ig_tensor *neg = ig_to_dtype(ig_from_data(IG_DIMS(1, 3), IG_F64, (double[]){-1000, -1001, -1100}),
                                     (ig_dtype)dt);
        ig_tensor *l = ig_log_softmax(neg, 1);
        double lse = log(1 + exp(-1.0) + exp(-100.0));
        cr_assert_float_eq(ig_tensor_get(l, 0), -lse, 1e-5);
        cr_assert_float_eq(ig_tensor_get(l, 1), -1 - lse, 1e-5);
        cr_assert_float_eq(ig_tensor_get(l, 2), -100 - lse, 1e-4); /* finite, not -inf */
        check_every_dim(neg);
    }
    ig_scope_end(s);
}

/* ---- gradients ------------------------------------------------------------------------- */

typedef struct {
    int dim;
    bool log_out;
    int view; /* 0 as is, 1 transposed, 2 sliced with step */
} sm_case;

static ig_tensor *sm_fn(ig_tensor *const *in, int n, void *vctx) {
    (void)n;
    const sm_case *c = vctx;
    ig_tensor *x = in[0];
    if (c->view == 1) x = ig_transpose(x, 0, 1);
    else if (c->view == 2) x = ig_slice(x, 1, 0, 100, 2);
    return c->log_out ? ig_log_softmax(x, c->dim) : ig_softmax(x, c->dim);
}

/* A non-uniform loss on top, so backward sees a gradient that is not all ones. */
static ig_tensor *sm_weighted_fn(ig_tensor *const *in, int n, void *vctx) {
    ig_tensor *y = sm_fn(in, n, vctx);
    return ig_sum(ig_mul(y, in[1]), 0, NULL, false);
}

Test(core, softmax_gradcheck) {
    ig_manual_seed(41);
    for (int log_out = 0; log_out < 2; log_out++) {
        int dims[3] = {0, 1, -1};
        for (int k = 0; k < 3; k++) {
            for (int view = 0; view < 3; view++) {
                ig_scope *s = ig_scope_begin();
                ig_tensor *x = ig_randn(IG_DIMS(3, 4), IG_F64);
                ig_set_requires_grad(x, true);
                sm_case c = {dims[k], log_out, view};
                cr_assert(ig_gradcheck(sm_fn, &x, 1, &c, NULL) == IG_OK, "log %d dim %d view %d: %s",
                          log_out, dims[k], view, ig_last_error());
                ig_tensor *w = ig_randn(IG_DIMS(view == 1 ? 4 : 3, view == 1 ? 3 : (view == 2 ? 2 : 4)), IG_F64);
                ig_tensor *in[2] = {x, w};
                cr_assert(ig_gradcheck(sm_weighted_fn, in, 2, &c, NULL) == IG_OK, "weighted: %s", ig_last_error());
                ig_scope_end(s);
            }
        }
        /* 3-D, middle dim. */
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_randn(IG_DIMS(2, 3, 2), IG_F64);
        ig_set_requires_grad(x, true);
        sm_case c = {1, log_out, 0};
        cr_assert(ig_gradcheck(sm_fn, &x, 1, &c, NULL) == IG_OK, "%s", ig_last_error());
        ig_scope_end(s);
    }
}

Test(core, softmax_heap_graph_frees) {
    /* Outside a scope: the heap output saves itself through a separate header, so freeing
     * it frees everything (the sanitizer run would report a cycle as a leak). */
    ig_tensor *x = ig_randn(IG_DIMS(2, 3), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *y = ig_softmax(x, 1);
    ig_tensor *l = ig_log_softmax(x, 0);
    cr_assert(y && l, "%s", ig_last_error());
    ig_tensor *seed = ig_ones(IG_DIMS(2, 3), IG_F64);
    cr_assert(ig_backward(y, seed) == IG_OK, "%s", ig_last_error());
    /* Each row of softmax sums to 1, so its gradient against a ones seed is 0. */
    for (int i = 0; i < 6; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), 0.0, 1e-12);
    ig_tensor_free(seed);
    ig_tensor_free(y);
    ig_tensor_free(l);
    ig_tensor_free(x);
    assert_no_live_bytes();
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_error(ig_tensor *r, const char *op) {
    cr_assert_null(r, "%s should fail", op);
    cr_assert(strstr(ig_last_error(), op), "message '%s' does not name %s", ig_last_error(), op);
}

Test(core, softmax_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(2, 3), IG_F32);
    ig_tensor *xi = ig_ones(IG_DIMS(2, 3), IG_I32);
    expect_error(ig_softmax(x, 2), "ig_softmax");
    expect_error(ig_softmax(x, -3), "ig_softmax");
    expect_error(ig_log_softmax(x, 2), "ig_log_softmax");
    expect_error(ig_log_softmax(ig_scalar(1, IG_F32), 1), "ig_log_softmax");
    expect_error(ig_softmax(xi, 0), "ig_softmax");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    expect_error(ig_log_softmax(ig_ones(IG_DIMS(2), IG_U8), 0), "ig_log_softmax");
    ig_clear_error();
    expect_error(ig_softmax(NULL, 0), "ig_softmax");
    ig_clear_error();
    expect_error(ig_log_softmax(NULL, 0), "ig_log_softmax");
    ig_scope_end(s);
}
