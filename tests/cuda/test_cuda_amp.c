/*
 * tests/cuda/test_cuda_amp.c — mixed precision on the GPU against the CPU's exact
 * emulation: ig_matmul and ig_conv2d (every CUDA conv path: im2col, the implicit GEMM's
 * SIMT and tensor-core kernels) under bf16 / fp16 autocast
 * (forward and backward), ig_conv2d under ig_cuda_set_tf32 (operands rounded to tf32), and
 * ig_grad_scaler's device unscale + inf check. The two sides round the operands to the same
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
    ig_tensor *ha = host_f32(a), *hb = host_f32(b);
    cr_assert(ha && hb, "%s", ig_last_error());
    const float *x = ig_tensor_data(ha), *y = ig_tensor_data(hb);
    float m = 0;
    for (int64_t i = 0; i < ig_tensor_numel(ha); i++) {
        float d = fabsf(x[i] - y[i]);
        if (d != d) return INFINITY; /* a NaN (say, unwritten or poisoned memory) is never close */
        m = fmaxf(m, d);
    }
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
        if (modes[m] == IG_AMP_BF16) {
            /* bf16 results (and the gradients below, rounded to bf16 once): 1 ulp apart at most */
            cr_assert_eq(ig_tensor_dtype(gy), IG_BF16);
            cr_assert_eq(ig_tensor_dtype(gc), IG_BF16);
            cr_expect_leq(bf16_steps_host(y, gy), 1.0, "bf16: matmul");
            cr_expect_leq(bf16_steps_host(c, gc), 1.0, "bf16: conv2d");
        } else {
            cr_expect_lt(max_diff_host(y, gy), 1e-4f, "mode %d: matmul", m);
            cr_expect_lt(max_diff_host(c, gc), 1e-4f, "mode %d: conv2d", m);
        }
        cr_assert_eq(ig_backward(ig_sum(y, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(gy, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(c, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(gc, 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        if (modes[m] == IG_AMP_BF16) {
            cr_expect_leq(bf16_steps_host(ig_grad(a), ig_grad(ga)), 1.0, "bf16: matmul da");
            cr_expect_leq(bf16_steps_host(ig_grad(w), ig_grad(gw)), 1.0, "bf16: conv dw");
        } else {
            cr_expect_lt(max_diff_host(ig_grad(a), ig_grad(ga)), 1e-4f, "mode %d: matmul da", m);
            cr_expect_lt(max_diff_host(ig_grad(w), ig_grad(gw)), 1e-3f, "mode %d: conv dw", m);
        }
        ig_scope_end(s);
    }
}

/* cuda/conv_igemm.cu (core/backend_impl.h): 1 forces im2col + cuBLAS, 2 the implicit GEMM
 * (tensor cores under autocast on sm_80+), 3 the implicit GEMM's SIMT kernels. */
#ifdef IGNIS_CUDA
int igi_cuda_conv_force(int mode);
#endif

/* max |a - b| over max(1, max |a|): the two sides round the operands alike and differ in
 * the order of the fp32 sums only, an error that grows with the magnitude of the sums. */
static float rel_diff_host(ig_tensor *ref, ig_tensor *b) {
    ig_tensor *h = host_f32(ref);
    cr_assert(h, "%s", ig_last_error());
    const float *x = ig_tensor_data(h);
    float m = 1;
    for (int64_t i = 0; i < ig_tensor_numel(h); i++) m = fmaxf(m, fabsf(x[i]));
    return max_diff_host(ref, b) / m;
}

/* One amp conv case: x [N, C, H, W], w [O, C, k, k2], stride, padding, dilation, bias. */
typedef struct {
    int64_t N, C, H, W, O, kh, kw;
    int sh, sw, ph, pw, dil;
    bool bias;
} amp_conv_case;

/* The zoo's convolutions at batch 2 (cnn: 1->32 and 32->64 at 28 and 14; resnet: the 1->16
 * stem, 16/32/64-channel 3x3 convs with stride 1 and 2, the 1x1 stride-2 shortcuts), then
 * odd sizes with C and O off the multiples of 16 (and off the 16/32/64 tile widths), uneven
 * stride and padding, dilation, a 5x3 kernel. */
static const amp_conv_case amp_conv_cases[] = {
    {2, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, true},   {2, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, true},
    {2, 1, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, false},  {2, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, false},
    {2, 16, 28, 28, 32, 3, 3, 2, 2, 1, 1, 1, false}, {2, 32, 14, 14, 64, 3, 3, 2, 2, 1, 1, 1, false},
    {2, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, false},   {2, 16, 28, 28, 32, 1, 1, 2, 2, 0, 0, 1, false},
    {2, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0, 1, false}, {3, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1, true},
    {3, 5, 9, 9, 7, 3, 3, 2, 2, 1, 1, 1, true},      {2, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1, true},
    {2, 5, 9, 9, 70, 3, 3, 1, 1, 2, 2, 2, true},     {2, 20, 6, 7, 40, 5, 3, 3, 2, 2, 1, 1, false},
    {2, 17, 8, 8, 33, 3, 3, 2, 1, 1, 0, 1, true},
};

#ifdef IGNIS_CUDA
/* The device side of a conv case: copies of base = {x, w, b} (b may be NULL) on CUDA as
 * leaves (into gin), y = conv2d on the conv path forced by `path` (igi_cuda_conv_force), and
 * the backward of sum(y * r). Returns y; the gradients are gin's. */
static ig_tensor *device_conv_case(ig_tensor *const base[3], const ig_conv2d_params *p, ig_tensor *r, int path,
                                   ig_tensor *gin[3]) {
    for (int i = 0; i < 3; i++) {
        gin[i] = base[i] ? on(base[i], IG_CUDA) : NULL;
        if (gin[i]) ig_set_requires_grad(gin[i], true);
    }
    int prev = igi_cuda_conv_force(path);
    ig_tensor *gy = ig_conv2d(gin[0], gin[1], gin[2], p);
    cr_assert(gy, "%s", ig_last_error());
    cr_assert_eq(ig_backward(ig_sum(ig_mul(gy, on(r, IG_CUDA)), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    igi_cuda_conv_force(prev);
    return gy;
}
#endif

/* Every CUDA conv path under autocast (im2col converts the operands for cublasGemmEx, the
 * implicit GEMM rounds them as it stages them, on SIMT or tensor-core kernels) against the
 * CPU emulation, bf16 and fp16: y, dx, dw and db of sum(y * r). */
Test(cuda, amp_conv_every_path_matches_the_cpu_emulation) {
    need_cuda();
#ifdef IGNIS_CUDA
    const ig_amp modes[2] = {IG_AMP_BF16, IG_AMP_FP16};
    const int paths[3] = {1, 3, 2};
    const char *path_names[3] = {"im2col", "simt", "tensor cores"};
    for (size_t k = 0; k < sizeof amp_conv_cases / sizeof amp_conv_cases[0]; k++) {
        const amp_conv_case *c = &amp_conv_cases[k];
        for (int m = 0; m < 2; m++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *x = values(IG_DIMS(c->N, c->C, c->H, c->W), 0.1f);
            ig_tensor *w = values(IG_DIMS(c->O, c->C, c->kh, c->kw), -0.2f);
            ig_tensor *b = c->bias ? values(IG_DIMS(c->O), 0.3f) : NULL;
            ig_conv2d_params p = {.stride = {c->sh, c->sw}, .padding = {c->ph, c->pw}, .dilation = {c->dil, c->dil}};
            ig_tensor *base[3] = {x, w, b}, *cpu_in[3];
            for (int i = 0; i < 3; i++) {
                cpu_in[i] = base[i] ? ig_clone(base[i]) : NULL;
                if (cpu_in[i]) ig_set_requires_grad(cpu_in[i], true);
            }
            x = cpu_in[0], w = cpu_in[1], b = cpu_in[2];
            ig_amp prev_amp = ig_autocast_set(modes[m]);
            ig_tensor *y = ig_conv2d(x, w, b, &p);
            cr_assert(y, "%s", ig_last_error());
            ig_tensor *r = values(ig_tensor_ndim(y), ig_tensor_shape(y), -0.05f);
            cr_assert_eq(ig_backward(ig_sum(ig_mul(y, r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
            for (int q = 0; q < 3; q++) {
                ig_tensor *gin[3];
                ig_tensor *gy = device_conv_case(base, &p, r, paths[q], gin);
                const char *what[4] = {"y", "dx", "dw", "db"};
                ig_tensor *ref[4] = {y, ig_grad(x), ig_grad(w), b ? ig_grad(b) : NULL};
                ig_tensor *got[4] = {gy, ig_grad(gin[0]), ig_grad(gin[1]), b ? ig_grad(gin[2]) : NULL};
                for (int i = 0; i < 4; i++) {
                    if (!ref[i]) continue;
                    if (modes[m] == IG_AMP_BF16) { /* bf16 values, each rounded once */
                        double u = bf16_steps_host(ref[i], got[i]);
                        cr_expect_leq(u, 1.0, "case %zu bf16 %s: %s off by %g bf16 ulps", k, path_names[q], what[i], u);
                        continue;
                    }
                    float d = rel_diff_host(ref[i], got[i]);
                    cr_expect_lt(d, 3e-5f, "case %zu fp16 %s: %s off by %g (relative)", k, path_names[q], what[i],
                                 (double)d);
                }
            }
            ig_autocast_set(prev_amp);
            ig_scope_end(s);
        }
    }
#endif
}

/* x rounded to tf32 as the implicit GEMM rounds its operands: 10 mantissa bits, to nearest
 * with ties away from zero (finite x). */
static float tf32_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* A copy of the f32 tensor t with every element rounded to tf32. */
static ig_tensor *tf32_copy(ig_tensor *t) {
    ig_tensor *c = ig_contiguous(ig_clone(t));
    float *p = ig_tensor_data(c);
    for (int64_t i = 0; i < ig_tensor_numel(c); i++) p[i] = tf32_round(p[i]);
    return c;
}

/* ig_cuda_set_tf32(true) and ig_conv2d: the implicit GEMM (SIMT and tensor-core kernels)
 * rounds x, w and dy to tf32 and sums in fp32, so it matches the CPU's exact conv of the
 * rounded values (r, hence dy, is rounded already) within the order of the sums; it differs
 * from the exact conv of the unrounded values (the rounding really happens). im2col goes
 * through cuBLAS's TF32 mode, whose operand rounding is not documented: only checked to be
 * within TF32 precision. Switched off again, every path is exact fp32. */
Test(cuda, tf32_conv_every_path_rounds_the_operands) {
    need_cuda();
#ifdef IGNIS_CUDA
    const int paths[3] = {1, 3, 2};
    const char *path_names[3] = {"im2col", "simt", "tensor cores"};
    for (size_t k = 0; k < sizeof amp_conv_cases / sizeof amp_conv_cases[0]; k++) {
        const amp_conv_case *c = &amp_conv_cases[k];
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = values(IG_DIMS(c->N, c->C, c->H, c->W), 0.1f);
        ig_tensor *w = values(IG_DIMS(c->O, c->C, c->kh, c->kw), -0.2f);
        ig_tensor *b = c->bias ? values(IG_DIMS(c->O), 0.3f) : NULL;
        ig_conv2d_params p = {.stride = {c->sh, c->sw}, .padding = {c->ph, c->pw}, .dilation = {c->dil, c->dil}};
        /* CPU references: the exact conv of the rounded x, w (and of the unrounded ones) */
        ig_tensor *ref_in[2][3] = {{tf32_copy(x), tf32_copy(w), b ? ig_clone(b) : NULL},
                                   {ig_clone(x), ig_clone(w), b ? ig_clone(b) : NULL}};
        ig_tensor *ref_y[2], *r = NULL;
        for (int e = 0; e < 2; e++) {
            for (int i = 0; i < 3; i++)
                if (ref_in[e][i]) ig_set_requires_grad(ref_in[e][i], true);
            ref_y[e] = ig_conv2d(ref_in[e][0], ref_in[e][1], ref_in[e][2], &p);
            cr_assert(ref_y[e], "%s", ig_last_error());
            if (!r) r = tf32_copy(values(ig_tensor_ndim(ref_y[e]), ig_tensor_shape(ref_y[e]), -0.05f));
            cr_assert_eq(ig_backward(ig_sum(ig_mul(ref_y[e], r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        }
        for (int on_off = 1; on_off >= 0; on_off--) {
            cr_assert_eq(ig_cuda_set_tf32(on_off), IG_OK, "%s", ig_last_error());
            for (int q = 0; q < 3; q++) {
                ig_tensor *base[3] = {x, w, b}, *gin[3];
                ig_tensor *gy = device_conv_case(base, &p, r, paths[q], gin);
                /* TF32 on: against the rounded operands' conv; off: against the exact one */
                int e = on_off ? 0 : 1;
                const char *what[4] = {"y", "dx", "dw", "db"};
                ig_tensor *ref[4] = {ref_y[e], ig_grad(ref_in[e][0]), ig_grad(ref_in[e][1]), b ? ig_grad(ref_in[e][2]) : NULL};
                ig_tensor *got[4] = {gy, ig_grad(gin[0]), ig_grad(gin[1]), b ? ig_grad(gin[2]) : NULL};
                float tol = on_off && q == 0 ? 1e-2f : on_off ? 3e-5f : 1e-5f;
                for (int i = 0; i < 4; i++) {
                    if (!ref[i]) continue;
                    float d = rel_diff_host(ref[i], got[i]);
                    cr_expect_lt(d, tol, "case %zu tf32 %s %s: %s off by %g (relative)", k, on_off ? "on" : "off",
                                 path_names[q], what[i], (double)d);
                }
                if (on_off && q > 0) {
                    /* y = x (*) w with 10-bit operands is visibly not the fp32 conv */
                    float d = rel_diff_host(ref_y[1], gy);
                    cr_expect_gt(d, 1e-6f, "case %zu tf32 %s: y equals the exact fp32 conv (off by %g)", k,
                                 path_names[q], (double)d);
                }
            }
        }
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
