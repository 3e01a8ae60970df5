#ifndef TPI_TOKENIZER_ADDED_TOKENS_H
#define TPI_TOKENIZER_ADDED_TOKENS_H
/* tokenizer.json "added_tokens": found in the text before pre-tokenization
 * (leftmost, then longest, as tokenizers' Aho-Corasick LeftmostLongest), the
 * non-normalized ones in the raw text, the normalized ones after normalizing. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "tokenizer/pieces.h"
#include "tpinfer.h"

typedef struct tok_added_token {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, normalized, single_word;
} tok_added_token;

typedef struct tok_trie_node {
    int32_t child, sibling; /* -1: none */
    int32_t token;          /* index of the token ending here, -1: none */
    uint8_t byte;
} tok_trie_node;

typedef struct tok_added {
    tok_added_token *v;
    size_t n;
    tok_trie_node *nodes; /* node 0: root of the raw trie, 1: of the normalized one */
    size_t n_nodes, cap_nodes;
} tok_added;

int tok_added_load(tok_added *a, const cJSON *list, const char *what, tpi_error *err);
/* Splits s around the added tokens of one trie (normalized = 0 or 1) and
 * appends the pieces to out: tokens with their id, the text between with -1.
 * `first`: s starts the input. */
int tok_added_split(const tok_added *a, int normalized, const char *s, size_t len, int first, tok_pieces *out);
/* The added token with this id, or NULL. */
const tok_added_token *tok_added_find(const tok_added *a, int32_t id);
void tok_added_clear(tok_added *a);
#endif
