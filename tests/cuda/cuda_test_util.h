/*
 * tests/cuda/cuda_test_util.h — helpers shared by the CUDA test files (test_cuda.c,
 * test_cuda_nn.c): skipping without a device, moving tensors, and the CUDA-vs-CPU
 * comparison (relative error below 1e-5 for f32, 1e-12 for f64, NaN and inf in the same
 * places, integers equal). Static inline, so each file takes what it uses.
 */
#ifndef IGNIS_TESTS_CUDA_TEST_UTIL_H
#define IGNIS_TESTS_CUDA_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

/* Skips the test, saying why, unless CUDA is built and a device is usable. */
static inline void need_cuda(void) {
    if (ig_cuda_is_available()) return;
    /* "ig_cuda_is_available: no CUDA device (REASON)" or "...: ignis was built without CUDA" */
    const char *m = ig_last_error(), *colon = strstr(m, ": ");
    if (colon) m = colon + 2;
    const char *inner = "no CUDA device (";
    size_t n = strlen(m), k = strlen(inner);
    if (strncmp(m, inner, k) == 0 && n > k && m[n - 1] == ')')
        cr_skip_test("no CUDA device: %.*s", (int)(n - k - 1), m + k);
    cr_skip_test("no CUDA device: %s", m);
}

/* A heap tensor on d made from the heap CPU tensor cpu (which is freed). */
static inline ig_tensor *heap_on(ig_tensor *cpu, ig_device d) {
    cr_assert(cpu, "%s", ig_last_error());
    ig_tensor *r = d == IG_CPU ? ig_clone(cpu) : ig_to(cpu, d);
    cr_assert(r, "%s", ig_last_error());
    ig_tensor_free(cpu);
    return r;
}

/* t on device d (asserting success). */
static inline ig_tensor *on(ig_tensor *t, ig_device d) {
    cr_assert(t, "input: %s", ig_last_error());
    ig_tensor *r = ig_to(t, d);
    cr_assert(r, "ig_to: %s", ig_last_error());
    return r;
}

/* Asserts got (on device d) matches want (CPU) in shape, dtype and values. */
static inline void expect_match(ig_tensor *got, ig_tensor *want, ig_device d, const char *what) {
    cr_assert(want, "%s (cpu): %s", what, ig_last_error());
    cr_assert(got, "%s (%s): %s", what, d == IG_CPU ? "cpu" : "cuda", ig_last_error());
    cr_assert_eq(ig_tensor_device(got), d, "%s: result on the wrong device", what);
    cr_assert_eq(ig_tensor_dtype(got), ig_tensor_dtype(want), "%s: dtype %s vs %s", what,
                 ig_dtype_name(ig_tensor_dtype(got)), ig_dtype_name(ig_tensor_dtype(want)));
    int nd = ig_tensor_ndim(want);
    cr_assert_eq(ig_tensor_ndim(got), nd, "%s: ndim %d vs %d", what, ig_tensor_ndim(got), nd);
    for (int i = 0; i < nd; i++)
        cr_assert_eq(ig_tensor_shape(got)[i], ig_tensor_shape(want)[i], "%s: dim %d differs", what, i);
    int64_t n = ig_tensor_numel(want);
    if (n == 0) return;
    ig_dtype dt = ig_tensor_dtype(want);
    if (ig_dtype_is_float(dt)) {
        double *g = malloc(sizeof(double) * (size_t)n), *w = malloc(sizeof(double) * (size_t)n);
        cr_assert(g && w);
        cr_assert_eq(ig_tensor_to_buffer(got, IG_F64, g, n), IG_OK, "%s: %s", what, ig_last_error());
        cr_assert_eq(ig_tensor_to_buffer(want, IG_F64, w, n), IG_OK, "%s: %s", what, ig_last_error());
        double maxdiff = 0, maxabs = 0;
        for (int64_t i = 0; i < n; i++) {
            if (isnan(w[i]) || isnan(g[i])) {
                cr_assert(isnan(w[i]) && isnan(g[i]), "%s: element %lld: %g vs cpu %g", what, (long long)i, g[i], w[i]);
                continue;
            }
            if (isinf(w[i]) || isinf(g[i])) {
                cr_assert(g[i] == w[i], "%s: element %lld: %g vs cpu %g", what, (long long)i, g[i], w[i]);
                continue;
            }
            double diff = fabs(g[i] - w[i]);
            if (diff > maxdiff) maxdiff = diff;
            if (fabs(w[i]) > maxabs) maxabs = fabs(w[i]);
        }
        double tol = dt == IG_F32 ? 1e-5 : 1e-12;
        cr_assert(maxdiff <= tol * maxabs, "%s: max |got - cpu| = %g, max |cpu| = %g: relative error %g > %g", what,
                  maxdiff, maxabs, maxabs > 0 ? maxdiff / maxabs : INFINITY, tol);
        free(g);
        free(w);
    } else {
        int64_t *g = malloc(sizeof(int64_t) * (size_t)n), *w = malloc(sizeof(int64_t) * (size_t)n);
        cr_assert(g && w);
        cr_assert_eq(ig_tensor_to_buffer(got, IG_I64, g, n), IG_OK, "%s: %s", what, ig_last_error());
        cr_assert_eq(ig_tensor_to_buffer(want, IG_I64, w, n), IG_OK, "%s: %s", what, ig_last_error());
        for (int64_t i = 0; i < n; i++)
            cr_assert_eq(g[i], w[i], "%s: element %lld: %lld vs cpu %lld", what, (long long)i, (long long)g[i],
                         (long long)w[i]);
        free(g);
        free(w);
    }
}

