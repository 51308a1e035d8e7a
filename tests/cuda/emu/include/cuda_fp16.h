/*
 * tests/cuda/emu/include/cuda_fp16.h — the CUDA emulator's IEEE half: a 16-bit storage type
 * with CUDA's conversion functions, rounding to nearest even with subnormals kept and
 * overflow to infinity, as the hardware's cvt.rn.f16.f32. Arithmetic goes through float.
 */
#ifndef IGEMU_CUDA_FP16_H
#define IGEMU_CUDA_FP16_H

#include <stdint.h>
#include <string.h>

#include "cuda_runtime.h"

struct __half_raw {
    unsigned short x;
};

inline unsigned short igemu_f32_to_half_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN, quiet */
    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u); /* >= 65520 rounds to inf (and inf) */
    if (a >= 0x38800000u) {                                          /* normal half: >= 2^-14 */
        uint32_t m = a - 0x38000000u;                                /* rebias the exponent: 127 -> 15 */
        m += 0xfffu + ((m >> 13) & 1u);                              /* ties to even on bit 13 */
        return (unsigned short)(sign | (m >> 13));
    }
    if (a < 0x33000000u) return (unsigned short)sign; /* below half the smallest subnormal (2^-25): zero */
    /* Subnormal half: the value in units of 2^-24, rounded to nearest even. */
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u; /* value = mant * 2^(e - 150) */
    /* value / 2^-24 = mant * 2^(e - 126); e is 102..112 here, so the shift is 14..24. */
    uint32_t shift = 126u - e;
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (unsigned short)(sign | q);
}

inline float igemu_half_bits_to_f32(unsigned short h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1fu) {
        u = sign | 0x7f800000u | (m << 13);
    } else if (e != 0) {
        u = sign | ((e + 112u) << 23) | (m << 13);
    } else {
        float f = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

struct __half {
    unsigned short __x;
    __half() = default;
    __half(const __half_raw &r) : __x(r.x) {}
    __half(float f) : __x(igemu_f32_to_half_bits(f)) {}
    __half(double f) : __x(igemu_f32_to_half_bits((float)f)) {}
    operator float() const { return igemu_half_bits_to_f32(__x); }
    operator __half_raw() const { return __half_raw{__x}; }
};
typedef __half half;

inline __half __float2half_rn(float f) { return __half(f); }
inline __half __float2half(float f) { return __half(f); }
inline float __half2float(__half h) { return (float)h; }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short b) { return __half(__half_raw{b}); }

#endif
