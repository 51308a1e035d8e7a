/*
 * tests/core/test_pool.c — ig_max_pool2d, ig_avg_pool2d and ig_adaptive_avg_pool2d:
 * hand-computed values (padding, ceil_mode, count_include_pad vs exclude_padding, bins
 * that do not divide), a plain-loop reference over many parameter combinations, strided
 * and 3-D inputs, gradients through ig_gradcheck, tie routing in max backward, and every
 * error path.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

static void expect_values(ig_tensor *y, int n, const double *want, double tol) {
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(y), n);
    for (int i = 0; i < n; i++)
        cr_assert(fabs(ig_tensor_get(y, i) - want[i]) <= tol, "element %d: got %.12g want %.12g", i,
                  ig_tensor_get(y, i), want[i]);
}

static void expect_shape4(ig_tensor *y, int64_t a, int64_t b, int64_t c, int64_t d) {
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), 4);
    const int64_t *s = ig_tensor_shape(y);
    cr_assert(s[0] == a && s[1] == b && s[2] == c && s[3] == d, "shape [%lld,%lld,%lld,%lld]",
              (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
}

/* 1..n as [1,1,h,w]. */
static ig_tensor *count_up(int64_t h, int64_t w, ig_dtype dt) {
    return ig_reshape(ig_arange(1, (double)(h * w) + 1, 1, dt), IG_DIMS(1, 1, h, w));
}

