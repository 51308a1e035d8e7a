/*
 * tests/core/test_locale.c — numbers read and written by ignis do not depend on the host's
 * locale. A host program may call setlocale(LC_ALL, "") under de_DE.UTF-8, whose decimal
 * separator is ','; then plain strtod("1.5") stops at the '.' and "%g" writes "0,1". Each
 * test switches its own thread to a decimal-comma locale with uselocale (Criterion runs
 * every test in its own process, so nothing leaks into other tests) and checks a CSV
 * dataset, a model description, a transform spec, the optimizer description that goes into
 * checkpoint metadata (and the metadata bytes of a saved file), tensor printing and an
 * error message. No comma locale installed: one is compiled with localedef into a private
 * folder (LOCPATH), without network or packages; if that is impossible too, the tests skip
 * and say which locale is missing.
 */
#include <fcntl.h>
#include <locale.h>
#include <spawn.h>
#include <sys/wait.h>

#include "../test_util.h"

/* Under AddressSanitizer: glibc's newlocale keeps a copy of LOCPATH that freelocale never
 * frees (39 bytes from argz_add_sep); that allocation is glibc's, not ignis's, so it is
 * made with LeakSanitizer off. */
#if IG_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON() __lsan_enable()
#else
#define LSAN_OFF() ((void)0)
#define LSAN_ON() ((void)0)
#endif

extern char **environ;

/* A decimal-comma locale in use on this thread, and what to undo at the end. */
typedef struct comma_locale {
    locale_t loc;
    locale_t prev;
    char dir[256]; /* the localedef output folder, or "" */
} comma_locale;

/* Whether loc really writes 1.5 as "1,5" (some installs alias de_DE to C). */
static bool is_comma(locale_t loc) {
    locale_t prev = uselocale(loc);
    char b[16];
    snprintf(b, sizeof b, "%g", 1.5);
    uselocale(prev);
    return strcmp(b, "1,5") == 0;
}

static locale_t try_installed(void) {
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8",
                                        "nl_NL.UTF-8", "es_ES.UTF-8", "de_DE", "fr_FR"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        locale_t l = newlocale(LC_ALL_MASK, names[i], (locale_t)0);
        if (l && is_comma(l)) return l;
        if (l) freelocale(l);
    }
    return (locale_t)0;
}

/* Compiles de_DE.UTF-8 from the system's locale sources into dir (glibc's localedef); the
 * locale, or 0 when localedef or the sources are missing. */
