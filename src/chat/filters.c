/* jinja2's builtin filters (filters.py) as transformers' environment has
 * them: autoescape off, tojson replaced by json.dumps(ensure_ascii=False).
 * Sequence filters (map, select, sort, ...) are in seqfilters.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/filters.h"
#include "core/error.h"

static const char *const filter_names[] = {
#define X(id, name) name,
    JJ_FILTERS(X)
#undef X
};

int jj_filter_id(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof filter_names / sizeof *filter_names; i++)
        if (strlen(filter_names[i]) == n && !memcmp(filter_names[i], name, n))
            return (int)i;
    return -1;
}

const char *jj_filter_name(int id)
{
    return filter_names[id];
}

const jv *jj_arg(const jj_argv *a, size_t i, const char *name)
{
    for (size_t k = 0; name && k < a->n_kw; k++)
        if (!strcmp(a->kw_names[k], name))
            return &a->kw[k];
    return i < a->n_pos ? &a->pos[i] : NULL;
}

int jj_want_str(jj_ctx *c, jv x, jv *out)
{
    if (x.t == JV_UNDEF) {
        *out = jv_str("", 0);
        return 0;
    }
    return jv_to_str(c, x, out);
}

static int bool_arg(const jv *v, int dflt)
{
    return v ? jv_truthy(*v) : dflt;
}

static int f_length(jj_ctx *c, jv x, jv *out)
{
    switch (x.t) {
    case JV_STR: *out = jv_int((int64_t)jj_utf8_len(x.u.s.p, x.u.s.n)); return 0;
    case JV_LIST:
        if (x.gen)
            return jj_fail(c, TPI_EINVAL, "object of type 'generator' has no len() (add |list)");
        *out = jv_int((int64_t)x.u.l->n);
        return 0;
    case JV_DICT:
    case JV_NS: *out = jv_int((int64_t)x.u.d->n); return 0;
    case JV_UNDEF: *out = jv_int(0); return 0;
    default: return jj_fail(c, TPI_EINVAL, "object of type '%s' has no len()", jv_type_name(x));
    }
}

static int f_tojson(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    jj_json_opts o = {.indent = -1};
    const jv *indent = jj_arg(a, 0, "indent"), *seps = jj_arg(a, 3, "separators");
    if (indent && indent->t == JV_INT)
        o.indent = indent->u.i < 0 ? 0 : indent->u.i > 64 ? 64 : (int)indent->u.i;
    else if (indent && indent->t == JV_STR && indent->u.s.n < 64) {
        char *s = jj_new(c, indent->u.s.n + 1);
        if (!s)
            return jj_oom(c);
        memcpy(s, indent->u.s.p, indent->u.s.n);
        o.indent_str = s;
    }
    o.ensure_ascii = bool_arg(jj_arg(a, 1, "ensure_ascii"), 0);
    o.sort_keys = bool_arg(jj_arg(a, 4, "sort_keys"), 0);
    if (seps && seps->t == JV_LIST && seps->u.l->n == 2 && seps->u.l->v[0].t == JV_STR &&
        seps->u.l->v[1].t == JV_STR) {
        char *s[2];
        for (int k = 0; k < 2; k++) {
            jv p = seps->u.l->v[k];
            if (!(s[k] = jj_new(c, p.u.s.n + 1)))
                return jj_oom(c);
            memcpy(s[k], p.u.s.p, p.u.s.n);
        }
        o.item_sep = s[0], o.key_sep = s[1];
    }
    return jv_to_json(c, x, &o, out);
}

/* Python's int(str) after jinja2's do_int fallbacks: int(float(s)), then the default. */
static int f_int(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *dflt = jj_arg(a, 0, "default");
    *out = dflt ? *dflt : jv_int(0);
    if (x.t == JV_INT || x.t == JV_BOOL) {
        *out = jv_int(x.t == JV_INT ? x.u.i : x.u.b);
    } else if (x.t == JV_FLOAT && isfinite(x.u.f) && fabs(x.u.f) < 9.2e18) {
        *out = jv_int((int64_t)x.u.f);
    } else if (x.t == JV_STR) {
        char buf[64];
        jv t = jj_strip(x, NULL, 3);
        if (!t.u.s.n || t.u.s.n >= sizeof buf)
            return 0;
        size_t k = 0;
        for (size_t i = 0; i < t.u.s.n; i++)
            if (t.u.s.p[i] != '_')
                buf[k++] = t.u.s.p[i];
        buf[k] = 0;
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (!*end && end != buf) {
            *out = jv_int(v);
            return 0;
        }
        double f = strtod(buf, &end); /* Python's int(float(s)): decimal text only, no hex */
        if (!*end && end != buf && !strpbrk(buf, "xX") && isfinite(f) && fabs(f) < 9.2e18)
            *out = jv_int((int64_t)f);
    }
    (void)c;
    return 0;
}

