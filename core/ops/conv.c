/*
 * core/ops/conv.c — ig_conv2d (torch.nn.functional.conv2d semantics) on im2col + GEMM.
 *
 * Shapes: x [N,C,H,W], w [O, C/groups, kh, kw], b [O] or NULL -> y [N,O,Ho,Wo] with
 * Ho = (H + 2*pad_h - dil_h*(kh-1) - 1) / stride_h + 1 (same for W). With groups g, input
 * channels [gi*Cg, (gi+1)*Cg) feed output channels [gi*Og, (gi+1)*Og) (Cg = C/g, Og = O/g).
 *
 * Forward, per chunk of nc images (the whole batch unless the scratch would exceed
 * CHUNK_BUDGET) and group: im2col gathers the receptive fields of the chunk into a scratch
 * matrix col [K, nc*P] (K = Cg*kh*kw rows, P = Ho*Wo columns per image; padded positions are
 * zeros), then ONE GEMM res [Og, nc*P] = W_g [Og, K] @ col, and res + bias is copied row by
 * row into y (NCHW). One GEMM per chunk instead of one per image: each BLAS call
 * synchronises its threads, and per-image calls on small images spent most of their time
 * there. A one-image chunk GEMMs straight into y (bias first, beta = 1), and then a 1x1
 * kernel with stride 1 and no padding needs no im2col: a contiguous image already is col.
 *
 * Backward has its own kernels, also one GEMM per chunk and group: dX_g = col2im(W_g^T @
 * dY_g) (col2im accumulates, since receptive fields overlap), dW_g += dY_g @ col^T summed
 * over the chunks, db = dY summed over N, Ho, Wo. Backward is not itself differentiable
 * (no double backward).
 *
 * im2col, col2im and the row copies run on the thread pool (igi_parallel_for), split by
 * images or rows, never while a GEMM runs.
 *
 * x may have any strides (im2col reads through them); w and dY are copied to contiguous
 * heap temporaries when they are not contiguous. The col scratch comes from the caching
 * allocator (igi_alloc), so steady-state training allocates nothing from the OS.
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "../tensor_impl.h"
#include "nn_device.h"

static const char *const OP = "ig_conv2d";

/* Everything the kernels need about one convolution. */
typedef struct conv_geom {
    int64_t N, C, H, W;      /* input */
    int64_t O, kh, kw;       /* weight [O, Cg, kh, kw] */
    int64_t Ho, Wo;          /* output spatial size */
    int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int64_t Cg, Og, K, P;    /* per-group channels, GEMM sizes K = Cg*kh*kw, P = Ho*Wo */
    bool direct;             /* 1x1, stride 1, no padding: a contiguous image is col */
} conv_geom;

/* ---- im2col / col2im --------------------------------------------------------------------- */

/* The output columns ox in [*lo, *hi) whose input column ox*s + off lies in [0, W). */
static void valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = W - off <= 0 ? 0 : (W - off + s - 1) / s;
    if (l > Wo) l = Wo;
    if (h > Wo) h = Wo;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* Items per thread-pool range: enough elements (~32K) that waking a worker pays off. */
static int64_t grain_for(int64_t elems_per_item) {
    return elems_per_item >= 32768 ? 1 : 32768 / (elems_per_item > 0 ? elems_per_item : 1);
}

/* im2col: x points at channel 0 of the group in one image, with element strides (sc, sh,
 * sw); col row r = (c*kh + ki)*kw + kj (row stride ld >= P, the image's P columns at the
 * start of each row) holds x[c, oy*stride+ki*dil-pad, ...] over all output positions.
 * col2im is its adjoint: it adds col back into one contiguous image of dx. */
