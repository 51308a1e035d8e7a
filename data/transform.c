/*
 * data/transform.c — image augmentation with torchvision's names, parameters and semantics,
 * on one [C,H,W] float image at a time.
 *
 * A transform is a small tagged struct; a Compose holds a flat list of steps (nested
 * Composes are flattened when built). Applying a Compose ping-pongs between two scratch
 * buffers, works in place where a step allows it (normalize, flip, jitter, erasing), and
 * fuses a RandomCrop followed by a RandomHorizontalFlip into one pass of integer offsets,
 * so the usual crop+flip+normalize pipeline touches each pixel twice.
 *
 * Randomness. Every step gets its own small generator: Philox4x32-10 keyed by (seed, step
 * position in the Compose) with counter (epoch, item index) gives 128 bits that key and
 * offset a private Philox stream for that step. So every random choice made for an item
 * depends only on (seed, epoch, index, position), never on threads or on what other items
 * or steps drew. Within a step the draws follow torchvision's order (e.g. RandomResizedCrop:
 * up to 10 tries of (scale, log-ratio), then the position).
 *
 * Deliberate differences from torchvision, all documented at the constructors' use:
 *  - Resize / RandomResizedCrop use bilinear interpolation without antialiasing (as
 *    torchvision with antialias=False; torchvision >= 0.17 antialiases downscaling by
 *    default).
 *  - ColorJitter applies brightness, contrast and saturation in a random order drawn from the
 *    item's key, as torchvision does (hue is not offered).
 *  - RandomCrop's reflect/symmetric padding also accepts padding wider than the image (the
 *    reflection repeats, as numpy.pad), where torch refuses.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "transform_impl.h"

typedef enum tf_kind {
    TF_NORMALIZE,
    TF_RANDOM_CROP,
    TF_HFLIP,
    TF_ROTATION,
    TF_RESIZED_CROP,
    TF_RESIZE,
    TF_CENTER_CROP,
    TF_JITTER,
    TF_ERASING,
    TF_COMPOSE
} tf_kind;

static const char *const kind_names[] = {
    "normalize", "random_crop", "random_hflip", "random_rotation", "random_resized_crop",
    "resize",    "center_crop", "color_jitter", "random_erasing",  "compose"};

struct ig_transform {
    tf_kind kind;
    int h, w;                 /* output size (crop, resize, center crop, resized crop) */
    int padding;              /* random crop */
    ig_pad_mode mode;         /* random crop */
    double p;                 /* flip, erasing */
    double degrees;           /* rotation */
    double scale[2], ratio[2];/* resized crop, erasing */
    double jitter[3];         /* brightness, contrast, saturation */
    int channels;             /* normalize */
    float *mean, *std;        /* normalize: channels entries each */
    int n;                    /* compose: steps */
    ig_transform **steps;     /* compose: never nested */
};

/* ---- the per-step generator ------------------------------------------------------------- */

typedef struct tf_rng {
    uint64_t key, stream, ctr;
    uint32_t buf[4];
    int avail;
} tf_rng;

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void rng_init(tf_rng *r, uint64_t seed, uint64_t epoch, uint64_t index, int position) {
    uint32_t w[4];
    ig_philox4x32(splitmix64(seed ^ splitmix64(0x7f4a7c15ULL + (uint64_t)position)), epoch, index, w);
    r->key = w[0] | (uint64_t)w[1] << 32;
    r->stream = w[2] | (uint64_t)w[3] << 32;
    r->ctr = 0;
    r->avail = 0;
}

