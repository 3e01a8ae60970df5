/* The float32 all-reduce over an MPI-3 shared-memory window, used when every
 * rank runs on one node (the "MPI-3 shared-memory window on one
 * node"). Open MPI's own all-reduce costs 9-15 us for one token's 8 KB and,
 * for a prefill's tens of MB, allocates (and page-faults) a temporary buffer
 * per call; here each rank owns two persistent slots in the window:
 *
 *   1. copy my chunk into my slot (g % 2) and publish seq = g (release);
 *   2. wait until every rank has published g (acquire);
 *   3. sum all ranks' slots in rank order into my buffer.
 *
 * Every rank adds the same values in the same order, so all ranks hold
 * bit-identical results (the ranks' residual streams must not drift apart).
 * Slot g % 2 is written again at generation g + 2 only after every rank has
 * published g + 1, which each does after finishing its reads of g: two
 * slots need no second wait. Messages larger than a slot go in chunks. */
#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm/shm_allreduce.h"
#include "comm/watchdog.h"
#include "core/error.h"
#include "core/vec.h"

/* Floats per slot: 64 KB, so that a chunk is still in cache (this core's
 * for its own slot, the shared L3 for the others') when the ranks sum it; a
 * prefill's tens of MB then cross memory once instead of three times. One
 * wait per chunk costs ~1 us. */
#define CHUNK ((int64_t)1 << 14)
#define HEADER 128               /* the sequence counter on its own cache lines */
_Static_assert(TPI_SHM_SMALL_BYTES <= CHUNK * sizeof(float), "a small collective fits one slot");

struct tpi_shm {
    MPI_Win win;
    int rank, size;
    uint64_t gen;
    _Atomic uint64_t **seq; /* [size] each rank's published generation */
    float **slot;           /* [size] each rank's two slots, CHUNK floats apart */
};

static void pause_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spinning costs nothing when each rank has a core; past a short spin the
 * waiter yields and then sleeps, so ranks that share cores (more ranks than
 * cores) still make progress. A rank that dies makes mpirun end the job; one
 * that stops is the watchdog's (w). Returns 0 or tpi_wait_poll's code. */
static int wait_published(struct tpi_shm *s, uint64_t gen, tpi_wait *w)
{
    for (int q = 0; q < s->size; q++) {
        for (unsigned spins = 0; atomic_load_explicit(s->seq[q], memory_order_acquire) < gen; spins++) {
            int rc = tpi_wait_poll(w);
            if (rc)
                return rc;
            if (spins < 4000) {
                pause_cpu();
            } else if (spins < 4200) {
                sched_yield();
            } else {
                struct timespec ts = {0, 20000};
                nanosleep(&ts, NULL);
            }
        }
    }
    return 0;
}

/* Two ranks (the common case) in one pass: read both slots, write once. */
static void sum_slots(struct tpi_shm *s, float *out, int64_t off, int64_t n)
{
    tpi_add_f32(out, s->slot[0] + off, s->slot[1] + off, n);
    for (int q = 2; q < s->size; q++)
        tpi_add_f32(out, out, s->slot[q] + off, n);
}

int tpi_shm_allreduce(struct tpi_shm *s, float *buf, int64_t n, tpi_wait *w)
{
    for (int64_t off = 0; off < n; off += CHUNK) {
        int64_t k = n - off < CHUNK ? n - off : CHUNK;
        uint64_t g = ++s->gen;
        int64_t half = (int64_t)(g % 2) * CHUNK;
        memcpy(s->slot[s->rank] + half, buf + off, (size_t)k * sizeof *buf);
        atomic_store_explicit(s->seq[s->rank], g, memory_order_release);
        int rc = wait_published(s, g, w);
        if (rc)
            return rc;
        sum_slots(s, buf + off, half, k);
    }
    return 0;
}

/* The small collectives of a decode step (rank 0's tokens, the argmax
 * across vocabulary slices, status flags) go through the same slots: one
 * generation in which every rank publishes what it has and then reads what
 * it needs, so each costs one wait on flags instead of MPI's non-blocking
 * machinery. Every rank waits for all, as the all-reduce does, which keeps
 * the two-slot reuse safe. */
static int exchange(struct tpi_shm *s, const void *mine, size_t bytes, tpi_wait *w, int64_t *half)
{
    uint64_t g = ++s->gen;
    *half = (int64_t)(g % 2) * CHUNK;
    if (bytes && mine != (const void *)(s->slot[s->rank] + *half))
        memcpy(s->slot[s->rank] + *half, mine, bytes);
    atomic_store_explicit(s->seq[s->rank], g, memory_order_release);
    return wait_published(s, g, w);
}

/* Where this rank's data for the next exchange goes, to write in place. */
static void *next_slot(struct tpi_shm *s)
{
    return s->slot[s->rank] + (int64_t)((s->gen + 1) % 2) * CHUNK;
}

