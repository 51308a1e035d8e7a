/*
 * cuda/nccl.c — the "nccl" backend of dist/ (built with IGNIS_WITH_NCCL: CUDA and NCCL
 * found by make; with MPI, several processes, without it one). C, compiled by $(CC) against the CUDA and NCCL headers; it reaches dist/
 * through igi_dist_backend_nccl (dist_impl.h) and the CUDA backend through core's table
 * and igi_cuda_stream.
 *
 * A group is two layers: a host group (mpi under a launcher, else single) that carries
 * everything on host memory (metrics, hashes, barriers, rank 0's ncclUniqueId), and an
 * NCCL communicator that carries device memory (gradients, parameters, buffers of a model
 * on the GPU). Every operation looks at its pointer (cudaPointerGetAttributes) and picks
 * the layer, so ig_ddp works unchanged whichever side the model lives on.
 *
 * Set-up, the same steps on every rank, each step ending with an all-gather of "did it
 * work" over the host group so one rank's failure fails all ranks at once instead of
 * leaving them waiting: load libnccl.so.2 (dlopen, as cuBLAS: CPU-only processes never
 * pay for it), select the GPU (local rank modulo the visible devices, cudaSetDevice
 * BEFORE the CUDA backend creates its stream and before NCCL), rank 0's ncclGetUniqueId
 * broadcast over the host group, then ncclCommInitRankConfig as a nonblocking
 * communicator, so the wait for the other ranks is a bounded poll.
 *
 * Streams: kernels run on the CUDA backend's compute stream; NCCL runs on a communication
 * stream of its own. A nonblocking all-reduce records an event on the compute stream (the
 * bucket's gradients are final once the work issued so far has run), makes the
 * communication stream wait for it, enqueues ncclAllReduce (sum, in place) and records a
 * completion event; test is cudaEventQuery; wait makes the compute stream wait for the
 * completion event, so the optimizer step queued after it is ordered without the host
 * ever blocking. Blocking operations on device memory (broadcast, all-reduce) do the same
 * and then poll the completion event on the host, up to the group's timeout.
 *
 * Never a hang: since nothing on the host waits for a nonblocking all-reduce, a watchdog
 * thread polls every in-flight one (and ncclCommGetAsyncError) every 20 ms; one that
 * outlives the group's timeout, or an NCCL error, makes it call ncclCommAbort, which also
 * ends NCCL kernels stuck waiting for a dead peer (so a host copy queued behind them
 * returns). From then on every operation fails with IG_ERR_STATE naming itself and the
 * cause, and the caller ends the job (dist_impl.h's rules). The lock serialises every use
 * of the communicator with the watchdog's abort.
 */
#ifdef IGNIS_WITH_NCCL

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/backend_impl.h"
#include "../dist/dist_impl.h"

/* ---- the library --------------------------------------------------------------------- */

/* The NCCL entry points ignis uses, resolved from the dlopen'ed library. */
static struct {
    ncclResult_t (*get_unique_id)(ncclUniqueId *id);
    ncclResult_t (*comm_init_rank_config)(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank,
                                          ncclConfig_t *config);
    ncclResult_t (*all_reduce)(const void *send, void *recv, size_t count, ncclDataType_t dt, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream);
    ncclResult_t (*broadcast)(const void *send, void *recv, size_t count, ncclDataType_t dt, int root,
                              ncclComm_t comm, cudaStream_t stream);
    ncclResult_t (*get_async_error)(ncclComm_t comm, ncclResult_t *err);
    ncclResult_t (*comm_abort)(ncclComm_t comm);
    ncclResult_t (*comm_finalize)(ncclComm_t comm);
    ncclResult_t (*comm_destroy)(ncclComm_t comm);
    const char *(*error_string)(ncclResult_t r);
    const char *(*last_error)(ncclComm_t comm);
} nc;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static bool nccl_loaded;

#define NCCL_STR_(x) #x
#define NCCL_STR(x) NCCL_STR_(x)
#define NCCL_SONAME "libnccl.so." NCCL_STR(NCCL_MAJOR)

/* Opens NCCL and resolves nc: from $IGNIS_CUDA_LIBDIR only when that is set, else from the
 * folder the build found it in, then by soname on the loader's path. On failure a message
 * naming the library in msg and IG_ERR_DEVICE. */
