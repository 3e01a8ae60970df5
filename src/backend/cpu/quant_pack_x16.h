/* The AVX-512 set's kernels on two packed groups at once (16 weight rows),
 * compiled by quant_avx512.c after quant_pack_simd.h and
 * quant_pack_k_simd.h, whose helpers and layouts they share.
 *
 * The eight-row kernels work on ymm registers, and a ymm vpdpbusd does half
 * the work of a zmm one in the same slot on Intel cores: with eight rows the
 * prefill GEMM is bounded at half the int8 dot peak. Here each step loads the
 * same 32 bytes of group g and of group g + 1 (the next group_bytes on) into
 * the two halves of a zmm register, so one vpdpbusd with the activation's
 * four bytes broadcast adds sixteen rows' products. Every lane computes what
 * the eight-row kernel computes for its row, in the same order, so the
 * results are the same bits; only the register width differs.
 *
 * Decode gains too, for another reason: the kernel reads two streams (each
 * prefetched, qprefetch), and one core keeps more misses in flight over two
 * than over one. On the Xeon, one thread's Q8_0 GEMV from memory went from
 * 83-86 % of the read bandwidth to 79-101 %, Q4_K from 70 % to 83-85 %
 * (`bench_quant 24 3 128 d`).
 *
 * The kernels write y[r * ys + i] for i < 16: rows 0..7 from group g, 8..15
 * from group g + 1; the caller makes sure both groups exist. */
#ifndef TPI_BACKEND_CPU_QUANT_PACK_X16_H
#define TPI_BACKEND_CPU_QUANT_PACK_X16_H

/* 32 bytes at p of group g (low half) and of group g + 1 (high half) */
QINLINE __m512i x16_load(const uint8_t *p, size_t gb)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu(p)), loadu(p + gb), 1);
}

/* 16 bytes at p of both groups, as one ymm */
QINLINE __m256i x16_load16(const uint8_t *p, size_t gb)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)p)),
                                   _mm_loadu_si128((const __m128i *)(const void *)(p + gb)), 1);
}

/* The sixteen rows' fp16 scales at p of each group, as floats */
QINLINE __m512 x16_scales(const uint8_t *p, size_t gb)
{
    return _mm512_cvtph_ps(x16_load16(p, gb));
}

/* acc + sixteen rows' sums of four products of w with the activation's
 * four bytes at a4, broadcast inside the instruction (GCC 12 does not fold
 * _mm512_set1_epi32 into vpdpbusd, and the front end bounds this loop). */
QINLINE __m512i x16_dot(__m512i acc, __m512i w, const void *a4)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const quad8 *)a4));
    return acc;
}

/* ---- Q8_0 and Q4_0 (quant_pack_simd.h's p32 kernels, sixteen rows) ---- */

QINLINE __m512i x16_p32_step(tpi_dtype t, const uint8_t *qs, size_t gb, int u)
{
    if (t == TPI_Q8_0)
        return _mm512_xor_si512(x16_load(qs + 32 * u, gb), _mm512_set1_epi8((char)0x80));
    __m512i w = x16_load(qs + 32 * (u % 4), gb);
    if (u >= 4)
        w = _mm512_srli_epi16(w, 4);
    return _mm512_and_si512(w, _mm512_set1_epi8(15));
}

QINLINE void x16_p32_rows(tpi_dtype t, int64_t nb, const uint8_t *g, const uint8_t *a, size_t as, const int m,
                          float *y, int64_t ys)
{
    const size_t gb = tpi_qpack_group_bytes(t, nb);
    const size_t xbytes = 2 * TPI_QPACK_ROWS + TPI_QPACK_ROWS * (t == TPI_Q8_0 ? 32 : 16);
    const int shift = t == TPI_Q8_0 ? 7 : 3;
    __m512 acc[QMAX_ROWS];
    for (int r = 0; r < m; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = g + (size_t)b * xbytes, *qs = xb + 2 * TPI_QPACK_ROWS;
        qprefetch(xb, xbytes, m);
        qprefetch(xb + gb, xbytes, m);
        const int j = (int)(b % 8);
        const size_t ag_off = (size_t)(b / 8) * sizeof(tpi_q8a8);
        __m512i it[2][QMAX_ROWS];
        for (int r = 0; r < m; r++) {
            it[0][r] = _mm512_slli_epi32(_mm512_set1_epi32(AROW(tpi_q8a8, a + ag_off, r, as)->nsum[j]), shift);
            it[1][r] = _mm512_setzero_si512();
        }
        QPK_UNROLL for (int u = 0; u < 8; u++) {
            __m512i w = x16_p32_step(t, qs, gb, u);
            for (int r = 0; r < m; r++)
                it[u % 2][r] = x16_dot(it[u % 2][r], w, AROW(tpi_q8a8, a + ag_off, r, as)->qs + 32 * j + 4 * u);
        }
        __m512 dw = x16_scales(xb, gb);
        for (int r = 0; r < m; r++) {
            const tpi_q8a8 *ag = AROW(tpi_q8a8, a + ag_off, r, as);
            __m512i s = _mm512_add_epi32(it[0][r], it[1][r]);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(ag->d[j])), acc[r]);
        }
    }
    for (int r = 0; r < m; r++)
        _mm512_storeu_ps(y + r * ys, acc[r]);
}

