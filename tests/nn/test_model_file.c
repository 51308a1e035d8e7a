/*
 * tests/nn/test_model_file.c — plain-text model descriptions (nn/model_file.c): the README's
 * cnn description gives the zoo cnn (same state-dict names, shapes, order, and with the same
 * seed the same weights), a resnet20 description the zoo resnet20; shapes tracked through
 * strides, padding, dilation, groups, ceil-mode pooling and adaptive pooling (checked by
 * hand and by running a forward); comments, blank lines, tabs and CRLF; every error message
 * with its source and line; the size limits (a layer's parameters, bn included, and 1 MiB of
 * text); ig_model_from_file and ig_model_build, which refuse a FIFO without waiting on it.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test_util.h"
#include "ignis.h"

/* The README's "Model files" example. */
static const char *cnn_text =
    "# The zoo's cnn, layer by layer (README.md, Model files)\n"
    "conv 32 3 pad=1      # 0: Conv2d(in, 32, 3, padding=1)\n"
    "relu\n"
    "maxpool 2\n"
    "conv 64 3 pad=1\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "linear 128           # in-features 64*7*7 inferred\n"
    "relu\n"
    "linear classes\n";

static const char *resnet20_text =
    "conv 16 3 pad=1 bias=0\nbn\nrelu\n"
    "block 16\nblock 16\nblock 16\n"
    "block 32 stride=2\nblock 32\nblock 32\n"
    "block 64 stride=2\nblock 64\nblock 64\n"
    "adaptive_avgpool 1\nflatten\nlinear classes\n";

/* Asserts that a and b have the same state dict: names, shapes, dtypes, order; and, when
 * values is set, the same values. */
static void assert_same_state_dict(ig_module *a, ig_module *b, bool values) {
    int na = ig_module_state_dict(a, NULL, 0), nb = ig_module_state_dict(b, NULL, 0);
    cr_assert_gt(na, 0);
    cr_assert_eq(na, nb, "%d entries vs %d", na, nb);
    ig_named_tensor *ea = calloc((size_t)na, sizeof *ea), *eb = calloc((size_t)nb, sizeof *eb);
    cr_assert_eq(ig_module_state_dict(a, ea, na), na);
    cr_assert_eq(ig_module_state_dict(b, eb, nb), nb);
    for (int i = 0; i < na; i++) {
        cr_assert_str_eq(ea[i].name, eb[i].name, "entry %d", i);
        int nd = ig_tensor_ndim(ea[i].tensor);
        cr_assert_eq(nd, ig_tensor_ndim(eb[i].tensor), "%s", ea[i].name);
        for (int d = 0; d < nd; d++)
            cr_assert_eq(ig_tensor_shape(ea[i].tensor)[d], ig_tensor_shape(eb[i].tensor)[d], "%s dim %d", ea[i].name, d);
        cr_assert_eq(ig_tensor_dtype(ea[i].tensor), ig_tensor_dtype(eb[i].tensor), "%s", ea[i].name);
        if (values)
            for (int64_t k = 0; k < ig_tensor_numel(ea[i].tensor); k++)
                cr_assert_eq(ig_tensor_get(ea[i].tensor, k), ig_tensor_get(eb[i].tensor, k), "%s[%lld]", ea[i].name,
                             (long long)k);
    }
    free(ea);
    free(eb);
}

Test(nn, model_file_cnn_matches_zoo) {
    ig_manual_seed(7);
    ig_module *zoo = ig_model_create("cnn", 1, 28, 28, 10);
    ig_manual_seed(7);
    ig_module *txt = ig_model_from_text(cnn_text, "cnn.txt", 1, 28, 28, 10);
    cr_assert_not_null(txt, "%s", ig_last_error());
    assert_same_state_dict(zoo, txt, true);
    cr_assert_eq(ig_module_num_params(txt), 421642); /* 320 + 18496 + 401536 + 1290 */
    cr_assert_str_eq(ig_module_type(ig_module_child(txt, "7")), "Linear");
    ig_module_free(zoo);
    ig_module_free(txt);
    /* Other sizes: 3x32x32 with 100 classes. */
    zoo = ig_model_create("cnn", 3, 32, 32, 100);
    txt = ig_model_from_text(cnn_text, NULL, 3, 32, 32, 100);
    cr_assert_not_null(txt, "%s", ig_last_error());
    assert_same_state_dict(zoo, txt, false);
    ig_module_free(zoo);
    ig_module_free(txt);
}

