/*
 * data/png_folder.c — PNG image folders: root/<class>/<image>.png read with libpng, and the writer
 * that exports any image dataset as such a folder (the tool that puts real images on the
 * PNG path).
 *
 * Layout: classes are the subfolders of root in byte order (as Python's sorted()), images
 * the *.png files (extension in any case) of each, also sorted; names starting with '.' are
 * skipped (editor and notebook droppings such as .ipynb_checkpoints). A class folder with
 * no image is an error, as torchvision's ImageFolder makes it.
 *
 * Decoding is lazy: ig_dataset_image_folder checks every file's signature and IHDR (size,
 * color type, CRC) at open, so a wrong size or a non-PNG fails at once and names the file,
 * and read() decodes the whole file with its own libpng state (thread-safe: nothing in the
 * dataset is written after open). Every color type and bit depth is converted to 8-bit
 * gray or RGB as PIL's convert('L') / convert('RGB') do: palettes and low bit depths
 * expanded, alpha dropped (not composited), 16-bit scaled with rounding, gray replicated to
 * RGB, and RGB to gray with the ITU-R 601 weights, L = (299 R + 587 G + 114 B + 500) / 1000.
 *
 * libpng reports errors by longjmp: each decode runs in its own function that calls setjmp
 * and keeps everything it allocates in a job struct owned by its caller (never in locals
 * of the setjmp frame), so every exit path, normal or longjmp, frees the same things.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data_impl.h"

#define PNG_HEAD_BYTES 33 /* signature (8) + IHDR length, type, 13 data bytes and CRC (25) */

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

ig_status igi_png_check_header(const char *op, const char *name, const uint8_t *b, size_t n, igi_png_header *h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n == 0) return igi_error(IG_ERR_FORMAT, "%s: %s: empty file (0 bytes), not a PNG", op, name);
    if (memcmp(b, sig, n < 8 ? n : 8) != 0)
        return igi_error(IG_ERR_FORMAT, "%s: %s: not a PNG file (bad signature)", op, name);
    if (n < PNG_HEAD_BYTES)
        return igi_error(IG_ERR_FORMAT, "%s: %s: truncated PNG (%zu bytes, the header alone needs %d)", op, name, n,
                         PNG_HEAD_BYTES);
    if (be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
        return igi_error(IG_ERR_FORMAT, "%s: %s: corrupted PNG: the first chunk is not a 13-byte IHDR", op, name);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + 12, 17);
    if (crc != be32(b + 29)) {
#ifndef IGI_FUZZING /* the fuzzer skips CRCs so that its mutations reach the decoder */
        return igi_error(IG_ERR_FORMAT, "%s: %s: corrupted PNG: IHDR CRC mismatch", op, name);
#endif
    }
    h->width = be32(b + 16);
    h->height = be32(b + 20);
    h->bit_depth = b[24];
    h->color_type = b[25];
    h->interlace = b[28];
    if (h->width == 0 || h->height == 0)
        return igi_error(IG_ERR_FORMAT, "%s: %s: zero-sized PNG (%ux%u)", op, name, h->width, h->height);
    if (h->width > IGI_PNG_MAX_SIDE || h->height > IGI_PNG_MAX_SIDE)
        return igi_error(IG_ERR_FORMAT, "%s: %s: PNG of %ux%u is larger than the %ux%u limit", op, name, h->width,
                         h->height, IGI_PNG_MAX_SIDE, IGI_PNG_MAX_SIDE);
    int bd = h->bit_depth;
    bool ok;
    switch (h->color_type) {
    case 0: ok = bd == 1 || bd == 2 || bd == 4 || bd == 8 || bd == 16; break; /* gray */
    case 3: ok = bd == 1 || bd == 2 || bd == 4 || bd == 8; break;             /* palette */
    case 2: case 4: case 6: ok = bd == 8 || bd == 16; break;                  /* RGB, GA, RGBA */
    default: ok = false;
    }
    if (!ok)
        return igi_error(IG_ERR_FORMAT, "%s: %s: invalid PNG color type %d with bit depth %d", op, name,
                         h->color_type, bd);
    if (b[26] != 0 || b[27] != 0 || h->interlace > 1)
        return igi_error(IG_ERR_FORMAT, "%s: %s: invalid PNG compression/filter/interlace method", op, name);
    return IG_OK;
}

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct png_job {
    const uint8_t *bytes;
    size_t n, pos;
    int channels;        /* wanted: 1 or 3 */
    uint8_t *raw;        /* rows after libpng's transforms, [h, rowbytes] */
    png_bytep *rows;     /* h pointers into raw */
    uint32_t w, h;
    int raw_channels;    /* 1 or 3 */
    bool nomem;
    char msg[192];       /* libpng's message, or ours */
} png_job;

