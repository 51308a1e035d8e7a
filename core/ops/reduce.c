/*
 * core/ops/reduce.c — reductions over chosen dims: sum, mean, var, max, min, argmax,
 * argmin, each with its backward (argmax/argmin are not differentiable).
 *
 * A reduction splits the input's dims into kept dims (the output's) and reduced dims. The
 * plan (make_plan) coalesces each class: size-1 dims are dropped and two dims of the same
 * class merge when their strides let one stride walk both, so reducing the innermost dims
 * of a contiguous tensor becomes one unit-stride run per output element. Kernels walk the
 * output in row-major order and, for each output element, the reduced elements as runs of
 * the innermost reduced dim, stepping odometers (no divisions) for the kept offset and the
 * start of each run. Any strides work: transposed, sliced and expanded (stride 0) inputs.
 *
 * Float sums, means and variances accumulate in double (variance is two-pass: the mean,
 * then the squared deviations). Integer sums give int64, wrapping on overflow.
 *
 * Max/min and argmax/argmin pick the FIRST extreme element of each slice in row-major
 * order of the reduced dims; a NaN counts as more extreme than any number for both max and
 * min (as torch: NaN propagates, and argmax/argmin point at the first NaN). The gradient
 * of max/min goes only to that one element, so ties give the whole gradient to the first.
 */
#include <math.h>
#include <string.h>

#include "../backend_impl.h"
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
    bool seen_scalar_dim = false; /* a 0-dim tensor accepts dim 0 (or -1) once */
    for (int i = 0; i < ndims; i++) {
        int d = igi_wrap_dim(op, dims[i], t->ndim);
        if (d < 0) return false;
        bool *seen = t->ndim == 0 ? &seen_scalar_dim : &mask[d];
        if (*seen) {
            igi_error(IG_ERR_ARG, "%s: dim %d appears more than once in dims", op, dims[i]);
            return false;
        }
        *seen = true;
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

/* Coalesced iteration plan of one tensor for a mask (strides in elements). Kept dims are
 * in the output's row-major order; the flat index over the coalesced reduced dims equals
 * the row-major flat index over the original reduced dims (coalescing keeps the order). */
typedef struct {
    int nk, nr;
    int64_t kshape[IG_MAX_DIMS], kstride[IG_MAX_DIMS];
    int64_t rshape[IG_MAX_DIMS], rstride[IG_MAX_DIMS];
    int64_t n_out, n_red;  /* output elements; reduced elements per output element */
    int64_t inner, istride; /* the innermost reduced dim: length and stride of one run */
    int64_t n_runs;         /* runs per output element (inner * n_runs == n_red) */
} reduce_plan;

/* Appends dim (size, stride) to a class list, merging it into the previous (outer) entry
 * when one stride walks both. */
static void plan_push(int *n, int64_t *shape, int64_t *stride, int64_t size, int64_t st) {
    if (size == 1) return;
    if (*n > 0 && shape[*n - 1] != 0 && size != 0 && stride[*n - 1] == st * size) {
        shape[*n - 1] *= size;
        stride[*n - 1] = st;
        return;
    }
    shape[*n] = size;
    stride[*n] = st;
    (*n)++;
}

static void make_plan(int ndim, const int64_t *shape, const int64_t *strides, const bool *mask,
                      reduce_plan *p) {
    p->nk = p->nr = 0;
    p->n_out = p->n_red = 1;
    for (int i = 0; i < ndim; i++) {
        if (mask[i]) {
            plan_push(&p->nr, p->rshape, p->rstride, shape[i], strides[i]);
            p->n_red *= shape[i];
        } else {
            plan_push(&p->nk, p->kshape, p->kstride, shape[i], strides[i]);
            p->n_out *= shape[i];
        }
    }
    p->inner = p->nr ? p->rshape[p->nr - 1] : 1;
    p->istride = p->nr ? p->rstride[p->nr - 1] : 0;
    p->n_runs = p->inner ? p->n_red / p->inner : 0;
}

/* Advances the odometer idx over dims [0, n) of (shape, stride) by one step in row-major
 * order and returns the new offset (back to 0 after the last element). */
static inline int64_t odo_next(int n, const int64_t *shape, const int64_t *stride, int64_t *idx,
                               int64_t off) {
    for (int d = n - 1; d >= 0; d--) {
        off += stride[d];
        if (++idx[d] < shape[d]) return off;
        off -= stride[d] * shape[d];
        idx[d] = 0;
    }
    return off;
}

/* Offset of flat index i over (n, shape, stride). */
static int64_t index_offset(int n, const int64_t *shape, const int64_t *stride, int64_t i) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (i % shape[d]) * stride[d];
        i /= shape[d];
    }
    return off;
}

