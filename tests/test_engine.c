/* The serving engine driven directly (no HTTP), on stories260K at any world
 * size: continuous batching gives each greedy request the text tpi_generate
 * gives it alone; a request joins a running batch and gets its first token
 * before the long one ends; a long prompt's prefill is chunked; cancel gives
 * the KV back at once; a second turn reuses the first's KV; a full queue is
 * TPI_ELIMIT; a small pool makes the newest wait; stop strings, max_tokens,
 * eos; penalties against a naive reference; logprobs against the forward's
 * logits; seeded sampling alone and batched; stop() ends every rank.
 *
 * Rank 0 drives each scenario from a thread (submits, waits for events)
 * while every rank runs srv_engine_run; failures are collected and agreed on
 * with g_finish after the run. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "core/clock.h"
#include "golden.h"
#include "server/engine.h"
#include "server/engine_int.h"
#include "testutil.h"

static golden_ctx G;
static tpi_model *S_model;
static tpi_tokenizer *S_tok;
static char *S_dir;

static int rank0(void) { return tpi_comm_rank(G.comm) == 0; }

/* ---- what a request received ---- */
#define MAX_REQ 64
typedef struct got {
    uint64_t id;
    char *text;
    size_t len;
    int32_t ids[512]; /* from the logprobs, when asked */
    float lps[512];
    int n_lp;
    int n_text;       /* TEXT events */
    int done, error, finish;
    char errmsg[256];
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    double t_submit, t_first, t_done;
    int64_t other_tokens_at_first; /* tokens another request had when this one got its first */
} got;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static got R[MAX_REQ];
static int watch = -1; /* a request whose tokens others' first tokens are counted against */

