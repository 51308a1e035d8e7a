/*
 * tests/data/test_loader.c — the batch loader over a synthetic dataset (item i holds values
 * derived from i, label i % 7): order and labels against ig_dataset_get, the partial last
 * batch, drop_last, shuffling against ig_sampler_indices, ranks, bitwise-equal batches for
 * 0, 1 and 3 workers, read errors carried from a worker to the caller, restarting an epoch
 * midway, creation inside a scope, no allocation from the OS after the first epoch, and
 * pin_memory leaving batches unchanged (tests/cuda/test_cuda_pinned.c has its device side).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor_impl.h"
#include "ignis.h"

#include "../test_util.h"

typedef struct fake {
    int64_t n, numel;
    int64_t fail_index; /* -1: none */
} fake;

static int64_t fake_len(void *ctx) { return ((fake *)ctx)->n; }

static ig_status fake_read(void *ctx, int64_t i, float *x, int64_t *label) {
    fake *f = ctx;
    if (i == f->fail_index) return igi_error(IG_ERR_IO, "fake.bin: cannot read item %lld", (long long)i);
    for (int64_t k = 0; k < f->numel; k++) x[k] = (float)((i * 131 + k * 7) % 97) / 97.0f;
    *label = i % 7;
    return IG_OK;
}

static void fake_free(void *ctx) { free(ctx); }

/* n items of shape [c,h,w] (ndim 3) or [w] (ndim 1). */
static ig_dataset *fake_dataset(int64_t n, int ndim, int c, int h, int w, int64_t fail_index) {
    static const ig_dataset_ops ops = {fake_len, fake_read, fake_free};
    fake *f = malloc(sizeof *f);
    f->n = n;
    f->numel = ndim == 3 ? (int64_t)c * h * w : w;
    f->fail_index = fail_index;
    int64_t shape[3] = {c, h, w};
    ig_dataset *d = ndim == 3 ? ig_dataset_new(&ops, f, 3, shape, 7, NULL)
                              : ig_dataset_new(&ops, f, 1, (int64_t[]){w}, 7, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    return d;
}

/* Checks batch x/y against the dataset items idx[0..b). */
static void check_batch(ig_dataset *d, ig_tensor *x, ig_tensor *y, const int64_t *idx, int64_t b,
                        int64_t numel) {
    cr_assert_eq(ig_tensor_size(x, 0), b);
    cr_assert_eq(ig_tensor_size(y, 0), b);
    cr_assert_eq(ig_tensor_dtype(y), IG_I64);
    const float *xp = ig_tensor_data(x);
    const int64_t *yp = ig_tensor_data(y);
    float *want = malloc((size_t)numel * sizeof *want);
    for (int64_t i = 0; i < b; i++) {
        int64_t label;
        cr_assert_eq(ig_dataset_get(d, idx[i], want, &label), IG_OK);
        cr_assert_eq(yp[i], label, "sample %lld", (long long)i);
        cr_assert_eq(memcmp(xp + i * numel, want, (size_t)numel * sizeof *want), 0, "sample %lld", (long long)i);
    }
    free(want);
}

Test(data, loader_order_labels_and_last_batch) {
    for (int workers = 0; workers <= 2; workers += 2) {
        ig_dataset *d = fake_dataset(10, 3, 1, 4, 4, -1);
        ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 3, .num_workers = workers});
        cr_assert_not_null(l, "%s", ig_last_error());
        cr_assert_eq(ig_loader_num_batches(l), 4);
        cr_assert_eq(ig_loader_start_epoch(l, 0), IG_OK);
        ig_tensor *x, *y;
        int64_t idx[3];
        for (int64_t k = 0; k < 4; k++) {
            cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
            int64_t b = k < 3 ? 3 : 1;
            cr_assert_eq(ig_tensor_ndim(x), 4);
            const int64_t *s = ig_tensor_shape(x);
            cr_assert(s[0] == b && s[1] == 1 && s[2] == 4 && s[3] == 4);
            for (int64_t i = 0; i < b; i++) idx[i] = k * 3 + i;
            check_batch(d, x, y, idx, b, 16);
        }
        cr_assert_eq(ig_loader_next(l, &x, &y), 0);
        cr_assert_eq(ig_loader_next(l, &x, &y), 0, "the end stays the end");
        ig_loader_free(l);
        ig_dataset_free(d);
    }
}

