/*
 * tests/cuda/test_cuda_nn.c — the neural-network ops (conv2d, pools, class and pointwise
 * losses, batch and layer norm, dropout, index_select/embedding) and training (optimizer
 * steps, a few SGD steps of zoo models) on CUDA against the CPU, forward, backward and
 * gradcheck. Suites as in test_cuda.c: `cuda` (skips without a device) and `cuda_harness`
 * (the same checks with the CPU as the device under test, so the test code runs anywhere).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/tensor_impl.h" /* igi_batch_norm_sync */
#include "cuda_test_util.h"
#include "ignis.h"

static const ig_dtype float_dtypes[] = {IG_F32, IG_F64};

/* ---- neural-network ops (conv2d, pools, batch norm, class losses) ------------------------------ */

/* Forward and backward of one op on d vs the CPU: y = fn(inputs); loss = sum(y * r) for a
 * fixed random r; the gradients of every input must match. */
typedef ig_tensor *(*nn_fn)(ig_tensor *const *in, int n, void *cfg);

static void nn_parity(ig_device d, const char *what, nn_fn fn, const void *cfg, int n, ig_tensor *const *cpu_in) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *xc[4], *xd[4];
    for (int i = 0; i < n; i++) {
        xc[i] = ig_clone(cpu_in[i]);
        xd[i] = d == IG_CPU ? ig_clone(cpu_in[i]) : on(cpu_in[i], d);
        cr_assert_eq(ig_set_requires_grad(xc[i], true), IG_OK);
        cr_assert_eq(ig_set_requires_grad(xd[i], true), IG_OK, "%s", ig_last_error());
    }
    ig_tensor *yc = fn(xc, n, (void *)cfg), *yd = fn(xd, n, (void *)cfg);
    char w[200];
    snprintf(w, sizeof w, "%s forward", what);
    expect_match(yd, yc, d, w);
    ig_tensor *r = data(ig_tensor_dtype(yc), ig_tensor_ndim(yc), ig_tensor_shape(yc), false);
    ig_tensor *lc = ig_sum(ig_mul(yc, r), 0, NULL, false), *ld = ig_sum(ig_mul(yd, on(r, d)), 0, NULL, false);
    cr_assert_eq(ig_backward(lc, NULL), IG_OK, "%s: %s", what, ig_last_error());
    cr_assert_eq(ig_backward(ld, NULL), IG_OK, "%s backward: %s", what, ig_last_error());
    for (int i = 0; i < n; i++) {
        snprintf(w, sizeof w, "%s grad of input %d", what, i);
        expect_match(ig_grad(xd[i]), ig_grad(xc[i]), d, w);
    }
    ig_scope_end(s);
}

/* gradcheck of fn on d in f64 (inputs made from the CPU tensors). */
static void nn_gradcheck(ig_device d, const char *what, nn_fn fn, const void *cfg, int n, ig_tensor *const *cpu_in) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *x[4];
    for (int i = 0; i < n; i++) {
        x[i] = d == IG_CPU ? ig_clone(ig_to_dtype(cpu_in[i], IG_F64)) : on(ig_to_dtype(cpu_in[i], IG_F64), d);
        cr_assert_eq(ig_set_requires_grad(x[i], true), IG_OK, "%s", ig_last_error());
    }
    cr_assert_eq(ig_gradcheck(fn, x, n, (void *)cfg, NULL), IG_OK, "gradcheck %s on %s: %s",
                 what, d == IG_CPU ? "cpu" : "cuda", ig_last_error());
    ig_scope_end(s);
}

/* conv2d: x [N,C,H,W], w [O,C/g,kh,kw], optional bias; strided: x is a transposed view. */
typedef struct {
    int64_t N, C, H, W, O, kh, kw;
    ig_conv2d_params p;
    bool bias, strided;
} conv_case;
static const conv_case conv_cases[] = {
    {2, 3, 7, 6, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, false},
    {3, 4, 9, 8, 6, 3, 2, {{2, 1}, {1, 0}, {1, 2}, 2}, true, false},
    {2, 2, 5, 5, 3, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 1}, false, false},
    {1, 6, 6, 7, 6, 3, 3, {{2, 2}, {2, 1}, {2, 1}, 6}, true, true},
    {4, 1, 4, 4, 2, 4, 4, {{1, 1}, {0, 0}, {1, 1}, 1}, true, false},
    {2, 3, 8, 8, 5, 5, 3, {{3, 2}, {2, 1}, {1, 1}, 1}, false, true},
};

static ig_tensor *f_conv(ig_tensor *const *in, int n, void *cfg) {
    const conv_case *c = cfg;
    ig_tensor *x = c->strided ? ig_transpose(in[0], 2, 3) : in[0];
    return ig_conv2d(x, in[1], n > 2 ? in[2] : NULL, &c->p);
}

static int conv_inputs(const conv_case *c, ig_dtype dt, ig_tensor **in) {
    int64_t g = c->p.groups ? c->p.groups : 1;
    int64_t xs[4] = {c->N, c->C, c->strided ? c->W : c->H, c->strided ? c->H : c->W};
    in[0] = data(dt, 4, xs, false);
    in[1] = data(dt, 4, (const int64_t[]){c->O, c->C / g, c->kh, c->kw}, false);
    if (!c->bias) return 2;
    in[2] = data(dt, 1, &c->O, false);
    return 3;
}

static void check_conv(ig_device d, bool grad_check) {
    ig_manual_seed(11);
    for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *in[3];
            int n = conv_inputs(&conv_cases[k], float_dtypes[t], in);
            char what[120];
            snprintf(what, sizeof what, "ig_conv2d case %zu %s", k, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_conv, &conv_cases[k], n, in);
            if (grad_check && t == 1 && k < 4) nn_gradcheck(d, what, f_conv, &conv_cases[k], n, in);
            ig_scope_end(s);
        }
    }
    /* A batch large enough for several chunks is not needed for parity: the chunking only
     * changes the GEMM shapes. Errors keep the CPU's messages. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = on(data(IG_F32, 4, (const int64_t[]){1, 3, 4, 4}, false), d);
    ig_tensor *w = on(data(IG_F32, 4, (const int64_t[]){2, 2, 3, 3}, false), d);
    cr_assert_null(ig_conv2d(x, w, NULL, NULL));
    cr_assert(strstr(ig_last_error(), "ig_conv2d: input channels 3"), "%s", ig_last_error());
    ig_scope_end(s);
}

/* The two CUDA paths of f32 conv2d (cuda/conv_igemm.cu; core/backend_impl.h): implicit
 * GEMM and im2col + cuBLAS, forced in turn; a no-op on the CPU harness. */
#ifdef IGNIS_CUDA
int igi_cuda_conv_force(int mode);
int64_t igi_cuda_profiled_calls(void);
#endif
enum { CONV_PATH_AUTO = 0, CONV_PATH_IM2COL = 1, CONV_PATH_IGEMM = 2 };
static int conv_path_force(int mode) {
#ifdef IGNIS_CUDA
    return igi_cuda_conv_force(mode);
#else
    (void)mode;
    return CONV_PATH_AUTO;
#endif
}

/* f32 shapes for both paths: the zoo's convolutions at batch 3 (cnn: 1->32 and 32->64 at
 * 28 and 14; resnet: the 1->16 stem, 16/32/64-channel 3x3 convs with stride 1 and 2, the
 * 1x1 stride-2 shortcuts), then odd sizes with C and O off the tile widths, strided
 * (transposed) inputs, dilation, uneven stride and padding. */
