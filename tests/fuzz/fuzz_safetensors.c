/*
 * tests/fuzz/fuzz_safetensors.c — libFuzzer target for the safetensors reader
 * (ig_safetensors_load_memory) and, through it, the strict JSON parser.
 *
 *   make fuzz-run FUZZ_SECONDS=60 (every target), or only this one:
 *   make fuzz-run FUZZ_TARGETS=safetensors FUZZ_SECONDS=60 (make fuzz-safetensors is the same)
 *
 * Each input is a whole file image. Whatever the bytes, the reader must return NULL with a
 * message, or a consistent object: every tensor's bytes readable, names and metadata
 * NUL-terminated, find() agreeing with name(i), meta() with meta_key(i). The seed corpus
 * (a few valid files, from tests/fuzz/safetensors_seeds.sh) is written by fuzz-run into
 * build/fuzz/corpus/safetensors; tests/fuzz/safetensors.dict gives the fuzzer the format's
 * words.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ig_clear_error();
    ig_safetensors *st = ig_safetensors_load_memory(data, size, "fuzz");
    if (!st) {
        if (ig_last_error()[0] == '\0') abort(); /* every failure must say why */
        return 0;
    }
    int n = ig_safetensors_count(st);
    volatile unsigned sink = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ig_safetensors_name(st, i);
        ig_tensor *t = ig_safetensors_tensor(st, i);
        if (!name || !t || ig_safetensors_find(st, name) != t) abort();
        int64_t bytes = ig_tensor_numel(t) * (int64_t)ig_dtype_size(ig_tensor_dtype(t));
        const unsigned char *p = ig_tensor_data(t);
        for (int64_t k = 0; k < bytes; k++) sink += p[k]; /* ASan checks every byte */
        sink += (unsigned)strlen(name);
    }
    for (int i = 0; i < ig_safetensors_meta_count(st); i++) {
        const char *k = ig_safetensors_meta_key(st, i), *v = ig_safetensors_meta_value(st, i);
        if (!k || !v || !ig_safetensors_meta(st, k)) abort();
        sink += (unsigned)(strlen(k) + strlen(v));
    }
    (void)sink;
    ig_safetensors_free(st);
    return 0;
}
