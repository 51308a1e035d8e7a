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
#define C3_TARGET512 __attribute__((target("avx512f,avx512vl,fma")))
#define C3_INLINE static inline __attribute__((always_inline))
/* The tiles' loops over registers must unroll completely, or the accumulators spill. */
#define C3_UNROLL _Pragma("GCC unroll 16")
#else
#define C3_X86 0
#endif

static bool c3_enabled = true;
static int c3_isa = -1; /* 2: AVX-512 tiles, 1: AVX2 tiles, 0: no direct path; -1: not yet known */
static bool c3_no512;   /* test hook: AVX2 tiles even where AVX-512 is there */

bool igi_c3_force_avx2(bool on) {
    bool was = c3_no512;
    c3_no512 = on;
    return was;
}

bool igi_c3_set_enabled(bool on) {
    bool was = c3_enabled;
    c3_enabled = on;
    return was;
}

static int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}

/* What the CPU offers, read once (benign race: every thread computes the same value). */
static int cpu_isa(void) {
#if C3_X86
    if (c3_isa < 0) {
        __builtin_cpu_init();
        const char *env = getenv("IGNIS_CONV3X3"); /* "0": off, "avx2": no AVX-512, for A/B timing */
        bool off = env && strcmp(env, "0") == 0, no512 = env && strcmp(env, "avx2") == 0;
        int isa = 0;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !off) isa = 1;
        if (isa && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && !no512) isa = 2;
        c3_isa = isa;
    }
    return c3_isa;
#else
    return 0;
#endif
}

static bool cpu_ok(void) {
    return cpu_isa() > 0;
}

/* Stride 2: row (or column) tap k reads phase A2[k] (0: even input rows, 1: odd) of the
 * bordered phase plane at row shift R2[k] (input row 2y + k - 1 is phase row y + R2[k] - 1). */
static const int A2[3] = {1, 0, 1}, R2[3] = {0, 1, 1};

bool igi_c3_plan(const igi_conv *g, ig_dtype dt, igi_c3 *c) {
    if (!c3_enabled || dt != IG_F32 || g->groups != 1 || g->kh != 3 || g->kw != 3 || g->stride_h != g->stride_w ||
        (g->stride_h != 1 && g->stride_h != 2) || g->pad_h != 1 || g->pad_w != 1 || g->dil_h != 1 ||
        g->dil_w != 1 || g->N < 1 || g->C < 1 || g->O < 1 || g->H < 1 || g->W < 1 || !cpu_ok())
        return false;
    memset(c, 0, sizeof *c);
    c->C = g->C;
    c->O = g->O;
    c->H = g->H;
    c->W = g->W;
    c->s = g->stride_h;
    c->Ho = g->Ho;
    c->Wo = g->Wo;
    c->Wp = g->Wo + 1;
    c->Q = g->Ho * c->Wp;
    c->Qv = round_up(c->Q, 8);
    c->Op4 = round_up(c->O, 4);
    c->Cp4 = round_up(c->C, 4);
    c->isa = cpu_isa() == 2 && !c3_no512 ? 2 : 1;
    c->Ov = round_up(c->O, c->isa == 2 ? 16 : 8);
    if (c->s == 1) {
        /* the widest read: position Qv - 1 at tap offset 2*Wp + 2 */
        c->ps = round_up(c->Qv + 2 * c->Wp + 2, 8);
        c->cs = c->ps;
        for (int t = 0; t < 9; t++) c->off[t] = (t / 3) * c->Wp + t % 3;
    } else {
        /* phase planes of Ho + 1 bordered rows; the widest read is Qv - 1 + Wp + 1 */
        c->ps = round_up(c->Qv + c->Wp + 1, 8);
        c->cs = 4 * c->ps;
        for (int t = 0; t < 9; t++) {
            int ky = t / 3, kx = t % 3;
            c->off[t] = (A2[ky] * 2 + A2[kx]) * c->ps + R2[ky] * c->Wp + R2[kx];
        }
    }
    return true;
}

