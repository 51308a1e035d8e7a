/*
 * core/json.c — the strict JSON reader and the JSON string writer of json_impl.h.
 *
 * The reader is a recursive-descent parser whose recursion is bounded by max_depth, so no
 * input can exhaust the stack. Values and decoded strings live in an arena of large chunks
 * (one igi_json_doc) freed in one call. Every check is done on the raw bytes before any
 * number is trusted: a string is first scanned to its closing quote, then decoded into a
 * buffer of that length (decoding never grows a string), validating UTF-8 and escapes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_impl.h"
#include "tensor_impl.h"

/* ---- arena ----------------------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *prev;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
} chunk;

struct igi_json_doc {
    chunk *top;
    igi_json *root;
};

enum { CHUNK_BYTES = 64 * 1024 };

static void *arena_alloc(igi_json_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!d->top || d->top->cap - d->top->used < n) {
        size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        chunk *c = malloc(sizeof(chunk) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        /* A chunk made for one big request goes below the current one, so the current
         * chunk's free space stays in use. */
        if (d->top && cap > CHUNK_BYTES) {
            c->prev = d->top->prev;
            d->top->prev = c;
            c->used = n;
            return c->data;
        }
        c->prev = d->top;
        d->top = c;
    }
    void *p = d->top->data + d->top->used;
    d->top->used += n;
    return p;
}

void igi_json_free(igi_json_doc *doc) {
    if (!doc) return;
    chunk *c = doc->top;
    while (c) {
        chunk *prev = c->prev;
        free(c);
        c = prev;
    }
    free(doc);
}

igi_json *igi_json_root(const igi_json_doc *doc) { return doc ? doc->root : NULL; }

