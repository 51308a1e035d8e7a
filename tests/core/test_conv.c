/*
 * tests/core/test_conv.c — ig_conv2d against a direct convolution written here from the
 * definition (y[n,o,i,j] = b[o] + sum over the group's channels and the kernel of
 * w[o,c,ki,kj] * x[n, g*Cg + c, i*s - p + ki*d, j*s - p + kj*d], zero outside), over
 * stride, padding, dilation, groups (incl. depthwise), bias, non-square kernels, strided
 * inputs and weights, f32 and f64; gradients through ig_gradcheck; the steady-state
 * allocator behaviour; every error path.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"
#include "../../core/ops/conv3x3.h"
#include "../../core/ops/nn_device.h"
#include "../../core/tensor_impl.h"

/* Parameters with the defaults resolved, as the reference needs them. */
typedef struct ref_params {
    int sh, sw, ph, pw, dh, dw, groups;
} ref_params;

static ref_params resolve(const ig_conv2d_params *p) {
    ref_params r = {1, 1, 0, 0, 1, 1, 1};
    if (p) {
        if (p->stride[0]) r.sh = p->stride[0];
        if (p->stride[1]) r.sw = p->stride[1];
        r.ph = p->padding[0];
        r.pw = p->padding[1];
        if (p->dilation[0]) r.dh = p->dilation[0];
        if (p->dilation[1]) r.dw = p->dilation[1];
        if (p->groups) r.groups = p->groups;
    }
    return r;
}

/* Row-major f64 copy of t (malloc'd). */
static double *to_f64(ig_tensor *t) {
    int64_t n = ig_tensor_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    cr_assert(ig_tensor_to_buffer(t, IG_F64, v, n) == IG_OK, "%s", ig_last_error());
    return v;
}

/* Direct convolution in double; fills os with the output shape. */
static double *ref_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p,
                          int64_t os[4]) {
    ref_params r = resolve(p);
    const int64_t *xs = ig_tensor_shape(x), *ws = ig_tensor_shape(w);
    int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], kh = ws[2], kw = ws[3];
    int64_t Cg = C / r.groups, Og = O / r.groups;
    int64_t Ho = (H + 2 * r.ph - r.dh * (kh - 1) - 1) / r.sh + 1;
    int64_t Wo = (W + 2 * r.pw - r.dw * (kw - 1) - 1) / r.sw + 1;
    os[0] = N;
    os[1] = O;
    os[2] = Ho;
    os[3] = Wo;
    double *X = to_f64(x), *Wt = to_f64(w), *B = b ? to_f64(b) : NULL;
    double *Y = calloc((size_t)(N * O * Ho * Wo + 1), sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            int64_t grp = o / Og;
            for (int64_t i = 0; i < Ho; i++)
                for (int64_t j = 0; j < Wo; j++) {
                    double acc = B ? B[o] : 0.0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ki = 0; ki < kh; ki++)
                            for (int64_t kj = 0; kj < kw; kj++) {
                                int64_t iy = i * r.sh - r.ph + ki * r.dh;
                                int64_t ix = j * r.sw - r.pw + kj * r.dw;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += Wt[((o * Cg + c) * kh + ki) * kw + kj] *
                                       X[((n * C + grp * Cg + c) * H + iy) * W + ix];
                            }
                    Y[((n * O + o) * Ho + i) * Wo + j] = acc;
                }
        }
    free(X);
    free(Wt);
    free(B);
    return Y;
}

/* Runs ig_conv2d and compares shape, dtype and every value with the reference. */
static void check_conv(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p) {
    ig_tensor *y = ig_conv2d(x, w, b, p);
    cr_assert(y, "%s", ig_last_error());
    int64_t os[4];
    double *want = ref_conv2d(x, w, b, p, os);
    cr_assert_eq(ig_tensor_ndim(y), 4);
    for (int i = 0; i < 4; i++) cr_assert_eq(ig_tensor_shape(y)[i], os[i], "dim %d", i);
    cr_assert_eq(ig_tensor_dtype(y), ig_tensor_dtype(x));
    double tol = ig_tensor_dtype(x) == IG_F32 ? 1e-4 : 1e-12;
    for (int64_t i = 0; i < ig_tensor_numel(y); i++) {
        double got = ig_tensor_get(y, i);
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])),
                  "element %lld: got %.12g want %.12g", (long long)i, got, want[i]);
    }
    free(want);
}

/* x [N,C,H,W] as a permuted view of a contiguous [N,H,W,C] tensor. */
static ig_tensor *randn_nhwc_view(int64_t N, int64_t C, int64_t H, int64_t W, ig_dtype dt) {
    ig_tensor *t = ig_randn(IG_DIMS(N, H, W, C), dt);
    return ig_permute(t, (const int[]){0, 3, 1, 2});
}

Test(core, conv2d_hand_computed) {
    ig_scope *s = ig_scope_begin();
    /* x = 1..9 as [1,1,3,3], w = [[1,0],[0,-1]]: y[i][j] = x[i][j] - x[i+1][j+1] = -4. */
    ig_tensor *x = ig_from_data(IG_DIMS(1, 1, 3, 3), IG_F64, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    ig_tensor *w = ig_from_data(IG_DIMS(1, 1, 2, 2), IG_F64, (double[]){1, 0, 0, -1});
    ig_tensor *b = ig_from_data(IG_DIMS(1), IG_F64, (double[]){0.5});
    ig_tensor *y = ig_conv2d(x, w, b, NULL);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(y)[2], 2);
    cr_assert_eq(ig_tensor_shape(y)[3], 2);
    for (int i = 0; i < 4; i++) cr_assert_float_eq(ig_tensor_get(y, i), -3.5, 1e-12);
    /* padding 1: corner (0,0) sees only x[0][0] * w[1][1] = -1 (+ bias). */
    y = ig_conv2d(x, w, NULL, &(ig_conv2d_params){.padding = {1, 1}});
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(y)[2], 4);
    cr_assert_float_eq(ig_tensor_get(y, 0), -1.0, 1e-12);
    cr_assert_float_eq(ig_tensor_get(y, 15), 9.0, 1e-12); /* x[2][2] * w[0][0] */
    ig_scope_end(s);
}

