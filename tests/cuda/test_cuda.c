/*
 * tests/cuda/test_cuda.c — the CUDA backend against the CPU, and the device plumbing of core.
 *
 * Suites:
 *  - cuda: the core ops with a CUDA kernel (copies and conversions, elementwise, where,
 *    reductions, softmax, matmul, gather, one_hot; the nn ops and training are in
 *    test_cuda_nn.c, helpers in cuda_test_util.h), forward and backward, on CUDA vs the CPU, over
 *    broadcast shapes and strided views and every dtype the op takes; gradcheck on CUDA in
 *    f64; the caching device allocator; the error messages. Each test skips ("no CUDA
 *    device: ...") when the build has no CUDA or the machine no GPU. tools/gpu-check.sh
 *    runs this suite on a GPU machine and fails if any test skips there.
 *  - cuda_harness: the same checks with IG_CPU as the device under test (CPU against CPU),
 *    so the test code itself runs on every machine, GPU or not.
 *  - cuda_fake (a stand-in backend on host memory) and cuda_nodev (no usable device) are
 *    in test_cuda_fake.c.
 *
 * Comparison: float results must agree with the CPU to a relative error below 1e-5 (f32)
 * or 1e-12 (f64), measured as max|device - cpu| / max|cpu| over the tensor (NaN and inf in
 * the same places); integer results must be equal.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_impl.h"
#include "core/tensor_impl.h" /* igi_batch_norm_sync */
#include "cuda_test_util.h"
#include "ignis.h"

static const ig_dtype all_dtypes[] = {IG_F32, IG_F64, IG_I32, IG_I64, IG_U8};
static const ig_dtype float_dtypes[] = {IG_F32, IG_F64};

/* Forward parity for a binary op on d over broadcast shapes and strided views. */
typedef ig_tensor *(*binary_fn)(ig_tensor *, ig_tensor *);
static const struct {
    const char *name;
    binary_fn fn;
} binary_ops[] = {{"ig_add", ig_add}, {"ig_sub", ig_sub}, {"ig_mul", ig_mul}, {"ig_div", ig_div},
                  {"ig_eq", ig_eq},   {"ig_gt", ig_gt},   {"ig_lt", ig_lt}};

typedef struct {
    int na, nb;
    int64_t a[4], b[4];
} shape_pair;
static const shape_pair pairs[] = {
    {2, 2, {3, 4}, {3, 4}},       {3, 1, {2, 3, 4}, {4}},      {3, 2, {2, 1, 4}, {3, 1}},
    {1, 0, {5}, {0}},             {0, 2, {0}, {2, 3}},         {2, 2, {0, 3}, {1, 3}},
    {2, 2, {64, 33}, {64, 33}},   {4, 4, {2, 3, 1, 5}, {1, 3, 4, 1}},
};

static void check_binary(ig_device d) {
    ig_manual_seed(1);
    for (size_t k = 0; k < sizeof binary_ops / sizeof binary_ops[0]; k++) {
        for (size_t t = 0; t < sizeof all_dtypes / sizeof all_dtypes[0]; t++) {
            ig_dtype dt = all_dtypes[t];
            for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
                ig_scope *s = ig_scope_begin();
                ig_tensor *a = data(dt, pairs[p].na, pairs[p].a, false);
                ig_tensor *b = data(dt, pairs[p].nb, pairs[p].b, false);
                char what[160];
                snprintf(what, sizeof what, "%s %s pair %zu", binary_ops[k].name, ig_dtype_name(dt), p);
                expect_match(binary_ops[k].fn(on(a, d), on(b, d)), binary_ops[k].fn(a, b), d, what);
                ig_scope_end(s);
            }
            /* Strided operands: a transposed, b a step slice broadcast along dim 0. */
            ig_scope *s = ig_scope_begin();
            ig_tensor *a = data(dt, 2, (const int64_t[]){7, 5}, false);
            ig_tensor *b = data(dt, 2, (const int64_t[]){1, 14}, false);
            ig_tensor *at = ig_transpose(a, 0, 1), *bs = ig_slice(b, 1, 0, 14, 2);
            ig_tensor *ad = ig_transpose(on(a, d), 0, 1), *bd = ig_slice(on(b, d), 1, 0, 14, 2);
            char what[160];
            snprintf(what, sizeof what, "%s %s strided", binary_ops[k].name, ig_dtype_name(dt));
            expect_match(binary_ops[k].fn(ad, bd), binary_ops[k].fn(at, bs), d, what);
            ig_scope_end(s);
        }
    }
}

static void check_scalar_and_where(ig_device d) {
    ig_manual_seed(2);
    const double scalars[] = {2.0, -3.0, 0.5, -1.25, 1e10};
    for (size_t t = 0; t < sizeof all_dtypes / sizeof all_dtypes[0]; t++) {
        ig_dtype dt = all_dtypes[t];
        for (size_t k = 0; k < sizeof scalars / sizeof scalars[0]; k++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *a = data(dt, 2, (const int64_t[]){6, 9}, false);
            ig_tensor *at = ig_transpose(a, 0, 1), *ad = ig_transpose(on(a, d), 0, 1);
            char what[160];
            snprintf(what, sizeof what, "ig_add_scalar %s %g", ig_dtype_name(dt), scalars[k]);
            expect_match(ig_add_scalar(ad, scalars[k]), ig_add_scalar(at, scalars[k]), d, what);
            snprintf(what, sizeof what, "ig_mul_scalar %s %g", ig_dtype_name(dt), scalars[k]);
            expect_match(ig_mul_scalar(ad, scalars[k]), ig_mul_scalar(at, scalars[k]), d, what);
            ig_scope_end(s);
        }
        /* where: u8 and float conditions, three-way broadcast. */
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = data(dt, 2, (const int64_t[]){4, 5}, false), *y = data(dt, 1, (const int64_t[]){5}, false);
        ig_tensor *c8 = ig_gt(data(IG_F32, 2, (const int64_t[]){4, 1}, false), ig_scalar(0.0, IG_F32));
        ig_tensor *cf = data(IG_F64, 2, (const int64_t[]){4, 5}, false);
        ig_fill_(ig_slice(cf, 1, 0, 5, 2), 0.0);
        char what[160];
        snprintf(what, sizeof what, "ig_where %s u8 cond", ig_dtype_name(dt));
        expect_match(ig_where(on(c8, d), on(x, d), on(y, d)), ig_where(c8, x, y), d, what);
        snprintf(what, sizeof what, "ig_where %s f64 cond", ig_dtype_name(dt));
        expect_match(ig_where(on(cf, d), on(x, d), on(y, d)), ig_where(cf, x, y), d, what);
        ig_scope_end(s);
    }
}

