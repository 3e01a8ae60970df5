/* The bf16-dot GEMM's driver: y[n, O] = x[n, K] @ W^T for bf16 weights on
 * activations rounded to bf16, for matmul.c's GEMM path (n >
 * TPI_GEMV_MAX_ROWS) when the set has bf16_dot. It packs x once per call
 * (all the call's weights read it), then runs the tiles of
 * gemm_bf16_avx512.c in one of two ways:
 *  - few rows (n <= TPI_GEMM_BF16_STREAM_ROWS, a serve step's decode
 *    batch): each weight panel is streamed from memory once, over all of K,
 *    with the rows' accumulators in registers (up to 18 rows a pass), so
 *    the step reads the weights at the memory's rate while it computes.
 *    The threads stream contiguous shares, as the GEMV does.
 *  - prefill: BLIS-style, a weight panel's K slice (TPI_GEMM_BF16_KC) kept
 *    in the caches while the packed row blocks pass it.
 * No vector instructions here: the tiles and the packing carry them. */
#include <omp.h>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/tuning.h"

static int64_t n_panels(int64_t O)
{
    return (O + NR - 1) / NR;
}

size_t tpi_gemm_bf16_scratch_words(int64_t n, int64_t K)
{
    return (size_t)((n + MR - 1) / MR) * MR * (size_t)((K + 1) / 2);
}

/* Work is handed out in units of `per` consecutive panels of one output;
 * unit u (of all the outputs' units) as (output, first panel). */
static int64_t count_units(const tpi_bf16_out *outs, int count, int64_t per)
{
    int64_t n = 0;
    for (int i = 0; i < count; i++)
        n += (n_panels(outs[i].O) + per - 1) / per;
    return n;
}

static int64_t unit_at(const tpi_bf16_out *outs, int count, int64_t u, int64_t per, int *which)
{
    int i = 0;
    for (; i < count - 1; i++) {
        int64_t nu = (n_panels(outs[i].O) + per - 1) / per;
        if (u < nu)
            break;
        u -= nu;
    }
    *which = i;
    return u * per;
}

/* Few rows: panels [p0, p1) of o over all of K. Up to MAX_ACC / 2 rows take
 * two panels a tile (enough accumulators to cover vdpbf16ps' latency),
 * more rows one panel in passes of up to MAX_ROWS rows, the later passes
 * reading the panel again from L2. */
static void stream_unit(const tpi_bf16_out *o, int64_t p0, int64_t p1, const uint32_t *ap, int64_t n, int64_t K)
{
    const int64_t a_blk = (K + 1) / 2 * MR, pass = TPI_GEMM_BF16_MAX_ROWS;
    const size_t panel_bytes = (size_t)K * NR * sizeof(uint16_t);
    const int wide = n <= TPI_GEMM_BF16_MAX_ACC / 2;
    for (int64_t p = p0; p < p1;) {
        int panels = wide && p + 1 < p1 ? 2 : 1;
        const uint8_t *bp = o->packed + (size_t)p * panel_bytes;
        for (int64_t r0 = 0; r0 < n; r0 += pass) {
            int rows = (int)(n - r0 < pass ? n - r0 : pass);
            tpi_avx512bf16_tile_fn(rows, panels)(K, ap + r0 / MR * a_blk, a_blk, bp, panel_bytes,
                                                  o->y + r0 * o->O + p * NR, o->O, o->O - p * NR, 0);
        }
        p += panels;
    }
}

/* Each thread first streams a fixed block of its share of the units (one
 * region of memory, where its prefetches went), then takes the rest one at
 * a time, so a thread the OS preempts delays only the units it holds. */
