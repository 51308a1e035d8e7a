/*
 * data/data_impl.h — the inside of a dataset and the helpers the format readers share.
 * Never installed.
 *
 * Invariants:
 *  - A dataset is an ops table plus an owned ctx; ig_dataset_free calls ops.free_ctx(ctx).
 *  - ndim is 1..3, every shape entry >= 1, numel = product of shape (fits in int64 and in
 *    size_t with room to spare: ig_dataset_new refuses more than IGI_DATA_MAX_NUMEL).
 *  - class_names has num_classes entries, each a heap string owned by the dataset.
 *  - ops.read is called only with 0 <= i < length; it may run on several threads at once,
 *    so readers keep no mutable state in ctx (decoders allocate per call).
 *
 * Readers never allocate more than a file can hold: every size taken from a header is
 * checked for overflow, against IGI_DATA_MAX_BYTES and against the file's real size (or,
 * for gzip, memory grows only as decompressed bytes actually arrive).
 */
#ifndef IGNIS_DATA_DATA_IMPL_H
#define IGNIS_DATA_DATA_IMPL_H

#include <sys/stat.h>

#include "../core/tensor_impl.h"
#include "data.h"

/* The largest file (or decompressed payload) a reader accepts: 4 GiB. */
#define IGI_DATA_MAX_BYTES ((uint64_t)1 << 32)
/* The largest item a dataset may have, in floats (an item is one read() into a batch slot). */
#define IGI_DATA_MAX_NUMEL ((int64_t)1 << 28)
/* The largest image side the PNG reader accepts (checked before any allocation). */
#define IGI_PNG_MAX_SIDE 16384u
/* Most classes a CSV label column may name (labels 0..IGI_CSV_MAX_CLASSES-1). */
#define IGI_CSV_MAX_CLASSES 65536

struct ig_dataset {
    ig_dataset_ops ops;
    void *ctx;
    int ndim;
    int64_t shape[3];
    int64_t numel;       /* floats per item */
    int num_classes;
    char **class_names;  /* num_classes owned strings */
};

/* v / 255.0f for every byte value, the same float torchvision's ToTensor gives. */
extern const float igi_u8_to_unit[256];

/* Reads a whole regular file into a malloc'd buffer (*out, *n; a 0-byte file gives a
 * 1-byte buffer and n = 0). Errors (IG_ERR_IO for missing / not a regular file / read
 * failure, IG_ERR_FORMAT for a file larger than max_bytes) name op and path. */
ig_status igi_read_file(const char *op, const char *path, uint64_t max_bytes, uint8_t **out,
                        size_t *n);

/* After a call that failed inside a reader (e.g. ig_dataset_new out of memory): puts
 * "op: path: " before the current error message unless it already names path, so that
 * every failure of a reader names its file. */
void igi_error_in_file(const char *op, const char *path);

/* Joins dir and name with one '/'; NULL (with an error naming op) if it does not fit. */
char *igi_path_join(const char *op, const char *dir, const char *name);

/* Decimal class names "0".."n-1" (malloc'd array of malloc'd strings), NULL if out of memory. */
char **igi_class_names_numbered(int n);
void igi_class_names_free(char **names, int n);

/* ---- IDX (data/idx.c) ---------------------------------------------------------------- */

/* An IDX array of unsigned bytes decoded from memory: raw or gzip (by the magic bytes). */
typedef struct igi_idx_array {
    uint8_t *owned;      /* buffer to free() (raw: the file itself; gzip: the payload) */
    const uint8_t *data; /* the payload: prod(dims) bytes */
    int ndim;
    uint32_t dims[3];
    uint64_t count;      /* prod(dims) */
} igi_idx_array;

/* Decodes bytes[0..n) (named name in messages, op the public function) as an IDX u8 array
 * with want_ndim dims. */
ig_status igi_idx_decode(const char *op, const char *name, const uint8_t *bytes, size_t n,
                         int want_ndim, igi_idx_array *out);
/* The IDX dataset from two files already in memory (the fuzz entry point). */
ig_dataset *igi_dataset_idx_memory(const char *images_name, const uint8_t *images, size_t images_n,
                                   const char *labels_name, const uint8_t *labels, size_t labels_n);

/* ---- PNG (data/png_folder.c) ----------------------------------------------------------- */

/* What the IHDR of a PNG says. */
typedef struct igi_png_header {
    uint32_t width, height;
    int bit_depth, color_type, interlace;
} igi_png_header;

/* Checks the signature and IHDR chunk (CRC included) of the first bytes of a PNG file
 * (n of them, at least 33 needed) and fills h. Rejects zero or absurd sizes. */
ig_status igi_png_check_header(const char *op, const char *name, const uint8_t *bytes, size_t n,
                               igi_png_header *h);
/* Decodes a whole PNG from memory (every color type, bit depth and interlace) to 8-bit
 * pixels [h, w, channels] (channels 1 or 3; alpha dropped, 16-bit scaled with rounding,
 * RGB -> gray as L = (299 R + 587 G + 114 B + 500) / 1000). *pixels is malloc'd. */
ig_status igi_png_decode(const char *op, const char *name, const uint8_t *bytes, size_t n,
                         int channels, uint8_t **pixels, uint32_t *w, uint32_t *h);

#endif
