/* Memory admission of a rank's large buffers, agreed by every rank
 * (model.h; the rule is in core/meminfo.c). */
#include <stdio.h>

#include "core/error.h"
#include "core/meminfo.h"
#include "model/model.h"

/* "2.2 GiB", "64 MiB", "512 KiB", "12 B" */
static const char *fmt_bytes(char *buf, size_t size, int64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = bytes > 0 ? (double)bytes : 0;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, u == 0 || v >= 100 || v == (double)(int64_t)v ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

/* Where the figure came from, for the message: "(MemAvailable 1.1 GiB,
 * cgroup limit none; 1.0 GiB already reserved ...)". */
static void explain(char *out, size_t size, const tpi_mem_figures *f)
{
    char a[32], b[32], c[32], d[32];
    int n;
    if (f->explicit_limit)
        n = snprintf(out, size, "the limit given, mem_limit_bytes %s", fmt_bytes(a, sizeof a, f->baseline));
    else
        n = snprintf(out, size, "MemAvailable %s, cgroup limit %s%s%s%s",
                     f->mem_available < 0 ? "unreadable" : fmt_bytes(a, sizeof a, f->mem_available),
                     f->cgroup_limit < 0 ? "none" : fmt_bytes(b, sizeof b, f->cgroup_limit),
                     f->cgroup_limit < 0 ? "" : " with ", f->cgroup_limit < 0 ? "" : fmt_bytes(c, sizeof c, f->cgroup_room),
                     f->cgroup_limit < 0 ? "" : " free");
    if (n < 0 || (size_t)n >= size)
        return;
    if (f->reserved > 0)
        n += snprintf(out + n, size - (size_t)n, "; %s already reserved by this process's KV caches and activations",
                      fmt_bytes(a, sizeof a, f->reserved));
    if (n >= 0 && (size_t)n < size && f->margin > 0)
        snprintf(out + n, size - (size_t)n, "; %s kept free", fmt_bytes(d, sizeof d, f->margin));
}

int tpi_model_admit(const tpi_model *m, int64_t bytes, const char *what, tpi_error *err)
{
    tpi_mem_figures f;
    int rc = 0;
    if (tpi_mem_reserve(bytes, m->mem_limit, &f)) {
        char need[32], room[32], why[512];
        explain(why, sizeof why, &f);
        rc = tpi_err(err, TPI_ENOMEM, "%s needs %s on rank %d, but %s is available (%s)", what,
                     fmt_bytes(need, sizeof need, bytes), m->comm->rank, fmt_bytes(room, sizeof room, f.room), why);
    }
    if (m->comm->size > 1) {
        int agreed = tpi_model_agree_error(m->comm, rc, err);
        if (agreed && !rc)
            tpi_mem_release(bytes);
        rc = agreed;
    }
    return rc;
}
