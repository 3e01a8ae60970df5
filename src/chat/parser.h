#ifndef TPI_CHAT_PARSER_H
#define TPI_CHAT_PARSER_H
/* What the two halves of the parser share: parse_expr.c (expressions and
 * the token helpers) and parse_stmt.c (statements). */
#include "chat/jinja.h"

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

typedef int (*jp_level_fn)(parser *P, jj_node **out);

const jj_tok *jp_cur(parser *P);
const jj_tok *jp_peek(parser *P, size_t k);
int jp_is_op(const jj_tok *t, const char *op);
int jp_is_name(const jj_tok *t, const char *w);
/* "NAME:LINE: " + fmt with one %.*s argument (arg, arg_n). */
int jp_fail(parser *P, int code, const char *fmt, const char *arg, size_t arg_n);
/* "expected WHAT, found 'TOKEN'" (TPI_EFORMAT). */
int jp_unexpected(parser *P, const char *what);
int jp_expect_op(parser *P, const char *op);
int jp_expect_end(parser *P);
int jp_oom(parser *P);
/* A node of `kind` at the current line; NULL when out of memory. */
jj_node *jp_node(parser *P, int kind);
/* Appends n (NULL: out of memory) to l. */
int jp_push(parser *P, nodes *l, jj_node *n);
const char *jp_dup_name(parser *P, const jj_tok *t);
/* One level deeper, failing past JJ_MAX_PARSE_DEPTH; the caller decrements P->depth. */
int jp_enter(parser *P);
/* An expression (with inline if); `or` level (no inline if). */
int jp_expr(parser *P, jj_node **out);
int jp_or(parser *P, jj_node **out);
/* An expression or a bare tuple `a, b` of `one`s. */
int jp_tuple(parser *P, jj_node **out, jp_level_fn one);
/* `f | g(x) | ...` applied to *io (the filter tag's chain); the first name is current. */
int jp_filter_chain(parser *P, jj_node **io);
/* `(a, b=c)` into args; the '(' is current. */
int jp_args(parser *P, jj_args *args);

#endif
