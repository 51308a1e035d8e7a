/*
 * cuda/conv_igemm.cu — 2-D convolution as an implicit GEMM for float32 and bfloat16
 * (groups == 1): the im2col values are gathered straight from x (or dy) into shared memory,
 * tile by tile, so the [K, N*Ho*Wo] column matrix of cuda/conv.cu is never written or read. conv.cu calls
 * in here when igc_conv_igemm_applies() says so and keeps im2col + cuBLAS for the rest
 * (f64, groups > 1, empty or oversized geometry, IGNIS_CUDA_CONV=im2col).
 *
 * Three GEMMs, every accumulation in fp32 registers:
 *   forward      y  [N*Ho*Wo pixels, O]  = gather(x)  [pixels, C*kh*kw] @ w^T  (+ bias)
 *   backward dx  dx [N*H*W pixels, C]    = gather(dy) [pixels, O*kh*kw] @ w'   (w' [O*kh*kw, C])
 *   backward dw  dw [O, C*kh*kw]         = dy^T [O, pixels] @ gather(x) [pixels, C*kh*kw]
 * The first two share one tiled kernel (igm_tile_kernel, MODE says which gather); dw has
 * its own (igm_dw_kernel) because its reduction (all pixels: 200k at batch 256) is long and
 * its output small: the pixels are split into S slices, each block writes its partial tile
 * to scratch [S, O, K], and igm_dw_sum adds the S partials per element in slice order (a
 * fixed order: bit-identical run to run, no float atomics). A forward or dX grid too small
 * to fill the GPU splits its reduction likewise (igm_split_launch, igm_split_sum).
 *
 * fp16 autocast on f32 tensors (g.amp == IG_AMP_FP16): every operand value is rounded to
 * nearest even (__float2half_rn, as cuda/amp.cu) when it is staged into shared memory; the
 * products of two such values are exact in fp32, so this computes what cublasGemmEx
 * computes from fp16 copies with CUBLAS_COMPUTE_32F. On sm_80+ the three GEMMs then run on
 * tensor cores (igm_tc_tile_kernel, igm_tc_dw_kernel: the same loaders, the stages kept as
 * __half, nvcuda::wmma 16x16x16 fragments with fp32 accumulators), unless
 * IGNIS_CUDA_CONV=simt or igi_cuda_conv_force(SIMT) keeps the SIMT kernels, which round the
 * same values and multiply them with fp32 FMAs. (bf16 autocast never reaches the f32
 * kernels: core converts the operands to IG_BF16 first, which runs the bf16 kernels below.)
 *
 * bf16 activations (dt IG_BF16: x, w, b, y, dy, dx, dw all bf16; igc_conv2d_igemm_bf16 and
 * igc_conv2d_backward_igemm_bf16): the same kernels with element type E = __nv_bfloat16
 * (the template parameter E of igm_tile / igm_dw and their kernels, float otherwise). The
 * loaders read bf16 straight from memory (half the bytes) and stage the values as they are
 * (already bf16: no rounding; widened exactly for the SIMT kernels, copied as bf16 for the
 * tensor cores on sm_80+, 16x16x16 __nv_bfloat16 fragments); accumulation stays fp32,
 * and each output element (forward + bias, dX, dW) is rounded to bf16 once, to nearest
 * even, where it is stored. Split reductions keep their partials in fp32 (forward / dX in
 * igi_alloc scratch, dW's slices in the col scratch, f32-sized for bf16 too: igi_conv)
 * and round in the final sum.
 *
 * TF32 (ig_cuda_set_tf32(true), autocast off; the switch cuBLAS's GEMMs follow too): the
 * operands are rounded to tf32 (10 mantissa bits, nearest with ties away from zero) as they
 * are staged, kept as float, and multiplied on tensor cores through 16x16x8
 * precision::tf32 fragments (two per stage), or with fp32 FMAs on the SIMT kernels under
 * IGNIS_CUDA_CONV=simt. TF32 is off by default: exact f32 is full fp32 math on the SIMT
 * kernels.
 *
 * Plain CUDA C++ on purpose (shared memory, registers, __syncthreads, wmma; no PTX or
 * cp.async): the kernels also run under the CPU emulator in CI (tests/cuda/emu, whose
 * mma.h emulates the wmma subset used here).
 *
 * Index types: spatial sizes, kernel taps, strides, paddings and dilations are below 2^14
 * and the reduction lengths below 2^30 (igc_conv_igemm_applies), so per-tap arithmetic is
 * 32-bit; element offsets and pixel indices are 64-bit.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <type_traits>

#include "cuda_impl.h"

#define IGM_THREADS 256 /* every kernel here: 256 threads per block */
#define IGM_BK 16       /* tile kernel: reduction values per shared-memory stage */
#define IGM_TM 4        /* tile kernel: rows (pixels) per thread */
#define IGM_BR 16       /* dw kernel: pixels per shared-memory stage */
/* dw: aim for about this many blocks in the grid (several per SM on a 132-SM H200) and give
 * each slice at least IGM_DW_MIN_CHUNKS stages; both fixed, so S depends on the geometry
 * alone and the result is the same on every GPU. */
#define IGM_DW_BLOCKS 512
#define IGM_DW_MIN_CHUNKS 32
#define IGM_MAX_SPATIAL (1 << 14)
#define IGM_MAX_K (1 << 30)

/* What a tile launch computes: forward, or backward data (IGM_BWD_DATA_S1: unit strides, so
 * the source of every tap is known without a division; its own instantiation, which keeps
 * the strided gather's registers out of it). */
enum { IGM_FWD = 0, IGM_BWD_DATA = 1, IGM_BWD_DATA_S1 = 2 };

/* The operand precision of a launch (the kernels' `amp` field): an ig_amp value (IG_AMP_OFF:
 * exact fp32; IG_AMP_FP16 under fp16 autocast; IG_AMP_BF16 for bf16 activations, whose
 * values are bf16 already), or IGM_TF32 when autocast is off and TF32 is on
 * (ig_cuda_set_tf32). */
#define IGM_TF32 3

/* An f32 operand value as the GEMM sees it: itself, or rounded to fp16 under fp16 autocast,
 * or to tf32 (10 mantissa bits, nearest with ties away from zero: cvt.rna, what cuBLAS's and
 * wmma's documented conversion does) in TF32 mode. */
__device__ __forceinline__ float igm_round(float v, int amp) {
    if (amp == IG_AMP_FP16) return __half2float(__float2half_rn(v));
    if (amp == IGM_TF32) return nvcuda::wmma::__float_to_tf32(v);
    return v;
}

/* Moves a reduction index (outer, ki, kj) — outer = c (forward) or o (backward data) —
 * forward by `step` taps: kj += step, carrying into ki and outer. */
__device__ __forceinline__ void igm_advance(int &outer, int &ki, int &kj, int step, int kh, int kw) {
    kj += step;
    while (kj >= kw) {
        kj -= kw;
        ki++;
    }
    while (ki >= kh) {
        ki -= kh;
        outer++;
    }
}

/* ---- forward and backward data: one tiled kernel --------------------------------------------- */

/* What one launch of igm_tile_kernel computes: out [rows, Ncol] (stored NCHW, see below) =
 * A [rows, K] @ B [K, Ncol], with
 *   rows: pixels (img, py, px) of the output map OH x OW, M = N * OH * OW of them;
 *   A[m][k], k = (outer, ki, kj) over (outer, kh, kw):
 *     IGM_FWD:      x[img, outer, py*sh - ph + ki*dh, px*sw - pw + kj*dw] (0 outside SH x SW)
 *     IGM_BWD_DATA(_S1): dy[img, outer, (py + ph - ki*dh)/sh, (px + pw - kj*dw)/sw] where both
 *                   divisions are exact and land inside SH x SW (the taps that reached
 *                   this input pixel), else 0;
 *     read at src + img*ss[0] + outer*ss[1] + sy*ss[2] + sx*ss[3];
 *   B[k][col] = w[bq(k) + col*wn]: forward bq(k) = k, wn = K (w [O, C*kh*kw]); backward
 *     data k = (o, kk) and bq = o*wq + kk, wn = kh*kw (w [O, C, kh*kw], wq = C*kh*kw);
 *   out[img, col, py, px] (contiguous [N, Ncol, OH, OW]) = the sum, + bias[col*bs] if bias. */
