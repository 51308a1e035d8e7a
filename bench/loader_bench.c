/*
 * bench/loader_bench.c — throughput of the data loader: images per second delivered by
 * ig_loader_next, i.e. reading, decoding, augmenting and batching, with nothing else running.
 *
 *   build/bench/loader_bench [data_dir=/usr/share/datasets/fashion-mnist] [workers=2]
 *
 * 1. Fashion-MNIST train (60,000 28x28 images, read by ig_dataset_idx into memory) through
 *    RandomCrop(28, padding=4) + RandomHorizontalFlip + Normalize, batches of 256, shuffled:
 *    the median of 5 epochs (target >= 50,000 images/s on 2 threads). Skipped with a message
 *    when the files are absent.
 * 2. A 32x32 RGB PNG folder (5,000 images in 10 classes, CIFAR-sized): written to a temp
 *    folder with ig_dataset_export_png from a synthetic dataset (smooth colour gradients plus
 *    noise, so the files compress like photos: about 2.5 KB each, as CIFAR-10 PNGs), read back with
 *    ig_dataset_image_folder (every item is a file read + a PNG decode) through
 *    RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize: the median of 5 epochs
 *    (target >= 10,000 images/s on 2 threads). The temp folder is removed afterwards.
 */
#define _XOPEN_SOURCE 700 /* nftw (an XSI function), before the first #include */
#include <ftw.h>
#include <ignis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define RUNS 5
#define PNG_IMAGES 5000

static int report(ig_dataset *d, const ig_transform *t, int workers, double target);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median images/s over RUNS epochs of d through t on `workers` threads (-1 on error). */
static double time_loader(ig_dataset *d, const ig_transform *t, int workers) {
    ig_loader_opts o = {.batch_size = BATCH, .shuffle = true, .seed = 1, .num_workers = workers, .transform = t};
    ig_loader *l = ig_loader_new(d, &o);
    if (!l) {
        fprintf(stderr, "loader_bench: %s\n", ig_last_error());
        return -1;
    }
    double rates[RUNS];
    volatile float sink = 0; /* touch each batch as a trainer would */
    for (int run = 0; run < RUNS; run++) {
        ig_loader_start_epoch(l, run);
        double t0 = now_s();
        int64_t seen = 0;
        ig_tensor *x, *y;
        int r;
        while ((r = ig_loader_next(l, &x, &y)) == 1) {
            seen += ig_tensor_size(x, 0);
            sink += ((const float *)ig_tensor_data(x))[0];
        }
        double dt = now_s() - t0;
        if (r < 0) {
            fprintf(stderr, "loader_bench: %s\n", ig_last_error());
            ig_loader_free(l);
            return -1;
        }
        rates[run] = (double)seen / dt;
    }
    (void)sink;
    ig_loader_free(l);
    qsort(rates, RUNS, sizeof rates[0], cmp_double);
    return rates[RUNS / 2];
}

static int bench_fashion_mnist(const char *dir, int workers) {
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", dir);
    if (access(ip, R_OK) != 0 || access(lp, R_OK) != 0) {
        printf("loader_bench: Fashion-MNIST not found in %s (need train-images-idx3-ubyte.gz and "
               "train-labels-idx1-ubyte.gz): skipped\n", dir);
        return 0;
    }
    ig_dataset *d = ig_dataset_idx(ip, lp);
    if (!d) {
        fprintf(stderr, "loader_bench: %s\n", ig_last_error());
        return 1;
    }
    ig_transform *t = ig_tf_compose(3, (ig_transform *[]){
        ig_tf_random_crop(28, 28, 4, IG_PAD_CONSTANT), ig_tf_random_hflip(0.5),
        ig_tf_normalize(1, (const float[]){0.2860f}, (const float[]){0.3530f})});
    if (!t) {
        fprintf(stderr, "loader_bench: %s\n", ig_last_error());
        ig_dataset_free(d);
        return 1;
    }
    printf("Fashion-MNIST train (%lld images), RandomCrop(28, padding=4) + RandomHorizontalFlip + "
           "Normalize, batch %d, median of %d epochs:\n", (long long)ig_dataset_len(d), BATCH, RUNS);
    int status = report(d, t, workers, 50000);
    ig_transform_free(t);
    ig_dataset_free(d);
    return status;
}

