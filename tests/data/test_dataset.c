/*
 * tests/data/test_dataset.c — the dataset object: ig_dataset_new with a user ops table
 * (copies, default class names, ownership of ctx even on failure, argument errors), get,
 * subset, the seeded split (sizes, disjoint and covering, reproducible), per-channel
 * mean/std against a plain loop, and ig_dataset_open's format detection (IDX raw and gz,
 * CIFAR-10/100, PNG train/test folders, nothing found). One test opens the installed
 * Fashion-MNIST if it is there and skips otherwise. Every reader refuses a FIFO in place of
 * a file without waiting for a writer.
 */
#include <math.h>
#include <signal.h>

#include "data_fixtures.h"

/* A dataset whose item i is [C,H,W] with value v(i,k) = (i*7 + k*3) % 11 - 5 (+0.5 * c)
 * and label i % 3; counts free_ctx calls. */
typedef struct toy {
    int64_t n, c, h, w;
    int *freed;
} toy;

static float toy_value(int64_t i, int64_t k) { return (float)((i * 7 + k * 3) % 11) - 5.0f; }

static int64_t toy_len(void *ctx) { return ((toy *)ctx)->n; }
static ig_status toy_read(void *ctx, int64_t i, float *x, int64_t *label) {
    toy *t = ctx;
    int64_t numel = t->c * t->h * t->w;
    for (int64_t k = 0; k < numel; k++) x[k] = toy_value(i, k);
    *label = i % 3;
    return IG_OK;
}
static void toy_free(void *ctx) {
    toy *t = ctx;
    if (t->freed) (*t->freed)++;
    free(t);
}
static const ig_dataset_ops toy_ops = {toy_len, toy_read, toy_free};

static ig_dataset *toy_new(int64_t n, int64_t c, int64_t h, int64_t w, int *freed) {
    toy *t = malloc(sizeof *t);
    *t = (toy){n, c, h, w, freed};
    int64_t shape[3] = {c, h, w};
    return ig_dataset_new(&toy_ops, t, 3, shape, 3, NULL);
}

Test(data, dataset_new_and_accessors) {
    int freed = 0;
    ig_dataset *d = toy_new(10, 2, 3, 4, &freed);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 10);
    int64_t shape[3];
    cr_assert_eq(ig_dataset_item_shape(d, shape), 3);
    cr_assert(shape[0] == 2 && shape[1] == 3 && shape[2] == 4);
    cr_assert_eq(ig_dataset_num_classes(d), 3);
    cr_assert_str_eq(ig_dataset_class_name(d, 1), "1");
    cr_assert_null(ig_dataset_class_name(d, 3));
    expect_error("ig_dataset_class_name", "class 3");
    float x[24];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 4, x, &y), IG_OK);
    cr_assert_eq(y, 1);
    cr_assert_eq(x[5], toy_value(4, 5));
    cr_assert_eq(ig_dataset_get(d, 10, x, &y), IG_ERR_ARG);
    expect_error("ig_dataset_get", "index 10 is not in 0..9");
    cr_assert_eq(ig_dataset_get(d, -1, x, &y), IG_ERR_ARG);
    ig_clear_error();
    cr_assert_eq(ig_dataset_get(d, 0, NULL, &y), IG_ERR_ARG);
    expect_error("ig_dataset_get", "'x'");
    ig_dataset_free(d);
    cr_assert_eq(freed, 1);
    ig_dataset_free(NULL);
}

Test(data, dataset_new_copies_names_and_frees_ctx_on_failure) {
    char a[8] = "first";
    const char *names[2] = {a, "second"};
    toy *t = malloc(sizeof *t);
    int freed = 0;
    *t = (toy){1, 1, 1, 1, &freed};
    int64_t shape[1] = {1};
    ig_dataset *d = ig_dataset_new(&toy_ops, t, 1, shape, 2, names);
    cr_assert_not_null(d);
    a[0] = 'X';
    cr_assert_str_eq(ig_dataset_class_name(d, 0), "first");
    ig_dataset_free(d);
    /* every failure frees ctx */
    const int bad_ndim[2] = {0, 4};
    for (int k = 0; k < 2; k++) {
        t = malloc(sizeof *t);
        *t = (toy){1, 1, 1, 1, &freed};
        int64_t s3[4] = {1, 1, 1, 1};
        cr_assert_null(ig_dataset_new(&toy_ops, t, bad_ndim[k], s3, 1, NULL));
        expect_error("ig_dataset_new", "ndim");
    }
    t = malloc(sizeof *t);
    *t = (toy){1, 1, 1, 1, &freed};
    int64_t zero[2] = {3, 0};
    cr_assert_null(ig_dataset_new(&toy_ops, t, 2, zero, 1, NULL));
    expect_error("ig_dataset_new", "dim 1 of size 0");
    t = malloc(sizeof *t);
    *t = (toy){1, 1, 1, 1, &freed};
    int64_t huge[3] = {1 << 20, 1 << 20, 1 << 20};
    cr_assert_null(ig_dataset_new(&toy_ops, t, 3, huge, 1, NULL));
    expect_error("ig_dataset_new", "too large");
    t = malloc(sizeof *t);
    *t = (toy){1, 1, 1, 1, &freed};
    cr_assert_null(ig_dataset_new(&toy_ops, t, 1, shape, -1, NULL));
    expect_error("num_classes -1");
    ig_dataset_ops no_read = {toy_len, NULL, toy_free};
    t = malloc(sizeof *t);
    *t = (toy){1, 1, 1, 1, &freed};
    cr_assert_null(ig_dataset_new(&no_read, t, 1, shape, 1, NULL));
    expect_error("ops->read");
    cr_assert_eq(freed, 7); /* the first dataset, then six failures */
    cr_assert_null(ig_dataset_new(NULL, NULL, 1, shape, 1, NULL));
    expect_error("ops");
}

