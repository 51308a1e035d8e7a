/*
 * cuda/norm.cu — batch norm forward (batch statistics with the running-stat update, or the
 * running statistics in eval) and backward, with core/ops/norm.c's arithmetic.
 *
 * Batch norm splits each channel into up to 64 parts (cuda grid (parts, channels)): each
 * block reduces its part in a fixed tree order in shared memory, and the next kernel adds a
 * channel's partials in index order, so results are the same run to run. Forward in
 * training is three kernels (sums, squared deviations from the mean, normalise) and
 * backward two (sums of g and g * (x - mean), then dx). As on the CPU, statistics and the
 * backward sums accumulate in double, the variance takes two passes (mean, then squared
 * deviations), and y / dx are computed in double and rounded once to T. The CPU adds in
 * another order, so results agree to rounding (f32 well within 1e-5 relative, f64 within 1e-12).
 * bf16 activations (xdt IG_BF16, dt IG_F32): x, y, g and dx are read and written as bf16 in
 * the same kernels (template parameter X; w, b, running statistics, dw, db stay f32, T), so
 * each y / dx element is rounded to bf16 once, through f32 as the CPU's igi_store does; the
 * synchronised steps stay f32 / f64 and refuse bf16.
 * Synchronised batch norm (core's igi_batch_norm_sync) runs the same split as separate
 * steps: this process's sums (x; deviations about a given shift; g and g * (x - mean)),
 * which core all-reduces on the host, then the normalisation or dx with the group's
 * statistics and sums given. Layer norm
 * runs one block per row the same way; its weight and bias gradients are column sums, one
 * thread per column adding the rows in the CPU's order.
 */
#include "cuda_impl.h"

#define BN_THREADS IGC_THREADS /* igc_block_sum needs the block this size */

/* Split reductions: channel c is cut into P contiguous parts of `chunk` elements (of its
 * cnt = N*S, in (n, s) order); block (q, c) of a grid (P, C) sums part q, and the next
 * kernel adds the P partials of a channel in index order. P depends only on cnt, so the
 * sums (and the results) are the same on every run and every GPU. One block per channel,
 * as before, left most of the GPU idle: 16 channels of 200,000 elements kept 16 of 132
 * SMs busy. The part count is igc_parts (cuda_impl.h), shared with conv2d's bias gradient. */

/* Offset of element j (of cnt, in (n, s) order) of channel c in a contiguous [N, C, S]. */
__device__ __forceinline__ int64_t bn_at(int64_t j, int64_t c, int64_t C, int64_t S) {
    return ((j / S) * C + c) * S + j % S;
}

/* The sum of a channel's P partials, in index order. */
__device__ __forceinline__ double bn_total(const double *part, int64_t c, int64_t P) {
    double t = 0;
    for (int64_t q = 0; q < P; q++) t += part[c * P + q];
    return t;
}

/* Pass 1 (training): part1[c, q] = sum of x over part q of channel c. */
template <typename X> __global__ void bn_sum_kernel(igi_bn p, int64_t P, int64_t chunk, double *part1) {
    __shared__ double sh[BN_THREADS];
    const X *x = (const X *)p.x;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
        int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
        double acc = 0;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) acc += igc_load<X>(x[bn_at(j, c, C, S)]);
        double s = igc_block_sum(acc, sh);
        if (threadIdx.x == 0) part1[c * P + blockIdx.x] = s;
    }
}

/* Pass 2 (training): part2[c, q] = sum of (x - mean)^2 over part q, mean from part1. */
template <typename X>
__global__ void bn_sq_kernel(igi_bn p, int64_t P, int64_t chunk, const double *part1, double *part2) {
    __shared__ double sh[BN_THREADS];
    const X *x = (const X *)p.x;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
        double m = cnt > 0 ? bn_total(part1, c, P) / (double)cnt : 0.0;
        int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
        double acc = 0;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
            double d = igc_load<X>(x[bn_at(j, c, C, S)]) - m;
            acc += d * d;
        }
        double s = igc_block_sum(acc, sh);
        if (threadIdx.x == 0) part2[c * P + blockIdx.x] = s;
    }
}

/* y over part q of channel c (block (q, c)) from the channel's mean m and biased variance
 * v; block (0, c) records mean / invstd and, with update, takes the running statistics a
 * step towards m and the unbiased variance for cnt elements. */
