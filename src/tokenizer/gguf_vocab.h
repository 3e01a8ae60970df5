#ifndef TPI_TOKENIZER_GGUF_VOCAB_H
#define TPI_TOKENIZER_GGUF_VOCAB_H
/* A tokenizer stored in GGUF metadata (tokenizer.ggml.*), turned into the
 * tokenizer.json that transformers' GGUF integration builds from it and
 * loaded as one (docs/TOKENIZER.md "GGUF"): gguf_vocab.c reads and checks
 * the keys, gguf_merges.c derives or reads the merges, gguf_pipeline.c
 * writes the normalizer, pre-tokenizer and decoder of each model kind. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/gguf.h"
#include "tokenizer/pieces.h"
#include "tokenizer/strmap.h"
#include "tokenizer/tokenizer.h"

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum {
    TOK_GGUF_NORMAL = 1,
    TOK_GGUF_UNKNOWN = 2,
    TOK_GGUF_CONTROL = 3,
    TOK_GGUF_USER = 4,
    TOK_GGUF_UNUSED = 5,
    TOK_GGUF_BYTE = 6,
};

/* The checked vocabulary arrays. */
typedef struct tok_gguf_vocab {
    const tpi_gguf *g;
    const char *path;
    int64_t n;                       /* tokens: 1 .. TOK_ID_LIMIT */
    const tpi_gguf_kv *tokens;
    const tpi_gguf_kv *scores;       /* NULL when absent */
    const tpi_gguf_kv *types;        /* NULL when absent */
    tok_strmap ids;                  /* token -> id; a repeated token keeps its last id, as a dict */
} tok_gguf_vocab;

/* Loads the tokenizer of the GGUF file at path into t (zeroed, bos -1).
 * Errors name the file and the key: TPI_EIO/TPI_EFORMAT from the reader,
 * TPI_EFORMAT for missing or inconsistent keys, TPI_EUNSUPPORTED for a
 * tokenizer.ggml.model or tokenizer.ggml.pre tpinfer does not know. */
int tok_gguf_load(tpi_tokenizer *t, const char *path, tpi_error *err);

/* Token i's bytes (inside the mapping, not NUL-terminated). */
tpi_gguf_str tok_gguf_token(const tok_gguf_vocab *v, int64_t i);

/* "llama" (SentencePiece): appends to `merges` the [left, right] pairs of
 * every token that splits into two tokens, ordered by the merged token's
 * score (highest first), then the longer left part, then the longer right
 * part, then token order; as transformers' SentencePiece extractor. */
int tok_gguf_spm_merges(const tok_gguf_vocab *v, cJSON *merges, tpi_error *err);
/* "gpt2": tokenizer.ggml.merges ("left right") as [left, right] pairs, each
 * part and their join checked against the vocabulary. */
int tok_gguf_bpe_merges(const tok_gguf_vocab *v, cJSON *merges, tpi_error *err);

/* The pipeline of a SentencePiece vocabulary (Llama's tokenizer.json):
 * Prepend/Replace normalizer, no pre-tokenizer, Replace/ByteFallback/Fuse/
 * Strip decoder; add_space_prefix 0 drops the Prepend and the Strip.
 * Returns 0, or -1 when out of memory. */
int tok_gguf_spm_pipeline(cJSON *root, int add_space_prefix);
/* The pipeline of a byte-level vocabulary for tokenizer.ggml.pre `pre`
 * (NULL: absent, as "default"): sets *ignore_merges and *add_bos (the
 * default of add_bos_token for it). TPI_EUNSUPPORTED names an unknown pre. */
int tok_gguf_bpe_pipeline(cJSON *root, const char *path, const char *pre, int *ignore_merges, int *add_bos,
                          tpi_error *err);
#endif
