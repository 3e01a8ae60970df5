#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cli_comm(tpi_comm **comm, int *argc, char ***argv, const char *cmd)
{
    tpi_error err = {0};
    if (tpi_comm_create(comm, "auto", argc, argv, &err)) {
        fprintf(stderr, "tpinfer %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}
