/*
 * tests/core/test_index.c — cat, stack, index_select, gather and one_hot: values against
 * plain loops written here (including non-contiguous inputs, repeated indices, empty
 * tensors), gradients through ig_gradcheck, and every error path with its message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* ---- cat --------------------------------------------------------------------------------- */

Test(core, cat_values_dim0_and_last) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_reshape(ig_arange(0, 6, 1, IG_F32), IG_DIMS(2, 3));     /* 0..5 */
    ig_tensor *b = ig_reshape(ig_arange(10, 13, 1, IG_F32), IG_DIMS(1, 3));   /* 10..12 */
    ig_tensor *c = ig_transpose(ig_reshape(ig_arange(20, 26, 1, IG_F32), IG_DIMS(3, 2)), 0, 1);
    ig_tensor *ts[3] = {a, b, c};
    ig_tensor *o = ig_cat(ts, 3, 0);
    assert_shape(o, IG_DIMS(5, 3));
    double want0[15] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 20, 22, 24, 21, 23, 25};
    for (int i = 0; i < 15; i++) cr_assert_eq(ig_tensor_get(o, i), want0[i], "i=%d", i);

    /* dim -1 with widths 3, 1, 2 (second input an expanded column). */
    ig_tensor *e = ig_expand(ig_from_data(IG_DIMS(1, 1), IG_F32, (float[]){9}), IG_DIMS(2, 1));
    ig_tensor *f = ig_slice(ig_reshape(ig_arange(0, 8, 1, IG_F32), IG_DIMS(2, 4)), 1, 0, 4, 2);
    ig_tensor *ts2[3] = {a, e, f};
    ig_tensor *o2 = ig_cat(ts2, 3, -1);
    assert_shape(o2, IG_DIMS(2, 6));
    double want1[12] = {0, 1, 2, 9, 0, 2, 3, 4, 5, 9, 4, 6};
    for (int i = 0; i < 12; i++) cr_assert_eq(ig_tensor_get(o2, i), want1[i], "i=%d", i);
    ig_scope_end(s);
}

Test(core, cat_integers_empty_and_single) {
    ig_scope *s = ig_scope_begin();
    /* int64 values above 2^53 survive exactly. */
    int64_t big = ((int64_t)1 << 60) + 1;
    ig_tensor *a = ig_from_data(IG_DIMS(2), IG_I64, (int64_t[]){big, -3});
    ig_tensor *b = ig_from_data(IG_DIMS(1), IG_I64, (int64_t[]){7});
    ig_tensor *o = ig_cat((ig_tensor *[]){a, b}, 2, 0);
    assert_shape(o, IG_DIMS(3));
    int64_t buf[3];
    cr_assert(ig_tensor_to_buffer(o, IG_I64, buf, 3) == IG_OK);
    cr_assert_eq(buf[0], big);
    cr_assert_eq(buf[1], -3);
    cr_assert_eq(buf[2], 7);

    /* A 1-D empty tensor is skipped next to 2-D ones (torch's legacy rule). */
    ig_tensor *m = ig_ones(IG_DIMS(2, 3), IG_F32);
    ig_tensor *z = ig_zeros(IG_DIMS(0), IG_F32);
    ig_tensor *o2 = ig_cat((ig_tensor *[]){z, m, z, m}, 4, 1);
    assert_shape(o2, IG_DIMS(2, 6));
    /* Zero-size inputs along the cat dim, and a single input. */
    ig_tensor *o3 = ig_cat((ig_tensor *[]){ig_zeros(IG_DIMS(0, 3), IG_F32), m}, 2, 0);
    assert_shape(o3, IG_DIMS(2, 3));
    ig_tensor *o4 = ig_cat((ig_tensor *[]){m}, 1, 0);
    assert_shape(o4, IG_DIMS(2, 3));
    for (int i = 0; i < 6; i++) cr_assert_eq(ig_tensor_get(o4, i), 1.0);
    ig_tensor *o5 = ig_cat((ig_tensor *[]){z, z}, 2, 0);
    assert_shape(o5, IG_DIMS(0));
    ig_scope_end(s);
}

static ig_tensor *f_cat(ig_tensor *const *x, int n, void *ctx) {
    return ig_cat(x, n, *(int *)ctx);
}

