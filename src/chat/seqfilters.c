/* jinja2's filters over sequences: list, first, last, join, map, select,
 * reject, selectattr, rejectattr, unique, sort, dictsort, reverse, sum, min,
 * max, batch. Sorting is stable and, like jinja2, ignores case by default. */
#include <string.h>

#include "chat/filters.h"
#include "core/error.h"

static jv list_of(jj_list *l)
{
    return (jv){.t = JV_LIST, .u.l = l};
}

/* What jinja2 returns as a generator (see jv.gen). */
static jv gen_of(jj_list *l)
{
    return (jv){.t = JV_LIST, .gen = 1, .u.l = l};
}

/* jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0. */
static int attr_path(jj_ctx *c, jv item, jv path, jv *out)
{
    if (path.t == JV_INT)
        return jj_getitem(c, item, path, out);
    if (path.t != JV_STR)
        return jj_fail(c, TPI_EINVAL, "attribute must be a string");
    size_t pos = 0;
    *out = item;
    while (pos <= path.u.s.n) {
        const char *dot = memchr(path.u.s.p + pos, '.', path.u.s.n - pos);
        size_t end = dot ? (size_t)(dot - path.u.s.p) : path.u.s.n;
        jv key = jv_str(path.u.s.p + pos, end - pos);
        int digits = end > pos;
        int64_t idx = 0;
        for (size_t i = pos; i < end && digits; i++) {
            digits = path.u.s.p[i] >= '0' && path.u.s.p[i] <= '9' && idx < 100000000;
            idx = idx * 10 + (path.u.s.p[i] - '0');
        }
        int rc = jj_getitem(c, *out, digits ? jv_int(idx) : key, out);
        if (rc)
            return rc;
        if (!dot)
            break;
        pos = end + 1;
    }
    return 0;
}

static int sort_key(jj_ctx *c, jv item, const jv *attr, int case_sensitive, jv *key)
{
    int rc = attr && attr->t != JV_NONE ? attr_path(c, item, *attr, key) : (*key = item, 0);
    if (!rc && !case_sensitive && key->t == JV_STR)
        rc = jj_case(c, *key, CASE_LOWER, key);
    return rc;
}

/* Stable merge sort of v (n items) by keys k. */
static int merge_sort(jj_ctx *c, jv *v, jv *k, size_t n, int reverse)
{
    jv *tv = jj_new(c, n * sizeof *tv), *tk = jj_new(c, n * sizeof *tk);
    if (n && (!tv || !tk))
        return jj_oom(c);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, o = lo;
            while (i < mid || j < hi) {
                int take_right = 0;
                if (i < mid && j < hi) {
                    int cmp, rc = jv_compare(c, k[i], k[j], &cmp);
                    if (rc)
                        return rc;
                    take_right = reverse ? cmp < 0 : cmp > 0;
                } else {
                    take_right = i >= mid;
                }
                size_t s = take_right ? j++ : i++;
                tv[o] = v[s], tk[o++] = k[s];
            }
        }
        memcpy(v, tv, n * sizeof *v);
        memcpy(k, tk, n * sizeof *k);
        if ((c->steps += (int64_t)n) > JJ_MAX_STEPS)
            return jj_fail(c, TPI_ELIMIT, "the template ran more than %d steps", JJ_MAX_STEPS);
    }
    return 0;
}

