/*
 * examples/ddp_train.c — data-parallel training with the C API: join the process group,
 * wrap the model and optimizer in two calls, give each rank its shard of every epoch with
 * the sampler, and reduce the metrics across ranks. Rank 0 alone prints.
 *
 *   mpirun -np 2 build/examples/ddp_train [steps=300] [data_dir=/usr/share/datasets/fashion-mnist]
 *   build/examples/ddp_train              (one process: the same program, no MPI needed)
 *
 * Trains the zoo's mlp on Fashion-MNIST when the folder holds it, otherwise on a synthetic
 * task (the class is which of ten fixed prototypes an image is nearest to). The batch size
 * is per rank: the global batch is BATCH x the number of ranks.
 */
#include <ignis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 64
#define SYNTH_N 4096

/* Synthetic 1x28x28 images: prototype (label) plus noise, from a fixed seed. */
static void synthetic(int64_t i, float *x, int64_t *label) {
    uint64_t r = 0x2545F4914F6CDD1Dull * (uint64_t)(i + 1);
    *label = (int64_t)(i % 10);
    for (int p = 0; p < 784; p++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        float noise = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
        x[p] = ((p * 7 + (int)*label * 13) % 10 == 0 ? 1.0f : 0.0f) + noise;
    }
}

int main(int argc, char **argv) {
    ig_dist *d = ig_dist_init(&argc, &argv);
    if (!d) {
        fprintf(stderr, "ddp_train: %s\n", ig_last_error());
        return 1;
    }
    int rank = ig_dist_rank(d), world = ig_dist_world_size(d);
    int steps = argc > 1 ? atoi(argv[1]) : 300;
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    ig_dataset *ds = ig_dataset_open(dir, true); /* NULL: synthetic data */
    int64_t n = ds ? ig_dataset_len(ds) : SYNTH_N;

    /* The same seed everywhere; ig_ddp_new broadcasts rank 0's weights anyway. */
    ig_manual_seed(0);
    ig_module *net = ig_model_create("mlp", 1, 28, 28, 10);
    ig_tensor *flat = net && ig_module_flatten(net) == IG_OK ? ig_module_flat_params(net) : NULL;
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.05;
    so.momentum = 0.9;
    ig_optimizer *opt = flat ? ig_optim_sgd(&flat, 1, &so) : NULL;
    ig_ddp *ddp = opt ? ig_ddp_new(d, net, opt, NULL) : NULL;
    int64_t per_rank = ig_sampler_count(n, rank, world, true);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(per_rank > 0 ? per_rank : 1));
    ig_tensor *x = ig_empty(IG_DIMS(BATCH, 1, 28, 28), IG_F32), *y = ig_empty(IG_DIMS(BATCH), IG_I64);
    if (!ddp || !idx || !x || !y || per_rank < BATCH) {
        fprintf(stderr, "ddp_train: rank %d: set-up failed: %s\n", rank, ig_last_error());
        ig_dist_abort(d, 1); /* ends the job; returns only in a single process */
        return 1;
    }
    if (rank == 0)
        printf("mlp on %s: %lld images, %d rank(s) x batch %d = global batch %d (%s backend)\n",
               ds ? "Fashion-MNIST" : "synthetic data", (long long)n, world, BATCH, BATCH * world,
               ig_dist_backend(d));

    /* metrics[0..2]: loss sum, correct, count since the last report (summed over ranks). */
    double metrics[3] = {0, 0, 0};
    int64_t epoch = -1, pos = per_rank;
    for (int s = 1; s <= steps; s++) {
        if (pos + BATCH > per_rank) { /* a new epoch: this rank's shard of a new permutation */
            epoch++;
            ig_sampler_indices(n, true, 1234, epoch, rank, world, true, idx);
            pos = 0;
        }
        float *xp = ig_tensor_data(x);
        int64_t *yp = ig_tensor_data(y);
        for (int i = 0; i < BATCH; i++) {
            if (ds) ig_dataset_get(ds, idx[pos + i], xp + i * 784, yp + i);
            else synthetic(idx[pos + i], xp + i * 784, yp + i);
        }
        pos += BATCH;
        ig_scope *sc = ig_scope_begin();
        ig_tensor *logits = ig_module_forward(net, x);
        ig_tensor *loss = ig_cross_entropy(logits, y, NULL);
        ig_status st = loss ? ig_backward(loss, NULL) : ig_last_status();
        if (st == IG_OK) st = ig_ddp_step(ddp);
        if (st != IG_OK) {
            fprintf(stderr, "ddp_train: rank %d: step %d failed: %s\n", rank, s, ig_last_error());
            ig_dist_abort(d, 1); /* one rank's failure ends the whole job */
            return 1;
        }
        ig_optim_zero_grad(opt);
        metrics[0] += ig_item(loss) * BATCH;
        metrics[1] += ig_item(ig_sum(ig_eq(ig_argmax(logits, 1, false), y), 0, NULL, false));
        metrics[2] += BATCH;
        ig_scope_end(sc);
        if (s % 50 == 0 || s == steps) {
            if (ig_dist_all_reduce_doubles(d, metrics, 3) != IG_OK) {
                ig_dist_abort(d, 1);
                return 1;
            }
            if (rank == 0)
                printf("step %4d  epoch %lld  loss %.4f  train accuracy %.2f%%\n", s, (long long)epoch,
                       metrics[0] / metrics[2], 100.0 * metrics[1] / metrics[2]);
            fflush(stdout);
            metrics[0] = metrics[1] = metrics[2] = 0;
        }
    }
    /* Running statistics identical everywhere before anyone saves (no-op for the mlp). */
    if (ig_ddp_sync_buffers(ddp) != IG_OK) {
        ig_dist_abort(d, 1);
        return 1;
    }
    ig_tensor_free(x);
    ig_tensor_free(y);
    free(idx);
    ig_ddp_free(ddp);
    ig_optim_free(opt);
    ig_module_free(net);
    ig_dataset_free(ds);
    ig_dist_finalize(d);
    return 0;
}
