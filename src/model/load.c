/* Loading one rank's slices of every weight (DESIGN.md "Loading"): tp/shard.c
 * says which rows and columns of which tensor; here they are read. Colwise
 * slices are contiguous rows and stay in the file mapping; rowwise slices are
 * strided and copied row by row; the whole of a split tensor is never read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "tp/shard.h"

static const char *ckpt_name(const tpi_model *m)
{
    return m->ckpt->index_path ? m->ckpt->index_path : m->ckpt->files[0]->path;
}

/* Finds the tensor of slice `s` and checks it has the whole shape config.json
 * implies and a dtype we compute with. */
static int lookup(tpi_model *m, const tpi_slice *s, const tpi_st_tensor **out, tpi_error *err)
{
    const tpi_st_file *f;
    char want[64];
    if (s->n_dims == 1)
        snprintf(want, sizeof want, "[%lld]", (long long)s->rows);
    else
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)s->rows, (long long)s->cols);
    if (tpi_ckpt_find(m->ckpt, s->name, out, &f))
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" is missing (config.json implies shape %s)",
                       ckpt_name(m), s->name, want);
    const tpi_st_tensor *t = *out;
    if (!t->dtype_ok)
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: tensor \"%s\" has dtype %s (supported: F32, BF16, F16)", f->path,
                       s->name, t->dtype_name);
    int ok = t->n_dims == s->n_dims && t->shape[0] == s->rows && (s->n_dims == 1 || t->shape[1] == s->cols);
    if (!ok) {
        char got[128] = "[";
        for (int i = 0; i < t->n_dims; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        strncat(got, "]", sizeof got - strlen(got) - 1);
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s", f->path,
                       s->name, got, want);
    }
    return 0;
}

/* The bit masks of a dtype's sign, exponent and mantissa: an all-ones
 * exponent is infinity (mantissa 0) or NaN, in IEEE binary32, binary16 and
 * bfloat16 alike. */
typedef struct float_bits {
    uint32_t sign, exp, man;
} float_bits;

static float_bits special_bits(tpi_dtype dt)
{
    switch (dt) {
    case TPI_F32: return (float_bits){0x80000000u, 0x7f800000u, 0x007fffffu};
    case TPI_BF16: return (float_bits){0x8000u, 0x7f80u, 0x007fu};
    case TPI_F16: return (float_bits){0x8000u, 0x7c00u, 0x03ffu};
    default: break; /* block types: their fp16 scales are checked as blocks (load.c's caller) */
    }
    return (float_bits){0, 0xffffffffu, 0}; /* unreachable: lookup() admits only these */
}

static uint32_t element_bits(const uint8_t *p, tpi_dtype dt, int64_t i)
{
    if (dt == TPI_F32) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        return u;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return h;
}

/* The index of the first NaN or infinity among n elements of dtype dt at p,
 * else -1; *what names it. Blocks are scanned branch-free (the common,
 * clean case) and only a block with a hit is searched. */
static int64_t first_special(const uint8_t *p, tpi_dtype dt, int64_t n, const char **what)
{
    enum { BLOCK = 4096 };
    float_bits fb = special_bits(dt);
    uint32_t exp = fb.exp;
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t e = n - b < BLOCK ? n : b + BLOCK;
        uint32_t hit = 0;
        for (int64_t i = b; i < e; i++)
            hit |= (element_bits(p, dt, i) & exp) == exp;
        for (int64_t i = b; hit && i < e; i++) {
            uint32_t u = element_bits(p, dt, i);
            if ((u & exp) == exp) {
                *what = u & fb.man ? "NaN" : u & fb.sign ? "-inf" : "+inf";
                return i;
            }
        }
    }
    return -1;
}

/* check_weights: fails naming the tensor, as the checkpoint names it, and
 * the first NaN or infinity among the [n_rows, n_cols] elements of slice s
 * at data (contiguous), with its index in the whole tensor. */
static int check_slice(const tpi_slice *s, const uint8_t *data, tpi_dtype dt, tpi_error *err)
{
    const char *what;
    int64_t n_cols = s->n_dims == 1 ? 1 : s->n_cols;
    int64_t i = first_special(data, dt, s->n_rows * n_cols, &what);
    if (i < 0)
        return 0;
    int64_t r = s->row0 + i / n_cols;
    if (s->n_dims == 1)
        return tpi_err(err, TPI_ENONFINITE, "%s: element %lld is %s", s->name, (long long)r, what);
    int64_t c = s->col0 + i % n_cols;
    return tpi_err(err, TPI_ENONFINITE, "%s: element %lld (row %lld, column %lld) is %s", s->name,
                   (long long)(r * s->cols + c), (long long)r, (long long)c, what);
}

static int load_matrix(tpi_model *m, const tpi_slice *s, tpi_weight *w, tpi_error *err)
{
    const tpi_st_tensor *t;
    int rc = lookup(m, s, &t, err);
    if (rc)
        return rc;
    size_t es = tpi_dtype_size(t->dtype);
    int64_t nr = s->n_rows, nc = s->n_cols;
    memset(w, 0, sizeof *w);
    w->dtype = t->dtype;
    w->rows = nr;
    w->cols = nc;
    const uint8_t *first = t->data + ((size_t)s->row0 * (size_t)s->cols + (size_t)s->col0) * es;
    if (nc == s->cols && (uintptr_t)first % es == 0) {
        w->data = first;
    } else {
        uint8_t *buf = malloc((size_t)nr * (size_t)nc * es + 1);
        if (!buf)
            return tpi_err(err, TPI_ENOMEM, "out of memory copying a slice of tensor \"%s\"", s->name);
        for (int64_t r = 0; r < nr; r++)
            memcpy(buf + (size_t)r * (size_t)nc * es, first + (size_t)r * (size_t)s->cols * es, (size_t)nc * es);
        w->data = w->owned = buf;
    }
    m->weight_bytes += nr * nc * (int64_t)es;
    return m->check_weights ? check_slice(s, w->data, w->dtype, err) : 0;
}

