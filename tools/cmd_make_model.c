/* tpinfer make-model: a checkpoint directory with random weights. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
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

typedef struct make_args {
    const char *shape, *dtype, *out;
    uint64_t seed;
} make_args;

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(make_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"shape", required_argument, 0, 's'}, {"dtype", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},   {"seed", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    *a = (make_args){.dtype = "f32", .seed = 1234};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': a->shape = optarg; break;
        case 'd': a->dtype = optarg; break;
        case 'o': a->out = optarg; break;
        case 'r':
            if (cli_parse_u64(optarg, &a->seed))
                return cli_bad_value("make-model", "--seed", "an integer in [0, 18446744073709551615]", optarg);
            break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (!a->shape || !a->out || optind != argc) {
        fprintf(stderr, "tpinfer make-model: %s\n",
                !a->shape || !a->out ? "--shape and --out are required" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    return 0;
}

int cmd_make_model(int argc, char **argv)
{
    make_args a;
    int code = parse_args(&a, argc, argv);
    if (code)
        return code < 0 ? 0 : code;
    tpi_error err = {0};
    if (tpi_make_model(a.shape, a.dtype, a.out, a.seed, &err)) {
        fprintf(stderr, "tpinfer make-model: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "wrote %s (%s, %s)\n", a.out, a.shape, a.dtype);
    return 0;
}
