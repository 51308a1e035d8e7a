/*
 * core/ops/conv.c — ig_conv2d (torch.nn.functional.conv2d semantics) on im2col + GEMM.
 *
 * Shapes: x [N,C,H,W], w [O, C/groups, kh, kw], b [O] or NULL -> y [N,O,Ho,Wo] with
 * Ho = (H + 2*pad_h - dil_h*(kh-1) - 1) / stride_h + 1 (same for W). With groups g, input
 * channels [gi*Cg, (gi+1)*Cg) feed output channels [gi*Og, (gi+1)*Og) (Cg = C/g, Og = O/g).
 *
 * Forward, per image and group: im2col gathers the image's receptive fields into a scratch
 * matrix col [K, P] (K = Cg*kh*kw rows, P = Ho*Wo columns; padded positions are zeros), and
 * ONE single-threaded GEMM y_g [Og, P] = W_g [Og, K] @ col writes the image's NCHW block
 * directly, onto the bias (beta = 1). A 1x1 kernel with stride 1 and no padding needs no
 * im2col: a contiguous image already is col.
 *
 * Backward, per image and group: db += row sums of dY_g, dW_g += dY_g [Og, P] @ col^T,
 * dX_g = col2im(W_g^T @ dY_g) (col2im accumulates, since receptive fields overlap).
 * Backward is not itself differentiable (no double backward).
 *
 * f32 3x3 convolutions with padding 1 and stride 1 or 2 take the direct kernels of
 * conv3x3.c instead (no im2col, no GEMM) on CPUs with AVX2+FMA, in the same slots.
 *
 * Images are grouped into shape-fixed slots run on the thread pool (see "per-image
 * pipeline on slots" below): results do not depend on the thread count.
 *
 * Autocast: under bf16 autocast f32 operands are converted to IG_BF16 (recorded) and the
 * convolution runs in bf16. Under fp16 autocast (core/ops/amp.c, igi_amp_for) with f32
 * tensors, forward runs on copies of x and w rounded to fp16, and backward (under the mode
 * kept on the node) on rounded copies of x, w and dY: every GEMM or direct-kernel product
 * then has rounded operands and f32 accumulation, exactly as an fp16 GEMM would. The bias
 * is added, and its gradient summed from the unrounded dY, in f32.
 *
 * x may have any strides (im2col reads through them); w and dY are copied to contiguous
 * heap temporaries when they are not contiguous. The slots' scratch comes from the caching
 * allocator (igi_alloc), so steady-state training allocates nothing from the OS.
 */
#include <limits.h>
#include <string.h>

#include "../tensor_impl.h"
#include "conv3x3.h"
#include "nn_device.h"

static const char *const OP = "ig_conv2d";

/* Everything the kernels need about one convolution: the geometry shared with the device
 * path (core/backend_impl.h; nb unused here). */
typedef igi_conv conv_geom;

/* 1x1, stride 1, no padding: a contiguous image is its own col. */
static bool conv_direct(const conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_h == 0 && g->pad_w == 0;
}

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

/* Unit strides with Wo == W (e.g. 3x3, padding 1) and input rows back to back: the col row
 * of a tap is then the input plane shifted by a constant offset, so it is one contiguous
 * copy over the valid output rows, after which the columns that fall outside the input
 * (read from the neighbouring row) are zeroed; col2im is one contiguous add, after zeroing
 * those columns in col (col is scratch: the caller does not read it afterwards). Per tap
 * this replaces Ho short row copies by one long one. */
static bool plane_path(const conv_geom *g, int64_t sh, int64_t sw) {
    return g->stride_h == 1 && g->stride_w == 1 && g->Wo == g->W && sw == 1 && sh == g->W;
}

/* For tap (ki, kj): valid output rows [*ylo, *yhi), valid columns [*lo, *hi), and the
 * offset delta with input element = col element q + delta (plane_path geometry). */
static void plane_tap(const conv_geom *g, int64_t ki, int64_t kj, int64_t *ylo, int64_t *yhi,
                      int64_t *lo, int64_t *hi, int64_t *delta) {
    int64_t dy = ki * g->dil_h - g->pad_h, xoff = kj * g->dil_w - g->pad_w;
    valid_range(dy, 1, g->H, g->Ho, ylo, yhi);
    valid_range(xoff, 1, g->W, g->Wo, lo, hi);
    *delta = dy * g->W + xoff;
}

