/*
 * core/ops/binary.c — broadcasting binary ops: add, sub, mul, div, the scalar forms,
 * where, and the comparisons (eq, gt, lt, which give u8 masks).
 *
 * Forward runs on the strided iterator with one typed loop per (op, dtype); contiguous
 * runs take a unit-stride path the compiler vectorises. Backward reduces each input's
 * gradient over the dims it was broadcast along (igi_sum_to).
 */
#include <math.h>
#include <string.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

/* The kinds are the backend's (a CUDA kernel gets the same number). */
enum { BIN_ADD = IGI_BIN_ADD, BIN_SUB = IGI_BIN_SUB, BIN_MUL = IGI_BIN_MUL, BIN_DIV = IGI_BIN_DIV,
       BIN_EQ = IGI_BIN_EQ, BIN_GT = IGI_BIN_GT, BIN_LT = IGI_BIN_LT };

/* Arithmetic loops: out = a OP b for one dtype T. */
#define ARITH_LOOP(NAME, T, EXPR)                                                         \
    IGI_HOT static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {                  \
        (void)ctx;                                                                        \
        if (s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T) && s[2] == (int64_t)sizeof(T)) {                \
            T *o = (T *)p[0];                                                             \
            const T *x = (const T *)p[1], *y = (const T *)p[2];                           \
            for (int64_t i = 0; i < n; i++) {                                             \
                T a = x[i], b = y[i];                                                     \
                o[i] = (T)(EXPR);                                                         \
            }                                                                             \
            return;                                                                       \
        }                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                                 \
            T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]);       \
            *(T *)(p[0] + i * s[0]) = (T)(EXPR);                                          \
        }                                                                                 \
    }


/* Integer add/sub/mul wrap (computed in unsigned arithmetic: no signed overflow UB). */
#define WRAP(T, U, e) ((T)(U)(e))
ARITH_LOOP(add_f32, float, a + b)
ARITH_LOOP(add_f64, double, a + b)
ARITH_LOOP(add_i32, int32_t, WRAP(int32_t, uint32_t, (uint32_t)a + (uint32_t)b))
ARITH_LOOP(add_i64, int64_t, WRAP(int64_t, uint64_t, (uint64_t)a + (uint64_t)b))
ARITH_LOOP(add_u8, uint8_t, a + b)
ARITH_LOOP(sub_f32, float, a - b)
ARITH_LOOP(sub_f64, double, a - b)
ARITH_LOOP(sub_i32, int32_t, WRAP(int32_t, uint32_t, (uint32_t)a - (uint32_t)b))
ARITH_LOOP(sub_i64, int64_t, WRAP(int64_t, uint64_t, (uint64_t)a - (uint64_t)b))
ARITH_LOOP(sub_u8, uint8_t, a - b)
ARITH_LOOP(mul_f32, float, a * b)
ARITH_LOOP(mul_f64, double, a * b)
ARITH_LOOP(mul_i32, int32_t, WRAP(int32_t, uint32_t, (uint32_t)a * (uint32_t)b))
ARITH_LOOP(mul_i64, int64_t, WRAP(int64_t, uint64_t, (uint64_t)a * (uint64_t)b))
ARITH_LOOP(mul_u8, uint8_t, (unsigned)a * (unsigned)b)
ARITH_LOOP(div_f32, float, a / b)
ARITH_LOOP(div_f64, double, a / b)
/* Integer division truncates like C; division by zero gives 0 (defined, no trap), and
 * INT_MIN / -1 wraps. */
ARITH_LOOP(div_i32, int32_t, b == 0 ? 0 : (b == -1 ? WRAP(int32_t, uint32_t, 0u - (uint32_t)a) : a / b))
ARITH_LOOP(div_i64, int64_t, b == 0 ? 0 : (b == -1 ? WRAP(int64_t, uint64_t, 0u - (uint64_t)a) : a / b))
ARITH_LOOP(div_u8, uint8_t, b == 0 ? 0 : a / b)

