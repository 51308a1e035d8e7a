/*
 * tests/dist/test_nccl.c — choosing the process group's backend (IGNIS_DIST), and the nccl
 * backend (cuda/nccl.c) as far as each machine allows.
 *
 * Everywhere: IGNIS_DIST's values and refusals; a device tensor refused by a host-only
 * backend and a model on the device refused by ig_ddp_new with several ranks (a stand-in
 * CUDA backend on host memory, as tests/cuda's cuda_fake); without a GPU, `mpirun -np 2
 * ignis train --device cuda` turning the group into nccl and ending within 60 s with the
 * cause (or refused by a build without NCCL), and with IGNIS_DIST=nccl
 * the multi-rank set-up (MPI, NCCL loaded, the all-gathered status) failing on every rank
 * for want of a GPU (or, without NCCL in the build, refused on every rank).
 * In builds with NCCL and without a GPU: the library-missing error (IGNIS_CUDA_LIBDIR
 * pointing nowhere) and the no-device error, from ig_dist_init, naming nccl and the cause.
 * On a GPU (skipped elsewhere, saying why): a 1-rank nccl group's collectives on device
 * memory, a nonblocking all-reduce's start/test/wait, and a few steps of ig_ddp on the GPU
 * matching the single backend bit for bit (a 1-rank all-reduce is the identity).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/cli_test_util.h"
#include "core/backend_impl.h"
#include "../cuda/fake_device.h"
#include "dist/dist_impl.h"
#include "ignis.h"
#include "mpi_test_util.h"

/* ---- IGNIS_DIST --------------------------------------------------------------------- */

Test(dist, ignis_dist_unknown_backend_is_refused) {
    setenv("IGNIS_DIST", "gloo", 1);
    ig_clear_error();
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_expect_eq(ig_last_status(), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_dist_init: IGNIS_DIST='gloo' is not a backend (single, mpi, nccl"), "%s",
              ig_last_error());
}

Test(dist, ignis_dist_single_is_one_process) {
    setenv("IGNIS_DIST", "single", 1);
    ig_dist *d = ig_dist_init(NULL, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_expect_str_eq(ig_dist_backend(d), "single");
    cr_expect_eq(ig_dist_world_size(d), 1);
    ig_dist_finalize(d);
}

Test(dist, ignis_dist_single_refuses_a_multi_process_launch) {
    setenv("IGNIS_DIST", "single", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1); /* what mpirun -np 4 sets */
    ig_clear_error();
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_expect(strstr(ig_last_error(), "ig_dist_init: IGNIS_DIST=single but an MPI launcher started 4 processes"), "%s",
              ig_last_error());
}

#ifndef IGNIS_WITH_NCCL
Test(dist, ignis_dist_nccl_without_nccl_says_so) {
    setenv("IGNIS_DIST", "nccl", 1);
    ig_clear_error();
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_expect_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "ig_dist_init: IGNIS_DIST=nccl but this ignis was built without NCCL"), "%s",
              ig_last_error());
}
#else
/* Skips unless the machine has no usable GPU (the no-device paths). */
static void need_no_gpu(void) {
    if (ig_cuda_is_available()) cr_skip_test("a CUDA device is present: the no-device error cannot happen here");
}

Test(dist, nccl_missing_library_names_it) {
    setenv("IGNIS_DIST", "nccl", 1);
    setenv("IGNIS_CUDA_LIBDIR", "/nonexistent/ignis-test", 1);
    ig_clear_error();
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_expect_eq(ig_last_status(), IG_ERR_DEVICE);
    const char *m = ig_last_error();
    cr_expect(strstr(m, "ig_dist_init: nccl: cannot load NCCL (libnccl.so.2 from IGNIS_CUDA_LIBDIR=/nonexistent/ignis-test)"),
              "%s", m);
}

