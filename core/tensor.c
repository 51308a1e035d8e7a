/*
 * core/tensor.c — tensor headers, lifetime, creation, accessors and the slow per-element
 * helpers (conversion, fill, copy, printing).
 *
 * Hot kernels live in core/ops/; what is here runs once per tensor, not per element, except
 * the copy and fill loops, which go through the strided iterator.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "backend_impl.h"
#include "tensor_impl.h"

/* ---- dtypes ---------------------------------------------------------------------------- */

size_t ig_dtype_size(ig_dtype dt) {
    switch (dt) {
    case IG_F32: return 4;
    case IG_F64: return 8;
    case IG_I32: return 4;
    case IG_I64: return 8;
    case IG_U8: return 1;
    case IG_BF16: return 2;
    default: return 0;
    }
}

const char *ig_dtype_name(ig_dtype dt) {
    switch (dt) {
    case IG_F32: return "float32";
    case IG_F64: return "float64";
    case IG_I32: return "int32";
    case IG_I64: return "int64";
    case IG_U8: return "uint8";
    case IG_BF16: return "bfloat16";
    default: return "invalid";
    }
}

bool ig_dtype_is_float(ig_dtype dt) { return dt == IG_F32 || dt == IG_F64 || dt == IG_BF16; }

/* bf16 <-> f32: a bf16 is the top 16 bits of an f32 pattern. Narrowing rounds to nearest
 * with ties to even on the dropped bits (a carry bumps the exponent, up to inf); NaN stays
 * a quiet NaN with its sign. The same bits as core/ops/amp.c's igi_round_bf16. */
uint16_t igi_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u | 0x00400000u) >> 16);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float igi_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

double igi_load(ig_dtype dt, const void *p) {
    switch (dt) {
    case IG_F32: return *(const float *)p;
    case IG_F64: return *(const double *)p;
    case IG_I32: return *(const int32_t *)p;
    case IG_I64: return (double)*(const int64_t *)p;
    case IG_U8: return *(const uint8_t *)p;
    case IG_BF16: return igi_bf16_to_f32(*(const uint16_t *)p);
    default: return NAN;
    }
}

/* Float to integer conversion saturates and maps NaN to 0, so no input is undefined. */
static int64_t to_i64(double v, double lo, double hi) {
    if (v != v) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return (int64_t)hi;
    return (int64_t)v;
}

/* int64 needs its own ends: 2^63 is a double but INT64_MAX is not, so saturate on the
 * exact powers of two instead of on the largest double below 2^63. */
static int64_t sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

void igi_store(ig_dtype dt, void *p, double v) {
    switch (dt) {
    case IG_F32: *(float *)p = (float)v; break;
    case IG_F64: *(double *)p = v; break;
    case IG_I32: *(int32_t *)p = (int32_t)to_i64(v, -2147483648.0, 2147483647.0); break;
    case IG_I64: *(int64_t *)p = sat_i64(v); break;
    case IG_U8: *(uint8_t *)p = (uint8_t)to_i64(v, 0.0, 255.0); break;
    case IG_BF16: *(uint16_t *)p = igi_bf16_from_f32((float)v); break; /* through f32, as torch */
    default: break;
    }
}

/* ---- geometry -------------------------------------------------------------------------- */

int64_t igi_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) {
            n = 0;
            continue;
        }
        if (n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    /* A zero-size dim makes the product 0 even if the others overflow; check those too. */
    if (n == 0) {
        int64_t m = 1;
        for (int i = 0; i < ndim; i++) {
            if (shape[i] == 0) continue;
            if (m > INT64_MAX / shape[i]) return -1;
            m *= shape[i];
        }
    }
    return n;
}

void igi_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

bool igi_is_contiguous(const ig_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 0) return true;
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

char *igi_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
    if (!cap) return buf;
    size_t pos = 0;
    buf[0] = '\0';
    pos += (size_t)snprintf(buf + pos, cap - pos, "[");
    for (int i = 0; i < ndim && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, i ? ",%" PRId64 : "%" PRId64, shape[i]);
    if (pos < cap) snprintf(buf + pos, cap - pos, "]");
    return buf;
}

