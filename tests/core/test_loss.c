/*
 * tests/core/test_loss.c — the losses of core/ops/loss.c against references written here
 * with plain loops (long double log-sum-exp for cross-entropy): hand-made logits including
 * 1000+, label smoothing, ignore_index (some, all and out-of-range ignored rows), every
 * reduction, the spatial form [N,C,H,W], int32 targets, unbatched and empty batches,
 * non-contiguous inputs, backward values, ig_gradcheck in f64 for every loss and reduction
 * (targets requiring grad for the pointwise losses), and the user-error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static const ig_reduction all_red[3] = {IG_REDUCTION_MEAN, IG_REDUCTION_SUM, IG_REDUCTION_NONE};

/* ---- reference cross-entropy ------------------------------------------------------------ */

/* Loss of position (n, s) of logits laid out row-major as [N,C,S]. */
static double ref_ce_pos(const double *x, int64_t C, int64_t S, int64_t n, int64_t s, int64_t t, double eps) {
    long double m = -INFINITY, sum = 0, smooth = 0;
    for (int64_t c = 0; c < C; c++) m = fmaxl(m, x[(n * C + c) * S + s]);
    for (int64_t c = 0; c < C; c++) sum += expl(x[(n * C + c) * S + s] - m);
    long double lse = m + logl(sum);
    for (int64_t c = 0; c < C; c++) smooth += lse - x[(n * C + c) * S + s];
    return (double)((1 - eps) * (lse - x[(n * C + t) * S + s]) + eps / C * smooth);
}

/* Per-position losses into out[N*S] (0 where ignored); returns the reduced value. */
static double ref_ce(const double *x, const int64_t *t, int64_t N, int64_t C, int64_t S, double eps,
                     bool use_ign, int64_t ign, ig_reduction r, double *out) {
    double total = 0;
    int64_t cnt = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++) {
            int64_t tv = t[n * S + s];
            double l = 0;
            if (!(use_ign && tv == ign)) {
                l = ref_ce_pos(x, C, S, n, s, tv, eps);
                total += l;
                cnt++;
            }
            if (out) out[n * S + s] = l;
        }
    return r == IG_REDUCTION_MEAN ? total / (double)cnt : total;
}

/* Checks a loss result against the reference for reduction r (per-position values in want). */
static void check_result(ig_tensor *y, ig_reduction r, double want_red, const double *want, int64_t n,
                         double tol, const char *what) {
    cr_assert(y, "%s: %s", what, ig_last_error());
    if (r == IG_REDUCTION_NONE) {
        cr_assert_eq(ig_tensor_numel(y), n, "%s", what);
        for (int64_t i = 0; i < n; i++) {
            double got = ig_tensor_get(y, i);
            cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])), "%s: element %lld got %.12g want %.12g",
                      what, (long long)i, got, want[i]);
        }
    } else {
        cr_assert_eq(ig_tensor_ndim(y), 0, "%s", what);
        double got = ig_item(y);
        if (isnan(want_red)) {
            cr_assert(isnan(got), "%s: got %g want NaN", what, got);
        } else {
            cr_assert(fabs(got - want_red) <= tol * (1 + fabs(want_red)), "%s: red %d got %.12g want %.12g",
                      what, (int)r, got, want_red);
        }
    }
}

/* Logits [4,3] with a row of 1000+ values and a row with a very negative entry. */
static const double LOGITS43[12] = {
    0.5, -1.25, 2.0,
    1000.0, 1001.5, 999.0,
    -3.0, 0.0, 0.75,
    -500.0, 2.5, 2.25,
};
static const int64_t TARGET4[4] = {2, 0, 1, 0};

static void ce_case(ig_dtype dt, double eps, bool use_ign, int64_t ign, const int64_t *tv, const char *what) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_to_dtype(ig_from_data(IG_DIMS(4, 3), IG_F64, LOGITS43), dt);
    ig_tensor *t = ig_from_data(IG_DIMS(4), IG_I64, tv);
    double want[4];
    for (int k = 0; k < 3; k++) {
        ig_ce_params p = {.reduction = all_red[k], .use_ignore_index = use_ign, .ignore_index = ign,
                          .label_smoothing = eps};
        double red = ref_ce(LOGITS43, tv, 4, 3, 1, eps, use_ign, ign, all_red[k], want);
        ig_tensor *y = ig_cross_entropy(x, t, &p);
        check_result(y, all_red[k], red, want, 4, dt == IG_F32 ? 2e-6 : 1e-12, what);
        if (y) cr_assert_eq(ig_tensor_dtype(y), dt);
        for (int64_t i = 0; y && i < ig_tensor_numel(y); i++) cr_assert(!isnan(ig_tensor_get(y, i)) || isnan(red));
    }
    ig_scope_end(s);
}

