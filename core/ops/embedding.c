/*
 * core/ops/embedding.c — embedding lookup: rows of a table picked by integer indices.
 *
 * ig_embedding(indices [...], weight [num, dim]) -> [..., dim]. The indices are checked
 * here (so an out-of-range one is reported as ig_embedding's, with its value and
 * position), then the lookup is ig_index_select on the flattened indices reshaped to the
 * indices' shape plus dim. The autograd graph therefore records index_select and a view,
 * whose backward accumulates the gradient rows of repeated indices (IGI_OP_EMBEDDING is
 * never recorded, as IGI_OP_STACK is not).
 */
#include <string.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

ig_tensor *ig_embedding(ig_tensor *indices, ig_tensor *weight) {
    const char *op = "ig_embedding";
    if (!indices) {
        igi_error_null(op, "indices");
        return NULL;
    }
    if (!weight) {
        igi_error_null(op, "weight");
        return NULL;
    }
    char b1[160];
    if (indices->dtype != IG_I64 && indices->dtype != IG_I32) {
        igi_error(IG_ERR_DTYPE, "%s: indices must be int64 or int32, got %s", op, ig_dtype_name(indices->dtype));
        return NULL;
    }
    if (!igi_check_same_device_any(op, indices, weight)) return NULL;
    if (weight->device != IG_CPU && !IGI_BACKEND_WITH(op, weight->device, copy)) return NULL;
    if (weight->ndim != 2) {
        igi_error(IG_ERR_SHAPE, "%s: weight must be 2-D [num, dim], got %s", op, ig_shape_str(weight, b1, sizeof b1));
        return NULL;
    }
    if (indices->ndim + 1 > IG_MAX_DIMS) {
        igi_error(IG_ERR_SHAPE, "%s: indices %s have too many dims (the output adds one; at most %d)", op,
                  ig_shape_str(indices, b1, sizeof b1), IG_MAX_DIMS);
        return NULL;
    }
    /* Validate every index (any strides: an odometer over the logical shape). */
    int nd = indices->ndim;
    int64_t n = igi_numel(nd, indices->shape), num = weight->shape[0];
    int64_t idx[IG_MAX_DIMS] = {0}, off = 0;
    /* Indices on a device are validated through a host copy; the rows are then gathered on
     * the device by ig_index_select. */
    const ig_tensor *iv = indices;
    ig_tensor *host = NULL;
    if (indices->device != IG_CPU && !(iv = host = igi_to_device_copy(op, indices, IG_CPU))) return NULL;
    const char *ip = igi_data(iv);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = indices->dtype == IG_I64 ? ((const int64_t *)ip)[off] : ((const int32_t *)ip)[off];
        if (v < 0 || v >= num) {
            igi_error(IG_ERR_ARG, "%s: index %lld (at flat position %lld) is out of range for weight %s", op,
                      (long long)v, (long long)i, ig_shape_str(weight, b1, sizeof b1));
            ig_tensor_free(host);
            return NULL;
        }
        for (int d = nd - 1; d >= 0; d--) {
            off += iv->strides[d];
            if (++idx[d] < iv->shape[d]) break;
            off -= iv->strides[d] * iv->shape[d];
            idx[d] = 0;
        }
    }
    ig_tensor_free(host);
    int64_t oshape[IG_MAX_DIMS];
    memcpy(oshape, indices->shape, sizeof(int64_t) * (size_t)nd);
    oshape[nd] = weight->shape[1];
    ig_tensor *flat = ig_reshape(indices, 1, &n);
    ig_tensor *rows = flat ? ig_index_select(weight, 0, flat) : NULL; /* [n, dim] */
    ig_tensor *out = rows ? ig_reshape(rows, nd + 1, oshape) : NULL;
    /* Heap intermediates are released (recorded nodes hold their own references); scoped
     * ones go with their scope. */
    ig_tensor_free(rows);
    ig_tensor_free(flat);
    return out;
}
