/*
 * tests/core/test_binary.c — the broadcasting binary ops of core/ops/binary.c: add, sub,
 * mul, div, the scalar forms, where and the comparisons.
 *
 * Expected values are computed here with plain C loops over the broadcast index: forward
 * values with broadcasting, non-contiguous and zero-size inputs in f32 and f64; integer
 * wrapping and division rules; gradcheck (with broadcasting, so gradients go through
 * igi_sum_to); and every error path with its message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, N_ARITH };
static const char *op_names[N_ARITH] = {"ig_add", "ig_sub", "ig_mul", "ig_div"};

static ig_tensor *call_op(int op, ig_tensor *a, ig_tensor *b) {
    switch (op) {
    case OP_ADD: return ig_add(a, b);
    case OP_SUB: return ig_sub(a, b);
    case OP_MUL: return ig_mul(a, b);
    default: return ig_div(a, b);
    }
}

static double ref_op(int op, double a, double b) {
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
    }
}

/* Contiguous tensor with element i = start + i * step, in dtype dt (float dtypes). */
static ig_tensor *seq(int ndim, const int64_t *shape, ig_dtype dt, double start, double step) {
    ig_tensor *t = ig_empty(ndim, shape, dt);
    cr_assert(t, "%s", ig_last_error());
    int64_t n = ig_tensor_numel(t);
    void *p = ig_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        double v = start + (double)i * step;
        if (dt == IG_F32) ((float *)p)[i] = (float)v;
        else ((double *)p)[i] = v;
    }
    return t;
}

/* Flat index into a (right-aligned) broadcast operand of shape (nd, shape) for the output
 * element with multi-index idx over out_nd dims. */
static int64_t bcast_index(int out_nd, const int64_t *idx, int nd, const int64_t *shape) {
    int64_t flat = 0;
    for (int d = 0; d < nd; d++) {
        int od = out_nd - nd + d;
        flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[od]);
    }
    return flat;
}

/* Checks y == op(a, b) elementwise over the broadcast shape, reading a and b through their
 * logical (possibly strided) shapes with ig_tensor_get. */
static void check_binary(int op, ig_tensor *a, ig_tensor *b, ig_tensor *y, double rtol) {
    cr_assert(y, "%s: %s", op_names[op], ig_last_error());
    int nd = ig_tensor_ndim(y);
    const int64_t *ys = ig_tensor_shape(y);
    int64_t n = ig_tensor_numel(y);
    for (int64_t i = 0; i < n; i++) {
        int64_t idx[8], r = i;
        for (int d = nd - 1; d >= 0; d--) {
            idx[d] = r % ys[d];
            r /= ys[d];
        }
        double av = ig_tensor_get(a, bcast_index(nd, idx, ig_tensor_ndim(a), ig_tensor_shape(a)));
        double bv = ig_tensor_get(b, bcast_index(nd, idx, ig_tensor_ndim(b), ig_tensor_shape(b)));
        double want = ref_op(op, av, bv), got = ig_tensor_get(y, i);
        bool ok = isfinite(want) ? fabs(got - want) <= rtol * fabs(want) + 1e-12 : (got == want || (isnan(got) && isnan(want)));
        cr_assert(ok, "%s elem %lld: %g op %g = %g, want %g", op_names[op],
                  (long long)i, av, bv, got, want);
    }
}

static void check_shape(ig_tensor *y, int nd, const int64_t *shape) {
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), nd);
    for (int d = 0; d < nd; d++) cr_assert_eq(ig_tensor_shape(y)[d], shape[d], "dim %d", d);
}

/* ---- forward values ------------------------------------------------------------------ */

