/*
 * tests/cuda/test_cuda_bf16_ew.c — the CUDA backend's native bf16 kernels of the groups
 * IGI_BF16_EW (binary, scalar, where, unary, unary_backward, mask_apply), IGI_BF16_REDUCE
 * (reduce, reduce_scatter) and IGI_BF16_POOL (pool2d, pool2d_backward), and copy's f32 <->
 * bf16 rounding.
 *
 * The kernel tests call the table directly (core's dispatch is checked separately). Every
 * operand exists twice on the device with the same values (bf16-representable): as f32 and
 * as bf16. The reference is core's fallback path: the f32 entry on the f32 operands, its
 * result rounded on the host with igi_bf16_from_f32. The bf16 entry must give those bits
 * exactly (a NaN only needs to be a NaN: a GPU's conversion writes its own canonical NaN).
 * Operands are broadcast, transposed and sliced; data holds NaN, infinities, signed zeros,
 * huge and subnormal values. Suite cuda: each test skips without a device.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_impl.h"
#include "core/tensor_impl.h" /* igi_data, igi_bf16_from_f32 / igi_bf16_to_f32 */
#include "cuda_test_util.h"
#include "ignis.h"

/* The CUDA table (skips the test without a device). */
static const igi_backend *cuda_be(void) {
    need_cuda();
    const igi_backend *be = igi_backend_get("test", IG_CUDA);
    cr_assert(be, "%s", ig_last_error());
    return be;
}

static bool bf16_is_nan(uint16_t h) { return (h & 0x7fffu) > 0x7f80u; }

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_of_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- operands in both precisions --------------------------------------------------------- */

/* One operand on the device: f (f32, or the u8 / int64 tensor itself) and b (bf16, or the
 * same tensor) hold the same values. */
typedef struct {
    ig_tensor *f, *b;
} dual;

/* Values worth a test (huge and subnormal ones rounded to bf16 with the rest). */
static const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 3.0e38f, -2.5f, 1.0f, 9.1835e-41f /* subnormal */};
#define N_SPECIALS (sizeof specials / sizeof specials[0])

/* A CPU f32 tensor of bf16-exact values: normal values times scale (plus shift), with the
 * specials spread over it when with_specials. */
static ig_tensor *bf16_values(int ndim, const int64_t *shape, double scale, double shift, bool with_specials) {
    ig_tensor *t = ig_add_scalar(ig_mul_scalar(ig_randn(ndim, shape, IG_F32), scale), shift);
    cr_assert(t, "%s", ig_last_error());
    int64_t n = ig_tensor_numel(t);
    float *p = ig_tensor_data(t);
    if (with_specials && n >= 2 * (int64_t)N_SPECIALS)
        for (size_t k = 0; k < N_SPECIALS; k++) p[(int64_t)k * (n / (int64_t)N_SPECIALS) + 1] = specials[k];
    t = ig_to_dtype(ig_to_dtype(t, IG_BF16), IG_F32); /* every value bf16-exact */
    cr_assert(t, "%s", ig_last_error());
    return t;
}

/* The f32 CPU tensor t (bf16-exact values) on the device in both precisions. */
static dual dual_of(ig_tensor *t) {
    dual d = {on(t, IG_CUDA), on(ig_to_dtype(t, IG_BF16), IG_CUDA)};
    return d;
}

/* The same tensor (a u8 mask or condition) as both. */
static dual dual_same(ig_tensor *t) {
    ig_tensor *x = on(t, IG_CUDA);
    dual d = {x, x};
    return d;
}

/* A zeroed output: f32 and bf16, or u8 for both. */
static dual dual_out(int ndim, const int64_t *shape, bool u8) {
    if (u8) {
        ig_tensor *x = on(ig_zeros(ndim, shape, IG_U8), IG_CUDA);
        dual d = {x, on(ig_zeros(ndim, shape, IG_U8), IG_CUDA)};
        return d;
    }
    dual d = {on(ig_zeros(ndim, shape, IG_F32), IG_CUDA), on(ig_zeros(ndim, shape, IG_BF16), IG_CUDA)};
    return d;
}

static dual dual_transpose(dual d, int a, int b) {
    dual r = {ig_transpose(d.f, a, b), ig_transpose(d.b, a, b)};
    cr_assert(r.f && r.b, "%s", ig_last_error());
    return r;
}

static dual dual_slice(dual d, int dim, int64_t start, int64_t end, int64_t step) {
    dual r = {ig_slice(d.f, dim, start, end, step), ig_slice(d.b, dim, start, end, step)};
    cr_assert(r.f && r.b, "%s", ig_last_error());
    return r;
}

