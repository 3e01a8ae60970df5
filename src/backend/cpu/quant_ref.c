/* The plain C reference of the quantized matmul kernels: the integer dot
 * products written out element by element from the block layouts
 * (core/quant.h), one weight row and one activation row at a time. The
 * SIMD kernels (quant_simd.h) are tested against these. */
#include <stdlib.h>

#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_pack.h"
#include "core/quant.h"

static float dot_q8_0(int64_t nb, const tpi_block_q8_0 *w, const tpi_q8a8 *a)
{
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *aq = a[b / 8].qs + 32 * (b % 8);
        int32_t s = 0;
        for (int j = 0; j < 32; j++)
            s += w[b].qs[j] * aq[j];
        acc += tpi_f16_to_f32(w[b].d) * a[b / 8].d[b % 8] * (float)s;
    }
    return acc;
}

static float dot_q4_0(int64_t nb, const tpi_block_q4_0 *w, const tpi_q8a8 *a)
{
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *aq = a[b / 8].qs + 32 * (b % 8);
        int32_t s = 0;
        for (int j = 0; j < 16; j++)
            s += ((w[b].qs[j] & 15) - 8) * aq[j] + ((w[b].qs[j] >> 4) - 8) * aq[j + 16];
        acc += tpi_f16_to_f32(w[b].d) * a[b / 8].d[b % 8] * (float)s;
    }
    return acc;
}

/* Scale and min of sub-block j from the 12 packed bytes (as core/quant.c). */
static void scale_min(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* x = d * sc_j * q - dmin * m_j over sub-blocks j of 32: the mins multiply
 * the activations' sums. */
static float dot_q4_k(int64_t nb, const tpi_block_q4_k *w, const tpi_q8k *a)
{
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t s = 0, ms = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min(j, w[b].scales, &sc, &m);
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            int32_t sj = 0;
            for (int l = 0; l < 32; l++)
                sj += (j % 2 ? q[l] >> 4 : q[l] & 15) * a[b].qs[32 * j + l];
            s += sc * sj;
            ms += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        acc += tpi_f16_to_f32(w[b].d) * a[b].d * (float)s - tpi_f16_to_f32(w[b].dmin) * a[b].d * (float)ms;
    }
    return acc;
}

/* Quant e (0..255) of a Q6_K block, 0..63 (core/quant.c's layout). */
static int q6_at(const tpi_block_q6_k *w, int e)
{
    int h = e / 128, l = e % 32, part = e % 128 / 32;
    const uint8_t *ql = w->ql + 64 * h, *qh = w->qh + 32 * h;
    int lo = part == 0 ? ql[l] & 15 : part == 1 ? ql[l + 32] & 15 : part == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
    return lo | ((qh[l] >> (2 * part)) & 3) << 4;
}

static float dot_q6_k(int64_t nb, const tpi_block_q6_k *w, const tpi_q8k *a)
{
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t s = 0;
        for (int g = 0; g < 16; g++) {
            int32_t sg = 0;
            for (int l = 0; l < 16; l++)
                sg += (q6_at(&w[b], 16 * g + l) - 32) * a[b].qs[16 * g + l];
            s += w[b].scales[g] * sg;
        }
        acc += tpi_f16_to_f32(w[b].d) * a[b].d * (float)s;
    }
    return acc;
}

#define REF_DOT(name, wtype, atype)                                                                        \
    static void ref_##name(int64_t nb, const void *w, const void *a, size_t a_stride, int m, float *y,    \
                           int64_t y_stride)                                                               \
    {                                                                                                      \
        for (int r = 0; r < m; r++)                                                                        \
            y[r * y_stride] =                                                                              \
                dot_##name(nb, (const wtype *)w, (const atype *)(const void *)((const uint8_t *)a + r * a_stride)); \
    }
REF_DOT(q8_0, tpi_block_q8_0, tpi_q8a8)
REF_DOT(q4_0, tpi_block_q4_0, tpi_q8a8)
REF_DOT(q4_k, tpi_block_q4_k, tpi_q8k)
REF_DOT(q6_k, tpi_block_q6_k, tpi_q8k)

tpi_qdot_fn tpi_ref_qdot(tpi_dtype t)
{
    switch (t) {
    case TPI_Q8_0: return ref_q8_0;
    case TPI_Q4_0: return ref_q4_0;
    case TPI_Q4_K: return ref_q4_k;
    case TPI_Q6_K: return ref_q6_k;
    default: return NULL;
    }
}

/* Row o of w as plain blocks: in place, or unpacked into buf from w's
 * packed groups (quant_pack.h) when w was packed, whose plain rows the
 * loader may have freed. */
static const uint8_t *weight_row(const tpi_weight *w, int64_t nb, int64_t o, uint8_t *buf)
{
    if (!tpi_qpack_is_packed(w)) {
        size_t row_bytes = (size_t)nb * (size_t)tpi_dtype_block_bytes(w->dtype);
        return (const uint8_t *)w->data + (size_t)o * row_bytes;
    }
    size_t gb = tpi_qpack_group_bytes(w->dtype, nb);
    tpi_qunpack_row(w->dtype, (const uint8_t *)w->packed + (size_t)(o / TPI_QPACK_ROWS) * gb, nb,
                    (int)(o % TPI_QPACK_ROWS), buf);
    return buf;
}

/* Each x row is quantized, then dotted with every weight row: no tiling and
 * no threads, so that it shares nothing with the driver it checks. Out of
 * memory leaves y zero. */
void tpi_qmatmul_ref(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    int64_t nb = tpi_qweight_blocks(w);
    size_t arb = tpi_qact_row_bytes(w->dtype, nb);
    uint8_t *act = malloc(arb * (size_t)(n > 0 ? n : 1));
    uint8_t *row = malloc((size_t)nb * (size_t)tpi_dtype_block_bytes(w->dtype) + 1);
    tpi_qdot_fn dot = tpi_ref_qdot(w->dtype);
    for (int64_t i = 0; i < n * w->rows; i++)
        y[i] = 0;
    if (act && row && dot) {
        for (int64_t i = 0; i < n; i++)
            tpi_qact_quantize(w->dtype, x + i * w->cols, w->cols, w->k_off, nb, act + (size_t)i * arb);
        for (int64_t o = 0; o < w->rows; o++) {
            const uint8_t *wr = weight_row(w, nb, o, row);
            for (int64_t i = 0; i < n; i++)
                dot(nb, wr, act + (size_t)i * arb, 0, 1, y + i * w->rows + o, 1);
        }
    }
    free(row);
    free(act);
}
