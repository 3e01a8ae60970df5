/* Python's operators over template values: arithmetic (ints stay ints
 * and overflow is an error, `/` is a float, `//` and `%` follow the divisor's
 * sign), concatenation and repetition of strings and lists (bounded), `in`,
 * and comparisons. */
#include <math.h>
#include <string.h>

#include "chat/jinja.h"
#include "core/error.h"

static int is_num(jv v)
{
    return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
}

static double as_f(jv v)
{
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
}

static int64_t as_i(jv v)
{
    return v.t == JV_INT ? v.u.i : v.u.b;
}

static int repeat(jj_ctx *c, jv seq, int64_t times, jv *out)
{
    if (times < 0)
        times = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && times > (int64_t)(JJ_MAX_OUTPUT / seq.u.s.n))
            return jj_fail(c, TPI_ELIMIT, "a string longer than %d MiB", JJ_MAX_OUTPUT >> 20);
        jj_buf b;
        jj_buf_init(&b, c);
        for (int64_t i = 0; i < times; i++)
            jj_buf_add(&b, seq.u.s.p, seq.u.s.n);
        return jj_buf_done(&b, out);
    }
    size_t n = seq.u.l->n;
    if (n && times > (int64_t)(JJ_MAX_LIST / n))
        return jj_fail(c, TPI_ELIMIT, "a list longer than %d items", JJ_MAX_LIST);
    jj_list *l = jj_list_new(c, n * (size_t)times);
    if (!l)
        return jj_oom(c);
    for (int64_t i = 0; i < times; i++)
        memcpy(l->v + (size_t)i * n, seq.u.l->v, n * sizeof *l->v);
    *out = (jv){.t = JV_LIST, .tuple = seq.tuple, .u.l = l};
    return 0;
}

static int concat(jj_ctx *c, jv a, jv b, jv *out)
{
    if (a.t == JV_STR) {
        jj_buf s;
        jj_buf_init(&s, c);
        jj_buf_add(&s, a.u.s.p, a.u.s.n);
        jj_buf_add(&s, b.u.s.p, b.u.s.n);
        return jj_buf_done(&s, out);
    }
    if (a.u.l->n + b.u.l->n > JJ_MAX_LIST)
        return jj_fail(c, TPI_ELIMIT, "a list longer than %d items", JJ_MAX_LIST);
    jj_list *l = jj_list_new(c, a.u.l->n + b.u.l->n);
    if (!l)
        return jj_oom(c);
    if (a.u.l->n)
        memcpy(l->v, a.u.l->v, a.u.l->n * sizeof *l->v);
    if (b.u.l->n)
        memcpy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof *l->v);
    *out = (jv){.t = JV_LIST, .tuple = a.tuple, .u.l = l};
    return 0;
}

static int int_arith(jj_ctx *c, int op, int64_t x, int64_t y, jv *out)
{
    int64_t r = 0;
    int ovf = 0;
    switch (op) {
    case OP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
    case OP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
    case OP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (y == 0)
            return jj_fail(c, TPI_EINVAL, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
            ovf = op == OP_FLOORDIV;
            break;
        }
        r = op == OP_FLOORDIV ? x / y - ((x % y != 0) && ((x < 0) != (y < 0))) : x % y;
        if (op == OP_MOD && r != 0 && ((r < 0) != (y < 0)))
            r += y;
        break;
    case OP_POW:
        if (y < 0) {
            *out = jv_float(pow((double)x, (double)y));
            return 0;
        }
        r = 1;
        for (int64_t k = 0; k < y && !ovf; k++) {
            ovf = __builtin_mul_overflow(r, x, &r);
            if (r == 0 || r == 1 || (r == -1 && k + 1 < y))
                k = r == -1 ? k : y; /* 0 and 1 stay; -1 alternates */
        }
        if (!ovf && x == -1)
            r = (y % 2) ? -1 : 1;
        break;
    default: break;
    }
    if (ovf)
        return jj_fail(c, TPI_EINVAL, "integer overflow");
    *out = jv_int(r);
    return 0;
}

