#ifndef TPI_TOKENIZER_TOKENIZER_H
#define TPI_TOKENIZER_TOKENIZER_H
/* The loaded tokenizer: tokenizer.json's pipeline plus tokenizer_config.json's
 * special tokens. Shared by tokenizer.c (load), encode.c, detokenize.c, detok_stream.c. */
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/postprocess.h"
#include "tokenizer/pretokenizer.h"
#include "tpinfer.h"

#define TOK_MAX_EOS 8

struct tpi_tokenizer {
    tok_bpe bpe;
    tok_added added;
    tok_normalizer *normalizer; /* NULL: none */
    tok_pretok *pretok;
    tok_decoder *decoder;
    tok_post post;              /* ids around the text when add_special */
    const char **pieces;        /* id -> token string (into bpe.vocab / added), NULL for holes */
    uint8_t *special;           /* id -> 1 for special added tokens */
    char *extra_pieces;         /* strings of ids the vocab map cannot hold (a GGUF's repeated tokens) */
    int64_t n_vocab;
    int32_t bos;
    int32_t eos[TOK_MAX_EOS];
    int n_eos;
};

/* Loads tokenizer.json's content (root) into t (zeroed, bos -1); `what`
 * names the source in messages. */
int tok_load_root(tpi_tokenizer *t, const cJSON *root, const char *what, tpi_error *err);
/* Adds id to the eos ids unless present or full (id < 0: nothing). */
void tok_add_eos(tpi_tokenizer *t, int32_t id);
/* Decodes ids into a NUL-terminated text in out (replacing its content). */
int tok_detokenize(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special, tok_buf *out,
                   tpi_error *err);
#endif