/* Asserts the bf16 result got equals the f32 result ref rounded to bf16 (both NaN is
 * enough for a NaN), or, for u8 / int64 outputs, the same values. */
static void expect_rounded(dual out, const char *what) {
    ig_tensor *f = on(out.f, IG_CPU), *b = on(out.b, IG_CPU);
    int64_t n = ig_tensor_numel(f);
    cr_assert_eq(ig_tensor_numel(b), n, "%s: sizes differ", what);
    if (ig_tensor_dtype(f) != IG_F32) {
        cr_assert_eq(ig_tensor_dtype(b), ig_tensor_dtype(f), "%s: dtypes differ", what);
        size_t es = ig_dtype_size(ig_tensor_dtype(f));
        const char *pf = ig_tensor_data(f), *pb = ig_tensor_data(b);
        for (int64_t i = 0; i < n; i++)
            cr_assert(memcmp(pf + i * (int64_t)es, pb + i * (int64_t)es, es) == 0, "%s: element %lld differs", what,
                      (long long)i);
        return;
    }
    cr_assert_eq(ig_tensor_dtype(b), IG_BF16, "%s: output dtype %s", what, ig_dtype_name(ig_tensor_dtype(b)));
    const float *pf = ig_tensor_data(f);
    const uint16_t *pb = ig_tensor_data(b);
    for (int64_t i = 0; i < n; i++) {
        uint16_t want = igi_bf16_from_f32(pf[i]);
        if (bf16_is_nan(want)) {
            cr_assert(bf16_is_nan(pb[i]), "%s: element %lld: 0x%04x, want a NaN", what, (long long)i, pb[i]);
            continue;
        }
        cr_assert_eq(pb[i], want, "%s: element %lld: 0x%04x (%g), want 0x%04x (%g from f32 %.9g)", what, (long long)i,
                     pb[i], (double)igi_bf16_to_f32(pb[i]), want, (double)igi_bf16_to_f32(want), (double)pf[i]);
    }
}

/* ---- elementwise --------------------------------------------------------------------------- */

enum ew_entry { EW_BINARY, EW_SCALAR, EW_WHERE, EW_UNARY, EW_UNARY_BWD, EW_MASK };

typedef struct {
    enum ew_entry entry;
    int kind;
    double s; /* scalar / mask_apply's scale */
    bool mul;
    igi_unary_params p;
} ew_call;

static ig_status call_ew(const igi_backend *be, const ew_call *c, const igi_ew *e) {
    switch (c->entry) {
    case EW_BINARY: return be->binary("test", c->kind, e);
    case EW_SCALAR: return be->scalar("test", e, c->s, c->mul);
    case EW_WHERE: return be->where("test", e);
    case EW_UNARY: return be->unary("test", c->kind, e, &c->p);
    case EW_UNARY_BWD: return be->unary_backward("test", c->kind, e, &c->p);
    default: return be->mask_apply("test", e, c->s);
    }
}

/* Runs c on the f32 operands and on the bf16 ones (ops[0] the output) and compares. */
static void check_ew(const ew_call *c, int nops, const dual *ops, const char *what) {
    const igi_backend *be = cuda_be();
    ig_tensor *f[IGI_EW_MAX], *b[IGI_EW_MAX];
    for (int k = 0; k < nops; k++) {
        f[k] = ops[k].f;
        b[k] = ops[k].b;
    }
    igi_ew ef, eb;
    cr_assert(igi_ew_make(f, nops, &ef), "%s: empty", what);
    cr_assert(igi_ew_make(b, nops, &eb), "%s: empty", what);
    cr_assert_eq(call_ew(be, c, &ef), IG_OK, "%s (f32): %s", what, ig_last_error());
    cr_assert_eq(call_ew(be, c, &eb), IG_OK, "%s (bf16): %s", what, ig_last_error());
    expect_rounded(ops[0], what);
}

static const char *const bin_names[] = {"add", "sub", "mul", "div", "eq", "gt", "lt"};

/* Core's dispatch: with the group's bit in the table's mask an op hands the entry bf16
 * operands; without it, f32 copies (core/ops/bf16.c). A copy of the real table whose unary
 * entry records the dtype it was given stands in, then the real table is put back. */
static const igi_backend *real_be;
static ig_dtype seen_dtype;
static ig_status recording_unary(const char *op, int kind, const igi_ew *e, const igi_unary_params *p) {
    seen_dtype = e->dtype[1];
    return real_be->unary(op, kind, e, p);
}

