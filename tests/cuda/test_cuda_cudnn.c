/*
 * tests/cuda/test_cuda_cudnn.c — conv2d on cuDNN (cuda/cudnn.cu), the path that
 * IGNIS_CUDA_CONV=cudnn / igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN) selects: forward, dx, dw
 * and db for stride 2, padding, dilation, 1x1, groups 2 and a strided (transposed) x, with
 * and without bias, against the CPU (f32: 1e-5 of max |cpu|; f64: 1e-12) and, for bf16
 * activations, against the default path (one bf16 step beyond 3e-5 x max(1, max |ref|):
 * both round f32 sums once, in different orders); two runs bit-identical (cuDNN's
 * non-deterministic algorithms must be filtered out); the error when libcudnn cannot be
 * loaded (IGNIS_CUDNN_LIB pointed at a missing file), for the forward and the backward, and
 * fp16 autocast on f32 tensors staying on ignis's own path in this mode.
 *
 * On the CPU emulator (tests/cuda/emu) cuDNN is the stand-in libcudnn.so.9 (emu/cudnn.cpp:
 * double sums, TF32 rounding unless FMA math, non-deterministic fake algorithms that
 * really differ run to run) and must load; its call counters show each convolution went
 * through it. On a GPU machine without cuDNN the tests skip with a message (the load-error
 * test still runs). Suite `cuda`; skips without a device.
 */
/* dlsym(RTLD_DEFAULT) and RTLD_NOLOAD (glibc extensions): detecting the emulator and
 * reading the stand-in's counters. */
#define _DEFAULT_SOURCE 1
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_test_util.h"

#include "autograd/autograd.h"
#include "core/backend_impl.h"

#ifdef IGNIS_CUDA

typedef struct {
    int64_t N, C, H, W, O, kh, kw;
    ig_conv2d_params p;
    bool bias, strided; /* strided: x is the transpose of a [N, C, W, H] tensor (dims 2, 3) */
} dn_case;

static const dn_case dn_cases[] = {
    {2, 3, 9, 9, 4, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 1}, true, false},  /* stride 2, padding */
    {2, 4, 8, 7, 6, 3, 2, {{1, 2}, {2, 1}, {2, 1}, 1}, false, false}, /* dilation, uneven */
    {3, 6, 5, 5, 8, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 1}, true, false},  /* 1x1 */
    {2, 4, 7, 7, 6, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 2}, true, false},  /* groups 2 */
    {2, 5, 6, 8, 3, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},   /* strided x */
    {1, 4, 9, 9, 4, 3, 3, {{2, 1}, {0, 2}, {2, 2}, 2}, false, true},  /* all of it, no bias */
};
#define DN_NCASES (sizeof dn_cases / sizeof dn_cases[0])

/* Whether this process runs on the CPU emulator (its runtime exports igemu_device_range). */
static bool emulated(void) { return dlsym(RTLD_DEFAULT, "igemu_device_range") != NULL; }

/* The stand-in's per-direction call counters (forward, backward data, backward filter) when
 * the loaded libcudnn is the emulator's, else NULL. */
static const unsigned long long *stand_in_calls(void) {
    void *lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_NOLOAD);
    if (!lib) return NULL;
    const unsigned long long *c = dlsym(lib, "igemu_cudnn_calls");
    dlclose(lib);
    return c;
}

static ig_tensor *dn_x(const dn_case *c, ig_tensor *base) { return c->strided ? ig_transpose(base, 2, 3) : base; }

/* {x base, w, b or NULL} of case c, dtype dt, on the CPU. */
static void dn_inputs(const dn_case *c, ig_dtype dt, ig_tensor *in[3]) {
    int64_t g = c->p.groups ? c->p.groups : 1;
    int64_t xs[4] = {c->N, c->C, c->strided ? c->W : c->H, c->strided ? c->H : c->W};
    in[0] = data(dt, 4, xs, false);
    in[1] = data(dt, 4, (const int64_t[]){c->O, c->C / g, c->kh, c->kw}, false);
    in[2] = c->bias ? data(dt, 1, &c->O, false) : NULL;
}

/* y and the gradients {dx, dw, db} of sum(y * r) for case c on device d with conv mode
 * `mode` (ignored on the CPU); r made here from the seed. out[0] = y, out[1..3] grads. */
