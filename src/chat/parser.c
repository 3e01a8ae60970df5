/* Tokens to a syntax tree, following jinja2's parser (parser.py) for the
 * subset in docs/CHAT.md: its operator precedence, tests without
 * parentheses, inline if, slices. Anything else stops the parse with the
 * line: an unknown tag, filter or test is TPI_EUNSUPPORTED, a malformed
 * expression TPI_EFORMAT. */
#include <stdio.h>
#include <string.h>

#include "chat/jinja.h"
#include "core/error.h"

typedef struct parser {
    jj_arena *a;
    const char *name;
    const jj_tok *t;
    size_t n, pos;
    int depth, loops; /* nesting, and for loops around the current statement (in this macro) */
    tpi_error *err;
} parser;

typedef struct nodes {
    jj_node **v;
    size_t n, cap;
} nodes;

static const jj_tok *cur(parser *P)
{
    return &P->t[P->pos];
}

static const jj_tok *peek(parser *P, size_t k)
{
    return P->pos + k < P->n ? &P->t[P->pos + k] : &P->t[P->n - 1];
}

static int is_op(const jj_tok *t, const char *op)
{
    return t->kind == JT_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n);
}

static int is_name(const jj_tok *t, const char *w)
{
    return t->kind == JT_NAME && t->n == strlen(w) && !memcmp(t->p, w, t->n);
}

static int fail(parser *P, int code, const char *fmt, const char *arg, size_t arg_n)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, (int)arg_n, arg);
    return tpi_err(P->err, code, "%s:%d: %s", P->name, cur(P)->line, msg);
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

static int unexpected(parser *P, const char *what)
{
    size_t n;
    const char *d = tok_desc(cur(P), &n);
    char fmt[128];
    snprintf(fmt, sizeof fmt, "expected %s, found '%%.*s'", what);
    return fail(P, TPI_EFORMAT, fmt, d, n);
}

static int expect_op(parser *P, const char *op)
{
    if (!is_op(cur(P), op)) {
        char what[16];
        snprintf(what, sizeof what, "'%s'", op);
        return unexpected(P, what);
    }
    P->pos++;
    return 0;
}

static int expect_end(parser *P)
{
    if (cur(P)->kind != JT_BLOCK_END)
        return unexpected(P, "'%}'");
    P->pos++;
    return 0;
}

static int oom(parser *P)
{
    return tpi_err(P->err, TPI_ENOMEM, "%s: out of memory", P->name);
}

static jj_node *node(parser *P, int kind)
{
    jj_node *n = jj_alloc(P->a, sizeof *n);
    if (n) {
        n->kind = (uint8_t)kind;
        n->line = cur(P)->line;
    }
    return n;
}

static int push(parser *P, nodes *l, jj_node *n)
{
    if (!n)
        return oom(P);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jj_node **v = jj_alloc(P->a, cap * sizeof *v);
        if (!v)
            return oom(P);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = n;
    return 0;
}

static const char *dup_name(parser *P, const jj_tok *t)
{
    char *s = jj_alloc(P->a, t->n + 1);
    if (s)
        memcpy(s, t->p, t->n);
    return s;
}

static int enter(parser *P)
{
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return fail(P, TPI_ELIMIT, "nesting deeper than %.*s levels", "200", 3);
    return 0;
}

/* ---- expressions ---- */

static int parse_expr(parser *P, jj_node **out);
static int parse_or(parser *P, jj_node **out);
static int parse_unary(parser *P, int with_filter, jj_node **out);

