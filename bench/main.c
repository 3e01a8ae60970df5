/* tpinfer-bench: measures tpinfer on this machine (bench.h). Apart from the
 * product: it links OpenBLAS for a yardstick and includes the library's
 * private headers. */
#include <string.h>

#include "bench.h"
#include "options.h"

int main(int argc, char **argv)
{
    opts_prefer_short_spin(argv); /* the spin tpinfer runs with, so the figures are its figures */
    if (argc > 1 && !strcmp(argv[1], "worker"))
        return bench_worker(argc - 1, argv + 1);
    return bench_sweep(argc, argv);
}
