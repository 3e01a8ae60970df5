#include "core/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "core/file.h"

/* ggml's type table (ggml.c type_traits): name, elements and bytes per block,
 * and the tpinfer dtype for the types it computes with (-1 otherwise). The
 * sizes of types tpinfer does not compute with are still needed, to check
 * that such a tensor's bytes stay inside the file and overlap no other. */
static const struct {
    const char *name;
    int64_t block, bytes;
    int dtype;
} ggml_types[] = {
    [0] = {"F32", 1, 4, TPI_F32},        [1] = {"F16", 1, 2, TPI_F16},
    [2] = {"Q4_0", 32, 18, TPI_Q4_0},    [3] = {"Q4_1", 32, 20, -1},
    [6] = {"Q5_0", 32, 22, -1},          [7] = {"Q5_1", 32, 24, -1},
    [8] = {"Q8_0", 32, 34, TPI_Q8_0},    [9] = {"Q8_1", 32, 36, -1},
    [10] = {"Q2_K", 256, 84, -1},        [11] = {"Q3_K", 256, 110, -1},
    [12] = {"Q4_K", 256, 144, TPI_Q4_K}, [13] = {"Q5_K", 256, 176, -1},
    [14] = {"Q6_K", 256, 210, TPI_Q6_K}, [15] = {"Q8_K", 256, 292, -1},
    [16] = {"IQ2_XXS", 256, 66, -1},     [17] = {"IQ2_XS", 256, 74, -1},
    [18] = {"IQ3_XXS", 256, 98, -1},     [19] = {"IQ1_S", 256, 50, -1},
    [20] = {"IQ4_NL", 32, 18, -1},       [21] = {"IQ3_S", 256, 110, -1},
    [22] = {"IQ2_S", 256, 82, -1},       [23] = {"IQ4_XS", 256, 136, -1},
    [24] = {"I8", 1, 1, -1},             [25] = {"I16", 1, 2, -1},
    [26] = {"I32", 1, 4, -1},            [27] = {"I64", 1, 8, -1},
    [28] = {"F64", 1, 8, -1},            [29] = {"IQ1_M", 256, 56, -1},
    [30] = {"BF16", 1, 2, TPI_BF16},     [34] = {"TQ1_0", 256, 54, -1},
    [35] = {"TQ2_0", 256, 66, -1},       [39] = {"MXFP4", 32, 17, -1},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *tpi_gguf_type_name(uint32_t t)
{
    return t < N_GGML_TYPES && ggml_types[t].name ? ggml_types[t].name : "unknown";
}

int tpi_gguf_is_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n >= 5 && !strcasecmp(path + n - 5, ".gguf");
}

/* Bytes of one scalar value type; 0 for STRING, ARRAY and unknown types. */
static int64_t scalar_size(uint32_t t)
{
    switch (t) {
    case TPI_GGUF_U8: case TPI_GGUF_I8: case TPI_GGUF_BOOL: return 1;
    case TPI_GGUF_U16: case TPI_GGUF_I16: return 2;
    case TPI_GGUF_U32: case TPI_GGUF_I32: case TPI_GGUF_F32: return 4;
    case TPI_GGUF_U64: case TPI_GGUF_I64: case TPI_GGUF_F64: return 8;
    default: return 0;
    }
}

