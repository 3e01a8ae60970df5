/* tpinfer generate: continue prompts with the model, streaming the text. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "memory.h"
#include "options.h"

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
               "      --stop STR           stop when STR appears in the text (not printed); repeatable\n" ENGINE_USAGE
               "Giving --top-k, --top-p or --min-p without --temp samples at temperature 1.\n"
               "Text goes to stdout as it is generated (a batch: each sequence when done); a summary\n"
               "to stderr. Run under 'mpirun -np N' or 'tpinfer -n N generate' to split the model.\n");
}

typedef struct gen_args {
    const char *dir;
    const char **texts, **files, **stops; /* -p, --prompt-file, --stop: [argc] each */
    int n_texts, n_files, n_stops;
    cli_batch given; /* --ids */
    cli_sampling sampling;
    engine_opts engine;
} gen_args;

static void args_free(gen_args *a)
{
    free(a->texts);
    free(a->files);
    free(a->stops);
    cli_batch_free(&a->given);
}

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(gen_args *a, int argc, char **argv)
{
    enum { O_FILE = 256, O_IDS, O_STOP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"prompt", required_argument, 0, 'p'},
        {"prompt-file", required_argument, 0, O_FILE}, {"ids", required_argument, 0, O_IDS},
        {"stop", required_argument, 0, O_STOP},        {"help", no_argument, 0, 'h'},
        SAMPLING_LONG_OPTIONS,                         ENGINE_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    a->texts = calloc((size_t)argc + 1, sizeof *a->texts);
    a->files = calloc((size_t)argc + 1, sizeof *a->files);
    a->stops = calloc((size_t)argc + 1, sizeof *a->stops);
    int c, bad = !a->texts || !a->files || !a->stops;
    if (bad)
        fprintf(stderr, "tpinfer generate: out of memory\n");
    while (!bad && (c = getopt_long(argc, argv, "m:p:n:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->dir = optarg; break;
        case 'p': a->texts[a->n_texts++] = optarg; break;
        case O_FILE: a->files[a->n_files++] = optarg; break;
        case O_STOP: a->stops[a->n_stops++] = optarg; break;
        case O_IDS: bad = cli_batch_add_list(&a->given, optarg, "--ids") != 0; break;
        case 'h': usage(stdout); return -1;
        default:
            if (!engine_flag(&a->engine, c, optarg))
                bad = cli_sampling_flag(&a->sampling, "generate", c, optarg) != 1; /* getopt or it said why */
            break;
        }
    }
    int n_seq = a->n_texts + a->n_files + (int)a->given.n_seq;
    if (bad || !a->dir || !n_seq || optind != argc) {
        if (!bad)
            fprintf(stderr, "tpinfer generate: %s\n", !a->dir ? "-m DIR is required"
                                                      : !n_seq ? "a prompt is required (-p, --prompt-file or --ids)"
                                                               : "unexpected argument");
        usage(stderr);
        return 2;
    }
    return engine_resolve(&a->engine, "generate");
}

/* What a run holds; run_free releases it all. */
typedef struct gen_run {
    tpi_comm *comm;
    tpi_tokenizer *tok;
    tpi_model *m;
    cli_batch batch; /* the prompts as ids: -p, then --prompt-file, then --ids */
    tpi_gen_result *res;
    char **buf; /* [n_seq] each sequence's text, printed when it ends (a batch) */
    size_t *len;
    int64_t n_seq;
    double load_s;
} gen_run;

static void run_free(gen_run *r)
{
    for (int64_t s = 0; s < r->n_seq; s++) {
        if (r->res)
            tpi_gen_result_free(&r->res[s]);
        if (r->buf)
            free(r->buf[s]);
    }
    free(r->res);
    free(r->buf);
    free(r->len);
    cli_batch_free(&r->batch);
    tpi_tokenizer_free(r->tok);
    tpi_model_free(r->m);
    tpi_comm_free(r->comm);
}

static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    gen_run *r = user;
    if (r->n_seq == 1) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return;
    }
    char *b = realloc(r->buf[seq], r->len[seq] + len + 1);
    if (!b)
        return;
    memcpy(b + r->len[seq], text, len);
    r->len[seq] += len;
    b[r->len[seq]] = 0;
    r->buf[seq] = b;
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
    gen_run *r = user;
    if (r->n_seq > 1) {
        const char *text = r->buf[seq] ? r->buf[seq] : "";
        printf("=== sequence %lld (%s) ===\n%s%s", (long long)seq, reason_name(reason), text,
               r->len[seq] && text[r->len[seq] - 1] == '\n' ? "" : "\n");
        fflush(stdout);
    }
}

