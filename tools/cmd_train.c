/*
 * tools/cmd_train.c — `ignis train`: trains an image classifier from a dataset folder,
 * showing its progress, writing DIR/metrics.csv, DIR/curves.png and checkpoints
 * (DIR/last.safetensors, DIR/best.safetensors; layout in checkpoint_impl.h), and resuming
 * from DIR/last exactly.
 *
 * Exactness of --resume: everything random is keyed so that an epoch depends only on the
 * state saved after the previous one. The model is initialised from --seed; the loader's
 * order and augmentation are keyed by (seed, epoch, index); the default generator's state,
 * the optimizer's state and the schedule's step are saved in each checkpoint and restored.
 * So epoch k+1 after a resume computes the same floats as in an uninterrupted run (with
 * the same --threads), which --log-steps lets a test check bit for bit.
 *
 * Data parallel (`mpirun -np N ignis train ...`; dist/dist.h): every rank builds the same
 * model from --seed and reads the same dataset; ig_ddp_new broadcasts rank 0's parameters,
 * checks that every rank built the same model and optimizer, and averages gradients over
 * the ranks in buckets during backward. The loader gives each rank its shard of every epoch
 * (DistributedSampler order), so --batch is per rank and the global batch is N x --batch.
 * Training metrics are all-reduced; evaluation runs on a strided shard per rank (item i on
 * rank i mod N) and the counts and loss sums are all-reduced, after the BatchNorm running
 * statistics were averaged over the ranks (ig_ddp_sync_buffers; the checkpoint then holds
 * them). Rank 0 alone prints progress and writes the run folder; every rank resumes from
 * the same checkpoint, which records the world size (resuming with another is refused: the
 * data order depends on it). A rank that fails prints its error naming the rank and ends
 * the whole job (ig_dist_abort). Launched without mpirun it is one process and the single
 * backend makes every collective the identity: results are those of the plain loop.
 * With --device cuda and several ranks the group becomes an nccl one (each rank takes the
 * GPU of its local rank; gradients are all-reduced on the GPU); IGNIS_DIST=nccl forces it
 * for a single process too.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_impl.h"
#include "core/tensor_impl.h"
#include "dist/dist.h"
#include "dist/dist_impl.h"
#include "train_impl.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* The options, with their defaults. */
typedef struct train_opts {
    const char *data, *model, *optimizer, *schedule, *augment, *out, *device, *log_steps, *amp;
    int64_t epochs, batch, seed, threads, stop_after;
    double lr, momentum, wd, warmup, label_smoothing, val_split;
    bool nesterov, resume, quiet, sync_bn, tf32;
    bool seen_sync_bn, seen_data, seen_model, seen_optimizer, seen_schedule, seen_augment, seen_epochs, seen_batch, seen_seed,
        seen_threads, seen_lr, seen_momentum, seen_wd, seen_warmup, seen_ls, seen_val, seen_nesterov;
} train_opts;

static const char *const OPTIMIZERS[] = {"sgd", "adam", "adamw", "rmsprop", NULL};
static const char *const SCHEDULES[] = {"const", "step", "cosine", "onecycle", NULL};

static bool in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return true;
    return false;
}

/* Checks values that the parser cannot; returns 0 or EXIT_USAGE after printing why. */
static int check_opts(const train_opts *o) {
    const char *c = "train";
    if (o->epochs < 1 || o->epochs > 1000000) return cli_error(EXIT_USAGE, "%s: --epochs must be in [1, 1000000]", c);
    if (o->batch < 1 || o->batch > (1 << 20)) return cli_error(EXIT_USAGE, "%s: --batch must be in [1, 1048576]", c);
    if (o->seen_lr && !(o->lr > 0 && o->lr <= 1e6)) return cli_error(EXIT_USAGE, "%s: --lr must be > 0", c);
    if (!in_list(o->optimizer, OPTIMIZERS))
        return cli_error(EXIT_USAGE, "%s: --optimizer: unknown '%s' (sgd, adam, adamw, rmsprop)", c, o->optimizer);
    if (!(o->momentum >= 0 && o->momentum < 1)) return cli_error(EXIT_USAGE, "%s: --momentum must be in [0, 1)", c);
    if (o->nesterov && (strcmp(o->optimizer, "sgd") != 0 || o->momentum <= 0))
        return cli_error(EXIT_USAGE, "%s: --nesterov needs --optimizer sgd and --momentum > 0", c);
    if (!(o->wd >= 0 && o->wd <= 1e6)) return cli_error(EXIT_USAGE, "%s: --wd must be >= 0", c);
    if (!in_list(o->schedule, SCHEDULES))
        return cli_error(EXIT_USAGE, "%s: --schedule: unknown '%s' (const, step, cosine, onecycle)", c, o->schedule);
    if (!(o->warmup >= 0 && o->warmup <= o->epochs))
        return cli_error(EXIT_USAGE, "%s: --warmup must be in [0, epochs]", c);
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return cli_error(EXIT_USAGE, "%s: --label-smoothing must be in [0, 1)", c);
    if (!(o->val_split >= 0 && o->val_split <= 0.9))
        return cli_error(EXIT_USAGE, "%s: --val-split must be in [0, 0.9]", c);
    if (o->seed < 0) return cli_error(EXIT_USAGE, "%s: --seed must be >= 0", c);
    if (o->threads < 0 || o->threads > 4096) return cli_error(EXIT_USAGE, "%s: --threads must be in [0, 4096]", c);
    if (o->stop_after < 0) return cli_error(EXIT_USAGE, "%s: --stop-after must be >= 0", c);
    if (strcmp(o->device, "cpu") != 0 && strcmp(o->device, "cuda") != 0)
        return cli_error(EXIT_USAGE, "%s: --device: unknown '%s' (cpu, cuda)", c, o->device);
    if (strcmp(o->augment, "none") != 0) {
        ig_transform *t = ig_tf_parse(o->augment, 3, 64, 64); /* syntax check; sizes come later */
        if (!t) return cli_error(EXIT_USAGE, "%s: --augment: %s", c, ig_last_error());
        ig_transform_free(t);
    }
    if (o->resume) {
        if (!o->out) return cli_error(EXIT_USAGE, "%s: --resume needs --out DIR (the run to continue)", c);
        struct {
            bool seen;
            const char *name;
        } fixed[] = {{o->seen_model, "model"},         {o->seen_optimizer, "optimizer"}, {o->seen_schedule, "schedule"},
                     {o->seen_augment, "augment"},     {o->seen_batch, "batch"},         {o->seen_seed, "seed"},
                     {o->seen_lr, "lr"},               {o->seen_momentum, "momentum"},   {o->seen_wd, "wd"},
                     {o->seen_warmup, "warmup"},       {o->seen_ls, "label-smoothing"},  {o->seen_val, "val-split"},
                     {o->seen_nesterov, "nesterov"},   {o->seen_sync_bn, "sync-bn"}};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            if (fixed[i].seen)
                return cli_error(EXIT_USAGE, "%s: --%s cannot be changed on --resume (the checkpoint's is used)", c,
                                 fixed[i].name);
    }
    return 0;
}

