/*
 * tests/nn/test_zoo.c — the model zoo against the reference torch models of
 * shared/bench/torch_ref.py: state-dict names, shapes, order and dtypes; parameter counts
 * (worked out by hand below); other input sizes and class counts; errors; the summary.
 *
 * The expected lists are torch_ref.py's models' state_dict() (names and shapes, in order),
 * written out here. Reading torch_ref.py: Sequential children are numbered from 0, so the
 * mlp's Linears are children 1, 3, 5 (0 is Flatten, 2 and 4 are ReLU) and the cnn's layers
 * with parameters are 0 and 3 (convs) and 7 and 9 (Linears). In resnet(n) children 0..2 are
 * conv, BatchNorm2d, ReLU, then 3n Blocks (3..3n+2), AdaptiveAvgPool2d, Flatten, Linear: the
 * Linear is child 8 in resnet8 and 14 in resnet20. A Block registers c1 b1 c2 b2 and, only
 * when stride != 1 or the width changes (first block of stages 2 and 3), sc = Sequential
 * (1x1 conv, BN). Each BatchNorm2d contributes weight, bias (parameters) and running_mean,
 * running_var, num_batches_tracked (buffers, the last a 0-dim int64).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ignis.h"

#include "../test_util.h"

typedef struct sd_entry {
    const char *name;
    int ndim;
    int64_t shape[4];
} sd_entry;

static const sd_entry expect_mlp[] = {
    {"1.weight", 2, {512, 784}},
    {"1.bias", 1, {512}},
    {"3.weight", 2, {256, 512}},
    {"3.bias", 1, {256}},
    {"5.weight", 2, {10, 256}},
    {"5.bias", 1, {10}},
};
static const sd_entry expect_cnn[] = {
    {"0.weight", 4, {32, 1, 3, 3}},
    {"0.bias", 1, {32}},
    {"3.weight", 4, {64, 32, 3, 3}},
    {"3.bias", 1, {64}},
    {"7.weight", 2, {128, 3136}},
    {"7.bias", 1, {128}},
    {"9.weight", 2, {10, 128}},
    {"9.bias", 1, {10}},
};
static const sd_entry expect_resnet8[] = {
    {"0.weight", 4, {16, 1, 3, 3}},
    {"1.weight", 1, {16}},
    {"1.bias", 1, {16}},
    {"1.running_mean", 1, {16}},
    {"1.running_var", 1, {16}},
    {"1.num_batches_tracked", 0, {0}},
    {"3.c1.weight", 4, {16, 16, 3, 3}},
    {"3.b1.weight", 1, {16}},
    {"3.b1.bias", 1, {16}},
    {"3.b1.running_mean", 1, {16}},
    {"3.b1.running_var", 1, {16}},
    {"3.b1.num_batches_tracked", 0, {0}},
    {"3.c2.weight", 4, {16, 16, 3, 3}},
    {"3.b2.weight", 1, {16}},
    {"3.b2.bias", 1, {16}},
    {"3.b2.running_mean", 1, {16}},
    {"3.b2.running_var", 1, {16}},
    {"3.b2.num_batches_tracked", 0, {0}},
    {"4.c1.weight", 4, {32, 16, 3, 3}},
    {"4.b1.weight", 1, {32}},
    {"4.b1.bias", 1, {32}},
    {"4.b1.running_mean", 1, {32}},
    {"4.b1.running_var", 1, {32}},
    {"4.b1.num_batches_tracked", 0, {0}},
    {"4.c2.weight", 4, {32, 32, 3, 3}},
    {"4.b2.weight", 1, {32}},
    {"4.b2.bias", 1, {32}},
    {"4.b2.running_mean", 1, {32}},
    {"4.b2.running_var", 1, {32}},
    {"4.b2.num_batches_tracked", 0, {0}},
    {"4.sc.0.weight", 4, {32, 16, 1, 1}},
    {"4.sc.1.weight", 1, {32}},
    {"4.sc.1.bias", 1, {32}},
    {"4.sc.1.running_mean", 1, {32}},
    {"4.sc.1.running_var", 1, {32}},
    {"4.sc.1.num_batches_tracked", 0, {0}},
    {"5.c1.weight", 4, {64, 32, 3, 3}},
    {"5.b1.weight", 1, {64}},
    {"5.b1.bias", 1, {64}},
    {"5.b1.running_mean", 1, {64}},
    {"5.b1.running_var", 1, {64}},
    {"5.b1.num_batches_tracked", 0, {0}},
    {"5.c2.weight", 4, {64, 64, 3, 3}},
    {"5.b2.weight", 1, {64}},
    {"5.b2.bias", 1, {64}},
    {"5.b2.running_mean", 1, {64}},
    {"5.b2.running_var", 1, {64}},
    {"5.b2.num_batches_tracked", 0, {0}},
    {"5.sc.0.weight", 4, {64, 32, 1, 1}},
    {"5.sc.1.weight", 1, {64}},
    {"5.sc.1.bias", 1, {64}},
    {"5.sc.1.running_mean", 1, {64}},
    {"5.sc.1.running_var", 1, {64}},
    {"5.sc.1.num_batches_tracked", 0, {0}},
    {"8.weight", 2, {10, 64}},
    {"8.bias", 1, {10}},
};
static const sd_entry expect_resnet20[] = {
    {"0.weight", 4, {16, 1, 3, 3}},
    {"1.weight", 1, {16}},
    {"1.bias", 1, {16}},
    {"1.running_mean", 1, {16}},
    {"1.running_var", 1, {16}},
    {"1.num_batches_tracked", 0, {0}},
    {"3.c1.weight", 4, {16, 16, 3, 3}},
    {"3.b1.weight", 1, {16}},
    {"3.b1.bias", 1, {16}},
    {"3.b1.running_mean", 1, {16}},
    {"3.b1.running_var", 1, {16}},
    {"3.b1.num_batches_tracked", 0, {0}},
    {"3.c2.weight", 4, {16, 16, 3, 3}},
    {"3.b2.weight", 1, {16}},
    {"3.b2.bias", 1, {16}},
    {"3.b2.running_mean", 1, {16}},
    {"3.b2.running_var", 1, {16}},
    {"3.b2.num_batches_tracked", 0, {0}},
    {"4.c1.weight", 4, {16, 16, 3, 3}},
    {"4.b1.weight", 1, {16}},
    {"4.b1.bias", 1, {16}},
    {"4.b1.running_mean", 1, {16}},
    {"4.b1.running_var", 1, {16}},
    {"4.b1.num_batches_tracked", 0, {0}},
    {"4.c2.weight", 4, {16, 16, 3, 3}},
    {"4.b2.weight", 1, {16}},
    {"4.b2.bias", 1, {16}},
    {"4.b2.running_mean", 1, {16}},
    {"4.b2.running_var", 1, {16}},
    {"4.b2.num_batches_tracked", 0, {0}},
    {"5.c1.weight", 4, {16, 16, 3, 3}},
    {"5.b1.weight", 1, {16}},
    {"5.b1.bias", 1, {16}},
    {"5.b1.running_mean", 1, {16}},
    {"5.b1.running_var", 1, {16}},
    {"5.b1.num_batches_tracked", 0, {0}},
    {"5.c2.weight", 4, {16, 16, 3, 3}},
    {"5.b2.weight", 1, {16}},
    {"5.b2.bias", 1, {16}},
    {"5.b2.running_mean", 1, {16}},
    {"5.b2.running_var", 1, {16}},
    {"5.b2.num_batches_tracked", 0, {0}},
    {"6.c1.weight", 4, {32, 16, 3, 3}},
    {"6.b1.weight", 1, {32}},
    {"6.b1.bias", 1, {32}},
    {"6.b1.running_mean", 1, {32}},
    {"6.b1.running_var", 1, {32}},
    {"6.b1.num_batches_tracked", 0, {0}},
    {"6.c2.weight", 4, {32, 32, 3, 3}},
    {"6.b2.weight", 1, {32}},
    {"6.b2.bias", 1, {32}},
    {"6.b2.running_mean", 1, {32}},
    {"6.b2.running_var", 1, {32}},
    {"6.b2.num_batches_tracked", 0, {0}},
    {"6.sc.0.weight", 4, {32, 16, 1, 1}},
    {"6.sc.1.weight", 1, {32}},
    {"6.sc.1.bias", 1, {32}},
    {"6.sc.1.running_mean", 1, {32}},
    {"6.sc.1.running_var", 1, {32}},
    {"6.sc.1.num_batches_tracked", 0, {0}},
    {"7.c1.weight", 4, {32, 32, 3, 3}},
    {"7.b1.weight", 1, {32}},
    {"7.b1.bias", 1, {32}},
    {"7.b1.running_mean", 1, {32}},
    {"7.b1.running_var", 1, {32}},
    {"7.b1.num_batches_tracked", 0, {0}},
    {"7.c2.weight", 4, {32, 32, 3, 3}},
    {"7.b2.weight", 1, {32}},
    {"7.b2.bias", 1, {32}},
    {"7.b2.running_mean", 1, {32}},
    {"7.b2.running_var", 1, {32}},
    {"7.b2.num_batches_tracked", 0, {0}},
    {"8.c1.weight", 4, {32, 32, 3, 3}},
    {"8.b1.weight", 1, {32}},
    {"8.b1.bias", 1, {32}},
    {"8.b1.running_mean", 1, {32}},
    {"8.b1.running_var", 1, {32}},
    {"8.b1.num_batches_tracked", 0, {0}},
    {"8.c2.weight", 4, {32, 32, 3, 3}},
    {"8.b2.weight", 1, {32}},
    {"8.b2.bias", 1, {32}},
    {"8.b2.running_mean", 1, {32}},
    {"8.b2.running_var", 1, {32}},
    {"8.b2.num_batches_tracked", 0, {0}},
    {"9.c1.weight", 4, {64, 32, 3, 3}},
    {"9.b1.weight", 1, {64}},
    {"9.b1.bias", 1, {64}},
    {"9.b1.running_mean", 1, {64}},
    {"9.b1.running_var", 1, {64}},
    {"9.b1.num_batches_tracked", 0, {0}},
    {"9.c2.weight", 4, {64, 64, 3, 3}},
    {"9.b2.weight", 1, {64}},
    {"9.b2.bias", 1, {64}},
    {"9.b2.running_mean", 1, {64}},
    {"9.b2.running_var", 1, {64}},
    {"9.b2.num_batches_tracked", 0, {0}},
    {"9.sc.0.weight", 4, {64, 32, 1, 1}},
    {"9.sc.1.weight", 1, {64}},
    {"9.sc.1.bias", 1, {64}},
    {"9.sc.1.running_mean", 1, {64}},
    {"9.sc.1.running_var", 1, {64}},
    {"9.sc.1.num_batches_tracked", 0, {0}},
    {"10.c1.weight", 4, {64, 64, 3, 3}},
    {"10.b1.weight", 1, {64}},
    {"10.b1.bias", 1, {64}},
    {"10.b1.running_mean", 1, {64}},
    {"10.b1.running_var", 1, {64}},
    {"10.b1.num_batches_tracked", 0, {0}},
    {"10.c2.weight", 4, {64, 64, 3, 3}},
    {"10.b2.weight", 1, {64}},
    {"10.b2.bias", 1, {64}},
    {"10.b2.running_mean", 1, {64}},
    {"10.b2.running_var", 1, {64}},
    {"10.b2.num_batches_tracked", 0, {0}},
    {"11.c1.weight", 4, {64, 64, 3, 3}},
    {"11.b1.weight", 1, {64}},
    {"11.b1.bias", 1, {64}},
    {"11.b1.running_mean", 1, {64}},
    {"11.b1.running_var", 1, {64}},
    {"11.b1.num_batches_tracked", 0, {0}},
    {"11.c2.weight", 4, {64, 64, 3, 3}},
    {"11.b2.weight", 1, {64}},
    {"11.b2.bias", 1, {64}},
    {"11.b2.running_mean", 1, {64}},
    {"11.b2.running_var", 1, {64}},
    {"11.b2.num_batches_tracked", 0, {0}},
    {"14.weight", 2, {10, 64}},
    {"14.bias", 1, {10}},
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static bool is_buffer_name(const char *name) {
    return strstr(name, "running_mean") || strstr(name, "running_var") || strstr(name, "num_batches_tracked");
}

/* Checks m's state dict against the expected list: count, order, names, shapes, dtypes. */
static void check_state_dict(ig_module *m, const sd_entry *exp, int n) {
    cr_assert_not_null(m, "%s", ig_last_error());
    int total = ig_module_state_dict(m, NULL, 0);
    cr_assert_eq(total, n, "state dict has %d entries, expected %d", total, n);
    ig_named_tensor *sd = calloc((size_t)n, sizeof *sd);
    cr_assert_eq(ig_module_state_dict(m, sd, n), n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(sd[i].name, exp[i].name, "entry %d", i);
        cr_assert_eq(ig_tensor_ndim(sd[i].tensor), exp[i].ndim, "%s", exp[i].name);
        for (int d = 0; d < exp[i].ndim; d++)
            cr_assert_eq(ig_tensor_shape(sd[i].tensor)[d], exp[i].shape[d], "%s dim %d", exp[i].name, d);
        ig_dtype want = strstr(exp[i].name, "num_batches_tracked") ? IG_I64 : IG_F32;
        cr_assert_eq(ig_tensor_dtype(sd[i].tensor), want, "%s", exp[i].name);
        cr_assert_eq(ig_requires_grad(sd[i].tensor), !is_buffer_name(exp[i].name), "%s", exp[i].name);
    }
    /* named_parameters: the same list without the buffers. */
    int np = ig_module_named_parameters(m, NULL, 0), k = 0;
    ig_named_tensor *pp = calloc((size_t)np, sizeof *pp);
    cr_assert_eq(ig_module_named_parameters(m, pp, np), np);
    for (int i = 0; i < n; i++) {
        if (is_buffer_name(exp[i].name)) continue;
        cr_assert(k < np);
        cr_assert_str_eq(pp[k].name, exp[i].name);
        k++;
    }
    cr_assert_eq(k, np);
    free(pp);
    free(sd);
}

