/*
 * nn/flat.c — flat parameter and gradient buffers.
 *
 * ig_module_flatten copies every distinct parameter (state-dict order, a shared one once)
 * into one contiguous storage and re-points each parameter tensor at its slice of it
 * (storage, offset, contiguous strides), so pointers the user holds stay valid and keep
 * their values. Gradients become views into a second storage of the same size. The module
 * keeps two 1-D tensors over the storages: flat_params (requires grad, its grad is
 * flat_grads), which is what optimizers and gradient all-reduce work on.
 *
 *   flat_params: [p0 values | p1 values | ... ]   (total elements, one dtype)
 *   flat_grads:  [p0 grad   | p1 grad   | ... ]
 */
#include <string.h>

#include "../core/backend_impl.h"
#include "module_impl.h"

typedef struct param_list {
    ig_tensor **t; /* distinct parameters in state-dict order */
    int n, cap;
    bool oom;
} param_list;

static bool list_visit(void *vctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)name;
    (void)is_param;
    (void)owner;
    param_list *l = vctx;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        ig_tensor **nt = realloc(l->t, sizeof *nt * (size_t)cap);
        if (!nt) {
            l->oom = true;
            return false;
        }
        l->t = nt;
        l->cap = cap;
    }
    l->t[l->n++] = t;
    return true;
}

static void lock_tree(ig_module *m, ig_module *root) {
    m->flat_locked = true;
    if (m != root) {
        /* A descendant flattened earlier loses its own flat view: its parameters now live
         * in root's buffer. */
        ig_tensor_free(m->flat_params);
        ig_tensor_free(m->flat_grads);
        m->flat_params = m->flat_grads = NULL;
    }
    for (int i = 0; i < m->n_children; i++) lock_tree(m->children[i].module, root);
}

/* A heap view of flat with shape (ndim, shape), contiguous, starting at element off. */
static ig_tensor *flat_view(ig_tensor *flat, int ndim, const int64_t *shape, int64_t off) {
    int64_t strides[IG_MAX_DIMS];
    igi_contiguous_strides(ndim, shape, strides);
    igi_heap_mode(1);
    ig_tensor *v = igi_tensor_view("ig_module_flatten", flat, ndim, shape, strides, off);
    igi_heap_mode(-1);
    return v;
}

ig_status ig_module_flatten(ig_module *m) {
    static const char *op = "ig_module_flatten";
    if (!m) return igi_error_null(op, "m");
    if (m->flat_params) return IG_OK; /* idempotent: nothing can have been added since */
    if (m->flat_locked)
        return igi_error(IG_ERR_STATE, "%s: module '%s' is part of a flattened parent; use the parent's flat buffers",
                         op, m->type);
    param_list l = {0};
    ig_status st = igi_module_walk(m, true, true, list_visit, &l);
    if (l.oom) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    else if (st != IG_OK) st = ig_last_status();
    ig_dtype dt = l.n ? l.t[0]->dtype : IG_F32;
    ig_device dev = l.n ? l.t[0]->device : IG_CPU;
    int64_t total = 0;
    for (int i = 0; i < l.n && st == IG_OK; i++) {
        ig_tensor *p = l.t[i];
        if (p->dtype != dt)
            st = igi_error(IG_ERR_DTYPE, "%s: parameters of different dtypes (%s and %s); convert with ig_module_to_dtype",
                           op, ig_dtype_name(dt), ig_dtype_name(p->dtype));
        else if (p->device != l.t[0]->device)
            st = igi_error(IG_ERR_DEVICE, "%s: parameters on different devices (%s and %s); move them with ig_module_to",
                           op, igi_device_name(l.t[0]->device), igi_device_name(p->device));
        else total += igi_numel(p->ndim, p->shape);
    }
    ig_tensor *fp = NULL, *fg = NULL, **gviews = NULL;
    if (st == IG_OK) {
        igi_heap_mode(1);
        fp = igi_tensor_new(op, 1, &total, dt, dev);
        fg = fp ? igi_full_on(op, 1, &total, dt, 0.0, dev) : NULL;
        igi_heap_mode(-1);
        gviews = calloc((size_t)(l.n ? l.n : 1), sizeof *gviews);
        if (!fp || !fg) st = ig_last_status();
        else if (!gviews) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    }
    /* Phase 1 (may fail; the model is untouched): copy values and existing gradients into
     * the flat storages and make the gradient views. */
    int64_t off = 0;
    for (int i = 0; i < l.n && st == IG_OK; i++) {
        ig_tensor *p = l.t[i];
        ig_tensor *pv = flat_view(fp, p->ndim, p->shape, off);
        gviews[i] = flat_view(fg, p->ndim, p->shape, off);
        if (!pv || !gviews[i]) st = ig_last_status();
        if (st == IG_OK) st = ig_copy_(pv, p);
        if (st == IG_OK && p->grad) st = ig_copy_(gviews[i], p->grad);
        ig_tensor_free(pv);
        off += igi_numel(p->ndim, p->shape);
    }
    /* Phase 2 (cannot fail): re-point every parameter at its slice. */
    if (st == IG_OK) {
        off = 0;
        for (int i = 0; i < l.n; i++) {
            ig_tensor *p = l.t[i];
            igi_storage_retain(fp->storage);
            igi_storage_release(p->storage);
            p->storage = fp->storage;
            p->offset = off;
            igi_contiguous_strides(p->ndim, p->shape, p->strides);
            ig_status gs = ig_set_grad(p, gviews[i]);
            IG_ASSERT(gs == IG_OK);
            off += igi_numel(p->ndim, p->shape);
        }
        fp->requires_grad = true;
        ig_status gs = ig_set_grad(fp, fg);
        IG_ASSERT(gs == IG_OK);
        lock_tree(m, m);
        m->flat_params = fp;
        m->flat_grads = fg;
        fp = fg = NULL;
    }
    for (int i = 0; gviews && i < l.n; i++) ig_tensor_free(gviews[i]);
    free(gviews);
    ig_tensor_free(fp);
    ig_tensor_free(fg);
    free(l.t);
    return st;
}

ig_tensor *ig_module_flat_params(const ig_module *m) {
    if (!m) {
        igi_error_null("ig_module_flat_params", "m");
        return NULL;
    }
    return m->flat_params;
}

ig_tensor *ig_module_flat_grads(const ig_module *m) {
    if (!m) {
        igi_error_null("ig_module_flat_grads", "m");
        return NULL;
    }
    return m->flat_grads;
}

static bool zero_visit(void *ctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)ctx;
    (void)name;
    (void)is_param;
    (void)owner;
    ig_zero_grad(t);
    return true;
}

void ig_module_zero_grad(ig_module *m) {
    if (!m) return;
    if (m->flat_grads) {
        ig_fill_(m->flat_grads, 0.0); /* one pass over the whole gradient buffer */
        return;
    }
    igi_module_walk(m, true, true, zero_visit, NULL);
}