Test(cuda, bf16_ops_reach_native_entries_only_with_the_mask_bit) {
    real_be = cuda_be();
    ig_scope *s = ig_scope_begin();
    float v[4] = {-1.5f, 0.25f, 3.0f, -0.0f};
    ig_tensor *x = ig_to(ig_to_dtype(ig_from_data(IG_DIMS(4), IG_F32, v), IG_BF16), IG_CUDA);
    cr_assert(x, "%s", ig_last_error());
    for (int native = 1; native >= 0; native--) {
        igi_backend t = *real_be;
        t.unary = recording_unary;
        t.bf16 = native ? real_be->bf16 : (real_be->bf16 & ~(unsigned)IGI_BF16_EW);
        igi_backend_register(IG_CUDA, &t);
        seen_dtype = IG_DTYPE_COUNT;
        ig_tensor *y = ig_relu(x);
        igi_backend_register(IG_CUDA, real_be);
        cr_assert(y, "%s", ig_last_error());
        cr_expect_eq(seen_dtype, native ? IG_BF16 : IG_F32, "native %d: the entry saw %s", native,
                     ig_dtype_name(seen_dtype));
        cr_expect_eq(ig_tensor_dtype(y), IG_BF16);
        ig_tensor *h = ig_to_dtype(ig_to(y, IG_CPU), IG_F32);
        const float *hp = ig_tensor_data(h);
        for (int i = 0; i < 4; i++) cr_expect_eq(hp[i], fmaxf(v[i], 0.0f), "native %d: relu[%d]", native, i);
    }
    ig_scope_end(s);
}

Test(cuda, bf16_table_names_its_native_groups) {
    const igi_backend *be = cuda_be();
    unsigned want = IGI_BF16_EW | IGI_BF16_REDUCE | IGI_BF16_POOL;
    cr_assert_eq(be->bf16 & want, want, "bf16 mask 0x%x lacks some of 0x%x", be->bf16, want);
}

Test(cuda, bf16_copy_rounds_to_nearest_even) {
    const igi_backend *be = cuda_be();
    ig_scope *s = ig_scope_begin();
    /* f32 bit patterns and the bf16 bits they round to (hand-computed). */
    static const uint32_t in[] = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f817fffu, 0x7f800000u, 0xff800000u,
                                  0x7f7fffffu, 0x80000000u, 0x00000001u, 0x7fc00000u, 0xffc00001u, 0x7f800001u};
    static const uint16_t want[] = {0x3f80, 0x3f82, 0x3f81, 0x3f81, 0x7f80, 0xff80,
                                    0x7f80, 0x8000, 0x0000, 0x7fc0, 0xffc0, 0x7fc0};
    enum { N = sizeof in / sizeof in[0] };
    float v[N];
    for (int i = 0; i < N; i++) v[i] = f32_of_bits(in[i]);
    ig_tensor *src = on(ig_from_data(1, (const int64_t[]){N}, IG_F32, v), IG_CUDA);
    ig_tensor *dst = on(ig_zeros(1, (const int64_t[]){N}, IG_BF16), IG_CUDA);
    igi_ew e;
    cr_assert(igi_ew_make((ig_tensor *const[]){dst, src}, 2, &e));
    cr_assert_eq(be->copy("test", &e), IG_OK, "%s", ig_last_error());
    const uint16_t *got = ig_tensor_data(on(dst, IG_CPU));
    for (int i = 0; i < N; i++) {
        if (bf16_is_nan(want[i])) {
            cr_assert(bf16_is_nan(got[i]), "f32 0x%08x: 0x%04x, want a NaN", in[i], got[i]);
            cr_assert_eq(got[i] & 0x8000, want[i] & 0x8000, "f32 0x%08x: NaN sign", in[i]);
        } else {
            cr_assert_eq(got[i], want[i], "f32 0x%08x: 0x%04x, want 0x%04x", in[i], got[i], want[i]);
        }
    }
    /* And back, bf16 -> f32 exactly (a transposed source), inf and NaN included. */
    ig_tensor *h = on(ig_from_data(2, (const int64_t[]){2, 3}, IG_F32,
                                   (const float[]){1.0f, -INFINITY, NAN, 0.00390625f, 3.0e38f, -0.0f}),
                      IG_CPU);
    ig_tensor *hb = ig_transpose(on(ig_to_dtype(h, IG_BF16), IG_CUDA), 0, 1);
    ig_tensor *back = on(ig_zeros(2, (const int64_t[]){3, 2}, IG_F32), IG_CUDA);
    cr_assert(igi_ew_make((ig_tensor *const[]){back, hb}, 2, &e));
    cr_assert_eq(be->copy("test", &e), IG_OK, "%s", ig_last_error());
    const float *bf = ig_tensor_data(on(back, IG_CPU));
    const float *hf = ig_tensor_data(ig_to_dtype(ig_to_dtype(h, IG_BF16), IG_F32));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 2; c++) {
            float w = hf[c * 3 + r], g = bf[r * 2 + c];
            if (isnan(w)) cr_assert(isnan(g), "[%d,%d]: %g, want NaN", r, c, (double)g);
            else cr_assert_eq(f32_bits(g), f32_bits(w), "[%d,%d]: %g, want %g", r, c, (double)g, (double)w);
        }
    ig_scope_end(s);
}

