/*
 * nn/summary.c — ig_model_summary: per-layer output shapes, parameter counts and FLOPs.
 *
 * One [1,C,H,W] zeros image (zeros, so the default generator is not advanced) runs through
 * the model in eval mode with grad off, inside a scope; a per-thread forward hook records
 * every module's output as it is produced. Each module's train flag is restored after.
 *
 * FLOPs counted per image (a multiply-add is 2):
 *   Conv2d   out_elems * (2 * Cin/groups * kh * kw + 1 if bias)
 *   Linear   out_elems * (2 * in_features + 1 if bias)
 *   BatchNorm1d/2d, LayerNorm, ReLU, LeakyReLU, GELU, SiLU, Sigmoid, Tanh, Softmax,
 *   MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: 1 per output element
 *   BasicBlock (its functional ops, beside its child layers): 3 per output element
 *            (the ReLU after b1, the residual add, the final ReLU)
 *   Flatten, Dropout (identity in eval), Embedding (a lookup), containers: 0
 * A module that runs twice is counted twice.
 */
#include <inttypes.h>
#include <string.h>

#include "module_impl.h"

typedef struct summary_row {
    ig_module *m;
    char *path;
    bool training; /* saved mode, restored at the end */
    bool ran;
    int ndim;
    int64_t shape[IG_MAX_DIMS];
} summary_row;

typedef struct summary_ctx {
    summary_row *rows;
    int n, cap;
    bool oom;
    int64_t flops;
} summary_ctx;

static void collect_row(void *vctx, const char *path, ig_module *mod) {
    summary_ctx *c = vctx;
    if (c->oom) return;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 32;
        summary_row *nr = realloc(c->rows, sizeof *nr * (size_t)cap);
        if (!nr) {
            c->oom = true;
            return;
        }
        c->rows = nr;
        c->cap = cap;
    }
    summary_row *r = &c->rows[c->n];
    memset(r, 0, sizeof *r);
    r->m = mod;
    r->training = mod->training;
    size_t len = strlen(path);
    r->path = malloc(len + 1);
    if (!r->path) {
        c->oom = true;
        return;
    }
    memcpy(r->path, path, len + 1);
    c->n++;
}

static bool is_type(const ig_module *m, const char *const *types) {
    for (; *types; types++)
        if (strcmp(m->type, *types) == 0) return true;
    return false;
}

static int64_t own_param(const ig_module *m, const char *name, int dim) {
    ig_tensor *t = igi_module_find_entry(m, name, NULL);
    return t && dim < t->ndim ? t->shape[dim] : -1;
}

/* FLOPs of one forward of m producing out (see the table at the top). */
static int64_t module_flops(const ig_module *m, const ig_tensor *out) {
    static const char *const elementwise[] = {"BatchNorm1d", "BatchNorm2d", "LayerNorm", "ReLU", "LeakyReLU",
                                              "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax", "MaxPool2d",
                                              "AvgPool2d", "AdaptiveAvgPool2d", NULL};
    int64_t n = igi_numel(out->ndim, out->shape);
    bool bias = igi_module_find_entry(m, "bias", NULL) != NULL;
    if (strcmp(m->type, "Conv2d") == 0) {
        ig_tensor *w = igi_module_find_entry(m, "weight", NULL);
        int64_t per_out = igi_numel(w->ndim, w->shape) / w->shape[0]; /* Cin/groups * kh * kw */
        return n * (2 * per_out + (bias ? 1 : 0));
    }
    if (strcmp(m->type, "Linear") == 0) return n * (2 * own_param(m, "weight", 1) + (bias ? 1 : 0));
    if (strcmp(m->type, "BasicBlock") == 0) return 3 * n;
    if (is_type(m, elementwise)) return n;
    return 0;
}

