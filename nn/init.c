/*
 * nn/init.c — in-place initialisers with torch.nn.init's semantics.
 *
 * Fans (torch's _calculate_fan_in_and_fan_out): for a tensor of >= 2 dims,
 * fan_in = size(1) * receptive, fan_out = size(0) * receptive, receptive = product of
 * dims 2.. (1 for a matrix). Kaiming: gain = sqrt(2 / (1 + a^2)), std = gain / sqrt(fan),
 * uniform bound = gain * sqrt(3 / fan) (fan chosen by mode). Xavier: std =
 * gain * sqrt(2 / (fan_in + fan_out)), uniform bound = gain * sqrt(6 / (fan_in + fan_out)).
 *
 * Random values come from the default generator (ig_rand / ig_randn, drawn in t's dtype),
 * are scaled in a contiguous scratch tensor and written with ig_copy_, so t may have any
 * strides and no autograd is recorded. Zero-element tensors are left as they are.
 */
#include <math.h>

#include "module_impl.h"

/* Fills t with lo + (hi - lo) * U[0,1) (normal false) or mean + std * N(0,1) (normal true). */
static ig_status fill_random(const char *op, ig_tensor *t, bool normal, double a, double b) {
    if (!t) return igi_error_null(op, "t");
    if (!ig_dtype_is_float(t->dtype))
        return igi_error(IG_ERR_DTYPE, "%s: tensor must be float32 or float64, got %s", op,
                         ig_dtype_name(t->dtype));
    if (!isfinite(a) || !isfinite(b))
        return igi_error(IG_ERR_ARG, "%s: non-finite parameters (%g, %g)", op, a, b);
    int64_t n = igi_numel(t->ndim, t->shape);
    if (n == 0) return IG_OK;
    igi_heap_mode(1); /* scratch freed right here, even inside a scope */
    ig_tensor *r = normal ? ig_randn(t->ndim, t->shape, t->dtype) : ig_rand(t->ndim, t->shape, t->dtype);
    igi_heap_mode(-1);
    if (!r) return ig_last_status();
    /* normal: x = a + b*z (mean a, std b); uniform: x = a + (b - a)*u on [a, b). */
    double scale = normal ? b : b - a;
    if (t->dtype == IG_F32) {
        float *p = (float *)igi_data(r);
        for (int64_t i = 0; i < n; i++) p[i] = (float)(a + scale * (double)p[i]);
    } else {
        double *p = (double *)igi_data(r);
        for (int64_t i = 0; i < n; i++) p[i] = a + scale * p[i];
    }
    ig_status st = ig_copy_(t, r);
    ig_tensor_free(r);
    return st;
}

ig_status ig_init_uniform(ig_tensor *t, double lo, double hi) {
    if (t && !(lo <= hi))
        return igi_error(IG_ERR_ARG, "ig_init_uniform: lo (%g) must not exceed hi (%g)", lo, hi);
    return fill_random("ig_init_uniform", t, false, lo, hi);
}

ig_status ig_init_normal(ig_tensor *t, double mean, double std) {
    if (t && !(std >= 0))
        return igi_error(IG_ERR_ARG, "ig_init_normal: std (%g) must be >= 0", std);
    return fill_random("ig_init_normal", t, true, mean, std);
}

ig_status ig_init_constant(ig_tensor *t, double value) {
    if (!t) return igi_error_null("ig_init_constant", "t");
    return ig_fill_(t, value);
}

/* fan_in and fan_out of t, or an error naming op for tensors of < 2 dims. */
static ig_status fans(const char *op, const ig_tensor *t, double *fan_in, double *fan_out) {
    if (t->ndim < 2)
        return igi_error(IG_ERR_SHAPE, "%s: fan in and fan out need a tensor of at least 2 dims, got %d",
                         op, t->ndim);
    double receptive = 1;
    for (int i = 2; i < t->ndim; i++) receptive *= (double)t->shape[i];
    *fan_in = (double)t->shape[1] * receptive;
    *fan_out = (double)t->shape[0] * receptive;
    return IG_OK;
}

/* The kaiming std gain / sqrt(fan) for slope a and mode; an error for a zero fan. */
static ig_status kaiming_std(const char *op, ig_tensor *t, double a, ig_fan_mode mode, double *std) {
    if (!t) return igi_error_null(op, "t");
    if (mode != IG_FAN_IN && mode != IG_FAN_OUT)
        return igi_error(IG_ERR_ARG, "%s: mode must be IG_FAN_IN or IG_FAN_OUT, got %d", op, (int)mode);
    double fi = 0, fo = 0;
    ig_status st = fans(op, t, &fi, &fo);
    if (st != IG_OK) return st;
    double fan = mode == IG_FAN_IN ? fi : fo;
    if (fan == 0 && igi_numel(t->ndim, t->shape) == 0) {
        *std = 0; /* zero-element tensor: nothing to draw */
        return IG_OK;
    }
    double gain = sqrt(2.0 / (1.0 + a * a));
    *std = gain / sqrt(fan);
    return IG_OK;
}

ig_status ig_init_kaiming_uniform(ig_tensor *t, double a, ig_fan_mode mode) {
    static const char *op = "ig_init_kaiming_uniform";
    double std = 0;
    ig_status st = kaiming_std(op, t, a, mode, &std);
    if (st != IG_OK) return st;
    double bound = sqrt(3.0) * std; /* uniform on [-b, b] has std b / sqrt(3) */
    return fill_random(op, t, false, -bound, bound);
}

ig_status ig_init_kaiming_normal(ig_tensor *t, double a, ig_fan_mode mode) {
    static const char *op = "ig_init_kaiming_normal";
    double std = 0;
    ig_status st = kaiming_std(op, t, a, mode, &std);
    if (st != IG_OK) return st;
    return fill_random(op, t, true, 0.0, std);
}

static ig_status xavier_std(const char *op, ig_tensor *t, double gain, double *std) {
    if (!t) return igi_error_null(op, "t");
    double fi = 0, fo = 0;
    ig_status st = fans(op, t, &fi, &fo);
    if (st != IG_OK) return st;
    *std = fi + fo > 0 ? gain * sqrt(2.0 / (fi + fo)) : 0.0;
    return IG_OK;
}

ig_status ig_init_xavier_uniform(ig_tensor *t, double gain) {
    static const char *op = "ig_init_xavier_uniform";
    double std = 0;
    ig_status st = xavier_std(op, t, gain, &std);
    if (st != IG_OK) return st;
    double bound = sqrt(3.0) * std;
    return fill_random(op, t, false, -bound, bound);
}

ig_status ig_init_xavier_normal(ig_tensor *t, double gain) {
    static const char *op = "ig_init_xavier_normal";
    double std = 0;
    ig_status st = xavier_std(op, t, gain, &std);
    if (st != IG_OK) return st;
    return fill_random(op, t, true, 0.0, std);
}