Test(nn, model_file_resnet20_matches_zoo) {
    ig_module *zoo = ig_model_create("resnet20", 3, 32, 32, 10);
    ig_module *txt = ig_model_from_text(resnet20_text, "r20.txt", 3, 32, 32, 10);
    cr_assert_not_null(txt, "%s", ig_last_error());
    assert_same_state_dict(zoo, txt, false);
    ig_module_free(zoo);
    ig_module_free(txt);
}

Test(nn, model_file_shape_tracking) {
    /* 1x28x28 -> conv 8 3 stride 2 pad 1: (28+2-3)/2+1 = 14 -> [8,14,14]
     * conv 16 3x1 dilation=2 groups=4 pad=0x1: h (14-2*2-1)/1+1 = 10, w (14+2-0-1)+1 = 16 -> [16,10,16]
     * maxpool 3 stride=2 ceil=1: h ceil((10-3)/2)+1 = 5 ((5-1)*2=8 < 10, kept), w ceil(13/2)+1 = 8
     *   ((8-1)*2 = 14 >= 16? no, kept) -> [16,5,8]
     * avgpool 2 pad=1: h (5+2-2)/2+1 = 3, w (8+2-2)/2+1 = 5 -> [16,3,5]
     * adaptive_avgpool 2 3 -> [16,2,3]; flatten -> [96]; bn -> BatchNorm1d(96);
     * layernorm -> [96]; linear 20 bias=0 -> [20]; gelu; dropout 0.1; linear classes -> [5] */
    const char *text = "conv 8 3 stride=2 pad=1\n"
                       "conv 16 3x1 dilation=2 groups=4 pad=0x1\n"
                       "\tleaky_relu 0.2\r\n"
                       "maxpool 3 stride=2 ceil=1\n"
                       "avgpool 2 pad=1\n"
                       "\n   # nothing here\n"
                       "adaptive_avgpool 2 3\n"
                       "flatten\nbn\nlayernorm eps=1e-6\nlinear 20 bias=0\ngelu\ndropout 0.1\nlinear classes\n";
    ig_module *m = ig_model_from_text(text, NULL, 1, 28, 28, 5);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_eq(ig_module_num_children(m), 13);
    static const char *const types[13] = {"Conv2d", "Conv2d", "LeakyReLU", "MaxPool2d", "AvgPool2d",
                                          "AdaptiveAvgPool2d", "Flatten", "BatchNorm1d", "LayerNorm", "Linear",
                                          "GELU", "Dropout", "Linear"};
    for (int i = 0; i < 13; i++) cr_assert_str_eq(ig_module_type(ig_module_child_at(m, i)), types[i], "layer %d", i);
    ig_tensor *w1 = ig_module_get(m, "1.weight");
    cr_assert_not_null(w1);
    int64_t want_w1[4] = {16, 2, 3, 1}; /* [out, in/groups, kh, kw] */
    for (int d = 0; d < 4; d++) cr_assert_eq(ig_tensor_shape(w1)[d], want_w1[d]);
    cr_assert_eq(ig_tensor_size(ig_module_get(m, "7.running_mean"), 0), 96);
    cr_assert_eq(ig_tensor_size(ig_module_get(m, "8.weight"), 0), 96);
    cr_assert_eq(ig_tensor_size(ig_module_get(m, "9.weight"), 1), 96);
    cr_assert_null(ig_module_get(m, "9.bias"));
    cr_assert_eq(ig_tensor_size(ig_module_get(m, "12.weight"), 0), 5);
    /* The tracked shapes agree with the layers: a real forward of 2 images gives [2,5]. */
    ig_scope *s = ig_scope_begin();
    ig_module_train(m, false);
    ig_tensor *y = ig_module_forward(m, ig_randn(IG_DIMS(2, 1, 28, 28), IG_F32));
    cr_assert_not_null(y, "%s", ig_last_error());
    cr_assert_eq(ig_tensor_ndim(y), 2);
    cr_assert_eq(ig_tensor_size(y, 0), 2);
    cr_assert_eq(ig_tensor_size(y, 1), 5);
    ig_scope_end(s);
    ig_module_free(m);
}

