/* Fuzzes the GGUF reader and what reads its metadata: the input is a whole
 * .gguf file. On success every tensor's first and last byte is read (ASan
 * checks they lie in the mapping), tpi_gguf_find_tensor finds every name,
 * every key's value and array element is read through the typed getters,
 * and the model config and the transformers-named tensor list are built. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "fuzz_util.h"
#include "io/checkpoint.h"
#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_values(const tpi_gguf *g, volatile uint8_t *sink)
{
    for (int64_t i = 0; i < g->n_kv; i++) {
        const tpi_gguf_kv *kv = &g->kv[i];
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.s);
        int64_t v;
        double d;
        int b;
        tpi_gguf_str s;
        tpi_gguf_type t;
        tpi_error err = {0};
        tpi_gguf_get_i64(g, key, &v, &err);
        tpi_gguf_get_f64(g, key, &d, &err);
        tpi_gguf_get_bool(g, key, &b, &err);
        if (!tpi_gguf_get_str(g, key, &s, &err) && s.len)
            *sink ^= (uint8_t)(s.s[0] ^ s.s[s.len - 1]);
        if (tpi_gguf_get_arr(g, key, &t, &v, &err))
            continue;
        for (int64_t k = 0; k < kv->arr_n; k++) {
            if (t == TPI_GGUF_STRING) {
                tpi_gguf_str e = tpi_gguf_arr_str(g, kv, k);
                if (e.len)
                    *sink ^= (uint8_t)(e.s[0] ^ e.s[e.len - 1]);
            } else if (t == TPI_GGUF_F32 || t == TPI_GGUF_F64) {
                *sink ^= (uint8_t)(tpi_gguf_arr_f64(kv, k) > 0);
            } else {
                *sink ^= (uint8_t)tpi_gguf_arr_i64(kv, k);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_write("f.gguf", data, size))
        abort();
    char path[512];
    snprintf(path, sizeof path, "%s/f.gguf", fz_dir());
    tpi_gguf *g = NULL;
    tpi_error err = {0};
    if (tpi_gguf_open(&g, path, &err))
        return 0;
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const tpi_gguf_tensor *t = &g->tensors[i];
        if (t->bytes)
            sink ^= t->data[0] ^ t->data[t->bytes - 1];
        if (tpi_gguf_find_tensor(g, t->name) != t)
            abort();
    }
    read_values(g, &sink);
    tpi_config cfg;
    tpi_config_from_gguf(&cfg, g, &err);
    tpi_gguf_close(g);
    tpi_ckpt *c = NULL;
    if (!tpi_ckpt_open(&c, path, &err))
        tpi_ckpt_free(c);
    (void)sink;
    return 0;
}
