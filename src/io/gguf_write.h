#ifndef TPI_IO_GGUF_WRITE_H
#define TPI_IO_GGUF_WRITE_H
/* Writes GGUF v3 files (ggml's docs/gguf.md): the header, metadata key/values
 * of every gguf_type (arrays included), the tensor infos, padding to the
 * alignment, then the tensor data, each tensor starting at a multiple of
 * the alignment. The data is streamed: the caller declares every tensor
 * first (the infos need their offsets), then hands the bytes over in
 * declaration order, in as many pieces as it likes, so a converter holds one
 * row at a time rather than a model. core/gguf.h reads what this writes.
 *
 * Usage: create; add keys and tensors; begin (opens PATH.part and writes
 * everything up to the first tensor's bytes); data ... ; finish (checks every
 * byte arrived, renames PATH.part to PATH). free at any point discards a
 * partial file. Errors are sticky: a failed add makes begin fail with its
 * message, so callers may check once. */
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/gguf.h"
#include "tpinfer.h"

/* The alignment written as general.alignment and used for the data. */
#define TPI_GGUF_ALIGNMENT 32

typedef struct tpi_gguf_writer tpi_gguf_writer;

/* ggml's number for a tpinfer dtype (F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12,
 * Q6_K 14, BF16 30). */
uint32_t tpi_gguf_ggml_type(tpi_dtype t);

int tpi_gguf_writer_create(tpi_gguf_writer **out, tpi_error *err);
/* Removes a partial PATH.part when finish was not reached. */
void tpi_gguf_writer_free(tpi_gguf_writer *w);

/* A scalar key: `value` points at one value of `type` (U8 ... F64, BOOL as
 * one byte 0/1; not STRING or ARRAY). Keys must be unique (checked). */
int tpi_gguf_w_scalar(tpi_gguf_writer *w, const char *key, tpi_gguf_type type, const void *value);
int tpi_gguf_w_u32(tpi_gguf_writer *w, const char *key, uint32_t v);
int tpi_gguf_w_f32(tpi_gguf_writer *w, const char *key, float v);
int tpi_gguf_w_bool(tpi_gguf_writer *w, const char *key, int v);
/* A string key of `len` bytes (need not be NUL-terminated); _str takes a C string. */
int tpi_gguf_w_strn(tpi_gguf_writer *w, const char *key, const char *s, size_t len);
int tpi_gguf_w_str(tpi_gguf_writer *w, const char *key, const char *s);
/* An array of n scalars of `type` stored back to back at `elems` (BOOL: one
 * byte each). */
int tpi_gguf_w_arr(tpi_gguf_writer *w, const char *key, tpi_gguf_type type, const void *elems, int64_t n);
/* An array of n C strings. */
int tpi_gguf_w_arr_str(tpi_gguf_writer *w, const char *key, const char *const *strs, int64_t n);

/* Declares a tensor: ne in ggml order (ne[0] the innermost, the columns),
 * 1 to TPI_GGUF_MAX_DIMS of them; ne[0] a multiple of t's block. */
int tpi_gguf_w_tensor(tpi_gguf_writer *w, const char *name, tpi_dtype t, int n_dims, const int64_t *ne);

/* Creates PATH.part and writes the header, metadata, tensor infos and
 * padding. TPI_EIO names the path and the system's reason. */
int tpi_gguf_w_begin(tpi_gguf_writer *w, const char *path, tpi_error *err);
/* The next `bytes` bytes of tensor data, continuing the current tensor; a
 * piece may not run past the tensor it continues (TPI_EINVAL naming it). */
int tpi_gguf_w_data(tpi_gguf_writer *w, const void *data, size_t bytes, tpi_error *err);
/* Checks every declared byte arrived, flushes and renames PATH.part to PATH. */
int tpi_gguf_w_finish(tpi_gguf_writer *w, tpi_error *err);
#endif
