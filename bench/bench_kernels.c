/* Kernel benchmark (not a test): the machine's ceilings and our kernels
 * measured side by side in one run, on the llama-1b (TinyLlama 1.1B) layer
 * shapes, so the ratios hold even on a loaded machine.
 *
 *   bench_kernels [batch] [reps] [parts]
 *
 * parts picks the sections (default "pda"): p prefill matmul (with sgemm; g
 * without; P each layer run paired with a run of the FMA peak just before
 * it, the median share over 15 pairs),
 * d decode GEMV, a attention and the elementwise ops, k decode attention
 * with the KV cache in memory, b the bf16-dot GEMM on the prefill shapes and
 * s on serve steps (8, 16, 32 rows) against the vdpbf16ps peak
 * (bench_bf16dot.c).
 * Prints: OpenBLAS sgemm GFLOP/s (1 and 2 threads) on the prefill shapes,
 * the read bandwidth (sum over 1 GB), the FMA peak on registers (256- and
 * 512-bit) and the bf16 and int8 dot-product peaks where the CPU has them,
 * our prefill matmul GFLOP/s per weight dtype and its % of the FMA peak and
 * of sgemm at the same thread count, our decode GEMV GB/s
 * (n = 1, bf16) and its % of the read bandwidth, and attention / rmsnorm /
 * rope / silu time at seq 512. Each figure is the best of `reps` runs. */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
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

#define HIDDEN 2048
#define FF 5632
#define HEADS 32
#define KV_HEADS 4
#define HEAD_DIM 64
#define SEQ 512

/* The seven matmuls of one llama-1b layer: [out, in]. */
static const struct {
    const char *name;
    int64_t rows, cols;
} shapes[] = {
    {"q", HIDDEN, HIDDEN}, {"k", KV_HEADS * HEAD_DIM, HIDDEN}, {"v", KV_HEADS * HEAD_DIM, HIDDEN},
    {"o", HIDDEN, HIDDEN}, {"gate", FF, HIDDEN}, {"up", FF, HIDDEN}, {"down", HIDDEN, FF},
};
#define N_SHAPES 7

static int reps = 5;
/* The vdpbf16ps peak on 1 and 2 threads ([1], [2]; 0 where the CPU lacks
 * it): the bf16-dot GEMM's ceiling. */
static double bf16_peak[3];

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void fill(float *v, size_t n, float scale)
{
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * scale;
    }
}

/* Lets the other library's worker threads go back to sleep before we time. */
static void settle(void)
{
    struct timespec t = {0, 200 * 1000 * 1000};
    nanosleep(&t, NULL);
}

static double layer_flops(int64_t m)
{
    double f = 0;
    for (int s = 0; s < N_SHAPES; s++)
        f += 2.0 * (double)m * (double)shapes[s].rows * (double)shapes[s].cols;
    return f;
}

/* ---- ceilings ---- */

static double sgemm_layer(int threads, int64_t m, const float *x, float *const *w, float *y)
{
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = tpi_seconds();
        for (int s = 0; s < N_SHAPES; s++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)shapes[s].rows, (int)shapes[s].cols,
                        1.0f, x, (int)shapes[s].cols, w[s], (int)shapes[s].cols, 0.0f, y, (int)shapes[s].rows);
        t = tpi_seconds() - t;
        if (t < best)
            best = t;
    }
    return layer_flops(m) / best / 1e9;
}

/* GB/s of a sum over `bytes` (membw_read_seconds), best of reps. */
static double read_bandwidth(int threads, const float *buf, size_t bytes)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = membw_read_seconds(buf, bytes, threads);
        if (t < best)
            best = t;
    }
    return (double)bytes / best / 1e9;
}

/* ---- our kernels ---- */

static tpi_weight make_weight(tpi_dtype dt, const float *src, int64_t rows, int64_t cols)
{
    size_t n = (size_t)rows * (size_t)cols, es = tpi_dtype_size(dt);
    uint8_t *d = xmalloc(n * es);
    for (size_t i = 0; i < n; i++) {
        if (dt == TPI_F32) {
            memcpy(d + i * 4, src + i, 4);
        } else {
            uint16_t h = dt == TPI_BF16 ? tpi_f32_to_bf16(src[i]) : tpi_f32_to_f16(src[i]);
            memcpy(d + i * 2, &h, 2);
        }
    }
    tpi_weight w = {.dtype = dt, .rows = rows, .cols = cols, .data = d, .owned = d};
    return w;
}