template <typename X, typename T>
__device__ __forceinline__ void bn_apply_part(const igi_bn &p, int64_t c, int64_t chunk, double m, double v, double cnt,
                                              bool update) {
    const X *x = (const X *)p.x;
    X *y = (X *)p.y;
    int64_t S = p.S, C = p.C, n = p.N * p.S;
    double is = 1.0 / sqrt(v + p.eps);
    double wv = p.w ? (double)((const T *)p.w)[c * p.ws] : 1.0;
    double bv = p.b ? (double)((const T *)p.b)[c * p.bs] : 0.0;
    double a = wv * is, sft = bv - m * a;
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        p.mean[c] = m;
        p.invstd[c] = is;
        if (update) {
            double unbias = cnt / (cnt - 1.0);
            if (p.rm) {
                T *r = (T *)p.rm + c * p.rms;
                *r = (T)((1.0 - p.momentum) * (double)*r + p.momentum * m);
            }
            if (p.rv) {
                T *r = (T *)p.rv + c * p.rvs;
                *r = (T)((1.0 - p.momentum) * (double)*r + p.momentum * (v * unbias));
            }
        }
    }
    int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < n ? j0 + chunk : n;
    for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        int64_t o = bn_at(j, c, C, S);
        y[o] = igc_store<X>::of(igc_load<X>(x[o]) * a + sft);
    }
}

/* Pass 3: y over part q of channel c from the statistics (the partials in training, the
 * running statistics in eval). */
template <typename X, typename T>
__global__ void bn_apply_kernel(igi_bn p, int64_t P, int64_t chunk, const double *part1, const double *part2) {
    int64_t cnt = p.N * p.S;
    for (int64_t c = blockIdx.y; c < p.C; c += gridDim.y) {
        double m, v;
        if (p.training) {
            m = cnt > 0 ? bn_total(part1, c, P) / (double)cnt : 0.0;
            v = cnt > 0 ? bn_total(part2, c, P) / (double)cnt : 0.0;
        } else {
            m = (double)((const T *)p.rm)[c * p.rms];
            v = (double)((const T *)p.rv)[c * p.rvs];
        }
        bn_apply_part<X, T>(p, c, chunk, m, v, (double)cnt, p.training && cnt > 0);
    }
}

/* Synchronised batch norm: pass 3 with the group's statistics (stats: means, then biased
 * variances) and the group's count gcnt for the running variance. */
template <typename T>
__global__ void bn_sync_apply_kernel(igi_bn p, int64_t chunk, const double *stats, double gcnt) {
    for (int64_t c = blockIdx.y; c < p.C; c += gridDim.y)
        bn_apply_part<T, T>(p, c, chunk, stats[c], stats[p.C + c], gcnt, true);
}

/* Backward pass 1: part[c, q] = (sum g, sum g * (x - mean)) over part q of channel c. */
template <typename X> __global__ void bn_bwd_sum_kernel(igi_bn_bwd p, int64_t P, int64_t chunk, double *part) {
    __shared__ double sh[BN_THREADS];
    const X *x = (const X *)p.x, *g = (const X *)p.g;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
        double m = p.mean[c], ag = 0, agx = 0;
        int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
            int64_t o = bn_at(j, c, C, S);
            double gv = igc_load<X>(g[o]);
            ag += gv;
            agx += gv * (igc_load<X>(x[o]) - m);
        }
        double sg = igc_block_sum(ag, sh);
        double sgx = igc_block_sum(agx, sh);
        if (threadIdx.x == 0) {
            part[(c * P + blockIdx.x) * 2] = sg;
            part[(c * P + blockIdx.x) * 2 + 1] = sgx;
        }
    }
}

/* Over part q of channel c (block (q, c)): block (0, c) writes dw = sgx and db = sg (this
 * process's sums, sgx already times invstd); every block writes dx from the sums dsg /
 * dsgx (this process's, or in synchronised batch norm the group's). */
