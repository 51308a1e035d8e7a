/*
 * core/tensor.h — the public tensor type of ignis: dtypes, devices, creation, views,
 * memory scopes, errors and the random number generator.
 *
 * A tensor is a strided view (shape, strides, offset; up to IG_MAX_DIMS dims) over a
 * refcounted storage. Tensors made while a scope is open belong to that scope and are
 * released together by ig_scope_end; tensors made with no scope open are heap tensors,
 * released with ig_tensor_free. Every function that can fail returns NULL (or a negative
 * ig_status) and leaves a message naming the function and the cause in ig_last_error().
 * A NULL tensor argument makes a function fail without replacing an earlier message, so a
 * chained expression reports its first failure.
 */
#ifndef IGNIS_CORE_TENSOR_H
#define IGNIS_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef IG_API
#define IG_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define IG_MAX_DIMS 8

typedef enum ig_dtype {
    IG_F32 = 0, /* float, the default */
    IG_F64,     /* double */
    IG_I32,     /* int32_t */
    IG_I64,     /* int64_t: indices and class labels */
    IG_U8,      /* uint8_t: images, masks */
    IG_BF16,    /* bfloat16 (uint16_t storage: the top half of an f32 pattern): autocast's
                 * activations; ops that take it compute in f32 and round to nearest even */
    IG_DTYPE_COUNT
} ig_dtype;

typedef enum ig_device {
    IG_CPU = 0,
    IG_CUDA,
    IG_DEVICE_COUNT
} ig_device;

/* Mixed-precision mode of autocast (autograd/autograd.h: ig_autocast_set). Products
 * accumulate in f32 in every mode. */
typedef enum ig_amp {
    IG_AMP_OFF = 0, /* plain f32 */
    IG_AMP_BF16,    /* ig_matmul / ig_conv2d convert f32 operands to IG_BF16 and return bf16 */
    IG_AMP_FP16     /* operands rounded to IEEE half (5 exponent bits, 11 significant bits),
                     * f32 results */
} ig_amp;

typedef enum ig_status {
    IG_OK = 0,
    IG_ERR_ARG = -1,       /* a bad argument: NULL, out-of-range dim or value */
    IG_ERR_SHAPE = -2,     /* shapes that do not fit together */
    IG_ERR_DTYPE = -3,     /* a dtype the op does not take, or two that differ */
    IG_ERR_NOMEM = -4,     /* out of memory */
    IG_ERR_IO = -5,        /* a file could not be read or written */
    IG_ERR_FORMAT = -6,    /* a file's content is not what it claims */
    IG_ERR_DEVICE = -7,    /* a device is missing or failed */
    IG_ERR_STATE = -8,     /* a call out of order (e.g. backward twice, scope mismatch) */
    IG_ERR_GRADCHECK = -9  /* ig_gradcheck found a mismatch */
} ig_status;

typedef struct ig_tensor ig_tensor;
typedef struct ig_scope ig_scope;

/* A name and a tensor: state dicts, checkpoints, optimizer state. */
typedef struct ig_named_tensor {
    const char *name;  /* owned by whoever produced the entry (documented there) */
    ig_tensor *tensor;
} ig_named_tensor;

/* Shape literal helper: ig_zeros(IG_DIMS(64, 784), IG_F32) passes ndim and the dims. */
#define IG_DIMS(...) \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* ---- errors ------------------------------------------------------------------------ */

/* The message of the last failure on this thread ("" if none). Valid until the next failure. */
IG_API const char *ig_last_error(void);
/* The status of the last failure on this thread (IG_OK if none since ig_clear_error). */
IG_API ig_status ig_last_status(void);
IG_API void ig_clear_error(void);
IG_API const char *ig_status_name(ig_status s);

/* ---- dtypes ------------------------------------------------------------------------ */

IG_API size_t ig_dtype_size(ig_dtype dt);
IG_API const char *ig_dtype_name(ig_dtype dt); /* "float32", "int64", ... */
IG_API bool ig_dtype_is_float(ig_dtype dt);

/* ---- scopes ------------------------------------------------------------------------ */

/* Opens a scope on this thread: every tensor (and autograd node) created until the matching
 * ig_scope_end belongs to it. Scopes nest. Returns NULL only when out of memory. */
IG_API ig_scope *ig_scope_begin(void);
/* Releases every tensor created since s began (ending inner scopes left open too) and
 * rewinds the scope arena. IG_ERR_STATE ("scope is not open on this thread"), changing
 * nothing, if s is not open on this thread: already ended (by itself or with an outer
 * scope) or begun on another thread. Handles are never reused, so a stale handle can not
 * end a newer scope; a handle is a token, not an address (never dereference it). */
IG_API ig_status ig_scope_end(ig_scope *s);
/* Promotes a scope tensor to a heap tensor that shares its storage, detached from the graph
 * (the caller owns it: ig_tensor_free). A heap tensor is retained and returned as is. */
IG_API ig_tensor *ig_keep(ig_tensor *t);

/* ---- memory ------------------------------------------------------------------------ */

