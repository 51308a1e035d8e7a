/*
 * core/sgemm512.c — a blocked single-precision GEMM with an AVX-512 microkernel, used by
 * igi_gemm for f32 on CPUs with AVX-512F.
 *
 * Why: Debian's OpenBLAS 0.3.21 takes this machine's AVX-512 AMD EPYC for a "Cooperlake"
 * and runs its AVX2 Haswell sgemm kernel, about 60% of what the AVX-512 kernel does here.
 * The MLP's Linear layers and the 1x1 convolutions are all GEMMs of a few hundred rows,
 * columns and depth, where that gap is most of a training step.
 *
 * How (the usual Goto/BLIS structure, one thread; igi_gemm splits C over the pool):
 *   for each NC-wide column block jc of C, for each KC-deep slice pc of k:
 *     pack op(B)[pc:pc+kc, jc:jc+nc] into panels of NR columns, [panel][k][NR], zero-padded;
 *     for each MC-tall row block ic:
 *       pack op(A)[ic:ic+mc, pc:pc+kc] into panels of MR rows, [panel][k][MR], zero-padded;
 *       for each NR panel, for each MR panel: the MR x NR microkernel over kc.
 * The microkernel keeps an MR x NR tile of C in MR*NV zmm registers (NR = 16*NV); per k it
 * loads NV vectors of the B panel and, per row, broadcasts one A value into NV FMAs. A
 * B panel (kc x NR) stays in L1 while the A panels stream from L2; the packed A block
 * (mc x kc) fits L2.
 *
 * Results: the tile starts from 0 (beta == 0; C is never read, it may hold NaN), from C
 * (beta == 1, or any later k slice) or from beta*C, and adds a(m,k)*b(k,n) with one FMA
 * per k in increasing k. So each element is the same chain of FMAs whatever M, N, the
 * blocking, the tile position or igi_gemm's split: results never depend on the thread
 * count, and differ from OpenBLAS's (which sums in other orders) by rounding only.
 *
 * Edge tiles (M or N not a multiple of MR or NR) run the same kernel on a copy of the
 * tile in a local buffer; the packed panels' zero padding keeps the extra lanes finite.
 * Packing buffers are allocated once per concurrent caller and kept (claim_buffer), so
 * a training step allocates nothing.
 */
#include "sgemm512.h"

#include <stdlib.h>
#include <string.h>

#include "tensor_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(IGI_NO_CLONES)
#define SG_X86 1
#include <immintrin.h>
#define SG_TARGET __attribute__((target("avx512f,avx512vl,fma")))
#define SG_INLINE static inline __attribute__((always_inline))
/* The tile's loops over registers must unroll completely, or the accumulators spill. */
#define SG_UNROLL _Pragma("GCC unroll 32")
#else
#define SG_X86 0
#endif

/* Register tile: MR rows x NV vectors of 16 columns (MR * NV accumulators of the 32 zmm
 * registers, NV for the B vectors, the broadcasts folded into the FMAs). */
#ifndef SG_MR
#define SG_MR 6
#endif
#ifndef SG_NV
#define SG_NV 4
#endif
#define SG_NR (16 * SG_NV)
/* Cache blocks: KC deep (a B panel of KC x NR floats in the 48 KB L1), MC rows of A (an
 * MC x KC packed block well inside the 1 MB L2), NC columns of B (KC x NC packed floats,
 * in L2 with the A block). */
#ifndef SG_KC
#define SG_KC 256
#endif
#ifndef SG_MC
#define SG_MC (SG_MR * 16)
#endif
#ifndef SG_NC
#define SG_NC (SG_NR * 16)
#endif

static igi_sgemm_path sg_path = IGI_SGEMM_AUTO;
static int sg_state = -1; /* -1: not read yet; else bit 0: CPU has AVX-512F */

/* The CPU and environment, read once (benign race: every thread computes the same). */
static void sg_init(void) {
    if (sg_state >= 0) return;
    int has = 0;
#if SG_X86
    __builtin_cpu_init();
    has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
#endif
    const char *env = getenv("IGNIS_SGEMM"); /* "blas" or "own": for A/B timing */
    if (env && strcmp(env, "blas") == 0) sg_path = IGI_SGEMM_BLAS;
    if (env && strcmp(env, "own") == 0) sg_path = IGI_SGEMM_OWN;
    sg_state = has;
}

igi_sgemm_path igi_sgemm_force(igi_sgemm_path p) {
    sg_init();
    igi_sgemm_path was = sg_path;
    sg_path = p;
    return was;
}

