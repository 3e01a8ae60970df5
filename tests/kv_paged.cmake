# The paged KV cache against one block per sequence, its prefix sharing,
# copy on write, exhaustion and accounting, at 1 and 2 ranks.
tpi_test(test_kv_paged SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_kv_paged.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer TIMEOUT 120)
set_tests_properties(test_kv_paged PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
# tpi_mpi_test comes from tp.cmake, included after this file.
function(tpi_kv_paged_mpi_tests)
  tpi_mpi_test(test_kv_paged_tp2 2 COMMAND $<TARGET_FILE:test_kv_paged>)
endfunction()
cmake_language(DEFER CALL tpi_kv_paged_mpi_tests)