/* A prompt file's text (malloc'd), one trailing newline dropped. */
static int read_prompt_file(const char *path, char **text, size_t *len, tpi_error *err)
{
    FILE *f = fopen(path, "rb");
    long sz = -1;
    *text = NULL;
    if (f && !fseek(f, 0, SEEK_END) && (sz = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
        (*text = malloc((size_t)sz + 1)) && fread(*text, 1, (size_t)sz, f) == (size_t)sz) {
        (*text)[sz] = 0;
        *len = (size_t)sz;
        if (*len && (*text)[*len - 1] == '\n')
            (*text)[--*len] = 0;
    } else {
        free(*text);
        *text = NULL;
    }
    if (f)
        fclose(f);
    return *text ? 0 : cli_error(err, TPI_EIO, "%s: cannot read the prompt file", path);
}

/* Every rank encodes the same prompts: the tokenizer is deterministic. */
static int encode_prompts(gen_run *r, const gen_args *a, tpi_error *err)
{
    int rc = 0;
    for (int i = 0; !rc && i < a->n_texts + a->n_files; i++) {
        char *text = NULL;
        size_t len = 0;
        if (i < a->n_texts) {
            text = strdup(a->texts[i]);
            len = strlen(a->texts[i]);
            rc = text ? 0 : cli_error(err, TPI_ENOMEM, "out of memory");
        } else {
            rc = read_prompt_file(a->files[i - a->n_texts], &text, &len, err);
        }
        int32_t *seq = NULL;
        size_t n = 0;
        if (!rc && !(rc = tpi_tokenizer_encode(r->tok, text, len, 1, &seq, &n, err)) &&
            cli_batch_add(&r->batch, seq, (int64_t)n))
            rc = cli_error(err, TPI_ENOMEM, "out of memory");
        free(seq);
        free(text);
    }
    for (int64_t s = 0, at = 0; !rc && s < a->given.n_seq; at += a->given.lens[s++])
        if (cli_batch_add(&r->batch, a->given.ids + at, a->given.lens[s]))
            rc = cli_error(err, TPI_ENOMEM, "out of memory");
    return rc;
}

/* The tokenizer, needed for text prompts and stop strings; without them a
 * missing tokenizer only means the output is printed as ids. */
static int load_tokenizer(gen_run *r, const gen_args *a, tpi_error *err)
{
    int rc = tpi_tokenizer_load(&r->tok, a->dir, err);
    if (!rc || a->n_texts + a->n_files > 0 || a->n_stops > 0)
        return rc;
    r->tok = NULL;
    if (tpi_comm_rank(r->comm) == 0)
        fprintf(stderr, "tpinfer generate: no tokenizer (%s); printing ids\n", err->msg);
    *err = (tpi_error){0};
    return 0;
}

typedef struct load_progress {
    pthread_t thread;
    volatile int done;
    const char *dir;
    double t0;
} load_progress;

/* A spinner with the elapsed time while the weights load (stderr a terminal). */
static void *progress_run(void *arg)
{
    load_progress *p = arg;
    static const char spin[] = "|/-\\";
    for (int i = 0; !p->done; i++) {
        fprintf(stderr, "\rloading %s %c %.1f s", p->dir, spin[i % 4], cli_seconds() - p->t0);
        fflush(stderr);
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    return NULL;
}

static int load_model(gen_run *r, const gen_args *a, tpi_error *err)
{
    load_progress prog = {.dir = a->dir, .t0 = cli_seconds()};
    int show = tpi_comm_rank(r->comm) == 0 && isatty(2) && !pthread_create(&prog.thread, NULL, progress_run, &prog);
    int rc = engine_load(&a->engine, &r->m, a->dir, "generate", err);
    prog.done = 1;
    if (show)
        pthread_join(prog.thread, NULL);
    r->load_s = cli_seconds() - prog.t0;
    return rc;
}

static int run_generate(gen_run *r, const gen_args *a, tpi_error *err)
{
    r->n_seq = a->n_texts + a->n_files + a->given.n_seq;
    r->res = calloc((size_t)r->n_seq, sizeof *r->res);
    r->buf = calloc((size_t)r->n_seq, sizeof *r->buf);
    r->len = calloc((size_t)r->n_seq, sizeof *r->len);
    tpi_gen_opts o;
    int rc = r->res && r->buf && r->len ? 0 : cli_error(err, TPI_ENOMEM, "out of memory");
    if (!rc)
        rc = tpi_gen_opts_default(&o, a->dir, err);
    if (!rc)
        rc = load_tokenizer(r, a, err);
    if (!rc)
        rc = encode_prompts(r, a, err);
    if (!rc)
        rc = load_model(r, a, err);
    if (rc)
        return rc;
    cli_sampling_apply(&a->sampling, &o);
    o.stop = a->stops;
    o.n_stop = a->n_stops;
    o.tokenizer = r->tok;
    o.echo_prompt = 1;
    o.on_text = r->tok ? on_text : NULL;
    o.on_done = on_done;
    o.user = r;
    return tpi_generate(r->m, r->batch.ids, r->batch.lens, r->n_seq, &o, r->res, err);
}

/* Without a tokenizer, each sequence's new ids; with one, the newline that
 * ends a streamed text. Then a note for each sequence cut by the context. */
static void print_output(const gen_run *r, const tpi_model_info *info, int64_t ctx)
{
    for (int64_t s = 0; s < r->n_seq; s++) {
        if (!r->tok) {
            if (r->n_seq > 1)
                printf("=== sequence %lld ===\n", (long long)s);
            for (int64_t i = 0; i < r->res[s].n_ids; i++)
                printf("%s%d", i ? "," : "", r->res[s].ids[i]);
            printf("\n");
        }
        if (r->res[s].stop_reason == TPI_STOP_CONTEXT)
            fprintf(stderr, "tpinfer generate: sequence %lld stopped at the context limit of %lld tokens\n",
                    (long long)s, (long long)(ctx ? ctx : info->max_position_embeddings));
    }
    if (r->n_seq == 1 && r->tok) {
        printf("\n");
        fflush(stdout);
    }
}

/* The summary on stderr: speeds, kernels, and every rank's weight bytes
 * (gathered to rank 0; collective). */
static void print_summary(const gen_run *r, const gen_args *a)
{
    tpi_model_info info;
    tpi_model_get_info(r->m, &info);
    char memory[2048];
    memory_report(r->comm, r->m, memory, sizeof memory);
    if (tpi_comm_rank(r->comm) == 0) {
        print_output(r, &info, a->sampling.ctx);
        int64_t gen = 0, prompt = r->batch.n_ids;
        for (int64_t s = 0; s < r->n_seq; s++)
            gen += r->res[s].n_ids;
        double pre = r->res[0].prefill_s, dec = r->res[0].decode_s;
        int64_t dec_tokens = gen - r->n_seq > 0 ? gen - r->n_seq : 0;
        fprintf(stderr, "load: %.2f s | prompt: %lld tokens, %.1f tokens/s | generated: %lld tokens, %.1f tokens/s",
                r->load_s, (long long)prompt, pre > 0 ? (double)prompt / pre : 0.0, (long long)gen,
                dec > 0 ? (double)dec_tokens / dec : 0.0);
        fprintf(stderr, " | kernels: %s x %d threads | memory: %s\n", info.kernels, info.n_threads, memory);
    }
}

int cmd_generate(int argc, char **argv)
{
    gen_args a = {0};
    gen_run r = {0};
    tpi_error err = {0};
    int code = parse_args(&a, argc, argv);
    if (code == 0 && engine_comm(&a.engine, &r.comm, &argc, &argv, "generate"))
        code = 1;
    if (code == 0 && run_generate(&r, &a, &err))
        code = cli_fail(r.comm, "generate", &err);
    if (code == 0)
        print_summary(&r, &a);
    run_free(&r);
    args_free(&a);
    return code < 0 ? 0 : code;
}
