/*
 * tests/nn/test_module.c — the generic module API: registration and ownership, lookup by
 * dotted name, train/eval recursion, parameter counts, state dicts (order, names, round
 * trip, validated loads, strict and non-strict), shared parameters, dtype conversion, and
 * the flat parameter/gradient buffers.
 *
 * Leaks are checked by the sanitizer run and by live bytes returning to zero.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

/* A heap f32 tensor holding 0, 1, 2, ... plus base. */
static ig_tensor *heap_iota(int ndim, const int64_t *shape, double base) {
    ig_tensor *t = ig_zeros(ndim, shape, IG_F32);
    cr_assert_not_null(t);
    float *p = ig_tensor_data(t);
    for (int64_t i = 0; i < ig_tensor_numel(t); i++) p[i] = (float)(base + (double)i);
    return t;
}

static int ctx_freed;
static void count_free(void *p) {
    ctx_freed++;
    free(p);
}

/* A tree: root(p "a", buffer "stat", children "left" (p "w"), "right" (child "deep" with
 * p "v" and buffer "b")). */
static ig_module *make_tree(void) {
    ig_module *root = ig_module_new("Root", NULL, NULL, NULL);
    ig_module *left = ig_module_new("Left", NULL, NULL, NULL);
    ig_module *right = ig_module_new("Right", NULL, NULL, NULL);
    ig_module *deep = ig_module_new("Deep", NULL, NULL, NULL);
    cr_assert_eq(ig_module_add_param(deep, "v", heap_iota(IG_DIMS(2), 100)), IG_OK);
    cr_assert_eq(ig_module_add_buffer(deep, "b", heap_iota(IG_DIMS(1), 200)), IG_OK);
    cr_assert_eq(ig_module_add_param(left, "w", heap_iota(IG_DIMS(2, 3), 10)), IG_OK);
    cr_assert_eq(ig_module_add_child(right, "deep", deep), IG_OK);
    /* Children first, then own entries: the state dict still lists own entries first. */
    cr_assert_eq(ig_module_add_child(root, "left", left), IG_OK);
    cr_assert_eq(ig_module_add_child(root, "right", right), IG_OK);
    cr_assert_eq(ig_module_add_buffer(root, "stat", heap_iota(IG_DIMS(3), 50)), IG_OK);
    cr_assert_eq(ig_module_add_param(root, "a", heap_iota(IG_DIMS(4), 0)), IG_OK);
    return root;
}

Test(nn, module_state_dict_order_and_lookup) {
    ig_module *m = make_tree();
    static const char *want[] = {"a", "stat", "left.w", "right.deep.v", "right.deep.b"};
    static const int64_t numel[] = {4, 3, 6, 2, 1};
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 5);
    ig_named_tensor sd[5], sd2[5], small[2];
    cr_assert_eq(ig_module_state_dict(m, sd, 5), 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(sd[i].name, want[i]);
        cr_assert_eq(ig_tensor_numel(sd[i].tensor), numel[i]);
        cr_assert_eq(ig_module_get(m, want[i]), sd[i].tensor, "%s", want[i]);
    }
    /* A smaller cap fills what fits and still returns the total. */
    cr_assert_eq(ig_module_state_dict(m, small, 2), 5);
    cr_assert_str_eq(small[1].name, "stat");
    /* Names are owned by the module and stable across calls. */
    cr_assert_eq(ig_module_state_dict(m, sd2, 5), 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(sd[i].name, sd2[i].name);
    /* Parameters only. */
    ig_named_tensor np[3];
    cr_assert_eq(ig_module_named_parameters(m, np, 3), 3);
    cr_assert_str_eq(np[0].name, "a");
    cr_assert_str_eq(np[1].name, "left.w");
    cr_assert_str_eq(np[2].name, "right.deep.v");
    cr_assert(ig_requires_grad(np[2].tensor));
    cr_assert(!ig_requires_grad(sd[1].tensor), "buffers do not require grad");
    cr_assert_eq(ig_module_num_params(m), 4 + 6 + 2);
    /* Lookups. */
    cr_assert_str_eq(ig_module_type(ig_module_child(m, "right")), "Right");
    cr_assert_null(ig_module_child(m, "deep"));
    cr_assert_eq(ig_module_num_children(m), 2);
    cr_assert_str_eq(ig_module_type(ig_module_child_at(m, 1)), "Right");
    cr_assert_null(ig_module_child_at(m, 2));
    cr_assert_null(ig_module_child_at(m, -1));
    cr_assert_null(ig_module_get(m, "right.deep.x"));
    cr_assert_null(ig_module_get(m, "right.nothere.v"));
    cr_assert_null(ig_module_get(m, "right.deep"));
    cr_assert_eq(ig_tensor_get(ig_module_get(m, "right.deep.b"), 0), 200);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_ctx_and_free) {
    ctx_freed = 0;
    int *c = malloc(sizeof *c);
    *c = 42;
    ig_module *m = ig_module_new("Custom", NULL, c, count_free);
    cr_assert_eq(*(int *)ig_module_ctx(m), 42);
    cr_assert_str_eq(ig_module_type(m), "Custom");
    ig_module_free(m);
    cr_assert_eq(ctx_freed, 1);
    ig_module_free(NULL); /* no-op */
    /* A failed ig_module_new still frees the ctx it was given. */
    EXPECT_ERR(ig_module_new(NULL, NULL, malloc(4), count_free) == NULL, "ig_module_new");
    cr_assert_eq(ctx_freed, 2);
}

