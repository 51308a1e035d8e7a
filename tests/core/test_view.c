/*
 * tests/core/test_view.c — views and copies: reshape/view, flatten, permute, transpose,
 * slice, narrow, select, expand, squeeze/unsqueeze, contiguous, clone. Checks shapes,
 * strides, values (against hand index formulas), storage sharing, every error path, and
 * backward through each view both with ig_gradcheck (f64) and against gradients worked out
 * by hand.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

#define ASSERT_SHAPE(t, ...)                                                                  \
    do {                                                                                      \
        const int64_t want_[] = {__VA_ARGS__};                                                \
        int nd_ = (int)(sizeof want_ / sizeof want_[0]);                                      \
        cr_assert_not_null((t), "%s", ig_last_error());                                       \
        cr_assert_eq(ig_tensor_ndim(t), nd_, "ndim %d, want %d", ig_tensor_ndim(t), nd_);     \
        for (int i_ = 0; i_ < nd_; i_++)                                                      \
            cr_assert_eq(ig_tensor_shape(t)[i_], want_[i_], "dim %d: %lld vs %lld", i_,       \
                         (long long)ig_tensor_shape(t)[i_], (long long)want_[i_]);            \
    } while (0)

/* x = 0, 1, ..., n-1 as f64 with the given shape, requiring grad when rg. */
static ig_tensor *iota(int ndim, const int64_t *shape, bool rg) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    double *buf = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) buf[i] = (double)i;
    ig_tensor *t = ig_from_data(ndim, shape, IG_F64, buf);
    free(buf);
    cr_assert_not_null(t);
    if (rg) cr_assert_eq(ig_set_requires_grad(t, true), IG_OK);
    return t;
}

static double at(ig_tensor *t, int64_t i) { return ig_tensor_get(t, i); }

/* Backpropagates y = sum(v * w) with w[k] = k + 1 over v's logical (row-major) order, so
 * that d y / d x[i] is the sum of (k + 1) over every element k of v that reads x[i]. */
static ig_tensor *weighted_backward(ig_tensor *x, ig_tensor *v) {
    cr_assert_not_null(v, "%s", ig_last_error());
    int64_t n = ig_tensor_numel(v);
    ig_tensor *w = ig_add_scalar(ig_arange(0, (double)n, 1, ig_tensor_dtype(v)), 1.0);
    w = ig_reshape(w, ig_tensor_ndim(v), ig_tensor_shape(v));
    ig_tensor *y = ig_sum(ig_mul(v, w), 0, NULL, false);
    cr_assert_not_null(y, "%s", ig_last_error());
    cr_assert_eq(ig_backward(y, NULL), IG_OK, "%s", ig_last_error());
    ig_tensor *g = ig_grad(x);
    cr_assert_not_null(g);
    ASSERT_SHAPE(g, ig_tensor_shape(x)[0], ig_tensor_shape(x)[1], ig_tensor_shape(x)[2]);
    return g;
}

/* ---- reshape / view / flatten -------------------------------------------------------- */

