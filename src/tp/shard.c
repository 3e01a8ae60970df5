#include "tp/shard.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define LAYER "model.layers.*."

/* Parameter names and shapes of transformers' LlamaForCausalLM (Mistral,
 * Qwen2 and Qwen3 use the same names); plan styles from its
 * base_model_tp_plan, the CausalLM's _tp_plan for lm_head, and a
 * vocabulary-split embedding (DESIGN.md). */
const tpi_weight_spec tpi_weights[TPI_N_ROLES] = {
    [TPI_W_EMBED] = {"model.embed_tokens.weight", TPI_BLOCK_EMBED, TPI_W_EMBED, "embedding_rowwise", TPI_AXIS_EMBED,
                     TPI_AXIS_HIDDEN, TPI_NEED_ALWAYS},
    [TPI_W_ATTN_NORM] = {LAYER "input_layernorm.weight", TPI_BLOCK_NORM, TPI_W_ATTN_NORM, NULL, TPI_AXIS_HIDDEN,
                         TPI_AXIS_NONE, TPI_NEED_ALWAYS},
    [TPI_W_FFN_NORM] = {LAYER "post_attention_layernorm.weight", TPI_BLOCK_NORM, TPI_W_FFN_NORM, NULL,
                        TPI_AXIS_HIDDEN, TPI_AXIS_NONE, TPI_NEED_ALWAYS},
    [TPI_W_Q] = {LAYER "self_attn.q_proj.weight", TPI_BLOCK_ATTN, TPI_W_Q, "colwise", TPI_AXIS_Q_HEADS,
                 TPI_AXIS_HIDDEN, TPI_NEED_ALWAYS},
    [TPI_W_K] = {LAYER "self_attn.k_proj.weight", TPI_BLOCK_ATTN, TPI_W_K, "colwise", TPI_AXIS_KV_HEADS,
                 TPI_AXIS_HIDDEN, TPI_NEED_ALWAYS},
    [TPI_W_V] = {LAYER "self_attn.v_proj.weight", TPI_BLOCK_ATTN, TPI_W_V, "colwise", TPI_AXIS_KV_HEADS,
                 TPI_AXIS_HIDDEN, TPI_NEED_ALWAYS},
    [TPI_W_O] = {LAYER "self_attn.o_proj.weight", TPI_BLOCK_ATTN, TPI_W_O, "rowwise", TPI_AXIS_HIDDEN,
                 TPI_AXIS_Q_HEADS, TPI_NEED_ALWAYS},
    [TPI_W_GATE] = {LAYER "mlp.gate_proj.weight", TPI_BLOCK_MLP, TPI_W_GATE, "colwise", TPI_AXIS_FF, TPI_AXIS_HIDDEN,
                    TPI_NEED_ALWAYS},
    [TPI_W_UP] = {LAYER "mlp.up_proj.weight", TPI_BLOCK_MLP, TPI_W_UP, "colwise", TPI_AXIS_FF, TPI_AXIS_HIDDEN,
                  TPI_NEED_ALWAYS},
    [TPI_W_DOWN] = {LAYER "mlp.down_proj.weight", TPI_BLOCK_MLP, TPI_W_DOWN, "rowwise", TPI_AXIS_HIDDEN, TPI_AXIS_FF,
                    TPI_NEED_ALWAYS},
    /* A colwise bias is split with its rows; a rowwise one is added once,
     * after the all-reduce, so every rank holds it whole. */
    [TPI_W_Q_BIAS] = {LAYER "self_attn.q_proj.bias", TPI_BLOCK_ATTN, TPI_W_Q, NULL, TPI_AXIS_Q_HEADS, TPI_AXIS_NONE,
                      TPI_NEED_QKV_BIAS},
    [TPI_W_K_BIAS] = {LAYER "self_attn.k_proj.bias", TPI_BLOCK_ATTN, TPI_W_K, NULL, TPI_AXIS_KV_HEADS, TPI_AXIS_NONE,
                      TPI_NEED_QKV_BIAS},
    [TPI_W_V_BIAS] = {LAYER "self_attn.v_proj.bias", TPI_BLOCK_ATTN, TPI_W_V, NULL, TPI_AXIS_KV_HEADS, TPI_AXIS_NONE,
                      TPI_NEED_QKV_BIAS},
    [TPI_W_O_BIAS] = {LAYER "self_attn.o_proj.bias", TPI_BLOCK_ATTN, TPI_W_O, NULL, TPI_AXIS_HIDDEN, TPI_AXIS_NONE,
                      TPI_NEED_O_BIAS},
    [TPI_W_GATE_BIAS] = {LAYER "mlp.gate_proj.bias", TPI_BLOCK_MLP, TPI_W_GATE, NULL, TPI_AXIS_FF, TPI_AXIS_NONE,
                         TPI_NEED_MLP_BIAS},
    [TPI_W_UP_BIAS] = {LAYER "mlp.up_proj.bias", TPI_BLOCK_MLP, TPI_W_UP, NULL, TPI_AXIS_FF, TPI_AXIS_NONE,
                       TPI_NEED_MLP_BIAS},
    [TPI_W_DOWN_BIAS] = {LAYER "mlp.down_proj.bias", TPI_BLOCK_MLP, TPI_W_DOWN, NULL, TPI_AXIS_HIDDEN, TPI_AXIS_NONE,
                         TPI_NEED_MLP_BIAS},
    [TPI_W_Q_NORM] = {LAYER "self_attn.q_norm.weight", TPI_BLOCK_NORM, TPI_W_Q_NORM, NULL, TPI_AXIS_HEAD_DIM,
                      TPI_AXIS_NONE, TPI_NEED_QK_NORM},
    [TPI_W_K_NORM] = {LAYER "self_attn.k_norm.weight", TPI_BLOCK_NORM, TPI_W_K_NORM, NULL, TPI_AXIS_HEAD_DIM,
                      TPI_AXIS_NONE, TPI_NEED_QK_NORM},
    [TPI_W_FINAL_NORM] = {"model.norm.weight", TPI_BLOCK_NORM, TPI_W_FINAL_NORM, NULL, TPI_AXIS_HIDDEN, TPI_AXIS_NONE,
                          TPI_NEED_ALWAYS},
    [TPI_W_LM_HEAD] = {"lm_head.weight", TPI_BLOCK_LM_HEAD, TPI_W_LM_HEAD, "colwise_rep", TPI_AXIS_VOCAB,
                       TPI_AXIS_HIDDEN, TPI_NEED_ALWAYS},
};

