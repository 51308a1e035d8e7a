/*
 * tools/cmd_bench.c — `ignis bench`: training throughput of a model on Fashion-MNIST batches
 * (or random data of the same shape), measured the way ../shared/bench/torch_ref.py measures
 * PyTorch, so the two can be compared side by side (bench/compare.py, `make bench`).
 *
 * What a run does, as torch_ref.py: SGD lr 0.05, momentum 0.9, weight decay 5e-4; W warm-up
 * steps on the first batch of the train set, then S timed steps on contiguous slices
 * [j, j+B) with j = (i*B) mod (n-B); images normalised (x - 0.2860) / 0.3530; no
 * augmentation. A step is: copy the slice into the reused batch tensors (data), forward +
 * cross-entropy (forward), ig_backward (backward), optimizer step + zero_grad + releasing the
 * step's tensors (optimizer). On a device (--device cuda) the whole set is uploaded once
 * and a step's batch is a slice of it, and each step's loss stays on the device until the
 * end of the timed steps, as torch_ref.py does on a GPU: the host queues step i+1 while the
 * device runs step i, so the phase times there say when work was queued, not run.
 *
 * Output: "key: value" lines (value first, unit in the key) for scripts; see print_results.
 * Training FLOPs per image are counted as 3x the forward FLOPs of ig_model_summary (backward
 * = 2x forward: gradients for inputs and for weights; elementwise work is in the forward
 * count only as the summary has it). The sgemm reference is a timed cblas_sgemm on the same
 * thread count, best of a few, so "fraction of sgemm" says how close training gets to what
 * the BLAS does on one large product on this machine.
 */
#include <cblas.h>
#include <ignis.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_impl.h"
#include "cli_impl.h"
#include "train_impl.h"

#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f

