/* tpi_server: the engine on every rank, and on rank 0 the tokenizer, the
 * chat template and the HTTP side (DESIGN.md "Serving"). */
#include "server/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "model/model.h"

#define DEFAULT_PORT 8080
#define DEFAULT_PARALLEL 4
#define DEFAULT_QUEUE 64
#define DEFAULT_MAX_BODY ((int64_t)1 << 20)
#define DEFAULT_TIMEOUT_S 60
#define MAX_CONNECTIONS 1024 /* one thread each */

void srv_log(tpi_server *s, const char *fmt, ...)
{
    if (!s->on_log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->on_log(s->user, line);
}

char *srv_token_text(void *ctx, int32_t id)
{
    tpi_server *s = ctx;
    char *text = NULL;
    if (tpi_tokenizer_decode(s->tok, &id, 1, 0, &text, NULL, NULL))
        return NULL;
    return text;
}

static char *piece_of(const tpi_tokenizer *tok, int32_t id)
{
    const char *p = id >= 0 ? tpi_tokenizer_piece(tok, id) : NULL;
    return p ? strdup(p) : NULL;
}

/* The chat prompt as text: the model's template when it has one, else the
 * built-in format. *add_special: whether the tokenizer adds BOS (a template
 * writes it itself, as apply_chat_template(tokenize=True) encodes with
 * add_special_tokens=False). */
static int render_chat(tpi_server *s, const srv_api_request *r, char **text, size_t *len, int *add_special,
                       tpi_error *err)
{
    if (s->tmpl) {
        tpi_chat_render_opts o = {.add_generation_prompt = 1, .bos_token = s->bos, .eos_token = s->eos};
        *add_special = 0;
        return tpi_chat_template_render(s->tmpl, r->messages_json, strlen(r->messages_json), &o, text, len, err);
    }
    if (s->fmt == TPI_CHAT_NONE)
        return tpi_err(err, TPI_EINVAL, "%s", s->no_chat);
    *add_special = 1;
    int rc = tpi_chat_format_apply(s->fmt, (const char *const *)r->roles, (const char *const *)r->contents, r->n_msgs,
                                   text, err);
    if (!rc)
        *len = strlen(*text);
    return rc;
}

int srv_prompt_ids(tpi_server *s, const srv_api_request *r, int32_t **ids, int64_t *n, tpi_error *err)
{
    *ids = NULL;
    *n = 0;
    if (r->route == SRV_ROUTE_COMPLETION && r->prompt_ids) {
        if (!(*ids = malloc((size_t)r->n_prompt_ids * sizeof **ids)))
            return tpi_err(err, TPI_ENOMEM, "out of memory");
        memcpy(*ids, r->prompt_ids, (size_t)r->n_prompt_ids * sizeof **ids);
        *n = r->n_prompt_ids;
        return 0;
    }
    char *text = NULL;
    size_t len = 0, n_ids = 0;
    int add_special = 1, rc = 0;
    if (r->route == SRV_ROUTE_CHAT)
        rc = render_chat(s, r, &text, &len, &add_special, err);
    if (!rc)
        rc = tpi_tokenizer_encode(s->tok, text ? text : r->prompt, text ? len : r->prompt_len, add_special, ids,
                                  &n_ids, err);
    free(text);
    if (rc)
        return rc == TPI_ENOMEM ? rc : TPI_EINVAL;
    *n = (int64_t)n_ids;
    if (!n_ids)
        return tpi_err(err, TPI_EINVAL, "%s: the prompt has no tokens", r->route == SRV_ROUTE_CHAT ? "messages" : "prompt");
    return 0;
}

static const char *format_name(tpi_chat_format f)
{
    static const char *const names[] = {"none", "llama3", "llama2", "mistral", "chatml"};
    return (unsigned)f < 5 ? names[f] : "?";
}

/* Rank 0: tokenizer, chat template or format, the token strings. */
static int load_text_side(tpi_server *s, const tpi_serve_opts *o, tpi_error *err)
{
    int rc = tpi_tokenizer_load(&s->tok, o->model_dir, err);
    if (rc)
        return rc;
    /* A template outside the Jinja subset is an error at load, naming its
     * line; the server still serves completions, and chat requests get that
     * error (the built-in formats are only for models without a template). */
    tpi_error terr = {0};
    rc = tpi_chat_template_load(&s->tmpl, o->model_dir, &terr);
    if (rc == TPI_ENOMEM)
        return tpi_err(err, rc, "%s", terr.msg);
    if (rc) {
        srv_log(s, "chat completions are refused: the model's chat template cannot be used: %s", terr.msg);
        snprintf(s->no_chat, sizeof s->no_chat, "the model's chat template cannot be used: %s", terr.msg);
        s->tmpl = NULL;
        s->fmt = TPI_CHAT_NONE;
    } else if (!s->tmpl) {
        tpi_error why = {0};
        if (tpi_chat_format_detect(o->model_dir, &s->fmt, &why))
            snprintf(s->no_chat, sizeof s->no_chat, "the model has no chat template that tpinfer can use (%s); "
                     "use /v1/completions", why.msg);
    }
    const int32_t *eos;
    s->bos = piece_of(s->tok, tpi_tokenizer_bos(s->tok));
    s->eos = tpi_tokenizer_eos(s->tok, &eos) > 0 ? piece_of(s->tok, eos[0]) : NULL;
    s->vocab = tpi_tokenizer_vocab_size(s->tok);
    return 0;
}

static char *dir_name(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    return strndup(dir + b, n - b);
}

static int copy_opts(tpi_server *s, const tpi_serve_opts *o, tpi_error *err)
{
    if (!o->model_dir)
        return tpi_err(err, TPI_EINVAL, "serve: model_dir is required");
    if (o->port < -1 || o->port > 65535 || o->parallel < 0 || o->queue < 0 || o->ctx < 0 || o->kv_memory_bytes < 0 ||
        o->max_body_bytes < 0 || o->timeout_s < 0)
        return tpi_err(err, TPI_EINVAL, "serve: an option is out of range (port %d, parallel %d, queue %d)", o->port,
                       o->parallel, o->queue);
    s->host = strdup(o->host ? o->host : "127.0.0.1");
    s->api_key = o->api_key && o->api_key[0] ? strdup(o->api_key) : NULL;
    s->model_name = o->model_name ? strdup(o->model_name) : dir_name(o->model_dir);
    if (!s->host || !s->model_name || (o->api_key && o->api_key[0] && !s->api_key))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    s->port = o->port ? o->port : DEFAULT_PORT;
    s->max_body = o->max_body_bytes ? o->max_body_bytes : DEFAULT_MAX_BODY;
    s->timeout_s = o->timeout_s ? o->timeout_s : DEFAULT_TIMEOUT_S;
    s->max_connections = MAX_CONNECTIONS;
    s->on_log = o->on_log;
    s->user = o->user;
    s->created = (int64_t)time(NULL);
    return 0;
}

/* KV positions a pool of `bytes` per rank holds: keys and values in f32 for
 * every layer and rank 0's share of the KV heads (kv_cache.c's layout). */
static int64_t positions_of(const tpi_model *m, int64_t bytes)
{
    tpi_model_info mi;
    tpi_model_get_info(m, &mi);
    int64_t ranks = tpi_comm_size(m->comm), heads = (mi.n_kv_heads + ranks - 1) / ranks;
    int64_t per = 2 * (int64_t)sizeof(float) * mi.n_layers * (heads ? heads : 1) * mi.head_dim;
    return per > 0 ? bytes / per : 0;
}

static int create_engine(tpi_server *s, const tpi_serve_opts *o, tpi_error *err)
{
    tpi_model_info mi;
    tpi_model_get_info(s->m, &mi);
    s->ctx = o->ctx ? o->ctx : mi.max_position_embeddings;
    if (s->ctx > mi.max_position_embeddings)
        return tpi_err(err, TPI_EINVAL, "serve: ctx %lld is beyond the model's max_position_embeddings %lld",
                       (long long)s->ctx, (long long)mi.max_position_embeddings);
    srv_engine_opts eo = {.parallel = o->parallel ? o->parallel : DEFAULT_PARALLEL, .ctx = s->ctx,
                          .queue = o->queue ? o->queue : DEFAULT_QUEUE};
    if (o->kv_memory_bytes) {
        eo.kv_pool_positions = positions_of(s->m, o->kv_memory_bytes);
        if (eo.kv_pool_positions < s->ctx)
            return tpi_err(err, TPI_EINVAL, "serve: kv_memory %lld bytes holds %lld positions, fewer than one "
                           "sequence's context of %lld", (long long)o->kv_memory_bytes,
                           (long long)eo.kv_pool_positions, (long long)s->ctx);
    }
    if (s->vocab > mi.vocab_size)
        s->vocab = mi.vocab_size; /* prompt ids must be the model's too */
    int rc = srv_engine_create(&s->engine, s->m, s->tok, &eo, err);
    if (!rc && s->rank == 0) {
        srv_stats st;
        srv_engine_stats(s->engine, &st);
        srv_log(s, "loaded %s: %s, %d rank%s, vocab %lld, ctx %lld, parallel %d, queue %d, KV pool %lld positions; "
                "chat: %s", s->model_name, mi.architecture, tpi_comm_size(s->comm), tpi_comm_size(s->comm) > 1 ? "s" : "",
                (long long)s->vocab, (long long)s->ctx, eo.parallel, eo.queue, (long long)st.kv_positions_total,
                s->tmpl ? "the model's template" : s->fmt ? format_name(s->fmt) : "none (completions only)");
    }
    return rc;
}

int tpi_server_create(tpi_server **out, tpi_model *m, const tpi_serve_opts *o, tpi_error *err)
{
    *out = NULL;
    tpi_server *s = calloc(1, sizeof *s);
    if (!s)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    s->m = m;
    s->comm = m->comm;
    s->rank = tpi_comm_rank(m->comm);
    pthread_mutex_init(&s->mu, NULL);
    int rc = copy_opts(s, o, err);
    if (!rc && s->rank == 0)
        rc = load_text_side(s, o, err);
    rc = tpi_model_agree_error(s->comm, rc, err);
    if (!rc)
        rc = create_engine(s, o, err);
    if (!rc && s->rank == 0)
        rc = srv_http_start(s, err);
    rc = tpi_model_agree_error(s->comm, rc, err);
    if (rc) {
        tpi_server_free(s);
        return rc;
    }
    if (s->rank == 0)
        srv_log(s, "listening on http://%s%s%s:%d (OpenAI API under /v1; pid %ld)", strchr(s->host, ':') ? "[" : "",
                s->host, strchr(s->host, ':') ? "]" : "", s->port, (long)getpid());
    *out = s;
    return 0;
}

int tpi_server_run(tpi_server *s, tpi_error *err)
{
    int rc = srv_engine_run(s->engine, err);
    if (s->rank == 0) {
        pthread_mutex_lock(&s->mu);
        s->closing = 1;
        pthread_mutex_unlock(&s->mu);
        atomic_store(&s->engine_done, 1);
        srv_http_stop(s);
        srv_log(s, "stopped");
    }
    return rc;
}

void tpi_server_stop(tpi_server *s)
{
    if (s && s->rank == 0 && s->engine)
        srv_engine_stop(s->engine);
}

void tpi_server_free(tpi_server *s)
{
    if (!s)
        return;
    if (s->rank == 0) {
        atomic_store(&s->engine_done, 1);
        srv_http_stop(s);
    }
    srv_engine_free(s->engine);
    tpi_chat_template_free(s->tmpl);
    tpi_tokenizer_free(s->tok);
    free(s->bos);
    free(s->eos);
    free(s->host);
    free(s->api_key);
    free(s->model_name);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
