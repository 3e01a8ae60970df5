/* Quantized matmul benchmark (not a test): the decode GEMV's GB/s per block
 * type against the machine's read bandwidth measured in the same run, and
 * the prefill GEMM's GOP/s, on llama-1b's (TinyLlama 1.1B) weight shapes.
 *
 *   bench_quant [layers] [reps] [prefill_rows] [parts] [cpu]
 *
 * parts (default "dp"): d decode from memory, p prefill, k the dot kernels
 * alone, 1 thread, per set: one activation row against a weight in L2
 * (GB/s), and eight rows at once (GOP/s, the prefill's inner step): the
 * kernels' own ceilings, for the row kernels ("rows") and for the kernels
 * of weights packed eight rows at a time ("packed", quant_pack.h), with
 * GOP/s as a share of the int8 dot peak measured in the same process.
 * Decode and prefill run each type twice, on the plain weight (the row
 * kernels) and on the weight the backend prepared ("packed" where the type
 * has a packed layout).
 *
 * Decode: `layers` copies (default 8) of the three shapes 2048x2048 (q/o),
 * 5632x2048 (gate/up), 2048x5632 (down), so the weights (122 MB for Q4_0,
 * 231 MB for Q8_0) are far larger than the L3; one token is one n = 1
 * matmul per weight, through the fastest backend's matmul. Prints the bytes
 * a token reads, the time that predicts at the read bandwidth, the time
 * measured, and GB/s as a % of the read bandwidth.
 * Prefill: n = prefill_rows (default 128) rows against each shape once;
 * GOP/s counts 2 * n * rows * cols. Each figure is the best of `reps` runs. */
#include <omp.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_pack.h"
#include "core/clock.h"
#include "core/quant.h"
#include "peaks.h"

/* Wall time, or with "cpu" the process's CPU seconds (divided by the
 * threads): on a machine other programs share, CPU time leaves out the
 * time the OS gave to them (it counts an idle thread's spinning, though). */
static int use_cpu_time;

static double now(void)
{
    if (!use_cpu_time)
        return tpi_seconds();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec) / omp_get_max_threads();
}

static const int64_t shapes[3][2] = {{2048, 2048}, {5632, 2048}, {2048, 5632}};
static const tpi_dtype types[] = {TPI_Q8_0, TPI_Q4_0, TPI_Q4_K, TPI_Q6_K};

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) - 0.5f;
}

/* A weight of rows copies of 8 distinct quantized random rows (quantizing
 * every row would take seconds; the kernels' speed does not depend on the
 * values). */
static tpi_weight make(tpi_dtype t, int64_t rows, int64_t cols, unsigned seed)
{
    int64_t rb = tpi_dtype_row_bytes(t, cols);
    uint8_t *d = malloc((size_t)(rows * rb));
    float *f = malloc((size_t)cols * sizeof *f);
    if (!d || !f)
        exit(1);
    for (int64_t r = 0; r < rows; r++) {
        if (r < 8) {
            for (int64_t c = 0; c < cols; c++)
                f[c] = frand(&seed) * 0.1f;
            tpi_quant_row(t, f, d + r * rb, cols);
        } else {
            memcpy(d + r * rb, d + (r % 8) * rb, (size_t)rb);
        }
    }
    free(f);
    return (tpi_weight){.dtype = t, .rows = rows, .cols = cols, .data = d};
}

static double read_gbs(int threads, const float *buf, size_t bytes, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double s = membw_read_seconds(buf, bytes, threads);
        best = s < best ? s : best;
    }
    return (double)bytes / best / 1e9;
}

/* "packed" when the backend packs w (and drops its plain rows, as the
 * loader does), else "rows". */
static const char *prepare(const tpi_backend *be, tpi_weight *w, int packed)
{
    if (!packed || !be->prepare_weight || be->prepare_weight(w) || !w->packed)
        return "rows";
    free((void *)w->data);
    w->data = NULL;
    return "packed";
}

static void release(tpi_weight *w)
{
    free((void *)w->data);
    free(w->packed);
}