static const char *value_type_name(uint32_t t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
                                  "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* A bounded reader over one file's bytes; every read checks what is left. */
typedef struct cursor {
    const uint8_t *p;
    uint64_t n, at;
    const char *path;
    tpi_error *err;
} cursor;

static int need(cursor *c, uint64_t bytes, const char *what)
{
    if (bytes > c->n - c->at)
        return tpi_err(c->err, TPI_EFORMAT, "%s: %s at byte %llu needs %llu bytes but the file ends at %llu",
                       c->path, what, (unsigned long long)c->at, (unsigned long long)bytes,
                       (unsigned long long)c->n);
    return 0;
}

static uint64_t load_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int read_u32(cursor *c, uint32_t *v, const char *what)
{
    int rc = need(c, 4, what);
    if (!rc) {
        *v = (uint32_t)load_le(c->p + c->at, 4);
        c->at += 4;
    }
    return rc;
}

static int read_u64(cursor *c, uint64_t *v, const char *what)
{
    int rc = need(c, 8, what);
    if (!rc) {
        *v = load_le(c->p + c->at, 8);
        c->at += 8;
    }
    return rc;
}

/* A length-prefixed string, bounded by TPI_GGUF_MAX_STRING and the file. */
static int read_str(cursor *c, tpi_gguf_str *s, const char *what)
{
    uint64_t len;
    int rc = read_u64(c, &len, what);
    if (rc)
        return rc;
    if (len > (uint64_t)TPI_GGUF_MAX_STRING)
        return tpi_err(c->err, TPI_EFORMAT, "%s: %s at byte %llu declares %llu bytes (limit %lld)", c->path,
                       what, (unsigned long long)(c->at - 8), (unsigned long long)len,
                       (long long)TPI_GGUF_MAX_STRING);
    if ((rc = need(c, len, what)))
        return rc;
    s->s = (const char *)c->p + c->at;
    s->len = (int64_t)len;
    c->at += len;
    return 0;
}

/* An array value: element type, count, then the elements. String elements
 * are walked once, their positions kept for O(1) access. Nested arrays are
 * refused: no GGUF key written by llama.cpp uses them. */
static int read_array(cursor *c, tpi_gguf_kv *kv)
{
    uint32_t t;
    uint64_t n;
    int key_len = (int)(kv->key.len > 200 ? 200 : kv->key.len);
    int rc = read_u32(c, &t, "array element type");
    if (!rc)
        rc = read_u64(c, &n, "array length");
    if (rc)
        return rc;
    if (t != TPI_GGUF_STRING && !scalar_size(t))
        return tpi_err(c->err, TPI_EFORMAT, "%s: key \"%.*s\": array of %s (type %u) is not supported", c->path,
                       key_len, kv->key.s, value_type_name(t), t);
    if (n > (uint64_t)TPI_GGUF_MAX_ARRAY)
        return tpi_err(c->err, TPI_EFORMAT, "%s: key \"%.*s\": array of %llu elements (limit %lld)", c->path,
                       key_len, kv->key.s, (unsigned long long)n, (long long)TPI_GGUF_MAX_ARRAY);
    kv->arr_type = (tpi_gguf_type)t;
    kv->arr_n = (int64_t)n;
    kv->value = c->p + c->at;
    if (t != TPI_GGUF_STRING) {
        uint64_t bytes = n * (uint64_t)scalar_size(t); /* n <= 2^28: no overflow */
        if ((rc = need(c, bytes, "array elements")))
            return rc;
        c->at += bytes;
        return 0;
    }
    if ((rc = need(c, n * 8, "string array")))
        return rc;
    kv->arr_strs = malloc(((size_t)n + 1) * sizeof *kv->arr_strs);
    if (!kv->arr_strs)
        return tpi_err(c->err, TPI_ENOMEM, "%s: out of memory for a string array of %llu", c->path,
                       (unsigned long long)n);
    for (uint64_t i = 0; i < n && !rc; i++) {
        tpi_gguf_str s;
        kv->arr_strs[i] = c->p + c->at;
        rc = read_str(c, &s, "array string");
    }
    return rc;
}

/* Appends the key being read to a message that names only a byte. */
static int blame_key(cursor *c, const tpi_gguf_kv *kv, int rc)
{
    char quoted[220];
    snprintf(quoted, sizeof quoted, "\"%.*s\"", (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s);
    if (c->err && rc != TPI_ENOMEM && !strstr(c->err->msg, quoted)) {
        size_t n = strlen(c->err->msg);
        snprintf(c->err->msg + n, sizeof c->err->msg - n, " (value of key %s)", quoted);
    }
    return rc;
}

static int read_kv(cursor *c, tpi_gguf_kv *kv)
{
    uint32_t t;
    int rc = read_str(c, &kv->key, "metadata key");
    if (!rc)
        rc = read_u32(c, &t, "metadata value type");
    if (rc)
        return rc;
    int key_len = (int)(kv->key.len > 200 ? 200 : kv->key.len);
    if (memchr(kv->key.s, 0, (size_t)kv->key.len))
        return tpi_err(c->err, TPI_EFORMAT, "%s: key \"%.*s\" contains a NUL byte", c->path, key_len, kv->key.s);
    kv->type = (tpi_gguf_type)t;
    if (t == TPI_GGUF_ARRAY)
        return (rc = read_array(c, kv)) ? blame_key(c, kv, rc) : 0;
    kv->value = c->p + c->at;
    if (t == TPI_GGUF_STRING) {
        tpi_gguf_str s;
        return (rc = read_str(c, &s, "string value")) ? blame_key(c, kv, rc) : 0;
    }
    if (!scalar_size(t))
        return tpi_err(c->err, TPI_EFORMAT, "%s: key \"%.*s\": unknown value type %u", c->path, key_len,
                       kv->key.s, t);
    if ((rc = need(c, (uint64_t)scalar_size(t), "metadata value")))
        return blame_key(c, kv, rc);
    c->at += (uint64_t)scalar_size(t);
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const tpi_gguf_kv *x = *(tpi_gguf_kv *const *)a, *y = *(tpi_gguf_kv *const *)b;
    int64_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.s, y->key.s, (size_t)n);
    return c ? c : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

static int check_dup_keys(const char *path, tpi_gguf_kv *kv, int64_t n, tpi_error *err)
{
    tpi_gguf_kv **order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < n; i++)
        order[i] = &kv[i];
    qsort(order, (size_t)n, sizeof *order, cmp_key);
    int rc = 0;
    for (int64_t i = 1; i < n && !rc; i++)
        if (!cmp_key(&order[i - 1], &order[i]))
            rc = tpi_err(err, TPI_EFORMAT, "%s: key \"%.*s\" appears more than once", path,
                         (int)(order[i]->key.len > 200 ? 200 : order[i]->key.len), order[i]->key.s);
    free(order);
    return rc;
}

/* One file being opened: its cursor, metadata and tensor infos. */
typedef struct gfile {
    cursor c;
    tpi_gguf_kv *kv;
    int64_t n_kv, n_tensors;
    uint32_t version, alignment;
} gfile;

static const tpi_gguf_kv *find_kv(const tpi_gguf_kv *kv, int64_t n, const char *key)
{
    size_t len = strlen(key);
    for (int64_t i = 0; i < n; i++)
        if ((size_t)kv[i].key.len == len && !memcmp(kv[i].key.s, key, len))
            return &kv[i];
    return NULL;
}

static int read_header(gfile *f)
{
    cursor *c = &f->c;
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    int rc = read_u32(c, &magic, "magic");
    if (rc)
        return rc;
    if (magic != 0x46554747u) /* "GGUF" */
        return tpi_err(c->err, TPI_EFORMAT, "%s: not a GGUF file (magic is not \"GGUF\")", c->path);
    if ((rc = read_u32(c, &f->version, "version")))
        return rc;
    if (f->version != 2 && f->version != 3)
        return tpi_err(c->err, TPI_EFORMAT, "%s: GGUF version %u (expected 2 or 3)", c->path, f->version);
    if ((rc = read_u64(c, &n_tensors, "tensor count")) || (rc = read_u64(c, &n_kv, "metadata count")))
        return rc;
    /* A tensor info takes at least 24 bytes and a key/value 13: a count the
     * file cannot hold fails here, before anything is allocated for it. */
    if (n_tensors > (uint64_t)TPI_GGUF_MAX_TENSORS || n_tensors > (c->n - c->at) / 24)
        return tpi_err(c->err, TPI_EFORMAT, "%s: tensor count %llu is over the limit (%lld) or the file's size",
                       c->path, (unsigned long long)n_tensors, (long long)TPI_GGUF_MAX_TENSORS);
    if (n_kv > (uint64_t)TPI_GGUF_MAX_KV || n_kv > (c->n - c->at) / 13)
        return tpi_err(c->err, TPI_EFORMAT, "%s: metadata count %llu is over the limit (%lld) or the file's size",
                       c->path, (unsigned long long)n_kv, (long long)TPI_GGUF_MAX_KV);
    f->n_tensors = (int64_t)n_tensors;
    f->kv = calloc((size_t)n_kv + 1, sizeof *f->kv);
    if (!f->kv)
        return tpi_err(c->err, TPI_ENOMEM, "%s: out of memory for %llu keys", c->path, (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv && !rc; i++, f->n_kv++)
        rc = read_kv(c, &f->kv[i]);
    return rc ? rc : check_dup_keys(c->path, f->kv, f->n_kv, c->err);
}

static int read_alignment(gfile *f)
{
    f->alignment = 32;
    const tpi_gguf_kv *kv = find_kv(f->kv, f->n_kv, "general.alignment");
    if (!kv)
        return 0;
    if (kv->type != TPI_GGUF_U32)
        return tpi_err(f->c.err, TPI_EFORMAT, "%s: key \"general.alignment\" is %s (expected u32)", f->c.path,
                       value_type_name(kv->type));
    uint32_t a = (uint32_t)load_le(kv->value, 4);
    if (!a || (a & (a - 1)) || a > (1u << 20))
        return tpi_err(f->c.err, TPI_EFORMAT, "%s: key \"general.alignment\" is %u (expected a power of two "
                       "up to 2^20)", f->c.path, a);
    f->alignment = a;
    return 0;
}

/* Bytes of a tensor: whole rows of blocks (ne[0] a multiple of the block). */
static int tensor_bytes(cursor *c, tpi_gguf_tensor *t)
{
    int64_t block = ggml_types[t->ggml_type].block, rows = 1, row_bytes;
    if (t->ne[0] % block)
        return tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": %lld columns are not a multiple of %s's block "
                       "of %lld", c->path, t->name, (long long)t->ne[0], tpi_gguf_type_name(t->ggml_type),
                       (long long)block);
    if (tpi_mul_all(t->ne + 1, t->n_dims - 1, &rows) || tpi_mul_all(t->ne, t->n_dims, &t->numel) ||
        tpi_mul_overflow(t->ne[0] / block, ggml_types[t->ggml_type].bytes, &row_bytes) ||
        tpi_mul_overflow(row_bytes, rows, &row_bytes))
        return tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": shape overflows", c->path, t->name);
    t->bytes = (uint64_t)row_bytes;
    return 0;
}

