/*
 * tests/cuda/emu/cudnn.cpp — the CUDA emulator's cuDNN: exactly the legacy convolution entry
 * points cuda/cudnn.cu resolves with dlsym, computed on the CPU with plain loops, built as
 * a shared library with cuDNN's soname (libcudnn.so.9) that the emulated cudnn.cu loads
 * from the emulator's build folder as it loads the real one.
 *
 * Semantics follow cuDNN's documentation: NCHW tensors with any positive strides
 * (cudnnSetTensor4dDescriptorEx), packed NCHW filters [K, C/groups, kh, kw], cross-
 * correlation with padding, stride, dilation and groups, out = alpha * op + beta * out
 * (out not read when beta is 0). Sums accumulate in double and each result is rounded once
 * to the descriptor's dtype (bf16 through float, to nearest even, as ignis stores bf16).
 * Math types: FLOAT data under CUDNN_DEFAULT_MATH or CUDNN_TENSOR_OP_MATH has its operands
 * rounded to TF32 first (what sm_80+ may do; FMA_MATH does not); TENSOR_OP_MATH_ALLOW_-
 * CONVERSION, HALF and other dtypes, other formats and CUDNN_CONVOLUTION (flipped) are
 * CUDNN_STATUS_NOT_SUPPORTED; inconsistent shapes, non-positive sizes or strides and a
 * missing or short workspace are CUDNN_STATUS_BAD_PARAM. Every operand's extent (and the
 * workspace's) must lie in one device allocation of the emulated runtime
 * (igemu_device_range, as the stand-in cuBLAS checks), else BAD_PARAM and a line on stderr.
 *
 * The heuristics (cudnnGet*Algorithm_v7) return a short fixed list of fake algorithms that
 * exercises a caller's choice: entries that did not succeed, a first entry whose workspace
 * (1 GiB) is beyond any sane cap, non-deterministic algorithms listed before deterministic
 * ones (backward data and filter). A non-deterministic algorithm really is here: it flips
 * the lowest bit of one output element chosen by a call counter, so two runs differ. The
 * deterministic ones need a small workspace, which is checked and scribbled on. Running an
 * algorithm the list did not offer as successful is NOT_SUPPORTED.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda_bf16.h"
#include "cudnn.h"

struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    bool set;
    cudnnDataType_t t;
    int n[4], s[4];
};
struct cudnnFilterStruct {
    bool set;
    cudnnDataType_t t;
    int n[4];
};
struct cudnnConvolutionStruct {
    bool set;
    int pad[2], stride[2], dil[2], groups;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace {

int (*range_check)(const void *, size_t);
unsigned long long nondet_calls; /* picks the element a non-deterministic algorithm disturbs */

bool quiet() {
    const char *q = getenv("IGEMU_QUIET");
    return q && *q && strcmp(q, "0") != 0;
}

size_t dsize(cudnnDataType_t t) { return t == CUDNN_DATA_DOUBLE ? 8 : t == CUDNN_DATA_FLOAT ? 4 : 2; }

/* Whether the bytes [p, p + n) lie in one device allocation (true without the runtime's check). */
bool in_device(const char *call, const char *name, const void *p, size_t n) {
    if (n == 0 || !range_check) return true;
    if (p && range_check(p, n)) return true;
    if (!quiet())
        fprintf(stderr, "cuda emulator: %s: %s = %p (%zu bytes) is not inside one device allocation\n", call, name, p, n);
    return false;
}

/* The span in bytes of a tensor (its last element's offset + 1 element). */
size_t tensor_bytes(const cudnnTensorStruct *d) {
    size_t last = 0;
    for (int i = 0; i < 4; i++) last += (size_t)(d->n[i] - 1) * (size_t)d->s[i];
    return (last + 1) * dsize(d->t);
}

float tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    u += 0xfffu + ((u >> 13) & 1u);
    u &= 0xffffe000u;
    memcpy(&x, &u, 4);
    return x;
}

double load(cudnnDataType_t t, const void *p, int64_t i, bool round_tf32) {
    if (t == CUDNN_DATA_DOUBLE) return ((const double *)p)[i];
    if (t == CUDNN_DATA_BFLOAT16) return (double)(float)((const __nv_bfloat16 *)p)[i];
    float v = ((const float *)p)[i];
    return round_tf32 ? (double)tf32(v) : (double)v;
}

