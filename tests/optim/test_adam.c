/*
 * tests/optim/test_adam.c — Adam and AdamW against torch.optim's update rules written out
 * here in plain C: bias correction at steps 1..3, L2 (Adam) vs decoupled (AdamW) weight
 * decay, amsgrad, f32 and f64, named state after two steps and a restore that continues
 * exactly, and option errors.
 */
#include "optim_test_util.h"

#define N 3
static const double P0[N] = {0.5, -1.5, 2.0};
/* The third step's gradients are small so that v falls and amsgrad's max matters. */
static const double G[3][N] = {{1.0, -0.2, 0.4}, {3.0, 0.1, -2.0}, {0.01, -0.05, 0.02}};

typedef struct ref_adam {
    double lr, b1, b2, eps, wd;
    bool decoupled, amsgrad;
    double p[N], m[N], v[N], vmax[N];
    int t;
} ref_adam;

static void ref_adam_step(ref_adam *r, const double *g) {
    r->t++;
    double bc1 = 1.0 - pow(r->b1, r->t), bc2 = 1.0 - pow(r->b2, r->t);
    for (int i = 0; i < N; i++) {
        double gi = g[i];
        if (r->decoupled) r->p[i] *= 1.0 - r->lr * r->wd;
        else gi += r->wd * r->p[i];
        r->m[i] = r->b1 * r->m[i] + (1.0 - r->b1) * gi;
        r->v[i] = r->b2 * r->v[i] + (1.0 - r->b2) * gi * gi;
        double v = r->v[i];
        if (r->amsgrad) {
            if (r->vmax[i] < v) r->vmax[i] = v;
            v = r->vmax[i];
        }
        /* m_hat / (sqrt(v_hat) + eps) with the corrections folded as torch folds them. */
        double denom = sqrt(v) / sqrt(bc2) + r->eps;
        r->p[i] -= (r->lr / bc1) * r->m[i] / denom;
    }
}

static ref_adam ref_from(const ig_adam_opts *o, bool decoupled) {
    ref_adam r = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, decoupled, o->amsgrad,
                  {0}, {0}, {0}, {0}, 0};
    memcpy(r.p, P0, sizeof r.p);
    return r;
}

static void run_adam_case(ig_adam_opts o, bool adamw, ig_dtype dt, double tol) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, dt);
    ig_optimizer *opt = adamw ? ig_optim_adamw(&p, 1, &o) : ig_optim_adam(&p, 1, &o);
    cr_assert(opt, "%s", ig_last_error());
    ref_adam r = ref_from(&o, adamw);
    for (int k = 0; k < 3; k++) {
        tu_set_grad(p, G[k], N);
        cr_assert(ig_optim_step(opt) == IG_OK, "%s", ig_last_error());
        ref_adam_step(&r, G[k]);
        tu_expect(p, r.p, N, tol, "param");
        tu_expect(tu_state(opt, "0.exp_avg"), r.m, N, tol, "exp_avg");
        tu_expect(tu_state(opt, "0.exp_avg_sq"), r.v, N, tol, "exp_avg_sq");
        if (o.amsgrad) tu_expect(tu_state(opt, "0.max_exp_avg_sq"), r.vmax, N, tol, "max_exp_avg_sq");
        cr_assert_eq(ig_item(tu_state(opt, "0.step")), k + 1.0);
    }
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, adam_first_step_by_hand) {
    /* Step 1: m_hat = g, v_hat = g^2, so p moves by lr * g/(|g| + eps') ~ lr*sign(g). */
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.1;
    o.eps = 0.0;
    ig_optimizer *opt = ig_optim_adam(&p, 1, &o);
    tu_set_grad(p, G[0], N);
    ig_optim_step(opt);
    double want[N] = {0.5 - 0.1, -1.5 + 0.1, 2.0 - 0.1};
    tu_expect(p, want, N, 1e-13, "param");
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, adam_bias_correction_f64) {
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.01;
    run_adam_case(o, false, IG_F64, 1e-13);
}

Test(optim, adam_betas_and_eps_f64) {
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.2;
    o.beta1 = 0.5;
    o.beta2 = 0.75;
    o.eps = 0.1;
    run_adam_case(o, false, IG_F64, 1e-13);
}