int tpi_weight_per_layer(tpi_role role)
{
    return strchr(tpi_weights[role].name, '*') != NULL;
}

int tpi_weight_present(const tpi_config *c, tpi_role role)
{
    switch (tpi_weights[role].need) {
    case TPI_NEED_QKV_BIAS:
        return c->qkv_bias;
    case TPI_NEED_O_BIAS:
        return c->o_bias;
    case TPI_NEED_MLP_BIAS:
        return c->mlp_bias;
    case TPI_NEED_QK_NORM:
        return c->qk_norm;
    case TPI_NEED_ALWAYS:
        break;
    }
    return 1;
}

void tpi_weight_name(char *buf, size_t n, tpi_role role, int64_t layer)
{
    const char *pat = tpi_weights[role].name, *star = strchr(pat, '*');
    if (star)
        snprintf(buf, n, "%.*s%lld%s", (int)(star - pat), pat, (long long)layer, star + 1);
    else
        snprintf(buf, n, "%s", pat);
}

void tpi_shard_deal(int64_t n, int64_t unit, int size, int rank, int64_t *begin, int64_t *count)
{
    int64_t units = (n + unit - 1) / unit;
    int64_t base = units / size, extra = units % size;
    int64_t u0 = rank * base + (rank < extra ? rank : extra);
    int64_t nu = base + (rank < extra);
    int64_t b = u0 * unit, e = (u0 + nu) * unit;
    if (b > n)
        b = n;
    if (e > n)
        e = n;
    *begin = b;
    *count = e - b;
}

void tpi_shard_kv_heads(int64_t n_heads, int64_t n_kv_heads, int64_t q_head0, int64_t n_q_heads, int64_t *kv_head0,
                        int64_t *n_kv)
{
    /* Query head h reads KV head h / group (transformers' repeat_kv). */
    int64_t group = n_heads / n_kv_heads;
    *kv_head0 = q_head0 / group;
    *n_kv = n_q_heads > 0 ? (q_head0 + n_q_heads - 1) / group + 1 - *kv_head0 : 0;
}

void tpi_shard_vocab(int64_t vocab_size, int split, int size, int rank, int64_t *begin, int64_t *count)
{
    if (split)
        tpi_shard_deal(vocab_size, 1, size, rank, begin, count);
    else
        *begin = 0, *count = vocab_size;
}

