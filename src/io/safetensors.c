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

/* Offset of the first byte where `s` stops being UTF-8 (RFC 3629: no overlong
 * forms, surrogates or code points past U+10FFFF), or len when it is all UTF-8. */
static size_t utf8_prefix(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            n = 1, cp = c & 0x1Fu, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            n = 2, cp = c & 0x0Fu, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            n = 3, cp = c & 0x07u, min = 0x10000;
        else
            return i;
        if (len - i <= n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

/* cJSON decodes "\u0000" into a NUL that ends the C string, so a tensor named
 * "X\u0000evil" would alias "X" (and a dtype "F32\u0000x" would read as "F32").
 * Walks the header's string literals as JSON defines them and refuses a NUL,
 * escaped or raw, and any raw control byte, which JSON does not allow. */
static int check_strings(const char *path, const char *h, size_t len, tpi_error *err)
{
    size_t start = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!in_str && c == 0)
            return tpi_err(err, TPI_EFORMAT, "%s: safetensors header byte %zu is NUL (not JSON)", path, i);
        if (!in_str) {
            in_str = c == '"';
            start = i;
            continue;
        }
        int nul = c == 0 || (c == '\\' && len - i > 5 && !memcmp(h + i + 1, "u0000", 5));
        if (nul) {
            size_t end = start + 1;
            while (end < len && end - start < 80 && h[end] != '"' && h[end])
                end += h[end] == '\\' ? 2 : 1;
            end = end < len ? end + 1 : len;
            return tpi_err(err, TPI_EFORMAT,
                           "%s: safetensors header string %.*s (at byte %zu) contains NUL; a tensor name or "
                           "dtype with NUL would alias a shorter one", path, (int)(end - start), h + start, start);
        }
        if (c < 0x20)
            return tpi_err(err, TPI_EFORMAT, "%s: safetensors header string at byte %zu holds raw control byte 0x%02x "
                           "at byte %zu (JSON needs it escaped)", path, start, c, i);
        if (c == '"')
            in_str = 0;
        else if (c == '\\')
            i++;
    }
    return 0;
}

static int check_metadata(const char *path, const cJSON *m, tpi_error *err)
{
    if (!cJSON_IsObject(m))
        return tpi_err(err, TPI_EFORMAT, "%s: \"__metadata__\" must be an object of strings, found %s", path,
                       cJSON_IsArray(m) ? "an array" : cJSON_IsString(m) ? "a string" : "another JSON value");
    for (const cJSON *e = m->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return tpi_err(err, TPI_EFORMAT, "%s: \"__metadata__\"[\"%s\"] must be a string", path, e->string);
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const tpi_st_tensor *x = *(tpi_st_tensor *const *)a, *y = *(tpi_st_tensor *const *)b;
    if (x->data != y->data)
        return x->data < y->data ? -1 : 1;
    return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;
}

/* The reference's validate(): sorted by data_offsets, each tensor begins where
 * the previous one ends (the first at 0), and the last ends at the end of the
 * data section. Zero-size tensors take part like any other. */
static int check_layout(const tpi_st_file *f, const uint8_t *base, uint64_t data_bytes, tpi_error *err)
{
    int64_t n = f->n_tensors;
    tpi_st_tensor **order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld tensors", f->path, (long long)n);
    for (int64_t i = 0; i < n; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)n, sizeof *order, cmp_range);
    uint64_t at = 0;
    const char *prev = NULL;
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        uint64_t b = (uint64_t)(order[i]->data - base);
        const char *name = order[i]->name;
        if (b < at)
            rc = tpi_err(err, TPI_EFORMAT, "%s: tensors \"%s\" and \"%s\" have overlapping data_offsets (\"%s\" ends "
                         "at %llu, \"%s\" begins at %llu)", f->path, prev, name, prev, (unsigned long long)at, name,
                         (unsigned long long)b);
        else if (b > at && !prev)
            rc = tpi_err(err, TPI_EFORMAT, "%s: hole of %llu bytes before the first tensor \"%s\" (data_offsets "
                         "must begin at 0)", f->path, (unsigned long long)b, name);
        else if (b > at)
            rc = tpi_err(err, TPI_EFORMAT, "%s: hole of %llu bytes between tensors \"%s\" (ends at %llu) and \"%s\" "
                         "(begins at %llu)", f->path, (unsigned long long)(b - at), prev, (unsigned long long)at,
                         name, (unsigned long long)b);
        at = b + order[i]->bytes;
        prev = name;
    }
    if (!rc && at != data_bytes)
        rc = tpi_err(err, TPI_EFORMAT, "%s: %llu trailing bytes after the last tensor%s%s%s (data section is %llu "
                     "bytes, tensors end at %llu)", f->path, (unsigned long long)(data_bytes - at), prev ? " \"" : "",
                     prev ? prev : "", prev ? "\"" : "", (unsigned long long)data_bytes, (unsigned long long)at);
    free(order);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(tpi_st_tensor *const *)a)->name, (*(tpi_st_tensor *const *)b)->name);
}

