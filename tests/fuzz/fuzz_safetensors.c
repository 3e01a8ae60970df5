/* Fuzzes the safetensors reader: the input is a whole .safetensors file. On
 * success every tensor's first and last byte is read (ASan checks they lie in
 * the mapping) and tpi_st_find must find every name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_write("f.safetensors", data, size))
        abort();
    char path[512];
    snprintf(path, sizeof path, "%s/f.safetensors", fz_dir());
    tpi_st_file *f = NULL;
    tpi_error err = {0};
    if (tpi_st_open(&f, path, &err))
        return 0;
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const tpi_st_tensor *t = &f->tensors[i];
        if (t->bytes)
            sink ^= t->data[0] ^ t->data[t->bytes - 1];
        if (tpi_st_find(f, t->name) != t)
            abort();
    }
    (void)sink;
    tpi_st_close(f);
    return 0;
}