Test(cuda, bf16_binary_matches_rounded_f32) {
    cuda_be();
    ig_manual_seed(11);
    for (int kind = 0; kind < IGI_BIN_COUNT; kind++) {
        bool cmp = kind >= IGI_BIN_EQ;
        ew_call c = {.entry = EW_BINARY, .kind = kind};
        char what[96];
        ig_scope *s = ig_scope_begin();
        /* same shape */
        int64_t sh[2] = {5, 33};
        dual a = dual_of(bf16_values(2, sh, 3.0, 0.0, true)), b = dual_of(bf16_values(2, sh, 3.0, 0.0, true));
        snprintf(what, sizeof what, "binary %s same shape", bin_names[kind]);
        check_ew(&c, 3, (dual[]){dual_out(2, sh, cmp), a, b}, what);
        /* broadcast: [4,1,6] with [3,1] -> [4,3,6] */
        dual ba = dual_of(bf16_values(3, (const int64_t[]){4, 1, 6}, 2.0, 0.5, false));
        dual bb = dual_of(bf16_values(2, (const int64_t[]){3, 1}, 2.0, 0.0, false));
        dual bo = dual_out(3, (const int64_t[]){4, 3, 6}, cmp);
        snprintf(what, sizeof what, "binary %s broadcast", bin_names[kind]);
        check_ew(&c, 3, (dual[]){bo, ba, bb}, what);
        /* the same with b expanded by a view (stride 0) */
        dual bbe = {ig_expand(bb.f, 3, (const int64_t[]){4, 3, 6}), ig_expand(bb.b, 3, (const int64_t[]){4, 3, 6})};
        cr_assert(bbe.f && bbe.b, "%s", ig_last_error());
        snprintf(what, sizeof what, "binary %s expanded", bin_names[kind]);
        check_ew(&c, 3, (dual[]){dual_out(3, (const int64_t[]){4, 3, 6}, cmp), ba, bbe}, what);
        /* strided: a [7,5] transposed, b a step slice of [1,14] expanded to [5,7] */
        dual sa = dual_transpose(dual_of(bf16_values(2, (const int64_t[]){7, 5}, 1.0, 0.0, true)), 0, 1);
        dual sb = dual_slice(dual_of(bf16_values(2, (const int64_t[]){1, 14}, 1.0, 0.0, false)), 1, 0, 14, 2);
        dual sbe = {ig_expand(sb.f, 2, (const int64_t[]){5, 7}), ig_expand(sb.b, 2, (const int64_t[]){5, 7})};
        cr_assert(sbe.f && sbe.b, "%s", ig_last_error());
        snprintf(what, sizeof what, "binary %s strided", bin_names[kind]);
        check_ew(&c, 3, (dual[]){dual_out(2, (const int64_t[]){5, 7}, cmp), sa, sbe}, what);
        ig_scope_end(s);
    }
}

Test(cuda, bf16_add_rounds_ties_to_even) {
    const igi_backend *be = cuda_be();
    ig_scope *s = ig_scope_begin();
    /* 1 + 2^-8 = 0x3f808000 -> 0x3f80; 1.0078125 + 2^-8 = 0x3f818000 -> 0x3f82;
     * 1 + 3 * 2^-9 = 0x3f80c000 -> 0x3f81 (above the tie). */
    ig_tensor *a = on(ig_to_dtype(ig_from_data(1, (const int64_t[]){3}, IG_F32, (const float[]){1.0f, 1.0078125f, 1.0f}),
                                  IG_BF16),
                      IG_CUDA);
    ig_tensor *b = on(ig_to_dtype(ig_from_data(1, (const int64_t[]){3}, IG_F32,
                                               (const float[]){0.00390625f, 0.00390625f, 0.005859375f}),
                                  IG_BF16),
                      IG_CUDA);
    ig_tensor *o = on(ig_zeros(1, (const int64_t[]){3}, IG_BF16), IG_CUDA);
    igi_ew e;
    cr_assert(igi_ew_make((ig_tensor *const[]){o, a, b}, 3, &e));
    cr_assert_eq(be->binary("test", IGI_BIN_ADD, &e), IG_OK, "%s", ig_last_error());
    const uint16_t *g = ig_tensor_data(on(o, IG_CPU));
    cr_assert_eq(g[0], 0x3f80);
    cr_assert_eq(g[1], 0x3f82);
    cr_assert_eq(g[2], 0x3f81);
    ig_scope_end(s);
}

