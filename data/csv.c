/*
 * data/csv.c — numeric CSV: one item per row, comma-separated numbers, one column holding
 * the integer class. Items are the other columns as float [F].
 *
 * Accepted: '\n' or "\r\n" line ends, blank lines (skipped), spaces or tabs around a
 * number, a UTF-8 byte-order mark at the start of the file (skipped), numbers of any length.
 * Rejected, with the file, line and field named: a row whose field count differs from the
 * first data row's (ragged), a field that is not a finite number (quotes and text
 * included), a feature outside float's range (it would become infinite; values that round
 * to +-FLT_MAX are taken as that), a label that is not an integer in
 * 0..IGI_CSV_MAX_CLASSES-1, a row of more than IGI_DATA_MAX_NUMEL features, a file with no
 * data rows. has_header skips the first line whatever it holds. num_classes is the largest
 * label + 1, named "0", "1", ...
 *
 * Memory: the file (bounded by IGI_DATA_MAX_BYTES) plus the parsed features, which grow by
 * doubling as rows arrive, capped at the rows the rest of the file could still hold; every
 * feature takes at least two bytes of file ("1,"), so the features take at most about twice
 * the file's size.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

typedef struct csv_ctx {
    float *features; /* [n, F] */
    int32_t *labels; /* [n] */
    int64_t n, F;
} csv_ctx;

static int64_t csv_length(void *ctx) { return ((csv_ctx *)ctx)->n; }

static ig_status csv_read(void *ctx, int64_t i, float *x, int64_t *label) {
    const csv_ctx *c = ctx;
    memcpy(x, c->features + (size_t)i * (size_t)c->F, (size_t)c->F * sizeof *x);
    *label = c->labels[i];
    return IG_OK;
}

static void csv_free(void *ctx) {
    csv_ctx *c = ctx;
    if (!c) return;
    free(c->features);
    free(c->labels);
    free(c);
}

static const ig_dataset_ops csv_ops = {csv_length, csv_read, csv_free};

/* What parse_number found. */
typedef enum { NUM_OK, NUM_BAD, NUM_NOMEM } num_result;

/* Parses field [s, e) as a finite number: NUM_BAD if it is not one. Fields too long for
 * the stack buffer (numbers written with many digits) are copied to the heap. */
static num_result parse_number(const char *s, const char *e, double *out) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    char small[64], *buf = small;
    size_t len = (size_t)(e - s);
    if (len == 0) return NUM_BAD;
    /* strtod would skip white space of its own (\r, \v, \f), which is not CSV's. */
    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.')) return NUM_BAD;
    if (len >= sizeof small && !(buf = malloc(len + 1))) return NUM_NOMEM;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    double v = igi_strtod(buf, &end);
    bool ok = end == buf + len && isfinite(v);
    if (buf != small) free(buf);
    if (!ok) return NUM_BAD;
    *out = v;
    return NUM_OK;
}

/* Whether v converts to a finite float: |v| <= FLT_MAX, or below the point halfway to the
 * next power of two, 2^128 - 2^103, where round-to-nearest still gives FLT_MAX ("3.4028235e38",
 * FLT_MAX printed to 8 digits, is just above FLT_MAX). Converting anything larger is undefined
 * in C and infinite in IEEE arithmetic. */
static bool fits_float(double v) { return fabs(v) < 0x1.ffffffp127; }