static void dn_run(const dn_case *c, ig_tensor *const in[3], ig_device d, int mode, unsigned seed, ig_tensor *out[4]) {
    ig_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = in[i] ? (d == IG_CPU ? ig_clone(in[i]) : on(in[i], d)) : NULL;
        if (t[i]) cr_assert_eq(ig_set_requires_grad(t[i], true), IG_OK, "%s", ig_last_error());
    }
    int prev = d == IG_CUDA ? igi_cuda_conv_force(mode) : 0;
    ig_tensor *y = ig_conv2d(dn_x(c, t[0]), t[1], t[2], &c->p);
    cr_assert(y, "conv2d: %s", ig_last_error());
    ig_manual_seed(seed);
    ig_tensor *r = data(ig_tensor_dtype(y), 4, ig_tensor_shape(y), false);
    ig_status st = ig_backward(ig_sum(ig_mul(y, d == IG_CPU ? r : on(r, d)), 0, NULL, false), NULL);
    if (d == IG_CUDA) igi_cuda_conv_force(prev);
    cr_assert_eq(st, IG_OK, "backward: %s", ig_last_error());
    out[0] = y;
    for (int i = 0; i < 3; i++) out[i + 1] = t[i] ? ig_grad(t[i]) : NULL;
}

/* Skips (on a GPU machine) when cuDNN cannot be used; on the emulator it must load. */
static void need_cudnn(void) {
    need_cuda();
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = on(ig_ones(4, (const int64_t[]){1, 1, 3, 3}, IG_F32), IG_CUDA);
    ig_tensor *w = on(ig_ones(4, (const int64_t[]){1, 1, 1, 1}, IG_F32), IG_CUDA);
    int prev = igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN);
    ig_tensor *y = ig_conv2d(x, w, NULL, NULL);
    igi_cuda_conv_force(prev);
    if (!y) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ig_last_error());
        ig_scope_end(s);
        cr_assert(!emulated(), "the emulator's stand-in cuDNN must load: %s", msg);
        if (strstr(msg, "could not be loaded") || strstr(msg, "not built with cuDNN headers"))
            cr_skip_test("cuDNN not usable here: %s", msg);
        cr_assert_fail("cuDNN conv2d failed: %s", msg);
    }
    ig_scope_end(s);
}

/* Each case in dtype dt through cuDNN against the CPU (expect_match's tolerance). With the
 * stand-in, each of the three convolutions must have gone through it. */
static void dn_check_dtype(ig_dtype dt) {
    need_cudnn();
    ig_manual_seed(21);
    for (size_t k = 0; k < DN_NCASES; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *in[3], *cpu[4], *dev[4];
        dn_inputs(&dn_cases[k], dt, in);
        const unsigned long long *calls = stand_in_calls();
        unsigned long long before[3] = {0, 0, 0};
        if (calls) memcpy(before, calls, sizeof before);
        dn_run(&dn_cases[k], in, IG_CPU, 0, 7, cpu);
        dn_run(&dn_cases[k], in, IG_CUDA, IGI_CUDA_CONV_CUDNN, 7, dev);
        if ((calls = stand_in_calls()) != NULL)
            for (int i = 0; i < 3; i++)
                cr_expect_gt(calls[i], before[i], "case %zu: cuDNN direction %d was not called", k, i);
        else
            cr_assert(!emulated(), "the stand-in cuDNN's counters are missing");
        const char *names[4] = {"y", "dx", "dw", "db"};
        for (int i = 0; i < 4; i++) {
            if (!cpu[i]) continue;
            char what[120];
            snprintf(what, sizeof what, "cudnn %s case %zu %s", ig_dtype_name(dt), k, names[i]);
            expect_match(dev[i], cpu[i], IG_CUDA, what);
        }
        ig_scope_end(s);
    }
}

Test(cuda, cudnn_conv_f32_matches_cpu) { dn_check_dtype(IG_F32); }

Test(cuda, cudnn_conv_f64_matches_cpu) { dn_check_dtype(IG_F64); }


/* bf16 activations (x, w, b, y, dy, dx, dw, db all bf16): cuDNN against the default path
 * (the implicit GEMM; groups 2 the widened im2col path). */
Test(cuda, cudnn_conv_bf16_matches_default_path) {
    need_cudnn();
    ig_manual_seed(22);
    for (size_t k = 0; k < DN_NCASES; k++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *in[3], *ref[4], *got[4];
        dn_inputs(&dn_cases[k], IG_BF16, in);
        dn_run(&dn_cases[k], in, IG_CUDA, IGI_CUDA_CONV_AUTO, 8, ref);
        dn_run(&dn_cases[k], in, IG_CUDA, IGI_CUDA_CONV_CUDNN, 8, got);
        const char *names[4] = {"y", "dx", "dw", "db"};
        for (int i = 0; i < 4; i++) {
            if (!ref[i]) continue;
            cr_assert_eq(ig_tensor_dtype(got[i]), IG_BF16, "case %zu %s: dtype %s", k, names[i],
                         ig_dtype_name(ig_tensor_dtype(got[i])));
            double steps = bf16_steps_host(ref[i], got[i]);
            cr_expect_leq(steps, 1.0, "cudnn bf16 case %zu %s: %g bf16 steps from the default path", k, names[i], steps);
        }
        ig_scope_end(s);
    }
}

