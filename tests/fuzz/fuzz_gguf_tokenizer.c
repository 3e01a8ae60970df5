/* Fuzzes a tokenizer read from GGUF metadata (src/tokenizer/gguf_*.c, through
 * the GGUF reader): the input is a whole .gguf file. When it loads, fixed
 * texts are encoded and decoded (ids from encode, then every id of the
 * vocabulary edges), and its chat template is loaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tpinfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode_decode(const tpi_tokenizer *t, const char *text)
{
    int32_t *ids = NULL;
    size_t n = 0;
    tpi_error err = {0};
    for (int special = 0; special < 2; special++) {
        if (tpi_tokenizer_encode(t, text, strlen(text), special, &ids, &n, &err)) {
            if (!err.msg[0])
                abort(); /* an error always says what */
            continue;
        }
        char *back = NULL;
        size_t len = 0;
        if (!tpi_tokenizer_decode(t, ids, n, special, &back, &len, &err) && strlen(back) > len)
            abort(); /* NUL-terminated at its length */
        free(back);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const texts[] = {"Hello world", " ab <s>a</s>  \n\t12345", "\xC3\xA4\xE2\x96\x81\xF0\x9F\xA6\x99"};
    if (fz_write("model.gguf", data, size))
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.gguf", fz_dir());
    tpi_tokenizer *t = NULL;
    tpi_error err = {0};
    if (tpi_tokenizer_load(&t, path, &err)) {
        if (!err.msg[0] || t)
            abort(); /* a refusal says why and leaves nothing */
    } else {
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            encode_decode(t, texts[i]);
        int64_t n = tpi_tokenizer_vocab_size(t);
        int32_t edge[4] = {0, (int32_t)(n - 1), tpi_tokenizer_bos(t) >= 0 ? tpi_tokenizer_bos(t) : 0, 0};
        char *back = NULL;
        if (!tpi_tokenizer_decode(t, edge, 4, 0, &back, NULL, &err))
            free(back);
        tpi_tokenizer_free(t);
    }
    tpi_chat_template *ct = NULL;
    if (!tpi_chat_template_load(&ct, path, &err))
        tpi_chat_template_free(ct);
    return 0;
}
