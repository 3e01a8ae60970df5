#include "tokenizer/pretokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/component.h"
#include "core/json.h"
#include "tokenizer/utf8.h"

const char tok_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int oom(tpi_error *err)
{
    return tpi_err(err, TPI_ENOMEM, "pre-tokenizer: out of memory");
}

static int get_flag(const cJSON *j, const char *key, int *out, int def, const char *what, tpi_error *err)
{
    *out = def;
    int rc = tpi_json_get_bool(j, key, out, 0, what, err);
    return rc < 0 ? rc : 0;
}

static int load_behavior(tok_pretok *p, const cJSON *j, const char *what, tpi_error *err)
{
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    const char *b = NULL;
    int rc = tpi_json_get_string(j, "behavior", &b, 1, what, err);
    if (rc)
        return rc;
    for (int k = 0; k < 5; k++)
        if (!strcmp(b, names[k])) {
            p->behavior = (enum tok_split_behavior)k;
            return 0;
        }
    return tpi_err(err, TPI_EUNSUPPORTED,
                   "%s: unknown split behavior \"%s\" (expected Removed, Isolated, MergedWithPrevious, "
                   "MergedWithNext or Contiguous)", what, b);
}

static int load_metaspace(tok_pretok *p, const cJSON *j, const char *what, tpi_error *err)
{
    const char *rep = "\xE2\x96\x81"; /* U+2581 */
    int rc = tpi_json_get_string(j, "replacement", &rep, 0, what, err);
    if (rc < 0)
        return rc;
    uint32_t cp;
    size_t n = tok_utf8_next(rep, strlen(rep), &cp);
    if (!n || rep[n])
        return tpi_err(err, TPI_EFORMAT, "%s: Metaspace \"replacement\" must be one character, found \"%s\"",
                       what, rep);
    memcpy(p->replacement, rep, n);
    p->replacement_len = n;
    /* Older files only have add_prefix_space; newer ones prepend_scheme. */
    int add_prefix = 1;
    if ((rc = get_flag(j, "add_prefix_space", &add_prefix, 1, what, err)))
        return rc;
    p->prepend = add_prefix ? PREPEND_ALWAYS : PREPEND_NEVER;
    const char *scheme = NULL;
    rc = tpi_json_get_string(j, "prepend_scheme", &scheme, 0, what, err);
    if (rc < 0)
        return rc;
    if (scheme) {
        if (!strcmp(scheme, "always"))
            p->prepend = PREPEND_ALWAYS;
        else if (!strcmp(scheme, "first"))
            p->prepend = PREPEND_FIRST;
        else if (!strcmp(scheme, "never"))
            p->prepend = PREPEND_NEVER;
        else
            return tpi_err(err, TPI_EUNSUPPORTED,
                           "%s: unknown Metaspace prepend_scheme \"%s\" (expected always, first or never)",
                           what, scheme);
    }
    return get_flag(j, "split", &p->split, 1, what, err);
}