static void release(tpi_weight *w)
{
    free(w->owned);
    free(w->packed);
}

/* Best time per shape; returns the whole layer's GFLOP/s. */
static double our_layer(const tpi_backend *be, int threads, int64_t m, const float *x, const tpi_weight *w, float *y,
                        double *per_shape)
{
    omp_set_num_threads(threads);
    double total = 0;
    for (int s = 0; s < N_SHAPES; s++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = tpi_seconds();
            be->matmul(y, x, m, &w[s]);
            t = tpi_seconds() - t;
            if (t < best)
                best = t;
        }
        per_shape[s] = 2.0 * (double)m * (double)shapes[s].rows * (double)shapes[s].cols / best / 1e9;
        total += best;
    }
    return layer_flops(m) / total / 1e9;
}

/* One token through `layers` layers' matmuls, called as the model calls
 * them: q, k, v together; o; gate and up together; down. */
static void decode_layers(const tpi_backend *be, tpi_weight (*dw)[N_SHAPES], int layers, const float *x, float *y)
{
    for (int l = 0; l < layers; l++) {
        float *ys[] = {y, y + FF, y + 2 * FF};
        const tpi_weight *qkv[] = {&dw[l][0], &dw[l][1], &dw[l][2]}, *gu[] = {&dw[l][4], &dw[l][5]};
        be->matmul_multi(3, ys, x, 1, qkv);
        be->matmul(y, x, 1, &dw[l][3]);
        be->matmul_multi(2, ys, x, 1, gu);
        be->matmul(y, x, 1, &dw[l][6]);
    }
}

/* ---- the parts: the ceilings always, then one per letter of `parts` ---- */

/* Prints the read bandwidth over bw, the FMA peaks on registers and the
 * dot-product peaks. peak[t] gets the widest FMA peak on t threads: the
 * prefill matmul's % of the FMA peak is taken against it. */
static void bench_ceilings(const float *bw, size_t bw_bytes, double peak[3])
{
    double bw1 = read_bandwidth(1, bw, bw_bytes), bw2 = read_bandwidth(2, bw, bw_bytes);
    printf("\nread bandwidth (sum over 1 GB): 1 thread %.1f GB/s, 2 threads %.1f GB/s\n", bw1, bw2);
    double f1 = 0, f2 = 0, g1 = 0, g2 = 0;
    for (int r = 0; r < reps; r++) {
        double v;
        if ((v = peak_fma_gflops(1, 256)) > f1)
            f1 = v;
        if ((v = peak_fma_gflops(2, 256)) > f2)
            f2 = v;
        if (__builtin_cpu_supports("avx512f")) {
            if ((v = peak_fma_gflops(1, 512)) > g1)
                g1 = v;
            if ((v = peak_fma_gflops(2, 512)) > g2)
                g2 = v;
        }
    }
    printf("FMA peak (registers only), 256-bit: 1 thread %.1f GFLOP/s, 2 threads %.1f (%.2fx)", f1, f2, f2 / f1);
    if (g1 > 0)
        printf("; 512-bit: %.1f, %.1f (%.2fx)", g1, g2, g2 / g1);
    printf("\n");
    peak[0] = 0;
    peak[1] = g1 > 0 ? g1 : f1;
    peak[2] = g2 > 0 ? g2 : f2;
    for (int k = 0; k < 2; k++) {
        peak_kind kind = k ? PEAK_INT8_DOT : PEAK_BF16_DOT;
        if (!peak_name(kind))
            continue;
        double p1 = peak_best(kind, 1, reps), p2 = peak_best(kind, 2, reps);
        printf("%s dot-product peak (%s): 1 thread %.1f %s, 2 threads %.1f\n", k ? "int8" : "bf16", peak_name(kind),
               p1, k ? "GOP/s" : "GFLOP/s", p2);
        if (!k) {
            bf16_peak[1] = p1;
            bf16_peak[2] = p2;
        }
    }
}

