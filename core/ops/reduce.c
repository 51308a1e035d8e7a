/*
 * core/ops/reduce.c — reductions over chosen dims: sum (more to come in this file: mean,
 * var, max, min, argmax).
 *
 * A reduction splits the input's dims into kept dims (the output's) and reduced dims. The
 * kernel walks the output in row-major order and, for each output element, the reduced
 * elements through their strides. Float sums accumulate in double.
 */
#include <string.h>

#include "../tensor_impl.h"

/* Parses (ndims, dims) into a reduce mask over t's dims; ndims == 0 means all dims. */
static bool reduce_mask(const char *op, const ig_tensor *t, int ndims, const int *dims, bool *mask) {
    memset(mask, 0, sizeof(bool) * IG_MAX_DIMS);
    if (ndims < 0 || ndims > IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "%s: invalid number of dims %d", op, ndims);
        return false;
    }
    if (ndims > 0 && !dims) {
        igi_error_null(op, "dims");
        return false;
    }
    if (ndims == 0) {
        for (int i = 0; i < t->ndim; i++) mask[i] = true;
        return true;
    }
    for (int i = 0; i < ndims; i++) {
        int d = igi_wrap_dim(op, dims[i], t->ndim);
        if (d < 0) return false;
        if (t->ndim == 0) continue;
        if (mask[d]) {
            igi_error(IG_ERR_ARG, "%s: dim %d repeated", op, dims[i]);
            return false;
        }
        mask[d] = true;
    }
    return true;
}

/* Output shape for a mask. */
static int reduced_shape(const ig_tensor *t, const bool *mask, bool keepdim, int64_t *out) {
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (!mask[i]) out[k++] = t->shape[i];
        else if (keepdim) out[k++] = 1;
    }
    return k;
}

/* Calls fn(acc_init...) style loops: for each output element, visit reduced elements. */
typedef struct {
    int nk, nr;
    int64_t kshape[IG_MAX_DIMS], kstride[IG_MAX_DIMS];
    int64_t rshape[IG_MAX_DIMS], rstride[IG_MAX_DIMS];
    int64_t n_out, n_red;
} reduce_plan;

static void make_plan(const ig_tensor *t, const bool *mask, reduce_plan *p) {
    p->nk = p->nr = 0;
    p->n_out = p->n_red = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (mask[i]) {
            p->rshape[p->nr] = t->shape[i];
            p->rstride[p->nr++] = t->strides[i];
            p->n_red *= t->shape[i];
        } else {
            p->kshape[p->nk] = t->shape[i];
            p->kstride[p->nk++] = t->strides[i];
            p->n_out *= t->shape[i];
        }
    }
}

/* Storage offset (relative to t->offset) of flat index i over (n, shape, stride). */
static inline int64_t index_offset(int n, const int64_t *shape, const int64_t *stride, int64_t i) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (i % shape[d]) * stride[d];
        i /= shape[d];
    }
    return off;
}

static void sum_kernel(const ig_tensor *t, const reduce_plan *p, ig_tensor *out) {
    size_t es = ig_dtype_size(t->dtype);
    const char *base = igi_data(t);
    char *o = igi_data(out);
    /* Fast inner path: the last reduced dim (if any) is walked directly. */
    for (int64_t i = 0; i < p->n_out; i++) {
        int64_t kofs = index_offset(p->nk, p->kshape, p->kstride, i);
        if (t->dtype == IG_F32 || t->dtype == IG_F64) {
            double acc = 0;
            int64_t inner = p->nr ? p->rshape[p->nr - 1] : 1;
            int64_t istr = p->nr ? p->rstride[p->nr - 1] : 0;
            int64_t outer = inner ? p->n_red / inner : 0;
            for (int64_t j = 0; j < outer; j++) {
                int64_t rofs = index_offset(p->nr - 1, p->rshape, p->rstride, j);
                if (t->dtype == IG_F32) {
                    const float *x = (const float *)base + kofs + rofs;
                    for (int64_t r = 0; r < inner; r++) acc += x[r * istr];
                } else {
                    const double *x = (const double *)base + kofs + rofs;
                    for (int64_t r = 0; r < inner; r++) acc += x[r * istr];
                }
            }
            igi_store(out->dtype, o + (size_t)i * ig_dtype_size(out->dtype), acc);
        } else {
            /* Integers sum into int64 with wrapping (as torch: int sums give int64). */
            uint64_t acc = 0;
            for (int64_t j = 0; j < p->n_red; j++) {
                int64_t r = index_offset(p->nr, p->rshape, p->rstride, j);
                const char *x = base + (size_t)(kofs + r) * es;
                switch (t->dtype) {
                case IG_I32: acc += (uint64_t)(int64_t)*(const int32_t *)x; break;
                case IG_I64: acc += (uint64_t)*(const int64_t *)x; break;
                default: acc += *(const uint8_t *)x; break;
                }
            }
            ((int64_t *)o)[i] = (int64_t)acc;
        }
    }
}

static ig_status sum_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    /* Put back the reduced dims as size 1 (iattr[0..ndim) is the mask), then expand. */
    int64_t ks[IG_MAX_DIMS];
    for (int i = 0; i < in->ndim; i++) ks[i] = n->iattr[i] ? 1 : in->shape[i];
    ig_tensor *gk = ig_reshape(g, in->ndim, ks);
    gin[0] = ig_expand(gk, in->ndim, in->shape);
    return gin[0] ? IG_OK : ig_last_status();
}

ig_tensor *ig_sum(ig_tensor *t, int ndims, const int *dims, bool keepdim) {
    const char *op = "ig_sum";
    if (!t) {
        igi_error_null(op, "t");
        return NULL;
    }
    if (t->device != IG_CPU) {
        igi_error(IG_ERR_DEVICE, "%s: device not supported in this build", op);
        return NULL;
    }
    bool mask[IG_MAX_DIMS];
    if (!reduce_mask(op, t, ndims, dims, mask)) return NULL;
    int64_t os[IG_MAX_DIMS];
    int ond = reduced_shape(t, mask, keepdim, os);
    ig_dtype odt = ig_dtype_is_float(t->dtype) ? t->dtype : IG_I64;
    ig_tensor *out = igi_tensor_new(op, ond, os, odt, t->device);
    if (!out) return NULL;
    reduce_plan p;
    make_plan(t, mask, &p);
    sum_kernel(t, &p, out);
    out = igi_finish(IGI_OP_SUM, sum_backward, out, &t, 1);
    if (out && out->node)
        for (int i = 0; i < t->ndim; i++) out->node->iattr[i] = mask[i];
    return out;
}
