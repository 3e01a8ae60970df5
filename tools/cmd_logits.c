/* tpinfer logits: one forward pass; top next tokens, or all logits to a file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer logits -m DIR --ids 1,2,3 [--ids ...] [options]\n"
               "  -m, --model DIR     Hugging Face checkpoint directory\n"
               "      --ids LIST      token ids of one sequence; repeat for a batch\n"
               "      --out FILE      write all logits as raw little-endian f32 [tokens, vocab]\n"
               "                      (sequences one after another)\n"
               "      --top K         how many top tokens to print (default 5)\n"
               "      --tp-plan FILE  tensor-parallel plan (JSON pattern -> style)\n"
               "  -t, --threads N     kernel threads per rank (default: cores / ranks)\n"
               "Prints, for the last position of each sequence, the top tokens as 'id logit'.\n"
               "Run under 'mpirun -np N' to split the model over N ranks.\n");
}

int cmd_logits(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"ids", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},   {"top", required_argument, 0, 'k'},
        {"tp-plan", required_argument, 0, 'p'}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    const char *dir = NULL, *out = NULL, *plan = NULL;
    int top = 5, threads = 0, c;
    int32_t *ids = NULL;
    int64_t n_ids = 0, n_seq = 0, *lens = NULL;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'o': out = optarg; break;
        case 'p': plan = optarg; break;
        case 'k': top = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'i': {
            int32_t *seq;
            int64_t n;
            if (cli_parse_ids(optarg, "--ids", &seq, &n))
                return 2;
            ids = realloc(ids, (size_t)(n_ids + n) * sizeof *ids);
            lens = realloc(lens, (size_t)(n_seq + 1) * sizeof *lens);
            memcpy(ids + n_ids, seq, (size_t)n * sizeof *seq);
            free(seq);
            n_ids += n;
            lens[n_seq++] = n;
            break;
        }
        case 'h': usage(stdout); free(ids); free(lens); return 0;
        default: usage(stderr); free(ids); free(lens); return 2;
        }
    }
    if (!dir || !n_seq || top < 1 || optind != argc) {
        fprintf(stderr, "tpinfer logits: %s\n", !dir ? "-m DIR is required" : !n_seq ? "--ids is required"
                                                     : top < 1 ? "--top must be at least 1" : "unexpected argument");
        usage(stderr);
        free(ids);
        free(lens);
        return 2;
    }
    tpi_comm *comm;
    if (cli_comm(&comm, &argc, &argv, "logits")) {
        free(ids);
        free(lens);
        return 1;
    }
    tpi_error err = {0};
    tpi_model *m = NULL;
    tpi_load_opts lo = {.comm = comm, .tp_plan_file = plan, .n_threads = threads};
    int rc = tpi_model_load(&m, dir, &lo, &err);
    float *logits = NULL;
    tpi_model_info info;
    if (!rc) {
        tpi_model_get_info(m, &info);
        if (tpi_comm_rank(comm) == 0 && !(logits = malloc((size_t)(n_ids * info.vocab_size) * sizeof *logits)))
            rc = TPI_ENOMEM, snprintf(err.msg, sizeof err.msg, "out of memory for %lld x %lld logits",
                                      (long long)n_ids, (long long)info.vocab_size);
    }
    if (!rc)
        rc = tpi_model_logits(m, ids, lens, n_seq, logits, &err);
    if (rc) {
        int code = cli_fail(comm, "logits", &err);
        free(logits), free(ids), free(lens);
        tpi_model_free(m);
        tpi_comm_free(comm);
        return code;
    }
    int exit_code = 0;
    if (tpi_comm_rank(comm) == 0) {
        int64_t V = info.vocab_size, row = -1;
        if (top > V)
            top = (int)V;
        for (int64_t s = 0; s < n_seq; s++) {
            row += lens[s];
            const float *l = logits + row * V;
            if (n_seq > 1)
                printf("sequence %lld:\n", (long long)s);
            /* Selection of the top k without sorting the whole vocabulary. */
            int64_t *best = malloc((size_t)top * sizeof *best);
            for (int k = 0; k < top; k++) {
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
        if (out) {
            FILE *f = fopen(out, "wb");
            if (!f || fwrite(logits, sizeof *logits, (size_t)(n_ids * V), f) != (size_t)(n_ids * V)) {
                fprintf(stderr, "tpinfer logits: %s: cannot write\n", out);
                exit_code = 1;
            }
            if (f)
                fclose(f);
        }
    }
    free(logits);
    free(ids);
    free(lens);
    tpi_model_free(m);
    tpi_comm_free(comm);
    return exit_code;
}
