/*
 * tests/cuda/test_cuda_fake.c — core's device plumbing without a GPU (split from
 * test_cuda.c, which compares the CUDA kernels with the CPU).
 *
 * Suites:
 *  - cuda_fake: a stand-in backend with host memory and no kernels, registered as IG_CUDA,
 *    exercises core's device paths without a GPU: ig_to round trips, the device allocator's
 *    counters, cache release and out-of-memory retry, "not implemented on cuda" for every
 *    op family, mixed-device errors, the host-side accessors, module moves, and
 *    cross-entropy's target check on uploaded targets (no copy back).
 *  - cuda_nodev: without a usable device, ig_to and friends fail with the documented
 *    message (skips when a GPU is present); cuBLAS is not loaded by linking.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_impl.h"
#include "core/tensor_impl.h"
#include "cuda_test_util.h"
#include "fake_device.h"
#include "ignis.h"

static const ig_dtype all_dtypes[] = {IG_F32, IG_F64, IG_I32, IG_I64, IG_U8};

/* ---- a stand-in device: host memory, no kernels ------------------------------------------------ */

static size_t fake_in_use, fake_capacity = (size_t)1 << 40;
static int fake_allocs, fake_frees;

typedef struct {
    size_t n;
    max_align_t pad;
} fake_head;

static void *fake_alloc(size_t n) {
    if (fake_in_use + n > fake_capacity) return NULL;
    fake_head *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->n = n;
    fake_in_use += n;
    fake_allocs++;
    return h + 1;
}
static void fake_free(void *p) {
    fake_head *h = (fake_head *)p - 1;
    fake_in_use -= h->n;
    fake_frees++;
    free(h);
}

static const igi_backend fake_backend = {
    .name = "cuda",
    .raw_alloc = fake_alloc,
    .raw_free = fake_free,
    .memcpy_h2d = fake_copy,
    .memcpy_d2h = fake_copy,
    .memcpy_d2d = fake_copy,
    .memset_zero = fake_memset,
    .synchronize = fake_sync,
};

static void fake_setup(void) { igi_backend_register(IG_CUDA, &fake_backend); }

