/* Memory available to this process, and admission of the library's large
 * buffers against it (meminfo.h).
 *
 * The rule. KV caches and activations are allocated on 2 MB pages that the
 * kernel commits when first touched, so MemAvailable does not see a buffer
 * when it is created, and sees it once it is full. Probing afresh at each
 * admission would miss untouched reservations (two caches that each fit
 * but together do not are both admitted) and count touched ones twice. So
 * the library counts its live reservations itself, and the figure they
 * are measured against is frozen when the first of them is made (the
 * baseline, probed before any of ours was touched); it is probed again once
 * they are all released. A request of `bytes` is admitted when
 *     reserved + bytes <= baseline - margin   and   bytes <= now - margin,
 * the second a necessary condition at any moment (memory someone else took
 * since the baseline). margin = max(256 MiB, 5 % of the figure) stays free
 * for what the library does not count (weights copied in rowwise slices,
 * small buffers, the page cache the mapped weights need, other programs).
 * With an explicit limit the rule is reserved + bytes <= limit, no margin:
 * the caller sized it. */
#include "core/meminfo.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN_MIN ((int64_t)256 << 20)
#define MARGIN_PERCENT 5
/* cgroup v1 writes "no limit" as the largest page-aligned int64 */
#define CGROUP_UNLIMITED ((int64_t)1 << 60)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t reserved_bytes, baseline_bytes;

int tpi_meminfo_parse(const char *text, int64_t *bytes)
{
    const char *p = strstr(text, "MemAvailable:");
    if (!p || (p != text && p[-1] != '\n'))
        return -1;
    char *end;
    errno = 0;
    long long kb = strtoll(p + strlen("MemAvailable:"), &end, 10);
    if (errno || end == p + strlen("MemAvailable:") || kb < 0 || kb > INT64_MAX / 1024)
        return -1;
    *bytes = (int64_t)kb * 1024;
    return 0;
}

int tpi_cgroup_parse_limit(const char *text, int64_t *bytes)
{
    if (!strcmp(text, "max") || !strcmp(text, "max\n")) {
        *bytes = -1;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = text[0] >= '0' && text[0] <= '9' ? strtoll(text, &end, 10) : -1;
    if (v < 0 || errno || (*end && strcmp(end, "\n")))
        return -1;
    *bytes = v >= CGROUP_UNLIMITED ? -1 : (int64_t)v;
    return 0;
}

int tpi_cgroup_parse_self(const char *text, char *path, size_t size, int *v1)
{
    int found = -1;
    for (const char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
        size_t len = strcspn(line, "\n");
        const char *c1 = memchr(line, ':', len), *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 - line) - 1) : NULL;
        if (!c2)
            continue;
        size_t plen = len - (size_t)(c2 + 1 - line);
        int is_v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
        /* v1 lists controllers, possibly several: "4:cpu,memory:/path" */
        int is_mem = 0;
        for (const char *t = c1 + 1; t < c2; t += strcspn(t, ",:") + 1)
            is_mem |= strcspn(t, ",:") == 6 && !strncmp(t, "memory", 6);
        if ((!is_v2 && !is_mem) || plen >= size)
            continue;
        memcpy(path, c2 + 1, plen);
        path[plen] = '\0';
        *v1 = is_mem;
        found = 0;
        if (is_mem)
            return 0; /* hybrid mode: a v1 memory controller is the one that limits */
    }
    return found;
}

/* Reads a small text file whole into buf. -1 when it cannot be read. */
static int read_text(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    int bad = ferror(f);
    fclose(f);
    buf[n] = '\0';
    return bad ? -1 : 0;
}

