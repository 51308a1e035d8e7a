/*
 * tests/core/test_unary.c — the elementwise unary ops of core/ops/unary.c.
 *
 * Each op is described once (unary_specs: how to call it, its value and derivative written
 * with plain C math here, its input domain). From that table the tests check forward values
 * in f32 and f64 on every layout an elementwise kernel must handle (contiguous, transposed,
 * sliced with a step, expanded, size-1 dims, zero-size dims, 0-dim), backward values in f32
 * and f64 against the derivative formula, and ig_gradcheck in f64 on contiguous and
 * transposed inputs. Then: integer behaviour, special values (inf, NaN, huge |x|), and the
 * error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* ---- reference formulas (plain C, double) ------------------------------------------------ */

static double r_neg(double x, const double *p) { (void)p; return -x; }
static double d_neg(double x, const double *p) { (void)x; (void)p; return -1; }
static double r_pow(double x, const double *p) { return pow(x, p[0]); }
static double d_pow(double x, const double *p) { return p[0] * pow(x, p[0] - 1); }
static double r_exp(double x, const double *p) { (void)p; return exp(x); }
static double r_log(double x, const double *p) { (void)p; return log(x); }
static double d_log(double x, const double *p) { (void)p; return 1 / x; }
static double r_sqrt(double x, const double *p) { (void)p; return sqrt(x); }
static double d_sqrt(double x, const double *p) { (void)p; return 0.5 / sqrt(x); }
static double r_abs(double x, const double *p) { (void)p; return fabs(x); }
static double d_abs(double x, const double *p) { (void)p; return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double r_clamp(double x, const double *p) { return x < p[0] ? p[0] : x > p[1] ? p[1] : x; }
static double d_clamp(double x, const double *p) { return x >= p[0] && x <= p[1] ? 1 : 0; }
static double r_relu(double x, const double *p) { (void)p; return x > 0 ? x : 0; }
static double d_relu(double x, const double *p) { (void)p; return x > 0 ? 1 : 0; }
static double r_leaky(double x, const double *p) { return x > 0 ? x : p[0] * x; }
static double d_leaky(double x, const double *p) { return x > 0 ? 1 : p[0]; }
static double r_sigmoid(double x, const double *p) { (void)p; return 1 / (1 + exp(-x)); }
static double d_sigmoid(double x, const double *p) { double s = r_sigmoid(x, p); return s * (1 - s); }
static double r_tanh(double x, const double *p) { (void)p; return tanh(x); }
static double d_tanh(double x, const double *p) { (void)p; return 1 - tanh(x) * tanh(x); }
static double r_gelu(double x, const double *p) { (void)p; return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double d_gelu(double x, const double *p) {
    (void)p;
    return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-x * x / 2) / sqrt(2 * 3.14159265358979323846);
}
static double r_silu(double x, const double *p) { (void)p; return x / (1 + exp(-x)); }
static double d_silu(double x, const double *p) {
    double s = r_sigmoid(x, p);
    return s + x * s * (1 - s);
}

/* ---- calling the ops ----------------------------------------------------------------------- */

static ig_tensor *c_neg(ig_tensor *t, const double *p) { (void)p; return ig_neg(t); }
static ig_tensor *c_pow(ig_tensor *t, const double *p) { return ig_pow(t, p[0]); }
static ig_tensor *c_exp(ig_tensor *t, const double *p) { (void)p; return ig_exp(t); }
static ig_tensor *c_log(ig_tensor *t, const double *p) { (void)p; return ig_log(t); }
static ig_tensor *c_sqrt(ig_tensor *t, const double *p) { (void)p; return ig_sqrt(t); }
static ig_tensor *c_abs(ig_tensor *t, const double *p) { (void)p; return ig_abs(t); }
static ig_tensor *c_clamp(ig_tensor *t, const double *p) { return ig_clamp(t, p[0], p[1]); }
static ig_tensor *c_relu(ig_tensor *t, const double *p) { (void)p; return ig_relu(t); }
static ig_tensor *c_leaky(ig_tensor *t, const double *p) { return ig_leaky_relu(t, p[0]); }
static ig_tensor *c_sigmoid(ig_tensor *t, const double *p) { (void)p; return ig_sigmoid(t); }
static ig_tensor *c_tanh(ig_tensor *t, const double *p) { (void)p; return ig_tanh(t); }
static ig_tensor *c_gelu(ig_tensor *t, const double *p) { (void)p; return ig_gelu(t); }
static ig_tensor *c_silu(ig_tensor *t, const double *p) { (void)p; return ig_silu(t); }

typedef struct {
    const char *name; /* the public name, expected in error messages */
    ig_tensor *(*call)(ig_tensor *, const double *);
    double (*ref)(double, const double *);
    double (*dref)(double, const double *);
    double p[2];
    bool positive;   /* inputs must be > 0 */
    bool float_only; /* integer input is an IG_ERR_DTYPE */
} unary_spec;

/* Kinks (relu, abs, leaky at 0; clamp at -0.5 and 1) stay >= 0.1 away from the inputs below. */
static const unary_spec specs[] = {
    {"ig_neg", c_neg, r_neg, d_neg, {0, 0}, false, false},
    {"ig_pow", c_pow, r_pow, d_pow, {2, 0}, false, true},
    {"ig_pow", c_pow, r_pow, d_pow, {0.5, 0}, true, true},
    {"ig_pow", c_pow, r_pow, d_pow, {-1.5, 0}, true, true},
    {"ig_pow", c_pow, r_pow, d_pow, {3, 0}, false, true},
    {"ig_exp", c_exp, r_exp, r_exp, {0, 0}, false, true},
    {"ig_log", c_log, r_log, d_log, {0, 0}, true, true},
    {"ig_sqrt", c_sqrt, r_sqrt, d_sqrt, {0, 0}, true, true},
    {"ig_abs", c_abs, r_abs, d_abs, {0, 0}, false, false},
    {"ig_clamp", c_clamp, r_clamp, d_clamp, {-0.5, 1.0}, false, false},
    {"ig_relu", c_relu, r_relu, d_relu, {0, 0}, false, false},
    {"ig_leaky_relu", c_leaky, r_leaky, d_leaky, {0.1, 0}, false, true},
    {"ig_sigmoid", c_sigmoid, r_sigmoid, d_sigmoid, {0, 0}, false, true},
    {"ig_tanh", c_tanh, r_tanh, d_tanh, {0, 0}, false, true},
    {"ig_gelu", c_gelu, r_gelu, d_gelu, {0, 0}, false, true},
    {"ig_silu", c_silu, r_silu, d_silu, {0, 0}, false, true},
};
#define N_SPECS ((int)(sizeof specs / sizeof specs[0]))

/* ---- inputs ----------------------------------------------------------------------------- */

/* Value i of a deterministic input: in [-2.5, 2.5] or, for positive domains, [0.2, 2.7].
 * Values never come closer than 0.1 to the kinks 0, -0.5 and 1 (kept for gradcheck). */
static double input_value(int64_t i, bool positive) {
    static const double vals[] = {-1.3, -0.4, 0.7, 1.9, -2.2, 0.35, 2.4, -0.8, 0.15, -1.7, 1.3, -0.2};
    double v = vals[i % 12] + 0.013 * (double)(i / 12);
    return positive ? fabs(v) + 0.2 : v;
}

/* A contiguous tensor of shape filled with input_value. */
static ig_tensor *filled(int ndim, const int64_t *shape, ig_dtype dt, bool positive) {
    ig_tensor *t = ig_empty(ndim, shape, dt);
    cr_assert(t, "%s", ig_last_error());
    int64_t n = ig_tensor_numel(t);
    void *p = ig_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        if (dt == IG_F32) ((float *)p)[i] = (float)input_value(i, positive);
        else ((double *)p)[i] = input_value(i, positive);
    }
    return t;
}

