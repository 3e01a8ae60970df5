/* The KV cache: one block per (layer, sequence), head-major (kv_cache.h). */
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

/* x86-64's user address space with 4-level paging: a larger cache cannot
 * be mapped, so it is refused rather than handed to the allocator. */
#define KV_MAX_BYTES ((int64_t)1 << 47)

int tpi_kv_create(tpi_kv **out, const tpi_model *m, int64_t n_seq, int64_t max_ctx, tpi_error *err)
{
    tpi_kv_opts o = {.n_seq = n_seq, .max_ctx = max_ctx};
    return tpi_kv_create_pool(out, m, &o, err);
}

/* One block of max_ctx positions per sequence until the cache is paged:
 * pool_positions and block_positions are accepted and not yet used. */
int tpi_kv_create_pool(tpi_kv **out, const tpi_model *m, const tpi_kv_opts *o, tpi_error *err)
{
    int64_t n_seq = o->n_seq, max_ctx = o->max_ctx;
    *out = NULL;
    if (n_seq < 1 || max_ctx < 1)
        return tpi_err(err, TPI_EINVAL, "KV cache needs at least one sequence and one position (got %lld x %lld)",
                       (long long)n_seq, (long long)max_ctx);
    /* floats per K (or V) cache: layers x sequences x positions x local KV
     * width, in bytes too, checked before any of it is allocated */
    const int64_t factors[] = {m->cfg.n_layers, n_seq, max_ctx, m->sh.n_kv_heads, m->cfg.head_dim,
                               (int64_t)sizeof(float)};
    int64_t bytes;
    if (tpi_mul_all(factors, 6, &bytes) || bytes > KV_MAX_BYTES)
        return tpi_err(err, TPI_ELIMIT, "KV cache of %lld layers x %lld sequences x %lld positions x %lld KV heads "
                       "x %lld: more than 2^47 bytes each for keys and values; give a smaller context",
                       (long long)m->cfg.n_layers, (long long)n_seq, (long long)max_ctx,
                       (long long)m->sh.n_kv_heads, (long long)m->cfg.head_dim);
    size_t n = (size_t)bytes / sizeof(float);
    /* The pages are committed as positions are written, so the whole cache
     * is admitted now, before the first token (core/meminfo.c). */
    char what[96];
    snprintf(what, sizeof what, "KV cache of %lld sequences x %lld positions", (long long)n_seq, (long long)max_ctx);
    int rc = tpi_model_admit(m, 2 * bytes, what, err);
    if (rc)
        return rc;
    tpi_kv *kv = calloc(1, sizeof *kv);
    if (!kv) {
        tpi_mem_release(2 * bytes);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    kv->reserved = 2 * bytes;
    kv->n_seq = n_seq;
    kv->max_ctx = max_ctx;
    kv->n_layers = m->cfg.n_layers;
    kv->n_heads = m->sh.n_kv_heads;
    kv->head_dim = m->cfg.head_dim;
    kv->len = calloc((size_t)n_seq, sizeof *kv->len);
    /* decode reads the whole cache per token: 2 MB pages, as the weights */
    kv->k = tpi_alloc_stream(n * sizeof(float) + 1);
    kv->v = tpi_alloc_stream(n * sizeof(float) + 1);
    if (!kv->len || !kv->k || !kv->v) {
        tpi_kv_free(kv);
        return tpi_err(err, TPI_ENOMEM, "out of memory for a KV cache of %lld sequences x %lld positions (%.1f MiB)",
                       (long long)n_seq, (long long)max_ctx, 2.0 * (double)n * 4 / 1048576);
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
    free(kv->k);
    free(kv->v);
    free(kv);
}

void tpi_kv_clear(tpi_kv *kv, int64_t seq)
{
    for (int64_t s = 0; s < kv->n_seq; s++)
        if (seq < 0 || s == seq)
            kv->len[s] = 0;
}

int64_t tpi_kv_len(const tpi_kv *kv, int64_t seq)
{
    return seq >= 0 && seq < kv->n_seq ? kv->len[seq] : 0;
}

static size_t block_offset(const tpi_kv *kv, int64_t layer, int64_t seq)
{
    size_t block = (size_t)kv->max_ctx * (size_t)(kv->n_heads * kv->head_dim);
    return ((size_t)layer * (size_t)kv->n_seq + (size_t)seq) * block;
}

float *tpi_kv_keys(const tpi_kv *kv, int64_t layer, int64_t seq)
{
    return kv->k + block_offset(kv, layer, seq);
}

float *tpi_kv_values(const tpi_kv *kv, int64_t layer, int64_t seq)
{
    return kv->v + block_offset(kv, layer, seq);
}

void tpi_kv_store(tpi_kv *kv, int64_t layer, int64_t seq, int64_t pos, const float *k, const float *v)
{
    float *kc = tpi_kv_keys(kv, layer, seq), *vc = tpi_kv_values(kv, layer, seq);
    size_t hd = (size_t)kv->head_dim;
    for (int64_t h = 0; h < kv->n_heads; h++) {
        size_t at = ((size_t)h * (size_t)kv->max_ctx + (size_t)pos) * hd;
        memcpy(kc + at, k + (size_t)h * hd, hd * sizeof *kc);
        memcpy(vc + at, v + (size_t)h * hd, hd * sizeof *vc);
    }
}

void tpi_kv_get_usage(const tpi_kv *kv, tpi_kv_usage *u)
{
    int64_t used = 0, busy = 0;
    for (int64_t s = 0; s < kv->n_seq; s++) {
        used += kv->len[s];
        busy += kv->len[s] > 0;
    }
    *u = (tpi_kv_usage){.block_positions = kv->max_ctx, .blocks_total = kv->n_seq,
                        .blocks_free = kv->n_seq - busy, .positions_used = used};
}

int64_t tpi_kv_blocks_needed(const tpi_kv *kv, int64_t seq, int64_t n_new)
{
    return seq >= 0 && seq < kv->n_seq && kv->len[seq] == 0 && n_new > 0;
}

int tpi_kv_truncate(tpi_kv *kv, int64_t seq, int64_t len, tpi_error *err)
{
    if (seq < 0 || seq >= kv->n_seq || len < 0 || len > kv->len[seq])
        return tpi_err(err, TPI_EINVAL, "KV truncate: sequence %lld to %lld positions (it has %lld of %lld sequences)",
                       (long long)seq, (long long)len, (long long)tpi_kv_len(kv, seq), (long long)kv->n_seq);
    kv->len[seq] = len;
    return 0;
}

int tpi_kv_copy_prefix(tpi_kv *kv, int64_t dst, int64_t src, int64_t len, tpi_error *err)
{
    if (dst < 0 || dst >= kv->n_seq || src < 0 || src >= kv->n_seq || dst == src || len < 0 || len > kv->len[src])
        return tpi_err(err, TPI_EINVAL, "KV copy: %lld positions of sequence %lld into %lld (%lld sequences, source has %lld)",
                       (long long)len, (long long)src, (long long)dst, (long long)kv->n_seq,
                       (long long)tpi_kv_len(kv, src));
    size_t run = (size_t)len * (size_t)kv->head_dim * sizeof(float);
    for (int64_t l = 0; l < kv->n_layers; l++)
        for (int64_t h = 0; h < kv->n_heads; h++) {
            size_t at = (size_t)h * (size_t)kv->max_ctx * (size_t)kv->head_dim;
            memcpy(tpi_kv_keys(kv, l, dst) + at, tpi_kv_keys(kv, l, src) + at, run);
            memcpy(tpi_kv_values(kv, l, dst) + at, tpi_kv_values(kv, l, src) + at, run);
        }
    kv->len[dst] = len;
    return 0;
}