Test(core, binary_broadcast_values) {
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = k ? IG_F64 : IG_F32;
        double rtol = k ? 1e-15 : 1e-6;
        ig_scope *s = ig_scope_begin();
        /* [3,1] x [1,4] -> [3,4] */
        ig_tensor *a = seq(IG_DIMS(3, 1), dt, 1.5, 1.0);
        ig_tensor *b = seq(IG_DIMS(1, 4), dt, -2.25, 0.75); /* -2.25, -1.5, -0.75, 0: div by 0 gives inf */
        /* [4] x [2,3,4] and the reverse */
        ig_tensor *c = seq(IG_DIMS(4), dt, 0.5, 1.25);
        ig_tensor *d = seq(IG_DIMS(2, 3, 4), dt, -3.0, 0.5);
        /* scalar x tensor and tensor x scalar */
        ig_tensor *sc = ig_scalar(2.5, dt);
        ig_tensor *m = seq(IG_DIMS(2, 3), dt, 1.0, -0.5);
        for (int op = 0; op < N_ARITH; op++) {
            ig_tensor *y = call_op(op, a, b);
            check_shape(y, IG_DIMS(3, 4));
            if (op != OP_DIV) check_binary(op, a, b, y, rtol);
            else cr_assert(isinf(ig_tensor_get(y, 3)) && ig_tensor_get(y, 3) > 0); /* 1.5 / 0 */
            y = call_op(op, b, a);
            check_shape(y, IG_DIMS(3, 4));
            check_binary(op, b, a, y, rtol);
            y = call_op(op, c, d);
            check_shape(y, IG_DIMS(2, 3, 4));
            if (op != OP_DIV) check_binary(op, c, d, y, rtol);
            check_binary(op, d, c, call_op(op, d, c), rtol);
            check_shape(call_op(op, sc, m), IG_DIMS(2, 3));
            check_binary(op, sc, m, call_op(op, sc, m), rtol);
            check_binary(op, m, sc, call_op(op, m, sc), rtol);
            /* 0-dim x 0-dim stays 0-dim */
            ig_tensor *z = call_op(op, sc, sc);
            check_shape(z, 0, NULL);
            cr_assert_float_eq(ig_item(z), ref_op(op, 2.5, 2.5), 1e-12);
        }
        ig_scope_end(s);
    }
}

Test(core, binary_non_contiguous_inputs) {
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = k ? IG_F64 : IG_F32;
        double rtol = k ? 1e-15 : 1e-6;
        ig_scope *s = ig_scope_begin();
        ig_tensor *at = ig_transpose(seq(IG_DIMS(4, 3), dt, 0.5, 0.25), 0, 1);        /* [3,4] */
        ig_tensor *bs = ig_slice(seq(IG_DIMS(3, 9), dt, 1.0, 0.5), 1, 1, 9, 2);        /* [3,4] step 2 */
        ig_tensor *be = ig_expand(seq(IG_DIMS(1, 4), dt, -1.0, 0.75), IG_DIMS(3, 4)); /* stride 0 */
        cr_assert(!ig_tensor_is_contiguous(at) && !ig_tensor_is_contiguous(bs) && !ig_tensor_is_contiguous(be));
        for (int op = 0; op < N_ARITH; op++) {
            check_binary(op, at, bs, call_op(op, at, bs), rtol);
            check_binary(op, bs, at, call_op(op, bs, at), rtol);
            check_binary(op, at, be, call_op(op, at, be), rtol);
            /* a transposed [4,3]^T against a [4] row, broadcast over the transposed layout */
            ig_tensor *row = ig_slice(seq(IG_DIMS(8), dt, 2.0, 1.0), 0, 0, 8, 2);
            check_binary(op, at, row, call_op(op, at, row), rtol);
        }
        ig_scope_end(s);
    }
}

Test(core, binary_zero_size_dims) {
    ig_scope *s = ig_scope_begin();
    for (int op = 0; op < N_ARITH; op++) {
        check_shape(call_op(op, ig_zeros(IG_DIMS(0, 3), IG_F32), ig_ones(IG_DIMS(1, 3), IG_F32)), IG_DIMS(0, 3));
        check_shape(call_op(op, ig_zeros(IG_DIMS(2, 1), IG_F64), ig_ones(IG_DIMS(2, 0), IG_F64)), IG_DIMS(2, 0));
        check_shape(call_op(op, ig_zeros(IG_DIMS(0), IG_F64), ig_scalar(1, IG_F64)), IG_DIMS(0));
        check_shape(call_op(op, ig_zeros(IG_DIMS(3, 0, 2), IG_I32), ig_ones(IG_DIMS(2), IG_I32)), IG_DIMS(3, 0, 2));
    }
    /* 0 vs 3 does not broadcast */
    ig_clear_error();
    cr_assert_null(ig_add(ig_zeros(IG_DIMS(0), IG_F32), ig_zeros(IG_DIMS(3), IG_F32)));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    check_shape(ig_where(ig_zeros(IG_DIMS(0, 1), IG_U8), ig_ones(IG_DIMS(4), IG_F32), ig_scalar(0, IG_F32)),
                IG_DIMS(0, 4));
    check_shape(ig_eq(ig_zeros(IG_DIMS(0, 1), IG_F32), ig_ones(IG_DIMS(4), IG_F32)), IG_DIMS(0, 4));
    ig_scope_end(s);
}