const char *igi_json_kind_name(igi_json_kind k) {
    switch (k) {
    case IGI_JSON_NULL: return "null";
    case IGI_JSON_BOOL: return "boolean";
    case IGI_JSON_NUMBER: return "number";
    case IGI_JSON_STRING: return "string";
    case IGI_JSON_ARRAY: return "array";
    case IGI_JSON_OBJECT: return "object";
    }
    return "?";
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 if ill-formed.
 * Follows the Unicode table of well-formed byte sequences: no overlongs, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

bool igi_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(u + i, len - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- parser ---------------------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *s;
    size_t len, i;
    int max_depth;
    igi_json_doc *doc;
    char *err;
    size_t errcap;
    bool failed, oom;
} parser;

static bool fail_at(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail_at(parser *p, size_t pos, const char *fmt, ...) {
    if (p->failed) return false;
    p->failed = true;
    if (p->err && p->errcap) {
        int k = snprintf(p->err, p->errcap, "at byte %zu: ", pos);
        if (k >= 0 && (size_t)k < p->errcap) {
            va_list ap;
            va_start(ap, fmt);
            igi_vsnprintf_c(p->err + k, p->errcap - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return false;
}

static bool fail_oom(parser *p) {
    p->oom = true;
    return fail_at(p, p->i, "out of memory");
}

static void skip_ws(parser *p) {
    while (p->i < p->len) {
        unsigned char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

/* Describes the byte at pos for a message: "'x'", "byte 0xff" or "end of text". */
static const char *describe(const parser *p, size_t pos, char *buf, size_t cap) {
    if (pos >= p->len) snprintf(buf, cap, "end of text");
    else if (p->s[pos] >= 0x20 && p->s[pos] < 0x7F) snprintf(buf, cap, "'%c'", p->s[pos]);
    else snprintf(buf, cap, "byte 0x%02x", p->s[pos]);
    return buf;
}

static igi_json *new_value(parser *p, igi_json_kind kind, size_t pos) {
    igi_json *v = arena_alloc(p->doc, sizeof *v);
    if (!v) {
        fail_oom(p);
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->pos = pos;
    return v;
}

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape at s[i] (i points past "\u"). */
static bool read_hex4(parser *p, size_t i, uint32_t *out) {
    if (p->len - i < 4) return fail_at(p, i, "incomplete \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex_digit(p->s[i + (size_t)k]);
        if (h < 0) return fail_at(p, i + (size_t)k, "bad hex digit in \\u escape");
        v = v * 16 + (uint32_t)h;
    }
    *out = v;
    return true;
}

/* Parses a string at p->i (which holds '"') into a decoded, NUL-terminated arena copy. */
static bool parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = p->i + 1;
    /* Pass 1: find the closing quote (a backslash always escapes the next byte). */
    size_t j = start;
    while (j < p->len && p->s[j] != '"') j += p->s[j] == '\\' ? 2 : 1;
    if (j >= p->len) return fail_at(p, p->i, "unterminated string");
    size_t raw = j - start;
    char *buf = arena_alloc(p->doc, raw + 1);
    if (!buf) return fail_oom(p);
    /* Pass 2: decode and validate. */
    size_t n = 0, i = start;
    while (i < j) {
        unsigned char c = p->s[i];
        if (c < 0x20) return fail_at(p, i, "control character 0x%02x in string (must be escaped)", c);
        if (c >= 0x80) {
            size_t k = utf8_seq(p->s + i, j - i);
            if (!k) return fail_at(p, i, "invalid UTF-8 in string");
            memcpy(buf + n, p->s + i, k);
            n += k;
            i += k;
            continue;
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            i++;
            continue;
        }
        unsigned char e = p->s[i + 1]; /* i + 1 < j: pass 1 skipped the escaped byte */
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!read_hex4(p, i + 2, &cp)) return false;
            if (i + 6 > j) return fail_at(p, i, "incomplete \\u escape");
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_at(p, i, "lone low surrogate \\u%04X", (unsigned)cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate must be followed by \u and a low surrogate. */
                if (i + 12 > j || p->s[i + 6] != '\\' || p->s[i + 7] != 'u')
                    return fail_at(p, i, "high surrogate \\u%04X not followed by a low surrogate", (unsigned)cp);
                uint32_t lo;
                if (!read_hex4(p, i + 8, &lo)) return false;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(p, i + 6, "high surrogate \\u%04X followed by \\u%04X, not a low surrogate",
                                   (unsigned)cp, (unsigned)lo);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            n += utf8_encode(cp, buf + n);
            i += 6;
            continue;
        }
        default: return fail_at(p, i, "invalid escape '\\%c'", e >= 0x20 && e < 0x7F ? e : '?');
        }
        i += 2;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    p->i = j + 1;
    return true;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static igi_json *parse_number(parser *p) {
    size_t start = p->i, i = p->i;
    bool negative = false, integral = true;
    if (i < p->len && p->s[i] == '-') {
        negative = true;
        i++;
    }
    if (i >= p->len || !is_digit(p->s[i])) {
        char d[24];
        fail_at(p, i, "expected a digit, found %s", describe(p, i, d, sizeof d));
        return NULL;
    }
    size_t int_start = i;
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && is_digit(p->s[i])) {
            fail_at(p, start, "number with a leading zero");
            return NULL;
        }
    } else {
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    size_t int_end = i;
    if (i < p->len && p->s[i] == '.') {
        integral = false;
        i++;
        if (i >= p->len || !is_digit(p->s[i])) {
            fail_at(p, i, "expected a digit after the decimal point");
            return NULL;
        }
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = false;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i])) {
            fail_at(p, i, "expected a digit in the exponent");
            return NULL;
        }
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    igi_json *v = new_value(p, IGI_JSON_NUMBER, start);
    if (!v) return NULL;
    v->str = (const char *)p->s + start;
    v->len = i - start;
    if (!negative && integral) {
        uint64_t u = 0;
        bool fits = true;
        for (size_t k = int_start; k < int_end; k++) {
            uint64_t d = (uint64_t)(p->s[k] - '0');
            if (u > (UINT64_MAX - d) / 10) {
                fits = false;
                break;
            }
            u = u * 10 + d;
        }
        v->is_uint = fits;
        v->uint = fits ? u : 0;
    }
    p->i = i;
    return v;
}

static igi_json *parse_value(parser *p, int depth);

/* Parses an array or object at p->i ('[' or '{'). */
static igi_json *parse_container(parser *p, int depth, bool object) {
    size_t start = p->i;
    if (depth + 1 > p->max_depth) {
        fail_at(p, start, "nesting deeper than %d levels", p->max_depth);
        return NULL;
    }
    igi_json *v = new_value(p, object ? IGI_JSON_OBJECT : IGI_JSON_ARRAY, start);
    if (!v) return NULL;
    unsigned char close = object ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == close) {
        p->i++;
        return v;
    }
    igi_json **tail = &v->first;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        char d[24];
        if (object) {
            if (p->i >= p->len || p->s[p->i] != '"') {
                fail_at(p, p->i, "expected a string key, found %s", describe(p, p->i, d, sizeof d));
                return NULL;
            }
            if (!parse_string(p, &key, &key_len)) return NULL;
            skip_ws(p);
            if (p->i >= p->len || p->s[p->i] != ':') {
                fail_at(p, p->i, "expected ':' after an object key, found %s", describe(p, p->i, d, sizeof d));
                return NULL;
            }
            p->i++;
            skip_ws(p);
        }
        igi_json *e = parse_value(p, depth + 1);
        if (!e) return NULL;
        e->key = key;
        e->key_len = key_len;
        *tail = e;
        tail = &e->next;
        v->count++;
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            continue;
        }
        if (p->i < p->len && p->s[p->i] == close) {
            p->i++;
            return v;
        }
        fail_at(p, p->i, "expected ',' or '%c', found %s", close, describe(p, p->i, d, sizeof d));
        return NULL;
    }
}

static bool match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    return p->len - p->i >= n && memcmp(p->s + p->i, w, n) == 0;
}