Test(core, cat_gradcheck) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(21);
    ig_tensor *a = ig_randn(IG_DIMS(2, 3), IG_F64), *b = ig_randn(IG_DIMS(1, 3), IG_F64),
              *c = ig_randn(IG_DIMS(3, 3), IG_F64);
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(c, true); /* b is a constant */
    int dim = 0;
    cr_assert(ig_gradcheck(f_cat, (ig_tensor *[]){a, b, c}, 3, &dim, NULL) == IG_OK, "%s", ig_last_error());
    ig_tensor *d = ig_randn(IG_DIMS(2, 1), IG_F64), *e = ig_randn(IG_DIMS(2, 4), IG_F64);
    ig_set_requires_grad(d, true);
    ig_set_requires_grad(e, true);
    ig_set_requires_grad(b, true);
    dim = -1;
    cr_assert(ig_gradcheck(f_cat, (ig_tensor *[]){a, d, e}, 3, &dim, NULL) == IG_OK, "%s", ig_last_error());
    /* With a skipped 1-D empty input in the middle. */
    ig_tensor *z = ig_zeros(IG_DIMS(0), IG_F64);
    ig_set_requires_grad(z, true);
    dim = 0;
    cr_assert(ig_gradcheck(f_cat, (ig_tensor *[]){a, z, b}, 3, &dim, NULL) == IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, cat_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(2, 3), IG_F32), *b = ig_zeros(IG_DIMS(2, 4), IG_F32);
    cr_assert_null(ig_cat((ig_tensor *[]){a, b}, 2, 0));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    ERR_HAS("ig_cat");
    ERR_HAS("[2,4]");
    cr_assert_null(ig_cat((ig_tensor *[]){a, ig_zeros(IG_DIMS(2, 3), IG_F64)}, 2, 0));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ERR_HAS("ig_cat");
    cr_assert_null(ig_cat((ig_tensor *[]){a, ig_zeros(IG_DIMS(6), IG_F32)}, 2, 0));
    ERR_HAS("ig_cat");
    cr_assert_null(ig_cat((ig_tensor *[]){a, a}, 2, 2));
    ERR_HAS("ig_cat");
    cr_assert_null(ig_cat((ig_tensor *[]){a}, 0, 0));
    ERR_HAS("ig_cat");
    cr_assert_null(ig_cat((ig_tensor *[]){ig_scalar(1, IG_F32)}, 1, 0));
    ERR_HAS("ig_cat");
    ig_clear_error();
    cr_assert_null(ig_cat((ig_tensor *[]){a, NULL}, 2, 0));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    ERR_HAS("ig_cat");
    ig_clear_error();
    cr_assert_null(ig_cat(NULL, 2, 0));
    ERR_HAS("ig_cat");
    ig_scope_end(s);
}

/* ---- stack ------------------------------------------------------------------------------- */

Test(core, stack_values) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_from_data(IG_DIMS(2, 2), IG_F64, (double[]){1, 2, 3, 4});
    ig_tensor *b = ig_transpose(ig_from_data(IG_DIMS(2, 2), IG_F64, (double[]){5, 6, 7, 8}), 0, 1);
    ig_tensor *o = ig_stack((ig_tensor *[]){a, b}, 2, 0);
    assert_shape(o, IG_DIMS(2, 2, 2));
    double w0[8] = {1, 2, 3, 4, 5, 7, 6, 8};
    for (int i = 0; i < 8; i++) cr_assert_eq(ig_tensor_get(o, i), w0[i]);
    ig_tensor *o2 = ig_stack((ig_tensor *[]){a, b}, 2, -1);
    assert_shape(o2, IG_DIMS(2, 2, 2));
    /* out[i][j][k] = (k == 0 ? a : b)[i][j] */
    double w2[8] = {1, 5, 2, 7, 3, 6, 4, 8};
    for (int i = 0; i < 8; i++) cr_assert_eq(ig_tensor_get(o2, i), w2[i]);
    /* Stacking scalars gives a vector. */
    ig_tensor *v = ig_stack((ig_tensor *[]){ig_scalar(3, IG_F32), ig_scalar(4, IG_F32)}, 2, 0);
    assert_shape(v, IG_DIMS(2));
    cr_assert_eq(ig_tensor_get(v, 1), 4.0);
    ig_scope_end(s);
}

static ig_tensor *f_stack(ig_tensor *const *x, int n, void *ctx) {
    return ig_stack(x, n, *(int *)ctx);
}