int tok_pretok_load(tok_pretok *p, const cJSON *j, const char *what, tpi_error *err)
{
    static const tok_type_name names[] = {
        {"Sequence", PRE_SEQUENCE},     {"ByteLevel", PRE_BYTELEVEL},
        {"Split", PRE_SPLIT},           {"Metaspace", PRE_METASPACE},
        {"Digits", PRE_DIGITS},         {"Whitespace", PRE_WHITESPACE},
        {"WhitespaceSplit", PRE_WHITESPACE_SPLIT}, {"Punctuation", PRE_PUNCTUATION},
    };
    memset(p, 0, sizeof *p);
    int type, rc = tok_component_type(j, "pre-tokenizer", names, sizeof names / sizeof names[0], what, &type, err);
    if (rc)
        return rc;
    p->type = (enum tok_pre_type)type;
    switch (p->type) {
    case PRE_SEQUENCE: {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(list))
            return tpi_err(err, TPI_EFORMAT, "%s: Sequence needs an array \"pretokenizers\"", what);
        size_t cnt = (size_t)cJSON_GetArraySize(list);
        if (!(p->seq = calloc(cnt ? cnt : 1, sizeof *p->seq)))
            return oom(err);
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", what, p->n_seq);
            rc = tok_pretok_load(&p->seq[p->n_seq], it, sub, err);
            p->n_seq++;
            if (rc)
                return rc;
        }
        return 0;
    }
    case PRE_BYTELEVEL:
        if ((rc = get_flag(j, "add_prefix_space", &p->add_prefix_space, 1, what, err)) ||
            (rc = get_flag(j, "use_regex", &p->use_regex, 1, what, err)))
            return rc;
        return p->use_regex ? tok_regex_compile(&p->re, tok_gpt2_pattern, strlen(tok_gpt2_pattern), 0,
                                                what, err)
                            : 0;
    case PRE_SPLIT:
        if ((rc = load_behavior(p, j, what, err)) || (rc = get_flag(j, "invert", &p->invert, 0, what, err)))
            return rc;
        return tok_load_pattern(&p->re, cJSON_GetObjectItemCaseSensitive(j, "pattern"), what, err);
    case PRE_METASPACE: return load_metaspace(p, j, what, err);
    case PRE_DIGITS:
        return get_flag(j, "individual_digits", &p->individual_digits, 0, what, err);
    case PRE_WHITESPACE: {
        static const char ws[] = "\\w+|[^\\w\\s]+";
        p->invert = 1;
        p->behavior = SPLIT_REMOVED;
        return tok_regex_compile(&p->re, ws, strlen(ws), 0, what, err);
    }
    case PRE_WHITESPACE_SPLIT: p->behavior = SPLIT_REMOVED; return 0;
    case PRE_PUNCTUATION: {
        p->behavior = SPLIT_ISOLATED;
        if (cJSON_GetObjectItemCaseSensitive(j, "behavior"))
            return load_behavior(p, j, what, err);
        return 0;
    }
    }
    return 0;
}

void tok_pretok_clear(tok_pretok *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_seq; i++)
        tok_pretok_clear(&p->seq[i]);
    free(p->seq);
    pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

/* ---- splitting (tokenizers' NormalizedString::split) -------------------- */

typedef struct event {
    size_t start, end;
    int is_match;
} event;

typedef struct scratch {
    tok_match *m;
    size_t n_m, cap_m;
    event *ev;
    size_t n_ev, cap_ev;
} scratch;

static int push_event(scratch *s, size_t a, size_t b, int is_match)
{
    if (s->n_ev == s->cap_ev) {
        size_t cap = s->cap_ev ? s->cap_ev * 2 : 64;
        event *v = realloc(s->ev, cap * sizeof *v);
        if (!v)
            return -1;
        s->ev = v;
        s->cap_ev = cap;
    }
    s->ev[s->n_ev++] = (event){a, b, is_match};
    return 0;
}

/* Matches -> a cover of [0, len) by match and gap events (Pattern::find_matches). */
static int matches_to_events(scratch *s, size_t len, int invert)
{
    s->n_ev = 0;
    size_t prev = 0;
    for (size_t i = 0; i < s->n_m; i++) {
        if (prev != s->m[i].start && push_event(s, prev, s->m[i].start, invert))
            return -1;
        if (push_event(s, s->m[i].start, s->m[i].end, !invert))
            return -1;
        prev = s->m[i].end;
    }
    if (prev != len && push_event(s, prev, len, invert))
        return -1;
    return 0;
}

/* Applies `behavior` to the events of piece (text, len) and appends the
 * resulting non-empty sub-pieces to out. */
static int emit_split(scratch *s, enum tok_split_behavior behavior, const char *text, int first, tok_pieces *out)
{
    event *ev = s->ev;
    size_t n = 0;
    int prev_match = 0;
    switch (behavior) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < s->n_ev; i++)
            ev[i].is_match = 0;
        n = s->n_ev;
        break;
    case SPLIT_REMOVED: n = s->n_ev; break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < s->n_ev; i++) {
            int m = ev[i].is_match;
            if (n && m == prev_match)
                ev[n - 1].end = ev[i].end;
            else
                ev[n++] = (event){ev[i].start, ev[i].end, 0};
            prev_match = m;
        }
        break;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < s->n_ev; i++) {
            int m = ev[i].is_match;
            if (n && m && !prev_match)
                ev[n - 1].end = ev[i].end;
            else
                ev[n++] = (event){ev[i].start, ev[i].end, 0};
            prev_match = m;
        }
        break;
    case SPLIT_MERGED_NEXT: {
        /* Walk right to left, then the kept events are ev[k..] in order. */
        size_t k = s->n_ev;
        for (size_t i = s->n_ev; i-- > 0;) {
            int m = ev[i].is_match;
            if (k < s->n_ev && m && !prev_match)
                ev[k].start = ev[i].start;
            else
                ev[--k] = (event){ev[i].start, ev[i].end, 0};
            prev_match = m;
        }
        for (size_t i = k; i < s->n_ev; i++)
            if (ev[i].end > ev[i].start &&
                tok_pieces_add(out, text + ev[i].start, ev[i].end - ev[i].start, -1,
                               first && ev[i].start == 0))
                return -1;
        return 0;
    }
    }
    for (size_t i = 0; i < n; i++)
        if (!ev[i].is_match && ev[i].end > ev[i].start &&
            tok_pieces_add(out, text + ev[i].start, ev[i].end - ev[i].start, -1, first && ev[i].start == 0))
            return -1;
    return 0;
}