/* Comparison loops write u8 masks. */
#define CMP_LOOP(NAME, T, EXPR)                                                           \
    static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {                  \
        (void)ctx;                                                                        \
        for (int64_t i = 0; i < n; i++) {                                                 \
            T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]);       \
            *(uint8_t *)(p[0] + i * s[0]) = (EXPR) ? 1 : 0;                               \
        }                                                                                 \
    }
#define CMP_ALL(OPNAME, EXPR)                 \
    CMP_LOOP(OPNAME##_f32, float, EXPR)       \
    CMP_LOOP(OPNAME##_f64, double, EXPR)      \
    CMP_LOOP(OPNAME##_i32, int32_t, EXPR)     \
    CMP_LOOP(OPNAME##_i64, int64_t, EXPR)     \
    CMP_LOOP(OPNAME##_u8, uint8_t, EXPR)
CMP_ALL(eq, a == b)
CMP_ALL(gt, a > b)
CMP_ALL(lt, a < b)

static const igi_loop_fn binary_loops[][IG_DTYPE_COUNT] = {
    [BIN_ADD] = {add_f32, add_f64, add_i32, add_i64, add_u8},
    [BIN_SUB] = {sub_f32, sub_f64, sub_i32, sub_i64, sub_u8},
    [BIN_MUL] = {mul_f32, mul_f64, mul_i32, mul_i64, mul_u8},
    [BIN_DIV] = {div_f32, div_f64, div_i32, div_i64, div_u8},
    [BIN_EQ] = {eq_f32, eq_f64, eq_i32, eq_i64, eq_u8},
    [BIN_GT] = {gt_f32, gt_f64, gt_i32, gt_i64, gt_u8},
    [BIN_LT] = {lt_f32, lt_f64, lt_i32, lt_i64, lt_u8},
};

/* Validates, broadcasts and runs kind on a and b into a fresh output of dtype out_dt. */
static ig_tensor *binary_forward(const char *op, int kind, ig_tensor *a, ig_tensor *b, bool mask_out) {
    if (!a) {
        igi_error_null(op, "a");
        return NULL;
    }
    if (!b) {
        igi_error_null(op, "b");
        return NULL;
    }
    if (!igi_check_same_dtype(op, a, b) || !igi_check_same_device_any(op, a, b)) return NULL;
    const igi_backend *be = NULL;
    if (a->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, a->device, binary))) return NULL;
    int nd;
    int64_t shape[IG_MAX_DIMS];
    if (!igi_broadcast_shape(op, a->ndim, a->shape, b->ndim, b->shape, &nd, shape)) return NULL;
    ig_tensor *out = igi_tensor_new(op, nd, shape, mask_out ? IG_U8 : a->dtype, a->device);
    if (!out) return NULL;
    ig_tensor *ops[3] = {out, a, b};
    if (be) {
        igi_ew e;
        if (igi_ew_make(ops, 3, &e) && be->binary(op, kind, &e) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
        return out;
    }
    igi_iter_run_parallel(ops, 3, binary_loops[kind][a->dtype], NULL);
    return out;
}

/* ---- backward --------------------------------------------------------------------------- */

static ig_status add_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *a = n->inputs[0], *b = n->inputs[1];
    if (igi_needs_grad(a) && !(gin[0] = igi_sum_to(g, a->ndim, a->shape))) return ig_last_status();
    if (igi_needs_grad(b)) {
        ig_tensor *gb = n->op == IGI_OP_SUB ? ig_neg(g) : g;
        if (!(gin[1] = igi_sum_to(gb, b->ndim, b->shape))) return ig_last_status();
    }
    return IG_OK;
}

static ig_status mul_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *a = n->inputs[0], *b = n->inputs[1];
    if (igi_needs_grad(a) && !(gin[0] = igi_sum_to(ig_mul(g, b), a->ndim, a->shape))) return ig_last_status();
    if (igi_needs_grad(b) && !(gin[1] = igi_sum_to(ig_mul(g, a), b->ndim, b->shape))) return ig_last_status();
    return IG_OK;
}

static ig_status div_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *a = n->inputs[0], *b = n->inputs[1];
    /* d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -(a/b)/b */
    if (igi_needs_grad(a) && !(gin[0] = igi_sum_to(ig_div(g, b), a->ndim, a->shape))) return ig_last_status();
    if (igi_needs_grad(b)) {
        ig_tensor *q = ig_div(ig_mul(g, a), ig_mul(b, b));
        if (!(gin[1] = igi_sum_to(ig_neg(q), b->ndim, b->shape))) return ig_last_status();
    }
    return IG_OK;
}

static ig_tensor *binary_op(const char *op, int opid, int kind, igi_backward_fn bw, ig_tensor *a, ig_tensor *b) {
    ig_tensor *out = binary_forward(op, kind, a, b, false);
    if (!out) return NULL;
    ig_tensor *in[2] = {a, b};
    return igi_finish(opid, bw, out, in, 2);
}

/* A binary op (bw NULL: a comparison) with bf16 operands. A bf16 operand beside an f32 or
 * f64 one is converted to the other's dtype first (torch's promotion); two bf16 operands
 * go through f32 where the device has no bf16 kernel (core/ops/bf16.c). */
static ig_tensor *binary_any(const char *op, int opid, int kind, igi_backward_fn bw, ig_tensor *a, ig_tensor *b) {
    if (a && b && a->dtype != b->dtype && (a->dtype == IG_BF16 || b->dtype == IG_BF16) &&
        ig_dtype_is_float(a->dtype) && ig_dtype_is_float(b->dtype)) {
        if (a->dtype == IG_BF16 ? !(a = ig_to_dtype(a, b->dtype)) : !(b = ig_to_dtype(b, a->dtype))) return NULL;
    }
    if (a && b && b->dtype == IG_BF16 && (igi_bf16_fallback(a, IGI_BF16_EW) || igi_bf16_fallback(b, IGI_BF16_EW))) {
        ig_tensor *wa = igi_bf16_widen(a), *wb = wa ? igi_bf16_widen(b) : NULL;
        if (!wb) return NULL;
        ig_amp prev = igi_bf16_enter();
        ig_tensor *r = binary_any(op, opid, kind, bw, wa, wb);
        igi_bf16_leave(prev);
        return igi_bf16_narrow(r);
    }
    return bw ? binary_op(op, opid, kind, bw, a, b) : binary_forward(op, kind, a, b, true);
}

ig_tensor *ig_add(ig_tensor *a, ig_tensor *b) { return binary_any("ig_add", IGI_OP_ADD, BIN_ADD, add_backward, a, b); }
ig_tensor *ig_sub(ig_tensor *a, ig_tensor *b) { return binary_any("ig_sub", IGI_OP_SUB, BIN_SUB, add_backward, a, b); }
ig_tensor *ig_mul(ig_tensor *a, ig_tensor *b) { return binary_any("ig_mul", IGI_OP_MUL, BIN_MUL, mul_backward, a, b); }
ig_tensor *ig_div(ig_tensor *a, ig_tensor *b) { return binary_any("ig_div", IGI_OP_DIV, BIN_DIV, div_backward, a, b); }

ig_tensor *ig_eq(ig_tensor *a, ig_tensor *b) { return binary_any("ig_eq", IGI_OP_NONE, BIN_EQ, NULL, a, b); }
ig_tensor *ig_gt(ig_tensor *a, ig_tensor *b) { return binary_any("ig_gt", IGI_OP_NONE, BIN_GT, NULL, a, b); }
ig_tensor *ig_lt(ig_tensor *a, ig_tensor *b) { return binary_any("ig_lt", IGI_OP_NONE, BIN_LT, NULL, a, b); }

/* ---- scalar forms ----------------------------------------------------------------------- */

typedef struct {
    double s;
    int64_t si;    /* s as an integer, valid when s_int */
    bool s_int;    /* integer dtype and s integral and in int64 range: exact wrapping path */
    bool mul;
    ig_dtype dt;
} scalar_ctx;

/* Integer tensor with an integral scalar: computed in the unsigned type U of the same
 * width, so it wraps like ig_add/ig_mul (no signed overflow, no trip through double, which
 * would round int64 values above 2^53 and saturate instead of wrapping). */
#define SCALAR_INT_LOOP(T, U)                                                              \
    for (int64_t i = 0; i < n; i++) {                                                     \
        U x = (U)(*(const T *)(p[1] + i * st[1])), y = (U)c->si;                          \
        *(T *)(p[0] + i * st[0]) = (T)(U)(c->mul ? x * y : x + y);                        \
    }

static void scalar_loop(char **p, const int64_t *st, int64_t n, void *vctx) {
    const scalar_ctx *c = vctx;
    if (c->dt == IG_F32) {
        float s = (float)c->s;
        for (int64_t i = 0; i < n; i++) {
            float x = *(const float *)(p[1] + i * st[1]);
            *(float *)(p[0] + i * st[0]) = c->mul ? x * s : x + s;
        }
    } else if (c->dt == IG_F64) {
        for (int64_t i = 0; i < n; i++) {
            double x = *(const double *)(p[1] + i * st[1]);
            *(double *)(p[0] + i * st[0]) = c->mul ? x * c->s : x + c->s;
        }
    } else if (c->s_int && c->dt == IG_I32) {
        SCALAR_INT_LOOP(int32_t, uint32_t)
    } else if (c->s_int && c->dt == IG_I64) {
        SCALAR_INT_LOOP(int64_t, uint64_t)
    } else if (c->s_int && c->dt == IG_U8) {
        SCALAR_INT_LOOP(uint8_t, unsigned)
    } else {
        for (int64_t i = 0; i < n; i++) {
            double x = igi_load(c->dt, p[1] + i * st[1]);
            igi_store(c->dt, p[0] + i * st[0], c->mul ? x * c->s : x + c->s);
        }
    }
}

static ig_status add_scalar_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    (void)n;
    gin[0] = g;
    return IG_OK;
}