const char *tpi_shard_max_ranks(const tpi_config *c, const tpi_shard_blocks *blocks, int64_t *max_ranks)
{
    *max_ranks = blocks->attn ? c->n_heads : 0;
    return blocks->attn ? "num_attention_heads" : NULL;
}

int tpi_shard_init(tpi_shard *sh, const tpi_config *c, const tpi_shard_blocks *blocks, int size, int rank,
                   tpi_error *err)
{
    memset(sh, 0, sizeof *sh);
    sh->attn_split = blocks->attn && size > 1;
    sh->mlp_split = blocks->mlp && size > 1;
    sh->vocab_split = blocks->lm_head && size > 1;
    int64_t max;
    if (size > 1 && tpi_shard_max_ranks(c, blocks, &max) && size > max)
        return tpi_err(err, TPI_ECONFIG, "cannot split %d ranks over num_attention_heads = %lld: use at most "
                       "%lld ranks", size, (long long)c->n_heads, (long long)max);
    /* An unsplit block is the one-rank deal: everything to rank 0. */
    int as = sh->attn_split ? size : 1, ar = sh->attn_split ? rank : 0;
    int ms = sh->mlp_split ? size : 1, mr = sh->mlp_split ? rank : 0;
    tpi_shard_deal(c->n_heads, 1, as, ar, &sh->q_head0, &sh->n_q_heads);
    tpi_shard_kv_heads(c->n_heads, c->n_kv_heads, sh->q_head0, sh->n_q_heads, &sh->kv_head0, &sh->n_kv_heads);
    int64_t unit = blocks->ff_unit > TPI_FF_UNIT ? blocks->ff_unit : TPI_FF_UNIT;
    tpi_shard_deal(c->intermediate_size, unit, ms, mr, &sh->ff0, &sh->n_ff);
    tpi_shard_vocab(c->vocab_size, blocks->embed && size > 1, size, rank, &sh->embed0, &sh->n_embed);
    tpi_shard_vocab(c->vocab_size, sh->vocab_split, size, rank, &sh->vocab0, &sh->n_vocab);
    return 0;
}

/* Length of dimension `a` and the range [*begin, *begin + *count) of it this
 * rank holds. */
static void axis_range(const tpi_shard *sh, const tpi_config *c, tpi_axis a, int64_t *n, int64_t *begin,
                       int64_t *count)
{
    int64_t hd = c->head_dim;
    *begin = 0;
    switch (a) {
    case TPI_AXIS_NONE:
        *n = *count = 1;
        break;
    case TPI_AXIS_HIDDEN:
        *n = *count = c->hidden_size;
        break;
    case TPI_AXIS_HEAD_DIM:
        *n = *count = hd;
        break;
    case TPI_AXIS_Q_HEADS:
        *n = c->n_heads * hd, *begin = sh->q_head0 * hd, *count = sh->n_q_heads * hd;
        break;
    case TPI_AXIS_KV_HEADS:
        *n = c->n_kv_heads * hd, *begin = sh->kv_head0 * hd, *count = sh->n_kv_heads * hd;
        break;
    case TPI_AXIS_FF:
        *n = c->intermediate_size, *begin = sh->ff0, *count = sh->n_ff;
        break;
    case TPI_AXIS_EMBED:
        *n = c->vocab_size, *begin = sh->embed0, *count = sh->n_embed;
        break;
    case TPI_AXIS_VOCAB:
        *n = c->vocab_size, *begin = sh->vocab0, *count = sh->n_vocab;
        break;
    }
}

int tpi_shard_slice(const tpi_shard *sh, const tpi_config *c, tpi_role role, int64_t layer, tpi_slice *out)
{
    const tpi_weight_spec *w = &tpi_weights[role];
    if (!tpi_weight_present(c, role))
        return 0;
    tpi_role file = role == TPI_W_LM_HEAD && c->tie_word_embeddings ? TPI_W_EMBED : role;
    tpi_weight_name(out->name, sizeof out->name, file, layer);
    out->n_dims = w->cols == TPI_AXIS_NONE ? 1 : 2;
    axis_range(sh, c, w->rows, &out->rows, &out->row0, &out->n_rows);
    axis_range(sh, c, w->cols, &out->cols, &out->col0, &out->n_cols);
    return 1;
}