enum { L_CONTIG, L_TRANSPOSED, L_SLICED, L_EXPANDED, L_SIZE1, L_ZERO, L_ZERO2, L_SCALAR, L_COUNT };
static const char *layout_names[] = {"contiguous", "transposed", "sliced", "expanded", "size-1",
                                     "zero-size", "zero-size-2", "0-dim"};

/* An input in the given layout (a view where the layout calls for one). */
static ig_tensor *make_layout(int layout, ig_dtype dt, bool positive) {
    switch (layout) {
    case L_CONTIG: return filled(IG_DIMS(3, 4), dt, positive);
    case L_TRANSPOSED: return ig_transpose(filled(IG_DIMS(4, 3), dt, positive), 0, 1);
    case L_SLICED: return ig_slice(ig_slice(filled(IG_DIMS(5, 7), dt, positive), 1, 1, 7, 2), 0, 0, 5, 2);
    case L_EXPANDED: return ig_expand(filled(IG_DIMS(3, 1), dt, positive), IG_DIMS(2, 3, 4));
    case L_SIZE1: return filled(IG_DIMS(1, 4, 1), dt, positive);
    case L_ZERO: return filled(IG_DIMS(0, 3), dt, positive);
    case L_ZERO2: return ig_transpose(filled(IG_DIMS(2, 0, 3), dt, positive), 0, 2);
    default: return ig_scalar(positive ? 0.7 : -0.7, dt);
    }
}

