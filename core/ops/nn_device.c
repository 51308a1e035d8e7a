/*
 * core/ops/nn_device.c — conv2d, the 2-D pools, batch norm and layer norm on a device (see
 * nn_device.h): geometry for the backend table, scratch from the caching allocator, and
 * the backward functions these ops record on a device (batch norm's synchronised form
 * included: device sums all-reduced on the host).
 *
 * Every tensor an op reads is on the device of x (the callers checked); strided inputs are
 * read through their strides where the kernel takes strides (conv's x, the pools' x and
 * output gradient) and made contiguous on the device otherwise. Results are contiguous.
 * Scratch goes back to the caching allocator as soon as the kernels are queued: the
 * backend runs everything on one stream, so a later user of the block runs after them.
 */
#include <stdlib.h>
#include <string.h>

#include "nn_device.h"

/* nbytes (at least 1) of device scratch, or NULL with the error set. */
static void *dev_scratch(const char *op, ig_device dev, size_t nbytes) {
    void *p = igi_alloc(dev, nbytes ? nbytes : 1);
    if (!p) igi_error(IG_ERR_NOMEM, "%s: out of %s memory for a %zu-byte scratch buffer", op, igi_device_name(dev), nbytes);
    return p;
}

static void dev_scratch_free(ig_device dev, void *p, size_t nbytes) {
    if (p) igi_free(dev, p, nbytes ? nbytes : 1);
}

/* t itself when contiguous (*tmp = NULL), else a contiguous heap copy on t's device in
 * *tmp (free it after). NULL with the error set on failure. */
static ig_tensor *dev_contiguous(const char *op, ig_tensor *t, ig_tensor **tmp) {
    *tmp = NULL;
    if (igi_is_contiguous(t)) return t;
    return *tmp = igi_to_device_copy(op, t, t->device);
}

/* ---- conv2d ------------------------------------------------------------------------------ */

static const char *const CONV_OP = "ig_conv2d";

/* Device scratch of a chunk is capped at 256 MiB (col plus res / dyb), at least one image. */
#define DEV_CONV_BUDGET ((size_t)256 << 20)

static void conv_fill(igi_conv *g, const ig_tensor *x, const ig_tensor *w, const int64_t *attr) {
    igi_conv_geom(g, x, w, attr);
    /* bf16 scratch is sized as f32: a backend may stage bf16 work in f32 there. */
    size_t per = (size_t)(g->K + g->Og) * (size_t)g->P * (x->dtype == IG_BF16 ? sizeof(float) : ig_dtype_size(x->dtype));
    int64_t nb = per ? (int64_t)(DEV_CONV_BUDGET / per) : g->N;
    if (nb < 1) nb = 1;
    if (nb > g->N) nb = g->N > 0 ? g->N : 1;
    g->nb = nb;
}

