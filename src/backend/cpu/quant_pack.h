#ifndef TPI_BACKEND_CPU_QUANT_PACK_H
#define TPI_BACKEND_CPU_QUANT_PACK_H
/* Block-type weights repacked eight rows at a time, so that one integer dot
 * product instruction works on eight output rows at once and the scales of
 * a block are applied to eight rows with one vector multiply (the unpacked
 * kernels of quant_simd.h reduce and rescale every block of every row
 * separately, which bounds them at a fifth of the dot product's peak).
 *
 * The repack happens once at load (tpi_cpu_prepare_weight); the file's
 * pages are released after it, so a rank's resident weights stay about its
 * share of the file. Decode and prefill both read the packed weight.
 *
 * Layout: rows are taken in groups of TPI_QPACK_ROWS; a group holds nb
 * "x8 blocks", each the eight rows' block b (scales first, then the quants
 * interleaved as the type's file quant_pack_*.c describes). The last group
 * is padded with zero rows (zero scales). A type without a packed layout
 * keeps the unpacked path (tpi_qpack_group_bytes returns 0 for it). */
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/quant_kernels.h"

#define TPI_QPACK_ROWS 8

/* Bytes of one group of TPI_QPACK_ROWS rows of nb blocks of type t; 0 when
 * t has no packed layout. */
size_t tpi_qpack_group_bytes(tpi_dtype t, int64_t nb);
/* Bytes of weight w packed (its tpi_qweight_blocks per row, ceil(rows / 8)
 * groups); 0 when its type has no packed layout. */
size_t tpi_qpack_weight_bytes(const tpi_weight *w);
/* 1 where w->packed holds w packed: the one test of the backend's
 * preparation, the driver and the reference alike. */
int tpi_qpack_is_packed(const tpi_weight *w);
/* Packs rows [0, rows) of nb blocks each (row r at src + r * src_row_bytes)
 * into ceil(rows / 8) groups at dst. */
void tpi_qpack(tpi_dtype t, const void *src, size_t src_row_bytes, int64_t rows, int64_t nb, void *dst);
/* Row i (< 8) of a packed group back as nb plain blocks (tests, tpi_qmatmul_ref). */
void tpi_qunpack_row(tpi_dtype t, const void *group, int64_t nb, int i, void *dst);

/* The packed kernels are tpi_qpdot_fn (quant_kernels.h, which the driver's
 * callers see): y[r * y_stride + i] = dot(row i of the packed group g (nb
 * blocks), the activation row r) for i < 8 and r < m (1..TPI_QMM_GROUP);
 * activation rows are tpi_qact_quantize's format for t, a_stride bytes
 * apart. */

/* Each set's packed kernels for weight type t (NULL for a type it lacks). */
tpi_qpdot_fn tpi_ref_qpdot(tpi_dtype t);
tpi_qpdot_fn tpi_avx2_qpdot(tpi_dtype t);
tpi_qpdot_fn tpi_avx512_qpdot(tpi_dtype t);
/* AVX-512's kernels on sixteen rows (quant_pack_x16.h): groups g
 * and g + 1 (tpi_qpack_group_bytes on), written to y[r * y_stride + i]
 * for i < 16; the caller makes sure both groups exist. */
tpi_qpdot_fn tpi_avx512_qpdot16(tpi_dtype t);

/* The K types' half (quant_pack_k.c: Q4_K, Q6_K), which the functions
 * above call for those types: group bytes (0: not packed), pack, unpack and
 * the reference kernels. The SIMD sets' K kernels come from
 * quant_pack_k_simd.h as QS(qpdot_k)(t), included by quant_avx2.c and
 * quant_avx512.c after quant_simd.h. */
size_t tpi_qpack_group_bytes_k(tpi_dtype t, int64_t nb);
void tpi_qpack_k(tpi_dtype t, const void *src, size_t src_row_bytes, int64_t rows, int64_t nb, void *dst);
void tpi_qunpack_row_k(tpi_dtype t, const void *group, int64_t nb, int i, void *dst);
tpi_qpdot_fn tpi_ref_qpdot_k(tpi_dtype t);
/* Each SIMD set's K kernels by name (QS(qpdot_k)), for tests and benches. */
tpi_qpdot_fn tpi_avx2_qpdot_k(tpi_dtype t);
tpi_qpdot_fn tpi_avx512_qpdot_k(tpi_dtype t);
#endif
