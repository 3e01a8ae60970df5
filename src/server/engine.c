/* The serving engine's step loop and its way in (engine.h): requests are
 * queued on rank 0 from any thread; every rank runs srv_engine_run, in which
 * rank 0 plans each step (engine_plan.c), broadcasts the plan, every rank
 * runs the forward, and rank 0 samples and reports (engine_sample.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/meminfo.h"
#include "model/model.h"
#include "server/engine_int.h"

const char *const srv_phase_names[SRV_PHASES] = {"plan", "share", "forward", "sample"};
const double srv_ttft_bounds[SRV_TTFT_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, INFINITY};

/* Tokens per step when opts.step_tokens is 0: one step's forward then
 * takes about as long as a few decode steps, which bounds how long a long
 * prompt's prefill stalls the running streams. */
#define SRV_STEP_TOKENS 256
/* How long rank 0's idle wait sleeps between looks at the stop flag:
 * srv_engine_stop may not signal (it is async-signal-safe). */
#define SRV_IDLE_WAIT_NS 5000000L

static int check_opts(const srv_engine_opts *o, tpi_error *err)
{
    if (o->parallel < 1 || o->parallel > 4096)
        return tpi_err(err, TPI_EINVAL, "engine: parallel must be in [1, 4096], found %d", o->parallel);
    if (o->ctx < 2 || o->ctx > TPI_MAX_POSITIONS)
        return tpi_err(err, TPI_EINVAL, "engine: ctx must be in [2, %lld], found %lld", (long long)TPI_MAX_POSITIONS,
                       (long long)o->ctx);
    if (o->kv_pool_positions != 0 && o->kv_pool_positions < o->ctx)
        return tpi_err(err, TPI_EINVAL, "engine: kv_pool_positions (%lld) must hold one whole context (%lld), or be 0",
                       (long long)o->kv_pool_positions, (long long)o->ctx);
    if (o->queue < 0 || o->queue > 1000000)
        return tpi_err(err, TPI_EINVAL, "engine: queue must be in [0, 1000000], found %d", o->queue);
    if (o->step_tokens < 0 || o->step_tokens > (1 << 20))
        return tpi_err(err, TPI_EINVAL, "engine: step_tokens must be in [0, 2^20], found %lld",
                       (long long)o->step_tokens);
    if (o->n_eos < 0 || o->n_eos > 16 || (o->n_eos && !o->eos_ids))
        return tpi_err(err, TPI_EINVAL, "engine: n_eos must be in [0, 16] with eos_ids holding as many, found %d",
                       o->n_eos);
    return 0;
}

/* The ids that end a sequence: the caller's when given, else the model's
 * and the tokenizer's. */
static void set_eos(srv_engine *e, const tpi_model_info *info)
{
    int n = 0;
    if (e->o.n_eos) {
        for (int i = 0; i < e->o.n_eos; i++)
            e->eos[n++] = e->o.eos_ids[i];
    } else {
        for (int i = 0; i < info->n_eos && n < 8; i++)
            e->eos[n++] = info->eos_ids[i];
        const int32_t *teos = NULL;
        int nt = e->tok ? tpi_tokenizer_eos(e->tok, &teos) : 0;
        for (int i = 0; i < nt && n < 16; i++)
            e->eos[n++] = teos[i];
    }
    e->n_eos = n;
    e->o.eos_ids = NULL;
}

static int alloc_rank0(srv_engine *e, tpi_error *err)
{
    size_t P = (size_t)e->o.parallel, V = (size_t)e->vocab;
    if (pthread_mutex_init(&e->mu, NULL))
        return tpi_err(err, TPI_ENOMEM, "engine: no mutex");
    if (pthread_cond_init(&e->cv, NULL)) {
        pthread_mutex_destroy(&e->mu);
        return tpi_err(err, TPI_ENOMEM, "engine: no condition variable");
    }
    e->have_sync = 1;
    e->slots = calloc(P, sizeof *e->slots);
    e->logits = malloc(P * V * sizeof *e->logits);
    e->work = malloc(V * sizeof *e->work);
    e->count = calloc(V, sizeof *e->count);
    if (!e->slots || !e->logits || !e->work || !e->count)
        return tpi_err(err, TPI_ENOMEM, "engine: out of memory for %zu sequences x a vocabulary of %zu", P, V);
    for (size_t i = 0; i < P; i++)
        e->slots[i].e = e;
    e->next_id = 1;
    tpi_kv_usage u;
    tpi_kv_get_usage(e->kv, &u);
    e->stats.kv_positions_total = u.blocks_total * u.block_positions;
    return 0;
}