/* Appends the tensor whose info was being read to a message naming a byte. */
static int blame_tensor(cursor *c, const tpi_gguf_tensor *t, int rc)
{
    if (c->err && !strstr(c->err->msg, t->name)) {
        size_t n = strlen(c->err->msg);
        snprintf(c->err->msg + n, sizeof c->err->msg - n, " (info of tensor \"%s\")", t->name);
    }
    return rc;
}

static int read_tensor_info(cursor *c, tpi_gguf_tensor *t, uint64_t *offset)
{
    tpi_gguf_str name;
    uint32_t n_dims;
    int rc = read_str(c, &name, "tensor name");
    if (rc)
        return rc;
    if (name.len > 1024 || memchr(name.s, 0, (size_t)name.len))
        return tpi_err(c->err, TPI_EFORMAT, "%s: tensor name at byte %llu is longer than 1024 bytes or holds NUL",
                       c->path, (unsigned long long)(c->at - (uint64_t)name.len));
    if (!(t->name = strndup(name.s, (size_t)name.len)))
        return tpi_err(c->err, TPI_ENOMEM, "out of memory");
    if ((rc = read_u32(c, &n_dims, "tensor dimension count")))
        return blame_tensor(c, t, rc);
    if (n_dims < 1 || n_dims > TPI_GGUF_MAX_DIMS)
        return tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": %u dimensions (expected 1 to %d)", c->path,
                       t->name, n_dims, TPI_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int i = 0; i < TPI_GGUF_MAX_DIMS; i++)
        t->ne[i] = 1; /* ggml's convention past n_dims */
    for (int i = 0; i < t->n_dims && !rc; i++) {
        uint64_t d;
        rc = read_u64(c, &d, "tensor dimension");
        if (!rc && d > ((uint64_t)1 << 48))
            rc = tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": dimension %d is %llu (limit 2^48)", c->path,
                         t->name, i, (unsigned long long)d);
        t->ne[i] = (int64_t)d;
    }
    if (rc || (rc = read_u32(c, &t->ggml_type, "tensor type")) || (rc = read_u64(c, offset, "tensor offset")))
        return blame_tensor(c, t, rc);
    if (t->ggml_type >= N_GGML_TYPES || !ggml_types[t->ggml_type].name)
        return tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": unknown ggml type %u", c->path, t->name,
                       t->ggml_type);
    t->type_ok = ggml_types[t->ggml_type].dtype >= 0;
    t->dtype = t->type_ok ? (tpi_dtype)ggml_types[t->ggml_type].dtype : TPI_F32;
    return tensor_bytes(c, t);
}

