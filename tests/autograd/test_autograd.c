/*
 * tests/autograd/test_autograd.c — the autograd engine and gradcheck: accumulation over
 * shared inputs, seeds, every user-error path, grad mode, detach, gradient buffers
 * (ig_zero_grad, ig_set_grad into a view of a flat buffer), repeated backward, backward
 * through views, and ig_gradcheck catching a wrong gradient and rejecting f32 inputs.
 *
 * Gradients are checked against derivatives worked out by hand in each test.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static ig_tensor *leaf(int ndim, const int64_t *shape, const double *v) {
    ig_tensor *t = ig_from_data(ndim, shape, IG_F64, v);
    cr_assert_not_null(t);
    cr_assert_eq(ig_set_requires_grad(t, true), IG_OK, "%s", ig_last_error());
    return t;
}

static double g_at(const ig_tensor *t, int64_t i) {
    ig_tensor *g = ig_grad(t);
    cr_assert_not_null(g, "no gradient");
    return ig_tensor_get(g, i);
}

static ig_tensor *sum_all(ig_tensor *t) { return ig_sum(t, 0, NULL, false); }

Test(autograd, tensor_used_twice_gets_both_contributions) {
    ig_scope *s = ig_scope_begin();
    const double v[3] = {1, -2, 0.5};
    ig_tensor *x = leaf(IG_DIMS(3), v);
    /* y = sum(x*x + x - 3x) : dy/dx = 2x + 1 - 3 */
    ig_tensor *y = sum_all(ig_sub(ig_add(ig_mul(x, x), x), ig_mul_scalar(x, 3)));
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 3; i++) cr_assert_float_eq(g_at(x, i), 2 * v[i] - 2, 1e-12);
    /* A diamond: a = 2x, y = a * a: dy/dx = 8x. */
    ig_tensor *x2 = leaf(IG_DIMS(3), v);
    ig_tensor *a = ig_mul_scalar(x2, 2);
    cr_assert_eq(ig_backward(sum_all(ig_mul(a, a)), NULL), IG_OK);
    for (int i = 0; i < 3; i++) cr_assert_float_eq(g_at(x2, i), 8 * v[i], 1e-12);
    ig_scope_end(s);
}

