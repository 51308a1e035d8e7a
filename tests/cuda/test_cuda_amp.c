/*
 * tests/cuda/test_cuda_amp.c — mixed precision on the GPU against the CPU's exact
 * emulation: ig_matmul and ig_conv2d (both CUDA conv paths) under bf16 / fp16 autocast
 * (forward and backward), and ig_grad_scaler's device unscale + inf check. The two sides round the operands to the same
 * values and differ only in the order of the f32 sums, hence the tolerances. Skips, saying
 * why, without a CUDA device (suite `cuda`, run by tools/gpu-check.sh).
 */
#include "cuda_test_util.h"

static ig_tensor *values(int ndim, const int64_t *shape, float base) {
    ig_tensor *t = ig_empty(ndim, shape, IG_F32);
    float *p = ig_tensor_data(t);
    for (int64_t i = 0; i < ig_tensor_numel(t); i++) p[i] = base + 0.0123457f * (float)(i % 13) - 0.0311111f * (float)(i % 7);
    return t;
}

static float max_diff_host(ig_tensor *a, ig_tensor *b) {
    ig_tensor *ha = ig_contiguous(ig_to(a, IG_CPU)), *hb = ig_contiguous(ig_to(b, IG_CPU));
    cr_assert(ha && hb, "%s", ig_last_error());
    const float *x = ig_tensor_data(ha), *y = ig_tensor_data(hb);
    float m = 0;
    for (int64_t i = 0; i < ig_tensor_numel(ha); i++) m = fmaxf(m, fabsf(x[i] - y[i]));
    return m;
}