/* ---- the input-gradient programs ----------------------------------------------------------- */

/* The input gradient as convolutions of the output gradient's planes: stride 1, one 3x3
 * program with the taps reversed over the bordered dY; stride 2, one program per phase
 * (a, b) of dX (rows 2i + a, columns 2j + b), over dY planes with no top or left border:
 * dX[2i+a][2j+b] = sum of w[ky][kx] * dY[i + sh(ky)][j + sh(kx)] for the taps with
 * 2y + ky - 1 = 2i + a (ky = 1, shift 0 for a = 0; ky = 0, shift 1 and ky = 2, shift 0
 * for a = 1). */
typedef struct c3_prog {
    int nt;         /* taps */
    int tap[9];     /* weight tap (ky*3 + kx) of each */
    int64_t off[9]; /* read offset from the output position in a dY plane */
    int a, b;       /* stride 2: the phase */
    int64_t wbase;  /* start of its packed weights [O][nt][Cp4] */
} c3_prog;

static int dx_programs(const igi_c3 *c, c3_prog pr[4]) {
    memset(pr, 0, 4 * sizeof *pr);
    if (c->s == 1) {
        pr[0].nt = 9;
        for (int k = 0; k < 9; k++) pr[0].tap[k] = 8 - k, pr[0].off[k] = c->off[k];
        return 1;
    }
    static const int nk[2] = {1, 2}, ks[2][2] = {{1, 0}, {0, 2}}, sh[3] = {1, 0, 0};
    int64_t base = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            c3_prog *p = &pr[a * 2 + b];
            p->a = a, p->b = b, p->wbase = base;
            for (int u = 0; u < nk[a]; u++)
                for (int v = 0; v < nk[b]; v++) {
                    int ky = ks[a][u], kx = ks[b][v];
                    p->tap[p->nt] = ky * 3 + kx;
                    p->off[p->nt] = sh[ky] * c->Wp + sh[kx];
                    p->nt++;
                }
            base += c->O * p->nt * c->Cp4;
        }
    return 4;
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
    c3_prog pr[4];
    int np = dx_programs(c, pr);
    memset(wb, 0, sizeof(float) * (size_t)(c->O * 9 * c->Cp4));
    for (int k = 0; k < np; k++)
        for (int64_t o = 0; o < c->O; o++)
            for (int t = 0; t < pr[k].nt; t++)
                for (int64_t i = 0; i < c->C; i++)
                    wb[pr[k].wbase + (o * pr[k].nt + t) * c->Cp4 + i] = w[(o * c->C + i) * 9 + pr[k].tap[t]];
}

int64_t igi_c3_fwd_slot_floats(const igi_c3 *c) {
    return c->C * c->cs + c->Op4 * c->Qv;
}

/* Scratch of a backward slot: [xp C*cs][dyT Q*Ov][dW C*9*Ov] with need_w, then
 * [dyp O*ps][dxo Cp4*Qv] with need_x. */
int64_t igi_c3_bwd_slot_floats(const igi_c3 *c, bool need_x, bool need_w) {
    int64_t n = 0;
    if (need_w) n += c->C * c->cs + c->Q * c->Ov + c->C * 9 * c->Ov;
    if (need_x) n += c->O * c->ps + c->Cp4 * c->Qv;
    return n;
}

int64_t igi_c3_bwd_dw_offset(const igi_c3 *c) {
    return c->C * c->cs + c->Q * c->Ov;
}

/* The input x [C,H,W] (strides sc, sr, se) into its bordered planes at p (borders already
 * zero): stride 1, element (y, x) at (y+1)*Wp + x + 1 of the channel's plane; stride 2,
 * element (2i+a, 2j+b) at (i+1)*Wp + j + 1 of phase plane a*2 + b. */