static int cmp_offset(const void *a, const void *b)
{
    const tpi_gguf_tensor *x = *(tpi_gguf_tensor *const *)a, *y = *(tpi_gguf_tensor *const *)b;
    if (x->data != y->data)
        return x->data < y->data ? -1 : 1;
    return (x->bytes > y->bytes) - (x->bytes < y->bytes);
}

/* Tensors of one file lie inside its data section, in any order and with
 * padding between them, but no two share a byte. */
static int check_overlap(const char *path, tpi_gguf_tensor *t, int64_t n, tpi_error *err)
{
    tpi_gguf_tensor **order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < n; i++)
        order[i] = &t[i];
    qsort(order, (size_t)n, sizeof *order, cmp_offset);
    int rc = 0;
    for (int64_t i = 1; i < n && !rc; i++)
        if (order[i]->data < order[i - 1]->data + order[i - 1]->bytes)
            rc = tpi_err(err, TPI_EFORMAT, "%s: tensors \"%s\" and \"%s\" overlap", path, order[i - 1]->name,
                         order[i]->name);
    free(order);
    return rc;
}

/* Tensor infos, then the data section at the next multiple of the alignment. */
static int read_tensors(gfile *f, tpi_gguf_tensor *t, int file)
{
    cursor *c = &f->c;
    uint64_t *offs = calloc((size_t)f->n_tensors + 1, sizeof *offs);
    if (!offs)
        return tpi_err(c->err, TPI_ENOMEM, "%s: out of memory", c->path);
    int rc = 0;
    for (int64_t i = 0; i < f->n_tensors && !rc; i++) {
        t[i].file = file;
        rc = read_tensor_info(c, &t[i], &offs[i]);
    }
    uint64_t start = (c->at + f->alignment - 1) / f->alignment * f->alignment;
    uint64_t data_bytes = start <= c->n ? c->n - start : 0;
    for (int64_t i = 0; i < f->n_tensors && !rc; i++) {
        if (offs[i] % f->alignment)
            rc = tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": offset %llu is not a multiple of the alignment "
                         "%u", c->path, t[i].name, (unsigned long long)offs[i], f->alignment);
        else if (offs[i] > data_bytes || t[i].bytes > data_bytes - offs[i])
            rc = tpi_err(c->err, TPI_EFORMAT, "%s: tensor \"%s\": bytes [%llu, +%llu) run past the end of the data "
                         "section (%llu bytes)", c->path, t[i].name, (unsigned long long)offs[i],
                         (unsigned long long)t[i].bytes, (unsigned long long)data_bytes);
        else
            t[i].data = c->p + start + offs[i];
    }
    free(offs);
    return rc ? rc : check_overlap(c->path, t, f->n_tensors, c->err);
}

