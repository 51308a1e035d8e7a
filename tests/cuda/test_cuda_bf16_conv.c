/*
 * tests/cuda/test_cuda_bf16_conv.c — the CUDA backend's native bf16 entries (the table's
 * IGI_BF16_CONV, IGI_BF16_GEMM, IGI_BF16_BN bits) called directly through the table, since
 * core does not pass bf16 to them yet: conv2d / conv2d_backward on every path (the implicit
 * GEMM's tensor-core and SIMT kernels, the im2col path on widened copies), gemm, and
 * batch_norm / batch_norm_backward with bf16 activations and f32 parameters.
 *
 * Operands are bf16 values (made on the host, rounded with ig_to_dtype); the references
 * are computed here in double from those same values with plain loops, then rounded to
 * bf16 once (igi_bf16_from_f32). Tolerance of a GEMM-like result (conv y, dx, dw; gemm):
 * the kernel sums the exact f32 products in f32 in another order (error at most
 * (L + 2) * 2^-24 * sum |terms| for a reduction of length L, the + 2 for the bias / beta
 * add) and rounds once, so it may land one bf16 ulp from the rounded exact value: allowed
 * |got - ref| <= ulp(ref) + (L + 2) * 2^-24 * sum |terms|. Sums in double (conv db, batch
 * norm) are the exact value to ~1e-16 before the rounding: one ulp as well. A 1-ulp error
 * is rare (the exact value must lie within the f32 error of a rounding midpoint), so at
 * most 1/16 of the elements (plus one) may differ from the rounded reference at all: a
 * kernel that truncates instead of rounding to nearest even misses about half of them.
 * Unwritten outputs are NaN (poisoned) and fail. Suite `cuda`; skips without a device.
 */
#include "cuda_test_util.h"

#include "core/backend_impl.h"
#include "core/tensor_impl.h"

#ifdef IGNIS_CUDA

/* A device bf16 tensor of n values v[i] = scale * (a pseudo-random number in [-1, 1)) +
 * shift, rounded to bf16; host[i] receives the exact bf16 values. */
static ig_tensor *bf16_dev(int64_t n, double *host, unsigned seed, double scale, double shift) {
    float *f = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    cr_assert(f);
    uint32_t s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = (float)(scale * ((double)(s >> 8) / 8388608.0 - 1.0) + shift);
    }
    ig_tensor *t = ig_to_dtype(ig_from_data(1, &n, IG_F32, f), IG_BF16);
    free(f);
    cr_assert(t, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_to_buffer(t, IG_F64, host, n), IG_OK, "%s", ig_last_error());
    return on(t, IG_CUDA);
}

/* A device tensor of n elements of dt, every one NaN (an unwritten output shows). */
static ig_tensor *poison_dev(int64_t n, ig_dtype dt) {
    ig_tensor *t = ig_full(1, &n, IG_F32, NAN);
    cr_assert(t, "%s", ig_last_error());
    return on(ig_to_dtype(t, dt), IG_CUDA);
}

static double *dbuf(int64_t n) {
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    cr_assert(p);
    return p;
}

static void read_back(ig_tensor *t, double *out, int64_t n) {
    cr_assert_eq(ig_tensor_to_buffer(t, IG_F64, out, n), IG_OK, "%s", ig_last_error());
}

/* v rounded to bf16 once (through f32, as core's igi_store and the kernels). */
static double bf16_round(double v) { return (double)igi_bf16_to_f32(igi_bf16_from_f32((float)v)); }

/* One bf16 ulp at r (0 for r = 0): 2^(e - 7) for |r| in [2^e, 2^(e+1)). */
static double bf16_ulp(double r) {
    if (r == 0 || !isfinite(r)) return 0;
    int e;
    frexp(r, &e); /* |r| in [2^(e-1), 2^e) */
    return ldexp(1.0, e - 8);
}

/* got (n values) against exact rounded to bf16 once, as the header says: absum[i] the sum
 * of |terms| of element i, L the reduction length. */
