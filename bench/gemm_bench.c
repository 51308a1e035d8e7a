/*
 * bench/gemm_bench.c — igi_gemm (f32) on the zoo MLP's shapes, ignis's AVX-512 sgemm
 * (core/sgemm512.c) against OpenBLAS's sgemm on the same operands.
 *
 * Usage: gemm_bench [batch] [reps] [ta tb M N K]   (defaults 256, 9; a shape given on
 * the command line replaces the list)
 *
 * Shapes: each Linear layer of the mlp (784 -> 512 -> 256 -> 10) at the given batch B,
 * as igi_gemm sees them: forward y = x @ W^T (tb), input gradient dX = dY @ W, weight
 * gradient dW = dY^T @ x (ta); then a square 1024^3 product. One thread. Per shape and
 * path it prints the best of reps timings in CPU seconds of this process (each timing
 * repeats the product until it has run ~20 ms) as GFLOP/s, the two paths in alternation,
 * and which one igi_gemm picks for the shape by default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../core/sgemm512.h"
#include "../core/tensor_impl.h"
#include "ignis.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    const char *name;
    bool ta, tb;
    int64_t M, N, K; /* 0 in M or K: the batch */
} shape;

static float *filled(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 7919 % 2003) - 1001) / 1001.0f;
    return p;
}

int main(int argc, char **argv) {
    int64_t Bt = argc > 1 ? atoll(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 9;
    shape custom = {"custom", false, false, 0, 0, 0};
    if (argc > 7) {
        custom.ta = atoi(argv[3]) != 0;
        custom.tb = atoi(argv[4]) != 0;
        custom.M = atoll(argv[5]);
        custom.N = atoll(argv[6]);
        custom.K = atoll(argv[7]);
    }
    if (Bt < 1 || reps < 1 || (argc > 3 && (argc < 8 || custom.M < 1 || custom.N < 1 || custom.K < 1))) {
        fprintf(stderr, "usage: gemm_bench [batch >= 1] [reps >= 1] [ta tb M N K (>= 1)]\n");
        return 2;
    }
    ig_set_num_threads(1);
    const shape shapes[] = {{"fc1 fwd", false, true, 0, 512, 784},  {"fc1 dW", true, false, 512, 784, 0},
                            {"fc2 fwd", false, true, 0, 256, 512},  {"fc2 dX", false, false, 0, 512, 256},
                            {"fc2 dW", true, false, 256, 512, 0},   {"fc3 fwd", false, true, 0, 10, 256},
                            {"fc3 dX", false, false, 0, 256, 10},   {"fc3 dW", true, false, 10, 256, 0},
                            {"1024^3", false, false, 1024, 1024, 1024}};
    printf("gemm_bench: batch %lld, 1 thread, best of %d, GFLOP/s (CPU time)\n", (long long)Bt, reps);
    printf("%-8s %2s %2s %5s %5s %5s %9s %9s %7s %s\n", "shape", "ta", "tb", "M", "N", "K", "sgemm512", "openblas",
           "ratio", "igi_gemm");
    size_t nshapes = argc > 7 ? 1 : sizeof shapes / sizeof shapes[0];
    for (size_t s = 0; s < nshapes; s++) {
        const shape *sh = argc > 7 ? &custom : &shapes[s];
        int64_t M = sh->M ? sh->M : Bt, N = sh->N, K = sh->K ? sh->K : Bt;
        /* Stored shapes: A [M,K] or [K,M] with ta; B [K,N] or [N,K] with tb. */
        int64_t lda = sh->ta ? M : K, ldb = sh->tb ? K : N;
        float *A = filled(M * K), *B = filled(K * N), *C = filled(M * N);
        double flops = 2.0 * (double)M * (double)N * (double)K;
        int inner = (int)(4e7 / flops) + 1; /* ~20 ms at 2 GFLOP/ms */
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < reps + 1; r++)
            for (int path = 0; path < 2; path++) {
                igi_sgemm_path was = igi_sgemm_force(path == 0 ? IGI_SGEMM_OWN : IGI_SGEMM_BLAS);
                double t0 = cpu_now();
                for (int i = 0; i < inner; i++)
                    igi_gemm(IG_F32, sh->ta, sh->tb, M, N, K, A, lda, B, ldb, 0.0, C, N);
                double t = (cpu_now() - t0) / inner;
                igi_sgemm_force(was);
                if (r > 0 && t < best[path]) best[path] = t; /* the first round warms up */
            }
        printf("%-8s %2d %2d %5lld %5lld %5lld %9.1f %9.1f %7.2f %s\n", sh->name, sh->ta, sh->tb, (long long)M,
               (long long)N, (long long)K, flops / best[0] * 1e-9, flops / best[1] * 1e-9, best[1] / best[0],
               igi_sgemm512_use(M, N, K) ? "sgemm512" : "openblas");
        free(A);
        free(B);
        free(C);
    }
    return 0;
}
