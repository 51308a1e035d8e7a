/*
 * data/loader.c — batches a dataset into reused tensors, with worker threads that read and
 * augment whole batches ahead of the trainer.
 *
 * Buffers. The loader owns a ring of nbuf batch slots (1 when loading in the caller's
 * thread, num_workers * prefetch otherwise), each a heap tensor pair x [B, ...] f32 and
 * y [B] int64, plus views of the smaller last batch. All are made once in ig_loader_new
 * (in heap mode, so a scope open at that moment does not claim them); the steady state
 * allocates nothing. Each worker has its own item buffer and transform scratch.
 *
 * Order. Batch k of an epoch always lives in slot k % nbuf and always holds the samples
 * indices[k*B .. k*B+B) of the epoch's sampler order, each augmented with the key (seed,
 * epoch, dataset index): its content never depends on which thread built it or when.
 * Workers claim batch numbers in increasing order under the mutex; a worker may claim batch
 * j only once the consumer has moved past batch j - nbuf (it asked for a later one), so the
 * batch last returned by ig_loader_next stays intact until the next call.
 *
 * Synchronisation. One mutex, two condition variables: work (workers wait for a claimable
 * batch) and ready (the consumer waits for its batch; start_epoch waits for in-flight work
 * to drain). A generation number, bumped by start_epoch and free, cancels outstanding work:
 * a worker checks it between items and throws away a batch built for an older generation.
 *
 * Contract details data.h leaves open: prefetch counts batches per worker (torch's
 * prefetch_factor; 0 means 2); ig_loader_next before any ig_loader_start_epoch starts epoch
 * 0; the batch returned stays valid until the next ig_loader_next or ig_loader_start_epoch;
 * opts.drop_last is the DataLoader's (drop this rank's last incomplete batch) while the
 * sampler always pads shards to equal length (DistributedSampler's default); each item is
 * augmented with the key (seed, epoch, dataset index), so a padding duplicate on another
 * rank gets the same augmentation.
 *
 * Pinned batches (opts.pin_memory). The slots' x and y are then IG_CPU tensors whose
 * storage is page-locked memory from the CUDA backend (ordinary memory when there is no
 * CUDA: the flag changes nothing else), so ig_to(x, IG_CUDA) only enqueues the copy and
 * returns; the storage's event is recorded after it (core/device.c). Ownership rule: the
 * consumer owns a delivered batch until its next ig_loader_next / start_epoch / free, and
 * may start uploads from it until then; whoever writes the slot next (a worker, or the
 * caller's thread in synchronous mode) first waits on the event of each of the slot's
 * storages (igi_storage_host_wait; a no-op for ordinary memory), so a copy still reading
 * the buffer is never overwritten. The event was recorded before the consumer's next call,
 * which publishes the release under the mutex, so the waiting thread always sees the last
 * recording. Freeing the loader waits the same way (igi_storage_release). In the
 * synchronous mode with one slot the wait is for the previous batch's upload, which the
 * stream ran before the previous step's kernels: at most one step of host lead is lost.
 *
 * Errors. A failing read or transform in a worker is recorded with its status and message
 * (messages are thread-local, so the text is copied into the slot) and re-raised on the
 * consumer's thread by ig_loader_next, which then moves on past that batch.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sampler_impl.h"
#include "transform_impl.h"

#define LOADER_MSG_CAP 1024

typedef struct batch_slot {
    ig_tensor *x, *y;      /* full batch: [B, ...] f32, [B] int64 */
    ig_tensor *px, *py;    /* views of the last, smaller batch (NULL if every batch is full) */
    int64_t batch;         /* batch number held (-1: none), guarded by the mutex */
    ig_status status;      /* result of building it */
    char msg[LOADER_MSG_CAP];
} batch_slot;

typedef struct worker {
    struct ig_loader *l;
    pthread_t thread;
    bool started;
    float *item;           /* one untransformed item (only with a transform) */
    void *scratch;         /* transform scratch */
} worker;

struct ig_loader {
    ig_dataset *d;
    ig_loader_opts o;      /* copy; world_size >= 1, prefetch >= 1 */
    int64_t n;             /* dataset length */
    int c, h, w;           /* transform input [c,h,w] */
    int64_t item_numel, sample_numel; /* before / after the transform */
    int64_t count, nb, last_b;        /* samples of this rank per epoch, batches, last size */
    int64_t *indices;      /* count entries: this epoch's order */
    int64_t *perm;         /* n entries (shuffle only) */
    int nbuf;
    batch_slot *slots;
    int nworkers;          /* threads; the synchronous mode uses workers[0] without a thread */
    worker *workers;

    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    _Atomic uint64_t gen;  /* written under mu; read without it to cancel early */
    int64_t epoch;
    bool started, active, stop;
    int64_t claim;         /* next batch number to hand to a worker */
    int64_t consumed;      /* batches before this are released by the consumer */
    int64_t cur;           /* next batch number ig_loader_next returns */
    int in_flight;
};

