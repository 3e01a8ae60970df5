# The serving engine driven directly (continuous batching, prompt reuse,
# cancel, queue, stop) at 1 and 2 ranks; skipped without ../shared.
tpi_test(test_engine SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_engine.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer Threads::Threads TIMEOUT 240)
set_tests_properties(test_engine PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1")

# With the reference kernels a row's logits do not depend on the rows beside
# it (the AVX2/AVX-512 GEMV and GEMM round differently, ~1e-5), so batched
# greedy text equals alone bit for bit whatever the margins.
add_test(NAME test_engine_ref COMMAND test_engine --kernels ref)
set_tests_properties(test_engine_ref PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;TPI_ENGINE_ONLY=batch16" SKIP_RETURN_CODE 77
                     TIMEOUT 480)

function(tpi_engine_mpi_tests)
  tpi_mpi_test(test_engine_tp2 2 COMMAND $<TARGET_FILE:test_engine>)
endfunction()
cmake_language(DEFER CALL tpi_engine_mpi_tests)

# Non-finite logits (a tiny checkpoint with a NaN in token 40's embedding,
# from nonfinite.cmake's fixture): that request fails, the others go on.
add_test(NAME test_engine_nonfinite COMMAND test_engine)
set_tests_properties(test_engine_nonfinite PROPERTIES FIXTURES_REQUIRED nonfinite SKIP_RETURN_CODE 77 TIMEOUT 120
                     ENVIRONMENT "OMP_NUM_THREADS=1;TPI_ENGINE_NONFINITE=${CMAKE_CURRENT_BINARY_DIR}/nonfinite-embed-nan")