static void decode(const tpi_backend *be, tpi_dtype t, int layers, int reps, const float *bw_buf, size_t bw_bytes,
                   int packed)
{
    tpi_weight *w = malloc((size_t)layers * 3 * sizeof *w);
    double bytes = 0;
    const char *how = "rows";
    for (int l = 0; l < layers * 3; l++) {
        w[l] = make(t, shapes[l % 3][0], shapes[l % 3][1], 7u + (unsigned)l);
        bytes += (double)w[l].rows * (double)tpi_dtype_row_bytes(t, w[l].cols);
        how = prepare(be, &w[l], packed);
    }
    float x[5632], y[5632];
    unsigned s = 1;
    for (int i = 0; i < 5632; i++)
        x[i] = frand(&s);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        double bw = read_gbs(threads, bw_buf, bw_bytes, reps), best = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = now();
            for (int l = 0; l < layers * 3; l++)
                be->matmul(y, x, 1, &w[l]);
            double dt = now() - t0;
            if (r && dt < best) /* the first round faults the pages in */
                best = dt;
        }
        printf("decode %-4s %-6s %dT: %.1f MB/token (%d layers), predicted %.2f ms at %.1f GB/s read, measured "
               "%.2f ms: %.1f GB/s = %.1f%% of read\n",
               tpi_dtype_name(t), how, threads, bytes / 1e6, layers, bytes / bw / 1e6, bw, best * 1e3,
               bytes / best / 1e9, 100.0 * bytes / best / 1e9 / bw);
    }
    for (int l = 0; l < layers * 3; l++)
        release(&w[l]);
    free(w);
}

static void prefill(const tpi_backend *be, tpi_dtype t, int64_t n, int reps, int packed)
{
    float *x = malloc((size_t)(n * 5632) * sizeof *x), *y = malloc((size_t)(n * 5632) * sizeof *y);
    unsigned s = 3;
    for (int64_t i = 0; i < n * 5632; i++)
        x[i] = frand(&s);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        tpi_weight probe = make(t, 8, 32, 1u);
        printf("prefill %-4s %-6s %dT n=%lld:", tpi_dtype_name(t), prepare(be, &probe, packed), threads,
               (long long)n);
        release(&probe);
        for (int k = 0; k < 3; k++) {
            tpi_weight w = make(t, shapes[k][0], shapes[k][1], 11u);
            prepare(be, &w, packed);
            double best = 1e30;
            for (int r = 0; r <= reps; r++) {
                double t0 = now();
                be->matmul(y, x, n, &w);
                double dt = now() - t0;
                if (r && dt < best)
                    best = dt;
            }
            printf("  %lldx%lld %.1f GOP/s", (long long)w.rows, (long long)w.cols,
                   2.0 * (double)n * (double)w.rows * (double)w.cols / best / 1e9);
            release(&w);
        }
        printf("\n");
    }
    free(x);
    free(y);
}

/* One kernel over a weight: the row kernel dot (rows rb bytes apart) or
 * the packed one pdot (groups gb bytes apart). */
typedef struct kbench {
    tpi_qdot_fn dot;
    tpi_qpdot_fn pdot;
    const uint8_t *w;
    size_t rb, gb, arb;
    int64_t nb;
    int per; /* rows a packed call computes: 8, or 16 (two groups) */
} kbench;

/* Best seconds of reps * 20 runs of the kernel over `rows` weight rows
 * against m activation rows at a. */