Test(nn, module_add_errors_take_ownership) {
    ig_module *m = ig_module_new("M", NULL, NULL, NULL);
    cr_assert_eq(ig_module_add_param(m, "w", heap_iota(IG_DIMS(2), 0)), IG_OK);
    /* Each failing add frees what it was given (the sanitizer run checks). */
    EXPECT_ERR(ig_module_add_param(m, "w", heap_iota(IG_DIMS(2), 0)) == IG_ERR_ARG, "ig_module_add_param");
    cr_assert(strstr(ig_last_error(), "already"));
    EXPECT_ERR(ig_module_add_buffer(m, "w", heap_iota(IG_DIMS(2), 0)) == IG_ERR_ARG, "ig_module_add_buffer");
    EXPECT_ERR(ig_module_add_child(m, "w", ig_module_new("C", NULL, NULL, NULL)) == IG_ERR_ARG,
               "ig_module_add_child");
    EXPECT_ERR(ig_module_add_param(m, "a.b", heap_iota(IG_DIMS(2), 0)) == IG_ERR_ARG, "ig_module_add_param");
    EXPECT_ERR(ig_module_add_param(m, "", heap_iota(IG_DIMS(2), 0)) == IG_ERR_ARG, "ig_module_add_param");
    EXPECT_ERR(ig_module_add_param(m, NULL, heap_iota(IG_DIMS(2), 0)) == IG_ERR_ARG, "ig_module_add_param");
    EXPECT_ERR(ig_module_add_param(NULL, "x", heap_iota(IG_DIMS(2), 0)) == IG_ERR_ARG, "ig_module_add_param");
    EXPECT_ERR(ig_module_add_child(NULL, "x", ig_module_new("C", NULL, NULL, NULL)) == IG_ERR_ARG,
               "ig_module_add_child");
    EXPECT_ERR(ig_module_add_param(m, "i", ig_zeros(IG_DIMS(2), IG_I64)) == IG_ERR_DTYPE, "ig_module_add_param");
    cr_assert_eq(ig_module_add_buffer(m, "count", ig_zeros(0, NULL, IG_I64)), IG_OK); /* int buffers are fine */
    EXPECT_ERR(ig_module_add_param(m, "x", NULL) == IG_ERR_ARG, "ig_module_add_param");
    EXPECT_ERR(ig_module_add_child(m, "x", NULL) == IG_ERR_ARG, "ig_module_add_child");
    /* Scope tensors cannot be owned by a module. */
    ig_scope *s = ig_scope_begin();
    EXPECT_ERR(ig_module_add_param(m, "s", ig_zeros(IG_DIMS(2), IG_F32)) == IG_ERR_ARG, "ig_module_add_param");
    cr_assert(strstr(ig_last_error(), "heap"));
    ig_scope_end(s);
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 2);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_add_child_refuses_second_parent_and_cycles) {
    ig_module *root = make_tree();
    ig_module *left = ig_module_child(root, "left");
    ig_module *other = ig_module_new("Other", NULL, NULL, NULL);
    /* left already belongs to root: refused, and left stays in root (not freed). */
    EXPECT_ERR(ig_module_add_child(other, "x", left) == IG_ERR_ARG, "ig_module_add_child");
    cr_assert(strstr(ig_last_error(), "already"), "%s", ig_last_error());
    cr_assert_eq(ig_module_child(root, "left"), left);
    cr_assert_eq(ig_module_num_children(other), 0);
    /* A module into itself or into its own descendant would make a cycle. */
    EXPECT_ERR(ig_module_add_child(other, "self", other) == IG_ERR_ARG, "ig_module_add_child");
    EXPECT_ERR(ig_module_add_child(left, "up", root) == IG_ERR_ARG, "ig_module_add_child");
    cr_assert(strstr(ig_last_error(), "cycle"), "%s", ig_last_error());
    cr_assert_eq(ig_module_state_dict(root, NULL, 0), 5);
    ig_module_free(other);
    ig_module_free(root);
    assert_no_live_bytes();
}

