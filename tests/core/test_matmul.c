/*
 * tests/core/test_matmul.c — ig_matmul against a plain triple loop written here: every
 * shape case of torch.matmul (dot, 2-D, 1-D promotion on either side, batched with
 * broadcast batch dims), transposed / step-sliced / expanded operands, zero-size dims,
 * f32 and f64, gradients through ig_gradcheck, and the error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* Reference torch.matmul on row-major copies of a and b, in double. Returns the result
 * shape in (ond, oshape) and the values in a malloc'd array. */
static double *ref_matmul(ig_tensor *a, ig_tensor *b, int *ond, int64_t *oshape) {
    int na = ig_tensor_ndim(a), nb = ig_tensor_ndim(b);
    int64_t sa[8], sb[8];
    int pa = 0, pb = 0;
    if (na == 1) sa[pa++] = 1;
    for (int i = 0; i < na; i++) sa[pa++] = ig_tensor_shape(a)[i];
    for (int i = 0; i < nb; i++) sb[pb++] = ig_tensor_shape(b)[i];
    if (nb == 1) sb[pb++] = 1;
    int64_t M = sa[pa - 2], K = sa[pa - 1], N = sb[pb - 1];
    cr_assert_eq(sb[pb - 2], K);
    int bda = pa - 2, bdb = pb - 2, bd = bda > bdb ? bda : bdb;
    int64_t bs[8];
    for (int i = 0; i < bd; i++) {
        int ia = i - (bd - bda), ib = i - (bd - bdb);
        int64_t x = ia >= 0 ? sa[ia] : 1, y = ib >= 0 ? sb[ib] : 1;
        bs[i] = x == 1 ? y : x;
    }
    int64_t nbatch = 1;
    for (int i = 0; i < bd; i++) nbatch *= bs[i];
    int64_t numa = ig_tensor_numel(a), numb = ig_tensor_numel(b);
    double *A = malloc(sizeof(double) * (size_t)(numa + 1));
    double *B = malloc(sizeof(double) * (size_t)(numb + 1));
    double *C = calloc((size_t)(nbatch * M * N + 1), sizeof(double));
    cr_assert(ig_tensor_to_buffer(a, IG_F64, A, numa) == IG_OK);
    cr_assert(ig_tensor_to_buffer(b, IG_F64, B, numb) == IG_OK);
    for (int64_t bi = 0; bi < nbatch; bi++) {
        /* Batch index -> each operand's matrix number (broadcast dims pinned to 0). */
        int64_t rem = bi, ma = 0, mb = 0, mula = 1, mulb = 1;
        for (int d = bd - 1; d >= 0; d--) {
            int64_t id = rem % bs[d];
            rem /= bs[d];
            int ia = d - (bd - bda), ib = d - (bd - bdb);
            if (ia >= 0) {
                ma += (sa[ia] == 1 ? 0 : id) * mula;
                mula *= sa[ia];
            }
            if (ib >= 0) {
                mb += (sb[ib] == 1 ? 0 : id) * mulb;
                mulb *= sb[ib];
            }
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += A[ma * M * K + m * K + k] * B[mb * K * N + k * N + n];
                C[bi * M * N + m * N + n] = acc;
            }
    }
    *ond = 0;
    for (int i = 0; i < bd; i++) oshape[(*ond)++] = bs[i];
    if (na > 1) oshape[(*ond)++] = M;
    if (nb > 1) oshape[(*ond)++] = N;
    free(A);
    free(B);
    return C;
}