/* Every combination of stride, padding, dilation, groups (1, 2, depthwise) and bias, with
 * a non-square kernel, in f32 and f64, on contiguous and permuted inputs. */
Test(core, conv2d_values_all_combinations) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    static const ig_dtype dts[2] = {IG_F32, IG_F64};
    const int64_t N = 2, C = 4, H = 9, W = 8, O = 8;
    int groups_list[3] = {1, 2, 4};
    for (int di = 0; di < 2; di++)
        for (int st = 1; st <= 2; st++)
            for (int pad = 0; pad <= 2; pad++)
                for (int dil = 1; dil <= 2; dil++)
                    for (int gi = 0; gi < 3; gi++)
                        for (int bias = 0; bias <= 1; bias++) {
                            ig_scope *inner = ig_scope_begin();
                            ig_dtype dt = dts[di];
                            int groups = groups_list[gi];
                            ig_conv2d_params p = {.stride = {st, st}, .padding = {pad, pad},
                                                  .dilation = {dil, dil}, .groups = groups};
                            ig_tensor *w = ig_randn(IG_DIMS(O, C / groups, 3, 2), dt);
                            ig_tensor *b = bias ? ig_randn(IG_DIMS(O), dt) : NULL;
                            check_conv(ig_randn(IG_DIMS(N, C, H, W), dt), w, b, &p);
                            check_conv(randn_nhwc_view(N, C, H, W, dt), w, b, &p);
                            ig_scope_end(inner);
                        }
    ig_scope_end(s);
}

Test(core, conv2d_mixed_axes_and_defaults) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(12);
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = di ? IG_F64 : IG_F32;
        ig_tensor *x = ig_randn(IG_DIMS(2, 3, 10, 7), dt);
        /* Different stride/padding/dilation per axis. */
        check_conv(x, ig_randn(IG_DIMS(5, 3, 2, 3), dt), ig_randn(IG_DIMS(5), dt),
                   &(ig_conv2d_params){.stride = {2, 1}, .padding = {0, 2}, .dilation = {1, 3}});
        /* NULL params and an all-zero struct are the defaults. */
        ig_tensor *w = ig_randn(IG_DIMS(4, 3, 3, 3), dt);
        check_conv(x, w, NULL, NULL);
        check_conv(x, w, NULL, &(ig_conv2d_params){0});
        /* Kernel as large as the padded input: a 1x1 output. */
        check_conv(x, ig_randn(IG_DIMS(2, 3, 12, 9), dt), NULL,
                   &(ig_conv2d_params){.padding = {1, 1}});
        /* 1x1 kernels (the no-im2col path), contiguous and strided, with groups. */
        ig_tensor *w1 = ig_randn(IG_DIMS(6, 1, 1, 1), dt);
        check_conv(x, w1, ig_randn(IG_DIMS(6), dt), &(ig_conv2d_params){.groups = 3});
        check_conv(ig_transpose(ig_randn(IG_DIMS(2, 3, 7, 10), dt), 2, 3), w1, NULL,
                   &(ig_conv2d_params){.groups = 3});
        check_conv(x, ig_randn(IG_DIMS(4, 3, 1, 1), dt), NULL,
                   &(ig_conv2d_params){.stride = {2, 3}});
        /* Depthwise with a channel multiplier (O = 2C). */
        check_conv(x, ig_randn(IG_DIMS(6, 1, 3, 3), dt), ig_randn(IG_DIMS(6), dt),
                   &(ig_conv2d_params){.groups = 3, .padding = {1, 1}});
    }
    ig_scope_end(s);
}

Test(core, conv2d_strided_weight_bias_and_input_slices) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(13);
    ig_tensor *x = ig_slice(ig_randn(IG_DIMS(2, 3, 13, 9), IG_F64), 2, 1, 13, 2); /* H step 2 */
    ig_tensor *w = ig_permute(ig_randn(IG_DIMS(3, 3, 2, 4), IG_F64), (const int[]){3, 1, 2, 0});
    ig_tensor *b = ig_slice(ig_randn(IG_DIMS(8), IG_F64), 0, 0, 8, 2);
    cr_assert(!ig_tensor_is_contiguous(x) && !ig_tensor_is_contiguous(w) && !ig_tensor_is_contiguous(b));
    check_conv(x, w, b, &(ig_conv2d_params){.padding = {1, 0}, .stride = {1, 2}});
    /* An expanded (stride-0) bias. */
    ig_tensor *be = ig_expand(ig_from_data(IG_DIMS(1), IG_F64, (double[]){0.25}), IG_DIMS(4));
    check_conv(x, w, be, NULL);
    ig_scope_end(s);
}

Test(core, conv2d_zero_size_dims) {
    ig_scope *s = ig_scope_begin();
    /* N = 0: an empty output of the right shape. */
    ig_tensor *y = ig_conv2d(ig_zeros(IG_DIMS(0, 2, 5, 5), IG_F32),
                             ig_ones(IG_DIMS(3, 2, 3, 3), IG_F32), NULL, NULL);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(y)[0], 0);
    cr_assert_eq(ig_tensor_shape(y)[1], 3);
    cr_assert_eq(ig_tensor_shape(y)[2], 3);
    /* C = 0: an empty sum, so the output is the bias. */
    ig_tensor *b = ig_from_data(IG_DIMS(2), IG_F64, (double[]){1.5, -2});
    y = ig_conv2d(ig_zeros(IG_DIMS(1, 0, 4, 4), IG_F64), ig_zeros(IG_DIMS(2, 0, 2, 2), IG_F64), b, NULL);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(y), 2 * 3 * 3);
    for (int i = 0; i < 18; i++) cr_assert_float_eq(ig_tensor_get(y, i), i < 9 ? 1.5 : -2.0, 0);
    /* O = 0. */
    y = ig_conv2d(ig_ones(IG_DIMS(1, 2, 4, 4), IG_F32), ig_zeros(IG_DIMS(0, 2, 2, 2), IG_F32), NULL, NULL);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(y), 0);
    ig_scope_end(s);
}