Test(core, view_and_reshape_with_inferred_dim) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(24), false);
    ig_tensor *v = ig_view(a, IG_DIMS(2, -1, 4));
    ASSERT_SHAPE(v, 2, 3, 4);
    cr_assert_eq(ig_tensor_data(v), ig_tensor_data(a));
    cr_assert_eq(ig_tensor_strides(v)[0], 12);
    cr_assert_eq(ig_tensor_strides(v)[1], 4);
    ig_tensor *r = ig_reshape(v, IG_DIMS(-1));
    ASSERT_SHAPE(r, 24);
    cr_assert_eq(ig_tensor_data(r), ig_tensor_data(a));
    ASSERT_SHAPE(ig_view(ig_scalar(3, IG_F32), IG_DIMS(1, 1)), 1, 1);
    ASSERT_SHAPE(ig_view(ig_zeros(IG_DIMS(0, 3), IG_F32), IG_DIMS(3, -1, 2)), 3, 0, 2);
    ig_tensor *sc = ig_view(ig_ones(IG_DIMS(1, 1), IG_F32), 0, NULL);
    cr_assert_eq(ig_tensor_ndim(sc), 0);
    cr_assert_eq(ig_item(sc), 1.0);

    ig_clear_error();
    cr_assert_null(ig_view(a, IG_DIMS(-1, -1)));
    ASSERT_ERR(IG_ERR_ARG, "ig_view");
    ig_clear_error();
    cr_assert_null(ig_view(a, IG_DIMS(5, -1)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_view");
    ig_clear_error();
    cr_assert_null(ig_reshape(a, IG_DIMS(5, 5)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_reshape");
    ig_clear_error();
    cr_assert_null(ig_reshape(a, IG_DIMS(-2, -12)));
    ASSERT_ERR(IG_ERR_ARG, "ig_reshape");
    ig_clear_error();
    cr_assert_null(ig_reshape(a, IG_DIMS(1, 1, 1, 1, 1, 1, 1, 1, 24)));
    ASSERT_ERR(IG_ERR_ARG, "ig_reshape");
    ig_clear_error();
    cr_assert_null(ig_view(NULL, IG_DIMS(1)));
    ASSERT_ERR(IG_ERR_ARG, "ig_view");
    ig_scope_end(s);
}

Test(core, view_of_transposed_fails_reshape_copies) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(3, 4), false);
    ig_tensor *t = ig_transpose(a, 0, 1); /* [4,3], t[i][j] = 4j + i */
    ig_clear_error();
    cr_assert_null(ig_view(t, IG_DIMS(12)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_view");
    cr_assert(strstr(ig_last_error(), "ig_reshape"), "message should point at ig_reshape: %s", ig_last_error());
    ig_tensor *r = ig_reshape(t, IG_DIMS(12));
    ASSERT_SHAPE(r, 12);
    cr_assert_neq(ig_tensor_data(r), ig_tensor_data(a));
    for (int k = 0; k < 12; k++) cr_assert_eq(at(r, k), (double)((k % 3) * 4 + k / 3));
    /* Splitting a dim of the transpose is still a view: [4,3] -> [2,2,3]. */
    ig_tensor *v = ig_view(t, IG_DIMS(2, 2, 3));
    ASSERT_SHAPE(v, 2, 2, 3);
    cr_assert_eq(ig_tensor_strides(v)[0], 2);
    cr_assert_eq(ig_tensor_strides(v)[1], 1);
    cr_assert_eq(ig_tensor_strides(v)[2], 4);
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 2; q++)
            for (int j = 0; j < 3; j++) cr_assert_eq(at(v, p * 6 + q * 3 + j), (double)(4 * j + 2 * p + q));
    /* Columns 0, 2 of [3,4] sit at a uniform stride of 2: merging them is a view. */
    ig_tensor *even = ig_view(ig_slice(a, 1, 0, 4, 2), IG_DIMS(6));
    ASSERT_SHAPE(even, 6);
    cr_assert_eq(ig_tensor_strides(even)[0], 2);
    cr_assert_eq(at(even, 5), 10.0);
    /* Columns 0, 1 are not evenly spaced (0,1,4,5,...): no view. */
    ig_tensor *sl = ig_slice(a, 1, 0, 2, 1); /* [3,2] */
    ig_clear_error();
    cr_assert_null(ig_view(sl, IG_DIMS(6)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_view");
    ig_scope_end(s);
}

Test(core, flatten) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(2, 3, 4), false);
    ASSERT_SHAPE(ig_flatten(a, 1, 2), 2, 12);
    ASSERT_SHAPE(ig_flatten(a, 0, -1), 24);
    ASSERT_SHAPE(ig_flatten(a, 0, 1), 6, 4);
    ASSERT_SHAPE(ig_flatten(a, 1, 1), 2, 3, 4);
    ASSERT_SHAPE(ig_flatten(ig_scalar(1, IG_F64), 0, -1), 1);
    /* Flattening a permuted tensor copies, in logical order. */
    ig_tensor *f = ig_flatten(ig_transpose(a, 0, 2), 0, -1); /* [4,3,2] */
    for (int k = 0; k < 24; k++) {
        int i = k / 6, j = (k / 2) % 3, l = k % 2;
        cr_assert_eq(at(f, k), (double)(l * 12 + j * 4 + i));
    }
    ig_clear_error();
    cr_assert_null(ig_flatten(a, 2, 1));
    ASSERT_ERR(IG_ERR_ARG, "ig_flatten");
    ig_clear_error();
    cr_assert_null(ig_flatten(a, 0, 3));
    ASSERT_ERR(IG_ERR_ARG, "ig_flatten");
    ig_scope_end(s);
}

/* ---- permute / transpose ------------------------------------------------------------- */

Test(core, permute_and_transpose) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(2, 3, 4), false);
    ig_tensor *p = ig_permute(a, (int[]){2, 0, 1});
    ASSERT_SHAPE(p, 4, 2, 3);
    cr_assert(ig_tensor_strides(p)[0] == 1 && ig_tensor_strides(p)[1] == 12 && ig_tensor_strides(p)[2] == 4);
    cr_assert(!ig_tensor_is_contiguous(p));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) cr_assert_eq(at(p, i * 6 + j * 3 + k), (double)(j * 12 + k * 4 + i));
    ig_tensor *pn = ig_permute(a, (int[]){-1, 0, -2});
    ASSERT_SHAPE(pn, 4, 2, 3);
    ig_tensor *t = ig_transpose(a, -1, 0);
    ASSERT_SHAPE(t, 4, 3, 2);
    cr_assert(ig_tensor_strides(t)[0] == 1 && ig_tensor_strides(t)[1] == 4 && ig_tensor_strides(t)[2] == 12);
    ASSERT_SHAPE(ig_transpose(a, 1, 1), 2, 3, 4);
    ig_tensor *sc = ig_transpose(ig_scalar(2, IG_F32), 0, -1);
    cr_assert_eq(ig_tensor_ndim(sc), 0);
    ig_clear_error();
    cr_assert_null(ig_permute(a, (int[]){0, 1, 1}));
    ASSERT_ERR(IG_ERR_ARG, "ig_permute");
    cr_assert(strstr(ig_last_error(), "repeated"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_permute(a, (int[]){0, 1, 3}));
    ASSERT_ERR(IG_ERR_ARG, "ig_permute");
    ig_clear_error();
    cr_assert_null(ig_permute(a, NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_permute");
    ig_clear_error();
    cr_assert_null(ig_transpose(a, 0, 3));
    ASSERT_ERR(IG_ERR_ARG, "ig_transpose");
    ig_scope_end(s);
}

/* ---- slice / narrow / select --------------------------------------------------------- */

Test(core, slice_bounds_steps_and_clamping) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(10), false);
    struct {
        int64_t start, end, step;
        int n;
        double first;
        double stride;
    } cases[] = {
        {2, 8, 3, 2, 2, 3},     /* 2, 5 */
        {2, 9, 3, 3, 2, 3},     /* 2, 5, 8 */
        {-3, -1, 1, 2, 7, 1},   /* 7, 8 */
        {-100, 100, 1, 10, 0, 1}, /* clamped to the whole dim */
        {0, 10, 4, 3, 0, 4},    /* 0, 4, 8 */
        {-4, 10, 2, 2, 6, 2},   /* 6, 8 */
        {5, 2, 1, 0, 0, 0},     /* empty */
        {12, 20, 1, 0, 0, 0},   /* start past the end: empty */
        {3, 3, 1, 0, 0, 0},
        {0, -11, 1, 0, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_tensor *v = ig_slice(a, 0, cases[c].start, cases[c].end, cases[c].step);
        cr_assert_not_null(v, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_shape(v)[0], cases[c].n, "case %zu: %lld elements", c, (long long)ig_tensor_shape(v)[0]);
        for (int i = 0; i < cases[c].n; i++)
            cr_assert_eq(at(v, i), cases[c].first + i * cases[c].stride, "case %zu element %d", c, i);
    }
    /* Extreme arguments: no overflow, one element for a step past the end. */
    ig_tensor *huge = ig_slice(iota(IG_DIMS(10, 3), false), 0, 2, INT64_MAX, INT64_MAX);
    ASSERT_SHAPE(huge, 1, 3);
    cr_assert_eq(at(huge, 0), 6.0);
    ASSERT_SHAPE(ig_slice(a, 0, INT64_MIN, INT64_MAX, 1), 10);
    ASSERT_SHAPE(ig_slice(a, 0, INT64_MAX, INT64_MIN, 1), 0);
    /* Along an inner dim of a 2-D tensor, and a slice of a slice. */
    ig_tensor *m = iota(IG_DIMS(3, 5), false);
    ig_tensor *cols = ig_slice(m, -1, 1, 5, 2); /* columns 1, 3 */
    ASSERT_SHAPE(cols, 3, 2);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) cr_assert_eq(at(cols, i * 2 + j), (double)(i * 5 + 1 + 2 * j));
    ig_tensor *ss = ig_slice(ig_slice(m, 1, 1, 5, 1), 1, 1, 4, 2); /* columns 2, 4 */
    ASSERT_SHAPE(ss, 3, 2);
    cr_assert_eq(at(ss, 3), 9.0);
    ig_clear_error();
    cr_assert_null(ig_slice(a, 0, 0, 5, 0));
    ASSERT_ERR(IG_ERR_ARG, "ig_slice");
    ig_clear_error();
    cr_assert_null(ig_slice(a, 0, 0, 5, -1));
    ASSERT_ERR(IG_ERR_ARG, "ig_slice");
    ig_clear_error();
    cr_assert_null(ig_slice(a, 1, 0, 5, 1));
    ASSERT_ERR(IG_ERR_ARG, "ig_slice");
    ig_clear_error();
    cr_assert_null(ig_slice(ig_scalar(1, IG_F32), 0, 0, 1, 1));
    ASSERT_ERR(IG_ERR_ARG, "ig_slice");
    ig_scope_end(s);
}

