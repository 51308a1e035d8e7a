/*
 * cuda/cudnn.cu — conv2d forward and backward on cuDNN (its legacy convolution API), off by
 * default: taken only when IGNIS_CUDA_CONV=cudnn or igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN)
 * selects it (cuda/conv_igemm.cu reads the switch; conv.cu dispatches here when
 * igc_conv_cudnn_takes() says so). It exists to compare ignis's own kernels with NVIDIA's.
 *
 * Loading: libcudnn is opened with dlopen on first use, like cuBLAS (gemm.cu) and NCCL
 * (nccl.c), so the build links nothing and a machine without cuDNN loses only this mode:
 * the environment's IGNIS_CUDNN_LIB (a path or a library name; read at every attempt, so
 * a test can point it at a missing file), else libcudnn.so.9 in the build's CUDA folder
 * (IGNIS_CUDA_LIBDIR), else libcudnn.so.9 and libcudnn.so on the loader's path (PyTorch's
 * wheels keep theirs in site-packages/nvidia/cudnn/lib: add it to LD_LIBRARY_PATH). A
 * failed load is an error of the convolution ("IGNIS_CUDA_CONV=cudnn but libcudnn.so.9
 * could not be loaded (...)"), never a silent fallback, and is tried again on the next
 * call; a successful one stays. cudnn.h is used for its types and enums only, and only
 * where the toolkit has it (__has_include): without it this mode reports "not built with
 * cuDNN headers".
 *
 * What goes to cuDNN: the three convolutions (forward, backward data, backward filter) for
 * f32 (no autocast), f64 and bf16 activations. Descriptors per dtype:
 *   f32, exact (the default): FLOAT tensors, FLOAT compute, CUDNN_FMA_MATH (no TF32);
 *   f32, ig_cuda_set_tf32(true): CUDNN_DEFAULT_MATH (TF32 allowed);
 *   bf16: BFLOAT16 tensors, FLOAT compute, CUDNN_TENSOR_OP_MATH;
 *   f64: DOUBLE tensors and compute, CUDNN_DEFAULT_MATH.
 * x keeps its strides (cudnnSetTensor4dDescriptorEx); y, dy, dx, w, dw are packed NCHW;
 * groups through cudnnSetConvolutionGroupCount. f32 under fp16 autocast (g->amp: f32
 * tensors whose GEMM operands are rounded to half) has no cuDNN equivalent without
 * rounded copies of x, w and dy, so it stays on ignis's own path (the implicit GEMM, which
 * rounds as it stages); so do empty problems (the bias-only forward, zeroed gradients),
 * geometry beyond cuDNN's int arguments, and an expanded x (a zero stride: cuDNN's strides
 * are positive); igc_conv_cudnn_takes decides.
 * The bias stays ignis's: forward fills y with the bias (a kernel here) and cuDNN adds the
 * convolution with beta = 1, so a bf16 y is rounded once from the f32 sum + bias; the bias
 * gradient is conv.cu's deterministic split sum.
 *
 * Algorithms: cudnnGet*Algorithm_v7's heuristic list, the first entry that succeeded, is
 * deterministic (ignis promises run-to-run identical results, so cuDNN's atomics-based
 * backward algorithms are out), runs in a math mode the dtype allows (exact f32: FMA only)
 * and needs at most IGC_DNN_WORKSPACE_CAP bytes of workspace. The choice is cached per
 * (direction, geometry, x strides, dtype, precision) in a small table. The workspace comes
 * from the caching allocator and goes back as soon as the call is queued (stream-ordered,
 * as every scratch of this backend). One handle, on igc_stream; a mutex serialises calls.
 * Every cuDNN failure is an ig_status error naming the op, the cuDNN call and cuDNN's
 * message.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"

/* IGNIS_NO_CUDNN_HEADERS builds the header-less variant on a toolkit that has cudnn.h (to
 * check that it compiles). */
#if __has_include(<cudnn.h>) && !defined(IGNIS_NO_CUDNN_HEADERS)
#include <cudnn.h>
#define IGC_HAVE_CUDNN 1
#else
#define IGC_HAVE_CUDNN 0
#endif

