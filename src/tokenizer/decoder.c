/* tokenizer.json's "decoder" components (decoder.h), loaded and applied to
 * a list of token strings; detokenize.c runs them on the ids' strings. */
#include "tokenizer/decoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/component.h"
#include "core/json.h"
#include "tokenizer/utf8.h"

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "decoder: out of memory");
}

/* A one-character string field into d->text/d->cp. */
static int load_char(tok_decoder *d, const cJSON *j, const char *key, const char *def, const char *what,
                     tpi_error *err)
{
    const char *s = def;
    int rc = tpi_json_get_string(j, key, &s, def == NULL, what, err);
    if (rc < 0)
        return rc;
    size_t n = tok_utf8_next(s, strlen(s), &d->cp);
    if (!n || s[n])
        return tpi_err(err, TPI_EFORMAT, "%s: \"%s\" must be one character, found \"%s\"", what, key, s);
    if (!(d->text = strdup(s)))
        return oom(err);
    d->text_len = n;
    return 0;
}

int tok_decoder_load(tok_decoder *d, const cJSON *j, const char *what, tpi_error *err)
{
    static const tok_type_name names[] = {
        {"Sequence", DEC_SEQUENCE}, {"ByteLevel", DEC_BYTELEVEL}, {"Metaspace", DEC_METASPACE},
        {"ByteFallback", DEC_BYTEFALLBACK}, {"Fuse", DEC_FUSE}, {"Strip", DEC_STRIP},
        {"Replace", DEC_REPLACE},
    };
    memset(d, 0, sizeof *d);
    int type, rc = tok_component_type(j, "decoder", names, sizeof names / sizeof names[0], what, &type, err);
    if (rc)
        return rc;
    d->type = (enum tok_dec_type)type;
    switch (d->type) {
    case DEC_SEQUENCE: {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(list))
            return tpi_err(err, TPI_EFORMAT, "%s: Sequence needs an array \"decoders\"", what);
        size_t cnt = (size_t)cJSON_GetArraySize(list);
        if (!(d->seq = calloc(cnt ? cnt : 1, sizeof *d->seq)))
            return oom(err);
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", what, d->n_seq);
            rc = tok_decoder_load(&d->seq[d->n_seq], it, sub, err);
            d->n_seq++;
            if (rc)
                return rc;
        }
        return 0;
    }
    case DEC_METASPACE: {
        if ((rc = load_char(d, j, "replacement", "\xE2\x96\x81", what, err)))
            return rc;
        int add_prefix = 1;
        if ((rc = tpi_json_get_bool(j, "add_prefix_space", &add_prefix, 0, what, err)) < 0)
            return rc;
        d->prepend = add_prefix;
        const char *scheme = NULL;
        if ((rc = tpi_json_get_string(j, "prepend_scheme", &scheme, 0, what, err)) < 0)
            return rc;
        if (scheme)
            d->prepend = strcmp(scheme, "never") != 0;
        return 0;
    }
    case DEC_STRIP:
        if ((rc = load_char(d, j, "content", NULL, what, err)) ||
            (rc = tpi_json_get_int(j, "start", &d->start, 1, what, err)) ||
            (rc = tpi_json_get_int(j, "stop", &d->stop, 1, what, err)))
            return rc;
        if (d->start < 0 || d->stop < 0)
            return tpi_err(err, TPI_EFORMAT, "%s: Strip start/stop must be >= 0", what);
        return 0;
    case DEC_REPLACE: {
        const char *content = NULL;
        if ((rc = tpi_json_get_string(j, "content", &content, 1, what, err)))
            return rc;
        if (!(d->text = strdup(content)))
            return oom(err);
        d->text_len = strlen(content);
        return tok_load_pattern(&d->re, cJSON_GetObjectItemCaseSensitive(j, "pattern"), what, err);
    }
    default: return 0;
    }
}

void tok_decoder_clear(tok_decoder *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_seq; i++)
        tok_decoder_clear(&d->seq[i]);
    free(d->seq);
    free(d->text);
    pcre2_code_free(d->re);
    memset(d, 0, sizeof *d);
}

/* Bytes -> text as Rust's String::from_utf8_lossy. */
static int add_lossy(tok_buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t k = tok_utf8_next(s + i, len - i, NULL);
        if (k) {
            if (tok_buf_add(b, s + i, k))
                return -1;
            i += k;
        } else {
            if (tok_buf_add(b, "\xEF\xBF\xBD", 3))
                return -1;
            i += tok_utf8_bad_len(s + i, len - i);
        }
    }
    return 0;
}

static int bytelevel(const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    tok_buf raw = {0}, text = {0};
    int rc = 0;
    for (size_t i = 0; !rc && i < in->n; i++) {
        const char *t = tok_piece_text(in, i);
        size_t len = in->v[i].len, mark = raw.len;
        for (size_t k = 0; k < len && !rc;) {
            uint32_t cp;
            size_t n = tok_utf8_next(t + k, len - k, &cp);
            int b = n ? tok_bytelevel_byte(cp) : -1;
            if (b < 0) {
                /* Not all byte characters: the token's own bytes. */
                raw.len = mark;
                rc = tok_buf_add(&raw, t, len);
                break;
            }
            char c = (char)b;
            rc = tok_buf_add(&raw, &c, 1);
            k += n;
        }
    }
    if (!rc)
        rc = add_lossy(&text, raw.p ? raw.p : "", raw.len);
    if (!rc)
        rc = tok_pieces_add(out, text.p ? text.p : "", text.len, -1, 0);
    tok_buf_free(&raw);
    tok_buf_free(&text);
    return rc ? oom(err) : 0;
}

