/*
 * core/ops/loss.c — the losses of torch.nn.functional: cross_entropy (fused log-softmax +
 * NLL), nll_loss, mse_loss, l1_loss, smooth_l1_loss and binary_cross_entropy_with_logits.
 *
 * Class losses (cross-entropy, NLL) take scores x [N,C,d...] (or unbatched [C]) and integer
 * targets t [N,d...] (or 0-dim): the class dim is 1 (0 when unbatched) and every element of
 * the target shape is one "position" owning a row of C scores. Targets are validated before
 * anything is computed. A position whose target equals ignore_index (when use_ignore_index)
 * contributes 0 and is left out of the mean's denominator; a mean over no counted position
 * is 0/0 = NaN, as torch. Cross-entropy with label smoothing eps is torch's
 *   loss_i = (1-eps) * (-logp[t_i]) + eps/C * sum_c(-logp[c]),  logp = log_softmax(x_i),
 * computed per row with the row maximum subtracted (so logits of 1000+ are fine) and the
 * exp sum accumulated in double. Cross-entropy saves only the per-position log-sum-exp
 * (f64, the target's shape) and its backward kernel rebuilds softmax from it:
 *   dx_i = (softmax(x_i) - (1-eps)*onehot(t_i) - eps/C) * g_i / denom   (0 if ignored)
 * with denom the counted positions for mean and 1 otherwise. NLL's backward scatters
 * -g_i / denom into the target entries.
 *
 * Pointwise losses (mse, l1, smooth_l1, bce_with_logits) need input and target of the same
 * float dtype and the same shape (no broadcasting: torch only warns, which hides bugs).
 * Their elementwise loss is one kernel with its own backward (gradients for input AND
 * target); mean and sum then reduce it with ig_mean / ig_sum (double accumulation), whose
 * backward is already correct. BCE uses max(x,0) - x*y + log1p(exp(-|x|)) and its gradient
 * sigmoid(x) - y is computed directly (composing relu/abs would give the wrong gradient at
 * x == 0, where the formula has kinks that cancel).
 */
#include <math.h>
#include <string.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

static bool check_reduction(const char *op, ig_reduction r) {
    if (r != IG_REDUCTION_MEAN && r != IG_REDUCTION_SUM && r != IG_REDUCTION_NONE) {
        igi_error(IG_ERR_ARG, "%s: invalid reduction %d", op, (int)r);
        return false;
    }
    return true;
}

/* ==== class losses: cross-entropy and NLL ============================================== */

/* Walks every position (element of the target shape) with one element offset per tensor
 * (up to CE_NT tensors, each with its strides over the target's dims), like an odometer. */
#define CE_NT 5
typedef struct {
    int n;                              /* dims of the target shape */
    int64_t shape[IG_MAX_DIMS];
    int64_t stride[CE_NT][IG_MAX_DIMS];
    int nt;
    int64_t idx[IG_MAX_DIMS];
    int64_t off[CE_NT];
} pos_walk;

/* Starts a walk over shape (n dims) for nt tensors with the given per-dim strides. */
static void walk_init(pos_walk *w, int n, const int64_t *shape, int nt, const int64_t (*strides)[IG_MAX_DIMS]) {
    memset(w, 0, sizeof *w);
    w->n = n;
    w->nt = nt;
    for (int d = 0; d < n; d++) w->shape[d] = shape[d];
    for (int k = 0; k < nt; k++)
        for (int d = 0; d < n; d++) w->stride[k][d] = strides[k][d];
}

static void walk_next(pos_walk *w) {
    for (int d = w->n - 1; d >= 0; d--) {
        for (int k = 0; k < w->nt; k++) w->off[k] += w->stride[k][d];
        if (++w->idx[d] < w->shape[d]) return;
        for (int k = 0; k < w->nt; k++) w->off[k] -= w->stride[k][d] * w->shape[d];
        w->idx[d] = 0;
    }
}

/* Strides of scores x over the target's dims (x's dims with the class dim cd removed). */
static void score_strides(const ig_tensor *x, int cd, int64_t *out) {
    int k = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != cd) out[k++] = x->strides[d];
}

