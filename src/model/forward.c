/* The forward pass of one rank, top to bottom (llama2.c's run.c shape), for
 * Llama, Mistral, Qwen2 and Qwen3 (transformers' modeling_llama.py and
 * siblings). Per decoder layer exactly two all-reduces when split: after
 * o_proj and after down_proj. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/vec.h"
#include "model/kv_cache.h"
#include "model/model.h"

/* The activations of one forward, kept in the model between forwards and
 * grown when more tokens come, so that a prefill does not page-fault its tens
 * of MB in again on every call. */
struct tpi_run_state {
    int64_t n_tok, cap;
    float *x;        /* [n_tok, hidden] residual stream */
    float *xb;       /* [n_tok, hidden] normed input / projection output */
    float *q, *k, *v; /* [n_tok, local heads * head_dim] */
    float *att;      /* [n_tok, local q heads * head_dim] */
    float *g, *u;    /* [n_tok, local ff] */
    float *cos, *sin; /* [n_tok, head_dim / 2] */
    int64_t *pos;    /* [n_tok] */
};
typedef struct tpi_run_state run_state;

void tpi_run_state_free(run_state *s)
{
    if (!s)
        return;
    float *fs[] = {s->x, s->xb, s->q, s->k, s->v, s->att, s->g, s->u, s->cos, s->sin};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        free(fs[i]);
    free(s->pos);
    free(s);
}

static run_state *state_alloc(const tpi_model *m, int64_t n)
{
    const tpi_config *c = &m->cfg;
    const tpi_shard *sh = &m->sh;
    size_t hd = (size_t)c->head_dim, N = (size_t)n;
    run_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = n;
    /* On 2 MB pages (core/mem.c), as a prefill streams these whole several
     * times per layer: over 4 KB pages a large batch's GEMM and SiLU-gating
     * run slower per token. */
    s->x = tpi_alloc_stream(N * (size_t)c->hidden_size * 4);
    s->xb = tpi_alloc_stream(N * (size_t)c->hidden_size * 4);
    s->q = tpi_alloc_stream(N * (size_t)sh->n_q_heads * hd * 4 + 4);
    s->k = tpi_alloc_stream(N * (size_t)sh->n_kv_heads * hd * 4 + 4);
    s->v = tpi_alloc_stream(N * (size_t)sh->n_kv_heads * hd * 4 + 4);
    s->att = tpi_alloc_stream(N * (size_t)sh->n_q_heads * hd * 4 + 4);
    s->g = tpi_alloc_stream(N * (size_t)sh->n_ff * 4 + 4);
    s->u = tpi_alloc_stream(N * (size_t)sh->n_ff * 4 + 4);
    s->cos = malloc(N * hd / 2 * 4 + 4);
    s->sin = malloc(N * hd / 2 * 4 + 4);
    s->pos = malloc(N * sizeof *s->pos);
    if (s->x && s->xb && s->q && s->k && s->v && s->att && s->g && s->u && s->cos && s->sin && s->pos)
        return s;
    tpi_run_state_free(s);
    return NULL;
}

int64_t tpi_model_activation_bytes(const tpi_model *m, int64_t n_tok, int64_t rows)
{
    /* per token, as state_alloc sizes them: x, xb, q, k, v, att, g, u, cos, sin */
    const tpi_shard *sh = &m->sh;
    int64_t hd = m->cfg.head_dim, H = m->cfg.hidden_size;
    int64_t per_tok = 4 * (2 * H + 2 * sh->n_q_heads * hd + 2 * sh->n_kv_heads * hd + 2 * sh->n_ff + hd);
    /* the kept hidden rows and this rank's logits; rank 0 also gathers the
     * whole rows and the caller keeps a copy */
    int64_t per_row = 4 * (H + sh->n_vocab + (m->comm->rank == 0 ? 2 * m->cfg.vocab_size : 0));
    return n_tok * per_tok + rows * per_row;
}

/* The model's activation buffers, holding at least n tokens. */
static run_state *state_get(tpi_model *m, int64_t n)
{
    if (!m->state || m->state->cap < n) {
        tpi_run_state_free(m->state);
        m->state = state_alloc(m, n);
        if (!m->state)
            return NULL;
    }
    m->state->n_tok = n;
    return m->state;
}

/* Weights that read the same x in one backend call; weights with no rows
 * (an empty shard) are skipped, and with no columns give zeros. */
