/*
 * core/ops/conv3x3.c — direct 3x3 convolution, stride 1, padding 1, f32, AVX2 + FMA.
 *
 * The ResNets spend most of a step in 3x3 "same" convolutions with 16-64 channels. On the
 * im2col path each input is copied nine times into col, the BLAS packs col again, and the
 * GEMMs have only 16-64 rows. Here the nine taps read one zero-bordered copy of the image
 * (conv3x3.h: row width Wp = W + 1, tap (ky, kx) at the constant offset ky*Wp + kx), so:
 *
 *  - forward, per image: out[o][q] = sum_i sum_t wf[i][t][o] * xp[i][q + off_t], computed
 *    in register tiles of 4 output channels x 24 positions (12 accumulators; per input
 *    channel and tap, 3 vector loads of the plane, 4 weight broadcasts, 12 FMAs), then
 *    the discarded column dropped and the bias added while copying to y;
 *  - input gradient: the same kernel on the zero-bordered dY with the weights transposed
 *    and the taps reversed (a 3x3 "same" convolution's adjoint is one too);
 *  - weight gradient: dw[i][t][o] += sum_q xp[i][q + off_t] * dyT[q][o], with dY
 *    transposed to [position][channel] (zero at the discarded column), in tiles of 2 input
 *    channels x 3 taps x 16 output channels: per position 2 vector loads of dyT, 6
 *    broadcasts of the planes, 12 FMAs; the sums over positions stay in registers.
 *
 * Each image's arithmetic is fixed by the shapes, and conv.c adds the slots' partial dW
 * in slot order, so results do not depend on the thread count. FMA and the summation
 * order make the results differ from the im2col path by rounding only.
 */
#include "conv3x3.h"

#include <stdlib.h>
#include <string.h>

#include "../tensor_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(IGI_NO_CLONES)
#define C3_X86 1
#include <immintrin.h>
#define C3_TARGET __attribute__((target("avx2,fma")))
#define C3_INLINE static inline __attribute__((always_inline))
/* The tiles' loops over registers must unroll completely, or the accumulators spill. */
#define C3_UNROLL _Pragma("GCC unroll 16")
#else
#define C3_X86 0
#endif

static bool c3_enabled = true;

bool igi_c3_set_enabled(bool on) {
    bool was = c3_enabled;
    c3_enabled = on;
    return was;
}

static int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}

static bool cpu_ok(void) {
#if C3_X86
    static int ok = -1; /* benign race: every thread computes the same value */
    if (ok < 0) {
        __builtin_cpu_init();
        const char *env = getenv("IGNIS_CONV3X3"); /* "0": off, for A/B measurements */
        ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !(env && strcmp(env, "0") == 0);
    }
    return ok == 1;
#else
    return false;
#endif
}

bool igi_c3_plan(const igi_conv *g, ig_dtype dt, igi_c3 *c) {
    if (!c3_enabled || dt != IG_F32 || g->groups != 1 || g->kh != 3 || g->kw != 3 || g->stride_h != 1 ||
        g->stride_w != 1 || g->pad_h != 1 || g->pad_w != 1 || g->dil_h != 1 || g->dil_w != 1 || g->N < 1 ||
        g->C < 1 || g->O < 1 || g->H < 1 || g->W < 1 || !cpu_ok())
        return false;
    memset(c, 0, sizeof *c);
    c->C = g->C;
    c->O = g->O;
    c->H = g->H;
    c->W = g->W;
    c->Wp = g->W + 1;
    c->Q = g->H * c->Wp;
    c->Qv = round_up(c->Q, 8);
    /* the widest read: position Qv - 1 at tap offset 2*Wp + 2 */
    c->cs = round_up(c->Qv + 2 * c->Wp + 2, 8);
    c->Op4 = round_up(c->O, 4);
    c->Cp4 = round_up(c->C, 4);
    c->O8 = round_up(c->O, 8);
    return true;
}

/* ---- packing and layout copies ------------------------------------------------------------ */

int64_t igi_c3_fwd_pack_floats(const igi_c3 *c) {
    return c->C * 9 * c->Op4 + c->O;
}

