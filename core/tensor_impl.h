/*
 * core/tensor_impl.h — the inside of a tensor, shared by core/, autograd/ and (later) the
 * device backends. Never installed.
 *
 * Invariants (read these before touching any op):
 *  - A tensor is (storage, offset, ndim, shape, strides, dtype, device). offset and strides
 *    count elements, not bytes. Strides may be 0 (expand) but never negative. A tensor
 *    never reads outside [offset, offset + max reachable index] of its storage; views check
 *    this when they are made.
 *  - Storage is refcounted (atomic: loader threads share it). Its bytes come from the
 *    size-class caching allocator of its device (core/alloc.c).
 *  - A tensor is either *scoped* (made while a scope was open: its header lives in the
 *    thread's scope arena and the scope releases it at ig_scope_end) or *heap* (malloc'd
 *    header with its own refcount; ig_tensor_free drops one reference).
 *  - A tensor produced by a recorded op has node != NULL; a leaf has node == NULL. The node
 *    is owned by its output tensor: it lives in the same arena (scoped) or is freed with it
 *    (heap). A node references its inputs and saved tensors; heap ones are retained by the
 *    node, scoped ones are guaranteed alive because a scope only ever holds tensors of its
 *    own or enclosing scopes.
 *  - .grad is always a heap tensor, owned (retained) by its leaf.
 */
#ifndef IGNIS_CORE_TENSOR_IMPL_H
#define IGNIS_CORE_TENSOR_IMPL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "ops.h"
#include "tensor.h"

