/*
 * data/idx.c — the IDX reader (MNIST, Fashion-MNIST, KMNIST): an image file [N,H,W] and a
 * label file [N] of unsigned bytes, each raw or gzip'd. Gzip is recognised by its magic
 * bytes (1f 8b), never by the file name, and inflated with zlib.
 *
 * The whole file is read into memory first (bounded by its size), then decoded from memory,
 * which is also the entry point the fuzzer drives. Sizes are trusted only after checks:
 *  - the header's dimension product is computed in 64 bits with an overflow check and must
 *    stay under IGI_DATA_MAX_BYTES;
 *  - a raw file must hold exactly header + product bytes;
 *  - a gzip stream is inflated in bounded chunks into a buffer that grows (doubling, capped
 *    at the header's size) only as bytes really arrive, so a short stream costs only what it
 *    decompresses; inflating stops at the header's size plus one byte of slack — a stream
 *    with more data (a gzip bomb behind a small header) is an error, as is a truncated or
 *    corrupted stream (the CRC in the gzip trailer is checked).
 *
 * The dataset keeps the images as u8 [N,H,W] and the labels as u8 [N]; read() converts one
 * image to float [1,H,W] in [0,1]. num_classes is (largest label) + 1: IDX files carry no
 * class count, and this gives 10 for the MNIST family and the right count for EMNIST splits.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data_impl.h"

/* Streams bytes out of an in-memory gzip file (one or more concatenated members). */
typedef struct gz_reader {
    z_stream z;
    const uint8_t *in;   /* compressed bytes not yet handed to zlib */
    size_t in_left;
    bool ended;          /* the last member ended and no other follows */
    const char *op, *name;
    uint64_t produced;   /* decompressed bytes so far, for messages */
} gz_reader;

static ig_status gz_begin(gz_reader *g, const char *op, const char *name, const uint8_t *bytes, size_t n) {
    memset(g, 0, sizeof *g);
    g->op = op;
    g->name = name;
    g->in = bytes;
    g->in_left = n;
    /* 16 + MAX_WBITS: gzip wrapper only, with its header and CRC-32/length trailer checked. */
    if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK)
        return igi_error(IG_ERR_NOMEM, "%s: %s: cannot start zlib", op, name);
    return IG_OK;
}

static void gz_end(gz_reader *g) { inflateEnd(&g->z); }

/* One inflate call into dst[0..cap): *made bytes come out. Handles member boundaries
 * (another gzip member may follow; anything else after a trailer is garbage) and turns
 * zlib's failures into errors naming the file. */
static ig_status gz_step(gz_reader *g, uint8_t *dst, size_t cap, size_t *made) {
    /* Bounded chunks: zlib's counters are 32-bit. */
    uInt out_chunk = (uInt)(cap < (1u << 30) ? cap : (1u << 30));
    uInt in_chunk = (uInt)(g->in_left < (1u << 30) ? g->in_left : (1u << 30));
    g->z.next_in = (Bytef *)(uintptr_t)g->in; /* zlib never writes through next_in */
    g->z.avail_in = in_chunk;
    g->z.next_out = dst;
    g->z.avail_out = out_chunk;
    int r = inflate(&g->z, Z_NO_FLUSH);
    size_t used = in_chunk - g->z.avail_in;
    *made = out_chunk - g->z.avail_out;
    g->in += used;
    g->in_left -= used;
    g->produced += *made;
    if (r == Z_STREAM_END) {
        if (g->in_left >= 2 && g->in[0] == 0x1f && g->in[1] == 0x8b) {
            if (inflateReset(&g->z) != Z_OK)
                return igi_error(IG_ERR_FORMAT, "%s: %s: zlib reset failed", g->op, g->name);
        } else if (g->in_left > 0) {
            return igi_error(IG_ERR_FORMAT, "%s: %s: %zu bytes of garbage after the gzip data", g->op, g->name,
                             g->in_left);
        } else {
            g->ended = true;
        }
        return IG_OK;
    }
    if (r == Z_DATA_ERROR)
        return igi_error(IG_ERR_FORMAT, "%s: %s: corrupted gzip data after %llu bytes: %s", g->op, g->name,
                         (unsigned long long)g->produced, g->z.msg ? g->z.msg : "invalid data");
    if (r == Z_MEM_ERROR) return igi_error(IG_ERR_NOMEM, "%s: %s: zlib out of memory", g->op, g->name);
    if (r != Z_OK && r != Z_BUF_ERROR) return igi_error(IG_ERR_FORMAT, "%s: %s: gzip error %d", g->op, g->name, r);
    if (used == 0 && *made == 0) {
        /* No progress with room to write: the input is used up before the stream's end. */
        return igi_error(IG_ERR_FORMAT, "%s: %s: truncated gzip data (ends after %llu bytes)%s", g->op, g->name,
                         (unsigned long long)g->produced, g->in_left ? " (zlib stalled)" : "");
    }
    return IG_OK;
}

