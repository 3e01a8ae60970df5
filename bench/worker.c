/* tpinfer-bench worker: the measuring half of tpinfer-bench, run as each
 * rank of the job (sweep.c starts it under mpirun). Rank 0 prints one line
 * per measurement:
 *   PREFILL batch seq ms flops
 *   RANKTIMES batch work_ms collective_ms [per rank, of the PREFILL run]
 *   OTHERS batch ms [CPU time of every other task on the machine in that run]
 *   DECODE ranks ctx kv_block tokens_per_s gb_per_s [pct of read bandwidth]
 *   ALLREDUCE ranks bytes us gb_per_s */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "comm/comm.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/mem.h"
#include "model/model.h"
#include "options.h"
#include "peaks.h"
#include "timed_comm.h"
#include "util.h"

/* One rank's job: the model loaded over a communicator that times its
 * collectives, and the options every part shares. */
typedef struct worker {
    tpi_comm *comm;   /* the job's communicator (owned) */
    timed_comm timed; /* what the model is given */
    tpi_model *m;
    int rank, size, seq, reps;
    const int32_t *kv_blocks; /* positions per KV block of each decode run (0: the default) */
    int64_t n_kv_blocks;
    float *logits;    /* rank 0: the last row of each of up to 8 sequences */
    float *bw_buf;    /* this rank's part of the bandwidth probe, or NULL */
    float streamed;   /* weight bytes one decode step reads, all ranks */
} worker;

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

/* ---- prefill ---- */

/* The run of a batch that rank 0 timed fastest, as this rank saw it. */
typedef struct prefill_run {
    double job;  /* rank 0's seconds: the same on every rank */
    double mine; /* this rank's seconds */
    double coll; /* ... of them inside collectives */
    double own;  /* this process's CPU seconds */
    double busy; /* rank 0: every CPU's busy seconds; -1 unknown */
} prefill_run;

/* Runs the prefill of b sequences of w->seq tokens reps + 1 times (the first
 * warms up) and keeps the run rank 0 timed fastest. Collective. */
static int time_prefill(worker *w, tpi_kv *kv, const int32_t *ids, const int64_t *lens, prefill_run *best,
                        tpi_error *err)
{
    tpi_comm *comm = w->comm;
    *best = (prefill_run){.job = 1e30, .busy = -1};
    for (int r = 0; r <= w->reps; r++) {
        tpi_kv_clear(kv, -1);
        tpi_comm_barrier(comm);
        w->timed.seconds = 0;
        double busy = w->rank == 0 ? machine_busy_seconds() : 0, own = own_cpu_seconds();
        double t = tpi_seconds();
        if (tpi_model_forward(w->m, kv, ids, lens, TPI_LOGITS_LAST, w->logits, err))
            return -1;
        t = tpi_seconds() - t;
        /* rank 0's time picks the best run on every rank, and every rank's
         * CPU time is in before the machine's is read */
        double job = t;
        tpi_comm_bcast(comm, &job, sizeof job, 0);
        tpi_comm_barrier(comm);
        double busy_after = w->rank == 0 ? machine_busy_seconds() : 0;
        if (r && job < best->job)
            *best = (prefill_run){job, t, w->timed.seconds, own_cpu_seconds() - own,
                                  busy < 0 || busy_after < 0 ? -1 : busy_after - busy};
    }
    return 0;
}

/* Every rank's best run split into work and collectives (the faster rank's
 * collectives include its wait for the slower), and its CPU time: the
 * machine's busy time less all ranks' is what other tasks took, from the
 * ranks' cores when every core has one. Collective; rank 0 prints. */
static int report_prefill(worker *w, int b, const prefill_run *best, tpi_error *err)
{
    int size = w->size;
    float *rt = calloc((size_t)size * 3, sizeof *rt);
    if (!rt)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    rt[2 * w->rank] = (float)(best->mine - best->coll);
    rt[2 * w->rank + 1] = (float)best->coll;
    rt[2 * size + w->rank] = (float)best->own;
    tpi_comm_allreduce_sum_f32(w->comm, rt, (int64_t)size * 3);
    if (w->rank == 0) {
        printf("PREFILL %d %d %.3f %.6g\n", b, w->seq, best->job * 1e3, prefill_flops(&w->m->cfg, b, w->seq));
        printf("RANKTIMES %d", b);
        for (int q = 0; q < size; q++)
            printf(" %.3f %.3f", rt[2 * q] * 1e3, rt[2 * q + 1] * 1e3);
        printf("\n");
        if (best->busy >= 0) {
            double others = best->busy;
            for (int q = 0; q < size; q++)
                others -= rt[2 * size + q];
            printf("OTHERS %d %.0f\n", b, others * 1e3);
        }
        fflush(stdout);
    }
    free(rt);
    return 0;
}

