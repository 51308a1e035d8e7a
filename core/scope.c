/*
 * core/scope.c — scopes: who frees the intermediates of a define-by-run step.
 *
 * Each thread has a scope arena: a chain of chunks that only grows. ig_scope_begin records
 * the arena position; tensor headers and autograd nodes made until ig_scope_end are bump-
 * allocated after it, and every scoped tensor is linked into its scope's list. Scope end
 * walks that list (newest first) dropping storage and node references, then rewinds the
 * arena to the recorded position in O(1). Chunks are kept for the next scope, so a steady
 * training loop allocates no headers or nodes from the OS.
 *
 * Handles. A scope's record (scope_rec) lives in the arena it rewinds, so the next scope's
 * record usually lands at the same address. Were the handle that address, a second
 * ig_scope_end of an ended scope would end whichever scope reused it and free its tensors
 * under the caller. So each record takes a serial from one process-wide atomic 64-bit
 * counter (starts at 1, never reused), and the handle the user gets is that serial shifted
 * left by 4 bits and converted to a pointer: 16-byte aligned, never NULL, and not the
 * record's address. struct ig_scope is never defined, so nothing can dereference a
 * handle; the integer-to-pointer conversion is implementation-defined (a plain bit copy on
 * every target we build for). ig_scope_end walks this thread's open records comparing
 * their handle bits with s: an ended scope's handle, and another thread's (serials are
 * process-wide), match none. Where uintptr_t is 32 bits the handle holds the serial modulo
 * 2^28, so a stale handle is only mistaken after exactly a multiple of 2^28 further scopes
 * begun in the process; a serial whose handle would be NULL is skipped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "tensor_impl.h"

#define IGI_CHUNK_MIN (256 * 1024)
#define IGI_ARENA_ALIGN 16

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(IGI_ARENA_ALIGN) char data[];
} arena_chunk;

/* One open scope; the records of a thread's open scopes chain innermost first. */
typedef struct scope_rec {
    struct scope_rec *parent;
    arena_chunk *mark_chunk; /* arena position before this record */
    size_t mark_used;
    ig_tensor *tensors;      /* scoped tensors, newest first */
    uintptr_t handle;        /* the bits of the ig_scope * handed out for it (see top) */
} scope_rec;

static atomic_uint_fast64_t next_serial = 1;

static _Thread_local arena_chunk *arena_first;
static _Thread_local arena_chunk *arena_cur;
static _Thread_local scope_rec *scope_top;
static _Thread_local int heap_mode;

void igi_heap_mode(int delta) { heap_mode += delta; }

/* A thread's chunks are freed when the thread exits (the destructor of a pthread key whose
 * value is the first chunk), unless it left a scope open: that scope's tensors live in the
 * chunks and may have been handed to another thread. The main thread's chunks stay
 * reachable until the process ends. Without the key (pthread_key_create failed) an exiting
 * thread's chunks are lost, as before. */
static pthread_key_t arena_key;
static pthread_once_t arena_key_once = PTHREAD_ONCE_INIT;
static bool arena_key_ok;

static void arena_release(void *first) {
    if (scope_top) return;
    for (arena_chunk *c = first, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    arena_first = arena_cur = NULL;
}

static void arena_key_make(void) { arena_key_ok = pthread_key_create(&arena_key, arena_release) == 0; }

/* Bump-allocates from the arena regardless of scope state (used for scope records too). */
static void *arena_alloc(size_t nbytes) {
    nbytes = (nbytes + IGI_ARENA_ALIGN - 1) / IGI_ARENA_ALIGN * IGI_ARENA_ALIGN;
    if (!arena_cur) {
        size_t cap = nbytes > IGI_CHUNK_MIN ? nbytes : IGI_CHUNK_MIN;
        arena_chunk *c = malloc(sizeof(arena_chunk) + cap);
        if (!c) return NULL;
        c->next = NULL;
        c->cap = cap;
        c->used = 0;
        arena_first = arena_cur = c;
        pthread_once(&arena_key_once, arena_key_make);
        if (arena_key_ok) (void)pthread_setspecific(arena_key, c);
    }
    while (arena_cur->cap - arena_cur->used < nbytes) {
        arena_chunk *n = arena_cur->next;
        if (!n || n->cap < nbytes) {
            /* Insert a fresh chunk big enough after the current one. */
            size_t cap = nbytes > IGI_CHUNK_MIN ? nbytes : IGI_CHUNK_MIN;
            if (arena_cur->cap > cap) cap = arena_cur->cap;
            arena_chunk *c = malloc(sizeof(arena_chunk) + cap);
            if (!c) return NULL;
            c->next = n;
            c->cap = cap;
            arena_cur->next = c;
            n = c;
        }
        n->used = 0;
        arena_cur = n;
    }
    void *p = arena_cur->data + arena_cur->used;
    arena_cur->used += nbytes;
    return p;
}

void *igi_scope_alloc(size_t nbytes) {
    if (!scope_top) return NULL;
    return arena_alloc(nbytes);
}

bool igi_scope_active(void) { return scope_top != NULL && heap_mode == 0; }

void igi_scope_track(ig_tensor *t) {
    IG_ASSERT(scope_top != NULL && t->scoped);
    t->next = scope_top->tensors;
    scope_top->tensors = t;
}

ig_tensor *igi_scope_newest(void) { return scope_top ? scope_top->tensors : NULL; }

/* Handle bits of a fresh serial: nonzero, 16-byte aligned, unlike any handed out before
 * (see the top of the file for 32-bit uintptr_t). */
static uintptr_t new_handle(void) {
    for (;;) {
        uint_fast64_t serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed);
        uintptr_t h = (uintptr_t)(serial << 4);
        if (h != 0) return h;
    }
}

ig_scope *ig_scope_begin(void) {
    arena_chunk *mark_chunk = arena_cur;
    size_t mark_used = arena_cur ? arena_cur->used : 0;
    scope_rec *r = arena_alloc(sizeof *r);
    if (!r) {
        igi_error(IG_ERR_NOMEM, "ig_scope_begin: out of memory");
        return NULL;
    }
    r->parent = scope_top;
    r->mark_chunk = mark_chunk ? mark_chunk : arena_first;
    r->mark_used = mark_used;
    r->tensors = NULL;
    r->handle = new_handle();
    scope_top = r;
    return (ig_scope *)r->handle;
}

ig_status ig_scope_end(ig_scope *s) {
    if (!s) return igi_error_null("ig_scope_end", "scope");
    uintptr_t h = (uintptr_t)s;
    scope_rec *p = scope_top;
    while (p && p->handle != h) p = p->parent;
    if (!p) return igi_error(IG_ERR_STATE, "ig_scope_end: scope is not open on this thread");
    /* End inner scopes left open, then p itself. */
    for (;;) {
        scope_rec *top = scope_top;
        for (ig_tensor *t = top->tensors; t; t = t->next) igi_tensor_finalize(t);
        scope_top = top->parent;
        arena_cur = top->mark_chunk;
        if (arena_cur) arena_cur->used = top->mark_used;
        if (top == p) break;
    }
    return IG_OK;
}