char *ig_shape_str(const ig_tensor *t, char *buf, size_t cap) {
    if (!t) {
        if (cap) snprintf(buf, cap, "(null)");
        return buf;
    }
    return igi_shape_str(t->ndim, t->shape, buf, cap);
}

int igi_wrap_dim(const char *op, int dim, int ndim) {
    int n = ndim > 0 ? ndim : 1; /* a 0-dim tensor accepts dim 0 / -1 where it makes sense */
    if (dim < -n || dim >= n) {
        igi_error(IG_ERR_ARG, "%s: dim %d out of range for a tensor with %d dims", op, dim, ndim);
        return -1;
    }
    return dim < 0 ? dim + n : dim;
}

/* ---- headers and lifetime --------------------------------------------------------------- */

ig_tensor *igi_tensor_header(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                             ig_device dev) {
    if (ndim < 0 || ndim > IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "%s: %d dims (at most %d allowed)", op, ndim, IG_MAX_DIMS);
        return NULL;
    }
    if ((unsigned)dt >= IG_DTYPE_COUNT) {
        igi_error(IG_ERR_DTYPE, "%s: invalid dtype %d", op, (int)dt);
        return NULL;
    }
    if (ndim > 0 && !shape) {
        igi_error_null(op, "shape");
        return NULL;
    }
    int64_t n = igi_numel(ndim, shape);
    if (n < 0 || n > (INT64_MAX / 8)) {
        char b[160];
        igi_error(IG_ERR_SHAPE, "%s: invalid shape %s (negative or too large)", op,
                  igi_shape_str(ndim, shape, b, sizeof b));
        return NULL;
    }
    bool scoped = igi_scope_active();
    ig_tensor *t = scoped ? igi_scope_alloc(sizeof *t) : malloc(sizeof *t);
    if (!t) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    igi_contiguous_strides(ndim, t->shape, t->strides);
    t->dtype = dt;
    t->device = dev;
    t->scoped = scoped;
    t->refcount = 1;
    if (scoped) igi_scope_track(t);
    return t;
}

ig_tensor *igi_tensor_new(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                          ig_device dev) {
    ig_tensor *t = igi_tensor_header(op, ndim, shape, dt, dev);
    if (!t) return NULL;
    size_t nbytes = (size_t)igi_numel(ndim, t->shape) * ig_dtype_size(dt);
    t->storage = igi_storage_new(op, dev, nbytes);
    if (!t->storage) {
        ig_tensor_free(t);
        return NULL;
    }
    return t;
}

ig_tensor *igi_tensor_new_pinned(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                                 ig_device dev) {
    ig_tensor *t = igi_tensor_header(op, ndim, shape, dt, IG_CPU);
    if (!t) return NULL;
    size_t nbytes = (size_t)igi_numel(ndim, t->shape) * ig_dtype_size(dt);
    t->storage = igi_storage_new_pinned(op, dev, nbytes);
    if (!t->storage) {
        ig_tensor_free(t);
        return NULL;
    }
    return t;
}

ig_tensor *igi_tensor_view(const char *op, ig_tensor *t, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset) {
    ig_tensor *v = igi_tensor_header(op, ndim, shape, t->dtype, t->device);
    if (!v) return NULL;
    for (int i = 0; i < ndim; i++) v->strides[i] = strides[i];
    v->offset = offset;
    v->storage = t->storage;
    igi_storage_retain(t->storage);
    return v;
}

void igi_tensor_finalize(ig_tensor *t) {
    igi_storage_release(t->storage);
    t->storage = NULL;
    if (t->node) {
        igi_node_release(t->node);
        t->node = NULL;
    }
    if (t->grad) {
        ig_tensor_free(t->grad);
        t->grad = NULL;
    }
    free(t->grad_hook);
    t->grad_hook = NULL;
}

ig_tensor *ig_tensor_retain(ig_tensor *t) {
    if (t && !t->scoped) t->refcount++;
    return t;
}

