/* Loading one rank's slices of every weight (DESIGN.md "Loading"): colwise
 * slices are contiguous rows and stay in the file mapping; rowwise slices are
 * strided and copied row by row; the whole of a split tensor is never read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "tp/split.h"

static const char *ckpt_name(const tpi_model *m)
{
    return m->ckpt->index_path ? m->ckpt->index_path : m->ckpt->files[0]->path;
}

/* Finds `name` and checks it is a matrix/vector of the expected shape and a
 * dtype we compute with. */
static int lookup(tpi_model *m, const char *name, int n_dims, int64_t d0, int64_t d1, const tpi_st_tensor **out,
                  tpi_error *err)
{
    const tpi_st_file *f;
    char want[64];
    if (n_dims == 1)
        snprintf(want, sizeof want, "[%lld]", (long long)d0);
    else
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
    if (tpi_ckpt_find(m->ckpt, name, out, &f))
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" is missing (config.json implies shape %s)",
                       ckpt_name(m), name, want);
    const tpi_st_tensor *t = *out;
    if (!t->dtype_ok)
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: tensor \"%s\" has dtype %s (supported: F32, BF16, F16)", f->path,
                       name, t->dtype_name);
    int ok = t->n_dims == n_dims && t->shape[0] == d0 && (n_dims == 1 || t->shape[1] == d1);
    if (!ok) {
        char got[128] = "[";
        for (int i = 0; i < t->n_dims; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        strncat(got, "]", sizeof got - strlen(got) - 1);
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s", f->path, name,
                       got, want);
    }
    return 0;
}

/* Rows [r0, r0+nr) and columns [c0, c0+nc) of the [rows, cols] tensor `name`. */
static int load_matrix(tpi_model *m, const char *name, int64_t rows, int64_t cols, int64_t r0, int64_t nr,
                       int64_t c0, int64_t nc, tpi_weight *w, tpi_error *err)
{
    const tpi_st_tensor *t;
    int rc = lookup(m, name, 2, rows, cols, &t, err);
    if (rc)
        return rc;
    size_t es = tpi_dtype_size(t->dtype);
    memset(w, 0, sizeof *w);
    w->dtype = t->dtype;
    w->rows = nr;
    w->cols = nc;
    const uint8_t *first = t->data + ((size_t)r0 * (size_t)cols + (size_t)c0) * es;
    if (nc == cols && (uintptr_t)first % es == 0) {
        w->data = first;
    } else {
        uint8_t *buf = malloc((size_t)nr * (size_t)nc * es + 1);
        if (!buf)
            return tpi_err(err, TPI_ENOMEM, "out of memory copying a slice of tensor \"%s\"", name);
        for (int64_t r = 0; r < nr; r++)
            memcpy(buf + (size_t)r * (size_t)nc * es, first + (size_t)r * (size_t)cols * es, (size_t)nc * es);
        w->data = w->owned = buf;
    }
    m->weight_bytes += nr * nc * (int64_t)es;
    return 0;
}

/* Elements [off, off+count) of the vector `name`, widened to float32 (norm
 * weights and biases are tiny; widening them once keeps the kernels simple). */
static int load_vector(tpi_model *m, const char *name, int64_t n, int64_t off, int64_t count, float **out,
                       tpi_error *err)
{
    const tpi_st_tensor *t;
    int rc = lookup(m, name, 1, n, 0, &t, err);
    if (rc)
        return rc;
    float *v = malloc((size_t)(count > 0 ? count : 1) * sizeof *v);
    if (!v)
        return tpi_err(err, TPI_ENOMEM, "out of memory loading \"%s\"", name);
    tpi_to_f32(v, t->data + (size_t)off * tpi_dtype_size(t->dtype), t->dtype, (size_t)count);
    *out = v;
    m->weight_bytes += count * 4;
    return 0;
}

void tpi_weight_release(tpi_weight *w)
{
    free(w->owned);
    free(w->packed);
    memset(w, 0, sizeof *w);
}

void tpi_model_vocab_range(const tpi_model *m, int rank, int64_t *begin, int64_t *count)
{
    if (!m->sh.vocab_split) {
        *begin = 0;
        *count = m->cfg.vocab_size;
        return;
    }
    tpi_split(m->cfg.vocab_size, 1, m->comm->size, rank, begin, count);
}

