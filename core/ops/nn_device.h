/*
 * core/ops/nn_device.h — the device paths of the neural-network ops whose CPU kernels live
 * in conv.c, pool.c and norm.c (core/ops/nn_device.c). Each CPU op validates its arguments
 * exactly as before, then hands a tensor that is not on the CPU to these functions, which
 * describe the work for the backend table (core/backend_impl.h) and record their own
 * backward. Keeping them out of the CPU files keeps those files about CPU kernels.
 */
#ifndef IGNIS_CORE_OPS_NN_DEVICE_H
#define IGNIS_CORE_OPS_NN_DEVICE_H

#include "../backend_impl.h"
#include "../tensor_impl.h"

/* The geometry of a convolution of x [N,C,H,W] by w [O,Cg,kh,kw] from the attributes
 * conv.c's conv2d_check fills (and its nodes keep): every igi_conv field but nb, which
 * only the device path uses. Shared by the CPU kernels (conv.c) and the device path. */
void igi_conv_geom(igi_conv *g, const ig_tensor *x, const ig_tensor *w, const int64_t *attr);

/* ig_conv2d on x's device; attr as conv.c's conv2d_check fills it (stride h/w, padding
 * h/w, dilation h/w, groups, Ho, Wo). */
ig_tensor *igi_conv2d_device(ig_tensor *x, ig_tensor *w, ig_tensor *b, const int64_t *attr);
/* A pool on x's device: opid IGI_OP_MAX_POOL2D, IGI_OP_AVG_POOL2D or
 * IGI_OP_ADAPTIVE_AVG_POOL2D; g the validated geometry (xs = x's strides); attr the
 * node's 8 attributes (NULL for adaptive). */
ig_tensor *igi_pool2d_device(const char *op, int opid, ig_tensor *x, const igi_pool *g, const int64_t *attr);
/* igi_batch_norm_sync on x's device, arguments validated (sync NULL: ig_batch_norm; only
 * used in training). */
ig_tensor *igi_batch_norm_device(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var, ig_tensor *weight,
                                 ig_tensor *bias, bool training, double momentum, double eps, const igi_bn_sync *sync);

/* Synchronised batch norm's statistics, shared by the CPU (norm.c) and the device path so
 * that both all-reduce the same values in the same order. fn(ctx, pass, shift, out) puts
 * this process's per-channel sums on the host: pass 0, out[c] = sum(x); pass 1, with d = x
 * - shift[c], out[C + c] = sum(d * d) and, for f32, out[c] = sum(d). igi_bn_stats_sync
 * then reduces over the group: [sum(x) (C), count] (C + 1 values), then sum(d * d) about the
 * group's mean (C values, f64) or [sum(d), sum(d * d)] about the group's mean rounded to
 * float (2C values, f32: norm.c's cancellation-free f32 variance), giving the group's mean
 * and biased variance (mean, var: C doubles) and its count *gcnt (> 1, else IG_ERR_ARG on
 * every member alike). tmp: max(C + 1, 2C) doubles. */
typedef ig_status (*igi_bn_local_sums)(void *ctx, int pass, const double *shift, double *out);
ig_status igi_bn_stats_sync(const igi_bn_sync *sync, bool f32, int64_t C, double local_cnt, igi_bn_local_sums fn,
                            void *ctx, double *mean, double *var, double *tmp, double *gcnt);

/* ig_layer_norm on x's device, arguments validated. */
ig_tensor *igi_layer_norm_device(ig_tensor *x, int n_dims, ig_tensor *weight, ig_tensor *bias, double eps);

#endif
