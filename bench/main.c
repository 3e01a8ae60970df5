/* tpinfer-bench: measures tpinfer on this machine (bench.h). Apart from the
 * product: it links OpenBLAS for a yardstick and includes the library's
 * private headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* The same OpenMP spin as the tpinfer command line sets (tools/tpinfer.c),
 * so that the figures are the ones tpinfer gets: libgomp's default spin
 * loses whole scheduler ticks when a core is shared, and sleeping at once
 * costs a futex wake-up per parallel region. libgomp reads it once at
 * start, so set it and re-execute unless the user chose. */
static void prefer_short_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    setenv("GOMP_SPINCOUNT", "2000", 1);
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    prefer_short_spin(argv);
    if (argc > 1 && !strcmp(argv[1], "worker"))
        return bench_worker(argc - 1, argv + 1);
    return bench_sweep(argc, argv);
}