template <typename X, typename T>
__device__ __forceinline__ void bn_bwd_part(const igi_bn_bwd &p, int64_t c, int64_t chunk, double sg, double sgx,
                                            double dsg, double dsgx) {
    const X *x = (const X *)p.x, *g = (const X *)p.g;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    double m = p.mean[c], is = p.invstd[c];
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        if (p.dw) ((T *)p.dw)[c] = (T)sgx;
        if (p.db) ((T *)p.db)[c] = (T)sg;
    }
    if (!p.dx) return;
    double wv = p.w ? (double)((const T *)p.w)[c * p.ws] : 1.0;
    double k1 = wv * is;
    X *dx = (X *)p.dx;
    int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
    if (p.training) {
        double mg = dsg / p.cnt, mgx = dsgx / p.cnt * is;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
            int64_t o = bn_at(j, c, C, S);
            dx[o] = igc_store<X>::of(k1 * (igc_load<X>(g[o]) - mg - (igc_load<X>(x[o]) - m) * mgx));
        }
    } else {
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
            int64_t o = bn_at(j, c, C, S);
            dx[o] = igc_store<X>::of(k1 * igc_load<X>(g[o]));
        }
    }
}

/* Backward pass 2: the channel's sums from the partials (in index order), then dw, db and
 * dx over the block's part. */
template <typename X, typename T>
__global__ void bn_bwd_apply_kernel(igi_bn_bwd p, int64_t P, int64_t chunk, const double *part) {
    for (int64_t c = blockIdx.y; c < p.C; c += gridDim.y) {
        double sg = 0, sgx = 0;
        for (int64_t q = 0; q < P; q++) {
            sg += part[(c * P + q) * 2];
            sgx += part[(c * P + q) * 2 + 1];
        }
        sgx *= p.invstd[c];
        bn_bwd_part<X, T>(p, c, chunk, sg, sgx, sg, sgx);
    }
}

/* Synchronised batch norm, backward pass 2 with the sums given: sums[0..2C) this
 * process's (sum g, sum g * xhat), sums[2C..4C) the group's. */
template <typename T> __global__ void bn_sync_bwd_apply_kernel(igi_bn_bwd p, int64_t chunk, const double *sums) {
    int64_t C = p.C;
    for (int64_t c = blockIdx.y; c < C; c += gridDim.y)
        bn_bwd_part<T, T>(p, c, chunk, sums[c], sums[C + c], sums[2 * C + c], sums[3 * C + c]);
}

/* Synchronised batch norm's sums (igi_bn_sums), pass 1: part[(c * P + q) * 2 + k] = the
 * k-th sum of the kind over part q of channel c. kind is the same for the whole grid, so
 * the block sums below are reached by every thread. */
template <typename T>
__global__ void bn_sync_sum_kernel(igi_bn_sums p, int kind, int64_t P, int64_t chunk, double *part) {
    __shared__ double sh[BN_THREADS];
    const T *x = (const T *)p.x, *g = (const T *)p.g;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    for (int64_t c = blockIdx.y; c < C; c += gridDim.y) {
        double sft = kind == IGI_BN_SUM_X ? 0.0 : p.shift[c], a0 = 0, a1 = 0;
        int64_t j0 = (int64_t)blockIdx.x * chunk, j1 = j0 + chunk < cnt ? j0 + chunk : cnt;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
            int64_t o = bn_at(j, c, C, S);
            double d = (double)x[o] - sft;
            if (kind == IGI_BN_SUM_X) {
                a0 += d;
            } else if (kind == IGI_BN_SUM_DEV) {
                a0 += d;
                a1 += d * d;
            } else {
                double gv = (double)g[o];
                a0 += gv;
                a1 += gv * d;
            }
        }
        double s0 = igc_block_sum(a0, sh);
        double s1 = kind == IGI_BN_SUM_X ? 0.0 : igc_block_sum(a1, sh);
        if (threadIdx.x == 0) {
            part[(c * P + blockIdx.x) * 2] = s0;
            part[(c * P + blockIdx.x) * 2 + 1] = s1;
        }
    }
}

/* Pass 2: out[c] (and out[C + c]) = channel c's partials added in index order; the
 * gradient kind's second sum times invstd[c], as bn_bwd_apply_kernel does. */
