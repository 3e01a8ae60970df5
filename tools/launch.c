/* `tpinfer -n N <command> ...`: the single-machine convenience of DESIGN.md.
 * It runs this program under the MPI launcher rather than inventing its
 * own, adding the flags users otherwise trip on, and stays as the parent:
 * it refuses a rank count the model or the machine cannot take before any
 * rank starts, and turns SIGINT and SIGTERM into one line and exit 130 or
 * 143 (docs/BAD_INPUT.md, "Ranks"). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"
#include "options.h"

#ifndef TPI_MPIEXEC
#define TPI_MPIEXEC "mpirun"
#endif

/* Ranks per core beyond which -n is refused: more ranks than cores only
 * share them (tensor parallelism gains nothing), and every rank is a
 * process with its MPI runtime; 8 per core still lets a test run 16 ranks
 * on 2 cores, while -n 1000 cannot start a thousand processes that
 * overwhelm the machine. mpirun itself takes any count, across machines. */
#define MAX_RANKS_PER_CORE 8

/* How long the launcher lets mpirun end on its own after a signal that may
 * have reached it too (a process-group kill) before passing it on: a second
 * signal makes mpirun exit at once, leaving its ranks behind. */
#define FORWARD_AFTER_S 1.0

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
    if (openmpi) /* no multi-line banners: the ranks and this launcher say what happened in one line */
        args[k++] = "-q";
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

/* The value of flag `name` (short "-m" or long "--model") in argv, as
 * getopt reads it: "-m DIR", "-mDIR", "--model DIR", "--model=DIR". */
static const char *flag_value(int argc, char **argv, const char *shrt, const char *lng)
{
    size_t ll = strlen(lng);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if ((!strcmp(a, lng) || (shrt && !strcmp(a, shrt))) && i + 1 < argc)
            return argv[i + 1];
        if (!strncmp(a, lng, ll) && a[ll] == '=')
            return a + ll + 1;
        if (shrt && !strncmp(a, shrt, 2) && a[2])
            return a + 2;
    }
    return NULL;
}

/* Returns 0, or prints why n ranks cannot run argv's command and returns
 * the exit code 2. A model the library cannot read is left to the ranks,
 * whose message names what is wrong. */
static int check_ranks(int n, int argc, char **argv)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && n > MAX_RANKS_PER_CORE * cores) {
        fprintf(stderr, "tpinfer: -n %d: at most %d ranks per core on one machine (%ld on its %ld cores): more only "
                "share the cores; across machines use 'mpirun -np N --hostfile FILE tpinfer ...'\n", n,
                MAX_RANKS_PER_CORE, MAX_RANKS_PER_CORE * cores, cores);
        return 2;
    }
    static const char *const loaders[] = {"chat", "generate", "logits", "serve"};
    int loads = 0;
    for (size_t i = 0; argc > 0 && i < sizeof loaders / sizeof loaders[0]; i++)
        loads |= !strcmp(argv[0], loaders[i]);
    const char *dir = loads ? flag_value(argc, argv, "-m", "--model") : NULL;
    int64_t max = 0;
    const char *field = NULL;
    tpi_error err = {0};
    if (!dir || tpi_model_max_ranks(dir, flag_value(argc, argv, NULL, "--tp-plan"), &max, &field, &err) || !field ||
        n <= max)
        return 0;
    fprintf(stderr, "tpinfer: -n %d: the model in %s splits over at most %lld ranks (%s = %lld: each rank needs "
            "whole attention heads)\n", n, dir, (long long)max, field, (long long)max);
    return 2;
}

static volatile sig_atomic_t got_signal, got_from, got_user;

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    if (!got_signal) {
        got_user = si->si_code == SI_USER;
        got_from = got_user ? si->si_pid : 0;
        got_signal = sig;
    }
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* After SIGINT or SIGTERM: one line, then mpirun ends the ranks (unless it
 * has already ended: reaped). A signal from the terminal reached mpirun too
 * (one process group); one sent by kill may have (a group kill) or not:
 * mpirun gets FORWARD_AFTER_S to end on its own before this passes SIGTERM
 * on. */
static void end_job(pid_t child, int reaped, int n)
{
    char from[48] = "";
    if (got_from)
        snprintf(from, sizeof from, " from pid %d", (int)got_from);
    fprintf(stderr, "tpinfer: %s%s to the launcher; ending the %d ranks\n", got_signal == SIGINT ? "SIGINT" : "SIGTERM",
            from, n);
    fflush(stderr);
    int status;
    for (int i = 0; !reaped && got_user && i < (int)(FORWARD_AFTER_S * 100); i++) {
        reaped = waitpid(child, &status, WNOHANG) == child;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (!reaped && got_user)
        kill(child, SIGTERM);
    while (!reaped && waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
}

/* Runs mpirun and returns the exit code: the signal's 128 + n when the
 * launcher was signalled, else mpirun's (which is the failing rank's). */
static int run_mpirun(char **args, int n)
{
    catch_signals();
    pid_t child = fork();
    if (child < 0) {
        perror("tpinfer: fork");
        return 1;
    }
    if (child == 0) {
        execvp(args[0], args);
        fprintf(stderr, "tpinfer: cannot run %s (install openmpi-bin): %s\n", args[0], strerror(errno));
        _exit(127);
    }
    int status = 0, reaped = 0;
    while (!reaped && !got_signal) {
        reaped = waitpid(child, &status, 0) == child;
        if (!reaped && errno != EINTR)
            return 1;
    }
    if (got_signal) {
        end_job(child, reaped, n);
        return 128 + got_signal;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    int code = WEXITSTATUS(status);
    /* A rank killed outright (the OOM killer's SIGKILL, a crash) says nothing itself. */
    if (code > 128 && code - 128 != SIGINT && code - 128 != SIGTERM && code - 128 < 65)
        fprintf(stderr, "tpinfer: a rank ended by signal %d (%s); the job ended\n", code - 128, strsignal(code - 128));
    return code;
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
    int rc = check_ranks(n, argc, argv);
    if (rc)
        return rc;
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
    /* serve stops cleanly on SIGINT or SIGTERM (every rank exits 0) */
    if (argc > 0 && !strcmp(argv[0], "serve"))
        rc = run_forwarding_stop(args);
    else
        rc = run_mpirun(args, n);
    free(args);
    return rc;
}