static ig_status mul_scalar_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    gin[0] = ig_mul_scalar(g, n->dattr[0]);
    return gin[0] ? IG_OK : ig_last_status();
}

/* The CPU loop's context for a op= s on dtype dt. */
static scalar_ctx scalar_ctx_for(ig_dtype dt, double s, bool mul) {
    /* int64 range as doubles: [-2^63, 2^63) */
    bool s_int = !ig_dtype_is_float(dt) && s >= -9223372036854775808.0 && s < 9223372036854775808.0 && s == floor(s);
    return (scalar_ctx){s, s_int ? (int64_t)s : 0, s_int, mul, dt};
}

static ig_tensor *scalar_op(const char *op, int opid, igi_backward_fn bw, ig_tensor *a, double s, bool mul) {
    if (!a) {
        igi_error_null(op, "a");
        return NULL;
    }
    IGI_BF16_VIA_F32(a, IGI_BF16_EW, scalar_op(op, opid, bw, IGI_W, s, mul)); /* core/ops/bf16.c */
    const igi_backend *be = NULL;
    if (a->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, a->device, scalar))) return NULL;
    ig_tensor *out = igi_tensor_new(op, a->ndim, a->shape, a->dtype, a->device);
    if (!out) return NULL;
    ig_tensor *ops[2] = {out, a};
    if (be) {
        igi_ew e;
        if (igi_ew_make(ops, 2, &e) && be->scalar(op, &e, s, mul) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
    } else {
        scalar_ctx ctx = scalar_ctx_for(a->dtype, s, mul);
        igi_iter_run_parallel(ops, 2, scalar_loop, &ctx);
    }
    out = igi_finish(opid, bw, out, &a, 1);
    if (out && out->node) out->node->dattr[0] = s;
    return out;
}