/* The loops every kernel shares: for each output element i (kept offset kofs), for each
 * run (offset rofs from kofs) of p->inner elements p->istride apart. RUN is a statement. */
#define FOR_EACH_OUTPUT(p, i, kofs)                                                        \
    int64_t kidx_[IG_MAX_DIMS] = {0};                                                      \
    for (int64_t i = 0, kofs = 0; i < (p)->n_out;                                          \
         i++, kofs = odo_next((p)->nk, (p)->kshape, (p)->kstride, kidx_, kofs))
#define FOR_EACH_RUN(p, j, rofs)                                                           \
    int64_t ridx_[IG_MAX_DIMS] = {0};                                                      \
    for (int64_t j = 0, rofs = 0; j < (p)->n_runs;                                         \
         j++, rofs = odo_next((p)->nr - 1, (p)->rshape, (p)->rstride, ridx_, rofs))

/* ---- sum, mean, var kernels (float: double accumulation) --------------------------------- */

/* Sum of one run; four partial sums keep the unit-stride loop from waiting on one chain. */
#define SUM_RUN(NAME, T)                                                                   \
    static double NAME(const T *x, int64_t n, int64_t s) {                                 \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                             \
        int64_t r = 0;                                                                     \
        if (s == 1) {                                                                      \
            for (; r + 4 <= n; r += 4) {                                                   \
                a0 += x[r];                                                                \
                a1 += x[r + 1];                                                            \
                a2 += x[r + 2];                                                            \
                a3 += x[r + 3];                                                            \
            }                                                                              \
            for (; r < n; r++) a0 += x[r];                                                 \
        } else {                                                                           \
            for (; r < n; r++) a0 += x[r * s];                                             \
        }                                                                                  \
        return (a0 + a1) + (a2 + a3);                                                      \
    }
SUM_RUN(sum_run_f32, float)
SUM_RUN(sum_run_f64, double)

/* out[i] = (sum of slice i) / div  (div = 1 for sum, N for mean). */
#define SUM_KERNEL(NAME, T, RUN)                                                           \
    static void NAME(const reduce_plan *p, const T *x, T *out, double div) {               \
        FOR_EACH_OUTPUT(p, i, kofs) {                                                      \
            double acc = 0;                                                                \
            FOR_EACH_RUN(p, j, rofs) acc += RUN(x + kofs + rofs, p->inner, p->istride);    \
            out[i] = (T)(acc / div);                                                       \
        }                                                                                  \
    }
SUM_KERNEL(sum_kernel_f32, float, sum_run_f32)
SUM_KERNEL(sum_kernel_f64, double, sum_run_f64)

