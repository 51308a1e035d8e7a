/*
 * tests/cuda/emu/include/cuda_bf16.h — the CUDA emulator's bfloat16: a 16-bit storage type
 * with CUDA's conversion functions, rounding to nearest even as the hardware does (NaN stays
 * a quiet NaN). Arithmetic goes through float, which is what the device does for bf16
 * scalars too.
 */
#ifndef IGEMU_CUDA_BF16_H
#define IGEMU_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

#include "cuda_runtime.h"

struct __nv_bfloat16_raw {
    unsigned short x;
};

inline unsigned short igemu_f32_to_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u | 0x00400000u) >> 16); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                                      /* ties to even */
    return (unsigned short)(u >> 16);
}

inline float igemu_bf16_bits_to_f32(unsigned short b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

struct __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(const __nv_bfloat16_raw &r) : __x(r.x) {}
    __nv_bfloat16(float f) : __x(igemu_f32_to_bf16_bits(f)) {}
    __nv_bfloat16(double f) : __x(igemu_f32_to_bf16_bits((float)f)) {}
    operator float() const { return igemu_bf16_bits_to_f32(__x); }
    operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
typedef __nv_bfloat16 nv_bfloat16;

inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double f) { return __nv_bfloat16((float)f); }
inline float __bfloat162float(__nv_bfloat16 h) { return (float)h; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return __nv_bfloat16(__nv_bfloat16_raw{b}); }

#endif
