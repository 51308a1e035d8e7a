/*
 * tests/cuda/emu/cublas.cpp — the CUDA emulator's cuBLAS: the entry points cuda/gemm.cu
 * resolves with dlsym, computed on the CPU, built as a shared library with cuBLAS's soname
 * (libcublas.so.13) that the emulated gemm.cu loads from the emulator's build folder.
 *
 * Semantics are cuBLAS's: column-major operands, C = alpha op(A) op(B) + beta C with C not
 * read when beta is 0, and CUBLAS_STATUS_INVALID_VALUE for negative sizes or leading
 * dimensions smaller than the rows stored. Each operand's extent must lie inside one device
 * allocation of the emulated runtime (igemu_device_range, found in the program with dlsym):
 * a host pointer or a wrong leading dimension fails with CUBLAS_STATUS_INVALID_VALUE and a
 * line on stderr instead of reading memory a GPU would fault on. Sums accumulate in double
 * and round once; with CUBLAS_TF32_TENSOR_OP_MATH an f32 GEMM first rounds its inputs to
 * TF32 (10 mantissa bits, nearest even), as tensor cores do. GemmEx takes 16BF / 16F / 32F
 * inputs, a 32F output (or a 16BF one with 16BF inputs) and CUBLAS_COMPUTE_32F.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
};

namespace {

int (*range_check)(const void *, size_t);

bool quiet() {
    const char *q = getenv("IGEMU_QUIET");
    return q && *q && strcmp(q, "0") != 0;
}

/* True if the column-major rows x cols operand with leading dimension ld of elem-byte
 * elements lies in device memory (always true when the runtime's check is not found). */
bool operand_ok(const char *call, const char *name, const void *p, int rows, int cols, int ld, size_t elem) {
    if (rows == 0 || cols == 0 || !range_check) return true;
    size_t n = ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * elem;
    if (range_check(p, n)) return true;
    if (!quiet()) fprintf(stderr, "cuda emulator: %s: %s = %p (%d x %d, ld %d: %zu bytes) is not inside one device allocation\n",
            call, name, p, rows, cols, ld, n);
    return false;
}

float tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf, NaN */
    u += 0xfffu + ((u >> 13) & 1u);
    u &= 0xffffe000u;
    memcpy(&x, &u, 4);
    return x;
}

template <typename T> double load(const void *p, int64_t i, cudaDataType t, bool round_tf32) {
    (void)t;
    double v = (double)((const T *)p)[i];
    return round_tf32 ? (double)tf32((float)v) : v;
}

typedef double (*loader)(const void *, int64_t, cudaDataType, bool);

loader loader_for(cudaDataType t) {
    switch (t) {
    case CUDA_R_32F: return load<float>;
    case CUDA_R_64F: return load<double>;
    case CUDA_R_16F: return load<__half>;
    case CUDA_R_16BF: return load<__nv_bfloat16>;
    default: return NULL;
    }
}

size_t type_size(cudaDataType t) {
    return t == CUDA_R_64F ? 8 : t == CUDA_R_32F ? 4 : 2;
}