static void on_event(void *user, const srv_event *ev)
{
    got *g = user;
    pthread_mutex_lock(&mu);
    if (ev->kind == SRV_EV_TEXT) {
        g->text = realloc(g->text, g->len + ev->len + 1);
        memcpy(g->text + g->len, ev->text, ev->len);
        g->len += ev->len;
        g->text[g->len] = 0;
        for (int i = 0; i < ev->n_lp && g->n_lp < 512; i++) {
            g->ids[g->n_lp] = ev->lp[i].id;
            g->lps[g->n_lp++] = ev->lp[i].logprob;
        }
        if (!g->n_text++) {
            g->t_first = tpi_seconds();
            g->other_tokens_at_first = watch >= 0 ? R[watch].n_lp : 0;
        }
    } else {
        g->done = 1;
        g->error = ev->kind == SRV_EV_ERROR;
        g->finish = ev->finish;
        if (ev->error)
            snprintf(g->errmsg, sizeof g->errmsg, "%s", ev->error);
        g->prompt_tokens = ev->prompt_tokens;
        g->completion_tokens = ev->completion_tokens;
        g->cached_tokens = ev->cached_tokens;
        g->t_done = tpi_seconds();
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void reset_got(void)
{
    for (int i = 0; i < MAX_REQ; i++) {
        free(R[i].text);
        memset(&R[i], 0, sizeof R[i]);
    }
    watch = -1;
}

static srv_params greedy(int64_t max_tokens)
{
    return (srv_params){.sampling = {.temperature = 0, .top_p = 1, .repetition_penalty = 1}, .max_tokens = max_tokens};
}

static int32_t *encode(const char *text, int64_t *n)
{
    int32_t *ids;
    size_t k;
    tpi_error err = {0};
    if (tpi_tokenizer_encode(S_tok, text, strlen(text), 1, &ids, &k, &err)) {
        g_fail(&G, "encode: %s", err.msg);
        exit(1);
    }
    *n = (int64_t)k;
    return ids;
}

static int submit(srv_engine *e, int i, const int32_t *ids, int64_t n, const srv_params *p)
{
    tpi_error err = {0};
    R[i].t_submit = tpi_seconds();
    int rc = srv_engine_submit(e, ids, n, p, on_event, &R[i], &R[i].id, &err);
    if (rc)
        g_fail(&G, "submit %d: %s", i, err.msg);
    return rc;
}

/* Waits (60 s at most) until request i is done, or has `tokens` logprobs. */
static int wait_for(int i, int tokens)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 60;
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (!R[i].done && (tokens <= 0 || R[i].n_lp < tokens) && (tokens >= 0 || !R[i].n_text) && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    int done = R[i].done;
    pthread_mutex_unlock(&mu);
    if (rc)
        g_fail(&G, "request %d: timed out waiting", i);
    return done;
}
#define WAIT_DONE(i) wait_for(i, 0)
#define WAIT_FIRST(i) wait_for(i, -1)

/* ---- running a scenario on every rank ---- */
typedef struct scenario {
    srv_engine *e;
    void (*pre)(struct scenario *sc); /* rank 0, before the loop runs */
    void (*drive)(struct scenario *sc);
    void *arg;
} scenario;

/* The last srv_engine_run's wall and CPU seconds (the process's: rank 0's
 * driver thread mostly sleeps). */
static double run_wall, run_cpu;

static void *driver_main(void *p)
{
    scenario *sc = p;
    sc->drive(sc);
    srv_engine_stop(sc->e);
    return NULL;
}

static void run_scenario2(const srv_engine_opts *o, void (*pre)(scenario *), void (*drive)(scenario *), void *arg)
{
    scenario sc = {.pre = pre, .drive = drive, .arg = arg};
    tpi_error err = {0};
    reset_got();
    if (srv_engine_create(&sc.e, S_model, S_tok, o, &err)) {
        g_fail(&G, "engine create: %s", err.msg);
        return;
    }
    pthread_t th;
    if (rank0() && pre)
        pre(&sc);
    if (rank0())
        pthread_create(&th, NULL, driver_main, &sc);
    struct rusage u0, u1;
    getrusage(RUSAGE_SELF, &u0);
    double w0 = tpi_seconds();
    int rc = srv_engine_run(sc.e, &err);
    run_wall = tpi_seconds() - w0;
    getrusage(RUSAGE_SELF, &u1);
    run_cpu = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec + u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) +
              (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec + u1.ru_stime.tv_usec - u0.ru_stime.tv_usec) * 1e-6;
    if (rc)
        g_fail(&G, "engine run: %s", err.msg);
    if (rank0())
        pthread_join(th, NULL);
    srv_engine_free(sc.e);
}

static void run_scenario(const srv_engine_opts *o, void (*drive)(scenario *), void *arg)
{
    run_scenario2(o, NULL, drive, arg);
}

static srv_engine_opts opts(int parallel, int64_t ctx, int queue, int64_t step_tokens)
{
    return (srv_engine_opts){.parallel = parallel, .ctx = ctx, .queue = queue, .step_tokens = step_tokens};
}

/* tpi_generate's text for a prompt alone (collective). */
static char *reference(const int32_t *ids, int64_t n, int64_t max_new, int64_t *n_out, int *stop)
{
    tpi_gen_opts o;
    tpi_gen_opts_default(&o, NULL, NULL);
    o.max_new_tokens = max_new;
    o.tokenizer = S_tok;
    o.max_ctx = 256;
    tpi_gen_result r;
    tpi_error err = {0};
    if (tpi_generate(S_model, ids, &n, 1, &o, &r, &err)) {
        g_fail(&G, "generate: %s", err.msg);
        return strdup("");
    }
    char *t = r.text ? strdup(r.text) : strdup("");
    *n_out = r.n_ids;
    *stop = r.stop_reason;
    tpi_gen_result_free(&r);
    return t;
}

/* ---- 16 concurrent greedy requests equal tpi_generate alone ---- */
static const char *const prompts16[16] = {
    "Once upon a time", "Lily went to the park", "The cat sat", "Tom had a big red ball and he",
    "One day, a little bird", "Sam was sad because", "The sun", "Mom said",
    "There was a tree in the garden. Every day the children came to play under it and",
    "Ben and Mia", "A dog", "The little girl wanted to", "Once there was a boy named Tim who loved to",
    "It was a rainy day", "The fish swam", "Sue found a box",
};

typedef struct batch_arg {
    int32_t *ids[16];
    int64_t n[16], max_new[16];
} batch_arg;

/* The step counters account for every token fed to the model: each
 * request's prompt less what was reused, and every generated token but the
 * last (nothing runs after it), in steps whose phases took time. */
static void check_step_stats(const srv_stats *st, int64_t n_req)
{
    int64_t fed = st->prompt_tokens - st->prompt_tokens_cached + st->generated_tokens - n_req;
    int64_t tok = st->step_tokens[SRV_STEP_DECODE] + st->step_tokens[SRV_STEP_MIXED];
    double secs = 0;
    for (int k = 0; k < SRV_STEP_KINDS; k++)
        for (int p = 0; p < SRV_PHASES; p++) {
            if (!(st->step_seconds[k][p] >= 0))
                g_fail(&G, "step stats: phase %s of kind %d took %g s", srv_phase_names[p], k, st->step_seconds[k][p]);
            secs += st->step_seconds[k][p];
        }
    /* a decode step feeds one token per running sequence: at most 16 here, and at least one */
    int64_t nd = st->steps[SRV_STEP_DECODE], td = st->step_tokens[SRV_STEP_DECODE];
    if (tok != fed || nd < 1 || td < nd || td > 16 * nd || st->steps[SRV_STEP_MIXED] < 1 || !(secs > 0) ||
        !(st->step_seconds[SRV_STEP_DECODE][SRV_PHASE_FORWARD] > 0))
        g_fail(&G, "step stats: %lld tokens fed (expected %lld), %lld decode steps of %lld tokens, %lld mixed, %g s",
               (long long)tok, (long long)fed, (long long)nd, (long long)td, (long long)st->steps[SRV_STEP_MIXED],
               secs);
}

static void drive_batch16(scenario *sc)
{
    batch_arg *a = sc->arg;
    /* they join at different steps: each after the previous one's first token */
    for (int i = 0; i < 16; i++) {
        srv_params p = greedy(a->max_new[i]);
        if (submit(sc->e, i, a->ids[i], a->n[i], &p))
            return;
        if (i % 3 == 2)
            WAIT_FIRST(i);
    }
    for (int i = 0; i < 16; i++)
        WAIT_DONE(i);
    srv_stats st;
    srv_engine_stats(sc->e, &st);
    int64_t gen = 0;
    for (int i = 0; i < 16; i++)
        gen += R[i].completion_tokens;
    if (st.requests != 16 || st.requests_ok != 16 || st.generated_tokens != gen || st.ttft_count[0] > 16 ||
        st.ttft_count[SRV_TTFT_BUCKETS - 1] != 16 || !(st.ttft_sum > 0) || st.running || st.queued)
        g_fail(&G, "stats: %lld requests, %lld ok, %lld tokens (expected 16, 16, %lld), TTFT count %lld sum %g, "
               "running %lld queued %lld", (long long)st.requests, (long long)st.requests_ok,
               (long long)st.generated_tokens, (long long)gen, (long long)st.ttft_count[SRV_TTFT_BUCKETS - 1],
               st.ttft_sum, (long long)st.running, (long long)st.queued);
    check_step_stats(&st, 16);
}

/* parallel slots, the rest queued; 16-token steps chunk every prompt longer
 * than that */
static void batch16(int parallel)
{
    batch_arg a;
    char *want[16];
    int64_t want_n[16];
    int want_stop[16];
    for (int i = 0; i < 16; i++) {
        a.ids[i] = encode(prompts16[i], &a.n[i]);
        a.max_new[i] = 6 + (i * 7) % 32;
        want[i] = reference(a.ids[i], a.n[i], a.max_new[i], &want_n[i], &want_stop[i]);
    }
    srv_engine_opts o = opts(parallel, 256, 16, 16);
    run_scenario(&o, drive_batch16, &a);
    for (int i = 0; rank0() && i < 16; i++) {
        int fin = want_stop[i] == TPI_STOP_LENGTH ? SRV_FINISH_LENGTH : SRV_FINISH_STOP;
        if (!R[i].done || R[i].error || strcmp(R[i].text ? R[i].text : "", want[i]) ||
            R[i].completion_tokens != want_n[i] || R[i].finish != fin)
            g_fail(&G, "batched request %d: \"%s\" (%lld tokens, finish %d), alone \"%s\" (%lld, %d) %s", i,
                   R[i].text ? R[i].text : "", (long long)R[i].completion_tokens, R[i].finish, want[i],
                   (long long)want_n[i], fin, R[i].errmsg);
    }
    if (rank0() && !G.failures)
        printf("ok: 16 requests batched (%d slots, 16-token steps) equal tpi_generate alone\n", parallel);
    for (int i = 0; i < 16; i++)
        free(a.ids[i]), free(want[i]);
    g_finish(&G);
}

static void test_batch16(void **state)
{
    (void)state;
    batch16(6);
}

/* 600 slots: a step's n_new alone (8 bytes a slot) is over SRV_PLAN_INLINE,
 * so every plan's body follows its head in broadcasts of its own. */
static void test_batch16_long_plan(void **state)
{
    (void)state;
    batch16(600);
}

/* ---- joining a running batch, chunked prefill ---- */
typedef struct join_arg {
    int32_t *lng, *shrt, *longp;
    int64_t n_lng, n_shrt, n_longp;
    int64_t stream_left; /* the stream's tokens still to come when the long prompt was sent */
} join_arg;

#define JOIN_STREAM 480

static void drive_join(scenario *sc)
{
    join_arg *a = sc->arg;
    /* as long as the context allows: the stream must outlast the long
     * prompt's prefill even when this thread is descheduled for a while */
    srv_params p = greedy(JOIN_STREAM);
    p.logprobs = 1; /* to count its tokens */
    watch = 0;
    submit(sc->e, 0, a->lng, a->n_lng, &p);
    wait_for(0, 10);
    srv_params q = greedy(5);
    submit(sc->e, 1, a->shrt, a->n_shrt, &q);
    WAIT_DONE(1);
    /* a long prompt, prefilled 8 tokens a step beside the running stream */
    srv_params r = greedy(3);
    submit(sc->e, 2, a->longp, a->n_longp, &r);
    pthread_mutex_lock(&mu);
    int before = R[0].n_lp;
    pthread_mutex_unlock(&mu);
    WAIT_FIRST(2);
    pthread_mutex_lock(&mu);
    R[2].other_tokens_at_first -= before;
    a->stream_left = JOIN_STREAM - before;
    pthread_mutex_unlock(&mu);
    WAIT_DONE(2);
    WAIT_DONE(0);
}

static void test_join(void **state)
{
    (void)state;
    join_arg a;
    a.lng = encode("Once upon a time", &a.n_lng);
    a.shrt = encode("The cat sat", &a.n_shrt);
    char buf[2048] = "";
    while (strlen(buf) < 400)
        strcat(buf, "Lily and Tom went to the park to play with a big red ball. ");
    a.longp = encode(buf, &a.n_longp);
    srv_engine_opts o = opts(3, 512, 4, 8);
    run_scenario(&o, drive_join, &a);
    if (rank0()) {
        if (!R[1].done || R[1].t_first >= R[0].t_done)
            g_fail(&G, "the short request's first token did not come before the long one ended");
        else
            printf("ok: a request sent while another streams got its first token %.3f s before that one ended\n",
                   R[0].t_done - R[1].t_first);
        /* 8-token steps: the long prompt takes n/8 steps, each giving the
         * stream a token, as long as the stream has tokens left (a loaded
         * machine may deschedule this thread while the engine runs on) */
        int64_t min_tokens = (a.n_longp - 1) / 8 - 1;
        if (a.stream_left - 1 < min_tokens)
            min_tokens = a.stream_left - 1;
        if (R[2].other_tokens_at_first < min_tokens)
            g_fail(&G, "a %lld-token prompt's prefill: the running stream got %lld tokens, expected >= %lld",
                   (long long)a.n_longp, (long long)R[2].other_tokens_at_first, (long long)min_tokens);
        else
            printf("ok: a %lld-token prompt prefilled in chunks; the stream got %lld tokens meanwhile\n",
                   (long long)a.n_longp, (long long)R[2].other_tokens_at_first);
    }
    free(a.lng), free(a.shrt), free(a.longp);
    g_finish(&G);
}

/* ---- cancel, queue limit, stop() ---- */
static void drive_cancel(scenario *sc)
{
    int32_t *ids = sc->arg;
    srv_params p = greedy(200);
    p.logprobs = 1;
    submit(sc->e, 0, ids, 4, &p);
    wait_for(0, 5);
    srv_stats st;
    srv_engine_stats(sc->e, &st);
    if (st.kv_positions_used < 4 + 1 || st.running != 1)
        g_fail(&G, "while running: %lld KV positions used, %lld running", (long long)st.kv_positions_used,
               (long long)st.running);
    srv_engine_cancel(sc->e, R[0].id);
    WAIT_DONE(0);
    srv_engine_stats(sc->e, &st);
    if (R[0].finish != SRV_FINISH_CANCELLED || st.kv_positions_used != 0 || st.kv_positions_cached != 0 ||
        st.running != 0 || st.requests_cancelled != 1)
        g_fail(&G, "after cancel: finish %d, KV used %lld cached %lld, running %lld, cancelled %lld", R[0].finish,
               (long long)st.kv_positions_used, (long long)st.kv_positions_cached, (long long)st.running,
               (long long)st.requests_cancelled);
    else
        printf("ok: cancel after %d tokens gives back the KV at once (used 0, cached 0)\n", R[0].n_lp);
    srv_engine_cancel(sc->e, 12345); /* unknown: ignored */
    /* a finished request's KV stays cached */
    srv_params q = greedy(6);
    submit(sc->e, 1, ids, 4, &q);
    WAIT_DONE(1);
    srv_engine_stats(sc->e, &st);
    if (st.kv_positions_used != 0 || st.kv_positions_cached != 4 + 6 - 1 || st.requests_ok != 1)
        g_fail(&G, "after a finished request: KV used %lld, cached %lld (expected 0, 9), ok %lld",
               (long long)st.kv_positions_used, (long long)st.kv_positions_cached, (long long)st.requests_ok);
}

static void test_cancel(void **state)
{
    (void)state;
    int64_t n;
    int32_t *ids = encode("Once upon a time", &n);
    assert_true(n >= 4);
    srv_engine_opts o = opts(2, 256, 2, 0);
    run_scenario(&o, drive_cancel, ids);
    free(ids);
    g_finish(&G);
}

/* Before the loop runs: 1 slot + 1 queued is the most. */
static void pre_queue(scenario *sc)
{
    int32_t *ids = sc->arg;
    srv_params p = greedy(20);
    tpi_error err = {0};
    uint64_t id;
    submit(sc->e, 0, ids, 4, &p);
    submit(sc->e, 1, ids, 4, &p);
    int rc = srv_engine_submit(sc->e, ids, 4, &p, on_event, &R[2], &id, &err);
    if (rc != TPI_ELIMIT)
        g_fail(&G, "a third request with parallel 1 and queue 1: rc %d, expected TPI_ELIMIT", rc);
    else
        printf("ok: queue full: %s\n", err.msg);
    srv_params big = greedy(300);
    rc = srv_engine_submit(sc->e, ids, 4, &big, on_event, &R[2], &id, &err);
    if (rc != TPI_EINVAL || !strstr(err.msg, "300") || !strstr(err.msg, "256"))
        g_fail(&G, "prompt + max_tokens over the context: rc %d \"%s\"", rc, err.msg);
}

static void drive_queue(scenario *sc)
{
    int32_t *ids = sc->arg;
    WAIT_DONE(0);
    WAIT_DONE(1);
    if (strcmp(R[0].text, R[1].text) || R[1].cached_tokens != 3)
        g_fail(&G, "the same prompt twice: \"%s\" vs \"%s\", cached %lld (expected 3)", R[0].text, R[1].text,
               (long long)R[1].cached_tokens);
    /* stop() with a request running: it ends cancelled, every rank returns */
    srv_params lng = greedy(200);
    submit(sc->e, 3, ids, 4, &lng);
    WAIT_FIRST(3);
}

static void test_queue_and_stop(void **state)
{
    (void)state;
    int64_t n;
    int32_t *ids = encode("Once upon a time", &n);
    srv_engine_opts o = opts(1, 256, 1, 0);
    run_scenario2(&o, pre_queue, drive_queue, ids);
    if (rank0()) {
        if (!R[3].done || R[3].finish != SRV_FINISH_CANCELLED)
            g_fail(&G, "stop(): the running request ended with %d, expected cancelled", R[3].finish);
        else
            printf("ok: stop() ended every rank's loop; the open request got DONE cancelled\n");
    }
    free(ids);
    g_finish(&G);
}

/* ---- the idle loop: stop while waiting wakes within milliseconds ---- */
static void drive_idle(scenario *sc)
{
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, NULL);
    *(double *)sc->arg = tpi_seconds();
}

