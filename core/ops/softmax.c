/*
 * core/ops/softmax.c — softmax and log_softmax along one dim, with their own backward
 * kernels.
 *
 * Both are numerically stable: each row (the elements along dim, for one index of every
 * other dim) has its maximum m subtracted before exp, so softmax(1000, 1001) is finite and
 * log_softmax = x - m - log(sum(exp(x - m))) stays finite where the exact value is.
 * Float dtypes only; f32 rows compute exp in float and accumulate the sum in double.
 * Inputs may have any strides; outputs are contiguous. On a device the same arithmetic runs
 * in cuda/softmax.cu (one block per row). A row with a NaN gives NaN, and a
 * row of all -inf gives NaN (as torch). Backward, with y the saved output:
 *   softmax:     gin = y * (g - sum(g * y, dim))
 *   log_softmax: gin = g - exp(y) * sum(g, dim)
 */
#include <math.h>
#include <string.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

/* Rows of up to three tensors of the same shape along dim: the other dims (an odometer
 * walks them) and, per tensor, the stride along dim. A 0-dim tensor is one row of 1. */
typedef struct {
    int n;                              /* other dims */
    int64_t shape[IG_MAX_DIMS];
    int64_t stride[3][IG_MAX_DIMS];
    int64_t len;                        /* row length: the size of dim */
    int64_t step[3];                    /* stride along dim, per tensor */
    int64_t rows;
    int nt;
} row_plan;

static void make_rows(int ndim, const int64_t *shape, int dim, ig_tensor *const *ts, int nt,
                      row_plan *p) {
    p->n = 0;
    p->nt = nt;
    p->rows = 1;
    p->len = ndim ? shape[dim] : 1;
    for (int k = 0; k < nt; k++) p->step[k] = ndim ? ts[k]->strides[dim] : 0;
    for (int d = 0; d < ndim; d++) {
        if (d == dim) continue;
        p->shape[p->n] = shape[d];
        for (int k = 0; k < nt; k++) p->stride[k][p->n] = ts[k]->strides[d];
        p->rows *= shape[d];
        p->n++;
    }
}

/* Advances the row odometer and each tensor's row offset (in elements). */
static void next_row(const row_plan *p, int64_t *idx, int64_t *off) {
    for (int d = p->n - 1; d >= 0; d--) {
        for (int k = 0; k < p->nt; k++) off[k] += p->stride[k][d];
        if (++idx[d] < p->shape[d]) return;
        for (int k = 0; k < p->nt; k++) off[k] -= p->stride[k][d] * p->shape[d];
        idx[d] = 0;
    }
}

/* The same rows for a device kernel (core/backend_impl.h). */
static void rows_for_device(const row_plan *p, ig_tensor *const *ts, igi_rows *r) {
    memset(r, 0, sizeof *r);
    r->n = p->n;
    r->nt = p->nt;
    r->rows = p->rows;
    r->len = p->len;
    r->dtype = ts[0]->dtype;
    for (int d = 0; d < p->n; d++) r->shape[d] = p->shape[d];
    for (int k = 0; k < p->nt; k++) {
        r->step[k] = p->step[k];
        r->data[k] = igi_data(ts[k]);
        for (int d = 0; d < p->n; d++) r->stride[k][d] = p->stride[k][d];
    }
}

/* ---- forward --------------------------------------------------------------------------- */

/* Tensor 0 is the output y, tensor 1 the input x. */
#define SOFTMAX_FWD(NAME, T, EXP)                                                          \
    static void NAME(const row_plan *p, T *yb, const T *xb, bool log_out) {                \
        int64_t idx[IG_MAX_DIMS] = {0}, off[3] = {0, 0, 0};                                \
        int64_t n = p->len, sy = p->step[0], sx = p->step[1];                              \
        for (int64_t row = 0; row < p->rows; row++, next_row(p, idx, off)) {               \
            T *y = yb + off[0];                                                            \
            const T *x = xb + off[1];                                                      \
            T m = -(T)INFINITY;                                                            \
            for (int64_t r = 0; r < n; r++)                                                \
                if (x[r * sx] > m) m = x[r * sx];                                          \
            double sum = 0;                                                                \
            if (log_out) {                                                                 \
                for (int64_t r = 0; r < n; r++) sum += EXP(x[r * sx] - m);                 \
                T lse = (T)log(sum);                                                       \
                for (int64_t r = 0; r < n; r++) y[r * sy] = x[r * sx] - m - lse;           \
            } else {                                                                       \
                for (int64_t r = 0; r < n; r++) {                                          \
                    T e = EXP(x[r * sx] - m);                                              \
                    y[r * sy] = e;                                                         \
                    sum += e;                                                              \
                }                                                                          \
                T inv = (T)(1.0 / sum);                                                    \
                for (int64_t r = 0; r < n; r++) y[r * sy] *= inv;                          \
            }                                                                              \
        }                                                                                  \
    }
