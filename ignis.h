/*
 * ignis.h — the umbrella header of ignis, a deep-learning framework in C.
 *
 *   #include <ignis.h>        cc prog.c $(pkg-config --cflags --libs ignis)
 *
 * It includes one public header per module. Everything public is prefixed ig_ / IG_.
 */
#ifndef IGNIS_H
#define IGNIS_H

#include "core/version.h"
#include "core/tensor.h"
#include "core/ops.h"
#include "autograd/autograd.h"
#include "nn/nn.h"
#include "optim/optim.h"
#include "data/data.h"
#include "dist/dist.h"
#include "core/safetensors.h"

#endif