Test(core, max_pool2d_hand_computed) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = count_up(4, 4, IG_F32);
    ig_tensor *y = ig_max_pool2d(x, &(ig_pool2d_params){.kernel = {2, 2}});
    expect_shape4(y, 1, 1, 2, 2);
    expect_values(y, 4, (double[]){6, 8, 14, 16}, 0);
    /* kernel 3, stride 2, padding 1: windows rows/cols [-1,2) and [1,4). */
    y = ig_max_pool2d(x, &(ig_pool2d_params){.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
    expect_shape4(y, 1, 1, 2, 2);
    expect_values(y, 4, (double[]){6, 8, 14, 16}, 0);
    /* Padding is -inf, not 0: all-negative input. */
    y = ig_max_pool2d(ig_neg(x), &(ig_pool2d_params){.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
    expect_values(y, 4, (double[]){-1, -2, -5, -6}, 0);
    ig_scope_end(s);
}

Test(core, pool2d_ceil_mode_and_padding_counts) {
    ig_scope *s = ig_scope_begin();
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = di ? IG_F64 : IG_F32;
        ig_tensor *x = count_up(1, 7, dt); /* one row 1..7 */
        /* kernel 3, stride 3: floor mode 2 windows, ceil mode a third one [6,7). */
        ig_pool2d_params p = {.kernel = {1, 3}};
        expect_values(ig_avg_pool2d(x, &p), 2, (double[]){2, 5}, 1e-6);
        p.ceil_mode = true;
        expect_values(ig_max_pool2d(x, &p), 3, (double[]){3, 6, 7}, 0);
        /* The clipped last window divides by 1 (it ends at the input + padding). */
        expect_values(ig_avg_pool2d(x, &p), 3, (double[]){2, 5, 7}, 1e-6);
        /* padding 1: windows [-1,2), [2,5), [5,8). */
        p.padding[1] = 1;
        expect_values(ig_max_pool2d(x, &p), 3, (double[]){2, 5, 7}, 0);
        expect_values(ig_avg_pool2d(x, &p), 3, (double[]){1, 4, 13.0 / 3}, 1e-6);
        p.exclude_padding = true;
        expect_values(ig_avg_pool2d(x, &p), 3, (double[]){1.5, 4, 6.5}, 1e-6);
    }
    /* torch's rule: the last window must start inside the input or the left padding.
     * 5 wide, kernel 3, stride 3, padding 1, ceil: 3 windows by the formula, but the third
     * would start at 5 (in the right padding), so 2. */
    ig_tensor *x5 = count_up(5, 5, IG_F64);
    ig_tensor *y = ig_max_pool2d(x5, &(ig_pool2d_params){.kernel = {3, 3}, .stride = {3, 3},
                                                          .padding = {1, 1}, .ceil_mode = true});
    expect_shape4(y, 1, 1, 2, 2);
    /* windows [-1,2) and [2,5). */
    expect_values(y, 4, (double[]){7, 10, 22, 25}, 0);
    /* 5 wide, kernel 2, stride 2, ceil: 3 windows, the last one [4,5). */
    y = ig_avg_pool2d(x5, &(ig_pool2d_params){.kernel = {2, 2}, .ceil_mode = true});
    expect_shape4(y, 1, 1, 3, 3);
    /* Window (2,2) is x[4][4] = 25 alone; with count_include_pad torch divides by the
     * window clipped to input + padding (1x1 here). */
    cr_assert_float_eq(ig_tensor_get(y, 8), 25.0, 1e-12);
    cr_assert_float_eq(ig_tensor_get(y, 0), (1 + 2 + 6 + 7) / 4.0, 1e-12);
    cr_assert_float_eq(ig_tensor_get(y, 2), (5 + 10) / 2.0, 1e-12);
    ig_scope_end(s);
}

/* ---- reference over parameter combinations ------------------------------------------------ */

/* Pool of a contiguous f64 [N,C,H,W] copy with torch's algorithm, written plainly. */
static double *ref_pool(ig_tensor *x, bool is_max, const ig_pool2d_params *p, int64_t os[4]) {
    const int64_t *xs = ig_tensor_shape(x);
    int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
    int64_t kk[2] = {p->kernel[0], p->kernel[1]}, pp[2] = {p->padding[0], p->padding[1]};
    int64_t ss[2] = {p->stride[0] ? p->stride[0] : kk[0], p->stride[1] ? p->stride[1] : kk[1]};
    int64_t in[2] = {H, W}, out[2];
    for (int i = 0; i < 2; i++) {
        double q = (double)(in[i] + 2 * pp[i] - kk[i]) / (double)ss[i];
        out[i] = (int64_t)(p->ceil_mode ? ceil(q) : floor(q)) + 1;
        if (p->ceil_mode && (out[i] - 1) * ss[i] >= in[i] + pp[i]) out[i]--;
    }
    os[0] = N;
    os[1] = C;
    os[2] = out[0];
    os[3] = out[1];
    int64_t nx = ig_tensor_numel(x);
    double *X = malloc(sizeof(double) * (size_t)(nx + 1));
    cr_assert(ig_tensor_to_buffer(x, IG_F64, X, nx) == IG_OK);
    double *Y = malloc(sizeof(double) * (size_t)(N * C * out[0] * out[1] + 1));
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < out[0]; i++)
            for (int64_t j = 0; j < out[1]; j++) {
                int64_t h0 = i * ss[0] - pp[0], w0 = j * ss[1] - pp[1];
                int64_t h1 = h0 + kk[0] < H + pp[0] ? h0 + kk[0] : H + pp[0];
                int64_t w1 = w0 + kk[1] < W + pp[1] ? w0 + kk[1] : W + pp[1];
                int64_t padded = (h1 - h0) * (w1 - w0), inside = 0;
                double m = -INFINITY, sum = 0;
                for (int64_t y = h0; y < h1; y++)
                    for (int64_t xx = w0; xx < w1; xx++) {
                        if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                        double v = X[(nc * H + y) * W + xx];
                        m = v > m ? v : m;
                        sum += v;
                        inside++;
                    }
                Y[(nc * out[0] + i) * out[1] + j] =
                    is_max ? m : sum / (double)(p->exclude_padding ? inside : padded);
            }
    free(X);
    return Y;
}

static void check_pool(ig_tensor *x, bool is_max, const ig_pool2d_params *p) {
    ig_tensor *y = is_max ? ig_max_pool2d(x, p) : ig_avg_pool2d(x, p);
    cr_assert(y, "%s", ig_last_error());
    int64_t os[4];
    double *want = ref_pool(x, is_max, p, os);
    expect_shape4(y, os[0], os[1], os[2], os[3]);
    cr_assert_eq(ig_tensor_dtype(y), ig_tensor_dtype(x));
    double tol = ig_tensor_dtype(x) == IG_F32 ? 1e-5 : 1e-12;
    for (int64_t i = 0; i < ig_tensor_numel(y); i++)
        cr_assert(fabs(ig_tensor_get(y, i) - want[i]) <= tol * (1 + fabs(want[i])),
                  "element %lld: got %.12g want %.12g (k %d,%d s %d,%d p %d,%d ceil %d excl %d)",
                  (long long)i, ig_tensor_get(y, i), want[i], p->kernel[0], p->kernel[1],
                  p->stride[0], p->stride[1], p->padding[0], p->padding[1], p->ceil_mode,
                  p->exclude_padding);
    free(want);
}

Test(core, pool2d_values_against_reference) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(31);
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = di ? IG_F64 : IG_F32;
        ig_tensor *xs[2] = {
            ig_randn(IG_DIMS(2, 3, 7, 8), dt),
            /* a permuted (channels-last) view */
            ig_permute(ig_randn(IG_DIMS(2, 7, 8, 3), dt), (const int[]){0, 3, 1, 2}),
        };
        for (int xi = 0; xi < 2; xi++)
            for (int kh = 1; kh <= 3; kh++)
                for (int kw = 2; kw <= 3; kw++)
                    for (int st = 0; st <= 2; st++)
                        for (int ph = 0; ph <= kh / 2; ph++)
                            for (int ceil_mode = 0; ceil_mode <= 1; ceil_mode++)
                                for (int excl = 0; excl <= 1; excl++) {
                                    ig_pool2d_params p = {.kernel = {kh, kw}, .stride = {st, st == 2 ? 1 : st},
                                                          .padding = {ph, kw / 2}, .ceil_mode = ceil_mode,
                                                          .exclude_padding = excl};
                                    check_pool(xs[xi], true, &p);
                                    check_pool(xs[xi], false, &p);
                                }
    }
    ig_scope_end(s);
}

