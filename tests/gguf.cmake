# GGUF files: the reader and hostile files (test_gguf), and models loaded from
# them against ../shared/golden/gguf at 1, 2 and 3 ranks (test_gguf_model).
tpi_test(test_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf.c LIBS tpinfer PkgConfig::CJSON)
tpi_test(test_gguf_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf_model.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer)

# tpi_mpi_test comes from tp.cmake, included after this file.
function(tpi_gguf_mpi_tests)
  foreach(n 2 3)
    tpi_mpi_test(test_gguf_model_tp${n} ${n} COMMAND $<TARGET_FILE:test_gguf_model>)
  endforeach()
endfunction()
cmake_language(DEFER CALL tpi_gguf_mpi_tests)
