/*
 * cuda/index.cu — gather along a dim, forward and backward (core/ops/index.c's ig_gather).
 *
 * Forward: one thread per output element (row-major over index's shape) reads its index
 * and copies one element of t, as bytes (uint8/uint32/uint64 by dtype size), so every
 * dtype takes the same three kernels and values move bit for bit. Indices were validated
 * on a host copy by core, so every read is in range.
 *
 * Backward gathers instead of scattering, which keeps it deterministic without atomics:
 * one thread per element of the gradient of t walks index along dim at the same other
 * coordinates (an element outside index's shape in another dim receives nothing) and adds
 * g where the index equals its own coordinate along dim, in increasing order, in T from 0.
 * The CPU scatters into zeros in index's row-major order, which visits the contributions
 * to one element in that same increasing order, so the results are equal bit for bit.
 */
#include "cuda_impl.h"

/* out[i] = t[offset of i with the dim coordinate replaced by index[i]]; n = index's numel. */
template <typename T, typename I>
__global__ void gather_kernel(igi_gather g, int64_t n, const T *t, const I *ix, T *out) {
    IGC_GRID_STRIDE(i, n) {
        int64_t r = i, io = 0, to = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.ishape[d];
            r /= g.ishape[d];
            io += c * g.istride[d];
            if (d != g.dim) to += c * g.tstride[d];
        }
        int64_t v = (int64_t)ix[io];
        out[i] = t[to + v * g.tstride[g.dim]];
    }
}

/* gin[j] (contiguous over t's shape, n = its numel) = sum of g over index positions p that
 * share j's coordinates outside dim and hold j's coordinate along dim. */
template <typename T, typename I>
__global__ void gather_backward_kernel(igi_gather g, int64_t n, const T *gout, const I *ix, T *gin) {
    IGC_GRID_STRIDE(j, n) {
        int64_t r = j, io = 0, go = 0, cd = 0;
        bool inside = true;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.tshape[d];
            r /= g.tshape[d];
            if (d == g.dim) {
                cd = c;
                continue;
            }
            if (c >= g.ishape[d]) inside = false;
            io += c * g.istride[d];
            go += c * g.gstride[d];
        }
        T acc = 0;
        if (inside) {
            int64_t m = g.ishape[g.dim], is = g.istride[g.dim], gs = g.gstride[g.dim];
            for (int64_t k = 0; k < m; k++)
                if ((int64_t)ix[io + k * is] == cd) acc += gout[go + k * gs];
        }
        gin[j] = acc;
    }
}

static int64_t numel_of(int nd, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    return n;
}

template <typename T> static ig_status gather_launch(const char *op, const igi_gather *g, const void *t,
                                                     const void *ix, void *out, int64_t n) {
    unsigned nb = igc_blocks(n);
    if (g->idt == IG_I64)
        gather_kernel<T, int64_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, n, (const T *)t, (const int64_t *)ix,
                                                                       (T *)out);
    else
        gather_kernel<T, int32_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*g, n, (const T *)t, (const int32_t *)ix,
                                                                       (T *)out);
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_gather(const char *op, const igi_gather *g, const void *t, const void *index, void *out) {
    if (g->idt != IG_I64 && g->idt != IG_I32)
        return igi_error(IG_ERR_DTYPE, "%s: invalid index dtype %d on cuda", op, (int)g->idt);
    int64_t n = numel_of(g->ndim, g->ishape);
    if (n == 0) return IG_OK;
    switch (ig_dtype_size(g->dt)) {
    case 1: return gather_launch<uint8_t>(op, g, t, index, out, n);
    case 4: return gather_launch<uint32_t>(op, g, t, index, out, n);
    case 8: return gather_launch<uint64_t>(op, g, t, index, out, n);
    default: return igi_error(IG_ERR_DTYPE, "%s: invalid dtype %d on cuda", op, (int)g->dt);
    }
}

template <typename T> static ig_status gather_backward_launch(const char *op, const igi_gather *g, const void *gout,
                                                              const void *ix, void *gin, int64_t n) {
    unsigned nb = igc_blocks(n);
    if (g->idt == IG_I64)
        gather_backward_kernel<T, int64_t><<<nb, IGC_THREADS, 0, igc_stream>>>(
            *g, n, (const T *)gout, (const int64_t *)ix, (T *)gin);
    else
        gather_backward_kernel<T, int32_t><<<nb, IGC_THREADS, 0, igc_stream>>>(
            *g, n, (const T *)gout, (const int32_t *)ix, (T *)gin);
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_gather_backward(const char *op, const igi_gather *g, const void *gout, const void *index, void *gin) {
    if (g->idt != IG_I64 && g->idt != IG_I32)
        return igi_error(IG_ERR_DTYPE, "%s: invalid index dtype %d on cuda", op, (int)g->idt);
    int64_t n = numel_of(g->ndim, g->tshape);
    if (n == 0) return IG_OK;
    switch (g->dt) {
    case IG_F32: return gather_backward_launch<float>(op, g, gout, index, gin, n);
    case IG_F64: return gather_backward_launch<double>(op, g, gout, index, gin, n);
    default: return igi_error(IG_ERR_DTYPE, "%s: gather's gradient needs f32 or f64 on cuda, got %s", op,
                              ig_dtype_name(g->dt));
    }
}
