/*
 * tests/cuda/emu/test_emu.cu — checks of the CUDA emulator itself (suite `cuda_emu`, only in
 * the emulated test binary): barriers in 2-D blocks, the warp intrinsics, dynamic shared
 * memory, atomics, launch-configuration errors, the checked copies and frees, poisoned
 * device and shared memory, the bf16 / half conversions against core's CPU rounding, a
 * deadlocked block's sticky error, wmma's 16x16x16 bf16 / half mma (layouts, leading
 * dimensions) against a plain loop, and the cuBLAS stand-in's column-major GEMM and checks.
 * Compiled like the files of cuda/ (launch.pl, then g++ against tests/cuda/emu/include/).
 */
#include <criterion/criterion.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#include <cublas_v2.h>
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
float igi_round_bf16(float x);
float igi_round_fp16(float x);
}

#define OK(call) cr_assert_eq((call), cudaSuccess, "%s: %s", #call, cudaGetErrorName(cudaGetLastError()))

/* The wmma test's shared staging: 32-byte aligned, as load_matrix_sync requires. */
template <typename T> struct __align__(32) igemu_wmma_stage {
    T a[16 * 40], b[16 * 40];
};

template <typename T> static T *dev(size_t n) {
    void *p = NULL;
    OK(cudaMalloc(&p, n * sizeof(T)));
    return (T *)p;
}

/* ---- barriers and shared memory ------------------------------------------------------------ */

/* out[b] = sum of in[b*n .. b*n + n) over a (8, 4) block: a tree in shared memory. */
__global__ void block_sum_kernel(const int *in, int n, int *out) {
    __shared__ int sh[32];
    int t = threadIdx.y * blockDim.x + threadIdx.x;
    int acc = 0;
    for (int i = t; i < n; i += 32) acc += in[blockIdx.x * n + i];
    sh[t] = acc;
    __syncthreads();
    for (int s = 16; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = sh[0];
}

Test(cuda_emu, syncthreads_in_2d_blocks) {
    const int nb = 5, n = 100;
    int h[nb * n], want[nb] = {0}, got[nb];
    for (int i = 0; i < nb * n; i++) {
        h[i] = i % 17 - 8;
        want[i / n] += h[i];
    }
    int *in = dev<int>(nb * n), *out = dev<int>(nb);
    OK(cudaMemcpy(in, h, sizeof h, cudaMemcpyHostToDevice));
    block_sum_kernel<<<nb, dim3(8, 4)>>>(in, n, out);
    OK(cudaGetLastError());
    OK(cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost));
    for (int b = 0; b < nb; b++) cr_expect_eq(got[b], want[b], "block %d: %d, want %d", b, got[b], want[b]);
    OK(cudaFree(in));
    OK(cudaFree(out));
}

/* Reads its shared array before any thread wrote it in this block: the emulator's 0xff fill. */
__global__ void shared_garbage_kernel(unsigned *out) {
    __shared__ unsigned sh[64];
    if (threadIdx.x == 0) out[blockIdx.x] = sh[5];
    __syncthreads();
    sh[threadIdx.x] = 7;
}