/* out[i] = sum of (x - mean)^2 over slice i, / divisor. */
#define VAR_KERNEL(NAME, T, RUN)                                                           \
    static void NAME(const reduce_plan *p, const T *x, T *out, double divisor) {           \
        FOR_EACH_OUTPUT(p, i, kofs) {                                                      \
            double acc = 0;                                                                \
            {                                                                              \
                FOR_EACH_RUN(p, j, rofs) acc += RUN(x + kofs + rofs, p->inner, p->istride);\
            }                                                                              \
            double mean = acc / (double)p->n_red, ss = 0;                                  \
            FOR_EACH_RUN(p, j, rofs) {                                                     \
                const T *run = x + kofs + rofs;                                            \
                for (int64_t r = 0; r < p->inner; r++) {                                   \
                    double d = (double)run[r * p->istride] - mean;                         \
                    ss += d * d;                                                           \
                }                                                                          \
            }                                                                              \
            out[i] = (T)(ss / divisor);                                                    \
        }                                                                                  \
    }
VAR_KERNEL(var_kernel_f32, float, sum_run_f32)
VAR_KERNEL(var_kernel_f64, double, sum_run_f64)

/* Integer sums into int64, wrapping (unsigned arithmetic: no signed overflow). */
static void sum_kernel_int(const reduce_plan *p, ig_dtype dt, const char *base, int64_t *out) {
    size_t es = ig_dtype_size(dt);
    FOR_EACH_OUTPUT(p, i, kofs) {
        uint64_t acc = 0;
        FOR_EACH_RUN(p, j, rofs) {
            const char *run = base + (size_t)(kofs + rofs) * es;
            for (int64_t r = 0; r < p->inner; r++) {
                const char *x = run + (size_t)(r * p->istride) * es;
                switch (dt) {
                case IG_I32: acc += (uint64_t)(int64_t)*(const int32_t *)x; break;
                case IG_I64: acc += (uint64_t)*(const int64_t *)x; break;
                default: acc += *(const uint8_t *)x; break;
                }
            }
        }
        out[i] = (int64_t)acc;
    }
}

/* ---- max / min / argmax / argmin kernel ----------------------------------------------- */

/* For each output element: the first extreme element of its slice (NaN beats everything).
 * Writes the value to vout[i] and its flat index within the slice to iout[i], either of
 * which may be NULL. The caller guarantees n_red >= 1. */