/* Sorts the tensors by name once, so that lookups are binary searches and a
 * duplicate name (which cJSON keeps as a second member) is two neighbours. */
static int index_names(tpi_st_file *f, tpi_error *err)
{
    int64_t n = f->n_tensors;
    f->by_name = malloc(((size_t)n + 1) * sizeof *f->by_name);
    if (!f->by_name)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld tensors", f->path, (long long)n);
    for (int64_t i = 0; i < n; i++)
        f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, cmp_name);
    for (int64_t i = 1; i < n; i++)
        if (!strcmp(f->by_name[i - 1]->name, f->by_name[i]->name))
            return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" appears more than once in the header", f->path,
                           f->by_name[i]->name);
    return 0;
}

/* Parses the JSON text itself (not tpi_json_parse) to refuse text after the
 * object, which cJSON would otherwise ignore. */
static int parse_json(const char *path, const char *hdr, size_t hlen, cJSON **out, tpi_error *err)
{
    size_t ok = utf8_prefix((const uint8_t *)hdr, hlen);
    if (ok != hlen)
        return tpi_err(err, TPI_EFORMAT, "%s: safetensors header is not UTF-8 (bad byte 0x%02x at header byte %zu)",
                       path, (unsigned char)hdr[ok], ok);
    int rc = check_strings(path, hdr, hlen, err);
    if (rc)
        return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root)
        return tpi_err(err, TPI_EFORMAT, "%s: safetensors header: not valid JSON (parse error near byte %zu)", path,
                       end && end >= hdr ? (size_t)(end - hdr) : 0);
    for (const char *p = end; p < hdr + hlen; p++)
        if (!strchr(" \t\r\n", *p)) {
            cJSON_Delete(root);
            return tpi_err(err, TPI_EFORMAT, "%s: safetensors header: text after the JSON object at header byte %zu "
                           "(only spaces may pad it)", path, (size_t)(p - hdr));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tpi_err(err, TPI_EFORMAT, "%s: safetensors header is not a JSON object", path);
    }
    *out = root;
    return 0;
}

static int parse_header(tpi_st_file *f, const uint8_t *base, uint64_t data_bytes, const char *hdr,
                        size_t hlen, tpi_error *err)
{
    cJSON *root = NULL;
    int rc = parse_json(f->path, hdr, hlen, &root, err);
    if (rc)
        return rc;
    int64_t n = 0;
    for (cJSON *e = root->child; e; e = e->next)
        n += strcmp(e->string, "__metadata__") != 0;
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    if (!f->tensors) {
        cJSON_Delete(root);
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld tensors", f->path, (long long)n);
    }
    int n_meta = 0;
    for (cJSON *e = root->child; e && !rc; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            rc = ++n_meta > 1 ? tpi_err(err, TPI_EFORMAT, "%s: \"__metadata__\" appears more than once", f->path)
                              : check_metadata(f->path, e, err);
            continue;
        }
        tpi_st_tensor *t = &f->tensors[f->n_tensors];
        t->name = strdup(e->string);
        f->n_tensors++;
        rc = t->name ? parse_entry(f, e, t, base, data_bytes, err) : tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    cJSON_Delete(root);
    if (!rc)
        rc = index_names(f, err);
    if (!rc)
        rc = check_layout(f, base, data_bytes, err);
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
    if (hlen > TPI_ST_MAX_HEADER) {
        rc = tpi_err(err, TPI_EFORMAT, "%s: header length %llu is over the %d-byte limit safetensors sets",
                     path, (unsigned long long)hlen, TPI_ST_MAX_HEADER);
        tpi_st_close(f);
        return rc;
    }
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
    free(f->by_name);
    tpi_file_unmap(f->map, f->map_bytes);
    free(f->path);
    free(f);
}

const tpi_st_tensor *tpi_st_find(const tpi_st_file *f, const char *name)
{
    int64_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (!c)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
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
