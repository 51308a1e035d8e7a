/*
 * tests/core/test_embedding.c — embedding lookup: rows picked by int64/int32 indices of
 * any shape (0-dim, 2-D, strided, empty), strided tables, gradients that add up over
 * repeated indices (hand counts and ig_gradcheck in f64) and the user-error paths.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* out must be [indices..., dim] with out[i, :] = weight[indices[i], :]. */
static void check_lookup(ig_tensor *indices, ig_tensor *weight) {
    ig_tensor *out = ig_embedding(indices, weight);
    cr_assert(out, "%s", ig_last_error());
    int nd = ig_tensor_ndim(indices);
    int64_t dim = ig_tensor_size(weight, 1), n = ig_tensor_numel(indices);
    cr_assert_eq(ig_tensor_ndim(out), nd + 1);
    for (int k = 0; k < nd; k++) cr_assert_eq(ig_tensor_shape(out)[k], ig_tensor_shape(indices)[k]);
    cr_assert_eq(ig_tensor_shape(out)[nd], dim);
    cr_assert_eq(ig_tensor_dtype(out), ig_tensor_dtype(weight));
    for (int64_t i = 0; i < n; i++) {
        int64_t row = (int64_t)ig_tensor_get(indices, i);
        for (int64_t j = 0; j < dim; j++)
            cr_assert_eq(ig_tensor_get(out, i * dim + j), ig_tensor_get(weight, row * dim + j), "index %lld col %lld",
                         (long long)i, (long long)j);
    }
}

Test(core, embedding_values) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(301);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *w = ig_randn(IG_DIMS(5, 3), (ig_dtype)dt);
        int64_t ix[6] = {4, 0, 4, 2, 1, 4};
        int32_t ix32[6] = {3, 3, 0, 1, 2, 4};
        check_lookup(ig_from_data(IG_DIMS(2, 3), IG_I64, ix), w);
        check_lookup(ig_from_data(IG_DIMS(6), IG_I64, ix), w);
        check_lookup(ig_from_data(IG_DIMS(3, 2), IG_I32, ix32), w);
        check_lookup(ig_scalar(2, IG_I64), w);                                       /* 0-dim -> [3] */
        check_lookup(ig_transpose(ig_from_data(IG_DIMS(2, 3), IG_I64, ix), 0, 1), w); /* strided */
        check_lookup(ig_expand(ig_from_data(IG_DIMS(1, 2), IG_I32, ix32), IG_DIMS(3, 2)), w);
        check_lookup(ig_zeros(IG_DIMS(2, 0), IG_I64), w);                            /* empty */
        /* Strided tables: a transposed [3,5] and a sliced one. */
        check_lookup(ig_from_data(IG_DIMS(2, 3), IG_I64, ix), ig_transpose(ig_randn(IG_DIMS(3, 5), (ig_dtype)dt), 0, 1));
        check_lookup(ig_from_data(IG_DIMS(6), IG_I64, ix), ig_slice(ig_randn(IG_DIMS(10, 4), (ig_dtype)dt), 0, 0, 10, 2));
        check_lookup(ig_from_data(IG_DIMS(6), IG_I64, ix), ig_zeros(IG_DIMS(5, 0), (ig_dtype)dt)); /* dim 0 */
    }
    ig_scope_end(s);
    /* Without a scope the result is a heap tensor the caller frees (nothing else leaks). */
    ig_tensor *w = ig_ones(IG_DIMS(4, 2), IG_F32), *ix = ig_from_data(IG_DIMS(3), IG_I64, (int64_t[]){3, 0, 3});
    ig_tensor *out = ig_embedding(ix, w);
    cr_assert(out, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_get(out, 5), 1.0);
    ig_tensor_free(out);
    ig_tensor_free(ix);
    ig_tensor_free(w);
}

