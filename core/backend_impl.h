/*
 * core/backend_impl.h — the backend table: what a device backend (cuda/) gives core.
 *
 * core/ owns every public function: an op validates its arguments, infers the output
 * shape and allocates the output exactly as on the CPU; then, for a tensor that is not on
 * the CPU, it describes the work as plain geometry (igi_ew for elementwise work, igi_red for
 * reductions, raw GEMM arguments) and calls the device's entry in this table. A backend
 * only ever sees device pointers, element strides and dtypes: no tensors, no scopes, no
 * autograd. Autograd needs nothing from a backend, since backward functions are written
 * with ops that dispatch the same way.
 *
 * Dispatch rules (core/backend.c):
 *  - igi_backend_get(op, dev) returns the table of dev, initialising the backend on first
 *    use (for IG_CUDA: cuda/'s igi_cuda_init, present only in a build with -DIGNIS_CUDA);
 *    NULL with an IG_ERR_DEVICE error naming op when the build or the machine has none.
 *  - An entry left NULL means "not implemented on this device": the op fails with
 *    "<op>: not implemented on cuda" (IG_ERR_DEVICE); it never falls back to the CPU.
 *  - Every entry returns IG_OK or an error status with the message set (naming op, the
 *    failing call, file:line and the runtime's own description).
 *
 * This header is also compiled as C++ by nvcc: it includes only the public tensor.h and
 * standard headers, never tensor_impl.h (whose C11 atomics are not C++).
 */
#ifndef IGNIS_CORE_BACKEND_IMPL_H
#define IGNIS_CORE_BACKEND_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- geometry ------------------------------------------------------------------------ */

#define IGI_EW_MAX 4

/* Elementwise work over the output's shape: operand 0 is the output, the others are read
 * with their strides broadcast to the output's shape (0 on broadcast dims). Dims are
 * coalesced (size-1 dims dropped, neighbours merged when every operand allows), listed
 * outermost first; ndim may be 0 (one element). Strides count elements. numel >= 1. */
typedef struct igi_ew {
    int ndim, nops;
    int64_t numel;
    int64_t shape[IG_MAX_DIMS];
    int64_t strides[IGI_EW_MAX][IG_MAX_DIMS];
    char *data[IGI_EW_MAX];      /* each operand's first element (device addresses) */
    ig_dtype dtype[IGI_EW_MAX];
} igi_ew;

/* A reduction: for each output element i (row-major over the kept dims kshape, written to
 * out[i], contiguous), the n_red input elements at in + koffset(i) + roffset(j), j in
 * row-major order over rshape. kstride / rstride count input elements. n_out >= 1. */
typedef struct igi_red {
    int nk, nr;
    int64_t kshape[IG_MAX_DIMS], kstride[IG_MAX_DIMS];
    int64_t rshape[IG_MAX_DIMS], rstride[IG_MAX_DIMS];
    int64_t n_out, n_red;
    const char *in;
    ig_dtype in_dtype;
    char *out;                   /* n_out elements of out_dtype, or NULL (argmax-like use) */
    ig_dtype out_dtype;
    int64_t *index;              /* NULL, or n_out int64: flat index j of each extreme */
} igi_red;

/* Rows along one dim of up to three tensors of one shape (softmax): for row i (row-major
 * over the other dims, shape[0..n)), tensor k's row starts at data[k] + offset of i over
 * stride[k] and has len elements step[k] apart. rows >= 1, len >= 1. */
typedef struct igi_rows {
    int n, nt;
    int64_t shape[IG_MAX_DIMS];
    int64_t stride[3][IG_MAX_DIMS];
    int64_t step[3];
    int64_t rows, len;
    char *data[3];
    ig_dtype dtype;
} igi_rows;

/* Binary kinds (core/ops/binary.c). EQ/GT/LT write u8 masks. */
enum igi_binary_kind { IGI_BIN_ADD, IGI_BIN_SUB, IGI_BIN_MUL, IGI_BIN_DIV, IGI_BIN_EQ, IGI_BIN_GT,
                       IGI_BIN_LT, IGI_BIN_COUNT };