static int float_arith(jj_ctx *c, int op, double x, double y, jv *out)
{
    double r;
    switch (op) {
    case OP_ADD: r = x + y; break;
    case OP_SUB: r = x - y; break;
    case OP_MUL: r = x * y; break;
    case OP_POW: r = pow(x, y); break;
    default:
        if (y == 0)
            return jj_fail(c, TPI_EINVAL, "division by zero");
        if (op == OP_DIV) {
            r = x / y;
        } else if (op == OP_FLOORDIV) {
            r = floor(x / y);
        } else {
            r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0)))
                r += y;
        }
    }
    *out = jv_float(r);
    return 0;
}

int jj_binop(jj_ctx *c, int op, jv a, jv b, jv *out)
{
    if (op == OP_CONCAT) {
        jv sa, sb;
        int rc = jv_to_str(c, a, &sa);
        if (!rc)
            rc = jv_to_str(c, b, &sb);
        return rc ? rc : concat(c, sa, sb, out);
    }
    if (a.t == JV_UNDEF)
        return jj_undefined_error(c, a);
    if (b.t == JV_UNDEF)
        return jj_undefined_error(c, b);
    if (is_num(a) && is_num(b)) {
        if (op == OP_DIV)
            return float_arith(c, op, as_f(a), as_f(b), out);
        if (a.t != JV_FLOAT && b.t != JV_FLOAT)
            return int_arith(c, op, as_i(a), as_i(b), out);
        return float_arith(c, op, as_f(a), as_f(b), out);
    }
    if (op == OP_MOD && a.t == JV_STR) {
        int tuple = b.t == JV_LIST && b.tuple;
        return jj_percent_format(c, a, tuple ? b.u.l->v : &b, tuple ? b.u.l->n : 1, out);
    }
    if (op == OP_ADD && a.t == JV_STR && b.t == JV_STR && (a.markup || b.markup)) {
        /* Markup + str escapes the str (markupsafe), even with autoescape off */
        int rc = jj_html_escape(c, a, 0, &a);
        if (!rc)
            rc = jj_html_escape(c, b, 0, &b);
        if (!rc)
            rc = concat(c, a, b, out);
        out->markup = 1;
        return rc;
    }
    if (op == OP_ADD && a.t == b.t && (a.t == JV_STR || a.t == JV_LIST))
        return concat(c, a, b, out);
    if (op == OP_MUL && (a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
        return repeat(c, a, as_i(b), out);
    if (op == OP_MUL && (b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
        return repeat(c, b, as_i(a), out);
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    return jj_fail(c, TPI_EINVAL, "unsupported operand type(s) for %s: '%s' and '%s'", names[op], jv_type_name(a),
                   jv_type_name(b));
}

/* Python's `a in b`. */
static int contains(jj_ctx *c, jv a, jv b, int *res)
{
    *res = 0;
    if (b.t == JV_STR) {
        if (a.t != JV_STR)
            return jj_fail(c, TPI_EINVAL, "'in <string>' requires string as left operand, not %s", jv_type_name(a));
        if (!a.u.s.n) {
            *res = 1;
            return 0;
        }
        for (size_t i = 0; i + a.u.s.n <= b.u.s.n && !*res; i++)
            *res = !memcmp(b.u.s.p + i, a.u.s.p, a.u.s.n);
        return 0;
    }
    if (b.t == JV_DICT) {
        *res = jj_dict_find(c, b.u.d, a) != NULL;
        return 0;
    }
    if (b.t == JV_UNDEF)
        return 0;
    if (b.t != JV_LIST)
        return jj_fail(c, TPI_EINVAL, "argument of type '%s' is not iterable", jv_type_name(b));
    for (size_t i = 0; i < b.u.l->n && !*res; i++) {
        int rc = jv_equal(c, a, b.u.l->v[i], res);
        if (rc)
            return rc;
    }
    return 0;
}

int jj_compare(jj_ctx *c, int op, jv a, jv b, int *res)
{
    int rc, cmp;
    switch (op) {
    case OP_EQ:
    case OP_NE:
        rc = jv_equal(c, a, b, res);
        *res ^= op == OP_NE;
        return rc;
    case OP_IN:
    case OP_NOTIN:
        rc = contains(c, a, b, res);
        *res ^= op == OP_NOTIN;
        return rc;
    default:
        if ((rc = jv_compare(c, a, b, &cmp)))
            return rc;
        *res = op == OP_LT ? cmp < 0 : op == OP_LE ? cmp <= 0 : op == OP_GT ? cmp > 0 : cmp >= 0;
        return 0;
    }
}
