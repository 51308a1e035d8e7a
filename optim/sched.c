/*
 * optim/sched.c — learning-rate schedules: StepLR, MultiStepLR, ExponentialLR,
 * CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR and a linear warmup composed
 * with any of them, as in torch.optim.lr_scheduler.
 *
 * Every schedule is a pure function lr(t) of the step count t (torch's closed forms), so
 * stepping and jumping (ig_sched_set_step, for resume) agree exactly and no error builds up.
 * A schedule keeps a pointer to its optimizer (not a reference): free the schedule before
 * the optimizer. Construction sets the optimizer's lr to lr(0); each step sets lr(t + 1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim_impl.h"

/* M_PI is not part of C11 or POSIX. */
#define IGI_PI 3.14159265358979323846

typedef enum sched_kind {
    SCHED_STEP,
    SCHED_MULTISTEP,
    SCHED_EXPONENTIAL,
    SCHED_COSINE,
    SCHED_COSINE_RESTARTS,
    SCHED_ONECYCLE,
    SCHED_WARMUP
} sched_kind;

struct ig_scheduler {
    sched_kind kind;
    ig_optimizer *opt;     /* driven, not owned */
    double base;           /* the optimizer's lr when the schedule was made */
    int64_t t;             /* steps taken (torch's last_epoch) */
    double lr;             /* lr(t) */
    /* kind-specific parameters */
    int64_t period;        /* step: step_size; cosine: t_max; restarts: t_0; onecycle: total; warmup: steps */
    int64_t mult;          /* restarts: t_mult */
    double gamma;          /* step, multistep, exponential */
    double eta_min;        /* cosine, restarts */
    double start_factor;   /* warmup */
    double lr_initial, lr_max, lr_min, end_up; /* onecycle: phase values; end of the rising phase */
    int64_t *milestones;   /* multistep: sorted copy */
    int n_milestones;
    ig_scheduler *inner;   /* warmup: owned, may be NULL */
};

/* torch's _annealing_cos: from start (pct 0) to end (pct 1) along half a cosine. */
static double anneal_cos(double start, double end, double pct) {
    return end + (start - end) / 2.0 * (cos(IGI_PI * pct) + 1.0);
}

static double sched_lr_at(const ig_scheduler *s, int64_t t) {
    switch (s->kind) {
    case SCHED_STEP: return s->base * pow(s->gamma, (double)(t / s->period));
    case SCHED_MULTISTEP: {
        /* bisect_right: milestones <= t (repeated milestones count repeatedly, as torch). */
        int k = 0;
        while (k < s->n_milestones && s->milestones[k] <= t) k++;
        return s->base * pow(s->gamma, (double)k);
    }
    case SCHED_EXPONENTIAL: return s->base * pow(s->gamma, (double)t);
    case SCHED_COSINE:
        return s->eta_min + (s->base - s->eta_min) * (1.0 + cos(IGI_PI * (double)t / (double)s->period)) / 2.0;
    case SCHED_COSINE_RESTARTS: {
        /* Find the period t falls in: lengths t_0, t_0*t_mult, t_0*t_mult^2, ... */
        int64_t cur = t, len = s->period;
        double len_d = (double)len;
        if (s->mult == 1) {
            cur = t % len;
        } else {
            while (cur >= len) {
                cur -= len;
                if (len > INT64_MAX / s->mult) { /* the next period is longer than any int64 t */
                    len_d = (double)len * (double)s->mult;
                    break;
                }
                len *= s->mult;
                len_d = (double)len;
            }
        }
        return s->eta_min + (s->base - s->eta_min) * (1.0 + cos(IGI_PI * (double)cur / len_d)) / 2.0;
    }
    case SCHED_ONECYCLE: {
        /* torch: phase 1 ends at pct*total - 1 (initial -> max), phase 2 at total - 1
         * (max -> min); pct within a phase is (t - start) / (end - start). */
        double td = (double)t, end_down = (double)(s->period - 1);
        if (td <= s->end_up) return anneal_cos(s->lr_initial, s->lr_max, td / s->end_up);
        return anneal_cos(s->lr_max, s->lr_min, (td - s->end_up) / (end_down - s->end_up));
    }
    case SCHED_WARMUP: {
        double inner = s->inner ? sched_lr_at(s->inner, t) : s->base;
        if (s->period == 0 || t >= s->period) return inner;
        double factor = s->start_factor + (1.0 - s->start_factor) * (double)t / (double)s->period;
        return inner * factor;
    }
    }
    return s->base;
}

/* Moves s (and its inner schedule) to step t and sets the optimizer's lr. */
static void sched_goto(ig_scheduler *s, int64_t t) {
    for (ig_scheduler *x = s; x; x = x->inner) {
        x->t = t;
        x->lr = sched_lr_at(x, t);
    }
    ig_optim_set_lr(s->opt, s->lr);
}

