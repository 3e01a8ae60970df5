/* The read bandwidth that the decode GEMV is judged against. Decode streams
 * every weight byte once per token, so "percent of read bandwidth" needs the
 * memory's rate measured the same way (a sum over a buffer far larger than
 * the caches, on the threads that run the model) and at the same moment: on
 * a shared VM it moves by a factor of 1.5 from hour to hour. */
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include "backend/cpu/kernels_avx2.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Four independent accumulators per thread, so the adds never limit it. */
double tpi_avx2_read_seconds(const float *buf, size_t bytes, int threads)
{
    size_t n = bytes / sizeof(float) / 32 * 32;
    volatile float sink = 0;
    double t = now();
#pragma omp parallel num_threads(threads)
    {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i += 32) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(buf + i));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(buf + i + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(buf + i + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(buf + i + 24));
        }
        float s[8];
        _mm256_storeu_ps(s, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        if (s[0] == 1.25f) /* keeps the loads: the sum is otherwise unused */
            sink = s[0];
    }
    (void)sink;
    return now() - t;
}
