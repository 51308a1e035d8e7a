/*
 * bench/device_host_bench.c — what a training step on a device costs the host: ignis's
 * dispatch, autograd, scopes and caching allocator, with kernels that do nothing.
 *
 * A GPU step takes max(host time to queue it, device time to run it) once the host never
 * waits for the device: this measures the first term on any machine. It registers a
 * stand-in IG_CUDA backend whose memory functions are real (host memory: uploads and the
 * target check of cross-entropy read real values) and whose kernels return at once, moves a
 * zoo model there, and times `ignis bench`'s step (forward + cross-entropy, backward, SGD
 * with momentum and weight decay, zero_grad, scope end) on slices of an uploaded batch
 * pool. It also counts the backend calls per step (about the kernel launches a GPU would
 * get; a conv or batch norm call launches a few). Values are garbage (no kernel computes):
 * only the times and counts mean something.
 * Usage: device_host_bench [batch=256] [steps=50] [models=mlp,cnn,resnet8,resnet20]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/backend_impl.h"
#include "../ignis.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long calls;

static void *nb_alloc(size_t n) { return malloc(n ? n : 1); }
static void nb_free(void *p) { free(p); }
static ig_status nb_copy(void *d, const void *s, size_t n) {
    calls++;
    memcpy(d, s, n);
    return IG_OK;
}
static ig_status nb_zero(void *d, size_t n) {
    calls++;
    memset(d, 0, n);
    return IG_OK;
}
static ig_status nb_sync(void) { return IG_OK; }

/* Every kernel entry the zoo's models reach: a stub of the entry's own type that counts and
 * returns (its parameters are unused by design). */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define STUB(name, ...)                     \
    static ig_status name(__VA_ARGS__) {    \
        calls++;                            \
        return IG_OK;                       \
    }
STUB(k_copy, const char *op, const igi_ew *e)
STUB(k_fill, const char *op, const igi_ew *e, double v)
STUB(k_binary, const char *op, int kind, const igi_ew *e)
STUB(k_scalar, const char *op, const igi_ew *e, double s, bool mul)
STUB(k_where, const char *op, const igi_ew *e)
STUB(k_unary, const char *op, int kind, const igi_ew *e, const igi_unary_params *p)
STUB(k_unary_bwd, const char *op, int kind, const igi_ew *e, const igi_unary_params *p)
STUB(k_reduce, const char *op, int kind, const igi_red *r, double div)
STUB(k_reduce_scatter, const char *op, const igi_red *r, const void *g)
STUB(k_softmax, const char *op, bool log_out, const igi_rows *r)
STUB(k_softmax_bwd, const char *op, bool log_out, const igi_rows *r)
STUB(k_gemm, const char *op, ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
     int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc)
STUB(k_conv, const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w, const void *b,
     int64_t bs, void *y, void *col, void *res)
STUB(k_conv_bwd, const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w, const void *dy,
     void *dx, void *dw, void *db, void *col, void *dyb)
STUB(k_pool, const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *x, void *out, int64_t *idx)
STUB(k_pool_bwd, const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *gout, const int64_t *idx,
     void *dx)
STUB(k_bn, const char *op, const igi_bn *p)
STUB(k_bn_bwd, const char *op, const igi_bn_bwd *p)
STUB(k_class_loss, const char *op, const igi_ce *c, const void *x, const void *target, void *loss, double *lse,
     double *pos, void *total, double div)
STUB(k_class_loss_bwd, const char *op, const igi_ce *c, const void *x, const void *target, const void *g,
     const double *lse, void *gin, double scale)
STUB(k_optim, const char *op, const igi_optim_step *s)

