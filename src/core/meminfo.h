#ifndef TPI_CORE_MEMINFO_H
#define TPI_CORE_MEMINFO_H
/* How much memory this process may still take, and the library's own
 * reservations against it (DESIGN.md "Memory admission"). The only place
 * the library reads /proc/meminfo and cgroup files; tpi_load_opts'
 * mem_limit_bytes replaces the probe. */
#include <stddef.h>
#include <stdint.h>

/* The figures an admission decision rests on, for its message. */
typedef struct tpi_mem_figures {
    int64_t available;     /* the smaller of the two below, before the margin */
    int64_t mem_available; /* /proc/meminfo MemAvailable; -1: unreadable */
    int64_t cgroup_room;   /* cgroup limit minus usage; -1: no limit (or none found) */
    int64_t cgroup_limit;  /* -1: none */
    int64_t baseline;      /* `available` when the first live reservation was made */
    int64_t margin;        /* kept free of what is available */
    int64_t reserved;      /* the library's reservations before this one */
    int64_t room;          /* what this reservation may take */
    int explicit_limit;    /* 1: the caller's limit replaced the probe */
} tpi_mem_figures;

/* Parses /proc/meminfo text: *bytes = MemAvailable. -1 when it is absent. */
int tpi_meminfo_parse(const char *text, int64_t *bytes);
/* Parses a cgroup limit file's text ("max\n" or a byte count): *bytes =
 * the limit, -1 for "max" or a v1 "unlimited" figure (>= 2^60). -1 on junk. */
int tpi_cgroup_parse_limit(const char *text, int64_t *bytes);
/* From /proc/self/cgroup text, the v1 memory controller's path into path
 * with *v1 = 1 (in hybrid mode it, not v2, limits memory), else the v2 path
 * ("0::/path") with *v1 = 0. -1 when neither. */
int tpi_cgroup_parse_self(const char *text, char *path, size_t size, int *v1);

/* Probes the machine: fills f->available (the smaller of MemAvailable and
 * the cgroup headroom), mem_available, cgroup_room and cgroup_limit. Returns
 * -1 when neither figure can be read. */
int tpi_mem_available(tpi_mem_figures *f);

/* Admission (the rule is in meminfo.c): reserves `bytes` when they fit and
 * returns 0, else returns -1; f gets the figures either way. limit: 0 probe
 * the machine, > 0 that many bytes, < 0 admit without checking (and still
 * count). Thread-safe. */
int tpi_mem_reserve(int64_t bytes, int64_t limit, tpi_mem_figures *f);
/* Returns bytes a tpi_mem_reserve admitted. */
void tpi_mem_release(int64_t bytes);
/* Bytes the library holds reserved now. */
int64_t tpi_mem_reserved(void);
#endif