Test(core, cross_entropy_values_and_large_logits) {
    ce_case(IG_F64, 0, false, 0, TARGET4, "plain f64");
    ce_case(IG_F32, 0, false, 0, TARGET4, "plain f32");
    /* Row 1: logits 1000, 1001.5, 999, target 0 -> lse - 1000 = log(1 + e^1.5 + e^-1). */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(1, 3), IG_F32, (float[]){1000.f, 1001.5f, 999.f});
    ig_tensor *y = ig_cross_entropy(x, ig_from_data(IG_DIMS(1), IG_I64, (int64_t[]){0}), NULL);
    cr_assert_float_eq(ig_item(y), log(1 + exp(1.5) + exp(-1.0)), 1e-5);
    ig_scope_end(s);
}

Test(core, cross_entropy_label_smoothing) {
    ce_case(IG_F64, 0.1, false, 0, TARGET4, "smoothing f64");
    ce_case(IG_F32, 0.1, false, 0, TARGET4, "smoothing f32");
    ce_case(IG_F64, 1.0, false, 0, TARGET4, "smoothing 1");
    /* Hand check of torch's formula on one row: x = (0, ln 3) -> logp = (ln 1/4, ln 3/4). */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(1, 2), IG_F64, (double[]){0, log(3.0)});
    ig_ce_params p = {.label_smoothing = 0.1};
    ig_tensor *y = ig_cross_entropy(x, ig_from_data(IG_DIMS(1), IG_I64, (int64_t[]){1}), &p);
    double want = 0.9 * -log(0.75) + 0.05 * (-log(0.25) - log(0.75));
    cr_assert_float_eq(ig_item(y), want, 1e-12);
    ig_scope_end(s);
}

Test(core, cross_entropy_ignore_index) {
    /* Rows 1 and 3 ignored (target 0 == ignore_index) */
    ce_case(IG_F64, 0, true, 0, TARGET4, "ignore 0");
    ce_case(IG_F64, 0.1, true, 0, TARGET4, "ignore 0 smoothing");
    ce_case(IG_F32, 0.1, true, 0, TARGET4, "ignore 0 smoothing f32");
    /* An ignored target may be outside [0, C), as torch's default -100. */
    ce_case(IG_F64, 0, true, -100, (const int64_t[]){2, -100, 1, -100}, "ignore -100");
    /* Ignore index that matches nothing changes nothing. */
    ce_case(IG_F64, 0, true, 7, TARGET4, "ignore unused");
    /* Every row ignored: mean is NaN (0/0 as torch), sum 0, none all zeros. */
    ce_case(IG_F64, 0, true, -1, (const int64_t[]){-1, -1, -1, -1}, "all ignored");
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(4, 3), IG_F64, LOGITS43);
    ig_tensor *t = ig_from_data(IG_DIMS(4), IG_I64, (int64_t[]){-1, -1, -1, -1});
    ig_ce_params p = {.use_ignore_index = true, .ignore_index = -1};
    cr_assert(isnan(ig_item(ig_cross_entropy(x, t, &p))));
    p.reduction = IG_REDUCTION_SUM;
    cr_assert_eq(ig_item(ig_cross_entropy(x, t, &p)), 0.0);
    /* Gradient through a partly ignored mean: ignored rows get 0, others 1/2 of the usual. */
    ig_set_requires_grad(x, true);
    p = (ig_ce_params){.use_ignore_index = true, .ignore_index = 0};
    ig_tensor *y = ig_cross_entropy(x, ig_from_data(IG_DIMS(4), IG_I64, TARGET4), &p);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    for (int n = 0; n < 4; n++) {
        double m = -INFINITY, sum = 0;
        for (int c = 0; c < 3; c++) m = fmax(m, LOGITS43[n * 3 + c]);
        for (int c = 0; c < 3; c++) sum += exp(LOGITS43[n * 3 + c] - m);
        for (int c = 0; c < 3; c++) {
            double want = TARGET4[n] == 0 ? 0.0 : (exp(LOGITS43[n * 3 + c] - m) / sum - (c == TARGET4[n])) / 2;
            cr_assert_float_eq(ig_tensor_get(ig_grad(x), n * 3 + c), want, 1e-12, "n %d c %d", n, c);
        }
    }
    ig_scope_end(s);
}