/* Heap release without recursion: a chain of heap nodes is freed through a worklist. */
static _Thread_local ig_tensor *release_list;
static _Thread_local bool releasing;

void ig_tensor_free(ig_tensor *t) {
    if (!t || t->scoped) return;
    IG_ASSERT(t->refcount > 0);
    if (--t->refcount > 0) return;
    t->next = release_list;
    release_list = t;
    if (releasing) return; /* the outer call drains the list */
    releasing = true;
    while (release_list) {
        ig_tensor *x = release_list;
        release_list = x->next;
        igi_tensor_finalize(x); /* may push more onto release_list */
        free(x);
    }
    releasing = false;
}

ig_tensor *ig_keep(ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_keep", "t");
        return NULL;
    }
    if (!t->scoped) return ig_tensor_retain(t);
    ig_tensor *h = malloc(sizeof *h);
    if (!h) {
        igi_error(IG_ERR_NOMEM, "ig_keep: out of memory");
        return NULL;
    }
    *h = *t;
    h->scoped = false;
    h->grad_temp = false;
    h->refcount = 1;
    h->node = NULL;
    h->grad = NULL;
    h->grad_hook = NULL;
    h->next = NULL;
    h->requires_grad = false;
    igi_storage_retain(h->storage);
    return h;
}

/* ---- creation -------------------------------------------------------------------------- */

static ig_status fill_contiguous(ig_tensor *t, double v) {
    int64_t n = igi_numel(t->ndim, t->shape);
    char *p = igi_data(t);
    switch (t->dtype) {
    case IG_F32: for (int64_t i = 0; i < n; i++) ((float *)p)[i] = (float)v; break;
    case IG_F64: for (int64_t i = 0; i < n; i++) ((double *)p)[i] = v; break;
    default: {
        size_t es = ig_dtype_size(t->dtype);
        char one[8];
        igi_store(t->dtype, one, v);
        for (int64_t i = 0; i < n; i++) memcpy(p + (size_t)i * es, one, es);
    }
    }
    return IG_OK;
}

ig_tensor *ig_empty(int ndim, const int64_t *shape, ig_dtype dt) {
    return igi_tensor_new("ig_empty", ndim, shape, dt, IG_CPU);
}

static ig_tensor *full_named(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                             double v) {
    ig_tensor *t = igi_tensor_new(op, ndim, shape, dt, IG_CPU);
    if (!t) return NULL;
    if (v == 0.0 && !signbit(v)) {
        memset(igi_data(t), 0, t->storage->nbytes);
    } else {
        fill_contiguous(t, v);
    }
    return t;
}

ig_tensor *ig_zeros(int ndim, const int64_t *shape, ig_dtype dt) {
    return full_named("ig_zeros", ndim, shape, dt, 0.0);
}
ig_tensor *ig_ones(int ndim, const int64_t *shape, ig_dtype dt) {
    return full_named("ig_ones", ndim, shape, dt, 1.0);
}
ig_tensor *ig_full(int ndim, const int64_t *shape, ig_dtype dt, double value) {
    return full_named("ig_full", ndim, shape, dt, value);
}
ig_tensor *ig_scalar(double value, ig_dtype dt) { return full_named("ig_scalar", 0, NULL, dt, value); }

ig_tensor *igi_full_on(const char *op, int ndim, const int64_t *shape, ig_dtype dt, double v,
                       ig_device dev) {
    if (dev == IG_CPU) return full_named(op, ndim, shape, dt, v);
    ig_tensor *t = igi_tensor_new(op, ndim, shape, dt, dev);
    if (!t) return NULL;
    if (v == 0.0 && !signbit(v)) {
        /* +0 is all-zero bytes in every dtype: the backend's memset, no kernel needed */
        const igi_backend *be = igi_backend_get(op, dev);
        size_t nbytes = (size_t)igi_numel(ndim, shape) * ig_dtype_size(dt);
        if (be && (nbytes == 0 || be->memset_zero(igi_data(t), nbytes) == IG_OK)) return t;
        ig_tensor_free(t);
        return NULL;
    }
    if (ig_fill_(t, v) != IG_OK) {
        ig_tensor_free(t);
        return NULL;
    }
    return t;
}

