/* Why per core: the cores of a VM need not run alike. One thread of this
 * GEMM ran at 170-175 GFLOP/s on CPU 0 and 183-185 on CPU 1 for an hour,
 * alone or beside the other (taskset; the register-only FMA rate differed by
 * only 2-3 %), and the gap moved and flipped over the day. A 2 x 1 prefill
 * waits for its slower rank at every all-reduce, so against 1 x 1 on the
 * faster core it could not pass 2 x 171 / 185 = 1.85x there. Measured
 * around a run, not in it: the split that tpinfer-bench prints (balance) is
 * the in-run figure. */
#define _GNU_SOURCE
#include <omp.h>
#include <sched.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "bench_cores.h"
#include "core/clock.h"

#define ROWS 512 /* a prefill chunk */
#define DIM 2048 /* llama-1b's hidden size: the o projection's shape */

struct core_probe {
    const tpi_backend *be;
    tpi_weight w;
    uint16_t *data;
    float *x, *y;
};

core_probe *core_probe_new(void)
{
    core_probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->be = tpi_backend_cpu();
    p->data = malloc((size_t)DIM * DIM * sizeof *p->data);
    p->x = malloc((size_t)ROWS * DIM * sizeof *p->x);
    p->y = malloc((size_t)ROWS * DIM * sizeof *p->y);
    if (!p->data || !p->x || !p->y) {
        core_probe_free(p);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)DIM * DIM; i++)
        p->data[i] = (uint16_t)(0x3c00 + i % 64); /* bf16 0.0078-0.0117 */
    for (size_t i = 0; i < (size_t)ROWS * DIM; i++)
        p->x[i] = 0.01f * (float)(i % 13);
    p->w = (tpi_weight){.dtype = TPI_BF16, .rows = DIM, .cols = DIM, .data = p->data};
    if (p->be->prepare_weight && p->be->prepare_weight(&p->w)) {
        core_probe_free(p);
        return NULL;
    }
    return p;
}

int core_probe_run(core_probe *p, double *rate, int cores)
{
    cpu_set_t old;
    for (int c = 0; c < cores; c++)
        rate[c] = 0;
    if (sched_getaffinity(0, sizeof old, &old))
        return -1;
    int threads = omp_get_max_threads(), rc = 0;
    omp_set_num_threads(1);
    for (int c = 0; c < cores && c < CPU_SETSIZE; c++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        if (sched_setaffinity(0, sizeof one, &one)) {
            rc = -1;
            break;
        }
        double best = 1e30;
        for (int r = 0; r < 4; r++) { /* the first run warms the caches */
            double t = tpi_seconds();
            p->be->matmul(p->y, p->x, ROWS, &p->w);
            t = tpi_seconds() - t;
            if (r && t < best)
                best = t;
        }
        rate[c] = 2.0 * ROWS * DIM * DIM / best / 1e9;
    }
    omp_set_num_threads(threads);
    sched_setaffinity(0, sizeof old, &old);
    return rc;
}

void core_probe_free(core_probe *p)
{
    if (!p)
        return;
    free(p->w.packed);
    free(p->data);
    free(p->x);
    free(p->y);
    free(p);
}
