/*
 * tests/core/test_parallel.c — the thread pool (igi_parallel_for) and ig_set_num_threads:
 * every index is visited exactly once for any n, grain and thread count; tiny loops and a
 * single thread run serially in the caller; a nested call and a call from another thread
 * while the pool is busy run serially instead of deadlocking; elementwise ops and conv give
 * bitwise the same results with 1 and 3 threads.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "core/tensor_impl.h"
#include "ignis.h"

/* OpenBLAS's own setter (cblas.h declares it; the tests are built without BLAS's flags). */
void openblas_set_num_threads(int num_threads);

/* Counts visits per index and records which threads ran ranges. */
typedef struct visit_ctx {
    atomic_int *count;
    pthread_t caller;
    atomic_int foreign_ranges; /* ranges run by a thread other than the caller */
    atomic_int ranges;
} visit_ctx;

static void visit(int64_t begin, int64_t end, void *arg) {
    visit_ctx *c = arg;
    cr_assert(begin < end, "empty range [%lld, %lld)", (long long)begin, (long long)end);
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->count[i], 1);
    if (!pthread_equal(pthread_self(), c->caller)) atomic_fetch_add(&c->foreign_ranges, 1);
    atomic_fetch_add(&c->ranges, 1);
}

static void check_cover(int64_t n, int64_t grain) {
    atomic_int *count = calloc((size_t)n + 1, sizeof(atomic_int));
    visit_ctx c = {.count = count, .caller = pthread_self()};
    igi_parallel_for(n, grain, visit, &c);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&count[i]), 1, "n %lld grain %lld: index %lld visited %d times",
                     (long long)n, (long long)grain, (long long)i, atomic_load(&count[i]));
    free(count);
}

Test(core, parallel_for_covers_every_index_once) {
    int saved = ig_get_num_threads();
    int threads[] = {1, 2, 3, 8};
    int64_t ns[] = {1, 2, 3, 7, 100, 1001, 65537};
    int64_t grains[] = {0, 1, 3, 64, 100000};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        ig_set_num_threads(threads[t]);
        cr_assert_eq(ig_get_num_threads(), threads[t]);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) check_cover(ns[i], grains[g]);
    }
    /* n = 0 calls nothing. */
    visit_ctx c = {.count = NULL, .caller = pthread_self()};
    igi_parallel_for(0, 1, visit, &c);
    cr_assert_eq(atomic_load(&c.ranges), 0);
    ig_set_num_threads(saved);
}

Test(core, parallel_for_serial_fallback) {
    int saved = ig_get_num_threads();
    atomic_int count[100] = {0};
    /* One thread: a single range [0, n) in the caller. */
    ig_set_num_threads(1);
    visit_ctx c = {.count = count, .caller = pthread_self()};
    igi_parallel_for(100, 1, visit, &c);
    cr_assert_eq(atomic_load(&c.ranges), 1);
    cr_assert_eq(atomic_load(&c.foreign_ranges), 0);
    /* Several threads but n <= grain: serial too. */
    ig_set_num_threads(4);
    visit_ctx c2 = {.count = count, .caller = pthread_self()};
    igi_parallel_for(100, 100, visit, &c2);
    cr_assert_eq(atomic_load(&c2.ranges), 1);
    cr_assert_eq(atomic_load(&c2.foreign_ranges), 0);
    /* Enough work: 4 ranges, 3 of them on workers. */
    visit_ctx c3 = {.count = count, .caller = pthread_self()};
    igi_parallel_for(100, 1, visit, &c3);
    cr_assert_eq(atomic_load(&c3.ranges), 4);
    cr_assert_eq(atomic_load(&c3.foreign_ranges), 3);
    for (int i = 0; i < 100; i++) cr_assert_eq(atomic_load(&count[i]), 3);
    /* n <= 0 restores the default (online CPUs, at least 1). */
    ig_set_num_threads(0);
    cr_assert_geq(ig_get_num_threads(), 1);
    ig_set_num_threads(saved);
}

