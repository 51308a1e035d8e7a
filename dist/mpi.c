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
 *
 * The nonblocking all-reduce of gradient buckets is a ring all-reduce of our own over
 * point-to-point messages rather than MPI_Iallreduce: OpenMPI's nonblocking collectives
 * (libnbc) took about twice as long as its blocking MPI_Allreduce for a 1 MiB buffer on
 * 2 ranks, while the ring matches it. With N ranks the buffer is cut into N chunks;
 * N-1 reduce-scatter steps (send chunk r-s to the right neighbour, receive chunk r-s-1
 * from the left into scratch and add it) leave rank r with the sum of chunk r+1, and N-1
 * all-gather steps pass the finished chunks around, received straight into place. Each
 * step is an Isend/Irecv pair; testing the request finishes a step and posts the next, so
 * the ring advances whenever ignis calls in (gradient hooks, waits). Every rank starts
 * buckets in the same order, so a per-start tag tells concurrent rings apart.
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
    int next_tag;  /* tag of the next ring all-reduce (the same sequence on every rank) */
} mpi_state;

/* A ring all-reduce in flight, stored in igi_dist_req.opaque. */
typedef struct ring {
    char *buf;
    int64_t count, chunk; /* elements; chunk = ceil(count / world) */
    ig_dtype dt;
    int step;             /* 0 .. 2(world-1)-1: the step whose messages are posted */
    int tag;
    MPI_Request rq[2];    /* send, receive */
} ring;

_Static_assert(sizeof(ring) <= sizeof(((igi_dist_req *)0)->opaque), "a ring fits igi_dist_req");

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

/* Calls test(ctx, &done) until done or the group's timeout passes. test returns an MPI
 * error code. */
