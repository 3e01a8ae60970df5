/* Fuzzes tokenizer.json loading and encode/decode. The first input byte is a
 * set of flags:
 *   bit 0: 0 = the rest is tokenizer.json, NUL, the text, and (after another
 *          NUL, if any) tokenizer_config.json: the files themselves are fuzzed;
 *          1 = the rest is the text, encoded with a fixed tokenizer (bit 1
 *          picks the byte-level BPE or the SentencePiece-style one, both read
 *          once from this target's seed corpus);
 *   bit 2: add_special for encode; bit 3: skip_special for decode;
 *   bit 4: decode the text's bytes as little-endian 16-bit ids (any id, in the
 *          vocabulary or not) instead of the ids encode gives.
 * Round trips are not compared with the text (normalizers lose information),
 * but the streaming decode (of up to 256 ids) must equal tpi_tokenizer_decode,
 * as tpinfer.h promises. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tpinfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tpi_tokenizer *fixed[2];

/* Loads the tokenizer.json held in a seed file (flags byte, JSON, NUL, ...). */
static tpi_tokenizer *load_seed(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/%s", TPI_FUZZ_CORPUS, name);
    size_t n;
    uint8_t *seed = fz_read(path, &n);
    const uint8_t *rest;
    size_t rest_n;
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    if (!seed || n < 1 || fz_write("tokenizer.json", seed + 1, fz_split(seed + 1, n - 1, &rest, &rest_n)) ||
        tpi_tokenizer_load(&t, fz_dir(), &err)) {
        fprintf(stderr, "fuzz_tokenizer: cannot load the fixed tokenizer %s: %s\n", path, err.msg);
        abort();
    }
    free(seed);
    fz_remove("tokenizer.json");
    return t;
}

static void check_decode(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special)
{
    char *text = NULL;
    size_t len = 0;
    tpi_error err = {0};
    if (tpi_tokenizer_decode(t, ids, n, skip_special, &text, &len, &err))
        return;
    /* each push decodes a window of recent ids again; past a few hundred ids
     * the check costs more executions than it finds */
    if (n > 256) {
        free(text);
        return;
    }
    tpi_detok_stream *s = NULL;
    if (tpi_detok_stream_create(&s, t, skip_special, &err))
        abort();
    char *streamed = malloc(len + 1);
    size_t at = 0;
    const char *piece;
    size_t piece_n;
    for (size_t i = 0; i <= n; i++) {
        int rc = i < n ? tpi_detok_stream_push(s, ids[i], &piece, &piece_n, &err)
                       : tpi_detok_stream_flush(s, &piece, &piece_n, &err);
        if (rc || at + piece_n > len) {
            fprintf(stderr, "stream: %s (at %zu + %zu, decode gives %zu bytes)\n", err.msg, at, piece_n, len);
            abort();
        }
        memcpy(streamed + at, piece, piece_n);
        at += piece_n;
    }
    if (at != len || memcmp(streamed, text, len)) {
        fprintf(stderr, "stream and decode differ: \"%.*s\" vs \"%s\"\n", (int)at, streamed, text);
        abort();
    }
    free(streamed);
    tpi_detok_stream_free(s);
    free(text);
}

static void run_text(const tpi_tokenizer *t, uint8_t flags, const uint8_t *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    tpi_error err = {0};
    if (flags & 16) {
        n = len / 2;
        ids = malloc((n ? n : 1) * sizeof *ids);
        for (size_t i = 0; i < n; i++)
            ids[i] = (int32_t)(int16_t)(text[2 * i] | text[2 * i + 1] << 8);
    } else if (tpi_tokenizer_encode(t, (const char *)text, len, (flags >> 2) & 1, &ids, &n, &err)) {
        return;
    }
    check_decode(t, ids, n, (flags >> 3) & 1);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    if (flags & 1) {
        int which = (flags >> 1) & 1;
        if (!fixed[which])
            fixed[which] = load_seed(which ? "sp_style" : "bpe_bytelevel");
        run_text(fixed[which], flags, data + 1, size - 1);
        return 0;
    }
    const uint8_t *text, *config;
    size_t text_n, config_n, json_n = fz_split(data + 1, size - 1, &text, &text_n);
    if (text)
        text_n = fz_split(text, text_n, &config, &config_n);
    else
        config = NULL;
    if (fz_write("tokenizer.json", data + 1, json_n) || (config && fz_write("tokenizer_config.json", config, config_n)))
        abort();
    if (!config)
        fz_remove("tokenizer_config.json");
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    if (!tpi_tokenizer_load(&t, fz_dir(), &err)) {
        static const uint8_t dflt[] = "Hello, world! \xe2\x96\x81 12 <s>\xff";
        if (text)
            run_text(t, flags, text, text_n);
        else
            run_text(t, flags, dflt, sizeof dflt - 1);
        tpi_tokenizer_free(t);
    }
    return 0;
}