Test(cuda, bf16_scalar_matches_rounded_f32) {
    cuda_be();
    ig_manual_seed(12);
    /* 0.1 is not a float: the kernel must round it to float first, as the f32 one does. */
    static const double ss[] = {0.1, 3.0, -1.5e-3, 1.0e39};
    for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++)
        for (int mul = 0; mul < 2; mul++) {
            ig_scope *s = ig_scope_begin();
            ew_call c = {.entry = EW_SCALAR, .s = ss[k], .mul = mul != 0};
            dual x = dual_transpose(dual_of(bf16_values(2, (const int64_t[]){9, 31}, 4.0, 0.0, true)), 0, 1);
            char what[96];
            snprintf(what, sizeof what, "scalar %s %g", mul ? "mul" : "add", ss[k]);
            check_ew(&c, 2, (dual[]){dual_out(2, (const int64_t[]){31, 9}, false), x}, what);
            ig_scope_end(s);
        }
}

Test(cuda, bf16_where_selects_the_bits) {
    cuda_be();
    ig_manual_seed(13);
    ig_scope *s = ig_scope_begin();
    int64_t sh[2] = {6, 17};
    ew_call c = {.entry = EW_WHERE};
    dual a = dual_of(bf16_values(2, sh, 1.0, 0.0, true));
    dual b = dual_transpose(dual_of(bf16_values(2, (const int64_t[]){17, 6}, 1.0, 0.0, true)), 0, 1);
    /* u8 condition, and a bf16 / f32 one with a NaN and a -0 (NaN selects, -0 does not) */
    dual cu = dual_same(ig_randint(0, 2, 2, sh, IG_U8));
    check_ew(&c, 4, (dual[]){dual_out(2, sh, false), cu, a, b}, "where u8 cond");
    ig_tensor *cf = bf16_values(2, sh, 1.0, 0.0, true);
    float *p = ig_tensor_data(cf);
    for (int i = 0; i < 20; i++) p[i * 5] = 0.0f;
    p[3] = -0.0f;
    p[4] = NAN;
    check_ew(&c, 4, (dual[]){dual_out(2, sh, false), dual_of(cf), a, b}, "where float cond");
    ig_scope_end(s);
}

/* Kinds with their parameters (pow both ways, clamp with and without a NaN bound). */
static const struct {
    int kind;
    igi_unary_params p;
} unary_cases[] = {
    {IGI_UN_NEG, {.a = 0}},
    {IGI_UN_POW, {.a = 2.5}},
    {IGI_UN_POW, {.a = -1.0}},
    {IGI_UN_POW, {.a = 0.0}},
    {IGI_UN_EXP, {.a = 0}},
    {IGI_UN_LOG, {.a = 0}},
    {IGI_UN_SQRT, {.a = 0}},
    {IGI_UN_ABS, {.a = 0}},
    {IGI_UN_CLAMP, {.a = -0.5, .b = 0.75}},
    {IGI_UN_CLAMP, {.a = 0.3, .b = 0.1}},
    {IGI_UN_CLAMP, {.a = NAN, .b = 1.0, .nan_bound = true}},
    {IGI_UN_RELU, {.a = 0}},
    {IGI_UN_LEAKY_RELU, {.a = 0.01}},
    {IGI_UN_SIGMOID, {.a = 0}},
    {IGI_UN_TANH, {.a = 0}},
    {IGI_UN_GELU, {.a = 0}},
    {IGI_UN_SILU, {.a = 0}},
};

Test(cuda, bf16_unary_matches_rounded_f32) {
    cuda_be();
    ig_manual_seed(14);
    for (size_t k = 0; k < sizeof unary_cases / sizeof unary_cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ew_call c = {.entry = EW_UNARY, .kind = unary_cases[k].kind, .p = unary_cases[k].p};
        dual x = dual_slice(dual_of(bf16_values(2, (const int64_t[]){8, 40}, 2.0, 0.0, true)), 1, 1, 40, 3);
        char what[96];
        snprintf(what, sizeof what, "unary kind %d case %zu", unary_cases[k].kind, k);
        check_ew(&c, 2, (dual[]){dual_out(2, (const int64_t[]){8, 13}, false), x}, what);
        ig_scope_end(s);
    }
}

