/*
 * tests/autograd/test_grad_hook.c — the engine's per-leaf grad-ready hooks
 * (igi_set_grad_ready_hook, used by data-parallel training): each hooked leaf reached by a
 * backward pass gets exactly one call, after its gradient is final for that pass (a leaf
 * used several times, even twice by one op, included); an unused leaf gets none; leaves
 * near the output fire before leaves near the input.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../core/tensor_impl.h"
#include "../../ignis.h"

typedef struct rec {
    int calls;
    int order;         /* the global call number of the last call */
    double grad_sum;   /* sum of the leaf's .grad when the hook ran */
} rec;

static int call_counter;

static void hook(ig_tensor *leaf, void *ctx) {
    rec *r = ctx;
    r->calls++;
    r->order = ++call_counter;
    ig_tensor *g = ig_grad(leaf);
    r->grad_sum = 0;
    for (int64_t i = 0; g && i < ig_tensor_numel(g); i++) r->grad_sum += ig_tensor_get(g, i);
}

static ig_tensor *leaf(const double *v, int n) {
    ig_tensor *t = ig_zeros(IG_DIMS(n), IG_F64);
    double *p = ig_tensor_data(t);
    for (int i = 0; i < n; i++) p[i] = v[i];
    ig_set_requires_grad(t, true);
    return t;
}

Test(autograd, grad_ready_hook_once_per_leaf_when_final) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = leaf((double[]){1, 2, 3}, 3), *b = leaf((double[]){4, 5, 6}, 3), *c = leaf((double[]){0, 0, 0}, 3);
    rec ra = {0}, rb = {0}, rc = {0};
    cr_assert_eq(igi_set_grad_ready_hook(a, hook, &ra), IG_OK);
    cr_assert_eq(igi_set_grad_ready_hook(b, hook, &rb), IG_OK);
    cr_assert_eq(igi_set_grad_ready_hook(c, hook, &rc), IG_OK); /* c takes no part */
    for (int pass = 1; pass <= 2; pass++) {
        /* loss = sum(a*b + a + a*a): a has four edges (one op uses it twice). */
        ig_tensor *loss = ig_sum(ig_add(ig_add(ig_mul(a, b), a), ig_mul(a, a)), 0, NULL, false);
        cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ra.calls, pass);
        cr_assert_eq(rb.calls, pass);
        cr_assert_eq(rc.calls, 0);
        /* d/da = b + 1 + 2a = [7, 10, 13] (sum 30), d/db = a (sum 6), accumulated per pass:
         * the hook saw the final value. */
        cr_assert_float_eq(ra.grad_sum, 30.0 * pass, 1e-12);
        cr_assert_float_eq(rb.grad_sum, 6.0 * pass, 1e-12);
    }
    ig_scope_end(s);
}

Test(autograd, grad_ready_hook_order_follows_backward) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_full(IG_DIMS(2, 3), IG_F64, 0.5);
    ig_tensor *w1 = leaf((double[]){1, -2, 3, 0.5, 1, 2}, 6), *w2 = leaf((double[]){1, 2}, 2);
    rec r1 = {0}, r2 = {0};
    igi_set_grad_ready_hook(w1, hook, &r1);
    igi_set_grad_ready_hook(w2, hook, &r2);
    /* loss = sum(relu(x @ W1) @ w2): w2 is used last, so its gradient is final first. */
    ig_tensor *h = ig_relu(ig_matmul(x, ig_view(w1, IG_DIMS(3, 2))));
    ig_tensor *loss = ig_sum(ig_matmul(h, ig_view(w2, IG_DIMS(2, 1))), 0, NULL, false);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    cr_assert_eq(r1.calls, 1);
    cr_assert_eq(r2.calls, 1);
    cr_assert_lt(r2.order, r1.order);
    ig_scope_end(s);
}

Test(autograd, grad_ready_hook_on_backward_of_a_leaf_and_removal) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = leaf((double[]){1, 2}, 2);
    rec r = {0};
    igi_set_grad_ready_hook(a, hook, &r);
    cr_assert_eq(ig_backward(a, ig_full(IG_DIMS(2), IG_F64, 3.0)), IG_OK);
    cr_assert_eq(r.calls, 1);
    cr_assert_float_eq(r.grad_sum, 6.0, 1e-12);
    cr_assert_eq(igi_set_grad_ready_hook(a, NULL, NULL), IG_OK);
    cr_assert_eq(ig_backward(ig_sum(a, 0, NULL, false), NULL), IG_OK);
    cr_assert_eq(r.calls, 1);
    ig_scope_end(s);
}

Test(autograd, grad_ready_hook_errors_and_heap_leaf) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = leaf((double[]){1, 2}, 2);
    ig_tensor *y = ig_mul_scalar(a, 2.0);
    rec r = {0};
    cr_assert_eq(igi_set_grad_ready_hook(y, hook, &r), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "igi_set_grad_ready_hook"));
    ig_clear_error();
    cr_assert_eq(igi_set_grad_ready_hook(NULL, hook, &r), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "igi_set_grad_ready_hook"));
    ig_scope_end(s);
    /* A heap leaf frees its hook with itself (the sanitizer run checks for leaks). */
    ig_tensor *h = ig_ones(IG_DIMS(2), IG_F32);
    ig_set_requires_grad(h, true);
    cr_assert_eq(igi_set_grad_ready_hook(h, hook, &r), IG_OK);
    cr_assert_eq(igi_set_grad_ready_hook(h, hook, &r), IG_OK); /* replacing reuses it */
    s = ig_scope_begin();
    cr_assert_eq(ig_backward(ig_sum(ig_mul(h, h), 0, NULL, false), NULL), IG_OK);
    ig_scope_end(s);
    cr_assert_eq(r.calls, 1);
    ig_tensor_free(h);
}
