/*
 * core/ops.h — the differentiable tensor operations of ignis.
 *
 * Every op validates its arguments, computes its output shape, allocates the result (in
 * the current scope, or on the heap when no scope is open), runs the kernel for the
 * tensors' device and, when grad mode is on and an input requires grad, records an
 * autograd node. On error an op returns NULL and ig_last_error() names the op and the
 * shapes, e.g. "ig_matmul: inner dimensions differ: [64,784] x [512,256]".
 *
 * Binary ops broadcast as NumPy does and need both inputs of the same dtype and device.
 * Math ops (exp, log, sigmoid, ...) need float dtypes; arithmetic also takes integers.
 */
#ifndef IGNIS_CORE_OPS_H
#define IGNIS_CORE_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise binary (broadcasting) --------------------------------------------- */
IG_API ig_tensor *ig_add(ig_tensor *a, ig_tensor *b);
IG_API ig_tensor *ig_sub(ig_tensor *a, ig_tensor *b);
IG_API ig_tensor *ig_mul(ig_tensor *a, ig_tensor *b);
IG_API ig_tensor *ig_div(ig_tensor *a, ig_tensor *b);
/* a + s and a * s. On integer tensors an integral s wraps as ig_add/ig_mul do; a
 * fractional s is applied in double and the result truncated toward zero (saturating). */
IG_API ig_tensor *ig_add_scalar(ig_tensor *a, double s);
IG_API ig_tensor *ig_mul_scalar(ig_tensor *a, double s);
/* cond (u8 or any dtype, nonzero = true) ? a : b, all three broadcast together. */
IG_API ig_tensor *ig_where(ig_tensor *cond, ig_tensor *a, ig_tensor *b);
/* Comparisons give u8 masks (not differentiable). */
IG_API ig_tensor *ig_eq(ig_tensor *a, ig_tensor *b);
IG_API ig_tensor *ig_gt(ig_tensor *a, ig_tensor *b);
IG_API ig_tensor *ig_lt(ig_tensor *a, ig_tensor *b);

/* ---- elementwise unary ------------------------------------------------------------- */
IG_API ig_tensor *ig_neg(ig_tensor *t);
IG_API ig_tensor *ig_pow(ig_tensor *t, double exponent);
IG_API ig_tensor *ig_exp(ig_tensor *t);
IG_API ig_tensor *ig_log(ig_tensor *t);
IG_API ig_tensor *ig_sqrt(ig_tensor *t);
IG_API ig_tensor *ig_abs(ig_tensor *t);
/* Clamp to [lo, hi]; pass -INFINITY / INFINITY for a one-sided clamp. */
IG_API ig_tensor *ig_clamp(ig_tensor *t, double lo, double hi);
IG_API ig_tensor *ig_relu(ig_tensor *t);
IG_API ig_tensor *ig_leaky_relu(ig_tensor *t, double negative_slope);
IG_API ig_tensor *ig_sigmoid(ig_tensor *t);
IG_API ig_tensor *ig_tanh(ig_tensor *t);
/* Exact GELU: x * Phi(x) with the normal CDF via erf. */
IG_API ig_tensor *ig_gelu(ig_tensor *t);
IG_API ig_tensor *ig_silu(ig_tensor *t);

/* ---- reductions -------------------------------------------------------------------- */
/* dims lists ndims dims to reduce (negative allowed, no repeats); ndims == 0 reduces all.
 * keepdim keeps reduced dims as size 1. */
IG_API ig_tensor *ig_sum(ig_tensor *t, int ndims, const int *dims, bool keepdim);
IG_API ig_tensor *ig_mean(ig_tensor *t, int ndims, const int *dims, bool keepdim);
/* Variance with the given correction (1 = unbiased, as torch.var's default; 0 = population). */
IG_API ig_tensor *ig_var(ig_tensor *t, int ndims, const int *dims, int64_t correction, bool keepdim);
/* Max/min values over dims; the gradient goes to the first extreme element of each slice.
 * Reducing over a zero-size dim is an error. */
IG_API ig_tensor *ig_max(ig_tensor *t, int ndims, const int *dims, bool keepdim);
IG_API ig_tensor *ig_min(ig_tensor *t, int ndims, const int *dims, bool keepdim);
/* Index (int64) of the first maximum along dim. */
IG_API ig_tensor *ig_argmax(ig_tensor *t, int dim, bool keepdim);
IG_API ig_tensor *ig_argmin(ig_tensor *t, int dim, bool keepdim);

/* ---- linear algebra ---------------------------------------------------------------- */
/* torch.matmul semantics: 1-D x 1-D dot; 2-D x 2-D; 1-D operands promoted and the added
 * dim removed; batched with broadcast batch dims. f32/f64 through BLAS; transposed views
 * are passed to BLAS as transposes, not copied. */
IG_API ig_tensor *ig_matmul(ig_tensor *a, ig_tensor *b);

/* ---- softmax ----------------------------------------------------------------------- */
IG_API ig_tensor *ig_softmax(ig_tensor *t, int dim);
IG_API ig_tensor *ig_log_softmax(ig_tensor *t, int dim);

/* ---- joining and indexing ---------------------------------------------------------- */
IG_API ig_tensor *ig_cat(ig_tensor *const *ts, int n, int dim);
IG_API ig_tensor *ig_stack(ig_tensor *const *ts, int n, int dim);
/* Rows of t along dim picked by a 1-D int64/int32 index. */
IG_API ig_tensor *ig_index_select(ig_tensor *t, int dim, ig_tensor *index);
/* out[i][j] = t[index[i][j]][j] for dim 0 etc. (torch.gather); index has t's ndim. */
IG_API ig_tensor *ig_gather(ig_tensor *t, int dim, ig_tensor *index);
/* Integer classes -> int64 one-hot with a trailing dim of num_classes (-1: max + 1). */
IG_API ig_tensor *ig_one_hot(ig_tensor *t, int64_t num_classes);

