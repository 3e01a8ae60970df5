/* bench_kernels part b: the bf16-dot GEMM (bf16 weights on bf16
 * activations, tpi_load_opts.bf16_activations) against the vdpbf16ps peak
 * probed in the same rounds, on llama-1b's shapes:
 *  - prefill, x [512, in] @ W^T for each distinct weight shape and the whole
 *    layer (q, k, v, o, gate, up, down), the weights in the caches as a
 *    prefill meets them (each is reused by all 512 rows);
 *  - serve steps, x [n, in] for n = 8, 16, 32 (more rows than the GEMV
 *    takes) through 4 layers of distinct weights (352 MB, far past the
 *    caches), called as the model calls them: each step streams every weight
 *    byte from memory, so it is judged against both the peak and the read
 *    bandwidth of the same rounds, beside the fp32-activation GEMM.
 * Rounds alternate the probes and the kernels and each keeps its best, so a
 * shared machine's load hits them alike. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "bench_bf16dot.h"
#include "core/clock.h"
#include "core/mem.h"
#include "peaks.h"

enum { HID = 2048, FFN = 5632, KVD = 256, N_W = 7, LAYERS = 4, N_SERVE = 3 };

/* The seven weights of a layer, [out, in], in the model's order. */
static const int64_t wshape[N_W][2] = {{HID, HID}, {KVD, HID}, {KVD, HID}, {HID, HID},
                                       {FFN, HID}, {FFN, HID}, {HID, FFN}};
static const int serve_rows[N_SERVE] = {8, 16, 32};

static uint32_t seed = 2463534242u;

static float frand(void) /* xorshift32, uniform in [-0.5, 0.5) */
{
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    return (float)(seed >> 8) / 16777216.0f - 0.5f;
}

/* A random bf16 weight [rows, cols] packed for be; only the packed copy is
 * kept. Returns nonzero when memory runs out. */
static int make_packed(const tpi_backend *be, tpi_weight *w, int64_t rows, int64_t cols)
{
    size_t n = (size_t)rows * (size_t)cols;
    uint16_t *d = malloc(n * sizeof *d);
    if (!d)
        return 1;
    for (size_t i = 0; i < n; i++)
        d[i] = tpi_f32_to_bf16(frand() * 0.1f);
    *w = (tpi_weight){.dtype = TPI_BF16, .rows = rows, .cols = cols, .data = d};
    int rc = be->prepare_weight ? be->prepare_weight(w) : 0;
    free(d);
    w->data = NULL;
    return rc;
}

static double flops_of(int64_t n, int s)
{
    return 2.0 * (double)n * (double)wshape[s][0] * (double)wshape[s][1];
}

static double keep_min(double *best, double t)
{
    if (t < *best)
        *best = t;
    return t;
}

/* Wall and CPU seconds (all threads' CPU time over the thread count: time
 * the OS gave other processes is left out, threads spinning at a barrier
 * are counted), kept apart because a shared machine moves the first. */
typedef struct {
    double wall, cpu;
} span;

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static span span_start(void)
{
    return (span){tpi_seconds(), cpu_seconds()};
}

/* The span since s on t threads, each side kept in best where smaller. */
static span span_end(span s, int t, span *best)
{
    span d = {tpi_seconds() - s.wall, (cpu_seconds() - s.cpu) / t};
    if (best) {
        keep_min(&best->wall, d.wall);
        keep_min(&best->cpu, d.cpu);
    }
    return d;
}

/* The vdpbf16ps peak on t threads, GFLOP/s by wall and by CPU time; the
 * larger of each is kept in peak. */
static void probe_peak(int t, span *peak)
{
    span s = span_start();
    double g = peak_best(PEAK_BF16_DOT, t, 1);
    span d = span_end(s, t, NULL);
    double cpu = g * d.wall / d.cpu;
    peak->wall = g > peak->wall ? g : peak->wall;
    peak->cpu = cpu > peak->cpu ? cpu : peak->cpu;
}