Test(nn, module_forward_errors) {
    ig_module *m = ig_module_new("Box", NULL, NULL, NULL);
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_DIMS(2), IG_F32);
    EXPECT_ERR(ig_module_forward(m, x) == NULL, "ig_module_forward");
    cr_assert(strstr(ig_last_error(), "Box"));
    EXPECT_ERR(ig_module_forward(NULL, x) == NULL, "ig_module_forward");
    /* A NULL input keeps the first failure's message. */
    ig_clear_error();
    ig_tensor *bad = ig_view(x, IG_DIMS(3)); /* fails: 2 elements */
    cr_assert_null(bad);
    cr_assert_null(ig_module_forward(m, bad));
    cr_assert(strstr(ig_last_error(), "ig_view"), "%s", ig_last_error());
    ig_scope_end(s);
    ig_module_free(m);
}

Test(nn, module_train_eval_recursion) {
    ig_module *m = make_tree();
    ig_module *deep = ig_module_child(ig_module_child(m, "right"), "deep");
    cr_assert(ig_module_is_training(m) && ig_module_is_training(deep), "modules start in train mode");
    ig_module_train(m, false);
    cr_assert(!ig_module_is_training(m));
    cr_assert(!ig_module_is_training(ig_module_child(m, "left")));
    cr_assert(!ig_module_is_training(deep));
    ig_module_train(ig_module_child(m, "right"), true);
    cr_assert(ig_module_is_training(deep) && !ig_module_is_training(m));
    ig_module_train(m, true);
    cr_assert(ig_module_is_training(ig_module_child(m, "left")));
    ig_module_free(m);
}

/* Values of every state-dict entry of m, concatenated as doubles. */
static double *snapshot(ig_module *m, int *n_out) {
    int n = ig_module_state_dict(m, NULL, 0);
    ig_named_tensor *sd = calloc((size_t)n, sizeof *sd);
    ig_module_state_dict(m, sd, n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += ig_tensor_numel(sd[i].tensor);
    double *v = malloc(sizeof *v * (size_t)(total ? total : 1));
    int64_t k = 0;
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < ig_tensor_numel(sd[i].tensor); j++) v[k++] = ig_tensor_get(sd[i].tensor, j);
    free(sd);
    *n_out = (int)total;
    return v;
}

