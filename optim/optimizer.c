/*
 * optim/optimizer.c — the optimizer object (SGD, Adam, AdamW, RMSprop): construction and
 * validation, the step (one fused loop per parameter over contiguous float data, see
 * optim/kernels_impl.h), zero_grad, lr access, a description string, and named state for
 * checkpoints. The layout of the object and its state is explained in optim/optim_impl.h.
 *
 * Parameters are held by reference (heap tensors are retained; a scoped parameter must
 * outlive the optimizer). State tensors are heap tensors created lazily, so a step taken
 * inside an open scope never puts optimizer state into that scope.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../core/backend_impl.h"
#include "device_impl.h"
#include "optim_impl.h"

/* ---- kernel arguments (scalars in double; kernels round them to their element type) ---- */

typedef struct igi_sgd_args {
    double lr, weight_decay, momentum, dampening;
    bool nesterov;
    bool first; /* the momentum buffer was just created: buf = d */
} igi_sgd_args;

typedef struct igi_rmsprop_args {
    double lr, alpha, eps, weight_decay, momentum;
} igi_rmsprop_args;

#define IGI_T float
#define IGI_SFX f32
#define IGI_SQRT sqrtf
#include "kernels_impl.h"
#undef IGI_T
#undef IGI_SFX
#undef IGI_SQRT

#define IGI_T double
#define IGI_SFX f64
#define IGI_SQRT sqrt
#include "kernels_impl.h"
#undef IGI_T
#undef IGI_SFX
#undef IGI_SQRT

/* ---- defaults (torch's) -------------------------------------------------------------- */

ig_sgd_opts ig_sgd_defaults(void) {
    return (ig_sgd_opts){.lr = 0.01, .momentum = 0, .dampening = 0, .weight_decay = 0, .nesterov = false};
}

ig_adam_opts ig_adam_defaults(void) {
    return (ig_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0,
                          .amsgrad = false};
}

ig_adam_opts ig_adamw_defaults(void) {
    ig_adam_opts o = ig_adam_defaults();
    o.weight_decay = 1e-2;
    return o;
}

ig_rmsprop_opts ig_rmsprop_defaults(void) {
    return (ig_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0, .momentum = 0,
                             .centered = false};
}

/* ---- state slots ----------------------------------------------------------------------- */

