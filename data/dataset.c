/*
 * data/dataset.c — the dataset object every reader returns: construction from an ops
 * table, the accessors, subsets, a seeded train/val split, per-channel mean/std, format
 * detection for a folder (ig_dataset_open), and the file helpers the readers share.
 *
 * Ownership: ig_dataset_new takes ctx in every case — if it fails it frees ctx with
 * ops->free_ctx, so a reader never has to clean up after a failed construction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_impl.h"

/* v / 255.0f, evaluated by the compiler with the same rounding as the division at run time. */
#define IGI_U8_1(v) (float)(v) / 255.0f
#define IGI_U8_4(v) IGI_U8_1(v), IGI_U8_1((v) + 1), IGI_U8_1((v) + 2), IGI_U8_1((v) + 3)
#define IGI_U8_16(v) IGI_U8_4(v), IGI_U8_4((v) + 4), IGI_U8_4((v) + 8), IGI_U8_4((v) + 12)
#define IGI_U8_64(v) IGI_U8_16(v), IGI_U8_16((v) + 16), IGI_U8_16((v) + 32), IGI_U8_16((v) + 48)
const float igi_u8_to_unit[256] = {IGI_U8_64(0), IGI_U8_64(64), IGI_U8_64(128), IGI_U8_64(192)};

/* ---- shared helpers ------------------------------------------------------------------- */

ig_status igi_read_file(const char *op, const char *path, uint64_t max_bytes, uint8_t **out,
                        size_t *n) {
    char why[128];
    *out = NULL;
    *n = 0;
    struct stat st;
    int fd = igi_open_regular(op, path, &st);
    if (fd < 0) return ig_last_status();
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return igi_error(IG_ERR_FORMAT, "%s: %s: file of %lld bytes is larger than the %llu-byte limit",
                         op, path, (long long)st.st_size, (unsigned long long)max_bytes);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return igi_error(IG_ERR_NOMEM, "%s: %s: cannot allocate %zu bytes to read it", op, path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            igi_errno_text(errno, why, sizeof why);
            free(buf);
            close(fd);
            return igi_error(IG_ERR_IO, "%s: %s: read failed: %s", op, path, why);
        }
        if (r == 0) break; /* the file shrank while we read it */
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *n = got;
    return IG_OK;
}

void igi_error_in_file(const char *op, const char *path) {
    char msg[1024]; /* the length core/error.c keeps */
    snprintf(msg, sizeof msg, "%s", ig_last_error());
    if (strstr(msg, path)) return;
    ig_status st = ig_last_status();
    igi_error(st != IG_OK ? st : IG_ERR_NOMEM, "%s: %s: %s", op, path, msg);
}

char *igi_path_join(const char *op, const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--; /* "root/" and "root" give the same paths */
    char *p = malloc(a + b + 2);
    if (!p) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory joining a path", op);
        return NULL;
    }
    memcpy(p, dir, a);
    size_t k = a;
    if (a == 0 || dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

void igi_class_names_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

char **igi_class_names_numbered(int n) {
    char **names = calloc(n > 0 ? (size_t)n : 1, sizeof *names);
    if (!names) return NULL;
    for (int i = 0; i < n; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        names[i] = malloc(strlen(buf) + 1);
        if (!names[i]) {
            igi_class_names_free(names, i);
            return NULL;
        }
        memcpy(names[i], buf, strlen(buf) + 1);
    }
    return names;
}

/* ---- construction and accessors -------------------------------------------------------- */

ig_dataset *ig_dataset_new(const ig_dataset_ops *ops, void *ctx, int ndim, const int64_t *shape,
                           int num_classes, const char *const *class_names) {
    static const char *op = "ig_dataset_new";
    void (*free_ctx)(void *) = ops ? ops->free_ctx : NULL;
#define FAIL_NEW(...)                      \
    do {                                   \
        igi_error(__VA_ARGS__);            \
        if (free_ctx) free_ctx(ctx);       \
        return NULL;                       \
    } while (0)
    if (!ops) FAIL_NEW(IG_ERR_ARG, "%s: argument 'ops' is NULL", op);
    if (!ops->length || !ops->read) FAIL_NEW(IG_ERR_ARG, "%s: ops->length and ops->read are required", op);
    if (ndim < 1 || ndim > 3) FAIL_NEW(IG_ERR_ARG, "%s: item ndim %d is not 1..3", op, ndim);
    if (!shape) FAIL_NEW(IG_ERR_ARG, "%s: argument 'shape' is NULL", op);
    if (num_classes < 0) FAIL_NEW(IG_ERR_ARG, "%s: num_classes %d is negative", op, num_classes);
    int64_t numel = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 1 || shape[k] > IGI_DATA_MAX_NUMEL || numel > IGI_DATA_MAX_NUMEL / shape[k])
            FAIL_NEW(IG_ERR_ARG, "%s: item dim %d of size %lld is not in 1..%lld (or the item is too large)",
                     op, k, (long long)shape[k], (long long)IGI_DATA_MAX_NUMEL);
        numel *= shape[k];
    }
    ig_dataset *d = calloc(1, sizeof *d);
    if (!d) FAIL_NEW(IG_ERR_NOMEM, "%s: out of memory", op);
    d->class_names = calloc(num_classes > 0 ? (size_t)num_classes : 1, sizeof *d->class_names);
    if (!d->class_names) {
        free(d);
        FAIL_NEW(IG_ERR_NOMEM, "%s: out of memory", op);
    }
    for (int c = 0; c < num_classes; c++) {
        char num[16];
        const char *src = class_names && class_names[c] ? class_names[c] : NULL;
        if (!src) {
            snprintf(num, sizeof num, "%d", c);
            src = num;
        }
        size_t len = strlen(src);
        d->class_names[c] = malloc(len + 1);
        if (!d->class_names[c]) {
            igi_class_names_free(d->class_names, c);
            free(d);
            FAIL_NEW(IG_ERR_NOMEM, "%s: out of memory", op);
        }
        memcpy(d->class_names[c], src, len + 1);
    }