Test(nn, model_file_image_layers_and_bn2d) {
    /* bn on an image is BatchNorm2d over channels; a conv to 'classes' channels then global
     * pooling is a valid classifier head. */
    ig_module *m = ig_model_from_text("conv 4 1\nbn\nsilu\nconv classes 1\nadaptive_avgpool 1\nflatten\nsoftmax\n",
                                      "head.txt", 2, 5, 5, 3);
    cr_assert_not_null(m, "%s", ig_last_error());
    cr_assert_str_eq(ig_module_type(ig_module_child(m, "1")), "BatchNorm2d");
    cr_assert_eq(ig_tensor_size(ig_module_get(m, "1.running_var"), 0), 4);
    cr_assert_eq(ig_tensor_size(ig_module_get(m, "3.weight"), 0), 3);
    ig_model_stats st;
    cr_assert_eq(ig_model_summary(m, 2, 5, 5, NULL, &st), IG_OK, "%s", ig_last_error());
    cr_assert_eq(st.params, 4 * 2 + 4 + 8 + 3 * 4 + 3);
    ig_module_free(m);
}

/* Builds text and asserts failure with a message containing each of the needles. */
static void expect_error(const char *text, int64_t classes, const char *const *needles) {
    ig_module *m = ig_model_from_text(text, "net.txt", 1, 28, 28, classes);
    cr_assert_null(m, "built: %s", text);
    for (; *needles; needles++)
        cr_assert(strstr(ig_last_error(), *needles), "'%s' not in: %s", *needles, ig_last_error());
}

#define EXPECT_ERROR(text, ...) expect_error(text, 10, (const char *const[]){"ig_model_from_text", __VA_ARGS__, NULL})

Test(nn, model_file_errors) {
    EXPECT_ERROR("conv 8 3\n\n# c\nconvv 8 3\n", "net.txt:4: unknown layer 'convv'");
    EXPECT_ERROR("conv 32 3\nlinear 10\n", "net.txt:2:", "linear", "flatten", "[32,26,26]");
    EXPECT_ERROR("flatten\nconv 8 3\n", "net.txt:2:", "conv needs an image input", "[784]");
    EXPECT_ERROR("flatten\nmaxpool 2\n", "net.txt:2:", "maxpool needs an image");
    EXPECT_ERROR("conv abc 3\n", "net.txt:1:", "OUT 'abc'");
    EXPECT_ERROR("conv 0 3\n", "net.txt:1:", "OUT '0'");
    EXPECT_ERROR("conv 8 3.5\n", "net.txt:1:", "K '3.5'");
    EXPECT_ERROR("conv 8 3x\n", "net.txt:1:", "K '3x'");
    EXPECT_ERROR("conv 8 3 stride=0\n", "stride '0'");
    EXPECT_ERROR("conv 8 3 pad=-1\n", "pad '-1'");
    EXPECT_ERROR("conv 8 99999999999999999999\n", "K '99999999999999999999'");
    EXPECT_ERROR("conv 8 3 bias=yes\n", "bias 'yes' must be 0 or 1");
    EXPECT_ERROR("conv 32\n", "net.txt:1:", "conv: missing argument", "usage: conv OUT K");
    EXPECT_ERROR("relu 3\n", "relu: unexpected argument '3'");
    EXPECT_ERROR("conv 8 3 strde=2\n", "conv: unknown option 'strde'");
    EXPECT_ERROR("conv 8 3 pad=1 pad=2\n", "option 'pad' given twice");
    EXPECT_ERROR("conv 8 3 pad=\n", "option 'pad' has no value");
    EXPECT_ERROR("conv 6 3 groups=4\n", "groups=4 must divide");
    EXPECT_ERROR("conv 8 29\n", "conv: kernel 29x29", "[1,28,28]");
    EXPECT_ERROR("maxpool 29\n", "maxpool: kernel 29x29 does not fit");
    EXPECT_ERROR("maxpool 2 pad=2\n", "more than half the kernel");
    EXPECT_ERROR("flatten\ndropout 1.5\n", "net.txt:2:", "P '1.5'");
    EXPECT_ERROR("flatten\nleaky_relu x\n", "SLOPE 'x'");
    EXPECT_ERROR("adaptive_avgpool 0\n", "adaptive_avgpool: the output size '0'");
    EXPECT_ERROR("block 16 stride=0\n", "block: stride '0'");
    EXPECT_ERROR("flatten\nlinear 99999999\n", "OUT '99999999'");
    EXPECT_ERROR("flatten\nlinear 1048576\nlinear 1048576\n", "net.txt:3:", "parameters, more than");
    EXPECT_ERROR("", "net.txt: no layers");
    EXPECT_ERROR("# only a comment\n\n   \n", "no layers");
    EXPECT_ERROR("conv 8 3\n", "net.txt:1:", "output is [8,26,26]", "flatten");
    EXPECT_ERROR("flatten\nlinear 7\n# end\n", "net.txt:2:", "output is [7]", "'linear classes'");
    EXPECT_ERROR("a b c d e f g h i j k l m n o p q\n", "too many words");
    cr_assert_null(ig_model_from_text("flatten\nlinear classes\n", "net.txt", 0, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_from_text") && strstr(ig_last_error(), "sizes"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_model_from_text(NULL, "net.txt", 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_from_text"), "%s", ig_last_error());
    /* The default source name. */
    cr_assert_null(ig_model_from_text("bogus\n", NULL, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "<text>:1: unknown layer 'bogus'"), "%s", ig_last_error());
}

