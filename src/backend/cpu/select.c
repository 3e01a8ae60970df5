/* Picks the CPU kernels at run time: the library is built for plain x86-64,
 * with the *_avx2.c files compiled for AVX2/FMA/F16C and used only when the
 * processor (and OS) has all three. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels_avx2.h"

static const tpi_backend avx2 = {
    .name = "cpu-avx2",
    .prepare_weight = tpi_avx2_prepare_weight,
    .matmul = tpi_avx2_matmul,
    .matmul_multi = tpi_avx2_matmul_multi,
    .rmsnorm = tpi_avx2_rmsnorm,
    .rope = tpi_avx2_rope,
    .attention = tpi_avx2_attention,
    .silu_mul = tpi_avx2_silu_mul,
};

static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

const tpi_backend *tpi_backend_cpu(void)
{
    const char *k = getenv("TPI_KERNELS");
    if (k && !strcmp(k, "ref"))
        return tpi_backend_cpu_ref();
    return has_avx2() ? &avx2 : tpi_backend_cpu_ref();
}