/* ---- plan -> shard ---- */

static int inconsistent(tpi_model *m, const char *rule, const char *name, const char *why, tpi_error *err)
{
    return tpi_err(err, TPI_ECONFIG, "%s: plan key \"%s\" (for %s) gives an inconsistent split: %s", m->plan->source,
                   rule ? rule : "(none)", name, why);
}

/* A group of modules must be all replicated, or colwise then rowwise (the
 * Megatron pairing that needs one all-reduce). Returns 1 split, 0 replicated. */
static int group_split(tpi_model *m, const char *const *names, int n_col, int n_row, int *split, tpi_error *err)
{
    tpi_style st[8];
    const char *rules[8];
    int any = 0;
    for (int i = 0; i < n_col + n_row; i++) {
        st[i] = tpi_plan_style(m->plan, names[i], TPI_STYLE_REPLICATE, &rules[i]);
        any |= st[i] != TPI_STYLE_REPLICATE;
    }
    *split = any;
    for (int i = 0; i < n_col + n_row && any; i++) {
        tpi_style want = i < n_col ? TPI_STYLE_COLWISE : TPI_STYLE_ROWWISE;
        if (st[i] != want) {
            const char *culprit = rules[i];
            for (int j = 0; !culprit && j < n_col + n_row; j++)
                culprit = st[j] != TPI_STYLE_REPLICATE ? rules[j] : NULL;
            return inconsistent(m, culprit, names[i],
                                i < n_col ? "this projection must be colwise when its block is split"
                                          : "this projection must be rowwise when its block is split",
                                err);
        }
    }
    return 0;
}

