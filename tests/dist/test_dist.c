/*
 * tests/dist/test_dist.c — dist/ in one process: the single backend (every collective the
 * identity), argument errors, check_same, the bucket plan, and ig_ddp on one rank (same
 * result as plain training; buckets start during backward unless no_overlap).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../dist/dist_impl.h"
#include "../../ignis.h"

static ig_dist *single(void) {
    ig_dist *d = ig_dist_init(NULL, NULL);
    cr_assert(d, "%s", ig_last_error());
    cr_assert_str_eq(ig_dist_backend(d), "single");
    return d;
}

Test(dist, single_backend_group_of_one) {
    ig_dist *d = single();
    cr_assert_eq(ig_dist_rank(d), 0);
    cr_assert_eq(ig_dist_world_size(d), 1);
    cr_assert_eq(ig_dist_local_rank(d), 0);
    ig_dist_set_timeout(d, 5.0);
    cr_assert_eq(d->timeout, 5.0);
    ig_dist_set_timeout(d, -1.0); /* ignored */
    cr_assert_eq(d->timeout, 5.0);
    ig_dist_finalize(d);
    ig_dist_finalize(NULL);
    /* NULL groups read as a single process. */
    cr_assert_eq(ig_dist_world_size(NULL), 1);
    cr_assert_eq(ig_dist_rank(NULL), 0);
}

Test(dist, single_backend_collectives_are_identity) {
    ig_dist *d = single();
    ig_scope *s = ig_scope_begin();
    const ig_dtype dts[4] = {IG_F32, IG_F64, IG_I32, IG_I64};
    for (int k = 0; k < 4; k++) {
        ig_tensor *t = ig_arange(0, 6, 1, dts[k]);
        cr_assert_eq(ig_dist_all_reduce_sum(d, t), IG_OK);
        for (int i = 0; i < 6; i++) cr_assert_eq(ig_tensor_get(t, i), (double)i);
        cr_assert_eq(ig_dist_broadcast(d, t, 0), IG_OK);
        for (int i = 0; i < 6; i++) cr_assert_eq(ig_tensor_get(t, i), (double)i);
    }
    double v[2] = {1.5, -2};
    cr_assert_eq(ig_dist_all_reduce_doubles(d, v, 2), IG_OK);
    cr_assert(v[0] == 1.5 && v[1] == -2);
    cr_assert_eq(ig_dist_all_reduce_doubles(d, NULL, 0), IG_OK);
    cr_assert_eq(ig_dist_barrier(d), IG_OK);
    cr_assert_eq(ig_dist_check_same(d, "abc", 3, "a string"), IG_OK);
    cr_assert_eq(ig_dist_check_same(d, NULL, 0, "nothing"), IG_OK);
    /* Nonblocking through the table: complete at once. */
    igi_dist_req req = {.active = true};
    cr_assert_eq(d->be->iall_reduce_start(d, v, 2, IG_F64, &req, "test"), IG_OK);
    cr_assert(d->be->iall_reduce_test(d, &req));
    cr_assert_eq(d->be->iall_reduce_wait(d, &req, "test"), IG_OK);
    cr_assert(!req.active);
    ig_scope_end(s);
    ig_dist_finalize(d);
}

