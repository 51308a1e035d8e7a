/*
 * tests/core/test_reduce.c — sum, mean, var, max, min, argmax, argmin: forward values
 * against a plain-loop reference written here (over the input's logical elements read
 * with ig_tensor_get), output shapes, non-contiguous / zero-size / size-1 / 0-dim inputs,
 * NaN and tie rules, gradients (ig_gradcheck in f64) and every user-error path.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

enum { R_SUM, R_MEAN, R_VAR, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN };

/* ---- reference ------------------------------------------------------------------------ */

/* Mask of reduced dims for (ndims, dims) as the API reads them (ndims 0 = all). */
static void make_mask(int nd, int ndims, const int *dims, bool *mask) {
    for (int d = 0; d < nd; d++) mask[d] = ndims == 0;
    for (int i = 0; i < ndims; i++) {
        if (nd == 0) continue;
        mask[dims[i] < 0 ? dims[i] + nd : dims[i]] = true;
    }
}

/* Reference reduction with plain loops: out[o] for each output element (row-major over
 * kept dims). "First" extreme is in row-major order, NaN beats everything. */
static int64_t ref_reduce(ig_tensor *t, const bool *mask, int kind, int64_t corr, double *out) {
    int nd = ig_tensor_ndim(t);
    const int64_t *sh = ig_tensor_shape(t);
    int64_t n = ig_tensor_numel(t), n_out = 1, cnt = 1;
    for (int d = 0; d < nd; d++) {
        if (mask[d]) cnt *= sh[d];
        else n_out *= sh[d];
    }
    double *sum = calloc((size_t)n_out + 1, sizeof(double));
    double *best = calloc((size_t)n_out + 1, sizeof(double));
    int64_t *bidx = calloc((size_t)n_out + 1, sizeof(int64_t));
    bool *seen = calloc((size_t)n_out + 1, sizeof(bool));
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t f = 0; f < n; f++) {
            int64_t idx[8], rem = f;
            for (int d = nd - 1; d >= 0; d--) {
                idx[d] = rem % sh[d];
                rem /= sh[d];
            }
            int64_t o = 0, r = 0;
            for (int d = 0; d < nd; d++) {
                if (mask[d]) r = r * sh[d] + idx[d];
                else o = o * sh[d] + idx[d];
            }
            double v = ig_tensor_get(t, f);
            if (pass == 0) {
                sum[o] += v;
                bool better = kind == R_MAX || kind == R_ARGMAX ? v > best[o] : v < best[o];
                if (!seen[o] || (!isnan(best[o]) && (isnan(v) || better))) {
                    best[o] = v;
                    bidx[o] = r;
                }
                seen[o] = true;
            } else if (kind == R_VAR) {
                double dv = v - sum[o] / (double)cnt;
                best[o] += dv * dv;
            }
        }
        if (pass == 0 && kind == R_VAR)
            for (int64_t o = 0; o < n_out; o++) best[o] = 0;
    }
    double div = (double)cnt - (double)corr;
    if (div < 0) div = 0;
    for (int64_t o = 0; o < n_out; o++) {
        switch (kind) {
        case R_SUM: out[o] = sum[o]; break;
        case R_MEAN: out[o] = sum[o] / (double)cnt; break;
        case R_VAR: out[o] = best[o] / div; break;
        case R_MAX: case R_MIN: out[o] = best[o]; break;
        default: out[o] = (double)bidx[o]; break;
        }
    }
    free(sum);
    free(best);
    free(bidx);
    free(seen);
    return n_out;
}

static ig_tensor *apply(ig_tensor *t, int kind, int ndims, const int *dims, bool keepdim, int64_t corr) {
    switch (kind) {
    case R_SUM: return ig_sum(t, ndims, dims, keepdim);
    case R_MEAN: return ig_mean(t, ndims, dims, keepdim);
    case R_VAR: return ig_var(t, ndims, dims, corr, keepdim);
    case R_MAX: return ig_max(t, ndims, dims, keepdim);
    case R_MIN: return ig_min(t, ndims, dims, keepdim);
    case R_ARGMAX: return ig_argmax(t, dims[0], keepdim);
    default: return ig_argmin(t, dims[0], keepdim);
    }
}

static bool same_value(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * (1.0 + fabs(want));
}