static void expect_bf16(const char *what, const double *got, const double *exact, const double *absum, int64_t n,
                        int64_t L) {
    int64_t off = 0;
    double gamma = (double)(L + 2) * ldexp(1.0, -24);
    for (int64_t i = 0; i < n; i++) {
        double ref = bf16_round(exact[i]);
        cr_assert(!isnan(got[i]), "%s: element %lld is NaN (not written?), want %.9g", what, (long long)i, ref);
        double tol = bf16_ulp(ref) + gamma * absum[i];
        cr_assert(fabs(got[i] - ref) <= tol, "%s: element %lld = %.9g, want %.9g (exact %.12g): off by %g > %g", what,
                  (long long)i, got[i], ref, exact[i], fabs(got[i] - ref), tol);
        if (got[i] != ref) off++;
    }
    cr_assert(off <= n / 16 + 1, "%s: %lld of %lld elements are not the rounded exact value (rounding?)", what,
              (long long)off, (long long)n);
}

/* ---- conv2d ------------------------------------------------------------------------------ */

typedef struct {
    int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, groups;
    bool bias;
    bool strided; /* x read every other column of a [N, C, H, 2W] buffer, b at stride 2 */
} bconv_case;

/* Tile widths (16 / 32 / 64 by O forward and dW, by C for dX), stride 2, padding, 1x1, 3x3,
 * dilation, a split reduction (64 channels at 7x7: few tiles, long K; forward and dX),
 * dW's slices (1024 pixels), strided x, groups (im2col only). */
static const bconv_case bconv_cases[] = {
    {2, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false},
    {2, 20, 8, 8, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, true, false},
    {2, 40, 7, 6, 70, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, false},
    {3, 17, 10, 10, 33, 3, 3, 2, 1, 1, 0, 2, 1, 1, true, true},
    {2, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false},
    {4, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, false},
    {2, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true, false},
};

/* Host references of y, dx, dw, db (exact, in double) and the sums of |terms|, from the
 * bf16 values x (logical [N, C, H, W]), w, b (NULL: none), dy ([N, O, Ho, Wo]). */
typedef struct {
    double *y, *ya, *dx, *dxa, *dw, *dwa, *db, *dba;
} bconv_ref;

static void bconv_reference(const bconv_case *c, int64_t Ho, int64_t Wo, const double *x, const double *w,
                            const double *b, const double *dy, bconv_ref *r) {
    int64_t Cg = c->C / c->groups, Og = c->O / c->groups;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t o = 0; o < c->O; o++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    int64_t yi = ((n * c->O + o) * Ho + oy) * Wo + ox, grp = o / Og;
                    double acc = b ? b[o] : 0, abs_acc = b ? fabs(b[o]) : 0, g = dy[yi];
                    r->db[o] += g;
                    r->dba[o] += fabs(g);
                    for (int64_t cc = 0; cc < Cg; cc++)
                        for (int64_t ki = 0; ki < c->kh; ki++)
                            for (int64_t kj = 0; kj < c->kw; kj++) {
                                int64_t iy = oy * c->sh - c->ph + ki * c->dh, ix = ox * c->sw - c->pw + kj * c->dw;
                                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                                int64_t ch = grp * Cg + cc;
                                int64_t xi = ((n * c->C + ch) * c->H + iy) * c->W + ix;
                                int64_t wi = ((o * Cg + cc) * c->kh + ki) * c->kw + kj;
                                acc += x[xi] * w[wi];
                                abs_acc += fabs(x[xi] * w[wi]);
                                r->dx[xi] += g * w[wi];
                                r->dxa[xi] += fabs(g * w[wi]);
                                r->dw[wi] += g * x[xi];
                                r->dwa[wi] += fabs(g * x[xi]);
                            }
                    r->y[yi] = acc;
                    r->ya[yi] = abs_acc;
                }
}

/* Runs case c through the table on the conv path `path` (igi_cuda_conv_force) and checks y,
 * dx, dw, db; with twice, runs it again and wants the same bits. */
