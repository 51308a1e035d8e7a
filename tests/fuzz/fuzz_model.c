/*
 * tests/fuzz/fuzz_model.c — libFuzzer target for the plain-text model descriptions
 * (ig_model_from_text, nn/model_file.c) and, through the models it accepts, the layers.
 *
 *   make fuzz-run FUZZ_TARGETS=model FUZZ_SECONDS=60
 *
 * Input: two geometry bytes, then the text (a NUL-terminated copy of the rest).
 *   byte 0: bits 0-1 channels - 1 (1..4), bit 2 training mode, bits 3-7 height - 1 (1..32)
 *   byte 1: bits 0-4 width - 1 (1..32), bits 5-7 classes - 1 (1..8)
 * Whatever the text, the parser must return a model or NULL with a message naming the
 * parser, the source and the line ("ig_model_from_text: fuzz.txt:3: ..."; only "no layers"
 * has no line). A model it returns must really run: one forward pass of a
 * zero batch ([1,C,H,W] in eval mode, [2,C,H,W] in training mode, where BatchNorm needs two
 * values per channel) must give [N, classes]; so the parser's shape tracking is checked
 * against the layers themselves. Nothing may stay live afterwards.
 *
 * A text may legally ask for a model of 2^31 parameters per layer, or for images grown by
 * padding to millions of pixels; building or running those is merely slow, which would
 * starve the fuzzer (and libFuzzer reports a malloc over its limit as a crash). So before
 * calling the parser, cost_bound() walks the text once with upper bounds of every size
 * (never exact: it only has to be large enough) and the input is skipped when the model's
 * parameters could exceed PARAM_CAP, or only the forward is skipped when its activations or
 * FLOPs could exceed ACT_CAP / FLOP_CAP. The seeds come from tests/fuzz/model_seeds.sh and
 * tests/fuzz/model.dict holds the grammar's words.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#define MAX_TEXT 4096       /* longer inputs are skipped: the parser is line by line anyway */
#define PARAM_CAP 4e6       /* parameter elements a built model may have */
#define ACT_CAP 4e6         /* elements of one image's activation in the forward */
#define FLOP_CAP 5e7        /* multiply-adds of the forward, per image */

typedef struct bound {
    bool image;      /* [C,H,W] (else a vector [F]) */
    double c, h, w;  /* upper bounds of the image's sizes */
    double f;        /* upper bound of the vector's size */
    double params, flops, act;
} bound;

/* The value of an integer word as the parser reads it (strtoll, base 10), or 0 when it
 * is none or out of every range the parser accepts (it then rejects the line, so the line
 * adds nothing): no integer it takes is negative or over 2^20. */
static double int_word(const char *s, double classes) {
    if (strcmp(s, "classes") == 0) return classes;
    if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return *end || errno || v < 0 || v > (1 << 20) ? 0 : (double)v;
}

/* N or NxM: the two values (N, N for a plain N). */
static void size_word(const char *s, double out[2]) {
    char a[64];
    snprintf(a, sizeof a, "%s", s);
    char *x = strchr(a, 'x');
    if (x) *x = '\0';
    out[0] = int_word(a, 0);
    out[1] = x ? int_word(x + 1, 0) : out[0];
}

static double numel(const bound *b) { return b->image ? b->c * b->h * b->w : b->f; }

/* Walks text (modified: split in place) and fills *b with upper bounds of what the model
 * the parser would build costs. Stops at the first line it cannot read: the parser stops
 * there too (or earlier), having built no more than the lines before. */
