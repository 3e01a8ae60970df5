#ifndef TPI_TOOLS_CLI_H
#define TPI_TOOLS_CLI_H
/* Helpers shared by the tpinfer commands. */
#include <getopt.h>
#include <stdint.h>

#include "tpinfer.h"

/* The one set of parsers for numbers from flags and the environment: the
 * whole string must be the number (no blanks, no trailing characters, no
 * overflow); 0, or -1 with *out untouched. */
/* A decimal integer in [lo, hi]. */
int cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Any 64-bit unsigned decimal integer; a sign is refused (strtoull would
 * wrap "-1" to 2^64 - 1). */
int cli_parse_u64(const char *s, uint64_t *out);
/* A finite number in [lo, hi], or (lo, hi] with lo_open: NaN and infinity
 * never pass. */
int cli_parse_real(const char *s, double lo, int lo_open, double hi, double *out);
/* A size in bytes: digits with an optional K, M, G or T (powers of 1024),
 * "512M", "2G", "1048576"; "none" gives -1. Zero and overflow are refused. */
int cli_parse_size(const char *s, int64_t *out);
/* Prints "tpinfer CMD: FROM: expected WANT, found "VALUE"" and returns the
 * exit code: 2 when FROM is a flag (starts with '-'), 1 for an environment
 * variable. */
int cli_bad_value(const char *cmd, const char *from, const char *want, const char *value);

/* Parses "1,2,3" (token ids, each in [0, INT32_MAX]) into a malloc'd array;
 * prints an error naming `what` and returns -1 on a malformed list. */
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
/* Takes getopt's `c` when it is a sampling flag: 1 taken, 0 not a sampling
 * flag, -1 a value out of range after printing which flag, what it takes and
 * what was given (tpinfer CMD: ...). */
int cli_sampling_flag(cli_sampling *a, const char *cmd, int c, const char *arg);
/* Overrides o with the flags given. A filter (top-k, top-p, min-p) without
 * --temp samples at temperature 1 when the default is greedy. */
void cli_sampling_apply(const cli_sampling *a, tpi_gen_opts *o);
#endif
