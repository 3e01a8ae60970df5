/* RMSNorm (transformers' LlamaRMSNorm): y = x / sqrt(mean(x^2) + eps) * g.
 * The sum of squares is accumulated in double, as the reference does, so the
 * two agree to float rounding whatever the row length. */
#include <math.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/tuning.h"

static void norm_row(float *y, const float *x, const float *g, int64_t dim, float eps)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t d = 0;
    for (; d + 8 <= dim; d += 8) {
        __m256 v = _mm256_loadu_ps(x + d);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double ss = t[0] + t[1] + t[2] + t[3];
    for (; d < dim; d++)
        ss += (double)x[d] * x[d];
    float r = (float)(1.0 / sqrt(ss / (double)dim + eps));
    __m256 rv = _mm256_set1_ps(r);
    for (d = 0; d + 8 <= dim; d += 8)
        _mm256_storeu_ps(y + d, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + d), rv), _mm256_loadu_ps(g + d)));
    for (; d < dim; d++)
        y[d] = x[d] * r * g[d];
}

void tpi_avx2_rmsnorm(float *y, const float *x, const float *g, int64_t n, int64_t dim, float eps)
{
#pragma omp parallel for schedule(static) if (n * dim >= TPI_PARALLEL_MIN_FLOATS)
    for (int64_t i = 0; i < n; i++)
        norm_row(y + i * dim, x + i * dim, g, dim, eps);
}
