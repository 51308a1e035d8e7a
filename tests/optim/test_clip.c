/*
 * tests/optim/test_clip.c — gradient clipping: the joint 2-norm and max-norm of gradients
 * spread over several tensors (a 3-4-5 triangle), clipping only above max_norm, strided and
 * missing gradients, mixed dtypes, value clipping, and errors.
 */
#include "optim_test_util.h"

bool igi_clip_force_generic(bool on); /* optim/optim_impl.h */

/* Two parameters whose gradients are [3, 0] and [0, -4]: 2-norm 5, max-norm 4. */
static void make_pair(ig_tensor **ps, ig_dtype dt0, ig_dtype dt1) {
    double z[2] = {0, 0};
    ps[0] = tu_param(z, 2, dt0);
    ps[1] = tu_param(z, 2, dt1);
    tu_set_grad(ps[0], (double[]){3.0, 0.0}, 2);
    tu_set_grad(ps[1], (double[]){0.0, -4.0}, 2);
}

static void free_pair(ig_tensor **ps) {
    ig_tensor_free(ps[0]);
    ig_tensor_free(ps[1]);
}

Test(optim, clip_grad_norm_2_clips) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2];
    make_pair(ps, IG_F64, IG_F64);
    double norm = ig_clip_grad_norm(ps, 2, 1.0, 2.0);
    cr_assert_float_eq(norm, 5.0, 1e-15);
    double c = 1.0 / (5.0 + 1e-6);
    tu_expect(ig_grad(ps[0]), (double[]){3.0 * c, 0.0}, 2, 1e-15, "g0");
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0 * c}, 2, 1e-15, "g1");
    /* The new joint norm is just under max_norm. */
    double n2 = ig_clip_grad_norm(ps, 2, 1.0, 2.0);
    cr_assert(n2 < 1.0 && n2 > 1.0 - 1e-6, "%.17g", n2);
    free_pair(ps);
    ig_scope_end(s);
}

Test(optim, clip_grad_norm_2_below_max_is_untouched) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2];
    make_pair(ps, IG_F32, IG_F64);
    double norm = ig_clip_grad_norm(ps, 2, 10.0, 2.0);
    cr_assert_float_eq(norm, 5.0, 1e-12);
    tu_expect(ig_grad(ps[0]), (double[]){3.0, 0.0}, 2, 0.0, "g0");
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0}, 2, 0.0, "g1");
    free_pair(ps);
    ig_scope_end(s);
}

Test(optim, clip_grad_norm_inf) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2];
    make_pair(ps, IG_F32, IG_F32);
    double norm = ig_clip_grad_norm(ps, 2, 2.0, INFINITY);
    cr_assert_float_eq(norm, 4.0, 1e-12);
    double c = 2.0 / (4.0 + 1e-6);
    tu_expect(ig_grad(ps[0]), (double[]){3.0 * c, 0.0}, 2, 1e-6, "g0");
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0 * c}, 2, 1e-6, "g1");
    free_pair(ps);
    ig_scope_end(s);
}

Test(optim, clip_grad_norm_1_and_mixed_dtypes) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2];
    make_pair(ps, IG_F32, IG_F64);
    double norm = ig_clip_grad_norm(ps, 2, 3.5, 1.0);
    cr_assert_float_eq(norm, 7.0, 1e-12);
    double c = 3.5 / (7.0 + 1e-6);
    tu_expect(ig_grad(ps[0]), (double[]){3.0 * c, 0.0}, 2, 1e-6, "g0");
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0 * c}, 2, 1e-15, "g1");
    free_pair(ps);
    ig_scope_end(s);
}

