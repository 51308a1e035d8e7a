/*
 * cuda/cuda_impl.h — what the CUDA backend's files share: the stream, error checking, the
 * launch shape, element offsets from igi_ew / igi_red geometry, and dtype conversions that
 * match the CPU's (core/tensor.c) bit for bit.
 *
 * Threading: one stream for the whole process (igc_stream), created at init; every kernel,
 * copy and memset goes on it, so work is ordered as it was issued by any thread, and the
 * caching allocator may hand a freed block to the next op without waiting. Copies to the
 * host synchronise the stream; copies from the host also synchronise (pageable memory),
 * so the host buffer can be reused as soon as the call returns.
 *
 * Errors: every runtime and cuBLAS call goes through IGC_CHECK / IGC_CUBLAS, and every
 * launch is followed by IGC_LAUNCHED; a failure sets the ignis error (IG_ERR_DEVICE, or
 * IG_ERR_NOMEM for an allocation) naming the op, the call, file:line and CUDA's message,
 * and returns its status. Nothing here aborts or exits. A kernel that faults reports at the
 * next synchronising call (a copy to the host, ig_cuda_synchronize-like paths).
 */
#ifndef IGNIS_CUDA_CUDA_IMPL_H
#define IGNIS_CUDA_CUDA_IMPL_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "../core/backend_impl.h"

extern "C" {
/* core/tensor.c: stores v into one element of dtype dt with ignis's conversion rules. */
void igi_store(ig_dtype dt, void *p, double v);
/* core/alloc.c: the caching allocator (NULL, no error set, when out of memory). */
void *igi_alloc(ig_device dev, size_t nbytes);
void igi_free(ig_device dev, void *p, size_t nbytes);
}

/* The process-wide stream (cuda/backend.cu). */
extern cudaStream_t igc_stream;

/* Sets the error for a failed CUDA runtime call and returns its status. */
ig_status igc_fail(const char *op, const char *call, const char *file, int line, cudaError_t e);

#define IGC_CHECK(op, call)                                                       \
    do {                                                                          \
        cudaError_t igc_e_ = (call);                                              \
        if (igc_e_ != cudaSuccess) return igc_fail((op), #call, __FILE__, __LINE__, igc_e_); \
    } while (0)
/* After a <<<...>>> launch: reports a launch failure (bad configuration, no kernel image
 * for this GPU, an earlier asynchronous fault). */
#define IGC_LAUNCHED(op) IGC_CHECK(op, cudaGetLastError())

/* Launch shape: 256 threads, a grid-stride loop over n items with at most 65535 blocks. */
#define IGC_THREADS 256
static inline unsigned igc_blocks(int64_t n) {
    int64_t b = (n + IGC_THREADS - 1) / IGC_THREADS;
    if (b < 1) b = 1;
    if (b > 65535) b = 65535;
    return (unsigned)b;
}

#define IGC_GRID_STRIDE(i, n)                                                                 \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                 \
         i += (int64_t)gridDim.x * blockDim.x)

/* Element offsets of the linear index i (row-major over e.shape) for operands 0..nops-1. */
template <int NOPS>
__device__ __forceinline__ void igc_ew_offsets(const igi_ew &e, int64_t i, int64_t *off) {
    if (e.ndim == 1) { /* the common case once dims are coalesced: i < shape[0], no div/mod */
#pragma unroll
        for (int k = 0; k < NOPS; k++) off[k] = i * e.strides[k][0];
        return;
    }
#pragma unroll
    for (int k = 0; k < NOPS; k++) off[k] = 0;
    for (int d = e.ndim - 1; d >= 0; d--) {
        int64_t sz = e.shape[d];
        int64_t idx = i % sz;
        i /= sz;
#pragma unroll
        for (int k = 0; k < NOPS; k++) off[k] += idx * e.strides[k][d];
    }
}

/* Split per-channel reductions (batch norm in norm.cu, the conv bias gradient in conv.cu): a
 * channel's cnt values are cut into igc_parts(cnt) parts of at least IGC_PART_ELEMS, one
 * block each, whose partial sums a later kernel adds in index order. The count depends only
 * on cnt, so the sums are the same on every run and every GPU. */
