/* tpinfer chat: a conversation with an instruct model on stdin/stdout, on a
 * session of the serving engine: rank 0 reads each line, keeps the
 * conversation and formats it with the model's chat template (or a
 * built-in format); the KV of the conversation so far stays cached, so each
 * turn prefills only its new tokens. The other ranks follow rank 0's
 * generations, waiting idle while it waits for its user. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "options.h"
#include "signals.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer chat -m DIR [options]\n"
               "  -m, --model DIR          instruct checkpoint with tokenizer_config.json's chat_template\n"
               "      --system TEXT        system prompt\n"
               "  -n, --max-new N          new tokens per reply at most (default 512)\n"
               "      --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S\n"
               "                           sampling as in 'tpinfer generate' (default: generation_config.json)\n"
               "      --ctx N              context in tokens (default max_position_embeddings)\n" ENGINE_USAGE
               "Chat formats: llama3, llama2, mistral and chatml (qwen), recognised from the template.\n"
               "Each line on stdin is a user turn; the reply streams to stdout. End with EOF (Ctrl-D).\n");
}

typedef struct chat_args {
    const char *dir, *sys;
    cli_sampling sampling;
    engine_opts engine;
} chat_args;

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(chat_args *a, int argc, char **argv)
{
    enum { O_SYS = 256 };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"system", required_argument, 0, O_SYS},
        {"help", no_argument, 0, 'h'},        SAMPLING_LONG_OPTIONS,
        ENGINE_LONG_OPTIONS,                  {0, 0, 0, 0},
    };
    a->sampling = (cli_sampling){.max_new = 512, .set_max_new = 1};
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "m:n:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->dir = optarg; break;
        case O_SYS: a->sys = optarg; break;
        case 'h': usage(stdout); return -1;
        default:
            if (!engine_flag(&a->engine, c, optarg))
                bad = cli_sampling_flag(&a->sampling, "chat", c, optarg) != 1; /* getopt or it said why */
            break;
        }
    }
    if (!bad && a->sampling.max_new < 1) {
        fprintf(stderr, "tpinfer chat: -n/--max-new: expected at least 1 token per reply, found 0\n");
        bad = 1;
    }
    if (bad || !a->dir || optind != argc) {
        if (!bad)
            fprintf(stderr, "tpinfer chat: %s\n", !a->dir ? "-m DIR is required" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    return engine_resolve(&a->engine, "chat");
}

/* The conversation so far: roles are string constants, messages malloc'd. */
typedef struct conversation {
    const char **roles;
    char **msgs;
    int64_t n, cap, first; /* first: the first message after the system prompt */
} conversation;

/* Appends msg (taking it); -1 when out of memory (msg freed). */
static int conv_add(conversation *c, const char *role, char *msg)
{
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 16;
        const char **r = realloc(c->roles, (size_t)cap * sizeof *r);
        if (r)
            c->roles = r;
        char **m = r ? realloc(c->msgs, (size_t)cap * sizeof *m) : NULL;
        if (!m) {
            free(msg);
            return -1;
        }
        c->msgs = m;
        c->cap = cap;
    }
    c->roles[c->n] = role;
    c->msgs[c->n++] = msg;
    return 0;
}

/* Forgets every message after the system prompt. */
static void conv_restart(conversation *c)
{
    while (c->n > c->first)
        free(c->msgs[--c->n]);
}

static void conv_free(conversation *c)
{
    c->first = 0;
    conv_restart(c);
    free(c->roles);
    free(c->msgs);
}

/* What a chat holds; run_free releases it all. */
typedef struct chat_run {
    tpi_comm *comm;
    tpi_tokenizer *tok;
    tpi_model *m;
    tpi_chat_template *tmpl; /* the model's own template, or NULL: fmt */
    tpi_chat_format fmt;
    tpi_session *sess;
    tpi_gen_opts o;
    int32_t eos[32];
    conversation conv;
} chat_run;

static void run_free(chat_run *r)
{
    conv_free(&r->conv);
    tpi_session_free(r->sess);
    tpi_chat_template_free(r->tmpl);
    tpi_tokenizer_free(r->tok);
    tpi_model_free(r->m);
    tpi_comm_free(r->comm);
}

static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    (void)user, (void)seq;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* A turn ends at the model's eos ids, the tokenizer's, or the end-of-turn
 * tokens of the chat formats. */
static void set_eos(chat_run *r)
{
    tpi_model_info info;
    tpi_model_get_info(r->m, &info);
    int n = 0;
    const int32_t *teos;
    int nt = tpi_tokenizer_eos(r->tok, &teos);
    for (int i = 0; i < info.n_eos && n < 32; i++)
        r->eos[n++] = info.eos_ids[i];
    for (int i = 0; i < nt && n < 32; i++)
        r->eos[n++] = teos[i];
    static const char *const ends[] = {"<|eot_id|>", "<|im_end|>", "</s>", "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0] && n < 32; i++) {
        int32_t id = tpi_tokenizer_token_id(r->tok, ends[i]);
        if (id >= 0)
            r->eos[n++] = id;
    }
    r->o.eos_ids = r->eos;
    r->o.n_eos = n;
}