Test(core, pool2d_three_dim_and_zero_size_inputs) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(32);
    ig_tensor *x3 = ig_randn(IG_DIMS(3, 6, 5), IG_F64);
    ig_pool2d_params p = {.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 1}};
    ig_tensor *x4 = ig_unsqueeze(x3, 0);
    ig_tensor *pairs[3][2] = {
        {ig_max_pool2d(x3, &p), ig_max_pool2d(x4, &p)},
        {ig_avg_pool2d(x3, &p), ig_avg_pool2d(x4, &p)},
        {ig_adaptive_avg_pool2d(x3, 4, 2), ig_adaptive_avg_pool2d(x4, 4, 2)},
    };
    for (int k = 0; k < 3; k++) {
        cr_assert(pairs[k][0] && pairs[k][1], "%s", ig_last_error());
        cr_assert_eq(ig_tensor_ndim(pairs[k][0]), 3);
        cr_assert_eq(ig_tensor_numel(pairs[k][0]), ig_tensor_numel(pairs[k][1]));
        for (int64_t i = 0; i < ig_tensor_numel(pairs[k][0]); i++)
            cr_assert_float_eq(ig_tensor_get(pairs[k][0], i), ig_tensor_get(pairs[k][1], i), 0);
    }
    ig_tensor *e = ig_zeros(IG_DIMS(0, 2, 4, 4), IG_F32);
    expect_shape4(ig_max_pool2d(e, &(ig_pool2d_params){.kernel = {2, 2}}), 0, 2, 2, 2);
    expect_shape4(ig_avg_pool2d(e, &(ig_pool2d_params){.kernel = {2, 2}}), 0, 2, 2, 2);
    expect_shape4(ig_adaptive_avg_pool2d(e, 3, 1), 0, 2, 3, 1);
    ig_scope_end(s);
}

/* ---- adaptive ----------------------------------------------------------------------------- */

Test(core, adaptive_avg_pool2d_values) {
    ig_scope *s = ig_scope_begin();
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = di ? IG_F64 : IG_F32;
        double tol = di ? 1e-12 : 1e-5;
        /* x[r][c] = 5r + c + 1 on 5x5; 5 -> 3 bins [0,2), [1,4), [3,5) with mean positions
         * 0.5, 2, 3.5, so out[i][j] = 5*m[i] + m[j] + 1. */
        ig_tensor *x = count_up(5, 5, dt);
        double m[3] = {0.5, 2, 3.5}, want[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) want[i * 3 + j] = 5 * m[i] + m[j] + 1;
        ig_tensor *y = ig_adaptive_avg_pool2d(x, 3, 3);
        expect_shape4(y, 1, 1, 3, 3);
        expect_values(y, 9, want, tol);
        /* Global 1x1: the mean, 13. */
        expect_values(ig_adaptive_avg_pool2d(x, 1, 1), 1, (double[]){13}, tol);
        /* Identity size. */
        ig_tensor *id = ig_adaptive_avg_pool2d(x, 5, 5);
        for (int i = 0; i < 25; i++) cr_assert_float_eq(ig_tensor_get(id, i), i + 1.0, tol);
        /* 3 -> 5 (more bins than inputs; bins overlap): rows [0,1),[0,2),[1,2),[1,3),[2,3). */
        ig_tensor *r = ig_reshape(ig_arange(1, 4, 1, dt), IG_DIMS(1, 1, 3, 1));
        expect_values(ig_adaptive_avg_pool2d(r, 5, 1), 5, (double[]){1, 1.5, 2, 2.5, 3}, tol);
        /* 7 -> 3 on a non-square, strided input: bins [0,3), [2,5), [4,7) along W. */
        ig_tensor *row = ig_transpose(ig_reshape(ig_arange(1, 8, 1, dt), IG_DIMS(1, 1, 7, 1)), 2, 3);
        expect_values(ig_adaptive_avg_pool2d(row, 1, 3), 3, (double[]){2, 4, 6}, tol);
    }
    ig_scope_end(s);
}