/* The state of one training session. */
/* The training metrics of an epoch on a device, kept there so that a step does not wait
 * for the GPU: step i's loss (the f32 value, converted exactly) and its top-1 hit count go
 * to row i of buf ([steps, 2] f64 on the device) by device copies, and stats_read folds the
 * rows not read yet into the host sums in step order, with the batch sizes kept on the
 * host. The doubles come out as the CPU path's, which reads each step: lv * b added to the
 * loss sum in the same order, integer hits exact in a double. */
typedef struct step_stats {
    ig_tensor *buf;           /* [cap, 2] f64 on the device (heap tensor) */
    int64_t *b;               /* batch size of each recorded step */
    int64_t cap, n, read;     /* rows; steps recorded this epoch; steps folded into the sums */
} step_stats;

typedef struct trainer {
    const train_opts *o;
    ckpt_run r;
    char *dir;
    ig_dist *dist;            /* the process group (one process without mpirun) */
    ig_ddp *ddp;              /* gradient averaging over it */
    int rank, world;
    bool lead;                /* rank 0: prints and writes the run folder */
    ig_dataset *full, *train, *val, *test;
    ig_dataset *val_shard, *test_shard; /* this rank's items of val / test (world > 1) */
    ig_transform *train_tf, *eval_tf;
    ig_module *model;
    ig_device dev;            /* --device: where the model, the batches and the optimizer run */
    ig_optimizer *opt;
    ig_amp amp;               /* --amp: the autocast mode of forward passes */
    ig_grad_scaler *scaler;   /* --amp fp16: dynamic loss scaling (NULL otherwise) */
    ig_scheduler *sched;
    ig_loader *loader;
    FILE *steplog;
    step_stats stats;         /* --device other than cpu: the epoch's per-step metrics */
} trainer;

static void trainer_free(trainer *t) {
    if (t->steplog) fclose(t->steplog);
    ig_tensor_free(t->stats.buf);
    free(t->stats.b);
    ig_loader_free(t->loader);
    ig_ddp_free(t->ddp);
    ig_sched_free(t->sched);
    ig_grad_scaler_free(t->scaler);
    ig_optim_free(t->opt);
    ig_module_free(t->model);
    ig_transform_free(t->train_tf);
    ig_transform_free(t->eval_tf);
    ig_dataset_free(t->val_shard);
    ig_dataset_free(t->test_shard);
    if (t->train != t->full) ig_dataset_free(t->train);
    ig_dataset_free(t->val);
    ig_dataset_free(t->full);
    ig_dataset_free(t->test);
    ckpt_run_free(&t->r);
    free(t->dir);
}

/* Runtime failure: the library's message as one line; returns EXIT_FAILED. */
static int fail(const char *what) {
    if (what) return cli_error(EXIT_FAILED, "%s: %s", what, ig_last_error());
    return cli_error(EXIT_FAILED, "%s", ig_last_error());
}

static char *xstrdup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) {
        fputs("ignis: error: out of memory\n", stderr);
        exit(EXIT_FAILED);
    }
    return d;
}

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) return xstrdup(NULL);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* IDX files carry no class names; Fashion-MNIST's are well known. Used when the dataset
 * folder's name says fashion and the shape fits. */