#define IGC_PART_ELEMS 4096
#define IGC_MAX_PARTS 64
static inline int64_t igc_parts(int64_t cnt) {
    int64_t P = (cnt + IGC_PART_ELEMS - 1) / IGC_PART_ELEMS;
    return P < 1 ? 1 : (P > IGC_MAX_PARTS ? IGC_MAX_PARTS : P);
}

/* The sum of v over a block of IGC_THREADS threads (sh: IGC_THREADS shared doubles), in a
 * fixed tree order; every thread gets the total. Every thread of the block must call it. */
__device__ __forceinline__ double igc_block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = IGC_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double total = sh[0];
    __syncthreads();
    return total;
}

/* Offset of the row-major index i over (n, shape, stride). */
__device__ __forceinline__ int64_t igc_offset(int n, const int64_t *shape, const int64_t *stride, int64_t i) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (i % shape[d]) * stride[d];
        i /= shape[d];
    }
    return off;
}

/* ---- conversions, as core/tensor.c's igi_load / igi_store ------------------------------- */

template <typename T> __device__ __forceinline__ double igc_load(T x) { return (double)x; }
template <> __device__ __forceinline__ double igc_load<__nv_bfloat16>(__nv_bfloat16 x) {
    return (double)__bfloat162float(x);
}

/* Float to integer saturates and maps NaN to 0. */
__device__ __forceinline__ int64_t igc_sat(double v, double lo, double hi) {
    if (v != v) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return (int64_t)hi;
    return (int64_t)v;
}

template <typename T> struct igc_store;
template <> struct igc_store<float> {
    __device__ static float of(double v) { return (float)v; }
};
template <> struct igc_store<double> {
    __device__ static double of(double v) { return v; }
};
template <> struct igc_store<int32_t> {
    __device__ static int32_t of(double v) { return (int32_t)igc_sat(v, -2147483648.0, 2147483647.0); }
};
template <> struct igc_store<int64_t> {
    __device__ static int64_t of(double v) {
        if (v != v) return 0;
        if (v >= 9223372036854775808.0) return INT64_MAX;
        if (v < -9223372036854775808.0) return INT64_MIN;
        return (int64_t)v;
    }
};
template <> struct igc_store<uint8_t> {
    __device__ static uint8_t of(double v) { return (uint8_t)igc_sat(v, 0.0, 255.0); }
};
/* bf16 through f32, as core/tensor.c's igi_store: round to nearest even. */
template <> struct igc_store<__nv_bfloat16> {
    __device__ static __nv_bfloat16 of(double v) { return __float2bfloat16_rn((float)v); }
};

/* Calls F::template run<T>(args...) for the C type T of dtype dt. */
#define IGC_DISPATCH_ALL(dt, CALL)                              \
    switch (dt) {                                               \
    case IG_F32: { typedef float T; CALL; } break;              \
    case IG_F64: { typedef double T; CALL; } break;             \
    case IG_I32: { typedef int32_t T; CALL; } break;            \
    case IG_I64: { typedef int64_t T; CALL; } break;            \
    case IG_U8: { typedef uint8_t T; CALL; } break;             \
    default: return igi_error(IG_ERR_DTYPE, "%s: invalid dtype %d on cuda", op, (int)(dt)); \
    }

/* Kernel entry points of the table (cuda/elementwise.cu, reduce.cu, softmax.cu, gemm.cu,
 * conv.cu, pool.cu, norm.cu, loss.cu, optim.cu, dropout.cu). */
ig_status igc_copy(const char *op, const igi_ew *e);
ig_status igc_fill(const char *op, const igi_ew *e, double value);
ig_status igc_binary(const char *op, int kind, const igi_ew *e);
ig_status igc_scalar(const char *op, const igi_ew *e, double s, bool mul);
ig_status igc_where(const char *op, const igi_ew *e);
ig_status igc_unary(const char *op, int kind, const igi_ew *e, const igi_unary_params *p);
ig_status igc_unary_backward(const char *op, int kind, const igi_ew *e, const igi_unary_params *p);
ig_status igc_reduce(const char *op, int kind, const igi_red *r, double div);
ig_status igc_reduce_scatter(const char *op, const igi_red *r, const void *g);
ig_status igc_softmax(const char *op, bool log_out, const igi_rows *r);
ig_status igc_softmax_backward(const char *op, bool log_out, const igi_rows *r);
ig_status igc_gemm(const char *op, ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                   const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);
ig_status igc_conv2d(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w, const void *b,
                     int64_t bs, void *y, void *col, void *res);
