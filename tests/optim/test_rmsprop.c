/*
 * tests/optim/test_rmsprop.c — RMSprop against torch.optim.RMSprop's update rule written
 * out here in plain C: plain, weight decay, momentum, centered, centered with momentum,
 * f32 and f64; state names and restore; option errors.
 */
#include "optim_test_util.h"

#define N 3
static const double P0[N] = {0.3, -0.7, 1.2};
static const double G[3][N] = {{0.5, -1.0, 0.2}, {0.4, 0.3, -0.6}, {-0.2, 0.9, 0.1}};

typedef struct ref_rms {
    double lr, alpha, eps, wd, mom;
    bool centered;
    double p[N], sq[N], ga[N], buf[N];
} ref_rms;

static void ref_rms_step(ref_rms *r, const double *g) {
    for (int i = 0; i < N; i++) {
        double gi = g[i] + r->wd * r->p[i];
        r->sq[i] = r->alpha * r->sq[i] + (1.0 - r->alpha) * gi * gi;
        double avg;
        if (r->centered) {
            r->ga[i] = r->alpha * r->ga[i] + (1.0 - r->alpha) * gi;
            avg = sqrt(r->sq[i] - r->ga[i] * r->ga[i]) + r->eps;
        } else {
            avg = sqrt(r->sq[i]) + r->eps;
        }
        if (r->mom > 0.0) {
            r->buf[i] = r->mom * r->buf[i] + gi / avg;
            r->p[i] -= r->lr * r->buf[i];
        } else {
            r->p[i] -= r->lr * gi / avg;
        }
    }
}

static ref_rms ref_from(const ig_rmsprop_opts *o) {
    ref_rms r = {o->lr, o->alpha, o->eps, o->weight_decay, o->momentum, o->centered, {0}, {0}, {0}, {0}};
    memcpy(r.p, P0, sizeof r.p);
    return r;
}

static void run_rms_case(ig_rmsprop_opts o, ig_dtype dt, double tol) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, dt);
    ig_optimizer *opt = ig_optim_rmsprop(&p, 1, &o);
    cr_assert(opt, "%s", ig_last_error());
    ref_rms r = ref_from(&o);
    for (int k = 0; k < 3; k++) {
        tu_set_grad(p, G[k], N);
        cr_assert(ig_optim_step(opt) == IG_OK, "%s", ig_last_error());
        ref_rms_step(&r, G[k]);
        tu_expect(p, r.p, N, tol, "param");
        tu_expect(tu_state(opt, "0.square_avg"), r.sq, N, tol, "square_avg");
        if (o.centered) tu_expect(tu_state(opt, "0.grad_avg"), r.ga, N, tol, "grad_avg");
        if (o.momentum > 0) tu_expect(tu_state(opt, "0.momentum_buffer"), r.buf, N, tol, "momentum_buffer");
    }
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, rmsprop_first_step_by_hand) {
    /* sq = 0.01 g^2, so p -= lr * g / (0.1|g| + eps) = p - 10*lr*sign(g) (eps 0). */
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.eps = 0.0;
    ig_optimizer *opt = ig_optim_rmsprop(&p, 1, &o);
    tu_set_grad(p, G[0], N);
    ig_optim_step(opt);
    double want[N] = {0.3 - 0.1, -0.7 + 0.1, 1.2 - 0.1};
    tu_expect(p, want, N, 1e-13, "param");
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, rmsprop_plain_f64_f32) {
    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.lr = 0.01;
    run_rms_case(o, IG_F64, 1e-13);
    run_rms_case(o, IG_F32, 2e-6);
}

Test(optim, rmsprop_weight_decay_momentum) {
    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.lr = 0.01;
    o.alpha = 0.9;
    o.weight_decay = 0.1;
    o.momentum = 0.8;
    run_rms_case(o, IG_F64, 1e-13);
}

Test(optim, rmsprop_centered) {
    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.lr = 0.01;
    o.alpha = 0.8;
    o.centered = true;
    run_rms_case(o, IG_F64, 1e-13);
}