/* Asserts call returned NULL with IG_ERR_DEVICE and exactly msg. */
#define EXPECT_DEVICE_ERROR(call, msg)                                                     \
    do {                                                                                   \
        ig_clear_error();                                                                  \
        cr_assert_null((call), "%s should fail", #call);                                  \
        cr_assert_eq(ig_last_status(), IG_ERR_DEVICE, "%s: %s", #call, ig_last_error());   \
        cr_assert_str_eq(ig_last_error(), (msg));                                          \
    } while (0)

Test(cuda_fake, roundtrip_and_accessors, .init = fake_setup) {
    cr_assert(ig_cuda_is_available());
    ig_manual_seed(11);
    ig_scope *s = ig_scope_begin();
    for (size_t t = 0; t < 5; t++) {
        ig_tensor *x = data(all_dtypes[t], 3, (const int64_t[]){3, 4, 5}, false);
        ig_tensor *views[] = {x, ig_permute(x, (const int[]){2, 0, 1}), ig_slice(x, 2, 0, 5, 2),
                              ig_expand(ig_slice(x, 1, 2, 3, 1), 3, (const int64_t[]){3, 4, 5})};
        for (size_t v = 0; v < 4; v++) {
            ig_tensor *d = on(views[v], IG_CUDA);
            cr_assert_eq(ig_tensor_device(d), IG_CUDA);
            ig_tensor *back = ig_to(d, IG_CPU);
            ig_tensor *want = ig_contiguous(views[v]);
            cr_assert_eq(memcmp(ig_tensor_data(back), ig_tensor_data(want),
                                (size_t)ig_tensor_numel(want) * ig_dtype_size(all_dtypes[t])), 0);
            /* Accessors copy through the host. */
            cr_assert_eq(ig_tensor_get(d, 7), ig_tensor_get(views[v], 7));
            double buf[60], ref[60];
            int64_t n = ig_tensor_numel(d);
            cr_assert_eq(ig_tensor_to_buffer(d, IG_F64, buf, n), IG_OK, "%s", ig_last_error());
            cr_assert_eq(ig_tensor_to_buffer(views[v], IG_F64, ref, n), IG_OK);
            cr_assert_eq(memcmp(buf, ref, sizeof(double) * (size_t)n), 0);
        }
    }
    ig_tensor *d = on(ig_full(1, (const int64_t[]){1}, IG_F32, 2.5), IG_CUDA);
    cr_assert_float_eq(ig_item(d), 2.5, 0);
    cr_assert_null(ig_tensor_data(d));
    cr_assert_eq(ig_last_status(), IG_ERR_DEVICE);
    FILE *f = tmpfile();
    cr_assert(f);
    cr_assert_eq(ig_print(d, f), IG_OK);
    rewind(f);
    char line[200] = "";
    cr_assert(fgets(line, sizeof line, f));
    fclose(f);
    cr_assert(strstr(line, "2.5000") && strstr(line, "device=cuda"), "printed: %s", line);
    ig_scope_end(s);
}

Test(cuda_fake, grad_through_to, .init = fake_setup) {
    /* ig_to's backward moves the gradient back; ig_sum has no kernel on the stand-in, so the
     * loss is moved to the CPU first. */
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_randn(2, (const int64_t[]){2, 3}, IG_F64);
    cr_assert_eq(ig_set_requires_grad(x, true), IG_OK);
    ig_tensor *y = ig_to(ig_to(x, IG_CUDA), IG_CPU);
    cr_assert(y, "%s", ig_last_error());
    cr_assert_eq(ig_backward(ig_sum(ig_mul(y, y), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    for (int64_t i = 0; i < 6; i++) cr_assert_float_eq(ig_tensor_get(ig_grad(x), i), 2 * ig_tensor_get(x, i), 1e-15);
    ig_scope_end(s);
}

/* Clipping takes gradients on one device (any, through the ops); gradients spread over
 * two devices are refused naming both, and nothing is clipped. */
Test(cuda_fake, clip_refuses_gradients_on_two_devices, .init = fake_setup) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *a = ig_zeros(1, (const int64_t[]){2}, IG_F32), *b = ig_to(ig_zeros(1, (const int64_t[]){2}, IG_F32), IG_CUDA);
    cr_assert(b, "%s", ig_last_error());
    ig_set_requires_grad(a, true);
    ig_set_requires_grad(b, true);
    ig_tensor *ga = ig_keep(ig_ones(1, (const int64_t[]){2}, IG_F32));
    ig_tensor *gb = ig_keep(ig_to(ig_ones(1, (const int64_t[]){2}, IG_F32), IG_CUDA));
    cr_assert_eq(ig_set_grad(a, ga), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_set_grad(b, gb), IG_OK, "%s", ig_last_error());
    ig_tensor_free(ga);
    ig_tensor_free(gb);
    ig_tensor *ps[2] = {a, b};
    ig_clear_error();
    cr_assert(ig_clip_grad_norm(ps, 2, 0.5, 2.0) < 0);
    cr_assert_eq(ig_last_status(), IG_ERR_DEVICE);
    cr_assert(strstr(ig_last_error(), "ig_clip_grad_norm: the gradients of params[0] (cpu) and params[1] (cuda) are on "
                                      "different devices"),
              "%s", ig_last_error());
    cr_assert_neq(ig_clip_grad_value(ps, 2, 0.5), IG_OK);
    cr_assert(strstr(ig_last_error(), "ig_clip_grad_value: the gradients of params[0]"), "%s", ig_last_error());
    cr_assert_float_eq(ig_tensor_get(ig_grad(a), 0), 1.0, 0.0);
    ig_scope_end(s);
}

/* --resume on a device: an optimizer over a device parameter takes its saved (CPU) state
 * into slots on the device, values intact. */
Test(cuda_fake, optimizer_state_loads_into_device_slots, .init = fake_setup) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = ig_to(ig_zeros(1, (const int64_t[]){3}, IG_F32), IG_CUDA);
    cr_assert(p, "%s", ig_last_error());
    ig_set_requires_grad(p, true);
    ig_sgd_opts so = ig_sgd_defaults();
    so.momentum = 0.9;
    ig_optimizer *o = ig_optim_sgd(&p, 1, &so);
    cr_assert_not_null(o, "%s", ig_last_error());
    ig_tensor *saved = ig_from_data(1, (const int64_t[]){3}, IG_F32, (const float[]){1.5f, -2.0f, 0.25f});
    cr_assert_eq(ig_optim_state_set(o, "0.momentum_buffer", saved), IG_OK, "%s", ig_last_error());
    const char *name;
    ig_tensor *slot = NULL;
    for (int i = 0; i < ig_optim_state_count(o); i++) {
        cr_assert_eq(ig_optim_state_get(o, i, &name, &slot), IG_OK, "%s", ig_last_error());
        if (!strcmp(name, "0.momentum_buffer")) break;
        slot = NULL;
    }
    cr_assert_not_null(slot);
    cr_assert_eq(ig_tensor_device(slot), IG_CUDA);
    ig_tensor *back = ig_to(slot, IG_CPU);
    cr_assert(back, "%s", ig_last_error());
    cr_assert_float_eq(ig_tensor_get(back, 0), 1.5, 0.0);
    cr_assert_float_eq(ig_tensor_get(back, 1), -2.0, 0.0);
    cr_assert_float_eq(ig_tensor_get(back, 2), 0.25, 0.0);
    ig_optim_free(o);
    ig_scope_end(s);
}

Test(cuda_fake, allocator_counters, .init = fake_setup) {
    ig_mem_stats a, b;
    ig_mem_get_stats(IG_CUDA, &a);
    cr_assert_eq(a.live_bytes, 0);
    ig_tensor *x = ig_zeros(1, (const int64_t[]){1000}, IG_F32);
    ig_tensor *d = on(x, IG_CUDA);
    ig_mem_get_stats(IG_CUDA, &b);
    cr_assert_eq(b.live_bytes, 4096, "live %lld", (long long)b.live_bytes); /* 4000 -> class 4096 */
    cr_assert_eq(b.os_allocs, 1);
    ig_tensor_free(d);
    ig_mem_get_stats(IG_CUDA, &b);
    cr_assert_eq(b.live_bytes, 0);
    cr_assert_eq(b.cached_bytes, 4096);
    for (int i = 0; i < 10; i++) ig_tensor_free(on(x, IG_CUDA));
    ig_mem_get_stats(IG_CUDA, &b);
    cr_assert_eq(b.os_allocs, 1, "the cached block is reused");
    cr_assert_eq(fake_allocs, 1);
    ig_mem_release_cached(IG_CUDA);
    ig_mem_get_stats(IG_CUDA, &b);
    cr_assert_eq(b.cached_bytes, 0);
    cr_assert_eq(b.os_frees, 1);
    cr_assert_eq(fake_frees, 1);
    cr_assert_eq(fake_in_use, 0);
    ig_tensor_free(x);
}

Test(cuda_fake, out_of_memory_retries_then_fails, .init = fake_setup) {
    fake_capacity = 1 << 20;
    ig_tensor *a = heap_on(ig_zeros(1, (const int64_t[]){600 << 10}, IG_U8), IG_CUDA);
    ig_tensor_free(a); /* cached: the stand-in still holds it */
    cr_assert_geq(fake_in_use, (size_t)600 << 10);
    /* A different size class does not fit next to the cached block: the cache is released
     * and the allocation retried. */
    ig_tensor *b = heap_on(ig_zeros(1, (const int64_t[]){700 << 10}, IG_U8), IG_CUDA);
    cr_assert_eq(fake_frees, 1);
    ig_tensor_free(b);
    ig_clear_error();
    ig_tensor *big = ig_zeros(1, (const int64_t[]){2 << 20}, IG_U8);
    ig_tensor *c = ig_to(big, IG_CUDA);
    ig_tensor_free(big);
    cr_assert_null(c);
    cr_assert_eq(ig_last_status(), IG_ERR_NOMEM);
    cr_assert(strstr(ig_last_error(), "ig_to: out of device memory"), "%s", ig_last_error());
}

Test(cuda_fake, not_implemented_and_mixed_devices, .init = fake_setup) {
    ig_scope *s = ig_scope_begin();
    ig_tensor *c = ig_ones(2, (const int64_t[]){2, 3}, IG_F32), *g = on(c, IG_CUDA);
    ig_tensor *c4 = ig_ones(4, (const int64_t[]){1, 2, 4, 4}, IG_F32), *g4 = on(c4, IG_CUDA);
    ig_tensor *ci = ig_zeros(1, (const int64_t[]){2}, IG_I64), *gi = on(ci, IG_CUDA);
    EXPECT_DEVICE_ERROR(ig_add(g, g), "ig_add: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_add(c, g), "ig_add: tensors are on different devices (cpu and cuda)");
    EXPECT_DEVICE_ERROR(ig_eq(g, c), "ig_eq: tensors are on different devices (cuda and cpu)");
    EXPECT_DEVICE_ERROR(ig_mul_scalar(g, 2), "ig_mul_scalar: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_where(g, g, c), "ig_where: tensors are on different devices (cuda and cpu)");
    EXPECT_DEVICE_ERROR(ig_exp(g), "ig_exp: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_sum(g, 0, NULL, false), "ig_sum: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_argmax(g, 0, false), "ig_argmax: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_matmul(g, ig_transpose(g, 0, 1)), "ig_matmul: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_softmax(g, 1), "ig_softmax: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_log_softmax(g, 1), "ig_log_softmax: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_conv2d(g4, g4, NULL, NULL), "ig_conv2d: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_max_pool2d(g4, &(ig_pool2d_params){.kernel = {2, 2}}), "ig_max_pool2d: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_avg_pool2d(g4, &(ig_pool2d_params){.kernel = {2, 2}}), "ig_avg_pool2d: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_batch_norm(g4, NULL, NULL, NULL, NULL, true, 0.1, 1e-5), "ig_batch_norm: not implemented on cuda");
    igi_bn_sync no_group = {NULL, NULL}; /* never called: the entries are missing first */
    EXPECT_DEVICE_ERROR(igi_batch_norm_sync(g4, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &no_group),
                        "ig_batch_norm: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_layer_norm(g, 1, (const int64_t[]){3}, NULL, NULL, 1e-5), "ig_layer_norm: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_dropout(g, 0.5, true), "ig_dropout: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_cross_entropy(g, gi, NULL), "ig_cross_entropy: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_mse_loss(g, g, IG_REDUCTION_MEAN), "ig_mse_loss: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_embedding(gi, g), "ig_embedding: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_index_select(g, 0, gi), "ig_index_select: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_gather(g, 0, gi), "ig_gather: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_one_hot(gi, 3), "ig_one_hot: not implemented on cuda");
    EXPECT_DEVICE_ERROR(ig_cat((ig_tensor *[]){g, g}, 2, 0), "ig_cat: not implemented on cuda");
    cr_assert_eq(ig_fill_(g, 1.0), IG_ERR_DEVICE);
    cr_assert_str_eq(ig_last_error(), "ig_fill_: not implemented on cuda");
    /* a broadcasting copy across devices: the move works, the broadcast has no kernel */
    ig_tensor *row = ig_ones(2, (const int64_t[]){1, 3}, IG_F32);
    cr_assert_eq(ig_copy_(g, row), IG_ERR_DEVICE);
    cr_assert_str_eq(ig_last_error(), "ig_copy_: not implemented on cuda");
    /* same dtype and shape into a contiguous tensor: one transfer, no kernel needed */
    ig_tensor *twos = ig_full(2, (const int64_t[]){2, 3}, IG_F32, 2.0);
    cr_assert_eq(ig_copy_(g, twos), IG_OK, "%s", ig_last_error());
    ig_tensor *back = ig_to(g, IG_CPU);
    cr_assert(back, "%s", ig_last_error());
    for (int64_t i = 0; i < 6; i++) cr_assert_float_eq(ig_tensor_get(back, i), 2.0, 0.0);
    ig_scope_end(s);
}

Test(cuda_fake, module_to_and_back, .init = fake_setup) {
    ig_manual_seed(5);
    ig_module *m = ig_model_create("resnet8", 1, 8, 8, 3), *ref = NULL;
    ig_manual_seed(5);
    ref = ig_model_create("resnet8", 1, 8, 8, 3);
    cr_assert(m && ref, "%s", ig_last_error());
    ig_named_tensor a[64], b[64];
    int n = ig_module_state_dict(m, a, 64);
    cr_assert(n > 0 && n <= 64);
    ig_tensor *first = a[0].tensor;
    cr_assert_eq(ig_module_to(m, IG_CUDA), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_module_state_dict(m, b, 64), n);
    cr_assert_eq(b[0].tensor, first, "the tensor headers are kept");
    for (int i = 0; i < n; i++) cr_assert_eq(ig_tensor_device(b[i].tensor), IG_CUDA, "%s", b[i].name);
    cr_assert_eq(ig_module_to(m, IG_CPU), IG_OK, "%s", ig_last_error());
    ig_named_tensor r[64];
    cr_assert_eq(ig_module_state_dict(ref, r, 64), n);
    for (int i = 0; i < n; i++) expect_match(b[i].tensor, r[i].tensor, IG_CPU, b[i].name);
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_module_to(m, IG_CUDA), IG_ERR_STATE);
    cr_assert(strstr(ig_last_error(), "ig_module_to: module 'Sequential' is flattened"), "%s", ig_last_error());
    ig_module_free(m);
    ig_module_free(ref);
}

/* Cross-entropy's target check on a device (core/ops/loss.c): targets uploaded from the
 * host in one piece carry the range of their values (igi_storage.vrange), so validating
 * them needs no copy back; anything that writes into their storage, or targets made on the
 * device, take the host copy. The stand-in counts device-to-host copies; it has no
 * class_loss kernel, so a call that passes the check fails with "not implemented" and one
 * that does not, with the range error. */
static int d2h_copies;
static ig_status counting_d2h(void *d, const void *s, size_t n) {
    d2h_copies++;
    return fake_copy(d, s, n);
}
/* fake_backend with its device-to-host copies counted */
static igi_backend counting_backend;
static void counting_setup(void) {
    counting_backend = fake_backend;
    counting_backend.memcpy_d2h = counting_d2h;
    igi_backend_register(IG_CUDA, &counting_backend);
}

/* ig_cross_entropy(x, t) on the stand-in: the error it leaves and the copies it made. */
static int ce_copies(ig_tensor *x, ig_tensor *t, const ig_ce_params *p, const char *want_error) {
    d2h_copies = 0;
    ig_clear_error();
    cr_assert_null(ig_cross_entropy(x, t, p), "the stand-in has no class_loss kernel");
    cr_assert(strstr(ig_last_error(), want_error), "'%s' not in '%s'", want_error, ig_last_error());
    return d2h_copies;
}

Test(cuda_fake, cross_entropy_targets_from_the_host_need_no_copy_back, .init = counting_setup) {
    ig_scope *s = ig_scope_begin();
    const char *unimpl = "ig_cross_entropy: not implemented on cuda";
    ig_tensor *xh = ig_zeros(IG_DIMS(6, 10), IG_F32), *th = ig_empty(IG_DIMS(6), IG_I64);
    int64_t *tv = ig_tensor_data(th);
    for (int i = 0; i < 6; i++) tv[i] = (i * 7) % 10; /* 0, 7, 4, 1, 8, 5: in [0, 10) */
    ig_tensor *x = ig_to(xh, IG_CUDA), *t = ig_to(th, IG_CUDA);
    cr_assert(x && t, "%s", ig_last_error());
    cr_expect_eq(ce_copies(x, t, NULL, unimpl), 0, "uploaded targets: no copy back");
    cr_expect_eq(ce_copies(ig_narrow(x, 0, 2, 3), ig_narrow(t, 0, 2, 3), NULL, unimpl), 0, "a view of them: none");
    /* an ignore index inside the values' range: the count needs them, so they are read */
    ig_ce_params ign = {.reduction = IG_REDUCTION_MEAN, .use_ignore_index = true, .ignore_index = 4};
    cr_expect_eq(ce_copies(x, t, &ign, unimpl), 1, "ignore index 4 among the targets");
    ign.ignore_index = -100;
    cr_expect_eq(ce_copies(x, t, &ign, unimpl), 0, "ignore index -100, outside their range");
    /* more classes than the scores have: the range says "not all valid", the host decides */
    ig_tensor *x5 = ig_to(ig_zeros(IG_DIMS(6, 5), IG_F32), IG_CUDA);
    cr_expect_eq(ce_copies(x5, t, NULL, "target value 7 at position 1 is out of range [0, 5)"), 1);
    /* a write into the targets' storage (here: a bad value into one element) drops the range */
    ig_tensor *bad = ig_full(IG_DIMS(1), IG_I64, 12.0);
    cr_assert_eq(ig_copy_(ig_narrow(t, 0, 3, 1), bad), IG_OK, "%s", ig_last_error());
    cr_expect_eq(ce_copies(x, t, NULL, "target value 12 at position 3 is out of range [0, 10)"), 1);
    cr_expect_eq(ce_copies(ig_narrow(x, 0, 0, 3), ig_narrow(t, 0, 0, 3), NULL, unimpl), 1,
                 "the valid part of written storage is read too (the range is per storage)");
    /* ig_fill_ drops it as well, even where the device refuses the fill */
    ig_tensor *t2 = ig_to(th, IG_CUDA);
    cr_expect_eq(ce_copies(x, t2, NULL, unimpl), 0);
    cr_expect_neq(ig_fill_(t2, 3.0), IG_OK, "the stand-in has no fill kernel");
    cr_expect_eq(ce_copies(x, t2, NULL, unimpl), 1, "after ig_fill_");
    ig_scope_end(s);
}

/* ---- without a device ------------------------------------------------------------------------ */

Test(cuda_nodev, to_fails_with_the_reason) {
    if (ig_cuda_is_available()) cr_skip_test("a CUDA device is present: the no-device errors cannot happen");
    ig_tensor *x = ig_zeros(1, (const int64_t[]){3}, IG_F32);
    ig_clear_error();
    cr_assert_null(ig_to(x, IG_CUDA));
    cr_assert_eq(ig_last_status(), IG_ERR_DEVICE);
#ifdef IGNIS_CUDA
    cr_assert(strncmp(ig_last_error(), "ig_to: no CUDA device (cudaGetDeviceCount: ", 43) == 0, "%s", ig_last_error());
#else
    cr_assert_str_eq(ig_last_error(), "ig_to: ignis was built without CUDA");
#endif
    cr_assert_eq(ig_cuda_set_tf32(true), IG_ERR_DEVICE);
    ig_mem_stats st;
    ig_mem_get_stats(IG_CUDA, &st);
    cr_assert_eq(st.live_bytes, 0);
    cr_assert_eq(st.os_allocs, 0);
    /* Same device is not a move: CPU to CPU works without any backend. */
    ig_tensor *y = ig_to(x, IG_CPU);
    cr_assert_eq(y, x);
    ig_tensor_free(y);
    ig_tensor_free(x);
}

/* True if a library whose path contains name is mapped into this process. */
static bool library_mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/* cuBLAS (~600 MB of libraries, ~150 MB resident once relocated) is loaded on the first
 * use of a CUDA device, never by linking libignis: a CPU-only process must not carry it. */
Test(cuda_nodev, cublas_is_not_loaded_by_linking_ignis) {
    cr_assert_not(library_mapped("libcublas"), "libcublas is mapped before any CUDA use");
    ig_tensor *x = ig_zeros(1, (const int64_t[]){3}, IG_F32);
    ig_tensor *y = ig_add(x, x);
    cr_assert_not_null(y);
    cr_assert_not(library_mapped("libcublas"), "libcublas is mapped after CPU work");
    if (!ig_cuda_is_available()) cr_assert_not(library_mapped("libcublas"), "libcublas is mapped without a device");
    ig_tensor_free(y);
    ig_tensor_free(x);
}
