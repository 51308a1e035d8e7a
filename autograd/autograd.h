/*
 * autograd/autograd.h — reverse-mode automatic differentiation (define-by-run).
 *
 * Ops record a node when grad mode is on and an input requires grad. ig_backward walks the
 * recorded graph from a tensor back to its leaves in reverse creation order and adds the
 * gradients into each leaf's .grad (a heap tensor owned by the leaf). Temporaries made
 * during backward live in a scope of their own and are gone when it returns.
 */
#ifndef IGNIS_AUTOGRAD_AUTOGRAD_H
#define IGNIS_AUTOGRAD_AUTOGRAD_H

#include "../core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a leaf as needing gradients (float dtypes only). IG_ERR_ARG on a non-leaf. */
IG_API ig_status ig_set_requires_grad(ig_tensor *t, bool requires_grad);
IG_API bool ig_requires_grad(const ig_tensor *t);
/* True for tensors not produced by a recorded op. */
IG_API bool ig_is_leaf(const ig_tensor *t);
/* A view of t's data that is cut from the graph. */
IG_API ig_tensor *ig_detach(ig_tensor *t);

/* Grad mode is per thread and nests: inside begin/end no op records a node. */
IG_API void ig_no_grad_begin(void);
IG_API void ig_no_grad_end(void);
IG_API bool ig_is_grad_enabled(void);

/* Autocast (torch.autocast semantics), per thread like grad mode.
 * IG_AMP_BF16: ig_matmul (and so linear layers, whose bias then joins in bf16) and
 * ig_conv2d convert their f32 operands to IG_BF16 (recorded ig_to_dtype nodes: master
 * weights keep f32 values and get f32 gradients) and return bf16, computed with f32
 * accumulation and rounded once. The ops after them take bf16 and stay bf16 (batch norm
 * with f32 parameters and running statistics, relu and the other elementwise ops, pools,
 * dropout, reductions); softmax, log-softmax, layer norm and the losses compute in f32 and
 * return f32. Gradients of bf16 tensors are bf16.
 * IG_AMP_FP16 (no fp16 dtype): ig_matmul and ig_conv2d on f32 tensors round both GEMM
 * operands to IEEE half (round to nearest, ties to even; overflow to inf, subnormals kept),
 * multiply them with f32 accumulation and return f32; everything else stays f32. An op
 * records the mode on its autograd node, and its backward GEMMs round their operands the
 * same way whatever the mode is when ig_backward runs (ig_backward itself runs with
 * autocast off). On the CPU the rounding is emulated exactly (for checking numerics).
 * f64 tensors are never converted or rounded.
 * ig_autocast_set returns the previous mode (restore it when done); an invalid mode is
 * IG_ERR_ARG ("ig_autocast_set: ...") and leaves the mode unchanged. */
IG_API ig_amp ig_autocast_set(ig_amp mode);
IG_API ig_amp ig_autocast_get(void);
/* "off", "bf16", "fp16" (NULL for an invalid mode). */
IG_API const char *ig_amp_name(ig_amp mode);

/* The accumulated gradient of a leaf (NULL before the first backward). Owned by t. */
IG_API ig_tensor *ig_grad(const ig_tensor *t);
/* Gives leaf t a caller-made gradient buffer (same shape and dtype; e.g. a view into a flat
 * gradient buffer); gradients then accumulate into it. t takes a reference. */
IG_API ig_status ig_set_grad(ig_tensor *t, ig_tensor *grad);
/* Sets t's gradient to zeros (keeps the buffer). No-op if it has none. */
IG_API void ig_zero_grad(ig_tensor *t);

/* Backpropagates from t. seed is d(out)/d(t) with t's shape; NULL means ones and then t
 * must have one element. Gradients add into the leaves' .grad. The graph stays recorded
 * (it is freed with its scope), so backward may be called again. */
IG_API ig_status ig_backward(ig_tensor *t, ig_tensor *seed);

/* A function of n input tensors for ig_gradcheck. Returns its output (any shape). */
typedef ig_tensor *(*ig_gradcheck_fn)(ig_tensor *const *inputs, int n, void *ctx);

typedef struct ig_gradcheck_opts {
    double eps;  /* finite-difference step, default 1e-6 */
    double atol; /* default 1e-5 */
    double rtol; /* default 1e-3 */
} ig_gradcheck_opts;

/* Compares the analytic Jacobian of fn (from backward) with central differences, as
 * torch.autograd.gradcheck does: |analytic - numeric| <= atol + rtol * |numeric| for every
 * entry. Inputs must be f64; those with requires_grad are checked. opts may be NULL.
 * IG_OK, or IG_ERR_GRADCHECK with a message naming the input, element and both values. */
IG_API ig_status ig_gradcheck(ig_gradcheck_fn fn, ig_tensor *const *inputs, int n, void *ctx,
                              const ig_gradcheck_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
