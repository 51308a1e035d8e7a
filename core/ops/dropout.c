/*
 * core/ops/dropout.c — inverted dropout.
 *
 * When training with 0 < p, element i of x (row-major order of its logical shape) is
 * dropped when the i-th 32-bit Philox word of a fresh reservation from the default
 * generator, read as u = word / 2^32 in [0, 1), is below p; kept elements are scaled by
 * 1/(1-p) so the expectation is unchanged. The draws depend only on the generator state,
 * so ig_manual_seed makes a forward reproducible. The keep mask (u8, x's shape) is saved
 * on the node and the backward multiplies the gradient by the same mask * scale.
 * Otherwise (eval, or p == 0) the op is the identity and returns a new reference to x.
 * On a device the mask comes from the backend's Philox kernel over the same reservation,
 * so it is the CPU's mask bit for bit (cuda/dropout.cu).
 */
#include <math.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

typedef struct {
    ig_dtype dt;
    double scale;
} mask_ctx;

/* out = a * (mask ? scale : 0); operands: out, a, mask (u8). */
static void mask_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
    const mask_ctx *c = vctx;
    if (c->dt == IG_F32) {
        float k = (float)c->scale;
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * s[0]) = *(const float *)(p[1] + i * s[1]) * (*(const uint8_t *)(p[2] + i * s[2]) ? k : 0.0f);
    } else {
        for (int64_t i = 0; i < n; i++)
            *(double *)(p[0] + i * s[0]) =
                *(const double *)(p[1] + i * s[1]) * (*(const uint8_t *)(p[2] + i * s[2]) ? c->scale : 0.0);
    }
}

/* A new tensor a * mask * scale (a: any strides, mask: u8 of a's shape). */
static ig_tensor *apply_mask(const char *op, ig_tensor *a, ig_tensor *mask, double scale) {
    const igi_backend *be = NULL;
    if (a->device != IG_CPU && (!(be = IGI_BACKEND_WITH(op, a->device, mask_apply)) ||
                                !igi_check_same_device_any(op, a, mask)))
        return NULL;
    ig_tensor *out = igi_tensor_new(op, a->ndim, a->shape, a->dtype, a->device);
    if (!out) return NULL;
    mask_ctx c = {a->dtype, scale};
    ig_tensor *ops[3] = {out, a, mask};
    if (be) {
        igi_ew e;
        if (igi_ew_make(ops, 3, &e) && be->mask_apply(op, &e, scale) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
        return out;
    }
    igi_iter_run_parallel(ops, 3, mask_loop, &c);
    return out;
}

/* saved[0]: the keep mask; dattr[0]: the scale of kept elements. */
static ig_status dropout_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    gin[0] = apply_mask(igi_op_name(node->op), g, node->saved[0], node->dattr[0]);
    return gin[0] ? IG_OK : ig_last_status();
}

ig_tensor *ig_dropout(ig_tensor *x, double p, bool training) {
    const char *op = "ig_dropout";
    if (!x) {
        igi_error_null(op, "x");
        return NULL;
    }
    if (!(p >= 0.0 && p <= 1.0)) { /* also rejects NaN */
        igi_error(IG_ERR_ARG, "%s: p must be in [0, 1], got %g", op, p);
        return NULL;
    }
    if (!igi_check_float_bf16(op, x)) return NULL;
    if (!training || p == 0.0) return ig_tensor_retain(x);
    IGI_BF16_VIA_F32(x, IGI_BF16_EW, ig_dropout(IGI_W, p, training));
    const igi_backend *be = NULL;
    if (x->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, x->device, dropout_mask))) return NULL;

    ig_tensor *mask = igi_tensor_new(op, x->ndim, x->shape, IG_U8, x->device);
    if (!mask) return NULL;
    int64_t n = igi_numel(x->ndim, x->shape);
    uint64_t seed, start = igi_rng_reserve(n, &seed);
    uint8_t *m = (uint8_t *)igi_data(mask);
    double threshold = p * 4294967296.0; /* drop when word < p * 2^32, i.e. u < p */
    if (be && be->dropout_mask(op, n, seed, start, threshold, m) != IG_OK) {
        ig_tensor_free(mask);
        return NULL;
    }
    for (int64_t blk = 0; !be && blk * 4 < n; blk++) {
        uint32_t w[4];
        ig_philox4x32(seed, 0, start + (uint64_t)blk, w);
        for (int64_t j = 0; j < 4 && blk * 4 + j < n; j++) m[blk * 4 + j] = (double)w[j] >= threshold;
    }
    double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
    ig_tensor *out = igi_finish(IGI_OP_DROPOUT, dropout_backward, apply_mask(op, x, mask, scale), &x, 1);
    if (out && out->node) {
        igi_node_save(out->node, 0, mask);
        out->node->dattr[0] = scale;
    }
    ig_tensor_free(mask); /* the node holds its own reference (heap) or the scope does */
    return out;
}
