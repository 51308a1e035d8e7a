/*
 * nn/stubs_tmp.c — TEMPORARY: DELETE THIS FILE AT MERGE.
 *
 * Placeholders for the functional ops that nn/layers.c calls and that other branches
 * implement in core/ops/ (conv, pool, norm, dropout, embedding). They exist only so the
 * nnmod branch links on its own; each fails with IG_ERR_STATE naming itself.
 */
#include "../core/tensor_impl.h"

#define IGI_STUB(name)                                                                    \
    do {                                                                                  \
        igi_error(IG_ERR_STATE, "%s: not implemented yet", name);                        \
        return NULL;                                                                      \
    } while (0)

ig_tensor *ig_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p) {
    (void)x, (void)w, (void)b, (void)p;
    IGI_STUB("ig_conv2d");
}

ig_tensor *ig_max_pool2d(ig_tensor *x, const ig_pool2d_params *p) {
    (void)x, (void)p;
    IGI_STUB("ig_max_pool2d");
}

ig_tensor *ig_avg_pool2d(ig_tensor *x, const ig_pool2d_params *p) {
    (void)x, (void)p;
    IGI_STUB("ig_avg_pool2d");
}

ig_tensor *ig_adaptive_avg_pool2d(ig_tensor *x, int64_t oh, int64_t ow) {
    (void)x, (void)oh, (void)ow;
    IGI_STUB("ig_adaptive_avg_pool2d");
}

ig_tensor *ig_batch_norm(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var,
                         ig_tensor *weight, ig_tensor *bias, bool training, double momentum,
                         double eps) {
    (void)x, (void)running_mean, (void)running_var, (void)weight, (void)bias, (void)training,
        (void)momentum, (void)eps;
    IGI_STUB("ig_batch_norm");
}

ig_tensor *ig_layer_norm(ig_tensor *x, int n_dims, const int64_t *normalized_shape,
                         ig_tensor *weight, ig_tensor *bias, double eps) {
    (void)x, (void)n_dims, (void)normalized_shape, (void)weight, (void)bias, (void)eps;
    IGI_STUB("ig_layer_norm");
}

ig_tensor *ig_dropout(ig_tensor *x, double p, bool training) {
    (void)x, (void)p, (void)training;
    IGI_STUB("ig_dropout");
}

ig_tensor *ig_embedding(ig_tensor *indices, ig_tensor *weight) {
    (void)indices, (void)weight;
    IGI_STUB("ig_embedding");
}