/* The _like functions make the tensor on t's device. */
ig_tensor *ig_zeros_like(const ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_zeros_like", "t");
        return NULL;
    }
    return igi_full_on("ig_zeros_like", t->ndim, t->shape, t->dtype, 0.0, t->device);
}

ig_tensor *ig_ones_like(const ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_ones_like", "t");
        return NULL;
    }
    return igi_full_on("ig_ones_like", t->ndim, t->shape, t->dtype, 1.0, t->device);
}

ig_tensor *ig_arange(double start, double end, double step, ig_dtype dt) {
    if (!(step != 0.0) || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
        igi_error(IG_ERR_ARG, "ig_arange: need finite start/end and a nonzero step (got %g, %g, %g)",
                  start, end, step);
        return NULL;
    }
    double count = ceil((end - start) / step);
    if (count < 0) count = 0;
    if (count > 1e15) {
        igi_error(IG_ERR_ARG, "ig_arange: %g elements is too many", count);
        return NULL;
    }
    int64_t n = (int64_t)count;
    ig_tensor *t = igi_tensor_new("ig_arange", 1, &n, dt, IG_CPU);
    if (!t) return NULL;
    size_t es = ig_dtype_size(dt);
    char *p = igi_data(t);
    for (int64_t i = 0; i < n; i++) igi_store(dt, p + (size_t)i * es, start + (double)i * step);
    return t;
}

ig_tensor *ig_from_data(int ndim, const int64_t *shape, ig_dtype dt, const void *data) {
    if (!data) {
        igi_error_null("ig_from_data", "data");
        return NULL;
    }
    ig_tensor *t = igi_tensor_new("ig_from_data", ndim, shape, dt, IG_CPU);
    if (!t) return NULL;
    if (t->storage->nbytes) memcpy(igi_data(t), data, t->storage->nbytes);
    return t;
}

/* ---- accessors ------------------------------------------------------------------------- */

int ig_tensor_ndim(const ig_tensor *t) { return t ? t->ndim : -1; }
const int64_t *ig_tensor_shape(const ig_tensor *t) { return t ? t->shape : NULL; }
const int64_t *ig_tensor_strides(const ig_tensor *t) { return t ? t->strides : NULL; }
int64_t ig_tensor_numel(const ig_tensor *t) { return t ? igi_numel(t->ndim, t->shape) : -1; }
ig_dtype ig_tensor_dtype(const ig_tensor *t) { return t ? t->dtype : IG_DTYPE_COUNT; }
ig_device ig_tensor_device(const ig_tensor *t) { return t ? t->device : IG_DEVICE_COUNT; }
bool ig_tensor_is_contiguous(const ig_tensor *t) { return t && igi_is_contiguous(t); }

int64_t ig_tensor_size(const ig_tensor *t, int dim) {
    if (!t) {
        igi_error_null("ig_tensor_size", "t");
        return -1;
    }
    if (t->ndim == 0 || dim < -t->ndim || dim >= t->ndim) {
        igi_error(IG_ERR_ARG, "ig_tensor_size: dim %d out of range for a tensor with %d dims",
                  dim, t->ndim);
        return -1;
    }
    return t->shape[dim < 0 ? dim + t->ndim : dim];
}

void *ig_tensor_data(ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_tensor_data", "t");
        return NULL;
    }
    if (t->device != IG_CPU) {
        igi_error(IG_ERR_DEVICE, "ig_tensor_data: tensor is not on the CPU");
        return NULL;
    }
    if (!igi_is_contiguous(t)) {
        char b[160];
        igi_error(IG_ERR_ARG, "ig_tensor_data: tensor %s is not contiguous (use ig_contiguous)",
                  ig_shape_str(t, b, sizeof b));
        return NULL;
    }
    return igi_data(t);
}

/* Storage offset of the element with row-major flat index i of t's logical shape. */
static int64_t flat_to_offset(const ig_tensor *t, int64_t i) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t sz = t->shape[d];
        off += (i % sz) * t->strides[d];
        i /= sz;
    }
    return off;
}

