/* Rank 0's decisions each step: which queued requests take which slots
 * (prompt reuse), how many tokens each running sequence feeds (one to
 * decode, chunks of prompts within the step's budget), and the KV
 * operations before the forward (clear, truncate, copy a prefix), with the
 * pool's blocks counted so that the oldest sequences go first and the
 * newest wait. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "server/engine_int.h"

int srv_op_apply(tpi_kv *kv, const srv_op *op, tpi_error *err)
{
    switch (op->kind) {
    case SRV_OP_CLEAR:
        tpi_kv_clear(kv, op->seq);
        return 0;
    case SRV_OP_TRUNCATE:
        return tpi_kv_truncate(kv, op->seq, op->len, err);
    case SRV_OP_COPY:
        return tpi_kv_copy_prefix(kv, op->seq, op->src, op->len, err);
    default:
        return tpi_err(err, TPI_EINVAL, "engine: unknown KV operation %lld", (long long)op->kind);
    }
}

/* Applies the operation on rank 0 now and records it for the other ranks
 * (room first, so that no operation applies here alone); an operation that
 * fails here (a copy the pool has no blocks for) is not recorded, and its
 * error returned. */
int srv_plan_add_op(srv_engine *e, int64_t kind, int64_t seq, int64_t src, int64_t len)
{
    if (e->n_ops == e->cap_ops) {
        int cap = e->cap_ops ? 2 * e->cap_ops : 16;
        srv_op *ops = realloc(e->ops, (size_t)cap * sizeof *ops);
        if (!ops)
            return TPI_ENOMEM;
        e->ops = ops;
        e->cap_ops = cap;
    }
    srv_op op = {.kind = kind, .seq = seq, .src = src, .len = len};
    int rc = srv_op_apply(e->kv, &op, NULL);
    if (!rc)
        e->ops[e->n_ops++] = op;
    return rc;
}