Test(dist, argument_errors_name_the_call) {
    ig_dist *d = single();
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = ig_zeros(IG_DIMS(2, 3), IG_F32);
    ig_clear_error();
    cr_assert_neq(ig_dist_all_reduce_sum(NULL, t), IG_OK);
    cr_assert(strstr(ig_last_error(), "ig_dist_all_reduce_sum"));
    ig_clear_error();
    cr_assert_eq(ig_dist_all_reduce_sum(d, ig_zeros(IG_DIMS(2), IG_U8)), IG_ERR_DTYPE);
    cr_assert(strstr(ig_last_error(), "ig_dist_all_reduce_sum") && strstr(ig_last_error(), "uint8"),
              "%s", ig_last_error());
    cr_assert_eq(ig_dist_all_reduce_sum(d, ig_transpose(t, 0, 1)), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "contiguous"));
    cr_assert_eq(ig_dist_all_reduce_doubles(d, NULL, 2), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_dist_all_reduce_doubles"));
    cr_assert_eq(ig_dist_all_reduce_doubles(d, (double[1]){0}, -1), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_dist_all_reduce_doubles"));
    cr_assert_eq(ig_dist_broadcast(d, t, 1), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_dist_broadcast") && strstr(ig_last_error(), "root 1"));
    cr_assert_eq(ig_dist_broadcast(d, ig_slice(t, 1, 0, 3, 2), 0), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_dist_broadcast"));
    ig_clear_error();
    cr_assert_eq(ig_dist_barrier(NULL), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_dist_barrier"));
    cr_assert_eq(ig_dist_check_same(d, NULL, 4, "x"), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_dist_check_same"));
    ig_clear_error();
    cr_assert_eq(ig_ddp_step(NULL), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_ddp_step"));
    ig_clear_error();
    cr_assert_eq(ig_ddp_sync_buffers(NULL), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_ddp_sync_buffers"));
    ig_clear_error();
    cr_assert_null(ig_ddp_new(d, NULL, NULL, NULL));
    cr_assert(strstr(ig_last_error(), "ig_ddp_new"));
    ig_scope_end(s);
    ig_dist_finalize(d);
}

Test(dist, fnv_hash_known_values) {
    /* FNV-1a 64 reference values: "" and "a". */
    cr_assert_eq(igi_fnv1a64(IGI_FNV_OFFSET, "", 0), 0xcbf29ce484222325ull);
    cr_assert_eq(igi_fnv1a64(IGI_FNV_OFFSET, "a", 1), 0xaf63dc4c8601ec8cull);
    /* Streaming: two halves equal one pass. */
    cr_assert_eq(igi_fnv1a64(igi_fnv1a64(IGI_FNV_OFFSET, "ab", 2), "cd", 2), igi_fnv1a64(IGI_FNV_OFFSET, "abcd", 4));
}

Test(dist, launcher_detection_from_environment) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    char *saved[4];
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    int w = 0;
    cr_assert(!igi_dist_launched(&w));
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    cr_assert(igi_dist_launched(&w));
    cr_assert_eq(w, 4);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMIX_RANK", "0", 1);
    cr_assert(igi_dist_launched(&w));
    cr_assert_eq(w, -1); /* PMIx alone does not say the size */
    unsetenv("PMIX_RANK");
    setenv("PMI_SIZE", "2", 1);
    cr_assert(igi_dist_launched(&w));
    cr_assert_eq(w, 2);
#ifndef IGNIS_WITH_MPI
    /* Without MPI a multi-process launch is refused clearly. */
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_assert(strstr(ig_last_error(), "ig_dist_init") && strstr(ig_last_error(), "without MPI"));
#endif
    unsetenv("PMI_SIZE");
    for (int i = 0; i < 4; i++)
        if (saved[i]) {
            setenv(vars[i], saved[i], 1);
            free(saved[i]);
        }
}

/* ---- bucket plan ---------------------------------------------------------------------------- */

Test(dist, bucket_plan_reverse_order_and_caps) {
    /* 4-byte elements; first cap 100 bytes, then 2000. Walking from the last parameter:
     * p4 (80 B) -> bucket 0; p3 (4000 B) would pass 100 -> bucket 1, alone although above
     * 2000; p2 (20 B) would pass 2000 -> bucket 2; p1 (1200 B) and p0 (40 B) fit there. */
    const int64_t numel[5] = {10, 300, 5, 1000, 20};
    int b[5] = {-1, -1, -1, -1, -1};
    cr_assert_eq(igi_ddp_plan(numel, 5, 4, 100, 2000, b), 3);
    const int want[5] = {2, 2, 2, 1, 0};
    for (int i = 0; i < 5; i++) cr_assert_eq(b[i], want[i], "parameter %d in bucket %d, expected %d", i, b[i], want[i]);
    /* Everything fits in the first bucket. */
    cr_assert_eq(igi_ddp_plan(numel, 5, 4, 1 << 20, 1 << 20, b), 1);
    for (int i = 0; i < 5; i++) cr_assert_eq(b[i], 0);
    /* Tiny caps: one parameter per bucket, the last parameter first. */
    cr_assert_eq(igi_ddp_plan(numel, 5, 4, 1, 1, b), 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(b[i], 4 - i);
    /* No parameters, no buckets. */
    cr_assert_eq(igi_ddp_plan(numel, 0, 4, 1, 1, b), 0);
}

/* A model, its flat SGD optimizer and a DDP wrapper on the single backend. */
typedef struct fixture {
    ig_dist *d;
    ig_module *m;
    ig_optimizer *o;
    ig_ddp *p;
} fixture;

static fixture make(const char *model, const ig_ddp_opts *opts) {
    fixture f = {single(), NULL, NULL, NULL};
    ig_manual_seed(7);
    f.m = ig_model_create(model, 1, 8, 8, 10);
    cr_assert(f.m, "%s", ig_last_error());
    cr_assert_eq(ig_module_flatten(f.m), IG_OK);
    ig_tensor *flat = ig_module_flat_params(f.m);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.1;
    so.momentum = 0.9;
    f.o = ig_optim_sgd(&flat, 1, &so);
    cr_assert(f.o);
    f.p = ig_ddp_new(f.d, f.m, f.o, opts);
    cr_assert(f.p, "%s", ig_last_error());
    return f;
}

static void unmake(fixture *f) {
    ig_ddp_free(f->p);
    ig_optim_free(f->o);
    ig_module_free(f->m);
    ig_dist_finalize(f->d);
}

/* Forward + backward of a cross-entropy loss on a fixed batch (in the caller's scope). */
static void backward(ig_module *m, int seed) {
    ig_manual_seed((uint64_t)seed);
    ig_tensor *x = ig_randn(IG_DIMS(6, 1, 8, 8), IG_F32);
    ig_tensor *y = ig_randint(0, 10, IG_DIMS(6), IG_I64);
    ig_tensor *loss = ig_cross_entropy(ig_module_forward(m, x), y, NULL);
    cr_assert(loss, "%s", ig_last_error());
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
}

Test(dist, ddp_buckets_cover_flat_gradients_last_first) {
    ig_ddp_opts o = {.bucket_bytes = 40000, .first_bucket_bytes = 4000};
    fixture f = make("cnn", &o);
    int nb = igi_ddp_num_buckets(f.p);
    int64_t total = ig_tensor_numel(ig_module_flat_grads(f.m));
    cr_assert_gt(nb, 2);
    /* Bucket 0 ends the buffer; each next one ends where the previous starts. */
    int64_t end = total;
    for (int k = 0; k < nb; k++) {
        int64_t off, n;
        igi_ddp_bucket_range(f.p, k, &off, &n);
        cr_assert_eq(off + n, end, "bucket %d [%lld, %lld) does not end at %lld", k, (long long)off,
                     (long long)(off + n), (long long)end);
        cr_assert_gt(n, 0);
        end = off;
    }
    cr_assert_eq(end, 0);
    /* The first bucket is small: cnn ends with Linear(128,10), weight 1280 + bias 10 floats
     * = 5160 B > 4000, so bucket 0 is that bias alone; bucket 1 takes the weight and the
     * bias of Linear(256,128) (128 floats), and stops before that layer's weight (131072 B,
     * more than 40000: a bucket of its own). */
    int64_t off, n;
    igi_ddp_bucket_range(f.p, 0, &off, &n);
    cr_assert_eq(n, 10);
    igi_ddp_bucket_range(f.p, 1, &off, &n);
    cr_assert_eq(n, 1280 + 128);
    igi_ddp_bucket_range(f.p, 2, &off, &n);
    cr_assert_eq(n, 256 * 128);
    unmake(&f);
}

Test(dist, ddp_default_buckets) {
    /* mlp on 1x8x8: 64*512+512 + 512*256+256 + 256*10+10 floats = 167,690 floats = 670,760
     * bytes: under the 1 MiB first bucket, so one bucket. */
    fixture f = make("mlp", NULL);
    cr_assert_eq(igi_ddp_num_buckets(f.p), 1);
    unmake(&f);
}

Test(dist, ddp_buckets_start_during_backward) {
    ig_ddp_opts o = {.bucket_bytes = 40000, .first_bucket_bytes = 4000};
    fixture f = make("cnn", &o);
    ig_scope *s = ig_scope_begin();
    backward(f.m, 1);
    cr_assert_eq(igi_ddp_num_started(f.p), igi_ddp_num_buckets(f.p));
    cr_assert_eq(ig_ddp_step(f.p), IG_OK);
    cr_assert_eq(igi_ddp_num_started(f.p), 0); /* reset for the next step */
    ig_scope_end(s);
    unmake(&f);
    o.no_overlap = true;
    f = make("cnn", &o);
    s = ig_scope_begin();
    backward(f.m, 1);
    cr_assert_eq(igi_ddp_num_started(f.p), 0);
    cr_assert_eq(ig_ddp_step(f.p), IG_OK);
    ig_scope_end(s);
    unmake(&f);
}

Test(dist, ddp_single_process_equals_plain_training) {
    ig_ddp_opts o = {.bucket_bytes = 40000, .first_bucket_bytes = 4000};
    fixture f = make("cnn", &o);
    ig_manual_seed(7);
    ig_module *ref = ig_model_create("cnn", 1, 8, 8, 10);
    cr_assert_eq(ig_module_flatten(ref), IG_OK);
    ig_tensor *rflat = ig_module_flat_params(ref);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.1;
    so.momentum = 0.9;
    ig_optimizer *ro = ig_optim_sgd(&rflat, 1, &so);
    for (int step = 0; step < 3; step++) {
        ig_scope *s = ig_scope_begin();
        backward(f.m, 100 + step);
        cr_assert_eq(ig_ddp_step(f.p), IG_OK, "%s", ig_last_error());
        ig_optim_zero_grad(f.o);
        backward(ref, 100 + step);
        cr_assert_eq(ig_optim_step(ro), IG_OK);
        ig_optim_zero_grad(ro);
        ig_scope_end(s);
    }
    ig_tensor *a = ig_module_flat_params(f.m);
    int64_t n = ig_tensor_numel(a);
    const float *pa = ig_tensor_data(a), *pb = ig_tensor_data(rflat);
    for (int64_t i = 0; i < n; i++) cr_assert_eq(pa[i], pb[i], "element %lld", (long long)i);
    cr_assert_eq(ig_ddp_sync_buffers(f.p), IG_OK);
    ig_optim_free(ro);
    ig_module_free(ref);
    unmake(&f);
}

Test(dist, ddp_backward_twice_before_step_is_an_error) {
    fixture f = make("mlp", NULL);
    ig_scope *s = ig_scope_begin();
    backward(f.m, 1);
    backward(f.m, 2);
    cr_assert_eq(ig_ddp_step(f.p), IG_ERR_STATE);
    cr_assert(strstr(ig_last_error(), "ig_ddp_step") && strstr(ig_last_error(), "twice"), "%s", ig_last_error());
    /* The wrapper is usable again after the error. */
    ig_optim_zero_grad(f.o);
    backward(f.m, 3);
    cr_assert_eq(ig_ddp_step(f.p), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
    unmake(&f);
}

Test(dist, ddp_options_errors) {
    ig_dist *d = single();
    ig_module *m = ig_model_create("mlp", 1, 4, 4, 3);
    cr_assert_eq(ig_module_flatten(m), IG_OK);
    ig_tensor *flat = ig_module_flat_params(m);
    ig_optimizer *o = ig_optim_sgd(&flat, 1, NULL);
    ig_ddp_opts bad = {.bucket_bytes = -1};
    cr_assert_null(ig_ddp_new(d, m, o, &bad));
    cr_assert(strstr(ig_last_error(), "ig_ddp_new") && strstr(ig_last_error(), "bucket"));
    cr_assert_null(ig_ddp_new(NULL, m, o, NULL));
    cr_assert(strstr(ig_last_error(), "ig_ddp_new"));
    cr_assert_null(ig_ddp_new(d, m, NULL, NULL));
    cr_assert(strstr(ig_last_error(), "ig_ddp_new"));
    ig_ddp_free(NULL);
    ig_optim_free(o);
    ig_module_free(m);
    ig_dist_finalize(d);
}

Test(dist, ddp_sync_bn_single_process_equals_plain) {
    /* With one rank the group's statistics are the rank's own: same as plain BatchNorm. */
    ig_ddp_opts o = {.sync_bn = true};
    ig_dist *d = single();
    ig_manual_seed(3);
    ig_module *m = ig_model_create("resnet8", 1, 8, 8, 10), *ref = ig_model_create("resnet8", 1, 8, 8, 10);
    cr_assert_eq(ig_module_flatten(m), IG_OK);
    cr_assert_eq(ig_module_flatten(ref), IG_OK);
    ig_tensor *fm = ig_module_flat_params(m), *fr = ig_module_flat_params(ref);
    cr_assert_eq(ig_copy_(fr, fm), IG_OK);
    ig_optimizer *om = ig_optim_sgd(&fm, 1, NULL), *orf = ig_optim_sgd(&fr, 1, NULL);
    ig_ddp *p = ig_ddp_new(d, m, om, &o);
    cr_assert(p, "%s", ig_last_error());
    for (int step = 0; step < 2; step++) {
        ig_scope *s = ig_scope_begin();
        backward(m, 50 + step);
        cr_assert_eq(ig_ddp_step(p), IG_OK);
        backward(ref, 50 + step);
        cr_assert_eq(ig_optim_step(orf), IG_OK);
        ig_optim_zero_grad(om);
        ig_optim_zero_grad(orf);
        ig_scope_end(s);
    }
    const float *a = ig_tensor_data(fm), *b = ig_tensor_data(fr);
    for (int64_t i = 0; i < ig_tensor_numel(fm); i++) cr_assert_eq(a[i], b[i], "element %lld", (long long)i);
    const float *ra = ig_tensor_data(ig_module_get(m, "1.running_var"));
    const float *rb = ig_tensor_data(ig_module_get(ref, "1.running_var"));
    for (int i = 0; i < 16; i++) cr_assert_eq(ra[i], rb[i]);
    ig_ddp_free(p);
    ig_optim_free(om);
    ig_optim_free(orf);
    ig_module_free(m);
    ig_module_free(ref);
    ig_dist_finalize(d);
}