/* ---- unary ----------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    ig_tensor *(*fn)(ig_tensor *t);
    bool positive, int_ok;
} unary_case;

static ig_tensor *u_pow(ig_tensor *t) { return ig_pow(t, 2.5); }
static ig_tensor *u_pow0(ig_tensor *t) { return ig_pow(t, 0.0); }
static ig_tensor *u_clamp(ig_tensor *t) { return ig_clamp(t, -0.5, 1.5); }
static ig_tensor *u_clamp_nan(ig_tensor *t) { return ig_clamp(t, NAN, 1.0); }
static ig_tensor *u_clamp_inv(ig_tensor *t) { return ig_clamp(t, 1.0, -1.0); }
static ig_tensor *u_leaky(ig_tensor *t) { return ig_leaky_relu(t, 0.1); }

static const unary_case unary_cases[] = {
    {"ig_neg", ig_neg, false, true},       {"ig_pow 2.5", u_pow, true, false},
    {"ig_pow 0", u_pow0, false, false},    {"ig_exp", ig_exp, false, false},
    {"ig_log", ig_log, true, false},       {"ig_sqrt", ig_sqrt, true, false},
    {"ig_abs", ig_abs, false, true},       {"ig_clamp", u_clamp, false, true},
    {"ig_clamp lo>hi", u_clamp_inv, false, true}, {"ig_relu", ig_relu, false, true},
    {"ig_leaky_relu", u_leaky, false, false}, {"ig_sigmoid", ig_sigmoid, false, false},
    {"ig_tanh", ig_tanh, false, false},    {"ig_gelu", ig_gelu, false, false},
    {"ig_silu", ig_silu, false, false},
};

static void check_unary(ig_device d) {
    ig_manual_seed(3);
    for (size_t k = 0; k < sizeof unary_cases / sizeof unary_cases[0]; k++) {
        const unary_case *u = &unary_cases[k];
        for (size_t t = 0; t < sizeof all_dtypes / sizeof all_dtypes[0]; t++) {
            ig_dtype dt = all_dtypes[t];
            if (!ig_dtype_is_float(dt) && !u->int_ok) continue;
            ig_scope *s = ig_scope_begin();
            char what[160];
            ig_tensor *x = data(dt, 2, (const int64_t[]){33, 17}, u->positive);
            snprintf(what, sizeof what, "%s %s", u->name, ig_dtype_name(dt));
            expect_match(u->fn(on(x, d)), u->fn(x), d, what);
            snprintf(what, sizeof what, "%s %s transposed", u->name, ig_dtype_name(dt));
            expect_match(u->fn(ig_transpose(on(x, d), 0, 1)), u->fn(ig_transpose(x, 0, 1)), d, what);
            ig_tensor *row = data(dt, 2, (const int64_t[]){1, 6}, u->positive);
            const int64_t ex[2] = {4, 6};
            snprintf(what, sizeof what, "%s %s expanded", u->name, ig_dtype_name(dt));
            expect_match(u->fn(ig_expand(on(row, d), 2, ex)), u->fn(ig_expand(row, 2, ex)), d, what);
            ig_scope_end(s);
        }
    }
    /* Special values: inf, NaN, large |x| (sigmoid must not overflow), a NaN clamp bound. */
    ig_scope *s = ig_scope_begin();
    const double sv[] = {0.0, -0.0, 1.0, -1.0, 80.0, -80.0, 1000.0, -1000.0, INFINITY, -INFINITY, NAN};
    for (size_t t = 0; t < 2; t++) {
        ig_tensor *x = ig_to_dtype(ig_from_data(1, (const int64_t[]){11}, IG_F64, sv), float_dtypes[t]);
        for (size_t k = 0; k < sizeof unary_cases / sizeof unary_cases[0]; k++) {
            char what[160];
            snprintf(what, sizeof what, "%s %s special values", unary_cases[k].name, ig_dtype_name(float_dtypes[t]));
            expect_match(unary_cases[k].fn(on(x, d)), unary_cases[k].fn(x), d, what);
        }
        expect_match(u_clamp_nan(on(x, d)), u_clamp_nan(x), d, "ig_clamp NaN bound");
    }
    ig_scope_end(s);
}

/* ---- reductions -------------------------------------------------------------------------------- */

typedef struct {
    int n;
    int dims[3];
} dimset;
static const dimset dimsets[] = {{0, {0}}, {1, {0}}, {1, {1}}, {1, {2}}, {2, {0, 2}}, {1, {-1}}, {2, {1, 2}}, {3, {0, 1, 2}}};

static void check_reduce(ig_device d) {
    ig_manual_seed(4);
    for (size_t t = 0; t < sizeof all_dtypes / sizeof all_dtypes[0]; t++) {
        ig_dtype dt = all_dtypes[t];
        bool fl = ig_dtype_is_float(dt);
        for (size_t k = 0; k < sizeof dimsets / sizeof dimsets[0]; k++) {
            for (int keep = 0; keep < 2; keep++) {
                ig_scope *s = ig_scope_begin();
                ig_tensor *x = data(dt, 3, (const int64_t[]){3, 4, 5}, false);
                /* A permuted view: the kernels must follow its strides. */
                ig_tensor *xp = ig_permute(x, (const int[]){2, 0, 1});
                ig_tensor *xd = ig_permute(on(x, d), (const int[]){2, 0, 1});
                const int *dims = dimsets[k].dims;
                int n = dimsets[k].n;
                char what[160];
#define CHECK_RED(NAME, CALL_D, CALL_C)                                                                   \
    snprintf(what, sizeof what, "%s %s dims set %zu keepdim %d", NAME, ig_dtype_name(dt), k, keep);       \
    expect_match(CALL_D, CALL_C, d, what)
                CHECK_RED("ig_sum", ig_sum(xd, n, dims, keep), ig_sum(xp, n, dims, keep));
                CHECK_RED("ig_max", ig_max(xd, n, dims, keep), ig_max(xp, n, dims, keep));
                CHECK_RED("ig_min", ig_min(xd, n, dims, keep), ig_min(xp, n, dims, keep));
                if (fl) {
                    CHECK_RED("ig_mean", ig_mean(xd, n, dims, keep), ig_mean(xp, n, dims, keep));
                    CHECK_RED("ig_var", ig_var(xd, n, dims, 1, keep), ig_var(xp, n, dims, 1, keep));
                    CHECK_RED("ig_var corr 0", ig_var(xd, n, dims, 0, keep), ig_var(xp, n, dims, 0, keep));
                }
                if (n == 1) {
                    CHECK_RED("ig_argmax", ig_argmax(xd, dims[0], keep), ig_argmax(xp, dims[0], keep));
                    CHECK_RED("ig_argmin", ig_argmin(xd, dims[0], keep), ig_argmin(xp, dims[0], keep));
                }
#undef CHECK_RED
                ig_scope_end(s);
            }
        }
    }
    ig_scope *s = ig_scope_begin();
    /* Long slices (many elements per thread of a block), ties and NaN for max/min. */
    ig_tensor *big = ig_rand(2, (const int64_t[]){3, 100003}, IG_F32);
    expect_match(ig_sum(on(big, d), 1, (const int[]){1}, false), ig_sum(big, 1, (const int[]){1}, false), d, "ig_sum long");
    expect_match(ig_var(on(big, d), 0, NULL, 1, false), ig_var(big, 0, NULL, 1, false), d, "ig_var long");
    expect_match(ig_argmax(on(big, d), 1, false), ig_argmax(big, 1, false), d, "ig_argmax long");
    const double tv[] = {1, 3, 3, 2, NAN, 3, NAN, -1, 0, 0, 0, 0};
    ig_tensor *ties = ig_from_data(2, (const int64_t[]){3, 4}, IG_F64, tv);
    expect_match(ig_max(on(ties, d), 1, (const int[]){1}, false), ig_max(ties, 1, (const int[]){1}, false), d, "ig_max ties/NaN");
    expect_match(ig_argmax(on(ties, d), 1, false), ig_argmax(ties, 1, false), d, "ig_argmax ties/NaN");
    expect_match(ig_argmin(on(ties, d), 1, false), ig_argmin(ties, 1, false), d, "ig_argmin ties/NaN");
    /* Zero-size: sums are 0, means NaN. */
    ig_tensor *empty = ig_zeros(2, (const int64_t[]){0, 3}, IG_F32);
    expect_match(ig_sum(on(empty, d), 1, (const int[]){0}, false), ig_sum(empty, 1, (const int[]){0}, false), d, "ig_sum empty");
    expect_match(ig_mean(on(empty, d), 1, (const int[]){0}, false), ig_mean(empty, 1, (const int[]){0}, false), d, "ig_mean empty");
    expect_match(ig_sum(on(empty, d), 1, (const int[]){1}, false), ig_sum(empty, 1, (const int[]){1}, false), d, "ig_sum empty out");
    ig_scope_end(s);
}

/* ---- softmax ----------------------------------------------------------------------------------- */