/* Unary kinds in the order of the unary ops in enum igi_op (core/ops/unary.c checks). */
enum igi_unary_kind { IGI_UN_NEG, IGI_UN_POW, IGI_UN_EXP, IGI_UN_LOG, IGI_UN_SQRT, IGI_UN_ABS,
                      IGI_UN_CLAMP, IGI_UN_RELU, IGI_UN_LEAKY_RELU, IGI_UN_SIGMOID, IGI_UN_TANH,
                      IGI_UN_GELU, IGI_UN_SILU, IGI_UN_COUNT };

/* Scalar arguments of a unary op: a = exponent / lo / negative slope, b = hi; ia, ib =
 * clamp's bounds converted to an integer dtype; nan_bound: a clamp bound is NaN. */
typedef struct igi_unary_params {
    double a, b;
    int64_t ia, ib;
    bool nan_bound;
} igi_unary_params;

/* Reduction kinds. SUM of an integer input writes int64 (wrapping); MEAN divides the sum
 * by div; VAR writes (sum of squared deviations from the mean) / div; MAX/MIN take the
 * first extreme element, NaN counting as more extreme than any number. */
enum igi_reduce_kind { IGI_RED_SUM, IGI_RED_MEAN, IGI_RED_VAR, IGI_RED_MAX, IGI_RED_MIN };

/* A 2-D convolution (core/ops/conv.c's geometry): x [N,C,H,W] with element strides xs, w
 * [O,Cg,kh,kw] contiguous, y [N,O,Ho,Wo] contiguous; Cg = C/groups, Og = O/groups, K =
 * Cg*kh*kw, P = Ho*Wo. Work goes in chunks of nb images: the col scratch holds K*nb*P
 * elements, the res / dyb scratch Og*nb*P (nb*P < 2^31); elements of the dtype, f32 for
 * bf16 (a backend may stage bf16 work in f32 there). */
typedef struct igi_conv {
    int64_t N, C, H, W, O, kh, kw, Ho, Wo;
    int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
    int64_t Cg, Og, K, P;
    int64_t xs[4];
    int64_t nb;
    int amp; /* ig_amp: IG_AMP_OFF, or IG_AMP_FP16 (igi_amp_for: f32 under fp16 autocast)
              * when the GEMMs' operands are rounded to half (forward and backward alike) */
} igi_conv;

/* A 2-D pool (core/ops/pool.c): N*C planes; xs the strides (n, c, h, w) of the input
 * (forward) or of the output gradient (backward); per axis (rows, columns) the input and
 * output sizes, kernel, stride and padding (fixed windows) or adaptive windows; exclude:
 * avg divides by the in-input count. */
typedef struct igi_pool {
    int64_t N, C;
    int64_t xs[4];
    int64_t in[2], out[2], k[2], s[2], p[2];
    bool adaptive, exclude;
} igi_pool;

/* Batch norm over x viewed as [N, C, S] (contiguous, dtype dt): per channel c, mean and
 * biased variance over N*S elements (training) or the running stats rm / rv (eval); y =
 * (x - mean) * invstd * w + b with invstd = 1/sqrt(var + eps). w, b, rm, rv are of dtype
 * dt with element strides ws, bs, rms, rvs, or NULL (w = 1, b = 0; no running stats).
 * Training with N*S > 0 updates rm / rv in place: r = (1 - momentum) * r + momentum * v,
 * v the mean or the unbiased variance. mean / invstd ([C] f64 on the device) receive the
 * statistics backward uses. */
typedef struct igi_bn {
    int64_t N, C, S;
    ig_dtype dt;  /* w, b, rm, rv */
    ig_dtype xdt; /* x and y: dt, or IG_BF16 with dt IG_F32 (autocast's activations) */
    const void *x;
    void *y;
    const void *w, *b;
    int64_t ws, bs;
    void *rm, *rv;
    int64_t rms, rvs;
    double *mean, *invstd;
    double eps, momentum;
    bool training;
} igi_bn;

/* Batch norm backward: per channel sg = sum(g), sgx = sum(g * xhat), xhat = (x - mean) *
 * invstd; dx (NULL: not wanted) = w * invstd * (g - sg/cnt - xhat * sgx/cnt) in training,
 * w * invstd * g in eval; dw = sgx, db = sg (each [C] contiguous of dtype dt, or NULL).
 * x and g contiguous [N, C, S]. */
