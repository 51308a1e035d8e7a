/*
 * cuda/conv.cu — 2-D convolution forward and backward: im2col + cuBLAS GEMM per chunk of
 * images and group, as core/ops/conv.c does on the CPU.
 *
 * Forward, per chunk of nc images (ld = nc*P columns) and group:
 *   col [K, ld]  = im2col of the chunk (padded positions 0; x read through its strides)
 *   res [Og, ld] = W_g [Og, K] @ col                     (igc_gemm)
 *   y[n, grp*Og + o, :] = res[o, i*P ..] + b[grp*Og + o]  (rows kernel)
 * Backward, per chunk and group (dyb [Og, ld] gathered from dy):
 *   dW_g [Og, K] += dyb @ col^T      (dW zeroed first; beta = 1 over the chunks)
 *   col [K, ld]   = W_g^T @ dyb, then col2im into dx
 *   db[o] = sum of dy over N, Ho, Wo (double, split into parts over the grid, added in order)
 * Under fp16 autocast (g.amp, f32 only) every GEMM goes through igc_gemm_amp: its operands
 * (W, col, dyb) are converted to fp16 just for the product; col, res and dyb stay f32.
 * (bf16 autocast arrives as bf16 activations, below: core converts f32 operands first.)
 * f32 convolutions with groups == 1 take the implicit GEMM of cuda/conv_igemm.cu instead
 * (no col matrix; igc_conv_igemm_applies decides, IGNIS_CUDA_CONV=im2col keeps this path);
 * the bias gradient is computed here for both.
 * IGNIS_CUDA_CONV=cudnn (igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN)) sends the convolutions
 * cuDNN takes (igc_conv_cudnn_takes: f32 without autocast, f64, bf16) to cuda/cudnn.cu;
 * the bias gradient stays here.
 * col2im gathers: each dx element sums its (ki, kj) contributions in the CPU's order
 * (ki, then kj, accumulating in T from 0), so no atomics are needed and the result only
 * differs from the CPU's through the GEMM's summation order.
 *
 * bf16 activations (dt IG_BF16, the table's IGI_BF16_CONV: x, w, b, y, dy, dx, dw, db all
 * bf16): the implicit GEMM reads and writes bf16 directly (f32 accumulation, each result
 * rounded once); the bias gradient reads bf16 dy (double sums, rounded once). The cases the
 * implicit GEMM does not take (groups > 1, empty or oversized geometry,
 * IGNIS_CUDA_CONV=im2col) run this file's f32 im2col path on widened f32 copies of the
 * operands (exact: bf16 values, whose products are exact in f32, so this is the arithmetic
 * of a bf16 GEMM with f32 accumulation, up to the order of the sums) and round the
 * results to bf16 once: correct and deterministic, but slower (whole-tensor conversions and
 * f32 scratch) — the price of cases resnets and the zoo's cnn do not hit.
 */
#include "cuda_impl.h"