#define DEFINE_PLANE_KERNELS(SUF, T)                                                       \
    IGI_HOT static void im2col_plane_##SUF(const conv_geom *g, const T *x, int64_t sc, T *col,     \
                                   int64_t ld) {                                           \
        int64_t Wo = g->Wo, P = g->P;                                                      \
        for (int64_t c = 0; c < g->Cg; c++)                                                \
            for (int64_t ki = 0; ki < g->kh; ki++)                                         \
                for (int64_t kj = 0; kj < g->kw; kj++) {                                   \
                    T *row = col + ((c * g->kh + ki) * g->kw + kj) * ld;                   \
                    int64_t ylo, yhi, lo, hi, delta;                                       \
                    plane_tap(g, ki, kj, &ylo, &yhi, &lo, &hi, &delta);                    \
                    if (yhi <= ylo || hi <= lo) {                                          \
                        memset(row, 0, (size_t)P * sizeof(T));                             \
                        continue;                                                          \
                    }                                                                      \
                    int64_t s = ylo * Wo + lo, e = (yhi - 1) * Wo + hi;                    \
                    memset(row, 0, (size_t)s * sizeof(T));                                 \
                    memcpy(row + s, x + c * sc + s + delta, (size_t)(e - s) * sizeof(T)); \
                    memset(row + e, 0, (size_t)(P - e) * sizeof(T));                       \
                    if (lo > 0 || hi < Wo)                                                 \
                        for (int64_t oy = ylo; oy < yhi; oy++) {                           \
                            T *r = row + oy * Wo;                                          \
                            for (int64_t ox = 0; ox < lo; ox++) r[ox] = 0;                 \
                            for (int64_t ox = hi; ox < Wo; ox++) r[ox] = 0;                \
                        }                                                                  \
                }                                                                          \
    }                                                                                      \
    IGI_HOT static void col2im_plane_##SUF(const conv_geom *g, T *col, int64_t ld, T *dx) {        \
        int64_t Wo = g->Wo, plane = g->H * g->W;                                           \
        for (int64_t c = 0; c < g->Cg; c++)                                                \
            for (int64_t ki = 0; ki < g->kh; ki++)                                         \
                for (int64_t kj = 0; kj < g->kw; kj++) {                                   \
                    T *row = col + ((c * g->kh + ki) * g->kw + kj) * ld;                   \
                    int64_t ylo, yhi, lo, hi, delta;                                       \
                    plane_tap(g, ki, kj, &ylo, &yhi, &lo, &hi, &delta);                    \
                    if (yhi <= ylo || hi <= lo) continue;                                  \
                    if (lo > 0 || hi < Wo)                                                 \
                        for (int64_t oy = ylo; oy < yhi; oy++) {                           \
                            T *r = row + oy * Wo;                                          \
                            for (int64_t ox = 0; ox < lo; ox++) r[ox] = 0;                 \
                            for (int64_t ox = hi; ox < Wo; ox++) r[ox] = 0;                \
                        }                                                                  \
                    int64_t s = ylo * Wo + lo, e = (yhi - 1) * Wo + hi;                    \
                    T *d = dx + c * plane + s + delta;                                     \
                    const T *r = row + s;                                                  \
                    for (int64_t q = 0; q < e - s; q++) d[q] += r[q];                      \
                }                                                                          \
    }

DEFINE_PLANE_KERNELS(f32, float)
DEFINE_PLANE_KERNELS(f64, double)

/* im2col: x points at channel 0 of the group in one image, with element strides (sc, sh,
 * sw); col row r = (c*kh + ki)*kw + kj (row stride ld >= P, the image's P columns at the
 * start of each row) holds x[c, oy*stride+ki*dil-pad, ...] over all output positions.
 * col2im is its adjoint: it adds col back into one contiguous image of dx. */
