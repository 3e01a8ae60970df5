/* Causal attention over the KV cache, tiled over keys with an online softmax
 * (FlashAttention, Dao et al. 2022, Alg. 1): no [seq x seq] score matrix is
 * ever formed, only a row of BK scores at a time.
 *
 * Work is cut into items of (one local KV head, a block of BQ queries); an
 * item holds every row (query i, query head h) of that block whose head
 * reads this KV head, so the `group` heads of a GQA group share each K tile
 * (transposed once per item into Kt[head_dim][BK], making the score loop a
 * broadcast of q[d] times 8 consecutive keys) and each V tile (read from L1).
 * Prefill has many items (KV heads x query blocks); decode has one per KV
 * head. Items are scheduled dynamically since causal blocks differ in cost. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attention_tile.h"
#include "backend/cpu/kernels_avx2.h"
#include "backend/cpu/simd_avx2.h"

#define BQ 16 /* queries per item */
#define BK TPI_ATTN_BK
#define MAX_HEAD_DIM 256

typedef struct item_scratch {
    float *kt;   /* [head_dim][BK] transposed K tile */
    float *o;    /* [rows][head_dim] unnormalised outputs */
    float *m, *l; /* [rows] running max and sum of the softmax */
} item_scratch;

static int64_t first_key(const tpi_attn_shape *s, int64_t pos)
{
    return s->window && pos - s->window + 1 > 0 ? pos - s->window + 1 : 0;
}

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

/* o[hd] = o * corr + sum over j in [ja, jb) of p[j] * vt[j] (vt rows of
 * stride vs), in chunks of 64 dims so the chunk's accumulators stay in
 * registers while the keys stream by. */
static void accumulate_pv(float *o, float corr, const float *p, const float *vt, int64_t vs, int64_t ja, int64_t jb,
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
                const float *vr = vt + j * vs + d0;
                for (int e = 0; e < 8; e++)
                    acc[e] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + e * 8), acc[e]);
            }
        } else {
            for (int64_t j = ja; j < jb; j++) {
                __m256 pj = _mm256_broadcast_ss(p + j);
                const float *vr = vt + j * vs + d0;
                for (int64_t e = 0; e < nv; e++)
                    acc[e] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + e * 8), acc[e]);
            }
        }
        for (int64_t e = 0; e < nv; e++)
            _mm256_storeu_ps(o + d0 + e * 8, acc[e]);
    }
}

/* kt[d][j] = k[j][d] for the tile's tn keys (rows of stride ks), zero for
 * j >= tn: done once per item and tile for every row, so with one query
 * (decode) it was half the attention time as scalar copies; 8 x 8 blocks
 * through registers take a third of the instructions.
 *
 * It also prefetches the next tile's nn rows of K and V (kn, vn), a line per
 * 16 dims: a decode reads each cached position once, in 16 KB tiles of K
 * and V by turns, which the hardware prefetcher follows badly; without this
 * a 1,000-position decode spent 14 % of its time in attention (perf), 10x
 * its FLOPs, stalled on the cache's lines. */
static void transpose_tile(float *kt, const float *k, int64_t ks, int64_t tn, int64_t hd, const float *kn,
                           const float *vn, int64_t nn)
{
    int64_t t8 = tn / 8 * 8;
    for (int64_t j0 = 0; j0 < t8; j0 += 8)
        for (int64_t d0 = 0; d0 < hd; d0 += 8) {
            if (!(d0 & 15))
                for (int64_t j = j0; j < j0 + 8 && j < nn; j++) {
                    _mm_prefetch((const char *)(kn + j * ks + d0), _MM_HINT_T0);
                    _mm_prefetch((const char *)(vn + j * ks + d0), _MM_HINT_T0);
                }
            const float *kr = k + j0 * ks + d0;
            __m256 r0 = _mm256_loadu_ps(kr), r1 = _mm256_loadu_ps(kr + ks), r2 = _mm256_loadu_ps(kr + 2 * ks),
                   r3 = _mm256_loadu_ps(kr + 3 * ks), r4 = _mm256_loadu_ps(kr + 4 * ks),
                   r5 = _mm256_loadu_ps(kr + 5 * ks), r6 = _mm256_loadu_ps(kr + 6 * ks),
                   r7 = _mm256_loadu_ps(kr + 7 * ks);
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
            kt[d * BK + j] = j < tn ? k[j * ks + d] : 0.0f;
}

/* The 256-bit tile step, one row at a time. */
static void avx2_tile(const tpi_attn_rows *rr, const float *kt, const float *vt, int64_t vs, int64_t ja, int64_t jb,
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
        accumulate_pv(rr->o[r], corr, sc, vt, vs, ja, jb, hd);
    }
}

