/*
 * nn/module_impl.h — the inside of a module, shared by the nn/ sources. Never installed.
 *
 * A module is a tree node:
 *  - type: a short name ("Linear", "Sequential"); forward: its function (NULL for a pure
 *    container); ctx + free_ctx: the layer's own settings (kernel sizes, eps, ...).
 *  - params / buffers: ordered (name, heap tensor) lists; the module holds one reference to
 *    each tensor. Names are local ("weight"); full state-dict names are built by walking
 *    the tree: own parameters, own buffers, then each child's entries (torch's order).
 *  - children: ordered (name, module) list; the module owns each child, whose parent
 *    pointer points back (a module has at most one parent, and the tree has no cycles).
 *  - training: the train/eval flag, set recursively by ig_module_train.
 *  - flat_params / flat_grads: set on the module ig_module_flatten was called on (1-D heap
 *    tensors over the two flat storages); flat_locked is set on it and every descendant,
 *    after which adding parameters or children is an error, so the flat storage always
 *    covers every parameter.
 *  - names: an intern table of the full names this module handed out from its state dict
 *    (ig_named_tensor.name must stay valid until the module is freed).
 * Local names are non-empty, contain no '.', and are unique among a module's params,
 * buffers and children together.
 */
#ifndef IGNIS_NN_MODULE_IMPL_H
#define IGNIS_NN_MODULE_IMPL_H

#include "../autograd/autograd.h"
#include "../core/tensor_impl.h"
#include "nn.h"

typedef struct igi_mod_entry {
    char *name;
    ig_tensor *tensor;
} igi_mod_entry;

typedef struct igi_mod_child {
    char *name;
    ig_module *module;
} igi_mod_child;

typedef struct igi_name_table {
    char **slots; /* open addressing; NULL = empty */
    size_t cap;   /* power of two, or 0 */
    size_t count;
} igi_name_table;

struct ig_module {
    char *type;
    ig_module_forward_fn forward;
    void *ctx;
    void (*free_ctx)(void *);

    igi_mod_entry *params;
    int n_params, cap_params;
    igi_mod_entry *buffers;
    int n_buffers, cap_buffers;
    igi_mod_child *children;
    int n_children, cap_children;

    ig_module *parent; /* the module that owns this one, NULL for a root */
    bool training;
    bool flat_locked;
    ig_tensor *flat_params; /* 1-D [total], requires grad, grad = flat_grads */
    ig_tensor *flat_grads;  /* 1-D [total] */

    igi_name_table names;
};

/* Direct child / own entry lookups that never set an error (for probing). */
ig_module *igi_module_find_child(const ig_module *m, const char *name);
ig_tensor *igi_module_find_entry(const ig_module *m, const char *name, bool *is_param);

/* A forward hook for this thread (NULL to remove): ig_module_forward calls it after every
 * successful forward, children before parents. Returns the previous hook via *prev. */
typedef void (*igi_forward_hook)(ig_module *m, ig_tensor *out, void *ctx);
void igi_module_set_forward_hook(igi_forward_hook hook, void *ctx, igi_forward_hook *prev_hook,
                                 void **prev_ctx);

/* Visits every parameter (params_only) or every state-dict entry of m in torch's order with
 * its full dotted name (valid only during the call). A shared tensor is visited once per
 * name unless dedup is set (then only at its first name). The visitor returns false to
 * stop (the walk then returns IG_ERR_STATE without setting an error). */
typedef bool (*igi_entry_visit)(void *ctx, const char *name, ig_tensor *t, bool is_param,
                                ig_module *owner);
ig_status igi_module_walk(ig_module *m, bool params_only, bool dedup, igi_entry_visit visit,
                          void *ctx);

/* Visits m and every descendant (pre-order) with its dotted path ("" for m itself). */
typedef void (*igi_module_visit)(void *ctx, const char *path, ig_module *mod);
ig_status igi_module_walk_modules(ig_module *m, igi_module_visit visit, void *ctx);

/* Sync BN (nn/layers.c): makes BatchNorm module m normalise with statistics over the
 * group sync spans (see igi_batch_norm_sync), or per process again with NULL. sync is not
 * owned and must outlive m's use with it. False if m is not a BatchNorm1d/2d module. */
bool igi_bn_set_sync(ig_module *m, const igi_bn_sync *sync);

/* Makes a heap tensor even inside an open scope (module state must outlive scopes). */
ig_tensor *igi_heap_zeros(int ndim, const int64_t *shape, ig_dtype dt);

#endif
