/* The AVX2 parts of attention (attention.c): the 256-bit tile step and the
 * K tile transpose that both kernel sets use. */
#include <math.h>

#include "backend/cpu/attention_tile.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_avx2.h"

#define BK TPI_ATTN_BK

/* s[0..BK) = q . Kt[:, j] for the tile; keys past the tile are zero in Kt. */
static void scores(float *sc, const float *q, const float *kt, int64_t hd)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps(), a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(),
           a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; d++) {
        __m256 qd = _mm256_broadcast_ss(q + d);
        const float *kr = kt + d * BK;
        a0 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 0), a0);
        a1 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 8), a1);
        a2 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 16), a2);
        a3 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 24), a3);
        a4 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 32), a4);
        a5 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 40), a5);
        a6 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 48), a6);
        a7 = _mm256_fmadd_ps(qd, _mm256_load_ps(kr + 56), a7);
    }
    _mm256_store_ps(sc + 0, a0);
    _mm256_store_ps(sc + 8, a1);
    _mm256_store_ps(sc + 16, a2);
    _mm256_store_ps(sc + 24, a3);
    _mm256_store_ps(sc + 32, a4);
    _mm256_store_ps(sc + 40, a5);
    _mm256_store_ps(sc + 48, a6);
    _mm256_store_ps(sc + 56, a7);
}

/* o[hd] = o * corr + sum over j in [ja, jb) of p[j] * vt[j] (vt[j]: key
 * j's V row), in chunks of 64 dims so the chunk's accumulators stay in
 * registers while the keys stream by. */
static void accumulate_pv(float *o, float corr, const float *p, const float *const *vt, int64_t ja, int64_t jb,
                          int64_t hd)
{
    __m256 cv = _mm256_set1_ps(corr);
    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
        int64_t nv = (hd - d0) / 8 < 8 ? (hd - d0) / 8 : 8;
        __m256 acc[8];
        for (int64_t e = 0; e < nv; e++)
            acc[e] = _mm256_mul_ps(_mm256_loadu_ps(o + d0 + e * 8), cv);
        if (nv == 8) {
            for (int64_t j = ja; j < jb; j++) {
                __m256 pj = _mm256_broadcast_ss(p + j);
                const float *vr = vt[j] + d0;
                for (int e = 0; e < 8; e++)
                    acc[e] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + e * 8), acc[e]);
            }
        } else {
            for (int64_t j = ja; j < jb; j++) {
                __m256 pj = _mm256_broadcast_ss(p + j);
                const float *vr = vt[j] + d0;
                for (int64_t e = 0; e < nv; e++)
                    acc[e] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + e * 8), acc[e]);
            }
        }
        for (int64_t e = 0; e < nv; e++)
            _mm256_storeu_ps(o + d0 + e * 8, acc[e]);
    }
}

/* 8 x 8 blocks through registers: a third of the instructions of scalar
 * copies, which matters in decode, where one query shares each transposed
 * tile with nothing. The next tile's K and V rows are prefetched a line per
 * 16 dims, since a decode reads each cached position once, in tiles of K and
 * V by turns, which the hardware prefetcher follows poorly. */