/* Each outer index runs an inner loop over its own row of a matrix. */
typedef struct nested_ctx {
    atomic_int *count; /* [outer][inner] */
    int64_t inner;
} nested_ctx;

typedef struct row_ctx {
    atomic_int *row;
} row_ctx;

static void inner_visit(int64_t begin, int64_t end, void *arg) {
    row_ctx *r = arg;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&r->row[i], 1);
}

static void outer_visit(int64_t begin, int64_t end, void *arg) {
    nested_ctx *c = arg;
    for (int64_t o = begin; o < end; o++) {
        row_ctx r = {c->count + o * c->inner};
        igi_parallel_for(c->inner, 1, inner_visit, &r); /* pool busy: runs serially */
    }
}

Test(core, parallel_for_nested_call_runs_serially) {
    int saved = ig_get_num_threads();
    ig_set_num_threads(3);
    enum { OUTER = 9, INNER = 50 };
    atomic_int *count = calloc(OUTER * INNER, sizeof(atomic_int));
    nested_ctx c = {count, INNER};
    igi_parallel_for(OUTER, 1, outer_visit, &c);
    for (int i = 0; i < OUTER * INNER; i++) cr_assert_eq(atomic_load(&count[i]), 1, "index %d", i);
    free(count);
    ig_set_num_threads(saved);
}

/* A loop that, while the pool is busy, lets another thread run its own parallel loop. */
typedef struct busy_ctx {
    atomic_int started, other_done;
    atomic_int other_count[64];
    int other_ranges;
} busy_ctx;

static void other_visit(int64_t begin, int64_t end, void *arg) {
    busy_ctx *c = arg;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->other_count[i], 1);
    c->other_ranges++; /* serial, so no race */
}

static void *other_thread(void *arg) {
    busy_ctx *c = arg;
    while (!atomic_load(&c->started)) sched_yield();
    igi_parallel_for(64, 1, other_visit, c);
    atomic_store(&c->other_done, 1);
    return NULL;
}

static void hold_pool(int64_t begin, int64_t end, void *arg) {
    busy_ctx *c = arg;
    if (begin == 0) {
        /* The caller's range: keep the pool busy until the other thread has finished. */
        atomic_store(&c->started, 1);
        while (!atomic_load(&c->other_done)) sched_yield();
    }
    (void)end;
}

Test(core, parallel_for_from_another_thread_while_busy) {
    int saved = ig_get_num_threads();
    ig_set_num_threads(2);
    busy_ctx *c = calloc(1, sizeof *c);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, other_thread, c), 0);
    igi_parallel_for(2, 1, hold_pool, c);
    pthread_join(t, NULL);
    cr_assert_eq(c->other_ranges, 1);
    for (int i = 0; i < 64; i++) cr_assert_eq(atomic_load(&c->other_count[i]), 1);
    free(c);
    ig_set_num_threads(saved);
}

/* Bitwise-equal results with 1 and 3 threads: a large elementwise chain (contiguous and
 * strided), max pooling and a conv forward/backward. */
static void run_ops(float *out, int64_t *nout) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(7);
    ig_tensor *x = ig_randn(IG_DIMS(8, 16, 30, 30), IG_F32);
    ig_tensor *w = ig_randn(IG_DIMS(4, 16, 3, 3), IG_F32);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_tensor *a = ig_relu(ig_add(ig_mul(x, x), ig_transpose(x, 2, 3)));
    ig_tensor *y = ig_conv2d(a, w, NULL, &(ig_conv2d_params){.padding = {1, 1}});
    ig_tensor *p = ig_max_pool2d(y, &(ig_pool2d_params){.kernel = {2, 2}});
    ig_tensor *loss = ig_sum(ig_mul(p, p), 0, NULL, false);
    cr_assert(ig_backward(loss, NULL) == IG_OK, "%s", ig_last_error());
    ig_tensor *parts[4] = {a, p, ig_grad(x), ig_grad(w)};
    int64_t k = 0;
    for (int i = 0; i < 4; i++) {
        int64_t n = ig_tensor_numel(parts[i]);
        cr_assert(ig_tensor_to_buffer(parts[i], IG_F32, out + k, n) == IG_OK);
        k += n;
    }
    *nout = k;
    ig_scope_end(s);
}

