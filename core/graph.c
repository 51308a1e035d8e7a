/*
 * core/graph.c — recording autograd nodes as ops run, and the per-thread grad mode.
 *
 * This is the tape half of autograd that ops need; the engine that walks the tape
 * (ig_backward) and the public grad-mode calls are in autograd/. A node is bump-allocated
 * in the current scope's arena together with its input array, or malloc'd when no scope
 * is open (then its output, a heap tensor, owns it and frees it).
 */
#include <string.h>

#include "tensor_impl.h"

static _Thread_local int no_grad_depth;
static _Thread_local uint64_t node_seq;

bool igi_grad_enabled(void) { return no_grad_depth == 0; }

void igi_set_grad_enabled(bool on) { no_grad_depth = on ? 0 : 1; }

int igi_no_grad_depth_add(int delta) {
    no_grad_depth += delta;
    if (no_grad_depth < 0) no_grad_depth = 0;
    return no_grad_depth;
}

bool igi_should_record(ig_tensor *const *inputs, int n) {
    if (no_grad_depth) return false;
    for (int i = 0; i < n; i++)
        if (igi_needs_grad(inputs[i])) return true;
    return false;
}

igi_node *igi_record(int op, igi_backward_fn backward, ig_tensor *out, ig_tensor *const *inputs,
                     int n_inputs) {
    size_t bytes = sizeof(igi_node) + sizeof(ig_tensor *) * (size_t)n_inputs;
    bool heap = !out->scoped;
    igi_node *node = heap ? malloc(bytes) : igi_scope_alloc(bytes);
    if (!node) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory recording the autograd graph", igi_op_name(op));
        return NULL;
    }
    memset(node, 0, sizeof *node);
    node->op = op;
    node->backward = backward;
    node->seq = ++node_seq;
    node->out = out;
    node->heap = heap;
    node->n_inputs = n_inputs;
    node->inputs = (ig_tensor **)(node + 1);
    for (int i = 0; i < n_inputs; i++) {
        node->inputs[i] = inputs[i];
        ig_tensor_retain(inputs[i]); /* no-op for scoped tensors */
    }
    out->node = node;
    out->requires_grad = true;
    return node;
}

ig_tensor *igi_finish(int op, igi_backward_fn backward, ig_tensor *out, ig_tensor *const *inputs,
                      int n_inputs) {
    if (!out) return NULL;
    if (igi_should_record(inputs, n_inputs) && !igi_record(op, backward, out, inputs, n_inputs)) {
        ig_tensor_free(out);
        return NULL;
    }
    return out;
}

void igi_node_save(igi_node *node, int slot, ig_tensor *t) {
    IG_ASSERT(slot >= 0 && slot < IGI_NODE_SAVED && node->saved[slot] == NULL);
    if (t == node->out) {
        node->saved[slot] = t;
        node->saved_weak |= (uint8_t)(1u << slot);
        return;
    }
    node->saved[slot] = ig_tensor_retain(t);
}

void igi_node_release(igi_node *node) {
    for (int i = 0; i < node->n_inputs; i++) ig_tensor_free(node->inputs[i]);
    for (int i = 0; i < IGI_NODE_SAVED; i++)
        if (!(node->saved_weak & (1u << i))) ig_tensor_free(node->saved[i]);
    if (node->grad_accum) ig_tensor_free(node->grad_accum);
    if (node->heap) free(node);
}
