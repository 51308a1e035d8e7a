/*
 * tests/dist/ddp_check.c — the MPI test driver: a program of its own (build/tests/ddp_check)
 * that tests/dist/test_ddp_mpi.c runs under `mpirun -np 2` and judges by its exit status.
 *
 *   ddp_check equiv MODEL SYNC_BN EXPECT DTYPE
 *        2 ranks x batch 32 for 20 steps vs. 1 process x batch 64 (computed by rank 0 alone
 *        afterwards), in f32 or f64: EXPECT "same" (max relative difference <= 1e-5) or
 *        "differ" (> 1e-4: BN without sync). Why f64 for most: the two runs add the same
 *        gradients in a different order, and training on random labels is chaotic enough
 *        (ReLU and max-pool kinks flip) that f32 rounding of 1e-7 can grow past 1e-5 in 20
 *        steps for cnn and resnet8; in f64 any real error still shows, rounding does not.
 *   ddp_check fault abort|kill|hang        rank 1 fails at step 5 (abort(), SIGKILL, or
 *                                          stops participating); the job must end non-zero
 *   ddp_check mismatch                     rank 1 builds another model: ig_ddp_new fails on
 *                                          both ranks naming rank 1
 *   ddp_check collectives                  the ig_dist_* calls on 2 ranks
 *
 * Data: a deterministic synthetic global batch of 64 per step (the same on every rank);
 * each rank takes its rows through the data sampler (ig_sampler_indices, no shuffle), so
 * rank r gets rows r, r+2, ... Exit status 0 means the check passed on this rank.
 */
#include <ignis.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define GLOBAL_BATCH 64
#define STEPS_DEFAULT 20
static int n_steps = STEPS_DEFAULT; /* DTYPE may say "f32:N" for N steps */
#define CH 3
#define HW 8
#define CLASSES 10
#define PIX (CH * HW * HW)

static int fail(const char *what) {
    fprintf(stderr, "ddp_check: %s: %s\n", what, ig_last_error());
    return 1;
}

/* The global batch of step s: inputs roughly N(0,1) (sum of uniforms), labels in [0,10). */
static void global_batch(int s, float *x, int64_t *y) {
    uint64_t r = 0x9E3779B97F4A7C15ull ^ (uint64_t)(s + 1) * 0xBF58476D1CE4E5B9ull;
    for (int i = 0; i < GLOBAL_BATCH; i++) {
        for (int p = 0; p < PIX; p++) {
            double acc = 0;
            for (int k = 0; k < 4; k++) {
                r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                acc += (double)(r >> 11) / 9007199254740992.0;
            }
            x[i * PIX + p] = (float)((acc - 2.0) * 1.7);
        }
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        y[i] = (int64_t)(r % CLASSES);
    }
}

static ig_dtype dtype = IG_F32;

static ig_module *build(const char *name) {
    ig_manual_seed(42);
    ig_module *m = ig_model_create(name, CH, HW, HW, CLASSES);
    if (m && dtype != IG_F32 && ig_module_to_dtype(m, dtype) != IG_OK) {
        ig_module_free(m);
        return NULL;
    }
    return m;
}

static ig_optimizer *make_sgd(ig_module *m) {
    if (ig_module_flatten(m) != IG_OK) return NULL;
    ig_tensor *flat = ig_module_flat_params(m);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.01;
    so.momentum = dtype == IG_F32 ? 0.0 : 0.9;
    return ig_optim_sgd(&flat, 1, &so);
}

