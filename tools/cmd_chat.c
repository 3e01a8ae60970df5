/* tpinfer chat: a conversation with an instruct model on stdin/stdout. Rank 0
 * reads each line and broadcasts it (length, then bytes); every rank keeps the
 * conversation and formats it the same way (DESIGN.md "Process model"). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "comm/comm.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer chat -m DIR [options]\n"
               "  -m, --model DIR          instruct checkpoint with tokenizer_config.json's chat_template\n"
               "      --system TEXT        system prompt\n"
               "  -n, --max-new N          new tokens per reply at most (default 512)\n"
               "      --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S\n"
               "                           sampling as in 'tpinfer generate' (default: generation_config.json)\n"
               "      --ctx N              context in tokens (default max_position_embeddings)\n"
               "      --tp-plan FILE       tensor-parallel plan\n"
               "  -t, --threads N          kernel threads per rank\n"
               "Chat formats: llama3, llama2, mistral and chatml (qwen), recognised from the template.\n"
               "Each line on stdin is a user turn; the reply streams to stdout. End with EOF (Ctrl-D).\n");
}

static void on_text(void *user, int64_t seq, const char *text, size_t len)
{
    (void)user, (void)seq;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* Rank 0 reads a line and broadcasts it; NULL at end of input (all ranks). */
static char *read_line(tpi_comm *comm, int *failed)
{
    int64_t len = -1;
    char *line = NULL;
    if (comm->rank == 0) {
        size_t cap = 0;
        if (isatty(0)) {
            fprintf(stderr, "> ");
            fflush(stderr);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = 0;
            len = n;
        }
    }
    if (comm->ops->bcast(comm, &len, sizeof len, 0)) {
        *failed = 1;
        free(line);
        return NULL;
    }
    if (len < 0) {
        free(line);
        return NULL;
    }
    if (comm->rank != 0 && !(line = malloc((size_t)len + 1))) {
        *failed = 1;
        comm->ops->abort(comm, 1);
        return NULL;
    }
    if (len && comm->ops->bcast(comm, line, (size_t)len, 0)) {
        *failed = 1;
        free(line);
        return NULL;
    }
    line[len] = 0;
    return line;
}

