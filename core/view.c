/*
 * core/view.c — views (reshape, permute, slice, expand, squeeze, select) and the copies
 * that make tensors contiguous or change their dtype, each with its backward.
 *
 * A view is a new header over the same storage; no bytes move. Backward of a view maps
 * the output gradient back to the input's geometry: reshape it, permute it back, scatter
 * it into zeros (slice, select) or sum it over broadcast dims (expand).
 */
#include <string.h>

#include "tensor_impl.h"

/* ---- backward functions ---------------------------------------------------------------- */

static ig_status reshape_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    gin[0] = ig_reshape(g, in->ndim, in->shape);
    return gin[0] ? IG_OK : ig_last_status();
}

static ig_status permute_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    int inv[IG_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++) inv[n->iattr[i]] = i;
    gin[0] = ig_permute(g, inv);
    return gin[0] ? IG_OK : ig_last_status();
}

/* Slice/select: scatter g into zeros of the input's shape through the same view. */
static ig_status scatter_view_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    ig_tensor *z = igi_full_on(igi_op_name(n->op), in->ndim, in->shape, g->dtype, 0.0, g->device);
    if (!z) return ig_last_status();
    ig_tensor *v;
    if (n->op == IGI_OP_SLICE)
        v = ig_slice(z, (int)n->iattr[0], n->iattr[1], n->iattr[2], n->iattr[3]);
    else
        v = ig_select(z, (int)n->iattr[0], n->iattr[1]);
    if (!v) return ig_last_status();
    ig_status st = ig_copy_(v, g);
    gin[0] = z;
    return st;
}

static ig_status expand_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    gin[0] = igi_sum_to(g, in->ndim, in->shape);
    return gin[0] ? IG_OK : ig_last_status();
}

static ig_status identity_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    (void)n;
    gin[0] = g;
    return IG_OK;
}

static ig_status to_dtype_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    gin[0] = ig_to_dtype(g, n->inputs[0]->dtype);
    return gin[0] ? IG_OK : ig_last_status();
}

/* ---- reshape / view -------------------------------------------------------------------- */

/* Resolves a -1 in shape against numel. */
static bool infer_shape(const char *op, const ig_tensor *t, int ndim, const int64_t *shape,
                        int64_t *out) {
    if (ndim < 0 || ndim > IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "%s: %d dims (at most %d allowed)", op, ndim, IG_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        igi_error_null(op, "shape");
        return false;
    }
    int64_t numel = igi_numel(t->ndim, t->shape);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) {
                igi_error(IG_ERR_ARG, "%s: only one dim can be -1", op);
                return false;
            }
            infer = i;
        } else if (shape[i] < 0) {
            igi_error(IG_ERR_ARG, "%s: invalid size %lld in shape", op, (long long)shape[i]);
            return false;
        } else {
            if (shape[i] != 0 && known > INT64_MAX / shape[i]) known = -1;
            if (known >= 0) known *= shape[i];
        }
        out[i] = shape[i];
    }
    char b1[160], b2[160];
    if (infer >= 0) {
        if (known <= 0 || numel % known != 0) {
            igi_error(IG_ERR_SHAPE, "%s: shape %s is invalid for input %s", op,
                      igi_shape_str(ndim, shape, b1, sizeof b1), ig_shape_str(t, b2, sizeof b2));
            return false;
        }
        out[infer] = numel / known;
    } else if (known != numel) {
        igi_error(IG_ERR_SHAPE, "%s: shape %s is invalid for input %s", op,
                  igi_shape_str(ndim, shape, b1, sizeof b1), ig_shape_str(t, b2, sizeof b2));
        return false;
    }
    return true;
}

/* Strides for viewing t with newshape without copying, or false if impossible. Groups of
 * input dims that are laid out back to back can be split and merged freely. */
