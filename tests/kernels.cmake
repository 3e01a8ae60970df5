tpi_test(test_kernels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kernels.c LIBS tpi_backend_cpu tpi_core)