#ifndef IGNIS_WITH_MPI
/* Without MPI nothing carries rank 0's NCCL id: a launcher's world of 2 is refused. */
Test(dist, nccl_without_mpi_refuses_several_processes) {
    setenv("IGNIS_DIST", "nccl", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1); /* what mpirun -np 2 sets */
    ig_clear_error();
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_expect_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "ig_dist_init: nccl: started by an MPI launcher (2 processes) but this ignis "
                                      "was built without MPI"),
              "%s", ig_last_error());
}
#endif

Test(dist, nccl_without_a_device_fails_at_init_naming_nccl) {
    need_no_gpu();
    setenv("IGNIS_DIST", "nccl", 1);
    unsetenv("IGNIS_CUDA_LIBDIR");
    ig_clear_error();
    cr_assert_null(ig_dist_init(NULL, NULL));
    cr_expect_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "ig_dist_init: nccl: no CUDA device on rank 0 (cudaGetDeviceCount: "), "%s",
              ig_last_error());
}

Test(dist, nccl_upgrade_without_a_device_leaves_the_group_as_it_was) {
    need_no_gpu();
    unsetenv("IGNIS_DIST");
    ig_dist *d = ig_dist_init(NULL, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_eq(igi_dist_use_nccl(d), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "nccl: no CUDA device"), "%s", ig_last_error());
    cr_expect_str_eq(ig_dist_backend(d), "single");
    double v = 2.5;
    cr_expect_eq(ig_dist_all_reduce_doubles(d, &v, 1), IG_OK, "%s", ig_last_error());
    cr_expect_eq(v, 2.5);
    ig_dist_finalize(d);
}
#endif

/* ---- device memory with a host-only backend (stand-in CUDA backend on host memory) --- */

static void *fake_alloc(size_t n) { return malloc(n ? n : 1); }
static void fake_free(void *p) { free(p); }
/* Elementwise copy of f32 operands with any strides (what flattening a module needs). */
static ig_status fake_ew_copy(const char *op, const igi_ew *e) {
    (void)op;
    for (int64_t i = 0; i < e->numel; i++) {
        int64_t rest = i, off[2] = {0, 0};
        for (int k = e->ndim - 1; k >= 0; k--) {
            int64_t idx = rest % e->shape[k];
            rest /= e->shape[k];
            off[0] += idx * e->strides[0][k];
            off[1] += idx * e->strides[1][k];
        }
        ((float *)(void *)e->data[0])[off[0]] = ((const float *)(const void *)e->data[1])[off[1]];
    }
    return IG_OK;
}
static ig_status fake_fill(const char *op, const igi_ew *e, double v) {
    (void)op;
    for (int64_t i = 0; i < e->numel; i++) ((float *)(void *)e->data[0])[i] = (float)v; /* contiguous here */
    return IG_OK;
}

/* SGD on m's flat parameters (flattening m). */
static ig_optimizer *make_sgd(ig_module *m, double momentum) {
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    ig_tensor *flat = ig_module_flat_params(m);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.1;
    so.momentum = momentum;
    ig_optimizer *o = ig_optim_sgd(&flat, 1, &so);
    cr_assert_not_null(o, "%s", ig_last_error());
    return o;
}

static const igi_backend fake_backend = {
    .name = "cuda",
    .raw_alloc = fake_alloc,
    .raw_free = fake_free,
    .memcpy_h2d = fake_copy,
    .memcpy_d2h = fake_copy,
    .memcpy_d2d = fake_copy,
    .memset_zero = fake_memset,
    .synchronize = fake_sync,
    .copy = fake_ew_copy,
    .fill = fake_fill,
};

Test(dist, host_only_backend_refuses_device_tensors) {
    igi_backend_register(IG_CUDA, &fake_backend);
    unsetenv("IGNIS_DIST");
    ig_dist *d = ig_dist_init(NULL, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    ig_scope *sc = ig_scope_begin();
    ig_tensor *t = ig_to(ig_ones(1, (const int64_t[]){3}, IG_F32), IG_CUDA);
    cr_assert_not_null(t, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_eq(ig_dist_all_reduce_sum(d, t), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "ig_dist_all_reduce_sum: the single backend takes CPU tensors only (a cuda "
                                      "tensor needs nccl)"),
              "%s", ig_last_error());
    ig_clear_error();
    cr_expect_eq(ig_dist_broadcast(d, t, 0), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "ig_dist_broadcast: the single backend takes CPU tensors only"), "%s",
              ig_last_error());
    ig_scope_end(sc);
    ig_dist_finalize(d);
}

