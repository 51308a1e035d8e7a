/*
 * tools/plot.c — draws DIR/curves.png for `ignis train`: two panels side by side, loss
 * and accuracy (%) per epoch, one polyline per series (train, test, val), with axes, tick
 * marks and numbers, titles and a legend. A tiny rasteriser into an RGB buffer (lines,
 * rectangles, a 5x7 bitmap font), written through libpng to a temporary file that is then
 * renamed over the old image, so a reader never sees half a PNG.
 */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor_impl.h"
#include "train_impl.h"

enum { IMG_W = 960, IMG_H = 360, PANEL_W = IMG_W / 2 };
enum { M_LEFT = 64, M_RIGHT = 16, M_TOP = 34, M_BOTTOM = 48 };

typedef struct canvas {
    uint8_t *px; /* [IMG_H, IMG_W, 3] */
} canvas;

typedef struct rgb {
    uint8_t r, g, b;
} rgb;

static const rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GRID = {225, 225, 225};
static const rgb SERIES[3] = {{31, 119, 180}, {230, 110, 20}, {44, 160, 44}}; /* train, test, val */

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. Letters are drawn upper case. */
static const struct glyph {
    char c;
    uint8_t rows[7];
} FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
};

static void put(canvas *cv, int x, int y, rgb c) {
    if (x < 0 || y < 0 || x >= IMG_W || y >= IMG_H) return;
    uint8_t *p = cv->px + ((size_t)y * IMG_W + (size_t)x) * 3;
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

static void rect(canvas *cv, int x0, int y0, int x1, int y1, rgb c) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(cv, x, y, c);
}