Test(cuda_emu, shared_memory_starts_as_garbage_in_every_block) {
    unsigned *out = dev<unsigned>(3), h[3];
    shared_garbage_kernel<<<3, 64>>>(out);
    OK(cudaGetLastError());
    OK(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    for (int b = 0; b < 3; b++) cr_expect_eq(h[b], 0xffffffffu, "block %d read %#x", b, h[b]);
    OK(cudaFree(out));
}

/* out = in reversed, through dynamic shared memory of n floats. */
__global__ void reverse_kernel(const float *in, float *out, int n) {
    extern __shared__ float buf[];
    int t = threadIdx.x;
    buf[t] = in[t];
    __syncthreads();
    out[t] = buf[n - 1 - t];
}

Test(cuda_emu, dynamic_shared_memory) {
    const int n = 200;
    float h[n], got[n];
    for (int i = 0; i < n; i++) h[i] = (float)i * 0.5f;
    float *in = dev<float>(n), *out = dev<float>(n);
    OK(cudaMemcpy(in, h, sizeof h, cudaMemcpyHostToDevice));
    reverse_kernel<<<1, n, n * sizeof(float)>>>(in, out, n);
    OK(cudaGetLastError());
    OK(cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) cr_expect_eq(got[i], h[n - 1 - i]);
    /* Above 48 KiB only after cudaFuncSetAttribute. */
    reverse_kernel<<<1, n, 64 * 1024>>>(in, out, n);
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidValue);
    OK(cudaFuncSetAttribute(reverse_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
    reverse_kernel<<<1, n, 64 * 1024>>>(in, out, n);
    OK(cudaGetLastError());
    OK(cudaFree(in));
    OK(cudaFree(out));
}

/* ---- warp intrinsics ----------------------------------------------------------------------------- */

/* Per warp of a 96-thread block: r[0] sum by shfl_down, r[1] lane 3's value by shfl, r[2]
 * sum by xor butterfly, r[3] inclusive prefix by shfl_up, r[4] ballot of odd values. */
__global__ void warp_kernel(const int *in, int *out) {
    int t = threadIdx.x, lane = t % 32, v = in[t];
    int s = v;
    for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(0xffffffffu, s, d);
    int b = __shfl_sync(0xffffffffu, v, 3);
    int x = v;
    for (int m = 1; m < 32; m <<= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
    int p = v;
    for (int d = 1; d < 32; d <<= 1) {
        int o = __shfl_up_sync(0xffffffffu, p, d);
        if (lane >= d) p += o;
    }
    unsigned bal = __ballot_sync(0xffffffffu, v & 1);
    __syncwarp();
    if (lane == 0) out[(t / 32) * 5 + 0] = s;
    if (lane == 5) out[(t / 32) * 5 + 1] = b;
    if (lane == 31) out[(t / 32) * 5 + 3] = p;
    if (lane == 7) out[(t / 32) * 5 + 2] = x;
    if (lane == 0) out[(t / 32) * 5 + 4] = (int)bal;
}

Test(cuda_emu, warp_shuffles_and_ballot) {
    int h[96], got[15];
    for (int i = 0; i < 96; i++) h[i] = (i * 7) % 11;
    int *in = dev<int>(96), *out = dev<int>(15);
    OK(cudaMemcpy(in, h, sizeof h, cudaMemcpyHostToDevice));
    warp_kernel<<<1, 96>>>(in, out);
    OK(cudaGetLastError());
    OK(cudaMemcpy(got, out, sizeof got, cudaMemcpyDeviceToHost));
    for (int w = 0; w < 3; w++) {
        int sum = 0;
        unsigned bal = 0;
        for (int l = 0; l < 32; l++) {
            sum += h[w * 32 + l];
            if (h[w * 32 + l] & 1) bal |= 1u << l;
        }
        cr_expect_eq(got[w * 5 + 0], sum, "warp %d shfl_down sum", w);
        cr_expect_eq(got[w * 5 + 1], h[w * 32 + 3], "warp %d shfl broadcast", w);
        cr_expect_eq(got[w * 5 + 2], sum, "warp %d xor butterfly", w);
        cr_expect_eq(got[w * 5 + 3], sum, "warp %d prefix at lane 31", w);
        cr_expect_eq((unsigned)got[w * 5 + 4], bal, "warp %d ballot", w);
    }
    OK(cudaFree(in));
    OK(cudaFree(out));
}

/* Half of warp 0 at a full-warp shuffle, the rest of the block at __syncthreads: nobody can go
 * on (undefined behaviour on a GPU, where it usually hangs). */
__global__ void deadlock_kernel(int *out) {
    if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0xffffffffu, (int)threadIdx.x, 0);
    else __syncthreads();
}

Test(cuda_emu, deadlocked_block_is_a_sticky_error) {
    setenv("IGEMU_QUIET", "1", 1); /* the errors below are on purpose */
    int *out = dev<int>(64);
    deadlock_kernel<<<1, 64>>>(out);
    cr_expect_eq(cudaGetLastError(), cudaErrorLaunchFailure);
    cr_expect_eq(cudaMemset(out, 0, 4), cudaErrorLaunchFailure, "every call fails after a fault");
    cr_expect_eq(cudaGetLastError(), cudaErrorLaunchFailure, "the error stays");
    OK(cudaDeviceReset());
}

/* ---- atomics --------------------------------------------------------------------------------------- */

__global__ void atomic_kernel(float *f, double *d, int *i, unsigned *mx) {
    atomicAdd(f, 0.5f);
    atomicAdd(d, 0.25);
    atomicAdd(i, 1);
    atomicMax(mx, blockIdx.x * blockDim.x + threadIdx.x);
}

Test(cuda_emu, atomics) {
    float *f = dev<float>(1);
    double *d = dev<double>(1);
    int *i = dev<int>(1);
    unsigned *mx = dev<unsigned>(1);
    OK(cudaMemset(f, 0, 4));
    OK(cudaMemset(d, 0, 8));
    OK(cudaMemset(i, 0, 4));
    OK(cudaMemset(mx, 0, 4));
    atomic_kernel<<<7, 128>>>(f, d, i, mx);
    OK(cudaGetLastError());
    float hf;
    double hd;
    int hi;
    unsigned hm;
    OK(cudaMemcpy(&hf, f, 4, cudaMemcpyDeviceToHost));
    OK(cudaMemcpy(&hd, d, 8, cudaMemcpyDeviceToHost));
    OK(cudaMemcpy(&hi, i, 4, cudaMemcpyDeviceToHost));
    OK(cudaMemcpy(&hm, mx, 4, cudaMemcpyDeviceToHost));
    cr_expect_eq(hf, 448.0f);
    cr_expect_eq(hd, 224.0);
    cr_expect_eq(hi, 896);
    cr_expect_eq(hm, 895u);
    cudaFree(f), cudaFree(d), cudaFree(i), cudaFree(mx);
}

/* ---- launch configuration and the runtime's checks ---------------------------------------------------- */

__global__ void nop_kernel(int *p) {
    if (p) *p = 1;
}

Test(cuda_emu, bad_launch_configurations_fail_like_cuda) {
    const struct {
        dim3 grid, block;
    } bad[] = {{dim3(0), dim3(32)}, {dim3(1), dim3(0)}, {dim3(1), dim3(1025)}, {dim3(1), dim3(32, 32, 2)},
               {dim3(1), dim3(1, 1, 65)}, {dim3(1, 65536), dim3(1)}, {dim3(1, 1, 65536), dim3(1)}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nop_kernel<<<bad[k].grid, bad[k].block>>>(NULL);
        cr_expect_eq(cudaGetLastError(), cudaErrorInvalidConfiguration, "configuration %zu", k);
        cr_expect_eq(cudaGetLastError(), cudaSuccess, "not sticky");
    }
    nop_kernel<<<dim3(3, 2, 2), dim3(4, 4, 64)>>>(NULL); /* the limits themselves are fine */
    OK(cudaGetLastError());
}

Test(cuda_emu, copies_check_which_side_is_device_memory) {
    setenv("IGEMU_QUIET", "1", 1); /* the errors below are on purpose */
    char host[64] = {0};
    char *d = dev<char>(64);
    cr_expect_eq(cudaMemcpy(host, host + 32, 16, cudaMemcpyDeviceToHost), cudaErrorInvalidValue, "host source");
    cr_expect_eq(cudaGetLastError(), cudaErrorInvalidValue);
    cr_expect_eq(cudaMemcpy(host, d, 16, cudaMemcpyHostToDevice), cudaErrorInvalidValue, "host destination");
    cr_expect_eq(cudaMemcpy(d, host, 16, cudaMemcpyDeviceToHost), cudaErrorInvalidValue, "device as host");
    cr_expect_eq(cudaMemcpy(d + 60, host, 16, cudaMemcpyHostToDevice), cudaErrorInvalidValue, "past the end");
    cr_expect_eq(cudaMemcpy(d, d + 32, 33, cudaMemcpyDeviceToDevice), cudaErrorInvalidValue, "source past the end");
    cr_expect_eq(cudaMemsetAsync(host, 0, 4, NULL), cudaErrorInvalidValue, "memset of host memory");
    cr_expect_eq(cudaFree(host), cudaErrorInvalidValue, "free of host memory");
    cr_expect_eq(cudaFree(d + 1), cudaErrorInvalidValue, "free inside a block");
    (void)cudaGetLastError();
    /* Fresh device memory is garbage (0xff), never zeros. */
    OK(cudaMemcpy(host, d, 64, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 64; i++) cr_expect_eq((unsigned char)host[i], 0xffu);
    OK(cudaMemcpy(d, d + 32, 32, cudaMemcpyDeviceToDevice));
    OK(cudaFree(d));
    cr_expect_eq(cudaMemcpy(host, d, 4, cudaMemcpyDeviceToHost), cudaErrorInvalidValue, "use after free");
    cudaStream_t s;
    OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    OK(cudaStreamDestroy(s));
    cr_expect_eq(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle, "destroyed stream");
    (void)cudaGetLastError();
}

/* ---- bf16 / half ------------------------------------------------------------------------------------- */

__global__ void convert_kernel(const float *in, int n, __nv_bfloat16 *b, __half *h) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        b[i] = __float2bfloat16_rn(in[i]);
        h[i] = __float2half_rn(in[i]);
    }
}

Test(cuda_emu, bf16_and_half_round_like_the_cpu) {
    const int n = 1 << 16;
    float *x = (float *)malloc(n * sizeof(float)), *b = (float *)malloc(n * sizeof(float));
    __nv_bfloat16 *hb = (__nv_bfloat16 *)malloc(n * 2);
    __half *hh = (__half *)malloc(n * 2);
    uint32_t z = 12345;
    for (int i = 0; i < n; i++) {
        z = z * 1664525u + 1013904223u;
        uint32_t u = z;
        /* Every exponent, with a bias toward half's range and toward ties (low bits zero). */
        if (i % 3 == 0) u = (u & 0x80000000u) | ((u % 40u + 100u) << 23) | (u & 0x7fe000u);
        if (i % 5 == 0) u &= 0xffff8000u;
        memcpy(&x[i], &u, 4);
    }
    const float special[] = {65504.0f, 65519.0f, 65520.0f, 5.9604645e-8f, 2.9802322e-8f, 4.4703484e-8f,
                             1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -0.0f, INFINITY, NAN, 3.0e38f};
    memcpy(x, special, sizeof special);
    float *dx = dev<float>(n);
    __nv_bfloat16 *db = dev<__nv_bfloat16>(n);
    __half *dh = dev<__half>(n);
    OK(cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice));
    convert_kernel<<<64, 256>>>(dx, n, db, dh);
    OK(cudaGetLastError());
    OK(cudaMemcpy(hb, db, n * 2, cudaMemcpyDeviceToHost));
    OK(cudaMemcpy(hh, dh, n * 2, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        float gb = __bfloat162float(hb[i]), gh = __half2float(hh[i]);
        float wb = igi_round_bf16(x[i]), wh = igi_round_fp16(x[i]);
        if (x[i] != x[i]) {
            cr_expect(gb != gb && gh != gh, "NaN stays NaN");
            continue;
        }
        cr_expect(memcmp(&gb, &wb, 4) == 0, "bf16(%a) = %a, cpu %a", (double)x[i], (double)gb, (double)wb);
        cr_expect(memcmp(&gh, &wh, 4) == 0, "half(%a) = %a, cpu %a", (double)x[i], (double)gh, (double)wh);
    }
    cr_expect_eq(__half2float(__float2half_rn(65520.0f)), INFINITY);
    cr_expect_eq(__half2float(__float2half_rn(2.9802322e-8f)), 0.0f, "2^-25 ties to even: 0");
    free(x), free(b), free(hb), free(hh);
    cudaFree(dx), cudaFree(db), cudaFree(dh);
}

/* ---- wmma (tensor-core fragments) ------------------------------------------------------------------ */

/* One warp: D = A @ B + C for 16x16 tiles read from global memory, A with layout LA and
 * leading dimension lda, B with LB and ldb, C loaded (row-major, ld 20) or zero, D stored
 * with layout ld_layout and leading dimension ldd. The operands go through shared memory
 * first (as a kernel would stage them), 32-byte aligned. */
template <typename T, typename LA, typename LB>
__global__ void wmma_kernel(const T *a, unsigned lda, const T *b, unsigned ldb, const float *c, float *d, unsigned ldd,
                            int col_out) {
    using namespace nvcuda;
    __shared__ igemu_wmma_stage<T> st;
    for (int i = threadIdx.x; i < 16 * 40; i += 32) {
        st.a[i] = a[i];
        st.b[i] = b[i];
    }
    __syncwarp();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LA> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LB> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::load_matrix_sync(fa, st.a, lda);
    wmma::load_matrix_sync(fb, st.b, ldb);
    if (c)
        wmma::load_matrix_sync(fc, c, 20, wmma::mem_row_major);
    else
        wmma::fill_fragment(fc, 0.0f);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(d, fc, ldd, col_out ? wmma::mem_col_major : wmma::mem_row_major);
}

template <typename T, typename LA, typename LB> static void wmma_case(int with_c, int col_out) {
    using namespace nvcuda;
    const bool arow = std::is_same<LA, wmma::row_major>::value, brow = std::is_same<LB, wmma::row_major>::value;
    const unsigned lda = 24, ldb = 40, ldd = 20; /* padded: the layouts' strides show */
    T ha[16 * 40], hb[16 * 40];
    float hc[16 * 20], want[16][16], got[20 * 20];
    for (int i = 0; i < 16 * 40; i++) {
        ha[i] = T(NAN); /* padding: must not be read */
        hb[i] = T(NAN);
    }
    float av[16][16], bv[16][16];
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++) {
            av[i][k] = (float)T(0.37f * (float)((i * 7 + k * 3) % 11) - 1.1f + 0.013f * (float)k);
            bv[i][k] = (float)T(0.53f * (float)((i * 5 + k * 13) % 9) - 2.0f + 0.007f * (float)i);
            ha[arow ? i * lda + k : i + k * lda] = T(av[i][k]);
            hb[brow ? i * ldb + k : i + k * ldb] = T(bv[i][k]);
        }
    for (int i = 0; i < 16 * 20; i++) hc[i] = 0.25f * (float)(i % 17) - 2.0f;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double acc = with_c ? hc[i * 20 + j] : 0.0;
            for (int k = 0; k < 16; k++) acc += (double)av[i][k] * bv[k][j];
            want[i][j] = (float)acc;
        }
    T *da = dev<T>(16 * 40), *db = dev<T>(16 * 40);
    float *dc = dev<float>(16 * 20), *dd = dev<float>(20 * 20);
    OK(cudaMemcpy(da, ha, sizeof ha, cudaMemcpyHostToDevice));
    OK(cudaMemcpy(db, hb, sizeof hb, cudaMemcpyHostToDevice));
    OK(cudaMemcpy(dc, hc, sizeof hc, cudaMemcpyHostToDevice));
    OK(cudaMemset(dd, 0, sizeof got));
    wmma_kernel<T, LA, LB><<<1, 32>>>(da, lda, db, ldb, with_c ? dc : NULL, dd, ldd, col_out);
    OK(cudaGetLastError());
    OK(cudaMemcpy(got, dd, sizeof got, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float g = got[col_out ? i + j * ldd : i * ldd + j];
            cr_expect(fabsf(g - want[i][j]) <= 1e-5f * (1 + fabsf(want[i][j])), "%s a %s b %s c %d d %s: D[%d][%d] = %g, want %g",
                      std::is_same<T, __half>::value ? "half" : "bf16", arow ? "row" : "col", brow ? "row" : "col",
                      with_c, col_out ? "col" : "row", i, j, (double)g, (double)want[i][j]);
        }
    /* Past the tile: the rows (or columns) 16..19 of D's leading dimension stay untouched. */
    for (int i = 0; i < 20 * 20; i++)
        if ((col_out ? i % 20 : i / 20) >= 16 || (col_out ? i / 20 : i % 20) >= 16)
            cr_expect_eq(got[i], 0.0f, "D element %d outside the tile written", i);
    cudaFree(da), cudaFree(db), cudaFree(dc), cudaFree(dd);
}