#define DEFINE_COL_KERNELS(SUF, T)                                                         \
    IGI_HOT static void im2col_##SUF(const conv_geom *g, const T *x, int64_t sc, int64_t sh,       \
                             int64_t sw, T *col, int64_t ld) {                             \
        if (plane_path(g, sh, sw)) {                                                       \
            im2col_plane_##SUF(g, x, sc, col, ld);                                         \
            return;                                                                        \
        }                                                                                  \
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
    IGI_HOT static void col2im_##SUF(const conv_geom *g, T *col, int64_t ld, T *dx) {              \
        int64_t plane = g->H * g->W;                                                       \
        if (plane_path(g, g->W, 1)) {                                                      \
            col2im_plane_##SUF(g, col, ld, dx);                                            \
            return;                                                                        \
        }                                                                                  \
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

/* ---- per-image pipeline on slots -----------------------------------------------------------
 *
 * Both passes work image by image: for one image and group, W_g [Og, K] @ col [K, P] is
 * already the image's NCHW output block [Og, P], and dY's block [Og, P] is already the GEMM
 * operand of the backward, so nothing is gathered or scattered; col [K, P] is small enough
 * (225 KB for the cnn's second conv) to stay in L2 between im2col, the GEMM and col2im.
 * Measured single-threaded, OpenBLAS runs these per-image GEMMs as fast as or faster than
 * one GEMM over a whole chunk of images (bench/NOTES.md, item 12).
 *
 * The batch is cut into S slots of consecutive images (image range of slot s: [s*N/S,
 * (s+1)*N/S)), S a function of the shapes only (conv_slots); one pool loop runs the slots,
 * each with its own scratch: col [K, P] and, in the backward of slots 1..S-1, a partial
 * dW [O, K] (slot 0 writes dW itself) and partial bias sums [O] (doubles). The partials are
 * added in slot order afterwards, so every result is the same for any thread count. With
 * S = 1 the loop runs in the caller's thread and each GEMM may split over the pool
 * (igi_gemm); with S > 1 the GEMMs inside the slots run single-threaded. */

/* Scratch per slot is capped so S slots fit SLOT_BUDGET; at most MAX_SLOTS slots (enough
 * for the pool's threads on the machines this runs on, few enough that the partial sums are
 * cheap). A single image whose col exceeds the budget gets one slot of its own size. */
#define SLOT_BUDGET ((size_t)8 << 20)
#define MAX_SLOTS 16

/* Elements of one slot's scratch: col [K, P] (none for the direct 1x1 case), plus a
 * partial dW [O, K] when the backward needs it. */
static int64_t slot_elems(const conv_geom *g, bool col, bool dw) {
    return (col ? g->K * g->P : 0) + (dw ? g->O * g->K : 0);
}

/* S for a pass whose slots need `elems` elements of es bytes each. */
static int64_t conv_slots(const conv_geom *g, int64_t elems, size_t es) {
    int64_t s = g->N < MAX_SLOTS ? g->N : MAX_SLOTS;
    size_t per = (size_t)(elems > 0 ? elems : 1) * es;
    if ((size_t)s * per > SLOT_BUDGET) s = (int64_t)(SLOT_BUDGET / per);
    return s < 1 ? 1 : s;
}

/* The images [*n0, *n1) of slot s of S. */
static void slot_images(int64_t N, int64_t S, int64_t s, int64_t *n0, int64_t *n1) {
    *n0 = s * N / S;
    *n1 = (s + 1) * N / S;
}

typedef struct conv_job {
    const conv_geom *g;
    ig_dtype dt;
    size_t es;
    const ig_tensor *x;   /* input (any strides) */
    const ig_tensor *b;   /* forward: bias or NULL */
    const char *w;        /* contiguous weight [O, K] */
    const char *dy;       /* backward: contiguous dY [N, O, P] */
    const char *dy_bias;  /* backward: the dY the bias gradient sums (dy, or the unrounded
                           * dY under autocast) */
    char *y;              /* forward: output [N, O, P] */
    char *dx, *dw;        /* backward: dX [N, C, H, W] and dW [O, K], or NULL if not needed */
    double *db;           /* backward: bias sums [S, O] or NULL */
    char *scratch;        /* [S, slot] elements */
    int64_t S, slot;      /* slots, elements of scratch per slot */
    bool x_direct;        /* 1x1/stride 1/no padding and x contiguous: x is col */
    const igi_c3 *c3;     /* the direct 3x3 path (conv3x3.c) or NULL */
    const float *c3_w;    /* its packed weights: forward [C][9][Op4], backward [O][9][Cp4] */
    const float *c3_bias; /* forward: the bias as floats, or NULL */
} conv_job;

/* col [K, P] of image n, group grp (or x itself when direct). */
static const char *image_col(const conv_job *j, int64_t n, int64_t grp, char *col) {
    const conv_geom *g = j->g;
    const ig_tensor *x = j->x;
    int64_t off = n * x->strides[0] + grp * g->Cg * x->strides[1];
    if (j->x_direct) return (const char *)igi_data(x) + (size_t)off * j->es;
    if (j->dt == IG_F32)
        im2col_f32(g, (const float *)igi_data(x) + off, x->strides[1], x->strides[2], x->strides[3],
                   (float *)col, g->P);
    else
        im2col_f64(g, (const double *)igi_data(x) + off, x->strides[1], x->strides[2], x->strides[3],
                   (double *)col, g->P);
    return col;
}

/* rows [Og, P] of y (row stride P) = bias of channels ch0.. (zeros without bias). */
IGI_HOT static void fill_bias(const conv_job *j, int64_t ch0, char *y) {
    const conv_geom *g = j->g;
    for (int64_t o = 0; o < g->Og; o++) {
        double v = j->b ? igi_load(j->dt, (const char *)igi_data(j->b) +
                                              (size_t)((ch0 + o) * j->b->strides[0]) * j->es)
                        : 0.0;
        if (j->dt == IG_F32) {
            float *d = (float *)y + o * g->P, fv = (float)v;
            for (int64_t q = 0; q < g->P; q++) d[q] = fv;
        } else {
            double *d = (double *)y + o * g->P;
            for (int64_t q = 0; q < g->P; q++) d[q] = v;
        }
    }
}

/* Sum of a row, in double, eight interleaved partial sums (vectorisable); the order depends
 * on n only. */
#define DEFINE_ROW_SUM(SUF, T)                                                   \
    IGI_HOT static double row_sum_##SUF(const T *r, int64_t n) {                        \
        double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                  \
        int64_t i = 0;                                                           \
        for (; i + 8 <= n; i += 8)                                               \
            for (int k = 0; k < 8; k++) a[k] += (double)r[i + k];                \
        for (int k = 0; i < n; i++, k++) a[k] += (double)r[i];                   \
        return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); \
    }