Test(cuda, bf16_unary_backward_matches_rounded_f32) {
    cuda_be();
    ig_manual_seed(15);
    for (size_t k = 0; k < sizeof unary_cases / sizeof unary_cases[0]; k++) {
        ig_scope *s = ig_scope_begin();
        ew_call c = {.entry = EW_UNARY_BWD, .kind = unary_cases[k].kind, .p = unary_cases[k].p};
        int64_t sh[2] = {7, 23};
        dual g = dual_of(bf16_values(2, sh, 1.0, 0.0, true));
        dual v = dual_transpose(dual_of(bf16_values(2, (const int64_t[]){23, 7}, 1.5, 0.0, true)), 0, 1);
        char what[96];
        snprintf(what, sizeof what, "unary_backward kind %d case %zu", unary_cases[k].kind, k);
        check_ew(&c, 3, (dual[]){dual_out(2, sh, false), g, v}, what);
        ig_scope_end(s);
    }
}

Test(cuda, bf16_mask_apply_matches_rounded_f32) {
    cuda_be();
    ig_manual_seed(16);
    ig_scope *s = ig_scope_begin();
    int64_t sh[2] = {9, 30};
    ew_call c = {.entry = EW_MASK, .s = 1.0 / (1.0 - 0.3)};
    dual a = dual_transpose(dual_of(bf16_values(2, (const int64_t[]){30, 9}, 1.0, 0.0, true)), 0, 1);
    dual m = dual_same(ig_randint(0, 2, 2, sh, IG_U8));
    check_ew(&c, 3, (dual[]){dual_out(2, sh, false), a, m}, "mask_apply");
    ig_scope_end(s);
}

/* ---- reductions ---------------------------------------------------------------------------- */

/* x [6, 37, 5] contiguous: reductions over dim 1, over dims (0, 2), over everything. */
static void red_geometry(int which, igi_red *r) {
    if (which == 0) {
        *r = (igi_red){.nk = 2, .nr = 1, .kshape = {6, 5}, .kstride = {185, 1}, .rshape = {37}, .rstride = {5},
                       .n_out = 30, .n_red = 37};
    } else if (which == 1) {
        *r = (igi_red){.nk = 1, .nr = 2, .kshape = {37}, .kstride = {5}, .rshape = {6, 5}, .rstride = {185, 1},
                       .n_out = 37, .n_red = 30};
    } else {
        *r = (igi_red){.nk = 0, .nr = 1, .rshape = {1110}, .rstride = {1}, .n_out = 1, .n_red = 1110};
    }
}

static const char *const red_names[] = {"sum", "mean", "var", "max", "min"};

Test(cuda, bf16_reduce_matches_rounded_f32) {
    const igi_backend *be = cuda_be();
    ig_manual_seed(17);
    int64_t sh[3] = {6, 37, 5};
    for (int specials_on = 0; specials_on < 2; specials_on++)
        for (int which = 0; which < 3; which++)
            for (int kind = IGI_RED_SUM; kind <= IGI_RED_MIN; kind++) {
                ig_scope *s = ig_scope_begin();
                dual x = dual_of(bf16_values(3, sh, 3.0, 1.0, specials_on != 0));
                igi_red rf, rb;
                red_geometry(which, &rf);
                int64_t no = rf.n_out;
                dual out = dual_out(1, &no, false);
                ig_tensor *idf = on(ig_zeros(1, &no, IG_I64), IG_CUDA), *idb = on(ig_zeros(1, &no, IG_I64), IG_CUDA);
                bool ext = kind == IGI_RED_MAX || kind == IGI_RED_MIN;
                rb = rf;
                rf.in = igi_data(x.f);
                rf.in_dtype = IG_F32;
                rf.out = igi_data(out.f);
                rf.out_dtype = IG_F32;
                rb.in = igi_data(x.b);
                rb.in_dtype = IG_BF16;
                rb.out = igi_data(out.b);
                rb.out_dtype = IG_BF16;
                if (ext) {
                    rf.index = (int64_t *)(void *)igi_data(idf);
                    rb.index = (int64_t *)(void *)igi_data(idb);
                }
                double div = kind == IGI_RED_MEAN ? (double)rf.n_red : kind == IGI_RED_VAR ? (double)(rf.n_red - 1) : 1;
                char what[96];
                snprintf(what, sizeof what, "reduce %s geometry %d%s", red_names[kind], which,
                         specials_on ? " with specials" : "");
                cr_assert_eq(be->reduce("test", kind, &rf, div), IG_OK, "%s (f32): %s", what, ig_last_error());
                cr_assert_eq(be->reduce("test", kind, &rb, div), IG_OK, "%s (bf16): %s", what, ig_last_error());
                expect_rounded(out, what);
                if (ext) expect_rounded((dual){idf, idb}, what);
                ig_scope_end(s);
            }
}