/* Two runs of the same forward + backward give the same bits (f32 and bf16). */
Test(cuda, cudnn_conv_deterministic) {
    need_cudnn();
    const ig_dtype dts[2] = {IG_F32, IG_BF16};
    for (int t = 0; t < 2; t++) {
        for (size_t k = 0; k < DN_NCASES; k += 3) {
            ig_scope *s = ig_scope_begin();
            ig_manual_seed(23);
            ig_tensor *in[3], *a[4], *b[4];
            dn_inputs(&dn_cases[k], dts[t], in);
            dn_run(&dn_cases[k], in, IG_CUDA, IGI_CUDA_CONV_CUDNN, 9, a);
            dn_run(&dn_cases[k], in, IG_CUDA, IGI_CUDA_CONV_CUDNN, 9, b);
            const char *names[4] = {"y", "dx", "dw", "db"};
            for (int i = 0; i < 4; i++) {
                if (!a[i]) continue;
                ig_tensor *ha = ig_to(a[i], IG_CPU), *hb = ig_to(b[i], IG_CPU);
                cr_assert(ha && hb, "%s", ig_last_error());
                size_t n = (size_t)ig_tensor_numel(ha) * ig_dtype_size(dts[t]);
                cr_expect(memcmp(ig_tensor_data(ha), ig_tensor_data(hb), n) == 0, "%s case %zu: %s differs between runs",
                          ig_dtype_name(dts[t]), k, names[i]);
            }
            ig_scope_end(s);
        }
    }
}

/* IGNIS_CUDNN_LIB naming a missing library: the forward fails, naming the op and the
 * library; so does a backward taken in cudnn mode after a forward on the default path;
 * fp16 autocast on f32 tensors does not need cuDNN (ignis's path); once the variable is
 * gone the next call loads cuDNN (a failed load is not remembered). */
Test(cuda, cudnn_conv_load_failure_is_an_error) {
    need_cuda();
    const char *missing = "/nonexistent/ignis-test/libcudnn-missing.so.9";
    cr_assert_eq(setenv("IGNIS_CUDNN_LIB", missing, 1), 0);
    ig_scope *s = ig_scope_begin();
    const dn_case *c = &dn_cases[0];
    ig_tensor *in[3], *dev[3];
    ig_manual_seed(24);
    dn_inputs(c, IG_F32, in);
    for (int i = 0; i < 3; i++) {
        dev[i] = on(in[i], IG_CUDA);
        cr_assert_eq(ig_set_requires_grad(dev[i], true), IG_OK, "%s", ig_last_error());
    }

    int prev = igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN);
    ig_tensor *y = ig_conv2d(dev[0], dev[1], dev[2], &c->p);
    igi_cuda_conv_force(prev);
    cr_assert_null(y, "conv2d in cudnn mode succeeded without a loadable libcudnn");
    const char *want = "ig_conv2d: IGNIS_CUDA_CONV=cudnn but libcudnn.so.9 could not be loaded (";
    cr_expect(strstr(ig_last_error(), want) != NULL, "message: %s", ig_last_error());
    cr_expect(strstr(ig_last_error(), "libcudnn-missing.so.9") != NULL, "message: %s", ig_last_error());

    /* the backward: forward on the default path, backward in cudnn mode */
    y = ig_conv2d(dev[0], dev[1], dev[2], &c->p);
    cr_assert(y, "%s", ig_last_error());
    prev = igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN);
    ig_status st = ig_backward(ig_sum(y, 0, NULL, false), NULL);
    igi_cuda_conv_force(prev);
    cr_expect_neq(st, IG_OK, "backward in cudnn mode succeeded without a loadable libcudnn");
    cr_expect(strstr(ig_last_error(), want) != NULL, "backward message: %s", ig_last_error());

    /* fp16 autocast on f32 tensors: ignis's own path, cuDNN not involved */
    ig_amp amp = ig_autocast_set(IG_AMP_FP16);
    prev = igi_cuda_conv_force(IGI_CUDA_CONV_CUDNN);
    y = ig_conv2d(dev[0], dev[1], dev[2], &c->p);
    igi_cuda_conv_force(prev);
    ig_autocast_set(amp);
    cr_expect(y != NULL, "fp16 autocast conv2d in cudnn mode: %s", ig_last_error());
    ig_scope_end(s);

    /* the next attempt loads again */
    cr_assert_eq(unsetenv("IGNIS_CUDNN_LIB"), 0);
    need_cudnn();
}

#endif
