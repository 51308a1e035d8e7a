/*
 * optim/scaler.c — dynamic loss scaling for fp16 mixed precision (ig_grad_scaler), with
 * torch.cuda.amp.GradScaler's rules: scale the loss, unscale the gradients in place while
 * checking them for inf/NaN in the same pass, skip the step and back off on overflow, grow
 * the scale after a run of clean steps.
 *
 * The scaler walks the optimizer's parameters (a model's flat parameter tensor, whose
 * gradient is the flat gradient buffer, is one tensor: one loop). CPU gradients go through
 * the strided iterator (any strides, f32 or f64); device gradients, which must be
 * contiguous f32, through the backend's amp_unscale kernel, all tensors setting one device
 * flag that is read back once. The scale is kept in double and applied as the gradients'
 * own type: 1/scale is a power of two for the default factors, so unscaling is exact.
 */
#include <math.h>
#include <stdio.h>

#include "../core/backend_impl.h"
#include "optim_impl.h"

struct ig_grad_scaler {
    ig_grad_scaler_opts o;
    double scale;
    int64_t tracker;         /* consecutive clean steps since the scale last changed */
    bool unscaled;           /* ig_grad_scaler_unscale ran since the last step */
    bool found_inf;          /* what that unscale found */
    bool skipped;            /* the last step was skipped */
    const ig_optimizer *opt; /* the optimizer unscaled, while unscaled */
};

ig_grad_scaler_opts ig_grad_scaler_defaults(void) {
    return (ig_grad_scaler_opts){.init_scale = 65536.0, .growth_factor = 2.0, .backoff_factor = 0.5,
                                 .growth_interval = 2000};
}

ig_grad_scaler *ig_grad_scaler_new(const ig_grad_scaler_opts *opts) {
    const char *op = "ig_grad_scaler_new";
    ig_grad_scaler_opts o = opts ? *opts : ig_grad_scaler_defaults();
    if (!(o.init_scale > 0.0 && isfinite(o.init_scale))) {
        igi_error(IG_ERR_ARG, "%s: init_scale must be finite and > 0 (got %g)", op, o.init_scale);
        return NULL;
    }
    if (!(o.growth_factor > 1.0 && isfinite(o.growth_factor))) {
        igi_error(IG_ERR_ARG, "%s: growth_factor must be finite and > 1 (got %g)", op, o.growth_factor);
        return NULL;
    }
    if (!(o.backoff_factor > 0.0 && o.backoff_factor < 1.0)) {
        igi_error(IG_ERR_ARG, "%s: backoff_factor must be in (0, 1) (got %g)", op, o.backoff_factor);
        return NULL;
    }
    if (o.growth_interval < 1) {
        igi_error(IG_ERR_ARG, "%s: growth_interval must be >= 1 (got %lld)", op, (long long)o.growth_interval);
        return NULL;
    }
    ig_grad_scaler *s = calloc(1, sizeof *s);
    if (!s) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    s->o = o;
    s->scale = o.init_scale;
    return s;
}

void ig_grad_scaler_free(ig_grad_scaler *s) { free(s); }

ig_tensor *ig_grad_scaler_scale(ig_grad_scaler *s, ig_tensor *loss) {
    const char *op = "ig_grad_scaler_scale";
    if (!s) {
        igi_error_null(op, "s");
        return NULL;
    }
    IGI_NULL_CHECK(op, loss);
    return ig_mul_scalar(loss, s->scale);
}

typedef struct unscale_ctx {
    ig_dtype dt;
    double inv;
    bool found; /* serial iterator: the loop may accumulate into ctx */
} unscale_ctx;

/* g *= inv and note any non-finite result, in one pass. */
static void unscale_loop(char **p, const int64_t *st, int64_t n, void *vctx) {
    unscale_ctx *c = vctx;
    bool bad = false;
    if (c->dt == IG_F32) {
        float inv = (float)c->inv;
        for (int64_t i = 0; i < n; i++) {
            float *g = (float *)(p[0] + i * st[0]);
            *g *= inv;
            bad |= !isfinite(*g);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            double *g = (double *)(p[0] + i * st[0]);
            *g *= c->inv;
            bad |= !isfinite(*g);
        }
    }
    if (bad) c->found = true;
}

