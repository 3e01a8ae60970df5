#ifndef TPI_CHAT_JINJA_H
#define TPI_CHAT_JINJA_H
/* The Jinja subset behind tpi_chat_template_* (docs/CHAT.md): an arena, the
 * value type, the syntax tree, and the entry points the files of src/chat
 * share. Values are immutable once built (transformers renders in jinja2's
 * ImmutableSandboxedEnvironment) except namespaces, so they are shared freely
 * and live in the render's arena until the render ends. */
#include <stddef.h>
#include <stdint.h>

#include "tpinfer.h"

/* Limits that keep a hostile template or conversation from hanging or
 * crashing the process (docs/CHAT.md, "Limits"). */
enum {
    JJ_MAX_OUTPUT = 16 << 20,      /* bytes of rendered text, and of any one string */
    JJ_MAX_ARENA = 256 << 20,      /* bytes one render may allocate */
    JJ_MAX_STEPS = 20 * 1000 * 1000, /* expressions and statements evaluated per render */
    JJ_MAX_DEPTH = 300,            /* nested evaluation (expressions, statements, calls, value walks) */
    JJ_MAX_PARSE_DEPTH = 200,      /* nesting of expressions and blocks in the source */
    JJ_MAX_LIST = 1 << 20,         /* items of a list built by range(), `*` or a filter */
};

/* ---- arena ---- */
typedef struct jj_chunk jj_chunk;
typedef struct jj_arena {
    jj_chunk *head;
    size_t total, cap; /* bytes allocated so far, and the most allowed */
    int over_cap;      /* an allocation was refused for passing cap */
} jj_arena;
/* Zeroed memory, 16-byte aligned; NULL when out of memory or past cap. */
void *jj_alloc(jj_arena *a, size_t bytes);
void jj_arena_free(jj_arena *a);

/* ---- values ---- */
typedef enum jj_type {
    JV_UNDEF = 0, /* jinja2's Undefined: prints "", iterates as empty, fails on attribute access */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* also tuples (tuple set), printed as Python prints them */
    JV_DICT,
    JV_NS,    /* namespace(): the one mutable object */
    JV_MACRO,
    JV_FUNC,  /* a global function: raise_exception, strftime_now, namespace, range, dict */
    JV_LOOP,  /* the `loop` variable of a for */
} jj_type;

typedef struct jj_list jj_list;
typedef struct jj_dict jj_dict;
typedef struct jj_macro jj_macro;
typedef struct jj_loop jj_loop;

typedef struct jv {
    uint8_t t;
    uint8_t tuple;  /* lists: a tuple */
    uint8_t markup; /* strings: markupsafe's Markup (from |safe or |escape), which escapes what is added to it */
    uint8_t gen;    /* lists: what jinja2 returns as a generator (map, select, items, ...): true even when
                     * empty, no length, printed as a generator; |list makes it a list */
    uint8_t owner;  /* undefined: the type of the value whose attribute (or, with `gen` set, numbered
                     * element) was missing, for jinja2's message when it is used */
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *p; /* strings: UTF-8, not NUL-terminated; undefined: the name, or NULL */
            size_t n;
        } s;
        jj_list *l;
        jj_dict *d;
        const jj_macro *m;
        int fn;
        jj_loop *loop;
    } u;
} jv;

struct jj_list {
    size_t n;
    jv *v;
};
struct jj_dict {
    size_t n, cap;
    jv *k, *v;
};

enum jj_func { JF_RAISE, JF_STRFTIME, JF_NAMESPACE, JF_RANGE, JF_DICT };

