/* Block dequantization (gguf-py's order of float32 operations) and the
 * reference quantizers. */
#include "core/quant.h"

#include <math.h>
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

/* ---- quantizers ----
 * Each picks its scales from the data (largest magnitude, then a small
 * least-squares search for the 4- and 6-bit types), rounds to the fp16 that
 * the block stores, and quantizes against that stored scale, so dequant(quant(x))
 * is what the block really holds. Only +, *, / and roundf in a fixed order:
 * the same bytes on every CPU. */

static uint16_t f2h(float f)
{
    return tpi_f32_to_f16(f);
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* v rounded to the nearest integer (ties to even) by adding 1.5 * 2^23,
 * which leaves the integer in the low mantissa bits: plain float arithmetic,
 * so the same on every CPU, and inline, where roundf is a libm call that
 * made the K-type searches take minutes for a 1B model. |v| is clamped to
 * 2^20 first; callers clamp the result to a few bits anyway. */
static int nearest(float v)
{
    v = v < -1048576.0f ? -1048576.0f : v > 1048576.0f ? 1048576.0f : v;
    float f = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void quant_q8_0(const float *x, tpi_block_q8_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += TPI_QK8_0) {
        float amax = 0;
        for (int j = 0; j < TPI_QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        for (int j = 0; j < TPI_QK8_0; j++)
            b[i].qs[j] = (int8_t)clampi((int)roundf(x[j] * id), -127, 127);
    }
}

/* The value of largest magnitude, with its sign. */
static float signed_max(const float *x, int n)
{
    float m = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > fabsf(m))
            m = x[j];
    return m;
}

static void quant_q4_0(const float *x, tpi_block_q4_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += TPI_QK4_0) {
        /* the largest magnitude maps to -8, the end with one more level */
        float d = signed_max(x, TPI_QK4_0) / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        for (int j = 0; j < TPI_QK4_0 / 2; j++) {
            int lo = clampi((int)floorf(x[j] * id + 8.5f), 0, 15);
            int hi = clampi((int)floorf(x[j + TPI_QK4_0 / 2] * id + 8.5f), 0, 15);
            b[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

/* Fits x[0..32) ~ scale * q - min with q in 0..15 and min >= 0: tries a
 * grid of step sizes around (max - min) / 15, refits scale and min by least
 * squares (weighted toward large values, which matter most in a dot
 * product) for each, and keeps the smallest weighted error of that step's
 * q (computed from the sums, not by rounding again). */
static void fit_q4_sub(const float *x, float *scale, float *min)
{
    float lo = 0, hi = x[0], sq = 0;
    for (int j = 0; j < 32; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
        sq += x[j] * x[j];
    }
    *scale = 0;
    *min = -lo;
    if (hi <= lo)
        return;
    float av = sqrtf(sq / 32.0f), w[32];
    for (int j = 0; j < 32; j++)
        w[j] = av + fabsf(x[j]);
    *scale = (hi - lo) / 15.0f;
    float best = INFINITY, sw = 0, swx = 0, swxx = 0;
    for (int j = 0; j < 32; j++)
        sw += w[j], swx += w[j] * x[j], swxx += w[j] * x[j] * x[j];
    for (int step = -10; step <= 10; step++) {
        float is = (15.0f + 0.1f * (float)step) / (hi - lo);
        float swq = 0, swqq = 0, swqx = 0;
        for (int j = 0; j < 32; j++) {
            float q = (float)clampi(nearest(is * (x[j] - lo)), 0, 15), wq = w[j] * q;
            swq += wq, swqq += wq * q, swqx += wq * x[j];
        }
        float det = sw * swqq - swq * swq;
        if (det <= 0)
            continue;
        float s = (sw * swqx - swq * swx) / det, off = (swqq * swx - swq * swqx) / det;
        if (off > 0) { /* the block's offset is -min <= 0 */
            off = 0;
            s = swqq > 0 ? swqx / swqq : 0;
        }
        if (s <= 0)
            continue;
        /* sum w (s q + off - x)^2 over this step's q, from the sums */
        float err = s * s * swqq + 2 * s * off * swq + off * off * sw - 2 * s * swqx - 2 * off * swx + swxx;
        if (err < best) {
            best = err;
            *scale = s;
            *min = -off;
        }
    }
}

/* Packs 6-bit scales and mins j = 0..7 as scale_min_k4 reads them. */
static void pack_scale_min_k4(const uint8_t *sc, const uint8_t *m, uint8_t *q)
{
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        q[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        q[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

static void quant_q4_k_block(const float *x, tpi_block_q4_k *b)
{
    float scale[8], min[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        fit_q4_sub(x + 32 * j, &scale[j], &min[j]);
        max_scale = fmaxf(max_scale, scale[j]);
        max_min = fmaxf(max_min, min[j]);
    }
    float is = max_scale > 0 ? 63.0f / max_scale : 0.0f, im = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)clampi((int)roundf(is * scale[j]), 0, 63);
        m[j] = (uint8_t)clampi((int)roundf(im * min[j]), 0, 63);
    }
    b->d = f2h(max_scale / 63.0f);
    b->dmin = f2h(max_min / 63.0f);
    pack_scale_min_k4(sc, m, b->scales);
    float d = h2f(b->d), dmin = h2f(b->dmin);
    uint8_t q[256];
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)sc[j], dm = dmin * (float)m[j];
        for (int l = 0; l < 32; l++)
            q[32 * j + l] = ds > 0 ? (uint8_t)clampi((int)roundf((x[32 * j + l] + dm) / ds), 0, 15) : 0;
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            b->qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
}

/* Fits x[0..16) ~ scale * q with q in -32..31: the largest magnitude maps
 * near -32; a small grid of step sizes around it, each refit by least
 * squares, keeps the smallest weighted error. */
static float fit_q6_sub(const float *x)
{
    float mx = signed_max(x, 16);
    if (mx == 0.0f)
        return 0.0f;
    float best = INFINITY, scale = mx / -32.0f;
    for (int step = -9; step <= 9; step++) {
        float is = -(32.0f + 0.1f * (float)step) / mx, sqx = 0, sqq = 0;
        for (int j = 0; j < 16; j++) {
            float q = (float)clampi(nearest(is * x[j]), -32, 31), w = x[j] * x[j];
            sqx += w * q * x[j];
            sqq += w * q * q;
        }
        if (sqq <= 0)
            continue;
        /* sum w (s q - x)^2 at the least-squares s is sum w x^2 - sqx^2 / sqq:
         * the smallest error is the largest sqx^2 / sqq */
        float s = sqx / sqq, err = -sqx * s;
        if (err < best) {
            best = err;
            scale = s;
        }
    }
    return scale;
}

static void quant_q6_k_block(const float *x, tpi_block_q6_k *b)
{
    float scale[16];
    for (int g = 0; g < 16; g++)
        scale[g] = fit_q6_sub(x + 16 * g);
    float mx = signed_max(scale, 16), is = mx != 0.0f ? -128.0f / mx : 0.0f;
    b->d = f2h(is != 0.0f ? 1.0f / is : 0.0f);
    float d = h2f(b->d);
    uint8_t q[256];
    for (int g = 0; g < 16; g++) {
        b->scales[g] = (int8_t)clampi((int)roundf(is * scale[g]), -128, 127);
        float ds = d * (float)b->scales[g];
        for (int l = 0; l < 16; l++)
            q[16 * g + l] = (uint8_t)(ds != 0.0f ? clampi((int)roundf(x[16 * g + l] / ds), -32, 31) + 32 : 32);
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *L = q + 128 * h;
        uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((L[l] & 15) | (L[l + 64] & 15) << 4);
            ql[l + 32] = (uint8_t)((L[l + 32] & 15) | (L[l + 96] & 15) << 4);
            qh[l] = (uint8_t)(L[l] >> 4 | (L[l + 32] >> 4) << 2 | (L[l + 64] >> 4) << 4 | (L[l + 96] >> 4) << 6);
        }
    }
}

int tpi_quant_row(tpi_dtype t, const float *src, void *dst, int64_t n)
{
    int64_t bs = tpi_dtype_block(t);
    if (!tpi_dtype_is_quant(t) || n % bs)
        return -1;
    int64_t nb = n / bs;
    switch (t) {
    case TPI_Q8_0: quant_q8_0(src, dst, nb); break;
    case TPI_Q4_0: quant_q4_0(src, dst, nb); break;
    case TPI_Q4_K:
        for (int64_t i = 0; i < nb; i++)
            quant_q4_k_block(src + i * TPI_QK_K, (tpi_block_q4_k *)dst + i);
        break;
    case TPI_Q6_K:
        for (int64_t i = 0; i < nb; i++)
            quant_q6_k_block(src + i * TPI_QK_K, (tpi_block_q6_k *)dst + i);
        break;
    default: return -1;
    }
    return 0;
}