/* Inflates exactly want bytes into dst. Fails on a short, truncated or corrupted stream. */
static ig_status gz_read(gz_reader *g, uint8_t *dst, size_t want, const char *what) {
    size_t done = 0;
    while (done < want) {
        if (g->ended)
            return igi_error(IG_ERR_FORMAT, "%s: %s: gzip data ends after %llu bytes, in the %s", g->op,
                             g->name, (unsigned long long)g->produced, what);
        size_t made;
        ig_status st = gz_step(g, dst + done, want - done, &made);
        done += made;
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

/* After the payload the stream must end (its trailer CRC checked) with no byte to spare:
 * at most sizeof slack bytes beyond the header's size are ever decompressed. */
static ig_status gz_finish(gz_reader *g, uint64_t expected) {
    while (!g->ended) {
        uint8_t slack[64];
        size_t made;
        ig_status st = gz_step(g, slack, sizeof slack, &made);
        if (made > 0)
            return igi_error(IG_ERR_FORMAT,
                             "%s: %s: gzip data holds more than the %llu bytes its IDX header implies", g->op,
                             g->name, (unsigned long long)expected);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* "60000x28x28" */
static void dims_text(const uint32_t *dims, int ndim, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%u", i ? "x" : "", dims[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
}

/* Checks the 4-byte magic and the dims; fills out->ndim, dims, count. */
static ig_status check_header(const char *op, const char *name, const uint8_t *magic, const uint8_t *dimbytes,
                              int want_ndim, igi_idx_array *out) {
    for (int i = 0; i < want_ndim; i++) out->dims[i] = be32(dimbytes + 4 * i);
    out->ndim = want_ndim;
    char dt[64];
    dims_text(out->dims, want_ndim, dt, sizeof dt);
    uint64_t count = 1;
    bool too_big = false;
    for (int i = 0; i < want_ndim; i++) {
        if (out->dims[i] == 0)
            return igi_error(IG_ERR_FORMAT, "%s: %s: dims %s: dimension %d is zero", op, name, dt, i);
        /* 64-bit product with an overflow guard: three 32-bit dims can reach 2^96. */
        if (count > IGI_DATA_MAX_BYTES / out->dims[i]) too_big = true;
        else count *= out->dims[i];
    }
    (void)magic;
    if (too_big || count > IGI_DATA_MAX_BYTES)
        return igi_error(IG_ERR_FORMAT, "%s: %s: dims %s claim more than the %llu-byte limit", op, name, dt,
                         (unsigned long long)IGI_DATA_MAX_BYTES);
    out->count = count;
    return IG_OK;
}

static ig_status check_magic(const char *op, const char *name, const uint8_t *m, int want_ndim) {
    uint32_t magic = be32(m);
    if (m[0] != 0 || m[1] != 0)
        return igi_error(IG_ERR_FORMAT, "%s: %s: not an IDX file (magic 0x%08x, expected 0x000008%02x)", op, name,
                         magic, want_ndim);
    if (m[2] != 0x08)
        return igi_error(IG_ERR_FORMAT,
                         "%s: %s: IDX data type 0x%02x is not supported (only 0x08, unsigned bytes)", op, name,
                         m[2]);
    if (m[3] != want_ndim)
        return igi_error(IG_ERR_FORMAT, "%s: %s: IDX file has %d dims, expected %d (magic 0x%08x)", op, name,
                         m[3], want_ndim, magic);
    return IG_OK;
}

ig_status igi_idx_decode(const char *op, const char *name, const uint8_t *bytes, size_t n, int want_ndim,
                         igi_idx_array *out) {
    memset(out, 0, sizeof *out);
    IG_ASSERT(want_ndim >= 1 && want_ndim <= 3);
    size_t header = 4 + 4 * (size_t)want_ndim;
    if (n >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        gz_reader g;
        ig_status st = gz_begin(&g, op, name, bytes, n);
        if (st != IG_OK) return st;
        uint8_t head[16];
        st = gz_read(&g, head, 4, "IDX magic");
        if (st == IG_OK) st = check_magic(op, name, head, want_ndim);
        if (st == IG_OK) st = gz_read(&g, head + 4, header - 4, "IDX dims");
        if (st == IG_OK) st = check_header(op, name, head, head + 4, want_ndim, out);
        /* Grow as data arrives: never more than twice what was really decompressed, never
         * more than the header's size. */
        uint8_t *buf = NULL;
        size_t have = 0, cap = 0;
        while (st == IG_OK && have < out->count) {
            size_t next = cap ? cap * 2 : (size_t)1 << 20;
            if (next > out->count) next = (size_t)out->count;
            uint8_t *nb = realloc(buf, next);
            if (!nb) {
                st = igi_error(IG_ERR_NOMEM, "%s: %s: out of memory for %zu bytes", op, name, next);
                break;
            }
            buf = nb;
            cap = next;
            st = gz_read(&g, buf + have, cap - have, "image data");
            if (st == IG_OK) have = cap;
        }
        if (st == IG_OK) st = gz_finish(&g, header + out->count);
        gz_end(&g);
        if (st != IG_OK) {
            if (st == IG_ERR_FORMAT && have < out->count && out->count > 0 && g.ended) {
                char dt[64];
                dims_text(out->dims, want_ndim, dt, sizeof dt);
                igi_error(IG_ERR_FORMAT, "%s: %s: dims %s need %llu bytes, the gzip data holds %llu", op, name, dt,
                          (unsigned long long)(header + out->count), (unsigned long long)g.produced);
            }
            free(buf);
            memset(out, 0, sizeof *out);
            return st;
        }
        out->owned = buf;
        out->data = buf;
        return IG_OK;
    }
    /* Raw: the file size must match the header exactly. */
    if (n < header) {
        if (n >= 4) {
            ig_status st = check_magic(op, name, bytes, want_ndim);
            if (st != IG_OK) return st;
        }
        return igi_error(IG_ERR_FORMAT, "%s: %s: file of %zu bytes is too short for an IDX header (%zu bytes)",
                         op, name, n, header);
    }
    ig_status st = check_magic(op, name, bytes, want_ndim);
    if (st == IG_OK) st = check_header(op, name, bytes, bytes + 4, want_ndim, out);
    if (st != IG_OK) return st;
    if ((uint64_t)(n - header) != out->count) {
        char dt[64];
        dims_text(out->dims, want_ndim, dt, sizeof dt);
        uint64_t need = header + out->count;
        memset(out, 0, sizeof *out);
        return igi_error(IG_ERR_FORMAT, "%s: %s: dims %s need %llu bytes, file holds %zu", op, name, dt,
                         (unsigned long long)need, n);
    }
    out->data = bytes + header;
    return IG_OK;
}

/* ---- the dataset -------------------------------------------------------------------------- */

typedef struct idx_ctx {
    igi_idx_array images, labels;
    int64_t n;
    size_t pixels; /* H*W */
} idx_ctx;

static int64_t idx_length(void *ctx) { return ((idx_ctx *)ctx)->n; }

static ig_status idx_read(void *ctx, int64_t i, float *x, int64_t *label) {
    const idx_ctx *c = ctx;
    const uint8_t *p = c->images.data + (size_t)i * c->pixels;
    for (size_t k = 0; k < c->pixels; k++) x[k] = igi_u8_to_unit[p[k]];
    *label = c->labels.data[i];
    return IG_OK;
}

static void idx_free(void *ctx) {
    idx_ctx *c = ctx;
    if (!c) return;
    free(c->images.owned);
    free(c->labels.owned);
    free(c);
}

static const ig_dataset_ops idx_ops = {idx_length, idx_read, idx_free};

/* Builds the dataset from decoded arrays; takes ownership of both (freed on failure). */
static ig_dataset *idx_build(const char *op, const char *images_name, const char *labels_name,
                             igi_idx_array *img, igi_idx_array *lab) {
    idx_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        free(img->owned);
        free(lab->owned);
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    c->images = *img;
    c->labels = *lab;
    if (img->dims[0] != lab->dims[0]) {
        igi_error(IG_ERR_FORMAT, "%s: %s: %u labels for the %u images in %s", op, labels_name, lab->dims[0],
                  img->dims[0], images_name);
        idx_free(c);
        return NULL;
    }
    c->n = img->dims[0];
    c->pixels = (size_t)img->dims[1] * img->dims[2];
    if (c->pixels > (size_t)IGI_DATA_MAX_NUMEL) {
        igi_error(IG_ERR_FORMAT, "%s: %s: images of %ux%u are too large", op, images_name, img->dims[1],
                  img->dims[2]);
        idx_free(c);
        return NULL;
    }
    int max_label = 0;
    for (int64_t i = 0; i < c->n; i++)
        if (lab->data[i] > max_label) max_label = lab->data[i];
    int64_t shape[3] = {1, img->dims[1], img->dims[2]};
    return ig_dataset_new(&idx_ops, c, 3, shape, max_label + 1, NULL);
}

ig_dataset *igi_dataset_idx_memory(const char *images_name, const uint8_t *images, size_t images_n,
                                   const char *labels_name, const uint8_t *labels, size_t labels_n) {
    static const char *op = "ig_dataset_idx";
    igi_idx_array img, lab;
    if (igi_idx_decode(op, images_name, images, images_n, 3, &img) != IG_OK) return NULL;
    if (igi_idx_decode(op, labels_name, labels, labels_n, 1, &lab) != IG_OK) {
        free(img.owned);
        return NULL;
    }
    /* Raw arrays point into the caller's buffers: copy them so the dataset owns its bytes. */
    igi_idx_array *arrs[2] = {&img, &lab};
    for (int k = 0; k < 2; k++) {
        if (arrs[k]->owned) continue;
        uint8_t *copy = malloc((size_t)arrs[k]->count);
        if (!copy) {
            free(img.owned);
            free(lab.owned);
            igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
            return NULL;
        }
        memcpy(copy, arrs[k]->data, (size_t)arrs[k]->count);
        arrs[k]->owned = copy;
        arrs[k]->data = copy;
    }
    return idx_build(op, images_name, labels_name, &img, &lab);
}

ig_dataset *ig_dataset_idx(const char *images_path, const char *labels_path) {
    static const char *op = "ig_dataset_idx";
    if (!images_path) {
        igi_error_null(op, "images_path");
        return NULL;
    }
    if (!labels_path) {
        igi_error_null(op, "labels_path");
        return NULL;
    }
    uint8_t *ib = NULL, *lb = NULL;
    size_t in = 0, ln = 0;
    if (igi_read_file(op, images_path, IGI_DATA_MAX_BYTES, &ib, &in) != IG_OK) return NULL;
    if (igi_read_file(op, labels_path, IGI_DATA_MAX_BYTES, &lb, &ln) != IG_OK) {
        free(ib);
        return NULL;
    }
    igi_idx_array img, lab;
    ig_dataset *d = NULL;
    if (igi_idx_decode(op, images_path, ib, in, 3, &img) == IG_OK) {
        if (igi_idx_decode(op, labels_path, lb, ln, 1, &lab) == IG_OK) {
            /* A raw array points into the file buffer, which it then owns (offset data). */
            if (!img.owned) {
                img.owned = ib;
                ib = NULL;
            }
            if (!lab.owned) {
                lab.owned = lb;
                lb = NULL;
            }
            d = idx_build(op, images_path, labels_path, &img, &lab);
        } else {
            free(img.owned);
        }
    }
    free(ib);
    free(lb);
    return d;
}