/* Prefill rows at t threads: per round the peak probe, then each weight. */
static void prefill_rows(const tpi_backend *bf, int t, int reps, const tpi_weight *w, const float *x, float *y)
{
    omp_set_num_threads(t);
    span peak = {0, 0}, best[N_W];
    for (int s = 0; s < N_W; s++)
        best[s] = (span){1e30, 1e30};
    for (int r = 0; r <= reps; r++) { /* round 0 warms up */
        span junk = {0, 0};
        probe_peak(t, r ? &peak : &junk);
        for (int s = 0; s < N_W; s++) {
            span s0 = span_start();
            bf->matmul(y, x, 512, &w[s]);
            span_end(s0, t, r ? &best[s] : NULL);
        }
    }
    printf("%d thread%s: peak %.1f GFLOP/s (by CPU time %.1f); GFLOP/s, %% of peak, by CPU time %% of its peak\n", t,
           t > 1 ? "s" : "", peak.wall, peak.cpu);
    span layer = {0, 0};
    double layer_f = 0;
    for (int s = 0; s <= N_W; s++) {
        span b = s < N_W ? best[s] : layer;
        double f = s < N_W ? flops_of(512, s) : layer_f;
        if (s < N_W) {
            layer.wall += b.wall;
            layer.cpu += b.cpu;
            layer_f += f;
        }
        if (s == 2 || s == 3 || s == 5) /* v, o, up repeat a shape */
            continue;
        static const char *const label[N_W + 1] = {"q, o", "k, v", "", "", "gate, up", "", "down", "layer"};
        printf("  %-8s [512 x %5lld] x [%5lld x %5lld]^T %7.1f GFLOP/s %5.1f%%  cpu %5.1f%%\n", label[s],
               (long long)(s < N_W ? wshape[s][1] : HID), (long long)(s < N_W ? wshape[s][1] : HID),
               (long long)(s < N_W ? wshape[s][0] : 0), f / b.wall / 1e9, 100.0 * f / b.wall / 1e9 / peak.wall,
               100.0 * f / b.cpu / 1e9 / peak.cpu);
    }
}

/* One serve step's matmuls over LAYERS layers at n rows, as the model calls
 * them: q, k, v together; o; gate and up together; down. */
static void serve_layers(const tpi_backend *be, tpi_weight (*w)[N_W], int64_t n, const float *x, float *const *y)
{
    for (int l = 0; l < LAYERS; l++) {
        const tpi_weight *qkv[] = {&w[l][0], &w[l][1], &w[l][2]}, *gu[] = {&w[l][4], &w[l][5]};
        float *ys[] = {y[0], y[1], y[2]};
        be->matmul_multi(3, ys, x, n, qkv);
        be->matmul(y[0], x, n, &w[l][3]);
        be->matmul_multi(2, ys, x, n, gu);
        be->matmul(y[0], x, n, &w[l][6]);
    }
}

/* Serve rows at t threads: per round the read and peak probes, then each n
 * on the bf16-dot set and on the fp32-activation set. */
