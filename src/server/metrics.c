/* GET /metrics: Prometheus' text exposition format (version 0.0.4), with
 * names after vLLM's where one exists (requests running and waiting, prompt
 * and generation tokens, time to first token). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/response.h"

typedef struct mbuf {
    char *p;
    size_t len, cap;
    int oom;
} mbuf;

static void put(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(mbuf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->len + (size_t)n + 1) * 2 + 1024;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void metric(mbuf *b, const char *name, const char *type, const char *help, int64_t v)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, (long long)v);
}

static void ttft(mbuf *b, const srv_stats *s)
{
    const char *n = "tpinfer_time_to_first_token_seconds";
    put(b, "# HELP %s Seconds from a request's arrival to its first generated token.\n# TYPE %s histogram\n", n, n);
    for (int i = 0; i < SRV_TTFT_BUCKETS; i++) {
        if (i == SRV_TTFT_BUCKETS - 1)
            put(b, "%s_bucket{le=\"+Inf\"} %lld\n", n, (long long)s->ttft_count[i]);
        else
            put(b, "%s_bucket{le=\"%g\"} %lld\n", n, srv_ttft_bounds[i], (long long)s->ttft_count[i]);
    }
    put(b, "%s_sum %.6f\n%s_count %lld\n", n, s->ttft_sum, n, (long long)s->ttft_count[SRV_TTFT_BUCKETS - 1]);
}

/* The engine's steps by kind and where their time goes: what the step loop's
 * overhead is made of (docs/SERVING.md). */
static void steps(mbuf *b, const srv_stats *s)
{
    static const char *const kinds[SRV_STEP_KINDS] = {"decode", "mixed"};
    const char *n = "tpinfer_steps_total", *t = "tpinfer_step_tokens_total", *p = "tpinfer_step_seconds_total";
    put(b, "# HELP %s Engine steps, decode-only or with a prompt chunk.\n# TYPE %s counter\n", n, n);
    for (int k = 0; k < SRV_STEP_KINDS; k++)
        put(b, "%s{kind=\"%s\"} %lld\n", n, kinds[k], (long long)s->steps[k]);
    put(b, "# HELP %s Tokens the engine's steps fed the model.\n# TYPE %s counter\n", t, t);
    for (int k = 0; k < SRV_STEP_KINDS; k++)
        put(b, "%s{kind=\"%s\"} %lld\n", t, kinds[k], (long long)s->step_tokens[k]);
    put(b, "# HELP %s Seconds rank 0 spent in each phase of its steps.\n# TYPE %s counter\n", p, p);
    for (int k = 0; k < SRV_STEP_KINDS; k++)
        for (int ph = 0; ph < SRV_PHASES; ph++)
            put(b, "%s{kind=\"%s\",phase=\"%s\"} %.6f\n", p, kinds[k], srv_phase_names[ph], s->step_seconds[k][ph]);
}

char *srv_metrics_text(const srv_stats *s, const srv_http_stats *h)
{
    mbuf b = {0};
    const char *rn = "tpinfer_requests_total";
    put(&b, "# HELP %s Requests the engine took, by how they ended.\n# TYPE %s counter\n", rn, rn);
    put(&b, "%s{outcome=\"ok\"} %lld\n%s{outcome=\"cancelled\"} %lld\n%s{outcome=\"failed\"} %lld\n", rn,
        (long long)s->requests_ok, rn, (long long)s->requests_cancelled, rn, (long long)s->requests_failed);
    metric(&b, "tpinfer_requests_submitted_total", "counter", "Requests submitted to the engine.", s->requests);
    const char *hn = "tpinfer_http_responses_total";
    put(&b, "# HELP %s HTTP responses by status class.\n# TYPE %s counter\n", hn, hn);
    put(&b, "%s{class=\"2xx\"} %lld\n%s{class=\"4xx\"} %lld\n%s{class=\"5xx\"} %lld\n", hn,
        (long long)h->responses_2xx, hn, (long long)h->responses_4xx, hn, (long long)h->responses_5xx);
    metric(&b, "tpinfer_http_rejected_queue_full_total", "counter",
           "Requests answered 503 because the queue was full.", h->rejected_queue_full);
    metric(&b, "tpinfer_http_disconnects_total", "counter", "Clients that went away before their answer ended.",
           h->disconnects);
    metric(&b, "tpinfer_prompt_tokens_total", "counter", "Prompt tokens of requests taken.", s->prompt_tokens);
    metric(&b, "tpinfer_prompt_tokens_cached_total", "counter", "Prompt tokens whose KV was reused, not prefilled.",
           s->prompt_tokens_cached);
    metric(&b, "tpinfer_generation_tokens_total", "counter", "Tokens generated.", s->generated_tokens);
    metric(&b, "tpinfer_num_requests_running", "gauge", "Sequences running (holding KV).", s->running);
    metric(&b, "tpinfer_num_requests_waiting", "gauge", "Requests queued, waiting for a sequence.", s->queued);
    metric(&b, "tpinfer_kv_positions_used", "gauge", "KV positions held by running sequences.", s->kv_positions_used);
    metric(&b, "tpinfer_kv_positions_cached", "gauge", "KV positions kept from ended requests for prompt reuse.",
           s->kv_positions_cached);
    metric(&b, "tpinfer_kv_positions_total", "gauge", "KV positions of the pool.", s->kv_positions_total);
    ttft(&b, s);
    steps(&b, s);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
