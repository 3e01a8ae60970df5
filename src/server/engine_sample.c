/* Rank 0 after each forward: the next token of every sequence whose known
 * tokens are all in the KV (OpenAI's presence and frequency penalties, then
 * the sampler of src/generate), its logprobs, its text through gen_text
 * (stop strings held back and cut), the end of the request, and the
 * events and statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "server/engine_int.h"
#include "core/vec.h"

void srv_apply_penalties(float *w, int64_t vocab, const int32_t *gen, int64_t n, double presence,
                         double frequency, int32_t *count)
{
    /* OpenAI: mu[j] -= c[j] * frequency_penalty + (c[j] > 0) * presence_penalty */
    for (int64_t i = 0; i < n; i++)
        if (gen[i] >= 0 && gen[i] < vocab)
            count[gen[i]]++;
    for (int64_t i = 0; i < n; i++) {
        int32_t t = gen[i];
        if (t < 0 || t >= vocab || !count[t])
            continue;
        w[t] = (float)((double)w[t] - ((double)count[t] * frequency + presence));
        count[t] = 0; /* once per id; the scratch is zero again at the end */
    }
}

void srv_logprob_of(const float *logits, int64_t vocab, int32_t id, int n_top, srv_logprob *out)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < vocab; j++)
        if (logits[j] > mx)
            mx = logits[j];
    for (int64_t j = 0; j < vocab; j++)
        sum += exp((double)logits[j] - mx);
    double lse = mx + log(sum);
    out->id = id;
    out->logprob = (float)((double)logits[id] - lse);
    if (n_top > vocab)
        n_top = (int)vocab;
    out->n_top = n_top;
    /* the n_top largest, descending, ties to the lower id: insertion into a short list */
    for (int k = 0; k < n_top; k++)
        out->top_ids[k] = -1;
    for (int64_t j = 0; j < vocab && n_top; j++) {
        int k = n_top;
        while (k > 0 && (out->top_ids[k - 1] < 0 || logits[j] > logits[out->top_ids[k - 1]]))
            k--;
        if (k >= n_top)
            continue;
        memmove(out->top_ids + k + 1, out->top_ids + k, (size_t)(n_top - k - 1) * sizeof *out->top_ids);
        out->top_ids[k] = (int32_t)j;
    }
    for (int k = 0; k < n_top; k++)
        out->top_logprobs[k] = (float)((double)logits[out->top_ids[k]] - lse);
}

static void emit(srv_slot *s, const srv_event *ev)
{
    if (s->req->fn)
        s->req->fn(s->req->user, ev);
}

/* gen_text's on_text: a TEXT event with the tokens since the last one. */
static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    (void)seq;
    srv_slot *s = user;
    srv_event ev = {.kind = SRV_EV_TEXT, .id = s->req->id, .text = text, .len = len, .lp = s->n_lp ? s->lp : NULL,
                    .n_lp = s->n_lp};
    emit(s, &ev);
    s->n_lp = 0;
}

static int ensure_ids(srv_slot *s, int64_t n)
{
    if (n <= s->cap)
        return 0;
    int64_t cap = n * 2;
    int32_t *ids = realloc(s->ids, (size_t)cap * sizeof *ids);
    if (!ids)
        return TPI_ENOMEM;
    s->ids = ids;
    s->cap = cap;
    return 0;
}

