/* The attention tile step with 512-bit vectors (attention_tile.h), used by
 * the cpu-avx512 backend. Why: at 1,000 cached positions a decode spent
 * 7.6 % of its time in attention (perf, one thread), 70 % of it in the
 * 256-bit score and P.V loops, which are FMA-bound: a zmm FMA does the work
 * of two ymm FMAs in the same slot on this core. Two heads of a query go
 * through together, so each K and V load serves two FMAs and the 4 zmm per
 * row (64 keys, or 64 dims) make 8 independent FMA chains, enough to hide
 * the FMA latency. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

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
 * for both rows, the last zmm covering only the lanes in `last`. */
INLINE void pv_chunk(float *const o[2], const float c[2], const float p[2][BK], const float *vt, int64_t vs,
                     int64_t ja, int64_t jb, int64_t d0, const int NV, __mmask16 last)
{
    __m512 a0[4], a1[4];
    for (int e = 0; e < NV; e++) {
        __mmask16 mk = e == NV - 1 ? last : 0xffff;
        a0[e] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o[0] + d0 + 16 * e), _mm512_set1_ps(c[0]));
        a1[e] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o[1] + d0 + 16 * e), _mm512_set1_ps(c[1]));
    }
    for (int64_t j = ja; j < jb; j++) {
        __m512 b0 = _mm512_set1_ps(p[0][j]), b1 = _mm512_set1_ps(p[1][j]);
        const float *vr = vt + j * vs + d0;
        for (int e = 0; e < NV; e++) {
            __m512 vv = e == NV - 1 ? _mm512_maskz_loadu_ps(last, vr + 16 * e) : _mm512_loadu_ps(vr + 16 * e);
            a0[e] = _mm512_fmadd_ps(b0, vv, a0[e]);
            a1[e] = _mm512_fmadd_ps(b1, vv, a1[e]);
        }
    }
    for (int e = 0; e < NV; e++) {
        __mmask16 mk = e == NV - 1 ? last : 0xffff;
        _mm512_mask_storeu_ps(o[0] + d0 + 16 * e, mk, a0[e]);
        _mm512_mask_storeu_ps(o[1] + d0 + 16 * e, mk, a1[e]);
    }
}

void tpi_avx512_attn_tile(const tpi_attn_rows *rr, const float *kt, const float *vt, int64_t vs, int64_t ja,
                          int64_t jb, int64_t hd, float scale)
{
    /* A lone row goes through as a pair with a copy of itself, whose
     * results land in `spare`. */
    float spare[256], spare_m = *rr->m[0], spare_l = *rr->l[0];
    const float *q[2] = {rr->q[0], rr->n > 1 ? rr->q[1] : rr->q[0]};
    float *o[2] = {rr->o[0], rr->n > 1 ? rr->o[1] : spare};
    float *m[2] = {rr->m[0], rr->n > 1 ? rr->m[1] : &spare_m}, *l[2] = {rr->l[0], rr->n > 1 ? rr->l[1] : &spare_l};
    if (rr->n < 2)
        memcpy(spare, rr->o[0], (size_t)hd * sizeof *spare);

    __m512 s[2][4];
    for (int e = 0; e < 4; e++)
        s[0][e] = s[1][e] = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; d++) {
        __m512 b0 = _mm512_set1_ps(q[0][d]), b1 = _mm512_set1_ps(q[1][d]);
        const float *kr = kt + d * BK;
        for (int e = 0; e < 4; e++) {
            __m512 kk = _mm512_loadu_ps(kr + 16 * e);
            s[0][e] = _mm512_fmadd_ps(b0, kk, s[0][e]);
            s[1][e] = _mm512_fmadd_ps(b1, kk, s[1][e]);
        }
    }

    /* visible keys as a bit mask over the tile; 0 <= ja < jb <= BK */
    uint64_t vis = (jb >= 64 ? ~0ull : (1ull << jb) - 1) & ~((1ull << ja) - 1);
    float p[2][BK] __attribute__((aligned(64))), corr[2];
    __m512 ninf = _mm512_set1_ps(-INFINITY), sc = _mm512_set1_ps(scale);
    for (int r = 0; r < 2; r++) {
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
            pv_chunk(o, corr, p, vt, vs, ja, jb, d0, 4, last);
            break;
        case 3:
            pv_chunk(o, corr, p, vt, vs, ja, jb, d0, 3, last);
            break;
        case 2:
            pv_chunk(o, corr, p, vt, vs, ja, jb, d0, 2, last);
            break;
        default:
            pv_chunk(o, corr, p, vt, vs, ja, jb, d0, 1, last);
        }
    }
}

void tpi_avx512_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *k,
                          const float *v, const tpi_attn_shape *s)
{
    tpi_cpu_attention(out, q, n, pos, k, v, s, tpi_avx512_attn_tile);
}