static const char *const FASHION_NAMES[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static bool looks_like_fashion_mnist(const char *dir, const int64_t shape[3], int k) {
    if (k != 10 || shape[0] != 1 || shape[1] != 28 || shape[2] != 28) return false;
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    for (const char *p = base; *p; p++)
        if (strncasecmp(p, "fashion", 7) == 0) return true;
    return false;
}

/* Opens the train (and val) and test sets and checks them against the run. */
static int open_data(trainer *t) {
    ckpt_run *r = &t->r;
    t->full = ig_dataset_open(r->data, true);
    if (!t->full) return fail("cannot read the training data");
    t->test = ig_dataset_open(r->data, false);
    if (!t->test) return fail("cannot read the test data");
    int64_t shape[3], tshape[3];
    if (ig_dataset_item_shape(t->full, shape) != 3)
        return cli_error(EXIT_FAILED, "%s: items are not images ([C,H,W]); ignis train needs an image dataset", r->data);
    if (ig_dataset_item_shape(t->test, tshape) != 3 || memcmp(shape, tshape, sizeof shape) != 0)
        return cli_error(EXIT_FAILED, "%s: train and test images differ in size", r->data);
    if (shape[0] > CKPT_MAX_CHANNELS) return cli_error(EXIT_FAILED, "%s: too many channels", r->data);
    int k = ig_dataset_num_classes(t->full);
    if (r->model == NULL) return 0;
    if (r->epoch > 0 || r->channels) { /* resuming: the data must be what the run was trained on */
        if (shape[0] != r->channels || shape[1] != r->height || shape[2] != r->width || k != r->num_classes)
            return cli_error(EXIT_FAILED,
                             "%s: images %lldx%lldx%lld with %d classes, but the run was trained on %lldx%lldx%lld "
                             "with %lld classes",
                             r->data, (long long)shape[0], (long long)shape[1], (long long)shape[2], k,
                             (long long)r->channels, (long long)r->height, (long long)r->width,
                             (long long)r->num_classes);
    } else {
        r->channels = shape[0], r->height = shape[1], r->width = shape[2], r->num_classes = k;
        r->class_names = calloc((size_t)k, sizeof *r->class_names);
        if (!r->class_names) return cli_error(EXIT_FAILED, "out of memory");
        bool fashion = looks_like_fashion_mnist(r->data, shape, k);
        for (int c = 0; c < k; c++)
            r->class_names[c] = xstrdup(fashion ? FASHION_NAMES[c] : ig_dataset_class_name(t->full, c));
    }
    if (ig_dataset_num_classes(t->test) > k)
        return cli_error(EXIT_FAILED, "%s: the test set has more classes (%d) than the training set (%d)", r->data,
                         ig_dataset_num_classes(t->test), k);
    t->train = t->full;
    if (r->val_split > 0) {
        if (ig_dataset_split(t->full, r->val_split, r->seed, &t->train, &t->val) != IG_OK)
            return fail("--val-split");
        if (ig_dataset_len(t->val) == 0) return cli_error(EXIT_FAILED, "--val-split %g leaves no validation items", r->val_split);
    }
    return 0;
}

static int make_optimizer(trainer *t) {
    ckpt_run *r = &t->r;
    /* The model moves before flattening: the flat buffers are made where it is. */
    if (t->dev != IG_CPU && ig_module_to(t->model, t->dev) != IG_OK) return fail("--device");
    if (ig_module_flatten(t->model) != IG_OK) return fail(NULL);
    ig_tensor *flat = ig_module_flat_params(t->model);
    if (!strcmp(r->optimizer, "sgd")) {
        ig_sgd_opts so = ig_sgd_defaults();
        so.lr = r->lr, so.momentum = r->momentum, so.nesterov = r->nesterov, so.weight_decay = r->weight_decay;
        t->opt = ig_optim_sgd(&flat, 1, &so);
    } else if (!strcmp(r->optimizer, "adam") || !strcmp(r->optimizer, "adamw")) {
        bool w = r->optimizer[4] == 'w';
        ig_adam_opts ao = w ? ig_adamw_defaults() : ig_adam_defaults();
        ao.lr = r->lr, ao.weight_decay = r->weight_decay;
        t->opt = w ? ig_optim_adamw(&flat, 1, &ao) : ig_optim_adam(&flat, 1, &ao);
    } else if (!strcmp(r->optimizer, "rmsprop")) {
        ig_rmsprop_opts ro = ig_rmsprop_defaults();
        ro.lr = r->lr, ro.momentum = r->momentum, ro.weight_decay = r->weight_decay;
        t->opt = ig_optim_rmsprop(&flat, 1, &ro);
    } else {
        return cli_error(EXIT_FAILED, "unknown optimizer '%s'", r->optimizer);
    }
    if (!t->opt) return fail("optimizer");
    char desc[512];
    if (ig_optim_describe(t->opt, desc, sizeof desc) == IG_OK) {
        free(r->optimizer_params);
        r->optimizer_params = xstrdup(desc);
    }
    /* Schedules step once per batch: total = epochs * steps_per_epoch. */
    int64_t total = r->epochs * r->steps_per_epoch;
    int64_t warm = llround(r->warmup * (double)r->steps_per_epoch);
    ig_scheduler *inner = NULL;
    if (!strcmp(r->schedule, "step")) {
        int64_t ms[2] = {total / 2, total * 3 / 4};
        inner = ig_sched_multistep_lr(t->opt, ms, 2, 0.1);
    } else if (!strcmp(r->schedule, "cosine")) {
        inner = ig_sched_cosine_lr(t->opt, total, 0.0);
    } else if (!strcmp(r->schedule, "onecycle")) {
        inner = ig_sched_onecycle_lr(t->opt, r->lr, total, 0, 0, 0);
    }
    if (strcmp(r->schedule, "const") != 0 && !inner) return fail("--schedule");
    t->sched = warm > 0 ? ig_sched_warmup_lr(t->opt, inner, warm, 0.1) : inner;
    if (warm > 0 && !t->sched) return fail("--warmup");
    return 0;
}

/* Fills the run from the options for a fresh start. */
static void run_from_opts(ckpt_run *r, const train_opts *o) {
    r->data = xstrdup(o->data);
    r->optimizer = xstrdup(o->optimizer);
    r->schedule = xstrdup(o->schedule);
    r->augment = xstrdup(o->augment);
    r->lr = o->seen_lr ? o->lr : !strcmp(o->optimizer, "sgd") ? 0.1 : 1e-3;
    r->momentum = o->momentum;
    r->nesterov = o->nesterov;
    r->weight_decay = o->wd;
    r->warmup = o->warmup;
    r->label_smoothing = o->label_smoothing;
    r->val_split = o->val_split;
    r->epochs = o->epochs;
    r->batch = o->batch;
    r->threads = o->threads;
    r->seed = (uint64_t)o->seed;
    r->sync_bn = o->sync_bn;
    r->best_acc = -1;
    r->optim_file = xstrdup("");
    r->best_optim_file = xstrdup("");
}

static char *default_out_dir(const char *model) {
    char stamp[32], buf[256];
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tmv);
    snprintf(buf, sizeof buf, "runs/%s-%s", model_short_name(model), stamp);
    struct stat sb;
    for (int i = 2; stat(buf, &sb) == 0 && i < 1000; i++)
        snprintf(buf, sizeof buf, "runs/%s-%s-%d", model_short_name(model), stamp, i);
    return xstrdup(buf);
}

/* Writes the checkpoint of the epoch just finished (order: checkpoint_impl.h), then the
 * metrics and the curves. improved: this epoch is the new best. */
static int save_epoch(trainer *t, bool improved) {
    ckpt_run *r = &t->r;
    char name[96];
    /* unique per checkpoint: a redone epoch never overwrites a file best may still name */
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint32_t nonce = (uint32_t)((uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)getpid() << 16 ^ ++counter);
    snprintf(name, sizeof name, "optim-e%04lld-%08x.safetensors", (long long)r->epoch, (unsigned)nonce);
    char *p = path_in(t->dir, name);
    ig_status st = ckpt_save_optim(p, t->opt, t->sched ? ig_sched_last_step(t->sched) : r->step, t->scaler);
    free(p);
    if (st != IG_OK) return fail("checkpoint");
    free(r->optim_file);
    r->optim_file = xstrdup(name);
    if (improved) {
        free(r->best_optim_file);
        r->best_optim_file = xstrdup(name);
        p = path_in(t->dir, "best.safetensors");
        st = ckpt_save_model(p, t->model, r);
        free(p);
        if (st != IG_OK) return fail("checkpoint");
    }
    p = path_in(t->dir, "last.safetensors");
    st = ckpt_save_model(p, t->model, r);
    free(p);
    if (st != IG_OK) return fail("checkpoint");
    ckpt_prune(t->dir, r->optim_file, r->best_optim_file);

    char *csv = metrics_csv(r->history, r->nhistory, r->val_split > 0);
    p = path_in(t->dir, "metrics.csv");
    st = csv ? write_file_atomic(p, csv) : igi_error(IG_ERR_NOMEM, "out of memory");
    free(p);
    free(csv);
    if (st != IG_OK) return fail(NULL);
    p = path_in(t->dir, "curves.png");
    st = plot_curves(p, r->history, r->nhistory, r->val_split > 0);
    free(p);
    if (st != IG_OK) return fail(NULL);
    return 0;
}

/* Records a step's loss (0-dim) and the hits of logits [B, classes] against yd [B] in the
 * next row of s, on the device and without waiting for it. b: the batch size. */
static ig_status stats_record(step_stats *s, ig_tensor *loss, ig_tensor *logits, ig_tensor *yd, int64_t b) {
    IG_ASSERT(s->n < s->cap); /* one row per batch of the epoch */
    ig_no_grad_begin();
    /* count_hits' top-1 rule: the first largest score is the prediction (the device's
     * argmax takes the first extreme too; it differs only for NaN scores, which make the
     * loss NaN and end the run) */
    ig_tensor *hits = ig_sum(ig_eq(ig_argmax(logits, 1, false), yd), 0, NULL, false);
    ig_tensor *row = ig_select(s->buf, 0, s->n);
    ig_tensor *lcell = ig_select(row, 0, 0), *hcell = ig_select(row, 0, 1);
    ig_status st = hits && lcell && hcell ? ig_copy_(lcell, loss) : ig_last_status();
    if (st == IG_OK) st = ig_copy_(hcell, hits);
    ig_no_grad_end();
    if (st == IG_OK) s->b[s->n++] = b;
    return st;
}

