/*
 * nn/module.c — the generic module tree: construction, ownership, lookup, train/eval,
 * parameter counting, forward (with the per-thread hook the summary uses), dtype
 * conversion, and PyTorch-compatible state dicts (save and validated load).
 *
 * Ownership follows nn.h: adding a child or tensor hands it to the module even when the
 * call fails, so nested constructor calls never leak. State-dict names are built by
 * walking the tree in torch's order (own parameters, own buffers, children) and interned
 * in the module the dict was taken from, so the returned name pointers stay valid until
 * that module is freed.
 */
#include <string.h>

#include "../core/backend_impl.h"
#include "module_impl.h"

/* ---- small helpers ------------------------------------------------------------------- */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

ig_tensor *igi_heap_zeros(int ndim, const int64_t *shape, ig_dtype dt) {
    igi_heap_mode(1);
    ig_tensor *t = ig_zeros(ndim, shape, dt);
    igi_heap_mode(-1);
    return t;
}

/* A growable path buffer for dotted names. */
typedef struct path_buf {
    char *s;
    size_t len, cap;
} path_buf;

static bool path_push(path_buf *p, const char *part) {
    size_t add = strlen(part) + (p->len ? 1 : 0);
    if (p->len + add + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 64;
        while (p->len + add + 1 > cap) cap *= 2;
        char *ns = realloc(p->s, cap);
        if (!ns) return false;
        p->s = ns;
        p->cap = cap;
    }
    if (p->len) p->s[p->len++] = '.';
    memcpy(p->s + p->len, part, strlen(part) + 1);
    p->len += strlen(part);
    return true;
}

static void path_pop(path_buf *p, size_t len) {
    p->len = len;
    if (p->s) p->s[len] = '\0';
}

/* ---- name interning (state-dict names must outlive the call that made them) ------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The interned copy of s in table t, adding it if new; NULL when out of memory. */
static const char *intern(igi_name_table *t, const char *s) {
    if (t->cap) {
        for (size_t i = hash_str(s) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
            if (!t->slots[i]) break;
            if (strcmp(t->slots[i], s) == 0) return t->slots[i];
        }
    }
    if ((t->count + 1) * 2 > t->cap) { /* keep the load factor at most 1/2 */
        size_t ncap = t->cap ? t->cap * 2 : 64;
        char **ns = calloc(ncap, sizeof *ns);
        if (!ns) return NULL;
        for (size_t k = 0; k < t->cap; k++) {
            if (!t->slots[k]) continue;
            size_t i = hash_str(t->slots[k]) & (ncap - 1);
            while (ns[i]) i = (i + 1) & (ncap - 1);
            ns[i] = t->slots[k];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    char *d = dup_str(s);
    if (!d) return NULL;
    size_t i = hash_str(s) & (t->cap - 1);
    while (t->slots[i]) i = (i + 1) & (t->cap - 1);
    t->slots[i] = d;
    t->count++;
    return d;
}

static void names_free(igi_name_table *t) {
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i]);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- construction and ownership ------------------------------------------------------ */

ig_module *ig_module_new(const char *type, ig_module_forward_fn fn, void *ctx,
                         void (*free_ctx)(void *)) {
    if (!type) {
        igi_error_null("ig_module_new", "type");
        if (free_ctx) free_ctx(ctx);
        return NULL;
    }
    ig_module *m = calloc(1, sizeof *m);
    char *ty = dup_str(type);
    if (!m || !ty) {
        free(m);
        free(ty);
        if (free_ctx) free_ctx(ctx);
        igi_error(IG_ERR_NOMEM, "ig_module_new: out of memory");
        return NULL;
    }
    m->type = ty;
    m->forward = fn;
    m->ctx = ctx;
    m->free_ctx = free_ctx;
    m->training = true; /* torch modules start in training mode */
    return m;
}

void *ig_module_ctx(const ig_module *m) { return m ? m->ctx : NULL; }

const char *ig_module_type(const ig_module *m) { return m ? m->type : NULL; }

void ig_module_free(ig_module *m) {
    if (!m) return;
    for (int i = 0; i < m->n_children; i++) {
        ig_module_free(m->children[i].module);
        free(m->children[i].name);
    }
    for (int i = 0; i < m->n_params; i++) {
        ig_tensor_free(m->params[i].tensor);
        free(m->params[i].name);
    }
    for (int i = 0; i < m->n_buffers; i++) {
        ig_tensor_free(m->buffers[i].tensor);
        free(m->buffers[i].name);
    }
    free(m->children);
    free(m->params);
    free(m->buffers);
    ig_tensor_free(m->flat_params);
    ig_tensor_free(m->flat_grads);
    if (m->free_ctx) m->free_ctx(m->ctx);
    names_free(&m->names);
    free(m->type);
    free(m);
}

ig_module *igi_module_find_child(const ig_module *m, const char *name) {
    for (int i = 0; i < m->n_children; i++)
        if (strcmp(m->children[i].name, name) == 0) return m->children[i].module;
    return NULL;
}

ig_tensor *igi_module_find_entry(const ig_module *m, const char *name, bool *is_param) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) {
            if (is_param) *is_param = true;
            return m->params[i].tensor;
        }
    for (int i = 0; i < m->n_buffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0) {
            if (is_param) *is_param = false;
            return m->buffers[i].tensor;
        }
    return NULL;
}

