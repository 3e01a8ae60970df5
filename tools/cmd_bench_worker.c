/* tpinfer bench-worker: the measuring half of `tpinfer bench`, run as each
 * rank of the job. Rank 0 prints one line per measurement:
 *   PREFILL batch seq ms flops
 *   RANKTIMES batch work_ms collective_ms [per rank, of the PREFILL run]
 *   OTHERS batch ms [CPU time of every other task on the machine in that run]
 *   DECODE ranks ctx tokens_per_s gb_per_s [pct of read bandwidth]
 *   ALLREDUCE ranks bytes us gb_per_s */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "comm/comm.h"
#include "commands.h"
#include "backend/cpu/kernels_avx2.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/mem.h"
#include "model/model.h"
#include "timed_comm.h"

/* FLOPs of a prefill of `batch` sequences of `seq` tokens (logits of the last
 * row of each): 2 per weight per token in the projections, plus causal
 * attention (QK^T and PV over seq/2 keys on average), plus the lm_head rows. */
static double prefill_flops(const tpi_config *c, int batch, int seq)
{
    double H = (double)c->hidden_size, hd = (double)c->head_dim, F = (double)c->intermediate_size;
    double q = (double)c->n_heads * hd, kv = (double)c->n_kv_heads * hd, L = (double)c->n_layers;
    double tokens = (double)batch * seq;
    double proj = 2.0 * L * (H * (q + 2 * kv) + q * H + 3 * H * F) * tokens;
    double attn = 2.0 * 2.0 * L * q * (seq + 1) / 2.0 * tokens;
    return proj + attn + 2.0 * H * (double)c->vocab_size * batch;
}

/* Weight bytes one decode step reads on this rank: all it holds but the
 * embedding, of which a token needs one row (unless tied to the lm_head,
 * which reads it whole). */
static int64_t streamed_bytes(const tpi_model *m)
{
    int64_t b = m->weight_bytes;
    if (m->embed.data != m->lm_head.data)
        b -= m->embed.rows * m->embed.cols * (int64_t)tpi_dtype_size(m->embed.dtype);
    return b;
}

/* Seconds all CPUs spent busy (user, nice, system, irq, softirq, steal)
 * since boot, from /proc/stat; -1 where it cannot be read. */
static double machine_busy_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7])
              : 0;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (n != 8 || hz <= 0)
        return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
}

/* CPU seconds of this process, all its threads. */
static double own_cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

#define BW_BYTES ((size_t)1 << 30) /* in all ranks together: far past any cache */

/* This rank's part of the bandwidth probe, on 2 MB pages like the packed
 * weights (tpi_alloc_stream), written so that reads hit real memory. NULL
 * when the AVX2 probe cannot run here (no AVX2, or out of memory): no
 * percentage is printed. */
static float *bandwidth_buffer(int size)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2"))
        return NULL;
    size_t bytes = BW_BYTES / (size_t)size;
    float *b = tpi_alloc_stream(bytes);
    if (!b)
        return NULL;
    for (size_t i = 0; i < bytes / sizeof *b; i++)
        b[i] = 1.0f;
    return b;
}

/* Seconds of one probe pass with all ranks reading their part at once: the
 * slowest rank's. Collective; t holds `size` floats. */
static double probe_seconds(tpi_comm *comm, const float *buf, int size, float *t)
{
    memset(t, 0, (size_t)size * sizeof *t);
    comm->ops->barrier(comm);
    t[comm->rank] = (float)tpi_avx2_read_seconds(buf, BW_BYTES / (size_t)size, omp_get_max_threads());
    comm->ops->allreduce_sum(comm, t, size);
    double slowest = 0;
    for (int i = 0; i < size; i++)
        slowest = t[i] > slowest ? t[i] : slowest;
    return slowest;
}

/* Bytes one probe pass reads over all ranks. */
static double probe_bytes(int size)
{
    return (double)(BW_BYTES / (size_t)size * (size_t)size);
}

/* probe_seconds' per-rank times ([size], free()), or NULL on every rank
 * when some rank has no probe buffer or memory: every rank probes, or none.
 * Collective. */
