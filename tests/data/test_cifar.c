/*
 * tests/data/test_cifar.c — CIFAR-10/100 binary batches: records written by the test are
 * read back as [3,32,32] in [0,1] (red plane first) with the right labels, across several
 * files in order; CIFAR-10 class names; CIFAR-100 fine labels. Bad inputs: sizes that are
 * not whole records (and the CIFAR-10/100 mix-up), empty files, labels out of range, a
 * missing file, a folder in place of a file, bad arguments.
 */
#include "data_fixtures.h"

#define PIX 3072

/* Pixel k of record r (in file order): a pattern that differs between records. */
static uint8_t pixel(int r, int k) { return (uint8_t)(r * 37 + k * 13 + (k >> 10) * 101); }

/* Writes m records starting at global record r0 with the given labels. */
static void write_cifar(const char *path, int r0, int m, const uint8_t *fine, const uint8_t *coarse) {
    size_t rec = PIX + (coarse ? 2 : 1);
    uint8_t *b = malloc(rec * (size_t)m);
    for (int r = 0; r < m; r++) {
        uint8_t *p = b + rec * (size_t)r;
        if (coarse) *p++ = coarse[r];
        *p++ = fine[r];
        for (int k = 0; k < PIX; k++) p[k] = pixel(r0 + r, k);
    }
    write_bytes(path, b, rec * (size_t)m);
    free(b);
}

Test(data, cifar10_round_trip_over_two_files) {
    char dir[256], p1[1024], p2[1024];
    make_tmpdir(dir);
    uint8_t l1[2] = {3, 9}, l2[3] = {0, 5, 1};
    write_cifar(path_in(p1, dir, "data_batch_1.bin"), 0, 2, l1, NULL);
    write_cifar(path_in(p2, dir, "data_batch_2.bin"), 2, 3, l2, NULL);
    const char *paths[2] = {p1, p2};
    ig_dataset *d = ig_dataset_cifar(paths, 2, false);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 5);
    int64_t shape[3];
    cr_assert_eq(ig_dataset_item_shape(d, shape), 3);
    cr_assert(shape[0] == 3 && shape[1] == 32 && shape[2] == 32);
    cr_assert_eq(ig_dataset_num_classes(d), 10);
    cr_assert_str_eq(ig_dataset_class_name(d, 0), "airplane");
    cr_assert_str_eq(ig_dataset_class_name(d, 9), "truck");
    const uint8_t want_lab[5] = {3, 9, 0, 5, 1};
    float *x = malloc(PIX * sizeof *x);
    for (int i = 0; i < 5; i++) {
        int64_t y;
        cr_assert_eq(ig_dataset_get(d, i, x, &y), IG_OK);
        cr_assert_eq(y, want_lab[i]);
        for (int k = 0; k < PIX; k++) cr_assert_eq(x[k], (float)pixel(i, k) / 255.0f, "item %d value %d", i, k);
    }
    free(x);
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, cifar100_uses_fine_labels) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    uint8_t fine[3] = {99, 0, 42}, coarse[3] = {19, 0, 7};
    write_cifar(path_in(p, dir, "train.bin"), 0, 3, fine, coarse);
    const char *paths[1] = {p};
    ig_dataset *d = ig_dataset_cifar(paths, 1, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_num_classes(d), 100);
    cr_assert_str_eq(ig_dataset_class_name(d, 42), "42");
    float *x = malloc(PIX * sizeof *x);
    for (int i = 0; i < 3; i++) {
        int64_t y;
        cr_assert_eq(ig_dataset_get(d, i, x, &y), IG_OK);
        cr_assert_eq(y, fine[i]);
        cr_assert_eq(x[0], (float)pixel(i, 0) / 255.0f);
        cr_assert_eq(x[PIX - 1], (float)pixel(i, PIX - 1) / 255.0f);
    }
    free(x);
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, cifar_bad_sizes) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    uint8_t lab[2] = {1, 2};
    write_cifar(path_in(p, dir, "b.bin"), 0, 2, lab, NULL);
    size_t n;
    uint8_t *b = slurp(p, &n);
    write_bytes(p, b, n - 100); /* truncated record */
    const char *paths[1] = {p};
    cr_assert_null(ig_dataset_cifar(paths, 1, false));
    expect_error("ig_dataset_cifar", p, "not a whole number of 3073-byte CIFAR-10 records");
    cr_assert_eq(ig_last_status(), IG_ERR_FORMAT);
    write_bytes(p, b, n); /* a CIFAR-10 file read as CIFAR-100 */
    cr_assert_null(ig_dataset_cifar(paths, 1, true));
    expect_error(p, "3074-byte CIFAR-100 records", "a CIFAR-10 file?");
    write_bytes(p, b, 0);
    cr_assert_null(ig_dataset_cifar(paths, 1, false));
    expect_error(p, "0 bytes is not a whole number");
    free(b);
    rm_tree(dir);
}

Test(data, cifar_labels_out_of_range) {
    char dir[256], p[1024], q[1024];
    make_tmpdir(dir);
    uint8_t ok[1] = {1}, bad10[2] = {4, 10};
    write_cifar(path_in(q, dir, "ok.bin"), 0, 1, ok, NULL);
    write_cifar(path_in(p, dir, "bad.bin"), 0, 2, bad10, NULL);
    const char *paths[2] = {q, p};
    cr_assert_null(ig_dataset_cifar(paths, 2, false));
    expect_error(p, "record 1: label 10 out of range (0..9)");
    uint8_t fine[1] = {100}, coarse[1] = {3};
    write_cifar(p, 0, 1, fine, coarse);
    cr_assert_null(ig_dataset_cifar(paths + 1, 1, true));
    expect_error(p, "record 0: label 100 out of range (0..99)");
    fine[0] = 5;
    coarse[0] = 20;
    write_cifar(p, 0, 1, fine, coarse);
    cr_assert_null(ig_dataset_cifar(paths + 1, 1, true));
    expect_error(p, "coarse label 20 out of range");
    rm_tree(dir);
}

Test(data, cifar_unreadable_files_and_bad_arguments) {
    char dir[256], p[1024], q[1024];
    make_tmpdir(dir);
    uint8_t ok[1] = {1};
    write_cifar(path_in(q, dir, "ok.bin"), 0, 1, ok, NULL);
    const char *paths[2] = {q, path_in(p, dir, "missing.bin")};
    cr_assert_null(ig_dataset_cifar(paths, 2, false));
    expect_error("ig_dataset_cifar", p, "cannot open");
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    mkdir_p(p);
    cr_assert_null(ig_dataset_cifar(paths, 2, false));
    expect_error(p, "not a regular file");
    cr_assert_null(ig_dataset_cifar(paths, 0, false));
    expect_error("ig_dataset_cifar", "at least one");
    ig_clear_error(); /* a NULL argument does not replace a pending error */
    cr_assert_null(ig_dataset_cifar(NULL, 1, false));
    expect_error("ig_dataset_cifar", "paths");
    const char *nulls[1] = {NULL};
    cr_assert_null(ig_dataset_cifar(nulls, 1, false));
    expect_error("paths[0] is NULL");
    rm_tree(dir);
}
