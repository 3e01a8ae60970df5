/* y[n, O] = x[n, K] @ W^T for a weight W [O, K] stored in bf16, f16 or f32,
 * with fp32 activations and fp32 accumulation: the driver both CPU kernel
 * sets share. It packs the weights (matmul_packed.h), cuts the work into
 * units, runs them on the OpenMP threads, and calls a set's kernels for the
 * arithmetic:
 *  - prefill (n > TPI_GEMV_MAX_ROWS): a BLIS-style GEMM. x is packed into row
 *    blocks of MR = 6 rows, k-major; K is cut into TPI_GEMM_KC slices and the
 *    rows into TPI_GEMM_MC_BLOCKS blocks so that a weight panel's slice stays
 *    in L1 while the activation slices stream from L2; micro-kernels of 6
 *    rows x 16 (gemm_avx2.c) or 32 (gemm_avx512.c) outputs.
 *  - decode (n <= TPI_GEMV_MAX_ROWS): a GEMV that reads every weight byte
 *    exactly once, panel by panel, so its speed is the memory's (gemv_avx2.c,
 *    gemv_avx512.c).
 * The driver itself runs no vector instructions; the kernels it calls need
 * AVX2/FMA/F16C (and AVX-512F for the cpu-avx512 set), which select.c
 * checks. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_packed.h"
#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_pack.h"
#include "backend/cpu/tuning.h"
#include "core/mem.h"

static int64_t n_panels(int64_t rows)
{
    return (rows + NR - 1) / NR;
}

static size_t packed_size(const tpi_weight *w)
{
    return (size_t)n_panels(w->rows) * NR * (size_t)w->cols * tpi_dtype_size(w->dtype);
}

/* Position of output j (0..15) inside a packed 16-value group. */
static int slot(tpi_dtype dt, int j)
{
    if (dt != TPI_BF16)
        return j;
    return j < 8 ? 2 * j : 2 * (j - 8) + 1;
}

static void pack(void *dst, const tpi_weight *w)
{
    size_t es = tpi_dtype_size(w->dtype);
    int64_t K = w->cols, np = n_panels(w->rows);
    const uint8_t *src = w->data;
#pragma omp parallel for schedule(static) if (np * NR * K >= TPI_PAR_MIN_PACK_ELEMS)
    for (int64_t p = 0; p < np; p++) {
        uint8_t *d = (uint8_t *)dst + (size_t)p * NR * (size_t)K * es;
        for (int j = 0; j < NR; j++) {
            int64_t o = p * NR + j;
            int s = slot(w->dtype, j);
            if (o >= w->rows) {
                for (int64_t k = 0; k < K; k++)
                    memset(d + ((size_t)k * NR + (size_t)s) * es, 0, es);
                continue;
            }
            const uint8_t *row = src + (size_t)o * (size_t)K * es;
            /* fixed-size copies, which the compiler inlines: a memcpy call per
             * element would make loading take seconds. Rows may start at any
             * byte of a mapped file. */
            if (es == 2) {
                uint16_t *dd = (uint16_t *)d + s;
                for (int64_t k = 0; k < K; k++)
                    memcpy(&dd[k * NR], row + 2 * k, 2);
            } else {
                for (int64_t k = 0; k < K; k++)
                    memcpy(d + ((size_t)k * NR + (size_t)s) * es, row + (size_t)k * es, es);
            }
        }
    }
}

/* A block-type weight whose type has a packed layout (quant_pack.h) is
 * packed eight rows at a time, 64 groups per task; the others
 * are computed where they lie (quant_matmul.c). Packing twice is a no-op:
 * the plain rows may be gone after the first (model/load.c). */
static int prepare_quant(tpi_weight *w)
{
    size_t bytes = tpi_qpack_weight_bytes(w);
    if (!bytes || tpi_qpack_is_packed(w))
        return 0;
    int64_t nb = tpi_qweight_blocks(w), groups = (w->rows + TPI_QPACK_ROWS - 1) / TPI_QPACK_ROWS;
    size_t gb = tpi_qpack_group_bytes(w->dtype, nb), rb = (size_t)nb * (size_t)tpi_dtype_block_bytes(w->dtype);
    uint8_t *p = tpi_alloc_stream(bytes);
    if (!p)
        return -1;
    const uint8_t *src = w->data;
    enum { TASK = 64 };
#pragma omp parallel for schedule(static) if ((int64_t)bytes >= TPI_PAR_MIN_PACK_ELEMS)
    for (int64_t g = 0; g < groups; g += TASK) {
        int64_t r0 = g * TPI_QPACK_ROWS, r1 = r0 + TASK * TPI_QPACK_ROWS < w->rows ? r0 + TASK * TPI_QPACK_ROWS : w->rows;
        tpi_qpack(w->dtype, src + (size_t)r0 * rb, rb, r1 - r0, nb, p + (size_t)g * gb);
    }
    free(w->packed);
    w->packed = p;
    w->packed_bytes = (int64_t)bytes;
    return 0;
}

