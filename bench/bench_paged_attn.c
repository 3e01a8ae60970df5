/* Decode attention through a block table (the paged KV cache) against one
 * block per sequence (the contiguous layout), on llama-1b's heads (32 query
 * heads, 4 KV heads, head_dim 64), the caches in memory as a decode meets
 * them: one query per layer against `layers` layers' caches in turn, each
 * layer's blocks scattered over its pool in a random order, as a pool that
 * sequences have come and gone from leaves them.
 *
 *   bench_paged_attn [reps] [ctx,ctx,..] [block,block,..] [MB]
 *
 * MB (default 256): the K and V of all layers together, so the caches come
 * from memory; a few MB keeps them in the caches and shows the kernel's own
 * cost of the block table.
 *
 * For each context: microseconds per layer of the fastest set (best of reps
 * rounds, the layouts taken in turn within each round so that a loaded
 * machine's drift hits them alike), and the ratio paged / contiguous; in
 * wall time, and in the process's CPU time, which a machine shared with
 * other jobs inflates less (time preempted is not counted; with one thread
 * it is the kernel's time alone). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/clock.h"
#include "core/mem.h"

#define HEADS 32
#define KV_HEADS 4
#define HEAD_DIM 64
static size_t cache_bytes = (size_t)256 << 20; /* all layers' K and V together: past any L3 */
#define MAX_LAYERS 64
#define MAX_LIST 16

static int parse_list(const char *s, int64_t *out)
{
    int n = 0;
    for (char *end; *s && n < MAX_LIST; s = *end ? end + 1 : end) {
        out[n] = strtoll(s, &end, 10);
        if (end == s || out[n] < 1)
            return -1;
        n++;
    }
    return n;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void) /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One layout: per layer, the bases of a sequence's blocks of bp positions
 * in the pool (layer-major, [layer][block][head][bp][head_dim]). */
typedef struct layout {
    int64_t bp, nb;
    const float **kb, **vb; /* [layers][nb] */
} layout;

