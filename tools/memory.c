#include "memory.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VmRSS of this process in bytes, or -1 where /proc does not say. */
static int64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6) && sscanf(line + 6, "%lld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

typedef struct rank_mem {
    int64_t weights, mapped, copied, resident;
} rank_mem;

void memory_report(tpi_comm *comm, const tpi_model *m, char *buf, size_t n)
{
    tpi_model_info info;
    tpi_model_get_info(m, &info);
    rank_mem mine = {info.weight_bytes, info.mapped_bytes, info.copied_bytes, resident_bytes()};
    int size = tpi_comm_size(comm);
    rank_mem *all = malloc((size_t)size * sizeof *all);
    int ok = all && !tpi_comm_gather(comm, &mine, sizeof mine, all, 0);
    buf[0] = 0;
    if (tpi_comm_rank(comm) == 0) {
        const double MiB = 1048576.0;
        size_t at = 0;
        for (int q = 0; q < (ok ? size : 1) && at < n; q++) {
            const rank_mem *r = ok ? &all[q] : &mine;
            at += (size_t)snprintf(buf + at, n - at, "%srank %d: %.2f MiB weights (%.2f mapped, %.2f copied), "
                                   "resident %.2f MiB", q ? "; " : "", q, (double)r->weights / MiB,
                                   (double)r->mapped / MiB, (double)r->copied / MiB, (double)r->resident / MiB);
        }
        if (at < n)
            snprintf(buf + at, n - at, "; model files %.2f MiB", (double)info.file_bytes / MiB);
    }
    free(all);
}
