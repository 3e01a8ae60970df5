/* Expressions of the template into a syntax tree, following jinja2's parser
 * (parser.py) for the subset in docs/CHAT.md: its operator precedence, tests
 * without parentheses, inline if, slices; and the token helpers the
 * statement parser shares. An unknown filter or test is TPI_EUNSUPPORTED, a
 * malformed expression TPI_EFORMAT, both naming the line. */
#include <stdio.h>
#include <string.h>

#include "chat/parser.h"
#include "core/error.h"


const jj_tok *jp_cur(parser *P)
{
    return &P->t[P->pos];
}

const jj_tok *jp_peek(parser *P, size_t k)
{
    return P->pos + k < P->n ? &P->t[P->pos + k] : &P->t[P->n - 1];
}

int jp_is_op(const jj_tok *t, const char *op)
{
    return t->kind == JT_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n);
}

int jp_is_name(const jj_tok *t, const char *w)
{
    return t->kind == JT_NAME && t->n == strlen(w) && !memcmp(t->p, w, t->n);
}

int jp_fail(parser *P, int code, const char *fmt, const char *arg, size_t arg_n)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, (int)arg_n, arg);
    return tpi_err(P->err, code, "%s:%d: %s", P->name, jp_cur(P)->line, msg);
}

static const char *tok_desc(const jj_tok *t, size_t *n)
{
    static const char *const kinds[] = {"end of template", "text", "{{", "}}", "{%", "%}", "", "a string",
                                        "", "", ""};
    if (t->kind == JT_NAME || t->kind == JT_OP || t->kind == JT_INT || t->kind == JT_FLOAT) {
        *n = t->n;
        return t->p;
    }
    *n = strlen(kinds[t->kind]);
    return kinds[t->kind];
}

int jp_unexpected(parser *P, const char *what)
{
    size_t n;
    const char *d = tok_desc(jp_cur(P), &n);
    char fmt[128];
    snprintf(fmt, sizeof fmt, "expected %s, found '%%.*s'", what);
    return jp_fail(P, TPI_EFORMAT, fmt, d, n);
}

int jp_expect_op(parser *P, const char *op)
{
    if (!jp_is_op(jp_cur(P), op)) {
        char what[16];
        snprintf(what, sizeof what, "'%s'", op);
        return jp_unexpected(P, what);
    }
    P->pos++;
    return 0;
}

int jp_expect_end(parser *P)
{
    if (jp_cur(P)->kind != JT_BLOCK_END)
        return jp_unexpected(P, "'%}'");
    P->pos++;
    return 0;
}

int jp_oom(parser *P)
{
    return tpi_err(P->err, TPI_ENOMEM, "%s: out of memory", P->name);
}

jj_node *jp_node(parser *P, int kind)
{
    jj_node *n = jj_alloc(P->a, sizeof *n);
    if (n) {
        n->kind = (uint8_t)kind;
        n->line = jp_cur(P)->line;
    }
    return n;
}

int jp_push(parser *P, nodes *l, jj_node *n)
{
    if (!n)
        return jp_oom(P);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jj_node **v = jj_alloc(P->a, cap * sizeof *v);
        if (!v)
            return jp_oom(P);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = n;
    return 0;
}

const char *jp_dup_name(parser *P, const jj_tok *t)
{
    char *s = jj_alloc(P->a, t->n + 1);
    if (s)
        memcpy(s, t->p, t->n);
    return s;
}

int jp_enter(parser *P)
{
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return jp_fail(P, TPI_ELIMIT, "nesting deeper than %.*s levels", "200", 3);
    return 0;
}

/* ---- expressions ---- */

static int parse_unary(parser *P, int with_filter, jj_node **out);

