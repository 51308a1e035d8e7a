/*
 * cuda/dropout.cu — dropout on the device: the keep mask from the same counter-based
 * Philox4x32-10 stream as the CPU (core/rng.c's ig_philox4x32, written here for the device
 * from the published algorithm: ten rounds of two 32x32->64-bit products with the key
 * bumped by the Weyl constants), so a seeded forward drops the same elements on both; and
 * the masked scaling used by forward and backward (f32, f64, and bf16 computed in float and
 * rounded once, as the f32 kernel's result rounded).
 */
#include "cuda_impl.h"

#define IGC_PHILOX_M0 0xD2511F53u
#define IGC_PHILOX_M1 0xCD9E8D57u
#define IGC_PHILOX_W0 0x9E3779B9u
#define IGC_PHILOX_W1 0xBB67AE85u

/* Word w (0..3) of the Philox4x32-10 block (key, counter_hi = 0, counter_lo = ctr). */
__device__ __forceinline__ uint32_t igc_philox_word(uint64_t key, uint64_t ctr, int w) {
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(IGC_PHILOX_M0, c0), lo0 = IGC_PHILOX_M0 * c0;
        uint32_t hi1 = __umulhi(IGC_PHILOX_M1, c2), lo1 = IGC_PHILOX_M1 * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += IGC_PHILOX_W0;
        k1 += IGC_PHILOX_W1;
    }
    return w == 0 ? c0 : w == 1 ? c1 : w == 2 ? c2 : c3;
}

__global__ void dropout_mask_kernel(int64_t n, uint64_t seed, uint64_t start, double threshold, uint8_t *mask) {
    IGC_GRID_STRIDE(i, n) {
        uint32_t w = igc_philox_word(seed, start + (uint64_t)(i / 4), (int)(i % 4));
        mask[i] = (double)w >= threshold;
    }
}

template <typename T> __global__ void mask_apply_kernel(igi_ew e, double scale) {
    typedef igc_compute_t<T> C;
    const C k = (C)scale;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[3];
        igc_ew_offsets<3>(e, i, off);
        C a = igc_ld(((const T *)e.data[1])[off[1]]);
        ((T *)e.data[0])[off[0]] = igc_st<T>(a * (((const uint8_t *)e.data[2])[off[2]] ? k : (C)0));
    }
}

ig_status igc_dropout_mask(const char *op, int64_t n, uint64_t seed, uint64_t start, double threshold, uint8_t *mask) {
    if (n <= 0) return IG_OK;
    dropout_mask_kernel<<<igc_blocks(n), IGC_THREADS, 0, igc_stream>>>(n, seed, start, threshold, mask);
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_mask_apply(const char *op, const igi_ew *e, double scale) {
    unsigned nb = igc_blocks(e->numel);
    if (e->dtype[0] == IG_F32) mask_apply_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, scale);
    else if (e->dtype[0] == IG_F64) mask_apply_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, scale);
    else if (e->dtype[0] == IG_BF16) mask_apply_kernel<__nv_bfloat16><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, scale);
    else return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported on cuda", op, ig_dtype_name(e->dtype[0]));
    IGC_LAUNCHED(op);
    return IG_OK;
}
