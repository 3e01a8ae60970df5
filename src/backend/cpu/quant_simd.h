/* The quantized dot kernels' body, compiled twice: by quant_avx2.c and by
 * quant_avx512.c, which define
 *   QS(name)               the set's name for name,
 *   DOT_U8S8(acc, u, s)    acc (8 x int32) + the sums of each 4 products of
 *                          u (unsigned bytes) and s (signed bytes),
 *   DOT_PAIRS(acc, p, w)   acc + the sums of each 2 products of p and w
 *                          (16 x int16),
 * with AVX2's vpmaddubsw/vpmaddwd or AVX-512 VNNI's vpdpbusd/vpdpwssd. The
 * AVX2 forms sum byte pairs into int16 with saturation, so every u * s pair
 * here stays below 2^15: Q8_0 multiplies |w| (<= 128) by sign(w) * a
 * (|a| <= 127), the 4- and 6-bit quants are unsigned and < 64.
 * Each kernel takes m = 1..8 activation rows against one weight row, so a
 * prefill unpacks each weight block once for QMAX_ROWS rows (the set's
 * choice: 4 with AVX2's 16 registers, 8 with AVX-512's 32). Integer sums are
 * exact; they are scaled and accumulated in fp32 per block. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/tuning.h"
#include "core/quant.h"

#define QINLINE static inline __attribute__((always_inline))

#if QMAX_ROWS != 4 && QMAX_ROWS != 8
#error "QMAX_ROWS is 4 or 8"
#endif

QINLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

QINLINE float h2f(uint16_t h)
{
    return _cvtsh_ss(h);
}

QINLINE __m256i loadu(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* A packed kernel on m activation rows calls this once per block of
 * weights p (bytes long) it is about to read. In decode (m at most
 * TPI_QPACK_PREFETCH_ROWS) it prefetches the lines TPI_QPACK_PREFETCH bytes
 * ahead (tuning.h), so that they arrive before the loads reach them: one
 * core's read rate from memory is bound by the misses it keeps in flight,
 * and the hardware prefetcher alone left the packed GEMV at 48-68 % of it
 * on a Xeon. Prefill reads each block from cache many times over and
 * prefetches nothing. */
QINLINE void qprefetch(const uint8_t *p, const size_t bytes, const int m)
{
    if (m > TPI_QPACK_PREFETCH_ROWS)
        return;
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + TPI_QPACK_PREFETCH + o, _MM_HINT_T0);
}

/* Activation row r of a (rows a_stride bytes apart). */
#define AROW(type, a, r, as) ((const type *)(const void *)((const uint8_t *)(a) + (size_t)(r) * (as)))

/* The fp16 scales (at each block's start) of cnt <= 8 blocks `stride` bytes
 * apart, as 8 floats, zeros past cnt. */
QINLINE __m256 scales8(const uint8_t *w, size_t stride, const int cnt)
{
    uint16_t h[8];
    for (int j = 0; j < 8; j++) {
        h[j] = 0;
        if (j < cnt)
            memcpy(&h[j], w + j * stride, 2);
    }
    return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], (short)h[4],
                                          (short)h[5], (short)h[6], (short)h[7]));
}

/* Block j's 32 weights as unsigned bytes u and the signs they put on the
 * activations: Q8_0 multiplies |w| by sign(w) * a, Q4_0 its nibbles q (the
 * -8 is in dsum) by a. */
QINLINE __m256i q8_0_u(const tpi_block_q8_0 *w, __m256i *q)
{
    *q = loadu(w->qs);
    return _mm256_sign_epi8(*q, *q);
}

QINLINE __m256i q4_0_u(const tpi_block_q4_0 *w)
{
    /* the 16 bytes in both halves, the high half shifted to its high nibbles */
    __m256i q2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)w->qs));
    return _mm256_and_si256(_mm256_srlv_epi64(q2, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(15));
}

