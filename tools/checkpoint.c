/*
 * tools/checkpoint.c — `ignis` checkpoints: a model file (state dict + run metadata) and an
 * optimizer file, written in an order that survives SIGKILL, and read back with every
 * metadata field checked before it is used. Layout and write order: checkpoint_impl.h.
 *
 * Metadata of a model file (all values are strings, as safetensors requires):
 *   format "pt"; ignis_version; model (zoo name or model file text); channels, height,
 *   width, num_classes; class_names (JSON array of strings); mean, std (JSON arrays of
 *   numbers, per channel); data; optimizer, optimizer_params, lr, momentum, nesterov
 *   ("true"/"false"), weight_decay; schedule, warmup; augment; label_smoothing, val_split;
 *   epochs, batch_size, threads, seed; world_size, sync_bn (data-parallel: processes, and
 *   "true"/"false"; optional, older files lack them: 1 and false); epoch, step, steps_per_epoch; rng_seed, rng_offset;
 *   best_acc, best_epoch; optimizer_state, best_optimizer_state (basenames); history
 *   (metrics.csv's text).
 * Numbers that a resumed run computes with are written with %.17g, so they read back to
 * the same double.
 */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_impl.h"
#include "core/json_impl.h"
#include "core/tensor_impl.h"

void ckpt_run_free(ckpt_run *r) {
    if (!r) return;
    if (r->class_names)
        for (int64_t i = 0; i < r->num_classes; i++) free(r->class_names[i]);
    free(r->class_names);
    free(r->model);
    free(r->data);
    free(r->optimizer);
    free(r->optimizer_params);
    free(r->schedule);
    free(r->augment);
    free(r->optim_file);
    free(r->best_optim_file);
    free(r->history);
    memset(r, 0, sizeof *r);
}

/* ---- metrics history ------------------------------------------------------------------ */

static const char METRICS_HEADER[] = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds";
static const char METRICS_VAL[] = ",val_loss,val_acc";