static void bconv_run(const bconv_case *c, int path, const char *path_name, bool twice) {
    const igi_backend *be = igi_backend_get("test", IG_CUDA);
    cr_assert(be && be->conv2d && be->conv2d_backward, "%s", ig_last_error());
    cr_assert(be->bf16 & IGI_BF16_CONV, "the table does not claim native bf16 conv");
    ig_scope *s = ig_scope_begin();
    igi_conv g;
    memset(&g, 0, sizeof g);
    g.N = c->N, g.C = c->C, g.H = c->H, g.W = c->W, g.O = c->O, g.kh = c->kh, g.kw = c->kw;
    g.stride_h = c->sh, g.stride_w = c->sw, g.pad_h = c->ph, g.pad_w = c->pw, g.dil_h = c->dh, g.dil_w = c->dw;
    g.groups = c->groups;
    g.Ho = (c->H + 2 * c->ph - c->dh * (c->kh - 1) - 1) / c->sh + 1;
    g.Wo = (c->W + 2 * c->pw - c->dw * (c->kw - 1) - 1) / c->sw + 1;
    g.Cg = c->C / c->groups, g.Og = c->O / c->groups, g.K = g.Cg * c->kh * c->kw, g.P = g.Ho * g.Wo;
    int64_t xw = c->strided ? 2 * c->W : c->W; /* the x buffer's row length */
    g.xs[3] = c->strided ? 2 : 1, g.xs[2] = xw, g.xs[1] = c->H * xw, g.xs[0] = c->C * c->H * xw;
    /* nb as core's conv_fill (a 256 MiB budget: every image here) */
    g.nb = c->N;
    g.amp = IG_AMP_OFF;

    int64_t xn = c->N * c->C * c->H * c->W, xbn = c->N * c->C * c->H * xw, wn = c->O * g.K, yn = c->N * c->O * g.P;
    int64_t bs = c->strided ? 2 : 1;
    double *xb = dbuf(xbn), *x = dbuf(xn), *w = dbuf(wn), *bb = dbuf(bs * c->O), *dy = dbuf(yn);
    ig_tensor *dx_t = bf16_dev(xbn, xb, 1, 1.0, 0.0), *dw_t = bf16_dev(wn, w, 2, 0.5, 0.05);
    ig_tensor *db_t = c->bias ? bf16_dev(bs * c->O, bb, 3, 1.0, 0.2) : NULL, *ddy_t = bf16_dev(yn, dy, 4, 1.0, 0.0);
    for (int64_t i = 0; i < xn; i++) {
        int64_t ix = i % c->W, rest = i / c->W;
        x[i] = xb[rest * xw + ix * g.xs[3]];
    }
    double *b = NULL;
    if (c->bias) {
        b = dbuf(c->O);
        for (int64_t o = 0; o < c->O; o++) b[o] = bb[o * bs];
    }
    bconv_ref r = {dbuf(yn), dbuf(yn), dbuf(xn), dbuf(xn), dbuf(wn), dbuf(wn), dbuf(c->O), dbuf(c->O)};
    bconv_reference(c, g.Ho, g.Wo, x, w, b, dy, &r);

    /* the scratch as core sizes it for bf16: f32 elements (igi_conv) */
    size_t colb = (size_t)(g.K * g.nb * g.P) * 4, resb = (size_t)(g.Og * g.nb * g.P) * 4;
    void *col = be->raw_alloc(colb ? colb : 1), *res = be->raw_alloc(resb ? resb : 1);
    cr_assert(col && res);
    double *got[2][4] = {{NULL}};
    for (int run = 0; run < (twice ? 2 : 1); run++) {
        ig_tensor *y = poison_dev(yn, IG_BF16), *gx = poison_dev(xn, IG_BF16), *gw = poison_dev(wn, IG_BF16);
        ig_tensor *gb = poison_dev(c->O, IG_BF16);
        int prev = igi_cuda_conv_force(path);
        ig_status st = be->conv2d("test_bf16_conv", IG_BF16, &g, igi_data(dx_t), igi_data(dw_t),
                                  db_t ? igi_data(db_t) : NULL, bs, igi_data(y), col, res);
        cr_assert_eq(st, IG_OK, "%s", ig_last_error());
        st = be->conv2d_backward("test_bf16_conv", IG_BF16, &g, igi_data(dx_t), igi_data(dw_t), igi_data(ddy_t),
                                 igi_data(gx), igi_data(gw), igi_data(gb), col, res);
        cr_assert_eq(st, IG_OK, "%s", ig_last_error());
        igi_cuda_conv_force(prev);
        ig_tensor *outs[4] = {y, gx, gw, gb};
        int64_t ns[4] = {yn, xn, wn, c->O};
        for (int i = 0; i < 4; i++) {
            got[run][i] = dbuf(ns[i]);
            read_back(outs[i], got[run][i], ns[i]);
        }
        char what[160];
        snprintf(what, sizeof what, "%s, case N%lld C%lld O%lld %lldx%lld s%lld: y", path_name, (long long)c->N,
                 (long long)c->C, (long long)c->O, (long long)c->kh, (long long)c->kw, (long long)c->sh);
        expect_bf16(what, got[run][0], r.y, r.ya, yn, g.K);
        what[strlen(what) - 1] = 0;
        strcat(what, "dx");
        expect_bf16(what, got[run][1], r.dx, r.dxa, xn, g.Og * c->kh * c->kw);
        what[strlen(what) - 2] = 0;
        strcat(what, "dw");
        expect_bf16(what, got[run][2], r.dw, r.dwa, wn, c->N * g.P);
        what[strlen(what) - 2] = 0;
        strcat(what, "db");
        expect_bf16(what, got[run][3], r.db, r.dba, c->O, c->N * g.P);
    }
    if (twice) {
        int64_t ns[4] = {yn, xn, wn, c->O};
        for (int i = 0; i < 4; i++) {
            cr_assert(memcmp(got[0][i], got[1][i], sizeof(double) * (size_t)ns[i]) == 0,
                      "%s: output %d differs between two runs", path_name, i);
            free(got[1][i]);
        }
    }
    for (int i = 0; i < 4; i++) free(got[0][i]);
    be->raw_free(col);
    be->raw_free(res);
    double *all[] = {xb, x, w, bb, dy, b, r.y, r.ya, r.dx, r.dxa, r.dw, r.dwa, r.db, r.dba};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    ig_scope_end(s);
}

