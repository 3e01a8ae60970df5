/* Statements of the template into a syntax tree: if/elif/else, for (with
 * else, a filter, unpacking), set (names, namespace attributes, blocks),
 * macro, with, filter, break/continue, generation; any other tag is
 * TPI_EUNSUPPORTED with its line. jj_parse is the entry point. */
#include <stdio.h>
#include <string.h>

#include "chat/parser.h"
#include "core/error.h"

static int parse_body(parser *P, const char *const *ends, nodes *body, int open_line);

/* The body of a block statement into n->items, then its end tag
 * ({% endset %}, {% endwith %}, ...) through the closing %}. */
static int parse_closed_body(parser *P, const char *const *ends, jj_node *n, int open_line)
{
    nodes body = {0};
    int rc = parse_body(P, ends, &body, open_line);
    if (!rc) {
        P->pos++;
        rc = jp_expect_end(P);
    }
    n->items = body.v, n->n = body.n;
    return rc;
}

static int parse_names(parser *P, const char ***names, size_t *n)
{
    int paren = jp_is_op(jp_cur(P), "(");
    P->pos += paren;
    const char *v[16];
    size_t k = 0;
    for (;;) {
        if (jp_cur(P)->kind != JT_NAME)
            return jp_unexpected(P, "a variable name");
        if (k == 16)
            return jp_fail(P, TPI_EUNSUPPORTED, "more than %.*s names to unpack", "16", 2);
        if (!(v[k++] = jp_dup_name(P, jp_cur(P))))
            return jp_oom(P);
        P->pos++;
        if (!jp_is_op(jp_cur(P), ","))
            break;
        P->pos++;
    }
    if (paren && jp_expect_op(P, ")"))
        return P->err ? P->err->code : TPI_EFORMAT;
    *names = jj_alloc(P->a, k * sizeof **names);
    if (!*names)
        return jp_oom(P);
    memcpy(*names, v, k * sizeof *v);
    *n = k;
    return 0;
}

static int parse_if(parser *P, jj_node *n, int open_line)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    int rc = jp_expr(P, &n->a);
    if (!rc)
        rc = jp_expect_end(P);
    nodes body = {0}, els = {0};
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    if (rc)
        return rc;
    n->items = body.v, n->n = body.n;
    if (jp_is_name(jp_cur(P), "elif")) {
        jj_node *e = jp_node(P, JN_IF);
        P->pos++;
        rc = e ? parse_if(P, e, jp_cur(P)->line) : jp_oom(P);
        if (!rc)
            rc = jp_push(P, &els, e);
    } else if (jp_is_name(jp_cur(P), "else")) {
        static const char *const endif[] = {"endif", NULL};
        P->pos++;
        rc = jp_expect_end(P);
        if (!rc)
            rc = parse_body(P, endif, &els, open_line);
        P->pos++;
        if (!rc)
            rc = jp_expect_end(P);
    } else {
        P->pos++;
        rc = jp_expect_end(P);
    }
    n->items2 = els.v, n->n2 = els.n;
    return rc;
}

static int parse_for(parser *P, jj_node *n, int open_line)
{
    static const char *const ends[] = {"else", "endfor", NULL}, *const endfor[] = {"endfor", NULL};
    int rc = parse_names(P, &n->names, &n->n_names);
    if (!rc && !jp_is_name(jp_cur(P), "in"))
        rc = jp_unexpected(P, "'in'");
    if (rc)
        return rc;
    P->pos++;
    rc = jp_tuple(P, &n->a, jp_or);
    if (!rc && jp_is_name(jp_cur(P), "if")) {
        P->pos++;
        rc = jp_expr(P, &n->b);
    }
    if (!rc && jp_is_name(jp_cur(P), "recursive"))
        return jp_fail(P, TPI_EUNSUPPORTED, "recursive for loops are not supported%.*s", "", 0);
    if (!rc)
        rc = jp_expect_end(P);
    nodes body = {0}, els = {0};
    P->loops++;
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    P->loops--;
    if (!rc && jp_is_name(jp_cur(P), "else")) {
        P->pos++;
        rc = jp_expect_end(P);
        if (!rc)
            rc = parse_body(P, endfor, &els, open_line);
    }
    if (!rc) {
        P->pos++;
        rc = jp_expect_end(P);
    }
    n->items = body.v, n->n = body.n, n->items2 = els.v, n->n2 = els.n;
    return rc;
}

