/*
 * tests/data/test_png.c — PNG folders: every color type and bit depth (gray 1/2/4/8/16,
 * gray+alpha, RGB, RGBA 8/16, palette 1/2/4/8, tRNS), plain and interlaced, written by the
 * test with libpng and read back as 1 and 3 channels against values computed here; folder
 * layout (sorted classes and files, hidden entries and other extensions skipped); the PNG
 * export round trip; and the bad inputs: truncated, CRC-corrupted, empty, zero-sized, not
 * PNG, absurd dimensions, short image data, a mismatched size, an empty class folder, a
 * folder where a file should be, a file that vanished, bad arguments.
 */
#include "data_fixtures.h"
#include "data/data_impl.h"

#define W 7
#define H 5

/* The value the reader should give for a sample of bit depth bd (in 8 bits). */
static int expect8(uint16_t v, int bd) {
    if (bd == 16) return (v + 128) / 257; /* rounding, as png_set_scale_16 */
    return v * 255 / ((1 << bd) - 1);
}

static int gray_of(int r, int g, int b) { return (299 * r + 587 * g + 114 * b + 500) / 1000; }

static png_color g_palette[20];

/* Writes one image of the given kind into root/cls/img.png and fills the expected RGB
 * bytes [H*W*3]. */
static void make_image(const char *root, int color_type, int bd, bool interlace, bool trns, uint8_t *rgb) {
    int ch = png_spec_channels(color_type);
    uint16_t samples[W * H * 4];
    int pal_n = color_type == PNG_COLOR_TYPE_PALETTE ? (bd == 8 ? 20 : 1 << bd) : 0;
    for (int i = 0; i < 20; i++)
        g_palette[i] = (png_color){(png_byte)(i * 40 + 5), (png_byte)(255 - i * 11), (png_byte)(i * 7)};
    for (int p = 0; p < W * H; p++) {
        for (int c = 0; c < ch; c++) {
            uint16_t v;
            if (color_type == PNG_COLOR_TYPE_PALETTE) v = (uint16_t)((p * 7 + 3) % pal_n);
            else if (bd == 16) v = (uint16_t)(257 * ((p * 31 + c * 67) % 256) + (p * 13 + c * 5) % 100);
            else v = (uint16_t)((p * 31 + c * 67 + 3) % (1 << bd));
            samples[p * ch + c] = v;
        }
        const uint16_t *s = samples + p * ch;
        if (color_type == PNG_COLOR_TYPE_PALETTE) {
            rgb[3 * p] = g_palette[s[0]].red;
            rgb[3 * p + 1] = g_palette[s[0]].green;
            rgb[3 * p + 2] = g_palette[s[0]].blue;
        } else if (color_type & PNG_COLOR_MASK_COLOR) {
            for (int c = 0; c < 3; c++) rgb[3 * p + c] = (uint8_t)expect8(s[c], bd);
        } else {
            for (int c = 0; c < 3; c++) rgb[3 * p + c] = (uint8_t)expect8(s[0], bd);
        }
    }
    uint8_t alpha[20];
    for (int i = 0; i < 20; i++) alpha[i] = (uint8_t)(i * 13);
    png_color_16 tcol = {0, 0, 0, 0, 0};
    tcol.gray = samples[0]; /* pixel 0's value is "transparent": the reader must keep it */
    tcol.red = samples[0];
    png_spec spec = {W, H, color_type, bd, interlace, samples, pal_n ? g_palette : NULL, pal_n,
                     trns && pal_n ? alpha : NULL, trns && !pal_n ? &tcol : NULL};
    char cls[1024], p[1024];
    mkdir_p(path_in(cls, root, "cls"));
    write_png_spec(path_in(p, cls, "img.png"), &spec);
}

static void check_kind(int color_type, int bd, bool interlace, bool trns) {
    char root[256];
    make_tmpdir(root);
    uint8_t rgb[W * H * 3];
    make_image(root, color_type, bd, interlace, trns, rgb);
    for (int channels = 1; channels <= 3; channels += 2) {
        ig_dataset *d = ig_dataset_image_folder(root, channels);
        cr_assert_not_null(d, "type %d depth %d: %s", color_type, bd, ig_last_error());
        int64_t shape[3];
        ig_dataset_item_shape(d, shape);
        cr_assert(shape[0] == channels && shape[1] == H && shape[2] == W);
        float x[3 * W * H];
        int64_t y;
        cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_OK, "type %d depth %d interlace %d: %s", color_type, bd,
                     interlace, ig_last_error());
        cr_assert_eq(y, 0);
        for (int p = 0; p < W * H; p++) {
            for (int c = 0; c < channels; c++) {
                int want = channels == 3 ? rgb[3 * p + c] : gray_of(rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]);
                cr_assert_eq(x[c * W * H + p], (float)want / 255.0f,
                             "type %d depth %d interlace %d trns %d channels %d pixel %d c %d: got %g want %d",
                             color_type, bd, interlace, trns, channels, p, c, x[c * W * H + p] * 255.0, want);
            }
        }
        ig_dataset_free(d);
    }
    rm_tree(root);
}

