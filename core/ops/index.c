/*
 * core/ops/index.c — joining and indexing: cat, stack, index_select, gather, one_hot.
 *
 * cat copies each input into its slab of a fresh output (backward: the matching slab of
 * the gradient, a view). stack unsqueezes its inputs and cats them. index_select and
 * gather read through int64/int32 indices, validated before use (an out-of-range index is
 * a user error naming the op and the index, never an out-of-bounds read); their backward
 * scatters the gradient into zeros with an accumulating kernel, because indices repeat.
 * one_hot turns integer classes into int64 rows and is not differentiable.
 *
 * On a device, indices and classes are validated on a host copy (the same messages, in the
 * same order, as on the CPU) before any device work: index_select moves slabs with the
 * copy kernel, gather and its gradient have their own entries (cuda/index.cu; the
 * gradient is a deterministic gather in the CPU's order), and one_hot compares the
 * classes with an arange on the device and converts the mask to int64.
 *
 * Slabs are addressed with header copies on the stack (same storage, adjusted shape and
 * offset): they never escape the function that makes them and need no reference.
 */
#include <stdio.h>
#include <string.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

/* A stack view of t: len elements along dim starting at start. */
static ig_tensor slab(const ig_tensor *t, int dim, int64_t start, int64_t len) {
    ig_tensor v = *t;
    v.node = NULL;
    v.grad = NULL;
    v.next = NULL;
    v.offset += start * t->strides[dim];
    v.shape[dim] = len;
    return v;
}

static void add_into_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
    if (*(const ig_dtype *)ctx == IG_F32) {
        for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) += *(const float *)(p[1] + i * s[1]);
    } else {
        for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) += *(const double *)(p[1] + i * s[1]);
    }
}

/* dst += src (same shape, float dtypes). */
static void add_into(ig_tensor *dst, ig_tensor *src) {
    ig_dtype dt = dst->dtype;
    IG_ASSERT(dt == IG_F32 || dt == IG_F64);
    ig_tensor *ops[2] = {dst, src};
    igi_iter_run(ops, 2, add_into_loop, &dt);
}

/* Index element at storage element offset off (relative to ix's first element). */
static inline int64_t load_index(const ig_tensor *ix, int64_t off) {
    const char *p = igi_data(ix);
    if (ix->dtype == IG_I64) return ((const int64_t *)p)[off];
    return ((const int32_t *)p)[off];
}

static bool check_index_dtype(const char *op, const ig_tensor *ix) {
    if (ix->dtype != IG_I64 && ix->dtype != IG_I32) {
        igi_error(IG_ERR_DTYPE, "%s: index must be int64 or int32, got %s", op, ig_dtype_name(ix->dtype));
        return false;
    }
    return true;
}

/* Row-major walk over a shape, keeping the element offsets of up to 3 strided tensors. */
typedef struct {
    int nd;
    int64_t shape[IG_MAX_DIMS], idx[IG_MAX_DIMS];
    int64_t st[3][IG_MAX_DIMS];
    int64_t off[3];
} walker;

static void walker_step(walker *w) {
    for (int d = w->nd - 1; d >= 0; d--) {
        for (int k = 0; k < 3; k++) w->off[k] += w->st[k][d];
        if (++w->idx[d] < w->shape[d]) return;
        for (int k = 0; k < 3; k++) w->off[k] -= w->st[k][d] * w->shape[d];
        w->idx[d] = 0;
    }
}

/* ---- cat and stack ---------------------------------------------------------------------- */

/* torch.cat's legacy rule: a 1-D empty tensor joins anything (it is skipped). */
static bool cat_skipped(const ig_tensor *t, const ig_tensor *ref) {
    return t->ndim == 1 && t->shape[0] == 0 && ref->ndim != 1;
}

static ig_status cat_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    int dim = (int)node->iattr[0];
    int64_t off = 0;
    for (int i = 0; i < node->n_inputs; i++) {
        ig_tensor *in = node->inputs[i];
        if (cat_skipped(in, g)) {
            if (igi_needs_grad(in) && !(gin[i] = igi_full_on("ig_cat", in->ndim, in->shape, in->dtype, 0.0, g->device)))
                return ig_last_status();
            continue;
        }
        int64_t len = in->shape[dim];
        if (igi_needs_grad(in) && !(gin[i] = ig_narrow(g, dim, off, len))) return ig_last_status();
        off += len;
    }
    return IG_OK;
}

