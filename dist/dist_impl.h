/*
 * dist/dist_impl.h — the inside of a process group, shared by the dist/ sources and the
 * tests. Never installed.
 *
 * A process group (struct ig_dist) is a backend table plus that backend's state. Backends:
 * "single" (dist/single.c: one process, every collective a no-op), "mpi" (dist/mpi.c,
 * only in builds with IGNIS_WITH_MPI) and "nccl" (cuda/nccl.c, only in builds with
 * IGNIS_WITH_NCCL: CUDA and NCCL; MPI for more than one process). The nccl table moves device (CUDA) buffers over
 * NCCL and hands host buffers to a host group inside it (mpi, or single for one process):
 * its nonblocking all-reduce runs on a communication stream, and its wait makes the
 * compute stream wait for it (no host synchronisation); a watchdog thread aborts the NCCL
 * communicator when an operation outlives the timeout or NCCL reports an error.
 *
 * Rules every backend keeps:
 *  - Blocking collectives (all_reduce_sum, broadcast, all_gather_u64, barrier) are issued
 *    by every member in the same order, and so are nonblocking all-reduces among
 *    themselves; the two kinds go over separate channels (two communicators for MPI), so a
 *    blocking collective may overtake a pending nonblocking one (sync BatchNorm inside
 *    backward, while gradient buckets are in flight).
 *  - Nothing waits forever: every wait gives up after the group's timeout (d->timeout
 *    seconds) with IG_ERR_STATE and a message naming the operation. The request is then
 *    abandoned (a collective cannot be cancelled): the caller must end the job.
 *  - Backends set errors with igi_error and never abort by themselves (abort does, for
 *    tools that decide to end the job).
 *  - Called from the thread that called ig_dist_init only (MPI_THREAD_FUNNELED).
 */
#ifndef IGNIS_DIST_DIST_IMPL_H
#define IGNIS_DIST_DIST_IMPL_H

#include <stdint.h>

#include "../core/tensor_impl.h"
#include "dist.h"

/* A nonblocking operation's handle: backend-specific state (MPI: a ring all-reduce's
 * progress and its two requests; later a CUDA event) stored in place, plus scratch memory
 * the backend may attach on first use and reuse, so a started operation allocates nothing
 * in the steady state. Zero-initialise it; release it with req_release. */
typedef struct igi_dist_req {
    _Alignas(16) unsigned char opaque[128];
    void *scratch;
    size_t scratch_bytes;
    bool active; /* started and not yet completed */
} igi_dist_req;

typedef struct igi_dist_backend {
    const char *name;
    /* Whether buffers may be device (CUDA) memory as well as host memory (nccl). Without
     * it every buffer must be host memory. */
    bool device_buffers;
    /* Fills d->rank, d->world, d->local_rank and d->impl. On failure sets an error and
     * leaves nothing to finalize. */
    ig_status (*init)(ig_dist *d, int *argc, char ***argv);
    /* In-place sum over the group of count elements of dt at buf (blocking). */
    ig_status (*all_reduce_sum)(ig_dist *d, void *buf, int64_t count, ig_dtype dt, const char *what);
    /* Starts an in-place sum of buf (count elements of dt, count <= INT32_MAX); buf must
     * not be touched until the wait. */
    ig_status (*iall_reduce_start)(ig_dist *d, void *buf, int64_t count, ig_dtype dt, igi_dist_req *req,
                                   const char *what);
    /* Drives progress without blocking; true when req has completed (or is not active). */
    bool (*iall_reduce_test)(ig_dist *d, igi_dist_req *req);
    /* Blocks until req has completed, up to the group's timeout. Not active: IG_OK. */
    ig_status (*iall_reduce_wait)(ig_dist *d, igi_dist_req *req, const char *what);
    /* Frees what req holds (scratch); req must not be active. */
    void (*req_release)(ig_dist *d, igi_dist_req *req);
    /* Copies root's nbytes at buf to every member's buf. */
    ig_status (*broadcast)(ig_dist *d, void *buf, int64_t nbytes, int root, const char *what);
    /* all[r] = member r's mine (all holds world entries). */
    ig_status (*all_gather_u64)(ig_dist *d, uint64_t mine, uint64_t *all, const char *what);
    ig_status (*barrier)(ig_dist *d, const char *what);
    /* Ends every member's process with code (MPI: does not return; single: returns). */
    void (*abort)(ig_dist *d, int code);
    /* Releases d->impl and leaves the group. */
    void (*finalize)(ig_dist *d);
} igi_dist_backend;

struct ig_dist {
    const igi_dist_backend *be;
    int rank, world, local_rank;
    double timeout; /* seconds a wait may take */
    void *impl;     /* the backend's state */
};

extern const igi_dist_backend igi_dist_backend_single;
#ifdef IGNIS_WITH_MPI
extern const igi_dist_backend igi_dist_backend_mpi;
#endif
#ifdef IGNIS_WITH_NCCL
extern const igi_dist_backend igi_dist_backend_nccl;
/* Turns the group d (single or mpi, already joined) into an nccl group over the same
 * processes, for tools that learn only after ig_dist_init that the model goes to the GPU
 * (`ignis train --device cuda`): every member must call it, in the same order as the
 * other collectives. Picks this process's GPU (local rank modulo the visible devices)
 * before anything else uses CUDA, broadcasts rank 0's ncclUniqueId over d and creates the
 * communicator. On failure d is left as it was, with the error set (naming nccl and the
 * cause). An nccl group: IG_OK. */
ig_status igi_dist_use_nccl(ig_dist *d);
#endif

/* The backend named by IGNIS_DIST ("single", "mpi", "nccl"), or NULL when it is unset or
 * empty (then the launcher's environment decides). An unknown name, or one this build
 * lacks, sets an error naming op and returns NULL with *bad set. */
const igi_dist_backend *igi_dist_backend_from_env(const char *op, bool *bad);

/* Whether the environment says an MPI launcher started this process: OpenMPI's
 * OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK, or PMI's PMI_SIZE / PMI_RANK. *world gets the
 * launcher's world size when it says (else -1). */
bool igi_dist_launched(int *world);

/* 64-bit FNV-1a over n bytes, continuing from h (start with IGI_FNV_OFFSET). */
#define IGI_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t igi_fnv1a64(uint64_t h, const void *bytes, size_t n);

/* ig_dist_check_same with the calling function's name for messages. */
ig_status igi_dist_check_same(ig_dist *d, const void *bytes, size_t n, const char *op, const char *what);

/* ---- data parallel internals (dist/ddp.c), exposed for tests ----------------------------- */

/* The bucket plan: n parameters laid out in flat order (numel[i] elements of elem_size
 * bytes, contiguous), walked from the last to the first (backward makes the last layers'
 * gradients final first). A bucket is closed before a parameter that would take it past
 * its cap (first_bytes for bucket 0, bucket_bytes after it); a parameter larger than the
 * cap gets a bucket of its own; parameters are never split. bucket_of[i] receives
 * parameter i's bucket (bucket 0 holds parameter n-1). Returns the number of buckets. */
int igi_ddp_plan(const int64_t *numel, int n, size_t elem_size, int64_t first_bytes, int64_t bucket_bytes,
                 int *bucket_of);
int igi_ddp_num_buckets(const ig_ddp *p);
/* Bucket k's slice of the flat gradient buffer (elements). */
void igi_ddp_bucket_range(const ig_ddp *p, int k, int64_t *offset, int64_t *numel);
/* How many buckets have been started since the last step (for tests of the overlap). */
int igi_ddp_num_started(const ig_ddp *p);

#endif
