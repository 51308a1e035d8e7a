/*
 * nn/zoo.c — the model zoo: the architectures of shared/bench/torch_ref.py, built so their
 * state dicts have the same names, shapes and order as the torch models.
 *
 *   mlp      Sequential(Flatten, Linear(C*H*W, 512), ReLU, Linear(512, 256), ReLU,
 *            Linear(256, classes))
 *   cnn      Sequential(Conv2d(C, 32, 3, pad 1), ReLU, MaxPool2d(2), Conv2d(32, 64, 3, pad 1),
 *            ReLU, MaxPool2d(2), Flatten, Linear(64*(H/4)*(W/4), 128), ReLU, Linear(128, classes))
 *   resnetN  N = 6n+2: Sequential(Conv2d(C, 16, 3, 1, 1, no bias), BatchNorm2d(16), ReLU,
 *            n basic blocks per stage at widths 16/32/64 (the first of stages 2 and 3 with
 *            stride 2), AdaptiveAvgPool2d(1), Flatten, Linear(64, classes));
 *            resnet8: n = 1, resnet20: n = 3, resnet56: n = 9.
 */
#include <string.h>

#include "module_impl.h"

static const char *const model_names[] = {"mlp", "cnn", "resnet8", "resnet20", "resnet56", NULL};

const char *const *ig_model_names(void) { return model_names; }

/* Layers are made one statement at a time: the order of evaluation inside an initializer
 * list is unspecified in C, and each constructor draws from the default generator, so
 * a fixed order is what makes a seed give the same model on every compiler. */
static ig_module *make_mlp(int64_t in, int64_t classes) {
    ig_module *l[6];
    l[0] = ig_nn_flatten(1, -1);
    l[1] = ig_nn_linear(in, 512, true);
    l[2] = ig_nn_relu();
    l[3] = ig_nn_linear(512, 256, true);
    l[4] = ig_nn_relu();
    l[5] = ig_nn_linear(256, classes, true);
    return ig_nn_sequential(6, l);
}

static ig_module *make_cnn(int64_t c, int64_t h, int64_t w, int64_t classes) {
    ig_conv2d_params pad1 = {.padding = {1, 1}};
    ig_pool2d_params pool2 = {.kernel = {2, 2}};
    ig_module *l[10];
    l[0] = ig_nn_conv2d(c, 32, 3, 3, &pad1, true);
    l[1] = ig_nn_relu();
    l[2] = ig_nn_maxpool2d(&pool2);
    l[3] = ig_nn_conv2d(32, 64, 3, 3, &pad1, true);
    l[4] = ig_nn_relu();
    l[5] = ig_nn_maxpool2d(&pool2);
    l[6] = ig_nn_flatten(1, -1);
    l[7] = ig_nn_linear(64 * (h / 4) * (w / 4), 128, true);
    l[8] = ig_nn_relu();
    l[9] = ig_nn_linear(128, classes, true);
    return ig_nn_sequential(10, l);
}

static ig_module *make_resnet(int n, int64_t c, int64_t classes) {
    ig_conv2d_params stem = {.padding = {1, 1}};
    ig_module *l[3];
    l[0] = ig_nn_conv2d(c, 16, 3, 3, &stem, false);
    l[1] = ig_nn_batchnorm2d(16);
    l[2] = ig_nn_relu();
    ig_module *m = ig_nn_sequential(3, l);
    static const int64_t widths[3] = {16, 32, 64};
    static const int strides[3] = {1, 2, 2};
    int64_t cin = 16;
    ig_status st = m ? IG_OK : IG_ERR_ARG;
    for (int s = 0; s < 3 && st == IG_OK; s++)
        for (int i = 0; i < n && st == IG_OK; i++) {
            st = ig_nn_sequential_append(m, ig_nn_basic_block(cin, widths[s], i == 0 ? strides[s] : 1));
            cin = widths[s];
        }
    if (st == IG_OK) st = ig_nn_sequential_append(m, ig_nn_adaptive_avgpool2d(1, 1));
    if (st == IG_OK) st = ig_nn_sequential_append(m, ig_nn_flatten(1, -1));
    if (st == IG_OK) st = ig_nn_sequential_append(m, ig_nn_linear(64, classes, true));
    if (st != IG_OK) {
        ig_module_free(m);
        return NULL;
    }
    return m;
}

ig_module *ig_model_create(const char *name, int64_t channels, int64_t height, int64_t width,
                           int64_t num_classes) {
    static const char *op = "ig_model_create";
    if (!name) {
        igi_error_null(op, "name");
        return NULL;
    }
    if (channels <= 0 || height <= 0 || width <= 0 || num_classes <= 0) {
        igi_error(IG_ERR_ARG, "%s: %s needs positive sizes, got channels %lld, %lldx%lld, %lld classes", op,
                  name, (long long)channels, (long long)height, (long long)width, (long long)num_classes);
        return NULL;
    }
    if (height > (1 << 20) || width > (1 << 20) || channels > (1 << 20)) {
        igi_error(IG_ERR_ARG, "%s: %s input [%lld,%lld,%lld] is too large", op, name, (long long)channels,
                  (long long)height, (long long)width);
        return NULL;
    }
    if (strcmp(name, "mlp") == 0) return make_mlp(channels * height * width, num_classes);
    if (strcmp(name, "cnn") == 0) {
        if (height < 4 || width < 4) {
            igi_error(IG_ERR_ARG, "%s: cnn pools twice by 2 and needs at least 4x4 inputs, got %lldx%lld", op,
                      (long long)height, (long long)width);
            return NULL;
        }
        return make_cnn(channels, height, width, num_classes);
    }
    if (strcmp(name, "resnet8") == 0) return make_resnet(1, channels, num_classes);
    if (strcmp(name, "resnet20") == 0) return make_resnet(3, channels, num_classes);
    if (strcmp(name, "resnet56") == 0) return make_resnet(9, channels, num_classes);
    igi_error(IG_ERR_ARG, "%s: unknown model '%s' (known: mlp, cnn, resnet8, resnet20, resnet56)", op, name);
    return NULL;
}
