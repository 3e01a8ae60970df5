/* Python's str operations over UTF-8: case mapping (utf8proc's simple
 * mappings), strip, split, replace, find, and the str methods templates call
 * (`.strip()`, `.split()`, `.startswith()`, ...). */
#include <string.h>
#include <utf8proc.h>

#include "chat/jinja.h"
#include "core/error.h"

static int is_cased_letter(utf8proc_int32_t cp)
{
    return utf8proc_toupper(cp) != cp || utf8proc_tolower(cp) != cp;
}

static int title_sep(utf8proc_int32_t cp)
{
    /* jinja2's do_title splits words at runs of [-\s({\[<] */
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || cp == ' ' || (cp >= 9 && cp <= 13);
}

int jj_case(jj_ctx *c, jv s, int mode, jv *out)
{
    jj_buf b;
    jj_buf_init(&b, c);
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s.u.s.p;
    size_t i = 0;
    int word_start = 1;
    while (i < s.u.s.n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(s.u.s.n - i), &cp);
        if (len <= 0) { /* not UTF-8: the byte passes unchanged */
            jj_buf_add(&b, s.u.s.p + i, 1);
            i++;
            continue;
        }
        int upper = mode == CASE_UPPER || (mode == CASE_CAPITALIZE && i == 0) ||
                    ((mode == CASE_TITLE_JINJA || mode == CASE_TITLE_PY) && word_start);
        utf8proc_int32_t m = upper ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        if (mode == CASE_TITLE_JINJA)
            word_start = title_sep(cp);
        else if (mode == CASE_TITLE_PY)
            word_start = !is_cased_letter(cp);
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t k = utf8proc_encode_char(m, enc);
        jj_buf_add(&b, (const char *)enc, (size_t)k);
        i += (size_t)len;
    }
    return jj_buf_done(&b, out);
}

static int in_chars(const char *p, size_t len, const jv *chars)
{
    for (size_t i = 0; i + len <= chars->u.s.n;) {
        size_t l = jj_utf8_offset(chars->u.s.p + i, chars->u.s.n - i, 1);
        if (l == len && !memcmp(chars->u.s.p + i, p, len))
            return 1;
        i += l ? l : 1;
    }
    return 0;
}

jv jj_strip(jv s, const jv *chars, int which)
{
    const char *p = s.u.s.p;
    size_t a = 0, e = s.u.s.n;
    if (chars && chars->t != JV_STR)
        chars = NULL;
    while ((which & 1) && a < e) {
        size_t len = jj_utf8_offset(p + a, e - a, 1);
        if (chars ? !in_chars(p + a, len, chars) : !jj_space_at(p + a, e - a))
            break;
        a += len;
    }
    while ((which & 2) && e > a) {
        size_t k = e - 1;
        while (k > a && ((unsigned char)p[k] & 0xC0) == 0x80)
            k--;
        if (chars ? !in_chars(p + k, e - k, chars) : jj_space_at(p + k, e - k) != e - k)
            break;
        e = k;
    }
    return jv_str(p + a, e - a);
}

int64_t jj_find(jv hay, jv needle, size_t from)
{
    if (needle.u.s.n == 0)
        return from <= hay.u.s.n ? (int64_t)from : -1;
    for (size_t i = from; i + needle.u.s.n <= hay.u.s.n; i++)
        if (!memcmp(hay.u.s.p + i, needle.u.s.p, needle.u.s.n))
            return (int64_t)i;
    return -1;
}

static int64_t rfind(jv hay, jv needle)
{
    if (needle.u.s.n > hay.u.s.n)
        return -1;
    for (size_t i = hay.u.s.n - needle.u.s.n + 1; i-- > 0;)
        if (!memcmp(hay.u.s.p + i, needle.u.s.p, needle.u.s.n))
            return (int64_t)i;
    return -1;
}

