/*
 * data/data.h — datasets, transforms and the batch loader.
 *
 * A dataset is a small interface (length, read item i, item shape, class names) with
 * readers for IDX (MNIST / Fashion-MNIST / KMNIST; gzip or raw, detected by content),
 * CIFAR-10/100 binary batches, PNG image folders (root/<class>/NAME.png) and numeric CSV.
 * Readers validate everything they read: a bad file gives an error naming the file and
 * the problem, never a crash, a hang or an allocation larger than the file can hold.
 *
 * Items are float32: images as [C,H,W] with values in [0,1] (as torchvision's ToTensor),
 * CSV rows as [F] features. Labels are int64 class indices.
 *
 * Transforms follow torchvision's names, parameters and semantics. Every random choice is
 * drawn from a counter-based generator keyed by (seed, epoch, item index), so a run is
 * reproducible from its seed whatever the number of worker threads.
 *
 * The loader batches a dataset into reused [B,C,H,W] / [B] tensors, shuffling from its
 * seed, splitting each epoch across ranks like torch's DistributedSampler, with worker
 * threads that decode and augment batches ahead of the trainer.
 */
#ifndef IGNIS_DATA_DATA_H
#define IGNIS_DATA_DATA_H

#include "../core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_dataset ig_dataset;
typedef struct ig_transform ig_transform;
typedef struct ig_loader ig_loader;

/* ---- datasets -------------------------------------------------------------------------- */

/* The interface a dataset implements (for user-defined datasets). read must be safe to
 * call from several threads at once for different i. */
typedef struct ig_dataset_ops {
    int64_t (*length)(void *ctx);
    /* Writes item i (numel floats, see item_shape) into x and its label into *label. */
    ig_status (*read)(void *ctx, int64_t i, float *x, int64_t *label);
    void (*free_ctx)(void *ctx);
} ig_dataset_ops;

/* A dataset from an ops table; items have shape (ndim, shape), ndim 1..3. num_classes and
 * class_names (may be NULL: names "0", "1", ...) are copied. Takes ownership of ctx. */
IG_API ig_dataset *ig_dataset_new(const ig_dataset_ops *ops, void *ctx, int ndim,
                                  const int64_t *shape, int num_classes,
                                  const char *const *class_names);
IG_API void ig_dataset_free(ig_dataset *d);

/* IDX image file ([N,H,W] u8) and label file ([N] u8). Either may be gzip'd. */
IG_API ig_dataset *ig_dataset_idx(const char *images_path, const char *labels_path);
/* CIFAR binary batches: CIFAR-10 records are 1 label byte + 3072 pixel bytes; CIFAR-100
 * records are coarse + fine label bytes + 3072 (fine labels are used). */
IG_API ig_dataset *ig_dataset_cifar(const char *const *paths, int n, bool cifar100);
/* root/<class>/NAME.png; classes are the sorted folder names; images converted to channels
 * (1 or 3) and must all have the size of the first one. */
IG_API ig_dataset *ig_dataset_image_folder(const char *root, int channels);
/* Numeric CSV, one row per item; label_column (negative counts from the end) holds integer
 * classes; has_header skips the first line. Every row must have the same field count. */
IG_API ig_dataset *ig_dataset_csv(const char *path, int label_column, bool has_header);
/* Detects the format of a folder: IDX files (train-images-idx3-ubyte[.gz] etc.), CIFAR
 * batches (data_batch_*.bin / test_batch.bin, train.bin / test.bin), or train/ and test/
 * PNG folders. train selects the split. */
IG_API ig_dataset *ig_dataset_open(const char *dir, bool train);

IG_API int64_t ig_dataset_len(const ig_dataset *d);
/* Item shape: returns ndim (1..3) and fills shape. */
IG_API int ig_dataset_item_shape(const ig_dataset *d, int64_t shape[3]);
IG_API int ig_dataset_num_classes(const ig_dataset *d);
IG_API const char *ig_dataset_class_name(const ig_dataset *d, int c);
IG_API ig_status ig_dataset_get(ig_dataset *d, int64_t i, float *x, int64_t *label);
/* A view of d restricted to indices (copied); d must outlive it. */
IG_API ig_dataset *ig_dataset_subset(ig_dataset *d, const int64_t *indices, int64_t n);
/* Splits d into train/val subsets: a seeded permutation, the last round(n*val_fraction)
 * items go to val. */
IG_API ig_status ig_dataset_split(ig_dataset *d, double val_fraction, uint64_t seed,
                                  ig_dataset **train, ig_dataset **val);
/* Per-channel mean and std (population) over all items; mean/std have C entries. */
IG_API ig_status ig_dataset_mean_std(ig_dataset *d, double *mean, double *std);
/* Writes d as a PNG folder dir/<class name>/<index>.png (8-bit gray or RGB). */
IG_API ig_status ig_dataset_export_png(ig_dataset *d, const char *dir);

/* ---- transforms -------------------------------------------------------------------------- */
/* Applied to one [C,H,W] float image. Constructors return NULL on bad parameters. */