typedef struct ig_mem_stats {
    int64_t live_bytes;   /* bytes held by live storages (size-class rounded) */
    int64_t cached_bytes; /* bytes freed into the cache, ready for reuse */
    int64_t os_allocs;    /* blocks ever requested from the OS */
    int64_t os_frees;     /* blocks ever returned to the OS */
} ig_mem_stats;

/* Counters of dev's caching allocator (IG_CPU or IG_CUDA; all zero for a device never used). */
IG_API void ig_mem_get_stats(ig_device dev, ig_mem_stats *out);
/* Returns cached blocks to the OS (for IG_CUDA: to the driver, cudaFree). */
IG_API void ig_mem_release_cached(ig_device dev);

/* ---- devices ----------------------------------------------------------------------- */
/* Tensors live on IG_CPU (the default for every creation function) or IG_CUDA. Ops need
 * all their tensor arguments on one device and run there; ops without a CUDA kernel fail
 * with IG_ERR_DEVICE ("ig_conv2d: not implemented on cuda") instead of computing
 * elsewhere. CUDA work is queued on one stream shared by all threads of the process;
 * anything that hands data to the host (ig_to to the CPU, ig_item, ig_tensor_get,
 * ig_tensor_to_buffer, ig_print) waits for it. ig_tensor_data refuses CUDA tensors. */

/* True when ignis was built with CUDA and a CUDA device can be used. When false,
 * ig_last_error() says why ("... ignis was built without CUDA", "... no CUDA device
 * (cudaGetDeviceCount: ...)"). The first call initialises the CUDA backend. */
IG_API bool ig_cuda_is_available(void);
/* Lets float32 GEMMs on CUDA — ig_matmul / ig_linear (cuBLAS) and ig_conv2d — use TF32
 * tensor cores (faster; operands rounded to 10 mantissa bits, sums in f32), as PyTorch's
 * allow_tf32 switches do. Autocast (bf16 / fp16) takes precedence where it is on. Off by
 * default: f32 results then match the CPU to f32 rounding. Process-wide. IG_ERR_DEVICE
 * without CUDA. */
IG_API ig_status ig_cuda_set_tf32(bool on);
/* t on device dev: a contiguous copy when dev differs from t's device (differentiable: the
 * gradient goes back to t's device); when t is already on dev, t's data without copying,
 * as ig_contiguous does for a contiguous tensor (t itself when scoped, a scoped alias of a
 * heap t inside a scope, a new reference to free when no scope is open). NULL with
 * IG_ERR_DEVICE when dev is unavailable: "ig_to: ignis was built without CUDA" or
 * "ig_to: no CUDA device (cudaGetDeviceCount: ...)". */
IG_API ig_tensor *ig_to(ig_tensor *t, ig_device dev);

/* ---- lifetime ---------------------------------------------------------------------- */

/* Heap tensors are refcounted: retain adds a reference, free drops one. Both are no-ops on
 * NULL and on scope tensors (their scope releases them). */
IG_API ig_tensor *ig_tensor_retain(ig_tensor *t);
IG_API void ig_tensor_free(ig_tensor *t);

/* ---- creation (results are contiguous; shape may have zero-size dims) ---------------- */

IG_API ig_tensor *ig_empty(int ndim, const int64_t *shape, ig_dtype dt);
IG_API ig_tensor *ig_zeros(int ndim, const int64_t *shape, ig_dtype dt);
IG_API ig_tensor *ig_ones(int ndim, const int64_t *shape, ig_dtype dt);
IG_API ig_tensor *ig_full(int ndim, const int64_t *shape, ig_dtype dt, double value);
/* A scalar (0-dim) tensor. */
IG_API ig_tensor *ig_scalar(double value, ig_dtype dt);
/* 1-D [start, start+step, ...) up to end (exclusive), as torch.arange. */
IG_API ig_tensor *ig_arange(double start, double end, double step, ig_dtype dt);
/* Copies numel elements of dtype dt from data (row-major). */
IG_API ig_tensor *ig_from_data(int ndim, const int64_t *shape, ig_dtype dt, const void *data);
IG_API ig_tensor *ig_zeros_like(const ig_tensor *t);
IG_API ig_tensor *ig_ones_like(const ig_tensor *t);

/* ---- threads -------------------------------------------------------------------------- */
/* Threads used by CPU kernels: the library's pool (im2col, pooling, large elementwise ops,
 * and large GEMMs, split by blocks of the output; OpenBLAS itself is set to one thread on
 * first use, so a program calling OpenBLAS directly gets it single-threaded too). n <= 0
 * restores the default, the number of online CPUs. Results do not depend on it. Call it
 * between ops, not during one. */
IG_API void ig_set_num_threads(int n);
/* The current count (the default until ig_set_num_threads is called). */
IG_API int ig_get_num_threads(void);

/* ---- random numbers ---------------------------------------------------------------- */
/* A counter-based generator (Philox4x32-10): element i of a draw depends only on the seed,
 * the generator's offset and i, so results never depend on thread count. */