ig_tensor *ig_cat(ig_tensor *const *ts, int n, int dim) {
    const char *op = "ig_cat";
    IGI_NULL_CHECK(op, ts);
    if (n <= 0) {
        igi_error(IG_ERR_ARG, "%s: expected at least one tensor, got n = %d", op, n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            char name[32];
            snprintf(name, sizeof name, "ts[%d]", i);
            igi_error_null(op, name);
            return NULL;
        }
    }
    /* The reference shape: the first input that is not a skipped 1-D empty tensor. */
    const ig_tensor *ref = ts[0];
    for (int i = 0; i < n; i++) {
        if (!(ts[i]->ndim == 1 && ts[i]->shape[0] == 0)) {
            ref = ts[i];
            break;
        }
    }
    if (ref->ndim == 0) {
        igi_error(IG_ERR_SHAPE, "%s: cannot concatenate 0-dim tensors (use ig_stack)", op);
        return NULL;
    }
    int d = igi_wrap_dim(op, dim, ref->ndim);
    if (d < 0) return NULL;
    int64_t oshape[IG_MAX_DIMS];
    memcpy(oshape, ref->shape, sizeof oshape);
    oshape[d] = 0;
    char b1[160], b2[160];
    for (int i = 0; i < n; i++) {
        const ig_tensor *t = ts[i];
        if (t->dtype != ref->dtype) {
            igi_error(IG_ERR_DTYPE, "%s: tensor %d is %s but the others are %s", op, i,
                      ig_dtype_name(t->dtype), ig_dtype_name(ref->dtype));
            return NULL;
        }
        if (t->device != ref->device) {
            igi_error(IG_ERR_DEVICE, "%s: tensor %d is on another device", op, i);
            return NULL;
        }
        if (cat_skipped(t, ref)) continue;
        bool ok = t->ndim == ref->ndim;
        for (int k = 0; ok && k < t->ndim; k++)
            if (k != d && t->shape[k] != ref->shape[k]) ok = false;
        if (!ok) {
            igi_error(IG_ERR_SHAPE, "%s: tensor %d has shape %s, which does not match %s except in dim %d",
                      op, i, ig_shape_str(t, b1, sizeof b1), ig_shape_str(ref, b2, sizeof b2), d);
            return NULL;
        }
        oshape[d] += t->shape[d];
    }
    /* On a device the pieces are placed by its strided copy kernel (ig_copy_). */
    if (ref->device != IG_CPU && !IGI_BACKEND_WITH(op, ref->device, copy)) return NULL;
    ig_tensor *out = igi_tensor_new(op, ref->ndim, oshape, ref->dtype, ref->device);
    if (!out) return NULL;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (cat_skipped(ts[i], ref)) continue;
        ig_tensor dst = slab(out, d, off, ts[i]->shape[d]);
        /* Shapes and devices were checked above: only a device failure gets here. */
        if (ig_copy_(&dst, ts[i]) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
        off += ts[i]->shape[d];
    }
    out = igi_finish(IGI_OP_CAT, cat_backward, out, ts, n);
    if (out && out->node) out->node->iattr[0] = d;
    return out;
}