/* ---- internal assert: invariants only, never user errors ------------------------------ */
#define IG_ASSERT(cond)                                                                   \
    do {                                                                                  \
        if (!(cond)) igi_assert_fail(__FILE__, __LINE__, #cond);                          \
    } while (0)
_Noreturn void igi_assert_fail(const char *file, int line, const char *expr);

/* ---- errors --------------------------------------------------------------------------- */
/* Sets the thread's error (status + printf-style message); returns status for chaining. */
ig_status igi_error(ig_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For a NULL tensor argument: sets "op: argument NAME is NULL" only if no error is pending
 * (so chains report their first failure). Returns IG_ERR_ARG. */
ig_status igi_error_null(const char *op, const char *argname);
/* In an op returning a tensor: fail with igi_error_null if argument arg is NULL. */
#define IGI_NULL_CHECK(op, arg)             \
    do {                                    \
        if (!(arg)) {                       \
            igi_error_null(op, #arg);       \
            return NULL;                    \
        }                                   \
    } while (0)

/* ---- opening a user's file (core/file.c) ------------------------------------------------ */
struct stat;
/* Opens path for reading if it is a regular file (filling *st): the descriptor, or -1 with
 * an IG_ERR_IO error "op: path: cannot open: why" / "...: not a regular file (a FIFO)"
 * (no error set when op is NULL). A FIFO or device is refused without blocking in open().
 * On failure errno is open()'s or fstat()'s, or 0 when the path opened but is not a
 * regular file (then *st describes it and igi_file_kind(st) names it). */
int igi_open_regular(const char *op, const char *path, struct stat *st);
/* The same as a FILE* opened "rb" (NULL on failure, errors as above). */
FILE *igi_fopen_regular(const char *op, const char *path, struct stat *st);
/* " (a FIFO)", " (a directory)", ... for a file that is not regular; "" otherwise. */
const char *igi_file_kind(const struct stat *st);
/* strerror_r(err) into buf (cap bytes), or "error N" when it has no text. */
void igi_errno_text(int err, char *buf, size_t cap);

/* ---- numbers as text, whatever the host's locale (core/locale.c) ------------------------- */
/* strtod and the printf family in the "C" locale on this thread (restored afterwards), so
 * "1.5" parses and 0.1 prints as "0.1" even after a host's setlocale(LC_ALL, "de_DE.UTF-8").
 * Every number the library parses or formats (files, metadata, messages) uses these.
 * igi_strtod sets errno to 0 or strtod's own (ERANGE). */
double igi_strtod(const char *s, char **end);
int igi_vsnprintf_c(char *buf, size_t cap, const char *fmt, va_list ap);
int igi_snprintf_c(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int igi_fprintf_c(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- hot loops: an AVX2 clone picked at load time ----------------------------------------
 * The build targets baseline x86-64 (SSE2), so compiler-vectorised loops use 128-bit
 * vectors. IGI_HOT marks a kernel to be compiled twice, for AVX2 and for the baseline,
 * and chosen once by the loader (GCC/clang function multiversioning, an ifunc) on what the
 * CPU supports. The AVX2 clone may not use FMA (the "avx2" target does not include it; GCC
 * in ISO C mode does not contract a*b+c anyway), and no reduction is reassociated without
 * -ffast-math, so both clones compute bitwise the same results. IGI_NO_CLONES (or a target
 * other than x86-64 with glibc) gives the plain function. */
#if defined(__x86_64__) && defined(__GLIBC__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(IGI_NO_CLONES)
#define IGI_HOT __attribute__((target_clones("avx2", "default")))
#else
#define IGI_HOT
#endif

/* ---- storage and allocator ------------------------------------------------------------ */
/* Pinned storage (igi_storage_new_pinned) is IG_CPU storage whose bytes are page-locked
 * memory of the accelerator pinned_by (IG_CPU: ordinary memory), so copies from it to that
 * device run asynchronously (core/device.c). event (pinned only; the backend's, cached
 * with the block) is recorded after each such copy: before the bytes are written again
 * or freed, igi_storage_host_wait must return. The loader (data/loader.c) is the only
 * maker of pinned storage and does that wait before refilling a batch buffer. */
/* vrange: device storage of integers filled by one upload from the host (ig_to,
 * igi_to_device_copy) knows the range [vmin, vmax] of its values, found on the host while
 * they were there, so a consumer that must validate values (cross-entropy's targets) can do
 * it without reading the device back. Every write into existing storage clears it
 * (igi_storage_written): ig_copy_, ig_fill_, in-place adds, the dist collectives. */
typedef struct igi_storage {
    atomic_int refcount;
    ig_device device;
    size_t nbytes; /* usable bytes at data */
    void *data;
    ig_device pinned_by;
    void *event;
    bool vrange;
    int64_t vmin, vmax;
} igi_storage;

/* s is about to be written in place: its known value range no longer holds. */
static inline void igi_storage_written(igi_storage *s) {
    if (s) s->vrange = false;
}

/* Caching allocator (core/alloc.c): sizes are rounded to size classes; freed blocks are
 * kept per class for reuse. igi_alloc returns 64-byte aligned memory or NULL (no error set). */
void *igi_alloc(ig_device dev, size_t nbytes);
void igi_free(ig_device dev, void *p, size_t nbytes);

/* New storage of nbytes (refcount 1), or NULL with an error naming op. */
igi_storage *igi_storage_new(const char *op, ig_device dev, size_t nbytes);
void igi_storage_retain(igi_storage *s);
/* Releasing pinned storage waits for its last asynchronous copy before the block goes back
 * to the cache. */
void igi_storage_release(igi_storage *s);
/* IG_CPU storage of nbytes in page-locked memory of accelerator dev (its backend's
 * host_alloc, through a size-class cache like the others). When dev's backend is not
 * available or has no pinned memory, ordinary storage (igi_storage_new's), with no error
 * left set: pinning is an optimisation, never a requirement. NULL with an error naming op
 * only when out of memory. */
igi_storage *igi_storage_new_pinned(const char *op, ig_device dev, size_t nbytes);
/* Waits until no asynchronous copy may still read s's bytes (IG_OK at once for ordinary
 * storage); an error names op and the runtime's failure. */
ig_status igi_storage_host_wait(const char *op, const igi_storage *s);
/* Live / cached bytes and OS allocations of the pinned-memory cache (for tests). */
void igi_pinned_mem_stats(ig_mem_stats *out);

/* t += s in place, elementwise (core/ops/binary.c): no autograd, no new tensor; on a device
 * one kernel (a counter such as batch norm's num_batches_tracked costs one launch, not an
 * add and a copy). IG_OK or the error, naming op. */
ig_status igi_add_scalar_inplace(const char *op, ig_tensor *t, double s);

/* ---- autograd nodes ------------------------------------------------------------------- */
typedef struct igi_node igi_node;
/* Computes the gradients of the node's inputs from gout (the gradient of its output, same
 * shape as the output). gin[i] is set only where igi_needs_grad(node->inputs[i]); leave the
 * others NULL. Runs with grad mode off inside a scope; the results may have any strides and
 * must have the input's shape and dtype. Returns IG_OK or an error status. */
typedef ig_status (*igi_backward_fn)(igi_node *node, ig_tensor *gout, ig_tensor **gin);

#define IGI_NODE_SAVED 4
#define IGI_NODE_IATTR (2 * IG_MAX_DIMS)
#define IGI_NODE_DATTR 4

struct igi_node {
    int op;                     /* enum igi_op, for names in messages */
    igi_backward_fn backward;
    uint64_t seq;               /* creation order: backward runs in decreasing seq */
    ig_tensor *out;             /* the tensor this node produced (weak) */
    ig_tensor *grad_accum;      /* scratch for ig_backward: gradient of out so far */
    uint32_t visit_mark;        /* scratch for ig_backward's traversal */
    int n_inputs;
    ig_tensor **inputs;         /* n_inputs entries, stored right after the node */
    ig_tensor *saved[IGI_NODE_SAVED];
    int64_t iattr[IGI_NODE_IATTR];
    double dattr[IGI_NODE_DATTR];
    bool heap;                  /* malloc'd (output is a heap tensor) */
    uint8_t amp;                /* ig_amp the op ran under (matmul, conv2d); its backward
                                 * rounds its GEMM operands the same way */
    uint8_t saved_weak;         /* bit i: saved[i] is the node's own output, not retained */
};

/* ---- tensor ---------------------------------------------------------------------------- */
struct ig_tensor {
    igi_storage *storage;
    int64_t offset;
    int64_t shape[IG_MAX_DIMS];
    int64_t strides[IG_MAX_DIMS];
    int ndim;
    ig_dtype dtype;
    ig_device device;
    bool requires_grad;
    bool scoped;
    bool grad_temp;             /* made inside ig_backward for a gradient (autograd/engine.c):
                                 * refcount then counts the engine's references, and the
                                 * storage is dropped early when it reaches 0 */
    int refcount;               /* heap tensors; scoped grad_temp ones: see grad_temp */
    ig_tensor *grad;            /* heap tensor owned by this leaf, or NULL */
    igi_node *node;             /* producer, NULL for leaves */
    ig_tensor *next;            /* scoped: the scope's list; heap: the release worklist */
    struct igi_grad_hook *grad_hook; /* leaves: owned, freed with the tensor (engine.c) */
};

/* A new tensor header with no storage, in the current scope or on the heap. shape may be
 * NULL when ndim == 0. Strides are set contiguous. NULL + error on OOM. */
ig_tensor *igi_tensor_header(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                             ig_device dev);
/* A new contiguous tensor with fresh (uninitialised) storage. */
ig_tensor *igi_tensor_new(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                          ig_device dev);
/* igi_tensor_new on the CPU with page-locked storage for uploads to accelerator dev
 * (igi_storage_new_pinned: ordinary memory where dev has none). */
ig_tensor *igi_tensor_new_pinned(const char *op, int ndim, const int64_t *shape, ig_dtype dt,
                                 ig_device dev);
/* A view header of t with the given geometry, sharing t's storage. */
ig_tensor *igi_tensor_view(const char *op, ig_tensor *t, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset);
/* Product of shape, or -1 if it overflows int64 (or any dim is negative). */
int64_t igi_numel(int ndim, const int64_t *shape);
void igi_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
bool igi_is_contiguous(const ig_tensor *t);
/* Pointer to element at storage offset t->offset (the tensor's first element). */
static inline char *igi_data(const ig_tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * ig_dtype_size(t->dtype);
}
/* Wraps a negative dim; -1 and an error (naming op) if out of range for ndim. */
int igi_wrap_dim(const char *op, int dim, int ndim);
/* Shape string "[a,b]" of an explicit shape. */
char *igi_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);

/* While the heap mode depth is > 0, new tensors are heap tensors even inside a scope (the
 * autograd engine makes leaf .grad buffers this way). Nests. */
void igi_heap_mode(int delta);

/* ---- scopes (core/scope.c) ------------------------------------------------------------- */
/* Bump allocation in the current thread's scope arena (NULL if no scope is open or OOM). */
void *igi_scope_alloc(size_t nbytes);
bool igi_scope_active(void);
/* Registers a scoped tensor with the innermost scope so it is released at scope end. */
void igi_scope_track(ig_tensor *t);
/* The innermost scope's newest tensor (its list runs newest first, through ->next), or
 * NULL; tensors made after a call are the list entries before the one it returned. */
ig_tensor *igi_scope_newest(void);
/* Releases what a tensor holds (storage, node references, grad); used by scope end and by
 * the last ig_tensor_free. Does not free the header. */
void igi_tensor_finalize(ig_tensor *t);

/* ---- grad mode and recording (core/graph.c) -------------------------------------------- */
bool igi_grad_enabled(void);
void igi_set_grad_enabled(bool on); /* internal: engine and gradcheck */
int igi_no_grad_depth_add(int delta);
/* True if t takes part in differentiation: it requires grad (leaf) or has a node. */
static inline bool igi_needs_grad(const ig_tensor *t) {
    return t && (t->requires_grad || t->node);
}
/* True if recording is on and any of the n inputs needs grad. */
bool igi_should_record(ig_tensor *const *inputs, int n);
/* Records a node producing out from inputs (call after out is fully computed). Sets
 * out->requires_grad. Returns the node (to fill saved/attrs) or NULL with an error (OOM:
 * then out is still valid but the caller must fail). Call only if igi_should_record. */
igi_node *igi_record(int op, igi_backward_fn backward, ig_tensor *out, ig_tensor *const *inputs,
                     int n_inputs);
/* The usual tail of an op: records a node if igi_should_record(inputs), and returns out
 * (its node, if recorded, is out->node, to fill saved tensors and attrs), or NULL on OOM. */
ig_tensor *igi_finish(int op, igi_backward_fn backward, ig_tensor *out, ig_tensor *const *inputs,
                      int n_inputs);
/* Saves a tensor on a node for backward (retained if heap). slot < IGI_NODE_SAVED. Saving the
 * node's own output is fine: it is held weakly (the output owns the node), so no cycle. */
void igi_node_save(igi_node *node, int slot, ig_tensor *t);
/* Frees a heap node's references (the node memory too for heap nodes). */
void igi_node_release(igi_node *node);

/* ---- autocast (core/ops/amp.c) --------------------------------------------------------- */
/* The thread's autocast mode, and a raw set returning the previous one (no validation: the
 * public ig_autocast_set checks; backward functions restore a node's mode with it). */
ig_amp igi_autocast_mode(void);
ig_amp igi_autocast_exchange(ig_amp mode);
/* The rounding a GEMM-based op applies to an operand of dtype dt: IG_AMP_FP16 for f32
 * under fp16 autocast, else IG_AMP_OFF (bf16 autocast converts f32 operands to IG_BF16
 * before the op runs, and f64 is never rounded). */
static inline ig_amp igi_amp_for(ig_dtype dt) {
    return dt == IG_F32 && igi_autocast_mode() == IG_AMP_FP16 ? IG_AMP_FP16 : IG_AMP_OFF;
}
/* x rounded to the nearest bfloat16 / IEEE half value (ties to even), returned as a float.
 * NaN stays NaN (quiet), infinities and the sign of zero are kept; fp16 overflows to inf
 * (|x| >= 65520) and keeps subnormals (multiples of 2^-24). */
float igi_round_bf16(float x);
/* bf16 bits <-> f32 (core/tensor.c): narrowing rounds to nearest even, NaN stays NaN. */
uint16_t igi_bf16_from_f32(float x);
float igi_bf16_to_f32(uint16_t h);
/* core/ops/bf16.c: bf16 through f32. igi_bf16_fallback: t is bf16 and its device has no
 * native kernel for group (enum igi_bf16_group; always on the CPU), so the op composes
 * to_bf16(op(to_f32(...))). igi_bf16_widen: ig_to_dtype(t, IG_F32) for a bf16 t, else t;
 * igi_bf16_narrow: ig_to_dtype(t, IG_BF16) for an f32 t, else t (both pass NULL through,
 * both recorded). igi_bf16_enter / leave bracket the inner f32 op with autocast off. */
bool igi_bf16_fallback(const ig_tensor *t, unsigned group);
ig_tensor *igi_bf16_widen(ig_tensor *t);
ig_tensor *igi_bf16_narrow(ig_tensor *t);
ig_amp igi_bf16_enter(void);
void igi_bf16_leave(ig_amp prev);
/* In an op taking one tensor T: when T is bf16 without group's kernel on its device, return
 * the rounded result of CALL, an expression of IGI_W (T widened to f32), with autocast off. */
#define IGI_BF16_VIA_F32(T, GROUP, CALL)                        \
    do {                                                        \
        if (igi_bf16_fallback((T), (GROUP))) {                  \
            ig_tensor *IGI_W = igi_bf16_widen(T);               \
            if (!IGI_W) return NULL;                            \
            ig_amp igi_prev_ = igi_bf16_enter();                \
            ig_tensor *igi_r_ = (CALL);                         \
            igi_bf16_leave(igi_prev_);                          \
            return igi_bf16_narrow(igi_r_);                     \
        }                                                       \
    } while (0)
float igi_round_fp16(float x);
/* dst[i] = src[i] rounded for mode (IG_AMP_FP16, or a copy for IG_AMP_OFF: the modes
 * igi_amp_for answers); dst may equal src. */
void igi_round_f32(ig_amp mode, const float *src, float *dst, int64_t n);
/* A contiguous heap copy of t (f32, CPU, any strides) with every element rounded for mode;
 * no autograd. Free it with ig_tensor_free. NULL + error naming op on OOM. */
ig_tensor *igi_amp_round_copy(const char *op, const ig_tensor *t, ig_amp mode);

/* ---- gradient-ready hooks (autograd/engine.c) ----------------------------------------- */
/* A per-leaf callback for data-parallel training: ig_backward calls fn(leaf, ctx) once per
 * backward pass that reaches leaf, as soon as leaf's gradient is final for that pass (the
 * engine counts the leaf's incoming edges among the nodes it collected and calls fn when
 * the last one has been processed, after its contribution was added to leaf->grad; also
 * when no edge delivered a gradient). fn runs on the thread of ig_backward with grad mode
 * off and must not run autograd itself. A leaf the pass does not reach gets no call. */
typedef void (*igi_grad_ready_fn)(ig_tensor *leaf, void *ctx);
typedef struct igi_grad_hook {
    igi_grad_ready_fn fn;
    void *ctx;
    uint64_t pass;   /* the backward pass `pending` belongs to */
    int64_t pending; /* incoming edges of that pass not yet processed */
} igi_grad_hook;
/* Sets leaf's hook (fn NULL removes it). IG_ERR_ARG if leaf is not a leaf; IG_ERR_NOMEM. */
ig_status igi_set_grad_ready_hook(ig_tensor *leaf, igi_grad_ready_fn fn, void *ctx);

/* ---- synchronised batch norm (core/ops/norm.c) ------------------------------------------ */
/* Batch norm whose batch statistics span a group of processes (data-parallel sync BN).
 * sum(ctx, vals, n) replaces vals[0..n) by their sum over the group (every member calls it
 * in the same order) and returns IG_OK, or an error status with the error set. In training
 * igi_batch_norm_sync reduces per-channel sums and the element count (then squared
 * deviations from the global mean) in forward, and the per-channel sums of g and g*xhat in
 * backward, so x's gradient is the one of the whole group's batch; weight and bias get this
 * member's own part (the data-parallel gradient sum adds the rest). sync NULL, or eval mode:
 * exactly ig_batch_norm. sync is referenced by the recorded node: it must outlive the graph. */
typedef struct igi_bn_sync {
    ig_status (*sum)(void *ctx, double *vals, int64_t n);
    void *ctx;
} igi_bn_sync;
ig_tensor *igi_batch_norm_sync(ig_tensor *x, ig_tensor *running_mean, ig_tensor *running_var,
                               ig_tensor *weight, ig_tensor *bias, bool training, double momentum,
                               double eps, const igi_bn_sync *sync);

/* ---- op table (core/op_table.c) -------------------------------------------------------- */
enum igi_op {
    IGI_OP_NONE = 0,
    /* views and copies */
    IGI_OP_VIEW, IGI_OP_PERMUTE, IGI_OP_SLICE, IGI_OP_EXPAND, IGI_OP_CONTIGUOUS,
    IGI_OP_TO_DTYPE, IGI_OP_SELECT, IGI_OP_TO_DEVICE,
    /* binary */
    IGI_OP_ADD, IGI_OP_SUB, IGI_OP_MUL, IGI_OP_DIV, IGI_OP_ADD_SCALAR, IGI_OP_MUL_SCALAR,
    IGI_OP_WHERE,
    /* unary */
    IGI_OP_NEG, IGI_OP_POW, IGI_OP_EXP, IGI_OP_LOG, IGI_OP_SQRT, IGI_OP_ABS, IGI_OP_CLAMP,
    IGI_OP_RELU, IGI_OP_LEAKY_RELU, IGI_OP_SIGMOID, IGI_OP_TANH, IGI_OP_GELU, IGI_OP_SILU,
    /* reductions */
    IGI_OP_SUM, IGI_OP_MEAN, IGI_OP_VAR, IGI_OP_MAX, IGI_OP_MIN,
    /* linear algebra, softmax */
    IGI_OP_MATMUL, IGI_OP_SOFTMAX, IGI_OP_LOG_SOFTMAX,
    /* joining, indexing */
    IGI_OP_CAT, IGI_OP_STACK, IGI_OP_INDEX_SELECT, IGI_OP_GATHER,
    /* neural-network functions */
    IGI_OP_CONV2D, IGI_OP_MAX_POOL2D, IGI_OP_AVG_POOL2D, IGI_OP_ADAPTIVE_AVG_POOL2D,
    IGI_OP_BATCH_NORM, IGI_OP_LAYER_NORM, IGI_OP_DROPOUT, IGI_OP_EMBEDDING,
    /* losses */
    IGI_OP_CROSS_ENTROPY, IGI_OP_NLL_LOSS, IGI_OP_MSE_LOSS, IGI_OP_L1_LOSS,
    IGI_OP_SMOOTH_L1_LOSS, IGI_OP_BCE_WITH_LOGITS,
    IGI_OP_COUNT
};
/* The op's public name ("ig_add"), for messages. */
const char *igi_op_name(int op);

/* ---- strided elementwise iteration (core/iter.c) -------------------------------------- */
/* Up to IGI_ITER_MAX operands, operand 0 the output. Every operand is viewed with the
 * output's shape (broadcast operands have stride 0 on expanded dims). Adjacent dims are
 * merged where every operand allows, and the kernel is called once per innermost run with
 * byte strides: fn(ptrs, strides, n, ctx). */
#define IGI_ITER_MAX 4
typedef void (*igi_loop_fn)(char **ptrs, const int64_t *strides, int64_t n, void *ctx);
/* Runs fn over out's shape. ops[0] == out; ops[i] must be broadcastable to out. */
void igi_iter_run(ig_tensor *const *ops, int nops, igi_loop_fn fn, void *ctx);
/* The same, split across the thread pool when out is large: fn runs concurrently on
 * disjoint runs, so it must only write its output elements (not accumulate into ctx).
 * Falls back to the serial loop when out has an expanded (stride-0) dim. */
void igi_iter_run_parallel(ig_tensor *const *ops, int nops, igi_loop_fn fn, void *ctx);
/* Broadcast shape of two shapes; false (and error naming op with both shapes) if not. */
bool igi_broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                         int *nout, int64_t *out);
/* Strides of t viewed with shape (ndim, shape): 0 on broadcast dims. t must broadcast. */
void igi_broadcast_strides(const ig_tensor *t, int ndim, const int64_t *shape, int64_t *strides);

/* Sum of g over broadcast dims so the result has shape (ndim, shape) (autograd helper for
 * broadcasting ops). Returns g itself if the shapes already match. */
ig_tensor *igi_sum_to(ig_tensor *g, int ndim, const int64_t *shape);

/* ---- dtype dispatch --------------------------------------------------------------------- */
/* Reads/writes one element as double (slow path: printing, conversion, tests). */
double igi_load(ig_dtype dt, const void *p);
void igi_store(ig_dtype dt, void *p, double v);

/* Common argument checks: non-NULL, CPU (for now), dtype sets. Set an error naming op. */
/* t is f32 or f64 (bf16 is refused, naming ig_to_dtype: the op has no bf16 path). */
bool igi_check_float(const char *op, const ig_tensor *t);
/* t is f32, f64 or bf16 (ops with a bf16 path). */
bool igi_check_float_bf16(const char *op, const ig_tensor *t);
bool igi_check_same_dtype(const char *op, const ig_tensor *a, const ig_tensor *b);
/* Same device, and that device is the CPU: for ops with no device kernels. Errors:
 * "op: tensors are on different devices (cpu and cuda)", "op: not implemented on cuda". */
bool igi_check_same_device(const char *op, const ig_tensor *a, const ig_tensor *b);
/* t is on the CPU, else "op: not implemented on <device>". */
bool igi_check_cpu(const char *op, const ig_tensor *t);

/* ---- devices (core/device.c, core/backend.c, core/backend_impl.h) ------------------------ */
/* A contiguous heap copy of t (same shape and dtype, no autograd) on dev: the caller frees
 * it. Any pair of devices, the same one included. NULL + error naming op. */
ig_tensor *igi_to_device_copy(const char *op, const ig_tensor *t, ig_device dev);
/* Fills out (contiguous, t's shape and dtype, any device) with t's elements: one transfer
 * when t is contiguous (core/device.c). */
ig_status igi_copy_across(const char *op, ig_tensor *out, const ig_tensor *t);
/* Sets the element at a flat row-major index of t's logical shape, on any device (slow:
 * gradcheck's perturbations). */
ig_status igi_tensor_set(ig_tensor *t, int64_t flat_index, double v);
/* ig_full on any device. */
ig_tensor *igi_full_on(const char *op, int ndim, const int64_t *shape, ig_dtype dt, double v,
                       ig_device dev);
/* dst += src (src broadcastable to dst; same dtype and device; float dtypes). No autograd. */
ig_status igi_add_into(const char *op, ig_tensor *dst, ig_tensor *src);

/* ---- random numbers (core/rng.c) -------------------------------------------------------- */
/* Reserves the default generator's counters for nwords 32-bit words (ceil(nwords/4)
 * counters) and advances its offset past them. Returns the first counter and sets *seed to
 * the key: word i of the reservation is out[i % 4] of ig_philox4x32(*seed, 0, start + i/4). */
uint64_t igi_rng_reserve(int64_t nwords, uint64_t *seed);

/* ---- threads (core/parallel.c) --------------------------------------------------------- */
/* ig_get_num_threads, for internal callers. */
int igi_num_threads(void);
/* Calls fn on disjoint ranges [begin, end) covering [0, n), each of at least grain items
 * (except when n < grain), on up to ig_get_num_threads() threads (the caller included), and
 * returns when all are done. fn must only write what its range owns (split outputs, never
 * one floating-point accumulation), so results are the same for any thread count. A call
 * made while the pool is busy (nested, or from another thread) runs fn(0, n) serially. */
void igi_parallel_for(int64_t n, int64_t grain, void (*fn)(int64_t begin, int64_t end, void *ctx),
                      void *ctx);
/* C[M,N] (row-major, ldc) = op(A)[M,K] @ op(B)[K,N] + beta*C, f32 or f64, op = transpose
 * when ta / tb; sizes >= 1 and < 2^31 (core/gemm.c). OpenBLAS runs single-threaded; large
 * products are split into blocks of rows or columns of C (chosen from the shape alone, so
 * values never depend on the thread count) spread over the pool. f32 on AVX-512 CPUs runs
 * ignis's own kernel (core/sgemm512.c) for most shapes; M, N or K may also be 0. */
void igi_gemm(ig_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
              const void *B, int64_t ldb, double beta, void *C, int64_t ldc);
/* Sets OpenBLAS to one thread (once per process; igi_gemm and ig_set_num_threads call it). */
void igi_blas_single_thread(void);

#endif