static bool view_strides(const ig_tensor *t, int m, const int64_t *newshape, int64_t *st) {
    int n = t->ndim;
    if (n == 0 || igi_numel(n, t->shape) == 0) {
        igi_contiguous_strides(m, newshape, st);
        return true;
    }
    int view_d = m - 1;
    int64_t chunk_stride = t->strides[n - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = n - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * chunk_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || newshape[view_d] == 1)) {
                st[view_d] = view_numel * chunk_stride;
                view_numel *= newshape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_stride = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

static ig_tensor *view_impl(const char *op, ig_tensor *t, int ndim, const int64_t *shape,
                            bool copy_if_needed) {
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    if (!infer_shape(op, t, ndim, shape, ns)) return NULL;
    if (!view_strides(t, ndim, ns, st)) {
        if (!copy_if_needed) {
            char b1[160], b2[160];
            igi_error(IG_ERR_SHAPE,
                      "%s: cannot view %s (strides don't allow it) as %s; use ig_reshape",
                      op, ig_shape_str(t, b1, sizeof b1), igi_shape_str(ndim, ns, b2, sizeof b2));
            return NULL;
        }
        ig_tensor *c = ig_contiguous(t);
        if (!c) return NULL;
        ig_tensor *r = view_impl(op, c, ndim, ns, false);
        ig_tensor_free(c);
        return r;
    }
    ig_tensor *out = igi_tensor_view(op, t, ndim, ns, st, t->offset);
    return igi_finish(IGI_OP_VIEW, reshape_backward, out, &t, 1);
}

ig_tensor *ig_view(ig_tensor *t, int ndim, const int64_t *shape) {
    IGI_NULL_CHECK("ig_view", t);
    return view_impl("ig_view", t, ndim, shape, false);
}

ig_tensor *ig_reshape(ig_tensor *t, int ndim, const int64_t *shape) {
    IGI_NULL_CHECK("ig_reshape", t);
    return view_impl("ig_reshape", t, ndim, shape, true);
}

ig_tensor *ig_flatten(ig_tensor *t, int start_dim, int end_dim) {
    IGI_NULL_CHECK("ig_flatten", t);
    if (t->ndim == 0) return view_impl("ig_flatten", t, 1, (const int64_t[]){1}, true);
    int s = igi_wrap_dim("ig_flatten", start_dim, t->ndim);
    int e = igi_wrap_dim("ig_flatten", end_dim, t->ndim);
    if (s < 0 || e < 0) return NULL;
    if (s > e) {
        igi_error(IG_ERR_ARG, "ig_flatten: start_dim %d comes after end_dim %d", start_dim, end_dim);
        return NULL;
    }
    int64_t ns[IG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < s; i++) ns[k++] = t->shape[i];
    int64_t p = 1;
    for (int i = s; i <= e; i++) p *= t->shape[i];
    ns[k++] = p;
    for (int i = e + 1; i < t->ndim; i++) ns[k++] = t->shape[i];
    return view_impl("ig_flatten", t, k, ns, true);
}

ig_tensor *ig_squeeze(ig_tensor *t, int dim) {
    IGI_NULL_CHECK("ig_squeeze", t);
    int d = igi_wrap_dim("ig_squeeze", dim, t->ndim);
    if (d < 0) return NULL;
    if (t->ndim == 0) return view_impl("ig_squeeze", t, 0, NULL, false);
    if (t->shape[d] != 1) {
        char b[160];
        igi_error(IG_ERR_SHAPE, "ig_squeeze: dim %d of %s has size %lld, not 1", dim,
                  ig_shape_str(t, b, sizeof b), (long long)t->shape[d]);
        return NULL;
    }
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        ns[k] = t->shape[i];
        st[k++] = t->strides[i];
    }
    ig_tensor *out = igi_tensor_view("ig_squeeze", t, k, ns, st, t->offset);
    return igi_finish(IGI_OP_VIEW, reshape_backward, out, &t, 1);
}

ig_tensor *ig_squeeze_all(ig_tensor *t) {
    IGI_NULL_CHECK("ig_squeeze_all", t);
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 1) continue;
        ns[k] = t->shape[i];
        st[k++] = t->strides[i];
    }
    ig_tensor *out = igi_tensor_view("ig_squeeze_all", t, k, ns, st, t->offset);
    return igi_finish(IGI_OP_VIEW, reshape_backward, out, &t, 1);
}

ig_tensor *ig_unsqueeze(ig_tensor *t, int dim) {
    IGI_NULL_CHECK("ig_unsqueeze", t);
    if (t->ndim >= IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "ig_unsqueeze: tensor already has %d dims", IG_MAX_DIMS);
        return NULL;
    }
    int d = igi_wrap_dim("ig_unsqueeze", dim, t->ndim + 1);
    if (d < 0) return NULL;
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i <= t->ndim; i++) {
        if (i == d) {
            ns[k] = 1;
            st[k++] = (i < t->ndim) ? t->strides[i] * t->shape[i] : 1;
        }
        if (i < t->ndim) {
            ns[k] = t->shape[i];
            st[k++] = t->strides[i];
        }
    }
    ig_tensor *out = igi_tensor_view("ig_unsqueeze", t, k, ns, st, t->offset);
    return igi_finish(IGI_OP_VIEW, reshape_backward, out, &t, 1);
}

/* ---- permute --------------------------------------------------------------------------- */

