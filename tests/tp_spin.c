/* A rank that keeps running forward passes until killed, for the failure
 * test: it writes its pid to $1/rank<r>.pid once the model is loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tpinfer.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tp_spin PIDDIR MODELDIR\n");
        return 2;
    }
    tpi_comm *comm;
    tpi_model *m;
    tpi_error err = {0};
    /* failure.sh starts it under mpirun */
    if (tpi_comm_create(&comm, &(tpi_comm_opts){.kind = "mpi"}, &argc, &argv, &err) ||
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
            fprintf(stderr, "tp_spin rank %d: %s\n", tpi_comm_rank(comm), err.msg);
            tpi_comm_abort(comm, 1);
        }
}
