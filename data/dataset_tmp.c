/*
 * data/dataset_tmp.c — TEMPORARY. DELETE WHEN MERGING the datasets branch: its
 * data/dataset.c implements these same functions (and the file readers) for real.
 *
 * A minimal ig_dataset built from an ops table, just enough for the loader, the transforms'
 * tests and the loader bench to run on this branch: ig_dataset_new/free, len, item_shape,
 * num_classes, class_name and get. The loader uses only these public calls, so it works
 * unchanged with whichever implementation lands.
 */
#include <stdio.h>
#include <string.h>

#include "../core/tensor_impl.h"
#include "data.h"

struct ig_dataset {
    ig_dataset_ops ops;
    void *ctx;
    int ndim;
    int64_t shape[3];
    int num_classes;
    char **names; /* num_classes entries, or NULL: names are the class numbers */
    char name_buf[24];
};

ig_dataset *ig_dataset_new(const ig_dataset_ops *ops, void *ctx, int ndim, const int64_t *shape,
                           int num_classes, const char *const *class_names) {
    if (!ops || !ops->length || !ops->read || !shape) {
        igi_error(IG_ERR_ARG, "ig_dataset_new: ops (with length and read) and shape are required");
        return NULL;
    }
    if (ndim < 1 || ndim > 3 || num_classes < 0) {
        igi_error(IG_ERR_ARG, "ig_dataset_new: ndim must be 1..3 (got %d), num_classes >= 0", ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1) {
            igi_error(IG_ERR_ARG, "ig_dataset_new: item dim %d is %lld", i, (long long)shape[i]);
            return NULL;
        }
    ig_dataset *d = calloc(1, sizeof *d);
    if (!d) {
        igi_error(IG_ERR_NOMEM, "ig_dataset_new: out of memory");
        return NULL;
    }
    d->ops = *ops;
    d->ctx = ctx;
    d->ndim = ndim;
    memcpy(d->shape, shape, (size_t)ndim * sizeof *shape);
    d->num_classes = num_classes;
    if (class_names && num_classes > 0) {
        d->names = calloc((size_t)num_classes, sizeof *d->names);
        for (int c = 0; d->names && c < num_classes; c++) {
            const char *s = class_names[c] ? class_names[c] : "";
            d->names[c] = malloc(strlen(s) + 1);
            if (d->names[c]) strcpy(d->names[c], s);
        }
    }
    return d;
}

void ig_dataset_free(ig_dataset *d) {
    if (!d) return;
    if (d->ops.free_ctx) d->ops.free_ctx(d->ctx);
    if (d->names)
        for (int c = 0; c < d->num_classes; c++) free(d->names[c]);
    free(d->names);
    free(d);
}

int64_t ig_dataset_len(const ig_dataset *d) {
    if (!d) return igi_error_null("ig_dataset_len", "d");
    return d->ops.length(d->ctx);
}

int ig_dataset_item_shape(const ig_dataset *d, int64_t shape[3]) {
    if (!d || !shape) return igi_error_null("ig_dataset_item_shape", d ? "shape" : "d");
    memcpy(shape, d->shape, (size_t)d->ndim * sizeof *shape);
    return d->ndim;
}

int ig_dataset_num_classes(const ig_dataset *d) { return d ? d->num_classes : 0; }

const char *ig_dataset_class_name(const ig_dataset *d, int c) {
    if (!d || c < 0 || c >= d->num_classes) return NULL;
    if (d->names && d->names[c]) return d->names[c];
    /* Not thread-safe, which is acceptable for this stand-in. */
    ig_dataset *m = (ig_dataset *)d;
    snprintf(m->name_buf, sizeof m->name_buf, "%d", c);
    return m->name_buf;
}

ig_status ig_dataset_get(ig_dataset *d, int64_t i, float *x, int64_t *label) {
    if (!d || !x || !label) return igi_error_null("ig_dataset_get", !d ? "d" : !x ? "x" : "label");
    int64_t n = d->ops.length(d->ctx);
    if (i < 0 || i >= n)
        return igi_error(IG_ERR_ARG, "ig_dataset_get: index %lld out of range [0, %lld)",
                         (long long)i, (long long)n);
    return d->ops.read(d->ctx, i, x, label);
}