/* The prefill of b sequences of w->seq tokens. Collective. */
static int prefill_batch(worker *w, int b, tpi_error *err)
{
    const tpi_config *cfg = &w->m->cfg;
    tpi_kv *kv = NULL;
    prefill_run best = {0};
    int32_t *ids = malloc((size_t)b * w->seq * sizeof *ids);
    int64_t *lens = malloc((size_t)b * sizeof *lens);
    int rc = !ids || !lens ? tpi_err(err, TPI_ENOMEM, "out of memory") : 0;
    for (int64_t t = 0; !rc && t < (int64_t)b * w->seq; t++)
        ids[t] = (int32_t)((t * 7919 + 13) % cfg->vocab_size);
    for (int s = 0; !rc && s < b; s++)
        lens[s] = w->seq;
    if (!rc)
        rc = tpi_kv_create(&kv, w->m, b, w->seq, err);
    if (!rc)
        rc = time_prefill(w, kv, ids, lens, &best, err);
    if (!rc)
        rc = report_prefill(w, b, &best, err);
    tpi_kv_free(kv);
    free(ids);
    free(lens);
    return rc;
}

/* ---- decode ---- */

#define BW_BYTES ((size_t)1 << 30) /* in all ranks together: far past any cache */
#define PAIRS 32                   /* probe pass + decode step pairs per context */

/* This rank's part of the bandwidth probe, on 2 MB pages like the packed
 * weights (tpi_alloc_stream), written so that reads hit real memory. NULL
 * when the probe cannot run here (no AVX2, or out of memory): no
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

/* Bytes one probe pass reads over all ranks. */
static double probe_bytes(int size)
{
    return (double)(BW_BYTES / (size_t)size * (size_t)size);
}

/* Seconds of one probe pass with all ranks reading their part at once: the
 * slowest rank's. Collective; t holds `size` floats. */
static double probe_seconds(worker *w, float *t)
{
    tpi_comm *comm = w->comm;
    memset(t, 0, (size_t)w->size * sizeof *t);
    tpi_comm_barrier(comm);
    t[w->rank] = (float)membw_read_seconds(w->bw_buf, BW_BYTES / (size_t)w->size, omp_get_max_threads());
    tpi_comm_allreduce_sum_f32(comm, t, w->size);
    double slowest = 0;
    for (int i = 0; i < w->size; i++)
        slowest = t[i] > slowest ? t[i] : slowest;
    return slowest;
}

/* probe_seconds' per-rank times ([size], free()), or NULL on every rank
 * when some rank has no probe buffer or memory: every rank probes, or none.
 * Collective. */
static float *probe_times(worker *w)
{
    float *t = calloc((size_t)w->size, sizeof *t);
    int32_t bad = !w->bw_buf || !t;
    tpi_comm_allreduce_max_i32(w->comm, &bad, 1);
    if (bad) {
        free(t);
        return NULL;
    }
    return t;
}

/* GB/s of the probe, best of 3; 0 without a buffer on some rank.
 * Collective. */
static double read_bandwidth(worker *w)
{
    float *t = probe_times(w);
    if (!t)
        return 0;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double s = probe_seconds(w, t);
        best = s < best ? s : best;
    }
    free(t);
    return probe_bytes(w->size) / best / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Decode steps paired with probe passes, one after the other, PAIRS times:
 * the medians of the step's weight GB/s, of the probe's GB/s and of their
 * ratio (step over probe), in r[0..2]; 0 when no probe can run. Why pairs:
 * on a shared VM memory stalls for 20-40 ms at random (steps of 62 ms took
 * 90-100 now and then, and so did passes of the GEMV alone), so a window of
 * 16 steps, about 1 s, almost always holds a stall while the best of three
 * 30 ms probe passes holds none, and their ratio judges the stalls rather
 * than the decode. A step and the pass next to it meet the same memory;
 * the median leaves out the pairs a stall hit. Collective. */