/* Checks a new local name: non-empty, no '.', unique in m. Sets an error naming op. */
static ig_status check_new_name(const char *op, const ig_module *m, const char *name) {
    if (!name) return igi_error_null(op, "name");
    if (!name[0]) return igi_error(IG_ERR_ARG, "%s: empty name", op);
    if (strchr(name, '.'))
        return igi_error(IG_ERR_ARG, "%s: name '%s' contains '.' (dots separate path parts)", op, name);
    if (igi_module_find_child(m, name) || igi_module_find_entry(m, name, NULL))
        return igi_error(IG_ERR_ARG, "%s: module '%s' already has an entry or child named '%s'", op,
                         m->type, name);
    return IG_OK;
}

ig_status ig_module_add_child(ig_module *m, const char *name, ig_module *child) {
    static const char *op = "ig_module_add_child";
    if (!child) {
        /* The child's constructor failed: keep its message (this is the chain's first failure). */
        return igi_error_null(op, "child");
    }
    /* A module that already has a parent (or is an ancestor of m) belongs to another
     * tree: refuse it without freeing it, since freeing would break that tree. */
    if (child->parent)
        return igi_error(IG_ERR_ARG, "%s: module '%s' is already a child of another module", op, child->type);
    for (const ig_module *a = m; a; a = a->parent)
        if (a == child)
            return igi_error(IG_ERR_ARG, "%s: adding '%s' would make a cycle", op, child->type);
    ig_status st = IG_OK;
    if (!m) st = igi_error_null(op, "m");
    else if (m->flat_locked)
        st = igi_error(IG_ERR_STATE, "%s: module '%s' is flattened; add children before ig_module_flatten",
                       op, m->type);
    else st = check_new_name(op, m, name);
    if (st == IG_OK && m->n_children == m->cap_children) {
        int cap = m->cap_children ? m->cap_children * 2 : 4;
        igi_mod_child *nc = realloc(m->children, sizeof *nc * (size_t)cap);
        if (!nc) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        else {
            m->children = nc;
            m->cap_children = cap;
        }
    }
    char *nm = st == IG_OK ? dup_str(name) : NULL;
    if (st == IG_OK && !nm) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    if (st != IG_OK) {
        ig_module_free(child);
        return st;
    }
    m->children[m->n_children].name = nm;
    m->children[m->n_children].module = child;
    m->n_children++;
    child->parent = m;
    return IG_OK;
}