ig_tensor *ig_stack(ig_tensor *const *ts, int n, int dim) {
    const char *op = "ig_stack";
    IGI_NULL_CHECK(op, ts);
    if (n <= 0) {
        igi_error(IG_ERR_ARG, "%s: expected at least one tensor, got n = %d", op, n);
        return NULL;
    }
    char b1[160], b2[160];
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            char name[32];
            snprintf(name, sizeof name, "ts[%d]", i);
            igi_error_null(op, name);
            return NULL;
        }
        if (ts[i]->dtype != ts[0]->dtype) {
            igi_error(IG_ERR_DTYPE, "%s: tensor %d is %s but tensor 0 is %s", op, i,
                      ig_dtype_name(ts[i]->dtype), ig_dtype_name(ts[0]->dtype));
            return NULL;
        }
        if (ts[i]->ndim != ts[0]->ndim ||
            memcmp(ts[i]->shape, ts[0]->shape, sizeof(int64_t) * (size_t)ts[0]->ndim) != 0) {
            igi_error(IG_ERR_SHAPE, "%s: tensor %d has shape %s but tensor 0 has %s (all must be equal)",
                      op, i, ig_shape_str(ts[i], b1, sizeof b1), ig_shape_str(ts[0], b2, sizeof b2));
            return NULL;
        }
    }
    if (ts[0]->ndim >= IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "%s: inputs already have %d dims", op, IG_MAX_DIMS);
        return NULL;
    }
    int d = igi_wrap_dim(op, dim, ts[0]->ndim + 1);
    if (d < 0) return NULL;
    /* Stack = cat of [.., 1, ..] views; the autograd graph records unsqueeze + cat, so
     * IGI_OP_STACK is never recorded. */
    ig_tensor **us = malloc(sizeof *us * (size_t)n);
    if (!us) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    ig_tensor *out = NULL;
    int made = 0;
    for (; made < n; made++)
        if (!(us[made] = ig_unsqueeze(ts[made], d))) break;
    if (made == n) out = ig_cat(us, n, d);
    /* Heap views are released (a recorded cat node holds its own references); scoped
     * ones go with their scope. */
    for (int i = 0; i < made; i++) ig_tensor_free(us[i]);
    free(us);
    return out;
}

/* ---- index_select ----------------------------------------------------------------------- */

/* saved[0]: the index, always on the CPU (a device index is saved as its host copy). */
static ig_status index_select_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *t = node->inputs[0], *ix = node->saved[0];
    int d = (int)node->iattr[0];
    int64_t n = node->iattr[1], ist = node->iattr[2];
    ig_tensor *z = t->device == IG_CPU ? ig_zeros(t->ndim, t->shape, g->dtype)
                                       : igi_full_on("ig_index_select", t->ndim, t->shape, g->dtype, 0.0, t->device);
    if (!z) return ig_last_status();
    /* index_add: repeated indices accumulate (on a device, one add kernel per index). */
    for (int64_t k = 0; k < n; k++) {
        ig_tensor dst = slab(z, d, load_index(ix, k * ist), 1);
        ig_tensor src = slab(g, d, k, 1);
        if (t->device == IG_CPU) {
            add_into(&dst, &src);
        } else {
            ig_status st = igi_add_into("ig_index_select", &dst, &src);
            if (st != IG_OK) return st;
        }
    }
    gin[0] = z;
    return IG_OK;
}

