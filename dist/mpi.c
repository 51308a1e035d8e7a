/*
 * dist/mpi.c — the MPI backend (built with IGNIS_WITH_MPI; tested with OpenMPI).
 *
 * ig_dist_init picks it when the launcher's environment is there (dist_impl.h,
 * igi_dist_launched). It initialises MPI at MPI_THREAD_FUNNELED (ignis calls MPI from the
 * thread that joined the group only) unless the program did already, and works on two
 * duplicates of MPI_COMM_WORLD with MPI_ERRORS_RETURN: `coll` for blocking collectives and
 * `grad` for the nonblocking gradient all-reduces, so the two streams of collectives each
 * keep their own order (see dist_impl.h).
 *
 * Every operation is nonblocking underneath and waited for by polling MPI_Test: first a
 * short busy spin (latency matters for small buckets), then yielding, then sleeping, and
 * after the group's timeout an error naming the operation, never a hang. A rank that dies
 * is normally noticed by mpirun first, which then ends the job.
 */
#ifdef IGNIS_WITH_MPI

#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dist_impl.h"

typedef struct mpi_state {
    MPI_Comm coll; /* blocking collectives */
    MPI_Comm grad; /* nonblocking all-reduces (gradient buckets) */
} mpi_state;

_Static_assert(sizeof(MPI_Request) <= sizeof(((igi_dist_req *)0)->opaque), "MPI_Request fits igi_dist_req");

/* Whether this library called MPI_Init_thread (then it also calls MPI_Finalize). */
static bool initialised_here;

static ig_status mpi_error(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = '\0';
    return igi_error(IG_ERR_DEVICE, "%s: MPI error %d (%s)", what, rc, len ? msg : "unknown");
}

static MPI_Datatype mpi_type(ig_dtype dt) {
    switch (dt) {
    case IG_F32: return MPI_FLOAT;
    case IG_F64: return MPI_DOUBLE;
    case IG_I32: return MPI_INT32_T;
    case IG_I64: return MPI_INT64_T;
    default: return MPI_UINT8_T;
    }
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* Polls r until it completes or the group's timeout passes. */
static ig_status wait_request(ig_dist *d, MPI_Request *r, const char *what) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long it = 1;; it++) {
        int done = 0;
        int rc = MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_error(rc, what);
        if (done) return IG_OK;
        if (it % 256) continue; /* busy spin between clock reads */
        double el = seconds_since(&t0);
        if (el > d->timeout)
            return igi_error(IG_ERR_STATE,
                             "%s: not complete after %.1f s on rank %d of %d (another rank may have failed or "
                             "stopped; IGNIS_DIST_TIMEOUT sets the limit)",
                             what, el, d->rank, d->world);
        if (el > 0.2) {
            struct timespec nap = {0, 500000}; /* long waits: 0.5 ms naps, no spinning core */
            nanosleep(&nap, NULL);
        } else if (el > 0.002) {
            sched_yield(); /* oversubscribed ranks let each other run */
        }
    }
}