static void matmul_multi(const tpi_model *m, int count, float *const *ys, const float *x, int64_t n,
                         const tpi_weight *const *ws)
{
    float *yk[TPI_MATMUL_MAX];
    const tpi_weight *wk[TPI_MATMUL_MAX];
    int k = 0;
    for (int i = 0; i < count; i++) {
        if (ws[i]->rows == 0)
            continue;
        if (ws[i]->cols == 0) {
            memset(ys[i], 0, (size_t)n * (size_t)ws[i]->rows * sizeof *ys[i]);
            continue;
        }
        yk[k] = ys[i];
        wk[k++] = ws[i];
    }
    if (k)
        m->be->matmul_multi(k, yk, x, n, wk);
}

static void matmul(const tpi_model *m, float *y, const float *x, int64_t n, const tpi_weight *w)
{
    matmul_multi(m, 1, &y, x, n, &w);
}

static void add_bias(float *y, const float *b, int64_t n, int64_t dim)
{
    if (!b)
        return;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < dim; d++)
            y[i * dim + d] += b[d];
}

static int allreduce(tpi_model *m, float *buf, int64_t n, int split, tpi_error *err)
{
    if (!split || m->comm->size == 1)
        return 0;
    if (tpi_comm_allreduce_act(m->comm, buf, n))
        return tpi_err(err, TPI_ECOMM, "all-reduce of %lld floats failed (a rank died?)", (long long)n);
    return 0;
}

/* Rows of the embedding this rank holds; others stay zero until the all-reduce.
 * A block-typed row is dequantized; --quant pads it to whole blocks, so it
 * may hold more than hidden_size values. */
static int embed(tpi_model *m, const int32_t *ids, run_state *s, tpi_error *err)
{
    int64_t H = m->cfg.hidden_size, e0 = m->sh.embed0, ne = m->sh.n_embed;
    int64_t block = tpi_dtype_block(m->embed.dtype), padded = (H + block - 1) / block * block;
    size_t row_bytes = (size_t)tpi_dtype_row_bytes(m->embed.dtype, padded);
    float *wide = padded != H ? malloc((size_t)padded * sizeof *wide) : NULL;
    if (padded != H && !wide)
        return tpi_err(err, TPI_ENOMEM, "out of memory for an embedding row");
    for (int64_t t = 0; t < s->n_tok; t++) {
        float *xt = s->x + t * H;
        if (ids[t] >= e0 && ids[t] < e0 + ne) {
            const uint8_t *row = (const uint8_t *)m->embed.data + (size_t)(ids[t] - e0) * row_bytes;
            tpi_to_f32(wide ? wide : xt, row, m->embed.dtype, (size_t)padded);
            if (wide)
                memcpy(xt, wide, (size_t)H * sizeof *xt);
        } else {
            memset(xt, 0, (size_t)H * sizeof *xt);
        }
    }
    free(wide);
    return allreduce(m, s->x, s->n_tok * H, ne != m->cfg.vocab_size, err);
}

/* llama.cpp stores a Llama GGUF's q/k rows so that each head rotates
 * adjacent pairs (x[2i], x[2i+1]); gathering them into halves (x[i],
 * x[i + half]) turns that into transformers' rotate-half form, which the
 * kernels and the KV cache use. A permutation: exact. */
static void deinterleave_heads(float *x, int64_t n_heads, int64_t hd, float *tmp)
{
    int64_t half = hd / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * hd;
        for (int64_t i = 0; i < half; i++) {
            tmp[i] = v[2 * i];
            tmp[i + half] = v[2 * i + 1];
        }
        memcpy(v, tmp, (size_t)hd * sizeof *v);
    }
}

static void rope_tables(const tpi_model *m, run_state *s)
{
    int64_t half = m->cfg.head_dim / 2;
    for (int64_t t = 0; t < s->n_tok; t++)
        for (int64_t i = 0; i < half; i++) {
            double a = (double)s->pos[t] * m->inv_freq[i];
            s->cos[t * half + i] = (float)cos(a);
            s->sin[t * half + i] = (float)sin(a);
        }
}

/* Stores each sequence's new keys and values in the cache, then runs
 * attention of its new queries over everything cached for it, read through
 * its block table. */