/* col[r*ld + i*P + p] for r = (c*kh + ki)*kw + kj, image i of the chunk, p = oy*Wo + ox. */
template <typename T>
__global__ void im2col_kernel(igi_conv g, const T *x, int64_t n0, int64_t nc, int64_t grp, T *col) {
    int64_t ld = nc * g.P, total = g.K * ld;
    IGC_GRID_STRIDE(e, total) {
        int64_t r = e / ld, q = e % ld;
        int64_t i = q / g.P, p = q % g.P;
        int64_t oy = p / g.Wo, ox = p % g.Wo;
        int64_t kj = r % g.kw, ki = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
        int64_t iy = oy * g.stride_h - g.pad_h + ki * g.dil_h;
        int64_t ix = ox * g.stride_w - g.pad_w + kj * g.dil_w;
        T v = 0;
        if (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
            v = x[(n0 + i) * g.xs[0] + (grp * g.Cg + c) * g.xs[1] + iy * g.xs[2] + ix * g.xs[3]];
        col[e] = v;
    }
}

/* dx[n0+i, grp*Cg + c, iy, ix] (contiguous) = sum of the col entries that im2col took from it. */
template <typename T>
__global__ void col2im_kernel(igi_conv g, const T *col, int64_t n0, int64_t nc, int64_t grp, T *dx) {
    int64_t ld = nc * g.P, plane = g.H * g.W, total = nc * g.Cg * plane;
    IGC_GRID_STRIDE(e, total) {
        int64_t ix = e % g.W, iy = (e / g.W) % g.H, c = (e / plane) % g.Cg, i = e / (plane * g.Cg);
        T acc = 0;
        for (int64_t ki = 0; ki < g.kh; ki++) {
            int64_t ty = iy + g.pad_h - ki * g.dil_h;
            if (ty < 0 || ty % g.stride_h != 0) continue;
            int64_t oy = ty / g.stride_h;
            if (oy >= g.Ho) continue;
            for (int64_t kj = 0; kj < g.kw; kj++) {
                int64_t tx = ix + g.pad_w - kj * g.dil_w;
                if (tx < 0 || tx % g.stride_w != 0) continue;
                int64_t ox = tx / g.stride_w;
                if (ox >= g.Wo) continue;
                int64_t r = (c * g.kh + ki) * g.kw + kj;
                acc += col[r * ld + i * g.P + oy * g.Wo + ox];
            }
        }
        dx[(((n0 + i) * g.C) + grp * g.Cg + c) * plane + iy * g.W + ix] = acc;
    }
}

/* y rows of the chunk: y[n0+i, grp*Og + o, p] = (res ? res[o*ld + i*P + p] : 0) + bias. */
template <typename T>
__global__ void out_rows_kernel(igi_conv g, const T *res, const T *b, int64_t bs, int64_t n0, int64_t nc,
                                int64_t grp, T *y) {
    int64_t ld = nc * g.P, total = g.Og * ld;
    IGC_GRID_STRIDE(e, total) {
        int64_t o = e / ld, q = e % ld, i = q / g.P, p = q % g.P, ch = grp * g.Og + o;
        T v = b ? b[ch * bs] : (T)0;
        if (res) v = res[e] + v;
        y[((n0 + i) * g.O + ch) * g.P + p] = v;
    }
}

/* dyb[o*ld + i*P + p] = dy[n0+i, grp*Og + o, p]. */
template <typename T>
__global__ void dy_rows_kernel(igi_conv g, const T *dy, int64_t n0, int64_t nc, int64_t grp, T *dyb) {
    int64_t ld = nc * g.P, total = g.Og * ld;
    IGC_GRID_STRIDE(e, total) {
        int64_t o = e / ld, q = e % ld, i = q / g.P, p = q % g.P;
        dyb[e] = dy[((n0 + i) * g.O + grp * g.Og + o) * g.P + p];
    }
}

/* igc_gemm, or igc_gemm_amp when the convolution runs under fp16 autocast (T is float then). */
template <typename T>
static ig_status conv_gemm(const char *op, ig_dtype dt, int amp, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                           const T *A, int64_t lda, const T *B, int64_t ldb, double beta, T *C, int64_t ldc) {
    if (amp != IG_AMP_OFF && dt == IG_F32)
        return igc_gemm_amp(op, amp, ta, tb, M, N, K, (const float *)A, lda, (const float *)B, ldb, beta, (float *)C,
                            ldc);
    return igc_gemm(op, dt, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* db[o] = sum over n, p of dy[n, o, p] in double, split like batch norm's sums (norm.cu):
 * channel o's N*P values are cut into Q parts of `chunk`; block (q, o) writes the tree sum
 * of part q, and bias_sum_kernel adds a channel's Q partials in index order (deterministic;
 * Q depends only on the geometry). One block per channel left most SMs idle: cnn's first
 * conv has 32 channels of 200,704 values at batch 256. */
template <typename T>
__global__ void bias_part_kernel(igi_conv g, const T *dy, int64_t Q, int64_t chunk, double *part) {
    __shared__ double sh[IGC_THREADS];
    int64_t cnt = g.N * g.P;
    for (int64_t o = blockIdx.y; o < g.O; o += gridDim.y) {
        int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
        double acc = 0;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
            int64_t n = j / g.P, p = j % g.P;
            acc += igc_load<T>(dy[(n * g.O + o) * g.P + p]);
        }
        double total = igc_block_sum(acc, sh);
        if (threadIdx.x == 0) part[o * Q + blockIdx.x] = total;
    }
}

template <typename T> __global__ void bias_sum_kernel(int64_t O, int64_t Q, const double *part, T *db) {
    IGC_GRID_STRIDE(o, O) {
        double t = 0;
        for (int64_t q = 0; q < Q; q++) t += part[o * Q + q];
        db[o] = igc_store<T>::of(t); /* bf16: through f32, as the CPU's igi_store */
    }
}

static unsigned blocks_for_rows(int64_t n) { return (unsigned)(n < 65535 ? (n > 0 ? n : 1) : 65535); }

template <typename T>
static ig_status conv_fwd(const char *op, ig_dtype dt, const igi_conv *gp, const T *x, const T *w, const T *b,
                          int64_t bs, T *y, T *col, T *res) {
    const igi_conv g = *gp;
    bool gemm_ok = g.N > 0 && g.Og > 0 && g.K > 0;
    for (int64_t n0 = 0; n0 < g.N; n0 += g.nb) {
        int64_t nc = g.N - n0 < g.nb ? g.N - n0 : g.nb, ld = nc * g.P;
        for (int64_t grp = 0; grp < g.groups; grp++) {
            if (g.Og == 0 || ld == 0) continue;
            if (gemm_ok) {
                im2col_kernel<T><<<igc_blocks(g.K * ld), IGC_THREADS, 0, igc_stream>>>(g, x, n0, nc, grp, col);
                IGC_LAUNCHED(op);
                ig_status st = conv_gemm<T>(op, dt, g.amp, false, false, g.Og, ld, g.K, w + grp * g.Og * g.K, g.K, col, ld,
                                        0.0, res, ld);
                if (st != IG_OK) return st;
            }
            out_rows_kernel<T><<<igc_blocks(g.Og * ld), IGC_THREADS, 0, igc_stream>>>(
                g, gemm_ok ? res : (const T *)NULL, b, bs, n0, nc, grp, y);
            IGC_LAUNCHED(op);
        }
    }
    return IG_OK;
}

/* db (O elements of T) from dy, for both paths. */
template <typename T> static ig_status conv_bias_grad(const char *op, const igi_conv *gp, const T *dy, T *db) {
    const igi_conv g = *gp;
    size_t es = sizeof(T);
    if (db) {
        if (g.N * g.P == 0) {
            if (g.O > 0) IGC_CHECK(op, cudaMemsetAsync(db, 0, (size_t)g.O * es, igc_stream));
        } else if (g.O > 0) {
            int64_t cnt = g.N * g.P, Q = igc_parts(cnt);
            int64_t chunk = (cnt + Q - 1) / Q;
            size_t pbytes = (size_t)(g.O * Q) * sizeof(double);
            double *part = (double *)igi_alloc(IG_CUDA, pbytes);
            if (!part)
                return igi_error(IG_ERR_NOMEM, "%s: out of device memory for %zu bytes of bias-gradient sums", op,
                                 pbytes);
            bias_part_kernel<T><<<dim3((unsigned)Q, blocks_for_rows(g.O)), IGC_THREADS, 0, igc_stream>>>(g, dy, Q,
                                                                                                          chunk, part);
            cudaError_t e = cudaGetLastError();
            if (e == cudaSuccess) {
                bias_sum_kernel<T><<<igc_blocks(g.O), IGC_THREADS, 0, igc_stream>>>(g.O, Q, part, (T *)db);
                e = cudaGetLastError();
            }
            igi_free(IG_CUDA, part, pbytes); /* stream-ordered: reused only by later work */
            if (e != cudaSuccess) return igc_fail(op, "conv2d bias-gradient kernels", __FILE__, __LINE__, e);
        }
    }
    return IG_OK;
}

template <typename T>
static ig_status conv_bwd(const char *op, ig_dtype dt, const igi_conv *gp, const T *x, const T *w, const T *dy,
                          T *dx, T *dw, T *db, T *col, T *dyb) {
    const igi_conv g = *gp;
    size_t es = sizeof(T);
    bool gemm_ok = g.N > 0 && g.Og > 0 && g.K > 0;
    ig_status bst = conv_bias_grad<T>(op, gp, dy, db);
    if (bst != IG_OK) return bst;
    if (dt == IG_F32 && igc_conv_igemm_applies(dt, gp))
        return igc_conv2d_backward_igemm(op, gp, (const float *)x, (const float *)w, (const float *)dy, (float *)dx,
                                         (float *)dw, (float *)col);
    if (dw && g.O * g.K > 0) IGC_CHECK(op, cudaMemsetAsync(dw, 0, (size_t)(g.O * g.K) * es, igc_stream));
    if (dx && !gemm_ok && g.N * g.C * g.H * g.W > 0)
        IGC_CHECK(op, cudaMemsetAsync(dx, 0, (size_t)(g.N * g.C * g.H * g.W) * es, igc_stream));
    if (!gemm_ok || (!dx && !dw)) return IG_OK;
    for (int64_t n0 = 0; n0 < g.N; n0 += g.nb) {
        int64_t nc = g.N - n0 < g.nb ? g.N - n0 : g.nb, ld = nc * g.P;
        for (int64_t grp = 0; grp < g.groups; grp++) {
            dy_rows_kernel<T><<<igc_blocks(g.Og * ld), IGC_THREADS, 0, igc_stream>>>(g, dy, n0, nc, grp, dyb);
            IGC_LAUNCHED(op);
            if (dw) {
                im2col_kernel<T><<<igc_blocks(g.K * ld), IGC_THREADS, 0, igc_stream>>>(g, x, n0, nc, grp, col);
                IGC_LAUNCHED(op);
                ig_status st = conv_gemm<T>(op, dt, g.amp, false, true, g.Og, g.K, ld, dyb, ld, col, ld, 1.0,
                                        dw + grp * g.Og * g.K, g.K);
                if (st != IG_OK) return st;
            }
            if (dx) {
                ig_status st = conv_gemm<T>(op, dt, g.amp, true, false, g.K, ld, g.Og, w + grp * g.Og * g.K, g.K, dyb, ld,
                                        0.0, col, ld);
                if (st != IG_OK) return st;
                col2im_kernel<T><<<igc_blocks(nc * g.Cg * g.H * g.W), IGC_THREADS, 0, igc_stream>>>(g, col, n0, nc,
                                                                                                  grp, dx);
                IGC_LAUNCHED(op);
            }
        }
    }
    return IG_OK;
}

/* ---- bf16 activations: the f32 im2col path on widened copies ------------------------------ */

typedef __nv_bfloat16 bf16;

/* xf (contiguous [N, C, H, W] f32) = x (bf16, strides g.xs), exact. */
__global__ void widen_x_kernel(igi_conv g, const bf16 *x, float *xf) {
    int64_t total = g.N * g.C * g.H * g.W;
    IGC_GRID_STRIDE(e, total) {
        int64_t ix = e % g.W, iy = (e / g.W) % g.H, c = (e / (g.W * g.H)) % g.C, n = e / (g.W * g.H * g.C);
        xf[e] = __bfloat162float(x[n * g.xs[0] + c * g.xs[1] + iy * g.xs[2] + ix * g.xs[3]]);
    }
}

/* One block of f32 device scratch (from the caching allocator) cut into n pieces of the
 * given element counts, each starting on a 256-byte boundary (an empty piece gets an
 * address too, never dereferenced). */
typedef struct {
    float *base;
    size_t bytes;
} f32_scratch;

static ig_status f32_scratch_get(const char *op, f32_scratch *s, int n, const int64_t *count, float **piece) {
    size_t off[8], total = 0;
    for (int i = 0; i < n; i++) {
        off[i] = total;
        total += ((size_t)(count[i] > 0 ? count[i] : 0) + 63) / 64 * 64;
    }
    s->bytes = (total ? total : 1) * sizeof(float);
    s->base = (float *)igi_alloc(IG_CUDA, s->bytes);
    if (!s->base)
        return igi_error(IG_ERR_NOMEM, "%s: out of device memory for %zu bytes of bf16 convolution f32 copies", op,
                         s->bytes);
    for (int i = 0; i < n; i++) piece[i] = s->base + off[i];
    return IG_OK;
}

/* The geometry of the widened copies: x contiguous, no operand rounding (the values are
 * bf16 already: exact in f32 GEMMs, TF32 included). */
static igi_conv widened_geom(const igi_conv *gp) {
    igi_conv g = *gp;
    g.xs[3] = 1;
    g.xs[2] = g.W;
    g.xs[1] = g.H * g.W;
    g.xs[0] = g.C * g.H * g.W;
    g.amp = IG_AMP_OFF;
    return g;
}

/* dst (xn f32, packed NCHW) = x widened, read with x's own strides. */
static ig_status widen_x(const char *op, const igi_conv *gp, const bf16 *x, int64_t xn, float *dst) {
    if (xn <= 0) return IG_OK;
    widen_x_kernel<<<igc_blocks(xn), IGC_THREADS, 0, igc_stream>>>(*gp, x, dst);
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? IG_OK : igc_fail(op, "widen_x_kernel", __FILE__, __LINE__, e);
}

/* col and res: the table's scratch, f32-sized for bf16 (igi_conv). */
static ig_status conv_fwd_bf16_widened(const char *op, const igi_conv *gp, const bf16 *x, const bf16 *w,
                                       const bf16 *b, int64_t bs, bf16 *y, float *col, float *res) {
    const igi_conv g = widened_geom(gp);
    int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.K, yn = g.N * g.O * g.P;
    int64_t count[4] = {xn, wn, b ? g.O : 0, yn};
    float *pc[4];
    f32_scratch sc;
    ig_status st = f32_scratch_get(op, &sc, 4, count, pc);
    if (st != IG_OK) return st;
    st = widen_x(op, gp, x, xn, pc[0]);
    if (st == IG_OK) st = igc_bf16_widen(op, w, 1, wn, wn, pc[1]);
    if (st == IG_OK && b) st = igc_bf16_widen(op, b, g.O, 1, bs, pc[2]);
    if (st == IG_OK) st = conv_fwd<float>(op, IG_F32, &g, pc[0], pc[1], b ? pc[2] : NULL, 1, pc[3], col, res);
    if (st == IG_OK) st = igc_amp_convert(op, IG_AMP_BF16, pc[3], 1, yn, yn, y);
    igi_free(IG_CUDA, sc.base, sc.bytes); /* stream-ordered, as every scratch here */
    return st;
}

/* dx, dw (NULL when not wanted); db is computed natively by the caller. col and dyb: the
 * table's scratch, f32-sized for bf16. */
static ig_status conv_bwd_bf16_widened(const char *op, const igi_conv *gp, const bf16 *x, const bf16 *w,
                                       const bf16 *dy, bf16 *dx, bf16 *dw, float *col, float *dyb) {
    if (!dx && !dw) return IG_OK;
    const igi_conv g = widened_geom(gp);
    int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.K, yn = g.N * g.O * g.P;
    int64_t count[5] = {xn, wn, yn, dx ? xn : 0, dw ? wn : 0};
    float *pc[5];
    f32_scratch sc;
    ig_status st = f32_scratch_get(op, &sc, 5, count, pc);
    if (st != IG_OK) return st;
    st = widen_x(op, gp, x, xn, pc[0]);
    if (st == IG_OK) st = igc_bf16_widen(op, w, 1, wn, wn, pc[1]);
    if (st == IG_OK) st = igc_bf16_widen(op, dy, 1, yn, yn, pc[2]);
    if (st == IG_OK)
        st = conv_bwd<float>(op, IG_F32, &g, pc[0], pc[1], pc[2], dx ? pc[3] : NULL, dw ? pc[4] : NULL, NULL, col,
                             dyb);
    if (st == IG_OK && dx) st = igc_amp_convert(op, IG_AMP_BF16, pc[3], 1, xn, xn, dx);
    if (st == IG_OK && dw) st = igc_amp_convert(op, IG_AMP_BF16, pc[4], 1, wn, wn, dw);
    igi_free(IG_CUDA, sc.base, sc.bytes);
    return st;
}

ig_status igc_conv2d(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w, const void *b,
                     int64_t bs, void *y, void *col, void *res) {
    if (igc_conv_cudnn_takes(dt, g)) return igc_conv2d_cudnn(op, dt, g, x, w, b, bs, y);
    if (dt == IG_BF16) {
        if (igc_conv_igemm_applies(dt, g))
            return igc_conv2d_igemm_bf16(op, g, (const bf16 *)x, (const bf16 *)w, (const bf16 *)b, bs, (bf16 *)y);
        return conv_fwd_bf16_widened(op, g, (const bf16 *)x, (const bf16 *)w, (const bf16 *)b, bs, (bf16 *)y,
                                     (float *)col, (float *)res);
    }
    if (igc_conv_igemm_applies(dt, g))
        return igc_conv2d_igemm(op, g, (const float *)x, (const float *)w, (const float *)b, bs, (float *)y);
    if (dt == IG_F32)
        return conv_fwd<float>(op, dt, g, (const float *)x, (const float *)w, (const float *)b, bs, (float *)y,
                               (float *)col, (float *)res);
    if (dt == IG_F64)
        return conv_fwd<double>(op, dt, g, (const double *)x, (const double *)w, (const double *)b, bs,
                                (double *)y, (double *)col, (double *)res);
    return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(dt));
}