static ig_status mpi_init(ig_dist *d, int *argc, char ***argv) {
    const char *op = "ig_dist_init";
    int inited = 0, finalized = 0, provided = 0, rc;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) return igi_error(IG_ERR_STATE, "%s: MPI was already finalized in this process", op);
    if (!inited) {
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_error(rc, op);
        initialised_here = true;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_FUNNELED) {
        if (initialised_here) {
            MPI_Finalize();
            initialised_here = false;
        }
        return igi_error(IG_ERR_DEVICE, "%s: MPI provides thread level %d, ignis needs MPI_THREAD_FUNNELED", op,
                         provided);
    }
    mpi_state *s = calloc(1, sizeof *s);
    if (!s) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    s->coll = s->grad = MPI_COMM_NULL;
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &s->coll)) != MPI_SUCCESS ||
        (rc = MPI_Comm_dup(MPI_COMM_WORLD, &s->grad)) != MPI_SUCCESS) {
        ig_status st = mpi_error(rc, op);
        if (s->coll != MPI_COMM_NULL) MPI_Comm_free(&s->coll);
        free(s);
        return st;
    }
    MPI_Comm_set_errhandler(s->coll, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(s->grad, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->coll, &d->rank);
    MPI_Comm_size(s->coll, &d->world);
    /* The local rank (which GPU, later): OpenMPI says it; otherwise ask for the ranks that
     * share this node's memory. */
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    char *end = NULL;
    long v = lr ? strtol(lr, &end, 10) : -1;
    if (lr && end != lr && *end == '\0' && v >= 0 && v < INT_MAX) {
        d->local_rank = (int)v;
    } else {
        MPI_Comm node;
        if (MPI_Comm_split_type(s->coll, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
            MPI_Comm_rank(node, &d->local_rank);
            MPI_Comm_free(&node);
        } else {
            d->local_rank = 0;
        }
    }
    d->impl = s;
    return IG_OK;
}

/* Counts above INT_MAX go in chunks (MPI counts are int). */
#define CHUNK ((int64_t)1 << 30)

static ig_status mpi_all_reduce_sum(ig_dist *d, void *buf, int64_t count, ig_dtype dt, const char *what) {
    mpi_state *s = d->impl;
    size_t es = ig_dtype_size(dt);
    for (int64_t off = 0; off < count; off += CHUNK) {
        int n = (int)(count - off < CHUNK ? count - off : CHUNK);
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * es, n, mpi_type(dt), MPI_SUM, s->coll, &r);
        if (rc != MPI_SUCCESS) return mpi_error(rc, what);
        ig_status st = wait_request(d, &r, what);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

static MPI_Request *req_of(igi_dist_req *req) { return (MPI_Request *)(void *)req->opaque; }

static ig_status mpi_iall_reduce_start(ig_dist *d, void *buf, int64_t count, ig_dtype dt, igi_dist_req *req,
                                       const char *what) {
    mpi_state *s = d->impl;
    if (count > INT_MAX) return igi_error(IG_ERR_ARG, "%s: %lld elements in one all-reduce (at most %d)", what,
                                          (long long)count, INT_MAX);
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(dt), MPI_SUM, s->grad, req_of(req));
    if (rc != MPI_SUCCESS) return mpi_error(rc, what);
    req->active = true;
    return IG_OK;
}

static bool mpi_iall_reduce_test(ig_dist *d, igi_dist_req *req) {
    (void)d;
    if (!req->active) return true;
    int done = 0;
    if (MPI_Test(req_of(req), &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return false; /* the wait reports it */
    if (done) req->active = false;
    return done != 0;
}

static ig_status mpi_iall_reduce_wait(ig_dist *d, igi_dist_req *req, const char *what) {
    if (!req->active) return IG_OK;
    ig_status st = wait_request(d, req_of(req), what);
    if (st == IG_OK) req->active = false;
    return st;
}

static ig_status mpi_broadcast(ig_dist *d, void *buf, int64_t nbytes, int root, const char *what) {
    mpi_state *s = d->impl;
    for (int64_t off = 0; off < nbytes; off += CHUNK) {
        int n = (int)(nbytes - off < CHUNK ? nbytes - off : CHUNK);
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + off, n, MPI_BYTE, root, s->coll, &r);
        if (rc != MPI_SUCCESS) return mpi_error(rc, what);
        ig_status st = wait_request(d, &r, what);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

static ig_status mpi_all_gather_u64(ig_dist *d, uint64_t mine, uint64_t *all, const char *what) {
    mpi_state *s = d->impl;
    MPI_Request r;
    int rc = MPI_Iallgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, s->coll, &r);
    if (rc != MPI_SUCCESS) return mpi_error(rc, what);
    return wait_request(d, &r, what);
}

static ig_status mpi_barrier(ig_dist *d, const char *what) {
    mpi_state *s = d->impl;
    MPI_Request r;
    int rc = MPI_Ibarrier(s->coll, &r);
    if (rc != MPI_SUCCESS) return mpi_error(rc, what);
    return wait_request(d, &r, what);
}

static _Noreturn void mpi_abort(ig_dist *d, int code) {
    (void)d;
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* MPI_Abort does not return; this satisfies _Noreturn if it ever did */
}

static void mpi_finalize(ig_dist *d) {
    mpi_state *s = d->impl;
    if (s) {
        MPI_Comm_free(&s->grad);
        MPI_Comm_free(&s->coll);
        free(s);
        d->impl = NULL;
    }
    if (initialised_here) {
        MPI_Finalize();
        initialised_here = false;
    }
}

const igi_dist_backend igi_dist_backend_mpi = {
    .name = "mpi",
    .init = mpi_init,
    .all_reduce_sum = mpi_all_reduce_sum,
    .iall_reduce_start = mpi_iall_reduce_start,
    .iall_reduce_test = mpi_iall_reduce_test,
    .iall_reduce_wait = mpi_iall_reduce_wait,
    .broadcast = mpi_broadcast,
    .all_gather_u64 = mpi_all_gather_u64,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
    .finalize = mpi_finalize,
};

#else
/* Built without MPI: dist/ has the single backend only (ISO C wants a declaration here). */
typedef int igi_dist_mpi_absent;
#endif
