/*
 * tests/core/test_scope.c — scopes: nesting, ending an outer scope with inner ones open,
 * ending a scope that is not open, ig_keep, and the memory accounting a training loop
 * relies on (live bytes back to where they were; a repeated step asks the OS for nothing),
 * and stale or foreign handles: ending a scope twice after a new scope took its arena place,
 * and ending another thread's scope, are refused without touching the open scopes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static int64_t live_bytes(void) {
    ig_mem_stats ms;
    ig_mem_get_stats(IG_CPU, &ms);
    return ms.live_bytes;
}

Test(core, scopes_nest) {
    int64_t live0 = live_bytes();
    ig_scope *outer = ig_scope_begin();
    cr_assert_not_null(outer);
    ig_tensor *a = ig_full(IG_DIMS(100), IG_F64, 2.0);
    int64_t live_a = live_bytes();
    cr_assert_gt(live_a, live0);
    ig_scope *inner = ig_scope_begin();
    ig_tensor *b = ig_mul(a, ig_full(IG_DIMS(100), IG_F64, 3.0));
    cr_assert_eq(ig_tensor_get(b, 99), 6.0);
    cr_assert_gt(live_bytes(), live_a);
    cr_assert_eq(ig_scope_end(inner), IG_OK);
    /* Inner tensors are gone, the outer ones are intact and usable. */
    cr_assert_eq(live_bytes(), live_a);
    cr_assert_eq(ig_tensor_get(a, 50), 2.0);
    ig_tensor *c = ig_add_scalar(a, 1.0);
    cr_assert_eq(ig_tensor_get(c, 0), 3.0);
    /* A second inner scope reuses the arena. */
    ig_scope *inner2 = ig_scope_begin();
    cr_assert_not_null(ig_zeros(IG_DIMS(10), IG_F32));
    cr_assert_eq(ig_scope_end(inner2), IG_OK);
    cr_assert_eq(ig_scope_end(outer), IG_OK);
    cr_assert_eq(live_bytes(), live0);
}