static int64_t load_target(const ig_tensor *t, int64_t off) {
    const char *p = igi_data(t);
    return t->dtype == IG_I64 ? ((const int64_t *)p)[off] : (int64_t)((const int32_t *)p)[off];
}

/* Options of a class loss, resolved from ig_ce_params (NULL means defaults). */
typedef struct {
    ig_reduction reduction;
    bool use_ignore;
    int64_t ignore_index;
    double eps;   /* label smoothing */
    int cd;       /* class dim of the scores */
    int64_t C;    /* number of classes */
    int64_t cs;   /* stride of the scores along the class dim */
    int64_t counted; /* positions not ignored (set by class_loss_check) */
} ce_opts;

static bool ignored(const ce_opts *o, int64_t t) { return o->use_ignore && t == o->ignore_index; }

/* Forward of one class loss over all positions. Tensor offsets in the walk: 0 scores x,
 * 1 target, 2 loss (none), 3 lse (when saving). Writes per-position losses into lossp
 * (none) or returns the total in *total, the counted positions in *count. */
#define CE_FWD(NAME, T, EXP)                                                                   \
    static void NAME(pos_walk *w, int64_t npos, const ce_opts *o, bool fused, const T *xb,     \
                     const ig_tensor *target, T *lossp, double *lsep, double *total,           \
                     int64_t *count) {                                                         \
        double acc = 0;                                                                        \
        int64_t cnt = 0, C = o->C, cs = o->cs;                                                 \
        double eps = o->eps, smooth_w = C > 0 ? eps / (double)C : 0.0;                         \
        for (int64_t i = 0; i < npos; i++, walk_next(w)) {                                     \
            int64_t t = load_target(target, w->off[1]);                                        \
            double loss = 0, lse = 0;                                                          \
            if (!ignored(o, t)) {                                                              \
                const T *x = xb + w->off[0];                                                   \
                if (fused) {                                                                   \
                    T m = x[0];                                                                \
                    for (int64_t c = 1; c < C; c++)                                            \
                        if (x[c * cs] > m || isnan(x[c * cs])) m = x[c * cs];                  \
                    double sum = 0;                                                            \
                    for (int64_t c = 0; c < C; c++) sum += EXP(x[c * cs] - m);                 \
                    lse = (double)m + log(sum);                                                \
                    loss = (1.0 - eps) * (lse - (double)x[t * cs]);                            \
                    if (eps != 0) {                                                            \
                        double s = 0;                                                          \
                        for (int64_t c = 0; c < C; c++) s += lse - (double)x[c * cs];          \
                        loss += smooth_w * s;                                                  \
                    }                                                                          \
                } else {                                                                       \
                    loss = -(double)x[t * cs];                                                 \
                }                                                                              \
                acc += loss;                                                                   \
                cnt++;                                                                         \
            }                                                                                  \
            if (lossp) lossp[w->off[2]] = (T)loss;                                             \
            if (lsep) lsep[w->off[3]] = lse;                                                   \
        }                                                                                      \
        *total = acc;                                                                          \
        *count = cnt;                                                                          \
    }
CE_FWD(ce_fwd_f32, float, expf)
CE_FWD(ce_fwd_f64, double, exp)

/* Backward of one class loss. Walk offsets: 0 scores x, 1 target, 2 g (stride 0 for a
 * reduced loss), 3 lse, 4 gin. scale is 1/denom for mean, else 1. */