/* Whether cuDNN serves a convolution of dtype dt and geometry g in the current mode. */
bool igc_conv_cudnn_takes(ig_dtype dt, const igi_conv *g) {
    if (igc_conv_mode() != IGI_CUDA_CONV_CUDNN) return false;
    if (dt == IG_F32) {
        if (g->amp != IG_AMP_OFF) return false; /* fp16 autocast on f32 tensors: ignis's path */
    } else if (dt != IG_F64 && dt != IG_BF16) {
        return false;
    }
    if (g->N <= 0 || g->C <= 0 || g->O <= 0 || g->K <= 0 || g->P <= 0 || g->H <= 0 || g->W <= 0) return false;
    /* cuDNN's descriptors take int sizes, strides and paddings; keep every element offset
     * below 2^31 as well */
    const int64_t v[] = {g->N,     g->C,     g->H,     g->W,     g->O,     g->kh,    g->kw,    g->Ho,
                         g->Wo,    g->stride_h, g->stride_w, g->pad_h, g->pad_w, g->dil_h, g->dil_w, g->groups,
                         g->N * g->C * g->H * g->W, g->N * g->O * g->P, g->O * g->K};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] < 0 || v[i] > INT_MAX) return false;
    int64_t span = 1;
    const int64_t size[4] = {g->N, g->C, g->H, g->W};
    for (int d = 0; d < 4; d++) {
        if (g->xs[d] < 0 || g->xs[d] > INT_MAX) return false;
        if (g->xs[d] == 0 && size[d] > 1) return false; /* an expanded x: cuDNN wants positive strides */
        span += (size[d] - 1) * g->xs[d];
    }
    return span <= INT_MAX;
}

#if !IGC_HAVE_CUDNN

static ig_status igc_dnn_unbuilt(const char *op) {
    return igi_error(IG_ERR_DEVICE,
                     "%s: IGNIS_CUDA_CONV=cudnn but ignis was not built with cuDNN headers (no cudnn.h in the CUDA "
                     "toolkit's include folder)",
                     op);
}

ig_status igc_conv2d_cudnn(const char *op, ig_dtype, const igi_conv *, const void *, const void *, const void *,
                           int64_t, void *) {
    return igc_dnn_unbuilt(op);
}

ig_status igc_conv2d_backward_cudnn(const char *op, ig_dtype, const igi_conv *, const void *, const void *,
                                    const void *, void *, void *) {
    return igc_dnn_unbuilt(op);
}

#else

#define IGC_DNN_WORKSPACE_CAP ((size_t)256 << 20)
#define IGC_DNN_STR_(x) #x
#define IGC_DNN_STR(x) IGC_DNN_STR_(x)
#define IGC_DNN_SONAME "libcudnn.so." IGC_DNN_STR(CUDNN_MAJOR)

/* The cuDNN entry points used here, resolved from the dlopen'ed library. */
static struct {
    decltype(&cudnnGetErrorString) error_string;
    decltype(&cudnnCreate) create;
    decltype(&cudnnSetStream) set_stream;
    decltype(&cudnnCreateTensorDescriptor) create_tensor;
    decltype(&cudnnSetTensor4dDescriptorEx) set_tensor;
    decltype(&cudnnDestroyTensorDescriptor) destroy_tensor;
    decltype(&cudnnCreateFilterDescriptor) create_filter;
    decltype(&cudnnSetFilter4dDescriptor) set_filter;
    decltype(&cudnnDestroyFilterDescriptor) destroy_filter;
    decltype(&cudnnCreateConvolutionDescriptor) create_conv;
    decltype(&cudnnSetConvolution2dDescriptor) set_conv;
    decltype(&cudnnSetConvolutionGroupCount) set_groups;
    decltype(&cudnnSetConvolutionMathType) set_math;
    decltype(&cudnnDestroyConvolutionDescriptor) destroy_conv;
    decltype(&cudnnGetConvolutionForwardAlgorithm_v7) fwd_algos;
    decltype(&cudnnGetConvolutionBackwardDataAlgorithm_v7) bwd_data_algos;
    decltype(&cudnnGetConvolutionBackwardFilterAlgorithm_v7) bwd_filter_algos;
    decltype(&cudnnGetConvolutionForwardWorkspaceSize) fwd_ws;
    decltype(&cudnnGetConvolutionBackwardDataWorkspaceSize) bwd_data_ws;
    decltype(&cudnnGetConvolutionBackwardFilterWorkspaceSize) bwd_filter_ws;
    decltype(&cudnnConvolutionForward) fwd;
    decltype(&cudnnConvolutionBackwardData) bwd_data;
    decltype(&cudnnConvolutionBackwardFilter) bwd_filter;
} dn;