Test(cuda_emu, wmma_bf16_and_half_mma_match_a_plain_loop) {
    using namespace nvcuda;
    for (int with_c = 0; with_c < 2; with_c++)
        for (int col_out = 0; col_out < 2; col_out++) {
            wmma_case<__nv_bfloat16, wmma::row_major, wmma::row_major>(with_c, col_out);
            wmma_case<__nv_bfloat16, wmma::col_major, wmma::row_major>(with_c, col_out);
            wmma_case<__nv_bfloat16, wmma::row_major, wmma::col_major>(with_c, col_out);
            wmma_case<__half, wmma::col_major, wmma::col_major>(with_c, col_out);
            wmma_case<__half, wmma::row_major, wmma::row_major>(with_c, col_out);
        }
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> f;
    cr_expect_eq(f.num_elements, 256);
}

/* tf32: one warp, D = A [16x8] @ B [8x16] (row-major, from global memory), the fragments'
 * elements rounded with __float_to_tf32 first when round (the documented usage) or left as
 * loaded (the tensor core then ignores their low 13 bits). */
__global__ void wmma_tf32_kernel(const float *a, const float *b, float *d, int round) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
    wmma::load_matrix_sync(fa, a, 8);
    wmma::load_matrix_sync(fb, b, 16);
    if (round) {
        for (int i = 0; i < fa.num_elements; i++) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
        for (int i = 0; i < fb.num_elements; i++) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
    }
    wmma::fill_fragment(fc, 0.0f);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(d, fc, 16, wmma::mem_row_major);
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

