/*
 * tests/core/test_tensor.c — the tensor core outside views: creation for every dtype,
 * accessors, ig_item, copy/fill/conversion (broadcasting, saturation, overlap), buffers,
 * printing and the limits on shapes.
 *
 * Expected values are written out by hand or computed with plain C loops here; raw element
 * reads go through ig_tensor_data with the C type of the dtype, not through the library's
 * own conversion helpers.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

static const ig_dtype all_dtypes[] = {IG_F32, IG_F64, IG_I32, IG_I64, IG_U8};
#define N_DTYPES 5

/* Element i of a contiguous CPU tensor, read with the dtype's C type. */
static double raw(ig_tensor *t, int64_t i) {
    void *p = ig_tensor_data(t);
    cr_assert_not_null(p, "%s", ig_last_error());
    switch (ig_tensor_dtype(t)) {
    case IG_F32: return ((float *)p)[i];
    case IG_F64: return ((double *)p)[i];
    case IG_I32: return ((int32_t *)p)[i];
    case IG_I64: return (double)((int64_t *)p)[i];
    case IG_U8: return ((uint8_t *)p)[i];
    default: cr_assert_fail("bad dtype"); return 0;
    }
}

/* Renders t with ig_print into buf through a temporary file. */
static void print_to(const ig_tensor *t, char *buf, size_t cap) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(ig_print(t, f), IG_OK, "%s", ig_last_error());
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* ---- creation ------------------------------------------------------------------------ */

Test(core, zeros_ones_full_empty_every_dtype) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < N_DTYPES; k++) {
        ig_dtype dt = all_dtypes[k];
        ig_tensor *z = ig_zeros(IG_DIMS(2, 3), dt);
        ig_tensor *o = ig_ones(IG_DIMS(2, 3), dt);
        ig_tensor *f = ig_full(IG_DIMS(3, 2), dt, 7.0);
        ig_tensor *e = ig_empty(IG_DIMS(4, 1, 2), dt);
        cr_assert(z && o && f && e, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_dtype(z), dt);
        cr_assert_eq(ig_tensor_dtype(e), dt);
        cr_assert_eq(ig_tensor_numel(e), 8);
        cr_assert(ig_tensor_is_contiguous(e));
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(raw(z, i), 0.0, "dtype %s", ig_dtype_name(dt));
            cr_assert_eq(raw(o, i), 1.0, "dtype %s", ig_dtype_name(dt));
            cr_assert_eq(raw(f, i), 7.0, "dtype %s", ig_dtype_name(dt));
        }
    }
    ig_scope_end(s);
}

Test(core, full_converts_value_like_a_store) {
    ig_scope *s = ig_scope_begin();
    cr_assert_eq(raw(ig_full(IG_DIMS(2), IG_U8, 300.0), 1), 255.0);
    cr_assert_eq(raw(ig_full(IG_DIMS(2), IG_U8, -5.0), 0), 0.0);
    cr_assert_eq(raw(ig_full(IG_DIMS(2), IG_I32, 1e12), 0), 2147483647.0);
    cr_assert_eq(raw(ig_full(IG_DIMS(2), IG_I32, NAN), 0), 0.0);
    cr_assert_eq(raw(ig_full(IG_DIMS(2), IG_I32, -2.9), 0), -2.0);
    cr_assert(isnan(raw(ig_full(IG_DIMS(2), IG_F32, NAN), 1)));
    /* -0.0 must really be -0.0 (not the memset fast path of zeros). */
    cr_assert(signbit(raw(ig_full(IG_DIMS(2), IG_F64, -0.0), 1)));
    ig_scope_end(s);
}

Test(core, scalar_every_dtype) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < N_DTYPES; k++) {
        ig_tensor *t = ig_scalar(5.0, all_dtypes[k]);
        cr_assert_not_null(t, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_ndim(t), 0);
        cr_assert_eq(ig_tensor_numel(t), 1);
        cr_assert(ig_tensor_is_contiguous(t));
        cr_assert_eq(ig_item(t), 5.0);
        cr_assert_eq(raw(t, 0), 5.0);
    }
    ig_scope_end(s);
}

