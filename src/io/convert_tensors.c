/* The tensors of a converted GGUF: llama.cpp's names (gguf-py
 * tensor_mapping.py's for LlamaForCausalLM, Qwen2/Qwen3ForCausalLM), ggml's
 * shapes (ne = {in_features, out_features}: the same bytes as transformers'
 * [out_features, in_features]), and the type each is stored in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/quant.h"
#include "io/convert.h"

/* Per-layer names, in the order a layer's tensors are written. */
static const char *const layer_names[][2] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},   {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"}, {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"}, {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.up_proj.weight", "ffn_up.weight"},     {"mlp.up_proj.bias", "ffn_up.bias"},
    {"mlp.down_proj.weight", "ffn_down.weight"}, {"mlp.down_proj.bias", "ffn_down.bias"},
};
#define N_LAYER_NAMES ((int)(sizeof layer_names / sizeof layer_names[0]))

/* Sort key: the embedding, then the layers in order, then the head. */
typedef struct keyed {
    int64_t group, layer, order;
    tpi_cv_tensor t;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* 0 mapped, 1 skipped (not a weight llama.cpp reads), -1 unknown. */
static int map_name(const char *hf, const tpi_config *cfg, keyed *k)
{
    long long layer;
    int used = 0;
    if (!strcmp(hf, "model.embed_tokens.weight"))
        return snprintf(k->t.gguf_name, sizeof k->t.gguf_name, "token_embd.weight"), k->group = 0, 0;
    if (!strcmp(hf, "model.norm.weight"))
        return snprintf(k->t.gguf_name, sizeof k->t.gguf_name, "output_norm.weight"), k->group = 2, 0;
    if (!strcmp(hf, "lm_head.weight")) /* a tied head is the embedding to llama.cpp */
        return cfg->tie_word_embeddings ? 1 : (snprintf(k->t.gguf_name, sizeof k->t.gguf_name, "output.weight"),
                                               k->group = 2, k->order = 1, 0);
    if (sscanf(hf, "model.layers.%lld.%n", &layer, &used) != 1 || !used || layer < 0 || layer >= cfg->n_layers)
        return -1;
    const char *rest = hf + used;
    if (strstr(rest, "rotary_emb.inv_freq")) /* recomputed from rope_theta */
        return 1;
    for (int i = 0; i < N_LAYER_NAMES; i++)
        if (!strcmp(rest, layer_names[i][0])) {
            snprintf(k->t.gguf_name, sizeof k->t.gguf_name, "blk.%lld.%s", layer, layer_names[i][1]);
            k->group = 1, k->layer = layer, k->order = i;
            return 0;
        }
    return -1;
}

/* The type a matrix is stored in: the one asked, or for a K type whose
 * 256-element block does not divide the columns the 32-element type of about
 * its size (llama-quantize's fallback; Q5_0, its choice for Q4_K, is not a
 * type tpinfer computes with, so Q4_0). Float types fit any width. */
static int pick_type(tpi_cv_plan *p, tpi_cv_tensor *t, tpi_dtype want, const char *hf, tpi_error *err)
{
    t->type = want;
    if (t->rows == 0 || t->cols % tpi_dtype_block(want) == 0)
        return 0;
    tpi_dtype fb = want == TPI_Q4_K ? TPI_Q4_0 : want == TPI_Q6_K ? TPI_Q8_0 : want;
    if (fb != want && t->cols % tpi_dtype_block(fb) == 0) {
        t->type = fb;
        if (p->n_fallback++ < 4) {
            size_t len = strlen(p->fallback);
            snprintf(p->fallback + len, sizeof p->fallback - len, "%s%s: %lld columns, %s (not %s)",
                     len ? "; " : "", t->gguf_name, (long long)t->cols, tpi_dtype_name(fb), tpi_dtype_name(want));
        }
        return 0;
    }
    return tpi_err(err, TPI_EUNSUPPORTED,
                   "tensor %s (%s) has %lld columns, not a multiple of %s's block of %lld elements: it "
                   "cannot be stored as %s; convert with --type f32, f16 or bf16",
                   t->gguf_name, hf, (long long)t->cols, tpi_dtype_name(fb), (long long)tpi_dtype_block(fb),
                   tpi_dtype_name(want));
}

/* Llama's q/k rows are permuted so that llama.cpp rotates adjacent pairs
 * (GPT-J style) where transformers rotates the two halves of a head. */
static int64_t permute_heads(const char *gguf_name, const tpi_config *cfg)
{
    if (cfg->arch != TPI_ARCH_LLAMA && cfg->arch != TPI_ARCH_MISTRAL)
        return 0;
    const char *dot = strchr(gguf_name + 4, '.');
    if (!dot)
        return 0;
    if (!strncmp(dot, ".attn_q.", 8))
        return cfg->n_heads;
    return !strncmp(dot, ".attn_k.", 8) ? cfg->n_kv_heads : 0;
}

static int shape(keyed *k, const tpi_st_tensor *s, const tpi_config *cfg, tpi_error *err)
{
    if (!s->dtype_ok)
        return tpi_err(err, TPI_EUNSUPPORTED, "tensor %s: dtype %s (expected F32, BF16 or F16)", s->name,
                       s->dtype_name);
    if (s->n_dims == 1)
        k->t.rows = 0, k->t.cols = s->shape[0];
    else if (s->n_dims == 2)
        k->t.rows = s->shape[0], k->t.cols = s->shape[1];
    else
        return tpi_err(err, TPI_EFORMAT, "tensor %s: %d dimensions (expected 1 or 2)", s->name, s->n_dims);
    k->t.src = s;
    k->t.permute_heads = permute_heads(k->t.gguf_name, cfg);
    int64_t rows = k->t.rows ? k->t.rows : k->t.cols, h = k->t.permute_heads;
    if (h && rows % (2 * h))
        return tpi_err(err, TPI_EFORMAT, "tensor %s: %lld rows do not split into %lld heads of even size",
                       s->name, (long long)rows, (long long)h);
    return 0;
}

/* Llama 3's rope_scaling as llama.cpp takes it: a per-frequency divisor in
 * rope_freqs.weight [head_dim / 2] (transformers' _compute_llama3_parameters). */
static int rope_freqs(tpi_cv_plan *p, const tpi_config *c, keyed *k, tpi_error *err)
{
    int64_t n = c->head_dim / 2;
    if (!(p->rope_freqs = malloc((size_t)n * sizeof *p->rope_freqs)))
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    double low_wavelen = (double)c->rope_original_max_pos / c->rope_low_freq_factor;
    double high_wavelen = (double)c->rope_original_max_pos / c->rope_high_freq_factor;
    for (int64_t i = 0; i < n; i++) {
        double freq = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim);
        double wavelen = 2 * M_PI / freq, f = c->rope_factor;
        if (wavelen < high_wavelen)
            f = 1;
        else if (wavelen <= low_wavelen) {
            double smooth = ((double)c->rope_original_max_pos / wavelen - c->rope_low_freq_factor) /
                            (c->rope_high_freq_factor - c->rope_low_freq_factor);
            f = 1 / ((1 - smooth) / c->rope_factor + smooth);
        }
        p->rope_freqs[i] = (float)f;
    }
    p->n_rope_freqs = n;
    *k = (keyed){.group = 2, .order = 2, .t = {.gen = p->rope_freqs, .type = TPI_F32, .cols = n}};
    snprintf(k->t.gguf_name, sizeof k->t.gguf_name, "rope_freqs.weight");
    return 0;
}