/* Runs ig_matmul(a, b) and compares shape, dtype and every value with the reference. */
static void check_matmul(ig_tensor *a, ig_tensor *b) {
    ig_tensor *c = ig_matmul(a, b);
    cr_assert(c, "%s", ig_last_error());
    int ond;
    int64_t os[8];
    double *want = ref_matmul(a, b, &ond, os);
    cr_assert_eq(ig_tensor_ndim(c), ond);
    for (int i = 0; i < ond; i++) cr_assert_eq(ig_tensor_shape(c)[i], os[i], "dim %d", i);
    cr_assert_eq(ig_tensor_dtype(c), ig_tensor_dtype(a));
    cr_assert(ig_tensor_is_contiguous(c));
    double tol = ig_tensor_dtype(a) == IG_F32 ? 1e-4 : 1e-12;
    for (int64_t i = 0; i < ig_tensor_numel(c); i++) {
        double got = ig_tensor_get(c, i);
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])), "element %lld: got %g want %g",
                  (long long)i, got, want[i]);
    }
    free(want);
}

static const ig_dtype float_dtypes[2] = {IG_F32, IG_F64};

Test(core, matmul_2d_values_hand_computed) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_from_data(IG_DIMS(2, 3), IG_F64, (double[]){1, 2, 3, 4, 5, 6});
    ig_tensor *b = ig_from_data(IG_DIMS(3, 2), IG_F64, (double[]){7, 8, 9, 10, 11, 12});
    ig_tensor *c = ig_matmul(a, b);
    cr_assert(c);
    double want[4] = {58, 64, 139, 154};
    for (int i = 0; i < 4; i++) cr_assert_float_eq(ig_tensor_get(c, i), want[i], 1e-12);
    ig_scope_end(s);
}

Test(core, matmul_2d_f32_f64) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(3);
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = float_dtypes[k];
        check_matmul(ig_randn(IG_DIMS(3, 4), dt), ig_randn(IG_DIMS(4, 5), dt));
        check_matmul(ig_randn(IG_DIMS(1, 1), dt), ig_randn(IG_DIMS(1, 7), dt));
        check_matmul(ig_randn(IG_DIMS(17, 33), dt), ig_randn(IG_DIMS(33, 9), dt));
    }
    ig_scope_end(s);
}

Test(core, matmul_transposed_views) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(4);
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = float_dtypes[k];
        ig_tensor *at = ig_transpose(ig_randn(IG_DIMS(4, 3), dt), 0, 1); /* [3,4] column-major */
        ig_tensor *bt = ig_transpose(ig_randn(IG_DIMS(5, 4), dt), 0, 1); /* [4,5] column-major */
        ig_tensor *a = ig_randn(IG_DIMS(3, 4), dt), *b = ig_randn(IG_DIMS(4, 5), dt);
        check_matmul(at, b);
        check_matmul(a, bt);
        check_matmul(at, bt);
        /* Column vectors and row vectors as transposes. */
        check_matmul(ig_transpose(ig_randn(IG_DIMS(1, 3), dt), 0, 1), ig_randn(IG_DIMS(1, 5), dt));
        /* Batched transposes of both. */
        ig_tensor *ab = ig_transpose(ig_randn(IG_DIMS(2, 4, 3), dt), 1, 2);
        ig_tensor *bb = ig_transpose(ig_randn(IG_DIMS(2, 5, 4), dt), -1, -2);
        check_matmul(ab, bb);
    }
    ig_scope_end(s);
}

