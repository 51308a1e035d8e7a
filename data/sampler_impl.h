/*
 * data/sampler_impl.h — the sampler with caller-provided scratch, for the loader (which
 * computes each epoch's indices without allocating). Never installed.
 */
#ifndef IGNIS_DATA_SAMPLER_IMPL_H
#define IGNIS_DATA_SAMPLER_IMPL_H

#include "data.h"

/* ig_sampler_indices with perm (n entries, used only when shuffle) supplied by the caller.
 * Arguments must already be valid (ig_sampler_count(...) >= 0). */
void igi_sampler_fill(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int rank, int world_size,
                      bool drop_last, int64_t *perm, int64_t *out);

#endif