void igi_c3_pack_fwd(const igi_c3 *c, const float *w, float *wf) {
    memset(wf, 0, sizeof(float) * (size_t)(c->C * 9 * c->Op4));
    for (int64_t o = 0; o < c->O; o++)
        for (int64_t i = 0; i < c->C; i++)
            for (int64_t t = 0; t < 9; t++) wf[(i * 9 + t) * c->Op4 + o] = w[(o * c->C + i) * 9 + t];
}

int64_t igi_c3_bwd_pack_floats(const igi_c3 *c) {
    return c->O * 9 * c->Cp4;
}

void igi_c3_pack_bwd(const igi_c3 *c, const float *w, float *wb) {
    memset(wb, 0, sizeof(float) * (size_t)(c->O * 9 * c->Cp4));
    for (int64_t o = 0; o < c->O; o++)
        for (int64_t i = 0; i < c->C; i++)
            for (int64_t t = 0; t < 9; t++) wb[(o * 9 + t) * c->Cp4 + i] = w[(o * c->C + i) * 9 + (8 - t)];
}

int64_t igi_c3_fwd_slot_floats(const igi_c3 *c) {
    return c->C * c->cs + c->Op4 * c->Qv;
}

/* Scratch of a backward slot: [xp C*cs][dyT Q*O8][dW C*9*O8] with need_w, then
 * [dyp O*cs][dxo Cp4*Qv] with need_x. */
int64_t igi_c3_bwd_slot_floats(const igi_c3 *c, bool need_x, bool need_w) {
    int64_t n = 0;
    if (need_w) n += c->C * c->cs + c->Q * c->O8 + c->C * 9 * c->O8;
    if (need_x) n += c->O * c->cs + c->Cp4 * c->Qv;
    return n;
}

int64_t igi_c3_bwd_dw_offset(const igi_c3 *c) {
    return c->C * c->cs + c->Q * c->O8;
}

/* The data of n planes (strides cs_, rs, es_ in elements) into the padded planes at p
 * (their borders already zero). */
static void pad_planes(const igi_c3 *c, int64_t n, const float *src, int64_t sc, int64_t sr, int64_t se,
                       float *p) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t y = 0; y < c->H; y++) {
            float *d = p + i * c->cs + (y + 1) * c->Wp + 1;
            const float *s = src + i * sc + y * sr;
            if (se == 1)
                memcpy(d, s, sizeof(float) * (size_t)c->W);
            else
                for (int64_t x = 0; x < c->W; x++) d[x] = s[x * se];
        }
}

/* ---- kernels ------------------------------------------------------------------------------ */

#if C3_X86

/* out rows o0..o0+3 (row stride Qv), positions q0..q0+8*NV: in points at position q0 of
 * plane 0 (plane stride cs), w at [0][0][o0] of [ni][9][Op]. */
C3_TARGET C3_INLINE void fwd_tile(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op,
                                  int64_t Wp, float *out, int64_t Qv, const int NV) {
    __m256 acc[4][3];
    C3_UNROLL for (int r = 0; r < 4; r++)
        C3_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (int64_t i = 0; i < ni; i++) {
        const float *p = in + i * cs;
        const float *wi = w + i * 9 * Op;
        C3_UNROLL for (int ky = 0; ky < 3; ky++)
            C3_UNROLL for (int kx = 0; kx < 3; kx++) {
                const float *pt = p + ky * Wp + kx, *wt = wi + (ky * 3 + kx) * Op;
                __m256 xv[3];
                C3_UNROLL for (int v = 0; v < NV; v++) xv[v] = _mm256_loadu_ps(pt + 8 * v);
                C3_UNROLL for (int r = 0; r < 4; r++) {
                    __m256 wv = _mm256_broadcast_ss(wt + r);
                    C3_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
                }
            }
    }
    C3_UNROLL for (int r = 0; r < 4; r++)
        C3_UNROLL for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + r * Qv + 8 * v, acc[r][v]);
}

