/*
 * tools/train_util.c — evaluation over a dataset, the live progress display of `ignis
 * train`, and small file helpers (atomic text files, mkdir -p).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_impl.h"
#include "core/tensor_impl.h"
#include "train_impl.h"

/* ---- evaluation ------------------------------------------------------------------------ */

void count_hits(const float *logits, const int64_t *labels, int64_t b, int64_t k, int64_t *top1, int64_t *top5,
                int64_t *predicted) {
    for (int64_t i = 0; i < b; i++) {
        const float *row = logits + i * k;
        int64_t arg = 0, above = 0, y = labels[i];
        for (int64_t j = 1; j < k; j++)
            if (row[j] > row[arg]) arg = j;
        /* rank of the true class: how many classes score strictly higher */
        for (int64_t j = 0; j < k; j++) above += row[j] > row[y];
        *top1 += arg == y;
        *top5 += above < 5;
        if (predicted) predicted[i] = arg;
    }
}

int parse_amp(const char *cmd, const char *name, ig_amp *amp) {
    static const ig_amp modes[] = {IG_AMP_OFF, IG_AMP_BF16, IG_AMP_FP16};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(name, ig_amp_name(modes[i]))) {
            *amp = modes[i];
            return 0;
        }
    return cli_error(EXIT_USAGE, "%s: --amp: unknown '%s' (off, bf16, fp16)", cmd, name);
}

int apply_tf32(const char *cmd, bool on, ig_device dev) {
    if (!on) return 0;
    if (dev == IG_CPU) return cli_error(EXIT_USAGE, "%s: --tf32 needs --device cuda", cmd);
    if (ig_cuda_set_tf32(true) != IG_OK) return cli_error(EXIT_FAILED, "%s: --tf32: %s", cmd, ig_last_error());
    return 0;
}

int parse_device(const char *cmd, const char *name, ig_device *dev) {
    if (!strcmp(name, "cpu")) {
        *dev = IG_CPU;
        return 0;
    }
    if (strcmp(name, "cuda") != 0) return cli_error(EXIT_USAGE, "%s: --device: unknown '%s' (cpu, cuda)", cmd, name);
    if (!ig_cuda_is_available()) {
        /* "ig_cuda_is_available: no CUDA device (...)" or "...: ignis was built without CUDA" */
        const char *m = ig_last_error(), *colon = strstr(m, ": ");
        return cli_error(EXIT_FAILED, "%s: --device cuda: %s", cmd, colon ? colon + 2 : m);
    }
    *dev = IG_CUDA;
    return 0;
}

ig_device model_device(ig_module *m) {
    ig_named_tensor first;
    return ig_module_state_dict(m, &first, 1) > 0 ? ig_tensor_device(first.tensor) : IG_CPU;
}

ig_tensor *on_host(ig_tensor *t) { return t && ig_tensor_device(t) != IG_CPU ? ig_to(t, IG_CPU) : t; }

ig_tensor *host_f32(ig_tensor *t) {
    t = on_host(t);
    if (!t) return NULL;
    return ig_tensor_dtype(t) == IG_F32 ? ig_contiguous(t) : ig_to_dtype(t, IG_F32);
}

