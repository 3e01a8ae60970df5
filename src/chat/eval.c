/* Runs a parsed template: statements with jinja2's scoping (a for body is a
 * frame of its own, if is not, a macro sees its defining frame), expressions
 * with Python's operators, and jinja2's attribute and item lookup. Every
 * recursive step goes through jj_enter, so depth and work stay bounded. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/jinja.h"
#include "core/error.h"

struct jj_frame {
    jj_frame *parent;
    jj_dict *vars;
};

struct jj_macro {
    const jj_node *def;
    jj_frame *closure;
};

/* A for loop's state; over range() the items are not materialised (items NULL). */
struct jj_loop {
    const jj_list *items;
    size_t i, n;
    int64_t r0, step;
};

static jv loop_item(const jj_loop *l, size_t i)
{
    return l->items ? l->items->v[i] : jv_int(l->r0 + (int64_t)i * l->step);
}

enum { FLOW_NEXT = 0, FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

static int eval(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out);
static int exec_body(jj_ctx *c, jj_frame *f, jj_node *const *body, size_t n);

static jj_frame *frame_new(jj_ctx *c, jj_frame *parent)
{
    jj_frame *f = jj_new(c, sizeof *f);
    if (!f || !(f->vars = jj_dict_new(c, 4)))
        return NULL;
    f->parent = parent;
    return f;
}

static int frame_set(jj_ctx *c, jj_frame *f, const char *name, jv v)
{
    return jj_dict_set(c, f->vars, jv_str(name, strlen(name)), v);
}

static jv lookup(const jj_frame *f, const char *name)
{
    size_t n = strlen(name);
    for (; f; f = f->parent) {
        jv *v = jj_dict_get(f->vars, name, n);
        if (v)
            return *v;
    }
    return jv_undef(name);
}

int jj_root_init(jj_ctx *c)
{
    static const struct {
        const char *name;
        int fn;
    } globals[] = {{"raise_exception", JF_RAISE}, {"strftime_now", JF_STRFTIME}, {"namespace", JF_NAMESPACE},
                   {"range", JF_RANGE},           {"dict", JF_DICT}};
    jj_frame *g = frame_new(c, NULL);
    if (!g || !(c->root = frame_new(c, g)))
        return jj_oom(c);
    for (size_t i = 0; i < sizeof globals / sizeof *globals; i++) {
        jv v = {.t = JV_FUNC};
        v.u.fn = globals[i].fn;
        int rc = frame_set(c, g, globals[i].name, v);
        if (rc)
            return rc;
    }
    return 0;
}

int jj_set_var(jj_ctx *c, const char *name, jv v)
{
    return frame_set(c, c->root, name, v);
}

static int emit(jj_ctx *c, const char *p, size_t n)
{
    jj_buf_add(c->out, p, n);
    if (c->out->failed == TPI_ELIMIT)
        return jj_fail(c, TPI_ELIMIT, "the rendered text passes %d MiB", JJ_MAX_OUTPUT >> 20);
    return c->out->failed ? jj_oom(c) : 0;
}


/* ---- lookup ---- */

static int loop_attr(jj_ctx *c, const jj_loop *l, const char *name, jv *out)
{
    int64_t i = (int64_t)l->i, n = (int64_t)l->n;
    (void)c;
    if (!strcmp(name, "index"))
        *out = jv_int(i + 1);
    else if (!strcmp(name, "index0"))
        *out = jv_int(i);
    else if (!strcmp(name, "revindex"))
        *out = jv_int(n - i);
    else if (!strcmp(name, "revindex0"))
        *out = jv_int(n - i - 1);
    else if (!strcmp(name, "first"))
        *out = jv_bool(i == 0);
    else if (!strcmp(name, "last"))
        *out = jv_bool(i == n - 1);
    else if (!strcmp(name, "length"))
        *out = jv_int(n);
    else if (!strcmp(name, "depth"))
        *out = jv_int(1);
    else if (!strcmp(name, "depth0"))
        *out = jv_int(0);
    else if (!strcmp(name, "previtem"))
        *out = i > 0 ? loop_item(l, (size_t)i - 1) : jv_undef("loop.previtem");
    else if (!strcmp(name, "nextitem"))
        *out = i + 1 < n ? loop_item(l, (size_t)i + 1) : jv_undef("loop.nextitem");
    else
        *out = jv_undef(NULL);
    return 0;
}

int jj_getattr(jj_ctx *c, jv obj, const char *name, jv *out)
{
    jv *v;
    switch (obj.t) {
    case JV_UNDEF: return jj_undefined_error(c, obj);
    case JV_DICT:
    case JV_NS:
        v = jj_dict_get(obj.u.d, name, strlen(name));
        if (v) {
            *out = *v;
            return 0;
        }
        break;
    case JV_LOOP: return loop_attr(c, obj.u.loop, name, out);
    default: break;
    }
    *out = jv_undef(name);
    out->owner = obj.t;
    return 0;
}

/* Python's index i into n items (negative from the end); -1 when outside. */
static int64_t norm_index(jv key, size_t n)
{
    int64_t i = key.t == JV_BOOL ? key.u.b : key.u.i;
    if (i < 0)
        i += (int64_t)n;
    return i >= 0 && i < (int64_t)n ? i : -1;
}

int jj_getitem(jj_ctx *c, jv obj, jv key, jv *out)
{
    int int_key = key.t == JV_INT || key.t == JV_BOOL;
    *out = jv_undef(NULL);
    if (obj.t == JV_UNDEF)
        return jj_undefined_error(c, obj);
    if (obj.t == JV_LIST && int_key && !obj.gen) {
        int64_t i = norm_index(key, obj.u.l->n);
        if (i >= 0)
            *out = obj.u.l->v[i];
    } else if (obj.t == JV_STR && int_key) {
        int64_t i = norm_index(key, jj_utf8_len(obj.u.s.p, obj.u.s.n));
        if (i >= 0) {
            size_t off = jj_utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
            *out = jv_str(obj.u.s.p + off, jj_utf8_offset(obj.u.s.p + off, obj.u.s.n - off, 1));
        }
    } else if (obj.t == JV_DICT) {
        jv *v = jj_dict_find(c, obj.u.d, key);
        if (v)
            *out = *v;
    } else if ((obj.t == JV_NS || obj.t == JV_LOOP) && key.t == JV_STR) {
        char name[64];
        if (key.u.s.n < sizeof name) {
            memcpy(name, key.u.s.p, key.u.s.n);
            name[key.u.s.n] = 0;
            return jj_getattr(c, obj, name, out);
        }
    }
    if (out->t == JV_UNDEF) { /* remember what was missing, for the error if it is used */
        jv text;
        if (key.t != JV_STR && jv_to_str(c, key, &text) == 0)
            key = text;
        if (key.t == JV_STR && key.u.s.n < 256) {
            char *name = jj_new(c, key.u.s.n + 1);
            if (name) {
                memcpy(name, key.u.s.p, key.u.s.n);
                *out = jv_undef(name);
                out->owner = obj.t;
                out->gen = int_key;
            }
        }
    }
    return 0;
}

/* Python's slice [start:stop:step] over n items: the indices it selects. */
static int slice_indices(jj_ctx *c, const jv *bounds, size_t n, int64_t *start, int64_t *stop, int64_t *step)
{
    int64_t len = (int64_t)n;
    *step = 1;
    if (bounds[2].t == JV_INT)
        *step = bounds[2].u.i;
    if (*step == 0)
        return jj_fail(c, TPI_EINVAL, "slice step cannot be zero");
    int64_t lo = *step > 0 ? 0 : -1, hi = *step > 0 ? len : len - 1;
    for (int k = 0; k < 2; k++) {
        int64_t v;
        if (bounds[k].t != JV_INT) {
            v = k == 0 ? (*step > 0 ? 0 : len - 1) : (*step > 0 ? len : -1);
        } else {
            v = bounds[k].u.i < 0 ? bounds[k].u.i + len : bounds[k].u.i;
            v = v < lo ? lo : v > hi ? hi : v;
        }
        if (k == 0)
            *start = v;
        else
            *stop = v;
    }
    return 0;
}

static int eval_slice(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    jv obj, b[3] = {jv_none(), jv_none(), jv_none()};
    const jj_node *parts[3] = {n->b, n->c, n->items[0]};
    int rc = eval(c, f, n->a, &obj);
    for (int k = 0; k < 3 && !rc; k++) {
        if (parts[k])
            rc = eval(c, f, parts[k], &b[k]);
        if (!rc && b[k].t == JV_BOOL)
            b[k] = jv_int(b[k].u.b);
        if (!rc && b[k].t != JV_INT && b[k].t != JV_NONE)
            rc = jj_fail(c, TPI_EINVAL, "slice indices must be integers or None");
    }
    if (rc)
        return rc;
    if (obj.t == JV_UNDEF)
        return jj_undefined_error(c, obj);
    if ((obj.t != JV_LIST && obj.t != JV_STR) || obj.gen) /* jinja2 slices with Python's [] */
        return jj_fail(c, TPI_EINVAL, "'%s' object is not subscriptable", obj.gen ? "generator" : jv_type_name(obj));
    jj_list *src;
    if ((rc = jv_iterate(c, obj, &src)))
        return rc;
    int64_t start = 0, stop = 0, step = 1;
    if ((rc = slice_indices(c, b, src->n, &start, &stop, &step)))
        return rc;
    jj_list *l = jj_list_new(c, src->n);
    if (!l)
        return jj_oom(c);
    l->n = 0;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        l->v[l->n++] = src->v[i];
    if (obj.t == JV_LIST) {
        *out = (jv){.t = JV_LIST, .tuple = obj.tuple, .u.l = l};
        return 0;
    }
    jj_buf s;
    jj_buf_init(&s, c);
    for (size_t i = 0; i < l->n; i++)
        jj_buf_add(&s, l->v[i].u.s.p, l->v[i].u.s.n);
    return jj_buf_done(&s, out);
}

/* ---- operators ---- */

/* ---- calls ---- */

static int eval_args(jj_ctx *c, jj_frame *f, const jj_args *a, jj_argv *out)
{
    *out = (jj_argv){.n_pos = a->n_pos, .kw_names = a->kw_names, .n_kw = a->n_kw};
    if ((a->n_pos && !(out->pos = jj_new(c, a->n_pos * sizeof *out->pos))) ||
        (a->n_kw && !(out->kw = jj_new(c, a->n_kw * sizeof *out->kw))))
        return jj_oom(c);
    int rc = 0;
    for (size_t i = 0; i < a->n_pos && !rc; i++)
        rc = eval(c, f, a->pos[i], &out->pos[i]);
    for (size_t i = 0; i < a->n_kw && !rc; i++)
        rc = eval(c, f, a->kw[i], &out->kw[i]);
    return rc;
}

static int call_macro(jj_ctx *c, const jj_macro *m, const jj_argv *a, jv *out)
{
    const jj_node *def = m->def;
    jj_frame *f = frame_new(c, m->closure);
    jj_list *varargs = jj_list_new(c, a->n_pos > def->args.n_pos ? a->n_pos - def->args.n_pos : 0);
    jj_dict *kwargs = jj_dict_new(c, 4);
    if (!f || !varargs || !kwargs)
        return jj_oom(c);
    int rc = 0;
    size_t n_params = def->args.n_pos + def->args.n_kw;
    for (size_t p = 0; p < n_params && !rc; p++) {
        const char *pname = p < def->args.n_pos ? def->args.pos[p]->name : def->args.kw_names[p - def->args.n_pos];
        const jv *given = jj_arg(a, p, pname);
        jv v = jv_undef(pname);
        if (given)
            v = *given;
        else if (p >= def->args.n_pos)
            rc = eval(c, f, def->args.kw[p - def->args.n_pos], &v);
        if (!rc)
            rc = frame_set(c, f, pname, v);
    }
    for (size_t i = n_params; i < a->n_pos; i++)
        varargs->v[i - n_params] = a->pos[i];
    for (size_t k = 0; k < a->n_kw && !rc; k++) {
        int is_param = 0;
        for (size_t p = 0; p < n_params; p++) {
            const char *pname = p < def->args.n_pos ? def->args.pos[p]->name : def->args.kw_names[p - def->args.n_pos];
            is_param |= !strcmp(pname, a->kw_names[k]);
        }
        if (!is_param)
            rc = jj_dict_set(c, kwargs, jv_str(a->kw_names[k], strlen(a->kw_names[k])), a->kw[k]);
    }
    if (!rc)
        rc = frame_set(c, f, "varargs", (jv){.t = JV_LIST, .tuple = 1, .u.l = varargs});
    if (!rc)
        rc = frame_set(c, f, "kwargs", (jv){.t = JV_DICT, .u.d = kwargs});
    if (rc)
        return rc;
    jj_buf b, *saved = c->out;
    jj_buf_init(&b, c);
    c->out = &b;
    rc = exec_body(c, f, def->items, def->n);
    c->out = saved;
    return rc < 0 ? rc : jj_buf_done(&b, out);
}

static int call_strftime(jj_ctx *c, const jj_argv *a, jv *out)
{
    const jv *fmt = jj_arg(a, 0, "format");
    if (!fmt || fmt->t != JV_STR || fmt->u.s.n > 256)
        return jj_fail(c, TPI_EINVAL, "strftime_now takes a format string (at most 256 bytes)");
    char f[257], text[1024];
    memcpy(f, fmt->u.s.p, fmt->u.s.n);
    f[fmt->u.s.n] = 0;
    time_t t = (time_t)c->now;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return jj_fail(c, TPI_EINVAL, "strftime_now: the time cannot be represented");
    size_t n = strftime(text, sizeof text, f, &tm);
    char *s = jj_new(c, n + 1);
    if (!s)
        return jj_oom(c);
    memcpy(s, text, n);
    *out = jv_str(s, n);
    return 0;
}

/* range(stop) / range(start, stop[, step]): the first item, the step and the count. */
static int range_bounds(jj_ctx *c, const jj_argv *a, int64_t *r0, int64_t *step, size_t *count)
{
    int64_t r[3] = {0, 0, 1};
    if (a->n_pos < 1 || a->n_pos > 3 || a->n_kw)
        return jj_fail(c, TPI_EINVAL, "range takes 1 to 3 integers");
    for (size_t i = 0; i < a->n_pos; i++) {
        if (a->pos[i].t != JV_INT && a->pos[i].t != JV_BOOL)
            return jj_fail(c, TPI_EINVAL, "range takes integers, not %s", jv_type_name(a->pos[i]));
        r[a->n_pos == 1 ? 1 : i] = a->pos[i].t == JV_INT ? a->pos[i].u.i : a->pos[i].u.b;
    }
    if (r[2] == 0)
        return jj_fail(c, TPI_EINVAL, "range() arg 3 must not be zero");
    double n = ceil(((double)r[1] - (double)r[0]) / (double)r[2]);
    if (n > JJ_MAX_LIST)
        return jj_fail(c, TPI_ELIMIT, "range of more than %d items", JJ_MAX_LIST);
    *r0 = r[0], *step = r[2], *count = n > 0 ? (size_t)n : 0;
    return 0;
}

static int call_func(jj_ctx *c, int fn, const jj_argv *a, jv *out)
{
    int rc = 0;
    if (fn == JF_RAISE) {
        jv msg = jv_str("", 0);
        if (a->n_pos && (rc = jv_to_str(c, a->pos[0], &msg)))
            return rc;
        return tpi_err(c->err, TPI_EINVAL, "%.*s", (int)(msg.u.s.n > 1000 ? 1000 : msg.u.s.n), msg.u.s.p);
    }
    if (fn == JF_STRFTIME)
        return call_strftime(c, a, out);
    if (fn == JF_RANGE) {
        int64_t r0, step;
        size_t count;
        if ((rc = range_bounds(c, a, &r0, &step, &count)))
            return rc;
        jj_list *l = jj_list_new(c, count);
        if (!l)
            return jj_oom(c);
        for (size_t i = 0; i < l->n; i++)
            l->v[i] = jv_int(r0 + (int64_t)i * step);
        *out = (jv){.t = JV_LIST, .u.l = l};
        return 0;
    }
    jj_dict *d = jj_dict_new(c, a->n_kw + 4);
    if (!d)
        return jj_oom(c);
    for (size_t i = 0; i < a->n_pos && !rc; i++) {
        if (a->pos[i].t != JV_DICT)
            return jj_fail(c, TPI_EINVAL, "%s() takes a dict or keyword arguments",
                           fn == JF_DICT ? "dict" : "namespace");
        for (size_t k = 0; k < a->pos[i].u.d->n && !rc; k++)
            rc = jj_dict_set(c, d, a->pos[i].u.d->k[k], a->pos[i].u.d->v[k]);
    }
    for (size_t i = 0; i < a->n_kw && !rc; i++)
        rc = jj_dict_set(c, d, jv_str(a->kw_names[i], strlen(a->kw_names[i])), a->kw[i]);
    *out = (jv){.t = fn == JF_DICT ? JV_DICT : JV_NS, .u.d = d};
    return rc;
}

static int eval_call(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    jj_argv a;
    jv callee, self;
    int rc;
    if (n->a->kind == JN_ATTR) {
        if ((rc = eval(c, f, n->a->a, &self)))
            return rc;
        if (self.t == JV_UNDEF)
            return jj_undefined_error(c, self);
        if ((rc = eval_args(c, f, &n->args, &a)))
            return rc;
        c->line = n->line;
        rc = jj_call_method(c, self, n->a->name, &a, out);
        if (rc <= 0)
            return rc;
        if ((rc = jj_getattr(c, self, n->a->name, &callee)))
            return rc;
    } else {
        if ((rc = eval(c, f, n->a, &callee)) || (rc = eval_args(c, f, &n->args, &a)))
            return rc;
    }
    c->line = n->line;
    if (callee.t == JV_MACRO)
        return call_macro(c, callee.u.m, &a, out);
    if (callee.t == JV_FUNC)
        return call_func(c, callee.u.fn, &a, out);
    if (callee.t == JV_UNDEF)
        return jj_undefined_error(c, callee);
    return jj_fail(c, TPI_EINVAL, "'%s' object is not callable", jv_type_name(callee));
}

/* ---- expressions ---- */

static int eval_literal(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    int rc = 0;
    if (n->kind == JN_DICT) {
        jj_dict *d = jj_dict_new(c, n->n);
        if (!d)
            return jj_oom(c);
        for (size_t i = 0; i < n->n && !rc; i++) {
            jv k, v;
            rc = eval(c, f, n->items[i], &k);
            if (!rc)
                rc = eval(c, f, n->items2[i], &v);
            if (!rc)
                rc = jj_dict_set(c, d, k, v);
        }
        *out = (jv){.t = JV_DICT, .u.d = d};
        return rc;
    }
    jj_list *l = jj_list_new(c, n->n);
    if (!l)
        return jj_oom(c);
    for (size_t i = 0; i < n->n && !rc; i++)
        rc = eval(c, f, n->items[i], &l->v[i]);
    *out = (jv){.t = JV_LIST, .tuple = n->kind == JN_TUPLE, .u.l = l};
    return rc;
}

static int eval_cmp(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    jv left, right;
    int rc = eval(c, f, n->a, &left), res = 1;
    for (size_t i = 0; i < n->n && !rc && res; i++) {
        rc = eval(c, f, n->items[i], &right);
        c->line = n->line;
        if (!rc)
            rc = jj_compare(c, n->ops[i], left, right, &res);
        left = right;
    }
    *out = jv_bool(res);
    return rc;
}

static int eval_filter_test(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    jv x;
    jj_argv a;
    int rc = eval(c, f, n->a, &x);
    if (!rc)
        rc = eval_args(c, f, &n->args, &a);
    if (rc)
        return rc;
    c->line = n->line;
    if (n->kind == JN_FILTER)
        return jj_apply_filter(c, n->op, x, &a, out);
    int res;
    rc = jj_apply_test(c, n->op, x, &a, &res);
    *out = jv_bool(res ^ n->neg);
    return rc;
}

static int eval_node(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    jv a, b;
    int rc;
    switch (n->kind) {
    case JN_LIT: *out = n->lit; return 0;
    case JN_NAME: *out = lookup(f, n->name); return 0;
    case JN_ATTR:
        if ((rc = eval(c, f, n->a, &a)))
            return rc;
        c->line = n->line;
        return jj_getattr(c, a, n->name, out);
    case JN_ITEM:
        if ((rc = eval(c, f, n->a, &a)) || (rc = eval(c, f, n->b, &b)))
            return rc;
        c->line = n->line;
        return jj_getitem(c, a, b, out);
    case JN_SLICE: return eval_slice(c, f, n, out);
    case JN_CALL: return eval_call(c, f, n, out);
    case JN_FILTER:
    case JN_TEST: return eval_filter_test(c, f, n, out);
    case JN_NOT:
        rc = eval(c, f, n->a, &a);
        *out = jv_bool(!jv_truthy(a));
        return rc;
    case JN_AND:
    case JN_OR:
        if ((rc = eval(c, f, n->a, out)))
            return rc;
        if (jv_truthy(*out) == (n->kind == JN_AND))
            return eval(c, f, n->b, out);
        return 0;
    case JN_NEG:
    case JN_POS:
        if ((rc = eval(c, f, n->a, &a)))
            return rc;
        c->line = n->line;
        if (a.t != JV_INT && a.t != JV_FLOAT && a.t != JV_BOOL)
            return a.t == JV_UNDEF ? jj_undefined_error(c, a)
                                   : jj_fail(c, TPI_EINVAL, "bad operand type for unary -: '%s'", jv_type_name(a));
        if (n->kind == JN_POS)
            *out = a.t == JV_BOOL ? jv_int(a.u.b) : a;
        else if (a.t == JV_FLOAT)
            *out = jv_float(-a.u.f);
        else
            return jj_binop(c, OP_SUB, jv_int(0), a, out);
        return 0;
    case JN_BIN:
        if ((rc = eval(c, f, n->a, &a)) || (rc = eval(c, f, n->b, &b)))
            return rc;
        c->line = n->line;
        return jj_binop(c, n->op, a, b, out);
    case JN_CMP: return eval_cmp(c, f, n, out);
    case JN_COND:
        if ((rc = eval(c, f, n->a, &a)))
            return rc;
        if (jv_truthy(a))
            return eval(c, f, n->b, out);
        if (n->c)
            return eval(c, f, n->c, out);
        *out = jv_undef(NULL);
        return 0;
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT: return eval_literal(c, f, n, out);
    default: return jj_fail(c, TPI_EINVAL, "not an expression");
    }
}

static int eval(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out)
{
    c->line = n->line;
    int rc = jj_enter(c);
    if (!rc)
        rc = eval_node(c, f, n, out);
    jj_leave(c);
    return rc;
}

/* ---- statements ---- */

static int assign(jj_ctx *c, jj_frame *f, const char *const *names, size_t n_names, jv v)
{
    if (n_names == 1)
        return frame_set(c, f, names[0], v);
    jj_list *items;
    int rc = jv_iterate(c, v, &items);
    if (rc)
        return rc;
    if (items->n != n_names)
        return jj_fail(c, TPI_EINVAL, "cannot unpack %zu values into %zu names", items->n, n_names);
    for (size_t i = 0; i < n_names && !rc; i++)
        rc = frame_set(c, f, names[i], items->v[i]);
    return rc;
}

/* The items a for loop walks into *loop; `for i in range(n)` without a
 * filter walks the numbers without building the list. */
static int loop_items(jj_ctx *c, jj_frame *f, const jj_node *n, jj_frame *body, jj_loop *loop)
{
    jv seq, fn = n->a->kind == JN_CALL && n->a->a->kind == JN_NAME ? lookup(f, n->a->a->name) : jv_none();
    jj_list *items;
    int rc;
    if (fn.t == JV_FUNC && fn.u.fn == JF_RANGE && !n->b) {
        jj_argv a;
        if ((rc = eval_args(c, f, &n->a->args, &a)))
            return rc;
        c->line = n->line;
        return range_bounds(c, &a, &loop->r0, &loop->step, &loop->n);
    }
    if ((rc = eval(c, f, n->a, &seq)))
        return rc;
    if (seq.t == JV_NONE)
        return jj_fail(c, TPI_EINVAL, "'NoneType' object is not iterable");
    if ((rc = jv_iterate(c, seq, &items)))
        return rc;
    if (n->b) { /* `for x in xs if cond`: the loop sees only the items kept */
        jj_list *kept = jj_list_new(c, items->n);
        if (!kept)
            return jj_oom(c);
        kept->n = 0;
        for (size_t i = 0; i < items->n && !rc; i++) {
            jv keep;
            body->vars->n = 0;
            rc = assign(c, body, n->names, n->n_names, items->v[i]);
            if (!rc)
                rc = eval(c, body, n->b, &keep);
            if (!rc && jv_truthy(keep))
                kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    loop->items = items;
    loop->n = items->n;
    return rc;
}

static int exec_for(jj_ctx *c, jj_frame *f, const jj_node *n)
{
    jj_frame *body = frame_new(c, f);
    jj_loop *loop = jj_new(c, sizeof *loop);
    if (!body || !loop)
        return jj_oom(c);
    int rc = loop_items(c, f, n, body, loop);
    if (rc)
        return rc;
    if (!loop->n)
        return exec_body(c, f, n->items2, n->n2);
    for (size_t i = 0; i < loop->n; i++) {
        loop->i = i;
        body->vars->n = 0;
        c->line = n->line;
        rc = jj_enter(c);
        if (!rc)
            rc = assign(c, body, n->names, n->n_names, loop_item(loop, i));
        if (!rc)
            rc = frame_set(c, body, "loop", (jv){.t = JV_LOOP, .u.loop = loop});
        if (!rc)
            rc = exec_body(c, body, n->items, n->n);
        jj_leave(c);
        if (rc < 0 || rc == FLOW_BREAK)
            break;
    }
    return rc < 0 ? rc : 0;
}

static int exec_set(jj_ctx *c, jj_frame *f, const jj_node *n)
{
    jv v;
    int rc;
    if (n->kind == JN_SET_BLOCK) {
        jj_buf b, *saved = c->out;
        jj_buf_init(&b, c);
        c->out = &b;
        rc = exec_body(c, f, n->items, n->n);
        c->out = saved;
        if (rc < 0 || (rc = jj_buf_done(&b, &v)))
            return rc;
        return frame_set(c, f, n->names[0], v);
    }
    if ((rc = eval(c, f, n->a, &v)))
        return rc;
    c->line = n->line;
    if (n->kind == JN_SET)
        return assign(c, f, n->names, n->n_names, v);
    jv ns = lookup(f, n->names[0]);
    if (ns.t != JV_NS)
        return jj_fail(c, TPI_EINVAL, "cannot assign attribute on non-namespace object '%s'", n->names[0]);
    return jj_dict_set(c, ns.u.d, jv_str(n->names[1], strlen(n->names[1])), v);
}

/* {% with %}: values from the enclosing scope, body in a scope of its own. */
static int exec_with(jj_ctx *c, jj_frame *f, const jj_node *n)
{
    jj_frame *inner = frame_new(c, f);
    if (!inner)
        return jj_oom(c);
    int rc = 0;
    for (size_t i = 0; i < n->args.n_kw && !rc; i++) {
        jv v;
        rc = eval(c, f, n->args.kw[i], &v);
        if (!rc)
            rc = frame_set(c, inner, n->args.kw_names[i], v);
    }
    return rc ? rc : exec_body(c, inner, n->items, n->n);
}

/* {% filter %}: the body's text through the filter chain. */
static int exec_filter_block(jj_ctx *c, jj_frame *f, const jj_node *n)
{
    jj_buf b, *saved = c->out;
    jj_buf_init(&b, c);
    c->out = &b;
    int rc = exec_body(c, f, n->items, n->n);
    c->out = saved;
    jv text, v;
    jj_frame *inner = frame_new(c, f);
    if (rc || (rc = jj_buf_done(&b, &text)))
        return rc;
    if (!inner)
        return jj_oom(c);
    if ((rc = frame_set(c, inner, JJ_FILTER_BODY, text)) || (rc = eval(c, inner, n->a, &v)))
        return rc;
    if (v.t == JV_STR)
        return emit(c, v.u.s.p, v.u.s.n);
    rc = jv_write_str(c, c->out, v);
    return rc ? rc : emit(c, "", 0);
}

static int exec_node(jj_ctx *c, jj_frame *f, const jj_node *n)
{
    jv v;
    int rc;
    switch (n->kind) {
    case JN_TEXT: return emit(c, n->lit.u.s.p, n->lit.u.s.n);
    case JN_OUT:
        if ((rc = eval(c, f, n->a, &v)))
            return rc;
        if (v.t == JV_STR)
            return emit(c, v.u.s.p, v.u.s.n);
        rc = jv_write_str(c, c->out, v);
        return rc ? rc : emit(c, "", 0);
    case JN_IF:
        if ((rc = eval(c, f, n->a, &v)))
            return rc;
        return jv_truthy(v) ? exec_body(c, f, n->items, n->n) : exec_body(c, f, n->items2, n->n2);
    case JN_FOR: return exec_for(c, f, n);
    case JN_SET:
    case JN_SET_ATTR:
    case JN_SET_BLOCK: return exec_set(c, f, n);
    case JN_MACRO: {
        jj_macro *m = jj_new(c, sizeof *m);
        if (!m)
            return jj_oom(c);
        m->def = n, m->closure = f;
        return frame_set(c, f, n->name, (jv){.t = JV_MACRO, .u.m = m});
    }
    case JN_BREAK: return FLOW_BREAK;
    case JN_CONTINUE: return FLOW_CONTINUE;
    case JN_BODY: return exec_body(c, f, n->items, n->n);
    case JN_WITH: return exec_with(c, f, n);
    case JN_FILTER_BLOCK: return exec_filter_block(c, f, n);
    default: return jj_fail(c, TPI_EINVAL, "not a statement");
    }
}

static int exec_body(jj_ctx *c, jj_frame *f, jj_node *const *body, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        c->line = body[i]->line;
        if ((rc = jj_enter(c)) == 0)
            rc = exec_node(c, f, body[i]);
        jj_leave(c);
    }
    return rc;
}

int jj_render(jj_ctx *c, const jj_template *t)
{
    int rc = exec_body(c, c->root, t->body->items, t->body->n);
    return rc < 0 ? rc : 0;
}