Test(core, stack_gradcheck_and_errors) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(22);
    ig_tensor *a = ig_randn(IG_DIMS(2, 3), IG_F64), *b = ig_randn(IG_DIMS(2, 3), IG_F64),
              *c = ig_randn(IG_DIMS(2, 3), IG_F64);
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    ig_set_requires_grad(c, true);
    for (int dim = -3; dim < 3; dim++)
        cr_assert(ig_gradcheck(f_stack, (ig_tensor *[]){a, b, c}, 3, &dim, NULL) == IG_OK, "dim %d: %s",
                  dim, ig_last_error());
    cr_assert_null(ig_stack((ig_tensor *[]){a, ig_zeros(IG_DIMS(3, 2), IG_F64)}, 2, 0));
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    ERR_HAS("ig_stack");
    ERR_HAS("[3,2]");
    cr_assert_null(ig_stack((ig_tensor *[]){a, ig_zeros(IG_DIMS(2, 3), IG_F32)}, 2, 0));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ERR_HAS("ig_stack");
    cr_assert_null(ig_stack((ig_tensor *[]){a, b}, 2, 3));
    ERR_HAS("ig_stack");
    ig_clear_error();
    cr_assert_null(ig_stack((ig_tensor *[]){NULL, b}, 2, 0));
    ERR_HAS("ig_stack");
    ig_scope_end(s);
}

/* ---- index_select ------------------------------------------------------------------------ */

Test(core, index_select_values) {
    ig_scope *s = ig_scope_begin();
    /* t[i][j] = 10 i + j, [4,3] */
    double td[12];
    for (int i = 0; i < 12; i++) td[i] = 10 * (i / 3) + i % 3;
    ig_tensor *t = ig_to_dtype(ig_from_data(IG_DIMS(4, 3), IG_F64, td), IG_F32);
    ig_tensor *ix = ig_from_data(IG_DIMS(5), IG_I64, (int64_t[]){3, 0, 3, 1, 3});
    ig_tensor *o = ig_index_select(t, 0, ix);
    assert_shape(o, IG_DIMS(5, 3));
    int64_t rows[5] = {3, 0, 3, 1, 3};
    for (int k = 0; k < 5; k++)
        for (int j = 0; j < 3; j++) cr_assert_eq(ig_tensor_get(o, k * 3 + j), 10.0 * rows[k] + j);
    /* dim 1 with an int32 index on a transposed (non-contiguous) tensor: tt = t^T [3,4]. */
    ig_tensor *tt = ig_transpose(t, 0, 1);
    ig_tensor *ix32 = ig_from_data(IG_DIMS(3), IG_I32, (int32_t[]){2, 2, 0});
    ig_tensor *o2 = ig_index_select(tt, 1, ix32);
    assert_shape(o2, IG_DIMS(3, 3));
    int cols[3] = {2, 2, 0};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) cr_assert_eq(ig_tensor_get(o2, i * 3 + k), 10.0 * cols[k] + i);
    /* A strided index (every other element) and an empty index. */
    ig_tensor *ixs = ig_slice(ix, 0, 0, 5, 2); /* 3, 3, 3 */
    ig_tensor *o3 = ig_index_select(t, 0, ixs);
    for (int k = 0; k < 3; k++) cr_assert_eq(ig_tensor_get(o3, k * 3 + 1), 31.0);
    ig_tensor *o4 = ig_index_select(t, 1, ig_zeros(IG_DIMS(0), IG_I64));
    assert_shape(o4, IG_DIMS(4, 0));
    /* Integer data. */
    ig_tensor *ti = ig_from_data(IG_DIMS(3), IG_I64, (int64_t[]){5, 6, 7});
    ig_tensor *o5 = ig_index_select(ti, 0, ig_from_data(IG_DIMS(2), IG_I64, (int64_t[]){2, 0}));
    cr_assert_eq(ig_tensor_get(o5, 0), 7.0);
    cr_assert_eq(ig_tensor_get(o5, 1), 5.0);
    ig_scope_end(s);
}

typedef struct {
    int dim;
    ig_tensor *index;
} index_ctx;

static ig_tensor *f_index_select(ig_tensor *const *x, int n, void *vctx) {
    (void)n;
    index_ctx *c = vctx;
    return ig_index_select(x[0], c->dim, c->index);
}

static ig_tensor *f_gather(ig_tensor *const *x, int n, void *vctx) {
    (void)n;
    index_ctx *c = vctx;
    return ig_gather(x[0], c->dim, c->index);
}

