/*
 * tests/cuda/fake_device.h — the memory half of a stand-in device backend on host memory,
 * for tests that register one as IG_CUDA (tests/cuda/test_cuda_fake.c, test_cuda_pinned.c,
 * tests/dist/test_nccl.c): copies in every direction, zeroing and synchronisation. Each test file adds its own
 * allocator and whichever kernels it needs.
 */
#ifndef IGNIS_TESTS_CUDA_FAKE_DEVICE_H
#define IGNIS_TESTS_CUDA_FAKE_DEVICE_H

#include <string.h>

#include "core/backend_impl.h"

static inline ig_status fake_copy(void *d, const void *s, size_t n) {
    memcpy(d, s, n);
    return IG_OK;
}

static inline ig_status fake_memset(void *d, size_t n) {
    memset(d, 0, n);
    return IG_OK;
}

static inline ig_status fake_sync(void) { return IG_OK; }

#endif
