/*
 * cuda/optim.cu — the optimizers' fused per-parameter updates (SGD with momentum, dampening,
 * nesterov and weight decay; Adam / AdamW with amsgrad; RMSprop centered / with momentum),
 * one thread per element, grid-stride.
 *
 * Each loop is optim/kernels_impl.h's, operation for operation, in T (float math for f32,
 * as the CPU and torch do). Products and sums go through the _rn intrinsics, which the
 * compiler never contracts into fused multiply-adds (the CPU build has none either), and
 * division and sqrt are IEEE-rounded (nvcc's defaults), so a step gives the CPU's bits.
 */
#include "cuda_impl.h"

__device__ __forceinline__ float om(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double om(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float oa(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double oa(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float os(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double os(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float od(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double od(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float osqrt(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double osqrt(double a) { return __dsqrt_rn(a); }

template <typename T> __global__ void sgd_kernel(igi_optim_step a, T *p, const T *g, T *buf) {
    const T lr = (T)a.lr, wd = (T)a.weight_decay, mom = (T)a.momentum, keep = (T)(1.0 - a.dampening);
    const bool decay = a.weight_decay != 0.0;
    IGC_GRID_STRIDE(i, a.n) {
        T d = g[i];
        if (decay) d = oa(d, om(wd, p[i]));
        if (buf) {
            T b = a.first ? d : oa(om(mom, buf[i]), om(keep, d));
            buf[i] = b;
            d = a.nesterov ? oa(d, om(mom, b)) : b;
        }
        p[i] = os(p[i], om(lr, d));
    }
}

template <typename T> __global__ void adam_kernel(igi_optim_step a, T *p, const T *g, T *m, T *v, T *vmax) {
    const T b1 = (T)a.beta1, b2 = (T)a.beta2, omb1 = (T)(1.0 - a.beta1), omb2 = (T)(1.0 - a.beta2);
    const T l2 = (T)a.l2, shrink = (T)a.shrink, eps = (T)a.eps, step_size = (T)a.step_size, bc2 = (T)a.bc2_sqrt;
    const bool use_l2 = a.l2 != 0.0, use_shrink = a.shrink != 1.0;
    IGC_GRID_STRIDE(i, a.n) {
        T pi = p[i];
        if (use_shrink) pi = om(pi, shrink);
        T gi = g[i];
        if (use_l2) gi = oa(gi, om(l2, pi));
        T mi = oa(om(b1, m[i]), om(omb1, gi));
        T vi = oa(om(b2, v[i]), om(om(omb2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            T old = vmax[i];
            if (old > vi || old != old) vi = old;
            vmax[i] = vi;
        }
        T denom = oa(od(osqrt(vi), bc2), eps);
        p[i] = os(pi, om(step_size, od(mi, denom)));
    }
}

template <typename T> __global__ void rmsprop_kernel(igi_optim_step a, T *p, const T *g, T *sq, T *ga, T *buf) {
    const T lr = (T)a.lr, wd = (T)a.weight_decay, eps = (T)a.eps, alpha = (T)a.alpha, oma = (T)(1.0 - a.alpha);
    const T mom = (T)a.momentum;
    const bool decay = a.weight_decay != 0.0;
    IGC_GRID_STRIDE(i, a.n) {
        T gi = g[i];
        if (decay) gi = oa(gi, om(wd, p[i]));
        T s = oa(om(alpha, sq[i]), om(om(oma, gi), gi));
        sq[i] = s;
        T avg;
        if (ga) {
            T gai = oa(om(alpha, ga[i]), om(oma, gi));
            ga[i] = gai;
            avg = oa(osqrt(os(s, om(gai, gai))), eps);
        } else {
            avg = oa(osqrt(s), eps);
        }
        if (buf) {
            T b = oa(om(mom, buf[i]), od(gi, avg));
            buf[i] = b;
            p[i] = os(p[i], om(lr, b));
        } else {
            p[i] = os(p[i], om(lr, od(gi, avg)));
        }
    }
}

template <typename T> static void launch(const igi_optim_step *s) {
    unsigned nb = igc_blocks(s->n);
    T *p = (T *)s->p;
    const T *g = (const T *)s->g;
    T *b0 = (T *)s->b0, *b1 = (T *)s->b1, *b2 = (T *)s->b2;
    switch (s->kind) {
    case IGI_OPT_SGD: sgd_kernel<T><<<nb, IGC_THREADS, 0, igc_stream>>>(*s, p, g, b0); break;
    case IGI_OPT_ADAM: adam_kernel<T><<<nb, IGC_THREADS, 0, igc_stream>>>(*s, p, g, b0, b1, b2); break;
    default: rmsprop_kernel<T><<<nb, IGC_THREADS, 0, igc_stream>>>(*s, p, g, b0, b1, b2); break;
    }
}

ig_status igc_optim_step(const char *op, const igi_optim_step *s) {
    if (s->kind != IGI_OPT_SGD && s->kind != IGI_OPT_ADAM && s->kind != IGI_OPT_RMSPROP)
        return igi_error(IG_ERR_ARG, "%s: unknown optimizer kernel %d", op, s->kind);
    if (s->n <= 0) return IG_OK;
    if (s->dt == IG_F32) launch<float>(s);
    else if (s->dt == IG_F64) launch<double>(s);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(s->dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}
