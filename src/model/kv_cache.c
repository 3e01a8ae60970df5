/* The KV cache: a pool of blocks, per-sequence block tables, reference
 * counts so that sequences share a prefix's full blocks (kv_cache.h). Every
 * rank makes the same calls in the same order, so every rank's tables and
 * free list are the same and no decision here needs a collective. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "core/meminfo.h"
#include "core/mem.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/tuning.h"

/* x86-64's user address space with 4-level paging: a larger pool cannot
 * be mapped, so it is refused rather than handed to the allocator. */
#define KV_MAX_BYTES ((int64_t)1 << 47)
/* Bounds on the options, far past any real use, so that the products below
 * are checked against sane figures. */
#define KV_MAX_SEQ ((int64_t)1 << 20)
#define KV_MAX_CTX ((int64_t)1 << 32)
#define KV_MAX_BLOCK ((int64_t)1 << 20)
/* Block-table entries of all sequences together (4 bytes each): a larger
 * table asks for fewer sequences or larger blocks. */
#define KV_MAX_TABLE ((int64_t)1 << 28)

int tpi_kv_create(tpi_kv **out, const tpi_model *m, int64_t n_seq, int64_t max_ctx, tpi_error *err)
{
    tpi_kv_opts o = {.n_seq = n_seq, .max_ctx = max_ctx};
    return tpi_kv_create_pool(out, m, &o, err);
}

/* The pool's shape from the options: block size B, blocks per sequence and
 * in the pool, and the bytes of K and V together. */
static int pool_shape(const tpi_model *m, const tpi_kv_opts *o, tpi_kv *kv, int64_t *bytes, tpi_error *err)
{
    if (o->n_seq < 1 || o->max_ctx < 1)
        return tpi_err(err, TPI_EINVAL, "KV cache needs n_seq >= 1 and max_ctx >= 1 (got %lld x %lld)",
                       (long long)o->n_seq, (long long)o->max_ctx);
    if (o->n_seq > KV_MAX_SEQ || o->max_ctx > KV_MAX_CTX)
        return tpi_err(err, TPI_ELIMIT, "KV cache of %lld sequences x %lld positions: at most %lld sequences and "
                       "%lld positions each", (long long)o->n_seq, (long long)o->max_ctx, (long long)KV_MAX_SEQ,
                       (long long)KV_MAX_CTX);
    if (o->block_positions < 0 || o->block_positions > KV_MAX_BLOCK || o->pool_positions < 0)
        return tpi_err(err, TPI_EINVAL, "KV cache: block_positions must be in [0, %lld] (0: the default) and "
                       "pool_positions >= 0 (got %lld and %lld)", (long long)KV_MAX_BLOCK,
                       (long long)o->block_positions, (long long)o->pool_positions);
    int64_t b = o->block_positions ? o->block_positions : TPI_KV_BLOCK_DEFAULT;
    kv->n_seq = o->n_seq;
    kv->max_ctx = o->max_ctx;
    kv->block_positions = b < o->max_ctx ? b : o->max_ctx; /* a block past the context holds nothing */
    kv->max_blocks = (o->max_ctx + kv->block_positions - 1) / kv->block_positions;
    int64_t table, all_full;
    if (tpi_mul_overflow(o->n_seq, kv->max_blocks, &table) || table > KV_MAX_TABLE)
        return tpi_err(err, TPI_ELIMIT, "KV cache: %lld sequences x %lld blocks of %lld positions is more than "
                       "2^28 block-table entries; give fewer sequences or larger blocks", (long long)o->n_seq,
                       (long long)kv->max_blocks, (long long)kv->block_positions);
    all_full = table;
    /* whole blocks, and never more than every sequence filling its context */
    int64_t asked = (o->pool_positions + kv->block_positions - 1) / kv->block_positions;
    kv->n_blocks = o->pool_positions == 0 || asked > all_full ? all_full : asked;
    const int64_t factors[] = {m->cfg.n_layers, kv->n_blocks, kv->block_positions, m->sh.n_kv_heads,
                               m->cfg.head_dim, (int64_t)sizeof(float)};
    if (kv->n_blocks > INT32_MAX || tpi_mul_all(factors, 6, bytes) || *bytes > KV_MAX_BYTES)
        return tpi_err(err, TPI_ELIMIT, "KV pool of %lld layers x %lld blocks x %lld positions x %lld KV heads x "
                       "%lld: more than 2^47 bytes each for keys and values; give a smaller pool or context",
                       (long long)m->cfg.n_layers, (long long)kv->n_blocks, (long long)kv->block_positions,
                       (long long)m->sh.n_kv_heads, (long long)m->cfg.head_dim);
    kv->n_layers = m->cfg.n_layers;
    kv->n_heads = m->sh.n_kv_heads;
    kv->head_dim = m->cfg.head_dim;
    kv->block_floats = kv->n_heads * kv->block_positions * kv->head_dim;
    return 0;
}