/* The limits hold for every layer and for text as for files (regressions; fuzz_model's
 * review found both). */
Test(nn, model_file_limits) {
    /* bn after a flatten of [2,1048576,1024]: BatchNorm1d(2^31) would be 2^32 parameters
     * (and 32 GB with its running stats); it used to be built without the limit check. */
    ig_clear_error();
    cr_assert_null(ig_model_from_text("adaptive_avgpool 1048576 1024\nflatten\nbn\n", "net.txt", 2, 28, 28, 10));
    ASSERT_ERR(IG_ERR_SHAPE, "ig_model_from_text: net.txt:3: bn: the layer would have 4294967296 parameters");
    /* bn on images counts channels: fine at any image size. */
    ig_module *m = ig_model_from_text("adaptive_avgpool 1048576 1024\nconv 4 1\nbn\nadaptive_avgpool 1\nflatten\n"
                                      "linear classes\n", "net.txt", 2, 28, 28, 10);
    cr_assert_not_null(m, "%s", ig_last_error());
    ig_module_free(m);

    /* Text: at most 1 MiB, like a file (the line counter is an int). A valid description
     * padded by a comment to 1 MiB builds; one byte more is refused, whatever it holds. */
    size_t cap = (size_t)1 << 20;
    char *text = malloc(cap + 2);
    cr_assert_not_null(text);
    const char *head = "flatten\nlinear classes\n#";
    memcpy(text, head, strlen(head));
    memset(text + strlen(head), ' ', cap - strlen(head));
    text[cap] = '\0';
    m = ig_model_from_text(text, "big.txt", 1, 28, 28, 10);
    cr_assert_not_null(m, "%s", ig_last_error());
    ig_module_free(m);
    text[cap] = ' ';
    text[cap + 1] = '\0';
    ig_clear_error();
    cr_assert_null(ig_model_from_text(text, "big.txt", 1, 28, 28, 10));
    ASSERT_ERR(IG_ERR_FORMAT, "ig_model_from_text: big.txt: larger than 1048576 bytes");
    ig_clear_error();
    cr_assert_null(ig_model_from_text(text, NULL, 1, 28, 28, 10));
    ERR_HAS("<text>: larger than");
    free(text);
}

