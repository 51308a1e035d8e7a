/*
 * dist/ddp.c — data-parallel training: a model and its optimizer wrapped so that every
 * rank steps with the gradient averaged over all ranks.
 *
 * Set-up (ig_ddp_new): the model is flattened (one parameter buffer, one gradient buffer;
 * nn/flat.c), every rank checks that all built the same model, optimizer and options (a
 * hash of state-dict names, shapes and dtypes, the optimizer's description and the
 * options), then parameters and buffers are broadcast from rank 0.
 *
 * Buckets: the flat gradient buffer is cut into buckets over the parameters in REVERSE
 * order (backward finishes the last layers first), the first small so communication starts
 * early:
 *
 *   flat grads:  [ p0 | p1 | p2 | p3 | p4 | p5 ]
 *   buckets:     [   2    |    1    |  0 ]          (bucket 0 = the last parameters)
 *
 * Each parameter carries a grad-ready hook (autograd/engine.c); when the last parameter of
 * bucket k is final and buckets 0..k-1 have been started, bucket k's nonblocking all-reduce
 * starts, so buckets start in the same order on every rank whatever the timing. Backward
 * keeps computing meanwhile. ig_ddp_step starts what is left (parameters that got no
 * gradient), waits for every bucket in order, divides by the world size and runs the
 * optimizer. The steady state allocates nothing: requests live in the bucket table.
 *
 * Sync BN: with opts.sync_bn every BatchNorm module normalises with batch statistics over
 * all ranks (nn's igi_bn_set_sync, core's igi_batch_norm_sync), through blocking
 * all-reduces that run on the backend's other channel.
 *
 * Devices: a model on a GPU keeps its flat buffers there, and every collective gets device
 * pointers, which only a backend with device_buffers (nccl) takes; with one process any
 * backend will do (there is nothing to exchange, so nothing is sent). The averaging scale
 * runs on the device through core's backend table, on the compute stream, after the
 * stream waits of the nccl backend's iall_reduce_wait.
 */
#include <stdio.h>
#include <string.h>

#include "../core/backend_impl.h"
#include "../nn/module_impl.h"
#include "../optim/optim.h"
#include "dist_impl.h"

#define MiB ((int64_t)1 << 20)

typedef struct ddp_param {
    ig_ddp *p;
    ig_tensor *t;
    int64_t offset, numel; /* in the flat buffers */
    int bucket;
} ddp_param;

typedef struct ddp_bucket {
    int64_t offset, numel; /* slice of the flat gradient buffer */
    int n_params;
    int pending;           /* parameters not yet final in this backward */
    bool started;
    igi_dist_req req;
    char what[96];         /* names the bucket in errors (no formatting per step) */
} ddp_bucket;

struct ig_ddp {
    ig_dist *d;
    ig_module *m;
    ig_optimizer *o;
    ig_ddp_opts opts;
    ig_tensor *flat_grads; /* m's, not owned */
    ddp_param *params;
    int n_params;
    ddp_bucket *buckets;
    int n_buckets;
    int next_start; /* buckets [0, next_start) have been started this step */
    int next_done;  /* buckets [0, next_done) are known complete */
    bool twice;     /* a hook fired for a parameter whose bucket was already final */
    ig_status err;  /* a start that failed during backward, reported by the step */
    char errmsg[256];
    ig_tensor **buffers; /* m's buffers in state-dict order, not owned */
    int n_buffers;
    igi_bn_sync bn_sync;
};

/* ---- bucket plan ------------------------------------------------------------------------ */

int igi_ddp_plan(const int64_t *numel, int n, size_t elem_size, int64_t first_bytes, int64_t bucket_bytes,
                 int *bucket_of) {
    int k = 0;
    int64_t cur = 0; /* bytes in bucket k so far */
    for (int i = n - 1; i >= 0; i--) {
        int64_t bytes = numel[i] * (int64_t)elem_size;
        int64_t cap = k == 0 ? first_bytes : bucket_bytes;
        if (cur > 0 && cur + bytes > cap) {
            k++;
            cur = 0;
        }
        bucket_of[i] = k;
        cur += bytes;
    }
    return n > 0 ? k + 1 : 0;
}