#endif

Test(cuda, bf16_conv_tensor_cores_match_the_rounded_reference) {
    need_cuda();
#ifdef IGNIS_CUDA
    for (size_t k = 0; k < sizeof bconv_cases / sizeof bconv_cases[0]; k++)
        bconv_run(&bconv_cases[k], IGI_CUDA_CONV_IGEMM, "tensor cores", k == 4);
#endif
}

Test(cuda, bf16_conv_simt_matches_the_rounded_reference) {
    need_cuda();
#ifdef IGNIS_CUDA
    for (size_t k = 0; k < sizeof bconv_cases / sizeof bconv_cases[0]; k++)
        bconv_run(&bconv_cases[k], IGI_CUDA_CONV_SIMT, "simt", k == 5);
#endif
}

Test(cuda, bf16_conv_im2col_matches_the_rounded_reference) {
    need_cuda();
#ifdef IGNIS_CUDA
    for (size_t k = 0; k < sizeof bconv_cases / sizeof bconv_cases[0]; k++)
        bconv_run(&bconv_cases[k], IGI_CUDA_CONV_IM2COL, "im2col", k == 6);
#endif
}

/* ---- gemm -------------------------------------------------------------------------------- */

/* C [M, N] (row-major, ldc) = op(A) @ op(B) + beta * C, every matrix bf16, as igi_gemm's
 * conventions: A stored [M, K] (ta: [K, M]) with row stride lda, B [K, N] (tb: [N, K]). */