/* `(a, b=c)` into args; the '(' is current. */
int jp_args(parser *P, jj_args *args)
{
    nodes pos = {0}, kw = {0};
    const char **names = NULL;
    size_t names_cap = 0;
    P->pos++;
    while (!jp_is_op(jp_cur(P), ")")) {
        if (pos.n + kw.n && jp_expect_op(P, ","))
            return P->err ? P->err->code : TPI_EFORMAT;
        if (jp_is_op(jp_cur(P), ")"))
            break;
        if (jp_is_op(jp_cur(P), "*") || jp_is_op(jp_cur(P), "**"))
            return jp_fail(P, TPI_EUNSUPPORTED, "%.*s unpacking in a call is not supported", "*", 1);
        jj_node *e;
        if (jp_cur(P)->kind == JT_NAME && jp_is_op(jp_peek(P, 1), "=")) {
            const char *nm = jp_dup_name(P, jp_cur(P));
            P->pos += 2;
            int rc = jp_expr(P, &e);
            if (rc)
                return rc;
            if (kw.n == names_cap) {
                names_cap = names_cap ? names_cap * 2 : 4;
                const char **nn = jj_alloc(P->a, names_cap * sizeof *nn);
                if (!nn || !nm)
                    return jp_oom(P);
                if (kw.n)
                    memcpy(nn, names, kw.n * sizeof *nn);
                names = nn;
            }
            names[kw.n] = nm;
            rc = jp_push(P, &kw, e);
            if (rc)
                return rc;
        } else {
            if (kw.n)
                return jp_fail(P, TPI_EFORMAT, "a positional argument after keyword arguments%.*s", "", 0);
            int rc = jp_expr(P, &e);
            if (!rc)
                rc = jp_push(P, &pos, e);
            if (rc)
                return rc;
        }
    }
    P->pos++;
    *args = (jj_args){.pos = pos.v, .n_pos = pos.n, .kw_names = names, .kw = kw.v, .n_kw = kw.n};
    return 0;
}

/* Comma-separated expressions up to `close` (already past the opener). */
static int parse_seq(parser *P, const char *close, nodes *items, nodes *values, int *trailing_comma)
{
    *trailing_comma = 0;
    while (!jp_is_op(jp_cur(P), close)) {
        if (items->n && jp_expect_op(P, ","))
            return P->err ? P->err->code : TPI_EFORMAT;
        if (jp_is_op(jp_cur(P), close)) {
            *trailing_comma = 1;
            break;
        }
        jj_node *e;
        int rc = jp_expr(P, &e);
        if (!rc)
            rc = jp_push(P, items, e);
        if (!rc && values) {
            rc = jp_expect_op(P, ":");
            if (!rc)
                rc = jp_expr(P, &e);
            if (!rc)
                rc = jp_push(P, values, e);
        }
        if (rc)
            return rc;
    }
    P->pos++;
    return 0;
}

static int parse_primary(parser *P, jj_node **out)
{
    const jj_tok *t = jp_cur(P);
    jj_node *n = NULL;
    if (t->kind == JT_NAME) {
        static const char *const lits[] = {"true", "True", "false", "False", "none", "None"};
        int lit = -1;
        for (int i = 0; i < 6; i++)
            if (jp_is_name(t, lits[i]))
                lit = i;
        n = jp_node(P, lit >= 0 ? JN_LIT : JN_NAME);
        if (!n)
            return jp_oom(P);
        if (lit >= 0)
            n->lit = lit < 4 ? jv_bool(lit < 2) : jv_none();
        else if (!(n->name = jp_dup_name(P, t)))
            return jp_oom(P);
        P->pos++;
    } else if (t->kind == JT_STRING) {
        size_t len = 0, k = P->pos;
        for (; P->t[k].kind == JT_STRING; k++)
            len += P->t[k].n;
        char *s = jj_alloc(P->a, len + 1);
        n = jp_node(P, JN_LIT);
        if (!s || !n)
            return jp_oom(P);
        for (len = 0; jp_cur(P)->kind == JT_STRING; P->pos++) { /* adjacent literals join, as in Python */
            memcpy(s + len, jp_cur(P)->p, jp_cur(P)->n);
            len += jp_cur(P)->n;
        }
        n->lit = jv_str(s, len);
    } else if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        if (!(n = jp_node(P, JN_LIT)))
            return jp_oom(P);
        n->lit = t->kind == JT_INT ? jv_int(t->i) : jv_float(t->f);
        P->pos++;
    } else if (jp_is_op(t, "(") || jp_is_op(t, "[") || jp_is_op(t, "{")) {
        int paren = jp_is_op(t, "("), dict = jp_is_op(t, "{"), comma;
        nodes items = {0}, values = {0};
        if (!(n = jp_node(P, dict ? JN_DICT : paren ? JN_TUPLE : JN_LIST)))
            return jp_oom(P);
        P->pos++;
        int rc = parse_seq(P, paren ? ")" : dict ? "}" : "]", &items, dict ? &values : NULL, &comma);
        if (rc)
            return rc;
        if (paren && items.n == 1 && !comma) {
            *out = items.v[0];
            return 0;
        }
        n->items = items.v, n->n = items.n, n->items2 = values.v, n->n2 = values.n;
    } else {
        return jp_unexpected(P, "an expression");
    }
    *out = n;
    return 0;
}

