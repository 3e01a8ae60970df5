/* Do threads pay for themselves? (benchmark, not a test)
 *
 *   bench_threads [MODEL_DIR] [tokens] [rounds]
 *
 * 1. The cost of waking the team: a loop of `serial work, empty parallel
 *    region` at 2 threads against the same loop at 1, per region, with the
 *    gap between regions a decode step leaves (a few microseconds). The
 *    thresholds of src/backend/cpu/tuning.h (TPI_WAKE_NS) come from it.
 * 2. Greedy decode of MODEL_DIR (default ../shared/models/stories260K-hf) at
 *    1 and 2 threads, alternating, `rounds` times each: tokens/s of each run
 *    and the 2-thread / 1-thread ratio of the medians. A small model must
 *    not run slower on 2 threads (ratio >= 1 within the noise).
 *
 * Like the tpinfer CLI it sets GOMP_SPINCOUNT=2000 and re-executes unless
 * the caller chose a spin policy, so it measures what the CLI runs. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "tpinfer.h"

static volatile double sink;

/* ~ns of dependent arithmetic. */
static void serial_work(int iters)
{
    double a = sink;
    for (int i = 0; i < iters; i++)
        a = a * 0.999999 + 1e-9;
    sink = a;
}

/* Microseconds per (serial gap + region) at `threads`. */
static double region_loop(int threads, int gap_iters, int n)
{
    double t = tpi_seconds();
    for (int i = 0; i < n; i++) {
        serial_work(gap_iters);
#pragma omp parallel num_threads(threads)
        {
            if (omp_get_thread_num() == 0)
                sink += 1;
        }
    }
    return (tpi_seconds() - t) / n * 1e6;
}

static void wake_cost(void)
{
    const int n = 20000;
    static const int gaps[] = {0, 2000, 20000};
    printf("parallel region wake-up cost (2 threads minus 1, best of 5), per region:\n");
    for (int g = 0; g < 3; g++) {
        double best = 1e30, one = 1e30;
        for (int r = 0; r < 5; r++) {
            double a = region_loop(1, gaps[g], n), b = region_loop(2, gaps[g], n);
            one = a < one ? a : one;
            best = b - a < best ? b - a : best;
        }
        printf("  serial gap %.2f us between regions: %.2f us\n", one, best);
    }
}

/* Tokens/s of `tokens` greedy decode steps after a 1-token prompt. */
static double decode_rate(const char *dir, int threads, int tokens)
{
    tpi_model *m = NULL;
    tpi_kv *kv = NULL;
    tpi_error err = {0};
    tpi_load_opts o = {.n_threads = threads};
    if (tpi_model_load(&m, dir, &o, &err) || tpi_kv_create(&kv, m, 1, tokens + 2, &err)) {
        fprintf(stderr, "bench_threads: %s\n", err.msg);
        tpi_model_free(m);
        return -1;
    }
    int32_t id = 1, next;
    int64_t cnt = 1;
    double t = 0;
    for (int s = 0; s <= tokens; s++) {
        double t0 = tpi_seconds();
        if (tpi_model_forward_argmax(m, kv, &id, &cnt, &next, &err)) {
            fprintf(stderr, "bench_threads: %s\n", err.msg);
            break;
        }
        if (s > 0) /* the first step is the prompt */
            t += tpi_seconds() - t0;
        id = next;
    }
    tpi_kv_free(kv);
    tpi_model_free(m);
    return tokens / t;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
        setenv("GOMP_SPINCOUNT", "2000", 1);
        execv("/proc/self/exe", argv);
    }
    const char *dir = argc > 1 ? argv[1] : "../shared/models/stories260K-hf";
    int tokens = argc > 2 ? atoi(argv[2]) : 256, rounds = argc > 3 ? atoi(argv[3]) : 5;
    if (tokens < 1 || rounds < 1 || rounds > 64) {
        fprintf(stderr, "usage: bench_threads [MODEL_DIR] [tokens >= 1] [rounds 1..64]\n");
        return 2;
    }
    wake_cost();
    double r1[64], r2[64];
    printf("\n%s: greedy decode of %d tokens, tokens/s (1 thread, 2 threads, alternating)\n", dir, tokens);
    for (int r = 0; r < rounds; r++) {
        r1[r] = decode_rate(dir, 1, tokens);
        r2[r] = decode_rate(dir, 2, tokens);
        if (r1[r] < 0 || r2[r] < 0)
            return 1;
        printf("  round %d: %9.1f %9.1f  (%.2fx)\n", r + 1, r1[r], r2[r], r2[r] / r1[r]);
    }
    qsort(r1, (size_t)rounds, sizeof *r1, cmp);
    qsort(r2, (size_t)rounds, sizeof *r2, cmp);
    printf("median: 1 thread %.1f, 2 threads %.1f tokens/s; 2-thread / 1-thread = %.2f (range of 2T: %.1f-%.1f)\n",
           r1[rounds / 2], r2[rounds / 2], r2[rounds / 2] / r1[rounds / 2], r2[0], r2[rounds - 1]);
    return 0;
}