Test(data, loader_drop_last_and_vector_items) {
    ig_dataset *d = fake_dataset(10, 1, 0, 0, 5, -1);
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 4, .drop_last = true, .num_workers = 1});
    cr_assert_not_null(l, "%s", ig_last_error());
    cr_assert_eq(ig_loader_num_batches(l), 2);
    ig_tensor *x, *y;
    int got = 0, r;
    while ((r = ig_loader_next(l, &x, &y)) == 1) {
        cr_assert_eq(ig_tensor_ndim(x), 2);
        cr_assert(ig_tensor_size(x, 0) == 4 && ig_tensor_size(x, 1) == 5);
        got++;
    }
    cr_assert_eq(r, 0);
    cr_assert_eq(got, 2);
    ig_loader_free(l);
    ig_dataset_free(d);
}

Test(data, loader_shuffle_and_rank_follow_the_sampler) {
    ig_dataset *d = fake_dataset(23, 3, 2, 3, 3, -1);
    for (int rank = 0; rank < 2; rank++) {
        ig_loader_opts o = {.batch_size = 5, .shuffle = true, .seed = 99, .num_workers = 2, .rank = rank, .world_size = 2};
        ig_loader *l = ig_loader_new(d, &o);
        cr_assert_not_null(l, "%s", ig_last_error());
        int64_t cnt = ig_sampler_count(23, rank, 2, false);
        cr_assert_eq(cnt, 12);
        cr_assert_eq(ig_loader_num_batches(l), 3);
        for (int64_t epoch = 0; epoch < 2; epoch++) {
            int64_t order[12];
            cr_assert_eq(ig_sampler_indices(23, true, 99, epoch, rank, 2, false, order), IG_OK);
            cr_assert_eq(ig_loader_start_epoch(l, epoch), IG_OK);
            ig_tensor *x, *y;
            for (int64_t k = 0; k < 3; k++) {
                cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
                check_batch(d, x, y, order + 5 * k, k < 2 ? 5 : 2, 18);
            }
            cr_assert_eq(ig_loader_next(l, &x, &y), 0);
        }
        ig_loader_free(l);
    }
    ig_dataset_free(d);
}

/* Every batch of two epochs, concatenated, for a worker count. */
static float *run_epochs_pinned(ig_dataset *d, const ig_transform *t, int workers, bool pin, int64_t *nfloats) {
    ig_loader_opts o = {.batch_size = 7, .shuffle = true, .seed = 1234, .num_workers = workers,
                        .prefetch = workers == 3 ? 1 : 0, .transform = t, .pin_memory = pin};
    ig_loader *l = ig_loader_new(d, &o);
    cr_assert_not_null(l, "%s", ig_last_error());
    size_t cap = 2 * 50 * (3 * 6 * 6 + 1), used = 0;
    float *all = malloc(cap * sizeof *all);
    for (int64_t e = 0; e < 2; e++) {
        cr_assert_eq(ig_loader_start_epoch(l, e), IG_OK);
        ig_tensor *x, *y;
        int r;
        while ((r = ig_loader_next(l, &x, &y)) == 1) {
            int64_t nx = ig_tensor_numel(x), ny = ig_tensor_numel(y);
            cr_assert_leq(used + (size_t)(nx + ny), cap);
            memcpy(all + used, ig_tensor_data(x), (size_t)nx * sizeof(float));
            used += (size_t)nx;
            const int64_t *yp = ig_tensor_data(y);
            for (int64_t i = 0; i < ny; i++) all[used++] = (float)yp[i];
        }
        cr_assert_eq(r, 0, "%s", ig_last_error());
    }
    ig_loader_free(l);
    *nfloats = (int64_t)used;
    return all;
}

