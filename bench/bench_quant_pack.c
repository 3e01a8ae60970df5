/* Packed Q4_K and Q6_K kernels (backend/cpu/quant_pack_k_simd.h) against
 * the unpacked ones (quant_simd.h) on llama-1b's MLP shapes, one thread,
 * each set this CPU has, beside the int8 dot product's peak (peaks.c)
 * measured in the same process (not a test):
 *
 *   bench_quant_pack [reps] [copies] [cpu]
 *
 * For 2048 x 5632 (down) and 5632 x 2048 (gate/up) weights, both kernels
 * run over the whole matrix:
 *  - m = 1 (decode): `copies` copies of the weight (default 6, ~40 to 60 MB,
 *    past the L3) one after the other, so the weights come from memory:
 *    GOP/s and GB/s of weights;
 *  - m = 8 and m = 64 (prefill) over one copy: GOP/s (2 x m x rows x cols),
 *    and % of the int8 dot peak.
 * GOP/s counts the useful multiply-adds of the matmul, 2 each; the peak
 * counts vpdpbusd's, so it bounds both. Each figure is the best of `reps`
 * runs (default 5); "cpu" times with the process's CPU seconds, which leave
 * out time the OS gave to other programs on a shared machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_pack.h"
#include "core/clock.h"
#include "core/quant.h"
#include "peaks.h"

static int use_cpu_time;

static double now(void)
{
    if (!use_cpu_time)
        return tpi_seconds();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) - 0.5f;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* One weight in both forms, `copies` times. */
typedef struct mat {
    tpi_dtype t;
    int64_t rows, cols, nb;
    size_t rb, gb, bytes, pbytes; /* row, packed group, one copy, one packed copy */
    uint8_t *w, *p;
} mat;

/* rows copies of 16 distinct quantized random rows (quantizing them all
 * takes seconds; the speed does not depend on the values). */
static mat make(tpi_dtype t, int64_t rows, int64_t cols, int copies)
{
    mat m = {.t = t, .rows = rows, .cols = cols, .nb = cols / 256};
    m.rb = (size_t)tpi_dtype_row_bytes(t, cols);
    m.gb = tpi_qpack_group_bytes_k(t, m.nb);
    m.bytes = (size_t)rows * m.rb;
    m.pbytes = (size_t)(rows + 7) / 8 * m.gb;
    m.w = xmalloc(m.bytes * (size_t)copies);
    m.p = xmalloc(m.pbytes * (size_t)copies);
    float *f = xmalloc((size_t)cols * sizeof *f);
    unsigned s = 7;
    for (int64_t r = 0; r < rows; r++) {
        if (r < 16) {
            for (int64_t c = 0; c < cols; c++)
                f[c] = frand(&s) * 0.1f;
            tpi_quant_row(t, f, m.w + r * m.rb, cols);
        } else {
            memcpy(m.w + r * m.rb, m.w + (r % 16) * m.rb, m.rb);
        }
    }
    for (int c = 0; c < copies; c++) {
        if (c)
            memcpy(m.w + c * m.bytes, m.w, m.bytes);
        tpi_qpack_k(t, m.w + c * m.bytes, m.rb, rows, m.nb, m.p + c * m.pbytes);
    }
    free(f);
    return m;
}

/* Seconds (best of reps) for the whole matrix against m activation rows
 * (groups of 8), over `copies` copies; packed or unpacked kernel. */
static double run(const mat *w, int copies, const uint8_t *act, size_t arb, int m, tpi_qdot_fn dot,
                  tpi_qpdot_fn pdot, float *y, int reps)
{
    double best = 1e30;
    for (int rep = 0; rep <= reps; rep++) {
        double t0 = now();
        for (int c = 0; c < copies; c++) {
            const uint8_t *wc = w->w + c * w->bytes, *pc = w->p + c * w->pbytes;
            if (pdot)
                for (int64_t g = 0; g < (w->rows + 7) / 8; g++)
                    for (int r0 = 0; r0 < m; r0 += 8)
                        pdot(w->nb, pc + g * w->gb, act + r0 * arb, arb, m - r0 < 8 ? m - r0 : 8,
                             y + r0 * w->rows + 8 * g, w->rows);
            else
                for (int64_t o = 0; o < w->rows; o++)
                    for (int r0 = 0; r0 < m; r0 += 8)
                        dot(w->nb, wc + o * w->rb, act + r0 * arb, arb, m - r0 < 8 ? m - r0 : 8, y + r0 * w->rows + o,
                            w->rows);
        }
        double dt = now() - t0;
        if (rep && dt < best) /* the first round faults the pages in */
            best = dt;
    }
    return best;
}