/* Shared body of add_param / add_buffer. */
static ig_status add_entry(const char *op, ig_module *m, const char *name, ig_tensor *t, bool param) {
    if (!t) return igi_error_null(op, "t");
    ig_status st = IG_OK;
    if (!m) st = igi_error_null(op, "m");
    else if (t->scoped)
        st = igi_error(IG_ERR_ARG, "%s: '%s' must be a heap tensor (made outside any scope, or ig_keep it)",
                       op, name ? name : "(null)");
    else if (param && !ig_dtype_is_float(t->dtype))
        st = igi_error(IG_ERR_DTYPE, "%s: parameter '%s' must be float32 or float64, got %s", op,
                       name ? name : "(null)", ig_dtype_name(t->dtype));
    else if (param && t->node)
        st = igi_error(IG_ERR_ARG, "%s: parameter '%s' must be a leaf (use ig_detach)", op,
                       name ? name : "(null)");
    else if (param && m->flat_locked)
        st = igi_error(IG_ERR_STATE, "%s: module '%s' is flattened; add parameters before ig_module_flatten",
                       op, m->type);
    else st = check_new_name(op, m, name);
    igi_mod_entry **arr = NULL;
    int *n = NULL, *cap = NULL;
    if (st == IG_OK) {
        arr = param ? &m->params : &m->buffers;
        n = param ? &m->n_params : &m->n_buffers;
        cap = param ? &m->cap_params : &m->cap_buffers;
        if (*n == *cap) {
            int ncap = *cap ? *cap * 2 : 4;
            igi_mod_entry *na = realloc(*arr, sizeof *na * (size_t)ncap);
            if (!na) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
            else {
                *arr = na;
                *cap = ncap;
            }
        }
    }
    char *nm = st == IG_OK ? dup_str(name) : NULL;
    if (st == IG_OK && !nm) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    if (st != IG_OK) {
        ig_tensor_free(t);
        return st;
    }
    if (param) t->requires_grad = true;
    (*arr)[*n].name = nm;
    (*arr)[*n].tensor = t;
    (*n)++;
    return IG_OK;
}

ig_status ig_module_add_param(ig_module *m, const char *name, ig_tensor *t) {
    return add_entry("ig_module_add_param", m, name, t, true);
}

ig_status ig_module_add_buffer(ig_module *m, const char *name, ig_tensor *t) {
    return add_entry("ig_module_add_buffer", m, name, t, false);
}

/* ---- lookup ---------------------------------------------------------------------------- */
/* Lookups answer "absent" with NULL and no error: a pending error would stop later NULL-
 * argument messages (igi_error_null keeps the first failure), so probing must not set one. */

ig_module *ig_module_child(const ig_module *m, const char *name) {
    if (!m) {
        igi_error_null("ig_module_child", "m");
        return NULL;
    }
    if (!name) {
        igi_error_null("ig_module_child", "name");
        return NULL;
    }
    return igi_module_find_child(m, name);
}

int ig_module_num_children(const ig_module *m) { return m ? m->n_children : 0; }

ig_module *ig_module_child_at(const ig_module *m, int i) {
    if (!m || i < 0 || i >= m->n_children) return NULL;
    return m->children[i].module;
}

ig_tensor *ig_module_get(const ig_module *m, const char *name) {
    if (!m) {
        igi_error_null("ig_module_get", "m");
        return NULL;
    }
    if (!name) {
        igi_error_null("ig_module_get", "name");
        return NULL;
    }
    /* Walk "a.b.c": every part but the last names a child. */
    for (;;) {
        const char *dot = strchr(name, '.');
        if (!dot) return igi_module_find_entry(m, name, NULL);
        const ig_module *next = NULL;
        size_t len = (size_t)(dot - name);
        for (int i = 0; i < m->n_children; i++)
            if (strlen(m->children[i].name) == len && memcmp(m->children[i].name, name, len) == 0) {
                next = m->children[i].module;
                break;
            }
        if (!next) return NULL;
        m = next;
        name = dot + 1;
    }
}

/* ---- walks ----------------------------------------------------------------------------- */

typedef struct walk_state {
    bool params_only;
    bool dedup;
    igi_entry_visit visit;
    void *ctx;
    path_buf path;
    ig_tensor **seen; /* dedup: tensors visited so far */
    size_t n_seen, cap_seen;
    bool oom;
} walk_state;

/* True if t was seen already (dedup); records it otherwise. */
static bool seen_before(walk_state *w, ig_tensor *t) {
    for (size_t i = 0; i < w->n_seen; i++)
        if (w->seen[i] == t) return true;
    if (w->n_seen == w->cap_seen) {
        size_t cap = w->cap_seen ? w->cap_seen * 2 : 64;
        ig_tensor **ns = realloc(w->seen, cap * sizeof *ns);
        if (!ns) {
            w->oom = true;
            return true;
        }
        w->seen = ns;
        w->cap_seen = cap;
    }
    w->seen[w->n_seen++] = t;
    return false;
}

static bool visit_entries(walk_state *w, ig_module *m, igi_mod_entry *arr, int n, bool is_param) {
    for (int i = 0; i < n; i++) {
        if (w->dedup && seen_before(w, arr[i].tensor)) {
            if (w->oom) return false;
            continue;
        }
        size_t len = w->path.len;
        if (!path_push(&w->path, arr[i].name)) {
            w->oom = true;
            return false;
        }
        bool go = w->visit(w->ctx, w->path.s, arr[i].tensor, is_param, m);
        path_pop(&w->path, len);
        if (!go) return false;
    }
    return true;
}

