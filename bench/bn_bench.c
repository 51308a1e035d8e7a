/*
 * bench/bn_bench.c — batch norm's CPU training path on resnet8's shapes (bench/NOTES.md).
 *
 * For each shape [N,C,H,W] (f32 by default): the training forward (batch statistics,
 * running-stat update, weight and bias) and the backward kernel alone (the node's backward
 * function called directly, so no gradient accumulation into the leaves is timed), each the
 * best over `reps` repeats of `calls` calls, in process CPU time (user + sys, steadier than
 * wall time on a shared machine). Runs on one pool thread unless told otherwise.
 * Usage: bn_bench [batch=64] [threads=1] [reps=25] [calls=5] [f64]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/tensor_impl.h"
#include "../ignis.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best per-call forward and backward times (seconds) of batch norm on x [N,C,H,H]. */
static void time_shape(int64_t N, int64_t C, int64_t H, ig_dtype dt, int reps, int calls, double *fwd,
                       double *bwd) {
    ig_scope *outer = ig_scope_begin();
    ig_manual_seed(7);
    ig_tensor *x = ig_randn(IG_DIMS(N, C, H, H), dt), *g = ig_randn(IG_DIMS(N, C, H, H), dt);
    ig_tensor *w = ig_randn(IG_DIMS(C), dt), *b = ig_randn(IG_DIMS(C), dt);
    ig_tensor *rm = ig_zeros(IG_DIMS(C), dt), *rv = ig_ones(IG_DIMS(C), dt);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    *fwd = *bwd = 1e30;
    for (int r = 0; r < reps; r++) {
        double tf = 0, tb = 0;
        for (int k = 0; k < calls; k++) {
            ig_scope *s = ig_scope_begin();
            double t0 = cpu_now();
            ig_tensor *y = ig_batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
            double t1 = cpu_now();
            if (!y || !y->node) {
                fprintf(stderr, "bn_bench: %s\n", ig_last_error());
                exit(1);
            }
            ig_tensor *gin[3] = {NULL, NULL, NULL};
            ig_no_grad_begin();
            double t2 = cpu_now();
            ig_status st = y->node->backward(y->node, g, gin);
            double t3 = cpu_now();
            ig_no_grad_end();
            if (st != IG_OK) {
                fprintf(stderr, "bn_bench: %s\n", ig_last_error());
                exit(1);
            }
            tf += t1 - t0;
            tb += t3 - t2;
            ig_scope_end(s);
        }
        if (tf / calls < *fwd) *fwd = tf / calls;
        if (tb / calls < *bwd) *bwd = tb / calls;
    }
    ig_scope_end(outer);
}

int main(int argc, char **argv) {
    int64_t N = argc > 1 ? atoll(argv[1]) : 64;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    int reps = argc > 3 ? atoi(argv[3]) : 25, calls = argc > 4 ? atoi(argv[4]) : 5;
    ig_dtype dt = argc > 5 && strcmp(argv[5], "f64") == 0 ? IG_F64 : IG_F32;
    if (N < 2 || threads < 1 || reps < 1 || calls < 1) {
        fprintf(stderr, "usage: bn_bench [batch=64] [threads=1] [reps=25] [calls=5] [f64]\n");
        return 2;
    }
    ig_set_num_threads(threads);
    static const int64_t shapes[3][2] = {{16, 28}, {32, 14}, {64, 7}}; /* C, H */
    double total_f = 0, total_b = 0;
    printf("batch_norm training, %s, %d thread(s), best of %d x %d calls, CPU ms per call\n",
           ig_dtype_name(dt), threads, reps, calls);
    for (int i = 0; i < 3; i++) {
        double f, b;
        time_shape(N, shapes[i][0], shapes[i][1], dt, reps, calls, &f, &b);
        printf("  [%lld,%lld,%lld,%lld]  forward %.3f  backward %.3f\n", (long long)N, (long long)shapes[i][0],
               (long long)shapes[i][1], (long long)shapes[i][1], 1e3 * f, 1e3 * b);
        total_f += f;
        total_b += b;
    }
    printf("  total  forward %.3f  backward %.3f  both %.3f\n", 1e3 * total_f, 1e3 * total_b,
           1e3 * (total_f + total_b));
    return 0;
}
