/* Causal attention over the KV cache, tiled over keys with an online softmax
 * (FlashAttention, Dao et al. 2022, Alg. 1): no [seq x seq] score matrix is
 * ever formed, only a row of TPI_ATTN_BK scores at a time. The driver both
 * CPU kernel sets share; the per-tile arithmetic is a set's (attention_tile.h).
 *
 * Work is cut into items of (one local KV head, a block of TPI_ATTN_BQ
 * queries); an item holds every row (query i, query head h) of that block
 * whose head reads this KV head, so the `group` heads of a GQA group share
 * each K tile (transposed once per item into Kt[head_dim][BK], making the
 * score loop a broadcast of q[d] times consecutive keys) and each V tile
 * (read from L1). Prefill has many items (KV heads x query blocks); decode
 * has one per KV head. Items are scheduled dynamically since causal blocks
 * differ in cost.
 *
 * The cache is read through a block table (tpi_attn_shape): each tile gets
 * the addresses of its keys' K and V rows, found block by block, so a tile
 * may span blocks of any size and the arithmetic, its order included, is the
 * same whatever the block size: a paged cache gives the bits a contiguous
 * one gives. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attention_tile.h"
#include "backend/cpu/tuning.h"

#define BQ TPI_ATTN_BQ
#define BK TPI_ATTN_BK
#define MAX_HEAD_DIM 256 /* larger heads go to the reference kernel (attention_tile.h) */

typedef struct item_scratch {
    float *kt;   /* [head_dim][BK] transposed K tile */
    float *o;    /* [rows][head_dim] unnormalised outputs */
    float *m, *l; /* [rows] running max and sum of the softmax */
} item_scratch;

static int64_t first_key(const tpi_attn_shape *s, int64_t pos)
{
    return s->window && pos - s->window + 1 > 0 ? pos - s->window + 1 : 0;
}

/* kr[j], vr[j]: the K and V rows of local KV head h at position t0 + j,
 * for j < tn (tn <= BK), one run of consecutive rows per block. */
static void tile_rows(const float **kr, const float **vr, const float *const *k, const float *const *v,
                      const tpi_attn_shape *s, int64_t h, int64_t t0, int64_t tn)
{
    int64_t bp = s->block_positions > 0 ? s->block_positions : INT64_MAX, ps = s->kv_pos_stride;
    for (int64_t j = 0; j < tn;) {
        int64_t p = t0 + j, b = p / bp, r = p - b * bp, run = bp - r < tn - j ? bp - r : tn - j;
        const float *kp = k[b] + h * s->kv_head_stride + r * ps, *vp = v[b] + h * s->kv_head_stride + r * ps;
        for (int64_t e = 0; e < run; e++, j++) {
            kr[j] = kp + e * ps;
            vr[j] = vp + e * ps;
        }
    }
}

static void run_item(float *out, const float *q, const int64_t *pos, const float *const *k, const float *const *v,
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
    /* this tile's rows and the next's (prefetched while this one runs) */
    const float *kr[2][BK], *vr[2][BK];
    int cur = 0;
    int64_t t0 = jlo / BK * BK;
    tile_rows(kr[cur], vr[cur], k, v, s, kvl, t0, jhi + 1 - t0 < BK ? jhi + 1 - t0 : BK);
    for (; t0 <= jhi; t0 += BK, cur = !cur) {
        int64_t tn = jhi + 1 - t0 < BK ? jhi + 1 - t0 : BK, t1 = t0 + BK;
        int64_t nn = jhi + 1 - t1 < BK ? jhi + 1 - t1 : BK; /* keys in the next tile (<= 0: none) */
        if (nn > 0)
            tile_rows(kr[!cur], vr[!cur], k, v, s, kvl, t1, nn);
        tpi_avx2_transpose_tile(w->kt, kr[cur], tn, hd, kr[!cur], vr[!cur], nn);
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
                tile(&rr, w->kt, vr[cur], ja, jb, hd, s->scale);
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

/* The FLOPs of a call (scores and the weighted sum, 4 per key and dim),
 * which decide whether it pays to wake the threads (tuning.h). */
static int64_t attn_flops(int64_t n, const int64_t *pos, const tpi_attn_shape *s)
{
    int64_t keys = 0;
    for (int64_t i = 0; i < n; i++)
        keys += s->window > 0 && pos[i] + 1 > s->window ? s->window : pos[i] + 1;
    return 4 * keys * s->n_heads * s->head_dim;
}

void tpi_cpu_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                       const float *const *v, const tpi_attn_shape *s, tpi_attn_tile_fn tile)
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
#pragma omp parallel if (n_items > 1 && attn_flops(n, pos, s) >= TPI_PAR_MIN_ATTN_FLOPS)
    {
        item_scratch w;
        /* 64-byte aligned: the 512-bit tile step reads them a line per zmm;
         * at 32 bytes half its loads would split across two lines */
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