QINLINE void x16_p8_0_rows(int64_t nb, const uint8_t *g, const uint8_t *a, size_t as, const int m, float *y,
                           int64_t ys)
{
    x16_p32_rows(TPI_Q8_0, nb, g, a, as, m, y, ys);
}

QINLINE void x16_p4_0_rows(int64_t nb, const uint8_t *g, const uint8_t *a, size_t as, const int m, float *y,
                           int64_t ys)
{
    x16_p32_rows(TPI_Q4_0, nb, g, a, as, m, y, ys);
}

/* ---- Q4_K and Q6_K (quant_pack_k_simd.h's kernels, sixteen rows) ---- */

/* Two sub-blocks' scales of the sixteen rows as int16 pairs, row i's in
 * dword i (qpk_pairs_u8 / qpk_pairs_s8 of both groups). */
QINLINE __m512i x16_pairs(const uint8_t *p, size_t gb, const int sgn)
{
    __m256i b = x16_load16(p, gb);
    return sgn ? _mm512_cvtepi8_epi16(b) : _mm512_cvtepu8_epi16(b);
}

/* Half h of each pair as int32 (qpk_scale_of with VNNI). */
QINLINE __m512i x16_scale_of(__m512i pairs, const int h, const int sgn)
{
    if (h)
        return sgn ? _mm512_srai_epi32(pairs, 16) : _mm512_srli_epi32(pairs, 16);
    return sgn ? _mm512_srai_epi32(_mm512_slli_epi32(pairs, 16), 16)
               : _mm512_and_si512(pairs, _mm512_set1_epi32(0xffff));
}

/* tot[r] += s[r] x sc, then s[r] = 0, for the m activation rows */
#define X16_FINISH(tot, s, m, sc)                                                                          \
    for (int r_ = 0; r_ < (m); r_++) {                                                                     \
        (tot)[r_] = _mm512_add_epi32((tot)[r_], _mm512_mullo_epi32((s)[r_], (sc)));                        \
        (s)[r_] = _mm512_setzero_si512();                                                                  \
    }

/* qpk4_mins for sixteen rows */
QINLINE __m512i x16_qpk4_mins(const uint8_t *x, size_t gb, const tpi_q8k *ar)
{
    int32_t bs[4];
    _mm_storeu_si128((__m128i *)(void *)bs,
                     _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(const void *)ar->bsums),
                                    _mm_loadu_si128((const __m128i *)(const void *)(ar->bsums + 8))));
    __m512i ms = _mm512_setzero_si512();
    for (int p = 0; p < 4; p++)
        ms = _mm512_dpwssd_epi32(ms, x16_pairs(x + QPK4_MN + 16 * p, gb, 0), _mm512_set1_epi32(bs[p]));
    return ms;
}

QINLINE void x16_qpk4_rows(int64_t nb, const uint8_t *x, const uint8_t *a, size_t as, const int m, float *y,
                           int64_t ys)
{
    const size_t gb = tpi_qpack_group_bytes(TPI_Q4_K, nb);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[QMAX_ROWS];
    for (int r = 0; r < m; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, x += QPK4_BYTES) {
        qprefetch(x, QPK4_BYTES, m);
        qprefetch(x + gb, QPK4_BYTES, m);
        __m512i tot[QMAX_ROWS], s[QMAX_ROWS];
        for (int r = 0; r < m; r++)
            tot[r] = s[r] = _mm512_setzero_si512();
        QPK_UNROLL for (int j = 0; j < 8; j++) {
            const uint8_t *q = x + QPK4_QS + 256 * (j / 2);
            QPK_UNROLL for (int t = 0; t < 8; t++) {
                __m512i v = x16_load(q + 32 * t, gb);
                __m512i u = _mm512_and_si512(j % 2 ? _mm512_srli_epi16(v, 4) : v, m4);
                for (int r = 0; r < m; r++)
                    s[r] = x16_dot(s[r], u, (AROW(tpi_q8k, a, r, as) + b)->qs + 32 * j + 4 * t);
            }
            __m512i sc = x16_scale_of(x16_pairs(x + QPK4_SC + 16 * (j / 2), gb, 0), j % 2, 0);
            X16_FINISH(tot, s, m, sc)
        }
        __m512 d16 = x16_scales(x + QPK4_D, gb), dm16 = x16_scales(x + QPK4_DMIN, gb);
        for (int r = 0; r < m; r++) {
            const tpi_q8k *ar = AROW(tpi_q8k, a, r, as) + b;
            __m512 da = _mm512_set1_ps(ar->d);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[r]), _mm512_mul_ps(d16, da), acc[r]);
            acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(x16_qpk4_mins(x, gb, ar)), _mm512_mul_ps(dm16, da), acc[r]);
        }
    }
    for (int r = 0; r < m; r++)
        _mm512_storeu_ps(y + r * ys, acc[r]);
}

