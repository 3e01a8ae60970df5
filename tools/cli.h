#ifndef TPI_TOOLS_CLI_H
#define TPI_TOOLS_CLI_H
/* Helpers shared by the tpinfer commands. */
#include <getopt.h>
#include <stdint.h>

#include "tpinfer.h"

/* Parses "1,2,3" into a malloc'd array; prints an error naming `what` and
 * returns -1 on a malformed list. */
int cli_parse_ids(const char *s, const char *what, int32_t **ids, int64_t *n);
/* Prints "tpinfer <cmd>: <msg>" (prefixed with the rank in a multi-rank job)
 * and returns the exit code 1. In a multi-rank job it ends every rank, so a
 * failing rank never leaves the others waiting in a collective. */
int cli_fail(tpi_comm *comm, const char *cmd, const tpi_error *err);
/* Writes a printf-style message and code into err; returns code. */
int cli_error(tpi_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Seconds on a monotonic clock. */
double cli_seconds(void);
/* Creates the communicator for this process as the environment asks
 * (options.c); prints the error and returns -1 on failure. */
int cli_comm(tpi_comm **comm, int *argc, char ***argv, const char *cmd);

/* Sequences of token ids, concatenated: the batch a command runs. */
typedef struct cli_batch {
    int32_t *ids;
    int64_t n_ids, *lens, n_seq;
} cli_batch;
/* Appends one sequence of n ids; -1 when out of memory. */
int cli_batch_add(cli_batch *b, const int32_t *seq, int64_t n);
/* Appends the sequence "1,2,3" (printing an error naming `what`); -1 when malformed. */
int cli_batch_add_list(cli_batch *b, const char *list, const char *what);
void cli_batch_free(cli_batch *b);

/* getopt codes of the sampling flags (generate, chat). */
enum {
    OPT_TEMP = 0x800,
    OPT_TOP_K,
    OPT_TOP_P,
    OPT_MIN_P,
    OPT_REPEAT,
    OPT_SEED,
    OPT_CTX,
};
#define SAMPLING_LONG_OPTIONS                                                                                  \
    {"max-new", required_argument, 0, 'n'}, {"temp", required_argument, 0, OPT_TEMP},                          \
        {"top-k", required_argument, 0, OPT_TOP_K}, {"top-p", required_argument, 0, OPT_TOP_P},               \
        {"min-p", required_argument, 0, OPT_MIN_P}, {"repeat-penalty", required_argument, 0, OPT_REPEAT},      \
        {"seed", required_argument, 0, OPT_SEED}, {"ctx", required_argument, 0, OPT_CTX}

/* The sampling and length flags given; unset ones keep tpi_gen_opts_default's. */
typedef struct cli_sampling {
    tpi_sampling s;
    int64_t max_new, ctx;
    int set_max_new, set_temp, set_top_k, set_top_p, set_min_p, set_repeat;
} cli_sampling;
/* Takes getopt's `c` when it is a sampling flag: 1 taken, -1 a malformed
 * value, 0 not a sampling flag. */
int cli_sampling_flag(cli_sampling *a, int c, const char *arg);
/* Overrides o with the flags given. A filter (top-k, top-p, min-p) without
 * --temp samples at temperature 1 when the default is greedy. */
void cli_sampling_apply(const cli_sampling *a, tpi_gen_opts *o);
#endif