static int f_float(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *dflt = jj_arg(a, 0, "default");
    *out = dflt ? *dflt : jv_float(0);
    if (x.t == JV_INT || x.t == JV_BOOL || x.t == JV_FLOAT) {
        *out = jv_float(x.t == JV_FLOAT ? x.u.f : x.t == JV_INT ? (double)x.u.i : x.u.b);
    } else if (x.t == JV_STR) {
        char buf[64];
        jv t = jj_strip(x, NULL, 3);
        if (!t.u.s.n || t.u.s.n >= sizeof buf)
            return 0;
        memcpy(buf, t.u.s.p, t.u.s.n);
        buf[t.u.s.n] = 0;
        char *end;
        double f = strtod(buf, &end);
        if (!*end && !strpbrk(buf, "xX"))
            *out = jv_float(f);
    }
    (void)c;
    return 0;
}

static int f_round(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *prec = jj_arg(a, 0, "precision"), *method = jj_arg(a, 1, "method");
    int64_t p = prec && prec->t == JV_INT ? prec->u.i : 0;
    if (p < -20 || p > 20)
        p = p < 0 ? -20 : 20;
    int m = 0;
    if (method && method->t == JV_STR)
        m = method->u.s.n == 4 && !memcmp(method->u.s.p, "ceil", 4) ? 1
            : method->u.s.n == 5 && !memcmp(method->u.s.p, "floor", 5) ? 2
            : method->u.s.n == 6 && !memcmp(method->u.s.p, "common", 6) ? 0 : -1;
    if (m < 0)
        return jj_fail(c, TPI_EINVAL, "round: method must be 'common', 'ceil' or 'floor'");
    if (x.t != JV_INT && x.t != JV_FLOAT && x.t != JV_BOOL)
        return jj_fail(c, TPI_EINVAL, "round takes a number, not %s", jv_type_name(x));
    if (m == 0 && x.t != JV_FLOAT && p >= 0) { /* Python's round of an int is the int */
        *out = jv_int(x.t == JV_INT ? x.u.i : x.u.b);
        return 0;
    }
    double v = x.t == JV_FLOAT ? x.u.f : x.t == JV_INT ? (double)x.u.i : x.u.b, s = pow(10.0, (double)p);
    double r = m == 1 ? ceil(v * s) / s : m == 2 ? floor(v * s) / s : nearbyint(v * s) / s;
    if (m == 0 && p >= 0 && isfinite(v)) { /* Python rounds the exact binary value: 2.675 -> 2.67 */
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)p, v);
        r = strtod(buf, NULL);
    }
    *out = jv_float(r);
    return 0;
}

int jj_html_escape(jj_ctx *c, jv x, int force, jv *out)
{
    jv s;
    if (x.t == JV_STR && x.markup && !force) {
        *out = x;
        return 0;
    }
    int rc = jj_want_str(c, x, &s);
    if (rc)
        return rc;
    jj_buf b;
    jj_buf_init(&b, c);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        const char *e = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '"' ? "&#34;"
                        : ch == '\'' ? "&#39;" : NULL;
        if (e)
            jj_buf_puts(&b, e);
        else
            jj_buf_add(&b, &ch, 1);
    }
    rc = jj_buf_done(&b, out);
    out->markup = 1;
    return rc;
}

