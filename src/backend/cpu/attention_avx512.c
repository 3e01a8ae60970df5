/* The attention tile step with 512-bit vectors (attention_tile.h), for the
 * cpu-avx512 set. The score and P.V loops are FMA-bound, and on a core with
 * 512-bit FMA units a zmm FMA does the work of two ymm FMAs in the same
 * slot. Up to four heads of a query go through together, so each K and V
 * load serves up to four FMAs and the 4 zmm per row (64 keys, or 64 dims)
 * make 8 or 16 independent FMA chains, enough to hide the FMA latency. */
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/attention_tile.h"

#define INLINE static inline __attribute__((always_inline))
#define BK TPI_ATTN_BK /* 4 zmm of keys */

/* e^x for 16 floats, as exp256_ps (simd_avx2.h): Cephes' reduction and
 * polynomial, x < -87.3 gives 0 and x > 88.7 gives +inf; 2^n by vscalefps. */
INLINE __m512 exp512_ps(__m512 x)
{
    const __m512 hi = _mm512_set1_ps(88.7f), lo = _mm512_set1_ps(-87.3f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    p = _mm512_scalef_ps(p, n);
    p = _mm512_mask_mov_ps(p, over, _mm512_set1_ps(__builtin_inff()));
    return _mm512_maskz_mov_ps((__mmask16)~under, p);
}

/* o_r[d0, d0 + 16 NV) = o_r * c_r + sum over j in [ja, jb) of p_r[j] v[j]
 * for the R rows, the last zmm covering only the lanes in `last`. */
INLINE void pv_chunk(float *const *o, const float *c, const float (*p)[BK], const float *const *vt, int64_t ja,
                     int64_t jb, int64_t d0, const int R, const int NV, __mmask16 last)
{
    __m512 a[4][4];
    for (int r = 0; r < R; r++)
        for (int e = 0; e < NV; e++)
            a[r][e] = _mm512_mul_ps(_mm512_maskz_loadu_ps(e == NV - 1 ? last : 0xffff, o[r] + d0 + 16 * e),
                                    _mm512_set1_ps(c[r]));
    for (int64_t j = ja; j < jb; j++) {
        const float *vr = vt[j] + d0;
        __m512 vv[4];
        for (int e = 0; e < NV; e++)
            vv[e] = e == NV - 1 ? _mm512_maskz_loadu_ps(last, vr + 16 * e) : _mm512_loadu_ps(vr + 16 * e);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(p[r][j]);
            for (int e = 0; e < NV; e++)
                a[r][e] = _mm512_fmadd_ps(b, vv[e], a[r][e]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int e = 0; e < NV; e++)
            _mm512_mask_storeu_ps(o[r] + d0 + 16 * e, e == NV - 1 ? last : 0xffff, a[r][e]);
}

/* The tile step for R (1, 2 or 4) rows: R x 4 zmm of scores or outputs,
 * so with 2 and 4 rows at least 8 independent FMA chains, and each K or V
 * load serves R FMAs (4 rows: 24 of the 32 zmm registers). */
INLINE void rows_step(const float *const *q, float *const *o, float *const *m, float *const *l, const float *kt,
                      const float *const *vt, int64_t ja, int64_t jb, int64_t hd, float scale, const int R)
{
    __m512 s[4][4];
    for (int r = 0; r < R; r++)
        for (int e = 0; e < 4; e++)
            s[r][e] = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; d++) {
        const float *kr = kt + d * BK;
        __m512 kk[4];
        for (int e = 0; e < 4; e++)
            kk[e] = _mm512_load_ps(kr + 16 * e);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(q[r][d]);
            for (int e = 0; e < 4; e++)
                s[r][e] = _mm512_fmadd_ps(b, kk[e], s[r][e]);
        }
    }

    /* visible keys as a bit mask over the tile; 0 <= ja < jb <= BK */
    uint64_t vis = (jb >= 64 ? ~0ull : (1ull << jb) - 1) & ~((1ull << ja) - 1);
    float p[4][BK] __attribute__((aligned(64))), corr[4];
    __m512 ninf = _mm512_set1_ps(-INFINITY), sc = _mm512_set1_ps(scale);
    for (int r = 0; r < R; r++) {
        __m512 mx = ninf;
        for (int e = 0; e < 4; e++) {
            s[r][e] = _mm512_mask_mul_ps(ninf, (__mmask16)(vis >> (16 * e)), s[r][e], sc);
            mx = _mm512_max_ps(mx, s[r][e]);
        }
        float m_old = *m[r], m_new = _mm512_reduce_max_ps(mx);
        if (m_old > m_new)
            m_new = m_old;
        /* exp(-inf) = 0: a row's first tile scales nothing. */
        corr[r] = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
        *m[r] = m_new;
        __m512 mv = _mm512_set1_ps(m_new), sum = _mm512_setzero_ps();
        for (int e = 0; e < 4; e++) {
            __m512 x = exp512_ps(_mm512_sub_ps(s[r][e], mv));
            _mm512_store_ps(p[r] + 16 * e, x);
            sum = _mm512_add_ps(sum, x);
        }
        *l[r] = *l[r] * corr[r] + _mm512_reduce_add_ps(sum);
    }

    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
        int64_t rem = hd - d0 < 64 ? hd - d0 : 64; /* a multiple of 8 */
        int nv = (int)((rem + 15) / 16);
        int tail = (int)(rem - 16 * (nv - 1));
        __mmask16 last = tail == 16 ? (__mmask16)0xffff : (__mmask16)((1u << tail) - 1);
        switch (nv) {
        case 4:
            pv_chunk(o, corr, p, vt, ja, jb, d0, R, 4, last);
            break;
        case 3:
            pv_chunk(o, corr, p, vt, ja, jb, d0, R, 3, last);
            break;
        case 2:
            pv_chunk(o, corr, p, vt, ja, jb, d0, R, 2, last);
            break;
        default:
            pv_chunk(o, corr, p, vt, ja, jb, d0, R, 1, last);
        }
    }
}

#define ROWS_FN(R)                                                                                           \
    static void rows_##R(const tpi_attn_rows *rr, int r0, const float *kt, const float *const *vt, int64_t ja, \
                         int64_t jb, int64_t hd, float scale)                                                \
    {                                                                                                        \
        rows_step(rr->q + r0, rr->o + r0, rr->m + r0, rr->l + r0, kt, vt, ja, jb, hd, scale, R);             \
    }
ROWS_FN(1)
ROWS_FN(2)
ROWS_FN(4)
#undef ROWS_FN

/* kt is 64-byte aligned (attention.c allocates it so). */
void tpi_avx512_attn_tile(const tpi_attn_rows *rr, const float *kt, const float *const *vt, int64_t ja, int64_t jb,
                          int64_t hd, float scale)
{
    for (int r0 = 0; r0 < rr->n;) {
        int left = rr->n - r0;
        if (left >= 4) {
            rows_4(rr, r0, kt, vt, ja, jb, hd, scale);
            r0 += 4;
        } else if (left >= 2) {
            rows_2(rr, r0, kt, vt, ja, jb, hd, scale);
            r0 += 2;
        } else {
            rows_1(rr, r0, kt, vt, ja, jb, hd, scale);
            r0 += 1;
        }
    }
}

void tpi_avx512_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                          const float *const *v, const tpi_attn_shape *s)
{
    tpi_cpu_attention(out, q, n, pos, k, v, s, tpi_avx512_attn_tile);
}