static void test_idle_stop(void **state)
{
    (void)state;
    double t_stop = 0;
    srv_engine_opts o = opts(1, 64, 0, 0);
    run_scenario(&o, drive_idle, &t_stop);
    double dt = tpi_seconds() - t_stop, wall = run_wall;
    /* the other ranks wait in the idle broadcast without burning a core
     * (rank 0's process also runs the test's driver) */
    int32_t worst = rank0() ? 0 : (int32_t)(run_cpu / run_wall * 100);
    tpi_comm_allreduce_max_i32(G.comm, &worst, 1);
    if (worst > 15)
        g_fail(&G, "idle for %.2f s, a rank other than 0 used %d%% of a core", wall, worst);
    else if (rank0() && tpi_comm_size(G.comm) > 1)
        printf("ok: idle for %.2f s, the busiest rank other than 0 used %d%% of a core\n", wall, worst);
    if (rank0() && dt > 0.1)
        g_fail(&G, "an idle engine took %.3f s to stop", dt);
    else if (rank0())
        printf("ok: an idle engine stopped in %.4f s\n", dt);
    g_finish(&G);
}

/* ---- prompt reuse: a second turn prefills only its new tokens ---- */
typedef struct reuse_arg {
    int32_t *p1, *p2;
    int64_t n1, n2, gen1;
} reuse_arg;