static void fill_input(const igi_c3 *c, const float *src, int64_t sc, int64_t sr, int64_t se, float *p) {
    for (int64_t i = 0; i < c->C; i++) {
        const float *s = src + i * sc;
        float *d = p + i * c->cs;
        if (c->s == 1) {
            for (int64_t y = 0; y < c->H; y++) {
                float *dr = d + (y + 1) * c->Wp + 1;
                const float *sr_ = s + y * sr;
                if (se == 1)
                    memcpy(dr, sr_, sizeof(float) * (size_t)c->W);
                else
                    for (int64_t x = 0; x < c->W; x++) dr[x] = sr_[x * se];
            }
            continue;
        }
        for (int64_t y = 0; y < c->H; y++) {
            float *dr = d + (y & 1) * 2 * c->ps + (y / 2 + 1) * c->Wp + 1;
            const float *sr_ = s + y * sr;
            for (int64_t x = 0; x < c->W; x++) dr[(x & 1) * c->ps + x / 2] = sr_[x * se];
        }
    }
}

/* dY [O,Ho,Wo] (contiguous) into its planes for the input gradient: bordered like the
 * input for stride 1, element (y, x) at y*Wp + x for stride 2. */
static void fill_dy(const igi_c3 *c, const float *dy, float *p) {
    int64_t HW = c->Ho * c->Wo, pre = c->s == 1 ? c->Wp + 1 : 0;
    for (int64_t o = 0; o < c->O; o++)
        for (int64_t y = 0; y < c->Ho; y++)
            memcpy(p + o * c->ps + pre + y * c->Wp, dy + o * HW + y * c->Wo, sizeof(float) * (size_t)c->Wo);
}

/* ---- kernels ------------------------------------------------------------------------------ */

#if C3_X86

/* out rows o0..o0+3 (row stride Qv), positions q0..q0+8*NV: in points at position q0 of
 * input plane group 0 (stride cs), w at [0][0][o0] of [ni][NT][Op]; tap t reads at
 * in + off[t]. */
