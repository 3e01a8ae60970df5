/* Values to and from text the way Python writes them: JSON in (ints stay
 * ints, keys keep their order), json.dumps out (transformers' tojson:
 * ensure_ascii false, ", " and ": "), str() and repr() for printing. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "core/error.h"

/* ---- floats ---- */

/* Python's repr: the shortest digits that read back to f, in exponent form
 * below 1e-4 and from 1e16 on. */
void jj_float_repr(double f, char *buf, size_t size)
{
    if (isnan(f)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, size, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f)
            break;
    }
    /* e = [-]D[.DDD]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    int neg = *p == '-';
    p += neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    char *o = buf;
    size_t left = size;
#define PUT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); if (w_ > 0 && (size_t)w_ < left) o += w_, left -= (size_t)w_; } while (0)
    if (neg)
        PUT("-");
    if (exp < -4 || exp >= 16) {
        PUT("%c", digits[0]);
        if (nd > 1)
            PUT(".%s", digits + 1);
        PUT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        PUT("0.");
        for (int i = -1; i > exp; i--)
            PUT("0");
        PUT("%s", digits);
    } else {
        for (int i = 0; i <= exp; i++)
            PUT("%c", (size_t)i < nd ? digits[i] : '0');
        PUT(".");
        if ((size_t)exp + 1 < nd)
            PUT("%s", digits + exp + 1);
        else
            PUT("0");
    }
#undef PUT
}

/* ---- str() and repr() ---- */