/* Runs the op and checks dtype, shape (keepdim or not) and every value. */
static void check(ig_tensor *t, int kind, int ndims, const int *dims, bool keepdim, int64_t corr) {
    int nd = ig_tensor_ndim(t);
    const int64_t *sh = ig_tensor_shape(t);
    bool mask[8];
    make_mask(nd, ndims, dims, mask);
    ig_tensor *y = apply(t, kind, ndims, dims, keepdim, corr);
    cr_assert(y, "kind %d: %s", kind, ig_last_error());
    int k = 0;
    for (int d = 0; d < nd; d++) {
        if (mask[d] && !keepdim) continue;
        cr_assert_lt(k, ig_tensor_ndim(y), "kind %d: too few output dims", kind);
        cr_assert_eq(ig_tensor_shape(y)[k], mask[d] ? 1 : sh[d], "kind %d: out dim %d", kind, k);
        k++;
    }
    cr_assert_eq(ig_tensor_ndim(y), k, "kind %d: output ndim %d, want %d", kind, ig_tensor_ndim(y), k);
    ig_dtype dt = ig_tensor_dtype(t);
    ig_dtype want_dt = kind >= R_ARGMAX ? IG_I64 : (kind == R_SUM && !ig_dtype_is_float(dt)) ? IG_I64 : dt;
    cr_assert_eq(ig_tensor_dtype(y), want_dt, "kind %d: dtype", kind);
    double want[256];
    int64_t n_out = ref_reduce(t, mask, kind, corr, want);
    cr_assert_eq(ig_tensor_numel(y), n_out);
    double tol = dt == IG_F32 ? 2e-6 : 1e-12;
    for (int64_t o = 0; o < n_out; o++) {
        double got = ig_tensor_get(y, o);
        cr_assert(same_value(got, want[o], tol), "kind %d element %lld: got %.9g want %.9g", kind,
                  (long long)o, got, want[o]);
    }
}

/* Every float reduction over (ndims, dims), keepdim both ways. */
static void check_all_kinds(ig_tensor *t, int ndims, const int *dims) {
    for (int keep = 0; keep < 2; keep++) {
        for (int kind = R_SUM; kind <= R_MIN; kind++) check(t, kind, ndims, dims, keep, 1);
        check(t, R_VAR, ndims, dims, keep, 0);
        if (ndims == 1) {
            check(t, R_ARGMAX, 1, dims, keep, 0);
            check(t, R_ARGMIN, 1, dims, keep, 0);
        }
    }
}

static void check_dim_sets(ig_tensor *t) {
    int nd = ig_tensor_ndim(t);
    check_all_kinds(t, 0, NULL);
    for (int d = 0; d < nd; d++) {
        check_all_kinds(t, 1, (int[]){d});
        check_all_kinds(t, 1, (int[]){d - nd}); /* negative */
    }
    if (nd >= 2) {
        check_all_kinds(t, 2, (int[]){0, nd - 1});
        check_all_kinds(t, 2, (int[]){-1, 0}); /* any order */
    }
    if (nd >= 3) check_all_kinds(t, 2, (int[]){0, 1});
    if (nd >= 3) check_all_kinds(t, 3, (int[]){2, 0, 1});
}

/* ---- forward values --------------------------------------------------------------------- */

Test(core, reduce_contiguous_f32_f64) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        check_dim_sets(ig_randn(IG_DIMS(2, 3, 4), (ig_dtype)dt));
        check_dim_sets(ig_randn(IG_DIMS(5), (ig_dtype)dt));
        check_dim_sets(ig_randn(IG_DIMS(3, 1, 2), (ig_dtype)dt)); /* size-1 dim */
        check_dim_sets(ig_randn(IG_DIMS(37, 5), (ig_dtype)dt));   /* runs past the unroll */
    }
    ig_scope_end(s);
}

