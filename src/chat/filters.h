#ifndef TPI_CHAT_FILTERS_H
#define TPI_CHAT_FILTERS_H
/* The filter and test tables shared by filters.c, seqfilters.c and tests.c. */
#include "chat/jinja.h"

#define JJ_FILTERS(X)                                                                                        \
    X(F_ABS, "abs") X(F_ATTR, "attr") X(F_CAPITALIZE, "capitalize") X(F_CENTER, "center") X(F_COUNT, "count")  \
    X(F_D, "d") X(F_DEFAULT, "default") X(F_DICTSORT, "dictsort") X(F_E, "e") X(F_ESCAPE, "escape")            \
    X(F_FIRST, "first") X(F_FLOAT, "float") X(F_FORCEESCAPE, "forceescape") X(F_FORMAT, "format")              \
    X(F_INDENT, "indent") X(F_INT, "int") X(F_ITEMS, "items") X(F_JOIN, "join") X(F_LAST, "last")              \
    X(F_LENGTH, "length") X(F_LIST, "list") X(F_LOWER, "lower") X(F_MAP, "map") X(F_MAX, "max")                \
    X(F_MIN, "min") X(F_REJECT, "reject") X(F_REJECTATTR, "rejectattr") X(F_REPLACE, "replace")                \
    X(F_REVERSE, "reverse") X(F_ROUND, "round") X(F_SAFE, "safe") X(F_SELECT, "select")                        \
    X(F_SELECTATTR, "selectattr") X(F_SORT, "sort") X(F_STRING, "string") X(F_SUM, "sum") X(F_TITLE, "title")  \
    X(F_TOJSON, "tojson") X(F_TRIM, "trim") X(F_TRUNCATE, "truncate") X(F_UNIQUE, "unique")                    \
    X(F_UPPER, "upper") X(F_WORDCOUNT, "wordcount") X(F_BATCH, "batch")

enum jj_filter {
#define X(id, name) id,
    JJ_FILTERS(X)
#undef X
};

/* Sequence filters (seqfilters.c): map, select, sort, join, ... */
int jj_seq_filter(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out);
/* str(x), with undefined as "" (jinja2's soft_str). */
int jj_want_str(jj_ctx *c, jv x, jv *out);
/* A dict's (key, value) tuples as a list. */
int jj_dict_items(jj_ctx *c, const jj_dict *d, jv *out);
/* Applies the test named by a string value (select, selectattr, map's tests). */
int jj_test_by_name(jj_ctx *c, jv name, jv x, const jj_argv *a, int *out);

#endif
