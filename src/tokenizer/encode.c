/* Text -> ids: added tokens, normalizer, pre-tokenizer, BPE, post-processor,
 * in the order of tokenizers' Tokenizer::encode. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "tokenizer encode: out of memory");
}

typedef struct work {
    tok_pieces segs, norm, words;
    tok_buf buf;
    tok_ids ids;
} work;

static void work_free(work *w)
{
    tok_pieces_free(&w->segs);
    tok_pieces_free(&w->norm);
    tok_pieces_free(&w->words);
    tok_buf_free(&w->buf);
    free(w->ids.v);
}

static int run(const tpi_tokenizer *t, const char *text, size_t len, int add_special, work *w, tpi_error *err)
{
    /* 1. Added tokens that are matched before normalization. */
    if (tok_added_split(&t->added, 0, text, len, 1, &w->segs))
        return oom(err);
    /* 2. Normalize the rest, then match the normalized added tokens. */
    for (size_t i = 0; i < w->segs.n; i++) {
        const tok_span *s = &w->segs.v[i];
        const char *p = tok_piece_text(&w->segs, i);
        if (s->id >= 0) {
            if (tok_pieces_add(&w->norm, p, s->len, s->id, s->first))
                return oom(err);
            continue;
        }
        if (t->normalizer) {
            int rc = tok_normalize(t->normalizer, p, s->len, &w->buf, err);
            if (rc)
                return rc;
            p = w->buf.p;
            if (tok_added_split(&t->added, 1, p, w->buf.len, s->first, &w->norm))
                return oom(err);
        } else if (tok_added_split(&t->added, 1, p, s->len, s->first, &w->norm))
            return oom(err);
    }
    /* 3. Pre-tokenize into words. */
    const tok_pieces *words = &w->norm;
    if (t->pretok) {
        int rc = tok_pretokenize(t->pretok, &w->norm, &w->words, err);
        if (rc)
            return rc;
        words = &w->words;
    }
    /* 4. The model, word by word. */
    if (add_special && tok_ids_addn(&w->ids, t->post.prefix.v, t->post.prefix.n))
        return oom(err);
    for (size_t i = 0; i < words->n; i++) {
        int rc = words->v[i].id >= 0 ? (tok_ids_add(&w->ids, words->v[i].id) ? oom(err) : 0)
                                     : tok_bpe_encode(&t->bpe, tok_piece_text(words, i), words->v[i].len,
                                                      &w->ids, err);
        if (rc)
            return rc;
    }
    /* 5. The post-processor's special tokens. */
    if (add_special && tok_ids_addn(&w->ids, t->post.suffix.v, t->post.suffix.n))
        return oom(err);
    return 0;
}

int tpi_tokenizer_encode(const tpi_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                         size_t *n_ids, tpi_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    if (!t || (!text && len))
        return tpi_err(err, TPI_EINVAL, "tokenizer encode: NULL tokenizer or text");
    char *fixed = NULL;
    if (!tok_utf8_valid(text, len)) {
        size_t fixed_len;
        if (!(fixed = tok_utf8_repair(text, len, &fixed_len)))
            return oom(err);
        text = fixed, len = fixed_len;
    }
    work w = {0};
    int rc = run(t, text ? text : "", len, add_special, &w, err);
    free(fixed);
    if (!rc && !w.ids.v && !(w.ids.v = malloc(sizeof *w.ids.v)))
        rc = oom(err);
    if (!rc) {
        *ids = w.ids.v;
        *n_ids = w.ids.n;
        w.ids.v = NULL;
    }
    work_free(&w);
    return rc;
}
