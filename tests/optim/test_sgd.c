/*
 * tests/optim/test_sgd.c — SGD against torch.optim.SGD's update rule written out here in
 * plain C: plain, L2 weight decay, momentum with dampening, Nesterov, f32 and f64; skipped
 * parameters, strided gradients, named state export/restore, the optimizer API and errors.
 */
#include "optim_test_util.h"

#define N 3
static const double P0[N] = {1.0, -2.0, 0.5};
static const double G[3][N] = {{0.3, -0.1, 2.0}, {-0.4, 0.25, 1.0}, {0.05, 0.6, -1.5}};

/* The reference: torch.optim.SGD for one element, in double. */
typedef struct ref_sgd {
    double lr, mom, damp, wd;
    bool nesterov;
    double p[N], buf[N];
    bool has_buf;
} ref_sgd;

static void ref_sgd_step(ref_sgd *r, const double *g) {
    for (int i = 0; i < N; i++) {
        double d = g[i] + r->wd * r->p[i];
        if (r->mom != 0.0) {
            r->buf[i] = r->has_buf ? r->mom * r->buf[i] + (1.0 - r->damp) * d : d;
            d = r->nesterov ? d + r->mom * r->buf[i] : r->buf[i];
        }
        r->p[i] -= r->lr * d;
    }
    if (r->mom != 0.0) r->has_buf = true;
}

/* Runs three steps with the given options in dtype dt and checks each against the reference. */
static void run_sgd_case(ig_sgd_opts o, ig_dtype dt, double tol) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, dt);
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    cr_assert(opt, "%s", ig_last_error());
    ref_sgd r = {o.lr, o.momentum, o.dampening, o.weight_decay, o.nesterov, {0}, {0}, false};
    memcpy(r.p, P0, sizeof r.p);
    for (int k = 0; k < 3; k++) {
        tu_set_grad(p, G[k], N);
        cr_assert(ig_optim_step(opt) == IG_OK, "%s", ig_last_error());
        ref_sgd_step(&r, G[k]);
        tu_expect(p, r.p, N, tol, "param");
        if (o.momentum != 0.0) tu_expect(tu_state(opt, "0.momentum_buffer"), r.buf, N, tol, "momentum_buffer");
    }
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, sgd_plain_f64) {
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    run_sgd_case(o, IG_F64, 1e-14);
}

Test(optim, sgd_plain_by_hand) {
    /* p = 1 - 0.1*0.3 = 0.97 after one step, then 0.97 + 0.1*0.4 = 1.01. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    tu_set_grad(p, G[0], N);
    ig_optim_step(opt);
    cr_assert_float_eq(ig_tensor_get(p, 0), 0.97, 1e-15);
    tu_set_grad(p, G[1], N);
    ig_optim_step(opt);
    cr_assert_float_eq(ig_tensor_get(p, 0), 1.01, 1e-15);
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, sgd_weight_decay_l2_f64) {
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.05;
    o.weight_decay = 0.1;
    run_sgd_case(o, IG_F64, 1e-14);
}

Test(optim, sgd_momentum_dampening_f64) {
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    o.dampening = 0.3;
    o.weight_decay = 0.01;
    run_sgd_case(o, IG_F64, 1e-14);
}

Test(optim, sgd_momentum_f32) {
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.8;
    o.dampening = 0.5;
    run_sgd_case(o, IG_F32, 1e-6);
}

Test(optim, sgd_nesterov_f64_and_f32) {
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.07;
    o.momentum = 0.9;
    o.nesterov = true;
    o.weight_decay = 0.05;
    run_sgd_case(o, IG_F64, 1e-14);
    run_sgd_case(o, IG_F32, 1e-6);
}

Test(optim, sgd_first_momentum_step_copies_gradient) {
    /* torch: the first step sets buf = d (no dampening), so a first step with momentum
     * moves exactly like plain SGD. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.5;
    o.momentum = 0.9;
    o.dampening = 0.9;
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    tu_set_grad(p, G[0], N);
    ig_optim_step(opt);
    double want[N];
    for (int i = 0; i < N; i++) want[i] = P0[i] - 0.5 * G[0][i];
    tu_expect(p, want, N, 1e-15, "param");
    tu_expect(tu_state(opt, "0.momentum_buffer"), G[0], N, 1e-15, "buf");
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, sgd_null_grad_is_skipped) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *ps[2] = {tu_param(P0, N, IG_F64), tu_param(P0, N, IG_F64)};
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    ig_optimizer *opt = ig_optim_sgd(ps, 2, &o);
    tu_set_grad(ps[1], G[0], N);
    cr_assert(ig_optim_step(opt) == IG_OK);
    tu_expect(ps[0], P0, N, 0.0, "untouched");
    double want[N];
    for (int i = 0; i < N; i++) want[i] = P0[i] - 0.1 * G[0][i];
    tu_expect(ps[1], want, N, 1e-15, "updated");
    /* "step" and params[1]'s buffer only. */
    cr_assert_eq(ig_optim_state_count(opt), 2);
    cr_assert_null(tu_state(opt, "0.momentum_buffer"));
    cr_assert_not_null(tu_state(opt, "1.momentum_buffer"));
    ig_optim_free(opt);
    ig_tensor_free(ps[0]);
    ig_tensor_free(ps[1]);
    ig_scope_end(s);
}

