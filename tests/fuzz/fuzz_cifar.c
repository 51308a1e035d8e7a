/*
 * tests/fuzz/fuzz_cifar.c — libFuzzer target for the CIFAR-10/100 binary batch reader
 * (ig_dataset_cifar, data/cifar.c) and the folder detection that leads to it
 * (ig_dataset_open, data/dataset.c), through the public API: the bytes become one batch
 * file in a folder laid out as the CIFAR archives unpack.
 *
 *   make fuzz-run FUZZ_TARGETS=cifar FUZZ_SECONDS=60
 *
 * Input: one option byte, then the batch file (at most MAX_RECORDS CIFAR-100 records of
 * 3074 bytes; longer inputs are skipped).
 *   byte 0: bit 0 CIFAR-100 (else CIFAR-10); bits 1-2 how it is opened (MODE_*); bits 3-5
 *           the loader's batch size - 1; bit 6 the loader shuffles and drops the last batch.
 * The layouts, one folder each, made once per process (the valid file holds one record):
 *   direct/fuzz.bin                                      ig_dataset_cifar({fuzz}) (MODE_ONE)
 *   direct/valid10.bin or valid100.bin, direct/fuzz.bin  ig_dataset_cifar({valid, fuzz})
 *   train10/data_batch_1.bin (valid), data_batch_2.bin   ig_dataset_open(train10, true)
 *   train100/train.bin                                   ig_dataset_open(train100, true)
 *   test10/cifar-10-batches-bin/test_batch.bin           ig_dataset_open(test10, false)
 *   test100/cifar-100-binary/test.bin                    ig_dataset_open(test100, false)
 * Whatever the bytes, the result is a dataset or NULL with a status and a message naming
 * the reader and the fuzzed file. A dataset must hold the valid file's record (if any) and
 * then one item per record of the fuzzed file, with the label the record says, pixels
 * byte/255, and one epoch through a loader must deliver them. Nothing may leak.
 * Seeds: tests/fuzz/cifar_seeds.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignis.h"

#define PIX 3072
#define MAX_RECORDS 4

enum { MODE_ONE, MODE_TWO, MODE_OPEN_TRAIN, MODE_OPEN_TEST };

static char root[64];
/* [cifar100][mode]: the fuzzed file's path and what is opened (folder or NULL). */
static char fuzz_path[2][4][160], open_dir[2][4][160], valid_path[2][160];
static uint8_t valid_rec[2][PIX + 2];

static void cleanup(void) {
    /* Files first, then folders, deepest first. */
    for (int c = 0; c < 2; c++) {
        unlink(valid_path[c]);
        for (int m = 0; m < 4; m++) unlink(fuzz_path[c][m]);
    }
    static const char *const dirs[] = {"direct",
                                       "train10",
                                       "train100",
                                       "test10/cifar-10-batches-bin",
                                       "test10",
                                       "test100/cifar-100-binary",
                                       "test100"};
    char p[160];
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[k]);
        rmdir(p);
    }
    rmdir(root);
}

static void write_file(const char *p, const uint8_t *data, size_t n) {
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    if (fclose(f) != 0) abort();
}

static void make_dir(const char *sub) {
    char p[160];
    snprintf(p, sizeof p, "%s/%s", root, sub);
    if (mkdir(p, 0700) != 0) abort();
}

static void setup(void) {
    if (root[0]) return;
    snprintf(root, sizeof root, "/tmp/ignis_fuzz_cifar.XXXXXX");
    if (!mkdtemp(root)) abort();
    atexit(cleanup);
    make_dir("direct");
    make_dir("train10");
    make_dir("train100");
    make_dir("test10");
    make_dir("test10/cifar-10-batches-bin");
    make_dir("test100");
    make_dir("test100/cifar-100-binary");
    for (int c = 0; c < 2; c++) {
        /* One record: label 3 (coarse 1 for CIFAR-100), pixels k % 251. */
        uint8_t *r = valid_rec[c];
        size_t h = 0;
        if (c) r[h++] = 1;
        r[h++] = 3;
        for (int k = 0; k < PIX; k++) r[h + (size_t)k] = (uint8_t)(k % 251);
        snprintf(valid_path[c], sizeof valid_path[c], "%s/direct/valid%s.bin", root, c ? "100" : "10");
        write_file(valid_path[c], r, PIX + h);
        snprintf(fuzz_path[c][MODE_ONE], 160, "%s/direct/fuzz.bin", root);
        snprintf(fuzz_path[c][MODE_TWO], 160, "%s/direct/fuzz.bin", root);
        snprintf(open_dir[c][MODE_OPEN_TRAIN], 160, "%s/train%s", root, c ? "100" : "10");
        snprintf(fuzz_path[c][MODE_OPEN_TRAIN], 160, "%s/%s", open_dir[c][MODE_OPEN_TRAIN],
                 c ? "train.bin" : "data_batch_2.bin");
        snprintf(open_dir[c][MODE_OPEN_TEST], 160, "%s/test%s", root, c ? "100" : "10");
        snprintf(fuzz_path[c][MODE_OPEN_TEST], 160, "%s/%s", open_dir[c][MODE_OPEN_TEST],
                 c ? "cifar-100-binary/test.bin" : "cifar-10-batches-bin/test_batch.bin");
    }
    /* CIFAR-10's training folder also holds a valid first batch (read before the fuzzed one). */
    char p[160];
    snprintf(p, sizeof p, "%s/train10/data_batch_1.bin", root);
    write_file(p, valid_rec[0], PIX + 1);
}