__global__ void bn_sync_total_kernel(igi_bn_sums p, int kind, int64_t P, const double *part) {
    IGC_GRID_STRIDE(c, p.C) {
        double s0 = 0, s1 = 0;
        for (int64_t q = 0; q < P; q++) {
            s0 += part[(c * P + q) * 2];
            s1 += part[(c * P + q) * 2 + 1];
        }
        p.out[c] = s0;
        if (kind == IGI_BN_SUM_DEV) p.out[p.C + c] = s1;
        if (kind == IGI_BN_SUM_GRAD) p.out[p.C + c] = s1 * p.invstd[c];
    }
}

static unsigned channel_blocks(int64_t C) { return (unsigned)(C < 65535 ? C : 65535); }

/* Device scratch for the partials (stream-ordered: freed right after the launches that use
 * it, the caching allocator hands it out again only to later work on the same stream). */
static ig_status bn_scratch(const char *op, size_t n, double **out) {
    *out = (double *)igi_alloc(IG_CUDA, n * sizeof(double));
    if (!*out) return igi_error(IG_ERR_NOMEM, "%s: out of device memory for %zu batch-norm partial sums", op, n);
    return IG_OK;
}

template <typename X, typename T> static ig_status bn_forward(const char *op, const igi_bn *p) {
    int64_t cnt = p->N * p->S, P = igc_parts(cnt);
    int64_t chunk = (cnt + P - 1) / P;
    dim3 grid((unsigned)P, channel_blocks(p->C));
    double *part = NULL;
    if (p->training) {
        size_t n = (size_t)(p->C * P) * 2;
        ig_status st = bn_scratch(op, n, &part);
        if (st != IG_OK) return st;
        double *part1 = part, *part2 = part + p->C * P;
        bn_sum_kernel<X><<<grid, BN_THREADS, 0, igc_stream>>>(*p, P, chunk, part1);
        cudaError_t e = cudaGetLastError();
        if (e == cudaSuccess) {
            bn_sq_kernel<X><<<grid, BN_THREADS, 0, igc_stream>>>(*p, P, chunk, part1, part2);
            e = cudaGetLastError();
        }
        if (e == cudaSuccess) {
            bn_apply_kernel<X, T><<<grid, BN_THREADS, 0, igc_stream>>>(*p, P, chunk, part1, part2);
            e = cudaGetLastError();
        }
        igi_free(IG_CUDA, part, n * sizeof(double));
        if (e != cudaSuccess) return igc_fail(op, "batch norm kernels", __FILE__, __LINE__, e);
        return IG_OK;
    }
    bn_apply_kernel<X, T><<<grid, BN_THREADS, 0, igc_stream>>>(*p, P, chunk, NULL, NULL);
    IGC_LAUNCHED(op);
    return IG_OK;
}

template <typename X, typename T> static ig_status bn_backward(const char *op, const igi_bn_bwd *p) {
    int64_t cnt = p->N * p->S, P = igc_parts(cnt), chunk = (cnt + P - 1) / P;
    dim3 grid((unsigned)P, channel_blocks(p->C));
    size_t n = (size_t)(p->C * P) * 2;
    double *part = NULL;
    ig_status st = bn_scratch(op, n, &part);
    if (st != IG_OK) return st;
    bn_bwd_sum_kernel<X><<<grid, BN_THREADS, 0, igc_stream>>>(*p, P, chunk, part);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) {
        bn_bwd_apply_kernel<X, T><<<grid, BN_THREADS, 0, igc_stream>>>(*p, P, chunk, part);
        e = cudaGetLastError();
    }
    igi_free(IG_CUDA, part, n * sizeof(double));
    if (e != cudaSuccess) return igc_fail(op, "batch norm backward kernels", __FILE__, __LINE__, e);
    return IG_OK;
}

/* xdt IG_BF16 (bf16 activations, the table's IGI_BF16_BN) takes f32 parameters; any other
 * xdt is the plain case, x of dtype dt (callers that predate xdt leave it 0, IG_F32). */
static ig_status bn_bf16_dt(const char *op, ig_dtype dt) {
    return igi_error(IG_ERR_DTYPE, "%s: bfloat16 activations take float32 weights and statistics on cuda, not %s", op,
                     ig_dtype_name(dt));
}

ig_status igc_batch_norm(const char *op, const igi_bn *p) {
    if (p->xdt == IG_BF16 && p->dt != IG_F32) return bn_bf16_dt(op, p->dt);
    if (p->C <= 0) return IG_OK;
    if (p->xdt == IG_BF16) return bn_forward<__nv_bfloat16, float>(op, p);
    if (p->dt == IG_F32) return bn_forward<float, float>(op, p);
    if (p->dt == IG_F64) return bn_forward<double, double>(op, p);
    return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
}

