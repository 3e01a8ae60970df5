#ifndef TPI_TOOLS_LAUNCH_H
#define TPI_TOOLS_LAUNCH_H
/* Runs `tpinfer argv...` as n ranks under mpirun and returns the exit code
 * (the failing rank's, or 128 + a signal the launcher received). `serve`
 * instead gets SIGINT and SIGTERM passed on as SIGUSR1, a clean stop, and
 * returns mpirun's exit code (0). */
int launch_ranks(int n, int argc, char **argv);
#endif
