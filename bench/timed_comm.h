#ifndef TPI_BENCH_TIMED_COMM_H
#define TPI_BENCH_TIMED_COMM_H
/* A communicator that forwards every collective to another one and adds up
 * the seconds spent inside them: tpinfer-bench splits each rank's
 * prefill time into its own work and its time in collectives (which, for
 * the faster of two ranks, includes waiting for the slower one). */
#include "comm/comm.h"

typedef struct timed_comm {
    tpi_comm comm;  /* what the model is given; its impl is this struct */
    tpi_comm *inner;
    double seconds; /* inside collectives since the last reset */
} timed_comm;

/* Wraps `inner` (not owned: free it, not this, at the end). */
void timed_comm_init(timed_comm *t, tpi_comm *inner);

#endif