Test(cuda, amp_matmul_and_conv_match_the_cpu_emulation) {
    need_cuda();
    ig_amp modes[2] = {IG_AMP_BF16, IG_AMP_FP16};
    for (int m = 0; m < 2; m++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = values(IG_DIMS(33, 70), 0.2f), *b = values(IG_DIMS(70, 17), -0.4f);
        ig_tensor *x = values(IG_DIMS(2, 3, 9, 9), 0.1f), *w = values(IG_DIMS(4, 3, 3, 3), -0.2f);
        ig_tensor *ga = on(a, IG_CUDA), *gb = on(b, IG_CUDA), *gx = on(x, IG_CUDA), *gw = on(w, IG_CUDA);
        ig_tensor *leaves[4] = {a, w, ga, gw};
        for (int i = 0; i < 4; i++) ig_set_requires_grad(leaves[i], true);
        ig_conv2d_params p = {.padding = {1, 1}};
        ig_amp prev = ig_autocast_set(modes[m]);
        ig_tensor *y = ig_matmul(a, b), *gy = ig_matmul(ga, gb);
        ig_tensor *c = ig_conv2d(x, w, NULL, &p), *gc = ig_conv2d(gx, gw, NULL, &p);
        ig_autocast_set(prev);
        cr_assert(y && gy && c && gc, "%s", ig_last_error());
        cr_expect_lt(max_diff_host(y, gy), 1e-4f, "mode %d: matmul", m);
        cr_expect_lt(max_diff_host(c, gc), 1e-4f, "mode %d: conv2d", m);
        cr_assert_eq(ig_backward(ig_sum(y, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(gy, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(c, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(gc, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_expect_lt(max_diff_host(ig_grad(a), ig_grad(ga)), 1e-4f, "mode %d: matmul da", m);
        cr_expect_lt(max_diff_host(ig_grad(w), ig_grad(gw)), 1e-3f, "mode %d: conv dw", m);
        ig_scope_end(s);
    }
}

/* cuda/conv_igemm.cu (core/backend_impl.h): 1 forces im2col + cuBLAS, 2 the implicit GEMM. */
#ifdef IGNIS_CUDA
int igi_cuda_conv_force(int mode);
#endif

/* Both CUDA conv paths under autocast (the implicit GEMM rounds operands as it stages them,
 * im2col converts them for cublasGemmEx) against the CPU emulation: stride 1 and 2, bias,
 * C and O off the tile widths; forward, dx and dw. */
Test(cuda, amp_conv_both_paths_match_the_cpu_emulation) {
    need_cuda();
#ifdef IGNIS_CUDA
    ig_amp modes[2] = {IG_AMP_BF16, IG_AMP_FP16};
    for (int path = 1; path <= 2; path++)
        for (int m = 0; m < 2; m++)
            for (int stride = 1; stride <= 2; stride++) {
                ig_scope *s = ig_scope_begin();
                ig_tensor *x = values(IG_DIMS(3, 5, 9, 9), 0.1f), *w = values(IG_DIMS(7, 5, 3, 3), -0.2f);
                ig_tensor *b = values(IG_DIMS(7), 0.3f);
                ig_tensor *gx = on(x, IG_CUDA), *gw = on(w, IG_CUDA), *gb = on(b, IG_CUDA);
                ig_tensor *leaves[6] = {x, w, b, gx, gw, gb};
                for (int i = 0; i < 6; i++) ig_set_requires_grad(leaves[i], true);
                ig_conv2d_params p = {.stride = {stride, stride}, .padding = {1, 1}};
                int prev = igi_cuda_conv_force(path);
                ig_amp prev_amp = ig_autocast_set(modes[m]);
                ig_tensor *c = ig_conv2d(x, w, b, &p), *gc = ig_conv2d(gx, gw, gb, &p);
                ig_autocast_set(prev_amp);
                cr_assert(c && gc, "%s", ig_last_error());
                cr_expect_lt(max_diff_host(c, gc), 1e-4f, "path %d mode %d stride %d: conv2d", path, m, stride);
                cr_assert_eq(ig_backward(ig_sum(c, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
                cr_assert_eq(ig_backward(ig_sum(gc, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
                igi_cuda_conv_force(prev);
                cr_expect_lt(max_diff_host(ig_grad(x), ig_grad(gx)), 1e-4f, "path %d mode %d stride %d: dx", path, m,
                             stride);
                cr_expect_lt(max_diff_host(ig_grad(w), ig_grad(gw)), 1e-3f, "path %d mode %d stride %d: dw", path, m,
                             stride);
                cr_expect_lt(max_diff_host(ig_grad(b), ig_grad(gb)), 1e-3f, "path %d mode %d stride %d: db", path, m,
                             stride);
                ig_scope_end(s);
            }
#endif
}

Test(cuda, amp_grad_scaler_unscales_and_detects_inf_on_the_device) {
    need_cuda();
    ig_tensor *p = heap_on(ig_zeros(IG_DIMS(5), IG_F32), IG_CUDA);
    ig_set_requires_grad(p, true);
    float g[5] = {1024, -2048, 512, 4096, 0};
    ig_tensor *gh = ig_empty(IG_DIMS(5), IG_F32);
    memcpy(ig_tensor_data(gh), g, sizeof g);
    ig_tensor *gd = heap_on(gh, IG_CUDA);
    cr_assert_eq(ig_set_grad(p, gd), IG_OK);
    ig_optimizer *o = ig_optim_sgd(&p, 1, NULL);
    ig_grad_scaler_opts so = ig_grad_scaler_defaults();
    so.init_scale = 1024;
    ig_grad_scaler *s = ig_grad_scaler_new(&so);
    cr_assert(o && s, "%s", ig_last_error());
    cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK, "%s", ig_last_error());
    cr_expect(!ig_grad_scaler_skipped(s));
    ig_tensor *back = ig_to(gd, IG_CPU);
    const float *b = ig_tensor_data(back);
    for (int i = 0; i < 5; i++) cr_expect_eq(b[i], g[i] / 1024, "g[%d] = %g", i, b[i]);
    ig_tensor_free(back);
    g[2] = INFINITY;
    gh = ig_empty(IG_DIMS(5), IG_F32);
    memcpy(ig_tensor_data(gh), g, sizeof g);
    ig_tensor *gd2 = heap_on(gh, IG_CUDA);
    cr_assert_eq(ig_copy_(gd, gd2), IG_OK);
    cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK, "%s", ig_last_error());
    cr_expect(ig_grad_scaler_skipped(s));
    cr_expect_eq(ig_grad_scaler_get_scale(s), 512.0);
    ig_tensor_free(gd2);
    ig_grad_scaler_free(s);
    ig_optim_free(o);
    ig_tensor_free(gd);
    ig_tensor_free(p);
}