ig_status igc_batch_norm_backward(const char *op, const igi_bn_bwd *p) {
    if (p->xdt == IG_BF16 && p->dt != IG_F32) return bn_bf16_dt(op, p->dt);
    if (p->C <= 0) return IG_OK;
    if (p->xdt == IG_BF16) return bn_backward<__nv_bfloat16, float>(op, p);
    if (p->dt == IG_F32) return bn_backward<float, float>(op, p);
    if (p->dt == IG_F64) return bn_backward<double, double>(op, p);
    return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
}

/* ---- synchronised batch norm (the table's batch_norm_sums / _apply / _backward_apply) -------- */

template <typename T> static ig_status bn_sync_sums(const char *op, int kind, const igi_bn_sums *p) {
    int64_t cnt = p->N * p->S, P = igc_parts(cnt), chunk = (cnt + P - 1) / P;
    dim3 grid((unsigned)P, channel_blocks(p->C));
    size_t n = (size_t)(p->C * P) * 2;
    double *part = NULL;
    ig_status st = bn_scratch(op, n, &part);
    if (st != IG_OK) return st;
    bn_sync_sum_kernel<T><<<grid, BN_THREADS, 0, igc_stream>>>(*p, kind, P, chunk, part);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) {
        bn_sync_total_kernel<<<igc_blocks(p->C), IGC_THREADS, 0, igc_stream>>>(*p, kind, P, part);
        e = cudaGetLastError();
    }
    igi_free(IG_CUDA, part, n * sizeof(double));
    if (e != cudaSuccess) return igc_fail(op, "batch norm sum kernels", __FILE__, __LINE__, e);
    return IG_OK;
}

ig_status igc_batch_norm_sums(const char *op, int kind, const igi_bn_sums *p) {
    if (kind < IGI_BN_SUM_X || kind > IGI_BN_SUM_GRAD)
        return igi_error(IG_ERR_ARG, "%s: invalid batch norm sum kind %d", op, kind);
    if (p->C <= 0) return IG_OK;
    if (p->dt == IG_F32) return bn_sync_sums<float>(op, kind, p);
    if (p->dt == IG_F64) return bn_sync_sums<double>(op, kind, p);
    return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
}

/* Synchronised batch norm's apply steps stay f32 / f64 (core widens bf16 activations to f32
 * copies for them): a bf16 x here is a caller's mistake, reported, never misread. */
static ig_status bn_sync_no_bf16(const char *op) {
    return igi_error(IG_ERR_DTYPE, "%s: synchronised batch norm on cuda takes float32 or float64 activations, not "
                     "bfloat16", op);
}

ig_status igc_batch_norm_apply(const char *op, const igi_bn *p, const double *stats, double cnt) {
    if (p->xdt == IG_BF16) return bn_sync_no_bf16(op);
    if (p->C <= 0) return IG_OK;
    int64_t n = p->N * p->S, P = igc_parts(n), chunk = (n + P - 1) / P;
    dim3 grid((unsigned)P, channel_blocks(p->C));
    if (p->dt == IG_F32) bn_sync_apply_kernel<float><<<grid, BN_THREADS, 0, igc_stream>>>(*p, chunk, stats, cnt);
    else if (p->dt == IG_F64) bn_sync_apply_kernel<double><<<grid, BN_THREADS, 0, igc_stream>>>(*p, chunk, stats, cnt);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_batch_norm_backward_apply(const char *op, const igi_bn_bwd *p, const double *sums) {
    if (p->xdt == IG_BF16) return bn_sync_no_bf16(op);
    if (p->C <= 0) return IG_OK;
    int64_t n = p->N * p->S, P = igc_parts(n), chunk = (n + P - 1) / P;
    dim3 grid((unsigned)P, channel_blocks(p->C));
    if (p->dt == IG_F32) bn_sync_bwd_apply_kernel<float><<<grid, BN_THREADS, 0, igc_stream>>>(*p, chunk, sums);
    else if (p->dt == IG_F64) bn_sync_bwd_apply_kernel<double><<<grid, BN_THREADS, 0, igc_stream>>>(*p, chunk, sums);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* ---- layer norm ------------------------------------------------------------------------ */

template <typename T> __global__ void ln_fwd_kernel(igi_ln p) {
    __shared__ double sh[BN_THREADS];
    const T *x = (const T *)p.x, *w = (const T *)p.w, *b = (const T *)p.b;
    T *y = (T *)p.y;
    int64_t D = p.D;
    for (int64_t r = blockIdx.x; r < p.R; r += gridDim.x) {
        const T *xr = x + r * D;
        double acc = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) acc += (double)xr[k];
        double m = igc_block_sum(acc, sh) / (double)D;
        acc = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double d = (double)xr[k] - m;
            acc += d * d;
        }
        double is = 1.0 / sqrt(igc_block_sum(acc, sh) / (double)D + p.eps);
        if (threadIdx.x == 0) {
            p.mean[r] = m;
            p.invstd[r] = is;
        }
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double wv = w ? (double)w[k] : 1.0, bv = b ? (double)b[k] : 0.0;
            y[r * D + k] = (T)(((double)xr[k] - m) * is * wv + bv);
        }
    }
}