int tpi_shm_bcast(struct tpi_shm *s, void *buf, size_t bytes, int root, tpi_wait *w)
{
    if (bytes > TPI_SHM_SMALL_BYTES)
        return 1;
    int64_t half;
    int rc = exchange(s, buf, s->rank == root ? bytes : 0, w, &half);
    if (!rc && s->rank != root && bytes)
        memcpy(buf, s->slot[root] + half, bytes);
    return rc;
}

int tpi_shm_max_i32(struct tpi_shm *s, int32_t *buf, int64_t n, tpi_wait *w)
{
    if (n > (int64_t)(TPI_SHM_SMALL_BYTES / sizeof *buf))
        return 1;
    int64_t half;
    int rc = exchange(s, buf, (size_t)n * sizeof *buf, w, &half);
    for (int64_t k = 0; !rc && k < n; k++) {
        int32_t m = ((const int32_t *)(s->slot[0] + half))[k];
        for (int q = 1; q < s->size; q++) {
            int32_t v = ((const int32_t *)(s->slot[q] + half))[k];
            m = v > m ? v : m;
        }
        buf[k] = m;
    }
    return rc;
}

/* MPI_MAXLOC's rule, ranks taken in order: the larger value, on a tie the
 * lower index. */
int tpi_shm_argmax(struct tpi_shm *s, float *vals, int32_t *idx, int64_t n, tpi_wait *w)
{
    struct pair { float v; int32_t i; };
    if (n > (int64_t)(TPI_SHM_SMALL_BYTES / sizeof(struct pair)))
        return 1;
    struct pair *p = next_slot(s);
    for (int64_t k = 0; k < n; k++)
        p[k] = (struct pair){vals[k], idx[k]};
    int64_t half;
    int rc = exchange(s, p, (size_t)n * sizeof *p, w, &half);
    for (int64_t k = 0; !rc && k < n; k++) {
        struct pair best = ((const struct pair *)(s->slot[0] + half))[k];
        for (int q = 1; q < s->size; q++) {
            struct pair o = ((const struct pair *)(s->slot[q] + half))[k];
            if (o.v > best.v || (o.v == best.v && o.i < best.i))
                best = o;
        }
        vals[k] = best.v;
        idx[k] = best.i;
    }
    return rc;
}

/* MPI's idea of a node can be wider than a machine: hosts emulated by
 * network namespaces share one kernel and /dev/shm, so a window between
 * them works and would hide the network (docs/MULTIHOST.md). Ranks whose
 * hostnames differ are on different hosts, whatever MPI says. Collective. */
static int same_hostname(MPI_Comm comm)
{
    char mine[HOST_NAME_MAX + 1] = {0}, first[HOST_NAME_MAX + 1] = {0};
    if (gethostname(mine, sizeof mine - 1))
        mine[0] = 0;
    memcpy(first, mine, sizeof first);
    MPI_Bcast(first, (int)sizeof first, MPI_CHAR, 0, comm);
    int same = !strcmp(first, mine), all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, comm);
    return all;
}

int tpi_shm_create(struct tpi_shm **out, MPI_Comm comm)
{
    *out = NULL;
    int size, node_size, rank, ok = 1;
    MPI_Comm node;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return -1;
    MPI_Comm_size(node, &node_size);
    MPI_Comm_free(&node);
    if (node_size != size || !same_hostname(comm)) /* ranks on several nodes: MPI's all-reduce as it is */
        return -1;

    struct tpi_shm *s = calloc(1, sizeof *s);
    if (s) {
        s->seq = calloc((size_t)size, sizeof *s->seq);
        s->slot = calloc((size_t)size, sizeof *s->slot);
    }
    ok = s && s->seq && s->slot;
    /* The window is collective: every rank makes it, or none does. */
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    void *base = NULL;
    MPI_Aint bytes = HEADER + 2 * CHUNK * (MPI_Aint)sizeof(float);
    int have_win = all_ok && MPI_Win_allocate_shared(bytes, 1, MPI_INFO_NULL, comm, &base, &s->win) == MPI_SUCCESS;
    ok = have_win;
    for (int q = 0; ok && q < size; q++) {
        MPI_Aint qbytes;
        int disp;
        char *p;
        if (MPI_Win_shared_query(s->win, q, &qbytes, &disp, &p) != MPI_SUCCESS || qbytes < bytes)
            ok = 0;
        else {
            s->seq[q] = (_Atomic uint64_t *)p;
            s->slot[q] = (float *)(p + HEADER);
        }
    }
    if (ok)
        atomic_store(s->seq[rank], 0);
    /* All ranks must take the same path: agree on success. */
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) {
        if (have_win)
            MPI_Win_free(&s->win);
        if (s) {
            free(s->seq);
            free(s->slot);
        }
        free(s);
        return -1;
    }
    s->rank = rank;
    s->size = size;
    MPI_Barrier(comm); /* every counter is zeroed before anyone publishes */
    *out = s;
    return 0;
}

void tpi_shm_free(struct tpi_shm *s)
{
    if (!s)
        return;
    MPI_Win_free(&s->win);
    free(s->seq);
    free(s->slot);
    free(s);
}