int tpi_cpu_prepare_weight(tpi_weight *w)
{
    if (tpi_dtype_is_quant(w->dtype))
        return prepare_quant(w);
    size_t bytes = packed_size(w);
    /* streamed whole once per decode token: on 2 MB pages (core/mem.c) */
    void *p = tpi_alloc_stream(bytes);
    if (!p)
        return -1;
    pack(p, w);
    free(w->packed);
    w->packed = p;
    w->packed_bytes = (int64_t)bytes;
    return 0;
}

/* Packs rows [MR*blk, MR*blk + MR) of x [n, K] as ap[k*MR + i], zero rows
 * past n, so the micro-kernel reads its 6 activations of a k contiguously. */
static void pack_rows(float *ap, const float *x, int64_t n, int64_t K, int64_t blk)
{
    int64_t r0 = blk * MR, rows = n - r0 < MR ? n - r0 : MR;
    if (rows < MR)
        memset(ap, 0, (size_t)K * MR * sizeof *ap);
    for (int64_t i = 0; i < rows; i++) {
        const float *xi = x + (r0 + i) * K;
        for (int64_t k = 0; k < K; k++)
            ap[k * MR + i] = xi[k];
    }
}

/* One output of a call: a weight (all share K) and where its rows go. */
typedef struct mm_out {
    float *y;
    const uint8_t *packed;
    tpi_dtype dt;
    int64_t O, np;
} mm_out;

/* Work is handed out in units of `per` consecutive panels of one output. */
static int64_t n_units(const mm_out *outs, int count, int64_t per)
{
    int64_t n = 0;
    for (int i = 0; i < count; i++)
        n += (outs[i].np + per - 1) / per;
    return n;
}

/* Unit u of all the outputs' units (u < n_units), as (output, first panel). */
static int64_t find_unit(const mm_out *outs, int count, int64_t u, int64_t per, int *which)
{
    int i = 0;
    for (; i < count - 1; i++) {
        int64_t nu = (outs[i].np + per - 1) / per;
        if (u < nu)
            break;
        u -= nu;
    }
    *which = i;
    return u * per;
}

/* The kernels of one set beyond the single-panel ones that both sets take
 * from AVX2 (tpi_avx2_panel_fn, tpi_avx2_gemm_fn): AVX2's set has the GEMV
 * pair kernel for one row only, no quad kernel and no GEMM pair kernel;
 * AVX-512's (gemv_avx512.c, gemm_avx512.c) has all three. */
typedef struct cpu_kernels {
    int pair_rows;                                /* GEMV pair (and quad) kernels exist for 1..pair_rows rows */
    tpi_panel_fn (*pair)(tpi_dtype dt, int rows);
    tpi_panel_fn (*quad)(tpi_dtype dt, int rows); /* NULL: pairs only */
    tpi_gemm_pair_fn (*gemm_pair)(tpi_dtype dt); /* NULL: the 6x16 kernel panel by panel */
    tpi_qdot_fn (*qdot)(tpi_dtype dt);            /* block-type weights' dot kernels */
    tpi_qpdot_fn (*qpdot)(tpi_dtype dt);          /* and those of packed block-type weights */
    tpi_qpdot_fn (*qpdot16)(tpi_dtype dt);        /* NULL, or those on two packed groups at once */
    int bf16_dot; /* 1: bf16 weights' GEMM on bf16 activations (gemm_bf16.c) */
    /* NULL: the pair kernel widens bf16/f16 weights in its loop */
    void (*widen_pair)(int64_t kc, const uint8_t *b, size_t panel_bytes, tpi_dtype dt, float *dst);
} cpu_kernels;

/* Part i of nparts of the bytes [p, p + bytes) and [p + gap, p + gap +
 * bytes) prefetched into L2 (prefetcht1). As asm: GCC 12 deletes a loop
 * whose body is only __builtin_prefetch as a loop without effects. */
