/* The SIMD sets' packed Q4_K and Q6_K kernels (quant_pack.h; the layout is
 * in quant_pack_k.c), compiled by quant_avx2.c and quant_avx512.c after
 * quant_simd.h, with its macros (QS, DOT_PAIRS, QMAX_ROWS, QINLINE, AROW).
 *
 * One 32-byte load of packed quants is eight rows x four k; the four
 * activation bytes of those k are broadcast, and one dot (vpdpbusd with
 * VNNI; vpmaddubsw into int16 on AVX2) adds the eight rows' four products
 * at once. The quants are unsigned (4 or 6 bits) and the activations signed,
 * as those instructions want. A sub-block's integer sum per row is then
 * multiplied by the eight rows' scales (vpmulld with VNNI; on AVX2 vpmaddwd
 * with the scale in both int16 halves, which also adds the halves), summed
 * over the super-block in int32, and scaled by d x the activation's d in one
 * FMA per super-block and activation row.
 *  - AVX2's int16 sums stay exact: a Q4_K sub-block's eight chunks add 16
 *    products of at most 15 x 127 per lane (30480); Q6_K's quants reach 63,
 *    so its lanes are rescaled after every two chunks (4 x 63 x 127 = 32004).
 *  - Q4_K's mins and Q6_K's -32 come from the activations' sums of 16
 *    (bsums) against the rows' mins or scales, with vpmaddwd on int16 pairs.
 * One call takes up to QMAX_ROWS activation rows (8 with AVX-512's 32
 * registers, 4 with AVX2's 16) against the eight weight rows; a lone row
 * (decode) uses two chains per sub-block so that the dots' latency hides. */
#ifndef TPI_BACKEND_CPU_QUANT_PACK_K_SIMD_H
#define TPI_BACKEND_CPU_QUANT_PACK_K_SIMD_H
#include "backend/cpu/quant_pack.h"
#include "backend/cpu/quant_pack_k_layout.h"

/* the loops over a super-block's chunks unrolled: their chunk, part and
 * chain numbers become constants (rolled, the chains went to the stack) */
#define QPK_UNROLL _Pragma("GCC unroll 8")

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define QPK_VNNI 1
/* s (int32 per row) + the eight rows' sums of four u x a products */
#define QPK_DOT(s, u, a) _mm256_dpbusd_epi32((s), (u), (a))
#define QPK_ADD(x, y) _mm256_add_epi32((x), (y))
/* tot + s x sc, sc the rows' scales as int32 */
#define QPK_SCALE(tot, s, sc) _mm256_add_epi32((tot), _mm256_mullo_epi32((s), (sc)))
#else
#define QPK_VNNI 0
/* s (int16 pairs per row) + the sums of each two u x a products */
#define QPK_DOT(s, u, a) _mm256_add_epi16((s), _mm256_maddubs_epi16((u), (a)))
#define QPK_ADD(x, y) _mm256_add_epi16((x), (y))
/* tot + both int16 halves of s times sc, sc the rows' scales in both halves */
#define QPK_SCALE(tot, s, sc) _mm256_add_epi32((tot), _mm256_madd_epi16((s), (sc)))
#endif

/* Four activation bytes (or two int16 sums) in every dword. */
QINLINE __m256i qpk_bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Two sub-blocks' scales of the eight rows, stored [row][2] as bytes, as
 * int16 pairs: row i's in dword i. */
QINLINE __m256i qpk_pairs_u8(const uint8_t *p)
{
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}