static ig_status poll_until(ig_dist *d, int (*test)(ig_dist *d, void *ctx, int *done), void *ctx, const char *what) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long it = 1;; it++) {
        int done = 0;
        int rc = test(d, ctx, &done);
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

static int test_request(ig_dist *d, void *r, int *done) {
    (void)d;
    return MPI_Test(r, done, MPI_STATUS_IGNORE);
}

static ig_status wait_request(ig_dist *d, MPI_Request *r, const char *what) {
    return poll_until(d, test_request, r, what);
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

/* ---- ring all-reduce ------------------------------------------------------------------------- */

static ring *ring_of(igi_dist_req *req) { return (ring *)(void *)req->opaque; }

/* dst[i] += src[i] for n elements of dt. */
static void add_into(ig_dtype dt, void *dst, const void *src, int64_t n) {
    switch (dt) {
    case IG_F32: { float *x = dst; const float *y = src; for (int64_t i = 0; i < n; i++) x[i] += y[i]; break; }
    case IG_F64: { double *x = dst; const double *y = src; for (int64_t i = 0; i < n; i++) x[i] += y[i]; break; }
    case IG_I32: { /* wrapping, like MPI_SUM on most implementations, without signed overflow */
        int32_t *x = dst; const int32_t *y = src;
        for (int64_t i = 0; i < n; i++) x[i] = (int32_t)((uint32_t)x[i] + (uint32_t)y[i]);
        break;
    }
    default: {
        int64_t *x = dst; const int64_t *y = src;
        for (int64_t i = 0; i < n; i++) x[i] = (int64_t)((uint64_t)x[i] + (uint64_t)y[i]);
    }
    }
}

/* Chunk c's first element and length. */
static void chunk_range(const ring *q, int world, int c, int64_t *off, int64_t *n) {
    c = ((c % world) + world) % world;
    int64_t lo = (int64_t)c * q->chunk, hi = lo + q->chunk;
    if (lo > q->count) lo = q->count;
    if (hi > q->count) hi = q->count;
    *off = lo;
    *n = hi - lo;
}

/* Posts the messages of q->step. Reduce-scatter (step s < world-1): send chunk r-s, receive
 * chunk r-s-1 into scratch. All-gather (s' = step - (world-1)): send chunk r+1-s', receive
 * chunk r-s' in place. */
static int ring_post(ig_dist *d, igi_dist_req *req) {
    mpi_state *s = d->impl;
    ring *q = ring_of(req);
    int w = d->world, r = d->rank, right = (r + 1) % w, left = (r + w - 1) % w;
    size_t es = ig_dtype_size(q->dt);
    int64_t so, sn, ro, rn;
    bool rs = q->step < w - 1;
    int sa = rs ? r - q->step : r + 1 - (q->step - (w - 1));
    chunk_range(q, w, sa, &so, &sn);
    chunk_range(q, w, sa - 1, &ro, &rn);
    void *dst = rs ? req->scratch : q->buf + (size_t)ro * es;
    int rc = MPI_Irecv(dst, (int)rn, mpi_type(q->dt), left, q->tag, s->grad, &q->rq[1]);
    if (rc == MPI_SUCCESS) rc = MPI_Isend(q->buf + (size_t)so * es, (int)sn, mpi_type(q->dt), right, q->tag, s->grad, &q->rq[0]);
    return rc;
}

/* Finishes the posted step if its messages are done and posts the next; *done when the
 * whole all-reduce is. */
static int ring_test(ig_dist *d, void *vreq, int *done) {
    igi_dist_req *req = vreq;
    ring *q = ring_of(req);
    int w = d->world;
    *done = 0;
    while (req->active) {
        int flag = 0;
        int rc = MPI_Testall(2, q->rq, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
        if (!flag) return MPI_SUCCESS;
        if (q->step < w - 1) { /* reduce-scatter: add the received chunk */
            int64_t off, n;
            chunk_range(q, w, d->rank - q->step - 1, &off, &n);
            add_into(q->dt, q->buf + (size_t)off * ig_dtype_size(q->dt), req->scratch, n);
        }
        if (++q->step == 2 * (w - 1)) {
            req->active = false;
            break;
        }
        if ((rc = ring_post(d, req)) != MPI_SUCCESS) return rc;
    }
    *done = 1;
    return MPI_SUCCESS;
}

static ig_status mpi_iall_reduce_start(ig_dist *d, void *buf, int64_t count, ig_dtype dt, igi_dist_req *req,
                                       const char *what) {
    mpi_state *s = d->impl;
    int w = d->world;
    ring *q = ring_of(req);
    memset(q, 0, sizeof *q);
    q->buf = buf;
    q->count = count;
    q->dt = dt;
    q->chunk = (count + w - 1) / w;
    q->tag = s->next_tag;
    s->next_tag = (s->next_tag + 1) % 32000; /* MPI guarantees tags up to 32767 */
    req->active = false;
    if (w == 1 || count == 0) return IG_OK;
    if (q->chunk > INT_MAX)
        return igi_error(IG_ERR_ARG, "%s: %lld elements in one all-reduce (at most %lld)", what, (long long)count,
                         (long long)INT_MAX * w);
    size_t need = (size_t)q->chunk * ig_dtype_size(dt);
    if (req->scratch_bytes < need) { /* first use (or a larger bucket): kept for the next */
        void *p = realloc(req->scratch, need);
        if (!p) return igi_error(IG_ERR_NOMEM, "%s: out of memory", what);
        req->scratch = p;
        req->scratch_bytes = need;
    }
    int rc = ring_post(d, req);
    if (rc != MPI_SUCCESS) return mpi_error(rc, what);
    req->active = true;
    return IG_OK;
}

static bool mpi_iall_reduce_test(ig_dist *d, igi_dist_req *req) {
    int done = 0;
    if (!req->active) return true;
    if (ring_test(d, req, &done) != MPI_SUCCESS) return false; /* the wait reports it */
    return done != 0;
}

static ig_status mpi_iall_reduce_wait(ig_dist *d, igi_dist_req *req, const char *what) {
    if (!req->active) return IG_OK;
    return poll_until(d, ring_test, req, what);
}

static void mpi_req_release(ig_dist *d, igi_dist_req *req) {
    (void)d;
    free(req->scratch);
    req->scratch = NULL;
    req->scratch_bytes = 0;
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

static void mpi_abort(ig_dist *d, int code) {
    (void)d;
    MPI_Abort(MPI_COMM_WORLD, code); /* ends every process of the job; does not return */
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
    .req_release = mpi_req_release,
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
