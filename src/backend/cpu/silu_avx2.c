/* SiLU gating of the Llama MLP: g = silu(g) * u = g / (1 + e^-g) * u. */
#include <math.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/tuning.h"

void tpi_avx2_silu_mul(float *g, const float *u, int64_t n)
{
    const int64_t chunk = TPI_SILU_CHUNK;
    int64_t n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n_chunks > TPI_PARALLEL_MIN_FLOATS / TPI_SILU_CHUNK)
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t i = c * chunk, end = i + chunk < n ? i + chunk : n;
        const __m256 one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= end; i += 8) {
            __m256 x = _mm256_loadu_ps(g + i);
            /* e^-x overflows to +inf for x < -88.7, giving x / inf = -0 as the reference does */
            __m256 e = exp256_ps(_mm256_sub_ps(_mm256_setzero_ps(), x));
            _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
        }
        for (; i < end; i++)
            g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}