static void check_softmax(ig_device d) {
    ig_manual_seed(12);
    const int dims[] = {0, 1, -1};
    for (size_t t = 0; t < 2; t++) {
        ig_dtype dt = float_dtypes[t];
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_mul_scalar(data(dt, 2, (const int64_t[]){5, 7}, false), 3.0);
        ig_tensor *x3 = data(dt, 3, (const int64_t[]){3, 4, 5}, false);
        ig_tensor *xl = ig_mul_scalar(data(dt, 2, (const int64_t[]){2, 1000}, false), 4.0);
        for (size_t k = 0; k < 3; k++) {
            char what[160];
            snprintf(what, sizeof what, "ig_softmax %s dim %d", ig_dtype_name(dt), dims[k]);
            expect_match(ig_softmax(on(x, d), dims[k]), ig_softmax(x, dims[k]), d, what);
            snprintf(what, sizeof what, "ig_log_softmax %s dim %d", ig_dtype_name(dt), dims[k]);
            expect_match(ig_log_softmax(on(x, d), dims[k]), ig_log_softmax(x, dims[k]), d, what);
            snprintf(what, sizeof what, "ig_softmax %s transposed dim %d", ig_dtype_name(dt), dims[k]);
            expect_match(ig_softmax(ig_transpose(on(x, d), 0, 1), dims[k]), ig_softmax(ig_transpose(x, 0, 1), dims[k]),
                         d, what);
            snprintf(what, sizeof what, "ig_log_softmax %s 3-D dim %d", ig_dtype_name(dt), dims[k]);
            expect_match(ig_log_softmax(on(x3, d), dims[k]), ig_log_softmax(x3, dims[k]), d, what);
        }
        expect_match(ig_softmax(on(xl, d), 1), ig_softmax(xl, 1), d, "ig_softmax long rows");
        expect_match(ig_log_softmax(on(xl, d), 1), ig_log_softmax(xl, 1), d, "ig_log_softmax long rows");
        /* Large values, -inf entries, a row of -inf, a NaN row (NaN rows stay NaN). */
        const double sv[] = {1000, 1001, 999, 1000.5, -INFINITY, 0, 1, -INFINITY,
                             -INFINITY, -INFINITY, -INFINITY, -INFINITY, 1, NAN, 2, 3};
        ig_tensor *sp = ig_to_dtype(ig_from_data(2, (const int64_t[]){4, 4}, IG_F64, sv), dt);
        expect_match(ig_softmax(on(sp, d), 1), ig_softmax(sp, 1), d, "ig_softmax special rows");
        expect_match(ig_log_softmax(on(sp, d), 1), ig_log_softmax(sp, 1), d, "ig_log_softmax special rows");
        ig_tensor *sc = ig_scalar(2.5, dt);
        expect_match(ig_softmax(on(sc, d), 0), ig_softmax(sc, 0), d, "ig_softmax 0-dim");
        ig_scope_end(s);
    }
}

/* ---- matmul, copies ------------------------------------------------------------------------- */

static const shape_pair mm_pairs[] = {
    {2, 2, {4, 5}, {5, 3}},       {1, 1, {5}, {5}},            {1, 2, {5}, {5, 3}},
    {2, 1, {4, 5}, {5}},          {3, 2, {2, 4, 5}, {5, 3}},   {4, 3, {2, 1, 4, 5}, {3, 5, 2}},
    {2, 2, {3, 0}, {0, 2}},       {2, 2, {64, 128}, {128, 32}}, {3, 3, {3, 7, 1}, {3, 1, 6}},
};

static void check_matmul(ig_device d) {
    ig_manual_seed(5);
    for (size_t t = 0; t < 2; t++) {
        ig_dtype dt = float_dtypes[t];
        for (size_t p = 0; p < sizeof mm_pairs / sizeof mm_pairs[0]; p++) {
            ig_scope *s = ig_scope_begin();
            ig_tensor *a = data(dt, mm_pairs[p].na, mm_pairs[p].a, false);
            ig_tensor *b = data(dt, mm_pairs[p].nb, mm_pairs[p].b, false);
            char what[160];
            snprintf(what, sizeof what, "ig_matmul %s pair %zu", ig_dtype_name(dt), p);
            expect_match(ig_matmul(on(a, d), on(b, d)), ig_matmul(a, b), d, what);
            ig_scope_end(s);
        }
        /* Transposed views (passed to GEMM as transposes) and a step slice (copied). */
        ig_scope *s = ig_scope_begin();
        ig_tensor *a = data(dt, 2, (const int64_t[]){6, 4}, false), *b = data(dt, 2, (const int64_t[]){3, 6}, false);
        ig_tensor *c = data(dt, 2, (const int64_t[]){4, 10}, false), *e = data(dt, 2, (const int64_t[]){3, 10}, false);
        ig_tensor *ad = on(a, d), *bd = on(b, d), *cd = on(c, d), *ed = on(e, d);
        expect_match(ig_matmul(ig_transpose(ad, 0, 1), ig_transpose(bd, 0, 1)),
                     ig_matmul(ig_transpose(a, 0, 1), ig_transpose(b, 0, 1)), d, "ig_matmul A^T B^T");
        /* [4,5] with column stride 2 @ [5,3] with strides (2, 10): both copied first. */
        expect_match(ig_matmul(ig_slice(cd, 1, 0, 10, 2), ig_transpose(ig_slice(ed, 1, 0, 10, 2), 0, 1)),
                     ig_matmul(ig_slice(c, 1, 0, 10, 2), ig_transpose(ig_slice(e, 1, 0, 10, 2), 0, 1)), d,
                     "ig_matmul strided operands");
        ig_scope_end(s);
    }
}

/* Shape and dtype errors are the same on every device. */
static void check_matmul_errors(ig_device d) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = on(ig_zeros(2, (const int64_t[]){4, 5}, IG_F32), d), *b = on(ig_zeros(2, (const int64_t[]){4, 4}, IG_F32), d);
    cr_assert_null(ig_matmul(a, b));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    ig_tensor *i = on(ig_zeros(2, (const int64_t[]){2, 2}, IG_I32), d);
    cr_assert_null(ig_matmul(i, i));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ig_scope_end(s);
}

