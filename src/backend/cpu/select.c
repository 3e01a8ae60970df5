/* Picks the CPU kernels at run time: the library is built for plain x86-64,
 * with the *_avx2.c files compiled for AVX2/FMA/F16C and used only when the
 * processor (and OS) has all three, and the 512-bit kernels of
 * gemv_avx512.c, gemm_avx512.c and attention_avx512.c added where AVX-512F
 * is there too. The caller may ask for one set (to compare them, or to rule
 * one out); tpi_load_opts carries the request. */
#include <cpuid.h>
#include <stdatomic.h>
#include <string.h>

#include "tpinfer.h"

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/quant_kernels.h"

/* Both sets share the packed weights, the GEMM and every other kernel; the
 * AVX-512 set differs only in the GEMV and GEMM micro-kernels inside its
 * matmul and in attention's tile step (attention_avx512.c). */
#define AVX2_KERNELS                                                                                       \
    .prepare_weight = tpi_cpu_prepare_weight, .rmsnorm = tpi_avx2_rmsnorm, .rope = tpi_avx2_rope,        \
    .silu_mul = tpi_avx2_silu_mul

static const tpi_backend avx2 = {.name = "cpu-avx2", .matmul = tpi_avx2_matmul, .matmul_multi = tpi_avx2_matmul_multi,
                                 .attention = tpi_avx2_attention, AVX2_KERNELS};
static const tpi_backend avx512 = {.name = "cpu-avx512", .matmul = tpi_avx512_matmul,
                                   .matmul_multi = tpi_avx512_matmul_multi, .attention = tpi_avx512_attention,
                                   AVX2_KERNELS};
static const tpi_backend avx512bf16 = {.name = "cpu-avx512-bf16", .matmul = tpi_avx512bf16_matmul,
                                       .matmul_multi = tpi_avx512bf16_matmul_multi,
                                       .attention = tpi_avx512_attention, AVX2_KERNELS};

/* F16C is CPUID leaf 1, ECX bit 29 (Intel SDM vol. 2A, table 3-10), read
 * directly because clang's __builtin_cpu_supports does not know "f16c". */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

enum { F_AVX2 = 1, F_AVX512 = 2, F_VNNI = 4, F_BF16 = 8, F_KNOWN = 16 };

/* libgcc's checks include the OS's support for the ymm and zmm state
 * (XCR0). */
static int detect(void)
{
    __builtin_cpu_init();
    int f = F_KNOWN;
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()))
        return f;
    f |= F_AVX2;
    if (!__builtin_cpu_supports("avx512f"))
        return f;
    f |= F_AVX512;
    int bwvl = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (bwvl && __builtin_cpu_supports("avx512vnni"))
        f |= F_VNNI;
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16"))
        f |= F_BF16;
    return f;
}

/* The features, detected once: the quantized matmul asks on every call,
 * and under a hypervisor each CPUID is a VM exit of microseconds (2 % of a
 * decode step's samples before this cache). Racing first calls store the
 * same value. */
static int features(void)
{
    static _Atomic int cached;
    int f = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!f) {
        f = detect();
        atomic_store_explicit(&cached, f, memory_order_relaxed);
    }
    return f;
}

/* the avx2 set: AVX2, FMA and F16C */
int tpi_cpu_has_avx2(void)
{
    return (features() & F_AVX2) != 0;
}

static int has_avx512(void)
{
    return (features() & F_AVX512) != 0;
}

/* quant_avx512.c's vpdpbusd/vpdpwssd on ymm registers, and its byte ops */
int tpi_cpu_has_avx512_vnni(void)
{
    return (features() & F_VNNI) != 0;
}

/* gemm_bf16_avx512.c's vpermw is AVX512BW */
static int has_avx512bf16(void)
{
    return (features() & F_BF16) != 0;
}

const tpi_backend *tpi_backend_cpu_bf16(const tpi_backend *be)
{
    return be == &avx512 && has_avx512bf16() ? &avx512bf16 : be;
}

const tpi_backend *tpi_backend_cpu(void)
{
    return has_avx512() ? &avx512 : tpi_cpu_has_avx2() ? &avx2 : tpi_backend_cpu_ref();
}

int tpi_backend_cpu_select(const char *set, const tpi_backend **out)
{
    const tpi_backend *best = tpi_backend_cpu();
    *out = best;
    if (!set || !*set || !strcmp(set, "auto"))
        return 0;
    if (!strcmp(set, "ref"))
        *out = tpi_backend_cpu_ref();
    else if (!strcmp(set, "avx2"))
        *out = tpi_cpu_has_avx2() ? &avx2 : best;
    else if (!strcmp(set, "avx512"))
        *out = has_avx512() ? &avx512 : best;
    else
        return TPI_EINVAL;
    return 0;
}

const char *tpi_backend_cpu_set(const tpi_backend *be)
{
    return be == &avx512bf16 ? "avx512+bf16" : be == &avx512 ? "avx512" : be == &avx2 ? "avx2" : "ref";
}
