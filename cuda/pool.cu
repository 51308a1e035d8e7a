/*
 * cuda/pool.cu — max / avg / adaptive-avg 2-D pooling forward and backward, with the
 * arithmetic of core/ops/pool.c.
 *
 * Forward: one thread per output element, walking its window in row-major order: max keeps
 * the first maximum (a NaN wins, and the first NaN stays), avg sums in double and divides
 * by the window's count. Backward gathers instead of scattering: one thread per dx element
 * visits the windows that contain it in the CPU's order (output rows, then columns) and
 * adds, in T from 0, g / count (avg) or g where the window's saved argmax is this element
 * (max). The CPU adds the same values in the same order into a zeroed dx, so both passes
 * match the CPU bit for bit (up to the device's own division, which is correctly rounded).
 * bf16 (the table's IGI_BF16_POOL group) runs the f32 arithmetic on the values as floats
 * (the backward's sum in float) and rounds each result once: the f32 path's values.
 */
#include "cuda_impl.h"

/* Output window i along axis a: input range [lo, hi) and the divisor's factor. */
__device__ __forceinline__ void pool_window(const igi_pool &g, int a, int64_t i, int64_t *lo, int64_t *hi,
                                            int64_t *count) {
    int64_t in = g.in[a], out = g.out[a];
    if (g.adaptive) {
        *lo = i * in / out;
        *hi = ((i + 1) * in + out - 1) / out;
        *count = *hi - *lo;
        return;
    }
    int64_t start = i * g.s[a] - g.p[a];
    int64_t end = start + g.k[a];
    if (end > in + g.p[a]) end = in + g.p[a];
    int64_t padded = end - start;
    if (start < 0) start = 0;
    if (end > in) end = in;
    *lo = start;
    *hi = end;
    *count = g.exclude ? end - start : padded;
}

/* The output indices along axis a whose windows may contain input index v: [*first, *last]
 * (a superset; callers check the window). */
__device__ __forceinline__ void pool_candidates(const igi_pool &g, int a, int64_t v, int64_t *first, int64_t *last) {
    int64_t in = g.in[a], out = g.out[a], f, l;
    if (g.adaptive) {
        f = v * out / in - 1;
        l = ((v + 1) * out + in - 1) / in;
    } else {
        /* start = o*s - p <= v < start + k */
        int64_t num = v + g.p[a] - g.k[a] + 1;
        f = num <= 0 ? 0 : (num + g.s[a] - 1) / g.s[a];
        l = (v + g.p[a]) / g.s[a];
    }
    if (f < 0) f = 0;
    if (l > out - 1) l = out - 1;
    *first = f;
    *last = l;
}

template <typename T>
__global__ void max_fwd_kernel(igi_pool g, const T *x, T *out, int64_t *idx) {
    typedef igc_compute_t<T> C;
    int64_t Ho = g.out[0], Wo = g.out[1], W = g.in[1], total = g.N * g.C * Ho * Wo;
    IGC_GRID_STRIDE(q, total) {
        int64_t ox = q % Wo, oy = (q / Wo) % Ho, pl = q / (Wo * Ho);
        const T *xp = x + (pl / g.C) * g.xs[0] + (pl % g.C) * g.xs[1];
        int64_t y0, y1, x0, x1, cy, cx, best = -1;
        pool_window(g, 0, oy, &y0, &y1, &cy);
        pool_window(g, 1, ox, &x0, &x1, &cx);
        C m = (C)-INFINITY;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                C v = igc_ld(xp[iy * g.xs[2] + ix * g.xs[3]]);
                if (best < 0) {
                    m = v;
                    best = iy * W + ix;
                } else if (v > m || (isnan(v) && !isnan(m))) {
                    m = v;
                    best = iy * W + ix;
                }
            }
        out[q] = igc_st<T>(m);
        if (idx) idx[q] = best;
    }
}

