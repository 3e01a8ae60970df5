#include "tokenizer/normalizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/component.h"
#include "core/json.h"
#include "tokenizer/utf8.h"

static int load_replace(tok_normalizer *n, const cJSON *j, const char *what, tpi_error *err)
{
    const char *content = NULL;
    int rc = tpi_json_get_string(j, "content", &content, 1, what, err);
    if (rc)
        return rc;
    rc = tok_load_pattern(&n->re, cJSON_GetObjectItemCaseSensitive(j, "pattern"), what, err);
    if (rc)
        return rc;
    n->text = strdup(content);
    n->text_len = strlen(content);
    return n->text ? 0 : tpi_err(err, TPI_ENOMEM, "%s: out of memory", what);
}

int tok_normalizer_load(tok_normalizer *n, const cJSON *j, const char *what, tpi_error *err)
{
    static const tok_type_name names[] = {
        {"Sequence", NORM_SEQUENCE}, {"Prepend", NORM_PREPEND},     {"Replace", NORM_REPLACE},
        {"NFC", NORM_NFC},           {"NFD", NORM_NFD},             {"NFKC", NORM_NFKC},
        {"NFKD", NORM_NFKD},         {"Lowercase", NORM_LOWERCASE}, {"Strip", NORM_STRIP},
        {"StripAccents", NORM_STRIP_ACCENTS},
    };
    memset(n, 0, sizeof *n);
    int type, rc = tok_component_type(j, "normalizer", names, sizeof names / sizeof names[0], what, &type, err);
    if (rc)
        return rc;
    n->type = (enum tok_norm_type)type;
    switch (n->type) {
    case NORM_SEQUENCE: {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list))
            return tpi_err(err, TPI_EFORMAT, "%s: Sequence needs an array \"normalizers\"", what);
        size_t cnt = (size_t)cJSON_GetArraySize(list);
        n->seq = calloc(cnt ? cnt : 1, sizeof *n->seq);
        if (!n->seq)
            return tpi_err(err, TPI_ENOMEM, "%s: out of memory", what);
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", what, n->n_seq);
            rc = tok_normalizer_load(&n->seq[n->n_seq], it, sub, err);
            n->n_seq++;
            if (rc)
                return rc;
        }
        return 0;
    }
    case NORM_PREPEND: {
        const char *p = NULL;
        rc = tpi_json_get_string(j, "prepend", &p, 1, what, err);
        if (rc)
            return rc;
        n->text = strdup(p);
        n->text_len = strlen(p);
        return n->text ? 0 : tpi_err(err, TPI_ENOMEM, "%s: out of memory", what);
    }
    case NORM_REPLACE: return load_replace(n, j, what, err);
    case NORM_STRIP:
        n->left = n->right = 1;
        rc = tpi_json_get_bool(j, "strip_left", &n->left, 0, what, err);
        if (rc < 0)
            return rc;
        rc = tpi_json_get_bool(j, "strip_right", &n->right, 0, what, err);
        return rc < 0 ? rc : 0;
    default: return 0;
    }
}

void tok_normalizer_clear(tok_normalizer *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_seq; i++)
        tok_normalizer_clear(&n->seq[i]);
    free(n->seq);
    free(n->text);
    pcre2_code_free(n->re);
    memset(n, 0, sizeof *n);
}

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "normalizer: out of memory");
}

/* utf8proc_map takes the length, so embedded NULs survive. */
static int unicode_form(utf8proc_option_t opts, const char *s, size_t len, tok_buf *out, tpi_error *err)
{
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      opts | UTF8PROC_STABLE);
    if (n < 0)
        return tpi_err(err, TPI_EINVAL, "normalizer: utf8proc: %s", utf8proc_errmsg(n));
    int rc = tok_buf_add(out, dst, (size_t)n) ? oom(err) : 0;
    free(dst);
    return rc;
}

/* Code point by code point rewrite: lowercase (utf8proc's simple mapping) or
 * dropping combining marks (Mn), as tokenizers' StripAccents does. */
static int per_char(enum tok_norm_type type, const char *s, size_t len, tok_buf *out, tpi_error *err)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = tok_utf8_next(s + i, len - i, &cp);
        if (!k) /* unreachable on repaired input */
            k = 1, cp = 0xFFFD;
        char enc[4];
        if (type == NORM_LOWERCASE)
            cp = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
        else if (utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_MN) {
            i += k;
            continue;
        }
        if (tok_buf_add(out, enc, tok_utf8_put(cp, enc)))
            return oom(err);
        i += k;
    }
    return 0;
}

static int strip(const tok_normalizer *n, const char *s, size_t len, tok_buf *out, tpi_error *err)
{
    size_t a = 0, b = len;
    while (n->left && a < b) {
        uint32_t cp;
        size_t k = tok_utf8_next(s + a, b - a, &cp);
        if (!k || !tok_is_space(cp))
            break;
        a += k;
    }
    while (n->right && b > a) {
        size_t st = b - 1;
        while (st > a && ((uint8_t)s[st] & 0xC0) == 0x80)
            st--;
        uint32_t cp;
        size_t k = tok_utf8_next(s + st, b - st, &cp);
        if (!k || !tok_is_space(cp))
            break;
        b = st;
    }
    return tok_buf_add(out, s + a, b - a) ? oom(err) : 0;
}

static int replace(const tok_normalizer *n, const char *s, size_t len, tok_buf *out, tpi_error *err)
{
    tok_match *m = NULL;
    size_t nm = 0, cap = 0, at = 0;
    int rc = tok_regex_find_all(n->re, s, len, &m, &nm, &cap, err);
    for (size_t i = 0; !rc && i < nm; i++) {
        if (tok_buf_add(out, s + at, m[i].start - at) || tok_buf_add(out, n->text, n->text_len))
            rc = oom(err);
        at = m[i].end;
    }
    if (!rc && tok_buf_add(out, s + at, len - at))
        rc = oom(err);
    free(m);
    return rc;
}

int tok_normalize(const tok_normalizer *n, const char *s, size_t len, tok_buf *out, tpi_error *err)
{
    out->len = 0;
    if (tok_buf_reserve(out, len))
        return oom(err);
    out->p[0] = 0;
    switch (n->type) {
    case NORM_SEQUENCE: {
        tok_buf a = {0};
        int rc = tok_buf_add(out, s, len) ? oom(err) : 0;
        for (size_t i = 0; !rc && i < n->n_seq; i++) {
            rc = tok_normalize(&n->seq[i], out->p, out->len, &a, err);
            tok_buf t = *out;
            *out = a;
            a = t;
        }
        tok_buf_free(&a);
        return rc;
    }
    case NORM_PREPEND:
        /* tokenizers: an empty string stays empty. */
        if (len && tok_buf_add(out, n->text, n->text_len))
            return oom(err);
        return tok_buf_add(out, s, len) ? oom(err) : 0;
    case NORM_REPLACE: return replace(n, s, len, out, err);
    case NORM_NFC: return unicode_form(UTF8PROC_COMPOSE, s, len, out, err);
    case NORM_NFD: return unicode_form(UTF8PROC_DECOMPOSE, s, len, out, err);
    case NORM_NFKC: return unicode_form(UTF8PROC_COMPOSE | UTF8PROC_COMPAT, s, len, out, err);
    case NORM_NFKD: return unicode_form(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, s, len, out, err);
    case NORM_LOWERCASE:
    case NORM_STRIP_ACCENTS: return per_char(n->type, s, len, out, err);
    case NORM_STRIP: return strip(n, s, len, out, err);
    }
    return 0;
}