static void bench_set(const char *set, tpi_qdot_fn (*pick)(tpi_dtype), tpi_qpdot_fn (*ppick)(tpi_dtype),
                      const mat *w, int copies, const uint8_t *act, size_t arb, float *y, int reps, double peak)
{
    tpi_qdot_fn dot = pick(w->t);
    tpi_qpdot_fn pdot = ppick(w->t);
    double ops = 2.0 * (double)w->rows * (double)w->cols;
    double u1 = run(w, copies, act, arb, 1, dot, NULL, y, reps), p1 = run(w, copies, act, arb, 1, NULL, pdot, y, reps);
    printf("%-6s %-4s %5lldx%-5lld m=1 : unpacked %6.1f GOP/s %5.1f GB/s | packed %6.1f GOP/s %5.1f GB/s | x%.2f\n",
           set, tpi_dtype_name(w->t), (long long)w->rows, (long long)w->cols, ops * copies / u1 / 1e9,
           (double)w->bytes * copies / u1 / 1e9, ops * copies / p1 / 1e9, (double)w->pbytes * copies / p1 / 1e9,
           u1 / p1);
    for (int m = 8; m <= 64; m *= 8) {
        double u = run(w, 1, act, arb, m, dot, NULL, y, reps), p = run(w, 1, act, arb, m, NULL, pdot, y, reps);
        double gu = ops * m / u / 1e9, gp = ops * m / p / 1e9;
        printf("%-6s %-4s %5lldx%-5lld m=%-2d: unpacked %6.1f GOP/s %4.1f%% peak | packed %6.1f GOP/s %4.1f%% peak | x%.2f\n",
               set, tpi_dtype_name(w->t), (long long)w->rows, (long long)w->cols, m, gu, 100 * gu / peak, gp,
               100 * gp / peak, u / p);
    }
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5, copies = argc > 2 ? atoi(argv[2]) : 6;
    use_cpu_time = argc > 3 && !strcmp(argv[3], "cpu");
    if (reps < 1 || copies < 1)
        return 2;
    const int64_t shapes[2][2] = {{2048, 5632}, {5632, 2048}};
    const tpi_dtype types[2] = {TPI_Q4_K, TPI_Q6_K};
    double peak = peak_best(PEAK_INT8_DOT, 1, 3);
    printf("int8 dot peak (%s), 1 thread: %.0f GOP/s\n", peak_name(PEAK_INT8_DOT) ? peak_name(PEAK_INT8_DOT) : "none",
           peak);
    float *y = xmalloc((size_t)64 * 5632 * sizeof *y), *x = xmalloc((size_t)5632 * sizeof *x);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            mat w = make(types[k], shapes[s][0], shapes[s][1], copies);
            size_t arb = tpi_qact_row_bytes(w.t, w.nb);
            uint8_t *act = xmalloc(64 * arb);
            unsigned seed = 3;
            for (int r = 0; r < 64; r++) {
                for (int64_t c = 0; c < w.cols; c++)
                    x[c] = frand(&seed);
                tpi_qact_quantize(w.t, x, w.cols, 0, w.nb, act + r * arb);
            }
            bench_set("avx2", tpi_avx2_qdot, tpi_avx2_qpdot_k, &w, copies, act, arb, y, reps, peak);
            if (tpi_cpu_has_avx512_vnni())
                bench_set("avx512", tpi_avx512_qdot, tpi_avx512_qpdot_k, &w, copies, act, arb, y, reps, peak);
            free(act), free(w.w), free(w.p);
        }
    free(y), free(x);
    return 0;
}