Test(core, reduce_transposed_sliced_expanded) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(12);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_randn(IG_DIMS(2, 3, 4), (ig_dtype)dt);
        check_dim_sets(ig_transpose(x, 0, 2));                                   /* [4,3,2] */
        check_dim_sets(ig_permute(x, (int[]){1, 2, 0}));                         /* [3,4,2] */
        check_dim_sets(ig_slice(ig_randn(IG_DIMS(3, 7, 4), (ig_dtype)dt), 1, 1, 7, 2)); /* [3,3,4] */
        check_dim_sets(ig_slice(ig_randn(IG_DIMS(4, 9), (ig_dtype)dt), 1, 0, 9, 3));    /* [4,3] */
        check_dim_sets(ig_expand(ig_randn(IG_DIMS(3, 1), (ig_dtype)dt), IG_DIMS(3, 4)));
        check_dim_sets(ig_expand(ig_randn(IG_DIMS(4), (ig_dtype)dt), IG_DIMS(2, 3, 4)));
    }
    ig_scope_end(s);
}

Test(core, reduce_known_values) {
    ig_scope *s = ig_scope_begin();
    /* [[1,2,3],[4,5,6]] by hand */
    ig_tensor *x = ig_from_data(IG_DIMS(2, 3), IG_F64, (double[]){1, 2, 3, 4, 5, 6});
    cr_assert_float_eq(ig_item(ig_sum(x, 0, NULL, false)), 21.0, 1e-12);
    ig_tensor *m = ig_mean(x, 1, (int[]){1}, true);
    cr_assert_eq(ig_tensor_ndim(m), 2);
    cr_assert_eq(ig_tensor_shape(m)[1], 1);
    cr_assert_float_eq(ig_tensor_get(m, 0), 2.0, 1e-12);
    cr_assert_float_eq(ig_tensor_get(m, 1), 5.0, 1e-12);
    ig_tensor *v = ig_var(x, 1, (int[]){-1}, 1, false); /* unbiased: 1 each row */
    cr_assert_float_eq(ig_tensor_get(v, 0), 1.0, 1e-12);
    cr_assert_float_eq(ig_tensor_get(v, 1), 1.0, 1e-12);
    ig_tensor *v0 = ig_var(x, 0, NULL, 0, false); /* population over all: 35/12 */
    cr_assert_float_eq(ig_item(v0), 35.0 / 12.0, 1e-12);
    cr_assert_float_eq(ig_item(ig_max(x, 0, NULL, false)), 6.0, 1e-12);
    cr_assert_float_eq(ig_item(ig_min(x, 0, NULL, false)), 1.0, 1e-12);
    ig_tensor *am = ig_argmax(x, 0, false);
    cr_assert_eq(ig_tensor_get(am, 2), 1.0);
    ig_scope_end(s);
}

Test(core, reduce_var_correction_edge) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_from_data(IG_DIMS(2), IG_F64, (double[]){1, 3});
    ig_tensor *b = ig_from_data(IG_DIMS(2), IG_F32, (float[]){1, 1});
    cr_assert_float_eq(ig_item(ig_var(a, 0, NULL, 1, false)), 2.0, 1e-12);
    cr_assert_float_eq(ig_item(ig_var(a, 0, NULL, 0, false)), 1.0, 1e-12);
    /* N - correction <= 0 divides by 0 as torch: inf for a positive sum, NaN for 0. */
    cr_assert(isinf(ig_item(ig_var(a, 0, NULL, 2, false))));
    cr_assert(isinf(ig_item(ig_var(a, 0, NULL, 5, false))));
    cr_assert(isnan(ig_item(ig_var(b, 0, NULL, 2, false))));
    /* One element, unbiased: NaN. */
    cr_assert(isnan(ig_item(ig_var(ig_scalar(4.0, IG_F64), 0, NULL, 1, false))));
    cr_assert(isnan(ig_item(ig_var(ig_ones(IG_DIMS(1), IG_F32), 0, NULL, 1, false))));
    /* Extreme corrections do not overflow. */
    cr_assert(isinf(ig_item(ig_var(a, 0, NULL, INT64_MAX, false))));
    cr_assert_float_eq(ig_item(ig_var(a, 0, NULL, INT64_MIN, false)), 0.0, 1e-12);
    ig_scope_end(s);
}