Test(core, zero_size_dims) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < N_DTYPES; k++) {
        ig_tensor *t = ig_zeros(IG_DIMS(0, 3), all_dtypes[k]);
        cr_assert_not_null(t, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_numel(t), 0);
        cr_assert_eq(ig_tensor_shape(t)[1], 3);
        cr_assert(ig_tensor_is_contiguous(t));
        cr_assert_not_null(ig_tensor_data(t));
        cr_assert_eq(ig_fill_(t, 3.0), IG_OK);
    }
    ig_tensor *f = ig_from_data(IG_DIMS(2, 0), IG_F32, (float[1]){0});
    cr_assert_not_null(f);
    cr_assert_eq(ig_tensor_numel(f), 0);
    ig_scope_end(s);
}

Test(core, arange_every_dtype) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < N_DTYPES; k++) {
        ig_tensor *t = ig_arange(0, 5, 1, all_dtypes[k]);
        cr_assert_not_null(t, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_ndim(t), 1);
        cr_assert_eq(ig_tensor_shape(t)[0], 5);
        for (int i = 0; i < 5; i++) cr_assert_eq(raw(t, i), (double)i);
    }
    ig_scope_end(s);
}

Test(core, arange_fractional_negative_and_empty) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_arange(5, 0, -1.5, IG_F64); /* 5, 3.5, 2, 0.5 */
    cr_assert_eq(ig_tensor_shape(a)[0], 4);
    const double want[4] = {5, 3.5, 2, 0.5};
    for (int i = 0; i < 4; i++) cr_assert_float_eq(raw(a, i), want[i], 1e-12);
    ig_tensor *b = ig_arange(10, 0, -3, IG_I64); /* 10, 7, 4, 1 */
    cr_assert_eq(ig_tensor_shape(b)[0], 4);
    for (int i = 0; i < 4; i++) cr_assert_eq(raw(b, i), 10.0 - 3.0 * i);
    ig_tensor *c = ig_arange(0, 1, 0.25, IG_F32);
    cr_assert_eq(ig_tensor_shape(c)[0], 4);
    cr_assert_eq(raw(c, 3), 0.75);
    /* Empty ranges: end == start, or a step pointing away from end. */
    cr_assert_eq(ig_tensor_numel(ig_arange(3, 3, 1, IG_F32)), 0);
    cr_assert_eq(ig_tensor_numel(ig_arange(0, 5, -1, IG_I32)), 0);
    cr_assert_eq(ig_tensor_numel(ig_arange(5, 0, 1, IG_F64)), 0);
    ig_clear_error();
    cr_assert_null(ig_arange(0, 5, 0, IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_arange");
    ig_clear_error();
    cr_assert_null(ig_arange(0, NAN, 1, IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_arange");
    ig_clear_error();
    cr_assert_null(ig_arange(0, 1e30, 1, IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_arange");
    ig_scope_end(s);
}

Test(core, from_data_every_dtype) {
    ig_scope *s = ig_scope_begin();
    float f32[6] = {1.5f, -2, 3, 4, 5, 6};
    double f64[6] = {1.5, -2, 3, 4, 5, 6};
    int32_t i32[6] = {1, -2, 3, 4, 5, 2147483647};
    int64_t i64[6] = {1, -2, 3, 4, 5, INT64_C(9007199254740993)};
    uint8_t u8[6] = {1, 2, 3, 4, 5, 255};
    const void *data[N_DTYPES] = {f32, f64, i32, i64, u8};
    for (int k = 0; k < N_DTYPES; k++) {
        ig_tensor *t = ig_from_data(IG_DIMS(2, 3), all_dtypes[k], data[k]);
        cr_assert_not_null(t, "%s", ig_last_error());
        cr_assert_eq(memcmp(ig_tensor_data(t), data[k], 6 * ig_dtype_size(all_dtypes[k])), 0);
        /* The tensor owns a copy. */
        cr_assert_neq(ig_tensor_data(t), data[k]);
    }
    ig_clear_error();
    cr_assert_null(ig_from_data(IG_DIMS(2), IG_F32, NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_from_data");
    ig_scope_end(s);
}

Test(core, zeros_like_ones_like) {
    ig_scope *s = ig_scope_begin();
    for (int k = 0; k < N_DTYPES; k++) {
        ig_tensor *base = ig_full(IG_DIMS(2, 3), all_dtypes[k], 9);
        ig_tensor *tr = ig_transpose(base, 0, 1); /* [3,2], not contiguous */
        ig_tensor *z = ig_zeros_like(tr);
        ig_tensor *o = ig_ones_like(tr);
        cr_assert(z && o, "%s", ig_last_error());
        cr_assert_eq(ig_tensor_dtype(z), all_dtypes[k]);
        cr_assert_eq(ig_tensor_shape(z)[0], 3);
        cr_assert_eq(ig_tensor_shape(z)[1], 2);
        cr_assert(ig_tensor_is_contiguous(z));
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(raw(z, i), 0.0);
            cr_assert_eq(raw(o, i), 1.0);
        }
    }
    ig_clear_error();
    cr_assert_null(ig_zeros_like(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_zeros_like");
    ig_clear_error();
    cr_assert_null(ig_ones_like(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_ones_like");
    ig_scope_end(s);
}

/* ---- accessors ----------------------------------------------------------------------- */

Test(core, accessors) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = ig_zeros(IG_DIMS(2, 3, 4), IG_F64);
    cr_assert_eq(ig_tensor_ndim(t), 3);
    const int64_t *sh = ig_tensor_shape(t), *st = ig_tensor_strides(t);
    cr_assert(sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
    cr_assert(st[0] == 12 && st[1] == 4 && st[2] == 1);
    cr_assert_eq(ig_tensor_size(t, 0), 2);
    cr_assert_eq(ig_tensor_size(t, -1), 4);
    cr_assert_eq(ig_tensor_size(t, -3), 2);
    cr_assert_eq(ig_tensor_numel(t), 24);
    cr_assert_eq(ig_tensor_device(t), IG_CPU);
    cr_assert_eq(ig_dtype_size(IG_F64), 8);
    cr_assert_eq(ig_dtype_size(IG_U8), 1);
    cr_assert_str_eq(ig_dtype_name(IG_I64), "int64");
    cr_assert(ig_dtype_is_float(IG_F32) && !ig_dtype_is_float(IG_I32));
    char b[32];
    cr_assert_str_eq(ig_shape_str(t, b, sizeof b), "[2,3,4]");
    cr_assert_str_eq(ig_shape_str(ig_scalar(1, IG_F32), b, sizeof b), "[]");
    cr_assert_str_eq(ig_shape_str(t, b, 4), "[2,");
    ig_clear_error();
    cr_assert_eq(ig_tensor_size(t, 3), -1);
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_size");
    ig_clear_error();
    cr_assert_eq(ig_tensor_size(t, -4), -1);
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_size");
    ig_clear_error();
    cr_assert_eq(ig_tensor_size(ig_scalar(1, IG_F32), 0), -1);
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_size");
    /* NULL handles give neutral answers. */
    cr_assert_eq(ig_tensor_ndim(NULL), -1);
    cr_assert_null(ig_tensor_shape(NULL));
    cr_assert_eq(ig_tensor_numel(NULL), -1);
    cr_assert(!ig_tensor_is_contiguous(NULL));
    ig_scope_end(s);
}

Test(core, item_and_get) {
    ig_scope *s = ig_scope_begin();
    cr_assert_eq(ig_item(ig_full(IG_DIMS(1, 1, 1), IG_I32, -4)), -4.0);
    ig_tensor *t = ig_arange(0, 6, 1, IG_F32);
    ig_clear_error();
    cr_assert(isnan(ig_item(t)));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_item");
    ig_clear_error();
    cr_assert(isnan(ig_item(ig_zeros(IG_DIMS(0), IG_F32))));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_item");
    ig_clear_error();
    cr_assert(isnan(ig_item(NULL)));
    ASSERT_ERR(IG_ERR_ARG, "ig_item");
    /* ig_tensor_get follows the logical (row-major) order of a transposed view. */
    ig_tensor *m = ig_transpose(ig_reshape(t, IG_DIMS(2, 3)), 0, 1); /* m[i][j] = 3j + i */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) cr_assert_eq(ig_tensor_get(m, i * 2 + j), 3.0 * j + i);
    ig_clear_error();
    cr_assert(isnan(ig_tensor_get(t, 6)));
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_get");
    ig_clear_error();
    cr_assert(isnan(ig_tensor_get(t, -1)));
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_get");
    ig_scope_end(s);
}

Test(core, tensor_data_needs_contiguous) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = ig_zeros(IG_DIMS(2, 3), IG_F32);
    ig_clear_error();
    cr_assert_null(ig_tensor_data(ig_transpose(t, 0, 1)));
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_data");
    ig_clear_error();
    cr_assert_null(ig_tensor_data(ig_slice(t, 1, 0, 3, 2)));
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_data");
    /* A contiguous view (one row) has a pointer at its first element. */
    float *base = ig_tensor_data(t);
    cr_assert_eq(ig_tensor_data(ig_select(t, 0, 1)), base + 3);
    ig_clear_error();
    cr_assert_null(ig_tensor_data(NULL));
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_data");
    ig_scope_end(s);
}

/* ---- copy, fill, buffers, conversion --------------------------------------------------- */

Test(core, copy_broadcasts_and_converts) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *dst = ig_zeros(IG_DIMS(2, 3), IG_F64);
    ig_tensor *row = ig_from_data(IG_DIMS(3), IG_I32, (int32_t[]){1, 2, 3});
    cr_assert_eq(ig_copy_(dst, row), IG_OK, "%s", ig_last_error());
    for (int i = 0; i < 6; i++) cr_assert_eq(raw(dst, i), (double)(i % 3 + 1));
    ig_tensor *col = ig_from_data(IG_DIMS(2, 1), IG_U8, (uint8_t[]){7, 9});
    cr_assert_eq(ig_copy_(dst, col), IG_OK);
    for (int i = 0; i < 6; i++) cr_assert_eq(raw(dst, i), i < 3 ? 7.0 : 9.0);
    cr_assert_eq(ig_copy_(dst, ig_scalar(-1.5, IG_F32)), IG_OK);
    for (int i = 0; i < 6; i++) cr_assert_eq(raw(dst, i), -1.5);
    /* Into a transposed destination: dst^T[i][j] = src[i][j]. */
    ig_tensor *src = ig_arange(0, 6, 1, IG_I64);
    ig_tensor *src23 = ig_reshape(src, IG_DIMS(3, 2));
    cr_assert_eq(ig_copy_(ig_transpose(dst, 0, 1), src23), IG_OK);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) cr_assert_eq(raw(dst, i * 3 + j), (double)(j * 2 + i));
    /* The source must broadcast to the destination, not the other way round. */
    ig_clear_error();
    cr_assert_eq(ig_copy_(ig_zeros(IG_DIMS(3), IG_F32), ig_zeros(IG_DIMS(2, 3), IG_F32)), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_copy_");
    ig_clear_error();
    cr_assert_eq(ig_copy_(dst, ig_zeros(IG_DIMS(4), IG_F64)), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_copy_");
    ig_clear_error();
    cr_assert_eq(ig_copy_(dst, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_copy_");
    ig_scope_end(s);
}

Test(core, copy_float_to_int_saturates_nan_to_zero) {
    ig_scope *s = ig_scope_begin();
    const double v[9] = {NAN, 1e10, -1e10, 3.7, -3.7, 300, -1, INFINITY, -INFINITY};
    ig_tensor *src = ig_from_data(IG_DIMS(9), IG_F64, v);
    const double want_i32[9] = {0, 2147483647.0, -2147483648.0, 3, -3, 300, -1, 2147483647.0, -2147483648.0};
    const double want_u8[9] = {0, 255, 0, 3, 0, 255, 0, 255, 0};
    ig_tensor *a = ig_zeros(IG_DIMS(9), IG_I32), *b = ig_zeros(IG_DIMS(9), IG_U8);
    ig_tensor *c = ig_zeros(IG_DIMS(9), IG_I64);
    cr_assert_eq(ig_copy_(a, src), IG_OK);
    cr_assert_eq(ig_copy_(b, src), IG_OK);
    cr_assert_eq(ig_copy_(c, src), IG_OK);
    const int64_t *ci = ig_tensor_data(c);
    const int64_t want_i64[9] = {0, INT64_C(10000000000), -INT64_C(10000000000), 3, -3, 300, -1,
                                 INT64_MAX, INT64_MIN};
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(raw(a, i), want_i32[i], "i32 element %d", i);
        cr_assert_eq(raw(b, i), want_u8[i], "u8 element %d", i);
        cr_assert_eq(ci[i], want_i64[i], "i64 element %d: %lld", i, (long long)ci[i]);
    }
    /* Beyond the int64 range saturates at the ends too. */
    ig_tensor *big = ig_from_data(IG_DIMS(2), IG_F32, (float[]){1e19f, -1e19f});
    ig_tensor *c2 = ig_zeros(IG_DIMS(2), IG_I64);
    cr_assert_eq(ig_copy_(c2, big), IG_OK);
    cr_assert_eq(((int64_t *)ig_tensor_data(c2))[0], INT64_MAX);
    cr_assert_eq(((int64_t *)ig_tensor_data(c2))[1], INT64_MIN);
    ig_scope_end(s);
}

Test(core, copy_between_overlapping_views) {
    ig_scope *s = ig_scope_begin();
    /* Shift right by one inside one buffer: a[1:] = a[:-1]. */
    ig_tensor *a = ig_arange(0, 10, 1, IG_F64);
    cr_assert_eq(ig_copy_(ig_slice(a, 0, 1, 10, 1), ig_slice(a, 0, 0, 9, 1)), IG_OK);
    cr_assert_eq(raw(a, 0), 0.0);
    for (int i = 1; i < 10; i++) cr_assert_eq(raw(a, i), (double)(i - 1), "i=%d", i);
    /* Shift left: b[:-1] = b[1:]. */
    ig_tensor *b = ig_arange(0, 10, 1, IG_I32);
    cr_assert_eq(ig_copy_(ig_slice(b, 0, 0, 9, 1), ig_slice(b, 0, 1, 10, 1)), IG_OK);
    for (int i = 0; i < 9; i++) cr_assert_eq(raw(b, i), (double)(i + 1));
    cr_assert_eq(raw(b, 9), 9.0);
    /* In-place transpose of a square matrix: m = m^T. */
    ig_tensor *m = ig_reshape(ig_arange(0, 9, 1, IG_F32), IG_DIMS(3, 3));
    cr_assert_eq(ig_copy_(m, ig_transpose(m, 0, 1)), IG_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) cr_assert_eq(raw(m, i * 3 + j), (double)(j * 3 + i));
    /* Copying a tensor onto itself is a no-op. */
    cr_assert_eq(ig_copy_(m, m), IG_OK);
    cr_assert_eq(raw(m, 1), 3.0);
    ig_scope_end(s);
}

Test(core, fill_strided_view) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(IG_DIMS(4, 5), IG_F32);
    cr_assert_eq(ig_fill_(ig_slice(a, 1, 0, 5, 2), 7.0), IG_OK); /* columns 0, 2, 4 */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) cr_assert_eq(raw(a, i * 5 + j), j % 2 == 0 ? 7.0 : 0.0);
    /* Column 1 through a transposed select. */
    cr_assert_eq(ig_fill_(ig_select(ig_transpose(a, 0, 1), 0, 1), -2.0), IG_OK);
    for (int i = 0; i < 4; i++) cr_assert_eq(raw(a, i * 5 + 1), -2.0);
    cr_assert_eq(raw(a, 3), 0.0);
    ig_tensor *u = ig_zeros(IG_DIMS(3), IG_U8);
    cr_assert_eq(ig_fill_(u, 300.0), IG_OK);
    cr_assert_eq(raw(u, 2), 255.0);
    ig_tensor *sc = ig_scalar(0, IG_I64);
    cr_assert_eq(ig_fill_(sc, -9.0), IG_OK);
    cr_assert_eq(ig_item(sc), -9.0);
    ig_clear_error();
    cr_assert_eq(ig_fill_(NULL, 1.0), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_fill_");
    ig_scope_end(s);
}

Test(core, tensor_to_buffer) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *t = ig_transpose(ig_reshape(ig_arange(0, 6, 1, IG_F32), IG_DIMS(2, 3)), 0, 1);
    double buf[8] = {0};
    cr_assert_eq(ig_tensor_to_buffer(t, IG_F64, buf, 8), IG_OK, "%s", ig_last_error());
    /* Logical order of the [3,2] transpose: t[i][j] = 3j + i. */
    const double want[6] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++) cr_assert_eq(buf[i], want[i]);
    cr_assert_eq(buf[6], 0.0); /* nothing written past numel */
    uint8_t ub[6];
    cr_assert_eq(ig_tensor_to_buffer(ig_full(IG_DIMS(2, 3), IG_F64, -1.0), IG_U8, ub, 6), IG_OK);
    for (int i = 0; i < 6; i++) cr_assert_eq(ub[i], 0);
    int32_t ib[1];
    cr_assert_eq(ig_tensor_to_buffer(ig_scalar(2.9, IG_F64), IG_I32, ib, 1), IG_OK);
    cr_assert_eq(ib[0], 2);
    /* An expanded tensor is written out in full. */
    ig_tensor *e = ig_expand(ig_from_data(IG_DIMS(2, 1), IG_I64, (int64_t[]){5, 6}), IG_DIMS(2, 3));
    int64_t lb[6];
    cr_assert_eq(ig_tensor_to_buffer(e, IG_I64, lb, 6), IG_OK);
    for (int i = 0; i < 6; i++) cr_assert_eq(lb[i], i < 3 ? 5 : 6);
    ig_clear_error();
    cr_assert_eq(ig_tensor_to_buffer(t, IG_F64, buf, 5), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_to_buffer");
    ig_clear_error();
    cr_assert_eq(ig_tensor_to_buffer(t, IG_F64, NULL, 6), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_tensor_to_buffer");
    ig_clear_error();
    cr_assert_eq(ig_tensor_to_buffer(t, IG_DTYPE_COUNT, buf, 6), IG_ERR_DTYPE);
    ASSERT_ERR(IG_ERR_DTYPE, "ig_tensor_to_buffer");
    ig_scope_end(s);
}

Test(core, to_dtype_every_pair) {
    ig_scope *s = ig_scope_begin();
    /* Values every dtype holds exactly. */
    const double v[6] = {0, 1, 2, 100, 7, 255};
    for (int a = 0; a < N_DTYPES; a++) {
        ig_tensor *src = ig_empty(IG_DIMS(2, 3), all_dtypes[a]);
        ig_tensor *tmp = ig_from_data(IG_DIMS(2, 3), IG_F64, v);
        cr_assert_eq(ig_copy_(src, tmp), IG_OK);
        ig_tensor *srct = ig_transpose(src, 0, 1); /* non-contiguous source too */
        for (int b = 0; b < N_DTYPES; b++) {
            ig_tensor *out = ig_to_dtype(src, all_dtypes[b]);
            ig_tensor *outt = ig_to_dtype(srct, all_dtypes[b]);
            cr_assert(out && outt, "%s", ig_last_error());
            cr_assert_eq(ig_tensor_dtype(out), all_dtypes[b]);
            cr_assert(ig_tensor_is_contiguous(outt));
            cr_assert_neq(ig_tensor_data(out), ig_tensor_data(src), "to_dtype must copy");
            for (int i = 0; i < 6; i++)
                cr_assert_eq(raw(out, i), v[i], "%s -> %s element %d", ig_dtype_name(all_dtypes[a]),
                             ig_dtype_name(all_dtypes[b]), i);
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 2; j++) cr_assert_eq(raw(outt, i * 2 + j), v[j * 3 + i]);
        }
    }
    /* Rounding towards zero and saturation, as ig_copy_. */
    ig_tensor *f = ig_from_data(IG_DIMS(4), IG_F32, (float[]){-1.5f, 2.99f, 1e10f, NAN});
    ig_tensor *i = ig_to_dtype(f, IG_I32);
    const double want[4] = {-1, 2, 2147483647.0, 0};
    for (int k = 0; k < 4; k++) cr_assert_eq(raw(i, k), want[k]);
    ig_clear_error();
    cr_assert_null(ig_to_dtype(f, IG_DTYPE_COUNT));
    ASSERT_ERR(IG_ERR_DTYPE, "ig_to_dtype");
    ig_clear_error();
    cr_assert_null(ig_to_dtype(NULL, IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_to_dtype");
    ig_scope_end(s);
}

/* ---- printing -------------------------------------------------------------------------- */

Test(core, print_small_tensors) {
    ig_scope *s = ig_scope_begin();
    char buf[4096];
    print_to(ig_from_data(IG_DIMS(2, 2), IG_I32, (int32_t[]){1, 2, 3, -4}), buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([[1, 2],\n        [3, -4]], shape=[2,2], dtype=int32)\n");
    print_to(ig_scalar(2.5, IG_F32), buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor(2.5000, shape=[], dtype=float32)\n");
    print_to(ig_zeros(IG_DIMS(0), IG_F64), buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([], shape=[0], dtype=float64)\n");
    /* A transposed view prints in logical order. */
    ig_tensor *t = ig_transpose(ig_reshape(ig_arange(0, 4, 1, IG_U8), IG_DIMS(2, 2)), 0, 1);
    print_to(t, buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([[0, 2],\n        [1, 3]], shape=[2,2], dtype=uint8)\n");
    ig_tensor *g = ig_from_data(IG_DIMS(2), IG_F64, (double[]){0.5, -1});
    cr_assert_eq(ig_set_requires_grad(g, true), IG_OK);
    print_to(g, buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([0.5000, -1.0000], shape=[2], dtype=float64, requires_grad)\n");
    /* int64 values print exactly, beyond double precision too. */
    print_to(ig_from_data(IG_DIMS(1), IG_I64, (int64_t[]){INT64_C(9007199254740993)}), buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([9007199254740993], shape=[1], dtype=int64)\n");
    ig_clear_error();
    cr_assert_eq(ig_print(NULL, stdout), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_print");
    ig_clear_error();
    cr_assert_eq(ig_print(g, NULL), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_print");
    ig_scope_end(s);
}

Test(core, print_summarises_large_tensors) {
    ig_scope *s = ig_scope_begin();
    char buf[8192];
    print_to(ig_arange(0, 100, 1, IG_I64), buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([0, 1, 2, ..., 97, 98, 99], shape=[100], dtype=int64)\n");
    /* Seven per dim is printed in full; eight is summarised. */
    print_to(ig_arange(0, 7, 1, IG_I32), buf, sizeof buf);
    cr_assert_str_eq(buf, "tensor([0, 1, 2, 3, 4, 5, 6], shape=[7], dtype=int32)\n");
    print_to(ig_reshape(ig_arange(0, 80, 1, IG_I32), IG_DIMS(10, 8)), buf, sizeof buf);
    cr_assert_str_eq(buf,
                     "tensor([[0, 1, 2, ..., 5, 6, 7],\n"
                     "        [8, 9, 10, ..., 13, 14, 15],\n"
                     "        [16, 17, 18, ..., 21, 22, 23],\n"
                     "        ...,\n"
                     "        [56, 57, 58, ..., 61, 62, 63],\n"
                     "        [64, 65, 66, ..., 69, 70, 71],\n"
                     "        [72, 73, 74, ..., 77, 78, 79]], shape=[10,8], dtype=int32)\n");
    ig_scope_end(s);
}

/* ---- shape limits ---------------------------------------------------------------------- */

Test(core, shape_limits) {
    ig_scope *s = ig_scope_begin();
    ig_clear_error();
    cr_assert_null(ig_zeros(IG_DIMS(1, 1, 1, 1, 1, 1, 1, 1, 1), IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_zeros");
    cr_assert_not_null(ig_zeros(IG_DIMS(1, 1, 1, 1, 1, 1, 1, 2), IG_F32));
    ig_clear_error();
    cr_assert_null(ig_empty(-1, NULL, IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_empty");
    /* Products that overflow int64, with and without a zero-size dim. */
    ig_clear_error();
    cr_assert_null(ig_empty(IG_DIMS(INT64_C(1) << 32, INT64_C(1) << 32), IG_F32));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_empty");
    ig_clear_error();
    cr_assert_null(ig_ones(IG_DIMS(0, INT64_C(1) << 40, INT64_C(1) << 40), IG_F32));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_ones");
    ig_clear_error();
    cr_assert_null(ig_from_data(IG_DIMS(INT64_MAX, 2), IG_U8, (uint8_t[1]){0}));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_from_data");
    /* Byte counts that overflow: numel fits, numel * 8 does not. */
    ig_clear_error();
    cr_assert_null(ig_zeros(IG_DIMS(INT64_C(1) << 61), IG_F64));
    cr_assert(strstr(ig_last_error(), "ig_zeros"), "%s", ig_last_error());
    /* Too large to allocate. */
    ig_clear_error();
    cr_assert_null(ig_full(IG_DIMS(INT64_C(1) << 58), IG_F64, 1.0));
    cr_assert(ig_last_status() == IG_ERR_NOMEM || ig_last_status() == IG_ERR_SHAPE);
    cr_assert(strstr(ig_last_error(), "ig_full"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_ones(IG_DIMS(3, -2), IG_F32));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_ones");
    ig_clear_error();
    cr_assert_null(ig_zeros(IG_DIMS(2), IG_DTYPE_COUNT));
    ASSERT_ERR(IG_ERR_DTYPE, "ig_zeros");
    ig_clear_error();
    cr_assert_null(ig_zeros(2, NULL, IG_F32));
    ASSERT_ERR(IG_ERR_ARG, "ig_zeros");
    ig_scope_end(s);
}

Test(core, errors_keep_first_message) {
    ig_clear_error();
    ig_scope *s = ig_scope_begin();
    /* The first failure in a chain is the one reported. */
    ig_tensor *t = ig_transpose(ig_zeros(IG_DIMS(2, -1), IG_F32), 0, 1);
    cr_assert_null(t);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_zeros");
    cr_assert_null(strstr(ig_last_error(), "ig_transpose"));
    cr_assert_str_eq(ig_status_name(IG_ERR_SHAPE), "shape mismatch");
    ig_clear_error();
    cr_assert_eq(ig_last_status(), IG_OK);
    cr_assert_str_eq(ig_last_error(), "");
    ig_scope_end(s);
}

Test(core, out_of_memory_is_an_error_not_an_abort) {
    /* 4 TiB: more than this machine (and ASan's allocator) can give. */
    ig_clear_error();
    cr_assert_null(ig_empty(IG_DIMS(INT64_C(1) << 40), IG_F32));
    cr_assert_eq(ig_last_status(), IG_ERR_NOMEM, "%s", ig_last_error());
    cr_assert(strstr(ig_last_error(), "ig_empty: out of memory"), "%s", ig_last_error());
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_ones(IG_DIMS(1), IG_F32);
    ig_clear_error();
    cr_assert_null(ig_add(a, ig_expand(a, IG_DIMS(INT64_C(1) << 40))));
    cr_assert_eq(ig_last_status(), IG_ERR_NOMEM, "%s", ig_last_error());
    cr_assert(strstr(ig_last_error(), "ig_add"), "%s", ig_last_error());
    ig_scope_end(s);
    assert_no_live_bytes();
}

/* ig_fill_ over every dtype, contiguous (the memset and typed-store paths) and strided, with
 * zero, negative zero (not all-zero bytes: must keep its sign), a fraction and NaN. */
Test(core, fill_every_dtype_contiguous_and_strided) {
    ig_scope *s = ig_scope_begin();
    const double vals[4] = {0.0, -0.0, 2.5, NAN};
    for (int k = 0; k < N_DTYPES; k++) {
        ig_dtype dt = all_dtypes[k];
        bool flt = dt == IG_F32 || dt == IG_F64;
        for (int v = 0; v < (flt ? 4 : 3); v++) {
            ig_tensor *t = ig_ones(IG_DIMS(7, 9), dt);
            cr_assert_eq(ig_fill_(t, vals[v]), IG_OK, "%s", ig_last_error());
            ig_tensor *u = ig_ones(IG_DIMS(7, 9), dt);
            cr_assert_eq(ig_fill_(ig_slice(u, 1, 1, 9, 3), vals[v]), IG_OK, "%s", ig_last_error());
            for (int64_t i = 0; i < 63; i++) {
                double want = flt ? vals[v] : (v == 2 ? 2.0 : 0.0), got = ig_tensor_get(t, i);
                if (isnan(want)) cr_assert(isnan(got), "dtype %d element %lld", k, (long long)i);
                else cr_assert(got == want && signbit(got) == signbit(want), "dtype %d value %d element %lld: %g",
                               k, v, (long long)i, got);
                double ug = ig_tensor_get(u, i), uw = (i % 9 >= 1 && (i % 9 - 1) % 3 == 0) ? want : 1.0;
                if (isnan(uw)) cr_assert(isnan(ug));
                else cr_assert(ug == uw, "strided: dtype %d value %d element %lld: %g", k, v, (long long)i, ug);
            }
        }
    }
    ig_scope_end(s);
}
