/* The text side of generation on rank 0: detokenizing, streaming to
 * on_text, and stop strings (gen_text.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "generate/gen_text.h"

static int append(tpi_gen_text *t, const char *s, size_t n, tpi_error *err)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
    return 0;
}

int tpi_gen_text_start(tpi_gen_text *t, const tpi_gen_opts *o, int64_t seq, const int32_t *prompt, int64_t n,
                       tpi_error *err)
{
    int rc = tpi_detok_stream_create(&t->ds, o->tokenizer, 1, err);
    if (!rc)
        rc = append(t, "", 0, err);
    for (int64_t i = 0; i < n && !rc; i++)
        rc = tpi_gen_text_push(t, prompt[i], err);
    if (rc)
        return rc;
    /* Stop strings apply to the output after the prompt, echoed or not. */
    t->base = o->echo_prompt ? 0 : t->len;
    t->emitted = t->len;
    if (o->echo_prompt && t->len && o->on_text)
        o->on_text(o->user, seq, t->buf, t->len);
    return 0;
}

int tpi_gen_text_push(tpi_gen_text *t, int32_t id, tpi_error *err)
{
    const char *piece;
    size_t n;
    int rc = tpi_detok_stream_push(t->ds, id, &piece, &n, err);
    return rc ? rc : append(t, piece, n, err);
}

int tpi_gen_text_flush(tpi_gen_text *t, tpi_error *err)
{
    const char *piece;
    size_t n;
    int rc = tpi_detok_stream_flush(t->ds, &piece, &n, err);
    return rc ? rc : append(t, piece, n, err);
}

static const char *find(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, m))
            return hay + i;
    return NULL;
}

/* The longest tail of the text (at most the text after `from`) that is a
 * proper prefix of some stop string: it may still become one. */
static size_t stop_prefix_tail(const tpi_gen_text *t, const tpi_gen_opts *o, size_t from)
{
    size_t hold = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        for (size_t h = sl > 0 ? sl - 1 : 0; h > hold; h--)
            if (h <= t->len - from && !memcmp(t->buf + t->len - h, o->stop[i], h)) {
                hold = h;
                break;
            }
    }
    return hold;
}

int tpi_gen_text_emit(tpi_gen_text *t, const tpi_gen_opts *o, int64_t seq, int final)
{
    size_t from = t->emitted > t->base ? t->emitted : t->base;
    size_t end = t->len;
    int hit = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        if (!sl)
            continue;
        const char *at = find(t->buf + from, t->len - from, o->stop[i], sl);
        if (at && (size_t)(at - t->buf) < end) {
            end = (size_t)(at - t->buf);
            hit = 1;
        }
    }
    if (hit) {
        t->len = end;
        t->buf[end] = 0;
    } else if (!final) {
        end -= stop_prefix_tail(t, o, from);
    }
    if (end > t->emitted && o->on_text)
        o->on_text(o->user, seq, t->buf + t->emitted, end - t->emitted);
    if (end > t->emitted)
        t->emitted = end;
    return hit;
}

const char *tpi_gen_text_output(const tpi_gen_text *t, size_t *len)
{
    *len = t->len - t->base;
    return t->buf + t->base;
}

void tpi_gen_text_free(tpi_gen_text *t)
{
    if (!t)
        return;
    tpi_detok_stream_free(t->ds);
    free(t->buf);
    memset(t, 0, sizeof *t);
}