static bool close_to(double got, double want, double rtol, double atol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

/* ---- forward values --------------------------------------------------------------------- */

static void check_forward(const unary_spec *sp) {
    static const ig_dtype dts[2] = {IG_F32, IG_F64};
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = dts[k];
        double rtol = dt == IG_F32 ? 1e-5 : 1e-12, atol = dt == IG_F32 ? 1e-6 : 1e-14;
        for (int l = 0; l < L_COUNT; l++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *x = make_layout(l, dt, sp->positive);
            cr_assert(x, "%s", ig_last_error());
            if (l == L_TRANSPOSED || l == L_SLICED || l == L_EXPANDED)
                cr_assert(!ig_tensor_is_contiguous(x), "layout %s should not be contiguous", layout_names[l]);
            ig_tensor *y = sp->call(x, sp->p);
            cr_assert(y, "%s on %s: %s", sp->name, layout_names[l], ig_last_error());
            cr_assert_eq(ig_tensor_dtype(y), dt);
            cr_assert_eq(ig_tensor_ndim(y), ig_tensor_ndim(x));
            for (int d = 0; d < ig_tensor_ndim(x); d++) cr_assert_eq(ig_tensor_shape(y)[d], ig_tensor_shape(x)[d]);
            int64_t n = ig_tensor_numel(x);
            for (int64_t i = 0; i < n; i++) {
                double xi = ig_tensor_get(x, i);
                /* f32 ops see the exponent / bounds as floats too */
                double p[2] = {sp->p[0], sp->p[1]};
                if (dt == IG_F32) p[0] = (float)p[0], p[1] = (float)p[1];
                double want = sp->ref(xi, p), got = ig_tensor_get(y, i);
                cr_assert(close_to(got, want, rtol, atol), "%s(p=%g) %s %s elem %lld: x=%g got %.17g want %.17g",
                          sp->name, sp->p[0], ig_dtype_name(dt), layout_names[l], (long long)i, xi, got, want);
            }
            ig_scope_end(s);
        }
    }
}

/* ---- backward values (f32 and f64) against the derivative formula ------------------------ */