/* The tables, free list and pool of a kv whose shape is set; 0 or -1. */
static int pool_alloc(tpi_kv *kv, int64_t bytes)
{
    size_t ns = (size_t)kv->n_seq, nb = (size_t)kv->n_blocks;
    kv->len = calloc(ns, sizeof *kv->len);
    kv->held = calloc(ns, sizeof *kv->held);
    kv->table = calloc(ns * (size_t)kv->max_blocks, sizeof *kv->table);
    kv->refs = calloc(nb, sizeof *kv->refs);
    kv->free_ids = malloc(nb * sizeof *kv->free_ids);
    kv->kb = malloc((size_t)kv->max_blocks * sizeof *kv->kb);
    kv->vb = malloc((size_t)kv->max_blocks * sizeof *kv->vb);
    /* decode reads every held block per token: 2 MB pages, as the weights;
     * the pages are committed as blocks are first written */
    kv->k = tpi_alloc_stream((size_t)bytes / 2 + 1);
    kv->v = tpi_alloc_stream((size_t)bytes / 2 + 1);
    if (!kv->len || !kv->held || !kv->table || !kv->refs || !kv->free_ids || !kv->kb || !kv->vb || !kv->k || !kv->v)
        return -1;
    /* lowest ids on top: a fresh pool fills from its start, and a block given
     * back is the next taken, its pages already committed */
    for (size_t i = 0; i < nb; i++)
        kv->free_ids[i] = (int32_t)(nb - 1 - i);
    kv->n_free = kv->n_blocks;
    return 0;
}

