/*
 * tests/fuzz/make_seeds.c — writes the starting corpora for `make fuzz-run`: small valid
 * IDX inputs (raw and gzip'd, in fuzz_idx's split layout) and PNGs of several color types,
 * bit depths and interlacing. Usage: make_seeds <idx-corpus-dir> <png-corpus-dir>.
 */
#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void save(const char *dir, const char *name, const void *b, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n) {
        fprintf(stderr, "make_seeds: cannot write %s\n", p);
        exit(1);
    }
    fclose(f);
}

/* gzip of src into dst (cap bytes); returns the size. */
static size_t gz(const uint8_t *src, size_t n, uint8_t *dst, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
    size_t out = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static size_t idx(uint8_t *b, int ndim, const uint32_t *dims, size_t payload) {
    b[0] = b[1] = 0;
    b[2] = 8;
    b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        b[7 + 4 * i] = (uint8_t)dims[i];
    }
    for (size_t k = 0; k < payload; k++) b[4 + 4 * ndim + k] = (uint8_t)(k * 37 % 256);
    return 4 + 4 * (size_t)ndim + payload;
}

static void idx_seed(const char *dir, const char *name, bool gzip) {
    uint8_t img[256], lab[64], gi[512], gl[256], out[1024];
    uint32_t di[3] = {3, 4, 5}, dl[1] = {3};
    size_t ni = idx(img, 3, di, 60), nl = idx(lab, 1, dl, 3);
    lab[8] = 0;
    lab[9] = 9;
    lab[10] = 4;
    const uint8_t *pi = img, *pl = lab;
    if (gzip) {
        ni = gz(img, ni, gi, sizeof gi);
        nl = gz(lab, nl, gl, sizeof gl);
        pi = gi;
        pl = gl;
    }
    out[0] = (uint8_t)(ni >> 8);
    out[1] = (uint8_t)ni;
    memcpy(out + 2, pi, ni);
    memcpy(out + 2 + ni, pl, nl);
    /* fuzz_idx splits at (out[0..1]) % (size - 1): make that land on ni */
    size_t size = 2 + ni + nl;
    if ((((size_t)out[0] << 8) | out[1]) % (size - 1) != ni) exit(2);
    save(dir, name, out, size);
}

static int png_body(FILE *f, png_structp png, png_infop info, int w, int h, int ct, int bd, int il,
                    png_bytep *rows) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bd, ct, il, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        png_byte alpha[16];
        for (int i = 0; i < 16; i++) {
            pal[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)(i * 5)};
            alpha[i] = (png_byte)(i * 17);
        }
        png_set_PLTE(png, info, pal, 1 << (bd < 4 ? bd : 4));
        png_set_tRNS(png, info, alpha, 1 << (bd < 4 ? bd : 4), NULL);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

static void png_seed(const char *dir, int ct, int bd, int il) {
    const int w = 9, h = 6;
    int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : ct == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rowbytes = ((size_t)w * (size_t)ch * (size_t)bd + 7) / 8;
    uint8_t *buf = malloc(rowbytes * (size_t)h);
    png_bytep rows[6];
    for (int y = 0; y < h; y++) {
        rows[y] = buf + (size_t)y * rowbytes;
        for (size_t k = 0; k < rowbytes; k++) rows[y][k] = (uint8_t)(ct == PNG_COLOR_TYPE_PALETTE && bd == 8 ? k % 16 : k * 29 + (size_t)y * 7);
    }
    char name[64], path[1024];
    snprintf(name, sizeof name, "ct%d-bd%d-il%d.png", ct, bd, il);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) exit(1);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int r = png_body(f, png, info, w, h, ct, bd, il, rows);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(buf);
    if (r != 0) exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds <idx-corpus-dir> <png-corpus-dir>\n");
        return 1;
    }
    idx_seed(argv[1], "raw.idx", false);
    idx_seed(argv[1], "gzip.idx", true);
    static const int kinds[][2] = {{0, 1}, {0, 8}, {0, 16}, {2, 8}, {2, 16}, {3, 2}, {3, 8}, {4, 8}, {6, 8}, {6, 16}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int il = 0; il < 2; il++) png_seed(argv[2], kinds[k][0], kinds[k][1], il);
    return 0;
}
