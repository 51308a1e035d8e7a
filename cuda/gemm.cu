/*
 * cuda/gemm.cu — GEMM through cuBLAS for ig_matmul on CUDA.
 *
 * ignis matrices are row-major; cuBLAS is column-major. A row-major matrix read as
 * column-major is its transpose, so C = op(A) op(B) (row-major) is computed as
 * C^T = op(B)^T op(A)^T (column-major): cuBLAS gets B first, then A, with m = N, n = M,
 * and each operand keeps its own transpose flag (a transposed row-major operand is a
 * plain column-major one). Leading dimensions pass through unchanged.
 *
 * fp16 autocast (igc_gemm_amp): both f32 operands are converted to fp16 scratch (packed,
 * from the caching allocator; cuda/amp.cu) and multiplied by cublasGemmEx with CUDA_R_16F
 * inputs, an f32 output and CUBLAS_COMPUTE_32F (f32 accumulation). bf16 autocast never
 * comes here: core converts the f32 operands to IG_BF16 tensors first (ig_matmul,
 * ig_conv2d), which take the bf16 GEMM below.
 * The scratch is returned to the caching allocator right after the call is queued: every
 * later use of the block is queued on the same stream, after the GEMM.
 *
 * bf16 (dt IG_BF16, the table's IGI_BF16_GEMM): A, B and C are bf16 in device memory and go
 * to cublasGemmEx as they are (CUDA_R_16BF in and out, CUBLAS_COMPUTE_32F).
 *
 * TF32: off by default (CUBLAS_DEFAULT_MATH computes f32 GEMMs in full fp32), on with
 * ig_cuda_set_tf32(true) (CUBLAS_TF32_TENSOR_OP_MATH). One handle on igc_stream; a mutex
 * keeps calls from several host threads from interleaving on it.
 *
 * cuBLAS is loaded with dlopen when the CUDA backend initialises, not linked: its
 * libraries (libcublas + libcublasLt, ~600 MB) cost every process that merely links them
 * ~150 MB of resident memory at start-up (relocations), CPU-only runs included. The
 * handful of entry points used here are looked up by name; the library is tried first in
 * the CUDA directory the build used (IGNIS_CUDA_LIBDIR), then by soname on the loader's path.
 */
#include <cublas_v2.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

#include "cuda_impl.h"

/* The cuBLAS entry points ignis uses, resolved from the dlopen'ed library. */
static struct {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetMathMode) set_math_mode;
    decltype(&cublasSgemm_v2) sgemm;
    decltype(&cublasDgemm_v2) dgemm;
    /* the library's entry (C++ also sees an inline overload taking a cudaDataType) */
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    decltype(&cublasGetStatusString) status_string;
} cb;

#define IGC_STR_(x) #x
#define IGC_STR(x) IGC_STR_(x)
#define IGC_CUBLAS_SONAME "libcublas.so." IGC_STR(CUBLAS_VER_MAJOR)

/* Opens cuBLAS and resolves cb; on failure a message in msg and IG_ERR_DEVICE. */
static ig_status load_cublas(char *msg, size_t cap) {
    const char *names[] = {
#ifdef IGNIS_CUDA_LIBDIR
        IGNIS_CUDA_LIBDIR "/" IGC_CUBLAS_SONAME,
#endif
        IGC_CUBLAS_SONAME,
        "libcublas.so",
    };
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(msg, cap, "cannot load cuBLAS (%s): %s", IGC_CUBLAS_SONAME, why ? why : "not found");
        return IG_ERR_DEVICE;
    }
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&cb.create, "cublasCreate_v2"},
        {(void **)&cb.destroy, "cublasDestroy_v2"},
        {(void **)&cb.set_stream, "cublasSetStream_v2"},
        {(void **)&cb.set_math_mode, "cublasSetMathMode"},
        {(void **)&cb.sgemm, "cublasSgemm_v2"},
        {(void **)&cb.dgemm, "cublasDgemm_v2"},
        {(void **)&cb.gemm_ex, "cublasGemmEx"},
        {(void **)&cb.status_string, "cublasGetStatusString"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(lib, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(msg, cap, "cuBLAS (%s) lacks %s", IGC_CUBLAS_SONAME, syms[i].name);
            dlclose(lib);
            return IG_ERR_DEVICE;
        }
    }
    return IG_OK; /* the library stays loaded for the life of the process */
}

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
                             cb.status_string(igc_s_));                                     \
        }                                                                                        \
    } while (0)

ig_status igc_gemm_init(char *msg, size_t cap) {
    ig_status st = load_cublas(msg, cap);
    if (st != IG_OK) return st;
    cublasStatus_t s = cb.create(&handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, cap, "cublasCreate: %s", cb.status_string(s));
        return IG_ERR_DEVICE;
    }
    if ((s = cb.set_stream(handle, igc_stream)) != CUBLAS_STATUS_SUCCESS ||
        (s = cb.set_math_mode(handle, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, cap, "cublasSetStream/cublasSetMathMode: %s", cb.status_string(s));
        cb.destroy(handle);
        return IG_ERR_DEVICE;
    }
    return IG_OK;
}

void igc_gemm_set_tf32(bool on) {
    pthread_mutex_lock(&gemm_lock);
    tf32_on = on;
    pthread_mutex_unlock(&gemm_lock);
}

bool igc_gemm_tf32(void) {
    pthread_mutex_lock(&gemm_lock);
    bool on = tf32_on;
    pthread_mutex_unlock(&gemm_lock);
    return on;
}