template <typename E> struct igm_tile {
    const E *src, *w, *bias;
    E *out;
    /* split reduction (igm_split_launch): block z sums k in [z*kchunk, (z+1)*kchunk) and,
     * when part is set, stores its f32 tile (no bias) to part + z*M*Ncol in out's layout */
    float *part;
    int kchunk;
    int64_t bs, M, ohw;
    int64_t ss[4];
    int64_t wq, wn;
    int OH, OW, SH, SW;
    int Ncol, K, kh, kw, khw;
    int sh, sw, ph, pw, dh, dw;
    int amp;
};

/* Element types E of x, w, b, y, dy, dx, dw (the kernels' template parameter): float, or
 * __nv_bfloat16 for bf16 activations (dt IG_BF16). A bf16 value widens to f32 exactly; a
 * result is rounded to bf16 once, to nearest even, from its f32 sum (+ bias). */
__device__ __forceinline__ float igm_f32(float v) { return v; }
__device__ __forceinline__ float igm_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void igm_store(float &d, float v) { d = v; }
__device__ __forceinline__ void igm_store(__nv_bfloat16 &d, float v) { d = __float2bfloat16_rn(v); }
template <typename E> __device__ __forceinline__ E igm_zero() { return E(0.f); }
template <> __device__ __forceinline__ __nv_bfloat16 igm_zero<__nv_bfloat16>() { return __ushort_as_bfloat16(0); }

/* A[m][k] for the pixel with source base abase and origin (by, bx) — forward: the top-left
 * input position of its window; backward data: (iy + ph, ix + pw) — and tap (outer, ki, kj). */
template <int MODE, typename E>
__device__ __forceinline__ E igm_gather(const igm_tile<E> &a, int64_t abase, int by, int bx, int outer, int ki, int kj) {
    int sy, sx;
    if (MODE == IGM_FWD) {
        sy = by + ki * a.dh;
        sx = bx + kj * a.dw;
    } else {
        int ty = by - ki * a.dh, tx = bx - kj * a.dw;
        if (ty < 0 || tx < 0) return igm_zero<E>();
        sy = a.sh == 1 ? ty : ty / a.sh;
        sx = a.sw == 1 ? tx : tx / a.sw;
        if (sy * a.sh != ty || sx * a.sw != tx) return igm_zero<E>();
    }
    if ((unsigned)sy >= (unsigned)a.SH || (unsigned)sx >= (unsigned)a.SW) return igm_zero<E>();
    return a.src[abase + (int64_t)outer * a.ss[1] + (int64_t)sy * a.ss[2] + (int64_t)sx * a.ss[3]];
}

/* A staged operand value as shared memory holds it. An f32 value: f32 (the SIMT kernels and
 * the tf32 tensor-core ones: rounded as igm_round says) or __half (the fp16 tensor-core
 * kernels: the same rounding, kept in the narrow type). A bf16 value (bf16 activations) is
 * staged as it is: already rounded, widened exactly for the SIMT kernels, copied for the
 * tensor cores. */
__device__ __forceinline__ void igm_put(float &d, float v, int amp) { d = igm_round(v, amp); }
__device__ __forceinline__ void igm_put(__half &d, float v, int) { d = __float2half_rn(v); }
__device__ __forceinline__ void igm_put(float &d, __nv_bfloat16 v, int) { d = __bfloat162float(v); }
__device__ __forceinline__ void igm_put(__nv_bfloat16 &d, __nv_bfloat16 v, int) { d = v; }

/* The loaders of the tile kernels (SIMT and tensor-core), for a block computing rows m0 ..
 * m0 + BM and columns n0 .. n0 + BN of out, looping over K in stages of IGM_BK:
 *   A: thread tid gathers the pixel m0 + tid % BM for the reduction indices k0 + tid / BM +
 *     q*LK (q < KQ) of each stage: its pixel never changes, so (img, by, bx) are computed
 *     once, and its tap (outer, ki, kj) advances by LK per value (no division). Forward, and
 *     backward data with stride 1, also carry the tap's source row / column (sy, sx) and
 *     element offset along, moved by additions of precomputed steps as the tap advances: a
 *     value costs a bounds check and a load, not three 64-bit multiplies (backward data
 *     with a stride keeps igm_gather, whose taps need the stride's exact division).
 *   B: thread tid reads k0 + tid % IGM_BK for the columns n0 + tid / IGM_BK + r*16 (r < BQ):
 *     16 consecutive threads read 16 consecutive weights (forward).
 * load() reads stage k0 into registers (ra, rb), put() stores them into the shared stage
 * As[k][m], Bs[k][n] (rounded as igm_put says); the caller loads the next stage while the
 * current one is multiplied. Rows past M and columns past Ncol load zeros. */
