# Generation: the API at 1, 2 and 3 ranks, and the generate command end to end.
tpi_test(test_generate SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_generate.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer)
set_tests_properties(test_generate PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1")

# tpi_mpi_test comes from tp.cmake, included after this file: add the
# multi-rank runs once the directory is read.
function(tpi_generate_mpi_tests)
  tpi_mpi_test(test_generate_tp2 2 COMMAND $<TARGET_FILE:test_generate>)
  # stories260K has 8 heads and 4 KV heads: 3 ranks split them unevenly.
  tpi_mpi_test(test_generate_tp3 3 COMMAND $<TARGET_FILE:test_generate>)
  set_tests_properties(test_generate_tp3 PROPERTIES ENVIRONMENT "${TPI_MPI_ENV};TPI_GEN_ONLY=stories")
endfunction()
cmake_language(DEFER CALL tpi_generate_mpi_tests)