static void check_backward_values(const unary_spec *sp) {
    static const ig_dtype dts[2] = {IG_F32, IG_F64};
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = dts[k];
        double rtol = dt == IG_F32 ? 1e-4 : 1e-10, atol = dt == IG_F32 ? 1e-5 : 1e-12;
        ig_scope *s = ig_scope_begin();
        ig_tensor *base = filled(IG_DIMS(4, 3), dt, sp->positive);
        cr_assert(ig_set_requires_grad(base, true) == IG_OK);
        /* Through a transposed view, so the saved tensor is strided in backward. */
        ig_tensor *y = sp->call(ig_transpose(base, 0, 1), sp->p);
        cr_assert(y, "%s", ig_last_error());
        cr_assert(ig_backward(ig_sum(y, 0, NULL, false), NULL) == IG_OK, "%s: %s", sp->name, ig_last_error());
        ig_tensor *g = ig_grad(base);
        cr_assert(g);
        for (int64_t i = 0; i < 12; i++) {
            double xi = ig_tensor_get(base, i);
            double want = sp->dref(xi, sp->p), got = ig_tensor_get(g, i);
            cr_assert(close_to(got, want, rtol, atol), "%s(p=%g) %s grad elem %lld: x=%g got %.17g want %.17g",
                      sp->name, sp->p[0], ig_dtype_name(dt), (long long)i, xi, got, want);
        }
        ig_scope_end(s);
    }
}

/* ---- gradcheck ---------------------------------------------------------------------------- */

typedef struct {
    const unary_spec *sp;
    bool transposed;
} gc_ctx;

static ig_tensor *gc_fn(ig_tensor *const *in, int n, void *vctx) {
    (void)n;
    const gc_ctx *c = vctx;
    ig_tensor *x = c->transposed ? ig_transpose(in[0], 0, 1) : in[0];
    return c->sp->call(x, c->sp->p);
}

static void check_gradcheck(const unary_spec *sp) {
    for (int tr = 0; tr < 2; tr++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = filled(IG_DIMS(2, 3), IG_F64, sp->positive);
        cr_assert(ig_set_requires_grad(x, true) == IG_OK);
        gc_ctx c = {sp, tr == 1};
        ig_status st = ig_gradcheck(gc_fn, &x, 1, &c, NULL);
        cr_assert(st == IG_OK, "%s(p=%g)%s: %s", sp->name, sp->p[0], tr ? " transposed" : "", ig_last_error());
        ig_scope_end(s);
    }
}

static void check_all(int k) {
    check_forward(&specs[k]);
    check_backward_values(&specs[k]);
    check_gradcheck(&specs[k]);
    ig_mem_stats ms;
    ig_mem_get_stats(IG_CPU, &ms);
    cr_assert_eq(ms.live_bytes, 0, "%s leaked %lld bytes", specs[k].name, (long long)ms.live_bytes);
}

Test(core, unary_neg) { check_all(0); }
Test(core, unary_pow_2) { check_all(1); }
Test(core, unary_pow_half) { check_all(2); }
Test(core, unary_pow_minus_1_5) { check_all(3); }
Test(core, unary_pow_3) { check_all(4); }
Test(core, unary_exp) { check_all(5); }
Test(core, unary_log) { check_all(6); }
Test(core, unary_sqrt) { check_all(7); }
Test(core, unary_abs) { check_all(8); }
Test(core, unary_clamp) { check_all(9); }
Test(core, unary_relu) { check_all(10); }
Test(core, unary_leaky_relu) { check_all(11); }
Test(core, unary_sigmoid) { check_all(12); }
Test(core, unary_tanh) { check_all(13); }
Test(core, unary_gelu) { check_all(14); }
Test(core, unary_silu) { check_all(15); }

Test(core, unary_spec_table_matches_tests) { cr_assert_eq(N_SPECS, 16); }

/* ---- integers ----------------------------------------------------------------------------- */