template <int MODE, int BM, int BN, typename E> struct igm_tile_loader {
    static constexpr int LK = IGM_THREADS / BM, KQ = IGM_BK / LK;
    static constexpr int BSTEP = IGM_THREADS / IGM_BK, BQ = BN / BSTEP;
    static_assert(BM <= IGM_THREADS && LK * BM == IGM_THREADS, "one pixel per loading thread");
    static_assert(BQ * BSTEP == BN, "the B loader covers the tile");

    int lm, lk, bk, bn, n0;
    int kend; /* this block's reduction ends here (a split's end, or K) */
    bool arow;
    int64_t abase;
    int by, bx, ak, aouter, aki, akj;
    /* INCR (forward; backward data with stride 1): the tap's source position (asy, asx) =
     * (by + dir*aki*dh, bx + dir*akj*dw), dir = 1 forward and -1 backward, and its element
     * offset aoff = abase + aouter*ss1 + asy*ss2 + asx*ss3 (read only when inside) ... */
    static constexpr bool INCR = MODE != IGM_BWD_DATA;
    int asy, asx;
    int64_t aoff;
    /* ... and their steps: a tap (LK columns), a row carry, an outer carry */
    int cstep, ccarry, rstep, rcarry;
    int64_t ostep, orow, oouter;
    E ra[KQ], rb[BQ]; /* the next stage as loaded (bf16 stays bf16 until put) */

    __device__ igm_tile_loader(const igm_tile<E> &a, int64_t m0, int n0_, int tid, int kbeg, int kend_)
        : lm(tid % BM), lk(tid / BM), bk(tid % IGM_BK), bn(tid / IGM_BK), n0(n0_), kend(kend_), abase(0), by(0), bx(0) {
        const int64_t am = m0 + lm;
        arow = am < a.M;
        if (arow) {
            int64_t img = am / a.ohw;
            int p = (int)(am - img * a.ohw), py = p / a.OW, px = p - py * a.OW;
            abase = img * a.ss[0];
            by = MODE == IGM_FWD ? py * a.sh - a.ph : py + a.ph;
            bx = MODE == IGM_FWD ? px * a.sw - a.pw : px + a.pw;
        }
        ak = kbeg + lk; /* the first tap: (outer, ki, kj) of ak */
        aouter = ak / a.khw;
        aki = (ak - aouter * a.khw) / a.kw;
        akj = ak - aouter * a.khw - aki * a.kw;
        const int dir = MODE == IGM_FWD ? 1 : -1;
        asy = by + dir * aki * a.dh;
        asx = bx + dir * akj * a.dw;
        aoff = abase + (int64_t)aouter * a.ss[1] + (int64_t)asy * a.ss[2] + (int64_t)asx * a.ss[3];
        cstep = dir * LK * a.dw;
        ccarry = dir * a.kw * a.dw;
        rstep = dir * a.dh;
        rcarry = dir * a.kh * a.dh;
        ostep = (int64_t)cstep * a.ss[3];
        orow = (int64_t)rstep * a.ss[2] - (int64_t)ccarry * a.ss[3];
        oouter = a.ss[1] - (int64_t)rcarry * a.ss[2];
    }

    /* incr: the tap moves on by LK (kj += LK, carrying into ki and outer) and with it
     * (asy, asx) and aoff, by additions only. */
    __device__ __forceinline__ void incr_advance(const igm_tile<E> &a) {
        akj += LK;
        asx += cstep;
        aoff += ostep;
        while (akj >= a.kw) {
            akj -= a.kw;
            asx -= ccarry;
            aoff += orow;
            aki++;
            asy += rstep;
        }
        while (aki >= a.kh) {
            aki -= a.kh;
            asy -= rcarry;
            aoff += oouter;
            aouter++;
        }
    }

    /* Stage k0 into ra / rb (the A tap state carries over from the previous stage:
     * KQ*LK == IGM_BK). */
    __device__ void load(const igm_tile<E> &a, int k0) {
#pragma unroll
        for (int q = 0; q < KQ; q++) {
            if constexpr (INCR) {
                bool in = arow && ak < kend && (unsigned)asy < (unsigned)a.SH && (unsigned)asx < (unsigned)a.SW;
                ra[q] = in ? a.src[aoff] : igm_zero<E>();
                incr_advance(a);
            } else {
                ra[q] = arow && ak < kend ? igm_gather<MODE>(a, abase, by, bx, aouter, aki, akj) : igm_zero<E>();
                igm_advance(aouter, aki, akj, LK, a.kh, a.kw);
            }
            ak += LK;
        }
        int kg = k0 + bk;
        int64_t q0 = 0;
        if (kg < kend) {
            if (MODE == IGM_FWD) {
                q0 = kg;
            } else {
                int o = kg / a.khw;
                q0 = (int64_t)o * a.wq + (kg - o * a.khw);
            }
        }
#pragma unroll
        for (int r = 0; r < BQ; r++) {
            int col = n0 + bn + r * BSTEP;
            rb[r] = kg < kend && col < a.Ncol ? a.w[q0 + (int64_t)col * a.wn] : igm_zero<E>();
        }
    }

    template <typename T, int LDA, int LDB> __device__ void put(T (&As)[IGM_BK][LDA], T (&Bs)[IGM_BK][LDB], int amp) const {
#pragma unroll
        for (int q = 0; q < KQ; q++) igm_put(As[lk + q * LK][lm], ra[q], amp);
#pragma unroll
        for (int r = 0; r < BQ; r++) igm_put(Bs[bk][bn + r * BSTEP], rb[r], amp);
    }
};

/* Tiling (256 threads, block (bx, by) computes rows m0 = bx*BM .. +BM, columns n0 = by*BN ..
 * +BN, looping over K in stages of IGM_BK; loaders: igm_tile_loader):
 *   compute: thread (tx, ty) = (tid % MT, tid / MT) owns the IGM_TM x TN accumulators of rows
 *     m0 + tx + i*MT and columns n0 + ty*TN + j. Consecutive threads hold consecutive pixels,
 *     so the NCHW stores (contiguous along the pixel) coalesce; a warp shares ty, so its
 *     reads of As hit 32 consecutive words (one shared-memory wavefront per row) and its
 *     reads of Bs are TN/4 16-byte broadcasts: IGM_TM + TN/4 shared loads per IGM_TM*TN FMAs
 *     (with TN scalar loads of strided columns it was IGM_TM + TN, which made the 16-column
 *     tile load-bound). Every accumulator still sums k = 0, 1, ... in order.
 *   Pipeline: the next stage's values are loaded into registers while the current stage is
 *     multiplied out of shared memory (one shared buffer, two barriers per stage).
 * Configurations: BN 64 (TN 8: 32 x 8 threads, BM 128), BN 32 (TN 8: 64 x 4, BM 256), BN 16
 * (TN 4: 64 x 4, BM 256), picked by the column count so 16 channels do not run a 64-wide
 * tile. Rows past M and columns past Ncol are not stored. */
