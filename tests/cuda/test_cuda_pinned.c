/*
 * tests/cuda/test_cuda_pinned.c — the loader's pinned batches (ig_loader_opts.pin_memory)
 * and the asynchronous uploads from them (core/device.c, core/alloc.c, data/loader.c).
 *
 * Suite `cuda` (a GPU, or the emulated device of `make test-cuda-emu`; skipped without
 * one): batches land in page-locked memory, upload to the same values as the dataset's
 * items while the loader keeps refilling its buffers, and leave no pinned, host or device
 * bytes live. The emulator copies synchronously, so it cannot show a missing wait.
 *
 * Suite `cuda_fake` (everywhere): a stand-in device on host memory whose asynchronous
 * copies are really deferred: memcpy_h2d_async only queues the copy, and the queue runs
 * when someone waits on an event, synchronises or copies to the host. That is a legal
 * (maximally lazy) stream, so a loader that refilled a buffer before waiting on its event
 * would hand the device the next batch's bytes: the values checked below would be wrong.
 * It also checks the cache of pinned blocks and events, the fallback to ordinary memory
 * when the device has no pinned memory, and the error of a failed wait.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_impl.h"
#include "core/tensor_impl.h"
#include "cuda_test_util.h"
#include "fake_device.h"
#include "ignis.h"

/* ---- a dataset whose items are a formula of their index -------------------------------- */

#define ITEM_NUMEL 12 /* [3, 2, 2] */

static float item_value(int64_t i, int64_t k) { return (float)(i * 16 + k) * 0.25f; }

static int64_t ds_len(void *ctx) { return *(int64_t *)ctx; }

static ig_status ds_read(void *ctx, int64_t i, float *x, int64_t *label) {
    (void)ctx;
    for (int64_t k = 0; k < ITEM_NUMEL; k++) x[k] = item_value(i, k);
    *label = i % 5;
    return IG_OK;
}

static ig_dataset *formula_dataset(int64_t n) {
    static const ig_dataset_ops ops = {ds_len, ds_read, free};
    int64_t *ctx = malloc(sizeof *ctx);
    cr_assert_not_null(ctx);
    *ctx = n;
    ig_dataset *d = ig_dataset_new(&ops, ctx, 3, (const int64_t[]){3, 2, 2}, 5, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    return d;
}

/* Uploads every batch of two epochs (no shuffle, batch 4 of n items: the last one
 * partial) and keeps the device copies while the loader goes on refilling its buffers;
 * then checks each copy against the formula. */
static void upload_epochs_and_check(ig_loader *l, int64_t n) {
    enum { MAXB = 64 };
    ig_tensor *dx[MAXB], *dy[MAXB];
    int64_t nb = 0;
    for (int64_t e = 0; e < 2; e++) {
        cr_assert_eq(ig_loader_start_epoch(l, e), IG_OK);
        ig_tensor *x, *y;
        int r;
        while ((r = ig_loader_next(l, &x, &y)) == 1) {
            cr_assert_lt(nb, MAXB);
            dx[nb] = ig_to(x, IG_CUDA);
            dy[nb] = ig_to(y, IG_CUDA);
            cr_assert(dx[nb] && dy[nb], "%s", ig_last_error());
            nb++;
        }
        cr_assert_eq(r, 0, "%s", ig_last_error());
    }
    int64_t per_epoch = (n + 3) / 4;
    cr_assert_eq(nb, 2 * per_epoch);
    for (int64_t k = 0; k < nb; k++) {
        int64_t first = (k % per_epoch) * 4, b = first + 4 <= n ? 4 : n - first;
        cr_assert_eq(ig_tensor_size(dx[k], 0), b);
        float xs[4 * ITEM_NUMEL];
        int64_t ys[4];
        cr_assert_eq(ig_tensor_to_buffer(dx[k], IG_F32, xs, b * ITEM_NUMEL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_to_buffer(dy[k], IG_I64, ys, b), IG_OK, "%s", ig_last_error());
        for (int64_t i = 0; i < b; i++) {
            cr_assert_eq(ys[i], (first + i) % 5, "batch %lld sample %lld: label", (long long)k, (long long)i);
            for (int64_t j = 0; j < ITEM_NUMEL; j++)
                cr_assert_eq(xs[i * ITEM_NUMEL + j], item_value(first + i, j), "batch %lld sample %lld element %lld",
                             (long long)k, (long long)i, (long long)j);
        }
        ig_tensor_free(dx[k]);
        ig_tensor_free(dy[k]);
    }
}

/* ---- on the device ------------------------------------------------------------------- */

static void check_pinned_uploads(int workers) {
    ig_mem_stats c0, d0, p0, c1, d1, p1;
    ig_mem_get_stats(IG_CPU, &c0);
    ig_mem_get_stats(IG_CUDA, &d0);
    igi_pinned_mem_stats(&p0);
    ig_dataset *d = formula_dataset(22);
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 4, .num_workers = workers, .pin_memory = true});
    cr_assert_not_null(l, "%s", ig_last_error());
    ig_mem_stats pl;
    igi_pinned_mem_stats(&pl);
    cr_assert_gt(pl.live_bytes, p0.live_bytes, "pin_memory with CUDA: no pinned bytes live");
    ig_tensor *x, *y;
    cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_device(x), IG_CPU, "pinned batches stay CPU tensors");
    cr_assert_eq(x->storage->pinned_by, IG_CUDA);
    cr_assert_eq(y->storage->pinned_by, IG_CUDA);
    upload_epochs_and_check(l, 22);
    ig_loader_free(l);
    ig_dataset_free(d);
    ig_mem_get_stats(IG_CPU, &c1);
    ig_mem_get_stats(IG_CUDA, &d1);
    igi_pinned_mem_stats(&p1);
    cr_assert_eq(p1.live_bytes, p0.live_bytes, "pinned bytes left live: %lld", (long long)(p1.live_bytes - p0.live_bytes));
    cr_assert_eq(d1.live_bytes, d0.live_bytes, "device bytes left live: %lld", (long long)(d1.live_bytes - d0.live_bytes));
    cr_assert_eq(c1.live_bytes, c0.live_bytes, "host bytes left live: %lld", (long long)(c1.live_bytes - c0.live_bytes));
    /* The cache gives its blocks back to the runtime (cudaFreeHost) on request. */
    ig_mem_release_cached(IG_CPU);
    igi_pinned_mem_stats(&p1);
    cr_assert_eq(p1.cached_bytes, 0);
    cr_assert_eq(p1.os_frees - p0.os_frees, p1.os_allocs - p0.os_allocs, "pinned blocks not returned");
}

