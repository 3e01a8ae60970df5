#ifndef TPI_TOKENIZER_NORMALIZER_H
#define TPI_TOKENIZER_NORMALIZER_H
/* tokenizer.json "normalizer": Sequence, Prepend, Replace, NFC, NFD, NFKC,
 * NFKD, Lowercase, Strip, StripAccents. */
#include <cjson/cJSON.h>

#include "tokenizer/pieces.h"
#include "tokenizer/regex.h"
#include "tpinfer.h"

enum tok_norm_type {
    NORM_SEQUENCE, NORM_PREPEND, NORM_REPLACE, NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD,
    NORM_LOWERCASE, NORM_STRIP, NORM_STRIP_ACCENTS,
};

typedef struct tok_normalizer {
    enum tok_norm_type type;
    char *text;           /* Prepend: the prefix; Replace: the content */
    size_t text_len;
    pcre2_code *re;       /* Replace: the pattern */
    int left, right;      /* Strip */
    struct tok_normalizer *seq;
    size_t n_seq;
} tok_normalizer;

/* Builds n from the JSON object j; `what` names it in messages. */
int tok_normalizer_load(tok_normalizer *n, const cJSON *j, const char *what, tpi_error *err);
/* Writes the normalized form of s into out (replacing its content). */
int tok_normalize(const tok_normalizer *n, const char *s, size_t len, tok_buf *out, tpi_error *err);
/* Frees what n holds (not n itself). */
void tok_normalizer_clear(tok_normalizer *n);
#endif