/* ---- integers -------------------------------------------------------------------------- */

Test(core, binary_integer_arithmetic) {
    ig_scope *s = ig_scope_begin();
    int32_t a32[6] = {INT32_MAX, INT32_MIN, 7, -7, 5, INT32_MIN};
    int32_t b32[6] = {1, 1, 2, 2, 0, -1};
    ig_tensor *a = ig_from_data(IG_DIMS(6), IG_I32, a32), *b = ig_from_data(IG_DIMS(6), IG_I32, b32);
    const int32_t *add = ig_tensor_data(ig_add(a, b));
    const int32_t *sub = ig_tensor_data(ig_sub(a, b));
    const int32_t *mul = ig_tensor_data(ig_mul(a, b));
    const int32_t *dv = ig_tensor_data(ig_div(a, b));
    cr_assert_eq(add[0], INT32_MIN); /* wraps */
    cr_assert_eq(sub[1], INT32_MAX);
    cr_assert_eq(mul[0], INT32_MAX);
    cr_assert_eq(mul[5], INT32_MIN); /* INT32_MIN * -1 wraps */
    cr_assert_eq(add[2], 9);
    cr_assert_eq(sub[3], -9);
    cr_assert_eq(dv[2], 3);          /* truncates toward zero, as C */
    cr_assert_eq(dv[3], -3);
    cr_assert_eq(dv[4], 0);          /* division by zero gives 0 */
    cr_assert_eq(dv[5], INT32_MIN);  /* INT32_MIN / -1 wraps */
    cr_assert_eq(ig_tensor_dtype(ig_add(a, b)), IG_I32);

    int64_t a64[4] = {INT64_MAX, INT64_MIN, (INT64_C(1) << 60) + 1, -9};
    int64_t b64[4] = {1, -1, 3, 0};
    ig_tensor *c = ig_from_data(IG_DIMS(4), IG_I64, a64), *d = ig_from_data(IG_DIMS(4), IG_I64, b64);
    const int64_t *add64 = ig_tensor_data(ig_add(c, d));
    const int64_t *mul64 = ig_tensor_data(ig_mul(c, d));
    const int64_t *div64 = ig_tensor_data(ig_div(c, d));
    cr_assert_eq(add64[0], INT64_MIN);
    cr_assert_eq(add64[2], (INT64_C(1) << 60) + 4); /* exact beyond 2^53 */
    cr_assert_eq(mul64[1], INT64_MIN);
    cr_assert_eq(div64[1], INT64_MIN);
    cr_assert_eq(div64[2], ((INT64_C(1) << 60) + 1) / 3);
    cr_assert_eq(div64[3], 0);

    uint8_t a8[4] = {250, 3, 16, 9};
    uint8_t b8[4] = {10, 5, 16, 0};
    ig_tensor *e = ig_from_data(IG_DIMS(4), IG_U8, a8), *f = ig_from_data(IG_DIMS(4), IG_U8, b8);
    const uint8_t *add8 = ig_tensor_data(ig_add(e, f));
    const uint8_t *sub8 = ig_tensor_data(ig_sub(e, f));
    const uint8_t *mul8 = ig_tensor_data(ig_mul(e, f));
    const uint8_t *div8 = ig_tensor_data(ig_div(e, f));
    cr_assert_eq(add8[0], 4);   /* 260 mod 256 */
    cr_assert_eq(sub8[1], 254); /* 3 - 5 mod 256 */
    cr_assert_eq(mul8[2], 0);   /* 256 mod 256 */
    cr_assert_eq(div8[0], 25);
    cr_assert_eq(div8[3], 0);

    /* broadcasting with integers: [2,1] x [3] */
    int32_t col[2] = {10, 20}, row[3] = {1, 2, 3};
    const int32_t *bc = ig_tensor_data(ig_sub(ig_from_data(IG_DIMS(2, 1), IG_I32, col),
                                              ig_from_data(IG_DIMS(3), IG_I32, row)));
    int32_t want[6] = {9, 8, 7, 19, 18, 17};
    for (int i = 0; i < 6; i++) cr_assert_eq(bc[i], want[i]);
    ig_scope_end(s);
}

