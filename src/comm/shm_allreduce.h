#ifndef TPI_COMM_SHM_ALLREDUCE_H
#define TPI_COMM_SHM_ALLREDUCE_H
/* All-reduce (float32 sum) through an MPI-3 shared-memory window when every
 * rank is on one node; comm_mpi.c uses it in place of MPI_Allreduce. */
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
/* Collective (frees the window). */
void tpi_shm_free(struct tpi_shm *s);
#endif