/* Spatial [2,3,2,2] logits with int32 targets [2,2,2], contiguous and as a permuted view. */
Test(core, cross_entropy_spatial_int32_noncontiguous) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    enum { N = 2, C = 3, H = 2, W = 2, S = H * W };
    ig_tensor *x = ig_mul_scalar(ig_randn(IG_DIMS(N, C, H, W), IG_F64), 3.0);
    double xv[N * C * S];
    ig_tensor_to_buffer(x, IG_F64, xv, N * C * S);
    int64_t tv[N * S] = {0, 2, 1, 1, 2, 2, 0, 1};
    int32_t tv32[N * S];
    for (int i = 0; i < N * S; i++) tv32[i] = (int32_t)tv[i];
    ig_tensor *t32 = ig_from_data(IG_DIMS(N, H, W), IG_I32, tv32);
    /* The same logits as a permuted view of an NHWC tensor. */
    ig_tensor *nhwc = ig_contiguous(ig_permute(x, (int[]){0, 2, 3, 1}));
    ig_tensor *xv_view = ig_permute(nhwc, (int[]){0, 3, 1, 2});
    cr_assert(!ig_tensor_is_contiguous(xv_view));
    /* The same targets as a transposed view of a [N,W,H] tensor. */
    ig_tensor *tT = ig_transpose(ig_contiguous(ig_transpose(t32, 1, 2)), 1, 2);
    cr_assert(!ig_tensor_is_contiguous(tT));
    double want[N * S];
    for (int k = 0; k < 3; k++) {
        ig_ce_params p = {.reduction = all_red[k], .label_smoothing = 0.1};
        double red = ref_ce(xv, tv, N, C, S, 0.1, false, 0, all_red[k], want);
        ig_tensor *y1 = ig_cross_entropy(x, t32, &p);
        check_result(y1, all_red[k], red, want, N * S, 1e-12, "spatial");
        ig_tensor *y2 = ig_cross_entropy(xv_view, tT, &p);
        check_result(y2, all_red[k], red, want, N * S, 1e-12, "spatial views");
        if (all_red[k] == IG_REDUCTION_NONE) {
            cr_assert_eq(ig_tensor_ndim(y1), 3);
            cr_assert_eq(ig_tensor_shape(y1)[0], N);
            cr_assert_eq(ig_tensor_shape(y1)[1], H);
            cr_assert_eq(ig_tensor_shape(y1)[2], W);
        }
    }
    /* int32 and int64 targets agree; ignore_index works spatially. */
    ig_ce_params p = {.use_ignore_index = true, .ignore_index = 2};
    double red = ref_ce(xv, tv, N, C, S, 0, true, 2, IG_REDUCTION_MEAN, NULL);
    check_result(ig_cross_entropy(x, ig_from_data(IG_DIMS(N, H, W), IG_I64, tv), &p), IG_REDUCTION_MEAN, red,
                 NULL, 1, 1e-12, "spatial ignore i64");
    check_result(ig_cross_entropy(x, t32, &p), IG_REDUCTION_MEAN, red, NULL, 1, 1e-12, "spatial ignore i32");
    ig_scope_end(s);
}

Test(core, cross_entropy_unbatched_empty_and_size1) {
    ig_scope *s = ig_scope_begin();
    /* Unbatched: logits [C], target 0-dim. */
    ig_tensor *x = ig_from_data(IG_DIMS(3), IG_F64, (double[]){1, 2, 3});
    ig_tensor *t = ig_from_data(0, NULL, IG_I64, (int64_t[]){1});
    double want = log(exp(1.0) + exp(2.0) + exp(3.0)) - 2;
    cr_assert_float_eq(ig_item(ig_cross_entropy(x, t, NULL)), want, 1e-12);
    ig_tensor *yn = ig_cross_entropy(x, t, &(ig_ce_params){.reduction = IG_REDUCTION_NONE});
    cr_assert_eq(ig_tensor_ndim(yn), 0);
    cr_assert_float_eq(ig_item(yn), want, 1e-12);
    /* One class: the loss is 0 (log-softmax of a single logit is 0). */
    ig_tensor *x1 = ig_from_data(IG_DIMS(2, 1), IG_F64, (double[]){5, -7});
    cr_assert_float_eq(ig_item(ig_cross_entropy(x1, ig_zeros(IG_DIMS(2), IG_I64), NULL)), 0.0, 1e-15);
    /* Empty batch: mean NaN, sum 0, none [0]; backward gives an empty gradient. */
    ig_tensor *x0 = ig_zeros(IG_DIMS(0, 3), IG_F64);
    ig_set_requires_grad(x0, true);
    ig_tensor *t0 = ig_zeros(IG_DIMS(0), IG_I64);
    cr_assert(isnan(ig_item(ig_cross_entropy(x0, t0, NULL))));
    ig_tensor *ys = ig_cross_entropy(x0, t0, &(ig_ce_params){.reduction = IG_REDUCTION_SUM});
    cr_assert_eq(ig_item(ys), 0.0);
    cr_assert(ig_backward(ys, NULL) == IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(ig_grad(x0)), 0);
    ig_tensor *y0 = ig_cross_entropy(x0, t0, &(ig_ce_params){.reduction = IG_REDUCTION_NONE});
    cr_assert_eq(ig_tensor_ndim(y0), 1);
    cr_assert_eq(ig_tensor_shape(y0)[0], 0);
    ig_scope_end(s);
}