ig_tensor *ig_index_select(ig_tensor *t, int dim, ig_tensor *index) {
    const char *op = "ig_index_select";
    IGI_NULL_CHECK(op, t);
    IGI_NULL_CHECK(op, index);
    /* bf16 rows move as bytes; recorded, through f32 (the gradient adds: core/ops/bf16.c). */
    if (igi_should_record(&t, 1)) IGI_BF16_VIA_F32(t, 0, ig_index_select(IGI_W, dim, index));
    if (!check_index_dtype(op, index) || !igi_check_same_device_any(op, t, index)) return NULL;
    /* On a device the rows are moved by its copy kernel; the index is read on the host. */
    if (t->device != IG_CPU && !IGI_BACKEND_WITH(op, t->device, copy)) return NULL;
    char b1[160];
    if (index->ndim > 1) {
        igi_error(IG_ERR_SHAPE, "%s: index must be 1-D, got shape %s", op, ig_shape_str(index, b1, sizeof b1));
        return NULL;
    }
    if (t->ndim == 0) {
        igi_error(IG_ERR_SHAPE, "%s: cannot index a 0-dim tensor", op);
        return NULL;
    }
    int d = igi_wrap_dim(op, dim, t->ndim);
    if (d < 0) return NULL;
    /* A device index is read through a host copy (saved for backward in its place). */
    ig_tensor *host = NULL;
    if (index->device != IG_CPU && !(index = host = igi_to_device_copy(op, index, IG_CPU))) return NULL;
    /* A 0-dim index is one index. */
    int64_t n = index->ndim ? index->shape[0] : 1, ist = index->ndim ? index->strides[0] : 0;
    int64_t size = t->shape[d];
    for (int64_t k = 0; k < n; k++) {
        int64_t v = load_index(index, k * ist);
        if (v < 0 || v >= size) {
            igi_error(IG_ERR_ARG, "%s: index %lld (at position %lld) is out of range for dim %d of size %lld",
                      op, (long long)v, (long long)k, d, (long long)size);
            ig_tensor_free(host);
            return NULL;
        }
    }
    int64_t oshape[IG_MAX_DIMS];
    memcpy(oshape, t->shape, sizeof oshape);
    oshape[d] = n;
    ig_tensor *out = igi_tensor_new(op, t->ndim, oshape, t->dtype, t->device);
    if (!out) {
        ig_tensor_free(host);
        return NULL;
    }
    size_t es = ig_dtype_size(t->dtype);
    if (t->device != IG_CPU) {
        for (int64_t k = 0; k < n; k++) {
            ig_tensor dst = slab(out, d, k, 1);
            ig_tensor src = slab(t, d, load_index(index, k * ist), 1);
            if (ig_copy_(&dst, &src) != IG_OK) {
                ig_tensor_free(out);
                ig_tensor_free(host);
                return NULL;
            }
        }
    } else if (d == 0 && igi_is_contiguous(t)) {
        /* Rows of a contiguous tensor (an embedding table): one memcpy each. */
        size_t row = (size_t)igi_numel(t->ndim - 1, t->shape + 1) * es;
        const char *src = igi_data(t);
        char *dst = igi_data(out);
        for (int64_t k = 0; k < n && row; k++)
            memcpy(dst + (size_t)k * row, src + (size_t)load_index(index, k * ist) * row, row);
    } else {
        for (int64_t k = 0; k < n; k++) {
            ig_tensor dst = slab(out, d, k, 1);
            ig_tensor src = slab(t, d, load_index(index, k * ist), 1);
            ig_status st = ig_copy_(&dst, &src);
            IG_ASSERT(st == IG_OK);
        }
    }
    out = igi_finish(IGI_OP_INDEX_SELECT, index_select_backward, out, &t, 1);
    if (out && out->node) {
        out->node->iattr[0] = d;
        out->node->iattr[1] = n;
        out->node->iattr[2] = ist;
        igi_node_save(out->node, 0, index);
    }
    ig_tensor_free(host); /* the node holds its own reference */
    return out;
}

/* ---- gather ----------------------------------------------------------------------------- */

/* Sets up a walk over index's shape: offsets 0 = index, 1 = t (dim d skipped; the index
 * value supplies it), 2 = a third tensor of index's shape (output or gradient). */
static void gather_walker(walker *w, const ig_tensor *t, int d, const ig_tensor *ix, const ig_tensor *third) {
    memset(w, 0, sizeof *w);
    w->nd = ix->ndim;
    for (int k = 0; k < ix->ndim; k++) {
        w->shape[k] = ix->shape[k];
        w->st[0][k] = ix->strides[k];
        w->st[1][k] = k == d ? 0 : t->strides[k];
        w->st[2][k] = third->strides[k];
    }
}

/* Device geometry of a gather of t along d by ix; g: the gradient (index's shape) or NULL.
 * A 0-dim t is described as 1-D of size 1 so kernels need no special case. */
static void gather_geom(const ig_tensor *t, int d, const ig_tensor *ix, const ig_tensor *g, igi_gather *geo) {
    memset(geo, 0, sizeof *geo);
    geo->dt = t->dtype;
    geo->idt = ix->dtype;
    if (t->ndim == 0) {
        geo->ndim = 1;
        geo->ishape[0] = geo->tshape[0] = geo->size = 1;
        return;
    }
    geo->ndim = t->ndim;
    geo->dim = d;
    geo->size = t->shape[d];
    for (int k = 0; k < t->ndim; k++) {
        geo->ishape[k] = ix->shape[k];
        geo->istride[k] = ix->strides[k];
        geo->tshape[k] = t->shape[k];
        geo->tstride[k] = t->strides[k];
        geo->gstride[k] = g ? g->strides[k] : 0;
    }
}