DEFINE_ROW_SUM(f32, float)
DEFINE_ROW_SUM(f64, double)

/* Bias sums of image n into the slot's dbp [O] (both paths). */
static void bias_sums(const conv_job *j, int64_t n, double *dbp) {
    const conv_geom *g = j->g;
    const char *dyn = j->dy_bias + (size_t)(n * g->O * g->P) * j->es;
    for (int64_t o = 0; o < g->O; o++)
        dbp[o] += j->dt == IG_F32 ? row_sum_f32((const float *)dyn + o * g->P, g->P)
                                  : row_sum_f64((const double *)dyn + o * g->P, g->P);
}

/* The direct 3x3 path's slots, forward (j->dy NULL) or backward: each slot's scratch is
 * zeroed once (the borders of its planes stay zero), then its images go one by one. */
static void c3_slots(int64_t s0, int64_t s1, void *ctx) {
    const conv_job *j = ctx;
    const conv_geom *g = j->g;
    for (int64_t s = s0; s < s1; s++) {
        float *scratch = (float *)j->scratch + s * j->slot;
        memset(scratch, 0, sizeof(float) * (size_t)j->slot);
        int64_t n0, n1;
        slot_images(g->N, j->S, s, &n0, &n1);
        for (int64_t n = n0; n < n1; n++) {
            if (j->dy && j->db) bias_sums(j, n, j->db + s * g->O);
            if (j->dy && !j->dx && !j->dw) continue;
            const float *x = (const float *)igi_data(j->x) + n * j->x->strides[0];
            int64_t xs[3] = {j->x->strides[1], j->x->strides[2], j->x->strides[3]};
            if (!j->dy)
                igi_c3_forward(j->c3, x, xs, j->c3_w, j->c3_bias, (float *)j->y + n * g->O * g->P, scratch);
            else
                igi_c3_backward(j->c3, x, xs, (const float *)j->dy + n * g->O * g->P, j->c3_w,
                                j->dx ? (float *)j->dx + n * g->C * g->H * g->W : NULL, j->dw != NULL, scratch);
        }
    }
}

static void conv_forward_slots(int64_t s0, int64_t s1, void *ctx) {
    const conv_job *j = ctx;
    const conv_geom *g = j->g;
    size_t es = j->es;
    if (j->c3) {
        c3_slots(s0, s1, ctx);
        return;
    }
    for (int64_t s = s0; s < s1; s++) {
        char *col = j->scratch + (size_t)(s * j->slot) * es;
        int64_t n0, n1;
        slot_images(g->N, j->S, s, &n0, &n1);
        for (int64_t n = n0; n < n1; n++)
            for (int64_t grp = 0; grp < g->groups; grp++) {
                char *yg = j->y + (size_t)((n * g->O + grp * g->Og) * g->P) * es;
                const char *B = image_col(j, n, grp, col);
                const char *wg = j->w + (size_t)(grp * g->Og * g->K) * es;
                if (j->b) fill_bias(j, grp * g->Og, yg);
                igi_gemm(j->dt, false, false, g->Og, g->P, g->K, wg, g->K, B, g->P, j->b ? 1.0 : 0.0,
                         yg, g->P);
            }
    }
}

