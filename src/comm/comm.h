#ifndef TPI_COMM_COMM_H
#define TPI_COMM_COMM_H
/* The communicator (DESIGN.md "Communicator"): one implementation per
 * transport behind a small table of operations. Every operation is
 * collective over the world; each returns 0 or a negative TPI_E* code.
 * Callers use the tpi_comm_* functions (tpinfer.h and below), which check
 * their arguments and dispatch through the table; a wrapper (tests counting
 * collectives, bench timing them) replaces the table. */
#include <stddef.h>
#include <stdint.h>

#include "tpinfer.h"

typedef struct tpi_comm_ops {
    int (*barrier)(tpi_comm *c);
    int (*bcast)(tpi_comm *c, void *buf, size_t bytes, int root);
    /* Element-wise float32 sum, result on every rank. */
    int (*allreduce_sum)(tpi_comm *c, float *buf, int64_t n);
    /* Rank r sends counts[r] floats; root receives them back to back. */
    int (*gatherv)(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root);
    /* Element-wise (value, index) maximum, ties to the lowest index (MPI_MAXLOC). */
    int (*argmax)(tpi_comm *c, float *vals, int32_t *idx, int64_t n);
    /* Element-wise maximum of int32 values (agreeing on a status flag). */
    int (*allreduce_max_i32)(tpi_comm *c, int32_t *buf, int64_t n);
    void (*abort)(tpi_comm *c, int code);
    void (*free)(tpi_comm *c);
    /* bcast for a rank waiting an unbounded time for work (a server between
     * requests): it sleeps between polls rather than spinning, and no
     * watchdog times it out. NULL: bcast. */
    int (*bcast_idle)(tpi_comm *c, void *buf, size_t bytes, int root);
} tpi_comm_ops;

struct tpi_comm {
    int rank, size;
    const tpi_comm_ops *ops;
    void *impl;
    const char *kind;
    const char *allreduce; /* the all-reduce in use: "none" (self), "shm" or "mpi"; NULL in wrappers */
};

int tpi_comm_self_create(tpi_comm **out, tpi_error *err);
/* allreduce: enum tpi_allreduce_kind. */
int tpi_comm_mpi_create(tpi_comm **out, int allreduce, int *argc, char ***argv, tpi_error *err);

/* Collectives the engine needs beyond the public ones (same rules). */
/* Element-wise (value, index) maximum of vals/idx [n], ties to the lowest index. */
int tpi_comm_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n);
/* Element-wise maximum of buf [n] on every rank. */
int tpi_comm_allreduce_max_i32(tpi_comm *c, int32_t *buf, int64_t n);
/* tpi_comm_bcast for ranks that may wait long for root (idle servers, a chat
 * waiting for its user): no timeout, and no core burnt while waiting. */
int tpi_comm_bcast_idle(tpi_comm *c, void *buf, size_t bytes, int root);

#endif
