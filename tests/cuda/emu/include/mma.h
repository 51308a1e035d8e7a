/*
 * tests/cuda/emu/include/mma.h — the CUDA emulator's `nvcuda::wmma` (warp matrix multiply)
 * subset: 16x16x16 fragments of __nv_bfloat16 / __half operands (matrix_a, matrix_b, row- or
 * column-major) and float accumulators; fill_fragment, load_matrix_sync, store_matrix_sync
 * (mem_row_major / mem_col_major) and mma_sync with fp32 accumulation.
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
 * results with a tolerance. Accessing fragment elements by index (x[i]) is not portable
 * beyond element-wise operations and is best avoided.
 */
#ifndef IGEMU_MMA_H
#define IGEMU_MMA_H

#include <stdio.h>
#include <stdlib.h>

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
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

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulator's wmma has the 16x16x16 shape only");
    static_assert(std::is_same<Use, accumulator>::value
                      ? std::is_same<T, float>::value && std::is_same<Layout, void>::value
                      : (std::is_same<T, __nv_bfloat16>::value || std::is_same<T, __half>::value) &&
                            (std::is_same<Layout, row_major>::value || std::is_same<Layout, col_major>::value),
                  "the emulator's wmma: bf16 / half matrix_a and matrix_b with a layout, float accumulators");
    static constexpr int rows = igemu_shape<Use, M, N, K>::rows, cols = igemu_shape<Use, M, N, K>::cols;
    enum { num_elements = rows * cols };
    T x[num_elements]; /* x[r * cols + c]: the tile's element (r, c) */
};

template <typename Use, int M, int N, int K, typename T, typename L, typename V>
inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, const V &v) {
    for (int i = 0; i < f.num_elements; i++) f.x[i] = T(v);
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
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load needs a layout_t");
    typedef fragment<Use, M, N, K, T, L> F;
    const bool row = std::is_same<L, row_major>::value;
    igemu_wmma_check(p, ldm, 8, row ? F::cols : F::rows);
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

/* d = a @ b + c (d may be c). */
template <int M, int N, int K, typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                     const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    float fa[M * K], fb[K * N], out[M * N]; /* the operands converted once */
    for (int i = 0; i < M * K; i++) fa[i] = (float)a.x[i];
    for (int i = 0; i < K * N; i++) fb[i] = (float)b.x[i];
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