static void conv_backward_slots(int64_t s0, int64_t s1, void *ctx) {
    const conv_job *j = ctx;
    const conv_geom *g = j->g;
    size_t es = j->es;
    int64_t colsz = j->x_direct ? 0 : g->K * g->P;
    if (j->c3) {
        c3_slots(s0, s1, ctx);
        return;
    }
    for (int64_t s = s0; s < s1; s++) {
        char *col = j->scratch + (size_t)(s * j->slot) * es;
        /* slot 0 accumulates into dW itself, the others into their partial after col */
        char *dwp = j->dw ? (s == 0 ? j->dw : col + (size_t)colsz * es) : NULL;
        double *dbp = j->db ? j->db + s * g->O : NULL;
        int64_t n0, n1;
        slot_images(g->N, j->S, s, &n0, &n1);
        for (int64_t n = n0; n < n1; n++) {
            char *dxn = j->dx ? j->dx + (size_t)(n * g->C * g->H * g->W) * es : NULL;
            bool dx_direct = conv_direct(g); /* the GEMM writes dX's block itself (beta 0) */
            if (dxn && !dx_direct) memset(dxn, 0, (size_t)(g->C * g->H * g->W) * es);
            if (dbp) bias_sums(j, n, dbp);
            for (int64_t grp = 0; grp < g->groups; grp++) {
                const char *dyg = j->dy + (size_t)((n * g->O + grp * g->Og) * g->P) * es;
                if (dwp) {
                    /* dW_g [Og, K] (+)= dY_g [Og, P] @ col^T [P, K] */
                    const char *B = image_col(j, n, grp, col);
                    igi_gemm(j->dt, false, true, g->Og, g->K, g->P, dyg, g->P, B, g->P, n == n0 ? 0.0 : 1.0,
                             dwp + (size_t)(grp * g->Og * g->K) * es, g->K);
                }
                if (dxn) {
                    /* dcol [K, P] = W_g^T [K, Og] @ dY_g, then added into dX's image */
                    const char *wg = j->w + (size_t)(grp * g->Og * g->K) * es;
                    char *dxg = dxn + (size_t)(grp * g->Cg * g->H * g->W) * es;
                    igi_gemm(j->dt, true, false, g->K, g->P, g->Og, wg, g->K, dyg, g->P, 0.0,
                             dx_direct ? dxg : col, g->P);
                    if (!dx_direct) {
                        if (j->dt == IG_F32)
                            col2im_f32(g, (float *)col, g->P, (float *)dxg);
                        else
                            col2im_f64(g, (double *)col, g->P, (double *)dxg);
                    }
                }
            }
        }
    }
}

/* ---- GEMM helpers -------------------------------------------------------------------------- */

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

/* Scratch of n elements from the caching allocator (NULL + error on OOM); free with
 * scratch_free and the same size. */
static void *scratch_alloc(int64_t n, size_t es) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * es;
    void *p = igi_alloc(IG_CPU, bytes);
    if (!p) igi_error(IG_ERR_NOMEM, "%s: out of memory for a %zu-byte scratch buffer", OP, bytes);
    return p;
}

static void scratch_free(void *p, int64_t n, size_t es) {
    if (p) igi_free(IG_CPU, p, (size_t)(n > 0 ? n : 1) * es);
}

/* The geometry from the shapes and the node's (or params') attributes. */
void igi_conv_geom(igi_conv *g, const ig_tensor *x, const ig_tensor *w, const int64_t *attr) {
    memset(g, 0, sizeof *g);
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
    for (int d = 0; d < 4; d++) g->xs[d] = x->strides[d];
}

/* ---- backward ---------------------------------------------------------------------------- */

/* Per image n and group (conv_backward_slots): db += row sums of dY_g; dW_g += dY_g @
 * col^T; dX_g = col2im(W_g^T @ dY_g). Slot partials of dW and db are added in slot order. */
static ig_status conv2d_backward_on(igi_node *node, ig_tensor *x, ig_tensor *w, ig_tensor *gout,
                                    ig_tensor *gout_bias, ig_tensor **gin);