ig_status evaluate(ig_module *m, ig_dataset *d, const ig_transform *tf, int64_t batch, int64_t num_classes,
                   eval_result *r) {
    ig_device dev = model_device(m); /* batches go where the model is; results come back */
    /* pinned batches upload without a wait (the logits read below still waits per batch:
     * the confusion matrix needs each prediction) */
    ig_loader_opts lo = {.batch_size = batch, .num_workers = 1, .transform = tf, .pin_memory = dev != IG_CPU};
    ig_loader *l = ig_loader_new(d, &lo);
    if (!l) return ig_last_status();
    int64_t *pred = malloc(sizeof(int64_t) * (size_t)batch);
    if (!pred) {
        ig_loader_free(l);
        return igi_error(IG_ERR_NOMEM, "out of memory");
    }
    bool was_training = ig_module_is_training(m);
    ig_module_train(m, false);
    ig_no_grad_begin();
    ig_status st = ig_loader_start_epoch(l, 0);
    ig_tensor *x, *y;
    int got;
    ig_ce_params ce = {.reduction = IG_REDUCTION_SUM};
    while (st == IG_OK && (got = ig_loader_next(l, &x, &y)) != 0) {
        if (got < 0) {
            st = ig_last_status();
            break;
        }
        int64_t b = ig_tensor_size(y, 0);
        const int64_t *yl = ig_tensor_data(y);
        for (int64_t i = 0; i < b; i++)
            if (yl[i] < 0 || yl[i] >= num_classes) {
                st = igi_error(IG_ERR_FORMAT, "the data has label %lld but the model has %lld classes", (long long)yl[i],
                               (long long)num_classes);
                break;
            }
        if (st != IG_OK) break;
        ig_scope *sc = ig_scope_begin();
        ig_tensor *logits = ig_contiguous(ig_module_forward(m, dev == IG_CPU ? x : ig_to(x, dev)));
        ig_tensor *loss = ig_cross_entropy(logits, dev == IG_CPU ? y : ig_to(y, dev), &ce);
        logits = host_f32(logits); /* bf16 under autocast */
        if (!loss || !logits) {
            st = ig_last_status();
        } else if (ig_tensor_ndim(logits) != 2 || ig_tensor_size(logits, 1) != num_classes) {
            st = igi_error(IG_ERR_SHAPE, "the model gives outputs of the wrong shape");
        } else {
            r->loss_sum += ig_item(loss);
            count_hits(ig_tensor_data(logits), yl, b, num_classes, &r->correct, &r->top5, pred);
            if (r->confusion)
                for (int64_t i = 0; i < b; i++) r->confusion[yl[i] * num_classes + pred[i]]++;
            r->n += b;
        }
        ig_scope_end(sc);
    }
    ig_no_grad_end();
    ig_module_train(m, was_training);
    free(pred);
    ig_loader_free(l);
    return st;
}

ig_transform *normalize_transform(const ckpt_run *r) {
    float mean[CKPT_MAX_CHANNELS], std[CKPT_MAX_CHANNELS];
    for (int64_t c = 0; c < r->channels; c++) mean[c] = (float)r->mean[c], std[c] = (float)r->std[c];
    return ig_tf_normalize((int)r->channels, mean, std);
}

/* ---- progress ---------------------------------------------------------------------------- */

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_start(progress *p, bool tty, int64_t epoch, int64_t epochs, int64_t total) {
    p->tty = tty;
    p->epoch = epoch, p->epochs = epochs, p->total = total;
    p->every = total / 10 > 0 ? total / 10 : 1;
    p->t0 = now_seconds();
    p->last_draw = -1;
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) s = 0;
    long t = lround(s);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

bool progress_due(const progress *p, int64_t done) {
    if (p->tty) return done == p->total || p->last_draw < 0 || now_seconds() - p->last_draw >= 0.1;
    return done % p->every == 0 || done == p->total;
}

void progress_update(progress *p, int64_t done, int64_t images, double loss, double acc) {
    double now = now_seconds(), el = now - p->t0;
    double ips = el > 0 ? (double)images / el : 0;
    if (p->tty) {
        /* at most 10 redraws a second, plus the final one (progress_due says the same) */
        if (done != p->total && p->last_draw >= 0 && now - p->last_draw < 0.1) return;
        p->last_draw = now;
        char bar[31], e1[32], e2[32];
        int fill = p->total > 0 ? (int)(30 * done / p->total) : 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        bar[30] = '\0';
        fmt_duration(e1, sizeof e1, el);
        fmt_duration(e2, sizeof e2, done > 0 ? el * (double)(p->total - done) / (double)done : 0);
        fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  %.0f img/s  %s<%s  loss %.4f  acc %.2f%%",
                (long long)p->epoch, (long long)p->epochs, bar, (long long)done, (long long)p->total, ips, e1, e2, loss,
                100 * acc);
        fflush(stderr);
    } else if (done % p->every == 0 || done == p->total) {
        char e1[32];
        fmt_duration(e1, sizeof e1, el);
        fprintf(stderr, "epoch %lld/%lld  batch %lld/%lld  %.0f img/s  %s  loss %.4f  acc %.2f%%\n", (long long)p->epoch,
                (long long)p->epochs, (long long)done, (long long)p->total, ips, e1, loss, 100 * acc);
        fflush(stderr);
    }
}

void progress_end(progress *p) {
    if (p->tty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

/* ---- files -------------------------------------------------------------------------------- */

ig_status write_file_atomic(const char *path, const char *text) {
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return igi_error(IG_ERR_ARG, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return igi_error(IG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int err = off < len ? errno : 0;
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        return igi_error(IG_ERR_IO, "cannot write %s: %s", path, strerror(err ? err : EIO));
    }
    return IG_OK;
}

ig_status make_dirs(const char *path) {
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return igi_error(IG_ERR_ARG, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return igi_error(IG_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return igi_error(IG_ERR_IO, "%s is not a folder", path);
    return IG_OK;
}
