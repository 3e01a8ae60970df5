/* Generation as a state that advances one forward per step: the first step
 * prefills every prompt, each later one decodes one token per sequence still
 * running. Every rank runs the same steps; rank 0 chooses the tokens and
 * decides the stops, and broadcasts both each step (DESIGN.md "Process
 * model", "Generation"). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/meminfo.h"
#include "generate/gen_text.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "core/vec.h"

/* The longest context a generation takes, as config.json's
 * max_position_embeddings: a context bounds the KV cache and the history of
 * prompt + output ids, both allocated up front. */
#define TPI_GEN_MAX_CTX TPI_MAX_POSITIONS

struct tpi_gen_state {
    tpi_model *m;
    tpi_gen_opts o;          /* the caller's; what it points to is borrowed */
    tpi_model_info info;
    int rank;
    int64_t n_seq, ctx, vocab;
    const int32_t *eos;      /* o.eos_ids, or the model's in info */
    int n_eos;
    int argmax_only;         /* plain greedy: every rank gets the argmax, no logits gathered */
    tpi_kv *kv;
    int64_t reserved; /* activation bytes admitted (core/meminfo.h) */
    tpi_sampler sampler;     /* rank 0, unless argmax_only */
    int have_sampler;
    float *logits;           /* rank 0, unless argmax_only: [n_seq, vocab] */
    int64_t *prompt_len;     /* [n_seq] */
    int32_t **hist;          /* [n_seq][prompt_len + room for the output]: prompt and output ids */
    int64_t *hist_len;       /* [n_seq] */
    int *reason;             /* [n_seq] enum tpi_stop_reason, TPI_STOP_NONE while running */
    tpi_gen_text *text;      /* [n_seq] rank 0's text (unstarted without a tokenizer) */
    int64_t *n_new;          /* [n_seq] ids of each sequence in the next forward */
    int32_t *feed;           /* the next forward's ids: every prompt, then a token per running sequence */
    int32_t *next;           /* [n_seq] argmax_only: the forward's picks */
    int32_t *packet;         /* [n_seq][2] rank 0's token and stop reason, broadcast */
    int prefilled;           /* the first step ran */
    int failed;              /* a step failed: only free is left */
    double prefill_s, decode_s;
    int64_t decode_steps;
};

/* The sampling options, each named, non-finite values included: NaN passes
 * every ordered comparison, so each test is written to fail on it. */
static int check_sampling(const tpi_sampling *p, tpi_error *err)
{
    const char *field = NULL, *want = NULL;
    double found = 0;
    if (!(p->temperature >= 0 && isfinite(p->temperature)))
        field = "temperature", want = "a finite number >= 0", found = p->temperature;
    else if (!(p->top_p > 0 && p->top_p <= 1))
        field = "top_p", want = "a number in (0, 1]", found = p->top_p;
    else if (!(p->min_p >= 0 && p->min_p <= 1))
        field = "min_p", want = "a number in [0, 1]", found = p->min_p;
    else if (!(p->repetition_penalty > 0 && isfinite(p->repetition_penalty)))
        field = "repetition_penalty", want = "a finite number > 0", found = p->repetition_penalty;
    if (field)
        return tpi_err(err, TPI_EINVAL, "generate: sampling.%s must be %s, found %g", field, want, found);
    if (p->top_k < 0)
        return tpi_err(err, TPI_EINVAL, "generate: sampling.top_k must be >= 0, found %lld", (long long)p->top_k);
    return 0;
}