static void prefetch_part(const uint8_t *p, size_t bytes, size_t gap, int64_t i, int64_t nparts)
{
    size_t lines = (bytes + 63) / 64, l0 = lines * (size_t)i / (size_t)nparts, l1 = lines * (size_t)(i + 1) / (size_t)nparts;
    for (size_t l = l0; l < l1; l++) {
        __asm__ volatile("prefetcht1 %0" : : "m"(p[64 * l]));
        __asm__ volatile("prefetcht1 %0" : : "m"(p[gap + 64 * l]));
    }
}

/* The slice at k pc of panel p (and of p + 1, `gap` bytes on, where there is
 * one; else gap 0), `bytes` long, which a work unit reads next; NULL past
 * K. It comes from memory: gemm_unit prefetches it while the pair before
 * it runs its row blocks, so that widening it (or the first block's
 * kernel) does not wait on its lines (on the Xeon, the widening's share
 * of a bf16 prefill went from 9 % of the kernel's samples to 4 %). */
static const uint8_t *next_slice(const mm_out *o, int64_t p, int64_t pc, int64_t slice, int64_t K, size_t *bytes,
                                 size_t *gap)
{
    *bytes = *gap = 0;
    if (pc >= K)
        return NULL;
    size_t es = tpi_dtype_size(o->dt), panel_bytes = (size_t)K * NR * es;
    *bytes = (size_t)(K - pc < slice ? K - pc : slice) * NR * es;
    *gap = p + 1 < o->np ? panel_bytes : 0;
    return o->packed + (size_t)p * panel_bytes + (size_t)pc * NR * es;
}

/* One GEMM work unit: row blocks [b0, b1) of the packed x (ap) against
 * panels [p0, p1) of output o, slice by slice of K. Tiles at the edges (fewer
 * than MR rows, or than the kernel's columns) go through a scratch tile. */
static void gemm_unit(const mm_out *o, const float *ap, int64_t n, int64_t K, int64_t b0, int64_t b1, int64_t p0,
                      int64_t p1, const cpu_kernels *ks, float *wide_buf)
{
    float tmp[MR * 2 * NR] __attribute__((aligned(64)));
    int64_t O = o->O;
    size_t es = tpi_dtype_size(o->dt), panel_bytes = (size_t)K * NR * es;
    tpi_gemm_fn kern = tpi_avx2_gemm_fn(o->dt);
    tpi_gemm_pair_fn kern2 = ks->gemm_pair ? ks->gemm_pair(o->dt) : NULL;
    /* several row blocks: widen each panel pair's slice once for all */
    float *wide = wide_buf && o->dt != TPI_F32 && b1 - b0 >= TPI_GEMM_WIDE_MIN_BLOCKS ? wide_buf : NULL;
    tpi_gemm_pair_fn kwide = wide ? ks->gemm_pair(TPI_F32) : NULL;
    const int64_t slice = wide ? TPI_GEMM_WIDE_KC : TPI_GEMM_KC;
    for (int64_t pc = 0; pc < K; pc += slice) {
        int64_t kc = K - pc < slice ? K - pc : slice;
        for (int64_t p = p0; p < p1;) {
            /* two panels at once where there is a pair kernel and a second panel */
            int64_t w = kern2 && p + 1 < p1 ? 2 : 1;
            const uint8_t *bp = o->packed + (size_t)p * panel_bytes + (size_t)pc * NR * es;
            int64_t cols = O - p * NR < w * NR ? O - p * NR : w * NR;
            tpi_gemm_pair_fn k2 = kern2;
            size_t pb = panel_bytes;
            if (w == 2 && wide) {
                ks->widen_pair(kc, bp, panel_bytes, o->dt, wide);
                k2 = kwide;
                bp = (const uint8_t *)wide;
                pb = (size_t)kc * NR * sizeof *wide;
            }
            size_t next_bytes, next_gap;
            const uint8_t *next = next_slice(o, p + w < p1 ? p + w : p0, p + w < p1 ? pc : pc + slice, slice, K,
                                             &next_bytes, &next_gap);
            for (int64_t b = b0; b < b1; b++) {
                if (next)
                    prefetch_part(next, next_bytes, next_gap, b - b0, b1 - b0);
                const float *a = ap + b * K * MR + pc * MR;
                int64_t rows = n - b * MR < MR ? n - b * MR : MR;
                float *c = o->y + b * MR * O + p * NR;
                int full = rows == MR && cols == w * NR;
                float *dst = full ? c : tmp;
                int64_t ld = full ? O : w * NR;
                if (w == 2)
                    k2(kc, a, bp, pb, dst, ld, full && pc > 0);
                else
                    kern(kc, a, bp, dst, ld, full && pc > 0);
                if (full)
                    continue;
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t j = 0; j < cols; j++)
                        c[i * O + j] = (pc > 0 ? c[i * O + j] : 0.0f) + tmp[i * w * NR + j];
            }
            p += w;
        }
    }
}