#undef FAIL_NEW
    d->ops = *ops;
    d->ctx = ctx;
    d->ndim = ndim;
    for (int k = 0; k < 3; k++) d->shape[k] = k < ndim ? shape[k] : 1;
    d->numel = numel;
    d->num_classes = num_classes;
    return d;
}

void ig_dataset_free(ig_dataset *d) {
    if (!d) return;
    if (d->ops.free_ctx) d->ops.free_ctx(d->ctx);
    igi_class_names_free(d->class_names, d->num_classes);
    free(d);
}

int64_t ig_dataset_len(const ig_dataset *d) {
    if (!d) return igi_error_null("ig_dataset_len", "d");
    return d->ops.length(d->ctx);
}

int ig_dataset_item_shape(const ig_dataset *d, int64_t shape[3]) {
    if (!d) return igi_error_null("ig_dataset_item_shape", "d");
    if (!shape) return igi_error_null("ig_dataset_item_shape", "shape");
    for (int k = 0; k < 3; k++) shape[k] = k < d->ndim ? d->shape[k] : 0;
    return d->ndim;
}

int ig_dataset_num_classes(const ig_dataset *d) {
    if (!d) return igi_error_null("ig_dataset_num_classes", "d");
    return d->num_classes;
}

const char *ig_dataset_class_name(const ig_dataset *d, int c) {
    if (!d) {
        igi_error_null("ig_dataset_class_name", "d");
        return NULL;
    }
    if (c < 0 || c >= d->num_classes) {
        igi_error(IG_ERR_ARG, "ig_dataset_class_name: class %d is not in 0..%d", c, d->num_classes - 1);
        return NULL;
    }
    return d->class_names[c];
}

ig_status ig_dataset_get(ig_dataset *d, int64_t i, float *x, int64_t *label) {
    static const char *op = "ig_dataset_get";
    if (!d) return igi_error_null(op, "d");
    if (!x) return igi_error_null(op, "x");
    int64_t n = d->ops.length(d->ctx);
    if (i < 0 || i >= n)
        return igi_error(IG_ERR_ARG, "%s: index %lld is not in 0..%lld", op, (long long)i, (long long)n - 1);
    int64_t scratch;
    ig_status st = d->ops.read(d->ctx, i, x, label ? label : &scratch);
    if (st != IG_OK && ig_last_status() == IG_OK)
        igi_error(st, "%s: item %lld could not be read (%s)", op, (long long)i, ig_status_name(st));
    return st;
}

/* ---- subsets and the split -------------------------------------------------------------- */

typedef struct subset_ctx {
    ig_dataset *parent;
    int64_t n;
    int64_t *indices;
} subset_ctx;

static int64_t subset_length(void *ctx) { return ((subset_ctx *)ctx)->n; }

static ig_status subset_read(void *ctx, int64_t i, float *x, int64_t *label) {
    subset_ctx *s = ctx;
    return ig_dataset_get(s->parent, s->indices[i], x, label);
}