char *metrics_csv(const metrics_row *rows, int64_t n, bool has_val) {
    igi_strbuf b = {0};
    bool ok = igi_strbuf_printf(&b, "%s%s\n", METRICS_HEADER, has_val ? METRICS_VAL : "");
    for (int64_t i = 0; ok && i < n; i++) {
        const metrics_row *m = &rows[i];
        ok = igi_strbuf_printf(&b, "%lld,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f", (long long)m->epoch, m->train_loss,
                               m->train_acc, m->test_loss, m->test_acc, m->lr, m->seconds);
        if (ok && has_val) ok = igi_strbuf_printf(&b, ",%.6f,%.6f", m->val_loss, m->val_acc);
        if (ok) ok = igi_strbuf_puts(&b, "\n");
    }
    if (!ok || !igi_strbuf_append(&b, "", 1)) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

int64_t metrics_parse(const char *csv, bool has_val, metrics_row **rows) {
    *rows = NULL;
    size_t hl = strlen(METRICS_HEADER);
    if (strncmp(csv, METRICS_HEADER, hl) != 0) return igi_error(IG_ERR_FORMAT, "history: bad header"), -1;
    const char *p = csv + hl;
    if (has_val) {
        if (strncmp(p, METRICS_VAL, strlen(METRICS_VAL)) != 0)
            return igi_error(IG_ERR_FORMAT, "history: no validation columns"), -1;
        p += strlen(METRICS_VAL);
    }
    if (*p++ != '\n') return igi_error(IG_ERR_FORMAT, "history: bad header"), -1;
    int64_t cap = 0, n = 0;
    for (const char *q = p; *q; q++) cap += *q == '\n';
    metrics_row *out = calloc((size_t)(cap ? cap : 1), sizeof *out);
    if (!out) return igi_error(IG_ERR_NOMEM, "out of memory"), -1;
    int nf = has_val ? 9 : 7;
    while (*p) {
        double v[9];
        for (int f = 0; f < nf; f++) {
            char *end = NULL;
            errno = 0;
            v[f] = igi_strtod(p, &end);
            char want = f == nf - 1 ? '\n' : ',';
            if (end == p || errno || *end != want || isinf(v[f])) {
                free(out);
                return igi_error(IG_ERR_FORMAT, "history: row %lld field %d is not a number", (long long)n + 1, f + 1),
                       -1;
            }
            p = end + 1;
        }
        if (n >= cap || v[0] != (double)(n + 1)) {
            free(out);
            return igi_error(IG_ERR_FORMAT, "history: row %lld is not epoch %lld", (long long)n + 1, (long long)n + 1),
                   -1;
        }
        metrics_row *m = &out[n++];
        m->epoch = n;
        m->train_loss = v[1], m->train_acc = v[2], m->test_loss = v[3], m->test_acc = v[4];
        m->lr = v[5], m->seconds = v[6];
        m->val_loss = has_val ? v[7] : NAN;
        m->val_acc = has_val ? v[8] : NAN;
    }
    *rows = out;
    return n;
}

/* ---- writing ----------------------------------------------------------------------------- */

#define META_MAX 48

typedef struct meta_list {
    const char *keys[META_MAX];
    char *vals[META_MAX];
    int n;
    bool failed;
} meta_list;

static void meta_add(meta_list *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_add(meta_list *m, const char *key, const char *fmt, ...) {
    IG_ASSERT(m->n < META_MAX);
    va_list ap;
    va_start(ap, fmt);
    int len = igi_vsnprintf_c(NULL, 0, fmt, ap);
    va_end(ap);
    char *v = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!v) {
        m->failed = true;
        return;
    }
    va_start(ap, fmt);
    igi_vsnprintf_c(v, (size_t)len + 1, fmt, ap);
    va_end(ap);
    m->keys[m->n] = key;
    m->vals[m->n++] = v;
}

static void meta_add_owned(meta_list *m, const char *key, char *v) {
    IG_ASSERT(m->n < META_MAX);
    if (!v) {
        m->failed = true;
        return;
    }
    m->keys[m->n] = key;
    m->vals[m->n++] = v;
}

static void meta_clear(meta_list *m) {
    for (int i = 0; i < m->n; i++) free(m->vals[i]);
    m->n = 0;
}

static char *json_doubles(const double *v, int64_t n) {
    igi_strbuf b = {0};
    bool ok = igi_strbuf_puts(&b, "[");
    for (int64_t i = 0; ok && i < n; i++) ok = igi_strbuf_printf(&b, "%s%.17g", i ? ", " : "", v[i]);
    if (!ok || !igi_strbuf_append(&b, "]", 2)) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

static char *json_strings(char *const *v, int64_t n) {
    igi_strbuf b = {0};
    bool ok = igi_strbuf_puts(&b, "[");
    for (int64_t i = 0; ok && i < n; i++) ok = igi_strbuf_puts(&b, i ? ", " : "") && igi_strbuf_json_string(&b, v[i]);
    if (!ok || !igi_strbuf_append(&b, "]", 2)) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* Replaces the tensors on a device by host copies in the current scope (files are written
 * from host memory). */
static ig_status host_copies(ig_named_tensor *ts, int n) {
    for (int i = 0; i < n; i++)
        if (ig_tensor_device(ts[i].tensor) != IG_CPU && !(ts[i].tensor = ig_to(ts[i].tensor, IG_CPU)))
            return ig_last_status();
    return IG_OK;
}

ig_status ckpt_save_model(const char *path, ig_module *m, const ckpt_run *r) {
    int n = ig_module_state_dict(m, NULL, 0);
    if (n < 0) return ig_last_status();
    ig_named_tensor *sd = malloc(sizeof *sd * (size_t)(n ? n : 1));
    if (!sd) return igi_error(IG_ERR_NOMEM, "out of memory");
    ig_module_state_dict(m, sd, n);
    meta_list md = {0};
    meta_add(&md, "format", "pt");
    meta_add(&md, "ignis_version", "%s", ig_version());
    meta_add(&md, "model", "%s", r->model);
    meta_add(&md, "channels", "%lld", (long long)r->channels);
    meta_add(&md, "height", "%lld", (long long)r->height);
    meta_add(&md, "width", "%lld", (long long)r->width);
    meta_add(&md, "num_classes", "%lld", (long long)r->num_classes);
    meta_add_owned(&md, "class_names", json_strings(r->class_names, r->num_classes));
    meta_add_owned(&md, "mean", json_doubles(r->mean, r->channels));
    meta_add_owned(&md, "std", json_doubles(r->std, r->channels));
    meta_add(&md, "data", "%s", r->data);
    meta_add(&md, "optimizer", "%s", r->optimizer);
    meta_add(&md, "optimizer_params", "%s", r->optimizer_params ? r->optimizer_params : "");
    meta_add(&md, "lr", "%.17g", r->lr);
    meta_add(&md, "momentum", "%.17g", r->momentum);
    meta_add(&md, "nesterov", "%s", r->nesterov ? "true" : "false");
    meta_add(&md, "weight_decay", "%.17g", r->weight_decay);
    meta_add(&md, "schedule", "%s", r->schedule);
    meta_add(&md, "warmup", "%.17g", r->warmup);
    meta_add(&md, "augment", "%s", r->augment);
    meta_add(&md, "label_smoothing", "%.17g", r->label_smoothing);
    meta_add(&md, "val_split", "%.17g", r->val_split);
    meta_add(&md, "epochs", "%lld", (long long)r->epochs);
    meta_add(&md, "batch_size", "%lld", (long long)r->batch);
    meta_add(&md, "threads", "%lld", (long long)r->threads);
    meta_add(&md, "seed", "%llu", (unsigned long long)r->seed);
    meta_add(&md, "world_size", "%lld", (long long)(r->world_size > 0 ? r->world_size : 1));
    meta_add(&md, "sync_bn", "%s", r->sync_bn ? "true" : "false");
    meta_add(&md, "epoch", "%lld", (long long)r->epoch);
    meta_add(&md, "step", "%lld", (long long)r->step);
    meta_add(&md, "steps_per_epoch", "%lld", (long long)r->steps_per_epoch);
    meta_add(&md, "rng_seed", "%llu", (unsigned long long)r->rng_seed);
    meta_add(&md, "rng_offset", "%llu", (unsigned long long)r->rng_offset);
    meta_add(&md, "best_acc", "%.17g", r->best_acc);
    meta_add(&md, "best_epoch", "%lld", (long long)r->best_epoch);
    meta_add(&md, "optimizer_state", "%s", r->optim_file ? r->optim_file : "");
    meta_add(&md, "best_optimizer_state", "%s", r->best_optim_file ? r->best_optim_file : "");
    meta_add_owned(&md, "history", metrics_csv(r->history, r->nhistory, r->val_split > 0));
    ig_scope *sc = ig_scope_begin();
    ig_status st = md.failed ? igi_error(IG_ERR_NOMEM, "out of memory") : host_copies(sd, n);
    if (st == IG_OK) st = ig_safetensors_save(path, sd, n, md.keys, (const char *const *)md.vals, md.n);
    ig_scope_end(sc);
    meta_clear(&md);
    free(sd);
    return st;
}

ig_status ckpt_save_optim(const char *path, ig_optimizer *o, int64_t sched_step, const ig_grad_scaler *scaler) {
    int n = ig_optim_state_count(o);
    if (n < 0) return ig_last_status();
    ig_named_tensor *ts = malloc(sizeof *ts * (size_t)(n ? n : 1));
    if (!ts) return igi_error(IG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        ig_status st = ig_optim_state_get(o, i, &ts[i].name, &ts[i].tensor);
        if (st != IG_OK) {
            free(ts);
            return st;
        }
    }
    meta_list md = {0};
    meta_add(&md, "format", "ignis-optimizer");
    meta_add(&md, "optimizer", "%s", ig_optim_name(o));
    meta_add(&md, "sched_step", "%lld", (long long)sched_step);
    if (scaler) {
        /* %.17g: the scale reads back bitwise */
        meta_add(&md, "amp_scale", "%.17g", ig_grad_scaler_get_scale(scaler));
        meta_add(&md, "amp_growth_tracker", "%lld", (long long)ig_grad_scaler_growth_tracker(scaler));
    }
    ig_scope *sc = ig_scope_begin();
    ig_status st = md.failed ? igi_error(IG_ERR_NOMEM, "out of memory") : host_copies(ts, n);
    if (st == IG_OK) st = ig_safetensors_save(path, ts, n, md.keys, (const char *const *)md.vals, md.n);
    ig_scope_end(sc);
    meta_clear(&md);
    free(ts);
    return st;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Each getter sets an error naming the file and the key on failure. */
static ig_status meta_str(const ig_safetensors *st, const char *label, const char *key, const char **out) {
    *out = ig_safetensors_meta(st, key);
    if (!*out) return igi_error(IG_ERR_FORMAT, "%s: not an ignis checkpoint: metadata '%s' is missing", label, key);
    return IG_OK;
}

static ig_status meta_dup(const ig_safetensors *st, const char *label, const char *key, char **out) {
    const char *s;
    ig_status rc = meta_str(st, label, key, &s);
    if (rc != IG_OK) return rc;
    *out = strdup(s);
    return *out ? IG_OK : igi_error(IG_ERR_NOMEM, "out of memory");
}

static ig_status meta_i64(const ig_safetensors *st, const char *label, const char *key, int64_t lo, int64_t hi,
                          int64_t *out) {
    const char *s;
    ig_status rc = meta_str(st, label, key, &s);
    if (rc != IG_OK) return rc;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return igi_error(IG_ERR_FORMAT, "%s: metadata '%s' = \"%.40s\" is not an integer in [%lld, %lld]", label, key, s,
                         (long long)lo, (long long)hi);
    *out = v;
    return IG_OK;
}

static ig_status meta_u64(const ig_safetensors *st, const char *label, const char *key, uint64_t *out) {
    const char *s;
    ig_status rc = meta_str(st, label, key, &s);
    if (rc != IG_OK) return rc;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || errno)
        return igi_error(IG_ERR_FORMAT, "%s: metadata '%s' = \"%.40s\" is not an unsigned integer", label, key, s);
    *out = v;
    return IG_OK;
}

static ig_status meta_f64(const ig_safetensors *st, const char *label, const char *key, double lo, double hi,
                          double *out) {
    const char *s;
    ig_status rc = meta_str(st, label, key, &s);
    if (rc != IG_OK) return rc;
    char *end = NULL;
    double v = igi_strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return igi_error(IG_ERR_FORMAT, "%s: metadata '%s' = \"%.40s\" is not a number in [%g, %g]", label, key, s, lo,
                         hi);
    *out = v;
    return IG_OK;
}

static ig_status meta_json(const ig_safetensors *st, const char *label, const char *key, igi_json_kind elem,
                           int64_t count, igi_json_doc **doc) {
    const char *s;
    ig_status rc = meta_str(st, label, key, &s);
    if (rc != IG_OK) return rc;
    char err[160];
    rc = igi_json_parse(s, strlen(s), 2, doc, err, sizeof err);
    if (rc == IG_ERR_NOMEM) return igi_error(rc, "out of memory");
    if (rc != IG_OK) return igi_error(IG_ERR_FORMAT, "%s: metadata '%s' is not JSON (%s)", label, key, err);
    igi_json *root = igi_json_root(*doc);
    bool ok = root->kind == IGI_JSON_ARRAY && (int64_t)root->count == count;
    for (igi_json *e = ok ? root->first : NULL; e; e = e->next) ok = ok && e->kind == elem;
    if (!ok) {
        igi_json_free(*doc);
        *doc = NULL;
        return igi_error(IG_ERR_FORMAT, "%s: metadata '%s' is not an array of %lld %ss", label, key, (long long)count,
                         igi_json_kind_name(elem));
    }
    return IG_OK;
}

static ig_status meta_doubles(const ig_safetensors *st, const char *label, const char *key, int64_t n, double lo,
                              double *out) {
    igi_json_doc *doc = NULL;
    ig_status rc = meta_json(st, label, key, IGI_JSON_NUMBER, n, &doc);
    if (rc != IG_OK) return rc;
    int64_t i = 0;
    for (igi_json *e = igi_json_root(doc)->first; e; e = e->next, i++) {
        char num[64];
        size_t len = e->len < sizeof num - 1 ? e->len : sizeof num - 1;
        memcpy(num, e->str, len);
        num[len] = '\0';
        out[i] = igi_strtod(num, NULL);
        if (!(out[i] >= lo) || !isfinite(out[i])) {
            igi_json_free(doc);
            return igi_error(IG_ERR_FORMAT, "%s: metadata '%s' entry %lld (%s) is out of range", label, key,
                             (long long)i, num);
        }
    }
    igi_json_free(doc);
    return IG_OK;
}

static ig_status read_meta(const ig_safetensors *st, const char *label, ckpt_run *r) {
    const char *fmt;
    ig_status rc = meta_str(st, label, "format", &fmt);
    if (rc != IG_OK) return rc;
    if (strcmp(fmt, "pt") != 0)
        return igi_error(IG_ERR_FORMAT, "%s: metadata 'format' is \"%.40s\", not \"pt\" (an optimizer file?)", label, fmt);
#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if ((rc = (x)) != IG_OK) return rc;                                                                            \
    } while (0)
    TRY(meta_dup(st, label, "model", &r->model));
    TRY(meta_i64(st, label, "channels", 1, CKPT_MAX_CHANNELS, &r->channels));
    TRY(meta_i64(st, label, "height", 1, 1 << 16, &r->height));
    TRY(meta_i64(st, label, "width", 1, 1 << 16, &r->width));
    TRY(meta_i64(st, label, "num_classes", 1, CKPT_MAX_CLASSES, &r->num_classes));
    {
        igi_json_doc *doc = NULL;
        TRY(meta_json(st, label, "class_names", IGI_JSON_STRING, r->num_classes, &doc));
        r->class_names = calloc((size_t)r->num_classes, sizeof *r->class_names);
        int64_t i = 0;
        for (igi_json *e = r->class_names ? igi_json_root(doc)->first : NULL; e; e = e->next, i++) {
            if (strlen(e->str) != e->len) {
                igi_json_free(doc);
                return igi_error(IG_ERR_FORMAT, "%s: metadata 'class_names' entry %lld holds a NUL", label, (long long)i);
            }
            if (!(r->class_names[i] = strdup(e->str))) break;
        }
        igi_json_free(doc);
        if (i != r->num_classes) return igi_error(IG_ERR_NOMEM, "out of memory");
    }
    TRY(meta_doubles(st, label, "mean", r->channels, -1e30, r->mean));
    TRY(meta_doubles(st, label, "std", r->channels, 1e-30, r->std));
    TRY(meta_dup(st, label, "data", &r->data));
    TRY(meta_dup(st, label, "optimizer", &r->optimizer));
    TRY(meta_dup(st, label, "optimizer_params", &r->optimizer_params));
    TRY(meta_f64(st, label, "lr", 0, 1e6, &r->lr));
    TRY(meta_f64(st, label, "momentum", 0, 1, &r->momentum));
    const char *nest;
    TRY(meta_str(st, label, "nesterov", &nest));
    if (strcmp(nest, "true") && strcmp(nest, "false"))
        return igi_error(IG_ERR_FORMAT, "%s: metadata 'nesterov' is neither true nor false", label);
    r->nesterov = nest[0] == 't';
    TRY(meta_f64(st, label, "weight_decay", 0, 1e6, &r->weight_decay));
    TRY(meta_dup(st, label, "schedule", &r->schedule));
    TRY(meta_f64(st, label, "warmup", 0, 1e9, &r->warmup));
    TRY(meta_dup(st, label, "augment", &r->augment));
    TRY(meta_f64(st, label, "label_smoothing", 0, 1, &r->label_smoothing));
    TRY(meta_f64(st, label, "val_split", 0, 0.99, &r->val_split));
    TRY(meta_i64(st, label, "epochs", 1, 1000000, &r->epochs));
    TRY(meta_i64(st, label, "batch_size", 1, 1 << 24, &r->batch));
    TRY(meta_i64(st, label, "threads", 0, 4096, &r->threads));
    TRY(meta_u64(st, label, "seed", &r->seed));
    r->world_size = 1; /* checkpoints of single-process runs before data parallelism lack both */
    if (ig_safetensors_meta(st, "world_size")) TRY(meta_i64(st, label, "world_size", 1, 1 << 20, &r->world_size));
    const char *sbn = ig_safetensors_meta(st, "sync_bn");
    if (sbn && strcmp(sbn, "true") && strcmp(sbn, "false"))
        return igi_error(IG_ERR_FORMAT, "%s: metadata 'sync_bn' is neither true nor false", label);
    r->sync_bn = sbn && sbn[0] == 't';
    TRY(meta_i64(st, label, "epoch", 0, r->epochs, &r->epoch));
    TRY(meta_i64(st, label, "steps_per_epoch", 1, INT64_MAX / 1000000, &r->steps_per_epoch));
    TRY(meta_i64(st, label, "step", 0, INT64_MAX, &r->step));
    if (r->step != r->epoch * r->steps_per_epoch)
        return igi_error(IG_ERR_FORMAT, "%s: metadata 'step' (%lld) is not epoch * steps_per_epoch", label,
                         (long long)r->step);
    TRY(meta_u64(st, label, "rng_seed", &r->rng_seed));
    TRY(meta_u64(st, label, "rng_offset", &r->rng_offset));
    TRY(meta_f64(st, label, "best_acc", -1, 1, &r->best_acc));
    TRY(meta_i64(st, label, "best_epoch", 0, r->epoch, &r->best_epoch));
    TRY(meta_dup(st, label, "optimizer_state", &r->optim_file));
    TRY(meta_dup(st, label, "best_optimizer_state", &r->best_optim_file));
    if (strchr(r->optim_file, '/') || strchr(r->best_optim_file, '/'))
        return igi_error(IG_ERR_FORMAT, "%s: metadata 'optimizer_state' must name a file in the same folder", label);
    const char *hist;
    TRY(meta_str(st, label, "history", &hist));
    r->nhistory = metrics_parse(hist, r->val_split > 0, &r->history);
    if (r->nhistory < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", ig_last_error());
        return igi_error(IG_ERR_FORMAT, "%s: metadata %s", label, msg);
    }
    if (r->nhistory != r->epoch)
        return igi_error(IG_ERR_FORMAT, "%s: metadata 'history' has %lld rows for %lld epochs", label,
                         (long long)r->nhistory, (long long)r->epoch);
#undef TRY
    return IG_OK;
}

/* Validates st's metadata and tensors and builds the model; frees st. */
static ig_status load_model_from(ig_safetensors *st, const char *label, ckpt_run *r, ig_module **model) {
    memset(r, 0, sizeof *r);
    *model = NULL;
    if (!st) return ig_last_status();
    ig_status rc = read_meta(st, label, r);
    ig_module *m = NULL;
    ig_named_tensor *src = NULL;
    if (rc == IG_OK) {
        ig_manual_seed(r->seed);
        m = model_build(r->model, r->channels, r->height, r->width, r->num_classes);
        if (!m) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ig_last_error());
            rc = igi_error(IG_ERR_FORMAT, "%s: cannot build the model it describes (%s)", label, msg);
        }
    }
    if (rc == IG_OK) {
        int n = ig_safetensors_count(st);
        src = malloc(sizeof *src * (size_t)(n ? n : 1));
        if (!src) rc = igi_error(IG_ERR_NOMEM, "out of memory");
        for (int i = 0; src && i < n; i++) {
            src[i].name = ig_safetensors_name(st, i);
            src[i].tensor = ig_safetensors_tensor(st, i);
        }
        if (src && (rc = ig_module_load_state_dict(m, src, n, true)) != IG_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ig_last_error());
            rc = igi_error(IG_ERR_FORMAT, "%s: its tensors do not match model '%s' (%s)", label,
                           model_short_name(r->model), msg);
        }
    }
    free(src);
    ig_safetensors_free(st);
    if (rc != IG_OK) {
        ig_module_free(m);
        ckpt_run_free(r);
        return rc;
    }
    *model = m;
    return IG_OK;
}