C3_TARGET static void fwd_tile3(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op, int64_t Wp,
                                float *out, int64_t Qv) {
    fwd_tile(in, cs, ni, w, Op, Wp, out, Qv, 3);
}
C3_TARGET static void fwd_tile2(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op, int64_t Wp,
                                float *out, int64_t Qv) {
    fwd_tile(in, cs, ni, w, Op, Wp, out, Qv, 2);
}
C3_TARGET static void fwd_tile1(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op, int64_t Wp,
                                float *out, int64_t Qv) {
    fwd_tile(in, cs, ni, w, Op, Wp, out, Qv, 1);
}

/* out [Op][Qv] = the 3x3 convolution of the ni padded planes at in with w [ni][9][Op]. */
static void conv_planes(const igi_c3 *c, const float *in, int64_t ni, const float *w, int64_t Op, float *out) {
    for (int64_t q0 = 0; q0 < c->Qv; q0 += 24) {
        int64_t nv = (c->Qv - q0) / 8;
        for (int64_t o0 = 0; o0 < Op; o0 += 4) {
            float *oq = out + o0 * c->Qv + q0;
            if (nv >= 3)
                fwd_tile3(in + q0, c->cs, ni, w + o0, Op, c->Wp, oq, c->Qv);
            else if (nv == 2)
                fwd_tile2(in + q0, c->cs, ni, w + o0, Op, c->Wp, oq, c->Qv);
            else
                fwd_tile1(in + q0, c->cs, ni, w + o0, Op, c->Wp, oq, c->Qv);
        }
    }
}

/* dw[c][kx][o0..o0+8*NV) (+)= sum_q x[c][q + kx] * dyt[q][o0..] for NC planes x (stride
 * cs, already offset by ky*Wp), kx = 0..2; dw rows: plane stride ldc, tap stride ld. */
C3_TARGET C3_INLINE void dw_tile(const float *x, int64_t cs, const float *dyt, int64_t ld, int64_t Q, float *dw,
                                 int64_t ldc, const int NC, const int NV) {
    __m256 acc[2][3][2];
    C3_UNROLL for (int k = 0; k < NC; k++)
        C3_UNROLL for (int t = 0; t < 3; t++)
            C3_UNROLL for (int v = 0; v < NV; v++) acc[k][t][v] = _mm256_loadu_ps(dw + k * ldc + t * ld + 8 * v);
    for (int64_t q = 0; q < Q; q++) {
        __m256 d[2];
        C3_UNROLL for (int v = 0; v < NV; v++) d[v] = _mm256_loadu_ps(dyt + q * ld + 8 * v);
        C3_UNROLL for (int k = 0; k < NC; k++)
            C3_UNROLL for (int t = 0; t < 3; t++) {
                __m256 xb = _mm256_broadcast_ss(x + k * cs + q + t);
                C3_UNROLL for (int v = 0; v < NV; v++) acc[k][t][v] = _mm256_fmadd_ps(xb, d[v], acc[k][t][v]);
            }
    }
    C3_UNROLL for (int k = 0; k < NC; k++)
        C3_UNROLL for (int t = 0; t < 3; t++)
            C3_UNROLL for (int v = 0; v < NV; v++) _mm256_storeu_ps(dw + k * ldc + t * ld + 8 * v, acc[k][t][v]);
}

#define DW_TILE(NC, NV)                                                                                   \
    C3_TARGET static void dw_tile_##NC##_##NV(const float *x, int64_t cs, const float *dyt, int64_t ld,     \
                                               int64_t Q, float *dw, int64_t ldc) {                       \
        dw_tile(x, cs, dyt, ld, Q, dw, ldc, NC, NV);                                                      \
    }
DW_TILE(2, 2)
DW_TILE(2, 1)
DW_TILE(1, 2)
DW_TILE(1, 1)

/* dwp [C][9][O8] += the weight gradient of one image (xp padded planes, dyt [Q][O8]). */
static void dw_planes(const igi_c3 *c, const float *xp, const float *dyt, float *dwp) {
    int64_t ld = c->O8, ldc = 9 * c->O8;
    for (int64_t i0 = 0; i0 < c->C; i0 += 2) {
        bool two = i0 + 1 < c->C;
        for (int64_t ky = 0; ky < 3; ky++) {
            const float *x = xp + i0 * c->cs + ky * c->Wp;
            for (int64_t o0 = 0; o0 < c->O8; o0 += 16) {
                bool wide = o0 + 16 <= c->O8;
                float *dw = dwp + (i0 * 9 + ky * 3) * ld + o0;
                const float *d = dyt + o0;
                if (two && wide)
                    dw_tile_2_2(x, c->cs, d, ld, c->Q, dw, ldc);
                else if (two)
                    dw_tile_2_1(x, c->cs, d, ld, c->Q, dw, ldc);
                else if (wide)
                    dw_tile_1_2(x, c->cs, d, ld, c->Q, dw, ldc);
                else
                    dw_tile_1_1(x, c->cs, d, ld, c->Q, dw, ldc);
            }
        }
    }
}

