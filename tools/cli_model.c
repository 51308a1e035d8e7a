/*
 * tools/cli_model.c — what --model means: a zoo name ("cnn", "resnet20") or the path of a
 * model description file. A checkpoint stores the description (the zoo name, or the file's
 * whole text) so the model can be rebuilt without the file.
 *
 * model_build is the one place that turns a description into a module.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint_impl.h"
#include "core/tensor_impl.h"

/* Largest model description file read (a text file, one layer per line). */
#define MODEL_FILE_MAX (1 << 20)

static bool is_zoo_name(const char *s) {
    for (const char *const *n = ig_model_names(); *n; n++)
        if (strcmp(*n, s) == 0) return true;
    return false;
}

ig_status model_describe(const char *arg, char **desc) {
    *desc = NULL;
    if (is_zoo_name(arg)) {
        *desc = strdup(arg);
        return *desc ? IG_OK : igi_error(IG_ERR_NOMEM, "out of memory");
    }
    /* Not fopen: it would wait forever for a writer on a FIFO. */
    struct stat sb;
    FILE *f = igi_fopen_regular(NULL, arg, &sb);
    if (!f) {
        if (errno == 0) return igi_error(IG_ERR_IO, "cannot open model file '%s': not a regular file%s", arg, igi_file_kind(&sb));
        if (errno == ENOENT && !strchr(arg, '/') && !strchr(arg, '.')) {
            char msg[512];
            size_t k = (size_t)snprintf(msg, sizeof msg, "unknown model '%s' (zoo models:", arg);
            for (const char *const *n = ig_model_names(); *n && k < sizeof msg; n++)
                k += (size_t)snprintf(msg + k, sizeof msg - k, " %s", *n);
            return igi_error(IG_ERR_ARG, "%s; or the path of a model file)", msg);
        }
        return igi_error(IG_ERR_IO, "cannot open model file '%s': %s", arg, strerror(errno));
    }
    char *text = malloc(MODEL_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, MODEL_FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!text) return igi_error(IG_ERR_NOMEM, "out of memory");
    if (bad || n > MODEL_FILE_MAX || n == 0) {
        free(text);
        return igi_error(IG_ERR_IO, "model file '%s': %s", arg,
                         bad ? "read error" : n == 0 ? "empty" : "larger than 1 MiB");
    }
    text[n] = '\0';
    *desc = text;
    return IG_OK;
}

const char *model_short_name(const char *desc) { return is_zoo_name(desc) ? desc : "custom"; }

ig_module *model_build(const char *desc, int64_t channels, int64_t height, int64_t width,
                       int64_t num_classes) {
    if (is_zoo_name(desc)) return ig_model_create(desc, channels, height, width, num_classes);
    /* Otherwise desc is a model file's text (model_describe read it). */
    return ig_model_from_text(desc, "model file", channels, height, width, num_classes);
}