Test(optim, sgd_strided_gradient) {
    /* The gradient is a transposed view (not contiguous): the step must read it by its
     * logical layout. */
    ig_scope *s = ig_scope_begin();
    double pv[6] = {1, 2, 3, 4, 5, 6};
    ig_tensor *p = ig_keep(ig_from_data(IG_DIMS(2, 3), IG_F64, pv));
    ig_set_requires_grad(p, true);
    double gv[6] = {10, 40, 20, 50, 30, 60}; /* [3,2]; transposed it reads 10,20,30,40,50,60 */
    ig_tensor *g = ig_keep(ig_transpose(ig_from_data(IG_DIMS(3, 2), IG_F64, gv), 0, 1));
    cr_assert(!ig_tensor_is_contiguous(g));
    cr_assert(ig_set_grad(p, g) == IG_OK, "%s", ig_last_error());
    ig_tensor_free(g);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.01;
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    cr_assert(ig_optim_step(opt) == IG_OK, "%s", ig_last_error());
    double want[6];
    for (int i = 0; i < 6; i++) want[i] = pv[i] - 0.01 * 10.0 * (i + 1);
    tu_expect(p, want, 6, 1e-15, "param");
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, sgd_with_backward_and_zero_grad) {
    /* loss = sum(p*p): grad = 2p, so p -> p - lr*2p = 0.8 p with lr 0.1. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &(ig_sgd_opts){.lr = 0.1});
    for (int k = 0; k < 2; k++) {
        ig_scope *inner = ig_scope_begin();
        ig_optim_zero_grad(opt);
        ig_tensor *loss = ig_sum(ig_mul(p, p), 0, NULL, false);
        cr_assert(ig_backward(loss, NULL) == IG_OK, "%s", ig_last_error());
        cr_assert(ig_optim_step(opt) == IG_OK);
        ig_scope_end(inner);
    }
    double want[N];
    for (int i = 0; i < N; i++) want[i] = P0[i] * 0.8 * 0.8;
    tu_expect(p, want, N, 1e-15, "param");
    ig_optim_zero_grad(opt);
    for (int i = 0; i < N; i++) cr_assert_eq(ig_tensor_get(ig_grad(p), i), 0.0);
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, sgd_state_survives_the_scope_of_the_first_step) {
    /* The first step runs inside a scope that then ends: state must be heap tensors. A
     * scoped parameter is fine as long as it outlives the optimizer. */
    ig_scope *outer = ig_scope_begin();
    ig_tensor *p = tu_vec(P0, N, IG_F64);
    ig_set_requires_grad(p, true);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.5;
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    ref_sgd r = {0.1, 0.5, 0.0, 0.0, false, {0}, {0}, false};
    memcpy(r.p, P0, sizeof r.p);
    for (int k = 0; k < 3; k++) {
        ig_scope *s = ig_scope_begin();
        tu_set_grad(p, G[k], N);
        cr_assert(ig_optim_step(opt) == IG_OK);
        ig_scope_end(s);
        ref_sgd_step(&r, G[k]);
    }
    tu_expect(p, r.p, N, 1e-14, "param");
    tu_expect(tu_state(opt, "0.momentum_buffer"), r.buf, N, 1e-14, "buf");
    ig_optim_free(opt);
    ig_scope_end(outer);
    assert_no_live_bytes();
}