Test(core, binary_scalar_forms) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = k ? IG_F64 : IG_F32;
        ig_tensor *x = ig_transpose(seq(IG_DIMS(3, 2), dt, -1.0, 0.5), 0, 1);
        ig_tensor *ya = ig_add_scalar(x, 1.25), *ym = ig_mul_scalar(x, -3.0);
        check_shape(ya, IG_DIMS(2, 3));
        for (int64_t i = 0; i < 6; i++) {
            double xi = ig_tensor_get(x, i);
            cr_assert_float_eq(ig_tensor_get(ya, i), xi + 1.25, 1e-6);
            cr_assert_float_eq(ig_tensor_get(ym, i), xi * -3.0, 1e-6);
        }
        cr_assert_float_eq(ig_item(ig_mul_scalar(ig_scalar(4, dt), 0.5)), 2.0, 1e-12);
        check_shape(ig_add_scalar(ig_zeros(IG_DIMS(0, 2), dt), 1), IG_DIMS(0, 2));
    }
    /* integers: an integral scalar wraps and stays exact */
    int64_t big[2] = {(INT64_C(1) << 60) + 1, INT64_MAX};
    ig_tensor *t64 = ig_from_data(IG_DIMS(2), IG_I64, big);
    const int64_t *r64 = ig_tensor_data(ig_add_scalar(t64, 1));
    cr_assert_eq(r64[0], (INT64_C(1) << 60) + 2);
    cr_assert_eq(r64[1], INT64_MIN);
    const int64_t *m64 = ig_tensor_data(ig_mul_scalar(t64, 1));
    cr_assert_eq(m64[0], big[0]);
    int32_t v32[3] = {INT32_MAX, -7, 7};
    ig_tensor *t32 = ig_from_data(IG_DIMS(3), IG_I32, v32);
    const int32_t *r32 = ig_tensor_data(ig_add_scalar(t32, 1));
    cr_assert_eq(r32[0], INT32_MIN);
    const int32_t *m32 = ig_tensor_data(ig_mul_scalar(t32, 2));
    cr_assert_eq(m32[0], -2);
    cr_assert_eq(m32[1], -14);
    /* a fractional scalar truncates toward zero */
    const int32_t *h32 = ig_tensor_data(ig_mul_scalar(t32, 0.5));
    cr_assert_eq(h32[1], -3);
    cr_assert_eq(h32[2], 3);
    uint8_t v8[2] = {0, 200};
    ig_tensor *t8 = ig_from_data(IG_DIMS(2), IG_U8, v8);
    const uint8_t *r8 = ig_tensor_data(ig_add_scalar(t8, -1));
    cr_assert_eq(r8[0], 255);
    cr_assert_eq(r8[1], 199);
    const uint8_t *m8 = ig_tensor_data(ig_mul_scalar(t8, 2));
    cr_assert_eq(m8[1], 144); /* 400 mod 256 */
    ig_scope_end(s);
}