int igi_ddp_num_buckets(const ig_ddp *p) { return p ? p->n_buckets : 0; }

void igi_ddp_bucket_range(const ig_ddp *p, int k, int64_t *offset, int64_t *numel) {
    IG_ASSERT(p && k >= 0 && k < p->n_buckets);
    *offset = p->buckets[k].offset;
    *numel = p->buckets[k].numel;
}

int igi_ddp_num_started(const ig_ddp *p) { return p ? p->next_start : 0; }

/* ---- during backward -------------------------------------------------------------------- */

static void record_error(ig_ddp *p, ig_status st) {
    if (p->err != IG_OK) return;
    p->err = st;
    snprintf(p->errmsg, sizeof p->errmsg, "%s", ig_last_error());
}

static void start_bucket(ig_ddp *p, int k) {
    ddp_bucket *b = &p->buckets[k];
    b->started = true;
    if (p->err != IG_OK) return; /* the step fails anyway; start nothing more */
    ig_tensor *g = p->flat_grads;
    char *base = igi_data(g) + (size_t)b->offset * ig_dtype_size(g->dtype);
    ig_status st = p->d->be->iall_reduce_start(p->d, base, b->numel, g->dtype, &b->req, b->what);
    if (st != IG_OK) record_error(p, st);
}

/* Lets the backend progress every bucket in flight (MPI moves data only inside MPI calls,
 * and a ring all-reduce posts its next step only when tested). */
static void progress(ig_ddp *p) {
    for (int k = p->next_done; k < p->next_start; k++) p->d->be->iall_reduce_test(p->d, &p->buckets[k].req);
    while (p->next_done < p->next_start && !p->buckets[p->next_done].req.active) p->next_done++;
}

static void grad_ready(ig_tensor *leaf, void *ctx) {
    (void)leaf;
    ddp_param *pp = ctx;
    ig_ddp *p = pp->p;
    ddp_bucket *b = &p->buckets[pp->bucket];
    if (b->pending == 0) {
        p->twice = true; /* its all-reduce may be running on this very gradient */
        return;
    }
    if (--b->pending > 0 || p->opts.no_overlap) return;
    /* Start every bucket that is ready and whose predecessors have all started. */
    while (p->next_start < p->n_buckets && p->buckets[p->next_start].pending == 0) start_bucket(p, p->next_start++);
    progress(p);
}

/* ---- sync BN -------------------------------------------------------------------------------- */

static ig_status bn_sum(void *ctx, double *vals, int64_t n) {
    ig_ddp *p = ctx;
    return p->d->be->all_reduce_sum(p->d, vals, n, IG_F64, "ig_batch_norm (sync_bn): all-reduce of batch statistics");
}

static void set_bn_sync(void *ctx, const char *path, ig_module *mod) {
    (void)path;
    ig_ddp *p = ctx;
    igi_bn_set_sync(mod, p ? &p->bn_sync : NULL); /* false (ignored) for other modules */
}

/* ---- set-up ------------------------------------------------------------------------------ */

