/*
 * optim/device.c — an optimizer step for a parameter on a device: the arguments of
 * optimizer.c's CPU update, handed to the backend's fused kernel (core/backend_impl.h's
 * igi_optim_step; cuda/optim.cu). Kept out of optimizer.c so the CPU file stays about
 * the CPU loops.
 */

#include "../core/backend_impl.h"
#include "device_impl.h"
#include "optim_impl.h"

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
        s.b0 = igi_optim_slot_data(o, i, 0);
        break;
    case IGI_OPTIM_ADAM:
    case IGI_OPTIM_ADAMW: {
        igi_adam_args a = igi_optim_adam_args(o, igi_optim_advance_step(o, i));
        s.kind = IGI_OPT_ADAM;
        s.beta1 = a.beta1;
        s.beta2 = a.beta2;
        s.eps = a.eps;
        s.l2 = a.l2;
        s.shrink = a.shrink;
        s.step_size = a.step_size;
        s.bc2_sqrt = a.bc2_sqrt;
        s.b0 = igi_optim_slot_data(o, i, 1);
        s.b1 = igi_optim_slot_data(o, i, 2);
        s.b2 = igi_optim_slot_data(o, i, 3);
        break;
    }
    case IGI_OPTIM_RMSPROP:
        igi_optim_advance_step(o, i);
        s.kind = IGI_OPT_RMSPROP;
        s.alpha = o->rmsprop.alpha;
        s.eps = o->rmsprop.eps;
        s.weight_decay = o->rmsprop.weight_decay;
        s.momentum = o->rmsprop.momentum;
        s.b0 = igi_optim_slot_data(o, i, 1);
        s.b1 = igi_optim_slot_data(o, i, 3);
        s.b2 = igi_optim_slot_data(o, i, 2);
        break;
    }
    return be->optim_step(op, &s);
}

