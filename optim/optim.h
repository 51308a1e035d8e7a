/*
 * optim/optim.h — optimizers, learning-rate schedules and gradient clipping.
 *
 * An optimizer updates a set of parameter tensors from their .grad, each step one fused
 * loop per tensor. Give it a model's flat parameter tensor (ig_module_flat_params; its grad
 * is the flat gradient buffer) and a step is one loop over two large buffers; any list of
 * leaf tensors with gradients works too. Update rules are PyTorch's (torch.optim), including
 * weight decay, dampening, Nesterov, Adam's bias correction and AdamW's decoupled decay.
 * A parameter whose grad is NULL is skipped, as in torch.
 *
 * State (momentum buffers, moments, step counts) can be exported and restored as named
 * tensors for checkpoints: names are stable ("0.momentum_buffer", "0.exp_avg", "step").
 */
#ifndef IGNIS_OPTIM_OPTIM_H
#define IGNIS_OPTIM_OPTIM_H

#include "../core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_optimizer ig_optimizer;
typedef struct ig_scheduler ig_scheduler;

/* Options: start from the _defaults() function (torch's defaults), then change fields. */
typedef struct ig_sgd_opts {
    double lr;           /* default 0.01 */
    double momentum;     /* default 0 */
    double dampening;    /* default 0 */
    double weight_decay; /* default 0 (L2, added to the gradient) */
    bool nesterov;       /* default false; needs momentum > 0 and dampening 0 */
} ig_sgd_opts;

typedef struct ig_adam_opts {
    double lr;           /* default 1e-3 */
    double beta1, beta2; /* default 0.9, 0.999 */
    double eps;          /* default 1e-8 */
    double weight_decay; /* default 0 for Adam (L2), 1e-2 for AdamW (decoupled) */
    bool amsgrad;        /* default false */
} ig_adam_opts;

typedef struct ig_rmsprop_opts {
    double lr;           /* default 1e-2 */
    double alpha;        /* default 0.99 */
    double eps;          /* default 1e-8 */
    double weight_decay; /* default 0 */
    double momentum;     /* default 0 */
    bool centered;       /* default false */
} ig_rmsprop_opts;

IG_API ig_sgd_opts ig_sgd_defaults(void);
IG_API ig_adam_opts ig_adam_defaults(void);
IG_API ig_adam_opts ig_adamw_defaults(void);
IG_API ig_rmsprop_opts ig_rmsprop_defaults(void);

/* Parameters must be contiguous CPU float leaves that require grad; the optimizer keeps a
 * reference to each (ig_tensor_retain) and frees it in ig_optim_free (a scoped parameter
 * must outlive the optimizer). o may be NULL for the defaults. Bad options (negative lr,
 * nesterov without momentum, betas outside [0,1)) are errors. */
IG_API ig_optimizer *ig_optim_sgd(ig_tensor *const *params, int n, const ig_sgd_opts *o);
IG_API ig_optimizer *ig_optim_adam(ig_tensor *const *params, int n, const ig_adam_opts *o);
IG_API ig_optimizer *ig_optim_adamw(ig_tensor *const *params, int n, const ig_adam_opts *o);
IG_API ig_optimizer *ig_optim_rmsprop(ig_tensor *const *params, int n, const ig_rmsprop_opts *o);
IG_API void ig_optim_free(ig_optimizer *o);

/* One update of every parameter (no autograd is recorded). */
IG_API ig_status ig_optim_step(ig_optimizer *o);
/* Zeroes the gradients of every parameter. */
IG_API void ig_optim_zero_grad(ig_optimizer *o);
IG_API double ig_optim_get_lr(const ig_optimizer *o);
IG_API void ig_optim_set_lr(ig_optimizer *o, double lr);
/* "sgd", "adam", "adamw", "rmsprop". */
IG_API const char *ig_optim_name(const ig_optimizer *o);
/* The hyper-parameters as "lr=0.1 momentum=0.9 ..." for logs and checkpoint metadata. */
IG_API ig_status ig_optim_describe(const ig_optimizer *o, char *buf, size_t cap);

/* Named state: entries are created by the first step (before it the count may be 0).
 * get returns the optimizer's own tensors (not copies); set copies t into the named entry
 * (creating it if the optimizer has not stepped yet), checking shape and dtype.
 * Entries: "step" (0-dim f64, ig_optim_step calls), then per parameter i as torch names
 * them: "i.momentum_buffer" (sgd with momentum); "i.step" (0-dim f64, that parameter's own
 * count), "i.exp_avg", "i.exp_avg_sq", "i.max_exp_avg_sq" (amsgrad) for adam/adamw;
 * "i.step", "i.square_avg", "i.momentum_buffer" (momentum > 0), "i.grad_avg" (centered)
 * for rmsprop. A step entry may be set from any one-element tensor holding a whole number. */
IG_API int ig_optim_state_count(const ig_optimizer *o);
IG_API ig_status ig_optim_state_get(const ig_optimizer *o, int i, const char **name, ig_tensor **t);
IG_API ig_status ig_optim_state_set(ig_optimizer *o, const char *name, const ig_tensor *t);

/* ---- gradient clipping ----------------------------------------------------------------- */

/* Scales all gradients so their joint norm (norm_type 2, or INFINITY) is at most max_norm,
 * as torch.nn.utils.clip_grad_norm_ (scale = max_norm / (norm + 1e-6) when above). Returns
 * the norm before clipping, or a negative value with an error. */
IG_API double ig_clip_grad_norm(ig_tensor *const *params, int n, double max_norm, double norm_type);
/* Clamps every gradient element to [-clip, clip]. */
IG_API ig_status ig_clip_grad_value(ig_tensor *const *params, int n, double clip);