#define CE_BWD(NAME, T, EXP)                                                                   \
    static void NAME(pos_walk *w, int64_t npos, const ce_opts *o, bool fused, const T *xb,     \
                     const ig_tensor *target, const T *gb, const double *lseb, T *gib,         \
                     int64_t gis, double scale) {                                              \
        int64_t C = o->C, cs = o->cs;                                                          \
        double eps = o->eps;                                                                   \
        T smooth_w = (T)(C > 0 ? eps / (double)C : 0.0), hit = (T)(1.0 - eps);                 \
        for (int64_t i = 0; i < npos; i++, walk_next(w)) {                                     \
            int64_t t = load_target(target, w->off[1]);                                        \
            T *gi = gib + w->off[4];                                                           \
            if (ignored(o, t)) {                                                               \
                for (int64_t c = 0; c < C; c++) gi[c * gis] = 0;                               \
                continue;                                                                      \
            }                                                                                  \
            T wgt = (T)((double)gb[w->off[2]] * scale);                                        \
            if (fused) {                                                                       \
                const T *x = xb + w->off[0];                                                   \
                double lse = lseb[w->off[3]];                                                  \
                for (int64_t c = 0; c < C; c++) {                                              \
                    T d = EXP((T)((double)x[c * cs] - lse)) - smooth_w;                        \
                    if (c == t) d -= hit;                                                      \
                    gi[c * gis] = d * wgt;                                                     \
                }                                                                              \
            } else {                                                                           \
                for (int64_t c = 0; c < C; c++) gi[c * gis] = 0;                               \
                gi[t * gis] = -wgt;                                                            \
            }                                                                                  \
        }                                                                                      \
    }
CE_BWD(ce_bwd_f32, float, expf)
CE_BWD(ce_bwd_f64, double, exp)

static void node_opts(const igi_node *node, ce_opts *o) {
    const ig_tensor *x = node->inputs[0];
    o->reduction = (ig_reduction)node->iattr[0];
    o->use_ignore = node->iattr[1] != 0;
    o->ignore_index = node->iattr[2];
    o->cd = (int)node->iattr[3];
    o->eps = node->dattr[0];
    o->C = x->ndim ? x->shape[o->cd] : 1;
    o->cs = x->ndim ? x->strides[o->cd] : 0;
}

/* The device form of a walk over the target's positions (core/backend_impl.h). */
static void ce_for_device(const pos_walk *w, int64_t npos, const ce_opts *o, bool fused, const ig_tensor *x,
                          const ig_tensor *target, int64_t gis, igi_ce *c) {
    memset(c, 0, sizeof *c);
    c->n = w->n;
    memcpy(c->shape, w->shape, sizeof c->shape);
    memcpy(c->stride, w->stride, sizeof c->stride);
    c->npos = npos;
    c->C = o->C;
    c->cs = o->cs;
    c->gis = gis;
    c->fused = fused;
    c->use_ignore = o->use_ignore;
    c->ignore_index = o->ignore_index;
    c->eps = o->eps;
    c->dt = x->dtype;
    c->tdt = target->dtype;
}

static ig_status class_loss_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *x = node->inputs[0], *target = node->inputs[1];
    bool fused = node->op == IGI_OP_CROSS_ENTROPY;
    ce_opts o;
    node_opts(node, &o);
    const igi_backend *be = NULL;
    if (x->device != IG_CPU) {
        if (!(be = IGI_BACKEND_WITH(igi_op_name(node->op), x->device, class_loss_backward))) return ig_last_status();
        if (!igi_check_same_device_any(igi_op_name(node->op), g, x)) return ig_last_status();
    }
    ig_tensor *gi = igi_tensor_new(igi_op_name(node->op), x->ndim, x->shape, x->dtype, x->device);
    if (!gi) return ig_last_status();
    ig_tensor *lse = fused ? node->saved[0] : NULL;
    int n = target->ndim;
    int64_t st[CE_NT][IG_MAX_DIMS] = {{0}};
    score_strides(x, o.cd, st[0]);
    memcpy(st[1], target->strides, sizeof(int64_t) * (size_t)n);
    if (o.reduction == IG_REDUCTION_NONE) memcpy(st[2], g->strides, sizeof(int64_t) * (size_t)n);
    if (lse) memcpy(st[3], lse->strides, sizeof(int64_t) * (size_t)n);
    score_strides(gi, o.cd, st[4]);
    pos_walk w;
    walk_init(&w, n, target->shape, CE_NT, (const int64_t(*)[IG_MAX_DIMS])st);
    int64_t npos = igi_numel(n, target->shape);
    double count = node->dattr[1];
    /* Mean over zero counted positions: every row is ignored, so the scale is never used. */
    double scale = o.reduction == IG_REDUCTION_MEAN ? (count > 0 ? 1.0 / count : 0.0) : 1.0;
    int64_t gis = gi->ndim ? gi->strides[o.cd] : 0;
    const double *lsep = lse ? (const double *)(void *)igi_data(lse) : NULL;
    if (be) {
        igi_ce c;
        ce_for_device(&w, npos, &o, fused, x, target, gis, &c);
        ig_status kst = be->class_loss_backward(igi_op_name(node->op), &c, igi_data(x), igi_data(target), igi_data(g),
                                               lsep, igi_data(gi), scale);
        if (kst != IG_OK) return kst;
    } else if (x->dtype == IG_F32)
        ce_bwd_f32(&w, npos, &o, fused, (const float *)(void *)igi_data(x), target,
                   (const float *)(void *)igi_data(g), lsep, (float *)(void *)igi_data(gi), gis, scale);
    else
        ce_bwd_f64(&w, npos, &o, fused, (const double *)(void *)igi_data(x), target,
                   (const double *)(void *)igi_data(g), lsep, (double *)(void *)igi_data(gi), gis, scale);
    gin[0] = gi;
    return IG_OK;
}