static ig_status load_nccl(char *msg, size_t cap) {
    pthread_mutex_lock(&load_lock);
    if (nccl_loaded) {
        pthread_mutex_unlock(&load_lock);
        return IG_OK;
    }
    char env_path[1024] = "";
    const char *env_dir = getenv("IGNIS_CUDA_LIBDIR");
    const char *names[3];
    int n = 0;
    if (env_dir && *env_dir) {
        snprintf(env_path, sizeof env_path, "%s/%s", env_dir, NCCL_SONAME);
        names[n++] = env_path;
    } else {
#ifdef IGNIS_NCCL_LIBDIR
        names[n++] = IGNIS_NCCL_LIBDIR "/" NCCL_SONAME;
#endif
        names[n++] = NCCL_SONAME;
    }
    void *lib = NULL;
    const char *why = NULL;
    for (int i = 0; i < n && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) why = dlerror();
    }
    if (!lib) {
        snprintf(msg, cap, "cannot load NCCL (%s%s%s): %s", NCCL_SONAME, env_path[0] ? " from IGNIS_CUDA_LIBDIR=" : "",
                 env_path[0] ? env_dir : "", why ? why : "not found");
        pthread_mutex_unlock(&load_lock);
        return IG_ERR_DEVICE;
    }
    struct {
        void *slot;
        size_t size;
        const char *name;
    } syms[] = {
        {&nc.get_unique_id, sizeof nc.get_unique_id, "ncclGetUniqueId"},
        {&nc.comm_init_rank_config, sizeof nc.comm_init_rank_config, "ncclCommInitRankConfig"},
        {&nc.all_reduce, sizeof nc.all_reduce, "ncclAllReduce"},
        {&nc.broadcast, sizeof nc.broadcast, "ncclBroadcast"},
        {&nc.get_async_error, sizeof nc.get_async_error, "ncclCommGetAsyncError"},
        {&nc.comm_abort, sizeof nc.comm_abort, "ncclCommAbort"},
        {&nc.comm_finalize, sizeof nc.comm_finalize, "ncclCommFinalize"},
        {&nc.comm_destroy, sizeof nc.comm_destroy, "ncclCommDestroy"},
        {&nc.error_string, sizeof nc.error_string, "ncclGetErrorString"},
        {&nc.last_error, sizeof nc.last_error, "ncclGetLastError"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *sym = dlsym(lib, syms[i].name);
        if (!sym) {
            snprintf(msg, cap, "NCCL (%s) lacks %s (NCCL 2.14 or newer is needed)", NCCL_SONAME, syms[i].name);
            dlclose(lib);
            pthread_mutex_unlock(&load_lock);
            return IG_ERR_DEVICE;
        }
        /* POSIX: a data pointer from dlsym holds a function's address; copy its bytes into
         * the function pointer (ISO C has no conversion between the two). */
        memcpy(syms[i].slot, &sym, syms[i].size);
    }
    nccl_loaded = true; /* the library stays loaded for the life of the process */
    pthread_mutex_unlock(&load_lock);
    return IG_OK;
}

/* ---- state --------------------------------------------------------------------------- */

/* Most nonblocking all-reduces the watchdog follows at once (a model's gradient buckets). */
#define MAX_WATCHED 256

/* A nonblocking all-reduce, stored in igi_dist_req.opaque. */
typedef struct nccl_req {
    cudaEvent_t ready; /* on the compute stream: the buffer is final */
    cudaEvent_t done;  /* on the communication stream: the all-reduce has finished */
    const char *what;  /* the caller's name for it (lives as long as the request) */
    double t_start;    /* when it was issued (monotonic seconds) */
    bool events;       /* ready and done exist */
    bool watched;      /* issued and not yet seen complete by the watchdog */
    bool registered;   /* in the watchdog's list */
} nccl_req;

_Static_assert(sizeof(nccl_req) <= sizeof(((igi_dist_req *)0)->opaque), "an nccl_req fits igi_dist_req");