static int metaspace(const tok_decoder *d, const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *t = tok_piece_text(in, i);
        size_t len = in->v[i].len, off = out->text.len;
        for (size_t k = 0; k < len;) {
            uint32_t cp = 0;
            size_t n = tok_utf8_next(t + k, len - k, &cp);
            if (!n)
                n = 1;
            int rc = 0;
            if (cp != d->cp)
                rc = tok_buf_add(&out->text, t + k, n);
            else if (!(i == 0 && d->prepend))
                rc = tok_buf_add(&out->text, " ", 1);
            if (rc)
                return oom(err);
            k += n;
        }
        if (tok_pieces_span(out, off, out->text.len - off, -1, 0))
            return oom(err);
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Pending byte tokens become their text when they form valid UTF-8, else one
 * U+FFFD per byte (tokenizers' ByteFallback). */
static int flush_bytes(tok_buf *bytes, tok_pieces *out)
{
    if (!bytes->len)
        return 0;
    int rc = 0;
    if (tok_utf8_valid(bytes->p, bytes->len))
        rc = tok_pieces_add(out, bytes->p, bytes->len, -1, 0);
    else
        for (size_t i = 0; !rc && i < bytes->len; i++)
            rc = tok_pieces_add(out, "\xEF\xBF\xBD", 3, -1, 0);
    bytes->len = 0;
    return rc;
}

static int bytefallback(const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    tok_buf bytes = {0};
    int rc = 0;
    for (size_t i = 0; !rc && i < in->n; i++) {
        const char *t = tok_piece_text(in, i);
        int hi, lo;
        if (in->v[i].len == 6 && !memcmp(t, "<0x", 3) && t[5] == '>' && (hi = hexval(t[3])) >= 0 &&
            (lo = hexval(t[4])) >= 0) {
            char b = (char)(hi << 4 | lo);
            rc = tok_buf_add(&bytes, &b, 1);
            continue;
        }
        rc = flush_bytes(&bytes, out);
        if (!rc)
            rc = tok_pieces_add(out, t, in->v[i].len, -1, 0);
    }
    if (!rc)
        rc = flush_bytes(&bytes, out);
    tok_buf_free(&bytes);
    return rc ? oom(err) : 0;
}

static int strip(const tok_decoder *d, const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *t = tok_piece_text(in, i);
        size_t len = in->v[i].len, a = 0, b = len;
        uint32_t cp;
        for (int64_t k = 0; k < d->start && a < len; k++) {
            size_t n = tok_utf8_next(t + a, len - a, &cp);
            if (!n || cp != d->cp)
                break;
            a += n;
        }
        for (int64_t k = 0; k < d->stop && b > a; k++) {
            size_t st = b - 1;
            while (st > a && ((uint8_t)t[st] & 0xC0) == 0x80)
                st--;
            if (!tok_utf8_next(t + st, b - st, &cp) || cp != d->cp)
                break;
            b = st;
        }
        if (tok_pieces_add(out, t + a, b - a, -1, 0))
            return oom(err);
    }
    return 0;
}

static int replace(const tok_decoder *d, const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    tok_match *m = NULL;
    size_t nm = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < in->n; i++) {
        const char *t = tok_piece_text(in, i);
        size_t len = in->v[i].len, at = 0, off = out->text.len;
        if ((rc = tok_regex_find_all(d->re, t, len, &m, &nm, &cap, err)))
            break;
        for (size_t k = 0; !rc && k < nm; k++) {
            rc = tok_buf_add(&out->text, t + at, m[k].start - at) || tok_buf_add(&out->text, d->text, d->text_len)
                     ? oom(err) : 0;
            at = m[k].end;
        }
        if (!rc && (tok_buf_add(&out->text, t + at, len - at) ||
                    tok_pieces_span(out, off, out->text.len - off, -1, 0)))
            rc = oom(err);
    }
    free(m);
    return rc;
}

int tok_decode_chain(const tok_decoder *d, const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    tok_pieces_reset(out);
    switch (d->type) {
    case DEC_SEQUENCE: {
        tok_pieces a = {0}, b = {0};
        const tok_pieces *cur = in;
        int rc = 0;
        for (size_t i = 0; !rc && i < d->n_seq; i++) {
            tok_pieces *dst = i + 1 == d->n_seq ? out : (cur == &a ? &b : &a);
            rc = tok_decode_chain(&d->seq[i], cur, dst, err);
            cur = dst;
        }
        for (size_t i = 0; !rc && d->n_seq == 0 && i < in->n; i++)
            rc = tok_pieces_add(out, tok_piece_text(in, i), in->v[i].len, -1, 0) ? oom(err) : 0;
        tok_pieces_free(&a);
        tok_pieces_free(&b);
        return rc;
    }
    case DEC_BYTELEVEL: return bytelevel(in, out, err);
    case DEC_METASPACE: return metaspace(d, in, out, err);
    case DEC_BYTEFALLBACK: return bytefallback(in, out, err);
    case DEC_FUSE: {
        size_t off = out->text.len;
        for (size_t i = 0; i < in->n; i++)
            if (tok_buf_add(&out->text, tok_piece_text(in, i), in->v[i].len))
                return oom(err);
        return tok_pieces_span(out, off, out->text.len - off, -1, 0) ? oom(err) : 0;
    }
    case DEC_STRIP: return strip(d, in, out, err);
    case DEC_REPLACE: return replace(d, in, out, err);
    }
    return 0;
}