/* jinja2's do_indent: every line but the first (unless first=true), blank lines only with blank=true. */
static int f_indent(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *width = jj_arg(a, 0, "width");
    int first = bool_arg(jj_arg(a, 1, "first"), 0), blank = bool_arg(jj_arg(a, 2, "blank"), 0);
    jv s, pad = jv_str("    ", 4);
    int rc = jj_want_str(c, x, &s);
    if (rc)
        return rc;
    if (width && width->t == JV_STR) {
        pad = *width;
    } else if (width && width->t == JV_INT) {
        if (width->u.i < 0 || width->u.i > 256)
            return jj_fail(c, TPI_EINVAL, "indent width outside 0..256");
        char *p = jj_new(c, (size_t)width->u.i + 1);
        if (!p)
            return jj_oom(c);
        memset(p, ' ', (size_t)width->u.i);
        pad = jv_str(p, (size_t)width->u.i);
    }
    jj_buf b;
    jj_buf_init(&b, c);
    size_t pos = 0;
    for (int line = 0; pos < s.u.s.n || line == 0; line++) {
        const char *nl = memchr(s.u.s.p + pos, '\n', s.u.s.n - pos);
        size_t end = nl ? (size_t)(nl - s.u.s.p) : s.u.s.n;
        if (line)
            jj_buf_puts(&b, "\n");
        if ((line || first) && (end > pos || blank))
            jj_buf_add(&b, pad.u.s.p, pad.u.s.n);
        jj_buf_add(&b, s.u.s.p + pos, end - pos);
        pos = end + 1;
        if (!nl)
            break;
    }
    return jj_buf_done(&b, out);
}

static int f_truncate(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *len_a = jj_arg(a, 0, "length"), *end_a = jj_arg(a, 2, "end"), *lee = jj_arg(a, 3, "leeway");
    int killwords = bool_arg(jj_arg(a, 1, "killwords"), 0);
    int64_t length = len_a && len_a->t == JV_INT ? len_a->u.i : 255, leeway = lee && lee->t == JV_INT ? lee->u.i : 5;
    jv s, end = end_a && end_a->t == JV_STR ? *end_a : jv_str("...", 3);
    int rc = jj_want_str(c, x, &s);
    if (rc)
        return rc;
    int64_t n = (int64_t)jj_utf8_len(s.u.s.p, s.u.s.n), keep = length - (int64_t)jj_utf8_len(end.u.s.p, end.u.s.n);
    if (n <= length + leeway) {
        *out = s;
        return 0;
    }
    jv head = jv_str(s.u.s.p, jj_utf8_offset(s.u.s.p, s.u.s.n, keep < 0 ? 0 : (size_t)keep));
    if (!killwords) {
        const char *sp = NULL;
        for (size_t i = head.u.s.n; i-- > 0 && !sp;)
            if (head.u.s.p[i] == ' ')
                sp = head.u.s.p + i;
        if (sp)
            head.u.s.n = (size_t)(sp - head.u.s.p);
    }
    jj_buf b;
    jj_buf_init(&b, c);
    jj_buf_add(&b, head.u.s.p, head.u.s.n);
    jj_buf_add(&b, end.u.s.p, end.u.s.n);
    return jj_buf_done(&b, out);
}

static int f_center(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *w = jj_arg(a, 0, "width");
    int64_t width = w && w->t == JV_INT ? w->u.i : 80;
    jv s;
    int rc = jj_want_str(c, x, &s);
    int64_t n = (int64_t)jj_utf8_len(s.u.s.p, s.u.s.n);
    if (rc || width <= n || width > 4096) {
        *out = s;
        return rc;
    }
    int64_t total = width - n, left = total / 2 + (total & width & 1); /* CPython's str.center split */
    jj_buf b;
    jj_buf_init(&b, c);
    for (int64_t i = 0; i < left; i++)
        jj_buf_puts(&b, " ");
    jj_buf_add(&b, s.u.s.p, s.u.s.n);
    for (int64_t i = 0; i < total - left; i++)
        jj_buf_puts(&b, " ");
    return jj_buf_done(&b, out);
}