typedef struct nccl_state {
    ig_dist host;               /* the host group (mpi or single) for host memory */
    ncclComm_t comm;            /* NULL after an abort */
    cudaStream_t compute;       /* the CUDA backend's stream (not owned) */
    cudaStream_t comm_stream;   /* NCCL's */
    cudaEvent_t sync_ready, sync_done; /* for blocking operations on device memory */
    int device;
    pthread_mutex_t lock;       /* guards everything below and every call on comm */
    pthread_cond_t wake;
    pthread_t watchdog;
    bool watchdog_running, stop;
    bool failed;                /* the communicator was aborted; failure says why */
    char failure[400];
    double timeout;
    nccl_req *watched[MAX_WATCHED];
    int n_watched;
} nccl_state;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Sleeps a little in a wait loop: yields at first, then 0.5 ms naps (no spinning core). */
static void nap(double waited) {
    if (waited < 0.002) {
        sched_yield();
    } else {
        struct timespec t = {0, 500000};
        nanosleep(&t, NULL);
    }
}

/* Aborts the communicator (once) and records why; s->lock held. */
static void fail_locked(nccl_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_locked(nccl_state *s, const char *fmt, ...) {
    if (s->failed) return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure, sizeof s->failure, fmt, ap);
    va_end(ap);
    if (s->comm) nc.comm_abort(s->comm); /* ends NCCL kernels waiting for a peer */
    s->comm = NULL;
}

/* The error every operation returns once the communicator is gone. */
static ig_status aborted(const ig_dist *d, const nccl_state *s, const char *what) {
    return igi_error(IG_ERR_STATE, "%s: the NCCL communicator of rank %d was aborted: %s (end the job)", what,
                     d->rank, s->failure);
}

static ig_status cuda_failed(const ig_dist *d, const char *what, const char *call, cudaError_t e) {
    (void)cudaGetLastError(); /* clears it when not sticky */
    return igi_error(e == cudaErrorMemoryAllocation ? IG_ERR_NOMEM : IG_ERR_DEVICE, "%s: %s failed on rank %d: %s: %s",
                     what, call, d->rank, cudaGetErrorName(e), cudaGetErrorString(e));
}

