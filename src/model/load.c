/* Loading one rank's slices of every weight (DESIGN.md "Loading"): tp/shard.c
 * says which rows and columns of which tensor; here they are read. Colwise
 * slices are contiguous rows and stay in the file mapping; rowwise slices are
 * strided and copied row by row; the whole of a split tensor is never read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/quant.h"
#include "model/model.h"
#include "tp/shard.h"

static const char *ckpt_name(const tpi_model *m)
{
    return m->ckpt->index_path ? m->ckpt->index_path : m->ckpt->files[0]->path;
}

/* The name the checkpoint gives a tensor, for messages: GGUF's
 * (blk.0.attn_q.weight) or transformers'. */
static const char *file_name(const tpi_model *m, const char *hf_name)
{
    static _Thread_local char buf[160];
    if (!m->ckpt->gguf)
        return hf_name;
    tpi_gguf_name_of(buf, sizeof buf, hf_name);
    return buf;
}

static const char *implied_by(const tpi_model *m)
{
    return m->ckpt->gguf ? "the GGUF metadata implies" : "config.json implies";
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
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" is missing (%s shape %s)", ckpt_name(m),
                       file_name(m, s->name), implied_by(m), want);
    const tpi_st_tensor *t = *out;
    if (!t->dtype_ok)
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: tensor \"%s\" has %s %s (supported: %s)", f->path,
                       file_name(m, s->name), m->ckpt->gguf ? "type" : "dtype", t->dtype_name,
                       m->ckpt->gguf ? "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K" : "F32, BF16, F16");
    if (tpi_dtype_is_quant(t->dtype) && (s->n_dims == 1 || t->n_dims != 2))
        return tpi_err(err, TPI_EUNSUPPORTED, "%s: tensor \"%s\" has type %s (expected F32, F16 or BF16 for a "
                       "vector)", f->path, file_name(m, s->name), t->dtype_name);
    int ok = t->n_dims == s->n_dims && t->shape[0] == s->rows && (s->n_dims == 1 || t->shape[1] == s->cols);
    if (!ok) {
        char got[128] = "[";
        for (int i = 0; i < t->n_dims; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        strncat(got, "]", sizeof got - strlen(got) - 1);
        return tpi_err(err, TPI_EFORMAT, "%s: tensor \"%s\" has shape %s but %s %s%s", f->path,
                       file_name(m, s->name), got, implied_by(m), want,
                       m->ckpt->gguf ? " (as [rows, cols], ggml's ne reversed)" : "");
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

/* check_weights for a block type: every fp16 scale of the slice's blocks
 * (a NaN or infinite scale poisons its whole block). */
static int check_blocks(const tpi_slice *s, const tpi_weight *w, int64_t row_bytes, tpi_error *err)
{
    static const struct { tpi_dtype t; int off[2], n; } scales[] = {
        {TPI_Q8_0, {0, 0}, 1}, {TPI_Q4_0, {0, 0}, 1}, {TPI_Q4_K, {0, 2}, 2}, {TPI_Q6_K, {208, 0}, 1},
    };
    int64_t bb = tpi_dtype_block_bytes(w->dtype), nb = row_bytes / bb;
    for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
        if (scales[k].t != w->dtype)
            continue;
        for (int64_t r = 0; r < w->rows; r++)
            for (int64_t b = 0; b < nb; b++)
                for (int j = 0; j < scales[k].n; j++) {
                    uint16_t h;
                    memcpy(&h, (const uint8_t *)w->data + r * row_bytes + b * bb + scales[k].off[j], 2);
                    if ((h & 0x7c00) == 0x7c00)
                        return tpi_err(err, TPI_ENONFINITE, "%s: row %lld, block %lld has a %s scale", s->name,
                                       (long long)(s->row0 + r), (long long)(b + (s->col0 + w->k_off) /
                                       tpi_dtype_block(w->dtype)), h & 0x3ff ? "NaN" : "infinite");
                }
    }
    return 0;
}

/* A slice of a block-typed tensor: whole rows stay in the mapping; a slice of
 * columns (row-parallel) copies the blocks covering them, and k_off says
 * where its first column lies in its first block. */
static int slice_blocks(tpi_model *m, const tpi_slice *s, const tpi_st_tensor *t, tpi_weight *w, tpi_error *err)
{
    int64_t block = tpi_dtype_block(t->dtype), bb = tpi_dtype_block_bytes(t->dtype);
    int64_t full = tpi_dtype_row_bytes(t->dtype, s->cols);
    int64_t b0 = s->col0 / block, b1 = (s->col0 + s->n_cols + block - 1) / block;
    int64_t row_bytes = (b1 - b0) * bb;
    const uint8_t *first = t->data + (size_t)s->row0 * (size_t)full + (size_t)(b0 * bb);
    w->k_off = s->col0 - b0 * block;
    if (row_bytes == full) {
        w->data = first;
        m->mapped_bytes += s->n_rows * row_bytes;
    } else {
        uint8_t *buf = malloc((size_t)(s->n_rows * row_bytes) + 1);
        if (!buf)
            return tpi_err(err, TPI_ENOMEM, "out of memory copying a slice of tensor \"%s\"", s->name);
        for (int64_t r = 0; r < s->n_rows; r++)
            memcpy(buf + r * row_bytes, first + r * full, (size_t)row_bytes);
        w->data = w->owned = buf;
        tpi_file_release(t->data + (size_t)s->row0 * (size_t)full, (size_t)(s->n_rows * full));
    }
    m->weight_bytes += s->n_rows * row_bytes;
    tpi_slice named = *s;
    snprintf(named.name, sizeof named.name, "%s", file_name(m, s->name));
    return m->check_weights ? check_blocks(&named, w, row_bytes, err) : 0;
}

/* --quant: the rank's slice, widened row by row and quantized to blocks of
 * m->quant, its columns zero-padded to whole blocks (k_off 0). */
/* Rows are independent, so the rank's threads quantize them (the K types'
 * scale search costs ~60 ns per weight on one thread). */
static int quantize_rows(tpi_model *m, const tpi_slice *s, const uint8_t *first, size_t es, tpi_dtype from,
                         tpi_dtype q, int64_t padded, uint8_t *buf)
{
    int64_t row_bytes = tpi_dtype_row_bytes(q, padded);
    int failed = 0; /* 1: no memory, 2: the type cannot be written */
#pragma omp parallel num_threads(m->n_threads) if (s->n_rows >= 64)
    {
        float *row = calloc((size_t)padded + 1, sizeof *row);
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t r = 0; r < s->n_rows; r++) {
            if (!row)
                continue;
            tpi_to_f32(row, first + (size_t)r * (size_t)s->cols * es, from, (size_t)s->n_cols);
            if (tpi_quant_row(q, row, buf + r * row_bytes, padded)) {
#pragma omp atomic write
                failed = 2;
            }
        }
        free(row);
    }
    return failed;
}