/* ig_ddp_new with a model on the device and two ranks over a host-only backend: refused
 * before any collective (a stand-in group: the single table with world 2). */
Test(dist, ddp_refuses_a_device_model_over_a_host_only_backend) {
    igi_backend_register(IG_CUDA, &fake_backend);
    ig_dist d = {.be = &igi_dist_backend_single, .rank = 0, .world = 2, .timeout = 1};
    ig_manual_seed(3);
    ig_module *m = ig_nn_linear(4, 2, true);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_module_to(m, IG_CUDA), IG_OK, "%s", ig_last_error());
    ig_optimizer *o = make_sgd(m, 0);
    cr_assert_not_null(o, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_null(ig_ddp_new(&d, m, o, NULL));
    cr_expect_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "ig_ddp_new: the model is on cuda but the single backend moves host memory "
                                      "only (a model on a GPU needs nccl)"),
              "%s", ig_last_error());
    ig_optim_free(o);
    ig_module_free(m);
}

/* ---- `ignis train --device cuda` under mpirun ------------------------------------------ */

/* Runs `mpirun -np 2 ignis train --device cuda` on the synthetic dataset, IGNIS_DIST set to
 * dist (NULL: unset); the job must end, non-zero, within 60 s. */
static void mpi_cuda_train(mpi_job *j, const char *dist) {
    char mpirun[1024], dir[256], run[300];
    mpi_need(mpirun, sizeof mpirun);
    if (dist) setenv("IGNIS_DIST", dist, 1);
    else unsetenv("IGNIS_DIST");
    make_tmpdir(dir);
    write_syn_dataset(dir, 128, 64, 8);
    fmt_path(run, sizeof run, "%s/run", dir);
    const char *argv[] = {mpirun, "--oversubscribe", geteuid() == 0 ? "--allow-run-as-root" : "--oversubscribe",
                          "-np", "2", IGNIS_CLI, "train", "--data", dir, "--model", "mlp", "--batch", "16",
                          "--device", "cuda", "--quiet", "--out", run, NULL};
    mpi_launch l = mpi_spawn(argv);
    mpi_finish(&l, j, l.t0, 60.0);
    rm_tree(dir);
    cr_assert_neq(j->status, -1, "the job was still running after 60 s\n%s", j->out);
    cr_assert_neq(j->status, 0, "%s", j->out);
}

/* --device cuda under mpirun turns the MPI group into an nccl one (before anything touches
 * CUDA): without a GPU that fails on every rank, naming nccl and the cause; a build without
 * NCCL refuses, saying so. */
Test(dist, cli_mpi_cuda_train_becomes_nccl_or_says_why) {
    if (ig_cuda_is_available()) cr_skip_test("a CUDA device is present: tools/gpu-check.sh runs the GPU stages");
    static mpi_job j;
    mpi_cuda_train(&j, NULL);
#ifdef IGNIS_WITH_NCCL
    /* mpirun ends the job when the first rank exits, maybe before the other prints: each
     * rank's message says which ranks failed the step */
    cr_expect(strstr(j.out, "train: ig_dist_init: nccl: no CUDA device on rank "), "%s", j.out);
    cr_expect(strstr(j.out, "(cudaGetDeviceCount: "), "%s", j.out);
    cr_expect(strstr(j.out, "; 2 of 2 ranks could not select its GPU: 0, 1"), "%s", j.out);
#else
    cr_expect(strstr(j.out, "--device cuda with several processes needs the nccl backend, and this ignis was built "
                            "without NCCL"),
              "%s", j.out);
#endif
}

/* IGNIS_DIST=nccl under mpirun -np 2: each rank joins MPI, loads NCCL, finds no GPU, and
 * the all-gathered set-up status ends every rank with its cause (the multi-rank set-up
 * path on a CPU machine); a build without NCCL refuses on every rank. */
