/*
 * cuda/amp.cu — mixed precision on CUDA: f32 -> fp16 operand conversion for the fp16
 * autocast GEMMs (cuda/gemm.cu's igc_gemm_amp), bf16 <-> f32 conversion for the f32
 * fallbacks of bf16 activations (cuda/conv.cu's widened im2col path: widen the operands,
 * narrow the results), and the fused unscale + inf/NaN check of dynamic loss scaling
 * (optim/scaler.c through the table's amp_unscale).
 *
 * Under fp16 autocast activations stay f32 in device memory: only a GEMM's two operands are
 * converted, into scratch from the caching allocator, right before cublasGemmEx reads them
 * (f32 accumulation and output). (bf16 autocast has real IG_BF16 tensors instead: core
 * converts the operands before the op.) The conversions round to nearest even
 * (__float2bfloat16_rn, __float2half_rn), as core/ops/amp.c and core/tensor.c do on the
 * CPU: NaN stays NaN, fp16 overflows to inf and keeps subnormals.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_impl.h"

/* dst [rows, cols] (packed, row-major) = src [rows, cols] with row stride ld, converted. */
template <typename T> __device__ __forceinline__ T igc_from_f32(float v);
template <> __device__ __forceinline__ __nv_bfloat16 igc_from_f32<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
template <> __device__ __forceinline__ __half igc_from_f32<__half>(float v) { return __float2half_rn(v); }

template <typename T>
__global__ void to_low_kernel(const float *src, int64_t rows, int64_t cols, int64_t ld, T *dst) {
    int64_t total = rows * cols;
    IGC_GRID_STRIDE(e, total) {
        int64_t r = e / cols, c = e % cols;
        dst[e] = igc_from_f32<T>(src[r * ld + c]);
    }
}

ig_status igc_amp_convert(const char *op, int amp, const float *src, int64_t rows, int64_t cols, int64_t ld,
                          void *dst) {
    int64_t total = rows * cols;
    if (total <= 0) return IG_OK;
    if (amp == IG_AMP_BF16)
        to_low_kernel<__nv_bfloat16><<<igc_blocks(total), IGC_THREADS, 0, igc_stream>>>(src, rows, cols, ld,
                                                                                       (__nv_bfloat16 *)dst);
    else if (amp == IG_AMP_FP16)
        to_low_kernel<__half><<<igc_blocks(total), IGC_THREADS, 0, igc_stream>>>(src, rows, cols, ld, (__half *)dst);
    else
        return igi_error(IG_ERR_ARG, "%s: conversion mode %d is not bf16 or fp16", op, amp);
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* dst [rows, cols] (packed f32) = src [rows, cols] (bf16, row stride ld): exact. The
 * fallbacks of bf16 activations that run an f32 kernel on widened copies (cuda/conv.cu's
 * im2col path) use it, and igc_amp_convert (IG_AMP_BF16) to round the results back. */
__global__ void bf16_widen_kernel(const __nv_bfloat16 *src, int64_t rows, int64_t cols, int64_t ld, float *dst) {
    int64_t total = rows * cols;
    IGC_GRID_STRIDE(e, total) {
        int64_t r = e / cols, c = e % cols;
        dst[e] = __bfloat162float(src[r * ld + c]);
    }
}

ig_status igc_bf16_widen(const char *op, const __nv_bfloat16 *src, int64_t rows, int64_t cols, int64_t ld,
                         float *dst) {
    int64_t total = rows * cols;
    if (total <= 0) return IG_OK;
    bf16_widen_kernel<<<igc_blocks(total), IGC_THREADS, 0, igc_stream>>>(src, rows, cols, ld, dst);
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* g *= inv_scale; *found = 1 if any result is not finite (every writer writes 1, so the
 * unordered writes agree). */
__global__ void unscale_kernel(float *g, int64_t n, float inv_scale, int *found) {
    bool bad = false;
    IGC_GRID_STRIDE(i, n) {
        float v = g[i] * inv_scale;
        g[i] = v;
        if (!isfinite(v)) bad = true;
    }
    if (bad) *found = 1;
}

ig_status igc_amp_unscale(const char *op, float *g, int64_t n, float inv_scale, int *found_inf) {
    if (n <= 0) return IG_OK;
    unscale_kernel<<<igc_blocks(n), IGC_THREADS, 0, igc_stream>>>(g, n, inv_scale, found_inf);
    IGC_LAUNCHED(op);
    return IG_OK;
}