#define EXTREME_KERNEL(NAME, T, ISNAN)                                                     \
    static void NAME(const reduce_plan *p, const T *x, T *vout, int64_t *iout, bool is_max) { \
        FOR_EACH_OUTPUT(p, i, kofs) {                                                      \
            T best = x[kofs];                                                              \
            int64_t best_i = 0, flat = 0;                                                  \
            bool done = ISNAN(best);                                                       \
            FOR_EACH_RUN(p, j, rofs) {                                                     \
                if (done) break;                                                           \
                const T *run = x + kofs + rofs;                                            \
                for (int64_t r = 0; r < p->inner; r++, flat++) {                           \
                    T v = run[r * p->istride];                                             \
                    if (ISNAN(v)) {                                                        \
                        best = v;                                                          \
                        best_i = flat;                                                     \
                        done = true;                                                       \
                        break;                                                             \
                    }                                                                      \
                    if (is_max ? v > best : v < best) {                                   \
                        best = v;                                                          \
                        best_i = flat;                                                     \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
            if (vout) vout[i] = best;                                                      \
            if (iout) iout[i] = best_i;                                                    \
        }                                                                                  \
    }
#define FLOAT_ISNAN(v) isnan(v)
#define INT_ISNAN(v) false
EXTREME_KERNEL(extreme_f32, float, FLOAT_ISNAN)
EXTREME_KERNEL(extreme_f64, double, FLOAT_ISNAN)
EXTREME_KERNEL(extreme_i32, int32_t, INT_ISNAN)
EXTREME_KERNEL(extreme_i64, int64_t, INT_ISNAN)
EXTREME_KERNEL(extreme_u8, uint8_t, INT_ISNAN)

static void extreme_dispatch(const reduce_plan *p, const ig_tensor *t, ig_tensor *vals,
                             int64_t *iout, bool is_max) {
    const void *x = igi_data(t);
    void *v = vals ? igi_data(vals) : NULL;
    switch (t->dtype) {
    case IG_F32: extreme_f32(p, x, v, iout, is_max); break;
    case IG_F64: extreme_f64(p, x, v, iout, is_max); break;
    case IG_I32: extreme_i32(p, x, v, iout, is_max); break;
    case IG_I64: extreme_i64(p, x, v, iout, is_max); break;
    default: extreme_u8(p, x, v, iout, is_max); break;
    }
}

/* ---- device dispatch ------------------------------------------------------------------- */

/* The backend's description of plan p over t's storage, writing out / index. */
static void red_from_plan(const reduce_plan *p, const ig_tensor *t, ig_tensor *out, ig_tensor *index,
                          igi_red *r) {
    memset(r, 0, sizeof *r);
    r->nk = p->nk;
    r->nr = p->nr;
    for (int i = 0; i < p->nk; i++) {
        r->kshape[i] = p->kshape[i];
        r->kstride[i] = p->kstride[i];
    }
    for (int i = 0; i < p->nr; i++) {
        r->rshape[i] = p->rshape[i];
        r->rstride[i] = p->rstride[i];
    }
    r->n_out = p->n_out;
    r->n_red = p->n_red;
    r->in = igi_data(t);
    r->in_dtype = t->dtype;
    r->out = out ? igi_data(out) : NULL;
    r->out_dtype = out ? out->dtype : IG_I64;
    r->index = index ? (int64_t *)(void *)igi_data(index) : NULL;
}

/* Runs reduction kind on t's device into out (and index); frees out on failure. */
static bool device_reduce(const char *op, int kind, const reduce_plan *p, const ig_tensor *t, ig_tensor *out,
                          ig_tensor *index, double div) {
    const igi_backend *be = IGI_BACKEND_WITH(op, t->device, reduce);
    if (!be) return false;
    if (p->n_out == 0) return true;
    igi_red r;
    red_from_plan(p, t, out, index, &r);
    return be->reduce(op, kind, &r, div) == IG_OK;
}

/* ---- shared front end ------------------------------------------------------------------ */

/* Validates t and dims, and gives the mask and output shape. */
static bool reduce_setup(const char *op, ig_tensor *t, int ndims, const int *dims, bool keepdim,
                         bool float_only, bool *mask, int *ond, int64_t *os) {
    if (!t) {
        igi_error_null(op, "t");
        return false;
    }
    if (t->device != IG_CPU && !IGI_BACKEND_WITH(op, t->device, reduce)) return false;
    if (float_only && !igi_check_float_bf16(op, t)) return false;
    if (!reduce_mask(op, t, ndims, dims, mask)) return false;
    *ond = reduced_shape(t, mask, keepdim, os);
    return true;
}

/* The shape of g with the reduced dims put back as size 1 (iattr[0..ndim) is the mask). */
static ig_tensor *grad_keepdim(const igi_node *n, ig_tensor *g) {
    const ig_tensor *in = n->inputs[0];
    int64_t ks[IG_MAX_DIMS];
    for (int i = 0; i < in->ndim; i++) ks[i] = n->iattr[i] ? 1 : in->shape[i];
    return ig_reshape(g, in->ndim, ks);
}

static void store_mask(ig_tensor *out, const ig_tensor *t, const bool *mask) {
    if (out && out->node)
        for (int i = 0; i < t->ndim; i++) out->node->iattr[i] = mask[i];
}

/* ---- sum ------------------------------------------------------------------------------- */

static ig_status sum_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    gin[0] = ig_expand(grad_keepdim(n, g), in->ndim, in->shape);
    return gin[0] ? IG_OK : ig_last_status();
}

ig_tensor *ig_sum(ig_tensor *t, int ndims, const int *dims, bool keepdim) {
    const char *op = "ig_sum";
    IGI_BF16_VIA_F32(t, IGI_BF16_REDUCE, ig_sum(IGI_W, ndims, dims, keepdim));
    bool mask[IG_MAX_DIMS];
    int ond;
    int64_t os[IG_MAX_DIMS];
    if (!reduce_setup(op, t, ndims, dims, keepdim, false, mask, &ond, os)) return NULL;
    ig_dtype odt = ig_dtype_is_float(t->dtype) ? t->dtype : IG_I64;
    ig_tensor *out = igi_tensor_new(op, ond, os, odt, t->device);
    if (!out) return NULL;
    reduce_plan p;
    make_plan(t->ndim, t->shape, t->strides, mask, &p);
    if (t->device != IG_CPU) {
        if (!device_reduce(op, IGI_RED_SUM, &p, t, out, NULL, 1.0)) {
            ig_tensor_free(out);
            return NULL;
        }
    } else if (t->dtype == IG_F32) sum_kernel_f32(&p, (const float *)igi_data(t), (void *)igi_data(out), 1.0);
    else if (t->dtype == IG_F64) sum_kernel_f64(&p, (const double *)igi_data(t), (void *)igi_data(out), 1.0);
    else sum_kernel_int(&p, t->dtype, igi_data(t), (int64_t *)(void *)igi_data(out));
    out = igi_finish(IGI_OP_SUM, sum_backward, out, &t, 1);
    store_mask(out, t, mask);
    return out;
}

/* ---- mean ------------------------------------------------------------------------------ */

static ig_status mean_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    ig_tensor *e = ig_expand(grad_keepdim(n, g), in->ndim, in->shape);
    gin[0] = ig_mul_scalar(e, 1.0 / n->dattr[0]);
    return gin[0] ? IG_OK : ig_last_status();
}

ig_tensor *ig_mean(ig_tensor *t, int ndims, const int *dims, bool keepdim) {
    const char *op = "ig_mean";
    IGI_BF16_VIA_F32(t, IGI_BF16_REDUCE, ig_mean(IGI_W, ndims, dims, keepdim));
    bool mask[IG_MAX_DIMS];
    int ond;
    int64_t os[IG_MAX_DIMS];
    if (!reduce_setup(op, t, ndims, dims, keepdim, true, mask, &ond, os)) return NULL;
    ig_tensor *out = igi_tensor_new(op, ond, os, t->dtype, t->device);
    if (!out) return NULL;
    reduce_plan p;
    make_plan(t->ndim, t->shape, t->strides, mask, &p);
    /* Over zero elements this is 0/0 = NaN, as torch. */
    double count = (double)p.n_red;
    if (t->device != IG_CPU) {
        if (!device_reduce(op, IGI_RED_MEAN, &p, t, out, NULL, count)) {
            ig_tensor_free(out);
            return NULL;
        }
    } else if (t->dtype == IG_F32) sum_kernel_f32(&p, (const float *)igi_data(t), (void *)igi_data(out), count);
    else sum_kernel_f64(&p, (const double *)igi_data(t), (void *)igi_data(out), count);
    out = igi_finish(IGI_OP_MEAN, mean_backward, out, &t, 1);
    store_mask(out, t, mask);
    if (out && out->node) out->node->dattr[0] = count;
    return out;
}

/* ---- var ------------------------------------------------------------------------------- */

/* d var / dx = 2 (x - mean) / (N - correction), times the incoming gradient. */
static ig_status var_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    int dims[IG_MAX_DIMS], nd = 0;
    for (int i = 0; i < in->ndim; i++)
        if (n->iattr[i]) dims[nd++] = i;
    /* nd == 0 only for a 0-dim input, where "all dims" is the same empty set. */
    ig_tensor *mean = ig_mean(in, nd, dims, true);
    ig_tensor *diff = ig_sub(in, mean);
    ig_tensor *scaled = ig_mul_scalar(diff, 2.0 / n->dattr[0]);
    gin[0] = ig_mul(scaled, grad_keepdim(n, g));
    return gin[0] ? IG_OK : ig_last_status();
}

