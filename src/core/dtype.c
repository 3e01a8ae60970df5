#include "core/dtype.h"

#include "core/quant.h"

/* Indexed by tpi_dtype. */
static const struct {
    const char *name;
    int64_t block, bytes;
} dtypes[TPI_N_DTYPES] = {
    [TPI_F32] = {"F32", 1, 4},
    [TPI_BF16] = {"BF16", 1, 2},
    [TPI_F16] = {"F16", 1, 2},
    [TPI_Q8_0] = {"Q8_0", TPI_QK8_0, sizeof(tpi_block_q8_0)},
    [TPI_Q4_0] = {"Q4_0", TPI_QK4_0, sizeof(tpi_block_q4_0)},
    [TPI_Q4_K] = {"Q4_K", TPI_QK_K, sizeof(tpi_block_q4_k)},
    [TPI_Q6_K] = {"Q6_K", TPI_QK_K, sizeof(tpi_block_q6_k)},
};

static int known(tpi_dtype t)
{
    return (unsigned)t < TPI_N_DTYPES;
}

size_t tpi_dtype_size(tpi_dtype t)
{
    return known(t) && dtypes[t].block == 1 ? (size_t)dtypes[t].bytes : 0;
}

int tpi_dtype_is_quant(tpi_dtype t)
{
    return known(t) && dtypes[t].block > 1;
}

int64_t tpi_dtype_block(tpi_dtype t)
{
    return known(t) ? dtypes[t].block : 1;
}

int64_t tpi_dtype_block_bytes(tpi_dtype t)
{
    return known(t) ? dtypes[t].bytes : 0;
}

int64_t tpi_dtype_row_bytes(tpi_dtype t, int64_t n)
{
    if (!known(t) || n < 0 || n % dtypes[t].block)
        return -1;
    return n / dtypes[t].block * dtypes[t].bytes;
}

const char *tpi_dtype_name(tpi_dtype t)
{
    return known(t) ? dtypes[t].name : "?";
}

int tpi_dtype_parse(const char *s, tpi_dtype *out)
{
    if (!strcmp(s, "F32")) *out = TPI_F32;
    else if (!strcmp(s, "BF16")) *out = TPI_BF16;
    else if (!strcmp(s, "F16")) *out = TPI_F16;
    else return -1;
    return 0;
}

/* IEEE 754 binary16, by bit manipulation so it needs no F16C. */
float tpi_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t tpi_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = 1u << (shift - 1);
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (uint32_t)(exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++; /* may carry into the exponent, which is the right rounding */
    return (uint16_t)(sign | r);
}

void tpi_to_f32(float *dst, const void *src, tpi_dtype t, size_t n)
{
    if (tpi_dtype_is_quant(t)) {
        tpi_dequant_row(t, src, dst, (int64_t)n);
        return;
    }
    if (t == TPI_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = t == TPI_BF16 ? tpi_bf16_to_f32(h) : tpi_f16_to_f32(h);
    }
}
