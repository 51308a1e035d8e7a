/*
 * tests/data/test_transform.c — the image transforms on small known images: crop windows
 * under each padding mode at forced positions (and the random position's distribution),
 * flips, rotation by known angles, bilinear resize and center crop against hand-computed
 * values, normalize, color jitter and erasing invariants, resized-crop special cases,
 * determinism of the (seed, epoch, index) keying, the --augment parser and every error.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "data/transform_impl.h"
#include "ignis.h"

#include "../test_util.h"

/* 1x4x4 image with values 1..16 row-major. */
static void ramp(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = (float)(i + 1);
}

static void assert_floats(const float *got, const float *want, int n, float tol) {
    for (int i = 0; i < n; i++)
        cr_assert(fabsf(got[i] - want[i]) <= tol, "element %d: got %g want %g", i, (double)got[i],
                  (double)want[i]);
}

static void crop_at(ig_pad_mode mode, int pad, int top, int left, bool flip, float *out) {
    float in[16];
    int32_t cmap[8];
    ramp(in, 16);
    igi_tf_crop(in, 1, 4, 4, pad, mode, top, left, 4, 4, flip, cmap, out);
}

Test(data, crop_padding_modes_at_forced_positions) {
    float out[16];
    crop_at(IG_PAD_CONSTANT, 2, 0, 0, false, out);
    assert_floats(out, (float[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 5, 6}, 16, 0);
    crop_at(IG_PAD_CONSTANT, 2, 4, 3, false, out); /* bottom right area */
    assert_floats(out, (float[]){10, 11, 12, 0, 14, 15, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 16, 0);
    crop_at(IG_PAD_EDGE, 1, 0, 0, false, out);
    assert_floats(out, (float[]){1, 1, 2, 3, 1, 1, 2, 3, 5, 5, 6, 7, 9, 9, 10, 11}, 16, 0);
    crop_at(IG_PAD_REFLECT, 2, 0, 0, false, out); /* rows/cols 2,1,0,1 */
    assert_floats(out, (float[]){11, 10, 9, 10, 7, 6, 5, 6, 3, 2, 1, 2, 7, 6, 5, 6}, 16, 0);
    crop_at(IG_PAD_REFLECT, 2, 4, 4, false, out); /* rows/cols 2,3,2,1 */
    assert_floats(out, (float[]){11, 12, 11, 10, 15, 16, 15, 14, 11, 12, 11, 10, 7, 8, 7, 6}, 16, 0);
    crop_at(IG_PAD_SYMMETRIC, 2, 0, 0, false, out); /* rows/cols 1,0,0,1 */
    assert_floats(out, (float[]){6, 5, 5, 6, 2, 1, 1, 2, 2, 1, 1, 2, 6, 5, 5, 6}, 16, 0);
    /* The unshifted window with flip mirrors each row. */
    crop_at(IG_PAD_CONSTANT, 2, 2, 2, true, out);
    assert_floats(out, (float[]){4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13}, 16, 0);
    crop_at(IG_PAD_CONSTANT, 2, 2, 1, true, out); /* window cols -1..2, mirrored */
    assert_floats(out, (float[]){3, 2, 1, 0, 7, 6, 5, 0, 11, 10, 9, 0, 15, 14, 13, 0}, 16, 0);
}

Test(data, random_crop_positions_are_uniform_windows) {
    ig_transform *t = ig_tf_random_crop(4, 4, 2, IG_PAD_CONSTANT);
    cr_assert_not_null(t);
    float in[16], out[16], windows[25][16];
    ramp(in, 16);
    for (int p = 0; p < 25; p++) crop_at(IG_PAD_CONSTANT, 2, p / 5, p % 5, false, windows[p]);
    int hits[25] = {0};
    for (uint64_t idx = 0; idx < 1000; idx++) {
        cr_assert_eq(ig_transform_apply(t, in, 1, 4, 4, out, 7, 0, idx), IG_OK);
        int found = -1;
        for (int p = 0; p < 25 && found < 0; p++)
            if (!memcmp(out, windows[p], sizeof out)) found = p;
        cr_assert_geq(found, 0, "index %llu gave no crop window", (unsigned long long)idx);
        hits[found]++;
    }
    for (int p = 0; p < 25; p++) cr_assert(hits[p] >= 15 && hits[p] <= 80, "window %d hit %d times", p, hits[p]);
    /* Without padding and with the full size there is one window: the image. */
    ig_transform_free(t);
    t = ig_tf_random_crop(4, 4, 0, IG_PAD_REFLECT);
    cr_assert_eq(ig_transform_apply(t, in, 1, 4, 4, out, 7, 0, 3), IG_OK);
    assert_floats(out, in, 16, 0);
    ig_transform_free(t);
}

Test(data, hflip_probability_one_and_zero) {
    float in[24], out[24];
    ramp(in, 24); /* [2,3,4] */
    ig_transform *t = ig_tf_random_hflip(1.0);
    cr_assert_eq(ig_transform_apply(t, in, 2, 3, 4, out, 1, 2, 3), IG_OK);
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 4; j++) cr_assert_eq(out[r * 4 + j], in[r * 4 + 3 - j]);
    ig_transform_free(t);
    t = ig_tf_random_hflip(0.0);
    cr_assert_eq(ig_transform_apply(t, in, 2, 3, 4, out, 1, 2, 3), IG_OK);
    assert_floats(out, in, 24, 0);
    ig_transform_free(t);
    /* p = 0.5: about half the items are flipped. */
    t = ig_tf_random_hflip(0.5);
    int flipped = 0;
    for (uint64_t i = 0; i < 400; i++) {
        cr_assert_eq(ig_transform_apply(t, in, 2, 3, 4, out, 1, 0, i), IG_OK);
        flipped += out[0] == in[3];
    }
    cr_assert(flipped > 150 && flipped < 250, "%d of 400 flipped", flipped);
    ig_transform_free(t);
}

Test(data, crop_then_flip_fused_matches_separate_steps) {
    float in[16], fused[16], crop[16];
    ramp(in, 16);
    ig_transform *c1 = ig_tf_random_crop(4, 4, 1, IG_PAD_EDGE);
    ig_transform *pipe = ig_tf_compose(2, (ig_transform *[]){ig_tf_random_crop(4, 4, 1, IG_PAD_EDGE),
                                                             ig_tf_random_hflip(1.0)});
    cr_assert_not_null(pipe);
    for (uint64_t i = 0; i < 50; i++) {
        /* Position 0 of the compose draws as the crop alone does. */
        cr_assert_eq(ig_transform_apply(c1, in, 1, 4, 4, crop, 9, 1, i), IG_OK);
        cr_assert_eq(ig_transform_apply(pipe, in, 1, 4, 4, fused, 9, 1, i), IG_OK);
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++) cr_assert_eq(fused[r * 4 + j], crop[r * 4 + 3 - j]);
    }
    ig_transform_free(c1);
    ig_transform_free(pipe);
}