static float *run_epochs(ig_dataset *d, const ig_transform *t, int workers, int64_t *nfloats) {
    return run_epochs_pinned(d, t, workers, false, nfloats);
}

Test(data, loader_batches_identical_for_any_worker_count) {
    ig_dataset *d = fake_dataset(50, 3, 3, 8, 8, -1);
    ig_transform *t = ig_tf_compose(4, (ig_transform *[]){
        ig_tf_random_crop(6, 6, 2, IG_PAD_REFLECT), ig_tf_random_hflip(0.5), ig_tf_color_jitter(0.2, 0.2, 0.2),
        ig_tf_normalize(3, (float[]){0.5f, 0.4f, 0.3f}, (float[]){0.2f, 0.25f, 0.3f})});
    cr_assert_not_null(t, "%s", ig_last_error());
    int64_t n0, n1, n3;
    float *a = run_epochs(d, t, 0, &n0), *b = run_epochs(d, t, 1, &n1), *c = run_epochs(d, t, 3, &n3);
    cr_assert_eq(n0, 2 * 50 * (3 * 6 * 6 + 1));
    cr_assert(n0 == n1 && n0 == n3);
    cr_assert_eq(memcmp(a, b, (size_t)n0 * sizeof *a), 0, "1 worker differs from 0");
    cr_assert_eq(memcmp(a, c, (size_t)n0 * sizeof *a), 0, "3 workers differ from 0");
    /* And the transform was applied with the item's key: sample 0 of epoch 0. */
    int64_t order[50], label;
    cr_assert_eq(ig_sampler_indices(50, true, 1234, 0, 0, 1, false, order), IG_OK);
    float item[192], want[108];
    cr_assert_eq(ig_dataset_get(d, order[0], item, &label), IG_OK);
    cr_assert_eq(ig_transform_apply(t, item, 3, 8, 8, want, 1234, 0, (uint64_t)order[0]), IG_OK);
    cr_assert_eq(memcmp(a, want, sizeof want), 0);
    free(a);
    free(b);
    free(c);
    ig_transform_free(t);
    ig_dataset_free(d);
}

Test(data, loader_read_errors_surface_with_message) {
    for (int workers = 0; workers <= 2; workers++) {
        ig_dataset *d = fake_dataset(20, 3, 1, 2, 2, 9); /* item 9 is in batch 2 (of 4) */
        ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 4, .num_workers = workers});
        cr_assert_not_null(l, "%s", ig_last_error());
        ig_tensor *x, *y;
        int results[6];
        for (int k = 0; k < 6; k++) {
            ig_clear_error();
            results[k] = ig_loader_next(l, &x, &y);
            if (k == 2) {
                cr_assert_eq(results[k], IG_ERR_IO, "workers %d: got %d", workers, results[k]);
                ASSERT_ERR(IG_ERR_IO, "fake.bin");
                cr_assert(strstr(ig_last_error(), "item 9"), "%s", ig_last_error());
                cr_assert_null(x);
            }
        }
        cr_assert(results[0] == 1 && results[1] == 1 && results[3] == 1 && results[4] == 1 && results[5] == 0,
                  "the loader goes on past the failed batch");
        ig_loader_free(l);
        ig_dataset_free(d);
    }
}