/* cnt <= 8 blocks of 32 against one tpi_q8a8 of each of m rows: the eight
 * weight scales times each row's eight, once; then per block an integer dot,
 * and an FMA with that block's scale picked out of the eight (vpermps).
 * Rows use C chains (acc[c][r], c = block % C): one row alone would wait on
 * the FMA's latency every block. */
QINLINE void group32(tpi_dtype t, const uint8_t *w, const uint8_t *a, size_t as, const int m, const int cnt,
                     const int C, __m256 acc[4][QMAX_ROWS])
{
    size_t stride = t == TPI_Q8_0 ? sizeof(tpi_block_q8_0) : sizeof(tpi_block_q4_0);
    __m256 dw = scales8(w, stride, cnt), s[QMAX_ROWS];
    for (int r = 0; r < m; r++) {
        const tpi_q8a8 *ar = AROW(tpi_q8a8, a, r, as);
        s[r] = _mm256_mul_ps(dw, _mm256_loadu_ps(ar->d));
        if (t == TPI_Q4_0)
            acc[0][r] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(ar->dsum), acc[0][r]);
    }
    for (int j = 0; j < cnt; j++) {
        __m256i q, u;
        if (t == TPI_Q8_0)
            u = q8_0_u((const tpi_block_q8_0 *)(const void *)(w + j * stride), &q);
        else
            u = q4_0_u((const tpi_block_q4_0 *)(const void *)(w + j * stride));
        __m256i idx = _mm256_set1_epi32(j);
        for (int r = 0; r < m; r++) {
            __m256i av = loadu(AROW(tpi_q8a8, a, r, as)->qs + 32 * j);
            if (t == TPI_Q8_0)
                av = _mm256_sign_epi8(av, q);
            __m256i d = DOT_U8S8(_mm256_setzero_si256(), u, av);
            acc[j % C][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_permutevar8x32_ps(s[r], idx), acc[j % C][r]);
        }
    }
}

QINLINE void rows32(tpi_dtype t, int64_t nb, const void *wv, const void *av, size_t as, const int m, float *y,
                    int64_t ys)
{
    const int C = m == 1 ? 4 : m == 2 ? 2 : 1;
    size_t stride = t == TPI_Q8_0 ? sizeof(tpi_block_q8_0) : sizeof(tpi_block_q4_0);
    const uint8_t *w = wv, *a = av;
    __m256 acc[4][QMAX_ROWS];
    for (int c = 0; c < C; c++)
        for (int r = 0; r < m; r++)
            acc[c][r] = _mm256_setzero_ps();
    int64_t g = 0;
    for (; g + 8 <= nb; g += 8)
        group32(t, w + g * stride, a + g / 8 * sizeof(tpi_q8a8), as, m, 8, C, acc);
    if (g < nb)
        group32(t, w + g * stride, a + g / 8 * sizeof(tpi_q8a8), as, m, (int)(nb - g), 1, acc);
    for (int r = 0; r < m; r++) {
        __m256 sum = acc[0][r];
        for (int c = 1; c < C; c++)
            sum = _mm256_add_ps(sum, acc[c][r]);
        y[r * ys] = hsum(sum);
    }
}

QINLINE void q8_0_rows(int64_t nb, const void *w, const void *a, size_t as, const int m, float *y, int64_t ys)
{
    rows32(TPI_Q8_0, nb, w, a, as, m, y, ys);
}

QINLINE void q4_0_rows(int64_t nb, const void *w, const void *a, size_t as, const int m, float *y, int64_t ys)
{
    rows32(TPI_Q4_0, nb, w, a, as, m, y, ys);
}

/* ---- Q4_K: d * sum_j sc_j * sum(q * a) - dmin * sum_j m_j * (sums of a) ---- */

/* The 8 scales and 8 mins of 6 bits, unpacked from their 12 bytes four at a
 * time (core/quant.c's scale_min_k4 per byte). */