ig_status ckpt_load_model(const char *path, ckpt_run *r, ig_module **model) {
    return load_model_from(ig_safetensors_load(path), path, r, model);
}

ig_status ckpt_load_model_memory(const void *buf, size_t len, const char *label, ckpt_run *r, ig_module **model) {
    return load_model_from(ig_safetensors_load_memory(buf, len, label), label, r, model);
}

ig_status ckpt_load_optim(const char *path, ig_optimizer *o, int64_t *sched_step, ig_grad_scaler *scaler) {
    ig_safetensors *st = ig_safetensors_load(path);
    if (!st) return ig_last_status();
    const char *fmt = ig_safetensors_meta(st, "format");
    const char *name = ig_safetensors_meta(st, "optimizer");
    ig_status rc = IG_OK;
    if (!fmt || strcmp(fmt, "ignis-optimizer") != 0)
        rc = igi_error(IG_ERR_FORMAT, "%s: not an ignis optimizer file", path);
    else if (!name || strcmp(name, ig_optim_name(o)) != 0)
        rc = igi_error(IG_ERR_FORMAT, "%s: holds the state of optimizer '%s', not '%s'", path, name ? name : "?",
                       ig_optim_name(o));
    int64_t step = 0, tracker = 0;
    double scale = 0;
    bool has_scale = ig_safetensors_meta(st, "amp_scale") != NULL;
    if (rc == IG_OK) rc = meta_i64(st, path, "sched_step", 0, INT64_MAX, &step);
    if (rc == IG_OK && scaler && has_scale) {
        rc = meta_f64(st, path, "amp_scale", DBL_MIN, DBL_MAX, &scale);
        if (rc == IG_OK) rc = meta_i64(st, path, "amp_growth_tracker", 0, INT64_MAX, &tracker);
    }
    for (int i = 0; rc == IG_OK && i < ig_safetensors_count(st); i++) {
        if ((rc = ig_optim_state_set(o, ig_safetensors_name(st, i), ig_safetensors_tensor(st, i))) != IG_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ig_last_error());
            rc = igi_error(IG_ERR_FORMAT, "%s: optimizer state does not fit the model (%s)", path, msg);
        }
    }
    ig_safetensors_free(st);
    /* A run that had no scaler (no --amp fp16) leaves a new one at its defaults. */
    if (rc == IG_OK && scaler && has_scale) rc = ig_grad_scaler_set_state(scaler, scale, tracker);
    if (rc == IG_OK) *sched_step = step;
    return rc;
}

/* ---- pruning ------------------------------------------------------------------------------- */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static bool has_suffix(const char *s, const char *x) {
    size_t a = strlen(s), b = strlen(x);
    return a >= b && strcmp(s + a - b, x) == 0;
}

void ckpt_prune(const char *dir, const char *keep1, const char *keep2) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        bool optim = has_prefix(nm, "optim-") && has_suffix(nm, ".safetensors");
        bool stale_tmp = ((has_prefix(nm, "optim-") || has_prefix(nm, "last.safetensors.tmp") ||
                           has_prefix(nm, "best.safetensors.tmp")) &&
                          strstr(nm, ".safetensors.tmp")) ||
                         strcmp(nm, "metrics.csv.tmp") == 0 || strcmp(nm, "curves.png.tmp") == 0;
        if (optim && ((keep1 && strcmp(nm, keep1) == 0) || (keep2 && strcmp(nm, keep2) == 0))) continue;
        if (!optim && !stale_tmp) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, nm) < sizeof path) unlink(path);
    }
    closedir(d);
}