static float *probe_times(tpi_comm *comm, const float *buf, int size)
{
    float *t = calloc((size_t)size, sizeof *t);
    int32_t bad = !buf || !t;
    comm->ops->allreduce_max_i32(comm, &bad, 1);
    if (bad) {
        free(t);
        return NULL;
    }
    return t;
}

/* GB/s of the probe, best of 3; 0 without a buffer on some rank.
 * Collective. */
static double read_bandwidth(tpi_comm *comm, const float *buf, int size)
{
    float *t = probe_times(comm, buf, size);
    if (!t)
        return 0;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double s = probe_seconds(comm, buf, size, t);
        best = s < best ? s : best;
    }
    free(t);
    return probe_bytes(size) / best / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define PAIRS 32 /* probe pass + decode step pairs per context */

/* Decode steps paired with probe passes, one after the other, PAIRS times:
 * the medians of the step's weight GB/s, of the probe's GB/s and of their
 * ratio (step over probe), in r[0..2]; 0 when no probe can run. Why pairs:
 * this VM's memory stalls for 20-40 ms at random (steps of 62 ms took 90-100
 * now and then, and so did passes of the GEMV alone), so a window of 16
 * steps, about 1 s, almost always holds a stall while the best of three
 * 30 ms probe passes holds none, and their ratio judged the stalls rather
 * than the decode. A step and the pass next to it meet the same memory;
 * the median leaves out the pairs a stall hit. Collective. */
static int paired_ratio(tpi_comm *comm, const float *buf, int size, tpi_model *m, tpi_kv *kv, int32_t *next,
                        double streamed, double r[3], tpi_error *err)
{
    r[0] = r[1] = r[2] = 0;
    float *t = probe_times(comm, buf, size);
    if (!t)
        return 0;
    double step[PAIRS], probe[PAIRS], ratio[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        probe[i] = probe_bytes(size) / probe_seconds(comm, buf, size, t) / 1e9;
        comm->ops->barrier(comm);
        int64_t n = 1;
        double t0 = tpi_seconds();
        if (tpi_model_forward_argmax(m, kv, next, &n, next, err)) {
            free(t);
            return -1;
        }
        step[i] = streamed / (tpi_seconds() - t0) / 1e9;
        ratio[i] = step[i] / probe[i];
    }
    free(t);
    qsort(step, PAIRS, sizeof *step, cmp_double);
    qsort(probe, PAIRS, sizeof *probe, cmp_double);
    qsort(ratio, PAIRS, sizeof *ratio, cmp_double);
    r[0] = (step[PAIRS / 2 - 1] + step[PAIRS / 2]) / 2;
    r[1] = (probe[PAIRS / 2 - 1] + probe[PAIRS / 2]) / 2;
    r[2] = (ratio[PAIRS / 2 - 1] + ratio[PAIRS / 2]) / 2;
    return 0;
}