/* OpenBLAS sgemm on the layer at 1 and 2 threads into sg[1] and sg[2]: the
 * ceiling our prefill matmul is judged against at the same thread count. */
static void sgemm_ceiling(int64_t m, const float *x, float *const *wf, float *y, double sg[3])
{
    for (int t = 1; t <= 2; t++) {
        sgemm_layer(t, m, x, wf, y); /* warm-up: thread start, page faults */
        sg[t] = sgemm_layer(t, m, x, wf, y);
    }
    printf("OpenBLAS sgemm (%s) on the layer: 1 thread %.1f GFLOP/s, 2 threads %.1f GFLOP/s\n", openblas_get_corename(),
           sg[1], sg[2]);
}

/* The layer's weights in dtype dt from the fp32 wf, prepared for be.
 * Returns nonzero when packing runs out of memory. */
static int make_layer(const tpi_backend *be, tpi_dtype dt, float *const *wf, tpi_weight *w)
{
    for (int s = 0; s < N_SHAPES; s++) {
        w[s] = make_weight(dt, wf[s], shapes[s].rows, shapes[s].cols);
        if (be->prepare_weight && be->prepare_weight(&w[s])) {
            fprintf(stderr, "out of memory packing\n");
            return 1;
        }
    }
    return 0;
}

/* One weight dtype's rows of the prefill table, at 1 and 2 threads.
 * Returns nonzero when packing the weights runs out of memory. */
