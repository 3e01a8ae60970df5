/* GGUF v3 writer; the layout is ggml's docs/gguf.md ("File Structure"):
 * little-endian throughout, strings as a u64 length and the bytes, arrays
 * as a u32 element type, a u64 count and the elements. */
#include "io/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

typedef struct w_tensor {
    char *name;
    tpi_dtype dtype;
    int n_dims;
    int64_t ne[TPI_GGUF_MAX_DIMS];
    uint64_t bytes, offset; /* offset from the start of the data section */
} w_tensor;

struct tpi_gguf_writer {
    buf kv;                /* the serialized key/value pairs */
    char **keys;           /* for the uniqueness check */
    int64_t n_kv, cap_kv;
    w_tensor *tensors;
    int64_t n_tensors, cap_tensors;
    uint64_t data_bytes;   /* the data section, padded */
    tpi_error err;         /* the first failure of an add */
    FILE *f;
    char *path, *part;
    int64_t cur;           /* tensor receiving data */
    uint64_t cur_done;     /* its bytes written so far */
};

static int fail(tpi_gguf_writer *w, int code, const char *msg, const char *what)
{
    if (!w->err.code)
        tpi_err(&w->err, code, "GGUF writer: %s%s%s", msg, what ? ": " : "", what ? what : "");
    return w->err.code;
}

