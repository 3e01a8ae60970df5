/* Q4_K and Q6_K weights packed eight rows at a time (quant_pack.h).
 * Not packed yet: these types keep the unpacked kernels. */
#include "backend/cpu/quant_pack.h"

size_t tpi_qpack_group_bytes_k(tpi_dtype t, int64_t nb)
{
    (void)t;
    (void)nb;
    return 0;
}

void tpi_qpack_k(tpi_dtype t, const void *src, size_t src_row_bytes, int64_t rows, int64_t nb, void *dst)
{
    (void)t, (void)src, (void)src_row_bytes, (void)rows, (void)nb, (void)dst;
}

void tpi_qunpack_row_k(tpi_dtype t, const void *group, int64_t nb, int i, void *dst)
{
    (void)t, (void)group, (void)nb, (void)i, (void)dst;
}

tpi_qpdot_fn tpi_ref_qpdot_k(tpi_dtype t)
{
    (void)t;
    return NULL;
}