Test(core, index_select_gradcheck_repeated_indices) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(23);
    ig_tensor *t = ig_randn(IG_DIMS(4, 3), IG_F64);
    ig_set_requires_grad(t, true);
    index_ctx c0 = {0, ig_from_data(IG_DIMS(5), IG_I64, (int64_t[]){3, 0, 3, 1, 3})};
    cr_assert(ig_gradcheck(f_index_select, &t, 1, &c0, NULL) == IG_OK, "%s", ig_last_error());
    index_ctx c1 = {-1, ig_from_data(IG_DIMS(4), IG_I32, (int32_t[]){1, 1, 1, 2})};
    cr_assert(ig_gradcheck(f_index_select, &t, 1, &c1, NULL) == IG_OK, "%s", ig_last_error());
    /* Backward values: row 3 picked three times gets gradient 3. */
    ig_tensor *y = ig_sum(ig_index_select(t, 0, c0.index), 0, NULL, false);
    cr_assert(ig_backward(y, NULL) == IG_OK, "%s", ig_last_error());
    double rowcount[4] = {1, 1, 0, 3};
    for (int i = 0; i < 12; i++) cr_assert_eq(ig_tensor_get(ig_grad(t), i), rowcount[i / 3]);
    ig_scope_end(s);
}

Test(core, index_select_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = ig_zeros(IG_DIMS(4, 3), IG_F32);
    cr_assert_null(ig_index_select(t, 0, ig_from_data(IG_DIMS(3), IG_I64, (int64_t[]){0, 7, 1})));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    ERR_HAS("ig_index_select");
    ERR_HAS("index 7");
    cr_assert_null(ig_index_select(t, 1, ig_from_data(IG_DIMS(1), IG_I32, (int32_t[]){-1})));
    ERR_HAS("ig_index_select");
    ERR_HAS("index -1");
    cr_assert_null(ig_index_select(t, 0, ig_zeros(IG_DIMS(2), IG_F32)));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ERR_HAS("ig_index_select");
    cr_assert_null(ig_index_select(t, 0, ig_zeros(IG_DIMS(2, 2), IG_I64)));
    ERR_HAS("ig_index_select");
    cr_assert_null(ig_index_select(t, 2, ig_zeros(IG_DIMS(2), IG_I64)));
    ERR_HAS("ig_index_select");
    ig_clear_error();
    cr_assert_null(ig_index_select(NULL, 0, ig_zeros(IG_DIMS(2), IG_I64)));
    ERR_HAS("ig_index_select");
    ig_clear_error();
    cr_assert_null(ig_index_select(t, 0, NULL));
    ERR_HAS("ig_index_select");
    ig_scope_end(s);
}

/* ---- gather ------------------------------------------------------------------------------ */

Test(core, gather_values) {
    ig_scope *s = ig_scope_begin();
    /* t [3,4], t[i][j] = 10 i + j */
    double td[12];
    for (int i = 0; i < 12; i++) td[i] = 10 * (i / 4) + i % 4;
    ig_tensor *t = ig_from_data(IG_DIMS(3, 4), IG_F64, td);
    /* dim 1: out[i][j] = t[i][ix[i][j]], index [2,3] smaller than t in dim 0. */
    int64_t ixd[6] = {3, 0, 3, 1, 1, 2};
    ig_tensor *ix = ig_from_data(IG_DIMS(2, 3), IG_I64, ixd);
    ig_tensor *o = ig_gather(t, 1, ix);
    assert_shape(o, IG_DIMS(2, 3));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) cr_assert_eq(ig_tensor_get(o, i * 3 + j), 10.0 * i + ixd[i * 3 + j]);
    /* dim 0 with int32 on a transposed input: tt = t^T [4,3], out[i][j] = tt[ix[i][j]][j]. */
    ig_tensor *tt = ig_transpose(t, 0, 1);
    int32_t ix2d[6] = {2, 0, 1, 1, 1, 0};
    ig_tensor *ix2 = ig_from_data(IG_DIMS(2, 3), IG_I32, ix2d);
    ig_tensor *o2 = ig_gather(tt, 0, ix2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) cr_assert_eq(ig_tensor_get(o2, i * 3 + j), 10.0 * j + ix2d[i * 3 + j]);
    /* A transposed index, an empty index. */
    ig_tensor *o3 = ig_gather(t, 1, ig_transpose(ig_from_data(IG_DIMS(2, 2), IG_I64, (int64_t[]){0, 1, 2, 3}), 0, 1));
    double w3[4] = {0, 2, 11, 13};
    for (int i = 0; i < 4; i++) cr_assert_eq(ig_tensor_get(o3, i), w3[i]);
    ig_tensor *o4 = ig_gather(t, 0, ig_zeros(IG_DIMS(0, 4), IG_I64));
    assert_shape(o4, IG_DIMS(0, 4));
    ig_scope_end(s);
}