static void attend(const tpi_model *m, tpi_kv *kv, int64_t l, const int64_t *n_new, run_state *s)
{
    const tpi_config *c = &m->cfg;
    const tpi_shard *sh = &m->sh;
    int64_t hd = c->head_dim, qd = sh->n_q_heads * hd, kd = sh->n_kv_heads * hd;
    tpi_attn_shape shape = {
        .n_heads = sh->n_q_heads, .head_dim = hd, .q_head0 = sh->q_head0,
        .group = c->n_heads / c->n_kv_heads, .kv_head0 = sh->kv_head0,
        /* kv_cache.h's layout */
        .block_positions = kv->block_positions, .kv_pos_stride = hd, .kv_head_stride = kv->block_positions * hd,
        .window = tpi_config_window(c, l), .scale = (float)(1.0 / sqrt((double)hd)),
    };
    for (int64_t sq = 0, t0 = 0; sq < kv->n_seq; t0 += n_new[sq], sq++) {
        if (!n_new[sq])
            continue;
        for (int64_t t = t0; t < t0 + n_new[sq]; t++)
            tpi_kv_store(kv, l, sq, s->pos[t], s->k + t * kd, s->v + t * kd);
        const float *const *kb, *const *vb;
        tpi_kv_block_bases(kv, l, sq, &kb, &vb);
        if (qd)
            m->be->attention(s->att + t0 * qd, s->q + t0 * qd, n_new[sq], s->pos + t0, kb, vb, &shape);
    }
}

static int attention_block(tpi_model *m, tpi_kv *kv, int64_t l, const int64_t *n_new, run_state *s, tpi_error *err)
{
    const tpi_config *c = &m->cfg;
    const tpi_shard *sh = &m->sh;
    const tpi_layer_weights *L = &m->layers[l];
    const tpi_backend *be = m->be;
    int64_t n = s->n_tok, H = c->hidden_size, hd = c->head_dim;
    int64_t qd = sh->n_q_heads * hd, kd = sh->n_kv_heads * hd;

    be->rmsnorm(s->xb, s->x, L->attn_norm, n, H, (float)c->rms_norm_eps);
    float *qkv[] = {s->q, s->k, s->v};
    const tpi_weight *wqkv[] = {&L->wq, &L->wk, &L->wv};
    matmul_multi(m, 3, qkv, s->xb, n, wqkv);
    add_bias(s->q, L->bq, n, qd);
    add_bias(s->k, L->bk, n, kd);
    add_bias(s->v, L->bv, n, kd);
    if (c->qk_norm) { /* Qwen3: RMSNorm over each head before RoPE */
        be->rmsnorm(s->q, s->q, L->q_norm, n * sh->n_q_heads, hd, (float)c->rms_norm_eps);
        be->rmsnorm(s->k, s->k, L->k_norm, n * sh->n_kv_heads, hd, (float)c->rms_norm_eps);
    }
    if (c->rope_interleaved && qd) { /* s->att is free until attend() */
        deinterleave_heads(s->q, n * sh->n_q_heads, hd, s->att);
        deinterleave_heads(s->k, n * sh->n_kv_heads, hd, s->att);
    }
    be->rope(s->q, n, qd, sh->n_q_heads, hd, s->cos, s->sin);
    be->rope(s->k, n, kd, sh->n_kv_heads, hd, s->cos, s->sin);

    attend(m, kv, l, n_new, s);
    matmul(m, s->xb, s->att, n, &L->wo);
    if (!qd)
        memset(s->xb, 0, (size_t)(n * H) * sizeof(float));
    int rc = allreduce(m, s->xb, n * H, sh->attn_split, err);
    if (rc)
        return rc;
    add_bias(s->xb, L->bo, n, H);
    tpi_add_f32(s->x, s->x, s->xb, n * H);
    return 0;
}

static int mlp_block(tpi_model *m, int64_t l, run_state *s, tpi_error *err)
{
    const tpi_config *c = &m->cfg;
    const tpi_layer_weights *L = &m->layers[l];
    int64_t n = s->n_tok, H = c->hidden_size, F = m->sh.n_ff;
    m->be->rmsnorm(s->xb, s->x, L->ffn_norm, n, H, (float)c->rms_norm_eps);
    float *gu[] = {s->g, s->u};
    const tpi_weight *wgu[] = {&L->wg, &L->wu};
    matmul_multi(m, 2, gu, s->xb, n, wgu);
    add_bias(s->g, L->bg, n, F);
    add_bias(s->u, L->bu, n, F);
    m->be->silu_mul(s->g, s->u, n * F);
    if (F)
        matmul(m, s->xb, s->g, n, &L->wd);
    else
        memset(s->xb, 0, (size_t)(n * H) * sizeof(float));
    int rc = allreduce(m, s->xb, n * H, m->sh.mlp_split, err);
    if (rc)
        return rc;
    add_bias(s->xb, L->bd, n, H);
    tpi_add_f32(s->x, s->x, s->xb, n * H);
    return 0;
}

