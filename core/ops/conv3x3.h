/*
 * core/ops/conv3x3.h — the direct 3x3 convolution kernels (conv3x3.c) used by conv.c for
 * f32, 3x3, stride 1 or 2, padding 1, dilation 1, one group, on CPUs with AVX2 and FMA.
 * Internal; never installed.
 *
 * Layout: output position q = y*Wp + x with Wp = Wo + 1 (x == Wo is a discarded column).
 * Stride 1: each input plane is copied into a zero-bordered plane of row width Wp (one
 * zero column shared by the right edge of a row and the left edge of the next) and H + 2
 * rows; tap (ky, kx) reads it at q + ky*Wp + kx. Stride 2: the input is split into four
 * phase planes (even/odd rows x even/odd columns), each bordered the same way; every tap
 * reads one phase plane at a constant offset. Either way no im2col copy is made and the
 * kernels read the planes directly.
 */
#ifndef IGNIS_CORE_OPS_CONV3X3_H
#define IGNIS_CORE_OPS_CONV3X3_H

#include <stdbool.h>
#include <stdint.h>

#include "../backend_impl.h"

/* The bordered geometry of one convolution. */
typedef struct igi_c3 {
    int64_t C, O, H, W;
    int64_t s;      /* stride, 1 or 2 */
    int64_t Ho, Wo; /* output size */
    int64_t Wp;     /* bordered row width, Wo + 1 */
    int64_t Q;      /* output positions in the bordered layout, Ho * Wp */
    int64_t Qv;     /* Q rounded up to the vector width (8) */
    int64_t ps;     /* floats per bordered plane (zeros past the data, room for the widest read) */
    int64_t cs;     /* floats per input channel: one plane (stride 1) or four phase planes */
    int64_t Op4;    /* O rounded up to 4: rows of the forward kernel's output */
    int64_t Cp4;    /* C rounded up to 4: rows of the input-gradient kernel's output */
    int64_t Ov;     /* O rounded up to the vector width: columns of the transposed output gradient */
    int isa;        /* 2: AVX-512 tiles (16-lane vectors), 1: AVX2 tiles (8-lane) */
    int64_t off[9]; /* tap ky*3 + kx: where it reads in a channel's planes, from the output position */
} igi_c3;

/* Whether g (dtype dt) takes the direct path on this CPU; fills *c when it does. The
 * environment variable IGNIS_CONV3X3=0 (read once) turns the path off, for A/B timing. */
bool igi_c3_plan(const igi_conv *g, ig_dtype dt, igi_c3 *c);

/* Test hook: turns the direct path off (false) or back on; returns the previous setting.
 * Not thread-safe: call it between convolutions. */
bool igi_c3_set_enabled(bool on);

/* Test hook: the AVX2 tiles even on a CPU with AVX-512 (true), or back to the best the
 * CPU has; returns the previous setting. Not thread-safe, as igi_c3_set_enabled. */
bool igi_c3_force_avx2(bool on);

/* Floats of packed weights (and bias) the forward needs: [C][9][Op4] + [O]. */
int64_t igi_c3_fwd_pack_floats(const igi_c3 *c);
/* Forward: wf = w [O,C,3,3] as [C][9][Op4] (zeros for o >= O). */
void igi_c3_pack_fwd(const igi_c3 *c, const float *w, float *wf);
/* Floats of one slot's forward scratch: padded input planes and the padded output rows. */
int64_t igi_c3_fwd_slot_floats(const igi_c3 *c);
/* One image: y [O,Ho,Wo] = conv(x) + bias (bias [O] or NULL). x has strides xs (channel,
 * row, column) in elements. scratch: igi_c3_fwd_slot_floats floats, zeroed before the
 * slot's first image (the padding stays zero between images). */
void igi_c3_forward(const igi_c3 *c, const float *x, const int64_t xs[3], const float *wf,
                    const float *bias, float *y, float *scratch);

/* Floats of packed weights the input gradient needs: [O][9][Cp4] (stride 1, taps
 * reversed) or one [O][taps][Cp4] block per phase of dX (stride 2). */
int64_t igi_c3_bwd_pack_floats(const igi_c3 *c);
void igi_c3_pack_bwd(const igi_c3 *c, const float *w, float *wb);
/* Floats of one slot's backward scratch, and where in it the slot's partial dW
 * ([C][9][Ov]) starts (only meaningful with need_w). */
int64_t igi_c3_bwd_slot_floats(const igi_c3 *c, bool need_x, bool need_w);
int64_t igi_c3_bwd_dw_offset(const igi_c3 *c);
/* One image: dx [C,H,W] = the input gradient (if dx), the slot's partial dW += this
 * image's weight gradient (if need_w). x as in the forward; dy [O,Ho,Wo] contiguous.
 * scratch zeroed before the slot's first image. */
void igi_c3_backward(const igi_c3 *c, const float *x, const int64_t xs[3], const float *dy,
                     const float *wb, float *dx, bool need_w, float *scratch);
/* dw [O,C,3,3] = the sum, in slot order, of S partials at part + s*stride (the sum is
 * made in the first partial). */
void igi_c3_dw_finish(const igi_c3 *c, float *part, int64_t S, int64_t stride, float *dw);

#endif
