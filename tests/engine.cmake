# The serving engine driven directly (continuous batching, prompt reuse,
# cancel, queue, stop) at 1 and 2 ranks; skipped without ../shared.
tpi_test(test_engine SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_engine.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer Threads::Threads TIMEOUT 240)
set_tests_properties(test_engine PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1")

function(tpi_engine_mpi_tests)
  tpi_mpi_test(test_engine_tp2 2 COMMAND $<TARGET_FILE:test_engine>)
endfunction()
cmake_language(DEFER CALL tpi_engine_mpi_tests)
