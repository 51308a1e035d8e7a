/*
 * nn/model_file.c — plain-text model descriptions (the CLI's --model FILE): one layer per
 * line, built into a Sequential whose state-dict names are torch's nn.Sequential names
 * ("0.weight", "3.bias", ...), so a description and the torch model written layer by layer
 * load each other's weights.
 *
 * The user never writes input sizes: the parser tracks the shape of one image through the
 * layers (an image [C,H,W] until 'flatten', then a vector [F]) and gives each layer its
 * input channels or features. Grammar (README.md, "Model files"):
 *
 *   line    := [layer] ['#' comment]          blank lines and comments are ignored
 *   layer   := NAME {ARG} {KEY=VALUE}          words separated by spaces or tabs
 *   count   := positive integer | 'classes'   'classes' is the model's class count
 *   size    := N | NxM                         (height x width) for kernels, strides, pads
 *
 *   conv OUT K [stride=S] [pad=P] [dilation=D] [groups=G] [bias=0|1]   Conv2d
 *   linear OUT [bias=0|1]                      Linear (needs a vector input)
 *   bn                                         BatchNorm2d on images, BatchNorm1d on vectors
 *   layernorm [eps=E]                          LayerNorm over every non-batch dim
 *   relu | gelu | silu | sigmoid | tanh | softmax (over dim 1) | leaky_relu [SLOPE=0.01]
 *   maxpool K [stride=S] [pad=P] [ceil=0|1]    MaxPool2d (stride defaults to K)
 *   avgpool K [stride=S] [pad=P] [ceil=0|1]    AvgPool2d
 *   adaptive_avgpool H [W]                     AdaptiveAvgPool2d((H, W)), W defaults to H
 *   flatten                                    Flatten(1, -1)
 *   dropout [P=0.5]                            Dropout(P)
 *   block OUT [stride=S]                       the zoo's ResNet basic block
 *
 * The model must end in a vector of the class count. Every error names the source and the
 * line ("net.txt:3: unknown layer 'convv'"). Layers are created in file order, one at a
 * time, so a seed gives the same weights as the zoo model with the same layers.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "module_impl.h"

#define MF_MAX_COUNT ((int64_t)1 << 20)   /* channels, features, classes, pooled sizes */
#define MF_MAX_SIDE 65536                 /* kernel, stride, padding, dilation */
#define MF_MAX_PARAMS ((int64_t)1 << 31)  /* parameters of one layer */
#define MF_MAX_FILE (1u << 20)            /* bytes of a model file or text (so lines fit an int) */
#define MF_MAX_WORDS 16

typedef struct mf_shape {
    int rank;       /* 3: an image [C,H,W]; 1: a vector [F] */
    int64_t d[3];
} mf_shape;

typedef struct mf_ctx {
    const char *op;
    const char *src;
    int line;
    int64_t classes;
    const char *layer; /* the line's layer name, for messages */
    const char *usage; /* its usage line */
} mf_ctx;

/* Sets "op: src:line: message" and returns st. */
static ig_status __attribute__((format(printf, 3, 4))) mf_error(const mf_ctx *c, ig_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    igi_vsnprintf_c(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->line > 0) return igi_error(st, "%s: %s:%d: %s", c->op, c->src, c->line, msg);
    return igi_error(st, "%s: %s: %s", c->op, c->src, msg);
}

static void shape_text(const mf_shape *s, char *buf, size_t cap) {
    if (s->rank == 3)
        snprintf(buf, cap, "[%lld,%lld,%lld]", (long long)s->d[0], (long long)s->d[1], (long long)s->d[2]);
    else
        snprintf(buf, cap, "[%lld]", (long long)s->d[0]);
}

/* a * b, or INT64_MAX when it overflows (both non-negative). */
static int64_t mul_sat(int64_t a, int64_t b) {
    if (a != 0 && b > INT64_MAX / a) return INT64_MAX;
    return a * b;
}