/* saved[0]: the index, on t's device. gin: a fresh contiguous tensor the kernel fills. */
static ig_status gather_backward_device(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    const char *op = "ig_gather";
    ig_tensor *t = node->inputs[0], *ix = node->saved[0];
    const igi_backend *be = IGI_BACKEND_WITH(op, t->device, gather_backward);
    if (!be || !igi_check_same_device_any(op, g, t)) return ig_last_status();
    igi_gather geo;
    gather_geom(t, (int)node->iattr[0], ix, g, &geo);
    geo.dt = g->dtype;
    ig_tensor *z = igi_tensor_new(op, t->ndim, t->shape, g->dtype, t->device);
    if (!z) return ig_last_status();
    ig_status st = be->gather_backward(op, &geo, igi_data(g), igi_data(ix), igi_data(z));
    if (st != IG_OK) {
        ig_tensor_free(z);
        return st;
    }
    gin[0] = z;
    return IG_OK;
}

static ig_status gather_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *t = node->inputs[0], *ix = node->saved[0];
    if (t->device != IG_CPU) return gather_backward_device(node, g, gin);
    int d = (int)node->iattr[0];
    ig_tensor *z = ig_zeros(t->ndim, t->shape, g->dtype);
    if (!z) return ig_last_status();
    int64_t n = igi_numel(ix->ndim, ix->shape);
    int64_t dst = t->ndim ? z->strides[d] : 0;
    walker w;
    gather_walker(&w, z, d, ix, g);
    /* scatter_add: z[.., index[i], ..] += g[i]; repeated indices accumulate. */
    char *zp = igi_data(z);
    const char *gp = igi_data(g);
    for (int64_t i = 0; i < n; i++) {
        int64_t zo = w.off[1] + load_index(ix, w.off[0]) * dst;
        if (g->dtype == IG_F32) ((float *)zp)[zo] += ((const float *)gp)[w.off[2]];
        else ((double *)zp)[zo] += ((const double *)gp)[w.off[2]];
        walker_step(&w);
    }
    gin[0] = z;
    return IG_OK;
}

/* The out-of-range message of ig_gather for the first bad index in row-major order over
 * ix (on the CPU), or true when every index lies in [0, size). */
static bool gather_check_range(const char *op, const ig_tensor *ix, int d, int64_t size) {
    int64_t n = igi_numel(ix->ndim, ix->shape);
    walker w;
    memset(&w, 0, sizeof w);
    w.nd = ix->ndim;
    for (int k = 0; k < ix->ndim; k++) {
        w.shape[k] = ix->shape[k];
        w.st[0][k] = ix->strides[k];
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_index(ix, w.off[0]);
        if (v < 0 || v >= size) {
            igi_error(IG_ERR_ARG, "%s: index %lld is out of range for dim %d of size %lld", op, (long long)v, d,
                      (long long)size);
            return false;
        }
        walker_step(&w);
    }
    return true;
}

/* ig_gather on t's device (shapes already checked): the index is range-checked on a host
 * copy, then be's kernel fills the output; the node saves the device index. */
static ig_tensor *gather_device(const char *op, const igi_backend *be, ig_tensor *t, int d, ig_tensor *index) {
    ig_tensor *host = igi_to_device_copy(op, index, IG_CPU);
    if (!host) return NULL;
    bool ok = gather_check_range(op, host, d, t->ndim ? t->shape[d] : 1);
    ig_tensor_free(host);
    if (!ok) return NULL;
    ig_tensor *out = igi_tensor_new(op, index->ndim, index->shape, t->dtype, t->device);
    if (!out) return NULL;
    igi_gather geo;
    gather_geom(t, d, index, NULL, &geo);
    if (be->gather(op, &geo, igi_data(t), igi_data(index), igi_data(out)) != IG_OK) {
        ig_tensor_free(out);
        return NULL;
    }
    out = igi_finish(IGI_OP_GATHER, gather_backward, out, &t, 1);
    if (out && out->node) {
        out->node->iattr[0] = d;
        igi_node_save(out->node, 0, index);
    }
    return out;
}