/* Validates x and target for a class loss and fills o. */
static bool class_loss_check(const char *op, const char *xname, ig_tensor *x, ig_tensor *target,
                             const ig_ce_params *p, bool fused, ce_opts *o) {
    if (!x) {
        igi_error_null(op, xname);
        return false;
    }
    if (!target) {
        igi_error_null(op, "target");
        return false;
    }
    if (!igi_check_same_device_any(op, x, target) || !igi_check_float(op, x)) return false;
    if (target->dtype != IG_I64 && target->dtype != IG_I32) {
        igi_error(IG_ERR_DTYPE, "%s: target must be int64 or int32 class indices, got %s", op,
                  ig_dtype_name(target->dtype));
        return false;
    }
    ig_ce_params defaults = {0};
    if (!p) p = &defaults;
    if (!check_reduction(op, p->reduction)) return false;
    double eps = p->label_smoothing;
    if (!fused && eps != 0) {
        igi_error(IG_ERR_ARG, "%s: label_smoothing must be 0 (got %g); use ig_cross_entropy", op, eps);
        return false;
    }
    if (!(eps >= 0 && eps <= 1)) {
        igi_error(IG_ERR_ARG, "%s: label_smoothing must be in [0, 1], got %g", op, eps);
        return false;
    }
    char b1[160], b2[160];
    if (x->ndim == 0) {
        igi_error(IG_ERR_SHAPE, "%s: %s must be [N,C], [N,C,d...] or [C], got a 0-dim tensor", op, xname);
        return false;
    }
    /* The target's shape is x's shape without the class dim. */
    int cd = x->ndim == 1 ? 0 : 1;
    bool ok = target->ndim == x->ndim - 1;
    for (int d = 0, k = 0; ok && d < x->ndim; d++)
        if (d != cd && target->shape[k++] != x->shape[d]) ok = false;
    if (!ok) {
        igi_error(IG_ERR_SHAPE, "%s: target %s does not match %s %s (expected its shape without dim %d)",
                  op, ig_shape_str(target, b1, sizeof b1), xname, ig_shape_str(x, b2, sizeof b2), cd);
        return false;
    }
    o->reduction = p->reduction;
    o->use_ignore = p->use_ignore_index;
    o->ignore_index = p->ignore_index;
    o->eps = eps;
    o->cd = cd;
    o->C = x->shape[cd];
    o->cs = x->strides[cd];
    /* Every counted target must be a class, checked before any computing (on a host copy
     * when the targets are on a device) — unless their storage came from the host in one
     * upload and the range of its values, noted then, is inside [0, C) and clear of the
     * ignore index: then every position is a class and counted, with no wait for the
     * device (the train and bench steps' targets). */
    const igi_storage *ts = target->storage;
    if (target->device != IG_CPU && ts->vrange && ts->vmin >= 0 && ts->vmax < o->C &&
        !(o->use_ignore && o->ignore_index >= ts->vmin && o->ignore_index <= ts->vmax)) {
        o->counted = igi_numel(target->ndim, target->shape);
        return true;
    }
    const ig_tensor *tv = target;
    ig_tensor *host = NULL;
    if (target->device != IG_CPU && !(tv = host = igi_to_device_copy(op, target, IG_CPU))) return false;
    int64_t st[CE_NT][IG_MAX_DIMS] = {{0}};
    memcpy(st[1], tv->strides, sizeof(int64_t) * (size_t)tv->ndim);
    pos_walk w;
    walk_init(&w, tv->ndim, tv->shape, 2, (const int64_t(*)[IG_MAX_DIMS])st);
    int64_t npos = igi_numel(tv->ndim, tv->shape);
    o->counted = 0;
    for (int64_t i = 0; i < npos; i++, walk_next(&w)) {
        int64_t t = load_target(tv, w.off[1]);
        if (ignored(o, t)) continue;
        if (t < 0 || t >= o->C) {
            igi_error(IG_ERR_ARG, "%s: target value %lld at position %lld is out of range [0, %lld)", op,
                      (long long)t, (long long)i, (long long)o->C);
            ig_tensor_free(host);
            return false;
        }
        o->counted++;
    }
    ig_tensor_free(host);
    return true;
}