Test(core, narrow) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(10), false);
    ig_tensor *n = ig_narrow(a, 0, 2, 3);
    ASSERT_SHAPE(n, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(at(n, i), 2.0 + i);
    ig_tensor *neg = ig_narrow(a, -1, -3, 2);
    ASSERT_SHAPE(neg, 2);
    cr_assert_eq(at(neg, 0), 7.0);
    ASSERT_SHAPE(ig_narrow(a, 0, 10, 0), 0);
    ASSERT_SHAPE(ig_narrow(a, 0, 0, 10), 10);
    int64_t bad[][2] = {{8, 3}, {11, 0}, {-11, 1}, {0, -1}, {0, 11}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ig_clear_error();
        cr_assert_null(ig_narrow(a, 0, bad[i][0], bad[i][1]), "case %zu", i);
        ASSERT_ERR(IG_ERR_ARG, "ig_narrow");
    }
    ig_clear_error();
    cr_assert_null(ig_narrow(a, 1, 0, 1));
    ASSERT_ERR(IG_ERR_ARG, "ig_narrow");
    ig_clear_error();
    cr_assert_null(ig_narrow(ig_scalar(1, IG_F32), 0, 0, 1));
    ASSERT_ERR(IG_ERR_ARG, "ig_narrow");
    ig_scope_end(s);
}