static locale_t try_localedef(char dir[256]) {
    make_tmpdir(dir);
    char out[300];
    snprintf(out, sizeof out, "%s/de_DE.UTF-8", dir);
    char *argv[] = {"localedef", "-i", "de_DE", "-f", "UTF-8", out, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int status = 0;
    /* localedef exits 1 for mere warnings; whether newlocale then finds it is what counts */
    if (posix_spawnp(&pid, "localedef", &fa, NULL, argv, environ) == 0) waitpid(pid, &status, 0);
    posix_spawn_file_actions_destroy(&fa);
    setenv("LOCPATH", dir, 1); /* newlocale reads LOCPATH on each call */
    LSAN_OFF();
    locale_t l = newlocale(LC_ALL_MASK, "de_DE.UTF-8", (locale_t)0);
    LSAN_ON();
    if (l && is_comma(l)) return l;
    if (l) freelocale(l);
    return (locale_t)0;
}

/* Switches this thread to a decimal-comma locale, or skips the test. */
static void comma_begin(comma_locale *c) {
    c->dir[0] = '\0';
    c->loc = try_installed();
    if (!c->loc) c->loc = try_localedef(c->dir);
    if (!c->loc) {
        rm_tree(c->dir);
        cr_skip_test("no decimal-comma locale: de_DE.UTF-8 / fr_FR.UTF-8 are not installed and localedef "
                     "could not build de_DE.UTF-8 (install the 'locales' package and generate de_DE.UTF-8)");
    }
    c->prev = uselocale(c->loc);
    /* the test's own premise: plain printf now writes a comma */
    char b[16];
    snprintf(b, sizeof b, "%.1f", 0.5);
    cr_assert_str_eq(b, "0,5");
}

static void comma_end(comma_locale *c) {
    /* the library's calls left this thread's locale as they found it */
    char b[16];
    snprintf(b, sizeof b, "%.1f", 0.5);
    cr_assert_str_eq(b, "0,5");
    uselocale(c->prev);
    freelocale(c->loc);
    if (c->dir[0]) rm_tree(c->dir);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

Test(core, locale_csv_features_parse_with_a_dot) {
    comma_locale c;
    comma_begin(&c);
    char dir[256], path[300];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/d.csv", dir);
    write_text(path, "a,b,label\n1.5,-2.25,1\n0.125,3e-1,0\n");
    ig_dataset *d = ig_dataset_csv(path, -1, true);
    cr_assert_not_null(d, "%s", ig_last_error());
    cr_assert_eq(ig_dataset_len(d), 2);
    static const float want[2][2] = {{1.5f, -2.25f}, {0.125f, 0.3f}};
    static const int64_t want_label[2] = {1, 0};
    for (int64_t i = 0; i < 2; i++) {
        float x[2];
        int64_t label = -1;
        cr_assert_eq(ig_dataset_get(d, i, x, &label), IG_OK, "%s", ig_last_error());
        cr_assert_eq(x[0], want[i][0], "row %lld: %g", (long long)i, (double)x[0]);
        cr_assert_eq(x[1], want[i][1], "row %lld: %g", (long long)i, (double)x[1]);
        cr_assert_eq(label, want_label[i]);
    }
    ig_dataset_free(d);
    rm_tree(dir);
    comma_end(&c);
}

Test(core, locale_model_description_and_transform_spec_parse) {
    comma_locale c;
    comma_begin(&c);
    /* [1,1,3] image -> flatten [3] -> leaky_relu slope 0.25 -> dropout (eval: identity) */
    ig_module *m = ig_model_from_text("flatten\nleaky_relu 0.25\ndropout 0.5\n", "net.txt", 1, 1, 3, 3);
    cr_assert_not_null(m, "%s", ig_last_error());
    ig_module_train(m, false);
    ig_scope *s = ig_scope_begin();
    const float xin[3] = {-2.0f, 1.0f, -4.0f};
    ig_tensor *y = ig_module_forward(m, ig_from_data(IG_DIMS(1, 1, 1, 3), IG_F32, xin));
    cr_assert_not_null(y, "%s", ig_last_error());
    const double want[3] = {-0.5, 1.0, -1.0}; /* x < 0: 0.25 x */
    for (int i = 0; i < 3; i++) cr_assert_eq(ig_tensor_get(y, i), want[i], "element %d", i);
    ig_scope_end(s);
    ig_module_free(m);
    ig_transform *t = ig_tf_parse("jitter:0.3,erase:0.5", 3, 8, 8);
    cr_assert_not_null(t, "%s", ig_last_error());
    ig_transform_free(t);
    assert_no_live_bytes();
    comma_end(&c);
}

Test(core, locale_optimizer_metadata_is_written_with_a_dot) {
    comma_locale c;
    comma_begin(&c);
    ig_scope *s = ig_scope_begin();
    ig_tensor *p = ig_keep(ig_zeros(IG_DIMS(1, 2), IG_F32));
    ig_scope_end(s);
    cr_assert_eq(ig_set_requires_grad(p, true), IG_OK);
    ig_sgd_opts o = ig_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 1.0 / 3.0; /* needs 17 digits: the %.15g / strtod round trip */
    ig_optimizer *opt = ig_optim_sgd(&p, 1, &o);
    cr_assert_not_null(opt, "%s", ig_last_error());
    char desc[256];
    cr_assert_eq(ig_optim_describe(opt, desc, sizeof desc), IG_OK);
    const char *want = "lr=0.1 momentum=0.9 dampening=0 weight_decay=0.33333333333333331 nesterov=false";
    cr_assert_str_eq(desc, want);
    /* The metadata bytes of a saved file carry the dots, and read back the same. */
    char dir[256], path[300];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/opt.safetensors", dir);
    ig_named_tensor nt = {"w", p};
    const char *key = "optimizer_params";
    const char *val = desc;
    cr_assert_eq(ig_safetensors_save(path, &nt, 1, &key, &val, 1), IG_OK, "%s", ig_last_error());
    size_t n = 0;
    uint8_t *bytes = slurp(path, &n);
    bytes[n] = '\0';
    cr_assert_gt(n, 8);
    const char *header = (const char *)bytes + 8; /* after the 8-byte length; ends at the data's zeros */
    cr_assert_not_null(strstr(header, "\"lr=0.1 momentum=0.9 dampening=0 weight_decay=0.33333333333333331 "),
                       "header: %.200s", header);
    /* no decimal comma anywhere in the value (the header's own commas separate JSON items) */
    const char *vs = strstr(header, "\"lr=");
    for (const char *q = vs + 1; *q != '"'; q++) cr_assert_neq(*q, ',', "value: %.120s", vs);
    free(bytes);
    ig_safetensors *st = ig_safetensors_load(path);
    cr_assert_not_null(st, "%s", ig_last_error());
    cr_assert_str_eq(ig_safetensors_meta(st, key), want);
    ig_safetensors_free(st);
    ig_optim_free(opt);
    ig_tensor_free(p);
    rm_tree(dir);
    assert_no_live_bytes();
    comma_end(&c);
}

Test(core, locale_printing_and_messages_use_a_dot) {
    comma_locale c;
    comma_begin(&c);
    ig_scope *s = ig_scope_begin();
    const float v[2] = {1.5f, -0.25f};
    ig_tensor *t = ig_from_data(IG_DIMS(2), IG_F32, v);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(ig_print(t, f), IG_OK);
    fclose(f);
    cr_assert_not_null(strstr(text, "1.5000"), "printed: %s", text);
    cr_assert_not_null(strstr(text, "-0.2500"), "printed: %s", text);
    free(text);
    ig_scope_end(s);
    ig_clear_error();
    cr_assert_null(ig_nn_dropout(1.5));
    cr_assert_not_null(strstr(ig_last_error(), "got 1.5"), "message: %s", ig_last_error());
    comma_end(&c);
}