enum char_class { CC_REPLACEMENT, CC_NUMERIC, CC_SPACE, CC_PUNCT };

static int char_is(enum char_class cc, uint32_t cp, const tok_pretok *p)
{
    switch (cc) {
    case CC_REPLACEMENT: {
        uint32_t r;
        tok_utf8_next(p->replacement, p->replacement_len, &r);
        return cp == r;
    }
    case CC_NUMERIC: {
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
    }
    case CC_SPACE: return tok_is_space(cp);
    case CC_PUNCT: {
        if (cp < 0x80)
            return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
                   (cp >= 0x7B && cp <= 0x7E);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
    }
    }
    return 0;
}

/* Each character of the class is its own match (tokenizers' `impl Pattern
 * for Fn(char) -> bool`). */
static int char_matches(scratch *s, const tok_pretok *p, enum char_class cc, const char *text, size_t len)
{
    s->n_m = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0xFFFD;
        size_t k = tok_utf8_next(text + i, len - i, &cp);
        if (!k)
            k = 1;
        if (char_is(cc, cp, p)) {
            if (s->n_m == s->cap_m) {
                size_t cap = s->cap_m ? s->cap_m * 2 : 64;
                tok_match *v = realloc(s->m, cap * sizeof *v);
                if (!v)
                    return -1;
                s->m = v;
                s->cap_m = cap;
            }
            s->m[s->n_m++] = (tok_match){i, i + k};
        }
        i += k;
    }
    return 0;
}

static int split_piece(scratch *s, const tok_pretok *p, const char *text, size_t len, int first,
                       tok_pieces *out, tpi_error *err)
{
    enum tok_split_behavior behavior = p->behavior;
    int invert = p->invert;
    int rc = 0;
    switch (p->type) {
    case PRE_SPLIT:
    case PRE_WHITESPACE: rc = tok_regex_find_all(p->re, text, len, &s->m, &s->n_m, &s->cap_m, err); break;
    case PRE_BYTELEVEL:
        behavior = SPLIT_ISOLATED, invert = 0;
        rc = tok_regex_find_all(p->re, text, len, &s->m, &s->n_m, &s->cap_m, err);
        break;
    case PRE_METASPACE:
        behavior = SPLIT_MERGED_NEXT, invert = 0;
        rc = char_matches(s, p, CC_REPLACEMENT, text, len) ? oom(err) : 0;
        break;
    case PRE_DIGITS:
        behavior = p->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, invert = 0;
        rc = char_matches(s, p, CC_NUMERIC, text, len) ? oom(err) : 0;
        break;
    case PRE_WHITESPACE_SPLIT: rc = char_matches(s, p, CC_SPACE, text, len) ? oom(err) : 0; break;
    case PRE_PUNCTUATION: rc = char_matches(s, p, CC_PUNCT, text, len) ? oom(err) : 0; break;
    case PRE_SEQUENCE: break;
    }
    if (rc)
        return rc;
    if (matches_to_events(s, len, invert) || emit_split(s, behavior, text, first, out))
        return oom(err);
    return 0;
}

/* ByteLevel: every byte becomes its printable stand-in. */
static int bytes_to_chars(const tok_pieces *in, size_t from, tok_pieces *out, tpi_error *err)
{
    /* Rewrites in place into out; in's pieces from `from` on are byte strings. */
    for (size_t i = from; i < in->n; i++) {
        const uint8_t *t = (const uint8_t *)tok_piece_text(in, i);
        size_t off = out->text.len;
        if (tok_buf_reserve(&out->text, in->v[i].len * 2))
            return oom(err);
        for (size_t k = 0; k < in->v[i].len; k++)
            out->text.len += tok_bytelevel_char(t[k], out->text.p + out->text.len);
        out->text.p[out->text.len] = 0;
        if (tok_pieces_span(out, off, out->text.len - off, -1, in->v[i].first))
            return oom(err);
    }
    return 0;
}