static int prefill_rows(const tpi_backend *be, const char *label, tpi_dtype dt, int64_t m, const float *x,
                        float *const *wf, float *y, const double *peak, const double *sg)
{
    tpi_weight w[N_SHAPES];
    if (make_layer(be, dt, wf, w))
        return 1;
    for (int t = 1; t <= 2; t++) {
        double per[N_SHAPES];
        our_layer(be, t, m, x, w, y, per); /* warm-up */
        double g = our_layer(be, t, m, x, w, y, per);
        printf("%-9s %3d", label, t);
        for (int s = 0; s < N_SHAPES; s++)
            printf(" %7.1f", per[s]);
        printf(" %8.1f %6.1f%% %6.1f%%\n", g, 100.0 * g / peak[t], 100.0 * g / sg[t]);
    }
    for (int s = 0; s < N_SHAPES; s++)
        release(&w[s]);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { PAIRS = 15 };

/* P: the layer's prefill GEMM, each run right after a run of the FMA peak,
 * PAIRS times: the median of the per-pair shares (and their spread). On a
 * shared VM the core's FMA rate moves between runs (a sibling thread on the
 * host); a best-of peak set against a best-of layer measured at other
 * moments mixes that in, a pair's ratio mostly does not. */
static int prefill_paired(const tpi_backend *be, const char *label, tpi_dtype dt, int64_t m, const float *x,
                          float *const *wf, float *y)
{
    tpi_weight w[N_SHAPES];
    if (make_layer(be, dt, wf, w))
        return 1;
    int saved = reps;
    reps = 1;
    for (int t = 1; t <= 2; t++) {
        double per[N_SHAPES], share[PAIRS], g[PAIRS], pk[PAIRS];
        our_layer(be, t, m, x, w, y, per); /* warm-up */
        for (int i = 0; i < PAIRS; i++) {
            pk[i] = peak_best(PEAK_FMA, t, 1);
            g[i] = our_layer(be, t, m, x, w, y, per);
            share[i] = g[i] / pk[i];
        }
        qsort(share, PAIRS, sizeof *share, cmp_double);
        qsort(g, PAIRS, sizeof *g, cmp_double);
        qsort(pk, PAIRS, sizeof *pk, cmp_double);
        printf("%-9s %3d  layer %.1f GFLOP/s, peak %.1f (medians): %.1f%% of the FMA peak paired (%.1f-%.1f%% over "
               "%d pairs)\n",
               label, t, g[PAIRS / 2], pk[PAIRS / 2], 100 * share[PAIRS / 2], 100 * share[0], 100 * share[PAIRS - 1],
               PAIRS);
    }
    reps = saved;
    for (int s = 0; s < N_SHAPES; s++)
        release(&w[s]);
    return 0;
}

/* p: our prefill matmul on the layer at seq m, per weight dtype, beside
 * OpenBLAS sgemm on the same weights in f32. Returns nonzero on failure. */
static int bench_prefill(const tpi_backend *be, int64_t m, const float *x, float *y, const double *peak, int with_sgemm,
                         int paired)
{
    float *wf[N_SHAPES];
    for (int s = 0; s < N_SHAPES; s++) {
        wf[s] = xmalloc((size_t)shapes[s].rows * (size_t)shapes[s].cols * sizeof(float));
        fill(wf[s], (size_t)shapes[s].rows * (size_t)shapes[s].cols, 0.05f);
    }
    double sg[3] = {0, NAN, NAN};
    if (with_sgemm)
        sgemm_ceiling(m, x, wf, y, sg);
    settle();
    printf("\nprefill matmul, x [%lld, in] @ W^T, GFLOP/s (%% of the FMA peak and of sgemm at the same threads)\n",
           (long long)m);
    if (!paired) {
        printf("%-9s %3s", "dtype", "thr");
        for (int s = 0; s < N_SHAPES; s++)
            printf(" %7s", shapes[s].name);
        printf(" %8s %7s %7s\n", "layer", "%FMA", "%sgemm");
    }
    static const tpi_dtype dts[] = {TPI_BF16, TPI_F16, TPI_F32};
    int rc = 0;
    for (int d = 0; d < 3 && !rc; d++)
        rc = paired ? prefill_paired(be, tpi_dtype_name(dts[d]), dts[d], m, x, wf, y)
                    : prefill_rows(be, tpi_dtype_name(dts[d]), dts[d], m, x, wf, y, peak, sg);
    /* bf16 weights on bf16 activations (tpi_load_opts.bf16_activations):
     * its %FMA column is its share of the vdpbf16ps peak */
    const tpi_backend *bfd = tpi_backend_cpu_bf16(be);
    if (!rc && !paired && bfd != be && bf16_peak[1] > 0) {
        printf("bf16-dot rows: %%FMA is the %% of the vdpbf16ps peak\n");
        rc = prefill_rows(bfd, "bf16-dot", TPI_BF16, m, x, wf, y, bf16_peak, sg);
    }
    for (int s = 0; s < N_SHAPES; s++)
        free(wf[s]);
    return rc;
}

/* The decode part reads 4 layers of distinct weights (352 MB in bf16), far
 * beyond the caches, so every byte comes from memory once per token. */
enum { DECODE_LAYERS = 4 };

typedef struct {
    tpi_weight w[2][DECODE_LAYERS][N_SHAPES]; /* bf16, f32 */
    double bytes[2];                          /* what one token reads of w[0], w[1] */
} decode_weights;

/* Fills dw with random weights packed for be. Returns nonzero when packing
 * fails. */
static int make_decode_weights(const tpi_backend *be, decode_weights *dw)
{
    for (int d = 0; d < 2; d++) {
        dw->bytes[d] = 0;
        for (int l = 0; l < DECODE_LAYERS; l++)
            for (int s = 0; s < N_SHAPES; s++) {
                size_t n = (size_t)shapes[s].rows * (size_t)shapes[s].cols;
                float *tmp = xmalloc(n * sizeof(float));
                fill(tmp, n, 0.05f);
                tpi_dtype dt = d == 0 ? TPI_BF16 : TPI_F32;
                tpi_weight *w = &dw->w[d][l][s];
                *w = make_weight(dt, tmp, shapes[s].rows, shapes[s].cols);
                free(tmp);
                if (be->prepare_weight && be->prepare_weight(w))
                    return 1;
                free(w->owned); /* only the packed copy is read */
                w->owned = NULL;
                w->data = NULL;
                dw->bytes[d] += (double)n * (double)tpi_dtype_size(dt);
            }
    }
    return 0;
}

/* One row of the decode table at t threads. Rounds take each of read / bf16
 * on each GEMV set / f32 in turn, each keeping its best, so that the
 * memory's drift on a shared machine hits them all alike. */
static void decode_row(int t, const tpi_backend *const *sets, decode_weights *dw, const float *bw, size_t bw_bytes,
                       const float *x, float *y)
{
    omp_set_num_threads(t);
    double best[4] = {0, 0, 0, 0}; /* read, bf16 avx2, bf16 best, f32 */
    for (int r = 0; r < reps + 1; r++)
        for (int c = 0; c < 4; c++) {
            const tpi_backend *b = c == 2 ? sets[1] : sets[0];
            if (c == 2 && !b)
                continue;
            double t0 = tpi_seconds(), moved = c == 0 ? (double)bw_bytes : dw->bytes[c == 3];
            if (c == 0)
                membw_read_seconds(bw, bw_bytes, t);
            else
                decode_layers(b, dw->w[c == 3], DECODE_LAYERS, x, y);
            double g = moved / (tpi_seconds() - t0) / 1e9;
            if (r && g > best[c]) /* the first round faults the pages in */
                best[c] = g;
        }
    printf("%d thread%s: read %.1f GB/s; bf16 %s %.1f (%.1f%%)", t, t > 1 ? "s" : " ", best[0], sets[0]->name, best[1],
           100.0 * best[1] / best[0]);
    if (sets[1])
        printf("; bf16 %s %.1f (%.1f%%)", sets[1]->name, best[2], 100.0 * best[2] / best[0]);
    printf("; f32 %.1f (%.1f%%)\n", best[3], 100.0 * best[3] / best[0]);
}

/* d: the decode GEMV (n = 1) of each set in sets, in bf16 and f32, against
 * the read bandwidth over bw. Returns nonzero on failure. */
static int bench_decode(const tpi_backend *be, const tpi_backend *const *sets, const float *bw, size_t bw_bytes,
                        const float *x, float *y)
{
    decode_weights dw;
    if (make_decode_weights(be, &dw))
        return 1;
    printf("\ndecode GEMV, n = 1, %d layers of distinct weights, GB/s and %% of the read bandwidth of the same "
           "rounds (best of %d interleaved rounds)\n", DECODE_LAYERS, reps + 1);
    for (int t = 1; t <= 2; t++)
        decode_row(t, sets, &dw, bw, bw_bytes, x, y);
    for (int d = 0; d < 2; d++)
        for (int l = 0; l < DECODE_LAYERS; l++)
            for (int s = 0; s < N_SHAPES; s++)
                release(&dw.w[d][l][s]);
    return 0;
}

/* The model's cache layout at seq SEQ: each KV head's positions together. */
static const tpi_attn_shape seq_shape = {.n_heads = HEADS, .head_dim = HEAD_DIM, .group = HEADS / KV_HEADS,
                                         .kv_pos_stride = HEAD_DIM, .kv_head_stride = SEQ * HEAD_DIM, .scale = 0.125f};

/* What the attention and elementwise ops read and write at seq SEQ. */
typedef struct {
    float *q, *att, *y, *kc, *vc, *cs, *sn, *g;
    const float *x;
    int64_t *pos;
} seq_bufs;

/* Best ms of r_n runs of op on backend b: 0 attention prefill, 1 attention
 * decode at ctx SEQ, 2 rmsnorm, 3 rope on q, 4 silu_mul. */
static double op_ms(const tpi_backend *b, int op, int r_n, const seq_bufs *s)
{
    const int64_t qd = HEADS * HEAD_DIM;
    const float *kc = s->kc, *vc = s->vc; /* one block each: the whole cache */
    double best = 1e30;
    for (int r = 0; r < r_n; r++) {
        double t0 = tpi_seconds();
        switch (op) {
        case 0: b->attention(s->att, s->q, SEQ, s->pos, &kc, &vc, &seq_shape); break;
        case 1: b->attention(s->att, s->q + (SEQ - 1) * qd, 1, s->pos + SEQ - 1, &kc, &vc, &seq_shape); break;
        case 2: b->rmsnorm(s->y, s->x, s->g, SEQ, HIDDEN, 1e-5f); break;
        case 3: b->rope(s->q, SEQ, qd, HEADS, HEAD_DIM, s->cs, s->sn); break;
        default: b->silu_mul(s->y, s->x, (int64_t)SEQ * FF); break;
        }
        t0 = tpi_seconds() - t0;
        if (t0 < best)
            best = t0;
    }
    return best * 1e3;
}

/* a: attention and the elementwise ops at seq SEQ (one sequence, the cache
 * in the caches), ours beside the reference kernels. */
static void bench_attention(const tpi_backend *be, float *q, float *att, const float *x, float *y)
{
    printf("\nattention and elementwise ops, seq %d, one layer, ms (ref ms)\n", SEQ);
    const int64_t kd = KV_HEADS * HEAD_DIM;
    seq_bufs s = {.q = q, .att = att, .x = x, .y = y, .kc = xmalloc((size_t)SEQ * kd * 4),
                  .vc = xmalloc((size_t)SEQ * kd * 4), .cs = xmalloc((size_t)SEQ * HEAD_DIM / 2 * 4),
                  .sn = xmalloc((size_t)SEQ * HEAD_DIM / 2 * 4), .g = xmalloc(HIDDEN * 4),
                  .pos = xmalloc(SEQ * sizeof *s.pos)};
    fill(s.kc, (size_t)SEQ * kd, 1.0f);
    fill(s.vc, (size_t)SEQ * kd, 1.0f);
    fill(s.cs, (size_t)SEQ * HEAD_DIM / 2, 1.0f);
    fill(s.sn, (size_t)SEQ * HEAD_DIM / 2, 1.0f);
    fill(s.g, HIDDEN, 1.0f);
    for (int64_t i = 0; i < SEQ; i++)
        s.pos[i] = i;
    double att_flops = 4.0 * HEAD_DIM * HEADS * (double)SEQ * (SEQ + 1) / 2;
    const tpi_backend *bes[2] = {be, tpi_backend_cpu_ref()};
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        double ms[2][5];
        for (int b = 0; b < 2; b++)
            for (int op = 0; op < 5; op++) /* the reference attention is slow: one run */
                ms[b][op] = op_ms(bes[b], op, b == 1 && op == 0 ? 1 : reps, &s);
        printf("%d thread%s: attention prefill %.2f (%.1f) = %.1f GFLOP/s; decode at ctx %d %.3f (%.3f); "
               "rmsnorm %.3f (%.3f); rope q %.3f (%.3f); silu_mul %.3f (%.3f)\n",
               t, t > 1 ? "s" : " ", ms[0][0], ms[1][0], att_flops / ms[0][0] / 1e6, SEQ, ms[0][1], ms[1][1],
               ms[0][2], ms[1][2], ms[0][3], ms[1][3], ms[0][4], ms[1][4]);
    }
    free(s.kc);
    free(s.vc);
    free(s.cs);
    free(s.sn);
    free(s.g);
    free(s.pos);
}