Test(cuda, pinned_batches_upload_the_same_values) {
    need_cuda();
    check_pinned_uploads(0);
}

Test(cuda, pinned_batches_with_workers_upload_the_same_values) {
    need_cuda();
    check_pinned_uploads(2);
}

/* ---- a stand-in device with deferred copies ---------------------------------------------- */

typedef struct fake_event {
    int waits;
} fake_event;

typedef struct pending_copy {
    void *dst;
    const void *src;
    size_t n;
} pending_copy;

enum { QCAP = 256 };
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pending_copy queue[QCAP];
static int queued, async_copies, host_waits, events_live, host_blocks_live, wait_fails;

/* Runs every queued copy (the stream catching up). */
static void drain(void) {
    pthread_mutex_lock(&q_lock);
    for (int i = 0; i < queued; i++) memcpy(queue[i].dst, queue[i].src, queue[i].n);
    queued = 0;
    pthread_mutex_unlock(&q_lock);
}

static ig_status lazy_d2h(void *d, const void *s, size_t n) {
    drain();
    memcpy(d, s, n);
    return IG_OK;
}
static ig_status lazy_d2d(void *d, const void *s, size_t n) {
    drain();
    memcpy(d, s, n);
    return IG_OK;
}
static ig_status lazy_h2d(void *d, const void *s, size_t n) {
    drain(); /* from pageable memory: synchronous, as the real backend */
    memcpy(d, s, n);
    return IG_OK;
}
static ig_status lazy_sync(void) {
    drain();
    return IG_OK;
}

static void *dev_alloc(size_t n) { return malloc(n); }
static void dev_free(void *p) { free(p); }

static void *pin_host_alloc(size_t n) {
    void *p = malloc(n);
    if (p) __atomic_add_fetch(&host_blocks_live, 1, __ATOMIC_SEQ_CST);
    return p;
}
static void pin_host_free(void *p) {
    __atomic_sub_fetch(&host_blocks_live, 1, __ATOMIC_SEQ_CST);
    free(p);
}
static ig_status pin_event_new(void **e) {
    *e = calloc(1, sizeof(fake_event));
    if (!*e) return igi_error(IG_ERR_NOMEM, "fake: no event");
    __atomic_add_fetch(&events_live, 1, __ATOMIC_SEQ_CST);
    return IG_OK;
}
static void pin_event_free(void *e) {
    __atomic_sub_fetch(&events_live, 1, __ATOMIC_SEQ_CST);
    free(e);
}
static ig_status pin_h2d_async(void *d, const void *s, size_t n, void *e) {
    cr_assert_not_null(e);
    pthread_mutex_lock(&q_lock);
    cr_assert_lt(queued, QCAP);
    queue[queued++] = (pending_copy){d, s, n};
    async_copies++;
    pthread_mutex_unlock(&q_lock);
    return IG_OK;
}
static ig_status pin_host_wait(void *e) {
    if (__atomic_load_n(&wait_fails, __ATOMIC_SEQ_CST))
        return igi_error(IG_ERR_DEVICE, "cudaEventSynchronize failed (fake): an illegal memory access");
    ((fake_event *)e)->waits++;
    __atomic_add_fetch(&host_waits, 1, __ATOMIC_SEQ_CST);
    drain(); /* everything recorded before the event is done (and possibly more) */
    return IG_OK;
}

