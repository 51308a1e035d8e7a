/*
 * cuda/loss.cu — cross-entropy (fused log-softmax + NLL, label smoothing) and NLL forward
 * and backward, with core/ops/loss.c's arithmetic.
 *
 * One thread per position (a row of C scores): forward takes the row maximum, sums
 * exp(x - m) in double and writes the position's loss (double), its log-sum-exp and, for
 * reduction none, the loss as T. A reduced loss is then summed over positions by one block
 * in double, in a fixed tree order, and divided by div (the counted positions for a mean,
 * counted on the host while the targets were validated). Backward rebuilds softmax from
 * the saved log-sum-exp exactly as the CPU does. Targets were validated by core (copied to
 * the host), so every non-ignored target is in [0, C). The pointwise losses (mse, l1,
 * smooth_l1, bce_with_logits) are elementwise kernels over igi_ew geometry with their own
 * gradient for input and target, as loss.c's.
 */
#include "cuda_impl.h"

#define CE_THREADS 256

__device__ __forceinline__ int64_t ce_off(const igi_ce &c, int k, int64_t i) {
    return igc_offset(c.n, c.shape, c.stride[k], i);
}

__device__ __forceinline__ int64_t ce_target(const igi_ce &c, const void *t, int64_t off) {
    return c.tdt == IG_I64 ? ((const int64_t *)t)[off] : (int64_t)((const int32_t *)t)[off];
}

template <typename T> __device__ __forceinline__ T ce_exp(T v);
template <> __device__ __forceinline__ float ce_exp<float>(float v) { return expf(v); }
template <> __device__ __forceinline__ double ce_exp<double>(double v) { return exp(v); }

template <typename T>
__global__ void ce_fwd_kernel(igi_ce c, const T *xb, const void *tb, T *lossp, double *lsep, double *pos) {
    IGC_GRID_STRIDE(i, c.npos) {
        int64_t t = ce_target(c, tb, ce_off(c, 1, i));
        double loss = 0, lse = 0;
        if (!(c.use_ignore && t == c.ignore_index)) {
            const T *x = xb + ce_off(c, 0, i);
            int64_t C = c.C, cs = c.cs;
            if (c.fused) {
                T m = x[0];
                for (int64_t k = 1; k < C; k++)
                    if (x[k * cs] > m || isnan(x[k * cs])) m = x[k * cs];
                double sum = 0;
                for (int64_t k = 0; k < C; k++) sum += (double)ce_exp<T>(x[k * cs] - m);
                lse = (double)m + log(sum);
                loss = (1.0 - c.eps) * (lse - (double)x[t * cs]);
                if (c.eps != 0) {
                    double s = 0;
                    for (int64_t k = 0; k < C; k++) s += lse - (double)x[k * cs];
                    loss += (C > 0 ? c.eps / (double)C : 0.0) * s;
                }
            } else {
                loss = -(double)x[t * cs];
            }
        }
        if (lossp) lossp[ce_off(c, 2, i)] = (T)loss;
        if (lsep) lsep[ce_off(c, 3, i)] = lse;
        if (pos) pos[i] = loss;
    }
}

/* total[0] = (sum of pos[0..n)) / div, one block. */
template <typename T> __global__ void ce_total_kernel(const double *pos, int64_t n, double div, T *total) {
    __shared__ double sh[CE_THREADS];
    double acc = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) acc += pos[j];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = CE_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) total[0] = (T)(sh[0] / div);
}

template <typename T>
__global__ void ce_bwd_kernel(igi_ce c, const T *xb, const void *tb, const T *gb, const double *lseb, T *gib,
                              double scale) {
    IGC_GRID_STRIDE(i, c.npos) {
        int64_t t = ce_target(c, tb, ce_off(c, 1, i));
        int64_t C = c.C, cs = c.cs, gis = c.gis;
        T *gi = gib + ce_off(c, 4, i);
        if (c.use_ignore && t == c.ignore_index) {
            for (int64_t k = 0; k < C; k++) gi[k * gis] = 0;
            continue;
        }
        T smooth_w = (T)(C > 0 ? c.eps / (double)C : 0.0), hit = (T)(1.0 - c.eps);
        T wgt = (T)((double)gb[ce_off(c, 2, i)] * scale);
        if (c.fused) {
            const T *x = xb + ce_off(c, 0, i);
            double lse = lseb[ce_off(c, 3, i)];
            for (int64_t k = 0; k < C; k++) {
                T d = ce_exp<T>((T)((double)x[k * cs] - lse)) - smooth_w;
                if (k == t) d -= hit;
                gi[k * gis] = d * wgt;
            }
        } else {
            for (int64_t k = 0; k < C; k++) gi[k * gis] = 0;
            gi[t * gis] = -wgt;
        }
    }
}

