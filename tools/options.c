#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "signals.h"

int opts_launched(void)
{
    /* Open MPI, MPICH/Hydra and PMIx launchers all export one of these. */
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

/* How long an idle OpenMP thread spins before it sleeps. libgomp's default
 * (300,000 spins, ~ms) loses whole scheduler ticks when a core is shared
 * (another rank, another job): decode slowed 10x that way on a loaded 2-core
 * machine. Sleeping at once (OMP_WAIT_POLICY=passive) costs a futex wake-up
 * in each of the ~180 parallel regions of a decoded token. 2,000 spins (tens
 * of microseconds) bridge the gaps between regions: in alternating runs it
 * decoded 7-24 % faster than passive on a quiet machine and 7-32 % faster
 * with both cores loaded (docs/PERFORMANCE.md). libgomp reads this once at
 * start, so set it and re-execute unless the user chose. */
void opts_prefer_short_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    setenv("GOMP_SPINCOUNT", "2000", 1);
    execv("/proc/self/exe", argv);
}

int engine_flag(engine_opts *e, int c, const char *arg)
{
    switch (c) {
    case OPT_TP_PLAN: e->tp_plan = arg; return 1;
    case 't': e->threads = arg; return 1;
    case OPT_KERNELS: e->kernels = arg; return 1;
    case OPT_PREFILL_CHUNK: e->prefill_chunk = arg; return 1;
    case OPT_ALLREDUCE: e->allreduce = arg; return 1;
    case OPT_CHECK_WEIGHTS: e->check_weights = 1; return 1;
    case OPT_MEM_LIMIT: e->mem_limit = arg; return 1;
    case OPT_COMM_TIMEOUT: e->comm_timeout = arg; return 1;
    case OPT_QUANT: e->quant = arg; return 1;
    case OPT_BF16_ACTIVATIONS: e->bf16_activations = arg; return 1;
    case OPT_ALLREDUCE_WIRE: e->wire = arg; return 1;
    default: return 0;
    }
}

/* One setting's text: the flag's, else the first variable set, else NULL;
 * *from names where it came from. */
static const char *pick(const char *flag_value, const char *flag, const char *const *vars, const char **from)
{
    *from = flag;
    if (flag_value)
        return flag_value;
    for (; *vars; vars++)
        if (getenv(*vars)) {
            *from = *vars;
            return getenv(*vars);
        }
    return NULL;
}

static int resolve_counts(engine_opts *e, const char *cmd)
{
    static const char *const no_vars[] = {NULL}, *const chunk_vars[] = {"TPI_PREFILL_CHUNK", NULL};
    /* Launchers say how many of the job's ranks share this machine. */
    static const char *const local_vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", NULL};
    const char *from, *s;
    int64_t v;
    if ((s = pick(e->threads, "--threads", no_vars, &from)) && cli_parse_int(s, 1, 1 << 20, &v))
        return cli_bad_value(cmd, from, "a positive number of threads", s);
    e->load.n_threads = s ? (int)v : 0;
    if ((s = pick(NULL, NULL, local_vars, &from)) && cli_parse_int(s, 1, 1 << 20, &v))
        return cli_bad_value(cmd, from, "a positive number of ranks", s);
    e->load.local_ranks = s ? (int)v : 0;
    if ((s = pick(e->prefill_chunk, "--prefill-chunk", chunk_vars, &from)) && cli_parse_int(s, 1, INT32_MAX, &v))
        return cli_bad_value(cmd, from, "a positive number of tokens", s);
    e->load.prefill_chunk = s ? v : 0;
    if (e->mem_limit && cli_parse_size(e->mem_limit, &v))
        return cli_bad_value(cmd, "--mem-limit", "a size such as 512M or 2G (K, M, G, T: powers of 1024), or none",
                             e->mem_limit);
    e->load.mem_limit_bytes = e->mem_limit ? v : 0;
    static const char *const timeout_vars[] = {"TPI_COMM_TIMEOUT", NULL};
    e->comm.timeout_s = 60;
    if ((s = pick(e->comm_timeout, "--comm-timeout", timeout_vars, &from)) &&
        cli_parse_real(s, 0, 0, 1e9, &e->comm.timeout_s))
        return cli_bad_value(cmd, from, "a number of seconds in [0, 1e9] (0: no watchdog)", s);
    return 0;
}

