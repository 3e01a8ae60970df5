#ifndef TPI_CORE_GGUF_H
#define TPI_CORE_GGUF_H
/* GGUF v3 files (ggml's docs/gguf.md): memory-mapped, every count, length,
 * offset and size validated at open as safetensors' are (io/safetensors.h), so
 * that a key's value or a tensor's bytes can then be read without further
 * checks. A model split by gguf-split (NAME-00001-of-0000N.gguf) opens as one:
 * its metadata is the first file's, its tensors are all the files'. The
 * container only: what the keys and tensors mean is io/gguf_model.c's (config,
 * tensor names) and tokenizer/gguf_vocab.c's. In core so that both io and
 * tokenizer can read it. */
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "tpinfer.h"

/* GGUF's value types (gguf_type). */
typedef enum tpi_gguf_type {
    TPI_GGUF_U8 = 0, TPI_GGUF_I8 = 1, TPI_GGUF_U16 = 2, TPI_GGUF_I16 = 3,
    TPI_GGUF_U32 = 4, TPI_GGUF_I32 = 5, TPI_GGUF_F32 = 6, TPI_GGUF_BOOL = 7,
    TPI_GGUF_STRING = 8, TPI_GGUF_ARRAY = 9, TPI_GGUF_U64 = 10, TPI_GGUF_I64 = 11,
    TPI_GGUF_F64 = 12,
} tpi_gguf_type;

/* Bounds on what a file may declare, so a crafted count fails at once. */
#define TPI_GGUF_MAX_DIMS 4
#define TPI_GGUF_MAX_KV ((int64_t)1 << 20)
#define TPI_GGUF_MAX_TENSORS ((int64_t)1 << 20)
#define TPI_GGUF_MAX_STRING ((int64_t)1 << 30)
#define TPI_GGUF_MAX_ARRAY ((int64_t)1 << 28)
#define TPI_GGUF_MAX_SPLITS 1024

/* A string inside the mapping: not NUL-terminated. */
typedef struct tpi_gguf_str {
    const char *s;
    int64_t len;
} tpi_gguf_str;

typedef struct tpi_gguf_kv {
    tpi_gguf_str key;
    tpi_gguf_type type;
    /* Scalars: value points at the little-endian value in the mapping.
     * Strings: value points at the length prefix (use tpi_gguf_kv_str).
     * Arrays: arr_type and arr_n; value points at the first element (use
     * tpi_gguf_arr_*). */
    const uint8_t *value;
    tpi_gguf_type arr_type;
    int64_t arr_n;
    const uint8_t **arr_strs; /* string arrays: each element's length prefix (owned) */
} tpi_gguf_kv;

typedef struct tpi_gguf_tensor {
    char *name;              /* NUL-terminated copy */
    uint32_t ggml_type;      /* as written in the file */
    int type_ok;             /* 1 when ggml_type is one tpinfer computes with (dtype set) */
    tpi_dtype dtype;
    int n_dims;
    int64_t ne[TPI_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the innermost (columns); 1 past n_dims */
    int64_t numel;
    uint64_t bytes;
    const uint8_t *data;     /* inside its file's mapping, aligned as the file says */
    int file;                /* index into tpi_gguf.paths */
} tpi_gguf_tensor;

typedef struct tpi_gguf {
    char **paths;            /* every file of the model, in split order */
    int n_files;
    const void **maps;
    size_t *map_bytes;
    uint32_t version;
    tpi_gguf_kv *kv;         /* the first file's metadata, in file order */
    int64_t n_kv;
    tpi_gguf_tensor *tensors; /* all files' tensors, in file order */
    int64_t n_tensors;
    tpi_gguf_tensor **by_name; /* sorted by name */
    uint32_t alignment;      /* general.alignment, 32 when absent */
} tpi_gguf;

/* The ggml type name ("Q5_K", "IQ2_XS", "F32"...) of a type number, or "unknown". */
const char *tpi_gguf_type_name(uint32_t ggml_type);

/* 1 when `path` names a GGUF file (ends in ".gguf", any case). */
int tpi_gguf_is_path(const char *path);

/* Maps and validates `path` (and, when it is the first file of a split set,
 * the others, named by its split.count and the NNNNN-of-NNNNN pattern);
 * *out is freed with tpi_gguf_close. Errors name the file and, where one is
 * to blame, the key or tensor: TPI_EIO (cannot open or map), TPI_EFORMAT
 * (bad magic, version other than 2 or 3, a count, length or offset past the
 * file or the bounds above, a duplicate key or tensor name, a tensor whose
 * bytes overlap another's or leave the file, a dimension that is not a
 * multiple of its type's block), TPI_ENOMEM. A tensor of a type tpinfer
 * does not compute with opens (type_ok 0); the loader refuses it by name. */
int tpi_gguf_open(tpi_gguf **out, const char *path, tpi_error *err);
void tpi_gguf_close(tpi_gguf *g);

/* Metadata lookup by key; NULL when absent. */
const tpi_gguf_kv *tpi_gguf_find(const tpi_gguf *g, const char *key);
/* Tensor lookup by name, O(log n); NULL when absent. */
const tpi_gguf_tensor *tpi_gguf_find_tensor(const tpi_gguf *g, const char *name);

/* Typed reads of one key. Absent: return 1 and leave *out (no error
 * written). Present with another type, or a value out of the target's range:
 * TPI_EFORMAT naming the file, the key, the type found and the type wanted.
 * Integer reads accept any integer type whose value fits. */
int tpi_gguf_get_i64(const tpi_gguf *g, const char *key, int64_t *out, tpi_error *err);
int tpi_gguf_get_f64(const tpi_gguf *g, const char *key, double *out, tpi_error *err); /* F32 or F64 */
int tpi_gguf_get_bool(const tpi_gguf *g, const char *key, int *out, tpi_error *err);
int tpi_gguf_get_str(const tpi_gguf *g, const char *key, tpi_gguf_str *out, tpi_error *err);
/* An array key: *n elements of type *type (absent: 1). */
int tpi_gguf_get_arr(const tpi_gguf *g, const char *key, tpi_gguf_type *type, int64_t *n, tpi_error *err);

/* Element access of an array kv (the caller checked arr_type; i < arr_n).
 * String arrays are walked once at open, so element i is O(1) after it. */
tpi_gguf_str tpi_gguf_kv_str(const tpi_gguf_kv *kv);
tpi_gguf_str tpi_gguf_arr_str(const tpi_gguf *g, const tpi_gguf_kv *kv, int64_t i);
int64_t tpi_gguf_arr_i64(const tpi_gguf_kv *kv, int64_t i);   /* integer element types */
double tpi_gguf_arr_f64(const tpi_gguf_kv *kv, int64_t i);    /* F32 or F64 elements */
#endif