static ig_status conv2d_backward_device(igi_node *node, ig_tensor *gout, ig_tensor **gin) {
    const char *op = CONV_OP;
    ig_tensor *x = node->inputs[0], *w = node->inputs[1];
    ig_tensor *b = node->n_inputs > 2 ? node->inputs[2] : NULL;
    ig_device dev = x->device;
    ig_dtype dt = x->dtype;
    const igi_backend *be = IGI_BACKEND_WITH(op, dev, conv2d_backward);
    if (!be) return ig_last_status();
    if (!igi_check_same_device_any(op, gout, x)) return ig_last_status();
    igi_conv g;
    conv_fill(&g, x, w, node->iattr);
    g.amp = node->amp; /* the backend rounds the GEMM operands as the forward did */
    bool need_x = igi_needs_grad(x), need_w = igi_needs_grad(w), need_b = igi_needs_grad(b);
    size_t es = dt == IG_BF16 ? sizeof(float) : ig_dtype_size(dt); /* as conv_fill sizes it */
    size_t col_bytes = (size_t)(g.K * g.nb * g.P) * es, dyb_bytes = (size_t)(g.Og * g.nb * g.P) * es;
    ig_tensor *gtmp = NULL, *wtmp = NULL, *dx = NULL, *dw = NULL, *db = NULL;
    void *col = NULL, *dyb = NULL;
    ig_status st = IG_OK;
    ig_tensor *gc = dev_contiguous(op, gout, &gtmp), *wc = gc ? dev_contiguous(op, w, &wtmp) : NULL;
    if (!gc || !wc) goto fail;
    if (need_x && !(dx = igi_tensor_new(op, 4, x->shape, dt, dev))) goto fail;
    if (need_w && !(dw = igi_tensor_new(op, 4, w->shape, dt, dev))) goto fail;
    if (need_b && !(db = igi_tensor_new(op, 1, b->shape, dt, dev))) goto fail;
    if ((need_x || need_w) && (!(col = dev_scratch(op, dev, col_bytes)) || !(dyb = dev_scratch(op, dev, dyb_bytes))))
        goto fail;
    st = be->conv2d_backward(op, dt, &g, igi_data(x), igi_data(wc), igi_data(gc), dx ? igi_data(dx) : NULL,
                             dw ? igi_data(dw) : NULL, db ? igi_data(db) : NULL, col, dyb);
    if (st == IG_OK) {
        gin[0] = dx;
        gin[1] = dw;
        if (b) gin[2] = db;
        dx = dw = db = NULL;
    }
    goto done;
fail:
    st = ig_last_status();
done:
    dev_scratch_free(dev, col, col_bytes);
    dev_scratch_free(dev, dyb, dyb_bytes);
    ig_tensor_free(dx);
    ig_tensor_free(dw);
    ig_tensor_free(db);
    ig_tensor_free(gtmp);
    ig_tensor_free(wtmp);
    return st;
}

ig_tensor *igi_conv2d_device(ig_tensor *x, ig_tensor *w, ig_tensor *b, const int64_t *attr) {
    const char *op = CONV_OP;
    ig_device dev = x->device;
    ig_dtype dt = x->dtype;
    const igi_backend *be = IGI_BACKEND_WITH(op, dev, conv2d);
    if (!be) return NULL;
    igi_conv g;
    conv_fill(&g, x, w, attr);
    g.amp = (int)igi_amp_for(dt); /* autocast: the backend rounds the GEMM operands */
    size_t es = dt == IG_BF16 ? sizeof(float) : ig_dtype_size(dt); /* as conv_fill sizes it */
    size_t col_bytes = (size_t)(g.K * g.nb * g.P) * es, res_bytes = (size_t)(g.Og * g.nb * g.P) * es;
    ig_tensor *out = igi_tensor_new(op, 4, (const int64_t[]){g.N, g.O, g.Ho, g.Wo}, dt, dev);
    if (!out) return NULL;
    ig_tensor *wtmp = NULL, *wc = dev_contiguous(op, w, &wtmp);
    void *col = NULL, *res = NULL;
    ig_status st = IG_ERR_NOMEM;
    if (wc && (col = dev_scratch(op, dev, col_bytes)) && (res = dev_scratch(op, dev, res_bytes)))
        st = be->conv2d(op, dt, &g, igi_data(x), igi_data(wc), b ? igi_data(b) : NULL, b ? b->strides[0] : 0,
                        igi_data(out), col, res);
    dev_scratch_free(dev, col, col_bytes);
    dev_scratch_free(dev, res, res_bytes);
    ig_tensor_free(wtmp);
    if (st != IG_OK) {
        ig_tensor_free(out);
        return NULL;
    }
    ig_tensor *in[3] = {x, w, b};
    out = igi_finish(IGI_OP_CONV2D, conv2d_backward_device, out, in, b ? 3 : 2);
    if (out && out->node) {
        memcpy(out->node->iattr, attr, sizeof(int64_t) * 9);
        out->node->amp = (uint8_t)g.amp;
    }
    return out;
}

/* ---- pools -------------------------------------------------------------------------------- */