#define CUDA_TRY(d, what, call)                                                          \
    do {                                                                                 \
        cudaError_t e_ = (call);                                                         \
        if (e_ != cudaSuccess) return cuda_failed((d), (what), #call, e_);               \
    } while (0)

/* Finishes an NCCL call on the nonblocking communicator: r, or when r is ncclInProgress
 * the communicator's state once it is no longer in progress (bounded by the timeout).
 * Any failure aborts the communicator: a group that lost a collective cannot go on.
 * s->lock held (released while napping). */
static ig_status settle_locked(ig_dist *d, nccl_state *s, ncclResult_t r, const char *what, const char *call) {
    double t0 = now_s();
    while (r == ncclInProgress && s->comm) {
        if (nc.get_async_error(s->comm, &r) != ncclSuccess) r = ncclInternalError;
        if (r != ncclInProgress) break;
        double waited = now_s() - t0;
        if (waited > s->timeout) {
            fail_locked(s, "%s: %s still in progress after %.1f s on rank %d of %d (another rank may have failed "
                        "or stopped; IGNIS_DIST_TIMEOUT sets the limit)",
                        what, call, waited, d->rank, d->world);
            return aborted(d, s, what);
        }
        pthread_mutex_unlock(&s->lock);
        nap(waited);
        pthread_mutex_lock(&s->lock);
    }
    if (s->failed) return aborted(d, s, what);
    if (r == ncclSuccess) return IG_OK;
    const char *detail = s->comm ? nc.last_error(s->comm) : NULL;
    fail_locked(s, "%s: %s failed on rank %d: %s%s%s", what, call, d->rank, nc.error_string(r),
                detail && *detail ? ": " : "", detail ? detail : "");
    return igi_error(IG_ERR_DEVICE, "%s", s->failure);
}

/* Whether p is device memory NCCL can move (device or managed); host memory otherwise. */
static bool on_device(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

static ncclDataType_t nccl_type(ig_dtype dt) {
    switch (dt) {
    case IG_F32: return ncclFloat32;
    case IG_F64: return ncclFloat64;
    case IG_I32: return ncclInt32;
    case IG_I64: return ncclInt64;
    default: return ncclUint8;
    }
}

/* The group's timeout may change (ig_dist_set_timeout): every entry point copies it. */
static nccl_state *state_of(ig_dist *d) {
    nccl_state *s = d->impl;
    s->host.timeout = d->timeout;
    pthread_mutex_lock(&s->lock);
    s->timeout = d->timeout;
    pthread_mutex_unlock(&s->lock);
    return s;
}

/* ---- watchdog ---------------------------------------------------------------------------- */

static void watch_scan_locked(ig_dist *d, nccl_state *s) {
    double now = now_s();
    for (int i = 0; i < s->n_watched && !s->failed; i++) {
        nccl_req *q = s->watched[i];
        if (!q->watched) continue;
        cudaError_t e = cudaEventQuery(q->done);
        if (e == cudaSuccess) {
            q->watched = false;
        } else if (e != cudaErrorNotReady) {
            fail_locked(s, "%s: the communication stream failed on rank %d: %s", q->what, d->rank,
                        cudaGetErrorString(e));
        } else if (now - q->t_start > s->timeout) {
            fail_locked(s, "%s: not complete after %.1f s on rank %d of %d (another rank may have failed or "
                        "stopped; IGNIS_DIST_TIMEOUT sets the limit)",
                        q->what, now - q->t_start, d->rank, d->world);
        }
    }
    ncclResult_t ae = ncclSuccess;
    if (!s->failed && s->comm && nc.get_async_error(s->comm, &ae) == ncclSuccess && ae != ncclSuccess &&
        ae != ncclInProgress) {
        const char *detail = nc.last_error(s->comm);
        fail_locked(s, "NCCL reported an asynchronous error on rank %d: %s%s%s", d->rank, nc.error_string(ae),
                    detail && *detail ? ": " : "", detail ? detail : "");
    }
}

typedef struct watchdog_arg {
    ig_dist view; /* rank and world, for messages */
    nccl_state *s;
} watchdog_arg;

static void *watchdog_main(void *varg) {
    watchdog_arg *a = varg;
    nccl_state *s = a->s;
    (void)cudaSetDevice(s->device); /* the current device is per thread */
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        watch_scan_locked(&a->view, s);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wake, &s->lock, &until);
    }
    pthread_mutex_unlock(&s->lock);
    free(a);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------------------ */

/* Ends a set-up step on every rank: all-gathers whether each rank's step worked. Returns
 * mine (its message kept) when mine failed; an error naming the first failing rank when
 * another did; IG_OK when all worked. With several ranks, a failure's message also says
 * which ranks failed the step ("2 of 2 ranks could not select its GPU: 0, 1"): under
 * mpirun the first rank to exit ends the others, perhaps before they print, so one
 * surviving message tells the whole story. */
static ig_status agree(ig_dist *d, nccl_state *s, ig_status mine, const char *step, const char *op) {
    char saved[512] = "", who[160] = "";
    if (mine != IG_OK) snprintf(saved, sizeof saved, "%s", ig_last_error());
    uint64_t one[1], *all = d->world == 1 ? one : malloc(sizeof *all * (size_t)d->world);
    if (!all) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    ig_status st = s->host.be->all_gather_u64(&s->host, mine != IG_OK, all, op);
    int bad = -1, nbad = 0;
    size_t len = 0;
    for (int r = 0; r < d->world && st == IG_OK; r++) {
        if (!all[r]) continue;
        if (bad < 0) bad = r;
        if (nbad++ < 8 && len < sizeof who - 16)
            len += (size_t)snprintf(who + len, sizeof who - len, "%s%d", nbad > 1 ? ", " : "", r);
    }
    if (nbad > 8 && len < sizeof who - 8) snprintf(who + len, sizeof who - len, ", ...");
    if (all != one) free(all);
    if (mine != IG_OK && (d->world == 1 || st != IG_OK)) return igi_error(mine, "%s", saved);
    if (mine != IG_OK)
        return igi_error(mine, "%s; %d of %d ranks could not %s: %s", saved, nbad, d->world, step, who);
    if (st != IG_OK) return st;
    if (bad >= 0)
        return igi_error(IG_ERR_STATE, "%s: nccl: %d of %d ranks could not %s: %s (their own messages say why)", op,
                         nbad, d->world, step, who);
    return IG_OK;
}

/* This rank's GPU: local rank modulo the visible devices, made current before the CUDA
 * backend creates its stream; then the communication stream and the events. */
static ig_status select_device(ig_dist *d, nccl_state *s, const char *op) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        (void)cudaGetLastError();
        return igi_error(IG_ERR_DEVICE, "%s: nccl: no CUDA device on rank %d (cudaGetDeviceCount: %s)", op, d->rank,
                         e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    s->device = d->local_rank % n;
    if (igi_backend_peek(IG_CUDA)) {
        int cur = -1;
        if (cudaGetDevice(&cur) == cudaSuccess && cur != s->device)
            return igi_error(IG_ERR_STATE,
                             "%s: nccl: CUDA was already in use on device %d, but local rank %d needs device %d: "
                             "join the process group before anything uses CUDA",
                             op, cur, d->local_rank, s->device);
    }
    CUDA_TRY(d, op, cudaSetDevice(s->device));
    if (!igi_backend_get(op, IG_CUDA)) return ig_last_status();
    s->compute = igi_cuda_stream();
    int lo = 0, hi = 0; /* NCCL's stream gets the highest priority: communication is latency-bound */
    CUDA_TRY(d, op, cudaDeviceGetStreamPriorityRange(&lo, &hi));
    CUDA_TRY(d, op, cudaStreamCreateWithPriority(&s->comm_stream, cudaStreamNonBlocking, hi));
    CUDA_TRY(d, op, cudaEventCreateWithFlags(&s->sync_ready, cudaEventDisableTiming));
    CUDA_TRY(d, op, cudaEventCreateWithFlags(&s->sync_done, cudaEventDisableTiming));
    return IG_OK;
}

/* Rank 0's ncclUniqueId to every rank over the host group, with whether rank 0 made one. */
static ig_status share_id(ig_dist *d, nccl_state *s, ncclUniqueId *id, const char *op) {
    struct {
        uint64_t ok;
        ncclUniqueId id;
    } msg;
    memset(&msg, 0, sizeof msg);
    char why[400] = "";
    if (d->rank == 0) {
        ncclResult_t r = nc.get_unique_id(&msg.id);
        msg.ok = r == ncclSuccess;
        if (!msg.ok) snprintf(why, sizeof why, "%s", nc.error_string(r));
    }
    ig_status st = s->host.be->broadcast(&s->host, &msg, (int64_t)sizeof msg, 0, op);
    if (st != IG_OK) return st;
    if (!msg.ok)
        return igi_error(IG_ERR_DEVICE, "%s: nccl: ncclGetUniqueId failed on rank 0%s%s", op, why[0] ? ": " : "",
                         why);
    *id = msg.id;
    return IG_OK;
}

/* ncclCommInitRankConfig as a nonblocking communicator, waited for up to the timeout. */
static ig_status create_comm(ig_dist *d, nccl_state *s, ncclUniqueId id, const char *op) {
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    pthread_mutex_lock(&s->lock);
    ncclResult_t r = nc.comm_init_rank_config(&s->comm, d->world, id, d->rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) {
        const char *detail = s->comm ? nc.last_error(s->comm) : NULL;
        ig_status st = igi_error(IG_ERR_DEVICE, "%s: nccl: ncclCommInitRankConfig failed on rank %d: %s%s%s", op,
                                 d->rank, nc.error_string(r), detail && *detail ? ": " : "", detail ? detail : "");
        if (s->comm) nc.comm_abort(s->comm);
        s->comm = NULL;
        pthread_mutex_unlock(&s->lock);
        return st;
    }
    ig_status st = settle_locked(d, s, r, op, "ncclCommInitRankConfig");
    pthread_mutex_unlock(&s->lock);
    return st;
}

static nccl_state *state_new(void) {
    nccl_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    return s;
}

/* Stops and joins the watchdog thread if it runs. */
static void watchdog_stop(nccl_state *s) {
    if (!s->watchdog_running) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->watchdog, NULL);
    s->watchdog_running = false;
}