static int parse_set(parser *P, jj_node *n, int open_line)
{
    int rc;
    if (jp_cur(P)->kind == JT_NAME && jp_is_op(jp_peek(P, 1), ".") && jp_peek(P, 2)->kind == JT_NAME) {
        n->kind = JN_SET_ATTR;
        n->names = jj_alloc(P->a, 2 * sizeof *n->names);
        if (!n->names || !(n->names[0] = jp_dup_name(P, jp_cur(P))) || !(n->names[1] = jp_dup_name(P, jp_peek(P, 2))))
            return jp_oom(P);
        n->n_names = 2;
        P->pos += 3;
    } else if ((rc = parse_names(P, &n->names, &n->n_names))) {
        return rc;
    }
    if (jp_is_op(jp_cur(P), "=")) {
        P->pos++;
        rc = jp_tuple(P, &n->a, jp_expr);
        return rc ? rc : jp_expect_end(P);
    }
    if (n->kind == JN_SET_ATTR || n->n_names != 1)
        return jp_unexpected(P, "'='");
    if (jp_is_op(jp_cur(P), "|"))
        return jp_fail(P, TPI_EUNSUPPORTED, "filters on a block set are not supported%.*s", "", 0);
    static const char *const ends[] = {"endset", NULL};
    n->kind = JN_SET_BLOCK;
    rc = jp_expect_end(P);
    return rc ? rc : parse_closed_body(P, ends, n, open_line);
}

static int parse_macro(parser *P, jj_node *n, int open_line)
{
    if (jp_cur(P)->kind != JT_NAME)
        return jp_unexpected(P, "a macro name");
    if (!(n->name = jp_dup_name(P, jp_cur(P))))
        return jp_oom(P);
    P->pos++;
    if (!jp_is_op(jp_cur(P), "("))
        return jp_unexpected(P, "'('");
    /* parameters parse as call arguments: names positionally, defaults as name=value */
    int rc = jp_args(P, &n->args);
    if (rc)
        return rc;
    for (size_t i = 0; i < n->args.n_pos; i++)
        if (n->args.pos[i]->kind != JN_NAME)
            return jp_fail(P, TPI_EFORMAT, "macro parameters are names%.*s", "", 0);
    rc = jp_expect_end(P);
    static const char *const ends[] = {"endmacro", NULL};
    nodes body = {0};
    int loops = P->loops;
    P->loops = 0;
    if (!rc)
        rc = parse_body(P, ends, &body, open_line);
    P->loops = loops;
    if (!rc) {
        P->pos++;
        if (jp_cur(P)->kind == JT_NAME) /* {% endmacro name %} */
            P->pos++;
        rc = jp_expect_end(P);
    }
    n->items = body.v, n->n = body.n;
    return rc;
}

/* {% with a = x, b = y %}...{% endwith %}: the names in args.kw, the body in items. */
static int parse_with(parser *P, jj_node *n, int open_line)
{
    nodes vals = {0};
    const char *names[64];
    size_t k = 0;
    int rc = 0;
    while (!rc && jp_cur(P)->kind == JT_NAME) {
        if (k == 64)
            return jp_fail(P, TPI_ELIMIT, "more than %.*s names in a with", "64", 2);
        jj_node *e;
        if (!(names[k++] = jp_dup_name(P, jp_cur(P))))
            return jp_oom(P);
        P->pos++;
        rc = jp_expect_op(P, "=");
        if (!rc)
            rc = jp_expr(P, &e);
        if (!rc)
            rc = jp_push(P, &vals, e);
        if (!rc && jp_is_op(jp_cur(P), ","))
            P->pos++;
    }
    if (!rc)
        rc = jp_expect_end(P);
    if (rc)
        return rc;
    if (k && !(n->args.kw_names = jj_alloc(P->a, k * sizeof *names)))
        return jp_oom(P);
    if (k)
        memcpy(n->args.kw_names, names, k * sizeof *names);
    n->args.kw = vals.v, n->args.n_kw = k;
    static const char *const ends[] = {"endwith", NULL};
    return parse_closed_body(P, ends, n, open_line);
}

/* {% filter f | g(x) %}...{% endfilter %}: the chain in a, applied to JJ_FILTER_BODY. */
static int parse_filter_block(parser *P, jj_node *n, int open_line)
{
    jj_node *body_var = jp_node(P, JN_NAME);
    if (!body_var)
        return jp_oom(P);
    body_var->name = JJ_FILTER_BODY;
    n->a = body_var;
    if (jp_cur(P)->kind != JT_NAME)
        return jp_unexpected(P, "a filter name");
    int rc = jp_filter_chain(P, &n->a);
    if (!rc)
        rc = jp_expect_end(P);
    static const char *const ends[] = {"endfilter", NULL};
    return rc ? rc : parse_closed_body(P, ends, n, open_line);
}