static uint32_t rng_u32(tf_rng *r) {
    if (r->avail == 0) {
        ig_philox4x32(r->key, r->stream, r->ctr++, r->buf);
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(tf_rng *r) {
    uint64_t a = rng_u32(r) >> 5, b = rng_u32(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

static double rng_range(tf_rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

/* Uniform integer in [lo, hi) (hi > lo), unbiased: 64-bit draws, rejecting the top
 * partial block so every residue is equally likely. */
static int64_t rng_int(tf_rng *r, int64_t lo, int64_t hi) {
    uint64_t n = (uint64_t)hi - (uint64_t)lo;
    for (;;) {
        uint64_t x = (uint64_t)rng_u32(r) << 32 | rng_u32(r);
        uint64_t v = x % n;
        if (x - v <= UINT64_MAX - (n - 1)) return (int64_t)((uint64_t)lo + v);
    }
}

/* ---- constructors ------------------------------------------------------------------------- */

static ig_transform *tf_alloc(const char *op, tf_kind kind) {
    ig_transform *t = calloc(1, sizeof *t);
    if (!t) {
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    t->kind = kind;
    return t;
}

static bool size_ok(const char *op, int h, int w) {
    if (h >= 1 && w >= 1) return true;
    igi_error(IG_ERR_ARG, "%s: size must be positive, got %dx%d", op, h, w);
    return false;
}

static bool prob_ok(const char *op, double p) {
    if (p >= 0.0 && p <= 1.0) return true;
    igi_error(IG_ERR_ARG, "%s: probability must be in [0, 1], got %g", op, p);
    return false;
}

/* scale in (0, ...] (erasing: [0, 1]) and ratio positive, each lo <= hi. */
static bool ranges_ok(const char *op, double s_lo, double s_hi, double r_lo, double r_hi,
                      bool erasing) {
    bool s_ok = erasing ? (s_lo >= 0.0 && s_hi <= 1.0) : (s_lo > 0.0 && isfinite(s_hi));
    if (!(s_ok && s_lo <= s_hi)) {
        igi_error(IG_ERR_ARG, "%s: bad scale range (%g, %g)%s", op, s_lo, s_hi,
                  erasing ? ": need 0 <= lo <= hi <= 1" : ": need 0 < lo <= hi");
        return false;
    }
    if (!(r_lo > 0.0 && r_lo <= r_hi && isfinite(r_hi))) {
        igi_error(IG_ERR_ARG, "%s: bad ratio range (%g, %g): need 0 < lo <= hi", op, r_lo, r_hi);
        return false;
    }
    return true;
}

ig_transform *ig_tf_normalize(int channels, const float *mean, const float *std) {
    const char *op = "ig_tf_normalize";
    if (!mean || !std) {
        igi_error_null(op, !mean ? "mean" : "std");
        return NULL;
    }
    if (channels < 1) {
        igi_error(IG_ERR_ARG, "%s: channels must be >= 1, got %d", op, channels);
        return NULL;
    }
    for (int i = 0; i < channels; i++)
        if (!(std[i] != 0.0f && isfinite(std[i]) && isfinite(mean[i]))) {
            igi_error(IG_ERR_ARG, "%s: channel %d has mean %g, std %g (std must be finite and nonzero)",
                      op, i, (double)mean[i], (double)std[i]);
            return NULL;
        }
    ig_transform *t = tf_alloc(op, TF_NORMALIZE);
    if (!t) return NULL;
    t->channels = channels;
    t->mean = malloc(2 * (size_t)channels * sizeof(float));
    if (!t->mean) {
        free(t);
        igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    t->std = t->mean + channels;
    memcpy(t->mean, mean, (size_t)channels * sizeof(float));
    memcpy(t->std, std, (size_t)channels * sizeof(float));
    return t;
}

ig_transform *ig_tf_random_crop(int h, int w, int padding, ig_pad_mode mode) {
    const char *op = "ig_tf_random_crop";
    if (!size_ok(op, h, w)) return NULL;
    if (padding < 0 || padding > (1 << 20)) {
        igi_error(IG_ERR_ARG, "%s: padding must be in [0, 2^20], got %d", op, padding);
        return NULL;
    }
    if ((int)mode < (int)IG_PAD_CONSTANT || (int)mode > (int)IG_PAD_SYMMETRIC) {
        igi_error(IG_ERR_ARG, "%s: unknown padding mode %d", op, (int)mode);
        return NULL;
    }
    ig_transform *t = tf_alloc(op, TF_RANDOM_CROP);
    if (!t) return NULL;
    t->h = h;
    t->w = w;
    t->padding = padding;
    t->mode = mode;
    return t;
}

ig_transform *ig_tf_random_hflip(double p) {
    if (!prob_ok("ig_tf_random_hflip", p)) return NULL;
    ig_transform *t = tf_alloc("ig_tf_random_hflip", TF_HFLIP);
    if (t) t->p = p;
    return t;
}

ig_transform *ig_tf_random_rotation(double degrees) {
    if (!(degrees >= 0.0 && degrees <= 360.0)) {
        igi_error(IG_ERR_ARG, "ig_tf_random_rotation: degrees must be in [0, 360], got %g", degrees);
        return NULL;
    }
    ig_transform *t = tf_alloc("ig_tf_random_rotation", TF_ROTATION);
    if (t) t->degrees = degrees;
    return t;
}

ig_transform *ig_tf_random_resized_crop(int h, int w, double scale_lo, double scale_hi,
                                        double ratio_lo, double ratio_hi) {
    const char *op = "ig_tf_random_resized_crop";
    if (!size_ok(op, h, w) || !ranges_ok(op, scale_lo, scale_hi, ratio_lo, ratio_hi, false))
        return NULL;
    ig_transform *t = tf_alloc(op, TF_RESIZED_CROP);
    if (!t) return NULL;
    t->h = h;
    t->w = w;
    t->scale[0] = scale_lo;
    t->scale[1] = scale_hi;
    t->ratio[0] = ratio_lo;
    t->ratio[1] = ratio_hi;
    return t;
}

ig_transform *ig_tf_resize(int h, int w) {
    if (!size_ok("ig_tf_resize", h, w)) return NULL;
    ig_transform *t = tf_alloc("ig_tf_resize", TF_RESIZE);
    if (t) {
        t->h = h;
        t->w = w;
    }
    return t;
}

ig_transform *ig_tf_center_crop(int h, int w) {
    if (!size_ok("ig_tf_center_crop", h, w)) return NULL;
    ig_transform *t = tf_alloc("ig_tf_center_crop", TF_CENTER_CROP);
    if (t) {
        t->h = h;
        t->w = w;
    }
    return t;
}

ig_transform *ig_tf_color_jitter(double brightness, double contrast, double saturation) {
    double v[3] = {brightness, contrast, saturation};
    static const char *const names[3] = {"brightness", "contrast", "saturation"};
    for (int i = 0; i < 3; i++)
        if (!(v[i] >= 0.0 && isfinite(v[i]))) {
            igi_error(IG_ERR_ARG, "ig_tf_color_jitter: %s must be a finite value >= 0, got %g",
                      names[i], v[i]);
            return NULL;
        }
    ig_transform *t = tf_alloc("ig_tf_color_jitter", TF_JITTER);
    if (t) memcpy(t->jitter, v, sizeof v);
    return t;
}

ig_transform *ig_tf_random_erasing(double p, double scale_lo, double scale_hi, double ratio_lo,
                                   double ratio_hi) {
    const char *op = "ig_tf_random_erasing";
    if (!prob_ok(op, p) || !ranges_ok(op, scale_lo, scale_hi, ratio_lo, ratio_hi, true)) return NULL;
    ig_transform *t = tf_alloc(op, TF_ERASING);
    if (!t) return NULL;
    t->p = p;
    t->scale[0] = scale_lo;
    t->scale[1] = scale_hi;
    t->ratio[0] = ratio_lo;
    t->ratio[1] = ratio_hi;
    return t;
}

void ig_transform_free(ig_transform *t) {
    if (!t) return;
    if (t->kind == TF_COMPOSE) {
        for (int i = 0; i < t->n; i++) ig_transform_free(t->steps[i]);
        free(t->steps);
    }
    free(t->mean); /* std shares this block */
    free(t);
}

ig_transform *ig_tf_compose(int n, ig_transform *const *ts) {
    const char *op = "ig_tf_compose";
    bool bad = n < 0 || (n > 0 && !ts);
    int total = 0;
    for (int i = 0; !bad && i < n; i++) {
        if (!ts[i]) {
            igi_error_null(op, "ts[i]");
            bad = true;
        } else {
            total += ts[i]->kind == TF_COMPOSE ? ts[i]->n : 1;
        }
    }
    ig_transform *t = bad ? NULL : tf_alloc(op, TF_COMPOSE);
    if (t && total > 0) {
        t->steps = malloc((size_t)total * sizeof *t->steps);
        if (!t->steps) {
            igi_error(IG_ERR_NOMEM, "%s: out of memory", op);
            free(t);
            t = NULL;
        }
    }
    if (!t) {
        if (n < 0 || (n > 0 && !ts)) igi_error(IG_ERR_ARG, "%s: bad step list (n = %d)", op, n);
        for (int i = 0; ts && i < n; i++) ig_transform_free(ts[i]);
        return NULL;
    }
    /* Flatten nested composes: positions (the generators' keys) are indices in this list. */
    for (int i = 0; i < n; i++) {
        if (ts[i]->kind == TF_COMPOSE) {
            for (int k = 0; k < ts[i]->n; k++) t->steps[t->n++] = ts[i]->steps[k];
            ts[i]->n = 0;
            ig_transform_free(ts[i]);
        } else {
            t->steps[t->n++] = ts[i];
        }
    }
    return t;
}

/* ---- shapes ------------------------------------------------------------------------------ */

static void step_out_shape(const ig_transform *t, int *h, int *w) {
    switch (t->kind) {
    case TF_RANDOM_CROP:
    case TF_RESIZED_CROP:
    case TF_RESIZE:
    case TF_CENTER_CROP:
        *h = t->h;
        *w = t->w;
        break;
    default: break;
    }
}

/* The steps of t as a list (a single transform is a list of one). */
static ig_transform *const *step_list(const ig_transform *t, const ig_transform **one, int *n) {
    if (t->kind == TF_COMPOSE) {
        *n = t->n;
        return t->steps;
    }
    *one = t;
    *n = 1;
    return (ig_transform *const *)one;
}

void ig_transform_out_shape(const ig_transform *t, int c, int h, int w, int *oc, int *oh, int *ow) {
    if (t) {
        const ig_transform *one;
        int n;
        ig_transform *const *steps = step_list(t, &one, &n);
        for (int i = 0; i < n; i++) step_out_shape(steps[i], &h, &w);
    }
    if (oc) *oc = c;
    if (oh) *oh = h;
    if (ow) *ow = w;
}

size_t igi_tf_scratch_bytes(const ig_transform *t, int c, int h, int w) {
    if (!t || c < 1 || h < 1 || w < 1) return 0;
    const ig_transform *one;
    int n;
    ig_transform *const *steps = step_list(t, &one, &n);
    size_t max_numel = 0, max_w = 0;
    for (int i = 0; i < n; i++) {
        step_out_shape(steps[i], &h, &w);
        size_t numel = (size_t)c * (size_t)h * (size_t)w;
        if (i + 1 < n && numel > max_numel) max_numel = numel; /* the last writes to out */
        if ((size_t)w > max_w) max_w = (size_t)w;
    }
    /* Two ping-pong buffers, then the crop's column map. */
    return 2 * max_numel * sizeof(float) + max_w * sizeof(int32_t) + 64;
}

/* ---- kernels -------------------------------------------------------------------------------- */

/* Index r of a padded axis mapped into [0, n) (-1: constant zero). */
static int32_t pad_index(int64_t r, int n, ig_pad_mode mode) {
    if (r >= 0 && r < n) return (int32_t)r;
    switch (mode) {
    case IG_PAD_CONSTANT: return -1;
    case IG_PAD_EDGE: return r < 0 ? 0 : n - 1;
    case IG_PAD_REFLECT: {
        if (n == 1) return 0;
        int64_t period = 2 * (int64_t)n - 2, m = r % period;
        if (m < 0) m += period;
        return (int32_t)(m >= n ? period - m : m);
    }
    case IG_PAD_SYMMETRIC: {
        int64_t period = 2 * (int64_t)n, m = r % period;
        if (m < 0) m += period;
        return (int32_t)(m >= n ? period - 1 - m : m);
    }
    }
    return -1;
}

void igi_tf_crop(const float *in, int c, int h, int w, int pad, ig_pad_mode mode, int top,
                 int left, int oh, int ow, bool flip, int32_t *cmap, float *out) {
    /* Column offsets once per image; a -1 entry reads zero. */
    bool run = true; /* the row is one contiguous run of the source: memcpy */
    for (int j = 0; j < ow; j++) {
        int jj = flip ? ow - 1 - j : j;
        cmap[j] = pad_index((int64_t)jj + left - pad, w, mode);
        run &= cmap[j] >= 0 && cmap[j] == cmap[0] + j;
    }
    for (int ch = 0; ch < c; ch++) {
        const float *plane = in + (size_t)ch * h * w;
        float *o = out + (size_t)ch * oh * ow;
        for (int i = 0; i < oh; i++, o += ow) {
            int32_t r = pad_index((int64_t)i + top - pad, h, mode);
            if (r < 0) {
                memset(o, 0, (size_t)ow * sizeof *o);
                continue;
            }
            const float *s = plane + (size_t)r * w;
            if (run) {
                memcpy(o, s + cmap[0], (size_t)ow * sizeof *o);
            } else {
                for (int j = 0; j < ow; j++) {
                    int32_t m = cmap[j];
                    o[j] = m >= 0 ? s[m] : 0.0f;
                }
            }
        }
    }
}

/* Mirrors every row of src into dst (src == dst allowed). */
static void hflip(const float *src, int c, int h, int w, float *dst) {
    size_t rows = (size_t)c * h;
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + r * w;
        float *d = dst + r * w;
        if (s == d) {
            for (int j = 0; j < w / 2; j++) {
                float t = d[j];
                d[j] = d[w - 1 - j];
                d[w - 1 - j] = t;
            }
        } else {
            for (int j = 0; j < w; j++) d[j] = s[w - 1 - j];
        }
    }
}

void igi_tf_rotate(const float *in, int c, int h, int w, double degrees, float *out) {
    /* torchvision builds the inverse affine matrix [cos, -sin; sin, cos] (angle counter-
     * clockwise), scales it into normalised grid units and samples with grid_sample
     * (align_corners=False, nearest = round half to even); the arithmetic is float as
     * there. Output pixel (i, j) has centred coordinates (j + 0.5 - w/2, i + 0.5 - h/2). */
    double rad = degrees * 3.14159265358979323846 / 180.0;
    float cs = (float)cos(rad), sn = (float)sin(rad);
    float hw = 0.5f * (float)w, hh = 0.5f * (float)h;
    float t00 = cs / hw, t01 = -sn / hw, t10 = sn / hh, t11 = cs / hh;
    size_t plane = (size_t)h * w;
    for (int i = 0; i < h; i++) {
        float yc = (float)i + 0.5f - hh;
        for (int j = 0; j < w; j++) {
            float xc = (float)j + 0.5f - hw;
            float gx = xc * t00 + yc * t01, gy = xc * t10 + yc * t11;
            float xs = nearbyintf(((gx + 1.0f) * (float)w - 1.0f) * 0.5f);
            float ys = nearbyintf(((gy + 1.0f) * (float)h - 1.0f) * 0.5f);
            size_t o = (size_t)i * w + j;
            /* Comparisons are false for NaN, so no float->int conversion of junk. */
            if (xs >= 0.0f && xs <= (float)(w - 1) && ys >= 0.0f && ys <= (float)(h - 1)) {
                size_t s = (size_t)ys * w + (size_t)xs;
                for (int ch = 0; ch < c; ch++) out[ch * plane + o] = in[ch * plane + s];
            } else {
                for (int ch = 0; ch < c; ch++) out[ch * plane + o] = 0.0f;
            }
        }
    }
}

/* Source index and weight of output position d along an axis (torch's
 * area_pixel_compute_source_index with align_corners=False, in float). */
static void linear_src(int d, float scale, int in, int *i0, int *i1, float *l1) {
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i = (int)src;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = src - (float)i;
}

void igi_tf_resize_region(const float *in, int c, int h, int w, int top, int left, int rh,
                          int rw, int oh, int ow, float *out) {
    (void)h;
    float sy = (float)rh / (float)oh, sx = (float)rw / (float)ow;
    size_t iplane = (size_t)h * w, oplane = (size_t)oh * ow;
    const float *base = in + (size_t)top * w + left;
    for (int i = 0; i < oh; i++) {
        int y0, y1;
        float ly1;
        linear_src(i, sy, rh, &y0, &y1, &ly1);
        float ly0 = 1.0f - ly1;
        for (int j = 0; j < ow; j++) {
            int x0, x1;
            float lx1;
            linear_src(j, sx, rw, &x0, &x1, &lx1);
            float lx0 = 1.0f - lx1;
            for (int ch = 0; ch < c; ch++) {
                const float *p = base + ch * iplane;
                const float *r0 = p + (size_t)y0 * w, *r1 = p + (size_t)y1 * w;
                out[ch * oplane + (size_t)i * ow + j] =
                    ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
            }
        }
    }
}

static void normalize(const ig_transform *t, const float *src, int c, int h, int w, float *dst) {
    size_t plane = (size_t)h * w;
    for (int ch = 0; ch < c; ch++) {
        float m = t->mean[ch], s = t->std[ch];
        const float *x = src + ch * plane;
        float *y = dst + ch * plane;
        for (size_t k = 0; k < plane; k++) y[k] = (x[k] - m) / s;
    }
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

static float gray_of(const float *x, size_t plane, size_t k) {
    return 0.2989f * x[k] + 0.587f * x[plane + k] + 0.114f * x[2 * plane + k];
}

/* ColorJitter: a random order of the enabled adjustments (torchvision draws randperm(4)
 * first, then the factors), each a blend clamped to [0, 1]. In place is allowed. */
static void color_jitter(const ig_transform *t, tf_rng *r, const float *src, int c, int h,
                         int w, float *dst) {
    int order[3] = {0, 1, 2};
    for (int i = 2; i > 0; i--) {
        int j = (int)rng_int(r, 0, i + 1);
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    float f[3] = {1.0f, 1.0f, 1.0f};
    for (int k = 0; k < 3; k++)
        if (t->jitter[k] > 0.0) {
            double lo = t->jitter[k] < 1.0 ? 1.0 - t->jitter[k] : 0.0;
            f[k] = (float)rng_range(r, lo, 1.0 + t->jitter[k]);
        }
    size_t plane = (size_t)h * w, numel = (size_t)c * plane;
    if (src != dst) memcpy(dst, src, numel * sizeof *dst);
    for (int step = 0; step < 3; step++) {
        int k = order[step];
        if (t->jitter[k] <= 0.0) continue;
        float fk = f[k];
        if (k == 0) { /* brightness: blend with black */
            for (size_t q = 0; q < numel; q++) dst[q] = clamp01(fk * dst[q]);
        } else if (k == 1) { /* contrast: blend with the mean of the grayscale image */
            double sum = 0.0;
            if (c == 3)
                for (size_t q = 0; q < plane; q++) sum += gray_of(dst, plane, q);
            else
                for (size_t q = 0; q < numel; q++) sum += dst[q];
            float mean = (float)(sum / (double)(c == 3 ? plane : numel));
            float bias = (1.0f - fk) * mean;
            for (size_t q = 0; q < numel; q++) dst[q] = clamp01(fk * dst[q] + bias);
        } else { /* saturation: blend with the grayscale image (3 channels, checked) */
            for (size_t q = 0; q < plane; q++) {
                float g = (1.0f - fk) * gray_of(dst, plane, q);
                for (int ch = 0; ch < 3; ch++) dst[ch * plane + q] = clamp01(fk * dst[ch * plane + q] + g);
            }
        }
    }
}

/* RandomErasing.get_params then the erase (value 0). In place is allowed. */
static void random_erasing(const ig_transform *t, tf_rng *r, const float *src, int c, int h,
                           int w, float *dst) {
    size_t plane = (size_t)h * w;
    if (src != dst) memcpy(dst, src, (size_t)c * plane * sizeof *dst);
    if (!(rng_uniform(r) < t->p)) return;
    double area = (double)h * (double)w;
    double lr0 = log(t->ratio[0]), lr1 = log(t->ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double erase_area = area * rng_range(r, t->scale[0], t->scale[1]);
        double aspect = exp(rng_range(r, lr0, lr1));
        double eh_d = nearbyint(sqrt(erase_area * aspect)), ew_d = nearbyint(sqrt(erase_area / aspect));
        if (!(eh_d < h && ew_d < w)) continue;
        int eh = (int)eh_d, ew = (int)ew_d;
        int top = (int)rng_int(r, 0, h - eh + 1), left = (int)rng_int(r, 0, w - ew + 1);
        for (int ch = 0; ch < c; ch++)
            for (int i = top; i < top + eh; i++)
                memset(dst + ch * plane + (size_t)i * w + left, 0, (size_t)ew * sizeof *dst);
        return;
    }
}

/* RandomResizedCrop.get_params: (top, left, height, width) of the region to resize. */
static void resized_crop_params(const ig_transform *t, tf_rng *r, int h, int w, int *top,
                                int *left, int *rh, int *rw) {
    double area = (double)h * (double)w;
    double lr0 = log(t->ratio[0]), lr1 = log(t->ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * rng_range(r, t->scale[0], t->scale[1]);
        double aspect = exp(rng_range(r, lr0, lr1));
        double cw = nearbyint(sqrt(target * aspect)), chh = nearbyint(sqrt(target / aspect));
        if (cw > 0 && cw <= w && chh > 0 && chh <= h) {
            *rw = (int)cw;
            *rh = (int)chh;
            *top = (int)rng_int(r, 0, h - *rh + 1);
            *left = (int)rng_int(r, 0, w - *rw + 1);
            return;
        }
    }
    /* Fallback: a central crop with the ratio clamped into range. */
    double in_ratio = (double)w / (double)h;
    if (in_ratio < t->ratio[0]) {
        *rw = w;
        *rh = (int)nearbyint(w / t->ratio[0]);
    } else if (in_ratio > t->ratio[1]) {
        *rh = h;
        *rw = (int)nearbyint(h * t->ratio[1]);
    } else {
        *rw = w;
        *rh = h;
    }
    if (*rh < 1) *rh = 1;
    if (*rw < 1) *rw = 1;
    if (*rh > h) *rh = h;
    if (*rw > w) *rw = w;
    *top = (h - *rh) / 2;
    *left = (w - *rw) / 2;
}

/* CenterCrop's offset along one axis: torchvision pads (zeros) when the crop is larger,
 * else starts at round((in - out) / 2.0) (round half to even, as Python's round). */
static int center_offset(int in, int out) {
    if (out > in) return -((out - in) / 2);
    return (int)nearbyint((double)(in - out) / 2.0);
}

/* ---- apply ------------------------------------------------------------------------------------ */

/* Checks that step t can take [c,h,w]. */
static ig_status step_check(const ig_transform *t, int pos, int c, int h, int w) {
    const char *name = kind_names[t->kind];
    if (t->kind == TF_NORMALIZE && c != t->channels)
        return igi_error(IG_ERR_SHAPE, "ig_transform_apply: step %d (%s) is for %d channels, image [%d,%d,%d]",
                         pos, name, t->channels, c, h, w);
    if (t->kind == TF_RANDOM_CROP &&
        ((int64_t)h + 2 * (int64_t)t->padding < t->h || (int64_t)w + 2 * (int64_t)t->padding < t->w))
        return igi_error(IG_ERR_SHAPE,
                         "ig_transform_apply: step %d (%s): crop %dx%d larger than the padded image [%d,%d,%d] + padding %d",
                         pos, name, t->h, t->w, c, h, w, t->padding);
    if (t->kind == TF_JITTER && t->jitter[2] > 0.0 && c != 3)
        return igi_error(IG_ERR_SHAPE, "ig_transform_apply: step %d (%s): saturation needs 3 channels, image [%d,%d,%d]",
                         pos, name, c, h, w);
    return IG_OK;
}

static bool in_place_ok(tf_kind k) {
    return k == TF_NORMALIZE || k == TF_HFLIP || k == TF_JITTER || k == TF_ERASING;
}

ig_status igi_tf_apply(const ig_transform *t, const float *in, int c, int h, int w, float *out,
                       void *scratch, uint64_t seed, uint64_t epoch, uint64_t index) {
    if (c < 1 || h < 1 || w < 1)
        return igi_error(IG_ERR_SHAPE, "ig_transform_apply: image [%d,%d,%d] must have positive sizes", c, h, w);
    if (!t) {
        memcpy(out, in, (size_t)c * h * w * sizeof *out);
        return IG_OK;
    }
    const ig_transform *one;
    int n;
    ig_transform *const *steps = step_list(t, &one, &n);
    /* Validate every step's input shape before touching out. */
    size_t max_numel = 0;
    {
        int hh = h, ww = w;
        for (int i = 0; i < n; i++) {
            ig_status st = step_check(steps[i], i, c, hh, ww);
            if (st != IG_OK) return st;
            step_out_shape(steps[i], &hh, &ww);
            size_t numel = (size_t)c * hh * ww;
            if (i + 1 < n && numel > max_numel) max_numel = numel;
        }
    }
    if (n == 0) {
        memcpy(out, in, (size_t)c * h * w * sizeof *out);
        return IG_OK;
    }
    float *bufs[2] = {(float *)scratch, (float *)scratch + max_numel};
    int32_t *cmap = (int32_t *)((float *)scratch + 2 * max_numel);
    const float *cur = in;
    for (int i = 0; i < n; i++) {
        const ig_transform *s = steps[i];
        bool last = i == n - 1;
        bool fuse_flip = s->kind == TF_RANDOM_CROP && i + 1 < n && steps[i + 1]->kind == TF_HFLIP;
        if (fuse_flip) last = i + 1 == n - 1;
        float *dst;
        if (last) dst = out;
        else if (cur != in && in_place_ok(s->kind)) dst = (float *)cur;
        else dst = cur == bufs[0] ? bufs[1] : bufs[0];
        tf_rng r;
        rng_init(&r, seed, epoch, index, i);
        int oh = h, ow = w;
        step_out_shape(s, &oh, &ow);
        switch (s->kind) {
        case TF_NORMALIZE: normalize(s, cur, c, h, w, dst); break;
        case TF_RANDOM_CROP: {
            int top = 0, left = 0;
            int ph = h + 2 * s->padding, pw = w + 2 * s->padding;
            if (!(ph == s->h && pw == s->w)) {
                top = (int)rng_int(&r, 0, (int64_t)ph - s->h + 1);
                left = (int)rng_int(&r, 0, (int64_t)pw - s->w + 1);
            }
            bool flip = false;
            if (fuse_flip) {
                tf_rng fr;
                rng_init(&fr, seed, epoch, index, i + 1);
                flip = rng_uniform(&fr) < steps[i + 1]->p;
            }
            igi_tf_crop(cur, c, h, w, s->padding, s->mode, top, left, oh, ow, flip, cmap, dst);
            break;
        }
        case TF_HFLIP:
            if (rng_uniform(&r) < s->p) hflip(cur, c, h, w, dst);
            else if (dst != cur) memcpy(dst, cur, (size_t)c * h * w * sizeof *dst);
            break;
        case TF_ROTATION: {
            double angle = rng_range(&r, -s->degrees, s->degrees);
            igi_tf_rotate(cur, c, h, w, angle, dst);
            break;
        }
        case TF_RESIZED_CROP: {
            int top, left, rh, rw;
            resized_crop_params(s, &r, h, w, &top, &left, &rh, &rw);
            igi_tf_resize_region(cur, c, h, w, top, left, rh, rw, oh, ow, dst);
            break;
        }
        case TF_RESIZE: igi_tf_resize_region(cur, c, h, w, 0, 0, h, w, oh, ow, dst); break;
        case TF_CENTER_CROP:
            igi_tf_crop(cur, c, h, w, 0, IG_PAD_CONSTANT, center_offset(h, oh), center_offset(w, ow),
                        oh, ow, false, cmap, dst);
            break;
        case TF_JITTER: color_jitter(s, &r, cur, c, h, w, dst); break;
        case TF_ERASING: random_erasing(s, &r, cur, c, h, w, dst); break;
        case TF_COMPOSE: IG_ASSERT(!"nested compose"); break;
        }
        h = oh;
        w = ow;
        cur = dst;
        if (fuse_flip) i++;
    }
    return IG_OK;
}

ig_status ig_transform_apply(const ig_transform *t, const float *in, int c, int h, int w,
                             float *out, uint64_t seed, uint64_t epoch, uint64_t index) {
    if (!t || !in || !out) return igi_error_null("ig_transform_apply", !t ? "t" : !in ? "in" : "out");
    if (c < 1 || h < 1 || w < 1)
        return igi_error(IG_ERR_SHAPE, "ig_transform_apply: image [%d,%d,%d] must have positive sizes", c, h, w);
    size_t nbytes = igi_tf_scratch_bytes(t, c, h, w);
    void *scratch = malloc(nbytes ? nbytes : 1);
    if (!scratch) return igi_error(IG_ERR_NOMEM, "ig_transform_apply: out of memory (%zu bytes of scratch)", nbytes);
    ig_status st = igi_tf_apply(t, in, c, h, w, out, scratch, seed, epoch, index);
    free(scratch);
    return st;
}

/* ---- the --augment spec ------------------------------------------------------------------------ */

/* Parses item's value as a number in [lo, hi]; false with an error naming the item. */
static bool parse_value(const char *spec, const char *item, const char *val, double lo, double hi,
                        bool integer, double *out) {
    char *end = NULL;
    double v = val && *val ? igi_strtod(val, &end) : NAN;
    if (!val || !*val || *end != '\0' || !(v >= lo && v <= hi) || (integer && v != floor(v))) {
        igi_error(IG_ERR_ARG, "ig_tf_parse: bad item '%s' in \"%s\": %s in [%g, %g] expected", item, spec,
                  integer ? "an integer" : "a number", lo, hi);
        return false;
    }
    *out = v;
    return true;
}

ig_transform *ig_tf_parse(const char *spec, int c, int h, int w) {
    const char *op = "ig_tf_parse";
    if (!spec) {
        igi_error_null(op, "spec");
        return NULL;
    }
    if (c < 1 || h < 1 || w < 1) {
        igi_error(IG_ERR_ARG, "%s: image [%d,%d,%d] must have positive sizes", op, c, h, w);
        return NULL;
    }
    enum { MAX_ITEMS = 32 };
    ig_transform *ts[MAX_ITEMS];
    int n = 0;
    const char *p = spec;
    bool ok = true;
    while (ok && *p) {
        const char *comma = strchr(p, ',');
        const char *seg_end = comma ? comma : p + strlen(p);
        const char *seg = p;
        size_t len = (size_t)(seg_end - seg);
        char item[128];
        /* Trim spaces. */
        while (len && (*seg == ' ' || *seg == '\t')) seg++, len--;
        while (len && (seg[len - 1] == ' ' || seg[len - 1] == '\t')) len--;
        if (len == 0 || len >= sizeof item || n == MAX_ITEMS) {
            igi_error(IG_ERR_ARG, "%s: bad item '%.*s' in \"%s\": %s", op, (int)(len < 64 ? len : 64), seg,
                      spec, len == 0 ? "empty item" : n == MAX_ITEMS ? "too many items" : "too long");
            ok = false;
            break;
        }
        memcpy(item, seg, len);
        item[len] = '\0';
        char *colon = strchr(item, ':');
        const char *val = NULL;
        char name[128];
        strcpy(name, item);
        if (colon) {
            name[colon - item] = '\0';
            val = colon + 1;
        }
        double v = 0;
        ig_transform *t = NULL;
        if (!strcmp(name, "crop")) {
            if (parse_value(spec, item, val, 0, 1 << 20, true, &v))
                t = ig_tf_random_crop(h, w, (int)v, IG_PAD_CONSTANT);
        } else if (!strcmp(name, "flip")) {
            if (!val) t = ig_tf_random_hflip(0.5);
            else if (parse_value(spec, item, val, 0, 1, false, &v)) t = ig_tf_random_hflip(v);
        } else if (!strcmp(name, "erase")) {
            if (parse_value(spec, item, val, 0, 1, false, &v))
                t = ig_tf_random_erasing(v, 0.02, 0.33, 0.3, 3.3);
        } else if (!strcmp(name, "rotate")) {
            if (parse_value(spec, item, val, 0, 360, false, &v)) t = ig_tf_random_rotation(v);
        } else if (!strcmp(name, "jitter")) {
            if (parse_value(spec, item, val, 0, 1e6, false, &v)) t = ig_tf_color_jitter(v, v, c == 3 ? v : 0.0);
        } else {
            igi_error(IG_ERR_ARG, "%s: bad item '%s' in \"%s\": unknown transform (known: crop:P, flip, erase:P, rotate:DEG, jitter:B)",
                      op, item, spec);
        }
        if (!t) {
            ok = false;
            break;
        }
        ts[n++] = t;
        p = comma ? comma + 1 : seg_end;
        if (comma && !*p) {
            igi_error(IG_ERR_ARG, "%s: bad item '' in \"%s\": empty item at the end", op, spec);
            ok = false;
        }
    }
    if (!ok) {
        for (int i = 0; i < n; i++) ig_transform_free(ts[i]);
        return NULL;
    }
    return ig_tf_compose(n, ts);
}
