/*
 * cuda/elementwise.cu — elementwise kernels: strided copy with dtype conversion, fill,
 * binary arithmetic and comparisons with broadcasting, the scalar forms, where, and the
 * unary ops with their gradient kernels.
 *
 * Every kernel walks the output's elements with a grid-stride loop and finds each
 * operand's element from the coalesced geometry (igi_ew: broadcast operands have stride
 * 0). Each op's arithmetic is written to give the CPU's results (core/ops/): the same
 * integer wrapping and division-by-zero rules, the same float expressions, the same
 * saturating conversions; float math differs from the CPU only by the last-ulp differences
 * of CUDA's math library and of fused multiply-adds.
 *
 * Kernels are templated on the element type only; the op is a runtime switch (uniform
 * across the grid), which keeps the number of instantiations, and compile time, small.
 * bf16 operands (the table's IGI_BF16_EW group) load to float, run the f32 arithmetic and
 * round each result once (igc_compute_t / igc_ld / igc_st, cuda_impl.h): the f32 path's
 * values, bit for bit.
 */
#include <string.h>

#include "cuda_impl.h"

/* ---- copy and fill ---------------------------------------------------------------------- */

/* Same dtype: bytes as they are. Else as core/tensor.c's convert_loop: float<->double
 * directly, anything else through double with igi_store's saturation. */
template <typename TO, typename TI> __global__ void copy_kernel(igi_ew e) {
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[2];
        igc_ew_offsets<2>(e, i, off);
        TI x = ((const TI *)e.data[1])[off[1]];
        ((TO *)e.data[0])[off[0]] = igc_store<TO>::of(igc_load(x));
    }
}
template <typename T> __global__ void copy_same_kernel(igi_ew e) {
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[2];
        igc_ew_offsets<2>(e, i, off);
        ((T *)e.data[0])[off[0]] = ((const T *)e.data[1])[off[1]];
    }
}

template <typename TO> static ig_status copy_from(const char *op, const igi_ew *e) {
    unsigned nb = igc_blocks(e->numel);
    switch (e->dtype[1]) {
    case IG_F32: copy_kernel<TO, float><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_F64: copy_kernel<TO, double><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_I32: copy_kernel<TO, int32_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_I64: copy_kernel<TO, int64_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_U8: copy_kernel<TO, uint8_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_BF16: copy_kernel<TO, __nv_bfloat16><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    default: return igi_error(IG_ERR_DTYPE, "%s: invalid dtype on cuda", op);
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_copy(const char *op, const igi_ew *e) {
    if (e->dtype[0] == e->dtype[1]) {
        unsigned nb = igc_blocks(e->numel);
        switch (ig_dtype_size(e->dtype[0])) {
        case 1: copy_same_kernel<uint8_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
        case 2: copy_same_kernel<uint16_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
        case 4: copy_same_kernel<uint32_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
        case 8: copy_same_kernel<uint64_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
        default: return igi_error(IG_ERR_DTYPE, "%s: invalid dtype on cuda", op);
        }
        IGC_LAUNCHED(op);
        return IG_OK;
    }
    if (e->dtype[0] == IG_BF16) return copy_from<__nv_bfloat16>(op, e);
    IGC_DISPATCH_ALL(e->dtype[0], return copy_from<T>(op, e))
    return IG_OK;
}

template <typename T> __global__ void fill_kernel(igi_ew e, T v) {
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[1];
        igc_ew_offsets<1>(e, i, off);
        ((T *)e.data[0])[off[0]] = v;
    }
}

ig_status igc_fill(const char *op, const igi_ew *e, double value) {
    /* The value is converted on the host by the CPU's own igi_store. */
    unsigned char bytes[8] = {0};
    igi_store(e->dtype[0], bytes, value);
    unsigned nb = igc_blocks(e->numel);
    switch (ig_dtype_size(e->dtype[0])) {
    case 1: fill_kernel<uint8_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, bytes[0]); break;
    case 2: {
        uint16_t v;
        memcpy(&v, bytes, 2);
        fill_kernel<uint16_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, v);
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, bytes, 4);
        fill_kernel<uint32_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, v);
        break;
    }
    case 8: {
        uint64_t v;
        memcpy(&v, bytes, 8);
        fill_kernel<uint64_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, v);
        break;
    }
    default: return igi_error(IG_ERR_DTYPE, "%s: invalid dtype on cuda", op);
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* ---- binary ------------------------------------------------------------------------------- */

/* Integer arithmetic in the unsigned type of the same width (wraps, no UB); division by
 * zero gives 0 and MIN / -1 wraps, as core/ops/binary.c. */