#else /* not x86-64: igi_c3_plan never selects the direct path */

static void conv_planes(const igi_c3 *c, const float *in, int64_t ni, const float *w, int64_t Op, float *out) {
    (void)c, (void)in, (void)ni, (void)w, (void)Op, (void)out;
}
static void dw_planes(const igi_c3 *c, const float *xp, const float *dyt, float *dwp) {
    (void)c, (void)xp, (void)dyt, (void)dwp;
}

#endif

/* ---- per image ---------------------------------------------------------------------------- */

void igi_c3_forward(const igi_c3 *c, const float *x, const int64_t xs[3], const float *wf, const float *bias,
                    float *y, float *scratch) {
    float *xp = scratch, *out = scratch + c->C * c->cs;
    pad_planes(c, c->C, x, xs[0], xs[1], xs[2], xp);
    conv_planes(c, xp, c->C, wf, c->Op4, out);
    for (int64_t o = 0; o < c->O; o++) {
        const float *src = out + o * c->Qv;
        float *dst = y + o * c->H * c->W;
        if (bias) {
            float b = bias[o];
            for (int64_t r = 0; r < c->H; r++)
                for (int64_t q = 0; q < c->W; q++) dst[r * c->W + q] = src[r * c->Wp + q] + b;
        } else {
            for (int64_t r = 0; r < c->H; r++)
                memcpy(dst + r * c->W, src + r * c->Wp, sizeof(float) * (size_t)c->W);
        }
    }
}

void igi_c3_backward(const igi_c3 *c, const float *x, const int64_t xs[3], const float *dy, const float *wb,
                     float *dx, bool need_w, float *scratch) {
    int64_t HW = c->H * c->W;
    float *next = scratch;
    if (need_w) {
        float *xp = next, *dyt = xp + c->C * c->cs, *dwp = dyt + c->Q * c->O8;
        next = dwp + c->C * 9 * c->O8;
        pad_planes(c, c->C, x, xs[0], xs[1], xs[2], xp);
        /* dY transposed to [position][channel]; the discarded column and the channels
         * past O stay zero from the slot's start */
        for (int64_t o = 0; o < c->O; o++)
            for (int64_t r = 0; r < c->H; r++)
                for (int64_t q = 0; q < c->W; q++) dyt[(r * c->Wp + q) * c->O8 + o] = dy[o * HW + r * c->W + q];
        dw_planes(c, xp, dyt, dwp);
    }
    if (dx) {
        float *dyp = next, *dxo = dyp + c->O * c->cs;
        pad_planes(c, c->O, dy, HW, c->W, 1, dyp);
        conv_planes(c, dyp, c->O, wb, c->Cp4, dxo);
        for (int64_t i = 0; i < c->C; i++)
            for (int64_t r = 0; r < c->H; r++)
                memcpy(dx + i * HW + r * c->W, dxo + i * c->Qv + r * c->Wp, sizeof(float) * (size_t)c->W);
    }
}

void igi_c3_dw_finish(const igi_c3 *c, float *part, int64_t S, int64_t stride, float *dw) {
    int64_t n = c->C * 9 * c->O8;
    for (int64_t s = 1; s < S; s++) {
        const float *ps = part + s * stride;
        for (int64_t k = 0; k < n; k++) part[k] += ps[k];
    }
    for (int64_t i = 0; i < c->C; i++)
        for (int64_t t = 0; t < 9; t++)
            for (int64_t o = 0; o < c->O; o++) dw[(o * c->C + i) * 9 + t] = part[(i * 9 + t) * c->O8 + o];
}
