/* The generation loop: one prefill pass for a batch of prompts, then one
 * decode pass per step for the sequences still running. Every rank runs the
 * same loop; rank 0 chooses the tokens and decides the stops, and broadcasts
 * both each step (DESIGN.md "Process model"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "generate/sampler.h"
#include "model/model.h"

int tpi_gen_opts_default(tpi_gen_opts *o, const char *dir, tpi_error *err)
{
    memset(o, 0, sizeof *o);
    o->sampling = (tpi_sampling){.temperature = 0, .top_k = 50, .top_p = 1, .min_p = 0, .repetition_penalty = 1};
    o->max_new_tokens = 64;
    if (!dir)
        return 0;
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    snprintf(path, n, "%s/generation_config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(path);
        return 0;
    }
    fclose(f);
    cJSON *j = NULL;
    int rc = tpi_json_load_file(path, &j, err);
    int do_sample = 0;
    double temperature = 1.0;
    if (!rc)
        rc = tpi_json_get_bool(j, "do_sample", &do_sample, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "temperature", &temperature, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_int(j, "top_k", &o->sampling.top_k, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "top_p", &o->sampling.top_p, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "min_p", &o->sampling.min_p, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_double(j, "repetition_penalty", &o->sampling.repetition_penalty, 0, path, err) < 0;
    if (!rc)
        rc = tpi_json_get_int(j, "max_new_tokens", &o->max_new_tokens, 0, path, err) < 0;
    cJSON_Delete(j);
    free(path);
    if (rc)
        return err ? (err->code ? err->code : TPI_ECONFIG) : TPI_ECONFIG;
    /* transformers: without do_sample the warpers are ignored (greedy). */
    o->sampling.temperature = do_sample ? temperature : 0;
    return 0;
}

void tpi_gen_result_free(tpi_gen_result *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* Rank 0's text state of one sequence. */
typedef struct seq_text {
    tpi_detok_stream *ds;
    char *buf;
    size_t len, cap;
    size_t base;    /* text before base is the prompt's, not output */
    size_t emitted; /* text before emitted went to on_text */
} seq_text;

static int text_add(seq_text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return -1;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
    return 0;
}

static const char *find(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, m))
            return hay + i;
    return NULL;
}

/* Looks for a stop string in the output not yet emitted; returns 1 and cuts
 * the text there when found. Else sends on what can no longer be the start of
 * a stop string (all of it when `final`). */
static int text_emit(seq_text *t, const tpi_gen_opts *o, int64_t seq, int final)
{
    size_t from = t->emitted > t->base ? t->emitted : t->base;
    size_t end = t->len, hold = 0;
    int hit = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        if (!sl)
            continue;
        const char *at = find(t->buf + from, t->len - from, o->stop[i], sl);
        if (at && (size_t)(at - t->buf) < end) {
            end = (size_t)(at - t->buf);
            hit = 1;
        }
    }
    if (hit) {
        t->len = end;
        t->buf[end] = 0;
    } else if (!final) {
        for (int i = 0; i < o->n_stop; i++) {
            size_t sl = strlen(o->stop[i]);
            for (size_t h = sl > 0 ? sl - 1 : 0; h > hold; h--)
                if (h <= t->len - from && !memcmp(t->buf + t->len - h, o->stop[i], h)) {
                    hold = h;
                    break;
                }
        }
    }
    end -= hit ? 0 : hold;
    if (end > t->emitted && o->on_text)
        o->on_text(o->user, seq, t->buf + t->emitted, end - t->emitted);
    if (end > t->emitted)
        t->emitted = end;
    return hit;
}