static void drive_reuse(scenario *sc)
{
    reuse_arg *a = sc->arg;
    srv_params p = greedy(a->gen1);
    p.logprobs = 1;
    p.ignore_eos = 1;
    submit(sc->e, 0, a->p1, a->n1, &p);
    WAIT_DONE(0);
    srv_stats st0, st1;
    srv_engine_stats(sc->e, &st0);
    srv_params q = greedy(8);
    q.ignore_eos = 1;
    submit(sc->e, 1, a->p2, a->n2, &q);
    WAIT_DONE(1);
    srv_engine_stats(sc->e, &st1);
    /* the KV held the first prompt and all but the last output token */
    int64_t want = a->n1 + a->gen1 - 1;
    if (R[1].cached_tokens != want || st1.prompt_tokens_cached - st0.prompt_tokens_cached != want)
        g_fail(&G, "second turn: cached %lld (stats +%lld), expected %lld of its %lld", (long long)R[1].cached_tokens,
               (long long)(st1.prompt_tokens_cached - st0.prompt_tokens_cached), (long long)want, (long long)a->n2);
    else
        printf("ok: second turn of %lld tokens reused %lld, prefilled %lld\n", (long long)a->n2, (long long)want,
               (long long)(a->n2 - want));
}

static void test_reuse(void **state)
{
    (void)state;
    reuse_arg a = {.gen1 = 12};
    a.p1 = encode("Once upon a time", &a.n1);
    tpi_gen_opts o;
    tpi_gen_opts_default(&o, NULL, NULL);
    o.max_new_tokens = a.gen1;
    o.tokenizer = S_tok;
    const int32_t none = -1;
    o.eos_ids = &none;
    o.n_eos = 1;
    tpi_gen_result r1, r2;
    tpi_error err = {0};
    assert_int_equal(tpi_generate(S_model, a.p1, &a.n1, 1, &o, &r1, &err), 0);
    int32_t *more;
    size_t n_more;
    assert_int_equal(tpi_tokenizer_encode(S_tok, " Then she", 9, 0, &more, &n_more, &err), 0);
    a.n2 = a.n1 + r1.n_ids + (int64_t)n_more;
    a.p2 = malloc((size_t)a.n2 * sizeof *a.p2);
    memcpy(a.p2, a.p1, (size_t)a.n1 * sizeof *a.p2);
    memcpy(a.p2 + a.n1, r1.ids, (size_t)r1.n_ids * sizeof *a.p2);
    memcpy(a.p2 + a.n1 + r1.n_ids, more, n_more * sizeof *a.p2);
    o.max_new_tokens = 8;
    assert_int_equal(tpi_generate(S_model, a.p2, &a.n2, 1, &o, &r2, &err), 0);
    srv_engine_opts eo = opts(2, 256, 2, 0);
    run_scenario(&eo, drive_reuse, &a);
    if (rank0()) {
        int same = R[0].n_lp == r1.n_ids && !memcmp(R[0].ids, r1.ids, (size_t)r1.n_ids * sizeof *r1.ids);
        if (!same || strcmp(R[1].text ? R[1].text : "", r2.text))
            g_fail(&G, "turns: first %s tpi_generate's ids; second \"%s\", alone \"%s\"", same ? "equals" : "differs from",
                   R[1].text ? R[1].text : "", r2.text);
    }
    tpi_gen_result_free(&r1), tpi_gen_result_free(&r2);
    free(a.p1), free(a.p2), free(more);
    g_finish(&G);
}

