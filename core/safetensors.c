/*
 * core/safetensors.c — the safetensors writer and reader declared in safetensors.h.
 *
 * Writer: validates every argument first (so most mistakes fail before any file exists),
 * builds the JSON header in memory, then streams header and tensor bytes into a temporary
 * file next to the destination and publishes it with fsync + rename + folder fsync, the
 * sequence that makes the replacement atomic and durable on POSIX file systems.
 *
 * Reader: one validation path for files and memory images. The header is parsed by the
 * strict JSON reader (json_impl.h) and every entry is checked (types, dtype, dims, sizes
 * without overflow, offsets) and the entries' ranges are proved to tile the data section
 * before any tensor is allocated; so the memory a file makes ignis allocate is bounded by
 * the file's own size, and data is then copied in offset order with no seeks. Values are
 * little-endian in the file; ignis runs on little-endian hosts only (checked below), so
 * bytes are copied as they are.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_impl.h"
#include "safetensors.h"
#include "tensor_impl.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "core/safetensors.c copies tensor bytes as they are: it needs a little-endian host"
#endif

/* Format dtype names, indexed by ig_dtype. */
static const char *const st_dtype_names[IG_DTYPE_COUNT] = {"F32", "F64", "I32", "I64", "U8", "BF16"};

/* Names the format defines that ignis has no dtype for. */
static const char *const st_unsupported[] = {"BOOL", "I8", "I16", "U16", "U32", "U64", "F16",
                                             "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
                                             "F6_E2M3", "F6_E3M2", "C64", "C128"};

/* Deepest nesting a valid header has is 3 (top object, entry, shape array); a little room
 * so a deeper header gets a message about its structure rather than a syntax error. */
enum { HEADER_MAX_DEPTH = 16 };

/* Quotes a name for a message: printable ASCII kept, other bytes as \xNN, cut at 60
 * characters with "...". */
static const char *quoted(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    buf[n++] = '\'';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (n + 8 >= cap || n > 60) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        if (*p >= 0x20 && *p < 0x7F) buf[n++] = (char)*p;
        else n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", *p);
    }
    buf[n++] = '\'';
    buf[n] = '\0';
    return buf;
}
enum { QCAP = 96 };

/* ====================================================================================== */
/* Writer                                                                                 */
/* ====================================================================================== */

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a duplicate among n strings; returns it or NULL. *oom is set if sorting memory
 * could not be had. */