/* A vector slice widened to float32 (norm weights and biases are tiny;
 * widening them once keeps the kernels simple). */
static int load_vector(tpi_model *m, const tpi_slice *s, float **out, tpi_error *err)
{
    const tpi_st_tensor *t;
    int rc = lookup(m, s, &t, err);
    if (rc)
        return rc;
    int64_t count = s->n_rows;
    const uint8_t *first = t->data + (size_t)s->row0 * tpi_dtype_size(t->dtype);
    if (m->check_weights && (rc = check_slice(s, first, t->dtype, err)))
        return rc;
    float *v = malloc((size_t)(count > 0 ? count : 1) * sizeof *v);
    if (!v)
        return tpi_err(err, TPI_ENOMEM, "out of memory loading \"%s\"", s->name);
    tpi_to_f32(v, first, t->dtype, (size_t)count);
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
    tpi_shard_vocab(m->cfg.vocab_size, m->sh.vocab_split, m->comm->size, rank, begin, count);
}

/* Where weight `role` of layer `l` lives in the model: a tpi_weight for a
 * matrix, a float * for a vector. */
static void *dest(tpi_model *m, tpi_role role, int64_t l)
{
    tpi_layer_weights *L = l >= 0 ? &m->layers[l] : NULL; /* model-wide roles do not use it */
    switch (role) {
    case TPI_W_EMBED: return &m->embed;
    case TPI_W_ATTN_NORM: return &L->attn_norm;
    case TPI_W_FFN_NORM: return &L->ffn_norm;
    case TPI_W_Q: return &L->wq;
    case TPI_W_K: return &L->wk;
    case TPI_W_V: return &L->wv;
    case TPI_W_O: return &L->wo;
    case TPI_W_GATE: return &L->wg;
    case TPI_W_UP: return &L->wu;
    case TPI_W_DOWN: return &L->wd;
    case TPI_W_Q_BIAS: return &L->bq;
    case TPI_W_K_BIAS: return &L->bk;
    case TPI_W_V_BIAS: return &L->bv;
    case TPI_W_O_BIAS: return &L->bo;
    case TPI_W_GATE_BIAS: return &L->bg;
    case TPI_W_UP_BIAS: return &L->bu;
    case TPI_W_DOWN_BIAS: return &L->bd;
    case TPI_W_Q_NORM: return &L->q_norm;
    case TPI_W_K_NORM: return &L->k_norm;
    case TPI_W_FINAL_NORM: return &m->final_norm;
    case TPI_W_LM_HEAD: return &m->lm_head;
    case TPI_N_ROLES: break;
    }
    return NULL;
}

static int load_weight(tpi_model *m, tpi_role role, int64_t l, tpi_error *err)
{
    tpi_slice s;
    if (!tpi_shard_slice(&m->sh, &m->cfg, role, l, &s))
        return 0;
    if (s.n_dims == 1)
        return load_vector(m, &s, dest(m, role, l), err);
    if (role == TPI_W_LM_HEAD && m->cfg.tie_word_embeddings && s.row0 == m->sh.embed0 && s.n_rows == m->sh.n_embed) {
        m->lm_head = m->embed;
        m->lm_head.owned = NULL; /* the bytes belong to embed */
        return 0;
    }
    return load_matrix(m, &s, dest(m, role, l), err);
}

/* A config with fewer layers than the checkpoint would load "fine" and
 * compute a different (truncated) model: refuse it. */
static int check_no_extra_layer(tpi_model *m, tpi_error *err)
{
    char extra[160];
    const tpi_st_tensor *t;
    const tpi_st_file *f;
    tpi_weight_name(extra, sizeof extra, TPI_W_ATTN_NORM, m->cfg.n_layers);
    if (!tpi_ckpt_find(m->ckpt, extra, &t, &f))
        return tpi_err(err, TPI_EFORMAT,
                       "%s: tensor \"%s\" belongs to a layer past config.json's num_hidden_layers = %lld "
                       "(does num_hidden_layers match the checkpoint?)",
                       f->path, extra, (long long)m->cfg.n_layers);
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
    tpi_shard_blocks blocks;
    int rc = tpi_plan_blocks(m->plan, &m->cfg, &blocks, err);
    if (!rc)
        rc = tpi_shard_init(&m->sh, &m->cfg, &blocks, m->comm->size, m->comm->rank, err);
    if (rc)
        return rc;
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    if (!m->layers)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    if ((rc = load_weight(m, TPI_W_EMBED, -1, err)))
        return rc;
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < TPI_N_ROLES; r++)
            if (tpi_weight_per_layer(r) && (rc = load_weight(m, r, l, err)))
                return rc;
    if ((rc = check_no_extra_layer(m, err)) || (rc = load_weight(m, TPI_W_FINAL_NORM, -1, err)) ||
        (rc = load_weight(m, TPI_W_LM_HEAD, -1, err)))
        return rc;
    return prepare(m, err);
}