ig_tensor *ig_var(ig_tensor *t, int ndims, const int *dims, int64_t correction, bool keepdim) {
    const char *op = "ig_var";
    IGI_BF16_VIA_F32(t, IGI_BF16_REDUCE, ig_var(IGI_W, ndims, dims, correction, keepdim));
    bool mask[IG_MAX_DIMS];
    int ond;
    int64_t os[IG_MAX_DIMS];
    if (!reduce_setup(op, t, ndims, dims, keepdim, true, mask, &ond, os)) return NULL;
    ig_tensor *out = igi_tensor_new(op, ond, os, t->dtype, t->device);
    if (!out) return NULL;
    reduce_plan p;
    make_plan(t->ndim, t->shape, t->strides, mask, &p);
    /* torch divides by max(0, N - correction): 0 gives NaN (0/0) or inf. In double so that
     * extreme corrections cannot overflow. */
    double divisor = (double)p.n_red - (double)correction;
    if (divisor < 0) divisor = 0;
    if (t->device != IG_CPU) {
        if (!device_reduce(op, IGI_RED_VAR, &p, t, out, NULL, divisor)) {
            ig_tensor_free(out);
            return NULL;
        }
    } else if (t->dtype == IG_F32) var_kernel_f32(&p, (const float *)igi_data(t), (void *)igi_data(out), divisor);
    else var_kernel_f64(&p, (const double *)igi_data(t), (void *)igi_data(out), divisor);
    out = igi_finish(IGI_OP_VAR, var_backward, out, &t, 1);
    store_mask(out, t, mask);
    if (out && out->node) out->node->dattr[0] = divisor;
    return out;
}

