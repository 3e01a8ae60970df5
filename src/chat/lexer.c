/* Template source to tokens, with jinja2's whitespace control as
 * transformers configures it: `{%-`/`-%}` strip all whitespace beside the
 * tag, trim_blocks drops the newline after a block or comment tag,
 * lstrip_blocks drops the spaces before one that starts a line, `+` turns
 * either off, and one trailing newline of the source is dropped
 * (keep_trailing_newline false). Line ends are normalised to "\n" first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "core/error.h"

typedef struct lexer {
    jj_arena *a;
    const char *name;
    const char *s;
    size_t n, pos;
    int line;
    jj_tok *toks;
    size_t n_toks, cap;
    tpi_error *err;
} lexer;

static int lex_fail(lexer *L, int code, const char *what)
{
    return tpi_err(L->err, code, "%s:%d: %s", L->name, L->line, what);
}

static int push(lexer *L, jj_tok t)
{
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jj_tok *p = jj_alloc(L->a, cap * sizeof *p);
        if (!p)
            return tpi_err(L->err, TPI_ENOMEM, "%s: out of memory", L->name);
        if (L->n_toks)
            memcpy(p, L->toks, L->n_toks * sizeof *p);
        L->toks = p;
        L->cap = cap;
    }
    L->toks[L->n_toks++] = t;
    return 0;
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Bytes of Python whitespace (str.isspace, as jinja2's rstrip and \s) ending at end, from start. */
static size_t space_before(const char *s, size_t start, size_t end)
{
    size_t k = end;
    while (k > start) {
        size_t b = k - 1;
        while (b > start && ((unsigned char)s[b] & 0xC0) == 0x80 && k - b < 3)
            b--;
        if (jj_space_at(s + b, k - b) != k - b)
            break;
        k = b;
    }
    return end - k;
}

static void count_lines(lexer *L, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        L->line += L->s[i] == '\n';
}

/* Emits the text before a tag at `end`, applying the tag's left whitespace control. */
static int emit_text(lexer *L, size_t start, size_t end, char mod, int lstrip)
{
    size_t e = end;
    if (mod == '-') {
        e -= space_before(L->s, start, e);
    } else if (mod != '+' && lstrip) {
        size_t l = e;
        while (l > start && L->s[l - 1] != '\n')
            l--;
        int line_start = l > start || start == 0 || L->s[start - 1] == '\n';
        size_t k = l;
        while (k < e && (L->s[k] == ' ' || L->s[k] == '\t' || L->s[k] == '\f' || L->s[k] == '\v' || L->s[k] == '\r'))
            k++;
        if (line_start && k == e)
            e = l;
    }
    int line = L->line;
    count_lines(L, start, end);
    if (e == start)
        return 0;
    return push(L, (jj_tok){.kind = JT_TEXT, .line = line, .p = L->s + start, .n = e - start});
}

/* After a tag's closing delimiter: `-` strips all whitespace, trim_blocks one newline. */
static void after_tag(lexer *L, char mod, int trim)
{
    if (mod == '-') {
        size_t p = L->pos, k;
        while (p < L->n && (k = jj_space_at(L->s + p, L->n - p)) != 0)
            p += k;
        count_lines(L, L->pos, p);
        L->pos = p;
    } else if (mod != '+' && trim && L->pos < L->n && L->s[L->pos] == '\n') {
        L->pos++;
        L->line++;
    }
}

/* Python's unicode-escape over a string literal's body. */
static int unescape(lexer *L, const char *p, size_t n, jj_tok *t)
{
    char *o = jj_alloc(L->a, n + 1);
    if (!o)
        return tpi_err(L->err, TPI_ENOMEM, "%s: out of memory", L->name);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 == n) {
            o[k++] = p[i];
            continue;
        }
        char e = p[++i];
        const char *simple = strchr("nrtabfv\\'\"\n", e);
        if (simple && e) {
            static const char map[] = "\n\r\t\a\b\f\v\\'\"";
            if (e != '\n') /* a backslash-newline continues the line */
                o[k++] = map[simple - "nrtabfv\\'\"\n"];
            continue;
        }
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (digits && i + digits < n) {
            unsigned long cp = 0;
            int ok = 1;
            for (int d = 1; d <= digits; d++) {
                char h = p[i + d];
                int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                ok &= v >= 0;
                cp = cp * 16 + (unsigned long)(v < 0 ? 0 : v);
            }
            if (!ok || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
                return lex_fail(L, TPI_EUNSUPPORTED, "bad \\x, \\u or \\U escape in a string literal");
            i += digits;
            if (cp < 0x80) {
                o[k++] = (char)cp;
            } else if (cp < 0x800) {
                o[k++] = (char)(0xC0 | cp >> 6), o[k++] = (char)(0x80 | (cp & 63));
            } else if (cp < 0x10000) {
                o[k++] = (char)(0xE0 | cp >> 12), o[k++] = (char)(0x80 | (cp >> 6 & 63));
                o[k++] = (char)(0x80 | (cp & 63));
            } else {
                o[k++] = (char)(0xF0 | cp >> 18), o[k++] = (char)(0x80 | (cp >> 12 & 63));
                o[k++] = (char)(0x80 | (cp >> 6 & 63)), o[k++] = (char)(0x80 | (cp & 63));
            }
            continue;
        }
        if (e >= '0' && e <= '7') {
            unsigned cp = 0;
            int d = 0;
            while (d < 3 && i < n && p[i] >= '0' && p[i] <= '7')
                cp = cp * 8 + (unsigned)(p[i++] - '0'), d++;
            i--;
            if (cp >= 0x80) /* would be a code point above ASCII */
                return lex_fail(L, TPI_EUNSUPPORTED, "octal escape above \\177 in a string literal");
            o[k++] = (char)cp;
            continue;
        }
        o[k++] = '\\'; /* Python keeps unknown escapes as written */
        o[k++] = e;
    }
    t->p = o;
    t->n = k;
    return 0;
}

