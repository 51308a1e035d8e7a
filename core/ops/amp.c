/*
 * core/ops/amp.c — autocast's per-thread mode, the f32 -> fp16 rounding that fp16 mixed
 * precision emulates on the CPU, and the f32 -> bf16 rounding as a float (the reference the
 * tests check IG_BF16's conversions and the CUDA emulator against).
 *
 * ignis has no fp16 dtype. Under fp16 autocast a GEMM-based op (core/ops/matmul.c, conv.c)
 * rounds copies of its two f32 operands to the nearest IEEE half value, kept in f32 storage,
 * and multiplies them with the ordinary f32 kernels. That is exact emulation of an fp16 GEMM
 * with f32 accumulation: a product of two fp16 values (11 significant bits each) fits in
 * f32's 24 bits, and fp16's smallest subnormal squared (2^-48) is a normal f32, so only the
 * accumulation rounds, as on a GPU's tensor cores (up to the order of the sum). The CUDA
 * backend converts to real half instead. bf16 autocast needs no emulation: bf16 is a dtype
 * (IG_BF16), and the ops convert their f32 operands to it before running.
 *
 * Rounding is to nearest with ties to even on the bit patterns: bf16 keeps the top 16 bits
 * of the f32 pattern (same exponent range, so overflow and subnormals take care of
 * themselves); fp16 keeps 11 significant bits in its normal range [2^-14, 65504], rounds to
 * multiples of 2^-24 below it (subnormals, down to signed zero) and to inf from 65520 (the
 * tie between 65504 and 2^16, whose even side overflows) up. NaN stays NaN.
 */
#include <math.h>
#include <string.h>

#include "../tensor_impl.h"

static _Thread_local ig_amp autocast_mode = IG_AMP_OFF;

ig_amp igi_autocast_mode(void) { return autocast_mode; }

ig_amp igi_autocast_exchange(ig_amp mode) {
    ig_amp prev = autocast_mode;
    autocast_mode = mode;
    return prev;
}

static inline uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Ties to even on the 16 dropped bits: add 0x7fff plus the lowest kept bit, truncate. A
 * carry out of the significand bumps the exponent (up to inf), as rounding should. */
static inline float round_bf16(float x) {
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bits_f32((u | 0x00400000u) & 0xffff0000u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return bits_f32(u & 0xffff0000u);
}

static inline float round_fp16(float x) {
    uint32_t u = f32_bits(x), a = u & 0x7fffffffu, sign = u & 0x80000000u;
    if (a >= 0x7f800000u) return x;                           /* inf, NaN */
    if (a >= 0x477ff000u) return bits_f32(sign | 0x7f800000u); /* >= 65520: overflow */
    if (a >= 0x38800000u) {                                   /* >= 2^-14: normal half */
        a += 0x0fffu + ((a >> 13) & 1u);
        return bits_f32(sign | (a & 0xffffe000u));
    }
    /* Subnormal half: the nearest multiple of 2^-24. The scalings by powers of two are
     * exact, and nearbyintf rounds ties to even in the default rounding mode. */
    float q = nearbyintf(bits_f32(a) * 16777216.0f) * (1.0f / 16777216.0f);
    return bits_f32(sign | f32_bits(q));
}

float igi_round_bf16(float x) { return round_bf16(x); }
float igi_round_fp16(float x) { return round_fp16(x); }

IGI_HOT static void round_fp16_run(const float *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = round_fp16(src[i]);
}

void igi_round_f32(ig_amp mode, const float *src, float *dst, int64_t n) {
    IG_ASSERT(mode == IG_AMP_FP16 || mode == IG_AMP_OFF); /* igi_amp_for's answers */
    if (n <= 0) return;
    if (mode == IG_AMP_FP16) round_fp16_run(src, dst, n);
    else if (dst != src) memmove(dst, src, (size_t)n * sizeof(float));
}

/* Strided loop of igi_amp_round_copy: operand 0 the copy, 1 the source. */
static void round_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
    ig_amp mode = *(const ig_amp *)ctx;
    if (s[0] == (int64_t)sizeof(float) && s[1] == (int64_t)sizeof(float)) {
        igi_round_f32(mode, (const float *)p[1], (float *)p[0], n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = *(const float *)(p[1] + i * s[1]);
        *(float *)(p[0] + i * s[0]) = mode == IG_AMP_FP16 ? round_fp16(v) : v;
    }
}

ig_tensor *igi_amp_round_copy(const char *op, const ig_tensor *t, ig_amp mode) {
    IG_ASSERT(t && t->dtype == IG_F32 && t->device == IG_CPU);
    IG_ASSERT(mode == IG_AMP_FP16 || mode == IG_AMP_OFF);
    igi_heap_mode(1);
    ig_tensor *c = igi_tensor_new(op, t->ndim, t->shape, IG_F32, IG_CPU);
    igi_heap_mode(-1);
    if (!c) return NULL;
    if (igi_numel(t->ndim, t->shape) > 0) {
        ig_tensor *ops[2] = {c, (ig_tensor *)t};
        igi_iter_run_parallel(ops, 2, round_loop, &mode);
    }
    return c;
}