static int plan_shard(tpi_model *m, tpi_error *err)
{
    const tpi_config *c = &m->cfg;
    int size = m->comm->size, rank = m->comm->rank, rc;
    tpi_shard *sh = &m->sh;
    char names[8][160];
    const char *np[8];
    for (int i = 0; i < 8; i++)
        np[i] = names[i];
    int attn_split = -1, mlp_split = -1;
    for (int64_t l = 0; l < c->n_layers; l++) {
        int a, b;
        const char *attn[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
        for (int i = 0; i < 4; i++)
            snprintf(names[i], sizeof names[i], "model.layers.%lld.self_attn.%s.weight", (long long)l, attn[i]);
        if ((rc = group_split(m, np, 3, 1, &a, err)))
            return rc;
        const char *mlp[] = {"gate_proj", "up_proj", "down_proj"};
        for (int i = 0; i < 3; i++)
            snprintf(names[i], sizeof names[i], "model.layers.%lld.mlp.%s.weight", (long long)l, mlp[i]);
        if ((rc = group_split(m, np, 2, 1, &b, err)))
            return rc;
        if ((attn_split >= 0 && a != attn_split) || (mlp_split >= 0 && b != mlp_split))
            return tpi_err(err, TPI_ECONFIG, "%s: the plan splits layer %lld differently from layer 0; tpinfer "
                           "needs every layer split alike", m->plan->source, (long long)l);
        attn_split = a;
        mlp_split = b;
        /* Norms hold one value per feature of the replicated residual stream. */
        const char *norms[] = {"input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm"};
        for (int i = 0; i < 4; i++) {
            tpi_style st;
            const char *rule;
            snprintf(names[0], sizeof names[0], "model.layers.%lld.%s.weight", (long long)l, norms[i]);
            st = tpi_plan_style(m->plan, names[0], TPI_STYLE_REPLICATE, &rule);
            if (st != TPI_STYLE_REPLICATE)
                return inconsistent(m, rule, names[0], "norm weights can only be replicated", err);
        }
    }
    tpi_style st;
    const char *rule;
    st = tpi_plan_style(m->plan, "model.norm.weight", TPI_STYLE_REPLICATE, &rule);
    if (st != TPI_STYLE_REPLICATE)
        return inconsistent(m, rule, "model.norm.weight", "norm weights can only be replicated", err);

    sh->attn_split = attn_split > 0 && size > 1;
    sh->mlp_split = mlp_split > 0 && size > 1;
    sh->q_head0 = 0, sh->n_q_heads = c->n_heads;
    if (sh->attn_split) {
        if (size > c->n_heads)
            return tpi_err(err, TPI_ECONFIG, "cannot split %d ranks over num_attention_heads = %lld: use at most "
                           "%lld ranks", size, (long long)c->n_heads, (long long)c->n_heads);
        tpi_split(c->n_heads, 1, size, rank, &sh->q_head0, &sh->n_q_heads);
    }
    /* With fewer KV heads than ranks, a rank holds the KV heads its query heads read. */
    int64_t group = c->n_heads / c->n_kv_heads;
    sh->kv_head0 = sh->q_head0 / group;
    sh->n_kv_heads = (sh->q_head0 + sh->n_q_heads - 1) / group + 1 - sh->kv_head0;
    sh->ff0 = 0, sh->n_ff = c->intermediate_size;
    if (sh->mlp_split)
        tpi_split(c->intermediate_size, TPI_FF_UNIT, size, rank, &sh->ff0, &sh->n_ff);

    st = tpi_plan_style(m->plan, "model.embed_tokens.weight", TPI_STYLE_REPLICATE, &rule);
    if (st == TPI_STYLE_COLWISE)
        return inconsistent(m, rule, "model.embed_tokens.weight",
                            "an embedding can be split by vocabulary (rowwise, embedding_rowwise) or replicated", err);
    sh->embed0 = 0, sh->n_embed = c->vocab_size;
    if (st == TPI_STYLE_ROWWISE && size > 1)
        tpi_split(c->vocab_size, 1, size, rank, &sh->embed0, &sh->n_embed);
    const char *head_name = c->tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    if (c->tie_word_embeddings)
        st = TPI_STYLE_COLWISE; /* the tied head is split by vocabulary like transformers' lm_head */
    else
        st = tpi_plan_style(m->plan, head_name, TPI_STYLE_COLWISE, &rule);
    if (st == TPI_STYLE_ROWWISE)
        return inconsistent(m, rule, "lm_head.weight", "lm_head can be split by vocabulary (colwise) or replicated",
                            err);
    sh->vocab0 = 0, sh->n_vocab = c->vocab_size;
    sh->vocab_split = st == TPI_STYLE_COLWISE && size > 1;
    if (sh->vocab_split)
        tpi_split(c->vocab_size, 1, size, rank, &sh->vocab0, &sh->n_vocab);
    return tpi_plan_check_unused(m->plan, err);
}

/* ---- weights ---- */

static int load_layer(tpi_model *m, int64_t l, tpi_error *err)
{
    const tpi_config *c = &m->cfg;
    const tpi_shard *sh = &m->sh;
    tpi_layer_weights *L = &m->layers[l];
    int64_t H = c->hidden_size, hd = c->head_dim, FF = c->intermediate_size;
    int64_t qr = c->n_heads * hd, kvr = c->n_kv_heads * hd;
    char n[200];
    int rc = 0;
#define NAME(fmt) (snprintf(n, sizeof n, "model.layers.%lld." fmt, (long long)l), n)
    if ((rc = load_vector(m, NAME("input_layernorm.weight"), H, 0, H, &L->attn_norm, err)) ||
        (rc = load_vector(m, NAME("post_attention_layernorm.weight"), H, 0, H, &L->ffn_norm, err)) ||
        (rc = load_matrix(m, NAME("self_attn.q_proj.weight"), qr, H, sh->q_head0 * hd, sh->n_q_heads * hd, 0, H,
                          &L->wq, err)) ||
        (rc = load_matrix(m, NAME("self_attn.k_proj.weight"), kvr, H, sh->kv_head0 * hd, sh->n_kv_heads * hd, 0, H,
                          &L->wk, err)) ||
        (rc = load_matrix(m, NAME("self_attn.v_proj.weight"), kvr, H, sh->kv_head0 * hd, sh->n_kv_heads * hd, 0, H,
                          &L->wv, err)) ||
        (rc = load_matrix(m, NAME("self_attn.o_proj.weight"), H, qr, 0, H, sh->q_head0 * hd, sh->n_q_heads * hd,
                          &L->wo, err)) ||
        (rc = load_matrix(m, NAME("mlp.gate_proj.weight"), FF, H, sh->ff0, sh->n_ff, 0, H, &L->wg, err)) ||
        (rc = load_matrix(m, NAME("mlp.up_proj.weight"), FF, H, sh->ff0, sh->n_ff, 0, H, &L->wu, err)) ||
        (rc = load_matrix(m, NAME("mlp.down_proj.weight"), H, FF, 0, H, sh->ff0, sh->n_ff, &L->wd, err)))
        return rc;
    if (c->qkv_bias &&
        ((rc = load_vector(m, NAME("self_attn.q_proj.bias"), qr, sh->q_head0 * hd, sh->n_q_heads * hd, &L->bq, err)) ||
         (rc = load_vector(m, NAME("self_attn.k_proj.bias"), kvr, sh->kv_head0 * hd, sh->n_kv_heads * hd, &L->bk,
                           err)) ||
         (rc = load_vector(m, NAME("self_attn.v_proj.bias"), kvr, sh->kv_head0 * hd, sh->n_kv_heads * hd, &L->bv,
                           err))))
        return rc;
    if (c->o_bias && (rc = load_vector(m, NAME("self_attn.o_proj.bias"), H, 0, H, &L->bo, err)))
        return rc;
    if (c->mlp_bias &&
        ((rc = load_vector(m, NAME("mlp.gate_proj.bias"), FF, sh->ff0, sh->n_ff, &L->bg, err)) ||
         (rc = load_vector(m, NAME("mlp.up_proj.bias"), FF, sh->ff0, sh->n_ff, &L->bu, err)) ||
         (rc = load_vector(m, NAME("mlp.down_proj.bias"), H, 0, H, &L->bd, err))))
        return rc;
    if (c->qk_norm &&
        ((rc = load_vector(m, NAME("self_attn.q_norm.weight"), hd, 0, hd, &L->q_norm, err)) ||
         (rc = load_vector(m, NAME("self_attn.k_norm.weight"), hd, 0, hd, &L->k_norm, err))))
        return rc;
#undef NAME
    return 0;
}

/* Lets the backend repack the matmul weights (not the embedding, which is
 * only looked up by row). */
static int prepare(tpi_model *m, tpi_error *err)
{
    if (!m->be->prepare_weight)
        return 0;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        tpi_layer_weights *L = &m->layers[l];
        tpi_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->rows > 0 && ws[i]->cols > 0 && m->be->prepare_weight(ws[i]))
                return tpi_err(err, TPI_ENOMEM, "out of memory repacking the weights of layer %lld", (long long)l);
    }
    if (m->lm_head.rows > 0 && m->be->prepare_weight(&m->lm_head))
        return tpi_err(err, TPI_ENOMEM, "out of memory repacking lm_head");
    return 0;
}