Test(cuda, bf16_reduce_scatter_places_the_gradient) {
    const igi_backend *be = cuda_be();
    ig_manual_seed(18);
    ig_scope *s = ig_scope_begin();
    int64_t sh[3] = {6, 37, 5};
    dual x = dual_of(bf16_values(3, sh, 1.0, 0.0, false));
    igi_red r;
    red_geometry(0, &r);
    int64_t no = r.n_out;
    ig_tensor *idx = on(ig_zeros(1, &no, IG_I64), IG_CUDA);
    r.in = igi_data(x.f);
    r.in_dtype = IG_F32;
    r.index = (int64_t *)(void *)igi_data(idx);
    cr_assert_eq(be->reduce("test", IGI_RED_MAX, &r, 1), IG_OK, "%s", ig_last_error());
    dual g = dual_of(bf16_values(1, &no, 2.0, 0.0, true));
    dual gin = dual_out(3, sh, false);
    igi_red rf = r, rb = r;
    rf.out = igi_data(gin.f);
    rf.out_dtype = IG_F32;
    rb.in_dtype = IG_BF16;
    rb.in = igi_data(x.b);
    rb.out = igi_data(gin.b);
    rb.out_dtype = IG_BF16;
    cr_assert_eq(be->reduce_scatter("test", &rf, igi_data(g.f)), IG_OK, "%s", ig_last_error());
    cr_assert_eq(be->reduce_scatter("test", &rb, igi_data(g.b)), IG_OK, "%s", ig_last_error());
    expect_rounded(gin, "reduce_scatter");
    ig_scope_end(s);
}

/* ---- pooling ------------------------------------------------------------------------------- */

/* Pool geometries over x [2, 3, 9, 11]: fixed windows (padding counted or not), adaptive. */
static igi_pool pool_geometry(int which) {
    igi_pool g = {.N = 2, .C = 3, .in = {9, 11}};
    if (which == 2) {
        g.adaptive = true;
        g.out[0] = 4;
        g.out[1] = 5;
        return g;
    }
    g.k[0] = 3;
    g.k[1] = 2;
    g.s[0] = g.s[1] = 2;
    g.p[0] = g.p[1] = 1;
    g.exclude = which == 1;
    for (int a = 0; a < 2; a++) g.out[a] = (g.in[a] + 2 * g.p[a] - g.k[a]) / g.s[a] + 1;
    return g;
}