static int f_sort(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    int dictsort = id == F_DICTSORT, rc;
    if (dictsort) {
        if (x.t != JV_DICT)
            return jj_fail(c, TPI_EINVAL, "dictsort takes a dict, not %s", jv_type_name(x));
        if ((rc = jj_dict_items(c, x.u.d, out)))
            return rc;
        items = out->u.l;
    } else if ((rc = jv_iterate(c, x, &items))) {
        return rc;
    }
    int reverse = jv_truthy(jj_arg(a, dictsort ? 2 : 0, "reverse") ? *jj_arg(a, dictsort ? 2 : 0, "reverse")
                                                                   : jv_bool(0));
    const jv *cs = jj_arg(a, dictsort ? 0 : 1, "case_sensitive"), *by = dictsort ? jj_arg(a, 1, "by") : NULL;
    jv attr = dictsort ? jv_int(by && by->t == JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5))
                       : jj_arg(a, 2, "attribute") ? *jj_arg(a, 2, "attribute") : jv_none();
    jj_list *l = jj_list_new(c, items->n);
    jv *keys = jj_new(c, (items->n + 1) * sizeof *keys);
    if (!l || !keys)
        return jj_oom(c);
    memcpy(l->v, items->v, items->n * sizeof *l->v);
    for (size_t i = 0; i < l->n && !rc; i++)
        rc = sort_key(c, l->v[i], &attr, cs && jv_truthy(*cs), &keys[i]);
    if (!rc)
        rc = merge_sort(c, l->v, keys, l->n, reverse);
    *out = list_of(l);
    return rc;
}

static int f_unique(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    int rc = jv_iterate(c, x, &items);
    const jv *cs = jj_arg(a, 0, "case_sensitive"), *attr = jj_arg(a, 1, "attribute");
    jj_list *l = jj_list_new(c, items ? items->n : 0);
    jv *keys = jj_new(c, (items ? items->n : 0) * sizeof *keys + sizeof *keys);
    if (rc)
        return rc;
    if (!l || !keys)
        return jj_oom(c);
    l->n = 0;
    for (size_t i = 0; i < items->n && !rc; i++) {
        jv k;
        int seen = 0;
        rc = sort_key(c, items->v[i], attr, cs && jv_truthy(*cs), &k);
        for (size_t j = 0; j < l->n && !rc && !seen; j++)
            rc = jv_equal(c, keys[j], k, &seen);
        if ((c->steps += (int64_t)l->n) > JJ_MAX_STEPS)
            return jj_fail(c, TPI_ELIMIT, "the template ran more than %d steps", JJ_MAX_STEPS);
        if (!rc && !seen)
            keys[l->n] = k, l->v[l->n++] = items->v[i];
    }
    *out = gen_of(l);
    return rc;
}

static int f_minmax(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    int rc = jv_iterate(c, x, &items);
    const jv *cs = jj_arg(a, 0, "case_sensitive"), *attr = jj_arg(a, 1, "attribute");
    jv best_key = jv_undef(NULL);
    *out = jv_undef("min/max of an empty sequence");
    for (size_t i = 0; i < (rc ? 0 : items->n) && !rc; i++) {
        jv k;
        int cmp = 0;
        rc = sort_key(c, items->v[i], attr, cs && jv_truthy(*cs), &k);
        if (!rc && i)
            rc = jv_compare(c, k, best_key, &cmp);
        if (!rc && (!i || (id == F_MIN ? cmp < 0 : cmp > 0)))
            best_key = k, *out = items->v[i];
    }
    return rc;
}

static int f_sum(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    const jv *attr = jj_arg(a, 0, "attribute"), *start = jj_arg(a, 1, "start");
    int rc = jv_iterate(c, x, &items);
    *out = start ? *start : jv_int(0);
    for (size_t i = 0; i < (rc ? 0 : items->n) && !rc; i++) {
        jv v = items->v[i];
        if (attr && attr->t != JV_NONE)
            rc = attr_path(c, v, *attr, &v);
        if (rc)
            break;
        if ((out->t != JV_INT && out->t != JV_FLOAT) || (v.t != JV_INT && v.t != JV_FLOAT && v.t != JV_BOOL))
            return jj_fail(c, TPI_EINVAL, "sum takes numbers, not %s", jv_type_name(v));
        double f = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
        if (out->t == JV_INT && v.t != JV_FLOAT) {
            if (__builtin_add_overflow(out->u.i, v.t == JV_INT ? v.u.i : v.u.b, &out->u.i))
                return jj_fail(c, TPI_EINVAL, "integer overflow");
        } else {
            *out = jv_float((out->t == JV_FLOAT ? out->u.f : (double)out->u.i) + f);
        }
    }
    return rc;
}

