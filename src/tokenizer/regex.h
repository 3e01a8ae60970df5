#ifndef TPI_TOKENIZER_REGEX_H
#define TPI_TOKENIZER_REGEX_H
/* PCRE2 (UTF, Unicode properties, JIT) for the patterns of tokenizer.json:
 * Split/Replace patterns and ByteLevel's GPT-2 pattern. Subjects are always
 * valid UTF-8 here (input is repaired first), so matching skips the check. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "tpinfer.h"

typedef struct tok_match {
    size_t start, end;
} tok_match;

/* Compiles `pattern` (a literal string when `literal`); `what` names the field
 * for the error message. */
int tok_regex_compile(pcre2_code **out, const char *pattern, size_t len, int literal, const char *what,
                      tpi_error *err);
/* A tokenizer.json pattern object: {"String": literal} or {"Regex": pattern}. */
int tok_load_pattern(pcre2_code **out, const cJSON *pattern, const char *what, tpi_error *err);
/* All non-overlapping matches of re in s, left to right, into *v (grown with
 * realloc, *cap its capacity); *n the count. An empty match advances one
 * character. */
int tok_regex_find_all(const pcre2_code *re, const char *s, size_t len, tok_match **v, size_t *n,
                       size_t *cap, tpi_error *err);
#endif