/* ---- gradients ---------------------------------------------------------------------------- */

typedef struct pool_case {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    ig_pool2d_params p;
    int64_t oh, ow;
    bool permute; /* inputs[0] is [N,H,W,C] */
} pool_case;

static ig_tensor *pool_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    const pool_case *pc = ctx;
    ig_tensor *x = pc->permute ? ig_permute(in[0], (const int[]){0, 3, 1, 2}) : in[0];
    if (pc->kind == 0) return ig_max_pool2d(x, &pc->p);
    if (pc->kind == 1) return ig_avg_pool2d(x, &pc->p);
    return ig_transpose(ig_adaptive_avg_pool2d(x, pc->oh, pc->ow), 2, 3);
}

/* Distinct values (gaps of 0.1, shuffled) so max windows have no ties near eps. */
static ig_tensor *distinct(int64_t N, int64_t C, int64_t H, int64_t W) {
    int64_t n = N * C * H * W;
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = (double)((i * 37 + 11) % n) * 0.1 - 3.0;
    ig_tensor *t = ig_from_data(IG_DIMS(N, C, H, W), IG_F64, v);
    free(v);
    return t;
}

static void gradcheck_pool(const pool_case *pc, ig_tensor *x) {
    ig_set_requires_grad(x, true);
    ig_status st = ig_gradcheck(pool_fn, &x, 1, (void *)pc, NULL);
    cr_assert(st == IG_OK, "kind %d k %d,%d s %d p %d ceil %d excl %d: %s", pc->kind,
              pc->p.kernel[0], pc->p.kernel[1], pc->p.stride[0], pc->p.padding[0], pc->p.ceil_mode,
              pc->p.exclude_padding, ig_last_error());
}

Test(core, pool2d_gradcheck) {
    ig_manual_seed(33);
    for (int kind = 0; kind <= 1; kind++)
        for (int k = 2; k <= 3; k++)
            for (int st = 1; st <= 2; st++)
                for (int pad = 0; pad <= 1; pad++)
                    for (int ceil_mode = 0; ceil_mode <= 1; ceil_mode++)
                        for (int excl = 0; excl <= kind; excl++) {
                            ig_scope *s = ig_scope_begin();
                            pool_case pc = {.kind = kind,
                                            .p = {.kernel = {k, k - 1 > 0 ? k - 1 : 1}, .stride = {st, st},
                                                  .padding = {pad, 0}, .ceil_mode = ceil_mode,
                                                  .exclude_padding = excl}};
                            ig_tensor *x = kind == 0 ? distinct(2, 2, 6, 5) : ig_randn(IG_DIMS(2, 2, 6, 5), IG_F64);
                            gradcheck_pool(&pc, x);
                            ig_scope_end(s);
                        }
    /* A strided (channels-last) input. */
    ig_scope *s = ig_scope_begin();
    pool_case pc = {.kind = 0, .p = {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}, .permute = true};
    gradcheck_pool(&pc, distinct(2, 5, 5, 3));
    pc.kind = 1;
    gradcheck_pool(&pc, ig_randn(IG_DIMS(2, 5, 5, 3), IG_F64));
    ig_scope_end(s);
}

