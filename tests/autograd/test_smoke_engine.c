#include <criterion/criterion.h>
#include <math.h>
#include "ignis.h"

static ig_tensor *f_mul_add(ig_tensor *const *x, int n, void *ctx) {
    (void)n; (void)ctx;
    return ig_sum(ig_add(ig_mul(x[0], x[1]), ig_div(x[0], x[1])), 1, (int[]){0}, false);
}

Test(autograd, smoke_mul_add_broadcast) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(1);
    ig_tensor *a = ig_randn(IG_DIMS(3, 4), IG_F64);
    ig_tensor *b = ig_add_scalar(ig_rand(IG_DIMS(4), IG_F64), 1.0);
    b = ig_keep(b); /* leaf */
    cr_assert(ig_set_requires_grad(a, true) == IG_OK);
    cr_assert(ig_set_requires_grad(b, true) == IG_OK);
    ig_tensor *in[2] = {a, b};
    ig_status st = ig_gradcheck(f_mul_add, in, 2, NULL, NULL);
    cr_assert(st == IG_OK, "%s", ig_last_error());
    ig_tensor *y = ig_sum(ig_mul(a, b), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 12; i++)
        cr_assert_float_eq(ig_tensor_get(ig_grad(a), i), ig_tensor_get(b, i % 4), 1e-12);
    ig_scope_end(s);
    ig_tensor_free(b);
    ig_mem_stats ms;
    ig_mem_get_stats(IG_CPU, &ms);
    cr_assert_eq(ms.live_bytes, 0);
}

Test(autograd, smoke_views) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_arange(0, 24, 1, IG_F64);
    ig_set_requires_grad(a, true);
    ig_tensor *v = ig_transpose(ig_reshape(a, IG_DIMS(2, 3, 4)), 0, 2);
    cr_assert_eq(ig_tensor_shape(v)[0], 4);
    ig_tensor *sl = ig_slice(v, 1, 1, 3, 1);
    ig_tensor *c = ig_contiguous(sl);
    ig_print(c, stdout);
    ig_tensor *y = ig_sum(ig_mul(c, c), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    /* grad = 2a on elements with middle index in 1..2, else 0 */
    for (int i = 0; i < 24; i++) {
        int mid = (i / 4) % 3;
        double want = (mid >= 1) ? 2.0 * i : 0.0;
        cr_assert_float_eq(ig_tensor_get(ig_grad(a), i), want, 1e-12, "i=%d", i);
    }
    ig_scope_end(s);
}
