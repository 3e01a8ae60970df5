#ifndef TPI_TOOLS_LAUNCH_H
#define TPI_TOOLS_LAUNCH_H
/* Re-executes `tpinfer argv...` as n ranks under mpirun; returns only on
 * failure. `serve` runs mpirun as a child instead and returns its exit code
 * (SIGINT and SIGTERM reach the ranks as SIGUSR1, a clean stop). */
int launch_ranks(int n, int argc, char **argv);
#endif
