/* Q4_K and Q6_K weights packed eight rows at a time (quant_pack.h), and the
 * plain C reference kernels on the packed layout.
 *
 * In both types the quants of the eight rows' block b are interleaved four
 * bytes at a time: chunk c of a packed array holds row 0's bytes [4c, 4c +
 * 4), then row 1's, ... row 7's (32 bytes). One 32-byte load so gives eight
 * rows x four consecutive k, which one vpdpbusd (or vpmaddubsw) multiplies
 * with four activation bytes broadcast, each int32 lane summing one row.
 * The files' own byte order within a row is kept, so their nibble and
 * 2-bit splits unpack with the same masks and shifts as the plain blocks.
 * Scales are grouped per sub-block pair, so one widening load gives the
 * eight rows' scales of two sub-blocks as int16 pairs (a vpmaddwd operand
 * against two activation sums) and a mask or shift gives each as int32.
 *
 * Q4_K x8 block, 1184 bytes for 8 x 256 weights (4.625 bits a weight, 2.8 %
 * above the file's 4.5: the 6-bit scales and mins are stored unpacked, one
 * byte each, so that a group unpacks none of them; the other choice, the
 * eight rows' 12-byte forms unpacked and transposed per x8 block, would add
 * roughly 5 % to the instructions of a decode (m = 1) kernel, an estimate,
 * not measured):
 *   [0, 1024)     qs: 32 chunks; chunk 8 p + t holds each row's qs[32 p + 4 t
 *                 .. + 4): low nibbles are sub-block 2 p's quants 4 t .. 4 t
 *                 + 3, high nibbles sub-block 2 p + 1's
 *   [1024, 1040)  d[8]     fp16, row i's super-block scale
 *   [1040, 1056)  dmin[8]  fp16
 *   [1056, 1120)  sc[4][8][2]  sub-block 2 p + h's 6-bit scale of row i at
 *                 [p][i][h]
 *   [1120, 1184)  mn[4][8][2]  the mins, the same way
 * Q6_K x8 block, 1680 bytes for 8 x 256 weights (6.5625 bits, as the file):
 *   [0, 1024)     ql: 32 chunks of each row's ql[4 c .. + 4)
 *   [1024, 1536)  qh: 16 chunks of each row's qh[4 c .. + 4)
 *   [1536, 1552)  d[8]  fp16
 *   [1552, 1680)  sc[8][8][2]  int8, group 2 p + h's scale of row i at
 *                 [p][i][h]
 * Rows past the matrix's end are zero blocks: zero scales, zero outputs. */
#include <string.h>

#include "backend/cpu/quant_pack.h"
#include "backend/cpu/quant_pack_k_layout.h"
#include "core/quant.h"

size_t tpi_qpack_group_bytes_k(tpi_dtype t, int64_t nb)
{
    switch (t) {
    case TPI_Q4_K: return (size_t)nb * QPK4_BYTES;
    case TPI_Q6_K: return (size_t)nb * QPK6_BYTES;
    default: return 0;
    }
}

/* Sub-block j's 6-bit scale and min from the 12 packed bytes (core/quant.c's
 * layout), and back. */
static void scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 15) | (q[j - 4] >> 6) << 4);
        *m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

