/*
 * tests/cuda/emu/include/mma.h — the CUDA emulator's `nvcuda::wmma` (warp matrix multiply)
 * subset: 16x16x16 fragments of __nv_bfloat16 / __half operands and 16x16x8 fragments of
 * precision::tf32 operands (stored as float) — matrix_a, matrix_b, row- or column-major —
 * with float accumulators; fill_fragment, load_matrix_sync, store_matrix_sync
 * (mem_row_major / mem_col_major), mma_sync with fp32 accumulation, and __float_to_tf32.
 *
 * A real fragment spreads its tile over the 32 lanes in an unspecified layout; here every
 * emulated thread holds the whole tile (num_elements = 256, x[] in the tile's row-major
 * order) and computes the whole product itself. Each lane of a warp that loads the same
 * memory therefore holds the same fragment, and the results are the warp-collective ones
 * without any exchange between lanes. The operations are not synchronisation points: a
 * kernel must make the shared-memory writes of other threads visible (__syncthreads /
 * __syncwarp) before a load_matrix_sync reads them, as on a GPU, and the emulator's
 * shuffled thread order shows a missing barrier.
 *
 * mma_sync: d[i][j] = c[i][j] + a[i][0]*b[0][j] + ... + a[i][15]*b[15][j], summed in float
 * in that order. A product of two bf16 or two half values is exact in float, so only the
 * order of the additions can differ from a tensor core's (unspecified there): compare
 * results with a tolerance. tf32 operands: the tensor core reads a float's sign, exponent
 * and top 10 mantissa bits and ignores the low 13, so the emulated mma_sync clears them (a
 * kernel that forgets to round its operands to tf32 computes with truncated values here
 * too); two tf32 values multiply exactly in float as well. __float_to_tf32 rounds to
 * nearest with ties away from zero (PTX cvt.rna.tf32.f32), keeping a float. Accessing fragment elements by index (x[i]) is not portable
 * beyond element-wise operations and is best avoided.
 */
#ifndef IGEMU_MMA_H
#define IGEMU_MMA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
namespace precision {
struct tf32 {};
}
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

/* The tile of one fragment (rows x cols): matrix_a m x k, matrix_b k x n, accumulator m x n. */
template <typename Use, int M, int N, int K> struct igemu_shape;
template <int M, int N, int K> struct igemu_shape<matrix_a, M, N, K> {
    static constexpr int rows = M, cols = K;
};
template <int M, int N, int K> struct igemu_shape<matrix_b, M, N, K> {
    static constexpr int rows = K, cols = N;
};
template <int M, int N, int K> struct igemu_shape<accumulator, M, N, K> {
    static constexpr int rows = M, cols = N;
};

/* What a fragment of element type T stores: T itself, float for precision::tf32. */
template <typename T> struct igemu_storage {
    typedef T type;
};
template <> struct igemu_storage<precision::tf32> {
    typedef float type;
};

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    static constexpr bool tf32 = std::is_same<T, precision::tf32>::value;
    static_assert(M == 16 && N == 16 && (K == 16 || K == 8), "the emulator's wmma has the 16x16x16 and 16x16x8 shapes only");
    static_assert(std::is_same<Use, accumulator>::value
                      ? std::is_same<T, float>::value && std::is_same<Layout, void>::value
                      : ((K == 16 && (std::is_same<T, __nv_bfloat16>::value || std::is_same<T, __half>::value)) ||
                         (K == 8 && tf32)) &&
                            (std::is_same<Layout, row_major>::value || std::is_same<Layout, col_major>::value),
                  "the emulator's wmma: bf16 / half (16x16x16) or tf32 (16x16x8) matrix_a and matrix_b with a "
                  "layout, float accumulators");
    static constexpr int rows = igemu_shape<Use, M, N, K>::rows, cols = igemu_shape<Use, M, N, K>::cols;
    enum { num_elements = rows * cols };
    typedef typename igemu_storage<T>::type storage_element_type;
    storage_element_type x[num_elements]; /* x[r * cols + c]: the tile's element (r, c) */
};

