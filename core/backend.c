/*
 * core/backend.c — the backend table registry, the geometry builders ops hand to device
 * kernels, device-aware error helpers, and the public device queries (ig_cuda_*).
 *
 * A build with CUDA compiles this file with -DIGNIS_CUDA, which makes igi_backend_get call
 * cuda/'s igi_cuda_init on the first request for IG_CUDA. Referencing that symbol from
 * here (rather than relying on a constructor in cuda/) is what keeps the CUDA objects in a
 * program linked against the static libignis.a: the linker pulls an archive member only
 * when something it already has refers to it. The outcome of the one initialisation
 * (table registered, or the reason there is none) is kept, so every later request gets the
 * same answer without touching the driver again.
 */
#include <pthread.h>
#include <string.h>

#include "backend_impl.h"
#include "tensor_impl.h"

static const igi_backend *registry[IG_DEVICE_COUNT];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;
static char cuda_failure[256] = "ignis was built without CUDA";

void igi_backend_register(ig_device dev, const igi_backend *table) {
    IG_ASSERT(dev > IG_CPU && dev < IG_DEVICE_COUNT);
    pthread_mutex_lock(&registry_lock);
    registry[dev] = table;
    pthread_mutex_unlock(&registry_lock);
}

const igi_backend *igi_backend_peek(ig_device dev) {
    if (dev <= IG_CPU || dev >= IG_DEVICE_COUNT) return NULL;
    pthread_mutex_lock(&registry_lock);
    const igi_backend *b = registry[dev];
    pthread_mutex_unlock(&registry_lock);
    return b;
}

static void cuda_init_once(void) {
#ifdef IGNIS_CUDA
    char msg[200] = "";
    if (igi_cuda_init(msg, sizeof msg) != IG_OK) snprintf(cuda_failure, sizeof cuda_failure, "no CUDA device (%s)", msg);
#endif
}

const igi_backend *igi_backend_get(const char *op, ig_device dev) {
    if (dev <= IG_CPU || dev >= IG_DEVICE_COUNT) {
        igi_error(IG_ERR_DEVICE, "%s: invalid device %d", op, (int)dev);
        return NULL;
    }
    const igi_backend *b = igi_backend_peek(dev);
    if (b) return b;
    if (dev == IG_CUDA) {
        pthread_once(&cuda_once, cuda_init_once);
        if ((b = igi_backend_peek(dev))) return b;
        igi_error(IG_ERR_DEVICE, "%s: %s", op, cuda_failure);
        return NULL;
    }
    igi_error(IG_ERR_DEVICE, "%s: device %d is not available in this build", op, (int)dev);
    return NULL;
}

const igi_backend *igi_backend_with(const char *op, ig_device dev, size_t entry_offset) {
    const igi_backend *b = igi_backend_get(op, dev);
    if (!b) return NULL;
    /* Every entry is a function pointer; a NULL one (all-zero on every target we build
     * for) means the kernel is missing. */
    unsigned char entry[sizeof(void (*)(void))], zero[sizeof entry];
    memset(zero, 0, sizeof zero);
    memcpy(entry, (const unsigned char *)b + entry_offset, sizeof entry);
    if (memcmp(entry, zero, sizeof entry) == 0) {
        igi_error_not_implemented(op, dev);
        return NULL;
    }
    return b;
}

const char *igi_device_name(ig_device dev) {
    switch (dev) {
    case IG_CPU: return "cpu";
    case IG_CUDA: return "cuda";
    default: return "invalid device";
    }
}

ig_status igi_error_not_implemented(const char *op, ig_device dev) {
    return igi_error(IG_ERR_DEVICE, "%s: not implemented on %s", op, igi_device_name(dev));
}

bool igi_check_same_device_any(const char *op, const ig_tensor *a, const ig_tensor *b) {
    if (a->device != b->device) {
        igi_error(IG_ERR_DEVICE, "%s: tensors are on different devices (%s and %s)", op,
                  igi_device_name(a->device), igi_device_name(b->device));
        return false;
    }
    return true;
}

/* ---- elementwise geometry ------------------------------------------------------------ */

bool igi_ew_make(ig_tensor *const *ops, int nops, igi_ew *e) {
    IG_ASSERT(nops >= 1 && nops <= IGI_EW_MAX);
    const ig_tensor *out = ops[0];
    memset(e, 0, sizeof *e);
    e->nops = nops;
    e->numel = igi_numel(out->ndim, out->shape);
    if (e->numel <= 0) return false;
    int64_t st[IGI_EW_MAX][IG_MAX_DIMS];
    for (int k = 0; k < nops; k++) {
        igi_broadcast_strides(ops[k], out->ndim, out->shape, st[k]);
        e->data[k] = igi_data(ops[k]);
        e->dtype[k] = ops[k]->dtype;
    }
    /* Drop size-1 dims; merge a dim into the one before it (outer) when every operand's
     * outer stride is its inner stride times the inner size. */
    int m = 0;
    for (int d = 0; d < out->ndim; d++) {
        int64_t size = out->shape[d];
        if (size == 1) continue;
        bool merge = m > 0;
        for (int k = 0; k < nops && merge; k++) merge = e->strides[k][m - 1] == st[k][d] * size;
        if (merge) {
            e->shape[m - 1] *= size;
            for (int k = 0; k < nops; k++) e->strides[k][m - 1] = st[k][d];
            continue;
        }
        e->shape[m] = size;
        for (int k = 0; k < nops; k++) e->strides[k][m] = st[k][d];
        m++;
    }
    e->ndim = m;
    return true;
}

/* ---- public device queries ------------------------------------------------------------ */

bool ig_cuda_is_available(void) { return igi_backend_get("ig_cuda_is_available", IG_CUDA) != NULL; }

ig_status ig_cuda_set_tf32(bool on) {
    if (!igi_backend_get("ig_cuda_set_tf32", IG_CUDA)) return ig_last_status();
#ifdef IGNIS_CUDA
    igi_cuda_set_tf32(on);
#else
    (void)on; /* unreachable: without CUDA there is no table to get */
#endif
    return IG_OK;
}