/* ---- max / min ------------------------------------------------------------------------- */

/* Refuses a reduction over a zero-size dim (there is no extreme to return). */
static bool check_nonempty(const char *op, const ig_tensor *t, const bool *mask) {
    for (int i = 0; i < t->ndim; i++) {
        if (mask[i] && t->shape[i] == 0) {
            char b[160];
            igi_error(IG_ERR_SHAPE, "%s: cannot reduce over dim %d of %s: it has size 0", op, i,
                      ig_shape_str(t, b, sizeof b));
            return false;
        }
    }
    return true;
}

/* Scatters g into zeros of the input's shape at the saved index of each slice's extreme. */
static ig_status extreme_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *in = n->inputs[0];
    const char *op = igi_op_name(n->op);
    const igi_backend *be = NULL;
    if (in->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, in->device, reduce_scatter))) return ig_last_status();
    const int64_t *idx = (const int64_t *)igi_data(n->saved[0]);
    ig_tensor *gc = ig_contiguous(g); /* gc[i] is the gradient of output element i */
    ig_tensor *z = igi_full_on(op, in->ndim, in->shape, g->dtype, 0.0, in->device);
    if (!gc || !z) return ig_last_status();
    bool mask[IG_MAX_DIMS] = {false};
    for (int i = 0; i < in->ndim; i++) mask[i] = n->iattr[i] != 0;
    reduce_plan p;
    make_plan(z->ndim, z->shape, z->strides, mask, &p);
    if (be) {
        igi_red r;
        red_from_plan(&p, z, z, n->saved[0], &r); /* out: z, laid out as the plan says */
        r.in_dtype = g->dtype;
        ig_status st = p.n_out > 0 ? be->reduce_scatter(op, &r, igi_data(gc)) : IG_OK;
        if (st != IG_OK) return st;
        gin[0] = z;
        return IG_OK;
    }
    char *zd = igi_data(z);
    const char *gd = igi_data(gc);
    size_t es = ig_dtype_size(g->dtype);
    FOR_EACH_OUTPUT(&p, i, kofs) {
        int64_t off = kofs + index_offset(p.nr, p.rshape, p.rstride, idx[i]);
        memcpy(zd + (size_t)off * es, gd + (size_t)i * es, es);
    }
    gin[0] = z;
    return IG_OK;
}