int engine_resolve(engine_opts *e, const char *cmd)
{
    static const char *const kernel_vars[] = {"TPI_KERNELS", NULL}, *const shm_vars[] = {"TPI_SHM_ALLREDUCE", NULL};
    e->comm = (tpi_comm_opts){.kind = opts_launched() ? "mpi" : "self"};
    e->load = (tpi_load_opts){.tp_plan_file = e->tp_plan, .check_weights = e->check_weights};
    int rc = resolve_counts(e, cmd);
    if (rc)
        return rc;
    const char *from, *s = pick(e->kernels, "--kernels", kernel_vars, &from);
    if (s && *s && strcmp(s, "auto") && strcmp(s, "ref") && strcmp(s, "avx2") && strcmp(s, "avx512"))
        return cli_bad_value(cmd, from, "auto, ref, avx2 or avx512", s);
    e->load.kernels = s;
    e->kernels_from = from;
    if (e->quant && strcmp(e->quant, "q8_0") && strcmp(e->quant, "q4_0") && strcmp(e->quant, "q4_k"))
        return cli_bad_value(cmd, "--quant", "q8_0, q4_0 or q4_k", e->quant);
    e->load.quant = e->quant;
    if (e->bf16_activations && strcmp(e->bf16_activations, "0") && strcmp(e->bf16_activations, "1"))
        return cli_bad_value(cmd, "--bf16-activations", "0 (fp32 activations) or 1 (bf16)", e->bf16_activations);
    e->load.bf16_activations = e->bf16_activations && !strcmp(e->bf16_activations, "1");
    if (e->allreduce) {
        if (strcmp(e->allreduce, "auto") && strcmp(e->allreduce, "mpi"))
            return cli_bad_value(cmd, "--allreduce", "auto or mpi", e->allreduce);
        e->comm.allreduce = strcmp(e->allreduce, "mpi") ? TPI_ALLREDUCE_AUTO : TPI_ALLREDUCE_MPI;
    } else if ((s = pick(NULL, NULL, shm_vars, &from))) {
        if (strcmp(s, "0") && strcmp(s, "1"))
            return cli_bad_value(cmd, from, "0 (MPI's all-reduce) or 1 (shared memory where it can)", s);
        e->comm.allreduce = strcmp(s, "0") ? TPI_ALLREDUCE_AUTO : TPI_ALLREDUCE_MPI;
    }
    static const char *const wire_vars[] = {"TPI_ALLREDUCE_WIRE", NULL}, *const wires[] = {"f32", "bf16", "q8"};
    if ((s = pick(e->wire, "--allreduce-wire", wire_vars, &from))) {
        int k = 0;
        while (k < 3 && strcmp(s, wires[k]))
            k++;
        if (k == 3)
            return cli_bad_value(cmd, from, "f32, bf16 or q8", s);
        e->comm.wire = k; /* enum tpi_wire_kind's order */
    }
    return 0;
}

int engine_comm(engine_opts *e, tpi_comm **comm, int *argc, char ***argv, const char *cmd)
{
    tpi_error err = {0};
    if (tpi_comm_create(comm, &e->comm, argc, argv, &err)) {
        fprintf(stderr, "tpinfer %s: %s\n", cmd, err.msg);
        return -1;
    }
    e->load.comm = *comm;
    cli_signals_install(*comm);
    return 0;
}

int engine_load(const engine_opts *e, tpi_model **m, const char *dir, const char *cmd, tpi_error *err)
{
    int rc = tpi_model_load(m, dir, &e->load, err);
    if (rc || tpi_comm_rank(e->load.comm) != 0)
        return rc;
    tpi_model_info info;
    tpi_model_get_info(*m, &info);
    const char *want = e->load.kernels, *plus = strchr(info.kernels, '+');
    size_t set_len = plus ? (size_t)(plus - info.kernels) : strlen(info.kernels); /* "avx512" of "avx512+bf16" */
    if (want && *want && strcmp(want, "auto") && (strlen(want) != set_len || strncmp(want, info.kernels, set_len)))
        fprintf(stderr, "tpinfer %s: %s=%s: this processor lacks those instructions; using %s\n", cmd,
                e->kernels_from, want, info.kernels);
    if (e->load.bf16_activations && !plus)
        fprintf(stderr, "tpinfer %s: --bf16-activations 1: the %s kernels have no bf16 dot product (AVX512_BF16); "
                "using fp32 activations\n", cmd, info.kernels);
    return 0;
}

const char *opts_api_key(const char *flag_value)
{
    static const char *const vars[] = {"TPI_API_KEY", NULL};
    const char *from;
    return pick(flag_value, "--api-key", vars, &from);
}