/* Round to nearest, ties away from zero, to tf32 (10 mantissa bits) in a float: the low 13
 * bits of the result are zero. NaN stays NaN, inf stays inf; values from the largest tf32
 * plus half its ulp up round to inf. */
inline float __float_to_tf32(float in) {
    uint32_t u;
    memcpy(&u, &in, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        u |= 0x00400000u; /* quiet NaN */
    else
        u += 0x1000u; /* half of the kept ulp, on the magnitude bits (the sign is untouched) */
    u &= 0xffffe000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

template <typename Use, int M, int N, int K, typename T, typename L, typename V>
inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, const V &v) {
    typedef typename igemu_storage<T>::type S;
    for (int i = 0; i < f.num_elements; i++) f.x[i] = S(v);
}

/* matrix_a / matrix_b: element (r, c) of the tile at p[r*ldm + c] (row_major) or p[r + c*ldm]
 * (col_major). CUDA's preconditions (p 256-bit aligned, ldm a multiple of 8 for 16-bit
 * types and of 4 for float) are checked, as they decide whether the GPU loads right. */
inline void igemu_wmma_check(const void *p, unsigned ldm, unsigned mult, int cols_or_rows) {
    if (((uintptr_t)p & 31u) == 0 && ldm % mult == 0 && ldm >= (unsigned)cols_or_rows) return;
    fprintf(stderr, "igemu: wmma load/store with pointer %p (needs 32-byte alignment) and ldm %u (needs a multiple "
                    "of %u, at least %d)\n", p, ldm, mult, cols_or_rows);
    abort();
}

template <typename Use, int M, int N, int K, typename T, typename L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const typename igemu_storage<T>::type *p, unsigned ldm) {
    static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load needs a layout_t");
    typedef fragment<Use, M, N, K, T, L> F;
    const bool row = std::is_same<L, row_major>::value;
    igemu_wmma_check(p, ldm, F::tf32 ? 4 : 8, row ? F::cols : F::rows);
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++) f.x[r * F::cols + c] = row ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
}

template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t l) {
    typedef fragment<accumulator, M, N, K, float> F;
    igemu_wmma_check(p, ldm, 4, l == mem_row_major ? F::cols : F::rows);
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            f.x[r * F::cols + c] = l == mem_row_major ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
}

template <int M, int N, int K>
inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t l) {
    typedef fragment<accumulator, M, N, K, float> F;
    igemu_wmma_check(p, ldm, 4, l == mem_row_major ? F::cols : F::rows);
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++) {
            if (l == mem_row_major)
                p[(size_t)r * ldm + c] = f.x[r * F::cols + c];
            else
                p[r + (size_t)c * ldm] = f.x[r * F::cols + c];
        }
}

/* An operand as the tensor core reads it: a bf16 / half value, or a tf32 one (the float's
 * low 13 bits ignored). */
template <typename T> inline float igemu_operand(const typename igemu_storage<T>::type &v) { return (float)v; }
template <> inline float igemu_operand<precision::tf32>(const float &v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u &= 0xffffe000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* d = a @ b + c (d may be c). */
template <int M, int N, int K, typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                     const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    float fa[M * K], fb[K * N], out[M * N]; /* the operands converted once */
    for (int i = 0; i < M * K; i++) fa[i] = igemu_operand<T>(a.x[i]);
    for (int i = 0; i < K * N; i++) fb[i] = igemu_operand<T>(b.x[i]);
    /* k outermost per row, so the j loop vectorises; each d[i][j] still sums k = 0, 1, ... */
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) out[i * N + j] = c.x[i * N + j];
        for (int k = 0; k < K; k++)
            for (int j = 0; j < N; j++) out[i * N + j] += fa[i * K + k] * fb[k * N + j];
    }
    for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}

} // namespace wmma
} // namespace nvcuda

#endif