/* Bresenham from (x0,y0) to (x1,y1); thick draws a 2x2 pen. */
static void line(canvas *cv, int x0, int y0, int x1, int y1, rgb c, bool thick) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        put(cv, x0, y0, c);
        if (thick) put(cv, x0 + 1, y0, c), put(cv, x0, y0 + 1, c), put(cv, x0 + 1, y0 + 1, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

static int text_width(const char *s, int scale) { return (int)strlen(s) * 6 * scale - scale; }

/* Draws s with its top-left corner at (x, y); each font pixel is scale x scale. */
static void text(canvas *cv, int x, int y, const char *s, int scale, rgb c) {
    for (; *s; s++, x += 6 * scale) {
        char ch = (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
        const struct glyph *g = NULL;
        for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++)
            if (FONT[i].c == ch) g = &FONT[i];
        if (!g) continue; /* space and unknown characters */
        for (int r = 0; r < 7; r++)
            for (int col = 0; col < 5; col++)
                if (g->rows[r] & (0x10 >> col)) rect(cv, x + col * scale, y + r * scale, x + col * scale + scale - 1,
                                                     y + r * scale + scale - 1, c);
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving about target intervals. */
static double nice_step(double range, int target) {
    double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct series {
    const char *name;
    const double *y; /* n values, NAN = absent */
} series;

/* One panel at x offset ox: xs are epochs 1..n. */
static void panel(canvas *cv, int ox, const char *title, int n, const series *ss, int ns) {
    int x0 = ox + M_LEFT, x1 = ox + PANEL_W - M_RIGHT, y0 = M_TOP, y1 = IMG_H - M_BOTTOM;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < ns; s++)
        for (int i = 0; i < n; i++)
            if (isfinite(ss[s].y[i])) lo = fmin(lo, ss[s].y[i]), hi = fmax(hi, ss[s].y[i]);
    if (!(lo <= hi)) lo = 0, hi = 1;
    bool percent = title[0] == 'a';
    if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
    double pad = (hi - lo) * 0.08;
    lo -= pad, hi += pad;
    double ystep = nice_step(hi - lo, 5);
    lo = floor(lo / ystep) * ystep, hi = ceil(hi / ystep) * ystep;
    if (percent && hi > 100) hi = 100; /* accuracy (%): no axis beyond 100 */
    if (percent && lo < 0) lo = 0;
    if (hi <= lo) hi = lo + ystep;
    double xlo = 1, xhi = n > 1 ? n : 2;
    double xstep = fmax(1, nice_step(xhi - xlo, 8));
    xstep = ceil(xstep);
#define PX(v) (x0 + (int)lround(((v) - xlo) / (xhi - xlo) * (x1 - x0)))
#define PY(v) (y1 - (int)lround(((v) - lo) / (hi - lo) * (y1 - y0)))
    int decimals = ystep >= 1 ? 0 : (int)ceil(-log10(ystep) - 1e-9);
    if (decimals > 6) decimals = 6;
    char buf[32];
    for (double v = lo; v <= hi + ystep * 1e-6; v += ystep) {
        int y = PY(v);
        line(cv, x0, y, x1, y, GRID, false);
        line(cv, x0 - 4, y, x0, y, BLACK, false);
        igi_snprintf_c(buf, sizeof buf, "%.*f", decimals, fabs(v) < ystep * 1e-6 ? 0.0 : v);
        text(cv, x0 - 7 - text_width(buf, 1), y - 3, buf, 1, BLACK);
    }
    for (double v = xlo; v <= xhi + 1e-9; v += xstep) {
        int x = PX(v);
        line(cv, x, y1, x, y1 + 4, BLACK, false);
        igi_snprintf_c(buf, sizeof buf, "%.0f", v);
        text(cv, x - text_width(buf, 1) / 2, y1 + 8, buf, 1, BLACK);
    }
    line(cv, x0, y0, x0, y1, BLACK, false);
    line(cv, x0, y1, x1, y1, BLACK, false);
    text(cv, (x0 + x1 - text_width(title, 2)) / 2, 8, title, 2, BLACK);
    text(cv, (x0 + x1 - text_width("epoch", 1)) / 2, y1 + 24, "epoch", 1, BLACK);
    for (int s = 0; s < ns; s++) {
        rgb c = SERIES[s % 3];
        int px = -1, py = -1;
        for (int i = 0; i < n; i++) {
            if (!isfinite(ss[s].y[i])) {
                px = -1;
                continue;
            }
            int x = PX((double)(i + 1)), y = PY(ss[s].y[i]);
            if (px >= 0) line(cv, px, py, x, y, c, true);
            rect(cv, x - 2, y - 2, x + 2, y + 2, c);
            px = x, py = y;
        }
        /* legend, top right inside the plot */
        int ly = y0 + 8 + s * 14, lx = x1 - 8 - text_width(ss[s].name, 1) - 26;
        rect(cv, lx - 4, ly - 4, x1 - 4, ly + 10, WHITE);
        line(cv, lx, ly + 3, lx + 18, ly + 3, c, true);
        text(cv, lx + 24, ly, ss[s].name, 1, BLACK);
    }
#undef PX
#undef PY
}

ig_status plot_curves(const char *path, const metrics_row *rows, int64_t n, bool has_val) {
    int nn = n > 100000 ? 100000 : (int)n;
    canvas cv = {calloc((size_t)IMG_W * IMG_H * 3, 1)};
    double *buf = malloc(sizeof(double) * (size_t)(nn ? nn : 1) * 6);
    if (!cv.px || !buf) {
        free(cv.px), free(buf);
        return igi_error(IG_ERR_NOMEM, "out of memory drawing %s", path);
    }
    memset(cv.px, 255, (size_t)IMG_W * IMG_H * 3);
    double *trl = buf, *tel = buf + nn, *val = buf + 2 * nn, *tra = buf + 3 * nn, *tea = buf + 4 * nn,
           *vaa = buf + 5 * nn;
    for (int i = 0; i < nn; i++) {
        trl[i] = rows[i].train_loss, tel[i] = rows[i].test_loss, val[i] = rows[i].val_loss;
        tra[i] = 100 * rows[i].train_acc, tea[i] = 100 * rows[i].test_acc, vaa[i] = 100 * rows[i].val_acc;
    }
    series loss[3] = {{"train", trl}, {"test", tel}, {"val", val}};
    series acc[3] = {{"train", tra}, {"test", tea}, {"val", vaa}};
    panel(&cv, 0, "loss", nn, loss, has_val ? 3 : 2);
    panel(&cv, PANEL_W, "accuracy (%)", nn, acc, has_val ? 3 : 2);
    free(buf);

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(cv.px);
        return igi_error(IG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile bool ok = png && info;
    if (ok && setjmp(png_jmpbuf(png))) ok = false;
    else if (ok) {
        png_init_io(png, f);
        png_set_IHDR(png, info, IMG_W, IMG_H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                     PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < IMG_H; y++) png_write_row(png, cv.px + (size_t)y * IMG_W * 3);
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(&png, &info);
    free(cv.px);
    if (fclose(f) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return igi_error(IG_ERR_IO, "cannot write %s", path);
    }
    return IG_OK;
}