static void repr_str(jj_buf *b, const char *p, size_t n)
{
    int has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jj_buf_add(b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char esc[8];
        if (ch == '\\' || ch == (unsigned char)q) {
            esc[0] = '\\', esc[1] = (char)ch;
            jj_buf_add(b, esc, 2);
        } else if (ch == '\n') {
            jj_buf_puts(b, "\\n");
        } else if (ch == '\r') {
            jj_buf_puts(b, "\\r");
        } else if (ch == '\t') {
            jj_buf_puts(b, "\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            jj_buf_puts(b, esc);
        } else {
            jj_buf_add(b, p + i, 1);
        }
    }
    jj_buf_add(b, &q, 1);
}

static int write_value(jj_ctx *c, jj_buf *b, jv v, int repr);

static int write_items(jj_ctx *c, jj_buf *b, jv v)
{
    int rc = 0;
    if (v.t == JV_LIST) {
        jj_buf_puts(b, v.tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n && !rc; i++) {
            if (i)
                jj_buf_puts(b, ", ");
            rc = write_value(c, b, v.u.l->v[i], 1);
        }
        jj_buf_puts(b, v.tuple ? (v.u.l->n == 1 ? ",)" : ")") : "]");
        return rc;
    }
    if (v.t == JV_NS)
        jj_buf_puts(b, "<Namespace ");
    jj_buf_puts(b, "{");
    for (size_t i = 0; i < v.u.d->n && !rc; i++) {
        if (i)
            jj_buf_puts(b, ", ");
        rc = write_value(c, b, v.u.d->k[i], 1);
        jj_buf_puts(b, ": ");
        if (!rc)
            rc = write_value(c, b, v.u.d->v[i], 1);
    }
    jj_buf_puts(b, v.t == JV_NS ? "}>" : "}");
    return rc;
}

static int write_value(jj_ctx *c, jj_buf *b, jv v, int repr)
{
    char num[48];
    switch (v.t) {
    case JV_UNDEF: jj_buf_puts(b, repr ? "Undefined" : ""); return 0;
    case JV_NONE: jj_buf_puts(b, "None"); return 0;
    case JV_BOOL: jj_buf_puts(b, v.u.b ? "True" : "False"); return 0;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        jj_buf_puts(b, num);
        return 0;
    case JV_FLOAT:
        jj_float_repr(v.u.f, num, sizeof num);
        jj_buf_puts(b, num);
        return 0;
    case JV_STR:
        if (repr)
            repr_str(b, v.u.s.p, v.u.s.n);
        else
            jj_buf_add(b, v.u.s.p, v.u.s.n);
        return 0;
    case JV_MACRO: jj_buf_puts(b, "<Macro>"); return 0;
    case JV_LIST:
        if (v.gen) {
            jj_buf_puts(b, "<generator object>");
            return 0;
        }
        break;
    case JV_FUNC: jj_buf_puts(b, "<function>"); return 0;
    case JV_LOOP: jj_buf_puts(b, "<LoopContext>"); return 0;
    default: break;
    }
    int rc = jj_enter(c);
    if (!rc)
        rc = write_items(c, b, v);
    jj_leave(c);
    return rc;
}

int jv_write_str(jj_ctx *c, jj_buf *b, jv v)
{
    return write_value(c, b, v, 0);
}

int jv_to_str(jj_ctx *c, jv v, jv *out)
{
    if (v.t == JV_STR) {
        *out = v;
        return 0;
    }
    jj_buf b;
    jj_buf_init(&b, c);
    int rc = jv_write_str(c, &b, v);
    return rc ? rc : jj_buf_done(&b, out);
}

/* ---- json.dumps ---- */

static void json_str(jj_buf *b, const char *p, size_t n, int ensure_ascii)
{
    jj_buf_puts(b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *esc = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r"
                          : ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
        char u[16];
        if (!esc && ch < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", ch);
            esc = u;
        } else if (!esc && ch >= 0x80 && ensure_ascii) {
            unsigned cp = 0;
            int len = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
            cp = len == 4 ? ch & 7 : len == 3 ? ch & 15 : len == 2 ? ch & 31 : ch;
            for (int k = 1; k < len && i + (size_t)k < n; k++)
                cp = cp << 6 | ((unsigned char)p[i + (size_t)k] & 63);
            if (cp >= 0x10000)
                snprintf(u, sizeof u, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
                         0xDC00 + ((cp - 0x10000) & 0x3FF));
            else
                snprintf(u, sizeof u, "\\u%04x", cp);
            jj_buf_add(b, p + i - run, run);
            run = 0;
            jj_buf_puts(b, u);
            i += (size_t)len - 1;
            continue;
        }
        if (!esc) {
            run++;
            continue;
        }
        jj_buf_add(b, p + i - run, run);
        run = 0;
        jj_buf_puts(b, esc);
    }
    jj_buf_add(b, p + n - run, run);
    jj_buf_puts(b, "\"");
}

typedef struct json_out {
    jj_ctx *c;
    jj_buf *b;
    const jj_json_opts *o;
    const char *item_sep, *key_sep;
} json_out;

static void json_newline(json_out *j, int level)
{
    if (j->o->indent < 0 && !j->o->indent_str)
        return;
    jj_buf_puts(j->b, "\n");
    for (int l = 0; l < level; l++) {
        if (j->o->indent_str)
            jj_buf_puts(j->b, j->o->indent_str);
        else
            for (int k = 0; k < j->o->indent; k++)
                jj_buf_puts(j->b, " ");
    }
}

static int json_value(json_out *j, jv v, int level);

static int json_key(json_out *j, jv k)
{
    char num[48];
    switch (k.t) {
    case JV_STR: json_str(j->b, k.u.s.p, k.u.s.n, j->o->ensure_ascii); return 0;
    case JV_INT: snprintf(num, sizeof num, "\"%lld\"", (long long)k.u.i); break;
    case JV_BOOL: snprintf(num, sizeof num, "\"%s\"", k.u.b ? "true" : "false"); break;
    case JV_NONE: snprintf(num, sizeof num, "\"null\""); break;
    case JV_FLOAT:
        num[0] = '"';
        jj_float_repr(k.u.f, num + 1, sizeof num - 2);
        strcat(num, "\"");
        break;
    default:
        return jj_fail(j->c, TPI_EINVAL, "keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    }
    jj_buf_puts(j->b, num);
    return 0;
}

/* Indices of d's keys, sorted by key when sort_keys is set. */
static int key_order(json_out *j, const jj_dict *d, size_t **order)
{
    size_t *o = jj_new(j->c, (d->n + 1) * sizeof *o);
    if (!o)
        return jj_oom(j->c);
    for (size_t i = 0; i < d->n; i++)
        o[i] = i;
    for (size_t i = 1; j->o->sort_keys && i < d->n; i++) { /* insertion sort: stable, as Python's */
        for (size_t k = i; k > 0; k--) {
            int cmp;
            int rc = jv_compare(j->c, d->k[o[k - 1]], d->k[o[k]], &cmp);
            if (rc)
                return rc;
            if (cmp <= 0)
                break;
            size_t t = o[k];
            o[k] = o[k - 1], o[k - 1] = t;
        }
    }
    *order = o;
    return 0;
}

static int json_container(json_out *j, jv v, int level)
{
    int rc = 0;
    if (v.t == JV_LIST) {
        if (!v.u.l->n) {
            jj_buf_puts(j->b, "[]");
            return 0;
        }
        jj_buf_puts(j->b, "[");
        for (size_t i = 0; i < v.u.l->n && !rc; i++) {
            if (i)
                jj_buf_puts(j->b, j->item_sep);
            json_newline(j, level + 1);
            rc = json_value(j, v.u.l->v[i], level + 1);
        }
        json_newline(j, level);
        jj_buf_puts(j->b, "]");
        return rc;
    }
    const jj_dict *d = v.u.d;
    if (!d->n) {
        jj_buf_puts(j->b, "{}");
        return 0;
    }
    size_t *order = NULL;
    rc = key_order(j, d, &order);
    jj_buf_puts(j->b, "{");
    for (size_t i = 0; i < d->n && !rc; i++) {
        if (i)
            jj_buf_puts(j->b, j->item_sep);
        json_newline(j, level + 1);
        rc = json_key(j, d->k[order[i]]);
        jj_buf_puts(j->b, j->key_sep);
        if (!rc)
            rc = json_value(j, d->v[order[i]], level + 1);
    }
    json_newline(j, level);
    jj_buf_puts(j->b, "}");
    return rc;
}

static int json_value(json_out *j, jv v, int level)
{
    char num[48];
    switch (v.t) {
    case JV_NONE: jj_buf_puts(j->b, "null"); return 0;
    case JV_BOOL: jj_buf_puts(j->b, v.u.b ? "true" : "false"); return 0;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        jj_buf_puts(j->b, num);
        return 0;
    case JV_FLOAT:
        if (isnan(v.u.f))
            snprintf(num, sizeof num, "NaN");
        else if (isinf(v.u.f))
            snprintf(num, sizeof num, v.u.f < 0 ? "-Infinity" : "Infinity");
        else
            jj_float_repr(v.u.f, num, sizeof num);
        jj_buf_puts(j->b, num);
        return 0;
    case JV_STR: json_str(j->b, v.u.s.p, v.u.s.n, j->o->ensure_ascii); return 0;
    case JV_LIST:
        if (v.gen)
            return jj_fail(j->c, TPI_EINVAL, "Object of type generator is not JSON serializable");
        break;
    case JV_DICT: break;
    default: return jj_fail(j->c, TPI_EINVAL, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
    int rc = jj_enter(j->c);
    if (!rc)
        rc = json_container(j, v, level);
    jj_leave(j->c);
    return rc;
}

int jv_to_json(jj_ctx *c, jv v, const jj_json_opts *o, jv *out)
{
    jj_buf b;
    jj_buf_init(&b, c);
    int pretty = o->indent >= 0 || o->indent_str;
    json_out j = {.c = c, .b = &b, .o = o, .item_sep = o->item_sep ? o->item_sep : pretty ? "," : ", ",
                  .key_sep = o->key_sep ? o->key_sep : ": "};
    int rc = json_value(&j, v, 0);
    return rc ? rc : jj_buf_done(&b, out);
}

/* ---- JSON in ---- */

typedef struct json_in {
    jj_ctx *c;
    const char *s, *what;
    size_t n, pos;
} json_in;

static int jin_fail(json_in *j, const char *msg)
{
    return tpi_err(j->c->err, TPI_EINVAL, "%s: %s at byte %zu", j->what, msg, j->pos);
}

static void jin_ws(json_in *j)
{
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
                             j->s[j->pos] == '\r'))
        j->pos++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

static void put_utf8(jj_buf *b, unsigned cp)
{
    char o[4];
    size_t k = 0;
    if (cp < 0x80) {
        o[k++] = (char)cp;
    } else if (cp < 0x800) {
        o[k++] = (char)(0xC0 | cp >> 6), o[k++] = (char)(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
        o[k++] = (char)(0xE0 | cp >> 12), o[k++] = (char)(0x80 | (cp >> 6 & 63)), o[k++] = (char)(0x80 | (cp & 63));
    } else {
        o[k++] = (char)(0xF0 | cp >> 18), o[k++] = (char)(0x80 | (cp >> 12 & 63));
        o[k++] = (char)(0x80 | (cp >> 6 & 63)), o[k++] = (char)(0x80 | (cp & 63));
    }
    jj_buf_add(b, o, k);
}

static int jin_string(json_in *j, jv *out)
{
    jj_buf b;
    jj_buf_init(&b, j->c);
    j->pos++;
    size_t run = j->pos;
    while (j->pos < j->n && j->s[j->pos] != '"') {
        unsigned char ch = (unsigned char)j->s[j->pos];
        if (ch < 0x20)
            return jin_fail(j, "control character in a string");
        if (ch != '\\') {
            j->pos++;
            continue;
        }
        jj_buf_add(&b, j->s + run, j->pos - run);
        if (j->pos + 1 >= j->n)
            break;
        char e = j->s[j->pos + 1];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *f = e ? strchr(from, e) : NULL;
        if (f) {
            jj_buf_add(&b, to + (f - from), 1);
            j->pos += 2;
        } else if (e == 'u') {
            unsigned cp, lo;
            if (j->pos + 6 > j->n || hex4(j->s + j->pos + 2, &cp))
                return jin_fail(j, "bad \\u escape");
            j->pos += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && j->pos + 6 <= j->n && j->s[j->pos] == '\\' &&
                j->s[j->pos + 1] == 'u' && !hex4(j->s + j->pos + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                j->pos += 6;
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
            }
            put_utf8(&b, cp);
        } else {
            return jin_fail(j, "bad escape in a string");
        }
        run = j->pos;
    }
    if (j->pos >= j->n)
        return jin_fail(j, "unterminated string");
    jj_buf_add(&b, j->s + run, j->pos - run);
    j->pos++;
    return jj_buf_done(&b, out);
}

static int jin_number(json_in *j, jv *out)
{
    size_t start = j->pos;
    int is_float = 0;
    if (j->s[j->pos] == '-')
        j->pos++;
    while (j->pos < j->n && strchr("0123456789.eE+-", j->s[j->pos]) && j->s[j->pos]) {
        is_float |= j->s[j->pos] == '.' || j->s[j->pos] == 'e' || j->s[j->pos] == 'E';
        j->pos++;
    }
    char buf[64];
    size_t len = j->pos - start;
    if (len == 0 || len >= sizeof buf)
        return jin_fail(j, "bad number");
    memcpy(buf, j->s + start, len);
    buf[len] = 0;
    char *end;
    if (!is_float) {
        long long v = strtoll(buf, &end, 10);
        if (*end || end == buf)
            return jin_fail(j, "bad number");
        if (!((v == LLONG_MAX || v == LLONG_MIN) && len >= 19)) {
            *out = jv_int(v);
            return 0;
        }
    }
    double f = strtod(buf, &end); /* integers past int64 become floats */
    if (*end)
        return jin_fail(j, "bad number");
    *out = jv_float(f);
    return 0;
}

static int jin_value(json_in *j, jv *out);


/* After an item of a list or object: 1 past a ',', 0 past `close`, -1 for
 * anything else. */
static int jin_next(json_in *j, char close)
{
    jin_ws(j);
    if (j->pos < j->n && (j->s[j->pos] == ',' || j->s[j->pos] == close))
        return j->s[j->pos++] == ',';
    return -1;
}
static int jin_array(json_in *j, jv *out)
{
    size_t n = 0, cap = 0;
    jv *items = NULL;
    j->pos++;
    jin_ws(j);
    if (j->pos < j->n && j->s[j->pos] == ']') {
        j->pos++;
    } else {
        for (;;) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                jv *p = jj_new(j->c, cap * sizeof *p);
                if (!p)
                    return jj_oom(j->c);
                if (n)
                    memcpy(p, items, n * sizeof *p);
                items = p;
            }
            int rc = jin_value(j, &items[n++]);
            if (rc)
                return rc;
            int more = jin_next(j, ']');
            if (more < 0)
                return jin_fail(j, "expected ',' or ']'");
            if (!more)
                break;
        }
    }
    jj_list *l = jj_list_new(j->c, 0);
    if (!l)
        return jj_oom(j->c);
    l->n = n, l->v = items;
    *out = (jv){.t = JV_LIST, .u.l = l};
    return 0;
}

static int jin_object(json_in *j, jv *out)
{
    jj_dict *d = jj_dict_new(j->c, 8);
    if (!d)
        return jj_oom(j->c);
    j->pos++;
    jin_ws(j);
    if (j->pos < j->n && j->s[j->pos] == '}') {
        j->pos++;
    } else {
        for (;;) {
            jv k, v;
            jin_ws(j);
            if (j->pos >= j->n || j->s[j->pos] != '"')
                return jin_fail(j, "expected a string key");
            int rc = jin_string(j, &k);
            jin_ws(j);
            if (!rc && (j->pos >= j->n || j->s[j->pos] != ':'))
                return jin_fail(j, "expected ':'");
            j->pos++;
            if (!rc)
                rc = jin_value(j, &v);
            if (!rc)
                rc = jj_dict_set(j->c, d, k, v); /* a repeated key keeps its first place, last value (as Python) */
            if (rc)
                return rc;
            int more = jin_next(j, '}');
            if (more < 0)
                return jin_fail(j, "expected ',' or '}'");
            if (!more)
                break;
        }
    }
    *out = (jv){.t = JV_DICT, .u.d = d};
    return 0;
}

static int jin_value(json_in *j, jv *out)
{
    jin_ws(j);
    if (j->pos >= j->n)
        return jin_fail(j, "unexpected end");
    char ch = j->s[j->pos];
    size_t left = j->n - j->pos;
    if (ch == '"')
        return jin_string(j, out);
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return jin_number(j, out);
    if (left >= 4 && !memcmp(j->s + j->pos, "null", 4)) {
        j->pos += 4;
        *out = jv_none();
        return 0;
    }
    if (left >= 4 && !memcmp(j->s + j->pos, "true", 4)) {
        j->pos += 4;
        *out = jv_bool(1);
        return 0;
    }
    if (left >= 5 && !memcmp(j->s + j->pos, "false", 5)) {
        j->pos += 5;
        *out = jv_bool(0);
        return 0;
    }
    if (ch != '[' && ch != '{')
        return jin_fail(j, "unexpected character");
    if (j->c->depth >= 64 + 1)
        return jin_fail(j, "nested deeper than 64");
    j->c->depth++;
    int rc = ch == '[' ? jin_array(j, out) : jin_object(j, out);
    j->c->depth--;
    return rc;
}

int jj_json_parse(jj_ctx *c, const char *text, size_t n, const char *what, jv *out)
{
    json_in j = {.c = c, .s = text, .n = n, .what = what};
    int depth = c->depth;
    c->depth = 0;
    int rc = jin_value(&j, out);
    c->depth = depth;
    if (rc)
        return rc;
    jin_ws(&j);
    return j.pos == n ? 0 : jin_fail(&j, "trailing characters");
}