static void free_kv(tpi_gguf_kv *kv, int64_t n)
{
    for (int64_t i = 0; kv && i < n; i++)
        free(kv[i].arr_strs);
    free(kv);
}

static int add_path(tpi_gguf *g, const char *path)
{
    char *copy = strdup(path);
    char **paths = realloc(g->paths, ((size_t)g->n_files + 1) * sizeof *paths);
    const void **maps = realloc(g->maps, ((size_t)g->n_files + 1) * sizeof *maps);
    size_t *bytes = realloc(g->map_bytes, ((size_t)g->n_files + 1) * sizeof *bytes);
    if (paths)
        g->paths = paths;
    if (maps)
        g->maps = maps;
    if (bytes)
        g->map_bytes = bytes;
    if (!copy || !paths || !maps || !bytes) {
        free(copy);
        return -1;
    }
    g->paths[g->n_files] = copy;
    g->maps[g->n_files] = NULL;
    g->map_bytes[g->n_files] = 0;
    g->n_files++;
    return 0;
}

/* Maps file number `file` of g and reads its header and tensor infos into
 * *f; its tensors are appended to g's. */
static int open_one(tpi_gguf *g, int file, gfile *f, tpi_error *err)
{
    const char *path = g->paths[file];
    int rc = tpi_file_map(path, &g->maps[file], &g->map_bytes[file], err);
    if (rc)
        return rc;
    f->c = (cursor){g->maps[file], g->map_bytes[file], 0, path, err};
    if ((rc = read_header(f)) || (rc = read_alignment(f)))
        return rc;
    tpi_gguf_tensor *t = realloc(g->tensors, ((size_t)(g->n_tensors + f->n_tensors) + 1) * sizeof *t);
    if (!t)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld tensors", path, (long long)f->n_tensors);
    g->tensors = t;
    memset(t + g->n_tensors, 0, ((size_t)f->n_tensors + 1) * sizeof *t);
    g->n_tensors += f->n_tensors;
    return read_tensors(f, t + g->n_tensors - f->n_tensors, file);
}