/* Random test data of dtype dt on the CPU: normal floats (positive in [0.5, 2.5) when
 * positive), integers in [-6, 7) (u8: [0, 12)), zeros included. */
static inline ig_tensor *data(ig_dtype dt, int ndim, const int64_t *shape, bool positive) {
    ig_tensor *t;
    if (ig_dtype_is_float(dt)) {
        t = positive ? ig_add_scalar(ig_mul_scalar(ig_rand(ndim, shape, IG_F64), 2.0), 0.5) : ig_randn(ndim, shape, IG_F64);
        t = ig_to_dtype(t, dt);
    } else {
        t = ig_randint(dt == IG_U8 ? 0 : -6, dt == IG_U8 ? 12 : 7, ndim, shape, dt);
    }
    cr_assert(t, "data: %s", ig_last_error());
    return t;
}

/* t on the host as contiguous f32 (bf16 results under bf16 autocast convert exactly). */
static inline ig_tensor *host_f32(ig_tensor *t) {
    ig_tensor *h = ig_to(t, IG_CPU);
    h = h && ig_tensor_dtype(h) != IG_F32 ? ig_to_dtype(h, IG_F32) : ig_contiguous(h);
    cr_assert(h, "host_f32: %s", ig_last_error());
    return h;
}

/* How far b is from the reference a for results rounded to bf16 once from fp32 sums taken
 * in different orders: the fp32 part of the difference may be 3e-5 of max(1, max |a|) (as
 * for fp16's f32 results), the rounding then at most one bf16 step at the element (2^(e-7)
 * for |v| in [2^e, 2^(e+1))). Returns the largest remainder in bf16 steps: at most 1. */
static inline double bf16_steps_host(ig_tensor *a, ig_tensor *b) {
    ig_tensor *ha = host_f32(a), *hb = host_f32(b);
    cr_assert_eq(ig_tensor_numel(ha), ig_tensor_numel(hb));
    const float *x = ig_tensor_data(ha), *y = ig_tensor_data(hb);
    double scale = 1, m = 0;
    for (int64_t i = 0; i < ig_tensor_numel(ha); i++) scale = fmax(scale, fabs((double)x[i]));
    for (int64_t i = 0; i < ig_tensor_numel(ha); i++) {
        double d = fabs((double)x[i] - (double)y[i]), v = fmax(fabs((double)x[i]), fabs((double)y[i]));
        if (d != d) return INFINITY;
        int e;
        frexp(v, &e); /* v in [2^(e-1), 2^e) */
        double ulp = fmax(v > 0 ? ldexp(1.0, (e - 1) - 7) : 0, ldexp(1.0, -133));
        m = fmax(m, (d - 3e-5 * scale) / ulp);
    }
    return m;
}

#endif
