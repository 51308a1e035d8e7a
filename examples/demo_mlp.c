/*
 * examples/demo_mlp.c — the `make run` demo: a two-layer MLP learns to classify points
 * drawn around four centres, through ignis's public API only. It prints the loss as it
 * falls and exits non-zero if it did not fall at least tenfold.
 *
 * Every step runs inside a scope, so the step's intermediates and autograd graph are gone
 * when the scope ends; parameters are heap tensors made before any scope.
 */
#include <ignis.h>
#include <stdio.h>
#include <time.h>

#define N_POINTS 1024
#define N_CLASSES 4
#define HIDDEN 32
#define STEPS 400
#define LR 0.2

/* p -= lr * grad(p), outside the graph; then clear the gradient. */
static int sgd_update(ig_tensor *p, double lr) {
    ig_no_grad_begin();
    ig_tensor *upd = ig_sub(p, ig_mul_scalar(ig_grad(p), lr));
    ig_status st = ig_copy_(p, upd);
    ig_no_grad_end();
    ig_zero_grad(p);
    return st == IG_OK ? 0 : -1;
}

static ig_tensor *param(int64_t rows, int64_t cols, double scale) {
    ig_tensor *r = ig_randn(IG_DIMS(rows, cols), IG_F32); /* no scope open: freed here */
    ig_tensor *t = ig_mul_scalar(r, scale);
    ig_tensor_free(r);
    if (t) ig_set_requires_grad(t, true);
    return t;
}

int main(void) {
    ig_manual_seed(42);
    /* Data: x = centre[y] + 0.5 * noise, with the centres at (+-2, +-2). Heap tensors. */
    const float centres[N_CLASSES * 2] = {2, 2, -2, 2, -2, -2, 2, -2};
    ig_tensor *c = ig_from_data(IG_DIMS(N_CLASSES, 2), IG_F32, centres);
    ig_tensor *y = ig_randint(0, N_CLASSES, IG_DIMS(N_POINTS), IG_I64);
    ig_tensor *noise = ig_randn(IG_DIMS(N_POINTS, 2), IG_F32);
    ig_tensor *picked = ig_index_select(c, 0, y);
    ig_tensor *half = ig_mul_scalar(noise, 0.5);
    ig_tensor *x = ig_add(picked, half);
    ig_tensor *y_col = ig_unsqueeze(y, 1); /* [N,1] for gather */
    /* Model: 2 -> 32 -> 4. */
    ig_tensor *w1 = param(2, HIDDEN, 0.7), *b1 = param(1, HIDDEN, 0.0);
    ig_tensor *w2 = param(HIDDEN, N_CLASSES, 0.25), *b2 = param(1, N_CLASSES, 0.0);
    if (!x || !y_col || !w1 || !b1 || !w2 || !b2) {
        fprintf(stderr, "demo: setup failed: %s\n", ig_last_error());
        return 1;
    }
    ig_tensor *params[4] = {w1, b1, w2, b2};

    printf("ignis %s demo: MLP 2-%d-%d on %d synthetic points, SGD lr %.2f\n", ig_version(), HIDDEN,
           N_CLASSES, N_POINTS, LR);
    clock_t t0 = clock();
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        ig_scope *s = ig_scope_begin();
        ig_tensor *h = ig_relu(ig_add(ig_matmul(x, w1), b1));            /* [N,32] */
        ig_tensor *logits = ig_add(ig_matmul(h, w2), b2);                /* [N,4] */
        ig_tensor *logp = ig_gather(ig_log_softmax(logits, 1), 1, y_col); /* [N,1] */
        ig_tensor *loss = ig_neg(ig_mean(logp, 0, NULL, false));          /* scalar */
        if (!loss || ig_backward(loss, NULL) != IG_OK) {
            fprintf(stderr, "demo: step %d failed: %s\n", step, ig_last_error());
            return 1;
        }
        for (int i = 0; i < 4; i++) sgd_update(params[i], LR);
        last = ig_item(loss);
        if (step == 0) first = last;
        if (step % 40 == 0 || step == STEPS - 1) printf("step %4d  loss %.5f\n", step, last);
        ig_scope_end(s);
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("loss fell from %.4f to %.4f (%.0fx) in %.2f s of CPU time\n", first, last, first / last, secs);

    ig_tensor *all[] = {c, y, noise, picked, half, x, y_col, w1, b1, w2, b2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ig_tensor_free(all[i]);
    return first / last >= 10.0 ? 0 : 1;
}