Test(dist, cli_mpi_nccl_setup_without_gpu_fails_on_every_rank) {
    if (ig_cuda_is_available()) cr_skip_test("a CUDA device is present: tools/gpu-check.sh runs the GPU stages");
    static mpi_job j;
    mpi_cuda_train(&j, "nccl");
#ifdef IGNIS_WITH_NCCL
    /* every rank failed the step: whichever rank's message mpirun lets through says so */
    cr_expect(strstr(j.out, "ig_dist_init: nccl: no CUDA device on rank "), "%s", j.out);
    cr_expect(strstr(j.out, "(cudaGetDeviceCount: "), "%s", j.out);
    cr_expect(strstr(j.out, "; 2 of 2 ranks could not select its GPU: 0, 1"), "%s", j.out);
#else
    cr_expect(strstr(j.out, "IGNIS_DIST=nccl but this ignis was built without NCCL"), "%s", j.out);
#endif
}

Test(dist, cli_ignis_dist_nccl_without_gpu_or_nccl_fails_clearly) {
    if (ig_cuda_is_available()) cr_skip_test("a CUDA device is present: tools/gpu-check.sh runs the GPU stages");
    char dir[256];
    make_tmpdir(dir);
    setenv("IGNIS_DIST", "nccl", 1);
    char *out = NULL;
    int rc = cli_run(&out, dir, (const char *const[]){"train", "--data", dir, "--device", "cuda", NULL});
    cr_expect_eq(rc, 1, "%s", out);
#ifdef IGNIS_WITH_NCCL
    cr_expect(strstr(out, "ignis: error: train: ig_dist_init: nccl: no CUDA device on rank 0"), "%s", out);
#else
    cr_expect(strstr(out, "IGNIS_DIST=nccl but this ignis was built without NCCL"), "%s", out);
#endif
    free(out);
    rm_tree(dir);
}

/* ---- on a GPU ------------------------------------------------------------------------------ */

#ifdef IGNIS_WITH_NCCL
/* Skips unless a GPU is usable (then NCCL must work: failures are failures). */
static void need_gpu(void) {
    if (!ig_cuda_is_available()) cr_skip_test("no CUDA device: %s", ig_last_error());
}