int64_t igi_sgemm512_mr(void) { return SG_MR; }
int64_t igi_sgemm512_nr(void) { return SG_NR; }

bool igi_sgemm512_use(int64_t M, int64_t N, int64_t K) {
    sg_init();
    if (!(sg_state & 1) || sg_path == IGI_SGEMM_BLAS) return false;
    if (sg_path == IGI_SGEMM_OWN) return true;
    /* Narrow products waste most of the 6 x 64 tile's lanes or rows: OpenBLAS's kernels,
     * narrower, were faster there (bench/gemm_bench, K = 256: N = 16 0.42x, N = 32 0.77x,
     * N = 48 1.11x; M = 8 0.86x, M = 10 1.7x; 32^3 0.72x, 64^3 1.5x). */
    (void)K;
    return N >= 48 && M >= 10;
}

#if SG_X86

/* ---- packing ------------------------------------------------------------------------------ */

/* op(A)[i0:i0+mc, p0:p0+kc] into panels of MR rows: Ap[panel][k][r], rows past M zero. */
SG_TARGET static void pack_a(bool ta, const float *A, int64_t lda, int64_t M, int64_t i0, int64_t mc, int64_t p0,
                             int64_t kc, float *Ap) {
    for (int64_t ip = 0; ip < mc; ip += SG_MR) {
        float *dst = Ap + ip * kc;
        int64_t rows = M - (i0 + ip) < SG_MR ? M - (i0 + ip) : SG_MR;
        if (ta) {
            /* A(m, k) at k*lda + m: MR contiguous floats per k. */
            __mmask16 live = (__mmask16)((1u << rows) - 1), all = (__mmask16)((1u << SG_MR) - 1);
            const float *src = A + p0 * lda + i0 + ip;
            for (int64_t k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(dst + k * SG_MR, all, _mm512_maskz_loadu_ps(live, src + k * lda));
        } else {
            /* A(m, k) at m*lda + k: each row is contiguous in k, written with stride MR. */
            for (int64_t r = 0; r < SG_MR; r++) {
                if (r < rows) {
                    const float *src = A + (i0 + ip + r) * lda + p0;
                    for (int64_t k = 0; k < kc; k++) dst[k * SG_MR + r] = src[k];
                } else {
                    for (int64_t k = 0; k < kc; k++) dst[k * SG_MR + r] = 0.0f;
                }
            }
        }
    }
}

/* 16 rows of 16 floats (r[i][j]) transposed in registers: r[j] becomes column j. */
SG_TARGET SG_INLINE void transpose16(__m512 r[16]) {
    __m512 a[16], b[16];
    SG_UNROLL for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* b[4g + t], lane l: column 4l + t of rows 4g..4g+3. */
    SG_UNROLL for (int g = 0; g < 4; g++) {
        b[4 * g + 0] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0x44);
        b[4 * g + 1] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0xEE);
        b[4 * g + 2] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0x44);
        b[4 * g + 3] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0xEE);
    }
    /* Column 4l + t gathers lane l of b[t], b[4 + t], b[8 + t], b[12 + t]. */
    SG_UNROLL for (int t = 0; t < 4; t++) {
        __m512 d0 = _mm512_shuffle_f32x4(b[t], b[4 + t], 0x88), d1 = _mm512_shuffle_f32x4(b[t], b[4 + t], 0xDD);
        __m512 d2 = _mm512_shuffle_f32x4(b[8 + t], b[12 + t], 0x88),
               d3 = _mm512_shuffle_f32x4(b[8 + t], b[12 + t], 0xDD);
        r[t] = _mm512_shuffle_f32x4(d0, d2, 0x88);
        r[8 + t] = _mm512_shuffle_f32x4(d0, d2, 0xDD);
        r[4 + t] = _mm512_shuffle_f32x4(d1, d3, 0x88);
        r[12 + t] = _mm512_shuffle_f32x4(d1, d3, 0xDD);
    }
}

/* op(B)[p0:p0+kc, j0:j0+nc] into panels of NR columns: Bp[panel][k][c], columns past N
 * zero. */