/* Backward values against the closed form, f32 and f64, with smoothing and a 'none' seed. */
Test(core, cross_entropy_backward_values) {
    ig_dtype dts[2] = {IG_F64, IG_F32};
    for (int di = 0; di < 2; di++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_to_dtype(ig_from_data(IG_DIMS(4, 3), IG_F64, LOGITS43), dts[di]);
        ig_set_requires_grad(x, true);
        ig_tensor *t = ig_from_data(IG_DIMS(4), IG_I64, TARGET4);
        double seed_v[4] = {1.0, -2.0, 0.5, 3.0};
        ig_tensor *seed = ig_to_dtype(ig_from_data(IG_DIMS(4), IG_F64, seed_v), dts[di]);
        double eps = 0.1;
        ig_tensor *y = ig_cross_entropy(x, t, &(ig_ce_params){.reduction = IG_REDUCTION_NONE, .label_smoothing = eps});
        cr_assert(ig_backward(y, seed) == IG_OK, "%s", ig_last_error());
        double tol = dts[di] == IG_F32 ? 1e-6 : 1e-12;
        for (int n = 0; n < 4; n++) {
            double m = -INFINITY, sum = 0;
            for (int c = 0; c < 3; c++) m = fmax(m, LOGITS43[n * 3 + c]);
            for (int c = 0; c < 3; c++) sum += exp(LOGITS43[n * 3 + c] - m);
            for (int c = 0; c < 3; c++) {
                double sm = exp(LOGITS43[n * 3 + c] - m) / sum;
                double want = (sm - (1 - eps) * (c == TARGET4[n]) - eps / 3) * seed_v[n];
                double got = ig_tensor_get(ig_grad(x), n * 3 + c);
                cr_assert(fabs(got - want) <= tol * (1 + fabs(want)), "dt %d n %d c %d: got %g want %g", di, n, c,
                          got, want);
            }
        }
        ig_scope_end(s);
    }
}

/* ---- gradcheck for the class losses ------------------------------------------------------ */

typedef struct {
    ig_tensor *target;
    ig_ce_params p;
    bool nll;
} ce_ctx;

static ig_tensor *f_class(ig_tensor *const *in, int n, void *vctx) {
    (void)n;
    ce_ctx *c = vctx;
    return c->nll ? ig_nll_loss(in[0], c->target, &c->p) : ig_cross_entropy(in[0], c->target, &c->p);
}

static void gradcheck_class(bool nll, int nd, const int64_t *xs, ig_tensor *target, bool use_ign, int64_t ign,
                            double eps) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(nd, xs, IG_F64);
    ig_set_requires_grad(x, true);
    for (int k = 0; k < 3; k++) {
        ce_ctx c = {.target = target, .nll = nll,
                    .p = {.reduction = all_red[k], .use_ignore_index = use_ign, .ignore_index = ign,
                          .label_smoothing = eps}};
        ig_status st = ig_gradcheck(f_class, &x, 1, &c, NULL);
        cr_assert(st == IG_OK, "nll %d red %d eps %g: %s", nll, k, eps, ig_last_error());
    }
    ig_scope_end(s);
}

Test(core, cross_entropy_nll_gradcheck) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(5);
    ig_tensor *t5 = ig_from_data(IG_DIMS(5), IG_I64, (int64_t[]){3, 0, 1, 3, 2});
    ig_tensor *tsp = ig_from_data(IG_DIMS(2, 2, 3), IG_I32, (int32_t[]){0, 1, 2, 3, 3, 0, 1, 1, 2, 0, 3, 2});
    for (int nll = 0; nll < 2; nll++) {
        gradcheck_class(nll, IG_DIMS(5, 4), t5, false, 0, 0);
        gradcheck_class(nll, IG_DIMS(5, 4), t5, true, 3, 0);
        gradcheck_class(nll, IG_DIMS(2, 4, 2, 3), tsp, true, 1, 0);
        if (!nll) {
            gradcheck_class(nll, IG_DIMS(5, 4), t5, false, 0, 0.1);
            gradcheck_class(nll, IG_DIMS(5, 4), t5, true, 3, 0.1);
            gradcheck_class(nll, IG_DIMS(2, 4, 2, 3), tsp, false, 0, 0.2);
        }
    }
    /* Non-contiguous logits: a transposed [C,N] tensor viewed as [N,C]. */
    ig_tensor *xt = ig_randn(IG_DIMS(4, 5), IG_F64);
    ig_set_requires_grad(xt, true);
    ce_ctx c = {.target = t5, .p = {.label_smoothing = 0.1}};
    ig_tensor *xv = ig_transpose(xt, 0, 1);
    ig_tensor *y1 = ig_cross_entropy(xv, t5, &c.p);
    ig_tensor *y2 = ig_cross_entropy(ig_contiguous(xv), t5, &c.p);
    cr_assert_float_eq(ig_item(y1), ig_item(y2), 1e-12);
    cr_assert(ig_backward(y1, NULL) == IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(ig_grad(xt))[0], 4);
    ig_scope_end(s);
}