Test(dist, nccl_one_rank_collectives_on_device_memory) {
    need_gpu();
    setenv("IGNIS_DIST", "nccl", 1);
    ig_dist *d = ig_dist_init(NULL, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_expect_str_eq(ig_dist_backend(d), "nccl");
    ig_scope *sc = ig_scope_begin();
    float host[5] = {1, -2, 3.5f, 0, 7};
    ig_tensor *t = ig_to(ig_from_data(1, (const int64_t[]){5}, IG_F32, host), IG_CUDA);
    cr_assert_not_null(t, "%s", ig_last_error());
    cr_assert_eq(ig_dist_all_reduce_sum(d, t), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_dist_broadcast(d, t, 0), IG_OK, "%s", ig_last_error());
    ig_tensor *back = ig_to(t, IG_CPU);
    cr_assert_not_null(back, "%s", ig_last_error());
    for (int i = 0; i < 5; i++) cr_expect_eq(((const float *)ig_tensor_data(back))[i], host[i]);
    double v[2] = {1.5, -4}; /* host memory goes over the host group */
    cr_expect_eq(ig_dist_all_reduce_doubles(d, v, 2), IG_OK, "%s", ig_last_error());
    cr_expect(v[0] == 1.5 && v[1] == -4);
    cr_expect_eq(ig_dist_barrier(d), IG_OK, "%s", ig_last_error());

    /* the nonblocking all-reduce: start, test until done, wait (a stream wait) */
    igi_dist_req req;
    memset(&req, 0, sizeof req);
    cr_assert_eq(d->be->iall_reduce_start(d, igi_data(t), 5, IG_F32, &req, "test bucket"), IG_OK, "%s",
                 ig_last_error());
    for (int spins = 0; !d->be->iall_reduce_test(d, &req) && spins < 100000000; spins++) {
    }
    cr_expect_not(req.active);
    cr_assert_eq(d->be->iall_reduce_start(d, igi_data(t), 5, IG_F32, &req, "test bucket"), IG_OK, "%s",
                 ig_last_error());
    cr_assert_eq(d->be->iall_reduce_wait(d, &req, "test bucket"), IG_OK, "%s", ig_last_error());
    back = ig_to(t, IG_CPU); /* ordered after the wait on the compute stream */
    for (int i = 0; i < 5; i++) cr_expect_eq(((const float *)ig_tensor_data(back))[i], host[i]);
    d->be->req_release(d, &req);

    /* host memory is not for the gradient path */
    float hb[2] = {0, 0};
    ig_clear_error();
    cr_expect_eq(d->be->iall_reduce_start(d, hb, 2, IG_F32, &req, "host bucket"), IG_ERR_DEVICE);
    cr_expect(strstr(ig_last_error(), "host bucket: the nccl backend reduces gradients in device memory only"), "%s",
              ig_last_error());
    ig_scope_end(sc);
    ig_dist_finalize(d);
}

/* A few steps of ig_ddp on the GPU: the nccl group (1 rank) and the single group end with
 * the same parameters, bit for bit. */
static void ddp_steps(ig_dist *d, float *params_out, int64_t n_out) {
    ig_manual_seed(11);
    ig_module *m = ig_nn_sequential(3, (ig_module *const[]){ig_nn_linear(6, 8, true), ig_nn_relu(), ig_nn_linear(8, 3, true)});
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_module_to(m, IG_CUDA), IG_OK, "%s", ig_last_error());
    ig_optimizer *o = make_sgd(m, 0.9);
    ig_ddp *p = ig_ddp_new(d, m, o, &(ig_ddp_opts){.first_bucket_bytes = 64, .bucket_bytes = 128});
    cr_assert_not_null(p, "%s", ig_last_error());
    cr_expect_gt(igi_ddp_num_buckets(p), 1);
    for (int step = 0; step < 5; step++) {
        ig_scope *sc = ig_scope_begin();
        ig_tensor *x = ig_to(ig_randn(2, (const int64_t[]){4, 6}, IG_F32), IG_CUDA);
        ig_tensor *y = ig_to(ig_from_data(1, (const int64_t[]){4}, IG_I64, (const int64_t[]){0, 2, 1, 2}), IG_CUDA);
        ig_tensor *loss = ig_cross_entropy(ig_module_forward(m, x), y, NULL);
        cr_assert_not_null(loss, "%s", ig_last_error());
        cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_ddp_step(p), IG_OK, "%s", ig_last_error());
        ig_optim_zero_grad(o);
        ig_scope_end(sc);
    }
    ig_scope *sc = ig_scope_begin();
    ig_tensor *flat = ig_to(ig_module_flat_params(m), IG_CPU);
    cr_assert_not_null(flat, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(flat), n_out);
    memcpy(params_out, ig_tensor_data(flat), sizeof(float) * (size_t)n_out);
    ig_scope_end(sc);
    ig_ddp_free(p);
    ig_optim_free(o);
    ig_module_free(m);
}

Test(dist, nccl_one_rank_ddp_matches_single_on_the_gpu) {
    need_gpu();
    enum { N = 6 * 8 + 8 + 8 * 3 + 3 };
    static float with_single[N], with_nccl[N];
    unsetenv("IGNIS_DIST");
    ig_dist *d = ig_dist_init(NULL, NULL);
    cr_assert_not_null(d, "%s", ig_last_error());
    ddp_steps(d, with_single, N);
    cr_assert_eq(igi_dist_use_nccl(d), IG_OK, "%s", ig_last_error());
    cr_expect_str_eq(ig_dist_backend(d), "nccl");
    ddp_steps(d, with_nccl, N);
    ig_dist_finalize(d);
    cr_expect_eq(memcmp(with_single, with_nccl, sizeof with_single), 0, "the parameters differ");
}
#endif
