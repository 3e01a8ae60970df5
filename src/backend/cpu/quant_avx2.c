/* The quantized dot kernels (quant_simd.h) on AVX2: vpmaddubsw sums byte
 * pairs into int16, vpmaddwd sums int16 pairs into int32. */
#define QS(name) tpi_avx2_##name
#define DOT_U8S8(acc, u, s) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define DOT_PAIRS(acc, p, w) _mm256_add_epi32((acc), _mm256_madd_epi16((p), (w)))
#define QMAX_ROWS 4
#define QPACK_VNNI 0
#include "backend/cpu/quant_simd.h"
#include "backend/cpu/quant_pack.h"
#include "backend/cpu/quant_pack_simd.h"
