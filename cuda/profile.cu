/*
 * cuda/profile.cu — IGNIS_CUDA_PROFILE=1: where the device time goes, per backend entry and
 * op, printed to stderr when the process exits.
 *
 * With the variable set, igi_cuda_init registers a copy of the table whose every entry is
 * wrapped: a CUDA event before and after the real call, then a wait for the second one, and
 * the elapsed device time (and the host time of the call, launch overhead included) is added
 * to the row of (entry, op) — the op is the `const char *op` most entries take first
 * ("conv2d_backward ig_conv2d", "binary ig_add"). Waiting after every call removes the overlap
 * of host and device, so a profiled run is slower than a plain one; the split is what it is
 * for. Off (the default), nothing here runs and the plain table is registered.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tuple>
#include <type_traits>

#include "cuda_impl.h"

#define PROF_ROWS 256

typedef struct {
    const char *entry, *op;
    int64_t calls;
    double device_ms, host_ms;
} prof_row;

static prof_row rows[PROF_ROWS];
static int nrows;
static int64_t dropped;
static pthread_mutex_t prof_lock; /* recursive: an entry can reach another (scratch from the
                                     * caching allocator calls raw_alloc) */
static int depth;                  /* nested entries run untimed, inside their caller's time */
static cudaEvent_t ev_start, ev_end;

static double host_ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* Rows are keyed by the entry's name and the op string's contents. */
static void prof_add(const char *entry, const char *op, double dev_ms, double host_ms) {
    for (int i = 0; i < nrows; i++)
        if (rows[i].entry == entry && (rows[i].op == op || (rows[i].op && op && strcmp(rows[i].op, op) == 0))) {
            rows[i].calls++, rows[i].device_ms += dev_ms, rows[i].host_ms += host_ms;
            return;
        }
    if (nrows == PROF_ROWS) {
        dropped++;
        return;
    }
    rows[nrows++] = (prof_row){entry, op, 1, dev_ms, host_ms};
}

static int by_device_time(const void *a, const void *b) {
    double x = ((const prof_row *)a)->device_ms, y = ((const prof_row *)b)->device_ms;
    return x < y ? 1 : (x > y ? -1 : 0);
}

static void prof_print(void) {
    pthread_mutex_lock(&prof_lock);
    qsort(rows, (size_t)nrows, sizeof rows[0], by_device_time);
    double total = 0, host = 0;
    int64_t calls = 0;
    for (int i = 0; i < nrows; i++) total += rows[i].device_ms, host += rows[i].host_ms, calls += rows[i].calls;
    fprintf(stderr,
            "ignis cuda profile (IGNIS_CUDA_PROFILE=1: each backend call timed with events and waited for)\n"
            "%-40s %10s %12s %6s %12s %9s\n",
            "entry op", "calls", "device ms", "%", "host ms", "us/call");
    for (int i = 0; i < nrows; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s %s", rows[i].entry, rows[i].op ? rows[i].op : "");
        fprintf(stderr, "%-40s %10lld %12.3f %6.1f %12.3f %9.1f\n", name, (long long)rows[i].calls,
                rows[i].device_ms, total > 0 ? 100.0 * rows[i].device_ms / total : 0.0, rows[i].host_ms,
                1e3 * rows[i].device_ms / (double)rows[i].calls);
    }
    fprintf(stderr, "%-40s %10lld %12.3f %6.1f %12.3f\n", "total", (long long)calls, total, 100.0, host);
    if (dropped) fprintf(stderr, "(%lld calls beyond %d rows not counted)\n", (long long)dropped, PROF_ROWS);
    pthread_mutex_unlock(&prof_lock);
}