template <typename T> __global__ void ln_dx_kernel(igi_ln p) {
    __shared__ double sh[BN_THREADS];
    const T *x = (const T *)p.x, *g = (const T *)p.g, *w = (const T *)p.w;
    T *dx = (T *)p.dx;
    int64_t D = p.D;
    for (int64_t r = blockIdx.x; r < p.R; r += gridDim.x) {
        const T *xr = x + r * D, *gr = g + r * D;
        double m = p.mean[r], is = p.invstd[r], a1 = 0, a2 = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double xh = ((double)xr[k] - m) * is, dy = (double)gr[k] * (w ? (double)w[k] : 1.0);
            a1 += dy;
            a2 += dy * xh;
        }
        double s1 = igc_block_sum(a1, sh) / (double)D;
        double s2 = igc_block_sum(a2, sh) / (double)D;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double xh = ((double)xr[k] - m) * is;
            dx[r * D + k] = (T)(is * ((double)gr[k] * (w ? (double)w[k] : 1.0) - s1 - xh * s2));
        }
    }
}

/* dw[k] = sum_r g*xhat, db[k] = sum_r g, rows in order. */
template <typename T> __global__ void ln_dwb_kernel(igi_ln p) {
    const T *x = (const T *)p.x, *g = (const T *)p.g;
    IGC_GRID_STRIDE(k, p.D) {
        double sw = 0, sb = 0;
        for (int64_t r = 0; r < p.R; r++) {
            double xh = ((double)x[r * p.D + k] - p.mean[r]) * p.invstd[r];
            sw += (double)g[r * p.D + k] * xh;
            sb += g[r * p.D + k];
        }
        if (p.dw) ((T *)p.dw)[k] = (T)sw;
        if (p.db) ((T *)p.db)[k] = (T)sb;
    }
}

ig_status igc_layer_norm(const char *op, const igi_ln *p) {
    if (p->R <= 0 || p->D <= 0) return IG_OK;
    unsigned nb = channel_blocks(p->R);
    if (p->dt == IG_F32) ln_fwd_kernel<float><<<nb, BN_THREADS, 0, igc_stream>>>(*p);
    else if (p->dt == IG_F64) ln_fwd_kernel<double><<<nb, BN_THREADS, 0, igc_stream>>>(*p);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_layer_norm_backward(const char *op, const igi_ln *p) {
    if (p->dt != IG_F32 && p->dt != IG_F64)
        return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
    if (p->D <= 0) return IG_OK;
    if (p->dx && p->R > 0) {
        unsigned nb = channel_blocks(p->R);
        if (p->dt == IG_F32) ln_dx_kernel<float><<<nb, BN_THREADS, 0, igc_stream>>>(*p);
        else ln_dx_kernel<double><<<nb, BN_THREADS, 0, igc_stream>>>(*p);
        IGC_LAUNCHED(op);
    }
    if (p->dw || p->db) {
        unsigned nb = igc_blocks(p->D);
        if (p->dt == IG_F32) ln_dwb_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*p);
        else ln_dwb_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*p);
        IGC_LAUNCHED(op);
    }
    return IG_OK;
}