static const conv_case conv_path_cases[] = {
    {3, 1, 28, 28, 32, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, false},
    {3, 32, 14, 14, 64, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, false},
    {3, 1, 28, 28, 16, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 16, 28, 28, 16, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 16, 28, 28, 32, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 32, 14, 14, 32, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 32, 14, 14, 64, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 64, 7, 7, 64, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 16, 28, 28, 32, 1, 1, {{2, 2}, {0, 0}, {1, 1}, 1}, false, false},
    {3, 32, 14, 14, 64, 1, 1, {{2, 2}, {0, 0}, {1, 1}, 1}, false, false},
    {3, 3, 5, 5, 5, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, false},
    {3, 3, 7, 7, 5, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 1}, false, false},
    {3, 3, 7, 5, 5, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},
    {2, 5, 9, 9, 70, 3, 3, {{1, 1}, {2, 2}, {2, 2}, 1}, true, true},
    {2, 4, 9, 8, 6, 3, 2, {{2, 1}, {1, 0}, {1, 2}, 1}, true, false},
    {2, 20, 6, 7, 40, 5, 3, {{3, 2}, {2, 1}, {1, 1}, 1}, false, true},
};

/* Each case on d with each path forced: forward and every gradient against the CPU. */
static void check_conv_paths(ig_device d) {
    ig_manual_seed(12);
    const int paths[2] = {CONV_PATH_IGEMM, CONV_PATH_IM2COL};
    for (size_t k = 0; k < sizeof conv_path_cases / sizeof conv_path_cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *in[3];
        int n = conv_inputs(&conv_path_cases[k], IG_F32, in);
        for (int i = 0; i < 2; i++) {
            char what[120];
            snprintf(what, sizeof what, "ig_conv2d path case %zu %s", k, i == 0 ? "implicit gemm" : "im2col");
            int prev = conv_path_force(paths[i]);
            nn_parity(d, what, f_conv, &conv_path_cases[k], n, in);
            conv_path_force(prev);
        }
        ig_scope_end(s);
    }
}

