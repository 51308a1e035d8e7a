/*
 * core/alloc.c — the size-class caching allocator behind every storage.
 *
 * Sizes are rounded up to a class: multiples of 64 bytes up to 512, then four classes per
 * power of two (x1, x1.25, x1.5, x1.75), so rounding wastes at most a quarter. A freed block
 * goes onto its class's free list instead of back to the OS, and the next request of that
 * class takes it: after the first training step a step asks the OS for nothing. The free
 * list links live inside the freed blocks themselves. One mutex guards the lists (loader
 * threads allocate too); live and cached byte counters are kept per device.
 *
 * Device memory (IG_CUDA) uses the same size classes and counters, but its blocks come from
 * the backend's raw_alloc (cudaMalloc) and the free lists are host-side records, since a
 * device block cannot hold a link the host can read. A device request that fails releases
 * that device's cache and tries once more before reporting out of memory. Device storage
 * keeps its record (igi_storage) in host memory; its data points at the device block.
 *
 * Pinned (page-locked) host memory for the loader's pin_memory comes from the backend's
 * host_alloc, cached the same way (host-side records per size class, with counters of its
 * own, igi_pinned_mem_stats). Each cached block keeps the event the backend made for it,
 * so neither cudaHostAlloc nor an event is created in the steady state. A pinned storage's
 * record is malloc'ed apart from its bytes, as for device storage. ig_mem_release_cached
 * (IG_CPU) also returns cached pinned blocks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_impl.h"
#include "tensor_impl.h"

#define IGI_ALIGN 64
#define IGI_NUM_CLASSES 256

typedef struct free_block {
    struct free_block *next;
} free_block;

static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static free_block *free_lists[IGI_NUM_CLASSES];
static ig_mem_stats cpu_stats;

/* Device caches: per device and class, a list of host records of free device blocks.
 * Records are recycled through spare_records, so the steady state allocates nothing. */
typedef struct dev_block {
    void *p;
    struct dev_block *next;
} dev_block;
static dev_block *dev_lists[IG_DEVICE_COUNT][IGI_NUM_CLASSES];
static dev_block *spare_records;
static ig_mem_stats dev_stats[IG_DEVICE_COUNT];

/* Pinned host memory: one cache (only one accelerator kind exists); records as above. */
typedef struct pin_block {
    void *p, *event;
    ig_device dev;
    struct pin_block *next;
} pin_block;
static pin_block *pin_lists[IGI_NUM_CLASSES];
static pin_block *pin_spares;
static ig_mem_stats pin_stats;

/* Class index and rounded size for n bytes (n >= 1). */
static int size_class(size_t n, size_t *rounded) {
    if (n <= 512) {
        size_t r = (n + 63) / 64;
        if (r == 0) r = 1;
        *rounded = r * 64;
        return (int)(r - 1); /* classes 0..7 */
    }
    /* n in (2^k, 2^(k+1)]: four steps of 2^(k-2). */
    int k = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^k < n <= 2^(k+1) */
    size_t quarter = (size_t)1 << (k - 2);                      /* (2^(k+1) - 2^k) / 4 */
    size_t base = (size_t)1 << k;
    size_t steps = (n - base + quarter - 1) / quarter; /* 1..4 */
    *rounded = base + steps * quarter;
    int cls = 8 + (k - 9) * 4 + (int)(steps - 1);
    return cls < IGI_NUM_CLASSES ? cls : -1;
}

/* Physical memory in bytes (0 if unknown). A request for more than the machine has cannot
 * succeed usefully, so it fails here at once instead of reaching the OS or a sanitizer. */
static size_t physical_memory(void) {
    static _Atomic size_t cached;
    size_t v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!v) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        v = (pages > 0 && page > 0) ? (size_t)pages * (size_t)page : (size_t)-1;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

/* Frees dev's cached blocks back to the backend (lock held). */
static void dev_release_cached_locked(ig_device dev, const igi_backend *be) {
    for (int c = 0; c < IGI_NUM_CLASSES; c++) {
        while (dev_lists[dev][c]) {
            dev_block *b = dev_lists[dev][c];
            dev_lists[dev][c] = b->next;
            be->raw_free(b->p);
            dev_stats[dev].os_frees++;
            b->next = spare_records;
            spare_records = b;
        }
    }
    dev_stats[dev].cached_bytes = 0;
}

