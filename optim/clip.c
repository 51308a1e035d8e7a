/*
 * optim/clip.c — gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
 *
 * Gradients may have any strides (a gradient set with ig_set_grad can be a view), so both
 * functions run on the strided iterator. The joint norm is accumulated in double whatever
 * the gradients' dtype. Parameters without a gradient are skipped. Gradients on a device
 * (all on the same one) go through ops instead ("gradients on a device" below).
 */
#include <math.h>
#include <stdio.h>

#include "../autograd/autograd.h"
#include "../core/backend_impl.h"
#include "optim_impl.h"

typedef struct norm_ctx {
    ig_dtype dt;
    double p;   /* norm type (finite p > 0) */
    double acc; /* sum of |g|^p, or max |g| when p is infinite */
    bool inf;
} norm_ctx;

static double load_abs(ig_dtype dt, const char *ptr) {
    return dt == IG_F32 ? fabs((double)*(const float *)ptr) : fabs(*(const double *)ptr);
}

static void norm_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx) {
    norm_ctx *c = vctx;
    const char *g = ptrs[0];
    double acc = c->acc;
    if (c->inf) {
        /* NaN propagates into the maximum (as torch's norm does). */
        for (int64_t i = 0; i < n; i++) {
            double a = load_abs(c->dt, g + i * strides[0]);
            if (a > acc || a != a) acc = a;
        }
    } else if (c->p == 2.0) {
        for (int64_t i = 0; i < n; i++) {
            double a = load_abs(c->dt, g + i * strides[0]);
            acc += a * a;
        }
    } else if (c->p == 1.0) {
        for (int64_t i = 0; i < n; i++) acc += load_abs(c->dt, g + i * strides[0]);
    } else {
        for (int64_t i = 0; i < n; i++) acc += pow(load_abs(c->dt, g + i * strides[0]), c->p);
    }
    c->acc = acc;
}

typedef struct scale_ctx {
    ig_dtype dt;
    double a, b; /* scale: g *= a; clamp: g = min(max(g, a), b) */
} scale_ctx;

static void scale_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx) {
    const scale_ctx *c = vctx;
    char *g = ptrs[0];
    if (c->dt == IG_F32) {
        float s = (float)c->a;
        for (int64_t i = 0; i < n; i++) *(float *)(g + i * strides[0]) *= s;
    } else {
        for (int64_t i = 0; i < n; i++) *(double *)(g + i * strides[0]) *= c->a;
    }
}

/* Clamps to [a, b]; NaN stays NaN (as torch.clamp). */
static void clamp_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx) {
    const scale_ctx *c = vctx;
    char *g = ptrs[0];
    if (c->dt == IG_F32) {
        float lo = (float)c->a, hi = (float)c->b;
        for (int64_t i = 0; i < n; i++) {
            float *x = (float *)(g + i * strides[0]);
            if (*x < lo) *x = lo;
            else if (*x > hi) *x = hi;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            double *x = (double *)(g + i * strides[0]);
            if (*x < c->a) *x = c->a;
            else if (*x > c->b) *x = c->b;
        }
    }
}

/* ---- gradients on a device --------------------------------------------------------------
 * The same norm, scaling and clamping through ops (abs, mul, pow, sum, max, clamp, copy_),
 * which run where the gradients live: one small read to the host per gradient for the
 * norm. The CPU keeps the loops above; the test hook sends CPU gradients this way too, so
 * the path is tested on machines without a GPU. */
static bool generic_forced;

bool igi_clip_force_generic(bool on) {
    bool was = generic_forced;
    generic_forced = on;
    return was;
}

static bool use_generic(ig_tensor *const *params, int n) {
    if (generic_forced) return true;
    for (int i = 0; i < n; i++)
        if (params[i]->grad && params[i]->grad->device != IG_CPU) return true;
    return false;
}

/* The generic path's ops run with autograd off inside a scope (their temporaries go at its
 * end); a failure's message gets op in front. */
static ig_scope *generic_begin(void) {
    ig_scope *sc = ig_scope_begin();
    ig_no_grad_begin();
    return sc;
}

static ig_status generic_end(ig_scope *sc, const char *op, bool failed) {
    char msg[400];
    ig_status st = failed ? ig_last_status() : IG_OK;
    if (failed) snprintf(msg, sizeof msg, "%s", ig_last_error());
    ig_no_grad_end();
    ig_scope_end(sc);
    return failed ? igi_error(st, "%s: %s", op, msg) : IG_OK;
}

/* *acc = the sum over the gradients of sum |g|^p, or their max |g| when inf. */
static ig_status generic_norm(const char *op, ig_tensor *const *params, int n, double p, bool inf, double *acc) {
    ig_scope *sc = generic_begin();
    bool failed = false;
    for (int i = 0; i < n && !failed; i++) {
        ig_tensor *g = params[i]->grad;
        if (!g || igi_numel(g->ndim, g->shape) == 0) continue;
        ig_tensor *a = ig_abs(g);
        ig_tensor *r = inf ? ig_max(a, 0, NULL, false)
                     : p == 2.0 ? ig_sum(ig_mul(a, a), 0, NULL, false)
                     : p == 1.0 ? ig_sum(a, 0, NULL, false)
                                : ig_sum(ig_pow(a, p), 0, NULL, false);
        if (!r) {
            failed = true;
            break;
        }
        double v = ig_item(r);
        if (!inf) *acc += v;
        else if (v > *acc || v != v) *acc = v;
    }
    return generic_end(sc, op, failed);
}