/* ---- gradients ---------------------------------------------------------------------------- */

typedef struct grad_case {
    ig_conv2d_params p;
    bool nhwc;          /* inputs[0] is [N,H,W,C]: permute it (a strided x) */
    bool transpose_out; /* return the output transposed (a strided gradient reaches conv) */
} grad_case;

static ig_tensor *conv_fn(ig_tensor *const *in, int n, void *ctx) {
    const grad_case *gc = ctx;
    ig_tensor *x = gc->nhwc ? ig_permute(in[0], (const int[]){0, 3, 1, 2}) : in[0];
    ig_tensor *y = ig_conv2d(x, in[1], n > 2 ? in[2] : NULL, &gc->p);
    return gc->transpose_out ? ig_transpose(y, 1, 3) : y;
}

static void gradcheck_conv(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                           int64_t kw, const grad_case *gc, bool bias) {
    ig_scope *s = ig_scope_begin();
    int g = gc->p.groups ? gc->p.groups : 1;
    ig_tensor *x = gc->nhwc ? ig_randn(IG_DIMS(N, H, W, C), IG_F64) : ig_randn(IG_DIMS(N, C, H, W), IG_F64);
    ig_tensor *w = ig_randn(IG_DIMS(O, C / g, kh, kw), IG_F64);
    ig_tensor *b = ig_randn(IG_DIMS(O), IG_F64);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    ig_tensor *in[3] = {x, w, b};
    ig_status st = ig_gradcheck(conv_fn, in, bias ? 3 : 2, (void *)gc, NULL);
    cr_assert(st == IG_OK, "stride %d pad %d dil %d groups %d bias %d: %s", gc->p.stride[0],
              gc->p.padding[0], gc->p.dilation[0], g, bias, ig_last_error());
    ig_scope_end(s);
}

Test(core, conv2d_gradcheck_combinations) {
    ig_manual_seed(21);
    for (int st = 1; st <= 2; st++)
        for (int pad = 0; pad <= 2; pad++)
            for (int dil = 1; dil <= 2; dil++)
                for (int groups = 1; groups <= 2; groups++)
                    for (int bias = 0; bias <= 1; bias++) {
                        grad_case gc = {.p = {.stride = {st, st}, .padding = {pad, pad},
                                              .dilation = {dil, dil}, .groups = groups}};
                        /* C = 2: groups 2 is also depthwise. */
                        gradcheck_conv(2, 2, 5, 6, 2, 3, 2, &gc, bias);
                    }
}

Test(core, conv2d_gradcheck_depthwise_and_grouped) {
    ig_manual_seed(22);
    for (int st = 1; st <= 2; st++)
        for (int pad = 0; pad <= 2; pad += 2)
            for (int dil = 1; dil <= 2; dil++) {
                grad_case gc = {.p = {.stride = {st, st}, .padding = {pad, pad},
                                      .dilation = {dil, dil}, .groups = 4}};
                gradcheck_conv(2, 4, 5, 5, 4, 2, 3, &gc, true);
                gc.p.groups = 2;
                gradcheck_conv(2, 4, 6, 5, 2, 3, 3, &gc, dil == 1);
            }
}

Test(core, conv2d_gradcheck_strided_input_and_gradient) {
    ig_manual_seed(23);
    grad_case gc = {.p = {.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}}, .nhwc = true};
    gradcheck_conv(2, 3, 6, 5, 2, 2, 3, &gc, true);
    gc.transpose_out = true;
    gradcheck_conv(2, 3, 5, 6, 3, 3, 1, &gc, true);
    /* 1x1 kernels take the no-im2col path; with a strided x the weight gradient gathers. */
    grad_case one = {.p = {.groups = 2}, .nhwc = true};
    gradcheck_conv(2, 4, 5, 5, 4, 1, 1, &one, true);
    one.nhwc = false;
    gradcheck_conv(2, 4, 5, 5, 2, 1, 1, &one, false);
    one.transpose_out = true;
    gradcheck_conv(2, 2, 5, 6, 2, 1, 1, &one, true);
}

Test(core, conv2d_grad_only_for_inputs_that_require_it) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(24);
    ig_tensor *x = ig_randn(IG_DIMS(2, 2, 5, 5), IG_F64);
    ig_tensor *w = ig_randn(IG_DIMS(3, 2, 3, 3), IG_F64);
    ig_tensor *b = ig_randn(IG_DIMS(3), IG_F64);
    ig_set_requires_grad(w, true);
    ig_tensor *y = ig_sum(ig_conv2d(x, w, b, NULL), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    cr_assert_null(ig_grad(x));
    cr_assert_null(ig_grad(b));
    /* d(sum y)/dw[o,c,ki,kj] = sum over n, i, j of x[n,c,i+ki,j+kj]. */
    double X[100];
    cr_assert(ig_tensor_to_buffer(x, IG_F64, X, 100) == IG_OK);
    for (int o = 0; o < 3; o++)
        for (int c = 0; c < 2; c++)
            for (int ki = 0; ki < 3; ki++)
                for (int kj = 0; kj < 3; kj++) {
                    double want = 0;
                    for (int n = 0; n < 2; n++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) want += X[((n * 2 + c) * 5 + i + ki) * 5 + j + kj];
                    double got = ig_tensor_get(ig_grad(w), ((o * 2 + c) * 3 + ki) * 3 + kj);
                    cr_assert_float_eq(got, want, 1e-10);
                }
    ig_scope_end(s);
}