static void run_item(float *out, const float *q, const int64_t *pos, const float *k, const float *v,
                     const tpi_attn_shape *s, int64_t kvl, int64_t h_lo, int64_t h_hi, int64_t i0, int64_t i1,
                     item_scratch *w, tpi_attn_tile_fn tile)
{
    int64_t hd = s->head_dim, qdim = s->n_heads * hd, nh = h_hi - h_lo;
    int64_t rows = (i1 - i0) * nh;
    int64_t jlo = INT64_MAX, jhi = -1;
    for (int64_t i = i0; i < i1; i++) {
        int64_t a = first_key(s, pos[i]);
        if (a < jlo)
            jlo = a;
        if (pos[i] > jhi)
            jhi = pos[i];
    }
    for (int64_t r = 0; r < rows; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0;
    }
    memset(w->o, 0, (size_t)rows * (size_t)hd * sizeof *w->o);
    const float *kh = k + kvl * s->kv_head_stride, *vh = v + kvl * s->kv_head_stride;
    for (int64_t t0 = jlo / BK * BK; t0 <= jhi; t0 += BK) {
        int64_t tn = jhi + 1 - t0 < BK ? jhi + 1 - t0 : BK, t1 = t0 + BK;
        int64_t nn = jhi + 1 - t1 < BK ? jhi + 1 - t1 : BK; /* keys in the next tile (<= 0: none) */
        transpose_tile(w->kt, kh + t0 * s->kv_pos_stride, s->kv_pos_stride, tn, hd, kh + t1 * s->kv_pos_stride,
                       vh + t1 * s->kv_pos_stride, nn);
        for (int64_t i = i0; i < i1; i++) {
            /* Visible keys of query i inside this tile: [ja, jb) tile-relative. */
            int64_t ja = first_key(s, pos[i]) - t0, jb = pos[i] + 1 - t0;
            if (ja < 0)
                ja = 0;
            if (jb > tn)
                jb = tn;
            if (ja >= jb)
                continue;
            /* the heads of query i, up to four at a time (the 512-bit step
             * shares each K and V load between them) */
            for (int64_t h = h_lo; h < h_hi; h += TPI_ATTN_ROWS) {
                tpi_attn_rows rr = {.n = h_hi - h < TPI_ATTN_ROWS ? (int)(h_hi - h) : TPI_ATTN_ROWS};
                for (int e = 0; e < rr.n; e++) {
                    int64_t r = (i - i0) * nh + (h + e - h_lo);
                    rr.q[e] = q + i * qdim + (h + e) * hd;
                    rr.o[e] = w->o + r * hd;
                    rr.m[e] = w->m + r;
                    rr.l[e] = w->l + r;
                }
                tile(&rr, w->kt, vh + t0 * s->kv_pos_stride, s->kv_pos_stride, ja, jb, hd, s->scale);
            }
        }
    }
    for (int64_t i = i0; i < i1; i++)
        for (int64_t h = h_lo; h < h_hi; h++) {
            int64_t r = (i - i0) * nh + (h - h_lo);
            float inv = 1.0f / w->l[r];
            float *oi = out + i * qdim + h * hd;
            for (int64_t d = 0; d < hd; d++)
                oi[d] = w->o[r * hd + d] * inv;
        }
}

void tpi_cpu_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *k, const float *v,
                       const tpi_attn_shape *s, tpi_attn_tile_fn tile)
{
    int64_t hd = s->head_dim;
    if (hd % 8 || hd > MAX_HEAD_DIM || s->group <= 0) {
        tpi_backend_cpu_ref()->attention(out, q, n, pos, k, v, s);
        return;
    }
    if (n <= 0 || s->n_heads <= 0)
        return;
    /* Local KV heads read by local query heads h: (q_head0 + h) / group - kv_head0. */
    int64_t kv_first = s->q_head0 / s->group - s->kv_head0;
    int64_t kv_last = (s->q_head0 + s->n_heads - 1) / s->group - s->kv_head0;
    int64_t n_kv = kv_last - kv_first + 1, n_qb = (n + BQ - 1) / BQ;
    int64_t max_rows = BQ * (s->group < s->n_heads ? s->group : s->n_heads);
    int64_t n_items = n_kv * n_qb;
    int fail = 0;
#pragma omp parallel if (n_items > 1)
    {
        item_scratch w;
        /* 64-byte aligned: the 512-bit tile step reads them a line per zmm;
         * at 32 bytes half its loads split across two lines (bench_kernels
         * 1 5 a, 1 thread: decode at ctx 512 0.066-0.078 ms aligned to 32,
         * 0.053-0.055 aligned to 64) */
        w.kt = aligned_alloc(64, (size_t)hd * BK * sizeof(float));
        w.o = aligned_alloc(64, ((size_t)max_rows * (size_t)hd * sizeof(float) + 63) / 64 * 64);
        w.m = malloc((size_t)max_rows * sizeof(float));
        w.l = malloc((size_t)max_rows * sizeof(float));
        if (!w.kt || !w.o || !w.m || !w.l) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp barrier
        int failed;
#pragma omp atomic read
        failed = fail;
        if (!failed) {
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < n_items; it++) {
                int64_t kvl = kv_first + it / n_qb, qb = it % n_qb;
                /* query heads of this rank that read global KV head kv_head0 + kvl */
                int64_t g0 = (s->kv_head0 + kvl) * s->group - s->q_head0;
                int64_t h_lo = g0 > 0 ? g0 : 0, h_hi = g0 + s->group < s->n_heads ? g0 + s->group : s->n_heads;
                int64_t i0 = qb * BQ, i1 = i0 + BQ < n ? i0 + BQ : n;
                run_item(out, q, pos, k, v, s, kvl, h_lo, h_hi, i0, i1, &w, tile);
            }
        }
        free(w.kt);
        free(w.o);
        free(w.m);
        free(w.l);
    }
    if (fail)
        tpi_backend_cpu_ref()->attention(out, q, n, pos, k, v, s);
}

void tpi_avx2_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *k, const float *v,
                        const tpi_attn_shape *s)
{
    tpi_cpu_attention(out, q, n, pos, k, v, s, avx2_tile);
}
