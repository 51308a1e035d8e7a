/*
 * core/ops/norm.c — batch norm and layer norm, each with its own backward kernel.
 *
 * Both normalise groups of elements by their mean and biased variance, then apply an
 * optional per-feature affine map:
 *   batch norm: x [N,C,*]; one group per channel c (over N and every trailing dim);
 *               weight/bias [C]. In training the running stats [C] are updated in place.
 *   layer norm: x [..., normalized_shape]; one group per leading index (over the last
 *               n_dims dims); weight/bias have normalized_shape.
 * Kernels read contiguous copies of x and of the output gradient (made only when those are
 * strided), so the hot loops run in memory order. Statistics and reductions accumulate in
 * double, except batch norm's f32 kernels, which sum in float vector lanes per plane and
 * in double across planes (see "batch norm, f32" below); the
 * per-group mean and 1/sqrt(var + eps) are saved on the node as small f64 tensors, and the backward recomputes xhat = (x - mean) * invstd from
 * the input. With n elements per group and dy = g * weight:
 *   dx = invstd * (dy - mean(dy) - xhat * mean(dy * xhat))   (batch statistics)
 *   dx = invstd * dy                                         (batch norm in eval mode)
 *   dweight = sum(g * xhat), dbias = sum(g)                  (over each feature's group)
 * Synchronised batch norm (igi_batch_norm_sync, data-parallel) runs the same kernels with
 * the statistics and the two backward sums added over the process group through a caller's
 * callback: n becomes the group's element count, mean and variance the group's (two
 * passes, as here), and dx uses the group's sum(g) and sum(g * xhat). The forward's
 * reductions (igi_bn_stats_sync) are shared with the device path (nn_device.c), which
 * feeds them the device's sums.
 * Batch norm runs on the thread pool, one channel per thread at a time (see bn_job), so its
 * results do not depend on the thread count.
 */
#include <math.h>
#include <string.h>

#include "../tensor_impl.h"
#include "nn_device.h"

/* Runs the statements with T bound to float (f32) or double (f64). */
#define DISPATCH_FLOAT(dt, ...)          \
    do {                                 \
        if ((dt) == IG_F32) {            \
            typedef float T;             \
            __VA_ARGS__                  \
        } else {                         \
            typedef double T;            \
            __VA_ARGS__                  \
        }                                \
    } while (0)

/* A contiguous reference to t made with grad mode off: t itself (retained) or a copy.
 * Release with ig_tensor_free (a no-op for scoped tensors). */
static ig_tensor *contiguous_nograd(ig_tensor *t) {
    igi_no_grad_depth_add(1);
    ig_tensor *c = ig_contiguous(t);
    igi_no_grad_depth_add(-1);
    return c;
}

/* A new contiguous tensor of dtype dt and the given shape holding vals (as doubles). */
static ig_tensor *tensor_from_doubles(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                                      const double *vals) {
    ig_tensor *t = igi_tensor_new(op, ndim, shape, dt, IG_CPU);
    if (!t) return NULL;
    int64_t n = igi_numel(ndim, t->shape);
    DISPATCH_FLOAT(dt, T *p = (T *)igi_data(t); for (int64_t i = 0; i < n; i++) p[i] = (T)vals[i];);
    return t;
}

/* Saves vals (n doubles) on node slot as an f64 [n] tensor. false (error set) on OOM. */
static bool save_doubles(igi_node *node, int slot, const double *vals, int64_t n) {
    ig_tensor *t = tensor_from_doubles(igi_op_name(node->op), 1, &n, IG_F64, vals);
    if (!t) return false;
    igi_node_save(node, slot, t);
    ig_tensor_free(t); /* the node holds its own reference (heap) or the scope does */
    return true;
}

static double *alloc_doubles(const char *op, int64_t n, int count) {
    double *p = calloc((size_t)(n > 0 ? n : 1) * (size_t)count, sizeof(double));
    if (!p) igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    return p;
}

/* Per-channel scratch of batch norm: zeroed doubles in the caller's stack frame when they
 * fit (up to 256 channels x 5), so a training step does not go to the heap for them. */
#define BN_SCRATCH 1280 /* 5 doubles per channel for up to 256 channels */
typedef struct bn_scratch {
    double local[BN_SCRATCH];
    double *heap;
} bn_scratch;

static double *bn_scratch_get(bn_scratch *s, const char *op, int64_t n, int count) {
    size_t total = (size_t)(n > 0 ? n : 1) * (size_t)count;
    s->heap = NULL;
    if (total <= BN_SCRATCH) {
        memset(s->local, 0, total * sizeof(double));
        return s->local;
    }
    return s->heap = alloc_doubles(op, n, count);
}

/* Checks an optional per-feature tensor: same dtype and device as x and the given shape. */
static bool check_param(const char *op, const char *name, const ig_tensor *p, const ig_tensor *x,
                        int ndim, const int64_t *shape) {
    if (!p) return true;
    char b1[160], b2[160];
    if (p->dtype != x->dtype && !(x->dtype == IG_BF16 && p->dtype == IG_F32)) { /* bf16 x: f32 parameters */
        igi_error(IG_ERR_DTYPE, "%s: %s is %s but x is %s", op, name, ig_dtype_name(p->dtype),
                  ig_dtype_name(x->dtype));
        return false;
    }
    if (!igi_check_same_device_any(op, p, x)) return false;
    if (p->ndim != ndim || memcmp(p->shape, shape, sizeof(int64_t) * (size_t)ndim) != 0) {
        igi_error(IG_ERR_SHAPE, "%s: %s has shape %s, expected %s", op, name, ig_shape_str(p, b1, sizeof b1),
                  igi_shape_str(ndim, shape, b2, sizeof b2));
        return false;
    }
    return true;
}

/* Loads an optional parameter of n elements into out as doubles, or fills it with dflt. */
static void load_param(const ig_tensor *p, double *out, int64_t n, double dflt) {
    if (!p) {
        for (int64_t i = 0; i < n; i++) out[i] = dflt;
        return;
    }
    ig_status st = ig_tensor_to_buffer(p, IG_F64, out, n);
    IG_ASSERT(st == IG_OK);
}

/* ---- batch norm -------------------------------------------------------------------------- */

/* Row reductions of batch norm in double with four interleaved partial sums, combined as
 * (p0 + p1) + (p2 + p3): one accumulator is bound by the latency of each add (the statistics
 * were ~10% of a resnet8 step that way); four give the compiler independent chains (and
 * pairs of them in SSE2 registers). The order depends on S only, never on threads. */