/* Sum of the numel of the parameter (non-buffer) entries of an expected list. */
static int64_t list_params(const sd_entry *exp, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (is_buffer_name(exp[i].name)) continue;
        int64_t e = 1;
        for (int d = 0; d < exp[i].ndim; d++) e *= exp[i].shape[d];
        total += e;
    }
    return total;
}

Test(nn, zoo_mlp_state_dict_matches_torch) {
    ig_module *m = ig_model_create("mlp", 1, 28, 28, 10);
    check_state_dict(m, expect_mlp, N_OF(expect_mlp));
    ig_module_free(m);
}

Test(nn, zoo_cnn_state_dict_matches_torch) {
    ig_module *m = ig_model_create("cnn", 1, 28, 28, 10);
    check_state_dict(m, expect_cnn, N_OF(expect_cnn));
    ig_module_free(m);
}

Test(nn, zoo_resnet8_state_dict_matches_torch) {
    ig_module *m = ig_model_create("resnet8", 1, 28, 28, 10);
    check_state_dict(m, expect_resnet8, N_OF(expect_resnet8));
    ig_module_free(m);
}

Test(nn, zoo_resnet20_state_dict_matches_torch) {
    ig_module *m = ig_model_create("resnet20", 1, 28, 28, 10);
    check_state_dict(m, expect_resnet20, N_OF(expect_resnet20));
    ig_module_free(m);
}