Test(core, adaptive_avg_pool2d_gradcheck) {
    ig_manual_seed(34);
    int64_t sizes[][2] = {{3, 3}, {1, 1}, {2, 4}, {7, 5}, {5, 6}};
    for (int i = 0; i < 5; i++)
        for (int perm = 0; perm <= 1; perm++) {
            ig_scope *s = ig_scope_begin();
            pool_case pc = {.kind = 2, .oh = sizes[i][0], .ow = sizes[i][1], .permute = perm};
            gradcheck_pool(&pc, ig_randn(IG_DIMS(2, 5, 6, 3), IG_F64));
            ig_scope_end(s);
        }
}

Test(core, max_pool2d_backward_routes_to_first_max) {
    ig_scope *s = ig_scope_begin();
    /* Every element equal: each 2x2 window's gradient goes to its top-left element. */
    ig_tensor *x = ig_ones(IG_DIMS(1, 1, 4, 4), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *y = ig_sum(ig_max_pool2d(x, &(ig_pool2d_params){.kernel = {2, 2}}), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 16; i++) {
        int r = i / 4, c = i % 4;
        cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), (r % 2 == 0 && c % 2 == 0) ? 1.0 : 0.0, 0);
    }
    /* Overlapping windows (stride 1) add up on a shared max. */
    ig_tensor *z = ig_from_data(IG_DIMS(1, 1, 1, 4), IG_F64, (double[]){0, 5, 1, 2});
    ig_set_requires_grad(z, true);
    y = ig_sum(ig_max_pool2d(z, &(ig_pool2d_params){.kernel = {1, 2}, .stride = {1, 1}}), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    expect_values(ig_grad(z), 4, (double[]){0, 2, 0, 1}, 0);
    ig_scope_end(s);
}

/* The 2x2 stride-2 fast path (contiguous rows, every window inside) keeps the general
 * rules: first maximum on ties, first NaN wins, the same values with and without recording,
 * and the gradient lands on the argmax. Reference: a plain scan in window order. */
Test(core, max_pool2d_2x2_fast_path_ties_and_nan) {
    ig_scope *s = ig_scope_begin();
    enum { H = 6, W = 8, Ho = 3, Wo = 4 };
    float v[2 * H * W];
    for (int i = 0; i < 2 * H * W; i++) v[i] = (float)((i * 7) % 5); /* many ties */
    v[3] = NAN;                /* window (0,1) of plane 0: NaN second in scan order */
    v[W + 4] = NAN;            /* window (0,2): a NaN at the bottom-left */
    v[W + 5] = NAN;            /* ... and another after it */
    v[H * W + 1] = 100.0f;     /* plane 1, window (0,0) */
    ig_tensor *x = ig_from_data(IG_DIMS(1, 2, H, W), IG_F32, v);
    ig_set_requires_grad(x, true);
    ig_pool2d_params p = {.kernel = {2, 2}};
    ig_tensor *y = ig_max_pool2d(x, &p);
    cr_assert(y, "%s", ig_last_error());
    ig_no_grad_begin();
    ig_tensor *y_eval = ig_max_pool2d(x, &p);
    ig_no_grad_end();
    float want[2 * Ho * Wo];
    int arg[2 * Ho * Wo];
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                int q = (c * Ho + oy) * Wo + ox, best = -1;
                float m = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int i = (2 * oy + dy) * W + 2 * ox + dx;
                        float e = v[c * H * W + i];
                        if (best < 0 || e > m || (isnan(e) && !isnan(m))) m = e, best = i;
                    }
                want[q] = m;
                arg[q] = c * H * W + best;
            }
    for (int q = 0; q < 2 * Ho * Wo; q++) {
        double got = ig_tensor_get(y, q), got_eval = ig_tensor_get(y_eval, q);
        if (isnan(want[q])) {
            cr_assert(isnan(got) && isnan(got_eval), "output %d: want NaN", q);
        } else {
            cr_assert_eq(got, want[q], "output %d", q);
            cr_assert_eq(got_eval, want[q], "output %d (no grad)", q);
        }
    }
    /* Backward with seed r: r[q] lands on arg[q]. */
    float r[2 * Ho * Wo];
    double gwant[2 * H * W] = {0};
    for (int q = 0; q < 2 * Ho * Wo; q++) r[q] = (float)(q + 1), gwant[arg[q]] += q + 1;
    ig_tensor *rt = ig_from_data(IG_DIMS(1, 2, Ho, Wo), IG_F32, r);
    cr_assert(ig_backward(y, rt) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 2 * H * W; i++) {
        double g = ig_tensor_get(ig_grad(x), i);
        cr_assert_eq(g, gwant[i], "dx %d: %g vs %g", i, g, gwant[i]);
    }
    ig_scope_end(s);
}

