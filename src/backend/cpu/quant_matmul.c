/* y[n, O] = x[n, K] @ W^T for weights W [O, K] of block types, computed on
 * the blocks where the loader left them (a file mapping): the driver both
 * CPU sets share for Q8_0, Q4_0, Q4_K and Q6_K (quant_kernels.h).
 *  1. Each row of x is quantized once per activation format (tpi_q8a for
 *     Q8_0/Q4_0 weights, tpi_q8k for Q4_K/Q6_K) and k_off, for all the
 *     weights of a call.
 *  2. The weights' rows are cut into units of TPI_QMM_ROWS rows (of
 *     TPI_QMM_PACKED_ROWS for a weight packed eight rows at a time,
 *     quant_pack.h), handed out to the OpenMP threads dynamically. A unit
 *     runs its rows against the activation rows TPI_QMM_GROUP at a time: in
 *     decode (n <= 4) that reads each weight byte once; in prefill the
 *     unit's rows stay in L1/L2 while every group of activation rows
 *     passes, and each weight block is unpacked once per group (or per four
 *     rows, on AVX2).
 *  3. A packed weight goes through the set's packed kernel for its type,
 *     sixteen rows (two groups) per call where the set has that kernel and
 *     the unit two whole groups left, else eight, or the reference's where
 *     the set has none (its plain rows may be gone); an unpacked one
 *     through the row kernels.
 * The driver runs no vector instructions itself; the set's dot kernels do. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/quant_kernels.h"
#include "backend/cpu/quant_pack.h"
#include "backend/cpu/tuning.h"

/* One weight of the call, and the activation rows it reads. */
typedef struct qm_out {
    float *y;
    const uint8_t *w;  /* plain rows, or packed groups when pdot is set */
    size_t row_bytes, act_row_bytes, group_bytes;
    int64_t O, nb, unit_rows;
    tpi_qdot_fn dot;
    tpi_qpdot_fn pdot, pdot16; /* pdot16: NULL, or the kernel on two groups */
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
        int64_t nu = (outs[i].O + outs[i].unit_rows - 1) / outs[i].unit_rows;
        if (u < nu)
            break;
        u -= nu;
    }
    *which = i;
    return u * outs[i].unit_rows;
}

/* Rows [r0, r1) (r0 a multiple of 8) of a packed weight against m activation
 * rows at a: two whole groups at a time where the set has that kernel
 * (quant_pack_x16.h), then one; a group that the weight's end cuts short
 * goes through tmp. */
static void packed_rows(const qm_out *o, const uint8_t *a, int m, float *y, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r += TPI_QPACK_ROWS) {
        const uint8_t *g = o->w + (size_t)(r / TPI_QPACK_ROWS) * o->group_bytes;
        if (o->pdot16 && r + 2 * TPI_QPACK_ROWS <= r1) {
            o->pdot16(o->nb, g, a, o->act_row_bytes, m, y + r, o->O);
            r += TPI_QPACK_ROWS;
            continue;
        }
        if (r + TPI_QPACK_ROWS <= o->O) {
            o->pdot(o->nb, g, a, o->act_row_bytes, m, y + r, o->O);
            continue;
        }
        float tmp[TPI_QMM_GROUP * TPI_QPACK_ROWS];
        o->pdot(o->nb, g, a, o->act_row_bytes, m, tmp, TPI_QPACK_ROWS);
        for (int i = 0; i < m; i++)
            memcpy(y + i * o->O + r, tmp + i * TPI_QPACK_ROWS, (size_t)(o->O - r) * sizeof *tmp);
    }
}

static void run_unit(const qm_out *outs, int count, int64_t n, int64_t u)
{
    int wi;
    int64_t r0 = find_unit(outs, count, u, &wi);
    const qm_out *o = &outs[wi];
    int64_t r1 = r0 + o->unit_rows < o->O ? r0 + o->unit_rows : o->O;
    for (int64_t g = 0; g < n; g += TPI_QMM_GROUP) {
        int m = n - g < TPI_QMM_GROUP ? (int)(n - g) : TPI_QMM_GROUP;
        const uint8_t *a = o->act + (size_t)g * o->act_row_bytes;
        if (o->pdot) {
            packed_rows(o, a, m, o->y + g * o->O, r0, r1);
            continue;
        }
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
        nu += (outs[i].O + outs[i].unit_rows - 1) / outs[i].unit_rows;
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

/* Output i of a call on weight w, whose activation rows are a: packed when
 * w carries the packed groups of its type and block count. */
static qm_out make_out(float *y, const tpi_weight *w, const qm_act *a, const uint8_t *act,
                       tpi_qdot_fn (*pick)(tpi_dtype), tpi_qpdot_fn (*ppick)(tpi_dtype),
                       tpi_qpdot_fn (*ppick16)(tpi_dtype))
{
    size_t rb = (size_t)a->nb * (size_t)tpi_dtype_block_bytes(w->dtype);
    qm_out o = {.y = y, .w = w->data, .row_bytes = rb, .act_row_bytes = a->row_bytes, .O = w->rows, .nb = a->nb,
                .unit_rows = TPI_QMM_ROWS, .act = act};
    if (tpi_qpack_is_packed(w)) {
        o.pdot = ppick ? ppick(w->dtype) : NULL;
        o.pdot16 = o.pdot && ppick16 ? ppick16(w->dtype) : NULL;
        if (!o.pdot)
            o.pdot = tpi_ref_qpdot(w->dtype);
        o.w = w->packed;
        o.group_bytes = tpi_qpack_group_bytes(w->dtype, a->nb);
        o.unit_rows = TPI_QMM_PACKED_ROWS;
    } else {
        o.dot = pick(w->dtype);
    }
    return o;
}

void tpi_qmatmul(int count, float *const *ys, const float *x, int64_t n, const tpi_weight *const *ws,
                 tpi_qdot_fn (*pick)(tpi_dtype), tpi_qpdot_fn (*ppick)(tpi_dtype),
                 tpi_qpdot_fn (*ppick16)(tpi_dtype))
{
    if (n <= 0 || count <= 0)
        return;
    if (count > TPI_MATMUL_MAX) {
        tpi_qmatmul(count - TPI_MATMUL_MAX, ys + TPI_MATMUL_MAX, x, n, ws + TPI_MATMUL_MAX, pick, ppick, ppick16);
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
        outs[i] = make_out(ys[i], w, a, abuf + a->offset, pick, ppick, ppick16);
        work += (int64_t)outs[i].row_bytes * w->rows * ((n + TPI_QMM_GROUP - 1) / TPI_QMM_GROUP);
    }
    run(outs, count, x, n, ws[0]->cols, acts, na, abuf, work);
}