Test(optim, clip_grad_norm_skips_missing_and_reads_strides) {
    ig_scope *s = ig_scope_begin();
    double z[4] = {0, 0, 0, 0};
    ig_tensor *ps[3];
    ps[0] = tu_param(z, 2, IG_F64); /* no gradient */
    /* A [2,2] parameter whose gradient is the transpose of [[3,12],[0,4]] (not contiguous):
     * norm sqrt(9 + 144 + 16) = 13. */
    ps[1] = ig_keep(ig_zeros(IG_DIMS(2, 2), IG_F64));
    ig_set_requires_grad(ps[1], true);
    ig_tensor *g = ig_keep(ig_transpose(ig_from_data(IG_DIMS(2, 2), IG_F64, (double[]){3, 12, 0, 4}), 0, 1));
    cr_assert(!ig_tensor_is_contiguous(g));
    cr_assert(ig_set_grad(ps[1], g) == IG_OK);
    ig_tensor_free(g);
    ps[2] = tu_param(z, 1, IG_F64); /* no gradient either */
    double norm = ig_clip_grad_norm(ps, 3, 6.5, 2.0);
    cr_assert_float_eq(norm, 13.0, 1e-13);
    double c = 6.5 / (13.0 + 1e-6);
    /* Logical order of the transposed view: [[3,0],[12,4]]. */
    tu_expect(ig_grad(ps[1]), (double[]){3 * c, 0, 12 * c, 4 * c}, 4, 1e-15, "g");
    cr_assert_null(ig_grad(ps[0]));
    /* No gradients at all: norm 0. */
    cr_assert_eq(ig_clip_grad_norm(ps, 1, 1.0, 2.0), 0.0);
    cr_assert_eq(ig_clip_grad_norm(ps, 0, 1.0, 2.0), 0.0);
    for (int i = 0; i < 3; i++) ig_tensor_free(ps[i]);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, clip_grad_value) {
    ig_scope *s = ig_scope_begin();
    double z[4] = {0};
    ig_tensor *ps[2] = {tu_param(z, 4, IG_F32), tu_param(z, 4, IG_F64)};
    tu_set_grad(ps[0], (double[]){-3.0, -0.5, 0.25, 2.0}, 4);
    tu_set_grad(ps[1], (double[]){1.5, -1.5, 0.0, 0.9}, 4);
    cr_assert(ig_clip_grad_value(ps, 2, 1.0) == IG_OK);
    tu_expect(ig_grad(ps[0]), (double[]){-1.0, -0.5, 0.25, 1.0}, 4, 0.0, "g0");
    tu_expect(ig_grad(ps[1]), (double[]){1.0, -1.0, 0.0, 0.9}, 4, 0.0, "g1");
    ig_tensor_free(ps[0]);
    ig_tensor_free(ps[1]);
    ig_scope_end(s);
}

Test(optim, clip_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2];
    make_pair(ps, IG_F64, IG_F64);
    ig_clear_error();
    cr_assert(ig_clip_grad_norm(NULL, 2, 1.0, 2.0) < 0);
    tu_expect_error("ig_clip_grad_norm");
    cr_assert(ig_clip_grad_norm(ps, -1, 1.0, 2.0) < 0);
    tu_expect_error("ig_clip_grad_norm");
    cr_assert(ig_clip_grad_norm(ps, 2, -1.0, 2.0) < 0);
    tu_expect_error("ig_clip_grad_norm");
    cr_assert(strstr(ig_last_error(), "max_norm"));
    cr_assert(ig_clip_grad_norm(ps, 2, 1.0, 0.0) < 0);
    tu_expect_error("ig_clip_grad_norm");
    cr_assert(strstr(ig_last_error(), "norm_type"));
    cr_assert(ig_clip_grad_norm(ps, 2, 1.0, NAN) < 0);
    cr_assert(ig_clip_grad_norm(ps, 2, 1.0, -INFINITY) < 0);
    ig_tensor *withnull[2] = {ps[0], NULL};
    ig_clear_error();
    cr_assert(ig_clip_grad_norm(withnull, 2, 1.0, 2.0) < 0);
    tu_expect_error("ig_clip_grad_norm");
    /* Nothing was scaled by the failed calls. */
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0}, 2, 0.0, "g1");

    cr_assert(ig_clip_grad_value(ps, 2, -1.0) == IG_ERR_ARG);
    tu_expect_error("ig_clip_grad_value");
    ig_clear_error();
    cr_assert(ig_clip_grad_value(NULL, 1, 1.0) == IG_ERR_ARG);
    tu_expect_error("ig_clip_grad_value");
    cr_assert(ig_clip_grad_value(ps, -2, 1.0) == IG_ERR_ARG);
    tu_expect_error("ig_clip_grad_value");
    free_pair(ps);
    ig_scope_end(s);
}