Test(core, reduce_zero_dim_input) {
    ig_scope *s = ig_scope_begin();
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_scalar(2.5, (ig_dtype)dt);
        int ndims_list[3] = {0, 1, 1};
        const int *dims_list[3] = {NULL, (int[]){0}, (int[]){-1}};
        for (int c = 0; c < 3; c++) {
            for (int keep = 0; keep < 2; keep++) {
                for (int kind = R_SUM; kind <= R_MIN; kind++) {
                    ig_tensor *y = apply(x, kind, ndims_list[c], dims_list[c], keep, 0);
                    cr_assert(y, "%s", ig_last_error());
                    cr_assert_eq(ig_tensor_ndim(y), 0);
                    cr_assert_float_eq(ig_item(y), kind == R_VAR ? 0.0 : 2.5, 1e-6, "kind %d", kind);
                }
            }
        }
        cr_assert_eq(ig_item(ig_argmax(x, 0, false)), 0.0);
        cr_assert_eq(ig_item(ig_argmin(x, -1, true)), 0.0);
        cr_assert_eq(ig_tensor_ndim(ig_argmax(x, 0, true)), 0);
    }
    ig_scope_end(s);
}

Test(core, reduce_zero_size_dims) {
    ig_scope *s = ig_scope_begin();
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *x = ig_zeros(IG_DIMS(3, 0), (ig_dtype)dt);
        /* Over the empty dim: sum 0, mean/var NaN, one value per kept element. */
        ig_tensor *sm = ig_sum(x, 1, (int[]){1}, false);
        cr_assert(sm, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(sm), 3);
        for (int i = 0; i < 3; i++) cr_assert_eq(ig_tensor_get(sm, i), 0.0);
        ig_tensor *mn = ig_mean(x, 1, (int[]){1}, true);
        cr_assert_eq(ig_tensor_shape(mn)[0], 3);
        cr_assert_eq(ig_tensor_shape(mn)[1], 1);
        for (int i = 0; i < 3; i++) cr_assert(isnan(ig_tensor_get(mn, i)));
        ig_tensor *vr = ig_var(x, 1, (int[]){1}, 1, false);
        for (int i = 0; i < 3; i++) cr_assert(isnan(ig_tensor_get(vr, i)));
        cr_assert_eq(ig_item(ig_sum(x, 0, NULL, false)), 0.0);
        cr_assert(isnan(ig_item(ig_mean(x, 0, NULL, false))));
        /* Over the non-empty dim: an empty result; max is fine there too. */
        cr_assert_eq(ig_tensor_numel(ig_sum(x, 1, (int[]){0}, false)), 0);
        cr_assert_eq(ig_tensor_shape(ig_mean(x, 1, (int[]){0}, false))[0], 0);
        ig_tensor *mx = ig_max(x, 1, (int[]){0}, true);
        cr_assert(mx, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_shape(mx)[0], 1);
        cr_assert_eq(ig_tensor_shape(mx)[1], 0);
        cr_assert_eq(ig_tensor_numel(ig_argmin(x, 0, false)), 0);
        /* Zero-size integer sum. */
        cr_assert_eq(ig_item(ig_sum(ig_zeros(IG_DIMS(0, 2), IG_I32), 0, NULL, false)), 0.0);
    }
    ig_scope_end(s);
}

Test(core, reduce_integer_sum_and_extremes) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *u = ig_full(IG_DIMS(4, 100), IG_U8, 200); /* 80000 overflows u8 and i16 */
    ig_tensor *su = ig_sum(u, 0, NULL, false);
    cr_assert_eq(ig_tensor_dtype(su), IG_I64);
    cr_assert_eq(*(int64_t *)ig_tensor_data(su), 80000);
    ig_tensor *x = ig_from_data(IG_DIMS(2, 3), IG_I32, (int32_t[]){-5, 7, 2, 2147483647, 1, 2});
    ig_tensor *sx = ig_sum(x, 1, (int[]){1}, false);
    cr_assert_eq(ig_tensor_dtype(sx), IG_I64);
    cr_assert_eq(((int64_t *)ig_tensor_data(sx))[0], 4);
    cr_assert_eq(((int64_t *)ig_tensor_data(sx))[1], 2147483650LL); /* no 32-bit wrap */
    check(x, R_SUM, 1, (int[]){0}, false, 0);
    check(ig_transpose(x, 0, 1), R_SUM, 1, (int[]){1}, true, 0);
    check(x, R_MAX, 1, (int[]){1}, false, 0);
    check(x, R_MIN, 0, NULL, false, 0);
    check(x, R_ARGMAX, 1, (int[]){1}, false, 0);
    check(x, R_ARGMIN, 1, (int[]){0}, true, 0);
    ig_tensor *mx = ig_max(x, 0, NULL, false);
    cr_assert_eq(ig_tensor_dtype(mx), IG_I32);
    cr_assert_eq(*(int32_t *)ig_tensor_data(mx), 2147483647);
    /* i64 sums wrap instead of overflowing (unsigned arithmetic, no UB). */
    ig_tensor *big = ig_from_data(IG_DIMS(2), IG_I64, (int64_t[]){INT64_MAX, 1});
    cr_assert_eq(*(int64_t *)ig_tensor_data(ig_sum(big, 0, NULL, false)), INT64_MIN);
    ig_scope_end(s);
}

