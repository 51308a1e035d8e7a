/*
 * examples/train_fashion_mnist.c — a complete training program against the public API:
 * read Fashion-MNIST (IDX files, gzip'd), train the zoo's `cnn` with SGD + momentum under a
 * one-cycle schedule, and print test accuracy after every epoch.
 *
 *   build/examples/train_fashion_mnist [epochs=3] [data_dir=/usr/share/datasets/fashion-mnist]
 */
#include <ignis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BATCH 64

/* Reads a gzip'd IDX file of unsigned bytes; checks the magic, the dims and the size. */
static uint8_t *read_idx(const char *dir, const char *name, int ndim, int64_t *dims, int64_t *count) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
    unsigned char h[16];
    int hl = 4 + 4 * ndim;
    uint8_t *data = NULL;
    if (gzread(f, h, (unsigned)hl) != hl || h[0] || h[1] || h[2] != 8 || h[3] != ndim) {
        fprintf(stderr, "%s: not an IDX file of %d-dim unsigned bytes\n", path, ndim);
        goto out;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = ((int64_t)h[4 + 4 * i] << 24) | (h[5 + 4 * i] << 16) | (h[6 + 4 * i] << 8) | h[7 + 4 * i];
        if (dims[i] <= 0 || dims[i] > 1000000) { fprintf(stderr, "%s: bad dims\n", path); goto out; }
        n *= dims[i];
    }
    data = malloc((size_t)n);
    if (!data || gzread(f, data, (unsigned)n) != n) {
        fprintf(stderr, "%s: truncated\n", path);
        free(data);
        data = NULL;
        goto out;
    }
    *count = dims[0];
out:
    gzclose(f);
    return data;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) { if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0; fclose(f); }
    return res * 4;
}

/* Copies images idx[0..b) (normalised) and their labels into the batch tensors. */
static void fill_batch(const uint8_t *img, const uint8_t *lab, const int64_t *idx, int64_t b,
                       ig_tensor *x, ig_tensor *y) {
    float *xp = ig_tensor_data(x);
    int64_t *yp = ig_tensor_data(y);
    for (int64_t i = 0; i < b; i++) {
        for (int p = 0; p < 784; p++) xp[i * 784 + p] = (img[idx[i] * 784 + p] / 255.0f - 0.2860f) / 0.3530f;
        yp[i] = lab[idx[i]];
    }
}

static double evaluate(ig_module *net, const uint8_t *img, const uint8_t *lab, int64_t n) {
    int64_t correct = 0, idx[1000];
    ig_tensor *x = ig_empty(IG_DIMS(1000, 1, 28, 28), IG_F32), *y = ig_empty(IG_DIMS(1000), IG_I64);
    ig_module_train(net, false);
    ig_no_grad_begin();
    for (int64_t s = 0; s + 1000 <= n; s += 1000) {
        for (int i = 0; i < 1000; i++) idx[i] = s + i;
        fill_batch(img, lab, idx, 1000, x, y);
        ig_scope *sc = ig_scope_begin();
        ig_tensor *hit = ig_eq(ig_argmax(ig_module_forward(net, x), 1, false), y);
        correct += (int64_t)ig_item(ig_sum(hit, 0, NULL, false));
        ig_scope_end(sc);
    }
    ig_no_grad_end();
    ig_module_train(net, true);
    ig_tensor_free(x);
    ig_tensor_free(y);
    return (double)correct / (double)(n / 1000 * 1000);
}

int main(int argc, char **argv) {
    int epochs = argc > 1 ? atoi(argv[1]) : 3;
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    int64_t d[3], n_train = 0, n_test = 0, nl = 0, ntl = 0;
    uint8_t *tr_img = read_idx(dir, "train-images-idx3-ubyte.gz", 3, d, &n_train);
    uint8_t *tr_lab = read_idx(dir, "train-labels-idx1-ubyte.gz", 1, d, &nl);
    uint8_t *te_img = read_idx(dir, "t10k-images-idx3-ubyte.gz", 3, d, &n_test);
    uint8_t *te_lab = read_idx(dir, "t10k-labels-idx1-ubyte.gz", 1, d, &ntl);
    if (!tr_img || !tr_lab || !te_img || !te_lab || nl != n_train || ntl != n_test || epochs < 1) {
        fprintf(stderr, "usage: %s [epochs] [fashion-mnist dir]  (needs the IDX .gz files)\n", argv[0]);
        return 1;
    }
    ig_manual_seed(0);
    ig_module *net = ig_model_create("cnn", 1, 28, 28, 10);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.05, so.momentum = 0.9, so.weight_decay = 5e-4;
    ig_tensor *flat = net && ig_module_flatten(net) == IG_OK ? ig_module_flat_params(net) : NULL;
    ig_optimizer *opt = flat ? ig_optim_sgd(&flat, 1, &so) : NULL;
    int64_t steps = n_train / BATCH;
    ig_scheduler *sched = opt ? ig_sched_onecycle_lr(opt, so.lr, epochs * steps, 0, 0, 0) : NULL;
    if (!sched) { fprintf(stderr, "setup failed: %s\n", ig_last_error()); return 1; }
    printf("cnn: %lld parameters; %lld training images, %lld test images\n",
           (long long)ig_module_num_params(net), (long long)n_train, (long long)n_test);

    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n_train);
    ig_tensor *x = ig_empty(IG_DIMS(BATCH, 1, 28, 28), IG_F32), *y = ig_empty(IG_DIMS(BATCH), IG_I64);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (int64_t i = 0; i < n_train; i++) perm[i] = i;
    for (int e = 1; e <= epochs; e++) {
        for (int64_t i = n_train - 1; i > 0; i--) { /* Fisher-Yates with xorshift64 */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int64_t j = (int64_t)(rng % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        double loss_sum = 0;
        for (int64_t s = 0; s < steps; s++) {
            fill_batch(tr_img, tr_lab, perm + s * BATCH, BATCH, x, y);
            ig_scope *sc = ig_scope_begin();
            ig_tensor *loss = ig_cross_entropy(ig_module_forward(net, x), y, NULL);
            if (!loss || ig_backward(loss, NULL) != IG_OK || ig_optim_step(opt) != IG_OK) {
                fprintf(stderr, "step failed: %s\n", ig_last_error());
                return 1;
            }
            ig_optim_zero_grad(opt);
            ig_sched_step(sched);
            loss_sum += ig_item(loss);
            ig_scope_end(sc);
        }
        double acc = evaluate(net, te_img, te_lab, n_test); /* before reading RSS */
        printf("epoch %d  train loss %.4f  test accuracy %.2f%%  rss %ld KiB\n", e, loss_sum / (double)steps,
               100.0 * acc, rss_kib());
        fflush(stdout);
    }
    ig_sched_free(sched);
    ig_optim_free(opt);
    ig_module_free(net);
    ig_tensor_free(x), ig_tensor_free(y);
    free(perm), free(tr_img), free(tr_lab), free(te_img), free(te_lab);
    return 0;
}