static int quantize_slice(tpi_model *m, const tpi_slice *s, const uint8_t *first, size_t es, tpi_weight *w,
                          tpi_error *err)
{
    tpi_dtype q = (tpi_dtype)m->quant;
    int64_t block = tpi_dtype_block(q), padded = (s->n_cols + block - 1) / block * block;
    int64_t row_bytes = tpi_dtype_row_bytes(q, padded);
    uint8_t *buf = malloc((size_t)(s->n_rows * row_bytes) + 1);
    int failed = buf ? quantize_rows(m, s, first, es, w->dtype, q, padded, buf) : 1;
    if (failed) {
        free(buf);
        if (failed == 1)
            return tpi_err(err, TPI_ENOMEM, "out of memory quantizing tensor \"%s\"", s->name);
        return tpi_err(err, TPI_EUNSUPPORTED, "quant: quantizing tensor \"%s\" to %s is not available", s->name,
                       tpi_dtype_name(q));
    }
    w->dtype = q;
    w->data = w->owned = buf;
    tpi_file_release(first - (size_t)s->col0 * es, (size_t)(s->n_rows * s->cols) * es);
    m->weight_bytes += s->n_rows * row_bytes;
    return 0;
}

static int load_matrix(tpi_model *m, const tpi_slice *s, tpi_weight *w, tpi_error *err)
{
    const tpi_st_tensor *t;
    int rc = lookup(m, s, &t, err);
    if (rc)
        return rc;
    int64_t nr = s->n_rows, nc = s->n_cols;
    memset(w, 0, sizeof *w);
    w->dtype = t->dtype;
    w->rows = nr;
    w->cols = nc;
    if (tpi_dtype_is_quant(t->dtype))
        return slice_blocks(m, s, t, w, err);
    size_t es = tpi_dtype_size(t->dtype);
    const uint8_t *first = t->data + ((size_t)s->row0 * (size_t)s->cols + (size_t)s->col0) * es;
    if (m->check_weights) { /* on the stored values, before any quantizing */
        for (int64_t r = 0; r < nr && !rc; r++) {
            tpi_slice row = *s;
            snprintf(row.name, sizeof row.name, "%s", file_name(m, s->name));
            row.row0 = s->row0 + r;
            row.n_rows = 1;
            rc = check_slice(&row, first + (size_t)r * (size_t)s->cols * es, t->dtype, err);
        }
        if (rc)
            return rc;
    }
    if (m->quant >= 0)
        return quantize_slice(m, s, first, es, w, err);
    if (nc == s->cols && (uintptr_t)first % es == 0) {
        w->data = first;
        m->mapped_bytes += nr * nc * (int64_t)es;
    } else {
        uint8_t *buf = malloc((size_t)nr * (size_t)nc * es + 1);
        if (!buf)
            return tpi_err(err, TPI_ENOMEM, "out of memory copying a slice of tensor \"%s\"", s->name);
        for (int64_t r = 0; r < nr; r++)
            memcpy(buf + (size_t)r * (size_t)nc * es, first + (size_t)r * (size_t)s->cols * es, (size_t)nc * es);
        w->data = w->owned = buf;
        tpi_file_release(t->data + (size_t)s->row0 * (size_t)s->cols * es, (size_t)(nr * s->cols) * es);
    }
    m->weight_bytes += nr * nc * (int64_t)es;
    return 0;
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
    tpi_slice named = *s;
    snprintf(named.name, sizeof named.name, "%s", file_name(m, s->name));
    if (m->check_weights && (rc = check_slice(&named, first, t->dtype, err)))
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

/* Bytes of w's rows as loaded (whole blocks for a block type). */
static int64_t plain_bytes(const tpi_weight *w)
{
    if (!tpi_dtype_is_quant(w->dtype))
        return w->rows * w->cols * (int64_t)tpi_dtype_size(w->dtype);
    int64_t bs = tpi_dtype_block(w->dtype);
    return w->rows * tpi_dtype_row_bytes(w->dtype, (w->k_off + w->cols + bs - 1) / bs * bs);
}

/* Repacks one matmul weight. A repacked weight read in place from the file
 * mapping is then a copy: its pages leave the process (they are re-read
 * from the file if anything reads them again, as the tied embedding's rows
 * are), so a rank's resident weights stay about its share, not twice it.
 * A block-type weight's own copy (a row-parallel slice, --quant) is freed
 * once packed: the backends read packed block types only from the packed
 * copy (the reference unpacks it). A tied lm_head owns nothing: its bytes
 * are the embedding's, which looks rows up in them, so they stay. A float
 * weight keeps its copy: the reference backend reads float weights' plain
 * rows. */
static int prepare_one(tpi_model *m, tpi_weight *w)
{
    if (w->rows <= 0 || w->cols <= 0)
        return 0;
    if (m->be->prepare_weight(w))
        return -1;
    if (!w->packed)
        return 0;
    /* a tied lm_head reads the embedding's bytes, which may be its copy */
    int shared = w == &m->lm_head && w->data == m->embed.data;
    if (shared && m->embed.owned)
        return 0;
    if (!w->owned) {
        int64_t bytes = plain_bytes(w);
        tpi_file_release(w->data, (size_t)bytes);
        if (!shared)
            m->mapped_bytes -= bytes;
    } else if (tpi_dtype_is_quant(w->dtype)) {
        free(w->owned);
        w->owned = NULL;
        w->data = NULL;
    }
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
            if (prepare_one(m, ws[i]))
                return tpi_err(err, TPI_ENOMEM, "out of memory repacking the weights of layer %lld", (long long)l);
    }
    if (prepare_one(m, &m->lm_head))
        return tpi_err(err, TPI_ENOMEM, "out of memory repacking lm_head");
    return 0;
}

/* MLP features are dealt in units of down_proj's block (the largest of any
 * layer's, all being powers of two), so that each rank's columns of it are
 * whole blocks of the file, or of --quant's type. */
static int64_t ff_unit(const tpi_model *m)
{
    if (m->quant >= 0)
        return tpi_dtype_block((tpi_dtype)m->quant);
    int64_t unit = 0;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        char name[160];
        const tpi_st_tensor *t;
        const tpi_st_file *f;
        tpi_weight_name(name, sizeof name, TPI_W_DOWN, l);
        if (!tpi_ckpt_find(m->ckpt, name, &t, &f) && t->dtype_ok && tpi_dtype_block(t->dtype) > unit)
            unit = tpi_dtype_block(t->dtype);
    }
    return unit;
}

int tpi_model_load_weights(tpi_model *m, tpi_error *err)
{
    tpi_shard_blocks blocks;
    int rc = tpi_plan_blocks(m->plan, &m->cfg, &blocks, err);
    blocks.ff_unit = ff_unit(m);
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