static int kv_int(const tpi_gguf_kv *kv, int64_t *out)
{
    const uint8_t *p = kv->value;
    switch (kv->type) {
    case TPI_GGUF_U8: *out = p[0]; return 0;
    case TPI_GGUF_I8: *out = (int8_t)p[0]; return 0;
    case TPI_GGUF_U16: *out = (int64_t)load_le(p, 2); return 0;
    case TPI_GGUF_I16: *out = (int16_t)load_le(p, 2); return 0;
    case TPI_GGUF_U32: *out = (int64_t)load_le(p, 4); return 0;
    case TPI_GGUF_I32: *out = (int32_t)load_le(p, 4); return 0;
    case TPI_GGUF_I64: *out = (int64_t)load_le(p, 8); return 0;
    case TPI_GGUF_U64: {
        uint64_t v = load_le(p, 8);
        *out = (int64_t)v;
        return v > (uint64_t)INT64_MAX ? 1 : 0;
    }
    default: return -1;
    }
}

/* The first file's split.count and split.no (1 and 0 when unsplit). */
static int split_keys(const gfile *f, int64_t *count, int64_t *no)
{
    const tpi_gguf_kv *c = find_kv(f->kv, f->n_kv, "split.count");
    const tpi_gguf_kv *n = find_kv(f->kv, f->n_kv, "split.no");
    *count = 1;
    *no = 0;
    if ((c && kv_int(c, count)) || (n && kv_int(n, no)))
        return tpi_err(f->c.err, TPI_EFORMAT, "%s: key \"split.count\" or \"split.no\" is not an integer",
                       f->c.path);
    return 0;
}

/* NAME-00001-of-0000N.gguf: the position of "00001" in path, or -1. */
static long split_digits(const char *path, int64_t count)
{
    size_t n = strlen(path);
    char tail[32];
    snprintf(tail, sizeof tail, "-of-%05lld.gguf", (long long)count);
    size_t tl = strlen(tail);
    if (n < tl + 6 || strcmp(path + n - tl, tail) || path[n - tl - 6] != '-')
        return -1;
    return (long)(n - tl - 5);
}

