/*
 * core/ops/pool.c — 2-D pooling as torch.nn.functional: ig_max_pool2d, ig_avg_pool2d and
 * ig_adaptive_avg_pool2d.
 *
 * Shapes: x [N,C,H,W] -> [N,C,Ho,Wo], or x [C,H,W] -> [C,Ho,Wo] (one image). Every
 * (n, c) plane is pooled on its own; each output element reads a window of its plane,
 * described per axis by [lo, hi) (already clipped to the input) and, for averages, a count
 * to divide by. Windows are separable, so a window is the product of one row range and
 * one column range.
 *
 * Fixed windows (max/avg): start = o*stride - pad, extent kernel. The output size follows
 * torch: floor((in + 2*pad - k) / stride) + 1, or with ceil_mode the ceiling, minus one
 * when the last window would start in the right padding. Padding is at most half the
 * kernel, so every window holds at least one input element. Max pooling treats padding as
 * -inf; avg pooling divides by the window clipped to the padded input (count_include_pad,
 * the default) or by the in-input count (exclude_padding).
 * Adaptive windows: start = floor(i*in/out), end = ceil((i+1)*in/out), divisor the size.
 *
 * x may have any strides (the kernels read through them); outputs are contiguous. Max
 * pooling records, when a node is recorded, the argmax of each window as an int64 index
 * into its H*W plane (first maximum on ties; a NaN wins), and backward scatters the
 * gradient there. Avg backward spreads g/count over the window. Both backward passes are
 * own kernels writing into a fresh zero tensor.
 */
#include <math.h>
#include <string.h>

#include "../tensor_impl.h"
#include "nn_device.h"

/* One axis of the pooling geometry. */
typedef struct pool_axis {
    int64_t in, out;
    int64_t k, s, p;  /* fixed windows: kernel, stride, padding */
    bool adaptive;
    bool exclude;     /* avg: divide by in-input elements only */
} pool_axis;

/* Output window i along an axis: input range [lo, hi) and the divisor's factor. */
static void window(const pool_axis *a, int64_t i, int64_t *lo, int64_t *hi, int64_t *count) {
    if (a->adaptive) {
        *lo = i * a->in / a->out;
        *hi = ((i + 1) * a->in + a->out - 1) / a->out;
        *count = *hi - *lo;
        return;
    }
    int64_t start = i * a->s - a->p;
    int64_t end = start + a->k;
    if (end > a->in + a->p) end = a->in + a->p;
    int64_t padded = end - start;
    if (start < 0) start = 0;
    if (end > a->in) end = a->in;
    *lo = start;
    *hi = end;
    *count = a->exclude ? end - start : padded;
}

/* The whole problem: planes of x (strides sn, sc, sh, sw in elements) into out. */
typedef struct pool_geom {
    int64_t N, C;
    int64_t sn, sc, sh, sw;
    pool_axis ax[2]; /* rows, columns */
} pool_geom;

/* ---- kernels ------------------------------------------------------------------------------
 *
 * Each kernel handles planes [begin, end) of the N*C planes (plane pl = n*C + c), so the
 * planes can be split across threads; every output and dx element belongs to one plane.
 *
 * Max pooling: m starts at the window's first element and is replaced by v when
 * v > m, or v is NaN and m is not: the first maximum wins ties and the first NaN wins.
 * Interior fast path: with no padding and every window inside the input (floor mode, or a
 * ceil mode that adds no partial window), window bounds are o*s .. o*s+k and no clipping
 * is needed; 2x2 windows with stride 2 over unit-stride rows (the common downsampling)
 * get their own straight-line loop. */

/* True if every window of the axis lies inside the input (no padding, no partial window). */
static bool axis_interior(const pool_axis *a) {
    return !a->adaptive && a->p == 0 && a->out > 0 && (a->out - 1) * a->s + a->k <= a->in;
}

#define POOL_MAX_STEP(v, m, bi, i)                                                      \
    if ((v) > (m) || (isnan(v) && !isnan(m))) {                                            \
        (m) = (v);                                                                         \
        (bi) = (i);                                                                        \
    }

