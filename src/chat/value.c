/* The render arena, errors, growing strings, and the value operations that
 * follow Python: truthiness, ==, <, iteration, UTF-8 lengths. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "core/error.h"

struct jj_chunk {
    jj_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

void *jj_alloc(jj_arena *a, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes > a->cap || a->total > a->cap - bytes) {
        a->over_cap = 1;
        return NULL;
    }
    jj_chunk *h = a->head;
    if (!h || h->size - h->used < bytes) {
        size_t size = bytes > 65536 ? bytes : 65536;
        h = malloc(sizeof *h + size);
        if (!h)
            return NULL;
        h->next = a->head, h->used = 0, h->size = size;
        a->head = h;
    }
    void *p = h->data + h->used;
    h->used += bytes;
    a->total += bytes;
    memset(p, 0, bytes);
    return p;
}

void jj_arena_free(jj_arena *a)
{
    for (jj_chunk *h = a->head, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    a->head = NULL;
    a->total = 0;
}

int jj_fail(jj_ctx *c, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tpi_err(c->err, code, "%s:%d: %s", c->name, c->line, msg);
}

int jj_oom(jj_ctx *c)
{
    if (c->arena.over_cap)
        return jj_fail(c, TPI_ELIMIT, "the render needs more than %d MiB of memory", JJ_MAX_ARENA >> 20);
    return jj_fail(c, TPI_ENOMEM, "out of memory");
}

void *jj_new(jj_ctx *c, size_t bytes)
{
    return jj_alloc(&c->arena, bytes);
}

int jj_enter(jj_ctx *c)
{
    if (++c->steps > JJ_MAX_STEPS) {
        c->depth++;
        return jj_fail(c, TPI_ELIMIT, "the template ran more than %d steps", JJ_MAX_STEPS);
    }
    if (++c->depth > JJ_MAX_DEPTH)
        return jj_fail(c, TPI_ELIMIT, "nesting deeper than %d (recursion in the template or its data)",
                       JJ_MAX_DEPTH);
    return 0;
}

/* jinja2's wording: "'x' is undefined", "'dict object' has no attribute 'x'", "'list object' has no element 3". */
int jj_undefined_error(jj_ctx *c, jv v)
{
    const char *name = v.u.s.p ? v.u.s.p : "value";
    if (v.owner && v.gen)
        return jj_fail(c, TPI_EINVAL, "'%s object' has no element %s", jv_type_name((jv){.t = v.owner}), name);
    if (v.owner)
        return jj_fail(c, TPI_EINVAL, "'%s object' has no attribute '%s'", jv_type_name((jv){.t = v.owner}), name);
    return jj_fail(c, TPI_EINVAL, "'%s' is undefined", name);
}

/* ---- strings ---- */

void jj_buf_init(jj_buf *b, jj_ctx *c)
{
    *b = (jj_buf){.c = c};
}

void jj_buf_add(jj_buf *b, const char *p, size_t n)
{
    if (b->failed || !n)
        return;
    if (n > JJ_MAX_OUTPUT || b->n + n > JJ_MAX_OUTPUT) {
        b->failed = TPI_ELIMIT;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n)
            cap *= 2;
        char *q = jj_new(b->c, cap);
        if (!q) {
            b->failed = TPI_ENOMEM;
            return;
        }
        if (b->n)
            memcpy(q, b->p, b->n);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void jj_buf_puts(jj_buf *b, const char *s)
{
    jj_buf_add(b, s, strlen(s));
}

int jj_buf_done(jj_buf *b, jv *out)
{
    if (b->failed == TPI_ELIMIT)
        return jj_fail(b->c, TPI_ELIMIT, "a string longer than %d MiB", JJ_MAX_OUTPUT >> 20);
    if (b->failed)
        return jj_oom(b->c);
    *out = jv_str(b->p ? b->p : "", b->n);
    return 0;
}

/* ---- UTF-8 ---- */

size_t jj_utf8_len(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)p[i] & 0xC0) != 0x80;
    return k;
}

