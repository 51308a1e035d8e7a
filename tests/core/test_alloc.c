/*
 * tests/core/test_alloc.c — heap tensors and the caching allocator: tensors made with no
 * scope open, retain/free refcounting, views keeping storage alive, size-class rounding and
 * reuse, and a heap autograd graph that is freed through its output with nothing left over
 * (the sanitizer run turns any leak here into a failure).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "ignis.h"

static ig_mem_stats stats(void) {
    ig_mem_stats ms;
    ig_mem_get_stats(IG_CPU, &ms);
    return ms;
}

Test(core, heap_tensor_lifecycle) {
    int64_t live0 = stats().live_bytes;
    ig_tensor *a = ig_zeros(IG_DIMS(100), IG_F32); /* no scope open: heap */
    cr_assert_not_null(a);
    int64_t grown = stats().live_bytes - live0;
    cr_assert_geq(grown, 400);
    cr_assert_leq(grown, 400 * 5 / 4 + 128, "400 bytes cost %lld", (long long)grown);
    cr_assert_eq(ig_tensor_retain(a), a);
    ig_tensor_free(a);
    cr_assert_eq(ig_tensor_get(a, 99), 0.0, "one reference is left");
    cr_assert_eq(stats().live_bytes, live0 + grown);
    ig_tensor_free(a);
    cr_assert_eq(stats().live_bytes, live0);
    ig_tensor_free(NULL);
    cr_assert_null(ig_tensor_retain(NULL));
}

Test(core, heap_view_keeps_storage) {
    int64_t live0 = stats().live_bytes;
    ig_tensor *a = ig_arange(0, 12, 1, IG_F64);
    ig_tensor *m = ig_view(a, IG_DIMS(3, 4)); /* heap views, each the caller's to free */
    ig_tensor *v = ig_transpose(m, 0, 1);
    cr_assert_not_null(v);
    int64_t live1 = stats().live_bytes;
    cr_assert_eq(live1 - live0 > 0, true);
    ig_tensor_free(a);
    ig_tensor_free(m);
    /* v alone holds the storage now. */
    cr_assert_eq(stats().live_bytes, live1);
    cr_assert_eq(ig_tensor_get(v, 1), 4.0); /* v[0][1] = a[1][0] */
    ig_tensor_free(v);
    cr_assert_eq(stats().live_bytes, live0);
}

Test(core, size_classes_round_up_at_most_a_quarter) {
    const int64_t sizes[] = {1, 63, 64, 65, 500, 513, 1000, 4097, 100000, 1 << 20, 3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t live0 = stats().live_bytes;
        ig_tensor *t = ig_empty(IG_DIMS(sizes[i]), IG_U8);
        int64_t cost = stats().live_bytes - live0;
        cr_assert_geq(cost, sizes[i]);
        /* Up to 64 bytes of storage header, then at most a quarter of rounding (or the
         * 64-byte granule for small blocks). */
        cr_assert_leq(cost, (sizes[i] + 64) * 5 / 4 + 64, "%lld bytes cost %lld", (long long)sizes[i],
                      (long long)cost);
        ig_tensor_free(t);
        cr_assert_eq(stats().live_bytes, live0);
    }
}

Test(core, allocator_reuses_freed_blocks) {
    ig_tensor *a = ig_empty(IG_DIMS(1000), IG_F32);
    void *pa = ig_tensor_data(a);
    ig_tensor_free(a);
    ig_mem_stats s1 = stats();
    cr_assert_gt(s1.cached_bytes, 4000 - 1);
    /* Same size: the cached block comes back. A slightly smaller size in the same class too. */
    ig_tensor *b = ig_empty(IG_DIMS(990), IG_F32);
    ig_mem_stats s2 = stats();
    cr_assert_eq(s2.os_allocs, s1.os_allocs);
    cr_assert_eq(ig_tensor_data(b), pa);
    cr_assert_eq(s2.cached_bytes, s1.cached_bytes - (s2.live_bytes - s1.live_bytes));
    ig_tensor_free(b);
    ig_mem_release_cached(IG_CPU);
    cr_assert_eq(stats().cached_bytes, 0);
    /* Stats of a device with no allocator here are zero; a NULL out is ignored. */
    ig_mem_stats cu;
    memset(&cu, 0xff, sizeof cu);
    ig_mem_get_stats(IG_CUDA, &cu);
    cr_assert(cu.live_bytes == 0 && cu.os_allocs == 0);
    ig_mem_get_stats(IG_CPU, NULL);
}

