/*
 * tools/bench_alloc.c — counts heap allocations made anywhere in the `ignis` process (the
 * library, OpenBLAS, libc itself), for `ignis bench`'s "heap allocations per step".
 *
 * How: this file defines malloc, calloc, realloc, free, posix_memalign and aligned_alloc in
 * the executable, so the dynamic linker binds every caller (shared libraries included) to
 * them. Each one bumps a relaxed atomic counter and forwards to glibc's own allocator through
 * its exported __libc_malloc family, so blocks stay glibc blocks: memalign, valloc and
 * malloc_usable_size, which are not replaced, keep working on them. glibc documents this
 * kind of replacement ("Replacing malloc"). The cost is one uncontended atomic add per call.
 *
 * Not done under a sanitizer (its runtime already replaces malloc; ours would bypass it) nor
 * outside glibc: there bench_alloc_available() is false and the bench says the count is
 * unavailable instead of printing a wrong number.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "bench_impl.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define BENCH_NO_INTERPOSE 1
#endif
#endif
#if !defined(__GLIBC__)
#define BENCH_NO_INTERPOSE 1
#endif

#ifndef BENCH_NO_INTERPOSE

static atomic_uint_fast64_t n_allocs, n_frees;

/* glibc's allocator under its exported internal names. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

/* realloc(p, 0) frees and realloc(NULL, n) allocates; a resize counts as an allocation
 * (it may move the block). */
void *realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(p && n == 0 ? &n_frees : &n_allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void free(void *p) {
    if (p) atomic_fetch_add_explicit(&n_frees, 1, memory_order_relaxed);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
    /* POSIX: align must be a power of two multiple of sizeof(void *). */
    if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n) {
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

bool bench_alloc_available(void) { return true; }

void bench_alloc_counts(uint64_t *allocs, uint64_t *frees) {
    *allocs = atomic_load_explicit(&n_allocs, memory_order_relaxed);
    *frees = atomic_load_explicit(&n_frees, memory_order_relaxed);
}

#else

bool bench_alloc_available(void) { return false; }

void bench_alloc_counts(uint64_t *allocs, uint64_t *frees) {
    *allocs = 0;
    *frees = 0;
}

#endif
