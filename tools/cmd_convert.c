/* tpinfer convert: an HF checkpoint to one GGUF file that llama.cpp reads. */
#include <getopt.h>
#include <stdio.h>

#include "commands.h"
#include "tpinfer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tpinfer convert -m DIR --type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k --out FILE.gguf\n"
               "Writes the checkpoint in DIR as one GGUF v3 file: llama.cpp's metadata and tensor names,\n"
               "the tokenizer and chat template, the matrices (embedding included) in --type, norms and\n"
               "biases in f32. A K type falls back to q4_0/q8_0 for a matrix whose columns are not a\n"
               "multiple of 256; a matrix no block of the type fits is an error naming it.\n");
}

typedef struct convert_args {
    tpi_convert_opts o;
} convert_args;

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(convert_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"type", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *a = (convert_args){0};
    int c;
    while ((c = getopt_long(argc, argv, "m:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->o.model_dir = optarg; break;
        case 't': a->o.type = optarg; break;
        case 'o': a->o.out_path = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (!a->o.model_dir || !a->o.type || !a->o.out_path || optind != argc) {
        fprintf(stderr, "tpinfer convert: %s\n",
                optind != argc ? "unexpected argument" : "-m, --type and --out are required");
        usage(stderr);
        return 2;
    }
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    convert_args a;
    int code = parse_args(&a, argc, argv);
    if (code)
        return code < 0 ? 0 : code;
    tpi_error err = {0};
    tpi_convert_info info;
    if (tpi_convert(&a.o, &info, &err)) {
        fprintf(stderr, "tpinfer convert: %s\n", err.msg);
        return err.code == TPI_EINVAL ? 2 : 1;
    }
    if (info.n_fallback)
        fprintf(stderr, "%d matrices in another type (columns not a multiple of 256): %s%s\n", info.n_fallback,
                info.fallback, info.n_fallback > 4 ? "; ..." : "");
    fprintf(stderr, "wrote %s: %lld tensors, %.1f MiB, tokenizer %s\n", a.o.out_path, (long long)info.n_tensors,
            (double)info.bytes / (1 << 20), info.tokenizer);
    return 0;
}