Test(cuda_emu, tf32_rounding_and_mma) {
    using namespace nvcuda;
    /* __float_to_tf32: nearest, ties away from zero, 10 mantissa bits (ulp 2^-10 at 1). */
    cr_expect_eq(wmma::__float_to_tf32(1.0f + 0x1p-11f), 1.0f + 0x1p-10f, "a tie rounds away from zero");
    cr_expect_eq(wmma::__float_to_tf32(-(1.0f + 0x1p-11f)), -(1.0f + 0x1p-10f), "a negative tie, away from zero");
    cr_expect_eq(wmma::__float_to_tf32(1.0f + 0x1p-11f - 0x1p-23f), 1.0f, "below the tie: down");
    cr_expect_eq(wmma::__float_to_tf32(1.0f + 0x1p-10f + 0x1p-11f), 1.0f + 0x1p-9f, "a tie above an odd value: away");
    cr_expect_eq(wmma::__float_to_tf32(3.0f), 3.0f);
    cr_expect_eq(wmma::__float_to_tf32(INFINITY), INFINITY);
    cr_expect_eq(wmma::__float_to_tf32(FLT_MAX), INFINITY, "the largest float is past the largest tf32's half ulp");
    cr_expect_eq(float_bits(wmma::__float_to_tf32(bits_float(0x7f7fefffu))), 0x7f7fe000u, "the largest tf32 stays");
    cr_expect(isnan(wmma::__float_to_tf32(NAN)));
    cr_expect(isnan(wmma::__float_to_tf32(bits_float(0x7f800001u))), "a NaN with only low bits set stays NaN");
    cr_expect_eq(float_bits(wmma::__float_to_tf32(bits_float(0x00001000u))), 0x00002000u, "subnormals round too");

    /* The mma: values with low bits set, so rounding, truncation and full fp32 all differ. */
    float ha[16 * 8], hb[8 * 16], got[16 * 16];
    for (int i = 0; i < 16 * 8; i++) ha[i] = 1.0f + (float)(i % 13) * 0x1.3p-9f + 0x1.fp-12f;
    for (int i = 0; i < 8 * 16; i++) hb[i] = -0.5f + (float)(i % 7) * 0x1.7p-8f + 0x1.8p-13f;
    float *da = dev<float>(16 * 8), *db = dev<float>(8 * 16), *dd = dev<float>(16 * 16);
    OK(cudaMemcpy(da, ha, sizeof ha, cudaMemcpyHostToDevice));
    OK(cudaMemcpy(db, hb, sizeof hb, cudaMemcpyHostToDevice));
    for (int round = 0; round < 2; round++) {
        wmma_tf32_kernel<<<1, 32>>>(da, db, dd, round);
        OK(cudaGetLastError());
        OK(cudaMemcpy(got, dd, sizeof got, cudaMemcpyDeviceToHost));
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) {
                double want = 0, full = 0;
                for (int k = 0; k < 8; k++) {
                    /* the operand values, rounded (ties away) or truncated to 10 mantissa bits */
                    float a = ha[i * 8 + k], b = hb[k * 16 + j];
                    uint32_t ua = float_bits(a), ub = float_bits(b);
                    if (round) ua += 0x1000u, ub += 0x1000u;
                    want += (double)bits_float(ua & 0xffffe000u) * (double)bits_float(ub & 0xffffe000u);
                    full += (double)a * b;
                }
                cr_expect(fabs(got[i * 16 + j] - want) <= 1e-6 * (1 + fabs(want)), "round %d: D[%d][%d] = %.9g, want %.9g",
                          round, i, j, (double)got[i * 16 + j], want);
                cr_expect(fabs(got[i * 16 + j] - full) > 1e-6 * (1 + fabs(full)), "round %d: D[%d][%d] is the fp32 product",
                          round, i, j);
            }
    }
    cudaFree(da), cudaFree(db), cudaFree(dd);
    typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> Ftf32;
    cr_expect_eq((int)Ftf32::num_elements, 128);
}