static inline jv jv_undef(const char *name)
{
    jv v = {.t = JV_UNDEF};
    v.u.s.p = name;
    return v;
}
static inline jv jv_none(void) { return (jv){.t = JV_NONE}; }
static inline jv jv_bool(int b)
{
    jv v = {.t = JV_BOOL};
    v.u.b = !!b;
    return v;
}
static inline jv jv_int(int64_t i)
{
    jv v = {.t = JV_INT};
    v.u.i = i;
    return v;
}
static inline jv jv_float(double f)
{
    jv v = {.t = JV_FLOAT};
    v.u.f = f;
    return v;
}
static inline jv jv_str(const char *p, size_t n)
{
    jv v = {.t = JV_STR};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

/* ---- the render context ---- */
typedef struct jj_frame jj_frame;
typedef struct jj_ctx {
    jj_arena arena;
    tpi_error *err;
    const char *name; /* the template's name, for messages */
    int line;         /* of the node being evaluated */
    int depth;
    int64_t steps;
    int64_t now; /* what strftime_now formats (seconds since the epoch, local time) */
    jj_frame *root;
    struct jj_buf *out; /* where text goes: the render's, or a macro's or block set's capture */
} jj_ctx;

/* Errors at the current line: "NAME:LINE: message". */
int jj_fail(jj_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* TPI_ENOMEM or TPI_ELIMIT after a failed jj_alloc. */
int jj_oom(jj_ctx *c);
void *jj_new(jj_ctx *c, size_t bytes);
/* Enters a nested evaluation (fails past JJ_MAX_DEPTH or JJ_MAX_STEPS); pair with jj_leave. */
int jj_enter(jj_ctx *c);
static inline void jj_leave(jj_ctx *c) { c->depth--; }

/* ---- growing strings (in the arena) ---- */
typedef struct jj_buf {
    jj_ctx *c;
    char *p;
    size_t n, cap;
    int failed; /* an append failed: jj_buf_done reports it */
} jj_buf;
void jj_buf_init(jj_buf *b, jj_ctx *c);
void jj_buf_add(jj_buf *b, const char *p, size_t n);
void jj_buf_puts(jj_buf *b, const char *s);
/* The string built, or an error code after a failed append. */
int jj_buf_done(jj_buf *b, jv *out);

/* ---- values (value.c) ---- */
int jv_truthy(jv v);
const char *jv_type_name(jv v);
jj_list *jj_list_new(jj_ctx *c, size_t n);
jj_dict *jj_dict_new(jj_ctx *c, size_t cap);
/* Sets key to val (replacing an equal key, else appending). */
int jj_dict_set(jj_ctx *c, jj_dict *d, jv key, jv val);
/* The value of a string key, or NULL. */
jv *jj_dict_get(const jj_dict *d, const char *key, size_t n);
jv *jj_dict_find(jj_ctx *c, const jj_dict *d, jv key);
/* Python ==; *eq receives the result (nested values use the depth limit). */
int jv_equal(jj_ctx *c, jv a, jv b, int *eq);
/* Python <: -1/0/1 into *cmp; comparing unorderable types is an error. */
int jv_compare(jj_ctx *c, jv a, jv b, int *cmp);
/* str(v) appended to b, as Python prints it (repr inside lists and dicts). */
int jv_write_str(jj_ctx *c, jj_buf *b, jv v);
int jv_to_str(jj_ctx *c, jv v, jv *out);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson calls it;
 * indent < 0: none; item_sep/key_sep NULL: the defaults for the indent. */
typedef struct jj_json_opts {
    int indent;
    const char *indent_str; /* indent given as a string */
    int ensure_ascii, sort_keys;
    const char *item_sep, *key_sep;
} jj_json_opts;
int jv_to_json(jj_ctx *c, jv v, const jj_json_opts *o, jv *out);
/* Parses JSON text into values (ints stay ints); `what` names it in messages. */
int jj_json_parse(jj_ctx *c, const char *text, size_t n, const char *what, jv *out);
/* Python's repr of a float into buf (at least 32 bytes). */
void jj_float_repr(double f, char *buf, size_t size);
/* UTF-8 helpers: code points of s, and the byte offset of code point i (clamped). */
size_t jj_utf8_len(const char *p, size_t n);
size_t jj_utf8_offset(const char *p, size_t n, size_t i);
/* Python str.isspace for the code point starting at p; its length into *len (0: not space). */
size_t jj_space_at(const char *p, size_t n);
/* The items a for loop or a filter walks: list items, dict keys, string characters;
 * undefined is empty; anything else is an error. */
int jv_iterate(jj_ctx *c, jv v, jj_list **out);

/* ---- syntax tree (parser.c) ---- */
typedef enum jj_kind {
    /* expressions */
    JN_LIT, JN_NAME, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST, JN_NEG, JN_POS, JN_NOT, JN_AND,
    JN_OR, JN_BIN, JN_CMP, JN_COND, JN_LIST, JN_TUPLE, JN_DICT,
    /* statements */
    JN_TEXT, JN_OUT, JN_IF, JN_FOR, JN_SET, JN_SET_ATTR, JN_SET_BLOCK, JN_MACRO, JN_BREAK, JN_CONTINUE,
    JN_BODY, JN_FILTER_BLOCK, JN_WITH,
} jj_kind;

/* The variable a {% filter %} block's text is bound to for its filter chain (not a valid name). */
#define JJ_FILTER_BODY "(filter body)"

enum jj_op { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
             OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

typedef struct jj_node jj_node;
/* Arguments of a call, filter or test: positional, then name=value. */
typedef struct jj_args {
    jj_node **pos;
    size_t n_pos;
    const char **kw_names;
    jj_node **kw;
    size_t n_kw;
} jj_args;

struct jj_node {
    uint8_t kind;
    int8_t neg; /* JN_TEST: `is not` */
    int op;     /* operator, filter or test id */
    int line;
    const char *name; /* NUL-terminated: variables, attributes, macro names */
    jv lit;
    jj_node *a, *b, *c; /* operands; JN_IF: cond; JN_FOR: iter, filter */
    jj_node **items;    /* list items, body statements; JN_CMP: operands after a */
    size_t n;
    jj_node **items2; /* JN_DICT values, else-bodies; JN_CMP: unused */
    size_t n2;
    int *ops; /* JN_CMP: the operators */
    const char **names; /* JN_FOR / JN_SET targets, JN_MACRO parameters */
    size_t n_names;
    jj_args args; /* JN_CALL / JN_FILTER / JN_TEST arguments; JN_MACRO: defaults in kw by name */
};

typedef struct jj_template {
    jj_arena arena;
    char *name;
    jj_node *body;
} jj_template;

/* ---- lexer.c ---- */
typedef enum jj_tok_kind {
    JT_EOF, JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END, JT_NAME, JT_STRING, JT_INT,
    JT_FLOAT, JT_OP,
} jj_tok_kind;
typedef struct jj_tok {
    uint8_t kind;
    int line;
    const char *p; /* text, names, operators: in the source; strings: unescaped, in the arena */
    size_t n;
    int64_t i;
    double f;
} jj_tok;
/* Splits src into tokens (text with whitespace control applied, tags, expression tokens). */
int jj_lex(jj_arena *a, const char *name, const char *src, size_t len, jj_tok **toks, size_t *n_toks,
           tpi_error *err);

/* ---- parser.c ---- */
int jj_parse(jj_template *t, const jj_tok *toks, size_t n_toks, tpi_error *err);

/* ---- filters.c ---- */
/* Filter and test ids by name; -1 when unknown. */
int jj_filter_id(const char *name, size_t n);
int jj_test_id(const char *name, size_t n);
const char *jj_filter_name(int id);
typedef struct jj_argv {
    jv *pos;
    size_t n_pos;
    const char **kw_names;
    jv *kw;
    size_t n_kw;
} jj_argv;
int jj_apply_filter(jj_ctx *c, int id, jv x, const jj_argv *a, jv *out);
/* HTML-escapes str(x) into a Markup string (jinja2's escape; a Markup string passes unchanged unless force). */
int jj_html_escape(jj_ctx *c, jv x, int force, jv *out);
/* Python's `fmt % args` for %s, %r, %d, %i, %f and %% (the format filter, and `%` on a string). */
int jj_percent_format(jj_ctx *c, jv fmt, const jv *args, size_t n_args, jv *out);
int jj_apply_test(jj_ctx *c, int id, jv x, const jj_argv *a, int *out);
/* Methods of strings, dicts and lists (`.strip()`, `.items()`, ...); 1 when
 * the type has no method `name` (then *out is untouched). */
int jj_call_method(jj_ctx *c, jv self, const char *name, const jj_argv *a, jv *out);
/* The keyword argument `name`, else positional i, else NULL. */
const jv *jj_arg(const jj_argv *a, size_t i, const char *name);

/* ---- strings.c: Python's str operations ---- */
enum jj_case_mode { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_JINJA, CASE_TITLE_PY };
int jj_case(jj_ctx *c, jv s, int mode, jv *out);
/* str.strip / lstrip / rstrip (which: 3 both, 1 left, 2 right); chars NULL: whitespace. */
jv jj_strip(jv s, const jv *chars, int which);
/* str.replace(old, new, count); count < 0: all. */
int jj_replace(jj_ctx *c, jv s, jv old, jv with, int64_t count, jv *out);
/* str.split(sep, maxsplit) (sep NULL: runs of whitespace); rsplit when from_right. */
int jj_split(jj_ctx *c, jv s, const jv *sep, int64_t maxsplit, int from_right, jv *out);
/* The start of needle in hay at or after byte `from`, or -1. */
int64_t jj_find(jv hay, jv needle, size_t from);
int jj_str_method(jj_ctx *c, jv self, const char *name, const jj_argv *a, jv *out);

/* ---- eval.c ---- */
/* Makes the root frame holding the render's variables (before jj_set_var). */
int jj_root_init(jj_ctx *c);
int jj_set_var(jj_ctx *c, const char *name, jv v);
/* Runs the template into c->out. */
int jj_render(jj_ctx *c, const jj_template *t);
/* ---- operators.c ---- */
/* a OP b for the arithmetic and `~` operators (enum jj_op). */
int jj_binop(jj_ctx *c, int op, jv a, jv b, jv *out);
/* a OP b for ==, !=, <, <=, >, >=, in, not in into *res. */
int jj_compare(jj_ctx *c, int op, jv a, jv b, int *res);
/* jinja2's UndefinedError for v ("'name' is undefined"). */
int jj_undefined_error(jj_ctx *c, jv v);

/* Attribute lookup as jinja2's getattr: dict keys, namespace attributes, loop fields. */
int jj_getattr(jj_ctx *c, jv obj, const char *name, jv *out);
int jj_getitem(jj_ctx *c, jv obj, jv key, jv *out);

#endif