static int paired_ratio(worker *w, tpi_kv *kv, int32_t *next, double r[3], tpi_error *err)
{
    r[0] = r[1] = r[2] = 0;
    float *t = probe_times(w);
    if (!t)
        return 0;
    double step[PAIRS], probe[PAIRS], ratio[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        probe[i] = probe_bytes(w->size) / probe_seconds(w, t) / 1e9;
        tpi_comm_barrier(w->comm);
        int64_t n = 1;
        double t0 = tpi_seconds();
        if (tpi_model_forward_argmax(w->m, kv, next, &n, next, err)) {
            free(t);
            return -1;
        }
        step[i] = w->streamed / (tpi_seconds() - t0) / 1e9;
        ratio[i] = step[i] / probe[i];
    }
    free(t);
    r[0] = median(step, PAIRS);
    r[1] = median(probe, PAIRS);
    r[2] = median(ratio, PAIRS);
    return 0;
}

/* Seconds per step of the fastest of `windows` windows of `steps` greedy
 * steps (as prefill keeps its fastest run: one preempted step weighs 6 % in
 * a window of 16). Collective. */
static int time_decode(worker *w, tpi_kv *kv, int32_t *next, int steps, int windows, double *best, tpi_error *err)
{
    int64_t n = 1;
    *best = 1e30;
    for (int i = 0; i < windows; i++) {
        tpi_comm_barrier(w->comm);
        double t0 = tpi_seconds();
        for (int s = 0; s < steps; s++)
            if (tpi_model_forward_argmax(w->m, kv, next, &n, next, err))
                return -1;
        t0 = (tpi_seconds() - t0) / steps;
        *best = t0 < *best ? t0 : *best;
    }
    return 0;
}

static void print_decode(const worker *w, int ctx, const tpi_kv *kv, double t, double bw_before, double bw_after,
                         const double pr[3])
{
    double gbs = w->streamed / t / 1e9, bw = bw_before > bw_after ? bw_before : bw_after;
    tpi_kv_usage u;
    tpi_kv_get_usage(kv, &u);
    printf("DECODE ranks=%d ctx=%d kv_block=%lld %.2f tokens/s, %.2f GB/s of weights (%.2f GB streamed per token, "
           "all ranks)", w->size, ctx, (long long)u.block_positions, 1.0 / t, gbs, w->streamed / 1e9);
    if (bw > 0)
        printf(" = %.1f%% of the read bandwidth measured around it (%.1f GB/s before, %.1f after)", 100.0 * gbs / bw,
               bw_before, bw_after);
    printf("\n");
    if (pr[2] > 0)
        printf("DECODE ranks=%d ctx=%d paired: %.1f%% of the read bandwidth, median of %d steps each "
               "against the probe pass just before it (steps %.2f GB/s, probe %.1f GB/s, medians)\n",
               w->size, ctx, 100.0 * pr[2], PAIRS, pr[0], pr[1]);
    fflush(stdout);
}

/* Most --kv-block values one decode run compares. */
#define MAX_KV_BLOCKS 8

/* Decode of one sequence with `ctx` positions cached, once per KV block size
 * (each its own cache, prefilled alike): reps + 1 rounds, each a window of
 * 16 steps per cache in turn (so a loaded machine's drift hits them alike),
 * judged against the read bandwidth measured just before and after them,
 * then the step-by-step pairs. Collective. */