static ig_tensor *class_loss(const char *op, int opid, const char *xname, ig_tensor *x,
                             ig_tensor *target, const ig_ce_params *p) {
    if (x && x->dtype == IG_BF16) { /* computed on an f32 copy, with an f32 loss (torch's autocast) */
        ig_tensor *w = igi_bf16_widen(x);
        return w ? class_loss(op, opid, xname, w, target, p) : NULL;
    }
    bool fused = opid == IGI_OP_CROSS_ENTROPY;
    ce_opts o;
    if (!class_loss_check(op, xname, x, target, p, fused, &o)) return NULL;
    ig_tensor *in[2] = {x, target};
    bool none = o.reduction == IG_REDUCTION_NONE;
    ig_tensor *out = none ? igi_tensor_new(op, target->ndim, target->shape, x->dtype, x->device)
                          : igi_tensor_new(op, 0, NULL, x->dtype, x->device);
    if (!out) return NULL;
    /* The per-position log-sum-exp is kept only when backward will need it. */
    ig_tensor *lse = NULL;
    if (fused && igi_should_record(in, 2)) {
        lse = igi_tensor_new(op, target->ndim, target->shape, IG_F64, x->device);
        if (!lse) {
            ig_tensor_free(out);
            return NULL;
        }
    }
    int n = target->ndim;
    int64_t st[CE_NT][IG_MAX_DIMS] = {{0}};
    score_strides(x, o.cd, st[0]);
    memcpy(st[1], target->strides, sizeof(int64_t) * (size_t)n);
    if (none) memcpy(st[2], out->strides, sizeof(int64_t) * (size_t)n);
    if (lse) memcpy(st[3], lse->strides, sizeof(int64_t) * (size_t)n);
    pos_walk w;
    walk_init(&w, n, target->shape, 4, (const int64_t(*)[IG_MAX_DIMS])st);
    int64_t npos = igi_numel(n, target->shape);
    double total, *lsep = lse ? (double *)(void *)igi_data(lse) : NULL;
    int64_t count;
    if (x->device != IG_CPU) {
        /* The positions' losses in device scratch, summed there (reduced losses). */
        const igi_backend *be = IGI_BACKEND_WITH(op, x->device, class_loss);
        size_t pos_bytes = sizeof(double) * (size_t)(npos > 0 ? npos : 1);
        double *pos = be && !none ? igi_alloc(x->device, pos_bytes) : NULL;
        ig_status kst = !be ? ig_last_status() : IG_OK;
        if (kst == IG_OK && !none && !pos)
            kst = igi_error(IG_ERR_NOMEM, "%s: out of %s memory for a %zu-byte scratch buffer", op,
                           igi_device_name(x->device), pos_bytes);
        if (kst == IG_OK) {
            igi_ce c;
            ce_for_device(&w, npos, &o, fused, x, target, 0, &c);
            count = o.counted;
            kst = be->class_loss(op, &c, igi_data(x), igi_data(target), none ? igi_data(out) : NULL, lsep, pos,
                                none ? NULL : igi_data(out),
                                o.reduction == IG_REDUCTION_MEAN ? (double)count : 1.0);
        }
        if (pos) igi_free(x->device, pos, pos_bytes);
        if (kst != IG_OK) {
            ig_tensor_free(lse);
            ig_tensor_free(out);
            return NULL;
        }
    } else if (x->dtype == IG_F32) {
        float *lp = none ? (float *)(void *)igi_data(out) : NULL;
        ce_fwd_f32(&w, npos, &o, fused, (const float *)(void *)igi_data(x), target, lp, lsep, &total, &count);
        if (!none) *(float *)(void *)igi_data(out) =
            (float)(o.reduction == IG_REDUCTION_MEAN ? total / (double)count : total);
    } else {
        double *lp = none ? (double *)(void *)igi_data(out) : NULL;
        ce_fwd_f64(&w, npos, &o, fused, (const double *)(void *)igi_data(x), target, lp, lsep, &total, &count);
        /* count == 0 gives 0/0 = NaN for the mean, as torch. */
        if (!none) *(double *)(void *)igi_data(out) =
            o.reduction == IG_REDUCTION_MEAN ? total / (double)count : total;
    }
    out = igi_finish(opid, class_loss_backward, out, in, 2);
    if (out && out->node) {
        igi_node *nd = out->node;
        nd->iattr[0] = o.reduction;
        nd->iattr[1] = o.use_ignore;
        nd->iattr[2] = o.ignore_index;
        nd->iattr[3] = o.cd;
        nd->dattr[0] = o.eps;
        nd->dattr[1] = (double)count;
        if (lse) igi_node_save(nd, 0, lse);
    }
    ig_tensor_free(lse); /* the node holds its own reference (no-op for scope tensors) */
    return out;
}

