/* jinja2's tests (tests.py: `is defined`, `is string`, ...) and the methods
 * of dicts, lists and loops that templates call. Methods that mutate
 * (append, update, pop, ...) fail, as in transformers'
 * ImmutableSandboxedEnvironment. */
#include <string.h>

#include "chat/filters.h"
#include "core/error.h"

#define JJ_TESTS(X)                                                                                          \
    X(T_BOOLEAN, "boolean") X(T_CALLABLE, "callable") X(T_DEFINED, "defined") X(T_DIVISIBLEBY, "divisibleby")  \
    X(T_EQ, "eq") X(T_EQUALTO, "equalto") X(T_EQ2, "==") X(T_ESCAPED, "escaped") X(T_EVEN, "even")            \
    X(T_FALSE, "false") X(T_FLOAT, "float") X(T_GE, "ge") X(T_GE2, ">=") X(T_GT, "gt") X(T_GT2, ">")           \
    X(T_GREATERTHAN, "greaterthan") X(T_IN, "in") X(T_INTEGER, "integer") X(T_ITERABLE, "iterable")           \
    X(T_LE, "le") X(T_LE2, "<=") X(T_LESSTHAN, "lessthan") X(T_LOWER, "lower") X(T_LT, "lt") X(T_LT2, "<")     \
    X(T_MAPPING, "mapping") X(T_NE, "ne") X(T_NE2, "!=") X(T_NONE, "none") X(T_NUMBER, "number")              \
    X(T_ODD, "odd") X(T_SAMEAS, "sameas") X(T_SEQUENCE, "sequence") X(T_STRING, "string") X(T_TRUE, "true")    \
    X(T_UNDEFINED, "undefined") X(T_UPPER, "upper") X(T_FILTER, "filter") X(T_TEST, "test")

enum jj_test {
#define X(id, name) id,
    JJ_TESTS(X)
#undef X
};

static const char *const test_names[] = {
#define X(id, name) name,
    JJ_TESTS(X)
#undef X
};

int jj_test_id(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof test_names / sizeof *test_names; i++)
        if (strlen(test_names[i]) == n && !memcmp(test_names[i], name, n))
            return (int)i;
    return -1;
}

int jj_test_by_name(jj_ctx *c, jv name, jv x, const jj_argv *a, int *out)
{
    int id = name.t == JV_STR ? jj_test_id(name.u.s.p, name.u.s.n) : -1;
    if (id < 0)
        return jj_fail(c, TPI_EUNSUPPORTED, "no test named '%.*s'", name.t == JV_STR ? (int)name.u.s.n : 1,
                       name.t == JV_STR ? name.u.s.p : "?");
    return jj_apply_test(c, id, x, a, out);
}

static int parity(jj_ctx *c, jv x, int64_t *v)
{
    if (x.t == JV_INT || x.t == JV_BOOL) {
        *v = x.t == JV_INT ? x.u.i : x.u.b;
        return 0;
    }
    return jj_fail(c, TPI_EINVAL, "odd/even/divisibleby take an integer, not %s", jv_type_name(x));
}

static int cmp_test(jj_ctx *c, int id, jv x, const jv *other, int *out)
{
    if (!other)
        return jj_fail(c, TPI_EINVAL, "the test '%s' takes a value to compare with", test_names[id]);
    int cmp, rc;
    switch (id) {
    case T_EQ:
    case T_EQUALTO:
    case T_EQ2: return jv_equal(c, x, *other, out);
    case T_NE:
    case T_NE2:
        rc = jv_equal(c, x, *other, out);
        *out = !*out;
        return rc;
    default: break;
    }
    if ((rc = jv_compare(c, x, *other, &cmp)))
        return rc;
    switch (id) {
    case T_GE:
    case T_GE2: *out = cmp >= 0; break;
    case T_GT:
    case T_GT2:
    case T_GREATERTHAN: *out = cmp > 0; break;
    case T_LE:
    case T_LE2: *out = cmp <= 0; break;
    default: *out = cmp < 0; break;
    }
    return 0;
}