Test(core, reduce_nan_and_ties) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(5), IG_F32, (float[]){1, NAN, 3, NAN, -2});
    cr_assert(isnan(ig_item(ig_max(x, 0, NULL, false))));
    cr_assert(isnan(ig_item(ig_min(x, 0, NULL, false))));
    cr_assert_eq(ig_item(ig_argmax(x, 0, false)), 1.0); /* first NaN, as torch */
    cr_assert_eq(ig_item(ig_argmin(x, 0, false)), 1.0);
    ig_tensor *first = ig_from_data(IG_DIMS(3), IG_F64, (double[]){NAN, 5, 6});
    cr_assert_eq(ig_item(ig_argmax(first, 0, false)), 0.0);
    /* Ties: the first extreme wins. */
    ig_tensor *t = ig_from_data(IG_DIMS(2, 4), IG_F64, (double[]){1, 3, 3, 0, 2, 0, 2, 0});
    ig_tensor *am = ig_argmax(t, 1, false), *an = ig_argmin(t, 1, false);
    cr_assert_eq(ig_tensor_get(am, 0), 1.0);
    cr_assert_eq(ig_tensor_get(am, 1), 0.0);
    cr_assert_eq(ig_tensor_get(an, 0), 3.0);
    cr_assert_eq(ig_tensor_get(an, 1), 1.0);
    check(t, R_ARGMAX, 1, (int[]){0}, false, 0);
    ig_scope_end(s);
}

/* ---- gradients ------------------------------------------------------------------------- */

typedef struct {
    int kind, ndims, dims[3];
    bool keepdim;
    int64_t corr;
    int view; /* 0 as is, 1 transposed, 2 sliced with step, 3 expanded from a size-1 dim */
} grad_case;

static ig_tensor *grad_fn(ig_tensor *const *in, int n, void *vctx) {
    (void)n;
    const grad_case *c = vctx;
    ig_tensor *x = in[0];
    if (c->view == 1) x = ig_transpose(x, 0, -1);
    else if (c->view == 2) x = ig_slice(x, 0, 0, 100, 2);
    else if (c->view == 3) x = ig_expand(x, IG_DIMS(3, 2, 4));
    return apply(x, c->kind, c->ndims, c->dims, c->keepdim, c->corr);
}

static void gradcheck_case(grad_case c, int ndim, const int64_t *shape) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(ndim, shape, IG_F64);
    ig_set_requires_grad(x, true);
    ig_status st = ig_gradcheck(grad_fn, &x, 1, &c, NULL);
    cr_assert(st == IG_OK, "kind %d ndims %d view %d: %s", c.kind, c.ndims, c.view, ig_last_error());
    ig_scope_end(s);
}

Test(core, reduce_gradcheck) {
    ig_manual_seed(21);
    for (int kind = R_SUM; kind <= R_MIN; kind++) {
        for (int keep = 0; keep < 2; keep++) {
            gradcheck_case((grad_case){kind, 0, {0}, keep, 1, 0}, IG_DIMS(2, 3, 4));
            gradcheck_case((grad_case){kind, 1, {1}, keep, 1, 0}, IG_DIMS(2, 3, 4));
            gradcheck_case((grad_case){kind, 2, {-1, 0}, keep, 0, 0}, IG_DIMS(2, 3, 4));
            gradcheck_case((grad_case){kind, 1, {0}, keep, 1, 1}, IG_DIMS(2, 3, 4));
            gradcheck_case((grad_case){kind, 2, {0, 1}, keep, 1, 2}, IG_DIMS(5, 3));
            gradcheck_case((grad_case){kind, 1, {0}, keep, 0, 0}, 0, NULL); /* 0-dim */
        }
        /* Expanded input: every copy feeds the output (max/min would tie: sum-like only). */
        if (kind <= R_VAR) gradcheck_case((grad_case){kind, 2, {0, 2}, false, 1, 3}, IG_DIMS(2, 1));
    }
}