ig_status igc_conv2d_backward(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w,
                              const void *dy, void *dx, void *dw, void *db, void *col, void *dyb) {
    if (igc_conv_cudnn_takes(dt, g)) { /* the three convolutions on cuDNN, the bias gradient here */
        ig_status st = dt == IG_F64    ? conv_bias_grad<double>(op, g, (const double *)dy, (double *)db)
                       : dt == IG_BF16 ? conv_bias_grad<bf16>(op, g, (const bf16 *)dy, (bf16 *)db)
                                       : conv_bias_grad<float>(op, g, (const float *)dy, (float *)db);
        if (st != IG_OK) return st;
        return igc_conv2d_backward_cudnn(op, dt, g, x, w, dy, dx, dw);
    }
    if (dt == IG_BF16) {
        ig_status st = conv_bias_grad<bf16>(op, g, (const bf16 *)dy, (bf16 *)db);
        if (st != IG_OK) return st;
        if (igc_conv_igemm_applies(dt, g))
            return igc_conv2d_backward_igemm_bf16(op, g, (const bf16 *)x, (const bf16 *)w, (const bf16 *)dy,
                                                  (bf16 *)dx, (bf16 *)dw, col);
        return conv_bwd_bf16_widened(op, g, (const bf16 *)x, (const bf16 *)w, (const bf16 *)dy, (bf16 *)dx,
                                     (bf16 *)dw, (float *)col, (float *)dyb);
    }
    if (dt == IG_F32)
        return conv_bwd<float>(op, dt, g, (const float *)x, (const float *)w, (const float *)dy, (float *)dx,
                               (float *)dw, (float *)db, (float *)col, (float *)dyb);
    if (dt == IG_F64)
        return conv_bwd<double>(op, dt, g, (const double *)x, (const double *)w, (const double *)dy, (double *)dx,
                                (double *)dw, (double *)db, (double *)col, (double *)dyb);
    return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(dt));
}