/* Images large enough that the GEMM scratch of a chunk (col + result, 8 MiB cap) holds only
 * two of them: N = 5 runs as chunks of 2, 2 and 1 images (both the many-image and the
 * one-image paths). y, and the gradients of sum(y * r), match direct loops:
 * dx[n,C,iy,ix] = sum r[n,o,i,j] w[o,c,ki,kj] over taps hitting (iy,ix), dw = sum r x, db = sum r. */
static void check_chunked(int64_t C, int64_t O, int groups, int64_t HW) {
    ig_scope *s = ig_scope_begin();
    const int64_t N = 5, k = 3;
    ig_conv2d_params p = {.padding = {1, 1}, .groups = groups};
    ig_tensor *x = ig_randn(IG_DIMS(N, C, HW, HW), IG_F32);
    ig_tensor *w = ig_randn(IG_DIMS(O, C / groups, k, k), IG_F32);
    ig_tensor *b = ig_randn(IG_DIMS(O), IG_F32);
    ig_tensor *r = ig_randn(IG_DIMS(N, O, HW, HW), IG_F32);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    check_conv(x, w, b, &p);
    ig_tensor *loss = ig_sum(ig_mul(ig_conv2d(x, w, b, &p), r), 0, NULL, false);
    cr_assert(ig_backward(loss, NULL) == IG_OK, "%s", ig_last_error());
    double *X = to_f64(x), *Wt = to_f64(w), *R = to_f64(r);
    double *dX = to_f64(ig_grad(x)), *dW = to_f64(ig_grad(w)), *dB = to_f64(ig_grad(b));
    int64_t Cg = C / groups, Og = O / groups, nx = N * C * HW * HW, nw = O * Cg * k * k;
    double *wx = calloc((size_t)nx, sizeof(double)), *ww = calloc((size_t)nw, sizeof(double));
    double *wb = calloc((size_t)O, sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < HW; i++)
                for (int64_t j = 0; j < HW; j++) {
                    double rv = R[((n * O + o) * HW + i) * HW + j];
                    wb[o] += rv;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ki = 0; ki < k; ki++)
                            for (int64_t kj = 0; kj < k; kj++) {
                                int64_t iy = i - 1 + ki, ix = j - 1 + kj;
                                if (iy < 0 || iy >= HW || ix < 0 || ix >= HW) continue;
                                int64_t xi = ((n * C + o / Og * Cg + c) * HW + iy) * HW + ix;
                                int64_t wi = ((o * Cg + c) * k + ki) * k + kj;
                                wx[xi] += rv * Wt[wi];
                                ww[wi] += rv * X[xi];
                            }
                }
    /* f32 sums of up to N*HW*HW terms: relative to the sum of magnitudes, roughly. */
    for (int64_t i = 0; i < nx; i++)
        cr_assert(fabs(dX[i] - wx[i]) <= 1e-4 * (1 + fabs(wx[i])), "dx %lld: %g vs %g",
                  (long long)i, dX[i], wx[i]);
    for (int64_t i = 0; i < nw; i++)
        cr_assert(fabs(dW[i] - ww[i]) <= 2e-3 * (10 + fabs(ww[i])), "dw %lld: %g vs %g",
                  (long long)i, dW[i], ww[i]);
    for (int64_t o = 0; o < O; o++)
        cr_assert(fabs(dB[o] - wb[o]) <= 2e-3 * (10 + fabs(wb[o])), "db %lld: %g vs %g",
                  (long long)o, dB[o], wb[o]);
    free(X), free(Wt), free(R), free(dX), free(dW), free(dB), free(wx), free(ww), free(wb);
    ig_scope_end(s);
}

Test(core, conv2d_large_batch_runs_in_chunks) {
    ig_manual_seed(31);
    /* K + Og = 18 + 2 rows of 209*209 floats: 3.5 MiB per image, two per chunk. */
    check_chunked(2, 2, 1, 209);
    /* groups 2: K + Og = 9 + 1 rows of 296*296 floats, again two images per chunk. */
    check_chunked(2, 2, 2, 296);
}

/* After a warm-up step, a training-like step asks the OS for no new memory: the im2col
 * scratch and the temporaries come back from the caching allocator. */
Test(core, conv2d_steady_state_allocates_nothing) {
    ig_manual_seed(25);
    ig_tensor *w = ig_randn(IG_DIMS(8, 3, 3, 3), IG_F32);
    ig_tensor *b = ig_zeros(IG_DIMS(8), IG_F32);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    ig_mem_stats before, after;
    for (int step = 0; step < 3; step++) {
        if (step == 2) ig_mem_get_stats(IG_CPU, &before);
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_randn(IG_DIMS(4, 3, 12, 12), IG_F32);
        ig_tensor *y = ig_conv2d(x, w, b, &(ig_conv2d_params){.padding = {1, 1}, .stride = {2, 2}});
        ig_tensor *loss = ig_sum(ig_mul(y, y), 0, NULL, false);
        cr_assert(ig_backward(loss, NULL) == IG_OK, "%s", ig_last_error());
        ig_scope_end(s);
    }
    ig_mem_get_stats(IG_CPU, &after);
    cr_assert_eq(after.os_allocs, before.os_allocs);
    ig_tensor_free(w);
    ig_tensor_free(b);
    ig_mem_get_stats(IG_CPU, &after);
    cr_assert_eq(after.live_bytes, 0);
}

/* ---- errors ------------------------------------------------------------------------------- */

/* The call failed and the message names ig_conv2d and contains what. */
static void expect_error(ig_tensor *r, const char *what) {
    cr_assert_null(r);
    cr_assert(strstr(ig_last_error(), "ig_conv2d"), "message: %s", ig_last_error());
    cr_assert(strstr(ig_last_error(), what), "message lacks '%s': %s", what, ig_last_error());
}

