/*
 * tests/tools/test_cli_checkpoint.c — checkpoints that eval, predict and --resume must
 * refuse cleanly: truncated at every byte of the first 4 KiB and every 1 KiB after, bit
 * flips in the header, bad JSON, offsets past the end or overlapping, unknown dtypes,
 * shapes whose product overflows, missing or garbled metadata, tensors that do not match
 * the model. Most cases call the CLI's reader (ckpt_load_model_memory) in process, for
 * speed; a handful go through the binary to check the exit status and the one-line error.
 * A FIFO given for any file the CLI reads is refused at once instead of blocking.
 */
#include "cli_test_util.h"
#include "tools/checkpoint_impl.h"

/* A valid checkpoint of cnn on 1x4x4 images, 3 classes, written by the CLI's writer. */
static uint8_t *valid_checkpoint(const char *dir, size_t *len) {
    ckpt_run r = {0};
    char *names[3] = {"cat", "dog", "bird"};
    metrics_row row = {.epoch = 1, .train_loss = 1, .train_acc = 0.5, .test_loss = 1.1, .test_acc = 0.4, .lr = 0.1,
                       .seconds = 2, .val_loss = NAN, .val_acc = NAN};
    r.model = "cnn", r.channels = 1, r.height = 4, r.width = 4, r.num_classes = 3, r.class_names = names;
    r.mean[0] = 0.25, r.std[0] = 0.5, r.data = "/data", r.optimizer = "sgd", r.optimizer_params = "lr=0.1";
    r.lr = 0.1, r.momentum = 0.9, r.schedule = "const", r.augment = "none", r.epochs = 2, r.batch = 8;
    r.seed = 3, r.epoch = 1, r.step = 4, r.steps_per_epoch = 4, r.best_acc = 0.4, r.best_epoch = 1;
    r.optim_file = "optim-e0001-00000000.safetensors", r.best_optim_file = r.optim_file;
    r.history = &row, r.nhistory = 1;
    ig_manual_seed(1);
    ig_module *m = ig_model_create("cnn", 1, 4, 4, 3);
    cr_assert_not_null(m);
    char p[512];
    cr_assert_eq(ckpt_save_model(fmt_path(p, sizeof p, "%s/valid.safetensors", dir), m, &r), IG_OK, "%s",
                 ig_last_error());
    ig_module_free(m);
    uint8_t *b = (uint8_t *)read_text(p, len);
    cr_assert_not_null(b);
    return b;
}

/* Loading must fail with a message; returns whether it failed. */
static bool refused(const void *buf, size_t len, const char *label, const char *want) {
    ckpt_run r;
    ig_module *m = (ig_module *)1;
    ig_status st = ckpt_load_model_memory(buf, len, label, &r, &m);
    if (st == IG_OK) {
        ig_module_free(m);
        ckpt_run_free(&r);
        return false;
    }
    cr_expect_null(m);
    cr_expect(strlen(ig_last_error()) > 0, "%s: no message", label);
    if (want) cr_expect(strstr(ig_last_error(), want) != NULL, "%s: '%s' not in \"%s\"", label, want, ig_last_error());
    return true;
}

Test(tools, checkpoint_valid_loads_and_truncations_are_refused) {
    char dir[256];
    make_tmpdir(dir);
    size_t len = 0;
    uint8_t *b = valid_checkpoint(dir, &len);
    ckpt_run r;
    ig_module *m = NULL;
    cr_assert_eq(ckpt_load_model_memory(b, len, "valid", &r, &m), IG_OK, "%s", ig_last_error());
    cr_expect_str_eq(r.class_names[2], "bird");
    cr_expect_eq(r.mean[0], 0.25);
    cr_expect_eq(r.epoch, 1);
    cr_expect_eq(r.nhistory, 1);
    cr_expect_str_eq(r.optim_file, "optim-e0001-00000000.safetensors");
    ig_module_free(m);
    ckpt_run_free(&r);
    cr_assert(len > 8192);
    int cuts = 0;
    for (size_t cut = 0; cut < len; cut = cut < 4096 ? cut + 1 : cut + 1024, cuts++) {
        char label[64];
        snprintf(label, sizeof label, "cut at %zu", cut);
        cr_expect(refused(b, cut, label, NULL), "%s was accepted", label);
    }
    cr_expect(cuts > 4096);
    free(b);
    rm_tree(dir);
}