static int parse_subscript(parser *P, jj_node *obj, jj_node **out)
{
    jj_node *parts[3] = {NULL, NULL, NULL};
    int k = 0, slice = 0;
    P->pos++;
    for (;;) {
        if (!jp_is_op(jp_cur(P), ":") && !jp_is_op(jp_cur(P), "]")) {
            int rc = jp_expr(P, &parts[k]);
            if (rc)
                return rc;
        }
        if (jp_is_op(jp_cur(P), ":") && k < 2) {
            slice = 1;
            k++;
            P->pos++;
            continue;
        }
        break;
    }
    int rc = jp_expect_op(P, "]");
    if (rc)
        return rc;
    if (!slice && !parts[0])
        return jp_unexpected(P, "an index");
    jj_node *n = jp_node(P, slice ? JN_SLICE : JN_ITEM);
    if (!n)
        return jp_oom(P);
    n->a = obj;
    n->b = parts[0];
    if (slice) {
        n->c = parts[1];
        n->items = jj_alloc(P->a, sizeof *n->items);
        if (!n->items)
            return jp_oom(P);
        n->items[0] = parts[2];
    }
    *out = n;
    return 0;
}

static int parse_postfix(parser *P, jj_node **io)
{
    for (;;) {
        const jj_tok *t = jp_cur(P);
        jj_node *n = NULL;
        if (jp_is_op(t, ".")) {
            const jj_tok *nt = jp_peek(P, 1);
            if (nt->kind == JT_INT) {
                if (!(n = jp_node(P, JN_ITEM)) || !(n->b = jp_node(P, JN_LIT)))
                    return jp_oom(P);
                n->b->lit = jv_int(nt->i);
            } else if (nt->kind == JT_NAME) {
                if (!(n = jp_node(P, JN_ATTR)) || !(n->name = jp_dup_name(P, nt)))
                    return jp_oom(P);
            } else {
                P->pos++;
                return jp_unexpected(P, "an attribute name");
            }
            n->a = *io;
            P->pos += 2;
        } else if (jp_is_op(t, "[")) {
            int rc = parse_subscript(P, *io, &n);
            if (rc)
                return rc;
        } else if (jp_is_op(t, "(")) {
            if (!(n = jp_node(P, JN_CALL)))
                return jp_oom(P);
            n->a = *io;
            int rc = jp_args(P, &n->args);
            if (rc)
                return rc;
        } else {
            return 0;
        }
        *io = n;
    }
}

/* `name` or `name(args)` applied to *io; the name is current. */
static int parse_filter_name(parser *P, jj_node **io)
{
    const jj_tok *t = jp_cur(P);
    if (t->kind != JT_NAME)
        return jp_unexpected(P, "a filter name");
    int id = jj_filter_id(t->p, t->n);
    if (id < 0)
        return jp_fail(P, TPI_EUNSUPPORTED, "unknown filter '%.*s' (docs/CHAT.md lists the supported ones)", t->p,
                    t->n);
    jj_node *n = jp_node(P, JN_FILTER);
    if (!n)
        return jp_oom(P);
    n->op = id;
    n->a = *io;
    P->pos++;
    if (jp_is_op(jp_cur(P), "(")) {
        int rc = jp_args(P, &n->args);
        if (rc)
            return rc;
    }
    *io = n;
    return 0;
}

static int parse_filter(parser *P, jj_node **io)
{
    P->pos++;
    return parse_filter_name(P, io);
}

int jp_filter_chain(parser *P, jj_node **io)
{
    int rc = parse_filter_name(P, io);
    while (!rc && jp_is_op(jp_cur(P), "|"))
        rc = parse_filter(P, io);
    return rc;
}

