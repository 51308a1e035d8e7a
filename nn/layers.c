/*
 * nn/layers.c — the layers of nn.h: Linear, Conv2d, BatchNorm1d/2d, LayerNorm, Dropout,
 * pooling, Flatten, Embedding, activations, Sequential and the ResNet basic block.
 *
 * Each layer is a module whose ctx holds its settings and whose parameters and buffers
 * are registered under torch's names, in torch's order, with torch's default init drawn
 * from the default generator. Forward functions call the functional ops of core/ops.h.
 *
 * Forward contract (what lets modules run both inside a scope and with none open): a
 * forward returns a new reference (ig_tensor_retain(x) for an identity) and drops its own
 * intermediates with ig_tensor_free, which is a no-op on scope tensors and, on heap
 * tensors, safe because an autograd node retains its heap inputs.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "module_impl.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Registers a new heap tensor of zeros as a parameter (or buffer) of m; false (error set)
 * on failure, when the caller frees m. */
static bool add_zeros(ig_module *m, const char *name, int ndim, const int64_t *shape, ig_dtype dt,
                      bool param) {
    ig_tensor *t = igi_heap_zeros(ndim, shape, dt);
    if (!t) return false;
    ig_status st = param ? ig_module_add_param(m, name, t) : ig_module_add_buffer(m, name, t);
    return st == IG_OK;
}

/* A module with a malloc'd copy of ctx (size bytes; NULL/0 for none), freed with free(). */
static ig_module *new_layer(const char *op, const char *type, ig_module_forward_fn fn, const void *ctx,
                            size_t size) {
    void *c = NULL;
    if (size) {
        c = malloc(size);
        if (!c) {
            igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
            return NULL;
        }
        memcpy(c, ctx, size);
    }
    ig_module *m = ig_module_new(type, fn, c, size ? free : NULL);
    return m;
}

static ig_tensor *param_at(const ig_module *m, int i) { return i < m->n_params ? m->params[i].tensor : NULL; }

static ig_tensor *param_named(const ig_module *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return m->params[i].tensor;
    return NULL;
}

static ig_tensor *buffer_named(const ig_module *m, const char *name) {
    for (int i = 0; i < m->n_buffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0) return m->buffers[i].tensor;
    return NULL;
}

/* Sets "ig_module_forward (Type): ..." with x's shape. Returns NULL for tail calls. */
static ig_tensor *forward_shape_error(const ig_module *m, ig_tensor *x, const char *expected) {
    char b[160];
    igi_error(IG_ERR_SHAPE, "ig_module_forward (%s): expected %s, got input %s", m->type, expected,
              ig_shape_str(x, b, sizeof b));
    return NULL;
}

/* ---- Linear ---------------------------------------------------------------------------- */
/* weight [out, in], bias [out]; y = x @ weight^T + bias for x [..., in]. */

static ig_tensor *linear_forward(ig_module *m, ig_tensor *x) {
    ig_tensor *w = param_named(m, "weight"), *b = param_named(m, "bias");
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
        char want[64];
        snprintf(want, sizeof want, "[..., %lld] (in_features)", (long long)w->shape[1]);
        return forward_shape_error(m, x, want);
    }
    ig_tensor *wt = ig_transpose(w, 0, 1);
    ig_tensor *y = ig_matmul(x, wt);
    ig_tensor_free(wt);
    if (b && y) {
        /* Under bf16 autocast the product is bf16, and the bias joins it in bf16 (torch's
         * autocast linear), recorded so the f32 bias still gets an f32 gradient. */
        ig_tensor *bc = y->dtype == IG_BF16 && b->dtype == IG_F32 ? ig_to_dtype(b, IG_BF16) : b;
        ig_tensor *yb = bc ? ig_add(y, bc) : NULL;
        if (bc != b) ig_tensor_free(bc);
        ig_tensor_free(y);
        y = yb;
    }
    return y;
}

/* torch's default init of a weight with fan_in inputs: kaiming_uniform(a = sqrt(5)), i.e.
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), then the bias from the same bound. */
static bool default_init(ig_module *m, int64_t fan_in) {
    ig_tensor *w = param_named(m, "weight"), *b = param_named(m, "bias");
    if (ig_init_kaiming_uniform(w, sqrt(5.0), IG_FAN_IN) != IG_OK) return false;
    if (b) {
        double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
        if (ig_init_uniform(b, -bound, bound) != IG_OK) return false;
    }
    return true;
}