/* out[i] = alpha * v + beta * out[i], rounded once to t. */
void store(cudnnDataType_t t, void *p, int64_t i, double v, double alpha, double beta) {
    double r = alpha * v;
    if (beta != 0.0) r += beta * load(t, p, i, false);
    if (t == CUDNN_DATA_DOUBLE)
        ((double *)p)[i] = r;
    else if (t == CUDNN_DATA_BFLOAT16)
        ((__nv_bfloat16 *)p)[i] = __nv_bfloat16((float)r); /* through float, nearest even */
    else
        ((float *)p)[i] = (float)r;
}

/* Flips the lowest bit of element i (a non-deterministic algorithm's different sum order). */
void disturb(cudnnDataType_t t, void *p, int64_t i) {
    if (t == CUDNN_DATA_DOUBLE) {
        uint64_t u;
        memcpy(&u, (char *)p + i * 8, 8);
        u ^= 1u;
        memcpy((char *)p + i * 8, &u, 8);
    } else if (t == CUDNN_DATA_BFLOAT16) {
        ((uint16_t *)p)[i] ^= 1u;
    } else {
        ((uint32_t *)p)[i] ^= 1u;
    }
}

double scalar(cudnnDataType_t t, const void *p) { return t == CUDNN_DATA_DOUBLE ? *(const double *)p : *(const float *)p; }

/* A checked convolution problem: x [N, C, H, W] (strided), w [O, Cg, kh, kw] (packed), y [N,
 * O, Ho, Wo] (strided). */
struct problem {
    const cudnnTensorStruct *x, *y;
    const cudnnFilterStruct *w;
    const cudnnConvolutionStruct *c;
    int N, C, H, W, O, Cg, Og, kh, kw, Ho, Wo;
    bool tf32;
};

cudnnStatus_t check(const char *call, const cudnnTensorStruct *x, const cudnnFilterStruct *w,
                    const cudnnConvolutionStruct *c, const cudnnTensorStruct *y, problem *p) {
    if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
    if (x->t != w->t || x->t != y->t) return CUDNN_STATUS_BAD_PARAM;
    cudnnDataType_t want = x->t == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    if (c->compute != want) return CUDNN_STATUS_NOT_SUPPORTED;
    if (c->math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return CUDNN_STATUS_NOT_SUPPORTED;
    p->x = x, p->y = y, p->w = w, p->c = c;
    p->N = x->n[0], p->C = x->n[1], p->H = x->n[2], p->W = x->n[3];
    p->O = w->n[0], p->Cg = w->n[1], p->kh = w->n[2], p->kw = w->n[3];
    if (p->C % c->groups || p->O % c->groups || p->C / c->groups != p->Cg) {
        if (!quiet()) fprintf(stderr, "cuda emulator: %s: C %d, K %d, filter C %d, groups %d do not agree\n", call, p->C, p->O, p->Cg, c->groups);
        return CUDNN_STATUS_BAD_PARAM;
    }
    p->Og = p->O / c->groups;
    p->Ho = (p->H + 2 * c->pad[0] - c->dil[0] * (p->kh - 1) - 1) / c->stride[0] + 1;
    p->Wo = (p->W + 2 * c->pad[1] - c->dil[1] * (p->kw - 1) - 1) / c->stride[1] + 1;
    if (y->n[0] != p->N || y->n[1] != p->O || y->n[2] != p->Ho || y->n[3] != p->Wo || p->Ho < 1 || p->Wo < 1) {
        if (!quiet()) fprintf(stderr, "cuda emulator: %s: output descriptor [%d, %d, %d, %d], want [%d, %d, %d, %d]\n", call, y->n[0], y->n[1], y->n[2], y->n[3], p->N, p->O, p->Ho, p->Wo);
        return CUDNN_STATUS_BAD_PARAM;
    }
    p->tf32 = x->t == CUDNN_DATA_FLOAT && (c->math == CUDNN_DEFAULT_MATH || c->math == CUDNN_TENSOR_OP_MATH);
    return CUDNN_STATUS_SUCCESS;
}

int64_t xoff(const cudnnTensorStruct *d, int n, int c, int h, int w) {
    return (int64_t)n * d->s[0] + (int64_t)c * d->s[1] + (int64_t)h * d->s[2] + (int64_t)w * d->s[3];
}
int64_t woff(const problem &p, int o, int c, int i, int j) { return (((int64_t)o * p.Cg + c) * p.kh + i) * p.kw + j; }

/* The fake algorithm list of a direction: {algo, status, workspace bytes, deterministic}. */
struct fake {
    int algo;
    cudnnStatus_t status;
    size_t ws;
    bool det;
};
const fake fwd_list[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_STATUS_SUCCESS, (size_t)1 << 30, true},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_STATUS_NOT_SUPPORTED, 0, true},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_STATUS_SUCCESS, 65536, true},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_STATUS_SUCCESS, 0, true},
};
const fake bwd_data_list[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_STATUS_SUCCESS, 0, false},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_STATUS_NOT_SUPPORTED, 0, true},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_STATUS_SUCCESS, 32768, true},
};
const fake bwd_filter_list[] = {
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_STATUS_SUCCESS, 0, false},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, CUDNN_STATUS_SUCCESS, 4096, false},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_STATUS_SUCCESS, 16384, true},
};

