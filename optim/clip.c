/*
 * optim/clip.c — gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
 *
 * Gradients may have any strides (a gradient set with ig_set_grad can be a view), so both
 * functions run on the strided iterator. The joint norm is accumulated in double whatever
 * the gradients' dtype. Parameters without a gradient are skipped.
 */
#include <math.h>
#include <stdio.h>

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
        if (g->device != IG_CPU) {
            igi_error(IG_ERR_DEVICE, "%s: the gradient of %s is not on the CPU", op, argname);
            return false;
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
    norm_ctx c = {IG_F32, norm_type, 0.0, inf};
    for (int i = 0; i < n; i++) {
        ig_tensor *g = params[i]->grad;
        if (!g) continue;
        c.dt = g->dtype;
        ig_tensor *ops[1] = {g};
        igi_iter_run(ops, 1, norm_loop, &c);
    }
    double total = inf ? c.acc : norm_type == 2.0 ? sqrt(c.acc) : norm_type == 1.0 ? c.acc
                                                                                    : pow(c.acc, 1.0 / norm_type);
    double coef = max_norm / (total + 1e-6);
    /* torch multiplies by min(coef, 1); skipping the multiply by 1 is the same. A NaN norm
     * gives a NaN coefficient, which (as in torch) is applied. */
    if (!(coef >= 1.0)) {
        for (int i = 0; i < n; i++) {
            ig_tensor *g = params[i]->grad;
            if (!g) continue;
            scale_ctx sc = {g->dtype, coef, 0.0};
            ig_tensor *ops[1] = {g};
            igi_iter_run(ops, 1, scale_loop, &sc);
        }
    }
    return total;
}

ig_status ig_clip_grad_value(ig_tensor *const *params, int n, double clip) {
    const char *op = "ig_clip_grad_value";
    if (!check_list(op, params, n)) return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_ARG;
    if (!(clip >= 0.0)) return igi_error(IG_ERR_ARG, "%s: clip must be >= 0 (got %g)", op, clip);
    for (int i = 0; i < n; i++) {
        ig_tensor *g = params[i]->grad;
        if (!g) continue;
        scale_ctx sc = {g->dtype, -clip, clip};
        ig_tensor *ops[1] = {g};
        igi_iter_run(ops, 1, clamp_loop, &sc);
    }
    return IG_OK;
}