/* The working memory of a step (its tokens' activations, the logits of
 * every slot), admitted like the KV pool (core/meminfo.c) for the engine's
 * life. Collective. */
static int admit_activations(srv_engine *e, tpi_error *err)
{
    int64_t chunk = e->o.step_tokens < e->m->prefill_chunk ? e->o.step_tokens : e->m->prefill_chunk;
    int64_t bytes = tpi_model_activation_bytes(e->m, chunk, e->o.parallel);
    char what[128];
    snprintf(what, sizeof what, "the working memory of serving (%lld-token steps, logits of %d sequences)",
             (long long)chunk, e->o.parallel);
    int rc = tpi_model_admit(e->m, bytes, what, err);
    if (!rc)
        e->reserved = bytes;
    return rc;
}

int srv_engine_create(srv_engine **out, tpi_model *m, const tpi_tokenizer *tok, const srv_engine_opts *o,
                      tpi_error *err)
{
    *out = NULL;
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    srv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return tpi_err(err, TPI_ENOMEM, "engine: out of memory");
    e->m = m;
    e->tok = tok;
    e->comm = m->comm;
    e->rank = m->comm->rank;
    e->o = *o;
    e->vocab = info.vocab_size;
    e->idle = 1;
    if (!e->o.step_tokens)
        e->o.step_tokens = SRV_STEP_TOKENS;
    if (e->o.step_tokens < e->o.parallel)
        e->o.step_tokens = e->o.parallel; /* every running sequence decodes each step */
    set_eos(e, &info);
    e->ids_cap = e->o.step_tokens;
    e->n_new = calloc((size_t)o->parallel, sizeof *e->n_new);
    e->ids = malloc((size_t)e->ids_cap * sizeof *e->ids);
    e->next = malloc((size_t)o->parallel * sizeof *e->next);
    if (!e->n_new || !e->ids || !e->next)
        rc = tpi_err(err, TPI_ENOMEM, "engine: out of memory");
    tpi_kv_opts ko = {.n_seq = o->parallel, .max_ctx = o->ctx, .pool_positions = o->kv_pool_positions};
    if (!rc)
        rc = tpi_kv_create_pool(&e->kv, m, &ko, err); /* collective: every rank gets here */
    if (!rc)
        rc = admit_activations(e, err);
    if (!rc && e->rank == 0)
        rc = alloc_rank0(e, err);
    rc = tpi_model_agree_error(e->comm, rc, err);
    if (rc) {
        srv_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

static void request_free(srv_request *r)
{
    if (!r)
        return;
    for (int i = 0; r->stop && i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->prompt);
    free(r);
}

void srv_engine_free(srv_engine *e)
{
    if (!e)
        return;
    for (srv_request *r = e->queue_head, *next; r; r = next) {
        next = r->next;
        request_free(r);
    }
    for (int i = 0; e->slots && i < e->o.parallel; i++) {
        srv_slot *s = &e->slots[i];
        if (s->req)
            request_free(s->req);
        if (s->have_sampler)
            tpi_sampler_free(&s->sampler);
        tpi_gen_text_free(&s->text);
        free(s->ids);
        free(s->lp);
    }
    if (e->have_sync) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
    }
    free(e->slots), free(e->logits), free(e->work), free(e->count), free(e->cancels), free(e->ops);
    free(e->n_new), free(e->ids), free(e->next);
    tpi_kv_free(e->kv);
    tpi_mem_release(e->reserved);
    free(e);
}

static int check_params(const srv_engine *e, const int32_t *ids, int64_t n, const srv_params *p, tpi_error *err)
{
    const tpi_sampling *s = &p->sampling;
    if (n < 1)
        return tpi_err(err, TPI_EINVAL, "engine: the prompt is empty");
    int64_t want = p->max_tokens > 0 ? p->max_tokens : 1;
    if (p->max_tokens < 0 || n > e->o.ctx - want)
        return tpi_err(err, TPI_EINVAL, "engine: the prompt's %lld tokens plus max_tokens %lld exceed the context of %lld",
                       (long long)n, (long long)p->max_tokens, (long long)e->o.ctx);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= e->vocab)
            return tpi_err(err, TPI_EINVAL, "engine: prompt token %lld is %d, outside the vocabulary of %lld",
                           (long long)i, ids[i], (long long)e->vocab);
    if (!(s->temperature >= 0 && isfinite(s->temperature)) || s->top_k < 0 || !(s->top_p > 0 && s->top_p <= 1) ||
        !(s->min_p >= 0 && s->min_p <= 1) || !(s->repetition_penalty > 0 && isfinite(s->repetition_penalty)))
        return tpi_err(err, TPI_EINVAL, "engine: sampling out of range: temperature %g, top_k %lld, top_p %g, min_p %g, "
                       "repetition_penalty %g", s->temperature, (long long)s->top_k, s->top_p, s->min_p,
                       s->repetition_penalty);
    if (!(fabs(p->presence_penalty) <= 2) || !(fabs(p->frequency_penalty) <= 2))
        return tpi_err(err, TPI_EINVAL, "engine: presence_penalty and frequency_penalty must be in [-2, 2], found %g, %g",
                       p->presence_penalty, p->frequency_penalty);
    if (p->n_stop < 0 || p->n_stop > 16 || (p->n_stop && !p->stop))
        return tpi_err(err, TPI_EINVAL, "engine: n_stop must be in [0, 16] with stop holding as many, found %d",
                       p->n_stop);
    if (p->top_logprobs < 0 || p->top_logprobs > SRV_TOP_LOGPROBS_MAX)
        return tpi_err(err, TPI_EINVAL, "engine: top_logprobs must be in [0, %d], found %d", SRV_TOP_LOGPROBS_MAX,
                       p->top_logprobs);
    if (!e->tok)
        return tpi_err(err, TPI_EINVAL, "engine: created without a tokenizer");
    return 0;
}