/* Times d through t on 0, 1 and `workers` threads, printing each; 1 on error. */
static int report(ig_dataset *d, const ig_transform *t, int workers, double target) {
    int counts[3] = {0, 1, workers};
    for (int k = 0; k < 3; k++) {
        if (k == 2 && (workers == 0 || workers == 1)) break;
        double rate = time_loader(d, t, counts[k]);
        if (rate < 0) return 1;
        char note[64] = "";
        if (k == 2) snprintf(note, sizeof note, "  (target %.0f: %s)", target, rate >= target ? "met" : "NOT met");
        printf("  %d worker%s %10.0f images/s%s\n", counts[k], counts[k] == 1 ? ": " : "s:", rate, note);
    }
    return 0;
}

/* The synthetic CIFAR-like source: item i is a smooth colour gradient whose direction and
 * colours depend on i, plus +-8 levels of hashed noise, quantised to bytes (as a PNG holds). */
static int64_t synth_len(void *ctx) {
    (void)ctx;
    return PNG_IMAGES;
}

static uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static ig_status synth_read(void *ctx, int64_t i, float *x, int64_t *label) {
    (void)ctx;
    uint32_t seed = hash32((uint32_t)i * 2654435761U);
    for (int c = 0; c < 3; c++) {
        int base = (int)((seed >> (8 * c)) & 0xff);
        int dx = (int)((seed >> (3 * c + 24)) & 7) - 3, dy = (int)((seed >> (3 * c + 12)) & 7) - 3;
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                uint32_t h = hash32((uint32_t)(((i * 3 + c) * 32 + y) * 32 + xx));
                int v = base + dx * xx + dy * y + (int)(h & 15) - 8;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                x[(c * 32 + y) * 32 + xx] = (float)v / 255.0f;
            }
    }
    *label = i % 10;
    return IG_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int bench_png_folder(int workers) {
    char root[] = "/tmp/ignis-loader-bench.XXXXXX";
    if (!mkdtemp(root)) {
        perror("loader_bench: mkdtemp");
        return 1;
    }
    char folder[64];
    snprintf(folder, sizeof folder, "%s/train", root);
    static const ig_dataset_ops ops = {synth_len, synth_read, NULL};
    ig_dataset *src = ig_dataset_new(&ops, NULL, 3, (const int64_t[]){3, 32, 32}, 10, NULL);
    ig_dataset *d = NULL;
    ig_transform *t = NULL;
    int status = 1;
    if (!src || ig_dataset_export_png(src, folder) != IG_OK) goto out;
    d = ig_dataset_image_folder(folder, 3);
    t = d ? ig_tf_compose(3, (ig_transform *[]){
                ig_tf_random_crop(32, 32, 4, IG_PAD_CONSTANT), ig_tf_random_hflip(0.5),
                ig_tf_normalize(3, (const float[]){0.4914f, 0.4822f, 0.4465f},
                                (const float[]){0.2470f, 0.2435f, 0.2616f})})
          : NULL;
    if (!t) goto out;
    printf("PNG folder (%d 32x32 RGB images, decoded from disk every epoch), RandomCrop(32, padding=4) + "
           "RandomHorizontalFlip + Normalize, batch %d, median of %d epochs:\n", PNG_IMAGES, BATCH, RUNS);
    status = report(d, t, workers, 10000);
out:
    if (status && !t) fprintf(stderr, "loader_bench: %s\n", ig_last_error());
    ig_transform_free(t);
    ig_dataset_free(d);
    ig_dataset_free(src);
    if (nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) fprintf(stderr, "loader_bench: could not remove %s\n", root);
    return status;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int workers = argc > 2 ? atoi(argv[2]) : 2;
    if (workers < 0 || workers > 64) workers = 2;
    int status = bench_fashion_mnist(dir, workers);
    status |= bench_png_folder(workers);
    return status;
}