static const char *find_duplicate(const char *const *names, size_t stride_ptrs, int n, bool *oom) {
    *oom = false;
    if (n < 2) return NULL;
    const char **sorted = malloc(sizeof(char *) * (size_t)n);
    if (!sorted) {
        *oom = true;
        return NULL;
    }
    for (int i = 0; i < n; i++) sorted[i] = names[(size_t)i * stride_ptrs];
    qsort(sorted, (size_t)n, sizeof(char *), cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

static ig_status validate_save_args(const char *path, const ig_named_tensor *ts, int n,
                                    const char *const *keys, const char *const *vals, int n_meta) {
    const char *op = "ig_safetensors_save";
    char q[QCAP];
    if (!path) return igi_error_null(op, "path");
    if (n < 0) return igi_error(IG_ERR_ARG, "%s: %s: n is %d", op, path, n);
    if (n_meta < 0) return igi_error(IG_ERR_ARG, "%s: %s: n_meta is %d", op, path, n_meta);
    if (n > 0 && !ts) return igi_error_null(op, "ts");
    if (n_meta > 0 && !keys) return igi_error_null(op, "meta_keys");
    if (n_meta > 0 && !vals) return igi_error_null(op, "meta_values");
    for (int i = 0; i < n; i++) {
        const char *name = ts[i].name;
        if (!name) return igi_error(IG_ERR_ARG, "%s: %s: tensor %d has a NULL name", op, path, i);
        if (!name[0]) return igi_error(IG_ERR_ARG, "%s: %s: tensor %d has an empty name", op, path, i);
        if (!igi_utf8_valid(name, strlen(name)))
            return igi_error(IG_ERR_ARG, "%s: %s: tensor %d name %s is not valid UTF-8", op, path, i,
                             quoted(name, q, sizeof q));
        if (strcmp(name, "__metadata__") == 0)
            return igi_error(IG_ERR_ARG, "%s: %s: tensor %d may not be named '__metadata__'", op, path, i);
        const ig_tensor *t = ts[i].tensor;
        if (!t) return igi_error(IG_ERR_ARG, "%s: %s: tensor %s is NULL", op, path, quoted(name, q, sizeof q));
        if (t->device != IG_CPU)
            return igi_error(IG_ERR_DEVICE, "%s: %s: tensor %s is not on the CPU", op, path, quoted(name, q, sizeof q));
        if ((unsigned)t->dtype >= IG_DTYPE_COUNT)
            return igi_error(IG_ERR_DTYPE, "%s: %s: tensor %s has an invalid dtype", op, path, quoted(name, q, sizeof q));
    }
    for (int i = 0; i < n_meta; i++) {
        if (!keys[i]) return igi_error(IG_ERR_ARG, "%s: %s: metadata key %d is NULL", op, path, i);
        if (!vals[i])
            return igi_error(IG_ERR_ARG, "%s: %s: metadata value of %s is NULL", op, path, quoted(keys[i], q, sizeof q));
        if (!igi_utf8_valid(keys[i], strlen(keys[i])))
            return igi_error(IG_ERR_ARG, "%s: %s: metadata key %s is not valid UTF-8", op, path, quoted(keys[i], q, sizeof q));
        if (!igi_utf8_valid(vals[i], strlen(vals[i])))
            return igi_error(IG_ERR_ARG, "%s: %s: metadata value of %s is not valid UTF-8", op, path,
                             quoted(keys[i], q, sizeof q));
    }
    bool oom;
    const char *dup = n > 0 ? find_duplicate(&ts[0].name, sizeof(ig_named_tensor) / sizeof(char *), n, &oom) : NULL;
    if (n > 0 && oom) return igi_error(IG_ERR_NOMEM, "%s: %s: out of memory", op, path);
    if (dup) return igi_error(IG_ERR_ARG, "%s: %s: duplicate tensor name %s", op, path, quoted(dup, q, sizeof q));
    dup = find_duplicate(keys, 1, n_meta, &oom);
    if (oom) return igi_error(IG_ERR_NOMEM, "%s: %s: out of memory", op, path);
    if (dup) return igi_error(IG_ERR_ARG, "%s: %s: duplicate metadata key %s", op, path, quoted(dup, q, sizeof q));
    return IG_OK;
}

/* Builds the padded header text (without the 8-byte length). */
static bool build_header(igi_strbuf *b, const ig_named_tensor *ts, int n, const char *const *keys,
                         const char *const *vals, int n_meta) {
    bool ok = igi_strbuf_puts(b, "{");
    if (n_meta > 0) {
        ok = ok && igi_strbuf_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta && ok; i++) {
            ok = (i == 0 || igi_strbuf_puts(b, ",")) && igi_strbuf_json_string(b, keys[i]) &&
                 igi_strbuf_puts(b, ":") && igi_strbuf_json_string(b, vals[i]);
        }
        ok = ok && igi_strbuf_puts(b, n > 0 ? "}," : "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n && ok; i++) {
        const ig_tensor *t = ts[i].tensor;
        uint64_t nbytes = (uint64_t)igi_numel(t->ndim, t->shape) * ig_dtype_size(t->dtype);
        ok = (i == 0 || igi_strbuf_puts(b, ",")) && igi_strbuf_json_string(b, ts[i].name) &&
             igi_strbuf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_names[t->dtype]);
        for (int d = 0; d < t->ndim && ok; d++)
            ok = igi_strbuf_printf(b, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
        ok = ok && igi_strbuf_printf(b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + nbytes);
        offset += nbytes;
    }
    ok = ok && igi_strbuf_puts(b, "}");
    while (ok && (8 + b->len) % 8 != 0) ok = igi_strbuf_puts(b, " ");
    return ok;
}

/* write(2) until all n bytes are out. Returns 0 or an errno value. */
static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        /* Bounded chunks: some systems refuse single writes above 2 GiB. */
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, c, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the tensor's bytes, row-major; returns 0, an errno value, or -1 when out of memory. */
static int write_tensor(int fd, const ig_tensor *t) {
    size_t es = ig_dtype_size(t->dtype);
    int64_t numel = igi_numel(t->ndim, t->shape);
    if (numel == 0) return 0;
    if (igi_is_contiguous(t)) return write_all(fd, igi_data(t), (size_t)numel * es);
    void *buf = malloc((size_t)numel * es);
    if (!buf) return -1;
    int rc = 0;
    if (ig_tensor_to_buffer(t, t->dtype, buf, numel) != IG_OK) rc = -1;
    else rc = write_all(fd, buf, (size_t)numel * es);
    free(buf);
    return rc;
}

/* The folder part of path ("." when path has no slash). Caller frees. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        char *d = malloc(2);
        if (d) strcpy(d, ".");
        return d;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

ig_status ig_safetensors_save(const char *path, const ig_named_tensor *ts, int n,
                              const char *const *meta_keys, const char *const *meta_values, int n_meta) {
    const char *op = "ig_safetensors_save";
    ig_status st = validate_save_args(path, ts, n, meta_keys, meta_values, n_meta);
    if (st != IG_OK) return st;

    igi_strbuf hdr = {0};
    char *tmp = malloc(strlen(path) + sizeof ".tmpXXXXXX");
    if (!tmp || !build_header(&hdr, ts, n, meta_keys, meta_values, n_meta)) {
        free(tmp);
        free(hdr.data);
        return igi_error(IG_ERR_NOMEM, "%s: %s: out of memory", op, path);
    }
    strcpy(tmp, path);
    strcat(tmp, ".tmpXXXXXX");

    char why[128];
    const char *step = NULL; /* what failed, for the message */
    int err = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        igi_errno_text(err, why, sizeof why);
        igi_error(IG_ERR_IO, "%s: %s: cannot create a temporary file in its folder: %s", op, path, why);
        free(tmp);
        free(hdr.data);
        return IG_ERR_IO;
    }

    /* The new file keeps the permissions of the one it replaces (mkstemp makes 0600). */
    struct stat old;
    mode_t mode = (stat(path, &old) == 0 && S_ISREG(old.st_mode)) ? (old.st_mode & 07777) : 0644;

    unsigned char len8[8];
    uint64_t hlen = hdr.len;
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)(hlen >> (8 * k));
    if ((err = write_all(fd, len8, 8)) || (err = write_all(fd, hdr.data, hdr.len))) step = "write";
    for (int i = 0; i < n && !step; i++) {
        err = write_tensor(fd, ts[i].tensor);
        if (err) step = "write";
    }
    if (!step && fchmod(fd, mode) != 0) {
        err = errno;
        step = "chmod";
    }
    if (!step && fsync(fd) != 0) {
        err = errno;
        step = "fsync";
    }
    if (close(fd) != 0 && !step) {
        err = errno;
        step = "close";
    }
    if (!step && rename(tmp, path) != 0) {
        err = errno;
        step = "rename";
    }
    free(hdr.data);
    if (step) {
        unlink(tmp);
        free(tmp);
        if (err < 0) return igi_error(IG_ERR_NOMEM, "%s: %s: out of memory while writing", op, path);
        igi_errno_text(err, why, sizeof why);
        return igi_error(IG_ERR_IO, "%s: %s: %s failed: %s (the previous file, if any, is unchanged)", op, path,
                         step, why);
    }
    free(tmp);

    /* Make the rename itself durable. File systems that cannot fsync a folder say EINVAL. */
    char *dir = folder_of(path);
    if (!dir) return igi_error(IG_ERR_NOMEM, "%s: %s: out of memory", op, path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    err = 0;
    if (dfd < 0) err = errno;
    else {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP) err = errno;
        close(dfd);
    }
    if (err) {
        igi_errno_text(err, why, sizeof why);
        igi_error(IG_ERR_IO, "%s: %s: written, but syncing its folder %s failed: %s", op, path, dir, why);
        free(dir);
        return IG_ERR_IO;
    }
    free(dir);
    return IG_OK;
}