int tpi_model_load_weights(tpi_model *m, tpi_error *err)
{
    const tpi_config *c = &m->cfg;
    int rc = plan_shard(m, err);
    if (rc)
        return rc;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    int64_t H = c->hidden_size, V = c->vocab_size;
    if ((rc = load_matrix(m, "model.embed_tokens.weight", V, H, m->sh.embed0, m->sh.n_embed, 0, H, &m->embed, err)))
        return rc;
    for (int64_t l = 0; l < c->n_layers; l++)
        if ((rc = load_layer(m, l, err)))
            return rc;
    /* A config with fewer layers than the checkpoint would load "fine" and
     * compute a different (truncated) model: refuse it. */
    char extra[96];
    const tpi_st_tensor *t;
    const tpi_st_file *f;
    snprintf(extra, sizeof extra, "model.layers.%lld.input_layernorm.weight", (long long)c->n_layers);
    if (!tpi_ckpt_find(m->ckpt, extra, &t, &f))
        return tpi_err(err, TPI_EFORMAT,
                       "%s: tensor \"%s\" belongs to a layer past config.json's num_hidden_layers = %lld "
                       "(does num_hidden_layers match the checkpoint?)",
                       f->path, extra, (long long)c->n_layers);
    if ((rc = load_vector(m, "model.norm.weight", H, 0, H, &m->final_norm, err)))
        return rc;
    if (c->tie_word_embeddings && m->sh.vocab0 == m->sh.embed0 && m->sh.n_vocab == m->sh.n_embed) {
        m->lm_head = m->embed;
        m->lm_head.owned = NULL; /* the bytes belong to embed */
    } else {
        const char *head = c->tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        if ((rc = load_matrix(m, head, V, H, m->sh.vocab0, m->sh.n_vocab, 0, H, &m->lm_head, err)))
            return rc;
    }
    return prepare(m, err);
}