#define DEFINE_BN_ROWS(SUF, T)                                                              \
    static inline double row_sum_##SUF(const T *r, int64_t S) {                            \
        double p0 = 0, p1 = 0, p2 = 0, p3 = 0;                                              \
        int64_t k = 0;                                                                      \
        for (; k + 4 <= S; k += 4) {                                                        \
            p0 += r[k];                                                                     \
            p1 += r[k + 1];                                                                 \
            p2 += r[k + 2];                                                                 \
            p3 += r[k + 3];                                                                 \
        }                                                                                   \
        for (; k < S; k++) p0 += r[k];                                                      \
        return (p0 + p1) + (p2 + p3);                                                       \
    }                                                                                       \
    static inline double row_sqdev_##SUF(const T *r, int64_t S, double m) {                \
        double p0 = 0, p1 = 0, p2 = 0, p3 = 0;                                              \
        int64_t k = 0;                                                                      \
        for (; k + 4 <= S; k += 4) {                                                        \
            double d0 = (double)r[k] - m, d1 = (double)r[k + 1] - m;                        \
            double d2 = (double)r[k + 2] - m, d3 = (double)r[k + 3] - m;                    \
            p0 += d0 * d0;                                                                  \
            p1 += d1 * d1;                                                                  \
            p2 += d2 * d2;                                                                  \
            p3 += d3 * d3;                                                                  \
        }                                                                                   \
        for (; k < S; k++) p0 += ((double)r[k] - m) * ((double)r[k] - m);                   \
        return (p0 + p1) + (p2 + p3);                                                       \
    }                                                                                       \
    /* *sg = sum(g), *sgx = sum(g * (x - m)) over one row. */                               \
    static inline void row_bsums_##SUF(const T *g, const T *x, int64_t S, double m,         \
                                       double *sg, double *sgx) {                           \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;              \
        int64_t k = 0;                                                                      \
        for (; k + 4 <= S; k += 4) {                                                        \
            a0 += g[k];                                                                     \
            a1 += g[k + 1];                                                                 \
            a2 += g[k + 2];                                                                 \
            a3 += g[k + 3];                                                                 \
            b0 += (double)g[k] * ((double)x[k] - m);                                        \
            b1 += (double)g[k + 1] * ((double)x[k + 1] - m);                                \
            b2 += (double)g[k + 2] * ((double)x[k + 2] - m);                                \
            b3 += (double)g[k + 3] * ((double)x[k + 3] - m);                                \
        }                                                                                   \
        for (; k < S; k++) {                                                                \
            a0 += g[k];                                                                     \
            b0 += (double)g[k] * ((double)x[k] - m);                                        \
        }                                                                                   \
        *sg = (a0 + a1) + (a2 + a3);                                                        \
        *sgx = (b0 + b1) + (b2 + b3);                                                       \
    }

DEFINE_BN_ROWS(f32, float)
DEFINE_BN_ROWS(f64, double)

/* The row helpers for the T of a DISPATCH_FLOAT body. */
#define ROW_SUM(r, S) (sizeof(T) == 4 ? row_sum_f32((const float *)(const void *)(r), S) \
                                      : row_sum_f64((const double *)(const void *)(r), S))
#define ROW_SQDEV(r, S, m) (sizeof(T) == 4 ? row_sqdev_f32((const float *)(const void *)(r), S, m) \
                                           : row_sqdev_f64((const double *)(const void *)(r), S, m))
#define ROW_BSUMS(g, x, S, m, a, ax)                                                                \
    (sizeof(T) == 4 ? row_bsums_f32((const float *)(const void *)(g), (const float *)(const void *)(x), S, m, a, ax) \
                    : row_bsums_f64((const double *)(const void *)(g), (const double *)(const void *)(x), S, m, a, ax))

/* The batch norm kernels run on the thread pool: the statistics split by channel (each
 * channel's sum is accumulated by one thread, image by image, in the same order as a serial
 * loop, so results are bitwise the same for any thread count), the elementwise passes by
 * rows (n, c) of S elements. */
typedef struct bn_job {
    const ig_tensor *x, *g; /* contiguous [N, C, S]; g: output gradient (backward) */
    ig_tensor *y;           /* output (apply) or dx (backward) */
    int64_t N, C, S;
    const double *a, *b;    /* per-channel inputs (mean / scale / shift ...) */
    double *s1, *s2;        /* per-channel outputs */
    const double *c1, *c2, *c3; /* backward dx terms */
    double cnt, eps;
    bool training;
} bn_job;

/* Items per range so that each range has ~32K elements of x (waking a worker pays off). */
static int64_t bn_grain(int64_t elems_per_item) {
    return elems_per_item >= 32768 ? 1 : 32768 / (elems_per_item > 0 ? elems_per_item : 1);
}

/* s1[c] = sum of x over channel c, for channels [c0, c1). */
IGI_HOT static void bn_sums_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    int64_t N = j->N, C = j->C, S = j->S;
    DISPATCH_FLOAT(j->x->dtype, const T *xp = (const T *)igi_data(j->x);
        for (int64_t c = c0; c < c1; c++) {
            double acc = 0;
            for (int64_t n = 0; n < N; n++) {
                const T *r = xp + (n * C + c) * S;
                double s = ROW_SUM(r, S);
                acc += s;
            }
            j->s1[c] = acc;
        });
}

/* s1[c] = sum of (x - a[c])^2 over channel c, for channels [c0, c1). */
IGI_HOT static void bn_sqdev_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    int64_t N = j->N, C = j->C, S = j->S;
    DISPATCH_FLOAT(j->x->dtype, const T *xp = (const T *)igi_data(j->x);
        for (int64_t c = c0; c < c1; c++) {
            double m = j->a[c], acc = 0;
            for (int64_t n = 0; n < N; n++) {
                const T *r = xp + (n * C + c) * S;
                double s = ROW_SQDEV(r, S, m);
                acc += s;
            }
            j->s1[c] = acc;
        });
}

/* x is contiguous [N, C, S] (S: the trailing dims flattened). Per-channel sums into
 * sum[C]. */
static void bn_sums(const ig_tensor *x, int64_t N, int64_t C, int64_t S, double *sum) {
    bn_job j = {.x = x, .N = N, .C = C, .S = S, .s1 = sum};
    igi_parallel_for(C, bn_grain(N * S), bn_sums_range, &j);
}

/* Per-channel sums of squared deviations from mean[C] into sq[C]. */
static void bn_sqdev(const ig_tensor *x, int64_t N, int64_t C, int64_t S, const double *mean, double *sq) {
    bn_job j = {.x = x, .N = N, .C = C, .S = S, .a = mean, .s1 = sq};
    igi_parallel_for(C, bn_grain(N * S), bn_sqdev_range, &j);
}

