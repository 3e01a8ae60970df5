/* The packed Q8_0 and Q4_0 kernels (quant_pack.h, layouts in quant_pack.c),
 * compiled by quant_avx2.c and quant_avx512.c after quant_simd.h, whose
 * QS, DOT_U8S8, QMAX_ROWS, Q_ENTRY they use, and QPACK_VNNI: 1 where
 * DOT_U8S8 is vpdpbusd (no int16 step, so no bound on the products).
 *
 * Per x8 block: eight 32-byte steps, each eight rows x four quants; per
 * step and activation row one DOT_U8S8 with the activation's four quants
 * broadcast (a load, no shuffle). The integer sums of the eight rows are
 * one vector per activation row: one conversion and one FMA with the eight
 * rows' scales times the activation's scale apply a whole block, and the
 * outputs need no horizontal sum.
 *  - Q8_0 on VNNI: the weights xor 0x80 are w + 128, unsigned; the 128 *
 *    sum(a) they add is taken off by starting the block's sum at nsum << 7.
 *    On AVX2, vpmaddubsw's int16 pairs would overflow with w + 128, so it
 *    multiplies |w| by a with w's signs (one vpsignb per activation row).
 *  - Q4_0: the nibbles are unsigned; the sum starts at nsum << 3 (the -8).
 * Activation rows use C integer chains (c = step % C): four for one row,
 * two for two rows and, with AVX-512's 32 registers, for up to eight rows:
 * eight chains of eight vpdpbusd per block would wait on its latency. */

/* The x8 block's step u (0..7): eight rows' quants 4u..4u+3 as bytes, and
 * where DOT_U8S8 takes them (unsigned operand, sign source for AVX2 Q8_0). */
QINLINE __m256i p8_0_step(const uint8_t *qs, int u)
{
    __m256i w = loadu(qs + 32 * u);
#if QPACK_VNNI
    return _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80));
#else
    return w;
#endif
}

QINLINE __m256i p4_0_step(const uint8_t *qs, int u)
{
    __m256i w = loadu(qs + 32 * (u % 4));
    if (u >= 4)
        w = _mm256_srli_epi16(w, 4);
    return _mm256_and_si256(w, _mm256_set1_epi8(15));
}

/* Activation quants 4u..4u+3 of block j of a row's tpi_q8a8 ag, in every lane. */
QINLINE __m256i a_quad(const tpi_q8a8 *ag, int j, int u)
{
    int32_t v;
    memcpy(&v, ag->qs + 32 * j + 4 * u, 4);
    return _mm256_set1_epi32(v);
}

typedef struct quad8 {
    int8_t q[4];
} quad8;

/* acc + the eight rows' four products of step w with the activation quants
 * 4u..4u+3 of block j of ag. VNNI takes them as vpdpbusd's embedded
 * broadcast, one instruction where a broadcast and the dot are two: GCC 12
 * does not fold _mm256_set1_epi32 into vpdpbusd, and the front end, not
 * the dot's ports, bounds this loop otherwise. */
QINLINE __m256i p_dot(tpi_dtype t, __m256i acc, __m256i w, const tpi_q8a8 *ag, int j, int u)
{
    (void)t;
#if QPACK_VNNI
    const quad8 *p = (const quad8 *)(const void *)(ag->qs + 32 * j + 4 * u);
    __asm__("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*p));
    return acc;
#else
    __m256i av = a_quad(ag, j, u);
    if (t == TPI_Q8_0)
        return DOT_U8S8(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w));
    return DOT_U8S8(acc, w, av);
#endif
}

/* Where block j's integer sum of an activation row starts: minus the offset
 * the weights' bytes carry, times sum(a). */
QINLINE __m256i p_start(tpi_dtype t, const tpi_q8a8 *ag, int j)
{
    if (t == TPI_Q4_0)
        return _mm256_slli_epi32(_mm256_set1_epi32(ag->nsum[j]), 3);
#if QPACK_VNNI
    return _mm256_slli_epi32(_mm256_set1_epi32(ag->nsum[j]), 7);
#else
    return _mm256_setzero_si256();
#endif
}

QINLINE void p32_block(tpi_dtype t, const uint8_t *xb, int64_t b, const uint8_t *a, size_t as, const int m,
                       const int C, __m256 acc[QMAX_ROWS])
{
    const uint8_t *qs = xb + 2 * TPI_QPACK_ROWS;
    const int j = (int)(b % 8);
    const size_t ag_off = (size_t)(b / 8) * sizeof(tpi_q8a8);
    __m256i it[4][QMAX_ROWS];
    for (int r = 0; r < m; r++) {
        const tpi_q8a8 *ag = AROW(tpi_q8a8, a + ag_off, r, as);
        it[0][r] = p_start(t, ag, j);
        for (int c = 1; c < C; c++)
            it[c][r] = _mm256_setzero_si256();
    }
    for (int u = 0; u < 8; u++) {
        __m256i w = t == TPI_Q8_0 ? p8_0_step(qs, u) : p4_0_step(qs, u);
        for (int r = 0; r < m; r++)
            it[u % C][r] = p_dot(t, it[u % C][r], w, AROW(tpi_q8a8, a + ag_off, r, as), j, u);
    }
    __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)xb));
    for (int r = 0; r < m; r++) {
        const tpi_q8a8 *ag = AROW(tpi_q8a8, a + ag_off, r, as);
        __m256i s = it[0][r];
        for (int c = 1; c < C; c++)
            s = _mm256_add_epi32(s, it[c][r]);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(ag->d[j])), acc[r]);
    }
}

QINLINE void p32_rows(tpi_dtype t, int64_t nb, const void *gv, const void *av, size_t as, const int m, float *y,
                      int64_t ys)
{
    const int C = m == 1 ? 4 : m == 2 || QPACK_VNNI ? 2 : 1;
    const size_t xbytes = 2 * TPI_QPACK_ROWS + TPI_QPACK_ROWS * (t == TPI_Q8_0 ? 32 : 16);
    const uint8_t *g = gv, *a = av;
    __m256 acc[QMAX_ROWS];
    for (int r = 0; r < m; r++)
        acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        qprefetch(g + (size_t)b * xbytes, xbytes, m);
        p32_block(t, g + (size_t)b * xbytes, b, a, as, m, C, acc);
    }
    for (int r = 0; r < m; r++)
        _mm256_storeu_ps(y + r * ys, acc[r]);
}

QINLINE void p8_0_rows(int64_t nb, const void *g, const void *a, size_t as, const int m, float *y, int64_t ys)
{
    p32_rows(TPI_Q8_0, nb, g, a, as, m, y, ys);
}

QINLINE void p4_0_rows(int64_t nb, const void *g, const void *a, size_t as, const int m, float *y, int64_t ys)
{
    p32_rows(TPI_Q4_0, nb, g, a, as, m, y, ys);
}

Q_ENTRY(p8_0)
Q_ENTRY(p4_0)

#include "backend/cpu/quant_pack_k_simd.h"

tpi_qpdot_fn QS(qpdot)(tpi_dtype t)
{
    switch (t) {
    case TPI_Q8_0: return QS(p8_0);
    case TPI_Q4_0: return QS(p4_0);
    default: return QS(qpdot_k)(t);
    }
}