Test(cuda, bf16_gemm_matches_the_rounded_reference) {
    need_cuda();
#ifdef IGNIS_CUDA
    const igi_backend *be = igi_backend_get("test", IG_CUDA);
    cr_assert(be && be->gemm, "%s", ig_last_error());
    cr_assert(be->bf16 & IGI_BF16_GEMM, "the table does not claim native bf16 gemm");
    const int64_t M = 33, N = 17, K = 70;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int bi = 0; bi < 2; bi++) {
                ig_scope *s = ig_scope_begin();
                double beta = bi ? 1.0 : 0.0;
                int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                int64_t lda = ac + 3, ldb = bc + 1, ldc = N + 2; /* padded rows */
                double *a = dbuf(ar * lda), *b = dbuf(br * ldb), *c0 = dbuf(M * ldc), *got = dbuf(M * ldc);
                ig_tensor *A = bf16_dev(ar * lda, a, 10 + ta, 1.0, 0.1), *B = bf16_dev(br * ldb, b, 20 + tb, 1.0, -0.1);
                ig_tensor *C = bf16_dev(M * ldc, c0, 30, 2.0, 0.0);
                cr_assert_eq(be->gemm("test_bf16_gemm", IG_BF16, ta, tb, M, N, K, igi_data(A), lda, igi_data(B), ldb,
                                      beta, igi_data(C), ldc),
                             IG_OK, "%s", ig_last_error());
                read_back(C, got, M * ldc);
                double *ex = dbuf(M * N), *ab = dbuf(M * N), *gv = dbuf(M * N);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double acc = beta * c0[i * ldc + j], abs_acc = fabs(acc);
                        for (int64_t p = 0; p < K; p++) {
                            double av = ta ? a[p * lda + i] : a[i * lda + p], bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                            acc += av * bv;
                            abs_acc += fabs(av * bv);
                        }
                        ex[i * N + j] = acc;
                        ab[i * N + j] = abs_acc;
                        gv[i * N + j] = got[i * ldc + j];
                    }
                /* the padding columns of C are left alone */
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = N; j < ldc; j++)
                        cr_assert_eq(got[i * ldc + j], c0[i * ldc + j], "ta %d tb %d: C padding (%lld, %lld) changed",
                                     ta, tb, (long long)i, (long long)j);
                char what[64];
                snprintf(what, sizeof what, "gemm ta %d tb %d beta %g", ta, tb, beta);
                expect_bf16(what, gv, ex, ab, M * N, K);
                double *all[] = {a, b, c0, got, ex, ab, gv};
                for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
                ig_scope_end(s);
            }
#endif
}

/* ---- batch norm -------------------------------------------------------------------------- */

/* Batch norm with bf16 x / y / g / dx and f32 w, b, running statistics, dw, db (xdt IG_BF16,
 * dt IG_F32), training and eval, forward and backward, against double loops; the f32
 * results (running statistics, dw, db) within 1e-6 relative (double sums rounded once to
 * f32), the f64 statistics within 1e-12. */
