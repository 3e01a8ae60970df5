/* y[n, O] = x[n, K] @ W^T for weights W [O, K] of block types, computed on
 * the blocks where the loader left them (a file mapping): the driver both
 * CPU sets share for Q8_0, Q4_0, Q4_K and Q6_K (quant_kernels.h).
 *  1. Each row of x is quantized once per activation format (tpi_q8a for
 *     Q8_0/Q4_0 weights, tpi_q8k for Q4_K/Q6_K) and k_off, for all the
 *     weights of a call.
 *  2. The weights' rows are cut into units of TPI_QMM_ROWS rows, handed out
 *     to the OpenMP threads dynamically. A unit runs its rows against the
 *     activation rows TPI_QMM_GROUP at a time: in decode (n <= 4) that reads
 *     each weight byte once; in prefill the unit's rows stay in L1/L2 while
 *     every group of activation rows passes, and each weight block is
 *     unpacked once per group (or per four rows, on AVX2).
 * The driver runs no vector instructions itself; the set's dot kernels do. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/tuning.h"

/* One weight of the call, and the activation rows it reads. */
typedef struct qm_out {
    float *y;
    const uint8_t *w;
    size_t row_bytes, act_row_bytes;
    int64_t O, nb;
    tpi_qdot_fn dot;
    const uint8_t *act;
} qm_out;

/* One quantized copy of x: a format (the weight type's), a k_off and a
 * block count. */
typedef struct qm_act {
    tpi_dtype t;
    int64_t k_off, nb;
    size_t row_bytes, offset;
} qm_act;

/* The quantized activations, kept between calls, one buffer per calling
 * thread, grown as needed (as matmul.c's packed activations). */
static uint8_t *scratch(size_t bytes)
{
    static _Thread_local uint8_t *buf;
    static _Thread_local size_t cap;
    if (bytes > cap) {
        free(buf);
        buf = malloc(bytes);
        cap = buf ? bytes : 0;
    }
    return buf;
}

static int same_format(tpi_dtype a, tpi_dtype b)
{
    return tpi_qact_row_bytes(a, 8) == tpi_qact_row_bytes(b, 8);
}

/* The activation copies the weights need (one per format, k_off and block
 * count); acts_of[i] is weight i's. Returns how many. */
static int plan_acts(int count, const tpi_weight *const *ws, int64_t n, qm_act *acts, int *acts_of)
{
    int na = 0;
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        int64_t nb = tpi_qweight_blocks(ws[i]);
        int j = 0;
        while (j < na && !(same_format(acts[j].t, ws[i]->dtype) && acts[j].k_off == ws[i]->k_off && acts[j].nb == nb))
            j++;
        if (j == na) {
            size_t rb = tpi_qact_row_bytes(ws[i]->dtype, nb);
            acts[na++] = (qm_act){.t = ws[i]->dtype, .k_off = ws[i]->k_off, .nb = nb, .row_bytes = rb, .offset = off};
            off += (size_t)n * rb;
        }
        acts_of[i] = j;
    }
    return na;
}

/* Unit u of all the outputs' units, as (output, first row). */
static int64_t find_unit(const qm_out *outs, int count, int64_t u, int *which)
{
    int i = 0;
    for (; i < count - 1; i++) {
        int64_t nu = (outs[i].O + TPI_QMM_ROWS - 1) / TPI_QMM_ROWS;
        if (u < nu)
            break;
        u -= nu;
    }
    *which = i;
    return u * TPI_QMM_ROWS;
}

static void run_unit(const qm_out *outs, int count, int64_t n, int64_t u)
{
    int wi;
    int64_t r0 = find_unit(outs, count, u, &wi);
    const qm_out *o = &outs[wi];
    int64_t r1 = r0 + TPI_QMM_ROWS < o->O ? r0 + TPI_QMM_ROWS : o->O;
    for (int64_t g = 0; g < n; g += TPI_QMM_GROUP) {
        int m = n - g < TPI_QMM_GROUP ? (int)(n - g) : TPI_QMM_GROUP;
        const uint8_t *a = o->act + (size_t)g * o->act_row_bytes;
        for (int64_t r = r0; r < r1; r++)
            o->dot(o->nb, o->w + (size_t)r * o->row_bytes, a, o->act_row_bytes, m, o->y + g * o->O + r, o->O);
    }
}