/* The path device gradients take (abs/mul/pow/sum/max/clamp and copy_ through the ops),
 * forced on CPU gradients: the same norms and results as the loops above. */
Test(optim, clip_through_ops_matches_the_loops) {
    bool was = igi_clip_force_generic(true);
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2];
    make_pair(ps, IG_F64, IG_F64);
    double norm = ig_clip_grad_norm(ps, 2, 1.0, 2.0);
    cr_assert_float_eq(norm, 5.0, 1e-15);
    double c = 1.0 / (5.0 + 1e-6);
    tu_expect(ig_grad(ps[0]), (double[]){3.0 * c, 0.0}, 2, 1e-15, "g0");
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0 * c}, 2, 1e-15, "g1");
    free_pair(ps);

    make_pair(ps, IG_F64, IG_F64);
    double nbelow = ig_clip_grad_norm(ps, 2, 10.0, 2.0);
    cr_assert_float_eq(nbelow, 5.0, 1e-15);
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0}, 2, 0.0, "below max_norm: untouched");
    free_pair(ps);

    make_pair(ps, IG_F64, IG_F64);
    double ninf = ig_clip_grad_norm(ps, 2, 2.0, INFINITY); /* (cr_assert_float_eq evaluates twice) */
    cr_assert_float_eq(ninf, 4.0, 1e-15);
    tu_expect(ig_grad(ps[1]), (double[]){0.0, -4.0 * 2.0 / (4.0 + 1e-6)}, 2, 1e-15, "inf norm");
    free_pair(ps);

    make_pair(ps, IG_F32, IG_F64);
    double n1 = ig_clip_grad_norm(ps, 2, 100.0, 1.0), n3 = ig_clip_grad_norm(ps, 2, 100.0, 3.0);
    cr_assert_float_eq(n1, 7.0, 1e-6);
    cr_assert_float_eq(n3, cbrt(27.0 + 64.0), 1e-6);
    free_pair(ps);

    /* a transposed (strided) gradient: logical [[3,0],[12,4]], norm 13 */
    ig_tensor *p = ig_keep(ig_zeros(IG_DIMS(2, 2), IG_F64));
    ig_set_requires_grad(p, true);
    ig_tensor *g = ig_keep(ig_transpose(ig_from_data(IG_DIMS(2, 2), IG_F64, (double[]){3, 12, 0, 4}), 0, 1));
    cr_assert(ig_set_grad(p, g) == IG_OK);
    ig_tensor_free(g);
    double n13 = ig_clip_grad_norm(&p, 1, 6.5, 2.0);
    cr_assert_float_eq(n13, 13.0, 1e-13);
    double k = 6.5 / (13.0 + 1e-6);
    tu_expect(ig_grad(p), (double[]){3 * k, 0, 12 * k, 4 * k}, 4, 1e-15, "strided");
    ig_tensor_free(p);

    double z[4] = {0};
    ig_tensor *vs[2] = {tu_param(z, 4, IG_F32), tu_param(z, 4, IG_F64)};
    tu_set_grad(vs[0], (double[]){-3.0, -0.5, 0.25, 2.0}, 4);
    tu_set_grad(vs[1], (double[]){1.5, -1.5, 0.0, 0.9}, 4);
    cr_assert(ig_clip_grad_value(vs, 2, 1.0) == IG_OK, "%s", ig_last_error());
    tu_expect(ig_grad(vs[0]), (double[]){-1.0, -0.5, 0.25, 1.0}, 4, 0.0, "value g0");
    tu_expect(ig_grad(vs[1]), (double[]){1.0, -1.0, 0.0, 0.9}, 4, 0.0, "value g1");
    ig_tensor_free(vs[0]);
    ig_tensor_free(vs[1]);
    ig_scope_end(s);
    igi_clip_force_generic(was);
}
