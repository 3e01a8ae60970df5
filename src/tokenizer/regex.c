#include "tokenizer/regex.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/utf8.h"

int tok_regex_compile(pcre2_code **out, const char *pattern, size_t len, int literal, const char *what,
                      tpi_error *err)
{
    int code;
    PCRE2_SIZE at;
    /* PCRE2_LITERAL refuses PCRE2_UCP (which only matters to classes). */
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return tpi_err(err, TPI_EFORMAT, "%s: pattern \"%.*s\" does not compile: %s (at offset %zu)",
                       what, (int)(len > 200 ? 200 : len), pattern, (const char *)msg, (size_t)at);
    }
    /* JIT is an optimisation: a platform without it still matches. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return 0;
}

int tok_regex_find_all(const pcre2_code *re, const char *s, size_t len, tok_match **v, size_t *n,
                       size_t *cap, tpi_error *err)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return tpi_err(err, TPI_ENOMEM, "regex match: out of memory");
    size_t pos = 0;
    int rc = 0;
    *n = 0;
    while (pos <= len) {
        int m = pcre2_match(re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_JIT_STACKLIMIT)
            /* The interpreter keeps its backtracking state on the heap. */
            m = pcre2_match(re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = tpi_err(err, TPI_ELIMIT, "regex match failed at byte %zu: %s", pos, (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            tok_match *w = realloc(*v, c * sizeof *w);
            if (!w) {
                rc = tpi_err(err, TPI_ENOMEM, "regex match: out of memory");
                break;
            }
            *v = w;
            *cap = c;
        }
        (*v)[(*n)++] = (tok_match){a, b};
        if (b > a)
            pos = b;
        else if (b < len) {
            size_t step = tok_utf8_next(s + b, len - b, NULL);
            pos = b + (step ? step : 1);
        } else
            break;
    }
    pcre2_match_data_free(md);
    return rc;
}

int tok_load_pattern(pcre2_code **out, const cJSON *pattern, const char *what, tpi_error *err)
{
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
    if (cJSON_IsString(str))
        return tok_regex_compile(out, str->valuestring, strlen(str->valuestring), 1, what, err);
    if (cJSON_IsString(re))
        return tok_regex_compile(out, re->valuestring, strlen(re->valuestring), 0, what, err);
    return tpi_err(err, TPI_EFORMAT, "%s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", what);
}
