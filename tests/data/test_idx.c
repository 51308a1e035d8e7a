/*
 * tests/data/test_idx.c — the IDX reader: raw and gzip'd round trips (format told by the
 * content, not the name), concatenated gzip members, num_classes, and every bad input the
 * reader must refuse with a message naming the file and the problem: missing file, a folder
 * in its place, wrong magic, unsupported type, dims against the file size, overflowing and
 * terabyte dims, zero dims, truncated / corrupted / bomb / short / trailing-garbage gzip,
 * and label files that disagree with the images.
 */
#include "data_fixtures.h"
#include "data/data_impl.h"

/* N=3 images of 2x4 with distinct bytes, labels 0, 2, 1. */
static uint8_t g_pix[3 * 8];
static const uint8_t g_lab[3] = {0, 2, 1};
static const uint32_t g_img_dims[3] = {3, 2, 4};
static const uint32_t g_lab_dims[1] = {3};

static void fill_pix(void) {
    for (int k = 0; k < 24; k++) g_pix[k] = (uint8_t)(k * 11 + 3);
}

static void check_dataset(ig_dataset *d) {
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 3);
    int64_t shape[3];
    cr_assert_eq(ig_dataset_item_shape(d, shape), 3);
    cr_assert_eq(shape[0], 1);
    cr_assert_eq(shape[1], 2);
    cr_assert_eq(shape[2], 4);
    cr_assert_eq(ig_dataset_num_classes(d), 3); /* max label + 1 */
    cr_assert_str_eq(ig_dataset_class_name(d, 2), "2");
    float x[8];
    for (int i = 0; i < 3; i++) {
        int64_t y = -1;
        cr_assert_eq(ig_dataset_get(d, i, x, &y), IG_OK);
        cr_assert_eq(y, g_lab[i]);
        for (int k = 0; k < 8; k++) cr_assert_eq(x[k], (float)g_pix[i * 8 + k] / 255.0f);
    }
}

Test(data, idx_raw_round_trip) {
    fill_pix();
    char dir[256], ip[1024], lp[1024];
    make_tmpdir(dir);
    write_idx(path_in(ip, dir, "img"), false, 3, g_img_dims, g_pix, 24);
    write_idx(path_in(lp, dir, "lab"), false, 1, g_lab_dims, g_lab, 3);
    ig_dataset *d = ig_dataset_idx(ip, lp);
    check_dataset(d);
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, idx_gzip_detected_by_content_not_name) {
    fill_pix();
    char dir[256], ip[1024], lp[1024];
    make_tmpdir(dir);
    /* gzip'd data without .gz, raw data named .gz */
    write_idx(path_in(ip, dir, "images-idx3-ubyte"), true, 3, g_img_dims, g_pix, 24);
    write_idx(path_in(lp, dir, "labels.gz"), false, 1, g_lab_dims, g_lab, 3);
    ig_dataset *d = ig_dataset_idx(ip, lp);
    check_dataset(d);
    ig_dataset_free(d);
    rm_tree(dir);
}

Test(data, idx_gzip_concatenated_members) {
    fill_pix();
    char dir[256], ip[1024], lp[1024], tmp[1024];
    make_tmpdir(dir);
    uint8_t whole[16 + 24];
    size_t n = idx_bytes(whole, 3, g_img_dims, g_pix, 24);
    /* Two gzip members: the header + 5 bytes, then the rest (as `cat a.gz b.gz`). */
    write_gz(path_in(tmp, dir, "a"), whole, 21);
    size_t na, nb;
    uint8_t *a = slurp(tmp, &na);
    write_gz(tmp, whole + 21, n - 21);
    uint8_t *b = slurp(tmp, &nb);
    uint8_t *cat = malloc(na + nb);
    memcpy(cat, a, na);
    memcpy(cat + na, b, nb);
    write_bytes(path_in(ip, dir, "img.gz"), cat, na + nb);
    write_idx(path_in(lp, dir, "lab.gz"), true, 1, g_lab_dims, g_lab, 3);
    ig_dataset *d = ig_dataset_idx(ip, lp);
    check_dataset(d);
    ig_dataset_free(d);
    free(a);
    free(b);
    free(cat);
    rm_tree(dir);
}

Test(data, idx_num_classes_is_max_label_plus_one) {
    char dir[256], ip[1024], lp[1024];
    make_tmpdir(dir);
    uint8_t pix[2] = {0, 255}, lab[2] = {7, 0};
    uint32_t di[3] = {2, 1, 1}, dl[1] = {2};
    write_idx(path_in(ip, dir, "i"), false, 3, di, pix, 2);
    write_idx(path_in(lp, dir, "l"), true, 1, dl, lab, 2);
    ig_dataset *d = ig_dataset_idx(ip, lp);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_num_classes(d), 8);
    float x;
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, &x, &y), IG_OK);
    cr_assert_eq(x, 0.0f);
    cr_assert_eq(y, 7);
    cr_assert_eq(ig_dataset_get(d, 1, &x, &y), IG_OK);
    cr_assert_eq(x, 1.0f);
    ig_dataset_free(d);
    rm_tree(dir);
}