QINLINE __m256i qpk_pairs_s8(const uint8_t *p)
{
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* Half h of each pair in the form QPK_SCALE takes: an int32 (VNNI), or the
 * int16 copied to both halves (AVX2). sgn: the scales are signed. */
QINLINE __m256i qpk_scale_of(__m256i pairs, const int h, const int sgn)
{
#if QPK_VNNI
    if (h)
        return sgn ? _mm256_srai_epi32(pairs, 16) : _mm256_srli_epi32(pairs, 16);
    return sgn ? _mm256_srai_epi32(_mm256_slli_epi32(pairs, 16), 16) : _mm256_and_si256(pairs, _mm256_set1_epi32(0xffff));
#else
    (void)sgn;
    /* dword k of a lane takes its own bytes 4 k + 2 h, 4 k + 2 h + 1 twice */
    const int c = h ? 0x03020302 : 0x01000100;
    return _mm256_shuffle_epi8(pairs, _mm256_setr_epi32(c, c + 0x04040404, c + 0x08080808, c + 0x0c0c0c0c, c,
                                                        c + 0x04040404, c + 0x08080808, c + 0x0c0c0c0c));
#endif
}

/* tot[r] += the C chains s[c][r], scaled by sc. VNNI adds the chains first
 * (int32); AVX2 scales each (its int16 lanes hold the limit above). */
#define QPK_FINISH(tot, s, C, m, sc)                                                                       \
    for (int r_ = 0; r_ < (m); r_++) {                                                                     \
        if (QPK_VNNI && (C) == 2)                                                                          \
            (tot)[r_] = QPK_SCALE((tot)[r_], _mm256_add_epi32((s)[0][r_], (s)[1][r_]), (sc));              \
        else                                                                                               \
            for (int c_ = 0; c_ < (C); c_++)                                                               \
                (tot)[r_] = QPK_SCALE((tot)[r_], (s)[c_][r_], (sc));                                       \
        for (int c_ = 0; c_ < (C); c_++)                                                                   \
            (s)[c_][r_] = _mm256_setzero_si256();                                                          \
    }

/* ---- Q4_K: d * sum_j sc_j * sum(q * a) - dmin * sum_j m_j * (sums of a) ---- */

/* The mins' integer term of one activation row: sum_j m_j * (bsums[2 j] +
 * bsums[2 j + 1]), the pairs of sub-blocks through vpmaddwd. */
QINLINE __m256i qpk4_mins(const uint8_t *x, const tpi_q8k *ar)
{
    /* the activation's sums of 32 (sub-blocks 0..7) as int16 */
    int32_t bs[4];
    _mm_storeu_si128((__m128i *)(void *)bs,
                     _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(const void *)ar->bsums),
                                    _mm_loadu_si128((const __m128i *)(const void *)(ar->bsums + 8))));
    __m256i ms = _mm256_setzero_si256();
    for (int p = 0; p < 4; p++)
        ms = DOT_PAIRS(ms, qpk_pairs_u8(x + QPK4_MN + 16 * p), _mm256_set1_epi32(bs[p]));
    return ms;
}

QINLINE void qpk4_rows(int64_t nb, const uint8_t *x, const uint8_t *a, size_t as, const int m, float *y,
                       int64_t ys)
{
    const int C = m == 1 ? 2 : 1;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc[QMAX_ROWS];
    for (int r = 0; r < m; r++)
        acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, x += QPK4_BYTES) {
        qprefetch(x, QPK4_BYTES, m);
        __m256i tot[QMAX_ROWS], s[2][QMAX_ROWS];
        for (int r = 0; r < m; r++) {
            tot[r] = _mm256_setzero_si256();
            for (int c = 0; c < C; c++)
                s[c][r] = _mm256_setzero_si256();
        }
        QPK_UNROLL for (int j = 0; j < 8; j++) {
            /* sub-block j: the low (j even) or high nibbles of pair j / 2 */
            const uint8_t *q = x + QPK4_QS + 256 * (j / 2);
            QPK_UNROLL for (int t = 0; t < 8; t++) {
                __m256i v = loadu(q + 32 * t);
                __m256i u = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
                for (int r = 0; r < m; r++) {
                    const tpi_q8k *ar = AROW(tpi_q8k, a, r, as) + b;
                    s[t % C][r] = QPK_DOT(s[t % C][r], u, qpk_bcast4(ar->qs + 32 * j + 4 * t));
                }
            }
            __m256i sc = qpk_scale_of(qpk_pairs_u8(x + QPK4_SC + 16 * (j / 2)), j % 2, 0);
            QPK_FINISH(tot, s, C, m, sc)
        }
        __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + QPK4_D)));
        __m256 dm8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + QPK4_DMIN)));
        for (int r = 0; r < m; r++) {
            const tpi_q8k *ar = AROW(tpi_q8k, a, r, as) + b;
            __m256 da = _mm256_set1_ps(ar->d);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[r]), _mm256_mul_ps(d8, da), acc[r]);
            acc[r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(qpk4_mins(x, ar)), _mm256_mul_ps(dm8, da), acc[r]);
        }
    }
    for (int r = 0; r < m; r++)
        _mm256_storeu_ps(y + r * ys, acc[r]);
}

/* ---- Q6_K: d * sum_g sc_g * (sum(q * a) - 32 * sum(a)) over groups of 16 ---- */

/* Part p's quants (e = 128 h + 32 p + l) of eight rows x four l from the
 * low-bit chunk l4 (ql, + 32 for odd p) and the high-bit chunk hb (qh). */
QINLINE __m256i qpk6_quant(__m256i l4, __m256i hb, const int p)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    switch (p) {
    case 0: return _mm256_or_si256(_mm256_and_si256(l4, m4), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x03)), 4));
    case 1: return _mm256_or_si256(_mm256_and_si256(l4, m4), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x0c)), 2));
    case 2: return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l4, 4), m4), _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
    default:
        return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l4, 4), m4),
                               _mm256_srli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8((char)0xc0)), 2));
    }
}

/* 32 * sum_g sc_g * bsums[g] of one activation row, groups in pairs. */
QINLINE __m256i qpk6_offset(const uint8_t *x, const tpi_q8k *ar)
{
    __m256i off = _mm256_setzero_si256();
    for (int p = 0; p < 8; p++)
        off = DOT_PAIRS(off, qpk_pairs_s8(x + QPK6_SC + 16 * p), qpk_bcast4(ar->bsums + 2 * p));
    return _mm256_slli_epi32(off, 5);
}

