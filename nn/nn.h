/*
 * nn/nn.h — modules: layers with named parameters and buffers, containers, the model zoo,
 * initialisers, and PyTorch-compatible state dicts.
 *
 * A module is an opaque tree. Each node has a type ("Linear"), named parameters and buffers
 * registered in order, named children, a train/eval flag, and a forward function. State-dict
 * names and tensor layouts are PyTorch's for the equivalent torch model ("0.weight",
 * "layer1.0.conv1.weight", "1.running_mean", "1.num_batches_tracked"; Linear weight
 * [out,in]; Conv2d weight [out, in/groups, kh, kw]), in torch's order: a module's own
 * parameters, then its own buffers, then each child's entries.
 *
 * Ownership: constructors return a heap module the caller frees with ig_module_free (which
 * frees children, parameters and buffers). Adding a child or a tensor to a module transfers
 * ownership to the module, also when the call fails, so nesting constructor calls never
 * leaks. Module constructors return NULL with ig_last_error() set on failure, and accept
 * NULL children (propagating the first failure).
 *
 * Flat buffers: ig_module_flatten moves every parameter into one contiguous buffer and
 * gives each a gradient that is a view into a second one, so an optimizer step or a gradient
 * all-reduce touches two large buffers. Optimizer constructors flatten for you.
 */
#ifndef IGNIS_NN_NN_H
#define IGNIS_NN_NN_H

#include "../core/ops.h"
#include "../core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_module ig_module;

/* Forward of a module: x in, output out (a tensor made in the current scope or heap). */
typedef ig_tensor *(*ig_module_forward_fn)(ig_module *m, ig_tensor *x);


/* ---- generic modules ---------------------------------------------------------------- */

/* A module of the given type name whose forward is fn (NULL: a container without forward).
 * ctx is the caller's data, freed with free_ctx (may be NULL) when the module is freed. */
IG_API ig_module *ig_module_new(const char *type, ig_module_forward_fn fn, void *ctx,
                                void (*free_ctx)(void *));
IG_API void *ig_module_ctx(const ig_module *m);
/* Adds a child under name (unique among m's children and entries). m owns child after the
 * call, success or not, except when child already has a parent or is m or one of its
 * ancestors: that is refused (IG_ERR_ARG) and child stays where it was. */
IG_API ig_status ig_module_add_child(ig_module *m, const char *name, ig_module *child);
/* Registers a heap tensor as a parameter (float; requires_grad is set) or a buffer. m owns
 * t after the call, success or not. */
IG_API ig_status ig_module_add_param(ig_module *m, const char *name, ig_tensor *t);
IG_API ig_status ig_module_add_buffer(ig_module *m, const char *name, ig_tensor *t);
/* A direct child by name, or NULL. */
IG_API ig_module *ig_module_child(const ig_module *m, const char *name);
IG_API int ig_module_num_children(const ig_module *m);
IG_API ig_module *ig_module_child_at(const ig_module *m, int i);
/* A parameter or buffer by its state-dict name relative to m ("0.weight"), or NULL. */
IG_API ig_tensor *ig_module_get(const ig_module *m, const char *name);

IG_API void ig_module_free(ig_module *m);
IG_API const char *ig_module_type(const ig_module *m);
/* Runs the module. NULL x propagates; a module without forward is an error. */
IG_API ig_tensor *ig_module_forward(ig_module *m, ig_tensor *x);
/* Sets train (true) or eval (false) mode on m and all its descendants. */
IG_API void ig_module_train(ig_module *m, bool training);
IG_API bool ig_module_is_training(const ig_module *m);
/* Number of parameter elements (not buffers); a shared parameter counts once. */
IG_API int64_t ig_module_num_params(const ig_module *m);
/* Converts every float parameter and buffer of m's tree to dt in place (integer buffers
 * such as num_batches_tracked keep theirs; gradients are dropped), as torch's .double() /
 * .float(). dt must be a float dtype; m must not be flattened yet. */