static int put(tpi_gguf_writer *w, const void *p, size_t n)
{
    buf *b = &w->kv;
    if (!n) /* an empty array's elements may be NULL */
        return 0;
    if (n > SIZE_MAX - b->len)
        return fail(w, TPI_ENOMEM, "metadata too large", NULL);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return fail(w, TPI_ENOMEM, "out of memory for the metadata", NULL);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int put_u32(tpi_gguf_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put(w, b, 4);
}

static int put_u64(tpi_gguf_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return put(w, b, 8);
}

static int put_str(tpi_gguf_writer *w, const char *s, size_t len)
{
    if ((int64_t)len > TPI_GGUF_MAX_STRING)
        return fail(w, TPI_EINVAL, "string longer than TPI_GGUF_MAX_STRING", NULL);
    return put_u64(w, len) || put(w, s, len) ? w->err.code : 0;
}

/* Bytes of one scalar of type t; 0 for STRING, ARRAY and unknown types. */
static size_t scalar_bytes(tpi_gguf_type t)
{
    switch (t) {
    case TPI_GGUF_U8: case TPI_GGUF_I8: case TPI_GGUF_BOOL: return 1;
    case TPI_GGUF_U16: case TPI_GGUF_I16: return 2;
    case TPI_GGUF_U32: case TPI_GGUF_I32: case TPI_GGUF_F32: return 4;
    case TPI_GGUF_U64: case TPI_GGUF_I64: case TPI_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Scalars are copied byte by byte from host order; the targets tpinfer
 * builds for are little-endian, as GGUF is. */
static int put_scalars(tpi_gguf_writer *w, tpi_gguf_type t, const void *v, int64_t n)
{
    size_t each = scalar_bytes(t), total;
    if (tpi_mul_size_overflow(each, (size_t)n, &total))
        return fail(w, TPI_EINVAL, "array too large", NULL);
    if (t == TPI_GGUF_BOOL)
        for (int64_t i = 0; i < n; i++)
            if (((const uint8_t *)v)[i] > 1)
                return fail(w, TPI_EINVAL, "a bool value other than 0 or 1", NULL);
    return put(w, v, total);
}

/* The key's name, after checking it is new. */
static int put_key(tpi_gguf_writer *w, const char *key, tpi_gguf_type t)
{
    if (w->err.code)
        return w->err.code;
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return fail(w, TPI_EINVAL, "duplicate key", key);
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        char **k = realloc(w->keys, (size_t)cap * sizeof *k);
        if (!k)
            return fail(w, TPI_ENOMEM, "out of memory", key);
        w->keys = k;
        w->cap_kv = cap;
    }
    if (!(w->keys[w->n_kv] = strdup(key)))
        return fail(w, TPI_ENOMEM, "out of memory", key);
    w->n_kv++;
    return put_str(w, key, strlen(key)) || put_u32(w, (uint32_t)t) ? w->err.code : 0;
}

int tpi_gguf_w_scalar(tpi_gguf_writer *w, const char *key, tpi_gguf_type type, const void *value)
{
    if (!scalar_bytes(type))
        return fail(w, TPI_EINVAL, "not a scalar type", key);
    return put_key(w, key, type) || put_scalars(w, type, value, 1) ? w->err.code : 0;
}

int tpi_gguf_w_u32(tpi_gguf_writer *w, const char *key, uint32_t v)
{
    return tpi_gguf_w_scalar(w, key, TPI_GGUF_U32, &v);
}

int tpi_gguf_w_f32(tpi_gguf_writer *w, const char *key, float v)
{
    return tpi_gguf_w_scalar(w, key, TPI_GGUF_F32, &v);
}

int tpi_gguf_w_bool(tpi_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return tpi_gguf_w_scalar(w, key, TPI_GGUF_BOOL, &b);
}

int tpi_gguf_w_strn(tpi_gguf_writer *w, const char *key, const char *s, size_t len)
{
    return put_key(w, key, TPI_GGUF_STRING) || put_str(w, s, len) ? w->err.code : 0;
}

int tpi_gguf_w_str(tpi_gguf_writer *w, const char *key, const char *s)
{
    return tpi_gguf_w_strn(w, key, s, strlen(s));
}

static int put_arr_head(tpi_gguf_writer *w, const char *key, tpi_gguf_type t, int64_t n)
{
    if (n < 0 || n > TPI_GGUF_MAX_ARRAY)
        return fail(w, TPI_EINVAL, "array length outside [0, TPI_GGUF_MAX_ARRAY]", key);
    return put_key(w, key, TPI_GGUF_ARRAY) || put_u32(w, (uint32_t)t) || put_u64(w, (uint64_t)n)
               ? w->err.code : 0;
}

int tpi_gguf_w_arr(tpi_gguf_writer *w, const char *key, tpi_gguf_type type, const void *elems, int64_t n)
{
    if (!scalar_bytes(type))
        return fail(w, TPI_EINVAL, "array elements must be scalars (use tpi_gguf_w_arr_str)", key);
    return put_arr_head(w, key, type, n) || put_scalars(w, type, elems, n) ? w->err.code : 0;
}

int tpi_gguf_w_arr_str(tpi_gguf_writer *w, const char *key, const char *const *strs, int64_t n)
{
    if (put_arr_head(w, key, TPI_GGUF_STRING, n))
        return w->err.code;
    for (int64_t i = 0; i < n; i++)
        if (put_str(w, strs[i], strlen(strs[i])))
            return w->err.code;
    return 0;
}

uint32_t tpi_gguf_ggml_type(tpi_dtype t)
{
    switch (t) {
    case TPI_F32: return 0;
    case TPI_F16: return 1;
    case TPI_Q4_0: return 2;
    case TPI_Q8_0: return 8;
    case TPI_Q4_K: return 12;
    case TPI_Q6_K: return 14;
    case TPI_BF16: return 30;
    default: return UINT32_MAX;
    }
}

static uint64_t align_up(uint64_t x)
{
    return (x + TPI_GGUF_ALIGNMENT - 1) / TPI_GGUF_ALIGNMENT * TPI_GGUF_ALIGNMENT;
}

int tpi_gguf_w_tensor(tpi_gguf_writer *w, const char *name, tpi_dtype t, int n_dims, const int64_t *ne)
{
    if (w->err.code)
        return w->err.code;
    if (tpi_gguf_ggml_type(t) == UINT32_MAX)
        return fail(w, TPI_EINVAL, "unknown dtype for tensor", name);
    if (n_dims < 1 || n_dims > TPI_GGUF_MAX_DIMS)
        return fail(w, TPI_EINVAL, "dimensions outside [1, 4] for tensor", name);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return fail(w, TPI_EINVAL, "duplicate tensor", name);
    int64_t numel, rows, row_bytes = tpi_dtype_row_bytes(t, ne[0]), bytes;
    if (tpi_mul_all(ne, n_dims, &numel) || tpi_mul_all(ne + 1, n_dims - 1, &rows))
        return fail(w, TPI_EINVAL, "negative or overflowing dimensions for tensor", name);
    if (row_bytes < 0)
        return fail(w, TPI_EINVAL, "ne[0] not a multiple of the type's block for tensor", name);
    if (tpi_mul_overflow(rows, row_bytes, &bytes) || (uint64_t)bytes > UINT64_MAX / 2 - w->data_bytes)
        return fail(w, TPI_EINVAL, "tensor too large", name);
    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        w_tensor *p = realloc(w->tensors, (size_t)cap * sizeof *p);
        if (!p)
            return fail(w, TPI_ENOMEM, "out of memory", name);
        w->tensors = p;
        w->cap_tensors = cap;
    }
    w_tensor *x = &w->tensors[w->n_tensors];
    *x = (w_tensor){.dtype = t, .n_dims = n_dims, .bytes = (uint64_t)bytes, .offset = w->data_bytes};
    if (!(x->name = strdup(name)))
        return fail(w, TPI_ENOMEM, "out of memory", name);
    memcpy(x->ne, ne, (size_t)n_dims * sizeof *ne);
    w->n_tensors++;
    w->data_bytes = align_up(w->data_bytes + (uint64_t)bytes);
    return 0;
}

int tpi_gguf_writer_create(tpi_gguf_writer **out, tpi_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return tpi_err(err, TPI_ENOMEM, "GGUF writer: out of memory");
    /* read before any tensor data, so written first */
    return tpi_gguf_w_u32(*out, "general.alignment", TPI_GGUF_ALIGNMENT);
}

void tpi_gguf_writer_free(tpi_gguf_writer *w)
{
    if (!w)
        return;
    if (w->f) {
        fclose(w->f);
        remove(w->part);
    }
    for (int64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    for (int64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->kv.p);
    free(w->path);
    free(w->part);
    free(w);
}

static int io_error(tpi_gguf_writer *w, tpi_error *err, const char *what)
{
    return tpi_err(err, TPI_EIO, "%s: %s: %s", w->part ? w->part : "?", what, strerror(errno));
}

static int write_all(tpi_gguf_writer *w, const void *p, size_t n, tpi_error *err)
{
    return n && fwrite(p, 1, n, w->f) != n ? io_error(w, err, "write failed") : 0;
}

static int write_zeros(tpi_gguf_writer *w, uint64_t n, tpi_error *err)
{
    static const uint8_t zeros[TPI_GGUF_ALIGNMENT];
    return write_all(w, zeros, (size_t)n, err);
}

/* The header and the tensor infos go through the kv buffer's encoders: the
 * infos are appended after the pairs, the header is built separately. */
static int write_head(tpi_gguf_writer *w, tpi_error *err)
{
    size_t kv_len = w->kv.len;
    for (int64_t i = 0; i < w->n_tensors && !w->err.code; i++) {
        const w_tensor *t = &w->tensors[i];
        put_str(w, t->name, strlen(t->name));
        put_u32(w, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(w, (uint64_t)t->ne[d]);
        put_u32(w, tpi_gguf_ggml_type(t->dtype));
        put_u64(w, t->offset);
    }
    if (w->err.code)
        return tpi_err(err, w->err.code, "%s", w->err.msg);
    uint8_t head[24] = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        head[8 + i] = (uint8_t)((uint64_t)w->n_tensors >> (8 * i));
        head[16 + i] = (uint8_t)((uint64_t)w->n_kv >> (8 * i));
    }
    uint64_t end = sizeof head + w->kv.len;
    int rc = write_all(w, head, sizeof head, err) || write_all(w, w->kv.p, w->kv.len, err) ||
                     write_zeros(w, align_up(end) - end, err) ? TPI_EIO : 0;
    w->kv.len = kv_len;
    return rc;
}

int tpi_gguf_w_begin(tpi_gguf_writer *w, const char *path, tpi_error *err)
{
    if (w->err.code)
        return tpi_err(err, w->err.code, "%s", w->err.msg);
    if (w->f || w->path)
        return tpi_err(err, TPI_EINVAL, "GGUF writer: begin called twice");
    size_t n = strlen(path);
    w->path = strdup(path);
    w->part = malloc(n + 6);
    if (!w->path || !w->part)
        return tpi_err(err, TPI_ENOMEM, "GGUF writer: out of memory");
    memcpy(w->part, path, n);
    memcpy(w->part + n, ".part", 6);
    if (!(w->f = fopen(w->part, "wb")))
        return tpi_err(err, TPI_EIO, "%s: cannot create: %s", w->part, strerror(errno));
    return write_head(w, err);
}

/* Pads the finished tensor and moves to the next one with bytes. */
static int next_tensor(tpi_gguf_writer *w, tpi_error *err)
{
    while (w->cur < w->n_tensors && w->cur_done == w->tensors[w->cur].bytes) {
        uint64_t end = w->tensors[w->cur].offset + w->cur_done;
        if (write_zeros(w, align_up(end) - end, err))
            return TPI_EIO;
        w->cur++;
        w->cur_done = 0;
    }
    return 0;
}

int tpi_gguf_w_data(tpi_gguf_writer *w, const void *data, size_t bytes, tpi_error *err)
{
    if (!w->f)
        return tpi_err(err, TPI_EINVAL, "GGUF writer: data before begin");
    if (next_tensor(w, err))
        return TPI_EIO;
    if (!bytes)
        return 0;
    if (w->cur >= w->n_tensors)
        return tpi_err(err, TPI_EINVAL, "GGUF writer: %zu bytes of data past the last tensor", bytes);
    const w_tensor *t = &w->tensors[w->cur];
    if (bytes > t->bytes - w->cur_done)
        return tpi_err(err, TPI_EINVAL, "GGUF writer: tensor %s: %zu bytes given, %llu left of its %llu",
                       t->name, bytes, (unsigned long long)(t->bytes - w->cur_done),
                       (unsigned long long)t->bytes);
    if (write_all(w, data, bytes, err))
        return TPI_EIO;
    w->cur_done += bytes;
    return 0;
}

int tpi_gguf_w_finish(tpi_gguf_writer *w, tpi_error *err)
{
    if (!w->f)
        return tpi_err(err, TPI_EINVAL, "GGUF writer: finish before begin");
    if (next_tensor(w, err))
        return TPI_EIO;
    if (w->cur < w->n_tensors)
        return tpi_err(err, TPI_EINVAL, "GGUF writer: tensor %s: %llu of its %llu bytes written",
                       w->tensors[w->cur].name, (unsigned long long)w->cur_done,
                       (unsigned long long)w->tensors[w->cur].bytes);
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f)) {
        remove(w->part);
        return io_error(w, err, "close failed");
    }
    if (rename(w->part, w->path)) {
        int rc = tpi_err(err, TPI_EIO, "%s: cannot rename to %s: %s", w->part, w->path, strerror(errno));
        remove(w->part);
        return rc;
    }
    return 0;
}