int tpi_generate(tpi_model *m, const int32_t *prompts, const int64_t *prompt_lens, int64_t n_seq,
                 const tpi_gen_opts *o, tpi_gen_result *results, tpi_error *err)
{
    tpi_comm *comm = m->comm;
    int rank = comm->rank;
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    const int64_t V = info.vocab_size;
    int64_t ctx = o->max_ctx > 0 ? o->max_ctx : info.max_position_embeddings;
    if (n_seq < 1)
        return tpi_err(err, TPI_EINVAL, "generate: expected at least one prompt, found %lld", (long long)n_seq);
    if (ctx < 1)
        return tpi_err(err, TPI_ECONFIG, "generate: no context length (max_position_embeddings = %lld); give one",
                       (long long)ctx);
    if (o->max_new_tokens < 0)
        return tpi_err(err, TPI_EINVAL, "generate: max_new_tokens must be >= 0, found %lld",
                       (long long)o->max_new_tokens);
    if (o->n_stop > 0 && !o->tokenizer)
        return tpi_err(err, TPI_EINVAL, "generate: stop strings need a tokenizer");
    int64_t total = 0;
    int rc0;
    for (int64_t s = 0; s < n_seq; s++) {
        if (prompt_lens[s] < 1)
            return tpi_err(err, TPI_EINVAL, "generate: prompt %lld is empty", (long long)s);
        if (prompt_lens[s] > ctx)
            return tpi_err(err, TPI_ELIMIT, "generate: prompt %lld has %lld tokens, longer than the context of %lld tokens",
                           (long long)s, (long long)prompt_lens[s], (long long)ctx);
        for (int64_t i = 0; i < prompt_lens[s]; i++)
            if (prompts[total + i] < 0 || prompts[total + i] >= V)
                return tpi_err(err, TPI_EINVAL, "generate: prompt %lld token %lld is %d, outside the vocabulary of %lld",
                               (long long)s, (long long)i, prompts[total + i], (long long)V);
        total += prompt_lens[s];
    }
    const int32_t *eos = o->eos_ids ? o->eos_ids : info.eos_ids;
    int n_eos = o->eos_ids ? o->n_eos : info.n_eos;
    int greedy_fast = tpi_sampling_is_plain_greedy(&o->sampling);
    {
        tpi_sampler probe;
        if ((rc0 = tpi_sampler_init(&probe, &o->sampling, 1, err)))
            return rc0;
        tpi_sampler_free(&probe);
    }

    memset(results, 0, (size_t)n_seq * sizeof *results);
    int rc = 0;
    tpi_kv *kv = NULL;
    tpi_sampler sampler = {0};
    int have_sampler = 0;
    int64_t *n_new = calloc((size_t)n_seq, sizeof *n_new), *hist_len = calloc((size_t)n_seq, sizeof *hist_len);
    int32_t **hist = calloc((size_t)n_seq, sizeof *hist);
    int32_t *feed = malloc((size_t)(total > n_seq ? total : n_seq) * sizeof *feed);
    int32_t *next = malloc((size_t)n_seq * sizeof *next);
    int32_t *packet = calloc((size_t)(2 * n_seq), sizeof *packet); /* [token, stop reason] per sequence */
    int *reason = calloc((size_t)n_seq, sizeof *reason);
    seq_text *txt = calloc((size_t)n_seq, sizeof *txt);
    float *logits = NULL;
    if (!n_new || !hist_len || !hist || !feed || !next || !packet || !reason || !txt) {
        rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory");
        goto done;
    }
    if ((rc = tpi_kv_create(&kv, m, n_seq, ctx, err)))
        goto done;
    total = 0;
    for (int64_t s = 0; s < n_seq; s++) {
        int64_t room = ctx - prompt_lens[s];
        int64_t cap = o->max_new_tokens < room ? o->max_new_tokens : room;
        results[s].ids = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *results[s].ids);
        hist[s] = malloc((size_t)(prompt_lens[s] + cap + 1) * sizeof *hist[s]);
        if (!results[s].ids || !hist[s]) {
            rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory");
            goto done;
        }
        memcpy(hist[s], prompts + total, (size_t)prompt_lens[s] * sizeof *hist[s]);
        hist_len[s] = prompt_lens[s];
        total += prompt_lens[s];
        if (o->max_new_tokens == 0)
            reason[s] = TPI_STOP_LENGTH;
        else if (room == 0)
            reason[s] = TPI_STOP_CONTEXT;
    }
    if (rank == 0) {
        if (!greedy_fast) {
            if ((rc = tpi_sampler_init(&sampler, &o->sampling, V, err)))
                goto done;
            have_sampler = 1;
            if (!(logits = malloc((size_t)(n_seq * V) * sizeof *logits))) {
                rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory for %lld x %lld logits", (long long)n_seq,
                             (long long)V);
                goto done;
            }
        }
        if (o->tokenizer) {
            for (int64_t s = 0; s < n_seq && !rc; s++) {
                seq_text *t = &txt[s];
                if ((rc = tpi_detok_stream_create(&t->ds, o->tokenizer, 1, err)))
                    break;
                if (text_add(t, "", 0)) {
                    rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
                    break;
                }
                /* The prompt primes the stream: a SentencePiece decoder, for
                 * one, drops the leading space of the first token only. */
                for (int64_t i = 0; i < prompt_lens[s] && !rc; i++) {
                    const char *piece;
                    size_t n;
                    if (!(rc = tpi_detok_stream_push(t->ds, hist[s][i], &piece, &n, err)) && text_add(t, piece, n))
                        rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
                }
                t->base = t->emitted = o->echo_prompt ? 0 : t->len;
                if (!rc && o->echo_prompt)
                    text_emit(t, o, s, 0);
            }
        }
    }
    {
        /* Rank 0's set-up may fail alone: agree before the first collective pass. */
        int32_t failed = rc != 0;
        int crc = comm->ops->allreduce_max_i32(comm, &failed, 1);
        if (crc || failed) {
            if (!rc)
                rc = tpi_err(err, crc ? crc : TPI_ECOMM, "generate: %s", crc ? "agreeing on the set-up failed"
                                                                            : "rank 0 failed to set up");
            goto done;
        }
    }
    /* Sequences that cannot produce anything end before the first pass. */
    for (int64_t s = 0; s < n_seq; s++)
        if (reason[s] && rank == 0 && o->on_done)
            o->on_done(o->user, s, reason[s]);

    int first = 1;
    double t0 = tpi_seconds();
    for (;;) {
        int64_t n_feed = 0, active = 0;
        total = 0;
        for (int64_t s = 0; s < n_seq; s++) {
            n_new[s] = 0;
            if (!reason[s]) {
                if (first) {
                    memcpy(feed + n_feed, prompts + total, (size_t)prompt_lens[s] * sizeof *feed);
                    n_new[s] = prompt_lens[s];
                } else {
                    feed[n_feed] = hist[s][hist_len[s] - 1];
                    n_new[s] = 1;
                }
                n_feed += n_new[s];
                active++;
            }
            total += prompt_lens[s];
        }
        if (!active)
            break;
        if (greedy_fast)
            rc = tpi_model_forward_argmax(m, kv, feed, n_new, next, err);
        else
            rc = tpi_model_forward(m, kv, feed, n_new, TPI_LOGITS_LAST, logits, err);
        if (rc)
            goto done;
        if (rank == 0) {
            int64_t row = 0;
            for (int64_t s = 0; s < n_seq; s++) {
                packet[2 * s] = -1;
                packet[2 * s + 1] = reason[s];
                if (reason[s])
                    continue;
                int32_t tok = greedy_fast ? next[row]
                                          : tpi_sampler_pick(&sampler, logits + row * V, V, hist[s], hist_len[s]);
                row++;
                int r = 0;
                for (int e = 0; e < n_eos && !r; e++)
                    if (tok == eos[e])
                        r = TPI_STOP_EOS;
                seq_text *t = &txt[s];
                if (t->ds) {
                    const char *piece;
                    size_t n;
                    if (!r) {
                        if ((rc = tpi_detok_stream_push(t->ds, tok, &piece, &n, err)))
                            goto bcast;
                        if (text_add(t, piece, n)) {
                            rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
                            goto bcast;
                        }
                    }
                    if (!r && text_emit(t, o, s, 0))
                        r = TPI_STOP_STRING;
                }
                if (!r && results[s].n_ids + 1 >= o->max_new_tokens)
                    r = TPI_STOP_LENGTH;
                else if (!r && hist_len[s] + 1 >= ctx)
                    r = TPI_STOP_CONTEXT;
                if (r && r != TPI_STOP_STRING && t->ds) {
                    const char *piece;
                    size_t n;
                    if ((rc = tpi_detok_stream_flush(t->ds, &piece, &n, err)))
                        goto bcast;
                    if (text_add(t, piece, n)) {
                        rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
                        goto bcast;
                    }
                    if (text_emit(t, o, s, 1))
                        r = TPI_STOP_STRING;
                }
                packet[2 * s] = tok;
                packet[2 * s + 1] = r;
            }
        }
    bcast:;
        /* rank 0's failure travels in the packet too, so no rank waits alone. */
        int32_t status[1] = {rc};
        int crc = comm->ops->bcast(comm, status, sizeof status, 0);
        if (!crc && !status[0])
            crc = comm->ops->bcast(comm, packet, (size_t)(2 * n_seq) * sizeof *packet, 0);
        if (crc) {
            rc = tpi_err(err, crc, "generate: broadcast of the next tokens failed");
            goto done;
        }
        if (status[0]) {
            if (rank != 0)
                rc = tpi_err(err, status[0], "generate: rank 0 failed choosing the next tokens");
            goto done;
        }
        double t1 = tpi_seconds();
        for (int64_t s = 0; s < n_seq; s++) {
            results[s].prefill_s += first ? t1 - t0 : 0;
            results[s].decode_s += first ? 0 : t1 - t0;
            results[s].decode_steps += !first;
            if (reason[s])
                continue;
            int32_t tok = packet[2 * s];
            results[s].ids[results[s].n_ids++] = tok;
            hist[s][hist_len[s]++] = tok;
            reason[s] = packet[2 * s + 1];
            if (reason[s] && rank == 0 && o->on_done)
                o->on_done(o->user, s, reason[s]);
        }
        t0 = t1;
        first = 0;
    }
    for (int64_t s = 0; s < n_seq; s++) {
        results[s].stop_reason = reason[s];
        if (txt[s].buf) {
            size_t n = txt[s].len - txt[s].base;
            if (!(results[s].text = malloc(n + 1))) {
                rc = tpi_err(err, TPI_ENOMEM, "generate: out of memory for the text");
                goto done;
            }
            memcpy(results[s].text, txt[s].buf + txt[s].base, n);
            results[s].text[n] = 0;
            results[s].text_len = n;
        }
    }
done:
    for (int64_t s = 0; txt && s < n_seq; s++) {
        tpi_detok_stream_free(txt[s].ds);
        free(txt[s].buf);
    }
    for (int64_t s = 0; hist && s < n_seq; s++)
        free(hist[s]);
    if (rc)
        for (int64_t s = 0; s < n_seq; s++)
            tpi_gen_result_free(&results[s]);
    if (have_sampler)
        tpi_sampler_free(&sampler);
    free(txt), free(reason), free(packet), free(next), free(feed), free(hist), free(hist_len), free(n_new);
    free(logits);
    tpi_kv_free(kv);
    return rc;
}