/* Rows [r0, r1) of y = x * a[c] + b[c] (row r = n*C + c). */
IGI_HOT static void bn_apply_range(int64_t r0, int64_t r1, void *ctx) {
    const bn_job *j = ctx;
    int64_t C = j->C, S = j->S;
    DISPATCH_FLOAT(j->x->dtype, const T *xp = (const T *)igi_data(j->x); T *yp = (T *)igi_data(j->y);
        for (int64_t r = r0; r < r1; r++) {
            int64_t o = r * S, c = r % C;
            double a = j->a[c], b = j->b[c];
            for (int64_t k = 0; k < S; k++) yp[o + k] = (T)((double)xp[o + k] * a + b);
        });
}

/* y[n,c,s] = x[n,c,s] * scale[c] + shift[c]; x and y contiguous [N, C, S]. */
static void bn_apply(const ig_tensor *x, ig_tensor *y, int64_t N, int64_t C, int64_t S,
                     const double *scale, const double *shift) {
    bn_job j = {.x = x, .y = y, .N = N, .C = C, .S = S, .a = scale, .b = shift};
    igi_parallel_for(N * C, bn_grain(S), bn_apply_range, &j);
}

/* Backward sums for channels [c0, c1): s1[c] = sum(g), s2[c] = sum(g * xhat), with a =
 * mean, b = invstd; image by image as the serial loop did. */
IGI_HOT static void bn_bsums_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    int64_t N = j->N, C = j->C, S = j->S;
    DISPATCH_FLOAT(j->x->dtype, const T *xp = (const T *)igi_data(j->x); const T *gp = (const T *)igi_data(j->g);
        for (int64_t c = c0; c < c1; c++) {
            double m = j->a[c], sg = 0, sgx = 0;
            for (int64_t n = 0; n < N; n++) {
                int64_t o = (n * C + c) * S;
                double a, ax;
                ROW_BSUMS(gp + o, xp + o, S, m, &a, &ax);
                sg += a;
                sgx += ax * j->b[c];
            }
            j->s1[c] = sg;
            j->s2[c] = sgx;
        });
}

/* dx rows [r0, r1) (row r = n*C + c): a = mean, b = invstd, c1 = weight, c2 / c3 = the
 * sums of g and g * xhat that dx uses (this process's or the group's). */
IGI_HOT static void bn_dx_range(int64_t r0, int64_t r1, void *ctx) {
    const bn_job *j = ctx;
    int64_t C = j->C, S = j->S;
    DISPATCH_FLOAT(j->x->dtype, const T *xp = (const T *)igi_data(j->x); const T *gp = (const T *)igi_data(j->g);
        T *dp = (T *)igi_data(j->y);
        for (int64_t r = r0; r < r1; r++) {
            int64_t o = r * S, c = r % C;
            double invstd = j->b[c], k1 = j->c1[c] * invstd, m = j->a[c];
            if (j->training) {
                /* dx = w * invstd * (g - sum(g)/n - xhat * sum(g*xhat)/n) */
                double mg = j->c2[c] / j->cnt, mgx = j->c3[c] / j->cnt * invstd;
                for (int64_t k = 0; k < S; k++)
                    dp[o + k] = (T)(k1 * ((double)gp[o + k] - mg - ((double)xp[o + k] - m) * mgx));
            } else {
                for (int64_t k = 0; k < S; k++) dp[o + k] = (T)(k1 * (double)gp[o + k]);
            }
        });
}

/* The whole forward of channels [c0, c1) in one pass over the pool, so a layer costs one
 * parallel loop instead of three and each channel's data is still in cache for its second
 * and third pass. With j->training the channel's mean and biased variance are computed
 * (into s1 = mean, s2 = var, the same sums in the same order as bn_sums / bn_sqdev), else
 * a / b hold the running mean / variance. c1 / c2 hold weight / bias; c3 receives invstd
 * (declared const in bn_job, written only here, each channel by its own thread); then
 * y = x * scale + shift with scale = weight * invstd, shift = bias - mean * scale. */
IGI_HOT static void bn_forward_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    int64_t N = j->N, C = j->C, S = j->S;
    double *invstd = (double *)j->c3;
    DISPATCH_FLOAT(j->x->dtype, const T *xp = (const T *)igi_data(j->x); T *yp = (T *)igi_data(j->y);
        for (int64_t c = c0; c < c1; c++) {
            double m, v;
            if (j->training) {
                double acc = 0;
                for (int64_t n = 0; n < N; n++) {
                    const T *r = xp + (n * C + c) * S;
                    double s = ROW_SUM(r, S);
                    acc += s;
                }
                m = acc / j->cnt;
                acc = 0;
                for (int64_t n = 0; n < N; n++) {
                    const T *r = xp + (n * C + c) * S;
                    double s = ROW_SQDEV(r, S, m);
                    acc += s;
                }
                v = acc / j->cnt;
                j->s1[c] = m;
                j->s2[c] = v;
            } else {
                m = j->a[c];
                v = j->b[c];
            }
            double is = 1.0 / sqrt(v + j->eps);
            double a = j->c1[c] * is, b = j->c2[c] - m * a;
            invstd[c] = is;
            for (int64_t n = 0; n < N; n++) {
                int64_t o = (n * C + c) * S;
                for (int64_t k = 0; k < S; k++) yp[o + k] = (T)((double)xp[o + k] * a + b);
            }
        });
}

/* The whole backward of channels [c0, c1) (no process-group reduction between the sums and
 * dx): bn_bsums_range then, when j->y is set, bn_dx_range for the channel's rows. */
IGI_HOT static void bn_backward_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    bn_bsums_range(c0, c1, ctx);
    if (!j->y) return;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t n = 0; n < j->N; n++) bn_dx_range(n * j->C + c, n * j->C + c + 1, ctx);
}

/* ---- batch norm, f32: float lanes ---------------------------------------------------------
 * Batch norm's f32 kernels (plain and synchronised) accumulate in float vector lanes instead
 * of converting every element to double (the double path was ~13% of a resnet8 step):
 * each row (one plane of S elements, n and c fixed) is summed in 16 float lanes (two
 * 8-wide accumulators; then one 8-wide block and a scalar tail), and each row's lanes are
 * widened and added into 8 double lanes per channel, so a float partial covers at most
 * S / 16 elements of one plane (49 for a 28x28 plane) and everything across planes is
 * double. The lanes are combined in a fixed order at the channel's end, so the result does
 * not depend on the thread count or on which clone (AVX2 / baseline) runs.
 * Cancellation: the variance is a second pass over d = x - mf (mf the first pass's mean
 * rounded to float; x - mf is exact when x is within a factor 2 of mf) with
 * var = (sum d^2 - (sum d)^2 / n) / n and mean = mf + sum d / n, so an offset such as
 * x = 1000 + noise costs no digits; the normalisation is y = (x - mf) * a + c and dx uses
 * x - mf the same way, so no product of the offset is ever formed in float. */
typedef float bn_v8f __attribute__((vector_size(32)));
typedef float bn_v4f __attribute__((vector_size(16)));
typedef double bn_v4d __attribute__((vector_size(32)));