Test(core, reduce_max_grad_goes_to_first_extreme) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(2, 3), IG_F64, (double[]){1, 5, 5, -2, 0, -2});
    ig_set_requires_grad(x, true);
    ig_tensor *y = ig_add(ig_sum(ig_max(x, 1, (int[]){1}, false), 0, NULL, false),
                          ig_mul_scalar(ig_sum(ig_min(x, 1, (int[]){-1}, true), 0, NULL, false), 10));
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    double want[6] = {10, 1, 0, 10, 1, 0}; /* max of row 0 at 1, min of row 0 at 0, ... */
    for (int i = 0; i < 6; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), want[i], 1e-12, "i=%d", i);
    ig_scope_end(s);
}

Test(core, reduce_heap_graph_frees) {
    /* Outside a scope: heap outputs own their nodes (and max's saved indices). */
    ig_tensor *x = ig_randn(IG_DIMS(3, 4), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *m = ig_max(x, 1, (int[]){0}, false);
    ig_tensor *v = ig_var(x, 0, NULL, 1, false);
    ig_tensor *u = ig_mean(x, 1, (int[]){1}, true);
    cr_assert(m && v && u, "%s", ig_last_error());
    cr_assert(ig_backward(v, NULL) == IG_OK, "%s", ig_last_error());
    ig_tensor_free(m);
    ig_tensor_free(v);
    ig_tensor_free(u);
    ig_tensor_free(x);
    assert_no_live_bytes();
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_error(ig_tensor *r, const char *op) {
    cr_assert_null(r, "%s should fail", op);
    cr_assert(strstr(ig_last_error(), op), "message '%s' does not name %s", ig_last_error(), op);
}

Test(core, reduce_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(2, 3), IG_F32);
    ig_tensor *xi = ig_ones(IG_DIMS(2, 3), IG_I64);
    const char *names[5] = {"ig_sum", "ig_mean", "ig_var", "ig_max", "ig_min"};
    for (int kind = R_SUM; kind <= R_MIN; kind++) {
        ig_clear_error();
        expect_error(apply(x, kind, 1, (int[]){2}, false, 1), names[kind]);     /* bad dim */
        expect_error(apply(x, kind, 1, (int[]){-3}, false, 1), names[kind]);
        expect_error(apply(x, kind, 2, (int[]){1, -1}, false, 1), names[kind]); /* repeated */
        expect_error(apply(ig_scalar(1, IG_F32), kind, 2, (int[]){0, -1}, false, 1), names[kind]);
        expect_error(apply(x, kind, 9, (int[]){0, 1, 0, 1, 0, 1, 0, 1, 0}, false, 1), names[kind]);
        expect_error(apply(x, kind, -1, NULL, false, 1), names[kind]);
        ig_clear_error();
        expect_error(apply(x, kind, 1, NULL, false, 1), names[kind]); /* dims NULL */
        ig_clear_error();
        expect_error(apply(NULL, kind, 0, NULL, false, 1), names[kind]);
    }
    expect_error(ig_mean(xi, 0, NULL, false), "ig_mean");
    expect_error(ig_var(xi, 1, (int[]){0}, 1, false), "ig_var");
    ig_tensor *e = ig_zeros(IG_DIMS(2, 0), IG_F32);
    expect_error(ig_max(e, 1, (int[]){1}, false), "ig_max");
    cr_assert(strstr(ig_last_error(), "size 0"), "%s", ig_last_error());
    expect_error(ig_min(e, 0, NULL, false), "ig_min");
    expect_error(ig_max(ig_zeros(IG_DIMS(0), IG_F64), 0, NULL, true), "ig_max");
    expect_error(ig_argmax(e, 1, false), "ig_argmax");
    expect_error(ig_argmin(e, -1, false), "ig_argmin");
    expect_error(ig_argmax(x, 2, false), "ig_argmax");
    expect_error(ig_argmin(x, -3, false), "ig_argmin");
    ig_clear_error();
    expect_error(ig_argmax(NULL, 0, false), "ig_argmax");
    ig_scope_end(s);
}
