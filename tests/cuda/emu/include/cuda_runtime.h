/*
 * tests/cuda/emu/include/cuda_runtime.h — the CUDA emulator's stand-in for the runtime
 * header: lets g++ compile ignis's cuda/ sources (after tests/cuda/emu/launch.pl has turned each
 * `k<<<grid, block, smem, stream>>>(args)` into `igemu_launch(grid, block, smem, stream, k,
 * args)`) into host code that runs the kernels on the CPU.
 *
 * What it maps: the execution-space qualifiers to nothing (__forceinline__ to inline, so
 * header definitions stay one-per-program), __shared__ to static (one block runs at a time,
 * on one OS thread, so a function-local static is exactly the block's shared copy),
 * threadIdx / blockIdx / blockDim / gridDim to globals the scheduler sets for the running
 * fiber, __syncthreads and the warp intrinsics to calls that yield to the scheduler, the
 * arithmetic intrinsics to plain IEEE operations, and the runtime API to the functions of
 * tests/cuda/emu/runtime.cpp (C linkage and CUDA's numeric values for every enum, so C code
 * compiled against the real headers, such as cuda/nccl.c, links against it too).
 *
 * Only the subset ignis uses (and a little more that kernels commonly need) is here; a
 * missing piece shows as a compile error, never as silently wrong behaviour.
 */
#ifndef IGEMU_CUDA_RUNTIME_H
#define IGEMU_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

#define IGEMU_CUDA_EMULATOR 1
#define CUDART_VERSION 13000
#define __CUDACC__EMU 1

/* ---- qualifiers ------------------------------------------------------------------------ */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline
/* __noinline__ is left undefined: libstdc++ spells __attribute__((__noinline__)) itself. */
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __device_builtin__

/* ---- vector types and the launch geometry ------------------------------------------------ */
struct uint3 {
    unsigned int x, y, z;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

/* Set by the scheduler (runtime.cpp) for the fiber it is about to resume. */
extern uint3 igemu_threadIdx, igemu_blockIdx;
extern dim3 igemu_blockDim, igemu_gridDim;
#define threadIdx igemu_threadIdx
#define blockIdx igemu_blockIdx
#define blockDim igemu_blockDim
#define gridDim igemu_gridDim
#define warpSize 32

/* ---- runtime types (values as CUDA's driver_types.h) -------------------------------------- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidPitchValue = 12,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

enum cudaMemoryType {
    cudaMemoryTypeUnregistered = 0,
    cudaMemoryTypeHost = 1,
    cudaMemoryTypeDevice = 2,
    cudaMemoryTypeManaged = 3
};

struct cudaPointerAttributes {
    enum cudaMemoryType type;
    int device;
    void *devicePointer;
    void *hostPointer;
};

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

/* The device attributes cudaDeviceGetAttribute answers (the emulated device is a 9.0). */
enum cudaDeviceAttr {
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
};

struct CUstream_st;
struct CUevent_st;
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00

/* ---- runtime API (tests/cuda/emu/runtime.cpp) ---------------------------------------------- */
extern "C" {
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);

cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned int flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemset(void *dst, int value, size_t n);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s);

cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags);
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int flags, int priority);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags);
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest);

cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);

/* Emulator internals the launch template and the intrinsics below call. */
cudaError_t igemu_run(dim3 grid, dim3 block, size_t smem, cudaStream_t s, const void *kernel,
                      void (*body)(void *), void *ctx);
cudaError_t igemu_func_set_attribute(const void *kernel, int attr, int value);
void igemu_syncthreads(void);
void igemu_syncwarp(void);
/* Lane exchange for the warp intrinsics: stores v for this lane, waits for the warp, and
 * returns the value stored by lane src (src outside the warp: this lane's own v). */
unsigned long long igemu_warp_exchange(unsigned long long v, int src);
unsigned int igemu_warp_ballot(int pred);
void *igemu_dynamic_smem(void);
/* Counts the blocks run (from 1): a new value means a new block's shared memory. */
extern unsigned long long igemu_block_serial;
/* 1 if [p, p + n) lies inside one live device allocation (for the emulated cuBLAS). */
int igemu_device_range(const void *p, size_t n);
}

/* ---- kernel launches (what launch.pl writes for <<<...>>>) ---------------------------------- */

/* k's parameters are copied once from the arguments (converted to the parameter types, as a
 * real launch does), and every emulated thread gets its own by-value copy of them. */
template <typename... P> struct igemu_launch_ctx {
    void (*kernel)(P...);
    std::tuple<typename std::decay<P>::type...> params;
    static void body(void *c) {
        igemu_launch_ctx *x = static_cast<igemu_launch_ctx *>(c);
        std::apply(x->kernel, x->params);
    }
};

/* One argument converted to its parameter's type, implicitly as in a call (a launch's NULL
 * or 0 for a pointer parameter, which forwarding turns into a plain integer, included). */
template <typename D, typename A> inline D igemu_arg(A &&a) {
    if constexpr (std::is_pointer<D>::value && std::is_integral<typename std::decay<A>::type>::value) {
        return (D)(uintptr_t)a;
    } else {
        D d = std::forward<A>(a);
        return d;
    }
}