static void summary_hook(ig_module *m, ig_tensor *out, void *vctx) {
    summary_ctx *c = vctx;
    for (int i = 0; i < c->n; i++) {
        if (c->rows[i].m != m) continue;
        summary_row *r = &c->rows[i];
        r->ran = true;
        r->ndim = out->ndim;
        memcpy(r->shape, out->shape, sizeof(int64_t) * (size_t)out->ndim);
        c->flops += module_flops(m, out);
        return;
    }
}

static int64_t own_params(const ig_module *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += igi_numel(m->params[i].tensor->ndim, m->params[i].tensor->shape);
    return n;
}

static void print_table(FILE *f, const summary_ctx *c, const ig_module *m, int64_t params) {
    int w = 5; /* "layer" */
    for (int i = 0; i < c->n; i++) {
        int len = (int)strlen(c->rows[i].path);
        if (len > w) w = len;
    }
    fprintf(f, "%-*s  %-18s %-20s %12s\n", w, "layer", "type", "output shape", "params");
    for (int i = 0; i < c->n; i++) {
        const summary_row *r = &c->rows[i];
        /* Leaves are the layers; a container shows up only if it holds parameters itself. */
        if (r->m->n_children > 0 && r->m->n_params == 0) continue;
        if (r->m == m && m->n_children > 0) continue;
        char shape[160] = "(not run)";
        if (r->ran) igi_shape_str(r->ndim, r->shape, shape, sizeof shape);
        fprintf(f, "%-*s  %-18s %-20s %12" PRId64 "\n", w, r->path[0] ? r->path : "(model)", r->m->type, shape,
                own_params(r->m));
    }
    fprintf(f, "total params: %" PRId64 "\nFLOPs per image: %" PRId64 "\n", params, c->flops);
}

static bool first_param_visit(void *ctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)name;
    (void)is_param;
    (void)owner;
    *(ig_dtype *)ctx = t->dtype;
    return false; /* stop at the first */
}

ig_status ig_model_summary(ig_module *m, int64_t channels, int64_t height, int64_t width, FILE *f,
                           ig_model_stats *stats) {
    static const char *op = "ig_model_summary";
    if (!m) return igi_error_null(op, "m");
    if (channels <= 0 || height <= 0 || width <= 0)
        return igi_error(IG_ERR_ARG, "%s: input size [%lld,%lld,%lld] must be positive", op, (long long)channels,
                         (long long)height, (long long)width);
    summary_ctx c = {0};
    ig_status st = igi_module_walk_modules(m, collect_row, &c);
    if (st == IG_OK && c.oom) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    int64_t params = st == IG_OK ? ig_module_num_params(m) : -1;
    if (st == IG_OK && params < 0) st = ig_last_status();
    if (st == IG_OK) {
        ig_dtype dt = IG_F32;
        igi_module_walk(m, true, false, first_param_visit, &dt);
        igi_forward_hook prev;
        void *prev_ctx;
        ig_module_train(m, false);
        igi_module_set_forward_hook(summary_hook, &c, &prev, &prev_ctx);
        ig_scope *s = ig_scope_begin();
        if (!s) st = ig_last_status();
        else {
            ig_no_grad_begin();
            ig_tensor *x = ig_zeros(4, (int64_t[]){1, channels, height, width}, dt);
            ig_tensor *y = ig_module_forward(m, x);
            if (!y) st = ig_last_status() != IG_OK ? ig_last_status() : IG_ERR_STATE;
            ig_no_grad_end();
            ig_scope_end(s);
        }
        igi_module_set_forward_hook(prev, prev_ctx, NULL, NULL);
        for (int i = 0; i < c.n; i++) c.rows[i].m->training = c.rows[i].training;
    }
    if (st == IG_OK) {
        if (f) print_table(f, &c, m, params);
        if (stats) {
            stats->params = params;
            stats->flops_per_image = c.flops;
        }
    }
    for (int i = 0; i < c.n; i++) free(c.rows[i].path);
    free(c.rows);
    return st;
}
