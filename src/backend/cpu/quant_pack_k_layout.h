#ifndef TPI_BACKEND_CPU_QUANT_PACK_K_LAYOUT_H
#define TPI_BACKEND_CPU_QUANT_PACK_K_LAYOUT_H
/* Byte offsets inside one x8 block of packed Q4_K and Q6_K weights (eight
 * rows' block b); quant_pack_k.c describes the layout. */

#define QPK4_QS 0
#define QPK4_D 1024
#define QPK4_DMIN 1040
#define QPK4_SC 1056
#define QPK4_MN 1120
#define QPK4_BYTES 1184

#define QPK6_QL 0
#define QPK6_QH 1024
#define QPK6_D 1536
#define QPK6_SC 1552
#define QPK6_BYTES 1680
#endif
