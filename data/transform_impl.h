/*
 * data/transform_impl.h — the inside of data/transform.c shared with the loader and the
 * tests. Never installed.
 *
 * The loader applies transforms from worker threads with no allocation per item: it asks
 * igi_tf_scratch_bytes once for its item shape, gives each worker that much scratch, and
 * calls igi_tf_apply. The geometry kernels are exposed with explicit parameters (a forced
 * crop position, a given rotation angle) so tests can check them without going through the
 * random draws.
 */
#ifndef IGNIS_DATA_TRANSFORM_IMPL_H
#define IGNIS_DATA_TRANSFORM_IMPL_H

#include "../core/tensor_impl.h"
#include "data.h"

/* Bytes of scratch igi_tf_apply needs for an input of [c,h,w] (t may be NULL: 0). */
size_t igi_tf_scratch_bytes(const ig_transform *t, int c, int h, int w);

/* ig_transform_apply with caller-provided scratch (igi_tf_scratch_bytes bytes, any
 * alignment of malloc). Validates the shapes; never allocates. */
ig_status igi_tf_apply(const ig_transform *t, const float *in, int c, int h, int w, float *out,
                       void *scratch, uint64_t seed, uint64_t epoch, uint64_t index);

/* Pads in [c,h,w] by pad on every side (mode), then copies the [c,oh,ow] window whose top
 * left corner is (top, left) in the padded image, mirrored left-right when flip. top/left
 * may be any integers: positions outside the padded image follow the same padding rule.
 * cmap is scratch for ow ints. */
void igi_tf_crop(const float *in, int c, int h, int w, int pad, ig_pad_mode mode, int top,
                 int left, int oh, int ow, bool flip, int32_t *cmap, float *out);

/* Rotates in [c,h,w] counter-clockwise by degrees about the image centre, nearest
 * neighbour, zeros outside, exactly as RandomRotation does once it has drawn the angle. */
void igi_tf_rotate(const float *in, int c, int h, int w, double degrees, float *out);

/* Resizes the [c, rh, rw] region at (top, left) of in [c,h,w] to [c,oh,ow]: bilinear,
 * align_corners=False, no antialiasing (torch.nn.functional.interpolate). */
void igi_tf_resize_region(const float *in, int c, int h, int w, int top, int left, int rh,
                          int rw, int oh, int ow, float *out);

#endif
