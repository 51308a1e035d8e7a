/*
 * cuda/gemm.cu — GEMM through cuBLAS for ig_matmul on CUDA.
 *
 * ignis matrices are row-major; cuBLAS is column-major. A row-major matrix read as
 * column-major is its transpose, so C = op(A) op(B) (row-major) is computed as
 * C^T = op(B)^T op(A)^T (column-major): cuBLAS gets B first, then A, with m = N, n = M,
 * and each operand keeps its own transpose flag (a transposed row-major operand is a
 * plain column-major one). Leading dimensions pass through unchanged.
 *
 * TF32: off by default (CUBLAS_DEFAULT_MATH computes f32 GEMMs in full fp32), on with
 * ig_cuda_set_tf32(true) (CUBLAS_TF32_TENSOR_OP_MATH). One handle on igc_stream; a mutex
 * keeps calls from several host threads from interleaving on it.
 */
#include <cublas_v2.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

#include "cuda_impl.h"

static cublasHandle_t handle;
static pthread_mutex_t gemm_lock = PTHREAD_MUTEX_INITIALIZER;
static bool tf32_on;
static bool tf32_applied;

#define IGC_CUBLAS(op, call)                                                                     \
    do {                                                                                         \
        cublasStatus_t igc_s_ = (call);                                                          \
        if (igc_s_ != CUBLAS_STATUS_SUCCESS) {                                                   \
            pthread_mutex_unlock(&gemm_lock);                                                    \
            return igi_error(igc_s_ == CUBLAS_STATUS_ALLOC_FAILED ? IG_ERR_NOMEM : IG_ERR_DEVICE, \
                             "%s: %s failed (%s:%d): %s", (op), #call, __FILE__, __LINE__,       \
                             cublasGetStatusString(igc_s_));                                     \
        }                                                                                        \
    } while (0)

ig_status igc_gemm_init(char *msg, size_t cap) {
    cublasStatus_t s = cublasCreate(&handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, cap, "cublasCreate: %s", cublasGetStatusString(s));
        return IG_ERR_DEVICE;
    }
    if ((s = cublasSetStream(handle, igc_stream)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, cap, "cublasSetStream/cublasSetMathMode: %s", cublasGetStatusString(s));
        cublasDestroy(handle);
        return IG_ERR_DEVICE;
    }
    return IG_OK;
}

void igc_gemm_set_tf32(bool on) {
    pthread_mutex_lock(&gemm_lock);
    tf32_on = on;
    pthread_mutex_unlock(&gemm_lock);
}

ig_status igc_gemm(const char *op, ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                   const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return igi_error(IG_ERR_SHAPE, "%s: GEMM sizes above 2^31 are not supported by cuBLAS", op);
    if (dt != IG_F32 && dt != IG_F64)
        return igi_error(IG_ERR_DTYPE, "%s: GEMM on cuda takes float32 or float64, not %s", op, ig_dtype_name(dt));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    pthread_mutex_lock(&gemm_lock);
    if (tf32_applied != tf32_on) {
        IGC_CUBLAS(op, cublasSetMathMode(handle, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        tf32_applied = tf32_on;
    }
    if (dt == IG_F32) {
        const float one = 1.0f, b = (float)beta;
        IGC_CUBLAS(op, cublasSgemm(handle, opb, opa, (int)N, (int)M, (int)K, &one, (const float *)B, (int)ldb,
                                   (const float *)A, (int)lda, &b, (float *)C, (int)ldc));
    } else {
        const double one = 1.0;
        IGC_CUBLAS(op, cublasDgemm(handle, opb, opa, (int)N, (int)M, (int)K, &one, (const double *)B, (int)ldb,
                                   (const double *)A, (int)lda, &beta, (double *)C, (int)ldc));
    }
    pthread_mutex_unlock(&gemm_lock);
    return IG_OK;
}