/* Parameter counts by hand (weights + biases; BN: weight + bias = 2C):
 *  mlp      784*512+512 + 512*256+256 + 256*10+10                      = 535818
 *  cnn      32*1*9+32 (320) + 64*32*9+64 (18496) + 3136*128+128 (401536)
 *           + 128*10+10 (1290)                                         = 421642
 *  resnet8  stem 16*1*9 + 32 = 176
 *           block 16->16: 2*(16*16*9) + 2*32                           = 4672
 *           block 16->32 s2: 32*16*9 + 64 + 32*32*9 + 64 + 32*16 + 64   = 14528
 *           block 32->64 s2: 64*32*9 + 128 + 64*64*9 + 128 + 64*32 + 128 = 57728
 *           linear 64*10+10 = 650                          total         = 77754
 *  resnet20 resnet8 + 2 more identity blocks per stage:
 *           16: 4672, 32: 2*(32*32*9) + 2*64 = 18560, 64: 2*(64*64*9) + 2*128 = 73984
 *           77754 + 2*(4672 + 18560 + 73984)                           = 272186
 *  resnet56 77754 + 8*(4672 + 18560 + 73984)                           = 855482 */
Test(nn, zoo_parameter_counts) {
    static const struct {
        const char *name;
        int64_t params;
    } want[] = {{"mlp", 535818}, {"cnn", 421642}, {"resnet8", 77754}, {"resnet20", 272186}, {"resnet56", 855482}};
    for (int i = 0; i < N_OF(want); i++) {
        ig_module *m = ig_model_create(want[i].name, 1, 28, 28, 10);
        cr_assert_not_null(m, "%s: %s", want[i].name, ig_last_error());
        cr_assert_eq(ig_module_num_params(m), want[i].params, "%s: %lld", want[i].name,
                     (long long)ig_module_num_params(m));
        ig_module_free(m);
    }
    /* The lists above agree with the hand counts. */
    cr_assert_eq(list_params(expect_mlp, N_OF(expect_mlp)), 535818);
    cr_assert_eq(list_params(expect_cnn, N_OF(expect_cnn)), 421642);
    cr_assert_eq(list_params(expect_resnet8, N_OF(expect_resnet8)), 77754);
    cr_assert_eq(list_params(expect_resnet20, N_OF(expect_resnet20)), 272186);
}

