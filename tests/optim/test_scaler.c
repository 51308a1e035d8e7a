/*
 * tests/optim/test_scaler.c — ig_grad_scaler (dynamic loss scaling): the loss is scaled,
 * gradients unscaled exactly, a non-finite gradient skips the step (parameters, state and
 * step count untouched) and halves the scale, growth_interval clean steps double it, and
 * every bad argument is refused with a message naming the function.
 */
#include <criterion/criterion.h>
#include <ignis.h>
#include <math.h>
#include <string.h>

/* A leaf [4] f32 parameter with values 1..4 and gradient g (copied). */
static ig_tensor *param_with_grad(const float *g) {
    ig_tensor *p = ig_empty(IG_DIMS(4), IG_F32);
    float *d = ig_tensor_data(p);
    for (int i = 0; i < 4; i++) d[i] = (float)(i + 1);
    ig_set_requires_grad(p, true);
    ig_tensor *gt = ig_empty(IG_DIMS(4), IG_F32);
    memcpy(ig_tensor_data(gt), g, 4 * sizeof(float));
    cr_assert_eq(ig_set_grad(p, gt), IG_OK);
    ig_tensor_free(gt);
    return p;
}

static void set_grad(ig_tensor *p, const float *g) { memcpy(ig_tensor_data(ig_grad(p)), g, 4 * sizeof(float)); }

static double optim_steps(ig_optimizer *o) {
    for (int i = 0; i < ig_optim_state_count(o); i++) {
        const char *name;
        ig_tensor *t;
        ig_optim_state_get(o, i, &name, &t);
        if (!strcmp(name, "step")) return ig_item(t);
    }
    return 0;
}

Test(optim, scaler_defaults_and_scaled_loss) {
    ig_grad_scaler_opts d = ig_grad_scaler_defaults();
    cr_expect_eq(d.init_scale, 65536.0);
    cr_expect_eq(d.growth_factor, 2.0);
    cr_expect_eq(d.backoff_factor, 0.5);
    cr_expect_eq(d.growth_interval, 2000);
    ig_grad_scaler *s = ig_grad_scaler_new(NULL);
    cr_assert_not_null(s);
    cr_expect_eq(ig_grad_scaler_get_scale(s), 65536.0);
    cr_expect(!ig_grad_scaler_skipped(s));
    ig_scope *sc = ig_scope_begin();
    ig_tensor *l = ig_scalar(0.75, IG_F32);
    cr_expect_eq(ig_item(ig_grad_scaler_scale(s, l)), 0.75 * 65536.0);
    ig_scope_end(sc);
    ig_grad_scaler_free(s);
    ig_grad_scaler_free(NULL);
}

Test(optim, scaler_unscaled_gradients_equal_the_plain_ones_and_step) {
    const float plain[4] = {0.5f, -0.25f, 3.0f, 1e-3f};
    float scaled[4];
    for (int i = 0; i < 4; i++) scaled[i] = plain[i] * 1024.0f;
    ig_tensor *p = param_with_grad(scaled), *q = param_with_grad(plain);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.1;
    ig_optimizer *o = ig_optim_sgd(&p, 1, &so), *oq = ig_optim_sgd(&q, 1, &so);
    ig_grad_scaler_opts opts = ig_grad_scaler_defaults();
    opts.init_scale = 1024.0;
    ig_grad_scaler *s = ig_grad_scaler_new(&opts);
    cr_assert_eq(ig_grad_scaler_unscale(s, o), IG_OK);
    const float *g = ig_tensor_data(ig_grad(p));
    for (int i = 0; i < 4; i++) cr_expect_eq(g[i], plain[i]);
    /* a second unscale before the step is refused, as torch */
    cr_expect_eq(ig_grad_scaler_unscale(s, o), IG_ERR_STATE);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_unscale: already unscaled") != NULL, "%s", ig_last_error());
    cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK);
    cr_assert_eq(ig_optim_step(oq), IG_OK);
    cr_expect(!ig_grad_scaler_skipped(s));
    const float *a = ig_tensor_data(p), *b = ig_tensor_data(q);
    for (int i = 0; i < 4; i++) cr_expect_eq(a[i], b[i], "param %d: %g vs %g", i, a[i], b[i]);
    cr_expect_eq(optim_steps(o), 1.0);
    ig_grad_scaler_free(s);
    ig_optim_free(o);
    ig_optim_free(oq);
    ig_tensor_free(p);
    ig_tensor_free(q);
}