static int lex_string(lexer *L)
{
    char q = L->s[L->pos];
    size_t i = L->pos + 1;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\' && i + 1 < L->n)
            i++;
        i++;
    }
    if (i >= L->n)
        return lex_fail(L, TPI_EUNSUPPORTED, "unterminated string literal");
    jj_tok t = {.kind = JT_STRING, .line = L->line};
    int rc = unescape(L, L->s + L->pos + 1, i - L->pos - 1, &t);
    count_lines(L, L->pos, i);
    L->pos = i + 1;
    return rc ? rc : push(L, t);
}

static int lex_number(lexer *L)
{
    char buf[64];
    size_t k = 0, i = L->pos;
    int is_float = 0;
    for (; i < L->n; i++) {
        char ch = L->s[i];
        if (ch >= '0' && ch <= '9') {
        } else if (ch == '_' && i + 1 < L->n && L->s[i + 1] >= '0' && L->s[i + 1] <= '9') {
            continue;
        } else if (ch == '.' && !is_float && i + 1 < L->n && L->s[i + 1] >= '0' && L->s[i + 1] <= '9') {
            is_float = 1;
        } else if ((ch == 'e' || ch == 'E') && i + 1 < L->n &&
                   ((L->s[i + 1] >= '0' && L->s[i + 1] <= '9') ||
                    ((L->s[i + 1] == '-' || L->s[i + 1] == '+') && i + 2 < L->n && L->s[i + 2] >= '0' &&
                     L->s[i + 2] <= '9'))) {
            is_float = 2;
            if (k + 1 < sizeof buf)
                buf[k++] = ch;
            ch = L->s[++i];
        } else {
            break;
        }
        if (k + 1 >= sizeof buf)
            return lex_fail(L, TPI_EUNSUPPORTED, "number literal too long");
        buf[k++] = ch;
    }
    buf[k] = 0;
    jj_tok t = {.kind = is_float ? JT_FLOAT : JT_INT, .line = L->line, .p = L->s + L->pos, .n = i - L->pos};
    if (is_float) {
        t.f = strtod(buf, NULL);
    } else {
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (v > INT64_MAX || k > 19)
            return lex_fail(L, TPI_EUNSUPPORTED, "integer literal too large");
        t.i = (int64_t)v;
    }
    L->pos = i;
    return push(L, t);
}

static const char *const ops3[] = {"**", "//", "==", "!=", "<=", ">=", NULL};

/* Expression tokens up to the tag's end (`}}` or `%}` outside brackets). */
static int lex_tag(lexer *L, int block)
{
    int depth = 0;
    const char end = block ? '%' : '}';
    for (;;) {
        while (L->pos < L->n && is_ws(L->s[L->pos])) {
            L->line += L->s[L->pos] == '\n';
            L->pos++;
        }
        if (L->pos >= L->n)
            return lex_fail(L, TPI_EUNSUPPORTED, block ? "unclosed {% tag" : "unclosed {{ tag");
        const char *s = L->s + L->pos;
        size_t left = L->n - L->pos;
        char mod = (s[0] == '-' || s[0] == '+') ? s[0] : 0;
        const char *e = s + (mod ? 1 : 0);
        if (depth == 0 && (size_t)(e - s) + 2 <= left && e[0] == end && e[1] == '}') {
            L->pos += (size_t)(e - s) + 2;
            int rc = push(L, (jj_tok){.kind = block ? JT_BLOCK_END : JT_VAR_END, .line = L->line});
            after_tag(L, mod, block);
            return rc;
        }
        char ch = s[0];
        if (ch == '"' || ch == '\'') {
            int rc = lex_string(L);
            if (rc)
                return rc;
        } else if (ch >= '0' && ch <= '9') {
            int rc = lex_number(L);
            if (rc)
                return rc;
        } else if (ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            size_t i = 1;
            while (i < left && (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                                (s[i] >= '0' && s[i] <= '9')))
                i++;
            int rc = push(L, (jj_tok){.kind = JT_NAME, .line = L->line, .p = s, .n = i});
            if (rc)
                return rc;
            L->pos += i;
        } else {
            size_t len = 0;
            for (int k = 0; ops3[k]; k++)
                if (left >= 2 && s[0] == ops3[k][0] && s[1] == ops3[k][1])
                    len = 2;
            if (!len && strchr("+-*/%~<>()[]{}.,:|=", ch))
                len = 1;
            if (!len) {
                char msg[64];
                snprintf(msg, sizeof msg, "unexpected character '%c' in a tag", ch);
                return lex_fail(L, TPI_EUNSUPPORTED, msg);
            }
            depth += (ch == '(' || ch == '[' || ch == '{') - (ch == ')' || ch == ']' || ch == '}');
            if (depth < 0)
                depth = 0;
            int rc = push(L, (jj_tok){.kind = JT_OP, .line = L->line, .p = s, .n = len});
            if (rc)
                return rc;
            L->pos += len;
        }
    }
}