/* Limit and usage in directory dir (v2 or v1 file names). -1 when unread. */
static int cgroup_dir(const char dir[4100], int v1, int64_t *limit, int64_t *usage)
{
    char path[4200], buf[64]; /* dir is under 4100 bytes (cgroup_probe) */
    snprintf(path, sizeof path, "%s/%s", dir, v1 ? "memory.limit_in_bytes" : "memory.max");
    if (read_text(path, buf, sizeof buf) || tpi_cgroup_parse_limit(buf, limit))
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, v1 ? "memory.usage_in_bytes" : "memory.current");
    if (read_text(path, buf, sizeof buf) || tpi_cgroup_parse_limit(buf, usage) || *usage < 0)
        *usage = 0;
    return 0;
}

/* The tightest cgroup limit over this process's cgroup and its ancestors (a
 * parent's limit binds its children too): *room = limit - usage there. */
static void cgroup_probe(int64_t *room, int64_t *limit)
{
    char self[4096], dir[4000];
    int v1 = 0;
    *room = *limit = -1;
    if (read_text("/proc/self/cgroup", self, sizeof self) || tpi_cgroup_parse_self(self, dir, sizeof dir, &v1))
        return;
    const char *root = v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
    char path[4100];
    snprintf(path, sizeof path, "%s%s", root, strcmp(dir, "/") ? dir : "");
    for (;;) {
        int64_t lim, use;
        if (!cgroup_dir(path, v1, &lim, &use) && lim >= 0 && (*room < 0 || lim - use < *room)) {
            *room = lim > use ? lim - use : 0;
            *limit = lim;
        }
        char *slash = strrchr(path, '/');
        if (strlen(path) <= strlen(root) || !slash)
            break;
        *slash = '\0';
    }
}

int tpi_mem_available(tpi_mem_figures *f)
{
    char buf[8192];
    f->mem_available = -1;
    if (!read_text("/proc/meminfo", buf, sizeof buf) && tpi_meminfo_parse(buf, &f->mem_available))
        f->mem_available = -1;
    cgroup_probe(&f->cgroup_room, &f->cgroup_limit);
    if (f->mem_available < 0 && f->cgroup_room < 0)
        return -1;
    f->available = f->mem_available < 0 ? f->cgroup_room
                   : f->cgroup_room < 0 ? f->mem_available
                   : f->cgroup_room < f->mem_available ? f->cgroup_room : f->mem_available;
    return 0;
}

static int64_t margin_of(int64_t figure)
{
    int64_t m = figure / 100 * MARGIN_PERCENT;
    return m > MARGIN_MIN ? m : MARGIN_MIN;
}

/* The room a request may take under the rule at the top of this file; the
 * lock is held. */
static int64_t room_locked(int64_t limit, tpi_mem_figures *f)
{
    if (limit > 0) {
        f->explicit_limit = 1;
        f->available = f->baseline = limit;
        return limit - reserved_bytes;
    }
    if (tpi_mem_available(f))
        return INT64_MAX; /* nothing to measure against: admit */
    if (reserved_bytes == 0)
        baseline_bytes = f->available;
    f->baseline = baseline_bytes;
    f->margin = margin_of(f->baseline);
    int64_t by_baseline = f->baseline - f->margin - reserved_bytes;
    int64_t by_now = f->available - margin_of(f->available);
    return by_baseline < by_now ? by_baseline : by_now;
}

int tpi_mem_reserve(int64_t bytes, int64_t limit, tpi_mem_figures *f)
{
    *f = (tpi_mem_figures){.mem_available = -1, .cgroup_room = -1, .cgroup_limit = -1, .room = INT64_MAX};
    pthread_mutex_lock(&lock);
    f->reserved = reserved_bytes;
    if (limit >= 0)
        f->room = room_locked(limit, f);
    int ok = bytes <= f->room;
    if (ok)
        reserved_bytes += bytes;
    pthread_mutex_unlock(&lock);
    return ok ? 0 : -1;
}

void tpi_mem_release(int64_t bytes)
{
    pthread_mutex_lock(&lock);
    reserved_bytes -= bytes;
    pthread_mutex_unlock(&lock);
}

int64_t tpi_mem_reserved(void)
{
    pthread_mutex_lock(&lock);
    int64_t r = reserved_bytes;
    pthread_mutex_unlock(&lock);
    return r;
}