/* ---- prompt reuse from a running sequence: copy its prefix ---- */
static void drive_copy(scenario *sc)
{
    reuse_arg *a = sc->arg;
    srv_params p = greedy(120);
    p.logprobs = 1;
    p.ignore_eos = 1;
    submit(sc->e, 0, a->p1, a->n1, &p);
    wait_for(0, 3);
    srv_params q = greedy(8);
    submit(sc->e, 1, a->p2, a->n2, &q);
    WAIT_DONE(1);
    srv_engine_cancel(sc->e, R[0].id);
    WAIT_DONE(0);
    if (R[1].cached_tokens != a->n1)
        g_fail(&G, "a prompt beginning with a running sequence's %lld prompt tokens reused %lld", (long long)a->n1,
               (long long)R[1].cached_tokens);
    else
        printf("ok: a new prompt copied the %lld-token prefix of a running sequence's KV\n", (long long)a->n1);
}

static void test_copy_prefix(void **state)
{
    (void)state;
    reuse_arg a;
    a.p1 = encode("Once upon a time, in a big forest, there lived", &a.n1);
    int32_t *more;
    size_t n_more;
    tpi_error err = {0};
    assert_int_equal(tpi_tokenizer_encode(S_tok, " Zebra Zebra", 12, 0, &more, &n_more, &err), 0);
    a.n2 = a.n1 + (int64_t)n_more;
    a.p2 = malloc((size_t)a.n2 * sizeof *a.p2);
    memcpy(a.p2, a.p1, (size_t)a.n1 * sizeof *a.p2);
    memcpy(a.p2 + a.n1, more, n_more * sizeof *a.p2);
    int64_t n_ref;
    int stop;
    char *want = reference(a.p2, a.n2, 8, &n_ref, &stop);
    srv_engine_opts eo = opts(2, 256, 2, 0);
    run_scenario(&eo, drive_copy, &a);
    if (rank0() && strcmp(R[1].text ? R[1].text : "", want))
        g_fail(&G, "copied prefix: \"%s\", alone \"%s\"", R[1].text ? R[1].text : "", want);
    free(want), free(a.p1), free(a.p2), free(more);
    g_finish(&G);
}

/* ---- stop strings, max_tokens, eos ---- */
typedef struct finish_arg {
    int32_t *ids;
    int64_t n;
    const char *stop;
} finish_arg;

static void drive_finish(scenario *sc)
{
    finish_arg *a = sc->arg;
    srv_params p = greedy(40);
    const char *stops[2] = {"zzz", a->stop};
    p.stop = stops;
    p.n_stop = 2;
    submit(sc->e, 0, a->ids, a->n, &p);
    srv_params q = greedy(7);
    submit(sc->e, 1, a->ids, a->n, &q);
    WAIT_DONE(0);
    WAIT_DONE(1);
}

static void drive_eos(scenario *sc)
{
    finish_arg *a = sc->arg;
    srv_params p = greedy(40);
    submit(sc->e, 0, a->ids, a->n, &p);
    WAIT_DONE(0);
}