static ig_status pool2d_backward_device(igi_node *node, ig_tensor *gout, ig_tensor **gin) {
    const char *op = igi_op_name(node->op);
    ig_tensor *x = node->inputs[0];
    ig_device dev = x->device;
    bool max = node->op == IGI_OP_MAX_POOL2D;
    const igi_backend *be = IGI_BACKEND_WITH(op, dev, pool2d_backward);
    if (!be) return ig_last_status();
    if (!igi_check_same_device_any(op, gout, x)) return ig_last_status();
    igi_pool g;
    memset(&g, 0, sizeof g);
    int d = x->ndim - 3;
    g.N = d ? x->shape[0] : 1;
    g.C = x->shape[d];
    g.xs[0] = d ? gout->strides[0] : 0;
    g.xs[1] = gout->strides[d];
    g.xs[2] = gout->strides[d + 1];
    g.xs[3] = gout->strides[d + 2];
    g.adaptive = node->op == IGI_OP_ADAPTIVE_AVG_POOL2D;
    g.exclude = node->iattr[6] != 0;
    for (int i = 0; i < 2; i++) {
        g.in[i] = x->shape[d + 1 + i];
        g.out[i] = gout->shape[gout->ndim - 2 + i];
        g.k[i] = node->iattr[i];
        g.s[i] = node->iattr[2 + i];
        g.p[i] = node->iattr[4 + i];
    }
    ig_tensor *dx = igi_tensor_new(op, x->ndim, x->shape, x->dtype, dev);
    if (!dx) return ig_last_status();
    const int64_t *idx = max ? (const int64_t *)(const void *)igi_data(node->saved[0]) : NULL;
    ig_status st = be->pool2d_backward(op, max, x->dtype, &g, igi_data(gout), idx, igi_data(dx));
    if (st != IG_OK) {
        ig_tensor_free(dx);
        return st;
    }
    gin[0] = dx;
    return IG_OK;
}

ig_tensor *igi_pool2d_device(const char *op, int opid, ig_tensor *x, const igi_pool *g, const int64_t *attr) {
    ig_device dev = x->device;
    bool max = opid == IGI_OP_MAX_POOL2D;
    const igi_backend *be = IGI_BACKEND_WITH(op, dev, pool2d);
    if (!be) return NULL;
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)(x->ndim - 2));
    shape[x->ndim - 2] = g->out[0];
    shape[x->ndim - 1] = g->out[1];
    ig_tensor *out = igi_tensor_new(op, x->ndim, shape, x->dtype, dev);
    if (!out) return NULL;
    /* The argmax is only needed (and only allocated) for backward. */
    bool record = igi_should_record(&x, 1);
    ig_tensor *idx = max && record ? igi_tensor_new(op, x->ndim, shape, IG_I64, dev) : NULL;
    ig_status st = max && record && !idx ? ig_last_status() : IG_OK;
    if (st == IG_OK)
        st = be->pool2d(op, max, x->dtype, g, igi_data(x), igi_data(out),
                        idx ? (int64_t *)(void *)igi_data(idx) : NULL);
    if (st != IG_OK) {
        ig_tensor_free(idx);
        ig_tensor_free(out);
        return NULL;
    }
    out = igi_finish(opid, pool2d_backward_device, out, &x, 1);
    if (out && out->node) {
        if (attr) memcpy(out->node->iattr, attr, sizeof(int64_t) * 8);
        if (idx) igi_node_save(out->node, 0, idx);
    }
    ig_tensor_free(idx); /* the node holds its own reference */
    return out;
}

/* ---- batch norm --------------------------------------------------------------------------- */

static const char *const BN_OP = "ig_batch_norm";

/* A contiguous reference to t made with grad mode off: t itself (retained) or a copy.
 * Release with ig_tensor_free (a no-op for scoped tensors). */
static ig_tensor *contiguous_nograd(ig_tensor *t) {
    igi_no_grad_depth_add(1);
    ig_tensor *c = ig_contiguous(t);
    igi_no_grad_depth_add(-1);
    return c;
}

static const void *data_or_null(const ig_tensor *t) { return t ? igi_data(t) : NULL; }
static int64_t stride0(const ig_tensor *t) { return t ? t->strides[0] : 0; }