/* A launch is a statement, as in CUDA: its errors are read with cudaGetLastError. */
template <typename... P, typename... A>
inline void igemu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t s, void (*kernel)(P...),
                                A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    igemu_launch_ctx<P...> ctx{kernel, {igemu_arg<typename std::decay<P>::type>(std::forward<A>(args))...}};
    (void)igemu_run(grid, block, smem, s, (const void *)kernel, &igemu_launch_ctx<P...>::body, &ctx);
}

template <typename... P> inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
    return igemu_func_set_attribute((const void *)kernel, (int)attr, value);
}

/* launch.pl puts this after each function-scope __shared__ array: the first thread of a block
 * to reach the declaration fills the array with 0xff bytes (NaN in floats, -1 in integers),
 * so a read of shared memory that no thread of this block wrote shows. */
inline void igemu_shared_begin(void *p, size_t n, unsigned long long *gen) {
    if (*gen != igemu_block_serial) {
        *gen = igemu_block_serial;
        memset(p, 0xff, n);
    }
}

/* ---- synchronisation and warp intrinsics ------------------------------------------------------ */
inline void __syncthreads(void) { igemu_syncthreads(); }
inline int __syncthreads_or(int p) {
    static int acc;
    igemu_syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) acc = 0;
    igemu_syncthreads();
    if (p) acc = 1;
    igemu_syncthreads();
    int r = acc;
    igemu_syncthreads();
    return r;
}
inline void __syncwarp(unsigned = 0xffffffffu) { igemu_syncwarp(); }
inline void __threadfence(void) {}
inline void __threadfence_block(void) {}

template <typename T> inline unsigned long long igemu_bits_of(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp shuffle of an unsupported type");
    unsigned long long b = 0;
    memcpy(&b, &v, sizeof v);
    return b;
}
template <typename T> inline T igemu_of_bits(unsigned long long b) {
    T v;
    memcpy(&v, &b, sizeof v);
    return v;
}
inline int igemu_lane(void) {
    unsigned linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    return (int)(linear % 32u);
}
template <typename T> inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
    int lane = igemu_lane(), base = lane - lane % width;
    return igemu_of_bits<T>(igemu_warp_exchange(igemu_bits_of(v), base + ((src % width) + width) % width));
}
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = igemu_lane(), seg = lane % width;
    int src = seg + (int)delta < width ? lane + (int)delta : lane;
    return igemu_of_bits<T>(igemu_warp_exchange(igemu_bits_of(v), src));
}
template <typename T> inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = igemu_lane(), seg = lane % width;
    int src = seg - (int)delta >= 0 ? lane - (int)delta : lane;
    return igemu_of_bits<T>(igemu_warp_exchange(igemu_bits_of(v), src));
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
    int lane = igemu_lane(), src = lane ^ mask;
    if (src / width != lane / width) src = lane;
    return igemu_of_bits<T>(igemu_warp_exchange(igemu_bits_of(v), src));
}
inline unsigned __ballot_sync(unsigned, int p) { return igemu_warp_ballot(p); }
inline int __any_sync(unsigned, int p) { return igemu_warp_ballot(p) != 0; }
inline int __all_sync(unsigned, int p) { return igemu_warp_ballot(!p) == 0; }
inline unsigned __activemask(void) { return igemu_warp_ballot(1); }

/* ---- atomics: one emulated thread runs at a time and never between these statements ---------- */
template <typename T> inline T igemu_atomic_add(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
inline float atomicAdd(float *p, float v) { return igemu_atomic_add(p, v); }
inline double atomicAdd(double *p, double v) { return igemu_atomic_add(p, v); }
inline int atomicAdd(int *p, int v) { return (int)igemu_atomic_add((unsigned *)p, (unsigned)v); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return igemu_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return igemu_atomic_add(p, v); }
inline int atomicSub(int *p, int v) { return (int)igemu_atomic_add((unsigned *)p, 0u - (unsigned)v); }
inline unsigned atomicSub(unsigned *p, unsigned v) { return igemu_atomic_add(p, 0u - v); }
template <typename T> inline T atomicExch(T *p, T v) {
    T old = *p;
    *p = v;
    return old;
}
template <typename T> inline T atomicCAS(T *p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}
template <typename T> inline T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <typename T> inline T atomicMin(T *p, T v) {
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <typename T> inline T atomicOr(T *p, T v) {
    T old = *p;
    *p = old | v;
    return old;
}
template <typename T> inline T atomicAnd(T *p, T v) {
    T old = *p;
    *p = old & v;
    return old;
}

/* ---- arithmetic intrinsics: IEEE operations in the default rounding mode (the emulated
 * code is compiled with -ffp-contract=off, so nothing is fused behind our back) ----------- */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
/* The fast approximate forms, computed exactly (a GPU's results differ in the last bits). */
inline float __expf(float a) { return expf(a); }
inline float __logf(float a) { return logf(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline double rsqrt(double a) { return 1.0 / sqrt(a); }
inline float __saturatef(float a) { return a != a ? 0.0f : a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; }

inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

/* CUDA's integer and float min/max overloads (host and device). */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

/* Read-only cache loads are plain loads. */
template <typename T> inline T __ldg(const T *p) { return *p; }

#endif