/* The options that size buffers or are read through pointers. */
static int check_opts(const tpi_gen_opts *o, int64_t n_seq, int64_t vocab, tpi_error *err)
{
    int64_t logits;
    if (o->max_ctx < 0 || o->max_ctx > TPI_GEN_MAX_CTX)
        return tpi_err(err, TPI_EINVAL, "generate: max_ctx must be in [0, %lld] (0: the model's), found %lld",
                       (long long)TPI_GEN_MAX_CTX, (long long)o->max_ctx);
    if (o->max_new_tokens < 0)
        return tpi_err(err, TPI_EINVAL, "generate: max_new_tokens must be >= 0, found %lld",
                       (long long)o->max_new_tokens);
    /* eos_ids NULL means the model's, whatever n_eos says */
    if (o->eos_ids && o->n_eos < 0)
        return tpi_err(err, TPI_EINVAL, "generate: n_eos must be >= 0, found %d", o->n_eos);
    if (o->n_stop < 0 || (o->n_stop > 0 && !o->stop))
        return tpi_err(err, TPI_EINVAL, "generate: n_stop must be >= 0 with stop holding as many, found %d",
                       o->n_stop);
    if (o->n_stop > 0 && !o->tokenizer)
        return tpi_err(err, TPI_EINVAL, "generate: stop strings need a tokenizer");
    if (tpi_mul_overflow(n_seq, vocab, &logits) || (uint64_t)logits > SIZE_MAX / sizeof(float))
        return tpi_err(err, TPI_ELIMIT, "generate: %lld sequences x a vocabulary of %lld logits do not fit in memory",
                       (long long)n_seq, (long long)vocab);
    return check_sampling(&o->sampling, err);
}

/* The caller's arguments, checked the same way on every rank. */
static int check_args(const tpi_model_info *info, const int32_t *prompts, const int64_t *prompt_lens, int64_t n_seq,
                      const tpi_gen_opts *o, int64_t ctx, tpi_error *err)
{
    if (n_seq < 1)
        return tpi_err(err, TPI_EINVAL, "generate: expected at least one prompt, found %lld", (long long)n_seq);
    int rc = check_opts(o, n_seq, info->vocab_size, err);
    if (rc)
        return rc;
    if (ctx < 1)
        return tpi_err(err, TPI_ECONFIG, "generate: no context length (max_position_embeddings = %lld); give one",
                       (long long)ctx);
    for (int64_t s = 0, off = 0; s < n_seq; off += prompt_lens[s], s++) {
        if (prompt_lens[s] < 1)
            return tpi_err(err, TPI_EINVAL, "generate: prompt %lld is empty", (long long)s);
        if (prompt_lens[s] > ctx)
            return tpi_err(err, TPI_ELIMIT, "generate: prompt %lld has %lld tokens, longer than the context of %lld tokens",
                           (long long)s, (long long)prompt_lens[s], (long long)ctx);
        for (int64_t i = 0; i < prompt_lens[s]; i++)
            if (prompts[off + i] < 0 || prompts[off + i] >= info->vocab_size)
                return tpi_err(err, TPI_EINVAL, "generate: prompt %lld token %lld is %d, outside the vocabulary of %lld",
                               (long long)s, (long long)i, prompts[off + i], (long long)info->vocab_size);
    }
    /* the sampling options are checked on every rank, though only rank 0 samples */
    tpi_sampler probe;
    rc = tpi_sampler_init(&probe, &o->sampling, 1, err);
    if (!rc)
        tpi_sampler_free(&probe);
    return rc;
}

/* The per-sequence arrays, the prompts copied into the histories, and the
 * sequences that can produce nothing marked as ended. */