/* Synchronised batch norm (igi_bn_sync) on a device: the backend sums this process's
 * values per channel into device scratch, the sums go to the host (each copy waits for the
 * device), the group's callback adds them over the process group there exactly as on the
 * CPU (norm.c's igi_bn_stats_sync, shared), and what the kernels need of the result goes
 * back to the device. A device failure before a reduction leaves this member out of it, as
 * any failing member does; the group's own timeout ends the others. */

/* The device's side of igi_bn_stats_sync: a batch_norm_sums kernel (X, then DEV about the
 * uploaded shift) into scratch, copied to out on the host. */
typedef struct bn_dev_sums {
    const igi_backend *be;
    igi_bn_sums p;  /* x and its geometry; out: device scratch of 2C doubles */
    double *dshift; /* device [C]: where pass 1's shift is uploaded */
} bn_dev_sums;

static ig_status bn_local_sums_device(void *ctx, int pass, const double *shift, double *out) {
    const bn_dev_sums *d = ctx;
    igi_bn_sums p = d->p;
    size_t cb = sizeof(double) * (size_t)p.C;
    ig_status st;
    if (pass == 1 && cb && (st = d->be->memcpy_h2d(d->dshift, shift, cb)) != IG_OK) return st;
    p.shift = pass == 1 ? d->dshift : NULL;
    if ((st = d->be->batch_norm_sums(BN_OP, pass == 0 ? IGI_BN_SUM_X : IGI_BN_SUM_DEV, &p)) != IG_OK) return st;
    return cb ? d->be->memcpy_d2h(out, p.out, pass == 0 ? cb : 2 * cb) : IG_OK;
}

/* The synchronised forward: the group's statistics (p->mean doubles as the shift's upload
 * buffer until the apply kernel writes the mean there), then the normalisation with them;
 * *gcnt gets the group's count. */
static ig_status bn_sync_forward(const igi_backend *be, ig_device dev, const igi_bn *p, const igi_bn_sync *sync,
                                 double *gcnt) {
    const char *op = BN_OP;
    int64_t C = p->C;
    size_t cb = sizeof(double) * (size_t)C;
    double *dsc = dev_scratch(op, dev, 2 * cb);    /* the passes' sums, then [mean, var] */
    double *h = calloc((size_t)(4 * C + 1), sizeof(double)); /* mean, var, tmp (2C + 1) */
    ig_status st = IG_OK;
    if (!dsc || !h) {
        st = dsc ? igi_error(IG_ERR_NOMEM, "%s: out of memory", op) : ig_last_status();
        goto done;
    }
    bn_dev_sums ds = {be, {.N = p->N, .C = C, .S = p->S, .dt = p->dt, .x = p->x, .out = dsc}, p->mean};
    double *mean = h, *var = h + C, *tmp = h + 2 * C;
    st = igi_bn_stats_sync(sync, p->dt == IG_F32, C, (double)p->N * (double)p->S, bn_local_sums_device, &ds, mean,
                           var, tmp, gcnt);
    if (st != IG_OK) goto done;
    if (cb && (st = be->memcpy_h2d(dsc, h, 2 * cb)) != IG_OK) goto done; /* mean and var are adjacent */
    st = be->batch_norm_apply(op, p, dsc, *gcnt);
done:
    dev_scratch_free(dev, dsc, 2 * cb);
    free(h);
    return st;
}

/* The synchronised backward (dx wanted, training): this process's (sum g, sum g * xhat)
 * on the device, added over the group on the host, then dx from the group's sums and dw /
 * db from this process's (norm.c's batch_norm_backward). */