Test(core, unary_integer_abs_neg_relu) {
    ig_scope *s = ig_scope_begin();
    int32_t a32[5] = {-3, 0, 5, INT32_MIN, INT32_MAX};
    ig_tensor *t32 = ig_from_data(IG_DIMS(5), IG_I32, a32);
    int32_t want_abs[5] = {3, 0, 5, INT32_MIN, INT32_MAX}; /* |INT32_MIN| wraps, as torch */
    int32_t want_neg[5] = {3, 0, -5, INT32_MIN, -INT32_MAX};
    int32_t want_relu[5] = {0, 0, 5, 0, INT32_MAX};
    ig_tensor *r[3] = {ig_abs(t32), ig_neg(t32), ig_relu(t32)};
    const int32_t *w[3] = {want_abs, want_neg, want_relu};
    for (int k = 0; k < 3; k++) {
        cr_assert(r[k], "%s", ig_last_error());
        cr_assert_eq(ig_tensor_dtype(r[k]), IG_I32);
        cr_assert(!ig_requires_grad(r[k]));
        const int32_t *p = ig_tensor_data(r[k]);
        for (int i = 0; i < 5; i++) cr_assert_eq(p[i], w[k][i], "op %d elem %d: %d vs %d", k, i, p[i], w[k][i]);
    }

    int64_t a64[4] = {-7, INT64_MIN, INT64_MAX, 0};
    ig_tensor *t64 = ig_from_data(IG_DIMS(2, 2), IG_I64, a64);
    const int64_t *ab = ig_tensor_data(ig_abs(t64));
    const int64_t *ng = ig_tensor_data(ig_neg(t64));
    const int64_t *rl = ig_tensor_data(ig_relu(ig_transpose(t64, 0, 1)));
    int64_t want_ab[4] = {7, INT64_MIN, INT64_MAX, 0};
    int64_t want_ng[4] = {7, INT64_MIN, -INT64_MAX, 0};
    int64_t want_rl[4] = {0, INT64_MAX, 0, 0}; /* transposed order: -7, INT64_MAX, INT64_MIN, 0 */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ab[i], want_ab[i]);
        cr_assert_eq(ng[i], want_ng[i]);
        cr_assert_eq(rl[i], want_rl[i], "relu elem %d", i);
    }

    uint8_t a8[4] = {0, 1, 128, 255};
    ig_tensor *t8 = ig_from_data(IG_DIMS(4), IG_U8, a8);
    const uint8_t *ab8 = ig_tensor_data(ig_abs(t8));
    const uint8_t *ng8 = ig_tensor_data(ig_neg(t8));
    const uint8_t *rl8 = ig_tensor_data(ig_relu(t8));
    uint8_t want_ng8[4] = {0, 255, 128, 1};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ab8[i], a8[i]);
        cr_assert_eq(rl8[i], a8[i]);
        cr_assert_eq(ng8[i], want_ng8[i]);
    }
    ig_scope_end(s);
}