Test(core, matmul_sliced_and_expanded_operands) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(5);
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = float_dtypes[k];
        /* Step along the last dim: neither layout fits, so a copy is made. */
        ig_tensor *a = ig_slice(ig_randn(IG_DIMS(3, 8), dt), 1, 0, 8, 2);
        ig_tensor *b = ig_slice(ig_randn(IG_DIMS(4, 10), dt), 1, 1, 10, 2);
        check_matmul(a, b);
        /* Step along rows: a row-major matrix with a larger leading dimension. */
        ig_tensor *ar = ig_slice(ig_randn(IG_DIMS(6, 4), dt), 0, 0, 6, 2);
        ig_tensor *br = ig_slice(ig_randn(IG_DIMS(8, 5), dt), 0, 1, 8, 2);
        check_matmul(ar, br);
        /* Narrowed columns: row-major with ld > cols. */
        check_matmul(ig_narrow(ig_randn(IG_DIMS(3, 9), dt), 1, 2, 4), ig_randn(IG_DIMS(4, 2), dt));
        /* Stride 0 inside a matrix. */
        ig_tensor *ae = ig_expand(ig_randn(IG_DIMS(1, 4), dt), IG_DIMS(3, 4));
        ig_tensor *be = ig_expand(ig_randn(IG_DIMS(4, 1), dt), IG_DIMS(4, 5));
        check_matmul(ae, be);
        /* A batch operand expanded along its batch dim (stride 0, not copied per batch). */
        ig_tensor *bx = ig_expand(ig_randn(IG_DIMS(1, 4, 5), dt), IG_DIMS(3, 4, 5));
        check_matmul(ig_randn(IG_DIMS(3, 2, 4), dt), bx);
        /* A batch whose rows cannot fold into one tall matrix. */
        ig_tensor *ap = ig_transpose(ig_randn(IG_DIMS(3, 2, 4), dt), 0, 1); /* [2,3,4] */
        check_matmul(ap, ig_randn(IG_DIMS(4, 5), dt));
        /* Single-row matrices whose batch stride is not the row length: folding the
         * batch into rows must use the batch stride as leading dimension. */
        check_matmul(ig_narrow(ig_randn(IG_DIMS(3, 1, 8), dt), 2, 0, 4), ig_randn(IG_DIMS(4, 2), dt));
        check_matmul(ig_narrow(ig_randn(IG_DIMS(2, 3, 1, 8), dt), 3, 2, 4), ig_randn(IG_DIMS(4, 2), dt));
        /* A row vector read with a step: a column-major single row, no copy needed. */
        check_matmul(ig_slice(ig_randn(IG_DIMS(1, 12), dt), 1, 0, 12, 3), ig_randn(IG_DIMS(4, 2), dt));
        /* Sliced batch with a step. */
        check_matmul(ig_slice(ig_randn(IG_DIMS(6, 3, 4), dt), 0, 0, 6, 3), ig_randn(IG_DIMS(4, 2), dt));
    }
    ig_scope_end(s);
}

Test(core, matmul_broadcast_batch) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(6);
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = float_dtypes[k];
        check_matmul(ig_randn(IG_DIMS(2, 1, 3, 4), dt), ig_randn(IG_DIMS(5, 4, 2), dt));
        check_matmul(ig_randn(IG_DIMS(3, 4), dt), ig_randn(IG_DIMS(2, 2, 4, 5), dt));
        check_matmul(ig_randn(IG_DIMS(2, 3, 4), dt), ig_randn(IG_DIMS(4, 5), dt));
        check_matmul(ig_randn(IG_DIMS(2, 3, 4), dt), ig_randn(IG_DIMS(2, 4, 5), dt));
        check_matmul(ig_randn(IG_DIMS(1, 3, 4), dt), ig_randn(IG_DIMS(3, 1, 4, 2), dt));
    }
    ig_scope_end(s);
}

Test(core, matmul_1d_cases) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(7);
    /* Dot product: a 0-dim result, hand-computed. */
    ig_tensor *x = ig_from_data(IG_DIMS(3), IG_F32, (float[]){1, 2, 3});
    ig_tensor *y = ig_from_data(IG_DIMS(3), IG_F32, (float[]){4, -5, 6});
    ig_tensor *d = ig_matmul(x, y);
    cr_assert(d, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(d), 0);
    cr_assert_float_eq(ig_item(d), 12.0, 1e-6);
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = float_dtypes[k];
        check_matmul(ig_randn(IG_DIMS(4), dt), ig_randn(IG_DIMS(4), dt));
        check_matmul(ig_randn(IG_DIMS(4), dt), ig_randn(IG_DIMS(4, 5), dt));
        check_matmul(ig_randn(IG_DIMS(3, 4), dt), ig_randn(IG_DIMS(4), dt));
        check_matmul(ig_randn(IG_DIMS(4), dt), ig_randn(IG_DIMS(2, 4, 5), dt));
        check_matmul(ig_randn(IG_DIMS(2, 3, 4), dt), ig_randn(IG_DIMS(4), dt));
        /* Strided vectors. */
        check_matmul(ig_slice(ig_randn(IG_DIMS(8), dt), 0, 0, 8, 2), ig_randn(IG_DIMS(4, 3), dt));
        check_matmul(ig_randn(IG_DIMS(3, 4), dt), ig_slice(ig_randn(IG_DIMS(12), dt), 0, 1, 12, 3));
        check_matmul(ig_select(ig_randn(IG_DIMS(4, 3), dt), 1, 1), ig_select(ig_randn(IG_DIMS(4, 3), dt), 1, 2));
        /* An expanded vector (stride 0): copied before BLAS. */
        check_matmul(ig_expand(ig_randn(IG_DIMS(1), dt), IG_DIMS(4)), ig_randn(IG_DIMS(4), dt));
        check_matmul(ig_randn(IG_DIMS(2, 4), dt), ig_expand(ig_randn(IG_DIMS(1), dt), IG_DIMS(4)));
    }
    ig_scope_end(s);
}