Test(data, png_every_color_type_bit_depth_and_interlace) {
    static const struct { int type, depth; bool trns; } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, 1, false},       {PNG_COLOR_TYPE_GRAY, 2, false},
        {PNG_COLOR_TYPE_GRAY, 4, false},       {PNG_COLOR_TYPE_GRAY, 8, false},
        {PNG_COLOR_TYPE_GRAY, 16, false},      {PNG_COLOR_TYPE_GRAY, 8, true},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 8, false}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16, false},
        {PNG_COLOR_TYPE_RGB, 8, false},        {PNG_COLOR_TYPE_RGB, 16, false},
        {PNG_COLOR_TYPE_RGB, 8, true},         {PNG_COLOR_TYPE_RGB_ALPHA, 8, false},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16, false}, {PNG_COLOR_TYPE_PALETTE, 1, false},
        {PNG_COLOR_TYPE_PALETTE, 2, false},    {PNG_COLOR_TYPE_PALETTE, 4, false},
        {PNG_COLOR_TYPE_PALETTE, 8, false},    {PNG_COLOR_TYPE_PALETTE, 8, true},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int il = 0; il < 2; il++) check_kind(kinds[k].type, kinds[k].depth, il, kinds[k].trns);
}

/* root/<name>/<file> as a 2x2 gray image filled with v. */
static void put_gray(const char *root, const char *cls, const char *file, uint8_t v) {
    char c[1024], p[1024];
    path_in(c, root, cls);
    mkdir(c, 0777);
    uint8_t pix[4] = {v, v, v, v};
    write_png8(path_in(p, c, file), 2, 2, 1, pix);
}

Test(data, png_folder_layout_sorted_and_filtered) {
    char root[256], p[1024];
    make_tmpdir(root);
    put_gray(root, "zebra", "b.png", 10);
    put_gray(root, "zebra", "a.PNG", 20); /* extension in any case */
    put_gray(root, "ant", "x.png", 30);
    put_gray(root, "Bee", "1.png", 40); /* byte order: "Bee" < "ant" < "zebra" */
    put_gray(root, ".hidden", "h.png", 50);
    write_bytes(path_in(p, root, "zebra/notes.txt"), "hi", 2);
    write_bytes(path_in(p, root, "zebra/.c.png"), "junk", 4);
    write_bytes(path_in(p, root, "stray.png"), "junk", 4); /* a file at the top: not a class */
    ig_dataset *d = ig_dataset_image_folder(root, 1);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_num_classes(d), 3);
    cr_assert_str_eq(ig_dataset_class_name(d, 0), "Bee");
    cr_assert_str_eq(ig_dataset_class_name(d, 1), "ant");
    cr_assert_str_eq(ig_dataset_class_name(d, 2), "zebra");
    cr_assert_eq(ig_dataset_len(d), 4);
    const int want_label[4] = {0, 1, 2, 2};
    const uint8_t want_v[4] = {40, 30, 20, 10}; /* zebra: a.PNG < b.png */
    for (int i = 0; i < 4; i++) {
        float x[4];
        int64_t y;
        cr_assert_eq(ig_dataset_get(d, i, x, &y), IG_OK, "%s", ig_last_error());
        cr_assert_eq(y, want_label[i]);
        cr_assert_eq(x[3], (float)want_v[i] / 255.0f);
    }
    ig_dataset_free(d);
    rm_tree(root);
}

/* ---- export ------------------------------------------------------------------------------- */

typedef struct mem_ds {
    int64_t n, numel;
    const float *x;
    const int64_t *y;
} mem_ds;

