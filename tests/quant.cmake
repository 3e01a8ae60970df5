tpi_test(test_quant SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_quant.c ${CMAKE_CURRENT_SOURCE_DIR}/gguf_peek.c
         LIBS tpi_backend_cpu tpi_core)
tpi_test(test_quant_pack SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_quant_pack.c LIBS tpi_backend_cpu tpi_core)
tpi_test(test_quant_pack_k SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_quant_pack_k.c LIBS tpi_backend_cpu tpi_core)
