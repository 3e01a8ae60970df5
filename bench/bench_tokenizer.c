/* Tokenizer benchmark: load time of llama3's tokenizer.json, encode
 * throughput on ~1 MB of mixed text, and the 1 MB no-space word against 1 MB
 * of prose (BPE merging must stay near-linear in the word length).
 * usage: bench_tokenizer [MODELS_DIR]   (default: $TPI_SHARED/models) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "tpinfer.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (*n + l < cap) {
        memcpy(buf + *n, s, l);
        *n += l;
    }
}

/* ~`bytes` of mixed text: English sentences from a word list, numbers,
 * made-up words (cache misses), code lines and non-Latin phrases. */
static char *mixed_text(size_t bytes, size_t *len)
{
    static const char *words[] = {
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on",
        "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they",
        "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
        "when", "will", "would", "who", "so", "no", "model", "tensor", "parallel", "inference", "token",
        "language", "weights", "attention", "layer", "gradient", "processor", "memory", "distributed",
        "throughput", "latency", "benchmark", "transformer", "sequence", "vocabulary", "encoding",
        "Wednesday", "December", "government", "international", "responsibility", "understanding",
    };
    static const char *extra[] = {
        "\n\nint main(void) {\n    printf(\"%d\\n\", x[i] + y);\n    return 0;\n}\n\n",
        " 東京都の天気は晴れです。", " Привет, как дела? ", " नमस्ते दुनिया ", " مرحبا بالعالم ",
        " naïve café résumé ", " 👍🏽 ", " https://example.com/path?q=1&r=2 ", "\n",
    };
    size_t cap = bytes + 1024, n = 0;
    char *buf = malloc(cap), tmp[64];
    while (n < bytes) {
        uint32_t r = next() % 100;
        if (r < 75)
            put(buf, &n, cap, words[next() % (sizeof words / sizeof words[0])]);
        else if (r < 85) {
            snprintf(tmp, sizeof tmp, "%u", next() % 100000);
            put(buf, &n, cap, tmp);
        } else if (r < 93) {
            size_t k = 3 + next() % 8;
            for (size_t i = 0; i < k; i++)
                tmp[i] = (char)('a' + next() % 26);
            tmp[k] = 0;
            put(buf, &n, cap, tmp);
        } else
            put(buf, &n, cap, extra[next() % (sizeof extra / sizeof extra[0])]);
        put(buf, &n, cap, next() % 12 ? " " : ". ");
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Only the letters of text: one pre-tokenized word for the llama3 pattern. */
static char *letters_only(const char *text, size_t len, size_t *out_len)
{
    char *w = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))
            w[n++] = text[i];
    w[n] = 0;
    *out_len = n;
    return w;
}

static double encode_time(const tpi_tokenizer *t, const char *text, size_t len, size_t *n_ids)
{
    int32_t *ids;
    tpi_error err = {0};
    double a = tpi_seconds();
    if (tpi_tokenizer_encode(t, text, len, 0, &ids, n_ids, &err)) {
        fprintf(stderr, "encode: %s\n", err.msg);
        exit(1);
    }
    double b = tpi_seconds();
    free(ids);
    return b - a;
}

static tpi_tokenizer *load(const char *models, const char *name, double *secs)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", models, name);
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    double a = tpi_seconds();
    if (tpi_tokenizer_load(&t, dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    *secs = tpi_seconds() - a;
    return t;
}

int main(int argc, char **argv)
{
    char def[4096];
    const char *shared = getenv("TPI_SHARED");
    snprintf(def, sizeof def, "%s/models", shared && *shared ? shared : TPI_SHARED_DEFAULT);
    const char *models = argc > 1 ? argv[1] : def;

    double best_load = 1e9, secs;
    for (int i = 0; i < 3; i++) {
        tpi_tokenizer *t = load(models, "llama3-tokenizer", &secs);
        tpi_tokenizer_free(t);
        if (secs < best_load)
            best_load = secs;
    }
    printf("llama3 tokenizer.json load: %.3f s (best of 3)\n", best_load);

    size_t len, wlen, n_ids, n_word;
    /* The no-space word: the letters of ~1.7 MB of the same text, ~1 MB. */
    char *src = mixed_text(1700000, &len);
    char *word = letters_only(src, len, &wlen);
    free(src);
    char *text = mixed_text(1 << 20, &len);
    const char *names[] = {"llama3-tokenizer", "qwen3-tokenizer", "gpt2-tokenizer", "mistral-7b-tokenizer"};
    for (int m = 0; m < 4; m++) {
        tpi_tokenizer *t = load(models, names[m], &secs);
        double cold = encode_time(t, text, len, &n_ids), warm = 1e9;
        for (int i = 0; i < 3; i++) {
            secs = encode_time(t, text, len, &n_ids);
            if (secs < warm)
                warm = secs;
        }
        double tw = encode_time(t, word, wlen, &n_word);
        /* The prose reference for the no-space word: the same letters with their spaces. */
        printf("%-22s mixed %.2f MB -> %zu ids: %.1f MB/s first run, %.1f MB/s warm cache | "
               "no-space %.2f MB -> %zu ids: %.1f MB/s, %.2fx the first-run prose time per byte\n",
               names[m], (double)len / 1e6, n_ids, (double)len / 1e6 / cold, (double)len / 1e6 / warm,
               (double)wlen / 1e6, n_word, (double)wlen / 1e6 / tw, (tw / (double)wlen) / (cold / (double)len));
        if (m == 0) {
            /* Scaling of one long word: flat time per byte means no quadratic term. */
            printf("  llama3 no-space word scaling:");
            for (size_t k = wlen / 4; k <= wlen; k *= 2) {
                double tk = encode_time(t, word + wlen - k, k, &n_word);
                printf(" %.2f MB %.3f s (%.0f ns/byte);", (double)k / 1e6, tk, 1e9 * tk / (double)k);
            }
            printf("\n");
        }
        tpi_tokenizer_free(t);
    }
    free(text);
    free(word);
    return 0;
}