ig_tensor *ig_cross_entropy(ig_tensor *logits, ig_tensor *target, const ig_ce_params *p) {
    return class_loss("ig_cross_entropy", IGI_OP_CROSS_ENTROPY, "logits", logits, target, p);
}

ig_tensor *ig_nll_loss(ig_tensor *logp, ig_tensor *target, const ig_ce_params *p) {
    return class_loss("ig_nll_loss", IGI_OP_NLL_LOSS, "logp", logp, target, p);
}

/* ==== pointwise losses =================================================================== */

typedef struct {
    int op;          /* IGI_OP_MSE_LOSS, ... */
    double beta;     /* smooth_l1 */
    bool wrt_target; /* backward: gradient w.r.t. the target instead of the input */
} pw_ctx;

/* Elementwise loss of input x and target y; f32 computes in float. */
#define PW_FWD(NAME, T, FABS, EXP, LOG1P)                                                   \
    static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                   \
        const pw_ctx *c = vctx;                                                             \
        T beta = (T)c->beta;                                                                \
        for (int64_t i = 0; i < n; i++) {                                                   \
            T x = *(const T *)(p[1] + i * s[1]), y = *(const T *)(p[2] + i * s[2]), l;      \
            T d = x - y;                                                                    \
            switch (c->op) {                                                                \
            case IGI_OP_MSE_LOSS: l = d * d; break;                                         \
            case IGI_OP_L1_LOSS: l = FABS(d); break;                                        \
            case IGI_OP_SMOOTH_L1_LOSS:                                                     \
                l = FABS(d) < beta ? (T)0.5 * d * d / beta : FABS(d) - (T)0.5 * beta;       \
                break;                                                                      \
            default: l = (x > 0 ? x : 0) - x * y + LOG1P(EXP(-FABS(x))); break;             \
            }                                                                               \
            *(T *)(p[0] + i * s[0]) = l;                                                    \
        }                                                                                   \
    }