Test(data, dataset_subset) {
    ig_dataset *d = toy_new(10, 1, 2, 2, NULL);
    const int64_t idx[4] = {9, 0, 9, 3};
    ig_dataset *s = ig_dataset_subset(d, idx, 4);
    cr_assert_not_null(s, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(s), 4);
    cr_assert_eq(ig_dataset_num_classes(s), 3);
    for (int i = 0; i < 4; i++) {
        float x[4];
        int64_t y;
        cr_assert_eq(ig_dataset_get(s, i, x, &y), IG_OK);
        cr_assert_eq(y, idx[i] % 3);
        cr_assert_eq(x[2], toy_value(idx[i], 2));
    }
    ig_dataset_free(s);
    const int64_t bad[2] = {1, 10};
    cr_assert_null(ig_dataset_subset(d, bad, 2));
    expect_error("ig_dataset_subset", "indices[1] = 10 is not in 0..9");
    cr_assert_null(ig_dataset_subset(d, bad, -1));
    expect_error("negative");
    s = ig_dataset_subset(d, NULL, 0);
    cr_assert_not_null(s);
    cr_assert_eq(ig_dataset_len(s), 0);
    ig_dataset_free(s);
    ig_dataset_free(d);
}

/* Item i's identity through a subset: its label and first value pin it down in toy. */
static int64_t which(ig_dataset *s, int64_t j) {
    float x[1];
    int64_t y;
    cr_assert_eq(ig_dataset_get(s, j, x, &y), IG_OK);
    for (int64_t i = 0; i < 1000; i++)
        if (toy_value(i, 0) == x[0] && i % 3 == y) return i;
    return -1;
}

Test(data, dataset_split_sizes_cover_and_repeat) {
    /* toy_value(i, 0) repeats every 11, labels every 3: identity is unique for n <= 33 */
    ig_dataset *d = toy_new(33, 1, 1, 1, NULL);
    ig_dataset *tr, *va;
    cr_assert_eq(ig_dataset_split(d, 0.25, 42, &tr, &va), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(va), 8); /* round(33 * 0.25) = round(8.25) */
    cr_assert_eq(ig_dataset_len(tr), 25);
    int seen[33] = {0};
    int64_t order[33];
    for (int64_t j = 0; j < 25; j++) seen[order[j] = which(tr, j)]++;
    for (int64_t j = 0; j < 8; j++) seen[order[25 + j] = which(va, j)]++;
    bool identity = true;
    for (int i = 0; i < 33; i++) {
        cr_assert_eq(seen[i], 1, "item %d appears %d times", i, seen[i]);
        identity = identity && order[i] == i;
    }
    cr_assert(!identity, "the split is shuffled");
    ig_dataset_free(tr);
    ig_dataset_free(va);
    /* same seed, same split; another seed, another one */
    cr_assert_eq(ig_dataset_split(d, 0.25, 42, &tr, &va), IG_OK);
    for (int64_t j = 0; j < 8; j++) cr_assert_eq(which(va, j), order[25 + j]);
    ig_dataset_free(tr);
    ig_dataset_free(va);
    cr_assert_eq(ig_dataset_split(d, 0.25, 43, &tr, &va), IG_OK);
    bool same = true;
    for (int64_t j = 0; j < 8; j++) same = same && which(va, j) == order[25 + j];
    cr_assert(!same);
    ig_dataset_free(tr);
    ig_dataset_free(va);
    /* the ends */
    cr_assert_eq(ig_dataset_split(d, 0.0, 1, &tr, &va), IG_OK);
    cr_assert(ig_dataset_len(tr) == 33 && ig_dataset_len(va) == 0);
    ig_dataset_free(tr);
    ig_dataset_free(va);
    cr_assert_eq(ig_dataset_split(d, 1.0, 1, &tr, &va), IG_OK);
    cr_assert(ig_dataset_len(tr) == 0 && ig_dataset_len(va) == 33);
    ig_dataset_free(tr);
    ig_dataset_free(va);
    cr_assert_eq(ig_dataset_split(d, 1.5, 1, &tr, &va), IG_ERR_ARG);
    expect_error("ig_dataset_split", "val_fraction 1.5");
    cr_assert_null(tr);
    cr_assert_eq(ig_dataset_split(d, NAN, 1, &tr, &va), IG_ERR_ARG);
    ig_dataset_free(d);
}