Test(core, unary_integer_clamp) {
    ig_scope *s = ig_scope_begin();
    int32_t a32[6] = {-5, -2, 0, 3, 4, INT32_MIN};
    ig_tensor *t32 = ig_from_data(IG_DIMS(6), IG_I32, a32);
    /* Fractional bounds round inward: [-2.5, 3.7] holds the integers -2..3. */
    const int32_t *c = ig_tensor_data(ig_clamp(t32, -2.5, 3.7));
    int32_t want[6] = {-2, -2, 0, 3, 3, -2};
    for (int i = 0; i < 6; i++) cr_assert_eq(c[i], want[i], "elem %d: %d", i, c[i]);
    /* lo > hi: everything becomes hi, as torch */
    const int32_t *c2 = ig_tensor_data(ig_clamp(t32, 4, 1));
    for (int i = 0; i < 6; i++) cr_assert_eq(c2[i], 1);
    /* one-sided with infinities */
    const int32_t *c3 = ig_tensor_data(ig_clamp(t32, 0, INFINITY));
    int32_t want3[6] = {0, 0, 0, 3, 4, 0};
    for (int i = 0; i < 6; i++) cr_assert_eq(c3[i], want3[i]);

    /* int64 extremes survive an infinite clamp exactly (no trip through double) */
    int64_t a64[3] = {INT64_MAX, INT64_MAX - 1, INT64_MIN + 1};
    ig_tensor *t64 = ig_from_data(IG_DIMS(3), IG_I64, a64);
    const int64_t *c64 = ig_tensor_data(ig_clamp(t64, -INFINITY, INFINITY));
    for (int i = 0; i < 3; i++) cr_assert_eq(c64[i], a64[i]);
    const int64_t *c64b = ig_tensor_data(ig_clamp(t64, -1e30, 10));
    cr_assert_eq(c64b[0], 10);
    cr_assert_eq(c64b[2], INT64_MIN + 1);

    /* u8: bounds outside [0, 255] saturate */
    uint8_t a8[4] = {0, 7, 200, 255};
    ig_tensor *t8 = ig_from_data(IG_DIMS(4), IG_U8, a8);
    const uint8_t *c8 = ig_tensor_data(ig_clamp(t8, -10, 300));
    for (int i = 0; i < 4; i++) cr_assert_eq(c8[i], a8[i]);
    const uint8_t *c8b = ig_tensor_data(ig_clamp(t8, 5, 100));
    uint8_t want8[4] = {5, 7, 100, 100};
    for (int i = 0; i < 4; i++) cr_assert_eq(c8b[i], want8[i]);

    /* a NaN bound cannot be represented in an integer tensor */
    ig_clear_error();
    cr_assert_null(ig_clamp(t32, NAN, 1));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_clamp"), "%s", ig_last_error());
    ig_scope_end(s);
}

/* ---- special values ------------------------------------------------------------------------ */

static double get1(ig_tensor *t) {
    cr_assert(t, "%s", ig_last_error());
    return ig_item(t);
}

Test(core, unary_special_values) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < 2; k++) {
        ig_dtype dt = k ? IG_F64 : IG_F32;
        cr_assert(isinf(get1(ig_exp(ig_scalar(1000, dt)))) && get1(ig_exp(ig_scalar(1000, dt))) > 0);
        cr_assert_eq(get1(ig_exp(ig_scalar(-1000, dt))), 0.0);
        cr_assert(isinf(get1(ig_log(ig_scalar(0, dt)))) && get1(ig_log(ig_scalar(0, dt))) < 0);
        cr_assert(isnan(get1(ig_log(ig_scalar(-1, dt)))));
        cr_assert(isnan(get1(ig_sqrt(ig_scalar(-1, dt)))));
        cr_assert_eq(get1(ig_sigmoid(ig_scalar(-1000, dt))), 0.0);
        cr_assert_eq(get1(ig_sigmoid(ig_scalar(1000, dt))), 1.0);
        cr_assert_eq(get1(ig_sigmoid(ig_scalar(-INFINITY, dt))), 0.0);
        cr_assert_eq(get1(ig_sigmoid(ig_scalar(INFINITY, dt))), 1.0);
        cr_assert_eq(get1(ig_silu(ig_scalar(-1000, dt))), 0.0);
        cr_assert_eq(get1(ig_silu(ig_scalar(1000, dt))), 1000.0);
        cr_assert_eq(get1(ig_tanh(ig_scalar(1000, dt))), 1.0);
        cr_assert_eq(get1(ig_tanh(ig_scalar(-1000, dt))), -1.0);
        cr_assert_eq(get1(ig_gelu(ig_scalar(-40, dt))), 0.0);
        cr_assert_eq(get1(ig_gelu(ig_scalar(40, dt))), 40.0);
        /* torch: x^0 = 1 for every x, 0^0 included; 0^-1 = inf; negative^fraction = NaN */
        cr_assert_eq(get1(ig_pow(ig_scalar(0, dt), 0)), 1.0);
        cr_assert_eq(get1(ig_pow(ig_scalar(NAN, dt), 0)), 1.0);
        cr_assert(isinf(get1(ig_pow(ig_scalar(0, dt), -1))));
        cr_assert(isnan(get1(ig_pow(ig_scalar(-8, dt), 1.0 / 3))));
        /* NaN passes through relu and clamp */
        cr_assert(isnan(get1(ig_relu(ig_scalar(NAN, dt)))));
        cr_assert(isnan(get1(ig_clamp(ig_scalar(NAN, dt), -1, 1))));
        cr_assert(isnan(get1(ig_clamp(ig_scalar(0.5, dt), NAN, 1))));
        cr_assert_eq(get1(ig_relu(ig_scalar(-3, dt))), 0.0);
        cr_assert_eq(get1(ig_abs(ig_scalar(-INFINITY, dt))), INFINITY);
        /* float clamp with lo > hi gives hi everywhere */
        cr_assert_eq(get1(ig_clamp(ig_scalar(-5, dt), 2, 1)), 1.0);
        cr_assert_eq(get1(ig_clamp(ig_scalar(5, dt), 2, 1)), 1.0);
        cr_assert_eq(get1(ig_clamp(ig_scalar(1.5, dt), 2, 1)), 1.0);
    }
    ig_scope_end(s);
}

