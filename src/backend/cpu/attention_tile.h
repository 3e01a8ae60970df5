#ifndef TPI_BACKEND_CPU_ATTENTION_TILE_H
#define TPI_BACKEND_CPU_ATTENTION_TILE_H
/* The split between attention.c's driver (work items, K tiles transposed
 * once per item, the final division) and the per-tile arithmetic, which
 * exists in 256-bit (attention_avx2.c) and 512-bit (attention_avx512.c)
 * forms. */
#include <stdint.h>

#include "backend/backend.h"

#define TPI_ATTN_BK 64  /* keys per tile */
#define TPI_ATTN_ROWS 4 /* rows per tile step, at most */

/* Rows (query i, head h) that read the same keys: heads of one query. */
typedef struct tpi_attn_rows {
    int n;                                      /* 1..TPI_ATTN_ROWS */
    const float *q[TPI_ATTN_ROWS];              /* [head_dim] */
    float *o[TPI_ATTN_ROWS];                    /* [head_dim] unnormalised outputs so far */
    float *m[TPI_ATTN_ROWS], *l[TPI_ATTN_ROWS]; /* running max and sum of the softmax */
} tpi_attn_rows;

/* One tile's step of the online softmax for the rows: kt is the tile's K
 * transposed ([head_dim][TPI_ATTN_BK], zero past its keys, 64-byte
 * aligned), vr[j] the V row of the tile's key j (keys of one tile may lie in
 * several blocks of a paged cache), and keys [ja, jb) of the tile are
 * visible. */
typedef void (*tpi_attn_tile_fn)(const tpi_attn_rows *r, const float *kt, const float *const *vr, int64_t ja,
                                 int64_t jb, int64_t hd, float scale);

/* tpi_backend.attention with the given tile step; head_dim a multiple of 8
 * up to 256 (else the reference runs). */
void tpi_cpu_attention(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                       const float *const *v, const tpi_attn_shape *s, tpi_attn_tile_fn tile);

/* kt[d][j] = kr[j][d] for a tile's tn keys (kr[j]: key j's row), zero for
 * j >= tn up to TPI_ATTN_BK; prefetches the next tile's nn rows of K and V
 * (kn[j], vn[j]). AVX2 (attention_avx2.c). */
void tpi_avx2_transpose_tile(float *kt, const float *const *kr, int64_t tn, int64_t hd, const float *const *kn,
                             const float *const *vn, int64_t nn);

void tpi_avx512_attn_tile(const tpi_attn_rows *r, const float *kt, const float *const *vr, int64_t ja, int64_t jb,
                          int64_t hd, float scale);
#endif
