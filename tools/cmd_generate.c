/* tpinfer generate: continue prompts with the model, streaming the text. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "comm/comm.h"
#include "commands.h"
#include "core/clock.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer generate -m DIR (-p TEXT | --prompt-file F | --ids 1,2,3) [options]\n"
               "  -m, --model DIR          Hugging Face checkpoint directory (with tokenizer.json)\n"
               "  -p, --prompt TEXT        prompt (BOS added as the tokenizer does); repeat for a batch\n"
               "      --prompt-file F      a prompt read from a file (one trailing newline dropped)\n"
               "      --ids LIST           a prompt given as token ids; repeat for a batch\n"
               "  -n, --max-new N          new tokens at most (default: generation_config.json, else 64)\n"
               "      --temp T             temperature; 0 is greedy (default: greedy unless\n"
               "                           generation_config.json has do_sample)\n"
               "      --top-k K            keep the K most likely tokens (0: off)\n"
               "      --top-p P            keep the most likely tokens holding P of the mass (1: off)\n"
               "      --min-p P            drop tokens below P times the top probability (0: off)\n"
               "      --repeat-penalty R   transformers' repetition penalty over prompt and output (1: off)\n"
               "      --seed S             sampling seed (default 0)\n"
               "      --ctx N              context: prompt + output tokens (default max_position_embeddings)\n"
               "      --stop STR           stop when STR appears in the text (not printed); repeatable\n"
               "      --tp-plan FILE       tensor-parallel plan (JSON pattern -> style)\n"
               "  -t, --threads N          kernel threads per rank (default: cores / ranks)\n"
               "Giving --top-k, --top-p or --min-p without --temp samples at temperature 1.\n"
               "Text goes to stdout as it is generated (a batch: each sequence when done); a summary\n"
               "to stderr. Run under 'mpirun -np N' or 'tpinfer -n N generate' to split the model.\n");
}

typedef struct load_progress {
    pthread_t thread;
    volatile int done;
    const char *dir;
} load_progress;

/* A spinner with the elapsed time while the weights load (stderr a terminal). */
static void *progress_run(void *arg)
{
    load_progress *p = arg;
    static const char spin[] = "|/-\\";
    double t0 = tpi_seconds();
    for (int i = 0; !p->done; i++) {
        fprintf(stderr, "\rloading %s %c %.1f s", p->dir, spin[i % 4], tpi_seconds() - t0);
        fflush(stderr);
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    return NULL;
}

typedef struct out_state {
    int64_t n_seq;
    char **buf;
    size_t *len;
} out_state;

static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    out_state *o = user;
    if (o->n_seq == 1) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return;
    }
    char *b = realloc(o->buf[seq], o->len[seq] + len + 1);
    if (!b)
        return;
    memcpy(b + o->len[seq], text, len);
    o->len[seq] += len;
    b[o->len[seq]] = 0;
    o->buf[seq] = b;
}

static const char *reason_name(int r)
{
    switch (r) {
    case TPI_STOP_EOS: return "end of sequence";
    case TPI_STOP_STRING: return "stop string";
    case TPI_STOP_LENGTH: return "token limit";
    case TPI_STOP_CONTEXT: return "context limit";
    default: return "?";
    }
}

static void on_done(void *user, int64_t seq, int reason)
{
    out_state *o = user;
    if (o->n_seq > 1) {
        printf("=== sequence %lld (%s) ===\n%s%s", (long long)seq, reason_name(reason), o->buf[seq] ? o->buf[seq] : "",
               o->len[seq] && o->buf[seq][o->len[seq] - 1] == '\n' ? "" : "\n");
        fflush(stdout);
    }
}

