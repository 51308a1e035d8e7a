/*
 * tools/cmd_summary.c — `ignis summary`: a model's layers, output shapes, parameters and
 * FLOPs per image, for a zoo name or a plain-text model file (ig_model_build), on an input
 * of the given size. Nothing is trained or read besides the model file.
 */
#include <ignis.h>
#include <string.h>

#include "cli_impl.h"

int cmd_summary(int argc, char **argv) {
    const char *model = "cnn";
    int64_t channels = 1, height = 28, width = 28, classes = 10;
    const cli_option opts[] = {
        {"model", CLI_STRING, &model, "NAME|FILE", "a zoo model (mlp, cnn, resnet8, resnet20, resnet56) or a model file "
                                                    "(README: Model files); default cnn", NULL},
        {"channels", CLI_INT, &channels, "C", "input channels (default 1)", NULL},
        {"height", CLI_INT, &height, "H", "input height (default 28)", NULL},
        {"width", CLI_INT, &width, "W", "input width (default 28)", NULL},
        {"classes", CLI_INT, &classes, "K", "number of classes (default 10)", NULL},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("summary", "[--model NAME|FILE] [--channels C] [--height H] [--width W] [--classes K]",
                       "Prints each layer of a model with its output shape and parameter count, then the\n"
                       "total parameters and the forward FLOPs for one image (a multiply-add counts 2).",
                       argc, argv, opts, nopts, NULL, NULL, 0);
    if (rc < 0) return EXIT_OK;
    if (rc) return rc;
    const struct {
        const char *name;
        int64_t v;
    } sizes[] = {{"channels", channels}, {"height", height}, {"width", width}, {"classes", classes}};
    for (int i = 0; i < 4; i++)
        if (sizes[i].v < 1 || sizes[i].v > 65536)
            return cli_error(EXIT_USAGE, "summary: --%s: %lld is not in 1..65536", sizes[i].name,
                             (long long)sizes[i].v);
    ig_module *m = ig_model_build(model, channels, height, width, classes);
    if (!m) return cli_error(EXIT_FAILED, "%s", ig_last_error());
    printf("model: %s, input [%lld,%lld,%lld], %lld classes\n\n", model, (long long)channels, (long long)height,
           (long long)width, (long long)classes);
    ig_status st = ig_model_summary(m, channels, height, width, stdout, NULL);
    ig_module_free(m);
    if (st != IG_OK) return cli_error(EXIT_FAILED, "%s", ig_last_error());
    return fflush(stdout) == 0 ? EXIT_OK : cli_error(EXIT_FAILED, "summary: cannot write the output");
}