ig_tensor *ig_permute(ig_tensor *t, const int *dims) {
    IGI_NULL_CHECK("ig_permute", t);
    if (!dims && t->ndim > 0) {
        igi_error_null("ig_permute", "dims");
        return NULL;
    }
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    bool seen[IG_MAX_DIMS] = {false};
    int wrapped[IG_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        int d = igi_wrap_dim("ig_permute", dims[i], t->ndim);
        if (d < 0) return NULL;
        if (seen[d]) {
            igi_error(IG_ERR_ARG, "ig_permute: dim %d repeated", dims[i]);
            return NULL;
        }
        seen[d] = true;
        wrapped[i] = d;
        ns[i] = t->shape[d];
        st[i] = t->strides[d];
    }
    ig_tensor *out = igi_tensor_view("ig_permute", t, t->ndim, ns, st, t->offset);
    out = igi_finish(IGI_OP_PERMUTE, permute_backward, out, &t, 1);
    if (out && out->node)
        for (int i = 0; i < t->ndim; i++) out->node->iattr[i] = wrapped[i];
    return out;
}

ig_tensor *ig_transpose(ig_tensor *t, int dim0, int dim1) {
    IGI_NULL_CHECK("ig_transpose", t);
    int a = igi_wrap_dim("ig_transpose", dim0, t->ndim);
    int b = igi_wrap_dim("ig_transpose", dim1, t->ndim);
    if (a < 0 || b < 0) return NULL;
    int perm[IG_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) perm[i] = i;
    if (t->ndim > 0) {
        perm[a] = b;
        perm[b] = a;
    }
    return ig_permute(t, perm);
}

/* ---- slice, narrow, select ------------------------------------------------------------- */

ig_tensor *ig_slice(ig_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
    IGI_NULL_CHECK("ig_slice", t);
    if (t->ndim == 0) {
        igi_error(IG_ERR_ARG, "ig_slice: cannot slice a 0-dim tensor");
        return NULL;
    }
    int d = igi_wrap_dim("ig_slice", dim, t->ndim);
    if (d < 0) return NULL;
    if (step < 1) {
        igi_error(IG_ERR_ARG, "ig_slice: step must be at least 1, got %lld", (long long)step);
        return NULL;
    }
    int64_t size = t->shape[d];
    if (start < 0) start = start < -size ? 0 : start + size;
    if (end < 0) end = end < -size ? 0 : end + size;
    if (start > size) start = size;
    if (end > size) end = size;
    /* Written so that a huge step cannot overflow: (end - start - 1) / step, not
     * (end - start + step - 1) / step, and the stride is scaled only when two or more
     * elements remain (then (len - 1) * step < size bounds it). */
    int64_t len = end > start ? 1 + (end - start - 1) / step : 0;
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    memcpy(ns, t->shape, sizeof ns);
    memcpy(st, t->strides, sizeof st);
    ns[d] = len;
    st[d] = len > 1 ? t->strides[d] * step : t->strides[d];
    int64_t off = t->offset + (len > 0 ? start * t->strides[d] : 0);
    ig_tensor *out = igi_tensor_view("ig_slice", t, t->ndim, ns, st, off);
    out = igi_finish(IGI_OP_SLICE, scatter_view_backward, out, &t, 1);
    if (out && out->node) {
        out->node->iattr[0] = d;
        out->node->iattr[1] = start;
        out->node->iattr[2] = end;
        out->node->iattr[3] = step;
    }
    return out;
}

ig_tensor *ig_narrow(ig_tensor *t, int dim, int64_t start, int64_t length) {
    IGI_NULL_CHECK("ig_narrow", t);
    int d = igi_wrap_dim("ig_narrow", dim, t->ndim);
    if (d < 0) return NULL;
    if (t->ndim == 0) {
        igi_error(IG_ERR_ARG, "ig_narrow: cannot narrow a 0-dim tensor");
        return NULL;
    }
    int64_t size = t->shape[d];
    if (start < 0) start += size;
    if (start < 0 || length < 0 || start > size || length > size - start) {
        igi_error(IG_ERR_ARG, "ig_narrow: range start %lld length %lld out of bounds for size %lld",
                  (long long)start, (long long)length, (long long)size);
        return NULL;
    }
    return ig_slice(t, d, start, start + length, 1);
}

ig_tensor *ig_select(ig_tensor *t, int dim, int64_t index) {
    IGI_NULL_CHECK("ig_select", t);
    if (t->ndim == 0) {
        igi_error(IG_ERR_ARG, "ig_select: cannot select from a 0-dim tensor");
        return NULL;
    }
    int d = igi_wrap_dim("ig_select", dim, t->ndim);
    if (d < 0) return NULL;
    int64_t size = t->shape[d];
    if (index < -size || index >= size) {
        igi_error(IG_ERR_ARG, "ig_select: index %lld out of range for dim %d of size %lld",
                  (long long)index, dim, (long long)size);
        return NULL;
    }
    if (index < 0) index += size;
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        ns[k] = t->shape[i];
        st[k++] = t->strides[i];
    }
    ig_tensor *out = igi_tensor_view("ig_select", t, k, ns, st, t->offset + index * t->strides[d]);
    out = igi_finish(IGI_OP_SELECT, scatter_view_backward, out, &t, 1);
    if (out && out->node) {
        out->node->iattr[0] = d;
        out->node->iattr[1] = index;
    }
    return out;
}