Test(cuda, bf16_pool_matches_rounded_f32) {
    const igi_backend *be = cuda_be();
    ig_manual_seed(19);
    for (int which = 0; which < 3; which++)
        for (int max = 0; max < 2; max++) {
            ig_scope *s = ig_scope_begin();
            igi_pool g = pool_geometry(which);
            /* x: a [2, 3, 11, 9] tensor transposed to [2, 3, 9, 11] */
            dual x = dual_transpose(dual_of(bf16_values(4, (const int64_t[]){2, 3, 11, 9}, 2.0, 0.0, true)), 2, 3);
            memcpy(g.xs, ig_tensor_strides(x.f), sizeof g.xs);
            cr_assert(memcmp(ig_tensor_strides(x.b), g.xs, sizeof g.xs) == 0);
            int64_t osh[4] = {2, 3, g.out[0], g.out[1]};
            dual out = dual_out(4, osh, false);
            ig_tensor *idf = on(ig_zeros(4, osh, IG_I64), IG_CUDA), *idb = on(ig_zeros(4, osh, IG_I64), IG_CUDA);
            int64_t *pif = max ? (int64_t *)(void *)igi_data(idf) : NULL;
            int64_t *pib = max ? (int64_t *)(void *)igi_data(idb) : NULL;
            char what[96];
            snprintf(what, sizeof what, "pool2d %s geometry %d", max ? "max" : "avg", which);
            cr_assert_eq(be->pool2d("test", max, IG_F32, &g, igi_data(x.f), igi_data(out.f), pif), IG_OK, "%s: %s", what,
                         ig_last_error());
            cr_assert_eq(be->pool2d("test", max, IG_BF16, &g, igi_data(x.b), igi_data(out.b), pib), IG_OK, "%s: %s",
                         what, ig_last_error());
            expect_rounded(out, what);
            if (max) expect_rounded((dual){idf, idb}, what);

            /* backward: gout [2, 3, Ho, Wo] (a transposed view), the f32 argmax for both */
            dual go = dual_transpose(dual_of(bf16_values(4, (const int64_t[]){2, 3, g.out[1], g.out[0]}, 1.0, 0.0, true)),
                                     2, 3);
            igi_pool gb = g;
            memcpy(gb.xs, ig_tensor_strides(go.f), sizeof gb.xs);
            dual dx = dual_out(4, (const int64_t[]){2, 3, 9, 11}, false);
            snprintf(what, sizeof what, "pool2d_backward %s geometry %d", max ? "max" : "avg", which);
            cr_assert_eq(be->pool2d_backward("test", max, IG_F32, &gb, igi_data(go.f), pif, igi_data(dx.f)), IG_OK,
                         "%s: %s", what, ig_last_error());
            cr_assert_eq(be->pool2d_backward("test", max, IG_BF16, &gb, igi_data(go.b), pif, igi_data(dx.b)), IG_OK,
                         "%s: %s", what, ig_last_error());
            expect_rounded(dx, what);
            ig_scope_end(s);
        }
}

/* Sums accumulate in double, as f32's do: 2^24 + 1 - 2^24 is 1 (in float it would be 0).
 * One slice of 513 elements: thread 0 of the block reads j = 0, 256, 512 in that order. */
Test(cuda, bf16_sum_accumulates_in_double) {
    const igi_backend *be = cuda_be();
    ig_scope *s = ig_scope_begin();
    float v[513] = {0};
    v[0] = 16777216.0f;
    v[256] = 1.0f;
    v[512] = -16777216.0f;
    ig_tensor *x = on(ig_to_dtype(ig_from_data(1, (const int64_t[]){513}, IG_F32, v), IG_BF16), IG_CUDA);
    ig_tensor *o = on(ig_zeros(1, (const int64_t[]){1}, IG_BF16), IG_CUDA);
    igi_red r = {.nk = 0, .nr = 1, .rshape = {513}, .rstride = {1}, .n_out = 1, .n_red = 513,
                 .in = igi_data(x), .in_dtype = IG_BF16, .out = igi_data(o), .out_dtype = IG_BF16};
    cr_assert_eq(be->reduce("test", IGI_RED_SUM, &r, 1), IG_OK, "%s", ig_last_error());
    cr_assert_eq(*(const uint16_t *)ig_tensor_data(on(o, IG_CPU)), 0x3f80, "sum: want 1");
    cr_assert_eq(be->reduce("test", IGI_RED_MEAN, &r, 0.5), IG_OK, "%s", ig_last_error());
    cr_assert_eq(*(const uint16_t *)ig_tensor_data(on(o, IG_CPU)), 0x4000, "mean with div 0.5: want 2");
    ig_scope_end(s);
}

/* Average pooling sums its window in double too: the window (2^24, 1, -2^24) averages to
 * 1/3 (0x3eab in bf16), not 0. */
Test(cuda, bf16_avg_pool_accumulates_in_double) {
    const igi_backend *be = cuda_be();
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = on(ig_to_dtype(ig_from_data(4, (const int64_t[]){1, 1, 1, 3}, IG_F32,
                                               (const float[]){16777216.0f, 1.0f, -16777216.0f}),
                                  IG_BF16),
                      IG_CUDA);
    ig_tensor *o = on(ig_zeros(4, (const int64_t[]){1, 1, 1, 1}, IG_BF16), IG_CUDA);
    igi_pool g = {.N = 1, .C = 1, .xs = {3, 3, 3, 1}, .in = {1, 3}, .out = {1, 1}, .k = {1, 3}, .s = {1, 3}};
    cr_assert_eq(be->pool2d("test", false, IG_BF16, &g, igi_data(x), igi_data(o), NULL), IG_OK, "%s",
                 ig_last_error());
    cr_assert_eq(*(const uint16_t *)ig_tensor_data(on(o, IG_CPU)), igi_bf16_from_f32((float)(1.0 / 3.0)));
    cr_assert_eq(igi_bf16_from_f32((float)(1.0 / 3.0)), 0x3eab);
    ig_scope_end(s);
}