/* ---- words ------------------------------------------------------------------------------ */

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    double v = igi_strtod(s, &end);
    if (*end || errno || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* An output count: a positive integer or 'classes'. */
static ig_status get_count(const mf_ctx *c, const char *what, const char *s, int64_t *out) {
    if (strcmp(s, "classes") == 0) {
        *out = c->classes;
        return IG_OK;
    }
    if (parse_int(s, 1, MF_MAX_COUNT, out)) return IG_OK;
    return mf_error(c, IG_ERR_ARG, "%s: %s '%s' is not an integer in 1..%lld or 'classes'", c->layer, what, s,
                    (long long)MF_MAX_COUNT);
}

/* N or NxM, each in lo..MF_MAX_SIDE. */
static ig_status get_size(const mf_ctx *c, const char *what, const char *s, int64_t lo, int out[2]) {
    const char *x = strchr(s, 'x');
    char a[32], b[32];
    size_t la = x ? (size_t)(x - s) : strlen(s);
    bool ok = la < sizeof a;
    if (ok) {
        memcpy(a, s, la);
        a[la] = '\0';
        snprintf(b, sizeof b, "%s", x ? x + 1 : a);
        ok = (!x || strlen(x + 1) < sizeof b);
    }
    int64_t v0 = 0, v1 = 0;
    if (ok && parse_int(a, lo, MF_MAX_SIDE, &v0) && parse_int(b, lo, MF_MAX_SIDE, &v1)) {
        out[0] = (int)v0;
        out[1] = (int)v1;
        return IG_OK;
    }
    return mf_error(c, IG_ERR_ARG, "%s: %s '%s' is not an integer in %lld..%d (or HxW)", c->layer, what, s,
                    (long long)lo, MF_MAX_SIDE);
}

static ig_status get_bool(const mf_ctx *c, const char *what, const char *s, bool *out) {
    if (strcmp(s, "0") == 0 || strcmp(s, "1") == 0) {
        *out = s[0] == '1';
        return IG_OK;
    }
    return mf_error(c, IG_ERR_ARG, "%s: %s '%s' must be 0 or 1", c->layer, what, s);
}

static ig_status get_real(const mf_ctx *c, const char *what, const char *s, double lo, double hi, double *out) {
    if (parse_double(s, out) && *out >= lo && *out <= hi) return IG_OK;
    return mf_error(c, IG_ERR_ARG, "%s: %s '%s' is not a number in [%g, %g]", c->layer, what, s, lo, hi);
}

/* ---- layers ------------------------------------------------------------------------------ */

typedef struct mf_line {
    char *word[MF_MAX_WORDS]; /* word[0] is the layer name */
    int nwords;
    char *pos[MF_MAX_WORDS];  /* positional arguments */
    int npos;
    char *key[MF_MAX_WORDS], *val[MF_MAX_WORDS];
    int nopt;
} mf_line;

typedef struct mf_spec {
    const char *name;
    int min_pos, max_pos;
    const char *const *opts; /* NULL-terminated */
    const char *usage;
} mf_spec;

static const char *const no_opts[] = {NULL};
static const char *const conv_opts[] = {"stride", "pad", "dilation", "groups", "bias", NULL};
static const char *const bias_opts[] = {"bias", NULL};
static const char *const pool_opts[] = {"stride", "pad", "ceil", NULL};
static const char *const eps_opts[] = {"eps", NULL};
static const char *const stride_opts[] = {"stride", NULL};

static const mf_spec specs[] = {
    {"conv", 2, 2, conv_opts, "conv OUT K [stride=S] [pad=P] [dilation=D] [groups=G] [bias=0|1]"},
    {"linear", 1, 1, bias_opts, "linear OUT|classes [bias=0|1]"},
    {"bn", 0, 0, no_opts, "bn"},
    {"layernorm", 0, 0, eps_opts, "layernorm [eps=E]"},
    {"relu", 0, 0, no_opts, "relu"},
    {"leaky_relu", 0, 1, no_opts, "leaky_relu [SLOPE]"},
    {"gelu", 0, 0, no_opts, "gelu"},
    {"silu", 0, 0, no_opts, "silu"},
    {"sigmoid", 0, 0, no_opts, "sigmoid"},
    {"tanh", 0, 0, no_opts, "tanh"},
    {"softmax", 0, 0, no_opts, "softmax"},
    {"maxpool", 1, 1, pool_opts, "maxpool K [stride=S] [pad=P] [ceil=0|1]"},
    {"avgpool", 1, 1, pool_opts, "avgpool K [stride=S] [pad=P] [ceil=0|1]"},
    {"adaptive_avgpool", 1, 2, no_opts, "adaptive_avgpool H [W]"},
    {"flatten", 0, 0, no_opts, "flatten"},
    {"dropout", 0, 1, no_opts, "dropout [P]"},
    {"block", 1, 1, stride_opts, "block OUT [stride=S]"},
};

static const char *opt(const mf_line *l, const char *key) {
    for (int i = 0; i < l->nopt; i++)
        if (strcmp(l->key[i], key) == 0) return l->val[i];
    return NULL;
}

/* Checks the argument count and option names of l against spec s. */
static ig_status check_words(const mf_ctx *c, const mf_spec *s, const mf_line *l) {
    if (l->npos < s->min_pos)
        return mf_error(c, IG_ERR_ARG, "%s: missing argument (usage: %s)", s->name, s->usage);
    if (l->npos > s->max_pos)
        return mf_error(c, IG_ERR_ARG, "%s: unexpected argument '%s' (usage: %s)", s->name, l->pos[s->max_pos],
                        s->usage);
    for (int i = 0; i < l->nopt; i++) {
        bool known = false;
        for (const char *const *o = s->opts; *o; o++)
            if (strcmp(*o, l->key[i]) == 0) known = true;
        if (!known)
            return mf_error(c, IG_ERR_ARG, "%s: unknown option '%s' (usage: %s)", s->name, l->key[i], s->usage);
        for (int k = 0; k < i; k++)
            if (strcmp(l->key[k], l->key[i]) == 0)
                return mf_error(c, IG_ERR_ARG, "%s: option '%s' given twice", s->name, l->key[i]);
        if (!l->val[i][0]) return mf_error(c, IG_ERR_ARG, "%s: option '%s' has no value", s->name, l->key[i]);
    }
    return IG_OK;
}

static ig_status need_image(const mf_ctx *c, const mf_shape *in) {
    if (in->rank == 3) return IG_OK;
    char b[96];
    shape_text(in, b, sizeof b);
    return mf_error(c, IG_ERR_SHAPE, "%s needs an image input [C,H,W], but the input here is %s (after flatten)",
                    c->layer, b);
}

static ig_status check_params(const mf_ctx *c, int64_t n) {
    if (n <= MF_MAX_PARAMS) return IG_OK;
    return mf_error(c, IG_ERR_SHAPE, "%s: the layer would have %s%lld parameters, more than the %lld limit", c->layer,
                    n == INT64_MAX ? "over " : "", (long long)n, (long long)MF_MAX_PARAMS);
}

/* Output side of a conv or pool: torch's formula (floor or ceil mode); <= 0 if it does not fit. */
static int64_t out_side(int64_t in, int k, int s, int p, int dil, bool ceil_mode) {
    int64_t num = in + 2 * (int64_t)p - (int64_t)dil * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    if (num < 0) return 0;
    int64_t o = num / s + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    return o;
}

/* Builds the layer of line l for input shape *sh, updating *sh; NULL with an error. */
static ig_module *make_layer(mf_ctx *c, const mf_line *l, mf_shape *sh) {
    const mf_spec *s = NULL;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (strcmp(specs[i].name, l->word[0]) == 0) s = &specs[i];
    if (!s) {
        mf_error(c, IG_ERR_ARG, "unknown layer '%s' (known: conv, linear, bn, layernorm, relu, leaky_relu, gelu, "
                 "silu, sigmoid, tanh, softmax, maxpool, avgpool, adaptive_avgpool, flatten, dropout, block)",
                 l->word[0]);
        return NULL;
    }
    c->layer = s->name;
    c->usage = s->usage;
    if (check_words(c, s, l) != IG_OK) return NULL;
    const char *name = s->name;
    const char *v;
    char b[96];

    if (strcmp(name, "conv") == 0) {
        int64_t out = 0;
        int k[2], st[2] = {1, 1}, pad[2] = {0, 0}, dil[2] = {1, 1};
        int64_t groups = 1;
        bool bias = true;
        if (need_image(c, sh) || get_count(c, "OUT", l->pos[0], &out) || get_size(c, "K", l->pos[1], 1, k))
            return NULL;
        if ((v = opt(l, "stride")) && get_size(c, "stride", v, 1, st)) return NULL;
        if ((v = opt(l, "pad")) && get_size(c, "pad", v, 0, pad)) return NULL;
        if ((v = opt(l, "dilation")) && get_size(c, "dilation", v, 1, dil)) return NULL;
        if ((v = opt(l, "bias")) && get_bool(c, "bias", v, &bias)) return NULL;
        if ((v = opt(l, "groups")) && !parse_int(v, 1, MF_MAX_COUNT, &groups)) {
            mf_error(c, IG_ERR_ARG, "conv: groups '%s' is not an integer in 1..%lld", v, (long long)MF_MAX_COUNT);
            return NULL;
        }
        if (sh->d[0] % groups || out % groups) {
            mf_error(c, IG_ERR_SHAPE, "conv: groups=%lld must divide the input channels (%lld) and OUT (%lld)",
                     (long long)groups, (long long)sh->d[0], (long long)out);
            return NULL;
        }
        int64_t oh = out_side(sh->d[1], k[0], st[0], pad[0], dil[0], false);
        int64_t ow = out_side(sh->d[2], k[1], st[1], pad[1], dil[1], false);
        if (oh <= 0 || ow <= 0) {
            shape_text(sh, b, sizeof b);
            mf_error(c, IG_ERR_SHAPE, "conv: kernel %dx%d (dilation %dx%d) does not fit the input %s padded by %dx%d",
                     k[0], k[1], dil[0], dil[1], b, pad[0], pad[1]);
            return NULL;
        }
        if (check_params(c, mul_sat(mul_sat(out, sh->d[0] / groups), (int64_t)k[0] * k[1]))) return NULL;
        ig_conv2d_params p = {.stride = {st[0], st[1]}, .padding = {pad[0], pad[1]},
                              .dilation = {dil[0], dil[1]}, .groups = (int)groups};
        ig_module *m = ig_nn_conv2d(sh->d[0], out, k[0], k[1], &p, bias);
        *sh = (mf_shape){3, {out, oh, ow}};
        return m;
    }
    if (strcmp(name, "linear") == 0) {
        int64_t out = 0;
        bool bias = true;
        if (sh->rank != 1) {
            shape_text(sh, b, sizeof b);
            mf_error(c, IG_ERR_SHAPE, "linear after an image-shaped output %s needs 'flatten' first", b);
            return NULL;
        }
        if (get_count(c, "OUT", l->pos[0], &out)) return NULL;
        if ((v = opt(l, "bias")) && get_bool(c, "bias", v, &bias)) return NULL;
        if (check_params(c, mul_sat(out, sh->d[0]))) return NULL;
        ig_module *m = ig_nn_linear(sh->d[0], out, bias);
        *sh = (mf_shape){1, {out, 0, 0}};
        return m;
    }
    if (strcmp(name, "bn") == 0) {
        /* weight and bias of the channels (or features; the running stats are buffers) */
        if (check_params(c, mul_sat(sh->d[0], 2))) return NULL;
        return sh->rank == 3 ? ig_nn_batchnorm2d(sh->d[0]) : ig_nn_batchnorm1d(sh->d[0]);
    }
    if (strcmp(name, "layernorm") == 0) {
        double eps = 1e-5;
        if ((v = opt(l, "eps")) && get_real(c, "eps", v, 0, 1, &eps)) return NULL;
        int64_t numel = sh->rank == 3 ? mul_sat(mul_sat(sh->d[0], sh->d[1]), sh->d[2]) : sh->d[0];
        if (check_params(c, mul_sat(numel, 2))) return NULL;
        return ig_nn_layernorm(sh->rank, sh->d, eps);
    }
    if (strcmp(name, "relu") == 0) return ig_nn_relu();
    if (strcmp(name, "gelu") == 0) return ig_nn_gelu();
    if (strcmp(name, "silu") == 0) return ig_nn_silu();
    if (strcmp(name, "sigmoid") == 0) return ig_nn_sigmoid();
    if (strcmp(name, "tanh") == 0) return ig_nn_tanh();
    if (strcmp(name, "softmax") == 0) return ig_nn_softmax(1);
    if (strcmp(name, "leaky_relu") == 0) {
        double slope = 0.01;
        if (l->npos > 0 && get_real(c, "SLOPE", l->pos[0], -1e6, 1e6, &slope)) return NULL;
        return ig_nn_leaky_relu(slope);
    }
    if (strcmp(name, "dropout") == 0) {
        double p = 0.5;
        if (l->npos > 0 && get_real(c, "P", l->pos[0], 0, 1, &p)) return NULL;
        return ig_nn_dropout(p);
    }
    if (strcmp(name, "flatten") == 0) {
        if (sh->rank == 3) *sh = (mf_shape){1, {mul_sat(mul_sat(sh->d[0], sh->d[1]), sh->d[2]), 0, 0}};
        return ig_nn_flatten(1, -1);
    }
    if (strcmp(name, "maxpool") == 0 || strcmp(name, "avgpool") == 0) {
        int k[2], st[2], pad[2] = {0, 0};
        bool ceil_mode = false;
        if (need_image(c, sh) || get_size(c, "K", l->pos[0], 1, k)) return NULL;
        st[0] = k[0], st[1] = k[1];
        if ((v = opt(l, "stride")) && get_size(c, "stride", v, 1, st)) return NULL;
        if ((v = opt(l, "pad")) && get_size(c, "pad", v, 0, pad)) return NULL;
        if ((v = opt(l, "ceil")) && get_bool(c, "ceil", v, &ceil_mode)) return NULL;
        if (pad[0] > k[0] / 2 || pad[1] > k[1] / 2) {
            mf_error(c, IG_ERR_ARG, "%s: pad %dx%d is more than half the kernel %dx%d", name, pad[0], pad[1], k[0],
                     k[1]);
            return NULL;
        }
        int64_t oh = out_side(sh->d[1], k[0], st[0], pad[0], 1, ceil_mode);
        int64_t ow = out_side(sh->d[2], k[1], st[1], pad[1], 1, ceil_mode);
        if (oh <= 0 || ow <= 0) {
            shape_text(sh, b, sizeof b);
            mf_error(c, IG_ERR_SHAPE, "%s: kernel %dx%d does not fit the input %s", name, k[0], k[1], b);
            return NULL;
        }
        ig_pool2d_params p = {.kernel = {k[0], k[1]}, .stride = {st[0], st[1]}, .padding = {pad[0], pad[1]},
                              .ceil_mode = ceil_mode};
        *sh = (mf_shape){3, {sh->d[0], oh, ow}};
        return name[0] == 'm' ? ig_nn_maxpool2d(&p) : ig_nn_avgpool2d(&p);
    }
    if (strcmp(name, "adaptive_avgpool") == 0) {
        int64_t oh = 0, ow = 0;
        if (need_image(c, sh)) return NULL;
        if (!parse_int(l->pos[0], 1, MF_MAX_COUNT, &oh) || (l->npos > 1 && !parse_int(l->pos[1], 1, MF_MAX_COUNT, &ow))) {
            mf_error(c, IG_ERR_ARG, "adaptive_avgpool: the output size '%s%s%s' is not 1 or 2 integers in 1..%lld",
                     l->pos[0], l->npos > 1 ? " " : "", l->npos > 1 ? l->pos[1] : "", (long long)MF_MAX_COUNT);
            return NULL;
        }
        if (l->npos == 1) ow = oh;
        *sh = (mf_shape){3, {sh->d[0], oh, ow}};
        return ig_nn_adaptive_avgpool2d(oh, ow);
    }
    /* block */
    int64_t out = 0, stride = 1;
    if (need_image(c, sh) || get_count(c, "OUT", l->pos[0], &out)) return NULL;
    if ((v = opt(l, "stride")) && !parse_int(v, 1, MF_MAX_SIDE, &stride)) {
        mf_error(c, IG_ERR_ARG, "block: stride '%s' is not an integer in 1..%d", v, MF_MAX_SIDE);
        return NULL;
    }
    if (check_params(c, mul_sat(mul_sat(out, sh->d[0] + out), 9))) return NULL;
    ig_module *m = ig_nn_basic_block(sh->d[0], out, (int)stride);
    /* 3x3 convs with padding 1: side (H - 1) / stride + 1 */
    *sh = (mf_shape){3, {out, (sh->d[1] - 1) / stride + 1, (sh->d[2] - 1) / stride + 1}};
    return m;
}

/* Splits line (modified in place; comment already cut) into words and sorts them into
 * positionals and KEY=VALUE options. */
static ig_status split_line(const mf_ctx *c, char *line, mf_line *l) {
    memset(l, 0, sizeof *l);
    char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f') *p++ = '\0';
        if (!*p) break;
        if (l->nwords == MF_MAX_WORDS)
            return mf_error(c, IG_ERR_ARG, "too many words on one line (at most %d)", MF_MAX_WORDS);
        l->word[l->nwords++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\v' && *p != '\f') p++;
    }
    for (int i = 1; i < l->nwords; i++) {
        char *eq = strchr(l->word[i], '=');
        if (eq) {
            *eq = '\0';
            l->key[l->nopt] = l->word[i];
            l->val[l->nopt++] = eq + 1;
        } else {
            l->pos[l->npos++] = l->word[i];
        }
    }
    return IG_OK;
}

static ig_module *build(const char *op, const char *text, size_t len, const char *source, int64_t channels,
                        int64_t height, int64_t width, int64_t num_classes) {
    mf_ctx c = {.op = op, .src = source ? source : "<text>", .classes = num_classes};
    if (channels <= 0 || height <= 0 || width <= 0 || num_classes <= 0 || channels > MF_MAX_COUNT ||
        height > MF_MAX_COUNT || width > MF_MAX_COUNT || num_classes > MF_MAX_COUNT) {
        mf_error(&c, IG_ERR_ARG, "sizes must be in 1..%lld, got channels %lld, %lldx%lld, %lld classes",
                 (long long)MF_MAX_COUNT, (long long)channels, (long long)height, (long long)width,
                 (long long)num_classes);
        return NULL;
    }
    if (memchr(text, '\0', len)) {
        mf_error(&c, IG_ERR_FORMAT, "contains a NUL byte: not a text model description");
        return NULL;
    }
    char *buf = malloc(len + 1);
    ig_module *seq = buf ? ig_nn_sequential(0, NULL) : NULL;
    if (!buf || !seq) {
        free(buf);
        if (!buf) igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    mf_shape sh = {3, {channels, height, width}};
    int layers = 0, last_line = 0;
    ig_status st = IG_OK;
    char *line = buf;
    for (int lineno = 1; line && st == IG_OK; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        c.line = lineno;
        mf_line l;
        st = split_line(&c, line, &l);
        if (st == IG_OK && l.nwords > 0) {
            ig_module *m = make_layer(&c, &l, &sh);
            if (!m) {
                /* A constructor's own message gets the line in front of it. */
                const char *e = ig_last_error();
                if (!strstr(e, op)) {
                    char inner[512];
                    snprintf(inner, sizeof inner, "%s", e);
                    mf_error(&c, ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_ARG, "%s: %s", l.word[0], inner);
                }
                st = ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_ARG;
            } else {
                st = ig_nn_sequential_append(seq, m);
                layers++;
                last_line = lineno;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    if (st == IG_OK && layers == 0) {
        c.line = 0;
        st = mf_error(&c, IG_ERR_FORMAT, "no layers (the description is empty or only comments)");
    }
    if (st == IG_OK && (sh.rank != 1 || sh.d[0] != num_classes)) {
        char b[96];
        shape_text(&sh, b, sizeof b);
        c.line = last_line;
        st = mf_error(&c, IG_ERR_SHAPE, "the model's output is %s, but a classifier of %lld classes must end in [%lld] "
                      "(end with %s'linear classes')", b, (long long)num_classes, (long long)num_classes,
                      sh.rank == 3 ? "'flatten' and " : "");
    }
    if (st != IG_OK) {
        ig_module_free(seq);
        return NULL;
    }
    return seq;
}

ig_module *ig_model_from_text(const char *text, const char *source, int64_t channels, int64_t height, int64_t width,
                              int64_t num_classes) {
    static const char *op = "ig_model_from_text";
    if (!text) {
        igi_error_null(op, "text");
        return NULL;
    }
    /* The file's limit holds for text too: the line counter is an int, and no description
     * is this long. strnlen: a huge text is not read to its end. */
    size_t len = strnlen(text, (size_t)MF_MAX_FILE + 1);
    if (len > MF_MAX_FILE) {
        igi_error(IG_ERR_FORMAT, "%s: %s: larger than %u bytes: not a model description", op,
                  source ? source : "<text>", MF_MAX_FILE);
        return NULL;
    }
    return build(op, text, len, source, channels, height, width, num_classes);
}

ig_module *ig_model_from_file(const char *path, int64_t channels, int64_t height, int64_t width,
                              int64_t num_classes) {
    static const char *op = "ig_model_from_file";
    if (!path) {
        igi_error_null(op, "path");
        return NULL;
    }
    /* "op: path: cannot open: why" or "...: not a regular file (a FIFO)": a FIFO is refused
     * without waiting for a writer, a folder before the first read. */
    struct stat sb;
    FILE *f = igi_fopen_regular(op, path, &sb);
    if (!f) return NULL;
    /* Reads at most MF_MAX_FILE + 1 bytes: a longer file is refused, whatever it claims. */
    char *text = malloc(MF_MAX_FILE + 1);
    size_t n = text ? fread(text, 1, MF_MAX_FILE + 1, f) : 0;
    bool read_error = text && ferror(f);
    fclose(f);
    ig_module *m = NULL;
    if (!text) igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    else if (read_error) igi_error(IG_ERR_IO, "%s: %s: read failed", op, path);
    else if (n > MF_MAX_FILE) igi_error(IG_ERR_FORMAT, "%s: %s: larger than %u bytes: not a model description", op, path, MF_MAX_FILE);
    else m = build(op, text, n, path, channels, height, width, num_classes);
    free(text);
    return m;
}

ig_module *ig_model_build(const char *name_or_path, int64_t channels, int64_t height, int64_t width,
                          int64_t num_classes) {
    static const char *op = "ig_model_build";
    if (!name_or_path) {
        igi_error_null(op, "name_or_path");
        return NULL;
    }
    for (const char *const *z = ig_model_names(); *z; z++)
        if (strcmp(*z, name_or_path) == 0) return ig_model_create(name_or_path, channels, height, width, num_classes);
    /* A bare word that names no file is a mistyped zoo name; anything else (a path, or a
     * word that exists: a file, a FIFO, a folder) is read as a model file, whose errors
     * say why it cannot be. stat, not open: a FIFO must not block here. */
    struct stat sb;
    if (!strchr(name_or_path, '/') && !strchr(name_or_path, '.') && stat(name_or_path, &sb) != 0 && errno == ENOENT) {
        igi_error(IG_ERR_ARG, "%s: '%s' is neither a zoo model (mlp, cnn, resnet8, resnet20, resnet56) nor a model file",
                  op, name_or_path);
        return NULL;
    }
    return ig_model_from_file(name_or_path, channels, height, width, num_classes);
}
