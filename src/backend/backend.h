#ifndef TPI_BACKEND_H
#define TPI_BACKEND_H
/* A backend owns the kernels the model graph calls (DESIGN.md "Backends and
 * kernels"). The graph never knows which implementation runs. Activations
 * are float32, row-major; weights keep their stored dtype. */
#include <stdint.h>

#include "core/dtype.h"
#include "tpinfer.h"

/* A weight matrix [out_features, in_features] (transformers' nn.Linear
 * layout), row-major, in its stored dtype. A block (quantized) type's row is
 * whole blocks: x's column 0 is the row's column k_off, and the row holds
 * ceil((k_off + cols) / block) blocks; the columns outside [k_off, k_off +
 * cols) multiply zeros. That lets a rank's slice of a row-parallel weight
 * (o_proj, down_proj) keep the file's blocks when its columns do not start or
 * end on a block boundary. */
typedef struct tpi_weight {
    tpi_dtype dtype;
    int64_t rows, cols;
    int64_t k_off;     /* block types only; 0 for float types */
    const void *data;  /* rows * cols elements (float types), or rows of whole blocks; may point into a file mapping */
    void *owned;       /* non-NULL when data was copied (strided slice, misaligned) */
    void *packed;      /* backend-private repacked copy, or NULL */
    int64_t packed_bytes;
} tpi_weight;

/* Shape of one attention call: the local query heads of this rank and the
 * KV heads they read. Query head h reads KV head (q_head0 + h) / group - kv_head0. */
typedef struct tpi_attn_shape {
    int64_t n_heads, head_dim;
    int64_t q_head0, group, kv_head0;
    /* The cache is read through a block table (a paged KV cache): cached
     * key/value of position j, local KV head h, dim d is
     * k[j / B][h * kv_head_stride + (j % B) * kv_pos_stride + d] with B =
     * block_positions; block_positions 0 means a single block holding every
     * position (a contiguous cache, k[0]). The model keeps each head's
     * positions in a block together (kv_pos_stride = head_dim), so decode
     * streams them. */
    int64_t block_positions, kv_pos_stride, kv_head_stride;
    int64_t window;     /* 0: full causal; else key j visible iff 0 <= pos - j < window */
    float scale;
} tpi_attn_shape;

/* Where position j of local KV head h starts in blocks k (tpi_attn_shape). */
static inline const float *tpi_attn_kv_row(const float *const *k, const tpi_attn_shape *s, int64_t h, int64_t j)
{
    int64_t b = s->block_positions > 0 ? j / s->block_positions : 0;
    int64_t r = s->block_positions > 0 ? j % s->block_positions : j;
    return k[b] + h * s->kv_head_stride + r * s->kv_pos_stride;
}

/* Most weights one matmul_multi call takes at once (q, k, v). */
#define TPI_MATMUL_MAX 4

typedef struct tpi_backend {
    const char *name;
    /* Optional: repack w into w->packed for faster matmul (may be NULL). */
    int (*prepare_weight)(tpi_weight *w);
    /* y[n, w->rows] = x[n, w->cols] @ w^T */
    void (*matmul)(float *y, const float *x, int64_t n, const tpi_weight *w);
    /* ys[i][n, ws[i]->rows] = x @ ws[i]^T for i < count, where every ws[i]
     * has the same cols: one call for the weights that read the same input
     * (q, k, v; gate, up), so x is packed once and threads start once. */
    void (*matmul_multi)(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws);
    /* y = x / rms(x) * g, per row of `dim` (y may equal x) */
    void (*rmsnorm)(float *y, const float *x, const float *g, int64_t n, int64_t dim, float eps);
    /* Rotate-half RoPE (transformers' apply_rotary_pos_emb) on n rows of
     * n_heads heads, row stride `stride`; cos/sin are [n, head_dim/2]. */
    void (*rope)(float *x, int64_t n, int64_t stride, int64_t n_heads, int64_t head_dim, const float *cos,
                 const float *sin);
    /* Causal attention of n queries of one sequence at positions pos[] (q and
     * out [n, n_heads*head_dim]) over cached keys/values [0, max pos], read
     * through the sequence's blocks k[], v[] (tpi_attn_shape). The result
     * does not depend on the block size. */
    void (*attention)(float *out, const float *q, int64_t n, const int64_t *pos, const float *const *k,
                      const float *const *v, const tpi_attn_shape *s);
    /* g = silu(g) * u over n floats */
    void (*silu_mul)(float *g, const float *u, int64_t n);
} tpi_backend;

/* The plain C reference kernels. */
const tpi_backend *tpi_backend_cpu_ref(void);
/* The fastest CPU kernels this processor runs. */
const tpi_backend *tpi_backend_cpu(void);
/* The CPU kernel set named `set`: NULL, "" or "auto" for the fastest, else
 * "ref", "avx2" or "avx512"; a set this processor cannot run gives the
 * fastest it can. An unknown name is TPI_EINVAL (and *out the fastest). */
int tpi_backend_cpu_select(const char *set, const tpi_backend **out);
/* The set be with bf16 weights' prefill GEMM on bf16 activations and the
 * bf16 dot product (tpi_load_opts.bf16_activations): the AVX-512 set's
 * variant where the processor has AVX512_BF16, else be itself. */
const tpi_backend *tpi_backend_cpu_bf16(const tpi_backend *be);
/* The name of the set a CPU backend belongs to: "ref", "avx2", "avx512" or
 * "avx512+bf16". */
const char *tpi_backend_cpu_set(const tpi_backend *be);
void tpi_backend_set_threads(int n);
#endif