/* select / reject / selectattr / rejectattr. */
static int f_select(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    int rc = jv_iterate(c, jv_truthy(x) ? x : jv_undef(NULL), &items), by_attr = id == F_SELECTATTR || id == F_REJECTATTR;
    int want = id == F_SELECT || id == F_SELECTATTR;
    if (rc)
        return rc;
    size_t first = by_attr ? 1 : 0;
    if (by_attr && !a->n_pos)
        return jj_fail(c, TPI_EINVAL, "%s takes an attribute name", jj_filter_name(id));
    jj_argv rest = {.pos = a->n_pos > first + 1 ? a->pos + first + 1 : NULL,
                    .n_pos = a->n_pos > first + 1 ? a->n_pos - first - 1 : 0,
                    .kw_names = a->kw_names, .kw = a->kw, .n_kw = a->n_kw};
    jj_list *l = jj_list_new(c, items->n);
    if (!l)
        return jj_oom(c);
    l->n = 0;
    for (size_t i = 0; i < items->n && !rc; i++) {
        jv v = items->v[i];
        int ok;
        if (by_attr)
            rc = attr_path(c, v, a->pos[0], &v);
        if (rc)
            break;
        if (a->n_pos > first)
            rc = jj_test_by_name(c, a->pos[first], v, &rest, &ok);
        else
            ok = jv_truthy(v);
        if (!rc && ok == want)
            l->v[l->n++] = items->v[i];
    }
    *out = gen_of(l);
    return rc;
}

static int f_map(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    jj_list *items; /* jinja2's map and select walk nothing when the value is false (none included) */
    int rc = jv_iterate(c, jv_truthy(x) ? x : jv_undef(NULL), &items);
    if (rc)
        return rc;
    const jv *attr = jj_arg(a, 99, "attribute"), *dflt = jj_arg(a, 99, "default");
    int filter = -1;
    if (!attr) {
        if (!a->n_pos || a->pos[0].t != JV_STR)
            return jj_fail(c, TPI_EINVAL, "map takes a filter name or attribute=");
        filter = jj_filter_id(a->pos[0].u.s.p, a->pos[0].u.s.n);
        if (filter < 0)
            return jj_fail(c, TPI_EUNSUPPORTED, "map: unknown filter '%.*s'", (int)a->pos[0].u.s.n, a->pos[0].u.s.p);
    }
    jj_argv rest = {.pos = a->n_pos > 1 ? a->pos + 1 : NULL, .n_pos = a->n_pos > 1 ? a->n_pos - 1 : 0,
                    .kw_names = a->kw_names, .kw = a->kw, .n_kw = a->n_kw};
    jj_list *l = jj_list_new(c, items->n);
    if (!l)
        return jj_oom(c);
    for (size_t i = 0; i < items->n && !rc; i++) {
        if (attr) {
            rc = attr_path(c, items->v[i], *attr, &l->v[i]);
            if (!rc && dflt && l->v[i].t == JV_UNDEF)
                l->v[i] = *dflt;
        } else {
            rc = jj_enter(c);
            if (!rc)
                rc = jj_apply_filter(c, filter, items->v[i], &rest, &l->v[i]);
            jj_leave(c);
        }
    }
    *out = gen_of(l);
    return rc;
}

