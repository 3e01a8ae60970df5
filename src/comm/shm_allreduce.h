#ifndef TPI_COMM_SHM_ALLREDUCE_H
#define TPI_COMM_SHM_ALLREDUCE_H
/* All-reduce (float32 sum) through an MPI-3 shared-memory window when every
 * rank is on one node, and the small collectives of a decode step on the
 * same window; comm_mpi.c uses them in place of MPI's. */
#include <mpi.h>
#include <stdint.h>

struct tpi_shm;

/* Collective over comm. Returns -1 (and *out NULL) on every rank when the
 * ranks span nodes or the window cannot be made: use MPI's all-reduce. */
int tpi_shm_create(struct tpi_shm **out, MPI_Comm comm);
struct tpi_wait;
/* Collective; buf holds the sum on every rank, bit-identical across ranks.
 * Polls w while waiting for the others (watchdog.h): returns 0 or its code. */
int tpi_shm_allreduce(struct tpi_shm *s, float *buf, int64_t n, struct tpi_wait *w);
/* Bytes the small collectives below take; past it they return 1 and the
 * caller uses MPI's. */
#define TPI_SHM_SMALL_BYTES ((size_t)1 << 16)
/* Collective, as tpi_comm_bcast, tpi_comm_allreduce_max_i32 and
 * tpi_comm_argmax (ties to the lower index); 0, 1 (too large: nothing
 * happened on any rank, since every rank sees the same size), or w's code. */
int tpi_shm_bcast(struct tpi_shm *s, void *buf, size_t bytes, int root, struct tpi_wait *w);
int tpi_shm_max_i32(struct tpi_shm *s, int32_t *buf, int64_t n, struct tpi_wait *w);
int tpi_shm_argmax(struct tpi_shm *s, float *vals, int32_t *idx, int64_t n, struct tpi_wait *w);
/* Collective (frees the window). */
void tpi_shm_free(struct tpi_shm *s);
#endif