/* A channel's double lanes: lo gets float lanes 0-3, hi lanes 4-7. */
typedef struct bn_lanes {
    bn_v4d lo, hi;
} bn_lanes;

#define BN_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

/* Widens the 8 float lanes of *f and adds them into *acc. */
static inline void bn_lanes_add(bn_lanes *acc, const bn_v8f *f) {
    bn_v4f lo, hi;
    memcpy(&lo, f, sizeof lo);
    memcpy(&hi, (const char *)f + sizeof lo, sizeof hi);
    acc->lo += __builtin_convertvector(lo, bn_v4d);
    acc->hi += __builtin_convertvector(hi, bn_v4d);
}

/* The channel's total: the 8 double lanes in a fixed tree, then the scalar tails. */
static inline double bn_lanes_total(const bn_lanes *acc, double tail) {
    bn_v4d a = acc->lo + acc->hi;
    return ((a[0] + a[1]) + (a[2] + a[3])) + tail;
}

/* Adds sum(r[0..S)) to *acc (lanes) and *tail. */
static inline void bn_f32_row_sum(const float *r, int64_t S, bn_lanes *acc, double *tail) {
    bn_v8f a0 = {0}, a1 = {0}, v, w;
    int64_t k = 0;
    for (; k + 16 <= S; k += 16) {
        BN_LOAD(v, r + k);
        BN_LOAD(w, r + k + 8);
        a0 += v;
        a1 += w;
    }
    if (k + 8 <= S) {
        BN_LOAD(v, r + k);
        a0 += v;
        k += 8;
    }
    a0 += a1;
    bn_lanes_add(acc, &a0);
    float t = 0;
    for (; k < S; k++) t += r[k];
    *tail += t;
}

/* Adds sum(d) and sum(d * d), d = r[k] - mf, to (*acc1, *tail1) and (*acc2, *tail2). */
static inline void bn_f32_row_dev(const float *r, int64_t S, float mf, bn_lanes *acc1, double *tail1,
                                  bn_lanes *acc2, double *tail2) {
    bn_v8f a0 = {0}, a1 = {0}, q0 = {0}, q1 = {0}, v, w;
    int64_t k = 0;
    for (; k + 16 <= S; k += 16) {
        BN_LOAD(v, r + k);
        BN_LOAD(w, r + k + 8);
        v -= mf;
        w -= mf;
        a0 += v;
        a1 += w;
        q0 += v * v;
        q1 += w * w;
    }
    if (k + 8 <= S) {
        BN_LOAD(v, r + k);
        v -= mf;
        a0 += v;
        q0 += v * v;
        k += 8;
    }
    a0 += a1;
    q0 += q1;
    bn_lanes_add(acc1, &a0);
    bn_lanes_add(acc2, &q0);
    float t1 = 0, t2 = 0;
    for (; k < S; k++) {
        float d = r[k] - mf;
        t1 += d;
        t2 += d * d;
    }
    *tail1 += t1;
    *tail2 += t2;
}

/* Adds sum(g) and sum(g * (x - mf)) over one row to (*acc1, *tail1) and (*acc2, *tail2). */
static inline void bn_f32_row_bsums(const float *g, const float *x, int64_t S, float mf, bn_lanes *acc1,
                                    double *tail1, bn_lanes *acc2, double *tail2) {
    bn_v8f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, u, v, w, z;
    int64_t k = 0;
    for (; k + 16 <= S; k += 16) {
        BN_LOAD(u, g + k);
        BN_LOAD(v, g + k + 8);
        BN_LOAD(w, x + k);
        BN_LOAD(z, x + k + 8);
        a0 += u;
        a1 += v;
        b0 += u * (w - mf);
        b1 += v * (z - mf);
    }
    if (k + 8 <= S) {
        BN_LOAD(u, g + k);
        BN_LOAD(w, x + k);
        a0 += u;
        b0 += u * (w - mf);
        k += 8;
    }
    a0 += a1;
    b0 += b1;
    bn_lanes_add(acc1, &a0);
    bn_lanes_add(acc2, &b0);
    float t1 = 0, t2 = 0;
    for (; k < S; k++) {
        t1 += g[k];
        t2 += g[k] * (x[k] - mf);
    }
    *tail1 += t1;
    *tail2 += t2;
}

/* The f32 channel steps, shared by the plain and the synchronised batch norm so that a
 * group of one gives bitwise the plain result. x (and g) are contiguous [N, C, S]. Each is
 * IGI_HOT itself: GCC does not inline them into the range kernels, and a plain function
 * would be compiled for the baseline only. */

/* sum(x) over channel c. */
IGI_HOT static double bn_f32_channel_sum(const float *xp, int64_t N, int64_t C, int64_t S, int64_t c) {
    bn_lanes acc = {{0}, {0}};
    double tail = 0;
    for (int64_t n = 0; n < N; n++) bn_f32_row_sum(xp + (n * C + c) * S, S, &acc, &tail);
    return bn_lanes_total(&acc, tail);
}

/* *sd = sum(d), *sq = sum(d * d) over channel c, d = x - mf. */
IGI_HOT static void bn_f32_channel_dev(const float *xp, int64_t N, int64_t C, int64_t S, int64_t c, float mf,
                                      double *sd, double *sq) {
    bn_lanes acc1 = {{0}, {0}}, acc2 = {{0}, {0}};
    double tail1 = 0, tail2 = 0;
    for (int64_t n = 0; n < N; n++) bn_f32_row_dev(xp + (n * C + c) * S, S, mf, &acc1, &tail1, &acc2, &tail2);
    *sd = bn_lanes_total(&acc1, tail1);
    *sq = bn_lanes_total(&acc2, tail2);
}

/* The first pass's mean rounded to float: the shift of the second pass. */
static inline float bn_f32_shift(double sum, double cnt) {
    return (float)(sum / cnt);
}

/* Mean and biased variance from the shifted sums over cnt elements. */
static inline void bn_f32_stats(float mf, double sd, double sq, double cnt, double *m, double *v) {
    *m = (double)mf + sd / cnt;
    double var = (sq - sd * (sd / cnt)) / cnt;
    *v = var < 0 ? 0 : var; /* rounding may leave -tiny for a constant channel */
}

/* invstd[c] (j->c3) and y = (x - mf) * a + c over channel c, with a = weight * invstd and
 * c = bias - (m - mf) * a (j->c1 / j->c2: weight / bias). */
