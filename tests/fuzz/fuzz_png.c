/*
 * tests/fuzz/fuzz_png.c — libFuzzer target for the PNG reader, built by `make fuzz`: the
 * input is decoded from memory as 1 and as 3 channels (the same decoder a PNG folder's
 * read() runs on each file), after the header check the folder does at open. The fuzz
 * build defines IGI_FUZZING, which makes the reader ignore chunk CRCs so that mutations
 * reach the decoder instead of stopping at the first checksum.
 */
#include <stdint.h>
#include <stdlib.h>

#include "data/data_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    igi_png_header h;
    (void)igi_png_check_header("fuzz", "input", data, size, &h);
    for (int channels = 1; channels <= 3; channels += 2) {
        uint8_t *pix = NULL;
        uint32_t w = 0, hh = 0;
        if (igi_png_decode("fuzz", "input", data, size, channels, &pix, &w, &hh) == IG_OK) {
            /* touch every byte the decoder claims to have written */
            volatile uint8_t sum = 0;
            size_t n = (size_t)w * hh * (size_t)channels;
            for (size_t k = 0; k < n; k++) sum += pix[k];
            (void)sum;
            free(pix);
        } else if (pix) {
            abort(); /* a failed decode must not hand out a buffer */
        }
    }
    return 0;
}
