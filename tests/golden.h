#ifndef TPI_TEST_GOLDEN_H
#define TPI_TEST_GOLDEN_H
/* Runs the model over ../shared golden cases. Works at any world size: under
 * mpirun each rank loads its slices, and every multi-rank result is also
 * compared with a one-rank model loaded on the side. Failures are collected
 * rather than asserted mid-way, so no rank leaves a collective early. */
#include <stdint.h>

#include "tpinfer.h"

typedef struct golden_ctx {
    tpi_comm *comm;
    const char *shared;
    int failures;
    tpi_comm_opts comm_opts; /* what g_init created the communicator with */
    tpi_load_opts load;      /* what g_load passes besides the communicator */
    double tol_same;         /* TP=N vs TP=1 and batch vs alone: max|diff| / max|ref| (--tol-same) */
    const char *expect_allreduce; /* --expect-allreduce: the kind the communicator must use */
} golden_ctx;

/* Reads the test's options (--prefill-chunk N, --kernels SET, --allreduce
 * mpi, --allreduce-wire bf16|q8, --tol-same REL, --expect-allreduce KIND), creates the communicator with them, silences stdout on ranks other
 * than 0 and finds ../shared. Returns 0, or the exit code for main: 1 on
 * error, TU_SKIP (77) after printing "skipped: ..." when the shared data is
 * absent. */
int g_init(golden_ctx *g, int *argc, char ***argv);
/* Prints a failure on rank 0 and counts it. */
void g_fail(golden_ctx *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Loads dir over g->comm (or one rank when one_rank) with g->load's
 * options; NULL after g_fail. */
tpi_model *g_load(golden_ctx *g, const char *dir, int one_rank);
/* Logits of one sequence on rank 0 (malloc'd; NULL elsewhere). */
float *g_logits(golden_ctx *g, tpi_model *m, const int32_t *ids, const int64_t *lens, int64_t n_seq);
/* Greedy continuation with the KV cache (argmax across ranks, no gather). */
int g_greedy_cached(golden_ctx *g, tpi_model *m, const int32_t *prompt, int64_t n, int64_t steps, int32_t *out);
/* Greedy continuation by repeated full forward passes without a cache. */
int g_greedy_full(golden_ctx *g, tpi_model *m, const int32_t *prompt, int64_t n, int64_t steps, int32_t *out);
/* Compares on rank 0: max|got-ref| <= tol * max|ref|. */
void g_expect_close(golden_ctx *g, const char *what, const float *got, const float *ref, size_t n, double tol);
/* Agrees on g->failures across ranks, then asserts none. */
void g_finish(golden_ctx *g);
/* Parses dir/file (NULL when unreadable or not JSON); free with cJSON_Delete. */
struct cJSON *g_read_json(const char *dir, const char *file);
/* Reads a JSON int array into a malloc'd buffer. */
int32_t *g_json_ids(const void *cjson_array, int64_t *n);
#endif