template <typename T> struct arith {
    __device__ static T add(T a, T b) { return a + b; }
    __device__ static T sub(T a, T b) { return a - b; }
    __device__ static T mul(T a, T b) { return a * b; }
    __device__ static T div(T a, T b) { return a / b; }
};
template <typename T, typename U> struct int_arith {
    __device__ static T add(T a, T b) { return (T)(U)((U)a + (U)b); }
    __device__ static T sub(T a, T b) { return (T)(U)((U)a - (U)b); }
    __device__ static T mul(T a, T b) { return (T)(U)((U)a * (U)b); }
    __device__ static T div(T a, T b) {
        if (b == 0) return 0;
        if (b == (T)-1) return (T)(U)((U)0 - (U)a);
        return a / b;
    }
};
template <> struct arith<int32_t> : int_arith<int32_t, uint32_t> {};
template <> struct arith<int64_t> : int_arith<int64_t, uint64_t> {};
template <> struct arith<uint8_t> {
    __device__ static uint8_t add(uint8_t a, uint8_t b) { return (uint8_t)(a + b); }
    __device__ static uint8_t sub(uint8_t a, uint8_t b) { return (uint8_t)(a - b); }
    __device__ static uint8_t mul(uint8_t a, uint8_t b) { return (uint8_t)((unsigned)a * (unsigned)b); }
    __device__ static uint8_t div(uint8_t a, uint8_t b) { return b == 0 ? 0 : (uint8_t)(a / b); }
};

template <typename T> __global__ void binary_kernel(igi_ew e, int kind) {
    typedef igc_compute_t<T> C;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[3];
        igc_ew_offsets<3>(e, i, off);
        C a = igc_ld(((const T *)e.data[1])[off[1]]), b = igc_ld(((const T *)e.data[2])[off[2]]);
        switch (kind) {
        case IGI_BIN_ADD: ((T *)e.data[0])[off[0]] = igc_st<T>(arith<C>::add(a, b)); break;
        case IGI_BIN_SUB: ((T *)e.data[0])[off[0]] = igc_st<T>(arith<C>::sub(a, b)); break;
        case IGI_BIN_MUL: ((T *)e.data[0])[off[0]] = igc_st<T>(arith<C>::mul(a, b)); break;
        case IGI_BIN_DIV: ((T *)e.data[0])[off[0]] = igc_st<T>(arith<C>::div(a, b)); break;
        case IGI_BIN_EQ: ((uint8_t *)e.data[0])[off[0]] = a == b ? 1 : 0; break;
        case IGI_BIN_GT: ((uint8_t *)e.data[0])[off[0]] = a > b ? 1 : 0; break;
        default: ((uint8_t *)e.data[0])[off[0]] = a < b ? 1 : 0; break;
        }
    }
}

ig_status igc_binary(const char *op, int kind, const igi_ew *e) {
    if (kind < 0 || kind >= IGI_BIN_COUNT) return igi_error(IG_ERR_ARG, "%s: invalid binary kind %d", op, kind);
    unsigned nb = igc_blocks(e->numel);
    IGC_DISPATCH_ALL_BF16(e->dtype[1], (binary_kernel<T><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind)))
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* ---- scalar forms (as scalar_loop in core/ops/binary.c) ----------------------------------- */

template <typename T, typename U> __device__ __forceinline__ T int_scalar(T x, int64_t si, bool mul) {
    U a = (U)x, b = (U)si;
    return (T)(U)(mul ? a * b : a + b);
}

template <typename T> __global__ void scalar_kernel(igi_ew e, double s, int64_t si, bool s_int, bool mul) {
    typedef igc_compute_t<T> C;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[2];
        igc_ew_offsets<2>(e, i, off);
        C x = igc_ld(((const T *)e.data[1])[off[1]]);
        T *o = (T *)e.data[0] + off[0];
        if constexpr (sizeof(C) == 4 && (C)0.5 != 0) {
            float sf = (float)s; /* f32 (and bf16) tensors: the scalar rounded to float first */
            *o = igc_st<T>(mul ? x * sf : x + sf);
        } else if constexpr ((C)0.5 != 0) {
            *o = mul ? x * s : x + s;
        } else {
            if (s_int) {
                if constexpr (sizeof(T) == 1) *o = int_scalar<T, unsigned>(x, si, mul);
                else if constexpr (sizeof(T) == 4) *o = int_scalar<T, uint32_t>(x, si, mul);
                else *o = int_scalar<T, uint64_t>(x, si, mul);
            } else {
                double v = igc_load(x);
                *o = igc_store<T>::of(mul ? v * s : v + s);
            }
        }
    }
}