IGI_HOT static void bn_f32_channel_apply(const bn_job *j, int64_t c, double m, double v) {
    int64_t N = j->N, C = j->C, S = j->S;
    const float *xp = (const float *)igi_data(j->x);
    float *yp = (float *)igi_data(j->y);
    double is = 1.0 / sqrt(v + j->eps), a = j->c1[c] * is;
    float mf = (float)m, af = (float)a, cf = (float)(j->c2[c] - (m - (double)mf) * a);
    ((double *)j->c3)[c] = is;
    for (int64_t n = 0; n < N; n++) {
        const float *xr = xp + (n * C + c) * S;
        float *yr = yp + (n * C + c) * S;
        for (int64_t k = 0; k < S; k++) yr[k] = (xr[k] - mf) * af + cf;
    }
}

/* j->s1[c] = sum(g), j->s2[c] = sum(g * xhat) over channel c (j->a = mean, j->b = invstd),
 * from float-lane row sums of g and g * (x - mf), mf = mean rounded to float:
 * sum(g * (x - mean)) = sum(g * (x - mf)) - (mean - mf) * sum(g). */
IGI_HOT static void bn_f32_channel_bsums(const bn_job *j, int64_t c) {
    int64_t N = j->N, C = j->C, S = j->S;
    const float *xp = (const float *)igi_data(j->x), *gp = (const float *)igi_data(j->g);
    double m = j->a[c];
    float mf = (float)m;
    bn_lanes acc1 = {{0}, {0}}, acc2 = {{0}, {0}};
    double tail1 = 0, tail2 = 0;
    for (int64_t n = 0; n < N; n++) {
        int64_t o = (n * C + c) * S;
        bn_f32_row_bsums(gp + o, xp + o, S, mf, &acc1, &tail1, &acc2, &tail2);
    }
    double sg = bn_lanes_total(&acc1, tail1);
    j->s1[c] = sg;
    j->s2[c] = (bn_lanes_total(&acc2, tail2) - (m - (double)mf) * sg) * j->b[c];
}

/* dx over channel c (into j->y) from the sums j->c2[c] = sum(g), j->c3[c] = sum(g * xhat)
 * (this process's or the group's) and j->c1 = weight: dx = ((g - G) - (x - mf) * M) * K
 * in float with K = weight * invstd, M = sum(g * xhat) / n * invstd and G = sum(g) / n +
 * (mf - mean) * M (bn_dx_range's dx regrouped around x - mf); dx = g * K in eval mode. */
IGI_HOT static void bn_f32_channel_dx(const bn_job *j, int64_t c) {
    int64_t N = j->N, C = j->C, S = j->S;
    const float *xp = (const float *)igi_data(j->x), *gp = (const float *)igi_data(j->g);
    float *dp = (float *)igi_data(j->y);
    double m = j->a[c], is = j->b[c];
    float mf = (float)m, kf = (float)(j->c1[c] * is);
    if (j->training) {
        double mgx = j->c3[c] / j->cnt * is;
        float Mf = (float)mgx, Gf = (float)(j->c2[c] / j->cnt + ((double)mf - m) * mgx);
        for (int64_t n = 0; n < N; n++) {
            int64_t o = (n * C + c) * S;
            const float *gr = gp + o, *xr = xp + o;
            float *dr = dp + o;
            for (int64_t k = 0; k < S; k++) dr[k] = ((gr[k] - Gf) - (xr[k] - mf) * Mf) * kf;
        }
    } else {
        for (int64_t n = 0; n < N; n++) {
            int64_t o = (n * C + c) * S;
            for (int64_t k = 0; k < S; k++) dp[o + k] = gp[o + k] * kf;
        }
    }
}

/* bn_forward_range for f32 (same job fields, same outputs): with j->training the mean and
 * variance from the two float-lane passes, else j->a / j->b; then the normalisation. */
IGI_HOT static void bn_forward_f32_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    const float *xp = (const float *)igi_data(j->x);
    for (int64_t c = c0; c < c1; c++) {
        double m, v;
        if (j->training) {
            float mf = bn_f32_shift(bn_f32_channel_sum(xp, j->N, j->C, j->S, c), j->cnt);
            double sd, sq;
            bn_f32_channel_dev(xp, j->N, j->C, j->S, c, mf, &sd, &sq);
            bn_f32_stats(mf, sd, sq, j->cnt, &m, &v);
            j->s1[c] = m;
            j->s2[c] = v;
        } else {
            m = j->a[c];
            v = j->b[c];
        }
        bn_f32_channel_apply(j, c, m, v);
    }
}

/* Synchronised statistics, f32: s1[c] = sum(x) over channels [c0, c1). */
IGI_HOT static void bn_sums_f32_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    const float *xp = (const float *)igi_data(j->x);
    for (int64_t c = c0; c < c1; c++) j->s1[c] = bn_f32_channel_sum(xp, j->N, j->C, j->S, c);
}

/* Synchronised statistics, f32: s1[c] = sum(d), s2[c] = sum(d * d), d = x - (float)a[c]
 * (a: the group's first-pass mean). */
IGI_HOT static void bn_dev_f32_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    const float *xp = (const float *)igi_data(j->x);
    for (int64_t c = c0; c < c1; c++)
        bn_f32_channel_dev(xp, j->N, j->C, j->S, c, (float)j->a[c], &j->s1[c], &j->s2[c]);
}

/* The group's statistics from this process's sums (synchronised batch norm, on the CPU and
 * on a device alike, so both reduce the same values in the same order; see nn_device.h).
 * Every member reaches both reductions or none: the count is the group's. */
ig_status igi_bn_stats_sync(const igi_bn_sync *sync, bool f32, int64_t C, double local_cnt, igi_bn_local_sums fn,
                            void *ctx, double *mean, double *var, double *tmp, double *gcnt) {
    ig_status st = fn(ctx, 0, NULL, tmp);
    if (st != IG_OK) return st;
    tmp[C] = local_cnt;
    if ((st = sync->sum(sync->ctx, tmp, C + 1)) != IG_OK) return st;
    double cnt = tmp[C];
    *gcnt = cnt;
    if (cnt <= 1) /* the same on every member: all fail together */
        return igi_error(IG_ERR_ARG, "ig_batch_norm: expected more than 1 value per channel over the process group when training, got %.0f", cnt);
    /* f64: the group's mean, then the squared deviations from it. f32: the first pass's
     * mean rounded to float as the shift, then the shifted sums (the plain f32 path's
     * cancellation-free variance, bn_f32_stats). */
    for (int64_t c = 0; c < C; c++) mean[c] = f32 ? (double)bn_f32_shift(tmp[c], cnt) : tmp[c] / cnt;
    if ((st = fn(ctx, 1, mean, tmp)) != IG_OK) return st;
    if (f32) {
        if ((st = sync->sum(sync->ctx, tmp, 2 * C)) != IG_OK) return st;
        for (int64_t c = 0; c < C; c++) bn_f32_stats((float)mean[c], tmp[c], tmp[C + c], cnt, &mean[c], &var[c]);
    } else {
        if ((st = sync->sum(sync->ctx, tmp + C, C)) != IG_OK) return st;
        for (int64_t c = 0; c < C; c++) var[c] = tmp[C + c] / cnt;
    }
    return IG_OK;
}