/* Gradient of op at a single f64 point x (through sum for a scalar output). */
static double grad_at(ig_tensor *(*call)(ig_tensor *, const double *), const double *p, double x) {
    ig_tensor *t = ig_scalar(x, IG_F64);
    cr_assert(ig_set_requires_grad(t, true) == IG_OK);
    ig_tensor *y = call(t, p);
    cr_assert(y, "%s", ig_last_error());
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    return ig_item(ig_grad(t));
}

Test(core, unary_special_gradients) {
    ig_scope *s = ig_scope_begin();
    double none[2] = {0, 0};
    /* kinks: torch's conventions */
    cr_assert_eq(grad_at(c_relu, none, 0.0), 0.0);
    cr_assert_eq(grad_at(c_abs, none, 0.0), 0.0);
    cr_assert_eq(grad_at(c_abs, none, -2.0), -1.0);
    double slope[2] = {0.2, 0};
    cr_assert_eq(grad_at(c_leaky, slope, 0.0), 0.2);
    double cl[2] = {-1, 2};
    cr_assert_eq(grad_at(c_clamp, cl, -1.0), 1.0); /* bounds are inclusive */
    cr_assert_eq(grad_at(c_clamp, cl, 2.0), 1.0);
    cr_assert_eq(grad_at(c_clamp, cl, 2.5), 0.0);
    cr_assert_eq(grad_at(c_clamp, cl, -1.5), 0.0);
    double crossed[2] = {2, 1};
    cr_assert_eq(grad_at(c_clamp, crossed, 1.5), 0.0); /* lo > hi: constant hi */
    /* pow: exponent 0 has gradient 0 even at x = 0 (no 0 * inf NaN) */
    double e0[2] = {0, 0}, e1[2] = {1, 0}, e2[2] = {2, 0};
    cr_assert_eq(grad_at(c_pow, e0, 0.0), 0.0);
    cr_assert_eq(grad_at(c_pow, e1, 0.0), 1.0);
    cr_assert_eq(grad_at(c_pow, e2, 0.0), 0.0);
    cr_assert_eq(grad_at(c_pow, e2, -3.0), -6.0);
    /* saturated sigmoid/tanh/silu/gelu have gradient 0 or 1, never NaN */
    cr_assert_eq(grad_at(c_sigmoid, none, -1000), 0.0);
    cr_assert_eq(grad_at(c_sigmoid, none, 1000), 0.0);
    cr_assert_eq(grad_at(c_tanh, none, 1000), 0.0);
    cr_assert_eq(grad_at(c_silu, none, -1000), 0.0);
    cr_assert_eq(grad_at(c_silu, none, 1000), 1.0);
    cr_assert_eq(grad_at(c_gelu, none, -40), 0.0);
    cr_assert_eq(grad_at(c_gelu, none, 40), 1.0);
    cr_assert_eq(grad_at(c_exp, none, -1000), 0.0);
    /* log'(0) = inf, as torch */
    cr_assert(isinf(grad_at(c_log, none, 0.0)));
    ig_scope_end(s);
}