static int parse_test(parser *P, jj_node **io)
{
    P->pos++;
    int neg = 0;
    if (jp_is_name(jp_cur(P), "not") && jp_peek(P, 1)->kind == JT_NAME) {
        neg = 1;
        P->pos++;
    }
    const jj_tok *t = jp_cur(P);
    if (t->kind != JT_NAME)
        return jp_unexpected(P, "a test name");
    int id = jj_test_id(t->p, t->n);
    if (id < 0)
        return jp_fail(P, TPI_EUNSUPPORTED, "unknown test '%.*s' (docs/CHAT.md lists the supported ones)", t->p,
                    t->n);
    jj_node *n = jp_node(P, JN_TEST);
    if (!n)
        return jp_oom(P);
    n->op = id, n->neg = (int8_t)neg, n->a = *io;
    P->pos++;
    t = jp_cur(P);
    if (jp_is_op(t, "(")) {
        int rc = jp_args(P, &n->args);
        if (rc)
            return rc;
    } else if ((t->kind == JT_NAME || t->kind == JT_STRING || t->kind == JT_INT || t->kind == JT_FLOAT ||
                jp_is_op(t, "[") || jp_is_op(t, "{")) &&
               !jp_is_name(t, "else") && !jp_is_name(t, "or") && !jp_is_name(t, "and") && !jp_is_name(t, "if") &&
               !jp_is_name(t, "in") && !jp_is_name(t, "not") && !jp_is_name(t, "is") && !jp_is_name(t, "recursive")) {
        jj_node *arg;
        int rc = parse_primary(P, &arg);
        if (!rc)
            rc = parse_postfix(P, &arg);
        if (rc)
            return rc;
        n->args.pos = jj_alloc(P->a, sizeof *n->args.pos);
        if (!n->args.pos)
            return jp_oom(P);
        n->args.pos[0] = arg;
        n->args.n_pos = 1;
    }
    *io = n;
    return 0;
}

static int parse_unary(parser *P, int with_filter, jj_node **out)
{
    int rc = jp_enter(P);
    if (rc)
        return rc;
    jj_node *n = NULL;
    if (jp_is_op(jp_cur(P), "-") || jp_is_op(jp_cur(P), "+")) {
        if (!(n = jp_node(P, jp_is_op(jp_cur(P), "-") ? JN_NEG : JN_POS)))
            return jp_oom(P);
        P->pos++;
        rc = parse_unary(P, 0, &n->a);
    } else {
        rc = parse_primary(P, &n);
    }
    if (!rc)
        rc = parse_postfix(P, &n);
    while (!rc && with_filter) {
        if (jp_is_op(jp_cur(P), "|"))
            rc = parse_filter(P, &n);
        else if (jp_is_name(jp_cur(P), "is"))
            rc = parse_test(P, &n);
        else if (jp_is_op(jp_cur(P), "("))
            rc = parse_postfix(P, &n);
        else
            break;
    }
    P->depth--;
    *out = n;
    return rc;
}


/* Left-associative binary operators of one precedence level. */
static int parse_binary(parser *P, jj_node **out, jp_level_fn next, const char *const *ops, const int *codes)
{
    int rc = next(P, out);
    while (!rc) {
        int k = -1;
        for (int i = 0; ops[i]; i++)
            if (jp_is_op(jp_cur(P), ops[i]))
                k = i;
        if (k < 0)
            break;
        jj_node *n = jp_node(P, JN_BIN);
        if (!n)
            return jp_oom(P);
        n->op = codes[k];
        n->a = *out;
        P->pos++;
        rc = next(P, &n->b);
        *out = n;
    }
    return rc;
}

static int parse_unary_f(parser *P, jj_node **out)
{
    return parse_unary(P, 1, out);
}

static int parse_pow(parser *P, jj_node **out)
{
    static const char *const ops[] = {"**", NULL};
    static const int codes[] = {OP_POW};
    return parse_binary(P, out, parse_unary_f, ops, codes);
}

static int parse_math2(parser *P, jj_node **out)
{
    static const char *const ops[] = {"*", "/", "//", "%", NULL};
    static const int codes[] = {OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD};
    return parse_binary(P, out, parse_pow, ops, codes);
}

static int parse_concat(parser *P, jj_node **out)
{
    static const char *const ops[] = {"~", NULL};
    static const int codes[] = {OP_CONCAT};
    return parse_binary(P, out, parse_math2, ops, codes);
}

static int parse_math1(parser *P, jj_node **out)
{
    static const char *const ops[] = {"+", "-", NULL};
    static const int codes[] = {OP_ADD, OP_SUB};
    return parse_binary(P, out, parse_concat, ops, codes);
}