/* Builds batch k into slot s using w's buffers; s->status and s->msg tell the result.
 * Returns false if the generation changed meanwhile (cancelled: the slot means nothing). */
static bool build_batch(ig_loader *l, worker *w, int64_t k, batch_slot *s, uint64_t gen,
                             bool threaded) {
    int64_t b = k == l->nb - 1 ? l->last_b : l->o.batch_size;
    float *xp = ig_tensor_data(s->x);
    int64_t *yp = ig_tensor_data(s->y);
    const int64_t *idx = l->indices + k * l->o.batch_size;
    ig_clear_error();
    /* Pinned slots: an upload from the previous batch of this slot may still be reading
     * it (see "Pinned batches" above). */
    ig_status ws = igi_storage_host_wait("ig_loader_next", s->x->storage);
    if (ws == IG_OK) ws = igi_storage_host_wait("ig_loader_next", s->y->storage);
    if (ws != IG_OK) {
        snprintf(s->msg, sizeof s->msg, "%s (batch %lld)", ig_last_error(), (long long)k);
        s->status = ws;
        return true;
    }
    for (int64_t i = 0; i < b; i++) {
        if (threaded && atomic_load_explicit(&l->gen, memory_order_relaxed) != gen) return false;
        float *dst = xp + i * l->sample_numel;
        ig_status st;
        if (l->o.transform) {
            st = ig_dataset_get(l->d, idx[i], w->item, &yp[i]);
            if (st == IG_OK)
                st = igi_tf_apply(l->o.transform, w->item, l->c, l->h, l->w, dst, w->scratch, l->o.seed,
                                  (uint64_t)l->epoch, (uint64_t)idx[i]);
        } else {
            st = ig_dataset_get(l->d, idx[i], dst, &yp[i]);
        }
        if (st != IG_OK) {
            const char *m = ig_last_status() != IG_OK ? ig_last_error() : ig_status_name(st);
            snprintf(s->msg, sizeof s->msg, "%s (ig_loader_next: item %lld, batch %lld)", m,
                     (long long)idx[i], (long long)k);
            s->status = st < 0 ? st : IG_ERR_IO;
            return true;
        }
    }
    s->status = IG_OK;
    return true;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    ig_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !(l->active && l->claim < l->nb && l->claim < l->consumed + l->nbuf))
            pthread_cond_wait(&l->work_cv, &l->mu);
        if (l->stop) break;
        int64_t k = l->claim++;
        uint64_t gen = atomic_load_explicit(&l->gen, memory_order_relaxed);
        batch_slot *s = &l->slots[k % l->nbuf];
        l->in_flight++;
        pthread_mutex_unlock(&l->mu);
        bool built = build_batch(l, w, k, s, gen, true);
        pthread_mutex_lock(&l->mu);
        l->in_flight--;
        if (built && gen == atomic_load_explicit(&l->gen, memory_order_relaxed)) s->batch = k;
        pthread_cond_broadcast(&l->ready_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Heap tensors even if the caller has a scope open: the loader owns them. pinned: in
 * page-locked memory for uploads to CUDA (ordinary memory without CUDA). */
static ig_tensor *heap_tensor(int ndim, const int64_t *shape, ig_dtype dt, bool pinned) {
    igi_heap_mode(1);
    ig_tensor *t = pinned ? igi_tensor_new_pinned("ig_loader_new", ndim, shape, dt, IG_CUDA)
                          : igi_tensor_new("ig_loader_new", ndim, shape, dt, IG_CPU);
    igi_heap_mode(-1);
    return t;
}

static ig_tensor *heap_prefix_view(ig_tensor *t, int64_t rows) {
    int64_t shape[IG_MAX_DIMS], strides[IG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = rows;
    igi_contiguous_strides(t->ndim, shape, strides);
    igi_heap_mode(1);
    ig_tensor *v = igi_tensor_view("ig_loader_new", t, t->ndim, shape, strides, t->offset);
    igi_heap_mode(-1);
    return v;
}

static void stop_workers(ig_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    atomic_fetch_add(&l->gen, 1);
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nworkers; i++)
        if (l->workers[i].started) pthread_join(l->workers[i].thread, NULL);
}

void ig_loader_free(ig_loader *l) {
    if (!l) return;
    if (l->nworkers > 0) stop_workers(l);
    for (int i = 0; l->slots && i < l->nbuf; i++) {
        ig_tensor_free(l->slots[i].x);
        ig_tensor_free(l->slots[i].y);
        ig_tensor_free(l->slots[i].px);
        ig_tensor_free(l->slots[i].py);
    }
    int nw = l->nworkers > 0 ? l->nworkers : 1;
    for (int i = 0; l->workers && i < nw; i++) {
        free(l->workers[i].item);
        free(l->workers[i].scratch);
    }
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->ready_cv);
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l->workers);
    free(l->indices);
    free(l->perm);
    free(l);
}

