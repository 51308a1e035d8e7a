/*
 * optim/device_impl.h — the device half of ig_optim_step (optim/device.c).
 */
#ifndef IGNIS_OPTIM_DEVICE_IMPL_H
#define IGNIS_OPTIM_DEVICE_IMPL_H

#include "optim_impl.h"

/* Updates parameter i (on a device) from g (contiguous, on its device, p's dtype and
 * numel) with the backend's fused kernel; created: the slots made for this step. */
ig_status igi_optim_update_device(ig_optimizer *o, int i, const void *g, unsigned created);

#endif
