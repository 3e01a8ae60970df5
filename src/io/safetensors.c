#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

/* Element sizes of every dtype the format defines; only F32/BF16/F16 are
 * computed with, the others are accepted in a file but refused when used. */
static int dtype_size_any(const char *s)
{
    static const struct { const char *name; int size; } table[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
        {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(s, table[i].name))
            return table[i].size;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const tpi_st_tensor *x = *(tpi_st_tensor *const *)a, *y = *(tpi_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int parse_entry(tpi_st_file *f, const cJSON *e, tpi_st_tensor *t, const uint8_t *base,
                       uint64_t data_bytes, tpi_error *err)
{
    const char *path = f->path, *name = e->string;
    if (!cJSON_IsObject(e))
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": header entry is not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": \"dtype\" missing or not a string", path, name);
    int esize = dtype_size_any(dt->valuestring);
    if (!esize)
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"", path, name, dt->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
    t->dtype_ok = tpi_dtype_parse(dt->valuestring, &t->dtype) == 0;
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > TPI_ST_MAX_DIMS)
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": \"shape\" must be an array of at most %d sizes",
                       path, name, TPI_ST_MAX_DIMS);
    t->n_dims = cJSON_GetArraySize(shape);
    uint64_t numel = 1;
    for (int i = 0; i < t->n_dims; i++) {
        int64_t d;
        if (tpi_json_as_int(cJSON_GetArrayItem(shape, i), 0, (int64_t)1 << 48, &d))
            return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative integer",
                           path, name, i);
        t->shape[i] = d;
        if (d && numel > UINT64_MAX / (uint64_t)d / 8)
            return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": shape overflows", path, name);
        numel *= (uint64_t)d;
    }
    t->numel = (int64_t)numel;
    int64_t b, en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        tpi_json_as_int(cJSON_GetArrayItem(offs, 0), 0, INT64_MAX / 2, &b) ||
        tpi_json_as_int(cJSON_GetArrayItem(offs, 1), 0, INT64_MAX / 2, &en))
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\": \"data_offsets\" must be [begin, end] integers",
                       path, name);
    if (b > en || (uint64_t)en > data_bytes)
        return tpi_err(err, TPI_EFORMAT,
                       "%s: tensor \"%s\": data_offsets [%lld, %lld] out of range (data section is %llu bytes)",
                       path, name, (long long)b, (long long)en, (unsigned long long)data_bytes);
    t->bytes = (uint64_t)(en - b);
    if (t->bytes != numel * (uint64_t)esize)
        return tpi_err(err, TPI_EFORMAT,
                       "%s: tensor \"%s\": data_offsets span %llu bytes but dtype %s x shape needs %llu",
                       path, name, (unsigned long long)t->bytes, t->dtype_name,
                       (unsigned long long)(numel * (uint64_t)esize));
    t->data = base + b;
    return 0;
}

static int parse_header(tpi_st_file *f, const uint8_t *base, uint64_t data_bytes, const char *hdr,
                        size_t hlen, tpi_error *err)
{
    cJSON *root;
    int rc = tpi_json_parse(hdr, hlen, f->path, &root, err);
    if (rc)
        return tpi_err_prefix(err, "safetensors header");
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tpi_err(err, TPI_EFORMAT, "%s: safetensors header is not a JSON object", f->path);
    }
    int64_t n = 0;
    for (cJSON *e = root->child; e; e = e->next)
        n += strcmp(e->string, "__metadata__") != 0;
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    tpi_st_tensor **order = calloc((size_t)n + 1, sizeof *order);
    if (!f->tensors || !order) {
        free(order);
        cJSON_Delete(root);
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld tensors", f->path, (long long)n);
    }
    for (cJSON *e = root->child; e && !rc; e = e->next) {
        if (!strcmp(e->string, "__metadata__"))
            continue;
        tpi_st_tensor *t = &f->tensors[f->n_tensors];
        t->name = strdup(e->string);
        f->n_tensors++;
        rc = t->name ? parse_entry(f, e, t, base, data_bytes, err) : tpi_err(err, TPI_ENOMEM, "out of memory");
        order[f->n_tensors - 1] = t;
    }
    cJSON_Delete(root);
    if (!rc) {
        /* Tensors may come in any order, but their byte ranges must not overlap. */
        qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_begin);
        for (int64_t i = 1; i < f->n_tensors; i++)
            if (order[i - 1]->data + order[i - 1]->bytes > order[i]->data && order[i]->bytes &&
                order[i - 1]->bytes) {
                rc = tpi_err(err, TPI_EFORMAT, "%s: tensors \"%s\" and \"%s\" have overlapping data_offsets",
                             f->path, order[i - 1]->name, order[i]->name);
                break;
            }
    }
    free(order);
    return rc;
}

int tpi_st_open(tpi_st_file **out, const char *path, tpi_error *err)
{
    *out = NULL;
    tpi_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", path);
    }
    int rc = tpi_file_map(path, &f->map, &f->map_bytes, err);
    if (rc) {
        tpi_st_close(f);
        return rc;
    }
    if (f->map_bytes < 8) {
        rc = tpi_err(err, TPI_EFORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length",
                     path, f->map_bytes);
        tpi_st_close(f);
        return rc;
    }
    const uint8_t *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > f->map_bytes - 8) {
        rc = tpi_err(err, TPI_EFORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                     path, (unsigned long long)hlen, f->map_bytes);
        tpi_st_close(f);
        return rc;
    }
    rc = parse_header(f, p + 8 + hlen, f->map_bytes - 8 - hlen, (const char *)p + 8, (size_t)hlen, err);
    if (rc) {
        tpi_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void tpi_st_close(tpi_st_file *f)
{
    if (!f)
        return;
    for (int64_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    tpi_file_unmap(f->map, f->map_bytes);
    free(f->path);
    free(f);
}

const tpi_st_tensor *tpi_st_find(const tpi_st_file *f, const char *name)
{
    for (int64_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

int tpi_st_write(const char *path, const tpi_st_out *tensors, int64_t n, tpi_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        const tpi_st_out *t = &tensors[i];
        uint64_t numel = 1;
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", tpi_dtype_name(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->n_dims; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
            numel *= (uint64_t)t->shape[d];
        }
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += numel * tpi_dtype_size(t->dtype);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *hdr = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!hdr)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory building the header", path);
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return tpi_err(err, TPI_EIO, "%s: cannot create", path);
    }
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (size_t i = hlen; i < padded && ok; i++)
        ok = fputc(' ', f) != EOF;
    free(hdr);
    for (int64_t i = 0; i < n && ok; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < tensors[i].n_dims; d++)
            numel *= (uint64_t)tensors[i].shape[d];
        size_t bytes = (size_t)(numel * tpi_dtype_size(tensors[i].dtype));
        ok = fwrite(tensors[i].data, 1, bytes, f) == bytes;
    }
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : tpi_err(err, TPI_EIO, "%s: write failed (disk full?)", path);
}