/* ---- dynamic loss scaling (fp16 mixed precision) ------------------------------------------ */
/* torch.cuda.amp.GradScaler's semantics. Per step: backward from ig_grad_scaler_scale(s,
 * loss) (the loss times the current scale, so small fp16 gradients do not flush to zero);
 * optionally ig_grad_scaler_unscale (e.g. before clipping); then ig_grad_scaler_step, which
 * unscales the gradients if not done yet (g *= 1/scale, in place), checks them all for inf
 * and NaN in the same pass, and then either skips the optimizer step and multiplies the
 * scale by backoff_factor (any non-finite gradient), or steps and, after growth_interval
 * consecutive clean steps, multiplies the scale by growth_factor. A skipped step leaves
 * parameters, optimizer state and its step count untouched. Gradients on the CPU (any
 * strides, f32 or f64) or on a device (contiguous f32: one fused kernel per tensor and one
 * small read back of the flag). */
typedef struct ig_grad_scaler ig_grad_scaler;

typedef struct ig_grad_scaler_opts {
    double init_scale;       /* default 65536 (2^16); finite, > 0 */
    double growth_factor;    /* default 2; > 1 */
    double backoff_factor;   /* default 0.5; in (0, 1) */
    int64_t growth_interval; /* default 2000; >= 1 */
} ig_grad_scaler_opts;

IG_API ig_grad_scaler_opts ig_grad_scaler_defaults(void);
/* o may be NULL for the defaults. NULL + IG_ERR_ARG naming the bad option. */
IG_API ig_grad_scaler *ig_grad_scaler_new(const ig_grad_scaler_opts *o);
IG_API void ig_grad_scaler_free(ig_grad_scaler *s);
/* loss * scale, recorded for autograd like ig_mul_scalar (NULL + error on a NULL argument). */
IG_API ig_tensor *ig_grad_scaler_scale(ig_grad_scaler *s, ig_tensor *loss);
/* Divides o's gradients by the scale and records whether any is inf or NaN. At most once
 * between two steps (IG_ERR_STATE otherwise, as torch). */
IG_API ig_status ig_grad_scaler_unscale(ig_grad_scaler *s, ig_optimizer *o);
/* Unscales (unless done), then steps o or skips, and updates the scale (see above). */
IG_API ig_status ig_grad_scaler_step(ig_grad_scaler *s, ig_optimizer *o);
/* The current scale (NAN for NULL). */
IG_API double ig_grad_scaler_get_scale(const ig_grad_scaler *s);
/* True when the last ig_grad_scaler_step skipped the optimizer step. */
IG_API bool ig_grad_scaler_skipped(const ig_grad_scaler *s);
/* Clean steps since the scale last changed (torch's _growth_tracker), for checkpoints. */
IG_API int64_t ig_grad_scaler_growth_tracker(const ig_grad_scaler *s);
/* Restores a checkpointed state: scale finite and > 0, 0 <= growth_tracker < interval. */
IG_API ig_status ig_grad_scaler_set_state(ig_grad_scaler *s, double scale, int64_t growth_tracker);

/* ---- learning-rate schedules --------------------------------------------------------------- */
/* A schedule drives an optimizer's lr. Like torch's, constructing one sets lr for step 0;
 * each ig_sched_step advances one step (call it after ig_optim_step) and sets the new lr.
 * The base lr is the optimizer's lr when the schedule is made. A schedule points to its
 * optimizer without owning it: free the schedule first. */

IG_API ig_scheduler *ig_sched_step_lr(ig_optimizer *o, int64_t step_size, double gamma);
IG_API ig_scheduler *ig_sched_multistep_lr(ig_optimizer *o, const int64_t *milestones, int n, double gamma);
IG_API ig_scheduler *ig_sched_exponential_lr(ig_optimizer *o, double gamma);
/* Cosine annealing from base lr to eta_min over t_max steps (torch's closed form). */
IG_API ig_scheduler *ig_sched_cosine_lr(ig_optimizer *o, int64_t t_max, double eta_min);
/* SGDR: restarts after t_0 steps, each period t_mult times longer (t_mult >= 1). */
IG_API ig_scheduler *ig_sched_cosine_restarts_lr(ig_optimizer *o, int64_t t_0, int64_t t_mult, double eta_min);
/* torch.optim.lr_scheduler.OneCycleLR with cosine annealing: from max_lr/div_factor up to
 * max_lr over pct_start of total_steps, then down to max_lr/(div_factor*final_div_factor).
 * Pass 0 for pct_start/div_factor/final_div_factor to get torch's 0.3, 25, 1e4. The
 * optimizer's lr is not used (as torch); momentum is not cycled. Stepping past total_steps
 * is an error, as in torch. */
IG_API ig_scheduler *ig_sched_onecycle_lr(ig_optimizer *o, double max_lr, int64_t total_steps,
                                       double pct_start, double div_factor, double final_div_factor);
/* Linear warmup composed with another schedule (inner may be NULL: constant lr): for the
 * first warmup_steps steps lr is inner's lr times a factor rising linearly from
 * start_factor to 1 (torch's LinearLR chained with inner). Takes ownership of inner. */
IG_API ig_scheduler *ig_sched_warmup_lr(ig_optimizer *o, ig_scheduler *inner, int64_t warmup_steps,
                                     double start_factor); /* inner is freed on failure too */
IG_API ig_status ig_sched_step(ig_scheduler *s);
IG_API double ig_sched_get_lr(const ig_scheduler *s);
IG_API int64_t ig_sched_last_step(const ig_scheduler *s);
/* For resume: jump to step (lr set accordingly). */
IG_API ig_status ig_sched_set_step(ig_scheduler *s, int64_t step);
IG_API void ig_sched_free(ig_scheduler *s);

#ifdef __cplusplus
}
#endif

#endif