Test(core, avg_pool2d_backward_f32_spreads_gradient) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_DIMS(1, 1, 3, 3), IG_F32);
    ig_set_requires_grad(x, true);
    /* kernel 2, stride 1, padding 1, count_include_pad: every window divides by 4; element
     * (i,j) lies in 4 windows -> gradient 1. exclude_padding: corners lie in windows of 1,
     * 2, 2 and 4 in-input elements. */
    ig_tensor *y = ig_sum(ig_avg_pool2d(x, &(ig_pool2d_params){.kernel = {2, 2}, .stride = {1, 1},
                                                                .padding = {1, 1}}),
                          0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 9; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), 1.0, 1e-6);
    ig_zero_grad(x);
    y = ig_sum(ig_avg_pool2d(x, &(ig_pool2d_params){.kernel = {2, 2}, .stride = {1, 1},
                                                    .padding = {1, 1}, .exclude_padding = true}),
               0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    /* Windows over the 3x3 input have in-input sizes 1,2,2,1 / 2,4,4,2 / ... per position;
     * element (0,0) is in windows of sizes 1, 2, 2, 4. */
    cr_assert_float_eq(ig_tensor_get(ig_grad(x), 0), 1.0 + 0.5 + 0.5 + 0.25, 1e-6);
    cr_assert_float_eq(ig_tensor_get(ig_grad(x), 4), 4 * 0.25, 1e-6);
    ig_scope_end(s);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void expect_error(ig_tensor *r, const char *op, const char *what) {
    cr_assert_null(r);
    cr_assert(strstr(ig_last_error(), op), "message lacks %s: %s", op, ig_last_error());
    cr_assert(strstr(ig_last_error(), what), "message lacks '%s': %s", what, ig_last_error());
}

Test(core, pool2d_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_zeros(IG_DIMS(1, 2, 4, 4), IG_F32);
    ig_pool2d_params ok = {.kernel = {2, 2}};
    ig_clear_error();
    expect_error(ig_max_pool2d(NULL, &ok), "ig_max_pool2d", "x");
    ig_clear_error();
    expect_error(ig_avg_pool2d(NULL, &ok), "ig_avg_pool2d", "x");
    ig_clear_error();
    expect_error(ig_max_pool2d(x, NULL), "ig_max_pool2d", "p");
    ig_clear_error();
    expect_error(ig_avg_pool2d(x, NULL), "ig_avg_pool2d", "p");
    ig_clear_error();
    expect_error(ig_adaptive_avg_pool2d(NULL, 1, 1), "ig_adaptive_avg_pool2d", "x");
    const char *ops[2] = {"ig_max_pool2d", "ig_avg_pool2d"};
    for (int k = 0; k < 2; k++) {
        ig_tensor *(*f)(ig_tensor *, const ig_pool2d_params *) = k ? ig_avg_pool2d : ig_max_pool2d;
        expect_error(f(ig_zeros(IG_DIMS(4, 4), IG_F32), &ok), ops[k], "[4,4]");
        expect_error(f(ig_zeros(IG_DIMS(1, 1, 1, 4, 4), IG_F32), &ok), ops[k], "[1,1,1,4,4]");
        expect_error(f(ig_zeros(IG_DIMS(1, 2, 4, 4), IG_I64), &ok), ops[k], "int64");
        expect_error(f(x, &(ig_pool2d_params){0}), ops[k], "kernel size must be positive");
        expect_error(f(x, &(ig_pool2d_params){.kernel = {2, -1}}), ops[k], "kernel size must be positive");
        expect_error(f(x, &(ig_pool2d_params){.kernel = {2, 2}, .stride = {-1, 1}}), ops[k], "stride");
        expect_error(f(x, &(ig_pool2d_params){.kernel = {2, 2}, .padding = {2, 0}}), ops[k], "half the kernel");
        expect_error(f(x, &(ig_pool2d_params){.kernel = {2, 2}, .padding = {0, -1}}), ops[k], "padding");
        expect_error(f(x, &(ig_pool2d_params){.kernel = {5, 2}}), ops[k], "output size would be");
        cr_assert(strstr(ig_last_error(), "[1,2,4,4]"), "%s", ig_last_error());
    }
    expect_error(ig_adaptive_avg_pool2d(x, 0, 2), "ig_adaptive_avg_pool2d", "output size must be positive");
    expect_error(ig_adaptive_avg_pool2d(x, 2, -1), "ig_adaptive_avg_pool2d", "output size must be positive");
    expect_error(ig_adaptive_avg_pool2d(ig_zeros(IG_DIMS(1, 2, 0, 4), IG_F32), 2, 2), "ig_adaptive_avg_pool2d",
                 "[1,2,0,4]");
    expect_error(ig_adaptive_avg_pool2d(ig_zeros(IG_DIMS(2, 4), IG_F32), 1, 1), "ig_adaptive_avg_pool2d", "[2,4]");
    expect_error(ig_adaptive_avg_pool2d(ig_zeros(IG_DIMS(1, 2, 4, 4), IG_U8), 1, 1), "ig_adaptive_avg_pool2d",
                 "uint8");
    expect_error(ig_adaptive_avg_pool2d(x, INT64_MAX / 2, 1), "ig_adaptive_avg_pool2d", "too large");
    ig_scope_end(s);
}

static ig_tensor *pool3d_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    int kind = *(const int *)ctx;
    ig_pool2d_params p = {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}, .ceil_mode = true};
    if (kind == 0) return ig_max_pool2d(in[0], &p);
    if (kind == 1) return ig_avg_pool2d(in[0], &p);
    return ig_adaptive_avg_pool2d(in[0], 2, 3);
}