/* `(a, b=c)` into args; the '(' is current. */
static int parse_args(parser *P, jj_args *args)
{
    nodes pos = {0}, kw = {0};
    const char **names = NULL;
    size_t names_cap = 0;
    P->pos++;
    while (!is_op(cur(P), ")")) {
        if (pos.n + kw.n && expect_op(P, ","))
            return P->err ? P->err->code : TPI_EFORMAT;
        if (is_op(cur(P), ")"))
            break;
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            return fail(P, TPI_EUNSUPPORTED, "%.*s unpacking in a call is not supported", "*", 1);
        jj_node *e;
        if (cur(P)->kind == JT_NAME && is_op(peek(P, 1), "=")) {
            const char *nm = dup_name(P, cur(P));
            P->pos += 2;
            int rc = parse_expr(P, &e);
            if (rc)
                return rc;
            if (kw.n == names_cap) {
                names_cap = names_cap ? names_cap * 2 : 4;
                const char **nn = jj_alloc(P->a, names_cap * sizeof *nn);
                if (!nn || !nm)
                    return oom(P);
                if (kw.n)
                    memcpy(nn, names, kw.n * sizeof *nn);
                names = nn;
            }
            names[kw.n] = nm;
            rc = push(P, &kw, e);
            if (rc)
                return rc;
        } else {
            if (kw.n)
                return fail(P, TPI_EFORMAT, "a positional argument after keyword arguments%.*s", "", 0);
            int rc = parse_expr(P, &e);
            if (!rc)
                rc = push(P, &pos, e);
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
    while (!is_op(cur(P), close)) {
        if (items->n && expect_op(P, ","))
            return P->err ? P->err->code : TPI_EFORMAT;
        if (is_op(cur(P), close)) {
            *trailing_comma = 1;
            break;
        }
        jj_node *e;
        int rc = parse_expr(P, &e);
        if (!rc)
            rc = push(P, items, e);
        if (!rc && values) {
            rc = expect_op(P, ":");
            if (!rc)
                rc = parse_expr(P, &e);
            if (!rc)
                rc = push(P, values, e);
        }
        if (rc)
            return rc;
    }
    P->pos++;
    return 0;
}

static int parse_primary(parser *P, jj_node **out)
{
    const jj_tok *t = cur(P);
    jj_node *n = NULL;
    if (t->kind == JT_NAME) {
        static const char *const lits[] = {"true", "True", "false", "False", "none", "None"};
        int lit = -1;
        for (int i = 0; i < 6; i++)
            if (is_name(t, lits[i]))
                lit = i;
        n = node(P, lit >= 0 ? JN_LIT : JN_NAME);
        if (!n)
            return oom(P);
        if (lit >= 0)
            n->lit = lit < 4 ? jv_bool(lit < 2) : jv_none();
        else if (!(n->name = dup_name(P, t)))
            return oom(P);
        P->pos++;
    } else if (t->kind == JT_STRING) {
        size_t len = 0, k = P->pos;
        for (; P->t[k].kind == JT_STRING; k++)
            len += P->t[k].n;
        char *s = jj_alloc(P->a, len + 1);
        n = node(P, JN_LIT);
        if (!s || !n)
            return oom(P);
        for (len = 0; cur(P)->kind == JT_STRING; P->pos++) { /* adjacent literals join, as in Python */
            memcpy(s + len, cur(P)->p, cur(P)->n);
            len += cur(P)->n;
        }
        n->lit = jv_str(s, len);
    } else if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        if (!(n = node(P, JN_LIT)))
            return oom(P);
        n->lit = t->kind == JT_INT ? jv_int(t->i) : jv_float(t->f);
        P->pos++;
    } else if (is_op(t, "(") || is_op(t, "[") || is_op(t, "{")) {
        int paren = is_op(t, "("), dict = is_op(t, "{"), comma;
        nodes items = {0}, values = {0};
        if (!(n = node(P, dict ? JN_DICT : paren ? JN_TUPLE : JN_LIST)))
            return oom(P);
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
        return unexpected(P, "an expression");
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
        if (!is_op(cur(P), ":") && !is_op(cur(P), "]")) {
            int rc = parse_expr(P, &parts[k]);
            if (rc)
                return rc;
        }
        if (is_op(cur(P), ":") && k < 2) {
            slice = 1;
            k++;
            P->pos++;
            continue;
        }
        break;
    }
    int rc = expect_op(P, "]");
    if (rc)
        return rc;
    if (!slice && !parts[0])
        return unexpected(P, "an index");
    jj_node *n = node(P, slice ? JN_SLICE : JN_ITEM);
    if (!n)
        return oom(P);
    n->a = obj;
    n->b = parts[0];
    if (slice) {
        n->c = parts[1];
        n->items = jj_alloc(P->a, sizeof *n->items);
        if (!n->items)
            return oom(P);
        n->items[0] = parts[2];
    }
    *out = n;
    return 0;
}

static int parse_postfix(parser *P, jj_node **io)
{
    for (;;) {
        const jj_tok *t = cur(P);
        jj_node *n = NULL;
        if (is_op(t, ".")) {
            const jj_tok *nt = peek(P, 1);
            if (nt->kind == JT_INT) {
                if (!(n = node(P, JN_ITEM)) || !(n->b = node(P, JN_LIT)))
                    return oom(P);
                n->b->lit = jv_int(nt->i);
            } else if (nt->kind == JT_NAME) {
                if (!(n = node(P, JN_ATTR)) || !(n->name = dup_name(P, nt)))
                    return oom(P);
            } else {
                P->pos++;
                return unexpected(P, "an attribute name");
            }
            n->a = *io;
            P->pos += 2;
        } else if (is_op(t, "[")) {
            int rc = parse_subscript(P, *io, &n);
            if (rc)
                return rc;
        } else if (is_op(t, "(")) {
            if (!(n = node(P, JN_CALL)))
                return oom(P);
            n->a = *io;
            int rc = parse_args(P, &n->args);
            if (rc)
                return rc;
        } else {
            return 0;
        }
        *io = n;
    }
}

static int parse_filter(parser *P, jj_node **io)
{
    P->pos++;
    const jj_tok *t = cur(P);
    if (t->kind != JT_NAME)
        return unexpected(P, "a filter name");
    int id = jj_filter_id(t->p, t->n);
    if (id < 0)
        return fail(P, TPI_EUNSUPPORTED, "unknown filter '%.*s' (docs/CHAT.md lists the supported ones)", t->p,
                    t->n);
    jj_node *n = node(P, JN_FILTER);
    if (!n)
        return oom(P);
    n->op = id;
    n->a = *io;
    P->pos++;
    if (is_op(cur(P), "(")) {
        int rc = parse_args(P, &n->args);
        if (rc)
            return rc;
    }
    *io = n;
    return 0;
}

static int parse_test(parser *P, jj_node **io)
{
    P->pos++;
    int neg = 0;
    if (is_name(cur(P), "not") && peek(P, 1)->kind == JT_NAME) {
        neg = 1;
        P->pos++;
    }
    const jj_tok *t = cur(P);
    if (t->kind != JT_NAME)
        return unexpected(P, "a test name");
    int id = jj_test_id(t->p, t->n);
    if (id < 0)
        return fail(P, TPI_EUNSUPPORTED, "unknown test '%.*s' (docs/CHAT.md lists the supported ones)", t->p,
                    t->n);
    jj_node *n = node(P, JN_TEST);
    if (!n)
        return oom(P);
    n->op = id, n->neg = (int8_t)neg, n->a = *io;
    P->pos++;
    t = cur(P);
    if (is_op(t, "(")) {
        int rc = parse_args(P, &n->args);
        if (rc)
            return rc;
    } else if ((t->kind == JT_NAME || t->kind == JT_STRING || t->kind == JT_INT || t->kind == JT_FLOAT ||
                is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and") && !is_name(t, "if") &&
               !is_name(t, "in") && !is_name(t, "not") && !is_name(t, "is") && !is_name(t, "recursive")) {
        jj_node *arg;
        int rc = parse_primary(P, &arg);
        if (!rc)
            rc = parse_postfix(P, &arg);
        if (rc)
            return rc;
        n->args.pos = jj_alloc(P->a, sizeof *n->args.pos);
        if (!n->args.pos)
            return oom(P);
        n->args.pos[0] = arg;
        n->args.n_pos = 1;
    }
    *io = n;
    return 0;
}

static int parse_unary(parser *P, int with_filter, jj_node **out)
{
    int rc = enter(P);
    if (rc)
        return rc;
    jj_node *n = NULL;
    if (is_op(cur(P), "-") || is_op(cur(P), "+")) {
        if (!(n = node(P, is_op(cur(P), "-") ? JN_NEG : JN_POS)))
            return oom(P);
        P->pos++;
        rc = parse_unary(P, 0, &n->a);
    } else {
        rc = parse_primary(P, &n);
    }
    if (!rc)
        rc = parse_postfix(P, &n);
    while (!rc && with_filter) {
        if (is_op(cur(P), "|"))
            rc = parse_filter(P, &n);
        else if (is_name(cur(P), "is"))
            rc = parse_test(P, &n);
        else if (is_op(cur(P), "("))
            rc = parse_postfix(P, &n);
        else
            break;
    }
    P->depth--;
    *out = n;
    return rc;
}

typedef int (*level_fn)(parser *P, jj_node **out);

/* Left-associative binary operators of one precedence level. */
static int parse_binary(parser *P, jj_node **out, level_fn next, const char *const *ops, const int *codes)
{
    int rc = next(P, out);
    while (!rc) {
        int k = -1;
        for (int i = 0; ops[i]; i++)
            if (is_op(cur(P), ops[i]))
                k = i;
        if (k < 0)
            break;
        jj_node *n = node(P, JN_BIN);
        if (!n)
            return oom(P);
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
            if (is_op(cur(P), ops[i]))
                op = codes[i];
        if (op < 0 && is_name(cur(P), "in"))
            op = OP_IN;
        if (op < 0 && is_name(cur(P), "not") && is_name(peek(P, 1), "in")) {
            op = OP_NOTIN;
            P->pos++;
        }
        if (op < 0)
            break;
        if (n_ops == 64)
            return fail(P, TPI_ELIMIT, "more than %.*s chained comparisons", "64", 2);
        if (!cmp && !(cmp = node(P, JN_CMP)))
            return oom(P);
        P->pos++;
        jj_node *e;
        rc = parse_math1(P, &e);
        if (!rc)
            rc = push(P, &rest, e);
        opv[n_ops++] = op;
    }
    if (rc || !cmp)
        return rc;
    cmp->a = *out;
    cmp->items = rest.v, cmp->n = rest.n;
    if (!(cmp->ops = jj_alloc(P->a, (size_t)n_ops * sizeof *cmp->ops)))
        return oom(P);
    memcpy(cmp->ops, opv, (size_t)n_ops * sizeof *cmp->ops);
    *out = cmp;
    return 0;
}

static int parse_not(parser *P, jj_node **out)
{
    if (!is_name(cur(P), "not"))
        return parse_compare(P, out);
    int rc = enter(P);
    jj_node *n = node(P, JN_NOT);
    if (!n)
        return oom(P);
    P->pos++;
    if (!rc)
        rc = parse_not(P, &n->a);
    P->depth--;
    *out = n;
    return rc;
}

static int parse_logic(parser *P, jj_node **out, const char *word, int kind, level_fn next)
{
    int rc = next(P, out);
    while (!rc && is_name(cur(P), word)) {
        jj_node *n = node(P, kind);
        if (!n)
            return oom(P);
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

static int parse_or(parser *P, jj_node **out)
{
    return parse_logic(P, out, "or", JN_OR, parse_and);
}

static int parse_expr(parser *P, jj_node **out)
{
    int rc = enter(P);
    if (!rc)
        rc = parse_or(P, out);
    while (!rc && is_name(cur(P), "if")) {
        jj_node *n = node(P, JN_COND);
        if (!n)
            return oom(P);
        P->pos++;
        n->b = *out;
        rc = parse_or(P, &n->a);
        if (!rc && is_name(cur(P), "else")) {
            P->pos++;
            rc = parse_expr(P, &n->c);
        }
        *out = n;
    }
    P->depth--;
    return rc;
}

/* An expression, or a tuple of them without parentheses (`a, b`). */
static int parse_tuple(parser *P, jj_node **out, level_fn one)
{
    int rc = one(P, out);
    if (rc || !is_op(cur(P), ","))
        return rc;
    nodes items = {0};
    jj_node *t = node(P, JN_TUPLE);
    rc = push(P, &items, *out);
    while (!rc && is_op(cur(P), ",")) {
        P->pos++;
        if (cur(P)->kind == JT_BLOCK_END || cur(P)->kind == JT_VAR_END || is_name(cur(P), "in") || is_op(cur(P), "="))
            break;
        jj_node *e;
        rc = one(P, &e);
        if (!rc)
            rc = push(P, &items, e);
    }
    if (!t)
        return oom(P);
    t->items = items.v, t->n = items.n;
    *out = t;
    return rc;
}

/* ---- statements ---- */

static int parse_body(parser *P, const char *const *ends, nodes *body, int open_line);

static int parse_names(parser *P, const char ***names, size_t *n)
{
    int paren = is_op(cur(P), "(");
    P->pos += paren;
    const char *v[16];
    size_t k = 0;
    for (;;) {
        if (cur(P)->kind != JT_NAME)
            return unexpected(P, "a variable name");
        if (k == 16)
            return fail(P, TPI_EUNSUPPORTED, "more than %.*s names to unpack", "16", 2);
        if (!(v[k++] = dup_name(P, cur(P))))
            return oom(P);
        P->pos++;
        if (!is_op(cur(P), ","))
            break;
        P->pos++;
    }
    if (paren && expect_op(P, ")"))
        return P->err ? P->err->code : TPI_EFORMAT;
    *names = jj_alloc(P->a, k * sizeof **names);
    if (!*names)
        return oom(P);
    memcpy(*names, v, k * sizeof *v);
    *n = k;
    return 0;
}

static int parse_if(parser *P, jj_node *n, int open_line)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    int rc = parse_expr(P, &n->a);
    if (!rc)
        rc = expect_end(P);
    nodes body = {0}, els = {0};
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    if (rc)
        return rc;
    n->items = body.v, n->n = body.n;
    if (is_name(cur(P), "elif")) {
        jj_node *e = node(P, JN_IF);
        P->pos++;
        rc = e ? parse_if(P, e, cur(P)->line) : oom(P);
        if (!rc)
            rc = push(P, &els, e);
    } else if (is_name(cur(P), "else")) {
        static const char *const endif[] = {"endif", NULL};
        P->pos++;
        rc = expect_end(P);
        if (!rc)
            rc = parse_body(P, endif, &els, open_line);
        P->pos++;
        if (!rc)
            rc = expect_end(P);
    } else {
        P->pos++;
        rc = expect_end(P);
    }
    n->items2 = els.v, n->n2 = els.n;
    return rc;
}

static int parse_for(parser *P, jj_node *n, int open_line)
{
    static const char *const ends[] = {"else", "endfor", NULL}, *const endfor[] = {"endfor", NULL};
    int rc = parse_names(P, &n->names, &n->n_names);
    if (!rc && !is_name(cur(P), "in"))
        rc = unexpected(P, "'in'");
    if (rc)
        return rc;
    P->pos++;
    rc = parse_tuple(P, &n->a, parse_or);
    if (!rc && is_name(cur(P), "if")) {
        P->pos++;
        rc = parse_expr(P, &n->b);
    }
    if (!rc && is_name(cur(P), "recursive"))
        return fail(P, TPI_EUNSUPPORTED, "recursive for loops are not supported%.*s", "", 0);
    if (!rc)
        rc = expect_end(P);
    nodes body = {0}, els = {0};
    P->loops++;
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    P->loops--;
    if (!rc && is_name(cur(P), "else")) {
        P->pos++;
        rc = expect_end(P);
        if (!rc)
            rc = parse_body(P, endfor, &els, open_line);
    }
    if (!rc) {
        P->pos++;
        rc = expect_end(P);
    }
    n->items = body.v, n->n = body.n, n->items2 = els.v, n->n2 = els.n;
    return rc;
}

static int parse_set(parser *P, jj_node *n, int open_line)
{
    int rc;
    if (cur(P)->kind == JT_NAME && is_op(peek(P, 1), ".") && peek(P, 2)->kind == JT_NAME) {
        n->kind = JN_SET_ATTR;
        n->names = jj_alloc(P->a, 2 * sizeof *n->names);
        if (!n->names || !(n->names[0] = dup_name(P, cur(P))) || !(n->names[1] = dup_name(P, peek(P, 2))))
            return oom(P);
        n->n_names = 2;
        P->pos += 3;
    } else if ((rc = parse_names(P, &n->names, &n->n_names))) {
        return rc;
    }
    if (is_op(cur(P), "=")) {
        P->pos++;
        rc = parse_tuple(P, &n->a, parse_expr);
        return rc ? rc : expect_end(P);
    }
    if (n->kind == JN_SET_ATTR || n->n_names != 1)
        return unexpected(P, "'='");
    if (is_op(cur(P), "|"))
        return fail(P, TPI_EUNSUPPORTED, "filters on a block set are not supported%.*s", "", 0);
    static const char *const ends[] = {"endset", NULL};
    nodes body = {0};
    n->kind = JN_SET_BLOCK;
    rc = expect_end(P);
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    if (!rc) {
        P->pos++;
        rc = expect_end(P);
    }
    n->items = body.v, n->n = body.n;
    return rc;
}

static int parse_macro(parser *P, jj_node *n, int open_line)
{
    if (cur(P)->kind != JT_NAME)
        return unexpected(P, "a macro name");
    if (!(n->name = dup_name(P, cur(P))))
        return oom(P);
    P->pos++;
    if (!is_op(cur(P), "("))
        return unexpected(P, "'('");
    /* parameters parse as call arguments: names positionally, defaults as name=value */
    int rc = parse_args(P, &n->args);
    if (rc)
        return rc;
    for (size_t i = 0; i < n->args.n_pos; i++)
        if (n->args.pos[i]->kind != JN_NAME)
            return fail(P, TPI_EFORMAT, "macro parameters are names%.*s", "", 0);
    rc = expect_end(P);
    static const char *const ends[] = {"endmacro", NULL};
    nodes body = {0};
    int loops = P->loops;
    P->loops = 0;
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    P->loops = loops;
    if (!rc) {
        P->pos++;
        if (cur(P)->kind == JT_NAME) /* {% endmacro name %} */
            P->pos++;
        rc = expect_end(P);
    }
    n->items = body.v, n->n = body.n;
    return rc;
}

/* A {% ... %} statement; the keyword is current. */
static int parse_statement(parser *P, jj_node **out)
{
    const jj_tok *kw = cur(P);
    int line = kw->line, rc;
    jj_node *n = node(P, JN_BODY);
    if (!n)
        return oom(P);
    P->pos++;
    if (is_name(kw, "if")) {
        n->kind = JN_IF;
        rc = parse_if(P, n, line);
    } else if (is_name(kw, "for")) {
        n->kind = JN_FOR;
        rc = parse_for(P, n, line);
    } else if (is_name(kw, "set")) {
        n->kind = JN_SET;
        rc = parse_set(P, n, line);
    } else if (is_name(kw, "macro")) {
        n->kind = JN_MACRO;
        rc = parse_macro(P, n, line);
    } else if (is_name(kw, "break") || is_name(kw, "continue")) {
        n->kind = is_name(kw, "break") ? JN_BREAK : JN_CONTINUE;
        if (!P->loops) {
            P->pos--;
            return fail(P, TPI_EFORMAT, "'%.*s' outside a for loop", kw->p, kw->n);
        }
        rc = expect_end(P);
    } else if (is_name(kw, "generation")) { /* transformers' assistant-mask tag: renders its body */
        static const char *const ends[] = {"endgeneration", NULL};
        nodes body = {0};
        rc = expect_end(P);
        if (!rc)
            rc = parse_body(P, ends, &body, line);
        if (!rc) {
            P->pos++;
            rc = expect_end(P);
        }
        n->items = body.v, n->n = body.n;
    } else {
        P->pos--;
        if (kw->kind != JT_NAME)
            return unexpected(P, "a tag name");
        if ((kw->n > 3 && !memcmp(kw->p, "end", 3)) || is_name(kw, "elif") || is_name(kw, "else"))
            return fail(P, TPI_EFORMAT, "'%.*s' without the tag it closes", kw->p, kw->n);
        return fail(P, TPI_EUNSUPPORTED, "unsupported tag '%.*s' (docs/CHAT.md lists the supported ones)", kw->p,
                    kw->n);
    }
    *out = n;
    return rc;
}

/* Statements until a {% tag %} named in ends (NULL-terminated; NULL: the end
 * of the template); leaves that tag's keyword current. */
static int parse_body(parser *P, const char *const *ends, nodes *body, int open_line)
{
    int rc = enter(P);
    while (!rc) {
        const jj_tok *t = cur(P);
        jj_node *n = NULL;
        if (t->kind == JT_EOF) {
            if (ends && ends[0]) {
                char msg[96];
                size_t last = 0;
                while (ends[last + 1])
                    last++;
                snprintf(msg, sizeof msg, "missing {%% %s %%} for the tag on line %d", ends[last], open_line);
                rc = fail(P, TPI_EFORMAT, "%.*s", msg, strlen(msg));
            }
            break;
        }
        if (t->kind == JT_TEXT) {
            if (!(n = node(P, JN_TEXT)))
                return oom(P);
            n->lit = jv_str(t->p, t->n);
            P->pos++;
        } else if (t->kind == JT_VAR_BEGIN) {
            if (!(n = node(P, JN_OUT)))
                return oom(P);
            P->pos++;
            rc = parse_tuple(P, &n->a, parse_expr);
            if (!rc && cur(P)->kind != JT_VAR_END)
                rc = unexpected(P, "'}}'");
            P->pos++;
        } else if (t->kind == JT_BLOCK_BEGIN) {
            P->pos++;
            for (int i = 0; ends && ends[i]; i++)
                if (is_name(cur(P), ends[i])) {
                    P->depth--;
                    return 0;
                }
            rc = parse_statement(P, &n);
        } else {
            rc = unexpected(P, "text or a tag");
        }
        if (!rc)
            rc = push(P, body, n);
    }
    P->depth--;
    return rc;
}

int jj_parse(jj_template *t, const jj_tok *toks, size_t n_toks, tpi_error *err)
{
    parser P = {.a = &t->arena, .name = t->name, .t = toks, .n = n_toks, .err = err};
    nodes body = {0};
    int rc = parse_body(&P, NULL, &body, 1);
    if (!rc && cur(&P)->kind == JT_BLOCK_END)
        rc = unexpected(&P, "a tag");
    if (rc)
        return rc;
    if (!(t->body = node(&P, JN_BODY)))
        return oom(&P);
    t->body->items = body.v, t->body->n = body.n;
    return 0;
}