Test(data, rotate_by_known_angles) {
    float in[16], out[16];
    ramp(in, 16);
    igi_tf_rotate(in, 1, 4, 4, 0.0, out);
    assert_floats(out, in, 16, 0);
    /* Counter-clockwise by 90: out[i][j] = in[j][w-1-i]. */
    igi_tf_rotate(in, 1, 4, 4, 90.0, out);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) cr_assert_eq(out[i * 4 + j], in[j * 4 + 3 - i], "(%d,%d)", i, j);
    igi_tf_rotate(in, 1, 4, 4, -90.0, out);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) cr_assert_eq(out[i * 4 + j], in[(3 - j) * 4 + i], "(%d,%d)", i, j);
    igi_tf_rotate(in, 1, 4, 4, 180.0, out);
    for (int i = 0; i < 16; i++) cr_assert_eq(out[i], in[15 - i]);
    /* 45 degrees on 4x4: the corners come from outside (zero); the centre 2x2 stays inside. */
    igi_tf_rotate(in, 1, 4, 4, 45.0, out);
    cr_assert(out[0] == 0 && out[3] == 0 && out[12] == 0 && out[15] == 0);
    for (int i = 0; i < 16; i++) cr_assert(out[i] == 0 || (out[i] >= 1 && out[i] <= 16));
    /* Odd size, 3 channels: the centre pixel is fixed and channels move together. */
    float in3[27], out3[27];
    ramp(in3, 27);
    igi_tf_rotate(in3, 3, 3, 3, 90.0, out3);
    for (int ch = 0; ch < 3; ch++) {
        cr_assert_eq(out3[ch * 9 + 4], in3[ch * 9 + 4]);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) cr_assert_eq(out3[ch * 9 + i * 3 + j], in3[ch * 9 + j * 3 + 2 - i]);
    }
}