#define DEFINE_COL_KERNELS(SUF, T)                                                         \
    static void im2col_##SUF(const conv_geom *g, const T *x, int64_t sc, int64_t sh,       \
                             int64_t sw, T *col, int64_t ld) {                             \
        for (int64_t c = 0; c < g->Cg; c++)                                                \
            for (int64_t ki = 0; ki < g->kh; ki++)                                         \
                for (int64_t kj = 0; kj < g->kw; kj++) {                                   \
                    T *row = col + ((c * g->kh + ki) * g->kw + kj) * ld;                   \
                    int64_t xoff = kj * g->dil_w - g->pad_w, lo, hi;                       \
                    valid_range(xoff, g->stride_w, g->W, g->Wo, &lo, &hi);                 \
                    for (int64_t oy = 0; oy < g->Ho; oy++) {                               \
                        T *r = row + oy * g->Wo;                                           \
                        int64_t iy = oy * g->stride_h - g->pad_h + ki * g->dil_h;          \
                        if (iy < 0 || iy >= g->H) {                                        \
                            for (int64_t ox = 0; ox < g->Wo; ox++) r[ox] = 0;              \
                            continue;                                                      \
                        }                                                                  \
                        const T *xr = x + c * sc + iy * sh;                                \
                        for (int64_t ox = 0; ox < lo; ox++) r[ox] = 0;                     \
                        if (g->stride_w == 1 && sw == 1) {                                 \
                            if (hi > lo) memcpy(r + lo, xr + lo + xoff,                    \
                                                (size_t)(hi - lo) * sizeof(T));            \
                        } else if (g->stride_w == 2 && sw == 1) {                          \
                            const T *xs = xr + xoff;                                       \
                            for (int64_t ox = lo; ox < hi; ox++) r[ox] = xs[2 * ox];       \
                        } else {                                                           \
                            for (int64_t ox = lo; ox < hi; ox++)                           \
                                r[ox] = xr[(ox * g->stride_w + xoff) * sw];                \
                        }                                                                  \
                        for (int64_t ox = hi; ox < g->Wo; ox++) r[ox] = 0;                 \
                    }                                                                      \
                }                                                                          \
    }                                                                                      \
    static void col2im_##SUF(const conv_geom *g, const T *col, int64_t ld, T *dx) {        \
        int64_t plane = g->H * g->W;                                                       \
        for (int64_t c = 0; c < g->Cg; c++)                                                \
            for (int64_t ki = 0; ki < g->kh; ki++)                                         \
                for (int64_t kj = 0; kj < g->kw; kj++) {                                   \
                    const T *row = col + ((c * g->kh + ki) * g->kw + kj) * ld;             \
                    int64_t xoff = kj * g->dil_w - g->pad_w, lo, hi;                       \
                    valid_range(xoff, g->stride_w, g->W, g->Wo, &lo, &hi);                 \
                    for (int64_t oy = 0; oy < g->Ho; oy++) {                               \
                        int64_t iy = oy * g->stride_h - g->pad_h + ki * g->dil_h;          \
                        if (iy < 0 || iy >= g->H) continue;                                \
                        const T *r = row + oy * g->Wo;                                     \
                        T *dr = dx + c * plane + iy * g->W;                                \
                        if (g->stride_w == 1) {                                            \
                            /* unit stride: a plain row add the compiler vectorises */     \
                            T *d = dr + xoff;                                              \
                            for (int64_t ox = lo; ox < hi; ox++) d[ox] += r[ox];           \
                        } else if (g->stride_w == 2) {                                     \
                            T *d = dr + xoff;                                              \
                            for (int64_t ox = lo; ox < hi; ox++) d[2 * ox] += r[ox];       \
                        } else {                                                           \
                            for (int64_t ox = lo; ox < hi; ox++)                           \
                                dr[ox * g->stride_w + xoff] += r[ox];                      \
                        }                                                                  \
                    }                                                                      \
                }                                                                          \
    }

DEFINE_COL_KERNELS(f32, float)
DEFINE_COL_KERNELS(f64, double)

/* ---- batched im2col / col2im and the row shuffles around the GEMMs --------------------------
 *
 * A chunk is nc consecutive images n0 .. n0+nc-1 of one group; its GEMM operands put image
 * i in columns [i*P, (i+1)*P) of every row, so the row stride (ld) is nc*P. Each helper
 * below works on a range [begin, end) of independent items (images or rows), so the ranges
 * can be split across threads without changing any result. */

