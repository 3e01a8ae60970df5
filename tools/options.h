#ifndef TPI_TOOLS_OPTIONS_H
#define TPI_TOOLS_OPTIONS_H
/* The one place where the command line's environment variables and engine
 * flags become the library's options (tpi_comm_opts, tpi_load_opts): the
 * library reads no environment. README.md lists every variable and flag. */
#include <getopt.h>

#include "tpinfer.h"

/* getopt codes of the engine flags, above any a command uses for its own. */
enum {
    OPT_TP_PLAN = 0x1000,
    OPT_KERNELS,
    OPT_PREFILL_CHUNK,
    OPT_ALLREDUCE,
    OPT_CHECK_WEIGHTS,
    OPT_MEM_LIMIT,
    OPT_COMM_TIMEOUT,
    OPT_QUANT,
    OPT_BF16_ACTIVATIONS,
    OPT_ALLREDUCE_WIRE,
};

/* The engine flags, for the option table of a command that loads a model. */
#define ENGINE_LONG_OPTIONS                                                                                    \
    {"tp-plan", required_argument, 0, OPT_TP_PLAN}, {"threads", required_argument, 0, 't'},                    \
        {"kernels", required_argument, 0, OPT_KERNELS},                                                        \
        {"prefill-chunk", required_argument, 0, OPT_PREFILL_CHUNK},                                            \
        {"allreduce", required_argument, 0, OPT_ALLREDUCE},                                                    \
        {"check-weights", no_argument, 0, OPT_CHECK_WEIGHTS}, {"mem-limit", required_argument, 0, OPT_MEM_LIMIT}, \
        {"comm-timeout", required_argument, 0, OPT_COMM_TIMEOUT}, {"quant", required_argument, 0, OPT_QUANT},     \
        {"bf16-activations", required_argument, 0, OPT_BF16_ACTIVATIONS},                                      \
        {"allreduce-wire", required_argument, 0, OPT_ALLREDUCE_WIRE}

#define ENGINE_USAGE                                                                                           \
    "      --tp-plan FILE       tensor-parallel plan (JSON pattern -> style)\n"                                \
    "  -t, --threads N          kernel threads per rank (default: cores / ranks on this machine)\n"           \
    "      --kernels SET        CPU kernels: auto, ref, avx2 or avx512 (default $TPI_KERNELS, else auto)\n"    \
    "      --prefill-chunk N    prompt tokens per forward pass (default $TPI_PREFILL_CHUNK, else 512)\n"       \
    "      --allreduce KIND     auto (shared memory when the ranks share a machine) or mpi\n"                  \
    "                           (default: mpi when $TPI_SHM_ALLREDUCE=0, else auto)\n"                         \
    "      --allreduce-wire W   partial sums between machines as f32, bf16 or q8 (8-bit blocks\n"           \
    "                           with a scale); summed in f32 (default $TPI_ALLREDUCE_WIRE, else f32)\n"     \
    "      --check-weights      scan every weight at load for NaN and infinity; name the first\n"            \
    "      --mem-limit SIZE     memory per rank for KV cache and activations (512M, 2G; none: no\n"            \
    "                           check; default: what the machine and the cgroup have free)\n"                \
    "      --comm-timeout S     end the job when a rank waits S seconds in one collective for a rank\n"       \
    "                           that does not arrive, naming it (0: never; default $TPI_COMM_TIMEOUT,\n"     \
    "                           else 60)\n"                                                                     \
    "      --quant TYPE         quantize a safetensors checkpoint while loading, each rank its own\n"        \
    "                           slice: q8_0, q4_0 or q4_k (a .gguf file is used as stored)\n"        \
    "      --bf16-activations B 1: prompts of bf16 weights run on bf16 activations and the bf16 dot\n"       \
    "                           product (AVX512_BF16; ignored without it); 0: fp32 (default)\n"

/* What a flag gave (NULL: not given), then the options it and the
 * environment resolve to. */
typedef struct engine_opts {
    const char *tp_plan, *threads, *kernels, *prefill_chunk, *allreduce, *mem_limit, *comm_timeout, *quant;
    const char *bf16_activations, *wire;
    int check_weights; /* --check-weights given */
    tpi_comm_opts comm;
    tpi_load_opts load;
    const char *kernels_from; /* "--kernels" or "TPI_KERNELS": named when the set falls back */
} engine_opts;

/* Takes getopt's `c` when it is an engine flag (returns 1), else returns 0. */
int engine_flag(engine_opts *e, int c, const char *arg);
/* Resolves every setting from its flag, else its environment variable, else
 * the default. Returns 0, or prints what is wrong (naming the flag or the
 * variable) and returns the exit code: 2 for a flag, 1 for the environment. */
int engine_resolve(engine_opts *e, const char *cmd);
/* Creates the communicator e->comm asks for and puts it in e->load.comm,
 * and installs the default SIGINT and SIGTERM handlers (signals.h); prints
 * the error and returns -1 on failure. */
int engine_comm(engine_opts *e, tpi_comm **comm, int *argc, char ***argv, const char *cmd);
/* Loads dir with e->load; on rank 0 says when the kernel set asked for is
 * not one this processor runs (the library fell back to the fastest). */
int engine_load(const engine_opts *e, tpi_model **m, const char *dir, const char *cmd, tpi_error *err);

/* 1 when an MPI launcher (mpirun, mpiexec, srun with PMIx) started us. */
int opts_launched(void);
/* serve's API key: --api-key's value, else $TPI_API_KEY, else NULL. */
const char *opts_api_key(const char *flag_value);
/* Sets GOMP_SPINCOUNT and re-executes unless the user chose a spin policy;
 * returns when nothing is to be done or the re-execution failed. */
void opts_prefer_short_spin(char **argv);
#endif