static void subset_free(void *ctx) {
    subset_ctx *s = ctx;
    if (!s) return;
    free(s->indices);
    free(s);
}

static const ig_dataset_ops subset_ops = {subset_length, subset_read, subset_free};

ig_dataset *ig_dataset_subset(ig_dataset *d, const int64_t *indices, int64_t n) {
    static const char *op = "ig_dataset_subset";
    if (!d) {
        igi_error_null(op, "d");
        return NULL;
    }
    if (n < 0 || (n > 0 && !indices)) {
        igi_error(IG_ERR_ARG, "%s: %s", op, n < 0 ? "negative count" : "argument 'indices' is NULL");
        return NULL;
    }
    int64_t len = ig_dataset_len(d);
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t)) {
        igi_error(IG_ERR_NOMEM, "%s: %lld indices do not fit in memory", op, (long long)n);
        return NULL;
    }
    for (int64_t k = 0; k < n; k++) {
        if (indices[k] < 0 || indices[k] >= len) {
            igi_error(IG_ERR_ARG, "%s: indices[%lld] = %lld is not in 0..%lld", op, (long long)k,
                      (long long)indices[k], (long long)len - 1);
            return NULL;
        }
    }
    subset_ctx *s = calloc(1, sizeof *s);
    int64_t *copy = malloc(n > 0 ? (size_t)n * sizeof *copy : 1);
    if (!s || !copy) {
        free(s);
        free(copy);
        igi_error(IG_ERR_NOMEM, "%s: out of memory for %lld indices", op, (long long)n);
        return NULL;
    }
    if (n > 0) memcpy(copy, indices, (size_t)n * sizeof *copy);
    s->parent = d;
    s->n = n;
    s->indices = copy;
    return ig_dataset_new(&subset_ops, s, d->ndim, d->shape, d->num_classes,
                          (const char *const *)d->class_names);
}

ig_status ig_dataset_split(ig_dataset *d, double val_fraction, uint64_t seed, ig_dataset **train,
                           ig_dataset **val) {
    static const char *op = "ig_dataset_split";
    if (train) *train = NULL;
    if (val) *val = NULL;
    if (!d) return igi_error_null(op, "d");
    if (!train) return igi_error_null(op, "train");
    if (!val) return igi_error_null(op, "val");
    if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
        return igi_error(IG_ERR_ARG, "%s: val_fraction %g is not in [0, 1]", op, val_fraction);
    int64_t n = ig_dataset_len(d);
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t))
        return igi_error(IG_ERR_NOMEM, "%s: %lld items do not fit in memory", op, (long long)n);
    int64_t *perm = malloc(n > 0 ? (size_t)n * sizeof *perm : 1);
    if (!perm) return igi_error(IG_ERR_NOMEM, "%s: out of memory for %lld indices", op, (long long)n);
    for (int64_t k = 0; k < n; k++) perm[k] = k;
    /* Fisher-Yates from the top; step k draws from Philox(seed, counter k), so the
     * permutation depends on the seed alone. The modulo bias is below n / 2^64. */
    for (int64_t k = n - 1; k > 0; k--) {
        uint32_t w[4];
        ig_philox4x32(seed, 0x5350u /* "SP": split */, (uint64_t)k, w);
        uint64_t r = ((uint64_t)w[0] << 32) | w[1];
        int64_t j = (int64_t)(r % (uint64_t)(k + 1));
        int64_t t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
    }
    int64_t n_val = (int64_t)llround((double)n * val_fraction);
    if (n_val > n) n_val = n;
    *train = ig_dataset_subset(d, perm, n - n_val);
    *val = *train ? ig_dataset_subset(d, perm + (n - n_val), n_val) : NULL;
    free(perm);
    if (!*train || !*val) {
        ig_dataset_free(*train);
        *train = NULL;
        return ig_last_status();
    }
    return IG_OK;
}

/* ---- statistics ------------------------------------------------------------------------- */

