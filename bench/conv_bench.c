/*
 * bench/conv_bench.c — ig_conv2d forward and backward on the zoo ResNets' 3x3 shapes,
 * direct kernels (core/ops/conv3x3.c) against the im2col + BLAS path on the same inputs.
 *
 * Usage: conv_bench [batch] [threads] [reps]   (defaults 64, 1, 15)
 *
 * Per shape and path it prints the best forward and forward+backward time of reps runs in
 * CPU seconds of this process (so another process on the machine inflates it less than
 * wall time), and the GFLOP/s of forward + both gradients (3x the forward FLOPs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../core/ops/conv3x3.h"
#include "ignis.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    const char *name;
    int64_t C, O, H, stride;
} shape;

int main(int argc, char **argv) {
    int64_t N = argc > 1 ? atoll(argv[1]) : 64;
    int threads = argc > 2 ? atoi(argv[2]) : 1, reps = argc > 3 ? atoi(argv[3]) : 15;
    if (N < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "usage: conv_bench [batch >= 1] [threads >= 1] [reps >= 1]\n");
        return 2;
    }
    ig_set_num_threads(threads);
    ig_manual_seed(1);
    const shape shapes[] = {{"16->16 28x28", 16, 16, 28, 1}, {"16->32 28x28 s2", 16, 32, 28, 2},
                            {"32->32 14x14", 32, 32, 14, 1}, {"32->64 14x14 s2", 32, 64, 14, 2},
                            {"64->64 7x7", 64, 64, 7, 1}};
    printf("conv_bench: batch %lld, %d thread(s), best of %d, CPU ms\n", (long long)N, threads, reps);
    printf("%-18s %-7s %10s %12s %10s\n", "shape", "path", "fwd_ms", "fwd+bwd_ms", "GFLOP/s");
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape *s = &shapes[k];
        int64_t Ho = (s->H - 1) / s->stride + 1;
        double flops = 3.0 * 2.0 * (double)(N * s->O * Ho * Ho) * (double)(s->C * 9);
        ig_scope *sc = ig_scope_begin();
        ig_tensor *x = ig_randn(IG_DIMS(N, s->C, s->H, s->H), IG_F32);
        ig_tensor *w = ig_randn(IG_DIMS(s->O, s->C, 3, 3), IG_F32);
        ig_tensor *g = ig_randn(IG_DIMS(N, s->O, Ho, Ho), IG_F32);
        ig_set_requires_grad(x, true);
        ig_set_requires_grad(w, true);
        ig_conv2d_params p = {.padding = {1, 1}, .stride = {(int)s->stride, (int)s->stride}};
        for (int path = 0; path < 2; path++) {
            bool was = igi_c3_set_enabled(path == 0);
            double best_f = 1e30, best_fb = 1e30;
            for (int r = 0; r < reps + 2; r++) {
                ig_scope *it = ig_scope_begin();
                double t0 = cpu_now();
                ig_tensor *y = ig_conv2d(x, w, NULL, &p);
                double t1 = cpu_now();
                if (!y || ig_backward(y, g) != IG_OK) {
                    fprintf(stderr, "conv_bench: %s\n", ig_last_error());
                    return 1;
                }
                double t2 = cpu_now();
                ig_scope_end(it);
                ig_zero_grad(x);
                ig_zero_grad(w);
                if (r < 2) continue; /* warm-up: the caching allocator fills */
                if (t1 - t0 < best_f) best_f = t1 - t0;
                if (t2 - t0 < best_fb) best_fb = t2 - t0;
            }
            igi_c3_set_enabled(was);
            printf("%-18s %-7s %10.3f %12.3f %10.1f\n", s->name, path == 0 ? "direct" : "im2col", 1e3 * best_f,
                   1e3 * best_fb, flops / best_fb * 1e-9);
        }
        ig_scope_end(sc);
    }
    return 0;
}