/* Opens the other files of a split model, named after the first. */
static int open_splits(tpi_gguf *g, const gfile *first, tpi_error *err)
{
    int64_t count, no;
    int rc = split_keys(first, &count, &no);
    if (rc || count == 1)
        return rc;
    long at = split_digits(g->paths[0], count);
    if (count < 1 || count > TPI_GGUF_MAX_SPLITS || no != 0 || at < 0 || strncmp(g->paths[0] + at, "00001", 5))
        return tpi_err(err, TPI_EFORMAT, "%s: split.count %lld, split.no %lld: expected the first file of a split "
                       "set named NAME-00001-of-%05lld.gguf (count 1 to %d)", g->paths[0], (long long)count,
                       (long long)no, (long long)count, TPI_GGUF_MAX_SPLITS);
    for (int64_t i = 1; i < count && !rc; i++) {
        char *path = strdup(g->paths[0]), digits[24];
        snprintf(digits, sizeof digits, "%05lld", (long long)i + 1);
        if (!path || add_path(g, path)) {
            free(path);
            return tpi_err(err, TPI_ENOMEM, "out of memory");
        }
        memcpy(g->paths[g->n_files - 1] + at, digits, 5);
        free(path);
        gfile f = {0};
        int64_t fc, fno;
        rc = open_one(g, g->n_files - 1, &f, err);
        if (!rc && !(rc = split_keys(&f, &fc, &fno)) && (fc != count || fno != i))
            rc = tpi_err(err, TPI_EFORMAT, "%s: split.count %lld, split.no %lld (expected %lld and %lld)",
                         g->paths[g->n_files - 1], (long long)fc, (long long)fno, (long long)count, (long long)i);
        free_kv(f.kv, f.n_kv);
    }
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(tpi_gguf_tensor *const *)a)->name, (*(tpi_gguf_tensor *const *)b)->name);
}

static int index_names(tpi_gguf *g, tpi_error *err)
{
    int64_t n = g->n_tensors;
    g->by_name = malloc(((size_t)n + 1) * sizeof *g->by_name);
    if (!g->by_name)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", g->paths[0]);
    for (int64_t i = 0; i < n; i++)
        g->by_name[i] = &g->tensors[i];
    qsort(g->by_name, (size_t)n, sizeof *g->by_name, cmp_name);
    for (int64_t i = 1; i < n; i++)
        if (!strcmp(g->by_name[i - 1]->name, g->by_name[i]->name))
            return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" appears more than once", g->paths[0],
                           g->by_name[i]->name);
    return 0;
}