static ig_status bn_sync_backward(const igi_backend *be, ig_device dev, const igi_bn_bwd *p, const igi_bn_sync *sync) {
    const char *op = BN_OP;
    int64_t C = p->C;
    size_t cb = sizeof(double) * (size_t)C;
    double *dsc = dev_scratch(op, dev, 4 * cb); /* this process's sums [2C], then the group's */
    double *h = calloc((size_t)(2 * C + 1), sizeof(double));
    ig_status st = IG_OK;
    if (!dsc || !h) {
        st = dsc ? igi_error(IG_ERR_NOMEM, "%s: out of memory", op) : ig_last_status();
        goto done;
    }
    igi_bn_sums s = {.N = p->N, .C = C, .S = p->S, .dt = p->dt, .x = p->x, .g = p->g, .shift = p->mean,
                     .invstd = p->invstd, .out = dsc};
    if ((st = be->batch_norm_sums(op, IGI_BN_SUM_GRAD, &s)) != IG_OK) goto done;
    if (cb && (st = be->memcpy_d2h(h, dsc, 2 * cb)) != IG_OK) goto done;
    if ((st = sync->sum(sync->ctx, h, 2 * C)) != IG_OK) goto done;
    if (cb && (st = be->memcpy_h2d(dsc + 2 * C, h, 2 * cb)) != IG_OK) goto done;
    st = be->batch_norm_backward_apply(op, p, dsc);
done:
    dev_scratch_free(dev, dsc, 4 * cb);
    free(h);
    return st;
}

/* dev's table when it has every entry synchronised batch norm uses, else NULL with the
 * error set ("ig_batch_norm: not implemented on cuda"). */
static const igi_backend *bn_sync_backend(ig_device dev) {
    const igi_backend *be = IGI_BACKEND_WITH(BN_OP, dev, batch_norm_sums);
    if (be && (!be->batch_norm_apply || !be->batch_norm_backward_apply)) {
        igi_error_not_implemented(BN_OP, dev);
        return NULL;
    }
    return be;
}

/* saved: mean [C], invstd [C] (f64, on the device); iattr[0]: training; iattr[1]: the
 * igi_bn_sync pointer or 0; dattr[0]: the element count per channel (the group's when
 * synchronised). */
static ig_status batch_norm_backward_device(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    const char *op = BN_OP;
    ig_tensor *x = node->inputs[0], *w = node->inputs[1], *b = node->inputs[2];
    ig_device dev = x->device;
    const igi_bn_sync *sync = (const igi_bn_sync *)(intptr_t)node->iattr[1];
    /* As on the CPU, the group's sums are needed only for dx. */
    bool synced = sync && node->iattr[0] != 0 && igi_needs_grad(x);
    const igi_backend *be = synced ? bn_sync_backend(dev) : IGI_BACKEND_WITH(op, dev, batch_norm_backward);
    if (!be) return ig_last_status();
    if (!igi_check_same_device_any(op, g, x)) return ig_last_status();
    int64_t C = x->shape[1];
    ig_tensor *xc = contiguous_nograd(x), *gc = contiguous_nograd(g), *dx = NULL, *dw = NULL, *db = NULL;
    ig_status st = IG_OK;
    ig_dtype pdt = x->dtype == IG_BF16 ? IG_F32 : x->dtype; /* bf16 activations keep f32 parameters */
    if (!xc || !gc || (igi_needs_grad(x) && !(dx = igi_tensor_new(op, x->ndim, x->shape, x->dtype, dev))) ||
        (igi_needs_grad(w) && !(dw = igi_tensor_new(op, 1, &C, pdt, dev))) ||
        (igi_needs_grad(b) && !(db = igi_tensor_new(op, 1, &C, pdt, dev)))) {
        st = ig_last_status();
        goto done;
    }
    igi_bn_bwd p = {.N = x->shape[0], .C = C, .S = igi_numel(x->ndim - 2, x->shape + 2), .dt = pdt, .xdt = x->dtype,
                    .x = igi_data(xc), .g = igi_data(gc), .w = data_or_null(w), .ws = stride0(w),
                    .mean = (const double *)(const void *)igi_data(node->saved[0]),
                    .invstd = (const double *)(const void *)igi_data(node->saved[1]),
                    .dx = dx ? igi_data(dx) : NULL, .dw = dw ? igi_data(dw) : NULL, .db = db ? igi_data(db) : NULL,
                    .cnt = node->dattr[0], .training = node->iattr[0] != 0};
    st = synced ? bn_sync_backward(be, dev, &p, sync) : be->batch_norm_backward(op, &p);
    if (st == IG_OK) {
        gin[0] = dx;
        gin[1] = dw;
        gin[2] = db;
        dx = dw = db = NULL;
    }
done:
    ig_tensor_free(dx);
    ig_tensor_free(dw);
    ig_tensor_free(db);
    ig_tensor_free(xc);
    ig_tensor_free(gc);
    return st;
}