IG_API ig_status ig_module_to_dtype(ig_module *m, ig_dtype dt);
/* Moves every parameter and buffer of m's tree to device dev in place (each tensor header,
 * and so every pointer to it, is kept; values are copied bit for bit; gradients are
 * dropped), as torch's .to(device). m must not be flattened yet (flatten after moving: the
 * flat buffers are made on the parameters' device). On error (no such device, out of
 * memory) the tensors already moved stay moved; move the module back or free it. */
IG_API ig_status ig_module_to(ig_module *m, ig_device dev);

/* ---- state dict ----------------------------------------------------------------------- */

/* Writes up to cap entries (parameters and buffers, torch's names and order) into out and
 * returns the total number (so a call with cap 0 sizes the array), or -1 on error. */
IG_API int ig_module_state_dict(ig_module *m, ig_named_tensor *out, int cap);
/* Parameters only, same conventions. */
IG_API int ig_module_named_parameters(ig_module *m, ig_named_tensor *out, int cap);
/* Copies src's tensors into m's by name. Every name, shape and dtype is checked before any
 * byte is copied, so on error m is untouched. strict: every entry of m must be present and
 * src must have no extra names. */
IG_API ig_status ig_module_load_state_dict(ig_module *m, const ig_named_tensor *src, int n,
                                           bool strict);

/* ---- flat parameter and gradient buffers ------------------------------------------------- */

/* Moves all parameters into one contiguous buffer (values kept) and attaches gradients that
 * are views into a second one. Idempotent. Parameters added afterwards are an error. */
IG_API ig_status ig_module_flatten(ig_module *m);
/* The 1-D flat parameter tensor (its grad is the flat gradient), or NULL if not flattened. */
IG_API ig_tensor *ig_module_flat_params(const ig_module *m);
IG_API ig_tensor *ig_module_flat_grads(const ig_module *m);
/* Zeroes every parameter's gradient. */
IG_API void ig_module_zero_grad(ig_module *m);

/* ---- layers --------------------------------------------------------------------------- */
/* Parameters get PyTorch's default initialisation from the default generator. */

IG_API ig_module *ig_nn_linear(int64_t in_features, int64_t out_features, bool bias);
/* p may be NULL (stride 1, no padding, dilation 1, groups 1). */
IG_API ig_module *ig_nn_conv2d(int64_t in_channels, int64_t out_channels, int kh, int kw,
                               const ig_conv2d_params *p, bool bias);
/* momentum 0.1, eps 1e-5, affine weight/bias, running stats tracked. */
IG_API ig_module *ig_nn_batchnorm1d(int64_t num_features);
IG_API ig_module *ig_nn_batchnorm2d(int64_t num_features);
IG_API ig_module *ig_nn_layernorm(int n_dims, const int64_t *normalized_shape, double eps);
IG_API ig_module *ig_nn_dropout(double p);
IG_API ig_module *ig_nn_maxpool2d(const ig_pool2d_params *p);
IG_API ig_module *ig_nn_avgpool2d(const ig_pool2d_params *p);
IG_API ig_module *ig_nn_adaptive_avgpool2d(int64_t oh, int64_t ow);
/* torch.nn.Flatten(start_dim, end_dim); torch's defaults are 1, -1. */
IG_API ig_module *ig_nn_flatten(int start_dim, int end_dim);
IG_API ig_module *ig_nn_embedding(int64_t num_embeddings, int64_t dim);
IG_API ig_module *ig_nn_relu(void);
IG_API ig_module *ig_nn_leaky_relu(double negative_slope);
IG_API ig_module *ig_nn_gelu(void);
IG_API ig_module *ig_nn_silu(void);
IG_API ig_module *ig_nn_sigmoid(void);
IG_API ig_module *ig_nn_tanh(void);
IG_API ig_module *ig_nn_softmax(int dim);
/* Children named "0" .. "n-1", run in order. Takes ownership of every child (NULL children
 * make it fail after freeing the others). */