static void *dev_alloc(ig_device dev, size_t nbytes) {
    const igi_backend *be = igi_backend_peek(dev);
    if (!be || nbytes > ((size_t)1 << 60)) return NULL;
    if (nbytes == 0) nbytes = 1;
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    pthread_mutex_lock(&alloc_lock);
    void *p = NULL;
    if (cls >= 0 && dev_lists[dev][cls]) {
        dev_block *b = dev_lists[dev][cls];
        dev_lists[dev][cls] = b->next;
        p = b->p;
        b->next = spare_records;
        spare_records = b;
        dev_stats[dev].cached_bytes -= (int64_t)rounded;
    }
    if (!p) {
        p = be->raw_alloc(rounded);
        if (!p) {
            /* Blocks of other classes may be what the device lacks: give them back, retry. */
            dev_release_cached_locked(dev, be);
            p = be->raw_alloc(rounded);
        }
        if (!p) {
            pthread_mutex_unlock(&alloc_lock);
            return NULL;
        }
        dev_stats[dev].os_allocs++;
    }
    dev_stats[dev].live_bytes += (int64_t)rounded;
    pthread_mutex_unlock(&alloc_lock);
    return p;
}

static void dev_free(ig_device dev, void *p, size_t nbytes) {
    const igi_backend *be = igi_backend_peek(dev);
    IG_ASSERT(be); /* a block exists, so its backend was registered */
    if (nbytes == 0) nbytes = 1;
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    pthread_mutex_lock(&alloc_lock);
    dev_stats[dev].live_bytes -= (int64_t)rounded;
    dev_block *b = NULL;
    if (cls >= 0) {
        b = spare_records;
        if (b) spare_records = b->next;
        else b = malloc(sizeof *b);
    }
    if (b) {
        b->p = p;
        b->next = dev_lists[dev][cls];
        dev_lists[dev][cls] = b;
        dev_stats[dev].cached_bytes += (int64_t)rounded;
    } else {
        be->raw_free(p);
        dev_stats[dev].os_frees++;
    }
    pthread_mutex_unlock(&alloc_lock);
}

void *igi_alloc(ig_device dev, size_t nbytes) {
    if (dev != IG_CPU) return dev > IG_CPU && dev < IG_DEVICE_COUNT ? dev_alloc(dev, nbytes) : NULL;
    if (nbytes == 0) nbytes = 1;
    if (nbytes > ((size_t)1 << 60) || nbytes > physical_memory()) return NULL;
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    pthread_mutex_lock(&alloc_lock);
    void *p = NULL;
    if (cls >= 0 && free_lists[cls]) {
        free_block *b = free_lists[cls];
        free_lists[cls] = b->next;
        cpu_stats.cached_bytes -= (int64_t)rounded;
        p = b;
    }
    if (!p) {
        pthread_mutex_unlock(&alloc_lock);
        if (posix_memalign(&p, IGI_ALIGN, rounded) != 0) return NULL;
        pthread_mutex_lock(&alloc_lock);
        cpu_stats.os_allocs++;
    }
    cpu_stats.live_bytes += (int64_t)rounded;
    pthread_mutex_unlock(&alloc_lock);
    return p;
}

void igi_free(ig_device dev, void *p, size_t nbytes) {
    if (!p) return;
    if (dev != IG_CPU) {
        if (dev > IG_CPU && dev < IG_DEVICE_COUNT) dev_free(dev, p, nbytes);
        return;
    }
    if (nbytes == 0) nbytes = 1;
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    pthread_mutex_lock(&alloc_lock);
    cpu_stats.live_bytes -= (int64_t)rounded;
    if (cls >= 0) {
        free_block *b = p;
        b->next = free_lists[cls];
        free_lists[cls] = b;
        cpu_stats.cached_bytes += (int64_t)rounded;
        pthread_mutex_unlock(&alloc_lock);
        return;
    }
    cpu_stats.os_frees++;
    pthread_mutex_unlock(&alloc_lock);
    free(p);
}