static const igi_backend noop_backend = {
    .name = "cuda",
    .raw_alloc = nb_alloc,
    .raw_free = nb_free,
    .memcpy_h2d = nb_copy,
    .memcpy_d2h = nb_copy,
    .memcpy_d2d = nb_copy,
    .memset_zero = nb_zero,
    .synchronize = nb_sync,
    .copy = k_copy,
    .fill = k_fill,
    .binary = k_binary,
    .scalar = k_scalar,
    .where = k_where,
    .unary = k_unary,
    .unary_backward = k_unary_bwd,
    .reduce = k_reduce,
    .reduce_scatter = k_reduce_scatter,
    .softmax = k_softmax,
    .softmax_backward = k_softmax_bwd,
    .gemm = k_gemm,
    .conv2d = k_conv,
    .conv2d_backward = k_conv_bwd,
    .pool2d = k_pool,
    .pool2d_backward = k_pool_bwd,
    .batch_norm = k_bn,
    .batch_norm_backward = k_bn_bwd,
    .class_loss = k_class_loss,
    .class_loss_backward = k_class_loss_bwd,
    .optim_step = k_optim,
};

/* Host seconds per step and backend calls per step of `model` at `batch`; 0 on error. */
static int run(const char *model, int64_t batch, int steps, double *ms, double *per_step) {
    ig_manual_seed(0);
    int64_t n = 3 * batch;
    ig_module *net = ig_model_build(model, 1, 28, 28, 10);
    if (!net || ig_module_to(net, IG_CUDA) != IG_OK || ig_module_flatten(net) != IG_OK) return 0;
    ig_module_train(net, true);
    ig_tensor *flat = ig_module_flat_params(net);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.05, so.momentum = 0.9, so.weight_decay = 5e-4;
    ig_optimizer *opt = ig_optim_sgd(&flat, 1, &so);
    ig_tensor *hx = ig_zeros(IG_DIMS(n, 1, 28, 28), IG_F32), *hy = ig_zeros(IG_DIMS(n), IG_I64);
    ig_tensor *dx = hx ? ig_to(hx, IG_CUDA) : NULL, *dy = hy ? ig_to(hy, IG_CUDA) : NULL;
    int ok = opt && dx && dy;
    double t0 = 0;
    long c0 = 0;
    for (int i = 0; ok && i < steps + 5; i++) {
        if (i == 5) t0 = now(), c0 = calls;
        int64_t j = (i * batch) % (n - batch);
        ig_scope *sc = ig_scope_begin();
        ig_tensor *x = ig_narrow(dx, 0, j, batch), *y = ig_narrow(dy, 0, j, batch);
        ig_tensor *loss = ig_cross_entropy(ig_module_forward(net, x), y, NULL);
        ok = loss && ig_backward(loss, NULL) == IG_OK && ig_optim_step(opt) == IG_OK;
        ig_optim_zero_grad(opt);
        ig_scope_end(sc);
    }
    if (ok) {
        *ms = 1e3 * (now() - t0) / steps;
        *per_step = (double)(calls - c0) / steps;
    } else {
        fprintf(stderr, "device_host_bench: %s: %s\n", model, ig_last_error());
    }
    ig_tensor_free(dx), ig_tensor_free(dy), ig_tensor_free(hx), ig_tensor_free(hy);
    ig_optim_free(opt);
    ig_module_free(net);
    return ok;
}

int main(int argc, char **argv) {
    int64_t batch = argc > 1 ? atoll(argv[1]) : 256;
    int steps = argc > 2 ? atoi(argv[2]) : 50;
    char models[256];
    snprintf(models, sizeof models, "%s", argc > 3 ? argv[3] : "mlp,cnn,resnet8,resnet20");
    if (batch < 1 || steps < 1) {
        fprintf(stderr, "usage: device_host_bench [batch=256] [steps=50] [models=mlp,cnn,resnet8,resnet20]\n");
        return 2;
    }
    igi_backend_register(IG_CUDA, &noop_backend);
    ig_set_num_threads(1);
    printf("host cost of a training step on a device with no-op kernels, batch %lld, %d steps (one thread)\n",
           (long long)batch, steps);
    printf("%-10s %14s %16s %14s\n", "model", "host ms/step", "backend calls", "us per call");
    for (char *save = NULL, *m = strtok_r(models, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        double ms = 0, per = 0;
        if (!run(m, batch, steps, &ms, &per)) return 1;
        printf("%-10s %14.3f %16.1f %14.2f\n", m, ms, per, 1e3 * ms / per);
    }
    return 0;
}