typedef struct igi_bn_bwd {
    int64_t N, C, S;
    ig_dtype dt;  /* w, dw, db */
    ig_dtype xdt; /* x, g and dx: dt, or IG_BF16 with dt IG_F32 */
    const void *x, *g;
    const void *w;
    int64_t ws;
    const double *mean, *invstd;
    void *dx, *dw, *db;
    double cnt;
    bool training;
} igi_bn_bwd;

/* Synchronised batch norm (core/ops/norm.c's igi_batch_norm_sync on a device) in steps,
 * between which core adds per-channel sums over the process group on the host. The sums of
 * this process over x (and g) viewed as contiguous [N, C, S] of dtype dt, accumulated in
 * double, into out ([2C] f64 on the device; IGI_BN_SUM_X writes out[0..C) only):
 *   IGI_BN_SUM_X:    out[c] = sum(x)
 *   IGI_BN_SUM_DEV:  out[c] = sum(d), out[C + c] = sum(d * d), d = x - shift[c]
 *   IGI_BN_SUM_GRAD: out[c] = sum(g), out[C + c] = sum(g * (x - shift[c])) * invstd[c]
 * shift / invstd are [C] f64 on the device (NULL where the kind does not read them). */
enum igi_bn_sum_kind { IGI_BN_SUM_X, IGI_BN_SUM_DEV, IGI_BN_SUM_GRAD };
typedef struct igi_bn_sums {
    int64_t N, C, S;
    ig_dtype dt; /* x and g (f32 / f64; bf16 goes through core's f32 copies) */
    const void *x, *g;
    const double *shift, *invstd;
    double *out;
} igi_bn_sums;

/* Cross-entropy / NLL (core/ops/loss.c) over npos positions (row-major over the target
 * shape, n dims): per position, tensor k's element offset from stride[k] (0 scores x with
 * the class dim removed, 1 target, 2 per-position loss (forward, reduction none) or the
 * output gradient g (backward; all 0 for a reduced loss), 3 the saved log-sum-exp (f64), 4
 * the input gradient gin with the class dim removed). C classes at stride cs in x (gis in
 * gin). Targets (int64 or int32, tdt) are valid: in [0, C) unless ignored. */
typedef struct igi_ce {
    int n;
    int64_t shape[IG_MAX_DIMS];
    int64_t stride[5][IG_MAX_DIMS];
    int64_t npos, C, cs, gis;
    bool fused, use_ignore;
    int64_t ignore_index;
    double eps;
    ig_dtype dt, tdt;
} igi_ce;

/* One fused optimizer update over n contiguous elements of a parameter p, its gradient g
 * and its state buffers (optim/kernels_impl.h's loops, same operation order, no fused
 * multiply-adds, so results equal the CPU's bit for bit). kind: IGI_OPT_SGD (b0 the
 * momentum buffer or NULL), IGI_OPT_ADAM (b0 m, b1 v, b2 vmax or NULL; AdamW through
 * shrink), IGI_OPT_RMSPROP (b0 square average, b1 grad average or NULL, b2 momentum
 * buffer or NULL). Scalars in double, rounded to dt once as the CPU does. */
enum igi_optim_kernel { IGI_OPT_SGD, IGI_OPT_ADAM, IGI_OPT_RMSPROP };
typedef struct igi_optim_step {
    int kind;
    ig_dtype dt;
    int64_t n;
    void *p;
    const void *g;
    void *b0, *b1, *b2;
    double lr, weight_decay, momentum, dampening;          /* SGD; RMSprop: lr, wd, momentum */
    bool nesterov, first;                                  /* SGD */
    double beta1, beta2, eps, l2, shrink, step_size, bc2_sqrt; /* Adam; RMSprop: eps */
    double alpha;                                          /* RMSprop */
} igi_optim_step;

/* Layer norm over R rows of D elements (x, g, y, dx contiguous [R, D] of dtype dt; w, b
 * contiguous [D] or NULL): forward writes y and the rows' mean / invstd ([R] f64 on the
 * device); backward reads them and writes dx, dw, db (each NULL when not wanted), all
 * accumulated in double as core/ops/norm.c does. */
typedef struct igi_ln {
    int64_t R, D;
    ig_dtype dt;
    const void *x, *g, *w, *b;
    void *y, *dx, *dw, *db;
    double *mean, *invstd;
    double eps;
} igi_ln;

/* Pointwise losses (core/ops/loss.c): l = (x-y)^2, |x-y|, smooth L1 with beta, and
 * max(x,0) - x*y + log1p(exp(-|x|)) (binary cross-entropy on logits). */