static void cost_bound(char *text, double channels, double height, double width, double classes, bound *b) {
    *b = (bound){.image = true, .c = channels, .h = height, .w = width};
    b->act = numel(b);
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *word[16], *key[16], *val[16];
        int nw = 0, npos = 0, nopt = 0;
        char *pos[16];
        for (char *t = strtok(line, " \t\r\v\f"); t && nw < 16; t = strtok(NULL, " \t\r\v\f")) word[nw++] = t;
        for (int i = 1; i < nw; i++) {
            char *eq = strchr(word[i], '=');
            if (eq) {
                *eq = '\0';
                key[nopt] = word[i];
                val[nopt++] = eq + 1;
            } else {
                pos[npos++] = word[i];
            }
        }
        line = nl ? nl + 1 : NULL;
        if (nw == 0) continue;
        const char *name = word[0];
        double in = numel(b);
        double pad[2] = {0, 0}, k[2] = {0, 0};
        for (int i = 0; i < nopt; i++)
            if (strcmp(key[i], "pad") == 0) size_word(val[i], pad);
        if (strcmp(name, "conv") == 0 && b->image && npos >= 2) {
            double out = int_word(pos[0], classes), st[2] = {1, 1};
            size_word(pos[1], k);
            for (int i = 0; i < nopt; i++)
                if (strcmp(key[i], "stride") == 0) size_word(val[i], st);
            /* torch's out side with dilation 1 (a larger dilation only shrinks it) */
            if (st[0] < 1 || st[1] < 1 || b->h + 2 * pad[0] < k[0] || b->w + 2 * pad[1] < k[1]) break;
            double h = floor((b->h + 2 * pad[0] - k[0]) / st[0]) + 1, w = floor((b->w + 2 * pad[1] - k[1]) / st[1]) + 1;
            b->params += out * b->c * k[0] * k[1] + out;
            b->flops += out * h * w * b->c * k[0] * k[1];
            b->c = out;
            b->h = h;
            b->w = w;
        } else if ((strcmp(name, "maxpool") == 0 || strcmp(name, "avgpool") == 0) && b->image && npos >= 1) {
            size_word(pos[0], k);
            double st[2] = {k[0], k[1]};
            for (int i = 0; i < nopt; i++)
                if (strcmp(key[i], "stride") == 0) size_word(val[i], st);
            /* torch's out side in ceil mode (at least the floor mode's) */
            if (st[0] < 1 || st[1] < 1 || b->h + 2 * pad[0] < k[0] || b->w + 2 * pad[1] < k[1]) break;
            double win = k[0] * k[1] < b->h * b->w ? k[0] * k[1] : b->h * b->w;
            b->h = floor((b->h + 2 * pad[0] - k[0] + st[0] - 1) / st[0]) + 1;
            b->w = floor((b->w + 2 * pad[1] - k[1] + st[1] - 1) / st[1]) + 1;
            b->flops += numel(b) * win;
        } else if (strcmp(name, "adaptive_avgpool") == 0 && b->image && npos >= 1) {
            double oh = int_word(pos[0], 0), ow = npos > 1 ? int_word(pos[1], 0) : oh;
            if (oh < 1 || ow < 1) break;
            b->flops += b->c * oh * ow * (b->h / oh + 2) * (b->w / ow + 2);
            b->h = oh;
            b->w = ow;
        } else if (strcmp(name, "block") == 0 && b->image && npos >= 1) {
            double out = int_word(pos[0], classes), st = 1;
            for (int i = 0; i < nopt; i++)
                if (strcmp(key[i], "stride") == 0) st = int_word(val[i], 0);
            if (st < 1) break;
            /* 3x3 convs with padding 1: side (H - 1) / stride + 1 */
            double p = 9 * out * b->c + 9 * out * out + out * b->c + 8 * out;
            b->h = floor((b->h - 1) / st) + 1;
            b->w = floor((b->w - 1) / st) + 1;
            b->params += p;
            b->flops += b->h * b->w * p;
            b->c = out;
        } else if (strcmp(name, "flatten") == 0) {
            b->f = in;
            b->image = false;
        } else if (strcmp(name, "linear") == 0 && !b->image && npos >= 1) {
            double out = int_word(pos[0], classes);
            b->params += out * (b->f + 1);
            b->flops += out * b->f;
            b->f = out;
        } else if (strcmp(name, "bn") == 0) {
            b->params += 4 * (b->image ? b->c : b->f);
            b->flops += 4 * in;
        } else if (strcmp(name, "layernorm") == 0) {
            b->params += 2 * in;
            b->flops += 8 * in;
        } else if (strcmp(name, "relu") == 0 || strcmp(name, "gelu") == 0 || strcmp(name, "silu") == 0 ||
                   strcmp(name, "sigmoid") == 0 || strcmp(name, "tanh") == 0 || strcmp(name, "softmax") == 0 ||
                   strcmp(name, "leaky_relu") == 0 || strcmp(name, "dropout") == 0) {
            b->flops += 8 * in;
        } else {
            break; /* unknown layer or wrong input kind: the parser stops here */
        }
        if (numel(b) > b->act) b->act = numel(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size - 2 > MAX_TEXT) return 0;
    int64_t channels = 1 + (data[0] & 3), height = 1 + (data[0] >> 3);
    int64_t width = 1 + (data[1] & 31), classes = 1 + (data[1] >> 5);
    bool training = data[0] & 4;
    size_t len = size - 2;
    char *text = malloc(len + 1), *scratch = malloc(len + 1);
    if (!text || !scratch) abort();
    memcpy(text, data + 2, len);
    text[len] = '\0';
    memcpy(scratch, text, len + 1);
    bound b;
    cost_bound(scratch, (double)channels, (double)height, (double)width, (double)classes, &b);
    free(scratch);
    if (b.params > PARAM_CAP) {
        free(text);
        return 0;
    }

    ig_mem_stats before, after;
    ig_mem_get_stats(IG_CPU, &before);
    ig_clear_error();
    ig_manual_seed(1);
    ig_module *m = ig_model_from_text(text, "fuzz.txt", channels, height, width, classes);
    free(text);
    if (!m) {
        /* Every failure says why, naming the parser, the source and the line; only a text
         * without layers has no line to name. */
        const char *e = ig_last_error(), *at = strstr(e, "ig_model_from_text: fuzz.txt");
        if (!at || (!(at[28] == ':' && at[29] >= '1' && at[29] <= '9') && !strstr(e, "fuzz.txt: no layers"))) {
            fprintf(stderr, "fuzz_model: bad message: '%s'\n", e);
            abort();
        }
    } else if (b.act <= ACT_CAP && b.flops <= FLOP_CAP) {
        int64_t n = training ? 2 : 1;
        ig_module_train(m, training);
        ig_scope *s = ig_scope_begin();
        ig_tensor *x = ig_zeros(IG_DIMS(n, channels, height, width), IG_F32);
        ig_tensor *y = ig_module_forward(m, x);
        if (!y || ig_tensor_ndim(y) != 2 || ig_tensor_size(y, 0) != n || ig_tensor_size(y, 1) != classes) {
            fprintf(stderr, "fuzz_model: the parser accepted a model whose forward %s: %s\n",
                    y ? "has the wrong shape" : "fails", y ? "" : ig_last_error());
            abort();
        }
        ig_scope_end(s);
    }
    ig_module_free(m);
    ig_mem_get_stats(IG_CPU, &after);
    if (after.live_bytes != before.live_bytes) {
        fprintf(stderr, "fuzz_model: %lld tensor bytes left live\n", (long long)(after.live_bytes - before.live_bytes));
        abort();
    }
    return 0;
}