/* ig_cross_entropy(x, t) == ig_nll_loss(ig_log_softmax(x, 1), t), values and gradients. */
Test(core, cross_entropy_equals_nll_of_log_softmax) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(3);
    ig_tensor *leaf = ig_contiguous(ig_mul_scalar(ig_randn(IG_DIMS(3, 5, 2), IG_F64), 4.0));
    ig_set_requires_grad(leaf, true);
    ig_tensor *t = ig_from_data(IG_DIMS(3, 2), IG_I64, (int64_t[]){4, 0, 2, 2, 1, 3});
    for (int k = 0; k < 3; k++) {
        ig_ce_params p = {.reduction = all_red[k], .use_ignore_index = true, .ignore_index = 2};
        ig_tensor *a = ig_cross_entropy(leaf, t, &p);
        ig_tensor *b = ig_nll_loss(ig_log_softmax(leaf, 1), t, &p);
        cr_assert(a && b, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(a), ig_tensor_numel(b));
        for (int64_t i = 0; i < ig_tensor_numel(a); i++)
            cr_assert_float_eq(ig_tensor_get(a, i), ig_tensor_get(b, i), 1e-12);
        ig_tensor *sa = ig_sum(a, 0, NULL, false), *sb = ig_sum(b, 0, NULL, false);
        ig_zero_grad(leaf);
        cr_assert(ig_backward(sa, NULL) == IG_OK, "%s", ig_last_error());
        double ga[30], gb[30];
        ig_tensor_to_buffer(ig_grad(leaf), IG_F64, ga, 30);
        ig_zero_grad(leaf);
        cr_assert(ig_backward(sb, NULL) == IG_OK, "%s", ig_last_error());
        ig_tensor_to_buffer(ig_grad(leaf), IG_F64, gb, 30);
        for (int i = 0; i < 30; i++) cr_assert_float_eq(ga[i], gb[i], 1e-12, "red %d grad %d", k, i);
    }
    ig_scope_end(s);
}

Test(core, nll_loss_values) {
    ig_scope *s = ig_scope_begin();
    /* logp [3,4]: loss_i = -logp[i, t_i] */
    double lp[12] = {-1, -2, -3, -4, -0.5, -0.25, -8, -1.5, -0.1, -0.2, -0.3, -0.4};
    ig_tensor *x = ig_from_data(IG_DIMS(3, 4), IG_F64, lp);
    ig_tensor *t = ig_from_data(IG_DIMS(3), IG_I32, (int32_t[]){3, 1, 0});
    cr_assert_float_eq(ig_item(ig_nll_loss(x, t, NULL)), (4 + 0.25 + 0.1) / 3, 1e-12);
    ig_ce_params p = {.reduction = IG_REDUCTION_SUM};
    cr_assert_float_eq(ig_item(ig_nll_loss(x, t, &p)), 4 + 0.25 + 0.1, 1e-12);
    p = (ig_ce_params){.reduction = IG_REDUCTION_NONE, .use_ignore_index = true, .ignore_index = 1};
    ig_tensor *y = ig_nll_loss(ig_to_dtype(x, IG_F32), t, &p);
    cr_assert_eq(ig_tensor_dtype(y), IG_F32);
    double want[3] = {4, 0, 0.1};
    for (int i = 0; i < 3; i++) cr_assert_float_eq(ig_tensor_get(y, i), want[i], 1e-6);
    p = (ig_ce_params){.use_ignore_index = true, .ignore_index = 1};
    cr_assert_float_eq(ig_item(ig_nll_loss(x, t, &p)), (4 + 0.1) / 2, 1e-12);
    /* Backward of the ignored mean: -1/2 at each counted target, 0 elsewhere. */
    ig_set_requires_grad(x, true);
    cr_assert(ig_backward(ig_nll_loss(x, t, &p), NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 12; i++) {
        double w = (i == 3 || i == 8) ? -0.5 : 0.0;
        cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), w, 1e-15, "i %d", i);
    }
    ig_scope_end(s);
}

/* ---- pointwise losses -------------------------------------------------------------------- */

enum { L_MSE, L_L1, L_SMOOTH, L_BCE };

static double ref_pointwise(int kind, double x, double y, double beta) {
    double d = x - y;
    switch (kind) {
    case L_MSE: return d * d;
    case L_L1: return fabs(d);
    case L_SMOOTH: return fabs(d) < beta ? 0.5 * d * d / beta : fabs(d) - 0.5 * beta;
    default: {
        /* -[y log sigmoid(x) + (1-y) log(1 - sigmoid(x))], in long double */
        long double sg = 1.0L / (1.0L + expl(-(long double)x));
        return (double)-(y * logl(sg) + (1 - y) * logl(1 - sg));
    }
    }
}

static ig_tensor *call_pointwise(int kind, ig_tensor *x, ig_tensor *y, ig_reduction r, double beta) {
    switch (kind) {
    case L_MSE: return ig_mse_loss(x, y, r);
    case L_L1: return ig_l1_loss(x, y, r);
    case L_SMOOTH: return ig_smooth_l1_loss(x, y, r, beta);
    default: return ig_bce_with_logits(x, y, r);
    }
}