static pthread_mutex_t dn_lock = PTHREAD_MUTEX_INITIALIZER;
static bool dn_ready; /* dn resolved and dn_handle made: stays so for the process */
static cudnnHandle_t dn_handle;

/* Appends "; " (after the first) and s to buf (cap bytes, NUL-terminated). */
static void dn_append(char *buf, size_t cap, const char *s) {
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    snprintf(buf + n, cap - n, "%s%s", n ? "; " : "", s);
}

/* Opens libcudnn, resolves dn and makes the handle on igc_stream (dn_lock held). IG_OK, or
 * the error set naming op. */
static ig_status dn_load(const char *op) {
    if (dn_ready) return IG_OK;
    const char *env = getenv("IGNIS_CUDNN_LIB");
    const char *names[4];
    size_t nn = 0;
    if (env && *env) {
        names[nn++] = env;
    } else {
#ifdef IGNIS_CUDA_LIBDIR
        names[nn++] = IGNIS_CUDA_LIBDIR "/" IGC_DNN_SONAME;
#endif
        names[nn++] = IGC_DNN_SONAME;
        names[nn++] = "libcudnn.so";
    }
    char why[1024] = "";
    void *lib = NULL;
    for (size_t i = 0; i < nn && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            const char *e = dlerror();
            dn_append(why, sizeof why, e ? e : names[i]);
        }
    }
    if (!lib)
        return igi_error(IG_ERR_DEVICE, "%s: IGNIS_CUDA_CONV=cudnn but %s could not be loaded (%s%s%s%s)", op,
                         IGC_DNN_SONAME, env && *env ? "IGNIS_CUDNN_LIB=" : "", env && *env ? env : "",
                         env && *env ? ": " : "", why);
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&dn.error_string, "cudnnGetErrorString"},
        {(void **)&dn.create, "cudnnCreate"},
        {(void **)&dn.set_stream, "cudnnSetStream"},
        {(void **)&dn.create_tensor, "cudnnCreateTensorDescriptor"},
        {(void **)&dn.set_tensor, "cudnnSetTensor4dDescriptorEx"},
        {(void **)&dn.destroy_tensor, "cudnnDestroyTensorDescriptor"},
        {(void **)&dn.create_filter, "cudnnCreateFilterDescriptor"},
        {(void **)&dn.set_filter, "cudnnSetFilter4dDescriptor"},
        {(void **)&dn.destroy_filter, "cudnnDestroyFilterDescriptor"},
        {(void **)&dn.create_conv, "cudnnCreateConvolutionDescriptor"},
        {(void **)&dn.set_conv, "cudnnSetConvolution2dDescriptor"},
        {(void **)&dn.set_groups, "cudnnSetConvolutionGroupCount"},
        {(void **)&dn.set_math, "cudnnSetConvolutionMathType"},
        {(void **)&dn.destroy_conv, "cudnnDestroyConvolutionDescriptor"},
        {(void **)&dn.fwd_algos, "cudnnGetConvolutionForwardAlgorithm_v7"},
        {(void **)&dn.bwd_data_algos, "cudnnGetConvolutionBackwardDataAlgorithm_v7"},
        {(void **)&dn.bwd_filter_algos, "cudnnGetConvolutionBackwardFilterAlgorithm_v7"},
        {(void **)&dn.fwd_ws, "cudnnGetConvolutionForwardWorkspaceSize"},
        {(void **)&dn.bwd_data_ws, "cudnnGetConvolutionBackwardDataWorkspaceSize"},
        {(void **)&dn.bwd_filter_ws, "cudnnGetConvolutionBackwardFilterWorkspaceSize"},
        {(void **)&dn.fwd, "cudnnConvolutionForward"},
        {(void **)&dn.bwd_data, "cudnnConvolutionBackwardData"},
        {(void **)&dn.bwd_filter, "cudnnConvolutionBackwardFilter"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(lib, syms[i].name);
        if (!*syms[i].slot) {
            dlclose(lib);
            return igi_error(IG_ERR_DEVICE, "%s: IGNIS_CUDA_CONV=cudnn but the loaded %s lacks %s", op, IGC_DNN_SONAME,
                             syms[i].name);
        }
    }
    cudnnStatus_t s = dn.create(&dn_handle);
    if (s != CUDNN_STATUS_SUCCESS) {
        ig_status st = igi_error(IG_ERR_DEVICE, "%s: cudnnCreate failed: %s", op, dn.error_string(s));
        dlclose(lib);
        return st;
    }
    if ((s = dn.set_stream(dn_handle, igc_stream)) != CUDNN_STATUS_SUCCESS)
        return igi_error(IG_ERR_DEVICE, "%s: cudnnSetStream failed: %s", op, dn.error_string(s));
    dn_ready = true; /* the library stays loaded for the life of the process */
    return IG_OK;
}

