/* tpinfer tokenize: text -> ids and token strings, or ids -> text. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "tpinfer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tpinfer tokenize -m DIR [--no-special] TEXT\n"
            "       tpinfer tokenize -m DIR --decode ID,ID,... [--skip-special]\n"
            "\n"
            "  -m, --model DIR     a model directory, or one holding only tokenizer.json\n"
            "                      (and tokenizer_config.json), or a .gguf file\n"
            "  --no-special        do not add BOS/EOS (transformers' add_special_tokens=False);\n"
            "                      special tokens written in TEXT are still recognised\n"
            "  --decode IDS        print the text of comma-separated ids instead\n"
            "  --skip-special      with --decode: leave special tokens out\n"
            "\n"
            "Encoding prints the ids comma-separated on the first line, then one token\n"
            "string per line as tokenizer.json spells it (\"Ġthe\", \"▁the\", \"<0x0A>\").\n"
            "TEXT \"-\" reads the text from standard input; put -- before a TEXT that starts\n"
            "with '-'.\n");
}

static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += k;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    *len = n;
    return buf;
}

static int encode(const tpi_tokenizer *t, const char *text, size_t len, int add_special)
{
    int32_t *ids;
    size_t n;
    tpi_error err = {0};
    if (tpi_tokenizer_encode(t, text, len, add_special, &ids, &n, &err)) {
        fprintf(stderr, "tpinfer tokenize: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", (int)ids[i]);
    printf("\n");
    for (size_t i = 0; i < n; i++)
        printf("%s\n", tpi_tokenizer_piece(t, ids[i]));
    free(ids);
    return 0;
}

static int decode(const tpi_tokenizer *t, const char *list, int skip_special)
{
    int32_t *ids;
    int64_t n;
    if (cli_parse_ids(list, "--decode", &ids, &n))
        return 2;
    char *text;
    size_t len;
    tpi_error err = {0};
    int rc = tpi_tokenizer_decode(t, ids, (size_t)n, skip_special, &text, &len, &err);
    free(ids);
    if (rc) {
        fprintf(stderr, "tpinfer tokenize: %s\n", err.msg);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    printf("\n");
    free(text);
    return 0;
}

typedef struct tokenize_args {
    const char *dir, *ids, *text; /* ids: --decode's list; text: the TEXT argument */
    int add_special, skip_special;
} tokenize_args;

/* Returns 0, the exit code of a usage error (2), or -1 after --help. */
static int parse_args(tokenize_args *a, int argc, char **argv)
{
    enum { OPT_NO_SPECIAL = 256, OPT_DECODE, OPT_SKIP_SPECIAL };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"no-special", no_argument, 0, OPT_NO_SPECIAL},
        {"decode", required_argument, 0, OPT_DECODE},  {"skip-special", no_argument, 0, OPT_SKIP_SPECIAL},
        {"help", no_argument, 0, 'h'},                 {0, 0, 0, 0},
    };
    a->add_special = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->dir = optarg; break;
        case OPT_NO_SPECIAL: a->add_special = 0; break;
        case OPT_DECODE: a->ids = optarg; break;
        case OPT_SKIP_SPECIAL: a->skip_special = 1; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    int n_text = argc - optind;
    if (!a->dir || (a->ids ? n_text != 0 : n_text != 1)) {
        fprintf(stderr, "tpinfer tokenize: %s\n",
                !a->dir ? "-m DIR is required" : a->ids ? "--decode takes no TEXT" : "expected one TEXT argument");
        usage(stderr);
        return 2;
    }
    a->text = a->ids ? NULL : argv[optind];
    return 0;
}

/* Encodes the TEXT argument, or standard input for "-". */
static int encode_arg(const tpi_tokenizer *t, const tokenize_args *a)
{
    if (strcmp(a->text, "-"))
        return encode(t, a->text, strlen(a->text), a->add_special);
    size_t len;
    char *text = read_stdin(&len);
    if (!text)
        fprintf(stderr, "tpinfer tokenize: cannot read standard input\n");
    int rc = text ? encode(t, text, len, a->add_special) : 1;
    free(text);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_args a = {0};
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    int code = parse_args(&a, argc, argv);
    if (code == 0 && tpi_tokenizer_load(&t, a.dir, &err)) {
        fprintf(stderr, "tpinfer tokenize: %s\n", err.msg);
        code = 1;
    }
    if (code == 0)
        code = a.ids ? decode(t, a.ids, a.skip_special) : encode_arg(t, &a);
    tpi_tokenizer_free(t);
    return code < 0 ? 0 : code;
}
