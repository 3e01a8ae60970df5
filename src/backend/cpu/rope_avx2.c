/* Rotate-half RoPE (transformers' apply_rotary_pos_emb): for each head, the
 * pair (x[d], x[d + half]) is rotated by the angle whose cos/sin the caller
 * computed for this row's position. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/tuning.h"

static void rope_head(float *v, const float *c, const float *s, int64_t half)
{
    int64_t d = 0;
    for (; d + 8 <= half; d += 8) {
        __m256 a = _mm256_loadu_ps(v + d), b = _mm256_loadu_ps(v + d + half);
        __m256 cv = _mm256_loadu_ps(c + d), sv = _mm256_loadu_ps(s + d);
        _mm256_storeu_ps(v + d, _mm256_fmsub_ps(a, cv, _mm256_mul_ps(b, sv)));
        _mm256_storeu_ps(v + d + half, _mm256_fmadd_ps(b, cv, _mm256_mul_ps(a, sv)));
    }
    for (; d < half; d++) {
        float a = v[d], b = v[d + half];
        v[d] = a * c[d] - b * s[d];
        v[d + half] = b * c[d] + a * s[d];
    }
}

void tpi_avx2_rope(float *x, int64_t n, int64_t stride, int64_t n_heads, int64_t head_dim, const float *cos,
                   const float *sin)
{
    int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static) if (n * n_heads * head_dim >= TPI_PARALLEL_MIN_FLOATS)
    for (int64_t i = 0; i < n; i++)
        for (int64_t h = 0; h < n_heads; h++)
            rope_head(x + i * stride + h * head_dim, cos + i * half, sin + i * half, half);
}