static int decode_ctx(worker *w, int ctx, tpi_error *err)
{
    int steps = 16, windows = w->reps + 1, nk = (int)w->n_kv_blocks;
    tpi_kv *kv[MAX_KV_BLOCKS] = {0};
    int32_t *ids = malloc((size_t)ctx * sizeof *ids), next[MAX_KV_BLOCKS] = {0};
    double t[MAX_KV_BLOCKS], before = 0, after = 0, pr[3];
    int rc = ids ? 0 : tpi_err(err, TPI_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < ctx; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % w->m->cfg.vocab_size);
    for (int b = 0; !rc && b < nk; b++) {
        tpi_kv_opts o = {.n_seq = 1, .max_ctx = ctx + steps * windows + PAIRS, .block_positions = w->kv_blocks[b]};
        int64_t n = ctx;
        rc = tpi_kv_create_pool(&kv[b], w->m, &o, err);
        if (!rc)
            rc = tpi_model_forward_argmax(w->m, kv[b], ids, &n, &next[b], err);
        t[b] = 1e30;
    }
    if (!rc)
        before = read_bandwidth(w);
    for (int r = 0; !rc && r < windows; r++)
        for (int b = 0; !rc && b < nk; b++) {
            double tw;
            rc = time_decode(w, kv[b], &next[b], steps, 1, &tw, err);
            t[b] = tw < t[b] ? tw : t[b];
        }
    if (!rc)
        after = read_bandwidth(w);
    for (int b = 0; !rc && b < nk; b++) {
        rc = paired_ratio(w, kv[b], &next[b], pr, err);
        if (!rc && w->rank == 0)
            print_decode(w, ctx, kv[b], t[b], before, after, pr);
    }
    free(ids);
    for (int b = 0; b < nk; b++)
        tpi_kv_free(kv[b]);
    return rc;
}

/* ---- all-reduce ---- */

/* All-reduce of the message sizes the model sends: one token's hidden state
 * (decode), 64 KB, and a w->seq-token prefill's. Collective. */
static int allreduce_sizes(worker *w, tpi_error *err)
{
    tpi_comm *comm = w->comm;
    int64_t hidden = w->m->cfg.hidden_size, sizes[] = {hidden, 16384, (int64_t)w->seq * hidden};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        float *buf = calloc((size_t)sizes[k], sizeof *buf);
        if (!buf)
            return tpi_err(err, TPI_ENOMEM, "out of memory");
        int iters = sizes[k] <= 16384 ? 2000 : 20;
        for (int i = 0; i < 10; i++)
            tpi_comm_allreduce_sum_f32(comm, buf, sizes[k]);
        tpi_comm_barrier(comm);
        double t = tpi_seconds();
        for (int i = 0; i < iters; i++)
            tpi_comm_allreduce_sum_f32(comm, buf, sizes[k]);
        t = (tpi_seconds() - t) / iters;
        if (w->rank == 0) {
            printf("ALLREDUCE ranks=%d %lld bytes: %.1f us, %.2f GB/s\n", w->size, (long long)sizes[k] * 4, t * 1e6,
                   (double)sizes[k] * 4 / t / 1e9);
            fflush(stdout);
        }
        free(buf);
    }
    return 0;
}

/* ---- the job ---- */

typedef struct worker_opts {
    const char *dir;
    int32_t *batches, *ctxs; /* NULL: that part is skipped ("none") */
    int64_t n_batches, n_ctxs;
    int32_t *kv_blocks;      /* --kv-block: positions per KV block, one decode cache each */
    int64_t n_kv_blocks;
    int seq, reps, threads;
    const char *bf16_activations; /* --bf16-activations, as tpinfer's (NULL: not given) */
} worker_opts;

