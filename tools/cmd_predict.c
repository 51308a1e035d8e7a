/*
 * tools/cmd_predict.c — `ignis predict`: the top classes of PNG images under a checkpoint.
 * Each image is decoded, converted to the checkpoint's channels (gray or RGB), resized to
 * its height x width if needed (bilinear), normalised with its mean/std (as in training),
 * and run through the model; the softmax probabilities of the k best classes are printed.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_impl.h"
#include "core/tensor_impl.h"
#include "data/data_impl.h"
#include "train_impl.h"

#define MAX_PNG_BYTES (256u << 20)
#define MAX_IMAGES 100000

/* Reads a whole file (at most MAX_PNG_BYTES). */
static ig_status read_file(const char *path, uint8_t **buf, size_t *len) {
    /* Not fopen: it would wait forever for a writer on a FIFO. */
    struct stat sb;
    FILE *f = igi_fopen_regular(NULL, path, &sb);
    if (!f && errno == 0) return igi_error(IG_ERR_IO, "%s: not a regular file%s", path, igi_file_kind(&sb));
    if (!f) return igi_error(IG_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap >= MAX_PNG_BYTES) break;
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb, cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) return igi_error(IG_ERR_NOMEM, "%s: out of memory", path);
    if (bad || n == cap) {
        free(b);
        return igi_error(IG_ERR_IO, "%s: %s", path, bad ? "read error" : "file too large");
    }
    *buf = b, *len = n;
    return IG_OK;
}

/* Decodes and preprocesses one image into x [1,C,H,W]. */
static ig_status load_image(const char *path, const ckpt_run *r, ig_tensor *x) {
    uint8_t *bytes = NULL, *px = NULL;
    size_t len = 0;
    uint32_t w = 0, h = 0;
    int c = (int)r->channels;
    ig_status st = read_file(path, &bytes, &len);
    if (st == IG_OK) st = igi_png_decode("ignis predict", path, bytes, len, c, &px, &w, &h);
    free(bytes);
    if (st != IG_OK) return st;
    float *in = malloc(sizeof(float) * (size_t)c * w * h);
    ig_transform *ts[2] = {NULL, normalize_transform(r)};
    bool resize = h != (uint32_t)r->height || w != (uint32_t)r->width;
    if (resize) ts[0] = ig_tf_resize((int)r->height, (int)r->width);
    ig_transform *tf = ig_tf_compose(resize ? 2 : 1, resize ? ts : ts + 1);
    if (!in || !tf) {
        st = in ? ig_last_status() : igi_error(IG_ERR_NOMEM, "%s: out of memory", path);
    } else {
        /* [h, w, c] bytes -> [c, h, w] floats in [0, 1], as the datasets give */
        for (int k = 0; k < c; k++)
            for (size_t i = 0; i < (size_t)w * h; i++) in[(size_t)k * w * h + i] = px[i * (size_t)c + (size_t)k] / 255.0f;
        st = ig_transform_apply(tf, in, c, (int)h, (int)w, ig_tensor_data(x), 0, 0, 0);
    }
    ig_transform_free(tf);
    free(in);
    free(px);
    return st;
}