ig_module *ig_nn_linear(int64_t in_features, int64_t out_features, bool bias) {
    static const char *op = "ig_nn_linear";
    if (in_features <= 0 || out_features <= 0) {
        igi_error(IG_ERR_ARG, "%s: in_features (%lld) and out_features (%lld) must be positive", op,
                  (long long)in_features, (long long)out_features);
        return NULL;
    }
    ig_module *m = new_layer(op, "Linear", linear_forward, NULL, 0);
    if (!m) return NULL;
    if (!add_zeros(m, "weight", 2, (int64_t[]){out_features, in_features}, IG_F32, true) ||
        (bias && !add_zeros(m, "bias", 1, &out_features, IG_F32, true)) || !default_init(m, in_features)) {
        ig_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- Conv2d ---------------------------------------------------------------------------- */

static ig_tensor *conv2d_forward(ig_module *m, ig_tensor *x) {
    const ig_conv2d_params *p = m->ctx;
    return ig_conv2d(x, param_named(m, "weight"), param_named(m, "bias"), p);
}

ig_module *ig_nn_conv2d(int64_t in_channels, int64_t out_channels, int kh, int kw,
                        const ig_conv2d_params *p, bool bias) {
    static const char *op = "ig_nn_conv2d";
    ig_conv2d_params c = p ? *p : (ig_conv2d_params){{0, 0}, {0, 0}, {0, 0}, 0};
    for (int i = 0; i < 2; i++) {
        if (c.stride[i] < 0 || c.padding[i] < 0 || c.dilation[i] < 0) {
            igi_error(IG_ERR_ARG, "%s: negative stride/padding/dilation (%d,%d / %d,%d / %d,%d)", op,
                      c.stride[0], c.stride[1], c.padding[0], c.padding[1], c.dilation[0], c.dilation[1]);
            return NULL;
        }
        if (c.stride[i] == 0) c.stride[i] = 1;
        if (c.dilation[i] == 0) c.dilation[i] = 1;
    }
    if (c.groups < 0) {
        igi_error(IG_ERR_ARG, "%s: groups must be positive, got %d", op, c.groups);
        return NULL;
    }
    if (c.groups == 0) c.groups = 1;
    if (in_channels <= 0 || out_channels <= 0 || kh <= 0 || kw <= 0) {
        igi_error(IG_ERR_ARG, "%s: channels (%lld -> %lld) and kernel (%dx%d) must be positive", op,
                  (long long)in_channels, (long long)out_channels, kh, kw);
        return NULL;
    }
    if (in_channels % c.groups || out_channels % c.groups) {
        igi_error(IG_ERR_ARG, "%s: channels (%lld -> %lld) must be divisible by groups (%d)", op,
                  (long long)in_channels, (long long)out_channels, c.groups);
        return NULL;
    }
    ig_module *m = new_layer(op, "Conv2d", conv2d_forward, &c, sizeof c);
    if (!m) return NULL;
    int64_t cin_g = in_channels / c.groups;
    if (!add_zeros(m, "weight", 4, (int64_t[]){out_channels, cin_g, kh, kw}, IG_F32, true) ||
        (bias && !add_zeros(m, "bias", 1, &out_channels, IG_F32, true)) ||
        !default_init(m, cin_g * kh * kw)) {
        ig_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- BatchNorm -------------------------------------------------------------------------- */

#define IGI_BN_MOMENTUM 0.1
#define IGI_BN_EPS 1e-5

/* A BatchNorm layer's ctx: the group synchronisation dist/ installs for sync BN, or NULL
 * (per-process batch statistics, the default). */
typedef struct batchnorm_ctx {
    const igi_bn_sync *sync;
} batchnorm_ctx;

static ig_tensor *batchnorm_forward(ig_module *m, ig_tensor *x) {
    bool two_d = strcmp(m->type, "BatchNorm2d") == 0;
    const batchnorm_ctx *bc = m->ctx;
    ig_tensor *w = param_named(m, "weight");
    if (two_d ? x->ndim != 4 : (x->ndim != 2 && x->ndim != 3))
        return forward_shape_error(m, x, two_d ? "a 4-D input [N,C,H,W]" : "a 2-D or 3-D input [N,C(,L)]");
    if (x->shape[1] != w->shape[0]) {
        char want[64];
        snprintf(want, sizeof want, "%lld channels in dim 1", (long long)w->shape[0]);
        return forward_shape_error(m, x, want);
    }
    ig_tensor *y = igi_batch_norm_sync(x, buffer_named(m, "running_mean"), buffer_named(m, "running_var"), w,
                                       param_named(m, "bias"), m->training, IGI_BN_MOMENTUM, IGI_BN_EPS,
                                       bc->sync);
    if (y && m->training) {
        ig_tensor *nbt = buffer_named(m, "num_batches_tracked");
        if (nbt->device == IG_CPU) {
            int64_t *c = (int64_t *)igi_data(nbt);
            *c = (int64_t)((uint64_t)*c + 1u);
        } else if (igi_add_scalar_inplace("ig_module_forward", nbt, 1.0) != IG_OK) {
            /* on a device (ig_module_to) the counter is counted there: one kernel */
            ig_tensor_free(y);
            return NULL;
        }
    }
    return y;
}

bool igi_bn_set_sync(ig_module *m, const igi_bn_sync *sync) {
    if (!m || m->forward != batchnorm_forward) return false;
    ((batchnorm_ctx *)m->ctx)->sync = sync;
    return true;
}

static ig_module *batchnorm(const char *op, const char *type, int64_t num_features) {
    if (num_features <= 0) {
        igi_error(IG_ERR_ARG, "%s: num_features must be positive, got %lld", op, (long long)num_features);
        return NULL;
    }
    batchnorm_ctx c = {NULL};
    ig_module *m = new_layer(op, type, batchnorm_forward, &c, sizeof c);
    if (!m) return NULL;
    /* torch's order: weight, bias (parameters), running_mean, running_var,
     * num_batches_tracked (buffers; the last a 0-dim int64). */
    if (!add_zeros(m, "weight", 1, &num_features, IG_F32, true) ||
        !add_zeros(m, "bias", 1, &num_features, IG_F32, true) ||
        !add_zeros(m, "running_mean", 1, &num_features, IG_F32, false) ||
        !add_zeros(m, "running_var", 1, &num_features, IG_F32, false) ||
        !add_zeros(m, "num_batches_tracked", 0, NULL, IG_I64, false)) {
        ig_module_free(m);
        return NULL;
    }
    ig_fill_(param_named(m, "weight"), 1.0);
    ig_fill_(buffer_named(m, "running_var"), 1.0);
    return m;
}

ig_module *ig_nn_batchnorm1d(int64_t num_features) {
    return batchnorm("ig_nn_batchnorm1d", "BatchNorm1d", num_features);
}

ig_module *ig_nn_batchnorm2d(int64_t num_features) {
    return batchnorm("ig_nn_batchnorm2d", "BatchNorm2d", num_features);
}

/* ---- LayerNorm -------------------------------------------------------------------------- */

typedef struct layernorm_ctx {
    int n_dims;
    int64_t shape[IG_MAX_DIMS];
    double eps;
} layernorm_ctx;

static ig_tensor *layernorm_forward(ig_module *m, ig_tensor *x) {
    const layernorm_ctx *c = m->ctx;
    return ig_layer_norm(x, c->n_dims, c->shape, param_named(m, "weight"), param_named(m, "bias"), c->eps);
}

ig_module *ig_nn_layernorm(int n_dims, const int64_t *normalized_shape, double eps) {
    static const char *op = "ig_nn_layernorm";
    if (n_dims < 1 || n_dims > IG_MAX_DIMS) {
        igi_error(IG_ERR_ARG, "%s: n_dims must be in [1, %d], got %d", op, IG_MAX_DIMS, n_dims);
        return NULL;
    }
    if (!normalized_shape) {
        igi_error_null(op, "normalized_shape");
        return NULL;
    }
    if (!(eps >= 0) || !isfinite(eps)) {
        igi_error(IG_ERR_ARG, "%s: eps must be finite and >= 0, got %g", op, eps);
        return NULL;
    }
    layernorm_ctx c = {.n_dims = n_dims, .eps = eps};
    for (int i = 0; i < n_dims; i++) {
        if (normalized_shape[i] <= 0) {
            igi_error(IG_ERR_ARG, "%s: normalized_shape[%d] must be positive, got %lld", op, i,
                      (long long)normalized_shape[i]);
            return NULL;
        }
        c.shape[i] = normalized_shape[i];
    }
    ig_module *m = new_layer(op, "LayerNorm", layernorm_forward, &c, sizeof c);
    if (!m) return NULL;
    if (!add_zeros(m, "weight", n_dims, c.shape, IG_F32, true) ||
        !add_zeros(m, "bias", n_dims, c.shape, IG_F32, true)) {
        ig_module_free(m);
        return NULL;
    }
    ig_fill_(param_named(m, "weight"), 1.0);
    return m;
}

/* ---- Dropout ----------------------------------------------------------------------------- */

static ig_tensor *dropout_forward(ig_module *m, ig_tensor *x) {
    double p = *(const double *)m->ctx;
    if (!m->training || p == 0) return ig_tensor_retain(x); /* identity: a new reference */
    return ig_dropout(x, p, true);
}

ig_module *ig_nn_dropout(double p) {
    if (!(p >= 0 && p <= 1)) {
        igi_error(IG_ERR_ARG, "ig_nn_dropout: p must be in [0, 1], got %g", p);
        return NULL;
    }
    return new_layer("ig_nn_dropout", "Dropout", dropout_forward, &p, sizeof p);
}

/* ---- pooling --------------------------------------------------------------------------- */

static ig_tensor *maxpool_forward(ig_module *m, ig_tensor *x) { return ig_max_pool2d(x, m->ctx); }
static ig_tensor *avgpool_forward(ig_module *m, ig_tensor *x) { return ig_avg_pool2d(x, m->ctx); }

static ig_module *pool(const char *op, const char *type, ig_module_forward_fn fn, const ig_pool2d_params *p) {
    if (!p) {
        igi_error_null(op, "p");
        return NULL;
    }
    for (int i = 0; i < 2; i++)
        /* padding > kernel / 2, not padding * 2 > kernel: the product overflows (UB) for a
         * huge padding. The two agree for every non-negative int. */
        if (p->kernel[i] <= 0 || p->stride[i] < 0 || p->padding[i] < 0 || p->padding[i] > p->kernel[i] / 2) {
            igi_error(IG_ERR_ARG,
                      "%s: kernel (%d,%d) must be positive, stride (%d,%d) and padding (%d,%d) >= 0 and "
                      "padding at most half the kernel", op, p->kernel[0], p->kernel[1], p->stride[0],
                      p->stride[1], p->padding[0], p->padding[1]);
            return NULL;
        }
    ig_pool2d_params c = *p;
    for (int i = 0; i < 2; i++)
        if (c.stride[i] == 0) c.stride[i] = c.kernel[i]; /* torch: stride defaults to kernel */
    return new_layer(op, type, fn, &c, sizeof c);
}

ig_module *ig_nn_maxpool2d(const ig_pool2d_params *p) {
    return pool("ig_nn_maxpool2d", "MaxPool2d", maxpool_forward, p);
}

ig_module *ig_nn_avgpool2d(const ig_pool2d_params *p) {
    return pool("ig_nn_avgpool2d", "AvgPool2d", avgpool_forward, p);
}

static ig_tensor *adaptive_avgpool_forward(ig_module *m, ig_tensor *x) {
    const int64_t *o = m->ctx;
    return ig_adaptive_avg_pool2d(x, o[0], o[1]);
}

ig_module *ig_nn_adaptive_avgpool2d(int64_t oh, int64_t ow) {
    if (oh <= 0 || ow <= 0) {
        igi_error(IG_ERR_ARG, "ig_nn_adaptive_avgpool2d: output size (%lld, %lld) must be positive",
                  (long long)oh, (long long)ow);
        return NULL;
    }
    int64_t o[2] = {oh, ow};
    return new_layer("ig_nn_adaptive_avgpool2d", "AdaptiveAvgPool2d", adaptive_avgpool_forward, o, sizeof o);
}

/* ---- Flatten, Embedding -------------------------------------------------------------------- */

static ig_tensor *flatten_forward(ig_module *m, ig_tensor *x) {
    const int *d = m->ctx;
    return ig_flatten(x, d[0], d[1]);
}

ig_module *ig_nn_flatten(int start_dim, int end_dim) {
    /* Dims are checked against the input at forward time (they may be negative). */
    int d[2] = {start_dim, end_dim};
    return new_layer("ig_nn_flatten", "Flatten", flatten_forward, d, sizeof d);
}

static ig_tensor *embedding_forward(ig_module *m, ig_tensor *x) {
    return ig_embedding(x, param_named(m, "weight"));
}

ig_module *ig_nn_embedding(int64_t num_embeddings, int64_t dim) {
    static const char *op = "ig_nn_embedding";
    if (num_embeddings <= 0 || dim <= 0) {
        igi_error(IG_ERR_ARG, "%s: num_embeddings (%lld) and dim (%lld) must be positive", op,
                  (long long)num_embeddings, (long long)dim);
        return NULL;
    }
    ig_module *m = new_layer(op, "Embedding", embedding_forward, NULL, 0);
    if (!m) return NULL;
    /* torch.nn.Embedding initialises its weight with N(0, 1). */
    if (!add_zeros(m, "weight", 2, (int64_t[]){num_embeddings, dim}, IG_F32, true) ||
        ig_init_normal(param_at(m, 0), 0.0, 1.0) != IG_OK) {
        ig_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- activations ---------------------------------------------------------------------- */

static ig_tensor *relu_forward(ig_module *m, ig_tensor *x) { (void)m; return ig_relu(x); }
static ig_tensor *gelu_forward(ig_module *m, ig_tensor *x) { (void)m; return ig_gelu(x); }
static ig_tensor *silu_forward(ig_module *m, ig_tensor *x) { (void)m; return ig_silu(x); }
static ig_tensor *sigmoid_forward(ig_module *m, ig_tensor *x) { (void)m; return ig_sigmoid(x); }
static ig_tensor *tanh_forward(ig_module *m, ig_tensor *x) { (void)m; return ig_tanh(x); }
static ig_tensor *leaky_relu_forward(ig_module *m, ig_tensor *x) {
    return ig_leaky_relu(x, *(const double *)m->ctx);
}
static ig_tensor *softmax_forward(ig_module *m, ig_tensor *x) { return ig_softmax(x, *(const int *)m->ctx); }

ig_module *ig_nn_relu(void) { return new_layer("ig_nn_relu", "ReLU", relu_forward, NULL, 0); }
ig_module *ig_nn_gelu(void) { return new_layer("ig_nn_gelu", "GELU", gelu_forward, NULL, 0); }
ig_module *ig_nn_silu(void) { return new_layer("ig_nn_silu", "SiLU", silu_forward, NULL, 0); }
ig_module *ig_nn_sigmoid(void) { return new_layer("ig_nn_sigmoid", "Sigmoid", sigmoid_forward, NULL, 0); }
ig_module *ig_nn_tanh(void) { return new_layer("ig_nn_tanh", "Tanh", tanh_forward, NULL, 0); }

ig_module *ig_nn_leaky_relu(double negative_slope) {
    if (!isfinite(negative_slope)) {
        igi_error(IG_ERR_ARG, "ig_nn_leaky_relu: negative_slope must be finite, got %g", negative_slope);
        return NULL;
    }
    return new_layer("ig_nn_leaky_relu", "LeakyReLU", leaky_relu_forward, &negative_slope, sizeof negative_slope);
}

ig_module *ig_nn_softmax(int dim) {
    return new_layer("ig_nn_softmax", "Softmax", softmax_forward, &dim, sizeof dim);
}

/* ---- Sequential ------------------------------------------------------------------------- */

static ig_tensor *sequential_forward(ig_module *m, ig_tensor *x) {
    ig_tensor *cur = ig_tensor_retain(x); /* empty Sequential: identity */
    for (int i = 0; i < m->n_children && cur; i++) {
        ig_tensor *next = ig_module_forward(m->children[i].module, cur);
        ig_tensor_free(cur); /* drops our reference only (x stays the caller's) */
        cur = next;
    }
    return cur;
}

ig_module *ig_nn_sequential(int n, ig_module *const *children) {
    static const char *op = "ig_nn_sequential";
    /* Ownership of every child passes to us first, so each error path frees them all. */
    bool bad_args = n < 0 || (n > 0 && !children);
    int first_null = -1;
    for (int i = 0; !bad_args && i < n; i++)
        if (!children[i] && first_null < 0) first_null = i;
    ig_module *m = NULL;
    if (bad_args) igi_error(IG_ERR_ARG, "%s: n (%d) must be >= 0 and children given when n > 0", op, n);
    else if (first_null >= 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "children[%d]", first_null);
        igi_error_null(op, arg); /* keeps the failed constructor's message if it set one */
    } else m = ig_module_new("Sequential", sequential_forward, NULL, NULL);
    if (!m) {
        for (int i = 0; !bad_args && i < n; i++) ig_module_free(children[i]);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof name, "%d", i);
        if (ig_module_add_child(m, name, children[i]) != IG_OK) {
            for (int k = i + 1; k < n; k++) ig_module_free(children[k]);
            ig_module_free(m);
            return NULL;
        }
    }
    return m;
}

ig_status ig_nn_sequential_append(ig_module *seq, ig_module *child) {
    static const char *op = "ig_nn_sequential_append";
    if (!seq || strcmp(seq->type, "Sequential") != 0) {
        ig_module_free(child);
        if (!seq) return igi_error_null(op, "seq");
        return igi_error(IG_ERR_ARG, "%s: seq is a '%s', not a Sequential", op, seq->type);
    }
    if (!child) return igi_error_null(op, "child");
    char name[24];
    snprintf(name, sizeof name, "%d", seq->n_children);
    return ig_module_add_child(seq, name, child);
}

/* ---- ResNet basic block ----------------------------------------------------------------- */

static ig_tensor *basic_block_forward(ig_module *m, ig_tensor *x) {
    ig_module *sc = igi_module_find_child(m, "sc");
    ig_tensor *h = ig_module_forward(igi_module_find_child(m, "c1"), x);
    ig_tensor *t = ig_module_forward(igi_module_find_child(m, "b1"), h);
    ig_tensor_free(h);
    h = ig_relu(t);
    ig_tensor_free(t);
    t = ig_module_forward(igi_module_find_child(m, "c2"), h);
    ig_tensor_free(h);
    h = ig_module_forward(igi_module_find_child(m, "b2"), t);
    ig_tensor_free(t);
    ig_tensor *s = sc ? ig_module_forward(sc, x) : ig_tensor_retain(x);
    t = ig_add(h, s);
    ig_tensor_free(h);
    ig_tensor_free(s);
    h = ig_relu(t);
    ig_tensor_free(t);
    return h;
}

ig_module *ig_nn_basic_block(int64_t in_channels, int64_t out_channels, int stride) {
    static const char *op = "ig_nn_basic_block";
    if (in_channels <= 0 || out_channels <= 0 || stride <= 0) {
        igi_error(IG_ERR_ARG, "%s: channels (%lld -> %lld) and stride (%d) must be positive", op,
                  (long long)in_channels, (long long)out_channels, stride);
        return NULL;
    }
    ig_module *m = ig_module_new("BasicBlock", basic_block_forward, NULL, NULL);
    if (!m) return NULL;
    ig_conv2d_params p1 = {.stride = {stride, stride}, .padding = {1, 1}};
    ig_conv2d_params p2 = {.padding = {1, 1}};
    /* Each add takes ownership, so a failed constructor (NULL) only needs m freed. */
    bool ok = ig_module_add_child(m, "c1", ig_nn_conv2d(in_channels, out_channels, 3, 3, &p1, false)) == IG_OK &&
              ig_module_add_child(m, "b1", ig_nn_batchnorm2d(out_channels)) == IG_OK &&
              ig_module_add_child(m, "c2", ig_nn_conv2d(out_channels, out_channels, 3, 3, &p2, false)) == IG_OK &&
              ig_module_add_child(m, "b2", ig_nn_batchnorm2d(out_channels)) == IG_OK;
    if (ok && (stride != 1 || in_channels != out_channels)) {
        ig_conv2d_params ps = {.stride = {stride, stride}};
        ig_module *parts[2];
        parts[0] = ig_nn_conv2d(in_channels, out_channels, 1, 1, &ps, false);
        parts[1] = ig_nn_batchnorm2d(out_channels); /* after parts[0]: a fixed draw order */
        ok = ig_module_add_child(m, "sc", ig_nn_sequential(2, parts)) == IG_OK;
    }
    if (!ok) {
        ig_module_free(m);
        return NULL;
    }
    return m;
}