template <typename T>
__global__ void avg_fwd_kernel(igi_pool g, const T *x, T *out) {
    int64_t Ho = g.out[0], Wo = g.out[1], total = g.N * g.C * Ho * Wo;
    IGC_GRID_STRIDE(q, total) {
        int64_t ox = q % Wo, oy = (q / Wo) % Ho, pl = q / (Wo * Ho);
        const T *xp = x + (pl / g.C) * g.xs[0] + (pl % g.C) * g.xs[1];
        int64_t y0, y1, x0, x1, cy, cx;
        pool_window(g, 0, oy, &y0, &y1, &cy);
        pool_window(g, 1, ox, &x0, &x1, &cx);
        double acc = 0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) acc += igc_load(xp[iy * g.xs[2] + ix * g.xs[3]]);
        out[q] = igc_store<T>::of(acc / (double)(cy * cx)); /* (T)(...); bf16 through float */
    }
}

/* dx (contiguous [N*C, H, W]) from gout (strides g.xs); idx non-NULL: max. */
template <typename T>
__global__ void pool_bwd_kernel(igi_pool g, const T *go, const int64_t *idx, T *dx) {
    typedef igc_compute_t<T> C;
    int64_t H = g.in[0], W = g.in[1], Ho = g.out[0], Wo = g.out[1], total = g.N * g.C * H * W;
    IGC_GRID_STRIDE(e, total) {
        int64_t ix = e % W, iy = (e / W) % H, pl = e / (W * H);
        const T *gp = go + (pl / g.C) * g.xs[0] + (pl % g.C) * g.xs[1];
        int64_t fy, ly, fx, lx;
        pool_candidates(g, 0, iy, &fy, &ly);
        pool_candidates(g, 1, ix, &fx, &lx);
        C acc = 0;
        for (int64_t oy = fy; oy <= ly; oy++) {
            int64_t y0, y1, cy;
            pool_window(g, 0, oy, &y0, &y1, &cy);
            if (iy < y0 || iy >= y1) continue;
            for (int64_t ox = fx; ox <= lx; ox++) {
                int64_t x0, x1, cx;
                pool_window(g, 1, ox, &x0, &x1, &cx);
                if (ix < x0 || ix >= x1) continue;
                C gv = igc_ld(gp[oy * g.xs[2] + ox * g.xs[3]]);
                if (idx) {
                    if (idx[(pl * Ho + oy) * Wo + ox] == iy * W + ix) acc += gv;
                } else {
                    acc += (C)((double)gv / (double)(cy * cx));
                }
            }
        }
        dx[e] = igc_st<T>(acc);
    }
}

ig_status igc_pool2d(const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *x, void *out,
                     int64_t *idx) {
    int64_t total = g->N * g->C * g->out[0] * g->out[1];
    if (total <= 0) return IG_OK;
    unsigned nb = igc_blocks(total);
    if (dt == IG_F32) {
        if (max) max_fwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const float *)x, (float *)out, idx);
        else avg_fwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const float *)x, (float *)out);
    } else if (dt == IG_F64) {
        if (max) max_fwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const double *)x, (double *)out, idx);
        else avg_fwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const double *)x, (double *)out);
    } else if (dt == IG_BF16) {
        typedef __nv_bfloat16 B;
        if (max) max_fwd_kernel<B><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const B *)x, (B *)out, idx);
        else avg_fwd_kernel<B><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const B *)x, (B *)out);
    } else {
        return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(dt));
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_pool2d_backward(const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *gout,
                              const int64_t *idx, void *dx) {
    int64_t total = g->N * g->C * g->in[0] * g->in[1];
    if (total <= 0) return IG_OK;
    if (max && !idx) return igi_error(IG_ERR_ARG, "%s: backward needs the saved argmax", op);
    if (!max) idx = NULL;
    unsigned nb = igc_blocks(total);
    if (dt == IG_F32)
        pool_bwd_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const float *)gout, idx, (float *)dx);
    else if (dt == IG_F64)
        pool_bwd_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const double *)gout, idx, (double *)dx);
    else if (dt == IG_BF16)
        pool_bwd_kernel<__nv_bfloat16><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, (const __nv_bfloat16 *)gout, idx,
                                                                           (__nv_bfloat16 *)dx);
    else
        return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(dt));
    IGC_LAUNCHED(op);
    return IG_OK;
}