Test(core, embedding_backward_accumulates_repeats) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(302);
    for (int dt = IG_F32; dt <= IG_F64; dt++) {
        ig_tensor *w = ig_randn(IG_DIMS(5, 3), (ig_dtype)dt);
        ig_set_requires_grad(w, true);
        ig_tensor *ix = ig_from_data(IG_DIMS(2, 3), IG_I64, (int64_t[]){4, 0, 4, 2, 1, 4});
        ig_tensor *y = ig_embedding(ix, w); /* [2,3,3] */
        ig_tensor *g = ig_reshape(ig_arange(0, 18, 1, (ig_dtype)dt), IG_DIMS(2, 3, 3));
        cr_assert_eq(ig_backward(y, g), IG_OK, "%s", ig_last_error());
        /* grad[r, j] = sum over positions p with ix[p] == r of g[p, j] = 3p + j. */
        int64_t flat[6] = {4, 0, 4, 2, 1, 4};
        for (int64_t r = 0; r < 5; r++)
            for (int64_t j = 0; j < 3; j++) {
                double want = 0;
                for (int64_t p = 0; p < 6; p++)
                    if (flat[p] == r) want += (double)(3 * p + j);
                cr_assert_eq(ig_tensor_get(ig_grad(w), r * 3 + j), want, "row %lld col %lld", (long long)r, (long long)j);
            }
    }
    ig_scope_end(s);
}

static ig_tensor *f_embedding(ig_tensor *const *in, int n, void *ctx) {
    (void)n;
    return ig_embedding((ig_tensor *)ctx, in[0]);
}

Test(core, embedding_gradcheck) {
    ig_scope *s = ig_scope_begin();
    ig_manual_seed(303);
    ig_tensor *w = ig_randn(IG_DIMS(4, 3), IG_F64);
    ig_set_requires_grad(w, true);
    ig_tensor *ix = ig_from_data(IG_DIMS(2, 3), IG_I64, (int64_t[]){1, 3, 1, 1, 0, 3});
    cr_assert(ig_gradcheck(f_embedding, &w, 1, ix, NULL) == IG_OK, "%s", ig_last_error());
    ig_tensor *ix32 = ig_transpose(ig_from_data(IG_DIMS(2, 2), IG_I32, (int32_t[]){2, 2, 0, 2}), 0, 1);
    cr_assert(ig_gradcheck(f_embedding, &w, 1, ix32, NULL) == IG_OK, "%s", ig_last_error());
    ig_scope_end(s);
}

Test(core, embedding_errors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *w = ig_randn(IG_DIMS(5, 3), IG_F32);
    ig_tensor *ix = ig_from_data(IG_DIMS(2), IG_I64, (int64_t[]){1, 2});
    ig_clear_error();
    cr_assert_null(ig_embedding(NULL, w));
    ERR_HAS("ig_embedding");
    ERR_HAS("indices");
    ig_clear_error();
    cr_assert_null(ig_embedding(ix, NULL));
    ERR_HAS("ig_embedding");
    ERR_HAS("weight");
    cr_assert_null(ig_embedding(ig_ones(IG_DIMS(2), IG_F32), w));
    ERR_HAS("ig_embedding: indices must be int64 or int32");
    cr_assert_eq(ig_last_status(), IG_ERR_DTYPE);
    cr_assert_null(ig_embedding(ix, ig_randn(IG_DIMS(5), IG_F32)));
    ERR_HAS("ig_embedding: weight must be 2-D");
    cr_assert_eq(ig_last_status(), IG_ERR_SHAPE);
    cr_assert_null(ig_embedding(ix, ig_randn(IG_DIMS(5, 3, 1), IG_F32)));
    ERR_HAS("ig_embedding: weight must be 2-D");
    cr_assert_null(ig_embedding(ig_from_data(IG_DIMS(3), IG_I64, (int64_t[]){0, 5, 1}), w));
    ERR_HAS("ig_embedding: index 5 ");
    ERR_HAS("[5,3]");
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert_null(ig_embedding(ig_from_data(IG_DIMS(2, 2), IG_I32, (int32_t[]){0, 1, 2, -1}), w));
    ERR_HAS("ig_embedding: index -1 ");
    cr_assert_null(ig_embedding(ig_zeros(IG_DIMS(1, 1, 1, 1, 1, 1, 1, 1), IG_I64), w));
    ERR_HAS("ig_embedding");
    ERR_HAS("too many dims");
    ig_scope_end(s);
}