Test(nn, zoo_resnet56_layout) {
    /* stem conv (1 entry) + BN (5) + 25 identity blocks * 12 + 2 shortcut blocks
     * * 18 + Linear (2) = 344 entries; the Linear is child 3 + 27 + 2 = 32. */
    ig_module *m = ig_model_create("resnet56", 1, 28, 28, 10);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_module_state_dict(m, NULL, 0), 344);
    cr_assert_eq(ig_module_num_children(m), 33);
    cr_assert_not_null(ig_module_get(m, "32.weight"));
    cr_assert_not_null(ig_module_get(m, "12.sc.0.weight")); /* first block of stage 2 */
    cr_assert_null(ig_module_get(m, "13.sc.0.weight"));
    cr_assert_not_null(ig_module_get(m, "21.sc.1.num_batches_tracked"));
    cr_assert_str_eq(ig_module_type(ig_module_child(m, "30")), "AdaptiveAvgPool2d");
    ig_module_free(m);
}

Test(nn, zoo_other_inputs_and_classes) {
    /* 3-channel 32x32 inputs, 100 classes. */
    ig_module *m = ig_model_create("mlp", 3, 32, 32, 100);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(ig_module_get(m, "1.weight"))[1], 3 * 32 * 32);
    cr_assert_eq(ig_tensor_shape(ig_module_get(m, "5.weight"))[0], 100);
    ig_module_free(m);
    m = ig_model_create("cnn", 3, 32, 30, 100);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_shape(ig_module_get(m, "0.weight"))[1], 3);
    cr_assert_eq(ig_tensor_shape(ig_module_get(m, "7.weight"))[1], 64 * 8 * 7);
    cr_assert_eq(ig_tensor_shape(ig_module_get(m, "9.bias"))[0], 100);
    ig_module_free(m);
    m = ig_model_create("resnet20", 3, 32, 32, 7);
    cr_assert_not_null(m, "%s", ig_last_error());
    const int64_t *w0 = ig_tensor_shape(ig_module_get(m, "0.weight"));
    cr_assert(w0[0] == 16 && w0[1] == 3 && w0[2] == 3 && w0[3] == 3);
    cr_assert_eq(ig_tensor_shape(ig_module_get(m, "14.weight"))[0], 7);
    cr_assert_eq(ig_module_num_params(m), 272186 - 16 * 1 * 9 + 16 * 3 * 9 - 650 + 64 * 7 + 7);
    ig_module_free(m);
}

