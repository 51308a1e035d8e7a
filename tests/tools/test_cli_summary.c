/*
 * tests/tools/test_cli_summary.c — `ignis summary` run as a program: the table for zoo
 * models and for a model file (totals worked out by hand below), sizes from flags, help,
 * and each error with its exit status (1 runtime, 2 usage) and message. Also the
 * dispatcher's own usage errors.
 *
 * cnn on [1,28,28], 10 classes: params 32*9+32 = 320, 64*32*9+64 = 18496,
 * 128*3136+128 = 401536, 10*128+10 = 1290: total 421642. FLOPs (a multiply-add is 2;
 * conv/linear out*(2*fan_in+1), relu and pools 1 per output): conv1 25088*19 = 476672,
 * relu 25088, pool 6272, conv2 12544*577 = 7237888, relu 12544, pool 3136,
 * linear 128*6273 = 802944, relu 128, linear 10*257 = 2570: total 8567242.
 */
#include <sys/stat.h>

#include "cli_run.h"

static const char *cnn_file =
    "# the zoo cnn\n"
    "conv 32 3 pad=1\nrelu\nmaxpool 2\n"
    "conv 64 3 pad=1\nrelu\nmaxpool 2\n"
    "flatten\nlinear 128\nrelu\nlinear classes\n";

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

Test(tools, summary_zoo_cnn_defaults) {
    cli_result r = cli_run((const char *const[]){"summary", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "model: cnn, input [1,28,28], 10 classes"), "%s", r.out);
    cr_assert(strstr(r.out, "total params: 421642"), "%s", r.out);
    cr_assert(strstr(r.out, "FLOPs per image: 8567242"), "%s", r.out);
    cr_assert(strstr(r.out, "[1,64,7,7]") && strstr(r.out, "[1,3136]") && strstr(r.out, "401536"), "%s", r.out);
    cr_assert_str_empty(r.err);
    cli_result_free(&r);
}

Test(tools, summary_sizes_and_model_file) {
    CLI_EXPECT(0, "total params: 421642", NULL, "summary", "--model", "cnn");
    /* 3x32x32, 100 classes: the first Linear takes 64*8*8 = 4096 features. */
    CLI_EXPECT(0, "[1,4096]", NULL, "summary", "--model=cnn", "--channels", "3", "--height=32", "--width", "32",
               "--classes", "100");
    CLI_EXPECT(0, "[1,100]", NULL, "summary", "--model=cnn", "--channels", "3", "--height=32", "--width", "32",
               "--classes", "100");
    /* resnet8 on CIFAR sizes: the shortcut of the first stride-2 block is listed. */
    CLI_EXPECT(0, "4.sc.0", NULL, "summary", "--model", "resnet8", "--channels", "3", "--height", "32", "--width", "32");

    char dir[] = "/tmp/ignis-cli-summary.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/cnn.txt", dir);
    write_text(path, cnn_file);
    cli_result r = cli_run((const char *const[]){"summary", "--model", path, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "total params: 421642") && strstr(r.out, "FLOPs per image: 8567242"), "%s", r.out);
    cr_assert(strstr(r.out, "7      Linear"), "%s", r.out);
    cli_result_free(&r);

    /* A bad model file: exit 1, the file and line in the message. */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/net.txt", dir);
    write_text(bad, "conv 32 3\n\nconvv 3\n");
    CLI_EXPECT(1, NULL, "net.txt:3: unknown layer 'convv'", "summary", "--model", bad);
    write_text(bad, "conv 32 3\nlinear 10\n");
    CLI_EXPECT(1, NULL, "needs 'flatten' first", "summary", "--model", bad);
    unlink(path);
    unlink(bad);
    rmdir(dir);
}

Test(tools, summary_errors) {
    CLI_EXPECT(1, NULL, "ignis: error: ig_model_build: 'vgg' is neither a zoo model", "summary", "--model", "vgg");
    CLI_EXPECT(1, NULL, "missing.txt: cannot open", "summary", "--model", "/tmp/ignis-no-such-dir/missing.txt");
    CLI_EXPECT(2, NULL, "summary: --height: 'x' is not an integer", "summary", "--height", "x");
    CLI_EXPECT(2, NULL, "summary: --channels: 0 is not in 1..65536", "summary", "--channels", "0");
    CLI_EXPECT(2, NULL, "--classes: -3 is not in", "summary", "--classes=-3");
    CLI_EXPECT(2, NULL, "summary: unknown option '--bogus'", "summary", "--bogus");
    CLI_EXPECT(2, NULL, "summary: --model needs a value", "summary", "--model");
    CLI_EXPECT(2, NULL, "summary: unexpected argument 'cnn'", "summary", "cnn");
    CLI_EXPECT(2, NULL, "summary: --model: empty value", "summary", "--model=");
    /* A model that does not fit the input: the model builder refuses it (exit 1). */
    CLI_EXPECT(1, NULL, "ig_model_create", "summary", "--height", "3");
}

Test(tools, summary_help_and_dispatcher) {
    cli_result r = cli_run((const char *const[]){"summary", "--help", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "usage: ignis summary") && strstr(r.out, "--model NAME|FILE") &&
              strstr(r.out, "--channels C"), "%s", r.out);
    cr_assert_str_empty(r.err);
    cli_result_free(&r);
    CLI_EXPECT(0, "summary", NULL, "--help");
    CLI_EXPECT(0, "convert", NULL, "--help");
    CLI_EXPECT(2, NULL, "ignis: error: unknown command 'summarize'", "summarize");
    CLI_EXPECT(2, NULL, "ignis: error: unknown option '--bogus'", "--bogus");
    CLI_EXPECT(0, "ignis ", NULL, "--version");
}