static double now_s(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of an n x n x n single-precision OpenBLAS GEMM (2n^3 FLOPs) on `threads` BLAS
 * threads, best of reps, after one untimed call. ignis keeps OpenBLAS single-threaded (its
 * GEMMs are split over ignis's own pool), so the reference sets OpenBLAS's own thread count
 * for the measurement and puts it back to 1: a one-thread reference would make training on
 * T threads look up to T times closer to the machine's sgemm than it is. */
static double sgemm_gflops(int n, int reps, int threads) {
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
    double best = 0;
    if (a && b && c) {
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)(i % 17) * 0.01f;
            b[i] = (float)(i % 13) * 0.02f;
        }
        openblas_set_num_threads(threads);
        for (int r = 0; r <= reps; r++) {
            double t = now_s(CLOCK_MONOTONIC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double dt = now_s(CLOCK_MONOTONIC) - t;
            double g = 2.0 * (double)n * (double)n * (double)n / dt * 1e-9;
            if (r > 0 && g > best) best = g;
        }
        openblas_set_num_threads(1);
    }
    free(a), free(b), free(c);
    return best;
}

/* The images a step reads: either a dataset (read and normalised per step, as a loader
 * would) or a pool of random images already in memory. */
typedef struct source {
    ig_dataset *ds;
    ig_tensor *pool_x, *pool_y; /* synthetic: [n,C,H,W] f32 and [n] i64 */
    int64_t n, c, h, w, classes;
} source;

static ig_status fill_batch(source *s, int64_t start, int64_t b, ig_tensor *x, ig_tensor *y) {
    float *xp = ig_tensor_data(x);
    int64_t *yp = ig_tensor_data(y);
    size_t item = (size_t)(s->c * s->h * s->w);
    if (!s->ds) {
        memcpy(xp, (const float *)ig_tensor_data(s->pool_x) + (size_t)start * item, (size_t)b * item * sizeof(float));
        memcpy(yp, (const int64_t *)ig_tensor_data(s->pool_y) + start, (size_t)b * sizeof(int64_t));
        return IG_OK;
    }
    for (int64_t i = 0; i < b; i++) {
        float *xi = xp + (size_t)i * item;
        ig_status st = ig_dataset_get(s->ds, start + i, xi, yp + i);
        if (st != IG_OK) return st;
        for (size_t k = 0; k < item; k++) xi[k] = (xi[k] - FMNIST_MEAN) / FMNIST_STD;
    }
    return IG_OK;
}

enum { PH_DATA, PH_FWD, PH_BWD, PH_OPT, N_PHASES };

typedef struct run_state {
    ig_module *net;
    ig_optimizer *opt;
    ig_tensor *x, *y;
    ig_device dev; /* --device: the batch is uploaded each step (in the data phase) ... */
    ig_tensor *dev_x, *dev_y; /* ... unless the whole set was uploaded once: then a step's
                               * batch is a slice of these, as torch_ref.py does */
    ig_tensor *dev_loss;      /* on a device, each step's loss is copied here (no host wait) */
    ig_amp amp;    /* --amp: autocast over forward + loss */
    ig_grad_scaler *scaler; /* --amp fp16: dynamic loss scaling */
    int64_t skipped;        /* fp16 steps skipped for inf/NaN gradients */
    source *src;
    double phase[N_PHASES]; /* seconds spent in each phase over the timed steps */
    double last_loss;
} run_state;

/* One training step on items [start, start+B); adds phase times when timed. */
static ig_status step(run_state *r, int64_t start, int64_t b, bool timed) {
    double t0 = now_s(CLOCK_MONOTONIC);
    if (!r->dev_x) {
        ig_status st = fill_batch(r->src, start, b, r->x, r->y);
        if (st != IG_OK) return st;
    }
    ig_scope *sc = ig_scope_begin();
    if (!sc) return ig_last_status();
    ig_tensor *x, *y;
    if (r->dev_x) {
        x = ig_narrow(r->dev_x, 0, start, b);
        y = ig_narrow(r->dev_y, 0, start, b);
    } else {
        x = r->dev == IG_CPU ? r->x : ig_to(r->x, r->dev);
        y = r->dev == IG_CPU ? r->y : ig_to(r->y, r->dev);
    }
    double t1 = now_s(CLOCK_MONOTONIC);
    ig_amp prev = ig_autocast_set(r->amp);
    ig_tensor *loss = ig_cross_entropy(ig_module_forward(r->net, x), y, NULL);
    ig_autocast_set(prev);
    double t2 = now_s(CLOCK_MONOTONIC);
    if (!loss || ig_backward(r->scaler ? ig_grad_scaler_scale(r->scaler, loss) : loss, NULL) != IG_OK) {
        ig_scope_end(sc);
        return ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_STATE;
    }
    double t3 = now_s(CLOCK_MONOTONIC);
    /* Reading the loss waits for the device: there, keep it on the device (read once, at
     * the end), so the host queues the next step while the GPU runs this one. */
    if (r->dev_loss) {
        if (ig_copy_(r->dev_loss, loss) != IG_OK) {
            ig_scope_end(sc);
            return ig_last_status();
        }
    } else {
        r->last_loss = ig_item(loss);
    }
    ig_status st = r->scaler ? ig_grad_scaler_step(r->scaler, r->opt) : ig_optim_step(r->opt);
    if (r->scaler && ig_grad_scaler_skipped(r->scaler)) r->skipped++;
    ig_optim_zero_grad(r->opt);
    ig_scope_end(sc);
    double t4 = now_s(CLOCK_MONOTONIC);
    if (timed) {
        r->phase[PH_DATA] += t1 - t0;
        r->phase[PH_FWD] += t2 - t1;
        r->phase[PH_BWD] += t3 - t2;
        r->phase[PH_OPT] += t4 - t3;
    }
    return st;
}

static int open_source(source *s, bool synthetic, const char *dir, int64_t batch) {
    if (synthetic) {
        /* Three batches of N(0,1) images and uniform labels: enough for the slice loop to
         * move (j alternates between 0 and B), little memory. */
        s->n = 3 * batch, s->c = 1, s->h = 28, s->w = 28, s->classes = 10;
        s->pool_x = ig_randn(IG_DIMS(s->n, s->c, s->h, s->w), IG_F32);
        s->pool_y = ig_empty(IG_DIMS(s->n), IG_I64);
        if (!s->pool_x || !s->pool_y) return cli_error(EXIT_FAILED, "bench: %s", ig_last_error());
        int64_t *yp = ig_tensor_data(s->pool_y);
        uint64_t z = 0x9E3779B97F4A7C15u;
        for (int64_t i = 0; i < s->n; i++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17; /* xorshift64 */
            yp[i] = (int64_t)(z % (uint64_t)s->classes);
        }
        return 0;
    }
    s->ds = ig_dataset_open(dir, true);
    if (!s->ds)
        return cli_error(EXIT_FAILED, "bench: %s (use --synthetic to run without a dataset)", ig_last_error());
    int64_t shape[3] = {1, 1, 1};
    int nd = ig_dataset_item_shape(s->ds, shape);
    if (nd != 3) return cli_error(EXIT_FAILED, "bench: %s: items are not [C,H,W] images", dir);
    s->n = ig_dataset_len(s->ds), s->c = shape[0], s->h = shape[1], s->w = shape[2];
    s->classes = ig_dataset_num_classes(s->ds);
    if (s->n <= batch)
        return cli_error(EXIT_USAGE, "bench: --batch %lld must be smaller than the %lld training images of %s",
                         (long long)batch, (long long)s->n, dir);
    return 0;
}

/* On a device, the whole set (normalised) is uploaded once when it takes at most 4 GiB, as
 * torch_ref.py keeps its tensors on the device, and the device keeps each step's loss;
 * larger sets are uploaded a batch per step. Returns 0 or the exit status. */
static int upload_source(source *s, run_state *r) {
    size_t item = (size_t)(s->c * s->h * s->w);
    if ((double)s->n * (double)item * sizeof(float) > 4294967296.0) return 0;
    ig_tensor *hx = s->pool_x, *hy = s->pool_y, *zero = ig_zeros(0, NULL, IG_F32);
    if (s->ds) {
        hx = ig_empty(IG_DIMS(s->n, s->c, s->h, s->w), IG_F32);
        hy = ig_empty(IG_DIMS(s->n), IG_I64);
    }
    ig_status st = hx && hy && zero ? IG_OK : ig_last_status();
    if (st == IG_OK && s->ds) st = fill_batch(s, 0, s->n, hx, hy);
    if (st == IG_OK) {
        r->dev_x = ig_to(hx, r->dev);
        r->dev_y = ig_to(hy, r->dev);
        r->dev_loss = ig_to(zero, r->dev);
        if (!r->dev_x || !r->dev_y || !r->dev_loss) st = ig_last_status();
    }
    if (s->ds) {
        ig_tensor_free(hx);
        ig_tensor_free(hy);
    }
    ig_tensor_free(zero);
    return st == IG_OK ? 0 : cli_error(EXIT_FAILED, "bench: uploading the images: %s", ig_last_error());
}

static void close_source(source *s) {
    ig_dataset_free(s->ds);
    ig_tensor_free(s->pool_x);
    ig_tensor_free(s->pool_y);
}

int cmd_bench(int argc, char **argv) {
    const char *model = "cnn", *data = "/usr/share/datasets/fashion-mnist", *device = "cpu", *amp = "off";
    int64_t batch = 64, threads = 0, steps = 100, warmup = 10, sgemm_n = 1024;
    bool synthetic = false, data_seen = false, tf32 = false;
    const cli_option opts[] = {
        {"model", CLI_STRING, &model, "NAME|FILE",
         "a zoo model (mlp, cnn, resnet8, resnet20, resnet56) or a model file; default cnn", NULL},
        {"batch", CLI_INT, &batch, "B", "images per step (default 64)", NULL},
        {"threads", CLI_INT, &threads, "T", "threads for ignis and the BLAS (default 0: all CPUs)", NULL},
        {"steps", CLI_INT, &steps, "S", "timed training steps (default 100)", NULL},
        {"warmup", CLI_INT, &warmup, "W", "untimed steps before them (default 10)", NULL},
        {"data", CLI_STRING, &data, "DIR",
         "dataset folder, train split (default /usr/share/datasets/fashion-mnist)", &data_seen},
        {"synthetic", CLI_FLAG, &synthetic, NULL, "random N(0,1) 1x28x28 images and 10 classes instead", NULL},
        {"device", CLI_STRING, &device, "NAME", "cpu (default) or cuda (phase times on cuda are only indicative: "
                                                "the images are uploaded once and kernels run asynchronously: the loss is read at the end)", NULL},
        {"amp", CLI_STRING, &amp, "MODE", AMP_HELP_TRAIN, NULL},
        {"tf32", CLI_FLAG, &tf32, NULL, TF32_HELP, NULL},
        {"sgemm-size", CLI_INT, &sgemm_n, "N", "N^3 sgemm for the machine's reference GFLOP/s (default 1024; 0 skips)",
         NULL},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("bench", "[--model NAME|FILE] [--batch B] [--threads T] [--steps S] [--warmup W] "
                                "[--data DIR | --synthetic] [--device cpu|cuda] [--amp off|bf16|fp16] [--tf32]",
                       "Trains a model for S steps after W warm-up steps (SGD lr 0.05, momentum 0.9, weight\n"
                       "decay 5e-4, contiguous slices of the train set, images normalised with mean 0.2860\n"
                       "and std 0.3530, no augmentation: as bench/torch_ref.py) and prints, one 'key: value'\n"
                       "per line: train images/s; the split of a step into data, forward (with the loss),\n"
                       "backward and optimizer (step, zero_grad, releasing the step's tensors) time; achieved\n"
                       "GFLOP/s (training FLOPs = 3x the forward FLOPs of 'ignis summary') against a timed\n"
                       "sgemm on the same threads; peak RSS; heap allocations per timed step.",
                       argc, argv, opts, nopts, NULL, NULL, 0);
    if (rc < 0) return EXIT_OK;
    if (rc) return rc;
    if (batch < 1 || batch > 65536)
        return cli_error(EXIT_USAGE, "bench: --batch: %lld is not in 1..65536", (long long)batch);
    if (threads < 0 || threads > 1024)
        return cli_error(EXIT_USAGE, "bench: --threads: %lld is not in 0..1024", (long long)threads);
    if (steps < 1 || steps > 100000000)
        return cli_error(EXIT_USAGE, "bench: --steps: %lld is not in 1..100000000", (long long)steps);
    if (warmup < 0 || warmup > 100000000)
        return cli_error(EXIT_USAGE, "bench: --warmup: %lld is not in 0..100000000", (long long)warmup);
    if (sgemm_n < 0 || sgemm_n > 8192)
        return cli_error(EXIT_USAGE, "bench: --sgemm-size: %lld is not in 0..8192", (long long)sgemm_n);
    if (synthetic && data_seen) return cli_error(EXIT_USAGE, "bench: --data and --synthetic exclude each other");
    ig_amp amp_mode = IG_AMP_OFF;
    if ((rc = parse_amp("bench", amp, &amp_mode))) return rc;
    ig_device dev = IG_CPU;
    if ((rc = parse_device("bench", device, &dev)) || (rc = apply_tf32("bench", tf32, dev))) return rc;

    ig_set_num_threads((int)threads);
    ig_manual_seed(0);
    source src = {0};
    run_state r = {0};
    int ret = open_source(&src, synthetic, data, batch);
    if (ret) goto out;
    r.src = &src;
    r.net = ig_model_build(model, src.c, src.h, src.w, src.classes);
    ig_model_stats ms = {0};
    r.dev = dev;
    if (!r.net || ig_model_summary(r.net, src.c, src.h, src.w, NULL, &ms) != IG_OK ||
        (dev != IG_CPU && ig_module_to(r.net, dev) != IG_OK) || ig_module_flatten(r.net) != IG_OK) {
        ret = cli_error(EXIT_FAILED, "bench: %s", ig_last_error());
        goto out;
    }
    ig_module_train(r.net, true);
    ig_tensor *flat = ig_module_flat_params(r.net);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.05, so.momentum = 0.9, so.weight_decay = 5e-4;
    r.opt = ig_optim_sgd(&flat, 1, &so);
    r.amp = amp_mode;
    if (amp_mode == IG_AMP_FP16 && !(r.scaler = ig_grad_scaler_new(NULL))) {
        ret = cli_error(EXIT_FAILED, "bench: %s", ig_last_error());
        goto out;
    }
    r.x = ig_empty(IG_DIMS(batch, src.c, src.h, src.w), IG_F32);
    r.y = ig_empty(IG_DIMS(batch), IG_I64);
    if (!r.opt || !r.x || !r.y) {
        ret = cli_error(EXIT_FAILED, "bench: %s", ig_last_error());
        goto out;
    }

    if (dev != IG_CPU && (ret = upload_source(&src, &r))) goto out;
    for (int64_t i = 0; i < warmup; i++)
        if (step(&r, 0, batch, false) != IG_OK) {
            ret = cli_error(EXIT_FAILED, "bench: warm-up step %lld: %s", (long long)i + 1, ig_last_error());
            goto out;
        }
    if (r.dev_loss) r.last_loss = ig_item(r.dev_loss); /* the device has finished the warm-up */

    ig_mem_stats m0, m1;
    uint64_t a0, f0, a1, f1;
    ig_mem_get_stats(IG_CPU, &m0);
    bench_alloc_counts(&a0, &f0);
    double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    for (int64_t i = 0; i < steps; i++) {
        int64_t j = (int64_t)(((uint64_t)i * (uint64_t)batch) % (uint64_t)(src.n - batch));
        if (step(&r, j, batch, true) != IG_OK) {
            ret = cli_error(EXIT_FAILED, "bench: step %lld: %s", (long long)i + 1, ig_last_error());
            goto out;
        }
    }
    if (r.dev_loss) r.last_loss = ig_item(r.dev_loss); /* waits for the device's last step */
    double wall = now_s(CLOCK_MONOTONIC) - w0, cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    bench_alloc_counts(&a1, &f1);
    ig_mem_get_stats(IG_CPU, &m1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* before the sgemm's buffers can add to it */
    double gemm = sgemm_n > 0 ? sgemm_gflops((int)sgemm_n, 5, ig_get_num_threads()) : 0;

    double ds = (double)steps, imgs = ds * (double)batch, step_s = wall / ds;
    double train_gflops = 3.0 * (double)ms.flops_per_image * imgs / wall * 1e-9;
    static const char *names[N_PHASES] = {"data", "forward", "backward", "optimizer"};
    printf("model: %s\n", model);
    printf("batch: %lld\n", (long long)batch);
    printf("threads: %d\n", ig_get_num_threads());
    printf("steps: %lld\n", (long long)steps);
    printf("warmup: %lld\n", (long long)warmup);
    printf("data: %s\n", synthetic ? "synthetic" : data);
    printf("device: %s\n", dev == IG_CPU ? "cpu" : "cuda");
    printf("amp: %s\n", ig_amp_name(amp_mode));
    printf("tf32: %s\n", tf32 ? "on" : "off");
    if (r.scaler)
        printf("amp_skipped_steps: %lld (loss scale %g)\n", (long long)r.skipped, ig_grad_scaler_get_scale(r.scaler));
    printf("train_images_per_s: %.1f\n", imgs / wall);
    printf("step_ms: %.3f\n", 1e3 * step_s);
    for (int p = 0; p < N_PHASES; p++) {
        printf("%s_ms: %.3f\n", names[p], 1e3 * r.phase[p] / ds);
        printf("%s_pct: %.1f\n", names[p], 100.0 * r.phase[p] / wall);
    }
    printf("cpu_per_wall: %.2f\n", cpu / wall);
    printf("forward_flops_per_image: %lld\n", (long long)ms.flops_per_image);
    printf("train_flops_per_image: %lld (3x forward)\n", 3 * (long long)ms.flops_per_image);
    printf("train_gflop_per_s: %.2f\n", train_gflops);
    if (gemm > 0) {
        printf("sgemm_gflop_per_s: %.2f (%lld^3, %d threads, best of 5)\n", gemm, (long long)sgemm_n,
               ig_get_num_threads());
        printf("sgemm_fraction_pct: %.1f\n", 100.0 * train_gflops / gemm);
    } else {
        printf("sgemm_gflop_per_s: skipped\n");
    }
    printf("peak_rss_mib: %.1f\n", (double)ru.ru_maxrss / 1024.0);
    if (bench_alloc_available()) {
        printf("heap_allocs_per_step: %.2f\n", (double)(a1 - a0) / ds);
        printf("heap_frees_per_step: %.2f\n", (double)(f1 - f0) / ds);
    } else {
        printf("heap_allocs_per_step: unavailable (allocator not wrapped in this build)\n");
    }
    printf("os_allocs_per_step: %.2f\n", (double)(m1.os_allocs - m0.os_allocs) / ds);
    printf("final_loss: %.4f\n", r.last_loss);
    if (fflush(stdout) != 0) ret = cli_error(EXIT_FAILED, "bench: cannot write the output");
    else ret = isfinite(r.last_loss) ? EXIT_OK : cli_error(EXIT_FAILED, "bench: the loss is not finite");

out:
    ig_tensor_free(r.dev_x);
    ig_tensor_free(r.dev_y);
    ig_tensor_free(r.dev_loss);
    ig_tensor_free(r.x);
    ig_tensor_free(r.y);
    ig_grad_scaler_free(r.scaler);
    ig_optim_free(r.opt);
    ig_module_free(r.net);
    close_source(&src);
    return ret;
}
