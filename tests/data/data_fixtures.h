/*
 * tests/data/data_fixtures.h — helpers the data tests share: paths in a test's temporary
 * folder, writing raw and gzip'd files and IDX files, writing PNGs of any color type with
 * libpng, and an error check. The temporary folder itself, rm_tree, slurp and put_be32 come
 * from tests/test_util.h. Everything is static inline so each test file takes only what it
 * uses.
 */
#ifndef IGNIS_TESTS_DATA_FIXTURES_H
#define IGNIS_TESTS_DATA_FIXTURES_H

#include <criterion/criterion.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../test_util.h"
#include "ignis.h"

/* dir/name into out (1024 bytes). */
static inline const char *path_in(char *out, const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    cr_assert(a + b + 2 <= 1024, "path too long");
    memmove(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return out;
}

static inline void mkdir_p(const char *path) {
    cr_assert(mkdir(path, 0777) == 0, "mkdir %s failed", path);
}

static inline void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    if (n) cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static inline void write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    cr_assert_not_null(g, "gzopen %s", path);
    if (n) cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(g), Z_OK);
}

/* An IDX file in memory: magic 00 00 08 ndim, dims, then payload (payload_n bytes).
 * Returns its size; out must be large enough. */
static inline size_t idx_bytes(uint8_t *out, int ndim, const uint32_t *dims, const uint8_t *payload,
                               size_t payload_n) {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0x08;
    out[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) put_be32(out + 4 + 4 * i, dims[i]);
    size_t h = 4 + 4 * (size_t)ndim;
    if (payload_n) memcpy(out + h, payload, payload_n);
    return h + payload_n;
}

/* Writes an IDX file, gzip'd or raw. */
static inline void write_idx(const char *path, bool gz, int ndim, const uint32_t *dims, const uint8_t *payload,
                             size_t payload_n) {
    uint8_t *b = malloc(16 + payload_n);
    size_t n = idx_bytes(b, ndim, dims, payload, payload_n);
    if (gz) write_gz(path, b, n);
    else write_bytes(path, b, n);
    free(b);
}

/* The error check every bad-input test makes. */
#define expect_error(...)                                                                        \
    do {                                                                                         \
        const char *want_[] = {__VA_ARGS__};                                                     \
        for (size_t k_ = 0; k_ < sizeof want_ / sizeof want_[0]; k_++)                           \
            cr_assert_not_null(strstr(ig_last_error(), want_[k_]), "error \"%s\" lacks \"%s\"", \
                               ig_last_error(), want_[k_]);                                      \
    } while (0)

/* A PNG written with libpng: samples [h][w*channels] in the file's bit depth (16-bit as
 * uint16 values), palette/trns optional. Returns false on a libpng error. */
typedef struct png_spec {
    uint32_t w, h;
    int color_type, bit_depth;
    bool interlace;
    const uint16_t *samples; /* h * w * channels(color_type) */
    const png_color *palette;
    int palette_n;
    const uint8_t *trns; /* palette alpha (palette_n entries), or NULL */
    const png_color_16 *trns_color; /* gray/RGB transparent color, or NULL */
} png_spec;

static inline int png_spec_channels(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette: indices */
    }
}

static inline int png_write_body_(FILE *f, png_structp png, png_infop info, const png_spec *s, png_bytep *rows) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, f);
    png_set_IHDR(png, info, s->w, s->h, s->bit_depth, s->color_type,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->palette_n);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->palette_n, NULL);
    if (s->trns_color) png_set_tRNS(png, info, NULL, 0, s->trns_color);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

static inline void write_png_spec(const char *path, const png_spec *s) {
    int ch = png_spec_channels(s->color_type);
    size_t per_row = (size_t)s->w * (size_t)ch;
    /* Pack samples into libpng's row format: big-endian 16-bit, or bits packed MSB-first. */
    size_t rowbytes = s->bit_depth == 16 ? per_row * 2 : (per_row * (size_t)s->bit_depth + 7) / 8;
    uint8_t *buf = calloc(rowbytes * s->h, 1);
    png_bytep *rows = malloc(sizeof *rows * s->h);
    for (uint32_t y = 0; y < s->h; y++) {
        rows[y] = buf + y * rowbytes;
        for (size_t k = 0; k < per_row; k++) {
            uint16_t v = s->samples[y * per_row + k];
            if (s->bit_depth == 16) {
                rows[y][2 * k] = (uint8_t)(v >> 8);
                rows[y][2 * k + 1] = (uint8_t)v;
            } else if (s->bit_depth == 8) {
                rows[y][k] = (uint8_t)v;
            } else {
                size_t bit = k * (size_t)s->bit_depth;
                int shift = 8 - s->bit_depth - (int)(bit % 8);
                rows[y][bit / 8] |= (uint8_t)(v << shift);
            }
        }
    }
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int r = png_write_body_(f, png, info, s, rows);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(rows);
    free(buf);
    cr_assert_eq(r, 0, "libpng failed writing %s", path);
}

/* An 8-bit gray or RGB PNG from bytes [h][w*ch]. */
static inline void write_png8(const char *path, uint32_t w, uint32_t h, int ch, const uint8_t *pix) {
    size_t n = (size_t)w * h * (size_t)ch;
    uint16_t *s16 = malloc(n * sizeof *s16);
    for (size_t k = 0; k < n; k++) s16[k] = pix[k];
    png_spec s = {w, h, ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, 8, false, s16, NULL, 0, NULL, NULL};
    write_png_spec(path, &s);
    free(s16);
}

#endif