QINLINE void qpk6_rows(int64_t nb, const uint8_t *x, const uint8_t *a, size_t as, const int m, float *y,
                       int64_t ys)
{
    const int C = m == 1 ? 2 : 1;
    __m256 acc[QMAX_ROWS];
    for (int r = 0; r < m; r++)
        acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, x += QPK6_BYTES) {
        qprefetch(x, QPK6_BYTES, m);
        __m256i tot[QMAX_ROWS], s[2][QMAX_ROWS];
        for (int r = 0; r < m; r++) {
            tot[r] = _mm256_setzero_si256();
            for (int c = 0; c < C; c++)
                s[c][r] = _mm256_setzero_si256();
        }
        QPK_UNROLL for (int h = 0; h < 2; h++)
            QPK_UNROLL for (int p = 0; p < 4; p++) {
                __m256i pairs = qpk_pairs_s8(x + QPK6_SC + 16 * (4 * h + p));
                QPK_UNROLL for (int uh = 0; uh < 2; uh++) {
                    /* group 8 h + 2 p + uh: l = 16 uh .. 16 uh + 15 */
                    __m256i sc = qpk_scale_of(pairs, uh, 1);
                    QPK_UNROLL for (int u4 = 0; u4 < 4; u4++) {
                        int u = 4 * uh + u4;
                        __m256i l4 = loadu(x + QPK6_QL + 32 * (16 * h + 8 * (p % 2) + u));
                        __m256i q = qpk6_quant(l4, loadu(x + QPK6_QH + 32 * (8 * h + u)), p);
                        for (int r = 0; r < m; r++) {
                            const tpi_q8k *ar = AROW(tpi_q8k, a, r, as) + b;
                            s[u4 % C][r] = QPK_DOT(s[u4 % C][r], q, qpk_bcast4(ar->qs + 128 * h + 32 * p + 4 * u));
                        }
                        if (u4 == 3 || (!QPK_VNNI && u4 == 1 && C == 1)) {
                            QPK_FINISH(tot, s, C, m, sc)
                        }
                    }
                }
            }
        __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + QPK6_D)));
        for (int r = 0; r < m; r++) {
            const tpi_q8k *ar = AROW(tpi_q8k, a, r, as) + b;
            __m256i sum = _mm256_sub_epi32(tot[r], qpk6_offset(x, ar));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(d8, _mm256_set1_ps(ar->d)), acc[r]);
        }
    }
    for (int r = 0; r < m; r++)
        _mm256_storeu_ps(y + r * ys, acc[r]);
}

/* One entry per type, the row count a constant in each case (the loops
 * over rows unroll, the accumulators stay in registers); more than
 * QMAX_ROWS rows go in passes. */
#define QPK_ENTRY(name)                                                                                     \
    static void QS(name)(int64_t nb, const void *g, const void *a, size_t as, int m, float *y, int64_t ys)  \
    {                                                                                                       \
        const uint8_t *x = g, *av = a;                                                                      \
        for (; m > QMAX_ROWS; m -= QMAX_ROWS, av += QMAX_ROWS * as, y += QMAX_ROWS * ys)                    \
            name##_rows(nb, x, av, as, QMAX_ROWS, y, ys);                                                   \
        switch (m) {                                                                                        \
        case 1: name##_rows(nb, x, av, as, 1, y, ys); break;                                                \
        case 2: name##_rows(nb, x, av, as, 2, y, ys); break;                                                \
        case 3: name##_rows(nb, x, av, as, 3, y, ys); break;                                                \
        case 4: name##_rows(nb, x, av, as, 4, y, ys); break;                                                \
        case 5: name##_rows(nb, x, av, as, 5 < QMAX_ROWS ? 5 : QMAX_ROWS, y, ys); break;                    \
        case 6: name##_rows(nb, x, av, as, 6 < QMAX_ROWS ? 6 : QMAX_ROWS, y, ys); break;                    \
        case 7: name##_rows(nb, x, av, as, 7 < QMAX_ROWS ? 7 : QMAX_ROWS, y, ys); break;                    \
        default: name##_rows(nb, x, av, as, QMAX_ROWS, y, ys); break;                                       \
        }                                                                                                   \
    }
QPK_ENTRY(qpk4)
QPK_ENTRY(qpk6)

/* Not static: the tests and the benchmark reach each set's kernels by name
 * (quant_pack.h declares tpi_avx2_qpdot_k and tpi_avx512_qpdot_k). */
tpi_qpdot_fn QS(qpdot_k)(tpi_dtype t)
{
    switch (t) {
    case TPI_Q4_K: return QS(qpk4);
    case TPI_Q6_K: return QS(qpk6);
    default: return NULL;
    }
}
#endif