Test(nn, module_state_dict_round_trip) {
    ig_manual_seed(1);
    ig_module *a = ig_model_create("resnet8", 1, 28, 28, 10);
    ig_manual_seed(2);
    ig_module *b = ig_model_create("resnet8", 1, 28, 28, 10);
    /* Make a's buffers non-trivial too. */
    ig_fill_(ig_module_get(a, "1.running_mean"), 0.25);
    ig_fill_(ig_module_get(a, "4.sc.1.num_batches_tracked"), 7);
    int na, nb;
    double *va = snapshot(a, &na), *vb = snapshot(b, &nb);
    cr_assert_eq(na, nb);
    int differ = 0;
    for (int i = 0; i < na; i++) differ += va[i] != vb[i];
    cr_assert(differ > 1000, "different seeds give different weights");
    int n = ig_module_state_dict(a, NULL, 0);
    ig_named_tensor *sd = calloc((size_t)n, sizeof *sd);
    ig_module_state_dict(a, sd, n);
    cr_assert_eq(ig_module_load_state_dict(b, sd, n, true), IG_OK, "%s", ig_last_error());
    free(vb);
    vb = snapshot(b, &nb);
    for (int i = 0; i < na; i++) cr_assert_eq(va[i], vb[i], "element %d", i);
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "4.sc.1.num_batches_tracked"), 0), 7);
    /* Loading copies: b's tensors are its own. */
    cr_assert_neq(ig_module_get(a, "0.weight"), ig_module_get(b, "0.weight"));
    free(sd);
    free(va);
    free(vb);
    ig_module_free(a);
    ig_module_free(b);
    assert_no_live_bytes();
}

Test(nn, module_failed_load_leaves_model_untouched) {
    ig_manual_seed(3);
    ig_module *a = ig_model_create("mlp", 1, 28, 28, 10);
    ig_manual_seed(4);
    ig_module *b = ig_model_create("mlp", 1, 28, 28, 10);
    int n = ig_module_state_dict(a, NULL, 0); /* 6 */
    ig_named_tensor *sd = calloc((size_t)n + 1, sizeof *sd);
    ig_module_state_dict(a, sd, n);
    int nb0;
    double *before = snapshot(b, &nb0);
    ig_tensor *wrong = ig_zeros(IG_DIMS(10, 255), IG_F32);
    ig_tensor *wrong_dt = ig_zeros(IG_DIMS(10), IG_F64);
    ig_tensor *orig_last = sd[n - 1].tensor, *orig_w = sd[n - 2].tensor;

    /* The bad entry comes last, after five good ones: none of them may be copied. */
    sd[n - 2].tensor = wrong;
    EXPECT_ERR(ig_module_load_state_dict(b, sd, n, true) == IG_ERR_SHAPE, "ig_module_load_state_dict");
    cr_assert(strstr(ig_last_error(), "5.weight") && strstr(ig_last_error(), "[10,255]") &&
              strstr(ig_last_error(), "[10,256]"), "%s", ig_last_error());
    EXPECT_ERR(ig_module_load_state_dict(b, sd, n, false) == IG_ERR_SHAPE, "ig_module_load_state_dict");
    sd[n - 2].tensor = orig_w;
    sd[n - 1].tensor = wrong_dt;
    EXPECT_ERR(ig_module_load_state_dict(b, sd, n, true) == IG_ERR_DTYPE, "ig_module_load_state_dict");
    cr_assert(strstr(ig_last_error(), "5.bias") && strstr(ig_last_error(), "float64"), "%s", ig_last_error());
    sd[n - 1].tensor = orig_last;
    /* A duplicated name, a NULL tensor, a NULL name. */
    sd[n] = sd[0];
    EXPECT_ERR(ig_module_load_state_dict(b, sd, n + 1, false) == IG_ERR_ARG, "ig_module_load_state_dict");
    cr_assert(strstr(ig_last_error(), "twice"), "%s", ig_last_error());
    sd[n].tensor = NULL;
    EXPECT_ERR(ig_module_load_state_dict(b, sd, n + 1, false) == IG_ERR_ARG, "ig_module_load_state_dict");
    sd[n].name = NULL;
    EXPECT_ERR(ig_module_load_state_dict(b, sd, n + 1, false) == IG_ERR_ARG, "ig_module_load_state_dict");
    EXPECT_ERR(ig_module_load_state_dict(NULL, sd, n, false) == IG_ERR_ARG, "ig_module_load_state_dict");
    EXPECT_ERR(ig_module_load_state_dict(b, NULL, 3, false) == IG_ERR_ARG, "ig_module_load_state_dict");
    int nb1;
    double *after = snapshot(b, &nb1);
    cr_assert_eq(nb0, nb1);
    for (int i = 0; i < nb0; i++) cr_assert_eq(before[i], after[i], "element %d changed", i);
    free(before);
    free(after);
    free(sd);
    ig_tensor_free(wrong);
    ig_tensor_free(wrong_dt);
    ig_module_free(a);
    ig_module_free(b);
    assert_no_live_bytes();
}

