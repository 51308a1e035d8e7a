/*
 * core/ops/unary.c — elementwise unary ops: neg (more to come in this file: pow, exp, log,
 * sqrt, abs, clamp, relu, leaky_relu, sigmoid, tanh, gelu, silu).
 */
#include "../tensor_impl.h"

static void neg_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
    ig_dtype dt = *(const ig_dtype *)ctx;
    switch (dt) {
    case IG_F32:
        for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) = -*(const float *)(p[1] + i * s[1]);
        break;
    case IG_F64:
        for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) = -*(const double *)(p[1] + i * s[1]);
        break;
    case IG_I32:
        for (int64_t i = 0; i < n; i++)
            *(int32_t *)(p[0] + i * s[0]) = (int32_t)(0u - (uint32_t)*(const int32_t *)(p[1] + i * s[1]));
        break;
    case IG_I64:
        for (int64_t i = 0; i < n; i++)
            *(int64_t *)(p[0] + i * s[0]) = (int64_t)(0u - (uint64_t)*(const int64_t *)(p[1] + i * s[1]));
        break;
    default:
        for (int64_t i = 0; i < n; i++) *(uint8_t *)(p[0] + i * s[0]) = (uint8_t)(0u - *(const uint8_t *)(p[1] + i * s[1]));
        break;
    }
}

static ig_status neg_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    (void)n;
    gin[0] = ig_neg(g);
    return gin[0] ? IG_OK : ig_last_status();
}

ig_tensor *ig_neg(ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_neg", "t");
        return NULL;
    }
    if (t->device != IG_CPU) {
        igi_error(IG_ERR_DEVICE, "ig_neg: device not supported in this build");
        return NULL;
    }
    ig_tensor *out = igi_tensor_new("ig_neg", t->ndim, t->shape, t->dtype, t->device);
    if (!out) return NULL;
    ig_tensor *ops[2] = {out, t};
    igi_iter_run(ops, 2, neg_loop, &t->dtype);
    return igi_finish(IGI_OP_NEG, neg_backward, out, &t, 1);
}
