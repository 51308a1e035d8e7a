/*
 * tests/cuda/emu/runtime.cpp — the CUDA emulator's runtime: device memory, copies, streams,
 * events and errors with CUDA's semantics (and stricter checks), and the kernel scheduler.
 *
 * Kernels run synchronously, on the host thread that launches them, one block after the
 * other (a process-wide lock: host threads may launch concurrently, their kernels then run
 * one at a time). The threads of a block are fibers with stacks from a pool: each one runs
 * until it reaches __syncthreads (or a warp-level exchange) or finishes; a barrier releases
 * when every live thread of the block (of the warp) has reached it, as on Volta and later,
 * where exited threads no longer count (the order threads run in: IGEMU_SCHEDULE below). A barrier nobody can release (part of a block at
 * __syncthreads, the rest at a warp exchange) is reported on stderr and fails the launch
 * with a sticky cudaErrorLaunchFailure, as a GPU fault would. Fibers start through
 * makecontext once per stack; switches are _setjmp/_longjmp (no signal-mask syscalls).
 *
 * Memory: device allocations come from the host heap, filled with 0xff bytes (NaN in f32
 * and f64, -1 in integers) so a kernel or copy that reads memory nobody wrote shows, and are
 * recorded: every copy and memset checks that its device side lies inside one live device
 * allocation and its host side in none (cudaErrorInvalidValue otherwise, with a line on
 * stderr saying which), which catches host/device pointer confusion that a GPU would turn
 * into a fault or garbage. IGEMU_DEVICE_MEMORY (bytes, default 16 GiB) is the device's
 * size: allocations beyond it fail with cudaErrorMemoryAllocation. IGEMU_TRACE=1 prints
 * every launch and copy on stderr; IGEMU_QUIET=1 silences the complaints.
 *
 * Errors: a failing call returns its error and records it for cudaGetLastError (per host
 * thread, cleared by reading); a sticky error (a deadlocked block) fails every later call.
 * Launch configuration errors are those of CUDA: no blocks or threads, more than 1024
 * threads per block (block.z above 64), grid.y / grid.z above 65535, dynamic shared memory
 * above 48 KiB without cudaFuncSetAttribute (227 KiB with it).
 */
#include <setjmp.h>
/* glibc's fortified longjmp refuses to jump to another stack; switching stacks is the point. */
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "cuda_runtime.h"

uint3 igemu_threadIdx, igemu_blockIdx;
dim3 igemu_blockDim, igemu_gridDim;
unsigned long long igemu_block_serial;

struct CUstream_st {
    unsigned flags;
    int priority;
};

struct CUevent_st {
    unsigned flags;
    bool recorded;
    double ms;
};

