/* Block dequantization (gguf-py's order of float32 operations) and the
 * reference quantizers. */
#include "core/quant.h"

#include <string.h>

static float h2f(uint16_t h)
{
    return tpi_f16_to_f32(h);
}

static void dequant_q8_0(const tpi_block_q8_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += TPI_QK8_0) {
        float d = h2f(b[i].d);
        for (int j = 0; j < TPI_QK8_0; j++)
            y[j] = d * (float)b[i].qs[j];
    }
}

static void dequant_q4_0(const tpi_block_q4_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += TPI_QK4_0) {
        float d = h2f(b[i].d);
        for (int j = 0; j < TPI_QK4_0 / 2; j++) {
            y[j] = d * (float)((b[i].qs[j] & 15) - 8);
            y[j + TPI_QK4_0 / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

/* Scale and min j (0..7) of a Q4_K block's 12 packed bytes (ggml's get_scale_min_k4). */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void dequant_q4_k(const tpi_block_q4_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < TPI_QK_K / 64; j++, q += 32) {
            uint8_t sc, m;
            scale_min_k4(2 * j, b[i].scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(2 * j + 1, b[i].scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void dequant_q6_k(const tpi_block_q6_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int n = 0; n < TPI_QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void tpi_dequant_row(tpi_dtype t, const void *src, float *dst, int64_t n)
{
    int64_t nb = n / tpi_dtype_block(t);
    switch (t) {
    case TPI_Q8_0: dequant_q8_0(src, dst, nb); break;
    case TPI_Q4_0: dequant_q4_0(src, dst, nb); break;
    case TPI_Q4_K: dequant_q4_k(src, dst, nb); break;
    case TPI_Q6_K: dequant_q6_k(src, dst, nb); break;
    default: tpi_to_f32(dst, src, t, (size_t)n); break;
    }
}

int tpi_quant_row(tpi_dtype t, const float *src, void *dst, int64_t n)
{
    (void)t, (void)src, (void)dst, (void)n;
    return -1; /* written by the quantization work */
}
