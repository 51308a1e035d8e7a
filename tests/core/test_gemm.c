/*
 * tests/core/test_gemm.c — igi_gemm (core/gemm.c), which splits large products over the
 * thread pool by blocks of rows or columns: ig_matmul gives bitwise the same result with
 * 1, 2 and 3 threads on products large enough to be split (wide, tall, transposed and
 * sliced operands, sizes that are not multiples of the block alignment), and agrees with a
 * plain double-precision loop in the test.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

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