int cmd_chat(int argc, char **argv)
{
    enum { O_TEMP = 256, O_TOPK, O_TOPP, O_MINP, O_REP, O_SEED, O_CTX, O_PLAN, O_SYS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"max-new", required_argument, 0, 'n'},
        {"temp", required_argument, 0, O_TEMP},  {"top-k", required_argument, 0, O_TOPK},
        {"top-p", required_argument, 0, O_TOPP}, {"min-p", required_argument, 0, O_MINP},
        {"repeat-penalty", required_argument, 0, O_REP}, {"seed", required_argument, 0, O_SEED},
        {"ctx", required_argument, 0, O_CTX},    {"tp-plan", required_argument, 0, O_PLAN},
        {"system", required_argument, 0, O_SYS}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    const char *dir = NULL, *plan = NULL, *sys = NULL;
    int threads = 0, c, bad = 0, set_temp = 0, set_filter = 0;
    long long max_new = 512, ctx = 0, top_k = -1;
    double temp = 0, top_p = -1, min_p = -1, rep = -1;
    unsigned long long seed = 0;
    char *end;
    while ((c = getopt_long(argc, argv, "m:n:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'n': max_new = strtoll(optarg, &end, 10), bad |= *end || max_new < 1; break;
        case O_TEMP: temp = strtod(optarg, &end), set_temp = 1, bad |= *end || temp < 0; break;
        case O_TOPK: top_k = strtoll(optarg, &end, 10), set_filter = 1, bad |= *end || top_k < 0; break;
        case O_TOPP: top_p = strtod(optarg, &end), set_filter = 1, bad |= *end; break;
        case O_MINP: min_p = strtod(optarg, &end), set_filter = 1, bad |= *end; break;
        case O_REP: rep = strtod(optarg, &end), bad |= *end; break;
        case O_SEED: seed = strtoull(optarg, &end, 10), bad |= *end != 0; break;
        case O_CTX: ctx = strtoll(optarg, &end, 10), bad |= *end || ctx < 1; break;
        case O_PLAN: plan = optarg; break;
        case O_SYS: sys = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: bad = 1; break;
        }
    }
    if (bad || !dir || optind != argc) {
        fprintf(stderr, "tpinfer chat: %s\n", bad ? "bad option value" : !dir ? "-m DIR is required" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    tpi_comm *comm;
    if (cli_comm(&comm, &argc, &argv, "chat"))
        return 1;
    tpi_error err = {0};
    tpi_chat_format fmt;
    tpi_tokenizer *tok = NULL;
    tpi_model *m = NULL;
    tpi_gen_opts o;
    int rc = tpi_chat_format_detect(dir, &fmt, &err);
    if (!rc)
        rc = tpi_gen_opts_default(&o, dir, &err);
    if (!rc)
        rc = tpi_tokenizer_load(&tok, dir, &err);
    if (!rc) {
        tpi_load_opts lo = {.comm = comm, .tp_plan_file = plan, .n_threads = threads};
        rc = tpi_model_load(&m, dir, &lo, &err);
    }
    if (rc) {
        int code = cli_fail(comm, "chat", &err);
        tpi_tokenizer_free(tok);
        tpi_model_free(m);
        tpi_comm_free(comm);
        return code;
    }
    /* End of turn: the model's eos ids, the tokenizer's, and the format's own. */
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    int32_t eos[32];
    int n_eos = 0;
    const int32_t *teos;
    int nt = tpi_tokenizer_eos(tok, &teos);
    for (int i = 0; i < info.n_eos && n_eos < 32; i++)
        eos[n_eos++] = info.eos_ids[i];
    for (int i = 0; i < nt && n_eos < 32; i++)
        eos[n_eos++] = teos[i];
    static const char *const ends[] = {"<|eot_id|>", "<|im_end|>", "</s>", "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0] && n_eos < 32; i++) {
        int32_t id = tpi_tokenizer_token_id(tok, ends[i]);
        if (id >= 0)
            eos[n_eos++] = id;
    }
    o.eos_ids = eos;
    o.n_eos = n_eos;
    o.max_new_tokens = max_new;
    o.max_ctx = ctx;
    if (set_temp)
        o.sampling.temperature = temp;
    else if (set_filter && o.sampling.temperature == 0)
        o.sampling.temperature = 1.0;
    if (top_k >= 0)
        o.sampling.top_k = top_k;
    if (top_p >= 0)
        o.sampling.top_p = top_p;
    if (min_p >= 0)
        o.sampling.min_p = min_p;
    if (rep >= 0)
        o.sampling.repetition_penalty = rep;
    o.sampling.seed = seed;
    o.tokenizer = tok;
    o.on_text = on_text;

    int64_t n_msgs = 0, cap = 16;
    char **roles = malloc((size_t)cap * sizeof *roles), **msgs = malloc((size_t)cap * sizeof *msgs);
    int failed = !roles || !msgs, exit_code = 0;
    if (!failed && sys) {
        roles[0] = "system";
        msgs[n_msgs++] = strdup(sys);
    }
    int64_t first = n_msgs;
    char *line;
    while (!failed && (line = read_line(comm, &failed))) {
        if (!line[0]) {
            free(line);
            continue;
        }
        if (n_msgs + 2 > cap) {
            cap *= 2;
            char **r2 = realloc(roles, (size_t)cap * sizeof *roles), **m2 = r2 ? realloc(msgs, (size_t)cap * sizeof *msgs) : NULL;
            if (r2)
                roles = r2;
            if (!m2) {
                free(line);
                failed = 1;
                break;
            }
            msgs = m2;
        }
        roles[n_msgs] = "user";
        msgs[n_msgs++] = line;
        char *text = NULL;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        tpi_gen_result r = {0};
        rc = tpi_chat_format_apply(fmt, (const char *const *)roles, (const char *const *)msgs, n_msgs, &text, &err);
        if (!rc)
            rc = tpi_tokenizer_encode(tok, text, strlen(text), 1, &ids, &n_ids, &err);
        int64_t len = (int64_t)n_ids;
        if (!rc)
            rc = tpi_generate(m, ids, &len, 1, &o, &r, &err);
        free(text);
        free(ids);
        if (rc == TPI_ELIMIT) {
            /* Every rank sees the same conversation, so every rank starts over. */
            if (comm->rank == 0)
                fprintf(stderr, "tpinfer chat: %s; the conversation starts over\n", err.msg);
            for (int64_t i = first; i < n_msgs; i++)
                free(msgs[i]);
            n_msgs = first;
            continue;
        }
        if (rc) {
            exit_code = cli_fail(comm, "chat", &err);
            break;
        }
        /* Every rank decodes the reply itself (no eos in ids' text). */
        int64_t keep = r.n_ids;
        if (r.stop_reason == TPI_STOP_EOS && keep > 0)
            keep--;
        char *reply = NULL;
        if (tpi_tokenizer_decode(tok, r.ids, (size_t)keep, 1, &reply, NULL, &err)) {
            tpi_gen_result_free(&r);
            exit_code = cli_fail(comm, "chat", &err);
            break;
        }
        if (comm->rank == 0) {
            printf("\n");
            fflush(stdout);
            if (r.stop_reason == TPI_STOP_CONTEXT)
                fprintf(stderr, "tpinfer chat: the context limit was reached; the reply is cut\n");
            fflush(stdout);
        }
        roles[n_msgs] = "assistant";
        msgs[n_msgs++] = reply;
        tpi_gen_result_free(&r);
    }
    if (failed && !exit_code) {
        fprintf(stderr, "tpinfer chat: rank %d: reading or broadcasting the input failed\n", comm->rank);
        exit_code = 1;
    }
    for (int64_t i = 0; msgs && i < n_msgs; i++)
        free(msgs[i]);
    free(roles);
    free(msgs);
    tpi_tokenizer_free(tok);
    tpi_model_free(m);
    tpi_comm_free(comm);
    return exit_code;
}
