/*
 * tools/cmd_eval.c — `ignis eval`: loads a checkpoint (validating it), runs its model over
 * the test split of a dataset and prints accuracy, top-5 accuracy (more than 5 classes),
 * per-class precision / recall / F1 and the confusion matrix.
 */
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"
#include "train_impl.h"

static void print_report(const ckpt_run *r, const eval_result *er) {
    int64_t k = r->num_classes;
    printf("loss: %.4f\n", er->n ? er->loss_sum / (double)er->n : 0.0);
    printf("accuracy: %.2f%%\n", er->n ? 100.0 * (double)er->correct / (double)er->n : 0.0);
    if (k > 5) printf("top-5 accuracy: %.2f%%\n", er->n ? 100.0 * (double)er->top5 / (double)er->n : 0.0);
    int w = 5;
    for (int64_t c = 0; c < k; c++) {
        int l = (int)strlen(r->class_names[c]);
        if (l > w) w = l;
    }
    if (w > 40) w = 40;
    printf("\n%-*s  %9s  %9s  %9s  %8s\n", w + 5, "class", "precision", "recall", "f1", "support");
    double sp = 0, sr = 0, sf = 0;
    for (int64_t c = 0; c < k; c++) {
        int64_t tp = er->confusion[c * k + c], row = 0, col = 0;
        for (int64_t j = 0; j < k; j++) row += er->confusion[c * k + j], col += er->confusion[j * k + c];
        double p = col ? (double)tp / (double)col : 0, rc = row ? (double)tp / (double)row : 0;
        double f = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
        sp += p, sr += rc, sf += f;
        printf("%3lld  %-*.*s  %8.2f%%  %8.2f%%  %8.2f%%  %8lld\n", (long long)c, w, w, r->class_names[c], 100 * p,
               100 * rc, 100 * f, (long long)row);
    }
    printf("%-*s  %8.2f%%  %8.2f%%  %8.2f%%  %8lld\n", w + 5, "macro avg", 100 * sp / (double)k, 100 * sr / (double)k,
           100 * sf / (double)k, (long long)er->n);
    /* column width: the widest count, at least the widest class index */
    int cw = 3;
    for (int64_t i = 0; i < k * k; i++) {
        int d = snprintf(NULL, 0, "%lld", (long long)er->confusion[i]);
        if (d > cw) cw = d;
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted class):\n%5s", "");
    for (int64_t j = 0; j < k; j++) printf(" %*lld", cw, (long long)j);
    printf("\n");
    for (int64_t i = 0; i < k; i++) {
        printf("%5lld", (long long)i);
        for (int64_t j = 0; j < k; j++) printf(" %*lld", cw, (long long)er->confusion[i * k + j]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *device = "cpu", *amp = "off";
    int64_t batch = 256;
    bool tf32 = false;
    const cli_option opts[] = {
        {"checkpoint", CLI_STRING, &ckpt, "FILE", "a model file written by ignis train (required)", NULL},
        {"data", CLI_STRING, &data, "DIR", "dataset folder whose test split is used (default: the training run's)", NULL},
        {"batch", CLI_INT, &batch, "N", "batch size (default 256)", NULL},
        {"device", CLI_STRING, &device, "NAME", "cpu (default) or cuda", NULL},
        {"amp", CLI_STRING, &amp, "MODE", AMP_HELP_FORWARD, NULL},
        {"tf32", CLI_FLAG, &tf32, NULL, TF32_HELP, NULL},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse("eval", "--checkpoint FILE [--data DIR] [--batch N] [--device cpu|cuda] [--amp off|bf16|fp16] [--tf32]",
                       "Evaluates a checkpoint on the test split of a dataset: accuracy, top-5 accuracy (with\n"
                       "more than 5 classes), per-class precision, recall and F1, and the confusion matrix.",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, &npos, 0);
    if (rc < 0) return EXIT_OK;
    if (rc) return rc;
    if (!ckpt) return cli_error(EXIT_USAGE, "eval: --checkpoint FILE is required");
    if (batch < 1 || batch > (1 << 20)) return cli_error(EXIT_USAGE, "eval: --batch must be in [1, 1048576]");
    ig_amp amp_mode = IG_AMP_OFF;
    if ((rc = parse_amp("eval", amp, &amp_mode))) return rc;
    ig_device dev = IG_CPU;
    if ((rc = parse_device("eval", device, &dev)) || (rc = apply_tf32("eval", tf32, dev))) return rc;

    ckpt_run r;
    ig_module *m = NULL;
    if (ckpt_load_model(ckpt, &r, &m) != IG_OK) return cli_error(EXIT_FAILED, "%s", ig_last_error());
    if (dev != IG_CPU && ig_module_to(m, dev) != IG_OK) {
        /* (the loaded run's strings are released with the process) */
        ig_module_free(m);
        return cli_error(EXIT_FAILED, "eval: --device: %s", ig_last_error());
    }
    ig_autocast_set(amp_mode); /* --amp: the forward passes of the evaluation */
    const char *dir = data ? data : r.data;
    ig_dataset *d = ig_dataset_open(dir, false);
    ig_transform *tf = normalize_transform(&r);
    eval_result er = {0};
    er.confusion = calloc((size_t)(r.num_classes * r.num_classes), sizeof(int64_t));
    rc = EXIT_OK;
    int64_t shape[3];
    if (!d) {
        rc = cli_error(EXIT_FAILED, "cannot read the test data: %s", ig_last_error());
    } else if (ig_dataset_item_shape(d, shape) != 3 || shape[0] != r.channels || shape[1] != r.height ||
               shape[2] != r.width) {
        rc = cli_error(EXIT_FAILED, "%s: the images are not %lldx%lldx%lld as the checkpoint's model expects", dir,
                       (long long)r.channels, (long long)r.height, (long long)r.width);
    } else if (!tf || !er.confusion) {
        rc = cli_error(EXIT_FAILED, "%s", tf ? "out of memory" : ig_last_error());
    } else if (evaluate(m, d, tf, batch, r.num_classes, &er) != IG_OK) {
        rc = cli_error(EXIT_FAILED, "evaluation: %s", ig_last_error());
    } else {
        printf("checkpoint: %s (model %s, epoch %lld of %lld)\n", ckpt, model_short_name(r.model), (long long)r.epoch,
               (long long)r.epochs);
        printf("data: %s (%lld test images)\n", dir, (long long)er.n);
        print_report(&r, &er);
    }
    free(er.confusion);
    ig_transform_free(tf);
    ig_dataset_free(d);
    ig_module_free(m);
    ckpt_run_free(&r);
    return rc;
}