/* Folds the steps recorded since the last read into the sums (one copy to the host, which
 * waits for the device). first_step: the global step number of row 0. A non-finite loss
 * stops the folding at its step: *bad_step is then set (else -1) with *bad_loss. */
static ig_status stats_read(step_stats *s, int64_t first_step, double *loss_sum, int64_t *hits, int64_t *images,
                            double *last_loss, int64_t *bad_step, double *bad_loss) {
    *bad_step = -1;
    if (s->read == s->n) return IG_OK;
    ig_scope *sc = ig_scope_begin();
    ig_tensor *h = ig_contiguous(ig_to(ig_slice(s->buf, 0, s->read, s->n, 1), IG_CPU));
    if (!h) {
        ig_scope_end(sc);
        return ig_last_status();
    }
    const double *v = ig_tensor_data(h);
    for (int64_t i = s->read; i < s->n; i++, v += 2) {
        double lv = v[0];
        *last_loss = lv;
        if (!isfinite(lv)) {
            *bad_step = first_step + i + 1;
            *bad_loss = lv;
            break;
        }
        *loss_sum += lv * (double)s->b[i];
        *images += s->b[i];
        *hits += (int64_t)v[1];
    }
    ig_scope_end(sc);
    s->read = s->n;
    return IG_OK;
}

/* One epoch of training (epoch: 0-based). Fills the train columns of row.
 * On the CPU the loss and the hits are read after every step (free there). On a device
 * they stay on it (step_stats) and are read only where a number is needed: a --log-steps
 * line (every step), a progress refresh (at most 10 a second on a terminal, else every
 * tenth of the epoch) and the end of the epoch; so is the non-finite loss check, which
 * still names the exact step but may fire some steps later. The uploads come from the
 * loader's pinned buffers and do not wait either: the host runs ahead of the GPU. */
static int train_epoch(trainer *t, int64_t epoch, metrics_row *row) {
    ckpt_run *r = &t->r;
    ig_ce_params ce = {.reduction = IG_REDUCTION_MEAN, .label_smoothing = r->label_smoothing};
    progress pg;
    bool show = t->lead && !t->o->quiet; /* the display shows rank 0's shard */
    bool on_dev = t->dev != IG_CPU;
    step_stats *ss = &t->stats;
    if (on_dev && !ss->buf) {
        ss->cap = ig_loader_num_batches(t->loader);
        ig_tensor *z = ig_zeros(IG_DIMS(ss->cap, 2), IG_F64);
        ss->buf = z ? ig_to(z, t->dev) : NULL;
        ig_tensor_free(z);
        ss->b = malloc(sizeof *ss->b * (size_t)(ss->cap > 0 ? ss->cap : 1));
        if (!ss->buf || !ss->b) return fail("training metrics on the device");
    }
    ss->n = ss->read = 0;
    const int64_t step0 = r->step;
    progress_start(&pg, show && isatty(2), epoch + 1, r->epochs, r->steps_per_epoch);
    if (ig_loader_start_epoch(t->loader, epoch) != IG_OK) return fail(NULL);
    double loss_sum = 0;
    int64_t images = 0, hits = 0, done = 0, top5 = 0;
    ig_tensor *x, *y;
    int got;
    while ((got = ig_loader_next(t->loader, &x, &y)) != 0) {
        if (got < 0) return fail("reading the training data");
        int64_t b = ig_tensor_size(y, 0);
        ig_scope *sc = ig_scope_begin();
        /* On a device: the batch is uploaded (asynchronously from the pinned buffers) */
        ig_tensor *xd = on_dev ? ig_to(x, t->dev) : x, *yd = on_dev ? ig_to(y, t->dev) : y;
        /* forward and loss under autocast (--amp); backward follows each op's own mode */
        ig_amp prev = ig_autocast_set(t->amp);
        ig_tensor *logits = ig_module_forward(t->model, xd);
        ig_tensor *loss = ig_cross_entropy(logits, yd, &ce);
        ig_autocast_set(prev);
        /* fp16: backward from the scaled loss; the scaler unscales, and skips the step
         * (halving the scale) when a gradient overflowed */
        ig_tensor *seed_loss = t->scaler ? ig_grad_scaler_scale(t->scaler, loss) : loss;
        /* ig_ddp_step averages the gradients over the ranks, then steps the optimizer */
        if (!seed_loss || ig_backward(seed_loss, NULL) != IG_OK || ig_ddp_step_scaled(t->ddp, t->scaler) != IG_OK) {
            ig_scope_end(sc);
            return fail("training step");
        }
        /* (the scaler read its overflow flag from the device: fp16 waits here each step) */
        if (t->scaler && ig_grad_scaler_skipped(t->scaler) && t->lead)
            printf("amp fp16: step %lld skipped (inf/NaN gradients), loss scale now %g\n", (long long)r->step + 1,
                   ig_grad_scaler_get_scale(t->scaler));
        ig_optim_zero_grad(t->opt);
        if (t->sched && ig_sched_step(t->sched) != IG_OK) {
            ig_scope_end(sc);
            return fail("schedule");
        }
        double lv = NAN;
        if (on_dev) {
            if (stats_record(ss, loss, logits, yd, b) != IG_OK) {
                ig_scope_end(sc);
                return fail("training metrics");
            }
        } else {
            lv = ig_item(loss);
            ig_tensor *lc = host_f32(logits);
            if (lc) count_hits(ig_tensor_data(lc), ig_tensor_data(y), b, r->num_classes, &hits, &top5, NULL);
        }
        ig_scope_end(sc);
        r->step++;
        done++;
        /* On a device, bring the sums up to date where they are shown. */
        if (on_dev && (t->o->log_steps || (show && progress_due(&pg, done)))) {
            int64_t bad_step;
            double bad_loss;
            if (stats_read(ss, step0, &loss_sum, &hits, &images, &lv, &bad_step, &bad_loss) != IG_OK)
                return fail("reading the training metrics");
            /* with --log-steps every step is read at once, so the line below is this step's */
            if (bad_step >= 0 && !t->o->log_steps)
                return cli_error(EXIT_FAILED, "the loss became %g at step %lld (try a smaller --lr)", bad_loss,
                                 (long long)bad_step);
        }
        if (t->o->log_steps) {
            /* the global batch's loss: the mean of the ranks' (every rank has --log-steps) */
            double gl = lv;
            if (t->world > 1) {
                if (ig_dist_all_reduce_doubles(t->dist, &gl, 1) != IG_OK) return fail("--log-steps");
                gl /= t->world;
            }
            if (t->steplog) fprintf(t->steplog, "%lld %lld %a\n", (long long)epoch + 1, (long long)r->step, gl);
        }
        if (!isfinite(lv) && (!on_dev || t->o->log_steps))
            return cli_error(EXIT_FAILED, "the loss became %g at step %lld (try a smaller --lr)", lv, (long long)r->step);
        if (!on_dev) {
            loss_sum += lv * (double)b;
            images += b;
        }
        /* images/s of the whole job: every rank takes a batch per step (on a device only
         * when the sums were just read: the display is due) */
        if (show && (!on_dev || ss->read == ss->n))
            progress_update(&pg, done, images * t->world, loss_sum / (double)images, (double)hits / (double)images);
    }
    if (on_dev) {
        int64_t bad_step;
        double bad_loss, last;
        if (stats_read(ss, step0, &loss_sum, &hits, &images, &last, &bad_step, &bad_loss) != IG_OK)
            return fail("reading the training metrics");
        if (bad_step >= 0)
            return cli_error(EXIT_FAILED, "the loss became %g at step %lld (try a smaller --lr)", bad_loss,
                             (long long)bad_step);
    }
    if (show) progress_end(&pg);
    if (t->steplog) fflush(t->steplog);
    /* the epoch's totals over all ranks (the identity in one process) */
    double tot[3] = {loss_sum, (double)hits, (double)images};
    if (ig_dist_all_reduce_doubles(t->dist, tot, 3) != IG_OK) return fail("all-reduce of the training metrics");
    row->train_loss = tot[2] > 0 ? tot[0] / tot[2] : NAN;
    row->train_acc = tot[2] > 0 ? tot[1] / tot[2] : NAN;
    row->seconds = now_seconds() - pg.t0;
    return 0;
}