static int alloc_sequences(tpi_gen_state *st, const int32_t *prompts, const int64_t *prompt_lens, tpi_error *err)
{
    size_t n = (size_t)st->n_seq;
    int64_t total = 0;
    for (size_t s = 0; s < n; s++)
        total += prompt_lens[s];
    st->prompt_len = malloc(n * sizeof *st->prompt_len);
    st->hist = calloc(n, sizeof *st->hist);
    st->hist_len = calloc(n, sizeof *st->hist_len);
    st->reason = calloc(n, sizeof *st->reason);
    st->text = calloc(n, sizeof *st->text);
    st->n_new = calloc(n, sizeof *st->n_new);
    st->feed = malloc((size_t)(total > st->n_seq ? total : st->n_seq) * sizeof *st->feed);
    st->next = malloc(n * sizeof *st->next);
    st->packet = calloc(2 * n, sizeof *st->packet);
    if (!st->prompt_len || !st->hist || !st->hist_len || !st->reason || !st->text || !st->n_new || !st->feed ||
        !st->next || !st->packet)
        return tpi_err(err, TPI_ENOMEM, "generate: out of memory");
    for (int64_t s = 0, off = 0; s < st->n_seq; off += prompt_lens[s], s++) {
        int64_t room = st->ctx - prompt_lens[s];
        int64_t cap = st->o.max_new_tokens < room ? st->o.max_new_tokens : room;
        if (!(st->hist[s] = malloc((size_t)(prompt_lens[s] + cap + 1) * sizeof *st->hist[s])))
            return tpi_err(err, TPI_ENOMEM, "generate: out of memory");
        memcpy(st->hist[s], prompts + off, (size_t)prompt_lens[s] * sizeof *st->hist[s]);
        st->prompt_len[s] = st->hist_len[s] = prompt_lens[s];
        if (st->o.max_new_tokens == 0)
            st->reason[s] = TPI_STOP_LENGTH;
        else if (room == 0)
            st->reason[s] = TPI_STOP_CONTEXT;
    }
    return 0;
}

