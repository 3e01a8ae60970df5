#ifndef TPI_COMM_WATCHDOG_H
#define TPI_COMM_WATCHDOG_H
/* The MPI transport's watchdog (DESIGN.md "Communicator"): every wait of a
 * collective polls, and every TPI_WATCH_POLLS polls it checks for an
 * interrupt and for the time-out. A rank that times out takes a census over
 * a communicator of its own: every rank that is waiting too answers with the
 * number of the collective it waits in, and the ranks that stay silent are
 * the ones that did not arrive. Only the lowest-numbered rank that answers
 * reports, so the job ends with one message. */
#include <mpi.h>
#include <stdint.h>

#include "comm/comm.h"

/* Polls between two looks at the clock: a collective whose ranks arrive
 * together (microseconds) never reads it. */
#define TPI_WATCH_POLLS 64

typedef struct tpi_watchdog {
    MPI_Comm census;   /* a duplicate of the world: census traffic never meets a collective's */
    double timeout_s;  /* 0: no time-out */
    uint64_t n_coll;   /* collectives entered, the same count on every rank */
    unsigned round;    /* censuses taken, to tell a late answer from a current one */
    uint64_t *heard;   /* [size] census scratch: each rank's collective, or 0 */
    MPI_Request *reqs; /* [size] */
} tpi_watchdog;

/* One wait: a collective from entry to completion. */
typedef struct tpi_wait {
    tpi_comm *c;
    tpi_watchdog *wd;
    const char *what; /* "allreduce", "bcast", ... */
    unsigned polls, mask;
    double start;     /* when the wait was first seen to last; 0 before */
    int idle;         /* exempt from the time-out (tpi_comm_bcast_idle) */
    int deferred;     /* a lower rank that answered the census reports */
} tpi_wait;

/* Collective over world. */
int tpi_watchdog_init(tpi_watchdog *wd, MPI_Comm world, double timeout_s);
void tpi_watchdog_free(tpi_watchdog *wd);

/* Starts the wait of the next collective. idle: no time-out, and the
 * interrupt is checked at every poll (each poll of an idle wait sleeps). */
void tpi_wait_begin(tpi_wait *w, tpi_comm *c, tpi_watchdog *wd, const char *what, int idle);
/* The slow part of tpi_wait_poll. */
int tpi_wait_check(tpi_wait *w);

/* Called at every poll: 0 to keep waiting, else TPI_EINTR or TPI_ETIMEDOUT
 * (c failed, tpi_comm_status says why). */
static inline int tpi_wait_poll(tpi_wait *w)
{
    return ++w->polls & w->mask ? 0 : tpi_wait_check(w);
}
#endif