/* Frees every cached pinned block and its event (lock held). */
static void pin_release_cached_locked(void) {
    for (int c = 0; c < IGI_NUM_CLASSES; c++) {
        while (pin_lists[c]) {
            pin_block *b = pin_lists[c];
            pin_lists[c] = b->next;
            const igi_backend *be = igi_backend_peek(b->dev);
            IG_ASSERT(be); /* the block came from it */
            be->event_free(b->event);
            be->host_free(b->p);
            pin_stats.os_frees++;
            b->next = pin_spares;
            pin_spares = b;
        }
    }
    pin_stats.cached_bytes = 0;
}

/* A pinned block of at least nbytes from dev's backend (cached), with its event; false
 * (nothing set) when the cache and the backend have none. */
static bool pin_alloc(const igi_backend *be, size_t nbytes, void **p, void **event) {
    if (nbytes == 0) nbytes = 1;
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    if (cls < 0) return false;
    pthread_mutex_lock(&alloc_lock);
    pin_block *b = pin_lists[cls];
    if (b) {
        pin_lists[cls] = b->next;
        *p = b->p;
        *event = b->event;
        b->next = pin_spares;
        pin_spares = b;
        pin_stats.cached_bytes -= (int64_t)rounded;
        pin_stats.live_bytes += (int64_t)rounded;
        pthread_mutex_unlock(&alloc_lock);
        return true;
    }
    pthread_mutex_unlock(&alloc_lock);
    /* Outside the lock: cudaHostAlloc is slow (it maps pages), and nothing shared is touched. */
    *p = be->host_alloc(rounded);
    if (!*p) return false;
    if (be->event_new(event) != IG_OK) {
        be->host_free(*p);
        ig_clear_error(); /* the caller falls back to ordinary memory */
        return false;
    }
    pthread_mutex_lock(&alloc_lock);
    pin_stats.os_allocs++;
    pin_stats.live_bytes += (int64_t)rounded;
    pthread_mutex_unlock(&alloc_lock);
    return true;
}

/* Returns a pinned block (its copies are complete: the caller waited) to the cache. */
static void pin_free(ig_device dev, void *p, void *event, size_t nbytes) {
    if (nbytes == 0) nbytes = 1;
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    IG_ASSERT(cls >= 0); /* pin_alloc refused the rest */
    pthread_mutex_lock(&alloc_lock);
    pin_stats.live_bytes -= (int64_t)rounded;
    pin_block *b = pin_spares;
    if (b) pin_spares = b->next;
    else b = malloc(sizeof *b);
    if (b) {
        b->p = p;
        b->event = event;
        b->dev = dev;
        b->next = pin_lists[cls];
        pin_lists[cls] = b;
        pin_stats.cached_bytes += (int64_t)rounded;
        pthread_mutex_unlock(&alloc_lock);
        return;
    }
    pin_stats.os_frees++;
    pthread_mutex_unlock(&alloc_lock);
    const igi_backend *be = igi_backend_peek(dev);
    IG_ASSERT(be);
    be->event_free(event);
    be->host_free(p);
}

void igi_pinned_mem_stats(ig_mem_stats *out) {
    pthread_mutex_lock(&alloc_lock);
    *out = pin_stats;
    pthread_mutex_unlock(&alloc_lock);
}

void ig_mem_get_stats(ig_device dev, ig_mem_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if ((unsigned)dev >= IG_DEVICE_COUNT) return;
    pthread_mutex_lock(&alloc_lock);
    *out = dev == IG_CPU ? cpu_stats : dev_stats[dev];
    pthread_mutex_unlock(&alloc_lock);
}

void ig_mem_release_cached(ig_device dev) {
    if (dev != IG_CPU) {
        const igi_backend *be = igi_backend_peek(dev);
        if (!be) return;
        pthread_mutex_lock(&alloc_lock);
        dev_release_cached_locked(dev, be);
        pthread_mutex_unlock(&alloc_lock);
        return;
    }
    pthread_mutex_lock(&alloc_lock);
    for (int c = 0; c < IGI_NUM_CLASSES; c++) {
        while (free_lists[c]) {
            free_block *b = free_lists[c];
            free_lists[c] = b->next;
            free(b);
            cpu_stats.os_frees++;
        }
    }
    cpu_stats.cached_bytes = 0;
    pin_release_cached_locked();
    pthread_mutex_unlock(&alloc_lock);
}

/* The record's fields for bytes at data (refcount 1, no known value range). */
static void storage_init(igi_storage *s, ig_device dev, size_t nbytes, void *data, ig_device pinned_by, void *event) {
    atomic_init(&s->refcount, 1);
    s->device = dev;
    s->nbytes = nbytes;
    s->data = data;
    s->pinned_by = pinned_by;
    s->event = event;
    s->vrange = false;
    s->vmin = s->vmax = 0;
}

