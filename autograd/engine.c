/*
 * autograd/engine.c — ig_backward and the leaf-facing autograd calls (requires_grad,
 * detach, grad buffers, grad mode).
 *
 * Backward collects every node reachable from the output, orders them by decreasing
 * creation number (a valid reverse topological order: a node is always created after its
 * inputs' nodes), and runs each node's backward on the gradient accumulated for its output.
 * Input gradients go to the input's node (summed when a tensor feeds several ops) or, for
 * leaves that require grad, are added into the leaf's .grad in place. Everything made on
 * the way lives in a scope opened here and closed before returning.
 *
 * Grad-ready hooks (igi_set_grad_ready_hook, for data-parallel gradient all-reduce): before
 * running, each hooked leaf counts its incoming edges among the collected nodes; every
 * processed node (also one that received no gradient) retires its edges, and the hook
 * fires when a leaf's count reaches zero, i.e. right after its last contribution.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/backend_impl.h"
#include "../core/tensor_impl.h"
#include "autograd.h"

/* ---- leaves and grad mode --------------------------------------------------------------- */

ig_status ig_set_requires_grad(ig_tensor *t, bool requires_grad) {
    if (!t) return igi_error_null("ig_set_requires_grad", "t");
    if (t->node) {
        if (requires_grad) return IG_OK; /* already differentiable */
        return igi_error(IG_ERR_ARG,
                         "ig_set_requires_grad: tensor is not a leaf (use ig_detach to cut it from the graph)");
    }
    if (requires_grad && !ig_dtype_is_float(t->dtype))
        return igi_error(IG_ERR_DTYPE, "ig_set_requires_grad: only float tensors can require grad, got %s",
                         ig_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return IG_OK;
}

bool ig_requires_grad(const ig_tensor *t) { return t && t->requires_grad; }

bool ig_is_leaf(const ig_tensor *t) { return t && !t->node; }

ig_tensor *ig_detach(ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_detach", "t");
        return NULL;
    }
    return igi_tensor_view("ig_detach", t, t->ndim, t->shape, t->strides, t->offset);
}

void ig_no_grad_begin(void) { igi_no_grad_depth_add(1); }
void ig_no_grad_end(void) { igi_no_grad_depth_add(-1); }
bool ig_is_grad_enabled(void) { return igi_grad_enabled(); }

const char *ig_amp_name(ig_amp mode) {
    switch (mode) {
    case IG_AMP_OFF: return "off";
    case IG_AMP_BF16: return "bf16";
    case IG_AMP_FP16: return "fp16";
    }
    return NULL;
}

ig_amp ig_autocast_set(ig_amp mode) {
    if (!ig_amp_name(mode)) {
        igi_error(IG_ERR_ARG, "ig_autocast_set: mode %d is not IG_AMP_OFF, IG_AMP_BF16 or IG_AMP_FP16", (int)mode);
        return igi_autocast_mode();
    }
    return igi_autocast_exchange(mode);
}

ig_amp ig_autocast_get(void) { return igi_autocast_mode(); }

ig_tensor *ig_grad(const ig_tensor *t) { return t ? t->grad : NULL; }

ig_status ig_set_grad(ig_tensor *t, ig_tensor *grad) {
    if (!t) return igi_error_null("ig_set_grad", "t");
    if (grad) {
        if (grad->ndim != t->ndim || memcmp(grad->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) ||
            grad->dtype != t->dtype) {
            char b1[160], b2[160];
            return igi_error(IG_ERR_SHAPE, "ig_set_grad: gradient %s %s does not match tensor %s %s",
                             ig_shape_str(grad, b1, sizeof b1), ig_dtype_name(grad->dtype),
                             ig_shape_str(t, b2, sizeof b2), ig_dtype_name(t->dtype));
        }
        if (grad->device != t->device)
            return igi_error(IG_ERR_DEVICE, "ig_set_grad: gradient is on %s, tensor on %s",
                             igi_device_name(grad->device), igi_device_name(t->device));
        if (grad->scoped)
            return igi_error(IG_ERR_ARG, "ig_set_grad: the gradient must be a heap tensor (made outside any scope or with ig_keep)");
    }
    ig_tensor_retain(grad);
    ig_tensor_free(t->grad);
    t->grad = grad;
    return IG_OK;
}

