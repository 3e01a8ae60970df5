/* `tpinfer -n N <command> ...`: the single-machine convenience of DESIGN.md.
 * It re-executes this program under the MPI launcher rather than inventing
 * its own, adding the flags users otherwise trip on. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"
#include "options.h"

#ifndef TPI_MPIEXEC
#define TPI_MPIEXEC "mpirun"
#endif

/* mpirun -np N [flags] SELF ARGV...: a NULL-terminated array (malloc'd; its
 * strings are the arguments') or NULL; notes[cap] says which flags were added. */
static char **mpirun_argv(int n, char *np, char *self, int argc, char **argv, char *notes, size_t cap)
{
    char **args = calloc((size_t)argc + 16, sizeof *args);
    if (!args)
        return NULL;
    int k = 0, openmpi = 1;
#ifdef TPI_MPI_IS_MPICH
    openmpi = 0;
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    args[k++] = TPI_MPIEXEC;
    args[k++] = "-np";
    args[k++] = np;
    notes[0] = 0;
    if (openmpi && geteuid() == 0) {
        args[k++] = "--allow-run-as-root";
        snprintf(notes, cap, " (running as root: added --allow-run-as-root)");
    }
    if (openmpi && n > cores) {
        args[k++] = "--oversubscribe";
        snprintf(notes + strlen(notes), cap - strlen(notes),
                 " (%d ranks > %ld cores: added --oversubscribe, one thread per rank)", n, cores);
    }
    args[k++] = self;
    for (int i = 0; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    return args;
}

static volatile pid_t launcher;

static void forward_stop(int sig)
{
    (void)sig;
    if (launcher > 0)
        kill(launcher, SIGUSR1);
}

/* `serve` stops on SIGINT or SIGTERM with every rank exiting 0, but mpirun
 * given either aborts the job (exit 1); SIGUSR1 it forwards to the ranks
 * and then exits as they do. So mpirun runs in its own process group (a
 * terminal's Ctrl-C reaches only this process), its stdin from /dev/null
 * (a background group must not read the terminal), and the stop signals
 * reach it as SIGUSR1, which serve takes as a stop. */
static int run_forwarding_stop(char **args)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("tpinfer: fork");
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execvp(args[0], args);
        fprintf(stderr, "tpinfer: cannot run %s (install openmpi-bin): %s\n", args[0], strerror(errno));
        _exit(1);
    }
    launcher = pid;
    struct sigaction sa = {.sa_handler = forward_stop, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int launch_ranks(int n, int argc, char **argv)
{
    if (opts_launched()) {
        fprintf(stderr, "tpinfer: -n given inside an MPI job; drop -n or the outer launcher\n");
        return 2;
    }
    char self[4096], np[32], notes[256];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "tpinfer: cannot find this program's path to re-execute it\n");
        return 1;
    }
    self[len] = 0;
    snprintf(np, sizeof np, "%d", n);
    char **args = mpirun_argv(n, np, self, argc, argv, notes, sizeof notes);
    if (!args) {
        fprintf(stderr, "tpinfer: out of memory\n");
        return 1;
    }
    fprintf(stderr, "tpinfer: starting %d ranks with %s -np %d%s\n", n, TPI_MPIEXEC, n, notes);
    fflush(stderr);
    if (argc > 0 && !strcmp(argv[0], "serve")) {
        int rc = run_forwarding_stop(args);
        free(args);
        return rc;
    }
    execvp(args[0], args);
    fprintf(stderr, "tpinfer: cannot run %s (install openmpi-bin): ", TPI_MPIEXEC);
    perror(NULL);
    free(args);
    return 1;
}