int jj_replace(jj_ctx *c, jv s, jv old, jv with, int64_t count, jv *out)
{
    jj_buf b;
    jj_buf_init(&b, c);
    size_t pos = 0;
    if (!old.u.s.n) { /* Python inserts `with` between characters and at both ends */
        size_t n = jj_utf8_len(s.u.s.p, s.u.s.n);
        for (size_t i = 0; i <= n; i++) {
            if (count < 0 || (int64_t)i < count)
                jj_buf_add(&b, with.u.s.p, with.u.s.n);
            if (i < n) {
                size_t l = jj_utf8_offset(s.u.s.p + pos, s.u.s.n - pos, 1);
                jj_buf_add(&b, s.u.s.p + pos, l);
                pos += l;
            }
        }
        return jj_buf_done(&b, out);
    }
    for (int64_t done = 0; count < 0 || done < count; done++) {
        int64_t k = jj_find(s, old, pos);
        if (k < 0)
            break;
        jj_buf_add(&b, s.u.s.p + pos, (size_t)k - pos);
        jj_buf_add(&b, with.u.s.p, with.u.s.n);
        pos = (size_t)k + old.u.s.n;
    }
    jj_buf_add(&b, s.u.s.p + pos, s.u.s.n - pos);
    return jj_buf_done(&b, out);
}

/* Parts of a split, collected in order (reversed afterwards for rsplit). */
typedef struct parts {
    jj_ctx *c;
    jv *v;
    size_t n, cap;
} parts;

static int add_part(parts *p, const char *s, size_t n)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        if (cap > JJ_MAX_LIST)
            return jj_fail(p->c, TPI_ELIMIT, "a list longer than %d items", JJ_MAX_LIST);
        jv *v = jj_new(p->c, cap * sizeof *v);
        if (!v)
            return jj_oom(p->c);
        if (p->n)
            memcpy(v, p->v, p->n * sizeof *v);
        p->v = v, p->cap = cap;
    }
    p->v[p->n++] = jv_str(s, n);
    return 0;
}

static int split_ws(parts *P, jv s, int64_t maxsplit, int from_right)
{
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    int rc = 0;
    if (!from_right) {
        size_t i = 0;
        for (;;) {
            while (i < n && jj_space_at(p + i, n - i))
                i += jj_space_at(p + i, n - i);
            if (i >= n)
                break;
            if (maxsplit >= 0 && (int64_t)P->n == maxsplit) {
                jv rest = jj_strip(jv_str(p + i, n - i), NULL, 2);
                return add_part(P, rest.u.s.p, rest.u.s.n);
            }
            size_t st = i;
            while (i < n && !jj_space_at(p + i, n - i))
                i += jj_utf8_offset(p + i, n - i, 1);
            if ((rc = add_part(P, p + st, i - st)))
                return rc;
        }
        return 0;
    }
    size_t e = n;
    for (;;) {
        jv t = jj_strip(jv_str(p, e), NULL, 2);
        e = t.u.s.n;
        if (!e)
            break;
        if (maxsplit >= 0 && (int64_t)P->n == maxsplit)
            return add_part(P, p, e);
        size_t st = e;
        while (st > 0) {
            size_t k = st - 1;
            while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
                k--;
            if (jj_space_at(p + k, st - k) == st - k)
                break;
            st = k;
        }
        if ((rc = add_part(P, p + st, e - st)))
            return rc;
        e = st;
    }
    return 0;
}

