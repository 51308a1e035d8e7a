/*
 * autograd/gradcheck.c — ig_gradcheck: analytic Jacobians from ig_backward against central
 * differences, with torch.autograd.gradcheck's tolerances (eps 1e-6, atol 1e-5, rtol 1e-3).
 *
 * The numeric Jacobian perturbs each element of each checked input by +-eps in place and
 * re-evaluates fn; the analytic one runs one backward per output element with a one-hot
 * seed. Both are O(inputs x outputs) evaluations: for small test tensors.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor_impl.h"
#include "autograd.h"

/* Address of the element with flat row-major index i of t's logical shape. */
static double *elem_ptr(ig_tensor *t, int64_t i) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->strides[d];
        i /= t->shape[d];
    }
    return (double *)t->storage->data + off;
}

/* Element j of t (f64) as a double, on any device. */
static double elem_get(ig_tensor *t, int64_t j) {
    return t->device == IG_CPU ? *elem_ptr(t, j) : ig_tensor_get(t, j);
}

static ig_status elem_set(ig_tensor *t, int64_t j, double v) {
    if (t->device != IG_CPU) return igi_tensor_set(t, j, v);
    *elem_ptr(t, j) = v;
    return IG_OK;
}

/* Evaluates fn in the current scope and copies its output into out[0..n_out). */
static ig_status eval_into(ig_gradcheck_fn fn, ig_tensor *const *inputs, int n, void *ctx,
                           double *out, int64_t n_out) {
    ig_tensor *y = fn(inputs, n, ctx);
    if (!y) return ig_last_status() != IG_OK ? ig_last_status() : igi_error(IG_ERR_ARG, "ig_gradcheck: fn returned NULL");
    if (igi_numel(y->ndim, y->shape) != n_out)
        return igi_error(IG_ERR_SHAPE, "ig_gradcheck: fn's output changed size between calls");
    return ig_tensor_to_buffer(y, IG_F64, out, n_out);
}

ig_status ig_gradcheck(ig_gradcheck_fn fn, ig_tensor *const *inputs, int n, void *ctx,
                       const ig_gradcheck_opts *opts) {
    if (!fn) return igi_error_null("ig_gradcheck", "fn");
    if (!inputs || n <= 0) return igi_error(IG_ERR_ARG, "ig_gradcheck: no inputs");
    for (int k = 0; k < n; k++) {
        if (!inputs[k]) return igi_error_null("ig_gradcheck", "inputs[k]");
        if (inputs[k]->requires_grad && inputs[k]->dtype != IG_F64)
            return igi_error(IG_ERR_DTYPE, "ig_gradcheck: input %d is %s; gradcheck needs float64", k,
                             ig_dtype_name(inputs[k]->dtype));
        if (inputs[k]->requires_grad && inputs[k]->node)
            return igi_error(IG_ERR_ARG, "ig_gradcheck: input %d is not a leaf", k);
    }
    double eps = opts && opts->eps > 0 ? opts->eps : 1e-6;
    double atol = opts && opts->atol > 0 ? opts->atol : 1e-5;
    double rtol = opts && opts->rtol > 0 ? opts->rtol : 1e-3;

    ig_status st = IG_OK;
    int64_t n_out;
    {
        ig_scope *s = ig_scope_begin();
        if (!s) return ig_last_status();
        ig_tensor *y = fn(inputs, n, ctx);
        if (!y) {
            ig_scope_end(s);
            return ig_last_status() != IG_OK ? ig_last_status() : igi_error(IG_ERR_ARG, "ig_gradcheck: fn returned NULL");
        }
        n_out = igi_numel(y->ndim, y->shape);
        bool f64 = y->dtype == IG_F64;
        ig_scope_end(s);
        if (!f64) return igi_error(IG_ERR_DTYPE, "ig_gradcheck: fn's output is not float64");
    }
    double *yp = malloc(sizeof(double) * (size_t)(n_out ? n_out : 1));
    double *ym = malloc(sizeof(double) * (size_t)(n_out ? n_out : 1));
    if (!yp || !ym) {
        free(yp);
        free(ym);
        return igi_error(IG_ERR_NOMEM, "ig_gradcheck: out of memory");
    }
    ig_tensor *saved_grads[64];
    if (n > 64) {
        free(yp);
        free(ym);
        return igi_error(IG_ERR_ARG, "ig_gradcheck: at most 64 inputs");
    }
    for (int k = 0; k < n; k++) {
        saved_grads[k] = inputs[k]->grad;
        inputs[k]->grad = NULL;
    }

    for (int k = 0; k < n && st == IG_OK; k++) {
        ig_tensor *x = inputs[k];
        if (!x->requires_grad) continue;
        int64_t nx = igi_numel(x->ndim, x->shape);
        double *num = malloc(sizeof(double) * (size_t)(nx * n_out > 0 ? nx * n_out : 1));
        if (!num) {
            st = igi_error(IG_ERR_NOMEM, "ig_gradcheck: out of memory");
            break;
        }
        /* Numeric: column j of the Jacobian from +-eps on element j. */
        ig_no_grad_begin();
        for (int64_t j = 0; j < nx && st == IG_OK; j++) {
            double v = elem_get(x, j);
            ig_scope *s = ig_scope_begin();
            st = elem_set(x, j, v + eps);
            if (st == IG_OK) st = eval_into(fn, inputs, n, ctx, yp, n_out);
            if (st == IG_OK) st = elem_set(x, j, v - eps);
            if (st == IG_OK) st = eval_into(fn, inputs, n, ctx, ym, n_out);
            ig_status restore = elem_set(x, j, v);
            if (st == IG_OK) st = restore;
            ig_scope_end(s);
            for (int64_t o = 0; o < n_out && st == IG_OK; o++) num[j * n_out + o] = (yp[o] - ym[o]) / (2 * eps);
        }
        ig_no_grad_end();
        /* Analytic: row o from backward with a one-hot seed on output o. */
        for (int64_t o = 0; o < n_out && st == IG_OK; o++) {
            ig_scope *s = ig_scope_begin();
            if (x->grad) ig_fill_(x->grad, 0.0);
            ig_tensor *y = fn(inputs, n, ctx);
            if (!y) {
                st = ig_last_status();
                ig_scope_end(s);
                break;
            }
            bool connected = igi_needs_grad(y);
            if (connected) {
                ig_tensor *seed = ig_zeros(y->ndim, y->shape, IG_F64);
                if (seed) ((double *)igi_data(seed))[o] = 1.0;
                if (seed && y->device != IG_CPU) seed = ig_to(seed, y->device);
                if (!seed) st = ig_last_status();
                else st = ig_backward(y, seed);
            }
            for (int64_t j = 0; j < nx && st == IG_OK; j++) {
                double a = (connected && x->grad) ? elem_get(x->grad, j) : 0.0;
                double nu = num[j * n_out + o];
                if (!(fabs(a - nu) <= atol + rtol * fabs(nu))) {
                    st = igi_error(IG_ERR_GRADCHECK,
                                   "ig_gradcheck: input %d element %lld, output element %lld: analytic %.10g vs numeric %.10g",
                                   k, (long long)j, (long long)o, a, nu);
                }
            }
            ig_scope_end(s);
        }
        free(num);
        ig_tensor_free(x->grad);
        x->grad = NULL;
    }
    for (int k = 0; k < n; k++) {
        ig_tensor_free(inputs[k]->grad);
        inputs[k]->grad = saved_grads[k];
    }
    free(yp);
    free(ym);
    return st;
}