double ig_tensor_get(const ig_tensor *t, int64_t flat_index) {
    if (!t) {
        igi_error_null("ig_tensor_get", "t");
        return NAN;
    }
    int64_t n = igi_numel(t->ndim, t->shape);
    if (flat_index < 0 || flat_index >= n) {
        igi_error(IG_ERR_ARG, "ig_tensor_get: index %" PRId64 " out of range for %" PRId64 " elements",
                  flat_index, n);
        return NAN;
    }
    size_t es = ig_dtype_size(t->dtype);
    const char *p = (const char *)t->storage->data + (size_t)flat_to_offset(t, flat_index) * es;
    if (t->device != IG_CPU) {
        /* One element through the host (waits for the device's queued work). */
        const igi_backend *be = igi_backend_get("ig_tensor_get", t->device);
        char one[8];
        if (!be || be->memcpy_d2h(one, p, es) != IG_OK) return NAN;
        return igi_load(t->dtype, one);
    }
    return igi_load(t->dtype, p);
}

ig_status igi_tensor_set(ig_tensor *t, int64_t flat_index, double v) {
    int64_t n = igi_numel(t->ndim, t->shape);
    if (flat_index < 0 || flat_index >= n)
        return igi_error(IG_ERR_ARG, "igi_tensor_set: index %" PRId64 " out of range for %" PRId64 " elements",
                         flat_index, n);
    size_t es = ig_dtype_size(t->dtype);
    char *p = (char *)t->storage->data + (size_t)flat_to_offset(t, flat_index) * es;
    char one[8];
    igi_store(t->dtype, one, v);
    if (t->device == IG_CPU) {
        memcpy(p, one, es);
        return IG_OK;
    }
    const igi_backend *be = igi_backend_get("igi_tensor_set", t->device);
    return be ? be->memcpy_h2d(p, one, es) : ig_last_status();
}

double ig_item(const ig_tensor *t) {
    if (!t) {
        igi_error_null("ig_item", "t");
        return NAN;
    }
    if (igi_numel(t->ndim, t->shape) != 1) {
        char b[160];
        igi_error(IG_ERR_SHAPE, "ig_item: tensor %s does not have exactly one element",
                  ig_shape_str(t, b, sizeof b));
        return NAN;
    }
    return ig_tensor_get(t, 0);
}

/* ---- copy, fill, conversion ------------------------------------------------------------ */

typedef struct {
    ig_dtype dst, src;
    double value;
} convert_ctx;

static void convert_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
    convert_ctx *c = vctx;
    if (c->dst == c->src) {
        size_t es = ig_dtype_size(c->dst);
        if (s[0] == (int64_t)es && s[1] == (int64_t)es) {
            memmove(p[0], p[1], (size_t)n * es);
            return;
        }
        for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], es);
        return;
    }
    if (c->dst == IG_F32 && c->src == IG_F64) {
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * s[0]) = (float)*(const double *)(p[1] + i * s[1]);
        return;
    }
    if (c->dst == IG_F64 && c->src == IG_F32) {
        for (int64_t i = 0; i < n; i++)
            *(double *)(p[0] + i * s[0]) = *(const float *)(p[1] + i * s[1]);
        return;
    }
    if (c->dst == IG_BF16 && c->src == IG_F32) {
        if (s[0] == 2 && s[1] == 4) {
            uint16_t *d = (uint16_t *)(void *)p[0];
            const float *x = (const float *)(const void *)p[1];
            for (int64_t i = 0; i < n; i++) d[i] = igi_bf16_from_f32(x[i]);
            return;
        }
        for (int64_t i = 0; i < n; i++)
            *(uint16_t *)(p[0] + i * s[0]) = igi_bf16_from_f32(*(const float *)(p[1] + i * s[1]));
        return;
    }
    if (c->dst == IG_F32 && c->src == IG_BF16) {
        if (s[0] == 4 && s[1] == 2) {
            float *d = (float *)(void *)p[0];
            const uint16_t *x = (const uint16_t *)(const void *)p[1];
            for (int64_t i = 0; i < n; i++) d[i] = igi_bf16_to_f32(x[i]);
            return;
        }
        for (int64_t i = 0; i < n; i++)
            *(float *)(p[0] + i * s[0]) = igi_bf16_to_f32(*(const uint16_t *)(p[1] + i * s[1]));
        return;
    }
    for (int64_t i = 0; i < n; i++) igi_store(c->dst, p[0] + i * s[0], igi_load(c->src, p[1] + i * s[1]));
}