Test(core, scope_end_of_outer_ends_inner) {
    int64_t live0 = live_bytes();
    ig_scope *outer = ig_scope_begin();
    ig_tensor *a = ig_ones(IG_DIMS(64), IG_F32);
    ig_scope *mid = ig_scope_begin();
    ig_tensor *b = ig_add(a, a);
    ig_scope *inner = ig_scope_begin();
    ig_tensor *c = ig_mul(b, b);
    cr_assert(a && b && c);
    cr_assert_eq(ig_scope_end(outer), IG_OK);
    cr_assert_eq(live_bytes(), live0);
    /* The inner scopes were ended with it. */
    ig_clear_error();
    cr_assert_eq(ig_scope_end(inner), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_scope_end");
    ig_clear_error();
    cr_assert_eq(ig_scope_end(mid), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_scope_end");
    /* With no scope open, new tensors are heap tensors again. */
    ig_tensor *h = ig_zeros(IG_DIMS(4), IG_F32);
    cr_assert_gt(live_bytes(), live0);
    ig_tensor_free(h);
    cr_assert_eq(live_bytes(), live0);
}

Test(core, scope_end_errors) {
    ig_scope *s = ig_scope_begin();
    cr_assert_eq(ig_scope_end(s), IG_OK);
    ig_clear_error();
    cr_assert_eq(ig_scope_end(s), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_scope_end");
    cr_assert(strstr(ig_last_error(), "not open"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_eq(ig_scope_end(NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_scope_end");
    /* Ending an inner scope leaves the outer one open. */
    ig_scope *outer = ig_scope_begin();
    ig_scope *inner = ig_scope_begin();
    cr_assert_eq(ig_scope_end(inner), IG_OK);
    cr_assert_eq(ig_scope_end(outer), IG_OK);
}

/* The second scope's record reuses the first's arena place; the first's handle must still
 * be refused and must not end the second scope. */
Test(core, stale_handle_does_not_end_a_newer_scope) {
    int64_t live0 = live_bytes();
    ig_scope *a = ig_scope_begin();
    cr_assert_not_null(ig_ones(IG_DIMS(8), IG_F32));
    cr_assert_eq(ig_scope_end(a), IG_OK);
    cr_assert_eq(live_bytes(), live0);
    ig_scope *b = ig_scope_begin();
    cr_assert_not_null(b);
    cr_assert_neq(b, a);
    ig_tensor *t = ig_arange(0, 50, 1, IG_F64);
    ig_tensor *u = ig_mul_scalar(t, 3.0);
    cr_assert(t && u, "%s", ig_last_error());
    int64_t live_b = live_bytes();
    cr_assert_gt(live_b, live0);
    ig_clear_error();
    cr_assert_eq(ig_scope_end(a), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_scope_end");
    cr_assert(strstr(ig_last_error(), "scope is not open on this thread"), "%s", ig_last_error());
    /* b is still open: its tensors are alive and new tensors still belong to it. */
    cr_assert_eq(live_bytes(), live_b);
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(ig_tensor_get(t, i), (double)i);
        cr_assert_eq(ig_tensor_get(u, i), 3.0 * i);
    }
    ig_tensor *v = ig_add(t, u);
    cr_assert_not_null(v);
    cr_assert_eq(ig_tensor_get(v, 49), 4.0 * 49);
    cr_assert_eq(ig_scope_end(b), IG_OK);
    cr_assert_eq(live_bytes(), live0);
    ig_clear_error();
    cr_assert_eq(ig_scope_end(b), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_scope_end");
}

/* A stale handle whose scope was ended with an outer one, then the arena place reused. */
Test(core, stale_inner_handle_after_outer_end) {
    int64_t live0 = live_bytes();
    ig_scope *outer = ig_scope_begin();
    ig_scope *inner = ig_scope_begin();
    cr_assert_not_null(ig_zeros(IG_DIMS(16), IG_F32));
    cr_assert_eq(ig_scope_end(outer), IG_OK);
    ig_scope *o2 = ig_scope_begin();
    ig_scope *i2 = ig_scope_begin();
    ig_tensor *x = ig_full(IG_DIMS(4), IG_F32, 7.0);
    ig_clear_error();
    cr_assert_eq(ig_scope_end(inner), IG_ERR_STATE);
    ASSERT_ERR(IG_ERR_STATE, "ig_scope_end");
    cr_assert_eq(ig_scope_end(outer), IG_ERR_STATE);
    cr_assert_eq(ig_tensor_get(x, 3), 7.0);
    cr_assert_eq(ig_scope_end(i2), IG_OK);
    cr_assert_eq(ig_scope_end(o2), IG_OK);
    cr_assert_eq(live_bytes(), live0);
}

/* Results of the other thread, asserted on the test's thread (Criterion asserts belong to
 * it). */
typedef struct {
    ig_scope *foreign;
    ig_status st_foreign;      /* with no scope open on that thread */
    ig_status st_foreign_own;  /* with a scope of its own open */
    bool msg_ok;
    bool own_alive;
    ig_status st_own;
} foreign_result;

static void *end_foreign_scope(void *arg) {
    foreign_result *r = arg;
    /* With no scope open here, and then with one of its own open. */
    r->st_foreign = ig_scope_end(r->foreign);
    r->msg_ok = strstr(ig_last_error(), "ig_scope_end: scope is not open on this thread") != NULL;
    ig_scope *own = ig_scope_begin();
    ig_tensor *t = ig_full(IG_DIMS(5), IG_F64, 1.5);
    r->st_foreign_own = ig_scope_end(r->foreign);
    r->own_alive = t && ig_tensor_get(t, 4) == 1.5;
    r->st_own = ig_scope_end(own);
    return NULL;
}

Test(core, scope_handle_from_another_thread_refused) {
    int64_t live0 = live_bytes();
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_arange(0, 10, 1, IG_F32);
    foreign_result r = {.foreign = s};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, end_foreign_scope, &r), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(r.st_foreign, IG_ERR_STATE);
    cr_assert_eq(r.st_foreign_own, IG_ERR_STATE);
    cr_assert(r.msg_ok);
    cr_assert(r.own_alive);
    cr_assert_eq(r.st_own, IG_OK);
    /* Our scope is untouched. */
    cr_assert_eq(ig_tensor_get(a, 9), 9.0);
    cr_assert_eq(ig_scope_end(s), IG_OK);
    cr_assert_eq(live_bytes(), live0);
}

Test(core, keep_survives_scope_and_shares_data) {
    int64_t live0 = live_bytes();
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_arange(0, 6, 1, IG_F32);
    ig_tensor *k = ig_keep(a);
    cr_assert_not_null(k);
    cr_assert_eq(ig_tensor_data(k), ig_tensor_data(a));
    ((float *)ig_tensor_data(a))[2] = 42.0f;
    cr_assert_eq(ig_tensor_get(k, 2), 42.0);
    /* Keeping a view keeps its geometry. */
    ig_tensor *kv = ig_keep(ig_transpose(ig_reshape(a, IG_DIMS(2, 3)), 0, 1));
    /* Keeping a graph output detaches it. */
    ig_tensor *x = ig_ones(IG_DIMS(3), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *y = ig_mul_scalar(x, 2.0);
    cr_assert(!ig_is_leaf(y));
    ig_tensor *ky = ig_keep(y);
    cr_assert(ig_is_leaf(ky) && !ig_requires_grad(ky));
    cr_assert_eq(ig_scope_end(s), IG_OK);
    cr_assert_eq(ig_tensor_get(k, 2), 42.0);
    cr_assert_eq(ig_tensor_get(k, 5), 5.0);
    cr_assert_eq(ig_tensor_shape(kv)[0], 3);
    cr_assert_eq(ig_tensor_get(kv, 1), 3.0); /* kv[0][1] = a[1][0] */
    cr_assert_eq(ig_tensor_get(ky, 2), 2.0);
    /* k and kv share one storage: it goes when both are freed. */
    int64_t live_kept = live_bytes();
    ig_tensor_free(k);
    cr_assert_eq(live_bytes(), live_kept);
    cr_assert_eq(ig_tensor_get(kv, 1), 3.0);
    ig_tensor_free(kv);
    ig_tensor_free(ky);
    cr_assert_eq(live_bytes(), live0);
    /* ig_keep of a heap tensor is a retain. */
    ig_tensor *h = ig_zeros(IG_DIMS(8), IG_F32);
    cr_assert_eq(ig_keep(h), h);
    ig_tensor_free(h);
    cr_assert_eq(ig_tensor_get(h, 0), 0.0);
    ig_tensor_free(h);
    cr_assert_eq(live_bytes(), live0);
    ig_clear_error();
    cr_assert_null(ig_keep(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_keep");
}

Test(core, scope_tensors_ignore_free) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_full(IG_DIMS(3), IG_I32, 4);
    ig_tensor_free(a); /* the scope owns it: no effect */
    cr_assert_eq(ig_tensor_retain(a), a);
    cr_assert_eq(ig_tensor_get(a, 2), 4.0);
    ig_scope_end(s);
}

/* One "training step": forward, backward, and reads, with a heap parameter. */
static void step(ig_tensor *w) {
    ig_tensor *x = ig_randn(IG_DIMS(16, 8), IG_F64);
    ig_tensor *wt = ig_transpose(ig_expand(ig_reshape(w, IG_DIMS(8, 1)), IG_DIMS(8, 16)), 0, 1);
    ig_tensor *y = ig_mul(ig_sub(x, w), wt); /* [16,8] */
    ig_tensor *loss = ig_sum(ig_mul(y, ig_add_scalar(ig_reshape(w, IG_DIMS(1, 8)), 1.0)), 0, NULL, false);
    cr_assert_not_null(loss, "%s", ig_last_error());
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
}

Test(core, live_bytes_return_and_steady_state_allocates_nothing) {
    ig_tensor *w = ig_randn(IG_DIMS(8), IG_F64);
    ig_set_requires_grad(w, true);
    ig_mem_stats before, warm, after;
    /* Warm-up step: fills the cache and gives w its .grad. */
    ig_scope *s = ig_scope_begin();
    step(w);
    ig_scope_end(s);
    ig_mem_get_stats(IG_CPU, &warm);
    for (int i = 0; i < 5; i++) {
        if (i == 0) before = warm;
        s = ig_scope_begin();
        step(w);
        ig_scope_end(s);
        ig_mem_get_stats(IG_CPU, &after);
        cr_assert_eq(after.os_allocs, before.os_allocs, "step %d asked the OS for memory", i);
        cr_assert_eq(after.live_bytes, before.live_bytes, "step %d changed live bytes", i);
    }
    cr_assert_gt(after.cached_bytes, 0);
    ig_tensor_free(w);
}

Test(core, release_cached_returns_blocks) {
    ig_scope *s = ig_scope_begin();
    for (int i = 1; i <= 10; i++) cr_assert_not_null(ig_zeros(IG_DIMS(100 * i), IG_F32));
    ig_scope_end(s);
    ig_mem_stats a, b;
    ig_mem_get_stats(IG_CPU, &a);
    cr_assert_geq(a.cached_bytes, 4 * 100 * 55);
    ig_mem_release_cached(IG_CPU);
    ig_mem_get_stats(IG_CPU, &b);
    cr_assert_eq(b.cached_bytes, 0);
    cr_assert_geq(b.os_frees, a.os_frees + 10);
    cr_assert_eq(b.live_bytes, a.live_bytes);
    /* Allocating again goes to the OS. */
    s = ig_scope_begin();
    ig_zeros(IG_DIMS(1000), IG_F32);
    ig_mem_stats c;
    ig_mem_get_stats(IG_CPU, &c);
    cr_assert_eq(c.os_allocs, b.os_allocs + 1);
    ig_scope_end(s);
}