Test(core, conv2d_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_zeros(IG_DIMS(1, 4, 5, 5), IG_F32);
    ig_tensor *w = ig_zeros(IG_DIMS(2, 4, 3, 3), IG_F32);
    ig_clear_error();
    expect_error(ig_conv2d(NULL, w, NULL, NULL), "x");
    ig_clear_error();
    expect_error(ig_conv2d(x, NULL, NULL, NULL), "w");
    expect_error(ig_conv2d(ig_zeros(IG_DIMS(4, 5, 5), IG_F32), w, NULL, NULL), "[4,5,5]");
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(2, 4, 3), IG_F32), NULL, NULL), "[2,4,3]");
    /* C = 4 vs weight channels 3 x groups 1. */
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(2, 3, 3, 3), IG_F32), NULL, NULL), "[1,4,5,5]");
    cr_assert(strstr(ig_last_error(), "[2,3,3,3]"), "%s", ig_last_error());
    /* C = 4 vs 4 x groups 2. */
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(2, 4, 3, 3), IG_F32), NULL, &(ig_conv2d_params){.groups = 2}),
                 "groups 2");
    /* O = 3 not divisible by groups 2. */
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(3, 2, 3, 3), IG_F32), NULL, &(ig_conv2d_params){.groups = 2}),
                 "not divisible");
    expect_error(ig_conv2d(x, w, ig_zeros(IG_DIMS(3), IG_F32), NULL), "bias");
    expect_error(ig_conv2d(x, w, ig_zeros(IG_DIMS(2, 1), IG_F32), NULL), "[2,1]");
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(2, 4, 6, 3), IG_F32), NULL, NULL), "output size would be");
    expect_error(ig_conv2d(x, w, NULL, &(ig_conv2d_params){.dilation = {3, 1}}), "output size would be");
    expect_error(ig_conv2d(x, w, NULL, &(ig_conv2d_params){.padding = {0, -1}}), "negative padding");
    expect_error(ig_conv2d(x, w, NULL, &(ig_conv2d_params){.stride = {-1, 1}}), "stride");
    expect_error(ig_conv2d(x, w, NULL, &(ig_conv2d_params){.dilation = {1, -2}}), "dilation");
    expect_error(ig_conv2d(x, w, NULL, &(ig_conv2d_params){.groups = -1}), "groups");
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(2, 4, 3, 3), IG_F64), NULL, NULL), "dtypes differ");
    expect_error(ig_conv2d(x, w, ig_zeros(IG_DIMS(2), IG_F64), NULL), "dtypes differ");
    expect_error(ig_conv2d(ig_zeros(IG_DIMS(1, 4, 5, 5), IG_I32), ig_zeros(IG_DIMS(2, 4, 3, 3), IG_I32), NULL, NULL),
                 "int32");
    expect_error(ig_conv2d(x, ig_zeros(IG_DIMS(2, 4, 0, 3), IG_F32), NULL, NULL), "kernel size");
    ig_scope_end(s);
}

/* ---- im2col / col2im row fast paths -------------------------------------------------------- */

/* dx and dw of sum(y * G) (G fixed, random) against the adjoint of the reference convolution
 * computed here: dx[n,c,iy,ix] += w[o,c,ki,kj] * G[n,o,i,j], dw[o,c,ki,kj] += x[..] * G[..],
 * for the unit-stride (3x3 pad 1) and stride-2 row paths of im2col and col2im, on odd sizes,
 * batch 1 and a batch chunked with other images. Groups 1. */
static void check_conv_grads(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int s, int p,
                             ig_dtype dt) {
    ig_scope *sc = ig_scope_begin();
    ig_conv2d_params prm = {.stride = {s, s}, .padding = {p, p}};
    ig_tensor *x = ig_randn(IG_DIMS(N, C, H, W), dt), *w = ig_randn(IG_DIMS(O, C, 3, 3), dt);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_tensor *y = ig_conv2d(x, w, NULL, &prm);
    cr_assert(y, "%s", ig_last_error());
    int64_t Ho = ig_tensor_shape(y)[2], Wo = ig_tensor_shape(y)[3];
    ig_tensor *G = ig_randn(IG_DIMS(N, O, Ho, Wo), dt);
    cr_assert(ig_backward(ig_sum(ig_mul(y, G), 0, NULL, false), NULL) == IG_OK, "%s", ig_last_error());
    double *X = to_f64(x), *Wt = to_f64(w), *Gv = to_f64(G);
    double *dx = calloc((size_t)(N * C * H * W + 1), sizeof(double));
    double *dw = calloc((size_t)(O * C * 9 + 1), sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < Ho; i++)
                for (int64_t j = 0; j < Wo; j++) {
                    double gv = Gv[((n * O + o) * Ho + i) * Wo + j];
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ki = 0; ki < 3; ki++)
                            for (int64_t kj = 0; kj < 3; kj++) {
                                int64_t iy = i * s - p + ki, ix = j * s - p + kj;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                int64_t xi = ((n * C + c) * H + iy) * W + ix, wi = ((o * C + c) * 3 + ki) * 3 + kj;
                                dx[xi] += Wt[wi] * gv;
                                dw[wi] += X[xi] * gv;
                            }
                }
    double tol = dt == IG_F32 ? 1e-4 : 1e-11;
    ig_tensor *gx = ig_grad(x), *gw = ig_grad(w);
    cr_assert(gx && gw);
    for (int64_t i = 0; i < N * C * H * W; i++) {
        double got = ig_tensor_get(gx, i);
        cr_assert(fabs(got - dx[i]) <= tol * (1 + fabs(dx[i])), "N %lld s %d dx[%lld]: got %.12g want %.12g",
                  (long long)N, s, (long long)i, got, dx[i]);
    }
    for (int64_t i = 0; i < O * C * 9; i++) {
        double got = ig_tensor_get(gw, i);
        cr_assert(fabs(got - dw[i]) <= tol * (1 + fabs(dw[i])) * (1 + (double)N * (double)Ho * (double)Wo / 64),
                  "N %lld s %d dw[%lld]: got %.12g want %.12g", (long long)N, s, (long long)i, got, dw[i]);
    }
    /* The forward through the same im2col rows. */
    check_conv(x, w, NULL, &prm);
    free(X);
    free(Wt);
    free(Gv);
    free(dx);
    free(dw);
    ig_scope_end(sc);
}