ig_status igc_scalar(const char *op, const igi_ew *e, double s, bool mul) {
    /* int64 range as doubles: [-2^63, 2^63) */
    bool s_int = !ig_dtype_is_float(e->dtype[0]) && s >= -9223372036854775808.0 && s < 9223372036854775808.0 &&
                 s == floor(s);
    int64_t si = s_int ? (int64_t)s : 0;
    unsigned nb = igc_blocks(e->numel);
    IGC_DISPATCH_ALL_BF16(e->dtype[0], (scalar_kernel<T><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, s, si, s_int, mul)))
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* ---- where ------------------------------------------------------------------------------- */

/* Operands (out, cond, a, b); V has the value's size, C is cond's type. */
template <typename V, typename C> __global__ void where_kernel(igi_ew e) {
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[4];
        igc_ew_offsets<4>(e, i, off);
        bool c = igc_load(((const C *)e.data[1])[off[1]]) != 0.0;
        ((V *)e.data[0])[off[0]] = c ? ((const V *)e.data[2])[off[2]] : ((const V *)e.data[3])[off[3]];
    }
}

template <typename V> static ig_status where_cond(const char *op, const igi_ew *e) {
    unsigned nb = igc_blocks(e->numel);
    switch (e->dtype[1]) {
    case IG_F32: where_kernel<V, float><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_F64: where_kernel<V, double><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_I32: where_kernel<V, int32_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_I64: where_kernel<V, int64_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_U8: where_kernel<V, uint8_t><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    case IG_BF16: where_kernel<V, __nv_bfloat16><<<nb, IGC_THREADS, 0, igc_stream>>>(*e); break;
    default: return igi_error(IG_ERR_DTYPE, "%s: invalid condition dtype on cuda", op);
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}

ig_status igc_where(const char *op, const igi_ew *e) {
    switch (ig_dtype_size(e->dtype[0])) {
    case 1: return where_cond<uint8_t>(op, e);
    case 2: return where_cond<uint16_t>(op, e); /* bf16 values: their bits, as selected */
    case 4: return where_cond<uint32_t>(op, e);
    case 8: return where_cond<uint64_t>(op, e);
    default: return igi_error(IG_ERR_DTYPE, "%s: invalid dtype on cuda", op);
    }
}

/* ---- unary (as the table in core/ops/unary.c) --------------------------------------------- */

/* The C math functions for float and double, by overload. */
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }

/* Sigmoid without overflow: exp only sees -|x|. */
template <typename T> __device__ __forceinline__ T m_sigmoid(T x) {
    T e = m_exp(-m_abs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}
/* min(max(x, lo), hi) as torch: NaN x stays NaN, lo > hi gives hi. */
template <typename T> __device__ __forceinline__ T m_clamp(T x, T lo, T hi) {
    return x < lo ? (lo > hi ? hi : lo) : (x > hi ? hi : x);
}
template <typename T> __device__ __forceinline__ T m_phi(T x) {
    return (T)0.5 * (1 + m_erf(x * (T)0.70710678118654752440));
}
template <typename T> __device__ __forceinline__ T m_pdf(T x) {
    return (T)0.39894228040143267794 * m_exp((T)-0.5 * x * x);
}

template <typename T> __device__ __forceinline__ T unary_float(int kind, T x, const igi_unary_params &p) {
    switch (kind) {
    case IGI_UN_NEG: return -x;
    case IGI_UN_POW: return m_pow(x, (T)p.a);
    case IGI_UN_EXP: return m_exp(x);
    case IGI_UN_LOG: return m_log(x);
    case IGI_UN_SQRT: return m_sqrt(x);
    case IGI_UN_ABS: return m_abs(x);
    case IGI_UN_CLAMP: return p.nan_bound ? (T)NAN : m_clamp(x, (T)p.a, (T)p.b);
    case IGI_UN_RELU: return x > 0 || isnan(x) ? x : (T)0;
    case IGI_UN_LEAKY_RELU: return x > 0 ? x : x * (T)p.a;
    case IGI_UN_SIGMOID: return m_sigmoid(x);
    case IGI_UN_TANH: return m_tanh(x);
    case IGI_UN_GELU: return x * m_phi(x);
    default: return x * m_sigmoid(x); /* silu */
    }
}

/* Integer forms (neg, abs, clamp, relu), negation in the unsigned type U. */
template <typename T, typename U> __device__ __forceinline__ T unary_int(int kind, T x, const igi_unary_params &p) {
    switch (kind) {
    case IGI_UN_NEG: return (T)((U)0 - (U)x);
    case IGI_UN_ABS: return x > 0 ? x : (T)((U)0 - (U)x);
    case IGI_UN_CLAMP: return m_clamp(x, (T)p.ia, (T)p.ib);
    default: return x > 0 ? x : (T)0; /* relu */
    }
}

template <typename T> __global__ void unary_kernel(igi_ew e, int kind, igi_unary_params p) {
    typedef igc_compute_t<T> C;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[2];
        igc_ew_offsets<2>(e, i, off);
        T x = ((const T *)e.data[1])[off[1]], y;
        if constexpr ((C)0.5 != 0) y = igc_st<T>(unary_float<C>(kind, igc_ld(x), p));
        else if constexpr (sizeof(T) == 1) y = unary_int<T, unsigned>(kind, x, p);
        else if constexpr (sizeof(T) == 4) y = unary_int<T, uint32_t>(kind, x, p);
        else y = unary_int<T, uint64_t>(kind, x, p);
        ((T *)e.data[0])[off[0]] = y;
    }
}