Test(optim, sgd_state_export_and_restore) {
    ig_scope *s = ig_scope_begin();
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    o.dampening = 0.1;
    ig_tensor *a = tu_param(P0, N, IG_F64);
    ig_optimizer *oa = ig_optim_sgd(&a, 1, &o);
    cr_assert_eq(ig_optim_state_count(oa), 0);
    ref_sgd r = {0.1, 0.9, 0.1, 0.0, false, {0}, {0}, false};
    memcpy(r.p, P0, sizeof r.p);
    for (int k = 0; k < 2; k++) {
        tu_set_grad(a, G[k], N);
        ig_optim_step(oa);
        ref_sgd_step(&r, G[k]);
    }
    /* Names and values after two steps. */
    cr_assert_eq(ig_optim_state_count(oa), 2);
    const char *nm;
    ig_tensor *t;
    cr_assert(ig_optim_state_get(oa, 0, &nm, &t) == IG_OK);
    cr_assert_str_eq(nm, "step");
    cr_assert_eq(ig_tensor_ndim(t), 0);
    cr_assert_eq(ig_item(t), 2.0);
    cr_assert(ig_optim_state_get(oa, 1, &nm, &t) == IG_OK);
    cr_assert_str_eq(nm, "0.momentum_buffer");
    tu_expect(t, r.buf, N, 1e-15, "buf");

    /* A fresh optimizer on a copy of the parameter, state restored, continues identically. */
    ig_tensor *b = tu_param(r.p, N, IG_F64);
    ig_optimizer *ob = ig_optim_sgd(&b, 1, &o);
    for (int i = 0; i < ig_optim_state_count(oa); i++) {
        ig_optim_state_get(oa, i, &nm, &t);
        ig_tensor *copy = ig_clone(t); /* a scoped copy: state_set copies it in */
        cr_assert(ig_optim_state_set(ob, nm, copy) == IG_OK, "%s", ig_last_error());
    }
    cr_assert_eq(ig_optim_state_count(ob), 2);
    cr_assert_eq(ig_item(tu_state(ob, "step")), 2.0);
    tu_set_grad(a, G[2], N);
    tu_set_grad(b, G[2], N);
    ig_optim_step(oa);
    ig_optim_step(ob);
    for (int i = 0; i < N; i++) cr_assert_eq(ig_tensor_get(a, i), ig_tensor_get(b, i));
    ref_sgd_step(&r, G[2]);
    tu_expect(b, r.p, N, 1e-14, "restored");
    ig_optim_free(oa);
    ig_optim_free(ob);
    ig_tensor_free(a);
    ig_tensor_free(b);
    ig_scope_end(s);
    assert_no_live_bytes();
}

Test(optim, sgd_describe_name_lr) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F32);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    o.nesterov = true;
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    cr_assert_str_eq(ig_optim_name(opt), "sgd");
    char buf[256];
    cr_assert(ig_optim_describe(opt, buf, sizeof buf) == IG_OK);
    cr_assert_str_eq(buf, "lr=0.1 momentum=0.9 dampening=0 weight_decay=0 nesterov=true");
    cr_assert_eq(ig_optim_get_lr(opt), 0.1);
    ig_optim_set_lr(opt, 0.25);
    cr_assert_eq(ig_optim_get_lr(opt), 0.25);
    ig_clear_error();
    ig_optim_set_lr(opt, -1.0);
    tu_expect_error("ig_optim_set_lr");
    cr_assert_eq(ig_optim_get_lr(opt), 0.25);
    char small[8];
    cr_assert(ig_optim_describe(opt, small, sizeof small) == IG_ERR_ARG);
    tu_expect_error("ig_optim_describe");
    cr_assert_eq(strlen(small), 7);
    /* NULL options are the defaults. */
    ig_optimizer *d = ig_optim_sgd(&p, 1, NULL);
    cr_assert_eq(ig_optim_get_lr(d), 0.01);
    ig_optim_free(d);
    ig_optim_free(opt);
    ig_optim_free(NULL);
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, sgd_construction_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_sgd_opts o = ig_sgd_defaults();

    ig_clear_error();
    cr_assert_null(ig_optim_sgd(NULL, 1, &o));
    tu_expect_error("ig_optim_sgd");
    cr_assert_null(ig_optim_sgd(&p, 0, &o));
    tu_expect_error("ig_optim_sgd");
    ig_tensor *nul[1] = {NULL};
    ig_clear_error();
    cr_assert_null(ig_optim_sgd(nul, 1, &o));
    tu_expect_error("ig_optim_sgd");

    o.lr = -0.1;
    cr_assert_null(ig_optim_sgd(&p, 1, &o));
    tu_expect_error("ig_optim_sgd");
    cr_assert(strstr(ig_last_error(), "lr"));
    o.lr = NAN;
    cr_assert_null(ig_optim_sgd(&p, 1, &o));
    o = ig_sgd_defaults();
    o.nesterov = true;
    cr_assert_null(ig_optim_sgd(&p, 1, &o));
    tu_expect_error("ig_optim_sgd");
    cr_assert(strstr(ig_last_error(), "nesterov"));
    o.momentum = 0.9;
    o.dampening = 0.1;
    cr_assert_null(ig_optim_sgd(&p, 1, &o));
    cr_assert(strstr(ig_last_error(), "nesterov"));
    o = ig_sgd_defaults();
    o.momentum = -0.5;
    cr_assert_null(ig_optim_sgd(&p, 1, &o));
    tu_expect_error("ig_optim_sgd");
    o = ig_sgd_defaults();

    ig_tensor *ints = ig_arange(0, 3, 1, IG_I64);
    cr_assert_null(ig_optim_sgd(&ints, 1, &o));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    tu_expect_error("ig_optim_sgd");

    ig_tensor *nonleaf = ig_mul_scalar(p, 2.0);
    cr_assert_null(ig_optim_sgd(&nonleaf, 1, &o));
    cr_assert(strstr(ig_last_error(), "leaf"));

    ig_tensor *nograd = tu_vec(P0, N, IG_F64);
    cr_assert_null(ig_optim_sgd(&nograd, 1, &o));
    cr_assert(strstr(ig_last_error(), "require"));

    ig_tensor *m = ig_transpose(ig_zeros(IG_DIMS(2, 3), IG_F64), 0, 1);
    ig_set_requires_grad(m, true);
    cr_assert_null(ig_optim_sgd(&m, 1, &o));
    tu_expect_error("ig_optim_sgd");
    cr_assert(strstr(ig_last_error(), "contiguous"));

    ig_tensor *dup[2] = {p, p};
    cr_assert_null(ig_optim_sgd(dup, 2, &o));
    tu_expect_error("ig_optim_sgd");

    ig_clear_error();
    cr_assert(ig_optim_step(NULL) == IG_ERR_ARG);
    tu_expect_error("ig_optim_step");
    ig_tensor_free(p);
    ig_scope_end(s);
}