Test(core, conv2d_row_paths_match_reference_gradients) {
    ig_manual_seed(5);
    ig_dtype dts[2] = {IG_F32, IG_F64};
    for (int d = 0; d < 2; d++) {
        for (int s = 1; s <= 3; s++) {
            check_conv_grads(1, 3, 5, 7, 2, s, 1, dts[d]);  /* batch 1, odd sizes */
            check_conv_grads(3, 2, 9, 4, 3, s, 1, dts[d]);  /* several images in one chunk */
            check_conv_grads(2, 2, 1, 1, 2, s, 1, dts[d]);  /* 1x1 image: only the centre tap */
            check_conv_grads(2, 1, 6, 11, 1, s, 0, dts[d]); /* no padding */
        }
    }
    /* Zero-size batch: an empty output and empty gradients. */
    ig_scope *sc = ig_scope_begin();
    ig_tensor *x = ig_zeros(IG_DIMS(0, 2, 5, 5), IG_F32), *w = ig_ones(IG_DIMS(3, 2, 3, 3), IG_F32);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_tensor *y = ig_conv2d(x, w, NULL, &(ig_conv2d_params){.padding = {1, 1}});
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(y), 0);
    cr_assert(ig_backward(ig_sum(y, 0, NULL, false), NULL) == IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(ig_grad(x)), 0);
    for (int64_t i = 0; i < 3 * 2 * 9; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(w), i), 0.0, 0);
    ig_scope_end(sc);
}

/* ---- per-image slots and the whole-plane im2col/col2im path ---------------------------------- */

/* y, dx, dw, db of sum(y * G) for one configuration, as f64 arrays (malloc'd, caller frees),
 * computed by ig_conv2d on `threads` threads. */
typedef struct conv_run {
    double *y, *dx, *dw, *db;
} conv_run;

static conv_run run_conv(ig_tensor *x, ig_tensor *w, ig_tensor *b, ig_tensor *G, const ig_conv2d_params *p,
                         int threads) {
    int saved = ig_get_num_threads();
    ig_set_num_threads(threads);
    ig_scope *sc = ig_scope_begin();
    ig_zero_grad(x);
    ig_zero_grad(w);
    ig_zero_grad(b);
    ig_tensor *y = ig_conv2d(x, w, b, p);
    cr_assert(y, "%s", ig_last_error());
    cr_assert(ig_backward(ig_sum(ig_mul(y, G), 0, NULL, false), NULL) == IG_OK, "%s", ig_last_error());
    conv_run r = {to_f64(y), to_f64(ig_grad(x)), to_f64(ig_grad(w)), to_f64(ig_grad(b))};
    ig_scope_end(sc);
    ig_set_num_threads(saved);
    return r;
}

/* Checks a configuration against the definition (forward through ref_conv2d, gradients by
 * the adjoint loops here) and checks that 1 and 3 threads give bitwise the same results. */
static void check_slots(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                        ig_conv2d_params p, ig_dtype dt) {
    ig_tensor *x = ig_randn(IG_DIMS(N, C, H, W), dt), *b = ig_randn(IG_DIMS(O), dt);
    ref_params r = resolve(&p);
    ig_tensor *w = ig_randn(IG_DIMS(O, C / r.groups, kh, kw), dt);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    int64_t os[4];
    double *want = ref_conv2d(x, w, b, &p, os);
    int64_t Ho = os[2], Wo = os[3], Cg = C / r.groups, Og = O / r.groups;
    ig_tensor *G = ig_randn(IG_DIMS(N, O, Ho, Wo), dt);
    conv_run one = run_conv(x, w, b, G, &p, 1), three = run_conv(x, w, b, G, &p, 3);
    double *X = to_f64(x), *Wt = to_f64(w), *Gv = to_f64(G);
    int64_t nx = N * C * H * W, nw = O * Cg * kh * kw, ny = N * O * Ho * Wo;
    double *dx = calloc((size_t)nx + 1, sizeof(double)), *dw = calloc((size_t)nw + 1, sizeof(double));
    double *db = calloc((size_t)O, sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < Ho; i++)
                for (int64_t j = 0; j < Wo; j++) {
                    double gv = Gv[((n * O + o) * Ho + i) * Wo + j];
                    db[o] += gv;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ki = 0; ki < kh; ki++)
                            for (int64_t kj = 0; kj < kw; kj++) {
                                int64_t iy = i * r.sh - r.ph + ki * r.dh, ix = j * r.sw - r.pw + kj * r.dw;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                int64_t xi = ((n * C + o / Og * Cg + c) * H + iy) * W + ix;
                                int64_t wi = ((o * Cg + c) * kh + ki) * kw + kj;
                                dx[xi] += Wt[wi] * gv;
                                dw[wi] += X[xi] * gv;
                            }
                }
    double tol = dt == IG_F32 ? 1e-4 : 1e-11, sumtol = tol * (1 + (double)(N * Ho * Wo) / 64);
    for (int64_t i = 0; i < ny; i++)
        cr_assert(fabs(one.y[i] - want[i]) <= tol * (1 + fabs(want[i])), "N %lld y[%lld]: %.12g vs %.12g",
                  (long long)N, (long long)i, one.y[i], want[i]);
    for (int64_t i = 0; i < nx; i++)
        cr_assert(fabs(one.dx[i] - dx[i]) <= tol * (1 + fabs(dx[i])), "N %lld dx[%lld]: %.12g vs %.12g",
                  (long long)N, (long long)i, one.dx[i], dx[i]);
    for (int64_t i = 0; i < nw; i++)
        cr_assert(fabs(one.dw[i] - dw[i]) <= sumtol * (1 + fabs(dw[i])), "N %lld dw[%lld]: %.12g vs %.12g",
                  (long long)N, (long long)i, one.dw[i], dw[i]);
    for (int64_t o = 0; o < O; o++)
        cr_assert(fabs(one.db[o] - db[o]) <= sumtol * (1 + fabs(db[o])), "N %lld db[%lld]: %.12g vs %.12g",
                  (long long)N, (long long)o, one.db[o], db[o]);
    cr_assert(memcmp(one.y, three.y, sizeof(double) * (size_t)ny) == 0, "y depends on the thread count");
    cr_assert(memcmp(one.dx, three.dx, sizeof(double) * (size_t)nx) == 0, "dx depends on the thread count");
    cr_assert(memcmp(one.dw, three.dw, sizeof(double) * (size_t)nw) == 0, "dw depends on the thread count");
    cr_assert(memcmp(one.db, three.db, sizeof(double) * (size_t)O) == 0, "db depends on the thread count");
    conv_run *runs[2] = {&one, &three};
    for (int k = 0; k < 2; k++) free(runs[k]->y), free(runs[k]->dx), free(runs[k]->dw), free(runs[k]->db);
    free(want), free(X), free(Wt), free(Gv), free(dx), free(dw), free(db);
    ig_tensor_free(x), ig_tensor_free(w), ig_tensor_free(b), ig_tensor_free(G);
}

