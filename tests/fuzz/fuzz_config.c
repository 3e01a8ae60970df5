/* Fuzzes config.json parsing: the input up to its first NUL is config.json;
 * what follows a NUL, if any, is generation_config.json (its eos ids are
 * checked against the config's vocabulary). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *gen;
    size_t gen_n, cfg_n = fz_split(data, size, &gen, &gen_n);
    if (fz_write("config.json", data, cfg_n))
        abort();
    if (gen) {
        if (fz_write("generation_config.json", gen, gen_n))
            abort();
    } else {
        fz_remove("generation_config.json");
    }
    tpi_config cfg;
    tpi_error err = {0};
    if (tpi_config_load(&cfg, fz_dir(), &err))
        return 0;
    volatile int64_t sink = 0;
    for (int64_t l = 0; l < cfg.n_layers; l++)
        sink += tpi_config_window(&cfg, l);
    (void)sink;
    return 0;
}
