#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int bench_parse_ints(const char *s, const char *what, int32_t **out, int64_t *n)
{
    size_t cap = 16;
    int64_t k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    const char *p = s;
    while (v && *p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 1 || x > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "tpinfer-bench: %s: expected comma-separated positive integers, found \"%s\"\n", what, s);
            free(v);
            return -1;
        }
        if ((size_t)k == cap) {
            int32_t *bigger = realloc(v, (cap *= 2) * sizeof *v);
            if (!bigger) {
                free(v);
                v = NULL;
                break;
            }
            v = bigger;
        }
        v[k++] = (int32_t)x;
        p = *end ? end + 1 : end;
    }
    if (!v || k == 0) {
        fprintf(stderr, "tpinfer-bench: %s: expected at least one number\n", what);
        free(v);
        return -1;
    }
    *out = v;
    *n = k;
    return 0;
}