Test(core, heap_graph_backward_and_free) {
    int64_t live0 = stats().live_bytes;
    ig_tensor *a = ig_from_data(IG_DIMS(2, 3), IG_F64, (double[]){1, 2, 3, 4, 5, 6});
    ig_tensor *b = ig_from_data(IG_DIMS(3), IG_F64, (double[]){-1, 0.5, 2});
    cr_assert_eq(ig_set_requires_grad(a, true), IG_OK);
    cr_assert_eq(ig_set_requires_grad(b, true), IG_OK);
    /* y = sum((a * b) / b + a * a): every intermediate is a heap tensor whose handle the
     * caller frees; the graph keeps what backward needs. */
    ig_tensor *m = ig_mul(a, b);
    ig_tensor *q = ig_div(m, b);
    ig_tensor *sq = ig_mul(a, a);
    ig_tensor *s = ig_add(q, sq);
    ig_tensor *y = ig_sum(s, 0, NULL, false);
    cr_assert_not_null(y, "%s", ig_last_error());
    ig_tensor_free(m);
    ig_tensor_free(q);
    ig_tensor_free(sq);
    ig_tensor_free(s);
    cr_assert_float_eq(ig_item(y), 21.0 + 91.0, 1e-12);
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
    /* dy/da = 1 + 2a; dy/db = sum over rows of (a/b - a*b/b^2) = 0. */
    for (int i = 0; i < 6; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(a), i), 1.0 + 2.0 * (i + 1), 1e-12);
    for (int j = 0; j < 3; j++) cr_assert_float_eq(ig_tensor_get(ig_grad(b), j), 0.0, 1e-12);
    ig_tensor_free(y); /* frees the whole graph */
    int64_t live_leaves = stats().live_bytes;
    ig_tensor_free(a); /* and its .grad */
    ig_tensor_free(b);
    cr_assert_lt(stats().live_bytes, live_leaves);
    cr_assert_eq(stats().live_bytes, live0);
}

Test(core, long_heap_chain_frees_without_recursion) {
    int64_t live0 = stats().live_bytes;
    ig_tensor *x = ig_ones(IG_DIMS(2), IG_F64);
    ig_set_requires_grad(x, true);
    ig_tensor *cur = ig_tensor_retain(x);
    for (int i = 0; i < 20000; i++) {
        ig_tensor *next = ig_add_scalar(cur, 1.0);
        cr_assert_not_null(next);
        ig_tensor_free(cur);
        cur = next;
    }
    cr_assert_eq(ig_tensor_get(cur, 1), 20001.0);
    ig_tensor *seed = ig_ones(IG_DIMS(2), IG_F64);
    cr_assert_eq(ig_backward(cur, seed), IG_OK, "%s", ig_last_error());
    ig_tensor_free(seed);
    ig_tensor_free(cur);
    cr_assert_eq(ig_tensor_get(ig_grad(x), 0), 1.0);
    ig_tensor_free(x);
    cr_assert_eq(stats().live_bytes, live0);
}

Test(core, contiguous_of_heap_tensor_inside_a_scope_does_not_leak) {
    int64_t live0 = stats().live_bytes;
    ig_tensor *w = ig_ones(IG_DIMS(4, 4), IG_F64); /* heap, contiguous */
    ig_set_requires_grad(w, true);
    ig_scope *s = ig_scope_begin();
    ig_tensor *c = ig_contiguous(w);
    cr_assert_eq(ig_tensor_data(c), ig_tensor_data(w), "no copy for a contiguous tensor");
    /* The result is the scope's: backward through it reaches w. */
    cr_assert_eq(ig_backward(ig_sum(ig_mul_scalar(c, 3), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_get(ig_grad(w), 5), 3.0);
    ig_scope_end(s);
    ig_tensor_free(w);
    cr_assert_eq(stats().live_bytes, live0, "ig_contiguous kept a reference to w");
    /* With no scope open, the result is a reference the caller frees, like any heap result. */
    ig_tensor *h = ig_zeros(IG_DIMS(3), IG_F32);
    ig_tensor *hc = ig_contiguous(h);
    ig_tensor_free(h);
    cr_assert_eq(ig_tensor_get(hc, 0), 0.0);
    ig_tensor_free(hc);
    cr_assert_eq(stats().live_bytes, live0);
}
