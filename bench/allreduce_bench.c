/*
 * bench/allreduce_bench.c — costs of data-parallel training over MPI (run by `make bench`
 * when MPI is built in: mpirun -np 2 build/bench/allreduce_bench).
 *
 *   (a) all-reduce of resnet20's gradient bytes through the bucketed path (ig_ddp's bucket
 *       plan, one nonblocking ring all-reduce per bucket (dist/mpi.c) started in order,
 *       then all waited for, as ig_ddp_step does) vs. one blocking MPI_Allreduce of the
 *       same bytes; the ratio should be at most 1.1.
 *   (b) the training step time of resnet20 (batch per rank, 3x32x32 inputs) with the
 *       bucket all-reduces overlapped with backward vs. started only at the step
 *       (opts.no_overlap).
 * The machine is noisy: each number is the median of several repeats (rank 0's clock,
 * after a barrier). Usage: allreduce_bench [batch=16] [steps=6] [repeats=5] [bucket_kib=0 (default plan)]
 */
#include <stdio.h>
#include <stdlib.h>

#ifndef IGNIS_WITH_MPI
int main(void) {
    printf("allreduce_bench: skipped (this build has no MPI)\n");
    return 0;
}
#else

#include <mpi.h>
#include <time.h>

#include "../dist/dist_impl.h"
#include "../ignis.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(ig_dist *d, const char *what) {
    fprintf(stderr, "allreduce_bench: %s: %s\n", what, ig_last_error());
    ig_dist_abort(d, 1);
}

/* One training step of m on a fixed random batch (made by the caller). */
static void train_step(ig_dist *d, ig_module *m, ig_optimizer *o, ig_ddp *p, ig_tensor *x, ig_tensor *y) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *loss = ig_cross_entropy(ig_module_forward(m, x), y, NULL);
    if (!loss || ig_backward(loss, NULL) != IG_OK || ig_ddp_step(p) != IG_OK) die(d, "step");
    ig_optim_zero_grad(o);
    ig_scope_end(s);
}

int main(int argc, char **argv) {
    ig_dist *d = ig_dist_init(&argc, &argv);
    if (!d) {
        fprintf(stderr, "allreduce_bench: %s\n", ig_last_error());
        return 1;
    }
    int batch = argc > 1 ? atoi(argv[1]) : 16, steps = argc > 2 ? atoi(argv[2]) : 6;
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    int64_t bucket_kib = argc > 4 ? atoll(argv[4]) : 0;
    if (batch < 2 || steps < 1 || repeats < 1 || repeats > 64) {
        fprintf(stderr, "usage: mpirun -np 2 %s [batch>=2] [steps>=1] [repeats 1..64] [bucket_kib]\n", argv[0]);
        ig_dist_finalize(d);
        return 2;
    }
    int rank = ig_dist_rank(d), world = ig_dist_world_size(d);
    ig_ddp_opts opts = {.bucket_bytes = bucket_kib * 1024, .first_bucket_bytes = bucket_kib ? bucket_kib * 256 : 0};

    ig_manual_seed(0);
    ig_module *m = ig_model_create("resnet20", 3, 32, 32, 10);
    ig_tensor *flat = m && ig_module_flatten(m) == IG_OK ? ig_module_flat_params(m) : NULL;
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.01;
    ig_optimizer *o = flat ? ig_optim_sgd(&flat, 1, &so) : NULL;
    ig_ddp *p = o ? ig_ddp_new(d, m, o, &opts) : NULL;
    if (!p) die(d, "set-up");
    ig_tensor *g = ig_module_flat_grads(m);
    int64_t n = ig_tensor_numel(g);
    float *gp = ig_tensor_data(g);
    int nb = igi_ddp_num_buckets(p);
    if (rank == 0)
        printf("allreduce_bench: %d ranks, resnet20 gradients %lld floats (%.2f MiB) in %d buckets\n", world,
               (long long)n, (double)n * 4 / (1 << 20), nb);

    /* (a) bucketed vs. one MPI_Allreduce, ITERS each per repeat, alternating. */
    enum { ITERS = 50 };
    double tb[64], to[64];
    igi_dist_req *reqs = calloc((size_t)nb, sizeof *reqs);
    for (int rep = -1; rep < repeats; rep++) { /* rep -1: warm-up */
        ig_dist_barrier(d);
        double t0 = now();
        for (int it = 0; it < ITERS; it++) {
            for (int k = 0; k < nb; k++) {
                int64_t off, cnt;
                igi_ddp_bucket_range(p, k, &off, &cnt);
                if (d->be->iall_reduce_start(d, gp + off, cnt, IG_F32, &reqs[k], "bench") != IG_OK) die(d, "start");
            }
            for (int k = 0; k < nb; k++)
                if (d->be->iall_reduce_wait(d, &reqs[k], "bench") != IG_OK) die(d, "wait");
        }
        double t1 = now();
        ig_dist_barrier(d);
        double t2 = now();
        for (int it = 0; it < ITERS; it++)
            if (MPI_Allreduce(MPI_IN_PLACE, gp, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
                die(d, "MPI_Allreduce");
        double t3 = now();
        if (rep >= 0) {
            tb[rep] = (t1 - t0) / ITERS;
            to[rep] = (t3 - t2) / ITERS;
        }
    }
    for (int k = 0; k < nb; k++) d->be->req_release(d, &reqs[k]);
    free(reqs);
    double mb = median(tb, repeats), mo = median(to, repeats);
    if (rank == 0)
        printf("allreduce_bench: (a) all-reduce of %.2f MiB: bucketed %.3f ms, one MPI_Allreduce %.3f ms, "
               "ratio %.2fx (target <= 1.1x)\n",
               (double)n * 4 / (1 << 20), 1e3 * mb, 1e3 * mo, mb / mo);
    ig_ddp_free(p);

    /* (b) step time with and without overlap (separate wrappers on the same model). */
    ig_tensor *x = ig_randn(IG_DIMS(batch, 3, 32, 32), IG_F32);
    ig_tensor *y = ig_randint(0, 10, IG_DIMS(batch), IG_I64);
    ig_ddp_opts no = opts;
    no.no_overlap = true;
    double sov[64], sno[64];
    for (int rep = -1; rep < repeats; rep++) {
        for (int i = 0; i < 2; i++) {
            int mode = (i + rep + 1) % 2; /* alternate which runs first */
            /* One wrapper at a time: each installs its own hooks on the parameters. */
            ig_ddp *q = ig_ddp_new(d, m, o, mode == 0 ? &opts : &no);
            if (!q) die(d, "ig_ddp_new");
            ig_dist_barrier(d);
            double t0 = now();
            for (int s = 0; s < steps; s++) train_step(d, m, o, q, x, y);
            ig_dist_barrier(d);
            double t = (now() - t0) / steps;
            if (rep >= 0) (mode == 0 ? sov : sno)[rep] = t;
            ig_ddp_free(q);
        }
    }
    double mov = median(sov, repeats), mno = median(sno, repeats);
    if (rank == 0)
        printf("allreduce_bench: (b) resnet20 step, batch %d per rank: overlapped %.1f ms, not overlapped %.1f ms "
               "(%.2fx)\n",
               batch, 1e3 * mov, 1e3 * mno, mno / mov);
    ig_tensor_free(x);
    ig_tensor_free(y);
    ig_optim_free(o);
    ig_module_free(m);
    ig_dist_finalize(d);
    return 0;
}
#endif