/* One training step on rows idx[0..n) of the global batch (x, y). ddp NULL: plain step. */
static ig_status step(ig_module *m, ig_optimizer *o, ig_ddp *ddp, const float *gx, const int64_t *gy,
                      const int64_t *idx, int64_t n, double *loss_out) {
    ig_scope *sc = ig_scope_begin();
    ig_tensor *x = ig_empty(IG_DIMS(n, CH, HW, HW), dtype), *y = ig_empty(IG_DIMS(n), IG_I64);
    void *xp = ig_tensor_data(x);
    int64_t *yp = ig_tensor_data(y);
    for (int64_t i = 0; i < n; i++) {
        for (int p = 0; p < PIX; p++) {
            float v = gx[idx[i] * PIX + p];
            if (dtype == IG_F32) ((float *)xp)[i * PIX + p] = v;
            else ((double *)xp)[i * PIX + p] = v;
        }
        yp[i] = gy[idx[i]];
    }
    ig_tensor *loss = ig_cross_entropy(ig_module_forward(m, x), y, NULL);
    ig_status st = loss ? ig_backward(loss, NULL) : ig_last_status();
    if (st == IG_OK) st = ddp ? ig_ddp_step(ddp) : ig_optim_step(o);
    if (st == IG_OK && loss_out) *loss_out = ig_item(loss);
    ig_optim_zero_grad(o);
    ig_scope_end(sc);
    return st;
}

/* Max over elements of |a - b| / max(|b|, 1e-3) (relative, with a floor for values near 0). */
static double max_rel_diff(ig_tensor *a, ig_tensor *b) {
    int64_t n = ig_tensor_numel(a);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = ig_tensor_get(a, i), y = ig_tensor_get(b, i);
        double d = fabs(x - y) / fmax(fabs(y), 1e-3);
        if (!(d <= worst)) worst = d; /* NaN counts as worst */
    }
    return worst;
}

static int run_equiv(ig_dist *d, const char *model, bool sync_bn, bool expect_same) {
    int rank = ig_dist_rank(d), world = ig_dist_world_size(d);
    int rc = 1;
    ig_module *m = build(model), *ref = NULL;
    ig_optimizer *o = m ? make_sgd(m) : NULL, *ro = NULL;
    ig_ddp_opts opts = {.bucket_bytes = 64 << 10, .first_bucket_bytes = 8 << 10, .sync_bn = sync_bn};
    ig_ddp *ddp = o ? ig_ddp_new(d, m, o, &opts) : NULL;
    float *gx = malloc(sizeof(float) * GLOBAL_BATCH * PIX);
    int64_t gy[GLOBAL_BATCH], all[GLOBAL_BATCH], mine[GLOBAL_BATCH];
    int64_t n_mine = ig_sampler_count(GLOBAL_BATCH, rank, world, false);
    if (!ddp || !gx) return fail("set-up");
    if (ig_sampler_indices(GLOBAL_BATCH, false, 0, 0, rank, world, false, mine) != IG_OK) return fail("sampler");
    for (int i = 0; i < GLOBAL_BATCH; i++) all[i] = i;
    /* The reference starts from the weights every rank now has (rank 0's). */
    if (rank == 0) {
        ref = build(model);
        ro = ref ? make_sgd(ref) : NULL;
        if (!ro) return fail("reference set-up");
        ig_named_tensor sd[256];
        int n = ig_module_state_dict(m, sd, 256);
        if (n < 0 || n > 256 || ig_module_load_state_dict(ref, sd, n, true) != IG_OK) return fail("reference copy");
    }
    for (int s = 0; s < n_steps; s++) {
        double loss = 0;
        global_batch(s, gx, gy);
        if (step(m, o, ddp, gx, gy, mine, n_mine, &loss) != IG_OK) return fail("ddp step");
        if (rank == 0 && (s == 0 || s == n_steps - 1)) printf("step %d: rank 0 loss %.5f\n", s, loss);
    }
    /* Every rank must hold the same parameters. */
    ig_tensor *flat = ig_module_flat_params(m);
    if (ig_dist_check_same(d, ig_tensor_data(flat), ig_dtype_size(dtype) * (size_t)ig_tensor_numel(flat),
                           "parameters after training") != IG_OK)
        return fail("ranks agree");
    if (rank == 0) {
        for (int s = 0; s < n_steps; s++) {
            global_batch(s, gx, gy);
            if (step(ref, ro, NULL, gx, gy, all, GLOBAL_BATCH, NULL) != IG_OK) return fail("reference step");
        }
        double dp = max_rel_diff(flat, ig_module_flat_params(ref)), db = 0;
        /* Float buffers too (BatchNorm running stats). */
        ig_named_tensor sa[256], sb[256];
        int na = ig_module_state_dict(m, sa, 256), nb = ig_module_state_dict(ref, sb, 256);
        for (int i = 0; i < na && i < nb; i++)
            if (ig_tensor_dtype(sa[i].tensor) == dtype && !ig_requires_grad(sa[i].tensor)) {
                double x = max_rel_diff(sa[i].tensor, sb[i].tensor);
                if (!(x <= db)) db = x;
            }
        printf("%s%s, %s: max relative difference vs 1 process x batch %d: parameters %.3g, buffers %.3g\n",
               model, sync_bn ? " (sync_bn)" : "", ig_dtype_name(dtype), GLOBAL_BATCH, dp, db);
        double worst = fmax(dp, db);
        rc = expect_same ? !(worst <= 1e-5) : !(worst > 1e-4);
        if (rc) printf("FAILED: expected %s\n", expect_same ? "the same (<= 1e-5)" : "a difference (> 1e-4)");
    } else {
        rc = 0;
    }
    ig_ddp_free(ddp);
    ig_optim_free(o);
    ig_module_free(m);
    ig_optim_free(ro);
    ig_module_free(ref);
    free(gx);
    return rc;
}

