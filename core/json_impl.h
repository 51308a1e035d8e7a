/*
 * core/json_impl.h — a small strict JSON reader and writer helpers, private to ignis.
 *
 * The reader exists for file headers that come from outside (safetensors checkpoints), so
 * it trusts nothing: the text must be valid UTF-8 (no overlong forms, no encoded
 * surrogates, nothing above U+10FFFF), strings may not hold raw control characters, \u
 * escapes must pair their surrogates, numbers follow the JSON grammar exactly, nesting is
 * limited, and after the value only JSON whitespace may follow. It builds a tree in one
 * arena (igi_json_doc) freed at once. Numbers keep their text plus, when the number is a
 * plain non-negative integer that fits in uint64 ("12", not "12.0", "-1" or "1e3"), its
 * value: the callers that need offsets and dims accept exactly those.
 *
 * The writer side is a growable byte buffer with a JSON string escaper.
 */
#ifndef IGNIS_CORE_JSON_IMPL_H
#define IGNIS_CORE_JSON_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

typedef enum igi_json_kind {
    IGI_JSON_NULL,
    IGI_JSON_BOOL,
    IGI_JSON_NUMBER,
    IGI_JSON_STRING,
    IGI_JSON_ARRAY,
    IGI_JSON_OBJECT
} igi_json_kind;

typedef struct igi_json igi_json;
struct igi_json {
    igi_json_kind kind;
    size_t pos;          /* byte offset in the text where this value starts */
    bool boolean;        /* BOOL */
    bool is_uint;        /* NUMBER: a plain non-negative integer that fits in uint64 */
    uint64_t uint;       /* NUMBER with is_uint */
    const char *str;     /* STRING: decoded UTF-8, NUL-terminated; NUMBER: its text (not terminated) */
    size_t len;          /* STRING/NUMBER: bytes in str (a decoded string may hold \u0000) */
    size_t count;        /* ARRAY/OBJECT: number of elements/members */
    igi_json *first;     /* ARRAY/OBJECT: first element/member value, in text order */
    igi_json *next;      /* the next sibling in the enclosing array/object */
    const char *key;     /* member of an OBJECT: its decoded key, NUL-terminated */
    size_t key_len;
};

typedef struct igi_json_doc igi_json_doc;

/* Parses text[0, len) (need not be NUL-terminated). On success returns IG_OK and *doc holds
 * the tree (root: igi_json_root). On failure *doc is NULL and returns IG_ERR_FORMAT with a
 * message "at byte K: cause" in err (always NUL-terminated), or IG_ERR_NOMEM. max_depth
 * bounds nesting: a scalar at top level has depth 0, each array/object adds 1. Sets no
 * ig_last_error: the caller words the message. */
ig_status igi_json_parse(const char *text, size_t len, int max_depth, igi_json_doc **doc,
                         char *err, size_t errcap);
igi_json *igi_json_root(const igi_json_doc *doc);
void igi_json_free(igi_json_doc *doc); /* NULL is fine */
const char *igi_json_kind_name(igi_json_kind k); /* "string", "array", ... */

/* True if s[0, len) is well-formed UTF-8 (same rules as the reader). */
bool igi_utf8_valid(const char *s, size_t len);

/* A growable byte buffer. Appends return false on OOM (the buffer stays usable, unchanged
 * by the failed append); the caller frees data with free(). */
typedef struct igi_strbuf {
    char *data;
    size_t len, cap;
} igi_strbuf;

bool igi_strbuf_append(igi_strbuf *b, const char *s, size_t n);
bool igi_strbuf_puts(igi_strbuf *b, const char *s);
bool igi_strbuf_printf(igi_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (NUL-terminated, assumed valid UTF-8) as a quoted JSON string: '"' and '\\'
 * escaped, control characters as \n \t ... or \u00XX, everything else as is. */
bool igi_strbuf_json_string(igi_strbuf *b, const char *s);

#endif
