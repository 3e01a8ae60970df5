/* Ids -> text (tpi_tokenizer_decode): the ids' token strings through the
 * tokenizer.json decoder chain (decoder.c), as tokenizers' Tokenizer::decode. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "tokenizer decode: out of memory");
}

int tok_detokenize(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special, tok_buf *out,
                   tpi_error *err)
{
    tok_pieces toks = {0}, res = {0};
    int rc = 0;
    out->len = 0;
    if (tok_buf_add(out, "", 0))
        return oom(err);
    for (size_t i = 0; !rc && i < n; i++) {
        const char *p = tpi_tokenizer_piece(t, ids[i]);
        if (!p)
            rc = tpi_err(err, TPI_EINVAL, "tokenizer decode: id %d (position %zu) is not in the vocabulary (size %lld)",
                         (int)ids[i], i, (long long)t->n_vocab);
        else if (!(skip_special && t->special[ids[i]]) && tok_pieces_add(&toks, p, strlen(p), ids[i], 0))
            rc = oom(err);
    }
    const tok_pieces *final = &toks;
    if (!rc && t->decoder) {
        rc = tok_decode_chain(t->decoder, &toks, &res, err);
        final = &res;
    }
    /* Without a decoder tokenizers joins the tokens with spaces. */
    for (size_t i = 0; !rc && i < final->n; i++)
        if ((!t->decoder && i && tok_buf_add(out, " ", 1)) ||
            tok_buf_add(out, tok_piece_text(final, i), final->v[i].len))
            rc = oom(err);
    tok_pieces_free(&toks);
    tok_pieces_free(&res);
    return rc;
}

int tpi_tokenizer_decode(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                         size_t *len, tpi_error *err)
{
    *text = NULL;
    if (len)
        *len = 0;
    if (!t || (!ids && n))
        return tpi_err(err, TPI_EINVAL, "tokenizer decode: NULL tokenizer or ids");
    tok_buf out = {0};
    int rc = tok_detokenize(t, ids, n, skip_special, &out, err);
    if (rc) {
        tok_buf_free(&out);
        return rc;
    }
    *text = out.p;
    if (len)
        *len = out.len;
    return 0;
}
