#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "options.h"

int cli_parse_ids(const char *s, const char *what, int32_t **ids, int64_t *n)
{
    size_t cap = 16;
    int64_t k = 0;
    int32_t *out = malloc(cap * sizeof *out);
    const char *p = s;
    while (out && *p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "tpinfer: %s: expected comma-separated integers, found \"%s\"\n", what, s);
            free(out);
            return -1;
        }
        if ((size_t)k == cap) {
            int32_t *bigger = realloc(out, (cap *= 2) * sizeof *out);
            if (!bigger)
                break;
            out = bigger;
        }
        out[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!out || k == 0) {
        fprintf(stderr, "tpinfer: %s: expected at least one token id\n", what);
        free(out);
        return -1;
    }
    *ids = out;
    *n = k;
    return 0;
}

int cli_fail(tpi_comm *comm, const char *cmd, const tpi_error *err)
{
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

/* The whole of s as a number: 0, or -1 when malformed. */
static int parse_ll(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return end == s || *end || errno ? -1 : 0;
}

static int parse_ull(const char *s, unsigned long long *v)
{
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return end == s || *end || errno || s[0] == '-' ? -1 : 0;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end == s || *end ? -1 : 0;
}

int cli_sampling_flag(cli_sampling *a, int c, const char *arg)
{
    long long v = 0;
    unsigned long long u = 0;
    int bad = 0;
    switch (c) {
    case 'n':
        bad = parse_ll(arg, &v) || v < 0;
        a->max_new = v, a->set_max_new = 1;
        break;
    case OPT_CTX:
        bad = parse_ll(arg, &v) || v < 1;
        a->ctx = v;
        break;
    case OPT_TOP_K:
        bad = parse_ll(arg, &v) || v < 0;
        a->s.top_k = v, a->set_top_k = 1;
        break;
    case OPT_TEMP:
        bad = parse_double(arg, &a->s.temperature) || a->s.temperature < 0;
        a->set_temp = 1;
        break;
    case OPT_TOP_P: bad = parse_double(arg, &a->s.top_p), a->set_top_p = 1; break;
    case OPT_MIN_P: bad = parse_double(arg, &a->s.min_p), a->set_min_p = 1; break;
    case OPT_REPEAT: bad = parse_double(arg, &a->s.repetition_penalty), a->set_repeat = 1; break;
    case OPT_SEED:
        bad = parse_ull(arg, &u);
        a->s.seed = u;
        break;
    default: return 0;
    }
    return bad ? -1 : 1;
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
