/*
 * tools/train_impl.h — pieces `ignis train`, `eval` and `predict` share: evaluation over a
 * dataset, the progress display, the curves plot, file helpers.
 */
#ifndef IGNIS_TOOLS_TRAIN_IMPL_H
#define IGNIS_TOOLS_TRAIN_IMPL_H

#include <ignis.h>

#include "checkpoint_impl.h"

/* ---- evaluation (tools/train_util.c) ------------------------------------------------ */

typedef struct eval_result {
    int64_t n;          /* items seen */
    int64_t correct;    /* top-1 hits */
    int64_t top5;       /* top-5 hits */
    double loss_sum;    /* summed cross-entropy (no label smoothing) */
    int64_t *confusion; /* optional [K, K]: row = true class, column = predicted; caller's */
} eval_result;

/* Runs m (in eval mode, without autograd; its mode is restored after) over all of d, each
 * item transformed by tf (may be NULL), in batches of batch. Labels must be < num_classes.
 * Accumulates into r (zero it first; set r->confusion to a zeroed K*K array to get one). */
ig_status evaluate(ig_module *m, ig_dataset *d, const ig_transform *tf, int64_t batch, int64_t num_classes,
                   eval_result *r);

/* Counts the top-1 and top-5 hits of logits [B, K] (contiguous f32) for labels [B]. */
void count_hits(const float *logits, const int64_t *labels, int64_t b, int64_t k, int64_t *top1, int64_t *top5,
                int64_t *predicted);

/* --device NAME for command cmd: "cpu" or "cuda" into *dev; returns 0, or the exit status
 * after printing "ignis: error: CMD: --device ...": EXIT_USAGE for an unknown name,
 * EXIT_FAILED when CUDA is not built or no device is usable (with the reason). */
int parse_device(const char *cmd, const char *name, ig_device *dev);
/* --amp NAME for command cmd: "off", "bf16" or "fp16" into *amp; 0, or EXIT_USAGE after
 * printing "ignis: error: CMD: --amp: unknown ...". */
int parse_amp(const char *cmd, const char *name, ig_amp *amp);
/* --tf32 of command cmd, once the device is known: on turns TF32 on for float32 GEMMs and
 * convolutions on CUDA (ig_cuda_set_tf32); 0, or EXIT_USAGE with "CMD: --tf32 needs
 * --device cuda" when dev is the CPU (it has no TF32 arithmetic). */
int apply_tf32(const char *cmd, bool on, ig_device dev);
#define TF32_HELP                                                                                       \
    "fp32 GEMMs and convolutions on cuda use TF32 tensor cores (operands rounded to 10 mantissa bits, " \
    "fp32 sums: PyTorch's allow_tf32); default off: exact fp32"
/* The help text of --amp (one per command kind: training, or forward only). */
#define AMP_HELP_TRAIN                                                                                  \
    "mixed precision: off (default), bf16 (conv/linear outputs and the activations after them in "     \
    "bf16, fp32 accumulation, fp32 master weights), or fp16 with dynamic loss scaling (GEMM/conv "      \
    "operands in fp16, fp32 accumulation); on cpu: exact but slower, for checking numerics"
#define AMP_HELP_FORWARD                                                                                \
    "mixed precision of the forward pass: off (default), bf16 (bf16 activations) or fp16 (GEMM/conv "  \
    "operands rounded), fp32 accumulation; on cpu: exact but slower, for checking numerics"
/* The device of m's parameters and buffers (the CPU for a module without any). */
ig_device model_device(ig_module *m);
/* t on the CPU (itself when it is there): the scope's copy for reading results. */
ig_tensor *on_host(ig_tensor *t);
/* t on the host as a contiguous f32 tensor (logits are bf16 under bf16 autocast); NULL
 * passes through. */
ig_tensor *host_f32(ig_tensor *t);

/* The normalisation transform of a checkpoint's mean/std. */
ig_transform *normalize_transform(const ckpt_run *r);

/* ---- progress display (tools/train_util.c) -------------------------------------------- */

typedef struct progress {
    bool tty;              /* redraw one line in place (stderr is a terminal) */
    int64_t epoch, epochs; /* 1-based epoch shown */
    int64_t total;         /* batches in the epoch */
    int64_t every;         /* without a terminal: one line per this many batches */
    double t0, last_draw;
} progress;

double now_seconds(void); /* monotonic clock */
void progress_start(progress *p, bool tty, int64_t epoch, int64_t epochs, int64_t total);
/* Whether progress_update(p, done, ...) would draw now: callers whose numbers cost a wait
 * (training on a device) gather them only then. */
bool progress_due(const progress *p, int64_t done);
/* done batches, images seen so far this epoch, running mean loss and accuracy. */
void progress_update(progress *p, int64_t done, int64_t images, double loss, double acc);
void progress_end(progress *p);

/* ---- files ---------------------------------------------------------------------------------- */

/* Writes text to path through path.tmp + fsync + rename. */
ig_status write_file_atomic(const char *path, const char *text);
/* mkdir -p. */
ig_status make_dirs(const char *path);
/* DIR/curves.png: loss and accuracy per epoch (tools/plot.c). Atomic. */
ig_status plot_curves(const char *path, const metrics_row *rows, int64_t n, bool has_val);

#endif
