/*
 * bench/loader_bench.c — throughput of the data loader: images per second delivered by
 * ig_loader_next, i.e. reading, augmenting and batching, with nothing else running.
 *
 *   build/bench/loader_bench [data_dir=/usr/share/datasets/fashion-mnist] [workers=2]
 *
 * Fashion-MNIST train (60,000 28x28 images) through RandomCrop(28, padding=4) +
 * RandomHorizontalFlip + Normalize, batches of 256, shuffled, on `workers` threads: the
 * median of 5 epochs, printed as images/s (the target is >= 50,000 on 2 threads). Skipped
 * with a message when the files are absent.
 *
 * The IDX files are decoded here by a small private reader into memory, and served through
 * ig_dataset_new (items are u8 -> float / 255, as ToTensor), so the number measures the
 * loader and the transforms.
 * TODO(datasets merge): read through ig_dataset_idx instead, once data/idx.c is merged.
 * TODO(datasets merge): the 32x32 RGB PNG-folder benchmark (target >= 10,000 images/s) goes
 * in bench_png_folder below: export a CIFAR-like folder with ig_dataset_export_png, read it
 * back with ig_dataset_image_folder(root, 3) and time it the same way.
 */
#include <ignis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define BATCH 256
#define RUNS 5

typedef struct images {
    uint8_t *pixels;   /* n * 784 */
    uint8_t *labels;   /* n */
    int64_t n;
    float lut[256];    /* byte -> byte / 255, exactly as a division */
} images;

/* Reads a gzip'd IDX file of unsigned bytes with ndim dims; NULL with a message on error. */
static uint8_t *read_idx_gz(const char *path, int ndim, int64_t *dims) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    unsigned char h[16];
    int hl = 4 + 4 * ndim;
    uint8_t *data = NULL;
    if (gzread(f, h, (unsigned)hl) != hl || h[0] || h[1] || h[2] != 8 || h[3] != ndim) {
        fprintf(stderr, "loader_bench: %s: not an IDX file of %d-dim unsigned bytes\n", path, ndim);
        goto out;
    }
    int64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = ((int64_t)h[4 + 4 * i] << 24) | (h[5 + 4 * i] << 16) | (h[6 + 4 * i] << 8) | h[7 + 4 * i];
        if (dims[i] <= 0 || dims[i] > 10000000) {
            fprintf(stderr, "loader_bench: %s: bad dims\n", path);
            goto out;
        }
        total *= dims[i];
    }
    if (total > ((int64_t)1 << 31)) {
        fprintf(stderr, "loader_bench: %s: too large\n", path);
        goto out;
    }
    data = malloc((size_t)total);
    if (!data || gzread(f, data, (unsigned)total) != (int)total) {
        fprintf(stderr, "loader_bench: %s: truncated\n", path);
        free(data);
        data = NULL;
    }
out:
    gzclose(f);
    return data;
}

static int64_t images_len(void *ctx) { return ((images *)ctx)->n; }

static ig_status images_read(void *ctx, int64_t i, float *x, int64_t *label) {
    const images *im = ctx;
    const uint8_t *p = im->pixels + i * 784;
    for (int k = 0; k < 784; k++) x[k] = im->lut[p[k]];
    *label = im->labels[i];
    return IG_OK;
}

static void images_free(void *ctx) {
    images *im = ctx;
    free(im->pixels);
    free(im->labels);
    free(im);
}

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
    int64_t idims[3], ldims[1];
    images *im = calloc(1, sizeof *im);
    im->pixels = read_idx_gz(ip, 3, idims);
    im->labels = im->pixels ? read_idx_gz(lp, 1, ldims) : NULL;
    if (!im->pixels || !im->labels) {
        printf("loader_bench: Fashion-MNIST not found in %s (need train-images-idx3-ubyte.gz and "
               "train-labels-idx1-ubyte.gz): skipped\n", dir);
        images_free(im);
        return 0;
    }
    if (idims[1] != 28 || idims[2] != 28 || ldims[0] != idims[0]) {
        fprintf(stderr, "loader_bench: %s: expected N 28x28 images and N labels\n", dir);
        images_free(im);
        return 1;
    }
    im->n = idims[0];
    for (int v = 0; v < 256; v++) im->lut[v] = (float)v / 255.0f;
    static const ig_dataset_ops ops = {images_len, images_read, images_free};
    ig_dataset *d = ig_dataset_new(&ops, im, 3, (const int64_t[]){1, 28, 28}, 10, NULL);
    if (!d) {
        fprintf(stderr, "loader_bench: %s\n", ig_last_error());
        images_free(im);
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
           "Normalize, batch %d, median of %d epochs:\n", (long long)im->n, BATCH, RUNS);
    int status = 0;
    int counts[3] = {0, 1, workers};
    for (int k = 0; k < 3; k++) {
        if (k == 2 && (workers == 0 || workers == 1)) break;
        double rate = time_loader(d, t, counts[k]);
        if (rate < 0) {
            status = 1;
            break;
        }
        printf("  %d worker%s %10.0f images/s%s\n", counts[k], counts[k] == 1 ? ": " : "s:", rate,
               k == 2 ? (rate >= 50000 ? "  (target 50,000: met)" : "  (target 50,000: NOT met)") : "");
    }
    ig_transform_free(t);
    ig_dataset_free(d);
    return status;
}

/* TODO(datasets merge): a 32x32 RGB PNG folder through ig_dataset_image_folder (target
 * >= 10,000 images/s on 2 threads); see the note at the top of this file. */
static int bench_png_folder(void) {
    printf("PNG folder (32x32 RGB): skipped, the PNG reader (ig_dataset_image_folder) is not in "
           "this build yet\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int workers = argc > 2 ? atoi(argv[2]) : 2;
    if (workers < 0 || workers > 64) workers = 2;
    int status = bench_fashion_mnist(dir, workers);
    status |= bench_png_folder();
    return status;
}