static igi_json *parse_value(parser *p, int depth) {
    char d[24];
    if (p->i >= p->len) {
        fail_at(p, p->i, "expected a value, found end of text");
        return NULL;
    }
    unsigned char c = p->s[p->i];
    size_t start = p->i;
    igi_json *v;
    switch (c) {
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case '"': {
        const char *s;
        size_t n;
        if (!parse_string(p, &s, &n)) return NULL;
        v = new_value(p, IGI_JSON_STRING, start);
        if (!v) return NULL;
        v->str = s;
        v->len = n;
        return v;
    }
    case 't':
    case 'f':
    case 'n': {
        const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
        if (!match_word(p, w)) break;
        v = new_value(p, c == 'n' ? IGI_JSON_NULL : IGI_JSON_BOOL, start);
        if (!v) return NULL;
        v->boolean = c == 't';
        p->i += strlen(w);
        return v;
    }
    default:
        if (c == '-' || is_digit(c)) return parse_number(p);
        break;
    }
    fail_at(p, start, "expected a value, found %s", describe(p, start, d, sizeof d));
    return NULL;
}

ig_status igi_json_parse(const char *text, size_t len, int max_depth, igi_json_doc **doc,
                         char *err, size_t errcap) {
    *doc = NULL;
    if (err && errcap) err[0] = '\0';
    parser p = {(const unsigned char *)text, len, 0, max_depth, NULL, err, errcap, false, false};
    p.doc = calloc(1, sizeof *p.doc);
    if (!p.doc) {
        if (err && errcap) snprintf(err, errcap, "out of memory");
        return IG_ERR_NOMEM;
    }
    skip_ws(&p);
    igi_json *root = parse_value(&p, 0);
    if (root) {
        skip_ws(&p);
        if (p.i < p.len) {
            char d[24];
            fail_at(&p, p.i, "unexpected %s after the end of the value", describe(&p, p.i, d, sizeof d));
            root = NULL;
        }
    }
    if (!root) {
        igi_json_free(p.doc);
        return p.oom ? IG_ERR_NOMEM : IG_ERR_FORMAT;
    }
    p.doc->root = root;
    *doc = p.doc;
    return IG_OK;
}

/* ---- writer ---------------------------------------------------------------------------- */

bool igi_strbuf_append(igi_strbuf *b, const char *s, size_t n) {
    if (b->cap - b->len <= n) { /* keep room for a NUL terminator */
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) return false;
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool igi_strbuf_puts(igi_strbuf *b, const char *s) { return igi_strbuf_append(b, s, strlen(s)); }

bool igi_strbuf_printf(igi_strbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = igi_vsnprintf_c(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if ((size_t)n < sizeof small) return igi_strbuf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return false;
    va_start(ap, fmt);
    igi_vsnprintf_c(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = igi_strbuf_append(b, big, (size_t)n);
    free(big);
    return ok;
}

bool igi_strbuf_json_string(igi_strbuf *b, const char *s) {
    size_t len0 = b->len;
    bool ok = igi_strbuf_append(b, "\"", 1);
    const char *run = s; /* start of the pending run of bytes copied as is */
    for (const char *q = s; ok && *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ok = igi_strbuf_append(b, run, (size_t)(q - run));
        char esc[8];
        switch (c) {
        case '"': strcpy(esc, "\\\""); break;
        case '\\': strcpy(esc, "\\\\"); break;
        case '\b': strcpy(esc, "\\b"); break;
        case '\f': strcpy(esc, "\\f"); break;
        case '\n': strcpy(esc, "\\n"); break;
        case '\r': strcpy(esc, "\\r"); break;
        case '\t': strcpy(esc, "\\t"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); break;
        }
        ok = ok && igi_strbuf_puts(b, esc);
        run = q + 1;
    }
    ok = ok && igi_strbuf_puts(b, run) && igi_strbuf_append(b, "\"", 1);
    if (!ok) { /* leave the buffer as it was */
        b->len = len0;
        if (b->data) b->data[len0] = '\0';
    }
    return ok;
}