ig_status igi_add_scalar_inplace(const char *op, ig_tensor *t, double s) {
    igi_storage_written(t->storage);
    const igi_backend *be = NULL;
    if (t->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, t->device, scalar))) return ig_last_status();
    ig_tensor *ops[2] = {t, t}; /* each element read, then written, by the same step */
    if (be) {
        igi_ew e;
        if (!igi_ew_make(ops, 2, &e)) return IG_OK; /* empty: nothing to add to */
        return be->scalar(op, &e, s, false);
    }
    scalar_ctx ctx = scalar_ctx_for(t->dtype, s, false);
    igi_iter_run_parallel(ops, 2, scalar_loop, &ctx);
    return IG_OK;
}

ig_tensor *ig_add_scalar(ig_tensor *a, double s) {
    return scalar_op("ig_add_scalar", IGI_OP_ADD_SCALAR, add_scalar_backward, a, s, false);
}
ig_tensor *ig_mul_scalar(ig_tensor *a, double s) {
    return scalar_op("ig_mul_scalar", IGI_OP_MUL_SCALAR, mul_scalar_backward, a, s, true);
}

/* ---- where ------------------------------------------------------------------------------ */

static void where_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
    const ig_dtype *dts = ctx; /* [value dtype, cond dtype] */
    size_t es = ig_dtype_size(dts[0]);
    for (int64_t i = 0; i < n; i++) {
        bool c = igi_load(dts[1], p[1] + i * s[1]) != 0.0;
        memcpy(p[0] + i * s[0], c ? p[2] + i * s[2] : p[3] + i * s[3], es);
    }
}

