/*
 * dist/dist.h — data-parallel training across processes: a process group over MPI (or a
 * single process), collectives on tensors, and a data-parallel wrapper that averages
 * gradients in buckets while backward is still running.
 *
 * The process group is detected from the launcher's environment: under `mpirun` (OpenMPI's
 * OMPI_COMM_WORLD_* variables, or PMI/PMIx ones) it initialises MPI; otherwise it is a
 * single process and every collective is a no-op. A build without MPI has only the single
 * backend and fails clearly when launched by mpirun with more than one rank. IGNIS_DIST
 * (single, mpi, nccl) overrides the choice. The nccl backend (builds with CUDA, MPI and
 * NCCL) moves device memory over NCCL, one GPU per process (the local rank's), and host
 * memory over MPI.
 *
 * Failures never hang: a collective that does not complete within the group's timeout
 * reports an error naming the operation; the library never calls MPI_Abort (the caller
 * decides, e.g. `ignis train` aborts the job with a message naming the rank).
 */
#ifndef IGNIS_DIST_DIST_H
#define IGNIS_DIST_DIST_H

#include "../core/tensor.h"
#include "../nn/nn.h"
#include "../optim/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_dist ig_dist;
typedef struct ig_ddp ig_ddp;

/* Joins the process group (MPI_Init_thread when launched by mpirun). argc/argv may be
 * NULL. Returns NULL with an error if MPI was detected but cannot start. */
IG_API ig_dist *ig_dist_init(int *argc, char ***argv);
/* Leaves the group (MPI_Finalize) and frees d. NULL is a no-op. */
IG_API void ig_dist_finalize(ig_dist *d);
IG_API int ig_dist_rank(const ig_dist *d);
IG_API int ig_dist_world_size(const ig_dist *d);
IG_API int ig_dist_local_rank(const ig_dist *d);
/* "single", "mpi" or "nccl". */
IG_API const char *ig_dist_backend(const ig_dist *d);
/* Seconds a collective may take before it fails (default 300; IGNIS_DIST_TIMEOUT). */
IG_API void ig_dist_set_timeout(ig_dist *d, double seconds);
/* Ends the whole job from any rank after a fatal error (MPI_Abort with code); for tools.
 * In a single-process group it returns (there is nothing else to stop): the caller then
 * exits with code itself. */
IG_API void ig_dist_abort(ig_dist *d, int code);

/* In-place sum over ranks of a contiguous tensor (f32, f64, i32, i64): on the CPU, or on
 * the GPU with the nccl backend. */
IG_API ig_status ig_dist_all_reduce_sum(ig_dist *d, ig_tensor *t);
/* Sum over ranks of n doubles, in place (metrics: loss sums, counts). */
IG_API ig_status ig_dist_all_reduce_doubles(ig_dist *d, double *vals, int n);
/* Copies root's t into every rank's t (same shape and dtype everywhere). */
IG_API ig_status ig_dist_broadcast(ig_dist *d, ig_tensor *t, int root);
IG_API ig_status ig_dist_barrier(ig_dist *d);
/* Fails on every rank (IG_ERR_STATE, naming `what` and the first rank that differs) unless
 * all ranks passed the same bytes. Compares a 64-bit hash. */
IG_API ig_status ig_dist_check_same(ig_dist *d, const void *bytes, size_t n, const char *what);

/* ---- data parallel ------------------------------------------------------------------------ */

typedef struct ig_ddp_opts {
    int64_t bucket_bytes;       /* default (0) 25 MiB */
    int64_t first_bucket_bytes; /* default (0) 1 MiB: the first bucket starts early */
    bool sync_bn;               /* all-reduce BatchNorm batch statistics (default: per rank) */
    bool no_overlap;            /* start all reductions only at ig_ddp_step (for measuring) */
} ig_ddp_opts;

/* Wraps model m (flattened here if needed) and optimizer o (built on m's flat parameters)
 * for data-parallel training: broadcasts parameters and buffers from rank 0, checks that
 * every rank built the same model (names, shapes, dtypes) and fails fast if not, and
 * installs gradient hooks so each bucket of the flat gradient buffer is all-reduced as soon
 * as its gradients are final during backward. opts may be NULL. Neither m nor o is owned:
 * free the wrapper before them. Buckets cover the parameters in reverse order (the last
 * layers' gradients are final first); a parameter is never split. Call ig_ddp_step after
 * each ig_backward (one backward per step: accumulating over several is an error). A
 * failed collective (timeout) leaves the group unusable: end the job (ig_dist_abort). */
IG_API ig_ddp *ig_ddp_new(ig_dist *d, ig_module *m, ig_optimizer *o, const ig_ddp_opts *opts);
/* After ig_backward: waits for every bucket (starting any not yet started, always in the
 * same order on every rank), divides by the world size, then runs ig_optim_step. */
IG_API ig_status ig_ddp_step(ig_ddp *p);
/* The same with dynamic loss scaling (optim/optim.h): after the averaging, the optimizer
 * steps through ig_grad_scaler_step(s, ...), which may skip it (every rank sees the same
 * averaged gradients, so every rank decides alike). s NULL: exactly ig_ddp_step. */
IG_API ig_status ig_ddp_step_scaled(ig_ddp *p, ig_grad_scaler *s);
/* Makes buffers (BatchNorm running stats) identical on all ranks (average; counters from
 * rank 0), e.g. before a checkpoint. */
IG_API ig_status ig_ddp_sync_buffers(ig_ddp *p);
IG_API void ig_ddp_free(ig_ddp *p);

#ifdef __cplusplus
}
#endif

#endif