/* Ops on heap tensors (no scope): an op whose backward reads its own output must not keep
 * that output alive through its node; everything is freed. */
Test(core, unary_heap_tensors_free_cleanly) {
    ig_manual_seed(3);
    ig_tensor *x = ig_randn(IG_DIMS(5), IG_F64);
    cr_assert(ig_set_requires_grad(x, true) == IG_OK);
    ig_tensor *y = ig_sigmoid(x);
    ig_tensor *z = ig_exp(y);
    ig_tensor *l = ig_sum(z, 0, NULL, false);
    cr_assert(l, "%s", ig_last_error());
    cr_assert(ig_backward(l, NULL) == IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 5; i++) {
        double xi = ig_tensor_get(x, i), s = 1 / (1 + exp(-xi));
        cr_assert(close_to(ig_tensor_get(ig_grad(x), i), exp(s) * s * (1 - s), 1e-12, 1e-14));
    }
    ig_tensor_free(l);
    ig_tensor_free(z);
    ig_tensor_free(y);
    ig_tensor_free(x);
    assert_no_live_bytes();
}

Test(core, unary_no_grad_mode_records_nothing) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_DIMS(3), IG_F64);
    ig_set_requires_grad(x, true);
    ig_no_grad_begin();
    ig_tensor *y = ig_tanh(x);
    ig_no_grad_end();
    cr_assert(!ig_requires_grad(y));
    cr_assert(ig_is_leaf(y));
    ig_scope_end(s);
}

/* ---- errors ------------------------------------------------------------------------------ */

Test(core, unary_dtype_errors) {
    ig_scope *s = ig_scope_begin();
    static const ig_dtype ints[3] = {IG_I32, IG_I64, IG_U8};
    for (int d = 0; d < 3; d++) {
        ig_tensor *t = ig_zeros(IG_DIMS(2, 2), ints[d]);
        for (int k = 0; k < N_SPECS; k++) {
            ig_clear_error();
            ig_tensor *y = specs[k].call(t, specs[k].p);
            if (!specs[k].float_only) {
                cr_assert(y, "%s on %s: %s", specs[k].name, ig_dtype_name(ints[d]), ig_last_error());
                cr_assert_eq(ig_tensor_dtype(y), ints[d]);
                continue;
            }
            cr_assert_null(y, "%s accepted %s", specs[k].name, ig_dtype_name(ints[d]));
            cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
            cr_assert(strstr(ig_last_error(), specs[k].name), "%s", ig_last_error());
            cr_assert(strstr(ig_last_error(), ig_dtype_name(ints[d])), "%s", ig_last_error());
        }
    }
    ig_scope_end(s);
}

Test(core, unary_null_arguments) {
    for (int k = 0; k < N_SPECS; k++) {
        ig_clear_error();
        cr_assert_null(specs[k].call(NULL, specs[k].p));
        cr_assert_eq(ig_last_status(), IG_ERR_ARG);
        cr_assert(strstr(ig_last_error(), specs[k].name), "%s", ig_last_error());
    }
    /* A chain reports its first failure. */
    ig_clear_error();
    cr_assert_null(ig_sigmoid(ig_exp(ig_log(NULL))));
    cr_assert(strstr(ig_last_error(), "ig_log"), "%s", ig_last_error());
    cr_assert(!strstr(ig_last_error(), "ig_sigmoid"), "%s", ig_last_error());
}