IG_API ig_module *ig_nn_sequential(int n, ig_module *const *children);
IG_API ig_status ig_nn_sequential_append(ig_module *seq, ig_module *child);
/* The ResNet basic block of the zoo: relu(b2(c2(relu(b1(c1(x))))) + shortcut(x)) with 3x3
 * convs without bias; the shortcut is the identity, or Sequential(1x1 conv stride s, BN)
 * named "sc" when stride != 1 or channels change. Children: c1 b1 c2 b2 [sc]. */
IG_API ig_module *ig_nn_basic_block(int64_t in_channels, int64_t out_channels, int stride);

/* ---- initialisers (in place, no autograd; torch.nn.init semantics) ----------------------- */

typedef enum ig_fan_mode { IG_FAN_IN = 0, IG_FAN_OUT } ig_fan_mode;

IG_API ig_status ig_init_uniform(ig_tensor *t, double lo, double hi);
IG_API ig_status ig_init_normal(ig_tensor *t, double mean, double std);
IG_API ig_status ig_init_constant(ig_tensor *t, double value);
/* gain for leaky_relu with slope a: sqrt(2 / (1 + a^2)); a = 0 is relu's sqrt(2). */
IG_API ig_status ig_init_kaiming_uniform(ig_tensor *t, double a, ig_fan_mode mode);
IG_API ig_status ig_init_kaiming_normal(ig_tensor *t, double a, ig_fan_mode mode);
IG_API ig_status ig_init_xavier_uniform(ig_tensor *t, double gain);
IG_API ig_status ig_init_xavier_normal(ig_tensor *t, double gain);

/* ---- model zoo --------------------------------------------------------------------------- */

/* "mlp", "cnn", "resnet8", "resnet20", "resnet56" for [channels, height, width] inputs and
 * num_classes outputs: the architectures of the reference PyTorch models (same layers,
 * same state-dict names). NULL and an error for an unknown name or bad sizes. */
IG_API ig_module *ig_model_create(const char *name, int64_t channels, int64_t height,
                                  int64_t width, int64_t num_classes);
/* Names of the zoo models, NULL-terminated. */
IG_API const char *const *ig_model_names(void);

/* A model from a plain-text description (README.md, "Model files"): one layer per line
 * ("conv 32 3 pad=1", "maxpool 2", "flatten", "linear classes"), '#' comments, blank lines
 * ignored. Input channels and features are inferred by tracking the shape of a
 * [channels,height,width] image through the layers; the word 'classes' is num_classes; the
 * model must end in [num_classes]. The result is a Sequential with torch's nn.Sequential
 * state-dict names ("0.weight", ...). Errors name source (NULL: "<text>") and the line:
 * "ig_model_from_text: net.txt:3: unknown layer 'convv'". */
IG_API ig_module *ig_model_from_text(const char *text, const char *source, int64_t channels,
                                     int64_t height, int64_t width, int64_t num_classes);
/* The same, reading the description from a file. Either way a description is at most 1 MiB. */
IG_API ig_module *ig_model_from_file(const char *path, int64_t channels, int64_t height,
                                     int64_t width, int64_t num_classes);
/* A zoo model when name_or_path is one of ig_model_names(), else the model file at that path
 * (the CLI's --model NAME|FILE). */
IG_API ig_module *ig_model_build(const char *name_or_path, int64_t channels, int64_t height,
                                 int64_t width, int64_t num_classes);

typedef struct ig_model_stats {
    int64_t params;          /* parameter elements */
    int64_t flops_per_image; /* forward FLOPs for one image (2 per multiply-add) */
} ig_model_stats;

/* Runs one [1,C,H,W] forward in eval mode (no grad) and writes a table to f (may be NULL):
 * each layer's path, type, output shape and parameter count, then the totals. */
IG_API ig_status ig_model_summary(ig_module *m, int64_t channels, int64_t height, int64_t width,
                                  FILE *f, ig_model_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