static const igi_backend lazy_backend = {
    .name = "cuda",
    .raw_alloc = dev_alloc,
    .raw_free = dev_free,
    .memcpy_h2d = lazy_h2d,
    .memcpy_d2h = lazy_d2h,
    .memcpy_d2d = lazy_d2d,
    .memset_zero = fake_memset,
    .synchronize = lazy_sync,
    .host_alloc = pin_host_alloc,
    .host_free = pin_host_free,
    .event_new = pin_event_new,
    .event_free = pin_event_free,
    .memcpy_h2d_async = pin_h2d_async,
    .host_wait = pin_host_wait,
};

/* The same device without pinned memory. */
static const igi_backend unpinned_backend = {
    .name = "cuda",
    .raw_alloc = dev_alloc,
    .raw_free = dev_free,
    .memcpy_h2d = fake_copy,
    .memcpy_d2h = fake_copy,
    .memcpy_d2d = fake_copy,
    .memset_zero = fake_memset,
    .synchronize = fake_sync,
};

static void lazy_setup(void) { igi_backend_register(IG_CUDA, &lazy_backend); }
static void unpinned_setup(void) { igi_backend_register(IG_CUDA, &unpinned_backend); }

static void check_deferred(int workers, int prefetch) {
    ig_dataset *d = formula_dataset(22);
    ig_loader *l = ig_loader_new(
        d, &(ig_loader_opts){.batch_size = 4, .num_workers = workers, .prefetch = prefetch, .pin_memory = true});
    cr_assert_not_null(l, "%s", ig_last_error());
    int before = async_copies;
    upload_epochs_and_check(l, 22);
    /* every upload went the asynchronous way: two per batch, 6 batches per epoch */
    cr_assert_eq(async_copies - before, 2 * 2 * 6);
    cr_assert_gt(host_waits, 0, "the loader never waited before refilling a buffer");
    ig_loader_free(l);
    ig_dataset_free(d);
}

Test(cuda_fake, pinned_uploads_wait_before_reuse_in_the_callers_thread, .init = lazy_setup) {
    check_deferred(0, 0);
}

Test(cuda_fake, pinned_uploads_wait_before_reuse_with_workers, .init = lazy_setup) {
    check_deferred(1, 1); /* one buffer: each refill follows an upload from it */
    check_deferred(3, 2);
}

/* Freeing the loader right after an upload: the release waits, so the block can go back to
 * the cache (and be written by its next user) while the copy is still queued. Counters:
 * every block and event is returned. */
Test(cuda_fake, pinned_release_waits_and_the_cache_returns_everything, .init = lazy_setup) {
    ig_mem_stats p0, p1;
    igi_pinned_mem_stats(&p0);
    ig_dataset *d = formula_dataset(8);
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 8, .pin_memory = true});
    cr_assert_not_null(l, "%s", ig_last_error());
    ig_tensor *x, *y;
    cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
    ig_tensor *dx = ig_to(x, IG_CUDA);
    cr_assert_not_null(dx, "%s", ig_last_error());
    cr_assert_eq(queued, 1, "the upload should still be queued");
    int waits = host_waits;
    ig_loader_free(l);
    cr_assert_gt(host_waits, waits, "freeing pinned storage did not wait");
    /* a new pinned buffer of the same size reuses the cached block: scribble over it */
    ig_tensor *t = igi_tensor_new_pinned("test", 1, (const int64_t[]){8 * ITEM_NUMEL}, IG_F32, IG_CUDA);
    cr_assert_not_null(t, "%s", ig_last_error());
    cr_assert_eq(t->storage->pinned_by, IG_CUDA);
    memset(ig_tensor_data(t), 0x7f, 8 * ITEM_NUMEL * sizeof(float));
    ig_tensor_free(t);
    float got[8 * ITEM_NUMEL];
    cr_assert_eq(ig_tensor_to_buffer(dx, IG_F32, got, 8 * ITEM_NUMEL), IG_OK, "%s", ig_last_error());
    for (int64_t i = 0; i < 8; i++)
        for (int64_t k = 0; k < ITEM_NUMEL; k++) cr_assert_eq(got[i * ITEM_NUMEL + k], item_value(i, k));
    ig_tensor_free(dx);
    ig_dataset_free(d);
    igi_pinned_mem_stats(&p1);
    cr_assert_eq(p1.live_bytes, p0.live_bytes);
    cr_assert_gt(p1.cached_bytes, 0);
    cr_assert_gt(host_blocks_live, 0);
    ig_mem_release_cached(IG_CPU);
    igi_pinned_mem_stats(&p1);
    cr_assert_eq(p1.cached_bytes, 0);
    cr_assert_eq(host_blocks_live, 0, "%d pinned blocks not freed", host_blocks_live);
    cr_assert_eq(events_live, 0, "%d events not destroyed", events_live);
}