C3_TARGET C3_INLINE void fwd_tile(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op,
                                  const int64_t *off, float *out, int64_t Qv, const int NT, const int NV) {
    __m256 acc[4][3];
    int64_t o[9];
    C3_UNROLL for (int t = 0; t < NT; t++) o[t] = off[t];
    C3_UNROLL for (int r = 0; r < 4; r++)
        C3_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (int64_t i = 0; i < ni; i++) {
        const float *p = in + i * cs;
        const float *wi = w + i * NT * Op;
        C3_UNROLL for (int t = 0; t < NT; t++) {
            const float *pt = p + o[t], *wt = wi + t * Op;
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

/* Vectors of positions per forward tile: 4 x 3 accumulators, 3 plane vectors and a
 * broadcast weight fill the 16 AVX2 registers (2 measured ~4% slower). */
#define C3_QB 3
typedef void (*fwd_tile_fn)(const float *, int64_t, int64_t, const float *, int64_t, const int64_t *, float *,
                            int64_t);
#define FWD_TILE(NT, NV)                                                                                         \
    C3_TARGET static void fwd_tile_##NT##_##NV(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op, \
                                                const int64_t *off, float *out, int64_t Qv) {                      \
        fwd_tile(in, cs, ni, w, Op, off, out, Qv, NT, NV);                                                       \
    }
FWD_TILE(9, 1)
FWD_TILE(9, 2)
FWD_TILE(9, 3)
FWD_TILE(4, 1)
FWD_TILE(4, 2)
FWD_TILE(4, 3)
FWD_TILE(2, 1)
FWD_TILE(2, 2)
FWD_TILE(2, 3)
FWD_TILE(1, 1)
FWD_TILE(1, 2)
FWD_TILE(1, 3)

/* The same tile with 16-lane vectors: NZ vectors of 16 positions and NH (0 or 1) of 8.
 * With 32 registers the plane vectors stay in registers (the AVX2 tile has to reload some
 * from memory for its FMAs), so a tile is 4 x 64 positions. */
C3_TARGET512 C3_INLINE void fwd_tile512(const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op,
                                        const int64_t *off, float *out, int64_t Qv, const int NT, const int NZ,
                                        const int NH) {
    __m512 acc[4][4];
    __m256 acch[4];
    int64_t o[9];
    C3_UNROLL for (int t = 0; t < NT; t++) o[t] = off[t];
    C3_UNROLL for (int r = 0; r < 4; r++) {
        C3_UNROLL for (int v = 0; v < NZ; v++) acc[r][v] = _mm512_setzero_ps();
        if (NH) acch[r] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < ni; i++) {
        const float *p = in + i * cs;
        const float *wi = w + i * NT * Op;
        C3_UNROLL for (int t = 0; t < NT; t++) {
            const float *pt = p + o[t], *wt = wi + t * Op;
            __m512 xv[4];
            __m256 xh = _mm256_setzero_ps();
            C3_UNROLL for (int v = 0; v < NZ; v++) xv[v] = _mm512_loadu_ps(pt + 16 * v);
            if (NH) xh = _mm256_loadu_ps(pt + 16 * NZ);
            C3_UNROLL for (int r = 0; r < 4; r++) {
                __m512 wv = _mm512_set1_ps(wt[r]);
                C3_UNROLL for (int v = 0; v < NZ; v++) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
                if (NH) acch[r] = _mm256_fmadd_ps(_mm512_castps512_ps256(wv), xh, acch[r]);
            }
        }
    }
    C3_UNROLL for (int r = 0; r < 4; r++) {
        C3_UNROLL for (int v = 0; v < NZ; v++) _mm512_storeu_ps(out + r * Qv + 16 * v, acc[r][v]);
        if (NH) _mm256_storeu_ps(out + r * Qv + 16 * NZ, acch[r]);
    }
}

#define FWD_TILE512(NT, NZ, NH)                                                                              \
    C3_TARGET512 static void fwd512_##NT##_##NZ##_##NH(const float *in, int64_t cs, int64_t ni, const float *w, \
                                                       int64_t Op, const int64_t *off, float *out, int64_t Qv) { \
        fwd_tile512(in, cs, ni, w, Op, off, out, Qv, NT, NZ, NH);                                            \
    }
#define FWD_TILES512(NT)       \
    FWD_TILE512(NT, 0, 1)      \
    FWD_TILE512(NT, 1, 0)      \
    FWD_TILE512(NT, 1, 1)      \
    FWD_TILE512(NT, 2, 0)      \
    FWD_TILE512(NT, 2, 1)      \
    FWD_TILE512(NT, 3, 0)      \
    FWD_TILE512(NT, 3, 1)      \
    FWD_TILE512(NT, 4, 0)
FWD_TILES512(9)
FWD_TILES512(4)
FWD_TILES512(2)
FWD_TILES512(1)
#define FWD_ROW512(NT)                                                                                           \
    {                                                                                                            \
        NULL, fwd512_##NT##_0_1, fwd512_##NT##_1_0, fwd512_##NT##_1_1, fwd512_##NT##_2_0, fwd512_##NT##_2_1,     \
            fwd512_##NT##_3_0, fwd512_##NT##_3_1, fwd512_##NT##_4_0                                              \
    }

/* out [Op][Qv] = sum over the ni plane groups at in (stride cs) and the nt taps of
 * w [ni][nt][Op] times the plane read at off[t]. nt is 9, 4, 2 or 1. */
static void conv_planes(const igi_c3 *c, const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op,
                        const int64_t *off, int nt, float *out) {
    static const fwd_tile_fn tiles[4][3] = {{fwd_tile_1_1, fwd_tile_1_2, fwd_tile_1_3},
                                            {fwd_tile_2_1, fwd_tile_2_2, fwd_tile_2_3},
                                            {fwd_tile_4_1, fwd_tile_4_2, fwd_tile_4_3},
                                            {fwd_tile_9_1, fwd_tile_9_2, fwd_tile_9_3}};
    /* [taps][eighths of positions] for 8..64 positions */
    static const fwd_tile_fn tiles512[4][9] = {FWD_ROW512(1), FWD_ROW512(2), FWD_ROW512(4), FWD_ROW512(9)};
    int row = nt == 9 ? 3 : nt == 4 ? 2 : nt == 2 ? 1 : 0;
    IG_ASSERT(nt == 9 || nt == 4 || nt == 2 || nt == 1);
    if (c->isa == 2) {
        for (int64_t q0 = 0; q0 < c->Qv; q0 += 64) {
            int64_t e = (c->Qv - q0) / 8;
            fwd_tile_fn f = tiles512[row][e >= 8 ? 8 : e];
            for (int64_t o0 = 0; o0 < Op; o0 += 4) f(in + q0, cs, ni, w + o0, Op, off, out + o0 * c->Qv + q0, c->Qv);
        }
        return;
    }
    for (int64_t q0 = 0; q0 < c->Qv; q0 += C3_QB * 8) {
        int64_t nv = (c->Qv - q0) / 8;
        fwd_tile_fn f = tiles[row][(nv >= C3_QB ? C3_QB : nv) - 1];
        for (int64_t o0 = 0; o0 < Op; o0 += 4) f(in + q0, cs, ni, w + o0, Op, off, out + o0 * c->Qv + q0, c->Qv);
    }
}

/* dw[k][t][o0..o0+8*NV) (+)= sum_q x[k][q + o3[t]] * dyt[q][o0..] for NC plane groups x
 * (stride cs) and three taps; dw rows: group stride ldc, tap stride ld. */
C3_TARGET C3_INLINE void dw_tile(const float *x, int64_t cs, const int64_t *o3, const float *dyt, int64_t ld,
                                 int64_t Q, float *dw, int64_t ldc, const int NC, const int NV) {
    __m256 acc[2][3][2];
    const float *xp[2][3];
    C3_UNROLL for (int k = 0; k < NC; k++)
        C3_UNROLL for (int t = 0; t < 3; t++) {
            xp[k][t] = x + k * cs + o3[t];
            C3_UNROLL for (int v = 0; v < NV; v++) acc[k][t][v] = _mm256_loadu_ps(dw + k * ldc + t * ld + 8 * v);
        }
    for (int64_t q = 0; q < Q; q++) {
        __m256 d[2];
        C3_UNROLL for (int v = 0; v < NV; v++) d[v] = _mm256_loadu_ps(dyt + q * ld + 8 * v);
        C3_UNROLL for (int k = 0; k < NC; k++)
            C3_UNROLL for (int t = 0; t < 3; t++) {
                __m256 xb = _mm256_broadcast_ss(xp[k][t] + q);
                C3_UNROLL for (int v = 0; v < NV; v++) acc[k][t][v] = _mm256_fmadd_ps(xb, d[v], acc[k][t][v]);
            }
    }
    C3_UNROLL for (int k = 0; k < NC; k++)
        C3_UNROLL for (int t = 0; t < 3; t++)
            C3_UNROLL for (int v = 0; v < NV; v++) _mm256_storeu_ps(dw + k * ldc + t * ld + 8 * v, acc[k][t][v]);
}

#define DW_TILE(NC, NV)                                                                                      \
    C3_TARGET static void dw_tile_##NC##_##NV(const float *x, int64_t cs, const int64_t *o3, const float *dyt, \
                                               int64_t ld, int64_t Q, float *dw, int64_t ldc) {              \
        dw_tile(x, cs, o3, dyt, ld, Q, dw, ldc, NC, NV);                                                     \
    }