Test(data, loader_restart_epoch_midway) {
    ig_dataset *d = fake_dataset(40, 3, 1, 3, 3, -1);
    ig_transform *t = ig_tf_random_hflip(0.5);
    ig_loader_opts o = {.batch_size = 4, .shuffle = true, .seed = 5, .num_workers = 2, .transform = t};
    ig_loader *l = ig_loader_new(d, &o), *fresh = ig_loader_new(d, &o);
    cr_assert(l && fresh, "%s", ig_last_error());
    ig_tensor *x, *y, *fx, *fy;
    cr_assert_eq(ig_loader_start_epoch(l, 0), IG_OK);
    cr_assert_eq(ig_loader_next(l, &x, &y), 1);
    cr_assert_eq(ig_loader_next(l, &x, &y), 1);
    /* Workers are busy prefetching epoch 0; restart as epoch 3. */
    cr_assert_eq(ig_loader_start_epoch(l, 3), IG_OK);
    cr_assert_eq(ig_loader_start_epoch(fresh, 3), IG_OK);
    int batches = 0, r;
    while ((r = ig_loader_next(l, &x, &y)) == 1) {
        cr_assert_eq(ig_loader_next(fresh, &fx, &fy), 1);
        cr_assert_eq(memcmp(ig_tensor_data(x), ig_tensor_data(fx), 4 * 9 * sizeof(float)), 0);
        cr_assert_eq(memcmp(ig_tensor_data(y), ig_tensor_data(fy), 4 * sizeof(int64_t)), 0);
        batches++;
    }
    cr_assert_eq(r, 0);
    cr_assert_eq(batches, 10);
    /* Restart again right away, twice, then free while workers run. */
    cr_assert_eq(ig_loader_start_epoch(l, 4), IG_OK);
    cr_assert_eq(ig_loader_start_epoch(l, 5), IG_OK);
    cr_assert_eq(ig_loader_next(l, &x, &y), 1);
    ig_loader_free(l);
    ig_loader_free(fresh);
    ig_transform_free(t);
    ig_dataset_free(d);
}

/* pin_memory only changes where the batch bytes live (page-locked memory when CUDA is
 * there, ordinary memory otherwise): the batches are bit for bit the same, for any worker
 * count, and an error set before ig_loader_new is still there after it (the failed CUDA
 * lookup of a CPU-only run is not reported). */
Test(data, loader_pin_memory_changes_nothing) {
    ig_dataset *d = fake_dataset(50, 3, 3, 8, 8, -1);
    ig_transform *t = ig_tf_compose(2, (ig_transform *[]){ig_tf_random_crop(6, 6, 2, IG_PAD_REFLECT),
                                                         ig_tf_random_hflip(0.5)});
    cr_assert_not_null(t, "%s", ig_last_error());
    for (int workers = 0; workers <= 3; workers += 3) {
        int64_t n0, n1;
        float *a = run_epochs(d, t, workers, &n0), *b = run_epochs_pinned(d, t, workers, true, &n1);
        cr_assert_eq(n0, 2 * 50 * (3 * 6 * 6 + 1));
        cr_assert_eq(n0, n1);
        cr_assert_eq(memcmp(a, b, (size_t)n0 * sizeof *a), 0, "%d workers: pinned batches differ", workers);
        free(a);
        free(b);
    }
    igi_error(IG_ERR_ARG, "earlier: a failure the caller has not looked at");
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 5, .pin_memory = true});
    cr_assert_not_null(l, "%s", ig_last_error());
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert_str_eq(ig_last_error(), "earlier: a failure the caller has not looked at");
    ig_clear_error();
    ig_tensor *x, *y;
    cr_assert_eq(ig_loader_next(l, &x, &y), 1, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_device(x), IG_CPU);
    /* pinned exactly when CUDA is usable (no leftover error from asking) */
    bool cuda = ig_cuda_is_available();
    ig_clear_error();
    cr_assert_eq(x->storage->pinned_by, cuda ? IG_CUDA : IG_CPU);
    cr_assert_eq(y->storage->pinned_by, cuda ? IG_CUDA : IG_CPU);
    ig_loader_free(l);
    ig_mem_stats ps;
    igi_pinned_mem_stats(&ps);
    cr_assert_eq(ps.live_bytes, 0, "pinned bytes left live: %lld", (long long)ps.live_bytes);
    ig_transform_free(t);
    ig_dataset_free(d);
}