/* qpk6_quant for sixteen rows */
QINLINE __m512i x16_qpk6_quant(__m512i l4, __m512i hb, const int p)
{
    const __m512i m4 = _mm512_set1_epi8(15);
    switch (p) {
    case 0: return _mm512_or_si512(_mm512_and_si512(l4, m4), _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(0x03)), 4));
    case 1: return _mm512_or_si512(_mm512_and_si512(l4, m4), _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(0x0c)), 2));
    case 2: return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l4, 4), m4), _mm512_and_si512(hb, _mm512_set1_epi8(0x30)));
    default:
        return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l4, 4), m4),
                               _mm512_srli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8((char)0xc0)), 2));
    }
}

/* qpk6_offset for sixteen rows */
QINLINE __m512i x16_qpk6_offset(const uint8_t *x, size_t gb, const tpi_q8k *ar)
{
    __m512i off = _mm512_setzero_si512();
    for (int p = 0; p < 8; p++) {
        int32_t v;
        memcpy(&v, ar->bsums + 2 * p, 4);
        off = _mm512_dpwssd_epi32(off, x16_pairs(x + QPK6_SC + 16 * p, gb, 1), _mm512_set1_epi32(v));
    }
    return _mm512_slli_epi32(off, 5);
}

QINLINE void x16_qpk6_rows(int64_t nb, const uint8_t *x, const uint8_t *a, size_t as, const int m, float *y,
                           int64_t ys)
{
    const size_t gb = tpi_qpack_group_bytes(TPI_Q6_K, nb);
    __m512 acc[QMAX_ROWS];
    for (int r = 0; r < m; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, x += QPK6_BYTES) {
        qprefetch(x, QPK6_BYTES, m);
        qprefetch(x + gb, QPK6_BYTES, m);
        __m512i tot[QMAX_ROWS], s[QMAX_ROWS];
        for (int r = 0; r < m; r++)
            tot[r] = s[r] = _mm512_setzero_si512();
        QPK_UNROLL for (int h = 0; h < 2; h++)
            QPK_UNROLL for (int p = 0; p < 4; p++) {
                __m512i pairs = x16_pairs(x + QPK6_SC + 16 * (4 * h + p), gb, 1);
                QPK_UNROLL for (int uh = 0; uh < 2; uh++) {
                    QPK_UNROLL for (int u4 = 0; u4 < 4; u4++) {
                        int u = 4 * uh + u4;
                        __m512i l4 = x16_load(x + QPK6_QL + 32 * (16 * h + 8 * (p % 2) + u), gb);
                        __m512i q = x16_qpk6_quant(l4, x16_load(x + QPK6_QH + 32 * (8 * h + u), gb), p);
                        for (int r = 0; r < m; r++)
                            s[r] = x16_dot(s[r], q, (AROW(tpi_q8k, a, r, as) + b)->qs + 128 * h + 32 * p + 4 * u);
                    }
                    __m512i sc = x16_scale_of(pairs, uh, 1);
                    X16_FINISH(tot, s, m, sc)
                }
            }
        __m512 d16 = x16_scales(x + QPK6_D, gb);
        for (int r = 0; r < m; r++) {
            const tpi_q8k *ar = AROW(tpi_q8k, a, r, as) + b;
            __m512i sum = _mm512_sub_epi32(tot[r], x16_qpk6_offset(x, gb, ar));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d16, _mm512_set1_ps(ar->d)), acc[r]);
        }
    }
    for (int r = 0; r < m; r++)
        _mm512_storeu_ps(y + r * ys, acc[r]);
}

/* One entry per type (quant_pack_k_simd.h's QPK_ENTRY); each kernel finds
 * the second group tpi_qpack_group_bytes on. */
QPK_ENTRY(x16_p8_0)
QPK_ENTRY(x16_p4_0)
QPK_ENTRY(x16_qpk4)
QPK_ENTRY(x16_qpk6)

tpi_qpdot_fn QS(qpdot16)(tpi_dtype t)
{
    switch (t) {
    case TPI_Q8_0: return QS(x16_p8_0);
    case TPI_Q4_0: return QS(x16_p4_0);
    case TPI_Q4_K: return QS(x16_qpk4);
    case TPI_Q6_K: return QS(x16_qpk6);
    default: return NULL;
    }
}
#endif