int jj_split(jj_ctx *c, jv s, const jv *sep, int64_t maxsplit, int from_right, jv *out)
{
    parts P = {.c = c};
    int rc = 0;
    if (sep && sep->t == JV_NONE)
        sep = NULL;
    if (sep && (sep->t != JV_STR || !sep->u.s.n))
        return jj_fail(c, TPI_EINVAL, "split takes a non-empty string separator");
    if (!sep) {
        rc = split_ws(&P, s, maxsplit, from_right);
    } else if (!from_right) {
        size_t pos = 0;
        int64_t k;
        while (!rc && (maxsplit < 0 || (int64_t)P.n < maxsplit) && (k = jj_find(s, *sep, pos)) >= 0) {
            rc = add_part(&P, s.u.s.p + pos, (size_t)k - pos);
            pos = (size_t)k + sep->u.s.n;
        }
        if (!rc)
            rc = add_part(&P, s.u.s.p + pos, s.u.s.n - pos);
    } else {
        jv rest = s;
        int64_t k;
        while (!rc && (maxsplit < 0 || (int64_t)P.n < maxsplit) && (k = rfind(rest, *sep)) >= 0) {
            size_t after = (size_t)k + sep->u.s.n;
            rc = add_part(&P, rest.u.s.p + after, rest.u.s.n - after);
            rest.u.s.n = (size_t)k;
        }
        if (!rc)
            rc = add_part(&P, rest.u.s.p, rest.u.s.n);
    }
    if (rc)
        return rc;
    if (from_right)
        for (size_t i = 0; i < P.n / 2; i++) {
            jv t = P.v[i];
            P.v[i] = P.v[P.n - 1 - i], P.v[P.n - 1 - i] = t;
        }
    jj_list *l = jj_list_new(c, 0);
    if (!l)
        return jj_oom(c);
    l->v = P.v, l->n = P.n;
    *out = (jv){.t = JV_LIST, .u.l = l};
    return 0;
}

/* startswith/endswith: a string or a tuple of them. */
static int affix(jj_ctx *c, jv s, const jv *arg, int end, jv *out)
{
    if (!arg)
        return jj_fail(c, TPI_EINVAL, "%s takes a string", end ? "endswith" : "startswith");
    const jv *opts = arg;
    size_t n = 1;
    if (arg->t == JV_LIST)
        opts = arg->u.l->v, n = arg->u.l->n;
    int hit = 0;
    for (size_t i = 0; i < n; i++) {
        if (opts[i].t != JV_STR)
            return jj_fail(c, TPI_EINVAL, "%s takes strings, not %s", end ? "endswith" : "startswith",
                           jv_type_name(opts[i]));
        size_t k = opts[i].u.s.n;
        hit |= k <= s.u.s.n && !memcmp(s.u.s.p + (end ? s.u.s.n - k : 0), opts[i].u.s.p, k);
    }
    *out = jv_bool(hit);
    return 0;
}

static int str_pred(jv s, const char *name, int *res)
{
    int any = 0, all = 1, cased = 0, has_upper = 0, has_lower = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s.u.s.p;
    for (size_t i = 0; i < s.u.s.n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(s.u.s.n - i), &cp);
        if (len <= 0)
            cp = 0xFFFD, len = 1;
        utf8proc_category_t cat = utf8proc_category(cp);
        int ok = 0;
        if (!strcmp(name, "isdigit"))
            ok = cat == UTF8PROC_CATEGORY_ND;
        else if (!strcmp(name, "isalpha"))
            ok = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        else if (!strcmp(name, "isalnum"))
            ok = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || cat == UTF8PROC_CATEGORY_ND ||
                 cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
        else if (!strcmp(name, "isspace"))
            ok = jj_space_at(s.u.s.p + i, s.u.s.n - i) != 0;
        else if (!strcmp(name, "isupper") || !strcmp(name, "islower"))
            ok = 1;
        else
            return 1;
        if (is_cased_letter(cp)) {
            cased = 1;
            has_upper |= utf8proc_tolower(cp) != cp;
            has_lower |= utf8proc_toupper(cp) != cp;
        }
        any = 1;
        all &= ok;
        i += (size_t)len;
    }
    if (!strcmp(name, "isupper"))
        *res = cased && !has_lower;
    else if (!strcmp(name, "islower"))
        *res = cased && !has_upper;
    else
        *res = any && all;
    (void)has_upper;
    return 0;
}

static int int_arg(jj_ctx *c, const jv *v, int64_t dflt, int64_t *out)
{
    if (!v || v->t == JV_NONE) {
        *out = dflt;
        return 0;
    }
    if (v->t != JV_INT && v->t != JV_BOOL)
        return jj_fail(c, TPI_EINVAL, "an integer argument is required, not %s", jv_type_name(*v));
    *out = v->t == JV_INT ? v->u.i : v->u.b;
    return 0;
}