static int run_init(chat_run *r, const chat_args *a, tpi_error *err)
{
    int rc = tpi_chat_template_load(&r->tmpl, a->dir, err);
    if (!rc && !r->tmpl)
        rc = tpi_chat_format_detect(a->dir, &r->fmt, err);
    if (!rc)
        rc = tpi_gen_opts_default(&r->o, a->dir, err);
    if (!rc)
        rc = tpi_tokenizer_load(&r->tok, a->dir, err);
    if (!rc)
        rc = engine_load(&a->engine, &r->m, a->dir, "chat", err);
    if (!rc && a->sys) {
        char *sys = strdup(a->sys);
        rc = sys && !conv_add(&r->conv, "system", sys) ? 0 : cli_error(err, TPI_ENOMEM, "out of memory");
        r->conv.first = r->conv.n;
    }
    if (rc)
        return rc;
    set_eos(r);
    cli_sampling_apply(&a->sampling, &r->o);
    r->o.tokenizer = r->tok;
    r->o.on_text = on_text;
    return tpi_session_create(&r->sess, r->m, r->tok, r->o.max_ctx, r->o.eos_ids, r->o.n_eos < 16 ? r->o.n_eos : 16,
                              err);
}

/* Rank 0's next line without its line end; NULL at the end of input. */
static char *read_line(tpi_comm *comm)
{
    char *line = NULL;
    size_t cap = 0;
    if (isatty(0)) {
        fprintf(stderr, "> ");
        fflush(stderr);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0 && cli_signal(NULL)) /* a signal ended the wait for input: not the end of it */
        cli_signal_exit(comm, "chat");
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    return line;
}

/* A growing string; oom set once an append failed. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2 + 64;
        char *t = realloc(b->p, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->p = t;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* s as a JSON string, quoted and escaped. */
static void put_json(sbuf *b, const char *s)
{
    put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\')
            put(b, (const char[]){'\\', (char)*c}, 2);
        else if (*c < 0x20)
            put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", *c));
        else
            put(b, (const char *)c, 1);
    }
    put(b, "\"", 1);
}

/* The conversation through the model's template, its messages as
 * [{"role": ..., "content": ...}, ...]. */
static int render(chat_run *r, char **text, tpi_error *err)
{
    sbuf b = {0};
    put(&b, "[", 1);
    for (int64_t i = 0; i < r->conv.n; i++) {
        put(&b, i ? ",{\"role\":" : "{\"role\":", i ? 9 : 8);
        put_json(&b, r->conv.roles[i]);
        put(&b, ",\"content\":", 11);
        put_json(&b, r->conv.msgs[i]);
        put(&b, "}", 1);
    }
    put(&b, "]", 1);
    if (b.oom) {
        free(b.p);
        return cli_error(err, TPI_ENOMEM, "out of memory");
    }
    const int32_t *eos;
    int n_eos = tpi_tokenizer_eos(r->tok, &eos);
    int32_t bos = tpi_tokenizer_bos(r->tok);
    tpi_chat_render_opts o = {.add_generation_prompt = 1,
                              .bos_token = bos >= 0 ? tpi_tokenizer_piece(r->tok, bos) : NULL,
                              .eos_token = n_eos > 0 ? tpi_tokenizer_piece(r->tok, eos[0]) : NULL};
    size_t n;
    int rc = tpi_chat_template_render(r->tmpl, b.p, b.len, &o, text, &n, err);
    free(b.p);
    return rc;
}

/* One user turn on rank 0: format, encode, generate on the session (the
 * conversation's earlier tokens are cached), then keep the reply without
 * its eos. */
static int turn(chat_run *r, char *line, tpi_error *err)
{
    if (conv_add(&r->conv, "user", line))
        return cli_error(err, TPI_ENOMEM, "out of memory");
    char *text = NULL, *reply = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    tpi_gen_result res = {0};
    int rc = r->tmpl ? render(r, &text, err)
                     : tpi_chat_format_apply(r->fmt, r->conv.roles, (const char *const *)r->conv.msgs, r->conv.n,
                                             &text, err);
    /* a template writes the BOS itself, as transformers' apply_chat_template */
    if (!rc)
        rc = tpi_tokenizer_encode(r->tok, text, strlen(text), !r->tmpl, &ids, &n_ids, err);
    if (!rc)
        rc = tpi_session_generate(r->sess, ids, (int64_t)n_ids, &r->o, &res, NULL, err);
    int64_t keep = res.n_ids - (res.stop_reason == TPI_STOP_EOS && res.n_ids > 0);
    if (!rc)
        rc = tpi_tokenizer_decode(r->tok, res.ids, (size_t)keep, 1, &reply, NULL, err);
    if (!rc) {
        printf("\n");
        fflush(stdout);
        if (res.stop_reason == TPI_STOP_CONTEXT)
            fprintf(stderr, "tpinfer chat: the context limit was reached; the reply is cut\n");
    }
    if (!rc && conv_add(&r->conv, "assistant", reply))
        rc = cli_error(err, TPI_ENOMEM, "out of memory");
    tpi_gen_result_free(&res);
    free(text);
    free(ids);
    return rc;
}

static int converse(chat_run *r, tpi_error *err)
{
    if (tpi_comm_rank(r->comm) != 0)
        return tpi_session_follow(r->sess, err);
    for (char *line; (line = read_line(r->comm));) {
        if (!line[0]) {
            free(line);
            continue;
        }
        int rc = turn(r, line, err);
        if (rc == TPI_ELIMIT) {
            fprintf(stderr, "tpinfer chat: %s; the conversation starts over\n", err->msg);
            conv_restart(&r->conv);
        } else if (rc) {
            return rc;
        }
    }
    return tpi_session_close(r->sess, err);
}

int cmd_chat(int argc, char **argv)
{
    chat_args a = {0};
    chat_run r = {0};
    tpi_error err = {0};
    int code = parse_args(&a, argc, argv);
    if (code == 0 && engine_comm(&a.engine, &r.comm, &argc, &argv, "chat"))
        code = 1;
    if (code == 0 && (run_init(&r, &a, &err) || converse(&r, &err)))
        code = cli_fail(r.comm, "chat", &err);
    run_free(&r);
    return code < 0 ? 0 : code;
}
