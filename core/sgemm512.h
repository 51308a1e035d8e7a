/*
 * core/sgemm512.h — ignis's own single-precision GEMM for CPUs with AVX-512 (sgemm512.c),
 * which igi_gemm (gemm.c) uses instead of OpenBLAS's sgemm where it measured faster.
 * Internal; never installed.
 */
#ifndef IGNIS_CORE_SGEMM512_H
#define IGNIS_CORE_SGEMM512_H

#include <stdbool.h>
#include <stdint.h>

/* Which sgemm igi_gemm runs for f32: AUTO picks by CPU and shape, BLAS always OpenBLAS,
 * OWN always sgemm512 where the CPU has AVX-512 (OpenBLAS otherwise). */
typedef enum igi_sgemm_path { IGI_SGEMM_AUTO, IGI_SGEMM_BLAS, IGI_SGEMM_OWN } igi_sgemm_path;

/* Test and benchmark hook: sets the path for the whole process and returns the previous
 * setting. The environment variable IGNIS_SGEMM=blas (or =own) sets the initial one. */
igi_sgemm_path igi_sgemm_force(igi_sgemm_path p);

/* True when igi_gemm should run C[M,N] = op(A) @ op(B) + beta*C (f32) through
 * igi_sgemm512: the CPU has AVX-512F and the setting and shape say so. */
bool igi_sgemm512_use(int64_t M, int64_t N, int64_t K);

/* Register tile of the kernel: blocks of C that are whole multiples of these (rows,
 * columns) avoid edge tiles. */
int64_t igi_sgemm512_mr(void);
int64_t igi_sgemm512_nr(void);

/* C[M,N] (row-major, ldc) = op(A)[M,K] @ op(B)[K,N] + beta*C on the calling thread, op =
 * transpose when ta / tb, A[m][k] at m*lda + k (or k*lda + m with ta), B likewise. M, N,
 * K >= 0; beta == 0 never reads C. Every element of C is one chain of fused multiply-adds
 * over k = 0..K-1 in order, started from beta*C (or 0), so a value depends only on its
 * row of op(A), its column of op(B) and beta*C: never on M, N, the blocking or how the
 * caller splits C. Returns false (nothing done) when the packing buffers cannot be had. */
bool igi_sgemm512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc);

/* Makes sure n calls can run at once without allocating; igi_gemm calls it with the
 * thread count. (Otherwise the first time two threads pack at once, possibly in the
 * middle of training, one of them allocates its buffer.) */
void igi_sgemm512_reserve(int n);

#endif
