/*
 * tests/core/test_memory.c — the memory contract of a training loop: 10,000 scoped steps of
 * a small MLP (forward, backward, SGD update) leave live bytes exactly where they were
 * after every step, ask the OS for nothing after warm-up, and grow RSS by under 1 MiB
 * between step 100 and step 10,000.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "ignis.h"

/* Resident set size in bytes, from /proc/self/statm (second field, in pages). */
static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

static ig_tensor *param(int64_t r, int64_t c) {
    ig_tensor *raw = ig_randn(IG_DIMS(r, c), IG_F32); /* no scope open: heap tensors */
    ig_tensor *t = ig_mul_scalar(raw, 0.3);
    ig_tensor_free(raw);
    cr_assert_not_null(t, "%s", ig_last_error());
    cr_assert_eq(ig_set_requires_grad(t, true), IG_OK);
    return t;
}

Test(core, ten_thousand_scoped_steps_hold_memory_flat, .timeout = 300) {
    ig_manual_seed(7);
    ig_tensor *x = ig_randn(IG_DIMS(16, 8), IG_F32);
    ig_tensor *y = ig_randint(0, 4, IG_DIMS(16, 1), IG_I64);
    ig_tensor *w1 = param(8, 16), *b1 = param(1, 16), *w2 = param(16, 4), *b2 = param(1, 4);
    ig_tensor *params[4] = {w1, b1, w2, b2};
    ig_mem_stats ms;
    int64_t live_before = -1, os_allocs_warm = -1;
    long rss100 = 0;
    double first_loss = 0, loss_v = 0;
    for (int step = 0; step < 10000; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *h = ig_relu(ig_add(ig_matmul(x, w1), b1));
        ig_tensor *logits = ig_add(ig_matmul(h, w2), b2);
        ig_tensor *loss = ig_neg(ig_mean(ig_gather(ig_log_softmax(logits, 1), 1, y), 0, NULL, false));
        cr_assert_not_null(loss, "%s", ig_last_error());
        cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
        ig_no_grad_begin();
        for (int i = 0; i < 4; i++) {
            ig_tensor *p = params[i];
            cr_assert_eq(ig_copy_(p, ig_sub(p, ig_mul_scalar(ig_grad(p), 0.05))), IG_OK);
            ig_zero_grad(p);
        }
        ig_no_grad_end();
        loss_v = ig_item(loss);
        if (step == 0) first_loss = loss_v;
        ig_scope_end(s);

        ig_mem_get_stats(IG_CPU, &ms);
        if (step == 0) live_before = ms.live_bytes; /* grads exist from step 0 on */
        cr_assert_eq(ms.live_bytes, live_before, "step %d: live bytes %lld, expected %lld", step,
                     (long long)ms.live_bytes, (long long)live_before);
        if (step == 1) os_allocs_warm = ms.os_allocs;
        if (step > 1)
            cr_assert_eq(ms.os_allocs, os_allocs_warm, "step %d allocated from the OS", step);
        if (step == 100) rss100 = rss_bytes();
    }
    long rss_end = rss_bytes();
    cr_assert(rss100 > 0 && rss_end > 0);
    cr_assert_lt(rss_end - rss100, 1L << 20, "RSS grew by %ld bytes between step 100 and 10000",
                 rss_end - rss100);
    cr_assert_lt(loss_v, first_loss, "the MLP did not learn: %f -> %f", first_loss, loss_v);
    for (int i = 0; i < 4; i++) ig_tensor_free(params[i]);
    ig_tensor_free(x);
    ig_tensor_free(y);
    ig_mem_get_stats(IG_CPU, &ms);
    cr_assert_eq(ms.live_bytes, 0, "live bytes %lld after freeing everything", (long long)ms.live_bytes);
}