static const char *const slot_names[4][IGI_OPTIM_SLOTS] = {
    [IGI_OPTIM_SGD] = {"momentum_buffer", NULL, NULL, NULL},
    [IGI_OPTIM_ADAM] = {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [IGI_OPTIM_ADAMW] = {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [IGI_OPTIM_RMSPROP] = {"step", "square_avg", "momentum_buffer", "grad_avg"},
};

static const char *const kind_names[4] = {"sgd", "adam", "adamw", "rmsprop"};

/* Whether slot k holds state for this optimizer's kind and options. */
static bool slot_used(const ig_optimizer *o, int k) {
    switch (o->kind) {
    case IGI_OPTIM_SGD: return k == 0 && o->sgd.momentum != 0.0;
    case IGI_OPTIM_ADAM:
    case IGI_OPTIM_ADAMW: return k < 3 || (k == 3 && o->adam.amsgrad);
    case IGI_OPTIM_RMSPROP:
        return k < 2 || (k == 2 && o->rmsprop.momentum > 0.0) || (k == 3 && o->rmsprop.centered);
    }
    return false;
}

static bool slot_is_step(const ig_optimizer *o, int k) { return o->kind != IGI_OPTIM_SGD && k == 0; }

/* Creates parameter i's slot k as zeros (a 0-dim f64 for a step slot, else the parameter's
 * shape and dtype), as a heap tensor even if a scope is open. */
static ig_status create_slot(ig_optimizer *o, int i, int k, const char *op) {
    const ig_tensor *p = o->params[i];
    const char *sname = slot_names[o->kind][k];
    size_t len = strlen(sname) + 24;
    char *name = malloc(len);
    if (!name) return igi_error(IG_ERR_NOMEM, "%s: out of memory for optimizer state", op);
    snprintf(name, len, "%d.%s", i, sname);
    igi_heap_mode(1);
    ig_tensor *t = slot_is_step(o, k)       ? ig_scalar(0.0, IG_F64)
                   : p->device == IG_CPU ? ig_zeros(p->ndim, p->shape, p->dtype)
                                         : igi_full_on(op, p->ndim, p->shape, p->dtype, 0.0, p->device);
    igi_heap_mode(-1);
    if (!t) {
        /* keep the cause (out of memory, or a device error) */
        char why[300];
        snprintf(why, sizeof why, "%s", ig_last_error());
        free(name);
        return igi_error(ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_NOMEM,
                         "%s: cannot make optimizer state %s (%s)", op, sname, why);
    }
    o->state[i].slot[k] = t;
    o->state[i].name[k] = name;
    return IG_OK;
}

/* Creates every missing slot of parameter i; *created gets a bit per slot made now. */
static ig_status ensure_slots(ig_optimizer *o, int i, unsigned *created, const char *op) {
    *created = 0;
    for (int k = 0; k < IGI_OPTIM_SLOTS; k++) {
        if (!slot_used(o, k) || o->state[i].slot[k]) continue;
        ig_status st = create_slot(o, i, k, op);
        if (st != IG_OK) return st;
        *created |= 1u << k;
    }
    return IG_OK;
}

static double *scalar_f64(ig_tensor *t) { return (double *)igi_data(t); }

/* ---- construction ---------------------------------------------------------------------- */

static bool check_params(const char *op, ig_tensor *const *params, int n) {
    if (!params) {
        igi_error_null(op, "params");
        return false;
    }
    if (n <= 0) {
        igi_error(IG_ERR_ARG, "%s: the parameter list is empty (n = %d)", op, n);
        return false;
    }
    for (int i = 0; i < n; i++) {
        const ig_tensor *p = params[i];
        char argname[32];
        snprintf(argname, sizeof argname, "params[%d]", i);
        if (!p) {
            igi_error_null(op, argname);
            return false;
        }
        if (!ig_dtype_is_float(p->dtype) || p->dtype == IG_BF16) { /* bf16: autocast's, not master weights */
            igi_error(IG_ERR_DTYPE, "%s: %s has dtype %s; parameters must be float32 or float64", op, argname,
                      ig_dtype_name(p->dtype));
            return false;
        }
        if (p->node) {
            igi_error(IG_ERR_ARG, "%s: %s is not a leaf (it was produced by a recorded op)", op, argname);
            return false;
        }
        if (!p->requires_grad) {
            igi_error(IG_ERR_ARG, "%s: %s does not require grad (call ig_set_requires_grad)", op, argname);
            return false;
        }
        if (!igi_is_contiguous(p)) {
            char b[160];
            igi_error(IG_ERR_ARG, "%s: %s (shape %s) is not contiguous; the update runs over contiguous data",
                      op, argname, ig_shape_str(p, b, sizeof b));
            return false;
        }
        for (int j = 0; j < i; j++) {
            if (params[j] == p) {
                igi_error(IG_ERR_ARG, "%s: params[%d] and %s are the same tensor", op, j, argname);
                return false;
            }
        }
    }
    return true;
}

/* x must be >= 0 (NaN fails too). */
static bool check_nonneg(const char *op, const char *what, double x) {
    if (x >= 0.0) return true;
    igi_error(IG_ERR_ARG, "%s: %s must be >= 0 (got %g)", op, what, x);
    return false;
}

static bool check_beta(const char *op, const char *what, double x) {
    if (x >= 0.0 && x < 1.0) return true;
    igi_error(IG_ERR_ARG, "%s: %s must be in [0, 1) (got %g)", op, what, x);
    return false;
}

static ig_optimizer *optim_new(const char *op, igi_optim_kind kind, ig_tensor *const *params, int n,
                               double lr) {
    ig_optimizer *o = calloc(1, sizeof *o);
    ig_tensor **ps = o ? calloc((size_t)n, sizeof *ps) : NULL;
    igi_param_state *st = ps ? calloc((size_t)n, sizeof *st) : NULL;
    if (!st) {
        free(ps);
        free(o);
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    o->kind = kind;
    o->n = n;
    o->params = ps;
    o->state = st;
    o->lr = lr;
    for (int i = 0; i < n; i++) ps[i] = ig_tensor_retain(params[i]);
    return o;
}

ig_optimizer *ig_optim_sgd(ig_tensor *const *params, int n, const ig_sgd_opts *opts) {
    const char *op = "ig_optim_sgd";
    ig_sgd_opts d = opts ? *opts : ig_sgd_defaults();
    if (!check_params(op, params, n)) return NULL;
    if (!check_nonneg(op, "lr", d.lr) || !check_nonneg(op, "momentum", d.momentum) ||
        !check_nonneg(op, "weight_decay", d.weight_decay))
        return NULL;
    if (!isfinite(d.dampening)) {
        igi_error(IG_ERR_ARG, "%s: dampening must be finite (got %g)", op, d.dampening);
        return NULL;
    }
    if (d.nesterov && (d.momentum <= 0.0 || d.dampening != 0.0)) {
        igi_error(IG_ERR_ARG, "%s: nesterov needs momentum > 0 and dampening 0 (got momentum %g, dampening %g)",
                  op, d.momentum, d.dampening);
        return NULL;
    }
    ig_optimizer *o = optim_new(op, IGI_OPTIM_SGD, params, n, d.lr);
    if (o) o->sgd = d;
    return o;
}

static ig_optimizer *adam_common(const char *op, igi_optim_kind kind, ig_tensor *const *params, int n,
                                 const ig_adam_opts *opts) {
    ig_adam_opts d = opts ? *opts : (kind == IGI_OPTIM_ADAMW ? ig_adamw_defaults() : ig_adam_defaults());
    if (!check_params(op, params, n)) return NULL;
    if (!check_nonneg(op, "lr", d.lr) || !check_beta(op, "beta1", d.beta1) || !check_beta(op, "beta2", d.beta2) ||
        !check_nonneg(op, "eps", d.eps) || !check_nonneg(op, "weight_decay", d.weight_decay))
        return NULL;
    ig_optimizer *o = optim_new(op, kind, params, n, d.lr);
    if (o) o->adam = d;
    return o;
}

ig_optimizer *ig_optim_adam(ig_tensor *const *params, int n, const ig_adam_opts *o) {
    return adam_common("ig_optim_adam", IGI_OPTIM_ADAM, params, n, o);
}

ig_optimizer *ig_optim_adamw(ig_tensor *const *params, int n, const ig_adam_opts *o) {
    return adam_common("ig_optim_adamw", IGI_OPTIM_ADAMW, params, n, o);
}

ig_optimizer *ig_optim_rmsprop(ig_tensor *const *params, int n, const ig_rmsprop_opts *opts) {
    const char *op = "ig_optim_rmsprop";
    ig_rmsprop_opts d = opts ? *opts : ig_rmsprop_defaults();
    if (!check_params(op, params, n)) return NULL;
    if (!check_nonneg(op, "lr", d.lr) || !check_nonneg(op, "alpha", d.alpha) || !check_nonneg(op, "eps", d.eps) ||
        !check_nonneg(op, "weight_decay", d.weight_decay) || !check_nonneg(op, "momentum", d.momentum))
        return NULL;
    ig_optimizer *o = optim_new(op, IGI_OPTIM_RMSPROP, params, n, d.lr);
    if (o) o->rmsprop = d;
    return o;
}

void ig_optim_free(ig_optimizer *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        for (int k = 0; k < IGI_OPTIM_SLOTS; k++) {
            ig_tensor_free(o->state[i].slot[k]);
            free(o->state[i].name[k]);
        }
        ig_tensor_free(o->params[i]);
    }
    ig_tensor_free(o->step);
    free(o->state);
    free(o->params);
    free(o);
}

/* ---- step ------------------------------------------------------------------------------ */

void *igi_optim_slot_data(ig_optimizer *o, int i, int k) {
    ig_tensor *t = o->state[i].slot[k];
    return t ? igi_data(t) : NULL;
}

double igi_optim_advance_step(ig_optimizer *o, int i) {
    double *s = scalar_f64(o->state[i].slot[0]);
    *s += 1.0;
    return *s;
}

igi_adam_args igi_optim_adam_args(const ig_optimizer *o, double t) {
    const ig_adam_opts *h = &o->adam;
    bool decoupled = o->kind == IGI_OPTIM_ADAMW;
    return (igi_adam_args){
        .beta1 = h->beta1,
        .beta2 = h->beta2,
        .eps = h->eps,
        .l2 = decoupled ? 0.0 : h->weight_decay,
        .shrink = decoupled ? 1.0 - o->lr * h->weight_decay : 1.0,
        .step_size = o->lr / (1.0 - pow(h->beta1, t)),
        .bc2_sqrt = sqrt(1.0 - pow(h->beta2, t)),
    };
}

/* One parameter's update, split over the thread pool: the kernels are elementwise, so any
 * split gives bitwise the same result. Ranges of at least UPDATE_GRAIN elements (a smaller
 * parameter is one call in the caller's thread). */
#define UPDATE_GRAIN 65536

typedef struct update_job {
    ig_optimizer *o;
    bool f32;
    size_t es;
    char *p, *s[4]; /* the parameter and its state slots (NULL where absent) */
    const char *g;
    igi_sgd_args sgd;
    igi_adam_args adam;
    igi_rmsprop_args rms;
} update_job;

static void update_range(int64_t begin, int64_t end, void *ctx) {
    const update_job *j = ctx;
    size_t off = (size_t)begin * j->es;
    int64_t n = end - begin;
    void *p = j->p + off, *s[4];
    const void *g = j->g + off;
    for (int k = 0; k < 4; k++) s[k] = j->s[k] ? j->s[k] + off : NULL;
    switch (j->o->kind) {
    case IGI_OPTIM_SGD:
        if (j->f32) sgd_update_f32(p, g, s[0], n, &j->sgd);
        else sgd_update_f64(p, g, s[0], n, &j->sgd);
        break;
    case IGI_OPTIM_ADAM:
    case IGI_OPTIM_ADAMW:
        if (j->f32) adam_update_f32(p, g, s[1], s[2], s[3], n, &j->adam);
        else adam_update_f64(p, g, s[1], s[2], s[3], n, &j->adam);
        break;
    case IGI_OPTIM_RMSPROP:
        if (j->f32) rmsprop_update_f32(p, g, s[1], s[3], s[2], n, &j->rms);
        else rmsprop_update_f64(p, g, s[1], s[3], s[2], n, &j->rms);
        break;
    }
}

/* Updates parameter i from g (contiguous, p's dtype and numel). Slots: SGD 0 momentum;
 * Adam 0 step, 1 m, 2 v, 3 vmax; RMSprop 0 step, 1 square average, 2 momentum buffer,
 * 3 gradient average. */
static void update_param(ig_optimizer *o, int i, const void *g, unsigned created) {
    ig_tensor *p = o->params[i];
    update_job j = {.o = o, .f32 = p->dtype == IG_F32, .es = ig_dtype_size(p->dtype), .p = igi_data(p), .g = g};
    for (int k = 0; k < 4; k++) j.s[k] = NULL;
    switch (o->kind) {
    case IGI_OPTIM_SGD:
        j.sgd = (igi_sgd_args){o->lr, o->sgd.weight_decay, o->sgd.momentum, o->sgd.dampening, o->sgd.nesterov,
                               (created & 1u) != 0};
        j.s[0] = igi_optim_slot_data(o, i, 0);
        break;
    case IGI_OPTIM_ADAM:
    case IGI_OPTIM_ADAMW:
        j.adam = igi_optim_adam_args(o, igi_optim_advance_step(o, i));
        for (int k = 1; k < 4; k++) j.s[k] = igi_optim_slot_data(o, i, k);
        break;
    case IGI_OPTIM_RMSPROP: {
        igi_optim_advance_step(o, i);
        const ig_rmsprop_opts *h = &o->rmsprop;
        j.rms = (igi_rmsprop_args){o->lr, h->alpha, h->eps, h->weight_decay, h->momentum};
        for (int k = 1; k < 4; k++) j.s[k] = igi_optim_slot_data(o, i, k);
        break;
    }
    }
    igi_parallel_for(igi_numel(p->ndim, p->shape), UPDATE_GRAIN, update_range, &j);
}

ig_status ig_optim_step(ig_optimizer *o) {
    const char *op = "ig_optim_step";
    if (!o) return igi_error_null(op, "o");
    if (!o->step) {
        igi_heap_mode(1);
        o->step = ig_scalar(0.0, IG_F64);
        igi_heap_mode(-1);
        if (!o->step) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    }
    for (int i = 0; i < o->n; i++) {
        ig_tensor *p = o->params[i], *g = p->grad;
        if (!g) continue; /* as torch: a parameter without a gradient is skipped */
        if (g->dtype != p->dtype || g->device != p->device ||
            igi_numel(g->ndim, g->shape) != igi_numel(p->ndim, p->shape))
            return igi_error(IG_ERR_STATE, "%s: the gradient of parameter %d does not match it (dtype %s vs %s, on %s vs %s)",
                             op, i, ig_dtype_name(g->dtype), ig_dtype_name(p->dtype), igi_device_name(g->device),
                             igi_device_name(p->device));
        if (p->device != IG_CPU && !IGI_BACKEND_WITH(op, p->device, optim_step)) return ig_last_status();
        unsigned created;
        ig_status st = ensure_slots(o, i, &created, op);
        if (st != IG_OK) return st;
        int64_t n = igi_numel(p->ndim, p->shape);
        if (p->device != IG_CPU) {
            /* On a device: the backend's fused kernel (a strided gradient gathered first). */
            ig_tensor *gc = igi_is_contiguous(g) ? g : igi_to_device_copy(op, g, g->device);
            if (!gc) return ig_last_status();
            st = igi_optim_update_device(o, i, igi_data(gc), created); /* device.c */
            if (gc != g) ig_tensor_free(gc);
            if (st != IG_OK) return st;
        } else if (igi_is_contiguous(g)) {
            update_param(o, i, igi_data(g), created);
        } else {
            /* A strided gradient (e.g. a view set with ig_set_grad): gather it first. */
            void *tmp = malloc((size_t)(n > 0 ? n : 1) * ig_dtype_size(p->dtype));
            if (!tmp) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
            st = ig_tensor_to_buffer(g, p->dtype, tmp, n);
            if (st == IG_OK) update_param(o, i, tmp, created);
            free(tmp);
            if (st != IG_OK) return st;
        }
    }
    *scalar_f64(o->step) += 1.0;
    return IG_OK;
}

void ig_optim_zero_grad(ig_optimizer *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) ig_zero_grad(o->params[i]);
}

double ig_optim_get_lr(const ig_optimizer *o) {
    if (!o) {
        igi_error_null("ig_optim_get_lr", "o");
        return NAN;
    }
    return o->lr;
}

void ig_optim_set_lr(ig_optimizer *o, double lr) {
    if (!o) {
        igi_error_null("ig_optim_set_lr", "o");
        return;
    }
    if (!(lr >= 0.0)) {
        igi_error(IG_ERR_ARG, "ig_optim_set_lr: lr must be >= 0 (got %g); lr left at %g", lr, o->lr);
        return;
    }
    o->lr = lr;
}

const char *ig_optim_name(const ig_optimizer *o) {
    if (!o) {
        igi_error_null("ig_optim_name", "o");
        return NULL;
    }
    return kind_names[o->kind];
}

/* ---- describe -------------------------------------------------------------------------- */

/* The shortest of %.15g / %.17g that reads back as x. */
static const char *fmt_num(char out[40], double x) {
    igi_snprintf_c(out, 40, "%.15g", x);
    if (igi_strtod(out, NULL) != x) igi_snprintf_c(out, 40, "%.17g", x);
    return out;
}

ig_status ig_optim_describe(const ig_optimizer *o, char *buf, size_t cap) {
    const char *op = "ig_optim_describe";
    if (!o) return igi_error_null(op, "o");
    if (!buf) return igi_error_null(op, "buf");
    if (cap == 0) return igi_error(IG_ERR_ARG, "%s: cap is 0", op);
    char a[40], b[40], c[40], d[40], e[40], f[40];
    int len = 0;
    switch (o->kind) {
    case IGI_OPTIM_SGD:
        len = snprintf(buf, cap, "lr=%s momentum=%s dampening=%s weight_decay=%s nesterov=%s",
                       fmt_num(a, o->lr), fmt_num(b, o->sgd.momentum), fmt_num(c, o->sgd.dampening),
                       fmt_num(d, o->sgd.weight_decay), o->sgd.nesterov ? "true" : "false");
        break;
    case IGI_OPTIM_ADAM:
    case IGI_OPTIM_ADAMW:
        len = snprintf(buf, cap, "lr=%s beta1=%s beta2=%s eps=%s weight_decay=%s amsgrad=%s", fmt_num(a, o->lr),
                       fmt_num(b, o->adam.beta1), fmt_num(c, o->adam.beta2), fmt_num(d, o->adam.eps),
                       fmt_num(e, o->adam.weight_decay), o->adam.amsgrad ? "true" : "false");
        break;
    case IGI_OPTIM_RMSPROP:
        len = snprintf(buf, cap, "lr=%s alpha=%s eps=%s weight_decay=%s momentum=%s centered=%s",
                       fmt_num(a, o->lr), fmt_num(b, o->rmsprop.alpha), fmt_num(c, o->rmsprop.eps),
                       fmt_num(d, o->rmsprop.weight_decay), fmt_num(f, o->rmsprop.momentum),
                       o->rmsprop.centered ? "true" : "false");
        break;
    }
    if (len < 0 || (size_t)len >= cap)
        return igi_error(IG_ERR_ARG, "%s: buffer of %zu bytes is too small (needs %d)", op, cap, len + 1);
    return IG_OK;
}

/* ---- named state ----------------------------------------------------------------------- */

int ig_optim_state_count(const ig_optimizer *o) {
    if (!o) {
        igi_error_null("ig_optim_state_count", "o");
        return 0;
    }
    int c = o->step ? 1 : 0;
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < IGI_OPTIM_SLOTS; k++) c += o->state[i].slot[k] != NULL;
    return c;
}

