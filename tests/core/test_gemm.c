/*
 * tests/core/test_gemm.c — igi_gemm (core/gemm.c), which splits large products over the
 * thread pool by blocks of rows or columns: ig_matmul gives bitwise the same result with
 * 1, 2 and 3 threads on products large enough to be split (wide, tall, transposed and
 * sliced operands, sizes that are not multiples of the block alignment), and agrees with a
 * plain double-precision loop in the test. The f32 paths (ignis's AVX-512 sgemm in
 * core/sgemm512.c and OpenBLAS, each forced through igi_sgemm_force) match the loop over
 * transposes, sizes around the register tiles and cache blocks, padded leading dimensions,
 * beta 0 over NaN, 1 and -0.75, and K = 0; the own path's split is bitwise one call.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/sgemm512.h"
#include "core/tensor_impl.h"
#include "ignis.h"

/* a @ b for a [M,K] and b [K,N] built from seeded randn, with a optionally the transpose of
 * a [K,M] tensor and b optionally a column slice with step 2; returns the product's floats
 * (malloc'd) and checks it against a plain loop. */
static float *product(int64_t M, int64_t N, int64_t K, bool trans_a, bool sliced_b) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    ig_tensor *a = trans_a ? ig_transpose(ig_randn(IG_DIMS(K, M), IG_F32), 0, 1) : ig_randn(IG_DIMS(M, K), IG_F32);
    ig_tensor *b = sliced_b ? ig_slice(ig_randn(IG_DIMS(K, 2 * N), IG_F32), 1, 0, 2 * N, 2)
                            : ig_randn(IG_DIMS(K, N), IG_F32);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    ig_tensor *c = ig_matmul(a, b);
    cr_assert_not_null(c, "%s", ig_last_error());
    float *out = malloc(sizeof(float) * (size_t)(M * N));
    float *fa = malloc(sizeof(float) * (size_t)(M * K)), *fb = malloc(sizeof(float) * (size_t)(K * N));
    cr_assert(ig_tensor_to_buffer(c, IG_F32, out, M * N) == IG_OK);
    cr_assert(ig_tensor_to_buffer(a, IG_F32, fa, M * K) == IG_OK);
    cr_assert(ig_tensor_to_buffer(b, IG_F32, fb, K * N) == IG_OK);
    for (int64_t i = 0; i < M; i += 7)
        for (int64_t j = 0; j < N; j += 5) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                ref += (double)fa[i * K + k] * fb[k * N + j];
                mag += fabs((double)fa[i * K + k] * fb[k * N + j]);
            }
            cr_assert(fabs(out[i * N + j] - ref) <= 1e-5 * mag + 1e-6, "[%lld,%lld]: %g vs %g", (long long)i,
                      (long long)j, out[i * N + j], ref);
        }
    free(fa);
    free(fb);
    ig_scope_end(s);
    return out;
}

Test(core, gemm_split_is_bitwise_independent_of_threads) {
    int saved = ig_get_num_threads();
    /* 2*M*N*K well above the 4 MFLOP split threshold; wide (split by columns) and tall
     * (split by rows); sizes not multiples of 16. */
    const int64_t shapes[][3] = {{64, 1000, 300}, {517, 70, 200}, {33, 2049, 65}, {300, 300, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int variant = 0; variant < 3; variant++) {
            int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            bool ta = variant == 1, sb = variant == 2;
            ig_set_num_threads(1);
            float *r1 = product(M, N, K, ta, sb);
            ig_set_num_threads(2);
            float *r2 = product(M, N, K, ta, sb);
            ig_set_num_threads(3);
            float *r3 = product(M, N, K, ta, sb);
            cr_assert(memcmp(r1, r2, sizeof(float) * (size_t)(M * N)) == 0, "shape %zu variant %d: 1 vs 2 threads",
                      s, variant);
            cr_assert(memcmp(r1, r3, sizeof(float) * (size_t)(M * N)) == 0, "shape %zu variant %d: 1 vs 3 threads",
                      s, variant);
            free(r1);
            free(r2);
            free(r3);
        }
    ig_set_num_threads(saved);
}

/* ---- igi_gemm's f32 paths against a double-precision loop -------------------------------- */

static float rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* C[M,N] (ldc) = op(A) @ op(B) + beta*C through igi_gemm on path p, with A stored [M,lda]
 * (or [K,lda] with ta) and B [K,ldb] (or [N,ldb] with tb), leading dims pad floats longer
 * than a row, C NaN-filled when beta == 0; every element checked against a double loop. */
static void check_gemm(igi_sgemm_path p, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad,
                       float beta) {
    uint64_t seed = (uint64_t)(M * 1000003 + N * 1009 + K * 17 + ta * 2 + tb + pad);
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *B = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    for (int64_t i = 0; i < arows * lda; i++) A[i] = rnd(&seed);
    for (int64_t i = 0; i < brows * ldb; i++) B[i] = rnd(&seed);
    for (int64_t i = 0; i < M * ldc; i++) C[i] = C0[i] = beta == 0.0f ? NAN : rnd(&seed);
    igi_sgemm_path was = igi_sgemm_force(p);
    igi_gemm(IG_F32, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    igi_sgemm_force(was);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            if (j >= N) { /* the padding past each row of C is never written */
                cr_assert(memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float)) == 0, "pad [%lld,%lld] written",
                          (long long)i, (long long)j);
                continue;
            }
            double ref = beta == 0.0f ? 0.0 : (double)beta * C0[i * ldc + j], mag = fabs(ref);
            for (int64_t k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k], b = tb ? B[j * ldb + k] : B[k * ldb + j];
                ref += a * b;
                mag += fabs(a * b);
            }
            float got = C[i * ldc + j];
            cr_assert(fabs(got - ref) <= 1e-5 * mag + 1e-6, "path %d ta %d tb %d %lldx%lldx%lld beta %g [%lld,%lld]: %g vs %g",
                      (int)p, ta, tb, (long long)M, (long long)N, (long long)K, beta, (long long)i, (long long)j,
                      got, ref);
        }
    free(A);
    free(B);
    free(C);
    free(C0);
}