/* Packs the rows of x once for all the weights (q, k and v read the same x),
 * then runs the work units of (TPI_GEMM_MC_BLOCKS row blocks,
 * TPI_GEMM_PANELS panels of one weight). Units are independent (each writes
 * its own tile of its y), so they are handed out dynamically: a thread the OS
 * preempts delays only the unit it holds. They go row block by row block, so
 * the threads share the packed rows they read. */
static void gemm(const mm_out *outs, int count, const float *x, int64_t n, int64_t K, float *ap, const cpu_kernels *ks)
{
    const int64_t per = TPI_GEMM_PANELS, mc = TPI_GEMM_MC_BLOCKS;
    int64_t nb = (n + MR - 1) / MR, n_pu = n_units(outs, count, per), n_mc = (nb + mc - 1) / mc, flops = 0;
    for (int i = 0; i < count; i++)
        flops += 2 * n * K * outs[i].O;
#pragma omp parallel if (flops >= TPI_PAR_MIN_GEMM_FLOPS)
    {
        /* each thread's widened panel pair (cpu_kernels.widen_pair); without
         * it, the kernel widens in its loop */
        float *wide = ks->widen_pair ? aligned_alloc(64, (size_t)2 * TPI_GEMM_WIDE_KC * NR * sizeof *wide) : NULL;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++)
            pack_rows(ap + b * K * MR, x, n, K, b);
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < n_mc * n_pu; u++) {
            int64_t b0 = u / n_pu * mc, b1 = b0 + mc < nb ? b0 + mc : nb;
            int wi;
            int64_t p0 = find_unit(outs, count, u % n_pu, per, &wi);
            const mm_out *o = &outs[wi];
            int64_t p1 = p0 + per < o->np ? p0 + per : o->np;
            gemm_unit(o, ap, n, K, b0, b1, p0, p1, ks, wide);
        }
        free(wide);
    }
}

/* With bf16_dot: runs the bf16 weights among outs on the bf16-dot GEMM
 * (gemm_bf16.c, its packed rows at ap16), moves the others to the front of
 * outs and returns how many they are. */
static int gemm_bf16(mm_out *outs, int count, const float *x, int64_t n, int64_t K, uint32_t *ap16)
{
    tpi_bf16_out b16[TPI_MATMUL_MAX];
    int nb = 0, rest = 0;
    for (int i = 0; i < count; i++) {
        if (outs[i].dt == TPI_BF16)
            b16[nb++] = (tpi_bf16_out){.y = outs[i].y, .packed = outs[i].packed, .O = outs[i].O};
        else
            outs[rest++] = outs[i];
    }
    if (nb)
        tpi_gemm_bf16(b16, nb, x, n, K, ap16);
    return rest;
}

/* The AVX-512 set's quantized kernels need VNNI (and BW, VL) beyond its
 * AVX-512F; without them it uses AVX2's. */
static tpi_qdot_fn avx512_qdot(tpi_dtype dt)
{
    return tpi_cpu_has_avx512_vnni() ? tpi_avx512_qdot(dt) : tpi_avx2_qdot(dt);
}

static tpi_qpdot_fn avx512_qpdot(tpi_dtype dt)
{
    return tpi_cpu_has_avx512_vnni() ? tpi_avx512_qpdot(dt) : tpi_avx2_qpdot(dt);
}

static tpi_qpdot_fn avx512_qpdot16(tpi_dtype dt)
{
    return tpi_cpu_has_avx512_vnni() ? tpi_avx512_qpdot16(dt) : NULL;
}

