/*
 * data/cifar.c — CIFAR-10 and CIFAR-100 binary batches. A CIFAR-10 record is 1 label byte
 * then 3072 pixel bytes (1024 red, 1024 green, 1024 blue: already [3,32,32]); a CIFAR-100
 * record is a coarse label byte, a fine label byte, then the same 3072 bytes. Fine labels
 * are the classes.
 *
 * Each file must be a whole, non-zero number of records and every label must be in range
 * (CIFAR-10 < 10; CIFAR-100 fine < 100, coarse < 20). Files are read whole (bounded by
 * their size) and their records packed into one u8 [N,3,32,32] array plus u8 labels; read()
 * converts to float in [0,1].
 */
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

#define CIFAR_PIXELS 3072u /* 3 x 32 x 32 */

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

typedef struct cifar_ctx {
    uint8_t *pixels; /* [n, 3072] */
    uint8_t *labels; /* [n] */
    int64_t n;
} cifar_ctx;

static int64_t cifar_length(void *ctx) { return ((cifar_ctx *)ctx)->n; }

static ig_status cifar_read(void *ctx, int64_t i, float *x, int64_t *label) {
    const cifar_ctx *c = ctx;
    const uint8_t *p = c->pixels + (size_t)i * CIFAR_PIXELS;
    for (size_t k = 0; k < CIFAR_PIXELS; k++) x[k] = igi_u8_to_unit[p[k]];
    *label = c->labels[i];
    return IG_OK;
}

static void cifar_free(void *ctx) {
    cifar_ctx *c = ctx;
    if (!c) return;
    free(c->pixels);
    free(c->labels);
    free(c);
}

static const ig_dataset_ops cifar_ops = {cifar_length, cifar_read, cifar_free};

ig_dataset *ig_dataset_cifar(const char *const *paths, int n, bool cifar100) {
    static const char *op = "ig_dataset_cifar";
    if (!paths) {
        igi_error_null(op, "paths");
        return NULL;
    }
    if (n < 1) {
        igi_error(IG_ERR_ARG, "%s: %d files given, need at least one", op, n);
        return NULL;
    }
    for (int f = 0; f < n; f++) {
        if (!paths[f]) {
            igi_error(IG_ERR_ARG, "%s: paths[%d] is NULL", op, f);
            return NULL;
        }
    }
    const size_t rec = CIFAR_PIXELS + (cifar100 ? 2 : 1);
    cifar_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    int64_t cap = 0;
    for (int f = 0; f < n; f++) {
        uint8_t *buf;
        size_t size;
        if (igi_read_file(op, paths[f], IGI_DATA_MAX_BYTES, &buf, &size) != IG_OK) goto fail;
        if (size == 0 || size % rec != 0) {
            igi_error(IG_ERR_FORMAT, "%s: %s: %zu bytes is not a whole number of %zu-byte CIFAR-%s records%s", op,
                      paths[f], size, rec, cifar100 ? "100" : "10",
                      size % (CIFAR_PIXELS + (cifar100 ? 1 : 2)) == 0 && size > 0
                          ? (cifar100 ? " (a CIFAR-10 file?)" : " (a CIFAR-100 file?)")
                          : "");
            free(buf);
            goto fail;
        }
        int64_t m = (int64_t)(size / rec);
        /* Check every label before copying anything. */
        for (int64_t r = 0; r < m; r++) {
            const uint8_t *p = buf + (size_t)r * rec;
            int fine = cifar100 ? p[1] : p[0];
            if (cifar100 && p[0] >= 20) {
                igi_error(IG_ERR_FORMAT, "%s: %s: record %lld: coarse label %d out of range (0..19)", op, paths[f],
                          (long long)r, p[0]);
                free(buf);
                goto fail;
            }
            if (fine >= (cifar100 ? 100 : 10)) {
                igi_error(IG_ERR_FORMAT, "%s: %s: record %lld: label %d out of range (0..%d)", op, paths[f],
                          (long long)r, fine, cifar100 ? 99 : 9);
                free(buf);
                goto fail;
            }
        }
        if (c->n + m > cap) {
            int64_t nc = cap * 2 > c->n + m ? cap * 2 : c->n + m;
            uint8_t *np = realloc(c->pixels, (size_t)nc * CIFAR_PIXELS);
            if (np) c->pixels = np;
            uint8_t *nl = np ? realloc(c->labels, (size_t)nc) : NULL;
            if (nl) c->labels = nl;
            if (!np || !nl) {
                igi_error(IG_ERR_NOMEM, "%s: %s: out of memory for %lld images", op, paths[f], (long long)nc);
                free(buf);
                goto fail;
            }
            cap = nc;
        }
        for (int64_t r = 0; r < m; r++) {
            const uint8_t *p = buf + (size_t)r * rec;
            c->labels[c->n + r] = cifar100 ? p[1] : p[0];
            memcpy(c->pixels + (size_t)(c->n + r) * CIFAR_PIXELS, p + (cifar100 ? 2 : 1), CIFAR_PIXELS);
        }
        c->n += m;
        free(buf);
    }
    int64_t shape[3] = {3, 32, 32};
    ig_dataset *d = ig_dataset_new(&cifar_ops, c, 3, shape, cifar100 ? 100 : 10, cifar100 ? NULL : cifar10_names);
    if (!d) igi_error_in_file(op, paths[n - 1]);
    return d;
fail:
    cifar_free(c);
    return NULL;
}
