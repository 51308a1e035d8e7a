/*
 * cuda/reduce.cu — reductions (sum, mean, var, max/min with their index) and the scatter
 * that max/min's backward needs.
 *
 * One block per output element (grid-stride over outputs): its threads stride over the
 * slice's n_red elements, then combine their partial results in shared memory in a fixed
 * tree order, so results are deterministic run to run. As on the CPU, float sums, means
 * and variances accumulate in double (variance two-pass: the mean, then squared
 * deviations), integer sums in uint64 (wrapping into the int64 output), and max/min pick
 * the first extreme element in row-major order of the reduced dims, a NaN beating any
 * number. (One block per output is simple and right for every shape; a reduction with a
 * few huge slices or very many tiny ones will want specialised kernels later.)
 *
 * bf16 input (the table's IGI_BF16_REDUCE group) reads each element as its float value and
 * goes exactly as f32 does (double sums, float comparisons); the result (bf16 out) is
 * rounded once, through float as the f32 result would be.
 */
#include <type_traits>

#include "cuda_impl.h"

#define RED_THREADS 256

/* Sum of slice o of r over this block, in the accumulator type A (double or uint64);
 * every thread returns the block's total. sh has RED_THREADS entries. */
template <typename T, typename A>
__device__ A block_sum(const igi_red &r, int64_t koff, A *sh, bool squares, double mean) {
    const T *x = (const T *)r.in;
    A acc = 0;
    for (int64_t j = threadIdx.x; j < r.n_red; j += blockDim.x) {
        igc_compute_t<T> v = igc_ld(x[koff + igc_offset(r.nr, r.rshape, r.rstride, j)]);
        if constexpr ((igc_compute_t<T>)0.5 != 0) {
            if (squares) {
                double d = (double)v - mean;
                acc += d * d;
            } else {
                acc += (double)v;
            }
        } else {
            /* Integers: sign-extend to 64 bits, then wrap in unsigned arithmetic. */
            acc += (A)(int64_t)v;
        }
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = RED_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    A total = sh[0];
    __syncthreads(); /* sh is reused by the caller's next call */
    return total;
}

template <typename T> __global__ void sum_kernel(igi_red r, int kind, double div) {
    constexpr bool is_float = (igc_compute_t<T>)0.5 != 0;
    typedef typename std::conditional<is_float, double, unsigned long long>::type A;
    __shared__ A sh[RED_THREADS];
    for (int64_t o = blockIdx.x; o < r.n_out; o += gridDim.x) {
        int64_t koff = igc_offset(r.nk, r.kshape, r.kstride, o);
        A total = block_sum<T, A>(r, koff, sh, false, 0.0);
        if constexpr (is_float) {
            double res = total;
            if (kind == IGI_RED_MEAN) {
                res = total / div;
            } else if (kind == IGI_RED_VAR) {
                double mean = total / (double)r.n_red;
                res = block_sum<T, A>(r, koff, sh, true, mean) / div;
            }
            if (threadIdx.x == 0) ((T *)r.out)[o] = igc_store<T>::of(res); /* (T)res; bf16 via float */
        } else {
            if (threadIdx.x == 0) ((int64_t *)r.out)[o] = (int64_t)total;
        }
    }
}

/* The better of two candidates (value, flat index) for max (or min): NaN first, then the
 * larger (smaller) value, ties to the smaller index. */
template <typename T> __device__ __forceinline__ bool better(T v, int64_t j, T bv, int64_t bj, bool is_max) {
    bool vn = v != v, bn = bv != bv; /* always false for integers */
    if (vn || bn) return vn && (!bn || j < bj);
    if (v == bv) return j < bj;
    return is_max ? v > bv : v < bv;
}

template <typename T> __global__ void extreme_kernel(igi_red r, bool is_max) {
    typedef igc_compute_t<T> C; /* values compared (bf16: as floats, exactly) */
    __shared__ C shv[RED_THREADS];
    __shared__ int64_t shj[RED_THREADS];
    const T *x = (const T *)r.in;
    for (int64_t o = blockIdx.x; o < r.n_out; o += gridDim.x) {
        int64_t koff = igc_offset(r.nk, r.kshape, r.kstride, o);
        C best = 0;
        int64_t bj = -1; /* -1: this thread saw nothing */
        for (int64_t j = threadIdx.x; j < r.n_red; j += blockDim.x) {
            C v = igc_ld(x[koff + igc_offset(r.nr, r.rshape, r.rstride, j)]);
            if (bj < 0 || better(v, j, best, bj, is_max)) {
                best = v;
                bj = j;
            }
        }
        shv[threadIdx.x] = best;
        shj[threadIdx.x] = bj;
        __syncthreads();
        for (int s = RED_THREADS / 2; s > 0; s >>= 1) {
            if ((int)threadIdx.x < s) {
                int64_t oj = shj[threadIdx.x + s];
                if (oj >= 0 && (shj[threadIdx.x] < 0 ||
                                better(shv[threadIdx.x + s], oj, shv[threadIdx.x], shj[threadIdx.x], is_max))) {
                    shv[threadIdx.x] = shv[threadIdx.x + s];
                    shj[threadIdx.x] = oj;
                }
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            if (r.out) ((T *)r.out)[o] = igc_st<T>(shv[0]); /* bf16: exact, shv[0] came from one */
            if (r.index) r.index[o] = shj[0];
        }
        __syncthreads();
    }
}

ig_status igc_reduce(const char *op, int kind, const igi_red *r, double div) {
    if (r->n_out < 1) return IG_OK;
    unsigned nb = (unsigned)(r->n_out < 65535 ? r->n_out : 65535);
    /* bf16 values go out as bf16 (the kernels write the input's type) */
    if (r->in_dtype == IG_BF16 && r->out && r->out_dtype != IG_BF16)
        return igi_error(IG_ERR_DTYPE, "%s: a bfloat16 reduction writes bfloat16 on cuda, got %s", op,
                         ig_dtype_name(r->out_dtype));
    if (kind == IGI_RED_MAX || kind == IGI_RED_MIN) {
        if (r->n_red < 1) return igi_error(IG_ERR_SHAPE, "%s: cannot reduce over zero elements", op);
        bool is_max = kind == IGI_RED_MAX;
        IGC_DISPATCH_ALL_BF16(r->in_dtype, (extreme_kernel<T><<<nb, RED_THREADS, 0, igc_stream>>>(*r, is_max)))
    } else if (kind == IGI_RED_SUM || kind == IGI_RED_MEAN || kind == IGI_RED_VAR) {
        if (kind != IGI_RED_SUM && !ig_dtype_is_float(r->in_dtype))
            return igi_error(IG_ERR_DTYPE, "%s: needs a float tensor, got %s", op, ig_dtype_name(r->in_dtype));
        IGC_DISPATCH_ALL_BF16(r->in_dtype, (sum_kernel<T><<<nb, RED_THREADS, 0, igc_stream>>>(*r, kind, div)))
    } else {
        return igi_error(IG_ERR_ARG, "%s: invalid reduction kind %d", op, kind);
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* out[koffset(o) + roffset(index[o])] = g[o] for each output element o. */
template <typename T> __global__ void scatter_kernel(igi_red r, const T *g) {
    IGC_GRID_STRIDE(o, r.n_out) {
        int64_t off = igc_offset(r.nk, r.kshape, r.kstride, o) + igc_offset(r.nr, r.rshape, r.rstride, r.index[o]);
        ((T *)r.out)[off] = g[o];
    }
}

ig_status igc_reduce_scatter(const char *op, const igi_red *r, const void *g) {
    if (r->n_out < 1) return IG_OK;
    unsigned nb = igc_blocks(r->n_out);
    switch (r->in_dtype) {
    case IG_F32: scatter_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*r, (const float *)g); break;
    case IG_F64: scatter_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*r, (const double *)g); break;
    case IG_BF16: /* the bits as they are */
        scatter_kernel<uint16_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*r, (const uint16_t *)g);
        break;
    default: return igi_error(IG_ERR_DTYPE, "%s: gradients need a float tensor, got %s", op, ig_dtype_name(r->in_dtype));
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}
