#ifndef TPI_SERVER_ENGINE_H
#define TPI_SERVER_ENGINE_H
/* The serving engine: continuous batching over the model's ranks
 * (DESIGN.md "Serving"). Every rank runs srv_engine_run, the same step loop.
 * Each step rank 0 plans the batch (which sequences, how many new tokens
 * each: one to decode, or the next chunk of a prompt, and the KV operations
 * before it), broadcasts the plan, every rank runs one forward, and rank 0
 * samples, detokenizes and reports events. Requests come in on rank 0 from
 * any thread (the HTTP layer, tpinfer chat) through srv_engine_submit. */
#include <stddef.h>
#include <stdint.h>

#include "tpinfer.h"

typedef struct srv_engine srv_engine;

typedef struct srv_engine_opts {
    int parallel;            /* sequences running at once (KV slots), >= 1 */
    int64_t ctx;             /* positions per sequence */
    int64_t kv_pool_positions; /* 0: parallel x ctx */
    int queue;               /* requests waiting beyond the running ones */
    int64_t step_tokens;     /* tokens per forward, decodes and prompt chunks together; 0: the default */
    /* the ids that end a sequence; NULL: the model's and the tokenizer's */
    const int32_t *eos_ids;
    int n_eos;
} srv_engine_opts;

/* What one request asks for; the HTTP layer has validated every field. */
typedef struct srv_params {
    tpi_sampling sampling;   /* temperature, top_k, top_p, min_p, repetition_penalty, seed */
    double presence_penalty, frequency_penalty; /* OpenAI's, over the output; 0: off */
    int64_t max_tokens;      /* new tokens at most; the prompt plus these fit ctx (checked by submit);
                              * 0: up to the context */
    const char *const *stop; /* stop strings (copied by submit) */
    int n_stop;
    int logprobs;            /* 1: report each token's logprob */
    int top_logprobs;        /* 0..20 alternatives per token */
    int ignore_eos;          /* 1: eos does not end the sequence */
} srv_params;

enum srv_event_kind {
    SRV_EV_TEXT = 1,  /* new output text (whole UTF-8 characters, stop strings held back and cut) */
    SRV_EV_DONE = 2,  /* the request ended; the last event it gets */
    SRV_EV_ERROR = 3, /* the request failed (non-finite logits, ...); the last event it gets */
};

enum srv_finish {
    SRV_FINISH_STOP = 1,      /* eos or a stop string */
    SRV_FINISH_LENGTH = 2,    /* max_tokens, or the context */
    SRV_FINISH_CANCELLED = 3, /* srv_engine_cancel or the engine stopping */
};

#define SRV_TOP_LOGPROBS_MAX 20

typedef struct srv_logprob {
    int32_t id;
    float logprob;                        /* log-softmax of the raw logits */
    int n_top;
    int32_t top_ids[SRV_TOP_LOGPROBS_MAX];
    float top_logprobs[SRV_TOP_LOGPROBS_MAX];
} srv_logprob;

typedef struct srv_event {
    int kind;                 /* enum srv_event_kind */
    uint64_t id;              /* the request's id from srv_engine_submit */
    const char *text;         /* TEXT: the new text, len bytes (not NUL-terminated) */
    size_t len;
    const srv_logprob *lp;    /* TEXT with logprobs: the tokens generated since the last event */
    int n_lp;
    int finish;               /* DONE: enum srv_finish */
    int64_t prompt_tokens, completion_tokens;
    int64_t cached_tokens;    /* prompt tokens whose KV was reused rather than prefilled */
    const char *error;        /* ERROR: the message */
} srv_event;

/* Called on rank 0 on the engine's thread; everything it points to is valid
 * only during the call, and it must not block for long. Every submitted
 * request gets events until exactly one DONE or ERROR, and none after it. */
typedef void (*srv_event_fn)(void *user, const srv_event *ev);