void ig_zero_grad(ig_tensor *t) {
    if (t && t->grad) ig_fill_(t->grad, 0.0);
}

/* ---- accumulation ----------------------------------------------------------------------- */

IGI_HOT static void add_into_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
    ig_dtype dt = *(ig_dtype *)ctx;
    size_t es = ig_dtype_size(dt);
    if (s[0] == (int64_t)es && s[1] == (int64_t)es) {
        /* contiguous runs (the common case): a loop the compiler vectorises */
        if (dt == IG_F32) {
            float *d = (float *)p[0];
            const float *g = (const float *)p[1];
            for (int64_t i = 0; i < n; i++) d[i] += g[i];
        } else {
            double *d = (double *)p[0];
            const double *g = (const double *)p[1];
            for (int64_t i = 0; i < n; i++) d[i] += g[i];
        }
        return;
    }
    if (dt == IG_F32) {
        for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) += *(const float *)(p[1] + i * s[1]);
    } else {
        for (int64_t i = 0; i < n; i++) *(double *)(p[0] + i * s[0]) += *(const double *)(p[1] + i * s[1]);
    }
}

/* leaf->grad += g (creating it as a heap tensor on first use). */
static ig_status accumulate_leaf(ig_tensor *leaf, ig_tensor *g) {
    if (!leaf->grad) {
        igi_heap_mode(1);
        leaf->grad = ig_zeros_like(leaf); /* on the leaf's device */
        igi_heap_mode(-1);
        if (!leaf->grad) return ig_last_status();
    }
    if (leaf->grad->device != IG_CPU || g->device != IG_CPU || leaf->dtype == IG_BF16)
        return igi_add_into("ig_backward", leaf->grad, g);
    ig_dtype dt = leaf->dtype;
    ig_tensor *ops[2] = {leaf->grad, g};
    igi_iter_run_parallel(ops, 2, add_into_loop, &dt);
    return IG_OK;
}

/* ---- grad-ready hooks -------------------------------------------------------------------- */

ig_status igi_set_grad_ready_hook(ig_tensor *leaf, igi_grad_ready_fn fn, void *ctx) {
    if (!leaf) return igi_error_null("igi_set_grad_ready_hook", "leaf");
    if (leaf->node) return igi_error(IG_ERR_ARG, "igi_set_grad_ready_hook: tensor is not a leaf");
    if (!fn) {
        free(leaf->grad_hook);
        leaf->grad_hook = NULL;
        return IG_OK;
    }
    if (!leaf->grad_hook && !(leaf->grad_hook = calloc(1, sizeof *leaf->grad_hook)))
        return igi_error(IG_ERR_NOMEM, "igi_set_grad_ready_hook: out of memory");
    leaf->grad_hook->fn = fn;
    leaf->grad_hook->ctx = ctx;
    leaf->grad_hook->pass = 0;
    leaf->grad_hook->pending = 0;
    return IG_OK;
}

static _Thread_local uint64_t backward_pass;

static bool hooked_leaf(const ig_tensor *t) {
    return t && !t->node && t->requires_grad && t->grad_hook;
}

/* Counts each hooked leaf's incoming edges among nodes[0..count) for pass. True if any. */
static bool count_hook_edges(igi_node **nodes, size_t count, uint64_t pass) {
    bool any = false;
    for (size_t k = 0; k < count; k++)
        for (int i = 0; i < nodes[k]->n_inputs; i++) {
            ig_tensor *in = nodes[k]->inputs[i];
            if (!hooked_leaf(in)) continue;
            igi_grad_hook *h = in->grad_hook;
            if (h->pass != pass) {
                h->pass = pass;
                h->pending = 0;
            }
            h->pending++;
            any = true;
        }
    return any;
}

/* Node has been processed: retire its edges into hooked leaves, firing those now final. */
static void retire_hook_edges(igi_node *node, uint64_t pass) {
    for (int i = 0; i < node->n_inputs; i++) {
        ig_tensor *in = node->inputs[i];
        if (!hooked_leaf(in) || in->grad_hook->pass != pass) continue;
        IG_ASSERT(in->grad_hook->pending > 0);
        if (--in->grad_hook->pending == 0) in->grad_hook->fn(in, in->grad_hook->ctx);
    }
}

/* ---- traversal -------------------------------------------------------------------------- */

static _Thread_local igi_node **work_buf;
static _Thread_local size_t work_cap;
static _Thread_local uint32_t visit_epoch;