/* Evaluates on d (this rank's shard of the split when world > 1; the totals are summed
 * over the ranks, so the numbers are those of the whole split). */
static int eval_split(trainer *t, ig_dataset *d, double *loss, double *acc) {
    eval_result er = {0};
    int64_t batch = t->r.batch > 256 ? t->r.batch : 256;
    ig_amp prev = ig_autocast_set(t->amp);
    ig_status st = evaluate(t->model, d, t->eval_tf, batch, t->r.num_classes, &er);
    ig_autocast_set(prev);
    if (st != IG_OK) return fail("evaluation");
    double tot[3] = {er.loss_sum, (double)er.correct, (double)er.n};
    if (ig_dist_all_reduce_doubles(t->dist, tot, 3) != IG_OK) return fail("all-reduce of the evaluation");
    *loss = tot[2] > 0 ? tot[0] / tot[2] : NAN;
    *acc = tot[2] > 0 ? tot[1] / tot[2] : NAN;
    return 0;
}

/* A kill between writing best and last leaves a best newer than last knows of: take the
 * best accuracy and optimizer file from best itself, so that file is kept and a later
 * epoch must beat it. */
static void adopt_best(trainer *t) {
    ckpt_run *r = &t->r;
    char *p = path_in(t->dir, "best.safetensors");
    ig_safetensors *st = ig_safetensors_load(p);
    free(p);
    if (!st) return;
    const char *of = ig_safetensors_meta(st, "optimizer_state"), *acc = ig_safetensors_meta(st, "best_acc"),
               *ep = ig_safetensors_meta(st, "best_epoch");
    char *end = NULL;
    double a = acc ? igi_strtod(acc, &end) : NAN;
    if (of && *of && !strchr(of, '/') && end && !*end && a >= 0 && a <= 1 && ep) {
        free(r->best_optim_file);
        r->best_optim_file = xstrdup(of);
        r->best_acc = a;
        r->best_epoch = strtoll(ep, NULL, 10);
    }
    ig_safetensors_free(st);
}

/* Item i of d for i = rank, rank + world, ...: this rank's share of an evaluation. */
static ig_dataset *eval_shard(trainer *t, ig_dataset *d) {
    int64_t n = ig_dataset_len(d), k = n > t->rank ? (n - t->rank + t->world - 1) / t->world : 0;
    int64_t *idx = malloc(sizeof *idx * (size_t)(k ? k : 1));
    if (!idx) return NULL;
    for (int64_t j = 0; j < k; j++) idx[j] = t->rank + j * t->world;
    ig_dataset *s = ig_dataset_subset(d, idx, k);
    free(idx);
    return s;
}

/* The data-parallel part of the set-up (collective: every rank calls it at the same point).
 * In one process: the wrapper with identity collectives, and the same datasets. */
static int setup_dist(trainer *t) {
    ckpt_run *r = &t->r;
    ig_ddp_opts dopts = {.sync_bn = r->sync_bn};
    t->ddp = ig_ddp_new(t->dist, t->model, t->opt, &dopts);
    if (!t->ddp) return fail(t->world > 1 ? "data-parallel set-up (do all ranks run the same command?)" : NULL);
    /* The rest of the run must agree too, or the ranks would take different numbers of
     * steps or collectives: the options and what each rank read from its data. */
    char cfg[1024];
    int n = snprintf(cfg, sizeof cfg,
                     "batch %lld epochs %lld stop %lld steps %lld epoch %lld seed %llu schedule %s warmup %.17g "
                     "augment %s smoothing %.17g val %.17g log %d train %lld test %lld val %lld shape %lldx%lldx%lld "
                     "classes %lld",
                     (long long)r->batch, (long long)r->epochs, (long long)t->o->stop_after,
                     (long long)r->steps_per_epoch, (long long)r->epoch, (unsigned long long)r->seed, r->schedule,
                     r->warmup, r->augment, r->label_smoothing, r->val_split, t->o->log_steps != NULL,
                     (long long)ig_dataset_len(t->train), (long long)ig_dataset_len(t->test),
                     (long long)(t->val ? ig_dataset_len(t->val) : 0), (long long)r->channels, (long long)r->height,
                     (long long)r->width, (long long)r->num_classes);
    for (int64_t c = 0; c < r->channels && n > 0 && (size_t)n < sizeof cfg; c++)
        n += snprintf(cfg + n, sizeof cfg - (size_t)n, " %.17g/%.17g", r->mean[c], r->std[c]);
    if (ig_dist_check_same(t->dist, cfg, strlen(cfg),
                           "the training options (--batch, --epochs, --stop-after, --seed, --schedule, --augment, "
                           "--log-steps, ...) or the data") != IG_OK)
        return fail(NULL);
    if (t->world > 1) {
        t->test_shard = eval_shard(t, t->test);
        if (!t->test_shard) return fail("test set shard");
        if (t->val && !(t->val_shard = eval_shard(t, t->val))) return fail("validation set shard");
    }
    return 0;
}

