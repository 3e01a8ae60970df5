/* The model's hyperparameters from a GGUF file's metadata, with the names
 * llama.cpp's convert_hf_to_gguf.py writes (gguf-py constants.py Keys). */
#include <stdio.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "core/gguf.h"
#include "io/config.h"

static const struct { const char *gguf, *hf; tpi_arch arch; } archs[] = {
    {"llama", "LlamaForCausalLM", TPI_ARCH_LLAMA}, /* Mistral GGUFs are "llama" too */
    {"qwen2", "Qwen2ForCausalLM", TPI_ARCH_QWEN2},
    {"qwen3", "Qwen3ForCausalLM", TPI_ARCH_QWEN3},
};

typedef struct reader {
    const tpi_gguf *g;
    char arch[32];
    tpi_error *err;
} reader;

/* An integer key ARCH.suffix in [lo, hi]: 0 read, 1 absent and optional, < 0 error. */
static int get_int(reader *r, const char *suffix, int64_t lo, int64_t hi, int required, int64_t *out)
{
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "%s.%s", r->arch, suffix);
    int rc = tpi_gguf_get_i64(r->g, key, &v, r->err);
    if (rc == 1 && required)
        return tpi_err(r->err, TPI_ECONFIG, "%s: required key \"%s\" is missing (expected an integer in [%lld, "
                       "%lld])", r->g->paths[0], key, (long long)lo, (long long)hi);
    if (rc)
        return rc;
    if (v < lo || v > hi)
        return tpi_err(r->err, TPI_ECONFIG, "%s: key \"%s\" is %lld (expected an integer in [%lld, %lld])",
                       r->g->paths[0], key, (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

/* A positive float key ARCH.suffix. */
static int get_pos(reader *r, const char *suffix, int required, double *out)
{
    char key[128];
    double v;
    snprintf(key, sizeof key, "%s.%s", r->arch, suffix);
    int rc = tpi_gguf_get_f64(r->g, key, &v, r->err);
    if (rc == 1 && required)
        return tpi_err(r->err, TPI_ECONFIG, "%s: required key \"%s\" is missing (expected a positive number)",
                       r->g->paths[0], key);
    if (rc)
        return rc;
    if (!(v > 0) || v > 1e300)
        return tpi_err(r->err, TPI_ECONFIG, "%s: key \"%s\" is %g (expected a positive number)", r->g->paths[0],
                       key, v);
    *out = v;
    return 0;
}

static int read_arch(tpi_config *c, reader *r)
{
    tpi_gguf_str a;
    int rc = tpi_gguf_get_str(r->g, "general.architecture", &a, r->err);
    if (rc == 1)
        return tpi_err(r->err, TPI_ECONFIG, "%s: required key \"general.architecture\" is missing", r->g->paths[0]);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if ((size_t)a.len == strlen(archs[i].gguf) && !memcmp(a.s, archs[i].gguf, (size_t)a.len)) {
            c->arch = archs[i].arch;
            snprintf(c->arch_name, sizeof c->arch_name, "%s", archs[i].hf);
            snprintf(r->arch, sizeof r->arch, "%s", archs[i].gguf);
            return 0;
        }
    return tpi_err(r->err, TPI_EUNSUPPORTED, "%s: general.architecture is \"%.*s\" (supported: llama, qwen2, "
                   "qwen3)", r->g->paths[0], (int)(a.len > 64 ? 64 : a.len), a.s);
}

static int read_sizes(tpi_config *c, reader *r)
{
    int rc;
    c->max_position_embeddings = 2048;
    if ((rc = get_int(r, "embedding_length", 1, TPI_MAX_HIDDEN, 1, &c->hidden_size)) ||
        (rc = get_int(r, "feed_forward_length", 1, TPI_MAX_FF, 1, &c->intermediate_size)) ||
        (rc = get_int(r, "block_count", 1, TPI_MAX_LAYERS, 1, &c->n_layers)) ||
        (rc = get_int(r, "attention.head_count", 1, TPI_MAX_HEADS, 1, &c->n_heads)) < 0 ||
        (rc = get_int(r, "context_length", 1, TPI_MAX_POSITIONS, 0, &c->max_position_embeddings)) < 0)
        return rc;
    c->n_kv_heads = c->n_heads;
    if ((rc = get_int(r, "attention.head_count_kv", 1, TPI_MAX_HEADS, 0, &c->n_kv_heads)) < 0)
        return rc;
    c->head_dim = c->hidden_size / c->n_heads;
    if ((rc = get_int(r, "attention.key_length", 1, TPI_MAX_HEAD_DIM, 0, &c->head_dim)) < 0)
        return rc;
    int64_t v_len = c->head_dim, width;
    if ((rc = get_int(r, "attention.value_length", 1, TPI_MAX_HEAD_DIM, 0, &v_len)) < 0)
        return rc;
    const char *p = r->g->paths[0];
    if (v_len != c->head_dim)
        return tpi_err(r->err, TPI_EUNSUPPORTED, "%s: %s.attention.value_length %lld differs from key_length %lld",
                       p, r->arch, (long long)v_len, (long long)c->head_dim);
    if (tpi_mul_overflow(c->n_heads, c->head_dim, &width) || width > TPI_MAX_ATTN_WIDTH || c->head_dim % 2 ||
        c->n_heads % c->n_kv_heads)
        return tpi_err(r->err, TPI_ECONFIG, "%s: %lld heads of %lld (%lld KV heads): expected an even head size, "
                       "heads a multiple of the KV heads and heads * head size <= %lld", p, (long long)c->n_heads,
                       (long long)c->head_dim, (long long)c->n_kv_heads, (long long)TPI_MAX_ATTN_WIDTH);
    return get_pos(r, "attention.layer_norm_rms_epsilon", 1, &c->rms_norm_eps);
}

/* rope.freq_base and rope.scaling.*; Llama 3's frequency factors come as the
 * tensor rope_freqs.weight instead, which the model applies (model.c). */
static int read_rope(tpi_config *c, reader *r)
{
    int rc;
    c->rope_theta = 10000.0;
    if ((rc = get_pos(r, "rope.freq_base", 0, &c->rope_theta)) < 0)
        return rc;
    char key[128];
    tpi_gguf_str type = {"none", 4};
    snprintf(key, sizeof key, "%s.rope.scaling.type", r->arch);
    if ((rc = tpi_gguf_get_str(r->g, key, &type, r->err)) < 0)
        return rc;
    if ((type.len == 4 && !memcmp(type.s, "none", 4)))
        return 0;
    if (type.len != 6 || memcmp(type.s, "linear", 6))
        return tpi_err(r->err, TPI_EUNSUPPORTED, "%s: key \"%s\" is \"%.*s\" (supported: none, linear)",
                       r->g->paths[0], key, (int)(type.len > 64 ? 64 : type.len), type.s);
    c->rope_kind = TPI_ROPE_LINEAR;
    return get_pos(r, "rope.scaling.factor", 1, &c->rope_factor);
}

/* tokenizer.ggml.NAME_token_id when present and inside the vocabulary. */
static int token_id(const tpi_config *c, reader *r, const char *name, int32_t *out)
{
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", name);
    int rc = tpi_gguf_get_i64(r->g, key, &v, r->err);
    if (rc)
        return rc < 0 ? rc : 1;
    if (v < 0 || v >= c->vocab_size)
        return tpi_err(r->err, TPI_ECONFIG, "%s: key \"%s\" is %lld (expected a token id below the vocabulary's "
                       "%lld)", r->g->paths[0], key, (long long)v, (long long)c->vocab_size);
    *out = (int32_t)v;
    return 0;
}

/* bos, and eos plus the end-of-turn ids chat models stop at (eot, eom). */
static int read_tokens(tpi_config *c, reader *r)
{
    static const char *stops[] = {"eos", "eot", "eom"};
    c->bos_id = -1;
    int rc = token_id(c, r, "bos", &c->bos_id);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        int32_t id;
        if ((rc = token_id(c, r, stops[i], &id)) < 0)
            return rc;
        int seen = 0;
        for (int k = 0; k < c->n_eos; k++)
            seen |= c->eos_ids[k] == id;
        if (!rc && !seen)
            c->eos_ids[c->n_eos++] = id;
    }
    return 0;
}

static int has(const tpi_gguf *g, const char *name)
{
    return tpi_gguf_find_tensor(g, name) != NULL;
}

/* The vocabulary, tying and biases, which GGUF says by its tensors. */
static int read_tensors(tpi_config *c, reader *r)
{
    const tpi_gguf_tensor *e = tpi_gguf_find_tensor(r->g, "token_embd.weight");
    if (!e || e->n_dims != 2 || e->ne[0] != c->hidden_size || e->ne[1] < 1 || e->ne[1] > TPI_MAX_VOCAB)
        return tpi_err(r->err, TPI_EFORMAT, "%s: tensor \"token_embd.weight\" is %s (expected [%lld, vocab] in "
                       "ggml's order)", r->g->paths[0], e ? "of another shape" : "missing",
                       (long long)c->hidden_size);
    c->vocab_size = e->ne[1];
    c->tie_word_embeddings = !has(r->g, "output.weight");
    c->qkv_bias = has(r->g, "blk.0.attn_q.bias");
    c->o_bias = has(r->g, "blk.0.attn_output.bias");
    c->mlp_bias = has(r->g, "blk.0.ffn_down.bias");
    c->qk_norm = c->arch == TPI_ARCH_QWEN3;
    c->rope_interleaved = c->arch == TPI_ARCH_LLAMA;
    return 0;
}

int tpi_config_from_gguf(tpi_config *cfg, const tpi_gguf *g, tpi_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    reader r = {.g = g, .err = err};
    int rc;
    if ((rc = read_arch(cfg, &r)) || (rc = read_sizes(cfg, &r)) || (rc = read_rope(cfg, &r)) ||
        (rc = read_tensors(cfg, &r)) || (rc = read_tokens(cfg, &r)))
        return rc;
    snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "float32");
    return 0;
}
