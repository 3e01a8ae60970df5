/* The quantized dot kernels (quant_simd.h) on AVX-512 VNNI at 256 bits
 * (AVX512VL): vpdpbusd sums four u8 x s8 products into int32 without the
 * int16 step, vpdpwssd fuses vpmaddwd with the add. 256 bits because the
 * weight blocks are 18 to 34 bytes: a block fills one ymm register, and on
 * Zen 4 a zmm instruction issues as two ymm halves anyway. */
#define QS(name) tpi_avx512_##name
#define DOT_U8S8(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define DOT_PAIRS(acc, p, w) _mm256_dpwssd_epi32((acc), (p), (w))
#define QMAX_ROWS 8
#define QPACK_VNNI 1
#include "backend/cpu/quant_simd.h"
#include "backend/cpu/quant_pack.h"
#include "backend/cpu/quant_pack_simd.h"
#include "backend/cpu/quant_pack_x16.h"