Test(core, select) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *m = iota(IG_DIMS(3, 4), false);
    ig_tensor *last = ig_select(m, 0, -1);
    ASSERT_SHAPE(last, 4);
    for (int j = 0; j < 4; j++) cr_assert_eq(at(last, j), 8.0 + j);
    ig_tensor *col = ig_select(m, 1, 2);
    ASSERT_SHAPE(col, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(at(col, i), 4.0 * i + 2);
    ig_tensor *elem = ig_select(col, 0, 1);
    cr_assert_eq(ig_tensor_ndim(elem), 0);
    cr_assert_eq(ig_item(elem), 6.0);
    ig_clear_error();
    cr_assert_null(ig_select(m, 0, 3));
    ASSERT_ERR(IG_ERR_ARG, "ig_select");
    ig_clear_error();
    cr_assert_null(ig_select(m, 1, -5));
    ASSERT_ERR(IG_ERR_ARG, "ig_select");
    ig_clear_error();
    cr_assert_null(ig_select(m, 2, 0));
    ASSERT_ERR(IG_ERR_ARG, "ig_select");
    ig_clear_error();
    cr_assert_null(ig_select(elem, 0, 0));
    ASSERT_ERR(IG_ERR_ARG, "ig_select");
    ig_clear_error();
    cr_assert_null(ig_select(ig_zeros(IG_DIMS(0, 2), IG_F32), 0, 0));
    ASSERT_ERR(IG_ERR_ARG, "ig_select");
    ig_scope_end(s);
}