size_t jj_utf8_offset(const char *p, size_t n, size_t i)
{
    size_t off = 0;
    while (off < n && i) {
        off++;
        while (off < n && ((unsigned char)p[off] & 0xC0) == 0x80)
            off++;
        i--;
    }
    return off;
}

size_t jj_space_at(const char *p, size_t n)
{
    unsigned char c0 = (unsigned char)p[0];
    if (c0 == ' ' || (c0 >= 0x09 && c0 <= 0x0D) || (c0 >= 0x1C && c0 <= 0x1F))
        return 1;
    if (n >= 2 && c0 == 0xC2 && ((unsigned char)p[1] == 0x85 || (unsigned char)p[1] == 0xA0))
        return 2;
    if (n < 3)
        return 0;
    unsigned cp = (unsigned)(c0 & 0x0F) << 12 | (unsigned)((unsigned char)p[1] & 0x3F) << 6 |
                  ((unsigned char)p[2] & 0x3F);
    if ((c0 & 0xF0) != 0xE0)
        return 0;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F || cp == 0x3000)
        return 3;
    return 0;
}

/* ---- basics ---- */

int jv_truthy(jv v)
{
    switch (v.t) {
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0 || v.gen; /* a generator is always true */
    case JV_DICT: return v.u.d->n != 0;
    case JV_UNDEF:
    case JV_NONE: return 0;
    default: return 1;
    }
}

const char *jv_type_name(jv v)
{
    static const char *const names[] = {"undefined", "NoneType", "bool", "int", "float", "str", "list",
                                        "dict", "Namespace", "Macro", "function", "LoopContext"};
    if (v.t == JV_LIST && v.tuple)
        return "tuple";
    return names[v.t];
}

jj_list *jj_list_new(jj_ctx *c, size_t n)
{
    jj_list *l = jj_new(c, sizeof *l);
    if (!l || !(l->v = jj_new(c, (n ? n : 1) * sizeof *l->v))) /* never NULL, even when empty */
        return NULL;
    l->n = n;
    return l;
}

jj_dict *jj_dict_new(jj_ctx *c, size_t cap)
{
    jj_dict *d = jj_new(c, sizeof *d);
    if (!d)
        return NULL;
    d->cap = cap ? cap : 4;
    d->k = jj_new(c, d->cap * sizeof *d->k);
    d->v = jj_new(c, d->cap * sizeof *d->v);
    return d->k && d->v ? d : NULL;
}

jv *jj_dict_get(const jj_dict *d, const char *key, size_t n)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && !memcmp(d->k[i].u.s.p, key, n))
            return &d->v[i];
    return NULL;
}

jv *jj_dict_find(jj_ctx *c, const jj_dict *d, jv key)
{
    if (key.t == JV_STR)
        return jj_dict_get(d, key.u.s.p, key.u.s.n);
    for (size_t i = 0; i < d->n; i++) {
        int eq = 0;
        if (d->k[i].t != JV_STR && !jv_equal(c, d->k[i], key, &eq) && eq)
            return &d->v[i];
    }
    return NULL;
}

int jj_dict_set(jj_ctx *c, jj_dict *d, jv key, jv val)
{
    jv *slot = jj_dict_find(c, d, key);
    if (slot) {
        *slot = val;
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        jv *k = jj_new(c, cap * sizeof *k), *v = jj_new(c, cap * sizeof *v);
        if (!k || !v)
            return jj_oom(c);
        memcpy(k, d->k, d->n * sizeof *k);
        memcpy(v, d->v, d->n * sizeof *v);
        d->k = k, d->v = v, d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
    return 0;
}

/* ---- comparison ---- */

static int is_num(jv v)
{
    return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
}

static double num_f(jv v)
{
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
}

static int64_t num_i(jv v)
{
    return v.t == JV_INT ? v.u.i : v.u.b;
}

static int str_cmp(jv a, jv b)
{
    size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
    int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
    if (r)
        return r < 0 ? -1 : 1;
    return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
}

static int num_cmp(jv a, jv b)
{
    if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y;
    }
    double x = num_f(a), y = num_f(b);
    return x < y ? -1 : x > y;
}

