/* tpinfer make-model: a checkpoint directory with random weights. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "tpinfer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer make-model --shape NAME --out DIR [--dtype f32|bf16|f16] [--seed N]\n"
               "shapes:");
    for (const char *const *s = tpi_make_model_shapes(); *s; s++)
        fprintf(f, " %s", *s);
    fprintf(f, "\nWrites config.json, generation_config.json, model.safetensors (random normal\n"
               "weights), tokenizer.json and tokenizer_config.json into DIR.\n");
}

int cmd_make_model(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shape", required_argument, 0, 's'}, {"dtype", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},   {"seed", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    const char *shape = NULL, *dtype = "f32", *out = NULL;
    unsigned long long seed = 1234;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': shape = optarg; break;
        case 'd': dtype = optarg; break;
        case 'o': out = optarg; break;
        case 'r': seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!shape || !out || optind != argc) {
        fprintf(stderr, "tpinfer make-model: --shape and --out are required\n");
        usage(stderr);
        return 2;
    }
    tpi_error err = {0};
    if (tpi_make_model(shape, dtype, out, seed, &err)) {
        fprintf(stderr, "tpinfer make-model: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "wrote %s (%s, %s)\n", out, shape, dtype);
    return 0;
}