static void test_finish(void **state)
{
    (void)state;
    finish_arg a;
    a.ids = encode("Once upon a time", &a.n);
    int64_t n_ref;
    int stop;
    char *ref = reference(a.ids, a.n, 40, &n_ref, &stop);
    /* a stop string from the middle of the reference text */
    char stopstr[8] = "";
    size_t L = strlen(ref);
    if (L > 40)
        memcpy(stopstr, ref + L / 2, 5);
    a.stop = stopstr;
    srv_engine_opts o = opts(2, 256, 2, 0);
    run_scenario(&o, drive_finish, &a);
    if (rank0()) {
        const char *at = strstr(ref, stopstr);
        size_t want = at ? (size_t)(at - ref) : L;
        if (L <= 40 || R[0].finish != SRV_FINISH_STOP || R[0].len != want || memcmp(R[0].text, ref, want))
            g_fail(&G, "stop string \"%s\": \"%s\" finish %d; expected \"%.*s\"", stopstr, R[0].text, R[0].finish,
                   (int)want, ref);
        else
            printf("ok: stop string \"%s\" cuts the text (finish stop)\n", stopstr);
        if (R[1].finish != SRV_FINISH_LENGTH || R[1].completion_tokens != 7)
            g_fail(&G, "max_tokens 7: finish %d after %lld tokens", R[1].finish, (long long)R[1].completion_tokens);
    }
    /* eos: the reference's 4th token ends the sequence */
    tpi_gen_opts go;
    tpi_gen_opts_default(&go, NULL, NULL);
    go.max_new_tokens = 40;
    tpi_gen_result r;
    tpi_error err = {0};
    assert_int_equal(tpi_generate(S_model, a.ids, &a.n, 1, &go, &r, &err), 0);
    int32_t eos = r.ids[3];
    go.eos_ids = &eos;
    go.n_eos = 1;
    go.tokenizer = S_tok;
    tpi_gen_result_free(&r);
    assert_int_equal(tpi_generate(S_model, a.ids, &a.n, 1, &go, &r, &err), 0);
    o.eos_ids = &eos;
    o.n_eos = 1;
    run_scenario(&o, drive_eos, &a);
    if (rank0()) {
        if (R[0].finish != SRV_FINISH_STOP || R[0].completion_tokens != r.n_ids || strcmp(R[0].text, r.text))
            g_fail(&G, "eos %d: finish %d after %lld tokens \"%s\"; expected stop after %lld \"%s\"", eos, R[0].finish,
                   (long long)R[0].completion_tokens, R[0].text, (long long)r.n_ids, r.text);
        else
            printf("ok: eos id %d ends the request after %lld tokens (finish stop)\n", eos, (long long)r.n_ids);
    }
    tpi_gen_result_free(&r);
    free(ref), free(a.ids);
    g_finish(&G);
}

/* ---- penalties, logprobs ---- */
static void test_penalties_unit(void **state)
{
    (void)state;
    enum { V = 50 };
    float x[V], w[V];
    int32_t count[V] = {0}, gen[] = {3, 7, 3, 3, 49, 0, 7, 12};
    int n = (int)(sizeof gen / sizeof gen[0]);
    for (int j = 0; j < V; j++)
        x[j] = w[j] = (float)sin(j * 1.7) * 5;
    srv_apply_penalties(w, V, gen, n, 0.75, 0.4, count);
    for (int j = 0; j < V; j++) {
        int c = 0;
        for (int i = 0; i < n; i++)
            c += gen[i] == j;
        float want = (float)((double)x[j] - (c * 0.4 + (c > 0) * 0.75));
        if (w[j] != want || count[j])
            fail_msg("token %d (count %d): %.9g, expected %.9g", j, c, w[j], want);
    }
    /* logprobs: log-softmax and the top alternatives, ties to the lower id */
    x[5] = x[9] = 9;
    srv_logprob lp;
    srv_logprob_of(x, V, 9, 3, &lp);
    double mx = 9, sum = 0;
    for (int j = 0; j < V; j++)
        sum += exp((double)x[j] - mx);
    assert_true(fabs(lp.logprob - (9 - mx - log(sum))) < 1e-6);
    assert_int_equal(lp.n_top, 3);
    assert_int_equal(lp.top_ids[0], 5);
    assert_int_equal(lp.top_ids[1], 9);
    assert_true(x[lp.top_ids[2]] <= 9);
    for (int j = 0; j < V; j++)
        assert_true(j == 5 || j == 9 || x[j] <= x[lp.top_ids[2]]);
}

typedef struct lp_arg {
    int32_t *ids;
    int64_t n;
    srv_params p;
} lp_arg;

static void drive_lp(scenario *sc)
{
    lp_arg *a = sc->arg;
    submit(sc->e, 0, a->ids, a->n, &a->p);
    srv_params other = greedy(30);
    submit(sc->e, 1, a->ids, a->n - 1, &other); /* company in the batch */
    WAIT_DONE(0);
    WAIT_DONE(1);
}

/* The engine's ids and logprobs against a naive loop over full forwards:
 * logits of prompt + output so far, OpenAI's penalties, argmax. */
