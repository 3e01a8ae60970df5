#ifndef TPI_COMM_COMM_H
#define TPI_COMM_COMM_H
/* The communicator (DESIGN.md "Communicator"): one implementation per
 * transport behind a small table of operations. Every operation is
 * collective over the world; each returns 0 or a negative TPI_E* code.
 * Callers use the tpi_comm_* functions (tpinfer.h and below), which check
 * their arguments and dispatch through the table; a wrapper (tests counting
 * collectives, bench timing them) replaces the table. */
#include <stdatomic.h>
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
    /* allreduce_sum of the model's hidden states, sent in the wire encoding
     * (tpi_comm_opts.wire); used only when that is not f32. */
    int (*allreduce_act)(tpi_comm *c, float *buf, int64_t n);
} tpi_comm_ops;

struct tpi_comm {
    int rank, size;
    const tpi_comm_ops *ops;
    void *impl;
    const char *kind;
    const char *allreduce; /* the all-reduce in use: "none" (self), "shm" or "mpi"; NULL in wrappers */
    int wire;              /* enum tpi_wire_kind of tpi_comm_allreduce_act */
    atomic_int interrupt;  /* tpi_comm_interrupt's code; 0: none */
    tpi_error failure;     /* code 0, or why the communicator stopped working (tpi_comm_status) */
};

/* Marks c failed with code and a printf-style message; returns code. */
int tpi_comm_fail(tpi_comm *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int tpi_comm_self_create(tpi_comm **out, tpi_error *err);
/* opts as tpi_comm_create checked them. */
int tpi_comm_mpi_create(tpi_comm **out, const tpi_comm_opts *opts, int *argc, char ***argv, tpi_error *err);

/* Collectives the engine needs beyond the public ones (same rules). */
/* Element-wise (value, index) maximum of vals/idx [n], ties to the lowest index. */
int tpi_comm_argmax(tpi_comm *c, float *vals, int32_t *idx, int64_t n);
/* The sum of the ranks' partial hidden states, as tpi_comm_allreduce_sum_f32
 * but in the wire encoding the communicator was created with (lossy when
 * bf16 or q8): for the model's activations only; every other sum (counts,
 * timings) stays exact. */
int tpi_comm_allreduce_act(tpi_comm *c, float *buf, int64_t n);
/* Element-wise maximum of buf [n] on every rank. */
int tpi_comm_allreduce_max_i32(tpi_comm *c, int32_t *buf, int64_t n);

#endif