ig_tensor *igi_batch_norm_device(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var, ig_tensor *weight,
                                 ig_tensor *bias, bool training, double momentum, double eps, const igi_bn_sync *sync) {
    const char *op = BN_OP;
    ig_device dev = x->device;
    if (!training) sync = NULL;
    const igi_backend *be = sync ? bn_sync_backend(dev) : IGI_BACKEND_WITH(op, dev, batch_norm);
    if (!be) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], S = igi_numel(x->ndim - 2, x->shape + 2);
    double cnt = (double)N * (double)S;
    ig_tensor *xc = contiguous_nograd(x);
    ig_tensor *out = xc ? igi_tensor_new(op, x->ndim, x->shape, x->dtype, dev) : NULL;
    ig_tensor *mean = out ? igi_tensor_new(op, 1, &C, IG_F64, dev) : NULL;
    ig_tensor *invstd = mean ? igi_tensor_new(op, 1, &C, IG_F64, dev) : NULL;
    ig_status st = invstd ? IG_OK : ig_last_status();
    if (st == IG_OK) {
        igi_bn p = {.N = N, .C = C, .S = S, .dt = x->dtype == IG_BF16 ? IG_F32 : x->dtype, .xdt = x->dtype,
                    .x = igi_data(xc), .y = igi_data(out),
                    .w = data_or_null(weight), .b = data_or_null(bias), .ws = stride0(weight), .bs = stride0(bias),
                    .rm = running_mean ? igi_data(running_mean) : NULL, .rv = running_var ? igi_data(running_var) : NULL,
                    .rms = stride0(running_mean), .rvs = stride0(running_var),
                    .mean = (double *)(void *)igi_data(mean), .invstd = (double *)(void *)igi_data(invstd),
                    .eps = eps, .momentum = momentum, .training = training};
        st = sync ? bn_sync_forward(be, dev, &p, sync, &cnt) : be->batch_norm(op, &p);
    }
    ig_tensor_free(xc);
    if (st != IG_OK) {
        ig_tensor_free(mean);
        ig_tensor_free(invstd);
        ig_tensor_free(out);
        return NULL;
    }
    ig_tensor *in[3] = {x, weight, bias};
    out = igi_finish(IGI_OP_BATCH_NORM, batch_norm_backward_device, out, in, 3);
    if (out && out->node) {
        out->node->iattr[0] = training;
        out->node->iattr[1] = (int64_t)(intptr_t)sync;
        out->node->dattr[0] = cnt;
        igi_node_save(out->node, 0, mean);
        igi_node_save(out->node, 1, invstd);
    }
    ig_tensor_free(mean); /* the node holds its own references (heap) or the scope does */
    ig_tensor_free(invstd);
    return out;
}

/* ---- layer norm --------------------------------------------------------------------------- */

static const char *const LN_OP = "ig_layer_norm";