DW_TILE(2, 2)
DW_TILE(2, 1)
DW_TILE(1, 2)
DW_TILE(1, 1)

/* The weight-gradient tile with 16-lane vectors: NC plane groups x 3 taps x NV vectors of
 * 16 output channels (up to 24 accumulators). */
C3_TARGET512 C3_INLINE void dw_tile512(const float *x, int64_t cs, const int64_t *o3, const float *dyt, int64_t ld,
                                       int64_t Q, float *dw, int64_t ldc, const int NC, const int NV) {
    __m512 acc[4][3][2];
    const float *xp[4][3];
    C3_UNROLL for (int k = 0; k < NC; k++)
        C3_UNROLL for (int t = 0; t < 3; t++) {
            xp[k][t] = x + k * cs + o3[t];
            C3_UNROLL for (int v = 0; v < NV; v++) acc[k][t][v] = _mm512_loadu_ps(dw + k * ldc + t * ld + 16 * v);
        }
    for (int64_t q = 0; q < Q; q++) {
        __m512 d[2];
        C3_UNROLL for (int v = 0; v < NV; v++) d[v] = _mm512_loadu_ps(dyt + q * ld + 16 * v);
        C3_UNROLL for (int k = 0; k < NC; k++)
            C3_UNROLL for (int t = 0; t < 3; t++) {
                __m512 xb = _mm512_set1_ps(xp[k][t][q]);
                C3_UNROLL for (int v = 0; v < NV; v++) acc[k][t][v] = _mm512_fmadd_ps(xb, d[v], acc[k][t][v]);
            }
    }
    C3_UNROLL for (int k = 0; k < NC; k++)
        C3_UNROLL for (int t = 0; t < 3; t++)
            C3_UNROLL for (int v = 0; v < NV; v++) _mm512_storeu_ps(dw + k * ldc + t * ld + 16 * v, acc[k][t][v]);
}