Test(core, results_do_not_depend_on_thread_count) {
    int saved = ig_get_num_threads();
    size_t cap = 8 * 16 * 30 * 30 * 3 + 8 * 4 * 15 * 15 + 4 * 16 * 9;
    float *r1 = malloc(cap * sizeof(float)), *r3 = malloc(cap * sizeof(float));
    int64_t n1, n3;
    /* OpenBLAS itself is not bitwise reproducible across its thread counts (its blocking
     * changes), so it stays at one thread; the pool's share of the work varies. */
    ig_set_num_threads(1);
    openblas_set_num_threads(1);
    run_ops(r1, &n1);
    ig_set_num_threads(3);
    openblas_set_num_threads(1);
    run_ops(r3, &n3);
    cr_assert_eq(n1, n3);
    cr_assert((size_t)n1 <= cap);
    for (int64_t i = 0; i < n1; i++)
        cr_assert(memcmp(&r1[i], &r3[i], sizeof(float)) == 0, "element %lld: %.9g vs %.9g",
                  (long long)i, r1[i], r3[i]);
    free(r1);
    free(r3);
    ig_set_num_threads(saved);
}

/* Batch norm (training: statistics split by channel, normalisation and dx by rows) gives
 * bitwise the same output and gradients with 1 and 3 threads, f32 and f64. */
static void run_batch_norm(ig_dtype dt, double *out, int64_t *nout) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    ig_tensor *x = ig_randn(IG_DIMS(8, 16, 30, 30), dt);
    ig_tensor *w = ig_randn(IG_DIMS(16), dt), *b = ig_randn(IG_DIMS(16), dt);
    ig_tensor *rm = ig_zeros(IG_DIMS(16), dt), *rv = ig_ones(IG_DIMS(16), dt);
    ig_set_requires_grad(x, true);
    ig_set_requires_grad(w, true);
    ig_set_requires_grad(b, true);
    ig_tensor *y = ig_batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    cr_assert(y, "%s", ig_last_error());
    /* A non-uniform output gradient: sum(y * y * x). */
    ig_tensor *loss = ig_sum(ig_mul(ig_mul(y, y), x), 0, NULL, false);
    cr_assert(ig_backward(loss, NULL) == IG_OK, "%s", ig_last_error());
    ig_tensor *parts[6] = {y, ig_grad(x), ig_grad(w), ig_grad(b), rm, rv};
    int64_t k = 0;
    for (int i = 0; i < 6; i++) {
        int64_t n = ig_tensor_numel(parts[i]);
        cr_assert(ig_tensor_to_buffer(parts[i], IG_F64, out + k, n) == IG_OK);
        k += n;
    }
    *nout = k;
    ig_scope_end(s);
}

Test(core, batch_norm_does_not_depend_on_thread_count) {
    int saved = ig_get_num_threads();
    size_t cap = 2 * 8 * 16 * 30 * 30 + 4 * 16;
    double *r1 = malloc(cap * sizeof(double)), *r3 = malloc(cap * sizeof(double));
    ig_dtype dts[2] = {IG_F32, IG_F64};
    for (int d = 0; d < 2; d++) {
        int64_t n1, n3;
        ig_set_num_threads(1);
        run_batch_norm(dts[d], r1, &n1);
        ig_set_num_threads(3);
        run_batch_norm(dts[d], r3, &n3);
        cr_assert_eq(n1, n3);
        cr_assert((size_t)n1 <= cap);
        for (int64_t i = 0; i < n1; i++)
            cr_assert(memcmp(&r1[i], &r3[i], sizeof(double)) == 0, "%s element %lld: %.17g vs %.17g",
                      ig_dtype_name(dts[d]), (long long)i, r1[i], r3[i]);
    }
    free(r1);
    free(r3);
    ig_set_num_threads(saved);
}