QINLINE void q4_k_scales(const uint8_t *p, uint64_t *sc, uint64_t *mn)
{
    uint32_t u[3];
    memcpy(u, p, 12);
    uint32_t sc_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
    uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4;
    uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;
    *sc = (uint64_t)sc_hi << 32 | sc_lo;
    *mn = (uint64_t)m_hi << 32 | m_lo;
}

QINLINE void q4_k_step(const tpi_block_q4_k *w, const tpi_q8k *a, size_t as, const int m, __m256 *acc)
{
    uint64_t sc8, m8;
    q4_k_scales(w->scales, &sc8, &m8);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
    __m128i mv = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m8));
    __m256i mdup = _mm256_set_m128i(_mm_unpackhi_epi16(mv, mv), _mm_unpacklo_epi16(mv, mv));
    const __m256i m4 = _mm256_set1_epi8(15);
    /* C integer chains per row: vpdpwssd's latency is several cycles */
    const int C = m == 1 ? 4 : m == 2 ? 2 : 1;
    __m256i it[4][QMAX_ROWS];
    for (int k = 0; k < C; k++)
        for (int r = 0; r < m; r++)
            it[k][r] = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        __m256i q = loadu(w->qs + 32 * c);
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        __m256i s_lo = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * 2 * c)));
        __m256i s_hi = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c + 1))));
        for (int r = 0; r < m; r++) {
            const int8_t *aq = AROW(tpi_q8k, a, r, as)->qs + 64 * c;
            it[(2 * c) % C][r] = DOT_PAIRS(it[(2 * c) % C][r], _mm256_maddubs_epi16(lo, loadu(aq)), s_lo);
            it[(2 * c + 1) % C][r] = DOT_PAIRS(it[(2 * c + 1) % C][r], _mm256_maddubs_epi16(hi, loadu(aq + 32)), s_hi);
        }
    }
    float d = h2f(w->d), dmin = h2f(w->dmin);
    for (int r = 0; r < m; r++) {
        const tpi_q8k *ar = AROW(tpi_q8k, a, r, as);
        __m256i mi = _mm256_madd_epi16(loadu(ar->bsums), mdup), sum = it[0][r];
        for (int k = 1; k < C; k++)
            sum = _mm256_add_epi32(sum, it[k][r]);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * ar->d), acc[r]);
        acc[r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_set1_ps(dmin * ar->d), acc[r]);
    }
}

/* ---- Q6_K: d * sum_g sc_g * (sum(q * a) - 32 * sum(a)) over groups of 16 ---- */
QINLINE void q6_k_step(const tpi_block_q6_k *w, const tpi_q8k *a, size_t as, const int m, __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    const int C = m == 1 ? 4 : m == 2 ? 2 : 1;
    __m256i it[4][QMAX_ROWS];
    for (int k = 0; k < C; k++)
        for (int r = 0; r < m; r++)
            it[k][r] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i l0 = loadu(w->ql + 64 * h), l1 = loadu(w->ql + 64 * h + 32), hb = loadu(w->qh + 32 * h);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                               _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x03)), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x0c)), 2));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_srli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8((char)0xc0)), 2));
        /* scales of this half's 8 groups as int16 in both 128-bit lanes;
         * q[k]'s low lane is group 2k, its high lane group 2k + 1 */
        __m128i s8 = _mm_loadl_epi64((const __m128i *)(w->scales + 8 * h));
        __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8));
        for (int k = 0; k < 4; k++) {
            __m256i ctl = _mm256_set_m128i(_mm_set1_epi16((short)(0x0302 + 0x0404 * k)),
                                           _mm_set1_epi16((short)(0x0100 + 0x0404 * k)));
            __m256i sk = _mm256_shuffle_epi8(s16, ctl);
            for (int r = 0; r < m; r++) {
                const int8_t *aq = AROW(tpi_q8k, a, r, as)->qs + 128 * h + 32 * k;
                it[k % C][r] = DOT_PAIRS(it[k % C][r], _mm256_maddubs_epi16(q[k], loadu(aq)), sk);
            }
        }
    }
    __m256i sall = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
    float d = h2f(w->d);
    for (int r = 0; r < m; r++) {
        const tpi_q8k *ar = AROW(tpi_q8k, a, r, as);
        __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(loadu(ar->bsums), sall), 5), sum = it[0][r];
        for (int k = 1; k < C; k++)
            sum = _mm256_add_epi32(sum, it[k][r]);
        it[0][r] = sum;
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(it[0][r], off)), _mm256_set1_ps(d * ar->d),
                                 acc[r]);
    }
}