PW_FWD(pw_fwd_f32, float, fabsf, expf, log1pf)
PW_FWD(pw_fwd_f64, double, fabs, exp, log1p)

/* Gradient of the elementwise loss: operands gin, g, x, y. sign(0) is 0 (as torch); NaN
 * differences propagate. */
#define PW_BWD(NAME, T, FABS, EXP)                                                          \
    static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                   \
        const pw_ctx *c = vctx;                                                             \
        T beta = (T)c->beta;                                                                \
        for (int64_t i = 0; i < n; i++) {                                                   \
            T g = *(const T *)(p[1] + i * s[1]);                                            \
            T x = *(const T *)(p[2] + i * s[2]), y = *(const T *)(p[3] + i * s[3]), dx;     \
            T d = x - y, sgn = d > 0 ? (T)1 : d < 0 ? (T)-1 : d;                            \
            switch (c->op) {                                                                \
            case IGI_OP_MSE_LOSS: dx = 2 * d; break;                                        \
            case IGI_OP_L1_LOSS: dx = sgn; break;                                           \
            case IGI_OP_SMOOTH_L1_LOSS: dx = FABS(d) < beta ? d / beta : sgn; break;        \
            default:                                                                        \
                if (c->wrt_target) {                                                        \
                    *(T *)(p[0] + i * s[0]) = -x * g;                                       \
                    continue;                                                               \
                } else {                                                                    \
                    /* sigmoid(x) - y, with exp of a non-positive argument only */          \
                    T e = EXP(-FABS(x));                                                    \
                    T sig = x >= 0 ? 1 / (1 + e) : e / (1 + e);                             \
                    dx = sig - y;                                                           \
                }                                                                           \
                break;                                                                      \
            }                                                                               \
            /* for mse, l1 and smooth_l1 the loss depends on x - y: d/dy = -d/dx */         \
            *(T *)(p[0] + i * s[0]) = (c->wrt_target ? -dx : dx) * g;                       \
        }                                                                                   \
    }
PW_BWD(pw_bwd_f32, float, fabsf, expf)
PW_BWD(pw_bwd_f64, double, fabs, exp)

/* The backend's kind of a pointwise loss op. */
static int pw_kind(int opid) {
    switch (opid) {
    case IGI_OP_MSE_LOSS: return IGI_PW_MSE;
    case IGI_OP_L1_LOSS: return IGI_PW_L1;
    case IGI_OP_SMOOTH_L1_LOSS: return IGI_PW_SMOOTH_L1;
    default: return IGI_PW_BCE_LOGITS;
    }
}

static ig_status pointwise_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *x = node->inputs[0], *y = node->inputs[1];
    for (int k = 0; k < 2; k++) {
        ig_tensor *in = node->inputs[k];
        if (!igi_needs_grad(in)) continue;
        pw_ctx c = {.op = node->op, .beta = node->dattr[0], .wrt_target = k == 1};
        ig_tensor *gi = igi_tensor_new(igi_op_name(node->op), in->ndim, in->shape, in->dtype, in->device);
        if (!gi) return ig_last_status();
        ig_tensor *ops[4] = {gi, g, x, y};
        if (x->device != IG_CPU) {
            const char *op = igi_op_name(node->op);
            const igi_backend *be = IGI_BACKEND_WITH(op, x->device, pointwise_loss_backward);
            if (!be || !igi_check_same_device_any(op, g, x)) return ig_last_status();
            igi_ew e;
            ig_status st = igi_ew_make(ops, 4, &e) ? be->pointwise_loss_backward(op, pw_kind(node->op), &e, c.beta, c.wrt_target)
                                                    : IG_OK;
            if (st != IG_OK) return st;
        } else {
            igi_iter_run(ops, 4, x->dtype == IG_F32 ? pw_bwd_f32 : pw_bwd_f64, &c);
        }
        gin[k] = gi;
    }
    return IG_OK;
}