static int64_t mem_len(void *ctx) { return ((mem_ds *)ctx)->n; }
static ig_status mem_read(void *ctx, int64_t i, float *x, int64_t *label) {
    mem_ds *m = ctx;
    memcpy(x, m->x + i * m->numel, (size_t)m->numel * sizeof *x);
    *label = m->y[i];
    return IG_OK;
}
static void mem_free(void *ctx) { free(ctx); }
static const ig_dataset_ops mem_ops = {mem_len, mem_read, mem_free};

static ig_dataset *mem_dataset(int64_t n, int ndim, const int64_t *shape, const float *x, const int64_t *y,
                               int classes, const char *const *names) {
    mem_ds *m = malloc(sizeof *m);
    int64_t numel = 1;
    for (int k = 0; k < ndim; k++) numel *= shape[k];
    *m = (mem_ds){n, numel, x, y};
    return ig_dataset_new(&mem_ops, m, ndim, shape, classes, names);
}

Test(data, png_export_round_trip) {
    for (int C = 1; C <= 3; C += 2) {
        char root[256];
        make_tmpdir(root);
        enum { N = 12, HH = 3, WW = 4 };
        static float x[N * 3 * HH * WW];
        static int64_t y[N];
        int numel = C * HH * WW;
        for (int i = 0; i < N; i++) {
            y[i] = (i * 5) % 3;
            for (int k = 0; k < numel; k++) x[i * numel + k] = (float)((i * 17 + k * 29) % 256) / 255.0f;
        }
        const char *names[3] = {"cat", "dog", "eel"};
        int64_t shape[3] = {C, HH, WW};
        ig_dataset *d = mem_dataset(N, 3, shape, x, y, 3, names);
        cr_assert_not_null(d);
        char out[1024];
        cr_assert_eq(ig_dataset_export_png(d, path_in(out, root, "png")), IG_OK, "%s", ig_last_error());
        ig_dataset *r = ig_dataset_image_folder(out, C);
        cr_assert_not_null(r, "%s", ig_last_error());
        cr_assert_eq(ig_dataset_len(r), N);
        cr_assert_str_eq(ig_dataset_class_name(r, 1), "dog");
        /* Read back grouped by class, in index order within a class (zero-padded names). */
        int j = 0;
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < N; i++) {
                if (y[i] != c) continue;
                float got[3 * HH * WW];
                int64_t lab;
                cr_assert_eq(ig_dataset_get(r, j, got, &lab), IG_OK);
                cr_assert_eq(lab, c);
                for (int k = 0; k < numel; k++) cr_assert_eq(got[k], x[i * numel + k], "item %d value %d", i, k);
                j++;
            }
        }
        char p[1024];
        struct stat st;
        cr_assert_eq(stat(path_in(p, out, "eel/01.png"), &st), 0, "file names are zero-padded indices");
        ig_dataset_free(r);
        ig_dataset_free(d);
        rm_tree(root);
    }
}

Test(data, png_export_bad_arguments) {
    char root[256], p[1024];
    make_tmpdir(root);
    float x[4] = {0};
    int64_t y[1] = {0};
    int64_t s1[1] = {4};
    ig_dataset *d = mem_dataset(1, 1, s1, x, y, 1, NULL);
    cr_assert_eq(ig_dataset_export_png(d, root), IG_ERR_SHAPE);
    expect_error("ig_dataset_export_png", "images");
    ig_dataset_free(d);
    int64_t s2[3] = {2, 1, 2};
    d = mem_dataset(1, 3, s2, x, y, 1, NULL);
    cr_assert_eq(ig_dataset_export_png(d, root), IG_ERR_SHAPE);
    ig_dataset_free(d);
    const char *bad[1] = {"a/b"};
    int64_t s3[3] = {1, 2, 2};
    d = mem_dataset(1, 3, s3, x, y, 1, bad);
    cr_assert_eq(ig_dataset_export_png(d, root), IG_ERR_ARG);
    expect_error("\"a/b\"");
    ig_dataset_free(d);
    d = mem_dataset(1, 3, s3, x, y, 1, NULL);
    write_bytes(path_in(p, root, "file"), "x", 1);
    cr_assert_eq(ig_dataset_export_png(d, p), IG_ERR_IO);
    expect_error(p, "not a folder");
    ig_clear_error();
    cr_assert_eq(ig_dataset_export_png(d, NULL), IG_ERR_ARG);
    ig_dataset_free(d);
    rm_tree(root);
}

/* ---- bad inputs ---------------------------------------------------------------------------- */