Test(core, pointwise_loss_values) {
    ig_scope *s = ig_scope_begin();
    /* x is a transposed view; target is a sliced view (step 2). */
    double xv[6] = {0.5, -1.5, 3.0, 0.0, 2.25, -0.1};     /* logical [2,3] after transpose */
    double yv[6] = {0.25, 1.0, 3.0, 0.5, 0.0, -0.05};
    ig_tensor *xt = ig_from_data(IG_DIMS(3, 2), IG_F64, (double[]){0.5, 0.0, -1.5, 2.25, 3.0, -0.1});
    ig_tensor *x = ig_transpose(xt, 0, 1);
    ig_tensor *ywide = ig_zeros(IG_DIMS(2, 6), IG_F64);
    ig_tensor *y = ig_slice(ywide, 1, 0, 6, 2);
    ig_copy_(y, ig_from_data(IG_DIMS(2, 3), IG_F64, yv));
    cr_assert(!ig_tensor_is_contiguous(x) && !ig_tensor_is_contiguous(y));
    double betas[3] = {0, 0.5, 2.0}; /* 0 means 1 */
    for (int kind = 0; kind < 4; kind++)
        for (int bi = 0; bi < (kind == L_SMOOTH ? 3 : 1); bi++)
            for (int dti = 0; dti < 2; dti++) {
                ig_dtype dt = dti ? IG_F32 : IG_F64;
                ig_tensor *xd = dti ? ig_to_dtype(x, dt) : x, *yd = dti ? ig_to_dtype(y, dt) : y;
                double beta = betas[bi], eb = beta == 0 ? 1 : beta;
                double want[6], sum = 0;
                for (int i = 0; i < 6; i++) sum += want[i] = ref_pointwise(kind, xv[i], yv[i], eb);
                for (int k = 0; k < 3; k++) {
                    ig_tensor *out = call_pointwise(kind, xd, yd, all_red[k], beta);
                    double red = all_red[k] == IG_REDUCTION_MEAN ? sum / 6 : sum;
                    check_result(out, all_red[k], red, want, 6, dti ? 2e-6 : 1e-12, "pointwise");
                    cr_assert_eq(ig_tensor_dtype(out), dt);
                    if (all_red[k] == IG_REDUCTION_NONE) {
                        cr_assert_eq(ig_tensor_ndim(out), 2);
                        cr_assert_eq(ig_tensor_shape(out)[1], 3);
                    }
                }
            }
    /* Empty input: mean NaN (as torch), sum 0. */
    ig_tensor *e = ig_zeros(IG_DIMS(0, 2), IG_F64);
    cr_assert(isnan(ig_item(ig_mse_loss(e, e, IG_REDUCTION_MEAN))));
    cr_assert_eq(ig_item(ig_l1_loss(e, e, IG_REDUCTION_SUM)), 0.0);
    /* 0-dim inputs. */
    cr_assert_float_eq(ig_item(ig_mse_loss(ig_scalar(3, IG_F64), ig_scalar(1, IG_F64), IG_REDUCTION_NONE)), 4.0,
                       1e-15);
    ig_scope_end(s);
}

/* BCE is stable for huge logits and its gradient at x == 0 is sigmoid(0) - y = 0.5 - y. */
Test(core, bce_with_logits_stable_and_grad_at_zero) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(4), IG_F32, (float[]){1000.f, -1000.f, 0.f, 80.f});
    ig_tensor *y = ig_from_data(IG_DIMS(4), IG_F32, (float[]){0.f, 0.f, 0.25f, 1.f});
    ig_tensor *l = ig_bce_with_logits(x, y, IG_REDUCTION_NONE);
    cr_assert_float_eq(ig_tensor_get(l, 0), 1000.0, 1e-3);
    cr_assert_float_eq(ig_tensor_get(l, 1), 0.0, 1e-6);
    cr_assert_float_eq(ig_tensor_get(l, 2), log(2.0), 1e-6);
    cr_assert_float_eq(ig_tensor_get(l, 3), 0.0, 1e-6);
    ig_tensor *xd = ig_from_data(IG_DIMS(3), IG_F64, (double[]){0, 0, 2});
    ig_tensor *yd = ig_from_data(IG_DIMS(3), IG_F64, (double[]){0.25, 1, 0.5});
    ig_set_requires_grad(xd, true);
    ig_set_requires_grad(yd, true);
    cr_assert(ig_backward(ig_bce_with_logits(xd, yd, IG_REDUCTION_SUM), NULL) == IG_OK, "%s", ig_last_error());
    cr_assert_float_eq(ig_tensor_get(ig_grad(xd), 0), 0.25, 1e-15);
    cr_assert_float_eq(ig_tensor_get(ig_grad(xd), 1), -0.5, 1e-15);
    cr_assert_float_eq(ig_tensor_get(ig_grad(xd), 2), 1 / (1 + exp(-2.0)) - 0.5, 1e-15);
    cr_assert_float_eq(ig_tensor_get(ig_grad(yd), 2), -2.0, 1e-15);
    ig_scope_end(s);
}

typedef struct {
    int kind;
    ig_reduction r;
    double beta;
} pw_ctx;

static ig_tensor *f_pointwise(ig_tensor *const *in, int n, void *vctx) {
    (void)n;
    pw_ctx *c = vctx;
    return call_pointwise(c->kind, in[0], in[1], c->r, c->beta);
}