static void test_logprobs_penalties(void **state)
{
    (void)state;
    lp_arg a;
    a.ids = encode("Once upon a time there was", &a.n);
    enum { N = 10 };
    a.p = greedy(N);
    a.p.logprobs = 1;
    a.p.top_logprobs = 4;
    a.p.ignore_eos = 1;
    for (int pass = 0; pass < 2; pass++) {
        a.p.frequency_penalty = pass ? 1.5 : 0;
        a.p.presence_penalty = pass ? 0.5 : 0;
        int64_t V = tpi_tokenizer_vocab_size(S_tok);
        int32_t seq[256], out[N];
        float want_lp[N];
        memcpy(seq, a.ids, (size_t)a.n * sizeof *seq);
        for (int i = 0; i < N; i++) {
            int64_t len = a.n + i;
            float *lg = g_logits(&G, S_model, seq, &len, 1);
            int32_t tok = 0;
            if (rank0()) {
                const float *row = lg + (len - 1) * V;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < V; j++)
                    mx = row[j] > mx ? row[j] : mx;
                for (int64_t j = 0; j < V; j++)
                    sum += exp((double)row[j] - mx);
                float *w = malloc((size_t)V * sizeof *w);
                for (int64_t j = 0; j < V; j++) {
                    int c = 0;
                    for (int k = 0; k < i; k++)
                        c += out[k] == j;
                    w[j] = (float)((double)row[j] - (c * a.p.frequency_penalty + (c > 0) * a.p.presence_penalty));
                    if (w[j] > w[tok])
                        tok = (int32_t)j;
                }
                want_lp[i] = (float)(row[tok] - mx - log(sum));
                free(w);
            }
            free(lg);
            tpi_comm_bcast(G.comm, &tok, sizeof tok, 0);
            out[i] = seq[a.n + i] = tok;
        }
        srv_engine_opts o = opts(2, 256, 2, 0);
        run_scenario(&o, drive_lp, &a);
        if (rank0()) {
            double worst = 0;
            int same = R[0].n_lp == N;
            for (int i = 0; same && i < N; i++) {
                same = R[0].ids[i] == out[i];
                worst = fmax(worst, fabs(R[0].lps[i] - want_lp[i]));
            }
            if (!same || worst > 1e-4)
                g_fail(&G, "%s: %d tokens, ids %s the naive loop's, logprob error %.3g (tolerance 1e-4)",
                       pass ? "penalties" : "logprobs", R[0].n_lp, same ? "equal" : "differ from", worst);
            else
                printf("ok: %s: %d ids equal the naive loop's; logprobs within %.2g of log-softmax\n",
                       pass ? "frequency 1.5 + presence 0.5" : "no penalty", N, worst);
        }
    }
    free(a.ids);
    g_finish(&G);
}

/* ---- seeded sampling: alone and batched give the same text ---- */
static void drive_seeded(scenario *sc)
{
    lp_arg *a = sc->arg;
    submit(sc->e, 0, a->ids, a->n, &a->p);
    WAIT_DONE(0);
    srv_params g = greedy(40);
    submit(sc->e, 1, a->ids, 2, &g);
    submit(sc->e, 2, a->ids, 3, &g);
    WAIT_FIRST(2);
    submit(sc->e, 3, a->ids, a->n, &a->p);
    WAIT_DONE(3);
    WAIT_DONE(1);
    WAIT_DONE(2);
}

static void test_seeded(void **state)
{
    (void)state;
    lp_arg a;
    a.ids = encode("Once upon a time", &a.n);
    a.p = greedy(30);
    a.p.sampling.temperature = 0.9;
    a.p.sampling.top_k = 40;
    a.p.sampling.seed = 1234;
    srv_engine_opts o = opts(3, 256, 3, 0);
    run_scenario(&o, drive_seeded, &a);
    if (rank0()) {
        if (!R[0].text || !R[3].text || strcmp(R[0].text, R[3].text))
            g_fail(&G, "seeded sampling: alone \"%s\", batched \"%s\"", R[0].text, R[3].text);
        else
            printf("ok: seeded sampling gives the same %lld tokens alone and batched\n",
                   (long long)R[0].completion_tokens);
    }
    free(a.ids);
    g_finish(&G);
}

/* ---- a small KV pool: the newest wait, all finish as alone ---- */
static void drive_pool(scenario *sc)
{
    batch_arg *a = sc->arg;
    for (int i = 0; i < 4; i++) {
        srv_params p = greedy(a->max_new[i]);
        submit(sc->e, i, a->ids[i], a->n[i], &p);
    }
    for (int i = 0; i < 4; i++)
        WAIT_DONE(i);
}

static void test_small_pool(void **state)
{
    (void)state;
    batch_arg a;
    char *want[4];
    int64_t want_n[4];
    int want_stop[4];
    for (int i = 0; i < 4; i++) {
        a.ids[i] = encode(prompts16[i], &a.n[i]);
        a.max_new[i] = 40;
        want[i] = reference(a.ids[i], a.n[i], a.max_new[i], &want_n[i], &want_stop[i]);
    }
    /* 4 slots of 64 positions over a pool of 64: one context at a time when paged */
    srv_engine_opts o = opts(4, 64, 4, 0);
    o.kv_pool_positions = 64;
    run_scenario(&o, drive_pool, &a);
    for (int i = 0; rank0() && i < 4; i++)
        if (!R[i].done || R[i].error || strcmp(R[i].text ? R[i].text : "", want[i]))
            g_fail(&G, "small pool, request %d: \"%s\" %s; alone \"%s\"", i, R[i].text ? R[i].text : "", R[i].errmsg,
                   want[i]);
    if (rank0() && !G.failures)
        printf("ok: 4 requests over a 64-position pool all finish as alone\n");
    for (int i = 0; i < 4; i++)
        free(a.ids[i]), free(want[i]);
    g_finish(&G);
}

/* ---- a session (tpinfer chat): the second turn reuses the first ---- */
static void test_session(void **state)
{
    (void)state;
    int64_t n1;
    int32_t *p1 = encode("Once upon a time", &n1);
    tpi_error err = {0};
    tpi_session *ss;
    assert_int_equal(tpi_session_create(&ss, S_model, S_tok, 256, NULL, 0, &err), 0);
    if (!rank0()) {
        if (tpi_session_follow(ss, &err))
            g_fail(&G, "follow: %s", err.msg);
        tpi_session_free(ss);
        free(p1);
        g_finish(&G);
        return;
    }
    tpi_gen_opts o;
    tpi_gen_opts_default(&o, NULL, NULL);
    o.max_new_tokens = 12;
    tpi_gen_result r1 = {0}, r2 = {0};
    int64_t c1 = -1, c2 = -1;
    int rc = tpi_session_generate(ss, p1, n1, &o, &r1, &c1, &err);
    int32_t *p2 = malloc((size_t)(n1 + 40) * sizeof *p2);
    int64_t n2 = n1 + r1.n_ids;
    memcpy(p2, p1, (size_t)n1 * sizeof *p2);
    memcpy(p2 + n1, r1.ids, (size_t)r1.n_ids * sizeof *p2);
    p2[n2++] = p1[1];
    if (!rc)
        rc = tpi_session_generate(ss, p2, n2, &o, &r2, &c2, &err);
    if (rc)
        g_fail(&G, "session: %s", err.msg);
    else if (c1 != 0 || c2 != n1 + r1.n_ids - 1 || r1.stop_reason != TPI_STOP_LENGTH || r1.n_ids != 12)
        g_fail(&G, "session: cached %lld then %lld (expected 0, %lld), first turn %lld tokens stop %d", (long long)c1,
               (long long)c2, (long long)(n1 + r1.n_ids - 1), (long long)r1.n_ids, r1.stop_reason);
    else
        printf("ok: session: the second turn of %lld tokens reused %lld (\"%s\")\n", (long long)n2, (long long)c2,
               r2.text);
    if (tpi_session_close(ss, &err))
        g_fail(&G, "close: %s", err.msg);
    tpi_gen_result_free(&r1), tpi_gen_result_free(&r2);
    tpi_session_free(ss);
    free(p1), free(p2);
    g_finish(&G);
}

