/* Sessions (tpinfer.h): one conversation's generations on the serving
 * engine with one slot, so that each call's prompt reuses the KV of the
 * previous prompt and output it begins with. Rank 0 drives the engine one
 * step at a time (srv_engine_step) between calls; the other ranks run its
 * loop (srv_engine_run) and wait idle while rank 0 waits for its user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "server/engine_int.h"

struct tpi_session {
    srv_engine *e;
    int rank;
};

/* What one call gathers from the engine's events (rank 0). */
typedef struct call {
    srv_engine *e;
    const tpi_gen_opts *o;
    char *text;
    size_t len, cap;
    int32_t *ids;
    int64_t n_ids, cached;
    int done, finish, oom;
    char error[512];
} call;

static void append(call *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = (c->len + n + 1) * 2;
        char *t = realloc(c->text, cap);
        if (!t) {
            c->oom = 1;
            return;
        }
        c->text = t;
        c->cap = cap;
    }
    memcpy(c->text + c->len, s, n);
    c->len += n;
    c->text[c->len] = 0;
}

/* The output ids of the ending request, read from its slot. */
static void take_ids(call *c, uint64_t id)
{
    for (int i = 0; i < c->e->o.parallel; i++) {
        srv_slot *s = &c->e->slots[i];
        if (!s->req || s->req->id != id)
            continue;
        int64_t n = s->n_gen;
        if (!(c->ids = malloc((size_t)(n ? n : 1) * sizeof *c->ids))) {
            c->oom = 1;
            return;
        }
        memcpy(c->ids, s->ids + s->n_prompt, (size_t)n * sizeof *c->ids);
        c->n_ids = n;
    }
}

static void on_event(void *user, const srv_event *ev)
{
    call *c = user;
    if (ev->kind == SRV_EV_TEXT) {
        append(c, ev->text, ev->len);
        if (c->o->on_text && ev->len)
            c->o->on_text(c->o->user, 0, ev->text, ev->len);
        return;
    }
    if (ev->kind == SRV_EV_ERROR)
        snprintf(c->error, sizeof c->error, "%s", ev->error);
    else if (ev->finish != SRV_FINISH_CANCELLED)
        take_ids(c, ev->id);
    c->finish = ev->finish;
    c->cached = ev->cached_tokens;
    c->done = 1;
}

int tpi_session_create(tpi_session **out, tpi_model *m, const tpi_tokenizer *tok, int64_t ctx, const int32_t *eos_ids,
                       int n_eos, tpi_error *err)
{
    *out = NULL;
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    tpi_session *s = calloc(1, sizeof *s);
    if (!s)
        return tpi_err(err, TPI_ENOMEM, "session: out of memory");
    /* a prompt is prefilled in the forward's own chunks, as tpi_generate does */
    srv_engine_opts o = {.parallel = 1, .ctx = ctx > 0 ? ctx : info.max_position_embeddings,
                         .step_tokens = info.prefill_chunk, .eos_ids = eos_ids, .n_eos = n_eos};
    int rc = srv_engine_create(&s->e, m, tok, &o, err);
    if (rc) {
        free(s);
        return rc;
    }
    s->rank = tpi_comm_rank(m->comm);
    *out = s;
    return 0;
}

/* tpi_stop_reason from the engine's finish and the last id. */
static int stop_reason(const tpi_session *s, const call *c, int64_t max_new)
{
    if (c->finish == SRV_FINISH_LENGTH)
        return c->n_ids >= max_new ? TPI_STOP_LENGTH : TPI_STOP_CONTEXT;
    for (int i = 0; c->n_ids && i < s->e->n_eos; i++)
        if (c->ids[c->n_ids - 1] == s->e->eos[i])
            return TPI_STOP_EOS;
    return TPI_STOP_STRING;
}

/* Steps the engine until the call ends, then tells the other ranks to wait idle. */
static int run_call(tpi_session *s, call *c, tpi_error *err)
{
    int rc = 0;
    while (!c->done && (rc = srv_engine_step(s->e, err)) == 0)
        ;
    if (rc == 0)
        rc = srv_engine_step(s->e, err);
    if (rc > 0)
        rc = tpi_err(err, TPI_EINVAL, "session: the engine stopped");
    if (!rc && c->error[0])
        rc = tpi_err(err, strstr(c->error, "not finite") ? TPI_ENONFINITE : TPI_ENOMEM, "%s", c->error);
    if (!rc && c->oom)
        rc = tpi_err(err, TPI_ENOMEM, "session: out of memory for the output");
    return rc;
}

int tpi_session_generate(tpi_session *s, const int32_t *ids, int64_t n, const tpi_gen_opts *o, tpi_gen_result *r,
                         int64_t *cached, tpi_error *err)
{
    memset(r, 0, sizeof *r);
    if (s->rank != 0)
        return tpi_err(err, TPI_EINVAL, "session: generate runs on rank 0 (the others follow)");
    int64_t ctx = s->e->o.ctx;
    if (n >= ctx)
        return tpi_err(err, TPI_ELIMIT, "session: the prompt has %lld tokens, the context %lld: no room for a reply",
                       (long long)n, (long long)ctx);
    srv_params p = {.sampling = o->sampling, .stop = o->stop, .n_stop = o->n_stop,
                    .max_tokens = o->max_new_tokens < ctx - n ? o->max_new_tokens : ctx - n};
    if (p.max_tokens < 1)
        return tpi_err(err, TPI_EINVAL, "session: max_new_tokens must be >= 1, found %lld",
                       (long long)o->max_new_tokens);
    call c = {.e = s->e, .o = o};
    uint64_t id;
    int rc = srv_engine_submit(s->e, ids, n, &p, on_event, &c, &id, err);
    if (!rc)
        rc = run_call(s, &c, err);
    if (!rc) {
        r->ids = c.ids;
        r->n_ids = c.n_ids;
        r->stop_reason = stop_reason(s, &c, o->max_new_tokens);
        r->text = c.text ? c.text : calloc(1, 1);
        r->text_len = c.len;
        c.ids = NULL;
        c.text = NULL;
        if (cached)
            *cached = c.cached;
    }
    free(c.ids);
    free(c.text);
    return rc;
}

int tpi_session_follow(tpi_session *s, tpi_error *err)
{
    if (s->rank == 0)
        return tpi_err(err, TPI_EINVAL, "session: rank 0 generates; the other ranks follow");
    return srv_engine_run(s->e, err);
}

int tpi_session_close(tpi_session *s, tpi_error *err)
{
    if (s->rank != 0)
        return 0;
    srv_engine_stop(s->e);
    int rc = srv_engine_step(s->e, err);
    return rc < 0 ? rc : 0;
}

void tpi_session_free(tpi_session *s)
{
    if (!s)
        return;
    srv_engine_free(s->e);
    free(s);
}