static int check_input(const tpi_model *m, const tpi_kv *kv, const int32_t *ids, const int64_t *n_new,
                       int64_t *n_tok, tpi_error *err)
{
    int64_t n = 0;
    for (int64_t sq = 0; sq < kv->n_seq; sq++) {
        if (n_new[sq] < 0)
            return tpi_err(err, TPI_EINVAL, "sequence %lld: negative token count", (long long)sq);
        if (kv->len[sq] + n_new[sq] > kv->max_ctx)
            return tpi_err(err, TPI_ELIMIT, "sequence %lld: %lld cached + %lld new tokens exceed the context of %lld",
                           (long long)sq, (long long)kv->len[sq], (long long)n_new[sq], (long long)kv->max_ctx);
        n += n_new[sq];
    }
    for (int64_t t = 0; t < n; t++)
        if (ids[t] < 0 || ids[t] >= m->cfg.vocab_size)
            return tpi_err(err, TPI_EINVAL, "token id %d at input position %lld is outside the vocabulary "
                           "(expected 0..%lld)", ids[t], (long long)t, (long long)m->cfg.vocab_size - 1);
    *n_tok = n;
    return 0;
}

/* Every layer over one chunk of new tokens (n_new[sq] of sequence sq, ids
 * back to back), whose positions follow what the cache holds; leaves the
 * residual stream in s->x and the chunk in the cache (kv->len advanced). */
static int run_layers_on_chunk(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new, int64_t n,
                               run_state **out, tpi_error *err)
{
    run_state *s = state_get(m, n);
    if (!(*out = s))
        return tpi_err(err, TPI_ENOMEM, "out of memory for the activations of %lld tokens", (long long)n);
    for (int64_t sq = 0, t = 0; sq < kv->n_seq; sq++)
        for (int64_t i = 0; i < n_new[sq]; i++)
            s->pos[t++] = kv->len[sq] + i;
    rope_tables(m, s);
    int rc = embed(m, ids, s, err);
    for (int64_t l = 0; l < m->cfg.n_layers && !rc; l++) {
        rc = attention_block(m, kv, l, n_new, s, err);
        if (!rc)
            rc = mlp_block(m, l, s, err);
    }
    for (int64_t sq = 0; sq < kv->n_seq && !rc; sq++)
        kv->len[sq] += n_new[sq];
    return rc;
}

/* Where a forward stands in cutting its new tokens into chunks. */
typedef struct chunker {
    int64_t cap;   /* tokens per chunk, at most */
    int64_t *take; /* [n_seq] tokens of each sequence in the current chunk */
    int64_t *done; /* [n_seq] tokens of each sequence run so far */
    int32_t *ids;  /* [cap] the current chunk's ids */
} chunker;

/* Cuts the next chunk: the sequences' next tokens in sequence order, until
 * cap. Returns its token count. */
static int64_t next_chunk(chunker *ch, const int32_t *ids, const int64_t *n_new, int64_t n_seq)
{
    int64_t c = 0;
    for (int64_t sq = 0, off = 0; sq < n_seq; off += n_new[sq], sq++) {
        int64_t left = n_new[sq] - ch->done[sq];
        ch->take[sq] = left < ch->cap - c ? left : ch->cap - c;
        memcpy(ch->ids + c, ids + off + ch->done[sq], (size_t)ch->take[sq] * sizeof *ch->ids);
        c += ch->take[sq];
    }
    return c;
}

/* Copies the rows `which` selects of the chunk just run (x, the residual
 * stream) into h: all of them from row `in` (TPI_LOGITS_ALL), or from row
 * `row` each sequence's last token once it has run (TPI_LOGITS_LAST); returns
 * the next such row. */
static int64_t keep_rows(float *h, int64_t row, const float *x, int64_t H, int64_t in, int64_t c, chunker *ch,
                         const int64_t *n_new, int64_t n_seq, enum tpi_logits_which which)
{
    if (which == TPI_LOGITS_ALL)
        memcpy(h + in * H, x, (size_t)(c * H) * sizeof *h);
    for (int64_t sq = 0, t = 0; sq < n_seq; sq++) {
        t += ch->take[sq];
        ch->done[sq] += ch->take[sq];
        if (which == TPI_LOGITS_LAST && ch->take[sq] && ch->done[sq] == n_new[sq])
            memcpy(h + row++ * H, x + (t - 1) * H, (size_t)H * sizeof *h);
    }
    return row;
}

