#ifndef TPI_MODEL_KV_CACHE_H
#define TPI_MODEL_KV_CACHE_H
/* The KV cache of one rank, paged: a pool of blocks of block_positions
 * positions holding the keys and values of its local KV heads, shared by all
 * sequences through per-sequence block tables (DESIGN.md "KV cache"). The
 * public calls are in tpinfer.h; the accessors below are for the forward
 * pass. */
#include <stdint.h>

#include "tpinfer.h"

struct tpi_kv {
    int64_t n_seq, max_ctx, n_layers;
    int64_t n_heads, head_dim; /* local KV heads */
    int64_t block_positions;   /* B, positions per block */
    int64_t n_blocks;          /* blocks in the pool */
    int64_t max_blocks;        /* blocks one sequence may hold: ceil(max_ctx / B) */
    int64_t block_floats;      /* floats of one block of one layer: n_heads * B * head_dim */
    int64_t *len;              /* [n_seq] positions cached */
    int64_t *held;             /* [n_seq] blocks in each table: ceil(len / B) between forwards */
    int32_t *table;            /* [n_seq][max_blocks] block ids */
    int32_t *refs;             /* [n_blocks] tables holding each block (0: free) */
    int32_t *free_ids;         /* [n_blocks] a stack of free ids, n_free of them */
    int64_t n_free;
    /* [layer][block][local KV head][B][head_dim]: inside a block a head's
     * positions are contiguous, so a decode step streams each head's keys and
     * values a block at a time rather than gathering head_dim floats from
     * every position's row, which the hardware prefetcher follows poorly. */
    float *k, *v;
    const float **kb, **vb; /* [max_blocks] block bases handed to the attention kernels */
    int64_t reserved;       /* bytes admitted (core/meminfo.h), released by tpi_kv_free */
};

/* Makes room for n_new[s] more positions of every sequence s: checks first
 * that the pool has the blocks all of them need (the new blocks, and a copy
 * of each last block still shared that a sequence is about to write into),
 * then takes them. TPI_ELIMIT naming the numbers, and nothing changed, when
 * it has not. */
int tpi_kv_reserve(tpi_kv *kv, const int64_t *n_new, tpi_error *err);

/* Gives back the blocks every sequence holds past its length (after a
 * forward that reserved and then failed). */
void tpi_kv_release_unused(tpi_kv *kv);

/* Stores position `pos` of sequence `seq` in layer `layer` (its block
 * reserved and not shared): k and v are [n_heads * head_dim], the heads side
 * by side as the projections give them. */
void tpi_kv_store(tpi_kv *kv, int64_t layer, int64_t seq, int64_t pos, const float *k, const float *v);

/* The bases of the blocks sequence `seq` holds in layer `layer`, as the
 * attention kernels read them (backend.h tpi_attn_shape, with
 * block_positions B and kv_head_stride B * head_dim): arrays kept in kv,
 * valid until the next call. */
void tpi_kv_block_bases(tpi_kv *kv, int64_t layer, int64_t seq, const float *const **k, const float *const **v);
#endif