static int setup(trainer *t) {
    const train_opts *o = t->o;
    ckpt_run *r = &t->r;
    int rc;
    if (o->resume) {
        t->dir = xstrdup(o->out);
        char *p = path_in(t->dir, "last.safetensors");
        ig_status st = ckpt_load_model(p, r, &t->model);
        if (st != IG_OK) {
            rc = access(p, F_OK) != 0 ? cli_error(EXIT_FAILED, "--resume: %s has no checkpoint (last.safetensors)", t->dir)
                                      : fail("--resume");
            free(p);
            return rc;
        }
        free(p);
        if (o->seen_epochs) {
            if (o->epochs < r->epoch)
                return cli_error(EXIT_USAGE, "train: --epochs %lld is less than the %lld epochs already done",
                                 (long long)o->epochs, (long long)r->epoch);
            r->epochs = o->epochs;
        }
        if (o->seen_data) {
            free(r->data);
            r->data = xstrdup(o->data);
        }
        if (o->seen_threads) r->threads = o->threads;
        /* the shards, hence the data order and the schedule's length, depend on it */
        if (r->world_size != t->world)
            return cli_error(EXIT_FAILED,
                             "--resume: the run in %s was trained by %lld process%s, this job has %d: resume it with "
                             "mpirun -np %lld (or without mpirun for 1)",
                             t->dir, (long long)r->world_size, r->world_size == 1 ? "" : "es", t->world,
                             (long long)r->world_size);
    } else {
        run_from_opts(r, o);
        r->world_size = t->world;
        if (model_describe(o->model, &r->model) != IG_OK)
            return cli_error(ig_last_status() == IG_ERR_ARG ? EXIT_USAGE : EXIT_FAILED, "train: --model: %s",
                             ig_last_error());
        t->dir = o->out ? xstrdup(o->out) : default_out_dir(r->model);
    }
    /* 0 keeps the library's default (all online CPUs). */
    if (r->threads > 0) ig_set_num_threads((int)r->threads);
    if ((rc = open_data(t))) return rc;
    if (!o->resume) {
        if (ig_dataset_mean_std(t->train, r->mean, r->std) != IG_OK) return fail("normalisation statistics");
        for (int64_t c = 0; c < r->channels; c++)
            if (!(r->std[c] > 1e-6)) r->std[c] = 1; /* a constant channel: only centre it */
        ig_manual_seed(r->seed);
        t->model = model_build(r->model, r->channels, r->height, r->width, r->num_classes);
        if (!t->model) return fail("--model");
    }
    t->eval_tf = normalize_transform(r);
    if (!t->eval_tf) return fail("normalisation");
    if (strcmp(r->augment, "none") != 0) {
        ig_transform *ts[2] = {ig_tf_parse(r->augment, (int)r->channels, (int)r->height, (int)r->width),
                               normalize_transform(r)};
        if (!ts[0]) {
            ig_transform_free(ts[1]);
            return cli_error(o->resume ? EXIT_FAILED : EXIT_USAGE, "train: --augment: %s", ig_last_error());
        }
        int oc, oh, ow;
        ig_transform_out_shape(ts[0], (int)r->channels, (int)r->height, (int)r->width, &oc, &oh, &ow);
        if (oc != r->channels || oh != r->height || ow != r->width) {
            ig_transform_free(ts[0]), ig_transform_free(ts[1]);
            return cli_error(EXIT_USAGE, "train: --augment must keep the image size");
        }
        t->train_tf = ig_tf_compose(2, ts);
        if (!t->train_tf) return fail("--augment");
    }
    if (ig_dataset_len(t->train) < r->batch)
        return cli_error(EXIT_FAILED, "the training set has %lld items, fewer than --batch %lld",
                         (long long)ig_dataset_len(t->train), (long long)r->batch);
    int64_t shard = ig_sampler_count(ig_dataset_len(t->train), t->rank, t->world, false);
    if (shard < r->batch)
        return cli_error(EXIT_FAILED, "the training set has %lld items, %lld per process, fewer than --batch %lld",
                         (long long)ig_dataset_len(t->train), (long long)shard, (long long)r->batch);
    ig_loader_opts lo = {.batch_size = r->batch,
                         .shuffle = true,
                         .drop_last = true,
                         .seed = r->seed,
                         .num_workers = 1,
                         .rank = t->rank,
                         .world_size = t->world,
                         .transform = t->train_tf ? t->train_tf : t->eval_tf,
                         /* uploads to the device run asynchronously from page-locked batches */
                         .pin_memory = t->dev != IG_CPU};
    t->loader = ig_loader_new(t->train, &lo);
    if (!t->loader) return fail("data loader");
    int64_t spe = ig_loader_num_batches(t->loader);
    if (o->resume && spe != r->steps_per_epoch)
        return cli_error(EXIT_FAILED, "%s: %lld batches per epoch, but the run had %lld (different data?)", r->data,
                         (long long)spe, (long long)r->steps_per_epoch);
    r->steps_per_epoch = spe;
    if ((rc = make_optimizer(t))) return rc;
    if (o->resume) {
        int64_t sstep = 0;
        char *p = path_in(t->dir, r->optim_file);
        ig_status st = r->optim_file[0] ? ckpt_load_optim(p, t->opt, &sstep, t->scaler)
                                         : igi_error(IG_ERR_FORMAT, "last.safetensors names no optimizer file");
        free(p);
        if (st != IG_OK) return fail("--resume");
        if (t->sched && ig_sched_set_step(t->sched, sstep) != IG_OK) return fail("--resume");
        ig_rng_set_state(r->rng_seed, r->rng_offset);
        adopt_best(t);
        /* Files an interrupted run left half-written (its checkpoints are intact). */
        if (t->lead) ckpt_prune(t->dir, r->optim_file, r->best_optim_file);
    } else if (t->lead) { /* rank 0 alone writes the run folder */
        if (make_dirs(t->dir) != IG_OK) return fail("--out");
        char *p = path_in(t->dir, "last.safetensors");
        bool exists = access(p, F_OK) == 0;
        free(p);
        if (exists)
            return cli_error(EXIT_FAILED, "%s already holds a run (last.safetensors): add --resume, or choose another --out",
                             t->dir);
    }
    if ((rc = setup_dist(t))) return rc;
    if (o->log_steps && t->lead) {
        t->steplog = fopen(o->log_steps, o->resume ? "a" : "w");
        if (!t->steplog) return cli_error(EXIT_FAILED, "--log-steps: cannot open %s: %s", o->log_steps, strerror(errno));
    }
    return 0;
}