enum igi_pw_kind { IGI_PW_MSE, IGI_PW_L1, IGI_PW_SMOOTH_L1, IGI_PW_BCE_LOGITS };

/* Gather along dim (core/ops/index.c): out[c] = t[c with c[dim] = index[c]] over index's
 * shape ishape (ndim dims, row-major, n elements). t's and index's element strides tstride /
 * istride (tstride[dim] is along dim; 0-dim t: ndim 0, size 1), t's size along dim, t's
 * shape tshape (backward), g's strides gstride (backward; g has index's shape). Indices
 * (int64 or int32, idt) are valid: in [0, size). Values of dtype dt. */
typedef struct igi_gather {
    int ndim, dim;
    int64_t ishape[IG_MAX_DIMS], istride[IG_MAX_DIMS];
    int64_t tshape[IG_MAX_DIMS], tstride[IG_MAX_DIMS];
    int64_t gstride[IG_MAX_DIMS];
    int64_t size;
    ig_dtype dt, idt;
} igi_gather;

/* ---- bf16 ---------------------------------------------------------------------------- */

/* bf16 (IG_BF16) operands. copy and fill take every dtype, bf16 included (copy converts to
 * and from it). The other entries see bf16 only where the table's bf16 mask has the bit
 * of their group; for a group without it, core converts the bf16 operands to f32 copies,
 * runs the f32 entry and rounds the results back to bf16 (core/ops/bf16.c), which gives
 * the same values at more memory traffic. A native bf16 entry computes in f32 (reductions
 * and GEMMs accumulate as their f32 versions do) and rounds each result to bf16 once, to
 * nearest even. */
enum igi_bf16_group {
    IGI_BF16_EW = 1u << 0,     /* binary, scalar, where, unary, unary_backward, mask_apply */
    IGI_BF16_REDUCE = 1u << 1, /* reduce, reduce_scatter: in (and out / g) bf16 */
    IGI_BF16_POOL = 1u << 2,   /* pool2d, pool2d_backward with dt IG_BF16 */
    IGI_BF16_BN = 1u << 3,     /* batch_norm, batch_norm_backward with xdt IG_BF16 */
    IGI_BF16_GEMM = 1u << 4,   /* gemm with dt IG_BF16: A, B and C bf16 */
    IGI_BF16_CONV = 1u << 5    /* conv2d, conv2d_backward with dt IG_BF16: every tensor bf16 */
};

/* ---- the table ----------------------------------------------------------------------- */

