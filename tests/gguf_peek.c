/* A bounds-checked walk over GGUF v3's header, key/values and tensor infos
 * (gguf_peek.h). */
#include "gguf_peek.h"

#include <string.h>

typedef struct rd {
    const uint8_t *p;
    size_t at, end;
    int bad;
} rd;

static uint64_t get(rd *r, int bytes)
{
    uint64_t v = 0;
    if (r->bad || r->end - r->at < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p + r->at, (size_t)bytes); /* little-endian host */
    r->at += (size_t)bytes;
    return v;
}

static void skip(rd *r, uint64_t bytes)
{
    if (r->bad || r->end - r->at < bytes)
        r->bad = 1;
    else
        r->at += bytes;
}

/* Size of a scalar value type, 0 for string (8) and array (9). */
static int scalar_size(uint32_t t)
{
    static const int sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sizes[t] : -1;
}

static void skip_value(rd *r, uint32_t t, uint32_t *align, int is_align)
{
    if (t == 8) {
        skip(r, get(r, 8));
    } else if (t == 9) {
        uint32_t et = (uint32_t)get(r, 4);
        uint64_t n = get(r, 8);
        for (uint64_t i = 0; i < n && !r->bad; i++)
            skip_value(r, et, align, 0);
    } else if (scalar_size(t) > 0) {
        uint64_t v = get(r, scalar_size(t));
        if (is_align)
            *align = (uint32_t)v;
    } else {
        r->bad = 1;
    }
}

int gguf_peek(const uint8_t *buf, size_t bytes, const char *name, gguf_peek_tensor *out)
{
    rd r = {buf, 0, bytes, 0};
    if (get(&r, 4) != 0x46554747u || get(&r, 4) != 3) /* "GGUF", v3 */
        return -1;
    uint64_t n_tensors = get(&r, 8), n_kv = get(&r, 8);
    uint32_t align = 32;
    for (uint64_t i = 0; i < n_kv && !r.bad; i++) {
        uint64_t klen = get(&r, 8);
        int is_align = !r.bad && klen == 17 && r.end - r.at >= 17 && !memcmp(r.p + r.at, "general.alignment", 17);
        skip(&r, klen);
        skip_value(&r, (uint32_t)get(&r, 4), &align, is_align);
    }
    int found = 0;
    uint64_t offset = 0;
    for (uint64_t i = 0; i < n_tensors && !r.bad; i++) {
        uint64_t nlen = get(&r, 8);
        int match = !r.bad && nlen == strlen(name) && r.end - r.at >= nlen && !memcmp(r.p + r.at, name, nlen);
        skip(&r, nlen);
        gguf_peek_tensor t = {.n_dims = (uint32_t)get(&r, 4)};
        if (t.n_dims > 4)
            return -1;
        for (uint32_t d = 0; d < t.n_dims; d++)
            t.dims[d] = get(&r, 8);
        t.type = (uint32_t)get(&r, 4);
        uint64_t off = get(&r, 8);
        if (match) {
            *out = t;
            offset = off;
            found = 1;
        }
    }
    if (r.bad || !found || align == 0)
        return -1;
    size_t start = (r.at + align - 1) / align * align;
    if (start > bytes || offset > bytes - start)
        return -1;
    out->data = buf + start + offset;
    return 0;
}