template <int MODE, int BN, int TN, typename E>
__global__ void __launch_bounds__(IGM_THREADS) igm_tile_kernel(igm_tile<E> a) {
    constexpr int NT = BN / TN, MT = IGM_THREADS / NT, BM = MT * IGM_TM;
    static_assert(NT * MT == IGM_THREADS && MT % 32 == 0, "a warp shares one column group");
    static_assert(TN % 4 == 0, "Bs is read 4 columns at a time");
    __shared__ float As[IGM_BK][BM]; /* As[k][m]: the gathered A stage */
    /* Bs[k][n]: the weight stage; rows padded to keep 16-byte alignment for the float4 reads */
    __shared__ __align__(16) float Bs[IGM_BK][BN + 4];

    const int tid = threadIdx.x;
    const int64_t m0 = (int64_t)blockIdx.x * BM;
    const int n0 = (int)blockIdx.y * BN;
    const int kbeg = (int)blockIdx.z * a.kchunk, kend = min(a.K, kbeg + a.kchunk);
    igm_tile_loader<MODE, BM, BN, E> ld(a, m0, n0, tid, kbeg, kend);

    float acc[IGM_TM][TN];
#pragma unroll
    for (int i = 0; i < IGM_TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.f;

    const int tx = tid % MT, ty = tid / MT;
    ld.load(a, kbeg);
    for (int k0 = kbeg; k0 < kend; k0 += IGM_BK) {
        ld.put(As, Bs, a.amp);
        __syncthreads();
        if (k0 + IGM_BK < kend) ld.load(a, k0 + IGM_BK);
#pragma unroll
        for (int kk = 0; kk < IGM_BK; kk++) {
            float av[IGM_TM], bv[TN];
#pragma unroll
            for (int i = 0; i < IGM_TM; i++) av[i] = As[kk][tx + i * MT];
#pragma unroll
            for (int j = 0; j < TN; j += 4) {
                const float4 b4 = *reinterpret_cast<const float4 *>(&Bs[kk][ty * TN + j]);
                bv[j] = b4.x;
                bv[j + 1] = b4.y;
                bv[j + 2] = b4.z;
                bv[j + 3] = b4.w;
            }
#pragma unroll
            for (int i = 0; i < IGM_TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }

    /* out[img, col, p] = acc (+ bias[col]) rounded to E, or this split's f32 part (no bias). */
    float *part = a.part ? a.part + (int64_t)blockIdx.z * a.M * a.Ncol : NULL;
#pragma unroll
    for (int i = 0; i < IGM_TM; i++) {
        int64_t m = m0 + tx + i * MT;
        if (m >= a.M) continue;
        int64_t img = m / a.ohw, p = m - img * a.ohw;
        int64_t obase = img * (int64_t)a.Ncol * a.ohw + p;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int col = n0 + ty * TN + j;
            if (col >= a.Ncol) continue;
            float v = acc[i][j];
            if (part) {
                part[obase + (int64_t)col * a.ohw] = v;
            } else {
                if (MODE == IGM_FWD && a.bias) v += igm_f32(a.bias[(int64_t)col * a.bs]);
                igm_store(a.out[obase + (int64_t)col * a.ohw], v);
            }
        }
    }
}

/* ---- tensor cores (autocast or TF32, sm_80+): the same tiles through wmma -------------------- */

/* The wmma operand type for a staged type T, and the k of one mma: bf16 / half stages feed
 * 16x16x16 fragments of themselves; float stages (TF32 mode, values already rounded to tf32
 * when staged) feed 16x16x8 fragments of precision::tf32, two per IGM_BK = 16 stage. */
template <typename T> struct igm_wmma {
    typedef T frag;
    static constexpr int KS = 16;
};
template <> struct igm_wmma<float> {
    typedef nvcuda::wmma::precision::tf32 frag;
    static constexpr int KS = 8;
};

/* Shared memory of igm_tc_tile_kernel: the stages As[k][m] (the A tile column-major for
 * wmma), Bs[k][n] (B row-major) in T = bf16 / fp16 / float (tf32), and the accumulators
 * Cs[n][m] for the epilogue, which reuse the stages' bytes (they are written after the last
 * stage is consumed; with float stages the two would not fit the 48 KiB of static shared
 * memory side by side). Rows padded by 8 elements / 4 floats (wmma needs leading dimensions
 * that are multiples of 16 bytes; the padding also spreads the rows over the banks); every
 * fragment pointer is 32-byte aligned, as load/store_matrix_sync require. */
#define IGM_TC_PAD 8
template <typename T, int BM, int BN> struct __align__(32) igm_tc_tile_smem {
    union {
        struct {
            __align__(32) T As[IGM_BK][BM + IGM_TC_PAD];
            __align__(32) T Bs[IGM_BK][BN + IGM_TC_PAD];
        } st;
        __align__(32) float Cs[BN][BM + 4];
    };
};

/* The tile GEMM on tensor cores (T = __half: f32 under fp16 autocast; __nv_bfloat16: bf16
 * activations (E bf16); float: TF32 mode; the operands are rounded as the SIMT kernel
 * rounds them, the products are exact and summed in fp32, so the results agree within the
 * order of the sums). 8 warps as WM x WN, each owning
 * FM x FN = 2 x FN fragments of 16 x 16: BN 64 (warps 4 x 2, FN 2: BM 128), BN 32 (8 x 1,
 * FN 2: BM 256), BN 16 (8 x 1, FN 1: BM 256). Loading as igm_tile_kernel (igm_tile_loader:
 * registers hold the next stage while the warps multiply this one). Epilogue: the
 * accumulators go to Cs (column-major: Cs[n][m]), then thread tid stores the pixel
 * m0 + tid % BM of the columns tid / BM + c*(256 / BM): consecutive threads, consecutive
 * pixels, coalesced NCHW stores, bias added on the way. */
template <int MODE, typename T, int BN, typename E>
__global__ void __launch_bounds__(IGM_THREADS) igm_tc_tile_kernel(igm_tile<E> a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap(); /* never launched: igm_tc() is false below compute capability 8.0 */
#else
    using namespace nvcuda;
    constexpr int WN = BN >= 32 ? BN / 32 : 1, WM = IGM_THREADS / 32 / WN;
    constexpr int FM = 2, FN = BN / 16 / WN, BM = WM * FM * 16;
    constexpr int LDA = BM + IGM_TC_PAD, LDB = BN + IGM_TC_PAD, LDC = BM + 4;
    constexpr int KS = igm_wmma<T>::KS;
    typedef typename igm_wmma<T>::frag F;
    static_assert(WM * WN * 32 == IGM_THREADS && FN * 16 * WN == BN, "the warps cover the tile");
    static_assert(IGM_BK % KS == 0, "whole wmma k-steps per stage");
    __shared__ igm_tc_tile_smem<T, BM, BN> sm;

    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp % WM, wn = warp / WM;
    const int64_t m0 = (int64_t)blockIdx.x * BM;
    const int n0 = (int)blockIdx.y * BN;
    const int kbeg = (int)blockIdx.z * a.kchunk, kend = min(a.K, kbeg + a.kchunk);
    igm_tile_loader<MODE, BM, BN, E> ld(a, m0, n0, tid, kbeg, kend);

    wmma::fragment<wmma::accumulator, 16, 16, KS, float> acc[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    ld.load(a, kbeg);
    for (int k0 = kbeg; k0 < kend; k0 += IGM_BK) {
        ld.put(sm.st.As, sm.st.Bs, a.amp);
        __syncthreads();
        if (k0 + IGM_BK < kend) ld.load(a, k0 + IGM_BK);
#pragma unroll
        for (int kk = 0; kk < IGM_BK; kk += KS) {
            wmma::fragment<wmma::matrix_a, 16, 16, KS, F, wmma::col_major> fa[FM];
            wmma::fragment<wmma::matrix_b, 16, 16, KS, F, wmma::row_major> fb[FN];
#pragma unroll
            for (int i = 0; i < FM; i++) wmma::load_matrix_sync(fa[i], &sm.st.As[kk][(wm * FM + i) * 16], LDA);
#pragma unroll
            for (int j = 0; j < FN; j++) wmma::load_matrix_sync(fb[j], &sm.st.Bs[kk][(wn * FN + j) * 16], LDB);
#pragma unroll
            for (int i = 0; i < FM; i++)
#pragma unroll
                for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads(); /* also orders the last stage's reads before the Cs stores below */
    }

#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++)
            wmma::store_matrix_sync(&sm.Cs[(wn * FN + j) * 16][(wm * FM + i) * 16], acc[i][j], LDC, wmma::mem_col_major);
    __syncthreads();

    /* out[img, col, p] = Cs[col - n0][m - m0] (+ bias[col]) rounded to E, or this split's
     * f32 part. */
    float *part = a.part ? a.part + (int64_t)blockIdx.z * a.M * a.Ncol : NULL;
    const int lm = tid % BM;
    const int64_t m = m0 + lm;
    if (m >= a.M) return;
    const int64_t img = m / a.ohw, p = m - img * a.ohw;
    const int64_t obase = img * (int64_t)a.Ncol * a.ohw + p;
    for (int c = tid / BM; c < BN; c += IGM_THREADS / BM) {
        int col = n0 + c;
        if (col >= a.Ncol) break;
        float v = sm.Cs[c][lm];
        if (part) {
            part[obase + (int64_t)col * a.ohw] = v;
        } else {
            if (MODE == IGM_FWD && a.bias) v += igm_f32(a.bias[(int64_t)col * a.bs]);
            igm_store(a.out[obase + (int64_t)col * a.ohw], v);
        }
    }
#endif
}

/* ---- split reduction for small grids ------------------------------------------------------------ */

/* out[e] = part[0*total + e] + part[1*total + e] + ... + part[(S-1)*total + e] (+ bias of e's
 * channel (e / ohw) % ncol): the splits in a fixed order, in f32, rounded to E once. */
template <typename E>
__global__ void igm_split_sum(const float *part, int S, int64_t total, const E *bias, int64_t bs, int ncol,
                              int64_t ohw, E *out) {
    IGC_GRID_STRIDE(e, total) {
        float acc = 0.f;
        for (int s = 0; s < S; s++) acc += part[(int64_t)s * total + e];
        if (bias) acc += igm_f32(bias[((e / ohw) % ncol) * bs]);
        igm_store(out[e], acc);
    }
}

/* A tile grid of fewer than IGM_SPLIT_BLOCKS / 2 blocks (resnet's 64-channel 7x7 layers at
 * batch 256: 98 blocks on 132 SMs) leaves most of the GPU idle through a long reduction, so
 * the reduction is cut into S splits of whole stages (grid z), each storing its tile to a
 * scratch part, then added in split order by igm_split_sum (deterministic: S depends on the
 * geometry alone, never on the GPU). Each split keeps at least IGM_SPLIT_MIN_STAGES stages;
 * S is at most IGM_SPLIT_MAX. Without scratch memory the launch runs unsplit. */
#define IGM_SPLIT_BLOCKS 264
#define IGM_SPLIT_MIN_STAGES 4
#define IGM_SPLIT_MAX 16

static int igm_splits(int64_t blocks, int K) {
    if (blocks >= IGM_SPLIT_BLOCKS / 2) return 1;
    int64_t stages = (K + IGM_BK - 1) / IGM_BK, s = (IGM_SPLIT_BLOCKS + blocks - 1) / blocks;
    if (s > stages / IGM_SPLIT_MIN_STAGES) s = stages / IGM_SPLIT_MIN_STAGES;
    if (s > IGM_SPLIT_MAX) s = IGM_SPLIT_MAX;
    return s < 1 ? 1 : (int)s;
}

/* Launches kernel (a grid of gx x gy tiles, z the splits) with the reduction split as
 * igm_splits says, then the sum. */
template <typename E, typename L>
static ig_status igm_split_launch(const char *op, igm_tile<E> a, unsigned gx, unsigned gy, L launch) {
    int S = igm_splits((int64_t)gx * gy, a.K);
    int64_t stages = (a.K + IGM_BK - 1) / IGM_BK;
    int64_t per = (stages + S - 1) / S; /* stages per split; then every split is non-empty */
    S = (int)((stages + per - 1) / per);
    int64_t total = a.M * a.Ncol;
    size_t pbytes = S > 1 ? sizeof(float) * (size_t)S * (size_t)total : 0;
    float *part = S > 1 ? (float *)igi_alloc(IG_CUDA, pbytes) : NULL;
    if (!part) S = 1, per = stages;
    a.part = part;
    a.kchunk = (int)(per * IGM_BK);
    launch(dim3(gx, gy, (unsigned)S), a);
    cudaError_t e = cudaGetLastError();
    if (part) {
        if (e == cudaSuccess) {
            igm_split_sum<E><<<igc_blocks(total), IGC_THREADS, 0, igc_stream>>>(part, S, total, a.bias, a.bs, a.Ncol,
                                                                              a.ohw, a.out);
            e = cudaGetLastError();
        }
        /* back to the cache now: its next user is queued on the same stream, after the sum */
        igi_free(IG_CUDA, part, pbytes);
    }
    if (e != cudaSuccess) return igc_fail(op, "a conv2d implicit-GEMM launch", __FILE__, __LINE__, e);
    return IG_OK;
}

template <int MODE, typename T, int BN, typename E>
static ig_status igm_tc_tile_launch(const char *op, const igm_tile<E> &a) {
    constexpr int WN = BN >= 32 ? BN / 32 : 1, BM = IGM_THREADS / 32 / WN * 2 * 16;
    return igm_split_launch(op, a, (unsigned)((a.M + BM - 1) / BM), (unsigned)((a.Ncol + BN - 1) / BN),
                            [](dim3 grid, const igm_tile<E> &t) {
                                igm_tc_tile_kernel<MODE, T, BN, E><<<grid, IGM_THREADS, 0, igc_stream>>>(t);
                            });
}

template <int MODE, typename T, typename E> static ig_status igm_tc_tile_run_t(const char *op, const igm_tile<E> &a) {
    if (a.Ncol <= 16) return igm_tc_tile_launch<MODE, T, 16>(op, a);
    if (a.Ncol <= 32) return igm_tc_tile_launch<MODE, T, 32>(op, a);
    return igm_tc_tile_launch<MODE, T, 64>(op, a);
}

template <int MODE, int BN, int TN, typename E> static ig_status igm_tile_launch(const char *op, const igm_tile<E> &a) {
    constexpr int BM = IGM_THREADS / (BN / TN) * IGM_TM;
    return igm_split_launch(op, a, (unsigned)((a.M + BM - 1) / BM), (unsigned)((a.Ncol + BN - 1) / BN),
                            [](dim3 grid, const igm_tile<E> &t) {
                                igm_tile_kernel<MODE, BN, TN, E><<<grid, IGM_THREADS, 0, igc_stream>>>(t);
                            });
}

/* The tile width for ncol columns: 16, 32 or 64; tensor cores when tc (for f32, a.amp is
 * IG_AMP_FP16 or IGM_TF32 then; bf16 activations are staged as they are, in bf16). */
template <int MODE, typename E> static ig_status igm_tile_run(const char *op, const igm_tile<E> &a, bool tc) {
    if (tc) {
        if constexpr (!std::is_same<E, float>::value) {
            return igm_tc_tile_run_t<MODE, __nv_bfloat16>(op, a);
        } else {
            return a.amp == IG_AMP_FP16 ? igm_tc_tile_run_t<MODE, __half>(op, a)
                                        : igm_tc_tile_run_t<MODE, float>(op, a);
        }
    }
    if (a.Ncol <= 16) return igm_tile_launch<MODE, 16, 4>(op, a);
    if (a.Ncol <= 32) return igm_tile_launch<MODE, 32, 8>(op, a);
    return igm_tile_launch<MODE, 64, 8>(op, a);
}

/* ---- backward weight: sliced reduction over the pixels ----------------------------------------- */

/* dw [O, K] (K = C*kh*kw, k = (c, ki, kj)) = sum over pixels m = (img, oy, ox) of
 * dy[img, o, oy, ox] * x[img, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw] (0 outside H x W).
 * Slice s (blockIdx.z) sums the stages [s*cps, (s+1)*cps) of IGM_BR pixels and stores its
 * f32 tile to part + s*O*K ([O, K] row-major), or with one slice (part NULL) the tile
 * rounded to E into out (dw). */
template <typename E> struct igm_dw {
    const E *x, *dy;
    float *part;
    E *out; /* dw */
    int64_t M, P, cps;
    int64_t xs[4];
    int Wo, H, W, O, K, kh, kw, khw;
    int sh, sw, ph, pw, dh, dw;
    int amp;
};

/* The tap table and loaders of the dw kernels (SIMT and tensor-core), for a block computing
 * dw rows o0 .. o0 + BO and columns k0 .. k0 + BKW over slice blockIdx.z, IGM_BR pixels per
 * stage:
 *   taps(): per tap column kc, the x offset of (c, ki*dh, kj*dw) and the tap's (ki*dh, kj*dw)
 *     into the shared table koff / kdy / kdx (columns past K get a row shift that is out of
 *     range for every pixel: they read 0); a __syncthreads must follow.
 *   load(): thread tid handles the pixel tid % IGM_BR of each stage (one decomposition per
 *     slice, moved forward incrementally) and the columns tid / IGM_BR + q*16: x for the taps
 *     k0 + that (XQ = BKW/16 of them), dy for the channels o0 + that (DQ = BO/16).
 *   put(): the registers into the shared stage Xs[r][kc], Ds[r][oc] (rounded as igm_put). */
template <int BO, int BKW, typename E> struct igm_dw_loader {
    static constexpr int LSTEP = IGM_THREADS / IGM_BR, XQ = BKW / LSTEP, DQ = BO / LSTEP;
    static_assert(XQ * LSTEP == BKW && DQ * LSTEP == BO, "the loaders cover the tile");

    int lr, lc, k0, o0;
    int64_t m, img, p;
    E rx[XQ], rd[DQ];

    __device__ igm_dw_loader(const igm_dw<E> &a, int64_t cbeg, int tid)
        : lr(tid % IGM_BR), lc(tid / IGM_BR), k0((int)blockIdx.x * BKW), o0((int)blockIdx.y * BO) {
        m = cbeg * IGM_BR + lr;
        img = m / a.P;
        p = m - img * a.P;
    }

    __device__ void taps(const igm_dw<E> &a, int64_t *koff, int *kdy, int *kdx, int tid) const {
        for (int kc = tid; kc < BKW; kc += IGM_THREADS) {
            int kg = k0 + kc;
            if (kg < a.K) {
                int c = kg / a.khw, kk = kg - c * a.khw, ki = kk / a.kw, kj = kk - ki * a.kw;
                kdy[kc] = ki * a.dh;
                kdx[kc] = kj * a.dw;
                koff[kc] = (int64_t)c * a.xs[1] + (int64_t)(ki * a.dh) * a.xs[2] + (int64_t)(kj * a.dw) * a.xs[3];
            } else {
                kdy[kc] = -(1 << 30); /* by >= -2^15: iy stays negative, no overflow */
                kdx[kc] = 0;
                koff[kc] = 0;
            }
        }
    }

    /* Loads the stage of pixel m into rx / rd, then moves m (img, p) on by IGM_BR. */
    __device__ void load(const igm_dw<E> &a, const int64_t *koff, const int *kdy, const int *kdx) {
        bool valid = m < a.M;
        int oy = (int)(p / a.Wo), ox = (int)(p - (int64_t)oy * a.Wo);
        int by = oy * a.sh - a.ph, bx = ox * a.sw - a.pw;
        /* x offset of the window's top-left (by, bx), possibly outside the image: only
         * dereferenced with a tap's koff added when (by + kdy, bx + kdx) is inside */
        int64_t xbase = img * a.xs[0] + (int64_t)by * a.xs[2] + (int64_t)bx * a.xs[3];
        int64_t dbase = (img * a.O + o0) * a.P + p;
#pragma unroll
        for (int q = 0; q < XQ; q++) {
            int kc = lc + q * LSTEP, iy = by + kdy[kc], ix = bx + kdx[kc];
            bool in = valid && (unsigned)iy < (unsigned)a.H && (unsigned)ix < (unsigned)a.W;
            rx[q] = in ? a.x[xbase + koff[kc]] : igm_zero<E>();
        }
#pragma unroll
        for (int q = 0; q < DQ; q++) {
            int oc = lc + q * LSTEP;
            rd[q] = valid && o0 + oc < a.O ? a.dy[dbase + (int64_t)oc * a.P] : igm_zero<E>();
        }
        m += IGM_BR;
        p += IGM_BR;
        while (p >= a.P) {
            p -= a.P;
            img++;
        }
    }

    template <typename T, int LDX, int LDD> __device__ void put(T (&Xs)[IGM_BR][LDX], T (&Ds)[IGM_BR][LDD], int amp) const {
#pragma unroll
        for (int q = 0; q < XQ; q++) igm_put(Xs[lr][lc + q * LSTEP], rx[q], amp);
#pragma unroll
        for (int q = 0; q < DQ; q++) igm_put(Ds[lr][lc + q * LSTEP], rd[q], amp);
    }
};

/* Tiling (256 threads, block (bx, by, s) computes dw rows o0 = by*BO .. +BO and columns
 * k0 = bx*BKW .. +BKW over slice s, IGM_BR pixels per stage; loaders: igm_dw_loader):
 *   compute: thread (tk, to) = (tid % TKT, tid / TKT) owns the 4 x 4 accumulators of rows
 *     o0 + to*4 + i and columns k0 + tk + j*TKT (TOT = BO/4, TKT = BKW/4, TOT*TKT = 256);
 *     in a warp the Xs reads are consecutive words (one wavefront each) and its 4 rows of
 *     Ds one 16-byte broadcast: 5 shared loads per 16 FMAs (4 + 4 with strided rows).
 *   Pipeline as igm_tile_kernel: registers hold the next stage while this one is used.
 * Configurations (BO, BKW): (64, 64), (32, 128), (16, 256), picked by O. */
template <int BO, int BKW, typename E>
__global__ void __launch_bounds__(IGM_THREADS) igm_dw_kernel(igm_dw<E> a) {
    constexpr int TOT = BO / 4, TKT = BKW / 4;
    static_assert(TOT * TKT == IGM_THREADS, "4 x 4 accumulators per thread");
    __shared__ float Xs[IGM_BR][BKW + 1];            /* Xs[r][kc]: gathered x of pixel r, tap k0 + kc */
    __shared__ __align__(16) float Ds[IGM_BR][BO + 4]; /* Ds[r][oc]: dy of pixel r, channel o0 + oc (rows 16-byte aligned) */
    __shared__ int64_t koff[BKW];
    __shared__ int kdy[BKW], kdx[BKW];

    const int tid = threadIdx.x;
    const int64_t cbeg = (int64_t)blockIdx.z * a.cps;
    int64_t chunks = (a.M + IGM_BR - 1) / IGM_BR, cend = cbeg + a.cps < chunks ? cbeg + a.cps : chunks;
    igm_dw_loader<BO, BKW, E> ld(a, cbeg, tid);
    ld.taps(a, koff, kdy, kdx, tid);

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;

    __syncthreads(); /* the tap table is built */
    const int tk = tid % TKT, to = tid / TKT;
    if (cbeg < cend) ld.load(a, koff, kdy, kdx);
    for (int64_t ch = cbeg; ch < cend; ch++) {
        ld.put(Xs, Ds, a.amp);
        __syncthreads();
        if (ch + 1 < cend) ld.load(a, koff, kdy, kdx);
#pragma unroll
        for (int r = 0; r < IGM_BR; r++) {
            float dv[4], xv[4];
            const float4 d4 = *reinterpret_cast<const float4 *>(&Ds[r][to * 4]);
            dv[0] = d4.x;
            dv[1] = d4.y;
            dv[2] = d4.z;
            dv[3] = d4.w;
#pragma unroll
            for (int j = 0; j < 4; j++) xv[j] = Xs[r][tk + j * TKT];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += dv[i] * xv[j];
        }
        __syncthreads();
    }

    float *part = a.part ? a.part + (int64_t)blockIdx.z * a.O * a.K : NULL;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int o = ld.o0 + to * 4 + i;
        if (o >= a.O) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int k = ld.k0 + tk + j * TKT;
            if (k >= a.K) continue;
            if (part)
                part[(int64_t)o * a.K + k] = acc[i][j];
            else
                igm_store(a.out[(int64_t)o * a.K + k], acc[i][j]);
        }
    }
}

/* Shared memory of igm_tc_dw_kernel: the stages Xs[r][kc] (B = gather(x), row-major) and
 * Ds[r][oc] (A = dy^T, column-major) in T, the accumulators Cs[oc][kc], the tap table;
 * padded and aligned as igm_tc_tile_smem (side by side: at most 39 KiB with float stages). */
template <typename T, int BO, int BKW> struct __align__(32) igm_tc_dw_smem {
    __align__(32) T Xs[IGM_BR][BKW + IGM_TC_PAD];
    __align__(32) T Ds[IGM_BR][BO + IGM_TC_PAD];
    __align__(32) float Cs[BO][BKW + 4];
    int64_t koff[BKW];
    int kdy[BKW], kdx[BKW];
};

/* dw on tensor cores (T = __half, __nv_bfloat16 or float for tf32, as igm_tc_tile_kernel): the
 * 16 fragments of the BO x BKW tile (BO/16 rows of BKW/16) go two per warp, warp w taking
 * fragments 2w and 2w + 1 in row-major order (one row: BKW/16 is even), one IGM_BR = 16 pixel
 * stage per 16 / KS wmma k-steps. The partial tile goes through Cs to out + s*O*K with coalesced stores. */
template <typename T, int BO, int BKW, typename E>
__global__ void __launch_bounds__(IGM_THREADS) igm_tc_dw_kernel(igm_dw<E> a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap(); /* never launched: igm_tc() is false below compute capability 8.0 */
#else
    using namespace nvcuda;
    constexpr int FC = BKW / 16, LDX = BKW + IGM_TC_PAD, LDD = BO + IGM_TC_PAD, LDC = BKW + 4;
    constexpr int KS = igm_wmma<T>::KS;
    typedef typename igm_wmma<T>::frag F;
    static_assert((BO / 16) * FC == 2 * IGM_THREADS / 32 && FC % 2 == 0, "two fragments of one row per warp");
    static_assert(IGM_BR % KS == 0, "whole wmma k-steps per stage");
    __shared__ igm_tc_dw_smem<T, BO, BKW> sm;

    const int tid = threadIdx.x, warp = tid / 32;
    const int fr = 2 * warp / FC, fc = 2 * warp % FC;
    const int64_t cbeg = (int64_t)blockIdx.z * a.cps;
    int64_t chunks = (a.M + IGM_BR - 1) / IGM_BR, cend = cbeg + a.cps < chunks ? cbeg + a.cps : chunks;
    igm_dw_loader<BO, BKW, E> ld(a, cbeg, tid);
    ld.taps(a, sm.koff, sm.kdy, sm.kdx, tid);

    wmma::fragment<wmma::accumulator, 16, 16, KS, float> acc[2];
    wmma::fill_fragment(acc[0], 0.0f);
    wmma::fill_fragment(acc[1], 0.0f);

    __syncthreads(); /* the tap table is built */
    if (cbeg < cend) ld.load(a, sm.koff, sm.kdy, sm.kdx);
    for (int64_t ch = cbeg; ch < cend; ch++) {
        ld.put(sm.Xs, sm.Ds, a.amp);
        __syncthreads();
        if (ch + 1 < cend) ld.load(a, sm.koff, sm.kdy, sm.kdx);
#pragma unroll
        for (int kk = 0; kk < IGM_BR; kk += KS) {
            wmma::fragment<wmma::matrix_a, 16, 16, KS, F, wmma::col_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, KS, F, wmma::row_major> fb[2];
            wmma::load_matrix_sync(fa, &sm.Ds[kk][fr * 16], LDD);
            wmma::load_matrix_sync(fb[0], &sm.Xs[kk][fc * 16], LDX);
            wmma::load_matrix_sync(fb[1], &sm.Xs[kk][(fc + 1) * 16], LDX);
            wmma::mma_sync(acc[0], fa, fb[0], acc[0]);
            wmma::mma_sync(acc[1], fa, fb[1], acc[1]);
        }
        __syncthreads();
    }

    wmma::store_matrix_sync(&sm.Cs[fr * 16][fc * 16], acc[0], LDC, wmma::mem_row_major);
    wmma::store_matrix_sync(&sm.Cs[fr * 16][(fc + 1) * 16], acc[1], LDC, wmma::mem_row_major);
    __syncthreads();

    float *part = a.part ? a.part + (int64_t)blockIdx.z * a.O * a.K : NULL;
    for (int e = tid; e < BO * BKW; e += IGM_THREADS) {
        int oc = e / BKW, kc = e - oc * BKW, o = ld.o0 + oc, k = ld.k0 + kc;
        if (o >= a.O || k >= a.K) continue;
        if (part)
            part[(int64_t)o * a.K + k] = sm.Cs[oc][kc];
        else
            igm_store(a.out[(int64_t)o * a.K + k], sm.Cs[oc][kc]);
    }
#endif
}

/* dw[e] = sum over s = 0, 1, ..., S-1 of part[s*OK + e]: the slices in a fixed order, in
 * f32, rounded to E once. */
template <typename E> __global__ void igm_dw_sum(const float *part, int64_t S, int64_t OK, E *dw) {
    IGC_GRID_STRIDE(e, OK) {
        float acc = 0.f;
        for (int64_t s = 0; s < S; s++) acc += part[s * OK + e];
        igm_store(dw[e], acc);
    }
}

/* The SIMT kernel, or the tensor-core one (fp16 autocast or TF32 on f32, bf16 activations)
 * when tc. */
template <int BO, int BKW, typename E>
static ig_status igm_dw_launch(const char *op, const igm_dw<E> &a, int64_t S, bool tc) {
    dim3 grid((unsigned)((a.K + BKW - 1) / BKW), (unsigned)((a.O + BO - 1) / BO), (unsigned)S);
    if (!tc) {
        igm_dw_kernel<BO, BKW, E><<<grid, IGM_THREADS, 0, igc_stream>>>(a);
    } else if constexpr (!std::is_same<E, float>::value) {
        igm_tc_dw_kernel<__nv_bfloat16, BO, BKW, E><<<grid, IGM_THREADS, 0, igc_stream>>>(a);
    } else {
        if (a.amp == IG_AMP_FP16)
            igm_tc_dw_kernel<__half, BO, BKW, E><<<grid, IGM_THREADS, 0, igc_stream>>>(a);
        else
            igm_tc_dw_kernel<float, BO, BKW, E><<<grid, IGM_THREADS, 0, igc_stream>>>(a);
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* ---- the path switch --------------------------------------------------------------------------- */

static std::atomic<int> igm_forced(IGI_CUDA_CONV_AUTO);
static pthread_once_t igm_env_once = PTHREAD_ONCE_INIT;
static int igm_env_mode = IGI_CUDA_CONV_AUTO; /* IGNIS_CUDA_CONV: im2col, simt, cudnn, else auto */
static bool igm_tc_device;                      /* the current device is sm_80 or newer */

static void igm_read_env(void) {
    const char *v = getenv("IGNIS_CUDA_CONV");
    igm_env_mode = !v                          ? IGI_CUDA_CONV_AUTO
                   : strcmp(v, "im2col") == 0 ? IGI_CUDA_CONV_IM2COL
                   : strcmp(v, "simt") == 0   ? IGI_CUDA_CONV_SIMT
                   : strcmp(v, "cudnn") == 0  ? IGI_CUDA_CONV_CUDNN
                                              : IGI_CUDA_CONV_AUTO;
    int dev = 0, major = 0;
    bool ok = cudaGetDevice(&dev) == cudaSuccess &&
              cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess;
    if (!ok) (void)cudaGetLastError(); /* a failed query means "no tensor cores", not an error for later calls */
    igm_tc_device = ok && major >= 8;
}

/* The mode in effect: the forced one, or under AUTO the environment's. */
static int igm_mode(void) {
    int mode = igm_forced.load();
    pthread_once(&igm_env_once, igm_read_env);
    return mode == IGI_CUDA_CONV_AUTO ? igm_env_mode : mode;
}

/* The operand precision of g's f32 GEMMs: fp16 autocast's (g->amp is IG_AMP_FP16 or
 * IG_AMP_OFF: igi_amp_for), else IGM_TF32 when TF32 is on (ig_cuda_set_tf32, which
 * cuBLAS's GEMMs follow too), else exact fp32 (IG_AMP_OFF). */
static int igm_precision(const igi_conv *g) {
    if (g->amp != IG_AMP_OFF) return g->amp;
    return igc_gemm_tf32() ? IGM_TF32 : IG_AMP_OFF;
}

/* The implicit GEMM runs on tensor cores (wmma: bf16 / fp16 / tf32 operands, fp32
 * accumulation) for bf16 activations, under fp16 autocast or TF32 on sm_80+ unless the
 * SIMT kernels are asked for; exact f32 always stays on the SIMT kernels. */
static bool igm_tc(int prec) { return prec != IG_AMP_OFF && igm_mode() != IGI_CUDA_CONV_SIMT && igm_tc_device; }

extern "C" int igi_cuda_conv_force(int mode) { return igm_forced.exchange(mode); }

int igc_conv_mode(void) { return igm_mode(); }

static bool igm_small(int64_t v) { return v >= 0 && v <= IGM_MAX_SPATIAL; }

bool igc_conv_igemm_applies(ig_dtype dt, const igi_conv *g) {
    if (igm_mode() == IGI_CUDA_CONV_IM2COL) return false;
    if ((dt != IG_F32 && dt != IG_BF16) || g->groups != 1) return false;
    /* empty problems keep the im2col path's handling (bias only, zeroed gradients) */
    if (g->N <= 0 || g->C <= 0 || g->O <= 0 || g->K <= 0 || g->P <= 0 || g->H <= 0 || g->W <= 0) return false;
    const int64_t sp[] = {g->H,      g->W,      g->Ho,     g->Wo,     g->kh,    g->kw,   g->stride_h,
                          g->stride_w, g->pad_h, g->pad_w, g->dil_h, g->dil_w};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        if (!igm_small(sp[i])) return false;
    if (g->stride_h < 1 || g->stride_w < 1) return false;
    /* 32-bit reduction indices; the grid's y dimension (column tiles) within 65535 */
    if (g->C * g->kh * g->kw > IGM_MAX_K || g->O * g->kh * g->kw > IGM_MAX_K) return false;
    if (g->O > 16 * 65535 || g->C > 16 * 65535) return false;
    return true;
}

/* ---- entry points ---------------------------------------------------------------------------- */

/* The window fields igm_tile and igm_dw share (kernel size, stride, padding, dilation,
 * operand precision), from the geometry. */
template <typename A> static void igm_set_window(A &a, const igi_conv *g, int prec) {
    a.kh = (int)g->kh;
    a.kw = (int)g->kw;
    a.khw = (int)(g->kh * g->kw);
    a.sh = (int)g->stride_h;
    a.sw = (int)g->stride_w;
    a.ph = (int)g->pad_h;
    a.pw = (int)g->pad_w;
    a.dh = (int)g->dil_h;
    a.dw = (int)g->dil_w;
    a.amp = prec;
}

/* The operand precision of g's GEMMs for element type E: bf16 activations are bf16 already
 * (staged as they are; on tensor cores as bf16 fragments), f32 as igm_precision says. */
template <typename E> static int igm_precision_for(const igi_conv *g) {
    return std::is_same<E, float>::value ? igm_precision(g) : IG_AMP_BF16;
}

template <typename E>
static ig_status igm_forward(const char *op, const igi_conv *g, const E *x, const E *w, const E *b, int64_t bs, E *y) {
    igm_tile<E> a;
    memset(&a, 0, sizeof a);
    a.src = x;
    a.w = w;
    a.bias = b;
    a.bs = bs;
    a.out = y;
    a.M = g->N * g->P;
    a.ohw = g->P;
    for (int d = 0; d < 4; d++) a.ss[d] = g->xs[d];
    a.wq = 0;
    a.wn = g->K;
    a.OH = (int)g->Ho;
    a.OW = (int)g->Wo;
    a.SH = (int)g->H;
    a.SW = (int)g->W;
    a.Ncol = (int)g->O;
    a.K = (int)g->K;
    int prec = igm_precision_for<E>(g);
    igm_set_window(a, g, prec);
    return igm_tile_run<IGM_FWD>(op, a, igm_tc(prec));
}

/* col: the table's K*nb*P-element scratch, f32-sized for both E (igi_conv), holding dw's
 * f32 slice partials. */
template <typename E>
static ig_status igm_backward(const char *op, const igi_conv *g, const E *x, const E *w, const E *dy, E *dx, E *dw,
                              void *col) {
    const int prec = igm_precision_for<E>(g);
    if (dx) {
        /* rows: input pixels (img, iy, ix); columns: c; reduction (o, ki, kj) over dy. */
        igm_tile<E> a;
        memset(&a, 0, sizeof a);
        a.src = dy;
        a.w = w;
        a.out = dx;
        a.M = g->N * g->H * g->W;
        a.ohw = g->H * g->W;
        a.ss[0] = g->O * g->P;
        a.ss[1] = g->P;
        a.ss[2] = g->Wo;
        a.ss[3] = 1;
        a.wq = g->C * g->kh * g->kw;
        a.wn = g->kh * g->kw;
        a.OH = (int)g->H;
        a.OW = (int)g->W;
        a.SH = (int)g->Ho;
        a.SW = (int)g->Wo;
        a.Ncol = (int)g->C;
        a.K = (int)(g->O * g->kh * g->kw);
        igm_set_window(a, g, prec);
        ig_status st = a.sh == 1 && a.sw == 1 ? igm_tile_run<IGM_BWD_DATA_S1>(op, a, igm_tc(prec))
                                              : igm_tile_run<IGM_BWD_DATA>(op, a, igm_tc(prec));
        if (st != IG_OK) return st;
    }
    if (!dw) return IG_OK;
    igm_dw<E> a;
    memset(&a, 0, sizeof a);
    a.x = x;
    a.dy = dy;
    a.M = g->N * g->P;
    a.P = g->P;
    for (int d = 0; d < 4; d++) a.xs[d] = g->xs[d];
    a.Wo = (int)g->Wo;
    a.H = (int)g->H;
    a.W = (int)g->W;
    a.O = (int)g->O;
    a.K = (int)g->K;
    igm_set_window(a, g, prec);
    int bo = g->O <= 16 ? 16 : g->O <= 32 ? 32 : 64, bkw = 4096 / bo;
    /* Slices: enough blocks to fill the GPU, each at least IGM_DW_MIN_CHUNKS stages, the f32
     * partials [S, O, K] within the col scratch (K*nb*P floats: S*O <= nb*P), S <= 65535. */
    int64_t chunks = (a.M + IGM_BR - 1) / IGM_BR;
    int64_t tiles = ((g->K + bkw - 1) / bkw) * ((g->O + bo - 1) / bo);
    int64_t S = (IGM_DW_BLOCKS + tiles - 1) / tiles, fit = g->nb * g->P / g->O;
    if (S > chunks / IGM_DW_MIN_CHUNKS) S = chunks / IGM_DW_MIN_CHUNKS;
    if (!col || S > fit) S = col ? fit : 1;
    if (S > 65535) S = 65535;
    if (S < 1) S = 1;
    a.cps = (chunks + S - 1) / S;
    S = (chunks + a.cps - 1) / a.cps; /* every slice non-empty */
    a.part = S == 1 ? NULL : (float *)col;
    a.out = dw;
    bool tc = igm_tc(prec);
    ig_status st = bo == 16 ? igm_dw_launch<16, 256>(op, a, S, tc)
                   : bo == 32 ? igm_dw_launch<32, 128>(op, a, S, tc)
                              : igm_dw_launch<64, 64>(op, a, S, tc);
    if (st != IG_OK || S == 1) return st;
    int64_t ok = g->O * g->K;
    igm_dw_sum<E><<<igc_blocks(ok), IGC_THREADS, 0, igc_stream>>>(a.part, S, ok, dw);
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_conv2d_igemm(const char *op, const igi_conv *g, const float *x, const float *w, const float *b,
                           int64_t bs, float *y) {
    return igm_forward<float>(op, g, x, w, b, bs, y);
}

ig_status igc_conv2d_backward_igemm(const char *op, const igi_conv *g, const float *x, const float *w,
                                    const float *dy, float *dx, float *dw, float *col) {
    return igm_backward<float>(op, g, x, w, dy, dx, dw, col);
}

ig_status igc_conv2d_igemm_bf16(const char *op, const igi_conv *g, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                                const __nv_bfloat16 *b, int64_t bs, __nv_bfloat16 *y) {
    return igm_forward<__nv_bfloat16>(op, g, x, w, b, bs, y);
}

ig_status igc_conv2d_backward_igemm_bf16(const char *op, const igi_conv *g, const __nv_bfloat16 *x,
                                         const __nv_bfloat16 *w, const __nv_bfloat16 *dy, __nv_bfloat16 *dx,
                                         __nv_bfloat16 *dw, void *col) {
    return igm_backward<__nv_bfloat16>(op, g, x, w, dy, dx, dw, col);
}