static ig_status where_backward(igi_node *n, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *cond = n->inputs[0], *a = n->inputs[1], *b = n->inputs[2];
    ig_tensor *z = igi_full_on("ig_where", 0, NULL, g->dtype, 0.0, g->device);
    if (!z) return ig_last_status();
    if (igi_needs_grad(a) && !(gin[1] = igi_sum_to(ig_where(cond, g, z), a->ndim, a->shape))) return ig_last_status();
    if (igi_needs_grad(b) && !(gin[2] = igi_sum_to(ig_where(cond, z, g), b->ndim, b->shape))) return ig_last_status();
    return IG_OK;
}

ig_tensor *ig_where(ig_tensor *cond, ig_tensor *a, ig_tensor *b) {
    const char *op = "ig_where";
    if (!cond) {
        igi_error_null(op, "cond");
        return NULL;
    }
    if (!a) {
        igi_error_null(op, "a");
        return NULL;
    }
    if (!b) {
        igi_error_null(op, "b");
        return NULL;
    }
    if (!igi_check_same_dtype(op, a, b) || !igi_check_same_device_any(op, a, b) ||
        !igi_check_same_device_any(op, cond, a))
        return NULL;
    /* bf16 on the CPU: where_loop moves bytes, any dtype. On a device without the kernel:
     * through f32 (core/ops/bf16.c). */
    if (a->device != IG_CPU && igi_bf16_fallback(a, IGI_BF16_EW)) {
        ig_tensor *wa = igi_bf16_widen(a), *wb = wa ? igi_bf16_widen(b) : NULL;
        if (!wb) return NULL;
        ig_amp prev = igi_bf16_enter();
        ig_tensor *r = ig_where(cond, wa, wb);
        igi_bf16_leave(prev);
        return igi_bf16_narrow(r);
    }
    const igi_backend *be = NULL;
    if (a->device != IG_CPU && !(be = IGI_BACKEND_WITH(op, a->device, where))) return NULL;
    int nd, nd2;
    int64_t s1[IG_MAX_DIMS], s2[IG_MAX_DIMS];
    if (!igi_broadcast_shape(op, a->ndim, a->shape, b->ndim, b->shape, &nd, s1)) return NULL;
    if (!igi_broadcast_shape(op, cond->ndim, cond->shape, nd, s1, &nd2, s2)) return NULL;
    ig_tensor *out = igi_tensor_new(op, nd2, s2, a->dtype, a->device);
    if (!out) return NULL;
    ig_dtype dts[2] = {a->dtype, cond->dtype};
    ig_tensor *ops[4] = {out, cond, a, b};
    if (be) {
        igi_ew e;
        if (igi_ew_make(ops, 4, &e) && be->where(op, &e) != IG_OK) {
            ig_tensor_free(out);
            return NULL;
        }
    } else {
        igi_iter_run_parallel(ops, 4, where_loop, dts);
    }
    ig_tensor *in[3] = {cond, a, b};
    return igi_finish(IGI_OP_WHERE, where_backward, out, in, 3);
}