/* Runs every layer over the new tokens and leaves the final-normed hidden
 * states of the rows `which` selects in *out [*rows, hidden] (malloc'd).
 *
 * The tokens go through in chunks of at most m->prefill_chunk (all
 * sequences together, in input order; a sequence may span chunks, its later
 * tokens attending to the earlier ones through the cache), so the
 * activations stay bounded whatever the prompt (model/tuning.h). A failure
 * leaves the cache's lengths as they were: all or nothing. The blocks of
 * the whole forward are taken before its first chunk, and a pool without
 * them refuses it with nothing changed. */
static int final_hidden_states(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new,
                               enum tpi_logits_which which, float **out, int64_t *rows, tpi_error *err)
{
    int64_t n = 0;
    int rc = check_input(m, kv, ids, n_new, &n, err);
    *out = NULL;
    *rows = 0;
    if (rc || n == 0 || (rc = tpi_kv_reserve(kv, n_new, err)))
        return rc;
    int64_t H = m->cfg.hidden_size, r = which == TPI_LOGITS_ALL ? n : 0, ns = kv->n_seq;
    if (which == TPI_LOGITS_LAST)
        for (int64_t sq = 0; sq < ns; sq++)
            r += n_new[sq] > 0;
    chunker ch = {.cap = m->prefill_chunk > 0 && m->prefill_chunk < n ? m->prefill_chunk : n};
    float *h = malloc((size_t)(r * H) * sizeof *h + 4);
    int64_t *len0 = malloc((size_t)ns * sizeof *len0);
    ch.take = malloc((size_t)ns * sizeof *ch.take);
    ch.done = calloc((size_t)ns, sizeof *ch.done);
    ch.ids = malloc((size_t)ch.cap * sizeof *ch.ids);
    if (h && len0 && ch.take && ch.done && ch.ids)
        memcpy(len0, kv->len, (size_t)ns * sizeof *len0);
    else
        rc = tpi_err(err, TPI_ENOMEM, "out of memory for a forward of %lld tokens", (long long)n);
    for (int64_t in = 0, row = 0; !rc && in < n;) {
        int64_t c = next_chunk(&ch, ids, n_new, ns);
        run_state *s;
        if ((rc = run_layers_on_chunk(m, kv, ch.ids, ch.take, c, &s, err)))
            memcpy(kv->len, len0, (size_t)ns * sizeof *len0);
        else
            row = keep_rows(h, row, s->x, H, in, c, &ch, n_new, ns, which);
        in += c;
    }
    free(ch.take), free(ch.done), free(ch.ids), free(len0);
    if (rc) {
        tpi_kv_release_unused(kv);
        free(h);
        return rc;
    }
    m->be->rmsnorm(h, h, m->final_norm, r, H, (float)m->cfg.rms_norm_eps);
    *out = h;
    *rows = r;
    return 0;
}

/* Local logits [rows, n_vocab] of this rank's vocabulary slice. */
static int local_logits(tpi_model *m, const float *h, int64_t rows, float **out, tpi_error *err)
{
    *out = malloc((size_t)rows * (size_t)m->sh.n_vocab * sizeof(float) + 4);
    if (!*out)
        return tpi_err(err, TPI_ENOMEM, "out of memory for logits");
    matmul(m, *out, h, rows, &m->lm_head);
    return 0;
}

/* Each rank's block of logits [rows, n_vocab_r] arrives whole on rank 0,
 * which interleaves them into logits [rows, vocab]. Collective. */