static int run_fault(ig_dist *d, const char *how) {
    int rank = ig_dist_rank(d), world = ig_dist_world_size(d);
    ig_dist_set_timeout(d, 3.0); /* the "hang" case: rank 0 gives up after 3 s */
    ig_module *m = build("mlp");
    ig_optimizer *o = m ? make_sgd(m) : NULL;
    ig_ddp *ddp = o ? ig_ddp_new(d, m, o, NULL) : NULL;
    float *gx = malloc(sizeof(float) * GLOBAL_BATCH * PIX);
    int64_t gy[GLOBAL_BATCH], mine[GLOBAL_BATCH];
    int64_t n_mine = ig_sampler_count(GLOBAL_BATCH, rank, world, false);
    if (!ddp || !gx || ig_sampler_indices(GLOBAL_BATCH, false, 0, 0, rank, world, false, mine) != IG_OK)
        return fail("set-up");
    for (int s = 0; s < 1000; s++) {
        if (rank == 1 && s == 5) {
            fprintf(stderr, "ddp_check: rank 1 fails now (%s)\n", how);
            fflush(NULL);
            if (strcmp(how, "abort") == 0) {
                struct rlimit no_core = {0, 0};
                setrlimit(RLIMIT_CORE, &no_core);
                abort();
            }
            if (strcmp(how, "kill") == 0) raise(SIGKILL);
            struct timespec t = {120, 0}; /* "hang": alive, but gone from the collectives */
            nanosleep(&t, NULL);
            return 1;
        }
        global_batch(s, gx, gy);
        if (step(m, o, ddp, gx, gy, mine, n_mine, NULL) != IG_OK) {
            /* What a tool does with a collective that failed: end the whole job. */
            fprintf(stderr, "ddp_check: rank %d: %s\n", rank, ig_last_error());
            ig_dist_abort(d, 3);
            return 3; /* a single process: ig_dist_abort returned */
        }
    }
    return 0; /* not reached when the fault is noticed */
}

static int run_mismatch(ig_dist *d) {
    int rank = ig_dist_rank(d);
    ig_module *m = build(rank == 1 ? "cnn" : "mlp");
    ig_optimizer *o = m ? make_sgd(m) : NULL;
    if (!o) return fail("set-up");
    ig_ddp *ddp = ig_ddp_new(d, m, o, NULL);
    int rc = 0;
    if (ddp) {
        printf("rank %d: ig_ddp_new accepted different models\n", rank);
        rc = 1;
    } else if (!strstr(ig_last_error(), "ig_ddp_new") || !strstr(ig_last_error(), "rank 1")) {
        rc = fail("unexpected message");
    } else {
        printf("rank %d: %s\n", rank, ig_last_error());
    }
    ig_ddp_free(ddp);
    ig_optim_free(o);
    ig_module_free(m);
    return rc;
}

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "ddp_check: rank %d: check failed at line %d: %s (%s)\n", rank, __LINE__, \
                    #cond, ig_last_error());                                                   \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