static void job_error(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void job_warning(png_structp png, png_const_charp msg) {
    (void)png; /* warnings (bad ancillary chunks, extra data) are not failures: stay quiet */
    (void)msg;
}

static void job_read(png_structp png, png_bytep out, size_t len) {
    png_job *j = png_get_io_ptr(png);
    if (len > j->n - j->pos) png_error(png, "truncated PNG (file ends early)");
    memcpy(out, j->bytes + j->pos, len);
    j->pos += len;
}

/* The part that libpng may longjmp out of. All allocations go into j (the caller's), so the
 * caller frees them on every path; nothing here needs to be volatile. */
static int decode_body(png_job *j, png_structp png, png_infop info) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_read_fn(png, j, job_read);
    png_set_user_limits(png, IGI_PNG_MAX_SIDE, IGI_PNG_MAX_SIDE);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20); /* text/ICC chunks: 8 MiB */
#ifdef IGI_FUZZING
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#endif
    png_read_info(png, info);
    png_uint_32 w, h;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
    if (w == 0 || h == 0 || w > IGI_PNG_MAX_SIDE || h > IGI_PNG_MAX_SIDE) {
        snprintf(j->msg, sizeof j->msg, "PNG of %ux%u is outside 1..%u per side", (unsigned)w, (unsigned)h,
                 IGI_PNG_MAX_SIDE);
        return -1;
    }
    png_set_expand(png); /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha (dropped next) */
    if (bit_depth == 16) png_set_scale_16(png);
    png_set_strip_alpha(png);
    if (j->channels == 3 && !(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int ch = png_get_channels(png, info);
    if ((ch != 1 && ch != 3) || png_get_bit_depth(png, info) != 8 || rowbytes != (size_t)w * (size_t)ch) {
        snprintf(j->msg, sizeof j->msg, "unexpected layout after conversion (%d channels, %zu bytes a row)", ch,
                 rowbytes);
        return -1;
    }
    j->raw = malloc(rowbytes * h);
    j->rows = malloc(sizeof *j->rows * h);
    if (!j->raw || !j->rows) {
        j->nomem = true;
        snprintf(j->msg, sizeof j->msg, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
        return -1;
    }
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->raw + (size_t)y * rowbytes;
    png_read_image(png, j->rows);
    png_read_end(png, NULL); /* checks the chunks after the image data (CRCs, IEND) */
    j->w = w;
    j->h = h;
    j->raw_channels = ch;
    return 0;
}

ig_status igi_png_decode(const char *op, const char *name, const uint8_t *bytes, size_t n, int channels,
                         uint8_t **pixels, uint32_t *w, uint32_t *h) {
    *pixels = NULL;
    igi_png_header head;
    ig_status st = igi_png_check_header(op, name, bytes, n, &head);
    if (st != IG_OK) return st;
    /* The filtered image data (a filter byte + the packed samples per row) comes out of
     * deflate, which expands at most 1032:1. A header claiming more than the file could
     * hold is refused before anything is allocated: a 100-byte file never costs 800 MB. */
    static const int samples_per_pixel[7] = {1, 0, 3, 1, 2, 0, 4};
    uint64_t row = ((uint64_t)head.width * (uint64_t)samples_per_pixel[head.color_type] * (uint64_t)head.bit_depth + 7) / 8;
    uint64_t need = (row + 1) * head.height;
    if (need > (uint64_t)n * 1032u + 1024u)
        return igi_error(IG_ERR_FORMAT, "%s: %s: bad PNG: a %ux%u image needs %llu bytes of image data, more than %zu bytes of file can hold",
                         op, name, head.width, head.height, (unsigned long long)need, n);
    png_job j;
    memset(&j, 0, sizeof j);
    j.bytes = bytes;
    j.n = n;
    j.channels = channels;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, job_error, job_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int r = -1;
    if (png && info) r = decode_body(&j, png, info);
    else {
        j.nomem = true;
        snprintf(j.msg, sizeof j.msg, "cannot create the libpng decoder");
    }
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    free(j.rows);
    if (r != 0) {
        free(j.raw);
        return igi_error(j.nomem ? IG_ERR_NOMEM : IG_ERR_FORMAT, "%s: %s: bad PNG: %s", op, name, j.msg);
    }
    if (channels == 1 && j.raw_channels == 3) {
        /* RGB -> gray in place (pixel k's gray lands at k, before pixel k's RGB is needed
         * no more: index k <= 3k). */
        size_t count = (size_t)j.w * j.h;
        for (size_t k = 0; k < count; k++) {
            const uint8_t *p = j.raw + 3 * k;
            j.raw[k] = (uint8_t)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u);
        }
    }
    *pixels = j.raw;
    *w = j.w;
    *h = j.h;
    return IG_OK;
}

/* ---- the folder dataset ------------------------------------------------------------------ */

typedef struct folder_ctx {
    char **paths;    /* [n] */
    int32_t *labels; /* [n] */
    int64_t n;
    int channels;
    uint32_t w, h;
} folder_ctx;

static const char *folder_op = "ig_dataset_image_folder";

static int64_t folder_length(void *ctx) { return ((folder_ctx *)ctx)->n; }

static ig_status folder_read(void *ctx, int64_t i, float *x, int64_t *label) {
    const folder_ctx *c = ctx;
    const char *path = c->paths[i];
    uint8_t *bytes, *pix;
    size_t n;
    uint32_t w, h;
    ig_status st = igi_read_file(folder_op, path, IGI_DATA_MAX_BYTES, &bytes, &n);
    if (st != IG_OK) return st;
    st = igi_png_decode(folder_op, path, bytes, n, c->channels, &pix, &w, &h);
    free(bytes);
    if (st != IG_OK) return st;
    if (w != c->w || h != c->h) {
        free(pix);
        return igi_error(IG_ERR_FORMAT, "%s: %s: image is %ux%u, the dataset's are %ux%u", folder_op, path, w, h,
                         c->w, c->h);
    }
    /* [h, w, C] bytes -> [C, h, w] floats */
    size_t plane = (size_t)w * h;
    int C = c->channels;
    for (int ch = 0; ch < C; ch++)
        for (size_t k = 0; k < plane; k++) x[(size_t)ch * plane + k] = igi_u8_to_unit[pix[k * (size_t)C + (size_t)ch]];
    free(pix);
    *label = c->labels[i];
    return IG_OK;
}

static void folder_free(void *ctx) {
    folder_ctx *c = ctx;
    if (!c) return;
    for (int64_t i = 0; i < c->n; i++) free(c->paths[i]);
    free(c->paths);
    free(c->labels);
    free(c);
}

static const ig_dataset_ops folder_ops = {folder_length, folder_read, folder_free};

/* A growable list of malloc'd strings. */
typedef struct str_list {
    char **v;
    int64_t n, cap;
} str_list;

static bool list_push(str_list *l, char *s) {
    if (l->n == l->cap) {
        int64_t nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) return false;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return true;
}

static void list_free(str_list *l) {
    for (int64_t k = 0; k < l->n; k++) free(l->v[k]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static bool has_png_ext(const char *s) {
    size_t len = strlen(s);
    if (len < 5) return false;
    const char *e = s + len - 4;
    return e[0] == '.' && (e[1] | 0x20) == 'p' && (e[2] | 0x20) == 'n' && (e[3] | 0x20) == 'g';
}

/* Sorted names in dir (not starting with '.') that are directories (want_dirs) or that end
 * in .png (any case; their type is checked when they are opened). */
static ig_status list_dir(const char *dir, bool want_dirs, str_list *out) {
    DIR *dh = opendir(dir);
    if (!dh) {
        char why[128];
        igi_errno_text(errno, why, sizeof why);
        return igi_error(IG_ERR_IO, "%s: %s: cannot open folder: %s", folder_op, dir, why);
    }
    struct dirent *e;
    ig_status st = IG_OK;
    while ((e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (want_dirs) {
            char *p = igi_path_join(folder_op, dir, e->d_name);
            if (!p) {
                st = IG_ERR_NOMEM;
                break;
            }
            struct stat sb;
            bool is_dir = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
            free(p);
            if (!is_dir) continue;
        } else if (!has_png_ext(e->d_name)) {
            continue;
        }
        size_t len = strlen(e->d_name);
        char *s = malloc(len + 1);
        if (s) memcpy(s, e->d_name, len + 1);
        if (!s || !list_push(out, s)) {
            free(s);
            st = igi_error(IG_ERR_NOMEM, "%s: %s: out of memory listing the folder", folder_op, dir);
            break;
        }
    }
    closedir(dh);
    if (st != IG_OK) {
        list_free(out);
        return st;
    }
    if (out->n > 0) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return IG_OK;
}

/* Reads the first PNG_HEAD_BYTES of a file (fewer if it is shorter). */
static ig_status read_head(const char *path, uint8_t *buf, size_t *n) {
    char why[128];
    struct stat sb;
    int fd = igi_open_regular(folder_op, path, &sb);
    if (fd < 0) return ig_last_status();
    size_t got = 0;
    while (got < PNG_HEAD_BYTES) {
        ssize_t r = read(fd, buf + got, PNG_HEAD_BYTES - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            igi_errno_text(errno, why, sizeof why);
            close(fd);
            return igi_error(IG_ERR_IO, "%s: %s: read failed: %s", folder_op, path, why);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return IG_OK;
}

ig_dataset *ig_dataset_image_folder(const char *root, int channels) {
    if (!root) {
        igi_error_null(folder_op, "root");
        return NULL;
    }
    if (channels != 1 && channels != 3) {
        igi_error(IG_ERR_ARG, "%s: channels %d is not 1 or 3", folder_op, channels);
        return NULL;
    }
    str_list classes = {0}, files = {0};
    folder_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", folder_op);
        return NULL;
    }
    c->channels = channels;
    int64_t cap = 0;
    char *first = NULL; /* the image that fixed the size, for messages */
    if (list_dir(root, true, &classes) != IG_OK) goto fail;
    if (classes.n == 0) {
        igi_error(IG_ERR_FORMAT, "%s: %s: no class folders (expected root/<class>/*.png)", folder_op, root);
        goto fail;
    }
    if (classes.n > INT32_MAX) {
        igi_error(IG_ERR_FORMAT, "%s: %s: too many class folders", folder_op, root);
        goto fail;
    }
    for (int64_t k = 0; k < classes.n; k++) {
        char *cdir = igi_path_join(folder_op, root, classes.v[k]);
        if (!cdir) goto fail;
        ig_status st = list_dir(cdir, false, &files);
        if (st == IG_OK && files.n == 0)
            st = igi_error(IG_ERR_FORMAT, "%s: %s: class folder has no .png images", folder_op, cdir);
        for (int64_t f = 0; st == IG_OK && f < files.n; f++) {
            char *path = igi_path_join(folder_op, cdir, files.v[f]);
            if (!path) {
                st = IG_ERR_NOMEM;
                break;
            }
            uint8_t head[PNG_HEAD_BYTES];
            size_t hn = 0;
            igi_png_header h;
            st = read_head(path, head, &hn);
            if (st == IG_OK) st = igi_png_check_header(folder_op, path, head, hn, &h);
            if (st == IG_OK && !first) {
                uint64_t numel = (uint64_t)h.width * h.height * (uint64_t)channels;
                if (numel > (uint64_t)IGI_DATA_MAX_NUMEL)
                    st = igi_error(IG_ERR_FORMAT, "%s: %s: images of %ux%u are too large for a dataset item",
                                   folder_op, path, h.width, h.height);
                c->w = h.width;
                c->h = h.height;
                size_t len = strlen(path);
                first = malloc(len + 1);
                if (first) memcpy(first, path, len + 1);
                else st = igi_error(IG_ERR_NOMEM, "%s: out of memory", folder_op);
            } else if (st == IG_OK && (h.width != c->w || h.height != c->h)) {
                st = igi_error(IG_ERR_FORMAT, "%s: %s: image is %ux%u, but %s is %ux%u (all must match)", folder_op,
                               path, h.width, h.height, first, c->w, c->h);
            }
            if (st == IG_OK && c->n == cap) {
                int64_t nc = cap ? cap * 2 : 64;
                char **np = realloc(c->paths, (size_t)nc * sizeof *np);
                if (np) c->paths = np;
                int32_t *nl = np ? realloc(c->labels, (size_t)nc * sizeof *nl) : NULL;
                if (nl) c->labels = nl;
                if (!np || !nl) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", folder_op);
                else cap = nc;
            }
            if (st != IG_OK) {
                free(path);
                break;
            }
            c->paths[c->n] = path;
            c->labels[c->n] = (int32_t)k;
            c->n++;
        }
        free(cdir);
        list_free(&files);
        if (st != IG_OK) goto fail;
    }
    free(first);
    int64_t shape[3] = {channels, c->h, c->w};
    ig_dataset *d = ig_dataset_new(&folder_ops, c, 3, shape, (int)classes.n, (const char *const *)classes.v);
    list_free(&classes);
    return d;
fail:
    free(first);
    list_free(&classes);
    list_free(&files);
    folder_free(c);
    return NULL;
}

/* ---- export ------------------------------------------------------------------------------- */

typedef struct write_job {
    FILE *f;
    char msg[192];
} write_job;

static void write_error(png_structp png, png_const_charp msg) {
    write_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

/* Writes rows (8-bit gray or RGB, [h, w*C]) to j->f; may longjmp, allocates nothing. */
static int write_body(write_job *j, png_structp png, png_infop info, uint32_t w, uint32_t h, int C,
                      png_bytep *rows) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, j->f);
    png_set_IHDR(png, info, w, h, 8, C == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

static ig_status write_png(const char *op, const char *path, uint32_t w, uint32_t h, int C, png_bytep *rows) {
    write_job j;
    memset(&j, 0, sizeof j);
    j.f = fopen(path, "wb");
    if (!j.f) {
        char why[128];
        igi_errno_text(errno, why, sizeof why);
        return igi_error(IG_ERR_IO, "%s: %s: cannot create: %s", op, path, why);
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &j, write_error, job_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int r = -1;
    if (png && info) r = write_body(&j, png, info, w, h, C, rows);
    else snprintf(j.msg, sizeof j.msg, "cannot create the libpng encoder");
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    bool closed_ok = fclose(j.f) == 0;
    if (r != 0 || !closed_ok) {
        remove(path);
        return igi_error(IG_ERR_IO, "%s: %s: writing failed: %s", op, path, r != 0 ? j.msg : "close failed");
    }
    return IG_OK;
}

static ig_status make_dir(const char *op, const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return IG_OK;
        return igi_error(IG_ERR_IO, "%s: %s: exists and is not a folder", op, path);
    }
    char why[128];
    igi_errno_text(errno, why, sizeof why);
    return igi_error(IG_ERR_IO, "%s: %s: cannot create folder: %s", op, path, why);
}

ig_status ig_dataset_export_png(ig_dataset *d, const char *dir) {
    static const char *op = "ig_dataset_export_png";
    if (!d) return igi_error_null(op, "d");
    if (!dir) return igi_error_null(op, "dir");
    /* [C,H,W] with C 1 or 3, or [H,W] (gray). */
    int C = d->ndim == 3 ? (int)d->shape[0] : 1;
    int64_t H = d->ndim == 3 ? d->shape[1] : d->shape[0], W = d->ndim == 3 ? d->shape[2] : d->shape[1];
    if (d->ndim == 1 || (C != 1 && C != 3))
        return igi_error(IG_ERR_SHAPE, "%s: items must be [1,H,W], [3,H,W] or [H,W] images (ndim %d, %lld channels)",
                         op, d->ndim, (long long)(d->ndim == 3 ? d->shape[0] : 0));
    if (H > IGI_PNG_MAX_SIDE || W > IGI_PNG_MAX_SIDE)
        return igi_error(IG_ERR_SHAPE, "%s: images of %lldx%lld are larger than PNG's %u limit here", op,
                         (long long)W, (long long)H, IGI_PNG_MAX_SIDE);
    for (int c = 0; c < d->num_classes; c++) {
        const char *name = d->class_names[c];
        if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            return igi_error(IG_ERR_ARG, "%s: class name \"%s\" cannot be a folder name", op, name);
    }
    ig_status st = make_dir(op, dir);
    if (st != IG_OK) return st;
    int64_t n = ig_dataset_len(d);
    /* Zero-padded indices, so the sorted file names list the items in their order. */
    int digits = 1;
    for (int64_t m = n - 1; m >= 10; m /= 10) digits++;
    float *x = malloc((size_t)d->numel * sizeof *x);
    uint8_t *pix = malloc((size_t)d->numel);
    png_bytep *rows = malloc((size_t)H * sizeof *rows);
    bool *made = calloc(d->num_classes > 0 ? (size_t)d->num_classes : 1, 1);
    if (!x || !pix || !rows || !made) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    for (int64_t i = 0; st == IG_OK && i < n; i++) {
        int64_t label;
        st = ig_dataset_get(d, i, x, &label);
        if (st != IG_OK) break;
        if (label < 0 || label >= d->num_classes) {
            st = igi_error(IG_ERR_FORMAT, "%s: item %lld has label %lld, not in 0..%d", op, (long long)i,
                           (long long)label, d->num_classes - 1);
            break;
        }
        char *cdir = igi_path_join(op, dir, d->class_names[label]);
        if (!cdir) {
            st = IG_ERR_NOMEM;
            break;
        }
        if (!made[label]) {
            st = make_dir(op, cdir);
            made[label] = st == IG_OK;
        }
        char fname[48];
        snprintf(fname, sizeof fname, "%0*lld.png", digits & 31, (long long)i);
        char *path = st == IG_OK ? igi_path_join(op, cdir, fname) : NULL;
        free(cdir);
        if (st != IG_OK) break;
        if (!path) {
            st = IG_ERR_NOMEM;
            break;
        }
        /* [C,H,W] floats in [0,1] -> [H, W*C] bytes, rounded; NaN -> 0. */
        size_t plane = (size_t)H * (size_t)W;
        for (int c = 0; c < C; c++)
            for (size_t k = 0; k < plane; k++) {
                float v = x[(size_t)c * plane + k] * 255.0f;
                pix[k * (size_t)C + (size_t)c] = v >= 255.0f ? 255 : v > 0.0f ? (uint8_t)(v + 0.5f) : 0;
            }
        for (int64_t y = 0; y < H; y++) rows[y] = pix + (size_t)y * (size_t)W * (size_t)C;
        st = write_png(op, path, (uint32_t)W, (uint32_t)H, C, rows);
        free(path);
    }
    free(x);
    free(pix);
    free(rows);
    free(made);
    return st;
}