static void fill_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
    convert_ctx *c = vctx;
    char one[8];
    size_t es = ig_dtype_size(c->dst);
    igi_store(c->dst, one, c->value);
    if (s[0] == (int64_t)es) {
        /* A contiguous run: memset for an all-zero pattern (ig_zero_grad every step, +0.0
         * of every dtype), else a typed store loop; not a memcpy call per element. */
        static const char zero[8];
        if (memcmp(one, zero, es) == 0) {
            memset(p[0], 0, (size_t)n * es);
            return;
        }
#define FILL_AS(T)                                                                         \
    do {                                                                                   \
        T v, *d = (T *)(void *)p[0];                                                       \
        memcpy(&v, one, sizeof v);                                                         \
        for (int64_t i = 0; i < n; i++) d[i] = v;                                          \
        return;                                                                            \
    } while (0)
        /* stores of the element's own type (no aliasing through other types) */
        switch (c->dst) {
        case IG_F32: FILL_AS(float);
        case IG_F64: FILL_AS(double);
        case IG_I32: FILL_AS(int32_t);
        case IG_I64: FILL_AS(int64_t);
        case IG_BF16: FILL_AS(uint16_t);
        default: break;
        }
#undef FILL_AS
    }
    for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], one, es);
}

/* Does dst share bytes with src in a way a forward copy could clobber? Conservative. */
static bool storage_overlaps(const ig_tensor *a, const ig_tensor *b) {
    return a->storage == b->storage;
}

/* ig_copy_ on a device (shapes already checked): the backend's copy kernel, through a
 * temporary when dst and src share storage (so overlapping views read before writing). */
static ig_status device_copy(ig_tensor *dst, const ig_tensor *src) {
    const igi_backend *be = IGI_BACKEND_WITH("ig_copy_", dst->device, copy);
    if (!be) return ig_last_status();
    ig_tensor *tmp = NULL;
    if (storage_overlaps(dst, src) && dst != src) {
        if (!(tmp = igi_to_device_copy("ig_copy_", src, src->device))) return ig_last_status();
        src = tmp;
    }
    igi_ew e;
    ig_tensor *ops[2] = {dst, (ig_tensor *)src};
    ig_status st = igi_ew_make(ops, 2, &e) ? be->copy("ig_copy_", &e) : IG_OK;
    ig_tensor_free(tmp);
    return st;
}

