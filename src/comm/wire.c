#include "comm/wire.h"

#include <math.h>
#include <string.h>

#include "tpinfer.h"

size_t tpi_wire_bytes(int kind, int64_t n)
{
    if (kind == TPI_WIRE_BF16)
        return (size_t)n * 2;
    if (kind == TPI_WIRE_Q8)
        return (size_t)(n / TPI_WIRE_Q8_BLOCK) * (sizeof(float) + TPI_WIRE_Q8_BLOCK);
    return (size_t)n * sizeof(float);
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a NaN, quiet */
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One q8 block: the scale, then the values as round(x / scale). */
static void encode_q8_block(const float *x, unsigned char *out)
{
    float amax = 0;
    for (int i = 0; i < TPI_WIRE_Q8_BLOCK; i++)
        amax = fabsf(x[i]) > amax || isnan(x[i]) ? fabsf(x[i]) : amax;
    float scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
    memcpy(out, &scale, sizeof scale);
    signed char *q = (signed char *)(out + sizeof scale);
    for (int i = 0; i < TPI_WIRE_Q8_BLOCK; i++) {
        float v = isfinite(scale) ? roundf(x[i] * inv) : 0.0f;
        q[i] = (signed char)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
}

void tpi_wire_encode(int kind, const float *x, int64_t n, void *out)
{
    if (kind == TPI_WIRE_BF16) {
        uint16_t *h = out;
        for (int64_t i = 0; i < n; i++)
            h[i] = to_bf16(x[i]);
    } else if (kind == TPI_WIRE_Q8) {
        unsigned char *o = out;
        for (int64_t b = 0; b < n; b += TPI_WIRE_Q8_BLOCK, o += sizeof(float) + TPI_WIRE_Q8_BLOCK)
            encode_q8_block(x + b, o);
    } else {
        memcpy(out, x, (size_t)n * sizeof *x);
    }
}

void tpi_wire_add(int kind, const void *in, int64_t n, float *acc)
{
    if (kind == TPI_WIRE_BF16) {
        const uint16_t *h = in;
        for (int64_t i = 0; i < n; i++)
            acc[i] += from_bf16(h[i]);
    } else if (kind == TPI_WIRE_Q8) {
        const unsigned char *p = in;
        for (int64_t b = 0; b < n; b += TPI_WIRE_Q8_BLOCK, p += sizeof(float) + TPI_WIRE_Q8_BLOCK) {
            float scale;
            memcpy(&scale, p, sizeof scale);
            const signed char *q = (const signed char *)(p + sizeof scale);
            /* an infinite or NaN scale: the block had a non-finite value */
            float s = isfinite(scale) ? scale : NAN;
            for (int i = 0; i < TPI_WIRE_Q8_BLOCK; i++)
                acc[b + i] += s * (float)q[i];
        }
    } else {
        const float *f = in;
        for (int64_t i = 0; i < n; i++)
            acc[i] += f[i];
    }
}
