#ifndef TPI_TOOLS_SIGNALS_H
#define TPI_TOOLS_SIGNALS_H
/* SIGINT and SIGTERM in a rank of a multi-rank job (docs/BAD_INPUT.md,
 * "Ranks"): the library installs no handlers; the CLI does, here. */
#include "tpinfer.h"

/* Installs the default handlers for SIGINT and SIGTERM when comm has more
 * than one rank (a world of one keeps the default action: it dies with the
 * signal). A signal from this rank's parent (mpirun ending the job) kills
 * the rank quietly, as the default action would; any other sender's is
 * recorded (cli_signal) and ends comm's waiting (tpi_comm_interrupt), so the
 * collective in progress fails and cli_fail ends the job with 128 + the
 * signal. Blocking calls return EINTR (no SA_RESTART). A command that treats
 * a signal itself (serve: SIGTERM on rank 0 as a clean stop) installs its own
 * handler for it afterwards; cli_signal then never reports that signal. */
void cli_signals_install(tpi_comm *comm);
/* The first signal the handlers recorded (0: none) and, in *from, the pid
 * that sent it (0: the kernel or the terminal). */
int cli_signal(int *from);
/* Prints "tpinfer CMD: rank R: SIGTERM from pid P; ending the job" and ends
 * the job with 128 + the signal; returns that code where there is no job
 * to end. */
int cli_signal_exit(tpi_comm *comm, const char *cmd);
#endif
