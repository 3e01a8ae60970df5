/* `tpinfer -n N <command> ...`: the single-machine convenience of DESIGN.md.
 * It re-executes this program under the MPI launcher rather than inventing
 * its own, adding the flags users otherwise trip on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

#ifndef TPI_MPIEXEC
#define TPI_MPIEXEC "mpirun"
#endif

int launch_ranks(int n, int argc, char **argv)
{
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) {
        fprintf(stderr, "tpinfer: -n given inside an MPI job; drop -n or the outer launcher\n");
        return 2;
    }
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "tpinfer: cannot find this program's path to re-execute it\n");
        return 1;
    }
    self[len] = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char np[32];
    snprintf(np, sizeof np, "%d", n);
    char **args = calloc((size_t)argc + 16, sizeof *args);
    if (!args)
        return 1;
    int k = 0;
    args[k++] = TPI_MPIEXEC;
    args[k++] = "-np";
    args[k++] = np;
    int openmpi = 1;
#ifdef TPI_MPI_IS_MPICH
    openmpi = 0;
#endif
    char notes[256] = "";
    if (openmpi && geteuid() == 0) {
        args[k++] = "--allow-run-as-root";
        strcat(notes, " (running as root: added --allow-run-as-root)");
    }
    if (openmpi && n > cores) {
        args[k++] = "--oversubscribe";
        snprintf(notes + strlen(notes), sizeof notes - strlen(notes),
                 " (%d ranks > %ld cores: added --oversubscribe, one thread per rank)", n, cores);
    }
    args[k++] = self;
    for (int i = 0; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    fprintf(stderr, "tpinfer: starting %d ranks with %s -np %d%s\n", n, TPI_MPIEXEC, n, notes);
    fflush(stderr);
    execvp(args[0], args);
    fprintf(stderr, "tpinfer: cannot run %s (install openmpi-bin): ", TPI_MPIEXEC);
    perror(NULL);
    free(args);
    return 1;
}