Test(optim, sgd_state_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = tu_param(P0, N, IG_F64);
    ig_sgd_opts o = ig_sgd_defaults();
    o.momentum = 0.9;
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    const char *nm;
    ig_tensor *t;
    cr_assert(ig_optim_state_get(opt, 0, &nm, &t) == IG_ERR_ARG);
    tu_expect_error("ig_optim_state_get");
    ig_tensor *good = tu_vec(G[0], N, IG_F64);
    cr_assert(ig_optim_state_set(opt, "1.momentum_buffer", good) == IG_ERR_ARG);
    tu_expect_error("ig_optim_state_set");
    cr_assert(ig_optim_state_set(opt, "0.exp_avg", good) == IG_ERR_ARG);
    cr_assert(ig_optim_state_set(opt, "momentum_buffer", good) == IG_ERR_ARG);
    cr_assert(ig_optim_state_set(opt, "0.momentum_buffer", ig_zeros(IG_DIMS(4), IG_F64)) == IG_ERR_SHAPE);
    tu_expect_error("ig_optim_state_set");
    cr_assert(ig_optim_state_set(opt, "0.momentum_buffer", tu_vec(G[0], N, IG_F32)) == IG_ERR_DTYPE);
    tu_expect_error("ig_optim_state_set");
    cr_assert(ig_optim_state_set(opt, "step", ig_scalar(-1, IG_F64)) == IG_ERR_ARG);
    cr_assert(ig_optim_state_set(opt, "step", ig_scalar(1.5, IG_F64)) == IG_ERR_ARG);
    cr_assert(ig_optim_state_set(opt, "step", good) == IG_ERR_SHAPE);
    cr_assert_eq(ig_optim_state_count(opt), 0);
    /* A good set before any step creates the entry; the step then uses it as a buffer. */
    cr_assert(ig_optim_state_set(opt, "0.momentum_buffer", good) == IG_OK);
    cr_assert(ig_optim_state_set(opt, "step", ig_scalar(4, IG_I64)) == IG_OK);
    cr_assert_eq(ig_optim_state_count(opt), 2);
    tu_set_grad(p, G[1], N);
    ig_optim_step(opt);
    double want[N];
    for (int i = 0; i < N; i++) want[i] = P0[i] - 0.01 * (0.9 * G[0][i] + G[1][i]);
    tu_expect(p, want, N, 1e-15, "param");
    cr_assert_eq(ig_item(tu_state(opt, "step")), 5.0);
    ig_optim_free(opt);
    ig_tensor_free(p);
    ig_scope_end(s);
}
