#ifndef TPI_SERVER_ENGINE_INT_H
#define TPI_SERVER_ENGINE_INT_H
/* The engine's insides, shared by engine.c (the loop, the requests' way in),
 * engine_plan.c (admission, prompt reuse, the plan of a step and its KV
 * operations) and engine_sample.c (tokens, text, events). */
#include <pthread.h>
#include <stdatomic.h>

#include "generate/gen_text.h"
#include "generate/sampler.h"
#include "server/engine.h"

typedef struct srv_request {
    uint64_t id;
    int32_t *prompt;
    int64_t n_prompt;
    srv_params p;        /* p.stop points into stop */
    char **stop;
    srv_event_fn fn;
    void *user;
    double t_submit;
    int cancelled;       /* set under the engine's lock */
    struct srv_request *next;
} srv_request;

/* A KV sequence of the pool. ids[0, tpi_kv_len) are in the KV; a running
 * slot's ids go on to the tokens not yet fed (the rest of its prompt, or
 * the token just sampled). An ended request's slot keeps its ids and KV for
 * prompt reuse until the slot or its blocks are needed. */
typedef struct srv_slot {
    srv_request *req;    /* the running request, or NULL */
    int32_t *ids;
    int64_t n_ids, cap;
    int64_t n_prompt, n_gen, n_cached;
    uint64_t order;      /* admission order: larger is newer */
    uint64_t last_used;  /* step of its last use, for LRU eviction */
    int64_t want;        /* this step's new tokens */
    int row;             /* this step's logits row, -1 when it samples nothing */
    int first_done;      /* TTFT taken */
    tpi_sampler sampler;
    int have_sampler;
    tpi_gen_text text;
    tpi_gen_opts gopts;  /* for gen_text: the request's stop strings and the event trampoline */
    srv_logprob *lp;     /* tokens since the last TEXT event */
    int n_lp, cap_lp;
    struct srv_engine *e;
} srv_slot;

enum srv_op_kind { SRV_OP_CLEAR = 1, SRV_OP_TRUNCATE = 2, SRV_OP_COPY = 3 };

typedef struct srv_op {
    int64_t kind, seq, src, len;
} srv_op;

/* What every rank receives first each step; the body (ops, n_new, ids)
 * follows when the step has any. */
typedef struct srv_plan_head {
    int32_t stop;       /* 1: srv_engine_run returns */
    int32_t idle_after; /* 1: rank 0 has nothing to run; the next head is an idle broadcast */
    int32_t argmax;     /* 1: greedy rows only, tpi_model_forward_argmax */
    int32_t n_ops;
    int64_t n_tok;
    int32_t inline_body; /* 1: the body travels in the same broadcast (srv_plan_msg) */
    int32_t pad;
} srv_plan_head;

/* Bytes of a plan's body (ops, n_new, ids) that ride with its head: a decode
 * step of a few dozen sequences then costs one broadcast, not four (every
 * broadcast waits for every rank). A larger body follows the head. */
#define SRV_PLAN_INLINE 4096

typedef struct srv_plan_msg {
    srv_plan_head h;
    unsigned char body[SRV_PLAN_INLINE];
} srv_plan_msg;

struct srv_engine {
    tpi_model *m;
    const tpi_tokenizer *tok;
    tpi_comm *comm;
    int rank;
    srv_engine_opts o;
    int64_t vocab;
    tpi_kv *kv;
    int64_t reserved;    /* activation bytes admitted (core/meminfo.h) */
    int32_t eos[40];
    int n_eos;
    int idle;            /* every rank: the next head comes through the idle broadcast */

    /* rank 0 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int have_sync;
    atomic_int stop;
    srv_request *queue_head, *queue_tail; /* FIFO, under mu */
    int64_t n_queued, n_running;          /* under mu */
    uint64_t *cancels;                    /* ids to cancel, under mu */
    int n_cancels, cap_cancels;
    uint64_t next_id;
    srv_stats stats;                      /* under mu */
    srv_slot *slots;                      /* [parallel] */
    uint64_t step, admitted;
    srv_op *ops;                          /* this step's KV operations, applied on rank 0 as planned */
    int n_ops, cap_ops;
    float *logits;                        /* [parallel, vocab] */
    float *work;                          /* [vocab] penalised logits */
    int32_t *count;                       /* [vocab] zeroed scratch for the penalties */

    /* every rank: this step's body */
    int64_t *n_new;  /* [parallel] */
    int32_t *ids;    /* [step capacity] */
    int32_t *next;   /* [parallel] argmax forward's picks */
    int64_t ids_cap;
    srv_plan_msg msg; /* the step's broadcast */
};

/* engine_plan.c (rank 0) */
int srv_plan_admit(struct srv_engine *e);
/* The step's tokens (*n_tok), the rows it samples (*rows) and whether they
 * are all plain greedy (*argmax). */
int srv_plan_step(struct srv_engine *e, int64_t *n_tok, int64_t *rows, int *argmax);
int srv_plan_add_op(struct srv_engine *e, int64_t kind, int64_t seq, int64_t src, int64_t len);
/* Applies one operation to the KV (every rank, in plan order). */
int srv_op_apply(tpi_kv *kv, const srv_op *op, tpi_error *err);

/* engine_sample.c (rank 0) */
/* Starts slot s for request r (text, sampler); fails the request on error. */
int srv_slot_start(struct srv_engine *e, srv_slot *s, srv_request *r);
/* Ends the slot's request with DONE (finish) or ERROR (msg != NULL); keep:
 * the KV stays cached for reuse, else it is cleared now. */
void srv_slot_end(struct srv_engine *e, srv_slot *s, int finish, const char *msg, int keep);
/* Samples the rows of this step and reports events. */
void srv_sample_step(struct srv_engine *e, int argmax);
void srv_stats_update(struct srv_engine *e);

/* Exposed for tests: OpenAI's penalties over the generated ids [n] applied
 * to w [vocab] in place (count [vocab] zeroed scratch, zero again after);
 * and log-softmax logprobs of raw logits with the top n_top alternatives
 * (descending, ties to the lower id). */
void srv_apply_penalties(float *w, int64_t vocab, const int32_t *gen, int64_t n, double presence,
                         double frequency, int32_t *count);
void srv_logprob_of(const float *logits, int64_t vocab, int32_t id, int n_top, srv_logprob *out);
#endif