ig_status igc_conv2d_backward(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w,
                              const void *dy, void *dx, void *dw, void *db, void *col, void *dyb);
ig_status igc_pool2d(const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *x, void *out,
                     int64_t *idx);
ig_status igc_pool2d_backward(const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *gout,
                              const int64_t *idx, void *dx);
ig_status igc_batch_norm(const char *op, const igi_bn *p);
ig_status igc_batch_norm_backward(const char *op, const igi_bn_bwd *p);
ig_status igc_class_loss(const char *op, const igi_ce *c, const void *x, const void *target, void *loss,
                         double *lse, double *pos, void *total, double div);
ig_status igc_class_loss_backward(const char *op, const igi_ce *c, const void *x, const void *target, const void *g,
                                  const double *lse, void *gin, double scale);
ig_status igc_optim_step(const char *op, const igi_optim_step *s);
ig_status igc_layer_norm(const char *op, const igi_ln *p);
ig_status igc_dropout_mask(const char *op, int64_t n, uint64_t seed, uint64_t start, double threshold, uint8_t *mask);
ig_status igc_mask_apply(const char *op, const igi_ew *e, double scale);
ig_status igc_layer_norm_backward(const char *op, const igi_ln *p);
ig_status igc_pointwise_loss(const char *op, int kind, const igi_ew *e, double beta);
ig_status igc_pointwise_loss_backward(const char *op, int kind, const igi_ew *e, double beta, bool wrt_target);
/* cuda/gemm.cu: the table's gemm_amp, f32 under fp16 autocast (amp must be IG_AMP_FP16: bf16
 * autocast converts f32 operands to IG_BF16 in core and takes igc_gemm). */
ig_status igc_gemm_amp(const char *op, int amp, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                       int64_t lda, const float *B, int64_t ldb, double beta, float *C, int64_t ldc);
/* cuda/amp.cu: dst (rows*cols packed bf16 or fp16 values, amp = IG_AMP_BF16 / FP16) = the
 * f32 matrix src [rows, cols] with row stride ld, rounded to nearest even. fp16: the
 * operands of igc_gemm_amp; bf16: the results of conv.cu's widened f32 fallback for bf16
 * activations, narrowed back. */
ig_status igc_amp_convert(const char *op, int amp, const float *src, int64_t rows, int64_t cols, int64_t ld,
                          void *dst);
ig_status igc_amp_unscale(const char *op, float *g, int64_t n, float inv_scale, int *found_inf);
/* cuda/norm.cu: synchronised batch norm's steps (the table's batch_norm_sums, batch_norm_apply,
 * batch_norm_backward_apply). */
ig_status igc_batch_norm_sums(const char *op, int kind, const igi_bn_sums *p);
ig_status igc_batch_norm_apply(const char *op, const igi_bn *p, const double *stats, double cnt);
ig_status igc_batch_norm_backward_apply(const char *op, const igi_bn_bwd *p, const double *sums);
/* cuda/index.cu: gather forward and backward. */
ig_status igc_gather(const char *op, const igi_gather *g, const void *t, const void *index, void *out);
ig_status igc_gather_backward(const char *op, const igi_gather *g, const void *gout, const void *index, void *gin);
/* cuda/profile.cu: the table with every entry timed (IGNIS_CUDA_PROFILE=1), or NULL. */
const igi_backend *igc_profile_table(const igi_backend *real);
/* cuda/conv_igemm.cu: the implicit-GEMM convolution (f32, groups 1). applies: this
 * geometry and dtype take it (see igi_cuda_conv_force). Forward: y (contiguous [N,O,Ho,Wo])
 * from x (strides g->xs), w (contiguous [O,C,kh,kw]), b (stride bs, or NULL). Backward: dx
 * (contiguous [N,C,H,W]) and dw (contiguous [O,C,kh,kw]), each NULL when not wanted and
 * otherwise overwritten, from dy (contiguous); col: the K*nb*P-float scratch of the
 * backend table, holding dw's slice partials (NULL: one slice, no scratch). */