static void stream(const tpi_bf16_out *outs, int count, const uint32_t *ap, int64_t n, int64_t K)
{
    const int64_t per = TPI_GEMM_BF16_STREAM_PANELS, nu = count_units(outs, count, per);
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    int64_t fixed = nu * TPI_GEMV_FIXED_QUARTERS / 4 / nt;
    for (int64_t u = id * fixed; u < (id + 1) * fixed; u++) {
        int wi;
        int64_t p = unit_at(outs, count, u, per, &wi), np = n_panels(outs[wi].O);
        stream_unit(&outs[wi], p, p + per < np ? p + per : np, ap, n, K);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = nt * fixed; u < nu; u++) {
        int wi;
        int64_t p = unit_at(outs, count, u, per, &wi), np = n_panels(outs[wi].O);
        stream_unit(&outs[wi], p, p + per < np ? p + per : np, ap, n, K);
    }
}

/* Prefill: row blocks [b0, b1) against panels [p0, p1) of o, K slice by
 * slice: each panel pair's slice stays in the caches while the blocks'
 * slices pass it. */
static void block_unit(const tpi_bf16_out *o, const uint32_t *ap, int64_t n, int64_t K, int64_t b0, int64_t b1,
                       int64_t p0, int64_t p1)
{
    const int64_t a_blk = (K + 1) / 2 * MR, tb = TPI_GEMM_BF16_TILE_BLOCKS;
    const size_t panel_bytes = (size_t)K * NR * sizeof(uint16_t);
    for (int64_t pc = 0; pc < K; pc += TPI_GEMM_BF16_KC) {
        int64_t kc = K - pc < TPI_GEMM_BF16_KC ? K - pc : TPI_GEMM_BF16_KC;
        for (int64_t p = p0; p < p1;) {
            int panels = tb * MR <= TPI_GEMM_BF16_MAX_ACC / 2 && p + 1 < p1 ? 2 : 1;
            const uint8_t *bp = o->packed + (size_t)p * panel_bytes + (size_t)pc * NR * sizeof(uint16_t);
            for (int64_t b = b0; b < b1; b += tb) {
                int64_t r0 = b * MR, rows = (b1 - b < tb ? b1 - b : tb) * MR;
                rows = n - r0 < rows ? n - r0 : rows;
                tpi_avx512bf16_tile_fn((int)rows, panels)(kc, ap + b * a_blk + pc / 2 * MR, a_blk, bp, panel_bytes,
                                                          o->y + r0 * o->O + p * NR, o->O, o->O - p * NR, pc > 0);
            }
            p += panels;
        }
    }
}

/* Units of (TPI_GEMM_BF16_MC_BLOCKS row blocks, TPI_GEMM_BF16_PANELS panels
 * of one weight), handed out dynamically row block by row block, so the
 * threads share the packed rows they read. */
static void blocked(const tpi_bf16_out *outs, int count, const uint32_t *ap, int64_t n, int64_t K)
{
    const int64_t per = TPI_GEMM_BF16_PANELS, mc = TPI_GEMM_BF16_MC_BLOCKS;
    int64_t nb = (n + MR - 1) / MR, n_pu = count_units(outs, count, per), n_mc = (nb + mc - 1) / mc;
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < n_mc * n_pu; u++) {
        int64_t b0 = u / n_pu * mc, b1 = b0 + mc < nb ? b0 + mc : nb;
        int wi;
        int64_t p0 = unit_at(outs, count, u % n_pu, per, &wi), np = n_panels(outs[wi].O);
        block_unit(&outs[wi], ap, n, K, b0, b1, p0, p0 + per < np ? p0 + per : np);
    }
}

void tpi_gemm_bf16(const tpi_bf16_out *outs, int count, const float *x, int64_t n, int64_t K, uint32_t *ap)
{
    int64_t nb = (n + MR - 1) / MR, a_blk = (K + 1) / 2 * MR, flops = 0;
    for (int i = 0; i < count; i++)
        flops += 2 * n * K * outs[i].O;
#pragma omp parallel if (flops >= TPI_PAR_MIN_GEMM_FLOPS)
    {
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++)
            tpi_avx512bf16_pack_rows(ap + b * a_blk, x, n, K, b);
        if (n <= TPI_GEMM_BF16_STREAM_ROWS)
            stream(outs, count, ap, n, K);
        else
            blocked(outs, count, ap, n, K);
    }
}