Test(core, gather_gradcheck_and_errors) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(24);
    ig_tensor *t = ig_randn(IG_DIMS(3, 4), IG_F64);
    ig_set_requires_grad(t, true);
    index_ctx c1 = {1, ig_from_data(IG_DIMS(2, 3), IG_I64, (int64_t[]){3, 3, 3, 1, 0, 1})};
    cr_assert(ig_gradcheck(f_gather, &t, 1, &c1, NULL) == IG_OK, "%s", ig_last_error());
    index_ctx c0 = {0, ig_from_data(IG_DIMS(4, 2), IG_I32, (int32_t[]){2, 2, 0, 2, 2, 1, 0, 0})};
    cr_assert(ig_gradcheck(f_gather, &t, 1, &c0, NULL) == IG_OK, "%s", ig_last_error());
    /* Backward values: t[0][3] is gathered 3 times. */
    cr_assert(ig_backward(ig_sum(ig_gather(t, 1, c1.index), 0, NULL, false), NULL) == IG_OK);
    cr_assert_eq(ig_tensor_get(ig_grad(t), 3), 3.0);
    cr_assert_eq(ig_tensor_get(ig_grad(t), 5), 2.0);
    cr_assert_eq(ig_tensor_get(ig_grad(t), 4), 1.0);
    cr_assert_eq(ig_tensor_get(ig_grad(t), 0), 0.0);

    cr_assert_null(ig_gather(t, 1, ig_from_data(IG_DIMS(1, 2), IG_I64, (int64_t[]){0, 4})));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    ERR_HAS("ig_gather");
    ERR_HAS("index 4");
    cr_assert_null(ig_gather(t, 1, ig_zeros(IG_DIMS(4, 1), IG_I64))); /* 4 > 3 rows */
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    ERR_HAS("ig_gather");
    cr_assert_null(ig_gather(t, 1, ig_zeros(IG_DIMS(3), IG_I64)));
    ERR_HAS("ig_gather");
    cr_assert_null(ig_gather(t, 1, ig_zeros(IG_DIMS(1, 1), IG_U8)));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ERR_HAS("ig_gather");
    ig_clear_error();
    cr_assert_null(ig_gather(NULL, 1, c1.index));
    ERR_HAS("ig_gather");
    ig_scope_end(s);
}

/* ---- one_hot ----------------------------------------------------------------------------- */

Test(core, one_hot_values_and_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *y = ig_from_data(IG_DIMS(2, 2), IG_I64, (int64_t[]){2, 0, 1, 2});
    ig_tensor *o = ig_one_hot(y, 4);
    assert_shape(o, IG_DIMS(2, 2, 4));
    cr_assert_eq(ig_tensor_dtype(o), IG_I64);
    int64_t cls[4] = {2, 0, 1, 2};
    for (int i = 0; i < 16; i++) cr_assert_eq(ig_tensor_get(o, i), (i % 4 == cls[i / 4]) ? 1.0 : 0.0);
    /* -1 infers max + 1 = 3; a transposed u8 input. */
    ig_tensor *yt = ig_transpose(ig_from_data(IG_DIMS(2, 2), IG_U8, (uint8_t[]){2, 0, 1, 2}), 0, 1);
    ig_tensor *o2 = ig_one_hot(yt, -1);
    assert_shape(o2, IG_DIMS(2, 2, 3));
    int64_t clst[4] = {2, 1, 0, 2};
    for (int i = 0; i < 12; i++) cr_assert_eq(ig_tensor_get(o2, i), (i % 3 == clst[i / 3]) ? 1.0 : 0.0);
    ig_tensor *o3 = ig_one_hot(ig_zeros(IG_DIMS(0), IG_I32), 5);
    assert_shape(o3, IG_DIMS(0, 5));

    cr_assert_null(ig_one_hot(y, 2));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    ERR_HAS("ig_one_hot");
    ERR_HAS("class 2");
    cr_assert_null(ig_one_hot(ig_from_data(IG_DIMS(1), IG_I32, (int32_t[]){-3}), -1));
    ERR_HAS("ig_one_hot");
    cr_assert_null(ig_one_hot(ig_from_data(IG_DIMS(1), IG_I32, (int32_t[]){-3}), 4));
    ERR_HAS("class -3");
    cr_assert_null(ig_one_hot(ig_zeros(IG_DIMS(2), IG_F32), 3));
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    ERR_HAS("ig_one_hot");
    cr_assert_null(ig_one_hot(ig_zeros(IG_DIMS(0), IG_I64), -1));
    ERR_HAS("ig_one_hot");
    cr_assert_null(ig_one_hot(y, -2));
    ERR_HAS("ig_one_hot");
    ig_clear_error();
    cr_assert_null(ig_one_hot(NULL, 3));
    ERR_HAS("ig_one_hot");
    ig_scope_end(s);
}