/* Entries in order: "step" (once stepped), then each parameter's slots in slot order. */
ig_status ig_optim_state_get(const ig_optimizer *o, int idx, const char **name, ig_tensor **t) {
    const char *op = "ig_optim_state_get";
    if (!o) return igi_error_null(op, "o");
    if (!name) return igi_error_null(op, "name");
    if (!t) return igi_error_null(op, "t");
    int c = idx;
    if (o->step) {
        if (c == 0) {
            *name = "step";
            *t = o->step;
            return IG_OK;
        }
        c--;
    }
    if (c >= 0) {
        for (int i = 0; i < o->n; i++) {
            for (int k = 0; k < IGI_OPTIM_SLOTS; k++) {
                if (!o->state[i].slot[k]) continue;
                if (c-- == 0) {
                    *name = o->state[i].name[k];
                    *t = o->state[i].slot[k];
                    return IG_OK;
                }
            }
        }
    }
    return igi_error(IG_ERR_ARG, "%s: index %d is out of range (the optimizer has %d state entries)", op, idx,
                     ig_optim_state_count(o));
}

/* Reads a step count from a one-element tensor: a finite, non-negative whole number. */
static ig_status read_step(const char *op, const char *name, const ig_tensor *t, double *out) {
    if (igi_numel(t->ndim, t->shape) != 1) {
        char b[160];
        return igi_error(IG_ERR_SHAPE, "%s: %s must have one element (got shape %s)", op, name,
                         ig_shape_str(t, b, sizeof b));
    }
    if (t->device != IG_CPU) return igi_error(IG_ERR_DEVICE, "%s: %s must be a CPU tensor", op, name);
    double v = igi_load(t->dtype, igi_data(t));
    if (!(v >= 0.0) || v > 9007199254740992.0 || v != floor(v))
        return igi_error(IG_ERR_ARG, "%s: %s must be a non-negative whole number (got %g)", op, name, v);
    *out = v;
    return IG_OK;
}