int jj_apply_test(jj_ctx *c, int id, jv x, const jj_argv *a, int *out)
{
    const jv *a0 = jj_arg(a, 0, NULL);
    int64_t v = 0;
    int rc;
    jv t;
    switch (id) {
    case T_DEFINED: *out = x.t != JV_UNDEF; return 0;
    case T_UNDEFINED: *out = x.t == JV_UNDEF; return 0;
    case T_NONE: *out = x.t == JV_NONE; return 0;
    case T_BOOLEAN: *out = x.t == JV_BOOL; return 0;
    case T_TRUE: *out = x.t == JV_BOOL && x.u.b; return 0;
    case T_FALSE: *out = x.t == JV_BOOL && !x.u.b; return 0;
    case T_INTEGER: *out = x.t == JV_INT; return 0;
    case T_FLOAT: *out = x.t == JV_FLOAT; return 0;
    case T_NUMBER: *out = x.t == JV_INT || x.t == JV_FLOAT || x.t == JV_BOOL; return 0;
    case T_STRING: *out = x.t == JV_STR; return 0;
    case T_MAPPING: *out = x.t == JV_DICT; return 0;
    case T_ITERABLE: *out = x.t == JV_STR || x.t == JV_LIST || x.t == JV_DICT || x.t == JV_UNDEF; return 0;
    case T_SEQUENCE: *out = x.t == JV_STR || x.t == JV_LIST || x.t == JV_DICT || x.t == JV_UNDEF; return 0;
    case T_CALLABLE: *out = x.t == JV_MACRO || x.t == JV_FUNC; return 0;
    case T_ESCAPED: *out = 0; return 0;
    case T_ODD:
    case T_EVEN:
        if ((rc = parity(c, x, &v)))
            return rc;
        *out = (v & 1) == (id == T_ODD);
        return 0;
    case T_DIVISIBLEBY: {
        int64_t d = 1;
        if ((rc = parity(c, x, &v)) || (rc = a0 ? parity(c, *a0, &d) : jj_fail(c, TPI_EINVAL, "divisibleby takes a number")))
            return rc;
        if (d == 0)
            return jj_fail(c, TPI_EINVAL, "integer division or modulo by zero");
        *out = d == -1 || v % d == 0;
        return 0;
    }
    case T_IN: {
        if (!a0)
            return jj_fail(c, TPI_EINVAL, "the test 'in' takes a sequence");
        jj_list *items;
        if (a0->t == JV_STR) {
            if (x.t != JV_STR)
                return jj_fail(c, TPI_EINVAL, "'in <string>' requires string as left operand");
            *out = jj_find(*a0, x, 0) >= 0;
            return 0;
        }
        if (a0->t == JV_DICT) {
            *out = jj_dict_find(c, a0->u.d, x) != NULL;
            return 0;
        }
        if ((rc = jv_iterate(c, *a0, &items)))
            return rc;
        *out = 0;
        for (size_t i = 0; i < items->n && !*out && !rc; i++)
            rc = jv_equal(c, x, items->v[i], out);
        return rc;
    }
    case T_SAMEAS:
        if (!a0)
            return jj_fail(c, TPI_EINVAL, "sameas takes a value");
        /* Python's `is`: containers by identity, scalars (interned or cached in CPython) by value */
        if (x.t == a0->t && (x.t == JV_LIST || x.t == JV_DICT || x.t == JV_NS)) {
            *out = x.u.l == a0->u.l;
            return 0;
        }
        if (x.t != a0->t) {
            *out = 0;
            return 0;
        }
        return jv_equal(c, x, *a0, out);
    case T_LOWER:
    case T_UPPER: /* jinja2 tests str(value) */
        if ((rc = jj_want_str(c, x, &x)))
            return rc;
        rc = jj_str_method(c, x, id == T_LOWER ? "islower" : "isupper", a, &t);
        *out = !rc && t.u.b;
        return rc < 0 ? rc : 0;
    case T_FILTER:
    case T_TEST:
        *out = x.t == JV_STR && (id == T_FILTER ? jj_filter_id(x.u.s.p, x.u.s.n) : jj_test_id(x.u.s.p, x.u.s.n)) >= 0;
        return 0;
    default: return cmp_test(c, id, x, a0, out);
    }
}

static int dict_method(jj_ctx *c, jv self, const char *name, const jj_argv *a, jv *out)
{
    const jj_dict *d = self.u.d;
    if (!strcmp(name, "items"))
        return jj_dict_items(c, d, out);
    if (!strcmp(name, "keys") || !strcmp(name, "values")) {
        jj_list *l = jj_list_new(c, d->n);
        if (!l)
            return jj_oom(c);
        memcpy(l->v, name[0] == 'k' ? d->k : d->v, d->n * sizeof *l->v);
        *out = (jv){.t = JV_LIST, .u.l = l};
        return 0;
    }
    if (!strcmp(name, "get")) {
        const jv *key = jj_arg(a, 0, NULL), *dflt = jj_arg(a, 1, NULL);
        if (!key)
            return jj_fail(c, TPI_EINVAL, "get expected at least 1 argument, got 0");
        jv *v = jj_dict_find(c, d, *key);
        *out = v ? *v : dflt ? *dflt : jv_none();
        return 0;
    }
    return 1;
}

static int list_method(jj_ctx *c, jv self, const char *name, const jj_argv *a, jv *out)
{
    const jv *x = jj_arg(a, 0, NULL);
    if (strcmp(name, "index") && strcmp(name, "count"))
        return 1;
    if (!x)
        return jj_fail(c, TPI_EINVAL, "list.%s takes one argument", name);
    int64_t count = 0, first = -1;
    for (size_t i = 0; i < self.u.l->n; i++) {
        int eq, rc = jv_equal(c, self.u.l->v[i], *x, &eq);
        if (rc)
            return rc;
        if (eq && first < 0)
            first = (int64_t)i;
        count += eq;
    }
    if (name[0] == 'i' && first < 0)
        return jj_fail(c, TPI_EINVAL, "list.index(x): x not in list");
    *out = jv_int(name[0] == 'i' ? first : count);
    return 0;
}

int jj_call_method(jj_ctx *c, jv self, const char *name, const jj_argv *a, jv *out)
{
    static const char *const mutating[] = {"append", "extend", "insert", "pop", "remove", "clear", "update",
                                           "setdefault", "popitem", "sort", "reverse", NULL};
    int rc = 1;
    if (self.t == JV_STR)
        rc = jj_str_method(c, self, name, a, out);
    else if (self.t == JV_DICT)
        rc = dict_method(c, self, name, a, out);
    else if (self.t == JV_LIST)
        rc = list_method(c, self, name, a, out);
    else if (self.t == JV_LOOP && !strcmp(name, "cycle")) {
        if (!a->n_pos)
            return jj_fail(c, TPI_EINVAL, "no items for cycling given");
        jv idx;
        jj_getattr(c, self, "index0", &idx);
        *out = a->pos[(size_t)idx.u.i % a->n_pos];
        return 0;
    }
    if (rc == 1 && (self.t == JV_LIST || self.t == JV_DICT))
        for (int i = 0; mutating[i]; i++)
            if (!strcmp(name, mutating[i]))
                return jj_fail(c, TPI_EINVAL, "access to attribute '%s' of '%s' object is unsafe (templates cannot "
                               "change lists and dicts)", name, jv_type_name(self));
    return rc;
}
