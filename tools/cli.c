#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "options.h"
#include "signals.h"

/* Leading blanks and signs strto* would skip or accept are junk here: a
 * flag's value is the number and nothing else. */
static int starts_clean(const char *s, int sign_ok)
{
    return *s && !isspace((unsigned char)*s) && (sign_ok || (*s != '-' && *s != '+'));
}

int cli_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = starts_clean(s, 1) ? strtoll(s, &end, 10) : 0;
    if (!starts_clean(s, 1) || end == s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = starts_clean(s, 0) ? strtoull(s, &end, 10) : 0;
    if (!starts_clean(s, 0) || end == s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_real(const char *s, double lo, int lo_open, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = starts_clean(s, 1) ? strtod(s, &end) : 0;
    if (!starts_clean(s, 1) || end == s || *end || errno || !isfinite(v) || v > hi || (lo_open ? v <= lo : v < lo))
        return -1;
    *out = v;
    return 0;
}

int cli_parse_size(const char *s, int64_t *out)
{
    if (!strcmp(s, "none")) {
        *out = -1;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = starts_clean(s, 0) ? strtoll(s, &end, 10) : 0;
    if (!starts_clean(s, 0) || end == s || errno || v < 1)
        return -1;
    const char *units = "KMGT", *u = *end ? strchr(units, *end) : NULL;
    if (*end && (!u || end[1]))
        return -1;
    for (int shift = u ? 10 * (int)(u - units + 1) : 0; shift > 0; shift -= 10) {
        if (v > INT64_MAX >> 10)
            return -1;
        v <<= 10;
    }
    *out = v;
    return 0;
}

int cli_bad_value(const char *cmd, const char *from, const char *want, const char *value)
{
    fprintf(stderr, "tpinfer %s: %s: expected %s, found \"%s\"\n", cmd, from, want, value);
    return from[0] == '-' ? 2 : 1;
}

int cli_parse_ids(const char *s, const char *what, int32_t **ids, int64_t *n)
{
    size_t len = strlen(s), k = 0;
    int32_t *out = malloc((len / 2 + 1) * sizeof *out); /* "1,2,3": at most one id per two characters */
    char *copy = malloc(len + 1);
    int bad = !out || !copy || !len || s[len - 1] == ',';
    if (!bad) {
        memcpy(copy, s, len + 1);
        for (char *p = copy, *next; p && !bad; p = next) {
            next = strchr(p, ',');
            if (next)
                *next++ = 0;
            int64_t v = 0;
            bad = cli_parse_int(p, 0, INT32_MAX, &v) != 0;
            out[k++] = (int32_t)v;
        }
    }
    free(copy);
    if (bad) {
        fprintf(stderr, "tpinfer: %s: expected comma-separated integers (token ids in [0, %d]), found \"%s\"\n",
                what, INT32_MAX, s);
        free(out);
        return -1;
    }
    *ids = out;
    *n = (int64_t)k;
    return 0;
}

int cli_fail(tpi_comm *comm, const char *cmd, const tpi_error *err)
{
    /* A signal or the watchdog is the cause; what failed because of it
     * ("broadcast of the next tokens failed") is not worth a line. */
    tpi_error why;
    if (cli_signal(NULL))
        return cli_signal_exit(comm, cmd);
    if (tpi_comm_status(comm, &why) && why.code == TPI_ETIMEDOUT) {
        fprintf(stderr, "tpinfer %s: %s; ending the job\n", cmd, why.msg);
        fflush(stderr);
        tpi_comm_abort(comm, 1);
    }
    if (tpi_comm_size(comm) > 1) {
        fprintf(stderr, "tpinfer %s: rank %d: %s\n", cmd, tpi_comm_rank(comm), err->msg);
        fflush(stderr);
        tpi_comm_abort(comm, 1);
    }
    fprintf(stderr, "tpinfer %s: %s\n", cmd, err->msg);
    return 1;
}

int cli_error(tpi_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

double cli_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cli_comm(tpi_comm **comm, int *argc, char ***argv, const char *cmd)
{
    engine_opts e = {0};
    if (engine_resolve(&e, cmd))
        return -1;
    return engine_comm(&e, comm, argc, argv, cmd);
}

int cli_batch_add(cli_batch *b, const int32_t *seq, int64_t n)
{
    int32_t *ids = realloc(b->ids, (size_t)(b->n_ids + n) * sizeof *ids + 1);
    if (!ids)
        return -1;
    b->ids = ids;
    int64_t *lens = realloc(b->lens, (size_t)(b->n_seq + 1) * sizeof *lens);
    if (!lens)
        return -1;
    b->lens = lens;
    memcpy(ids + b->n_ids, seq, (size_t)n * sizeof *ids);
    b->n_ids += n;
    lens[b->n_seq++] = n;
    return 0;
}

int cli_batch_add_list(cli_batch *b, const char *list, const char *what)
{
    int32_t *seq;
    int64_t n;
    if (cli_parse_ids(list, what, &seq, &n))
        return -1;
    int rc = cli_batch_add(b, seq, n);
    if (rc)
        fprintf(stderr, "tpinfer: %s: out of memory\n", what);
    free(seq);
    return rc;
}

void cli_batch_free(cli_batch *b)
{
    free(b->ids);
    free(b->lens);
    *b = (cli_batch){0};
}

/* The longest --ctx, as the library's limit (max_position_embeddings'):
 * a larger one is refused here, before a model is loaded. */
#define CLI_MAX_CTX ((int64_t)1 << 31)

int cli_sampling_flag(cli_sampling *a, const char *cmd, int c, const char *arg)
{
    int64_t v = 0;
    const char *flag, *want;
    int bad;
    switch (c) {
    case 'n':
        flag = "-n/--max-new", want = "a number of tokens in [0, 2147483648]";
        bad = cli_parse_int(arg, 0, CLI_MAX_CTX, &v), a->max_new = v, a->set_max_new = 1;
        break;
    case OPT_CTX:
        flag = "--ctx", want = "a context length in [1, 2147483648]";
        bad = cli_parse_int(arg, 1, CLI_MAX_CTX, &v), a->ctx = v;
        break;
    case OPT_TOP_K:
        flag = "--top-k", want = "an integer in [0, 2147483647]";
        bad = cli_parse_int(arg, 0, INT32_MAX, &v), a->s.top_k = v, a->set_top_k = 1;
        break;
    case OPT_TEMP:
        flag = "--temp", want = "a finite number >= 0";
        bad = cli_parse_real(arg, 0, 0, DBL_MAX, &a->s.temperature), a->set_temp = 1;
        break;
    case OPT_TOP_P:
        flag = "--top-p", want = "a number in (0, 1]";
        bad = cli_parse_real(arg, 0, 1, 1, &a->s.top_p), a->set_top_p = 1;
        break;
    case OPT_MIN_P:
        flag = "--min-p", want = "a number in [0, 1]";
        bad = cli_parse_real(arg, 0, 0, 1, &a->s.min_p), a->set_min_p = 1;
        break;
    case OPT_REPEAT:
        flag = "--repeat-penalty", want = "a finite number > 0";
        bad = cli_parse_real(arg, 0, 1, DBL_MAX, &a->s.repetition_penalty), a->set_repeat = 1;
        break;
    case OPT_SEED:
        flag = "--seed", want = "an integer in [0, 18446744073709551615]";
        bad = cli_parse_u64(arg, &a->s.seed);
        break;
    default: return 0;
    }
    if (bad) {
        cli_bad_value(cmd, flag, want, arg);
        return -1;
    }
    return 1;
}

void cli_sampling_apply(const cli_sampling *a, tpi_gen_opts *o)
{
    if (a->set_max_new)
        o->max_new_tokens = a->max_new;
    if (a->set_temp)
        o->sampling.temperature = a->s.temperature;
    else if ((a->set_top_k || a->set_top_p || a->set_min_p) && o->sampling.temperature == 0)
        o->sampling.temperature = 1.0;
    if (a->set_top_k)
        o->sampling.top_k = a->s.top_k;
    if (a->set_top_p)
        o->sampling.top_p = a->s.top_p;
    if (a->set_min_p)
        o->sampling.min_p = a->s.min_p;
    if (a->set_repeat)
        o->sampling.repetition_penalty = a->s.repetition_penalty;
    o->sampling.seed = a->s.seed;
    o->max_ctx = a->ctx;
}