/* A {% ... %} statement; the keyword is current. */
static int parse_statement(parser *P, jj_node **out)
{
    const jj_tok *kw = jp_cur(P);
    int line = kw->line, rc;
    jj_node *n = jp_node(P, JN_BODY);
    if (!n)
        return jp_oom(P);
    P->pos++;
    if (jp_is_name(kw, "if")) {
        n->kind = JN_IF;
        rc = parse_if(P, n, line);
    } else if (jp_is_name(kw, "for")) {
        n->kind = JN_FOR;
        rc = parse_for(P, n, line);
    } else if (jp_is_name(kw, "set")) {
        n->kind = JN_SET;
        rc = parse_set(P, n, line);
    } else if (jp_is_name(kw, "macro")) {
        n->kind = JN_MACRO;
        rc = parse_macro(P, n, line);
    } else if (jp_is_name(kw, "break") || jp_is_name(kw, "continue")) {
        n->kind = jp_is_name(kw, "break") ? JN_BREAK : JN_CONTINUE;
        if (!P->loops) {
            P->pos--;
            return jp_fail(P, TPI_EFORMAT, "'%.*s' outside a for loop", kw->p, kw->n);
        }
        rc = jp_expect_end(P);
    } else if (jp_is_name(kw, "with")) {
        n->kind = JN_WITH;
        rc = parse_with(P, n, line);
    } else if (jp_is_name(kw, "filter")) {
        n->kind = JN_FILTER_BLOCK;
        rc = parse_filter_block(P, n, line);
    } else if (jp_is_name(kw, "generation")) { /* transformers' assistant-mask tag: renders its body */
        static const char *const ends[] = {"endgeneration", NULL};
        nodes body = {0};
        rc = jp_expect_end(P);
        if (!rc)
            rc = parse_body(P, ends, &body, line);
        if (!rc) {
            P->pos++;
            rc = jp_expect_end(P);
        }
        n->items = body.v, n->n = body.n;
    } else {
        P->pos--;
        if (kw->kind != JT_NAME)
            return jp_unexpected(P, "a tag name");
        if ((kw->n > 3 && !memcmp(kw->p, "end", 3)) || jp_is_name(kw, "elif") || jp_is_name(kw, "else"))
            return jp_fail(P, TPI_EFORMAT, "'%.*s' without the tag it closes", kw->p, kw->n);
        return jp_fail(P, TPI_EUNSUPPORTED, "unsupported tag '%.*s' (docs/CHAT.md lists the supported ones)", kw->p,
                    kw->n);
    }
    *out = n;
    return rc;
}

/* Statements until a {% tag %} named in ends (NULL-terminated; NULL: the end
 * of the template); leaves that tag's keyword current. */
static int parse_body(parser *P, const char *const *ends, nodes *body, int open_line)
{
    int rc = jp_enter(P);
    while (!rc) {
        const jj_tok *t = jp_cur(P);
        jj_node *n = NULL;
        if (t->kind == JT_EOF) {
            if (ends && ends[0]) {
                char msg[96];
                size_t last = 0;
                while (ends[last + 1])
                    last++;
                snprintf(msg, sizeof msg, "missing {%% %s %%} for the tag on line %d", ends[last], open_line);
                rc = jp_fail(P, TPI_EFORMAT, "%.*s", msg, strlen(msg));
            }
            break;
        }
        if (t->kind == JT_TEXT) {
            if (!(n = jp_node(P, JN_TEXT)))
                return jp_oom(P);
            n->lit = jv_str(t->p, t->n);
            P->pos++;
        } else if (t->kind == JT_VAR_BEGIN) {
            if (!(n = jp_node(P, JN_OUT)))
                return jp_oom(P);
            P->pos++;
            rc = jp_tuple(P, &n->a, jp_expr);
            if (!rc && jp_cur(P)->kind != JT_VAR_END)
                rc = jp_unexpected(P, "'}}'");
            P->pos++;
        } else if (t->kind == JT_BLOCK_BEGIN) {
            P->pos++;
            for (int i = 0; ends && ends[i]; i++)
                if (jp_is_name(jp_cur(P), ends[i])) {
                    P->depth--;
                    return 0;
                }
            rc = parse_statement(P, &n);
        } else {
            rc = jp_unexpected(P, "text or a tag");
        }
        if (!rc)
            rc = jp_push(P, body, n);
    }
    P->depth--;
    return rc;
}

int jj_parse(jj_template *t, const jj_tok *toks, size_t n_toks, tpi_error *err)
{
    parser P = {.a = &t->arena, .name = t->name, .t = toks, .n = n_toks, .err = err};
    nodes body = {0};
    int rc = parse_body(&P, NULL, &body, 1);
    if (!rc && jp_cur(&P)->kind == JT_BLOCK_END)
        rc = jp_unexpected(&P, "a tag");
    if (rc)
        return rc;
    if (!(t->body = jp_node(&P, JN_BODY)))
        return jp_oom(&P);
    t->body->items = body.v, t->body->n = body.n;
    return 0;
}