Test(data, dataset_mean_std_per_channel) {
    enum { N = 13, C = 2, HH = 3, WW = 5 };
    ig_dataset *d = toy_new(N, C, HH, WW, NULL);
    double mean[C], std[C];
    cr_assert_eq(ig_dataset_mean_std(d, mean, std), IG_OK, "%s", ig_last_error());
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        int cnt = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < HH * WW; k++) {
                s += toy_value(i, c * HH * WW + k);
                cnt++;
            }
        double m = s / cnt;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < HH * WW; k++) q += pow(toy_value(i, c * HH * WW + k) - m, 2);
        cr_assert_float_eq(mean[c], m, 1e-12, "channel %d mean %g want %g", c, mean[c], m);
        cr_assert_float_eq(std[c], sqrt(q / cnt), 1e-12, "channel %d std", c);
    }
    ig_dataset *e = ig_dataset_subset(d, NULL, 0);
    cr_assert_eq(ig_dataset_mean_std(e, mean, std), IG_ERR_ARG);
    expect_error("ig_dataset_mean_std", "empty");
    ig_dataset_free(e);
    ig_dataset_free(d);
}

/* ---- ig_dataset_open ---------------------------------------------------------------------- */

Test(data, open_detects_idx) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    uint8_t pix[2 * 4] = {0, 1, 2, 3, 4, 5, 6, 7}, lab[2] = {1, 0};
    uint32_t di[3] = {2, 2, 2}, dl[1] = {2}, dt[3] = {1, 2, 2}, dlt[1] = {1};
    write_idx(path_in(p, dir, "train-images-idx3-ubyte"), false, 3, di, pix, 8);
    write_idx(path_in(p, dir, "train-labels-idx1-ubyte.gz"), true, 1, dl, lab, 2);
    write_idx(path_in(p, dir, "t10k-images-idx3-ubyte.gz"), true, 3, dt, pix, 4);
    ig_dataset *d = ig_dataset_open(dir, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 2);
    ig_dataset_free(d);
    /* test images but no test labels */
    cr_assert_null(ig_dataset_open(dir, false));
    expect_error("ig_dataset_open", "t10k-labels-idx1-ubyte");
    write_idx(path_in(p, dir, "t10k-labels-idx1-ubyte"), false, 1, dlt, lab, 1);
    d = ig_dataset_open(dir, false);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 1);
    ig_dataset_free(d);
    rm_tree(dir);
}

static void write_records(const char *path, int m, int rec, uint8_t label) {
    uint8_t *b = calloc((size_t)m, (size_t)rec);
    for (int r = 0; r < m; r++) b[r * rec + rec - 3073] = label; /* the (fine) label byte */
    write_bytes(path, b, (size_t)m * (size_t)rec);
    free(b);
}

Test(data, open_detects_cifar) {
    char dir[256], sub[1024], p[1024];
    make_tmpdir(dir);
    /* CIFAR-10 as unpacked from its archive, in cifar-10-batches-bin/ */
    mkdir_p(path_in(sub, dir, "cifar-10-batches-bin"));
    write_records(path_in(p, sub, "data_batch_2.bin"), 3, 3073, 2);
    write_records(path_in(p, sub, "data_batch_1.bin"), 2, 3073, 1);
    write_records(path_in(p, sub, "test_batch.bin"), 4, 3073, 7);
    ig_dataset *d = ig_dataset_open(dir, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 5);
    float *x = malloc(3072 * sizeof *x);
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert_eq(y, 1, "data_batch_1 comes first");
    cr_assert_eq(ig_dataset_get(d, 4, x, &y), IG_OK);
    cr_assert_eq(y, 2);
    ig_dataset_free(d);
    d = ig_dataset_open(sub, false);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 4);
    ig_dataset_free(d);
    /* CIFAR-100: train.bin / test.bin */
    char dir100[256];
    make_tmpdir(dir100);
    write_records(path_in(p, dir100, "train.bin"), 2, 3074, 55);
    d = ig_dataset_open(dir100, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_num_classes(d), 100);
    cr_assert_eq(ig_dataset_get(d, 1, x, &y), IG_OK);
    cr_assert_eq(y, 55);
    ig_dataset_free(d);
    /* a bad batch is reported, not skipped */
    write_bytes(path_in(p, dir100, "test.bin"), "short", 5);
    cr_assert_null(ig_dataset_open(dir100, false));
    expect_error("ig_dataset_cifar", p);
    free(x);
    rm_tree(dir);
    rm_tree(dir100);
}