Test(data, random_rotation_invariants) {
    float ones[64], out[64];
    for (int i = 0; i < 64; i++) ones[i] = 1.0f;
    ig_transform *t = ig_tf_random_rotation(30.0);
    int differ = 0;
    float prev_sum = -1;
    for (uint64_t idx = 0; idx < 50; idx++) {
        cr_assert_eq(ig_transform_apply(t, ones, 1, 8, 8, out, 3, 0, idx), IG_OK);
        float sum = 0;
        for (int i = 0; i < 64; i++) {
            cr_assert(out[i] == 0.0f || out[i] == 1.0f);
            sum += out[i];
        }
        /* The inner 4x4 never leaves the image for |angle| <= 30. */
        for (int i = 2; i < 6; i++)
            for (int j = 2; j < 6; j++) cr_assert_eq(out[i * 8 + j], 1.0f);
        differ += sum != prev_sum;
        prev_sum = sum;
    }
    cr_assert_gt(differ, 10, "angles do not vary");
    ig_transform_free(t);
    t = ig_tf_random_rotation(0.0);
    cr_assert_eq(ig_transform_apply(t, ones, 1, 8, 8, out, 3, 0, 1), IG_OK);
    assert_floats(out, ones, 64, 0);
    ig_transform_free(t);
}

Test(data, resize_bilinear_hand_values) {
    float out[16];
    /* Up: 2x2 -> 4x4 (align_corners=False): weights 1, .75/.25, .25/.75, 1. */
    float in2[4] = {0, 4, 8, 12};
    igi_tf_resize_region(in2, 1, 2, 2, 0, 0, 2, 2, 4, 4, out);
    assert_floats(out, (float[]){0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12}, 16, 1e-6f);
    /* Down: 4x4 -> 2x2 averages 2x2 blocks. */
    float in4[16];
    ramp(in4, 16);
    ig_transform *t = ig_tf_resize(2, 2);
    cr_assert_eq(ig_transform_apply(t, in4, 1, 4, 4, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){3.5f, 5.5f, 11.5f, 13.5f}, 4, 1e-6f);
    ig_transform_free(t);
    /* 3 -> 2 along a row: sources 0.25 and 1.75. */
    float row[3] = {0, 4, 8};
    igi_tf_resize_region(row, 1, 1, 3, 0, 0, 1, 3, 1, 2, out);
    assert_floats(out, (float[]){1, 7}, 2, 1e-6f);
    /* Same size is the identity; a region of a bigger image is read in place. */
    igi_tf_resize_region(in4, 1, 4, 4, 1, 2, 2, 2, 2, 2, out);
    assert_floats(out, (float[]){7, 8, 11, 12}, 4, 0);
    int oc, oh, ow;
    t = ig_tf_resize(5, 7);
    ig_transform_out_shape(t, 3, 10, 10, &oc, &oh, &ow);
    cr_assert(oc == 3 && oh == 5 && ow == 7);
    ig_transform_free(t);
}

