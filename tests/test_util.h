/*
 * tests/test_util.h — helpers that tests in several modules share, so that each check is
 * written once: the error checks (status and a message naming the op), the "nothing left
 * live" check, a tensor's shape, and temporary-file helpers (a private folder, removing it,
 * reading a whole file, big-endian words for binary formats). Everything is static inline,
 * so each test file takes only what it uses. Module-specific helpers stay in their own
 * headers (tests/data/data_fixtures.h, tests/tools/cli_test_util.h, tests/optim/
 * optim_test_util.h, ...), which include this one; tests/cuda/ has its own.
 */
#ifndef IGNIS_TESTS_TEST_UTIL_H
#define IGNIS_TESTS_TEST_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ignis.h"

/* 1 when this build runs under AddressSanitizer (gcc defines __SANITIZE_ADDRESS__, clang
 * answers __has_feature), else 0: ASan reserves terabytes of address space and checks
 * leaks, which a few tests must allow for. */
#if defined(__SANITIZE_ADDRESS__)
#define IG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IG_TEST_ASAN 1
#endif
#endif
#ifndef IG_TEST_ASAN
#define IG_TEST_ASAN 0
#endif

/* ---- errors ---------------------------------------------------------------------------- */

/* Asserts that the last failure has status st and a message naming op. */
#define ASSERT_ERR(st, op)                                                                    \
    do {                                                                                      \
        cr_assert_eq(ig_last_status(), (st), "status %d, message '%s'", ig_last_status(),     \
                     ig_last_error());                                                        \
        cr_assert(strstr(ig_last_error(), (op)) != NULL, "message '%s' does not name %s",     \
                  ig_last_error(), (op));                                                     \
    } while (0)

/* Asserts that the last error message contains s. */
#define ERR_HAS(s) cr_assert(strstr(ig_last_error(), (s)), "message: %s", ig_last_error())

/* Clears the error, asserts expr (the failure it describes, e.g. `f(...) == NULL`) and that
 * the message then names fname. */
#define EXPECT_ERR(expr, fname)                                                                   \
    do {                                                                                          \
        ig_clear_error();                                                                         \
        cr_assert((expr), "%s", #expr);                                                           \
        cr_assert(strstr(ig_last_error(), fname), "message '%s' lacks %s", ig_last_error(), fname); \
    } while (0)

/* ---- tensors --------------------------------------------------------------------------- */

/* Asserts that no CPU tensor memory is live (every tensor of the test was freed). */
static inline void assert_no_live_bytes(void) {
    ig_mem_stats ms;
    ig_mem_get_stats(IG_CPU, &ms);
    cr_assert_eq(ms.live_bytes, 0, "live bytes %lld", (long long)ms.live_bytes);
}

/* Asserts that t is not NULL and has shape[0..ndim). */
static inline void assert_shape(const ig_tensor *t, int ndim, const int64_t *shape) {
    cr_assert_not_null(t, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(t), ndim);
    for (int i = 0; i < ndim; i++) cr_assert_eq(ig_tensor_shape(t)[i], shape[i], "dim %d", i);
}

/* ---- files ----------------------------------------------------------------------------- */

/* A fresh folder under /tmp; the caller removes it with rm_tree. */
static inline void make_tmpdir(char out[256]) {
    snprintf(out, 256, "/tmp/ignis-test.XXXXXX");
    cr_assert_not_null(mkdtemp(out), "mkdtemp failed");
}

/* Removes path: a file, or a folder with everything below it. */
static inline void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                size_t len = strlen(path) + strlen(e->d_name) + 2;
                char *sub = malloc(len);
                snprintf(sub, len, "%s/%s", path, e->d_name);
                rm_tree(sub);
                free(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* The whole file into a malloc'd buffer (one spare byte at the end); *n gets its size. */
static inline uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)size + 1);
    cr_assert_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return b;
}

/* v as 4 big-endian bytes at p (IDX headers, PNG chunks). */
static inline void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