static const cpu_kernels avx2_kernels = {1,    tpi_avx2_pair_fn, NULL, NULL, tpi_avx2_qdot, tpi_avx2_qpdot,
                                         NULL, 0,                NULL},
                         avx512_kernels = {TPI_GEMV_MAX_ROWS, tpi_avx512_pair_fn, tpi_avx512_quad_fn,
                                           tpi_avx512_gemm_pair_fn, avx512_qdot, avx512_qpdot, avx512_qpdot16, 0,
                                           tpi_avx512_gemm_widen_pair},
                         avx512bf16_kernels = {TPI_GEMV_MAX_ROWS, tpi_avx512_pair_fn, tpi_avx512_quad_fn,
                                               tpi_avx512_gemm_pair_fn, avx512_qdot, avx512_qpdot, avx512_qpdot16, 1,
                                               tpi_avx512_gemm_widen_pair};

/* One work unit of the GEMV: up to `per` panels of one weight, from unit u. */
static void gemv_unit(const mm_out *outs, int count, const float *xi, int64_t i, int64_t m, int64_t K,
                      const cpu_kernels *gk, int64_t per, int64_t u)
{
    int wi;
    int64_t p = find_unit(outs, count, u, per, &wi);
    const mm_out *o = &outs[wi];
    size_t panel_bytes = (size_t)K * NR * tpi_dtype_size(o->dt);
    int64_t end = p + per < o->np ? p + per : o->np;
    float *y = o->y + i * o->O;
    if (per == 4 && end - p == 4) {
        gk->quad(o->dt, (int)m)(y, xi, o->O, K, o->packed + (size_t)p * panel_bytes, p);
        return;
    }
    /* a weight's last unit: what is left in pairs, then one panel */
    for (int64_t q = p; q < end;) {
        const uint8_t *bp = o->packed + (size_t)q * panel_bytes;
        if (per > 1 && q + 1 < end) {
            gk->pair(o->dt, (int)m)(y, xi, o->O, K, bp, q);
            q += 2;
        } else {
            tpi_avx2_panel_fn(o->dt, (int)m)(y, xi, o->O, K, bp, q);
            q++;
        }
    }
}

/* n rows in groups of at most TPI_GEMV_MAX_ROWS; the GEMV needs no scratch
 * memory. The panels of all the outputs form one parallel loop (one thread
 * wake-up for q, k and v together, and k and v's few panels are not split
 * alone). Each thread first streams a fixed block of its share of the units
 * (TPI_GEMV_FIXED_QUARTERS), then the rest are handed out one unit at a
 * time: a thread that the OS preempts (other processes, or other ranks on
 * the same cores) delays only the units it holds, and the others take the
 * tail. In the fixed block a thread's next unit follows its last, which the
 * kernels' last prefetches fetch (gemv_avx512.c), and takes no atomic. */
static void gemv(const mm_out *outs, int count, const float *x, int64_t n, int64_t K, const cpu_kernels *gk)
{
    int64_t bytes = 0; /* streamed per group of rows */
    for (int i = 0; i < count; i++)
        bytes += outs[i].np * NR * K * (int64_t)tpi_dtype_size(outs[i].dt);
    for (int64_t i = 0; i < n; i += TPI_GEMV_MAX_ROWS) {
        int64_t m = n - i < TPI_GEMV_MAX_ROWS ? n - i : TPI_GEMV_MAX_ROWS;
        /* units of up to four panels of one weight, as wide as the kernels go */
        const int64_t per = m > gk->pair_rows ? 1 : gk->quad ? 4 : 2;
        int64_t nu = n_units(outs, count, per);
        const float *xi = x + i * K;
#pragma omp parallel if (bytes >= TPI_PAR_MIN_GEMV_BYTES)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            int64_t fixed = nu * TPI_GEMV_FIXED_QUARTERS / 4 / nt;
            for (int64_t u = id * fixed; u < (id + 1) * fixed; u++)
                gemv_unit(outs, count, xi, i, m, K, gk, per, u);
#pragma omp for schedule(dynamic, 4 / per)
            for (int64_t u = nt * fixed; u < nu; u++)
                gemv_unit(outs, count, xi, i, m, K, gk, per, u);
        }
    }
}

/* The packed activations of a prefill (n x K floats: 33 MB for 4096 rows of
 * 2048), kept between calls, one buffer per calling thread, grown as
 * needed: allocated per call they would cost a page fault per 4 KB on every
 * matmul, a large share of the GEMM's time. */
static float *scratch(size_t bytes)
{
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (bytes > cap) {
        const size_t huge = (size_t)2 << 20;
        size_t want = (bytes + huge - 1) / huge * huge; /* >= 2 MB, so tpi_alloc_stream gives exactly this */
        free(buf);
        buf = tpi_alloc_stream(want);
        cap = buf ? want : 0;
    }
    return buf;
}

