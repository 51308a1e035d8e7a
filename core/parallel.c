/*
 * core/parallel.c — the thread pool behind igi_parallel_for (and igi_gemm's split GEMMs),
 * and ig_set_num_threads / ig_get_num_threads.
 *
 * Workers are created lazily, on the first parallel loop, and then persist; there are
 * nthreads - 1 of them, since the calling thread takes a share too. A loop over [0, n) is
 * cut into at most nthreads contiguous ranges of at least `grain` items; range k is
 * [k*n/parts, (k+1)*n/parts). The caller runs range 0 and the workers the others, and the
 * call returns once every range is done. Kernels split work by output elements only (never
 * a floating-point accumulation), so results do not depend on the thread count.
 *
 * One loop runs at a time. A call made while the pool is busy — from inside a loop's body
 * (a nested call) or from another thread — runs serially in its own thread instead of
 * waiting, so it can never deadlock. OpenBLAS runs single-threaded inside pool ranges
 * (core/gemm.c), so no second set of threads competes for the cores.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "tensor_impl.h"

#define MAX_THREADS 256

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;      /* a new job (gen changed) */
    pthread_cond_t done;      /* a worker finished its range */
    pthread_t threads[MAX_THREADS];
    int nworkers;             /* started so far */
    _Atomic uint64_t gen;     /* job generation, bumped per job (under mu) */
    int parts;                /* ranges of the current job; worker w runs range w + 1 */
    atomic_int remaining;     /* ranges not yet finished by workers (changed under mu) */
    int64_t n;
    void (*fn)(int64_t, int64_t, void *);
    void *ctx;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static atomic_flag busy = ATOMIC_FLAG_INIT; /* held by the thread running a pooled loop */
static atomic_int nthreads;                 /* 0 until set or first asked: then the default */

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int ig_get_num_threads(void) {
    int n = atomic_load(&nthreads);
    if (n == 0) {
        n = default_threads();
        atomic_store(&nthreads, n);
    }
    return n;
}

int igi_num_threads(void) { return ig_get_num_threads(); }

void ig_set_num_threads(int n) {
    if (n <= 0) n = default_threads();
    if (n > MAX_THREADS) n = MAX_THREADS;
    atomic_store(&nthreads, n);
    /* The pool splits GEMMs itself (core/gemm.c); OpenBLAS's own threads stay idle. */
    igi_blas_single_thread();
}

/* How long a worker, or the caller waiting for workers, polls before sleeping on its
 * condition variable. A training step issues pool loops and split GEMMs back to back with
 * short serial gaps; waking a sleeping thread costs tens of microseconds each time, more
 * than many of those loops take. The poll is bounded (unlike OpenBLAS's sched_yield
 * loop), so an idle pool stops using CPU within SPIN_NS. */
#define SPIN_NS 100000

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Polls until *gen != seen (want_change) or *count == 0, for at most SPIN_NS; returns
 * whether the condition was met. Called without the mutex. */
static bool spin_until(const _Atomic uint64_t *gen, uint64_t seen, const atomic_int *count) {
    int64_t deadline = 0;
    for (unsigned i = 0;; i++) {
        if (gen ? atomic_load_explicit(gen, memory_order_acquire) != seen
                : atomic_load_explicit(count, memory_order_acquire) == 0)
            return true;
        cpu_relax();
        if ((i & 255) == 0) {
            int64_t t = now_ns();
            if (deadline == 0) deadline = t + SPIN_NS;
            else if (t > deadline) return false;
        }
    }
}

static void range_of(int64_t n, int parts, int k, int64_t *begin, int64_t *end) {
    /* floor(k*n/parts) without overflow: n = q*parts + r. */
    int64_t q = n / parts, r = n % parts;
    *begin = q * k + r * k / parts;
    *end = q * (k + 1) + r * (k + 1) / parts;
}

static void *worker_main(void *arg) {
    int w = (int)(intptr_t)arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        if (pool.gen == seen) {
            pthread_mutex_unlock(&pool.mu);
            spin_until(&pool.gen, seen, NULL);
            pthread_mutex_lock(&pool.mu);
        }
        while (pool.gen == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.gen;
        if (w + 1 >= pool.parts) continue; /* this job has fewer ranges than workers */
        int64_t begin, end;
        range_of(pool.n, pool.parts, w + 1, &begin, &end);
        void (*fn)(int64_t, int64_t, void *) = pool.fn;
        void *ctx = pool.ctx;
        pthread_mutex_unlock(&pool.mu);
        fn(begin, end, ctx);
        pthread_mutex_lock(&pool.mu);
        if (atomic_fetch_sub(&pool.remaining, 1) == 1) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* Starts workers up to want (under pool.mu); returns how many exist (fewer if the system
 * refuses threads: the loop then simply uses fewer ranges). */
static int ensure_workers(int want) {
    while (pool.nworkers < want) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&pool.threads[pool.nworkers], &attr, worker_main,
                                (void *)(intptr_t)pool.nworkers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.nworkers++;
    }
    return pool.nworkers;
}

void igi_parallel_for(int64_t n, int64_t grain, void (*fn)(int64_t begin, int64_t end, void *ctx),
                      void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t parts = ig_get_num_threads();
    if (parts > (n + grain - 1) / grain) parts = (n + grain - 1) / grain;
    if (parts <= 1 || atomic_flag_test_and_set(&busy)) {
        fn(0, n, ctx);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    int workers = ensure_workers((int)parts - 1);
    if (parts > workers + 1) parts = workers + 1;
    pool.parts = (int)parts;
    atomic_store(&pool.remaining, (int)parts - 1);
    pool.n = n;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.gen++;
    if (parts > 1) pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);

    int64_t begin, end;
    range_of(n, (int)parts, 0, &begin, &end);
    fn(begin, end, ctx);

    /* remaining only falls; the check under the mutex cannot miss the last signal. */
    if (!spin_until(NULL, 0, &pool.remaining)) {
        pthread_mutex_lock(&pool.mu);
        while (atomic_load(&pool.remaining) > 0) pthread_cond_wait(&pool.done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
    atomic_flag_clear(&busy);
}
