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
    {"bench", cmd_bench, "prefill/decode/all-reduce benchmark over batch sizes and rank counts"},
    {"bench-worker", cmd_bench_worker, "(internal) the measuring half of bench, one per rank"},
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

/* OpenMP threads that spin while waiting lose whole scheduler ticks when a
 * core is shared (another rank, another job): decode slowed 10x that way on
 * a loaded 2-core machine, while passive waiting cost nothing measurable on
 * a quiet one (docs/PERFORMANCE.md). libgomp reads the policy once at start,
 * so set it and re-execute unless the user chose one. */
static void prefer_passive_wait(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    prefer_passive_wait(argv);
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