/* Batches of 1 to 37 images (more than the 16 slots: several images per slot) with bias;
 * kernels whose output width equals the input's (3x3 pad 1, 5x5 pad 2, 3x3 dilation 2 pad
 * 2, 1x3 pad (0,1): the whole-plane path of im2col/col2im, with clipped columns on both
 * sides) and others (stride 2, no padding, 1x1, groups); odd sizes, f32 and f64. */
Test(core, conv2d_slots_match_reference_for_any_thread_count) {
    ig_manual_seed(41);
    ig_dtype dts[2] = {IG_F32, IG_F64};
    for (int d = 0; d < 2; d++) {
        ig_dtype dt = dts[d];
        check_slots(1, 2, 5, 7, 3, 3, 3, (ig_conv2d_params){.padding = {1, 1}}, dt);
        check_slots(17, 3, 6, 5, 4, 3, 3, (ig_conv2d_params){.padding = {1, 1}}, dt);
        check_slots(37, 1, 7, 9, 5, 3, 3, (ig_conv2d_params){.padding = {1, 1}}, dt);
        check_slots(5, 2, 9, 6, 3, 5, 5, (ig_conv2d_params){.padding = {2, 2}}, dt);
        check_slots(4, 2, 8, 7, 2, 3, 3, (ig_conv2d_params){.padding = {2, 2}, .dilation = {2, 2}}, dt);
        check_slots(6, 3, 5, 11, 2, 1, 3, (ig_conv2d_params){.padding = {0, 1}}, dt);
        check_slots(19, 4, 9, 9, 6, 3, 3, (ig_conv2d_params){.padding = {1, 1}, .stride = {2, 2}}, dt);
        check_slots(18, 2, 6, 6, 4, 3, 3, (ig_conv2d_params){0}, dt);
        check_slots(21, 4, 5, 5, 6, 1, 1, (ig_conv2d_params){0}, dt);
        check_slots(20, 4, 7, 6, 6, 3, 3, (ig_conv2d_params){.padding = {1, 1}, .groups = 2}, dt);
    }
}

/* The direct 3x3 path (f32, 3x3, stride 1 or 2, padding 1: core/ops/conv3x3.c) on channel
 * and width counts that leave partial register tiles (1 and odd input channels, output
 * channels not a multiple of 4, 8 or 16, planes of 1x1 up to a width past 24), against
 * the definition and across thread counts. */
Test(core, conv2d_direct3x3_partial_tiles_match_reference) {
    ig_manual_seed(43);
    ig_conv2d_params p = {.padding = {1, 1}};
    check_slots(3, 1, 1, 1, 1, 3, 3, p, IG_F32);
    check_slots(2, 5, 4, 16, 9, 3, 3, p, IG_F32);
    check_slots(5, 7, 9, 3, 20, 3, 3, p, IG_F32);
    check_slots(33, 2, 3, 30, 17, 3, 3, p, IG_F32);
    check_slots(4, 16, 7, 7, 24, 3, 3, p, IG_F32);
    check_slots(2, 3, 28, 28, 16, 3, 3, p, IG_F32);
    /* stride 2: even and odd sizes (the odd phases one row or column shorter) */
    ig_conv2d_params p2 = {.padding = {1, 1}, .stride = {2, 2}};
    check_slots(3, 1, 1, 1, 1, 3, 3, p2, IG_F32);
    check_slots(2, 1, 2, 2, 3, 3, 3, p2, IG_F32);
    check_slots(5, 3, 7, 10, 9, 3, 3, p2, IG_F32);
    check_slots(4, 16, 28, 28, 32, 3, 3, p2, IG_F32);
    check_slots(17, 5, 13, 6, 20, 3, 3, p2, IG_F32);
}