Test(nn, zoo_names) {
    const char *const *names = ig_model_names();
    static const char *want[] = {"mlp", "cnn", "resnet8", "resnet20", "resnet56"};
    int n = 0;
    while (names[n]) n++;
    cr_assert_eq(n, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(names[i], want[i]);
        ig_module *m = ig_model_create(names[i], 1, 28, 28, 10);
        cr_assert_not_null(m, "%s", ig_last_error());
        ig_module_free(m);
    }
}

Test(nn, zoo_errors_name_the_function) {
    ig_clear_error();
    cr_assert_null(ig_model_create("vgg", 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_create") && strstr(ig_last_error(), "vgg"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_model_create("mlp", 0, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_create"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_model_create("resnet8", 1, 28, 28, -1));
    cr_assert(strstr(ig_last_error(), "ig_model_create"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_model_create("cnn", 1, 3, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_create") && strstr(ig_last_error(), "4x4"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_model_create(NULL, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_create"), "%s", ig_last_error());
}

Test(nn, zoo_summary_mlp) {
    ig_module *m = ig_model_create("mlp", 1, 28, 28, 10);
    cr_assert_not_null(m);
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    ig_model_stats st = {0};
    uint64_t seed0, off0, seed1, off1;
    ig_rng_get_state(&seed0, &off0);
    cr_assert_eq(ig_model_summary(m, 1, 28, 28, f, &st), IG_OK, "%s", ig_last_error());
    ig_rng_get_state(&seed1, &off1);
    cr_assert(seed0 == seed1 && off0 == off1, "summary must not draw random numbers");
    cr_assert_eq(st.params, 535818);
    /* Linear: out * (2*in + 1 bias add); ReLU: 1 per element; Flatten: 0. */
    int64_t flops = 512 * (2 * 784 + 1) + 512 + 256 * (2 * 512 + 1) + 256 + 10 * (2 * 256 + 1);
    cr_assert_eq(st.flops_per_image, flops, "%lld vs %lld", (long long)st.flops_per_image, (long long)flops);
    cr_assert(ig_module_is_training(m), "summary restores the train flag");
    /* The table: a row per layer with its output shape, then the totals. */
    char text[4096];
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    printf("%s", text);
    cr_assert(strstr(text, "Flatten") && strstr(text, "[1,784]"), "%s", text);
    cr_assert(strstr(text, "Linear") && strstr(text, "[1,512]") && strstr(text, "401920"), "%s", text);
    cr_assert(strstr(text, "[1,10]") && strstr(text, "535818"), "%s", text);
    /* Eval-mode flags are restored per module (a mixed tree stays mixed). */
    ig_module_train(ig_module_child(m, "3"), false);
    cr_assert_eq(ig_model_summary(m, 1, 28, 28, NULL, NULL), IG_OK);
    cr_assert(ig_module_is_training(m) && !ig_module_is_training(ig_module_child(m, "3")) &&
              ig_module_is_training(ig_module_child(m, "1")));
    ig_module_free(m);
}

Test(nn, zoo_summary_errors) {
    ig_clear_error();
    cr_assert_eq(ig_model_summary(NULL, 1, 28, 28, NULL, NULL), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_model_summary"), "%s", ig_last_error());
    ig_module *m = ig_model_create("mlp", 1, 28, 28, 10);
    ig_clear_error();
    cr_assert_eq(ig_model_summary(m, 1, 0, 28, NULL, NULL), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_model_summary"), "%s", ig_last_error());
    /* A mismatched input size fails in the first Linear, reported, with no leak. */
    ig_clear_error();
    cr_assert_neq(ig_model_summary(m, 1, 20, 20, NULL, NULL), IG_OK);
    cr_assert(strstr(ig_last_error(), "Linear"), "%s", ig_last_error());
    ig_module_free(m);
    assert_no_live_bytes();
}
