/*
 * tests/tools/test_cli_convert.c — `ignis convert` run as a program on a small IDX dataset
 * the test writes (6 train and 4 test images of 2x3 pixels, 3 classes): the PNG folders it
 * writes read back as the same pixels and labels (and are what ig_dataset_open detects),
 * --split and --limit, --stats against mean/std computed here, and each error with its exit
 * status and message.
 */
#include <math.h>

#include "cli_run.h"
#include "tests/data/data_fixtures.h"

enum { NTRAIN = 6, NTEST = 4, H = 2, W = 3 };

static uint8_t train_pix[NTRAIN * H * W], test_pix[NTEST * H * W];
static const uint8_t train_lab[NTRAIN] = {2, 0, 1, 0, 2, 2}, test_lab[NTEST] = {1, 1, 0, 2};

/* Writes the IDX files of both splits into dir (raw train, gzip'd test). */
static void write_dataset(const char *dir) {
    for (int i = 0; i < NTRAIN * H * W; i++) train_pix[i] = (uint8_t)(i * 37 % 256);
    for (int i = 0; i < NTEST * H * W; i++) test_pix[i] = (uint8_t)(255 - i * 11);
    char p[1024];
    write_idx(path_in(p, dir, "train-images-idx3-ubyte"), false, 3, (const uint32_t[]){NTRAIN, H, W}, train_pix,
              sizeof train_pix);
    write_idx(path_in(p, dir, "train-labels-idx1-ubyte"), false, 1, (const uint32_t[]){NTRAIN}, train_lab, NTRAIN);
    write_idx(path_in(p, dir, "t10k-images-idx3-ubyte.gz"), true, 3, (const uint32_t[]){NTEST, H, W}, test_pix,
              sizeof test_pix);
    write_idx(path_in(p, dir, "t10k-labels-idx1-ubyte.gz"), true, 1, (const uint32_t[]){NTEST}, test_lab, NTEST);
}

/* The PNG folder at dir holds exactly the n images pix/lab: class by class, each class's
 * items in index order (the file names are zero-padded indices). */
static void check_folder(const char *dir, const uint8_t *pix, const uint8_t *lab, int n) {
    ig_dataset *d = ig_dataset_image_folder(dir, 1);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), n);
    int k = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < n; i++) {
            if (lab[i] != c) continue;
            float x[H * W];
            int64_t y;
            cr_assert_eq(ig_dataset_get(d, k, x, &y), IG_OK, "%s", ig_last_error());
            cr_assert_eq(y, c);
            for (int j = 0; j < H * W; j++)
                cr_assert_eq(x[j], (float)pix[i * H * W + j] / 255.0f, "item %d pixel %d", i, j);
            k++;
        }
    cr_assert_eq(k, n);
    ig_dataset_free(d);
}

Test(tools, convert_writes_png_folders) {
    char dir[256], data[1024], out[1024], p[1024];
    make_tmpdir(dir);
    mkdir_p(path_in(data, dir, "idx"));
    write_dataset(data);
    path_in(out, dir, "png");
    cli_result r = cli_run((const char *const[]){"convert", "--data", data, "--out", out, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "train: wrote 6 images of [1,2,3] in 3 class folders"), "%s", r.out);
    cr_assert(strstr(r.out, "test: wrote 4 images of [1,2,3] in 3 class folders"), "%s", r.out);
    cr_assert_str_empty(r.err);
    cli_result_free(&r);
    check_folder(path_in(p, out, "train"), train_pix, train_lab, NTRAIN);
    check_folder(path_in(p, out, "test"), test_pix, test_lab, NTEST);
    /* The layout ig_dataset_open detects. */
    ig_dataset *d = ig_dataset_open(out, false);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), NTEST);
    ig_dataset_free(d);

    /* Converting into the same place again is refused (exit 1), nothing is overwritten. */
    CLI_EXPECT(1, NULL, "already exists and is not empty", "convert", "--data", data, "--out", out);

    /* --split train --limit 4: only out2/train, with the first 4 train images (labels 2 0 1 0:
     * every class still has a folder, so the labels read back unchanged). */
    char out2[1024];
    path_in(out2, dir, "png2");
    CLI_EXPECT(0, "train: wrote 4 images", NULL, "convert", "--data", data, "--out", out2, "--split", "train",
               "--limit", "4");
    check_folder(path_in(p, out2, "train"), train_pix, train_lab, 4);
    struct stat sb;
    cr_assert_neq(stat(path_in(p, out2, "test"), &sb), 0, "test/ was written");
    rm_tree(dir);
}

/* "  mean: M\n  std:  S\n" for the n images pix, population std, as the tool prints it. */
static void expected_stats(const uint8_t *pix, int n, char *buf, size_t cap) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n * H * W; i++) {
        double v = pix[i] / 255.0;
        s += v;
        s2 += v * v;
    }
    double count = (double)n * H * W, mean = s / count;
    snprintf(buf, cap, "  mean: %.4f\n  std:  %.4f\n", mean, sqrt(s2 / count - mean * mean));
}

Test(tools, convert_stats) {
    char dir[256], want[128];
    make_tmpdir(dir);
    write_dataset(dir);
    cli_result r = cli_run((const char *const[]){"convert", "--data", dir, "--stats", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "train: 6 images of [1,2,3], 3 classes\n"), "%s", r.out);
    expected_stats(train_pix, NTRAIN, want, sizeof want);
    cr_assert(strstr(r.out, want), "want\n%s\nin\n%s", want, r.out);
    expected_stats(test_pix, NTEST, want, sizeof want);
    cr_assert(strstr(r.out, want), "want\n%s\nin\n%s", want, r.out);
    cli_result_free(&r);
    /* --limit applies to the statistics too. */
    expected_stats(test_pix, 3, want, sizeof want);
    CLI_EXPECT(0, want, NULL, "convert", "--data", dir, "--stats", "--split=test", "--limit=3");
    rm_tree(dir);
}

Test(tools, convert_errors) {
    char dir[256], p[1024];
    make_tmpdir(dir);
    write_dataset(dir);
    CLI_EXPECT(2, NULL, "convert: give --out DIR, --stats, or both", "convert", "--data", dir);
    CLI_EXPECT(2, NULL, "convert: --split: 'valid' is not train, test or both", "convert", "--stats", "--split", "valid");
    CLI_EXPECT(2, NULL, "convert: --limit: -1 is negative", "convert", "--stats", "--limit", "-1");
    CLI_EXPECT(2, NULL, "convert: --limit: 'ten' is not an integer", "convert", "--stats", "--limit", "ten");
    CLI_EXPECT(2, NULL, "convert: unknown option '--output'", "convert", "--output", dir);
    CLI_EXPECT(2, NULL, "convert: unexpected argument 'extra'", "convert", "--stats", "extra");
    CLI_EXPECT(1, NULL, "ig_dataset_open: /tmp/ignis-no-such-dataset: not a directory", "convert", "--data",
               "/tmp/ignis-no-such-dataset", "--stats");
    char empty[1024];
    mkdir_p(path_in(empty, dir, "empty"));
    CLI_EXPECT(1, NULL, "no dataset found", "convert", "--data", empty, "--stats");
    /* --out naming a file */
    write_bytes(path_in(p, dir, "afile"), "x", 1);
    CLI_EXPECT(1, NULL, "is not a folder", "convert", "--data", dir, "--out", p);
    CLI_EXPECT(0, "--stats", NULL, "convert", "--help");
    rm_tree(dir);
}