Test(tools, checkpoint_header_bit_flips_never_crash) {
    char dir[256];
    make_tmpdir(dir);
    size_t len = 0;
    uint8_t *b = valid_checkpoint(dir, &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
    cr_assert(n < len);
    int refusals = 0, tries = 0;
    /* every bit of the length prefix, then one bit of every header byte (rotating) */
    for (size_t i = 0; i < 8 + n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            if (i >= 8 && bit != (int)(i % 8)) continue;
            b[i] ^= (uint8_t)(1u << bit);
            char label[64];
            snprintf(label, sizeof label, "flip byte %zu bit %d", i, bit);
            refusals += refused(b, len, label, NULL);
            tries++;
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* a flip inside free text (a class name, optimizer_params) may still load; structure
     * flips may not */
    cr_expect(refusals > tries / 2, "%d of %d flips refused", refusals, tries);
    free(b);
    rm_tree(dir);
}

/* A file image from a header text and data_len zero bytes. */
static uint8_t *craft(const char *header, size_t data_len, size_t *len) {
    size_t hn = strlen(header);
    *len = 8 + hn + data_len;
    uint8_t *b = calloc(*len, 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, header, hn);
    return b;
}

Test(tools, checkpoint_malformed_files_are_refused) {
    const struct {
        const char *header;
        size_t data;
        const char *want;
    } cases[] = {
        {"{\"a\": [}", 0, "JSON"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, NULL},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, NULL},
        {"{\"w\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "F8"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, NULL},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, NULL},
        {"{\"__metadata__\":{\"format\":\"pt\"}}", 0, "missing"},
        {"{}", 0, "missing"},
        {"[]", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *b = craft(cases[i].header, cases[i].data, &len);
        char label[32];
        snprintf(label, sizeof label, "case %zu", i);
        cr_expect(refused(b, len, label, cases[i].want), "%s accepted", label);
        free(b);
    }
}

/* Rewrites the valid checkpoint with metadata key set to value (NULL: removed), tensors
 * filtered: drop (a name to leave out), extra (add a tensor "extra"), reshape (a name to
 * write with a wrong shape), as_f64 (a name to write as F64). Returns the file image. */
typedef struct edit {
    const char *key, *value;
    const char *drop, *reshape, *as_f64;
    bool extra;
} edit;

static uint8_t *edited(const char *dir, const uint8_t *valid, size_t vlen, const edit *e, size_t *len) {
    ig_safetensors *st = ig_safetensors_load_memory(valid, vlen, "valid");
    cr_assert_not_null(st);
    const char *keys[64], *vals[64];
    int nm = 0;
    bool found = false;
    for (int i = 0; i < ig_safetensors_meta_count(st); i++) {
        const char *k = ig_safetensors_meta_key(st, i);
        if (e->key && !strcmp(k, e->key)) {
            found = true;
            if (!e->value) continue;
            keys[nm] = k, vals[nm++] = e->value;
        } else {
            keys[nm] = k, vals[nm++] = ig_safetensors_meta_value(st, i);
        }
    }
    if (e->key && !found) keys[nm] = e->key, vals[nm++] = e->value;
    ig_named_tensor ts[64];
    int nt = 0;
    ig_scope *sc = ig_scope_begin();
    for (int i = 0; i < ig_safetensors_count(st); i++) {
        const char *name = ig_safetensors_name(st, i);
        ig_tensor *t = ig_safetensors_tensor(st, i);
        if (e->drop && !strcmp(name, e->drop)) continue;
        if (e->reshape && !strcmp(name, e->reshape)) t = ig_reshape(t, IG_DIMS(ig_tensor_numel(t), 1));
        if (e->as_f64 && !strcmp(name, e->as_f64)) t = ig_to_dtype(t, IG_F64);
        cr_assert_not_null(t);
        ts[nt].name = name, ts[nt++].tensor = t;
    }
    if (e->extra) ts[nt].name = "extra", ts[nt++].tensor = ig_zeros(IG_DIMS(2), IG_F32);
    char p[512];
    cr_assert_eq(ig_safetensors_save(fmt_path(p, sizeof p, "%s/edited.safetensors", dir), ts, nt, keys, vals, nm),
                 IG_OK, "%s", ig_last_error());
    ig_scope_end(sc);
    ig_safetensors_free(st);
    uint8_t *b = (uint8_t *)read_text(p, len);
    cr_assert_not_null(b);
    return b;
}

Test(tools, checkpoint_bad_metadata_and_mismatched_tensors_are_refused) {
    char dir[256];
    make_tmpdir(dir);
    size_t vlen = 0;
    uint8_t *valid = valid_checkpoint(dir, &vlen);
    const struct {
        edit e;
        const char *want;
    } cases[] = {
        {{.key = "epoch"}, "'epoch' is missing"},
        {{.key = "epoch", .value = "abc"}, "'epoch'"},
        {{.key = "epoch", .value = "5"}, "'epoch'"},
        {{.key = "epoch", .value = "1 "}, "'epoch'"},
        {{.key = "format", .value = "tf"}, "'format'"},
        {{.key = "format"}, "'format' is missing"},
        {{.key = "num_classes", .value = "0"}, "'num_classes'"},
        {{.key = "height", .value = "99999999999999999999"}, "'height'"},
        {{.key = "channels", .value = "-1"}, "'channels'"},
        {{.key = "class_names", .value = "[\"a\", \"b\"]"}, "'class_names'"},
        {{.key = "class_names", .value = "[\"a\", \"b\", 3]"}, "'class_names'"},
        {{.key = "class_names", .value = "cat,dog,bird"}, "'class_names' is not JSON"},
        {{.key = "mean", .value = "[0.1, 0.2]"}, "'mean'"},
        {{.key = "mean", .value = "[\"x\"]"}, "'mean'"},
        {{.key = "std", .value = "[0]"}, "'std'"},
        {{.key = "std", .value = "[1e999]"}, "'std'"},
        {{.key = "lr", .value = "nan"}, "'lr'"},
        {{.key = "nesterov", .value = "maybe"}, "'nesterov'"},
        {{.key = "seed", .value = "-3"}, "'seed'"},
        {{.key = "step", .value = "3"}, "'step'"},
        {{.key = "history", .value = "garbage"}, "history"},
        {{.key = "optimizer_state", .value = "../../etc/passwd"}, "'optimizer_state'"},
        {{.key = "history", .value = "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds\n"}, "'history'"},
        {{.key = "model", .value = "bogus"}, "cannot build"},
        {{.key = "model", .value = "conv2d 1 8 3\nrelu\n"}, "cannot build"},
        {{.key = "model", .value = "resnet8"}, "do not match"},
        {{.key = "channels", .value = "3", .reshape = NULL}, NULL},
        {{.key = "num_classes", .value = "4", .drop = NULL}, NULL},
        {{.drop = "0.weight"}, "do not match"},
        {{.extra = true}, "do not match"},
        {{.reshape = "3.bias"}, "do not match"},
        {{.as_f64 = "0.weight"}, "do not match"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *b = edited(dir, valid, vlen, &cases[i].e, &len);
        char label[64];
        snprintf(label, sizeof label, "case %zu", i);
        cr_expect(refused(b, len, label, cases[i].want), "%s (%s) accepted", label, cases[i].e.key ? cases[i].e.key : "");
        free(b);
    }
    free(valid);
    rm_tree(dir);
}

/* Through the binary: eval, predict and --resume exit 1 with one error line. */
Test(tools, checkpoint_refusals_through_the_binary) {
    char dir[256], p[512], run[512], img[512];
    make_tmpdir(dir);
    size_t vlen = 0;
    uint8_t *valid = valid_checkpoint(dir, &vlen);
    fmt_path(run, sizeof run, "%s/run", dir);
    mkdir(run, 0755);
    fmt_path(img, sizeof img, "%s/x.png", dir);
    FILE *f = fopen(img, "wb");
    fclose(f);
    edit wrong_tensors = {.drop = "3.weight"}, no_epoch = {.key = "epoch"};
    size_t l1, l2;
    uint8_t *b1 = edited(dir, valid, vlen, &wrong_tensors, &l1), *b2 = edited(dir, valid, vlen, &no_epoch, &l2);
    struct {
        const uint8_t *b;
        size_t len;
        const char *want;
    } files[] = {
        {valid, 5, "last.safetensors"}, {valid, 200, NULL}, {valid, vlen - 1, NULL}, {b1, l1, "do not match"}, {b2, l2, "'epoch'"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        fmt_path(p, sizeof p, "%s/last.safetensors", run);
        FILE *g = fopen(p, "wb");
        fwrite(files[i].b, 1, files[i].len, g);
        fclose(g);
        const char *eargs[] = {"eval", "--checkpoint", p, NULL};
        const char *pargs[] = {"predict", "--checkpoint", p, img, NULL};
        const char *rargs[] = {"train", "--out", run, "--resume", NULL};
        const char *const *all[3] = {eargs, pargs, rargs};
        for (int k = 0; k < 3; k++) {
            char *out = NULL;
            cr_expect_eq(cli_run(&out, dir, all[k]), 1, "file %zu, %s: %s", i, all[k][0], out);
            cr_expect(strncmp(out, "ignis: error: ", 14) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
                      "file %zu, %s: not one error line:\n%s", i, all[k][0], out);
            if (files[i].want) cr_expect(strstr(out, files[i].want), "file %zu, %s:\n%s", i, all[k][0], out);
            free(out);
        }
    }
    free(b1);
    free(b2);
    free(valid);
    rm_tree(dir);
}

/* The optimizer file carries the fp16 loss scaler's state (--amp fp16 --resume): saved and
 * read back exactly; a file without it leaves the scaler at its defaults; a garbled one is
 * refused naming the file and the key. */
Test(tools, checkpoint_optimizer_file_keeps_the_loss_scaler) {
    char dir[256], p[512], q[512];
    make_tmpdir(dir);
    ig_scope *sc = ig_scope_begin();
    ig_tensor *w = ig_randn(IG_DIMS(3, 2), IG_F32);
    ig_set_requires_grad(w, true);
    ig_sgd_opts so = ig_sgd_defaults();
    so.lr = 0.1, so.momentum = 0.9;
    ig_optimizer *o = ig_optim_sgd(&w, 1, &so);
    cr_assert_not_null(o);
    ig_grad_scaler *s = ig_grad_scaler_new(NULL), *s2 = ig_grad_scaler_new(NULL);
    cr_assert(s && s2);
    cr_assert_eq(ig_grad_scaler_set_state(s, 1536.25, 17), IG_OK, "%s", ig_last_error());
    fmt_path(p, sizeof p, "%s/optim.safetensors", dir);
    cr_assert_eq(ckpt_save_optim(p, o, 5, s), IG_OK, "%s", ig_last_error());
    int64_t step = -1;
    cr_assert_eq(ckpt_load_optim(p, o, &step, s2), IG_OK, "%s", ig_last_error());
    cr_expect_eq(step, 5);
    cr_expect_eq(ig_grad_scaler_get_scale(s2), 1536.25);
    cr_expect_eq(ig_grad_scaler_growth_tracker(s2), 17);

    /* no scaler state in the file (a run without --amp fp16): defaults kept */
    ig_grad_scaler *s3 = ig_grad_scaler_new(NULL);
    fmt_path(q, sizeof q, "%s/plain.safetensors", dir);
    cr_assert_eq(ckpt_save_optim(q, o, 2, NULL), IG_OK, "%s", ig_last_error());
    cr_assert_eq(ckpt_load_optim(q, o, &step, s3), IG_OK, "%s", ig_last_error());
    cr_expect_eq(ig_grad_scaler_get_scale(s3), ig_grad_scaler_defaults().init_scale);
    cr_expect_eq(ig_grad_scaler_growth_tracker(s3), 0);

    /* a garbled scale: refused, naming the file and the key */
    ig_safetensors *st = ig_safetensors_load(p);
    cr_assert_not_null(st);
    int n = ig_safetensors_count(st);
    ig_named_tensor ts[8];
    cr_assert(n <= 8);
    for (int i = 0; i < n; i++) ts[i].name = ig_safetensors_name(st, i), ts[i].tensor = ig_safetensors_tensor(st, i);
    const char *keys[5] = {"format", "optimizer", "sched_step", "amp_scale", "amp_growth_tracker"};
    const char *vals[5] = {"ignis-optimizer", "sgd", "5", "-3", "17"};
    fmt_path(q, sizeof q, "%s/bad.safetensors", dir);
    cr_assert_eq(ig_safetensors_save(q, ts, n, keys, vals, 5), IG_OK, "%s", ig_last_error());
    ig_safetensors_free(st);
    cr_expect_neq(ckpt_load_optim(q, o, &step, s3), IG_OK);
    cr_expect(strstr(ig_last_error(), "bad.safetensors") && strstr(ig_last_error(), "amp_scale"), "%s",
              ig_last_error());
    cr_expect_eq(ig_grad_scaler_get_scale(s3), ig_grad_scaler_defaults().init_scale, "a refused file changes nothing");

    ig_grad_scaler_free(s), ig_grad_scaler_free(s2), ig_grad_scaler_free(s3);
    ig_optim_free(o);
    ig_scope_end(sc); /* frees w */
    rm_tree(dir);
}

/* A FIFO where the CLI expects a file: the checkpoint and an image of predict, the model
 * file of train (model_describe) and of summary (ig_model_build). open() used to wait for
 * a writer, forever; each now exits 1 at once with one error line naming the FIFO. */
Test(tools, fifo_arguments_are_refused_without_blocking) {
    char dir[256], fifo[512], img[512], ckpt[512], data[512];
    make_tmpdir(dir);
    size_t vlen = 0;
    free(valid_checkpoint(dir, &vlen));
    fmt_path(ckpt, sizeof ckpt, "%s/valid.safetensors", dir);
    fmt_path(img, sizeof img, "%s/x.png", dir);
    FILE *f = fopen(img, "wb");
    fclose(f);
    fmt_path(data, sizeof data, "%s/data", dir);
    mkdir(data, 0755);
    write_syn_dataset(data, 8, 8, 8);
    cr_assert_eq(mkfifo(fmt_path(fifo, sizeof fifo, "%s/fifo", dir), 0600), 0);
    const char *const cases[][9] = {
        {"predict", "--checkpoint", fifo, img, NULL},
        {"predict", "--checkpoint", ckpt, fifo, NULL},
        {"train", "--data", data, "--model", fifo, "--epochs", "1", NULL},
        {"summary", "--model", fifo, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        cr_expect_eq(cli_run_within(&out, dir, 20, cases[i]), 1, "case %zu (%s): %s", i, cases[i][0], out);
        cr_expect(strncmp(out, "ignis: error: ", 14) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
                  "case %zu (%s): not one error line:\n%s", i, cases[i][0], out);
        cr_expect(strstr(out, fifo) && strstr(out, "not a regular file (a FIFO)"), "case %zu (%s):\n%s", i,
                  cases[i][0], out);
        free(out);
    }
    rm_tree(dir);
}