ig_status ig_optim_state_set(ig_optimizer *o, const char *name, const ig_tensor *t) {
    const char *op = "ig_optim_state_set";
    if (!o) return igi_error_null(op, "o");
    if (!name) return igi_error_null(op, "name");
    if (!t) return igi_error_null(op, "t");
    if (strcmp(name, "step") == 0) {
        double v;
        ig_status st = read_step(op, name, t, &v);
        if (st != IG_OK) return st;
        if (!o->step) {
            igi_heap_mode(1);
            o->step = ig_scalar(0.0, IG_F64);
            igi_heap_mode(-1);
            if (!o->step) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        }
        *scalar_f64(o->step) = v;
        return IG_OK;
    }
    /* "<index>.<slot name>" */
    const char *s = name;
    long idx = 0;
    if (*s < '0' || *s > '9') goto unknown;
    while (*s >= '0' && *s <= '9') {
        idx = idx * 10 + (*s - '0');
        if (idx >= o->n) goto unknown;
        s++;
    }
    if (*s != '.') goto unknown;
    s++;
    for (int k = 0; k < IGI_OPTIM_SLOTS; k++) {
        if (!slot_used(o, k) || strcmp(s, slot_names[o->kind][k]) != 0) continue;
        int i = (int)idx;
        if (slot_is_step(o, k)) {
            double v;
            ig_status st = read_step(op, name, t, &v);
            if (st != IG_OK) return st;
            if (!o->state[i].slot[k] && (st = create_slot(o, i, k, op)) != IG_OK) return st;
            *scalar_f64(o->state[i].slot[k]) = v;
            return IG_OK;
        }
        const ig_tensor *p = o->params[i];
        if (t->ndim != p->ndim || memcmp(t->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim) != 0) {
            char b1[160], b2[160];
            return igi_error(IG_ERR_SHAPE, "%s: %s has shape %s, the parameter has %s", op, name,
                             ig_shape_str(t, b1, sizeof b1), ig_shape_str(p, b2, sizeof b2));
        }
        if (t->dtype != p->dtype)
            return igi_error(IG_ERR_DTYPE, "%s: %s has dtype %s, the parameter has %s", op, name,
                             ig_dtype_name(t->dtype), ig_dtype_name(p->dtype));
        if (t->device != IG_CPU) return igi_error(IG_ERR_DEVICE, "%s: %s must be a CPU tensor", op, name);
        ig_status st;
        if (!o->state[i].slot[k] && (st = create_slot(o, i, k, op)) != IG_OK) return st;
        return ig_copy_(o->state[i].slot[k], t);
    }
unknown:
    return igi_error(IG_ERR_ARG, "%s: no state entry named '%s' for a %s optimizer with %d parameters", op, name,
                     kind_names[o->kind], o->n);
}