Test(core, binary_comparisons_and_where) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = k ? IG_F64 : IG_F32;
        ig_tensor *a = seq(IG_DIMS(3, 1), dt, 0.0, 1.0);   /* 0, 1, 2 */
        ig_tensor *b = seq(IG_DIMS(4), dt, -0.5, 0.75);    /* -0.5, 0.25, 1, 1.75 */
        ig_tensor *eq = ig_eq(a, b), *gt = ig_gt(a, b), *lt = ig_lt(a, b);
        check_shape(eq, IG_DIMS(3, 4));
        cr_assert_eq(ig_tensor_dtype(eq), IG_U8);
        cr_assert(!ig_requires_grad(eq));
        const uint8_t *pe = ig_tensor_data(eq), *pg = ig_tensor_data(gt), *pl = ig_tensor_data(lt);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                double av = i, bv = -0.5 + 0.75 * j;
                cr_assert_eq(pe[i * 4 + j], av == bv);
                cr_assert_eq(pg[i * 4 + j], av > bv);
                cr_assert_eq(pl[i * 4 + j], av < bv);
            }
        /* NaN compares false everywhere */
        ig_tensor *nan = ig_scalar(NAN, dt);
        cr_assert_eq(ig_item(ig_eq(nan, nan)), 0.0);
        cr_assert_eq(ig_item(ig_gt(nan, ig_scalar(0, dt))), 0.0);
        cr_assert_eq(ig_item(ig_lt(nan, ig_scalar(0, dt))), 0.0);

        /* where: cond [3,1] u8, a [1,4] transposed view, b 0-dim */
        uint8_t cv[3] = {1, 0, 1};
        ig_tensor *cond = ig_from_data(IG_DIMS(3, 1), IG_U8, cv);
        ig_tensor *wa = ig_transpose(seq(IG_DIMS(4, 1), dt, 10.0, 1.0), 0, 1);
        ig_tensor *w = ig_where(cond, wa, ig_scalar(-1, dt));
        check_shape(w, IG_DIMS(3, 4));
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                cr_assert_eq(ig_tensor_get(w, i * 4 + j), cv[i] ? 10.0 + j : -1.0);
        /* any dtype as cond: nonzero is true (NaN included) */
        double cf[4] = {0.0, -2.0, NAN, 0.5};
        ig_tensor *condf = ig_from_data(IG_DIMS(4), IG_F64, cf);
        ig_tensor *w2 = ig_where(condf, ig_ones(IG_DIMS(4), dt), ig_zeros(IG_DIMS(4), dt));
        double want2[4] = {0, 1, 1, 1};
        for (int j = 0; j < 4; j++) cr_assert_eq(ig_tensor_get(w2, j), want2[j]);
    }
    /* integer comparisons */
    int64_t ia[3] = {INT64_MAX, -1, 5}, ib[3] = {INT64_MAX - 1, -1, 6};
    ig_tensor *x = ig_from_data(IG_DIMS(3), IG_I64, ia), *y = ig_from_data(IG_DIMS(3), IG_I64, ib);
    const uint8_t *g = ig_tensor_data(ig_gt(x, y)), *e = ig_tensor_data(ig_eq(x, y));
    cr_assert(g[0] == 1 && g[1] == 0 && g[2] == 0);
    cr_assert(e[0] == 0 && e[1] == 1 && e[2] == 0); /* exact: no rounding through double */
    ig_scope_end(s);
}

/* ---- gradients ------------------------------------------------------------------------- */

static ig_tensor *gc_arith(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return call_op(*(const int *)ctx, in[0], in[1]);
}

/* Checks op's gradients for both inputs at the given shapes (b kept away from zero). */
static void gradcheck_arith(int op, int na, const int64_t *sa, int nb, const int64_t *sb) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_randn(na, sa, IG_F64);
    ig_tensor *b = ig_add_scalar(ig_rand(nb, sb, IG_F64), 0.5);
    cr_assert(a && b, "%s", ig_last_error());
    ig_tensor *in[2] = {a, b};
    cr_assert(ig_set_requires_grad(a, true) == IG_OK && ig_set_requires_grad(b, true) == IG_OK);
    ig_status st = ig_gradcheck(gc_arith, in, 2, &op, NULL);
    cr_assert(st == IG_OK, "%s: %s", op_names[op], ig_last_error());
    ig_scope_end(s);
}

Test(core, binary_gradcheck_arith) {
    ig_manual_seed(7);
    for (int op = 0; op < N_ARITH; op++) {
        gradcheck_arith(op, IG_DIMS(3, 1), IG_DIMS(1, 4));
        gradcheck_arith(op, IG_DIMS(4), IG_DIMS(2, 3, 4));
        gradcheck_arith(op, IG_DIMS(2, 3, 4), IG_DIMS(4));
        gradcheck_arith(op, IG_DIMS(2, 3), 0, NULL);
        gradcheck_arith(op, IG_DIMS(2, 3), IG_DIMS(2, 3));
    }
}