Test(core, matmul_zero_size_dims) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = float_dtypes[k];
        /* K == 0: a [3,5] of zeros. */
        ig_tensor *c = ig_matmul(ig_ones(IG_DIMS(3, 0), dt), ig_ones(IG_DIMS(0, 5), dt));
        cr_assert(c, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_ndim(c), 2);
        cr_assert_eq(ig_tensor_shape(c)[0], 3);
        cr_assert_eq(ig_tensor_shape(c)[1], 5);
        for (int i = 0; i < 15; i++) cr_assert_eq(ig_tensor_get(c, i), 0.0);
        /* Dot of empty vectors: 0. */
        ig_tensor *e = ig_matmul(ig_ones(IG_DIMS(0), dt), ig_ones(IG_DIMS(0), dt));
        cr_assert(e, "%s", ig_last_error());
        cr_assert_eq(ig_item(e), 0.0);
        /* Batched K == 0. */
        check_matmul(ig_ones(IG_DIMS(2, 3, 0), dt), ig_ones(IG_DIMS(0, 4), dt));
        /* M == 0, N == 0, batch == 0: empty results of the right shape. */
        ig_tensor *m0 = ig_matmul(ig_ones(IG_DIMS(0, 4), dt), ig_ones(IG_DIMS(4, 5), dt));
        cr_assert(m0);
        cr_assert_eq(ig_tensor_shape(m0)[0], 0);
        cr_assert_eq(ig_tensor_shape(m0)[1], 5);
        ig_tensor *n0 = ig_matmul(ig_ones(IG_DIMS(3, 4), dt), ig_ones(IG_DIMS(4, 0), dt));
        cr_assert(n0);
        cr_assert_eq(ig_tensor_shape(n0)[0], 3);
        cr_assert_eq(ig_tensor_shape(n0)[1], 0);
        ig_tensor *b0 = ig_matmul(ig_ones(IG_DIMS(0, 3, 4), dt), ig_ones(IG_DIMS(4, 5), dt));
        cr_assert(b0);
        cr_assert_eq(ig_tensor_numel(b0), 0);
        cr_assert_eq(ig_tensor_shape(b0)[1], 3);
        ig_tensor *t0 = ig_matmul(ig_transpose(ig_ones(IG_DIMS(0, 3), dt), 0, 1), ig_ones(IG_DIMS(0, 2), dt));
        cr_assert(t0, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(t0), 6);
        for (int i = 0; i < 6; i++) cr_assert_eq(ig_tensor_get(t0, i), 0.0);
    }
    ig_scope_end(s);
}

/* ---- gradients ------------------------------------------------------------------------- */

static ig_tensor *f_matmul(ig_tensor *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return ig_matmul(x[0], x[1]);
}

/* Both operands transposed inside the function (the graph goes through views). */
static ig_tensor *f_matmul_tt(ig_tensor *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return ig_matmul(ig_transpose(x[0], -1, -2), ig_transpose(x[1], -1, -2));
}