static int request_new(srv_request **out, const int32_t *ids, int64_t n, const srv_params *p, tpi_error *err)
{
    srv_request *r = calloc(1, sizeof *r);
    if (r && (r->prompt = malloc((size_t)n * sizeof *r->prompt)) &&
        (r->stop = calloc((size_t)(p->n_stop ? p->n_stop : 1), sizeof *r->stop))) {
        memcpy(r->prompt, ids, (size_t)n * sizeof *ids);
        r->n_prompt = n;
        r->p = *p;
        int ok = 1;
        for (int i = 0; i < p->n_stop && ok; i++)
            ok = (r->stop[i] = strdup(p->stop[i] ? p->stop[i] : "")) != NULL;
        r->p.stop = (const char *const *)r->stop;
        if (ok) {
            *out = r;
            return 0;
        }
    }
    request_free(r);
    return tpi_err(err, TPI_ENOMEM, "engine: out of memory for a request of %lld tokens", (long long)n);
}

int srv_engine_submit(srv_engine *e, const int32_t *ids, int64_t n, const srv_params *p, srv_event_fn fn,
                      void *user, uint64_t *id, tpi_error *err)
{
    if (e->rank != 0)
        return tpi_err(err, TPI_EINVAL, "engine: requests are submitted on rank 0");
    int rc = check_params(e, ids, n, p, err);
    srv_request *r = NULL;
    if (!rc)
        rc = request_new(&r, ids, n, p, err);
    if (rc)
        return rc;
    r->fn = fn;
    r->user = user;
    r->t_submit = tpi_seconds();
    pthread_mutex_lock(&e->mu);
    if (atomic_load(&e->stop)) {
        rc = tpi_err(err, TPI_ELIMIT, "engine: stopping");
    } else if (e->n_queued + e->n_running >= (int64_t)e->o.parallel + e->o.queue) {
        rc = tpi_err(err, TPI_ELIMIT, "engine: %lld requests running and %lld queued, the most it takes",
                     (long long)e->n_running, (long long)e->n_queued);
    } else {
        r->id = e->next_id++;
        *id = r->id;
        if (e->queue_tail)
            e->queue_tail->next = r;
        else
            e->queue_head = r;
        e->queue_tail = r;
        e->n_queued++;
        e->stats.queued = e->n_queued;
        e->stats.requests++;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    if (rc)
        request_free(r);
    return rc;
}

/* Under e->mu. */
static void push_cancel(srv_engine *e, uint64_t id)
{
    if (e->n_cancels == e->cap_cancels) {
        int cap = e->cap_cancels ? 2 * e->cap_cancels : 16;
        uint64_t *c = realloc(e->cancels, (size_t)cap * sizeof *c);
        if (!c)
            return; /* the request runs on to its end */
        e->cancels = c;
        e->cap_cancels = cap;
    }
    e->cancels[e->n_cancels++] = id;
}

void srv_engine_cancel(srv_engine *e, uint64_t id)
{
    if (e->rank != 0)
        return;
    pthread_mutex_lock(&e->mu);
    push_cancel(e, id);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void srv_engine_stop(srv_engine *e)
{
    atomic_store(&e->stop, 1);
}

void srv_engine_stats(srv_engine *e, srv_stats *s)
{
    if (e->rank != 0) {
        memset(s, 0, sizeof *s);
        return;
    }
    pthread_mutex_lock(&e->mu);
    *s = e->stats;
    pthread_mutex_unlock(&e->mu);
}

/* Rank 0: ends queued and running requests marked for cancelling (under no
 * lock: the events may call back into the engine). */
static void take_cancels(srv_engine *e)
{
    pthread_mutex_lock(&e->mu);
    srv_request *gone = NULL;
    for (int c = 0; c < e->n_cancels; c++) {
        uint64_t id = e->cancels[c];
        for (srv_request **pp = &e->queue_head; *pp; pp = &(*pp)->next)
            if ((*pp)->id == id) {
                srv_request *r = *pp;
                *pp = r->next;
                if (e->queue_tail == r) {
                    e->queue_tail = NULL;
                    for (srv_request *q = e->queue_head; q; q = q->next)
                        e->queue_tail = q;
                }
                e->n_queued--;
                r->next = gone;
                gone = r;
                break;
            }
        for (int i = 0; i < e->o.parallel; i++)
            if (e->slots[i].req && e->slots[i].req->id == id)
                e->slots[i].req->cancelled = 1;
    }
    e->n_cancels = 0;
    e->stats.queued = e->n_queued;
    pthread_mutex_unlock(&e->mu);
    for (srv_request *r = gone, *next; r; r = next) {
        next = r->next;
        srv_event ev = {.kind = SRV_EV_DONE, .id = r->id, .finish = SRV_FINISH_CANCELLED,
                        .prompt_tokens = r->n_prompt};
        if (r->fn)
            r->fn(r->user, &ev);
        pthread_mutex_lock(&e->mu);
        e->stats.requests_cancelled++;
        pthread_mutex_unlock(&e->mu);
        request_free(r);
    }
    for (int i = 0; i < e->o.parallel; i++)
        if (e->slots[i].req && e->slots[i].req->cancelled)
            srv_slot_end(e, &e->slots[i], SRV_FINISH_CANCELLED, NULL, 0);
}

/* Rank 0 at the end: every open request gets DONE, cancelled. */
static void cancel_all(srv_engine *e)
{
    pthread_mutex_lock(&e->mu);
    for (srv_request *r = e->queue_head; r; r = r->next)
        push_cancel(e, r->id);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->o.parallel; i++)
        if (e->slots[i].req)
            e->slots[i].req->cancelled = 1;
    take_cancels(e);
}

/* The body's parts, in the order they travel: ops [n_ops], n_new
 * [parallel], ids [n_tok]. */
static void body_parts(srv_engine *e, const srv_plan_head *h, void *part[3], size_t bytes[3])
{
    part[0] = e->ops, bytes[0] = (size_t)h->n_ops * sizeof *e->ops;
    part[1] = e->n_new, bytes[1] = (size_t)e->o.parallel * sizeof *e->n_new;
    part[2] = e->ids, bytes[2] = (size_t)h->n_tok * sizeof *e->ids;
}

/* Rank 0: the head, with the body inline when it fits. */
static void pack_plan(srv_engine *e, const srv_plan_head *h)
{
    void *part[3];
    size_t bytes[3];
    e->msg.h = *h;
    e->msg.h.inline_body = 0;
    if (h->stop || (!h->n_ops && !h->n_tok))
        return;
    body_parts(e, h, part, bytes);
    if (bytes[0] + bytes[1] + bytes[2] > SRV_PLAN_INLINE)
        return;
    for (size_t k = 0, at = 0; k < 3; at += bytes[k], k++)
        if (bytes[k]) /* no ops: e->ops may be NULL */
            memcpy(e->msg.body + at, part[k], bytes[k]);
    e->msg.h.inline_body = 1;
}

/* The body on every rank, from the message or in broadcasts of its own. */
static int take_body(srv_engine *e, const srv_plan_head *h)
{
    void *part[3];
    size_t bytes[3];
    body_parts(e, h, part, bytes);
    int rc = 0;
    if (!h->inline_body) {
        for (int k = 0; k < 3 && !rc; k++)
            rc = tpi_comm_bcast(e->comm, part[k], bytes[k], 0);
        return rc;
    }
    if (bytes[0] + bytes[1] + bytes[2] > SRV_PLAN_INLINE)
        return TPI_EINVAL;
    for (size_t k = 0, at = 0; k < 3 && e->rank != 0; at += bytes[k], k++)
        if (bytes[k])
            memcpy(part[k], e->msg.body + at, bytes[k]);
    return 0;
}

/* The head and the body, in one broadcast when the body fits
 * (SRV_PLAN_INLINE). After rank 0 announced it had nothing to run (all ranks
 * know, so both sides of the broadcast use the same call) the head travels
 * alone through the idle broadcast: small enough for MPI to send it
 * eagerly, so that rank 0 goes on to the body's broadcast, which has the
 * comm time-out, even when another rank is stuck. */
static int share_plan(srv_engine *e, srv_plan_head *h, tpi_error *err)
{
    srv_plan_msg *m = &e->msg;
    if (e->rank == 0) {
        pack_plan(e, h);
        if (e->idle)
            m->h.inline_body = 0;
    }
    int rc = e->idle ? tpi_comm_bcast_idle(e->comm, &m->h, sizeof m->h, 0) : tpi_comm_bcast(e->comm, m, sizeof *m, 0);
    *h = m->h;
    if (!rc && !h->stop && (h->n_ops || h->n_tok)) {
        if (e->rank != 0 && h->n_ops > e->cap_ops) {
            srv_op *ops = realloc(e->ops, (size_t)h->n_ops * sizeof *ops);
            if (!ops)
                return tpi_err(err, TPI_ENOMEM, "engine: out of memory for the plan");
            e->ops = ops;
            e->cap_ops = h->n_ops;
        }
        if (h->n_tok > e->ids_cap || h->n_ops < 0)
            return tpi_err(err, TPI_EINVAL, "engine: a plan of %lld tokens and %d operations, more than %lld tokens",
                           (long long)h->n_tok, h->n_ops, (long long)e->ids_cap);
        rc = take_body(e, h);
        if (rc == TPI_EINVAL)
            return tpi_err(err, rc, "engine: a plan's inline body over %d bytes", SRV_PLAN_INLINE);
    }
    if (rc && rc != TPI_ENOMEM)
        return tpi_err(err, rc, "engine: broadcast of the step's plan failed (a rank died?)");
    if (!h->stop)
        e->idle = h->idle_after;
    if (!rc && e->rank == 0)
        e->n_ops = 0; /* the others have them now */
    return rc;
}

/* Every rank: the plan's KV operations (rank 0 applied them as it planned),
 * then the forward. */
static int run_plan(srv_engine *e, const srv_plan_head *h, tpi_error *err)
{
    for (int i = 0; e->rank != 0 && i < h->n_ops; i++) {
        int rc = srv_op_apply(e->kv, &e->ops[i], err);
        if (rc)
            return rc;
    }
    if (!h->n_tok)
        return 0;
    if (h->argmax)
        return tpi_model_forward_argmax(e->m, e->kv, e->ids, e->n_new, e->next, err);
    return tpi_model_forward(e->m, e->kv, e->ids, e->n_new, TPI_LOGITS_LAST, e->rank == 0 ? e->logits : NULL, err);
}

static int run_follower(srv_engine *e, tpi_error *err)
{
    for (;;) {
        srv_plan_head h;
        int rc = share_plan(e, &h, err);
        if (rc || h.stop)
            return rc;
        if ((rc = run_plan(e, &h, err)))
            return rc;
    }
}

/* Rank 0 with nothing to run: waits for a request, a cancel or stop. */
static void wait_for_work(srv_engine *e)
{
    pthread_mutex_lock(&e->mu);
    if (!e->queue_head && !e->n_cancels && !atomic_load(&e->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SRV_IDLE_WAIT_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
    pthread_mutex_unlock(&e->mu);
}

/* Rank 0: counts one step of n_tok tokens over `rows` sequences before it
 * samples (its events may tell a client it ended, whose next look at the
 * statistics then sees this step), and returns its kind. */
static int count_step(srv_engine *e, int64_t n_tok, int64_t rows)
{
    int kind = n_tok == rows ? SRV_STEP_DECODE : SRV_STEP_MIXED;
    pthread_mutex_lock(&e->mu);
    e->stats.steps[kind]++;
    e->stats.step_tokens[kind] += n_tok;
    pthread_mutex_unlock(&e->mu);
    return kind;
}

/* Rank 0: adds a step's phase times (t[SRV_PHASES + 1]: marks from its
 * start) to the statistics. */
static void time_step(srv_engine *e, int kind, const double *t)
{
    pthread_mutex_lock(&e->mu);
    for (int p = 0; p < SRV_PHASES; p++)
        e->stats.step_seconds[kind][p] += t[p + 1] - t[p];
    pthread_mutex_unlock(&e->mu);
}

/* Rank 0: one turn of the loop; with nothing to run it announces that to
 * the other ranks and, when `wait`, waits a little for work. Returns 1 once
 * stopped. */
static int leader_step(srv_engine *e, int wait, tpi_error *err)
{
    double t[SRV_PHASES + 1];
    t[SRV_PHASE_PLAN] = tpi_seconds();
    take_cancels(e);
    srv_plan_head h = {0};
    if (atomic_load(&e->stop)) {
        cancel_all(e);
        h.stop = 1;
        int rc = share_plan(e, &h, err);
        return rc ? rc : 1;
    }
    int argmax = 0, rc = srv_plan_admit(e);
    int64_t n_tok = 0, rows = 0;
    if (!rc)
        rc = srv_plan_step(e, &n_tok, &rows, &argmax);
    if (rc)
        return tpi_err(err, rc, "engine: planning a step failed");
    h.n_ops = e->n_ops;
    h.n_tok = n_tok;
    h.argmax = argmax;
    h.idle_after = n_tok == 0;
    t[SRV_PHASE_SHARE] = tpi_seconds();
    t[SRV_PHASE_FORWARD] = t[SRV_PHASE_SHARE];
    if (n_tok || e->n_ops || !e->idle) {
        if ((rc = share_plan(e, &h, err)))
            return rc;
        t[SRV_PHASE_FORWARD] = tpi_seconds();
        if ((rc = run_plan(e, &h, err)))
            return rc;
    }
    if (n_tok) {
        t[SRV_PHASE_SAMPLE] = tpi_seconds();
        int kind = count_step(e, n_tok, rows);
        srv_sample_step(e, argmax);
        e->step++;
        t[SRV_PHASES] = tpi_seconds();
        time_step(e, kind, t);
    }
    srv_stats_update(e);
    if (!n_tok && wait)
        wait_for_work(e);
    return 0;
}

int srv_engine_step(srv_engine *e, tpi_error *err)
{
    if (e->rank != 0)
        return tpi_err(err, TPI_EINVAL, "engine: srv_engine_step runs on rank 0");
    return leader_step(e, 0, err);
}

int srv_engine_run(srv_engine *e, tpi_error *err)
{
    if (e->rank != 0)
        return run_follower(e, err);
    int rc;
    while ((rc = leader_step(e, 1, err)) == 0)
        ;
    if (rc < 0) {
        /* the ranks no longer agree: every open request fails */
        for (int i = 0; i < e->o.parallel; i++)
            if (e->slots[i].req)
                srv_slot_end(e, &e->slots[i], 0, err->msg, 0);
        atomic_store(&e->stop, 1);
        cancel_all(e);
        return rc;
    }
    return 0;
}