Test(core, pool2d_gradcheck_three_dim_input) {
    for (int kind = 0; kind < 3; kind++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_squeeze(distinct(1, 3, 5, 4), 0); /* [C,H,W] */
        ig_set_requires_grad(x, true);
        cr_assert(ig_gradcheck(pool3d_fn, &x, 1, &kind, NULL) == IG_OK, "kind %d: %s", kind, ig_last_error());
        ig_scope_end(s);
    }
}

/* The 2x2 fast path's argmax is computed in blocks of 256 output columns: rows wider than a
 * block (Wo = 515), ties and NaNs on both sides of the block edge, f32 and f64; the gradient
 * must land on the first maximum (or first NaN) of each window, as a plain scan finds it. */
static void check_wide_argmax(ig_dtype dt) {
    ig_scope *s = ig_scope_begin();
    enum { H = 4, W = 1030, Ho = 2, Wo = 515 };
    static double v[H * W];
    for (int i = 0; i < H * W; i++) v[i] = (double)((i * 7) % 5); /* many ties */
    v[510] = NAN;       /* window (0,255): top-left */
    v[W + 513] = NAN;   /* window (0,256): bottom-right */
    v[2 * W + 1029] = NAN; /* last window of the second row: bottom-right ... */
    v[3 * W + 1028] = NAN; /* ... and bottom-left, which comes first in scan order */
    ig_tensor *x = ig_from_data(IG_DIMS(1, 1, H, W), IG_F64, v);
    if (dt == IG_F32) x = ig_to_dtype(x, IG_F32);
    ig_set_requires_grad(x, true);
    ig_tensor *y = ig_max_pool2d(x, &(ig_pool2d_params){.kernel = {2, 2}});
    cr_assert(y, "%s", ig_last_error());
    static double gwant[H * W];
    memset(gwant, 0, sizeof gwant);
    for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
            int best = -1;
            double m = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int i = (2 * oy + dy) * W + 2 * ox + dx;
                    if (best < 0 || v[i] > m || (isnan(v[i]) && !isnan(m))) m = v[i], best = i;
                }
            gwant[best] += oy * Wo + ox + 1;
        }
    ig_tensor *r = ig_arange(1, Ho * Wo + 1, 1, dt);
    cr_assert(ig_backward(y, ig_reshape(r, IG_DIMS(1, 1, Ho, Wo))) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < H * W; i++) {
        double g = ig_tensor_get(ig_grad(x), i);
        cr_assert_eq(g, gwant[i], "%s dx %d: %g vs %g", ig_dtype_name(dt), i, g, gwant[i]);
    }
    ig_scope_end(s);
}

Test(core, max_pool2d_2x2_argmax_across_blocks) {
    check_wide_argmax(IG_F32);
    check_wide_argmax(IG_F64);
}