/* Matches `{%[-+]? WORD [-+]?%}` at p; returns its length and the modifiers, else 0. */
static size_t match_word_tag(const char *s, size_t left, const char *word, char *mod_l, char *mod_r)
{
    size_t i = 2, wl = strlen(word);
    if (left < 4 || s[0] != '{' || s[1] != '%')
        return 0;
    *mod_l = (s[2] == '-' || s[2] == '+') ? s[2] : 0;
    i += *mod_l != 0;
    while (i < left && is_ws(s[i]))
        i++;
    if (left - i < wl || memcmp(s + i, word, wl))
        return 0;
    i += wl;
    while (i < left && is_ws(s[i]))
        i++;
    *mod_r = (i < left && (s[i] == '-' || s[i] == '+')) ? s[i] : 0;
    i += *mod_r != 0;
    if (left - i < 2 || s[i] != '%' || s[i + 1] != '}')
        return 0;
    return i + 2;
}

/* `{% raw %}...{% endraw %}`: the body is text, verbatim. */
static int lex_raw(lexer *L, size_t tag_len, char mod_r)
{
    L->pos += tag_len;
    after_tag(L, mod_r == '-' ? '-' : '+', 1); /* jinja2 applies no trim_blocks after raw */
    for (size_t i = L->pos; i + 1 < L->n; i++) {
        char ml, mr;
        size_t k = match_word_tag(L->s + i, L->n - i, "endraw", &ml, &mr);
        if (!k)
            continue;
        int rc = emit_text(L, L->pos, i, ml, 1);
        L->pos = i + k;
        after_tag(L, mr, 1);
        return rc;
    }
    return lex_fail(L, TPI_EUNSUPPORTED, "{% raw %} without {% endraw %}");
}

static int lex_all(lexer *L)
{
    while (L->pos < L->n) {
        size_t start = L->pos, k = start;
        while (k + 1 < L->n && !(L->s[k] == '{' && (L->s[k + 1] == '{' || L->s[k + 1] == '%' || L->s[k + 1] == '#')))
            k++;
        if (k + 1 >= L->n) {
            L->pos = L->n;
            return emit_text(L, start, L->n, 0, 0);
        }
        char kind = L->s[k + 1];
        char mod = k + 2 < L->n && (L->s[k + 2] == '-' || L->s[k + 2] == '+') ? L->s[k + 2] : 0;
        char ml, mr;
        size_t raw = kind == '%' ? match_word_tag(L->s + k, L->n - k, "raw", &ml, &mr) : 0;
        int rc = emit_text(L, start, k, mod, kind != '{');
        if (rc)
            return rc;
        L->pos = k;
        if (raw) {
            rc = lex_raw(L, raw, mr);
        } else if (kind == '#') {
            const char *e = NULL;
            for (size_t i = k + 2; i + 1 < L->n && !e; i++)
                if (L->s[i] == '#' && L->s[i + 1] == '}')
                    e = L->s + i;
            if (!e)
                return lex_fail(L, TPI_EUNSUPPORTED, "unclosed comment {#");
            size_t end = (size_t)(e - L->s);
            char m = end > k + 2 && (e[-1] == '-' || e[-1] == '+') ? e[-1] : 0;
            count_lines(L, k, end + 2);
            L->pos = end + 2;
            after_tag(L, m, 1);
        } else {
            int block = kind == '%';
            rc = push(L, (jj_tok){.kind = block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, .line = L->line});
            L->pos = k + 2 + (mod != 0);
            if (!rc)
                rc = lex_tag(L, block);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int jj_lex(jj_arena *a, const char *name, const char *src, size_t len, jj_tok **toks, size_t *n_toks,
           tpi_error *err)
{
    char *s = jj_alloc(a, len + 1);
    if (!s)
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory", name);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            i += i + 1 < len && src[i + 1] == '\n';
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n')
        n--;
    lexer L = {.a = a, .name = name, .s = s, .n = n, .line = 1, .err = err};
    int rc = lex_all(&L);
    if (!rc)
        rc = push(&L, (jj_tok){.kind = JT_EOF, .line = L.line});
    *toks = L.toks;
    *n_toks = L.n_toks;
    return rc;
}