static int collect(keyed *all, int64_t *n, const tpi_ckpt *ck, const tpi_config *cfg, tpi_error *err)
{
    int64_t total = ck->entries ? ck->n_entries : ck->files[0]->n_tensors;
    *n = 0;
    for (int64_t i = 0; i < total; i++) {
        const tpi_st_tensor *s = ck->entries ? ck->entries[i].t : &ck->files[0]->tensors[i];
        keyed *k = &all[*n];
        *k = (keyed){0};
        int m = map_name(s->name, cfg, k), rc;
        if (m < 0)
            return tpi_err(err, TPI_EUNSUPPORTED, "tensor %s: not a weight of the %s architecture",
                           s->name, cfg->arch_name);
        if (m == 0 && (rc = shape(k, s, cfg, err)))
            return rc;
        *n += m == 0;
    }
    return 0;
}

int tpi_cv_plan_make(tpi_cv_plan *p, const tpi_ckpt *ck, const tpi_config *cfg, tpi_dtype type,
                     tpi_gguf_writer *w, tpi_error *err)
{
    int64_t total = (ck->entries ? ck->n_entries : ck->files[0]->n_tensors) + 1, n = 0;
    keyed *all = calloc((size_t)total, sizeof *all);
    int rc = all ? collect(all, &n, ck, cfg, err) : tpi_err(err, TPI_ENOMEM, "out of memory");
    if (!rc && cfg->rope_kind == TPI_ROPE_LLAMA3)
        rc = rope_freqs(p, cfg, &all[n++], err);
    if (!rc)
        qsort(all, (size_t)n, sizeof *all, cmp_keyed);
    if (!rc && !(p->t = malloc((size_t)(n ? n : 1) * sizeof *p->t)))
        rc = tpi_err(err, TPI_ENOMEM, "out of memory");
    for (int64_t i = 0; !rc && i < n; i++) {
        tpi_cv_tensor *t = &all[i].t;
        if (t->rows && (rc = pick_type(p, t, type, t->src->name, err)))
            break;
        if (!t->rows)
            t->type = TPI_F32; /* norms and biases */
        int64_t ne[2] = {t->cols, t->rows};
        rc = tpi_gguf_w_tensor(w, t->gguf_name, t->type, t->rows ? 2 : 1, ne);
        p->t[p->n++] = *t;
    }
    free(all);
    return rc;
}

void tpi_cv_plan_free(tpi_cv_plan *p)
{
    free(p->t);
    free(p->rope_freqs);
    *p = (tpi_cv_plan){0};
}