template <int ID, typename R, typename... A> struct prof_wrap {
    static const char *entry;
    static R (*real)(A...);
    static const char *op_of(A... a) {
        if constexpr (sizeof...(A) > 0) {
            using first = std::tuple_element_t<0, std::tuple<A...>>;
            if constexpr (std::is_same_v<first, const char *>) return std::get<0>(std::tuple<A...>(a...));
        }
        return NULL;
    }
    /* Ends a call: its times into the row (timed calls only) and the lock released. The
     * destructor runs after the real call's result is made, so void and value entries
     * share one path. */
    struct ending {
        const char *op;
        double h0;
        bool timed;
        ~ending() {
            if (timed) {
                depth--;
                cudaEventRecord(ev_end, igc_stream);
                cudaEventSynchronize(ev_end);
                float ms = 0;
                cudaEventElapsedTime(&ms, ev_start, ev_end);
                prof_add(entry, op, ms, host_ms_now() - h0);
                (void)cudaGetLastError(); /* a failed call reported its own error; keep the profiler's out */
            }
            pthread_mutex_unlock(&prof_lock);
        }
    };
    static R call(A... a) {
        pthread_mutex_lock(&prof_lock);
        ending e{op_of(a...), 0, depth == 0}; /* nested entries run untimed, inside their caller */
        if (e.timed) {
            depth++;
            e.h0 = host_ms_now();
            cudaEventRecord(ev_start, igc_stream);
        }
        return real(a...);
    }
};
template <int ID, typename R, typename... A> const char *prof_wrap<ID, R, A...>::entry;
template <int ID, typename R, typename... A> R (*prof_wrap<ID, R, A...>::real)(A...);

template <int ID, typename R, typename... A> static auto wrap(R (*f)(A...), const char *entry) -> R (*)(A...) {
    prof_wrap<ID, R, A...>::real = f;
    prof_wrap<ID, R, A...>::entry = entry;
    return &prof_wrap<ID, R, A...>::call;
}

extern "C" int64_t igi_cuda_profiled_calls(void) {
    pthread_mutex_t *l = nrows || dropped ? &prof_lock : NULL; /* never locked before the table exists */
    if (l) pthread_mutex_lock(l);
    int64_t n = dropped;
    for (int i = 0; i < nrows; i++) n += rows[i].calls;
    if (l) pthread_mutex_unlock(l);
    return n;
}

#define PROF(field) t.field = wrap<__COUNTER__>(t.field, #field)

/* The profiled copy of `real`, or NULL (then the caller registers `real`). */
const igi_backend *igc_profile_table(const igi_backend *real) {
    static igi_backend t;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&prof_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (cudaEventCreate(&ev_start) != cudaSuccess || cudaEventCreate(&ev_end) != cudaSuccess) {
        (void)cudaGetLastError();
        fprintf(stderr, "ignis: IGNIS_CUDA_PROFILE: cannot create CUDA events; profiling is off\n");
        return NULL;
    }
    t = *real;
    /* raw_alloc / raw_free / synchronize time what they wait for, not device work; they are
     * wrapped all the same so cudaMalloc's cost shows when the cache misses. */
    PROF(raw_alloc);
    PROF(raw_free);
    PROF(memcpy_h2d);
    PROF(memcpy_d2h);
    PROF(memcpy_d2d);
    PROF(memset_zero);
    PROF(synchronize);
    PROF(copy);
    PROF(fill);
    PROF(binary);
    PROF(scalar);
    PROF(where);
    PROF(unary);
    PROF(unary_backward);
    PROF(reduce);
    PROF(reduce_scatter);
    PROF(softmax);
    PROF(softmax_backward);
    PROF(gemm);
    PROF(conv2d);
    PROF(conv2d_backward);
    PROF(pool2d);
    PROF(pool2d_backward);
    PROF(batch_norm);
    PROF(batch_norm_backward);
    PROF(class_loss);
    PROF(class_loss_backward);
    PROF(optim_step);
    PROF(pointwise_loss);
    PROF(pointwise_loss_backward);
    PROF(layer_norm);
    PROF(layer_norm_backward);
    PROF(dropout_mask);
    PROF(mask_apply);
    PROF(gemm_amp);
    PROF(amp_unscale);
    PROF(batch_norm_sums);
    PROF(batch_norm_apply);
    PROF(batch_norm_backward_apply);
    PROF(gather);
    PROF(gather_backward);
    /* the pinned-batch path: the asynchronous upload, and the loader's wait before reuse */
    PROF(memcpy_h2d_async);
    PROF(host_wait);
    atexit(prof_print);
    return &t;
}