static int parse_compare(parser *P, jj_node **out)
{
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">=", NULL};
    static const int codes[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    int rc = parse_math1(P, out);
    nodes rest = {0};
    int opv[64], n_ops = 0;
    jj_node *cmp = NULL;
    while (!rc) {
        int op = -1;
        for (int i = 0; ops[i]; i++)
            if (jp_is_op(jp_cur(P), ops[i]))
                op = codes[i];
        if (op < 0 && jp_is_name(jp_cur(P), "in"))
            op = OP_IN;
        if (op < 0 && jp_is_name(jp_cur(P), "not") && jp_is_name(jp_peek(P, 1), "in")) {
            op = OP_NOTIN;
            P->pos++;
        }
        if (op < 0)
            break;
        if (n_ops == 64)
            return jp_fail(P, TPI_ELIMIT, "more than %.*s chained comparisons", "64", 2);
        if (!cmp && !(cmp = jp_node(P, JN_CMP)))
            return jp_oom(P);
        P->pos++;
        jj_node *e;
        rc = parse_math1(P, &e);
        if (!rc)
            rc = jp_push(P, &rest, e);
        opv[n_ops++] = op;
    }
    if (rc || !cmp)
        return rc;
    cmp->a = *out;
    cmp->items = rest.v, cmp->n = rest.n;
    if (!(cmp->ops = jj_alloc(P->a, (size_t)n_ops * sizeof *cmp->ops)))
        return jp_oom(P);
    memcpy(cmp->ops, opv, (size_t)n_ops * sizeof *cmp->ops);
    *out = cmp;
    return 0;
}

static int parse_not(parser *P, jj_node **out)
{
    if (!jp_is_name(jp_cur(P), "not"))
        return parse_compare(P, out);
    int rc = jp_enter(P);
    jj_node *n = jp_node(P, JN_NOT);
    if (!n)
        return jp_oom(P);
    P->pos++;
    if (!rc)
        rc = parse_not(P, &n->a);
    P->depth--;
    *out = n;
    return rc;
}

static int parse_logic(parser *P, jj_node **out, const char *word, int kind, jp_level_fn next)
{
    int rc = next(P, out);
    while (!rc && jp_is_name(jp_cur(P), word)) {
        jj_node *n = jp_node(P, kind);
        if (!n)
            return jp_oom(P);
        n->a = *out;
        P->pos++;
        rc = next(P, &n->b);
        *out = n;
    }
    return rc;
}

static int parse_and(parser *P, jj_node **out)
{
    return parse_logic(P, out, "and", JN_AND, parse_not);
}

int jp_or(parser *P, jj_node **out)
{
    return parse_logic(P, out, "or", JN_OR, parse_and);
}

int jp_expr(parser *P, jj_node **out)
{
    int rc = jp_enter(P);
    if (!rc)
        rc = jp_or(P, out);
    while (!rc && jp_is_name(jp_cur(P), "if")) {
        jj_node *n = jp_node(P, JN_COND);
        if (!n)
            return jp_oom(P);
        P->pos++;
        n->b = *out;
        rc = jp_or(P, &n->a);
        if (!rc && jp_is_name(jp_cur(P), "else")) {
            P->pos++;
            rc = jp_expr(P, &n->c);
        }
        *out = n;
    }
    P->depth--;
    return rc;
}

/* An expression, or a tuple of them without parentheses (`a, b`). */
int jp_tuple(parser *P, jj_node **out, jp_level_fn one)
{
    int rc = one(P, out);
    if (rc || !jp_is_op(jp_cur(P), ","))
        return rc;
    nodes items = {0};
    jj_node *t = jp_node(P, JN_TUPLE);
    rc = jp_push(P, &items, *out);
    while (!rc && jp_is_op(jp_cur(P), ",")) {
        P->pos++;
        if (jp_cur(P)->kind == JT_BLOCK_END || jp_cur(P)->kind == JT_VAR_END || jp_is_name(jp_cur(P), "in") || jp_is_op(jp_cur(P), "="))
            break;
        jj_node *e;
        rc = one(P, &e);
        if (!rc)
            rc = jp_push(P, &items, e);
    }
    if (!t)
        return jp_oom(P);
    t->items = items.v, t->n = items.n;
    *out = t;
    return rc;
}