/* Sizes around the register tiles (MR rows x NR columns) and the K slices. */
static void check_sizes(igi_sgemm_path p) {
    int64_t mr = igi_sgemm512_mr(), nr = igi_sgemm512_nr();
    const int64_t ms[] = {1, 2, mr - 1, mr, mr + 1, 31, 33, 47, 49, 3 * mr + 5};
    const int64_t ns[] = {1, 7, 15, 16, 17, nr - 1, nr, nr + 1, 31, 33, 47, 49, 2 * nr + 3};
    const int64_t ks[] = {0, 1, 2, 17, 300, 777};
    for (int t = 0; t < 4; t++)
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b += (a % 3) + 1)
                for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
                    float beta = (a + b + c) % 3 == 0 ? 0.0f : (a + b + c) % 3 == 1 ? 1.0f : -0.75f;
                    check_gemm(p, t & 1, t >> 1, ms[a], ns[b], ks[c], (int64_t)((a + c) % 3) * 5, beta);
                }
}

Test(core, gemm_f32_own_path_matches_double_loop) {
    check_sizes(IGI_SGEMM_OWN);
    /* Larger than one cache block in every dimension (M > MC, N > NC, K > KC). */
    for (int t = 0; t < 4; t++) {
        check_gemm(IGI_SGEMM_OWN, t & 1, t >> 1, 301, 1100, 530, 3, 0.0f);
        check_gemm(IGI_SGEMM_OWN, t & 1, t >> 1, 140, 70, 1030, 0, 1.0f);
    }
}

Test(core, gemm_f32_blas_path_matches_double_loop) {
    check_sizes(IGI_SGEMM_BLAS);
}

Test(core, gemm_f32_beta0_never_reads_c_and_k0_scales) {
    for (int p = IGI_SGEMM_BLAS; p <= IGI_SGEMM_OWN; p++) {
        /* K = 0: C = beta*C, and zeros over NaN with beta 0. */
        float A[1] = {1}, B[1] = {1}, C[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, D[6] = {1, 2, 3, 4, 5, 6};
        igi_sgemm_path was = igi_sgemm_force((igi_sgemm_path)p);
        igi_gemm(IG_F32, false, false, 2, 3, 0, A, 1, B, 3, 0.0, C, 3);
        igi_gemm(IG_F32, false, false, 2, 3, 0, A, 1, B, 3, 0.5, D, 3);
        igi_sgemm_force(was);
        for (int i = 0; i < 6; i++) {
            cr_assert(C[i] == 0.0f, "path %d C[%d] = %g", p, i, C[i]);
            cr_assert(D[i] == 0.5f * (float)(i + 1), "path %d D[%d] = %g", p, i, D[i]);
        }
    }
}

/* The own path is one FMA chain per element: a product split over threads (ig_matmul at
 * 1 and 3 threads) is bitwise one unsplit igi_sgemm512 call, and the f32 paths agree. */
Test(core, gemm_own_path_split_is_bitwise_one_call) {
    int saved = ig_get_num_threads();
    igi_sgemm_path was = igi_sgemm_force(IGI_SGEMM_OWN);
    const int64_t shapes[][3] = {{64, 1000, 300}, {517, 70, 200}, {256, 784, 512}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        ig_set_num_threads(1);
        float *r1 = product(M, N, K, true, false);
        ig_set_num_threads(3);
        float *r3 = product(M, N, K, true, false);
        cr_assert(memcmp(r1, r3, sizeof(float) * (size_t)(M * N)) == 0, "shape %zu: 1 vs 3 threads", s);
        /* The same operands as product(): a = transpose of randn [K,M], b = randn [K,N]. */
        ig_scope *sc = ig_scope_begin();
        ig_manual_seed(11);
        ig_tensor *a = ig_randn(IG_DIMS(K, M), IG_F32), *b = ig_randn(IG_DIMS(K, N), IG_F32);
        float *one = malloc(sizeof(float) * (size_t)(M * N));
        if (igi_sgemm512(true, false, M, N, K, ig_tensor_data(a), M, ig_tensor_data(b), N, 0.0f, one, N))
            cr_assert(memcmp(r1, one, sizeof(float) * (size_t)(M * N)) == 0, "shape %zu: split vs one call", s);
        free(one);
        ig_scope_end(sc);
        free(r1);
        free(r3);
    }
    igi_sgemm_force(was);
    ig_set_num_threads(saved);
}