static int train(trainer *t) {
    const train_opts *o = t->o;
    ckpt_run *r = &t->r;
    bool has_val = r->val_split > 0;
    if (!o->quiet && t->lead) {
        printf("ignis train: model %s (%lld parameters), optimizer %s (%s), schedule %s\n", model_short_name(r->model),
               (long long)ig_module_num_params(t->model), r->optimizer, r->optimizer_params, r->schedule);
        char batch[128];
        if (t->world > 1)
            snprintf(batch, sizeof batch, "batch %lld per rank x %d ranks = global batch %lld", (long long)r->batch,
                     t->world, (long long)r->batch * t->world);
        else
            snprintf(batch, sizeof batch, "batch %lld", (long long)r->batch);
        printf("data %s: %lld train%s / %lld test images of %lldx%lldx%lld, %lld classes; %s, augment %s\n", r->data,
               (long long)ig_dataset_len(t->train), has_val ? "" : "", (long long)ig_dataset_len(t->test),
               (long long)r->channels, (long long)r->height, (long long)r->width, (long long)r->num_classes, batch,
               r->augment);
        if (t->world > 1 || strcmp(ig_dist_backend(t->dist), "single") != 0)
            printf("data parallel: %d process%s (%s backend)%s; each trains on its shard of every epoch\n", t->world,
                   t->world > 1 ? "es" : "", ig_dist_backend(t->dist),
                   r->sync_bn ? ", BatchNorm statistics synchronised (--sync-bn)" : "");
        if (has_val) printf("validation: %lld images held out of the training set\n", (long long)ig_dataset_len(t->val));
        printf("output: %s%s\n", t->dir, o->resume ? " (resumed)" : "");
        if (o->resume) printf("resuming after epoch %lld of %lld\n", (long long)r->epoch, (long long)r->epochs);
        fflush(stdout);
    }
    ig_module_train(t->model, true);
    int64_t last = r->epochs;
    if (o->stop_after > 0 && o->stop_after < last) last = o->stop_after;
    for (int64_t e = r->epoch; e < last; e++) {
        metrics_row row = {.epoch = e + 1, .val_loss = NAN, .val_acc = NAN};
        row.lr = ig_optim_get_lr(t->opt);
        int rc = train_epoch(t, e, &row);
        if (rc) return rc;
        /* the same running statistics on every rank before evaluating and saving */
        if (ig_ddp_sync_buffers(t->ddp) != IG_OK) return fail("BatchNorm statistics");
        ig_dataset *val = t->val_shard ? t->val_shard : t->val, *test = t->test_shard ? t->test_shard : t->test;
        if (has_val && (rc = eval_split(t, val, &row.val_loss, &row.val_acc))) return rc;
        if ((rc = eval_split(t, test, &row.test_loss, &row.test_acc))) return rc;
        row.seconds = round(row.seconds * 100) / 100;
        metrics_row *h = realloc(r->history, sizeof *h * (size_t)(r->nhistory + 1));
        if (!h) return cli_error(EXIT_FAILED, "out of memory");
        r->history = h;
        h[r->nhistory++] = row;
        r->epoch = e + 1;
        ig_rng_get_state(&r->rng_seed, &r->rng_offset);
        double acc = has_val ? row.val_acc : row.test_acc;
        bool improved = acc > r->best_acc;
        if (improved) r->best_acc = acc, r->best_epoch = e + 1;
        if (!t->lead) continue; /* the others keep the same run state but neither write nor print */
        if ((rc = save_epoch(t, improved))) return rc;
        double ips = row.seconds > 0 ? (double)(r->steps_per_epoch * r->batch * t->world) / row.seconds : 0;
        printf("epoch %lld/%lld  train loss %.4f acc %.2f%%", (long long)(e + 1), (long long)r->epochs, row.train_loss,
               100 * row.train_acc);
        if (has_val) printf("  val loss %.4f acc %.2f%%", row.val_loss, 100 * row.val_acc);
        printf("  test loss %.4f acc %.2f%%  lr %.3g  %.1f s  %.0f img/s%s\n", row.test_loss, 100 * row.test_acc,
               row.lr, row.seconds, ips, improved ? "  *" : "");
        fflush(stdout);
    }
    if (!t->lead) return 0;
    if (r->epoch < r->epochs)
        printf("stopped after epoch %lld of %lld; continue with: ignis train --out %s --resume\n", (long long)r->epoch,
               (long long)r->epochs, t->dir);
    else if (!o->quiet)
        printf("done: best %s accuracy %.2f%% (epoch %lld); checkpoints, metrics.csv and curves.png in %s\n",
               has_val ? "val" : "test", 100 * r->best_acc, (long long)r->best_epoch, t->dir);
    return 0;
}

static const char DESCRIPTION[] =
    "Trains an image classifier. Without options: the cnn model on Fashion-MNIST from\n"
    DEFAULT_DATA " for 8 epochs (SGD with Nesterov\n"
    "momentum, one-cycle schedule peaking at lr 0.1, label smoothing 0.1, horizontal flips).\n"
    "Writes to --out DIR: last.safetensors and best.safetensors (model state dicts loadable\n"
    "in PyTorch, run information in their metadata), optimizer state files, metrics.csv and\n"
    "curves.png, all updated after every epoch. --resume continues DIR's run exactly where\n"
    "its last checkpoint left it.\n"
    "\n"
    "Data parallel: `mpirun -np N ignis train ...` trains on N processes, each on its shard\n"
    "of every epoch; --batch is per process (the global batch is N x --batch). Rank 0\n"
    "prints and writes the run folder; resume with the same N.";

/* The process group for the device: a model on the GPU with several processes needs the
 * nccl backend, which the group becomes here (every rank runs the same command, so all
 * make the same call); nccl forced (IGNIS_DIST=nccl) is for GPU models only. */
static int pick_backend(ig_dist *d, ig_device dev, int world) {
    bool nccl = !strcmp(ig_dist_backend(d), "nccl");
    if (nccl && dev == IG_CPU)
        return cli_error(EXIT_USAGE, "train: the nccl backend (IGNIS_DIST=nccl) moves GPU memory: use --device cuda, "
                                     "or the mpi backend for --device cpu");
    if (dev == IG_CPU || world == 1 || nccl) return EXIT_OK;
#ifdef IGNIS_WITH_NCCL
    if (igi_dist_use_nccl(d) != IG_OK) return cli_error(EXIT_FAILED, "train: %s", ig_last_error());
    return EXIT_OK;
#else
    return cli_error(EXIT_USAGE, "train: --device cuda with several processes needs the nccl backend, and this ignis "
                                 "was built without NCCL (it needs CUDA, NCCL and MPI; `make` says what it found on "
                                 "its NCCL line)");
#endif
}