static int f_format(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    jv fmt;
    int rc = jj_want_str(c, x, &fmt);
    return rc ? rc : jj_percent_format(c, fmt, a->pos, a->n_pos, out);
}

int jj_percent_format(jj_ctx *c, jv fmt, const jv *args, size_t n_args, jv *out)
{
    int rc = 0;
    jj_buf b;
    jj_buf_init(&b, c);
    size_t next = 0;
    for (size_t i = 0; i < fmt.u.s.n && !rc; i++) {
        if (fmt.u.s.p[i] != '%' || i + 1 == fmt.u.s.n) {
            jj_buf_add(&b, fmt.u.s.p + i, 1);
            continue;
        }
        char k = fmt.u.s.p[++i];
        if (k == '%') {
            jj_buf_puts(&b, "%");
            continue;
        }
        if (next >= n_args)
            return jj_fail(c, TPI_EINVAL, "not enough arguments for format string");
        jv v = args[next++], t;
        if (k == 's') {
            rc = jv_write_str(c, &b, v);
        } else if (k == 'r') {
            jj_list one = {1, &v};
            rc = jv_to_str(c, (jv){.t = JV_LIST, .tuple = 1, .u.l = &one}, &t);
            if (!rc && t.u.s.n >= 3) /* "(x,)" without the tuple around it */
                jj_buf_add(&b, t.u.s.p + 1, t.u.s.n - 3);
        } else if ((k == 'd' || k == 'i' || k == 'f') && (v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL)) {
            char num[64];
            double f = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
            if (k == 'f')
                snprintf(num, sizeof num, "%f", f);
            else
                snprintf(num, sizeof num, "%lld", v.t == JV_FLOAT ? (long long)f : v.t == JV_INT ? (long long)v.u.i : v.u.b);
            jj_buf_puts(&b, num);
        } else {
            return jj_fail(c, TPI_EUNSUPPORTED, "format: only %%s, %%r, %%d, %%i, %%f and %%%% are supported");
        }
    }
    if (!rc && next < n_args)
        return jj_fail(c, TPI_EINVAL, "not all arguments converted during string formatting");
    return rc ? rc : jj_buf_done(&b, out);
}

static int f_items(jj_ctx *c, jv x, jv *out)
{
    int rc;
    if (x.t == JV_UNDEF) {
        jj_list *l = jj_list_new(c, 0);
        *out = (jv){.t = JV_LIST, .u.l = l};
        rc = l ? 0 : jj_oom(c);
    } else if (x.t != JV_DICT) {
        return jj_fail(c, TPI_EINVAL, "items: can only get item pairs from a mapping, not %s", jv_type_name(x));
    } else {
        rc = jj_dict_items(c, x.u.d, out);
    }
    out->gen = 1;
    return rc;
}

int jj_dict_items(jj_ctx *c, const jj_dict *d, jv *out)
{
    jj_list *l = jj_list_new(c, d->n);
    if (!l)
        return jj_oom(c);
    for (size_t i = 0; i < d->n; i++) {
        jj_list *pair = jj_list_new(c, 2);
        if (!pair)
            return jj_oom(c);
        pair->v[0] = d->k[i], pair->v[1] = d->v[i];
        l->v[i] = (jv){.t = JV_LIST, .tuple = 1, .u.l = pair};
    }
    *out = (jv){.t = JV_LIST, .u.l = l};
    return 0;
}

