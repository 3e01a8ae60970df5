#include "tokenizer/pieces.h"

#include <stdlib.h>
#include <string.h>

int tok_buf_reserve(tok_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap = cap > SIZE_MAX / 2 ? b->len + extra + 1 : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_add(tok_buf *b, const void *data, size_t n)
{
    if (tok_buf_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;   /* always NUL-terminated, for messages and callers */
    return 0;
}

void tok_buf_free(tok_buf *b)
{
    if (!b)
        return;
    free(b->p);
    memset(b, 0, sizeof *b);
}

int tok_pieces_span(tok_pieces *p, size_t off, size_t len, int32_t id, int first)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        tok_span *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (tok_span){off, len, id, first};
    return 0;
}

int tok_pieces_add(tok_pieces *p, const char *s, size_t len, int32_t id, int first)
{
    size_t off = p->text.len;
    if (tok_buf_add(&p->text, s, len))
        return -1;
    return tok_pieces_span(p, off, len, id, first);
}

void tok_pieces_reset(tok_pieces *p)
{
    p->n = 0;
    p->text.len = 0;
}

void tok_pieces_free(tok_pieces *p)
{
    if (!p)
        return;
    tok_buf_free(&p->text);
    free(p->v);
    memset(p, 0, sizeof *p);
}

int tok_ids_addn(tok_ids *ids, const int32_t *v, size_t n)
{
    if (ids->n + n > ids->cap) {
        size_t cap = ids->cap ? ids->cap : 64;
        while (cap < ids->n + n)
            cap *= 2;
        int32_t *w = realloc(ids->v, cap * sizeof *w);
        if (!w)
            return -1;
        ids->v = w;
        ids->cap = cap;
    }
    if (n)
        memcpy(ids->v + ids->n, v, n * sizeof *v);
    ids->n += n;
    return 0;
}

int tok_ids_add(tok_ids *ids, int32_t id)
{
    return tok_ids_addn(ids, &id, 1);
}