/* op(transpose(a), b) with b broadcast: gradients through a view and a sum_to together. */
static ig_tensor *gc_arith_t(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return call_op(*(const int *)ctx, ig_transpose(in[0], 0, 1), in[1]);
}

Test(core, binary_gradcheck_non_contiguous) {
    ig_manual_seed(8);
    for (int op = 0; op < N_ARITH; op++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = ig_randn(IG_DIMS(4, 3), IG_F64);
        ig_tensor *b = ig_keep(ig_add_scalar(ig_rand(IG_DIMS(3, 1), IG_F64), 0.5));
        ig_tensor *in[2] = {a, b};
        ig_set_requires_grad(a, true);
        ig_set_requires_grad(b, true);
        ig_status st = ig_gradcheck(gc_arith_t, in, 2, &op, NULL);
        cr_assert(st == IG_OK, "%s: %s", op_names[op], ig_last_error());
        ig_scope_end(s);
        ig_tensor_free(b);
    }
}

static ig_tensor *gc_scalars(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return ig_mul_scalar(ig_add_scalar(in[0], 0.75), -2.5);
}

static ig_tensor *gc_where(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return ig_where((ig_tensor *)ctx, in[0], in[1]);
}

Test(core, binary_gradcheck_scalars_and_where) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(9);
    ig_tensor *x = ig_randn(IG_DIMS(2, 3), IG_F64);
    ig_set_requires_grad(x, true);
    cr_assert(ig_gradcheck(gc_scalars, &x, 1, NULL, NULL) == IG_OK, "%s", ig_last_error());

    /* cond [2,1], a [2,3], b [3]: b's gradient is summed over the broadcast dim */
    uint8_t cv[2] = {1, 0};
    ig_tensor *cond = ig_from_data(IG_DIMS(2, 1), IG_U8, cv);
    ig_tensor *a = ig_randn(IG_DIMS(2, 3), IG_F64), *b = ig_randn(IG_DIMS(3), IG_F64);
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    ig_tensor *in[2] = {a, b};
    cr_assert(ig_gradcheck(gc_where, in, 2, cond, NULL) == IG_OK, "%s", ig_last_error());

    /* and the values: d(sum where)/da = cond, d/db = number of false rows */
    ig_tensor *y = ig_sum(ig_where(cond, a, b), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 6; i++) cr_assert_eq(ig_tensor_get(ig_grad(a), i), i < 3 ? 1.0 : 0.0);
    for (int j = 0; j < 3; j++) cr_assert_eq(ig_tensor_get(ig_grad(b), j), 1.0);
    ig_scope_end(s);
}

Test(core, binary_grad_values_with_broadcast) {
    ig_scope *s = ig_scope_begin();
    /* y = sum(a * b), a [3,1], b [1,4]: da_i = sum_j b_j, db_j = sum_i a_i */
    ig_tensor *a = seq(IG_DIMS(3, 1), IG_F64, 1.0, 1.0), *b = seq(IG_DIMS(1, 4), IG_F64, 0.5, 0.5);
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    cr_assert(ig_backward(ig_sum(ig_mul(a, b), 0, NULL, false), NULL) == IG_OK, "%s", ig_last_error());
    check_shape(ig_grad(a), IG_DIMS(3, 1));
    check_shape(ig_grad(b), IG_DIMS(1, 4));
    for (int i = 0; i < 3; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(a), i), 0.5 + 1 + 1.5 + 2, 1e-12);
    for (int j = 0; j < 4; j++) cr_assert_float_eq(ig_tensor_get(ig_grad(b), j), 1.0 + 2 + 3, 1e-12);
    ig_scope_end(s);
}

/* ---- errors ---------------------------------------------------------------------------- */

