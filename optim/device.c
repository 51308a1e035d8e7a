/*
 * optim/device.c — an optimizer step for a parameter on a device: the arguments of
 * optimizer.c's CPU update, handed to the backend's fused kernel (core/backend_impl.h's
 * igi_optim_step; cuda/optim.cu). Kept out of optimizer.c so the CPU file stays about
 * the CPU loops.
 */
#include <math.h>

#include "../core/backend_impl.h"
#include "device_impl.h"
#include "optim_impl.h"

static void *slot_data(ig_optimizer *o, int i, int k) {
    ig_tensor *t = o->state[i].slot[k];
    return t ? igi_data(t) : NULL;
}

/* Advances parameter i's own step count (Adam, RMSprop; a host f64 scalar) and returns it. */
static double advance_param_step(ig_optimizer *o, int i) {
    double *s = (double *)(void *)igi_data(o->state[i].slot[0]);
    *s += 1.0;
    return *s;
}

/* The update of a parameter on a device: the same arguments for the backend's fused kernel
 * (core/backend_impl.h's igi_optim_step). */
ig_status igi_optim_update_device(ig_optimizer *o, int i, const void *g, unsigned created) {
    const char *op = "ig_optim_step";
    ig_tensor *p = o->params[i];
    const igi_backend *be = IGI_BACKEND_WITH(op, p->device, optim_step);
    if (!be) return ig_last_status();
    igi_optim_step s = {.dt = p->dtype, .n = igi_numel(p->ndim, p->shape), .p = igi_data(p), .g = g, .lr = o->lr};
    switch (o->kind) {
    case IGI_OPTIM_SGD:
        s.kind = IGI_OPT_SGD;
        s.weight_decay = o->sgd.weight_decay;
        s.momentum = o->sgd.momentum;
        s.dampening = o->sgd.dampening;
        s.nesterov = o->sgd.nesterov;
        s.first = (created & 1u) != 0;
        s.b0 = slot_data(o, i, 0);
        break;
    case IGI_OPTIM_ADAM:
    case IGI_OPTIM_ADAMW: {
        double t = advance_param_step(o, i);
        const ig_adam_opts *h = &o->adam;
        bool decoupled = o->kind == IGI_OPTIM_ADAMW;
        s.kind = IGI_OPT_ADAM;
        s.beta1 = h->beta1;
        s.beta2 = h->beta2;
        s.eps = h->eps;
        s.l2 = decoupled ? 0.0 : h->weight_decay;
        s.shrink = decoupled ? 1.0 - o->lr * h->weight_decay : 1.0;
        s.step_size = o->lr / (1.0 - pow(h->beta1, t));
        s.bc2_sqrt = sqrt(1.0 - pow(h->beta2, t));
        s.b0 = slot_data(o, i, 1);
        s.b1 = slot_data(o, i, 2);
        s.b2 = slot_data(o, i, 3);
        break;
    }
    case IGI_OPTIM_RMSPROP:
        advance_param_step(o, i);
        s.kind = IGI_OPT_RMSPROP;
        s.alpha = o->rmsprop.alpha;
        s.eps = o->rmsprop.eps;
        s.weight_decay = o->rmsprop.weight_decay;
        s.momentum = o->rmsprop.momentum;
        s.b0 = slot_data(o, i, 1);
        s.b1 = slot_data(o, i, 3);
        s.b2 = slot_data(o, i, 2);
        break;
    }
    return be->optim_step(op, &s);
}