static void check_copies(ig_device d) {
    ig_manual_seed(6);
    const double fv[] = {-3.7, 0.0, 2.5, 300.2, -1e10, 1e10, 255.5, -0.9, NAN, INFINITY, -INFINITY, 1e19};
    for (size_t ts = 0; ts < 5; ts++) {
        for (size_t td = 0; td < 5; td++) {
            ig_scope *s = ig_scope_begin();
            ig_dtype src = all_dtypes[ts], dst = all_dtypes[td];
            ig_tensor *x = ig_dtype_is_float(src) ? ig_to_dtype(ig_from_data(1, (const int64_t[]){12}, IG_F64, fv), src)
                                                  : data(src, 1, (const int64_t[]){12}, false);
            char what[160];
            snprintf(what, sizeof what, "ig_to_dtype %s -> %s", ig_dtype_name(src), ig_dtype_name(dst));
            expect_match(ig_to_dtype(on(x, d), dst), ig_to_dtype(x, dst), d, what);
            /* ig_copy_ with broadcasting and conversion into a strided destination. */
            ig_tensor *dc = ig_zeros(2, (const int64_t[]){12, 3}, dst), *dd = on(ig_zeros(2, (const int64_t[]){12, 3}, dst), d);
            ig_tensor *xc = ig_unsqueeze(x, 0), *xd = ig_unsqueeze(on(x, d), 0);
            cr_assert_eq(ig_copy_(ig_transpose(dc, 0, 1), xc), IG_OK, "%s", ig_last_error());
            cr_assert_eq(ig_copy_(ig_transpose(dd, 0, 1), xd), IG_OK, "%s", ig_last_error());
            snprintf(what, sizeof what, "ig_copy_ %s -> %s", ig_dtype_name(src), ig_dtype_name(dst));
            expect_match(dd, dc, d, what);
            ig_scope_end(s);
        }
    }
    ig_scope *s = ig_scope_begin();
    for (size_t t = 0; t < 5; t++) {
        ig_tensor *x = data(all_dtypes[t], 2, (const int64_t[]){5, 7}, false);
        ig_tensor *xd = on(x, d);
        cr_assert_eq(ig_fill_(ig_slice(xd, 1, 1, 7, 3), -2.75), IG_OK, "%s", ig_last_error());
        cr_assert_eq(ig_fill_(ig_slice(x, 1, 1, 7, 3), -2.75), IG_OK, "%s", ig_last_error());
        expect_match(xd, x, d, "ig_fill_ strided");
        expect_match(ig_contiguous(ig_transpose(xd, 0, 1)), ig_contiguous(ig_transpose(x, 0, 1)), d, "ig_contiguous");
        expect_match(ig_zeros_like(xd), ig_zeros_like(x), d, "ig_zeros_like");
        expect_match(ig_ones_like(xd), ig_ones_like(x), d, "ig_ones_like");
        expect_match(ig_clone(xd), ig_clone(x), d, "ig_clone");
        /* Overlapping copy within one storage: as if read first. */
        ig_tensor *yc = ig_clone(x), *yd = on(yc, d);
        cr_assert_eq(ig_copy_(ig_slice(yc, 1, 1, 7, 1), ig_slice(yc, 1, 0, 6, 1)), IG_OK);
        cr_assert_eq(ig_copy_(ig_slice(yd, 1, 1, 7, 1), ig_slice(yd, 1, 0, 6, 1)), IG_OK, "%s", ig_last_error());
        expect_match(yd, yc, d, "ig_copy_ overlapping");
    }
    /* cat and stack place their pieces with the copy kernel. */
    for (size_t t = 0; t < 5; t++) {
        ig_tensor *p = data(all_dtypes[t], 2, (const int64_t[]){2, 3}, false);
        ig_tensor *q = data(all_dtypes[t], 2, (const int64_t[]){4, 3}, false);
        ig_tensor *e = ig_zeros(1, (const int64_t[]){0}, all_dtypes[t]);
        ig_tensor *pq[3] = {p, e, q}, *pqd[3] = {on(p, d), on(e, d), on(q, d)};
        expect_match(ig_cat(pqd, 3, 0), ig_cat(pq, 3, 0), d, "ig_cat");
        ig_tensor *pt[2] = {ig_transpose(p, 0, 1), ig_transpose(p, 0, 1)};
        ig_tensor *ptd[2] = {ig_transpose(pqd[0], 0, 1), ig_transpose(pqd[0], 0, 1)};
        expect_match(ig_cat(ptd, 2, 1), ig_cat(pt, 2, 1), d, "ig_cat strided");
        expect_match(ig_stack(ptd, 2, 1), ig_stack(pt, 2, 1), d, "ig_stack");
    }
    ig_scope_end(s);
}

/* ---- backward ---------------------------------------------------------------------------------- */

/* A function of inputs for backward and gradcheck tests. */
typedef ig_tensor *(*graph_fn)(ig_tensor *const *in, int n, void *ctx);

static ig_tensor *g_binary(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *a = in[0], *b = in[1];
    ig_tensor *y = ig_add(ig_mul(a, b), ig_div(ig_sub(a, b), ig_add_scalar(ig_mul(b, b), 1.5)));
    return ig_mul_scalar(y, 0.75);
}
static ig_tensor *g_unary(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *x = in[0];
    ig_tensor *p = ig_add_scalar(ig_abs(x), 0.5);
    ig_tensor *y = ig_add(ig_sigmoid(x), ig_tanh(ig_neg(x)));
    y = ig_add(y, ig_add(ig_gelu(x), ig_silu(x)));
    y = ig_add(y, ig_add(ig_relu(x), ig_leaky_relu(x, 0.2)));
    y = ig_add(y, ig_add(ig_clamp(x, -0.3, 0.4), ig_exp(ig_mul_scalar(x, 0.5))));
    y = ig_add(y, ig_add(ig_log(p), ig_sqrt(p)));
    return ig_add(y, ig_pow(p, 1.7));
}
static ig_tensor *g_reduce(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *x = in[0];
    ig_tensor *a = ig_sum(x, 1, (const int[]){1}, true);
    ig_tensor *b = ig_mean(x, 1, (const int[]){0}, false);
    ig_tensor *c = ig_var(x, 1, (const int[]){1}, 1, true);
    ig_tensor *m = ig_max(x, 1, (const int[]){0}, false);
    ig_tensor *mi = ig_min(x, 1, (const int[]){1}, true);
    return ig_add(ig_add(ig_mul(x, a), ig_add(b, m)), ig_mul(c, mi));
}
static ig_tensor *g_matmul(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *y = ig_matmul(in[0], in[1]);                       /* [2,3,4] @ [4,5] */
    ig_tensor *z = ig_matmul(ig_transpose(in[1], 0, 1), in[2]);    /* [5,4] @ [4] */
    return ig_add(ig_sum(y, 1, (const int[]){1}, false), z);       /* [2,5] + [5] */
}
static ig_tensor *g_where(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *c = ig_gt(in[0], in[1]);
    return ig_where(c, ig_mul(in[0], in[1]), ig_exp(in[1]));
}
static ig_tensor *g_cat(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *ab[2] = {in[0], ig_mul(in[1], in[1])};
    ig_tensor *c = ig_cat(ab, 2, 0);                      /* [5,3] */
    ig_tensor *st[2] = {ig_slice(c, 0, 0, 2, 1), in[0]};
    return ig_add(ig_sum(c, 1, (const int[]){0}, false), ig_stack(st, 2, 0)); /* [3] + [2,2,3] */
}
static ig_tensor *g_softmax(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *x = in[0];
    return ig_add(ig_mul(ig_softmax(x, 1), in[1]), ig_log_softmax(ig_transpose(x, 0, 1), 1));
}
static ig_tensor *g_copies(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    (void)ctx;
    ig_tensor *x = in[0];
    ig_tensor *t = ig_contiguous(ig_transpose(x, 0, 1));
    ig_tensor *e = ig_expand(ig_slice(x, 0, 0, 1, 1), 2, ig_tensor_shape(x));
    return ig_mul(ig_reshape(t, 2, ig_tensor_shape(x)), ig_add(e, ig_clone(x)));
}

typedef struct {
    const char *name;
    graph_fn fn;
    int n;
    int nd[3];
    int64_t shape[3][3];
} graph_case;
static const graph_case graph_cases[] = {
    {"binary", g_binary, 2, {2, 1}, {{3, 4}, {4}}},
    {"unary", g_unary, 1, {2}, {{4, 5}}},
    {"reduce", g_reduce, 1, {2}, {{3, 4}}},
    {"matmul", g_matmul, 3, {3, 2, 1}, {{2, 3, 4}, {4, 5}, {4}}},
    {"where", g_where, 2, {2, 2}, {{3, 4}, {3, 4}}},
    {"copies", g_copies, 1, {2}, {{4, 4}}},
    {"softmax", g_softmax, 2, {2, 2}, {{4, 4}, {4, 4}}},
    {"cat", g_cat, 2, {2, 2}, {{2, 3}, {3, 3}}},
};

/* Backward of each graph on d vs the CPU: the gradients of leaves on d, and of a CPU leaf
 * reached through ig_to. */
