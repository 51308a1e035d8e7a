/*
 * cuda/softmax.cu — softmax and log_softmax along one dim, and their gradients.
 *
 * One block per row (grid-stride over rows); the block's threads stride along the row and
 * combine partial results in shared memory in a fixed tree order. The arithmetic follows
 * core/ops/softmax.c: the row maximum (NaN never wins a comparison, so a NaN row ends up
 * NaN through exp) is subtracted before exp, exp is computed in the element type and
 * summed in double, log_softmax = x - m - (T)log(sum), softmax = exp(x - m) * (T)(1/sum);
 * backward: softmax gin = y * (g - (T)sum(g*y)), log_softmax gin = g - exp(y) * (T)sum(g).
 */
#include "cuda_impl.h"

#define SM_THREADS 256

__device__ __forceinline__ float sm_exp(float x) { return expf(x); }
__device__ __forceinline__ double sm_exp(double x) { return exp(x); }

/* Block-wide sum of v (every thread gets the total). sh has SM_THREADS doubles. */
__device__ double block_total(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = SM_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double t = sh[0];
    __syncthreads();
    return t;
}

template <typename T> __global__ void softmax_kernel(igi_rows r, bool log_out) {
    __shared__ double sh[SM_THREADS];
    __shared__ T shm[SM_THREADS];
    for (int64_t row = blockIdx.x; row < r.rows; row += gridDim.x) {
        T *y = (T *)r.data[0] + igc_offset(r.n, r.shape, r.stride[0], row);
        const T *x = (const T *)r.data[1] + igc_offset(r.n, r.shape, r.stride[1], row);
        int64_t sy = r.step[0], sx = r.step[1];
        /* Row maximum; "v > m" as on the CPU, so NaN is never taken. */
        T m = -(T)INFINITY;
        for (int64_t j = threadIdx.x; j < r.len; j += blockDim.x)
            if (x[j * sx] > m) m = x[j * sx];
        shm[threadIdx.x] = m;
        __syncthreads();
        for (int s = SM_THREADS / 2; s > 0; s >>= 1) {
            if ((int)threadIdx.x < s && shm[threadIdx.x + s] > shm[threadIdx.x]) shm[threadIdx.x] = shm[threadIdx.x + s];
            __syncthreads();
        }
        m = shm[0];
        __syncthreads();
        double part = 0;
        for (int64_t j = threadIdx.x; j < r.len; j += blockDim.x) part += (double)sm_exp(x[j * sx] - m);
        double sum = block_total(part, sh);
        if (log_out) {
            T lse = (T)log(sum);
            for (int64_t j = threadIdx.x; j < r.len; j += blockDim.x) y[j * sy] = x[j * sx] - m - lse;
        } else {
            T inv = (T)(1.0 / sum);
            for (int64_t j = threadIdx.x; j < r.len; j += blockDim.x) y[j * sy] = sm_exp(x[j * sx] - m) * inv;
        }
    }
}

template <typename T> __global__ void softmax_backward_kernel(igi_rows r, bool log_out) {
    __shared__ double sh[SM_THREADS];
    for (int64_t row = blockIdx.x; row < r.rows; row += gridDim.x) {
        T *gi = (T *)r.data[0] + igc_offset(r.n, r.shape, r.stride[0], row);
        const T *g = (const T *)r.data[1] + igc_offset(r.n, r.shape, r.stride[1], row);
        const T *y = (const T *)r.data[2] + igc_offset(r.n, r.shape, r.stride[2], row);
        int64_t si = r.step[0], sg = r.step[1], sy = r.step[2];
        double part = 0;
        for (int64_t j = threadIdx.x; j < r.len; j += blockDim.x)
            part += log_out ? (double)g[j * sg] : (double)g[j * sg] * y[j * sy];
        T s = (T)block_total(part, sh);
        for (int64_t j = threadIdx.x; j < r.len; j += blockDim.x)
            gi[j * si] = log_out ? g[j * sg] - sm_exp(y[j * sy]) * s : y[j * sy] * (g[j * sg] - s);
    }
}

static unsigned row_blocks(int64_t rows) { return (unsigned)(rows < 65535 ? rows : 65535); }

ig_status igc_softmax(const char *op, bool log_out, const igi_rows *r) {
    if (r->rows < 1 || r->len < 1) return IG_OK;
    switch (r->dtype) {
    case IG_F32: softmax_kernel<float><<<row_blocks(r->rows), SM_THREADS, 0, igc_stream>>>(*r, log_out); break;
    case IG_F64: softmax_kernel<double><<<row_blocks(r->rows), SM_THREADS, 0, igc_stream>>>(*r, log_out); break;
    default: return igi_error(IG_ERR_DTYPE, "%s: needs a float tensor, got %s", op, ig_dtype_name(r->dtype));
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_softmax_backward(const char *op, bool log_out, const igi_rows *r) {
    if (r->rows < 1 || r->len < 1) return IG_OK;
    switch (r->dtype) {
    case IG_F32: softmax_backward_kernel<float><<<row_blocks(r->rows), SM_THREADS, 0, igc_stream>>>(*r, log_out); break;
    case IG_F64: softmax_backward_kernel<double><<<row_blocks(r->rows), SM_THREADS, 0, igc_stream>>>(*r, log_out); break;
    default: return igi_error(IG_ERR_DTYPE, "%s: gradients need a float tensor, got %s", op, ig_dtype_name(r->dtype));
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}