ig_tensor *ig_gather(ig_tensor *t, int dim, ig_tensor *index) {
    const char *op = "ig_gather";
    IGI_NULL_CHECK(op, t);
    IGI_NULL_CHECK(op, index);
    /* bf16 values move as bytes; recorded, through f32 (the gradient adds: core/ops/bf16.c). */
    if (igi_should_record(&t, 1)) IGI_BF16_VIA_F32(t, 0, ig_gather(IGI_W, dim, index));
    if (!check_index_dtype(op, index) || !igi_check_same_device_any(op, t, index)) return NULL;
    const igi_backend *be = NULL;
    if (t->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, t->device, gather))) return NULL;
    char b1[160], b2[160];
    if (index->ndim != t->ndim) {
        igi_error(IG_ERR_SHAPE, "%s: index %s must have as many dims as the input %s", op,
                  ig_shape_str(index, b1, sizeof b1), ig_shape_str(t, b2, sizeof b2));
        return NULL;
    }
    int d = igi_wrap_dim(op, dim, t->ndim);
    if (d < 0) return NULL;
    for (int k = 0; k < t->ndim; k++) {
        if (k != d && index->shape[k] > t->shape[k]) {
            igi_error(IG_ERR_SHAPE, "%s: index %s is larger than the input %s in dim %d", op,
                      ig_shape_str(index, b1, sizeof b1), ig_shape_str(t, b2, sizeof b2), k);
            return NULL;
        }
    }
    if (be) return gather_device(op, be, t, d, index);
    ig_tensor *out = igi_tensor_new(op, index->ndim, index->shape, t->dtype, t->device);
    if (!out) return NULL;
    int64_t n = igi_numel(index->ndim, index->shape);
    int64_t size = t->ndim ? t->shape[d] : 1, tst = t->ndim ? t->strides[d] : 0;
    size_t es = ig_dtype_size(t->dtype);
    walker w;
    gather_walker(&w, t, d, index, out);
    const char *tp = igi_data(t);
    char *op_ = igi_data(out);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_index(index, w.off[0]);
        if (v < 0 || v >= size) {
            igi_error(IG_ERR_ARG, "%s: index %lld is out of range for dim %d of size %lld", op,
                      (long long)v, d, (long long)size);
            ig_tensor_free(out);
            return NULL;
        }
        memcpy(op_ + (size_t)w.off[2] * es, tp + (size_t)(w.off[1] + v * tst) * es, es);
        walker_step(&w);
    }
    out = igi_finish(IGI_OP_GATHER, gather_backward, out, &t, 1);
    if (out && out->node) {
        out->node->iattr[0] = d;
        igi_node_save(out->node, 0, index);
    }
    return out;
}

/* ---- one_hot ---------------------------------------------------------------------------- */

/* Class value of an integer element at element offset off. */
static int64_t load_class(const ig_tensor *t, int64_t off) {
    const char *p = igi_data(t);
    switch (t->dtype) {
    case IG_I64: return ((const int64_t *)p)[off];
    case IG_I32: return ((const int32_t *)p)[off];
    default: return ((const uint8_t *)p)[off];
    }
}

/* A walker over t's shape (offset 0: t's elements). */
static void class_walker(walker *w, const ig_tensor *t) {
    memset(w, 0, sizeof *w);
    w->nd = t->ndim;
    for (int k = 0; k < t->ndim; k++) {
        w->shape[k] = t->shape[k];
        w->st[0][k] = t->strides[k];
    }
}

/* Infers *num_classes when it is -1 and checks every class of t (CPU memory) against it;
 * false with the error set otherwise. */
static bool one_hot_classes(const char *op, const ig_tensor *t, int64_t *num_classes) {
    int64_t n = igi_numel(t->ndim, t->shape);
    walker w;
    class_walker(&w, t);
    if (*num_classes == -1) {
        if (n == 0) {
            igi_error(IG_ERR_ARG, "%s: cannot infer num_classes from an empty tensor", op);
            return false;
        }
        int64_t mx = INT64_MIN;
        walker w2 = w;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = load_class(t, w2.off[0]);
            if (v > mx) mx = v;
            walker_step(&w2);
        }
        if (mx == INT64_MAX) {
            igi_error(IG_ERR_ARG, "%s: class %lld is too large", op, (long long)mx);
            return false;
        }
        *num_classes = mx < 0 ? 0 : mx + 1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_class(t, w.off[0]);
        if (v < 0 || v >= *num_classes) {
            igi_error(IG_ERR_ARG, "%s: class %lld is out of range [0, %lld)", op, (long long)v,
                      (long long)*num_classes);
            return false;
        }
        walker_step(&w);
    }
    return true;
}