typedef enum ig_pad_mode { IG_PAD_CONSTANT = 0, IG_PAD_EDGE, IG_PAD_REFLECT, IG_PAD_SYMMETRIC } ig_pad_mode;

IG_API ig_transform *ig_tf_normalize(int channels, const float *mean, const float *std);
IG_API ig_transform *ig_tf_random_crop(int h, int w, int padding, ig_pad_mode mode);
IG_API ig_transform *ig_tf_random_hflip(double p);
/* Uniform angle in [-degrees, degrees], nearest interpolation, fill 0, as torchvision. */
IG_API ig_transform *ig_tf_random_rotation(double degrees);
/* torchvision RandomResizedCrop (bilinear); scale/ratio ranges; 10 tries then center crop. */
IG_API ig_transform *ig_tf_random_resized_crop(int h, int w, double scale_lo, double scale_hi,
                                               double ratio_lo, double ratio_hi);
IG_API ig_transform *ig_tf_resize(int h, int w); /* bilinear */
IG_API ig_transform *ig_tf_center_crop(int h, int w);
/* Factors drawn uniformly from [max(0,1-b), 1+b] etc.; saturation needs 3 channels. */
IG_API ig_transform *ig_tf_color_jitter(double brightness, double contrast, double saturation);
/* torchvision RandomErasing(p, scale, ratio, value=0). */
IG_API ig_transform *ig_tf_random_erasing(double p, double scale_lo, double scale_hi,
                                          double ratio_lo, double ratio_hi);
/* Applies ts in order; takes ownership of each (NULL entries make it fail, freeing all). */
IG_API ig_transform *ig_tf_compose(int n, ig_transform *const *ts);
/* Parses "crop:4,flip,erase:0.25,rotate:10,jitter:0.2" (the CLI's --augment) for images of
 * [c,h,w]; NULL and an error naming the bad item. */
IG_API ig_transform *ig_tf_parse(const char *spec, int c, int h, int w);
IG_API void ig_transform_free(ig_transform *t);
/* Output shape for an input of [c,h,w]. */
IG_API void ig_transform_out_shape(const ig_transform *t, int c, int h, int w, int *oc, int *oh, int *ow);
/* Applies t to in [c,h,w] writing out (out shape from ig_transform_out_shape; in and out
 * must not overlap). Random choices keyed by (seed, epoch, index). */
IG_API ig_status ig_transform_apply(const ig_transform *t, const float *in, int c, int h, int w,
                                    float *out, uint64_t seed, uint64_t epoch, uint64_t index);

/* ---- sampler and loader -------------------------------------------------------------------- */

/* The indices rank takes in an epoch, as torch's DistributedSampler: a permutation of
 * 0..n-1 from (seed, epoch) if shuffle, padded by wrapping to a multiple of world_size
 * (drop_last: truncated instead), then every world_size-th element from rank. out must hold
 * ig_sampler_count(...) entries. */
IG_API int64_t ig_sampler_count(int64_t n, int rank, int world_size, bool drop_last);
IG_API ig_status ig_sampler_indices(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int rank,
                                    int world_size, bool drop_last, int64_t *out);

typedef struct ig_loader_opts {
    int64_t batch_size;         /* required */
    bool shuffle;
    bool drop_last;             /* drop the last incomplete batch */
    uint64_t seed;
    int num_workers;            /* worker threads; 0 = load in the caller's thread */
    int prefetch;               /* batches prepared ahead (default 2 per worker) */
    int rank, world_size;       /* 0, 1 when not distributed (world_size 0 means 1) */
    const ig_transform *transform; /* may be NULL; not owned */
    /* Batches in page-locked host memory (torch's DataLoader(pin_memory=True)), so that
     * ig_to(x, IG_CUDA) is an asynchronous copy: it returns before the bytes have moved,
     * and the loader waits for that copy before it refills the buffer. The batches stay
     * IG_CPU tensors, read and written as usual. Where CUDA is not built or not available
     * the flag is accepted and batches use ordinary memory (results are the same either
     * way). Upload a batch only before the next ig_loader_next (its validity, as below). */
    bool pin_memory;
} ig_loader_opts;

IG_API ig_loader *ig_loader_new(ig_dataset *d, const ig_loader_opts *o);
/* Begins epoch e (shuffles with (seed, e)); stops any batches still in flight. */
IG_API ig_status ig_loader_start_epoch(ig_loader *l, int64_t epoch);
/* The next batch: 1 and x [B,C,H,W] f32 / y [B] int64 (loader-owned heap tensors, valid
 * until the next call; the last batch may be smaller), 0 at the end of the epoch, or a
 * negative status with an error (e.g. a file that cannot be read). */
IG_API int ig_loader_next(ig_loader *l, ig_tensor **x, ig_tensor **y);
IG_API int64_t ig_loader_num_batches(const ig_loader *l);
IG_API void ig_loader_free(ig_loader *l);

#ifdef __cplusplus
}
#endif

#endif
