/* tpinfer logits: one forward pass; top next tokens, or all logits to a file. */
#include <float.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "options.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer logits -m DIR --ids 1,2,3 [--ids ...] [options]\n"
               "  -m, --model DIR          Hugging Face checkpoint directory\n"
               "      --ids LIST           token ids of one sequence; repeat for a batch\n"
               "      --out FILE           write all logits as raw little-endian f32 [tokens, vocab]\n"
               "                           (sequences one after another)\n"
               "      --top K              how many top tokens to print (default 5)\n" ENGINE_USAGE
               "Prints, for the last position of each sequence, the top tokens as 'id logit'.\n"
               "Run under 'mpirun -np N' to split the model over N ranks.\n");
}

typedef struct logits_args {
    const char *dir, *out;
    int top;
    cli_batch batch;
    engine_opts engine;
} logits_args;

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(logits_args *a, int argc, char **argv)
{
    enum { O_IDS = 256, O_OUT, O_TOP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"ids", required_argument, 0, O_IDS},
        {"out", required_argument, 0, O_OUT}, {"top", required_argument, 0, O_TOP},
        {"help", no_argument, 0, 'h'},        ENGINE_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    a->top = 5;
    int c;
    int64_t top;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->dir = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_TOP:
            if (cli_parse_int(optarg, 1, INT32_MAX, &top))
                return cli_bad_value("logits", "--top", "a number of ids in [1, 2147483647]", optarg);
            a->top = (int)top;
            break;
        case O_IDS:
            if (cli_batch_add_list(&a->batch, optarg, "--ids"))
                return 2;
            break;
        case 'h': usage(stdout); return -1;
        default:
            if (!engine_flag(&a->engine, c, optarg)) {
                usage(stderr);
                return 2;
            }
        }
    }
    if (!a->dir || !a->batch.n_seq || optind != argc) {
        fprintf(stderr, "tpinfer logits: %s\n", !a->dir ? "-m DIR is required" : !a->batch.n_seq ? "--ids is required"
                                                : "unexpected argument");
        usage(stderr);
        return 2;
    }
    return engine_resolve(&a->engine, "logits");
}

/* Prints the top k of row [V] as "id logit" lines, best first, selecting
 * without sorting the whole vocabulary. */
static void print_top(const float *l, int64_t V, int top)
{
    int64_t *best = malloc((size_t)top * sizeof *best);
    for (int k = 0; best && k < top; k++) {
        int64_t b = -1;
        for (int64_t j = 0; j < V; j++) {
            int taken = 0;
            for (int q = 0; q < k && !taken; q++)
                taken = best[q] == j;
            if (!taken && (b < 0 || l[j] > l[b]))
                b = j;
        }
        best[k] = b;
        printf("%lld %.6f\n", (long long)b, l[b]);
    }
    free(best);
}

/* The first non-finite logit (NaN, infinity) of [rows, V]: 1 and where, or 0.
 * The comparison with itself and with the largest float is false for NaN
 * and infinity alike. */
static int find_nonfinite(const float *l, int64_t rows, int64_t V, int64_t *row, int64_t *id)
{
    for (int64_t i = 0; i < rows * V; i++)
        if (!(l[i] == l[i] && l[i] <= FLT_MAX && l[i] >= -FLT_MAX)) {
            *row = i / V;
            *id = i % V;
            return 1;
        }
    return 0;
}

/* An error naming the sequence and position of the first non-finite logit,
 * after writing --out (the values are what someone chasing it wants). */
static int report_nonfinite(const logits_args *a, const float *logits, int64_t V)
{
    const cli_batch *b = &a->batch;
    int64_t row, id, s = 0, pos;
    if (!find_nonfinite(logits, b->n_ids, V, &row, &id))
        return 0;
    for (pos = row; pos >= b->lens[s]; pos -= b->lens[s++])
        ;
    fprintf(stderr, "tpinfer logits: sequence %lld, position %lld: logits are not finite (NaN or infinity; "
                    "token %lld is %g)%s\n",
            (long long)s, (long long)pos, (long long)id, logits[row * V + id],
            a->out ? "; written to --out as computed" : "");
    return 1;
}

/* Rank 0's output: the top tokens of each sequence's last row, and --out;
 * non-finite logits are an error, not a list. */
static int print_logits(const logits_args *a, const float *logits, int64_t V)
{
    const cli_batch *b = &a->batch;
    int bad = report_nonfinite(a, logits, V);
    for (int64_t s = 0, row = -1; s < b->n_seq && !bad; s++) {
        row += b->lens[s];
        if (b->n_seq > 1)
            printf("sequence %lld:\n", (long long)s);
        print_top(logits + row * V, V, a->top > V ? (int)V : a->top);
    }
    if (!a->out)
        return bad;
    size_t n = (size_t)(b->n_ids * V);
    FILE *f = fopen(a->out, "wb");
    int ok = f && fwrite(logits, sizeof *logits, n, f) == n;
    if (f && fclose(f))
        ok = 0;
    if (!ok)
        fprintf(stderr, "tpinfer logits: %s: cannot write\n", a->out);
    return ok && !bad ? 0 : 1;
}

int cmd_logits(int argc, char **argv)
{
    logits_args a = {0};
    tpi_comm *comm = NULL;
    tpi_model *m = NULL;
    float *logits = NULL;
    tpi_error err = {0};
    tpi_model_info info;
    int code = parse_args(&a, argc, argv), rc = 0;
    if (code == 0 && engine_comm(&a.engine, &comm, &argc, &argv, "logits"))
        code = 1;
    if (code == 0 && !(rc = engine_load(&a.engine, &m, a.dir, "logits", &err))) {
        tpi_model_get_info(m, &info);
        if (tpi_comm_rank(comm) == 0 && !(logits = malloc((size_t)(a.batch.n_ids * info.vocab_size) * sizeof *logits)))
            rc = cli_error(&err, TPI_ENOMEM, "out of memory for %lld x %lld logits", (long long)a.batch.n_ids,
                           (long long)info.vocab_size);
    }
    if (code == 0 && !rc)
        rc = tpi_model_logits(m, a.batch.ids, a.batch.lens, a.batch.n_seq, logits, &err);
    if (code == 0 && rc)
        code = cli_fail(comm, "logits", &err);
    else if (code == 0 && tpi_comm_rank(comm) == 0)
        code = print_logits(&a, logits, info.vocab_size);
    free(logits);
    cli_batch_free(&a.batch);
    tpi_model_free(m);
    tpi_comm_free(comm);
    return code < 0 ? 0 : code;
}