/* Every gradient g = g * a (clamp false) or clamp(g, a, b) (clamp true), in place. */
static ig_status generic_update(const char *op, ig_tensor *const *params, int n, bool clamp, double a, double b) {
    ig_scope *sc = generic_begin();
    bool failed = false;
    for (int i = 0; i < n && !failed; i++) {
        ig_tensor *g = params[i]->grad;
        if (!g) continue;
        ig_tensor *v = clamp ? ig_clamp(g, a, b) : ig_mul_scalar(g, a);
        failed = !v || ig_copy_(g, v) != IG_OK;
    }
    return generic_end(sc, op, failed);
}

/* Checks the list; returns false with an error naming op. */
static bool check_list(const char *op, ig_tensor *const *params, int n) {
    if (n < 0) {
        igi_error(IG_ERR_ARG, "%s: n must be >= 0 (got %d)", op, n);
        return false;
    }
    if (n > 0 && !params) {
        igi_error_null(op, "params");
        return false;
    }
    for (int i = 0; i < n; i++) {
        char argname[32];
        snprintf(argname, sizeof argname, "params[%d]", i);
        if (!params[i]) {
            igi_error_null(op, argname);
            return false;
        }
        const ig_tensor *g = params[i]->grad;
        if (!g) continue;
        for (int k = 0; k < i; k++) {
            const ig_tensor *h = params[k]->grad;
            if (h && h->device != g->device) {
                igi_error(IG_ERR_DEVICE, "%s: the gradients of params[%d] (%s) and %s (%s) are on different devices",
                          op, k, igi_device_name(h->device), argname, igi_device_name(g->device));
                return false;
            }
        }
        if (!ig_dtype_is_float(g->dtype)) {
            igi_error(IG_ERR_DTYPE, "%s: the gradient of %s has dtype %s", op, argname, ig_dtype_name(g->dtype));
            return false;
        }
    }
    return true;
}

double ig_clip_grad_norm(ig_tensor *const *params, int n, double max_norm, double norm_type) {
    const char *op = "ig_clip_grad_norm";
    if (!check_list(op, params, n)) return -1.0;
    if (!(max_norm >= 0.0)) {
        igi_error(IG_ERR_ARG, "%s: max_norm must be >= 0 (got %g)", op, max_norm);
        return -1.0;
    }
    bool inf = isinf(norm_type) && norm_type > 0;
    if (!inf && !(norm_type > 0.0 && isfinite(norm_type))) {
        igi_error(IG_ERR_ARG, "%s: norm_type must be > 0 or INFINITY (got %g)", op, norm_type);
        return -1.0;
    }
    /* One accumulator across all gradients: for p-norms the sum of |g|^p is the sum over
     * the per-tensor sums, the same as torch's norm of the per-tensor norms. */
    bool generic = use_generic(params, n);
    norm_ctx c = {IG_F32, norm_type, 0.0, inf};
    if (generic) {
        if (generic_norm(op, params, n, norm_type, inf, &c.acc) != IG_OK) return -1.0;
    } else {
        for (int i = 0; i < n; i++) {
            ig_tensor *g = params[i]->grad;
            if (!g) continue;
            c.dt = g->dtype;
            ig_tensor *ops[1] = {g};
            igi_iter_run(ops, 1, norm_loop, &c);
        }
    }
    double total = inf ? c.acc : norm_type == 2.0 ? sqrt(c.acc) : norm_type == 1.0 ? c.acc
                                                                                    : pow(c.acc, 1.0 / norm_type);
    double coef = max_norm / (total + 1e-6);
    /* torch multiplies by min(coef, 1); skipping the multiply by 1 is the same. A NaN norm
     * gives a NaN coefficient, which (as in torch) is applied. */
    if (coef >= 1.0) return total;
    if (generic) return generic_update(op, params, n, false, coef, 0.0) == IG_OK ? total : -1.0;
    for (int i = 0; i < n; i++) {
        ig_tensor *g = params[i]->grad;
        if (!g) continue;
        scale_ctx sc = {g->dtype, coef, 0.0};
        ig_tensor *ops[1] = {g};
        igi_iter_run(ops, 1, scale_loop, &sc);
    }
    return total;
}

ig_status ig_clip_grad_value(ig_tensor *const *params, int n, double clip) {
    const char *op = "ig_clip_grad_value";
    if (!check_list(op, params, n)) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_ARG;
    if (!(clip >= 0.0)) return igi_error(IG_ERR_ARG, "%s: clip must be >= 0 (got %g)", op, clip);
    if (use_generic(params, n)) return generic_update(op, params, n, true, -clip, clip);
    for (int i = 0; i < n; i++) {
        ig_tensor *g = params[i]->grad;
        if (!g) continue;
        scale_ctx sc = {g->dtype, -clip, clip};
        ig_tensor *ops[1] = {g};
        igi_iter_run(ops, 1, clamp_loop, &sc);
    }
    return IG_OK;
}