namespace {

/* ---- errors ---------------------------------------------------------------------------- */

thread_local cudaError_t last_error = cudaSuccess;
std::atomic<int> sticky_error{cudaSuccess};

cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

/* Every API call starts here: a sticky error fails it. */
#define IGEMU_ENTER()                                                               \
    do {                                                                            \
        int s_ = sticky_error.load(std::memory_order_relaxed);                      \
        if (s_ != cudaSuccess) return fail((cudaError_t)s_);                        \
    } while (0)

bool trace_on() {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("IGEMU_TRACE");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

/* Says what went wrong on stderr, unless IGEMU_QUIET is set (tests that provoke errors). */
void complain(const char *fmt, ...) {
    const char *q = getenv("IGEMU_QUIET");
    if (q && *q && strcmp(q, "0") != 0) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda emulator: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- memory registry ------------------------------------------------------------------------ */

enum Kind { DEVICE, PINNED };
struct Block {
    size_t n;
    Kind kind;
};
std::mutex mem_lock;
std::map<uintptr_t, Block> blocks; /* base address -> block */
size_t device_used;

size_t device_capacity() {
    static size_t cap = 0;
    if (!cap) {
        const char *e = getenv("IGEMU_DEVICE_MEMORY");
        cap = e && *e ? (size_t)strtoull(e, NULL, 10) : (size_t)16 << 30;
        if (!cap) cap = 1;
    }
    return cap;
}

/* The block holding address p, or NULL (callers hold mem_lock). */
const std::pair<const uintptr_t, Block> *find_block(const void *p) {
    uintptr_t a = (uintptr_t)p;
    auto it = blocks.upper_bound(a);
    if (it == blocks.begin()) return NULL;
    --it;
    if (a < it->first + (it->second.n ? it->second.n : 1)) return &*it;
    return NULL;
}

/* 1 if [p, p + n) is inside one device block, 0 if it touches none, -1 if partly. */
int device_span(const void *p, size_t n) {
    std::lock_guard<std::mutex> g(mem_lock);
    const auto *b = find_block(p);
    if (b && b->second.kind == DEVICE) return (uintptr_t)p + n <= b->first + b->second.n ? 1 : -1;
    /* Host memory: make sure the span does not run into a device block either. */
    auto it = blocks.lower_bound((uintptr_t)p);
    for (; it != blocks.end() && it->first < (uintptr_t)p + n; ++it)
        if (it->second.kind == DEVICE) return -1;
    return 0;
}

const char *kind_name(cudaMemcpyKind k) {
    switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
    }
    return "?";
}

/* Checks one side of a copy: want_device says which memory the kind promises. */
bool side_ok(const char *call, const char *which, const void *p, size_t n, bool want_device, cudaMemcpyKind k) {
    int s = device_span(p, n);
    if (want_device && s == 1) return true;
    if (!want_device && s == 0) return true;
    complain("%s(%s): the %s %p (+%zu bytes) is %s", call, kind_name(k), which, p, n,
             s == 1 ? "device memory, not host memory" : s == 0 ? "not device memory (no cudaMalloc block holds it)"
                                                               : "partly outside its device allocation");
    return false;
}

cudaError_t copy(const char *call, void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s);

/* ---- streams and events ------------------------------------------------------------------------- */

std::mutex handle_lock;
std::set<CUstream_st *> streams;
std::set<CUevent_st *> events;

bool stream_ok(cudaStream_t s) {
    if (!s) return true;
    std::lock_guard<std::mutex> g(handle_lock);
    return streams.count(s) != 0;
}

bool event_ok(cudaEvent_t e) {
    std::lock_guard<std::mutex> g(handle_lock);
    return e && events.count(e) != 0;
}

double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

cudaError_t copy(const char *call, void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    IGEMU_ENTER();
    if (!stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
    if (trace_on()) complain("%s(%p <- %p, %zu bytes, %s)", call, dst, src, n, kind_name(kind));
    if (n == 0) return cudaSuccess;
    if (!dst || !src) {
        complain("%s(%s): a NULL pointer (%p <- %p, %zu bytes)", call, kind_name(kind), dst, src, n);
        return fail(cudaErrorInvalidValue);
    }
    bool ok = true;
    switch (kind) {
    case cudaMemcpyHostToHost:
        ok = side_ok(call, "destination", dst, n, false, kind) && side_ok(call, "source", src, n, false, kind);
        break;
    case cudaMemcpyHostToDevice:
        ok = side_ok(call, "destination", dst, n, true, kind) && side_ok(call, "source", src, n, false, kind);
        break;
    case cudaMemcpyDeviceToHost:
        ok = side_ok(call, "destination", dst, n, false, kind) && side_ok(call, "source", src, n, true, kind);
        break;
    case cudaMemcpyDeviceToDevice:
        ok = side_ok(call, "destination", dst, n, true, kind) && side_ok(call, "source", src, n, true, kind);
        break;
    case cudaMemcpyDefault:
        ok = device_span(dst, n) >= 0 && device_span(src, n) >= 0;
        if (!ok) complain("%s(Default): %p or %p (+%zu bytes) runs off a device allocation", call, dst, src, n);
        break;
    default: return fail(cudaErrorInvalidMemcpyDirection);
    }
    if (!ok) return fail(cudaErrorInvalidValue);
    memmove(dst, src, n);
    return cudaSuccess;
}

/* ---- the scheduler -------------------------------------------------------------------------------- */

constexpr int max_threads = 1024;
constexpr size_t stack_bytes = 256 * 1024;
constexpr size_t guard_bytes = 4096;

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Fiber {
    jmp_buf ctx;
    char *stack; /* NULL until first used */
    uint3 tid;
    int state;
};

/* All of this belongs to the launch holding kernel_lock. */
std::mutex kernel_lock;
Fiber fibers[max_threads];
unsigned long long lane_slots[max_threads];
jmp_buf sched_ctx;
Fiber *current;
int block_threads;
void (*kernel_body)(void *);
void *kernel_ctx;
unsigned char *dynamic_smem;
std::mutex attr_lock;
std::map<const void *, int> max_dynamic_smem;

/* The fiber's first and only entry: parks at once (so its start point is a jmp_buf), then
 * runs one emulated thread per resumption, forever. */
void fiber_main() {
    Fiber *f = current;
    if (_setjmp(f->ctx) == 0) _longjmp(sched_ctx, 1);
    for (;;) {
        kernel_body(kernel_ctx);
        Fiber *me = current;
        me->state = DONE;
        if (_setjmp(me->ctx) == 0) _longjmp(sched_ctx, 1);
    }
}

bool fiber_create(Fiber *f) {
    void *m = mmap(NULL, stack_bytes + guard_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) return false;
    mprotect(m, guard_bytes, PROT_NONE); /* a stack overflow faults instead of corrupting */
    static ucontext_t uc;
    getcontext(&uc);
    uc.uc_stack.ss_sp = (char *)m + guard_bytes;
    uc.uc_stack.ss_size = stack_bytes;
    uc.uc_link = NULL;
    makecontext(&uc, fiber_main, 0);
    f->stack = (char *)m;
    current = f;
    if (_setjmp(sched_ctx) == 0) setcontext(&uc);
    return true;
}

__attribute__((noinline)) void resume(Fiber *f) {
    current = f;
    igemu_threadIdx = f->tid;
    if (_setjmp(sched_ctx) == 0) _longjmp(f->ctx, 1);
}

__attribute__((noinline)) void yield(int state) {
    Fiber *f = current;
    f->state = state;
    if (_setjmp(f->ctx) == 0) _longjmp(sched_ctx, 1);
}

/* The order threads run in between barriers (IGEMU_SCHEDULE): "shuffle" (the default) a
 * pseudo-random permutation per block, from a seed fixed by the launch and block numbers, and
 * the blocks of a grid last to first; "forward" thread 0 first and blocks in order;
 * "reverse" both backwards. Every order is one a GPU may produce; running a different one
 * than the obvious makes a missing __syncthreads or an inter-block dependency show. */
enum Schedule { SHUFFLE, FORWARD, REVERSE };
Schedule schedule() {
    static int s = -1;
    if (s < 0) {
        const char *e = getenv("IGEMU_SCHEDULE");
        s = !e || !*e || !strcmp(e, "shuffle") ? SHUFFLE : !strcmp(e, "forward") ? FORWARD : REVERSE;
        if (e && *e && strcmp(e, "shuffle") && strcmp(e, "forward") && strcmp(e, "reverse"))
            complain("IGEMU_SCHEDULE=%s: not shuffle, forward or reverse; using reverse", e);
    }
    return (Schedule)s;
}

int order[max_threads];
unsigned long long launch_serial;

/* Runs one block of n threads to the end; false if it deadlocked. */
bool run_block(int n) {
    igemu_block_serial++;
    for (int i = 0; i < n; i++) {
        Fiber *f = &fibers[i];
        unsigned x = (unsigned)i % igemu_blockDim.x, r = (unsigned)i / igemu_blockDim.x;
        f->tid = uint3{x, r % igemu_blockDim.y, r / igemu_blockDim.y};
        f->state = RUNNABLE;
        order[i] = i;
    }
    Schedule sc = schedule();
    if (sc == REVERSE) {
        for (int i = 0; i < n; i++) order[i] = n - 1 - i;
    } else if (sc == SHUFFLE) {
        /* xorshift64*, seeded by the launch and the block */
        unsigned long long z = (launch_serial * 0x9e3779b97f4a7c15ull) ^ (igemu_block_serial * 0xbf58476d1ce4e5b9ull);
        z |= 1;
        for (int i = n - 1; i > 0; i--) {
            z ^= z >> 12;
            z ^= z << 25;
            z ^= z >> 27;
            int j = (int)(((z * 0x2545f4914f6cdd1dull) >> 33) % (unsigned long long)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    for (;;) {
        for (int k = 0; k < n; k++)
            if (fibers[order[k]].state == RUNNABLE) resume(&fibers[order[k]]);
        int live = 0, at_block = 0;
        bool released = false;
        for (int w = 0; w < n; w += 32) {
            int wl = 0, ww = 0, end = w + 32 < n ? w + 32 : n;
            for (int i = w; i < end; i++) {
                int s = fibers[i].state;
                wl += s != DONE;
                ww += s == AT_WARP_BARRIER;
                at_block += s == AT_BLOCK_BARRIER;
            }
            live += wl;
            if (ww && ww == wl) {
                for (int i = w; i < end; i++)
                    if (fibers[i].state == AT_WARP_BARRIER) fibers[i].state = RUNNABLE;
                released = true;
            }
        }
        if (!live) return true;
        if (at_block == live) {
            for (int i = 0; i < n; i++)
                if (fibers[i].state == AT_BLOCK_BARRIER) fibers[i].state = RUNNABLE;
            released = true;
        }
        if (!released) return false;
    }
}

} // namespace

/* ---- kernel-side entry points ---------------------------------------------------------------------- */

void igemu_syncthreads(void) { yield(AT_BLOCK_BARRIER); }

void igemu_syncwarp(void) { yield(AT_WARP_BARRIER); }

static int linear_tid(void) { return (int)(current - fibers); }

unsigned long long igemu_warp_exchange(unsigned long long v, int src) {
    int me = linear_tid(), s = me - me % 32 + src;
    lane_slots[me] = v;
    yield(AT_WARP_BARRIER);
    unsigned long long r = s >= 0 && s < block_threads ? lane_slots[s] : v;
    yield(AT_WARP_BARRIER); /* nobody overwrites a slot before every lane has read */
    return r;
}

unsigned int igemu_warp_ballot(int pred) {
    int me = linear_tid(), base = me - me % 32;
    lane_slots[me] = pred != 0;
    yield(AT_WARP_BARRIER);
    unsigned r = 0;
    for (int i = base; i < base + 32 && i < block_threads; i++)
        if (fibers[i].state != DONE && lane_slots[i]) r |= 1u << (i - base);
    yield(AT_WARP_BARRIER);
    return r;
}

void *igemu_dynamic_smem(void) { return dynamic_smem; }

cudaError_t igemu_func_set_attribute(const void *kernel, int attr, int value) {
    IGEMU_ENTER();
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess; /* hints: accepted */
    if (value < 0 || value > 227 * 1024) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(attr_lock);
    max_dynamic_smem[kernel] = value;
    return cudaSuccess;
}

cudaError_t igemu_run(dim3 grid, dim3 block, size_t smem, cudaStream_t s, const void *kernel, void (*body)(void *),
                      void *ctx) {
    IGEMU_ENTER();
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (trace_on())
        complain("launch %p <<<(%u,%u,%u), (%u,%u,%u), %zu, %p>>>", kernel, grid.x, grid.y, grid.z, block.x, block.y,
                 block.z, smem, (void *)s);
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z || threads > 1024 || block.z > 64 ||
        grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        return fail(cudaErrorInvalidConfiguration);
    if (!stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
    size_t smem_limit = 48 * 1024;
    {
        std::lock_guard<std::mutex> g(attr_lock);
        auto it = max_dynamic_smem.find(kernel);
        if (it != max_dynamic_smem.end()) smem_limit = (size_t)it->second;
    }
    if (smem > smem_limit) return fail(cudaErrorInvalidValue);

    std::lock_guard<std::mutex> g(kernel_lock);
    int n = (int)threads;
    for (int i = 0; i < n; i++)
        if (!fibers[i].stack && !fiber_create(&fibers[i])) {
            complain("cannot map a %zu-byte fiber stack", stack_bytes);
            return fail(cudaErrorLaunchOutOfResources);
        }
    static unsigned char *smem_buf;
    static size_t smem_cap;
    if (smem > smem_cap) {
        free(smem_buf);
        smem_buf = (unsigned char *)aligned_alloc(256, (smem + 255) / 256 * 256);
        if (!smem_buf) {
            smem_cap = 0;
            return fail(cudaErrorLaunchOutOfResources);
        }
        smem_cap = smem;
    }
    dynamic_smem = smem_buf;
    kernel_body = body;
    kernel_ctx = ctx;
    block_threads = n;
    igemu_gridDim = grid;
    igemu_blockDim = block;
    launch_serial++;
    bool backwards = schedule() != FORWARD;
    for (unsigned zi = 0; zi < grid.z; zi++)
        for (unsigned yi = 0; yi < grid.y; yi++)
            for (unsigned xi = 0; xi < grid.x; xi++) {
                unsigned x = backwards ? grid.x - 1 - xi : xi, y = backwards ? grid.y - 1 - yi : yi,
                         z = backwards ? grid.z - 1 - zi : zi;
                igemu_blockIdx = uint3{x, y, z};
                if (smem) memset(smem_buf, 0xff, smem); /* shared memory starts as garbage */
                if (!run_block(n)) {
                    complain("kernel %p, block (%u,%u,%u): deadlock: part of the block waits at __syncthreads, the "
                             "rest at a warp-level barrier; the device is now in error (cudaErrorLaunchFailure)",
                             kernel, x, y, z);
                    sticky_error.store(cudaErrorLaunchFailure);
                    /* The stuck fibers are abandoned: fresh stacks next time. */
                    for (int i = 0; i < n; i++)
                        if (fibers[i].state != DONE) {
                            munmap(fibers[i].stack, stack_bytes + guard_bytes);
                            fibers[i].stack = NULL;
                        }
                    return cudaSuccess; /* reported by the next call, as an asynchronous fault is */
                }
            }
    return cudaSuccess;
}

int igemu_device_range(const void *p, size_t n) { return device_span(p, n == 0 ? 1 : n) == 1; }

/* ---- the runtime API --------------------------------------------------------------------------------- */

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return fail(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    IGEMU_ENTER();
    if (!device) return fail(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

/* The emulated device reports compute capability 9.0 (an H100 / H200): kernels that pick a
 * path by architecture (tensor cores from 8.0) take their newest one. */
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    IGEMU_ENTER();
    if (!value || device != 0) return fail(device != 0 ? cudaErrorInvalidDevice : cudaErrorInvalidValue);
    switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 132; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue);
    }
}

cudaError_t cudaSetDevice(int device) {
    IGEMU_ENTER();
    return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaDeviceSynchronize(void) {
    IGEMU_ENTER();
    return cudaSuccess;
}

cudaError_t cudaDeviceReset(void) {
    sticky_error.store(cudaSuccess);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    IGEMU_ENTER();
    if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(mem_lock);
    *total_bytes = device_capacity();
    *free_bytes = device_used < *total_bytes ? *total_bytes - device_used : 0;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    int s = sticky_error.load();
    last_error = cudaSuccess;
    return s != cudaSuccess ? (cudaError_t)s : e;
}

cudaError_t cudaPeekAtLastError(void) {
    int s = sticky_error.load();
    return s != cudaSuccess ? (cudaError_t)s : last_error;
}

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define IGEMU_NAME(x) \
    case x: return #x;
        IGEMU_NAME(cudaSuccess)
        IGEMU_NAME(cudaErrorInvalidValue)
        IGEMU_NAME(cudaErrorMemoryAllocation)
        IGEMU_NAME(cudaErrorInitializationError)
        IGEMU_NAME(cudaErrorInvalidConfiguration)
        IGEMU_NAME(cudaErrorInvalidPitchValue)
        IGEMU_NAME(cudaErrorInvalidDevicePointer)
        IGEMU_NAME(cudaErrorInvalidMemcpyDirection)
        IGEMU_NAME(cudaErrorInvalidDeviceFunction)
        IGEMU_NAME(cudaErrorNoDevice)
        IGEMU_NAME(cudaErrorInvalidDevice)
        IGEMU_NAME(cudaErrorInvalidResourceHandle)
        IGEMU_NAME(cudaErrorNotReady)
        IGEMU_NAME(cudaErrorIllegalAddress)
        IGEMU_NAME(cudaErrorLaunchOutOfResources)
        IGEMU_NAME(cudaErrorLaunchFailure)
        IGEMU_NAME(cudaErrorNotSupported)
        IGEMU_NAME(cudaErrorUnknown)
#undef IGEMU_NAME
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}

cudaError_t cudaMalloc(void **p, size_t n) {
    IGEMU_ENTER();
    if (!p) return fail(cudaErrorInvalidValue);
    *p = NULL;
    if (n == 0) return cudaSuccess;
    {
        std::lock_guard<std::mutex> g(mem_lock);
        if (n > device_capacity() - device_used || device_used > device_capacity())
            return fail(cudaErrorMemoryAllocation);
        device_used += n;
    }
    void *m = aligned_alloc(256, (n + 255) / 256 * 256);
    std::lock_guard<std::mutex> g(mem_lock);
    if (!m) {
        device_used -= n;
        return fail(cudaErrorMemoryAllocation);
    }
    memset(m, 0xff, n); /* never zeroed on a GPU: reading it before writing must show */
    blocks[(uintptr_t)m] = Block{n, DEVICE};
    *p = m;
    return cudaSuccess;
}

static cudaError_t release(void *p, Kind kind) {
    IGEMU_ENTER();
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> g(mem_lock);
    auto it = blocks.find((uintptr_t)p);
    if (it == blocks.end() || it->second.kind != kind) {
        complain("%s(%p): not the start of a live %s allocation", kind == DEVICE ? "cudaFree" : "cudaFreeHost", p,
                 kind == DEVICE ? "cudaMalloc" : "cudaHostAlloc");
        return fail(cudaErrorInvalidValue);
    }
    if (kind == DEVICE) device_used -= it->second.n;
    blocks.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) { return release(p, DEVICE); }

cudaError_t cudaHostAlloc(void **p, size_t n, unsigned int flags) {
    IGEMU_ENTER();
    (void)flags;
    if (!p) return fail(cudaErrorInvalidValue);
    void *m = aligned_alloc(256, (n + 255) / 256 * 256 + 256);
    if (!m) return fail(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> g(mem_lock);
    blocks[(uintptr_t)m] = Block{n, PINNED};
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t n) { return cudaHostAlloc(p, n, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void *p) { return release(p, PINNED); }

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p) {
    IGEMU_ENTER();
    if (!a) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(mem_lock);
    const auto *b = find_block(p);
    a->device = 0;
    if (b && b->second.kind == DEVICE) {
        a->type = cudaMemoryTypeDevice;
        a->devicePointer = (void *)p;
        a->hostPointer = NULL;
    } else if (b) {
        a->type = cudaMemoryTypeHost;
        a->devicePointer = (void *)p;
        a->hostPointer = (void *)p;
    } else {
        a->type = cudaMemoryTypeUnregistered;
        a->device = -2;
        a->devicePointer = NULL;
        a->hostPointer = (void *)p;
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
    return copy("cudaMemcpy", dst, src, n, kind, NULL);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
    return copy("cudaMemcpyAsync", dst, src, n, kind, s);
}

static cudaError_t set(const char *call, void *dst, int value, size_t n, cudaStream_t s) {
    IGEMU_ENTER();
    if (!stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
    if (trace_on()) complain("%s(%p, %d, %zu bytes)", call, dst, value, n);
    if (n == 0) return cudaSuccess;
    if (device_span(dst, n) != 1) {
        complain("%s: %p (+%zu bytes) is not inside one device allocation", call, dst, n);
        return fail(cudaErrorInvalidValue);
    }
    memset(dst, value, n);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t n) { return set("cudaMemset", dst, value, n, NULL); }

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s) {
    return set("cudaMemsetAsync", dst, value, n, s);
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int flags, int priority) {
    IGEMU_ENTER();
    if (!s || flags > cudaStreamNonBlocking) return fail(cudaErrorInvalidValue);
    CUstream_st *h = new CUstream_st{flags, priority};
    std::lock_guard<std::mutex> g(handle_lock);
    streams.insert(h);
    *s = h;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    return cudaStreamCreateWithPriority(s, flags, 0);
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithPriority(s, cudaStreamDefault, 0); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    IGEMU_ENTER();
    std::lock_guard<std::mutex> g(handle_lock);
    if (!s || !streams.erase(s)) return fail(cudaErrorInvalidResourceHandle);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    IGEMU_ENTER();
    return stream_ok(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
    IGEMU_ENTER();
    return stream_ok(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    IGEMU_ENTER();
    (void)flags;
    return stream_ok(s) && event_ok(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
    IGEMU_ENTER();
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    IGEMU_ENTER();
    if (!e || flags > 0x7) return fail(cudaErrorInvalidValue);
    CUevent_st *h = new CUevent_st{flags, false, 0.0};
    std::lock_guard<std::mutex> g(handle_lock);
    events.insert(h);
    *e = h;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    IGEMU_ENTER();
    std::lock_guard<std::mutex> g(handle_lock);
    if (!e || !events.erase(e)) return fail(cudaErrorInvalidResourceHandle);
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    IGEMU_ENTER();
    if (!event_ok(e) || !stream_ok(s)) return fail(cudaErrorInvalidResourceHandle);
    e->recorded = true;
    e->ms = now_ms();
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    IGEMU_ENTER();
    return event_ok(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    IGEMU_ENTER();
    return event_ok(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    IGEMU_ENTER();
    if (!ms) return fail(cudaErrorInvalidValue);
    if (!event_ok(start) || !event_ok(end) || (start->flags & cudaEventDisableTiming) ||
        (end->flags & cudaEventDisableTiming))
        return fail(cudaErrorInvalidResourceHandle);
    if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}

} /* extern "C" */