Test(data, center_crop_rounding_and_padding) {
    float in[25], out[16];
    ramp(in, 25); /* 5x5 */
    ig_transform *t = ig_tf_center_crop(2, 2); /* top = round(1.5) = 2 */
    cr_assert_eq(ig_transform_apply(t, in, 1, 5, 5, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){13, 14, 18, 19}, 4, 0);
    ig_transform_free(t);
    t = ig_tf_center_crop(3, 1); /* top = round(1.0) = 1, left = round(2.0) = 2 */
    cr_assert_eq(ig_transform_apply(t, in, 1, 5, 5, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){8, 13, 18}, 3, 0);
    ig_transform_free(t);
    float in4[16];
    ramp(in4, 16);
    t = ig_tf_center_crop(1, 1); /* round(1.5) = 2 */
    cr_assert_eq(ig_transform_apply(t, in4, 1, 4, 4, out, 0, 0, 0), IG_OK);
    cr_assert_eq(out[0], 11.0f);
    ig_transform_free(t);
    t = ig_tf_center_crop(3, 3); /* round(0.5) = 0 */
    cr_assert_eq(ig_transform_apply(t, in4, 1, 4, 4, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){1, 2, 3, 5, 6, 7, 9, 10, 11}, 9, 0);
    ig_transform_free(t);
    /* Larger than the image: zero padding, (4-2)//2 = 1 before. */
    float in2[4] = {1, 2, 3, 4};
    t = ig_tf_center_crop(4, 4);
    cr_assert_eq(ig_transform_apply(t, in2, 1, 2, 2, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0}, 16, 0);
    ig_transform_free(t);
    t = ig_tf_center_crop(3, 3); /* (3-2)//2 = 0 before, 1 after */
    cr_assert_eq(ig_transform_apply(t, in2, 1, 2, 2, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){1, 2, 0, 3, 4, 0, 0, 0, 0}, 9, 0);
    ig_transform_free(t);
}

Test(data, normalize_values) {
    float in[8] = {0, 0.5f, 1, 0.25f, 0, 0.5f, 1, 0.75f}, out[8];
    ig_transform *t = ig_tf_normalize(2, (float[]){0.5f, 0.25f}, (float[]){0.5f, 2.0f});
    cr_assert_not_null(t);
    cr_assert_eq(ig_transform_apply(t, in, 2, 2, 2, out, 0, 0, 0), IG_OK);
    assert_floats(out, (float[]){-1, 0, 1, -0.5f, -0.125f, 0.125f, 0.375f, 0.25f}, 8, 1e-7f);
    /* Wrong channel count. */
    ig_clear_error();
    cr_assert_eq(ig_transform_apply(t, in, 1, 2, 4, out, 0, 0, 0), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_transform_apply");
    cr_assert(strstr(ig_last_error(), "normalize"));
    ig_transform_free(t);
}

Test(data, color_jitter_identity_and_factors) {
    float in[48], out[48];
    for (int i = 0; i < 48; i++) in[i] = 0.3f + 0.4f * (float)(i % 7) / 6.0f; /* in [0.3, 0.7] */
    ig_transform *t = ig_tf_color_jitter(0, 0, 0);
    cr_assert_eq(ig_transform_apply(t, in, 3, 4, 4, out, 5, 0, 0), IG_OK);
    assert_floats(out, in, 48, 0);
    ig_transform_free(t);
    /* Brightness alone scales every pixel by one factor in [0.8, 1.2]. */
    t = ig_tf_color_jitter(0.2, 0, 0);
    bool varied = false;
    for (uint64_t idx = 0; idx < 20; idx++) {
        cr_assert_eq(ig_transform_apply(t, in, 3, 4, 4, out, 5, 0, idx), IG_OK);
        float f = out[0] / in[0];
        cr_assert(f >= 0.8f - 1e-6f && f <= 1.2f + 1e-6f);
        for (int i = 0; i < 48; i++) cr_assert(fabsf(out[i] - f * in[i]) < 1e-5f);
        varied |= fabsf(f - 1.0f) > 1e-3f;
    }
    cr_assert(varied);
    ig_transform_free(t);
    /* Contrast on one channel keeps the mean (no clamping in this range). */
    t = ig_tf_color_jitter(0, 0.3, 0);
    double m_in = 0, m_out = 0;
    cr_assert_eq(ig_transform_apply(t, in, 1, 4, 4, out, 5, 0, 1), IG_OK);
    for (int i = 0; i < 16; i++) m_in += in[i], m_out += out[i];
    cr_assert(fabs(m_in - m_out) < 1e-4);
    ig_transform_free(t);
    /* Saturation leaves a gray image (r = g = b) gray: its grayscale is itself (to 1e-4). */
    float gray[48];
    for (int i = 0; i < 16; i++) gray[i] = gray[16 + i] = gray[32 + i] = in[i];
    t = ig_tf_color_jitter(0, 0, 0.9);
    cr_assert_eq(ig_transform_apply(t, gray, 3, 4, 4, out, 5, 0, 2), IG_OK);
    assert_floats(out, gray, 48, 1e-4f);
    /* ...and is for 3 channels only. */
    ig_clear_error();
    cr_assert_eq(ig_transform_apply(t, in, 1, 4, 4, out, 5, 0, 2), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "saturation");
    ig_transform_free(t);
    /* Values stay in [0, 1] under strong jitter. */
    t = ig_tf_color_jitter(0.9, 0.9, 0.9);
    for (uint64_t idx = 0; idx < 20; idx++) {
        cr_assert_eq(ig_transform_apply(t, in, 3, 4, 4, out, 5, 0, idx), IG_OK);
        for (int i = 0; i < 48; i++) cr_assert(out[i] >= 0.0f && out[i] <= 1.0f);
    }
    ig_transform_free(t);
}

Test(data, random_erasing_rectangle_within_bounds) {
    enum { C = 2, H = 10, W = 12 };
    float in[C * H * W], out[C * H * W];
    for (int i = 0; i < C * H * W; i++) in[i] = 1.0f;
    ig_transform *t = ig_tf_random_erasing(1.0, 0.1, 0.2, 0.5, 2.0);
    int erased_items = 0;
    for (uint64_t idx = 0; idx < 100; idx++) {
        cr_assert_eq(ig_transform_apply(t, in, C, H, W, out, 11, 0, idx), IG_OK);
        int i0 = H, i1 = -1, j0 = W, j1 = -1, zeros = 0;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                cr_assert_eq(out[i * W + j], out[H * W + i * W + j], "channels erased alike");
                if (out[i * W + j] == 0.0f) {
                    zeros++;
                    i0 = i < i0 ? i : i0, i1 = i > i1 ? i : i1;
                    j0 = j < j0 ? j : j0, j1 = j > j1 ? j : j1;
                }
            }
        if (!zeros) continue;
        erased_items++;
        /* One full rectangle whose area is about scale * H * W (sides are rounded). */
        cr_assert_eq(zeros, (i1 - i0 + 1) * (j1 - j0 + 1));
        cr_assert(zeros >= 6 && zeros <= 36, "erased %d of 120", zeros);
    }
    cr_assert_eq(erased_items, 100, "p = 1 erases every item");
    ig_transform_free(t);
    t = ig_tf_random_erasing(0.0, 0.1, 0.2, 0.5, 2.0);
    cr_assert_eq(ig_transform_apply(t, in, C, H, W, out, 11, 0, 0), IG_OK);
    assert_floats(out, in, C * H * W, 0);
    ig_transform_free(t);
}

