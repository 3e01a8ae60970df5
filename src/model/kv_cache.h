#ifndef TPI_MODEL_KV_CACHE_H
#define TPI_MODEL_KV_CACHE_H
/* The KV cache of one rank: the keys and values of its local KV heads for
 * every layer and sequence (DESIGN.md "Generation"). tpi_kv_create, _free,
 * _clear and _len are public (tpinfer.h); the layout and the accessors below
 * are for the forward pass. */
#include <stdint.h>

#include "tpinfer.h"

struct tpi_kv {
    int64_t n_seq, max_ctx, n_layers;
    int64_t n_heads, head_dim; /* local KV heads */
    int64_t *len;              /* [n_seq] positions cached */
    /* [layer][seq][local KV head][max_ctx][head_dim]: a head's positions are
     * contiguous, so a decode step streams each head's keys and values
     * rather than gathering head_dim floats from every position's row, which
     * the hardware prefetcher follows poorly. */
    float *k, *v;
    int64_t reserved; /* bytes admitted (core/meminfo.h), released by tpi_kv_free */
};

/* Keys (values) of sequence `seq` in layer `layer`: [n_heads][max_ctx][head_dim]. */
float *tpi_kv_keys(const tpi_kv *kv, int64_t layer, int64_t seq);
float *tpi_kv_values(const tpi_kv *kv, int64_t layer, int64_t seq);

/* Stores position `pos` of sequence `seq` in layer `layer`: k and v are
 * [n_heads * head_dim], the heads side by side as the projections give them. */
void tpi_kv_store(tpi_kv *kv, int64_t layer, int64_t seq, int64_t pos, const float *k, const float *v);
#endif