ig_status igc_class_loss(const char *op, const igi_ce *c, const void *x, const void *target, void *loss,
                         double *lse, double *pos, void *total, double div) {
    if (c->dt != IG_F32 && c->dt != IG_F64)
        return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(c->dt));
    if (c->npos > 0) {
        unsigned nb = igc_blocks(c->npos);
        if (c->dt == IG_F32)
            ce_fwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*c, (const float *)x, target, (float *)loss, lse,
                                                                     total ? pos : NULL);
        else
            ce_fwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*c, (const double *)x, target, (double *)loss,
                                                                      lse, total ? pos : NULL);
        IGC_LAUNCHED(op);
    }
    if (total) {
        if (c->dt == IG_F32)
            ce_total_kernel<float><<<1, CE_THREADS, 0, igc_stream>>>(pos, c->npos, div, (float *)total);
        else
            ce_total_kernel<double><<<1, CE_THREADS, 0, igc_stream>>>(pos, c->npos, div, (double *)total);
        IGC_LAUNCHED(op);
    }
    return IG_OK;
}

ig_status igc_class_loss_backward(const char *op, const igi_ce *c, const void *x, const void *target, const void *g,
                                  const double *lse, void *gin, double scale) {
    if (c->npos <= 0) return IG_OK;
    unsigned nb = igc_blocks(c->npos);
    if (c->dt == IG_F32)
        ce_bwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*c, (const float *)x, target, (const float *)g, lse,
                                                                 (float *)gin, scale);
    else if (c->dt == IG_F64)
        ce_bwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*c, (const double *)x, target, (const double *)g,
                                                                  lse, (double *)gin, scale);
    else
        return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(c->dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* ---- pointwise losses (core/ops/loss.c's PW_FWD / PW_BWD, in T) --------------------------- */

template <typename T> __device__ __forceinline__ T pw_abs(T v);
template <> __device__ __forceinline__ float pw_abs<float>(float v) { return fabsf(v); }
template <> __device__ __forceinline__ double pw_abs<double>(double v) { return fabs(v); }
template <typename T> __device__ __forceinline__ T pw_log1p(T v);
template <> __device__ __forceinline__ float pw_log1p<float>(float v) { return log1pf(v); }
template <> __device__ __forceinline__ double pw_log1p<double>(double v) { return log1p(v); }

template <typename T> __global__ void pw_fwd_kernel(igi_ew e, int kind, double beta_d) {
    T beta = (T)beta_d;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[3];
        igc_ew_offsets<3>(e, i, off);
        T x = ((const T *)e.data[1])[off[1]], y = ((const T *)e.data[2])[off[2]], l;
        T d = x - y;
        switch (kind) {
        case IGI_PW_MSE: l = d * d; break;
        case IGI_PW_L1: l = pw_abs<T>(d); break;
        case IGI_PW_SMOOTH_L1: l = pw_abs<T>(d) < beta ? (T)0.5 * d * d / beta : pw_abs<T>(d) - (T)0.5 * beta; break;
        default: l = (x > 0 ? x : (T)0) - x * y + pw_log1p<T>(ce_exp<T>(-pw_abs<T>(x))); break;
        }
        ((T *)e.data[0])[off[0]] = l;
    }
}

template <typename T> __global__ void pw_bwd_kernel(igi_ew e, int kind, double beta_d, bool wrt_target) {
    T beta = (T)beta_d;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[4];
        igc_ew_offsets<4>(e, i, off);
        T g = ((const T *)e.data[1])[off[1]];
        T x = ((const T *)e.data[2])[off[2]], y = ((const T *)e.data[3])[off[3]], dx;
        T d = x - y, sgn = d > 0 ? (T)1 : d < 0 ? (T)-1 : d;
        T *out = (T *)e.data[0] + off[0];
        switch (kind) {
        case IGI_PW_MSE: dx = 2 * d; break;
        case IGI_PW_L1: dx = sgn; break;
        case IGI_PW_SMOOTH_L1: dx = pw_abs<T>(d) < beta ? d / beta : sgn; break;
        default:
            if (wrt_target) {
                *out = -x * g;
                continue;
            } else {
                T ex = ce_exp<T>(-pw_abs<T>(x));
                T sig = x >= 0 ? 1 / (1 + ex) : ex / (1 + ex);
                dx = sig - y;
            }
            break;
        }
        *out = (wrt_target ? -dx : dx) * g;
    }
}

ig_status igc_pointwise_loss(const char *op, int kind, const igi_ew *e, double beta) {
    unsigned nb = igc_blocks(e->numel);
    if (e->dtype[0] == IG_F32) pw_fwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, beta);
    else if (e->dtype[0] == IG_F64) pw_fwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, beta);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(e->dtype[0]));
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_pointwise_loss_backward(const char *op, int kind, const igi_ew *e, double beta, bool wrt_target) {
    unsigned nb = igc_blocks(e->numel);
    if (e->dtype[0] == IG_F32) pw_bwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, beta, wrt_target);
    else if (e->dtype[0] == IG_F64) pw_bwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, beta, wrt_target);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(e->dtype[0]));
    IGC_LAUNCHED(op);
    return IG_OK;
}