ig_status ig_copy_(ig_tensor *dst, const ig_tensor *src) {
    if (!dst) return igi_error_null("ig_copy_", "dst");
    if (!src) return igi_error_null("ig_copy_", "src");
    int nd;
    int64_t bs[IG_MAX_DIMS];
    if (!igi_broadcast_shape("ig_copy_", dst->ndim, dst->shape, src->ndim, src->shape, &nd, bs))
        return ig_last_status();
    if (nd != dst->ndim || memcmp(bs, dst->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char b1[160], b2[160];
        return igi_error(IG_ERR_SHAPE, "ig_copy_: source %s does not broadcast to destination %s",
                         ig_shape_str(src, b1, sizeof b1), ig_shape_str(dst, b2, sizeof b2));
    }
    igi_storage_written(dst->storage);
    if (dst->device != src->device) {
        /* Same dtype and shape into a contiguous dst: one transfer (no kernel). */
        if (dst->dtype == src->dtype && dst->ndim == src->ndim && igi_is_contiguous(dst) &&
            memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)dst->ndim) == 0)
            return igi_copy_across("ig_copy_", dst, src);
        /* Otherwise src's bytes move as they are (contiguous, on dst's device), then the
         * same-device copy broadcasts and converts. */
        ig_tensor *moved = igi_to_device_copy("ig_copy_", src, dst->device);
        if (!moved) return ig_last_status();
        ig_status st = ig_copy_(dst, moved);
        ig_tensor_free(moved);
        return st;
    }
    if (dst->device != IG_CPU) return device_copy(dst, src);
    convert_ctx c = {dst->dtype, src->dtype, 0};
    ig_tensor *srcv = (ig_tensor *)src;
    if (storage_overlaps(dst, src) && dst != src) {
        /* Copy through a temporary so overlapping views behave as if read first. */
        ig_tensor *tmp = igi_tensor_new("ig_copy_", src->ndim, src->shape, src->dtype, IG_CPU);
        if (!tmp) return ig_last_status();
        ig_tensor *ops[2] = {tmp, srcv};
        convert_ctx c2 = {src->dtype, src->dtype, 0};
        igi_iter_run_parallel(ops, 2, convert_loop, &c2);
        ig_tensor *ops2[2] = {dst, tmp};
        igi_iter_run_parallel(ops2, 2, convert_loop, &c);
        ig_tensor_free(tmp);
        return IG_OK;
    }
    ig_tensor *ops[2] = {dst, srcv};
    igi_iter_run_parallel(ops, 2, convert_loop, &c);
    return IG_OK;
}

ig_status ig_fill_(ig_tensor *t, double value) {
    if (!t) return igi_error_null("ig_fill_", "t");
    igi_storage_written(t->storage);
    if (t->device != IG_CPU) {
        const igi_backend *be = IGI_BACKEND_WITH("ig_fill_", t->device, fill);
        if (!be) return ig_last_status();
        igi_ew e;
        return igi_ew_make(&t, 1, &e) ? be->fill("ig_fill_", &e, value) : IG_OK;
    }
    convert_ctx c = {t->dtype, t->dtype, value};
    ig_tensor *ops[1] = {t};
    igi_iter_run_parallel(ops, 1, fill_loop, &c);
    return IG_OK;
}

ig_status ig_tensor_to_buffer(const ig_tensor *t, ig_dtype dt, void *buf, int64_t n) {
    if (!t) return igi_error_null("ig_tensor_to_buffer", "t");
    if (!buf) return igi_error_null("ig_tensor_to_buffer", "buf");
    int64_t numel = igi_numel(t->ndim, t->shape);
    if (n < numel)
        return igi_error(IG_ERR_ARG, "ig_tensor_to_buffer: buffer holds %" PRId64 " elements, tensor has %" PRId64,
                         n, numel);
    if ((unsigned)dt >= IG_DTYPE_COUNT) return igi_error(IG_ERR_DTYPE, "ig_tensor_to_buffer: invalid dtype");
    if (t->device != IG_CPU) {
        ig_tensor *host = igi_to_device_copy("ig_tensor_to_buffer", t, IG_CPU);
        if (!host) return ig_last_status();
        ig_status st = ig_tensor_to_buffer(host, dt, buf, n);
        ig_tensor_free(host);
        return st;
    }
    /* Wrap buf in a temporary heap header (no storage ownership) to reuse the iterator. */
    igi_storage st;
    memset(&st, 0, sizeof st);
    atomic_init(&st.refcount, 1);
    st.device = IG_CPU;
    st.nbytes = (size_t)numel * ig_dtype_size(dt);
    st.data = buf;
    ig_tensor view;
    memset(&view, 0, sizeof view);
    view.storage = &st;
    view.ndim = t->ndim;
    memcpy(view.shape, t->shape, sizeof view.shape);
    igi_contiguous_strides(t->ndim, view.shape, view.strides);
    view.dtype = dt;
    ig_tensor *ops[2] = {&view, (ig_tensor *)t};
    convert_ctx c = {dt, t->dtype, 0};
    igi_iter_run_parallel(ops, 2, convert_loop, &c);
    return IG_OK;
}