static int layout_make(layout *l, int64_t bp, int64_t ctx, int layers, const float *k, const float *v)
{
    l->bp = bp;
    l->nb = (ctx + bp - 1) / bp;
    size_t per_layer = (size_t)l->nb * (size_t)(bp * KV_HEADS * HEAD_DIM); /* floats */
    l->kb = malloc((size_t)layers * (size_t)l->nb * sizeof *l->kb);
    l->vb = malloc((size_t)layers * (size_t)l->nb * sizeof *l->vb);
    int64_t *perm = malloc((size_t)l->nb * sizeof *perm);
    if (!l->kb || !l->vb || !perm) {
        free(perm);
        return -1;
    }
    for (int L = 0; L < layers; L++) {
        for (int64_t i = 0; i < l->nb; i++)
            perm[i] = i;
        for (int64_t i = l->nb - 1; i > 0 && bp < ctx; i--) {
            int64_t j = (int64_t)(next_rand() % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int64_t i = 0; i < l->nb; i++) {
            size_t at = (size_t)L * per_layer + (size_t)perm[i] * (size_t)(bp * KV_HEADS * HEAD_DIM);
            l->kb[L * l->nb + i] = k + at;
            l->vb[L * l->nb + i] = v + at;
        }
    }
    free(perm);
    return 0;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per layer of one decode query at position ctx - 1 over every
 * layer: wall time, and CPU time in *cpu. */
static double run_layers(const tpi_backend *be, const layout *l, int layers, int64_t ctx, const float *q, float *out,
                         double *cpu)
{
    tpi_attn_shape s = {.n_heads = HEADS, .head_dim = HEAD_DIM, .group = HEADS / KV_HEADS,
                        .block_positions = l->bp, .kv_pos_stride = HEAD_DIM, .kv_head_stride = l->bp * HEAD_DIM,
                        .scale = 0.125f};
    int64_t pos = ctx - 1;
    double t0 = tpi_seconds(), c0 = cpu_seconds();
    for (int L = 0; L < layers; L++)
        be->attention(out, q, 1, &pos, l->kb + L * l->nb, l->vb + L * l->nb, &s);
    *cpu = (cpu_seconds() - c0) / layers;
    return (tpi_seconds() - t0) / layers;
}

static int bench_ctx(const tpi_backend *be, int64_t ctx, const int64_t *blocks, int n_blocks, int reps)
{
    size_t per_layer = (size_t)ctx * KV_HEADS * HEAD_DIM * sizeof(float) * 2;
    int layers = (int)(cache_bytes / per_layer);
    layers = layers < 1 ? 1 : layers > MAX_LAYERS ? MAX_LAYERS : layers;
    /* room for the largest rounding up to whole blocks */
    int64_t most = ctx;
    for (int i = 0; i < n_blocks; i++) {
        int64_t r = (ctx + blocks[i] - 1) / blocks[i] * blocks[i];
        most = r > most ? r : most;
    }
    size_t floats = (size_t)layers * (size_t)most * KV_HEADS * HEAD_DIM;
    float *k = tpi_alloc_stream(floats * sizeof *k), *v = tpi_alloc_stream(floats * sizeof *v);
    float *q = malloc(HEADS * HEAD_DIM * sizeof *q), *out = malloc(HEADS * HEAD_DIM * sizeof *out);
    layout ls[MAX_LIST + 1] = {{0}};
    int n = n_blocks + 1, rc = !k || !v || !q || !out;
    for (size_t i = 0; !rc && i < floats; i++) {
        k[i] = (float)(next_rand() >> 40) / (float)(1 << 24) - 0.5f;
        v[i] = k[i] * 0.5f;
    }
    for (int i = 0; !rc && i < HEADS * HEAD_DIM; i++)
        q[i] = (float)(i % 7) * 0.1f;
    /* ls[0]: one block of ctx positions, the contiguous layout */
    for (int i = 0; !rc && i < n; i++)
        rc = layout_make(&ls[i], i ? blocks[i - 1] : ctx, ctx, layers, k, v);
    double best[MAX_LIST + 1], best_cpu[MAX_LIST + 1];
    for (int i = 0; i < n; i++)
        best[i] = best_cpu[i] = 1e30;
    for (int r = 0; !rc && r < reps + 1; r++)
        for (int i = 0; i < n; i++) {
            double c, t = run_layers(be, &ls[i], layers, ctx, q, out, &c);
            if (r && t < best[i]) /* the first round faults the pages in */
                best[i] = t;
            if (r && c < best_cpu[i])
                best_cpu[i] = c;
        }
    for (int cpu = 0; !rc && cpu < 2; cpu++) {
        const double *b = cpu ? best_cpu : best;
        printf("ctx %lld, %d layers (%.0f MB of K and V), %s: contiguous %.1f us/layer", (long long)ctx, layers,
               (double)per_layer * layers / 1e6, cpu ? "CPU time" : "wall", b[0] * 1e6);
        for (int i = 1; i < n; i++)
            printf("; blocks of %lld %.1f us (%.3f)", (long long)ls[i].bp, b[i] * 1e6, b[i] / b[0]);
        printf("\n");
        fflush(stdout);
    }
    for (int i = 0; i < n; i++) {
        free(ls[i].kb);
        free(ls[i].vb);
    }
    free(k), free(v), free(q), free(out);
    return rc;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int64_t ctxs[MAX_LIST], blocks[MAX_LIST];
    int n_ctx = parse_list(argc > 2 ? argv[2] : "1024,4096,16384", ctxs);
    int n_blocks = parse_list(argc > 3 ? argv[3] : "8,16,32,64,128", blocks);
    int mb = argc > 4 ? atoi(argv[4]) : 256;
    cache_bytes = (size_t)(mb > 0 ? mb : 1) << 20;
    if (reps < 1 || n_ctx < 1 || n_blocks < 1 || mb < 1) {
        fprintf(stderr, "usage: bench_paged_attn [reps] [ctx,ctx,..] [block,block,..] [MB]\n");
        return 2;
    }
    const tpi_backend *be = tpi_backend_cpu();
    printf("%s, %d threads, decode attention of llama-1b's heads (%d query, %d KV, head_dim %d), best of %d rounds; "
           "(paged / contiguous)\n", be->name, omp_get_max_threads(), HEADS, KV_HEADS, HEAD_DIM, reps);
    for (int i = 0; i < n_ctx; i++)
        if (bench_ctx(be, ctxs[i], blocks, n_blocks, reps))
            return 1;
    return 0;
}
