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

#ifdef __cplusplus
}
#endif

#endif