static int gather_logits(tpi_model *m, const float *part, int64_t rows, float *logits, tpi_error *err)
{
    tpi_comm *c = m->comm;
    int64_t V = m->cfg.vocab_size;
    float *all = NULL;
    int rc = 0;
    int64_t *counts = malloc((size_t)c->size * sizeof *counts);
    if (!counts)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    for (int r = 0; r < c->size; r++) {
        int64_t b, nv;
        tpi_model_vocab_range(m, r, &b, &nv);
        counts[r] = rows * nv;
    }
    if (c->rank == 0 && !(all = malloc((size_t)(rows * V) * sizeof(float))))
        rc = tpi_err(err, TPI_ENOMEM, "out of memory gathering logits");
    int32_t flag = rc != 0;
    if (tpi_comm_allreduce_max_i32(c, &flag, 1) || flag) {
        if (!rc)
            rc = tpi_err(err, TPI_ECOMM, "logits gather abandoned: another rank failed");
    } else if (tpi_comm_gatherv(c, part, all, counts, 0)) {
        rc = tpi_err(err, TPI_ECOMM, "gathering logits failed (a rank died?)");
    } else if (c->rank == 0) {
        const float *p = all;
        for (int r = 0; r < c->size; r++) {
            int64_t b, nv;
            tpi_model_vocab_range(m, r, &b, &nv);
            for (int64_t i = 0; i < rows; i++)
                memcpy(logits + i * V + b, p + i * nv, (size_t)nv * sizeof(float));
            p += rows * nv;
        }
    }
    free(all);
    free(counts);
    return rc;
}

/* Runs the new tokens through the model and gives this rank's slice of the
 * logits of the rows `which` picks (*part malloc'd; NULL when *rows is 0). */
static int forward_local_logits(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new,
                                enum tpi_logits_which which, float **part, int64_t *rows, tpi_error *err)
{
    float *h;
    *part = NULL;
    int rc = final_hidden_states(m, kv, ids, n_new, which, &h, rows, err);
    if (rc || *rows == 0)
        return rc;
    rc = local_logits(m, h, *rows, part, err);
    free(h);
    return rc;
}

int tpi_model_forward(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new,
                      enum tpi_logits_which which, float *logits, tpi_error *err)
{
    float *part;
    int64_t rows;
    int rc = forward_local_logits(m, kv, ids, n_new, which, &part, &rows, err);
    if (rc || rows == 0)
        return rc;
    if (m->sh.vocab_split)
        rc = gather_logits(m, part, rows, logits, err);
    else if (m->comm->rank == 0)
        memcpy(logits, part, (size_t)(rows * m->cfg.vocab_size) * sizeof(float));
    free(part);
    return rc;
}

int tpi_model_forward_argmax(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new, int32_t *next_ids,
                             tpi_error *err)
{
    float *part;
    int64_t rows;
    int rc = forward_local_logits(m, kv, ids, n_new, TPI_LOGITS_LAST, &part, &rows, err);
    if (rc || rows == 0)
        return rc;
    float *best = malloc((size_t)rows * sizeof *best);
    if (!best) {
        free(part);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    int64_t nv = m->sh.n_vocab;
    for (int64_t i = 0; i < rows; i++) {
        const float *row = part + i * nv;
        int64_t bi = 0;
        uint32_t special = 0;
        for (int64_t j = 0; j < nv; j++) {
            /* NaN never compares greater, so the argmax alone would skip it:
             * the exponent bits (all ones for NaN and infinity) catch it in
             * the same pass, and survive any floating-point optimisation. */
            uint32_t u;
            memcpy(&u, &row[j], sizeof u);
            special |= (u & 0x7f800000u) == 0x7f800000u;
            if (row[j] > row[bi])
                bi = j;
        }
        /* +inf is more than any finite logit, so MAXLOC carries a bad row
         * to every rank without another collective. */
        best[i] = special ? INFINITY : nv ? row[bi] : -INFINITY;
        next_ids[i] = (int32_t)(m->sh.vocab0 + bi);
    }
    /* Only (value, index) pairs cross ranks, never the logits. */
    if (m->sh.vocab_split && tpi_comm_argmax(m->comm, best, next_ids, rows))
        rc = tpi_err(err, TPI_ECOMM, "argmax across ranks failed (a rank died?)");
    for (int64_t i = 0; i < rows; i++)
        if (best[i] == INFINITY)
            next_ids[i] = -1;
    free(best);
    free(part);
    return rc;
}

int tpi_model_logits(tpi_model *m, const int32_t *ids, const int64_t *seq_lens, int64_t n_seq, float *logits,
                     tpi_error *err)
{
    int64_t max_len = 1;
    for (int64_t i = 0; i < n_seq; i++)
        if (seq_lens[i] > max_len)
            max_len = seq_lens[i];
    tpi_kv *kv;
    int rc = tpi_kv_create(&kv, m, n_seq, max_len, err);
    if (rc)
        return rc;
    rc = tpi_model_forward(m, kv, ids, seq_lens, TPI_LOGITS_ALL, logits, err);
    tpi_kv_free(kv);
    return rc;
}