static bool int_unary_ok(int kind) {
    return kind == IGI_UN_NEG || kind == IGI_UN_ABS || kind == IGI_UN_CLAMP || kind == IGI_UN_RELU;
}

ig_status igc_unary(const char *op, int kind, const igi_ew *e, const igi_unary_params *p) {
    if (kind < 0 || kind >= IGI_UN_COUNT) return igi_error(IG_ERR_ARG, "%s: invalid unary kind %d", op, kind);
    if (!ig_dtype_is_float(e->dtype[0]) && !int_unary_ok(kind))
        return igi_error(IG_ERR_DTYPE, "%s: needs a float tensor, got %s", op, ig_dtype_name(e->dtype[0]));
    unsigned nb = igc_blocks(e->numel);
    IGC_DISPATCH_ALL_BF16(e->dtype[0], (unary_kernel<T><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, *p)))
    IGC_LAUNCHED(op);
    return IG_OK;
}

/* d(out)/d(x) * g, where v is the saved element (x or y, as the CPU's table says). */
template <typename T> __device__ __forceinline__ T unary_grad(int kind, T g, T v, const igi_unary_params &p) {
    switch (kind) {
    case IGI_UN_NEG: return -g;
    case IGI_UN_POW: return p.a == 0 ? (T)0 : g * (T)p.a * m_pow(v, (T)(p.a - 1)); /* v = x */
    case IGI_UN_EXP: return g * v;                                                   /* v = y */
    case IGI_UN_LOG: return g / v;                                                   /* v = x */
    case IGI_UN_SQRT: return g / (2 * v);                                            /* v = y */
    case IGI_UN_ABS: return g * (T)((v > 0) - (v < 0));                              /* v = x */
    case IGI_UN_CLAMP: return (v >= (T)p.a && v <= (T)p.b) ? g : (T)0;              /* v = x */
    case IGI_UN_RELU: return v <= 0 ? (T)0 : g;                                      /* v = y */
    case IGI_UN_LEAKY_RELU: return v > 0 ? g : g * (T)p.a;                           /* v = x */
    case IGI_UN_SIGMOID: return g * v * (1 - v);                                     /* v = y */
    case IGI_UN_TANH: return g * (1 - v * v);                                        /* v = y */
    case IGI_UN_GELU: return g * (m_phi(v) + v * m_pdf(v));                          /* v = x */
    default: {                                                                       /* silu, v = x */
        T s = m_sigmoid(v);
        return g * s * (1 + v * (1 - s));
    }
    }
}

/* Operands (gin, gout, saved). */
template <typename T> __global__ void unary_backward_kernel(igi_ew e, int kind, igi_unary_params p) {
    typedef igc_compute_t<T> C;
    IGC_GRID_STRIDE(i, e.numel) {
        int64_t off[3];
        igc_ew_offsets<3>(e, i, off);
        C g = igc_ld(((const T *)e.data[1])[off[1]]), v = igc_ld(((const T *)e.data[2])[off[2]]);
        ((T *)e.data[0])[off[0]] = igc_st<T>(unary_grad<C>(kind, g, v, p));
    }
}

ig_status igc_unary_backward(const char *op, int kind, const igi_ew *e, const igi_unary_params *p) {
    if (kind < 0 || kind >= IGI_UN_COUNT) return igi_error(IG_ERR_ARG, "%s: invalid unary kind %d", op, kind);
    unsigned nb = igc_blocks(e->numel);
    switch (e->dtype[0]) {
    case IG_F32: unary_backward_kernel<float><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, *p); break;
    case IG_F64: unary_backward_kernel<double><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, *p); break;
    case IG_BF16: unary_backward_kernel<__nv_bfloat16><<<nb, IGC_THREADS, 0, igc_stream>>>(*e, kind, *p); break;
    default: return igi_error(IG_ERR_DTYPE, "%s: gradients need a float tensor, got %s", op, ig_dtype_name(e->dtype[0]));
    }
    IGC_LAUNCHED(op);
    return IG_OK;
}