/* Writes text to dir/name, the path going to path[512]; returns path. */
static const char *write_file(char *path, const char *dir, const char *name, const char *text, size_t len) {
    snprintf(path, 512, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

Test(nn, model_file_from_file_and_build) {
    char dir[] = "/tmp/ignis-model-file.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cnn_path[512], bad[512], nul[512], empty[512];
    write_file(cnn_path, dir, "cnn.txt", cnn_text, strlen(cnn_text));
    ig_module *m = ig_model_from_file(cnn_path, 1, 28, 28, 10);
    cr_assert_not_null(m, "%s", ig_last_error());
    ig_module *zoo = ig_model_create("cnn", 1, 28, 28, 10);
    assert_same_state_dict(zoo, m, false);
    ig_module_free(m);
    /* ig_model_build: a zoo name, then a path. */
    m = ig_model_build("cnn", 1, 28, 28, 10);
    cr_assert_not_null(m, "%s", ig_last_error());
    assert_same_state_dict(zoo, m, false);
    ig_module_free(m);
    m = ig_model_build(cnn_path, 1, 28, 28, 10);
    cr_assert_not_null(m, "%s", ig_last_error());
    assert_same_state_dict(zoo, m, false);
    ig_module_free(m);
    ig_module_free(zoo);

    /* Errors name the file. */
    write_file(bad, dir, "net.txt", "conv 8 3\nconvv\n", 15);
    cr_assert_null(ig_model_from_file(bad, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_from_file") && strstr(ig_last_error(), "net.txt:2: unknown layer 'convv'"),
              "%s", ig_last_error());
    write_file(nul, dir, "nul.txt", "relu\0flatten\n", 13);
    cr_assert_null(ig_model_from_file(nul, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "nul.txt") && strstr(ig_last_error(), "NUL byte"), "%s", ig_last_error());
    write_file(empty, dir, "empty.txt", "", 0);
    cr_assert_null(ig_model_from_file(empty, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "empty.txt: no layers"), "%s", ig_last_error());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.txt", dir);
    cr_assert_null(ig_model_from_file(missing, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_from_file") && strstr(ig_last_error(), "missing.txt: cannot open"),
              "%s", ig_last_error());
    cr_assert_null(ig_model_build(missing, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "missing.txt: cannot open"), "%s", ig_last_error());
    cr_assert_null(ig_model_from_file(dir, 1, 28, 28, 10)); /* a folder */
    cr_assert(strstr(ig_last_error(), "ig_model_from_file") && strstr(ig_last_error(), dir), "%s", ig_last_error());
    cr_assert_null(ig_model_build("vgg16", 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_build") && strstr(ig_last_error(), "'vgg16'"), "%s", ig_last_error());
    ig_clear_error(); /* a NULL argument keeps an earlier message */
    cr_assert_null(ig_model_from_file(NULL, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_from_file"), "%s", ig_last_error());
    ig_clear_error();
    cr_assert_null(ig_model_build(NULL, 1, 28, 28, 10));
    cr_assert(strstr(ig_last_error(), "ig_model_build"), "%s", ig_last_error());

    unlink(cnn_path);
    unlink(bad);
    unlink(nul);
    unlink(empty);
    cr_assert_eq(rmdir(dir), 0);
}

/* Asserts the last error names op, the path and a FIFO. */
static void expect_fifo_error(const char *op, const char *path) {
    cr_assert_eq(ig_last_status(), IG_ERR_IO, "%s", ig_last_error());
    char want[700];
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    cr_assert(strstr(ig_last_error(), op) && strstr(ig_last_error(), want), "%s", ig_last_error());
}

/* A FIFO given as the model file: fopen() waited for a writer, forever (alarm() turns that
 * hang into a failure). Both readers refuse it at once and name it; ig_model_build reads
 * a bare word that exists (here a FIFO in the working folder) as a file, so the message
 * says what is wrong with it, while a bare word that names nothing is still a mistyped
 * zoo name. */
Test(nn, model_file_refuses_a_fifo) {
    char dir[256], p[600], cwd[1024];
    make_tmpdir(dir);
    snprintf(p, sizeof p, "%s/net.txt", dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    alarm(10);
    cr_assert_null(ig_model_from_file(p, 1, 28, 28, 10));
    expect_fifo_error("ig_model_from_file", p);
    cr_assert_null(ig_model_build(p, 1, 28, 28, 10));
    expect_fifo_error("ig_model_from_file", p);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(mkfifo("mynet", 0600), 0);
    cr_assert_null(ig_model_build("mynet", 1, 28, 28, 10));
    expect_fifo_error("ig_model_from_file", "mynet");
    cr_assert_null(ig_model_build("mynett", 1, 28, 28, 10));
    cr_assert_eq(ig_last_status(), IG_ERR_ARG);
    cr_assert(strstr(ig_last_error(), "ig_model_build: 'mynett' is neither a zoo model"), "%s", ig_last_error());
    cr_assert_eq(chdir(cwd), 0);
    alarm(0);
    rm_tree(dir);
}