IG_API void ig_manual_seed(uint64_t seed);
/* The default generator's state, for checkpoints. */
IG_API void ig_rng_get_state(uint64_t *seed, uint64_t *offset);
IG_API void ig_rng_set_state(uint64_t seed, uint64_t offset);
/* Uniform in [0, 1); float dtypes only. */
IG_API ig_tensor *ig_rand(int ndim, const int64_t *shape, ig_dtype dt);
/* Standard normal; float dtypes only. */
IG_API ig_tensor *ig_randn(int ndim, const int64_t *shape, ig_dtype dt);
/* Integers uniform in [low, high); any dtype that holds the range. */
IG_API ig_tensor *ig_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, ig_dtype dt);
/* Raw counter-based draws: four 32-bit words of Philox4x32-10 for (key, counter). */
IG_API void ig_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]);

/* ---- accessors --------------------------------------------------------------------- */

IG_API int ig_tensor_ndim(const ig_tensor *t);
/* Pointer to ndim sizes, valid while t lives. */
IG_API const int64_t *ig_tensor_shape(const ig_tensor *t);
IG_API const int64_t *ig_tensor_strides(const ig_tensor *t); /* in elements */
IG_API int64_t ig_tensor_size(const ig_tensor *t, int dim);  /* negative dims count from the end */
IG_API int64_t ig_tensor_numel(const ig_tensor *t);
IG_API ig_dtype ig_tensor_dtype(const ig_tensor *t);
IG_API ig_device ig_tensor_device(const ig_tensor *t);
IG_API bool ig_tensor_is_contiguous(const ig_tensor *t);
/* Pointer to the first element. For CPU tensors that are contiguous only (NULL and an error
 * otherwise: call ig_contiguous first). Writable. */
IG_API void *ig_tensor_data(ig_tensor *t);
/* The value of a one-element tensor, converted to double (NAN and an error otherwise). */
IG_API double ig_item(const ig_tensor *t);
/* Element at a flat row-major index of the logical shape, converted to double. */
IG_API double ig_tensor_get(const ig_tensor *t, int64_t flat_index);
/* Copies src into dst (same shape, or src broadcastable to dst; dtypes may differ).
 * No autograd: for initialisation and optimisers. */
IG_API ig_status ig_copy_(ig_tensor *dst, const ig_tensor *src);
/* Sets every element of t (any strides) to value. No autograd. */
IG_API ig_status ig_fill_(ig_tensor *t, double value);
/* Copies all elements into buf (row-major, converted to dt). n is buf's capacity in elements. */
IG_API ig_status ig_tensor_to_buffer(const ig_tensor *t, ig_dtype dt, void *buf, int64_t n);
/* Writes a readable rendering ("tensor([[1, 2], [3, 4]], dtype=float32)"-like) to f. */
IG_API ig_status ig_print(const ig_tensor *t, FILE *f);
/* Shape as "[2,3]" into buf (always NUL-terminated); returns buf. */
IG_API char *ig_shape_str(const ig_tensor *t, char *buf, size_t cap);

/* ---- views and copies (differentiable) ----------------------------------------------- */
/* Views share storage with their input; -1 in a reshape shape is inferred. */

/* View with a new shape; fails if the strides do not allow it (then use ig_reshape). */
IG_API ig_tensor *ig_view(ig_tensor *t, int ndim, const int64_t *shape);
/* A view when possible, else a contiguous copy, as torch.reshape. */
IG_API ig_tensor *ig_reshape(ig_tensor *t, int ndim, const int64_t *shape);
IG_API ig_tensor *ig_flatten(ig_tensor *t, int start_dim, int end_dim);
IG_API ig_tensor *ig_permute(ig_tensor *t, const int *dims); /* dims has ndim entries */
IG_API ig_tensor *ig_transpose(ig_tensor *t, int dim0, int dim1);
/* Elements start, start+step, ... < end along dim (negative start/end count from the end
 * and are clamped as Python slices; step >= 1). */
IG_API ig_tensor *ig_slice(ig_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
IG_API ig_tensor *ig_narrow(ig_tensor *t, int dim, int64_t start, int64_t length);
/* Select index along dim, removing dim. */
IG_API ig_tensor *ig_select(ig_tensor *t, int dim, int64_t index);
/* Broadcast view (stride 0) to shape; -1 keeps a size; new leading dims allowed. */
IG_API ig_tensor *ig_expand(ig_tensor *t, int ndim, const int64_t *shape);
IG_API ig_tensor *ig_squeeze(ig_tensor *t, int dim); /* dim must have size 1 */
IG_API ig_tensor *ig_squeeze_all(ig_tensor *t);
IG_API ig_tensor *ig_unsqueeze(ig_tensor *t, int dim);
/* A contiguous copy, or, if t is already contiguous, t's data without copying: t itself
 * when t is scoped, an alias owned by the open scope when t is a heap tensor and a scope is
 * open, and a new reference to t (free it) when no scope is open. */
IG_API ig_tensor *ig_contiguous(ig_tensor *t);
/* A copy (always new storage, contiguous). */
IG_API ig_tensor *ig_clone(ig_tensor *t);
/* Converted copy; differentiable between float dtypes. Same dtype returns a clone. */
IG_API ig_tensor *ig_to_dtype(ig_tensor *t, ig_dtype dt);

#ifdef __cplusplus
}
#endif

#endif