Test(optim, adam_f32) {
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.01;
    run_adam_case(o, false, IG_F32, 2e-6);
}

Test(optim, adam_l2_weight_decay) {
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.05;
    o.weight_decay = 0.1;
    run_adam_case(o, false, IG_F64, 1e-13);
}

Test(optim, adamw_decoupled_weight_decay) {
    ig_adam_opts o = ig_adamw_defaults();
    cr_assert_eq(o.weight_decay, 1e-2);
    o.lr = 0.05;
    o.weight_decay = 0.1;
    run_adam_case(o, true, IG_F64, 1e-13);
    run_adam_case(o, true, IG_F32, 2e-6);
}

Test(optim, adam_l2_and_adamw_differ) {
    ig_scope *s = ig_scope_begin();
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.05;
    o.weight_decay = 0.5;
    ig_tensor *a = tu_param(P0, N, IG_F64), *b = tu_param(P0, N, IG_F64);
    ig_optimizer *oa = ig_optim_adam(&a, 1, &o), *ob = ig_optim_adamw(&b, 1, &o);
    tu_set_grad(a, G[1], N);
    tu_set_grad(b, G[1], N);
    ig_optim_step(oa);
    ig_optim_step(ob);
    /* AdamW, first step: p*(1 - lr*wd) - lr*sign(g) (eps aside). */
    double want_w[N];
    for (int i = 0; i < N; i++) want_w[i] = P0[i] * (1.0 - 0.05 * 0.5) - 0.05 * (G[1][i] > 0 ? 1.0 : -1.0);
    tu_expect(b, want_w, N, 1e-6, "adamw");
    /* Adam with L2: g' = g + wd*p, so element 1 (g = 0.1, p = -1.5 -> g' = -0.65) moves up. */
    cr_assert(ig_tensor_get(a, 1) > P0[1]);
    cr_assert(ig_tensor_get(b, 1) < P0[1] * (1.0 - 0.025) + 1e-9);
    ig_optim_free(oa);
    ig_optim_free(ob);
    ig_tensor_free(a);
    ig_tensor_free(b);
    ig_scope_end(s);
}

Test(optim, adam_amsgrad) {
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.01;
    o.beta2 = 0.5; /* v forgets fast, so max(v) differs from v at step 3 */
    o.amsgrad = true;
    run_adam_case(o, false, IG_F64, 1e-13);
    run_adam_case(o, true, IG_F32, 2e-6);
}