/* y, dx, dw and db of one forward + backward on d into host buffers (f32). */
static void conv_run_host(ig_device d, ig_tensor *const *cpu_in, const conv_case *c, float *out[4]) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *xd[3];
    for (int i = 0; i < 3; i++) {
        xd[i] = d == IG_CPU ? ig_clone(cpu_in[i]) : on(cpu_in[i], d);
        cr_assert_eq(ig_set_requires_grad(xd[i], true), IG_OK, "%s", ig_last_error());
    }
    ig_tensor *y = f_conv(xd, 3, (void *)c);
    cr_assert(y, "%s", ig_last_error());
    ig_tensor *r = on(data(IG_F32, 4, ig_tensor_shape(y), false), d);
    cr_assert_eq(ig_backward(ig_sum(ig_mul(y, r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    ig_tensor *t[4] = {y, ig_grad(xd[0]), ig_grad(xd[1]), ig_grad(xd[2])};
    for (int i = 0; i < 4; i++) {
        int64_t n = ig_tensor_numel(t[i]);
        out[i] = malloc(sizeof(float) * (size_t)n);
        cr_assert(out[i]);
        cr_assert_eq(ig_tensor_to_buffer(t[i], IG_F32, out[i], n), IG_OK, "%s", ig_last_error());
    }
    ig_scope_end(s);
}

/* The implicit GEMM is deterministic: the weight gradient's reduction is split into
 * slices (several here: 8 images of 28x28) added in a fixed order, so two runs agree bit
 * for bit. */
static void check_conv_deterministic(ig_device d) {
    ig_manual_seed(13);
    const conv_case c = {8, 16, 28, 28, 16, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, false};
    ig_scope *s = ig_scope_begin();
    ig_tensor *in[3];
    cr_assert_eq(conv_inputs(&c, IG_F32, in), 3);
    const int64_t counts[4] = {c.N * c.O * c.H * c.W, c.N * c.C * c.H * c.W, c.O * c.C * c.kh * c.kw, c.O};
    int prev = conv_path_force(CONV_PATH_IGEMM);
    float *a[4], *b[4];
    ig_manual_seed(14);
    conv_run_host(d, in, &c, a);
    ig_manual_seed(14);
    conv_run_host(d, in, &c, b);
    conv_path_force(prev);
    const char *names[4] = {"y", "dx", "dw", "db"};
    for (int i = 0; i < 4; i++) {
        cr_expect(memcmp(a[i], b[i], sizeof(float) * (size_t)counts[i]) == 0, "%s differs between two runs", names[i]);
        free(a[i]);
        free(b[i]);
    }
    ig_scope_end(s);
}

/* Pools: kind 0 max, 1 avg, 2 adaptive avg. */
typedef struct {
    int kind;
    int64_t shape[4];
    int ndim;
    ig_pool2d_params p;
    int64_t oh, ow;
    bool strided;
} pool_case;
static const pool_case pool_cases[] = {
    {0, {2, 3, 8, 8}, 4, {{2, 2}, {0, 0}, {0, 0}, false, false}, 0, 0, false},
    {0, {2, 2, 7, 9}, 4, {{3, 2}, {2, 1}, {1, 1}, true, false}, 0, 0, false},
    {0, {3, 5, 6}, 3, {{2, 3}, {1, 2}, {1, 0}, false, false}, 0, 0, true},
    {1, {2, 3, 8, 8}, 4, {{2, 2}, {0, 0}, {0, 0}, false, false}, 0, 0, false},
    {1, {2, 2, 7, 9}, 4, {{3, 3}, {2, 2}, {1, 1}, true, false}, 0, 0, true},
    {1, {1, 2, 7, 5}, 4, {{3, 2}, {2, 1}, {1, 1}, false, true}, 0, 0, false},
    {2, {2, 3, 7, 9}, 4, {{0, 0}, {0, 0}, {0, 0}, false, false}, 3, 4, false},
    {2, {2, 3, 5, 5}, 4, {{0, 0}, {0, 0}, {0, 0}, false, false}, 1, 1, true},
    {2, {3, 6, 4}, 3, {{0, 0}, {0, 0}, {0, 0}, false, false}, 4, 6, false},
};

static ig_tensor *f_pool(ig_tensor *const *in, int n, void *cfg) {
    (void)n;
    const pool_case *c = cfg;
    ig_tensor *x = c->strided ? ig_transpose(in[0], c->ndim - 2, c->ndim - 1) : in[0];
    if (c->kind == 0) return ig_max_pool2d(x, &c->p);
    if (c->kind == 1) return ig_avg_pool2d(x, &c->p);
    return ig_adaptive_avg_pool2d(x, c->oh, c->ow);
}

static void check_pool(ig_device d, bool grad_check) {
    ig_manual_seed(12);
    for (size_t k = 0; k < sizeof pool_cases / sizeof pool_cases[0]; k++) {
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            const pool_case *c = &pool_cases[k];
            int64_t sh[4];
            memcpy(sh, c->shape, sizeof sh);
            if (c->strided) {
                int64_t tmp = sh[c->ndim - 1];
                sh[c->ndim - 1] = sh[c->ndim - 2];
                sh[c->ndim - 2] = tmp;
            }
            ig_tensor *in[1] = {data(float_dtypes[t], c->ndim, sh, false)};
            char what[120];
            snprintf(what, sizeof what, "pool case %zu (kind %d) %s", k, c->kind, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_pool, c, 1, in);
            if (grad_check && t == 1) nn_gradcheck(d, what, f_pool, c, 1, in);
            ig_scope_end(s);
        }
    }
    /* Ties and NaN: the first maximum and the first NaN win, as on the CPU. */
    ig_scope *s = ig_scope_begin();
    float xv[16] = {0};
    xv[5] = NAN;
    xv[10] = xv[11] = 2.0f;
    ig_tensor *x = ig_from_data(4, (const int64_t[]){1, 1, 4, 4}, IG_F32, xv);
    nn_parity(d, "max pool ties and NaN", f_pool, &pool_cases[0], 1, &x);
    ig_scope_end(s);
}

/* Class losses: fused (cross-entropy) or NLL over scores of shape xs (class dim 1, or 0 when
 * 1-D), targets random in [0, C) with every third one set to ignore (when ignoring). */
typedef struct {
    bool fused;
    int ndim;
    int64_t xs[3];
    ig_ce_params p;
    bool i32;
} ce_case;
static const ce_case ce_cases[] = {
    {true, 2, {6, 5}, {IG_REDUCTION_MEAN, false, 0, 0.0}, false},
    {true, 2, {6, 5}, {IG_REDUCTION_SUM, true, 2, 0.1}, false},
    {true, 3, {3, 4, 5}, {IG_REDUCTION_NONE, true, -100, 0.25}, true},
    {true, 1, {7}, {IG_REDUCTION_MEAN, false, 0, 0.0}, false},
    {true, 2, {4, 3}, {IG_REDUCTION_MEAN, true, -100, 0.0}, false},
    {false, 2, {6, 5}, {IG_REDUCTION_MEAN, true, 1, 0.0}, false},
    {false, 3, {3, 4, 5}, {IG_REDUCTION_NONE, false, 0, 0.0}, true},
};

typedef struct {
    const ce_case *c;
    ig_tensor *target; /* on the CPU */
} ce_ctx;

static ig_tensor *f_ce(ig_tensor *const *in, int n, void *cfg) {
    (void)n;
    const ce_ctx *cx = cfg;
    ig_tensor *t = ig_to(cx->target, ig_tensor_device(in[0]));
    if (cx->c->fused) return ig_cross_entropy(in[0], t, &cx->c->p);
    return ig_nll_loss(ig_log_softmax(in[0], cx->c->ndim > 1 ? 1 : 0), t, &cx->c->p);
}

static void check_class_loss(ig_device d, bool grad_check) {
    ig_manual_seed(13);
    for (size_t k = 0; k < sizeof ce_cases / sizeof ce_cases[0]; k++) {
        const ce_case *c = &ce_cases[k];
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            int cd = c->ndim > 1 ? 1 : 0;
            int64_t ts[3];
            int tn = 0;
            for (int i = 0; i < c->ndim; i++)
                if (i != cd) ts[tn++] = c->xs[i];
            ig_tensor *target = ig_randint(0, c->xs[cd], tn, ts, IG_I64);
            cr_assert(target);
            int64_t npos = ig_tensor_numel(target), tv[64];
            cr_assert(npos <= 64);
            cr_assert_eq(ig_tensor_to_buffer(target, IG_I64, tv, npos), IG_OK);
            if (c->p.use_ignore_index)
                for (int64_t i = 0; i < npos; i += 3) tv[i] = c->p.ignore_index;
            target = ig_to_dtype(ig_from_data(tn, ts, IG_I64, tv), c->i32 ? IG_I32 : IG_I64);
            ce_ctx cx = {c, target};
            ig_tensor *in[1] = {data(float_dtypes[t], c->ndim, c->xs, false)};
            char what[120];
            snprintf(what, sizeof what, "class loss case %zu %s", k, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_ce, &cx, 1, in);
            if (grad_check && t == 1) nn_gradcheck(d, what, f_ce, &cx, 1, in);
            ig_scope_end(s);
        }
    }
    /* Every position ignored: the mean is NaN on both. An out-of-range target is reported
     * as on the CPU. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = data(IG_F32, 2, (const int64_t[]){3, 4}, false);
    ig_tensor *t = ig_full(1, (const int64_t[]){3}, IG_I64, -100.0);
    ig_ce_params ip = {IG_REDUCTION_MEAN, true, -100, 0.0};
    expect_match(ig_cross_entropy(on(x, d), on(t, d), &ip), ig_cross_entropy(x, t, &ip), d, "all ignored");
    ig_tensor *bad = ig_from_data(1, (const int64_t[]){3}, IG_I64, (const int64_t[]){1, 1, 4});
    cr_assert_null(ig_cross_entropy(on(x, d), on(bad, d), NULL));
    cr_assert_str_eq(ig_last_error(), "ig_cross_entropy: target value 4 at position 2 is out of range [0, 4)");
    ig_scope_end(s);
}

/* Pointwise losses: kind 0 mse, 1 l1, 2 smooth_l1 (beta 0.7), 3 bce_with_logits (targets
 * in [0, 1)); every reduction; the target is a transposed view in one case. */
typedef struct {
    int kind;
    ig_reduction r;
    bool strided;
} pw_case;
static const pw_case pw_cases[] = {
    {0, IG_REDUCTION_MEAN, false}, {0, IG_REDUCTION_NONE, true}, {1, IG_REDUCTION_SUM, false},
    {1, IG_REDUCTION_MEAN, true},  {2, IG_REDUCTION_MEAN, false}, {2, IG_REDUCTION_NONE, true},
    {3, IG_REDUCTION_MEAN, false}, {3, IG_REDUCTION_SUM, true},
};

static ig_tensor *f_pw(ig_tensor *const *in, int n, void *cfg) {
    (void)n;
    const pw_case *c = cfg;
    ig_tensor *x = in[0], *y = c->strided ? ig_transpose(in[1], 0, 1) : in[1];
    switch (c->kind) {
    case 0: return ig_mse_loss(x, y, c->r);
    case 1: return ig_l1_loss(x, y, c->r);
    case 2: return ig_smooth_l1_loss(x, y, c->r, 0.7);
    default: return ig_bce_with_logits(x, ig_sigmoid(y), c->r);
    }
}

static void check_pointwise_loss(ig_device d, bool grad_check) {
    ig_manual_seed(15);
    for (size_t k = 0; k < sizeof pw_cases / sizeof pw_cases[0]; k++) {
        const pw_case *c = &pw_cases[k];
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *in[2] = {data(float_dtypes[t], 2, (const int64_t[]){5, 6}, false),
                                data(float_dtypes[t], 2, c->strided ? (const int64_t[]){6, 5} : (const int64_t[]){5, 6}, false)};
            char what[120];
            snprintf(what, sizeof what, "pointwise loss case %zu %s", k, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_pw, c, 2, in);
            if (grad_check && t == 1) nn_gradcheck(d, what, f_pw, c, 2, in);
            ig_scope_end(s);
        }
    }
}

/* Layer norm over the last n dims; affine or not; x strided (its last two dims swapped). */
typedef struct {
    int ndim, n;
    int64_t xs[4];
    bool affine, strided;
} ln_case;
static const ln_case ln_cases[] = {
    {2, 1, {4, 6}, true, false},
    {4, 2, {2, 3, 4, 5}, false, false},
    {3, 1, {3, 5, 7}, true, true},
    {3, 2, {2, 4, 3}, true, false},
};

static ig_tensor *f_ln(ig_tensor *const *in, int n, void *cfg) {
    const ln_case *c = cfg;
    ig_tensor *x = c->strided ? ig_transpose(in[0], c->ndim - 2, c->ndim - 1) : in[0];
    return ig_layer_norm(x, c->n, ig_tensor_shape(x) + c->ndim - c->n, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL,
                         1e-5);
}

static void check_layer_norm(ig_device d, bool grad_check) {
    ig_manual_seed(16);
    for (size_t k = 0; k < sizeof ln_cases / sizeof ln_cases[0]; k++) {
        const ln_case *c = &ln_cases[k];
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            int64_t xs[4];
            memcpy(xs, c->xs, sizeof xs);
            if (c->strided) {
                int64_t tmp = xs[c->ndim - 1];
                xs[c->ndim - 1] = xs[c->ndim - 2];
                xs[c->ndim - 2] = tmp;
            }
            ig_tensor *in[3] = {data(float_dtypes[t], c->ndim, xs, false), NULL, NULL};
            int n = 1;
            if (c->affine) {
                in[1] = data(float_dtypes[t], c->n, c->xs + c->ndim - c->n, true);
                in[2] = data(float_dtypes[t], c->n, c->xs + c->ndim - c->n, false);
                n = 3;
            }
            char what[120];
            snprintf(what, sizeof what, "layer norm case %zu %s", k, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_ln, c, n, in);
            if (grad_check && t == 1) nn_gradcheck(d, what, f_ln, c, n, in);
            ig_scope_end(s);
        }
    }
}