Test(cuda, bf16_batch_norm_matches_the_rounded_reference) {
    need_cuda();
#ifdef IGNIS_CUDA
    const igi_backend *be = igi_backend_get("test", IG_CUDA);
    cr_assert(be && be->batch_norm && be->batch_norm_backward, "%s", ig_last_error());
    cr_assert(be->bf16 & IGI_BF16_BN, "the table does not claim native bf16 batch norm");
    const int64_t N = 4, C = 3, S = 5000; /* S large enough for several parts per channel */
    const int64_t n = N * C * S, cnt = N * S;
    const double eps = 1e-5, mom = 0.1;
    for (int training = 1; training >= 0; training--) {
        ig_scope *s = ig_scope_begin();
        double *x = dbuf(n), *gr = dbuf(n), *got = dbuf(n);
        ig_tensor *xd = bf16_dev(n, x, 40, 2.0, 0.7), *gd = bf16_dev(n, gr, 41, 1.0, 0.1);
        float wv[3] = {1.5f, -0.75f, 0.3f}, bv[3] = {0.25f, 0.0f, -1.0f}, rm0[3] = {0.5f, -0.2f, 0.1f},
              rv0[3] = {2.0f, 0.5f, 1.2f};
        ig_tensor *wt = on(ig_from_data(1, &C, IG_F32, wv), IG_CUDA), *bt = on(ig_from_data(1, &C, IG_F32, bv), IG_CUDA);
        ig_tensor *rm = on(ig_from_data(1, &C, IG_F32, rm0), IG_CUDA), *rv = on(ig_from_data(1, &C, IG_F32, rv0), IG_CUDA);
        ig_tensor *mean = poison_dev(C, IG_F64), *invstd = poison_dev(C, IG_F64), *y = poison_dev(n, IG_BF16);
        igi_bn p = {.N = N, .C = C, .S = S, .dt = IG_F32, .xdt = IG_BF16, .x = igi_data(xd), .y = igi_data(y),
                    .w = igi_data(wt), .b = igi_data(bt), .ws = 1, .bs = 1, .rm = igi_data(rm), .rv = igi_data(rv),
                    .rms = 1, .rvs = 1, .mean = (double *)(void *)igi_data(mean),
                    .invstd = (double *)(void *)igi_data(invstd), .eps = eps, .momentum = mom, .training = training};
        cr_assert_eq(be->batch_norm("test_bf16_bn", &p), IG_OK, "%s", ig_last_error());
        double m[3], v[3], is[3];
        for (int64_t c = 0; c < C; c++) {
            double sum = 0, sq = 0;
            for (int64_t i = 0; i < cnt; i++) sum += x[(i / S * C + c) * S + i % S];
            double mu = sum / (double)cnt;
            for (int64_t i = 0; i < cnt; i++) {
                double d = x[(i / S * C + c) * S + i % S] - mu;
                sq += d * d;
            }
            m[c] = training ? mu : rm0[c];
            v[c] = training ? sq / (double)cnt : rv0[c];
            is[c] = 1.0 / sqrt(v[c] + eps);
        }
        /* y, from the statistics, rounded once; the terms' magnitudes (absolute floor 2^-23
         * of them: the kernel's y = x * a + shift in double is this to ~1e-16) */
        double *ex = dbuf(n), *ab = dbuf(n);
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (i / S) % C;
            ex[i] = (x[i] - m[c]) * is[c] * wv[c] + bv[c];
            ab[i] = fabs(x[i] * is[c] * wv[c]) + fabs(m[c] * is[c] * wv[c]) + fabs(bv[c]);
        }
        read_back(y, got, n);
        expect_bf16(training ? "batch norm y (training)" : "batch norm y (eval)", got, ex, ab, n, 0);
        double st[2][3], rs[2][3];
        read_back(mean, st[0], C);
        read_back(invstd, st[1], C);
        read_back(rm, rs[0], C);
        read_back(rv, rs[1], C);
        for (int64_t c = 0; c < C; c++) {
            cr_expect(fabs(st[0][c] - m[c]) <= 1e-12 * (1 + fabs(m[c])), "mean[%lld] = %.17g, want %.17g", (long long)c,
                      st[0][c], m[c]);
            cr_expect(fabs(st[1][c] - is[c]) <= 1e-12 * is[c], "invstd[%lld] = %.17g, want %.17g", (long long)c,
                      st[1][c], is[c]);
            double wm = training ? (1 - mom) * rm0[c] + mom * m[c] : rm0[c];
            double wvar = training ? (1 - mom) * rv0[c] + mom * v[c] * (double)cnt / (double)(cnt - 1) : rv0[c];
            cr_expect(fabs(rs[0][c] - wm) <= 1e-6 * fabs(wm), "running mean[%lld] = %.9g, want %.9g", (long long)c,
                      rs[0][c], wm);
            cr_expect(fabs(rs[1][c] - wvar) <= 1e-6 * fabs(wvar), "running var[%lld] = %.9g, want %.9g", (long long)c,
                      rs[1][c], wvar);
        }
        /* backward with the statistics the forward saved */
        ig_tensor *dx = poison_dev(n, IG_BF16), *dw = poison_dev(C, IG_F32), *db = poison_dev(C, IG_F32);
        igi_bn_bwd q = {.N = N, .C = C, .S = S, .dt = IG_F32, .xdt = IG_BF16, .x = igi_data(xd), .g = igi_data(gd),
                        .w = igi_data(wt), .ws = 1, .mean = (const double *)(const void *)igi_data(mean),
                        .invstd = (const double *)(const void *)igi_data(invstd), .dx = igi_data(dx),
                        .dw = igi_data(dw), .db = igi_data(db), .cnt = (double)cnt, .training = training};
        cr_assert_eq(be->batch_norm_backward("test_bf16_bn", &q), IG_OK, "%s", ig_last_error());
        double sg[3] = {0}, sgx[3] = {0};
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (i / S) % C;
            sg[c] += gr[i];
            sgx[c] += gr[i] * (x[i] - m[c]) * is[c];
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (i / S) % C;
            double xh = (x[i] - m[c]) * is[c];
            ex[i] = training ? wv[c] * is[c] * (gr[i] - sg[c] / (double)cnt - xh * sgx[c] / (double)cnt)
                             : wv[c] * is[c] * gr[i];
            ab[i] = fabs(wv[c] * is[c]) * (fabs(gr[i]) + fabs(sg[c] / (double)cnt) + fabs(xh * sgx[c] / (double)cnt));
        }
        read_back(dx, got, n);
        expect_bf16(training ? "batch norm dx (training)" : "batch norm dx (eval)", got, ex, ab, n, 0);
        read_back(dw, st[0], C);
        read_back(db, st[1], C);
        for (int64_t c = 0; c < C; c++) {
            cr_expect(fabs(st[0][c] - sgx[c]) <= 1e-6 * fabs(sgx[c]) + 1e-9, "dw[%lld] = %.9g, want %.9g",
                      (long long)c, st[0][c], sgx[c]);
            cr_expect(fabs(st[1][c] - sg[c]) <= 1e-6 * fabs(sg[c]) + 1e-9, "db[%lld] = %.9g, want %.9g", (long long)c,
                      st[1][c], sg[c]);
        }
        free(x), free(gr), free(got), free(ex), free(ab);
        ig_scope_end(s);
    }