Test(optim, adam_state_export_and_restore) {
    ig_scope *s = ig_scope_begin();
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.01;
    o.amsgrad = true;
    o.weight_decay = 0.01;
    ig_tensor *a = tu_param(P0, N, IG_F32);
    ig_optimizer *oa = ig_optim_adam(&a, 1, &o);
    ref_adam r = ref_from(&o, false);
    for (int k = 0; k < 2; k++) {
        tu_set_grad(a, G[k], N);
        ig_optim_step(oa);
        ref_adam_step(&r, G[k]);
    }
    const char *names[] = {"step", "0.step", "0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq"};
    cr_assert_eq(ig_optim_state_count(oa), 5);
    for (int i = 0; i < 5; i++) {
        const char *nm;
        ig_tensor *t;
        cr_assert(ig_optim_state_get(oa, i, &nm, &t) == IG_OK);
        cr_assert_str_eq(nm, names[i]);
    }
    cr_assert_eq(ig_item(tu_state(oa, "step")), 2.0);
    cr_assert_eq(ig_item(tu_state(oa, "0.step")), 2.0);
    cr_assert_eq(ig_tensor_dtype(tu_state(oa, "0.exp_avg")), IG_F32);
    tu_expect(tu_state(oa, "0.exp_avg"), r.m, N, 1e-6, "exp_avg");
    tu_expect(tu_state(oa, "0.exp_avg_sq"), r.v, N, 1e-6, "exp_avg_sq");
    tu_expect(tu_state(oa, "0.max_exp_avg_sq"), r.vmax, N, 1e-6, "max_exp_avg_sq");

    /* Restore into a fresh optimizer over a copy of the parameter; both continue alike. */
    ig_tensor *b = ig_keep(ig_clone(a));
    ig_set_requires_grad(b, true);
    ig_optimizer *ob = ig_optim_adam(&b, 1, &o);
    for (int i = 0; i < 5; i++) {
        ig_tensor *t = tu_state(oa, names[i]);
        cr_assert(ig_optim_state_set(ob, names[i], t) == IG_OK, "%s", ig_last_error());
        /* set copies: the two optimizers do not share state */
        cr_assert_neq(tu_state(ob, names[i]), t);
    }
    tu_set_grad(a, G[2], N);
    tu_set_grad(b, G[2], N);
    ig_optim_step(oa);
    ig_optim_step(ob);
    for (int i = 0; i < N; i++) cr_assert_eq(ig_tensor_get(a, i), ig_tensor_get(b, i));
    ref_adam_step(&r, G[2]);
    tu_expect(b, r.p, N, 2e-6, "restored");
    ig_optim_free(oa);
    ig_optim_free(ob);
    ig_tensor_free(a);
    ig_tensor_free(b);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, adam_skipped_param_keeps_its_own_step) {
    /* As torch: a parameter without a gradient does not advance its step, so its bias
     * correction starts at 1 when it first gets one. */
    ig_scope *s = ig_scope_begin();
    ig_adam_opts o = ig_adam_defaults();
    o.lr = 0.01;
    ig_tensor *ps[2] = {tu_param(P0, N, IG_F64), tu_param(P0, N, IG_F64)};
    ig_optimizer *opt = ig_optim_adam(ps, 2, &o);
    tu_set_grad(ps[0], G[0], N);
    ig_optim_step(opt);
    tu_expect(ps[1], P0, N, 0.0, "skipped");
    tu_set_grad(ps[0], G[1], N);
    tu_set_grad(ps[1], G[1], N);
    ig_optim_step(opt);
    ref_adam r = ref_from(&o, false);
    ref_adam_step(&r, G[1]);
    tu_expect(ps[1], r.p, N, 1e-13, "late param");
    cr_assert_eq(ig_item(tu_state(opt, "0.step")), 2.0);
    cr_assert_eq(ig_item(tu_state(opt, "1.step")), 1.0);
    cr_assert_eq(ig_item(tu_state(opt, "step")), 2.0);
    ig_optim_free(opt);
    ig_tensor_free(ps[0]);
    ig_tensor_free(ps[1]);
    ig_scope_end(s);
}

Test(optim, adam_describe_and_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_optimizer *opt = ig_optim_adamw(&p, 1, NULL);
    cr_assert_str_eq(ig_optim_name(opt), "adamw");
    char buf[256];
    cr_assert(ig_optim_describe(opt, buf, sizeof buf) == IG_OK);
    cr_assert_str_eq(buf, "lr=0.001 beta1=0.9 beta2=0.999 eps=1e-08 weight_decay=0.01 amsgrad=false");
    ig_optim_free(opt);

    ig_adam_opts o = ig_adam_defaults();
    o.beta1 = 1.0;
    cr_assert_null(ig_optim_adam(&p, 1, &o));
    tu_expect_error("ig_optim_adam");
    cr_assert(strstr(ig_last_error(), "beta1"));
    o = ig_adam_defaults();
    o.beta2 = -0.1;
    cr_assert_null(ig_optim_adamw(&p, 1, &o));
    tu_expect_error("ig_optim_adamw");
    cr_assert(strstr(ig_last_error(), "beta2"));
    o = ig_adam_defaults();
    o.lr = -1e-3;
    cr_assert_null(ig_optim_adam(&p, 1, &o));
    tu_expect_error("ig_optim_adam");
    o = ig_adam_defaults();
    o.eps = -1.0;
    cr_assert_null(ig_optim_adam(&p, 1, &o));
    o = ig_adam_defaults();
    o.weight_decay = -1.0;
    cr_assert_null(ig_optim_adam(&p, 1, &o));
    tu_expect_error("ig_optim_adam");
    /* max_exp_avg_sq is no entry of a non-amsgrad Adam. */
    opt = ig_optim_adam(&p, 1, NULL);
    cr_assert(ig_optim_state_set(opt, "0.max_exp_avg_sq", p) == IG_ERR_ARG);
    tu_expect_error("ig_optim_state_set");
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}