Test(core, pointwise_loss_gradcheck) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(9);
    for (int kind = 0; kind < 4; kind++) {
        double beta = kind == L_SMOOTH ? 0.8 : 0;
        /* Keep x - y away from the kinks (0 for l1, +-beta for smooth_l1): |d| in [0.1, 0.6]
         * or [1.0, 1.5], with random signs. */
        ig_tensor *y = ig_randn(IG_DIMS(3, 4), IG_F64);
        if (kind == L_BCE) y = ig_rand(IG_DIMS(3, 4), IG_F64);
        ig_tensor *mag = ig_add_scalar(ig_mul_scalar(ig_rand(IG_DIMS(3, 4), IG_F64), 0.5), 0.1);
        double mv[12];
        ig_tensor_to_buffer(mag, IG_F64, mv, 12);
        for (int i = 0; i < 12; i++) mv[i] = (i % 2 ? -1 : 1) * (mv[i] + (i % 3 == 0 ? 0.9 : 0));
        ig_tensor *x = ig_add(y, ig_from_data(IG_DIMS(3, 4), IG_F64, mv));
        x = ig_contiguous(ig_detach(x));
        y = ig_contiguous(ig_detach(y));
        ig_tensor *xl = ig_clone(x), *yl = ig_clone(y);
        ig_set_requires_grad(xl, true);
        ig_set_requires_grad(yl, true);
        ig_tensor *in[2] = {xl, yl};
        for (int k = 0; k < 3; k++) {
            pw_ctx c = {.kind = kind, .r = all_red[k], .beta = beta};
            ig_status st = ig_gradcheck(f_pointwise, in, 2, &c, NULL);
            cr_assert(st == IG_OK, "kind %d red %d: %s", kind, k, ig_last_error());
        }
        /* Input only (target a constant) also works. */
        ig_tensor *in1[2] = {xl, y};
        pw_ctx c = {.kind = kind, .r = IG_REDUCTION_MEAN, .beta = beta};
        cr_assert(ig_gradcheck(f_pointwise, in1, 2, &c, NULL) == IG_OK, "kind %d: %s", kind, ig_last_error());
    }
    ig_scope_end(s);
}

/* Gradients w.r.t. input and target of mse, l1, smooth_l1 in closed form (mean reduction). */
Test(core, pointwise_loss_backward_values) {
    ig_scope *s = ig_scope_begin();
    double xv[4] = {1.0, -2.0, 0.5, 3.0}, yv[4] = {0.0, 1.0, 0.5, 2.5};
    for (int kind = 0; kind < 3; kind++) {
        ig_tensor *x = ig_from_data(IG_DIMS(4), IG_F64, xv), *y = ig_from_data(IG_DIMS(4), IG_F64, yv);
        ig_set_requires_grad(x, true);
        ig_set_requires_grad(y, true);
        cr_assert(ig_backward(call_pointwise(kind, x, y, IG_REDUCTION_MEAN, 0), NULL) == IG_OK, "%s",
                  ig_last_error());
        for (int i = 0; i < 4; i++) {
            double d = xv[i] - yv[i], sg = d > 0 ? 1 : d < 0 ? -1 : 0;
            double want = kind == L_MSE ? 2 * d : kind == L_L1 ? sg : (fabs(d) < 1 ? d : sg);
            want /= 4;
            cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), want, 1e-15, "kind %d i %d", kind, i);
            cr_assert_float_eq(ig_tensor_get(ig_grad(y), i), -want, 1e-15, "kind %d i %d", kind, i);
        }
    }
    ig_scope_end(s);
}

/* Heap tensors (no scope): the saved log-sum-exp is owned by the node and freed with it. */
Test(core, loss_heap_tensors_do_not_leak) {
    ig_tensor *x = ig_from_data(IG_DIMS(4, 3), IG_F64, LOGITS43);
    ig_tensor *t = ig_from_data(IG_DIMS(4), IG_I64, TARGET4);
    ig_set_requires_grad(x, true);
    ig_tensor *y = ig_cross_entropy(x, t, &(ig_ce_params){.label_smoothing = 0.1});
    cr_assert(y, "%s", ig_last_error());
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    double want = ref_ce(LOGITS43, TARGET4, 4, 3, 1, 0.1, false, 0, IG_REDUCTION_MEAN, NULL);
    cr_assert_float_eq(ig_item(y), want, 1e-12);
    ig_tensor_free(y);
    ig_tensor_free(t);
    ig_tensor_free(x);
    assert_no_live_bytes();
}

/* ---- errors ------------------------------------------------------------------------------ */

static void expect_error(ig_tensor *r, const char *op, const char *also) {
    cr_assert_null(r, "%s should have failed", op);
    cr_assert(strstr(ig_last_error(), op), "message '%s' lacks %s", ig_last_error(), op);
    if (also) cr_assert(strstr(ig_last_error(), also), "message '%s' lacks '%s'", ig_last_error(), also);
    ig_clear_error();
}