static void matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws,
                         const cpu_kernels *gk)
{
    if (n <= 0 || count <= 0)
        return;
    if (count > TPI_MATMUL_MAX) {
        matmul_multi(count - TPI_MATMUL_MAX, ys + TPI_MATMUL_MAX, x, n, ws + TPI_MATMUL_MAX, gk);
        count = TPI_MATMUL_MAX;
    }
    /* block-type weights (a call may mix them: Q4_K_M's q/k in Q4_K, v in
     * Q6_K) go to the quantized driver, float ones on below */
    float *fys[TPI_MATMUL_MAX], *qys[TPI_MATMUL_MAX];
    const tpi_weight *fws[TPI_MATMUL_MAX], *qws[TPI_MATMUL_MAX];
    int nf = 0, nq = 0;
    for (int i = 0; i < count; i++) {
        if (tpi_dtype_is_quant(ws[i]->dtype))
            qys[nq] = ys[i], qws[nq++] = ws[i];
        else
            fys[nf] = ys[i], fws[nf++] = ws[i];
    }
    if (nq) {
        tpi_qmatmul(nq, qys, x, n, qws, gk->qdot, gk->qpdot, gk->qpdot16);
        if (!nf)
            return;
        count = nf, ys = fys, ws = fws;
    }
    int64_t K = ws[0]->cols;
    mm_out outs[TPI_MATMUL_MAX];
    tpi_weight tmpw[TPI_MATMUL_MAX];
    int m = 0;
    for (int i = 0; i < count; i++) {
        const tpi_weight *w = ws[i];
        if (w->rows <= 0)
            continue;
        if (K <= 0) {
            memset(ys[i], 0, (size_t)n * (size_t)w->rows * sizeof *ys[i]);
            continue;
        }
        /* A weight nobody prepared (or prepared for another layout) is
         * packed for this call only. */
        tmpw[m] = *w;
        tmpw[m].packed = NULL;
        const uint8_t *packed = w->packed;
        if (!packed || w->packed_bytes != (int64_t)packed_size(w)) {
            if (tpi_cpu_prepare_weight(&tmpw[m])) {
                tpi_backend_cpu_ref()->matmul(ys[i], x, n, w);
                continue;
            }
            packed = tmpw[m].packed;
        }
        outs[m++] = (mm_out){.y = ys[i], .packed = packed, .dt = w->dtype, .O = w->rows, .np = n_panels(w->rows)};
    }
    if (m) {
        /* with bf16_dot, the bf16 weights' packed rows (gemm_bf16) first,
         * then the fp32 rows where other dtypes need them */
        int n16 = 0;
        for (int i = 0; gk->bf16_dot && i < m; i++)
            n16 += outs[i].dt == TPI_BF16;
        size_t words = n16 ? tpi_gemm_bf16_scratch_words(n, K) : 0;
        size_t floats = n16 < m ? (size_t)((n + MR - 1) / MR) * MR * (size_t)K : 0;
        float *ap = n > TPI_GEMV_MAX_ROWS ? scratch((words + floats) * sizeof(float)) : NULL;
        int left = ap && n16 ? gemm_bf16(outs, m, x, n, K, (uint32_t *)ap) : m;
        if (ap && left)
            gemm(outs, left, x, n, K, ap + words, gk);
        else if (left)
            gemv(outs, left, x, n, K, gk);
    }
    for (int i = 0; i < m; i++)
        free(tmpw[i].packed);
}

void tpi_avx2_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws)
{
    matmul_multi(count, ys, x, n, ws, &avx2_kernels);
}

void tpi_avx2_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    matmul_multi(1, &y, x, n, &w, &avx2_kernels);
}

void tpi_avx512_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws)
{
    matmul_multi(count, ys, x, n, ws, &avx512_kernels);
}

void tpi_avx512_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    matmul_multi(1, &y, x, n, &w, &avx512_kernels);
}

void tpi_avx512bf16_matmul_multi(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws)
{
    matmul_multi(count, ys, x, n, ws, &avx512bf16_kernels);
}

void tpi_avx512bf16_matmul(float *y, const float *x, int64_t n, const tpi_weight *w)
{
    matmul_multi(1, &y, x, n, &w, &avx512bf16_kernels);
}
