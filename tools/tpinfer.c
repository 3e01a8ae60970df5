/* tpinfer command line: dispatches to one function per command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "launch.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"chat", cmd_chat, "talk with an instruct model (llama3, llama2, mistral, chatml formats)"},
    {"generate", cmd_generate, "continue prompts with the model, streaming the text"},
    {"logits", cmd_logits, "print the top next tokens (or all logits) for given ids"},
    {"make-model", cmd_make_model, "write a checkpoint with random weights for a named shape"},
    {"tokenize", cmd_tokenize, "text to token ids and pieces (or --decode ids to text)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer [-n RANKS] <command> [options]\n\n"
               "  -n, --ranks N   run the command as N ranks on this machine (re-executes under mpirun);\n"
               "                  across machines use 'mpirun -np N --hostfile FILE tpinfer <command> ...'\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'tpinfer <command> --help' describes a command's options.\n");
}

/* How long an idle OpenMP thread spins before it sleeps. libgomp's default
 * (300,000 spins, ~ms) loses whole scheduler ticks when a core is shared
 * (another rank, another job): decode slowed 10x that way on a loaded 2-core
 * machine. Sleeping at once (OMP_WAIT_POLICY=passive, v1 and v2) costs a
 * futex wake-up in each of the ~180 parallel regions of a decoded token.
 * 2,000 spins (tens of microseconds) bridge the gaps between regions: in
 * alternating runs it decoded 7-24 % faster than passive on a quiet machine
 * and 7-32 % faster with both cores loaded (docs/PERFORMANCE.md). libgomp
 * reads this once at start, so set it and re-execute unless the user chose. */
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
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "-n") || !strcmp(argv[1], "--ranks")) {
        int n = argc > 2 ? atoi(argv[2]) : 0;
        if (n < 1 || argc < 4) {
            fprintf(stderr, "tpinfer: -n needs a rank count >= 1 and a command\n");
            return 2;
        }
        return launch_ranks(n, argc - 3, argv + 3);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tpinfer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