Test(optim, scaler_skips_and_halves_on_inf_or_nan) {
    const float good[4] = {1, 2, 3, 4}, inf[4] = {1, INFINITY, 3, 4}, nan[4] = {NAN, 0, 0, 0};
    ig_tensor *p = param_with_grad(good);
    ig_optimizer *o = ig_optim_sgd(&p, 1, NULL);
    ig_grad_scaler *s = ig_grad_scaler_new(NULL);
    cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK);
    cr_expect_eq(optim_steps(o), 1.0);
    float before[4];
    memcpy(before, ig_tensor_data(p), sizeof before);
    const float *bad[2] = {inf, nan};
    for (int k = 0; k < 2; k++) {
        set_grad(p, bad[k]);
        cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK);
        cr_expect(ig_grad_scaler_skipped(s));
        cr_expect_eq(ig_grad_scaler_get_scale(s), 65536.0 / (k == 0 ? 2 : 4));
        cr_expect_eq(memcmp(before, ig_tensor_data(p), sizeof before), 0, "parameters changed on a skipped step");
        cr_expect_eq(optim_steps(o), 1.0, "step count changed on a skipped step");
        cr_expect_eq(ig_grad_scaler_growth_tracker(s), 0);
    }
    set_grad(p, good);
    cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK);
    cr_expect(!ig_grad_scaler_skipped(s));
    cr_expect_eq(optim_steps(o), 2.0);
    ig_grad_scaler_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, scaler_grows_after_interval_clean_steps) {
    const float good[4] = {1, 2, 3, 4};
    ig_tensor *p = param_with_grad(good);
    ig_optimizer *o = ig_optim_sgd(&p, 1, NULL);
    ig_grad_scaler_opts opts = ig_grad_scaler_defaults();
    opts.growth_interval = 3;
    opts.init_scale = 8.0;
    ig_grad_scaler *s = ig_grad_scaler_new(&opts);
    for (int i = 1; i <= 7; i++) {
        set_grad(p, good);
        cr_assert_eq(ig_grad_scaler_step(s, o), IG_OK);
        double want = i < 3 ? 8.0 : i < 6 ? 16.0 : 32.0;
        cr_expect_eq(ig_grad_scaler_get_scale(s), want, "after step %d: %g", i, ig_grad_scaler_get_scale(s));
        cr_expect_eq(ig_grad_scaler_growth_tracker(s), i % 3);
    }
    cr_assert_eq(ig_grad_scaler_set_state(s, 4.0, 2), IG_OK);
    set_grad(p, good);
    ig_grad_scaler_step(s, o);
    cr_expect_eq(ig_grad_scaler_get_scale(s), 8.0);
    ig_grad_scaler_free(s);
    ig_optim_free(o);
    ig_tensor_free(p);
}

Test(optim, scaler_errors_name_the_function_and_option) {
    struct {
        ig_grad_scaler_opts o;
        const char *msg;
    } bad[] = {
        {{0, 2, 0.5, 10}, "ig_grad_scaler_new: init_scale"},
        {{INFINITY, 2, 0.5, 10}, "ig_grad_scaler_new: init_scale"},
        {{1, 1, 0.5, 10}, "ig_grad_scaler_new: growth_factor"},
        {{1, 2, 1, 10}, "ig_grad_scaler_new: backoff_factor"},
        {{1, 2, 0, 10}, "ig_grad_scaler_new: backoff_factor"},
        {{1, 2, 0.5, 0}, "ig_grad_scaler_new: growth_interval"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_null(ig_grad_scaler_new(&bad[i].o));
        cr_expect_eq(ig_last_status(), IG_ERR_ARG);
        cr_expect(strstr(ig_last_error(), bad[i].msg) != NULL, "case %zu: %s", i, ig_last_error());
    }
    ig_grad_scaler *s = ig_grad_scaler_new(NULL);
    const float good[4] = {1, 2, 3, 4};
    ig_tensor *p = param_with_grad(good);
    ig_optimizer *o = ig_optim_sgd(&p, 1, NULL), *o2 = ig_optim_sgd(&p, 1, NULL);
    ig_clear_error();
    cr_expect_null(ig_grad_scaler_scale(s, NULL));
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_scale") != NULL, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_null(ig_grad_scaler_scale(NULL, p));
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_scale") != NULL, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_eq(ig_grad_scaler_unscale(s, NULL), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_unscale") != NULL, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_eq(ig_grad_scaler_step(NULL, o), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_step") != NULL, "%s", ig_last_error());
    cr_assert_eq(ig_grad_scaler_unscale(s, o), IG_OK);
    cr_expect_eq(ig_grad_scaler_step(s, o2), IG_ERR_STATE);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_step: the gradients were unscaled for another optimizer") != NULL,
              "%s", ig_last_error());
    cr_expect_eq(ig_grad_scaler_set_state(s, -1, 0), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_set_state: scale") != NULL, "%s", ig_last_error());
    cr_expect_eq(ig_grad_scaler_set_state(s, 2, 2000), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_set_state: growth_tracker") != NULL, "%s", ig_last_error());
    ig_clear_error();
    cr_expect_eq(ig_grad_scaler_set_state(NULL, 2, 0), IG_ERR_ARG);
    cr_expect(strstr(ig_last_error(), "ig_grad_scaler_set_state") != NULL, "%s", ig_last_error());
    cr_expect(isnan(ig_grad_scaler_get_scale(NULL)));
    ig_grad_scaler_free(s);
    ig_optim_free(o);
    ig_optim_free(o2);
    ig_tensor_free(p);
}