Test(core, binary_shape_mismatch_messages) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(2, 3), IG_F32), *b = ig_zeros(IG_DIMS(4), IG_F32);
    for (int op = 0; op < N_ARITH; op++) {
        ig_clear_error();
        cr_assert_null(call_op(op, a, b));
        cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
        const char *m = ig_last_error();
        cr_assert(strstr(m, op_names[op]) && strstr(m, "[2,3]") && strstr(m, "[4]"), "%s", m);
    }
    ig_tensor *(*cmp[3])(ig_tensor *, ig_tensor *) = {ig_eq, ig_gt, ig_lt};
    const char *cmp_names[3] = {"ig_eq", "ig_gt", "ig_lt"};
    for (int k = 0; k < 3; k++) {
        ig_clear_error();
        cr_assert_null(cmp[k](a, b));
        cr_assert(strstr(ig_last_error(), cmp_names[k]) && strstr(ig_last_error(), "[2,3]"), "%s", ig_last_error());
    }
    ig_clear_error();
    cr_assert_null(ig_where(ig_zeros(IG_DIMS(5), IG_U8), a, a));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert(strstr(ig_last_error(), "ig_where") && strstr(ig_last_error(), "[5]"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_where(ig_zeros(IG_DIMS(2, 3), IG_U8), a, b));
    cr_assert(strstr(ig_last_error(), "ig_where"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, binary_dtype_mismatch_messages) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(2), IG_F32), *b = ig_zeros(IG_DIMS(2), IG_F64), *c = ig_zeros(IG_DIMS(2), IG_I64);
    for (int op = 0; op < N_ARITH; op++) {
        ig_clear_error();
        cr_assert_null(call_op(op, a, b));
        cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
        const char *m = ig_last_error();
        cr_assert(strstr(m, op_names[op]) && strstr(m, "float32") && strstr(m, "float64"), "%s", m);
        ig_clear_error();
        cr_assert_null(call_op(op, c, a));
        cr_assert(strstr(ig_last_error(), "int64"), "%s", ig_last_error());
    }
    ig_clear_error();
    cr_assert_null(ig_gt(a, c));
    cr_assert(strstr(ig_last_error(), "ig_gt"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_where(ig_ones(IG_DIMS(2), IG_U8), a, b));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    cr_assert(strstr(ig_last_error(), "ig_where"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, binary_null_arguments) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_ones(IG_DIMS(2), IG_F32);
    for (int op = 0; op < N_ARITH; op++) {
        ig_clear_error();
        cr_assert_null(call_op(op, NULL, a));
        cr_assert_eq(ig_last_status(), IG_ERR_ARG);
        cr_assert(strstr(ig_last_error(), op_names[op]), "%s", ig_last_error());
        ig_clear_error();
        cr_assert_null(call_op(op, a, NULL));
        cr_assert(strstr(ig_last_error(), op_names[op]), "%s", ig_last_error());
    }
    ig_clear_error();
    cr_assert_null(ig_add_scalar(NULL, 1));
    cr_assert(strstr(ig_last_error(), "ig_add_scalar"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_mul_scalar(NULL, 1));
    cr_assert(strstr(ig_last_error(), "ig_mul_scalar"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_eq(NULL, a));
    cr_assert(strstr(ig_last_error(), "ig_eq"), "%s", ig_last_error());
    for (int k = 0; k < 3; k++) {
        ig_clear_error();
        cr_assert_null(ig_where(k == 0 ? NULL : a, k == 1 ? NULL : a, k == 2 ? NULL : a));
        cr_assert_eq(ig_last_status(), IG_ERR_ARG);
        cr_assert(strstr(ig_last_error(), "ig_where"), "%s", ig_last_error());
    }

    /* A chain reports its first failure: the NULL from ig_mul reaches ig_add, which fails
     * without replacing ig_mul's message. */
    ig_tensor *b = ig_ones(IG_DIMS(2), IG_F32);
    ig_clear_error();
    cr_assert_null(ig_add(ig_mul(a, NULL), b));
    cr_assert(strstr(ig_last_error(), "ig_mul"), "%s", ig_last_error());
    cr_assert(!strstr(ig_last_error(), "ig_add"), "%s", ig_last_error());
    /* the same when the first failure is a shape error */
    ig_clear_error();
    cr_assert_null(ig_sub(ig_div(a, ig_ones(IG_DIMS(3), IG_F32)), b));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert(strstr(ig_last_error(), "ig_div"), "%s", ig_last_error());
    ig_scope_end(s);
}