/* ---- expand ---------------------------------------------------------------------------- */

ig_tensor *ig_expand(ig_tensor *t, int ndim, const int64_t *shape) {
    IGI_NULL_CHECK("ig_expand", t);
    if (ndim > 0 && !shape) {
        igi_error_null("ig_expand", "shape");
        return NULL;
    }
    char b1[160], b2[160];
    if (ndim < t->ndim || ndim > IG_MAX_DIMS) {
        igi_error(IG_ERR_SHAPE, "ig_expand: cannot expand %s to %d dims",
                  ig_shape_str(t, b1, sizeof b1), ndim);
        return NULL;
    }
    int64_t ns[IG_MAX_DIMS], st[IG_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int it = i - lead;
        if (it < 0) {
            if (shape[i] < 0) {
                igi_error(IG_ERR_SHAPE, "ig_expand: size -1 not allowed for new leading dim %d", i);
                return NULL;
            }
            ns[i] = shape[i];
            st[i] = 0;
        } else if (shape[i] == -1 || shape[i] == t->shape[it]) {
            ns[i] = t->shape[it];
            st[i] = t->strides[it];
        } else if (t->shape[it] == 1 && shape[i] >= 0) {
            ns[i] = shape[i];
            st[i] = 0;
        } else {
            igi_error(IG_ERR_SHAPE, "ig_expand: cannot expand %s to %s (dim %d)",
                      ig_shape_str(t, b1, sizeof b1), igi_shape_str(ndim, shape, b2, sizeof b2), i);
            return NULL;
        }
    }
    ig_tensor *out = igi_tensor_view("ig_expand", t, ndim, ns, st, t->offset);
    return igi_finish(IGI_OP_EXPAND, expand_backward, out, &t, 1);
}

/* ---- copies ---------------------------------------------------------------------------- */

static ig_tensor *copy_impl(const char *op, ig_tensor *t, ig_dtype dt, int opid, igi_backward_fn bw) {
    ig_tensor *out = igi_tensor_new(op, t->ndim, t->shape, dt, t->device);
    if (!out) return NULL;
    if (ig_copy_(out, t) != IG_OK) {
        ig_tensor_free(out);
        return NULL;
    }
    return igi_finish(opid, bw, out, &t, 1);
}

ig_tensor *ig_contiguous(ig_tensor *t) {
    IGI_NULL_CHECK("ig_contiguous", t);
    if (igi_is_contiguous(t)) {
        /* A scoped t is returned as is, and with no scope open the caller gets one more
         * reference (as with any heap result). A heap t inside a scope gets a scoped alias
         * instead: callers treat results made in a scope as the scope's, so retaining t
         * there would leak the reference. */
        if (t->scoped || !igi_scope_active()) return ig_tensor_retain(t);
        ig_tensor *out = igi_tensor_view("ig_contiguous", t, t->ndim, t->shape, t->strides, t->offset);
        return igi_finish(IGI_OP_CONTIGUOUS, identity_backward, out, &t, 1);
    }
    return copy_impl("ig_contiguous", t, t->dtype, IGI_OP_CONTIGUOUS, identity_backward);
}

ig_tensor *ig_clone(ig_tensor *t) {
    IGI_NULL_CHECK("ig_clone", t);
    return copy_impl("ig_clone", t, t->dtype, IGI_OP_CONTIGUOUS, identity_backward);
}

ig_tensor *ig_to_dtype(ig_tensor *t, ig_dtype dt) {
    IGI_NULL_CHECK("ig_to_dtype", t);
    if ((unsigned)dt >= IG_DTYPE_COUNT) {
        igi_error(IG_ERR_DTYPE, "ig_to_dtype: invalid dtype %d", (int)dt);
        return NULL;
    }
    if (dt == t->dtype) return ig_clone(t);
    if (!ig_dtype_is_float(dt)) {
        /* Integer results cannot carry gradients. */
        ig_tensor *out = igi_tensor_new("ig_to_dtype", t->ndim, t->shape, dt, t->device);
        if (out && ig_copy_(out, t) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
        return out;
    }
    return copy_impl("ig_to_dtype", t, dt, IGI_OP_TO_DTYPE, to_dtype_backward);
}