static ig_tensor *pointwise_loss(const char *op, int opid, const char *xname, ig_tensor *x,
                                 ig_tensor *y, ig_reduction r, double beta) {
    if (!x) {
        igi_error_null(op, xname);
        return NULL;
    }
    if (!y) {
        igi_error_null(op, "target");
        return NULL;
    }
    if (x->dtype == IG_BF16 || y->dtype == IG_BF16) { /* on f32 copies, an f32 loss (torch's autocast) */
        ig_tensor *wx = igi_bf16_widen(x), *wy = wx ? igi_bf16_widen(y) : NULL;
        return wy ? pointwise_loss(op, opid, xname, wx, wy, r, beta) : NULL;
    }
    if (!igi_check_same_device_any(op, x, y) || !igi_check_float(op, x) || !igi_check_same_dtype(op, x, y))
        return NULL;
    const igi_backend *be = NULL;
    if (x->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, x->device, pointwise_loss))) return NULL;
    char b1[160], b2[160];
    bool same = x->ndim == y->ndim;
    for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == y->shape[d];
    if (!same) {
        igi_error(IG_ERR_SHAPE, "%s: %s %s and target %s must have the same shape", op, xname,
                  ig_shape_str(x, b1, sizeof b1), ig_shape_str(y, b2, sizeof b2));
        return NULL;
    }
    if (!check_reduction(op, r)) return NULL;
    ig_tensor *out = igi_tensor_new(op, x->ndim, x->shape, x->dtype, x->device);
    if (!out) return NULL;
    pw_ctx c = {.op = opid, .beta = beta};
    ig_tensor *ops[3] = {out, x, y};
    if (be) {
        igi_ew e;
        ig_status st = igi_ew_make(ops, 3, &e) ? be->pointwise_loss(op, pw_kind(opid), &e, beta) : IG_OK;
        if (st != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
    } else {
        igi_iter_run(ops, 3, x->dtype == IG_F32 ? pw_fwd_f32 : pw_fwd_f64, &c);
    }
    ig_tensor *in[2] = {x, y};
    out = igi_finish(opid, pointwise_backward, out, in, 2);
    if (!out) return NULL;
    if (out->node) out->node->dattr[0] = beta;
    if (r == IG_REDUCTION_MEAN) return ig_mean(out, 0, NULL, false);
    if (r == IG_REDUCTION_SUM) return ig_sum(out, 0, NULL, false);
    return out;
}

ig_tensor *ig_mse_loss(ig_tensor *input, ig_tensor *target, ig_reduction r) {
    return pointwise_loss("ig_mse_loss", IGI_OP_MSE_LOSS, "input", input, target, r, 0);
}

ig_tensor *ig_l1_loss(ig_tensor *input, ig_tensor *target, ig_reduction r) {
    return pointwise_loss("ig_l1_loss", IGI_OP_L1_LOSS, "input", input, target, r, 0);
}

/* beta == 0 means the default 1 (the header's rule; torch's beta = 0, pure L1, is not
 * reachable here: use ig_l1_loss). Negative, infinite or NaN beta is an error (checked
 * after the NULL checks, so a chain still reports its first failure). */
ig_tensor *ig_smooth_l1_loss(ig_tensor *input, ig_tensor *target, ig_reduction r, double beta) {
    const char *op = "ig_smooth_l1_loss";
    if (input && target && (!(beta >= 0) || isinf(beta))) {
        igi_error(IG_ERR_ARG, "%s: beta must be a finite number >= 0 (0 means 1), got %g", op, beta);
        return NULL;
    }
    return pointwise_loss(op, IGI_OP_SMOOTH_L1_LOSS, "input", input, target, r, beta == 0 ? 1.0 : beta);
}

ig_tensor *ig_bce_with_logits(ig_tensor *logits, ig_tensor *target, ig_reduction r) {
    return pointwise_loss("ig_bce_with_logits", IGI_OP_BCE_WITH_LOGITS, "logits", logits, target, r, 0);
}