/* Decode attention with the cache in memory, as a decode at ctx 1024 meets
 * it: one query against KV_LAYERS layers' caches in turn (96 MB, past the
 * L3), each layer's K and V read once. The cache-resident decode of part a
 * hides the cost of fetching them. */
enum { KV_LAYERS = 48, KV_CTX = 1024 };

/* One row of the k table at t threads: reading kv, then each set's
 * attention over it, in interleaved rounds; per layer, best of reps. */
static void kv_row(int t, const tpi_backend *const *sets, const float *kv, size_t per, const float *q, float *att)
{
    int64_t p1 = KV_CTX - 1;
    tpi_attn_shape s1 = seq_shape;
    s1.kv_head_stride = KV_CTX * HEAD_DIM;
    omp_set_num_threads(t);
    double best[3] = {1e30, 1e30, 1e30};
    for (int r = 0; r < reps; r++)
        for (int c = 0; c < 3; c++) {
            if (c == 2 && !sets[1])
                continue;
            double t0 = tpi_seconds();
            if (c == 0)
                membw_read_seconds(kv, 2 * KV_LAYERS * per * sizeof(float), t);
            else
                for (int l = 0; l < KV_LAYERS; l++) {
                    const float *kl = kv + 2 * l * per, *vl = kv + (2 * l + 1) * per;
                    sets[c - 1]->attention(att, q, 1, &p1, &kl, &vl, &s1);
                }
            t0 = (tpi_seconds() - t0) / KV_LAYERS;
            best[c] = t0 < best[c] ? t0 : best[c];
        }
    double gb = 2.0 * (double)per * 4 / 1e9;
    printf("%d thread%s: read %.1f us (%.1f GB/s); %s %.1f us (%.1f GB/s)", t, t > 1 ? "s" : " ", best[0] * 1e6,
           gb / best[0], sets[0]->name, best[1] * 1e6, gb / best[1]);
    if (sets[1])
        printf("; %s %.1f us (%.1f GB/s)", sets[1]->name, best[2] * 1e6, gb / best[2]);
    printf("\n");
}