int cmd_bench_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"batches", required_argument, 0, 'b'},
        {"seq", required_argument, 0, 'q'},   {"decode-ctx", required_argument, 0, 'x'},
        {"reps", required_argument, 0, 'n'},  {"threads", required_argument, 0, 't'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL, *batches = "1", *ctxs = "128";
    int seq = 512, reps = 2, threads = 0, c;
    while ((c = getopt_long(argc, argv, "m:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'b': batches = optarg; break;
        case 'q': seq = atoi(optarg); break;
        case 'x': ctxs = optarg; break;
        case 'n': reps = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        default: return 2;
        }
    }
    if (!dir)
        return 2;
    int32_t *bs = NULL, *cs = NULL;
    int64_t n_bs = 0, n_cs = 0; /* "none": that part is skipped */
    if ((strcmp(batches, "none") && cli_parse_ids(batches, "--batches", &bs, &n_bs)) ||
        (strcmp(ctxs, "none") && cli_parse_ids(ctxs, "--decode-ctx", &cs, &n_cs)))
        return 2;
    tpi_comm *comm;
    if (cli_comm(&comm, &argc, &argv, "bench-worker"))
        return 1;
    tpi_error err = {0};
    tpi_model *m = NULL;
    timed_comm timed;
    timed_comm_init(&timed, comm);
    tpi_load_opts lo = {.comm = &timed.comm, .n_threads = threads};
    if (tpi_model_load(&m, dir, &lo, &err))
        return cli_fail(comm, "bench-worker", &err);
    int rank = comm->rank, size = comm->size;
    const tpi_config *cfg = &m->cfg;
    float *logits = malloc((size_t)cfg->vocab_size * 8 * sizeof *logits);

    for (int64_t i = 0; i < n_bs; i++) {
        int b = bs[i];
        tpi_kv *kv;
        int32_t *ids = malloc((size_t)b * seq * sizeof *ids);
        int64_t *lens = malloc((size_t)b * sizeof *lens);
        for (int64_t t = 0; t < (int64_t)b * seq; t++)
            ids[t] = (int32_t)((t * 7919 + 13) % cfg->vocab_size);
        for (int s = 0; s < b; s++)
            lens[s] = seq;
        if (tpi_kv_create(&kv, m, b, seq, &err))
            return cli_fail(comm, "bench-worker", &err);
        double best = 1e30, best_t = 0, best_coll = 0, best_own = 0, best_busy = -1;
        for (int r = 0; r <= reps; r++) { /* run 0 warms up */
            tpi_kv_clear(kv, -1);
            comm->ops->barrier(comm);
            timed.seconds = 0;
            double busy = rank == 0 ? machine_busy_seconds() : 0, own = own_cpu_seconds();
            double t = tpi_seconds();
            if (tpi_model_forward(m, kv, ids, lens, TPI_LOGITS_LAST, logits, &err))
                return cli_fail(comm, "bench-worker", &err);
            t = tpi_seconds() - t;
            /* rank 0's time picks the best run on every rank, and every
             * rank's CPU time is in before the machine's is read */
            double job = t;
            comm->ops->bcast(comm, &job, sizeof job, 0);
            comm->ops->barrier(comm);
            double busy_after = rank == 0 ? machine_busy_seconds() : 0;
            if (r && job < best) {
                best = job, best_t = t, best_coll = timed.seconds, best_own = own_cpu_seconds() - own;
                best_busy = busy < 0 || busy_after < 0 ? -1 : busy_after - busy;
            }
        }
        /* Every rank's own best run split into work and collectives (the
         * faster rank's collectives include its wait for the slower), and
         * its CPU time: the machine's busy time less all ranks' is what
         * other tasks took, from the ranks' cores when every core has one. */
        float *rt = calloc((size_t)size * 3, sizeof *rt);
        if (!rt) {
            tpi_err(&err, TPI_ENOMEM, "out of memory");
            return cli_fail(comm, "bench-worker", &err);
        }
        rt[2 * rank] = (float)(best_t - best_coll);
        rt[2 * rank + 1] = (float)best_coll;
        rt[2 * size + rank] = (float)best_own;
        comm->ops->allreduce_sum(comm, rt, (int64_t)size * 3);
        if (rank == 0) {
            printf("PREFILL %d %d %.3f %.6g\n", b, seq, best * 1e3, prefill_flops(cfg, b, seq));
            printf("RANKTIMES %d", b);
            for (int q = 0; q < size; q++)
                printf(" %.3f %.3f", rt[2 * q] * 1e3, rt[2 * q + 1] * 1e3);
            printf("\n");
            if (best_busy >= 0) {
                double others = best_busy;
                for (int q = 0; q < size; q++)
                    others -= rt[2 * size + q];
                printf("OTHERS %d %.0f\n", b, others * 1e3);
            }
            fflush(stdout);
        }
        free(rt);
        tpi_kv_free(kv);
        free(ids);
        free(lens);
    }

    /* Decode: one sequence, `ctx` positions cached, then reps + 1 windows
     * of 16 greedy steps, the fastest kept (as prefill keeps its fastest
     * run: one preempted step weighs 6 % in a window of 16), judged against
     * the read bandwidth measured just before and after them. */
    float *bw_buf = n_cs > 0 ? bandwidth_buffer(size) : NULL;
    float streamed = (float)streamed_bytes(m);
    comm->ops->allreduce_sum(comm, &streamed, 1); /* all ranks' bytes per token */
    for (int64_t i = 0; i < n_cs; i++) {
        int ctx = cs[i], steps = 16, windows = reps + 1;
        tpi_kv *kv;
        if (tpi_kv_create(&kv, m, 1, ctx + steps * windows + PAIRS, &err))
            return cli_fail(comm, "bench-worker", &err);
        int32_t *ids = malloc((size_t)ctx * sizeof *ids), next;
        for (int t = 0; t < ctx; t++)
            ids[t] = (int32_t)((t * 7919 + 13) % cfg->vocab_size);
        int64_t n = ctx;
        if (tpi_model_forward_argmax(m, kv, ids, &n, &next, &err))
            return cli_fail(comm, "bench-worker", &err);
        double bw_before = read_bandwidth(comm, bw_buf, size);
        n = 1;
        double t = 1e30;
        for (int w = 0; w < windows; w++) {
            comm->ops->barrier(comm);
            double t0 = tpi_seconds();
            for (int s = 0; s < steps; s++)
                if (tpi_model_forward_argmax(m, kv, &next, &n, &next, &err))
                    return cli_fail(comm, "bench-worker", &err);
            t0 = (tpi_seconds() - t0) / steps;
            t = t0 < t ? t0 : t;
        }
        double bw_after = read_bandwidth(comm, bw_buf, size), pr[3];
        if (paired_ratio(comm, bw_buf, size, m, kv, &next, streamed, pr, &err))
            return cli_fail(comm, "bench-worker", &err);
        if (rank == 0) {
            double gbs = streamed / t / 1e9, bw = bw_before > bw_after ? bw_before : bw_after;
            printf("DECODE ranks=%d ctx=%d %.2f tokens/s, %.2f GB/s of weights (%.2f GB streamed per token, all ranks)",
                   size, ctx, 1.0 / t, gbs, streamed / 1e9);
            if (bw > 0)
                printf(" = %.1f%% of the read bandwidth measured around it (%.1f GB/s before, %.1f after)",
                       100.0 * gbs / bw, bw_before, bw_after);
            printf("\n");
            if (pr[2] > 0)
                printf("DECODE ranks=%d ctx=%d paired: %.1f%% of the read bandwidth, median of %d steps each "
                       "against the probe pass just before it (steps %.2f GB/s, probe %.1f GB/s, medians)\n",
                       size, ctx, 100.0 * pr[2], PAIRS, pr[0], pr[1]);
            fflush(stdout);
        }
        free(ids);
        tpi_kv_free(kv);
    }
    free(bw_buf);

    /* All-reduce of the message sizes the model sends: one token's hidden
     * state (decode), 64 KB, and a 512-token prefill's; in the decode run. */
    if (size > 1 && n_cs > 0) {
        int64_t sizes[] = {cfg->hidden_size, 16384, (int64_t)seq * cfg->hidden_size};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            float *buf = calloc((size_t)sizes[k], sizeof *buf);
            int iters = sizes[k] <= 16384 ? 2000 : 20;
            for (int w = 0; w < 10; w++)
                comm->ops->allreduce_sum(comm, buf, sizes[k]);
            comm->ops->barrier(comm);
            double t = tpi_seconds();
            for (int it = 0; it < iters; it++)
                comm->ops->allreduce_sum(comm, buf, sizes[k]);
            t = (tpi_seconds() - t) / iters;
            if (rank == 0) {
                printf("ALLREDUCE ranks=%d %lld bytes: %.1f us, %.2f GB/s\n", size, (long long)sizes[k] * 4, t * 1e6,
                       (double)sizes[k] * 4 / t / 1e9);
                fflush(stdout);
            }
            free(buf);
        }
    }
    free(logits);
    free(bs);
    free(cs);
    tpi_model_free(m);
    tpi_comm_free(comm);
    return 0;
}