/* Frees a half-built loader and returns NULL, keeping the error already set. */
static ig_loader *fail(ig_loader *l) {
    ig_loader_free(l);
    return NULL;
}

static ig_loader *oom(ig_loader *l) {
    igi_error(IG_ERR_NOMEM, "ig_loader_new: out of memory");
    return fail(l);
}

ig_loader *ig_loader_new(ig_dataset *d, const ig_loader_opts *o) {
    const char *op = "ig_loader_new";
    if (!d || !o) {
        igi_error_null(op, !d ? "d" : "o");
        return NULL;
    }
    int world = o->world_size == 0 ? 1 : o->world_size;
    if (o->batch_size < 1 || o->num_workers < 0 || o->num_workers > 256 || o->prefetch < 0 ||
        o->prefetch > 64 || world < 1 || o->rank < 0 || o->rank >= world) {
        igi_error(IG_ERR_ARG,
                  "%s: need batch_size >= 1 (got %lld), 0 <= num_workers <= 256 (%d), 0 <= prefetch <= 64 (%d), "
                  "0 <= rank < world_size (%d, %d)",
                  op, (long long)o->batch_size, o->num_workers, o->prefetch, o->rank, o->world_size);
        return NULL;
    }
    int64_t n = ig_dataset_len(d);
    int64_t ishape[3];
    int indim = ig_dataset_item_shape(d, ishape);
    if (n < 0 || indim < 1 || indim > 3) {
        igi_error(IG_ERR_ARG, "%s: the dataset reports length %lld and %d item dims", op, (long long)n, indim);
        return NULL;
    }
    if (o->transform && indim == 1) {
        igi_error(IG_ERR_SHAPE, "%s: a transform needs image items ([C,H,W] or [H,W]), items are [%lld]", op,
                  (long long)ishape[0]);
        return NULL;
    }
    for (int i = 0; i < indim; i++)
        if (ishape[i] < 1 || ishape[i] > INT32_MAX) {
            igi_error(IG_ERR_ARG, "%s: item dim %d is %lld", op, i, (long long)ishape[i]);
            return NULL;
        }

    ig_loader *l = calloc(1, sizeof *l);
    if (!l) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    l->d = d;
    l->o = *o;
    l->o.world_size = world;
    l->o.prefetch = o->prefetch > 0 ? o->prefetch : 2;
    l->n = n;

    /* Item geometry: [c,h,w] for images ([H,W] counts as one channel). */
    l->c = indim == 3 ? (int)ishape[0] : 1;
    l->h = indim >= 2 ? (int)ishape[indim - 2] : 1;
    l->w = (int)ishape[indim - 1];
    l->item_numel = ishape[0] * (indim >= 2 ? ishape[1] : 1) * (indim == 3 ? ishape[2] : 1);
    int xndim;
    int64_t xshape[4] = {o->batch_size, 0, 0, 0};
    if (o->transform) {
        int oc, oh, ow;
        ig_transform_out_shape(o->transform, l->c, l->h, l->w, &oc, &oh, &ow);
        xndim = 4;
        xshape[1] = oc;
        xshape[2] = oh;
        xshape[3] = ow;
        l->sample_numel = (int64_t)oc * oh * ow;
    } else {
        xndim = indim + 1;
        memcpy(xshape + 1, ishape, (size_t)indim * sizeof *ishape);
        l->sample_numel = l->item_numel;
    }

    /* The sampler pads the epoch to equal shards (DistributedSampler's default); drop_last is
     * the DataLoader's: it drops this rank's last incomplete batch. */
    l->count = ig_sampler_count(n, o->rank, world, false);
    l->nb = o->drop_last ? l->count / o->batch_size : (l->count + o->batch_size - 1) / o->batch_size;
    l->last_b = l->nb == 0 ? 0 : l->count - (l->nb - 1) * o->batch_size;
    if (l->last_b > o->batch_size) l->last_b = o->batch_size; /* drop_last: full batches only */
    l->indices = malloc((size_t)(l->count > 0 ? l->count : 1) * sizeof *l->indices);
    if (o->shuffle) l->perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *l->perm);
    if (!l->indices || (o->shuffle && !l->perm)) return oom(l);

    /* Workers' buffers (one set for the caller's thread in synchronous mode). */
    l->nworkers = o->num_workers;
    int nw = o->num_workers > 0 ? o->num_workers : 1;
    l->workers = calloc((size_t)nw, sizeof *l->workers);
    if (!l->workers) return oom(l);
    size_t scratch = igi_tf_scratch_bytes(o->transform, l->c, l->h, l->w);
    for (int i = 0; i < nw; i++) {
        worker *w = &l->workers[i];
        w->l = l;
        if (o->transform) {
            w->item = calloc((size_t)l->item_numel, sizeof(float));
            w->scratch = malloc(scratch ? scratch : 1);
            if (!w->item || !w->scratch) return oom(l);
        }
    }
    if (o->transform) {
        /* Check once, on a blank item, that the transform takes these items. */
        float *probe = malloc((size_t)l->sample_numel * sizeof(float));
        if (!probe) return oom(l);
        ig_status st = igi_tf_apply(o->transform, l->workers[0].item, l->c, l->h, l->w, probe,
                                    l->workers[0].scratch, 0, 0, 0);
        free(probe);
        if (st != IG_OK) {
            char msg[LOADER_MSG_CAP];
            snprintf(msg, sizeof msg, "%s", ig_last_error());
            igi_error(st, "%s: the transform does not take items [%d,%d,%d]: %s", op, l->c, l->h, l->w, msg);
            return fail(l);
        }
    }

    /* The ring of batch buffers. */
    l->nbuf = o->num_workers > 0 ? o->num_workers * l->o.prefetch : 1;
    l->slots = calloc((size_t)l->nbuf, sizeof *l->slots);
    if (!l->slots) return oom(l);
    int64_t yshape[1] = {o->batch_size};
    for (int i = 0; i < l->nbuf; i++) {
        batch_slot *s = &l->slots[i];
        s->batch = -1;
        s->x = heap_tensor(xndim, xshape, IG_F32, o->pin_memory);
        s->y = heap_tensor(1, yshape, IG_I64, o->pin_memory);
        if (!s->x || !s->y) return fail(l);
        if (l->last_b > 0 && l->last_b < o->batch_size) {
            s->px = heap_prefix_view(s->x, l->last_b);
            s->py = heap_prefix_view(s->y, l->last_b);
            if (!s->px || !s->py) return fail(l);
        }
    }

    for (int i = 0; i < l->nworkers; i++) {
        if (pthread_create(&l->workers[i].thread, NULL, worker_main, &l->workers[i]) != 0) {
            igi_error(IG_ERR_STATE, "%s: could not start worker thread %d", op, i);
            return fail(l);
        }
        l->workers[i].started = true;
    }
    return l;
}