int tpi_kv_create_pool(tpi_kv **out, const tpi_model *m, const tpi_kv_opts *o, tpi_error *err)
{
    *out = NULL;
    tpi_kv shape = {0};
    int64_t bytes = 0;
    int rc = pool_shape(m, o, &shape, &bytes, err);
    if (rc)
        return rc;
    bytes *= 2; /* keys and values */
    /* The pages are committed as positions are written, so the whole pool
     * is admitted now, before the first token (core/meminfo.c). */
    char what[160];
    if (shape.n_blocks == shape.n_seq * shape.max_blocks) /* every sequence can fill its context */
        snprintf(what, sizeof what, "KV cache of %lld sequences x %lld positions", (long long)o->n_seq,
                 (long long)o->max_ctx);
    else
        snprintf(what, sizeof what, "KV pool of %lld blocks x %lld positions (for %lld sequences of up to %lld)",
                 (long long)shape.n_blocks, (long long)shape.block_positions, (long long)o->n_seq,
                 (long long)o->max_ctx);
    if ((rc = tpi_model_admit(m, bytes, what, err)))
        return rc;
    tpi_kv *kv = malloc(sizeof *kv);
    if (!kv) {
        tpi_mem_release(bytes);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    *kv = shape;
    kv->reserved = bytes;
    if (pool_alloc(kv, bytes)) {
        tpi_kv_free(kv);
        return tpi_err(err, TPI_ENOMEM, "out of memory for a %s (%.1f MiB)", what, (double)bytes / 1048576);
    }
    *out = kv;
    return 0;
}

void tpi_kv_free(tpi_kv *kv)
{
    if (!kv)
        return;
    tpi_mem_release(kv->reserved);
    free(kv->len);
    free(kv->held);
    free(kv->table);
    free(kv->refs);
    free(kv->free_ids);
    free(kv->kb);
    free(kv->vb);
    free(kv->k);
    free(kv->v);
    free(kv);
}

static int32_t *table_of(const tpi_kv *kv, int64_t seq)
{
    return kv->table + (size_t)seq * (size_t)kv->max_blocks;
}

/* Offset of block `id` of layer `layer` in kv->k (and kv->v). */
static size_t block_at(const tpi_kv *kv, int64_t layer, int32_t id)
{
    return ((size_t)layer * (size_t)kv->n_blocks + (size_t)id) * (size_t)kv->block_floats;
}

static int32_t take_block(tpi_kv *kv)
{
    int32_t id = kv->free_ids[--kv->n_free];
    kv->refs[id] = 1;
    return id;
}

static void unref_block(tpi_kv *kv, int32_t id)
{
    if (--kv->refs[id] == 0)
        kv->free_ids[kv->n_free++] = id;
}

/* Copies the first n positions of block src into block dst, every layer and
 * head, keys and values. */
static void copy_block(tpi_kv *kv, int32_t dst, int32_t src, int64_t n)
{
    size_t run = (size_t)n * (size_t)kv->head_dim * sizeof(float);
    size_t head = (size_t)kv->block_positions * (size_t)kv->head_dim;
    for (int64_t l = 0; l < kv->n_layers; l++)
        for (int64_t h = 0; h < kv->n_heads; h++) {
            size_t d = block_at(kv, l, dst) + (size_t)h * head, s = block_at(kv, l, src) + (size_t)h * head;
            memcpy(kv->k + d, kv->k + s, run);
            memcpy(kv->v + d, kv->v + s, run);
        }
}

/* Gives back the blocks of sequence seq from index `keep` on. */
static void drop_blocks(tpi_kv *kv, int64_t seq, int64_t keep)
{
    int32_t *t = table_of(kv, seq);
    for (int64_t i = keep; i < kv->held[seq]; i++)
        unref_block(kv, t[i]);
    if (kv->held[seq] > keep)
        kv->held[seq] = keep;
}

void tpi_kv_clear(tpi_kv *kv, int64_t seq)
{
    for (int64_t s = 0; s < kv->n_seq; s++)
        if (seq < 0 || s == seq) {
            drop_blocks(kv, s, 0);
            kv->len[s] = 0;
        }
}

int64_t tpi_kv_len(const tpi_kv *kv, int64_t seq)
{
    return seq >= 0 && seq < kv->n_seq ? kv->len[seq] : 0;
}

void tpi_kv_get_usage(const tpi_kv *kv, tpi_kv_usage *u)
{
    int64_t used = 0;
    for (int64_t s = 0; s < kv->n_seq; s++)
        used += kv->len[s];
    *u = (tpi_kv_usage){.block_positions = kv->block_positions, .blocks_total = kv->n_blocks,
                        .blocks_free = kv->n_free, .positions_used = used};
}

/* Whether appending to sequence seq writes into a last block it shares. */
static int writes_shared(const tpi_kv *kv, int64_t seq)
{
    int64_t len = kv->len[seq], b = kv->block_positions;
    return len % b && kv->refs[table_of(kv, seq)[len / b]] > 1;
}

int64_t tpi_kv_blocks_needed(const tpi_kv *kv, int64_t seq, int64_t n_new)
{
    if (seq < 0 || seq >= kv->n_seq || n_new <= 0)
        return 0;
    int64_t end = kv->len[seq] + n_new, b = kv->block_positions;
    int64_t blocks = end > kv->max_ctx ? kv->max_blocks : (end + b - 1) / b;
    return blocks - kv->held[seq] + writes_shared(kv, seq);
}

int tpi_kv_reserve(tpi_kv *kv, const int64_t *n_new, tpi_error *err)
{
    int64_t need = 0, worst = -1, worst_need = 0;
    for (int64_t s = 0; s < kv->n_seq; s++) {
        int64_t n = tpi_kv_blocks_needed(kv, s, n_new[s]);
        need += n;
        if (n > worst_need)
            worst = s, worst_need = n;
    }
    if (need > kv->n_free)
        return tpi_err(err, TPI_ELIMIT, "KV pool exhausted: the new positions need %lld blocks of %lld positions "
                       "but %lld of %lld are free (sequence %lld alone needs %lld for %lld new positions after %lld)",
                       (long long)need, (long long)kv->block_positions, (long long)kv->n_free,
                       (long long)kv->n_blocks, (long long)worst, (long long)worst_need,
                       (long long)n_new[worst], (long long)kv->len[worst]);
    for (int64_t s = 0; s < kv->n_seq; s++) {
        if (n_new[s] <= 0)
            continue;
        int32_t *t = table_of(kv, s);
        int64_t b = kv->block_positions, len = kv->len[s], end = len + n_new[s];
        if (writes_shared(kv, s)) { /* copy on write: the others keep the old block */
            int32_t old = t[len / b], id = take_block(kv);
            copy_block(kv, id, old, len % b);
            unref_block(kv, old);
            t[len / b] = id;
        }
        while (kv->held[s] < (end + b - 1) / b)
            t[kv->held[s]++] = take_block(kv);
    }
    return 0;
}

void tpi_kv_release_unused(tpi_kv *kv)
{
    for (int64_t s = 0; s < kv->n_seq; s++)
        drop_blocks(kv, s, (kv->len[s] + kv->block_positions - 1) / kv->block_positions);
}

int tpi_kv_truncate(tpi_kv *kv, int64_t seq, int64_t len, tpi_error *err)
{
    if (seq < 0 || seq >= kv->n_seq || len < 0 || len > kv->len[seq])
        return tpi_err(err, TPI_EINVAL, "KV truncate: sequence %lld to %lld positions (it has %lld of %lld sequences)",
                       (long long)seq, (long long)len, (long long)tpi_kv_len(kv, seq), (long long)kv->n_seq);
    /* A block kept partly and still shared is copied when next written
     * (tpi_kv_reserve), so truncating never needs a free block. */
    drop_blocks(kv, seq, (len + kv->block_positions - 1) / kv->block_positions);
    kv->len[seq] = len;
    return 0;
}

int tpi_kv_copy_prefix(tpi_kv *kv, int64_t dst, int64_t src, int64_t len, tpi_error *err)
{
    if (dst < 0 || dst >= kv->n_seq || src < 0 || src >= kv->n_seq || dst == src || len < 0 || len > kv->len[src])
        return tpi_err(err, TPI_EINVAL, "KV copy: %lld positions of sequence %lld into %lld (%lld sequences, source has %lld)",
                       (long long)len, (long long)src, (long long)dst, (long long)kv->n_seq,
                       (long long)tpi_kv_len(kv, src));
    int64_t b = kv->block_positions, full = len / b, part = len % b;
    /* The partial last block is copied: dst's blocks that only it holds
     * come back first and count as free. */
    int64_t freed = 0;
    for (int64_t i = 0; i < kv->held[dst]; i++)
        freed += kv->refs[table_of(kv, dst)[i]] == 1;
    if (part && kv->n_free + freed < 1)
        return tpi_err(err, TPI_ELIMIT, "KV pool exhausted: copying %lld positions of sequence %lld into %lld needs "
                       "1 block of %lld positions but 0 of %lld are free", (long long)len, (long long)src,
                       (long long)dst, (long long)b, (long long)kv->n_blocks);
    tpi_kv_clear(kv, dst);
    const int32_t *ts = table_of(kv, src);
    int32_t *td = table_of(kv, dst);
    for (int64_t i = 0; i < full; i++) {
        td[i] = ts[i];
        kv->refs[ts[i]]++;
    }
    if (part) {
        td[full] = take_block(kv);
        copy_block(kv, td[full], ts[full], part);
    }
    kv->held[dst] = full + (part > 0);
    kv->len[dst] = len;
    return 0;
}

void tpi_kv_store(tpi_kv *kv, int64_t layer, int64_t seq, int64_t pos, const float *k, const float *v)
{
    int64_t b = kv->block_positions;
    size_t at = block_at(kv, layer, table_of(kv, seq)[pos / b]) + (size_t)(pos % b) * (size_t)kv->head_dim;
    size_t hd = (size_t)kv->head_dim, head = (size_t)b * hd;
    for (int64_t h = 0; h < kv->n_heads; h++) {
        memcpy(kv->k + at + (size_t)h * head, k + (size_t)h * hd, hd * sizeof *k);
        memcpy(kv->v + at + (size_t)h * head, v + (size_t)h * hd, hd * sizeof *v);
    }
}

void tpi_kv_block_bases(tpi_kv *kv, int64_t layer, int64_t seq, const float *const **k, const float *const **v)
{
    const int32_t *t = table_of(kv, seq);
    for (int64_t i = 0; i < kv->held[seq]; i++) {
        kv->kb[i] = kv->k + block_at(kv, layer, t[i]);
        kv->vb[i] = kv->v + block_at(kv, layer, t[i]);
    }
    *k = kv->kb;
    *v = kv->vb;
}