Test(data, random_resized_crop_full_and_fallback) {
    float in[64], out[64], want[64];
    ramp(in, 64); /* 8x8 */
    /* scale 1, ratio 1: the whole image, resized. */
    ig_transform *t = ig_tf_random_resized_crop(4, 4, 1.0, 1.0, 1.0, 1.0);
    cr_assert_eq(ig_transform_apply(t, in, 1, 8, 8, out, 1, 0, 5), IG_OK);
    igi_tf_resize_region(in, 1, 8, 8, 0, 0, 8, 8, 4, 4, want);
    assert_floats(out, want, 16, 0);
    ig_transform_free(t);
    /* ratio 2 cannot fit at scale 1 (width 11 > 8): the fallback is the central 4x8 band. */
    t = ig_tf_random_resized_crop(4, 8, 1.0, 1.0, 2.0, 2.0);
    cr_assert_eq(ig_transform_apply(t, in, 1, 8, 8, out, 1, 0, 5), IG_OK);
    assert_floats(out, in + 16, 32, 0);
    ig_transform_free(t);
    /* Random regions: values stay within the image's range, and vary by index. */
    t = ig_tf_random_resized_crop(5, 5, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0);
    float first[25];
    int differ = 0;
    for (uint64_t idx = 0; idx < 20; idx++) {
        cr_assert_eq(ig_transform_apply(t, in, 1, 8, 8, out, 1, 0, idx), IG_OK);
        for (int i = 0; i < 25; i++) cr_assert(out[i] >= 1.0f && out[i] <= 64.0f);
        if (idx == 0) memcpy(first, out, sizeof first);
        else differ += memcmp(first, out, sizeof first) != 0;
    }
    cr_assert_gt(differ, 15);
    ig_transform_free(t);
}

