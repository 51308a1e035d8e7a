/*
 * tools/bench_impl.h — the heap-allocation counter `ignis bench` reads (tools/bench_alloc.c).
 */
#ifndef IGNIS_TOOLS_BENCH_IMPL_H
#define IGNIS_TOOLS_BENCH_IMPL_H

#include <stdbool.h>
#include <stdint.h>

/* False when the process's allocator could not be wrapped (sanitizer builds, non-glibc). */
bool bench_alloc_available(void);
/* Calls of malloc/calloc/realloc/posix_memalign/aligned_alloc and of free since start. */
void bench_alloc_counts(uint64_t *allocs, uint64_t *frees);

#endif