/* ---- neural-network functions (torch.nn.functional) ---------------------------------- */
/* Shapes: x [N,C,H,W] (NCHW), weights in PyTorch's layouts. Zero fields of the parameter
 * structs mean the default, so &(ig_conv2d_params){.padding = {1, 1}} or NULL work. */

typedef struct ig_conv2d_params {
    int stride[2];   /* default 1 */
    int padding[2];  /* default 0 (zeros) */
    int dilation[2]; /* default 1 */
    int groups;      /* default 1 */
} ig_conv2d_params;

/* x [N,C,H,W], w [O, C/groups, kh, kw], b [O] or NULL -> [N,O,Ho,Wo] with
 * Ho = (H + 2*pad - dil*(kh-1) - 1) / stride + 1. */
IG_API ig_tensor *ig_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p);

typedef struct ig_pool2d_params {
    int kernel[2];   /* required */
    int stride[2];   /* default: kernel */
    int padding[2];  /* default 0; at most half the kernel */
    bool ceil_mode;  /* default false */
    bool exclude_padding; /* avg pool: false counts padded zeros, as torch's count_include_pad=True */
} ig_pool2d_params;

/* Padding counts as -inf for max pooling. Gradient goes to the first max of each window. */
IG_API ig_tensor *ig_max_pool2d(ig_tensor *x, const ig_pool2d_params *p);
IG_API ig_tensor *ig_avg_pool2d(ig_tensor *x, const ig_pool2d_params *p);
/* Output [N,C,oh,ow]; bins as torch: start = floor(i*H/oh), end = ceil((i+1)*H/oh). */
IG_API ig_tensor *ig_adaptive_avg_pool2d(ig_tensor *x, int64_t oh, int64_t ow);

/* Batch norm over x [N,C], [N,C,L] or [N,C,H,W] per channel C. training: normalise with the
 * batch's mean and biased variance and, if running_mean/var are given, update them in place
 * (r = (1-momentum)*r + momentum*batch, running_var with the unbiased variance); eval:
 * normalise with the running stats. weight/bias [C] may be NULL. */
IG_API ig_tensor *ig_batch_norm(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var,
                                ig_tensor *weight, ig_tensor *bias, bool training,
                                double momentum, double eps);
/* Normalises over the last n_dims dims (whose sizes must equal normalized_shape); weight
 * and bias have that shape or are NULL. */
IG_API ig_tensor *ig_layer_norm(ig_tensor *x, int n_dims, const int64_t *normalized_shape,
                                ig_tensor *weight, ig_tensor *bias, double eps);
/* Zeroes each element with probability p and scales the rest by 1/(1-p) when training;
 * otherwise (or when p == 0) returns a new reference to x (ig_tensor_retain: a heap x must
 * then be freed once more). Random choices come from the default generator. */
IG_API ig_tensor *ig_dropout(ig_tensor *x, double p, bool training);
/* Rows of weight [num, dim] picked by integer indices of any shape -> [..., dim]. */
IG_API ig_tensor *ig_embedding(ig_tensor *indices, ig_tensor *weight);

/* ---- losses ------------------------------------------------------------------------ */

typedef enum ig_reduction {
    IG_REDUCTION_MEAN = 0, /* the default */
    IG_REDUCTION_SUM,
    IG_REDUCTION_NONE
} ig_reduction;

typedef struct ig_ce_params {
    ig_reduction reduction;
    bool use_ignore_index;  /* when true, targets equal to ignore_index count for nothing */
    int64_t ignore_index;
    double label_smoothing; /* in [0, 1] */
} ig_ce_params;

/* Cross-entropy from logits [N,C] (or [N,C,d...], or unbatched [C]) and int64/int32 class
 * indices [N] (or [N,d...], or 0-dim), as torch.nn.functional.cross_entropy; mean divides by
 * the number of targets not ignored (NaN if there are none, as torch); none gives the
 * target's shape. Fused log-softmax + NLL. A target outside [0, C) that is not ignored is
 * an error. */
IG_API ig_tensor *ig_cross_entropy(ig_tensor *logits, ig_tensor *target, const ig_ce_params *p);
/* NLL from log-probabilities, same shapes and options (label_smoothing must be 0). */
IG_API ig_tensor *ig_nll_loss(ig_tensor *logp, ig_tensor *target, const ig_ce_params *p);
IG_API ig_tensor *ig_mse_loss(ig_tensor *input, ig_tensor *target, ig_reduction r);
IG_API ig_tensor *ig_l1_loss(ig_tensor *input, ig_tensor *target, ig_reduction r);
/* Huber-like: 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta (beta > 0; default 1 if 0:
 * unlike torch, beta = 0 is not pure L1 here, use ig_l1_loss; negative beta is an error). */
IG_API ig_tensor *ig_smooth_l1_loss(ig_tensor *input, ig_tensor *target, ig_reduction r, double beta);
/* Binary cross-entropy on logits, numerically stable: max(x,0) - x*y + log(1 + exp(-|x|)). */
IG_API ig_tensor *ig_bce_with_logits(ig_tensor *logits, ig_tensor *target, ig_reduction r);

#ifdef __cplusplus
}
#endif

#endif