template <size_t N> const fake *find(const fake (&list)[N], int algo) {
    for (size_t i = 0; i < N; i++)
        if (list[i].algo == algo && list[i].status == CUDNN_STATUS_SUCCESS) return &list[i];
    return NULL;
}

template <typename Perf, typename Algo, size_t N>
cudnnStatus_t heuristics(const fake (&list)[N], const cudnnConvolutionStruct *c, int requested, int *returned,
                         Perf *perf) {
    if (!returned || !perf || requested < 1) return CUDNN_STATUS_BAD_PARAM;
    int n = 0;
    for (size_t i = 0; i < N && n < requested; i++, n++) {
        memset(&perf[n], 0, sizeof perf[n]);
        perf[n].algo = (Algo)list[i].algo;
        perf[n].status = list[i].status;
        perf[n].time = (float)(i + 1);
        perf[n].memory = list[i].ws;
        perf[n].determinism = list[i].det ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
        perf[n].mathType = c->math;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

/* Checks the algorithm and workspace of a run, scribbles on the workspace. */
cudnnStatus_t run_checks(const char *call, const fake *f, void *ws, size_t ws_bytes) {
    if (!f) {
        if (!quiet()) fprintf(stderr, "cuda emulator: %s: algorithm not offered by the heuristics\n", call);
        return CUDNN_STATUS_NOT_SUPPORTED;
    }
    if (ws_bytes < f->ws || (f->ws && !ws)) {
        if (!quiet()) fprintf(stderr, "cuda emulator: %s: workspace of %zu bytes, the algorithm needs %zu\n", call, ws_bytes, f->ws);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (!in_device(call, "workspace", ws, ws_bytes)) return CUDNN_STATUS_BAD_PARAM;
    if (ws_bytes) memset(ws, 0xa5, ws_bytes);
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

#define IGEMU_API extern "C" __attribute__((visibility("default")))

/* Completed convolutions per direction (forward, backward data, backward filter), for tests
 * that must know the work went through cuDNN (tests/cuda/test_cuda_cudnn.c). */
extern "C" {
__attribute__((visibility("default"))) unsigned long long igemu_cudnn_calls[3];
}

IGEMU_API const char *cudnnGetErrorString(cudnnStatus_t s) {
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    }
    return "CUDNN_STATUS_UNKNOWN (emulator)";
}

IGEMU_API cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    if (!range_check) range_check = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "igemu_device_range");
    *h = new cudnnContext{NULL};
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    delete h;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    if (!d) return CUDNN_STATUS_BAD_PARAM;
    *d = new cudnnTensorStruct();
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t t, int n, int c, int h,
                                                     int w, int ns, int cs, int hs, int ws) {
    if (!d || n < 1 || c < 1 || h < 1 || w < 1 || ns < 1 || cs < 1 || hs < 1 || ws < 1) return CUDNN_STATUS_BAD_PARAM;
    if (t != CUDNN_DATA_FLOAT && t != CUDNN_DATA_DOUBLE && t != CUDNN_DATA_BFLOAT16) return CUDNN_STATUS_NOT_SUPPORTED;
    *d = cudnnTensorStruct{true, t, {n, c, h, w}, {ns, cs, hs, ws}};
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    if (!d) return CUDNN_STATUS_BAD_PARAM;
    *d = new cudnnFilterStruct();
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f,
                                                   int k, int c, int h, int w) {
    if (!d || k < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    if (f != CUDNN_TENSOR_NCHW) return CUDNN_STATUS_NOT_SUPPORTED;
    if (t != CUDNN_DATA_FLOAT && t != CUDNN_DATA_DOUBLE && t != CUDNN_DATA_BFLOAT16) return CUDNN_STATUS_NOT_SUPPORTED;
    *d = cudnnFilterStruct{true, t, {k, c, h, w}};
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    if (!d) return CUDNN_STATUS_BAD_PARAM;
    *d = new cudnnConvolutionStruct();
    (*d)->groups = 1;
    (*d)->math = CUDNN_DEFAULT_MATH;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    if (!d || (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
               m != CUDNN_FMA_MATH))
        return CUDNN_STATUS_BAD_PARAM;
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
    if (!d || groups < 1) return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v,
                                                        int dh, int dw, cudnnConvolutionMode_t mode,
                                                        cudnnDataType_t compute) {
    if (!d || ph < 0 || pw < 0 || u < 1 || v < 1 || dh < 1 || dw < 1) return CUDNN_STATUS_BAD_PARAM;
    if (mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_NOT_SUPPORTED;
    if (compute != CUDNN_DATA_FLOAT && compute != CUDNN_DATA_DOUBLE) return CUDNN_STATUS_NOT_SUPPORTED;
    d->pad[0] = ph, d->pad[1] = pw, d->stride[0] = u, d->stride[1] = v, d->dil[0] = dh, d->dil[1] = dw;
    d->compute = compute;
    d->set = true;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- forward ---------------------------------------------------------------------------------- */

IGEMU_API cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                               const cudnnFilterDescriptor_t w,
                                                               const cudnnConvolutionDescriptor_t c,
                                                               const cudnnTensorDescriptor_t y, const int req, int *ret,
                                                               cudnnConvolutionFwdAlgoPerf_t *perf) {
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check("cudnnGetConvolutionForwardAlgorithm_v7", x, w, c, y, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    return heuristics<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(fwd_list, c, req, ret, perf);
}

IGEMU_API cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                                const cudnnFilterDescriptor_t w,
                                                                const cudnnConvolutionDescriptor_t c,
                                                                const cudnnTensorDescriptor_t y,
                                                                cudnnConvolutionFwdAlgo_t algo, size_t *bytes) {
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check("cudnnGetConvolutionForwardWorkspaceSize", x, w, c, y, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    const fake *f = find(fwd_list, algo);
    if (!f || !bytes) return f ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_NOT_SUPPORTED;
    *bytes = f->ws;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                                const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                                const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                                void *ws, size_t ws_bytes, const void *beta,
                                                const cudnnTensorDescriptor_t yd, void *y) {
    const char *call = "cudnnConvolutionForward";
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check(call, xd, wd, cd, yd, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (!alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    if ((s = run_checks(call, find(fwd_list, algo), ws, ws_bytes)) != CUDNN_STATUS_SUCCESS) return s;
    size_t wbytes = (size_t)p.O * p.Cg * p.kh * p.kw * dsize(wd->t);
    if (!in_device(call, "x", x, tensor_bytes(xd)) || !in_device(call, "w", w, wbytes) ||
        !in_device(call, "y", y, tensor_bytes(yd)))
        return CUDNN_STATUS_BAD_PARAM;
    double a = scalar(xd->t, alpha), b = scalar(xd->t, beta);
    cudnnDataType_t t = xd->t;
    const cudnnConvolutionStruct *c = cd;
    for (int n = 0; n < p.N; n++)
        for (int o = 0; o < p.O; o++) {
            int grp = o / p.Og;
            for (int oy = 0; oy < p.Ho; oy++)
                for (int ox = 0; ox < p.Wo; ox++) {
                    double acc = 0;
                    for (int cc = 0; cc < p.Cg; cc++)
                        for (int i = 0; i < p.kh; i++) {
                            int iy = oy * c->stride[0] - c->pad[0] + i * c->dil[0];
                            if (iy < 0 || iy >= p.H) continue;
                            for (int j = 0; j < p.kw; j++) {
                                int ix = ox * c->stride[1] - c->pad[1] + j * c->dil[1];
                                if (ix < 0 || ix >= p.W) continue;
                                acc += load(t, x, xoff(xd, n, grp * p.Cg + cc, iy, ix), p.tf32) *
                                       load(t, w, woff(p, o, cc, i, j), p.tf32);
                            }
                        }
                    store(t, y, xoff(yd, n, o, oy, ox), acc, a, b);
                }
        }
    igemu_cudnn_calls[0]++;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- backward data ------------------------------------------------------------------------------ */

IGEMU_API cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                                    const cudnnTensorDescriptor_t dy,
                                                                    const cudnnConvolutionDescriptor_t c,
                                                                    const cudnnTensorDescriptor_t dx, const int req,
                                                                    int *ret, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check("cudnnGetConvolutionBackwardDataAlgorithm_v7", dx, w, c, dy, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    return heuristics<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(bwd_data_list, c, req, ret,
                                                                                         perf);
}

IGEMU_API cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                                     const cudnnTensorDescriptor_t dy,
                                                                     const cudnnConvolutionDescriptor_t c,
                                                                     const cudnnTensorDescriptor_t dx,
                                                                     cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes) {
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check("cudnnGetConvolutionBackwardDataWorkspaceSize", dx, w, c, dy, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    const fake *f = find(bwd_data_list, algo);
    if (!f || !bytes) return f ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_NOT_SUPPORTED;
    *bytes = f->ws;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha,
                                                     const cudnnFilterDescriptor_t wd, const void *w,
                                                     const cudnnTensorDescriptor_t dyd, const void *dy,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes,
                                                     const void *beta, const cudnnTensorDescriptor_t dxd, void *dx) {
    const char *call = "cudnnConvolutionBackwardData";
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check(call, dxd, wd, cd, dyd, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (!alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    const fake *f = find(bwd_data_list, algo);
    if ((s = run_checks(call, f, ws, ws_bytes)) != CUDNN_STATUS_SUCCESS) return s;
    size_t wbytes = (size_t)p.O * p.Cg * p.kh * p.kw * dsize(wd->t);
    if (!in_device(call, "w", w, wbytes) || !in_device(call, "dy", dy, tensor_bytes(dyd)) ||
        !in_device(call, "dx", dx, tensor_bytes(dxd)))
        return CUDNN_STATUS_BAD_PARAM;
    double a = scalar(dxd->t, alpha), b = scalar(dxd->t, beta);
    cudnnDataType_t t = dxd->t;
    const cudnnConvolutionStruct *c = cd;
    for (int n = 0; n < p.N; n++)
        for (int ch = 0; ch < p.C; ch++) {
            int grp = ch / p.Cg, cc = ch % p.Cg;
            for (int iy = 0; iy < p.H; iy++)
                for (int ix = 0; ix < p.W; ix++) {
                    double acc = 0;
                    for (int og = 0; og < p.Og; og++) {
                        int o = grp * p.Og + og;
                        for (int i = 0; i < p.kh; i++) {
                            int ty = iy + c->pad[0] - i * c->dil[0];
                            if (ty < 0 || ty % c->stride[0] || ty / c->stride[0] >= p.Ho) continue;
                            for (int j = 0; j < p.kw; j++) {
                                int tx = ix + c->pad[1] - j * c->dil[1];
                                if (tx < 0 || tx % c->stride[1] || tx / c->stride[1] >= p.Wo) continue;
                                acc += load(t, dy, xoff(dyd, n, o, ty / c->stride[0], tx / c->stride[1]), p.tf32) *
                                       load(t, w, woff(p, o, cc, i, j), p.tf32);
                            }
                        }
                    }
                    store(t, dx, xoff(dxd, n, ch, iy, ix), acc, a, b);
                }
        }
    if (!f->det) {
        int64_t total = (int64_t)p.N * p.C * p.H * p.W, e = (int64_t)(nondet_calls++ % (unsigned long long)total);
        disturb(t, dx, xoff(dxd, (int)(e / ((int64_t)p.C * p.H * p.W)), (int)(e / ((int64_t)p.H * p.W) % p.C),
                            (int)(e / p.W % p.H), (int)(e % p.W)));
    }
    igemu_cudnn_calls[1]++;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- backward filter ---------------------------------------------------------------------------- */

IGEMU_API cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                                      const cudnnTensorDescriptor_t dy,
                                                                      const cudnnConvolutionDescriptor_t c,
                                                                      const cudnnFilterDescriptor_t dw, const int req,
                                                                      int *ret,
                                                                      cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check("cudnnGetConvolutionBackwardFilterAlgorithm_v7", x, dw, c, dy, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    return heuristics<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(bwd_filter_list, c, req,
                                                                                             ret, perf);
}

IGEMU_API cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                                       const cudnnTensorDescriptor_t dy,
                                                                       const cudnnConvolutionDescriptor_t c,
                                                                       const cudnnFilterDescriptor_t dw,
                                                                       cudnnConvolutionBwdFilterAlgo_t algo,
                                                                       size_t *bytes) {
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check("cudnnGetConvolutionBackwardFilterWorkspaceSize", x, dw, c, dy, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    const fake *f = find(bwd_filter_list, algo);
    if (!f || !bytes) return f ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_NOT_SUPPORTED;
    *bytes = f->ws;
    return CUDNN_STATUS_SUCCESS;
}

IGEMU_API cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha,
                                                       const cudnnTensorDescriptor_t xd, const void *x,
                                                       const cudnnTensorDescriptor_t dyd, const void *dy,
                                                       const cudnnConvolutionDescriptor_t cd,
                                                       cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                                       const void *beta, const cudnnFilterDescriptor_t dwd, void *dw) {
    const char *call = "cudnnConvolutionBackwardFilter";
    problem p;
    if (!h) return CUDNN_STATUS_NOT_INITIALIZED;
    cudnnStatus_t s = check(call, xd, dwd, cd, dyd, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (!alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    const fake *f = find(bwd_filter_list, algo);
    if ((s = run_checks(call, f, ws, ws_bytes)) != CUDNN_STATUS_SUCCESS) return s;
    int64_t wn = (int64_t)p.O * p.Cg * p.kh * p.kw;
    if (!in_device(call, "x", x, tensor_bytes(xd)) || !in_device(call, "dy", dy, tensor_bytes(dyd)) ||
        !in_device(call, "dw", dw, (size_t)wn * dsize(dwd->t)))
        return CUDNN_STATUS_BAD_PARAM;
    double a = scalar(xd->t, alpha), b = scalar(xd->t, beta);
    cudnnDataType_t t = xd->t;
    const cudnnConvolutionStruct *c = cd;
    for (int o = 0; o < p.O; o++) {
        int grp = o / p.Og;
        for (int cc = 0; cc < p.Cg; cc++)
            for (int i = 0; i < p.kh; i++)
                for (int j = 0; j < p.kw; j++) {
                    double acc = 0;
                    for (int n = 0; n < p.N; n++)
                        for (int oy = 0; oy < p.Ho; oy++) {
                            int iy = oy * c->stride[0] - c->pad[0] + i * c->dil[0];
                            if (iy < 0 || iy >= p.H) continue;
                            for (int ox = 0; ox < p.Wo; ox++) {
                                int ix = ox * c->stride[1] - c->pad[1] + j * c->dil[1];
                                if (ix < 0 || ix >= p.W) continue;
                                acc += load(t, dy, xoff(dyd, n, o, oy, ox), p.tf32) *
                                       load(t, x, xoff(xd, n, grp * p.Cg + cc, iy, ix), p.tf32);
                            }
                        }
                    store(t, dw, woff(p, o, cc, i, j), acc, a, b);
                }
    }
    if (!f->det) disturb(t, dw, (int64_t)(nondet_calls++ % (unsigned long long)wn));
    igemu_cudnn_calls[2]++;
    return CUDNN_STATUS_SUCCESS;
}