typedef struct igi_backend {
    const char *name; /* "cuda", as in messages */
    unsigned bf16;    /* enum igi_bf16_group bits: the groups whose entries take bf16 */

    /* Memory. raw_alloc returns NULL (no error set) when the device is out of memory; the
     * caching allocator (core/alloc.c) sits on top. Copies and memset return when the
     * bytes are in place as far as later work on the backend's stream can tell; copies to
     * the host return when the host bytes are written. */
    void *(*raw_alloc)(size_t nbytes);
    void (*raw_free)(void *p);
    ig_status (*memcpy_h2d)(void *dst, const void *src, size_t nbytes);
    ig_status (*memcpy_d2h)(void *dst, const void *src, size_t nbytes);
    ig_status (*memcpy_d2d)(void *dst, const void *src, size_t nbytes);
    ig_status (*memset_zero)(void *dst, size_t nbytes);
    ig_status (*synchronize)(void);

    /* Kernels (NULL: not implemented on this device). */
    /* data[0] = data[1] converted to dtype[0] (2 operands). */
    ig_status (*copy)(const char *op, const igi_ew *e);
    /* data[0] = value converted to dtype[0] (1 operand). */
    ig_status (*fill)(const char *op, const igi_ew *e, double value);
    /* data[0] = data[1] KIND data[2] (3 operands of one dtype; u8 output for comparisons).
     * data[0] may equal data[1] with the same strides (in-place accumulation). */
    ig_status (*binary)(const char *op, int kind, const igi_ew *e);
    /* data[0] = data[1] * s (mul) or + s, with ig_add_scalar/ig_mul_scalar's integer rules. */
    ig_status (*scalar)(const char *op, const igi_ew *e, double s, bool mul);
    /* data[0] = data[1] != 0 ? data[2] : data[3] (4 operands; cond of any dtype). */
    ig_status (*where)(const char *op, const igi_ew *e);
    /* data[0] = f(data[1]). */
    ig_status (*unary)(const char *op, int kind, const igi_ew *e, const igi_unary_params *p);
    /* data[0] = f'(saved) * gout: operands (gin, gout, saved), float dtypes. saved is the
     * input or the output as the op's row in core/ops/unary.c says. */
    ig_status (*unary_backward)(const char *op, int kind, const igi_ew *e, const igi_unary_params *p);
    /* One of enum igi_reduce_kind over r. div as above (unused by SUM/MAX/MIN). */
    ig_status (*reduce)(const char *op, int kind, const igi_red *r, double div);
    /* Max/min backward: for each output element i, writes g[i] (contiguous, r->n_out
     * elements of r->in_dtype) to the input-geometry tensor at r->out (the zeroed
     * gradient, same strides as the input plan) at the element r->index[i] of slice i. */
    ig_status (*reduce_scatter)(const char *op, const igi_red *r, const void *g);
    /* Softmax (log_out: log_softmax) of each row as core/ops/softmax.c computes it: tensor
     * 0 the output, 1 the input. Float dtypes. */
    ig_status (*softmax)(const char *op, bool log_out, const igi_rows *r);
    /* Its gradient: tensor 0 gin, 1 the output gradient g, 2 the saved output y. */
    ig_status (*softmax_backward)(const char *op, bool log_out, const igi_rows *r);
    /* C[M,N] (row-major, ldc) = op(A)[M,K] @ op(B)[K,N] + beta*C, with igi_gemm's
     * conventions (core/tensor_impl.h); f32 or f64. */
    ig_status (*gemm)(const char *op, ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C,
                      int64_t ldc);

    /* Convolution: y = conv(x, w) + b (b: NULL or [O] at element stride bs); scratch col
     * and res as igi_conv says. f32 / f64. */
    ig_status (*conv2d)(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w,
                        const void *b, int64_t bs, void *y, void *col, void *res);
    /* Its gradients from dy (contiguous [N,O,Ho,Wo]): dx (contiguous [N,C,H,W]), dw
     * (contiguous [O,Cg,kh,kw]), db ([O]), each NULL when not wanted and otherwise fully
     * written; scratch col (K*nb*P) and dyb (Og*nb*P). */
    ig_status (*conv2d_backward)(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w,
                                 const void *dy, void *dx, void *dw, void *db, void *col, void *dyb);
    /* Pooling (max: max_pool2d with the argmax of each window into idx, NULL when not
     * wanted, as an index into its H*W plane; else the average) into out (contiguous
     * [N*C, Ho, Wo]). */
    ig_status (*pool2d)(const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *x, void *out,
                        int64_t *idx);
    /* Its gradient: dx (contiguous [N*C, H, W], fully written) from gout (strides g->xs)
     * and, for max, the saved argmax idx (contiguous). */
    ig_status (*pool2d_backward)(const char *op, bool max, ig_dtype dt, const igi_pool *g, const void *gout,
                                 const int64_t *idx, void *dx);
    ig_status (*batch_norm)(const char *op, const igi_bn *p);
    ig_status (*batch_norm_backward)(const char *op, const igi_bn_bwd *p);
    /* Class loss forward: per-position loss into loss (dtype c->dt, stride 2; NULL for a
     * reduced loss), log-sum-exp into lse (f64, stride 3; NULL when not saved); for a
     * reduced loss (total non-NULL: one element of c->dt) total = sum of the positions'
     * losses (ignored ones 0) / div, accumulated in double through pos (npos doubles of
     * device scratch). */
    ig_status (*class_loss)(const char *op, const igi_ce *c, const void *x, const void *target, void *loss,
                            double *lse, double *pos, void *total, double div);
    /* Class loss backward: gin (stride 4, gis) from g (stride 2) times scale (1/count for a
     * mean, else 1); lse as saved (fused). */
    ig_status (*class_loss_backward)(const char *op, const igi_ce *c, const void *x, const void *target,
                                     const void *g, const double *lse, void *gin, double scale);
    ig_status (*optim_step)(const char *op, const igi_optim_step *s);
    /* Pointwise losses (enum igi_pw_kind) elementwise, no reduction: operands (loss, x, y)
     * of one float dtype; beta: smooth_l1's. */
    ig_status (*pointwise_loss)(const char *op, int kind, const igi_ew *e, double beta);
    /* Their gradient with respect to x (wrt_target false) or y: operands (gin, g, x, y). */
    ig_status (*pointwise_loss_backward)(const char *op, int kind, const igi_ew *e, double beta, bool wrt_target);
    ig_status (*layer_norm)(const char *op, const igi_ln *p);
    ig_status (*layer_norm_backward)(const char *op, const igi_ln *p);
    /* Dropout's keep mask (n u8, contiguous): element i is kept (1) when word i of the
     * Philox4x32-10 reservation (key seed, counter start + i/4, word i%4; core/rng.c) is
     * >= threshold: the CPU's mask bit for bit. */
    ig_status (*dropout_mask)(const char *op, int64_t n, uint64_t seed, uint64_t start, double threshold,
                              uint8_t *mask);
    /* data[0] = data[1] * (data[2] != 0 ? scale : 0): operands (out, a, u8 mask). */
    ig_status (*mask_apply)(const char *op, const igi_ew *e, double scale);
    /* gemm for f32 under fp16 autocast: amp is IG_AMP_FP16 (bf16 autocast converts f32
     * operands to IG_BF16 in core and calls gemm); the operands are rounded to half (to
     * nearest even) and multiplied with f32 accumulation into the f32 C. */
    ig_status (*gemm_amp)(const char *op, int amp, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                          const float *A, int64_t lda, const float *B, int64_t ldb, double beta, float *C,
                          int64_t ldc);
    /* Gradient unscaling for dynamic loss scaling (optim/scaler.c): g[i] *= inv_scale over
     * n contiguous f32 elements, and *found_inf (device memory, an int the caller zeroed)
     * set to 1 when any result is inf or NaN. Several calls may share one flag. */
    ig_status (*amp_unscale)(const char *op, float *g, int64_t n, float inv_scale, int *found_inf);
    /* Synchronised batch norm (igi_bn_sums above). batch_norm_sums: one kind of this
     * process's sums. batch_norm_apply: batch_norm's training forward with the group's
     * statistics given (stats: [2C] f64 on the device, the mean then the biased variance)
     * instead of computed: y, mean / invstd, and the running stats updated with the
     * unbiased variance for the group's count cnt (> 1). batch_norm_backward_apply:
     * batch_norm_backward in training with the sums given (sums: [4C] f64 on the device:
     * this process's sum(g), sum(g * xhat), then the group's): dw / db from this process's,
     * dx from the group's with p->cnt the group's count. */
    ig_status (*batch_norm_sums)(const char *op, int kind, const igi_bn_sums *p);
    ig_status (*batch_norm_apply)(const char *op, const igi_bn *p, const double *stats, double cnt);
    ig_status (*batch_norm_backward_apply)(const char *op, const igi_bn_bwd *p, const double *sums);
    /* Gather: out (contiguous, index's shape, dtype g->dt, any dtype) from t and index. */
    ig_status (*gather)(const char *op, const igi_gather *g, const void *t, const void *index, void *out);
    /* Its gradient (f32 / f64): gin (contiguous, t's shape, fully written) = zeros with gout
     * added at the gathered positions, each element summing its contributions in index's
     * row-major order (the CPU's scatter order, no atomics). */
    ig_status (*gather_backward)(const char *op, const igi_gather *g, const void *gout, const void *index,
                                 void *gin);

    /* Page-locked ("pinned") host memory, for the loader's pin_memory (core/alloc.c caches
     * it; NULL entries: the device has none, and pinned requests get ordinary memory).
     * host_alloc returns NULL (no error set) when it cannot; each block comes with an event
     * (event_new, made once per block and cached with it) that tracks the last
     * asynchronous copy out of the block. */
    void *(*host_alloc)(size_t nbytes);
    void (*host_free)(void *p);
    ig_status (*event_new)(void **event);
    void (*event_free)(void *event);
    /* memcpy_h2d from page-locked src: the copy is only enqueued on the stream (later work
     * on the stream sees the bytes, the host does not wait), then event is recorded after
     * it, so src must not be written until host_wait(event) has returned. */
    ig_status (*memcpy_h2d_async)(void *dst, const void *src, size_t nbytes, void *event);
    /* Blocks the calling thread (any thread) until the work recorded by event's last
     * recording is done; at once when it was never recorded. */
    ig_status (*host_wait)(void *event);
} igi_backend;