static void serve_rows_at(const tpi_backend *const *sets, int t, int reps, tpi_weight (*w)[N_W], const float *bw,
                          size_t bw_bytes, const float *x, float *const *y)
{
    omp_set_num_threads(t);
    double peak = 0, read = 1e30, best[2][N_SERVE];
    for (int i = 0; i < 2 * N_SERVE; i++)
        best[i / N_SERVE][i % N_SERVE] = 1e30;
    for (int r = 0; r <= reps; r++) {
        double p = peak_best(PEAK_BF16_DOT, t, 1), rd = membw_read_seconds(bw, bw_bytes, t);
        peak = r && p > peak ? p : peak;
        if (r)
            keep_min(&read, rd);
        for (int i = 0; i < N_SERVE; i++)
            for (int c = 0; c < 2; c++) {
                double t0 = tpi_seconds();
                serve_layers(sets[c], w, serve_rows[i], x, y);
                t0 = tpi_seconds() - t0;
                if (r)
                    keep_min(&best[c][i], t0);
            }
    }
    double bytes = 0, f1 = 0;
    for (int s = 0; s < N_W; s++) {
        bytes += (double)LAYERS * 2.0 * (double)wshape[s][0] * (double)wshape[s][1];
        f1 += (double)LAYERS * flops_of(1, s);
    }
    double gbs = (double)bw_bytes / read / 1e9;
    printf("%d thread%s: peak %.1f GFLOP/s, read %.1f GB/s\n", t, t > 1 ? "s" : " ", peak, gbs);
    for (int i = 0; i < N_SERVE; i++) {
        double f = f1 * serve_rows[i], tm = bytes / (gbs * 1e9), tc = f / (peak * 1e9);
        for (int c = 0; c < 2; c++) {
            double s = best[c][i];
            printf("  n %2d %-9s %6.2f ms: %6.1f GFLOP/s (%5.1f%% of peak), %5.1f GB/s (%5.1f%% of read); "
                   "bound max(mem %.2f, peak %.2f) = %5.1f%% of it\n",
                   serve_rows[i], c ? "fp32-act" : "bf16-dot", s * 1e3, f / s / 1e9, 100.0 * f / s / 1e9 / peak,
                   bytes / s / 1e9, 100.0 * bytes / s / 1e9 / gbs, tm * 1e3, tc * 1e3,
                   100.0 * (tm > tc ? tm : tc) / s);
        }
    }
}

int bench_bf16_dot(const tpi_backend *be, int reps, int prefill, int serve)
{
    const tpi_backend *bf = tpi_backend_cpu_bf16(be);
    if (bf == be || !peak_name(PEAK_BF16_DOT)) {
        printf("\nbf16-dot GEMM: skipped (no AVX512_BF16 on this CPU, or the set is not AVX-512)\n");
        return 0;
    }
    const size_t bw_bytes = serve ? (size_t)1 << 30 : 64; /* the read probe's buffer, far past the caches */
    float *x = malloc((size_t)512 * FFN * sizeof *x), *bw = tpi_alloc_stream(bw_bytes);
    float *y[3] = {malloc((size_t)512 * FFN * sizeof(float)), malloc((size_t)512 * FFN * sizeof(float)),
                   malloc((size_t)512 * FFN * sizeof(float))};
    tpi_weight(*w)[N_W] = calloc(LAYERS, sizeof *w);
    int rc = !x || !bw || !y[0] || !y[1] || !y[2] || !w;
    for (size_t i = 0; !rc && i < (size_t)512 * FFN; i++)
        x[i] = frand() * 4.0f;
    for (size_t i = 0; !rc && i < bw_bytes / sizeof(float); i++)
        bw[i] = 1.0f;
    for (int l = 0; !rc && l < (serve ? LAYERS : 1); l++)
        for (int s = 0; !rc && s < N_W; s++)
            rc = make_packed(bf, &w[l][s], wshape[s][0], wshape[s][1]);
    if (!rc && prefill) {
        printf("\nbf16-dot GEMM (%s), prefill x [512, in] @ W^T, GFLOP/s (%% of the vdpbf16ps peak of the same "
               "rounds), best of %d\n",
               tpi_backend_cpu_set(bf), reps);
        for (int t = 1; t <= 2; t++)
            prefill_rows(bf, t, reps, w[0], x, y[0]);
    }
    if (!rc && serve) {
        printf("\nserve steps, x [n, in] through %d layers of distinct weights (%.0f MB from memory), best of %d\n",
               LAYERS, LAYERS * 88.1, reps);
        const tpi_backend *sets[2] = {bf, be};
        for (int t = 1; t <= 2; t++)
            serve_rows_at(sets, t, reps, w, bw, bw_bytes, x, y);
    }
    for (int l = 0; w && l < LAYERS; l++)
        for (int s = 0; s < N_W; s++)
            free(w[l][s].packed);
    free(w);
    free(x);
    free(bw);
    for (int i = 0; i < 3; i++)
        free(y[i]);
    return rc;
}
