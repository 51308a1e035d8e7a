/*
 * core/gemm.c — igi_gemm, the one GEMM entry point of the ops (matmul, conv): OpenBLAS
 * runs single-threaded and large products are split over the ignis thread pool.
 *
 * Why: OpenBLAS's own threads spin in sched_yield between calls and are woken for every
 * call, however small; with the many medium GEMMs of a training step (conv chunks, linear
 * layers) that cost ~25% of a resnet8 step and took cores from the pool's im2col and
 * pooling work; its threaded driver also mallocs a job table on every call. Here OpenBLAS
 * is set to one thread (once, and again by ig_set_num_threads) and igi_gemm cuts C into
 * blocks of whole columns (or rows, whichever dimension is larger), each a single-threaded
 * cblas call, spread over the pool's threads. Products under 4 MFLOP are one call.
 *
 * Results: OpenBLAS's values depend on the shape of a call (its kernels and blocking
 * change with M, N, K), so the blocks are a function of the shape alone, never of the
 * thread count: one thread runs the same blocks one after the other. Results are therefore
 * the same for every thread count (tests/core/test_gemm.c), though not bitwise those of
 * one unsplit call.
 *
 * f32 on a CPU with AVX-512F runs ignis's own sgemm (core/sgemm512.c) instead of
 * OpenBLAS's for every shape but the narrow ones (igi_sgemm512_use), block by block the
 * same way; its values are one FMA chain per element, so there they are even bitwise those
 * of one unsplit call. IGNIS_SGEMM=blas keeps OpenBLAS (A/B timing). f64 is OpenBLAS's.
 */
#include <cblas.h>
#include <pthread.h>

#include "sgemm512.h"
#include "tensor_impl.h"

/* Below this many FLOPs (2*M*N*K) a GEMM is one call in the caller's thread. */
#define GEMM_PARALLEL_MIN_FLOPS 4000000.0
/* Blocks are whole multiples of this many rows/columns (the kernels' register tiles), at
 * least GEMM_MIN_BLOCK long, at most GEMM_MAX_BLOCKS per product. */
#define GEMM_BLOCK_ALIGN 16
#define GEMM_MIN_BLOCK 128
#define GEMM_MAX_BLOCKS 8

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_thread(void) { openblas_set_num_threads(1); }

void igi_blas_single_thread(void) { pthread_once(&blas_once, blas_single_thread); }

typedef struct gemm_job {
    ig_dtype dt;
    bool ta, tb, split_cols, own; /* own: f32 through igi_sgemm512 (sgemm512.c) */
    int64_t M, N, K, lda, ldb, ldc, blocks, unit;
    const char *A, *B;
    char *C;
    double beta;
} gemm_job;

static void call_gemm(const gemm_job *j, const char *A, const char *B, char *C, int64_t M, int64_t N) {
    if (j->own && igi_sgemm512(j->ta, j->tb, M, N, j->K, (const float *)A, j->lda, (const float *)B, j->ldb,
                               (float)j->beta, (float *)C, j->ldc))
        return;
    CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
    if (j->dt == IG_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)j->K, 1.0f, (const float *)A,
                    (blasint)j->lda, (const float *)B, (blasint)j->ldb, (float)j->beta, (float *)C, (blasint)j->ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)j->K, 1.0, (const double *)A,
                    (blasint)j->lda, (const double *)B, (blasint)j->ldb, j->beta, (double *)C, (blasint)j->ldc);
}

/* Blocks [begin, end) of the split dimension, each `unit` rows or columns (the last one
 * shorter), one cblas call per block. */
static void gemm_blocks(int64_t begin, int64_t end, void *arg) {
    const gemm_job *j = arg;
    size_t es = ig_dtype_size(j->dt);
    int64_t dim = j->split_cols ? j->N : j->M;
    for (int64_t b = begin; b < end; b++) {
        int64_t lo = b * j->unit, hi = lo + j->unit < dim ? lo + j->unit : dim;
        if (lo >= hi) return;
        if (j->split_cols) {
            /* Columns [lo, hi) of C and of op(B): B[k][n] is at n (no trans) or n*ldb. */
            const char *B = j->B + (size_t)(j->tb ? lo * j->ldb : lo) * es;
            call_gemm(j, j->A, B, j->C + (size_t)lo * es, j->M, hi - lo);
        } else {
            /* Rows [lo, hi) of C and of op(A): A[m][k] is at m*lda (no trans) or m. */
            const char *A = j->A + (size_t)(j->ta ? lo : lo * j->lda) * es;
            call_gemm(j, A, j->B, j->C + (size_t)lo * j->ldc * es, hi - lo, j->N);
        }
    }
}

void igi_gemm(ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
              const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    IG_ASSERT(dt == IG_F32 || dt == IG_F64);
    igi_blas_single_thread();
    gemm_job j = {.dt = dt, .ta = ta, .tb = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc,
                  .A = A, .B = B, .C = C, .beta = beta};
    j.own = dt == IG_F32 && igi_sgemm512_use(M, N, K);
    /* One packing buffer per thread that may run a block now or call igi_gemm from a
     * parallel region (conv's slots): allocated on the first call, never in a later step. */
    if (j.own) igi_sgemm512_reserve(igi_num_threads());
    double flops = 2.0 * (double)M * (double)N * (double)K;
    j.split_cols = N >= M;
    int64_t dim = j.split_cols ? N : M;
    /* Blocks of at least GEMM_MIN_BLOCK, an even count (two threads balance) up to
     * GEMM_MAX_BLOCKS; all from the shape only. */
    int64_t nb = dim / GEMM_MIN_BLOCK;
    if (nb > GEMM_MAX_BLOCKS) nb = GEMM_MAX_BLOCKS;
    nb &= ~(int64_t)1;
    if (nb < 2 || flops < GEMM_PARALLEL_MIN_FLOPS) {
        call_gemm(&j, A, B, C, M, N);
        return;
    }
    int64_t per = (dim + nb - 1) / nb;
    /* sgemm512's values do not depend on the split; its blocks are whole register tiles. */
    int64_t align = !j.own ? GEMM_BLOCK_ALIGN : j.split_cols ? igi_sgemm512_nr() : igi_sgemm512_mr();
    j.unit = (per + align - 1) / align * align;
    j.blocks = (dim + j.unit - 1) / j.unit;
    igi_parallel_for(j.blocks, 1, gemm_blocks, &j);
}
