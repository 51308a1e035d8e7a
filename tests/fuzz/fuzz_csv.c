/*
 * tests/fuzz/fuzz_csv.c — libFuzzer target for the numeric CSV reader (ig_dataset_csv,
 * data/csv.c), through its public entry point: the bytes go to a real file.
 *
 *   make fuzz-run FUZZ_TARGETS=csv FUZZ_SECONDS=60
 *
 * Input: one option byte, then the file's bytes (at most MAX_FILE of them; longer inputs
 * are skipped, the reader being line by line anyway).
 *   byte 0: bit 0 has_header; bits 1-3 the label column (LABEL_COLUMNS); bits 4-6 the
 *           loader's batch size - 1; bit 7 the loader shuffles and drops the last batch.
 * Whatever the bytes, the reader must return a dataset or NULL with a status and a message
 * naming the reader and the file. A dataset it returns must keep its promises: every item
 * readable, every feature a finite float, every label in 0..num_classes-1; then one epoch
 * through a loader must deliver exactly those items in [B,F] / [B] batches. Nothing may leak.
 * Seeds: tests/fuzz/csv_seeds.sh; dictionary: tests/fuzz/csv.dict.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ignis.h"

#define MAX_FILE (64 * 1024)

/* The label columns byte 0 can choose: the usual ones and a few that cannot exist. */
static const int LABEL_COLUMNS[8] = {-1, 0, 1, -2, 2, 7, -9, INT_MIN};

static char dir[64], path[128];

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

/* The temporary folder, made once per process. */
static void setup(void) {
    if (dir[0]) return;
    snprintf(dir, sizeof dir, "/tmp/ignis_fuzz_csv.XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/data.csv", dir);
    atexit(cleanup);
}

static void write_file(const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    if (fclose(f) != 0) abort();
}

/* One epoch through a loader: the batches must hold exactly the items, in order when not
 * shuffled. */
static void check_loader(ig_dataset *d, int64_t n, int64_t F, int64_t batch, bool shuffle, const float *all,
                         const int64_t *labels) {
    ig_loader_opts o = {0};
    o.batch_size = batch;
    o.shuffle = shuffle;
    o.drop_last = shuffle;
    o.seed = 7;
    ig_loader *l = ig_loader_new(d, &o);
    if (!l) abort();
    int64_t seen = 0, want = shuffle ? n / batch * batch : n;
    ig_tensor *x, *y;
    int r;
    while ((r = ig_loader_next(l, &x, &y)) == 1) {
        int64_t b = ig_tensor_shape(x)[0];
        if (ig_tensor_ndim(x) != 2 || ig_tensor_shape(x)[1] != F || ig_tensor_ndim(y) != 1 ||
            ig_tensor_shape(y)[0] != b || b < 1 || b > batch || seen + b > want)
            abort();
        const float *xb = ig_tensor_data(x);
        const int64_t *yb = ig_tensor_data(y);
        for (int64_t i = 0; i < b; i++) {
            if (!shuffle) {
                if (yb[i] != labels[seen + i] ||
                    memcmp(xb + i * F, all + (seen + i) * F, (size_t)F * sizeof *xb) != 0)
                    abort();
            } else if (yb[i] < 0 || yb[i] >= ig_dataset_num_classes(d)) {
                abort();
            }
        }
        seen += b;
    }
    if (r != 0 || seen != want) abort();
    ig_loader_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > MAX_FILE + 1) return 0;
    setup();
    const uint8_t opt = data[0];
    const bool header = opt & 1;
    const int label_column = LABEL_COLUMNS[(opt >> 1) & 7];
    const int64_t batch = ((opt >> 4) & 7) + 1;
    const bool shuffle = opt >> 7;
    write_file(data + 1, size - 1);

    ig_clear_error();
    ig_dataset *d = ig_dataset_csv(path, label_column, header);
    if (!d) {
        /* Every failure says which reader, which file, and has a status. */
        if (ig_last_status() == IG_OK || !strstr(ig_last_error(), "ig_dataset_csv") ||
            !strstr(ig_last_error(), path)) {
            fprintf(stderr, "fuzz_csv: bad error \"%s\"\n", ig_last_error());
            abort();
        }
        return 0;
    }
    int64_t shape[3];
    const int64_t n = ig_dataset_len(d);
    const int classes = ig_dataset_num_classes(d);
    if (ig_dataset_item_shape(d, shape) != 1 || n < 1 || classes < 1 || shape[0] < 1 ||
        (uint64_t)shape[0] * (uint64_t)n > size) /* every value takes at least a byte */
        abort();
    const int64_t F = shape[0];
    float *all = malloc((size_t)(n * F) * sizeof *all);
    int64_t *labels = malloc((size_t)n * sizeof *labels);
    if (!all || !labels) abort();
    for (int64_t i = 0; i < n; i++) {
        if (ig_dataset_get(d, i, all + i * F, &labels[i]) != IG_OK) abort();
        if (labels[i] < 0 || labels[i] >= classes) abort();
        for (int64_t k = 0; k < F; k++)
            if (!isfinite(all[i * F + k])) {
                fprintf(stderr, "fuzz_csv: item %lld feature %lld is %g\n", (long long)i, (long long)k,
                        (double)all[i * F + k]);
                abort();
            }
    }
    if (!ig_dataset_class_name(d, classes - 1)) abort();
    check_loader(d, n, F, batch, shuffle, all, labels);
    free(all);
    free(labels);
    ig_dataset_free(d);
    return 0;
}
