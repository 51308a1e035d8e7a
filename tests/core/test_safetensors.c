/*
 * tests/core/test_safetensors.c — the safetensors writer and reader (core/safetensors.h).
 *
 * Round trips of every dtype (0-dim, zero-size and non-contiguous inputs, metadata with
 * escapes and non-ASCII text), the exact bytes of a small file, atomic replacement (a failed
 * save leaves the old file byte-identical and no temporary file), and the reader refusing
 * damaged or hostile files: truncations, bit flips, bad JSON, bad offsets, unknown dtypes,
 * overflowing shapes, duplicate names, huge header lengths. When python3 with torch is
 * installed, a file written here is read back by Python.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ops.h"
#include "core/safetensors.h"
#include "core/tensor.h"

#include "../test_util.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* A fresh folder under /tmp for one test; removed (with its files) by rm_dir. */
static void make_dir(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/ig_safetensors_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Number of entries in dir other than . and .. */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void write_all_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* A file image: 8-byte little-endian length, the header text as given, data_len zero bytes
 * (or the bytes of data when not NULL). Caller frees. */
static unsigned char *image(const char *header, size_t data_len, const void *data, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = calloc(1, *len + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(b + 8, header, h);
    if (data) memcpy(b + 8 + h, data, data_len);
    return b;
}

/* Loads an image from memory, expecting failure with status st and a message holding want. */
static void expect_reject(const char *header, size_t data_len, ig_status st, const char *want) {
    size_t len;
    unsigned char *b = image(header, data_len, NULL, &len);
    ig_clear_error();
    ig_safetensors *f = ig_safetensors_load_memory(b, len, "bad.safetensors");
    cr_expect_null(f, "accepted: %s", header);
    ig_safetensors_free(f);
    cr_expect_eq(ig_last_status(), st, "status %d for %s (%s)", ig_last_status(), header, ig_last_error());
    cr_expect(strstr(ig_last_error(), "ig_safetensors_load_memory: bad.safetensors: ") == ig_last_error(),
              "message: %s", ig_last_error());
    cr_expect_not_null(strstr(ig_last_error(), want), "for %s: want '%s' in: %s", header, want, ig_last_error());
    free(b);
}

/* The tensor's elements in row-major order as bytes of its own dtype (independent of the
 * code under test: goes through ig_tensor_to_buffer). */
static void *tensor_bytes(const ig_tensor *t, size_t *n) {
    int64_t numel = ig_tensor_numel(t);
    *n = (size_t)numel * ig_dtype_size(ig_tensor_dtype(t));
    void *buf = malloc(*n + 1);
    cr_assert_eq(ig_tensor_to_buffer(t, ig_tensor_dtype(t), buf, numel), IG_OK);
    return buf;
}

static void expect_same_tensor(const ig_tensor *a, const ig_tensor *b) {
    cr_assert_eq(ig_tensor_dtype(a), ig_tensor_dtype(b));
    cr_assert_eq(ig_tensor_ndim(a), ig_tensor_ndim(b));
    for (int d = 0; d < ig_tensor_ndim(a); d++) cr_assert_eq(ig_tensor_shape(a)[d], ig_tensor_shape(b)[d]);
    size_t na, nb;
    void *x = tensor_bytes(a, &na), *y = tensor_bytes(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(x, y, na), 0);
    free(x);
    free(y);
}

/* A small valid file in memory: tensors "a" (F32 [2,3], bytes 0..24) and "b" (I64 [2], bytes
 * 24..40). */
#define GOOD_HEADER                                                                           \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"                    \
    "\"b\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[24,40]}}"

/* ---- round trips ----------------------------------------------------------------------- */

Test(core, safetensors_round_trip_every_dtype) {
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(7);
    /* F32 contiguous; F64 transposed; I32 sliced with step; I64 expanded (stride 0);
     * U8 permuted; a 0-dim tensor; zero-size tensors of two dtypes. */
    ig_tensor *f32 = ig_randn(IG_DIMS(2, 3), IG_F32);
    ig_tensor *f64 = ig_transpose(ig_randn(IG_DIMS(3, 4), IG_F64), 0, 1);
    ig_tensor *i32 = ig_slice(ig_arange(-10, 10, 1, IG_I32), 0, 1, 20, 3);
    ig_tensor *i64 = ig_expand(ig_from_data(IG_DIMS(1, 3), IG_I64, (int64_t[]){INT64_MIN, -1, INT64_MAX}), IG_DIMS(4, 3));
    ig_tensor *u8 = ig_permute(ig_reshape(ig_arange(250, 256, 1, IG_U8), IG_DIMS(2, 3)), (int[]){1, 0});
    ig_tensor *scalar = ig_scalar(-2.5, IG_F64);
    ig_tensor *empty_f = ig_zeros(IG_DIMS(0, 5), IG_F32);
    ig_tensor *empty_i = ig_zeros(IG_DIMS(3, 0), IG_I32);
    cr_assert(!ig_tensor_is_contiguous(f64) && !ig_tensor_is_contiguous(i32) && !ig_tensor_is_contiguous(i64) &&
              !ig_tensor_is_contiguous(u8));
    ig_named_tensor ts[] = {{"layer.0.weight", f32}, {"f64.t", f64}, {"i32", i32}, {"i64", i64},
                            {"u8", u8},             {"scalar", scalar}, {"empty_f", empty_f}, {"empty_i", empty_i}};
    int n = (int)(sizeof ts / sizeof *ts);
    const char *keys[] = {"format", "escapes", "unicode", ""};
    const char *vals[] = {"pt", "quote\" backslash\\ slash/ nl\n tab\t cr\r ctl\x01\x1f del\x7f", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e", ""};
    cr_assert_eq(ig_safetensors_save(path, ts, n, keys, vals, 4), IG_OK, "%s", ig_last_error());

    ig_safetensors *f = ig_safetensors_load(path);
    cr_assert_not_null(f, "%s", ig_last_error());
    cr_assert_eq(ig_safetensors_count(f), n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(ig_safetensors_name(f, i), ts[i].name);
        ig_tensor *t = ig_safetensors_tensor(f, i);
        cr_assert(ig_tensor_is_contiguous(t));
        expect_same_tensor(t, ts[i].tensor);
        cr_assert_eq(ig_safetensors_find(f, ts[i].name), t);
        cr_assert_eq(ig_safetensors_index(f, ts[i].name), i);
    }
    /* Spot values computed by hand. */
    cr_assert_eq(ig_tensor_get(ig_safetensors_find(f, "i32"), 2), -10 + 1 + 2 * 3);
    cr_assert_eq(((int64_t *)ig_tensor_data(ig_safetensors_find(f, "i64")))[11], INT64_MAX);
    cr_assert_eq(ig_tensor_get(ig_safetensors_find(f, "u8"), 1), 253); /* u8^T[0][1] = u8[1][0] */
    cr_assert_eq(ig_tensor_ndim(ig_safetensors_find(f, "scalar")), 0);
    cr_assert_eq(ig_item(ig_safetensors_find(f, "scalar")), -2.5);
    cr_assert_eq(ig_safetensors_meta_count(f), 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(ig_safetensors_meta_key(f, i), keys[i]);
        cr_assert_str_eq(ig_safetensors_meta_value(f, i), vals[i]);
        cr_assert_str_eq(ig_safetensors_meta(f, keys[i]), vals[i]);
    }
    cr_assert_null(ig_safetensors_meta(f, "absent"));
    cr_assert_null(ig_safetensors_find(f, "absent"));
    cr_assert_eq(ig_safetensors_index(f, "absent"), -1);

    /* The data section starts at a multiple of 8. */
    size_t len;
    unsigned char *bytes = slurp(path, &len);
    uint64_t h = 0;
    for (int k = 7; k >= 0; k--) h = (h << 8) | bytes[k];
    cr_assert_eq((8 + h) % 8, 0);
    free(bytes);
    ig_safetensors_free(f);
    ig_scope_end(s);
    rm_dir(dir);
}

Test(core, safetensors_loaded_tensors_are_heap_and_outlive_scope_when_retained) {
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    ig_scope *s = ig_scope_begin();
    ig_named_tensor ts[] = {{"w", ig_arange(0, 4, 1, IG_F32)}};
    cr_assert_eq(ig_safetensors_save(path, ts, 1, NULL, NULL, 0), IG_OK);
    ig_safetensors *f = ig_safetensors_load(path); /* loaded while a scope is open */
    cr_assert_not_null(f);
    ig_tensor *w = ig_tensor_retain(ig_safetensors_tensor(f, 0));
    ig_scope_end(s);
    ig_safetensors_free(f);
    cr_assert_eq(ig_tensor_get(w, 3), 3.0); /* still alive: retained */
    ig_tensor_free(w);
    rm_dir(dir);
}

Test(core, safetensors_header_bytes_exact) {
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/small.safetensors", dir);
    ig_scope *s = ig_scope_begin();
    ig_named_tensor ts[] = {{"a", ig_from_data(IG_DIMS(2), IG_F32, (float[]){1.0f, 2.0f})}};
    const char *k[] = {"k"}, *v[] = {"v"};
    cr_assert_eq(ig_safetensors_save(path, ts, 1, k, v, 1), IG_OK, "%s", ig_last_error());
    /* 79 bytes of JSON + 1 space = 80 = 0x50, so the data starts at 88. 1.0f = 0x3f800000,
     * 2.0f = 0x40000000, little-endian. */
    static const char json[] = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                               "\"data_offsets\":[0,8]}} ";
    unsigned char want[96] = {0x50, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(sizeof json - 1, 80);
    memcpy(want + 8, json, 80);
    const unsigned char data[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};
    memcpy(want + 88, data, 8);
    size_t len;
    unsigned char *got = slurp(path, &len);
    cr_assert_eq(len, 96);
    cr_assert_eq(memcmp(got, want, 96), 0, "header: %.80s", (const char *)got + 8);
    free(got);

    /* No tensors and no metadata: "{}" padded to 8 bytes. */
    cr_assert_eq(ig_safetensors_save(path, NULL, 0, NULL, NULL, 0), IG_OK);
    got = slurp(path, &len);
    cr_assert_eq(len, 16);
    cr_assert_eq(memcmp(got, "\x08\0\0\0\0\0\0\0{}      ", 16), 0);
    ig_safetensors *f = ig_safetensors_load_memory(got, len, NULL);
    cr_assert_not_null(f, "%s", ig_last_error());
    cr_assert_eq(ig_safetensors_count(f), 0);
    cr_assert_eq(ig_safetensors_meta_count(f), 0);
    ig_safetensors_free(f);
    free(got);

    /* Escapes: a control character becomes \u0001, quotes and backslashes are escaped. */
    const char *k2[] = {"q\"\\\x01"}, *v2[] = {"\n"};
    cr_assert_eq(ig_safetensors_save(path, NULL, 0, k2, v2, 1), IG_OK);
    got = slurp(path, &len);
    static const char json2[] = "{\"__metadata__\":{\"q\\\"\\\\\\u0001\":\"\\n\"}}";
    cr_assert_eq(memcmp(got + 8, json2, sizeof json2 - 1), 0, "got %s", (const char *)got + 8);
    free(got);
    ig_scope_end(s);
    rm_dir(dir);
}

/* ---- atomic replacement ----------------------------------------------------------------- */

Test(core, safetensors_failed_save_leaves_old_file_and_no_temp) {
    char dir[64], path[128], bad[160];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    ig_scope *s = ig_scope_begin();
    ig_named_tensor good[] = {{"w", ig_arange(0, 10, 1, IG_F32)}};
    cr_assert_eq(ig_safetensors_save(path, good, 1, NULL, NULL, 0), IG_OK);
    chmod(path, 0640);
    size_t len0;
    unsigned char *before = slurp(path, &len0);

    /* A folder that does not exist: the message names the file and the cause. */
    snprintf(bad, sizeof bad, "%s/missing/last.safetensors", dir);
    cr_assert_eq(ig_safetensors_save(bad, good, 1, NULL, NULL, 0), IG_ERR_IO);
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_save"));
    cr_assert_not_null(strstr(ig_last_error(), bad), "%s", ig_last_error());
    cr_assert_not_null(strstr(ig_last_error(), "No such file or directory"), "%s", ig_last_error());

    /* Arguments that cannot be written: nothing is created. */
    ig_named_tensor null_t[] = {{"w", NULL}};
    cr_assert_eq(ig_safetensors_save(path, null_t, 1, NULL, NULL, 0), IG_ERR_ARG);
    cr_assert_not_null(strstr(ig_last_error(), "'w' is NULL"));
    ig_named_tensor dup[] = {{"w", good[0].tensor}, {"w", good[0].tensor}};
    cr_assert_eq(ig_safetensors_save(path, dup, 2, NULL, NULL, 0), IG_ERR_ARG);
    cr_assert_not_null(strstr(ig_last_error(), "duplicate tensor name 'w'"));
    ig_named_tensor reserved[] = {{"__metadata__", good[0].tensor}};
    cr_assert_eq(ig_safetensors_save(path, reserved, 1, NULL, NULL, 0), IG_ERR_ARG);
    ig_named_tensor noname[] = {{NULL, good[0].tensor}};
    cr_assert_eq(ig_safetensors_save(path, noname, 1, NULL, NULL, 0), IG_ERR_ARG);
    ig_named_tensor badutf[] = {{"w\xff", good[0].tensor}};
    cr_assert_eq(ig_safetensors_save(path, badutf, 1, NULL, NULL, 0), IG_ERR_ARG);
    cr_assert_not_null(strstr(ig_last_error(), "UTF-8"));
    const char *k[] = {"a", "a"}, *v[] = {"1", "2"};
    cr_assert_eq(ig_safetensors_save(path, good, 1, k, v, 2), IG_ERR_ARG);
    cr_assert_not_null(strstr(ig_last_error(), "duplicate metadata key 'a'"));
    const char *vnull[] = {"1", NULL};
    const char *k2[] = {"a", "b"};
    cr_assert_eq(ig_safetensors_save(path, good, 1, k2, vnull, 2), IG_ERR_ARG);
    cr_assert_eq(ig_safetensors_save(NULL, good, 1, NULL, NULL, 0), IG_ERR_ARG);
    cr_assert_eq(ig_safetensors_save(path, NULL, 1, NULL, NULL, 0), IG_ERR_ARG);
    cr_assert_eq(ig_safetensors_save(path, good, -1, NULL, NULL, 0), IG_ERR_ARG);
    cr_assert_eq(ig_safetensors_save(path, good, 1, NULL, NULL, 1), IG_ERR_ARG);

    /* A write that fails half way (the file size limit stops it): the temporary file is
     * removed and the old file is untouched. */
    ig_named_tensor big[] = {{"big", ig_zeros(IG_DIMS(64, 1024), IG_F32)}};
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    lim = old_lim;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ig_status st = ig_safetensors_save(path, big, 1, NULL, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old_lim);
    cr_assert_eq(st, IG_ERR_IO);
    cr_assert_not_null(strstr(ig_last_error(), path), "%s", ig_last_error());
    cr_assert_not_null(strstr(ig_last_error(), "write failed"), "%s", ig_last_error());

    size_t len1;
    unsigned char *after = slurp(path, &len1);
    cr_assert_eq(len1, len0);
    cr_assert_eq(memcmp(before, after, len0), 0);
    cr_assert_eq(count_files(dir), 1); /* no path.tmpXXXXXX left */
    free(after);

    /* A successful replacement keeps the old file's mode and leaves one file. */
    cr_assert_eq(ig_safetensors_save(path, big, 1, NULL, NULL, 0), IG_OK);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0640);
    cr_assert_eq(count_files(dir), 1);
    ig_safetensors *f = ig_safetensors_load(path);
    cr_assert_not_null(f);
    cr_assert_eq(ig_tensor_numel(ig_safetensors_find(f, "big")), 64 * 1024);
    ig_safetensors_free(f);
    free(before);
    ig_scope_end(s);
    rm_dir(dir);
}

Test(core, safetensors_relative_path_without_folder) {
    char dir[64], old_cwd[512];
    make_dir(dir, sizeof dir);
    cr_assert_not_null(getcwd(old_cwd, sizeof old_cwd));
    cr_assert_eq(chdir(dir), 0);
    ig_scope *s = ig_scope_begin();
    ig_named_tensor ts[] = {{"x", ig_ones(IG_DIMS(3), IG_U8)}};
    cr_assert_eq(ig_safetensors_save("plain.safetensors", ts, 1, NULL, NULL, 0), IG_OK, "%s", ig_last_error());
    ig_safetensors *f = ig_safetensors_load("plain.safetensors");
    cr_assert_not_null(f);
    cr_assert_eq(ig_tensor_get(ig_safetensors_tensor(f, 0), 2), 1.0);
    ig_safetensors_free(f);
    ig_scope_end(s);
    cr_assert_eq(chdir(old_cwd), 0);
    rm_dir(dir);
}

/* ---- reader: damaged files --------------------------------------------------------------- */

/* A ~16 KiB file with metadata and several tensors. */
static unsigned char *sixteen_kib_file(const char *dir, size_t *len) {
    char path[128];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(3);
    ig_named_tensor ts[] = {{"conv.weight", ig_randn(IG_DIMS(16, 1, 5, 5), IG_F32)},
                            {"conv.bias", ig_randn(IG_DIMS(16), IG_F32)},
                            {"fc.weight", ig_randn(IG_DIMS(10, 300), IG_F32)},
                            {"steps", ig_scalar(12, IG_I64)},
                            {"mask", ig_ones(IG_DIMS(100), IG_U8)}};
    const char *k[] = {"format", "model"}, *v[] = {"pt", "cnn"};
    cr_assert_eq(ig_safetensors_save(path, ts, 5, k, v, 2), IG_OK);
    ig_scope_end(s);
    unsigned char *b = slurp(path, len);
    cr_assert(*len > 14000 && *len < 18000, "%zu", *len);
    return b;
}

Test(core, safetensors_rejects_every_truncation) {
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    size_t len;
    unsigned char *b = sixteen_kib_file(dir, &len);
    ig_safetensors *full = ig_safetensors_load_memory(b, len, "full");
    cr_assert_not_null(full, "%s", ig_last_error());
    ig_safetensors_free(full);
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    for (size_t cut = 0; cut < len; cut += cut < 4096 ? 1 : 1024) {
        /* A copy of exactly cut bytes, so ASan sees any read past it. */
        unsigned char *c = malloc(cut ? cut : 1);
        memcpy(c, b, cut);
        ig_clear_error();
        ig_safetensors *f = ig_safetensors_load_memory(c, cut, "cut");
        cr_assert_null(f, "truncated at %zu accepted", cut);
        cr_assert_eq(ig_last_status(), IG_ERR_FORMAT, "at %zu: %s", cut, ig_last_error());
        cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_load_memory: cut: "));
        /* The file reader too, on a sample of the cuts (every 61st and every KiB step). */
        if (cut % 61 == 0 || cut >= 4096) {
            write_all_file(path, c, cut);
            f = ig_safetensors_load(path);
            cr_assert_null(f, "file truncated at %zu accepted", cut);
            cr_assert_not_null(strstr(ig_last_error(), path), "%s", ig_last_error());
        }
        free(c);
    }
    free(b);
    rm_dir(dir);
}

Test(core, safetensors_header_bit_flips_never_crash) {
    char dir[64];
    make_dir(dir, sizeof dir);
    size_t len;
    unsigned char *b = sixteen_kib_file(dir, &len);
    int rejected = 0, total = 0;
    /* Every bit of the length prefix and of the first 256 header bytes. */
    for (size_t byte = 0; byte < 8 + 256; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            unsigned char *c = malloc(len);
            memcpy(c, b, len);
            c[byte] ^= (unsigned char)(1u << bit);
            ig_clear_error();
            ig_safetensors *f = ig_safetensors_load_memory(c, len, "flip");
            total++;
            if (!f) {
                rejected++;
                cr_assert(ig_last_error()[0] != '\0');
            } else {
                /* Accepted (e.g. a changed letter in a name): it must be self-consistent. */
                for (int i = 0; i < ig_safetensors_count(f); i++) cr_assert_not_null(ig_safetensors_tensor(f, i));
                ig_safetensors_free(f);
            }
            free(c);
        }
    }
    cr_assert(rejected * 10 >= total * 6, "only %d of %d flips rejected", rejected, total);
    free(b);
    rm_dir(dir);
}

Test(core, safetensors_rejects_bad_json) {
    const ig_status F = IG_ERR_FORMAT;
    /* Syntax. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, F, "not valid JSON");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, F, "not valid JSON");
    expect_reject("{'a':1}", 0, F, "not valid JSON");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, F,
                  "after the end of the value");
    expect_reject(" {}", 0, F, "does not start with '{'");
    expect_reject("[1]", 0, F, "does not start with '{'");
    expect_reject("", 0, F, "does not start with '{'");
    expect_reject("{\"a\" {}}", 0, F, "expected ':'");
    expect_reject("{\"a\":tru}", 0, F, "expected a value");
    expect_reject("{\"a\":01}", 0, F, "leading zero");
    expect_reject("{\"a\":1.}", 0, F, "decimal point");
    expect_reject("{\"a\":1e}", 0, F, "exponent");
    expect_reject("{\"a\":-}", 0, F, "expected a digit");
    expect_reject("{\"a\":\"x}", 0, F, "unterminated string");
    expect_reject("{\"a\\x\":1}", 0, F, "invalid escape");
    expect_reject("{\"\\ud800\":1}", 0, F, "not followed by a low surrogate");
    expect_reject("{\"\\udc00\":1}", 0, F, "lone low surrogate");
    expect_reject("{\"\\ud800\\u0041\":1}", 0, F, "not a low surrogate");
    expect_reject("{\"\\u12G4\":1}", 0, F, "bad hex digit");
    expect_reject("{\"\\u12\"}", 0, F, "not valid JSON");
    expect_reject("{\"a\xff\":1}", 0, F, "invalid UTF-8");
    expect_reject("{\"a\xc0\xaf\":1}", 0, F, "invalid UTF-8");         /* overlong '/' */
    expect_reject("{\"a\xed\xa0\x80\":1}", 0, F, "invalid UTF-8");     /* encoded surrogate */
    expect_reject("{\"a\xf4\x90\x80\x80\":1}", 0, F, "invalid UTF-8"); /* past U+10FFFF */
    expect_reject("{\"a\xe2\x9c\":1}", 0, F, "invalid UTF-8");         /* cut sequence */
    expect_reject("{\"a\tb\":1}", 0, F, "control character");
    expect_reject("{\"a\":1} \x01", 0, F, "after the end");
    /* A NUL byte after the value is not whitespace. */
    unsigned char nul[11] = {3, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0};
    cr_assert_null(ig_safetensors_load_memory(nul, sizeof nul, "nul"));
    cr_assert_not_null(strstr(ig_last_error(), "unexpected byte 0x00 after the end of the value"), "%s", ig_last_error());
    /* Deep nesting fails cleanly (no stack exhaustion). */
    static char deep[20000];
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 5000; i++) strcat(deep, "[");
    expect_reject(deep, 0, F, "nesting deeper");
    /* Structure. */
    expect_reject("{\"a\":5}", 0, F, "tensor 'a' is 5, not an object");
    expect_reject("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F, "tensor 'a' has no 'dtype'");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, F, "has no 'shape'");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, F, "has no 'data_offsets'");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, F,
                  "unknown field 'x'");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                  "field 'dtype' twice");
    expect_reject("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F, "not a string");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, F, "not an array");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, F, "dim 1.0");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4, F, "dim 1e0");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, F, "dim -1");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, F, "dim a string");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}}", 4, F,
                  "dim 9223372036854775808");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, F,
                  "has 9 dims");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, F, "[0, 4.0]");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-0,4]}}", 4, F, "[-0, 4]");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4, F, "two integers");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4, F, "two integers");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 4, F,
                  "99999999999999999999");
    expect_reject("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                  "holds a NUL");
    /* Metadata. */
    expect_reject("{\"__metadata__\":{\"k\":1}}", 0, F, "metadata 'k' is 1, not a string");
    expect_reject("{\"__metadata__\":[]}", 0, F, "'__metadata__' is an array, not an object");
    expect_reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0, F, "'__metadata__' twice");
    expect_reject("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, F, "duplicate metadata key 'k'");
    expect_reject("{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, F, "holds a NUL");
}

Test(core, safetensors_rejects_bad_dtypes_and_sizes) {
    const ig_status F = IG_ERR_FORMAT;
    expect_reject("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F, "unknown dtype 'F33'");
    expect_reject("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F, "unknown dtype 'f32'");
    expect_reject("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, IG_ERR_DTYPE,
                  "dtype F16, which ignis does not support");
    expect_reject("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, IG_ERR_DTYPE, "BOOL");
    /* Shape products that overflow 64 bits, alone or times the element size. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, F,
                  "overflows");
    expect_reject("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0, F,
                  "overflows");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775807,2],\"data_offsets\":[0,0]}}", 0, F,
                  "overflows");
    /* ... even when a zero dim makes the tensor empty (ignis tensors cannot hold such
     * shapes: their strides would overflow); reasonable empty shapes are fine. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0, F,
                  "overflows");
    size_t len;
    unsigned char *b = image("{\"a\":{\"dtype\":\"F32\",\"shape\":[5,0,7],\"data_offsets\":[0,0]}}", 0, NULL, &len);
    ig_safetensors *f = ig_safetensors_load_memory(b, len, NULL);
    cr_assert_not_null(f, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(ig_safetensors_tensor(f, 0)), 0);
    cr_assert_eq(ig_tensor_shape(ig_safetensors_tensor(f, 0))[2], 7);
    ig_safetensors_free(f);
    free(b);
    /* Sizes that do not match the shape; the brief's example message. */
    expect_reject("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,100]}}", 100, F,
                  "tensor '0.weight' data_offsets [0, 100] do not match dtype F32 shape [5,6] (120 bytes)");
    expect_reject("{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, F, "do not match dtype I64 shape []");
}

Test(core, safetensors_rejects_bad_offsets) {
    const ig_status F = IG_ERR_FORMAT;
    /* Past the end of the data section. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, F,
                  "data_offsets [0, 8] run past the data section (4 bytes)");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551612,18446744073709551616]}}",
                  4, F, "data_offsets");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, F, "end before they begin");
    /* Overlap, gaps, start not at 0, end not at the end. */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, F, "tensor 'b' data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                  8, F, "overlap");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                  12, F, "gap in the data section: bytes [4, 8)");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, F, "bytes [0, 4)");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, F,
                  "the tensors cover 4 bytes but the data section has 8 bytes");
    expect_reject("{}", 1, F, "cover 0 bytes");
    /* Duplicate names (an otherwise valid tiling). */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, F, "duplicate tensor name 'a'");
    /* Zero-size tensors may sit anywhere inside the tiling, in any order. */
    size_t len;
    unsigned char *b = image("{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                             "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
                             "\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                             8, "\x01\0\0\0\x05\x06\x07\x08", &len);
    ig_safetensors *f = ig_safetensors_load_memory(b, len, NULL);
    cr_assert_not_null(f, "%s", ig_last_error());
    cr_assert_str_eq(ig_safetensors_name(f, 0), "z"); /* header order, not offset order */
    cr_assert_eq(ig_tensor_get(ig_safetensors_find(f, "a"), 0), 1.0);
    cr_assert_eq(ig_tensor_get(ig_safetensors_find(f, "b"), 3), 8.0);
    ig_safetensors_free(f);
    free(b);
}

Test(core, safetensors_rejects_bad_lengths) {
    unsigned char b[64] = {0};
    for (size_t n = 0; n < 8; n++) {
        cr_assert_null(ig_safetensors_load_memory(b, n, "tiny"));
        cr_assert_not_null(strstr(ig_last_error(), "too short for the 8-byte header length"), "%s", ig_last_error());
    }
    /* Header length 2^63, just over the limit, and one past the file. */
    uint64_t lens[] = {(uint64_t)1 << 63, UINT64_MAX, IG_SAFETENSORS_MAX_HEADER + 1ull, 64 - 8 + 1};
    const char *want[] = {"over the limit", "over the limit", "over the limit", "runs past the end of the file (64 bytes)"};
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)(lens[i] >> (8 * k));
        cr_assert_null(ig_safetensors_load_memory(b, sizeof b, "len"));
        cr_assert_eq(ig_last_status(), IG_ERR_FORMAT);
        cr_assert_not_null(strstr(ig_last_error(), want[i]), "%s", ig_last_error());
    }
    /* A valid escape-laden name is accepted and decoded to UTF-8. */
    size_t len;
    unsigned char *img = image("{\"a\\u00e9\\ud83d\\ude00\\/\\n\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}  \n\t",
                               1, "\x2a", &len);
    ig_safetensors *f = ig_safetensors_load_memory(img, len, NULL);
    cr_assert_not_null(f, "%s", ig_last_error());
    cr_assert_str_eq(ig_safetensors_name(f, 0), "a\xc3\xa9\xf0\x9f\x98\x80/\n");
    cr_assert_eq(ig_tensor_get(ig_safetensors_tensor(f, 0), 0), 42.0);
    ig_safetensors_free(f);
    free(img);
}

/* A FIFO where the file should be: fopen() waited for a writer, forever (alarm() turns that
 * hang into a failure); it is refused before anything is read, naming the file. */
Test(core, safetensors_load_refuses_a_fifo) {
    char dir[256], p[512], want[640];
    make_dir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/w.safetensors", dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    alarm(10);
    cr_assert_null(ig_safetensors_load(p));
    alarm(0);
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    snprintf(want, sizeof want, "ig_safetensors_load: %s: not a regular file (a FIFO)", p);
    cr_assert_not_null(strstr(ig_last_error(), want), "%s", ig_last_error());
    cr_assert_null(ig_safetensors_load(dir));
    cr_assert_not_null(strstr(ig_last_error(), "not a regular file (a directory)"), "%s", ig_last_error());
    rm_dir(dir);
}

Test(core, safetensors_file_errors_and_accessors) {
    cr_assert_null(ig_safetensors_load("/nonexistent/dir/x.safetensors"));
    cr_assert_eq(ig_last_status(), IG_ERR_IO);
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_load: /nonexistent/dir/x.safetensors: cannot open"));
    cr_assert_not_null(strstr(ig_last_error(), "No such file"));
    cr_assert_null(ig_safetensors_load("/tmp"));
    cr_assert_not_null(strstr(ig_last_error(), "not a regular file"));
    ig_clear_error();
    cr_assert_null(ig_safetensors_load(NULL));
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_load: argument 'path' is NULL"));
    ig_clear_error();
    cr_assert_null(ig_safetensors_load_memory(NULL, 10, NULL));
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_load_memory: argument 'buf' is NULL"));

    size_t len;
    unsigned char *b = image(GOOD_HEADER, 40, NULL, &len);
    ig_safetensors *f = ig_safetensors_load_memory(b, len, NULL);
    cr_assert_not_null(f, "%s", ig_last_error());
    cr_assert_eq(ig_safetensors_count(f), 2);
    cr_assert_null(ig_safetensors_name(f, 2));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_name: index 2 out of range"));
    cr_assert_null(ig_safetensors_tensor(f, -1));
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_tensor"));
    cr_assert_null(ig_safetensors_meta_key(f, 0));
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_meta_key"));
    cr_assert_null(ig_safetensors_meta_value(f, 0));
    cr_assert_eq(ig_safetensors_meta_count(f), 0);
    ig_clear_error();
    cr_assert_null(ig_safetensors_find(f, NULL));
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_find"));
    ig_clear_error();
    cr_assert_eq(ig_safetensors_count(NULL), -1);
    cr_assert_not_null(strstr(ig_last_error(), "ig_safetensors_count"));
    cr_assert_null(ig_safetensors_meta(NULL, "k"));
    cr_assert_eq(ig_safetensors_index(NULL, "a"), -1);
    ig_safetensors_free(NULL);
    ig_safetensors_free(f);
    free(b);
}

/* ---- interoperability ---------------------------------------------------------------------- */

/* Reads the file with Python: the safetensors package if present, else json + struct; then
 * checks every tensor against values written here. */
static const char py_script[] =
    "import json, struct, sys\n"
    "import torch\n"
    "path = sys.argv[1]\n"
    "raw = open(path, 'rb').read()\n"
    "n = struct.unpack('<Q', raw[:8])[0]\n"
    "hdr = json.loads(raw[8:8 + n].decode('utf-8'))\n"
    "meta = hdr.pop('__metadata__', {})\n"
    "try:\n"
    "    from safetensors.torch import load_file\n"
    "    ts = load_file(path)\n"
    "except ImportError:\n"
    "    dt = {'F32': torch.float32, 'F64': torch.float64, 'I32': torch.int32, 'I64': torch.int64, 'U8': torch.uint8}\n"
    "    data = bytearray(raw[8 + n:])\n"
    "    ts = {}\n"
    "    for k, v in hdr.items():\n"
    "        b, e = v['data_offsets']\n"
    "        t = torch.frombuffer(data[b:e], dtype=dt[v['dtype']]) if e > b else torch.empty(0, dtype=dt[v['dtype']])\n"
    "        ts[k] = t.reshape(v['shape'])\n"
    "ok = True\n"
    "def check(name, want):\n"
    "    global ok\n"
    "    got = ts[name]\n"
    "    if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):\n"
    "        print('mismatch', name, got, want); ok = False\n"
    "check('f32', torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4)\n"
    "check('f64_t', torch.arange(12, dtype=torch.float64).reshape(3, 4).t() - 5.5)\n"
    "check('i32', torch.tensor([-7, 0, 9], dtype=torch.int32))\n"
    "check('i64', torch.tensor([[-2**63, 2**63 - 1]] * 3, dtype=torch.int64))\n"
    "check('u8', torch.arange(250, 256, dtype=torch.uint8))\n"
    "check('scalar', torch.tensor(3.25, dtype=torch.float64))\n"
    "check('empty', torch.zeros(2, 0, dtype=torch.float32))\n"
    "if list(ts.keys()) != ['f32', 'f64_t', 'i32', 'i64', 'u8', 'scalar', 'empty'] and 'safetensors' not in sys.modules:\n"
    "    print('order', list(ts.keys())); ok = False\n"
    "if meta != {'format': 'pt', 'note': 'caf\\u00e9 \"q\"\\n'}:\n"
    "    print('meta', meta); ok = False\n"
    "sys.exit(0 if ok else 1)\n";

Test(core, safetensors_python_reads_our_file) {
    if (access("/usr/bin/python3", X_OK) != 0) cr_skip_test("/usr/bin/python3 is not installed");
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        cr_skip_test("python3 torch is not installed (apt install python3-torch)");
    char dir[64], path[128], script[128], cmd[512];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/py.safetensors", dir);
    snprintf(script, sizeof script, "%s/check.py", dir);
    write_all_file(script, py_script, sizeof py_script - 1);
    ig_scope *s = ig_scope_begin();
    ig_named_tensor ts[] = {
        {"f32", ig_from_data(IG_DIMS(2, 3), IG_F32, (float[]){0, 0.25f, 0.5f, 0.75f, 1, 1.25f})},
        {"f64_t", ig_transpose(ig_from_data(IG_DIMS(3, 4), IG_F64,
                                            (double[]){-5.5, -4.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5}),
                               0, 1)},
        {"i32", ig_slice(ig_from_data(IG_DIMS(5), IG_I32, (int32_t[]){-7, 1, 0, 2, 9}), 0, 0, 5, 2)},
        {"i64", ig_expand(ig_from_data(IG_DIMS(1, 2), IG_I64, (int64_t[]){INT64_MIN, INT64_MAX}), IG_DIMS(3, 2))},
        {"u8", ig_arange(250, 256, 1, IG_U8)},
        {"scalar", ig_scalar(3.25, IG_F64)},
        {"empty", ig_zeros(IG_DIMS(2, 0), IG_F32)},
    };
    const char *k[] = {"format", "note"}, *v[] = {"pt", "caf\xc3\xa9 \"q\"\n"};
    cr_assert_eq(ig_safetensors_save(path, ts, 7, k, v, 2), IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, path);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "python could not read the file (%s)", cmd);
    rm_dir(dir);
}