/* ---- expand / squeeze / unsqueeze ---------------------------------------------------- */

Test(core, expand) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *c = iota(IG_DIMS(3, 1), false);
    ig_tensor *e = ig_expand(c, IG_DIMS(2, 3, 4));
    ASSERT_SHAPE(e, 2, 3, 4);
    cr_assert(ig_tensor_strides(e)[0] == 0 && ig_tensor_strides(e)[1] == 1 && ig_tensor_strides(e)[2] == 0);
    for (int k = 0; k < 24; k++) cr_assert_eq(at(e, k), (double)((k / 4) % 3));
    ig_tensor *keep = ig_expand(c, IG_DIMS(-1, 5));
    ASSERT_SHAPE(keep, 3, 5);
    ASSERT_SHAPE(ig_expand(c, IG_DIMS(3, 0)), 3, 0);
    ASSERT_SHAPE(ig_expand(ig_scalar(2, IG_F32), IG_DIMS(2, 2)), 2, 2);
    /* Expanding an expanded view. */
    ig_tensor *ee = ig_expand(ig_unsqueeze(keep, 0), IG_DIMS(2, 3, 5));
    ASSERT_SHAPE(ee, 2, 3, 5);
    cr_assert_eq(at(ee, 29), 2.0);
    ig_clear_error();
    cr_assert_null(ig_expand(c, IG_DIMS(4, 5)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_expand");
    ig_clear_error();
    cr_assert_null(ig_expand(c, IG_DIMS(-1, 3, 4)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_expand");
    ig_clear_error();
    cr_assert_null(ig_expand(c, IG_DIMS(3)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_expand");
    ig_clear_error();
    cr_assert_null(ig_expand(c, IG_DIMS(3, -2)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_expand");
    ig_scope_end(s);
}

Test(core, squeeze_unsqueeze) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(1, 3, 1, 2), false);
    ASSERT_SHAPE(ig_squeeze(a, 0), 3, 1, 2);
    ASSERT_SHAPE(ig_squeeze(a, -2), 1, 3, 2);
    ig_tensor *all = ig_squeeze_all(a);
    ASSERT_SHAPE(all, 3, 2);
    cr_assert_eq(ig_tensor_data(all), ig_tensor_data(a));
    cr_assert_eq(ig_tensor_ndim(ig_squeeze_all(ig_ones(IG_DIMS(1, 1), IG_F32))), 0);
    ig_tensor *b = ig_zeros(IG_DIMS(3, 2), IG_F32);
    ASSERT_SHAPE(ig_unsqueeze(b, 0), 1, 3, 2);
    ASSERT_SHAPE(ig_unsqueeze(b, 1), 3, 1, 2);
    ASSERT_SHAPE(ig_unsqueeze(b, 2), 3, 2, 1);
    ASSERT_SHAPE(ig_unsqueeze(b, -1), 3, 2, 1);
    ASSERT_SHAPE(ig_unsqueeze(b, -3), 1, 3, 2);
    ASSERT_SHAPE(ig_unsqueeze(ig_scalar(1, IG_F32), 0), 1);
    /* unsqueeze of a strided view keeps it a view with the right values. */
    ig_tensor *u = ig_unsqueeze(ig_transpose(iota(IG_DIMS(2, 3), false), 0, 1), 1); /* [3,1,2] */
    ASSERT_SHAPE(u, 3, 1, 2);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) cr_assert_eq(at(u, i * 2 + j), (double)(j * 3 + i));
    ig_clear_error();
    cr_assert_null(ig_squeeze(a, 1));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_squeeze");
    ig_clear_error();
    cr_assert_null(ig_squeeze(a, 4));
    ASSERT_ERR(IG_ERR_ARG, "ig_squeeze");
    ig_clear_error();
    cr_assert_null(ig_unsqueeze(b, 3));
    ASSERT_ERR(IG_ERR_ARG, "ig_unsqueeze");
    ig_clear_error();
    cr_assert_null(ig_unsqueeze(b, -4));
    ASSERT_ERR(IG_ERR_ARG, "ig_unsqueeze");
    ig_clear_error();
    cr_assert_null(ig_unsqueeze(ig_zeros(IG_DIMS(1, 1, 1, 1, 1, 1, 1, 1), IG_F32), 0));
    ASSERT_ERR(IG_ERR_ARG, "ig_unsqueeze");
    ig_scope_end(s);
}

/* ---- contiguous / clone / sharing ---------------------------------------------------- */

Test(core, contiguous_and_clone) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = iota(IG_DIMS(2, 3), false);
    ig_tensor *c = ig_contiguous(a);
    cr_assert_eq(ig_tensor_data(c), ig_tensor_data(a), "contiguous input must not be copied");
    ig_tensor *t = ig_transpose(a, 0, 1);
    ig_tensor *ct = ig_contiguous(t);
    cr_assert(ig_tensor_is_contiguous(ct));
    cr_assert_neq(ig_tensor_data(ct), ig_tensor_data(a));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) cr_assert_eq(at(ct, i * 2 + j), (double)(j * 3 + i));
    ig_tensor *cl = ig_clone(a);
    cr_assert_neq(ig_tensor_data(cl), ig_tensor_data(a));
    cr_assert_eq(ig_fill_(cl, -1), IG_OK);
    cr_assert_eq(at(a, 5), 5.0, "writing the clone must not touch the original");
    ig_tensor *ce = ig_clone(ig_expand(ig_select(a, 0, 1), IG_DIMS(2, 3)));
    ASSERT_SHAPE(ce, 2, 3);
    cr_assert(ig_tensor_is_contiguous(ce));
    for (int k = 0; k < 6; k++) cr_assert_eq(at(ce, k), 3.0 + k % 3);
    ig_clear_error();
    cr_assert_null(ig_contiguous(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_contiguous");
    ig_clear_error();
    cr_assert_null(ig_clone(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_clone");
    ig_scope_end(s);
}

Test(core, views_share_storage) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(3, 4), IG_F32);
    cr_assert_eq(ig_fill_(ig_slice(a, 1, 1, 4, 2), 5.0), IG_OK);  /* columns 1, 3 */
    cr_assert_eq(ig_fill_(ig_select(a, 0, 2), 9.0), IG_OK);       /* row 2 */
    float *r = ig_tensor_data(ig_view(a, IG_DIMS(12)));
    r[0] = -1.0f;
    ig_tensor *tr = ig_transpose(a, 0, 1);
    cr_assert_eq(ig_copy_(ig_select(tr, 0, 0), ig_scalar(4.0, IG_F32)), IG_OK); /* column 0 */
    const float *p = ig_tensor_data(a);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float want = j == 0 ? 4.0f : i == 2 ? 9.0f : (j % 2 == 1) ? 5.0f : 0.0f;
            cr_assert_eq(p[i * 4 + j], want, "[%d][%d] = %g", i, j, p[i * 4 + j]);
        }
    /* Writes through views made in an inner scope stay in the base after that scope ends. */
    ig_scope *in = ig_scope_begin();
    ig_fill_(ig_narrow(ig_flatten(a, 0, -1), 0, 4, 1), 8.0);
    ig_scope_end(in);
    cr_assert_eq(p[4], 8.0f);
    ig_scope_end(s);
}

/* ---- backward through views ---------------------------------------------------------- */

Test(core, view_backward_by_hand) {
    ig_scope *s = ig_scope_begin();
    const int64_t X[3] = {2, 3, 4}; /* x[i][j][k] = flat 12i + 4j + k */
    ig_tensor *x, *g;

    /* reshape/view/flatten/squeeze/unsqueeze keep the row-major order: grad = k + 1. */
    for (int variant = 0; variant < 5; variant++) {
        x = iota(3, X, true);
        ig_tensor *v = variant == 0   ? ig_reshape(x, IG_DIMS(4, -1))
                       : variant == 1 ? ig_view(x, IG_DIMS(24))
                       : variant == 2 ? ig_flatten(x, 0, 1)
                       : variant == 3 ? ig_squeeze(ig_unsqueeze(x, 1), 1)
                                      : ig_squeeze_all(ig_unsqueeze(x, -1));
        g = weighted_backward(x, v);
        for (int i = 0; i < 24; i++) cr_assert_eq(at(g, i), i + 1.0, "variant %d, i=%d", variant, i);
    }

    /* permute {2,0,1}: v[k][i][j] = x[i][j][k], at flat k*6 + i*3 + j. */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_permute(x, (int[]){2, 0, 1}));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) cr_assert_eq(at(g, 12 * i + 4 * j + k), k * 6 + i * 3 + j + 1.0);

    /* transpose(0,2) then a copying reshape: v[k][j][i] = x[i][j][k] at k*6 + j*2 + i. */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_reshape(ig_transpose(x, 0, 2), IG_DIMS(24)));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) cr_assert_eq(at(g, 12 * i + 4 * j + k), k * 6 + j * 2 + i + 1.0);

    /* slice dim 2 [1:4:2] (k = 1, 3): v[i][j][m] at i*6 + j*2 + m; others get 0. */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_slice(x, 2, 1, 4, 2));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                double want = k % 2 == 1 ? i * 6 + j * 2 + (k - 1) / 2 + 1.0 : 0.0;
                cr_assert_eq(at(g, 12 * i + 4 * j + k), want);
            }

    /* narrow dim 1 from -2, length 2 (j = 1, 2) with a negative-start slice inside. */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_slice(ig_narrow(x, 1, -2, 2), 0, -1, 2, 1)); /* i = 1 only */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                double want = (i == 1 && j >= 1) ? (j - 1) * 4 + k + 1.0 : 0.0;
                cr_assert_eq(at(g, 12 * i + 4 * j + k), want);
            }

    /* select dim 1 index -1 (j = 2): v[i][k] at i*4 + k. */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_select(x, 1, -1));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) cr_assert_eq(at(g, 12 * i + 4 * j + k), j == 2 ? i * 4 + k + 1.0 : 0.0);

    /* expand x[:, 0:1, :] (shape [2,1,4]) to [5,2,3,4]: each x[i][0][k] is read by
     * v[b][i][j][k] for every b, j; sum of (b*24 + i*12 + j*4 + k + 1). */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_expand(ig_narrow(x, 1, 0, 1), IG_DIMS(5, 2, 3, 4)));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                double want = 0;
                if (j == 0)
                    for (int b = 0; b < 5; b++)
                        for (int jj = 0; jj < 3; jj++) want += b * 24 + i * 12 + jj * 4 + k + 1.0;
                cr_assert_eq(at(g, 12 * i + 4 * j + k), want, "[%d][%d][%d]", i, j, k);
            }

    /* contiguous and clone of a transposed view, and a dtype round trip through f32. */
    x = iota(3, X, true);
    g = weighted_backward(x, ig_contiguous(ig_transpose(x, 1, 2))); /* v[i][k][j] */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) cr_assert_eq(at(g, 12 * i + 4 * j + k), i * 12 + k * 3 + j + 1.0);
    x = iota(3, X, true);
    g = weighted_backward(x, ig_clone(x));
    for (int i = 0; i < 24; i++) cr_assert_eq(at(g, i), i + 1.0);
    x = iota(3, X, true);
    ig_tensor *x32 = ig_to_dtype(x, IG_F32);
    cr_assert(ig_requires_grad(x32) && !ig_is_leaf(x32));
    g = weighted_backward(x, ig_to_dtype(x32, IG_F64));
    cr_assert_eq(ig_tensor_dtype(g), IG_F64);
    for (int i = 0; i < 24; i++) cr_assert_eq(at(g, i), i + 1.0);
    /* Converting to an integer dtype cuts the graph. */
    cr_assert(!ig_requires_grad(ig_to_dtype(x, IG_I32)));
    ig_scope_end(s);
}

