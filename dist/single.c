/*
 * dist/single.c — the single-process backend: rank 0 of a group of one. Every collective
 * is the identity (a sum or broadcast over one member leaves the data as it is), so code
 * written for data-parallel training runs unchanged without a launcher.
 */
#include <stdio.h>

#include "dist_impl.h"

static ig_status single_init(ig_dist *d, int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    d->rank = 0;
    d->world = 1;
    d->local_rank = 0;
    d->impl = NULL;
    return IG_OK;
}

static ig_status single_all_reduce_sum(ig_dist *d, void *buf, int64_t count, ig_dtype dt, const char *what) {
    (void)d, (void)buf, (void)count, (void)dt, (void)what;
    return IG_OK;
}

static ig_status single_iall_reduce_start(ig_dist *d, void *buf, int64_t count, ig_dtype dt, igi_dist_req *req,
                                          const char *what) {
    (void)d, (void)buf, (void)count, (void)dt, (void)what;
    req->active = false; /* already complete */
    return IG_OK;
}

static bool single_iall_reduce_test(ig_dist *d, igi_dist_req *req) {
    (void)d;
    req->active = false;
    return true;
}

static ig_status single_iall_reduce_wait(ig_dist *d, igi_dist_req *req, const char *what) {
    (void)d, (void)what;
    req->active = false;
    return IG_OK;
}

static void single_req_release(ig_dist *d, igi_dist_req *req) {
    (void)d;
    free(req->scratch);
    req->scratch = NULL;
    req->scratch_bytes = 0;
}

static ig_status single_broadcast(ig_dist *d, void *buf, int64_t nbytes, int root, const char *what) {
    (void)d, (void)buf, (void)nbytes, (void)root, (void)what;
    return IG_OK;
}

static ig_status single_all_gather_u64(ig_dist *d, uint64_t mine, uint64_t *all, const char *what) {
    (void)d, (void)what;
    all[0] = mine;
    return IG_OK;
}

static ig_status single_barrier(ig_dist *d, const char *what) {
    (void)d, (void)what;
    return IG_OK;
}

/* One process: nothing else to stop; the caller exits (only tools/ may). */
static void single_abort(ig_dist *d, int code) {
    (void)d, (void)code;
}

static void single_finalize(ig_dist *d) { (void)d; }

const igi_dist_backend igi_dist_backend_single = {
    .name = "single",
    .init = single_init,
    .all_reduce_sum = single_all_reduce_sum,
    .iall_reduce_start = single_iall_reduce_start,
    .iall_reduce_test = single_iall_reduce_test,
    .iall_reduce_wait = single_iall_reduce_wait,
    .req_release = single_req_release,
    .broadcast = single_broadcast,
    .all_gather_u64 = single_all_gather_u64,
    .barrier = single_barrier,
    .abort = single_abort,
    .finalize = single_finalize,
};