Test(data, transforms_are_keyed_by_seed_epoch_index) {
    ig_transform *t = ig_tf_parse("crop:2,flip,rotate:20,jitter:0.3,erase:0.5", 3, 8, 8);
    cr_assert_not_null(t, "%s", ig_last_error());
    float in[192], a[192], b[192];
    for (int i = 0; i < 192; i++) in[i] = (float)((i * 37) % 101) / 100.0f;
    cr_assert_eq(ig_transform_apply(t, in, 3, 8, 8, a, 42, 3, 17), IG_OK);
    cr_assert_eq(ig_transform_apply(t, in, 3, 8, 8, b, 42, 3, 17), IG_OK);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "same key, same output");
    int differ = 0;
    uint64_t keys[3][3] = {{42, 3, 18}, {42, 4, 17}, {43, 3, 17}};
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(ig_transform_apply(t, in, 3, 8, 8, b, keys[k][0], keys[k][1], keys[k][2]), IG_OK);
        differ += memcmp(a, b, sizeof a) != 0;
    }
    cr_assert_eq(differ, 3, "index, epoch and seed each change the draw");
    ig_transform_free(t);
}

Test(data, parse_specs) {
    ig_transform *t = ig_tf_parse(" crop:4 , flip,erase:0.25,rotate:10,jitter:0.2", 1, 28, 28);
    cr_assert_not_null(t, "%s", ig_last_error());
    int oc, oh, ow;
    ig_transform_out_shape(t, 1, 28, 28, &oc, &oh, &ow);
    cr_assert(oc == 1 && oh == 28 && ow == 28);
    float in[784], out[784];
    for (int i = 0; i < 784; i++) in[i] = 0.5f;
    /* jitter on one channel has no saturation part, so this applies. */
    cr_assert_eq(ig_transform_apply(t, in, 1, 28, 28, out, 1, 0, 0), IG_OK, "%s", ig_last_error());
    ig_transform_free(t);
    t = ig_tf_parse("", 3, 4, 4); /* nothing: the identity */
    cr_assert_not_null(t);
    cr_assert_eq(ig_transform_apply(t, in, 3, 4, 4, out, 1, 0, 0), IG_OK);
    assert_floats(out, in, 48, 0);
    ig_transform_free(t);

    const char *bad[][2] = {{"crop:x", "crop:x"},      {"blur", "blur"},     {"crop:4,,flip", "empty"},
                            {"erase:2", "erase:2"},    {"crop", "crop"},     {"rotate:-1", "rotate:-1"},
                            {"flip,", "empty"},        {"crop:2.5", "crop:2.5"}, {"jitter:", "jitter:"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ig_clear_error();
        cr_assert_null(ig_tf_parse(bad[i][0], 1, 8, 8), "'%s' parsed", bad[i][0]);
        ASSERT_ERR(IG_ERR_ARG, "ig_tf_parse");
        cr_assert(strstr(ig_last_error(), bad[i][1]), "'%s': message '%s'", bad[i][0], ig_last_error());
    }
    ig_clear_error();
    cr_assert_null(ig_tf_parse(NULL, 1, 8, 8));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_parse");
    ig_clear_error();
    cr_assert_null(ig_tf_parse("flip", 0, 8, 8));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_parse");
}

Test(data, constructor_and_apply_errors) {
    struct {
        ig_transform *t;
        const char *op;
    } cases[] = {
        {ig_tf_random_crop(0, 4, 0, IG_PAD_CONSTANT), "ig_tf_random_crop"},
        {ig_tf_random_crop(4, 4, -1, IG_PAD_CONSTANT), "ig_tf_random_crop"},
        {ig_tf_random_crop(4, 4, 1, (ig_pad_mode)9), "ig_tf_random_crop"},
        {ig_tf_random_hflip(1.5), "ig_tf_random_hflip"},
        {ig_tf_random_rotation(-3), "ig_tf_random_rotation"},
        {ig_tf_random_resized_crop(4, 4, 0.0, 1.0, 0.75, 1.33), "ig_tf_random_resized_crop"},
        {ig_tf_random_resized_crop(4, 4, 0.5, 0.2, 0.75, 1.33), "ig_tf_random_resized_crop"},
        {ig_tf_random_resized_crop(4, 4, 0.1, 1.0, 0.0, 1.33), "ig_tf_random_resized_crop"},
        {ig_tf_resize(3, 0), "ig_tf_resize"},
        {ig_tf_center_crop(-1, 3), "ig_tf_center_crop"},
        {ig_tf_color_jitter(0.1, -0.2, 0), "ig_tf_color_jitter"},
        {ig_tf_random_erasing(0.5, 0.1, 1.5, 0.3, 3.3), "ig_tf_random_erasing"},
        {ig_tf_random_erasing(-0.5, 0.1, 0.3, 0.3, 3.3), "ig_tf_random_erasing"},
        {ig_tf_normalize(2, (float[]){0, 0}, (float[]){1, 0}), "ig_tf_normalize"},
        {ig_tf_normalize(0, (float[]){0}, (float[]){1}), "ig_tf_normalize"},
    };
    /* Every bad constructor returned NULL; a few re-run here to check their messages. */
    ig_clear_error();
    cr_assert_null(ig_tf_random_crop(0, 4, 0, IG_PAD_CONSTANT));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_random_crop");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) cr_assert_null(cases[i].t, "case %zu", i);
    ig_clear_error();
    cr_assert_null(ig_tf_random_erasing(0.5, 0.1, 1.5, 0.3, 3.3));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_random_erasing");
    ig_clear_error();
    cr_assert_null(ig_tf_normalize(2, (float[]){0, 0}, (float[]){1, 0}));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_normalize");
    ig_clear_error();
    cr_assert_null(ig_tf_normalize(2, NULL, (float[]){1, 1}));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_normalize");
    ig_clear_error();
    cr_assert_null(ig_tf_color_jitter(0.1, -0.2, 0));
    ASSERT_ERR(IG_ERR_ARG, "contrast");

    /* Compose takes ownership: a NULL entry frees the others (the sanitizer run checks). */
    ig_clear_error();
    cr_assert_null(ig_tf_compose(2, (ig_transform *[]){ig_tf_random_hflip(0.5), NULL}));
    ASSERT_ERR(IG_ERR_ARG, "ig_tf_compose");
    /* Nested composes flatten; an empty compose is the identity. */
    ig_transform *inner = ig_tf_compose(1, (ig_transform *[]){ig_tf_resize(2, 2)});
    ig_transform *outer = ig_tf_compose(2, (ig_transform *[]){inner, ig_tf_center_crop(1, 1)});
    cr_assert_not_null(outer);
    int oc, oh, ow;
    ig_transform_out_shape(outer, 3, 9, 9, &oc, &oh, &ow);
    cr_assert(oc == 3 && oh == 1 && ow == 1);
    ig_transform_free(outer);
    ig_transform_free(NULL);

    /* Apply errors: a crop larger than the padded image, bad sizes, NULLs. */
    float in[16] = {0}, out[64];
    ig_transform *t = ig_tf_random_crop(8, 8, 1, IG_PAD_CONSTANT);
    ig_clear_error();
    cr_assert_eq(ig_transform_apply(t, in, 1, 4, 4, out, 0, 0, 0), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_transform_apply");
    cr_assert(strstr(ig_last_error(), "random_crop"));
    ig_clear_error();
    cr_assert_eq(ig_transform_apply(t, in, 1, 0, 4, out, 0, 0, 0), IG_ERR_SHAPE);
    ASSERT_ERR(IG_ERR_SHAPE, "ig_transform_apply");
    ig_clear_error();
    cr_assert_eq(ig_transform_apply(t, NULL, 1, 4, 4, out, 0, 0, 0), IG_ERR_ARG);
    ASSERT_ERR(IG_ERR_ARG, "ig_transform_apply");
    ig_transform_free(t);
}