static int by_offset(const void *a, const void *b) {
    const ddp_param *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The hash every rank must agree on: state-dict names, dtypes and shapes, the optimizer
 * and the DDP options (which fix the bucket plan, hence the order of collectives). */
static uint64_t setup_hash(const ig_named_tensor *sd, int n, ig_optimizer *o, const ig_ddp_opts *opts) {
    uint64_t h = IGI_FNV_OFFSET;
    for (int i = 0; i < n; i++) {
        const ig_tensor *t = sd[i].tensor;
        int64_t meta[2 + IG_MAX_DIMS] = {t->dtype, t->ndim};
        for (int k = 0; k < t->ndim; k++) meta[2 + k] = t->shape[k];
        h = igi_fnv1a64(h, sd[i].name, strlen(sd[i].name) + 1);
        h = igi_fnv1a64(h, meta, sizeof meta);
    }
    char desc[512] = "";
    const char *name = ig_optim_name(o);
    h = igi_fnv1a64(h, name, strlen(name) + 1);
    if (ig_optim_describe(o, desc, sizeof desc) == IG_OK) h = igi_fnv1a64(h, desc, strlen(desc) + 1);
    int64_t o4[4] = {opts->bucket_bytes, opts->first_bucket_bytes, opts->sync_bn, opts->no_overlap};
    return igi_fnv1a64(h, o4, sizeof o4);
}

/* Whether t's bytes go through the backend: always for host tensors and device-capable
 * backends; a device tensor with a host-only backend only reaches here with one process,
 * where there is nothing to exchange. */
static bool exchanged(const ig_dist *d, const ig_tensor *t) {
    return t->device == IG_CPU || d->be->device_buffers;
}

static ig_status broadcast_tensor(ig_dist *d, ig_tensor *t, const char *op) {
    if (!exchanged(d, t)) return IG_OK;
    if (!igi_is_contiguous(t))
        return igi_error(IG_ERR_STATE, "%s: a model buffer is not contiguous", op);
    igi_storage_written(t->storage);
    return d->be->broadcast(d, igi_data(t), igi_numel(t->ndim, t->shape) * (int64_t)ig_dtype_size(t->dtype), 0, op);
}

ig_ddp *ig_ddp_new(ig_dist *d, ig_module *m, ig_optimizer *o, const ig_ddp_opts *opts) {
    const char *op = "ig_ddp_new";
    if (!d || !m || !o) {
        igi_error_null(op, !d ? "d" : !m ? "m" : "o");
        return NULL;
    }
    ig_ddp_opts od = {.bucket_bytes = 25 * MiB, .first_bucket_bytes = 1 * MiB};
    if (opts) {
        if (opts->bucket_bytes < 0 || opts->first_bucket_bytes < 0) {
            igi_error(IG_ERR_ARG, "%s: bucket sizes must be >= 0 (0: the default), got %lld and %lld", op,
                      (long long)opts->bucket_bytes, (long long)opts->first_bucket_bytes);
            return NULL;
        }
        if (opts->bucket_bytes) od.bucket_bytes = opts->bucket_bytes;
        if (opts->first_bucket_bytes) od.first_bucket_bytes = opts->first_bucket_bytes;
        od.sync_bn = opts->sync_bn;
        od.no_overlap = opts->no_overlap;
    }
    if (ig_module_flatten(m) != IG_OK) return NULL;

    ig_ddp *p = calloc(1, sizeof *p);
    ig_named_tensor *sd = NULL, *np = NULL;
    int64_t *numel = NULL;
    int *bucket_of = NULL;
    ig_status st = IG_OK;
    if (!p) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    p->d = d;
    p->m = m;
    p->o = o;
    p->opts = od;
    p->flat_grads = ig_module_flat_grads(m);
    p->bn_sync = (igi_bn_sync){bn_sum, p};
    ig_tensor *flat = ig_module_flat_params(m);
    if (flat->device != IG_CPU && !d->be->device_buffers && d->world > 1) {
        igi_error(IG_ERR_DEVICE,
                  "%s: the model is on %s but the %s backend moves host memory only (a model on a GPU needs nccl)",
                  op, igi_device_name(flat->device), d->be->name);
        goto fail;
    }

    /* Parameters (distinct, in flat order) and buffers. */
    int n_sd = ig_module_state_dict(m, NULL, 0), n_np = ig_module_named_parameters(m, NULL, 0);
    if (n_sd < 0 || n_np < 0) goto fail;
    sd = calloc((size_t)n_sd + 1, sizeof *sd);
    np = calloc((size_t)n_np + 1, sizeof *np);
    p->params = calloc((size_t)n_np + 1, sizeof *p->params);
    p->buffers = calloc((size_t)n_sd + 1, sizeof *p->buffers);
    if (!sd || !np || !p->params || !p->buffers) {
        st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        goto fail;
    }
    if (ig_module_state_dict(m, sd, n_sd) < 0 || ig_module_named_parameters(m, np, n_np) < 0) goto fail;
    for (int i = 0; i < n_np; i++) {
        ig_tensor *t = np[i].tensor;
        bool seen = false;
        for (int j = 0; j < p->n_params && !seen; j++) seen = p->params[j].t == t;
        if (seen) continue;
        IG_ASSERT(t->storage == flat->storage);
        p->params[p->n_params++] = (ddp_param){p, t, t->offset, igi_numel(t->ndim, t->shape), 0};
    }
    qsort(p->params, (size_t)p->n_params, sizeof *p->params, by_offset);
    for (int i = 0; i < n_sd; i++) {
        bool is_param = false;
        for (int j = 0; j < n_np && !is_param; j++) is_param = np[j].tensor == sd[i].tensor;
        if (!is_param) p->buffers[p->n_buffers++] = sd[i].tensor;
    }

    /* Same model everywhere, then rank 0's values everywhere. */
    uint64_t h = setup_hash(sd, n_sd, o, &od);
    if ((st = igi_dist_check_same(d, &h, sizeof h, op,
                                  "the model (state-dict names, shapes, dtypes), optimizer or DDP options")) != IG_OK)
        goto fail;
    if ((st = broadcast_tensor(d, flat, op)) != IG_OK) goto fail;
    for (int i = 0; i < p->n_buffers && st == IG_OK; i++) st = broadcast_tensor(d, p->buffers[i], op);
    if (st != IG_OK) goto fail;

    /* Buckets. */
    numel = calloc((size_t)p->n_params + 1, sizeof *numel);
    bucket_of = calloc((size_t)p->n_params + 1, sizeof *bucket_of);
    if (!numel || !bucket_of) {
        st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        goto fail;
    }
    for (int i = 0; i < p->n_params; i++) numel[i] = p->params[i].numel;
    p->n_buckets = igi_ddp_plan(numel, p->n_params, ig_dtype_size(flat->dtype), od.first_bucket_bytes,
                                od.bucket_bytes, bucket_of);
    p->buckets = calloc((size_t)p->n_buckets + 1, sizeof *p->buckets);
    if (!p->buckets) {
        st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        goto fail;
    }
    for (int k = 0; k < p->n_buckets; k++) p->buckets[k].offset = INT64_MAX;
    for (int i = 0; i < p->n_params; i++) {
        ddp_bucket *b = &p->buckets[bucket_of[i]];
        p->params[i].bucket = bucket_of[i];
        if (p->params[i].offset < b->offset) b->offset = p->params[i].offset;
        b->numel += p->params[i].numel;
        b->n_params++;
    }
    for (int k = 0; k < p->n_buckets; k++) {
        ddp_bucket *b = &p->buckets[k];
        b->pending = b->n_params;
        snprintf(b->what, sizeof b->what, "ig_ddp_step: all-reduce of gradient bucket %d of %d (%lld bytes)", k,
                 p->n_buckets, (long long)(b->numel * (int64_t)ig_dtype_size(flat->dtype)));
    }
    for (int i = 0; i < p->n_params && st == IG_OK; i++)
        st = igi_set_grad_ready_hook(p->params[i].t, grad_ready, &p->params[i]);
    if (st != IG_OK) goto fail;
    if (od.sync_bn) igi_module_walk_modules(m, set_bn_sync, p);
    free(sd);
    free(np);
    free(numel);
    free(bucket_of);
    return p;
fail:
    free(sd);
    free(np);
    free(numel);
    free(bucket_of);
    ig_ddp_free(p);
    return NULL;
}

/* ---- step ----------------------------------------------------------------------------------- */

/* g *= s in place (g contiguous, f32 or f64), on g's device. */
static ig_status scale(ig_tensor *g, double s, const char *op) {
    int64_t n = igi_numel(g->ndim, g->shape);
    if (g->device != IG_CPU) {
        const igi_backend *be = IGI_BACKEND_WITH(op, g->device, scalar);
        if (!be) return ig_last_status();
        ig_tensor *ops[2] = {g, g};
        igi_ew e;
        return igi_ew_make(ops, 2, &e) ? be->scalar(op, &e, s, true) : IG_OK;
    }
    if (g->dtype == IG_F32) {
        float *x = (float *)igi_data(g), f = (float)s;
        for (int64_t i = 0; i < n; i++) x[i] *= f;
    } else {
        double *x = (double *)igi_data(g);
        for (int64_t i = 0; i < n; i++) x[i] *= s;
    }
    return IG_OK;
}

static void reset_buckets(ig_ddp *p) {
    for (int k = 0; k < p->n_buckets; k++) {
        p->buckets[k].pending = p->buckets[k].n_params;
        p->buckets[k].started = false;
    }
    p->next_start = p->next_done = 0;
    p->twice = false;
    p->err = IG_OK;
}

/* Starts what is left and waits for every bucket, in order. */
static ig_status finish_buckets(ig_ddp *p) {
    while (p->next_start < p->n_buckets) start_bucket(p, p->next_start++);
    for (int k = 0; k < p->n_buckets; k++) {
        ig_status st = p->d->be->iall_reduce_wait(p->d, &p->buckets[k].req, p->buckets[k].what);
        if (st != IG_OK) return st; /* a timeout: the job cannot go on */
    }
    return IG_OK;
}

ig_status ig_ddp_step(ig_ddp *p) { return ig_ddp_step_scaled(p, NULL); }

ig_status ig_ddp_step_scaled(ig_ddp *p, ig_grad_scaler *s) {
    const char *op = "ig_ddp_step";
    if (!p) return igi_error_null(op, "p");
    ig_status st = finish_buckets(p);
    if (st != IG_OK) return st;
    if (p->err != IG_OK) {
        st = p->err;
        igi_error(st, "%s", p->errmsg);
    } else if (p->twice) {
        st = igi_error(IG_ERR_STATE,
                       "%s: a parameter's gradient became final twice since the last step (ig_backward ran twice?); "
                       "accumulating gradients over several backward passes is not supported",
                       op);
    }
    reset_buckets(p);
    if (st != IG_OK) return st;
    if (p->d->world > 1 && (st = scale(p->flat_grads, 1.0 / p->d->world, op)) != IG_OK) return st;
    return s ? ig_grad_scaler_step(s, p->o) : ig_optim_step(p->o);
}

ig_status ig_ddp_sync_buffers(ig_ddp *p) {
    const char *op = "ig_ddp_sync_buffers";
    if (!p) return igi_error_null(op, "p");
    ig_status st = IG_OK;
    for (int i = 0; i < p->n_buffers && st == IG_OK; i++) {
        ig_tensor *t = p->buffers[i];
        if (!ig_dtype_is_float(t->dtype) || t->dtype == IG_BF16) {
            st = broadcast_tensor(p->d, t, op); /* counters (and bf16, which no backend adds): rank 0's */
        } else if (exchanged(p->d, t)) {
            igi_storage_written(t->storage);
            st = p->d->be->all_reduce_sum(p->d, igi_data(t), igi_numel(t->ndim, t->shape), t->dtype, op);
            if (st == IG_OK && p->d->world > 1) st = scale(t, 1.0 / p->d->world, op);
        }
    }
    return st;
}

void ig_ddp_free(ig_ddp *p) {
    if (!p) return;
    /* A request still in flight writes into the gradient buffer: let it land first. */
    for (int k = 0; k < p->n_buckets; k++)
        if (p->buckets[k].req.active && p->d->be->iall_reduce_wait(p->d, &p->buckets[k].req, p->buckets[k].what) != IG_OK)
            break;
    for (int k = 0; k < p->n_buckets; k++)
        if (!p->buckets[k].req.active) p->d->be->req_release(p->d, &p->buckets[k].req);
    for (int i = 0; i < p->n_params; i++) igi_set_grad_ready_hook(p->params[i].t, NULL, NULL);
    if (p->opts.sync_bn) igi_module_walk_modules(p->m, set_bn_sync, NULL);
    free(p->params);
    free(p->buckets);
    free(p->buffers);
    free(p);
}
