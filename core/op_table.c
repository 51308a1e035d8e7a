/*
 * core/op_table.c — the op table: one entry per enum igi_op, used for messages and by the
 * test that checks every op is named. The static_assert keeps it complete: adding an op to
 * the enum without a row here fails the build.
 */
#include <assert.h>

#include "tensor_impl.h"

static const char *const op_names[] = {
    [IGI_OP_NONE] = "none",
    [IGI_OP_VIEW] = "ig_view",
    [IGI_OP_PERMUTE] = "ig_permute",
    [IGI_OP_SLICE] = "ig_slice",
    [IGI_OP_EXPAND] = "ig_expand",
    [IGI_OP_CONTIGUOUS] = "ig_contiguous",
    [IGI_OP_TO_DTYPE] = "ig_to_dtype",
    [IGI_OP_TO_DEVICE] = "ig_to",
    [IGI_OP_SELECT] = "ig_select",
    [IGI_OP_ADD] = "ig_add",
    [IGI_OP_SUB] = "ig_sub",
    [IGI_OP_MUL] = "ig_mul",
    [IGI_OP_DIV] = "ig_div",
    [IGI_OP_ADD_SCALAR] = "ig_add_scalar",
    [IGI_OP_MUL_SCALAR] = "ig_mul_scalar",
    [IGI_OP_WHERE] = "ig_where",
    [IGI_OP_NEG] = "ig_neg",
    [IGI_OP_POW] = "ig_pow",
    [IGI_OP_EXP] = "ig_exp",
    [IGI_OP_LOG] = "ig_log",
    [IGI_OP_SQRT] = "ig_sqrt",
    [IGI_OP_ABS] = "ig_abs",
    [IGI_OP_CLAMP] = "ig_clamp",
    [IGI_OP_RELU] = "ig_relu",
    [IGI_OP_LEAKY_RELU] = "ig_leaky_relu",
    [IGI_OP_SIGMOID] = "ig_sigmoid",
    [IGI_OP_TANH] = "ig_tanh",
    [IGI_OP_GELU] = "ig_gelu",
    [IGI_OP_SILU] = "ig_silu",
    [IGI_OP_SUM] = "ig_sum",
    [IGI_OP_MEAN] = "ig_mean",
    [IGI_OP_VAR] = "ig_var",
    [IGI_OP_MAX] = "ig_max",
    [IGI_OP_MIN] = "ig_min",
    [IGI_OP_MATMUL] = "ig_matmul",
    [IGI_OP_SOFTMAX] = "ig_softmax",
    [IGI_OP_LOG_SOFTMAX] = "ig_log_softmax",
    [IGI_OP_CAT] = "ig_cat",
    [IGI_OP_STACK] = "ig_stack",
    [IGI_OP_INDEX_SELECT] = "ig_index_select",
    [IGI_OP_GATHER] = "ig_gather",
    [IGI_OP_CONV2D] = "ig_conv2d",
    [IGI_OP_MAX_POOL2D] = "ig_max_pool2d",
    [IGI_OP_AVG_POOL2D] = "ig_avg_pool2d",
    [IGI_OP_ADAPTIVE_AVG_POOL2D] = "ig_adaptive_avg_pool2d",
    [IGI_OP_BATCH_NORM] = "ig_batch_norm",
    [IGI_OP_LAYER_NORM] = "ig_layer_norm",
    [IGI_OP_DROPOUT] = "ig_dropout",
    [IGI_OP_EMBEDDING] = "ig_embedding",
    [IGI_OP_CROSS_ENTROPY] = "ig_cross_entropy",
    [IGI_OP_NLL_LOSS] = "ig_nll_loss",
    [IGI_OP_MSE_LOSS] = "ig_mse_loss",
    [IGI_OP_L1_LOSS] = "ig_l1_loss",
    [IGI_OP_SMOOTH_L1_LOSS] = "ig_smooth_l1_loss",
    [IGI_OP_BCE_WITH_LOGITS] = "ig_bce_with_logits",
};

static_assert(sizeof op_names / sizeof op_names[0] == IGI_OP_COUNT, "op table size");

const char *igi_op_name(int op) {
    if (op < 0 || op >= IGI_OP_COUNT || !op_names[op]) return "unknown op";
    return op_names[op];
}