/* bf16 activations (IGI_BF16_GEMM): A, B and C all bf16 in device memory, f32 accumulation
 * (CUBLAS_COMPUTE_32F, alpha and beta as floats: beta scales the existing bf16 C read as
 * f32), each result rounded to bf16 once by cuBLAS. No conversion copies: the point of bf16
 * activations is to halve the GEMM's memory traffic. The math mode (TF32) does not apply to
 * 16-bit inputs. Sizes already checked by the caller. */
static ig_status gemm_bf16(const char *op, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                           int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float one = 1.0f, b = (float)beta;
    pthread_mutex_lock(&gemm_lock);
    cublasStatus_t s = cb.gemm_ex(handle, opb, opa, (int)N, (int)M, (int)K, &one, B, CUDA_R_16BF, (int)ldb, A,
                                  CUDA_R_16BF, (int)lda, &b, C, CUDA_R_16BF, (int)ldc, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT);
    pthread_mutex_unlock(&gemm_lock);
    if (s != CUBLAS_STATUS_SUCCESS)
        return igi_error(s == CUBLAS_STATUS_ALLOC_FAILED ? IG_ERR_NOMEM : IG_ERR_DEVICE,
                         "%s: cublasGemmEx (bf16 inputs and output) failed (%s:%d): %s", op, __FILE__, __LINE__,
                         cb.status_string(s));
    return IG_OK;
}

ig_status igc_gemm(const char *op, ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                   const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return igi_error(IG_ERR_SHAPE, "%s: GEMM sizes above 2^31 are not supported by cuBLAS", op);
    if (dt == IG_BF16) return gemm_bf16(op, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    if (dt != IG_F32 && dt != IG_F64)
        return igi_error(IG_ERR_DTYPE, "%s: GEMM on cuda takes float32, float64 or bfloat16, not %s", op,
                         ig_dtype_name(dt));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    pthread_mutex_lock(&gemm_lock);
    if (tf32_applied != tf32_on) {
        IGC_CUBLAS(op, cb.set_math_mode(handle, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        tf32_applied = tf32_on;
    }
    if (dt == IG_F32) {
        const float one = 1.0f, b = (float)beta;
        IGC_CUBLAS(op, cb.sgemm(handle, opb, opa, (int)N, (int)M, (int)K, &one, (const float *)B, (int)ldb,
                                   (const float *)A, (int)lda, &b, (float *)C, (int)ldc));
    } else {
        const double one = 1.0;
        IGC_CUBLAS(op, cb.dgemm(handle, opb, opa, (int)N, (int)M, (int)K, &one, (const double *)B, (int)ldb,
                                   (const double *)A, (int)lda, &beta, (double *)C, (int)ldc));
    }
    pthread_mutex_unlock(&gemm_lock);
    return IG_OK;
}

/* A row-major operand op(X) [r, c] stored as rows x cols (transposed: cols x rows) with
 * leading dimension ld, converted to a packed fp16 copy (ld becomes cols). */
typedef struct {
    void *p;
    size_t bytes;
    int64_t ld;
} low_operand;

static ig_status low_copy(const char *op, const float *X, int64_t rows, int64_t cols, int64_t ld, low_operand *L) {
    L->ld = cols > 1 ? cols : 1;
    L->bytes = (size_t)(rows * cols) * 2; /* fp16: 2 bytes */
    L->p = igi_alloc(IG_CUDA, L->bytes ? L->bytes : 1);
    if (!L->p)
        return igi_error(IG_ERR_NOMEM, "%s: out of device memory for a %zu-byte autocast operand", op, L->bytes);
    ig_status st = igc_amp_convert(op, IG_AMP_FP16, X, rows, cols, ld, L->p);
    if (st != IG_OK) {
        igi_free(IG_CUDA, L->p, L->bytes ? L->bytes : 1);
        L->p = NULL;
    }
    return st;
}

ig_status igc_gemm_amp(const char *op, int amp, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                       int64_t lda, const float *B, int64_t ldb, double beta, float *C, int64_t ldc) {
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return igi_error(IG_ERR_SHAPE, "%s: GEMM sizes above 2^31 are not supported by cuBLAS", op);
    if (amp != IG_AMP_FP16) /* igi_amp_for: only fp16 autocast rounds f32 operands */
        return igi_error(IG_ERR_ARG, "%s: autocast mode %d is not fp16", op, amp);
    const cudaDataType_t type = CUDA_R_16F;
    /* Stored geometry: A is M x K (K x M when transposed), B is K x N (N x K). */
    low_operand LA = {NULL, 0, 0}, LB = {NULL, 0, 0};
    ig_status st = low_copy(op, A, ta ? K : M, ta ? M : K, lda, &LA);
    if (st == IG_OK) st = low_copy(op, B, tb ? N : K, tb ? K : N, ldb, &LB);
    if (st == IG_OK) {
        cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        const float one = 1.0f, b = (float)beta;
        pthread_mutex_lock(&gemm_lock);
        cublasStatus_t s = cb.gemm_ex(handle, opb, opa, (int)N, (int)M, (int)K, &one, LB.p, type, (int)LB.ld, LA.p,
                                      type, (int)LA.ld, &b, C, CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT);
        pthread_mutex_unlock(&gemm_lock);
        if (s != CUBLAS_STATUS_SUCCESS)
            st = igi_error(s == CUBLAS_STATUS_ALLOC_FAILED ? IG_ERR_NOMEM : IG_ERR_DEVICE,
                           "%s: cublasGemmEx (fp16 inputs) failed (%s:%d): %s", op, __FILE__, __LINE__,
                           cb.status_string(s));
    }
    if (LA.p) igi_free(IG_CUDA, LA.p, LA.bytes ? LA.bytes : 1);
    if (LB.p) igi_free(IG_CUDA, LB.p, LB.bytes ? LB.bytes : 1);
    return st;
}