/* ====================================================================================== */
/* Reader                                                                                 */
/* ====================================================================================== */

struct ig_safetensors {
    int n;
    char **names;        /* n names, header order */
    ig_tensor **tensors; /* n heap tensors, owned */
    int *by_name;        /* indices sorted by name, for find */
    int n_meta;
    char **meta_keys, **meta_values;
};

void ig_safetensors_free(ig_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        if (st->names) free(st->names[i]);
        if (st->tensors) ig_tensor_free(st->tensors[i]);
    }
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->by_name);
    free(st->meta_keys);
    free(st->meta_values);
    free(st);
}

/* One tensor entry as validated from the header. */
typedef struct entry {
    const char *name; /* in the JSON doc */
    int index;        /* header order among tensors */
    ig_dtype dtype;
    int ndim;
    int64_t shape[IG_MAX_DIMS];
    uint64_t begin, end;
} entry;

typedef struct load_ctx {
    const char *op, *label;
    igi_json_doc *doc;
    entry *entries;
    int n;
    entry **by_offset;           /* entries sorted by (begin, end): the read order */
    entry **by_name;             /* entries sorted by name */
    const igi_json **meta_sorted; /* metadata members sorted by key */
} load_ctx;

static ig_status load_error(const load_ctx *c, ig_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ig_status load_error(const load_ctx *c, ig_status s, const char *fmt, ...) {
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    igi_vsnprintf_c(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return igi_error(s, "%s: %s: %s", c->op, c->label, msg);
}

/* Reads a non-negative integer (a dim or an offset). */
static bool json_uint(const igi_json *v, uint64_t max, uint64_t *out) {
    if (v->kind != IGI_JSON_NUMBER || !v->is_uint || v->uint > max) return false;
    *out = v->uint;
    return true;
}

/* Renders a JSON value briefly for a message: numbers as written, else the kind. */
static const char *brief(const igi_json *v, char *buf, size_t cap) {
    if (v->kind == IGI_JSON_NUMBER) {
        int n = v->len > 30 ? 30 : (int)v->len;
        snprintf(buf, cap, "%.*s%s", n, v->str, v->len > 30 ? "..." : "");
    } else {
        snprintf(buf, cap, "a%s %s", v->kind == IGI_JSON_ARRAY || v->kind == IGI_JSON_OBJECT ? "n" : "",
                 igi_json_kind_name(v->kind));
    }
    return buf;
}

static void shape_text(const entry *e, char *buf, size_t cap) { igi_shape_str(e->ndim, e->shape, buf, cap); }

static ig_status check_entry(const load_ctx *c, const igi_json *v, entry *e, uint64_t data_len) {
    char q[QCAP], b[48];
    quoted(e->name, q, sizeof q);
    if (v->kind != IGI_JSON_OBJECT)
        return load_error(c, IG_ERR_FORMAT, "tensor %s is %s, not an object", q, brief(v, b, sizeof b));
    const igi_json *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const igi_json *m = v->first; m; m = m->next) {
        const igi_json **slot = strcmp(m->key, "dtype") == 0 ? &dtype
                                : strcmp(m->key, "shape") == 0 ? &shape
                                : strcmp(m->key, "data_offsets") == 0 ? &offs
                                : NULL;
        char qk[QCAP];
        if (!slot || strlen(m->key) != m->key_len)
            return load_error(c, IG_ERR_FORMAT, "tensor %s has an unknown field %s", q, quoted(m->key, qk, sizeof qk));
        if (*slot) return load_error(c, IG_ERR_FORMAT, "tensor %s has field '%s' twice", q, m->key);
        *slot = m;
    }
    if (!dtype) return load_error(c, IG_ERR_FORMAT, "tensor %s has no 'dtype'", q);
    if (!shape) return load_error(c, IG_ERR_FORMAT, "tensor %s has no 'shape'", q);
    if (!offs) return load_error(c, IG_ERR_FORMAT, "tensor %s has no 'data_offsets'", q);

    /* dtype */
    if (dtype->kind != IGI_JSON_STRING)
        return load_error(c, IG_ERR_FORMAT, "tensor %s dtype is %s, not a string", q, brief(dtype, b, sizeof b));
    int dt = -1;
    for (int k = 0; k < IG_DTYPE_COUNT; k++)
        if (strcmp(dtype->str, st_dtype_names[k]) == 0 && strlen(dtype->str) == dtype->len) dt = k;
    if (dt < 0) {
        char qd[QCAP];
        for (size_t k = 0; k < sizeof st_unsupported / sizeof *st_unsupported; k++)
            if (strcmp(dtype->str, st_unsupported[k]) == 0)
                return load_error(c, IG_ERR_DTYPE,
                                  "tensor %s has dtype %s, which ignis does not support (it reads F32, F64, I32, I64, U8)",
                                  q, st_unsupported[k]);
        return load_error(c, IG_ERR_FORMAT, "tensor %s has unknown dtype %s", q, quoted(dtype->str, qd, sizeof qd));
    }
    e->dtype = (ig_dtype)dt;

    /* shape: dims >= 0; bytes = product * element size, checked for overflow at each step */
    if (shape->kind != IGI_JSON_ARRAY)
        return load_error(c, IG_ERR_FORMAT, "tensor %s shape is %s, not an array", q, brief(shape, b, sizeof b));
    if (shape->count > IG_MAX_DIMS)
        return load_error(c, IG_ERR_FORMAT, "tensor %s has %zu dims; ignis supports at most %d", q, shape->count,
                          IG_MAX_DIMS);
    /* The product of the non-zero dims must stay within what ignis tensors allow (core
     * limits element counts to INT64_MAX / 8, so strides and byte counts cannot overflow),
     * even when a zero dim makes the tensor empty. Checked at each step: no overflow. */
    e->ndim = 0;
    uint64_t count = 1;
    bool zero = false, too_big = false;
    const uint64_t limit = (uint64_t)INT64_MAX / 8;
    for (const igi_json *d = shape->first; d; d = d->next) {
        uint64_t dim;
        if (!json_uint(d, (uint64_t)INT64_MAX, &dim))
            return load_error(c, IG_ERR_FORMAT, "tensor %s shape has dim %s (dims are integers from 0 to 2^63-1)", q,
                              brief(d, b, sizeof b));
        e->shape[e->ndim++] = (int64_t)dim;
        if (dim == 0) zero = true;
        else if (count > limit / dim) too_big = true;
        else count *= dim;
    }
    char sh[160];
    shape_text(e, sh, sizeof sh);
    if (too_big)
        return load_error(c, IG_ERR_FORMAT, "tensor %s shape %s has too many elements (the byte count overflows)", q, sh);
    uint64_t bytes = zero ? 0 : count * ig_dtype_size(e->dtype);

    /* data_offsets */
    uint64_t begin, end;
    if (offs->kind != IGI_JSON_ARRAY || offs->count != 2)
        return load_error(c, IG_ERR_FORMAT, "tensor %s data_offsets is not an array of two integers", q);
    if (!json_uint(offs->first, UINT64_MAX, &begin) || !json_uint(offs->first->next, UINT64_MAX, &end))
        return load_error(c, IG_ERR_FORMAT, "tensor %s data_offsets [%s, %s] are not non-negative integers", q,
                          brief(offs->first, b, sizeof b), brief(offs->first->next, sh, sizeof sh));
    if (begin > end)
        return load_error(c, IG_ERR_FORMAT, "tensor %s data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin", q,
                          begin, end);
    if (end > data_len)
        return load_error(c, IG_ERR_FORMAT,
                          "tensor %s data_offsets [%" PRIu64 ", %" PRIu64 "] run past the data section (%" PRIu64 " bytes)",
                          q, begin, end, data_len);
    if (end - begin != bytes)
        return load_error(c, IG_ERR_FORMAT,
                          "tensor %s data_offsets [%" PRIu64 ", %" PRIu64 "] do not match dtype %s shape %s (%" PRIu64 " bytes)",
                          q, begin, end, st_dtype_names[e->dtype], sh, bytes);
    e->begin = begin;
    e->end = end;
    return IG_OK;
}

/* Orders of entries, for the tiling check (by offsets) and for name lookups. */
static int cmp_offset(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

static int cmp_member_key(const void *a, const void *b) {
    return strcmp((*(const igi_json *const *)a)->key, (*(const igi_json *const *)b)->key);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Parses and validates the header; on success *out holds the object with every tensor
 * allocated (contents not yet read) and c->by_offset the read order. */
static ig_status parse_header(load_ctx *c, const char *hdr, uint64_t hlen, uint64_t data_len, ig_safetensors **out) {
    *out = NULL;
    char q[QCAP], qp[QCAP], b[48];
    if (hlen == 0 || hdr[0] != '{') return load_error(c, IG_ERR_FORMAT, "header does not start with '{'");
    char jerr[200];
    ig_status s = igi_json_parse(hdr, (size_t)hlen, HEADER_MAX_DEPTH, &c->doc, jerr, sizeof jerr);
    if (s == IG_ERR_NOMEM) return load_error(c, s, "out of memory parsing the header");
    if (s != IG_OK) return load_error(c, s, "header is not valid JSON: %s", jerr);
    const igi_json *root = igi_json_root(c->doc);
    if (root->kind != IGI_JSON_OBJECT) return load_error(c, IG_ERR_FORMAT, "header is not a JSON object");

    /* Split the members into the metadata and the tensors. */
    const igi_json *meta = NULL;
    size_t n_tensors = 0;
    for (const igi_json *m = root->first; m; m = m->next) {
        if (strlen(m->key) != m->key_len)
            return load_error(c, IG_ERR_FORMAT, "tensor name %s holds a NUL character", quoted(m->key, q, sizeof q));
        if (strcmp(m->key, "__metadata__") != 0) n_tensors++;
        else if (meta) return load_error(c, IG_ERR_FORMAT, "header has '__metadata__' twice");
        else meta = m;
    }
    if (n_tensors > (size_t)INT32_MAX) return load_error(c, IG_ERR_FORMAT, "too many tensors");
    if (meta && meta->kind == IGI_JSON_NULL) meta = NULL; /* "__metadata__": null means none */
    if (meta && meta->kind != IGI_JSON_OBJECT)
        return load_error(c, IG_ERR_FORMAT, "'__metadata__' is %s, not an object", brief(meta, b, sizeof b));
    size_t n_meta = meta ? meta->count : 0;

    c->n = (int)n_tensors;
    c->entries = calloc(n_tensors + 1, sizeof(entry));
    c->by_offset = malloc(sizeof(entry *) * (n_tensors + 1));
    c->by_name = malloc(sizeof(entry *) * (n_tensors + 1));
    c->meta_sorted = malloc(sizeof(igi_json *) * (n_meta + 1));
    if (!c->entries || !c->by_offset || !c->by_name || !c->meta_sorted)
        return load_error(c, IG_ERR_NOMEM, "out of memory");

    /* Metadata: string values without NULs, unique keys. */
    size_t k = 0;
    for (const igi_json *m = meta ? meta->first : NULL; m; m = m->next) {
        if (m->kind != IGI_JSON_STRING)
            return load_error(c, IG_ERR_FORMAT, "metadata %s is %s, not a string", quoted(m->key, q, sizeof q),
                              brief(m, b, sizeof b));
        if (strlen(m->key) != m->key_len || strlen(m->str) != m->len)
            return load_error(c, IG_ERR_FORMAT, "metadata %s holds a NUL character", quoted(m->key, q, sizeof q));
        c->meta_sorted[k++] = m;
    }
    qsort(c->meta_sorted, n_meta, sizeof(igi_json *), cmp_member_key);
    for (size_t i = 1; i < n_meta; i++)
        if (strcmp(c->meta_sorted[i - 1]->key, c->meta_sorted[i]->key) == 0)
            return load_error(c, IG_ERR_FORMAT, "duplicate metadata key %s", quoted(c->meta_sorted[i]->key, q, sizeof q));

    /* Each tensor entry on its own. */
    k = 0;
    for (const igi_json *m = root->first; m; m = m->next) {
        if (strcmp(m->key, "__metadata__") == 0) continue;
        entry *e = &c->entries[k];
        e->name = m->key;
        e->index = (int)k;
        if ((s = check_entry(c, m, e, data_len)) != IG_OK) return s;
        c->by_offset[k] = e;
        c->by_name[k] = e;
        k++;
    }

    /* Unique names. */
    qsort(c->by_name, n_tensors, sizeof(entry *), cmp_name);
    for (size_t i = 1; i < n_tensors; i++)
        if (strcmp(c->by_name[i - 1]->name, c->by_name[i]->name) == 0)
            return load_error(c, IG_ERR_FORMAT, "duplicate tensor name %s", quoted(c->by_name[i]->name, q, sizeof q));

    /* The ranges, sorted, must tile [0, data_len): each starts where the previous ended. */
    qsort(c->by_offset, n_tensors, sizeof(entry *), cmp_offset);
    uint64_t at = 0;
    const entry *prev = NULL; /* the last non-empty range */
    for (size_t i = 0; i < n_tensors; i++) {
        const entry *e = c->by_offset[i];
        if (e->begin > at)
            return load_error(c, IG_ERR_FORMAT,
                              "gap in the data section: bytes [%" PRIu64 ", %" PRIu64 ") belong to no tensor (next is %s)",
                              at, e->begin, quoted(e->name, q, sizeof q));
        if (e->begin < at) /* at > 0, so some earlier range was non-empty */
            return load_error(c, IG_ERR_FORMAT,
                              "tensor %s data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor %s [%" PRIu64 ", %" PRIu64 "]",
                              quoted(e->name, q, sizeof q), e->begin, e->end, quoted(prev->name, qp, sizeof qp),
                              prev->begin, prev->end);
        at = e->end;
        if (e->end > e->begin) prev = e;
    }
    if (at != data_len)
        return load_error(c, IG_ERR_FORMAT,
                          "the tensors cover %" PRIu64 " bytes but the data section has %" PRIu64 " bytes", at, data_len);

    /* Everything checked: build the object. Its tensors are heap tensors even when a scope
     * is open, since the object owns them. */
    ig_safetensors *st = calloc(1, sizeof *st);
    if (!st) return load_error(c, IG_ERR_NOMEM, "out of memory");
    st->names = calloc(n_tensors + 1, sizeof(char *));
    st->tensors = calloc(n_tensors + 1, sizeof(ig_tensor *));
    st->by_name = malloc(sizeof(int) * (n_tensors + 1));
    st->meta_keys = calloc(n_meta + 1, sizeof(char *));
    st->meta_values = calloc(n_meta + 1, sizeof(char *));
    bool ok = st->names && st->tensors && st->by_name && st->meta_keys && st->meta_values;
    if (ok) st->n = c->n;
    for (int i = 0; ok && i < c->n; i++) {
        const entry *e = &c->entries[i];
        st->by_name[i] = c->by_name[i]->index;
        st->names[i] = dup_str(e->name);
        igi_heap_mode(1);
        st->tensors[i] = igi_tensor_new(c->op, e->ndim, e->shape, e->dtype, IG_CPU);
        igi_heap_mode(-1);
        if (!st->tensors[i]) {
            char why[256];
            snprintf(why, sizeof why, "%s", ig_last_error());
            ig_safetensors_free(st);
            return load_error(c, IG_ERR_NOMEM, "cannot make tensor %s (%" PRIu64 " bytes): %s",
                              quoted(e->name, q, sizeof q), e->end - e->begin, why);
        }
        ok = st->names[i] != NULL;
    }
    for (const igi_json *m = meta ? meta->first : NULL; ok && m; m = m->next) {
        int j = st->n_meta++;
        st->meta_keys[j] = dup_str(m->key);
        st->meta_values[j] = dup_str(m->str);
        ok = st->meta_keys[j] && st->meta_values[j];
    }
    if (!ok) {
        ig_safetensors_free(st);
        return load_error(c, IG_ERR_NOMEM, "out of memory for the tensors");
    }
    *out = st;
    return IG_OK;
}

static void ctx_free(load_ctx *c) {
    igi_json_free(c->doc);
    free(c->entries);
    free(c->by_offset);
    free(c->by_name);
    free(c->meta_sorted);
}

static uint64_t read_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

/* Checks the 8-byte prefix and the header length against the total size. */
static ig_status check_prefix(const load_ctx *c, const unsigned char *first8, uint64_t size, uint64_t *hlen) {
    if (size < 8)
        return load_error(c, IG_ERR_FORMAT, "file is %" PRIu64 " bytes, too short for the 8-byte header length", size);
    uint64_t n = read_le64(first8);
    if (n > IG_SAFETENSORS_MAX_HEADER)
        return load_error(c, IG_ERR_FORMAT, "header length %" PRIu64 " is over the limit of %u bytes", n,
                          IG_SAFETENSORS_MAX_HEADER);
    if (n > size - 8)
        return load_error(c, IG_ERR_FORMAT, "header length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)",
                          n, size);
    *hlen = n;
    return IG_OK;
}

ig_safetensors *ig_safetensors_load_memory(const void *buf, size_t len, const char *label) {
    load_ctx c = {"ig_safetensors_load_memory", label ? label : "<memory>", NULL, NULL, 0, NULL, NULL, NULL};
    if (!buf && len > 0) {
        igi_error_null(c.op, "buf");
        return NULL;
    }
    const unsigned char *b = buf;
    uint64_t hlen = 0;
    if (check_prefix(&c, b, len, &hlen) != IG_OK) return NULL;
    ig_safetensors *st = NULL;
    uint64_t data_len = (uint64_t)len - 8 - hlen;
    if (parse_header(&c, (const char *)b + 8, hlen, data_len, &st) == IG_OK) {
        const unsigned char *data = b + 8 + hlen;
        for (int i = 0; i < c.n; i++) {
            const entry *e = &c.entries[i];
            if (e->end > e->begin) memcpy(igi_data(st->tensors[i]), data + e->begin, (size_t)(e->end - e->begin));
        }
    }
    ctx_free(&c);
    return st;
}

/* fread exactly n bytes; false on a short read. */
static bool read_exact(FILE *f, void *p, size_t n) { return n == 0 || fread(p, 1, n, f) == n; }

ig_safetensors *ig_safetensors_load(const char *path) {
    load_ctx c = {"ig_safetensors_load", path, NULL, NULL, 0, NULL, NULL, NULL};
    if (!path) {
        igi_error_null(c.op, "path");
        return NULL;
    }
    /* Refuses a FIFO (fopen would wait for a writer, forever) or a folder before reading:
     * "ig_safetensors_load: PATH: not a regular file (a FIFO)", as load_error words it. */
    struct stat sb;
    FILE *f = igi_fopen_regular(c.op, path, &sb);
    if (!f) return NULL;
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char first8[8] = {0};
    uint64_t hlen = 0;
    char *hdr = NULL;
    ig_safetensors *st = NULL;
    if (size >= 8 && !read_exact(f, first8, 8)) goto short_read;
    if (check_prefix(&c, first8, size, &hlen) != IG_OK) goto done;
    hdr = malloc(hlen ? (size_t)hlen : 1);
    if (!hdr) {
        load_error(&c, IG_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte header", hlen);
        goto done;
    }
    if (!read_exact(f, hdr, (size_t)hlen)) goto short_read;
    if (parse_header(&c, hdr, hlen, size - 8 - hlen, &st) != IG_OK) goto done;
    /* The ranges tile the data section, so reading in offset order needs no seeking. */
    for (int i = 0; i < c.n; i++) {
        const entry *e = c.by_offset[i];
        if (e->end > e->begin && !read_exact(f, igi_data(st->tensors[e->index]), (size_t)(e->end - e->begin))) {
            ig_safetensors_free(st);
            st = NULL;
            goto short_read;
        }
    }
    goto done;
short_read:
    if (ferror(f)) {
        char why[128];
        igi_errno_text(errno, why, sizeof why);
        load_error(&c, IG_ERR_IO, "read failed: %s", why);
    } else {
        load_error(&c, IG_ERR_IO, "file ended early (it changed while being read?)");
    }
done:
    free(hdr);
    ctx_free(&c);
    fclose(f);
    return st;
}

/* ---- accessors ---------------------------------------------------------------------- */

/* True (and an error naming op and arg) when p is NULL. */
static bool is_null(const void *p, const char *op, const char *arg) {
    if (p) return false;
    igi_error_null(op, arg);
    return true;
}

static bool check_index(const char *op, const ig_safetensors *st, int i, bool meta) {
    if (is_null(st, op, "st")) return false;
    int n = meta ? st->n_meta : st->n;
    if (i >= 0 && i < n) return true;
    igi_error(IG_ERR_ARG, "%s: index %d out of range [0, %d)", op, i, n);
    return false;
}

int ig_safetensors_count(const ig_safetensors *st) {
    return is_null(st, "ig_safetensors_count", "st") ? -1 : st->n;
}

const char *ig_safetensors_name(const ig_safetensors *st, int i) {
    return check_index("ig_safetensors_name", st, i, false) ? st->names[i] : NULL;
}

ig_tensor *ig_safetensors_tensor(const ig_safetensors *st, int i) {
    return check_index("ig_safetensors_tensor", st, i, false) ? st->tensors[i] : NULL;
}

/* Binary search over the names in sorted order. */
static int find_index(const ig_safetensors *st, const char *name) {
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int r = strcmp(st->names[st->by_name[mid]], name);
        if (r == 0) return st->by_name[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int ig_safetensors_index(const ig_safetensors *st, const char *name) {
    if (is_null(st, "ig_safetensors_index", "st") || is_null(name, "ig_safetensors_index", "name")) return -1;
    return find_index(st, name);
}

ig_tensor *ig_safetensors_find(const ig_safetensors *st, const char *name) {
    if (is_null(st, "ig_safetensors_find", "st") || is_null(name, "ig_safetensors_find", "name")) return NULL;
    int i = find_index(st, name);
    return i >= 0 ? st->tensors[i] : NULL;
}

int ig_safetensors_meta_count(const ig_safetensors *st) {
    return is_null(st, "ig_safetensors_meta_count", "st") ? -1 : st->n_meta;
}

const char *ig_safetensors_meta_key(const ig_safetensors *st, int i) {
    return check_index("ig_safetensors_meta_key", st, i, true) ? st->meta_keys[i] : NULL;
}

const char *ig_safetensors_meta_value(const ig_safetensors *st, int i) {
    return check_index("ig_safetensors_meta_value", st, i, true) ? st->meta_values[i] : NULL;
}

const char *ig_safetensors_meta(const ig_safetensors *st, const char *key) {
    if (is_null(st, "ig_safetensors_meta", "st") || is_null(key, "ig_safetensors_meta", "key")) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}