static void check_backward(ig_device d) {
    ig_manual_seed(7);
    for (size_t k = 0; k < sizeof graph_cases / sizeof graph_cases[0]; k++) {
        const graph_case *gc = &graph_cases[k];
        for (size_t t = 0; t < 2; t++) {
            ig_dtype dt = float_dtypes[t];
            ig_scope *s = ig_scope_begin();
            ig_tensor *xc[3], *xd[3];
            for (int i = 0; i < gc->n; i++) {
                ig_tensor *v = data(dt, gc->nd[i], gc->shape[i], false);
                xc[i] = ig_clone(v);
                xd[i] = on(v, d);
                if (d == IG_CPU) xd[i] = ig_clone(v); /* separate leaves on the CPU too */
                cr_assert_eq(ig_set_requires_grad(xc[i], true), IG_OK);
                cr_assert_eq(ig_set_requires_grad(xd[i], true), IG_OK, "%s", ig_last_error());
            }
            ig_tensor *yc = gc->fn(xc, gc->n, NULL), *yd = gc->fn(xd, gc->n, NULL);
            char what[160];
            snprintf(what, sizeof what, "%s %s forward", gc->name, ig_dtype_name(dt));
            expect_match(yd, yc, d, what);
            /* loss = sum(y * w) for a fixed random w: every output element gets its own
             * gradient. */
            ig_tensor *w = data(dt, ig_tensor_ndim(yc), ig_tensor_shape(yc), false);
            ig_tensor *lc = ig_sum(ig_mul(yc, w), 0, NULL, false), *ld = ig_sum(ig_mul(yd, on(w, d)), 0, NULL, false);
            cr_assert_eq(ig_backward(lc, NULL), IG_OK, "%s", ig_last_error());
            cr_assert_eq(ig_backward(ld, NULL), IG_OK, "%s %s backward: %s", gc->name, ig_dtype_name(dt), ig_last_error());
            for (int i = 0; i < gc->n; i++) {
                snprintf(what, sizeof what, "%s %s grad of input %d", gc->name, ig_dtype_name(dt), i);
                expect_match(ig_grad(xd[i]), ig_grad(xc[i]), d, what);
            }
            ig_scope_end(s);
        }
    }
    /* A CPU leaf used on d through ig_to: its gradient comes back to the CPU. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = data(IG_F64, 2, (const int64_t[]){3, 5}, false), *x2 = ig_clone(x);
    cr_assert_eq(ig_set_requires_grad(x, true), IG_OK);
    cr_assert_eq(ig_set_requires_grad(x2, true), IG_OK);
    ig_tensor *y = ig_sum(ig_exp(ig_to(x, d)), 0, NULL, false);
    ig_tensor *y2 = ig_sum(ig_exp(x2), 0, NULL, false);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_device(y), d);
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_backward(y2, NULL), IG_OK, "%s", ig_last_error());
    expect_match(ig_grad(x), ig_grad(x2), IG_CPU, "grad through ig_to");
    cr_assert_float_eq(ig_item(y), ig_item(y2), 1e-12 * fabs(ig_item(y2)), "ig_item on the device");
    ig_scope_end(s);
}

static void check_gradcheck(ig_device d) {
    ig_manual_seed(8);
    for (size_t k = 0; k < sizeof graph_cases / sizeof graph_cases[0]; k++) {
        const graph_case *gc = &graph_cases[k];
        ig_scope *s = ig_scope_begin();
        ig_tensor *x[3];
        for (int i = 0; i < gc->n; i++) {
            x[i] = on(data(IG_F64, gc->nd[i], gc->shape[i], false), d);
            if (d == IG_CPU) x[i] = ig_clone(x[i]);
            cr_assert_eq(ig_set_requires_grad(x[i], true), IG_OK, "%s", ig_last_error());
        }
        cr_assert_eq(ig_gradcheck(gc->fn, x, gc->n, NULL, NULL), IG_OK, "gradcheck %s on %s: %s", gc->name,
                     d == IG_CPU ? "cpu" : "cuda", ig_last_error());
        ig_scope_end(s);
    }
}

/* ---- allocator ---------------------------------------------------------------------------------- */

static void check_allocator(ig_device d) {
    ig_mem_stats s0, s1, s2;
    /* unit: what one [32,16] f32 storage counts for on d (the CPU's also holds its record). */
    ig_mem_get_stats(d, &s1);
    ig_tensor *probe = heap_on(ig_zeros(2, (const int64_t[]){32, 16}, IG_F32), d);
    ig_mem_get_stats(d, &s2);
    int64_t unit = s2.live_bytes - s1.live_bytes;
    cr_assert_gt(unit, 0);
    ig_tensor_free(probe);
    ig_tensor *w = heap_on(ig_randn(2, (const int64_t[]){32, 16}, IG_F32), d);
    cr_assert_eq(ig_set_requires_grad(w, true), IG_OK);
    ig_mem_get_stats(d, &s0);
    int64_t allocs_after_first = 0;
    for (int step = 0; step < 5; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = on(ig_randn(2, (const int64_t[]){8, 32}, IG_F32), d);
        ig_tensor *loss = ig_mean(ig_relu(ig_matmul(x, w)), 0, NULL, false);
        cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
        cr_assert(isfinite(ig_item(loss)));
        ig_scope_end(s);
        ig_mem_get_stats(d, &s1);
        if (step == 0) allocs_after_first = s1.os_allocs;
        else cr_assert_eq(s1.os_allocs, allocs_after_first, "step %d allocated from the %s", step,
                          d == IG_CPU ? "OS" : "driver");
    }
    ig_mem_get_stats(d, &s1);
    /* Only w's gradient (made by the first backward) is still live. */
    cr_assert_eq(s1.live_bytes - s0.live_bytes, unit, "live bytes grew by %lld, not %lld",
                 (long long)(s1.live_bytes - s0.live_bytes), (long long)unit);
    ig_tensor_free(w);
    ig_mem_get_stats(d, &s2);
    cr_assert_eq(s2.live_bytes, s0.live_bytes - unit, "freeing w and its gradient left %lld bytes",
                 (long long)(s2.live_bytes - s0.live_bytes + unit));
    if (d != IG_CPU) {
        ig_mem_release_cached(d);
        ig_mem_get_stats(d, &s2);
        cr_assert_eq(s2.cached_bytes, 0);
    }
}

/* ---- gather and one_hot ------------------------------------------------------------------------ */

/* Calls cpu_call and dev_call (each returning a tensor) and asserts both fail with the same
 * status and message, which names op. */
#define EXPECT_SAME_ERROR(op, cpu_call, dev_call)                                                         \
    do {                                                                                                   \
        ig_clear_error();                                                                                  \
        cr_assert_null((cpu_call), "%s should fail", #cpu_call);                                          \
        char cpu_msg_[512];                                                                                \
        snprintf(cpu_msg_, sizeof cpu_msg_, "%s", ig_last_error());                                       \
        ig_status cpu_st_ = ig_last_status();                                                              \
        cr_assert(strstr(cpu_msg_, (op)), "%s: %s", #cpu_call, cpu_msg_);                                 \
        ig_clear_error();                                                                                  \
        cr_assert_null((dev_call), "%s should fail", #dev_call);                                          \
        cr_assert_eq(ig_last_status(), cpu_st_, "%s: %s", #dev_call, ig_last_error());                    \
        cr_assert_str_eq(ig_last_error(), cpu_msg_);                                                       \
    } while (0)

/* A random index of shape (3, shape) with values in [0, size) on the CPU, of dtype idt; the
 * extent along dim exceeds size, so values repeat. strided: the same values through a
 * transposed view (dims 0 and 2). */
static ig_tensor *gather_index(const int64_t *shape, int64_t size, ig_dtype idt, bool strided) {
    ig_tensor *ix;
    if (strided) {
        int64_t ts[3] = {shape[2], shape[1], shape[0]};
        ix = ig_transpose(ig_randint(0, size, 3, ts, idt), 0, 2);
    } else {
        ix = ig_randint(0, size, 3, shape, idt);
    }
    cr_assert(ix, "%s", ig_last_error());
    return ix;
}

/* t [4,3,5] (or a transposed [5,3,4] viewed as [4,3,5]); index along dim with extent 7
 * there and one less than t elsewhere. */
static void check_gather(ig_device d) {
    ig_manual_seed(31);
    const ig_dtype tdts[] = {IG_F32, IG_F64, IG_I64};
    const int64_t ts[3] = {4, 3, 5};
    for (int dim = 0; dim < 3; dim++) {
        for (size_t k = 0; k < 3; k++) {
            for (int v = 0; v < 4; v++) {
                bool i32 = v & 1, strided = v & 2;
                ig_scope *s = ig_scope_begin();
                ig_tensor *tc = strided ? ig_transpose(data(tdts[k], 3, (const int64_t[]){5, 3, 4}, false), 0, 2)
                                        : data(tdts[k], 3, ts, false);
                int64_t is[3];
                for (int j = 0; j < 3; j++) is[j] = j == dim ? 7 : ts[j] - 1;
                ig_tensor *ixc = gather_index(is, ts[dim], i32 ? IG_I32 : IG_I64, strided);
                ig_tensor *td = strided ? ig_transpose(on(ig_transpose(tc, 0, 2), d), 0, 2) : on(tc, d);
                ig_tensor *ixd = strided ? ig_transpose(on(ig_transpose(ixc, 0, 2), d), 0, 2) : on(ixc, d);
                if (strided) cr_assert(!ig_tensor_is_contiguous(td) && !ig_tensor_is_contiguous(ixd));
                char what[120];
                snprintf(what, sizeof what, "gather dim %d %s %s%s", dim, ig_dtype_name(tdts[k]), i32 ? "i32" : "i64",
                         strided ? " strided" : "");
                expect_match(ig_gather(td, dim - 3 * (dim == 2), ixd), ig_gather(tc, dim, ixc), d, what);
                ig_scope_end(s);
            }
        }
    }
    /* 0-dim, empty index, and an index as large as t. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *t0 = ig_scalar(2.5, IG_F64), *i0 = ig_scalar(0, IG_I64);
    expect_match(ig_gather(on(t0, d), 0, on(i0, d)), ig_gather(t0, 0, i0), d, "gather 0-dim");
    ig_tensor *t2 = data(IG_F32, 2, (const int64_t[]){3, 4}, false);
    ig_tensor *ie = ig_zeros(2, (const int64_t[]){0, 4}, IG_I64);
    expect_match(ig_gather(on(t2, d), 0, on(ie, d)), ig_gather(t2, 0, ie), d, "gather empty index");
    ig_tensor *ifull = ig_randint(0, 4, 2, (const int64_t[]){3, 4}, IG_I32);
    expect_match(ig_gather(on(t2, d), 1, on(ifull, d)), ig_gather(t2, 1, ifull), d, "gather full index");
    ig_scope_end(s);
}

typedef struct {
    int dim;
    ig_tensor *index; /* on the CPU */
    bool strided;     /* gather from a transposed view, and transpose the result */
} gather_ctx;

static ig_tensor *g_gather(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    const gather_ctx *c = ctx;
    ig_tensor *ix = ig_to(c->index, ig_tensor_device(in[0]));
    if (!c->strided) return ig_gather(in[0], c->dim, ix);
    /* the gradient reaching gather is then a transposed (strided) view */
    return ig_transpose(ig_gather(ig_transpose(in[0], 0, 2), c->dim, ix), 0, 1);
}

/* Gather's gradient (repeated indices accumulate) against the CPU's, and gradcheck in f64. */
static void check_gather_backward(ig_device d) {
    ig_manual_seed(32);
    for (int dim = 0; dim < 3; dim++) {
        for (int v = 0; v < 4; v++) {
            bool strided = v & 1;
            ig_dtype dt = float_dtypes[v >> 1];
            ig_scope *s = ig_scope_begin();
            const int64_t ts[3] = {4, 3, 5};
            int64_t is[3];
            for (int j = 0; j < 3; j++) is[j] = j == dim ? 9 : ts[j] - 1;
            gather_ctx c = {dim, gather_index(is, ts[dim], v & 2 ? IG_I32 : IG_I64, false), strided};
            ig_tensor *v0 = data(dt, 3, strided ? (const int64_t[]){5, 3, 4} : ts, false);
            ig_tensor *xc = ig_clone(v0), *xd = d == IG_CPU ? ig_clone(v0) : on(v0, d);
            cr_assert_eq(ig_set_requires_grad(xc, true), IG_OK);
            cr_assert_eq(ig_set_requires_grad(xd, true), IG_OK, "%s", ig_last_error());
            ig_tensor *yc = g_gather(&xc, 1, &c), *yd = g_gather(&xd, 1, &c);
            char what[120];
            snprintf(what, sizeof what, "gather backward dim %d %s%s", dim, ig_dtype_name(dt), strided ? " strided" : "");
            expect_match(yd, yc, d, what);
            ig_tensor *w = data(dt, ig_tensor_ndim(yc), ig_tensor_shape(yc), false);
            ig_tensor *lc = ig_sum(ig_mul(yc, w), 0, NULL, false), *ld = ig_sum(ig_mul(yd, on(w, d)), 0, NULL, false);
            cr_assert_eq(ig_backward(lc, NULL), IG_OK, "%s", ig_last_error());
            cr_assert_eq(ig_backward(ld, NULL), IG_OK, "%s: %s", what, ig_last_error());
            cr_assert_eq(ig_tensor_device(ig_grad(xd)), d);
            expect_match(ig_grad(xd), ig_grad(xc), d, what);
            if (dt == IG_F64) {
                ig_tensor *xg = d == IG_CPU ? ig_clone(v0) : on(v0, d);
                cr_assert_eq(ig_set_requires_grad(xg, true), IG_OK);
                cr_assert_eq(ig_gradcheck(g_gather, &xg, 1, &c, NULL), IG_OK, "gradcheck %s: %s", what,
                             ig_last_error());
            }
            ig_scope_end(s);
        }
    }
    /* Every element of a 1-D gradient gathered from one position: the sum of g in order. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_zeros(1, (const int64_t[]){3}, IG_F32), *xd = d == IG_CPU ? ig_clone(x) : on(x, d);
    cr_assert_eq(ig_set_requires_grad(xd, true), IG_OK);
    ig_tensor *ix = on(ig_from_data(1, (const int64_t[]){5}, IG_I64, (const int64_t[]){1, 1, 2, 1, 1}), d);
    ig_tensor *gw = ig_from_data(1, (const int64_t[]){5}, IG_F32, (const float[]){1e8f, 1.0f, 3.0f, -1e8f, 1.0f});
    ig_tensor *l = ig_sum(ig_mul(ig_gather(xd, 0, ix), on(gw, d)), 0, NULL, false);
    cr_assert_eq(ig_backward(l, NULL), IG_OK, "%s", ig_last_error());
    ig_tensor *gh = ig_to(ig_grad(xd), IG_CPU);
    cr_assert(gh, "%s", ig_last_error());
    /* in float, in order: ((1e8 + 1) - 1e8) + 1 = 1 (1e8 + 1 rounds to 1e8) */
    float want1 = 1e8f;
    want1 += 1.0f;
    want1 += -1e8f;
    want1 += 1.0f;
    cr_assert_float_eq(ig_tensor_get(gh, 0), 0.0, 0);
    cr_assert_float_eq(ig_tensor_get(gh, 1), (double)want1, 0);
    cr_assert_float_eq(ig_tensor_get(gh, 2), 3.0, 0);
    ig_scope_end(s);
}

static void check_gather_errors(ig_device d) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = data(IG_F32, 2, (const int64_t[]){2, 3}, false), *td = on(t, d);
    ig_tensor *bad = ig_from_data(2, (const int64_t[]){2, 2}, IG_I64, (const int64_t[]){0, 2, 3, -1});
    EXPECT_SAME_ERROR("ig_gather: index 3 is out of range for dim 1 of size 3", ig_gather(t, 1, bad),
                      ig_gather(td, 1, on(bad, d)));
    ig_tensor *neg = ig_from_data(2, (const int64_t[]){1, 2}, IG_I32, (const int32_t[]){0, -2});
    EXPECT_SAME_ERROR("ig_gather: index -2 is out of range", ig_gather(t, 0, neg), ig_gather(td, 0, on(neg, d)));
    ig_tensor *big = ig_zeros(2, (const int64_t[]){1, 4}, IG_I64), *flat = ig_zeros(1, (const int64_t[]){2}, IG_I64);
    EXPECT_SAME_ERROR("ig_gather: index [1,4] is larger than the input [2,3] in dim 1", ig_gather(t, 0, big),
                      ig_gather(td, 0, on(big, d)));
    EXPECT_SAME_ERROR("ig_gather: index [2] must have as many dims", ig_gather(t, 0, flat),
                      ig_gather(td, 0, on(flat, d)));
    EXPECT_SAME_ERROR("ig_gather: dim 2 out of range", ig_gather(t, 2, big), ig_gather(td, 2, on(big, d)));
    ig_tensor *fi = ig_zeros(2, (const int64_t[]){1, 1}, IG_F32);
    EXPECT_SAME_ERROR("ig_gather: index must be int64 or int32, got float32", ig_gather(t, 0, fi),
                      ig_gather(td, 0, on(fi, d)));
    if (d != IG_CPU) {
        cr_assert_null(ig_gather(td, 0, ig_zeros(2, (const int64_t[]){1, 1}, IG_I64)));
        cr_assert_str_eq(ig_last_error(), "ig_gather: tensors are on different devices (cuda and cpu)");
    }
    ig_scope_end(s);
}

/* one_hot of int64 / int32 / u8 classes, num_classes given or inferred, strided input. */
static void check_one_hot(ig_device d) {
    ig_manual_seed(33);
    const ig_dtype dts[] = {IG_I64, IG_I32, IG_U8};
    for (size_t k = 0; k < 3; k++) {
        for (int v = 0; v < 4; v++) {
            bool strided = v & 1;
            int64_t nc = v & 2 ? 9 : -1;
            ig_scope *s = ig_scope_begin();
            ig_tensor *c = ig_randint(0, 7, 2, (const int64_t[]){5, 4}, dts[k]);
            ig_tensor *cd = on(c, d);
            if (strided) {
                c = ig_transpose(c, 0, 1);
                cd = ig_transpose(cd, 0, 1);
            }
            char what[120];
            snprintf(what, sizeof what, "one_hot %s num_classes %lld%s", ig_dtype_name(dts[k]), (long long)nc,
                     strided ? " strided" : "");
            expect_match(ig_one_hot(cd, nc), ig_one_hot(c, nc), d, what);
            ig_scope_end(s);
        }
    }
    /* The device path's temporaries (converted classes, arange, mask) are all released. */
    ig_tensor *ch = heap_on(ig_randint(0, 5, 2, (const int64_t[]){3, 2}, IG_I32), d);
    ig_mem_stats m0, m1;
    ig_mem_get_stats(d, &m0);
    ig_tensor *oh = ig_one_hot(ch, -1);
    cr_assert(oh, "%s", ig_last_error());
    ig_tensor_free(oh);
    ig_mem_get_stats(d, &m1);
    cr_assert_eq(m1.live_bytes, m0.live_bytes, "one_hot left %lld bytes live", (long long)(m1.live_bytes - m0.live_bytes));
    ig_tensor_free(ch);
    ig_scope *s = ig_scope_begin();
    /* u8 classes above 255 classes' reach, 0-dim, empty with num_classes, zero classes. */
    ig_tensor *u = ig_from_data(1, (const int64_t[]){3}, IG_U8, (const uint8_t[]){255, 0, 7});
    expect_match(ig_one_hot(on(u, d), 300), ig_one_hot(u, 300), d, "one_hot u8 300 classes");
    ig_tensor *z0 = ig_scalar(3, IG_I32);
    expect_match(ig_one_hot(on(z0, d), -1), ig_one_hot(z0, -1), d, "one_hot 0-dim");
    ig_tensor *e = ig_zeros(2, (const int64_t[]){0, 2}, IG_I64);
    expect_match(ig_one_hot(on(e, d), 4), ig_one_hot(e, 4), d, "one_hot empty");
    expect_match(ig_one_hot(on(e, d), 0), ig_one_hot(e, 0), d, "one_hot empty, 0 classes");
    /* the values themselves: row i has its 1 at column c[i] */
    ig_tensor *h = ig_to(ig_one_hot(on(u, d), -1), IG_CPU);
    cr_assert(h, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(h)[1], 256);
    for (int64_t i = 0; i < 3 * 256; i++) {
        int64_t row = i / 256, col = i % 256, want = col == (int64_t[]){255, 0, 7}[row];
        cr_assert_eq((int64_t)ig_tensor_get(h, i), want, "one_hot element %lld", (long long)i);
    }
    /* errors, as on the CPU */
    ig_tensor *c = ig_from_data(1, (const int64_t[]){3}, IG_I64, (const int64_t[]){0, 4, -1});
    EXPECT_SAME_ERROR("ig_one_hot: class 4 is out of range [0, 3)", ig_one_hot(c, 3), ig_one_hot(on(c, d), 3));
    EXPECT_SAME_ERROR("ig_one_hot: class -1 is out of range [0, 5)", ig_one_hot(c, -1), ig_one_hot(on(c, d), -1));
    EXPECT_SAME_ERROR("ig_one_hot: num_classes must be -1 or at least 0, got -2", ig_one_hot(c, -2),
                      ig_one_hot(on(c, d), -2));
    EXPECT_SAME_ERROR("ig_one_hot: cannot infer num_classes from an empty tensor", ig_one_hot(e, -1),
                      ig_one_hot(on(e, d), -1));
    ig_tensor *mx = ig_from_data(1, (const int64_t[]){1}, IG_I64, (const int64_t[]){INT64_MAX});
    EXPECT_SAME_ERROR("ig_one_hot: class 9223372036854775807 is too large", ig_one_hot(mx, -1),
                      ig_one_hot(on(mx, d), -1));
    ig_tensor *f = ig_zeros(1, (const int64_t[]){2}, IG_F32);
    EXPECT_SAME_ERROR("ig_one_hot: classes must be an integer dtype, got float32", ig_one_hot(f, 2),
                      ig_one_hot(on(f, d), 2));
    ig_scope_end(s);
}

/* ---- the suites ------------------------------------------------------------------------------------ */

Test(cuda, roundtrip_bit_exact) {
    need_cuda();
    ig_manual_seed(9);
    for (size_t t = 0; t < 5; t++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = data(all_dtypes[t], 3, (const int64_t[]){4, 6, 5}, false);
        ig_tensor *views[] = {x, ig_transpose(x, 0, 2), ig_slice(x, 1, 1, 6, 2),
                              ig_expand(ig_slice(x, 0, 0, 1, 1), 3, (const int64_t[]){3, 6, 5}), ig_select(x, 2, 3)};
        for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
            ig_tensor *back = ig_to(on(views[v], IG_CUDA), IG_CPU);
            cr_assert(back, "%s", ig_last_error());
            cr_assert(ig_tensor_is_contiguous(back));
            ig_tensor *want = ig_contiguous(views[v]);
            size_t nb = (size_t)ig_tensor_numel(want) * ig_dtype_size(all_dtypes[t]);
            cr_assert_eq(memcmp(ig_tensor_data(back), ig_tensor_data(want), nb), 0, "%s view %zu",
                         ig_dtype_name(all_dtypes[t]), v);
            /* A strided view of a CUDA tensor, back to the CPU. */
            ig_tensor *xd = on(x, IG_CUDA);
            ig_tensor *vd = v == 1 ? ig_transpose(xd, 0, 2) : v == 2 ? ig_slice(xd, 1, 1, 6, 2) : xd;
            if (v <= 2) expect_match(vd, views[v], IG_CUDA, "strided CUDA view to the CPU");
        }
        /* Same device: no copy. */
        ig_tensor *xd = on(x, IG_CUDA);
        cr_assert_eq(ig_to(xd, IG_CUDA), xd);
        ig_scope_end(s);
    }
    /* NaN payloads and -0.0 survive. */
    ig_scope *s = ig_scope_begin();
    const double sv[] = {-0.0, NAN, -NAN, INFINITY, 5e-324};
    ig_tensor *x = ig_from_data(1, (const int64_t[]){5}, IG_F64, sv);
    ig_tensor *back = ig_to(on(x, IG_CUDA), IG_CPU);
    cr_assert_eq(memcmp(ig_tensor_data(back), sv, sizeof sv), 0);
    ig_scope_end(s);
}

/* Targets uploaded once are validated from the range noted at the upload (no copy back);
 * writes into them on the device are validated again: the real kernels, against the CPU. */
Test(cuda, cross_entropy_targets_written_on_the_device_are_checked) {
    need_cuda();
    ig_manual_seed(4);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = data(IG_F32, 2, (const int64_t[]){4, 5}, false);
    ig_tensor *t = ig_from_data(1, (const int64_t[]){4}, IG_I64, (const int64_t[]){0, 4, 2, 3});
    ig_tensor *xd = on(x, IG_CUDA), *td = on(t, IG_CUDA);
    expect_match(ig_cross_entropy(xd, td, NULL), ig_cross_entropy(x, t, NULL), IG_CUDA, "uploaded targets");
    cr_assert_eq(ig_fill_(td, 7.0), IG_OK, "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_cross_entropy(xd, td, NULL));
    cr_assert(strstr(ig_last_error(), "ig_cross_entropy: target value 7 at position 0 is out of range [0, 5)"), "%s",
              ig_last_error());
    cr_assert_eq(ig_fill_(td, 2.0), IG_OK, "%s", ig_last_error());
    ig_tensor *twos = ig_full(1, (const int64_t[]){4}, IG_I64, 2.0);
    expect_match(ig_cross_entropy(xd, td, NULL), ig_cross_entropy(x, twos, NULL), IG_CUDA, "targets filled on the device");
    ig_scope_end(s);
}

Test(cuda, binary_forward) { need_cuda(); check_binary(IG_CUDA); }
Test(cuda, scalar_and_where_forward) { need_cuda(); check_scalar_and_where(IG_CUDA); }
Test(cuda, unary_forward) { need_cuda(); check_unary(IG_CUDA); }
Test(cuda, reduce_forward) { need_cuda(); check_reduce(IG_CUDA); }
Test(cuda, matmul_forward) { need_cuda(); check_matmul(IG_CUDA); check_matmul_errors(IG_CUDA); }
Test(cuda, softmax_forward) { need_cuda(); check_softmax(IG_CUDA); }
Test(cuda, copies_fill_convert) { need_cuda(); check_copies(IG_CUDA); }
Test(cuda, backward_matches_cpu) { need_cuda(); check_backward(IG_CUDA); }
Test(cuda, gradcheck_f64) { need_cuda(); check_gradcheck(IG_CUDA); }
Test(cuda, allocator_steady_state) { need_cuda(); check_allocator(IG_CUDA); }

Test(cuda, gather_forward) { need_cuda(); check_gather(IG_CUDA); }
Test(cuda, gather_backward) { need_cuda(); check_gather_backward(IG_CUDA); }
Test(cuda, gather_errors) { need_cuda(); check_gather_errors(IG_CUDA); }
Test(cuda, one_hot) { need_cuda(); check_one_hot(IG_CUDA); }

Test(cuda, tf32_switch) {
    need_cuda();
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(10);
    ig_tensor *a = ig_randn(2, (const int64_t[]){64, 256}, IG_F32), *b = ig_randn(2, (const int64_t[]){256, 48}, IG_F32);
    ig_tensor *want = ig_matmul(a, b);
    cr_assert_eq(ig_cuda_set_tf32(true), IG_OK);
    ig_tensor *fast = ig_matmul(on(a, IG_CUDA), on(b, IG_CUDA));
    cr_assert(fast, "%s", ig_last_error());
    cr_assert_eq(ig_cuda_set_tf32(false), IG_OK);
    expect_match(ig_matmul(on(a, IG_CUDA), on(b, IG_CUDA)), want, IG_CUDA, "ig_matmul after TF32 off");
    /* TF32 is close (10-bit mantissa) but not fp32-exact; only check it is sane. */
    double g[64 * 48], w[64 * 48], maxd = 0, maxa = 0;
    cr_assert_eq(ig_tensor_to_buffer(fast, IG_F64, g, 64 * 48), IG_OK);
    cr_assert_eq(ig_tensor_to_buffer(want, IG_F64, w, 64 * 48), IG_OK);
    for (int i = 0; i < 64 * 48; i++) {
        maxd = fmax(maxd, fabs(g[i] - w[i]));
        maxa = fmax(maxa, fabs(w[i]));
    }
    cr_assert_lt(maxd, 1e-2 * maxa, "TF32 result off by %g (max %g)", maxd, maxa);
    ig_scope_end(s);
}

Test(cuda, errors) {
    need_cuda();
    ig_scope *s = ig_scope_begin();
    ig_tensor *c = ig_ones(2, (const int64_t[]){2, 3}, IG_F32), *g = on(c, IG_CUDA);
    cr_assert_null(ig_add(c, g));
    cr_assert_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_assert_str_eq(ig_last_error(), "ig_add: tensors are on different devices (cpu and cuda)");
    cr_assert_null(ig_matmul(g, ig_transpose(c, 0, 1)));
    cr_assert_str_eq(ig_last_error(), "ig_matmul: tensors are on different devices (cuda and cpu)");
    ig_tensor *x4 = on(ig_ones(4, (const int64_t[]){1, 1, 4, 4}, IG_F32), IG_CUDA);
    ig_tensor *w4 = on(ig_ones(4, (const int64_t[]){1, 1, 3, 3}, IG_F32), IG_CUDA);
    cr_assert_null(ig_conv2d(x4, ig_ones(4, (const int64_t[]){1, 1, 3, 3}, IG_F32), NULL, NULL));
    cr_assert_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_assert_str_eq(ig_last_error(), "ig_conv2d: tensors are on different devices (cuda and cpu)");
    cr_assert_not_null(ig_conv2d(x4, w4, NULL, NULL), "%s", ig_last_error());
    cr_assert_null(ig_cross_entropy(g, ig_zeros(1, (const int64_t[]){2}, IG_I64), NULL));
    cr_assert_str_eq(ig_last_error(), "ig_cross_entropy: tensors are on different devices (cuda and cpu)");
    cr_assert_null(ig_batch_norm(x4, ig_zeros(1, (const int64_t[]){1}, IG_F32), NULL, NULL, NULL, true, 0.1, 1e-5));
    cr_assert_str_eq(ig_last_error(), "ig_batch_norm: tensors are on different devices (cpu and cuda)");
    cr_assert_null(ig_gather(g, 0, ig_zeros(2, (const int64_t[]){1, 3}, IG_I64)));
    cr_assert_str_eq(ig_last_error(), "ig_gather: tensors are on different devices (cuda and cpu)");
    cr_assert_null(ig_tensor_data(g));
    cr_assert_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_assert_float_eq(ig_item(ig_sum(g, 0, NULL, false)), 6.0, 0);
    cr_assert_float_eq(ig_tensor_get(g, 4), 1.0, 0);
    ig_scope_end(s);
}

/* The harness on the CPU: the same checks, CPU against CPU, on any machine. */
Test(cuda_harness, binary) { check_binary(IG_CPU); }
Test(cuda_harness, scalar_and_where) { check_scalar_and_where(IG_CPU); }
Test(cuda_harness, unary) { check_unary(IG_CPU); }
Test(cuda_harness, reduce) { check_reduce(IG_CPU); }
Test(cuda_harness, matmul) { check_matmul(IG_CPU); check_matmul_errors(IG_CPU); }
Test(cuda_harness, softmax) { check_softmax(IG_CPU); }
Test(cuda_harness, copies) { check_copies(IG_CPU); }
Test(cuda_harness, backward) { check_backward(IG_CPU); }
Test(cuda_harness, gradcheck) { check_gradcheck(IG_CPU); }
Test(cuda_harness, allocator) { check_allocator(IG_CPU); }
Test(cuda_harness, gather_forward) { check_gather(IG_CPU); }
Test(cuda_harness, gather_backward) { check_gather_backward(IG_CPU); }
Test(cuda_harness, gather_errors) { check_gather_errors(IG_CPU); }
Test(cuda_harness, one_hot) { check_one_hot(IG_CPU); }
