#ifndef TPI_TOKENIZER_PRETOKENIZER_H
#define TPI_TOKENIZER_PRETOKENIZER_H
/* tokenizer.json "pre_tokenizer": Sequence, ByteLevel, Split, Metaspace,
 * Digits, Whitespace, WhitespaceSplit, Punctuation. Each cuts pieces into
 * smaller pieces (and ByteLevel/Metaspace rewrite their characters). */
#include <cjson/cJSON.h>

#include "tokenizer/pieces.h"
#include "tokenizer/regex.h"
#include "tpinfer.h"

enum tok_pre_type {
    PRE_SEQUENCE, PRE_BYTELEVEL, PRE_SPLIT, PRE_METASPACE, PRE_DIGITS, PRE_WHITESPACE,
    PRE_WHITESPACE_SPLIT, PRE_PUNCTUATION,
};

/* tokenizers' SplitDelimiterBehavior. */
enum tok_split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

enum tok_prepend { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS };

typedef struct tok_pretok {
    enum tok_pre_type type;
    pcre2_code *re;              /* Split pattern; ByteLevel's GPT-2 pattern */
    enum tok_split_behavior behavior;
    int invert;
    int add_prefix_space, use_regex;      /* ByteLevel */
    char replacement[5];                  /* Metaspace, UTF-8 */
    size_t replacement_len;
    enum tok_prepend prepend;
    int split;
    int individual_digits;
    struct tok_pretok *seq;
    size_t n_seq;
} tok_pretok;

int tok_pretok_load(tok_pretok *p, const cJSON *j, const char *what, tpi_error *err);
/* Pre-tokenizes every piece of `in` without an id into `out` (reset first);
 * pieces with an id pass through unchanged. */
int tok_pretokenize(const tok_pretok *p, const tok_pieces *in, tok_pieces *out, tpi_error *err);
void tok_pretok_clear(tok_pretok *p);

/* The GPT-2 pattern ByteLevel uses when use_regex is true (tokenizers'
 * byte_level.rs). */
extern const char tok_gpt2_pattern[];
#endif