#endif
}

/* bf16 activations need f32 parameters; synchronised batch norm's apply steps stay f32 /
 * f64 and refuse bf16 x rather than misreading it. */
Test(cuda, bf16_batch_norm_refuses_what_it_does_not_take) {
    need_cuda();
    const igi_backend *be = igi_backend_get("test", IG_CUDA);
    cr_assert(be && be->batch_norm && be->batch_norm_apply && be->batch_norm_backward_apply, "%s", ig_last_error());
    igi_bn p = {.N = 1, .C = 1, .S = 1, .dt = IG_F64, .xdt = IG_BF16, .training = true};
    cr_expect_eq(be->batch_norm("op_fwd_f64", &p), IG_ERR_DTYPE);
    cr_expect(strstr(ig_last_error(), "op_fwd_f64"), "%s", ig_last_error());
    p.dt = IG_F32;
    cr_expect_eq(be->batch_norm_apply("op_apply", &p, NULL, 2.0), IG_ERR_DTYPE);
    cr_expect(strstr(ig_last_error(), "op_apply") && strstr(ig_last_error(), "bfloat16"), "%s", ig_last_error());
    igi_bn_bwd q = {.N = 1, .C = 1, .S = 1, .dt = IG_F32, .xdt = IG_BF16, .training = true};
    cr_expect_eq(be->batch_norm_backward_apply("op_bwd_apply", &q, NULL), IG_ERR_DTYPE);
    cr_expect(strstr(ig_last_error(), "op_bwd_apply"), "%s", ig_last_error());
    q.dt = IG_F64;
    cr_expect_eq(be->batch_norm_backward("op_bwd_f64", &q), IG_ERR_DTYPE);
    cr_expect(strstr(ig_last_error(), "op_bwd_f64"), "%s", ig_last_error());
}