Test(optim, rmsprop_centered_momentum_f64_f32) {
    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.lr = 0.005;
    o.alpha = 0.7;
    o.eps = 1e-3;
    o.centered = true;
    o.momentum = 0.9;
    o.weight_decay = 0.02;
    run_rms_case(o, IG_F64, 1e-13);
    run_rms_case(o, IG_F32, 1e-5);
}

Test(optim, rmsprop_state_and_restore) {
    ig_scope *s = ig_scope_begin();
    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.lr = 0.01;
    o.centered = true;
    o.momentum = 0.5;
    ig_tensor *a = tu_param(P0, N, IG_F64);
    ig_optimizer *oa = ig_optim_rmsprop(&a, 1, &o);
    ref_rms r = ref_from(&o);
    for (int k = 0; k < 2; k++) {
        tu_set_grad(a, G[k], N);
        ig_optim_step(oa);
        ref_rms_step(&r, G[k]);
    }
    const char *names[] = {"step", "0.step", "0.square_avg", "0.momentum_buffer", "0.grad_avg"};
    cr_assert_eq(ig_optim_state_count(oa), 5);
    for (int i = 0; i < 5; i++) {
        const char *nm;
        ig_tensor *t;
        cr_assert(ig_optim_state_get(oa, i, &nm, &t) == IG_OK);
        cr_assert_str_eq(nm, names[i]);
    }
    tu_expect(tu_state(oa, "0.square_avg"), r.sq, N, 1e-14, "square_avg");
    tu_expect(tu_state(oa, "0.grad_avg"), r.ga, N, 1e-14, "grad_avg");
    tu_expect(tu_state(oa, "0.momentum_buffer"), r.buf, N, 1e-14, "buf");

    ig_tensor *b = tu_param(r.p, N, IG_F64);
    ig_optimizer *ob = ig_optim_rmsprop(&b, 1, &o);
    for (int i = 0; i < 5; i++)
        cr_assert(ig_optim_state_set(ob, names[i], tu_state(oa, names[i])) == IG_OK, "%s", ig_last_error());
    tu_set_grad(a, G[2], N);
    tu_set_grad(b, G[2], N);
    ig_optim_step(oa);
    ig_optim_step(ob);
    for (int i = 0; i < N; i++) cr_assert_eq(ig_tensor_get(a, i), ig_tensor_get(b, i));
    ig_optim_free(oa);
    ig_optim_free(ob);
    ig_tensor_free(a);
    ig_tensor_free(b);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, rmsprop_describe_and_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F32);
    ig_optimizer *opt = ig_optim_rmsprop(&p, 1, NULL);
    cr_assert_str_eq(ig_optim_name(opt), "rmsprop");
    char buf[256];
    cr_assert(ig_optim_describe(opt, buf, sizeof buf) == IG_OK);
    cr_assert_str_eq(buf, "lr=0.01 alpha=0.99 eps=1e-08 weight_decay=0 momentum=0 centered=false");
    /* Without momentum / centering those entries do not exist. */
    cr_assert(ig_optim_state_set(opt, "0.grad_avg", p) == IG_ERR_ARG);
    tu_expect_error("ig_optim_state_set");
    ig_optim_free(opt);

    ig_rmsprop_opts o = ig_rmsprop_defaults();
    o.alpha = -0.1;
    cr_assert_null(ig_optim_rmsprop(&p, 1, &o));
    tu_expect_error("ig_optim_rmsprop");
    cr_assert(strstr(ig_last_error(), "alpha"));
    o = ig_rmsprop_defaults();
    o.momentum = -1;
    cr_assert_null(ig_optim_rmsprop(&p, 1, &o));
    tu_expect_error("ig_optim_rmsprop");
    o = ig_rmsprop_defaults();
    o.lr = -1;
    cr_assert_null(ig_optim_rmsprop(&p, 1, &o));
    tu_expect_error("ig_optim_rmsprop");
    o = ig_rmsprop_defaults();
    o.eps = NAN;
    cr_assert_null(ig_optim_rmsprop(&p, 1, &o));
    tu_expect_error("ig_optim_rmsprop");
    ig_tensor_free(p);
    ig_scope_end(s);
}