typedef struct chunk_job {
    const conv_geom *g;
    ig_dtype dt;
    const ig_tensor *x;   /* im2col source (any strides) */
    const ig_tensor *b;   /* bias or NULL (out_rows) */
    const char *src;      /* out_rows: GEMM result [Og, ld] or NULL; dy_rows: dY [N, O, P] */
    char *dst;            /* out_rows: out [N, O, P]; dy_rows: [Og, ld]; col2im: dx [N, C, H, W] */
    void *col;            /* [K, ld] */
    int64_t n0, grp, ld;
} chunk_job;

/* col [K, ld] from images [begin, end) of the chunk. */
static void im2col_range(int64_t begin, int64_t end, void *ctx) {
    const chunk_job *j = ctx;
    const conv_geom *g = j->g;
    const ig_tensor *x = j->x;
    for (int64_t i = begin; i < end; i++) {
        int64_t off = (j->n0 + i) * x->strides[0] + j->grp * g->Cg * x->strides[1];
        if (j->dt == IG_F32)
            im2col_f32(g, (const float *)igi_data(x) + off, x->strides[1], x->strides[2],
                       x->strides[3], (float *)j->col + i * g->P, j->ld);
        else
            im2col_f64(g, (const double *)igi_data(x) + off, x->strides[1], x->strides[2],
                       x->strides[3], (double *)j->col + i * g->P, j->ld);
    }
}

/* dx images [begin, end) of the chunk += col2im(col [K, ld]). */
static void col2im_range(int64_t begin, int64_t end, void *ctx) {
    const chunk_job *j = ctx;
    const conv_geom *g = j->g;
    for (int64_t i = begin; i < end; i++) {
        int64_t off = ((j->n0 + i) * g->C + j->grp * g->Cg) * g->H * g->W;
        if (j->dt == IG_F32)
            col2im_f32(g, (const float *)j->col + i * g->P, j->ld, (float *)j->dst + off);
        else
            col2im_f64(g, (const double *)j->col + i * g->P, j->ld, (double *)j->dst + off);
    }
}

/* Output rows r = i*Og + o in [begin, end), i.e. out[n0+i, grp*Og+o, :] = bias (0 without)
 * plus, when src is set, the GEMM result src[o, i*P .. (i+1)*P). */
static void out_rows(int64_t begin, int64_t end, void *ctx) {
    const chunk_job *j = ctx;
    const conv_geom *g = j->g;
    for (int64_t r = begin; r < end; r++) {
        int64_t i = r / g->Og, o = r % g->Og, ch = j->grp * g->Og + o;
        int64_t orow = ((j->n0 + i) * g->O + ch) * g->P, srow = o * j->ld + i * g->P;
        if (j->dt == IG_F32) {
            float v = j->b ? ((const float *)igi_data(j->b))[ch * j->b->strides[0]] : 0.0f;
            float *d = (float *)j->dst + orow;
            if (j->src) {
                const float *s = (const float *)j->src + srow;
                for (int64_t q = 0; q < g->P; q++) d[q] = s[q] + v;
            } else {
                for (int64_t q = 0; q < g->P; q++) d[q] = v;
            }
        } else {
            double v = j->b ? ((const double *)igi_data(j->b))[ch * j->b->strides[0]] : 0.0;
            double *d = (double *)j->dst + orow;
            if (j->src) {
                const double *s = (const double *)j->src + srow;
                for (int64_t q = 0; q < g->P; q++) d[q] = s[q] + v;
            } else {
                for (int64_t q = 0; q < g->P; q++) d[q] = v;
            }
        }
    }
}

/* Rows r = i*Og + o in [begin, end) of the chunk's dY operand [Og, ld] from dY [N, O, P]. */
static void dy_rows(int64_t begin, int64_t end, void *ctx) {
    const chunk_job *j = ctx;
    const conv_geom *g = j->g;
    size_t es = ig_dtype_size(j->dt);
    for (int64_t r = begin; r < end; r++) {
        int64_t i = r / g->Og, o = r % g->Og;
        memcpy(j->dst + (size_t)(o * j->ld + i * g->P) * es,
               j->src + (size_t)(((j->n0 + i) * g->O + j->grp * g->Og + o) * g->P) * es,
               (size_t)g->P * es);
    }
}

