/*
 * tests/optim/test_sched.c — learning-rate schedules: each schedule's lr over its first
 * steps against torch's closed forms written out here, checked both through the schedule
 * and on the optimizer it drives; warmup edges; OneCycle's first, peak and last values;
 * jumping (resume) equal to stepping; and errors.
 */
#include "optim_test_util.h"

#define PI 3.14159265358979323846
#define STEPS 20
#define BASE 0.1

typedef double (*closed_form)(int64_t t, const void *ctx);

/* A heap parameter and an SGD optimizer with lr BASE. */
static ig_optimizer *make_opt(ig_tensor **p) {
    *p = tu_param((double[]){1.0}, 1, IG_F64);
    ig_optimizer *o = ig_optim_sgd(p, 1, &(ig_sgd_opts){.lr = BASE});
    cr_assert(o);
    return o;
}

/* Checks lr(0..steps) on the schedule and the optimizer against want(). */
static void expect_sequence(ig_scheduler *s, ig_optimizer *o, int steps, closed_form want, const void *ctx) {
    cr_assert(s, "%s", ig_last_error());
    for (int64_t t = 0; t <= steps; t++) {
        if (t > 0) cr_assert(ig_sched_step(s) == IG_OK, "%s", ig_last_error());
        double w = want(t, ctx);
        cr_assert_eq(ig_sched_last_step(s), t);
        cr_assert(fabs(ig_sched_get_lr(s) - w) <= 1e-15 + 1e-12 * fabs(w), "t=%lld: got %.17g want %.17g",
                  (long long)t, ig_sched_get_lr(s), w);
        cr_assert_eq(ig_optim_get_lr(o), ig_sched_get_lr(s), "t=%lld", (long long)t);
    }
}

/* ---- closed forms ---- */

static double f_step(int64_t t, const void *ctx) {
    (void)ctx;
    return BASE * pow(0.5, (double)(t / 3)); /* step_size 3, gamma 0.5 */
}

static double f_multistep(int64_t t, const void *ctx) {
    (void)ctx;
    /* milestones {8, 3, 12, 12}: one decay at 3 and 8, two at 12 (counted twice, as torch). */
    int k = (t >= 3) + (t >= 8) + 2 * (t >= 12);
    return BASE * pow(0.1, k);
}

static double f_exponential(int64_t t, const void *ctx) {
    (void)ctx;
    return BASE * pow(0.9, (double)t);
}

static double f_cosine(int64_t t, const void *ctx) {
    (void)ctx;
    const double eta = 0.001;
    return eta + (BASE - eta) * (1.0 + cos(PI * (double)t / 10.0)) / 2.0;
}

static double f_restarts_mult2(int64_t t, const void *ctx) {
    (void)ctx;
    /* t_0 = 3, t_mult = 2: periods [0,3), [3,9), [9,21). */
    double cur, len;
    if (t < 3) cur = (double)t, len = 3;
    else if (t < 9) cur = (double)(t - 3), len = 6;
    else cur = (double)(t - 9), len = 12;
    return 0.01 + (BASE - 0.01) * (1.0 + cos(PI * cur / len)) / 2.0;
}

static double f_restarts_mult1(int64_t t, const void *ctx) {
    (void)ctx;
    return (BASE) * (1.0 + cos(PI * (double)(t % 4) / 4.0)) / 2.0;
}

static double f_onecycle(int64_t t, const void *ctx) {
    (void)ctx;
    /* max_lr 1, total 20, pct 0.3, div 25, final_div 1e4: rising phase ends at step 5,
     * falling at 19. anneal(start, end, pct) = end + (start - end)/2 * (cos(pi*pct) + 1). */
    const double init = 1.0 / 25.0, peak = 1.0, low = init / 1e4;
    if (t <= 5) return peak + (init - peak) / 2.0 * (cos(PI * (double)t / 5.0) + 1.0);
    return low + (peak - low) / 2.0 * (cos(PI * (double)(t - 5) / 14.0) + 1.0);
}

static double f_warmup_const(int64_t t, const void *ctx) {
    (void)ctx;
    double factor = t < 5 ? 0.25 + 0.75 * (double)t / 5.0 : 1.0;
    return BASE * factor;
}

static double f_warmup_cosine(int64_t t, const void *ctx) {
    (void)ctx;
    double factor = t < 4 ? 0.1 + 0.9 * (double)t / 4.0 : 1.0;
    return (BASE * (1.0 + cos(PI * (double)t / 16.0)) / 2.0) * factor;
}

/* ---- tests ---- */

Test(optim, sched_step_lr) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *s = ig_sched_step_lr(o, 3, 0.5);
    expect_sequence(s, o, STEPS, f_step, NULL);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
    assert_no_live_bytes();
}