/* ---- the cuBLAS stand-in ------------------------------------------------------------------------------- */

Test(cuda_emu, cublas_stand_in_is_column_major_and_checks_its_operands) {
    setenv("IGEMU_QUIET", "1", 1); /* the errors below are on purpose */
    void *lib = dlopen(IGEMU_CUBLAS_PATH, RTLD_NOW | RTLD_LOCAL);
    cr_assert(lib, "%s", dlerror());
    typedef decltype(&cublasSgemm_v2) sgemm_t;
    sgemm_t sgemm = (sgemm_t)dlsym(lib, "cublasSgemm_v2");
    decltype(&cublasCreate_v2) create = (decltype(&cublasCreate_v2))dlsym(lib, "cublasCreate_v2");
    cr_assert(sgemm && create);
    cublasHandle_t h;
    cr_assert_eq(create(&h), CUBLAS_STATUS_SUCCESS);
    /* Column-major A (2x3, ld 3: one padding row), B (3x2), C (2x2) = A B with C's NaN unread. */
    const float A[9] = {1, 4, -1, 2, 5, -1, 3, 6, -1}, B[6] = {1, 0, 2, 0, 1, 1};
    float C[4] = {NAN, NAN, NAN, NAN}, got[4];
    float *dA = dev<float>(9), *dB = dev<float>(6), *dC = dev<float>(4);
    OK(cudaMemcpy(dA, A, sizeof A, cudaMemcpyHostToDevice));
    OK(cudaMemcpy(dB, B, sizeof B, cudaMemcpyHostToDevice));
    OK(cudaMemcpy(dC, C, sizeof C, cudaMemcpyHostToDevice));
    const float one = 1, zero = 0;
    cr_assert_eq(sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, dA, 3, dB, 3, &zero, dC, 2), CUBLAS_STATUS_SUCCESS);
    OK(cudaMemcpy(got, dC, sizeof got, cudaMemcpyDeviceToHost));
    const float want[4] = {7, 16, 5, 11}; /* columns of [[1 2 3] [4 5 6]] @ [[1 0] [0 1] [2 1]] */
    for (int i = 0; i < 4; i++) cr_expect_eq(got[i], want[i], "C[%d] = %g, want %g", i, got[i], want[i]);
    /* lda smaller than the rows, a host operand, a B that runs past its allocation. */
    cr_expect_eq(sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, dA, 1, dB, 3, &zero, dC, 2),
                 CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, A, 3, dB, 3, &zero, dC, 2),
                 CUBLAS_STATUS_INVALID_VALUE);
    cr_expect_eq(sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, dA, 3, dB, 4, &zero, dC, 2),
                 CUBLAS_STATUS_INVALID_VALUE);
    cudaFree(dA), cudaFree(dB), cudaFree(dC);
}