typedef void (*dw_tile_fn)(const float *, int64_t, const int64_t *, const float *, int64_t, int64_t, float *, int64_t);
#define DW_TILE512(NC, NV)                                                                                      \
    C3_TARGET512 static void dw512_##NC##_##NV(const float *x, int64_t cs, const int64_t *o3, const float *dyt, \
                                               int64_t ld, int64_t Q, float *dw, int64_t ldc) {               \
        dw_tile512(x, cs, o3, dyt, ld, Q, dw, ldc, NC, NV);                                                    \
    }
DW_TILE512(1, 1)
DW_TILE512(2, 1)
DW_TILE512(3, 1)
DW_TILE512(4, 1)
DW_TILE512(1, 2)
DW_TILE512(2, 2)
DW_TILE512(3, 2)
DW_TILE512(4, 2)

static void dw_planes512(const igi_c3 *c, const float *xp, const float *dyt, float *dwp) {
    static const dw_tile_fn tiles[2][4] = {{dw512_1_1, dw512_2_1, dw512_3_1, dw512_4_1},
                                           {dw512_1_2, dw512_2_2, dw512_3_2, dw512_4_2}};
    int64_t ld = c->Ov, ldc = 9 * c->Ov;
    for (int64_t i0 = 0; i0 < c->C; i0 += 4) {
        int64_t nc = c->C - i0 < 4 ? c->C - i0 : 4;
        for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t o0 = 0; o0 < c->Ov; o0 += 32) {
                int64_t nv = c->Ov - o0 >= 32 ? 2 : 1;
                tiles[nv - 1][nc - 1](xp + i0 * c->cs, c->cs, c->off + 3 * ky, dyt + o0, ld, c->Q,
                                      dwp + (i0 * 9 + ky * 3) * ld + o0, ldc);
            }
    }
}

/* dyt [Q][Ov] = dY [O][Ho*Wo] transposed to position-major, positions in the bordered
 * layout (the discarded column and the channels past O are left as they are: zero). In
 * blocks of 16 channels x 16 positions, transposed in registers (four rounds of swapping
 * the off-diagonal halves of ever smaller blocks) and stored as 16 rows of 16 channels. */