/* k: decode attention of each set in sets with the caches in memory, query
 * q. Returns nonzero on failure. */
static int bench_decode_attention(const tpi_backend *const *sets, const float *q, float *att)
{
    size_t per = (size_t)KV_CTX * (size_t)(KV_HEADS * HEAD_DIM); /* floats of K (or V) per layer */
    float *kv = tpi_alloc_stream(2 * KV_LAYERS * per * sizeof(float));
    if (!kv)
        return 1;
    fill(kv, 2 * KV_LAYERS * per, 1.0f);
    printf("\ndecode attention at ctx %d, caches of %d layers (%.0f MB) from memory: us per layer, GB/s of K "
           "and V (best of %d interleaved rounds)\n",
           KV_CTX, KV_LAYERS, 2.0 * KV_LAYERS * (double)per * 4 / 1e6, reps);
    for (int t = 1; t <= 2; t++)
        kv_row(t, sets, kv, per, q, att);
    free(kv);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2)
        reps = atoi(argv[2]);
    const char *parts = argc > 3 ? argv[3] : "pda";
    if (batch < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_kernels [batch >= 1] [reps >= 1] [parts: p g P d a k b s]\n");
        return 2;
    }
    int64_t m = SEQ * batch;
    const tpi_backend *be = tpi_backend_cpu();
    /* The decode parts (d, k) run the AVX2 set beside the best one. */
    const tpi_backend *sets[2] = {be, NULL};
    if (strchr(parts, 'd') || strchr(parts, 'k')) {
        tpi_backend_cpu_select("avx2", &sets[0]);
        sets[1] = be != sets[0] ? be : NULL;
    }
    printf("backend %s, llama-1b layer shapes, x [%lld, %d], best of %d\n", be->name, (long long)m, HIDDEN, reps);
    printf("per-layer work at seq %lld: %.2f GFLOP matmul; bf16 weights %.1f MB\n", (long long)m,
           layer_flops(m) / 1e9, layer_flops(1) / 2 * 2 / 1e6);

    size_t bw_bytes = (size_t)1 << 30;
    /* on the packed weights' 2 MB pages, so the ceiling is comparable */
    float *bw = tpi_alloc_stream(bw_bytes);
    if (!bw)
        return 1;
    fill(bw, bw_bytes / 4, 1.0f);
    double peak[3];
    bench_ceilings(bw, bw_bytes, peak);

    float *x = xmalloc((size_t)m * FF * sizeof(float)), *y = xmalloc((size_t)m * FF * sizeof(float));
    fill(x, (size_t)m * FF, 2.0f);
    /* Parts a and k share the query: k reads q's first row as a leaves it. */
    const int64_t qd = HEADS * HEAD_DIM;
    float *q = xmalloc((size_t)SEQ * qd * 4), *att = xmalloc((size_t)SEQ * qd * 4);
    fill(q, (size_t)SEQ * qd, 1.0f);
    int rc = 0;
    if (strchr(parts, 'p') || strchr(parts, 'g') || strchr(parts, 'P'))
        rc = bench_prefill(be, m, x, y, peak, strchr(parts, 'p') != NULL, strchr(parts, 'P') != NULL);
    if (!rc && strchr(parts, 'd'))
        rc = bench_decode(be, sets, bw, bw_bytes, x, y);
    if (!rc && strchr(parts, 'a'))
        bench_attention(be, q, att, x, y);
    if (!rc && strchr(parts, 'k'))
        rc = bench_decode_attention(sets, q, att);
    if (!rc && (strchr(parts, 'b') || strchr(parts, 's')))
        rc = bench_bf16_dot(be, reps, strchr(parts, 'b') != NULL, strchr(parts, 's') != NULL);
    free(q);
    free(att);
    free(x);
    free(y);
    free(bw);
    return rc;
}