static bool walk_rec(walk_state *w, ig_module *m) {
    if (!visit_entries(w, m, m->params, m->n_params, true)) return false;
    if (!w->params_only && !visit_entries(w, m, m->buffers, m->n_buffers, false)) return false;
    for (int i = 0; i < m->n_children; i++) {
        size_t len = w->path.len;
        if (!path_push(&w->path, m->children[i].name)) {
            w->oom = true;
            return false;
        }
        bool go = walk_rec(w, m->children[i].module);
        path_pop(&w->path, len);
        if (!go) return false;
    }
    return true;
}

ig_status igi_module_walk(ig_module *m, bool params_only, bool dedup, igi_entry_visit visit,
                          void *ctx) {
    walk_state w = {.params_only = params_only, .dedup = dedup, .visit = visit, .ctx = ctx};
    if (!path_push(&w.path, "")) return igi_error(IG_ERR_NOMEM, "module walk: out of memory");
    path_pop(&w.path, 0);
    bool done = walk_rec(&w, m);
    free(w.path.s);
    free(w.seen);
    if (w.oom) return igi_error(IG_ERR_NOMEM, "module walk: out of memory");
    return done ? IG_OK : IG_ERR_STATE;
}

static bool walk_modules_rec(ig_module *m, path_buf *p, igi_module_visit visit, void *ctx) {
    visit(ctx, p->s, m);
    for (int i = 0; i < m->n_children; i++) {
        size_t len = p->len;
        if (!path_push(p, m->children[i].name)) return false;
        bool ok = walk_modules_rec(m->children[i].module, p, visit, ctx);
        path_pop(p, len);
        if (!ok) return false;
    }
    return true;
}

ig_status igi_module_walk_modules(ig_module *m, igi_module_visit visit, void *ctx) {
    path_buf p = {0};
    if (!path_push(&p, "")) return igi_error(IG_ERR_NOMEM, "module walk: out of memory");
    path_pop(&p, 0);
    bool ok = walk_modules_rec(m, &p, visit, ctx);
    free(p.s);
    return ok ? IG_OK : igi_error(IG_ERR_NOMEM, "module walk: out of memory");
}

/* ---- forward, modes, counting ---------------------------------------------------------- */

static _Thread_local igi_forward_hook fwd_hook;
static _Thread_local void *fwd_hook_ctx;

void igi_module_set_forward_hook(igi_forward_hook hook, void *ctx, igi_forward_hook *prev_hook,
                                 void **prev_ctx) {
    if (prev_hook) *prev_hook = fwd_hook;
    if (prev_ctx) *prev_ctx = fwd_hook_ctx;
    fwd_hook = hook;
    fwd_hook_ctx = ctx;
}

ig_tensor *ig_module_forward(ig_module *m, ig_tensor *x) {
    if (!m) {
        igi_error_null("ig_module_forward", "m");
        return NULL;
    }
    if (!x) {
        igi_error_null("ig_module_forward", "x");
        return NULL;
    }
    if (!m->forward) {
        igi_error(IG_ERR_STATE, "ig_module_forward: module '%s' has no forward function", m->type);
        return NULL;
    }
    ig_tensor *out = m->forward(m, x);
    if (out && fwd_hook) fwd_hook(m, out, fwd_hook_ctx);
    return out;
}

void ig_module_train(ig_module *m, bool training) {
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->n_children; i++) ig_module_train(m->children[i].module, training);
}

bool ig_module_is_training(const ig_module *m) { return m && m->training; }

static bool count_visit(void *ctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)name;
    (void)is_param;
    (void)owner;
    *(int64_t *)ctx += igi_numel(t->ndim, t->shape);
    return true;
}

int64_t ig_module_num_params(const ig_module *m) {
    if (!m) {
        igi_error_null("ig_module_num_params", "m");
        return -1;
    }
    int64_t n = 0;
    /* Shared parameters count once, as torch's sum(p.numel() for p in parameters()). */
    if (igi_module_walk((ig_module *)m, true, true, count_visit, &n) != IG_OK) return -1;
    return n;
}

/* ---- state dict ------------------------------------------------------------------------ */

typedef struct collect_ctx {
    ig_module *root;
    ig_named_tensor *out;
    int cap;
    int count;
    bool oom;
} collect_ctx;