C3_TARGET512 static void transpose_dy512(const igi_c3 *c, const float *dy, float *dyt) {
    int64_t HW = c->Ho * c->Wo;
    __m512i lo[4], hi[4];
    for (int k = 0; k < 4; k++) {
        int sw = 8 >> k, il[16], ih[16];
        for (int j = 0; j < 16; j++) {
            il[j] = (j & sw) ? 16 + j - sw : j;
            ih[j] = (j & sw) ? 16 + j : j + sw;
        }
        lo[k] = _mm512_loadu_si512(il);
        hi[k] = _mm512_loadu_si512(ih);
    }
    for (int64_t o0 = 0; o0 < c->O; o0 += 16) {
        int64_t no = c->O - o0 < 16 ? c->O - o0 : 16;
        int64_t r = 0, x = 0; /* row and column of position p0 */
        for (int64_t p0 = 0; p0 < HW; p0 += 16) {
            int64_t np = HW - p0 < 16 ? HW - p0 : 16;
            __mmask16 m = (__mmask16)(np == 16 ? 0xffff : (1u << np) - 1);
            __m512 v[16];
            C3_UNROLL for (int k = 0; k < 16; k++)
                v[k] = k < no ? _mm512_maskz_loadu_ps(m, dy + (o0 + k) * HW + p0) : _mm512_setzero_ps();
            C3_UNROLL for (int k = 0; k < 4; k++) {
                int sw = 8 >> k;
                C3_UNROLL for (int i = 0; i < 16; i++) {
                    if (i & sw) continue;
                    __m512 a = v[i], b = v[i + sw];
                    v[i] = _mm512_permutex2var_ps(a, lo[k], b);
                    v[i + sw] = _mm512_permutex2var_ps(a, hi[k], b);
                }
            }
            for (int64_t j = 0; j < np; j++) {
                _mm512_storeu_ps(dyt + (r * c->Wp + x) * c->Ov + o0, v[j]);
                if (++x == c->Wo) x = 0, r++;
            }
        }
    }
}

/* dwp [C][9][Ov] += the weight gradient of one image (xp its input planes, dyt [Q][Ov]). */
static void dw_planes(const igi_c3 *c, const float *xp, const float *dyt, float *dwp) {
    if (c->isa == 2) {
        dw_planes512(c, xp, dyt, dwp);
        return;
    }
    int64_t ld = c->Ov, ldc = 9 * c->Ov;
    for (int64_t i0 = 0; i0 < c->C; i0 += 2) {
        bool two = i0 + 1 < c->C;
        for (int64_t ky = 0; ky < 3; ky++) {
            const float *x = xp + i0 * c->cs;
            const int64_t *o3 = c->off + 3 * ky;
            for (int64_t o0 = 0; o0 < c->Ov; o0 += 16) {
                bool wide = o0 + 16 <= c->Ov;
                float *dw = dwp + (i0 * 9 + ky * 3) * ld + o0;
                const float *d = dyt + o0;
                if (two && wide)
                    dw_tile_2_2(x, c->cs, o3, d, ld, c->Q, dw, ldc);
                else if (two)
                    dw_tile_2_1(x, c->cs, o3, d, ld, c->Q, dw, ldc);
                else if (wide)
                    dw_tile_1_2(x, c->cs, o3, d, ld, c->Q, dw, ldc);
                else
                    dw_tile_1_1(x, c->cs, o3, d, ld, c->Q, dw, ldc);
            }
        }
    }
}

#else /* not x86-64: igi_c3_plan never selects the direct path */

static void conv_planes(const igi_c3 *c, const float *in, int64_t cs, int64_t ni, const float *w, int64_t Op,
                        const int64_t *off, int nt, float *out) {
    (void)c, (void)in, (void)cs, (void)ni, (void)w, (void)Op, (void)off, (void)nt, (void)out;
}
static void dw_planes(const igi_c3 *c, const float *xp, const float *dyt, float *dwp) {
    (void)c, (void)xp, (void)dyt, (void)dwp;
}

#endif

static void transpose_dy(const igi_c3 *c, const float *dy, float *dyt) {
#if C3_X86
    if (c->isa == 2) {
        transpose_dy512(c, dy, dyt);
        return;
    }
#endif
    int64_t HW = c->Ho * c->Wo;
    for (int64_t o = 0; o < c->O; o++)
        for (int64_t r = 0; r < c->Ho; r++)
            for (int64_t q = 0; q < c->Wo; q++) dyt[(r * c->Wp + q) * c->Ov + o] = dy[o * HW + r * c->Wo + q];
}

