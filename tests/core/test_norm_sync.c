/*
 * tests/core/test_norm_sync.c — synchronised batch norm (igi_batch_norm_sync) in one
 * process, with fake groups: a group of one (the sum is the identity: exactly
 * ig_batch_norm), and a group of two whose other member holds the same batch (the sum
 * doubles: the same as ig_batch_norm over the batch concatenated with itself). Also the
 * reductions' count, eval mode (no reduction) and errors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../core/tensor_impl.h"
#include "../../ignis.h"

typedef struct fake_group {
    double factor; /* 1: a group of one; 2: two members with identical data */
    int calls;
    bool fail;
} fake_group;

static ig_status fake_sum(void *ctx, double *vals, int64_t n) {
    fake_group *g = ctx;
    g->calls++;
    if (g->fail) return igi_error(IG_ERR_STATE, "fake group: member 1 is gone");
    for (int64_t i = 0; i < n; i++) vals[i] *= g->factor;
    return IG_OK;
}

/* A separate copy (ig_contiguous may return its input itself). */
static ig_tensor *copy(ig_tensor *t) {
    ig_tensor *c = ig_zeros(ig_tensor_ndim(t), ig_tensor_shape(t), ig_tensor_dtype(t));
    cr_assert_eq(ig_copy_(c, t), IG_OK);
    return c;
}

static void assert_close(ig_tensor *a, ig_tensor *b, double scale_b, double tol) {
    cr_assert_eq(ig_tensor_numel(a), ig_tensor_numel(b));
    for (int64_t i = 0; i < ig_tensor_numel(a); i++) {
        double x = ig_tensor_get(a, i), y = scale_b * ig_tensor_get(b, i);
        cr_assert(fabs(x - y) <= tol * (1 + fabs(y)), "element %lld: %.17g vs %.17g", (long long)i, x, y);
    }
}

/* x [4,3,2,2] (non-contiguous: a transposed view), weight/bias [3], upstream r. */
Test(core, batch_norm_sync_group_of_one_is_batch_norm) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    ig_tensor *xb = ig_randn(IG_DIMS(4, 3, 2, 2), IG_F64);
    ig_tensor *x1 = copy(xb), *x2 = copy(xb);
    ig_set_requires_grad(x1, true);
    ig_set_requires_grad(x2, true);
    ig_tensor *w1 = ig_randn(IG_DIMS(3), IG_F64), *b1 = ig_randn(IG_DIMS(3), IG_F64);
    ig_tensor *w2 = copy(w1), *b2 = copy(b1);
    ig_tensor *ws[4] = {w1, b1, w2, b2};
    for (int i = 0; i < 4; i++) ig_set_requires_grad(ws[i], true);
    ig_tensor *rm1 = ig_zeros(IG_DIMS(3), IG_F64), *rv1 = ig_ones(IG_DIMS(3), IG_F64);
    ig_tensor *rm2 = ig_zeros(IG_DIMS(3), IG_F64), *rv2 = ig_ones(IG_DIMS(3), IG_F64);
    fake_group g = {1.0, 0, false};
    igi_bn_sync sync = {fake_sum, &g};
    ig_tensor *y1 = igi_batch_norm_sync(ig_transpose(x1, 2, 3), rm1, rv1, w1, b1, true, 0.1, 1e-5, &sync);
    ig_tensor *y2 = ig_batch_norm(ig_transpose(x2, 2, 3), rm2, rv2, w2, b2, true, 0.1, 1e-5);
    cr_assert(y1 && y2, "%s", ig_last_error());
    cr_assert_eq(g.calls, 2); /* sums and count, then squared deviations */
    assert_close(y1, y2, 1, 1e-12);
    assert_close(rm1, rm2, 1, 1e-12);
    assert_close(rv1, rv2, 1, 1e-12);
    ig_tensor *r = ig_randn(IG_DIMS(4, 3, 2, 2), IG_F64);
    cr_assert_eq(ig_backward(ig_sum(ig_mul(y1, r), 0, NULL, false), NULL), IG_OK);
    cr_assert_eq(g.calls, 3); /* sum(g), sum(g * xhat) */
    cr_assert_eq(ig_backward(ig_sum(ig_mul(y2, r), 0, NULL, false), NULL), IG_OK);
    assert_close(ig_grad(x1), ig_grad(x2), 1, 1e-12);
    assert_close(ig_grad(w1), ig_grad(w2), 1, 1e-12);
    assert_close(ig_grad(b1), ig_grad(b2), 1, 1e-12);
    ig_scope_end(s);
}

