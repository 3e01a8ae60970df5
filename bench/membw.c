/* The read bandwidth that the decode GEMV is judged against. Decode streams
 * every weight byte once per token, so "percent of read bandwidth" needs the
 * memory's rate measured the same way (a sum over a buffer far larger than
 * the caches, on the threads that run the model) and at the same moment: on
 * a shared machine it moves by a factor of 1.5 from hour to hour. */
#include <immintrin.h>
#include <omp.h>

#include "core/clock.h"
#include "peaks.h"

/* Each thread reads its share as STREAMS interleaved sequential streams
 * (its share's quarters side by side), with one accumulator per stream, and
 * prefetches each line PREFETCH bytes ahead. A core's read rate from memory
 * is bound by how many lines it has in flight, and both keep more in flight.
 * bench_gemv_loop from memory on a Zen 5, 1 and 2 threads: one stream
 * (read) 29.3 and 46.4 GB/s, four (read4) 30.1 and 59.6, four prefetched
 * (read4pf) 31.9 and 60.5; eight streams read less than four. The decode
 * GEMV reads four panels at once with the same prefetch (gemv_avx512.c), so
 * the yardstick does too: judged against a slower way of reading, the GEMV
 * would look better than it is. */
#define STREAMS 4
#define PREFETCH 2048

__attribute__((target("avx2"))) static double read_avx2(const float *buf, size_t bytes, int threads)
{
    size_t n = bytes / sizeof(float);
    volatile float sink = 0;
    double t = tpi_seconds();
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
                _mm_prefetch((const char *)p + PREFETCH, _MM_HINT_T0);
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
    return tpi_seconds() - t;
}

double membw_read_seconds(const float *buf, size_t bytes, int threads)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? read_avx2(buf, bytes, threads) : -1;
}