SOFTMAX_FWD(softmax_fwd_f32, float, expf)
SOFTMAX_FWD(softmax_fwd_f64, double, exp)

/* ---- backward -------------------------------------------------------------------------- */

/* Tensor 0 is gin, 1 the output gradient g, 2 the saved output y. */
#define SOFTMAX_BWD(NAME, T, EXP)                                                          \
    static void NAME(const row_plan *p, T *gib, const T *gb, const T *yb, bool log_out) {  \
        int64_t idx[IG_MAX_DIMS] = {0}, off[3] = {0, 0, 0};                                \
        int64_t n = p->len, si = p->step[0], sg = p->step[1], sy = p->step[2];             \
        for (int64_t row = 0; row < p->rows; row++, next_row(p, idx, off)) {               \
            T *gi = gib + off[0];                                                          \
            const T *g = gb + off[1], *y = yb + off[2];                                    \
            double acc = 0;                                                                \
            if (log_out) {                                                                 \
                for (int64_t r = 0; r < n; r++) acc += g[r * sg];                          \
                T s = (T)acc;                                                              \
                for (int64_t r = 0; r < n; r++) gi[r * si] = g[r * sg] - EXP(y[r * sy]) * s; \
            } else {                                                                       \
                for (int64_t r = 0; r < n; r++) acc += (double)g[r * sg] * y[r * sy];      \
                T s = (T)acc;                                                              \
                for (int64_t r = 0; r < n; r++) gi[r * si] = y[r * sy] * (g[r * sg] - s);  \
            }                                                                              \
        }                                                                                  \
    }
SOFTMAX_BWD(softmax_bwd_f32, float, expf)
SOFTMAX_BWD(softmax_bwd_f64, double, exp)

static ig_status softmax_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *y = node->saved[0];
    int dim = (int)node->iattr[0];
    const char *op = igi_op_name(node->op);
    const igi_backend *be = NULL;
    if (y->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, y->device, softmax_backward))) return ig_last_status();
    if (!igi_check_same_device_any(op, g, y)) return ig_last_status();
    ig_tensor *gi = igi_tensor_new(op, y->ndim, y->shape, y->dtype, y->device);
    if (!gi) return ig_last_status();
    ig_tensor *ts[3] = {gi, g, y};
    row_plan p;
    make_rows(y->ndim, y->shape, dim, ts, 3, &p);
    bool log_out = node->op == IGI_OP_LOG_SOFTMAX;
    if (be) {
        igi_rows r;
        rows_for_device(&p, ts, &r);
        ig_status st = be->softmax_backward(op, log_out, &r);
        if (st != IG_OK) return st;
    } else if (y->dtype == IG_F32)
        softmax_bwd_f32(&p, (void *)igi_data(gi), (const float *)igi_data(g), (const float *)igi_data(y), log_out);
    else
        softmax_bwd_f64(&p, (void *)igi_data(gi), (const double *)igi_data(g), (const double *)igi_data(y), log_out);
    gin[0] = gi;
    return IG_OK;
}

static ig_tensor *softmax_op(const char *op, int opid, ig_tensor *t, int dim) {
    if (!t) {
        igi_error_null(op, "t");
        return NULL;
    }
    if (t->dtype == IG_BF16) { /* computed on an f32 copy, with an f32 result (torch's autocast) */
        ig_tensor *w = igi_bf16_widen(t);
        return w ? softmax_op(op, opid, w, dim) : NULL;
    }
    const igi_backend *be = NULL;
    if (t->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, t->device, softmax))) return NULL;
    if (!igi_check_float(op, t)) return NULL;
    int d = igi_wrap_dim(op, dim, t->ndim);
    if (d < 0) return NULL;
    ig_tensor *out = igi_tensor_new(op, t->ndim, t->shape, t->dtype, t->device);
    if (!out) return NULL;
    ig_tensor *ts[2] = {out, t};
    row_plan p;
    make_rows(t->ndim, t->shape, d, ts, 2, &p);
    bool log_out = opid == IGI_OP_LOG_SOFTMAX;
    if (be) {
        igi_rows r;
        rows_for_device(&p, ts, &r);
        if (be->softmax(op, log_out, &r) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
    } else if (t->dtype == IG_F32) softmax_fwd_f32(&p, (void *)igi_data(out), (const float *)igi_data(t), log_out);
    else softmax_fwd_f64(&p, (void *)igi_data(out), (const double *)igi_data(t), log_out);
    out = igi_finish(opid, softmax_backward, out, &t, 1);
    if (out && out->node) {
        igi_node_save(out->node, 0, out); /* held weakly: no cycle */
        out->node->iattr[0] = d;
    }
    return out;
}

ig_tensor *ig_softmax(ig_tensor *t, int dim) { return softmax_op("ig_softmax", IGI_OP_SOFTMAX, t, dim); }

ig_tensor *ig_log_softmax(ig_tensor *t, int dim) {
    return softmax_op("ig_log_softmax", IGI_OP_LOG_SOFTMAX, t, dim);
}
