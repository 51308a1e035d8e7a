/*
 * cuda/norm.cu — batch norm forward (batch statistics with the running-stat update, or the
 * running statistics in eval) and backward, with core/ops/norm.c's arithmetic.
 *
 * One block per channel (grid-stride over channels): the block's threads stride over the
 * channel's N*S elements and combine partial sums in shared memory in a fixed tree order
 * (deterministic run to run). As on the CPU, statistics and the backward sums accumulate
 * in double, the variance takes two passes (mean, then squared deviations), and y / dx
 * are computed in double and rounded once to T. The CPU adds in another order, so
 * results agree to rounding (f32 well within 1e-5 relative, f64 within 1e-12). Layer norm
 * runs one block per row the same way; its weight and bias gradients are column sums, one
 * thread per column adding the rows in the CPU's order.
 */
#include "cuda_impl.h"

#define BN_THREADS 256

/* The block's sum of v (every thread passes its partial); every thread gets the total. */
__device__ double bn_block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = BN_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double total = sh[0];
    __syncthreads();
    return total;
}

template <typename T> __global__ void bn_fwd_kernel(igi_bn p) {
    __shared__ double sh[BN_THREADS];
    const T *x = (const T *)p.x;
    T *y = (T *)p.y;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        double m, v;
        if (p.training) {
            if (cnt == 0) {
                m = 0;
                v = 0;
            } else {
                double acc = 0;
                for (int64_t j = threadIdx.x; j < cnt; j += blockDim.x)
                    acc += (double)x[((j / S) * C + c) * S + j % S];
                m = bn_block_sum(acc, sh) / (double)cnt;
                acc = 0;
                for (int64_t j = threadIdx.x; j < cnt; j += blockDim.x) {
                    double d = (double)x[((j / S) * C + c) * S + j % S] - m;
                    acc += d * d;
                }
                v = bn_block_sum(acc, sh) / (double)cnt;
            }
        } else {
            m = (double)((const T *)p.rm)[c * p.rms];
            v = (double)((const T *)p.rv)[c * p.rvs];
        }
        double is = 1.0 / sqrt(v + p.eps);
        double wv = p.w ? (double)((const T *)p.w)[c * p.ws] : 1.0;
        double bv = p.b ? (double)((const T *)p.b)[c * p.bs] : 0.0;
        double a = wv * is, sft = bv - m * a;
        if (threadIdx.x == 0) {
            p.mean[c] = m;
            p.invstd[c] = is;
            if (p.training && cnt > 0) {
                double unbias = (double)cnt / (double)(cnt - 1);
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
        for (int64_t j = threadIdx.x; j < cnt; j += blockDim.x) {
            int64_t o = ((j / S) * C + c) * S + j % S;
            y[o] = (T)((double)x[o] * a + sft);
        }
    }
}

template <typename T> __global__ void bn_bwd_kernel(igi_bn_bwd p) {
    __shared__ double sh[BN_THREADS];
    const T *x = (const T *)p.x, *g = (const T *)p.g;
    int64_t S = p.S, C = p.C, cnt = p.N * p.S;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        double m = p.mean[c], is = p.invstd[c];
        double ag = 0, agx = 0;
        for (int64_t j = threadIdx.x; j < cnt; j += blockDim.x) {
            int64_t o = ((j / S) * C + c) * S + j % S;
            double gv = (double)g[o];
            ag += gv;
            agx += gv * ((double)x[o] - m);
        }
        double sg = bn_block_sum(ag, sh);
        double sgx = bn_block_sum(agx, sh) * is;
        if (threadIdx.x == 0) {
            if (p.dw) ((T *)p.dw)[c] = (T)sgx;
            if (p.db) ((T *)p.db)[c] = (T)sg;
        }
        if (!p.dx) continue;
        double wv = p.w ? (double)((const T *)p.w)[c * p.ws] : 1.0;
        double k1 = wv * is;
        T *dx = (T *)p.dx;
        if (p.training) {
            double mg = sg / p.cnt, mgx = sgx / p.cnt * is;
            for (int64_t j = threadIdx.x; j < cnt; j += blockDim.x) {
                int64_t o = ((j / S) * C + c) * S + j % S;
                dx[o] = (T)(k1 * ((double)g[o] - mg - ((double)x[o] - m) * mgx));
            }
        } else {
            for (int64_t j = threadIdx.x; j < cnt; j += blockDim.x) {
                int64_t o = ((j / S) * C + c) * S + j % S;
                dx[o] = (T)(k1 * (double)g[o]);
            }
        }
    }
}

static unsigned channel_blocks(int64_t C) { return (unsigned)(C < 65535 ? C : 65535); }

ig_status igc_batch_norm(const char *op, const igi_bn *p) {
    if (p->C <= 0) return IG_OK;
    if (p->dt == IG_F32) bn_fwd_kernel<float><<<channel_blocks(p->C), BN_THREADS, 0, igc_stream>>>(*p);
    else if (p->dt == IG_F64) bn_fwd_kernel<double><<<channel_blocks(p->C), BN_THREADS, 0, igc_stream>>>(*p);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(p->dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_batch_norm_backward(const char *op, const igi_bn_bwd *p) {
    if (p->C <= 0) return IG_OK;
    if (p->dt == IG_F32) bn_bwd_kernel<float><<<channel_blocks(p->C), BN_THREADS, 0, igc_stream>>>(*p);
    else if (p->dt == IG_F64) bn_bwd_kernel<double><<<channel_blocks(p->C), BN_THREADS, 0, igc_stream>>>(*p);
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
        double m = bn_block_sum(acc, sh) / (double)D;
        acc = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double d = (double)xr[k] - m;
            acc += d * d;
        }
        double is = 1.0 / sqrt(bn_block_sum(acc, sh) / (double)D + p.eps);
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
        double s1 = bn_block_sum(a1, sh) / (double)D;
        double s2 = bn_block_sum(a2, sh) / (double)D;
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
