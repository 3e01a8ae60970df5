/* Q8_0 and Q4_0 weights packed eight rows at a time (quant_pack.h), and the
 * dispatch of the packing functions to the K types' half (quant_pack_k.c).
 *
 * An x8 block holds block b of the group's eight rows: their fp16 scales
 * d[8] (16 bytes, one vcvtph2ps), then the quants interleaved four bytes at
 * a time, qs[32 t + 4 i + j] = row i's byte 4 t + j of its block:
 *  - Q8_0 (272 bytes): t = 0..7, the bytes are the quants 4 t + j;
 *  - Q4_0 (144 bytes): t = 0..3, the byte's low nibble is quant 4 t + j,
 *    its high nibble quant 16 + 4 t + j, as in the file's block.
 * So a 32-byte load is eight rows times four consecutive quants, and one
 * vpdpbusd against the activation's four quants broadcast to the eight
 * lanes adds them to eight rows' sums at once; Q4_0's two nibbles of a
 * load meet the activation quants 4 t.. and 16 + 4 t.., both at byte
 * offset 4 u (u = t, t + 4) of the activation block. The bytes are the
 * file's, moved, not transformed: Q8_0's vpdpbusd needs unsigned weights
 * (w ^ 0x80, one xor per load shared by all activation rows) while
 * AVX2's vpmaddubsw needs |w| and the signs moved to the activations, so
 * no one transform suits both sets, and the plain form keeps unpacking a
 * copy. Padding rows are all zero: a zero scale makes their sums zero. */
#include <string.h>

#include "backend/cpu/quant_pack.h"
#include "core/quant.h"

/* Bytes of quants in one block of a row (the x8 block has eight times as
 * many, after 16 bytes of scales). */
static size_t quant_bytes(tpi_dtype t)
{
    return t == TPI_Q8_0 ? sizeof(((tpi_block_q8_0 *)0)->qs) : sizeof(((tpi_block_q4_0 *)0)->qs);
}

static int is_32(tpi_dtype t)
{
    return t == TPI_Q8_0 || t == TPI_Q4_0;
}

size_t tpi_qpack_group_bytes(tpi_dtype t, int64_t nb)
{
    if (!is_32(t))
        return tpi_qpack_group_bytes_k(t, nb);
    return (size_t)nb * (2 * TPI_QPACK_ROWS + TPI_QPACK_ROWS * quant_bytes(t));
}

size_t tpi_qpack_weight_bytes(const tpi_weight *w)
{
    int64_t groups = (w->rows + TPI_QPACK_ROWS - 1) / TPI_QPACK_ROWS;
    return tpi_qpack_group_bytes(w->dtype, tpi_qweight_blocks(w)) * (size_t)(groups > 0 ? groups : 0);
}

int tpi_qpack_is_packed(const tpi_weight *w)
{
    size_t bytes = tpi_qpack_weight_bytes(w);
    return w->packed && bytes && w->packed_bytes == (int64_t)bytes;
}

/* Row i's block (scale at its start, quants after) into x8 block xb. */
static void put_block(uint8_t *xb, int i, const uint8_t *blk, size_t qb)
{
    memcpy(xb + 2 * i, blk, 2);
    for (size_t t = 0; t < qb / 4; t++)
        memcpy(xb + 2 * TPI_QPACK_ROWS + 32 * t + 4 * (size_t)i, blk + 2 + 4 * t, 4);
}

static void get_block(uint8_t *blk, const uint8_t *xb, int i, size_t qb)
{
    memcpy(blk, xb + 2 * i, 2);
    for (size_t t = 0; t < qb / 4; t++)
        memcpy(blk + 2 + 4 * t, xb + 2 * TPI_QPACK_ROWS + 32 * t + 4 * (size_t)i, 4);
}

void tpi_qpack(tpi_dtype t, const void *src, size_t src_row_bytes, int64_t rows, int64_t nb, void *dst)
{
    if (!is_32(t)) {
        tpi_qpack_k(t, src, src_row_bytes, rows, nb, dst);
        return;
    }
    size_t qb = quant_bytes(t), bb = 2 + qb, xbytes = 2 * TPI_QPACK_ROWS + TPI_QPACK_ROWS * qb;
    int64_t groups = (rows + TPI_QPACK_ROWS - 1) / TPI_QPACK_ROWS;
    memset(dst, 0, (size_t)groups * tpi_qpack_group_bytes(t, nb));
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)src + (size_t)r * src_row_bytes;
        uint8_t *g = (uint8_t *)dst + (size_t)(r / TPI_QPACK_ROWS) * tpi_qpack_group_bytes(t, nb);
        for (int64_t b = 0; b < nb; b++)
            put_block(g + (size_t)b * xbytes, (int)(r % TPI_QPACK_ROWS), row + (size_t)b * bb, qb);
    }
}

void tpi_qunpack_row(tpi_dtype t, const void *group, int64_t nb, int i, void *dst)
{
    if (!is_32(t)) {
        tpi_qunpack_row_k(t, group, nb, i, dst);
        return;
    }
    size_t qb = quant_bytes(t), bb = 2 + qb, xbytes = 2 * TPI_QPACK_ROWS + TPI_QPACK_ROWS * qb;
    for (int64_t b = 0; b < nb; b++)
        get_block((uint8_t *)dst + (size_t)b * bb, (const uint8_t *)group + (size_t)b * xbytes, i, qb);
}

/* ---- the reference kernels: each (row, activation row) pair's dot read
 * straight from the packed bytes, in quant_ref.c's order of operations ---- */

static int quant_at(tpi_dtype t, const uint8_t *qs, int i, int k)
{
    if (t == TPI_Q8_0)
        return (int8_t)qs[32 * (k / 4) + 4 * i + k % 4];
    int byte = qs[32 * (k % 16 / 4) + 4 * i + k % 4];
    return (k < 16 ? byte & 15 : byte >> 4) - 8;
}

static float dot_packed(tpi_dtype t, int64_t nb, const uint8_t *g, int i, const tpi_q8a8 *a)
{
    size_t xbytes = 2 * TPI_QPACK_ROWS + TPI_QPACK_ROWS * quant_bytes(t);
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = g + (size_t)b * xbytes;
        const int8_t *aq = a[b / 8].qs + 32 * (b % 8);
        int32_t s = 0;
        for (int k = 0; k < 32; k++)
            s += quant_at(t, xb + 2 * TPI_QPACK_ROWS, i, k) * aq[k];
        uint16_t d;
        memcpy(&d, xb + 2 * i, 2);
        acc += tpi_f16_to_f32(d) * a[b / 8].d[b % 8] * (float)s;
    }
    return acc;
}

#define REF_PDOT(name, type)                                                                               \
    static void name(int64_t nb, const void *g, const void *a, size_t as, int m, float *y, int64_t ys)     \
    {                                                                                                      \
        for (int r = 0; r < m; r++)                                                                        \
            for (int i = 0; i < TPI_QPACK_ROWS; i++)                                                       \
                y[r * ys + i] = dot_packed(type, nb, g, i,                                                 \
                                           (const tpi_q8a8 *)(const void *)((const uint8_t *)a + r * as)); \
    }
REF_PDOT(ref_p8_0, TPI_Q8_0)
REF_PDOT(ref_p4_0, TPI_Q4_0)

tpi_qpdot_fn tpi_ref_qpdot(tpi_dtype t)
{
    switch (t) {
    case TPI_Q8_0: return ref_p8_0;
    case TPI_Q4_0: return ref_p4_0;
    default: return tpi_ref_qpdot_k(t);
    }
}
