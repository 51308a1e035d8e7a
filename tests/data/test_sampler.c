/*
 * tests/data/test_sampler.c — ig_sampler_count / ig_sampler_indices as torch's
 * DistributedSampler: equal shard lengths, disjoint shards that cover the epoch (the
 * wrapped padding being the only repeats), drop_last truncation, the unshuffled order by
 * hand, reproducibility from (seed, epoch), and the argument errors.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* Checks the shards of all ranks for one configuration; returns nothing, asserts. */
static void check_shards(int64_t n, int world, bool shuffle, bool drop_last) {
    int64_t expect = drop_last ? n / world : (n + world - 1) / world;
    int64_t *seen = calloc((size_t)n + 1, sizeof *seen);
    int64_t *buf = malloc(((size_t)expect + 1) * sizeof *buf);
    for (int r = 0; r < world; r++) {
        int64_t cnt = ig_sampler_count(n, r, world, drop_last);
        cr_assert_eq(cnt, expect, "n %lld world %d rank %d", (long long)n, world, r);
        cr_assert_eq(ig_sampler_indices(n, shuffle, 5, 2, r, world, drop_last, buf), IG_OK);
        for (int64_t k = 0; k < cnt; k++) {
            cr_assert(buf[k] >= 0 && buf[k] < n);
            seen[buf[k]]++;
        }
    }
    int64_t total = expect * world, distinct = 0, repeats = 0;
    for (int64_t i = 0; i < n; i++) {
        distinct += seen[i] > 0;
        repeats += seen[i] > 1 ? seen[i] - 1 : 0;
        if (drop_last) cr_assert_leq(seen[i], 1, "drop_last never repeats");
    }
    if (drop_last) {
        cr_assert_eq(distinct, total);
    } else {
        /* Covering; the only repeats are the padding. */
        cr_assert_eq(distinct, n, "n %lld world %d: %lld distinct", (long long)n, world, (long long)distinct);
        cr_assert_eq(repeats, total - n);
    }
    free(seen);
    free(buf);
}

Test(data, sampler_shards_cover_disjoint_equal) {
    int64_t ns[] = {0, 1, 2, 5, 10, 11, 13, 64};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (int world = 1; world <= 4; world++)
            for (int shuffle = 0; shuffle < 2; shuffle++) {
                check_shards(ns[i], world, shuffle, false);
                check_shards(ns[i], world, shuffle, true);
            }
}

Test(data, sampler_unshuffled_order_by_hand) {
    int64_t out[4];
    /* n 5, world 2: padded 0 1 2 3 4 0; rank 0 takes 0 2 4, rank 1 takes 1 3 0. */
    cr_assert_eq(ig_sampler_indices(5, false, 0, 0, 0, 2, false, out), IG_OK);
    cr_assert(out[0] == 0 && out[1] == 2 && out[2] == 4);
    cr_assert_eq(ig_sampler_indices(5, false, 0, 0, 1, 2, false, out), IG_OK);
    cr_assert(out[0] == 1 && out[1] == 3 && out[2] == 0);
    /* drop_last: 0 1 2 3; rank 1 takes 1 3. */
    cr_assert_eq(ig_sampler_count(5, 1, 2, true), 2);
    cr_assert_eq(ig_sampler_indices(5, false, 0, 0, 1, 2, true, out), IG_OK);
    cr_assert(out[0] == 1 && out[1] == 3);
    /* n 1, world 3: the one item is repeated for every rank. */
    for (int r = 0; r < 3; r++) {
        cr_assert_eq(ig_sampler_indices(1, true, 0, 0, r, 3, false, out), IG_OK);
        cr_assert_eq(out[0], 0);
    }
    cr_assert_eq(ig_sampler_count(2, 2, 3, true), 0);
}

Test(data, sampler_shuffle_reproducible_per_seed_and_epoch) {
    enum { N = 200 };
    int64_t a[N], b[N], c[N], d[N];
    cr_assert_eq(ig_sampler_indices(N, true, 7, 0, 0, 1, false, a), IG_OK);
    cr_assert_eq(ig_sampler_indices(N, true, 7, 0, 0, 1, false, b), IG_OK);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "same (seed, epoch), same order");
    cr_assert_eq(ig_sampler_indices(N, true, 7, 1, 0, 1, false, c), IG_OK);
    cr_assert_eq(ig_sampler_indices(N, true, 8, 0, 0, 1, false, d), IG_OK);
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "another epoch, another order");
    cr_assert_neq(memcmp(a, d, sizeof a), 0, "another seed, another order");
    /* A permutation, and not the identity. */
    bool seen[N] = {false};
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(!seen[a[i]]);
        seen[a[i]] = true;
        fixed += a[i] == i;
    }
    cr_assert_lt(fixed, 10);
    /* Rank shards are strided slices of the same epoch order. */
    int64_t r1[N / 4];
    cr_assert_eq(ig_sampler_indices(N, true, 7, 0, 1, 4, false, r1), IG_OK);
    for (int k = 0; k < N / 4; k++) cr_assert_eq(r1[k], a[1 + 4 * k]);
}

Test(data, sampler_errors) {
    int64_t out[4];
    ig_clear_error();
    cr_assert_eq(ig_sampler_count(10, 2, 2, false), -1);
    ASSERT_ERR(IG_ERR_ARG, "ig_sampler_count");
    ig_clear_error();
    cr_assert_eq(ig_sampler_count(10, 0, 0, false), -1);
    ASSERT_ERR(IG_ERR_ARG, "ig_sampler_count");
    ig_clear_error();
    cr_assert_eq(ig_sampler_count(-1, 0, 1, false), -1);
    ASSERT_ERR(IG_ERR_ARG, "ig_sampler_count");
    ig_clear_error();
    cr_assert_eq(ig_sampler_indices(10, true, 0, 0, -1, 2, false, out), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_sampler_indices");
    ig_clear_error();
    cr_assert_eq(ig_sampler_indices(10, true, 0, 0, 0, 2, false, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_sampler_indices");
}