static bool work_reserve(size_t n) {
    if (n <= work_cap) return true;
    size_t cap = work_cap ? work_cap : 256;
    while (cap < n) cap *= 2;
    igi_node **nb = realloc(work_buf, cap * 2 * sizeof *nb); /* list + DFS stack */
    if (!nb) return false;
    work_buf = nb;
    work_cap = cap;
    return true;
}

static int by_seq_desc(const void *a, const void *b) {
    const igi_node *x = *(igi_node *const *)a, *y = *(igi_node *const *)b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Fills work_buf[0..count) with every node reachable from root. */
static ig_status collect(igi_node *root, size_t *count) {
    uint32_t epoch = ++visit_epoch;
    if (epoch == 0) epoch = ++visit_epoch;
    size_t n = 0, sp = 0;
    if (!work_reserve(16)) return igi_error(IG_ERR_NOMEM, "ig_backward: out of memory");
    root->visit_mark = epoch;
    work_buf[work_cap + sp++] = root;
    while (sp) {
        igi_node *node = work_buf[work_cap + --sp];
        work_buf[n++] = node;
        for (int i = 0; i < node->n_inputs; i++) {
            igi_node *in = node->inputs[i] ? node->inputs[i]->node : NULL;
            if (!in || in->visit_mark == epoch) continue;
            in->visit_mark = epoch;
            if (n + sp + 1 > work_cap) {
                /* Grow, keeping the list and the stack (which lives in the upper half). */
                size_t old = work_cap;
                igi_node **saved_stack = malloc((sp + 1) * sizeof *saved_stack);
                if (!saved_stack) return igi_error(IG_ERR_NOMEM, "ig_backward: out of memory");
                memcpy(saved_stack, work_buf + old, sp * sizeof *saved_stack);
                if (!work_reserve(old * 2)) {
                    free(saved_stack);
                    return igi_error(IG_ERR_NOMEM, "ig_backward: out of memory");
                }
                memcpy(work_buf + work_cap, saved_stack, sp * sizeof *saved_stack);
                free(saved_stack);
            }
            work_buf[work_cap + sp++] = in;
        }
    }
    *count = n;
    return IG_OK;
}

/* ---- early release of consumed gradients ---------------------------------------------------
 *
 * Every tensor made during ig_backward lives in its scope until it returns, so without
 * help the pass would hold all gradients at once (as much memory again as the saved
 * activations: for resnet20 at batch 256, hundreds of MiB). Tensors made by a node's
 * backward (and the sums of gradients) are marked grad_temp; refcount then counts the
 * grad_accum slots that hold them. A node's incoming gradient is released once its
 * backward has run, an input gradient once it has been added where it goes; when no slot
 * holds a grad_temp tensor any more its storage goes back to the caching allocator (views
 * of it keep the bytes alive through the storage's own refcount), and the next gradient of
 * that size reuses it. The header stays in the scope, without storage, until scope end.
 * Tensors not made here (a caller's seed, forward tensors passed through) are never
 * touched. */

/* Marks the tensors made since `head` (the scope's newest tensor then) as grad_temp. */
static void mark_grad_temps(ig_tensor *head) {
    for (ig_tensor *t = igi_scope_newest(); t && t != head; t = t->next) {
        t->grad_temp = true;
        t->refcount = 0;
    }
}

static void grad_hold(ig_tensor *t) {
    if (t && t->grad_temp) t->refcount++;
}

/* Drops one hold (if any) and the storage once nothing holds t. */
static void grad_drop(ig_tensor *t, bool held) {
    if (!t || !t->grad_temp) return;
    if (held) t->refcount--;
    if (t->refcount > 0) return;
    igi_storage_release(t->storage);
    t->storage = NULL;
}

static ig_status run_backward(ig_tensor *t, ig_tensor *seed) {
    uint64_t pass = ++backward_pass;
    if (!t->node) {
        ig_status st = accumulate_leaf(t, seed);
        if (st == IG_OK && hooked_leaf(t)) t->grad_hook->fn(t, t->grad_hook->ctx);
        return st;
    }
    size_t count = 0;
    ig_status st = collect(t->node, &count);
    if (st != IG_OK) return st;
    qsort(work_buf, count, sizeof *work_buf, by_seq_desc);
    bool hooks = count_hook_edges(work_buf, count, pass);
    t->node->grad_accum = seed;
    for (size_t k = 0; k < count && st == IG_OK; k++) {
        igi_node *node = work_buf[k];
        ig_tensor *g = node->grad_accum;
        if (!g) {
            if (hooks) retire_hook_edges(node, pass);
            continue;
        }
        ig_tensor **gin = igi_scope_alloc(sizeof(ig_tensor *) * (size_t)(node->n_inputs ? node->n_inputs : 1));
        if (!gin) {
            st = igi_error(IG_ERR_NOMEM, "ig_backward: out of memory");
            break;
        }
        memset(gin, 0, sizeof(ig_tensor *) * (size_t)node->n_inputs);
        ig_tensor *head = igi_scope_newest();
        st = node->backward(node, g, gin);
        mark_grad_temps(head);
        if (st != IG_OK) break;
        for (int i = 0; i < node->n_inputs && st == IG_OK; i++) {
            ig_tensor *in = node->inputs[i];
            if (!gin[i] || !igi_needs_grad(in)) continue;
            IG_ASSERT(gin[i]->ndim == in->ndim &&
                      memcmp(gin[i]->shape, in->shape, sizeof(int64_t) * (size_t)in->ndim) == 0);
            if (in->node) {
                igi_node *dst = in->node;
                if (!dst->grad_accum) {
                    dst->grad_accum = gin[i];
                    grad_hold(gin[i]);
                } else {
                    ig_tensor *old = dst->grad_accum, *h = igi_scope_newest();
                    if (!(dst->grad_accum = ig_add(old, gin[i]))) {
                        st = ig_last_status();
                    } else {
                        mark_grad_temps(h);
                        grad_hold(dst->grad_accum);
                    }
                    grad_drop(old, true);
                }
            } else if (in->requires_grad) {
                st = accumulate_leaf(in, gin[i]);
            }
        }
        if (hooks && st == IG_OK) retire_hook_edges(node, pass);
        /* This node's gradient and the input gradients no slot took are consumed. */
        node->grad_accum = NULL;
        grad_drop(g, true);
        for (int i = 0; i < node->n_inputs; i++) grad_drop(gin[i], false);
    }
    for (size_t k = 0; k < count; k++) work_buf[k]->grad_accum = NULL;
    return st;
}

ig_status ig_backward(ig_tensor *t, ig_tensor *seed) {
    if (!t) return igi_error_null("ig_backward", "t");
    if (!igi_needs_grad(t))
        return igi_error(IG_ERR_STATE, "ig_backward: tensor does not require grad (no input of its graph requires grad)");
    char b1[160], b2[160];
    if (seed) {
        if (seed->ndim != t->ndim || memcmp(seed->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) ||
            seed->dtype != t->dtype)
            return igi_error(IG_ERR_SHAPE, "ig_backward: seed %s %s does not match output %s %s",
                             ig_shape_str(seed, b1, sizeof b1), ig_dtype_name(seed->dtype),
                             ig_shape_str(t, b2, sizeof b2), ig_dtype_name(t->dtype));
        if (seed->device != t->device)
            return igi_error(IG_ERR_DEVICE, "ig_backward: seed is on %s, output on %s", igi_device_name(seed->device),
                             igi_device_name(t->device));
    } else if (igi_numel(t->ndim, t->shape) != 1) {
        return igi_error(IG_ERR_SHAPE, "ig_backward: output %s has more than one element; pass a seed gradient",
                         ig_shape_str(t, b1, sizeof b1));
    }
    ig_scope *s = ig_scope_begin();
    if (!s) return ig_last_status();
    int saved_depth = igi_no_grad_depth_add(0);
    igi_set_grad_enabled(false);
    /* Backward runs with autocast off: an op that ran under autocast restores its own mode
     * from its node (node->amp), so a backward called inside an autocast region rounds
     * exactly what the forward rounded and nothing else. */
    ig_amp saved_amp = igi_autocast_exchange(IG_AMP_OFF);
    ig_status st = IG_OK;
    ig_tensor *g = seed ? seed : ig_ones_like(t); /* on t's device */
    if (!g) st = ig_last_status();
    else st = run_backward(t, g);
    igi_no_grad_depth_add(saved_depth - igi_no_grad_depth_add(0));
    igi_autocast_exchange(saved_amp);
    ig_scope_end(s);
    return st;
}
