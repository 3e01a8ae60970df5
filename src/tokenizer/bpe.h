#ifndef TPI_TOKENIZER_BPE_H
#define TPI_TOKENIZER_BPE_H
/* The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback,
 * unknown token, ignore_merges; with a cache of encoded words. */
#include <cjson/cJSON.h>
#include <pthread.h>

#include "tokenizer/pieces.h"
#include "tokenizer/strmap.h"
#include "tpinfer.h"

typedef struct tok_bpe_cache tok_bpe_cache;

typedef struct tok_bpe {
    tok_strmap vocab;        /* token string -> id */
    tok_pairmap merges;      /* (left, right) -> rank, merged id */
    int32_t *merged_of_rank; /* rank -> merged id */
    int32_t unk_id;          /* -1: no unk_token */
    char *unk_token;         /* named, maybe absent from the vocabulary */
    int byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix;   /* continuing_subword_prefix, end_of_word_suffix (NULL: none) */
    size_t prefix_len, suffix_len;
    int32_t byte_ids[256];   /* ids of "<0xXX>", -1 when absent */
    tok_bpe_cache *cache;
} tok_bpe;

/* Loads the "model" object (type "BPE"); `what` names it in messages. */
int tok_bpe_load(tok_bpe *m, const cJSON *model, const char *what, tpi_error *err);
/* Appends the ids of one pre-tokenized word. Thread-safe. */
int tok_bpe_encode(const tok_bpe *m, const char *word, size_t len, tok_ids *out, tpi_error *err);
void tok_bpe_clear(tok_bpe *m);
#endif