enum {
    V_VIEW, V_RESHAPE_COPY, V_FLATTEN, V_PERMUTE, V_TRANSPOSE, V_SLICE, V_NARROW, V_SELECT,
    V_EXPAND, V_EXPAND_LEAD, V_SQUEEZE, V_SQUEEZE_ALL, V_CONTIGUOUS, V_CLONE, V_CHAIN, V_COUNT
};

static ig_tensor *view_fn(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    ig_tensor *x = in[0]; /* [2,3,4] */
    switch (*(const int *)ctx) {
    case V_VIEW: return ig_view(x, IG_DIMS(4, -1));
    case V_RESHAPE_COPY: return ig_reshape(ig_transpose(x, 0, 1), IG_DIMS(-1));
    case V_FLATTEN: return ig_flatten(x, 1, 2);
    case V_PERMUTE: return ig_permute(x, (int[]){1, 2, 0});
    case V_TRANSPOSE: return ig_transpose(x, -1, 0);
    case V_SLICE: return ig_slice(x, 2, -3, 4, 2);
    case V_NARROW: return ig_narrow(x, 1, 1, 2);
    case V_SELECT: return ig_select(x, 0, -1);
    case V_EXPAND: return ig_expand(ig_unsqueeze(x, 1), IG_DIMS(2, 3, 3, 4));
    case V_EXPAND_LEAD: return ig_expand(ig_select(ig_select(x, 0, 1), 1, 2), IG_DIMS(2, 3, -1));
    case V_SQUEEZE: return ig_squeeze(ig_unsqueeze(x, 2), 2);
    case V_SQUEEZE_ALL: return ig_squeeze_all(ig_narrow(x, 0, 1, 1));
    case V_CONTIGUOUS: return ig_contiguous(ig_permute(x, (int[]){2, 1, 0}));
    case V_CLONE: return ig_clone(ig_slice(x, 1, 0, 3, 2));
    case V_CHAIN: /* a view of a view of a view, then arithmetic */
        return ig_mul(ig_select(ig_slice(ig_transpose(x, 0, 2), 0, 1, 4, 2), 0, 1),
                      ig_narrow(ig_transpose(x, 0, 2), 0, 0, 2));
    }
    return NULL;
}

Test(core, view_backward_gradcheck) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(11);
    for (int v = 0; v < V_COUNT; v++) {
        ig_tensor *x = ig_randn(IG_DIMS(2, 3, 4), IG_F64);
        cr_assert_eq(ig_set_requires_grad(x, true), IG_OK);
        ig_status st = ig_gradcheck(view_fn, &x, 1, &v, NULL);
        cr_assert_eq(st, IG_OK, "view case %d: %s", v, ig_last_error());
    }
    ig_scope_end(s);
}