static double best_of(const kbench *k, int reps, int rows, const void *a, int m, float *y)
{
    double best = 1e30;
    for (int r = 0; r < reps * 20; r++) {
        double t0 = now();
        if (k->pdot)
            for (int o = 0; o < rows / TPI_QPACK_ROWS; o += k->per / TPI_QPACK_ROWS)
                k->pdot(k->nb, k->w + o * k->gb, a, k->arb, m, y + TPI_QPACK_ROWS * o, rows);
        else
            for (int o = 0; o < rows; o++)
                k->dot(k->nb, k->w + o * k->rb, a, k->arb, m, y + o, rows);
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

/* The row kernel of `pick` (or with ppick the packed one, on `per` rows a
 * call) over a 512 x 2048 weight (288 to 578 KB, in L2), one activation
 * row, many times: GB/s of weights processed; then eight rows at once:
 * GOP/s, and their share of the int8 dot peak `peak`. */
static void kernel_only(const char *set, tpi_qdot_fn (*pick)(tpi_dtype), tpi_qpdot_fn (*ppick)(tpi_dtype), int per,
                        int reps, double peak)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        tpi_dtype t = types[i];
        tpi_weight w = make(t, 512, 2048, 5u);
        int64_t nb = tpi_qweight_blocks(&w), rb = tpi_dtype_row_bytes(t, 2048);
        size_t gb = tpi_qpack_group_bytes(t, nb);
        tpi_qpdot_fn pdot = ppick && gb ? ppick(t) : NULL;
        tpi_qdot_fn dot = pick(t);
        if (ppick && !pdot) {
            free((void *)w.data);
            continue;
        }
        uint8_t *g = pdot ? malloc(gb * 512 / TPI_QPACK_ROWS) : NULL;
        if (g)
            tpi_qpack(t, w.data, (size_t)rb, 512, nb, g);
        float x[2048], y[512 * 8];
        unsigned s = 9;
        for (int c = 0; c < 2048; c++)
            x[c] = frand(&s);
        size_t arb = tpi_qact_row_bytes(t, nb);
        void *a = malloc(arb);
        tpi_qact_quantize(t, x, 2048, 0, nb, a);
        kbench k = {dot, pdot, g ? g : (const uint8_t *)w.data, (size_t)rb, gb, arb, nb, per};
        double best = best_of(&k, reps, 512, a, 1, y);
        printf("kernel %-6s %-8s %-4s in L2, 1 row: %.1f GB/s (%.2f ns per block)", set,
               !pdot ? "rows" : per == 16 ? "packed16" : "packed",
               tpi_dtype_name(t), 512.0 * (double)rb / best / 1e9, best * 1e9 / 512.0 / (double)nb);
        /* eight activation rows (the same row eight times): the GEMM's group */
        void *a8 = malloc(8 * arb);
        for (int r = 0; r < 8; r++)
            memcpy((uint8_t *)a8 + (size_t)r * arb, a, arb);
        best = best_of(&k, reps, 64, a8, 8, y);
        double gops = 2.0 * 8 * 64 * 2048 / best / 1e9;
        printf("; 8 rows: %.1f GOP/s = %.0f%% of the int8 dot peak\n", gops, peak > 0 ? 100.0 * gops / peak : 0.0);
        free(a8);
        free(a);
        free(g);
        free((void *)w.data);
    }
}

int main(int argc, char **argv)
{
    int layers = argc > 1 ? atoi(argv[1]) : 8, reps = argc > 2 ? atoi(argv[2]) : 5;
    int64_t n = argc > 3 ? atoll(argv[3]) : 128;
    const char *parts = argc > 4 ? argv[4] : "dp";
    use_cpu_time = argc > 5 && !strcmp(argv[5], "cpu");
    if (layers < 1 || reps < 1 || n < 1)
        return 2;
    const tpi_backend *be = tpi_backend_cpu();
    double peak1 = peak_best(PEAK_INT8_DOT, 1, 3);
    printf("backend %s; int8 dot peak (%s): 1T %.0f GOP/s, 2T %.0f GOP/s\n", be->name,
           peak_name(PEAK_INT8_DOT) ? peak_name(PEAK_INT8_DOT) : "none", peak1, peak_best(PEAK_INT8_DOT, 2, 3));
    if (strchr(parts, 'k')) {
        kernel_only("avx2", tpi_avx2_qdot, NULL, 8, reps, peak1);
        kernel_only("avx2", tpi_avx2_qdot, tpi_avx2_qpdot, 8, reps, peak1);
        if (tpi_cpu_has_avx512_vnni()) {
            kernel_only("avx512", tpi_avx512_qdot, NULL, 8, reps, peak1);
            kernel_only("avx512", tpi_avx512_qdot, tpi_avx512_qpdot, 8, reps, peak1);
            kernel_only("avx512", tpi_avx512_qdot, tpi_avx512_qpdot16, 16, reps, peak1);
        }
    }
    size_t bw_bytes = (size_t)512 << 20;
    float *bw_buf = malloc(bw_bytes);
    if (!bw_buf)
        return 1;
    for (size_t i = 0; i < bw_bytes / sizeof(float); i++)
        bw_buf[i] = 1.0f;
    for (size_t i = 0; i < sizeof types / sizeof types[0] && strchr(parts, 'd'); i++)
        for (int packed = 0; packed < 2; packed++)
            decode(be, types[i], layers, reps, bw_buf, bw_bytes, packed);
    for (size_t i = 0; i < sizeof types / sizeof types[0] && strchr(parts, 'p'); i++)
        for (int packed = 0; packed < 2; packed++)
            prefill(be, types[i], n, reps, packed);
    free(bw_buf);
    return 0;
}