static int add_seq(int32_t **ids, int64_t *n_ids, int64_t **lens, int64_t *n_seq, const int32_t *seq, int64_t n)
{
    int32_t *a = realloc(*ids, (size_t)(*n_ids + n) * sizeof *a);
    int64_t *l = a ? realloc(*lens, (size_t)(*n_seq + 1) * sizeof *l) : NULL;
    if (a)
        *ids = a;
    if (!l)
        return -1;
    *lens = l;
    memcpy(a + *n_ids, seq, (size_t)n * sizeof *a);
    *n_ids += n;
    l[(*n_seq)++] = n;
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    enum { O_FILE = 256, O_IDS, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REP, O_SEED, O_CTX, O_STOP, O_PLAN };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"prompt", required_argument, 0, 'p'},
        {"prompt-file", required_argument, 0, O_FILE}, {"ids", required_argument, 0, O_IDS},
        {"max-new", required_argument, 0, 'n'},    {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK},   {"top-p", required_argument, 0, O_TOPP},
        {"min-p", required_argument, 0, O_MINP},   {"repeat-penalty", required_argument, 0, O_REP},
        {"seed", required_argument, 0, O_SEED},    {"ctx", required_argument, 0, O_CTX},
        {"stop", required_argument, 0, O_STOP},    {"tp-plan", required_argument, 0, O_PLAN},
        {"threads", required_argument, 0, 't'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL, *plan = NULL;
    const char **texts = calloc((size_t)argc + 1, sizeof *texts), **stops = calloc((size_t)argc + 1, sizeof *stops);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int n_texts = 0, n_stops = 0, n_files = 0, threads = 0, c, usage_err = 0;
    int set_temp = 0, set_filter = 0, set_n = 0, set_k = 0, set_p = 0, set_minp = 0, set_rep = 0;
    double temp = 0, top_p = 1, min_p = 0, rep = 1;
    long long max_new = 0, top_k = 0, ctx = 0;
    unsigned long long seed = 0;
    int32_t *given = NULL;
    int64_t n_given = 0, *given_lens = NULL, n_given_seq = 0;
    char *end;
    while ((c = getopt_long(argc, argv, "m:p:n:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'p': texts[n_texts++] = optarg; break;
        case O_FILE: files[n_files++] = optarg; break;
        case O_IDS: {
            int32_t *seq;
            int64_t n;
            if (cli_parse_ids(optarg, "--ids", &seq, &n)) {
                usage_err = 1;
                break;
            }
            if (add_seq(&given, &n_given, &given_lens, &n_given_seq, seq, n))
                usage_err = 1;
            free(seq);
            break;
        }
        case 'n': max_new = strtoll(optarg, &end, 10), set_n = 1, usage_err |= *end || max_new < 0; break;
        case O_TEMP: temp = strtod(optarg, &end), set_temp = 1, usage_err |= *end || temp < 0; break;
        case O_TOPK: top_k = strtoll(optarg, &end, 10), set_filter = set_k = 1, usage_err |= *end || top_k < 0; break;
        case O_TOPP: top_p = strtod(optarg, &end), set_filter = set_p = 1, usage_err |= *end; break;
        case O_MINP: min_p = strtod(optarg, &end), set_filter = set_minp = 1, usage_err |= *end; break;
        case O_REP: rep = strtod(optarg, &end), set_rep = 1, usage_err |= *end; break;
        case O_SEED: seed = strtoull(optarg, &end, 10), usage_err |= *end != 0; break;
        case O_CTX: ctx = strtoll(optarg, &end, 10), usage_err |= *end || ctx < 1; break;
        case O_STOP: stops[n_stops++] = optarg; break;
        case O_PLAN: plan = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'h': usage(stdout); free(texts), free(stops), free(files), free(given), free(given_lens); return 0;
        default: usage_err = 1; break;
        }
    }
    int n_seq = n_texts + n_files + (int)n_given_seq;
    if (usage_err || !dir || !n_seq || optind != argc) {
        fprintf(stderr, "tpinfer generate: %s\n", usage_err ? "bad option value" : !dir ? "-m DIR is required"
                                                      : !n_seq ? "a prompt is required (-p, --prompt-file or --ids)"
                                                               : "unexpected argument");
        usage(stderr);
        free(texts), free(stops), free(files), free(given), free(given_lens);
        return 2;
    }
    tpi_comm *comm;
    if (cli_comm(&comm, &argc, &argv, "generate")) {
        free(texts), free(stops), free(files), free(given), free(given_lens);
        return 1;
    }
    int rank = tpi_comm_rank(comm);
    tpi_error err = {0};
    tpi_model *m = NULL;
    tpi_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0, *lens = NULL, n_lens = 0;
    tpi_gen_result *res = calloc((size_t)n_seq, sizeof *res);
    out_state out = {.n_seq = n_seq, .buf = calloc((size_t)n_seq, sizeof(char *)),
                     .len = calloc((size_t)n_seq, sizeof(size_t))};
    int rc = !res || !out.buf || !out.len ? TPI_ENOMEM : 0, gen_ok = 0;
    tpi_gen_opts o;
    if (!rc)
        rc = tpi_gen_opts_default(&o, dir, &err);
    if (!rc) {
        int need_tok = n_texts + n_files > 0 || n_stops > 0;
        int trc = tpi_tokenizer_load(&tok, dir, &err);
        if (trc && need_tok)
            rc = trc;
        else if (trc) {
            tok = NULL;
            if (rank == 0)
                fprintf(stderr, "tpinfer generate: no tokenizer (%s); printing ids\n", err.msg);
            err = (tpi_error){0};
        }
    }
    /* Every rank encodes the same prompts: the tokenizer is deterministic. */
    for (int i = 0; !rc && i < n_texts + n_files; i++) {
        char *text = NULL;
        size_t len;
        if (i < n_texts) {
            text = strdup(texts[i]);
            len = strlen(text);
        } else {
            FILE *f = fopen(files[i - n_texts], "rb");
            long sz = -1;
            if (f && !fseek(f, 0, SEEK_END) && (sz = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
                (text = malloc((size_t)sz + 1)) && fread(text, 1, (size_t)sz, f) == (size_t)sz)
                text[sz] = 0;
            else {
                free(text);
                text = NULL;
                rc = TPI_EIO;
                snprintf(err.msg, sizeof err.msg, "%s: cannot read the prompt file", files[i - n_texts]);
            }
            if (f)
                fclose(f);
            len = text ? (size_t)sz : 0;
            if (len && text[len - 1] == '\n')
                text[--len] = 0;
        }
        int32_t *seq = NULL;
        size_t n = 0;
        if (!rc && !(rc = tpi_tokenizer_encode(tok, text, len, 1, &seq, &n, &err)) &&
            add_seq(&ids, &n_ids, &lens, &n_lens, seq, (int64_t)n))
            rc = TPI_ENOMEM, snprintf(err.msg, sizeof err.msg, "out of memory");
        free(seq);
        free(text);
    }
    for (int64_t s = 0, at = 0; !rc && s < n_given_seq; at += given_lens[s++])
        if (add_seq(&ids, &n_ids, &lens, &n_lens, given + at, given_lens[s]))
            rc = TPI_ENOMEM, snprintf(err.msg, sizeof err.msg, "out of memory");
    double t_load = tpi_seconds();
    if (!rc) {
        load_progress prog = {.dir = dir};
        int show = rank == 0 && isatty(2) && !pthread_create(&prog.thread, NULL, progress_run, &prog);
        tpi_load_opts lo = {.comm = comm, .tp_plan_file = plan, .n_threads = threads};
        rc = tpi_model_load(&m, dir, &lo, &err);
        prog.done = 1;
        if (show)
            pthread_join(prog.thread, NULL);
    }
    t_load = tpi_seconds() - t_load;
    if (!rc) {
        if (set_n)
            o.max_new_tokens = max_new;
        if (set_temp)
            o.sampling.temperature = temp;
        else if (set_filter && o.sampling.temperature == 0)
            o.sampling.temperature = 1.0;
        if (set_k)
            o.sampling.top_k = top_k;
        if (set_p)
            o.sampling.top_p = top_p;
        if (set_minp)
            o.sampling.min_p = min_p;
        if (set_rep)
            o.sampling.repetition_penalty = rep;
        o.sampling.seed = seed;
        o.max_ctx = ctx;
        o.stop = stops;
        o.n_stop = n_stops;
        o.tokenizer = tok;
        o.echo_prompt = 1;
        o.on_text = tok ? on_text : NULL;
        o.on_done = on_done;
        o.user = &out;
        rc = tpi_generate(m, ids, lens, n_seq, &o, res, &err);
        gen_ok = !rc;
    }
    if (rc) {
        if (!err.msg[0])
            snprintf(err.msg, sizeof err.msg, "out of memory");
        int code = cli_fail(comm, "generate", &err);
        free(texts), free(stops), free(files), free(given), free(given_lens), free(ids), free(lens);
        free(res), free(out.buf), free(out.len);
        tpi_tokenizer_free(tok);
        tpi_model_free(m);
        tpi_comm_free(comm);
        return code;
    }
    /* Weight bytes per rank, gathered as MiB on rank 0 for the summary. */
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    int size = tpi_comm_size(comm);
    float mib = (float)((double)info.weight_bytes / 1048576.0), *all_mib = calloc((size_t)size, sizeof *all_mib);
    int64_t *counts = calloc((size_t)size, sizeof *counts);
    for (int r = 0; counts && r < size; r++)
        counts[r] = 1;
    int gather_ok = all_mib && counts && !comm->ops->gatherv(comm, &mib, all_mib, counts, 0);
    if (rank == 0 && gen_ok) {
        int64_t gen = 0, prompt = 0;
        for (int s = 0; s < n_seq; s++) {
            gen += res[s].n_ids;
            prompt += lens[s];
            if (!tok) {
                if (n_seq > 1)
                    printf("=== sequence %d ===\n", s);
                for (int64_t i = 0; i < res[s].n_ids; i++)
                    printf("%s%d", i ? "," : "", res[s].ids[i]);
                printf("\n");
            }
            if (res[s].stop_reason == TPI_STOP_CONTEXT)
                fprintf(stderr, "tpinfer generate: sequence %d stopped at the context limit of %lld tokens\n", s,
                        (long long)(ctx ? ctx : info.max_position_embeddings));
        }
        if (n_seq == 1 && tok) { /* the streamed text ends without a newline */
            printf("\n");
            fflush(stdout);
        }
        double pre = res[0].prefill_s, dec = res[0].decode_s;
        int64_t dec_tokens = gen - n_seq > 0 ? gen - n_seq : 0;
        fprintf(stderr, "load: %.2f s | prompt: %lld tokens, %.1f tokens/s | generated: %lld tokens, %.1f tokens/s",
                t_load, (long long)prompt, pre > 0 ? (double)prompt / pre : 0.0, (long long)gen,
                dec > 0 ? (double)dec_tokens / dec : 0.0);
        fprintf(stderr, " | weights per rank:");
        for (int r = 0; r < size; r++)
            fprintf(stderr, " %.2f MiB", gather_ok ? all_mib[r] : (r ? 0 : mib));
        fprintf(stderr, "\n");
    }
    for (int s = 0; s < n_seq; s++) {
        tpi_gen_result_free(&res[s]);
        free(out.buf[s]);
    }
    free(all_mib), free(counts);
    free(texts), free(stops), free(files), free(given), free(given_lens), free(ids), free(lens);
    free(res), free(out.buf), free(out.len);
    tpi_tokenizer_free(tok);
    tpi_model_free(m);
    tpi_comm_free(comm);
    return 0;
}