static int parse_worker_opts(int argc, char **argv, worker_opts *o)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"batches", required_argument, 0, 'b'},
        {"seq", required_argument, 0, 'q'},   {"decode-ctx", required_argument, 0, 'x'},
        {"reps", required_argument, 0, 'n'},  {"threads", required_argument, 0, 't'},
        {"kv-block", required_argument, 0, 'k'}, {"bf16-activations", required_argument, 0, 'a'},
        {0, 0, 0, 0},
    };
    const char *batches = "1", *ctxs = "128", *kv_blocks = NULL;
    *o = (worker_opts){.seq = 512, .reps = 2};
    int c;
    while ((c = getopt_long(argc, argv, "m:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->dir = optarg; break;
        case 'b': batches = optarg; break;
        case 'q': o->seq = atoi(optarg); break;
        case 'x': ctxs = optarg; break;
        case 'k': kv_blocks = optarg; break;
        case 'n': o->reps = atoi(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'a': o->bf16_activations = optarg; break;
        default: return -1;
        }
    }
    if (!o->dir || o->seq < 1 || o->reps < 1 || optind != argc) {
        fprintf(stderr, "usage: tpinfer-bench worker -m DIR [--batches B,..|none] [--seq N] "
                        "[--decode-ctx C,..|none] [--kv-block N,..] [--reps N] [-t THREADS]\n"
                        "       [--bf16-activations 0|1]\n"
                        "  --kv-block: positions per KV cache block, each a decode run of its own, the runs\n"
                        "  interleaved (default: the library's; the context or more: one block per sequence,\n"
                        "  the contiguous layout)\n");
        return -1;
    }
    if (!kv_blocks) { /* one run with the library's default */
        if (!(o->kv_blocks = calloc(1, sizeof *o->kv_blocks)))
            return -1;
        o->n_kv_blocks = 1;
    } else if (bench_parse_ints(kv_blocks, "--kv-block", &o->kv_blocks, &o->n_kv_blocks)) {
        return -1;
    }
    if (o->n_kv_blocks < 1 || o->n_kv_blocks > MAX_KV_BLOCKS) {
        fprintf(stderr, "--kv-block: 1 to %d sizes\n", MAX_KV_BLOCKS);
        return -1;
    }
    if (strcmp(batches, "none") && bench_parse_ints(batches, "--batches", &o->batches, &o->n_batches))
        return -1;
    if (strcmp(ctxs, "none") && bench_parse_ints(ctxs, "--decode-ctx", &o->ctxs, &o->n_ctxs))
        return -1;
    return 0;
}

/* Loads the model on the timed communicator and sizes what the parts share. */
static int worker_init(worker *w, const worker_opts *o, tpi_load_opts lo, tpi_error *err)
{
    timed_comm_init(&w->timed, w->comm);
    lo.comm = &w->timed.comm;
    lo.n_threads = o->threads;
    if (tpi_model_load(&w->m, o->dir, &lo, err))
        return -1;
    w->rank = w->comm->rank;
    w->size = w->comm->size;
    tpi_model_info info;
    tpi_model_get_info(w->m, &info);
    if (w->rank == 0) /* what ran: "avx512+bf16" when the bf16 dot product took the bf16 weights */
        printf("KERNELS %s bf16_activations=%d\n", info.kernels, lo.bf16_activations);
    w->seq = o->seq;
    w->reps = o->reps;
    w->kv_blocks = o->kv_blocks;
    w->n_kv_blocks = o->n_kv_blocks;
    int32_t most = 1;
    for (int64_t i = 0; i < o->n_batches; i++)
        most = o->batches[i] > most ? o->batches[i] : most;
    w->logits = malloc((size_t)w->m->cfg.vocab_size * (size_t)most * sizeof *w->logits);
    if (!w->logits)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    w->bw_buf = o->n_ctxs > 0 ? bandwidth_buffer(w->size) : NULL;
    w->streamed = (float)info.streamed_bytes;
    return tpi_comm_allreduce_sum_f32(w->comm, &w->streamed, 1); /* all ranks' bytes per token */
}

int bench_worker(int argc, char **argv)
{
    worker_opts o;
    if (parse_worker_opts(argc, argv, &o)) {
        free(o.batches);
        free(o.ctxs);
        free(o.kv_blocks);
        return 2;
    }
    worker w = {0};
    tpi_error err = {0};
    /* the kernel set, prefill chunk and all-reduce from the environment, as
     * tpinfer's; --bf16-activations checked as tpinfer checks it */
    engine_opts e = {.bf16_activations = o.bf16_activations};
    int rc = engine_resolve(&e, "bench worker") ? -1 : engine_comm(&e, &w.comm, &argc, &argv, "bench worker");
    if (!rc) {
        rc = worker_init(&w, &o, e.load, &err);
        for (int64_t i = 0; !rc && i < o.n_batches; i++)
            rc = prefill_batch(&w, o.batches[i], &err);
        for (int64_t i = 0; !rc && i < o.n_ctxs; i++)
            rc = decode_ctx(&w, o.ctxs[i], &err);
        if (!rc && w.size > 1 && o.n_ctxs > 0) /* in the decode run */
            rc = allreduce_sizes(&w, &err);
        if (rc)
            rc = cli_fail(w.comm, "bench worker", &err);
    }
    free(w.logits);
    free(w.bw_buf);
    tpi_model_free(w.m);
    tpi_comm_free(w.comm);
    free(o.batches);
    free(o.ctxs);
    free(o.kv_blocks);
    return rc ? 1 : 0;
}
