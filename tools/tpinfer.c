/* tpinfer command line: dispatches to one function per command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "launch.h"
#include "options.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"chat", cmd_chat, "talk with an instruct model (llama3, llama2, mistral, chatml formats)"},
    {"convert", cmd_convert, "write a checkpoint as one GGUF file (f32 ... q4_k) that llama.cpp reads"},
    {"generate", cmd_generate, "continue prompts with the model, streaming the text"},
    {"logits", cmd_logits, "print the top next tokens (or all logits) for given ids"},
    {"make-model", cmd_make_model, "write a checkpoint with random weights for a named shape"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server (chat, completions, streaming)"},
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

int main(int argc, char **argv)
{
    opts_prefer_short_spin(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "-n") || !strcmp(argv[1], "--ranks")) {
        int64_t n = 0;
        if (argc < 4 || cli_parse_int(argv[2], 1, 1 << 20, &n)) {
            fprintf(stderr, "tpinfer: %s: expected a rank count in [1, 1048576] and a command, found \"%s\"\n",
                    argv[1], argc > 2 ? argv[2] : "");
            return 2;
        }
        return launch_ranks((int)n, argc - 3, argv + 3);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tpinfer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
