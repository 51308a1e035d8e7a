/*
 * data/sampler.c — which items a rank sees in an epoch, as torch's DistributedSampler.
 *
 * The epoch order is a permutation of 0..n-1 (identity without shuffle). With drop_last it
 * is truncated to floor(n / world) * world items, otherwise padded to ceil(n / world) * world
 * by wrapping around to its start (again and again if n < world). Rank r takes positions
 * r, r + world, r + 2 world, ... So shards are disjoint apart from the padding, cover the
 * epoch and have equal lengths.
 *
 * The permutation is a Fisher-Yates shuffle driven by Philox4x32-10 keyed by the seed with
 * the epoch in the counter: the same (seed, epoch) gives the same order on every rank and
 * every run, whatever the threads. (torch draws its permutation from a Mersenne Twister
 * seeded with seed + epoch, so the orders differ from torch's; the structure does not.)
 */
#include <stdlib.h>

#include "../core/tensor_impl.h"
#include "sampler_impl.h"

int64_t ig_sampler_count(int64_t n, int rank, int world_size, bool drop_last) {
    if (n < 0 || world_size < 1 || rank < 0 || rank >= world_size) {
        igi_error(IG_ERR_ARG, "ig_sampler_count: need n >= 0 and 0 <= rank < world_size, got n %lld, rank %d, world_size %d",
                  (long long)n, rank, world_size);
        return -1;
    }
    return drop_last ? n / world_size : n / world_size + (n % world_size != 0);
}

/* A sequential Philox stream: draw k is word k of the blocks (key, epoch, 0), (key, epoch, 1)... */
typedef struct perm_rng {
    uint64_t key, epoch, block;
    uint32_t buf[4];
    int avail;
} perm_rng;

static uint32_t perm_u32(perm_rng *r) {
    if (r->avail == 0) {
        ig_philox4x32(r->key, r->epoch, r->block++, r->buf);
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

/* Uniform in [0, bound) for bound >= 1, unbiased (rejection of the top partial block). */
static uint64_t perm_below(perm_rng *r, uint64_t bound) {
    for (;;) {
        uint64_t x = (uint64_t)perm_u32(r) << 32 | perm_u32(r);
        uint64_t v = x % bound;
        if (x - v <= UINT64_MAX - (bound - 1)) return v;
    }
}

void igi_sampler_fill(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int rank, int world_size,
                      bool drop_last, int64_t *perm, int64_t *out) {
    int64_t count = ig_sampler_count(n, rank, world_size, drop_last);
    if (count <= 0) return;
    if (shuffle) {
        perm_rng r = {.key = seed ^ 0x243f6a8885a308d3ULL, .epoch = (uint64_t)epoch};
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)perm_below(&r, (uint64_t)i + 1);
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }
    /* Position rank + k * world of the padded (wrapped) order. */
    for (int64_t k = 0; k < count; k++) {
        int64_t m = (rank + k * (int64_t)world_size) % n;
        out[k] = shuffle ? perm[m] : m;
    }
}

ig_status ig_sampler_indices(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int rank,
                             int world_size, bool drop_last, int64_t *out) {
    int64_t count = ig_sampler_count(n, rank, world_size, drop_last);
    if (count < 0) {
        igi_error(IG_ERR_ARG, "ig_sampler_indices: need n >= 0 and 0 <= rank < world_size, got n %lld, rank %d, world_size %d",
                  (long long)n, rank, world_size);
        return IG_ERR_ARG;
    }
    if (count == 0) return IG_OK;
    if (!out) return igi_error_null("ig_sampler_indices", "out");
    int64_t *perm = NULL;
    if (shuffle) {
        perm = malloc((size_t)n * sizeof *perm);
        if (!perm) return igi_error(IG_ERR_NOMEM, "ig_sampler_indices: out of memory for %lld indices", (long long)n);
    }
    igi_sampler_fill(n, shuffle, seed, epoch, rank, world_size, drop_last, perm, out);
    free(perm);
    return IG_OK;
}