Test(nn, module_load_strict_and_non_strict) {
    ig_manual_seed(5);
    ig_module *a = ig_model_create("mlp", 1, 28, 28, 10);
    ig_manual_seed(6);
    ig_module *b = ig_model_create("mlp", 1, 28, 28, 10);
    ig_named_tensor sd[7];
    ig_module_state_dict(a, sd, 6);
    /* Missing "1.weight" (entry 0): strict fails untouched, non-strict loads the rest. */
    double b_w1 = ig_tensor_get(ig_module_get(b, "1.weight"), 0);
    double b_b1 = ig_tensor_get(ig_module_get(b, "1.bias"), 0);
    EXPECT_ERR(ig_module_load_state_dict(b, sd + 1, 5, true) == IG_ERR_ARG, "ig_module_load_state_dict");
    cr_assert(strstr(ig_last_error(), "missing") && strstr(ig_last_error(), "1.weight"), "%s", ig_last_error());
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "1.bias"), 0), b_b1);
    cr_assert_eq(ig_module_load_state_dict(b, sd + 1, 5, false), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "1.weight"), 0), b_w1);
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "1.bias"), 0), ig_tensor_get(sd[1].tensor, 0));
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "5.weight"), 7), ig_tensor_get(sd[4].tensor, 7));
    /* An extra name: strict fails, non-strict ignores it. */
    ig_tensor *extra = ig_zeros(IG_DIMS(3), IG_F32);
    sd[6] = (ig_named_tensor){"9.weight", extra};
    EXPECT_ERR(ig_module_load_state_dict(b, sd, 7, true) == IG_ERR_ARG, "ig_module_load_state_dict");
    cr_assert(strstr(ig_last_error(), "unexpected") && strstr(ig_last_error(), "9.weight"), "%s", ig_last_error());
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "1.weight"), 0), b_w1);
    cr_assert_eq(ig_module_load_state_dict(b, sd, 7, false), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_get(ig_module_get(b, "1.weight"), 0), ig_tensor_get(sd[0].tensor, 0));
    /* Empty non-strict load is a no-op; empty strict load lacks everything. */
    cr_assert_eq(ig_module_load_state_dict(b, NULL, 0, false), IG_OK);
    EXPECT_ERR(ig_module_load_state_dict(b, NULL, 0, true) == IG_ERR_ARG, "ig_module_load_state_dict");
    ig_tensor_free(extra);
    ig_module_free(a);
    ig_module_free(b);
}

Test(nn, module_shared_parameter) {
    /* One tensor registered in two modules (each holds a reference). */
    ig_module *m = ig_module_new("M", NULL, NULL, NULL);
    ig_module *c1 = ig_module_new("C", NULL, NULL, NULL), *c2 = ig_module_new("C", NULL, NULL, NULL);
    ig_tensor *w = heap_iota(IG_DIMS(2, 2), 1);
    cr_assert_eq(ig_module_add_param(c1, "w", ig_tensor_retain(w)), IG_OK);
    cr_assert_eq(ig_module_add_param(c2, "w", w), IG_OK);
    cr_assert_eq(ig_module_add_param(c2, "u", heap_iota(IG_DIMS(3), 9)), IG_OK);
    ig_module_add_child(m, "c1", c1);
    ig_module_add_child(m, "c2", c2);
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 3, "the state dict lists it under both names");
    cr_assert_eq(ig_module_named_parameters(m, NULL, 0), 2, "named_parameters lists it once");
    cr_assert_eq(ig_module_num_params(m), 4 + 3);
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(ig_module_flat_params(m)), 7);
    cr_assert_eq(ig_module_get(m, "c1.w"), ig_module_get(m, "c2.w"));
    float *flat = ig_tensor_data(ig_module_flat_params(m));
    float want[7] = {1, 2, 3, 4, 9, 10, 11};
    for (int i = 0; i < 7; i++) cr_assert_eq(flat[i], want[i]);
    ig_module_free(m);
    assert_no_live_bytes();
}