/* igi_bn_local_sums on the CPU: ctx is a bn_job over this process's x (s1 / s2 unset). */
static ig_status bn_local_sums_cpu(void *ctx, int pass, const double *shift, double *out) {
    bn_job j = *(const bn_job *)ctx;
    bool f32 = j.x->dtype == IG_F32;
    if (pass == 0) {
        if (f32) {
            j.s1 = out;
            igi_parallel_for(j.C, bn_grain(j.N * j.S), bn_sums_f32_range, &j);
        } else {
            bn_sums(j.x, j.N, j.C, j.S, out);
        }
    } else if (f32) {
        j.a = shift;
        j.s1 = out;
        j.s2 = out + j.C;
        igi_parallel_for(j.C, bn_grain(j.N * j.S), bn_dev_f32_range, &j);
    } else {
        bn_sqdev(j.x, j.N, j.C, j.S, shift, out + j.C);
    }
    return IG_OK;
}

/* bn_backward_range for f32: each channel's sums, then (when j->y is set) its dx. */
IGI_HOT static void bn_backward_f32_range(int64_t c0, int64_t c1, void *ctx) {
    const bn_job *j = ctx;
    for (int64_t c = c0; c < c1; c++) {
        bn_f32_channel_bsums(j, c);
        if (j->y) bn_f32_channel_dx(j, c);
    }
}

/* Synchronised backward, f32: the sums of channels [c0, c1). */
IGI_HOT static void bn_bsums_f32_range(int64_t c0, int64_t c1, void *ctx) {
    for (int64_t c = c0; c < c1; c++) bn_f32_channel_bsums(ctx, c);
}

/* Synchronised backward, f32: dx of channels [c0, c1) from the group's sums. */
IGI_HOT static void bn_dx_f32_range(int64_t c0, int64_t c1, void *ctx) {
    for (int64_t c = c0; c < c1; c++) bn_f32_channel_dx(ctx, c);
}

/* r = (1 - m) * r + m * v for a 1-D running-stat tensor of any stride (no autograd). */
static void update_running(ig_tensor *r, const double *v, int64_t C, double m) {
    size_t es = ig_dtype_size(r->dtype);
    char *p = igi_data(r);
    for (int64_t c = 0; c < C; c++) {
        char *e = p + (size_t)(c * r->strides[0]) * es;
        igi_store(r->dtype, e, (1.0 - m) * igi_load(r->dtype, e) + m * v[c]);
    }
}

/* inputs: x, weight, bias (the last two may be NULL); saved: mean [C], invstd [C] (f64);
 * iattr[0]: training (batch statistics); iattr[1]: the igi_bn_sync pointer or 0, with
 * dattr[0] the group's element count per channel. */
static ig_status batch_norm_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    const char *op = igi_op_name(node->op);
    ig_tensor *x = node->inputs[0], *w = node->inputs[1], *b = node->inputs[2];
    const double *mean = (const double *)igi_data(node->saved[0]);
    const double *invstd = (const double *)igi_data(node->saved[1]);
    bool training = node->iattr[0] != 0;
    const igi_bn_sync *sync = (const igi_bn_sync *)(intptr_t)node->iattr[1];
    int64_t N = x->shape[0], C = x->shape[1], S = igi_numel(x->ndim - 2, x->shape + 2);
    double cnt = sync ? node->dattr[0] : (double)N * (double)S;
    ig_tensor *xc = contiguous_nograd(x), *gc = contiguous_nograd(g);
    bn_scratch scratch;
    double *buf = bn_scratch_get(&scratch, op, C, 5);
    ig_tensor *gx = igi_needs_grad(x) ? igi_tensor_new(op, x->ndim, x->shape, x->dtype, x->device) : NULL;
    ig_status st = IG_OK;
    if (!xc || !gc || !buf || (igi_needs_grad(x) && !gx)) {
        st = ig_last_status();
        goto done;
    }
    double *wv = buf, *sg = buf + C, *sgx = buf + 2 * C;
    /* dx's sums: this process's (sg, sgx) or, synchronised, the group's. */
    double *dsg = sg, *dsgx = sgx;
    load_param(w, wv, C, 1.0);
    /* Per channel: sum(g) and sum(g * xhat). */
    bn_job j = {.x = xc, .g = gc, .y = gx, .N = N, .C = C, .S = S, .a = mean, .b = invstd,
                .s1 = sg, .s2 = sgx, .cnt = cnt, .training = training};
    if (!(gx && sync && training)) {
        /* No reduction between the sums and dx: one pass per channel. */
        j.c1 = wv;
        j.c2 = sg;
        j.c3 = sgx;
        igi_parallel_for(C, bn_grain(N * S), x->dtype == IG_F32 ? bn_backward_f32_range : bn_backward_range, &j);
        goto grads;
    }
    igi_parallel_for(C, bn_grain(N * S), x->dtype == IG_F32 ? bn_bsums_f32_range : bn_bsums_range, &j);
    {
        /* Every member has gx here (same graph), so all reach this reduction. */
        dsg = buf + 3 * C;
        dsgx = buf + 4 * C;
        memcpy(dsg, sg, sizeof(double) * (size_t)(2 * C)); /* sg and sgx are adjacent */
        if ((st = sync->sum(sync->ctx, dsg, 2 * C)) != IG_OK) goto done;
    }
    if (gx) {
        j.c1 = wv;
        j.c2 = dsg;
        j.c3 = dsgx;
        if (x->dtype == IG_F32)
            igi_parallel_for(C, bn_grain(N * S), bn_dx_f32_range, &j);
        else
            igi_parallel_for(N * C, bn_grain(S), bn_dx_range, &j);
    }
grads:
    gin[0] = gx;
    if (igi_needs_grad(w) && !(gin[1] = tensor_from_doubles(op, 1, &C, x->dtype, sgx))) st = ig_last_status();
    if (st == IG_OK && igi_needs_grad(b) && !(gin[2] = tensor_from_doubles(op, 1, &C, x->dtype, sg)))
        st = ig_last_status();
done:
    free(scratch.heap);
    ig_tensor_free(xc);
    ig_tensor_free(gc);
    return st;
}

ig_tensor *ig_batch_norm(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var, ig_tensor *weight,
                         ig_tensor *bias, bool training, double momentum, double eps) {
    return igi_batch_norm_sync(x, running_mean, running_var, weight, bias, training, momentum, eps, NULL);
}

