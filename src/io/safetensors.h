#ifndef TPI_IO_SAFETENSORS_H
#define TPI_IO_SAFETENSORS_H
/* Memory-mapped safetensors files (https://github.com/huggingface/safetensors):
 * 8-byte little-endian header length, JSON header, then the tensor bytes. Every
 * size and offset is validated at open, as strictly as the reference's
 * Metadata::validate (safetensors/src/tensor.rs): a header of at most
 * TPI_ST_MAX_HEADER bytes of UTF-8 JSON, unique names without NUL, dtype size x
 * shape = byte length, and byte ranges that tile the data section from 0 to its
 * end with no hole, overlap or trailing byte. A tensor's bytes can then be read
 * without further checks. */
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "tpinfer.h"

#define TPI_ST_MAX_DIMS 8
/* The reference's MAX_HEADER_SIZE. */
#define TPI_ST_MAX_HEADER 100000000

typedef struct tpi_st_tensor {
    char *name;
    char dtype_name[16]; /* as written in the file */
    int dtype_ok;        /* 1 when dtype_name is one tpinfer computes with */
    tpi_dtype dtype;
    int n_dims;
    int64_t shape[TPI_ST_MAX_DIMS];
    int64_t numel;
    uint64_t bytes;
    const uint8_t *data; /* inside the mapping */
} tpi_st_tensor;

typedef struct tpi_st_file {
    char *path;
    const void *map;
    size_t map_bytes;
    tpi_st_tensor *tensors; /* in header order */
    int64_t n_tensors;
    tpi_st_tensor **by_name; /* the same tensors sorted by name, for tpi_st_find */
} tpi_st_file;

/* Maps and validates `path`; *out is freed with tpi_st_close. Errors: TPI_EIO
 * (cannot open or map), TPI_EFORMAT (malformed, naming the tensor), TPI_ENOMEM. */
int tpi_st_open(tpi_st_file **out, const char *path, tpi_error *err);
void tpi_st_close(tpi_st_file *f);
/* Binary search by name, O(log n); NULL when absent. */
const tpi_st_tensor *tpi_st_find(const tpi_st_file *f, const char *name);

/* A tensor to write: data holds numel * dtype size bytes. */
typedef struct tpi_st_out {
    const char *name;
    tpi_dtype dtype;
    int n_dims;
    int64_t shape[TPI_ST_MAX_DIMS];
    const void *data;
} tpi_st_out;

/* Writes tensors in the given order, header padded with spaces to 8 bytes. */
int tpi_st_write(const char *path, const tpi_st_out *tensors, int64_t n, tpi_error *err);
#endif