/* Row i of x in every activation format the call needs. */
static void quantize_row(const float *x, int64_t K, const qm_act *acts, int na, uint8_t *abuf, int64_t i)
{
    for (int j = 0; j < na; j++)
        tpi_qact_quantize(acts[j].t, x + i * K, K, acts[j].k_off, acts[j].nb,
                          abuf + acts[j].offset + (size_t)i * acts[j].row_bytes);
}

/* Decode quantizes its few rows on the calling thread before the parallel
 * region, so the region has one barrier (its end), not two: on a loaded
 * machine each barrier may wait for a preempted thread. */
static void run(const qm_out *outs, int count, const float *x, int64_t n, int64_t K, const qm_act *acts, int na,
                uint8_t *abuf, int64_t work_bytes)
{
    int64_t nu = 0;
    for (int i = 0; i < count; i++)
        nu += (outs[i].O + TPI_QMM_ROWS - 1) / TPI_QMM_ROWS;
    int serial_quant = n <= TPI_GEMV_MAX_ROWS;
    if (serial_quant)
        for (int64_t i = 0; i < n; i++)
            quantize_row(x, K, acts, na, abuf, i);
#pragma omp parallel if (work_bytes >= TPI_QMM_PARALLEL_MIN_BYTES)
    {
        if (!serial_quant) {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++)
                quantize_row(x, K, acts, na, abuf, i);
        }
        /* As matmul.c's GEMV: each thread first streams a contiguous share
         * of the units (the hardware prefetcher follows one stream), then
         * the rest go one at a time to whichever thread is free. */
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t fixed = serial_quant ? nu * TPI_GEMV_FIXED_QUARTERS / 4 / nt : 0;
        for (int64_t u = id * fixed; u < (id + 1) * fixed; u++)
            run_unit(outs, count, n, u);
#pragma omp for schedule(dynamic, 1) nowait /* the region's end is the barrier */
        for (int64_t u = nt * fixed; u < nu; u++)
            run_unit(outs, count, n, u);
    }
}

void tpi_qmatmul(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws,
                 tpi_qdot_fn (*pick)(tpi_dtype))
{
    if (n <= 0 || count <= 0)
        return;
    if (count > TPI_MATMUL_MAX) {
        tpi_qmatmul(count - TPI_MATMUL_MAX, ys + TPI_MATMUL_MAX, x, n, ws + TPI_MATMUL_MAX, pick);
        count = TPI_MATMUL_MAX;
    }
    qm_act acts[TPI_MATMUL_MAX];
    int acts_of[TPI_MATMUL_MAX];
    int na = plan_acts(count, ws, n, acts, acts_of);
    size_t bytes = acts[na - 1].offset + (size_t)n * acts[na - 1].row_bytes;
    uint8_t *abuf = scratch(bytes);
    if (!abuf) {
        for (int i = 0; i < count; i++)
            tpi_qmatmul_ref(ys[i], x, n, ws[i]);
        return;
    }
    qm_out outs[TPI_MATMUL_MAX];
    int64_t work = 0;
    for (int i = 0; i < count; i++) {
        const tpi_weight *w = ws[i];
        const qm_act *a = &acts[acts_of[i]];
        size_t rb = (size_t)a->nb * (size_t)tpi_dtype_block_bytes(w->dtype);
        outs[i] = (qm_out){.y = ys[i], .w = w->data, .row_bytes = rb, .act_row_bytes = a->row_bytes, .O = w->rows,
                           .nb = a->nb, .dot = pick(w->dtype), .act = abuf + a->offset};
        work += (int64_t)rb * w->rows * ((n + TPI_QMM_GROUP - 1) / TPI_QMM_GROUP);
    }
    run(outs, count, x, n, ws[0]->cols, acts, na, abuf, work);
}