/* Dropout: the seed is set before each call, so the device and the CPU draw the same
 * Philox words and must drop the same elements (and gradcheck sees one fixed mask). */
typedef struct {
    double p;
    bool strided;
} dropout_case;
static const dropout_case dropout_cases[] = {{0.3, false}, {0.5, true}, {1.0, false}, {0.0, false}};

static ig_tensor *f_dropout(ig_tensor *const *in, int n, void *cfg) {
    (void)n;
    const dropout_case *c = cfg;
    ig_manual_seed(77);
    return ig_dropout(c->strided ? ig_transpose(in[0], 0, 1) : in[0], c->p, true);
}

static void check_dropout(ig_device d, bool grad_check) {
    for (size_t k = 0; k < sizeof dropout_cases / sizeof dropout_cases[0]; k++) {
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            ig_manual_seed(17);
            ig_tensor *in[1] = {data(float_dtypes[t], 2, (const int64_t[]){7, 9}, true)};
            char what[120];
            snprintf(what, sizeof what, "dropout case %zu %s", k, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_dropout, &dropout_cases[k], 1, in);
            if (grad_check && t == 1) nn_gradcheck(d, what, f_dropout, &dropout_cases[k], 1, in);
            ig_scope_end(s);
        }
    }
}

/* index_select along each dim (repeated indices, int32 and int64, a strided source) and
 * embedding (2-D indices); the index lives on the same device as the data. */
typedef struct {
    int kind; /* 0 index_select, 1 embedding */
    int dim;
    bool i32, strided;
} isel_case;
static const isel_case isel_cases[] = {{0, 0, false, false}, {0, 1, true, true}, {0, 2, false, false}, {1, 0, false, false},
                                       {1, 0, true, false}};
typedef struct {
    const isel_case *c;
    ig_tensor *index; /* on the CPU */
} isel_ctx;

static ig_tensor *f_isel(ig_tensor *const *in, int n, void *cfg) {
    (void)n;
    const isel_ctx *cx = cfg;
    ig_tensor *ix = ig_to(cx->index, ig_tensor_device(in[0]));
    if (cx->c->kind == 1) return ig_embedding(ix, in[0]);
    return ig_index_select(cx->c->strided ? ig_transpose(in[0], 0, 2) : in[0], cx->c->dim, ix);
}