static int train_main(ig_dist *d, int argc, char **argv) {
    train_opts o = {.data = DEFAULT_DATA,
                    .model = "cnn",
                    .optimizer = "sgd",
                    .schedule = "onecycle",
                    .augment = "flip",
                    .device = "cpu",
                    .amp = "off",
                    .epochs = 8,
                    .batch = 128,
                    .momentum = 0.9,
                    .wd = 5e-4,
                    .label_smoothing = 0.1};
    bool no_nesterov = false, seen_no_nesterov = false;
    const cli_option opts[] = {
        {"data", CLI_STRING, &o.data, "DIR", "dataset folder: IDX, CIFAR binary, or train/ and test/ PNG folders (default " DEFAULT_DATA ")", &o.seen_data},
        {"model", CLI_STRING, &o.model, "NAME|FILE", "zoo model (mlp, cnn, resnet8, resnet20, resnet56) or model file (default cnn)", &o.seen_model},
        {"epochs", CLI_INT, &o.epochs, "N", "epochs to train (default 8); with --resume: the new total", &o.seen_epochs},
        {"batch", CLI_INT, &o.batch, "N", "batch size per rank (default 128; under mpirun 128/ranks)", &o.seen_batch},
        {"lr", CLI_DOUBLE, &o.lr, "F", "learning rate, the peak for onecycle (default 0.1 for sgd, 0.001 otherwise)", &o.seen_lr},
        {"optimizer", CLI_STRING, &o.optimizer, "NAME", "sgd, adam, adamw or rmsprop (default sgd)", &o.seen_optimizer},
        {"momentum", CLI_DOUBLE, &o.momentum, "F", "momentum of sgd and rmsprop (default 0.9)", &o.seen_momentum},
        {"nesterov", CLI_FLAG, &o.nesterov, NULL, "Nesterov momentum (the default for sgd with momentum)", &o.seen_nesterov},
        {"no-nesterov", CLI_FLAG, &no_nesterov, NULL, "plain momentum for sgd", &seen_no_nesterov},
        {"wd", CLI_DOUBLE, &o.wd, "F", "weight decay (default 5e-4; decoupled for adamw)", &o.seen_wd},
        {"schedule", CLI_STRING, &o.schedule, "NAME", "const, step (x0.1 at 50% and 75%), cosine or onecycle (default onecycle)", &o.seen_schedule},
        {"warmup", CLI_DOUBLE, &o.warmup, "EPOCHS", "linear warm-up from 0.1 x lr over this many epochs (default 0)", &o.seen_warmup},
        {"augment", CLI_STRING, &o.augment, "SPEC", "crop:P,flip,erase:P,rotate:DEG,jitter:B in any combination, or none (default flip)", &o.seen_augment},
        {"label-smoothing", CLI_DOUBLE, &o.label_smoothing, "F", "cross-entropy label smoothing (default 0.1)", &o.seen_ls},
        {"val-split", CLI_DOUBLE, &o.val_split, "F", "hold out this fraction of the training set; best then by val accuracy", &o.seen_val},
        {"seed", CLI_INT, &o.seed, "N", "seed of initialisation, order and augmentation (default 0)", &o.seen_seed},
        {"threads", CLI_INT, &o.threads, "N", "compute threads (default 0: the library's default)", &o.seen_threads},
        {"out", CLI_STRING, &o.out, "DIR", "run folder (default runs/<model>-<date>-<time>)", NULL},
        {"resume", CLI_FLAG, &o.resume, NULL, "continue the run in --out DIR from its last checkpoint", NULL},
        {"stop-after", CLI_INT, &o.stop_after, "N", "stop after epoch N (the schedule still spans --epochs)", NULL},
        {"device", CLI_STRING, &o.device, "NAME", "cpu (default) or cuda", NULL},
        {"amp", CLI_STRING, &o.amp, "MODE", AMP_HELP_TRAIN, NULL},
        {"tf32", CLI_FLAG, &o.tf32, NULL, TF32_HELP, NULL},
        {"log-steps", CLI_STRING, &o.log_steps, "FILE", "write each step's loss to FILE (\"epoch step loss\", hex float)", NULL},
        {"quiet", CLI_FLAG, &o.quiet, NULL, "no progress display: only the per-epoch lines", NULL},
        {"sync-bn", CLI_FLAG, &o.sync_bn, NULL, "under mpirun: BatchNorm batch statistics over all ranks (default: per rank)", &o.seen_sync_bn},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse("train", "[options]", DESCRIPTION, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos,
                       &npos, 0);
    if (rc < 0) return EXIT_OK;
    if (rc) return rc;
    if (o.seen_nesterov && seen_no_nesterov)
        return cli_error(EXIT_USAGE, "train: --nesterov and --no-nesterov contradict each other");
    if (seen_no_nesterov) o.seen_nesterov = true; /* an explicit choice (refused on --resume) */
    if (!o.seen_nesterov) o.nesterov = !strcmp(o.optimizer, "sgd") && o.momentum > 0;
    if (no_nesterov) o.nesterov = false;
    /* --batch is per rank; its default keeps the global batch at 128 under mpirun, so the
     * defaults train the same way (and to the same accuracy) on any number of ranks. */
    int world = ig_dist_world_size(d);
    if (!o.seen_batch && world > 1) o.batch = 128 / world > 0 ? 128 / world : 1;
    if ((rc = check_opts(&o))) return rc;
    ig_amp amp = IG_AMP_OFF;
    if ((rc = parse_amp("train", o.amp, &amp))) return rc;
    ig_device dev = IG_CPU;
    /* The nccl group picks each process's GPU before anything else touches CUDA (the
     * device check below would create the CUDA stream on GPU 0), so it comes first. */
    if (!strcmp(o.device, "cuda") && (rc = pick_backend(d, IG_CUDA, world))) return rc;
    if ((rc = parse_device("train", o.device, &dev)) || (rc = apply_tf32("train", o.tf32, dev))) return rc;
    if (dev == IG_CPU && (rc = pick_backend(d, IG_CPU, world))) return rc;

    trainer t = {.o = &o, .dist = d, .rank = ig_dist_rank(d), .world = ig_dist_world_size(d), .dev = dev, .amp = amp};
    t.lead = t.rank == 0;
    if (amp == IG_AMP_FP16 && !(t.scaler = ig_grad_scaler_new(NULL))) return fail("--amp fp16");
    rc = setup(&t);
    if (!rc) rc = train(&t);
    if (rc && t.world > 1) {
        /* Another rank may be waiting in a collective for this one: end the whole job now
         * (freeing first could wait on a gradient bucket that will never complete). */
        fflush(NULL);
        ig_dist_abort(d, rc);
    }
    trainer_free(&t);
    return rc;
}

int cmd_train(int argc, char **argv) {
    /* One process unless started by mpirun (or another MPI launcher). */
    ig_dist *d = ig_dist_init(NULL, NULL);
    if (!d) return cli_error(EXIT_FAILED, "train: %s", ig_last_error());
    if (ig_dist_world_size(d) > 1) cli_set_rank(ig_dist_rank(d));
    int rc = train_main(d, argc, argv);
    if (rc && ig_dist_world_size(d) > 1) {
        fflush(NULL);
        ig_dist_abort(d, rc); /* a usage error: every rank would stop anyway, but at once */
    }
    ig_dist_finalize(d);
    return rc;
}