static int f_string_op(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out)
{
    jv s;
    int rc = jj_want_str(c, x, &s);
    if (rc)
        return rc;
    switch (id) {
    case F_UPPER: return jj_case(c, s, CASE_UPPER, out);
    case F_LOWER: return jj_case(c, s, CASE_LOWER, out);
    case F_CAPITALIZE: return jj_case(c, s, CASE_CAPITALIZE, out);
    case F_TITLE: return jj_case(c, s, CASE_TITLE_JINJA, out);
    case F_TRIM: *out = jj_strip(s, jj_arg(a, 0, "chars"), 3); return 0;
    case F_REPLACE: {
        const jv *old = jj_arg(a, 0, "old"), *with = jj_arg(a, 1, "new"), *count = jj_arg(a, 2, "count");
        jv os, ws;
        if (!old || !with)
            return jj_fail(c, TPI_EINVAL, "replace takes old and new strings");
        if ((rc = jj_want_str(c, *old, &os)) || (rc = jj_want_str(c, *with, &ws)))
            return rc;
        return jj_replace(c, s, os, ws, count && count->t == JV_INT ? count->u.i : -1, out);
    }
    case F_WORDCOUNT: {
        int64_t words = 0;
        int in = 0;
        for (size_t i = 0; i < s.u.s.n; i++) {
            unsigned char ch = (unsigned char)s.u.s.p[i];
            int w = ch == '_' || ch >= 0x80 || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z');
            words += w && !in;
            in = w;
        }
        *out = jv_int(words);
        return 0;
    }
    default: return jj_fail(c, TPI_EINVAL, "bad string filter");
    }
}

int jj_apply_filter(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out)
{
    const jv *v;
    switch (id) {
    case F_DEFAULT:
    case F_D:
        v = jj_arg(a, 0, "default_value");
        *out = x;
        if (x.t == JV_UNDEF || (bool_arg(jj_arg(a, 1, "boolean"), 0) && !jv_truthy(x)))
            *out = v ? *v : jv_str("", 0);
        return 0;
    case F_LENGTH:
    case F_COUNT: return f_length(c, x, out);
    case F_STRING: return jv_to_str(c, x, out);
    case F_SAFE: {
        int rc = jv_to_str(c, x, out);
        out->markup = !rc;
        return rc;
    }
    case F_TOJSON: return f_tojson(c, x, a, out);
    case F_INT: return f_int(c, x, a, out);
    case F_FLOAT: return f_float(c, x, a, out);
    case F_ROUND: return f_round(c, x, a, out);
    case F_ABS:
        if (x.t == JV_INT && x.u.i != INT64_MIN)
            *out = jv_int(x.u.i < 0 ? -x.u.i : x.u.i);
        else if (x.t == JV_FLOAT)
            *out = jv_float(fabs(x.u.f));
        else if (x.t == JV_BOOL)
            *out = jv_int(x.u.b);
        else
            return jj_fail(c, TPI_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(x));
        return 0;
    case F_E:
    case F_ESCAPE:
    case F_FORCEESCAPE: return jj_html_escape(c, x, id == F_FORCEESCAPE, out);
    case F_INDENT: return f_indent(c, x, a, out);
    case F_TRUNCATE: return f_truncate(c, x, a, out);
    case F_CENTER: return f_center(c, x, a, out);
    case F_FORMAT: return f_format(c, x, a, out);
    case F_ITEMS: return f_items(c, x, out);
    case F_ATTR:
        v = jj_arg(a, 0, "name");
        if (!v || v->t != JV_STR)
            return jj_fail(c, TPI_EINVAL, "attr takes a name");
        *out = jv_undef(NULL); /* jinja2's do_attr is Python's getattr: no dict keys */
        if (x.t == JV_NS || x.t == JV_LOOP || x.t == JV_UNDEF)
            return jj_getitem(c, x, *v, out);
        return 0;
    case F_UPPER:
    case F_LOWER:
    case F_CAPITALIZE:
    case F_TITLE:
    case F_TRIM:
    case F_REPLACE:
    case F_WORDCOUNT: return f_string_op(c, id, x, a, out);
    default: return jj_seq_filter(c, id, x, a, out);
    }
}