Test(core, batch_norm_sync_two_identical_members) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(12);
    ig_tensor *x = ig_randn(IG_DIMS(3, 2, 5), IG_F64), *w = ig_randn(IG_DIMS(2), IG_F64);
    ig_tensor *xr = copy(x), *wr = copy(w);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(xr, true);
    ig_set_requires_grad(wr, true);
    ig_tensor *rv1 = ig_ones(IG_DIMS(2), IG_F64), *rv2 = ig_ones(IG_DIMS(2), IG_F64);
    fake_group g = {2.0, 0, false};
    igi_bn_sync sync = {fake_sum, &g};
    /* This member's half vs. plain batch norm over [x; x]. */
    ig_tensor *y = igi_batch_norm_sync(x, NULL, rv1, w, NULL, true, 0.5, 1e-5, &sync);
    ig_tensor *both[2] = {xr, xr};
    ig_tensor *yr = ig_batch_norm(ig_cat(both, 2, 0), NULL, rv2, wr, NULL, true, 0.5, 1e-5);
    cr_assert(y && yr, "%s", ig_last_error());
    assert_close(y, ig_slice(yr, 0, 0, 3, 1), 1, 1e-12);
    assert_close(rv1, rv2, 1, 1e-12); /* unbiased with the group's count 2*15 */
    ig_tensor *r = ig_randn(IG_DIMS(3, 2, 5), IG_F64);
    ig_tensor *rr[2] = {r, r};
    cr_assert_eq(ig_backward(ig_sum(ig_mul(y, r), 0, NULL, false), NULL), IG_OK);
    cr_assert_eq(ig_backward(ig_sum(ig_mul(yr, ig_cat(rr, 2, 0)), 0, NULL, false), NULL), IG_OK);
    /* xr feeds both halves, so its gradient is twice one member's; the weight's gradient
     * is this member's own part, half of the whole batch's. */
    assert_close(ig_grad(xr), ig_grad(x), 2, 1e-12);
    assert_close(ig_grad(wr), ig_grad(w), 2, 1e-12);
    ig_scope_end(s);
}

Test(core, batch_norm_sync_eval_and_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(IG_DIMS(4, 2), IG_F64);
    ig_tensor *rm = ig_zeros(IG_DIMS(2), IG_F64), *rv = ig_ones(IG_DIMS(2), IG_F64);
    fake_group g = {1.0, 0, false};
    igi_bn_sync sync = {fake_sum, &g};
    /* Eval mode normalises with the running stats: no reduction. */
    ig_tensor *y = igi_batch_norm_sync(x, rm, rv, NULL, NULL, false, 0.1, 1e-5, &sync);
    cr_assert(y);
    cr_assert_eq(g.calls, 0);
    /* A failing group fails the op with the group's message. */
    g.fail = true;
    cr_assert_null(igi_batch_norm_sync(x, rm, rv, NULL, NULL, true, 0.1, 1e-5, &sync));
    cr_assert(strstr(ig_last_error(), "member 1 is gone"), "%s", ig_last_error());
    /* One value per channel over the whole group is refused, on every member alike. */
    g.fail = false;
    cr_assert_null(igi_batch_norm_sync(ig_randn(IG_DIMS(1, 2), IG_F64), NULL, NULL, NULL, NULL, true, 0.1, 1e-5,
                                       &sync));
    cr_assert(strstr(ig_last_error(), "ig_batch_norm") && strstr(ig_last_error(), "more than 1 value"));
    /* ... but one value per member is fine when the group has more. */
    g.factor = 2.0;
    cr_assert_not_null(igi_batch_norm_sync(ig_randn(IG_DIMS(1, 2), IG_F64), NULL, NULL, NULL, NULL, true, 0.1,
                                           1e-5, &sync));
    ig_scope_end(s);
}