/* Under autocast (node->amp) the products read rounded copies of x, w and dY. */
static ig_status conv2d_backward(igi_node *node, ig_tensor *gout, ig_tensor **gin) {
    ig_tensor *x = node->inputs[0], *w = node->inputs[1];
    ig_amp amp = (ig_amp)node->amp;
    if (amp == IG_AMP_OFF) return conv2d_backward_on(node, x, w, gout, gout, gin);
    ig_tensor *xr = igi_amp_round_copy(OP, x, amp);
    ig_tensor *wr = xr ? igi_amp_round_copy(OP, w, amp) : NULL;
    ig_tensor *gr = wr ? igi_amp_round_copy(OP, gout, amp) : NULL;
    ig_status st = gr ? conv2d_backward_on(node, xr, wr, gr, gout, gin) : ig_last_status();
    ig_tensor_free(xr);
    ig_tensor_free(wr);
    ig_tensor_free(gr);
    return st;
}

/* The gradients of node's inputs, with the products read from x, w and gout (the node's
 * own, or rounded copies); the bias gradient sums gout_bias. Which gradients are wanted
 * comes from node's inputs. */
static ig_status conv2d_backward_on(igi_node *node, ig_tensor *x, ig_tensor *w, ig_tensor *gout,
                                    ig_tensor *gout_bias, ig_tensor **gin) {
    ig_tensor *b = node->n_inputs > 2 ? node->inputs[2] : NULL;
    conv_geom g;
    igi_conv_geom(&g, x, w, node->iattr);
    ig_dtype dt = x->dtype;
    size_t es = ig_dtype_size(dt);
    bool need_x = igi_needs_grad(node->inputs[0]), need_w = igi_needs_grad(node->inputs[1]);
    bool need_b = igi_needs_grad(b);
    ig_status st = IG_OK;
    bool gemm_ok = g.N > 0 && g.Og > 0 && g.K > 0;

    ig_tensor *gtmp = NULL, *gbtmp = NULL, *wtmp = NULL, *wc = NULL, *dx = NULL, *dw = NULL, *db = NULL;
    void *scratch = NULL;
    double *dbs = NULL;
    ig_tensor *gc = contiguous_tmp(gout, &gtmp); /* dY [N, O, P] */
    if (!gc) return ig_last_status();
    ig_tensor *gbc = gout_bias == gout || !need_b ? gc : contiguous_tmp(gout_bias, &gbtmp);
    if (!gbc) {
        ig_tensor_free(gtmp);
        return ig_last_status();
    }

    conv_job j = {.g = &g, .dt = dt, .es = es, .x = x, .dy = igi_data(gc), .dy_bias = igi_data(gbc),
                  .x_direct = conv_direct(&g) && igi_is_contiguous(x)};
    igi_c3 c3;
    bool direct3 = gemm_ok && igi_c3_plan(&g, dt, &c3);
    bool need_col = gemm_ok && ((need_w && !j.x_direct) || (need_x && !conv_direct(&g)));
    j.slot = direct3 ? igi_c3_bwd_slot_floats(&c3, need_x, need_w) : slot_elems(&g, need_col, gemm_ok && need_w);
    if (direct3 && j.slot == 0) j.slot = 1; /* bias gradient only */
    j.S = conv_slots(&g, j.slot, es);
    int64_t npack = direct3 && need_x ? igi_c3_bwd_pack_floats(&c3) : 0;
    if (need_b) {
        if (!(db = igi_tensor_new(OP, 1, b->shape, dt, b->device))) goto fail;
        if (!(dbs = scratch_alloc(j.S * g.O, sizeof(double)))) goto fail;
        memset(dbs, 0, (size_t)(j.S * g.O) * sizeof(double));
        j.db = dbs;
    }
    if (need_x) {
        dx = gemm_ok ? igi_tensor_new(OP, 4, x->shape, dt, x->device) : ig_zeros(4, x->shape, dt);
        if (!dx || !(wc = contiguous_tmp(w, &wtmp))) goto fail;
        j.dx = igi_data(dx);
        j.w = igi_data(wc);
    }
    if (need_w) {
        dw = gemm_ok ? igi_tensor_new(OP, 4, w->shape, dt, w->device) : ig_zeros(4, w->shape, dt);
        if (!dw) goto fail;
        j.dw = igi_data(dw);
    }
    if (gemm_ok && (need_x || need_w || need_b)) {
        if (!(scratch = scratch_alloc(j.S * j.slot + npack, es))) goto fail;
        j.scratch = scratch;
        if (!need_x) j.dx = NULL;
        if (!need_w) j.dw = NULL;
        if (direct3) {
            float *wb = (float *)scratch + j.S * j.slot;
            if (need_x) igi_c3_pack_bwd(&c3, (const float *)igi_data(wc), wb);
            j.c3 = &c3;
            j.c3_w = wb;
        }
        igi_parallel_for(j.S, 1, conv_backward_slots, &j);
        if (direct3 && need_w)
            igi_c3_dw_finish(&c3, (float *)scratch + igi_c3_bwd_dw_offset(&c3), j.S, j.slot, (float *)j.dw);
        /* dW = slot 0's sums (in dW) + the other slots' partials, in slot order */
        for (int64_t s = 1; !direct3 && need_w && s < j.S; s++) {
            const char *part = (const char *)scratch + (size_t)(s * j.slot + (need_col ? g.K * g.P : 0)) * es;
            int64_t n = g.O * g.K;
            if (dt == IG_F32) {
                float *d = (float *)j.dw;
                const float *p = (const float *)part;
                for (int64_t i = 0; i < n; i++) d[i] += p[i];
            } else {
                double *d = (double *)j.dw;
                const double *p = (const double *)part;
                for (int64_t i = 0; i < n; i++) d[i] += p[i];
            }
        }
    } else if (need_b) {
        /* no products (no input channels or no images): db is still the sum of dY */
        for (int64_t n = 0; n < g.N; n++)
            for (int64_t o = 0; o < g.O; o++) {
                const char *r = j.dy_bias + (size_t)((n * g.O + o) * g.P) * es;
                dbs[o] += dt == IG_F32 ? row_sum_f32((const float *)r, g.P) : row_sum_f64((const double *)r, g.P);
            }
    }
    if (need_b) {
        for (int64_t o = 0; o < g.O; o++) {
            double acc = 0;
            int64_t S = gemm_ok ? j.S : 1;
            for (int64_t s = 0; s < S; s++) acc += dbs[s * g.O + o];
            igi_store(dt, (char *)igi_data(db) + (size_t)o * es, acc);
        }
        gin[2] = db;
        db = NULL;
    }
    if (need_x) gin[0] = dx, dx = NULL;
    if (need_w) gin[1] = dw, dw = NULL;
    goto done;

fail:
    st = ig_last_status();
done:
    scratch_free(scratch, j.S * j.slot + npack, es);
    scratch_free(dbs, j.S * g.O, sizeof(double));
    ig_tensor_free(dx);
    ig_tensor_free(dw);
    ig_tensor_free(db);
    ig_tensor_free(wtmp);
    ig_tensor_free(gtmp);
    ig_tensor_free(gbtmp);
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
    if (x->dtype != IG_F32 && x->dtype != IG_F64 && x->dtype != IG_BF16) {
        igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported (float32, float64 and bfloat16 only)", OP,
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

static ig_tensor *conv2d_forward(ig_tensor *x, ig_tensor *w, ig_tensor *b, ig_tensor *xu, ig_tensor *wu,
                                 const int64_t *attr, ig_amp amp);

ig_tensor *ig_conv2d(ig_tensor *x, ig_tensor *w, ig_tensor *b, const ig_conv2d_params *p) {
    if (!x) {
        igi_error_null(OP, "x");
        return NULL;
    }
    if (!w) {
        igi_error_null(OP, "w");
        return NULL;
    }
    /* bf16 autocast (torch.autocast): f32 operands are converted to bf16, and so is the
     * result; the conversions are recorded, so master weights get f32 gradients. */
    if (igi_autocast_mode() == IG_AMP_BF16 && (x->dtype == IG_F32 || x->dtype == IG_BF16) &&
        (w->dtype == IG_F32 || w->dtype == IG_BF16) && (!b || b->dtype == IG_F32 || b->dtype == IG_BF16) &&
        (x->dtype == IG_F32 || w->dtype == IG_F32 || (b && b->dtype == IG_F32))) {
        ig_tensor *xb = x->dtype == IG_F32 ? ig_to_dtype(x, IG_BF16) : x;
        ig_tensor *wb = xb && w->dtype == IG_F32 ? ig_to_dtype(w, IG_BF16) : w;
        ig_tensor *bb = b && b->dtype == IG_F32 ? ig_to_dtype(b, IG_BF16) : b;
        if (!xb || !wb || (b && !bb)) return NULL;
        return ig_conv2d(xb, wb, bb, p);
    }
    int64_t attr[9];
    if (!conv2d_check(x, w, b, p, attr)) return NULL;
    if (igi_bf16_fallback(x, IGI_BF16_CONV)) { /* through f32 (core/ops/bf16.c) */
        ig_tensor *wx = igi_bf16_widen(x), *ww = wx ? igi_bf16_widen(w) : NULL;
        ig_tensor *wb = ww && b ? igi_bf16_widen(b) : NULL;
        if (!ww || (b && !wb)) return NULL;
        ig_amp prev = igi_bf16_enter();
        ig_tensor *r = ig_conv2d(wx, ww, wb, p);
        igi_bf16_leave(prev);
        return igi_bf16_narrow(r);
    }
    if (x->device != IG_CPU) return igi_conv2d_device(x, w, b, attr); /* nn_device.c */
    ig_amp amp = igi_amp_for(x->dtype);
    if (amp == IG_AMP_OFF) return conv2d_forward(x, w, b, x, w, attr, amp);
    ig_tensor *xr = igi_amp_round_copy(OP, x, amp);
    ig_tensor *wr = xr ? igi_amp_round_copy(OP, w, amp) : NULL;
    ig_tensor *out = wr ? conv2d_forward(x, w, b, xr, wr, attr, amp) : NULL;
    ig_tensor_free(xr);
    ig_tensor_free(wr);
    return out;
}

/* ig_conv2d on the CPU after the checks: the products read xu and wu (x and w, or their
 * rounded copies under autocast); the node records x, w, b and the mode. */
static ig_tensor *conv2d_forward(ig_tensor *x, ig_tensor *w, ig_tensor *b, ig_tensor *xu, ig_tensor *wu,
                                 const int64_t *attr, ig_amp amp) {
    conv_geom g;
    igi_conv_geom(&g, x, w, attr);
    ig_dtype dt = x->dtype;
    size_t es = ig_dtype_size(dt);

    ig_tensor *out = igi_tensor_new(OP, 4, (const int64_t[]){g.N, g.O, g.Ho, g.Wo}, dt, x->device);
    if (!out) return NULL;
    conv_job j = {.g = &g, .dt = dt, .es = es, .x = xu, .b = b, .y = igi_data(out),
                  .x_direct = conv_direct(&g) && igi_is_contiguous(xu)};
    bool gemm_ok = g.N > 0 && g.Og > 0 && g.K > 0;
    if (!gemm_ok) {
        /* No products to add (no input channels): every output is its bias. */
        for (int64_t n = 0; n < g.N; n++)
            for (int64_t grp = 0; grp < g.groups; grp++)
                fill_bias(&j, grp * g.Og, j.y + (size_t)((n * g.O + grp * g.Og) * g.P) * es);
    } else {
        igi_c3 c3;
        bool direct3 = igi_c3_plan(&g, dt, &c3);
        ig_tensor *wtmp = NULL, *wc = contiguous_tmp(wu, &wtmp);
        j.slot = direct3 ? igi_c3_fwd_slot_floats(&c3) : slot_elems(&g, !j.x_direct, false);
        j.S = conv_slots(&g, j.slot, es);
        int64_t npack = direct3 ? igi_c3_fwd_pack_floats(&c3) : 0;
        void *scratch = wc ? scratch_alloc(j.S * j.slot + npack, es) : NULL;
        if (!scratch) {
            ig_tensor_free(wtmp);
            ig_tensor_free(out);
            return NULL;
        }
        j.w = igi_data(wc);
        j.scratch = scratch;
        if (direct3) {
            /* packed weights and the bias as floats after the slots */
            float *wf = (float *)scratch + j.S * j.slot, *bias = wf + c3.C * 9 * c3.Op4;
            igi_c3_pack_fwd(&c3, (const float *)igi_data(wc), wf);
            for (int64_t o = 0; b && o < g.O; o++)
                bias[o] = (float)igi_load(dt, (const char *)igi_data(b) + (size_t)(o * b->strides[0]) * es);
            j.c3 = &c3;
            j.c3_w = wf;
            j.c3_bias = b ? bias : NULL;
        }
        igi_parallel_for(j.S, 1, conv_forward_slots, &j);
        scratch_free(scratch, j.S * j.slot + npack, es);
        ig_tensor_free(wtmp);
    }

    ig_tensor *in[3] = {x, w, b};
    out = igi_finish(IGI_OP_CONV2D, conv2d_backward, out, in, b ? 3 : 2);
    if (out && out->node) {
        memcpy(out->node->iattr, attr, sizeof(int64_t) * 9);
        out->node->amp = (uint8_t)amp;
    }
    return out;
}