bool igc_conv_igemm_applies(ig_dtype dt, const igi_conv *g);
/* The conv path in effect (igi_cuda_conv_force's mode, or under AUTO IGNIS_CUDA_CONV's). */
int igc_conv_mode(void);
ig_status igc_conv2d_igemm(const char *op, const igi_conv *g, const float *x, const float *w, const float *b,
                           int64_t bs, float *y);
ig_status igc_conv2d_backward_igemm(const char *op, const igi_conv *g, const float *x, const float *w,
                                    const float *dy, float *dx, float *dw, float *col);
/* cuda/gemm.cu: cuBLAS handle on igc_stream; IG_OK or the error in msg. */
ig_status igc_gemm_init(char *msg, size_t cap);
void igc_gemm_set_tf32(bool on);
/* Whether TF32 is on (conv_igemm.cu's implicit GEMM follows the same switch). */
bool igc_gemm_tf32(void);

/* ---- bf16 kernels: compute in float, round once ------------------------------------------ */

/* The type a kernel computes in for storage type T: float for bf16 (whose arithmetic the
 * f32 kernels define: a native bf16 kernel loads to float, runs the f32 expressions and
 * rounds the result once, so it equals core's "f32 copy, f32 entry, round back" path bit
 * for bit), T itself otherwise (then igc_ld / igc_st are the identity). */
template <typename T> struct igc_compute { typedef T type; };
template <> struct igc_compute<__nv_bfloat16> { typedef float type; };
template <typename T> using igc_compute_t = typename igc_compute<T>::type;

template <typename T> __device__ __forceinline__ igc_compute_t<T> igc_ld(T x) { return x; }
template <> __device__ __forceinline__ float igc_ld<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T igc_st(igc_compute_t<T> v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 igc_st<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/* IGC_DISPATCH_ALL with bf16 (T = __nv_bfloat16) too, for the entries of the groups the
 * table's bf16 mask names. */
#define IGC_DISPATCH_ALL_BF16(dt, CALL)                         \
    if ((dt) == IG_BF16) {                                      \
        typedef __nv_bfloat16 T;                                \
        CALL;                                                   \
    } else                                                      \
        IGC_DISPATCH_ALL(dt, CALL)

/* cuda/conv_igemm.cu: the implicit GEMM for bf16 activations (dt IG_BF16, where
 * igc_conv_igemm_applies(IG_BF16, g)): as the f32 entries above with every tensor bf16, f32
 * accumulation, each result rounded once; col is the K*nb*P-element bf16 scratch. */
ig_status igc_conv2d_igemm_bf16(const char *op, const igi_conv *g, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                                const __nv_bfloat16 *b, int64_t bs, __nv_bfloat16 *y);
ig_status igc_conv2d_backward_igemm_bf16(const char *op, const igi_conv *g, const __nv_bfloat16 *x,
                                         const __nv_bfloat16 *w, const __nv_bfloat16 *dy, __nv_bfloat16 *dx,
                                         __nv_bfloat16 *dw, void *col);
/* cuda/cudnn.cu: conv2d on cuDNN (IGI_CUDA_CONV_CUDNN mode). takes: the mode is on and
 * cuDNN serves dt and g (f32 without autocast, f64, bf16; non-empty; int-sized). Forward: y
 * (contiguous [N,O,Ho,Wo]) = conv(x, w) + b (b at stride bs, or NULL). Backward: dx
 * (contiguous) and dw, each NULL when not wanted; the bias gradient is the caller's. */
bool igc_conv_cudnn_takes(ig_dtype dt, const igi_conv *g);
ig_status igc_conv2d_cudnn(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w, const void *b,
                           int64_t bs, void *y);
ig_status igc_conv2d_backward_cudnn(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w,
                                    const void *dy, void *dx, void *dw);
/* cuda/amp.cu: dst (f32 [rows, cols], packed) = the bf16 matrix src [rows, cols] with row
 * stride ld, widened (exact). */
ig_status igc_bf16_widen(const char *op, const __nv_bfloat16 *src, int64_t rows, int64_t cols, int64_t ld,
                         float *dst);

#endif