/* ---- bad inputs -------------------------------------------------------------------------- */

/* Writes a good label file for 3 items and tries images at ip. */
static void expect_images_fail(const char *dir, const char *ip) {
    char lp[1024];
    write_idx(path_in(lp, dir, "good-labels"), false, 1, g_lab_dims, g_lab, 3);
    ig_clear_error();
    cr_assert_null(ig_dataset_idx(ip, lp));
    cr_assert_neq(ig_last_status(), IG_OK);
    expect_error("ig_dataset_idx", ip);
}

Test(data, idx_missing_file_and_folder_in_place_of_file) {
    char dir[256], ip[1024], lp[1024];
    make_tmpdir(dir);
    write_idx(path_in(lp, dir, "lab"), false, 1, g_lab_dims, g_lab, 3);
    cr_assert_null(ig_dataset_idx(path_in(ip, dir, "nope"), lp));
    expect_error("ig_dataset_idx", ip, "cannot open");
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    path_in(ip, dir, "adir");
    mkdir_p(ip);
    cr_assert_null(ig_dataset_idx(ip, lp));
    expect_error(ip, "not a regular file");
    ig_clear_error(); /* a NULL argument does not replace a pending error */
    cr_assert_null(ig_dataset_idx(NULL, lp));
    expect_error("ig_dataset_idx", "images_path");
    ig_clear_error();
    cr_assert_null(ig_dataset_idx(lp, NULL));
    expect_error("labels_path");
    rm_tree(dir);
}

Test(data, idx_wrong_magic_type_and_ndim) {
    fill_pix();
    char dir[256], ip[1024];
    make_tmpdir(dir);
    uint8_t b[64];
    size_t n = idx_bytes(b, 3, g_img_dims, g_pix, 24);
    b[0] = 0x12;
    write_bytes(path_in(ip, dir, "magic"), b, n);
    expect_images_fail(dir, ip);
    expect_error("not an IDX file", "magic");
    b[0] = 0;
    b[2] = 0x0D; /* float */
    write_bytes(ip, b, n);
    expect_images_fail(dir, ip);
    expect_error("data type 0x0d", "not supported");
    b[2] = 0x08;
    b[3] = 2;
    write_bytes(ip, b, n);
    expect_images_fail(dir, ip);
    expect_error("2 dims, expected 3");
    /* the same in gzip */
    write_gz(ip, b, n);
    expect_images_fail(dir, ip);
    expect_error("2 dims, expected 3");
    rm_tree(dir);
}

Test(data, idx_dims_disagree_with_file_size) {
    fill_pix();
    char dir[256], ip[1024];
    make_tmpdir(dir);
    uint8_t b[64];
    /* header says 3x2x4 = 24 bytes of pixels; the file holds 20 */
    size_t n = idx_bytes(b, 3, g_img_dims, g_pix, 20);
    write_bytes(path_in(ip, dir, "short"), b, n);
    expect_images_fail(dir, ip);
    expect_error("dims 3x2x4 need 40 bytes, file holds 36");
    cr_assert_eq(ig_last_status(), IG_ERR_FORMAT);
    /* and one with extra bytes */
    n = idx_bytes(b, 3, g_img_dims, g_pix, 24);
    b[n] = 0;
    write_bytes(ip, b, n + 1);
    expect_images_fail(dir, ip);
    expect_error("need 40 bytes, file holds 41");
    /* a header cut short; an empty file */
    write_bytes(ip, b, 9);
    expect_images_fail(dir, ip);
    expect_error("too short");
    write_bytes(ip, b, 0);
    expect_images_fail(dir, ip);
    expect_error("0 bytes", "too short");
    rm_tree(dir);
}

Test(data, idx_overflowing_terabyte_and_zero_dims) {
    char dir[256], ip[1024];
    make_tmpdir(dir);
    uint8_t b[64];
    uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    size_t n = idx_bytes(b, 3, huge, NULL, 0);
    write_bytes(path_in(ip, dir, "overflow"), b, n);
    expect_images_fail(dir, ip);
    expect_error("dims 4294967295x4294967295x4294967295", "limit");
    uint32_t tera[3] = {1000000, 1000, 1000}; /* 1e12 bytes */
    n = idx_bytes(b, 3, tera, NULL, 0);
    write_gz(path_in(ip, dir, "tera.gz"), b, n);
    expect_images_fail(dir, ip);
    expect_error("dims 1000000x1000x1000 claim more than", "limit");
    uint32_t zero[3] = {3, 0, 4};
    n = idx_bytes(b, 3, zero, NULL, 0);
    write_bytes(path_in(ip, dir, "zero"), b, n);
    expect_images_fail(dir, ip);
    expect_error("dimension 1 is zero");
    rm_tree(dir);
}