/* saved: mean [R], invstd [R] (f64, on the device); iattr[0]: n_dims. */
static ig_status layer_norm_backward_device(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    const char *op = LN_OP;
    ig_tensor *x = node->inputs[0], *w = node->inputs[1], *b = node->inputs[2];
    ig_device dev = x->device;
    const igi_backend *be = IGI_BACKEND_WITH(op, dev, layer_norm_backward);
    if (!be) return ig_last_status();
    if (!igi_check_same_device_any(op, g, x)) return ig_last_status();
    int nd = (int)node->iattr[0];
    ig_tensor *xc = contiguous_nograd(x), *gc = contiguous_nograd(g), *wc = w ? contiguous_nograd(w) : NULL;
    ig_tensor *dx = NULL, *dw = NULL, *db = NULL;
    ig_status st = IG_OK;
    if (!xc || !gc || (w && !wc) || (igi_needs_grad(x) && !(dx = igi_tensor_new(op, x->ndim, x->shape, x->dtype, dev))) ||
        (igi_needs_grad(w) && !(dw = igi_tensor_new(op, w->ndim, w->shape, x->dtype, dev))) ||
        (igi_needs_grad(b) && !(db = igi_tensor_new(op, b->ndim, b->shape, x->dtype, dev)))) {
        st = ig_last_status();
        goto done;
    }
    igi_ln p = {.R = igi_numel(x->ndim - nd, x->shape), .D = igi_numel(nd, x->shape + x->ndim - nd), .dt = x->dtype,
                .x = igi_data(xc), .g = igi_data(gc), .w = data_or_null(wc),
                .dx = dx ? igi_data(dx) : NULL, .dw = dw ? igi_data(dw) : NULL, .db = db ? igi_data(db) : NULL,
                .mean = (double *)(void *)igi_data(node->saved[0]), .invstd = (double *)(void *)igi_data(node->saved[1])};
    st = be->layer_norm_backward(op, &p);
    if (st == IG_OK) {
        gin[0] = dx;
        gin[1] = dw;
        gin[2] = db;
        dx = dw = db = NULL;
    }
done:
    ig_tensor_free(dx);
    ig_tensor_free(dw);
    ig_tensor_free(db);
    ig_tensor_free(xc);
    ig_tensor_free(gc);
    ig_tensor_free(wc);
    return st;
}

ig_tensor *igi_layer_norm_device(ig_tensor *x, int n_dims, ig_tensor *weight, ig_tensor *bias, double eps) {
    const char *op = LN_OP;
    ig_device dev = x->device;
    const igi_backend *be = IGI_BACKEND_WITH(op, dev, layer_norm);
    if (!be) return NULL;
    int64_t D = igi_numel(n_dims, x->shape + x->ndim - n_dims), R = igi_numel(x->ndim - n_dims, x->shape);
    ig_tensor *xc = contiguous_nograd(x);
    ig_tensor *wc = weight ? contiguous_nograd(weight) : NULL, *bc = bias ? contiguous_nograd(bias) : NULL;
    ig_tensor *out = xc && (!weight || wc) && (!bias || bc) ? igi_tensor_new(op, x->ndim, x->shape, x->dtype, dev) : NULL;
    ig_tensor *mean = out ? igi_tensor_new(op, 1, &R, IG_F64, dev) : NULL;
    ig_tensor *invstd = mean ? igi_tensor_new(op, 1, &R, IG_F64, dev) : NULL;
    ig_status st = invstd ? IG_OK : ig_last_status();
    if (st == IG_OK) {
        igi_ln p = {.R = R, .D = D, .dt = x->dtype, .x = igi_data(xc), .w = data_or_null(wc), .b = data_or_null(bc),
                    .y = igi_data(out), .mean = (double *)(void *)igi_data(mean),
                    .invstd = (double *)(void *)igi_data(invstd), .eps = eps};
        st = be->layer_norm(op, &p);
    }
    ig_tensor_free(xc);
    ig_tensor_free(wc);
    ig_tensor_free(bc);
    if (st != IG_OK) {
        ig_tensor_free(mean);
        ig_tensor_free(invstd);
        ig_tensor_free(out);
        return NULL;
    }
    ig_tensor *in[3] = {x, weight, bias};
    out = igi_finish(IGI_OP_LAYER_NORM, layer_norm_backward_device, out, in, 3);
    if (out && out->node) {
        out->node->iattr[0] = n_dims;
        igi_node_save(out->node, 0, mean);
        igi_node_save(out->node, 1, invstd);
    }
    ig_tensor_free(mean);
    ig_tensor_free(invstd);
    return out;
}