/* Rank 0's share: the sampler and its logits, and the texts. */
static int setup_rank0(tpi_gen_state *st, tpi_error *err)
{
    if (!st->argmax_only) {
        int rc = tpi_sampler_init(&st->sampler, &st->o.sampling, st->vocab, err);
        if (rc)
            return rc;
        st->have_sampler = 1;
        if (!(st->logits = malloc((size_t)(st->n_seq * st->vocab) * sizeof *st->logits)))
            return tpi_err(err, TPI_ENOMEM, "generate: out of memory for %lld x %lld logits", (long long)st->n_seq,
                           (long long)st->vocab);
    }
    for (int64_t s = 0; st->o.tokenizer && s < st->n_seq; s++) {
        int rc = tpi_gen_text_start(&st->text[s], &st->o, s, st->hist[s], st->prompt_len[s], err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The activations of one prefill chunk (all prompts together, at most
 * prefill_chunk tokens) and the logits of a step, admitted like the KV
 * cache (core/meminfo.c) for the life of the state. */
static int admit_activations(tpi_gen_state *st, const int64_t *prompt_lens, tpi_error *err)
{
    int64_t total = 0;
    for (int64_t s = 0; s < st->n_seq; s++)
        total += prompt_lens[s];
    int64_t chunk = total < st->m->prefill_chunk ? total : st->m->prefill_chunk;
    if (chunk < st->n_seq)
        chunk = st->n_seq; /* a decode step feeds one token per sequence */
    int64_t bytes = tpi_model_activation_bytes(st->m, chunk, st->n_seq);
    char what[128];
    snprintf(what, sizeof what, "the working memory of generation (a %lld-token prefill chunk, logits of %lld sequences)",
             (long long)chunk, (long long)st->n_seq);
    int rc = tpi_model_admit(st->m, bytes, what, err);
    if (!rc)
        st->reserved = bytes;
    return rc;
}

/* Every rank learns whether any failed its set-up (rank 0's may fail alone),
 * before the first collective forward. */
static int agree_setup(tpi_gen_state *st, int rc, tpi_error *err)
{
    tpi_comm *comm = st->m->comm;
    int32_t failed = rc != 0;
    int crc = tpi_comm_allreduce_max_i32(comm, &failed, 1);
    if (!rc && (crc || failed))
        rc = tpi_err(err, crc ? crc : TPI_ECOMM, "generate: %s",
                     crc ? "agreeing on the set-up failed" : "rank 0 failed to set up");
    return rc;
}

int tpi_gen_state_create(tpi_gen_state **out, tpi_model *m, const int32_t *prompts, const int64_t *prompt_lens,
                         int64_t n_seq, const tpi_gen_opts *o, tpi_error *err)
{
    *out = NULL;
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    int64_t ctx = o->max_ctx > 0 ? o->max_ctx : info.max_position_embeddings;
    int rc = check_args(&info, prompts, prompt_lens, n_seq, o, ctx, err);
    if (rc)
        return rc;
    tpi_gen_state *st = calloc(1, sizeof *st);
    if (!st)
        return tpi_err(err, TPI_ENOMEM, "generate: out of memory");
    *st = (tpi_gen_state){.m = m, .o = *o, .info = info, .rank = m->comm->rank, .n_seq = n_seq, .ctx = ctx,
                          .vocab = info.vocab_size, .argmax_only = tpi_sampling_is_plain_greedy(&o->sampling)};
    st->eos = o->eos_ids ? o->eos_ids : st->info.eos_ids;
    st->n_eos = o->eos_ids ? o->n_eos : st->info.n_eos;
    rc = alloc_sequences(st, prompts, prompt_lens, err);
    if (!rc)
        rc = tpi_kv_create(&st->kv, m, n_seq, ctx, err);
    if (!rc)
        rc = admit_activations(st, prompt_lens, err);
    if (!rc && st->rank == 0)
        rc = setup_rank0(st, err);
    if ((rc = agree_setup(st, rc, err))) {
        tpi_gen_state_free(st);
        return rc;
    }
    for (int64_t s = 0; s < n_seq; s++)
        if (st->reason[s] && st->rank == 0 && o->on_done)
            o->on_done(o->user, s, st->reason[s]);
    *out = st;
    return 0;
}

/* Fills feed and n_new for the next forward: every prompt at the first step,
 * then the last token of each running sequence. Returns how many run. */
static int64_t build_feed(tpi_gen_state *st)
{
    int64_t n_feed = 0, active = 0;
    for (int64_t s = 0; s < st->n_seq; s++) {
        st->n_new[s] = 0;
        if (st->reason[s])
            continue;
        if (!st->prefilled) {
            memcpy(st->feed + n_feed, st->hist[s], (size_t)st->prompt_len[s] * sizeof *st->feed);
            st->n_new[s] = st->prompt_len[s];
        } else {
            st->feed[n_feed] = st->hist[s][st->hist_len[s] - 1];
            st->n_new[s] = 1;
        }
        n_feed += st->n_new[s];
        active++;
    }
    return active;
}

/* Rank 0: *reason (enum tpi_stop_reason, 0 when it runs on) of sequence s
 * after token tok, its text updated and, at its end, flushed. */
static int decide_stop(tpi_gen_state *st, int64_t s, int32_t tok, int *reason, tpi_error *err)
{
    const tpi_gen_opts *o = &st->o;
    tpi_gen_text *t = &st->text[s];
    int r = 0, rc;
    for (int e = 0; e < st->n_eos && !r; e++)
        if (tok == st->eos[e])
            r = TPI_STOP_EOS;
    if (!r && t->ds) {
        if ((rc = tpi_gen_text_push(t, tok, err)))
            return rc;
        if (tpi_gen_text_emit(t, o, s, 0))
            r = TPI_STOP_STRING;
    }
    if (!r && st->hist_len[s] - st->prompt_len[s] + 1 >= o->max_new_tokens)
        r = TPI_STOP_LENGTH;
    else if (!r && st->hist_len[s] + 1 >= st->ctx)
        r = TPI_STOP_CONTEXT;
    if (r && r != TPI_STOP_STRING && t->ds) {
        if ((rc = tpi_gen_text_flush(t, err)))
            return rc;
        if (tpi_gen_text_emit(t, o, s, 1))
            r = TPI_STOP_STRING;
    }
    *reason = r;
    return 0;
}

/* The error of a step whose logits for sequence s are not finite; every rank
 * writes the same message (the step is the index of the token it chose). */
static int nonfinite_err(const tpi_gen_state *st, int64_t s, tpi_error *err)
{
    return tpi_err(err, TPI_ENONFINITE, "generate: sequence %lld, step %lld: logits are not finite (NaN or infinity)",
                   (long long)s, (long long)(st->hist_len[s] - st->prompt_len[s]));
}

/* Rank 0: the next token and the stop reason of every running sequence,
 * from the forward's rows (one per running sequence, in order), into the
 * packet. Non-finite logits stop the choice (*bad_seq names the sequence):
 * a NaN must never turn into a token. */
static int choose_tokens(tpi_gen_state *st, int32_t *bad_seq, tpi_error *err)
{
    for (int64_t s = 0, row = 0; s < st->n_seq; s++) {
        int32_t *pk = st->packet + 2 * s;
        pk[0] = -1;
        pk[1] = st->reason[s];
        if (st->reason[s])
            continue;
        const float *logits = st->argmax_only ? NULL : st->logits + row * st->vocab;
        if (st->argmax_only ? st->next[row] < 0 : !tpi_all_finite_f32(logits, st->vocab)) {
            *bad_seq = (int32_t)s;
            return nonfinite_err(st, s, err);
        }
        int32_t tok = st->argmax_only ? st->next[row]
                                      : tpi_sampler_pick(&st->sampler, logits, st->vocab, st->hist[s], st->hist_len[s]);
        row++;
        int r, rc = decide_stop(st, s, tok, &r, err);
        if (rc)
            return rc;
        pk[0] = tok;
        pk[1] = r;
    }
    return 0;
}

/* Broadcasts rank 0's status (rc there, and the sequence with non-finite
 * logits) and, when it succeeded, its packet: rank 0's failure travels too,
 * so no rank waits alone. */
static int share_tokens(tpi_gen_state *st, int rc, int32_t bad_seq, tpi_error *err)
{
    tpi_comm *comm = st->m->comm;
    int32_t status[2] = {rc, bad_seq};
    int crc = tpi_comm_bcast(comm, status, sizeof status, 0);
    if (!crc && !status[0])
        crc = tpi_comm_bcast(comm, st->packet, (size_t)(2 * st->n_seq) * sizeof *st->packet, 0);
    if (crc)
        return tpi_err(err, crc, "generate: broadcast of the next tokens failed");
    if (status[0] == TPI_ENONFINITE && st->rank != 0 && status[1] >= 0 && status[1] < st->n_seq)
        return nonfinite_err(st, status[1], err);
    if (status[0] && st->rank != 0)
        return tpi_err(err, status[0], "generate: rank 0 failed choosing the next tokens");
    return status[0];
}

/* Appends the packet's token to each running sequence and takes its stop
 * reason. Returns how many sequences still run. */
static int64_t apply_tokens(tpi_gen_state *st)
{
    int64_t running = 0;
    for (int64_t s = 0; s < st->n_seq; s++) {
        if (st->reason[s])
            continue;
        st->hist[s][st->hist_len[s]++] = st->packet[2 * s];
        st->reason[s] = st->packet[2 * s + 1];
        if (st->reason[s] && st->rank == 0 && st->o.on_done)
            st->o.on_done(st->o.user, s, st->reason[s]);
        running += !st->reason[s];
    }
    return running;
}

int tpi_gen_state_step(tpi_gen_state *st, tpi_error *err)
{
    if (st->failed)
        return tpi_err(err, TPI_EINVAL, "generate: an earlier step failed; the state can only be freed");
    double t0 = tpi_seconds();
    if (build_feed(st) == 0)
        return 0;
    int rc;
    if (st->argmax_only)
        rc = tpi_model_forward_argmax(st->m, st->kv, st->feed, st->n_new, st->next, err);
    else
        rc = tpi_model_forward(st->m, st->kv, st->feed, st->n_new, TPI_LOGITS_LAST, st->logits, err);
    if (!rc) {
        int32_t bad_seq = -1;
        if (st->rank == 0)
            rc = choose_tokens(st, &bad_seq, err);
        rc = share_tokens(st, rc, bad_seq, err);
    }
    if (rc) {
        st->failed = 1;
        return rc;
    }
    double dt = tpi_seconds() - t0;
    if (st->prefilled) {
        st->decode_s += dt;
        st->decode_steps++;
    } else {
        st->prefill_s += dt;
    }
    st->prefilled = 1;
    return apply_tokens(st) > 0;
}

int64_t tpi_gen_state_ids(const tpi_gen_state *st, int64_t seq, const int32_t **ids)
{
    if (seq < 0 || seq >= st->n_seq) {
        *ids = NULL;
        return 0;
    }
    *ids = st->hist[seq] + st->prompt_len[seq];
    return st->hist_len[seq] - st->prompt_len[seq];
}

int tpi_gen_state_stop_reason(const tpi_gen_state *st, int64_t seq)
{
    return seq >= 0 && seq < st->n_seq ? st->reason[seq] : TPI_EINVAL;
}

int tpi_gen_state_result(const tpi_gen_state *st, int64_t seq, tpi_gen_result *r, tpi_error *err)
{
    memset(r, 0, sizeof *r);
    if (seq < 0 || seq >= st->n_seq)
        return tpi_err(err, TPI_EINVAL, "generate: no sequence %lld (expected 0..%lld)", (long long)seq,
                       (long long)st->n_seq - 1);
    const int32_t *ids;
    int64_t n = tpi_gen_state_ids(st, seq, &ids);
    if (!(r->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *r->ids)))
        return tpi_err(err, TPI_ENOMEM, "generate: out of memory");
    memcpy(r->ids, ids, (size_t)n * sizeof *r->ids);
    r->n_ids = n;
    r->stop_reason = st->reason[seq];
    r->prefill_s = st->prefill_s;
    r->decode_s = st->decode_s;
    r->decode_steps = st->decode_steps;
    if (st->text[seq].buf) {
        size_t len;
        const char *text = tpi_gen_text_output(&st->text[seq], &len);
        if (!(r->text = malloc(len + 1))) {
            tpi_gen_result_free(r);
            return tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
        }
        memcpy(r->text, text, len);
        r->text[len] = 0;
        r->text_len = len;
    }
    return 0;
}

void tpi_gen_state_free(tpi_gen_state *st)
{
    if (!st)
        return;
    for (int64_t s = 0; s < st->n_seq; s++) {
        if (st->text)
            tpi_gen_text_free(&st->text[s]);
        if (st->hist)
            free(st->hist[s]);
    }
    if (st->have_sampler)
        tpi_sampler_free(&st->sampler);
    free(st->logits), free(st->prompt_len), free(st->hist), free(st->hist_len), free(st->reason);
    free(st->text), free(st->n_new), free(st->feed), free(st->next), free(st->packet);
    tpi_kv_free(st->kv);
    tpi_mem_release(st->reserved);
    free(st);
}

int tpi_generate(tpi_model *m, const int32_t *prompts, const int64_t *prompt_lens, int64_t n_seq,
                 const tpi_gen_opts *o, tpi_gen_result *results, tpi_error *err)
{
    tpi_gen_state *st;
    int rc = tpi_gen_state_create(&st, m, prompts, prompt_lens, n_seq, o, err);
    if (rc)
        return rc;
    while ((rc = tpi_gen_state_step(st, err)) > 0)
        ;
    memset(results, 0, (size_t)n_seq * sizeof *results);
    for (int64_t s = 0; s < n_seq && !rc; s++)
        rc = tpi_gen_state_result(st, s, &results[s], err);
    for (int64_t s = 0; s < n_seq && rc; s++)
        tpi_gen_result_free(&results[s]);
    tpi_gen_state_free(st);
    return rc;
}

void tpi_gen_result_free(tpi_gen_result *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}