ig_tensor *igi_batch_norm_sync(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var,
                               ig_tensor *weight, ig_tensor *bias, bool training, double momentum,
                               double eps, const igi_bn_sync *sync) {
    const char *op = "ig_batch_norm";
    if (!training) sync = NULL;
    if (!x) {
        igi_error_null(op, "x");
        return NULL;
    }
    char b1[160];
    if (x->dtype == IG_BF16) {
        /* bf16 activations: natively where the device has the kernel and the parameters
         * are f32; else through f32 (core/ops/bf16.c), the running statistics (which are
         * updated in place, so never copies) f32 either way. */
        if ((running_mean && running_mean->dtype == IG_BF16) || (running_var && running_var->dtype == IG_BF16)) {
            igi_error(IG_ERR_DTYPE, "%s: running_mean and running_var must be float32 for a bfloat16 x", op);
            return NULL;
        }
        bool bf16_params = (weight && weight->dtype == IG_BF16) || (bias && bias->dtype == IG_BF16);
        if (bf16_params || sync || igi_bf16_fallback(x, IGI_BF16_BN)) {
            ig_tensor *wx = igi_bf16_widen(x), *ww = wx ? igi_bf16_widen(weight) : NULL;
            ig_tensor *wb = ww || !weight ? igi_bf16_widen(bias) : NULL;
            if (!wx || (weight && !ww) || (bias && !wb)) return NULL;
            ig_amp prev = igi_bf16_enter();
            ig_tensor *r = igi_batch_norm_sync(wx, running_mean, running_var, ww, wb, training, momentum, eps, sync);
            igi_bf16_leave(prev);
            return igi_bf16_narrow(r);
        }
    }
    if (!igi_check_float_bf16(op, x)) return NULL;
    if (x->ndim < 2) {
        igi_error(IG_ERR_SHAPE, "%s: x must have at least 2 dims [N,C,...], got %s", op,
                  ig_shape_str(x, b1, sizeof b1));
        return NULL;
    }
    int64_t N = x->shape[0], C = x->shape[1], S = igi_numel(x->ndim - 2, x->shape + 2);
    if (!check_param(op, "running_mean", running_mean, x, 1, &C) ||
        !check_param(op, "running_var", running_var, x, 1, &C) || !check_param(op, "weight", weight, x, 1, &C) ||
        !check_param(op, "bias", bias, x, 1, &C))
        return NULL;
    if (!training && (!running_mean || !running_var)) {
        igi_error(IG_ERR_ARG, "%s: eval mode (training = false) needs running_mean and running_var", op);
        return NULL;
    }
    int64_t cnt = N * S;
    if (training && cnt == 1 && !sync) {
        igi_error(IG_ERR_ARG, "%s: expected more than 1 value per channel when training, got x %s", op,
                  ig_shape_str(x, b1, sizeof b1));
        return NULL;
    }
    if (x->device != IG_CPU)
        return igi_batch_norm_device(x, running_mean, running_var, weight, bias, training, momentum, eps, sync);
    bn_scratch scratch;
    double *buf = bn_scratch_get(&scratch, op, C, 5);
    if (!buf) return NULL;
    double *mean = buf, *var = buf + C, *scale = buf + 2 * C, *shift = buf + 3 * C, *invstd = buf + 4 * C;
    double gcnt = (double)cnt;
    ig_tensor *xc = contiguous_nograd(x);
    ig_tensor *out = xc ? igi_tensor_new(op, x->ndim, x->shape, x->dtype, x->device) : NULL;
    if (!out) goto fail;
    if (sync) {
        /* scale and shift double as the reduction buffer (C + 1, then 2C doubles: they
         * have 2C, and buf at least 5 when C is 0). */
        bool f32 = x->dtype == IG_F32;
        bn_job lj = {.x = xc, .N = N, .C = C, .S = S};
        if (igi_bn_stats_sync(sync, f32, C, (double)cnt, bn_local_sums_cpu, &lj, mean, var, scale, &gcnt) != IG_OK)
            goto fail;
        double unbias = gcnt / (gcnt - 1);
        for (int64_t c = 0; c < C; c++) scale[c] = var[c] * unbias;
        if (running_mean) update_running(running_mean, mean, C, momentum);
        if (running_var) update_running(running_var, scale, C, momentum);
        load_param(weight, scale, C, 1.0);
        load_param(bias, shift, C, 0.0);
        if (f32) {
            /* The plain path's normalisation with the group's statistics. */
            bn_job j = {.x = xc, .y = out, .N = N, .C = C, .S = S, .a = mean, .b = var, .c1 = scale,
                        .c2 = shift, .c3 = invstd, .eps = eps, .training = false};
            igi_parallel_for(C, bn_grain(N * S), bn_forward_f32_range, &j);
        } else {
            for (int64_t c = 0; c < C; c++) {
                invstd[c] = 1.0 / sqrt(var[c] + eps);
                scale[c] *= invstd[c];
                shift[c] -= mean[c] * scale[c];
            }
            bn_apply(xc, out, N, C, S, scale, shift);
        }
    } else {
        /* Statistics (training, non-empty batch) or the running ones, then the normalisation,
         * one channel at a time on the pool (bn_forward_range). An empty training batch
         * leaves the running stats alone and gives an empty output (mean 0, var 0). */
        if (!training) {
            load_param(running_mean, mean, C, 0.0);
            load_param(running_var, var, C, 1.0);
        }
        load_param(weight, scale, C, 1.0);
        load_param(bias, shift, C, 0.0);
        bn_job j = {.x = xc, .y = out, .N = N, .C = C, .S = S, .a = mean, .b = var, .s1 = mean, .s2 = var,
                    .c1 = scale, .c2 = shift, .c3 = invstd, .cnt = (double)cnt, .eps = eps,
                    .training = training && cnt > 0};
        igi_parallel_for(C, bn_grain(N * S), x->dtype == IG_F32 ? bn_forward_f32_range : bn_forward_range, &j);
        if (training && cnt > 0) {
            /* The running variance takes the unbiased estimate, as torch. */
            double unbias = (double)cnt / (double)(cnt - 1);
            for (int64_t c = 0; c < C; c++) scale[c] = var[c] * unbias;
            if (running_mean) update_running(running_mean, mean, C, momentum);
            if (running_var) update_running(running_var, scale, C, momentum);
        }
    }
    ig_tensor *in[3] = {x, weight, bias};
    out = igi_finish(IGI_OP_BATCH_NORM, batch_norm_backward, out, in, 3);
    if (out && out->node) {
        out->node->iattr[0] = training;
        out->node->iattr[1] = (int64_t)(intptr_t)sync;
        out->node->dattr[0] = gcnt;
        if (!save_doubles(out->node, 0, mean, C) || !save_doubles(out->node, 1, invstd, C)) {
            ig_tensor_free(out);
            out = NULL;
        }
    }
    free(scratch.heap);
    ig_tensor_free(xc);
    return out;
fail:
    free(scratch.heap);
    ig_tensor_free(out);
    ig_tensor_free(xc);
    return NULL;
}