igi_storage *igi_storage_new(const char *op, ig_device dev, size_t nbytes) {
    /* The storage record and its bytes share one block: header padded to the alignment. */
    size_t head = (sizeof(igi_storage) + IGI_ALIGN - 1) / IGI_ALIGN * IGI_ALIGN;
    if (nbytes > ((size_t)1 << 60) - head) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory (%zu bytes requested)", op, nbytes);
        return NULL;
    }
    igi_storage *s = NULL;
    if (dev == IG_CPU) {
        s = igi_alloc(dev, head + nbytes);
        if (!s) {
            igi_error(IG_ERR_NOMEM, "%s: out of memory (%zu bytes requested)", op, nbytes);
            return NULL;
        }
        storage_init(s, dev, nbytes, (char *)s + head, IG_CPU, NULL);
    } else {
        if (!igi_backend_get(op, dev)) return NULL;
        s = malloc(sizeof *s);
        if (!s) {
            igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
            return NULL;
        }
        void *p = igi_alloc(dev, nbytes);
        if (!p) {
            free(s);
            igi_error(IG_ERR_NOMEM, "%s: out of device memory (%zu bytes requested on %s)", op, nbytes,
                      igi_device_name(dev));
            return NULL;
        }
        storage_init(s, dev, nbytes, p, IG_CPU, NULL);
    }
    return s;
}

igi_storage *igi_storage_new_pinned(const char *op, ig_device dev, size_t nbytes) {
    const igi_backend *be = NULL;
    if (dev > IG_CPU && dev < IG_DEVICE_COUNT && nbytes <= ((size_t)1 << 60)) {
        /* No such device (a CPU-only build, no GPU): ordinary memory, and the failed
         * lookup's message is not this call's error: the earlier state comes back. */
        ig_status before = ig_last_status();
        char saved[1024] = "";
        if (before != IG_OK) snprintf(saved, sizeof saved, "%s", ig_last_error());
        be = igi_backend_get(op, dev);
        if (!be) {
            if (before == IG_OK) ig_clear_error();
            else igi_error(before, "%s", saved);
        }
        if (be && (!be->host_alloc || !be->host_free || !be->event_new || !be->event_free ||
                   !be->memcpy_h2d_async || !be->host_wait))
            be = NULL;
    }
    void *p = NULL, *event = NULL;
    if (!be || !pin_alloc(be, nbytes, &p, &event)) return igi_storage_new(op, IG_CPU, nbytes);
    igi_storage *s = malloc(sizeof *s);
    if (!s) {
        pin_free(dev, p, event, nbytes);
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    storage_init(s, IG_CPU, nbytes, p, dev, event);
    return s;
}

ig_status igi_storage_host_wait(const char *op, const igi_storage *s) {
    if (!s || s->pinned_by == IG_CPU) return IG_OK;
    const igi_backend *be = igi_backend_peek(s->pinned_by);
    IG_ASSERT(be && be->host_wait); /* the storage came from it */
    ig_status st = be->host_wait(s->event);
    if (st != IG_OK && op) {
        /* The backend names its own entry; say who was waiting. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ig_last_error());
        return igi_error(st, "%s: waiting for an upload from a pinned batch: %s", op, msg);
    }
    return st;
}

void igi_storage_retain(igi_storage *s) {
    if (s) atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
}

void igi_storage_release(igi_storage *s) {
    if (!s) return;
    if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
    if (s->pinned_by != IG_CPU) {
        /* A copy still reading the block would read whatever the cache's next user writes.
         * A failed wait (the device is gone) leaves nothing to wait for. */
        if (igi_storage_host_wait(NULL, s) != IG_OK) ig_clear_error();
        pin_free(s->pinned_by, s->data, s->event, s->nbytes);
        free(s);
        return;
    }
    if (s->device != IG_CPU) {
        igi_free(s->device, s->data, s->nbytes);
        free(s);
        return;
    }
    size_t head = (sizeof(igi_storage) + IGI_ALIGN - 1) / IGI_ALIGN * IGI_ALIGN;
    igi_free(s->device, s, head + s->nbytes);
}
