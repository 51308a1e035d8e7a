/*
 * cuda/backend.cu — the CUDA backend's table, its initialisation, and its memory functions
 * (raw device allocation under core's caching allocator, pinned host memory with its
 * events, copies, memset, synchronize).
 *
 * core/backend.c calls igi_cuda_init once, on the first use of IG_CUDA: it checks for a
 * device, creates the process-wide stream and the cuBLAS handle, and registers the table.
 * The stream is created on the device current at that moment: device 0, or the one the
 * nccl process group selected (cuda/nccl.c calls cudaSetDevice(local rank) first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"

cudaStream_t igc_stream;

ig_status igc_fail(const char *op, const char *call, const char *file, int line, cudaError_t e) {
    /* Clears the error if it is not sticky, so a later call is not blamed for it. */
    (void)cudaGetLastError();
    ig_status st = e == cudaErrorMemoryAllocation ? IG_ERR_NOMEM : IG_ERR_DEVICE;
    return igi_error(st, "%s: %s failed (%s:%d): %s: %s", op, call, file, line, cudaGetErrorName(e),
                     cudaGetErrorString(e));
}

/* ---- memory --------------------------------------------------------------------------- */

static void *raw_alloc(size_t nbytes) {
    void *p = NULL;
    if (cudaMalloc(&p, nbytes) != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is not sticky: clear it */
        return NULL;
    }
    return p;
}

static void raw_free(void *p) {
    /* cudaFree waits for work using p; an error here (a device already failed) has no one
     * to report to and the block is gone either way. */
    if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
}

static ig_status memcpy_h2d(void *dst, const void *src, size_t n) {
    IGC_CHECK("ig_to", cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, igc_stream));
    IGC_CHECK("ig_to", cudaStreamSynchronize(igc_stream));
    return IG_OK;
}

static ig_status memcpy_d2h(void *dst, const void *src, size_t n) {
    IGC_CHECK("ig_to", cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, igc_stream));
    IGC_CHECK("ig_to", cudaStreamSynchronize(igc_stream));
    return IG_OK;
}

static ig_status memcpy_d2d(void *dst, const void *src, size_t n) {
    IGC_CHECK("ig_to", cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, igc_stream));
    return IG_OK;
}

/* Pinned host memory and the events that guard its reuse (core/alloc.c caches both, so
 * none of this runs per step). Default flags: portable within this process's one device. */
