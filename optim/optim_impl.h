/*
 * optim/optim_impl.h — the inside of an optimizer, shared by the optim/ sources. Never installed.
 *
 * An optimizer holds a reference to each parameter and, per parameter, up to
 * IGI_OPTIM_SLOTS state tensors (moments, buffers, a step count). State is created lazily
 * by the first step that finds the parameter with a gradient (as torch does), or by
 * ig_optim_state_set when a checkpoint is restored before any step. Every state tensor is a
 * heap tensor (made in igi_heap_mode), so a step taken while a scope is open leaves nothing
 * in that scope. A global "step" entry (0-dim f64) counts ig_optim_step calls.
 *
 * Slot meanings by kind (NULL name = slot unused by that kind):
 *   sgd:        0 momentum_buffer
 *   adam/adamw: 0 step, 1 exp_avg, 2 exp_avg_sq, 3 max_exp_avg_sq (amsgrad)
 *   rmsprop:    0 step, 1 square_avg, 2 momentum_buffer (momentum > 0), 3 grad_avg (centered)
 * A "step" slot is a 0-dim f64 tensor with the parameter's own step count, as torch keeps
 * one per parameter (a parameter skipped for lack of a gradient does not advance it); the
 * other slots have the parameter's shape and dtype.
 */
#ifndef IGNIS_OPTIM_OPTIM_IMPL_H
#define IGNIS_OPTIM_OPTIM_IMPL_H

#include "../core/tensor_impl.h"
#include "optim.h"

#define IGI_OPTIM_SLOTS 4

typedef enum igi_optim_kind {
    IGI_OPTIM_SGD = 0,
    IGI_OPTIM_ADAM,
    IGI_OPTIM_ADAMW,
    IGI_OPTIM_RMSPROP
} igi_optim_kind;

/* One parameter's state: slot tensors (heap, or NULL before creation) and their names
 * ("<index>.<slot name>", malloc'd with the slot). */
typedef struct igi_param_state {
    ig_tensor *slot[IGI_OPTIM_SLOTS];
    char *name[IGI_OPTIM_SLOTS];
} igi_param_state;

struct ig_optimizer {
    igi_optim_kind kind;
    int n;                  /* number of parameters */
    ig_tensor **params;     /* n references (retained when heap tensors) */
    igi_param_state *state; /* n entries */
    ig_tensor *step;        /* global "step" (0-dim f64, heap), NULL before the first step */
    double lr;
    ig_sgd_opts sgd;        /* the options of the optimizer's kind; lr lives in .lr above */
    ig_adam_opts adam;
    ig_rmsprop_opts rmsprop;
};

/* Test hook (optim/clip.c): true sends CPU gradients through the ops path that device
 * gradients take; returns the previous setting. Not thread-safe. */
bool igi_clip_force_generic(bool on);

/* The data of parameter i's state slot k, or NULL before the slot exists. */
void *igi_optim_slot_data(ig_optimizer *o, int i, int k);
/* Advances parameter i's own step count (Adam, RMSprop; slot 0, a host f64 scalar) and
 * returns the new value. */
double igi_optim_advance_step(ig_optimizer *o, int i);

/* Adam/AdamW's per-step scalars (in double; kernels round them to their element type). */
typedef struct igi_adam_args {
    double beta1, beta2, eps;
    double l2;        /* Adam's weight decay added to the gradient (0 for AdamW) */
    double shrink;    /* AdamW's decoupled decay factor 1 - lr*wd (1 for Adam) */
    double step_size; /* lr / (1 - beta1^t) */
    double bc2_sqrt;  /* sqrt(1 - beta2^t) */
} igi_adam_args;
/* The scalars of an Adam or AdamW optimizer's update at step t, for every device. */
igi_adam_args igi_optim_adam_args(const ig_optimizer *o, double t);

#endif
