/* Fuzzes the checkpoint index: the input up to its first NUL is
 * model.safetensors.index.json, in a directory holding two small valid shards
 * (model-00001-of-00002.safetensors: "a", "b"; model-00002-of-00002: "c").
 * What follows a NUL, if any, replaces shard 1 for this run, so the fuzzer
 * also reaches the index/shard cross-checks with a malformed shard. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "io/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char shard1[] = "model-00001-of-00002.safetensors";
static const char shard2[] = "model-00002-of-00002.safetensors";

static void write_shard(const char *name, const tpi_st_out *t, int64_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fz_dir(), name);
    tpi_error err = {0};
    if (tpi_st_write(path, t, n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
}

static void write_valid_shard1(void)
{
    static const float a[4] = {1, 2, 3, 4};
    static const uint16_t b[3] = {0x3c00, 0x4000, 0x4200};
    const tpi_st_out t[] = {{"a", TPI_F32, 2, {2, 2}, a}, {"b", TPI_F16, 1, {3}, b}};
    write_shard(shard1, t, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* shard 1 is rewritten only after a run that replaced it */
    static int shard1_state = -1; /* -1: not written, 0: valid, 1: fuzzed */
    if (shard1_state < 0) {
        static const uint16_t c[2] = {0x3f80, 0x4000};
        const tpi_st_out t[] = {{"c", TPI_BF16, 1, {2}, c}};
        write_shard(shard2, t, 1);
    }
    const uint8_t *shard;
    size_t shard_n, index_n = fz_split(data, size, &shard, &shard_n);
    if (shard) {
        if (fz_write(shard1, shard, shard_n))
            abort();
        shard1_state = 1;
    } else if (shard1_state != 0) {
        write_valid_shard1();
        shard1_state = 0;
    }
    if (fz_write("model.safetensors.index.json", data, index_n))
        abort();
    tpi_ckpt *c = NULL;
    tpi_error err = {0};
    if (tpi_ckpt_open(&c, fz_dir(), &err))
        return 0;
    for (int64_t i = 0; i < c->n_entries; i++) {
        const tpi_st_tensor *t;
        const tpi_st_file *f;
        if (tpi_ckpt_find(c, c->entries[i].t->name, &t, &f) || t != c->entries[i].t ||
            f != c->files[c->entries[i].file])
            abort();
    }
    tpi_ckpt_free(c);
    return 0;
}
