/*
 * tools/checkpoint_impl.h — what a training run is (its configuration and progress), and
 * how `ignis` stores it: checkpoints, the model description, metrics history.
 *
 * A run folder DIR holds (see README, "CLI"):
 *   last.safetensors          the model after the latest finished epoch
 *   best.safetensors          the model of the epoch with the best test (or val) accuracy
 *   optim-eNNNN-XXXXXXXX.safetensors   optimizer state, one file per checkpoint
 *   metrics.csv, curves.png   the history, redrawn each epoch
 * A MODEL file holds only the model's state dict, under torch's names, so torch's
 * load_state_dict(strict=True) takes it unchanged; everything else is text in its
 * __metadata__ (the keys are listed in checkpoint.c). The OPTIMIZER file named by the
 * model file's "optimizer_state" holds the ig_optim_state_* tensors and the scheduler step.
 *
 * Crash safety comes from the order of writes: a new optimizer file under a fresh name,
 * then best (if it improved), then last, each atomically (ig_safetensors_save); only then
 * are optimizer files that neither names deleted. At any moment last is a complete file
 * and the optimizer file it names exists.
 */
#ifndef IGNIS_TOOLS_CHECKPOINT_IMPL_H
#define IGNIS_TOOLS_CHECKPOINT_IMPL_H

#include <ignis.h>

/* Most image channels a checkpoint may declare (mean/std entries). */
#define CKPT_MAX_CHANNELS 64
/* Most classes a checkpoint may declare. */
#define CKPT_MAX_CLASSES 100000

/* One row of the metrics history (one finished epoch). Validation columns are NAN when the
 * run has no validation split. */
typedef struct metrics_row {
    int64_t epoch; /* 1-based */
    double train_loss, train_acc, test_loss, test_acc, val_loss, val_acc, lr, seconds;
} metrics_row;

/* A run: how it was configured and how far it got. Strings are malloc'd (ckpt_run_free). */
typedef struct ckpt_run {
    /* the model and its inputs */
    char *model;           /* a zoo name, or the full text of a model description file */
    int64_t channels, height, width, num_classes;
    char **class_names;    /* num_classes entries */
    double mean[CKPT_MAX_CHANNELS], std[CKPT_MAX_CHANNELS]; /* normalisation, per channel */
    /* the training configuration */
    char *data;            /* dataset folder as given */
    char *optimizer;       /* sgd, adam, adamw, rmsprop */
    char *optimizer_params; /* ig_optim_describe (informative) */
    double lr, momentum, weight_decay, label_smoothing, val_split, warmup;
    bool nesterov;
    char *schedule;        /* const, step, cosine, onecycle */
    char *augment;         /* ig_tf_parse spec, or "none" */
    int64_t epochs, batch, threads;
    uint64_t seed;
    /* data parallel: batch is per process; absent from older checkpoints (1, false) */
    int64_t world_size;    /* processes (MPI ranks) the run trains on */
    bool sync_bn;          /* BatchNorm statistics all-reduced across them */
    /* progress */
    int64_t epoch;         /* epochs finished */
    int64_t step;          /* optimizer steps taken */
    int64_t steps_per_epoch;
    uint64_t rng_seed, rng_offset; /* ig_rng_get_state after the last finished epoch */
    double best_acc;       /* best test (or val) accuracy so far, in [0,1]; -1 if none */
    int64_t best_epoch;
    char *optim_file;      /* basename of the optimizer file of this checkpoint */
    char *best_optim_file; /* basename of the one best.safetensors names ("" if none) */
    metrics_row *history;  /* epoch rows, nhistory == epoch */
    int64_t nhistory;
} ckpt_run;

void ckpt_run_free(ckpt_run *r); /* frees the strings and arrays, not r; NULL is fine */

/* Writes the model file path: m's state dict plus r as metadata. Atomic. */
ig_status ckpt_save_model(const char *path, ig_module *m, const ckpt_run *r);
/* Writes the optimizer file path: o's state, the scheduler step and, with --amp fp16, the
 * loss scaler's scale and growth tracker (scaler NULL otherwise). Atomic. */
ig_status ckpt_save_optim(const char *path, ig_optimizer *o, int64_t sched_step, const ig_grad_scaler *scaler);

/* Reads a model file: validates the file, its metadata (every field present and well
 * formed) and its tensors against the model the metadata describes (built here, fresh
 * from r->seed, then loaded strictly). On success fills *r and *model (the caller frees
 * both). On failure returns the status with ig_last_error() saying what is wrong, in
 * words for a person ("ckpt/last.safetensors: metadata 'epoch' is not an integer ...");
 * *r and *model are left empty. */
ig_status ckpt_load_model(const char *path, ckpt_run *r, ig_module **model);
/* The same for a file image in memory (label names it in messages). */
ig_status ckpt_load_model_memory(const void *buf, size_t len, const char *label, ckpt_run *r,
                                 ig_module **model);
/* Reads an optimizer file into o (whose parameters must already be set up as in the run)
 * and returns the scheduler step in *sched_step. With a scaler, the file's scaler state
 * (if it has one; else the scaler keeps its defaults) is set into it. */
ig_status ckpt_load_optim(const char *path, ig_optimizer *o, int64_t *sched_step, ig_grad_scaler *scaler);

/* Deletes DIR's optimizer files other than keep1/keep2 (basenames; NULL or "" keep
 * nothing) and temporary files left by interrupted writes. Failures are ignored. */
void ckpt_prune(const char *dir, const char *keep1, const char *keep2);

/* The metrics history as CSV text (header + one row per epoch); malloc'd. has_val adds
 * the val_loss and val_acc columns. */
char *metrics_csv(const metrics_row *rows, int64_t n, bool has_val);
/* Parses metrics_csv's output back; returns the row count or -1 (error set). */
int64_t metrics_parse(const char *csv, bool has_val, metrics_row **rows);

/* ---- models (tools/cli_model.c) ------------------------------------------------------- */

/* Resolves the --model argument: a zoo name gives that name, anything else is read as a
 * model description file and gives its text. *desc is malloc'd. */
ig_status model_describe(const char *arg, char **desc);
/* Builds the model a description (model_describe's result) names, for inputs
 * [channels, height, width] and num_classes outputs, with fresh parameters drawn from
 * the default generator. */
ig_module *model_build(const char *desc, int64_t channels, int64_t height, int64_t width,
                       int64_t num_classes);
/* A short name for a description: the zoo name, or "custom". */
const char *model_short_name(const char *desc);

#endif