static int f_join(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    const jv *sep_a = jj_arg(a, 0, "d"), *attr = jj_arg(a, 1, "attribute");
    jv sep = jv_str("", 0);
    int rc = jv_iterate(c, x, &items);
    if (!rc && sep_a)
        rc = jj_want_str(c, *sep_a, &sep);
    jj_buf b;
    jj_buf_init(&b, c);
    for (size_t i = 0; i < (rc ? 0 : items->n) && !rc; i++) {
        jv v = items->v[i];
        if (attr && attr->t != JV_NONE)
            rc = attr_path(c, v, *attr, &v);
        if (i)
            jj_buf_add(&b, sep.u.s.p, sep.u.s.n);
        if (!rc && v.t != JV_UNDEF)
            rc = jv_write_str(c, &b, v);
    }
    return rc ? rc : jj_buf_done(&b, out);
}

static int f_first_last(jj_ctx *c, int id, jv x, jv *out)
{
    jj_list *items;
    if (x.t == JV_LIST || x.t == JV_STR || x.t == JV_DICT || x.t == JV_UNDEF) {
        int rc = jv_iterate(c, x, &items);
        if (rc)
            return rc;
        *out = items->n ? items->v[id == F_FIRST ? 0 : items->n - 1] : jv_undef("first/last of an empty sequence");
        return 0;
    }
    return jj_fail(c, TPI_EINVAL, "'%s' object is not iterable", jv_type_name(x));
}

static int f_batch(jj_ctx *c, jv x, const jj_argv *a, jv *out)
{
    const jv *count = jj_arg(a, 0, "linecount"), *fill = jj_arg(a, 1, "fill_with");
    jj_list *items;
    int rc = jv_iterate(c, x, &items);
    if (rc)
        return rc;
    if (!count || count->t != JV_INT || count->u.i <= 0)
        return jj_fail(c, TPI_EINVAL, "batch takes a positive count");
    size_t per = (size_t)count->u.i, n = (items->n + per - 1) / per;
    jj_list *l = jj_list_new(c, n);
    if (!l)
        return jj_oom(c);
    for (size_t i = 0; i < n; i++) {
        size_t k = items->n - i * per < per ? items->n - i * per : per;
        jj_list *row = jj_list_new(c, fill && fill->t != JV_NONE ? per : k);
        if (!row)
            return jj_oom(c);
        for (size_t j = 0; j < row->n; j++)
            row->v[j] = j < k ? items->v[i * per + j] : *fill;
        l->v[i] = list_of(row);
    }
    *out = gen_of(l);
    return 0;
}

int jj_seq_filter(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out)
{
    jj_list *items;
    int rc;
    switch (id) {
    case F_LIST:
        if ((rc = jv_iterate(c, x, &items)))
            return rc;
        *out = list_of(items);
        return 0;
    case F_FIRST:
    case F_LAST: return f_first_last(c, id, x, out);
    case F_JOIN: return f_join(c, x, a, out);
    case F_MAP: return f_map(c, x, a, out);
    case F_SELECT:
    case F_REJECT:
    case F_SELECTATTR:
    case F_REJECTATTR: return f_select(c, id, x, a, out);
    case F_UNIQUE: return f_unique(c, x, a, out);
    case F_SORT:
    case F_DICTSORT: return f_sort(c, id, x, a, out);
    case F_SUM: return f_sum(c, x, a, out);
    case F_MIN:
    case F_MAX: return f_minmax(c, id, x, a, out);
    case F_BATCH: return f_batch(c, x, a, out);
    case F_REVERSE: {
        if ((rc = jv_iterate(c, x, &items)))
            return rc;
        jj_list *l = jj_list_new(c, items->n);
        if (!l)
            return jj_oom(c);
        for (size_t i = 0; i < items->n; i++)
            l->v[i] = items->v[items->n - 1 - i];
        if (x.t != JV_STR) {
            *out = gen_of(l);
            return 0;
        }
        jj_buf b;
        jj_buf_init(&b, c);
        for (size_t i = 0; i < l->n; i++)
            jj_buf_add(&b, l->v[i].u.s.p, l->v[i].u.s.n);
        return jj_buf_done(&b, out);
    }
    default: return jj_fail(c, TPI_EINVAL, "filter '%s' is not implemented", jj_filter_name(id));
    }
}