Test(data, open_detects_png_folders) {
    char dir[256], p[1024], c[1024];
    make_tmpdir(dir);
    mkdir_p(path_in(p, dir, "train"));
    mkdir_p(path_in(c, p, "one"));
    uint8_t rgb[2 * 2 * 3] = {0};
    write_png8(path_in(p, c, "a.png"), 2, 2, 3, rgb);
    ig_dataset *d = ig_dataset_open(dir, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    int64_t shape[3];
    ig_dataset_item_shape(d, shape);
    cr_assert_eq(shape[0], 3, "RGB images give 3 channels");
    ig_dataset_free(d);
    mkdir_p(path_in(p, dir, "test"));
    mkdir_p(path_in(c, p, "one"));
    uint8_t gray[4] = {0};
    write_png8(path_in(p, c, "a.png"), 2, 2, 1, gray);
    d = ig_dataset_open(dir, false);
    cr_assert_not_null(d, "%s", ig_last_error());
    ig_dataset_item_shape(d, shape);
    cr_assert_eq(shape[0], 1, "gray images give 1 channel");
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, open_finds_nothing) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    write_bytes(path_in(p, dir, "readme.txt"), "x", 1);
    cr_assert_null(ig_dataset_open(dir, true));
    expect_error("ig_dataset_open", dir, "no dataset found");
    cr_assert_null(ig_dataset_open(p, true));
    expect_error("ig_dataset_open", p, "not a directory");
    ig_clear_error();
    cr_assert_null(ig_dataset_open(NULL, true));
    expect_error("ig_dataset_open", "dir");
    rm_tree(dir);
}

Test(data, open_installed_fashion_mnist) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(dir, &st) != 0) cr_skip_test("Fashion-MNIST is not installed at %s", dir);
    ig_dataset *d = ig_dataset_open(dir, false);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 10000);
    int64_t shape[3];
    ig_dataset_item_shape(d, shape);
    cr_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    cr_assert_eq(ig_dataset_num_classes(d), 10);
    float x[784];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK);
    cr_assert(y >= 0 && y < 10);
    ig_dataset_free(d);
}

/* A FIFO where a file should be: open() for reading used to wait for a writer, forever
 * (alarm() turns that hang into a failure here). Each reader now names it and says why. */
Test(data, readers_refuse_a_fifo) {
    char dir[256], p[1024], c[1024], q[1024];
    make_tmpdir(dir);
    cr_assert_eq(mkfifo(path_in(p, dir, "data_batch_1.bin"), 0600), 0);
    alarm(20);
    cr_assert_null(ig_dataset_csv(p, -1, false));
    expect_error("ig_dataset_csv", p, "not a regular file (a FIFO)");
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    const char *paths[1] = {p};
    cr_assert_null(ig_dataset_cifar(paths, 1, false));
    expect_error("ig_dataset_cifar", p, "not a regular file (a FIFO)");
    cr_assert_null(ig_dataset_open(dir, true));
    expect_error("ig_dataset_cifar", p, "not a regular file (a FIFO)");
    uint8_t lab[1] = {0};
    uint32_t one = 1;
    write_idx(path_in(q, dir, "labels"), false, 1, &one, lab, 1);
    cr_assert_null(ig_dataset_idx(p, q));
    expect_error("ig_dataset_idx", p, "not a regular file (a FIFO)");
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(unlink(q), 0);
    /* A PNG folder whose only image is a FIFO, directly and through ig_dataset_open (which
     * first peeks at an image to choose the channel count). */
    mkdir_p(path_in(p, dir, "train"));
    mkdir_p(path_in(c, p, "one"));
    cr_assert_eq(mkfifo(path_in(q, c, "a.png"), 0600), 0);
    cr_assert_null(ig_dataset_image_folder(p, 3));
    expect_error(q, "not a regular file (a FIFO)");
    cr_assert_null(ig_dataset_open(dir, true));
    expect_error(q, "not a regular file (a FIFO)");
    alarm(0);
    rm_tree(dir);
}
