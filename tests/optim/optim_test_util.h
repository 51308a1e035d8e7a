/*
 * tests/optim/optim_test_util.h — small helpers shared by the optim tests: heap parameters
 * and gradients made from plain double arrays, and reading values back. The leak check
 * (assert_no_live_bytes) comes from tests/test_util.h.
 */
#ifndef IGNIS_TESTS_OPTIM_TEST_UTIL_H
#define IGNIS_TESTS_OPTIM_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../test_util.h"
#include "ignis.h"

/* A tensor of shape [n] and dtype dt holding vals (converted), in the current scope. */
static inline ig_tensor *tu_vec(const double *vals, int n, ig_dtype dt) {
    if (dt == IG_F32) {
        float f[64];
        cr_assert(n <= 64);
        for (int i = 0; i < n; i++) f[i] = (float)vals[i];
        return ig_from_data(IG_DIMS(n), IG_F32, f);
    }
    return ig_from_data(IG_DIMS(n), dt, vals);
}

/* A heap leaf parameter of shape [n] that requires grad (free with ig_tensor_free). */
static inline ig_tensor *tu_param(const double *vals, int n, ig_dtype dt) {
    ig_scope *s = ig_scope_begin(); /* so ig_keep gives the only reference, scope or not */
    ig_tensor *p = ig_keep(tu_vec(vals, n, dt));
    ig_scope_end(s);
    cr_assert(p);
    cr_assert(ig_set_requires_grad(p, true) == IG_OK);
    return p;
}

/* Gives p a fresh heap gradient holding vals. */
static inline void tu_set_grad(ig_tensor *p, const double *vals, int n) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *g = ig_keep(tu_vec(vals, n, ig_tensor_dtype(p)));
    ig_scope_end(s);
    cr_assert(ig_set_grad(p, g) == IG_OK, "%s", ig_last_error());
    ig_tensor_free(g);
}

/* Asserts t's n values equal want within tol (relative to max(1, |want|)). */
static inline void tu_expect(const ig_tensor *t, const double *want, int n, double tol, const char *what) {
    cr_assert_eq(ig_tensor_numel(t), n, "%s: numel", what);
    for (int i = 0; i < n; i++) {
        double got = ig_tensor_get(t, i), w = want[i];
        double scale = fabs(w) > 1.0 ? fabs(w) : 1.0;
        cr_assert(fabs(got - w) <= tol * scale, "%s[%d]: got %.17g want %.17g", what, i, got, w);
    }
}

/* Finds a state entry by name (NULL if absent). */
static inline ig_tensor *tu_state(const ig_optimizer *o, const char *name) {
    int c = ig_optim_state_count(o);
    for (int i = 0; i < c; i++) {
        const char *nm;
        ig_tensor *t;
        cr_assert(ig_optim_state_get(o, i, &nm, &t) == IG_OK);
        if (strcmp(nm, name) == 0) return t;
    }
    return NULL;
}

/* Asserts the last error mentions fn. */
static inline void tu_expect_error(const char *fn) {
    cr_assert(strstr(ig_last_error(), fn) != NULL, "error '%s' does not name %s", ig_last_error(), fn);
}

#endif