/* ---- GEMM -------------------------------------------------------------------------------- */

/* C[M,N] (row-major, ldc) = op(A)[M,K] @ op(B)[K,N] + beta*C. Sizes >= 1 and < 2^31. */
static void gemm(ig_dtype dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N,
                 int64_t K, const void *A, int64_t lda, const void *B, int64_t ldb, double beta,
                 void *C, int64_t ldc) {
    igi_gemm(dt, ta == CblasTrans, tb == CblasTrans, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* t itself if contiguous, else a contiguous heap copy stored in *tmp (free it after). No
 * autograd node: the copy is internal. NULL with an error on OOM. */
static ig_tensor *contiguous_tmp(ig_tensor *t, ig_tensor **tmp) {
    *tmp = NULL;
    if (igi_is_contiguous(t)) return t;
    igi_heap_mode(1);
    ig_tensor *c = igi_tensor_new(OP, t->ndim, t->shape, t->dtype, t->device);
    igi_heap_mode(-1);
    if (!c) return NULL;
    if (ig_copy_(c, t) != IG_OK) {
        ig_tensor_free(c);
        return NULL;
    }
    return *tmp = c;
}

/* The scratch of a chunk (col plus the GEMM result or gathered dY) is capped at 8 MiB.
 * Fewer, larger GEMMs mean fewer OpenBLAS thread synchronisations (which cost most when the
 * cores are shared), but a chunk much larger than the cache makes each GEMM slower: on the
 * 2-core dev machine (1 MiB L2 per core, 32 MiB L3) one thread trains the cnn 12% slower
 * with 64 MiB chunks than with 8 MiB ones (bench/NOTES.md). The cap also keeps an
 * evaluation batch of 1000 large images from allocating gigabytes. */
#define CHUNK_BUDGET ((size_t)8 << 20)

/* Images per chunk: all N if the chunk's scratch (K + Og rows of nc*P elements: col plus the
 * GEMM result or the gathered dY) fits CHUNK_BUDGET, else equal chunks that fit (at least 1
 * image). nc*P then stays far below 2^31, as BLAS needs. */
static int64_t chunk_images(const conv_geom *g, size_t es) {
    size_t per;
    if (__builtin_mul_overflow((size_t)(g->K + g->Og), (size_t)g->P, &per) ||
        __builtin_mul_overflow(per, es, &per))
        return 1;
    int64_t nb = per ? (int64_t)(CHUNK_BUDGET / per) : g->N;
    if (nb < 1) nb = 1;
    if (nb >= g->N) return g->N > 1 ? g->N : 1;
    int64_t nchunks = (g->N + nb - 1) / nb;
    return (g->N + nchunks - 1) / nchunks;
}

/* Scratch of rows x cols elements from the caching allocator (NULL + error on OOM); free
 * with scratch_free and the same sizes. */
static void *scratch_alloc(int64_t rows, int64_t cols, ig_dtype dt) {
    size_t bytes = (size_t)(rows * cols) * ig_dtype_size(dt);
    void *p = igi_alloc(IG_CPU, bytes);
    if (!p) igi_error(IG_ERR_NOMEM, "%s: out of memory for a %zu-byte scratch buffer", OP, bytes);
    return p;
}

static void scratch_free(void *p, int64_t rows, int64_t cols, ig_dtype dt) {
    if (p) igi_free(IG_CPU, p, (size_t)(rows * cols) * ig_dtype_size(dt));
}

/* The geometry from the shapes and the node's (or params') attributes. */
static void geom_fill(conv_geom *g, const ig_tensor *x, const ig_tensor *w, const int64_t *attr) {
    g->N = x->shape[0];
    g->C = x->shape[1];
    g->H = x->shape[2];
    g->W = x->shape[3];
    g->O = w->shape[0];
    g->kh = w->shape[2];
    g->kw = w->shape[3];
    g->stride_h = attr[0];
    g->stride_w = attr[1];
    g->pad_h = attr[2];
    g->pad_w = attr[3];
    g->dil_h = attr[4];
    g->dil_w = attr[5];
    g->groups = attr[6];
    g->Ho = attr[7];
    g->Wo = attr[8];
    g->Cg = g->C / g->groups;
    g->Og = g->O / g->groups;
    g->K = g->Cg * g->kh * g->kw;
    g->P = g->Ho * g->Wo;
    g->direct = g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 &&
                g->pad_h == 0 && g->pad_w == 0;
}

/* ---- backward ---------------------------------------------------------------------------- */

/* Per chunk of nc images and per group (ld = nc*P):
 *   dY_g [Og, ld]  gathered from dY [N, O, P] (used in place when nc == 1)
 *   dW_g [Og, K] += dY_g @ col^T [ld, K]        (col = im2col of the chunk of x)
 *   dcol [K, ld]  = W_g^T [K, Og] @ dY_g, then col2im into the chunk's images of dX
 * dW is done before dcol so the col buffer can hold both, one after the other. */
static ig_status conv2d_backward(igi_node *node, ig_tensor *gout, ig_tensor **gin) {
    ig_tensor *x = node->inputs[0], *w = node->inputs[1];
    ig_tensor *b = node->n_inputs > 2 ? node->inputs[2] : NULL;
    conv_geom g;
    geom_fill(&g, x, w, node->iattr);
    ig_dtype dt = x->dtype;
    size_t es = ig_dtype_size(dt);
    bool need_x = igi_needs_grad(x), need_w = igi_needs_grad(w), need_b = igi_needs_grad(b);
    ig_status st = IG_OK;
    int64_t nb = chunk_images(&g, es);

    ig_tensor *gtmp = NULL, *wtmp = NULL, *wc = NULL, *dx = NULL, *dw = NULL;
    void *col = NULL, *dyb = NULL;
    ig_tensor *gc = contiguous_tmp(gout, &gtmp); /* dY [N, O, P] */
    if (!gc) return ig_last_status();
    const char *gd = igi_data(gc);

    if (need_b) {
        ig_tensor *db = igi_tensor_new(OP, 1, b->shape, dt, b->device);
        if (!db) {
            st = ig_last_status();
            goto done;
        }
        for (int64_t o = 0; o < g.O; o++) {
            double acc = 0;
            for (int64_t n = 0; n < g.N; n++) {
                int64_t base = (n * g.O + o) * g.P;
                if (dt == IG_F32)
                    for (int64_t p = 0; p < g.P; p++) acc += ((const float *)gd)[base + p];
                else
                    for (int64_t p = 0; p < g.P; p++) acc += ((const double *)gd)[base + p];
            }
            igi_store(dt, (char *)igi_data(db) + (size_t)o * es, acc);
        }
        gin[2] = db;
    }
    if (!need_x && !need_w) goto done;

    bool gemm_ok = g.N > 0 && g.Og > 0 && g.K > 0;
    /* With one image per chunk a 1x1 conv needs no col: x (if contiguous) is col, and dcol is
     * the image of dX itself. */
    bool x_direct = g.direct && nb == 1 && igi_is_contiguous(x);
    bool dx_direct = g.direct && nb == 1;
    bool need_col = gemm_ok && ((need_w && !x_direct) || (need_x && !dx_direct));
    if (need_col && !(col = scratch_alloc(g.K, nb * g.P, dt))) goto fail;
    if (gemm_ok && nb > 1 && !(dyb = scratch_alloc(g.Og, nb * g.P, dt))) goto fail;
    if (need_x && (!(dx = ig_zeros(4, x->shape, dt)) || !(wc = contiguous_tmp(w, &wtmp)))) goto fail;
    if (need_w && !(dw = ig_zeros(4, w->shape, dt))) goto fail;

    for (int64_t n0 = 0; gemm_ok && n0 < g.N; n0 += nb) {
        int64_t nc = g.N - n0 < nb ? g.N - n0 : nb, ld = nc * g.P;
        for (int64_t grp = 0; grp < g.groups; grp++) {
            chunk_job j = {.g = &g, .dt = dt, .x = x, .col = col, .n0 = n0, .grp = grp, .ld = ld};
            const char *dy = gd + (size_t)((n0 * g.O + grp * g.Og) * g.P) * es;
            if (nc > 1) {
                j.src = gd;
                j.dst = dyb;
                igi_parallel_for(nc * g.Og, grain_for(g.P), dy_rows, &j);
                dy = dyb;
            }
            if (need_w) {
                const void *B = col;
                if (x_direct)
                    B = (const char *)igi_data(x) + (size_t)((n0 * g.C + grp * g.Cg) * g.P) * es;
                else
                    igi_parallel_for(nc, grain_for(g.K * g.P), im2col_range, &j);
                gemm(dt, CblasNoTrans, CblasTrans, g.Og, g.K, ld, dy, ld, B, ld, 1.0,
                     (char *)igi_data(dw) + (size_t)(grp * g.Og * g.K) * es, g.K);
            }
            if (need_x) {
                const char *wg = (const char *)igi_data(wc) + (size_t)(grp * g.Og * g.K) * es;
                if (dx_direct) {
                    gemm(dt, CblasTrans, CblasNoTrans, g.K, g.P, g.Og, wg, g.K, dy, g.P, 0.0,
                         (char *)igi_data(dx) + (size_t)((n0 * g.C + grp * g.Cg) * g.P) * es, g.P);
                } else {
                    gemm(dt, CblasTrans, CblasNoTrans, g.K, ld, g.Og, wg, g.K, dy, ld, 0.0, col, ld);
                    j.dst = igi_data(dx);
                    igi_parallel_for(nc, grain_for(g.K * g.P), col2im_range, &j);
                }
            }
        }
    }
    if (need_x) gin[0] = dx;
    if (need_w) gin[1] = dw;
    goto done;

fail:
    st = ig_last_status();
done:
    scratch_free(col, g.K, nb * g.P, dt);
    scratch_free(dyb, g.Og, nb * g.P, dt);
    ig_tensor_free(wtmp);
    ig_tensor_free(gtmp);
    return st;
}

/* ---- forward ----------------------------------------------------------------------------- */

/* Validates the arguments; fills attr[0..9) = stride, padding, dilation (h, w each), groups,
 * Ho, Wo. Sets an error naming ig_conv2d and the shapes on failure. */
static bool conv2d_check(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p,
                         int64_t *attr) {
    char bx[160], bw[160], bb[160];
    if (!igi_check_same_dtype(OP, x, w) || !igi_check_same_device_any(OP, x, w)) return false;
    if (b && (!igi_check_same_dtype(OP, x, b) || !igi_check_same_device_any(OP, x, b))) return false;
    if (x->dtype != IG_F32 && x->dtype != IG_F64) {
        igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported (float32 and float64 only)", OP,
                  ig_dtype_name(x->dtype));
        return false;
    }
    ig_shape_str(x, bx, sizeof bx);
    ig_shape_str(w, bw, sizeof bw);
    if (x->ndim != 4) {
        igi_error(IG_ERR_SHAPE, "%s: input x must be 4-D [N,C,H,W], got %s", OP, bx);
        return false;
    }
    if (w->ndim != 4) {
        igi_error(IG_ERR_SHAPE, "%s: weight w must be 4-D [O,C/groups,kh,kw], got %s", OP, bw);
        return false;
    }
    int sh = p ? p->stride[0] : 0, sw = p ? p->stride[1] : 0;
    int ph = p ? p->padding[0] : 0, pw = p ? p->padding[1] : 0;
    int dh = p ? p->dilation[0] : 0, dw = p ? p->dilation[1] : 0;
    int groups = p ? p->groups : 0;
    if (sh < 0 || sw < 0) {
        igi_error(IG_ERR_ARG, "%s: stride must be positive, got (%d, %d)", OP, sh, sw);
        return false;
    }
    if (ph < 0 || pw < 0) {
        igi_error(IG_ERR_ARG, "%s: negative padding (%d, %d)", OP, ph, pw);
        return false;
    }
    if (dh < 0 || dw < 0) {
        igi_error(IG_ERR_ARG, "%s: dilation must be positive, got (%d, %d)", OP, dh, dw);
        return false;
    }
    if (groups < 0) {
        igi_error(IG_ERR_ARG, "%s: groups must be positive, got %d", OP, groups);
        return false;
    }
    /* Zero fields mean the defaults. */
    if (!sh) sh = 1;
    if (!sw) sw = 1;
    if (!dh) dh = 1;
    if (!dw) dw = 1;
    if (!groups) groups = 1;
    if (w->shape[0] % groups != 0) {
        igi_error(IG_ERR_SHAPE, "%s: out channels %lld (weight %s) not divisible by groups %d", OP,
                  (long long)w->shape[0], bw, groups);
        return false;
    }
    /* The division guard keeps w->shape[1] * groups from overflowing. */
    if (w->shape[1] > INT64_MAX / groups || x->shape[1] != w->shape[1] * groups) {
        igi_error(IG_ERR_SHAPE,
                  "%s: input channels %lld of x %s != weight %s channels %lld x groups %d", OP,
                  (long long)x->shape[1], bx, bw, (long long)w->shape[1], groups);
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        igi_error(IG_ERR_SHAPE, "%s: bias must be [%lld] (out channels of weight %s), got %s", OP,
                  (long long)w->shape[0], bw, ig_shape_str(b, bb, sizeof bb));
        return false;
    }
    if (w->shape[2] == 0 || w->shape[3] == 0) {
        igi_error(IG_ERR_SHAPE, "%s: kernel size must be positive, weight is %s", OP, bw);
        return false;
    }
    /* Effective kernel extent dil*(k-1)+1, guarded against overflow. */
    int64_t ext[2], out[2], in[2] = {x->shape[2], x->shape[3]}, pad[2] = {ph, pw};
    int64_t dil[2] = {dh, dw}, str[2] = {sh, sw}, k[2] = {w->shape[2], w->shape[3]};
    for (int i = 0; i < 2; i++) {
        if (k[i] - 1 > (INT64_MAX / 4) / dil[i] || in[i] > INT64_MAX / 4) {
            igi_error(IG_ERR_SHAPE, "%s: input %s or dilated kernel of weight %s is too large", OP,
                      bx, bw);
            return false;
        }
        ext[i] = dil[i] * (k[i] - 1) + 1;
        int64_t num = in[i] + 2 * pad[i] - ext[i];
        out[i] = num < 0 ? 0 : num / str[i] + 1;
    }
    if (out[0] <= 0 || out[1] <= 0) {
        igi_error(IG_ERR_SHAPE,
                  "%s: output size would be %lldx%lld (<= 0): input %s, weight %s, padding (%d, %d), "
                  "dilation (%d, %d)",
                  OP, (long long)out[0], (long long)out[1], bx, bw, ph, pw, dh, dw);
        return false;
    }
    /* blasint is 32-bit: each GEMM dimension and leading dimension must fit. The products
     * are checked for overflow first (a tensor with a zero dim may have huge other dims). */
    int64_t K, P;
    if (__builtin_mul_overflow(w->shape[1], k[0], &K) || __builtin_mul_overflow(K, k[1], &K) ||
        __builtin_mul_overflow(out[0], out[1], &P) || K > INT_MAX || P > INT_MAX ||
        w->shape[0] > INT_MAX) {
        igi_error(IG_ERR_SHAPE, "%s: %s x %s is too large for BLAS (sizes above 2^31)", OP, bx, bw);
        return false;
    }
    int64_t a[9] = {sh, sw, ph, pw, dh, dw, groups, out[0], out[1]};
    memcpy(attr, a, sizeof a);
    return true;
}

ig_tensor *ig_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p) {
    if (!x) {
        igi_error_null(OP, "x");
        return NULL;
    }
    if (!w) {
        igi_error_null(OP, "w");
        return NULL;
    }
    int64_t attr[9];
    if (!conv2d_check(x, w, b, p, attr)) return NULL;
    if (x->device != IG_CPU) return igi_conv2d_device(x, w, b, attr); /* nn_device.c */
    conv_geom g;
    geom_fill(&g, x, w, attr);
    ig_dtype dt = x->dtype;
    size_t es = ig_dtype_size(dt);

    ig_tensor *out = igi_tensor_new(OP, 4, (const int64_t[]){g.N, g.O, g.Ho, g.Wo}, dt, x->device);
    if (!out) return NULL;
    char *od = igi_data(out);
    ig_tensor *wtmp = NULL, *wc = NULL;
    void *col = NULL, *res = NULL;
    bool gemm_ok = g.N > 0 && g.Og > 0 && g.K > 0;
    int64_t nb = chunk_images(&g, es);
    bool x_direct = g.direct && nb == 1 && igi_is_contiguous(x);
    if (gemm_ok && (!(wc = contiguous_tmp(w, &wtmp)) ||
                    (!x_direct && !(col = scratch_alloc(g.K, nb * g.P, dt))) ||
                    (nb > 1 && !(res = scratch_alloc(g.Og, nb * g.P, dt))))) {
        scratch_free(col, g.K, nb * g.P, dt);
        ig_tensor_free(wtmp);
        ig_tensor_free(out);
        return NULL;
    }

    if (!gemm_ok) {
        /* No products to add (no input channels): every output is its bias. */
        for (int64_t grp = 0; grp < g.groups; grp++) {
            chunk_job j = {.g = &g, .dt = dt, .b = b, .dst = od, .grp = grp};
            for (j.n0 = 0; j.n0 < g.N; j.n0++) out_rows(0, g.Og, &j);
        }
    }
    /* Per chunk and group: res [Og, ld] = W_g [Og, K] @ col [K, ld], then out = res + bias,
     * row by row. A one-image chunk skips res: the bias goes into y first and the GEMM adds
     * onto it (beta = 1). */
    for (int64_t n0 = 0; gemm_ok && n0 < g.N; n0 += nb) {
        int64_t nc = g.N - n0 < nb ? g.N - n0 : nb, ld = nc * g.P;
        for (int64_t grp = 0; grp < g.groups; grp++) {
            chunk_job j = {.g = &g, .dt = dt, .x = x, .b = b, .dst = od, .col = col, .n0 = n0,
                           .grp = grp, .ld = ld};
            const void *B = col;
            if (x_direct)
                B = (const char *)igi_data(x) + (size_t)((n0 * g.C + grp * g.Cg) * g.P) * es;
            else
                igi_parallel_for(nc, grain_for(g.K * g.P), im2col_range, &j);
            const char *wg = (const char *)igi_data(wc) + (size_t)(grp * g.Og * g.K) * es;
            if (nc == 1) {
                out_rows(0, g.Og, &j);
                gemm(dt, CblasNoTrans, CblasNoTrans, g.Og, g.P, g.K, wg, g.K, B, g.P, 1.0,
                     od + (size_t)((n0 * g.O + grp * g.Og) * g.P) * es, g.P);
            } else {
                gemm(dt, CblasNoTrans, CblasNoTrans, g.Og, ld, g.K, wg, g.K, B, ld, 0.0, res, ld);
                j.src = res;
                igi_parallel_for(nc * g.Og, grain_for(g.P), out_rows, &j);
            }
        }
    }
    scratch_free(col, g.K, nb * g.P, dt);
    scratch_free(res, g.Og, nb * g.P, dt);
    ig_tensor_free(wtmp);

    ig_tensor *in[3] = {x, w, b};
    out = igi_finish(IGI_OP_CONV2D, conv2d_backward, out, in, b ? 3 : 2);
    if (out && out->node) memcpy(out->node->iattr, attr, sizeof attr);
    return out;
}