/* A model y = x W^T + b (Linear 3 -> 2) then Linear 2 -> 1 with set values. */
static ig_module *small_linear_model(void) {
    ig_module *l[2] = {ig_nn_linear(3, 2, true), NULL};
    l[1] = ig_nn_linear(2, 1, true);
    ig_module *m = ig_nn_sequential(2, l);
    cr_assert_not_null(m, "%s", ig_last_error());
    float w0[6] = {1, 2, 3, 4, 5, 6}, b0[2] = {0.5f, -0.5f}, w1[2] = {1, -1}, b1[1] = {2};
    memcpy(ig_tensor_data(ig_module_get(m, "0.weight")), w0, sizeof w0);
    memcpy(ig_tensor_data(ig_module_get(m, "0.bias")), b0, sizeof b0);
    memcpy(ig_tensor_data(ig_module_get(m, "1.weight")), w1, sizeof w1);
    memcpy(ig_tensor_data(ig_module_get(m, "1.bias")), b1, sizeof b1);
    return m;
}

Test(nn, module_flatten_keeps_values_and_shares_one_buffer) {
    ig_manual_seed(8);
    ig_module *m = ig_model_create("resnet8", 1, 28, 28, 10);
    int n0;
    double *before = snapshot(m, &n0);
    int np = ig_module_named_parameters(m, NULL, 0);
    ig_named_tensor *pp = calloc((size_t)np, sizeof *pp);
    ig_module_named_parameters(m, pp, np);
    cr_assert_null(ig_module_flat_params(m));
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_module_flatten(m), IG_OK, "idempotent");
    int n1;
    double *after = snapshot(m, &n1);
    cr_assert_eq(n0, n1);
    for (int i = 0; i < n0; i++) cr_assert_eq(before[i], after[i], "element %d", i);
    ig_tensor *flat = ig_module_flat_params(m), *fg = ig_module_flat_grads(m);
    cr_assert_eq(ig_tensor_ndim(flat), 1);
    cr_assert_eq(ig_tensor_numel(flat), 77754);
    cr_assert_eq(ig_tensor_numel(fg), 77754);
    cr_assert(ig_requires_grad(flat));
    cr_assert_eq(ig_grad(flat), fg);
    /* Parameters tile the flat buffer back to back in named_parameters order, and each
     * gradient tiles the flat gradient the same way. */
    float *base = ig_tensor_data(flat), *gbase = ig_tensor_data(fg);
    int64_t off = 0;
    for (int i = 0; i < np; i++) {
        ig_tensor *p = pp[i].tensor;
        cr_assert(ig_tensor_is_contiguous(p), "%s", pp[i].name);
        cr_assert_eq((float *)ig_tensor_data(p), base + off, "%s", pp[i].name);
        cr_assert_not_null(ig_grad(p));
        cr_assert_eq((float *)ig_tensor_data(ig_grad(p)), gbase + off, "%s", pp[i].name);
        off += ig_tensor_numel(p);
    }
    cr_assert_eq(off, 77754);
    /* Adding parameters or children afterwards is an error (and frees what was given). */
    EXPECT_ERR(ig_module_add_param(m, "late", heap_iota(IG_DIMS(2), 0)) == IG_ERR_STATE, "ig_module_add_param");
    EXPECT_ERR(ig_module_add_param(ig_module_child(m, "0"), "late", heap_iota(IG_DIMS(2), 0)) == IG_ERR_STATE,
               "ig_module_add_param");
    EXPECT_ERR(ig_nn_sequential_append(m, ig_nn_relu()) == IG_ERR_STATE, "ig_module_add_child");
    /* A child of a flattened model cannot be flattened on its own. */
    EXPECT_ERR(ig_module_flatten(ig_module_child(m, "3")) == IG_ERR_STATE, "ig_module_flatten");
    EXPECT_ERR(ig_module_to_dtype(m, IG_F64) == IG_ERR_STATE, "ig_module_to_dtype");
    free(pp);
    free(before);
    free(after);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_flatten_grads_land_in_flat_buffer) {
    ig_module *m = small_linear_model();
    /* A gradient present before flattening is carried into the flat buffer. */
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    ig_tensor *fg = ig_module_flat_grads(m);
    const float *g = ig_tensor_data(fg);
    /* Layout: 0.weight [2,3] (0..5), 0.bias [2] (6,7), 1.weight [1,2] (8,9), 1.bias (10). */
    cr_assert_eq(ig_tensor_numel(fg), 11);
    ig_scope *s = ig_scope_begin();
    float xv[6] = {1, 0, -1, 2, 1, 0}; /* x [2,3] */
    ig_tensor *x = ig_from_data(IG_DIMS(2, 3), IG_F32, xv);
    ig_tensor *y = ig_module_forward(m, x); /* [2,1] */
    cr_assert_not_null(y, "%s", ig_last_error());
    /* h = x W0^T + b0: row0 (1,0,-1): (1-3+0.5, 4-6-0.5) = (-1.5, -2.5);
     * row1 (2,1,0): (2+2+0.5, 8+5-0.5) = (4.5, 12.5); y = h0 - h1 + 2: 3, -6. */
    cr_assert_float_eq(ig_tensor_get(y, 0), 3.0, 1e-6);
    cr_assert_float_eq(ig_tensor_get(y, 1), -6.0, 1e-6);
    ig_tensor *loss = ig_sum(y, 0, NULL, false);
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    /* d loss / d W1 = sum_n h[n] = (3, 10); d b1 = 2; d h = (1, -1) per row;
     * d W0[o][i] = sum_n dh[n][o] x[n][i] = (+-1) * (3, 1, -1); d b0 = (2, -2). */
    float want[11] = {3, 1, -1, -3, -1, 1, 2, -2, 3, 10, 2};
    for (int i = 0; i < 11; i++) cr_assert_float_eq(g[i], want[i], 1e-5, "grad %d: %g", i, g[i]);
    /* One update loop over the flat buffers moves every parameter. */
    float *p = ig_tensor_data(ig_module_flat_params(m));
    for (int i = 0; i < 11; i++) p[i] -= 0.5f * g[i];
    cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "0.weight"), 0), 1 - 1.5, 1e-6);
    cr_assert_float_eq(ig_tensor_get(ig_module_get(m, "1.bias"), 0), 2 - 1.0, 1e-6);
    /* A second backward accumulates; zero_grad clears the whole buffer. */
    cr_assert_eq(ig_backward(loss, NULL), IG_OK, "%s", ig_last_error());
    cr_assert_float_eq(g[9], 20, 1e-5);
    ig_module_zero_grad(m);
    for (int i = 0; i < 11; i++) cr_assert_eq(g[i], 0.0f);
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_zero_grad_without_flatten_and_existing_grads) {
    ig_module *m = small_linear_model();
    ig_scope *s = ig_scope_begin();
    ig_tensor *x = ig_ones(IG_DIMS(1, 3), IG_F32);
    cr_assert_eq(ig_backward(ig_sum(ig_module_forward(m, x), 0, NULL, false), NULL), IG_OK, "%s", ig_last_error());
    ig_tensor *gb = ig_grad(ig_module_get(m, "1.bias"));
    cr_assert_float_eq(ig_tensor_get(gb, 0), 1.0, 1e-6);
    /* Flattening now keeps the gradients computed so far. */
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    cr_assert_float_eq(ig_tensor_get(ig_module_flat_grads(m), 10), 1.0, 1e-6);
    /* d W1 = h = W0 (1,1,1) + b0 = (6.5, 14.5). */
    cr_assert_float_eq(ig_tensor_get(ig_module_flat_grads(m), 8), 6.5, 1e-6);
    cr_assert_float_eq(ig_tensor_get(ig_module_flat_grads(m), 9), 14.5, 1e-6);
    ig_scope_end(s);
    ig_module_free(m);

    m = small_linear_model();
    s = ig_scope_begin();
    cr_assert_eq(ig_backward(ig_sum(ig_module_forward(m, ig_ones(IG_DIMS(1, 3), IG_F32)), 0, NULL, false), NULL),
                 IG_OK);
    ig_module_zero_grad(m);
    cr_assert_eq(ig_tensor_get(ig_grad(ig_module_get(m, "0.weight")), 4), 0.0);
    ig_scope_end(s);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_flatten_errors) {
    EXPECT_ERR(ig_module_flatten(NULL) == IG_ERR_ARG, "ig_module_flatten");
    ig_module *m = ig_module_new("M", NULL, NULL, NULL);
    ig_tensor *d = ig_zeros(IG_DIMS(2), IG_F64);
    cr_assert_eq(ig_module_add_param(m, "a", heap_iota(IG_DIMS(2), 0)), IG_OK);
    cr_assert_eq(ig_module_add_param(m, "b", d), IG_OK);
    EXPECT_ERR(ig_module_flatten(m) == IG_ERR_DTYPE, "ig_module_flatten");
    cr_assert_null(ig_module_flat_params(m), "a failed flatten leaves nothing behind");
    /* Converting fixes it. */
    cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(ig_module_flat_params(m)), IG_F64);
    cr_assert_eq(ig_tensor_get(ig_module_flat_params(m), 1), 1.0);
    ig_module_free(m);
    /* A module without parameters flattens to empty buffers. */
    m = ig_nn_relu();
    cr_assert_eq(ig_module_flatten(m), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_numel(ig_module_flat_params(m)), 0);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_to_dtype) {
    ig_manual_seed(9);
    ig_module *m = ig_model_create("resnet8", 1, 28, 28, 10);
    double w = ig_tensor_get(ig_module_get(m, "3.c1.weight"), 5);
    cr_assert_eq(ig_module_to_dtype(m, IG_F64), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_dtype(ig_module_get(m, "3.c1.weight")), IG_F64);
    cr_assert_eq(ig_tensor_dtype(ig_module_get(m, "1.running_var")), IG_F64);
    cr_assert_eq(ig_tensor_dtype(ig_module_get(m, "1.num_batches_tracked")), IG_I64);
    cr_assert_eq(ig_tensor_get(ig_module_get(m, "3.c1.weight"), 5), w);
    cr_assert(ig_requires_grad(ig_module_get(m, "3.c1.weight")));
    EXPECT_ERR(ig_module_to_dtype(m, IG_I32) == IG_ERR_DTYPE, "ig_module_to_dtype");
    EXPECT_ERR(ig_module_to_dtype(NULL, IG_F32) == IG_ERR_ARG, "ig_module_to_dtype");
    cr_assert_eq(ig_module_to_dtype(m, IG_F32), IG_OK);
    cr_assert_eq(ig_tensor_get(ig_module_get(m, "3.c1.weight"), 5), w);
    ig_module_free(m);
    assert_no_live_bytes();
}

Test(nn, module_null_arguments) {
    EXPECT_ERR(ig_module_state_dict(NULL, NULL, 0) == -1, "ig_module_state_dict");
    EXPECT_ERR(ig_module_named_parameters(NULL, NULL, 0) == -1, "ig_module_named_parameters");
    EXPECT_ERR(ig_module_num_params(NULL) == -1, "ig_module_num_params");
    EXPECT_ERR(ig_module_get(NULL, "x") == NULL, "ig_module_get");
    EXPECT_ERR(ig_module_child(NULL, "x") == NULL, "ig_module_child");
    EXPECT_ERR(ig_module_flat_params(NULL) == NULL, "ig_module_flat_params");
    ig_module *m = ig_nn_relu();
    EXPECT_ERR(ig_module_state_dict(m, NULL, 3) == -1, "ig_module_state_dict");
    EXPECT_ERR(ig_module_get(m, NULL) == NULL, "ig_module_get");
    ig_module_train(NULL, true);
    ig_module_zero_grad(NULL);
    cr_assert(!ig_module_is_training(NULL));
    cr_assert_null(ig_module_type(NULL));
    ig_module_free(m);
}