Test(data, idx_truncated_gzip) {
    char dir[256], ip[1024];
    make_tmpdir(dir);
    uint32_t dims[3] = {3, 100, 100};
    uint8_t *pix = malloc(30000);
    for (int k = 0; k < 30000; k++) pix[k] = (uint8_t)(k * 7919 >> 3); /* poorly compressible */
    write_idx(path_in(ip, dir, "full.gz"), true, 3, dims, pix, 30000);
    size_t n;
    uint8_t *gz = slurp(ip, &n);
    /* cut in the middle of the deflate data, then just before the trailer's last byte */
    size_t cuts[3] = {n / 2, n - 1, 12};
    for (int c = 0; c < 3; c++) {
        write_bytes(path_in(ip, dir, "cut.gz"), gz, cuts[c]);
        expect_images_fail(dir, ip);
        expect_error("truncated gzip");
    }
    free(gz);
    free(pix);
    rm_tree(dir);
}

Test(data, idx_corrupted_gzip) {
    fill_pix();
    char dir[256], ip[1024];
    make_tmpdir(dir);
    write_idx(path_in(ip, dir, "good.gz"), true, 3, g_img_dims, g_pix, 24);
    size_t n;
    uint8_t *gz = slurp(ip, &n);
    /* the CRC-32 in the trailer (bytes n-8..n-5) */
    gz[n - 7] ^= 0x55;
    write_bytes(path_in(ip, dir, "crc.gz"), gz, n);
    expect_images_fail(dir, ip);
    expect_error("corrupted gzip", "incorrect data check");
    gz[n - 7] ^= 0x55;
    /* a bad block type in the deflate data: byte 10 starts the first block */
    gz[10] = 0xff;
    write_bytes(path_in(ip, dir, "deflate.gz"), gz, n);
    expect_images_fail(dir, ip);
    expect_error("gzip");
    free(gz);
    rm_tree(dir);
}

Test(data, idx_gzip_bomb_stops_at_header_size) {
    char dir[256], ip[1024];
    make_tmpdir(dir);
    /* Header claims 3x2x4 (24 bytes); the stream inflates to 16 MiB of zeros. */
    size_t big = (size_t)16 << 20;
    uint8_t *b = calloc(big, 1);
    idx_bytes(b, 3, g_img_dims, NULL, 0);
    write_gz(path_in(ip, dir, "bomb.gz"), b, big);
    free(b);
    expect_images_fail(dir, ip);
    expect_error("holds more than the 40 bytes its IDX header implies");
    rm_tree(dir);
}

Test(data, idx_gzip_shorter_than_dims_and_garbage_after) {
    fill_pix();
    char dir[256], ip[1024];
    make_tmpdir(dir);
    uint8_t b[64];
    size_t n = idx_bytes(b, 3, g_img_dims, g_pix, 10); /* a complete stream, 14 bytes short */
    write_gz(path_in(ip, dir, "short.gz"), b, n);
    expect_images_fail(dir, ip);
    expect_error("dims 3x2x4 need 40 bytes, the gzip data holds 26");
    n = idx_bytes(b, 3, g_img_dims, g_pix, 24);
    write_gz(ip, b, n);
    size_t gn;
    uint8_t *gz = slurp(ip, &gn);
    uint8_t *more = malloc(gn + 3);
    memcpy(more, gz, gn);
    memcpy(more + gn, "xyz", 3);
    write_bytes(ip, more, gn + 3);
    expect_images_fail(dir, ip);
    expect_error("3 bytes of garbage after the gzip data");
    /* an empty gzip stream */
    write_gz(ip, b, 0);
    expect_images_fail(dir, ip);
    expect_error("gzip data ends after 0 bytes");
    free(gz);
    free(more);
    rm_tree(dir);
}

Test(data, idx_label_file_disagrees) {
    fill_pix();
    char dir[256], ip[1024], lp[1024];
    make_tmpdir(dir);
    write_idx(path_in(ip, dir, "img"), false, 3, g_img_dims, g_pix, 24);
    uint8_t lab5[5] = {0, 1, 2, 3, 4};
    uint32_t d5[1] = {5};
    write_idx(path_in(lp, dir, "lab5"), true, 1, d5, lab5, 5);
    cr_assert_null(ig_dataset_idx(ip, lp));
    expect_error("ig_dataset_idx", lp, "5 labels for the 3 images", ip);
    /* the images passed as labels */
    cr_assert_null(ig_dataset_idx(ip, ip));
    expect_error(ip, "3 dims, expected 1");
    /* labels with a dims/size mismatch */
    uint8_t b[16];
    size_t n = idx_bytes(b, 1, g_lab_dims, g_lab, 2);
    write_bytes(lp, b, n);
    cr_assert_null(ig_dataset_idx(ip, lp));
    expect_error(lp, "dims 3 need 11 bytes, file holds 10");
    rm_tree(dir);
}

Test(data, idx_memory_entry_point) {
    fill_pix();
    uint8_t ib[64], lb[16];
    size_t in = idx_bytes(ib, 3, g_img_dims, g_pix, 24), ln = idx_bytes(lb, 1, g_lab_dims, g_lab, 3);
    ig_dataset *d = igi_dataset_idx_memory("mem-images", ib, in, "mem-labels", lb, ln);
    check_dataset(d);
    ig_dataset_free(d);
    cr_assert_null(igi_dataset_idx_memory("mem-images", ib, in - 1, "mem-labels", lb, ln));
    expect_error("mem-images", "need 40 bytes, file holds 39");
}