/* ---- per image ---------------------------------------------------------------------------- */

void igi_c3_forward(const igi_c3 *c, const float *x, const int64_t xs[3], const float *wf, const float *bias,
                    float *y, float *scratch) {
    float *xp = scratch, *out = scratch + c->C * c->cs;
    fill_input(c, x, xs[0], xs[1], xs[2], xp);
    conv_planes(c, xp, c->cs, c->C, wf, c->Op4, c->off, 9, out);
    for (int64_t o = 0; o < c->O; o++) {
        const float *src = out + o * c->Qv;
        float *dst = y + o * c->Ho * c->Wo;
        if (bias) {
            float b = bias[o];
            for (int64_t r = 0; r < c->Ho; r++)
                for (int64_t q = 0; q < c->Wo; q++) dst[r * c->Wo + q] = src[r * c->Wp + q] + b;
        } else {
            for (int64_t r = 0; r < c->Ho; r++)
                memcpy(dst + r * c->Wo, src + r * c->Wp, sizeof(float) * (size_t)c->Wo);
        }
    }
}

void igi_c3_backward(const igi_c3 *c, const float *x, const int64_t xs[3], const float *dy, const float *wb,
                     float *dx, bool need_w, float *scratch) {
    float *next = scratch;
    if (need_w) {
        float *xp = next, *dyt = xp + c->C * c->cs, *dwp = dyt + c->Q * c->Ov;
        next = dwp + c->C * 9 * c->Ov;
        fill_input(c, x, xs[0], xs[1], xs[2], xp);
        /* dY transposed to [position][channel]; the discarded column and the channels
         * past O stay zero from the slot's start */
        transpose_dy(c, dy, dyt);
        dw_planes(c, xp, dyt, dwp);
    }
    if (dx) {
        float *dyp = next, *dxo = dyp + c->O * c->ps;
        c3_prog pr[4];
        int np = dx_programs(c, pr);
        fill_dy(c, dy, dyp);
        for (int k = 0; k < np; k++) {
            conv_planes(c, dyp, c->ps, c->O, wb + pr[k].wbase, c->Cp4, pr[k].off, pr[k].nt, dxo);
            if (c->s == 1) {
                for (int64_t i = 0; i < c->C; i++)
                    for (int64_t r = 0; r < c->H; r++)
                        memcpy(dx + (i * c->H + r) * c->W, dxo + i * c->Qv + r * c->Wp, sizeof(float) * (size_t)c->W);
                continue;
            }
            /* phase (a, b): dX rows 2r + a, columns 2q + b */
            int64_t a = pr[k].a, b = pr[k].b, Ha = (c->H - a + 1) / 2, Wb = (c->W - b + 1) / 2;
            for (int64_t i = 0; i < c->C; i++)
                for (int64_t r = 0; r < Ha; r++) {
                    float *d = dx + (i * c->H + 2 * r + a) * c->W + b;
                    const float *s = dxo + i * c->Qv + r * c->Wp;
                    for (int64_t q = 0; q < Wb; q++) d[2 * q] = s[q];
                }
        }
    }
}

void igi_c3_dw_finish(const igi_c3 *c, float *part, int64_t S, int64_t stride, float *dw) {
    int64_t n = c->C * 9 * c->Ov;
    for (int64_t s = 1; s < S; s++) {
        const float *ps = part + s * stride;
        for (int64_t k = 0; k < n; k++) part[k] += ps[k];
    }
    for (int64_t i = 0; i < c->C; i++)
        for (int64_t t = 0; t < 9; t++)
            for (int64_t o = 0; o < c->O; o++) dw[(o * c->C + i) * 9 + t] = part[(i * 9 + t) * c->Ov + o];
}