#define K_ROWS(name, wtype, atype)                                                                         \
    QINLINE void name##_rows(int64_t nb, const void *wv, const void *av, size_t as, const int m, float *y,   \
                             int64_t ys)                                                                   \
    {                                                                                                      \
        const wtype *w = wv;                                                                               \
        const atype *a = av;                                                                               \
        __m256 acc[QMAX_ROWS];                                                                             \
        for (int r = 0; r < m; r++)                                                                        \
            acc[r] = _mm256_setzero_ps();                                                                  \
        for (int64_t b = 0; b < nb; b++)                                                                   \
            name##_step(w + b, a + b, as, m, acc);                                                         \
        for (int r = 0; r < m; r++)                                                                        \
            y[r * ys] = hsum(acc[r]);                                                                      \
    }
K_ROWS(q4_k, tpi_block_q4_k, tpi_q8k)
K_ROWS(q6_k, tpi_block_q6_k, tpi_q8k)

/* One entry per type: the row count becomes a constant in each case, so the
 * loops over rows unroll and the accumulators stay in registers. Up to
 * QMAX_ROWS rows in one pass (the set's register file holds that many
 * rows' accumulators); more go in two passes. */
#define Q_ENTRY(name)                                                                                      \
    static void QS(name)(int64_t nb, const void *w, const void *a, size_t as, int m, float *y, int64_t ys)  \
    {                                                                                                      \
        if (m > QMAX_ROWS) {                                                                               \
            QS(name)(nb, w, a, as, QMAX_ROWS, y, ys);                                                      \
            QS(name)(nb, w, (const uint8_t *)a + QMAX_ROWS * as, as, m - QMAX_ROWS, y + QMAX_ROWS * ys, ys); \
            return;                                                                                        \
        }                                                                                                  \
        switch (m) {                                                                                       \
        case 1: name##_rows(nb, w, a, as, 1, y, ys); break;                                                \
        case 2: name##_rows(nb, w, a, as, 2, y, ys); break;                                                \
        case 3: name##_rows(nb, w, a, as, 3, y, ys); break;                                                \
        case 4: name##_rows(nb, w, a, as, 4, y, ys); break;                                                \
        case 5: name##_rows(nb, w, a, as, 5 < QMAX_ROWS ? 5 : QMAX_ROWS, y, ys); break;                    \
        case 6: name##_rows(nb, w, a, as, 6 < QMAX_ROWS ? 6 : QMAX_ROWS, y, ys); break;                    \
        case 7: name##_rows(nb, w, a, as, 7 < QMAX_ROWS ? 7 : QMAX_ROWS, y, ys); break;                    \
        default: name##_rows(nb, w, a, as, QMAX_ROWS, y, ys); break;                                       \
        }                                                                                                  \
    }
Q_ENTRY(q8_0)
Q_ENTRY(q4_0)
Q_ENTRY(q4_k)
Q_ENTRY(q6_k)

tpi_qdot_fn QS(qdot)(tpi_dtype t)
{
    switch (t) {
    case TPI_Q8_0: return QS(q8_0);
    case TPI_Q4_0: return QS(q4_0);
    case TPI_Q4_K: return QS(q4_k);
    case TPI_Q6_K: return QS(q6_k);
    default: return NULL;
    }
}
