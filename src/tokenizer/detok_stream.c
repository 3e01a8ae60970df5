/* Streaming detokenization: the text of each new id as soon as it ends in
 * whole characters. Same scheme as tokenizers' DecodeStream: decode a short
 * window of recent ids, and emit what it adds beyond the window's prefix. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

struct tpi_detok_stream {
    const tpi_tokenizer *t;
    int skip_special;
    tok_ids ids;          /* the window */
    size_t prefix_index;  /* ids[0..prefix_index) already emitted */
    tok_buf prefix;       /* decode(ids[0..prefix_index)) */
    tok_buf cur, out;
};

int tpi_detok_stream_create(tpi_detok_stream **out, const tpi_tokenizer *t, int skip_special, tpi_error *err)
{
    *out = NULL;
    if (!t)
        return tpi_err(err, TPI_EINVAL, "detok stream: NULL tokenizer");
    tpi_detok_stream *s = calloc(1, sizeof *s);
    if (!s || tok_buf_add(&s->prefix, "", 0) || tok_buf_add(&s->out, "", 0)) {
        tpi_detok_stream_free(s);
        return tpi_err(err, TPI_ENOMEM, "detok stream: out of memory");
    }
    s->t = t;
    s->skip_special = skip_special;
    *out = s;
    return 0;
}

void tpi_detok_stream_free(tpi_detok_stream *s)
{
    if (!s)
        return;
    free(s->ids.v);
    tok_buf_free(&s->prefix);
    tok_buf_free(&s->cur);
    tok_buf_free(&s->out);
    free(s);
}

static int ends_incomplete(const tok_buf *b)
{
    /* Lossy decoding turns a partial character into U+FFFD. */
    return b->len >= 3 && !memcmp(b->p + b->len - 3, "\xEF\xBF\xBD", 3);
}

int tpi_detok_stream_push(tpi_detok_stream *s, int32_t id, const char **text, size_t *len, tpi_error *err)
{
    *text = "";
    if (len)
        *len = 0;
    int rc;
    if (s->prefix.len == 0 && s->ids.n) {
        /* The window's start did not decode to whole characters yet. */
        if ((rc = tok_detokenize(s->t, s->ids.v, s->ids.n, s->skip_special, &s->cur, err)))
            return rc;
        if (!ends_incomplete(&s->cur)) {
            tok_buf t = s->prefix;
            s->prefix = s->cur, s->cur = t;
            s->prefix_index = s->ids.n;
        }
    }
    if (id < 0 || id >= s->t->n_vocab || !s->t->pieces[id])
        return tpi_err(err, TPI_EINVAL, "detok stream: id %d is not in the vocabulary (size %lld)", (int)id,
                       (long long)s->t->n_vocab);
    if (tok_ids_add(&s->ids, id))
        return tpi_err(err, TPI_ENOMEM, "detok stream: out of memory");
    if ((rc = tok_detokenize(s->t, s->ids.v, s->ids.n, s->skip_special, &s->cur, err)))
        return rc;
    if (s->cur.len <= s->prefix.len || ends_incomplete(&s->cur))
        return 0;
    if (memcmp(s->cur.p, s->prefix.p, s->prefix.len))
        return tpi_err(err, TPI_EFORMAT, "detok stream: the decoder rewrote earlier text (prefix changed)");
    s->out.len = 0;
    if (tok_buf_add(&s->out, s->cur.p + s->prefix.len, s->cur.len - s->prefix.len))
        return tpi_err(err, TPI_ENOMEM, "detok stream: out of memory");
    /* Keep the ids after the old prefix as context for the next token. */
    size_t keep_from = s->prefix_index, new_index = s->ids.n - keep_from;
    memmove(s->ids.v, s->ids.v + keep_from, new_index * sizeof *s->ids.v);
    s->ids.n = new_index;
    if ((rc = tok_detokenize(s->t, s->ids.v, s->ids.n, s->skip_special, &s->prefix, err)))
        return rc;
    s->prefix_index = new_index;
    *text = s->out.p;
    if (len)
        *len = s->out.len;
    return 0;
}

int tpi_detok_stream_flush(tpi_detok_stream *s, const char **text, size_t *len, tpi_error *err)
{
    *text = "";
    if (len)
        *len = 0;
    if (!s->ids.n)
        return 0;
    int rc = tok_detokenize(s->t, s->ids.v, s->ids.n, s->skip_special, &s->cur, err);
    if (rc)
        return rc;
    s->out.len = 0;
    s->out.p[0] = 0;
    if (s->cur.len > s->prefix.len && !memcmp(s->cur.p, s->prefix.p, s->prefix.len) &&
        tok_buf_add(&s->out, s->cur.p + s->prefix.len, s->cur.len - s->prefix.len))
        return tpi_err(err, TPI_ENOMEM, "detok stream: out of memory");
    s->ids.n = 0;
    s->prefix_index = 0;
    s->prefix.len = 0;
    *text = s->out.p;
    if (len)
        *len = s->out.len;
    return 0;
}