/* The error for a failed cuDNN call. */
static ig_status dn_fail(const char *op, const char *call, cudnnStatus_t s, int line) {
    return igi_error(IG_ERR_DEVICE, "%s: %s failed (%s:%d): %s", op, call, __FILE__, line, dn.error_string(s));
}

#define DN_TRY(op, name, call)                                                    \
    do {                                                                          \
        cudnnStatus_t dn_s_ = (call);                                             \
        if (dn_s_ != CUDNN_STATUS_SUCCESS) return dn_fail((op), (name), dn_s_, __LINE__); \
    } while (0)

/* The precision a convolution runs in: its dtype's, and for f32 exact or TF32. */
enum { DN_F32_EXACT, DN_F32_TF32, DN_BF16, DN_F64 };

static int dn_precision(ig_dtype dt) {
    if (dt == IG_F64) return DN_F64;
    if (dt == IG_BF16) return DN_BF16;
    return igc_gemm_tf32() ? DN_F32_TF32 : DN_F32_EXACT;
}

/* The math type asked of cuDNN for precision p, and whether an algorithm reporting math
 * type m may run for it: exact f32 takes FMA kernels only (DEFAULT and TENSOR_OP allow TF32
 * on sm_80+); nothing here allows TENSOR_OP_MATH_ALLOW_CONVERSION (fp16 down-conversion). */
static cudnnMathType_t dn_math(int p) {
    return p == DN_F32_EXACT ? CUDNN_FMA_MATH : p == DN_BF16 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH;
}

static bool dn_math_ok(int p, cudnnMathType_t m) {
    if (p == DN_F32_EXACT) return m == CUDNN_FMA_MATH;
    return m == CUDNN_DEFAULT_MATH || m == CUDNN_TENSOR_OP_MATH || m == CUDNN_FMA_MATH;
}

/* ---- descriptors ----------------------------------------------------------------------------- */

/* The descriptors of one convolution: x with its strides, x packed (dx), y / dy packed, w /
 * dw packed [O, Cg, kh, kw], the convolution. Destroyed with the object. */
struct dn_descs {
    cudnnTensorDescriptor_t x = NULL, xp = NULL, y = NULL;
    cudnnFilterDescriptor_t w = NULL;
    cudnnConvolutionDescriptor_t c = NULL;
    ~dn_descs() {
        if (x) dn.destroy_tensor(x);
        if (xp) dn.destroy_tensor(xp);
        if (y) dn.destroy_tensor(y);
        if (w) dn.destroy_filter(w);
        if (c) dn.destroy_conv(c);
    }
};

static ig_status dn_tensor(const char *op, cudnnTensorDescriptor_t *d, cudnnDataType_t t, const int64_t *size,
                           const int64_t *stride) {
    DN_TRY(op, "cudnnCreateTensorDescriptor", dn.create_tensor(d));
    int s[4];
    for (int i = 0; i < 4; i++) s[i] = size[i] == 1 && stride[i] < 1 ? 1 : (int)stride[i]; /* unused stride */
    DN_TRY(op, "cudnnSetTensor4dDescriptorEx",
           dn.set_tensor(*d, t, (int)size[0], (int)size[1], (int)size[2], (int)size[3], s[0], s[1], s[2], s[3]));
    return IG_OK;
}