/* Installs dev's table (called by the backend at init; tests may install a stand-in).
 * dev must not be IG_CPU. Replaces any earlier table. */
void igi_backend_register(ig_device dev, const igi_backend *table);
/* dev's table, initialising its backend on first use; NULL with an IG_ERR_DEVICE error
 * naming op when the build or the machine has no such device. Not for IG_CPU. */
const igi_backend *igi_backend_get(const char *op, ig_device dev);
/* The registered table or NULL, without initialising anything or setting an error (for
 * paths that only run once a tensor of dev exists, such as freeing). */
const igi_backend *igi_backend_peek(ig_device dev);
/* Lower-case device name, for messages: "cpu", "cuda". */
const char *igi_device_name(ig_device dev);
/* Sets "<op>: not implemented on <device>" (IG_ERR_DEVICE) and returns the status. */
ig_status igi_error_not_implemented(const char *op, ig_device dev);

/* Fills e for the operands ops[0..nops) (ops[0] the output, the others broadcastable to
 * it), as igi_iter_run would walk them. False when the output is empty (nothing to do). */
bool igi_ew_make(ig_tensor *const *ops, int nops, igi_ew *e);
/* For ops with a device kernel: fails (naming op and both devices) if a and b are on
 * different devices. Unlike igi_check_same_device, a shared non-CPU device is fine. */
