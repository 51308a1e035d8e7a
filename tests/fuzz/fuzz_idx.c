/*
 * tests/fuzz/fuzz_idx.c — libFuzzer target for the IDX reader (raw and gzip), built by
 * `make fuzz`. The input is split in two at a point taken from its first two bytes: the
 * first part is the image file, the second the label file, both fed through the in-memory
 * entry point (the same code ig_dataset_idx runs after reading the files). Every item of a
 * dataset that opens is read, so the sizes the reader trusted are exercised too.
 */
#include <stdint.h>
#include <stdlib.h>

#include "data/data_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]) % (size - 1);
    const uint8_t *img = data + 2, *lab = data + 2 + split;
    size_t img_n = split, lab_n = size - 2 - split;
    /* Each half alone, as either kind. */
    igi_idx_array a;
    if (igi_idx_decode("fuzz", "whole", data + 2, size - 2, 3, &a) == IG_OK) free(a.owned);
    if (igi_idx_decode("fuzz", "whole", data + 2, size - 2, 1, &a) == IG_OK) free(a.owned);
    ig_dataset *d = igi_dataset_idx_memory("images", img, img_n, "labels", lab, lab_n);
    if (d) {
        int64_t shape[3];
        ig_dataset_item_shape(d, shape);
        float *x = malloc((size_t)(shape[0] * shape[1] * shape[2]) * sizeof *x);
        int64_t n = ig_dataset_len(d), y;
        for (int64_t i = 0; x && i < n && i < 64; i++) {
            if (ig_dataset_get(d, i, x, &y) != IG_OK || y < 0 || y >= ig_dataset_num_classes(d)) abort();
        }
        free(x);
        ig_dataset_free(d);
    }
    return 0;
}