ig_status ig_dataset_mean_std(ig_dataset *d, double *mean, double *std) {
    static const char *op = "ig_dataset_mean_std";
    if (!d) return igi_error_null(op, "d");
    if (!mean) return igi_error_null(op, "mean");
    if (!std) return igi_error_null(op, "std");
    /* [C,H,W] items have C channels; [H,W] and [F] items are one channel. */
    int64_t c = d->ndim == 3 ? d->shape[0] : 1;
    int64_t per = d->numel / c;
    int64_t n = ig_dataset_len(d);
    if (n <= 0) return igi_error(IG_ERR_ARG, "%s: the dataset is empty", op);
    float *x = malloc((size_t)d->numel * sizeof *x);
    double *cnt_mean = calloc((size_t)c * 2, sizeof(double)); /* running mean, M2 per channel */
    if (!x || !cnt_mean) {
        free(x);
        free(cnt_mean);
        return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    }
    double *m = cnt_mean, *m2 = cnt_mean + c;
    ig_status st = IG_OK;
    /* Each item's mean and sum of squared deviations (two passes over the item, which is in
     * memory), merged into the running totals with Chan et al.'s pairwise formula: exact
     * enough for millions of items, one read per item. */
    for (int64_t i = 0; i < n && st == IG_OK; i++) {
        st = ig_dataset_get(d, i, x, NULL);
        if (st != IG_OK) break;
        double na = (double)i * (double)per, nb = (double)per;
        for (int64_t ch = 0; ch < c; ch++) {
            const float *p = x + ch * per;
            double s = 0;
            for (int64_t k = 0; k < per; k++) s += p[k];
            double mb = s / nb, q = 0;
            for (int64_t k = 0; k < per; k++) q += (p[k] - mb) * (p[k] - mb);
            double delta = mb - m[ch];
            m[ch] += delta * nb / (na + nb);
            m2[ch] += q + delta * delta * na * nb / (na + nb);
        }
    }
    if (st == IG_OK) {
        double total = (double)n * (double)per;
        for (int64_t ch = 0; ch < c; ch++) {
            mean[ch] = m[ch];
            std[ch] = sqrt(m2[ch] / total);
        }
    }
    free(x);
    free(cnt_mean);
    return st;
}

/* ---- format detection ------------------------------------------------------------------- */

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir/base if it is a file, else dir/base.gz if that is, else NULL (no error). */
static char *find_raw_or_gz(const char *op, const char *dir, const char *base) {
    char name[256];
    for (int gz = 0; gz < 2; gz++) {
        snprintf(name, sizeof name, "%s%s", base, gz ? ".gz" : "");
        char *p = igi_path_join(op, dir, name);
        if (!p) return NULL;
        if (is_file(p)) return p;
        free(p);
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* CIFAR-10 training batches: every data_batch_<k>.bin in dir, sorted by name. */
static ig_dataset *open_cifar10_train(const char *op, const char *dir, bool *found) {
    DIR *dh = opendir(dir);
    if (!dh) return NULL;
    char **paths = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "data_batch_", 11) != 0 || len < 15 || strcmp(e->d_name + len - 4, ".bin") != 0)
            continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 8;
            char **np = realloc(paths, (size_t)nc * sizeof *np);
            if (!np) break;
            paths = np;
            cap = nc;
        }
        paths[n] = igi_path_join(op, dir, e->d_name);
        if (paths[n]) n++;
    }
    closedir(dh);
    ig_dataset *d = NULL;
    if (n > 0) {
        *found = true;
        qsort(paths, (size_t)n, sizeof *paths, cmp_str);
        d = ig_dataset_cifar((const char *const *)paths, n, false);
    }
    for (int k = 0; k < n; k++) free(paths[k]);
    free(paths);
    return d;
}

/* Tries dir itself as an IDX or CIFAR folder. Returns the dataset, or NULL with *found
 * telling whether files of a known format were there (then the error is theirs). */
static ig_dataset *open_flat(const char *op, const char *dir, bool train, bool *found) {
    const char *pre = train ? "train" : "t10k";
    char img_base[64], lab_base[64];
    snprintf(img_base, sizeof img_base, "%s-images-idx3-ubyte", pre);
    snprintf(lab_base, sizeof lab_base, "%s-labels-idx1-ubyte", pre);
    char *img = find_raw_or_gz(op, dir, img_base), *lab = find_raw_or_gz(op, dir, lab_base);
    if (img || lab) {
        *found = true;
        ig_dataset *d = NULL;
        if (img && lab) d = ig_dataset_idx(img, lab);
        else
            igi_error(IG_ERR_IO, "%s: %s: found %s but not %s[.gz]", op, dir, img ? img : lab,
                      img ? lab_base : img_base);
        free(img);
        free(lab);
        return d;
    }
    /* CIFAR-100: train.bin / test.bin. CIFAR-10: data_batch_*.bin / test_batch.bin. */
    char *p = igi_path_join(op, dir, train ? "train.bin" : "test.bin");
    if (p && is_file(p)) {
        *found = true;
        const char *paths[1] = {p};
        ig_dataset *d = ig_dataset_cifar(paths, 1, true);
        free(p);
        return d;
    }
    free(p);
    if (train) {
        ig_dataset *d = open_cifar10_train(op, dir, found);
        if (*found) return d;
    } else {
        p = igi_path_join(op, dir, "test_batch.bin");
        if (p && is_file(p)) {
            *found = true;
            const char *paths[1] = {p};
            ig_dataset *d = ig_dataset_cifar(paths, 1, false);
            free(p);
            return d;
        }
        free(p);
    }
    return NULL;
}