static void *host_alloc(size_t nbytes) {
    void *p = NULL;
    if (cudaHostAlloc(&p, nbytes, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError(); /* out of pinned memory is not sticky */
        return NULL;
    }
    return p;
}

static void host_free(void *p) {
    /* As raw_free: nobody to report a failure to. core waited on the block's event first. */
    if (cudaFreeHost(p) != cudaSuccess) (void)cudaGetLastError();
}

static ig_status event_new(void **event) {
    cudaEvent_t e;
    /* No timing: recording and waiting are cheaper; BlockingSync is left off, so a wait
     * spins briefly as the runtime decides (the loader waits rarely and shortly). */
    IGC_CHECK("ig_loader_new", cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    *event = (void *)e;
    return IG_OK;
}

static void event_free(void *event) {
    if (event && cudaEventDestroy((cudaEvent_t)event) != cudaSuccess) (void)cudaGetLastError();
}

/* From page-locked memory the copy is truly asynchronous: no stream synchronisation. The
 * event recorded after it on the same stream completes when the copy has read src. */
static ig_status memcpy_h2d_async(void *dst, const void *src, size_t n, void *event) {
    IGC_CHECK("ig_to", cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, igc_stream));
    IGC_CHECK("ig_to", cudaEventRecord((cudaEvent_t)event, igc_stream));
    return IG_OK;
}

/* The device the backend was initialised on (the process's GPU: under NCCL the local rank's,
 * chosen before the first CUDA call). */
static int igc_device;

static ig_status host_wait(void *event) {
    /* The loader's worker threads wait here. A thread's first CUDA call would otherwise make
     * device 0 current for it (and create a context there, hundreds of MB, on every rank of
     * a multi-GPU job): make it the backend's device first, once per thread. */
    static thread_local bool on_device = false;
    if (!on_device) {
        IGC_CHECK("ig_loader_next", cudaSetDevice(igc_device));
        on_device = true;
    }
    IGC_CHECK("ig_loader_next", cudaEventSynchronize((cudaEvent_t)event));
    return IG_OK;
}

static ig_status memset_zero(void *dst, size_t n) {
    IGC_CHECK("ig_cuda", cudaMemsetAsync(dst, 0, n, igc_stream));
    return IG_OK;
}

static ig_status synchronize(void) {
    IGC_CHECK("ig_cuda", cudaStreamSynchronize(igc_stream));
    return IG_OK;
}

/* ---- the table ------------------------------------------------------------------------ */

static const igi_backend cuda_table = {
    "cuda",
    /* bf16: the groups with native bf16 kernels (enum igi_bf16_group) */
    IGI_BF16_EW | IGI_BF16_REDUCE | IGI_BF16_POOL | IGI_BF16_CONV | IGI_BF16_GEMM | IGI_BF16_BN,
    raw_alloc,
    raw_free,
    memcpy_h2d,
    memcpy_d2h,
    memcpy_d2d,
    memset_zero,
    synchronize,
    igc_copy,
    igc_fill,
    igc_binary,
    igc_scalar,
    igc_where,
    igc_unary,
    igc_unary_backward,
    igc_reduce,
    igc_reduce_scatter,
    igc_softmax,
    igc_softmax_backward,
    igc_gemm,
    igc_conv2d,
    igc_conv2d_backward,
    igc_pool2d,
    igc_pool2d_backward,
    igc_batch_norm,
    igc_batch_norm_backward,
    igc_class_loss,
    igc_class_loss_backward,
    igc_optim_step,
    igc_pointwise_loss,
    igc_pointwise_loss_backward,
    igc_layer_norm,
    igc_layer_norm_backward,
    igc_dropout_mask,
    igc_mask_apply,
    igc_gemm_amp,
    igc_amp_unscale,
    igc_batch_norm_sums,
    igc_batch_norm_apply,
    igc_batch_norm_backward_apply,
    igc_gather,
    igc_gather_backward,
    host_alloc,
    host_free,
    event_new,
    event_free,
    memcpy_h2d_async,
    host_wait,
};

extern "C" ig_status igi_cuda_init(char *msg, size_t cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(msg, cap, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return IG_ERR_DEVICE;
    }
    if (n < 1) {
        snprintf(msg, cap, "cudaGetDeviceCount: 0 devices");
        return IG_ERR_DEVICE;
    }
    if ((e = cudaGetDevice(&igc_device)) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(msg, cap, "cudaGetDevice: %s", cudaGetErrorString(e));
        return IG_ERR_DEVICE;
    }
    e = cudaStreamCreateWithFlags(&igc_stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(msg, cap, "cudaStreamCreateWithFlags: %s", cudaGetErrorString(e));
        return IG_ERR_DEVICE;
    }
    if (igc_gemm_init(msg, cap) != IG_OK) {
        cudaStreamDestroy(igc_stream);
        return IG_ERR_DEVICE;
    }
    const char *prof = getenv("IGNIS_CUDA_PROFILE");
    const igi_backend *t = prof && *prof && strcmp(prof, "0") != 0 ? igc_profile_table(&cuda_table) : NULL;
    igi_backend_register(IG_CUDA, t ? t : &cuda_table);
    return IG_OK;
}

extern "C" void igi_cuda_set_tf32(bool on) { igc_gemm_set_tf32(on); }

extern "C" void *igi_cuda_stream(void) { return (void *)igc_stream; }