ig_status ig_loader_start_epoch(ig_loader *l, int64_t epoch) {
    if (!l) return igi_error_null("ig_loader_start_epoch", "l");
    /* Cancel: no new claims, and wait for the batches in flight to be abandoned. */
    pthread_mutex_lock(&l->mu);
    atomic_fetch_add(&l->gen, 1);
    l->active = false;
    while (l->in_flight > 0) pthread_cond_wait(&l->ready_cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    /* No worker touches the order now. */
    igi_sampler_fill(l->n, l->o.shuffle, l->o.seed, epoch, l->o.rank, l->o.world_size, false, l->perm,
                     l->indices);
    pthread_mutex_lock(&l->mu);
    l->epoch = epoch;
    l->claim = l->consumed = l->cur = 0;
    for (int i = 0; i < l->nbuf; i++) l->slots[i].batch = -1;
    l->started = l->active = true;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return IG_OK;
}

static int deliver(ig_loader *l, batch_slot *s, int64_t k, ig_tensor **x, ig_tensor **y) {
    if (s->status != IG_OK) {
        igi_error(s->status, "%s", s->msg);
        return s->status;
    }
    bool partial = k == l->nb - 1 && s->px;
    *x = partial ? s->px : s->x;
    *y = partial ? s->py : s->y;
    return 1;
}

int ig_loader_next(ig_loader *l, ig_tensor **x, ig_tensor **y) {
    if (!l || !x || !y) return igi_error_null("ig_loader_next", !l ? "l" : !x ? "x" : "y");
    *x = *y = NULL;
    if (!l->started) ig_loader_start_epoch(l, 0);
    if (l->nworkers == 0) {
        if (l->cur >= l->nb) return 0;
        int64_t k = l->cur++;
        build_batch(l, &l->workers[0], k, &l->slots[0], 0, false);
        return deliver(l, &l->slots[0], k, x, y);
    }
    pthread_mutex_lock(&l->mu);
    /* The batch returned last time is released now. */
    l->consumed = l->cur;
    pthread_cond_broadcast(&l->work_cv);
    if (l->cur >= l->nb) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    int64_t k = l->cur++;
    batch_slot *s = &l->slots[k % l->nbuf];
    while (s->batch != k) pthread_cond_wait(&l->ready_cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    /* The slot stays ours until the next call: no worker may claim it before then. */
    return deliver(l, s, k, x, y);
}

int64_t ig_loader_num_batches(const ig_loader *l) {
    if (!l) return igi_error_null("ig_loader_num_batches", "l");
    return l->nb;
}
