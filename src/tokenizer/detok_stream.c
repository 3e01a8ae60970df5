/* Streaming detokenization: the text of each new id as soon as it can no
 * longer change. Decoding is not a per-token concatenation: SentencePiece
 * chains strip one leading space of the whole text, Metaspace drops the "▁"
 * of the first piece only, ByteFallback decodes a run of byte tokens as one
 * group (a later byte can turn valid "A" into "\uFFFD\uFFFD"), and lossy
 * UTF-8 decoding shows an unfinished character as U+FFFD. So, as tokenizers'
 * DecodeStream and vLLM's prefix_offset/read_offset, the stream decodes a
 * short window of ids and emits only what the window adds beyond the text it
 * already emitted, holding back what a later id may still rewrite. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

/* The window is ids[0..n): ids[0..read) were emitted and decode alone to
 * `ctx`. Window start and read boundary lie where the full decode splits:
 * not inside a byte-fallback group, not inside a UTF-8 character. Once the
 * window has moved past the sequence's first id, ctx is non-empty, so that
 * first-token rules (Strip's leading space, Metaspace's first "▁") act
 * inside ctx and never on the new text. */
struct tpi_detok_stream {
    const tpi_tokenizer *t;
    int skip_special;
    int byte_groups; /* the decoder has ByteFallback */
    tok_ids ids;
    size_t read;
    tok_buf ctx, cur, out;
};

static int has_bytefallback(const tok_decoder *d)
{
    if (!d)
        return 0;
    if (d->type == DEC_BYTEFALLBACK)
        return 1;
    for (size_t i = 0; i < d->n_seq; i++)
        if (has_bytefallback(&d->seq[i]))
            return 1;
    return 0;
}

int tpi_detok_stream_create(tpi_detok_stream **out, const tpi_tokenizer *t, int skip_special, tpi_error *err)
{
    *out = NULL;
    if (!t)
        return tpi_err(err, TPI_EINVAL, "detok stream: NULL tokenizer");
    tpi_detok_stream *s = calloc(1, sizeof *s);
    if (!s || tok_buf_add(&s->ctx, "", 0) || tok_buf_add(&s->out, "", 0)) {
        tpi_detok_stream_free(s);
        return tpi_err(err, TPI_ENOMEM, "detok stream: out of memory");
    }
    s->t = t;
    s->skip_special = skip_special;
    s->byte_groups = has_bytefallback(t->decoder);
    *out = s;
    return 0;
}

void tpi_detok_stream_free(tpi_detok_stream *s)
{
    if (!s)
        return;
    free(s->ids.v);
    tok_buf_free(&s->ctx);
    tok_buf_free(&s->cur);
    tok_buf_free(&s->out);
    free(s);
}

static int ends_incomplete(const tok_buf *b)
{
    /* Lossy decoding turns a partial character into U+FFFD. A real U+FFFD at
     * the end only delays the text until the next character. */
    return b->len >= 3 && !memcmp(b->p + b->len - 3, "\xEF\xBF\xBD", 3);
}

/* "<0xNN>", the token strings ByteFallback groups. */
static int is_byte_piece(const char *p)
{
    return strlen(p) == 6 && !memcmp(p, "<0x", 3) && p[5] == '>';
}

/* The last boundary in (read, n] that no later id can move text across:
 * before a trailing run of byte tokens (skipped specials inside the run do
 * not end it, as ByteFallback never sees them). read when there is none. */
static size_t stable_end(const tpi_detok_stream *s)
{
    size_t k = s->ids.n, end = s->ids.n;
    if (!s->byte_groups)
        return end;
    while (k > s->read) {
        int32_t id = s->ids.v[k - 1];
        int skipped = s->skip_special && s->t->special[id];
        if (!skipped && !is_byte_piece(s->t->pieces[id]))
            break;
        k--;
        if (!skipped)
            end = k;
    }
    return end;
}

static int set_text(tok_buf *b, const char *p, size_t n)
{
    b->len = 0;
    return tok_buf_add(b, "", 0) || tok_buf_add(b, p, n);
}

/* After emitting up to end: move the window start to the old read boundary
 * when the ids from there decode to non-empty text, else keep the start. */
static int advance(tpi_detok_stream *s, size_t end, tpi_error *err)
{
    size_t from = s->read;
    tok_buf t;
    int rc = from ? tok_detokenize(s->t, s->ids.v + from, end - from, s->skip_special, &s->ctx, err) : 0;
    if (rc)
        return rc;
    if (from && s->ctx.len) {
        memmove(s->ids.v, s->ids.v + from, (s->ids.n - from) * sizeof *s->ids.v);
        s->ids.n -= from;
        s->read = end - from;
        return 0;
    }
    t = s->ctx, s->ctx = s->cur, s->cur = t;
    s->read = end;
    return 0;
}

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "detok stream: out of memory");
}

int tpi_detok_stream_push(tpi_detok_stream *s, int32_t id, const char **text, size_t *len, tpi_error *err)
{
    *text = "";
    if (len)
        *len = 0;
    if (id < 0 || id >= s->t->n_vocab || !s->t->pieces[id])
        return tpi_err(err, TPI_EINVAL, "detok stream: id %d is not in the vocabulary (size %lld)", (int)id,
                       (long long)s->t->n_vocab);
    if (tok_ids_add(&s->ids, id))
        return oom(err);
    size_t end = stable_end(s);
    if (end <= s->read)
        return 0;
    int rc = tok_detokenize(s->t, s->ids.v, end, s->skip_special, &s->cur, err);
    if (rc)
        return rc;
    /* A text that no longer starts with ctx waits: the next stable point or
     * the flush emits it. */
    if (s->cur.len <= s->ctx.len || ends_incomplete(&s->cur) || memcmp(s->cur.p, s->ctx.p, s->ctx.len))
        return 0;
    if (set_text(&s->out, s->cur.p + s->ctx.len, s->cur.len - s->ctx.len))
        return oom(err);
    if ((rc = advance(s, end, err)))
        return rc;
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
    int rc = tok_detokenize(s->t, s->ids.v, s->ids.n, s->skip_special, &s->cur, err);
    if (rc)
        return rc;
    /* ctx was emitted; the window's decode extends it (push only emits at
     * boundaries the decode splits at), else the rest after what both share. */
    size_t keep = 0;
    while (keep < s->ctx.len && keep < s->cur.len && s->cur.p[keep] == s->ctx.p[keep])
        keep++;
    if (set_text(&s->out, s->cur.p + keep, s->cur.len - keep))
        return oom(err);
    s->ids.n = 0;
    s->read = 0;
    s->ctx.len = 0;
    s->ctx.p[0] = 0;
    *text = s->out.p;
    if (len)
        *len = s->out.len;
    return 0;
}