static ig_tensor *extreme_op(const char *op, int opid, ig_tensor *t, int ndims, const int *dims,
                             bool keepdim, bool is_max) {
    IGI_BF16_VIA_F32(t, IGI_BF16_REDUCE, extreme_op(op, opid, IGI_W, ndims, dims, keepdim, is_max));
    bool mask[IG_MAX_DIMS];
    int ond;
    int64_t os[IG_MAX_DIMS];
    if (!reduce_setup(op, t, ndims, dims, keepdim, false, mask, &ond, os)) return NULL;
    if (!check_nonempty(op, t, mask)) return NULL;
    ig_tensor *out = igi_tensor_new(op, ond, os, t->dtype, t->device);
    if (!out) return NULL;
    /* The index of each extreme is only needed (and only allocated) for backward. */
    bool record = igi_should_record(&t, 1);
    ig_tensor *idx = record ? igi_tensor_new(op, ond, os, IG_I64, t->device) : NULL;
    if (record && !idx) {
        ig_tensor_free(out);
        return NULL;
    }
    reduce_plan p;
    make_plan(t->ndim, t->shape, t->strides, mask, &p);
    if (t->device != IG_CPU) {
        if (!device_reduce(op, is_max ? IGI_RED_MAX : IGI_RED_MIN, &p, t, out, idx, 0.0)) {
            ig_tensor_free(idx);
            ig_tensor_free(out);
            return NULL;
        }
    } else {
        extreme_dispatch(&p, t, out, idx ? (int64_t *)igi_data(idx) : NULL, is_max);
    }
    out = igi_finish(opid, extreme_backward, out, &t, 1);
    if (out && out->node) {
        store_mask(out, t, mask);
        igi_node_save(out->node, 0, idx);
    }
    ig_tensor_free(idx); /* the node holds its own reference */
    return out;
}

ig_tensor *ig_max(ig_tensor *t, int ndims, const int *dims, bool keepdim) {
    return extreme_op("ig_max", IGI_OP_MAX, t, ndims, dims, keepdim, true);
}

ig_tensor *ig_min(ig_tensor *t, int ndims, const int *dims, bool keepdim) {
    return extreme_op("ig_min", IGI_OP_MIN, t, ndims, dims, keepdim, false);
}

/* ---- argmax / argmin ------------------------------------------------------------------- */

static ig_tensor *arg_extreme(const char *op, ig_tensor *t, int dim, bool keepdim, bool is_max) {
    IGI_BF16_VIA_F32(t, IGI_BF16_REDUCE, arg_extreme(op, IGI_W, dim, keepdim, is_max));
    bool mask[IG_MAX_DIMS];
    int ond;
    int64_t os[IG_MAX_DIMS];
    if (!reduce_setup(op, t, 1, &dim, keepdim, false, mask, &ond, os)) return NULL;
    if (!check_nonempty(op, t, mask)) return NULL;
    ig_tensor *out = igi_tensor_new(op, ond, os, IG_I64, t->device);
    if (!out) return NULL;
    reduce_plan p;
    make_plan(t->ndim, t->shape, t->strides, mask, &p);
    /* With one reduced dim, the flat index within the slice is the index along dim. */
    if (t->device != IG_CPU) {
        if (!device_reduce(op, is_max ? IGI_RED_MAX : IGI_RED_MIN, &p, t, NULL, out, 0.0)) {
            ig_tensor_free(out);
            return NULL;
        }
        return out;
    }
    extreme_dispatch(&p, t, NULL, (int64_t *)igi_data(out), is_max);
    return out;
}

ig_tensor *ig_argmax(ig_tensor *t, int dim, bool keepdim) {
    return arg_extreme("ig_argmax", t, dim, keepdim, true);
}

ig_tensor *ig_argmin(ig_tensor *t, int dim, bool keepdim) {
    return arg_extreme("ig_argmin", t, dim, keepdim, false);
}