/* ---- printing -------------------------------------------------------------------------- */

static void print_rec(const ig_tensor *t, FILE *f, int dim, int64_t off, int indent) {
    size_t es = ig_dtype_size(t->dtype);
    if (dim == t->ndim) {
        const char *p = (const char *)t->storage->data + (size_t)off * es;
        /* int64 is printed from the integer itself: a double would round past 2^53. */
        if (t->dtype == IG_I64) fprintf(f, "%" PRId64, *(const int64_t *)p);
        else if (ig_dtype_is_float(t->dtype)) igi_fprintf_c(f, "%.4f", igi_load(t->dtype, p));
        else igi_fprintf_c(f, "%.0f", igi_load(t->dtype, p));
        return;
    }
    fputc('[', f);
    int64_t n = t->shape[dim];
    const int64_t edge = 3;
    for (int64_t i = 0; i < n; i++) {
        if (n > 2 * edge + 1 && i == edge) {
            fputs(dim == t->ndim - 1 ? "..., " : "...,\n", f);
            if (dim != t->ndim - 1) fprintf(f, "%*s", indent + 1, "");
            i = n - edge - 1;
            continue;
        }
        print_rec(t, f, dim + 1, off + i * t->strides[dim], indent + 1);
        if (i + 1 < n) {
            if (dim == t->ndim - 1) fputs(", ", f);
            else fprintf(f, ",\n%*s", indent + 1, "");
        }
    }
    fputc(']', f);
}

ig_status ig_print(const ig_tensor *t, FILE *f) {
    if (!t) return igi_error_null("ig_print", "t");
    if (!f) return igi_error_null("ig_print", "f");
    /* A device tensor is printed from a host copy. */
    ig_tensor *host = t->device != IG_CPU ? igi_to_device_copy("ig_print", t, IG_CPU) : NULL;
    if (t->device != IG_CPU && !host) return ig_last_status();
    char b[160];
    fputs("tensor(", f);
    print_rec(host ? host : t, f, 0, host ? host->offset : t->offset, 7);
    fprintf(f, ", shape=%s, dtype=%s%s%s%s)\n", ig_shape_str(t, b, sizeof b), ig_dtype_name(t->dtype),
            t->device != IG_CPU ? ", device=" : "", t->device != IG_CPU ? igi_device_name(t->device) : "",
            t->requires_grad ? ", requires_grad" : "");
    ig_tensor_free(host);
    return IG_OK;
}

/* ---- argument checks -------------------------------------------------------------------- */

bool igi_check_float(const char *op, const ig_tensor *t) {
    if (t->dtype == IG_BF16) {
        igi_error(IG_ERR_DTYPE, "%s: does not take bfloat16 tensors (convert with ig_to_dtype)", op);
        return false;
    }
    if (!ig_dtype_is_float(t->dtype)) {
        igi_error(IG_ERR_DTYPE, "%s: needs a float tensor, got %s", op, ig_dtype_name(t->dtype));
        return false;
    }
    return true;
}

bool igi_check_float_bf16(const char *op, const ig_tensor *t) {
    if (!ig_dtype_is_float(t->dtype)) {
        igi_error(IG_ERR_DTYPE, "%s: needs a float tensor, got %s", op, ig_dtype_name(t->dtype));
        return false;
    }
    return true;
}

bool igi_check_same_dtype(const char *op, const ig_tensor *a, const ig_tensor *b) {
    if (a->dtype != b->dtype) {
        igi_error(IG_ERR_DTYPE, "%s: dtypes differ: %s and %s", op, ig_dtype_name(a->dtype),
                  ig_dtype_name(b->dtype));
        return false;
    }
    return true;
}

bool igi_check_same_device(const char *op, const ig_tensor *a, const ig_tensor *b) {
    if (!igi_check_same_device_any(op, a, b)) return false;
    return igi_check_cpu(op, a);
}

bool igi_check_cpu(const char *op, const ig_tensor *t) {
    if (t->device != IG_CPU) {
        igi_error_not_implemented(op, t->device);
        return false;
    }
    return true;
}