static int need_str(jj_ctx *c, const jv *v, const char *method)
{
    if (!v || v->t != JV_STR)
        return jj_fail(c, TPI_EINVAL, "str.%s takes a string argument", method);
    return 0;
}

static int str_join(jj_ctx *c, jv sep, const jv *seq, jv *out)
{
    jj_list *items;
    int rc = seq ? jv_iterate(c, *seq, &items) : jj_fail(c, TPI_EINVAL, "str.join takes an iterable");
    if (rc)
        return rc;
    jj_buf b;
    jj_buf_init(&b, c);
    for (size_t i = 0; i < items->n; i++) {
        if (items->v[i].t != JV_STR)
            return jj_fail(c, TPI_EINVAL, "sequence item %zu: expected str instance, %s found", i,
                           jv_type_name(items->v[i]));
        if (i)
            jj_buf_add(&b, sep.u.s.p, sep.u.s.n);
        jj_buf_add(&b, items->v[i].u.s.p, items->v[i].u.s.n);
    }
    return jj_buf_done(&b, out);
}

int jj_str_method(jj_ctx *c, jv s, const char *name, const jj_argv *a, jv *out)
{
    const jv *a0 = jj_arg(a, 0, NULL), *a1 = jj_arg(a, 1, NULL), *a2 = jj_arg(a, 2, NULL);
    int64_t n;
    int rc = 0, res;
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        *out = jj_strip(s, a0, name[0] == 's' ? 3 : name[0] == 'l' ? 1 : 2);
    } else if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") ||
               !strcmp(name, "capitalize")) {
        int mode = name[0] == 'u' ? CASE_UPPER : name[0] == 'l' ? CASE_LOWER : name[0] == 't' ? CASE_TITLE_PY
                                                                                                : CASE_CAPITALIZE;
        rc = jj_case(c, s, mode, out);
    } else if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
        const jv *sep = jj_arg(a, 0, "sep");
        if (!(rc = int_arg(c, jj_arg(a, 1, "maxsplit"), -1, &n)))
            rc = jj_split(c, s, sep, n, name[0] == 'r', out);
    } else if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        rc = affix(c, s, a0, name[0] == 'e', out);
    } else if (!strcmp(name, "replace")) {
        if (!(rc = need_str(c, a0, name)) && !(rc = need_str(c, a1, name)) && !(rc = int_arg(c, a2, -1, &n)))
            rc = jj_replace(c, s, *a0, *a1, n, out);
    } else if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") ||
               !strcmp(name, "count")) {
        if ((rc = need_str(c, a0, name)))
            return rc;
        int64_t k = name[0] == 'r' ? rfind(s, *a0) : jj_find(s, *a0, 0);
        if (name[0] == 'c') {
            int64_t cnt = 0;
            for (size_t pos = 0; a0->u.s.n && (k = jj_find(s, *a0, pos)) >= 0; pos = (size_t)k + a0->u.s.n)
                cnt++;
            *out = jv_int(a0->u.s.n ? cnt : (int64_t)jj_utf8_len(s.u.s.p, s.u.s.n) + 1);
        } else if (k < 0 && name[0] == 'i') {
            rc = jj_fail(c, TPI_EINVAL, "substring not found");
        } else {
            *out = jv_int(k < 0 ? -1 : (int64_t)jj_utf8_len(s.u.s.p, (size_t)k));
        }
    } else if (!strcmp(name, "join")) {
        rc = str_join(c, s, a0, out);
    } else if (!strcmp(name, "splitlines")) {
        jv nl = jv_str("\n", 1);
        jv t = s.u.s.n && s.u.s.p[s.u.s.n - 1] == '\n' ? jv_str(s.u.s.p, s.u.s.n - 1) : s;
        rc = s.u.s.n ? jj_split(c, t, &nl, -1, 0, out) : jj_split(c, s, NULL, -1, 0, out);
    } else if (!str_pred(s, name, &res)) {
        *out = jv_bool(res);
    } else {
        return 1;
    }
    return rc;
}