/* One piece through a non-Sequence pre-tokenizer, appended to out. */
static int pretok_one(const tok_pretok *p, scratch *s, const char *text, size_t len, int first, tok_pieces *out,
                      tok_pieces *tmp, tpi_error *err)
{
    switch (p->type) {
    case PRE_BYTELEVEL: {
        tok_pieces_reset(tmp);
        int rc = 0;
        /* tokenizers prepends to every piece that does not start with a space. */
        if (p->add_prefix_space && (len == 0 || text[0] != ' ')) {
            tok_buf b = {0};
            if (tok_buf_add(&b, " ", 1) || tok_buf_add(&b, text, len)) {
                tok_buf_free(&b);
                return oom(err);
            }
            rc = p->use_regex ? split_piece(s, p, b.p, b.len, first, tmp, err)
                              : (tok_pieces_add(tmp, b.p, b.len, -1, first) ? oom(err) : 0);
            tok_buf_free(&b);
        } else
            rc = p->use_regex ? split_piece(s, p, text, len, first, tmp, err)
                              : (tok_pieces_add(tmp, text, len, -1, first) ? oom(err) : 0);
        return rc ? rc : bytes_to_chars(tmp, 0, out, err);
    }
    case PRE_METASPACE: {
        tok_buf b = {0};
        uint32_t first_cp = 0;
        int rc = 0;
        if (len)
            tok_utf8_next(text, len, &first_cp);
        uint32_t rep;
        tok_utf8_next(p->replacement, p->replacement_len, &rep);
        int prepend = p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && first);
        /* Replacement happens first, so a leading space counts as the replacement. */
        if (prepend && !(len && (first_cp == rep || text[0] == ' ')) && tok_buf_add(&b, p->replacement, p->replacement_len))
            rc = oom(err);
        for (size_t i = 0; !rc && i < len; i++)
            if (text[i] == ' ' ? tok_buf_add(&b, p->replacement, p->replacement_len) : tok_buf_add(&b, text + i, 1))
                rc = oom(err);
        if (!rc && b.len)
            rc = p->split ? split_piece(s, p, b.p, b.len, first, out, err)
                          : (tok_pieces_add(out, b.p, b.len, -1, first) ? oom(err) : 0);
        tok_buf_free(&b);
        return rc;
    }
    default: return split_piece(s, p, text, len, first, out, err);
    }
}

static int run(const tok_pretok *p, scratch *s, const tok_pieces *in, tok_pieces *out, tok_pieces *tmp,
               tpi_error *err)
{
    tok_pieces_reset(out);
    if (p->type == PRE_SEQUENCE) {
        tok_pieces a = {0}, b = {0};
        int rc = 0;
        const tok_pieces *cur = in;
        for (size_t i = 0; !rc && i < p->n_seq; i++) {
            tok_pieces *dst = i + 1 == p->n_seq ? out : (cur == &a ? &b : &a);
            rc = run(&p->seq[i], s, cur, dst, tmp, err);
            cur = dst;
        }
        if (!rc && p->n_seq == 0)
            for (size_t i = 0; !rc && i < in->n; i++)
                rc = tok_pieces_add(out, tok_piece_text(in, i), in->v[i].len, in->v[i].id, in->v[i].first)
                         ? oom(err) : 0;
        tok_pieces_free(&a);
        tok_pieces_free(&b);
        return rc;
    }
    for (size_t i = 0; i < in->n; i++) {
        int rc = in->v[i].id >= 0
                     ? (tok_pieces_add(out, tok_piece_text(in, i), in->v[i].len, in->v[i].id, in->v[i].first)
                            ? oom(err) : 0)
                     : pretok_one(p, s, tok_piece_text(in, i), in->v[i].len, in->v[i].first, out, tmp, err);
        if (rc)
            return rc;
    }
    return 0;
}

int tok_pretokenize(const tok_pretok *p, const tok_pieces *in, tok_pieces *out, tpi_error *err)
{
    scratch s = {0};
    tok_pieces tmp = {0};
    int rc = run(p, &s, in, out, &tmp, err);
    free(s.m);
    free(s.ev);
    tok_pieces_free(&tmp);
    return rc;
}