static bool collect_visit(void *vctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)is_param;
    (void)owner;
    collect_ctx *c = vctx;
    if (c->count < c->cap) {
        const char *nm = intern(&c->root->names, name);
        if (!nm) {
            c->oom = true;
            return false;
        }
        c->out[c->count].name = nm;
        c->out[c->count].tensor = t;
    }
    c->count++;
    return true;
}

static int collect(const char *op, ig_module *m, ig_named_tensor *out, int cap, bool params_only) {
    if (!m) {
        igi_error_null(op, "m");
        return -1;
    }
    if (cap < 0 || (cap > 0 && !out)) {
        igi_error(IG_ERR_ARG, "%s: out must hold cap (%d) entries", op, cap);
        return -1;
    }
    collect_ctx c = {.root = m, .out = out, .cap = cap};
    /* The state dict lists a shared tensor under each of its names (as torch's state_dict);
     * named_parameters lists it once (as torch's named_parameters). */
    ig_status st = igi_module_walk(m, params_only, params_only, collect_visit, &c);
    if (c.oom) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return -1;
    }
    if (st != IG_OK) return -1;
    return c.count;
}

int ig_module_state_dict(ig_module *m, ig_named_tensor *out, int cap) {
    return collect("ig_module_state_dict", m, out, cap, false);
}

int ig_module_named_parameters(ig_module *m, ig_named_tensor *out, int cap) {
    return collect("ig_module_named_parameters", m, out, cap, true);
}

ig_status ig_module_load_state_dict(ig_module *m, const ig_named_tensor *src, int n, bool strict) {
    static const char *op = "ig_module_load_state_dict";
    if (!m) return igi_error_null(op, "m");
    if (n < 0 || (n > 0 && !src))
        return igi_error(IG_ERR_ARG, "%s: src must hold n (%d) entries", op, n);
    int total = ig_module_state_dict(m, NULL, 0);
    if (total < 0) return ig_last_status();
    ig_named_tensor *own = malloc(sizeof *own * (size_t)(total ? total : 1));
    int *match = malloc(sizeof *match * (size_t)(n ? n : 1)); /* src i -> own index or -1 */
    bool *found = calloc((size_t)(total ? total : 1), sizeof *found);
    ig_status st = IG_OK;
    if (!own || !match || !found) st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
    else if (ig_module_state_dict(m, own, total) != total) st = ig_last_status();
    char b1[160], b2[160];
    /* Pass 1: validate every entry. Nothing is written until all of them check out. */
    for (int i = 0; i < n && st == IG_OK; i++) {
        if (!src[i].name) {
            st = igi_error(IG_ERR_ARG, "%s: entry %d has a NULL name", op, i);
            break;
        }
        if (!src[i].tensor) {
            st = igi_error(IG_ERR_ARG, "%s: entry '%s' has a NULL tensor", op, src[i].name);
            break;
        }
        match[i] = -1;
        for (int k = 0; k < total; k++)
            if (strcmp(own[k].name, src[i].name) == 0) {
                match[i] = k;
                break;
            }
        if (match[i] < 0) {
            if (strict) st = igi_error(IG_ERR_ARG, "%s: unexpected key '%s' (strict load)", op, src[i].name);
            continue;
        }
        if (found[match[i]]) {
            st = igi_error(IG_ERR_ARG, "%s: key '%s' appears twice in the source", op, src[i].name);
            break;
        }
        found[match[i]] = true;
        ig_tensor *dst = own[match[i]].tensor, *s = src[i].tensor;
        if (s->ndim != dst->ndim || memcmp(s->shape, dst->shape, sizeof(int64_t) * (size_t)s->ndim))
            st = igi_error(IG_ERR_SHAPE, "%s: size mismatch for '%s': source %s, model %s", op, src[i].name,
                           ig_shape_str(s, b1, sizeof b1), ig_shape_str(dst, b2, sizeof b2));
        else if (s->dtype != dst->dtype)
            st = igi_error(IG_ERR_DTYPE, "%s: dtype mismatch for '%s': source %s, model %s", op, src[i].name,
                           ig_dtype_name(s->dtype), ig_dtype_name(dst->dtype));
        else if (s->device != dst->device)
            st = igi_error(IG_ERR_DEVICE, "%s: device mismatch for '%s'", op, src[i].name);
    }
    if (st == IG_OK && strict) {
        for (int k = 0; k < total; k++)
            if (!found[k]) {
                st = igi_error(IG_ERR_ARG, "%s: missing key '%s' (strict load)", op, own[k].name);
                break;
            }
    }
    /* Pass 2: copy. Shapes and dtypes match, so ig_copy_ cannot fail on them. Shared
     * tensors (one tensor under two names) simply receive the later value. */
    for (int i = 0; i < n && st == IG_OK; i++) {
        if (match[i] < 0) continue;
        st = ig_copy_(own[match[i]].tensor, src[i].tensor);
    }
    free(own);
    free(match);
    free(found);
    return st;
}

