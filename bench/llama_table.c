/* tpinfer-bench's llama-bench table: pp512 (one 512-token prompt) and tg128
 * (one token at a time, 128 positions cached) at 1 rank x 1 thread, 1 x 2
 * and 2 x 1, named as llama-bench names its tests so that the two tables
 * line up (bench/compare_llamacpp.sh prints them side by side). Each
 * configuration is one `tpinfer-bench worker` job (worker.c); decode is
 * judged against the read bandwidth the worker measures around it (the
 * best window of steps against the faster probe), and paired (the median
 * step against the probe pass just before it), which a VM's moving read
 * rate sways less. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llama_table.h"

#ifndef TPI_MPIEXEC
#define TPI_MPIEXEC "mpirun"
#endif

typedef struct lt_row {
    int ranks, threads;
    char kernels[64]; /* the worker's KERNELS line: the set, and whether bf16 activations were asked for */
    double pp_tps, tg_tps, gb_per_token, gbs, bw, pct_bw, pct_paired;
    int have_pp, have_tg, have_bw, have_paired;
} lt_row;

static void parse(const char *line, lt_row *r)
{
    int batch, seq, ctx;
    long long blk;
    double ms, flops;
    if (!strncmp(line, "KERNELS ", 8)) {
        snprintf(r->kernels, sizeof r->kernels, "%.*s", (int)strcspn(line + 8, "\n"), line + 8);
        return;
    }
    if (sscanf(line, "PREFILL %d %d %lf %lf", &batch, &seq, &ms, &flops) == 4 && ms > 0) {
        r->pp_tps = batch * seq / (ms / 1e3);
        r->have_pp = 1;
        return;
    }
    /* the "paired" line: the median of single steps, each against a probe
     * pass just before it (worker.c, paired_ratio) */
    if (!r->have_paired && sscanf(line, "DECODE ranks=%*d ctx=%d paired: %lf%%", &ctx, &r->pct_paired) == 2) {
        r->have_paired = 1;
        return;
    }
    /* the first DECODE line of a run: the best window of steps */
    if (!r->have_tg && sscanf(line, "DECODE ranks=%*d ctx=%d kv_block=%lld %lf tokens/s, %lf GB/s of weights (%lf GB",
                              &ctx, &blk, &r->tg_tps, &r->gbs, &r->gb_per_token) == 5) {
        r->have_tg = 1;
        const char *p = strstr(line, " = ");
        double before, after;
        if (p && sscanf(p, " = %lf%% of the read bandwidth measured around it (%lf GB/s before, %lf after)",
                        &r->pct_bw, &before, &after) == 3) {
            r->bw = before > after ? before : after;
            r->have_bw = 1;
        }
    }
}

static int run(const char *self, const char *model, int reps, const char *bf16_act, lt_row *r)
{
    char cmd[8192], args[6144];
    snprintf(args, sizeof args,
             "'%s' worker -m '%s' --batches 1 --seq 512 --decode-ctx 128 --reps %d -t %d --bf16-activations %s", self,
             model, reps, r->threads, bf16_act);
    if (r->ranks > 1) /* Open MPI's flags, as sweep.c's */
        snprintf(cmd, sizeof cmd, "%s -np %d %s--bind-to none -x OMP_NUM_THREADS=%d %s", TPI_MPIEXEC, r->ranks,
                 geteuid() == 0 ? "--allow-run-as-root " : "", r->threads, args);
    else
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%d %s", r->threads, args);
    fprintf(stderr, "tpinfer-bench: %s\n", cmd);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    while (fgets(line, sizeof line, p))
        parse(line, r);
    return pclose(p) == 0 && r->have_pp && r->have_tg ? 0 : -1;
}

int bench_llama_table(const char *self, const char *model, int reps, const char *bf16_act)
{
    lt_row rows[] = {{.ranks = 1, .threads = 1}, {.ranks = 1, .threads = 2}, {.ranks = 2, .threads = 1}};
    int n = (int)(sizeof rows / sizeof rows[0]);
    for (int i = 0; i < n; i++)
        if (run(self, model, reps, bf16_act, &rows[i])) {
            fprintf(stderr, "tpinfer-bench: the %d x %d run failed\n", rows[i].ranks, rows[i].threads);
            return 1;
        }
    const char *name = strrchr(model, '/');
    name = name && name[1] ? name + 1 : model;
    printf("\nkernels:");
    for (int i = 0; i < n; i++)
        printf(" %dx%d %s;", rows[i].ranks, rows[i].threads, rows[i].kernels[0] ? rows[i].kernels : "?");
    printf("\n");
    printf("\n| model | ranks x threads | test | t/s | GB read/token | GB/s | read bw GB/s | %% of read bw | paired |\n"
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const lt_row *r = &rows[i];
        printf("| %s | %dx%d | pp512 | %.2f | | | | | |\n", name, r->ranks, r->threads, r->pp_tps);
        printf("| %s | %dx%d | tg128 | %.2f | %.4g | %.2f |", name, r->ranks, r->threads, r->tg_tps, r->gb_per_token,
               r->gbs);
        if (r->have_bw)
            printf(" %.1f | %.1f%% |", r->bw, r->pct_bw);
        else
            printf(" - | - |");
        if (r->have_paired)
            printf(" %.1f%% |\n", r->pct_paired);
        else
            printf(" - |\n");
    }
    /* one line per figure for scripts (bench/compare_llamacpp.sh) */
    for (int i = 0; i < n; i++)
        printf("RESULT %d %d pp512 %.3f\nRESULT %d %d tg128 %.3f\n", rows[i].ranks, rows[i].threads, rows[i].pp_tps,
               rows[i].ranks, rows[i].threads, rows[i].tg_tps);
    return 0;
}
