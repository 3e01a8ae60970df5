tpi_test(test_kernels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kernels.c LIBS tpi_backend_cpu tpi_core)
# The bf16-dot prefill GEMM against bf16-rounded activations in double
# (skipped where the processor lacks AVX512_BF16).
tpi_test(test_gemm_bf16 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gemm_bf16.c LIBS tpi_backend_cpu tpi_core)
