/* The SIMD sets' packed Q4_K and Q6_K kernels (quant_pack.h), compiled by
 * quant_avx2.c and quant_avx512.c after quant_simd.h, with its macros.
 * None yet: these types keep the unpacked kernels. */
static inline tpi_qpdot_fn QS(qpdot_k)(tpi_dtype t)
{
    (void)t;
    return NULL;
}