/* Releases what set-up made (not the host group); s may be half built. */
static void state_free(nccl_state *s) {
    if (!s) return;
    watchdog_stop(s);
    if (s->comm) nc.comm_abort(s->comm);
    if (s->sync_ready) cudaEventDestroy(s->sync_ready);
    if (s->sync_done) cudaEventDestroy(s->sync_done);
    if (s->comm_stream) cudaStreamDestroy(s->comm_stream);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Everything after the host group: d's rank, world and local rank are set. */
static ig_status nccl_setup(ig_dist *d, nccl_state *s, const char *op) {
    s->timeout = d->timeout;
    s->host.timeout = d->timeout;
    char msg[480] = "";
    ig_status st = load_nccl(msg, sizeof msg);
    if (st != IG_OK) igi_error(st, "%s: nccl: %s", op, msg);
    if ((st = agree(d, s, st, "load NCCL", op)) != IG_OK) return st;
    if ((st = agree(d, s, select_device(d, s, op), "select its GPU", op)) != IG_OK) return st;
    ncclUniqueId id;
    if ((st = share_id(d, s, &id, op)) != IG_OK) return st;
    if ((st = agree(d, s, create_comm(d, s, id, op), "create its NCCL communicator", op)) != IG_OK) return st;
    watchdog_arg *a = malloc(sizeof *a);
    if (!a) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    *a = (watchdog_arg){.view = *d, .s = s};
    if (pthread_create(&s->watchdog, NULL, watchdog_main, a) != 0) {
        free(a);
        return igi_error(IG_ERR_STATE, "%s: nccl: cannot start the watchdog thread", op);
    }
    s->watchdog_running = true;
    return IG_OK;
}

static ig_status nccl_init(ig_dist *d, int *argc, char ***argv) {
    const char *op = "ig_dist_init";
    nccl_state *s = state_new();
    if (!s) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    int world = -1;
#ifdef IGNIS_WITH_MPI
    s->host.be = igi_dist_launched(&world) ? &igi_dist_backend_mpi : &igi_dist_backend_single;
#else
    /* Without MPI nothing can carry rank 0's ncclUniqueId to other processes: one process
     * (a single-GPU job, or a launcher's world of 1) is all this build can run. */
    if (igi_dist_launched(&world) && world != 1) {
        state_free(s);
        return igi_error(IG_ERR_DEVICE,
                         "%s: nccl: started by an MPI launcher (%d processes) but this ignis was built without MPI, "
                         "which carries rank 0's NCCL id to the others: rebuild with MPI installed (make MPI=1) or "
                         "run one process",
                         op, world);
    }
    s->host.be = &igi_dist_backend_single;
#endif
    s->host.timeout = d->timeout;
    ig_status st = s->host.be->init(&s->host, argc, argv);
    if (st != IG_OK) {
        state_free(s);
        return st;
    }
    d->rank = s->host.rank;
    d->world = s->host.world;
    d->local_rank = s->host.local_rank;
    if ((st = nccl_setup(d, s, op)) != IG_OK) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", ig_last_error());
        ig_dist host = s->host;
        state_free(s);
        host.be->finalize(&host); /* leaves nothing to finalize, as init promises */
        return igi_error(st, "%s", keep);
    }
    d->impl = s;
    return IG_OK;
}