Test(autograd, non_scalar_backward_needs_a_seed) {
    ig_scope *s = ig_scope_begin();
    const double v[4] = {1, 2, 3, 4};
    ig_tensor *x = leaf(IG_DIMS(2, 2), v);
    ig_tensor *y = ig_mul(x, x); /* [2,2] */
    ig_clear_error();
    cr_assert_eq(ig_backward(y, NULL), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_backward");
    cr_assert(strstr(ig_last_error(), "seed"), "%s", ig_last_error());
    cr_assert_null(ig_grad(x), "a failed backward must not touch the leaves");
    const double sd[4] = {1, 0, -1, 0.5};
    ig_tensor *seed = ig_from_data(IG_DIMS(2, 2), IG_F64, sd);
    cr_assert_eq(ig_backward(y, seed), IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 4; i++) cr_assert_float_eq(g_at(x, i), 2 * v[i] * sd[i], 1e-12);
    /* A strided seed works as well: seed^T of a [2,2]. */
    ig_zero_grad(x);
    cr_assert_eq(ig_backward(y, ig_transpose(seed, 0, 1)), IG_OK);
    const double sdt[4] = {1, -1, 0, 0.5};
    for (int i = 0; i < 4; i++) cr_assert_float_eq(g_at(x, i), 2 * v[i] * sdt[i], 1e-12);
    /* A one-element non-scalar output needs no seed. */
    ig_tensor *x1 = leaf(IG_DIMS(1, 1), v);
    cr_assert_eq(ig_backward(ig_mul_scalar(x1, 5), NULL), IG_OK);
    cr_assert_eq(g_at(x1, 0), 5.0);
    ig_scope_end(s);
}

Test(autograd, seed_mismatch_errors) {
    ig_scope *s = ig_scope_begin();
    const double v[6] = {1, 2, 3, 4, 5, 6};
    ig_tensor *x = leaf(IG_DIMS(2, 3), v);
    ig_tensor *y = ig_mul_scalar(x, 2);
    ig_clear_error();
    cr_assert_eq(ig_backward(y, ig_ones(IG_DIMS(3, 2), IG_F64)), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_backward");
    ig_clear_error();
    cr_assert_eq(ig_backward(y, ig_ones(IG_DIMS(3), IG_F64)), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_backward");
    ig_clear_error();
    cr_assert_eq(ig_backward(y, ig_ones(IG_DIMS(2, 3), IG_F32)), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_backward");
    cr_assert(strstr(ig_last_error(), "float32"), "%s", ig_last_error());
    cr_assert_null(ig_grad(x));
    ig_clear_error();
    cr_assert_eq(ig_backward(NULL, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_backward");
    ig_scope_end(s);
}

Test(autograd, requires_grad_rules) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *c = ig_ones(IG_DIMS(3), IG_F64);
    ig_clear_error();
    cr_assert_eq(ig_backward(ig_mul(c, c), NULL), IG_ERR_STATE);
    ig_clear_error();
    cr_assert_eq(ig_backward(sum_all(ig_mul(c, c)), NULL), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_backward");
    const ig_dtype ints[3] = {IG_I32, IG_I64, IG_U8};
    for (int k = 0; k < 3; k++) {
        ig_tensor *t = ig_zeros(IG_DIMS(2), ints[k]);
        ig_clear_error();
        cr_assert_eq(ig_set_requires_grad(t, true), IG_ERR_DTYPE);
        ASSERT_ERR(IG_ERR_DTYPE, "ig_set_requires_grad");
        cr_assert(!ig_requires_grad(t));
        cr_assert_eq(ig_set_requires_grad(t, false), IG_OK);
    }
    ig_tensor *x = ig_ones(IG_DIMS(2), IG_F32);
    cr_assert(ig_is_leaf(x) && !ig_requires_grad(x));
    cr_assert_eq(ig_set_requires_grad(x, true), IG_OK);
    ig_tensor *y = ig_add_scalar(x, 1);
    cr_assert(!ig_is_leaf(y) && ig_requires_grad(y));
    cr_assert_eq(ig_set_requires_grad(y, true), IG_OK);
    ig_clear_error();
    cr_assert_eq(ig_set_requires_grad(y, false), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_set_requires_grad");
    ig_clear_error();
    cr_assert_eq(ig_set_requires_grad(NULL, true), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_set_requires_grad");
    /* Comparisons are not differentiable: their masks do not require grad. */
    cr_assert(!ig_requires_grad(ig_gt(x, ig_zeros(IG_DIMS(2), IG_F32))));
    /* Turning requires_grad off makes later ops untracked. */
    cr_assert_eq(ig_set_requires_grad(x, false), IG_OK);
    cr_assert(ig_is_leaf(ig_add_scalar(x, 1)));
    ig_scope_end(s);
}

Test(autograd, no_grad_mode_nests) {
    ig_scope *s = ig_scope_begin();
    const double v[2] = {1, 2};
    ig_tensor *x = leaf(IG_DIMS(2), v);
    cr_assert(ig_is_grad_enabled());
    ig_no_grad_begin();
    ig_no_grad_begin();
    cr_assert(!ig_is_grad_enabled());
    ig_tensor *a = ig_mul(x, x);
    ig_no_grad_end();
    cr_assert(!ig_is_grad_enabled(), "one end of two begins leaves grad off");
    ig_tensor *b = ig_transpose(ig_add_scalar(x, 1), 0, 0);
    cr_assert(ig_is_leaf(a) && !ig_requires_grad(a));
    cr_assert(ig_is_leaf(b) && !ig_requires_grad(b));
    ig_clear_error();
    cr_assert_eq(ig_backward(sum_all(a), NULL), IG_ERR_STATE);
    ig_no_grad_end();
    cr_assert(ig_is_grad_enabled());
    /* Extra ends do not underflow into a state that needs extra begins. */
    ig_no_grad_end();
    cr_assert(ig_is_grad_enabled());
    ig_no_grad_begin();
    cr_assert(!ig_is_grad_enabled());
    ig_no_grad_end();
    cr_assert(ig_requires_grad(ig_mul(x, x)));
    /* Backward called inside no-grad mode works and restores the mode. */
    ig_tensor *y = sum_all(ig_mul(x, x));
    ig_no_grad_begin();
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
    cr_assert(!ig_is_grad_enabled());
    ig_no_grad_end();
    cr_assert(ig_is_grad_enabled());
    cr_assert_eq(g_at(x, 1), 4.0);
    ig_scope_end(s);
}

Test(autograd, detach_cuts_the_graph) {
    ig_scope *s = ig_scope_begin();
    const double v[3] = {1, 2, 3};
    ig_tensor *x = leaf(IG_DIMS(3), v);
    ig_tensor *y = ig_mul(x, x);
    ig_tensor *d = ig_detach(y);
    cr_assert(ig_is_leaf(d) && !ig_requires_grad(d));
    cr_assert_eq(ig_tensor_data(d), ig_tensor_data(y), "detach shares data");
    /* z = sum(d * x): d is a constant x^2, so dz/dx = x^2 (not 3x^2). */
    cr_assert_eq(ig_backward(sum_all(ig_mul(d, x)), NULL), IG_OK);
    for (int i = 0; i < 3; i++) cr_assert_float_eq(g_at(x, i), v[i] * v[i], 1e-12);
    /* A detached view of a strided tensor keeps its geometry. */
    ig_tensor *dt = ig_detach(ig_transpose(ig_reshape(x, IG_DIMS(1, 3)), 0, 1));
    cr_assert_eq(ig_tensor_shape(dt)[0], 3);
    cr_assert_eq(ig_tensor_get(dt, 2), 3.0);
    ig_clear_error();
    cr_assert_null(ig_detach(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_detach");
    ig_scope_end(s);
}

Test(autograd, backward_twice_accumulates_and_zero_grad) {
    ig_scope *s = ig_scope_begin();
    const double v[3] = {1, -1, 2};
    ig_tensor *x = leaf(IG_DIMS(3), v);
    ig_tensor *y = sum_all(ig_mul(ig_mul(x, x), x)); /* dy/dx = 3x^2 */
    cr_assert_eq(ig_backward(y, NULL), IG_OK);
    ig_tensor *g = ig_grad(x);
    for (int i = 0; i < 3; i++) cr_assert_float_eq(g_at(x, i), 3 * v[i] * v[i], 1e-12);
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "the graph stays recorded");
    for (int i = 0; i < 3; i++) cr_assert_float_eq(g_at(x, i), 6 * v[i] * v[i], 1e-12);
    cr_assert_eq(ig_grad(x), g, "accumulation keeps the buffer");
    ig_zero_grad(x);
    cr_assert_eq(ig_grad(x), g);
    for (int i = 0; i < 3; i++) cr_assert_eq(g_at(x, i), 0.0);
    cr_assert_eq(ig_backward(y, NULL), IG_OK);
    cr_assert_float_eq(g_at(x, 2), 12.0, 1e-12);
    /* zero_grad without a gradient, and on NULL, does nothing. */
    ig_tensor *fresh = leaf(IG_DIMS(3), v);
    ig_zero_grad(fresh);
    cr_assert_null(ig_grad(fresh));
    ig_zero_grad(NULL);
    /* A leaf's gradient is a heap tensor: it outlives an inner scope's graph. */
    ig_scope *inner = ig_scope_begin();
    cr_assert_eq(ig_backward(sum_all(ig_mul_scalar(fresh, 4)), NULL), IG_OK);
    ig_scope_end(inner);
    cr_assert_eq(g_at(fresh, 1), 4.0);
    ig_scope_end(s);
}

Test(autograd, set_grad_into_a_flat_buffer_view) {
    /* A flat gradient buffer for two parameters, made outside any scope (a heap tensor). */
    ig_tensor *flat = ig_zeros(IG_DIMS(12), IG_F64);
    ig_tensor *nw = ig_narrow(flat, 0, 1, 6), *nb = ig_narrow(flat, 0, 7, 4);
    ig_tensor *gw_rows = ig_view(nw, IG_DIMS(2, 3));  /* flat[1..7) */
    ig_tensor *gb_full = ig_view(nb, IG_DIMS(2, 2));  /* flat[7..11) */
    ig_tensor *gb = ig_transpose(gb_full, 0, 1);                            /* strided */
    ig_scope *s = ig_scope_begin();
    const double wv[6] = {1, 2, 3, 4, 5, 6}, bv[4] = {-1, 0.5, 2, 3};
    ig_tensor *w = leaf(IG_DIMS(2, 3), wv);
    ig_tensor *b = leaf(IG_DIMS(2, 2), bv);
    cr_assert_eq(ig_set_grad(w, gw_rows), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_set_grad(b, gb), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_grad(w), gw_rows);
    /* y = sum(w*w) + sum(b * [[1,2],[3,4]]): dy/dw = 2w, dy/db[i][j] = 2i + j + 1. */
    ig_tensor *k = ig_from_data(IG_DIMS(2, 2), IG_F64, (double[]){1, 2, 3, 4});
    ig_tensor *y = ig_add(sum_all(ig_mul(w, w)), sum_all(ig_mul(b, k)));
    for (int round = 1; round <= 2; round++) {
        cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
        const double *f = ig_tensor_data(flat);
        cr_assert_eq(f[0], 0.0);
        for (int i = 0; i < 6; i++) cr_assert_float_eq(f[1 + i], round * 2 * wv[i], 1e-12);
        /* b's gradient lands transposed in the buffer: flat[7 + 2j + i] = grad b[i][j]. */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) cr_assert_float_eq(f[7 + 2 * j + i], round * (2.0 * i + j + 1), 1e-12);
        cr_assert_eq(f[11], 0.0);
    }
    ig_zero_grad(w);
    cr_assert_eq(((double *)ig_tensor_data(flat))[3], 0.0);
    cr_assert_neq(((double *)ig_tensor_data(flat))[7], 0.0, "zero_grad of w leaves b's part");
    /* Mismatches and scoped buffers are refused. */
    ig_clear_error();
    cr_assert_eq(ig_set_grad(w, gb_full), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_set_grad");
    ig_clear_error();
    cr_assert_eq(ig_set_grad(w, ig_zeros(IG_DIMS(2, 3), IG_F64)), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_set_grad");
    ig_clear_error();
    cr_assert_eq(ig_set_grad(NULL, gw_rows), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_set_grad");
    ig_scope_end(s); /* w and b drop their references to the buffers */
    ig_tensor *wf = ig_zeros(IG_DIMS(2, 3), IG_F32);
    ig_clear_error();
    cr_assert_eq(ig_set_grad(wf, gw_rows), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_set_grad");
    /* ig_set_grad(t, NULL) drops the buffer. */
    cr_assert_eq(ig_set_grad(wf, NULL), IG_OK);
    cr_assert_null(ig_grad(wf));
    ig_tensor_free(wf);
    ig_tensor_free(gb);
    ig_tensor_free(gb_full);
    ig_tensor_free(gw_rows);
    ig_tensor_free(nw);
    ig_tensor_free(nb);
    ig_tensor_free(flat);
}

Test(autograd, backward_through_views) {
    ig_scope *s = ig_scope_begin();
    double v[6];
    for (int i = 0; i < 6; i++) v[i] = i + 1.0;
    ig_tensor *x = leaf(IG_DIMS(2, 3), v);
    /* t = x^T [3,2]; r = t[1:3] (rows 1, 2 of t = columns 1, 2 of x) [2,2];
     * e = r expanded to [4,2,2]; y = sum(e * e) = 4 * sum(r^2): dy/dx = 8x on columns 1, 2. */
    ig_tensor *r = ig_slice(ig_transpose(x, 0, 1), 0, 1, 3, 1);
    ig_tensor *e = ig_expand(ig_unsqueeze(r, 0), IG_DIMS(4, 2, 2));
    cr_assert_eq(ig_backward(sum_all(ig_mul(e, e)), NULL), IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            cr_assert_float_eq(g_at(x, i * 3 + j), j >= 1 ? 8 * v[i * 3 + j] : 0.0, 1e-12);
    /* Backward from a leaf itself with a seed adds the seed. */
    ig_tensor *l = leaf(IG_DIMS(2), v);
    ig_tensor *sd = ig_from_data(IG_DIMS(2), IG_F64, (double[]){3, -4});
    cr_assert_eq(ig_backward(l, sd), IG_OK);
    cr_assert_eq(g_at(l, 1), -4.0);
    cr_assert_eq(ig_backward(l, NULL) == IG_ERR_SHAPE, true);
    ig_scope_end(s);
}

Test(autograd, gradient_flows_only_to_inputs_that_need_it) {
    ig_scope *s = ig_scope_begin();
    const double v[2] = {2, 3};
    ig_tensor *x = leaf(IG_DIMS(2), v);
    ig_tensor *c = ig_from_data(IG_DIMS(2), IG_F64, v); /* a constant */
    cr_assert_eq(ig_backward(sum_all(ig_div(c, x)), NULL), IG_OK);
    for (int i = 0; i < 2; i++) cr_assert_float_eq(g_at(x, i), -v[i] / (v[i] * v[i]), 1e-12);
    cr_assert_null(ig_grad(c));
    /* where: the gradient goes to the chosen branch only. */
    ig_tensor *a = leaf(IG_DIMS(2), v), *b = leaf(IG_DIMS(2), v);
    ig_tensor *cond = ig_from_data(IG_DIMS(2), IG_U8, (uint8_t[]){1, 0});
    cr_assert_eq(ig_backward(sum_all(ig_where(cond, a, ig_neg(b))), NULL), IG_OK);
    cr_assert_eq(g_at(a, 0), 1.0);
    cr_assert_eq(g_at(a, 1), 0.0);
    cr_assert_eq(g_at(b, 0), 0.0);
    cr_assert_eq(g_at(b, 1), -1.0);
    ig_scope_end(s);
}

/* ---- gradcheck -------------------------------------------------------------------------- */

static ig_tensor *f_mul_add_broadcast(ig_tensor *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    /* x0 [3,4], x1 [4]: sum over dim 0 of x0*x1 + x0/x1 - (-x0) */
    ig_tensor *t = ig_sub(ig_add(ig_mul(x[0], x[1]), ig_div(x[0], x[1])), ig_neg(x[0]));
    return ig_sum(t, 1, (int[]){0}, false);
}

Test(autograd, gradcheck_binary_ops_with_broadcasting) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(1);
    ig_tensor *a = ig_randn(IG_DIMS(3, 4), IG_F64);
    ig_tensor *b = ig_add_scalar(ig_rand(IG_DIMS(4), IG_F64), 1.0); /* away from 0 */
    b = ig_detach(b);
    cr_assert_eq(ig_set_requires_grad(a, true), IG_OK);
    cr_assert_eq(ig_set_requires_grad(b, true), IG_OK);
    ig_tensor *in[2] = {a, b};
    cr_assert_eq(ig_gradcheck(f_mul_add_broadcast, in, 2, NULL, NULL), IG_OK, "%s", ig_last_error());
    /* gradcheck leaves the inputs' gradients as they were. */
    cr_assert_null(ig_grad(a));
    ig_tensor *y = sum_all(ig_mul(a, b));
    cr_assert_eq(ig_backward(y, NULL), IG_OK);
    ig_tensor *ga = ig_grad(a);
    cr_assert_eq(ig_gradcheck(f_mul_add_broadcast, in, 2, NULL, NULL), IG_OK);
    cr_assert_eq(ig_grad(a), ga);
    for (int i = 0; i < 12; i++) cr_assert_float_eq(ig_tensor_get(ga, i), ig_tensor_get(b, i % 4), 1e-12);
    ig_scope_end(s);
}

/* x * detach(x): the analytic gradient is x (detach hides the second factor) while the
 * function's true derivative is 2x, so gradcheck must report a mismatch. */
static ig_tensor *f_wrong_grad(ig_tensor *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return ig_mul(x[0], ig_detach(x[0]));
}

static ig_tensor *f_identity(ig_tensor *const *x, int n, void *ctx) {
    (void)n;
    (void)ctx;
    return ig_mul_scalar(x[0], 1.0);
}

static ig_tensor *f_null(ig_tensor *const *x, int n, void *ctx) {
    (void)x;
    (void)n;
    (void)ctx;
    return ig_reshape(x[0], IG_DIMS(7)); /* wrong size: fails */
}

Test(autograd, gradcheck_catches_a_wrong_gradient) {
    ig_scope *s = ig_scope_begin();
    const double v[3] = {1, 2, -3};
    ig_tensor *x = leaf(IG_DIMS(3), v);
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(f_wrong_grad, &x, 1, NULL, NULL), IG_ERR_GRADCHECK);
    ASSERT_ERR(IG_ERR_GRADCHECK, "ig_gradcheck");
    cr_assert(strstr(ig_last_error(), "analytic") && strstr(ig_last_error(), "numeric"), "%s",
              ig_last_error());
    /* Loose enough tolerances accept it (|x - 2x| <= atol + rtol * |2x|). */
    ig_gradcheck_opts loose = {0, 10.0, 0};
    cr_assert_eq(ig_gradcheck(f_wrong_grad, &x, 1, NULL, &loose), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

Test(autograd, gradcheck_argument_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *xf = ig_ones(IG_DIMS(3), IG_F32);
    ig_set_requires_grad(xf, true);
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(f_identity, &xf, 1, NULL, NULL), IG_ERR_DTYPE);
    ASSERT_ERR(IG_ERR_DTYPE, "ig_gradcheck");
    cr_assert(strstr(ig_last_error(), "float64"), "%s", ig_last_error());
    const double v[3] = {1, 2, 3};
    ig_tensor *x = leaf(IG_DIMS(3), v);
    ig_tensor *nl = ig_mul_scalar(x, 2);
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(f_identity, &nl, 1, NULL, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_gradcheck");
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(NULL, &x, 1, NULL, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_gradcheck");
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(f_identity, &x, 0, NULL, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_gradcheck");
    ig_tensor *none[1] = {NULL};
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(f_identity, none, 1, NULL, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_gradcheck");
    /* fn's own failure is reported as fn left it. */
    ig_clear_error();
    cr_assert_eq(ig_gradcheck(f_null, &x, 1, NULL, NULL), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_reshape");
    ig_scope_end(s);
}

/* ig_backward drops each gradient's storage once it has been consumed, so a chain of L
 * ops needs memory for a few gradients at a time, not L of them, on top of the saved
 * activations. The chain also routes one gradient into two inputs (add(y, y): the same
 * gradient tensor held twice) and through a view (reshape), and the result must still be
 * the hand-derived value: d/dx sum(2^L * ... ) with tanh replaced by add(y, y). */
Test(autograd, backward_releases_consumed_gradients) {
    const int64_t n = 1 << 20; /* 8 MiB of f64 per tensor */
    const int L = 12;
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_full(IG_DIMS(n), IG_F64, 0.25);
    cr_assert_eq(ig_set_requires_grad(x, true), IG_OK);
    ig_tensor *y = x;
    for (int i = 0; i < L; i++) {
        y = (i % 3 == 2) ? ig_reshape(ig_tanh(y), 1, (const int64_t[]){n}) : ig_tanh(y);
        if (i % 4 == 1) y = ig_add(y, y);
        cr_assert_not_null(y, "%s", ig_last_error());
    }
    ig_tensor *loss = ig_sum(y, 0, NULL, false);
    ig_mem_stats before, after;
    ig_mem_get_stats(IG_CPU, &before);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    ig_mem_get_stats(IG_CPU, &after);
    /* Footprint (live + cached) grows by the few gradients alive at once and x.grad: far
     * less than the L gradients of the chain (L * 8 MiB) held to the end. */
    int64_t grown = (after.live_bytes + after.cached_bytes) - (before.live_bytes + before.cached_bytes);
    cr_assert_lt(grown, 5 * n * (int64_t)sizeof(double), "backward grew the footprint by %lld bytes",
                 (long long)grown);
    /* The gradient of element 0 by the chain rule, in double, from the same forward. */
    double v = 0.25, d = 1.0;
    for (int i = 0; i < L; i++) {
        v = tanh(v);
        d *= 1.0 - v * v;
        if (i % 4 == 1) {
            v *= 2.0;
            d *= 2.0;
        }
    }
    cr_assert(fabs(ig_tensor_get(ig_grad(x), 0) - d) <= 1e-12 * fabs(d), "got %.17g want %.17g",
              ig_tensor_get(ig_grad(x), 0), d);
    cr_assert(fabs(ig_tensor_get(ig_grad(x), n - 1) - d) <= 1e-12 * fabs(d));
    ig_scope_end(s);
}
