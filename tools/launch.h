#ifndef TPI_TOOLS_LAUNCH_H
#define TPI_TOOLS_LAUNCH_H
/* Re-executes `tpinfer argv...` as n ranks under mpirun; returns only on failure. */
int launch_ranks(int n, int argc, char **argv);
#endif