Test(data, loader_no_os_allocation_after_first_epoch) {
    ig_dataset *d = fake_dataset(64, 3, 1, 8, 8, -1);
    ig_transform *t = ig_tf_compose(2, (ig_transform *[]){ig_tf_random_crop(8, 8, 2, IG_PAD_CONSTANT),
                                                         ig_tf_random_hflip(0.5)});
    /* Made inside a scope: the loader's tensors must survive its end. */
    ig_scope *s = ig_scope_begin();
    ig_loader *l = ig_loader_new(d, &(ig_loader_opts){.batch_size = 10, .shuffle = true, .num_workers = 2,
                                                      .transform = t});
    cr_assert_not_null(l, "%s", ig_last_error());
    ig_scope_end(s);
    ig_tensor *x, *y;
    ig_mem_stats ms;
    int64_t warm = -1;
    for (int64_t e = 0; e < 4; e++) {
        cr_assert_eq(ig_loader_start_epoch(l, e), IG_OK);
        int r;
        while ((r = ig_loader_next(l, &x, &y)) == 1) {
            ig_scope *step = ig_scope_begin();
            ig_tensor *m = ig_mean(x, 0, NULL, false); /* use the batch in a scoped op */
            cr_assert_not_null(m, "%s", ig_last_error());
            ig_scope_end(step);
        }
        cr_assert_eq(r, 0);
        ig_mem_get_stats(IG_CPU, &ms);
        if (e == 0) warm = ms.os_allocs;
        else cr_assert_eq(ms.os_allocs, warm, "epoch %lld allocated from the OS", (long long)e);
    }
    ig_loader_free(l);
    ig_transform_free(t);
    ig_dataset_free(d);
}

Test(data, loader_argument_errors) {
    ig_dataset *d = fake_dataset(10, 3, 1, 4, 4, -1);
    ig_clear_error();
    cr_assert_null(ig_loader_new(NULL, &(ig_loader_opts){.batch_size = 2}));
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_new");
    ig_clear_error();
    cr_assert_null(ig_loader_new(d, NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_new");
    ig_clear_error();
    cr_assert_null(ig_loader_new(d, &(ig_loader_opts){.batch_size = 0}));
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_new");
    ig_clear_error();
    cr_assert_null(ig_loader_new(d, &(ig_loader_opts){.batch_size = 2, .rank = 2, .world_size = 2}));
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_new");
    ig_clear_error();
    cr_assert_null(ig_loader_new(d, &(ig_loader_opts){.batch_size = 2, .num_workers = -1}));
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_new");
    /* A transform that does not take the items: normalize for 3 channels on 1. */
    ig_transform *t = ig_tf_normalize(3, (float[]){0, 0, 0}, (float[]){1, 1, 1});
    ig_clear_error();
    cr_assert_null(ig_loader_new(d, &(ig_loader_opts){.batch_size = 2, .num_workers = 1, .transform = t}));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_loader_new");
    ig_transform_free(t);
    /* A transform on vector items. */
    ig_dataset *v = fake_dataset(10, 1, 0, 0, 5, -1);
    t = ig_tf_random_hflip(0.5);
    ig_clear_error();
    cr_assert_null(ig_loader_new(v, &(ig_loader_opts){.batch_size = 2, .transform = t}));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_loader_new");
    ig_transform_free(t);
    ig_tensor *x, *y;
    ig_clear_error();
    cr_assert_eq(ig_loader_next(NULL, &x, &y), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_next");
    ig_clear_error();
    cr_assert_eq(ig_loader_start_epoch(NULL, 0), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_loader_start_epoch");
    ig_loader_free(NULL);
    /* An empty dataset gives no batches; next starts epoch 0 by itself. */
    ig_dataset *e = fake_dataset(0, 3, 1, 4, 4, -1);
    ig_loader *l = ig_loader_new(e, &(ig_loader_opts){.batch_size = 2, .num_workers = 2});
    cr_assert_not_null(l, "%s", ig_last_error());
    cr_assert_eq(ig_loader_num_batches(l), 0);
    cr_assert_eq(ig_loader_next(l, &x, &y), 0);
    ig_loader_free(l);
    ig_dataset_free(e);
    ig_dataset_free(v);
    ig_dataset_free(d);
}