int srv_slot_start(srv_engine *e, srv_slot *s, srv_request *r)
{
    tpi_error err = {0};
    s->req = r;
    s->n_gen = 0;
    s->n_lp = 0;
    s->first_done = 0;
    s->n_prompt = r->n_prompt;
    s->gopts = (tpi_gen_opts){.stop = r->p.stop, .n_stop = r->p.n_stop, .tokenizer = e->tok, .on_text = on_text,
                              .user = s};
    if (r->p.max_tokens == 0)
        r->p.max_tokens = e->o.ctx - r->n_prompt;
    int rc = ensure_ids(s, r->n_prompt + 1);
    if (rc)
        tpi_err(&err, rc, "engine: out of memory for a prompt of %lld tokens", (long long)r->n_prompt);
    else
        memcpy(s->ids, r->prompt, (size_t)r->n_prompt * sizeof *s->ids);
    s->n_ids = rc ? 0 : r->n_prompt;
    if (!rc && (rc = tpi_sampler_init(&s->sampler, &r->p.sampling, e->vocab, &err)) == 0)
        s->have_sampler = 1;
    if (!rc && r->p.logprobs && !(s->lp = realloc(s->lp, 16 * sizeof *s->lp)))
        rc = tpi_err(&err, TPI_ENOMEM, "engine: out of memory");
    s->cap_lp = s->lp ? 16 : 0;
    if (!rc)
        rc = tpi_gen_text_start(&s->text, &s->gopts, 0, r->prompt, r->n_prompt, &err);
    if (rc)
        srv_slot_end(e, s, 0, err.msg, 0);
    return rc;
}

/* The request's counters and the KV figures, before its last event, so
 * that a client seeing DONE sees the KV given back. */
static void count_end(srv_engine *e, const srv_slot *s, int finish, const char *msg)
{
    pthread_mutex_lock(&e->mu);
    e->n_running--;
    e->stats.running = e->n_running;
    if (msg)
        e->stats.requests_failed++;
    else if (finish == SRV_FINISH_CANCELLED)
        e->stats.requests_cancelled++;
    else
        e->stats.requests_ok++;
    e->stats.prompt_tokens += s->n_prompt;
    e->stats.prompt_tokens_cached += s->n_cached;
    e->stats.generated_tokens += s->n_gen;
    pthread_mutex_unlock(&e->mu);
    srv_stats_update(e);
}

void srv_slot_end(srv_engine *e, srv_slot *s, int finish, const char *msg, int keep)
{
    srv_request *r = s->req;
    if (!keep)
        srv_plan_add_op(e, SRV_OP_CLEAR, s - e->slots, 0, 0);
    if (!keep || msg)
        s->n_ids = 0; /* nothing of it is kept for reuse */
    s->req = NULL;
    count_end(e, s, finish, msg);
    s->req = r;
    if (msg) {
        srv_event ev = {.kind = SRV_EV_ERROR, .id = r->id, .error = msg, .prompt_tokens = r->n_prompt,
                        .completion_tokens = s->n_gen, .cached_tokens = s->n_cached};
        emit(s, &ev);
    } else {
        if (s->n_lp) /* tokens whose text never came (cut by a stop string) */
            on_text(s, 0, "", 0);
        srv_event ev = {.kind = SRV_EV_DONE, .id = r->id, .finish = finish, .prompt_tokens = r->n_prompt,
                        .completion_tokens = s->n_gen, .cached_tokens = s->n_cached};
        emit(s, &ev);
    }
    if (s->have_sampler)
        tpi_sampler_free(&s->sampler);
    s->have_sampler = 0;
    tpi_gen_text_free(&s->text);
    s->req = NULL;
    s->last_used = e->step;
    for (int i = 0; r->stop && i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->prompt);
    free(r);
}

/* The next token of slot s from its row of logits (NULL: the argmax
 * forward's pick). Returns -1 for non-finite logits. */
static int32_t pick(srv_engine *e, srv_slot *s, const float *row, int32_t argmax_pick)
{
    if (!row)
        return argmax_pick;
    if (!tpi_all_finite_f32(row, e->vocab))
        return -1;
    const srv_params *p = &s->req->p;
    const float *x = row;
    if (p->presence_penalty != 0 || p->frequency_penalty != 0) {
        memcpy(e->work, row, (size_t)e->vocab * sizeof *e->work);
        srv_apply_penalties(e->work, e->vocab, s->ids + s->n_prompt, s->n_gen, p->presence_penalty,
                            p->frequency_penalty, e->count);
        x = e->work;
    }
    return tpi_sampler_pick(&s->sampler, x, e->vocab, s->ids, s->n_ids);
}