ig_status ig_grad_scaler_unscale(ig_grad_scaler *s, ig_optimizer *o) {
    const char *op = "ig_grad_scaler_unscale";
    if (!s) return igi_error_null(op, "s");
    if (!o) return igi_error_null(op, "o");
    if (s->unscaled)
        return igi_error(IG_ERR_STATE, "%s: already unscaled since the last ig_grad_scaler_step", op);
    unscale_ctx c = {IG_F32, 1.0 / s->scale, false};
    /* Device gradients share one flag per device, zeroed first and read back at the end. */
    const igi_backend *be = NULL;
    ig_device dev = IG_CPU;
    int *flag = NULL;
    ig_status st = IG_OK;
    for (int i = 0; i < o->n && st == IG_OK; i++) {
        ig_tensor *g = o->params[i]->grad;
        if (!g || igi_numel(g->ndim, g->shape) == 0) continue;
        if (g->device == IG_CPU) {
            c.dt = g->dtype;
            ig_tensor *ops[1] = {g};
            igi_iter_run(ops, 1, unscale_loop, &c);
            continue;
        }
        if (g->dtype != IG_F32 || !igi_is_contiguous(g)) {
            st = igi_error(IG_ERR_ARG, "%s: the gradient of parameter %d on %s must be contiguous float32 (is %s%s)",
                           op, i, igi_device_name(g->device), ig_dtype_name(g->dtype),
                           igi_is_contiguous(g) ? "" : ", strided");
            break;
        }
        if (flag && g->device != dev) {
            st = igi_error(IG_ERR_DEVICE, "%s: gradients on more than one device", op);
            break;
        }
        if (!flag) {
            dev = g->device;
            if (!(be = IGI_BACKEND_WITH(op, dev, amp_unscale))) return ig_last_status();
            if (!(flag = igi_alloc(dev, sizeof(int)))) return igi_error(IG_ERR_NOMEM, "%s: out of device memory", op);
            st = be->memset_zero(flag, sizeof(int));
        }
        if (st == IG_OK)
            st = be->amp_unscale(op, (float *)igi_data(g), igi_numel(g->ndim, g->shape), (float)c.inv, flag);
    }
    if (flag) {
        int found = 0;
        if (st == IG_OK) st = be->memcpy_d2h(&found, flag, sizeof(int));
        if (found) c.found = true;
        igi_free(dev, flag, sizeof(int));
    }
    if (st != IG_OK) return st;
    s->unscaled = true;
    s->found_inf = c.found;
    s->opt = o;
    return IG_OK;
}

ig_status ig_grad_scaler_step(ig_grad_scaler *s, ig_optimizer *o) {
    const char *op = "ig_grad_scaler_step";
    if (!s) return igi_error_null(op, "s");
    if (!o) return igi_error_null(op, "o");
    if (s->unscaled && s->opt != o)
        return igi_error(IG_ERR_STATE, "%s: the gradients were unscaled for another optimizer", op);
    if (!s->unscaled) {
        ig_status st = ig_grad_scaler_unscale(s, o);
        if (st != IG_OK) return st;
    }
    s->unscaled = false;
    s->opt = NULL;
    if (s->found_inf) {
        /* Skip: parameters, optimizer state and its step count stay as they were. */
        s->skipped = true;
        s->scale *= s->o.backoff_factor;
        s->tracker = 0;
        return IG_OK;
    }
    s->skipped = false;
    ig_status st = ig_optim_step(o);
    if (st != IG_OK) return st;
    if (++s->tracker >= s->o.growth_interval) {
        double grown = s->scale * s->o.growth_factor;
        if (isfinite(grown)) s->scale = grown; /* as torch: never grow to inf */
        s->tracker = 0;
    }
    return IG_OK;
}

double ig_grad_scaler_get_scale(const ig_grad_scaler *s) { return s ? s->scale : NAN; }

bool ig_grad_scaler_skipped(const ig_grad_scaler *s) { return s && s->skipped; }

int64_t ig_grad_scaler_growth_tracker(const ig_grad_scaler *s) { return s ? s->tracker : 0; }

ig_status ig_grad_scaler_set_state(ig_grad_scaler *s, double scale, int64_t growth_tracker) {
    const char *op = "ig_grad_scaler_set_state";
    if (!s) return igi_error_null(op, "s");
    if (!(scale > 0.0 && isfinite(scale)))
        return igi_error(IG_ERR_ARG, "%s: scale must be finite and > 0 (got %g)", op, scale);
    if (growth_tracker < 0 || growth_tracker >= s->o.growth_interval)
        return igi_error(IG_ERR_ARG, "%s: growth_tracker must be in [0, %lld) (got %lld)", op,
                         (long long)s->o.growth_interval, (long long)growth_tracker);
    s->scale = scale;
    s->tracker = growth_tracker;
    return IG_OK;
}