int tpi_gguf_open(tpi_gguf **out, const char *path, tpi_error *err)
{
    *out = NULL;
    tpi_gguf *g = calloc(1, sizeof *g);
    if (!g || add_path(g, path)) {
        tpi_gguf_close(g);
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", path);
    }
    gfile first = {0};
    int rc = open_one(g, 0, &first, err);
    g->kv = first.kv;
    g->n_kv = first.n_kv;
    g->version = first.version;
    g->alignment = first.alignment;
    if (!rc)
        rc = open_splits(g, &first, err);
    if (!rc)
        rc = index_names(g, err);
    if (rc) {
        tpi_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

void tpi_gguf_close(tpi_gguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->n_tensors; i++)
        free(g->tensors[i].name);
    free(g->tensors);
    free(g->by_name);
    free_kv(g->kv, g->n_kv);
    for (int i = 0; i < g->n_files; i++) {
        if (g->maps && g->maps[i])
            tpi_file_unmap(g->maps[i], g->map_bytes[i]);
        free(g->paths[i]);
    }
    free(g->paths);
    free(g->maps);
    free(g->map_bytes);
    free(g);
}

const tpi_gguf_kv *tpi_gguf_find(const tpi_gguf *g, const char *key)
{
    return find_kv(g->kv, g->n_kv, key);
}

const tpi_gguf_tensor *tpi_gguf_find_tensor(const tpi_gguf *g, const char *name)
{
    int64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->by_name[mid]->name, name);
        if (!c)
            return g->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int wrong_type(const tpi_gguf *g, const tpi_gguf_kv *kv, const char *want, tpi_error *err)
{
    const char *found = kv->type == TPI_GGUF_ARRAY ? "array" : value_type_name(kv->type);
    return tpi_err(err, TPI_EFORMAT, "%s: key \"%.*s\" is %s%s%s (expected %s)", g->paths[0], (int)kv->key.len,
                   kv->key.s, found, kv->type == TPI_GGUF_ARRAY ? " of " : "",
                   kv->type == TPI_GGUF_ARRAY ? value_type_name(kv->arr_type) : "", want);
}

int tpi_gguf_get_i64(const tpi_gguf *g, const char *key, int64_t *out, tpi_error *err)
{
    const tpi_gguf_kv *kv = tpi_gguf_find(g, key);
    if (!kv)
        return 1;
    int64_t v;
    int rc = kv_int(kv, &v);
    if (rc < 0)
        return wrong_type(g, kv, "an integer", err);
    if (rc > 0)
        return tpi_err(err, TPI_EFORMAT, "%s: key \"%s\" is a u64 past INT64_MAX", g->paths[0], key);
    *out = v;
    return 0;
}

int tpi_gguf_get_f64(const tpi_gguf *g, const char *key, double *out, tpi_error *err)
{
    const tpi_gguf_kv *kv = tpi_gguf_find(g, key);
    if (!kv)
        return 1;
    if (kv->type == TPI_GGUF_F32) {
        uint32_t u = (uint32_t)load_le(kv->value, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
    } else if (kv->type == TPI_GGUF_F64) {
        uint64_t u = load_le(kv->value, 8);
        memcpy(out, &u, 8);
    } else {
        return wrong_type(g, kv, "f32 or f64", err);
    }
    return 0;
}

int tpi_gguf_get_bool(const tpi_gguf *g, const char *key, int *out, tpi_error *err)
{
    const tpi_gguf_kv *kv = tpi_gguf_find(g, key);
    if (!kv)
        return 1;
    if (kv->type != TPI_GGUF_BOOL)
        return wrong_type(g, kv, "bool", err);
    *out = kv->value[0] != 0;
    return 0;
}

int tpi_gguf_get_str(const tpi_gguf *g, const char *key, tpi_gguf_str *out, tpi_error *err)
{
    const tpi_gguf_kv *kv = tpi_gguf_find(g, key);
    if (!kv)
        return 1;
    if (kv->type != TPI_GGUF_STRING)
        return wrong_type(g, kv, "string", err);
    *out = tpi_gguf_kv_str(kv);
    return 0;
}

int tpi_gguf_get_arr(const tpi_gguf *g, const char *key, tpi_gguf_type *type, int64_t *n, tpi_error *err)
{
    const tpi_gguf_kv *kv = tpi_gguf_find(g, key);
    if (!kv)
        return 1;
    if (kv->type != TPI_GGUF_ARRAY)
        return wrong_type(g, kv, "array", err);
    *type = kv->arr_type;
    *n = kv->arr_n;
    return 0;
}

tpi_gguf_str tpi_gguf_kv_str(const tpi_gguf_kv *kv)
{
    return (tpi_gguf_str){(const char *)kv->value + 8, (int64_t)load_le(kv->value, 8)};
}

tpi_gguf_str tpi_gguf_arr_str(const tpi_gguf *g, const tpi_gguf_kv *kv, int64_t i)
{
    (void)g;
    const uint8_t *p = kv->arr_strs[i];
    return (tpi_gguf_str){(const char *)p + 8, (int64_t)load_le(p, 8)};
}

int64_t tpi_gguf_arr_i64(const tpi_gguf_kv *kv, int64_t i)
{
    int64_t size = scalar_size(kv->arr_type), v = 0;
    tpi_gguf_kv one = {.type = kv->arr_type, .value = kv->value + i * size};
    kv_int(&one, &v);
    return v;
}

double tpi_gguf_arr_f64(const tpi_gguf_kv *kv, int64_t i)
{
    if (kv->arr_type == TPI_GGUF_F64) {
        uint64_t u = load_le(kv->value + 8 * i, 8);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    uint32_t u = (uint32_t)load_le(kv->value + 4 * i, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