/* ---- dtype conversion ------------------------------------------------------------------ */

/* Retypes t in place (the header, and so every pointer to it, is kept): new contiguous
 * storage holding the converted values; the old gradient is dropped. */
static ig_status retype(ig_tensor *t, ig_dtype dt) {
    if (t->dtype == dt) return IG_OK;
    igi_heap_mode(1);
    ig_tensor *c = ig_empty(t->ndim, t->shape, dt);
    igi_heap_mode(-1);
    if (!c) return ig_last_status();
    ig_status st = ig_copy_(c, t);
    if (st != IG_OK) {
        ig_tensor_free(c);
        return st;
    }
    igi_storage *old = t->storage;
    t->storage = c->storage;
    c->storage = old; /* c's release frees the old bytes */
    t->offset = 0;
    t->dtype = dt;
    igi_contiguous_strides(t->ndim, t->shape, t->strides);
    ig_tensor_free(t->grad);
    t->grad = NULL;
    ig_tensor_free(c);
    return IG_OK;
}

static bool retype_visit(void *ctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)name;
    (void)is_param;
    (void)owner;
    if (!ig_dtype_is_float(t->dtype)) return true; /* integer buffers keep their type */
    return retype(t, *(ig_dtype *)ctx) == IG_OK;
}

/* Moves t to dev in place (header kept): a contiguous copy on dev takes over. */
static ig_status move(ig_tensor *t, ig_device dev) {
    if (t->device == dev) return IG_OK;
    ig_tensor *c = igi_to_device_copy("ig_module_to", t, dev);
    if (!c) return ig_last_status();
    igi_storage *old = t->storage;
    t->storage = c->storage;
    c->storage = old; /* c's release frees the old bytes */
    c->device = t->device;
    t->offset = 0;
    t->device = dev;
    igi_contiguous_strides(t->ndim, t->shape, t->strides);
    ig_tensor_free(t->grad);
    t->grad = NULL;
    ig_tensor_free(c);
    return IG_OK;
}

static bool move_visit(void *ctx, const char *name, ig_tensor *t, bool is_param, ig_module *owner) {
    (void)name;
    (void)is_param;
    (void)owner;
    return move(t, *(ig_device *)ctx) == IG_OK;
}

static bool any_flat(ig_module *m) {
    if (m->flat_locked) return true;
    for (int i = 0; i < m->n_children; i++)
        if (any_flat(m->children[i].module)) return true;
    return false;
}

ig_status ig_module_to_dtype(ig_module *m, ig_dtype dt) {
    if (!m) return igi_error_null("ig_module_to_dtype", "m");
    if (!ig_dtype_is_float(dt))
        return igi_error(IG_ERR_DTYPE, "ig_module_to_dtype: target must be float32 or float64, got %s",
                         ig_dtype_name(dt));
    if (any_flat(m))
        return igi_error(IG_ERR_STATE, "ig_module_to_dtype: module '%s' is flattened; convert before ig_module_flatten",
                         m->type);
    ig_status st = igi_module_walk(m, false, true, retype_visit, &dt);
    return st == IG_OK ? IG_OK : ig_last_status();
}

ig_status ig_module_to(ig_module *m, ig_device dev) {
    const char *op = "ig_module_to";
    if (!m) return igi_error_null(op, "m");
    if ((unsigned)dev >= IG_DEVICE_COUNT) return igi_error(IG_ERR_DEVICE, "%s: invalid device %d", op, (int)dev);
    if (dev != IG_CPU && !igi_backend_get(op, dev)) return ig_last_status();
    if (any_flat(m))
        return igi_error(IG_ERR_STATE, "%s: module '%s' is flattened; move it before ig_module_flatten", op, m->type);
    ig_status st = igi_module_walk(m, false, true, move_visit, &dev);
    return st == IG_OK ? IG_OK : ig_last_status();
}