Test(optim, sched_multistep_lr) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    int64_t ms[4] = {8, 3, 12, 12};
    ig_scheduler *s = ig_sched_multistep_lr(o, ms, 4, 0.1);
    expect_sequence(s, o, STEPS, f_multistep, NULL);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_exponential_lr) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *s = ig_sched_exponential_lr(o, 0.9);
    expect_sequence(s, o, STEPS, f_exponential, NULL);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_cosine_lr) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *s = ig_sched_cosine_lr(o, 10, 0.001);
    /* 20 steps with t_max 10: down to eta_min at 10 and (closed form) back up to base at 20. */
    expect_sequence(s, o, STEPS, f_cosine, NULL);
    cr_assert_float_eq(ig_sched_get_lr(s), BASE, 1e-15);
    ig_sched_set_step(s, 10);
    cr_assert_float_eq(ig_optim_get_lr(o), 0.001, 1e-15);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_cosine_restarts_lr) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *s = ig_sched_cosine_restarts_lr(o, 3, 2, 0.01);
    expect_sequence(s, o, STEPS, f_restarts_mult2, NULL);
    ig_sched_free(s);
    /* Restarts land back on base lr exactly at 3 and 9. A new schedule's base is the
     * optimizer's lr when it is made, so put it back first. */
    ig_optim_set_lr(o, BASE);
    s = ig_sched_cosine_restarts_lr(o, 3, 2, 0.01);
    ig_sched_set_step(s, 9);
    cr_assert_float_eq(ig_sched_get_lr(s), BASE, 1e-15);
    ig_sched_free(s);
    ig_optim_set_lr(o, BASE);
    s = ig_sched_cosine_restarts_lr(o, 4, 1, 0.0);
    expect_sequence(s, o, STEPS, f_restarts_mult1, NULL);
    /* A far step with t_mult 3 does not overflow and stays in [eta_min, base]. */
    ig_sched_free(s);
    s = ig_sched_cosine_restarts_lr(o, 1, 3, 0.0);
    cr_assert(ig_sched_set_step(s, INT64_MAX / 2) == IG_OK);
    cr_assert(ig_sched_get_lr(s) >= 0.0 && ig_sched_get_lr(s) <= BASE);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_onecycle_lr) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *s = ig_sched_onecycle_lr(o, 1.0, 20, 0, 0, 0);
    cr_assert(s, "%s", ig_last_error());
    /* The optimizer's own lr (0.1) is replaced by max_lr/div_factor. */
    cr_assert_float_eq(ig_optim_get_lr(o), 1.0 / 25.0, 1e-15);
    ig_sched_free(s);
    s = ig_sched_onecycle_lr(o, 1.0, 20, 0, 0, 0);
    expect_sequence(s, o, 19, f_onecycle, NULL);
    /* First, peak (pct*total - 1 = 5) and last (total - 1) values. */
    ig_sched_set_step(s, 0);
    cr_assert_float_eq(ig_sched_get_lr(s), 1.0 / 25.0, 1e-15);
    ig_sched_set_step(s, 5);
    cr_assert_float_eq(ig_sched_get_lr(s), 1.0, 1e-15);
    ig_sched_set_step(s, 19);
    cr_assert_float_eq(ig_sched_get_lr(s), 1.0 / 25.0 / 1e4, 1e-18);
    /* torch allows stepping to total_steps, not beyond. */
    cr_assert(ig_sched_step(s) == IG_OK);
    cr_assert_eq(ig_sched_last_step(s), 20);
    ig_clear_error();
    cr_assert(ig_sched_step(s) == IG_ERR_STATE);
    tu_expect_error("ig_sched_step");
    cr_assert_eq(ig_sched_last_step(s), 20);
    cr_assert(ig_sched_set_step(s, 21) == IG_ERR_ARG);
    tu_expect_error("ig_sched_set_step");
    ig_sched_free(s);
    /* Explicit pct/div/final_div. */
    s = ig_sched_onecycle_lr(o, 0.5, 10, 0.5, 10, 100);
    cr_assert_float_eq(ig_sched_get_lr(s), 0.05, 1e-15);
    ig_sched_set_step(s, 4);
    cr_assert_float_eq(ig_sched_get_lr(s), 0.5, 1e-15);
    ig_sched_set_step(s, 9);
    cr_assert_float_eq(ig_sched_get_lr(s), 0.05 / 100, 1e-15);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_warmup_constant) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *s = ig_sched_warmup_lr(o, NULL, 5, 0.25);
    expect_sequence(s, o, STEPS, f_warmup_const, NULL);
    ig_sched_set_step(s, 0);
    cr_assert_float_eq(ig_optim_get_lr(o), BASE * 0.25, 1e-16);
    ig_sched_set_step(s, 5);
    cr_assert_float_eq(ig_optim_get_lr(o), BASE, 1e-16);
    ig_sched_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_warmup_composed_with_cosine) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *inner = ig_sched_cosine_lr(o, 16, 0.0);
    ig_scheduler *s = ig_sched_warmup_lr(o, inner, 4, 0.1);
    expect_sequence(s, o, STEPS, f_warmup_cosine, NULL);
    /* The inner schedule advances with the outer one. */
    cr_assert_eq(ig_sched_last_step(inner), STEPS);
    ig_sched_free(s); /* frees inner too */
    ig_optim_free(o);
    ig_tensor_free(p);
    assert_no_live_bytes();
}