bool igi_check_same_device_any(const char *op, const ig_tensor *a, const ig_tensor *b);
/* dev's table when it has the kernel entry FIELD, else NULL with the error set (no such
 * device, or "<op>: not implemented on cuda"). E.g. IGI_BACKEND_WITH(op, dev, binary). */
#define IGI_BACKEND_WITH(op, dev, FIELD) igi_backend_with((op), (dev), offsetof(igi_backend, FIELD))
const igi_backend *igi_backend_with(const char *op, ig_device dev, size_t entry_offset);

/* Errors, for backends compiled without tensor_impl.h (the same function). */
ig_status igi_error(ig_status st, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef IGNIS_CUDA
/* cuda/backend.cu: checks for a device and registers the CUDA table. On failure returns
 * an error status with the cause in msg ("cudaGetDeviceCount: ...") and registers
 * nothing. Called once, by igi_backend_get. */
ig_status igi_cuda_init(char *msg, size_t cap);
/* TF32 for f32 GEMMs (cuBLAS math mode); off by default for exact fp32. */
void igi_cuda_set_tf32(bool on);
/* cuda/conv_igemm.cu: which path f32 conv2d takes on CUDA. AUTO: the implicit GEMM where
 * it applies (groups 1, sizes within its index limits), on tensor cores under autocast
 * (sm_80+), unless the environment has IGNIS_CUDA_CONV=im2col, =simt or =cudnn (read once;
 * simt: the implicit GEMM's SIMT kernels even under autocast); IM2COL: im2col + cuBLAS always;
 * IGEMM: the implicit GEMM where it applies (tensor cores under autocast), whatever the
 * environment says; SIMT: the implicit GEMM where it applies, SIMT kernels only; CUDNN:
 * cuDNN (cuda/cudnn.cu, libcudnn loaded at first use; an error when it cannot be) for f32
 * without autocast, f64 and bf16, ignis's paths for the rest. Returns the previous mode.
 * For tests (every path) and experiments; not synchronised with convolutions in flight on
 * other threads. */
enum { IGI_CUDA_CONV_AUTO = 0, IGI_CUDA_CONV_IM2COL = 1, IGI_CUDA_CONV_IGEMM = 2, IGI_CUDA_CONV_SIMT = 3,
       IGI_CUDA_CONV_CUDNN = 4 };
int igi_cuda_conv_force(int mode);
/* cuda/profile.cu: backend calls timed so far by IGNIS_CUDA_PROFILE=1 (0 when it is off). */
int64_t igi_cuda_profiled_calls(void);
/* The process-wide compute stream (a cudaStream_t) for C code outside cuda/'s .cu files
 * (cuda/nccl.c orders its communication stream against it); NULL before igi_cuda_init. */
void *igi_cuda_stream(void);
#endif

#ifdef __cplusplus
}
#endif

#endif