static ig_status dn_make(const char *op, ig_dtype dt, int prec, const igi_conv *g, bool packed_x, dn_descs *d) {
    cudnnDataType_t t = dt == IG_F64 ? CUDNN_DATA_DOUBLE : dt == IG_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    cudnnDataType_t compute = dt == IG_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    const int64_t xsz[4] = {g->N, g->C, g->H, g->W}, ysz[4] = {g->N, g->O, g->Ho, g->Wo};
    const int64_t xps[4] = {g->C * g->H * g->W, g->H * g->W, g->W, 1}, yps[4] = {g->O * g->P, g->P, g->Wo, 1};
    ig_status st = dn_tensor(op, &d->x, t, xsz, g->xs);
    if (st == IG_OK && packed_x) st = dn_tensor(op, &d->xp, t, xsz, xps);
    if (st == IG_OK) st = dn_tensor(op, &d->y, t, ysz, yps);
    if (st != IG_OK) return st;
    DN_TRY(op, "cudnnCreateFilterDescriptor", dn.create_filter(&d->w));
    DN_TRY(op, "cudnnSetFilter4dDescriptor",
           dn.set_filter(d->w, t, CUDNN_TENSOR_NCHW, (int)g->O, (int)g->Cg, (int)g->kh, (int)g->kw));
    DN_TRY(op, "cudnnCreateConvolutionDescriptor", dn.create_conv(&d->c));
    DN_TRY(op, "cudnnSetConvolution2dDescriptor",
           dn.set_conv(d->c, (int)g->pad_h, (int)g->pad_w, (int)g->stride_h, (int)g->stride_w, (int)g->dil_h,
                       (int)g->dil_w, CUDNN_CROSS_CORRELATION, compute));
    DN_TRY(op, "cudnnSetConvolutionGroupCount", dn.set_groups(d->c, (int)g->groups));
    DN_TRY(op, "cudnnSetConvolutionMathType", dn.set_math(d->c, dn_math(prec)));
    return IG_OK;
}

/* ---- algorithm choice, cached ---------------------------------------------------------------- */

enum { DN_FWD, DN_BWD_DATA, DN_BWD_FILTER };

#define DN_KEY_LEN 22
#define DN_CACHE 64

typedef struct {
    int64_t key[DN_KEY_LEN];
    int algo;
    cudnnMathType_t math;
    size_t ws;
} dn_choice;

static dn_choice dn_cache[DN_CACHE];
static int dn_cached, dn_next; /* entries in use; the next to replace once full (round robin) */

static void dn_key(int64_t *k, int dir, ig_dtype dt, int prec, const igi_conv *g) {
    const int64_t v[DN_KEY_LEN] = {dir,        (int64_t)dt, prec,       g->N,     g->C,     g->H,
                                   g->W,       g->O,        g->kh,      g->kw,    g->stride_h, g->stride_w,
                                   g->pad_h,   g->pad_w,    g->dil_h,   g->dil_w, g->groups, g->xs[0],
                                   g->xs[1],   g->xs[2],    g->xs[3],   0};
    memcpy(k, v, sizeof v);
}

static const dn_choice *dn_lookup(const int64_t *k) {
    for (int i = 0; i < dn_cached; i++)
        if (memcmp(dn_cache[i].key, k, sizeof dn_cache[i].key) == 0) return &dn_cache[i];
    return NULL;
}

static const dn_choice *dn_remember(const int64_t *k, int algo, cudnnMathType_t math, size_t ws) {
    dn_choice *c = dn_cached < DN_CACHE ? &dn_cache[dn_cached++] : &dn_cache[dn_next++ % DN_CACHE];
    memcpy(c->key, k, sizeof c->key);
    c->algo = algo;
    c->math = math;
    c->ws = ws;
    return c;
}

static const char *const dn_dir_name[3] = {"forward", "backward-data", "backward-filter"};

/* The first usable entry of a heuristic list (perf[0..n)): succeeded, deterministic, an
 * allowed math type, workspace (asked of cuDNN with that math type set) within the cap.
 * ws_of(algo, &bytes) queries the workspace. Leaves the descriptor's math type as chosen. */