/* out (int64, t's shape + [C], on t's device, valid classes) = (t[.., None] == arange(C)),
 * converted from the u8 mask by the copy kernel. Temporaries are heap tensors, freed here. */
static ig_status one_hot_fill_device(const char *op, ig_tensor *t, int64_t C, ig_tensor *out) {
    ig_tensor *ti = NULL, *col = NULL, *ar = NULL, *ard = NULL, *mask = NULL;
    ig_status st = IG_ERR_NOMEM;
    igi_heap_mode(1);
    /* int64 classes, so an arange past a narrow dtype's range compares correctly. */
    if (t->dtype == IG_I64) ig_tensor_retain(ti = t);
    else ti = ig_to_dtype(t, IG_I64);
    if (ti && (col = ig_unsqueeze(ti, t->ndim)) && (ar = ig_arange(0.0, (double)C, 1.0, IG_I64)) &&
        (ard = igi_to_device_copy(op, ar, t->device)) && (mask = ig_eq(col, ard)))
        st = IG_OK;
    igi_heap_mode(-1);
    if (st == IG_OK) st = ig_copy_(out, mask);
    else st = ig_last_status();
    ig_tensor_free(mask);
    ig_tensor_free(ard);
    ig_tensor_free(ar);
    ig_tensor_free(col);
    ig_tensor_free(ti);
    return st;
}

ig_tensor *ig_one_hot(ig_tensor *t, int64_t num_classes) {
    const char *op = "ig_one_hot";
    IGI_NULL_CHECK(op, t);
    if (t->dtype != IG_I64 && t->dtype != IG_I32 && t->dtype != IG_U8) {
        igi_error(IG_ERR_DTYPE, "%s: classes must be an integer dtype, got %s", op, ig_dtype_name(t->dtype));
        return NULL;
    }
    /* On a device: the comparison and conversion kernels (one_hot_fill_device). */
    if (t->device != IG_CPU &&
        (!IGI_BACKEND_WITH(op, t->device, binary) || !IGI_BACKEND_WITH(op, t->device, copy)))
        return NULL;
    if (t->ndim >= IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "%s: input already has %d dims", op, IG_MAX_DIMS);
        return NULL;
    }
    if (num_classes < -1) {
        igi_error(IG_ERR_ARG, "%s: num_classes must be -1 or at least 0, got %lld", op, (long long)num_classes);
        return NULL;
    }
    /* Validate before allocating, so a bad class never costs a large output; a device's
     * classes are read through a host copy. */
    ig_tensor *host = NULL;
    if (t->device != IG_CPU && !(host = igi_to_device_copy(op, t, IG_CPU))) return NULL;
    bool ok = one_hot_classes(op, host ? host : t, &num_classes);
    ig_tensor_free(host);
    if (!ok) return NULL;
    int64_t oshape[IG_MAX_DIMS];
    memcpy(oshape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    oshape[t->ndim] = num_classes;
    ig_tensor *out = igi_tensor_new(op, t->ndim + 1, oshape, IG_I64, t->device);
    if (!out) return NULL;
    int64_t total = igi_numel(t->ndim + 1, oshape);
    if (t->device != IG_CPU) {
        if (total > 0 && one_hot_fill_device(op, t, num_classes, out) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
        return out;
    }
    int64_t n = igi_numel(t->ndim, t->shape);
    walker w;
    class_walker(&w, t);
    int64_t *o = (int64_t *)igi_data(out);
    if (total > 0) memset(o, 0, (size_t)total * sizeof *o);
    for (int64_t i = 0; i < n; i++) {
        o[i * num_classes + load_class(t, w.off[0])] = 1;
        walker_step(&w);
    }
    return out;
}
