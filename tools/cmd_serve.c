/* tpinfer serve: an OpenAI-compatible HTTP server (docs/SERVING.md). Every
 * rank runs the server's step loop; rank 0 also serves HTTP. SIGINT,
 * SIGTERM and SIGUSR1 (which mpirun forwards to every rank) stop it cleanly
 * on every rank. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "memory.h"
#include "options.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer serve -m DIR [options]\n"
               "  -m, --model DIR          Hugging Face checkpoint directory (with tokenizer.json)\n"
               "      --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0: every interface)\n"
               "      --port N             TCP port (default 8080; 0: any free port, named in the log)\n"
               "      --parallel S         sequences generated at once (default 4)\n"
               "      --queue Q            requests waiting beyond those (default 64; more: 503)\n"
               "      --ctx C              positions per sequence: prompt + output (default max_position_embeddings)\n"
               "      --kv-memory SIZE     KV pool per rank (512M, 2G; default: parallel x ctx positions)\n"
               "      --api-key KEY        require 'Authorization: Bearer KEY' on /v1 (default $TPI_API_KEY)\n"
               "      --model-name NAME    the model id clients use (default: the directory's name)\n"
               "      --max-body SIZE      largest request body (default 1M; more: 413)\n"
               "      --timeout SECONDS    idle or slow clients are dropped after this (default 60)\n" ENGINE_USAGE
               "Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, /health, /metrics.\n"
               "Run under 'mpirun -np N' or 'tpinfer -n N serve' to split the model; rank 0 serves HTTP.\n");
}

typedef struct serve_args {
    const char *dir;
    tpi_serve_opts o;
    engine_opts engine;
} serve_args;

enum { O_HOST = 256, O_PORT, O_PARALLEL, O_QUEUE, O_CTX, O_KV, O_KEY, O_NAME, O_BODY, O_TIMEOUT };

/* One serve flag into a->o; 0, or the usage error's exit code. */
static int serve_flag(serve_args *a, int c, const char *arg)
{
    int64_t v = 0;
    switch (c) {
    case O_HOST: a->o.host = arg; return 0;
    case O_KEY: a->o.api_key = arg; return 0;
    case O_NAME: a->o.model_name = arg; return 0;
    case O_PORT:
        if (cli_parse_int(arg, 0, 65535, &v))
            return cli_bad_value("serve", "--port", "a port in [0, 65535]", arg);
        a->o.port = v ? (int)v : -1; /* the library's -1: any free port */
        return 0;
    case O_PARALLEL:
    case O_QUEUE:
        if (cli_parse_int(arg, 1, 65536, &v))
            return cli_bad_value("serve", c == O_QUEUE ? "--queue" : "--parallel", "a count in [1, 65536]", arg);
        *(c == O_QUEUE ? &a->o.queue : &a->o.parallel) = (int)v;
        return 0;
    case O_CTX:
        if (cli_parse_int(arg, 1, (int64_t)1 << 31, &a->o.ctx))
            return cli_bad_value("serve", "--ctx", "a context length in [1, 2147483648]", arg);
        return 0;
    case O_TIMEOUT:
        if (cli_parse_int(arg, 1, 86400, &v))
            return cli_bad_value("serve", "--timeout", "seconds in [1, 86400]", arg);
        a->o.timeout_s = (int)v;
        return 0;
    default: /* O_KV, O_BODY */
        if (cli_parse_size(arg, &v) || v < 1)
            return cli_bad_value("serve", c == O_KV ? "--kv-memory" : "--max-body", "a size such as 512M or 2G", arg);
        *(c == O_KV ? &a->o.kv_memory_bytes : &a->o.max_body_bytes) = v;
        return 0;
    }
}

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(serve_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},      {"parallel", required_argument, 0, O_PARALLEL},
        {"queue", required_argument, 0, O_QUEUE},    {"ctx", required_argument, 0, O_CTX},
        {"kv-memory", required_argument, 0, O_KV},   {"api-key", required_argument, 0, O_KEY},
        {"model-name", required_argument, 0, O_NAME}, {"max-body", required_argument, 0, O_BODY},
        {"timeout", required_argument, 0, O_TIMEOUT}, {"help", no_argument, 0, 'h'},
        ENGINE_LONG_OPTIONS,                          {0, 0, 0, 0},
    };
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        if (c == 'm')
            a->dir = optarg;
        else if (c == 'h')
            return usage(stdout), -1;
        else if (c >= O_HOST && c <= O_TIMEOUT)
            bad = serve_flag(a, c, optarg);
        else
            bad = !engine_flag(&a->engine, c, optarg); /* getopt said why */
    }
    if (bad || !a->dir || optind != argc) {
        if (!bad)
            fprintf(stderr, "tpinfer serve: %s\n", !a->dir ? "-m DIR is required" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    a->o.api_key = opts_api_key(a->o.api_key);
    a->o.model_dir = a->dir;
    return engine_resolve(&a->engine, "serve");
}

static tpi_server *volatile the_server;

static void on_signal(int sig)
{
    (void)sig;
    tpi_server_stop(the_server);
}

static void on_log(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "tpinfer serve: %s\n", line);
    fflush(stderr);
}

static int serve(serve_args *a, tpi_comm *comm, tpi_error *err)
{
    tpi_model *m = NULL;
    tpi_server *s = NULL;
    a->o.on_log = on_log;
    int rc = engine_load(&a->engine, &m, a->dir, "serve", err);
    if (!rc) {
        char memory[2048];
        memory_report(comm, m, memory, sizeof memory);
        if (tpi_comm_rank(comm) == 0)
            fprintf(stderr, "tpinfer serve: loaded %s | memory: %s\n", a->dir, memory);
    }
    if (!rc)
        rc = tpi_server_create(&s, m, &a->o, err);
    if (!rc) {
        the_server = s;
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        /* Rank 0 stops the server cleanly: every rank then returns 0. The
         * other ranks keep cli_signals_install's handlers, so a signal sent
         * to one of them ends the job naming it, and ignore the SIGUSR1
         * mpirun forwards to every rank (tools/launch.c). */
        if (tpi_comm_rank(comm) == 0) {
            sigaction(SIGINT, &sa, NULL);
            sigaction(SIGTERM, &sa, NULL);
            sigaction(SIGUSR1, &sa, NULL);
        } else {
            signal(SIGUSR1, SIG_IGN);
        }
        signal(SIGPIPE, SIG_IGN); /* a vanished client is an error from send, not a death */
        rc = tpi_server_run(s, err);
        if (tpi_comm_rank(comm) == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
        }
        the_server = NULL;
    }
    tpi_server_free(s);
    tpi_model_free(m);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    serve_args a = {0};
    tpi_comm *comm = NULL;
    tpi_error err = {0};
    int code = parse_args(&a, argc, argv);
    if (code == 0 && engine_comm(&a.engine, &comm, &argc, &argv, "serve"))
        code = 1;
    if (code == 0 && serve(&a, comm, &err))
        code = cli_fail(comm, "serve", &err);
    tpi_comm_free(comm);
    return code < 0 ? 0 : code;
}
