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