/* ---- layer norm -------------------------------------------------------------------------- */

/* inputs: x, weight, bias (the last two may be NULL); saved: mean [R], invstd [R] (f64),
 * one per group; iattr[0]: n_dims. */
static ig_status layer_norm_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    const char *op = igi_op_name(node->op);
    ig_tensor *x = node->inputs[0], *w = node->inputs[1], *b = node->inputs[2];
    int nd = (int)node->iattr[0];
    const double *mean = (const double *)igi_data(node->saved[0]);
    const double *invstd = (const double *)igi_data(node->saved[1]);
    int64_t D = igi_numel(nd, x->shape + x->ndim - nd), R = igi_numel(x->ndim - nd, x->shape);
    ig_tensor *xc = contiguous_nograd(x), *gc = contiguous_nograd(g);
    double *buf = alloc_doubles(op, D, 3);
    ig_tensor *gx = igi_needs_grad(x) ? igi_tensor_new(op, x->ndim, x->shape, x->dtype, x->device) : NULL;
    ig_status st = IG_OK;
    if (!xc || !gc || !buf || (igi_needs_grad(x) && !gx)) {
        st = ig_last_status();
        goto done;
    }
    double *wv = buf, *gw = buf + D, *gb = buf + 2 * D;
    load_param(w, wv, D, 1.0);
    DISPATCH_FLOAT(x->dtype, const T *xp = (const T *)igi_data(xc); const T *gp = (const T *)igi_data(gc);
        T *dp = gx ? (T *)igi_data(gx) : NULL;
        for (int64_t r = 0; r < R; r++) {
            const T *xr = xp + r * D, *gr = gp + r * D;
            double m = mean[r], is = invstd[r], s1 = 0, s2 = 0;
            for (int64_t k = 0; k < D; k++) {
                double xh = ((double)xr[k] - m) * is, dy = (double)gr[k] * wv[k];
                s1 += dy;
                s2 += dy * xh;
                gw[k] += (double)gr[k] * xh;
                gb[k] += gr[k];
            }
            if (dp) {
                /* dx = invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
                s1 /= (double)D;
                s2 /= (double)D;
                for (int64_t k = 0; k < D; k++) {
                    double xh = ((double)xr[k] - m) * is;
                    dp[r * D + k] = (T)(is * ((double)gr[k] * wv[k] - s1 - xh * s2));
                }
            }
        });
    gin[0] = gx;
    if (igi_needs_grad(w) && !(gin[1] = tensor_from_doubles(op, w->ndim, w->shape, x->dtype, gw)))
        st = ig_last_status();
    if (st == IG_OK && igi_needs_grad(b) && !(gin[2] = tensor_from_doubles(op, b->ndim, b->shape, x->dtype, gb)))
        st = ig_last_status();
done:
    free(buf);
    ig_tensor_free(xc);
    ig_tensor_free(gc);
    return st;
}

ig_tensor *ig_layer_norm(ig_tensor *x, int n_dims, const int64_t *normalized_shape, ig_tensor *weight,
                         ig_tensor *bias, double eps) {
    const char *op = "ig_layer_norm";
    if (!x) {
        igi_error_null(op, "x");
        return NULL;
    }
    if (!normalized_shape) {
        igi_error_null(op, "normalized_shape");
        return NULL;
    }
    char b1[160], b2[160];
    if (x->dtype == IG_BF16) { /* computed on an f32 copy, with an f32 result (torch's autocast) */
        ig_tensor *wx = igi_bf16_widen(x);
        return wx ? ig_layer_norm(wx, n_dims, normalized_shape, weight, bias, eps) : NULL;
    }
    if (!igi_check_float(op, x)) return NULL;
    if (n_dims < 1 || n_dims > x->ndim) {
        igi_error(IG_ERR_ARG, "%s: n_dims must be in [1, %d] for x %s, got %d", op, x->ndim,
                  ig_shape_str(x, b1, sizeof b1), n_dims);
        return NULL;
    }
    const int64_t *tail = x->shape + x->ndim - n_dims;
    if (memcmp(tail, normalized_shape, sizeof(int64_t) * (size_t)n_dims) != 0) {
        igi_error(IG_ERR_SHAPE, "%s: the last %d dims of x %s are not normalized_shape %s", op, n_dims,
                  ig_shape_str(x, b1, sizeof b1), igi_shape_str(n_dims, normalized_shape, b2, sizeof b2));
        return NULL;
    }
    if (!check_param(op, "weight", weight, x, n_dims, normalized_shape) ||
        !check_param(op, "bias", bias, x, n_dims, normalized_shape))
        return NULL;
    if (x->device != IG_CPU) return igi_layer_norm_device(x, n_dims, weight, bias, eps); /* nn_device.c */
    int64_t D = igi_numel(n_dims, tail), R = igi_numel(x->ndim - n_dims, x->shape);
    double *buf = alloc_doubles(op, D, 2);
    double *stats = buf ? alloc_doubles(op, R, 2) : NULL;
    ig_tensor *xc = stats ? contiguous_nograd(x) : NULL;
    ig_tensor *out = xc ? igi_tensor_new(op, x->ndim, x->shape, x->dtype, x->device) : NULL;
    if (!out) {
        free(buf);
        free(stats);
        ig_tensor_free(xc);
        return NULL;
    }
    double *wv = buf, *bv = buf + D, *mean = stats, *invstd = stats + R;
    load_param(weight, wv, D, 1.0);
    load_param(bias, bv, D, 0.0);
    DISPATCH_FLOAT(x->dtype, const T *xp = (const T *)igi_data(xc); T *yp = (T *)igi_data(out);
        for (int64_t r = 0; r < R; r++) {
            const T *xr = xp + r * D;
            double s = 0, v = 0;
            for (int64_t k = 0; k < D; k++) s += xr[k];
            double m = s / (double)D;
            for (int64_t k = 0; k < D; k++) v += ((double)xr[k] - m) * ((double)xr[k] - m);
            double is = 1.0 / sqrt(v / (double)D + eps);
            mean[r] = m;
            invstd[r] = is;
            for (int64_t k = 0; k < D; k++) yp[r * D + k] = (T)(((double)xr[k] - m) * is * wv[k] + bv[k]);
        });
    ig_tensor *in[3] = {x, weight, bias};
    out = igi_finish(IGI_OP_LAYER_NORM, layer_norm_backward, out, in, 3);
    if (out && out->node) {
        out->node->iattr[0] = n_dims;
        if (!save_doubles(out->node, 0, mean, R) || !save_doubles(out->node, 1, invstd, R)) {
            ig_tensor_free(out);
            out = NULL;
        }
    }
    free(buf);
    free(stats);
    ig_tensor_free(xc);
    return out;
}