#define DEFINE_POOL_KERNELS(SUF, T)                                                         \
    /* out [N*C, Ho, Wo] = max over windows; idx (may be NULL) the argmax in the plane. */ \
    static void max_fwd_##SUF(const pool_geom *g, const T *x, T *out, int64_t *idx,        \
                              int64_t begin, int64_t end) {                                \
        int64_t Ho = g->ax[0].out, Wo = g->ax[1].out, W = g->ax[1].in;                     \
        bool interior = axis_interior(&g->ax[0]) && axis_interior(&g->ax[1]);              \
        bool k2s2 = interior && g->ax[0].k == 2 && g->ax[1].k == 2 && g->ax[0].s == 2 &&   \
                    g->ax[1].s == 2 && g->sw == 1;                                         \
        for (int64_t pl = begin; pl < end; pl++) {                                         \
            const T *xp = x + (pl / g->C) * g->sn + (pl % g->C) * g->sc;                   \
            int64_t q = pl * Ho * Wo;                                                      \
            if (k2s2) {                                                                    \
                for (int64_t oy = 0; oy < Ho; oy++, q += Wo) {                             \
                    const T *r0 = xp + 2 * oy * g->sh, *r1 = r0 + g->sh;                   \
                    T *o = out + q;                                                        \
                    /* Values first, as selects (this loop vectorises). */                 \
                    for (int64_t ox = 0; ox < Wo; ox++) {                                  \
                        T m = r0[2 * ox], v;                                               \
                        v = r0[2 * ox + 1];                                                \
                        m = (v > m || (isnan(v) && !isnan(m))) ? v : m;                    \
                        v = r1[2 * ox];                                                    \
                        m = (v > m || (isnan(v) && !isnan(m))) ? v : m;                    \
                        v = r1[2 * ox + 1];                                                \
                        m = (v > m || (isnan(v) && !isnan(m))) ? v : m;                    \
                        o[ox] = m;                                                         \
                    }                                                                      \
                    if (!idx) continue;                                                    \
                    /* The argmax is then the first window element equal to the max, or   \
                     * the first NaN when the max is NaN (a NaN anywhere makes the max    \
                     * NaN): selects from the last element back. */                       \
                    int64_t *ip = idx + q, base = 2 * oy * W;                              \
                    /* In two passes per block of 256: the window position 0..3 as an     \
                     * int32 (selects of the element width's compares: vectorises), then  \
                     * the int64 index from it. */                                        \
                    for (int64_t x0 = 0; x0 < Wo; x0 += 256) {                             \
                        int32_t code[256];                                                 \
                        int64_t nx = Wo - x0 < 256 ? Wo - x0 : 256;                        \
                        for (int64_t t = 0; t < nx; t++) {                                 \
                            int64_t ox = x0 + t;                                           \
                            T m = o[ox];                                                   \
                            T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox];          \
                            int32_t k = 3;                                                 \
                            k = ((c == m) | (c != c)) ? 2 : k;                             \
                            k = ((b == m) | (b != b)) ? 1 : k;                             \
                            k = ((a == m) | (a != a)) ? 0 : k;                             \
                            code[t] = k;                                                   \
                        }                                                                  \
                        for (int64_t t = 0; t < nx; t++) {                                 \
                            int64_t ox = x0 + t, k = code[t];                              \
                            ip[ox] = base + 2 * ox + (k & 1) + ((k >> 1) ? W : 0);         \
                        }                                                                  \
                    }                                                                      \
                }                                                                          \
                continue;                                                                  \
            }                                                                              \
            for (int64_t oy = 0; oy < Ho; oy++) {                                          \
                int64_t y0, y1, cy;                                                        \
                window(&g->ax[0], oy, &y0, &y1, &cy);                                      \
                for (int64_t ox = 0; ox < Wo; ox++, q++) {                                 \
                    int64_t x0, x1, cx, best = -1;                                         \
                    if (interior) {                                                        \
                        x0 = ox * g->ax[1].s;                                              \
                        x1 = x0 + g->ax[1].k;                                              \
                    } else {                                                               \
                        window(&g->ax[1], ox, &x0, &x1, &cx);                              \
                    }                                                                      \
                    T m = (T)-INFINITY;                                                    \
                    for (int64_t iy = y0; iy < y1; iy++)                                   \
                        for (int64_t ix = x0; ix < x1; ix++) {                             \
                            T v = xp[iy * g->sh + ix * g->sw];                             \
                            if (best < 0) {                                                \
                                m = v;                                                     \
                                best = iy * W + ix;                                        \
                            } else {                                                       \
                                POOL_MAX_STEP(v, m, best, iy * W + ix)                  \
                            }                                                              \
                        }                                                                  \
                    out[q] = m;                                                            \
                    if (idx) idx[q] = best;                                                \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    /* out = mean over windows (sum in double). */                                         \
    static void avg_fwd_##SUF(const pool_geom *g, const T *x, T *out, int64_t begin,       \
                              int64_t end) {                                               \
        int64_t Ho = g->ax[0].out, Wo = g->ax[1].out;                                      \
        bool interior = axis_interior(&g->ax[1]);                                          \
        for (int64_t pl = begin; pl < end; pl++) {                                         \
            const T *xp = x + (pl / g->C) * g->sn + (pl % g->C) * g->sc;                   \
            int64_t q = pl * Ho * Wo;                                                      \
            for (int64_t oy = 0; oy < Ho; oy++) {                                          \
                int64_t y0, y1, cy;                                                        \
                window(&g->ax[0], oy, &y0, &y1, &cy);                                      \
                for (int64_t ox = 0; ox < Wo; ox++, q++) {                                 \
                    int64_t x0, x1, cx;                                                    \
                    if (interior) {                                                        \
                        x0 = ox * g->ax[1].s;                                              \
                        x1 = x0 + g->ax[1].k;                                              \
                        cx = g->ax[1].k;                                                   \
                    } else {                                                               \
                        window(&g->ax[1], ox, &x0, &x1, &cx);                              \
                    }                                                                      \
                    double acc = 0;                                                        \
                    for (int64_t iy = y0; iy < y1; iy++)                                   \
                        for (int64_t ix = x0; ix < x1; ix++)                               \
                            acc += xp[iy * g->sh + ix * g->sw];                            \
                    out[q] = (T)(acc / (double)(cy * cx));                                 \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    /* dx (contiguous, zeroed) += g routed to each window's argmax; go has strides gs. */  \
    static void max_bwd_##SUF(const pool_geom *g, const T *go, const int64_t *gs,          \
                              const int64_t *idx, T *dx, int64_t begin, int64_t end) {     \
        int64_t Ho = g->ax[0].out, Wo = g->ax[1].out, plane = g->ax[0].in * g->ax[1].in;   \
        for (int64_t pl = begin; pl < end; pl++) {                                         \
            int64_t n = pl / g->C, c = pl % g->C, q = pl * Ho * Wo;                        \
            T *dp = dx + pl * plane;                                                       \
            const T *gp = go + n * gs[0] + c * gs[1];                                      \
            for (int64_t oy = 0; oy < Ho; oy++)                                            \
                for (int64_t ox = 0; ox < Wo; ox++, q++)                                   \
                    if (idx[q] >= 0) dp[idx[q]] += gp[oy * gs[2] + ox * gs[3]];            \
        }                                                                                  \
    }                                                                                      \
    /* dx (contiguous, zeroed) += g / count over each window. */                           \
    static void avg_bwd_##SUF(const pool_geom *g, const T *go, const int64_t *gs, T *dx,   \
                              int64_t begin, int64_t end) {                                \
        int64_t Ho = g->ax[0].out, Wo = g->ax[1].out, W = g->ax[1].in;                     \
        int64_t plane = g->ax[0].in * W;                                                   \
        for (int64_t pl = begin; pl < end; pl++) {                                         \
            int64_t n = pl / g->C, c = pl % g->C;                                          \
            T *dp = dx + pl * plane;                                                       \
            const T *gp = go + n * gs[0] + c * gs[1];                                      \
            for (int64_t oy = 0; oy < Ho; oy++) {                                          \
                int64_t y0, y1, cy;                                                        \
                window(&g->ax[0], oy, &y0, &y1, &cy);                                      \
                for (int64_t ox = 0; ox < Wo; ox++) {                                      \
                    int64_t x0, x1, cx;                                                    \
                    window(&g->ax[1], ox, &x0, &x1, &cx);                                  \
                    T v = (T)(gp[oy * gs[2] + ox * gs[3]] / (double)(cy * cx));            \
                    for (int64_t iy = y0; iy < y1; iy++)                                   \
                        for (int64_t ix = x0; ix < x1; ix++) dp[iy * W + ix] += v;         \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

DEFINE_POOL_KERNELS(f32, float)
DEFINE_POOL_KERNELS(f64, double)

/* Thread-pool adapters: one job describes a whole kernel call; ranges are planes. */
typedef struct pool_job {
    const pool_geom *g;
    ig_dtype dt;
    const void *x;        /* forward: x; backward: gout */
    const int64_t *gs;    /* backward: gout strides [n, c, h, w] */
    int64_t *idx;         /* max forward: argmax out (may be NULL) */
    const int64_t *sidx;  /* max backward: the saved argmax */
    void *out;            /* forward: out; backward: dx */
} pool_job;

static void max_fwd_range(int64_t begin, int64_t end, void *ctx) {
    const pool_job *j = ctx;
    if (j->dt == IG_F32) max_fwd_f32(j->g, j->x, j->out, j->idx, begin, end);
    else max_fwd_f64(j->g, j->x, j->out, j->idx, begin, end);
}

static void avg_fwd_range(int64_t begin, int64_t end, void *ctx) {
    const pool_job *j = ctx;
    if (j->dt == IG_F32) avg_fwd_f32(j->g, j->x, j->out, begin, end);
    else avg_fwd_f64(j->g, j->x, j->out, begin, end);
}

static void max_bwd_range(int64_t begin, int64_t end, void *ctx) {
    const pool_job *j = ctx;
    if (j->dt == IG_F32) max_bwd_f32(j->g, j->x, j->gs, j->sidx, j->out, begin, end);
    else max_bwd_f64(j->g, j->x, j->gs, j->sidx, j->out, begin, end);
}

static void avg_bwd_range(int64_t begin, int64_t end, void *ctx) {
    const pool_job *j = ctx;
    if (j->dt == IG_F32) avg_bwd_f32(j->g, j->x, j->gs, j->out, begin, end);
    else avg_bwd_f64(j->g, j->x, j->gs, j->out, begin, end);
}

/* Runs a plane-range kernel over all N*C planes on the thread pool (planes of ~32K input
 * elements per range at least, so a worker's wake-up pays off). */
static void pool_run(void (*fn)(int64_t, int64_t, void *), pool_job *j) {
    int64_t plane = j->g->ax[0].in * j->g->ax[1].in;
    int64_t grain = plane >= 32768 ? 1 : 32768 / (plane > 0 ? plane : 1);
    igi_parallel_for(j->g->N * j->g->C, grain, fn, j);
}

/* ---- shared setup --------------------------------------------------------------------------- */

enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE };

/* Checks x (3-D or 4-D float, any device) and fills the plane part of g (N, C, strides, ax[].in). */
static bool pool_input(const char *op, ig_tensor *x, pool_geom *g) {
    char b[160];
    if (x->dtype != IG_F32 && x->dtype != IG_F64 && x->dtype != IG_BF16) {
        igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported (float32, float64 and bfloat16 only)", op,
                  ig_dtype_name(x->dtype));
        return false;
    }
    if (x->ndim != 3 && x->ndim != 4) {
        igi_error(IG_ERR_SHAPE, "%s: input must be 3-D [C,H,W] or 4-D [N,C,H,W], got %s", op,
                  ig_shape_str(x, b, sizeof b));
        return false;
    }
    int d = x->ndim - 3; /* 1 if there is a batch dim */
    memset(g, 0, sizeof *g);
    g->N = d ? x->shape[0] : 1;
    g->sn = d ? x->strides[0] : 0;
    g->C = x->shape[d];
    g->sc = x->strides[d];
    g->sh = x->strides[d + 1];
    g->sw = x->strides[d + 2];
    g->ax[0].in = x->shape[d + 1];
    g->ax[1].in = x->shape[d + 2];
    return true;
}

/* Geometry of a fixed-window pool (validates p). Sets attr[0..8) for the node. */
static bool pool_fixed_setup(const char *op, int kind, ig_tensor *x, const ig_pool2d_params *p,
                             pool_geom *g, int64_t *attr) {
    char b[160];
    if (!pool_input(op, x, g)) return false;
    for (int i = 0; i < 2; i++) {
        if (p->kernel[i] <= 0) {
            igi_error(IG_ERR_ARG, "%s: kernel size must be positive, got (%d, %d)", op,
                      p->kernel[0], p->kernel[1]);
            return false;
        }
        if (p->stride[i] < 0) {
            igi_error(IG_ERR_ARG, "%s: stride must be positive, got (%d, %d)", op, p->stride[0],
                      p->stride[1]);
            return false;
        }
        if (p->padding[i] < 0 || p->padding[i] > p->kernel[i] / 2) {
            igi_error(IG_ERR_ARG,
                      "%s: padding (%d, %d) must be >= 0 and at most half the kernel (%d, %d)", op,
                      p->padding[0], p->padding[1], p->kernel[0], p->kernel[1]);
            return false;
        }
    }
    for (int i = 0; i < 2; i++) {
        pool_axis *a = &g->ax[i];
        a->k = p->kernel[i];
        a->s = p->stride[i] ? p->stride[i] : p->kernel[i];
        a->p = p->padding[i];
        a->exclude = kind == POOL_AVG && p->exclude_padding;
        if (a->in > INT64_MAX / 4) {
            igi_error(IG_ERR_SHAPE, "%s: input %s is too large", op, ig_shape_str(x, b, sizeof b));
            return false;
        }
        /* torch's pooling_output_shape with dilation 1, floor division throughout. */
        int64_t num = a->in + 2 * a->p - a->k + (p->ceil_mode ? a->s - 1 : 0);
        int64_t o = (num >= 0 ? num / a->s : -((-num + a->s - 1) / a->s)) + 1;
        if (p->ceil_mode && o > 0 && (o - 1) * a->s >= a->in + a->p) o--;
        a->out = o;
    }
    if (g->ax[0].out <= 0 || g->ax[1].out <= 0) {
        igi_error(IG_ERR_SHAPE,
                  "%s: output size would be %lldx%lld (<= 0): input %s, kernel (%d, %d), stride "
                  "(%lld, %lld), padding (%d, %d)",
                  op, (long long)g->ax[0].out, (long long)g->ax[1].out, ig_shape_str(x, b, sizeof b),
                  p->kernel[0], p->kernel[1], (long long)g->ax[0].s, (long long)g->ax[1].s,
                  p->padding[0], p->padding[1]);
        return false;
    }
    int64_t a8[8] = {g->ax[0].k, g->ax[1].k, g->ax[0].s, g->ax[1].s,
                     g->ax[0].p, g->ax[1].p, g->ax[0].exclude, 0};
    memcpy(attr, a8, sizeof a8);
    return true;
}

/* A pool of x on its device (nn_device.c): the geometry as plain fields. */
static ig_tensor *pool_on_device(const char *op, int opid, ig_tensor *x, const pool_geom *g, const int64_t *attr) {
    igi_pool d = {.N = g->N, .C = g->C, .xs = {g->sn, g->sc, g->sh, g->sw}, .adaptive = g->ax[0].adaptive,
                  .exclude = g->ax[0].exclude};
    for (int i = 0; i < 2; i++) {
        d.in[i] = g->ax[i].in;
        d.out[i] = g->ax[i].out;
        d.k[i] = g->ax[i].k;
        d.s[i] = g->ax[i].s;
        d.p[i] = g->ax[i].p;
    }
    return igi_pool2d_device(op, opid, x, &d, attr);
}

/* The output tensor: x's leading dims, then (Ho, Wo). */
static ig_tensor *pool_output(const char *op, const ig_tensor *x, const pool_geom *g, ig_dtype dt) {
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)(x->ndim - 2));
    shape[x->ndim - 2] = g->ax[0].out;
    shape[x->ndim - 1] = g->ax[1].out;
    return igi_tensor_new(op, x->ndim, shape, dt, x->device);
}

/* Rebuilds the geometry for backward from the input, the gradient's shape and the attrs. */
static void pool_geom_from_node(const igi_node *node, const ig_tensor *gout, pool_geom *g) {
    ig_tensor *x = node->inputs[0];
    bool ok = pool_input(igi_op_name(node->op), x, g);
    IG_ASSERT(ok);
    for (int i = 0; i < 2; i++) {
        pool_axis *a = &g->ax[i];
        a->out = gout->shape[gout->ndim - 2 + i];
        a->adaptive = node->op == IGI_OP_ADAPTIVE_AVG_POOL2D;
        a->k = node->iattr[i];
        a->s = node->iattr[2 + i];
        a->p = node->iattr[4 + i];
        a->exclude = node->iattr[6] != 0;
    }
}

/* gout's strides as [n, c, h, w] (n stride 0 for 3-D). */
static void grad_strides(const ig_tensor *gout, int64_t *gs) {
    int d = gout->ndim - 3;
    gs[0] = d ? gout->strides[0] : 0;
    gs[1] = gout->strides[d];
    gs[2] = gout->strides[d + 1];
    gs[3] = gout->strides[d + 2];
}

/* ---- backward ------------------------------------------------------------------------------- */

static ig_status max_pool2d_backward(igi_node *node, ig_tensor *gout, ig_tensor **gin) {
    ig_tensor *x = node->inputs[0];
    pool_geom g;
    pool_geom_from_node(node, gout, &g);
    ig_tensor *dx = ig_zeros(x->ndim, x->shape, x->dtype);
    if (!dx) return ig_last_status();
    int64_t gs[4];
    grad_strides(gout, gs);
    const int64_t *idx = (const int64_t *)igi_data(node->saved[0]);
    pool_job j = {.g = &g, .dt = x->dtype, .x = igi_data(gout), .gs = gs, .sidx = idx,
                  .out = igi_data(dx)};
    pool_run(max_bwd_range, &j);
    gin[0] = dx;
    return IG_OK;
}

static ig_status avg_pool2d_backward(igi_node *node, ig_tensor *gout, ig_tensor **gin) {
    ig_tensor *x = node->inputs[0];
    pool_geom g;
    pool_geom_from_node(node, gout, &g);
    ig_tensor *dx = ig_zeros(x->ndim, x->shape, x->dtype);
    if (!dx) return ig_last_status();
    int64_t gs[4];
    grad_strides(gout, gs);
    pool_job j = {.g = &g, .dt = x->dtype, .x = igi_data(gout), .gs = gs, .out = igi_data(dx)};
    pool_run(avg_bwd_range, &j);
    gin[0] = dx;
    return IG_OK;
}

/* ---- forward -------------------------------------------------------------------------------- */

ig_tensor *ig_max_pool2d(ig_tensor *x, const ig_pool2d_params *p) {
    static const char *const op = "ig_max_pool2d";
    IGI_NULL_CHECK(op, x);
    IGI_NULL_CHECK(op, p);
    IGI_BF16_VIA_F32(x, IGI_BF16_POOL, ig_max_pool2d(IGI_W, p));
    pool_geom g;
    int64_t attr[8];
    if (!pool_fixed_setup(op, POOL_MAX, x, p, &g, attr)) return NULL;
    if (x->device != IG_CPU) return pool_on_device(op, IGI_OP_MAX_POOL2D, x, &g, attr);
    ig_tensor *out = pool_output(op, x, &g, x->dtype);
    if (!out) return NULL;
    /* The argmax is only needed (and only allocated) for backward. */
    bool record = igi_should_record(&x, 1);
    ig_tensor *idx = record ? pool_output(op, x, &g, IG_I64) : NULL;
    if (record && !idx) {
        ig_tensor_free(out);
        return NULL;
    }
    int64_t *ip = idx ? (int64_t *)igi_data(idx) : NULL;
    pool_job j = {.g = &g, .dt = x->dtype, .x = igi_data(x), .idx = ip, .out = igi_data(out)};
    pool_run(max_fwd_range, &j);
    out = igi_finish(IGI_OP_MAX_POOL2D, max_pool2d_backward, out, &x, 1);
    if (out && out->node) {
        memcpy(out->node->iattr, attr, sizeof attr);
        igi_node_save(out->node, 0, idx);
    }
    ig_tensor_free(idx); /* the node holds its own reference */
    return out;
}

ig_tensor *ig_avg_pool2d(ig_tensor *x, const ig_pool2d_params *p) {
    static const char *const op = "ig_avg_pool2d";
    IGI_NULL_CHECK(op, x);
    IGI_NULL_CHECK(op, p);
    IGI_BF16_VIA_F32(x, IGI_BF16_POOL, ig_avg_pool2d(IGI_W, p));
    pool_geom g;
    int64_t attr[8];
    if (!pool_fixed_setup(op, POOL_AVG, x, p, &g, attr)) return NULL;
    if (x->device != IG_CPU) return pool_on_device(op, IGI_OP_AVG_POOL2D, x, &g, attr);
    ig_tensor *out = pool_output(op, x, &g, x->dtype);
    if (!out) return NULL;
    pool_job j = {.g = &g, .dt = x->dtype, .x = igi_data(x), .out = igi_data(out)};
    pool_run(avg_fwd_range, &j);
    out = igi_finish(IGI_OP_AVG_POOL2D, avg_pool2d_backward, out, &x, 1);
    if (out && out->node) memcpy(out->node->iattr, attr, sizeof attr);
    return out;
}

ig_tensor *ig_adaptive_avg_pool2d(ig_tensor *x, int64_t oh, int64_t ow) {
    static const char *const op = "ig_adaptive_avg_pool2d";
    IGI_NULL_CHECK(op, x);
    IGI_BF16_VIA_F32(x, IGI_BF16_POOL, ig_adaptive_avg_pool2d(IGI_W, oh, ow));
    pool_geom g;
    if (!pool_input(op, x, &g)) return NULL;
    char b[160];
    if (oh <= 0 || ow <= 0) {
        igi_error(IG_ERR_ARG, "%s: output size must be positive, got %lldx%lld", op,
                  (long long)oh, (long long)ow);
        return NULL;
    }
    int64_t outs[2] = {oh, ow};
    for (int i = 0; i < 2; i++) {
        pool_axis *a = &g.ax[i];
        if (a->in == 0 || a->in > INT64_MAX / 4) {
            igi_error(IG_ERR_SHAPE, "%s: input %s has an empty or too large spatial dim", op,
                      ig_shape_str(x, b, sizeof b));
            return NULL;
        }
        /* Bin bounds compute (i+1)*in + out - 1 <= out*(in+1): keep it in range. */
        if (outs[i] > INT64_MAX / (a->in + 1)) {
            igi_error(IG_ERR_SHAPE, "%s: output size %lldx%lld is too large for input %s", op,
                      (long long)oh, (long long)ow, ig_shape_str(x, b, sizeof b));
            return NULL;
        }
        a->out = outs[i];
        a->adaptive = true;
    }
    if (x->device != IG_CPU) return pool_on_device(op, IGI_OP_ADAPTIVE_AVG_POOL2D, x, &g, NULL);
    ig_tensor *out = pool_output(op, x, &g, x->dtype);
    if (!out) return NULL;
    pool_job j = {.g = &g, .dt = x->dtype, .x = igi_data(x), .out = igi_data(out)};
    pool_run(avg_fwd_range, &j);
    return igi_finish(IGI_OP_ADAPTIVE_AVG_POOL2D, avg_pool2d_backward, out, &x, 1);
}