Test(core, class_loss_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_from_data(IG_DIMS(4, 3), IG_F64, LOGITS43);
    ig_tensor *bad = ig_from_data(IG_DIMS(4), IG_I64, (int64_t[]){0, 7, 1, 2});
    ig_clear_error();
    expect_error(ig_cross_entropy(x, bad, NULL), "ig_cross_entropy", "7");
    cr_assert_eq(ig_last_status(), IG_OK);
    expect_error(ig_cross_entropy(x, ig_from_data(IG_DIMS(4), IG_I32, (int32_t[]){0, 1, -1, 2}), NULL),
                 "ig_cross_entropy", "-1");
    /* Ignoring 7 makes the same target fine; ignoring something else does not. */
    cr_assert_not_null(ig_cross_entropy(x, bad, &(ig_ce_params){.use_ignore_index = true, .ignore_index = 7}));
    expect_error(ig_cross_entropy(x, bad, &(ig_ce_params){.use_ignore_index = true, .ignore_index = 1}),
                 "ig_cross_entropy", "7");
    expect_error(ig_nll_loss(x, bad, NULL), "ig_nll_loss", "7");
    /* Float or u8 target. */
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(4), IG_F64), NULL), "ig_cross_entropy", "float64");
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(4), IG_U8), NULL), "ig_cross_entropy", "uint8");
    /* Integer logits. */
    expect_error(ig_cross_entropy(ig_zeros(IG_DIMS(4, 3), IG_I64), ig_zeros(IG_DIMS(4), IG_I64), NULL),
                 "ig_cross_entropy", NULL);
    /* Shape mismatches. */
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(3), IG_I64), NULL), "ig_cross_entropy", "[3]");
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(4, 3), IG_I64), NULL), "ig_cross_entropy", "[4,3]");
    expect_error(ig_nll_loss(ig_zeros(IG_DIMS(2, 3, 4), IG_F64), ig_zeros(IG_DIMS(2, 3), IG_I64), NULL),
                 "ig_nll_loss", "[2,3,4]");
    expect_error(ig_cross_entropy(ig_scalar(1, IG_F64), ig_zeros(0, NULL, IG_I64), NULL), "ig_cross_entropy",
                 "0-dim");
    /* Options. */
    expect_error(ig_nll_loss(x, ig_zeros(IG_DIMS(4), IG_I64), &(ig_ce_params){.label_smoothing = 0.1}),
                 "ig_nll_loss", "label_smoothing");
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(4), IG_I64), &(ig_ce_params){.label_smoothing = 1.5}),
                 "ig_cross_entropy", "label_smoothing");
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(4), IG_I64), &(ig_ce_params){.label_smoothing = NAN}),
                 "ig_cross_entropy", "label_smoothing");
    expect_error(ig_cross_entropy(x, ig_zeros(IG_DIMS(4), IG_I64), &(ig_ce_params){.reduction = (ig_reduction)9}),
                 "ig_cross_entropy", "reduction");
    /* NULL arguments. */
    expect_error(ig_cross_entropy(NULL, bad, NULL), "ig_cross_entropy", "logits");
    expect_error(ig_cross_entropy(x, NULL, NULL), "ig_cross_entropy", "target");
    expect_error(ig_nll_loss(NULL, bad, NULL), "ig_nll_loss", "logp");
    /* A NULL keeps an earlier message (chains report their first failure). */
    ig_cross_entropy(x, bad, NULL);
    cr_assert_null(ig_cross_entropy(NULL, bad, NULL));
    cr_assert(strstr(ig_last_error(), "out of range"), "%s", ig_last_error());
    ig_clear_error();
    ig_scope_end(s);
}

Test(core, pointwise_loss_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(2, 3), IG_F64), *b = ig_zeros(IG_DIMS(3), IG_F64);
    const char *names[4] = {"ig_mse_loss", "ig_l1_loss", "ig_smooth_l1_loss", "ig_bce_with_logits"};
    ig_clear_error();
    for (int kind = 0; kind < 4; kind++) {
        expect_error(call_pointwise(kind, a, b, IG_REDUCTION_MEAN, 0), names[kind], "[2,3]");
        cr_assert(strstr(names[kind], "ig_") != NULL);
        expect_error(call_pointwise(kind, a, ig_zeros(IG_DIMS(2, 3), IG_F32), IG_REDUCTION_MEAN, 0), names[kind],
                     "float32");
        expect_error(call_pointwise(kind, ig_zeros(IG_DIMS(2, 3), IG_I64), ig_zeros(IG_DIMS(2, 3), IG_I64),
                                    IG_REDUCTION_MEAN, 0),
                     names[kind], NULL);
        expect_error(call_pointwise(kind, a, a, (ig_reduction)-1, 0), names[kind], "reduction");
        expect_error(call_pointwise(kind, NULL, a, IG_REDUCTION_SUM, 0), names[kind], NULL);
        expect_error(call_pointwise(kind, a, NULL, IG_REDUCTION_SUM, 0), names[kind], "target");
    }
    expect_error(ig_smooth_l1_loss(a, a, IG_REDUCTION_MEAN, -1), "ig_smooth_l1_loss", "beta");
    expect_error(ig_smooth_l1_loss(a, a, IG_REDUCTION_MEAN, NAN), "ig_smooth_l1_loss", "beta");
    expect_error(ig_smooth_l1_loss(a, a, IG_REDUCTION_MEAN, INFINITY), "ig_smooth_l1_loss", "beta");
    ig_scope_end(s);
}