static ig_scheduler *sched_new(const char *op, ig_optimizer *o, sched_kind kind) {
    if (!o) {
        igi_error_null(op, "o");
        return NULL;
    }
    ig_scheduler *s = calloc(1, sizeof *s);
    if (!s) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    s->kind = kind;
    s->opt = o;
    s->base = o->lr;
    return s;
}

static bool check_gamma(const char *op, double gamma) {
    if (gamma >= 0.0 && isfinite(gamma)) return true;
    igi_error(IG_ERR_ARG, "%s: gamma must be finite and >= 0 (got %g)", op, gamma);
    return false;
}

static bool check_eta_min(const char *op, double eta_min) {
    if (eta_min >= 0.0 && isfinite(eta_min)) return true;
    igi_error(IG_ERR_ARG, "%s: eta_min must be finite and >= 0 (got %g)", op, eta_min);
    return false;
}

static ig_scheduler *sched_start(ig_scheduler *s) {
    sched_goto(s, 0);
    return s;
}

ig_scheduler *ig_sched_step_lr(ig_optimizer *o, int64_t step_size, double gamma) {
    const char *op = "ig_sched_step_lr";
    if (!o) return igi_error_null(op, "o"), NULL;
    if (step_size < 1) return igi_error(IG_ERR_ARG, "%s: step_size must be >= 1 (got %lld)", op, (long long)step_size), NULL;
    if (!check_gamma(op, gamma)) return NULL;
    ig_scheduler *s = sched_new(op, o, SCHED_STEP);
    if (!s) return NULL;
    s->period = step_size;
    s->gamma = gamma;
    return sched_start(s);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

ig_scheduler *ig_sched_multistep_lr(ig_optimizer *o, const int64_t *milestones, int n, double gamma) {
    const char *op = "ig_sched_multistep_lr";
    if (!o) return igi_error_null(op, "o"), NULL;
    if (n < 0) return igi_error(IG_ERR_ARG, "%s: n must be >= 0 (got %d)", op, n), NULL;
    if (n > 0 && !milestones) return igi_error_null(op, "milestones"), NULL;
    for (int i = 0; i < n; i++)
        if (milestones[i] < 0)
            return igi_error(IG_ERR_ARG, "%s: milestones[%d] is negative (%lld)", op, i, (long long)milestones[i]),
                   NULL;
    if (!check_gamma(op, gamma)) return NULL;
    ig_scheduler *s = sched_new(op, o, SCHED_MULTISTEP);
    if (!s) return NULL;
    if (n > 0) {
        s->milestones = malloc((size_t)n * sizeof *s->milestones);
        if (!s->milestones) {
            free(s);
            return igi_error(IG_ERR_NOMEM, "%s: out of memory", op), NULL;
        }
        memcpy(s->milestones, milestones, (size_t)n * sizeof *s->milestones);
        qsort(s->milestones, (size_t)n, sizeof *s->milestones, cmp_i64);
    }
    s->n_milestones = n;
    s->gamma = gamma;
    return sched_start(s);
}

ig_scheduler *ig_sched_exponential_lr(ig_optimizer *o, double gamma) {
    const char *op = "ig_sched_exponential_lr";
    if (!o) return igi_error_null(op, "o"), NULL;
    if (!check_gamma(op, gamma)) return NULL;
    ig_scheduler *s = sched_new(op, o, SCHED_EXPONENTIAL);
    if (!s) return NULL;
    s->gamma = gamma;
    return sched_start(s);
}

ig_scheduler *ig_sched_cosine_lr(ig_optimizer *o, int64_t t_max, double eta_min) {
    const char *op = "ig_sched_cosine_lr";
    if (!o) return igi_error_null(op, "o"), NULL;
    if (t_max < 1) return igi_error(IG_ERR_ARG, "%s: t_max must be >= 1 (got %lld)", op, (long long)t_max), NULL;
    if (!check_eta_min(op, eta_min)) return NULL;
    ig_scheduler *s = sched_new(op, o, SCHED_COSINE);
    if (!s) return NULL;
    s->period = t_max;
    s->eta_min = eta_min;
    return sched_start(s);
}

ig_scheduler *ig_sched_cosine_restarts_lr(ig_optimizer *o, int64_t t_0, int64_t t_mult, double eta_min) {
    const char *op = "ig_sched_cosine_restarts_lr";
    if (!o) return igi_error_null(op, "o"), NULL;
    if (t_0 < 1) return igi_error(IG_ERR_ARG, "%s: t_0 must be >= 1 (got %lld)", op, (long long)t_0), NULL;
    if (t_mult < 1) return igi_error(IG_ERR_ARG, "%s: t_mult must be >= 1 (got %lld)", op, (long long)t_mult), NULL;
    if (!check_eta_min(op, eta_min)) return NULL;
    ig_scheduler *s = sched_new(op, o, SCHED_COSINE_RESTARTS);
    if (!s) return NULL;
    s->period = t_0;
    s->mult = t_mult;
    s->eta_min = eta_min;
    return sched_start(s);
}

ig_scheduler *ig_sched_onecycle_lr(ig_optimizer *o, double max_lr, int64_t total_steps, double pct_start,
                                   double div_factor, double final_div_factor) {
    const char *op = "ig_sched_onecycle_lr";
    if (!o) return igi_error_null(op, "o"), NULL;
    if (pct_start == 0.0) pct_start = 0.3;
    if (div_factor == 0.0) div_factor = 25.0;
    if (final_div_factor == 0.0) final_div_factor = 1e4;
    if (!(max_lr >= 0.0 && isfinite(max_lr)))
        return igi_error(IG_ERR_ARG, "%s: max_lr must be finite and >= 0 (got %g)", op, max_lr), NULL;
    if (total_steps < 2)
        return igi_error(IG_ERR_ARG, "%s: total_steps must be >= 2 (got %lld)", op, (long long)total_steps), NULL;
    if (!(div_factor > 0.0 && isfinite(div_factor)) || !(final_div_factor > 0.0 && isfinite(final_div_factor)))
        return igi_error(IG_ERR_ARG, "%s: div_factor and final_div_factor must be finite and > 0 (got %g, %g)", op,
                         div_factor, final_div_factor),
               NULL;
    /* Both phases must have positive length: 0 < pct*total - 1 < total - 1. */
    double end_up = pct_start * (double)total_steps - 1.0;
    if (!(pct_start > 0.0 && pct_start < 1.0) || !(end_up > 0.0))
        return igi_error(IG_ERR_ARG,
                         "%s: pct_start must be in (0, 1) with pct_start*total_steps > 1 (got %g with %lld steps)",
                         op, pct_start, (long long)total_steps),
               NULL;
    ig_scheduler *s = sched_new(op, o, SCHED_ONECYCLE);
    if (!s) return NULL;
    s->period = total_steps;
    s->lr_initial = max_lr / div_factor;
    s->lr_max = max_lr;
    s->lr_min = s->lr_initial / final_div_factor;
    s->end_up = end_up;
    s->base = s->lr_initial; /* as torch: the optimizer's own lr is replaced */
    return sched_start(s);
}

ig_scheduler *ig_sched_warmup_lr(ig_optimizer *o, ig_scheduler *inner, int64_t warmup_steps, double start_factor) {
    const char *op = "ig_sched_warmup_lr";
    const char *why = NULL;
    if (!o) {
        ig_sched_free(inner);
        return igi_error_null(op, "o"), NULL;
    }
    if (inner && inner->opt != o) why = "inner drives a different optimizer";
    else if (warmup_steps < 0) why = "warmup_steps must be >= 0";
    else if (!(start_factor > 0.0 && start_factor <= 1.0)) why = "start_factor must be in (0, 1]";
    if (why) {
        igi_error(IG_ERR_ARG, "%s: %s (warmup_steps %lld, start_factor %g)", op, why, (long long)warmup_steps,
                  start_factor);
        ig_sched_free(inner);
        return NULL;
    }
    ig_scheduler *s = sched_new(op, o, SCHED_WARMUP);
    if (!s) {
        ig_sched_free(inner);
        return NULL;
    }
    /* With an inner schedule, the base is the inner's (the optimizer's lr now is inner's lr(0)). */
    if (inner) s->base = inner->base;
    s->inner = inner;
    s->period = warmup_steps;
    s->start_factor = start_factor;
    return sched_start(s);
}

/* The last step a schedule can reach (OneCycle stops at total_steps, as torch). */
static int64_t sched_max_step(const ig_scheduler *s) {
    int64_t m = INT64_MAX;
    for (const ig_scheduler *x = s; x; x = x->inner)
        if (x->kind == SCHED_ONECYCLE && x->period < m) m = x->period;
    return m;
}

ig_status ig_sched_step(ig_scheduler *s) {
    if (!s) return igi_error_null("ig_sched_step", "s");
    if (s->t >= sched_max_step(s))
        return igi_error(IG_ERR_STATE, "ig_sched_step: stepped past the schedule's end (step %lld of %lld)",
                         (long long)s->t + 1, (long long)sched_max_step(s));
    sched_goto(s, s->t + 1);
    return IG_OK;
}

double ig_sched_get_lr(const ig_scheduler *s) {
    if (!s) {
        igi_error_null("ig_sched_get_lr", "s");
        return NAN;
    }
    return s->lr;
}

int64_t ig_sched_last_step(const ig_scheduler *s) {
    if (!s) {
        igi_error_null("ig_sched_last_step", "s");
        return -1;
    }
    return s->t;
}

ig_status ig_sched_set_step(ig_scheduler *s, int64_t step) {
    if (!s) return igi_error_null("ig_sched_set_step", "s");
    if (step < 0 || step > sched_max_step(s))
        return igi_error(IG_ERR_ARG, "ig_sched_set_step: step %lld is outside [0, %lld]", (long long)step,
                         (long long)sched_max_step(s));
    sched_goto(s, step);
    return IG_OK;
}

void ig_sched_free(ig_scheduler *s) {
    while (s) {
        ig_scheduler *next = s->inner;
        free(s->milestones);
        free(s);
        s = next;
    }
}