/* ---- non-finite logits fail that request; the others go on ---- */
static tpi_model *NF_model;

static void pre_nonfinite(scenario *sc)
{
    static const int32_t bad[3] = {1, 40, 3}, good[3] = {1, 2, 3};
    srv_params g = greedy(10);
    g.ignore_eos = 1;
    /* the same first step: greedy rows through the argmax forward */
    submit(sc->e, 0, bad, 3, &g);
    submit(sc->e, 1, good, 3, &g);
    /* a sampled row in the batch: the logits are gathered and checked */
    srv_params t = g;
    t.sampling.temperature = 0.8;
    t.sampling.seed = 3;
    submit(sc->e, 2, bad, 3, &t);
    submit(sc->e, 3, good, 3, &g);
}

static void drive_nonfinite(scenario *sc)
{
    (void)sc;
    for (int i = 0; i < 4; i++)
        WAIT_DONE(i);
}

static void test_nonfinite(void **state)
{
    (void)state;
    static const int32_t good[3] = {1, 2, 3};
    tpi_gen_opts o;
    tpi_gen_opts_default(&o, NULL, NULL);
    o.max_new_tokens = 10;
    o.tokenizer = S_tok;
    const int32_t none = -1;
    o.eos_ids = &none;
    o.n_eos = 1;
    int64_t n = 3;
    tpi_gen_result ref;
    tpi_error err = {0};
    assert_int_equal(tpi_generate(NF_model, good, &n, 1, &o, &ref, &err), 0);
    srv_engine_opts eo = opts(2, 64, 4, 0);
    tpi_model *keep = S_model;
    S_model = NF_model;
    run_scenario2(&eo, pre_nonfinite, drive_nonfinite, NULL);
    S_model = keep;
    for (int i = 0; rank0() && i < 4; i++) {
        int bad = i % 2 == 0;
        if (bad ? !R[i].error || !strstr(R[i].errmsg, "not finite")
                : R[i].error || !R[i].text || strcmp(R[i].text, ref.text))
            g_fail(&G, "request %d (%s): error %d \"%s\", text \"%s\"; expected %s", i, bad ? "NaN" : "clean",
                   R[i].error, R[i].errmsg, R[i].text ? R[i].text : "", bad ? "an error" : ref.text);
    }
    if (rank0() && !G.failures)
        printf("ok: NaN logits fail their request (argmax and sampled rows); the others equal tpi_generate\n");
    tpi_gen_result_free(&ref);
    g_finish(&G);
}

static int stories_setup(void **state)
{
    (void)state;
    char *models = tu_path(G.shared, "models");
    S_dir = tu_path(models, "stories260K-hf");
    free(models);
    tpi_error err = {0};
    S_model = g_load(&G, S_dir, 0);
    if (tpi_tokenizer_load(&S_tok, S_dir, &err))
        g_fail(&G, "tokenizer: %s", err.msg);
    int32_t f = !S_model || !S_tok;
    tpi_comm_allreduce_max_i32(G.comm, &f, 1);
    return f ? -1 : 0;
}

static int stories_teardown(void **state)
{
    (void)state;
    tpi_model_free(S_model);
    tpi_tokenizer_free(S_tok);
    free(S_dir);
    reset_got();
    return 0;
}

int main(int argc, char **argv)
{
    int rc0 = g_init(&G, &argc, &argv);
    if (rc0)
        return rc0;
    const struct CMUnitTest stories[] = {
        cmocka_unit_test(test_batch16),
        cmocka_unit_test(test_batch16_long_plan),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_queue_and_stop),
        cmocka_unit_test(test_idle_stop),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_copy_prefix),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_penalties_unit),
        cmocka_unit_test(test_logprobs_penalties),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_small_pool),
        cmocka_unit_test(test_session),
    };
    /* TPI_ENGINE_NONFINITE=DIR: a tiny checkpoint with a NaN in token 40's
     * embedding (the nonfinite fixture); only that test runs. */
    const char *nf = getenv("TPI_ENGINE_NONFINITE");
    if (nf) {
        const struct CMUnitTest t[] = {cmocka_unit_test(test_nonfinite)};
        int rc = 1;
        if ((NF_model = g_load(&G, nf, 0)) && !stories_setup(NULL))
            rc = _cmocka_run_group_tests("engine non-finite", t, 1, NULL, stories_teardown);
        tpi_model_free(NF_model);
        tpi_comm_free(G.comm);
        return rc;
    }
    /* TPI_ENGINE_ONLY=batch16 runs the batching test alone (the run with the
     * slow reference kernels) */
    const char *only = getenv("TPI_ENGINE_ONLY");
    size_t n = only && !strcmp(only, "batch16") ? 1 : sizeof stories / sizeof stories[0];
    char group[64];
    snprintf(group, sizeof group, "engine stories260K TP=%d", tpi_comm_size(G.comm));
    int rc = _cmocka_run_group_tests(group, stories, n, stories_setup, stories_teardown);
    tpi_comm_free(G.comm);
    return rc;
}