static void pack_scales(const uint8_t *sc, const uint8_t *m, uint8_t *q)
{
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        q[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* Row i's bytes src[0, n) into the 4-byte chunks of an interleaved array. */
static void interleave(uint8_t *dst, const uint8_t *src, int n, int i)
{
    for (int c = 0; c < n / 4; c++)
        memcpy(dst + 32 * c + 4 * i, src + 4 * c, 4);
}

static void deinterleave(uint8_t *dst, const uint8_t *src, int n, int i)
{
    for (int c = 0; c < n / 4; c++)
        memcpy(dst + 4 * c, src + 32 * c + 4 * i, 4);
}

static void pack_q4_k(const tpi_block_q4_k *b, int i, uint8_t *x)
{
    interleave(x + QPK4_QS, b->qs, TPI_QK_K / 2, i);
    memcpy(x + QPK4_D + 2 * i, &b->d, 2);
    memcpy(x + QPK4_DMIN + 2 * i, &b->dmin, 2);
    for (int j = 0; j < 8; j++)
        scale_min(j, b->scales, x + QPK4_SC + 16 * (j / 2) + 2 * i + j % 2, x + QPK4_MN + 16 * (j / 2) + 2 * i + j % 2);
}

static void unpack_q4_k(const uint8_t *x, int i, tpi_block_q4_k *b)
{
    uint8_t sc[8], m[8];
    deinterleave(b->qs, x + QPK4_QS, TPI_QK_K / 2, i);
    memcpy(&b->d, x + QPK4_D + 2 * i, 2);
    memcpy(&b->dmin, x + QPK4_DMIN + 2 * i, 2);
    for (int j = 0; j < 8; j++) {
        sc[j] = x[QPK4_SC + 16 * (j / 2) + 2 * i + j % 2];
        m[j] = x[QPK4_MN + 16 * (j / 2) + 2 * i + j % 2];
    }
    pack_scales(sc, m, b->scales);
}

static void pack_q6_k(const tpi_block_q6_k *b, int i, uint8_t *x)
{
    interleave(x + QPK6_QL, b->ql, TPI_QK_K / 2, i);
    interleave(x + QPK6_QH, b->qh, TPI_QK_K / 4, i);
    memcpy(x + QPK6_D + 2 * i, &b->d, 2);
    for (int g = 0; g < 16; g++)
        memcpy(x + QPK6_SC + 16 * (g / 2) + 2 * i + g % 2, &b->scales[g], 1);
}

static void unpack_q6_k(const uint8_t *x, int i, tpi_block_q6_k *b)
{
    deinterleave(b->ql, x + QPK6_QL, TPI_QK_K / 2, i);
    deinterleave(b->qh, x + QPK6_QH, TPI_QK_K / 4, i);
    memcpy(&b->d, x + QPK6_D + 2 * i, 2);
    for (int g = 0; g < 16; g++)
        memcpy(&b->scales[g], x + QPK6_SC + 16 * (g / 2) + 2 * i + g % 2, 1);
}

void tpi_qpack_k(tpi_dtype t, const void *src, size_t src_row_bytes, int64_t rows, int64_t nb, void *dst)
{
    size_t xb = t == TPI_Q4_K ? QPK4_BYTES : t == TPI_Q6_K ? QPK6_BYTES : 0;
    if (!xb)
        return;
    const tpi_block_q4_k zero4 = {0};
    const tpi_block_q6_k zero6 = {0};
    uint8_t *x = dst;
    for (int64_t g = 0; g < (rows + 7) / 8; g++)
        for (int64_t b = 0; b < nb; b++, x += xb)
            for (int i = 0; i < 8; i++) {
                int64_t r = 8 * g + i;
                const uint8_t *row = (const uint8_t *)src + (size_t)r * src_row_bytes;
                if (t == TPI_Q4_K)
                    pack_q4_k(r < rows ? (const tpi_block_q4_k *)(const void *)row + b : &zero4, i, x);
                else
                    pack_q6_k(r < rows ? (const tpi_block_q6_k *)(const void *)row + b : &zero6, i, x);
            }
}

void tpi_qunpack_row_k(tpi_dtype t, const void *group, int64_t nb, int i, void *dst)
{
    const uint8_t *x = group;
    for (int64_t b = 0; b < nb; b++) {
        if (t == TPI_Q4_K)
            unpack_q4_k(x + (size_t)b * QPK4_BYTES, i, (tpi_block_q4_k *)dst + b);
        else if (t == TPI_Q6_K)
            unpack_q6_k(x + (size_t)b * QPK6_BYTES, i, (tpi_block_q6_k *)dst + b);
    }
}

/* ---- reference kernels: element by element from the packed layout ---- */

static uint16_t u16_at(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Row i's quant byte n of an interleaved array (the row's own byte n). */
static uint8_t at(const uint8_t *arr, int i, int n)
{
    return arr[32 * (n / 4) + 4 * i + n % 4];
}

/* d * sum_j sc_j * sum(q * a) - dmin * sum_j m_j * (sums of a), as
 * quant_ref.c's dot_q4_k, with the activations' sums of 16 from bsums. */
static float dot_q4_k(int64_t nb, const uint8_t *x, int i, const tpi_q8k *a)
{
    float acc = 0;
    for (int64_t b = 0; b < nb; b++, x += QPK4_BYTES) {
        int32_t s = 0, ms = 0;
        for (int j = 0; j < 8; j++) {
            int32_t sj = 0;
            for (int l = 0; l < 32; l++) {
                uint8_t q = at(x + QPK4_QS, i, 32 * (j / 2) + l);
                sj += (j % 2 ? q >> 4 : q & 15) * a[b].qs[32 * j + l];
            }
            s += x[QPK4_SC + 16 * (j / 2) + 2 * i + j % 2] * sj;
            ms += x[QPK4_MN + 16 * (j / 2) + 2 * i + j % 2] * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        acc += tpi_f16_to_f32(u16_at(x + QPK4_D + 2 * i)) * a[b].d * (float)s -
               tpi_f16_to_f32(u16_at(x + QPK4_DMIN + 2 * i)) * a[b].d * (float)ms;
    }
    return acc;
}

/* Quant e (0..255) of row i, 0..63, from the file's ql/qh split. */
static int q6_at(const uint8_t *x, int i, int e)
{
    int h = e / 128, l = e % 32, part = e % 128 / 32;
    int lo = at(x + QPK6_QL, i, 64 * h + l + 32 * (part % 2));
    lo = part < 2 ? lo & 15 : lo >> 4;
    return lo | ((at(x + QPK6_QH, i, 32 * h + l) >> (2 * part)) & 3) << 4;
}

static float dot_q6_k(int64_t nb, const uint8_t *x, int i, const tpi_q8k *a)
{
    float acc = 0;
    for (int64_t b = 0; b < nb; b++, x += QPK6_BYTES) {
        int32_t s = 0;
        for (int g = 0; g < 16; g++) {
            int32_t sg = 0;
            for (int l = 0; l < 16; l++)
                sg += (q6_at(x, i, 16 * g + l) - 32) * a[b].qs[16 * g + l];
            s += (int8_t)x[QPK6_SC + 16 * (g / 2) + 2 * i + g % 2] * sg;
        }
        acc += tpi_f16_to_f32(u16_at(x + QPK6_D + 2 * i)) * a[b].d * (float)s;
    }
    return acc;
}

#define REF_QPDOT(name)                                                                                    \
    static void ref_##name(int64_t nb, const void *g, const void *a, size_t a_stride, int m, float *y,    \
                           int64_t y_stride)                                                               \
    {                                                                                                      \
        for (int r = 0; r < m; r++)                                                                        \
            for (int i = 0; i < TPI_QPACK_ROWS; i++)                                                       \
                y[r * y_stride + i] =                                                                      \
                    dot_##name(nb, g, i, (const tpi_q8k *)(const void *)((const uint8_t *)a + r * a_stride)); \
    }
REF_QPDOT(q4_k)
REF_QPDOT(q6_k)

tpi_qpdot_fn tpi_ref_qpdot_k(tpi_dtype t)
{
    switch (t) {
    case TPI_Q4_K: return ref_q4_k;
    case TPI_Q6_K: return ref_q6_k;
    default: return NULL;
    }
}
