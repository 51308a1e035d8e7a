/*
 * core/safetensors.h — reading and writing tensors in the safetensors file format
 * (checkpoints that PyTorch's safetensors.torch.load_file reads).
 *
 * Layout of a file:
 *   bytes [0, 8)        N, the header length, a little-endian uint64
 *   bytes [8, 8+N)      a UTF-8 JSON object: for each tensor name
 *                         {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]}
 *                       (offsets relative to byte 8+N, end exclusive), plus an optional
 *                       "__metadata__" object of string -> string; padded with spaces
 *   bytes [8+N, size)   the tensors' raw little-endian bytes, row-major
 * ignis maps the dtype names F32, F64, I32, I64, U8 to IG_F32 ... IG_U8. Other names of the
 * format (F16, BF16, BOOL, I8, U16, ...) are reported as unsupported.
 *
 * Both directions are strict. The writer replaces a file atomically: a crash or a failure
 * at any moment leaves either the old file or the complete new one. The reader checks
 * everything a hostile or damaged file could get wrong before using any number from it.
 */
#ifndef IGNIS_CORE_SAFETENSORS_H
#define IGNIS_CORE_SAFETENSORS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header the reader accepts (as the format's reference reader). */
#define IG_SAFETENSORS_MAX_HEADER 100000000u

/* Writes n tensors and n_meta metadata pairs to path, replacing any file there.
 *
 * ts[i].name: non-NULL, non-empty UTF-8, unique, not "__metadata__". ts[i].tensor: a CPU
 * tensor of any dtype, shape (0-dim and zero-size too) and strides; it is written
 * contiguous, row-major. Tensors are laid out in the order given and the header lists them
 * in that order, after "__metadata__" (present only when n_meta > 0). Metadata keys are
 * unique non-NULL UTF-8 strings and values non-NULL UTF-8 strings; both are JSON-escaped.
 * The header is padded with spaces so the data starts at a multiple of 8 bytes.
 * n == 0 writes a file with no tensors.
 *
 * Atomic: the bytes go to a temporary file "path.tmpXXXXXX" in path's folder, which is
 * fsync'd, renamed over path, and then the folder is fsync'd. The new file gets the mode of
 * the file it replaces, or 0644. On failure nothing is left behind and an existing file at
 * path is untouched (except when only the final folder fsync fails: the new file is then in
 * place but its durability is unknown; the message says so).
 *
 * Returns IG_OK, or: IG_ERR_ARG (NULL arguments, bad/duplicate names, n or n_meta < 0),
 * IG_ERR_DEVICE (a tensor not on the CPU), IG_ERR_IO (the message names the file and the
 * system's reason), IG_ERR_NOMEM. */
IG_API ig_status ig_safetensors_save(const char *path, const ig_named_tensor *ts, int n,
                                     const char *const *meta_keys,
                                     const char *const *meta_values, int n_meta);

/* A loaded file: its tensors and metadata. Opaque. */
typedef struct ig_safetensors ig_safetensors;

/* Reads and validates a whole file. Returns NULL on any problem with ig_last_error() naming
 * the file and the problem ("ig_safetensors_load: ck/last.safetensors: tensor '0.weight'
 * data_offsets [0, 100] do not match dtype F32 shape [5,6] (120 bytes)"); the status is
 * IG_ERR_IO for a file that cannot be opened or read, IG_ERR_FORMAT for bad content,
 * IG_ERR_DTYPE for a valid but unsupported dtype, IG_ERR_NOMEM. Checked: file at least 8
 * bytes; N <= size - 8 and N <= IG_SAFETENSORS_MAX_HEADER; the header is strict UTF-8 JSON
 * starting with '{' (trailing whitespace allowed, nesting limited); each entry is an object
 * with exactly "dtype", "shape" and "data_offsets"; dtype names are known; dims are
 * integers >= 0, at most IG_MAX_DIMS of them, whose product times the element size does
 * not overflow and equals end - begin; begin <= end; the byte ranges sorted by offset tile
 * the data section exactly (start at 0, no gap, no overlap, end at its end); names are
 * unique and hold no NUL; "__metadata__" (if present, and not null) maps keys to strings.
 * The tensors are heap tensors owned by the returned object (see ig_safetensors_tensor). */
IG_API ig_safetensors *ig_safetensors_load(const char *path);
/* The same for a file image in memory; label names it in messages (NULL: "<memory>").
 * buf is only read during the call. */
IG_API ig_safetensors *ig_safetensors_load_memory(const void *buf, size_t len, const char *label);
/* Frees the object and drops its reference to each tensor (a tensor retained by the
 * caller with ig_tensor_retain lives on). NULL is fine. */
IG_API void ig_safetensors_free(ig_safetensors *st);

/* Number of tensors (-1 and an error if st is NULL). */
IG_API int ig_safetensors_count(const ig_safetensors *st);
/* Tensors are numbered in the order the header lists them. Out-of-range i: NULL and
 * IG_ERR_ARG. The name is valid while st lives. */
IG_API const char *ig_safetensors_name(const ig_safetensors *st, int i);
/* Tensor i: a contiguous CPU heap tensor owned by st, valid until ig_safetensors_free(st);
 * call ig_tensor_retain to keep it longer (then ig_tensor_free it). Writable. */
IG_API ig_tensor *ig_safetensors_tensor(const ig_safetensors *st, int i);
/* The tensor named name (ownership as ig_safetensors_tensor), or NULL if there is none;
 * an absent name sets no error. */
IG_API ig_tensor *ig_safetensors_find(const ig_safetensors *st, const char *name);
/* Index of the tensor named name, or -1 if none (no error set). */
IG_API int ig_safetensors_index(const ig_safetensors *st, const char *name);

/* Metadata, in header order. meta returns the value for key, or NULL if absent (no error
 * set). Strings are valid while st lives. */
IG_API int ig_safetensors_meta_count(const ig_safetensors *st);
IG_API const char *ig_safetensors_meta_key(const ig_safetensors *st, int i);
IG_API const char *ig_safetensors_meta_value(const ig_safetensors *st, int i);
IG_API const char *ig_safetensors_meta(const ig_safetensors *st, const char *key);

#ifdef __cplusplus
}
#endif

#endif
