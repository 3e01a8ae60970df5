/* A rank that keeps running forward passes until killed, for the failure
 * tests: it writes its pid to $1/rank<r>.pid once the model is loaded.
 * With TIMEOUT_S the watchdog runs (tpi_comm_opts.timeout_s), and "mpi"
 * takes MPI's all-reduce instead of shared memory; a failure prints the
 * communicator's reason when it has one. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tpinfer.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: tp_spin PIDDIR MODELDIR [TIMEOUT_S [mpi]]\n");
        return 2;
    }
    tpi_comm_opts co = {.kind = "mpi", .timeout_s = argc > 3 ? atof(argv[3]) : 0,
                        .allreduce = argc > 4 ? TPI_ALLREDUCE_MPI : TPI_ALLREDUCE_AUTO};
    tpi_comm *comm;
    tpi_model *m;
    tpi_error err = {0};
    /* failure.sh starts it under mpirun */
    if (tpi_comm_create(&comm, &co, &argc, &argv, &err) ||
        tpi_model_load(&m, argv[2], &(tpi_load_opts){.comm = comm, .n_threads = 1}, &err)) {
        fprintf(stderr, "tp_spin: %s\n", err.msg);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/rank%d.pid", argv[1], tpi_comm_rank(comm));
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    int32_t ids[] = {256, 1, 2, 3, 4, 5, 6, 7};
    int64_t len = 8;
    float *logits = malloc(8 * 258 * sizeof *logits);
    for (;;)
        if (tpi_model_logits(m, ids, &len, 1, logits, &err)) {
            tpi_comm_status(comm, &err);
            fprintf(stderr, "tp_spin rank %d: %s\n", tpi_comm_rank(comm), err.msg);
            tpi_comm_abort(comm, 1);
        }
}