/* The field [s, e) for a message: at most 24 characters, non-printables as '?'. */
static void field_text(const char *s, const char *e, char *buf, size_t cap) {
    size_t k = 0;
    for (; s < e && k + 4 < cap && k < 24; s++) buf[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    if (s < e) {
        buf[k++] = '.';
        buf[k++] = '.';
        buf[k++] = '.';
    }
    buf[k] = '\0';
}

ig_dataset *ig_dataset_csv(const char *path, int label_column, bool has_header) {
    static const char *op = "ig_dataset_csv";
    if (!path) {
        igi_error_null(op, "path");
        return NULL;
    }
    uint8_t *buf;
    size_t size;
    if (igi_read_file(op, path, IGI_DATA_MAX_BYTES, &buf, &size) != IG_OK) return NULL;
    const char *p = (const char *)buf, *end = p + size;
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* a UTF-8 byte-order mark */
    csv_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        free(buf);
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    int64_t T = -1, label_idx = -1, cap = 0, line = 0, first_line = 0;
    int max_label = -1;
    float *row = NULL; /* one row's features, then copied in */
    ig_status st = IG_OK;
    while (p < end && st == IG_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        line++;
        if (le > p && le[-1] == '\r') le--;
        const char *q = p;
        p = next;
        if (line == 1 && has_header) continue;
        const char *t = q;
        while (t < le && (*t == ' ' || *t == '\t')) t++;
        if (t == le) continue; /* blank line */
        /* Count the fields: commas + 1. */
        int64_t fields = 1;
        for (const char *s = q; s < le; s++) fields += *s == ',';
        if (T < 0) {
            T = fields;
            first_line = line;
            label_idx = label_column < 0 ? T + label_column : label_column;
            if (label_idx < 0 || label_idx >= T) {
                st = igi_error(IG_ERR_ARG, "%s: %s: label column %d does not exist (line %lld has %lld fields)", op,
                               path, label_column, (long long)line, (long long)T);
                break;
            }
            if (T < 2) {
                st = igi_error(IG_ERR_FORMAT, "%s: %s: line %lld has only the label column, no features", op, path,
                               (long long)line);
                break;
            }
            if (T - 1 > IGI_DATA_MAX_NUMEL) {
                st = igi_error(IG_ERR_FORMAT, "%s: %s: line %lld has %lld fields, more than the %lld features "
                               "an item may have", op, path, (long long)line, (long long)T,
                               (long long)IGI_DATA_MAX_NUMEL);
                break;
            }
            c->F = T - 1;
            row = malloc((size_t)c->F * sizeof *row);
            if (!row) {
                st = igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
                break;
            }
        } else if (fields != T) {
            st = igi_error(IG_ERR_FORMAT, "%s: %s: line %lld: ragged row of %lld fields, expected %lld (as line %lld)",
                           op, path, (long long)line, (long long)fields, (long long)T, (long long)first_line);
            break;
        }
        int64_t f = 0, k = 0;
        int32_t label = 0;
        for (const char *s = q; f < T; f++) {
            const char *fe = memchr(s, ',', (size_t)(le - s));
            if (!fe) fe = le;
            double v = 0;
            num_result r = parse_number(s, fe, &v);
            if (r == NUM_NOMEM) {
                st = igi_error(IG_ERR_NOMEM, "%s: %s: line %lld, field %lld: out of memory for a %lld-byte field", op,
                               path, (long long)line, (long long)f + 1, (long long)(fe - s));
                break;
            }
            if (r == NUM_BAD || (f != label_idx && !fits_float(v))) {
                char txt[32];
                field_text(s, fe, txt, sizeof txt);
                st = igi_error(IG_ERR_FORMAT, "%s: %s: line %lld, field %lld: \"%s\" %s", op, path, (long long)line,
                               (long long)f + 1, txt,
                               r == NUM_BAD ? "is not a number" : "is outside the float range (magnitude over 3.4e38)");
                break;
            }
            if (f == label_idx) {
                if (v != floor(v) || v < 0 || v >= IGI_CSV_MAX_CLASSES) {
                    st = igi_error(IG_ERR_FORMAT, "%s: %s: line %lld: label %g out of range (a class in 0..%d)", op,
                                   path, (long long)line, v, IGI_CSV_MAX_CLASSES - 1);
                    break;
                }
                label = (int32_t)v;
            } else {
                row[k++] = (float)v;
            }
            s = fe + 1;
        }
        if (st != IG_OK) break;
        if (c->n == cap) {
            /* Doubling, but never past the rows the rest of the file can hold: k more rows
             * of T fields take at least 2Tk - 1 bytes ("0,0,...,0" and line ends), so one
             * wide row does not reserve room for 64. */
            int64_t nc = cap ? cap * 2 : 64, most = c->n + 1 + ((int64_t)(end - p) + 1) / (2 * T);
            if (nc > most) nc = most;
            if ((uint64_t)nc * (uint64_t)c->F > (uint64_t)SIZE_MAX / sizeof(float) / 2) {
                st = igi_error(IG_ERR_NOMEM, "%s: %s: too many values", op, path);
                break;
            }
            float *nf = realloc(c->features, (size_t)nc * (size_t)c->F * sizeof *nf);
            if (nf) c->features = nf;
            int32_t *nlb = nf ? realloc(c->labels, (size_t)nc * sizeof *nlb) : NULL;
            if (nlb) c->labels = nlb;
            if (!nf || !nlb) {
                st = igi_error(IG_ERR_NOMEM, "%s: %s: out of memory for %lld rows", op, path, (long long)nc);
                break;
            }
            cap = nc;
        }
        memcpy(c->features + (size_t)c->n * (size_t)c->F, row, (size_t)c->F * sizeof *row);
        c->labels[c->n++] = label;
        if (label > max_label) max_label = label;
    }
    free(row);
    free(buf);
    if (st == IG_OK && c->n == 0)
        st = igi_error(IG_ERR_FORMAT, "%s: %s: no data rows%s", op, path, has_header ? " after the header" : "");
    if (st != IG_OK) {
        csv_free(c);
        return NULL;
    }
    int64_t shape[1] = {c->F};
    ig_dataset *d = ig_dataset_new(&csv_ops, c, 1, shape, max_label + 1, NULL);
    if (!d) igi_error_in_file(op, path);
    return d;
}
