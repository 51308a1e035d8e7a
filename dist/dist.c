/*
 * dist/dist.c — the public process-group calls of dist/dist.h: joining (which backend:
 * IGNIS_DIST when set, else from the launcher's environment and the build), argument checks, and the collectives on
 * tensors, each forwarded to the backend table of dist_impl.h.
 */
#include <stdio.h>
#include <string.h>

#include "../core/backend_impl.h"
#include "dist_impl.h"

#define DEFAULT_TIMEOUT 300.0

/* A positive integer environment variable, or -1 when absent or not a number. */
static long env_long(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    return (*end == '\0' && x >= 0) ? x : -1;
}

bool igi_dist_launched(int *world) {
    long ompi = env_long("OMPI_COMM_WORLD_SIZE"), pmi = env_long("PMI_SIZE");
    long w = ompi > 0 ? ompi : pmi;
    *world = w > 0 && w <= 1 << 30 ? (int)w : -1;
    return ompi > 0 || pmi > 0 || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

uint64_t igi_fnv1a64(uint64_t h, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static double env_timeout(void) {
    const char *v = getenv("IGNIS_DIST_TIMEOUT");
    if (!v || !*v) return DEFAULT_TIMEOUT;
    char *end = NULL;
    double t = igi_strtod(v, &end);
    return (*end == '\0' && t > 0 && t < 1e9) ? t : DEFAULT_TIMEOUT;
}

const igi_dist_backend *igi_dist_backend_from_env(const char *op, bool *bad) {
    const char *v = getenv("IGNIS_DIST");
    *bad = false;
    if (!v || !*v) return NULL;
    if (!strcmp(v, "single")) return &igi_dist_backend_single;
    if (!strcmp(v, "mpi")) {
#ifdef IGNIS_WITH_MPI
        return &igi_dist_backend_mpi;
#else
        *bad = true;
        igi_error(IG_ERR_DEVICE, "%s: IGNIS_DIST=mpi but this ignis was built without MPI (make MPI=1)", op);
        return NULL;
#endif
    }
    if (!strcmp(v, "nccl")) {
#ifdef IGNIS_WITH_NCCL
        return &igi_dist_backend_nccl;
#else
        *bad = true;
        igi_error(IG_ERR_DEVICE,
                  "%s: IGNIS_DIST=nccl but this ignis was built without NCCL (it needs CUDA and NCCL, and MPI for "
                  "several processes: "
                  "`make` reports what it found on its NCCL line)",
                  op);
        return NULL;
#endif
    }
    *bad = true;
    igi_error(IG_ERR_ARG, "%s: IGNIS_DIST='%s' is not a backend (single, mpi, nccl; unset: from the launcher)", op, v);
    return NULL;
}

ig_dist *ig_dist_init(int *argc, char ***argv) {
    const char *op = "ig_dist_init";
    int world = -1;
    bool bad = false;
    const igi_dist_backend *be = igi_dist_backend_from_env(op, &bad);
    if (bad) return NULL;
    bool launched = igi_dist_launched(&world);
    if (be == &igi_dist_backend_single && launched && world > 1) {
        igi_error(IG_ERR_ARG, "%s: IGNIS_DIST=single but an MPI launcher started %d processes", op, world);
        return NULL;
    }
    if (!be && !launched) be = &igi_dist_backend_single;
    if (!be) { /* the launcher's environment decides */
#ifdef IGNIS_WITH_MPI
        be = &igi_dist_backend_mpi;
#else
        be = &igi_dist_backend_single;
        if (world != 1) {
            igi_error(IG_ERR_DEVICE,
                      "%s: started by an MPI launcher (%d processes) but this ignis was built without MPI; "
                      "rebuild with MPI installed (make MPI=1) or run a single process",
                      op, world);
            return NULL;
        }
#endif
    }
    ig_dist *d = calloc(1, sizeof *d);
    if (!d) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    d->be = be;
    d->timeout = env_timeout();
    if (be->init(d, argc, argv) != IG_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void ig_dist_finalize(ig_dist *d) {
    if (!d) return;
    d->be->finalize(d);
    free(d);
}

int ig_dist_rank(const ig_dist *d) { return d ? d->rank : 0; }
int ig_dist_world_size(const ig_dist *d) { return d ? d->world : 1; }
int ig_dist_local_rank(const ig_dist *d) { return d ? d->local_rank : 0; }
const char *ig_dist_backend(const ig_dist *d) { return d ? d->be->name : "single"; }

void ig_dist_set_timeout(ig_dist *d, double seconds) {
    if (d && seconds > 0) d->timeout = seconds;
}

void ig_dist_abort(ig_dist *d, int code) {
    fflush(NULL);
    if (d) d->be->abort(d, code); /* MPI: ends every process; single: returns */
}

/* ---- collectives ------------------------------------------------------------------------ */

static bool check_tensor(const ig_dist *d, const char *op, const ig_tensor *t) {
    if (t->device != IG_CPU && !d->be->device_buffers) {
        igi_error(IG_ERR_DEVICE, "%s: the %s backend takes CPU tensors only (a %s tensor needs nccl)", op, d->be->name,
                  igi_device_name(t->device));
        return false;
    }
    if (!igi_is_contiguous(t)) {
        char b[160];
        igi_error(IG_ERR_ARG, "%s: tensor %s must be contiguous (use ig_contiguous)", op, ig_shape_str(t, b, sizeof b));
        return false;
    }
    return true;
}

ig_status ig_dist_all_reduce_sum(ig_dist *d, ig_tensor *t) {
    const char *op = "ig_dist_all_reduce_sum";
    if (!d) return igi_error_null(op, "d");
    if (!t) return igi_error_null(op, "t");
    if (!check_tensor(d, op, t)) return ig_last_status();
    if (t->dtype != IG_F32 && t->dtype != IG_F64 && t->dtype != IG_I32 && t->dtype != IG_I64)
        return igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported (f32, f64, i32, i64)", op, ig_dtype_name(t->dtype));
    igi_storage_written(t->storage);
    return d->be->all_reduce_sum(d, igi_data(t), igi_numel(t->ndim, t->shape), t->dtype, op);
}

ig_status ig_dist_all_reduce_doubles(ig_dist *d, double *vals, int n) {
    const char *op = "ig_dist_all_reduce_doubles";
    if (!d) return igi_error_null(op, "d");
    if (n < 0) return igi_error(IG_ERR_ARG, "%s: n must be >= 0, got %d", op, n);
    if (n == 0) return IG_OK;
    if (!vals) return igi_error(IG_ERR_ARG, "%s: argument vals is NULL", op);
    return d->be->all_reduce_sum(d, vals, n, IG_F64, op);
}

ig_status ig_dist_broadcast(ig_dist *d, ig_tensor *t, int root) {
    const char *op = "ig_dist_broadcast";
    if (!d) return igi_error_null(op, "d");
    if (!t) return igi_error_null(op, "t");
    if (root < 0 || root >= d->world)
        return igi_error(IG_ERR_ARG, "%s: root %d out of range for %d ranks", op, root, d->world);
    if (!check_tensor(d, op, t)) return ig_last_status();
    int64_t nbytes = igi_numel(t->ndim, t->shape) * (int64_t)ig_dtype_size(t->dtype);
    igi_storage_written(t->storage);
    return d->be->broadcast(d, igi_data(t), nbytes, root, op);
}

ig_status ig_dist_barrier(ig_dist *d) {
    if (!d) return igi_error_null("ig_dist_barrier", "d");
    return d->be->barrier(d, "ig_dist_barrier");
}

ig_status igi_dist_check_same(ig_dist *d, const void *bytes, size_t n, const char *op, const char *what) {
    uint64_t h = igi_fnv1a64(IGI_FNV_OFFSET, bytes, n);
    uint64_t one[1], *all = d->world == 1 ? one : malloc(sizeof *all * (size_t)d->world);
    if (!all) return igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    ig_status st = d->be->all_gather_u64(d, h, all, op);
    if (st == IG_OK) {
        for (int r = 1; r < d->world; r++)
            if (all[r] != all[0]) {
                st = igi_error(IG_ERR_STATE, "%s: %s differs between ranks: rank %d does not match rank 0 (hash %016llx vs %016llx)",
                               op, what ? what : "the data", r, (unsigned long long)all[r],
                               (unsigned long long)all[0]);
                break;
            }
    }
    if (all != one) free(all);
    return st;
}

ig_status ig_dist_check_same(ig_dist *d, const void *bytes, size_t n, const char *what) {
    const char *op = "ig_dist_check_same";
    if (!d) return igi_error_null(op, "d");
    if (!bytes && n) return igi_error(IG_ERR_ARG, "%s: argument bytes is NULL", op);
    return igi_dist_check_same(d, bytes ? bytes : "", n, op, what);
}