/* C (m x n, ldc) = alpha op(A) op(B) + beta C; op(A) is m x k, op(B) k x n. */
template <typename C>
cublasStatus_t gemm(const char *call, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, double alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                    int ldb, double beta, C *Cm, int ldc, bool round_tf32) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) ||
        ldc < (m > 1 ? m : 1)) {
        if (!quiet()) fprintf(stderr, "cuda emulator: %s: invalid sizes m %d n %d k %d lda %d ldb %d ldc %d\n", call, m, n, k, lda,
                ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    bool use_ab = k > 0 && alpha != 0.0;
    if ((use_ab && (!operand_ok(call, "A", A, arows, acols, lda, type_size(at)) ||
                    !operand_ok(call, "B", B, brows, bcols, ldb, type_size(bt)))) ||
        !operand_ok(call, "C", Cm, m, n, ldc, sizeof(C)))
        return CUBLAS_STATUS_INVALID_VALUE;
    loader la = loader_for(at), lb = loader_for(bt);
    if (!la || !lb) return CUBLAS_STATUS_NOT_SUPPORTED;
    /* op(A) as m rows of k doubles and op(B)^T as n rows of k, so each entry of C is a dot
     * product of two contiguous rows. */
    std::vector<double> pa(use_ab ? (size_t)m * k : 0), pb(use_ab ? (size_t)n * k : 0);
    if (use_ab) {
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
                pa[(size_t)i * k + p] =
                    la(A, ta == CUBLAS_OP_N ? (int64_t)p * lda + i : (int64_t)i * lda + p, at, round_tf32);
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
                pb[(size_t)j * k + p] =
                    lb(B, tb == CUBLAS_OP_N ? (int64_t)j * ldb + p : (int64_t)p * ldb + j, bt, round_tf32);
    }
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            double acc = 0.0;
            if (use_ab) {
                const double *x = &pa[(size_t)i * k], *y = &pb[(size_t)j * k];
                for (int p = 0; p < k; p++) acc += x[p] * y[p];
            }
            C *c = Cm + (int64_t)j * ldc + i;
            double r = alpha * acc;
            if (beta != 0.0) r += beta * (double)*c;
            *c = (C)r; /* a bf16 C: through float, round to nearest even (cuda_bf16.h) */
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    if (!range_check) range_check = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "igemu_device_range");
    *handle = new cublasContext{NULL, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TENSOR_OP_MATH && mode != CUBLAS_PEDANTIC_MATH &&
        mode != CUBLAS_TF32_TENSOR_OP_MATH)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

__attribute__((visibility("default"))) cublasStatus_t
cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
               const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C,
               int ldc) {
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    bool round = handle && handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
    return gemm<float>("cublasSgemm", handle, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, *beta,
                       C, ldc, round);
}

__attribute__((visibility("default"))) cublasStatus_t
cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
               const double *alpha, const double *A, int lda, const double *B, int ldb, const double *beta, double *C,
               int ldc) {
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    return gemm<double>("cublasDgemm", handle, ta, tb, m, n, k, *alpha, A, CUDA_R_64F, lda, B, CUDA_R_64F, ldb,
                        *beta, C, ldc, false);
}

__attribute__((visibility("default"))) cublasStatus_t
cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
             const void *A, cudaDataType Atype, int lda, const void *B, cudaDataType Btype, int ldb, const void *beta,
             void *C, cudaDataType Ctype, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    /* The combinations ignis uses (cuBLAS supports more): 16BF/16F/32F inputs of one type,
     * a 32F output, or 16BF inputs with a 16BF output (bf16 activations: the f32 result
     * alpha*acc + beta*C, C read as f32, rounded to bf16 once); f32 compute with alpha and
     * beta as floats. */
    if (compute != CUBLAS_COMPUTE_32F || Atype != Btype ||
        (Atype != CUDA_R_16BF && Atype != CUDA_R_16F && Atype != CUDA_R_32F) ||
        (Ctype != CUDA_R_32F && !(Ctype == CUDA_R_16BF && Atype == CUDA_R_16BF)))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    bool round = Atype == CUDA_R_32F && handle && handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
    if (Ctype == CUDA_R_16BF)
        return gemm<__nv_bfloat16>("cublasGemmEx", handle, ta, tb, m, n, k, *(const float *)alpha, A, Atype, lda, B,
                                   Btype, ldb, *(const float *)beta, (__nv_bfloat16 *)C, ldc, false);
    return gemm<float>("cublasGemmEx", handle, ta, tb, m, n, k, *(const float *)alpha, A, Atype, lda, B, Btype, ldb,
                       *(const float *)beta, (float *)C, ldc, round);
}

__attribute__((visibility("default"))) const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    }
    return "unknown error";
}

} /* extern "C" */