static int dict_equal(jj_ctx *c, const jj_dict *a, const jj_dict *b, int *eq)
{
    *eq = a->n == b->n;
    for (size_t i = 0; i < a->n && *eq; i++) {
        jv *o = jj_dict_find(c, b, a->k[i]);
        if (!o) {
            *eq = 0;
            break;
        }
        int rc = jv_equal(c, a->v[i], *o, eq);
        if (rc)
            return rc;
    }
    return 0;
}

int jv_equal(jj_ctx *c, jv a, jv b, int *eq)
{
    if (is_num(a) && is_num(b)) {
        *eq = a.t == JV_FLOAT || b.t == JV_FLOAT ? num_f(a) == num_f(b) : num_i(a) == num_i(b);
        return 0;
    }
    *eq = 0;
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: *eq = 1; return 0;
    case JV_STR: *eq = a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n); return 0;
    case JV_NS: *eq = a.u.d == b.u.d; return 0;
    case JV_MACRO: *eq = a.u.m == b.u.m; return 0;
    case JV_FUNC: *eq = a.u.fn == b.u.fn; return 0;
    case JV_LOOP: *eq = a.u.loop == b.u.loop; return 0;
    default: break;
    }
    int rc = jj_enter(c);
    if (!rc && a.t == JV_LIST) {
        *eq = a.u.l->n == b.u.l->n && a.tuple == b.tuple;
        for (size_t i = 0; i < a.u.l->n && *eq && !rc; i++)
            rc = jv_equal(c, a.u.l->v[i], b.u.l->v[i], eq);
    } else if (!rc) {
        rc = dict_equal(c, a.u.d, b.u.d, eq);
    }
    jj_leave(c);
    return rc;
}

int jv_compare(jj_ctx *c, jv a, jv b, int *cmp)
{
    if (is_num(a) && is_num(b)) {
        *cmp = num_cmp(a, b);
        return 0;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        *cmp = str_cmp(a, b);
        return 0;
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        int rc = jj_enter(c);
        size_t i = 0;
        for (; !rc && i < a.u.l->n && i < b.u.l->n; i++) {
            int eq;
            rc = jv_equal(c, a.u.l->v[i], b.u.l->v[i], &eq);
            if (!rc && !eq) {
                rc = jv_compare(c, a.u.l->v[i], b.u.l->v[i], cmp);
                jj_leave(c);
                return rc;
            }
        }
        jj_leave(c);
        *cmp = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return rc;
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF)
        return jj_fail(c, TPI_EINVAL, "'%s' is undefined", a.t == JV_UNDEF && a.u.s.p ? a.u.s.p
                                                             : b.t == JV_UNDEF && b.u.s.p ? b.u.s.p : "value");
    return jj_fail(c, TPI_EINVAL, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a),
                   jv_type_name(b));
}

int jv_iterate(jj_ctx *c, jv v, jj_list **out)
{
    static jv none;
    static jj_list empty = {0, &none};
    switch (v.t) {
    case JV_UNDEF: *out = &empty; return 0;
    case JV_LIST: *out = v.u.l; return 0;
    case JV_DICT: {
        jj_list *l = jj_list_new(c, v.u.d->n);
        if (!l)
            return jj_oom(c);
        memcpy(l->v, v.u.d->k, v.u.d->n * sizeof *l->v);
        *out = l;
        return 0;
    }
    case JV_STR: {
        jj_list *l = jj_list_new(c, jj_utf8_len(v.u.s.p, v.u.s.n));
        if (!l)
            return jj_oom(c);
        for (size_t i = 0, off = 0; i < l->n; i++) {
            size_t len = jj_utf8_offset(v.u.s.p + off, v.u.s.n - off, 1);
            l->v[i] = jv_str(v.u.s.p + off, len);
            off += len;
        }
        *out = l;
        return 0;
    }
    default: return jj_fail(c, TPI_EINVAL, "'%s' object is not iterable", jv_type_name(v));
    }
}
