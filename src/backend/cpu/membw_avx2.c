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

/* Each thread reads its share as STREAMS interleaved sequential streams
 * (its share's quarters side by side), with one accumulator per stream. A
 * core's read rate from memory is bound by how many lines it has in flight,
 * and the hardware prefetcher keeps more in flight over several streams: on
 * the Zen 5 VM one stream per thread read 44-51 GB/s with 2 threads where
 * four read 54-58 (bench_gemv_loop, read vs read4). The decode GEMV reads
 * four panels at once (gemv_avx512.c), so the yardstick must too, or the
 * GEMV would be judged against a rate below what the memory gives. */
#define STREAMS 4

double tpi_avx2_read_seconds(const float *buf, size_t bytes, int threads)
{
    size_t n = bytes / sizeof(float);
    volatile float sink = 0;
    double t = now();
#pragma omp parallel num_threads(threads)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t q = n / (size_t)nt / STREAMS / 16 * 16; /* floats per stream, whole lines */
        const float *b = buf + (size_t)id * q * STREAMS;
        __m256 a[STREAMS];
        for (int j = 0; j < STREAMS; j++)
            a[j] = _mm256_setzero_ps();
        for (size_t i = 0; i < q; i += 16)
            for (int j = 0; j < STREAMS; j++) {
                const float *p = b + (size_t)j * q + i;
                a[j] = _mm256_add_ps(a[j], _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)));
            }
        for (int j = 1; j < STREAMS; j++)
            a[0] = _mm256_add_ps(a[0], a[j]);
        float s[8];
        _mm256_storeu_ps(s, a[0]);
        if (s[0] == 1.25f) /* keeps the loads: the sum is otherwise unused */
            sink = s[0];
    }
    (void)sink;
    return now() - t;
}