/* The channel count a PNG folder's first image suggests: 1 for gray (with or without
 * alpha), 3 for anything with color. */
static int png_folder_channels(const char *op, const char *root) {
    DIR *dh = opendir(root);
    if (!dh) return 3;
    char **classes = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *p = igi_path_join(op, root, e->d_name);
        if (!p) break;
        if (!is_dir(p)) {
            free(p);
            continue;
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            char **np = realloc(classes, (size_t)nc * sizeof *np);
            if (!np) {
                free(p);
                break;
            }
            classes = np;
            cap = nc;
        }
        classes[n++] = p;
    }
    closedir(dh);
    int channels = 3;
    bool decided = false;
    if (n > 0) qsort(classes, (size_t)n, sizeof *classes, cmp_str);
    for (int k = 0; k < n && !decided; k++) {
        DIR *ch = opendir(classes[k]);
        if (!ch) continue;
        char *best = NULL;
        while ((e = readdir(ch)) != NULL) {
            size_t len = strlen(e->d_name);
            if (e->d_name[0] == '.' || len < 4) continue;
            const char *ext = e->d_name + len - 4;
            if (!(ext[0] == '.' && (ext[1] | 0x20) == 'p' && (ext[2] | 0x20) == 'n' && (ext[3] | 0x20) == 'g'))
                continue;
            if (!best || strcmp(e->d_name, best) < 0) {
                free(best);
                best = malloc(len + 1);
                if (best) memcpy(best, e->d_name, len + 1);
            }
        }
        closedir(ch);
        if (best) {
            char *p = igi_path_join(op, classes[k], best);
            uint8_t head[33];
            struct stat sb;
            int fd = p ? igi_open_regular(NULL, p, &sb) : -1; /* never a FIFO: no wait */
            if (fd >= 0) {
                ssize_t r = read(fd, head, sizeof head);
                size_t got = r > 0 ? (size_t)r : 0;
                close(fd);
                igi_png_header h;
                /* A bad header is reported properly by the folder reader. */
                if (igi_png_check_header(op, p, head, got, &h) == IG_OK)
                    channels = (h.color_type & 2) ? 3 : 1; /* PNG color type bit 2: color */
            }
            free(p);
            free(best);
            decided = true;
        }
    }
    for (int k = 0; k < n; k++) free(classes[k]);
    free(classes);
    return channels;
}

ig_dataset *ig_dataset_open(const char *dir, bool train) {
    static const char *op = "ig_dataset_open";
    if (!dir) {
        igi_error_null(op, "dir");
        return NULL;
    }
    if (!is_dir(dir)) {
        igi_error(IG_ERR_IO, "%s: %s: not a directory", op, dir);
        return NULL;
    }
    bool found = false;
    ig_dataset *d = open_flat(op, dir, train, &found);
    if (d || found) return d;
    /* The folders the CIFAR archives unpack to. */
    static const char *const sub[] = {"cifar-10-batches-bin", "cifar-100-binary"};
    for (int k = 0; k < 2; k++) {
        char *p = igi_path_join(op, dir, sub[k]);
        if (!p) return NULL;
        if (is_dir(p)) d = open_flat(op, p, train, &found);
        free(p);
        if (d || found) return d;
    }
    /* PNG folders: train/ for training; test/ (or val/) otherwise. */
    static const char *const split_names[2][2] = {{"test", "val"}, {"train", "train"}};
    for (int k = 0; k < 2; k++) {
        char *p = igi_path_join(op, dir, split_names[train][k]);
        if (!p) return NULL;
        if (is_dir(p)) {
            d = ig_dataset_image_folder(p, png_folder_channels(op, p));
            free(p);
            return d;
        }
        free(p);
    }
    igi_error(IG_ERR_IO,
              "%s: %s: no dataset found (looked for %s-images-idx3-ubyte[.gz], CIFAR %s, and a %s/ PNG folder)",
              op, dir, train ? "train" : "t10k", train ? "data_batch_*.bin / train.bin" : "test_batch.bin / test.bin",
              train ? "train" : "test");
    return NULL;
}