static int run_collectives(ig_dist *d) {
    int rank = ig_dist_rank(d);
    CHECK(ig_dist_world_size(d) == 2);
    CHECK(strcmp(ig_dist_backend(d), "mpi") == 0);
    CHECK(ig_dist_local_rank(d) == rank); /* one node */
    ig_scope *sc = ig_scope_begin();
    const ig_dtype dts[4] = {IG_F32, IG_F64, IG_I32, IG_I64};
    for (int k = 0; k < 4; k++) {
        ig_tensor *t = ig_full(IG_DIMS(2, 3), dts[k], rank + 1);
        CHECK(ig_dist_all_reduce_sum(d, t) == IG_OK);
        for (int i = 0; i < 6; i++) CHECK(ig_tensor_get(t, i) == 3.0);
    }
    ig_tensor *u8 = ig_zeros(IG_DIMS(2), IG_U8);
    CHECK(ig_dist_all_reduce_sum(d, u8) != IG_OK && strstr(ig_last_error(), "ig_dist_all_reduce_sum"));
    ig_tensor *tt = ig_transpose(ig_zeros(IG_DIMS(2, 3), IG_F32), 0, 1);
    CHECK(ig_dist_all_reduce_sum(d, tt) != IG_OK && strstr(ig_last_error(), "contiguous"));
    double v[3] = {rank, 10.0 * rank, 1.5};
    CHECK(ig_dist_all_reduce_doubles(d, v, 3) == IG_OK);
    CHECK(v[0] == 1.0 && v[1] == 10.0 && v[2] == 3.0);
    ig_tensor *b = ig_full(IG_DIMS(4), IG_F64, rank == 1 ? 7.0 : -1.0);
    CHECK(ig_dist_broadcast(d, b, 1) == IG_OK);
    for (int i = 0; i < 4; i++) CHECK(ig_tensor_get(b, i) == 7.0);
    CHECK(ig_dist_broadcast(d, b, 2) != IG_OK && strstr(ig_last_error(), "root 2"));
    CHECK(ig_dist_barrier(d) == IG_OK);
    const char same[] = "the same on every rank";
    CHECK(ig_dist_check_same(d, same, sizeof same, "a string") == IG_OK);
    int mine = rank;
    CHECK(ig_dist_check_same(d, &mine, sizeof mine, "the rank") == IG_ERR_STATE);
    CHECK(strstr(ig_last_error(), "the rank differs") && strstr(ig_last_error(), "rank 1"));
    ig_scope_end(sc);
    printf("rank %d: collectives ok\n", rank);
    return 0;
}

int main(int argc, char **argv) {
    ig_dist *d = ig_dist_init(&argc, &argv);
    if (!d) return fail("ig_dist_init");
    int rc = 2;
    if (argc == 6 && strcmp(argv[1], "equiv") == 0) {
        dtype = strncmp(argv[5], "f64", 3) == 0 ? IG_F64 : IG_F32;
        const char *colon = strchr(argv[5], ':');
        if (colon) n_steps = atoi(colon + 1) > 0 ? atoi(colon + 1) : STEPS_DEFAULT;
        rc = run_equiv(d, argv[2], strcmp(argv[3], "1") == 0, strcmp(argv[4], "same") == 0);
    }
    else if (argc == 3 && strcmp(argv[1], "fault") == 0)
        rc = run_fault(d, argv[2]);
    else if (argc == 2 && strcmp(argv[1], "mismatch") == 0)
        rc = run_mismatch(d);
    else if (argc == 2 && strcmp(argv[1], "collectives") == 0)
        rc = run_collectives(d);
    else
        fprintf(stderr, "usage: mpirun -np 2 %s equiv MODEL 0|1 same|differ f32|f64 | fault abort|kill|hang | mismatch | "
                        "collectives\n", argv[0]);
    ig_dist_finalize(d);
    return rc;
}