SG_TARGET static void pack_b(bool tb, const float *B, int64_t ldb, int64_t N, int64_t j0, int64_t nc, int64_t p0,
                             int64_t kc, float *Bp) {
    for (int64_t jp = 0; jp < nc; jp += SG_NR) {
        float *dst = Bp + jp * kc;
        for (int64_t g = 0; g < SG_NR; g += 16) {
            int64_t n0 = j0 + jp + g, cols = N - n0 < 16 ? (N - n0 > 0 ? N - n0 : 0) : 16;
            float *d = dst + g;
            if (!tb) {
                /* B(k, n) at k*ldb + n: 16 contiguous floats per k. */
                __mmask16 live = (__mmask16)((1u << cols) - 1);
                const float *src = B + p0 * ldb + n0;
                if (cols == 16)
                    for (int64_t k = 0; k < kc; k++) _mm512_storeu_ps(d + k * SG_NR, _mm512_loadu_ps(src + k * ldb));
                else
                    for (int64_t k = 0; k < kc; k++)
                        _mm512_storeu_ps(d + k * SG_NR, _mm512_maskz_loadu_ps(live, src + k * ldb));
                continue;
            }
            /* B(k, n) at n*ldb + k: rows of the stored matrix are columns here; 16 x 16
             * blocks transposed in registers, the rest one float at a time. */
            const float *src = B + n0 * ldb + p0;
            int64_t k = 0;
            if (cols == 16) {
                for (; k + 16 <= kc; k += 16) {
                    __m512 r[16];
                    SG_UNROLL for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * ldb + k);
                    transpose16(r);
                    SG_UNROLL for (int i = 0; i < 16; i++) _mm512_storeu_ps(d + (k + i) * SG_NR, r[i]);
                }
            }
            for (; k < kc; k++) {
                float *dk = d + k * SG_NR;
                for (int64_t c = 0; c < 16; c++) dk[c] = c < cols ? src[c * ldb + k] : 0.0f;
            }
        }
    }
}

/* ---- the microkernel -------------------------------------------------------------------- */

/* C tile [MR][NR] (row stride ldc) over kc: start 0 (init 0), C (init 1) or beta*C (init
 * 2), then one FMA per k in order. a: [kc][MR], b: [kc][NR] (64-byte aligned). */