/* A strided view of a pinned batch is gathered into ordinary memory first: that copy is
 * synchronous (nothing to wait for later). */
Test(cuda_fake, pinned_strided_view_uploads_synchronously, .init = lazy_setup) {
    ig_dataset *d = formula_dataset(4);
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 4, .pin_memory = true});
    ig_tensor *x, *y;
    cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
    ig_scope *s = ig_scope_begin();
    int before = async_copies;
    ig_tensor *v = ig_to(ig_slice(x, 0, 0, 4, 2), IG_CUDA);
    cr_assert_not_null(v, "%s", ig_last_error());
    cr_assert_eq(async_copies, before);
    cr_assert_eq(queued, 0);
    float got[2 * ITEM_NUMEL];
    cr_assert_eq(ig_tensor_to_buffer(v, IG_F32, got, 2 * ITEM_NUMEL), IG_OK);
    for (int64_t k = 0; k < ITEM_NUMEL; k++) cr_assert_eq(got[ITEM_NUMEL + k], item_value(2, k));
    ig_scope_end(s);
    ig_loader_free(l);
    ig_dataset_free(d);
}

/* A failed wait is the batch's error: ig_loader_next returns it with a message naming the
 * loader and the runtime's failure. */
Test(cuda_fake, pinned_wait_failure_is_reported, .init = lazy_setup) {
    ig_dataset *d = formula_dataset(8);
    for (int workers = 0; workers <= 1; workers++) {
        ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 4, .num_workers = workers,
                                                          .prefetch = 1, .pin_memory = true});
        cr_assert_not_null(l, "%s", ig_last_error());
        ig_tensor *x, *y;
        __atomic_store_n(&wait_fails, 0, __ATOMIC_SEQ_CST);
        cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
        ig_tensor *dx = ig_to(x, IG_CUDA);
        cr_assert_not_null(dx, "%s", ig_last_error());
        ig_tensor_free(dx);
        __atomic_store_n(&wait_fails, 1, __ATOMIC_SEQ_CST);
        int r = ig_loader_next(l, &x, &y);
        cr_assert_eq(r, IG_ERR_DEVICE, "%d workers: got %d (%s)", workers, r, ig_last_error());
        cr_assert(strstr(ig_last_error(), "ig_loader_next: waiting for an upload from a pinned batch: ") &&
                      strstr(ig_last_error(), "cudaEventSynchronize failed (fake)") &&
                      strstr(ig_last_error(), "(batch 1)"),
                  "message: %s", ig_last_error());
        __atomic_store_n(&wait_fails, 0, __ATOMIC_SEQ_CST);
        ig_loader_free(l);
    }
    drain();
    ig_dataset_free(d);
}

/* A device without pinned memory: pin_memory gives ordinary buffers and no error. */
Test(cuda_fake, pin_memory_without_pinned_memory_falls_back, .init = unpinned_setup) {
    ig_dataset *d = formula_dataset(8);
    ig_clear_error();
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 4, .pin_memory = true});
    cr_assert_not_null(l, "%s", ig_last_error());
    cr_assert_eq(ig_last_status(), IG_OK, "%s", ig_last_error());
    ig_tensor *x, *y;
    cr_assert_eq(ig_loader_next(l, &x, &y), 1);
    cr_assert_eq(x->storage->pinned_by, IG_CPU);
    ig_tensor *dx = ig_to(x, IG_CUDA);
    float got[4 * ITEM_NUMEL];
    cr_assert_eq(ig_tensor_to_buffer(dx, IG_F32, got, 4 * ITEM_NUMEL), IG_OK);
    cr_assert_eq(got[ITEM_NUMEL + 3], item_value(1, 3));
    ig_tensor_free(dx);
    ig_loader_free(l);
    ig_dataset_free(d);
    ig_mem_stats p;
    igi_pinned_mem_stats(&p);
    cr_assert_eq(p.os_allocs, 0);
}