template <typename Perf, typename WS>
static ig_status dn_pick(const char *op, int dir, int prec, const igi_conv *g, const dn_descs *d, const Perf *perf,
                         int n, WS ws_of, const int64_t *key, const dn_choice **out) {
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC ||
            !dn_math_ok(prec, perf[i].mathType))
            continue;
        DN_TRY(op, "cudnnSetConvolutionMathType", dn.set_math(d->c, perf[i].mathType));
        size_t bytes = 0;
        if (ws_of(perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > IGC_DNN_WORKSPACE_CAP) continue;
        *out = dn_remember(key, (int)perf[i].algo, perf[i].mathType, bytes);
        return IG_OK;
    }
    return igi_error(IG_ERR_DEVICE,
                     "%s: cuDNN offers no %s algorithm for this convolution (x [%lld, %lld, %lld, %lld], w [%lld, "
                     "%lld, %lld, %lld], groups %lld) that is deterministic, runs in the math mode of its dtype and "
                     "needs at most %zu MiB of workspace (%d candidates)",
                     op, dn_dir_name[dir], (long long)g->N, (long long)g->C, (long long)g->H, (long long)g->W,
                     (long long)g->O, (long long)g->Cg, (long long)g->kh, (long long)g->kw, (long long)g->groups,
                     IGC_DNN_WORKSPACE_CAP >> 20, n);
}

/* The chosen algorithm of direction dir for the descriptors d (heuristics on a cache
 * miss); sets the descriptor's math type to the algorithm's. */