/* b transposed inside the function, as linear does (x @ W^T): dB takes the layout path. */
static ig_tensor *f_matmul_bt(ig_tensor *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return ig_matmul(x[0], ig_transpose(x[1], -1, -2));
}

static void gradcheck_shapes(ig_gradcheck_fn fn, int nda, const int64_t *sa, int ndb, const int64_t *sb) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_randn(nda, sa, IG_F64), *b = ig_randn(ndb, sb, IG_F64);
    cr_assert(ig_set_requires_grad(a, true) == IG_OK);
    cr_assert(ig_set_requires_grad(b, true) == IG_OK);
    ig_tensor *in[2] = {a, b};
    cr_assert(ig_gradcheck(fn, in, 2, NULL, NULL) == IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, matmul_gradcheck_every_shape_case) {
    ig_manual_seed(8);
    gradcheck_shapes(f_matmul, IG_DIMS(3, 4), IG_DIMS(4, 2));
    gradcheck_shapes(f_matmul_tt, IG_DIMS(4, 3), IG_DIMS(2, 4));
    gradcheck_shapes(f_matmul, IG_DIMS(4), IG_DIMS(4));
    gradcheck_shapes(f_matmul, IG_DIMS(4), IG_DIMS(4, 3));
    gradcheck_shapes(f_matmul, IG_DIMS(3, 4), IG_DIMS(4));
    gradcheck_shapes(f_matmul, IG_DIMS(4), IG_DIMS(2, 4, 3));
    gradcheck_shapes(f_matmul, IG_DIMS(2, 3, 4), IG_DIMS(4));
    gradcheck_shapes(f_matmul, IG_DIMS(2, 3, 4), IG_DIMS(4, 2));
    gradcheck_shapes(f_matmul, IG_DIMS(3, 4), IG_DIMS(2, 4, 2));
    gradcheck_shapes(f_matmul, IG_DIMS(2, 1, 3, 4), IG_DIMS(5, 4, 2));
    gradcheck_shapes(f_matmul_tt, IG_DIMS(2, 4, 3), IG_DIMS(1, 2, 4));
    gradcheck_shapes(f_matmul_bt, IG_DIMS(3, 4), IG_DIMS(5, 4));
    gradcheck_shapes(f_matmul_bt, IG_DIMS(2, 3, 4), IG_DIMS(5, 4));
    gradcheck_shapes(f_matmul_bt, IG_DIMS(2, 3, 1), IG_DIMS(5, 1));
}