SG_TARGET static void kernel(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int init,
                             float beta) {
    __m512 acc[SG_MR][SG_NV];
    if (init == 0) {
        SG_UNROLL for (int r = 0; r < SG_MR; r++)
            SG_UNROLL for (int v = 0; v < SG_NV; v++) acc[r][v] = _mm512_setzero_ps();
    } else {
        __m512 bv = _mm512_set1_ps(beta);
        SG_UNROLL for (int r = 0; r < SG_MR; r++)
            SG_UNROLL for (int v = 0; v < SG_NV; v++) {
                acc[r][v] = _mm512_loadu_ps(c + r * ldc + 16 * v);
                if (init == 2) acc[r][v] = _mm512_mul_ps(acc[r][v], bv);
            }
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 bk[SG_NV];
        SG_UNROLL for (int v = 0; v < SG_NV; v++) bk[v] = _mm512_load_ps(b + k * SG_NR + 16 * v);
        SG_UNROLL for (int r = 0; r < SG_MR; r++) {
            __m512 av = _mm512_set1_ps(a[k * SG_MR + r]);
            SG_UNROLL for (int v = 0; v < SG_NV; v++) acc[r][v] = _mm512_fmadd_ps(av, bk[v], acc[r][v]);
        }
    }
    SG_UNROLL for (int r = 0; r < SG_MR; r++)
        SG_UNROLL for (int v = 0; v < SG_NV; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

/* A partial tile (rows x cols of C) through a local MR x NR copy. */
SG_TARGET static void kernel_edge(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int init,
                                  float beta, int64_t rows, int64_t cols) {
    _Alignas(64) float t[SG_MR * SG_NR];
    if (init) {
        memset(t, 0, sizeof t);
        for (int64_t r = 0; r < rows; r++) memcpy(t + r * SG_NR, c + r * ldc, sizeof(float) * (size_t)cols);
    }
    kernel(kc, a, b, t, SG_NR, init, beta);
    for (int64_t r = 0; r < rows; r++) memcpy(c + r * ldc, t + r * SG_NR, sizeof(float) * (size_t)cols);
}

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Packing buffers: a few slots, each holding one buffer of the largest size a call
 * needs, claimed by a call for its duration and kept afterwards, so the steady state
 * allocates nothing even when the pool's threads pack at the same time (a buffer taken
 * from and returned to the caching allocator per call did: two threads at once sometimes
 * found one cached block). A call that finds every slot busy (more threads than slots)
 * takes its buffer from igi_alloc and returns it. The slots' buffers stay reachable from
 * here until the process exits. */
#define SG_SLOTS 16
#define SG_BUF_BYTES (sizeof(float) * (size_t)((SG_NC + SG_MC) * SG_KC))
static atomic_bool slot_busy[SG_SLOTS];
static float *slot_buf[SG_SLOTS];

/* Slot buffers come from the C library, not igi_alloc: they are scratch of the process
 * (~0.6 MB per thread), not tensor memory, and would otherwise show in ig_mem_get_stats's
 * live bytes forever. */
static float *slot_alloc(void) {
    void *p = NULL;
    return posix_memalign(&p, 64, SG_BUF_BYTES) == 0 ? p : NULL;
}

static float *claim_buffer(int *slot) {
    for (int i = 0; i < SG_SLOTS; i++) {
        if (atomic_exchange_explicit(&slot_busy[i], true, memory_order_acquire)) continue;
        if (!slot_buf[i]) slot_buf[i] = slot_alloc();
        if (!slot_buf[i]) {
            atomic_store_explicit(&slot_busy[i], false, memory_order_release);
            return NULL;
        }
        *slot = i;
        return slot_buf[i];
    }
    *slot = -1;
    return igi_alloc(IG_CPU, SG_BUF_BYTES);
}

void igi_sgemm512_reserve(int n) {
    for (int i = 0; i < n && i < SG_SLOTS; i++) {
        if (atomic_exchange_explicit(&slot_busy[i], true, memory_order_acquire)) continue; /* in use: allocated */
        if (!slot_buf[i]) slot_buf[i] = slot_alloc();
        atomic_store_explicit(&slot_busy[i], false, memory_order_release);
    }
}

static void release_buffer(int slot, float *buf) {
    if (slot < 0)
        igi_free(IG_CPU, buf, SG_BUF_BYTES);
    else
        atomic_store_explicit(&slot_busy[slot], false, memory_order_release);
}

bool igi_sgemm512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc) {
    sg_init();
    if (!(sg_state & 1)) return false;
    if (M <= 0 || N <= 0) return true;
    if (K <= 0) {
        /* C = beta*C; beta == 0 writes zeros without reading C. */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return true;
    }
    /* K in equal slices of at most KC (784 = 4 x 196, not 3 x 256 + 16: a thin last
     * slice costs a full pass of packing and C traffic for little work). */
    int64_t kslices = (K + SG_KC - 1) / SG_KC, kcmax = (K + kslices - 1) / kslices;
    int64_t ncmax = round_up(N < SG_NC ? N : SG_NC, SG_NR);
    size_t b_floats = (size_t)(ncmax * kcmax);
    int slot;
    float *buf = claim_buffer(&slot);
    if (!buf) return false;
    /* Bp first: NR floats are 64 bytes times NV, so every B panel row is aligned. */
    float *Bp = buf, *Ap = buf + b_floats;
    for (int64_t j0 = 0; j0 < N; j0 += SG_NC) {
        int64_t nc = N - j0 < SG_NC ? N - j0 : SG_NC;
        for (int64_t p0 = 0; p0 < K; p0 += kcmax) {
            int64_t kc = K - p0 < kcmax ? K - p0 : kcmax;
            int init = p0 > 0 ? 1 : beta == 0.0f ? 0 : beta == 1.0f ? 1 : 2;
            pack_b(tb, B, ldb, N, j0, round_up(nc, SG_NR), p0, kc, Bp);
            for (int64_t i0 = 0; i0 < M; i0 += SG_MC) {
                int64_t mc = M - i0 < SG_MC ? M - i0 : SG_MC;
                pack_a(ta, A, lda, M, i0, round_up(mc, SG_MR), p0, kc, Ap);
                for (int64_t jr = 0; jr < nc; jr += SG_NR) {
                    int64_t cols = nc - jr < SG_NR ? nc - jr : SG_NR;
                    for (int64_t ir = 0; ir < mc; ir += SG_MR) {
                        int64_t rows = mc - ir < SG_MR ? mc - ir : SG_MR;
                        float *c = C + (i0 + ir) * ldc + j0 + jr;
                        const float *a = Ap + ir * kc, *b = Bp + jr * kc;
                        if (rows == SG_MR && cols == SG_NR)
                            kernel(kc, a, b, c, ldc, init, beta);
                        else
                            kernel_edge(kc, a, b, c, ldc, init, beta, rows, cols);
                    }
                }
            }
        }
    }
    release_buffer(slot, buf);
    return true;
}

#else

void igi_sgemm512_reserve(int n) { (void)n; }

bool igi_sgemm512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)beta, (void)C,
        (void)ldc;
    return false;
}

#endif