/* ---- collectives ------------------------------------------------------------------------- */

/* A blocking NCCL operation on device memory (all-reduce sum when root < 0, else a
 * broadcast from root): ordered after the compute stream's work, then polled on the host
 * until done, an error, or the timeout. */
static ig_status device_blocking(ig_dist *d, nccl_state *s, void *buf, size_t count, ncclDataType_t dt, int root,
                                 const char *what) {
    pthread_mutex_lock(&s->lock);
    if (s->failed) {
        pthread_mutex_unlock(&s->lock);
        return aborted(d, s, what);
    }
    ig_status st = IG_OK;
    cudaError_t e = cudaEventRecord(s->sync_ready, s->compute);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(s->comm_stream, s->sync_ready, 0);
    if (e != cudaSuccess) st = cuda_failed(d, what, "cudaEventRecord/cudaStreamWaitEvent", e);
    if (st == IG_OK) {
        ncclResult_t r = root < 0 ? nc.all_reduce(buf, buf, count, dt, ncclSum, s->comm, s->comm_stream)
                                  : nc.broadcast(buf, buf, count, dt, root, s->comm, s->comm_stream);
        st = settle_locked(d, s, r, what, root < 0 ? "ncclAllReduce" : "ncclBroadcast");
    }
    if (st == IG_OK && (e = cudaEventRecord(s->sync_done, s->comm_stream)) != cudaSuccess)
        st = cuda_failed(d, what, "cudaEventRecord", e);
    double t0 = now_s();
    while (st == IG_OK) {
        if (s->failed) {
            st = aborted(d, s, what);
            break;
        }
        e = cudaEventQuery(s->sync_done);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady) {
            st = cuda_failed(d, what, "cudaEventQuery", e);
            break;
        }
        double waited = now_s() - t0;
        if (waited > s->timeout) {
            fail_locked(s, "%s: not complete after %.1f s on rank %d of %d (another rank may have failed or "
                        "stopped; IGNIS_DIST_TIMEOUT sets the limit)",
                        what, waited, d->rank, d->world);
            st = aborted(d, s, what);
            break;
        }
        pthread_mutex_unlock(&s->lock); /* the watchdog may report an NCCL error meanwhile */
        nap(waited);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

static ig_status nccl_all_reduce_sum(ig_dist *d, void *buf, int64_t count, ig_dtype dt, const char *what) {
    nccl_state *s = state_of(d);
    if (count <= 0 || !on_device(buf)) return s->host.be->all_reduce_sum(&s->host, buf, count, dt, what);
    return device_blocking(d, s, buf, (size_t)count, nccl_type(dt), -1, what);
}

static ig_status nccl_broadcast(ig_dist *d, void *buf, int64_t nbytes, int root, const char *what) {
    nccl_state *s = state_of(d);
    if (nbytes <= 0 || !on_device(buf)) return s->host.be->broadcast(&s->host, buf, nbytes, root, what);
    return device_blocking(d, s, buf, (size_t)nbytes, ncclUint8, root, what);
}

static nccl_req *req_of(igi_dist_req *req) { return (nccl_req *)(void *)req->opaque; }

static ig_status nccl_iall_reduce_start(ig_dist *d, void *buf, int64_t count, ig_dtype dt, igi_dist_req *req,
                                        const char *what) {
    nccl_state *s = state_of(d);
    nccl_req *q = req_of(req);
    req->active = false;
    if (count == 0) return s->failed ? aborted(d, s, what) : IG_OK;
    if (!on_device(buf))
        return igi_error(IG_ERR_DEVICE,
                         "%s: the nccl backend reduces gradients in device memory only (a model on the CPU: use "
                         "the mpi backend)",
                         what);
    pthread_mutex_lock(&s->lock);
    ig_status st = IG_OK;
    cudaError_t e = cudaSuccess;
    if (s->failed) st = aborted(d, s, what);
    if (st == IG_OK && !q->events) { /* first use: the request's events, kept for the next */
        memset(q, 0, sizeof *q);
        e = cudaEventCreateWithFlags(&q->ready, cudaEventDisableTiming);
        if (e == cudaSuccess && (e = cudaEventCreateWithFlags(&q->done, cudaEventDisableTiming)) != cudaSuccess)
            cudaEventDestroy(q->ready);
        if (e != cudaSuccess) st = cuda_failed(d, what, "cudaEventCreateWithFlags", e);
        else q->events = true;
        if (st == IG_OK && s->n_watched < MAX_WATCHED) {
            s->watched[s->n_watched++] = q;
            q->registered = true;
        }
    }
    if (st == IG_OK && ((e = cudaEventRecord(q->ready, s->compute)) != cudaSuccess ||
                        (e = cudaStreamWaitEvent(s->comm_stream, q->ready, 0)) != cudaSuccess))
        st = cuda_failed(d, what, "cudaEventRecord/cudaStreamWaitEvent", e);
    if (st == IG_OK)
        st = settle_locked(d, s, nc.all_reduce(buf, buf, (size_t)count, nccl_type(dt), ncclSum, s->comm, s->comm_stream),
                           what, "ncclAllReduce");
    if (st == IG_OK && (e = cudaEventRecord(q->done, s->comm_stream)) != cudaSuccess)
        st = cuda_failed(d, what, "cudaEventRecord", e);
    if (st == IG_OK) {
        q->what = what;
        q->t_start = now_s();
        q->watched = q->registered;
        req->active = true;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

static bool nccl_iall_reduce_test(ig_dist *d, igi_dist_req *req) {
    (void)d;
    if (!req->active) return true;
    cudaError_t e = cudaEventQuery(req_of(req)->done);
    if (e == cudaSuccess) {
        req->active = false;
        return true;
    }
    return false; /* not ready, or an error the wait reports */
}

static ig_status nccl_iall_reduce_wait(ig_dist *d, igi_dist_req *req, const char *what) {
    nccl_state *s = state_of(d);
    pthread_mutex_lock(&s->lock);
    ig_status st = IG_OK;
    if (s->failed) {
        st = aborted(d, s, what);
    } else if (req->active) {
        /* The compute stream waits; the host goes on (the watchdog bounds the wait). */
        cudaError_t e = cudaStreamWaitEvent(s->compute, req_of(req)->done, 0);
        if (e != cudaSuccess) st = cuda_failed(d, what, "cudaStreamWaitEvent", e);
        else req->active = false;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

static void nccl_req_release(ig_dist *d, igi_dist_req *req) {
    nccl_state *s = d->impl;
    nccl_req *q = req_of(req);
    pthread_mutex_lock(&s->lock);
    if (q->registered) {
        for (int i = 0; i < s->n_watched; i++)
            if (s->watched[i] == q) {
                s->watched[i] = s->watched[--s->n_watched];
                break;
            }
    }
    if (q->events) { /* freed by CUDA once recorded work completes */
        cudaEventDestroy(q->ready);
        cudaEventDestroy(q->done);
    }
    memset(q, 0, sizeof *q);
    pthread_mutex_unlock(&s->lock);
    free(req->scratch);
    req->scratch = NULL;
    req->scratch_bytes = 0;
}

static ig_status nccl_all_gather_u64(ig_dist *d, uint64_t mine, uint64_t *all, const char *what) {
    nccl_state *s = state_of(d);
    return s->host.be->all_gather_u64(&s->host, mine, all, what);
}

static ig_status nccl_barrier(ig_dist *d, const char *what) {
    nccl_state *s = state_of(d);
    return s->host.be->barrier(&s->host, what);
}

static void nccl_abort(ig_dist *d, int code) {
    nccl_state *s = d->impl;
    pthread_mutex_lock(&s->lock);
    fail_locked(s, "ig_dist_abort was called on rank %d", d->rank);
    pthread_mutex_unlock(&s->lock);
    s->host.be->abort(&s->host, code);
}

/* Waits for the communication stream, then finalizes and destroys the communicator (each
 * bounded by the timeout; a communicator that does not finish is aborted instead). */
static void nccl_finalize(ig_dist *d) {
    nccl_state *s = d->impl;
    if (!s) return;
    watchdog_stop(s);
    pthread_mutex_lock(&s->lock);
    double t0 = now_s();
    while (s->comm && cudaStreamQuery(s->comm_stream) == cudaErrorNotReady) {
        double waited = now_s() - t0;
        if (waited > d->timeout) fail_locked(s, "ig_dist_finalize: communication still running");
        nap(waited);
    }
    if (s->comm && settle_locked(d, s, nc.comm_finalize(s->comm), "ig_dist_finalize", "ncclCommFinalize") == IG_OK) {
        nc.comm_destroy(s->comm);
        s->comm = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    ig_dist host = s->host;
    state_free(s);
    d->impl = NULL;
    host.be->finalize(&host);
}

const igi_dist_backend igi_dist_backend_nccl = {
    .name = "nccl",
    .device_buffers = true,
    .init = nccl_init,
    .all_reduce_sum = nccl_all_reduce_sum,
    .iall_reduce_start = nccl_iall_reduce_start,
    .iall_reduce_test = nccl_iall_reduce_test,
    .iall_reduce_wait = nccl_iall_reduce_wait,
    .req_release = nccl_req_release,
    .broadcast = nccl_broadcast,
    .all_gather_u64 = nccl_all_gather_u64,
    .barrier = nccl_barrier,
    .abort = nccl_abort,
    .finalize = nccl_finalize,
};

ig_status igi_dist_use_nccl(ig_dist *d) {
    const char *op = "ig_dist_init";
    if (!d) return igi_error_null(op, "d");
    if (d->be == &igi_dist_backend_nccl) return IG_OK;
    bool host_ok = d->be == &igi_dist_backend_single;
#ifdef IGNIS_WITH_MPI
    host_ok = host_ok || d->be == &igi_dist_backend_mpi;
#endif
    if (!host_ok)
        return igi_error(IG_ERR_STATE, "%s: nccl: cannot start from the %s backend", op, d->be->name);
    nccl_state *s = state_new();
    if (!s) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    s->host = *d; /* the group as it is becomes the host layer */
    ig_status st = nccl_setup(d, s, op);
    if (st != IG_OK) {
        state_free(s); /* d keeps its backend and state */
        return st;
    }
    d->be = &igi_dist_backend_nccl;
    d->impl = s;
    return IG_OK;
}

#else
/* Built without NCCL (ISO C wants a declaration here). */
typedef int igi_dist_nccl_absent;
#endif