int cmd_predict(int argc, char **argv) {
    const char *ckpt = NULL, *device = "cpu", *amp = "off";
    int64_t top = 5;
    bool tf32 = false;
    const cli_option opts[] = {
        {"checkpoint", CLI_STRING, &ckpt, "FILE", "a model file written by ignis train (required)", NULL},
        {"top", CLI_INT, &top, "K", "classes shown per image (default 5)", NULL},
        {"device", CLI_STRING, &device, "NAME", "cpu (default) or cuda", NULL},
        {"amp", CLI_STRING, &amp, "MODE", AMP_HELP_FORWARD, NULL},
        {"tf32", CLI_FLAG, &tf32, NULL, TF32_HELP, NULL},
    };
    char **pos = malloc(sizeof(char *) * MAX_IMAGES);
    if (!pos) return cli_error(EXIT_FAILED, "out of memory");
    int npos = 0;
    int rc = cli_parse("predict", "--checkpoint FILE [--top K] [--device cpu|cuda] [--amp off|bf16|fp16] [--tf32] IMAGE.png...",
                       "Prints the k most likely classes of each PNG image with their probabilities. Images\n"
                       "are converted to the checkpoint's channels, resized to its input size (bilinear)\n"
                       "and normalised as in training.",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, &npos, MAX_IMAGES);
    if (rc) {
        free(pos);
        return rc < 0 ? EXIT_OK : rc;
    }
    if (!ckpt) rc = cli_error(EXIT_USAGE, "predict: --checkpoint FILE is required");
    else if (npos == 0) rc = cli_error(EXIT_USAGE, "predict: no images given");
    else if (top < 1) rc = cli_error(EXIT_USAGE, "predict: --top must be >= 1");
    ig_amp amp_mode = IG_AMP_OFF;
    if (!rc) rc = parse_amp("predict", amp, &amp_mode);
    ig_device dev = IG_CPU;
    if (!rc) rc = parse_device("predict", device, &dev);
    if (!rc) rc = apply_tf32("predict", tf32, dev);
    if (rc) {
        free(pos);
        return rc;
    }
    ckpt_run r;
    ig_module *m = NULL;
    if (ckpt_load_model(ckpt, &r, &m) != IG_OK) {
        free(pos);
        return cli_error(EXIT_FAILED, "%s", ig_last_error());
    }
    if (dev != IG_CPU && ig_module_to(m, dev) != IG_OK) rc = cli_error(EXIT_FAILED, "predict: --device: %s", ig_last_error());
    if (!rc && r.channels != 1 && r.channels != 3) {
        rc = cli_error(EXIT_FAILED, "%s: the model takes %lld-channel images; PNG input needs 1 or 3", ckpt,
                       (long long)r.channels);
    }
    int64_t k = r.num_classes, shown = top < k ? top : k;
    ig_tensor *x = ig_empty(IG_DIMS(1, r.channels, r.height, r.width), IG_F32);
    double *prob = malloc(sizeof(double) * (size_t)k);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)k);
    if (!rc && (!x || !prob || !order)) rc = cli_error(EXIT_FAILED, "out of memory");
    ig_module_train(m, false);
    int bad_images = 0;
    for (int i = 0; !rc && i < npos; i++) {
        if (load_image(pos[i], &r, x) != IG_OK) {
            fflush(stdout);
            cli_error(EXIT_FAILED, "%s", ig_last_error());
            bad_images++; /* go on with the other images, fail at the end */
            continue;
        }
        ig_no_grad_begin();
        ig_scope *sc = ig_scope_begin();
        ig_amp prev = ig_autocast_set(amp_mode);
        ig_tensor *logits = host_f32(ig_module_forward(m, dev == IG_CPU ? x : ig_to(x, dev)));
        ig_autocast_set(prev);
        bool ok = logits && ig_tensor_numel(logits) == k;
        if (ok) {
            const float *z = ig_tensor_data(logits);
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < k; j++) mx = fmax(mx, z[j]);
            for (int64_t j = 0; j < k; j++) sum += prob[j] = exp(z[j] - mx);
            for (int64_t j = 0; j < k; j++) prob[j] /= sum, order[j] = j;
        }
        ig_scope_end(sc);
        ig_no_grad_end();
        if (!ok) {
            rc = cli_error(EXIT_FAILED, "%s: the model failed: %s", pos[i], ig_last_error());
            break;
        }
        /* partial selection sort: the best `shown` first, ties by class index */
        for (int64_t a = 0; a < shown; a++)
            for (int64_t b = a + 1; b < k; b++)
                if (prob[order[b]] > prob[order[a]]) {
                    int64_t tmp = order[a];
                    order[a] = order[b], order[b] = tmp;
                }
        printf("%s\n", pos[i]);
        for (int64_t a = 0; a < shown; a++)
            printf("  %6.2f%%  %s\n", 100 * prob[order[a]], r.class_names[order[a]]);
        fflush(stdout);
    }
    if (!rc && bad_images) rc = EXIT_FAILED;
    ig_tensor_free(x);
    free(prob);
    free(order);
    free(pos);
    ig_module_free(m);
    ckpt_run_free(&r);
    return rc;
}