/* The same shapes on the AVX2 tiles (taken on CPUs without AVX-512; forced here). */
Test(core, conv2d_direct3x3_avx2_tiles_match_reference) {
    ig_manual_seed(45);
    bool was = igi_c3_force_avx2(true);
    ig_conv2d_params p = {.padding = {1, 1}}, p2 = {.padding = {1, 1}, .stride = {2, 2}};
    check_slots(3, 1, 1, 1, 1, 3, 3, p, IG_F32);
    check_slots(2, 5, 4, 16, 9, 3, 3, p, IG_F32);
    check_slots(5, 7, 9, 3, 20, 3, 3, p, IG_F32);
    check_slots(4, 16, 7, 7, 24, 3, 3, p, IG_F32);
    check_slots(2, 1, 2, 2, 3, 3, 3, p2, IG_F32);
    check_slots(5, 3, 7, 10, 9, 3, 3, p2, IG_F32);
    igi_c3_force_avx2(was);
}

/* The conv of a transposed (non-contiguous) input through the direct path equals the im2col
 * path's on a contiguous copy (the direct path turned off with the test hook), in the
 * output and all three gradients, for stride 1 and 2. */
Test(core, conv2d_direct3x3_strided_input_matches_im2col_path) {
    ig_manual_seed(44);
    for (int st = 1; st <= 2; st++) {
        int64_t N = 6, C = 5, H = 9, W = 11, O = 12, Ho = (H - 1) / st + 1, Wo = (W - 1) / st + 1;
        ig_conv2d_params p = {.padding = {1, 1}, .stride = {st, st}};
        ig_tensor *xl = ig_randn(IG_DIMS(N, C, W, H), IG_F32), *w = ig_randn(IG_DIMS(O, C, 3, 3), IG_F32);
        ig_tensor *b = ig_randn(IG_DIMS(O), IG_F32), *G = ig_randn(IG_DIMS(N, O, Ho, Wo), IG_F32);
        ig_set_requires_grad(xl, true);
        ig_set_requires_grad(w, true);
        ig_set_requires_grad(b, true);
        double *got[4], *want[4];
        for (int pass = 0; pass < 2; pass++) {
            bool was = igi_c3_set_enabled(pass == 0);
            ig_scope *sc = ig_scope_begin();
            ig_zero_grad(xl), ig_zero_grad(w), ig_zero_grad(b);
            ig_tensor *x = ig_transpose(xl, 2, 3);
            if (pass == 1) x = ig_contiguous(x);
            ig_tensor *y = ig_conv2d(x, w, b, &p);
            cr_assert(y, "%s", ig_last_error());
            cr_assert(ig_backward(ig_sum(ig_mul(y, G), 0, NULL, false), NULL) == IG_OK, "%s", ig_last_error());
            double **r = pass == 0 ? got : want;
            r[0] = to_f64(y), r[1] = to_f64(ig_grad(xl)), r[2] = to_f64(ig_grad(w)), r[3] = to_f64(ig_grad(b));
            ig_scope_end(sc);
            igi_c3_set_enabled(was);
        }
        int64_t n[4] = {N * O * Ho * Wo, N * C * W * H, O * C * 9, O};
        const char *name[4] = {"y", "dx", "dw", "db"};
        for (int k = 0; k < 4; k++) {
            double tol = k >= 2 ? 1e-4 : 1e-5;
            for (int64_t i = 0; i < n[k]; i++)
                cr_assert(fabs(got[k][i] - want[k][i]) <= tol * (1 + fabs(want[k][i])), "stride %d %s[%lld]: %.9g vs %.9g",
                          st, name[k], (long long)i, got[k][i], want[k][i]);
            free(got[k]), free(want[k]);
        }
        ig_tensor_free(xl), ig_tensor_free(w), ig_tensor_free(b), ig_tensor_free(G);
    }
}

/* The ResNets' 3x3 convolutions take the direct path on a CPU with AVX2 and FMA, and only
 * f32, 3x3, stride 1 or 2 (the same both ways), padding 1, dilation 1, one group does. */
Test(core, conv2d_direct3x3_selection) {
    ig_tensor *x = ig_zeros(IG_DIMS(2, 16, 28, 28), IG_F32), *w = ig_zeros(IG_DIMS(16, 16, 3, 3), IG_F32);
    int64_t attr[9] = {1, 1, 1, 1, 1, 1, 1, 28, 28};
    igi_conv g;
    igi_c3 c;
    igi_conv_geom(&g, x, w, attr);
    bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    cr_assert_eq(igi_c3_plan(&g, IG_F32, &c), cpu);
    if (cpu) cr_assert(c.Wp == 29 && c.Q == 28 * 29 && c.Qv == 816 && c.Op4 == 16 && c.Ov == 16);
    cr_assert(!igi_c3_plan(&g, IG_F64, &c), "f64 keeps the im2col path");
    int64_t s2[9] = {2, 2, 1, 1, 1, 1, 1, 14, 14};
    igi_conv_geom(&g, x, w, s2);
    cr_assert_eq(igi_c3_plan(&g, IG_F32, &c), cpu, "stride 2");
    if (cpu) cr_assert(c.s == 2 && c.Wp == 15 && c.Q == 14 * 15 && c.cs == 4 * c.ps);
    int64_t other[5][9] = {{3, 3, 1, 1, 1, 1, 1, 10, 10}, {1, 1, 2, 2, 2, 2, 1, 28, 28}, {1, 1, 0, 0, 1, 1, 1, 26, 26},
                           {1, 1, 1, 1, 1, 1, 2, 28, 28}, {2, 1, 1, 1, 1, 1, 1, 14, 28}};
    for (int k = 0; k < 5; k++) {
        igi_conv_geom(&g, x, w, other[k]);
        cr_assert(!igi_c3_plan(&g, IG_F32, &c), "case %d", k);
    }
    bool was = igi_c3_set_enabled(false);
    igi_conv_geom(&g, x, w, attr);
    cr_assert(!igi_c3_plan(&g, IG_F32, &c), "the test hook turns it off");
    igi_c3_set_enabled(was);
    ig_tensor_free(x), ig_tensor_free(w);
}