static void check_index_select(ig_device d, bool grad_check) {
    ig_manual_seed(18);
    for (size_t k = 0; k < sizeof isel_cases / sizeof isel_cases[0]; k++) {
        const isel_case *c = &isel_cases[k];
        for (size_t t = 0; t < 2; t++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *in[1];
            ig_tensor *ix;
            if (c->kind == 1) {
                in[0] = data(float_dtypes[t], 2, (const int64_t[]){6, 4}, false);
                ix = ig_from_data(2, (const int64_t[]){2, 3}, IG_I64, (const int64_t[]){5, 0, 5, 2, 2, 1});
            } else {
                in[0] = data(float_dtypes[t], 3, (const int64_t[]){4, 3, 5}, false);
                ix = ig_from_data(1, (const int64_t[]){4}, IG_I64, (const int64_t[]){2, 0, 2, 1});
            }
            if (c->i32) ix = ig_to_dtype(ix, IG_I32);
            isel_ctx cx = {c, ix};
            char what[120];
            snprintf(what, sizeof what, "index_select/embedding case %zu %s", k, ig_dtype_name(float_dtypes[t]));
            nn_parity(d, what, f_isel, &cx, 1, in);
            if (grad_check && t == 1) nn_gradcheck(d, what, f_isel, &cx, 1, in);
            ig_scope_end(s);
        }
    }
    /* Out-of-range indices are reported as on the CPU. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *w = on(data(IG_F32, 2, (const int64_t[]){3, 2}, false), d);
    cr_assert_null(ig_embedding(on(ig_from_data(1, (const int64_t[]){2}, IG_I64, (const int64_t[]){1, 3}), d), w));
    cr_assert(strstr(ig_last_error(), "ig_embedding: index 3 (at flat position 1) is out of range"), "%s", ig_last_error());
    ig_scope_end(s);
}

/* Batch norm: x of shape xs; affine or not; running stats or not; training or eval. */
typedef struct {
    int ndim;
    int64_t xs[4];
    bool affine, running, training;
} bn_case;
static const bn_case bn_cases[] = {
    {4, {4, 3, 5, 6}, true, true, true},
    {2, {7, 5}, false, true, true},
    {3, {3, 4, 6}, true, false, true},
    {4, {2, 3, 4, 4}, true, true, false},
    {4, {3, 2, 3, 3}, false, true, false},
};

/* The running stats a call uses: [0] for CPU inputs, [1] for device inputs (NULL: none). */
typedef struct {
    const bn_case *c;
    ig_tensor *rm[2], *rv[2];
} bn_ctx;

static ig_tensor *f_bn(ig_tensor *const *in, int n, void *cfg) {
    const bn_ctx *b = cfg;
    int k = ig_tensor_device(in[0]) != IG_CPU;
    return ig_batch_norm(in[0], b->rm[k], b->rv[k], n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, b->c->training, 0.1,
                         1e-5);
}

static void check_batch_norm(ig_device d, bool grad_check) {
    ig_manual_seed(14);
    for (size_t k = 0; k < sizeof bn_cases / sizeof bn_cases[0]; k++) {
        const bn_case *c = &bn_cases[k];
        for (size_t t = 0; t < 2; t++) {
            ig_dtype dt = float_dtypes[t];
            ig_scope *s = ig_scope_begin();
            int64_t C = c->xs[1];
            ig_tensor *in[3] = {data(dt, c->ndim, c->xs, false), NULL, NULL};
            int n = 1;
            if (c->affine) {
                in[1] = data(dt, 1, &C, true);
                in[2] = data(dt, 1, &C, false);
                n = 3;
            }
            ig_tensor *rm = c->running ? data(dt, 1, &C, false) : NULL, *rv = c->running ? data(dt, 1, &C, true) : NULL;
            char what[120];
            snprintf(what, sizeof what, "batch norm case %zu %s", k, ig_dtype_name(dt));
            /* One forward each side from the same stats: outputs and updated stats match. */
            ig_tensor *rmc = rm ? ig_clone(rm) : NULL, *rvc = rv ? ig_clone(rv) : NULL;
            ig_tensor *rmd = rm ? (d == IG_CPU ? ig_clone(rm) : on(rm, d)) : NULL;
            ig_tensor *rvd = rv ? (d == IG_CPU ? ig_clone(rv) : on(rv, d)) : NULL;
            ig_tensor *ind[3];
            for (int i = 0; i < n; i++) ind[i] = d == IG_CPU ? ig_clone(in[i]) : on(in[i], d);
            ig_tensor *yc = ig_batch_norm(in[0], rmc, rvc, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, c->training,
                                          0.1, 1e-5);
            ig_tensor *yd = ig_batch_norm(ind[0], rmd, rvd, n > 1 ? ind[1] : NULL, n > 2 ? ind[2] : NULL,
                                          c->training, 0.1, 1e-5);
            expect_match(yd, yc, d, what);
            if (rm) {
                expect_match(rmd, rmc, d, "running mean");
                expect_match(rvd, rvc, d, "running var");
            }
            /* Backward (the stats keep being updated in training: they do not affect y). */
            bn_ctx bc = {c, {rmc, d == IG_CPU ? rmc : rmd}, {rvc, d == IG_CPU ? rvc : rvd}};
            nn_parity(d, what, f_bn, &bc, n, in);
            if (grad_check && t == 1) {
                /* f64 stats for the device side of gradcheck (eval reads them). */
                bn_ctx bg = {c, {NULL, NULL}, {NULL, NULL}};
                if (rm) {
                    int side = d != IG_CPU;
                    bg.rm[side] = d == IG_CPU ? ig_clone(rm) : on(rm, d);
                    bg.rv[side] = d == IG_CPU ? ig_clone(rv) : on(rv, d);
                }
                nn_gradcheck(d, what, f_bn, &bg, n, in);
            }
            ig_scope_end(s);
        }
    }
}

/* Synchronised batch norm (igi_batch_norm_sync) on d vs the CPU with the same fake group in
 * one process. The group's sum is vals * factor plus, with `others`, a fixed contribution
 * of further members by call and position (their count, sums, squared deviations, and
 * backward sums), so the statistics, the running variance's count and dx all differ from
 * this process's own. CPU and device share the reduction protocol (the same values in the
 * same order), so the same fake gives both the same group. */
typedef struct {
    double factor;
    bool others;
    int64_t C;
    int calls, fail_at; /* fail_at: the call (1-based) that fails, 0: none */
} bn_fake_group;

static ig_status bn_fake_sum(void *ctx, double *vals, int64_t n) {
    bn_fake_group *g = ctx;
    g->calls++;
    if (g->fail_at && g->calls >= g->fail_at)
        return igi_error(IG_ERR_STATE, "ig_batch_norm (fake group): member 1 is gone");
    int64_t C = g->C;
    for (int64_t i = 0; i < n; i++) {
        double add = 0;
        if (g->others) {
            if (g->calls == 1) /* [sum(x) (C), count]: 6 more values per channel */
                add = i == C ? 6.0 : 1.5 + 0.25 * (double)i;
            else if (g->calls == 2) /* sum(d^2) (f64, C) or [sum(d), sum(d^2)] (f32, 2C) */
                add = n == 2 * C && i < C ? 0.3 : 4.0 + 0.5 * (double)(i % C);
            else /* backward: [sum(g), sum(g * xhat)] */
                add = i < C ? 0.7 : -0.4 + 0.1 * (double)(i - C);
        }
        vals[i] = vals[i] * g->factor + add;
    }
    return IG_OK;
}

typedef struct {
    int ndim;
    int64_t xs[4];
    bool affine, running, transposed, offset;
} bn_sync_case;
static const bn_sync_case bn_sync_cases[] = {
    {4, {4, 3, 5, 6}, true, true, false, false},
    {2, {7, 5}, false, true, false, false},
    {4, {2, 3, 4, 5}, true, false, true, false}, /* x transposed in its last two dims */
    {4, {4, 2, 40, 40}, true, true, false, true}, /* 6400 per channel: two parts; x = 50 + noise */
    {2, {1, 4}, true, true, false, false},       /* one value per channel here, more in the group */
};

static void check_batch_norm_sync(ig_device d) {
    ig_manual_seed(15);
    for (size_t k = 0; k < sizeof bn_sync_cases / sizeof bn_sync_cases[0]; k++) {
        const bn_sync_case *c = &bn_sync_cases[k];
        for (size_t t = 0; t < 2; t++) {
            for (int grp = 0; grp < 2; grp++) {
                ig_dtype dt = float_dtypes[t];
                ig_scope *s = ig_scope_begin();
                int64_t C = c->xs[1];
                ig_tensor *x = data(dt, c->ndim, c->xs, false);
                if (c->offset) x = ig_add_scalar(x, 50.0);
                ig_tensor *w = c->affine ? data(dt, 1, &C, true) : NULL, *b = c->affine ? data(dt, 1, &C, false) : NULL;
                ig_tensor *rm = c->running ? data(dt, 1, &C, false) : NULL, *rv = c->running ? data(dt, 1, &C, true) : NULL;
                ig_tensor *r = data(dt, c->ndim, c->xs, false);
                if (c->transposed) r = ig_contiguous(ig_transpose(r, 2, 3));
                /* The two sides: [0] the CPU, [1] d. */
                ig_tensor *xs[2], *ws[2] = {NULL, NULL}, *bs[2] = {NULL, NULL}, *rms[2] = {NULL, NULL},
                          *rvs[2] = {NULL, NULL}, *ys[2];
                bn_fake_group fg[2];
                int64_t cnt = ig_tensor_numel(x) / C;
                bool one_value = cnt == 1 && grp == 0;
                for (int side = 0; side < 2; side++) {
                    ig_device dev = side ? d : IG_CPU;
                    xs[side] = side && d != IG_CPU ? on(x, dev) : ig_clone(x);
                    cr_assert_eq(ig_set_requires_grad(xs[side], true), IG_OK);
                    if (w) {
                        ws[side] = side && d != IG_CPU ? on(w, dev) : ig_clone(w);
                        bs[side] = side && d != IG_CPU ? on(b, dev) : ig_clone(b);
                        cr_assert_eq(ig_set_requires_grad(ws[side], true), IG_OK);
                        cr_assert_eq(ig_set_requires_grad(bs[side], true), IG_OK);
                    }
                    if (rm) {
                        rms[side] = side && d != IG_CPU ? on(rm, dev) : ig_clone(rm);
                        rvs[side] = side && d != IG_CPU ? on(rv, dev) : ig_clone(rv);
                    }
                    fg[side] = (bn_fake_group){grp ? 2.0 : 1.0, grp == 1, C, 0, 0};
                    igi_bn_sync sync = {bn_fake_sum, &fg[side]};
                    ig_tensor *xin = c->transposed ? ig_transpose(xs[side], 2, 3) : xs[side];
                    ys[side] = igi_batch_norm_sync(xin, rms[side], rvs[side], ws[side], bs[side], true, 0.1, 1e-5,
                                                   &sync);
                    if (one_value) {
                        /* One value per channel in a group of one: refused on both sides. */
                        cr_assert_null(ys[side]);
                        cr_assert(strstr(ig_last_error(), "ig_batch_norm") &&
                                      strstr(ig_last_error(), "more than 1 value"), "%s", ig_last_error());
                        continue;
                    }
                    cr_assert(ys[side], "%s", ig_last_error());
                    cr_assert_eq(fg[side].calls, 2, "sums and count, then the deviations");
                    ig_tensor *rr = side && d != IG_CPU ? on(r, dev) : r;
                    cr_assert_eq(ig_backward(ig_sum(ig_mul(ys[side], rr), 0, NULL, false), NULL), IG_OK, "%s",
                                 ig_last_error());
                    cr_assert_eq(fg[side].calls, 3, "the backward sums");
                }
                if (one_value) {
                    ig_scope_end(s);
                    continue;
                }
                char what[160];
                snprintf(what, sizeof what, "sync batch norm case %zu %s group %d", k, ig_dtype_name(dt), grp);
                expect_match(ys[1], ys[0], d, what);
                if (rm) {
                    expect_match(rms[1], rms[0], d, "sync running mean");
                    expect_match(rvs[1], rvs[0], d, "sync running var");
                }
                expect_match(ig_grad(xs[1]), ig_grad(xs[0]), d, "sync grad of x");
                if (w) {
                    expect_match(ig_grad(ws[1]), ig_grad(ws[0]), d, "sync grad of weight");
                    expect_match(ig_grad(bs[1]), ig_grad(bs[0]), d, "sync grad of bias");
                }
                ig_scope_end(s);
            }
        }
    }
}

/* A group of one is plain batch norm on d (same statistics, running stats, gradients);
 * eval mode never calls the group; a failing group fails forward or backward with its
 * error. */
static void check_batch_norm_sync_edges(ig_device d) {
    ig_manual_seed(16);
    ig_scope *s = ig_scope_begin();
    int64_t xs[4] = {3, 2, 4, 5}, C = 2;
    for (size_t t = 0; t < 2; t++) {
        ig_dtype dt = float_dtypes[t];
        ig_tensor *x = on(data(dt, 4, xs, false), d), *w = on(data(dt, 1, &C, true), d);
        ig_tensor *rm = data(dt, 1, &C, false), *rv = data(dt, 1, &C, true);
        ig_tensor *rm1 = on(rm, d), *rv1 = on(rv, d), *rm2 = on(rm, d), *rv2 = on(rv, d);
        ig_tensor *x1 = ig_clone(x), *x2 = ig_clone(x), *w1 = ig_clone(w), *w2 = ig_clone(w);
        ig_tensor *leaves[4] = {x1, x2, w1, w2};
        for (int i = 0; i < 4; i++) cr_assert_eq(ig_set_requires_grad(leaves[i], true), IG_OK);
        bn_fake_group g = {1.0, false, C, 0, 0};
        igi_bn_sync sync = {bn_fake_sum, &g};
        ig_tensor *y1 = igi_batch_norm_sync(x1, rm1, rv1, w1, NULL, true, 0.1, 1e-5, &sync);
        ig_tensor *y2 = ig_batch_norm(x2, rm2, rv2, w2, NULL, true, 0.1, 1e-5);
        cr_assert(y1 && y2, "%s", ig_last_error());
        /* Both on d: the same sums in the same order, so equal to rounding of the apply. */
        ig_tensor *y2c = ig_to(y2, IG_CPU);
        expect_match(y1, y2c, d, "group of one vs batch norm");
        expect_match(rm1, ig_to(rm2, IG_CPU), d, "group of one: running mean");
        expect_match(rv1, ig_to(rv2, IG_CPU), d, "group of one: running var");
        ig_tensor *r = on(data(dt, 4, xs, false), d);
        cr_assert_eq(ig_backward(ig_sum(ig_mul(y1, r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(ig_mul(y2, r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(g.calls, 3);
        expect_match(ig_grad(x1), ig_to(ig_grad(x2), IG_CPU), d, "group of one: grad of x");
        expect_match(ig_grad(w1), ig_to(ig_grad(w2), IG_CPU), d, "group of one: grad of weight");
        /* Only the weight wants a gradient: no reduction in backward (as on the CPU). */
        g.calls = 0;
        ig_tensor *wn = ig_clone(w);
        cr_assert_eq(ig_set_requires_grad(wn, true), IG_OK);
        ig_tensor *yn = igi_batch_norm_sync(x, NULL, NULL, wn, NULL, true, 0.1, 1e-5, &sync);
        cr_assert(yn, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ig_sum(ig_mul(yn, r), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(g.calls, 2);
        expect_match(ig_grad(wn), ig_to(ig_grad(w1), IG_CPU), d, "weight only: grad of weight");
        /* Eval: the running statistics, no reduction. */
        g.calls = 0;
        ig_tensor *ye = igi_batch_norm_sync(x, rm1, rv1, w, NULL, false, 0.1, 1e-5, &sync);
        ig_tensor *ye2 = ig_batch_norm(x, rm1, rv1, w, NULL, false, 0.1, 1e-5);
        cr_assert(ye && ye2, "%s", ig_last_error());
        cr_assert_eq(g.calls, 0);
        expect_match(ye, ig_to(ye2, IG_CPU), d, "eval");
        /* A failing group: in forward (either reduction) the op fails with its error; in
         * backward, ig_backward does. */
        for (int at = 1; at <= 3; at++) {
            g = (bn_fake_group){1.0, false, C, 0, at};
            ig_tensor *xf = ig_clone(x);
            cr_assert_eq(ig_set_requires_grad(xf, true), IG_OK);
            ig_clear_error();
            ig_tensor *yf = igi_batch_norm_sync(xf, rm1, rv1, NULL, NULL, true, 0.1, 1e-5, &sync);
            if (at < 3) {
                cr_assert_null(yf);
                cr_assert_eq(g.calls, at);
            } else {
                cr_assert(yf, "%s", ig_last_error());
                cr_assert_eq(ig_backward(ig_sum(yf, 0, NULL, false), NULL), IG_ERR_STATE);
            }
            cr_assert_eq(ig_last_status(), IG_ERR_STATE);
            cr_assert(strstr(ig_last_error(), "ig_batch_norm") && strstr(ig_last_error(), "member 1 is gone"), "%s",
                      ig_last_error());
        }
    }
    ig_scope_end(s);
}

/* ---- training: optimizers and a model on the device ------------------------------------------- */

/* Like expect_match for float tensors, with a relative tolerance of tol (of max |cpu|). */
static void expect_close(ig_tensor *got, ig_tensor *want, double tol, const char *what) {
    cr_assert(got && want, "%s: %s", what, ig_last_error());
    int64_t n = ig_tensor_numel(want);
    cr_assert_eq(ig_tensor_numel(got), n, "%s: sizes differ", what);
    double *g = malloc(sizeof(double) * (size_t)(n + 1)), *w = malloc(sizeof(double) * (size_t)(n + 1));
    cr_assert(g && w);
    cr_assert_eq(ig_tensor_to_buffer(got, IG_F64, g, n), IG_OK, "%s: %s", what, ig_last_error());
    cr_assert_eq(ig_tensor_to_buffer(want, IG_F64, w, n), IG_OK, "%s: %s", what, ig_last_error());
    double maxd = 0, maxa = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(isfinite(g[i]) && isfinite(w[i]), "%s: element %lld: %g vs cpu %g", what, (long long)i, g[i], w[i]);
        maxd = fmax(maxd, fabs(g[i] - w[i]));
        maxa = fmax(maxa, fabs(w[i]));
    }
    cr_assert(maxd <= tol * maxa, "%s: max |got - cpu| = %g, max |cpu| = %g: relative error %g > %g", what, maxd, maxa,
              maxa > 0 ? maxd / maxa : INFINITY, tol);
    free(g);
    free(w);
}

/* Each optimizer (and option set) on d vs the CPU over four steps with fresh gradients:
 * the parameters and every state tensor must match (the device kernels repeat the CPU's
 * operations in order, so they agree to the last bit; the usual tolerances are asserted). */
static ig_optimizer *make_opt(int k, ig_tensor *p) {
    switch (k) {
    case 0: return ig_optim_sgd(&p, 1, &(ig_sgd_opts){.lr = 0.1});
    case 1: return ig_optim_sgd(&p, 1, &(ig_sgd_opts){.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
    case 2: return ig_optim_sgd(&p, 1, &(ig_sgd_opts){.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
    case 3: return ig_optim_adam(&p, 1, &(ig_adam_opts){.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01});
    case 4: return ig_optim_adamw(&p, 1, &(ig_adam_opts){.lr = 1e-2, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1, .amsgrad = true});
    case 5: return ig_optim_rmsprop(&p, 1, &(ig_rmsprop_opts){.lr = 1e-2, .alpha = 0.9, .eps = 1e-8, .weight_decay = 0.01, .momentum = 0.5, .centered = true});
    default: return ig_optim_rmsprop(&p, 1, &(ig_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8});
    }
}

static void check_optim(ig_device d) {
    ig_manual_seed(21);
    for (int k = 0; k < 7; k++) {
        for (size_t t = 0; t < 2; t++) {
            ig_dtype dt = float_dtypes[t];
            ig_scope *s = ig_scope_begin();
            ig_tensor *v = data(dt, 2, (const int64_t[]){13, 7}, false);
            ig_tensor *pc = ig_clone(v), *pd = on(v, d);
            if (d == IG_CPU) pd = ig_clone(v);
            cr_assert_eq(ig_set_requires_grad(pc, true), IG_OK);
            cr_assert_eq(ig_set_requires_grad(pd, true), IG_OK, "%s", ig_last_error());
            ig_optimizer *oc = make_opt(k, pc), *od = make_opt(k, pd);
            cr_assert(oc && od, "optimizer %d: %s", k, ig_last_error());
            for (int step = 0; step < 4; step++) {
                ig_tensor *g = data(dt, 2, (const int64_t[]){13, 7}, false);
                ig_tensor *gd = ig_keep(d == IG_CPU ? ig_clone(g) : on(g, d));
                g = ig_keep(g);
                cr_assert_eq(ig_set_grad(pc, g), IG_OK, "%s", ig_last_error());
                cr_assert_eq(ig_set_grad(pd, gd), IG_OK, "%s", ig_last_error());
                ig_tensor_free(g);
                ig_tensor_free(gd);
                cr_assert_eq(ig_optim_step(oc), IG_OK, "%s", ig_last_error());
                cr_assert_eq(ig_optim_step(od), IG_OK, "optimizer %d step on %s: %s", k, d == IG_CPU ? "cpu" : "cuda",
                             ig_last_error());
            }
            char what[120];
            snprintf(what, sizeof what, "optimizer %d (%s) %s parameter", k, ig_optim_name(oc), ig_dtype_name(dt));
            expect_match(pd, pc, d, what);
            for (int i = 0;; i++) {
                const char *nc, *nd;
                ig_tensor *sc, *sd;
                if (ig_optim_state_get(oc, i, &nc, &sc) != IG_OK) break;
                cr_assert_eq(ig_optim_state_get(od, i, &nd, &sd), IG_OK, "%s", ig_last_error());
                cr_assert_str_eq(nd, nc);
                snprintf(what, sizeof what, "optimizer %d %s state %s", k, ig_dtype_name(dt), nc);
                expect_match(sd, sc, ig_tensor_device(sd), what);
            }
            ig_optim_free(oc);
            ig_optim_free(od);
            ig_scope_end(s);
        }
    }
}

/* A zoo model trained for a few SGD steps (momentum, flat buffers) on d and on the CPU from
 * the same initialisation and batches: losses and parameters agree within tol (the
 * convolution GEMMs add in another order, and training amplifies that a little). */
static void check_train(ig_device d, const char *model, double tol) {
    ig_manual_seed(31);
    ig_module *mc = ig_model_create(model, 1, 28, 28, 10);
    ig_manual_seed(31);
    ig_module *md = ig_model_create(model, 1, 28, 28, 10);
    cr_assert(mc && md, "%s", ig_last_error());
    if (d != IG_CPU) cr_assert_eq(ig_module_to(md, d), IG_OK, "ig_module_to: %s", ig_last_error());
    cr_assert_eq(ig_module_flatten(mc), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_module_flatten(md), IG_OK, "%s", ig_last_error());
    ig_tensor *fc = ig_module_flat_params(mc), *fd = ig_module_flat_params(md);
    cr_assert_eq(ig_tensor_device(fd), d);
    expect_match(fd, fc, d, "initial parameters");
    ig_sgd_opts so = {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4};
    ig_optimizer *oc = ig_optim_sgd(&fc, 1, &so), *od = ig_optim_sgd(&fd, 1, &so);
    cr_assert(oc && od, "%s", ig_last_error());
    for (int step = 0; step < 3; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_randn(4, (const int64_t[]){8, 1, 28, 28}, IG_F32);
        ig_tensor *y = ig_randint(0, 10, 1, (const int64_t[]){8}, IG_I64);
        ig_module_zero_grad(mc);
        ig_module_zero_grad(md);
        ig_tensor *lc = ig_cross_entropy(ig_module_forward(mc, x), y, NULL);
        ig_tensor *ld = ig_cross_entropy(ig_module_forward(md, on(x, d)), on(y, d), NULL);
        cr_assert(lc && ld, "%s forward: %s", model, ig_last_error());
        cr_assert_eq(ig_backward(lc, NULL), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_backward(ld, NULL), IG_OK, "%s backward on the device: %s", model, ig_last_error());
        cr_assert_eq(ig_optim_step(oc), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_optim_step(od), IG_OK, "%s step on the device: %s", model, ig_last_error());
        char what[80];
        snprintf(what, sizeof what, "%s loss at step %d", model, step);
        expect_close(ld, lc, tol, what);
        ig_scope_end(s);
    }
    expect_close(fd, fc, tol, "parameters after 3 steps");
    expect_close(ig_module_flat_grads(md), ig_module_flat_grads(mc), 10 * tol, "last gradients");
    /* The buffers too: batch norm's running statistics, and num_batches_tracked, which the
     * device counts in place (3 training forwards: 3). */
    ig_named_tensor bc[128], bd[128];
    int nbc = ig_module_state_dict(mc, bc, 128), nbd = ig_module_state_dict(md, bd, 128);
    cr_assert(nbc == nbd && nbc > 0 && nbc <= 128, "%s: state dicts of %d and %d entries", model, nbc, nbd);
    int counters = 0;
    for (int i = 0; i < nbc; i++) {
        cr_assert_str_eq(bd[i].name, bc[i].name);
        const char *nbt = strstr(bc[i].name, "num_batches_tracked");
        if (nbt) {
            ig_tensor *h = ig_to(bd[i].tensor, IG_CPU);
            cr_assert(h, "%s", ig_last_error());
            cr_expect_eq(*(const int64_t *)ig_tensor_data(h), 3, "%s: %s on the device", model, bd[i].name);
            cr_expect_eq(*(const int64_t *)ig_tensor_data(bc[i].tensor), 3, "%s: %s on the CPU", model, bc[i].name);
            ig_tensor_free(h);
            counters++;
        } else {
            expect_close(bd[i].tensor, bc[i].tensor, tol, bc[i].name);
        }
    }
    if (strstr(model, "resnet")) cr_expect_gt(counters, 0, "%s: no num_batches_tracked buffer", model);
    ig_optim_free(oc);
    ig_optim_free(od);
    ig_module_free(mc);
    ig_module_free(md);
}

/* Gradient clipping of gradients on d (through the ops; on the CPU harness the ops path is
 * forced) against the CPU loops on copies: the returned norm and the clipped gradients,
 * for the 2-, 1- and inf-norms and value clipping. */
bool igi_clip_force_generic(bool on); /* optim/optim_impl.h */

static void check_clip(ig_device d) {
    ig_manual_seed(23);
    const double norms[3] = {2.0, 1.0, INFINITY};
    for (int k = 0; k < 4; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *pc[3], *pd[3];
        const int64_t shapes[3][2] = {{13, 7}, {5, 1}, {64, 3}};
        for (int i = 0; i < 3; i++) {
            ig_tensor *v = data(IG_F32, 2, shapes[i], false), *g = data(IG_F32, 2, shapes[i], false);
            pc[i] = ig_clone(v);
            pd[i] = d == IG_CPU ? ig_clone(v) : on(v, d);
            cr_assert_eq(ig_set_requires_grad(pc[i], true), IG_OK);
            cr_assert_eq(ig_set_requires_grad(pd[i], true), IG_OK, "%s", ig_last_error());
            ig_tensor *gc = ig_keep(ig_clone(g)), *gd = ig_keep(d == IG_CPU ? ig_clone(g) : on(g, d));
            cr_assert_eq(ig_set_grad(pc[i], gc), IG_OK, "%s", ig_last_error());
            cr_assert_eq(ig_set_grad(pd[i], gd), IG_OK, "%s", ig_last_error());
            ig_tensor_free(gc);
            ig_tensor_free(gd);
        }
        char what[80];
        if (k < 3) {
            double want = ig_clip_grad_norm(pc, 3, 0.5, norms[k]);
            bool was = igi_clip_force_generic(d == IG_CPU);
            double got = ig_clip_grad_norm(pd, 3, 0.5, norms[k]);
            igi_clip_force_generic(was);
            cr_assert(got >= 0, "%s", ig_last_error());
            cr_assert(fabs(got - want) <= 1e-5 * want, "norm %g: %.9g vs %.9g", norms[k], got, want);
            snprintf(what, sizeof what, "clip_grad_norm p=%g", norms[k]);
        } else {
            cr_assert_eq(ig_clip_grad_value(pc, 3, 0.3), IG_OK);
            bool was = igi_clip_force_generic(d == IG_CPU);
            cr_assert_eq(ig_clip_grad_value(pd, 3, 0.3), IG_OK, "%s", ig_last_error());
            igi_clip_force_generic(was);
            snprintf(what, sizeof what, "clip_grad_value");
        }
        for (int i = 0; i < 3; i++) expect_match(ig_grad(pd[i]), ig_grad(pc[i]), d, what);
        ig_scope_end(s);
    }
}

/* ---- the suites ------------------------------------------------------------------------------------ */

Test(cuda, conv2d) { need_cuda(); check_conv(IG_CUDA, true); }
Test(cuda, conv2d_both_paths) { need_cuda(); check_conv_paths(IG_CUDA); }
Test(cuda, conv2d_deterministic) { need_cuda(); check_conv_deterministic(IG_CUDA); }
Test(cuda, pool2d) { need_cuda(); check_pool(IG_CUDA, true); }
Test(cuda, class_loss) { need_cuda(); check_class_loss(IG_CUDA, true); }
Test(cuda, batch_norm) { need_cuda(); check_batch_norm(IG_CUDA, true); }
Test(cuda, batch_norm_sync) { need_cuda(); check_batch_norm_sync(IG_CUDA); }
Test(cuda, batch_norm_sync_edges) { need_cuda(); check_batch_norm_sync_edges(IG_CUDA); }
/* IGNIS_CUDA_PROFILE=1 (read when the backend starts) registers a table whose entries are
 * timed: results stay the same, nested entries (batch norm's scratch reaching raw_alloc
 * through the caching allocator) do not deadlock, and the calls are counted. */
Test(cuda, profiled_table_gives_the_same_results) {
    setenv("IGNIS_CUDA_PROFILE", "1", 1);
    need_cuda();
    check_batch_norm(IG_CUDA, false);
#ifdef IGNIS_CUDA
    cr_expect_gt(igi_cuda_profiled_calls(), 10);
#endif
}
Test(cuda, pointwise_loss) { need_cuda(); check_pointwise_loss(IG_CUDA, true); }
Test(cuda, layer_norm) { need_cuda(); check_layer_norm(IG_CUDA, true); }
Test(cuda, dropout) { need_cuda(); check_dropout(IG_CUDA, true); }
Test(cuda, index_select_embedding) { need_cuda(); check_index_select(IG_CUDA, true); }
Test(cuda, optimizers) { need_cuda(); check_optim(IG_CUDA); }
Test(cuda, clip_grad) { need_cuda(); check_clip(IG_CUDA); }
Test(cuda, train_cnn_sgd) { need_cuda(); check_train(IG_CUDA, "cnn", 1e-4); }
Test(cuda, train_resnet8_sgd) { need_cuda(); check_train(IG_CUDA, "resnet8", 1e-4); }
Test(cuda_harness, conv2d) { check_conv(IG_CPU, true); }
Test(cuda_harness, conv2d_both_paths) { check_conv_paths(IG_CPU); }
Test(cuda_harness, conv2d_deterministic) { check_conv_deterministic(IG_CPU); }
Test(cuda_harness, pool2d) { check_pool(IG_CPU, true); }
Test(cuda_harness, class_loss) { check_class_loss(IG_CPU, true); }
Test(cuda_harness, batch_norm) { check_batch_norm(IG_CPU, true); }
Test(cuda_harness, batch_norm_sync) { check_batch_norm_sync(IG_CPU); }
Test(cuda_harness, batch_norm_sync_edges) { check_batch_norm_sync_edges(IG_CPU); }
Test(cuda_harness, pointwise_loss) { check_pointwise_loss(IG_CPU, true); }
Test(cuda_harness, layer_norm) { check_layer_norm(IG_CPU, true); }
Test(cuda_harness, dropout) { check_dropout(IG_CPU, true); }
Test(cuda_harness, index_select_embedding) { check_index_select(IG_CPU, true); }
Test(cuda_harness, optimizers) { check_optim(IG_CPU); }
Test(cuda_harness, clip_grad) { check_clip(IG_CPU); }
Test(cuda_harness, train_cnn_sgd) { check_train(IG_CPU, "cnn", 1e-4); }