/* A good 7x5 RGB PNG at root/cls/img.png; returns its bytes. */
static uint8_t *good_png(const char *root, char *path, size_t *n) {
    uint8_t rgb[W * H * 3];
    make_image(root, PNG_COLOR_TYPE_RGB, 8, false, false, rgb);
    char cls[1024];
    path_in(path, path_in(cls, root, "cls"), "img.png");
    return slurp(path, n);
}

static size_t find_chunk(const uint8_t *b, size_t n, const char *type) {
    for (size_t k = 8; k + 8 <= n; k++)
        if (memcmp(b + k + 4, type, 4) == 0) return k;
    cr_assert_fail("no %s chunk", type);
    return 0;
}

/* Expects the folder to open but item 0 to fail naming path and problem. */
static void expect_read_fails(const char *root, const char *path, const char *problem) {
    ig_dataset *d = ig_dataset_image_folder(root, 3);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x[3 * W * H];
    int64_t y;
    cr_assert_eq(ig_dataset_get(d, 0, x, &y), IG_ERR_FORMAT);
    expect_error("ig_dataset_image_folder", path, problem);
    ig_dataset_free(d);
}

static void expect_open_fails(const char *root, const char *path, const char *problem) {
    ig_clear_error();
    cr_assert_null(ig_dataset_image_folder(root, 3));
    cr_assert_neq(ig_last_status(), IG_OK);
    expect_error("ig_dataset_image_folder", path, problem);
}

Test(data, png_truncated) {
    char root[256], path[1024];
    make_tmpdir(root);
    size_t n;
    uint8_t *b = good_png(root, path, &n);
    size_t idat = find_chunk(b, n, "IDAT");
    write_bytes(path, b, idat + 12); /* a few bytes into the image data */
    expect_read_fails(root, path, "truncated");
    write_bytes(path, b, n - 6); /* IEND cut */
    expect_read_fails(root, path, "truncated");
    write_bytes(path, b, 20); /* inside IHDR: caught at open */
    expect_open_fails(root, path, "truncated PNG (20 bytes");
    free(b);
    rm_tree(root);
}

Test(data, png_crc_corrupted) {
    char root[256], path[1024];
    make_tmpdir(root);
    size_t n;
    uint8_t *b = good_png(root, path, &n);
    size_t idat = find_chunk(b, n, "IDAT");
    size_t crc_at = idat + 8 + ((size_t)b[idat] << 24 | (size_t)b[idat + 1] << 16 | (size_t)b[idat + 2] << 8 | b[idat + 3]);
    b[crc_at + 2] ^= 0x40; /* the IDAT chunk's CRC */
    write_bytes(path, b, n);
    expect_read_fails(root, path, "IDAT: CRC error");
    b[crc_at + 2] ^= 0x40;
    b[idat + 8] ^= 0x40; /* the image data itself (libpng inflates it before the CRC) */
    write_bytes(path, b, n);
    expect_read_fails(root, path, "bad PNG");
    b[idat + 8] ^= 0x40;
    b[17] ^= 1; /* width byte in IHDR: its CRC no longer matches */
    write_bytes(path, b, n);
    expect_open_fails(root, path, "IHDR CRC mismatch");
    free(b);
    rm_tree(root);
}

/* A file holding only a signature and an IHDR with a correct CRC. */
static void write_ihdr(const char *path, uint32_t w, uint32_t h, int bd, int ct) {
    uint8_t b[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    b[24] = (uint8_t)bd;
    b[25] = (uint8_t)ct;
    put_be32(b + 29, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + 12, 17));
    write_bytes(path, b, sizeof b);
}

