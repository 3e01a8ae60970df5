/* Quantizes activation rows to the 8-bit blocks the quantized matmul
 * kernels read (quant_kernels.h), in plain C for every kernel set. */
#include <math.h>
#include <string.h>

#include "backend/cpu/quant_kernels.h"
#include "core/quant.h"

size_t tpi_qact_row_bytes(tpi_dtype t, int64_t nb)
{
    switch (t) {
    case TPI_Q8_0:
    case TPI_Q4_0: return (size_t)(nb + 7) / 8 * sizeof(tpi_q8a8);
    case TPI_Q4_K:
    case TPI_Q6_K: return (size_t)nb * sizeof(tpi_q8k);
    default: return 0;
    }
}

int64_t tpi_qweight_blocks(const tpi_weight *w)
{
    int64_t bs = tpi_dtype_block(w->dtype);
    return (w->k_off + w->cols + bs - 1) / bs;
}

/* Block b's bs values of the row placed at k_off, zeros outside [0, cols):
 * in place when the block lies inside x, else gathered into v. */
static const float *block_values(float *v, const float *x, int64_t cols, int64_t k_off, int64_t b, int bs)
{
    int64_t c0 = b * bs - k_off;
    if (c0 >= 0 && c0 + bs <= cols)
        return x + c0;
    for (int j = 0; j < bs; j++)
        v[j] = c0 + j >= 0 && c0 + j < cols ? x[c0 + j] : 0.0f;
    return v;
}

/* q[j] = round(v[j] / d) with d = max|v| / 127; returns d. Rounds half to
 * even by adding and subtracting 1.5 * 2^23 (|v / d| <= 127), which the
 * compiler vectorizes where roundf would be a call per element: a prefill
 * quantizes every activation of every matmul. */
static float quant8(const float *v, int8_t *q, int n)
{
    const float magic = 12582912.0f;
    float amax = 0;
    for (int j = 0; j < n; j++) {
        float a = fabsf(v[j]);
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    for (int j = 0; j < n; j++)
        q[j] = (int8_t)(int)(v[j] * id + magic - magic);
    return d;
}

static void quant_q8a8(const float *x, int64_t cols, int64_t k_off, int64_t nb, tpi_q8a8 *a)
{
    float v[32];
    memset(a, 0, (size_t)(nb + 7) / 8 * sizeof *a); /* the last group's padding */
    for (int64_t b = 0; b < nb; b++) {
        const float *src = block_values(v, x, cols, k_off, b, 32);
        tpi_q8a8 *g = &a[b / 8];
        int j = (int)(b % 8);
        g->d[j] = quant8(src, g->qs + 32 * j, 32);
        int32_t s = 0;
        for (int i = 0; i < 32; i++)
            s += g->qs[32 * j + i];
        g->dsum[j] = g->d[j] * (float)(-8 * s);
        g->nsum[j] = -s;
    }
}

static void quant_q8k(const float *x, int64_t cols, int64_t k_off, int64_t nb, tpi_q8k *a)
{
    float v[256];
    for (int64_t b = 0; b < nb; b++) {
        const float *src = block_values(v, x, cols, k_off, b, 256);
        a[b].d = quant8(src, a[b].qs, 256);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += a[b].qs[16 * g + j];
            a[b].bsums[g] = (int16_t)s;
        }
    }
}

void tpi_qact_quantize(tpi_dtype t, const float *x, int64_t cols, int64_t k_off, int64_t nb, void *dst)
{
    if (t == TPI_Q8_0 || t == TPI_Q4_0)
        quant_q8a8(x, cols, k_off, nb, dst);
    else
        quant_q8k(x, cols, k_off, nb, dst);
}