Test(core, matmul_gradcheck_one_input_and_zero_k) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(9);
    /* Only b requires grad; a is a constant step-sliced view. */
    ig_tensor *a = ig_slice(ig_randn(IG_DIMS(3, 8), IG_F64), 1, 0, 8, 2);
    ig_tensor *b = ig_randn(IG_DIMS(4, 2), IG_F64);
    cr_assert(ig_set_requires_grad(b, true) == IG_OK);
    ig_tensor *in[2] = {a, b};
    cr_assert(ig_gradcheck(f_matmul, in, 2, NULL, NULL) == IG_OK, "%s", ig_last_error());
    /* K == 0: the gradients are empty, the backward must still run. */
    ig_tensor *a0 = ig_ones(IG_DIMS(2, 3, 0), IG_F64), *b0 = ig_ones(IG_DIMS(0, 2), IG_F64);
    ig_set_requires_grad(a0, true);
    ig_set_requires_grad(b0, true);
    ig_tensor *y = ig_sum(ig_matmul(a0, b0), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, matmul_backward_values_batched_broadcast) {
    ig_scope *s = ig_scope_begin();
    /* y = sum(A @ B) with A [2,1,2,3] ones and B [2,3,2] filled with 1..12:
     * dA[..., m, k] = sum over B's batch and n of B[b, k, n]; dB[b, k, n] = number of
     * A rows that meet it (2 outer batches x 2 rows) = 4. */
    ig_tensor *a = ig_ones(IG_DIMS(2, 1, 2, 3), IG_F64);
    ig_tensor *b = ig_reshape(ig_arange(1, 13, 1, IG_F64), IG_DIMS(2, 3, 2));
    b = ig_contiguous(b);
    ig_set_requires_grad(a, true);
    ig_tensor *bl = ig_keep(b);
    ig_set_requires_grad(bl, true);
    cr_assert(ig_backward(ig_sum(ig_matmul(a, bl), 0, NULL, false), NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 12; i++) {
        int k = i % 3;
        double want = (1 + 2 * k + 2 + 2 * k) + (7 + 2 * k + 8 + 2 * k);
        cr_assert_float_eq(ig_tensor_get(ig_grad(a), i), want, 1e-12, "dA %d", i);
        cr_assert_float_eq(ig_tensor_get(ig_grad(bl), i), 4.0, 1e-12, "dB %d", i);
    }
    ig_scope_end(s);
    ig_tensor_free(bl);
}

/* ---- errors ---------------------------------------------------------------------------- */

Test(core, matmul_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(64, 784), IG_F32), *b = ig_zeros(IG_DIMS(512, 256), IG_F32);
    ig_clear_error();
    cr_assert_null(ig_matmul(a, b));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    cr_assert(strstr(ig_last_error(), "inner dimensions differ"), "%s", ig_last_error());
    cr_assert(strstr(ig_last_error(), "[64,784]"), "%s", ig_last_error());
    cr_assert(strstr(ig_last_error(), "[512,256]"), "%s", ig_last_error());

    /* 1-D x 1-D of different lengths. */
    cr_assert_null(ig_matmul(ig_zeros(IG_DIMS(3), IG_F32), ig_zeros(IG_DIMS(4), IG_F32)));
    cr_assert(strstr(ig_last_error(), "ig_matmul: inner dimensions differ: [3] x [4]"), "%s", ig_last_error());

    /* Batch dims that do not broadcast. */
    cr_assert_null(ig_matmul(ig_zeros(IG_DIMS(2, 3, 4), IG_F32), ig_zeros(IG_DIMS(3, 4, 5), IG_F32)));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    cr_assert(strstr(ig_last_error(), "[2,3,4]"), "%s", ig_last_error());

    /* Dtype mismatch, integer dtype, 0-dim operand. */
    cr_assert_null(ig_matmul(ig_zeros(IG_DIMS(2, 2), IG_F32), ig_zeros(IG_DIMS(2, 2), IG_F64)));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    cr_assert_null(ig_matmul(ig_zeros(IG_DIMS(2, 2), IG_I64), ig_zeros(IG_DIMS(2, 2), IG_I64)));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    cr_assert_null(ig_matmul(ig_scalar(2, IG_F32), ig_zeros(IG_DIMS(2), IG_F32)));
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());

    /* NULL inputs (a chained failure keeps its first message). */
    ig_clear_error();
    cr_assert_null(ig_matmul(NULL, a));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_matmul(a, NULL));
    cr_assert(strstr(ig_last_error(), "ig_matmul"), "%s", ig_last_error());
    cr_assert_null(ig_matmul(ig_matmul(a, b), a));
    cr_assert(strstr(ig_last_error(), "inner dimensions differ"), "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, matmul_heap_tensors_do_not_leak) {
    /* No scope open: the output and any internal copy are heap tensors. */
    ig_manual_seed(10);
    ig_tensor *a = ig_randn(IG_DIMS(3, 8), IG_F32);
    ig_tensor *as = ig_slice(a, 1, 0, 8, 2); /* needs an internal contiguous copy */
    ig_tensor *b = ig_randn(IG_DIMS(4, 2), IG_F32);
    ig_tensor *c = ig_matmul(as, b);
    cr_assert(c, "%s", ig_last_error());
    ig_tensor_free(c);
    ig_tensor_free(as);
    ig_tensor_free(a);
    ig_tensor_free(b);
    assert_no_live_bytes();
}