Test(data, png_empty_zero_sized_not_png_and_absurd) {
    char root[256], cls[1024], path[1024];
    make_tmpdir(root);
    mkdir_p(path_in(cls, root, "c"));
    path_in(path, cls, "a.png");
    write_bytes(path, "", 0);
    expect_open_fails(root, path, "empty file");
    write_bytes(path, "hello, this is text and not an image at all", 44);
    expect_open_fails(root, path, "not a PNG file");
    write_ihdr(path, 0, 5, 8, 2);
    expect_open_fails(root, path, "zero-sized PNG (0x5)");
    write_ihdr(path, 100000, 100000, 8, 2);
    expect_open_fails(root, path, "PNG of 100000x100000 is larger than the 16384x16384 limit");
    write_ihdr(path, 20000, 1, 8, 2);
    expect_open_fails(root, path, "20000x1");
    write_ihdr(path, 4, 4, 3, 2);
    expect_open_fails(root, path, "invalid PNG color type 2 with bit depth 3");
    /* a valid header and nothing else: fails when read */
    write_ihdr(path, 4, 4, 8, 2);
    ig_dataset *d = ig_dataset_image_folder(root, 3);
    cr_assert_not_null(d, "%s", ig_last_error());
    float x[48];
    cr_assert_eq(ig_dataset_get(d, 0, x, NULL), IG_ERR_FORMAT);
    expect_error(path, "bad PNG");
    ig_dataset_free(d);
    /* a header claiming more pixels than the file could hold compressed: refused before
     * any allocation */
    write_ihdr(path, 9000, 9000, 8, 2);
    d = ig_dataset_image_folder(root, 3);
    cr_assert_not_null(d, "%s", ig_last_error());
    float *big = malloc(3 * 9000 * sizeof *big); /* not read into: the check comes first */
    cr_assert_eq(ig_dataset_get(d, 0, big, NULL), IG_ERR_FORMAT);
    expect_error(path, "9000x9000 image needs", "more than 33 bytes of file can hold");
    free(big);
    ig_dataset_free(d);
    rm_tree(root);
}

Test(data, png_short_image_data) {
    char root[256], cls[1024], path[1024];
    make_tmpdir(root);
    mkdir_p(path_in(cls, root, "c"));
    path_in(path, cls, "a.png");
    uint8_t pix[W * 2 * 3];
    memset(pix, 100, sizeof pix);
    write_png8(path, W, 2, 3, pix); /* 2 rows of data... */
    size_t n;
    uint8_t *b = slurp(path, &n);
    put_be32(b + 20, H); /* ...under a header that says 5 */
    put_be32(b + 29, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + 12, 17));
    write_bytes(path, b, n);
    expect_read_fails(root, path, "Not enough image data");
    free(b);
    rm_tree(root);
}

Test(data, png_folder_errors) {
    char root[256], p[1024], q[1024];
    make_tmpdir(root);
    expect_open_fails(root, root, "no class folders");
    put_gray(root, "a", "1.png", 1);
    mkdir_p(path_in(p, root, "b"));
    write_bytes(path_in(q, p, "readme.txt"), "x", 1);
    expect_open_fails(root, p, "class folder has no .png images");
    /* a size that differs from the first image's */
    uint8_t pix[9] = {0};
    write_png8(path_in(q, p, "big.png"), 3, 3, 1, pix);
    expect_open_fails(root, q, "image is 3x3, but");
    unlink(q);
    /* a folder where an image should be */
    mkdir_p(path_in(q, p, "dir.png"));
    expect_open_fails(root, q, "not a regular file");
    rmdir(q);
    /* a dangling link: the file is missing */
    cr_assert_eq(symlink("/nonexistent/x.png", path_in(q, p, "gone.png")), 0);
    expect_open_fails(root, q, "cannot open");
    unlink(q);
    /* a file removed after open: the read names it */
    put_gray(root, "b", "2.png", 2);
    ig_dataset *d = ig_dataset_image_folder(root, 1);
    cr_assert_not_null(d, "%s", ig_last_error());
    unlink(path_in(q, p, "2.png"));
    float x[4];
    cr_assert_eq(ig_dataset_get(d, 1, x, NULL), IG_ERR_IO);
    expect_error(q, "cannot open");
    ig_dataset_free(d);
    /* bad arguments and a missing root */
    cr_assert_null(ig_dataset_image_folder(root, 2));
    expect_error("ig_dataset_image_folder", "channels 2");
    cr_assert_null(ig_dataset_image_folder(path_in(p, root, "nowhere"), 3));
    expect_error(p, "cannot open folder");
    ig_clear_error();
    cr_assert_null(ig_dataset_image_folder(NULL, 3));
    expect_error("root");
    rm_tree(root);
}

Test(data, png_decode_from_memory) {
    char root[256], path[1024];
    make_tmpdir(root);
    size_t n;
    uint8_t *b = good_png(root, path, &n);
    uint8_t *pix;
    uint32_t w, h;
    cr_assert_eq(igi_png_decode("t", "mem", b, n, 3, &pix, &w, &h), IG_OK, "%s", ig_last_error());
    cr_assert(w == W && h == H);
    free(pix);
    cr_assert_eq(igi_png_decode("t", "mem", b, n / 2, 3, &pix, &w, &h), IG_ERR_FORMAT);
    cr_assert_null(pix);
    expect_error("t: mem: bad PNG");
    free(b);
    rm_tree(root);
}