/* Checks item i against a record (label byte(s) then PIX pixel bytes). */
static void check_item(const float *x, int64_t y, const uint8_t *rec, bool c100) {
    if (y != rec[c100 ? 1 : 0]) abort();
    const uint8_t *px = rec + (c100 ? 2 : 1);
    for (int k = 0; k < PIX; k++)
        if (x[k] != (float)px[k] / 255.0f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > MAX_RECORDS * (PIX + 2) + 1) return 0;
    setup();
    const uint8_t opt = data[0];
    const bool c100 = opt & 1;
    const int mode = (opt >> 1) & 3;
    const int64_t batch = ((opt >> 3) & 7) + 1;
    const bool shuffle = (opt >> 6) & 1;
    const uint8_t *file = data + 1;
    const size_t n = size - 1, rec = PIX + (c100 ? 2 : 1);
    const char *fp = fuzz_path[c100][mode];
    write_file(fp, file, n);

    ig_clear_error();
    ig_dataset *d;
    bool has_valid; /* the dataset starts with valid_rec's record */
    if (mode == MODE_ONE || mode == MODE_TWO) {
        const char *paths[2] = {valid_path[c100], fp};
        has_valid = mode == MODE_TWO;
        d = has_valid ? ig_dataset_cifar(paths, 2, c100) : ig_dataset_cifar(paths + 1, 1, c100);
    } else {
        has_valid = mode == MODE_OPEN_TRAIN && !c100;
        d = ig_dataset_open(open_dir[c100][mode], mode == MODE_OPEN_TRAIN);
    }
    if (!d) {
        if (ig_last_status() == IG_OK || !strstr(ig_last_error(), "ig_dataset_cifar") ||
            !strstr(ig_last_error(), fp)) {
            fprintf(stderr, "fuzz_cifar: bad error \"%s\"\n", ig_last_error());
            abort();
        }
        return 0;
    }
    /* Accepted: the file must have been whole records. */
    if (n == 0 || n % rec != 0) abort();
    const int64_t m = (int64_t)(n / rec), len = m + has_valid;
    int64_t shape[3];
    if (ig_dataset_len(d) != len || ig_dataset_item_shape(d, shape) != 3 || shape[0] != 3 || shape[1] != 32 ||
        shape[2] != 32 || ig_dataset_num_classes(d) != (c100 ? 100 : 10))
        abort();
    float *x = malloc(PIX * sizeof *x);
    if (!x) abort();
    for (int64_t i = 0; i < len; i++) {
        int64_t y;
        if (ig_dataset_get(d, i, x, &y) != IG_OK) abort();
        const uint8_t *r = has_valid && i == 0 ? valid_rec[c100] : file + (size_t)(i - has_valid) * rec;
        check_item(x, y, r, c100);
        if (c100 && r[0] >= 20) abort(); /* a coarse label out of range must have been refused */
    }
    free(x);

    ig_loader_opts o = {0};
    o.batch_size = batch;
    o.shuffle = shuffle;
    o.drop_last = shuffle;
    o.seed = 3;
    ig_loader *l = ig_loader_new(d, &o);
    if (!l) abort();
    int64_t seen = 0, want = shuffle ? len / batch * batch : len;
    ig_tensor *xb, *yb;
    int r;
    while ((r = ig_loader_next(l, &xb, &yb)) == 1) {
        const int64_t *s = ig_tensor_shape(xb);
        if (ig_tensor_ndim(xb) != 4 || s[0] < 1 || s[0] > batch || s[1] != 3 || s[2] != 32 || s[3] != 32 ||
            ig_tensor_shape(yb)[0] != s[0])
            abort();
        const int64_t *yv = ig_tensor_data(yb);
        for (int64_t i = 0; i < s[0]; i++)
            if (yv[i] < 0 || yv[i] >= (c100 ? 100 : 10)) abort();
        seen += s[0];
    }
    if (r != 0 || seen != want) abort();
    ig_loader_free(l);
    ig_dataset_free(d);
    return 0;
}