static int64_t common_prefix(const int32_t *a, int64_t na, const int32_t *b, int64_t nb)
{
    int64_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* The free slot for prompt ids [n]: the one whose cached KV shares the
 * longest prefix with it; among equals an empty one, else the least
 * recently used. *reuse: that prefix. */
static int pick_slot(srv_engine *e, const int32_t *ids, int64_t n, int64_t *reuse)
{
    int best = -1;
    int64_t best_len = -1;
    for (int i = 0; i < e->o.parallel; i++) {
        srv_slot *s = &e->slots[i];
        if (s->req)
            continue;
        int64_t kvlen = tpi_kv_len(e->kv, i);
        int64_t len = common_prefix(s->ids, kvlen < s->n_ids ? kvlen : s->n_ids, ids, n);
        int better = len > best_len;
        if (!better && len == best_len) {
            int64_t bl = tpi_kv_len(e->kv, best);
            better = (kvlen == 0 && bl > 0) || ((kvlen > 0) == (bl > 0) && s->last_used < e->slots[best].last_used);
        }
        if (better) {
            best = i;
            best_len = len;
        }
    }
    *reuse = best_len;
    return best;
}

/* The longest prefix of ids [n] that another slot's KV holds (a running
 * conversation, a shared system prompt): *src and the length. */
static int64_t best_source(srv_engine *e, int dst, const int32_t *ids, int64_t n, int *src)
{
    int64_t best = 0;
    *src = -1;
    for (int i = 0; i < e->o.parallel; i++) {
        if (i == dst)
            continue;
        srv_slot *s = &e->slots[i];
        int64_t kvlen = tpi_kv_len(e->kv, i);
        int64_t len = common_prefix(s->ids, kvlen < s->n_ids ? kvlen : s->n_ids, ids, n);
        if (len > best) {
            best = len;
            *src = i;
        }
    }
    return best;
}

/* Gives slot `dst` the first `reuse` positions of the prompt from its own
 * cache or another slot's (at least one prompt token is left to feed, for
 * the logits of the first output token). Returns the positions reused. */
static int64_t reuse_prefix(srv_engine *e, int dst, const srv_request *r, int64_t own)
{
    int64_t cap = r->n_prompt - 1;
    int src;
    int64_t other = best_source(e, dst, r->prompt, r->n_prompt, &src);
    if (own > cap)
        own = cap;
    if (other > cap)
        other = cap;
    if (other > own && srv_plan_add_op(e, SRV_OP_COPY, dst, src, other) == 0)
        return other;
    if (own == 0) {
        if (tpi_kv_len(e->kv, dst) > 0)
            srv_plan_add_op(e, SRV_OP_CLEAR, dst, 0, 0);
        return 0;
    }
    if (tpi_kv_len(e->kv, dst) > own && srv_plan_add_op(e, SRV_OP_TRUNCATE, dst, 0, own))
        return 0;
    return own;
}

/* Moves queued requests into free slots, oldest first. */
int srv_plan_admit(srv_engine *e)
{
    for (;;) {
        pthread_mutex_lock(&e->mu);
        srv_request *r = e->queue_head;
        int64_t reuse = 0;
        int slot = r ? pick_slot(e, r->prompt, r->n_prompt, &reuse) : -1;
        if (slot >= 0) {
            e->queue_head = r->next;
            if (!e->queue_head)
                e->queue_tail = NULL;
            r->next = NULL;
            e->n_queued--;
            e->n_running++;
            e->stats.queued = e->n_queued;
            e->stats.running = e->n_running;
        }
        pthread_mutex_unlock(&e->mu);
        if (slot < 0)
            return 0;
        srv_slot *s = &e->slots[slot];
        s->n_cached = reuse_prefix(e, slot, r, reuse);
        if (tpi_kv_len(e->kv, slot) != s->n_cached) {
            srv_plan_add_op(e, SRV_OP_CLEAR, slot, 0, 0);
            s->n_cached = 0;
        }
        s->order = ++e->admitted;
        srv_slot_start(e, s, r);
    }
}

static int is_running(const srv_slot *s)
{
    return s->req != NULL;
}

/* The newest running slot newer than `than` that holds KV, or -1. */
static int newest_holder(srv_engine *e, uint64_t than)
{
    int best = -1;
    for (int i = 0; i < e->o.parallel; i++) {
        srv_slot *s = &e->slots[i];
        if (is_running(s) && s->order > than && tpi_kv_len(e->kv, i) > 0 &&
            (best < 0 || s->order > e->slots[best].order))
            best = i;
    }
    return best;
}

/* The least recently used ended slot that still holds KV, or -1. */
static int lru_cached(srv_engine *e)
{
    int best = -1;
    for (int i = 0; i < e->o.parallel; i++) {
        srv_slot *s = &e->slots[i];
        if (!is_running(s) && tpi_kv_len(e->kv, i) > 0 && (best < 0 || s->last_used < e->slots[best].last_used))
            best = i;
    }
    return best;
}

/* Finds the free blocks slot i needs for its wanted tokens: from the pool
 * (less the *promised blocks older slots take in this step's forward), then
 * by evicting cached KV, then by sending newer sequences back to prefill
 * later (their KV given back; nothing they produced is lost). Returns 1 when
 * it may run, its blocks added to *promised. */
static int find_blocks(srv_engine *e, int i, int64_t *promised)
{
    srv_slot *s = &e->slots[i];
    for (;;) {
        tpi_kv_usage u;
        tpi_kv_get_usage(e->kv, &u);
        int64_t need = tpi_kv_blocks_needed(e->kv, i, s->want);
        if (need <= u.blocks_free - *promised) {
            *promised += need;
            return 1;
        }
        int victim = lru_cached(e);
        if (victim >= 0) {
            srv_plan_add_op(e, SRV_OP_CLEAR, victim, 0, 0);
            continue;
        }
        victim = newest_holder(e, s->order);
        if (victim < 0)
            return 0;
        srv_plan_add_op(e, SRV_OP_CLEAR, victim, 0, 0);
        e->slots[victim].want = 0;
    }
}

/* Slots in admission order, oldest first. */
static int by_order(const void *a, const void *b, void *arg)
{
    const srv_slot *slots = arg;
    uint64_t x = slots[*(const int *)a].order, y = slots[*(const int *)b].order;
    return (x > y) - (x < y);
}

static void sort_by_age(srv_engine *e, int *idx, int n)
{
    /* insertion sort: a few slots */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && by_order(&idx[j - 1], &idx[j], e->slots) > 0; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
}

/* What each running slot wants this step: decoding ones one token; the
 * others (prompts, or sequences sent back to prefill) chunks of what the
 * budget leaves, oldest first. */
static void set_wants(srv_engine *e, const int *idx, int n)
{
    int64_t budget = e->o.step_tokens;
    for (int k = 0; k < n; k++) {
        srv_slot *s = &e->slots[idx[k]];
        int64_t pending = s->n_ids - tpi_kv_len(e->kv, idx[k]);
        s->want = pending == 1 ? 1 : 0;
        budget -= s->want;
    }
    for (int k = 0; k < n; k++) {
        srv_slot *s = &e->slots[idx[k]];
        int64_t pending = s->n_ids - tpi_kv_len(e->kv, idx[k]);
        if (pending <= 1 || budget <= 0)
            continue;
        s->want = pending < budget ? pending : budget;
        budget -= s->want;
    }
}

int srv_plan_step(srv_engine *e, int64_t *n_tok, int64_t *n_rows, int *argmax)
{
    int idx[e->o.parallel], n = 0;
    for (int i = 0; i < e->o.parallel; i++) {
        e->slots[i].want = 0;
        e->slots[i].row = -1;
        e->n_new[i] = 0;
        if (is_running(&e->slots[i]))
            idx[n++] = i;
    }
    sort_by_age(e, idx, n);
    set_wants(e, idx, n);
    int64_t promised = 0;
    for (int k = 0; k < n; k++) {
        srv_slot *s = &e->slots[idx[k]];
        if (s->want && !find_blocks(e, idx[k], &promised)) {
            s->want = 0;
            int holders = 0;
            for (int j = 0; j < e->o.parallel; j++)
                holders += j != idx[k] && tpi_kv_len(e->kv, j) > 0;
            if (!holders && !promised) /* alone and still short: it can never run */
                srv_slot_end(e, s, 0, "engine: the KV pool is too small for this sequence", 0);
        }
    }
    /* the plan in slot order, as the forward takes it */
    int64_t t = 0;
    int rows = 0, greedy = 1;
    for (int i = 0; i < e->o.parallel; i++) {
        srv_slot *s = &e->slots[i];
        if (!is_running(s) || !s->want)
            continue;
        int64_t at = tpi_kv_len(e->kv, i);
        memcpy(e->ids + t, s->ids + at, (size_t)s->want * sizeof *e->ids);
        e->n_new[i] = s->want;
        t += s->want;
        if (at + s->want == s->n_ids) {
            s->row = rows;
            const srv_params *p = &s->req->p;
            greedy &= tpi_sampling_is_plain_greedy(&p->sampling) && !p->logprobs && !p->top_logprobs &&
                      p->presence_penalty == 0 && p->frequency_penalty == 0;
        }
        rows++;
        s->last_used = e->step;
    }
    *n_tok = t;
    *n_rows = rows;
    *argmax = greedy;
    return 0;
}
