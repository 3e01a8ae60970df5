#include "signals.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static tpi_comm *volatile the_comm;
static volatile sig_atomic_t got_signal, got_from;

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    /* mpirun (or the daemon that started this rank) is ending the job: it
     * reports, so this rank only dies, as the default action would. */
    if (si->si_code == SI_USER && si->si_pid == getppid()) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    if (!got_signal) {
        got_from = si->si_code == SI_USER ? si->si_pid : 0;
        got_signal = sig;
    }
    tpi_comm_interrupt(the_comm, 128 + sig);
}

void cli_signals_install(tpi_comm *comm)
{
    if (tpi_comm_size(comm) < 2)
        return;
    the_comm = comm;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_signal(int *from)
{
    if (from)
        *from = got_from;
    return got_signal;
}

int cli_signal_exit(tpi_comm *comm, const char *cmd)
{
    int from, sig = cli_signal(&from);
    char who[48] = "";
    if (from)
        snprintf(who, sizeof who, " from pid %d", from);
    fprintf(stderr, "tpinfer %s: rank %d: %s%s; ending the job\n", cmd, tpi_comm_rank(comm),
            sig == SIGINT ? "SIGINT" : "SIGTERM", who);
    fflush(stderr);
    tpi_comm_abort(comm, 128 + sig);
    return 128 + sig;
}