Test(optim, sched_set_step_equals_stepping) {
    ig_tensor *p;
    ig_optimizer *o = make_opt(&p);
    ig_scheduler *a = ig_sched_warmup_lr(o, ig_sched_step_lr(o, 4, 0.3), 3, 0.5);
    for (int i = 0; i < 11; i++) ig_sched_step(a);
    double stepped = ig_sched_get_lr(a);
    ig_optim_set_lr(o, BASE); /* b's base is the optimizer's lr when b is made */
    ig_scheduler *b = ig_sched_warmup_lr(o, ig_sched_step_lr(o, 4, 0.3), 3, 0.5);
    cr_assert(ig_sched_set_step(b, 11) == IG_OK);
    cr_assert_eq(ig_sched_get_lr(b), stepped);
    cr_assert_eq(ig_optim_get_lr(o), stepped);
    cr_assert_eq(ig_sched_last_step(b), 11);
    cr_assert_float_eq(stepped, BASE * 0.3 * 0.3, 1e-16);
    ig_sched_free(a);
    ig_sched_free(b);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, sched_errors) {
    ig_tensor *p, *p2;
    ig_optimizer *o = make_opt(&p), *o2 = make_opt(&p2);
    ig_clear_error();
    cr_assert_null(ig_sched_step_lr(NULL, 3, 0.5));
    tu_expect_error("ig_sched_step_lr");
    cr_assert_null(ig_sched_step_lr(o, 0, 0.5));
    tu_expect_error("ig_sched_step_lr");
    cr_assert_null(ig_sched_step_lr(o, 3, -0.5));
    tu_expect_error("ig_sched_step_lr");
    cr_assert_null(ig_sched_multistep_lr(o, (int64_t[]){2, -1}, 2, 0.1));
    tu_expect_error("ig_sched_multistep_lr");
    ig_clear_error();
    cr_assert_null(ig_sched_multistep_lr(o, NULL, 2, 0.1));
    tu_expect_error("ig_sched_multistep_lr");
    cr_assert_null(ig_sched_exponential_lr(o, NAN));
    tu_expect_error("ig_sched_exponential_lr");
    cr_assert_null(ig_sched_cosine_lr(o, 0, 0.0));
    tu_expect_error("ig_sched_cosine_lr");
    cr_assert_null(ig_sched_cosine_lr(o, 10, -1.0));
    tu_expect_error("ig_sched_cosine_lr");
    cr_assert_null(ig_sched_cosine_restarts_lr(o, 0, 1, 0.0));
    tu_expect_error("ig_sched_cosine_restarts_lr");
    cr_assert_null(ig_sched_cosine_restarts_lr(o, 3, 0, 0.0));
    tu_expect_error("ig_sched_cosine_restarts_lr");
    cr_assert_null(ig_sched_onecycle_lr(o, 1.0, 1, 0, 0, 0));
    tu_expect_error("ig_sched_onecycle_lr");
    cr_assert_null(ig_sched_onecycle_lr(o, 1.0, 100, 1.5, 0, 0));
    tu_expect_error("ig_sched_onecycle_lr");
    cr_assert_null(ig_sched_onecycle_lr(o, 1.0, 3, 0.3, 0, 0)); /* rising phase of length < 1 */
    tu_expect_error("ig_sched_onecycle_lr");
    cr_assert_null(ig_sched_onecycle_lr(o, -1.0, 100, 0, 0, 0));
    tu_expect_error("ig_sched_onecycle_lr");
    cr_assert_null(ig_sched_onecycle_lr(o, 1.0, 100, 0, -25, 0));
    tu_expect_error("ig_sched_onecycle_lr");
    /* Warmup takes ownership of inner even when it fails (no leak under the sanitizer). */
    cr_assert_null(ig_sched_warmup_lr(o, ig_sched_step_lr(o, 2, 0.5), 5, 0.0));
    tu_expect_error("ig_sched_warmup_lr");
    cr_assert_null(ig_sched_warmup_lr(o, NULL, 5, 1.5));
    tu_expect_error("ig_sched_warmup_lr");
    cr_assert_null(ig_sched_warmup_lr(o, NULL, -1, 0.5));
    tu_expect_error("ig_sched_warmup_lr");
    cr_assert_null(ig_sched_warmup_lr(o2, ig_sched_step_lr(o, 2, 0.5), 5, 0.5));
    tu_expect_error("ig_sched_warmup_lr");
    cr_assert(strstr(ig_last_error(), "different optimizer"));

    ig_scheduler *s = ig_sched_exponential_lr(o, 0.5);
    cr_assert(ig_sched_set_step(s, -1) == IG_ERR_ARG);
    tu_expect_error("ig_sched_set_step");
    ig_clear_error();
    cr_assert(ig_sched_step(NULL) == IG_ERR_ARG);
    tu_expect_error("ig_sched_step");
    cr_assert(isnan(ig_sched_get_lr(NULL)));
    ig_sched_free(s);
    ig_sched_free(NULL);
    ig_optim_free(o);
    ig_optim_free(o2);
    ig_tensor_free(p);
    ig_tensor_free(p2);
}