static ig_status dn_choose(const char *op, int dir, ig_dtype dt, int prec, const igi_conv *g, const dn_descs *d,
                           const dn_choice **out) {
    int64_t key[DN_KEY_LEN];
    dn_key(key, dir, dt, prec, g);
    const dn_choice *c = dn_lookup(key);
    if (c) {
        DN_TRY(op, "cudnnSetConvolutionMathType", dn.set_math(d->c, c->math));
        *out = c;
        return IG_OK;
    }
    int n = 0;
    if (dir == DN_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        DN_TRY(op, "cudnnGetConvolutionForwardAlgorithm_v7",
               dn.fwd_algos(dn_handle, d->x, d->w, d->c, d->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
        auto ws = [d](cudnnConvolutionFwdAlgo_t a, size_t *b) { return dn.fwd_ws(dn_handle, d->x, d->w, d->c, d->y, a, b); };
        return dn_pick(op, dir, prec, g, d, perf, n, ws, key, out);
    }
    if (dir == DN_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        DN_TRY(op, "cudnnGetConvolutionBackwardDataAlgorithm_v7",
               dn.bwd_data_algos(dn_handle, d->w, d->y, d->c, d->xp, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
        auto ws = [d](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
            return dn.bwd_data_ws(dn_handle, d->w, d->y, d->c, d->xp, a, b);
        };
        return dn_pick(op, dir, prec, g, d, perf, n, ws, key, out);
    }
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    DN_TRY(op, "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
           dn.bwd_filter_algos(dn_handle, d->x, d->y, d->c, d->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
    auto ws = [d](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
        return dn.bwd_filter_ws(dn_handle, d->x, d->y, d->c, d->w, a, b);
    };
    return dn_pick(op, dir, prec, g, d, perf, n, ws, key, out);
}

/* ---- running -------------------------------------------------------------------------------- */

/* y (packed [N, O, P]) = b[o * bs] everywhere: the forward's bias, to which cuDNN adds the
 * convolution (beta = 1). */
template <typename T> __global__ void dn_bias_fill_kernel(int64_t N, int64_t O, int64_t P, const T *b, int64_t bs, T *y) {
    int64_t total = N * O * P;
    IGC_GRID_STRIDE(e, total) y[e] = b[((e / P) % O) * bs];
}

/* Holds dn_lock for a scope. */
struct dn_guard {
    dn_guard() { pthread_mutex_lock(&dn_lock); }
    ~dn_guard() { pthread_mutex_unlock(&dn_lock); }
};

/* Device workspace of one call from the caching allocator, returned (stream-ordered) when
 * the object goes. */
struct dn_workspace {
    void *p = NULL;
    size_t n = 0;
    ig_status get(const char *op, size_t bytes) {
        if (bytes == 0) return IG_OK;
        p = igi_alloc(IG_CUDA, bytes);
        if (!p) return igi_error(IG_ERR_NOMEM, "%s: out of device memory for %zu bytes of cuDNN workspace", op, bytes);
        n = bytes;
        return IG_OK;
    }
    ~dn_workspace() {
        if (p) igi_free(IG_CUDA, p, n);
    }
};

/* alpha = 1 and beta (0 or 1) as cuDNN reads them: double for DOUBLE tensors, else float. */
struct dn_scale {
    double d1 = 1, db;
    float f1 = 1, fb;
    bool dbl;
    dn_scale(ig_dtype dt, int beta) : db(beta), fb((float)beta), dbl(dt == IG_F64) {}
    const void *alpha() const { return dbl ? (const void *)&d1 : (const void *)&f1; }
    const void *beta() const { return dbl ? (const void *)&db : (const void *)&fb; }
};

ig_status igc_conv2d_cudnn(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w, const void *b,
                           int64_t bs, void *y) {
    dn_guard lock;
    ig_status st = dn_load(op);
    if (st != IG_OK) return st;
    int prec = dn_precision(dt);
    dn_descs d;
    const dn_choice *c = NULL;
    if ((st = dn_make(op, dt, prec, g, false, &d)) != IG_OK || (st = dn_choose(op, DN_FWD, dt, prec, g, &d, &c)) != IG_OK)
        return st;
    dn_workspace ws;
    if ((st = ws.get(op, c->ws)) != IG_OK) return st;
    if (b) {
        int64_t n = g->N * g->O * g->P;
        if (dt == IG_F64)
            dn_bias_fill_kernel<double><<<igc_blocks(n), IGC_THREADS, 0, igc_stream>>>(g->N, g->O, g->P, (const double *)b,
                                                                                      bs, (double *)y);
        else if (dt == IG_BF16)
            dn_bias_fill_kernel<__nv_bfloat16><<<igc_blocks(n), IGC_THREADS, 0, igc_stream>>>(
                g->N, g->O, g->P, (const __nv_bfloat16 *)b, bs, (__nv_bfloat16 *)y);
        else
            dn_bias_fill_kernel<float><<<igc_blocks(n), IGC_THREADS, 0, igc_stream>>>(g->N, g->O, g->P, (const float *)b,
                                                                                     bs, (float *)y);
        IGC_LAUNCHED(op);
    }
    dn_scale s(dt, b ? 1 : 0);
    DN_TRY(op, "cudnnConvolutionForward",
           dn.fwd(dn_handle, s.alpha(), d.x, x, d.w, w, d.c, (cudnnConvolutionFwdAlgo_t)c->algo, ws.p, ws.n, s.beta(),
                  d.y, y));
    return IG_OK;
}

ig_status igc_conv2d_backward_cudnn(const char *op, ig_dtype dt, const igi_conv *g, const void *x, const void *w,
                                    const void *dy, void *dx, void *dw) {
    if (!dx && !dw) return IG_OK;
    dn_guard lock;
    ig_status st = dn_load(op);
    if (st != IG_OK) return st;
    int prec = dn_precision(dt);
    dn_descs d;
    if ((st = dn_make(op, dt, prec, g, dx != NULL, &d)) != IG_OK) return st;
    dn_scale s(dt, 0);
    if (dx) {
        const dn_choice *c = NULL;
        if ((st = dn_choose(op, DN_BWD_DATA, dt, prec, g, &d, &c)) != IG_OK) return st;
        dn_workspace ws;
        if ((st = ws.get(op, c->ws)) != IG_OK) return st;
        DN_TRY(op, "cudnnConvolutionBackwardData",
               dn.bwd_data(dn_handle, s.alpha(), d.w, w, d.y, dy, d.c, (cudnnConvolutionBwdDataAlgo_t)c->algo, ws.p,
                           ws.n, s.beta(), d.xp, dx));
    }
    if (dw) {
        const dn_choice *c = NULL;
        if ((st = dn_choose(op, DN_BWD_FILTER, dt, prec, g, &d, &c)) != IG_OK) return st;
        dn_workspace ws;
        if ((st = ws.get(op, c->ws)) != IG_OK) return st;
        DN_TRY(op, "cudnnConvolutionBackwardFilter",
               dn.bwd_filter(dn_handle, s.alpha(), d.x, x, d.y, dy, d.c, (cudnnConvolutionBwdFilterAlgo_t)c->algo, ws.p,
                             ws.n, s.beta(), d.w, dw));
    }
    return IG_OK;
}

#endif