/* Collective: the KV pool and, on rank 0, the queues. tok is needed on rank 0. */
int srv_engine_create(srv_engine **out, tpi_model *m, const tpi_tokenizer *tok, const srv_engine_opts *o,
                      tpi_error *err);
/* Collective: the step loop, until srv_engine_stop; then the open requests are
 * cancelled (DONE, SRV_FINISH_CANCELLED) and it returns 0 on every rank. An
 * idle engine waits without burning a core (and without a comm timeout). */
int srv_engine_run(srv_engine *e, tpi_error *err);
/* Rank 0, instead of srv_engine_run, for a caller that drives the loop
 * itself between its own work (tpinfer chat): one turn of the loop (one
 * step when there is work; with none, the other ranks are told to wait
 * idle, and it returns at once). The other ranks run srv_engine_run.
 * Returns 0, 1 once a stop was sent (after srv_engine_stop), or a negative
 * TPI_E* code. */
int srv_engine_step(srv_engine *e, tpi_error *err);
/* Rank 0, any thread (async-signal-safe): makes srv_engine_run return on every rank. */
void srv_engine_stop(srv_engine *e);
void srv_engine_free(srv_engine *e);

/* Rank 0, any thread: queues the prompt ids[n] (copied). Returns 0 and the
 * request's id, TPI_ELIMIT when the queue is full (the HTTP layer answers
 * 503), TPI_EINVAL when the prompt plus max_tokens exceed ctx (naming both
 * numbers) or a parameter is out of range. fn may be called before submit
 * returns. */
int srv_engine_submit(srv_engine *e, const int32_t *ids, int64_t n, const srv_params *p, srv_event_fn fn,
                      void *user, uint64_t *id, tpi_error *err);
/* Rank 0, any thread: ends the request (a client went away); its KV is given
 * back at the next step and it gets DONE with SRV_FINISH_CANCELLED unless it
 * already ended. An unknown or ended id is ignored. */
void srv_engine_cancel(srv_engine *e, uint64_t id);

#define SRV_TTFT_BUCKETS 12
/* Upper bounds in seconds of the time-to-first-token histogram's buckets
 * (the last is +Inf). */
extern const double srv_ttft_bounds[SRV_TTFT_BUCKETS];

enum srv_step_kind { SRV_STEP_DECODE, SRV_STEP_MIXED, SRV_STEP_KINDS };
/* The phases of a step on rank 0: cancels, admission and the plan; its
 * broadcast; the forward (waits for the other ranks included); sampling,
 * text and events (the HTTP side's share of the engine's thread). */
enum srv_phase { SRV_PHASE_PLAN, SRV_PHASE_SHARE, SRV_PHASE_FORWARD, SRV_PHASE_SAMPLE, SRV_PHASES };
extern const char *const srv_phase_names[SRV_PHASES];

typedef struct srv_stats {
    int64_t requests, requests_ok, requests_cancelled, requests_failed;
    int64_t prompt_tokens, generated_tokens;
    int64_t prompt_tokens_cached; /* prompt tokens reused from the cache */
    int64_t running, queued;
    int64_t kv_positions_used;   /* held by running sequences */
    int64_t kv_positions_cached; /* kept by ended requests for prompt reuse; given up when needed */
    int64_t kv_positions_total;
    int64_t ttft_count[SRV_TTFT_BUCKETS]; /* cumulative, as Prometheus' le buckets */
    double ttft_sum;
    /* where rank 0's steps spend their time, by kind of step: SRV_STEP_DECODE
     * (every token a decode token), SRV_STEP_MIXED (a prompt chunk in it) */
    int64_t steps[SRV_STEP_KINDS], step_tokens[SRV_STEP_KINDS];
    double step_seconds[SRV_STEP_KINDS][SRV_PHASES];
} srv_stats;
/* Rank 0, any thread: a consistent snapshot. */
void srv_engine_stats(srv_engine *e, srv_stats *s);

#endif