void tpi_avx2_transpose_tile(float *kt, const float *const *k, int64_t tn, int64_t hd, const float *const *kn,
                             const float *const *vn, int64_t nn)
{
    int64_t t8 = tn / 8 * 8;
    for (int64_t j0 = 0; j0 < t8; j0 += 8)
        for (int64_t d0 = 0; d0 < hd; d0 += 8) {
            if (!(d0 & 15))
                for (int64_t j = j0; j < j0 + 8 && j < nn; j++) {
                    _mm_prefetch((const char *)(kn[j] + d0), _MM_HINT_T0);
                    _mm_prefetch((const char *)(vn[j] + d0), _MM_HINT_T0);
                }
            const float *const *kr = k + j0;
            __m256 r0 = _mm256_loadu_ps(kr[0] + d0), r1 = _mm256_loadu_ps(kr[1] + d0),
                   r2 = _mm256_loadu_ps(kr[2] + d0), r3 = _mm256_loadu_ps(kr[3] + d0),
                   r4 = _mm256_loadu_ps(kr[4] + d0), r5 = _mm256_loadu_ps(kr[5] + d0),
                   r6 = _mm256_loadu_ps(kr[6] + d0), r7 = _mm256_loadu_ps(kr[7] + d0);
            __m256 u0 = _mm256_unpacklo_ps(r0, r1), u1 = _mm256_unpackhi_ps(r0, r1), u2 = _mm256_unpacklo_ps(r2, r3),
                   u3 = _mm256_unpackhi_ps(r2, r3), u4 = _mm256_unpacklo_ps(r4, r5), u5 = _mm256_unpackhi_ps(r4, r5),
                   u6 = _mm256_unpacklo_ps(r6, r7), u7 = _mm256_unpackhi_ps(r6, r7);
            __m256 v0 = _mm256_shuffle_ps(u0, u2, 0x44), v1 = _mm256_shuffle_ps(u0, u2, 0xee),
                   v2 = _mm256_shuffle_ps(u1, u3, 0x44), v3 = _mm256_shuffle_ps(u1, u3, 0xee),
                   v4 = _mm256_shuffle_ps(u4, u6, 0x44), v5 = _mm256_shuffle_ps(u4, u6, 0xee),
                   v6 = _mm256_shuffle_ps(u5, u7, 0x44), v7 = _mm256_shuffle_ps(u5, u7, 0xee);
            float *o = kt + d0 * BK + j0;
            _mm256_store_ps(o + 0 * BK, _mm256_permute2f128_ps(v0, v4, 0x20));
            _mm256_store_ps(o + 1 * BK, _mm256_permute2f128_ps(v1, v5, 0x20));
            _mm256_store_ps(o + 2 * BK, _mm256_permute2f128_ps(v2, v6, 0x20));
            _mm256_store_ps(o + 3 * BK, _mm256_permute2f128_ps(v3, v7, 0x20));
            _mm256_store_ps(o + 4 * BK, _mm256_permute2f128_ps(v0, v4, 0x31));
            _mm256_store_ps(o + 5 * BK, _mm256_permute2f128_ps(v1, v5, 0x31));
            _mm256_store_ps(o + 6 * BK, _mm256_permute2f128_ps(v2, v6, 0x31));
            _mm256_store_ps(o + 7 * BK, _mm256_permute2f128_ps(v3, v7, 0x31));
        }
    for (int64_t j = t8; j < BK; j++)
        for (int64_t d = 0; d < hd; d++)
            kt[d * BK + j] = j < tn ? k[j][d] : 0.0f;
}

/* The 256-bit tile step, one row at a time. */
static void avx2_tile(const tpi_attn_rows *rr, const float *kt, const float *const *vt, int64_t ja, int64_t jb,
                      int64_t hd, float scale_f)
{
    float sc[BK] __attribute__((aligned(32)));
    for (int r = 0; r < rr->n; r++) {
        scores(sc, rr->q[r], kt, hd);
        __m256 scale = _mm256_set1_ps(scale_f), ninf = _mm256_set1_ps(-INFINITY);
        __m256i lo = _mm256_set1_epi32((int)ja - 1), hi = _mm256_set1_epi32((int)jb);
        __m256 mx = ninf;
        for (int j = 0; j < BK; j += 8) {
            __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 vis =
                _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(idx, lo), _mm256_cmpgt_epi32(hi, idx)));
            __m256 x = _mm256_blendv_ps(ninf, _mm256_mul_ps(_mm256_load_ps(sc + j), scale), vis);
            _mm256_store_ps(sc + j, x);
            mx = _mm256_max_ps(mx, x);
        }
        float m_old = *rr->m[r], m_new = hmax256_ps(mx);
        if (m_old > m_new)
            m_new = m_old;
        /* exp(-inf) = 0: a row's first tile scales nothing. */
        float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
        *rr->m[r] = m_new;
        __m256 mv = _mm256_set1_ps(m_new), sum = _mm256_setzero_ps();
        for (int j = 0; j < BK; j += 8) {
            __m256 e = exp256_ps(_mm256_sub_ps(_mm256_load_ps(sc + j), mv));
            _mm256_store_ps(sc + j, e);
            sum = _mm256_add_ps(sum, e);
        }
        *rr->l[r] = *rr->l[r] * corr + hsum256_ps(sum);
        accumulate_pv(rr->o[r], corr, sc, vt, ja, jb, hd);
    }
}

void tpi_avx2_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                        const float *const *v, const tpi_attn_shape *s)
{
    tpi_cpu_attention(out, q, n, pos, k, v, s, avx2_tile);
}