static int add_logprob(srv_engine *e, srv_slot *s, const float *row, int32_t tok)
{
    if (s->n_lp == s->cap_lp) {
        int cap = s->cap_lp ? 2 * s->cap_lp : 16;
        srv_logprob *lp = realloc(s->lp, (size_t)cap * sizeof *lp);
        if (!lp)
            return TPI_ENOMEM;
        s->lp = lp;
        s->cap_lp = cap;
    }
    srv_logprob_of(row, e->vocab, tok, s->req->p.top_logprobs, &s->lp[s->n_lp++]);
    return 0;
}

static void take_ttft(srv_engine *e, srv_slot *s)
{
    if (s->first_done)
        return;
    s->first_done = 1;
    double t = tpi_seconds() - s->req->t_submit;
    pthread_mutex_lock(&e->mu);
    for (int b = 0; b < SRV_TTFT_BUCKETS; b++)
        e->stats.ttft_count[b] += t <= srv_ttft_bounds[b];
    e->stats.ttft_sum += t;
    pthread_mutex_unlock(&e->mu);
}

/* Appends tok to slot s, reports its text and ends the request when it
 * should: eos, a stop string, max_tokens. */
static void advance(srv_engine *e, srv_slot *s, const float *row, int32_t tok)
{
    tpi_error err = {0};
    const srv_params *p = &s->req->p;
    take_ttft(e, s);
    int eos = 0, rc = ensure_ids(s, s->n_ids + 2);
    for (int i = 0; i < e->n_eos && !p->ignore_eos; i++)
        eos |= tok == e->eos[i];
    if (!rc && p->logprobs && row && !eos)
        rc = add_logprob(e, s, row, tok);
    if (rc) {
        srv_slot_end(e, s, 0, "engine: out of memory", 0);
        return;
    }
    s->ids[s->n_ids++] = tok;
    s->n_gen++;
    int finish = eos ? SRV_FINISH_STOP : 0;
    if (!finish) {
        if ((rc = tpi_gen_text_push(&s->text, tok, &err))) {
            srv_slot_end(e, s, 0, err.msg, 0);
            return;
        }
        if (tpi_gen_text_emit(&s->text, &s->gopts, 0, 0))
            finish = SRV_FINISH_STOP;
    }
    if (!finish && s->n_gen >= p->max_tokens)
        finish = SRV_FINISH_LENGTH;
    if (finish && finish != SRV_FINISH_STOP) {
        if ((rc = tpi_gen_text_flush(&s->text, &err))) {
            srv_slot_end(e, s, 0, err.msg, 0);
            return;
        }
        if (tpi_gen_text_emit(&s->text, &s->gopts, 0, 1))
            finish = SRV_FINISH_STOP;
    } else if (eos) {
        if (!tpi_gen_text_flush(&s->text, &err))
            tpi_gen_text_emit(&s->text, &s->gopts, 0, 1);
    }
    if (finish)
        srv_slot_end(e, s, finish, NULL, 1);
}

void srv_sample_step(srv_engine *e, int argmax)
{
    for (int i = 0; i < e->o.parallel; i++) {
        srv_slot *s = &e->slots[i];
        if (!s->req || s->row < 0)
            continue;
        const float *row = argmax ? NULL : e->logits + (size_t)s->row * (size_t)e->vocab;
        int32_t tok = pick(e, s, row, argmax ? e->next[s->row] : 0);
        if (tok < 0) {
            srv_slot_end(e, s, 0, "engine: logits are not finite (NaN or infinity)", 0);
            continue;
        }
        advance(e, s, row, tok);
    }
}

void srv_stats_update(srv_engine *e)
{
    int64_t used = 0, cached = 0;
    for (int i = 0; i < e->o.parallel; i++) {
        int64_t len = tpi_kv_len(e->kv, i);
        if (e->slots[i].req)
            used += len;
        else
            cached += len;
    }
    pthread_mutex_lock(&e->mu);
    e->stats.kv_positions_used = used;
    e->stats.kv_positions_cached = cached;
    pthread_mutex_unlock(&e->mu);
}
