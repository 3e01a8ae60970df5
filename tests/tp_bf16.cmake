# bf16_activations on the golden BF16 case at TP = 1, 2 and 3 (skipped where
# the processor lacks AVX512_BF16).
tpi_test(test_golden_bf16 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_golden_bf16.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer)
set_tests_properties(test_golden_bf16 PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
foreach(n 2 3)
  tpi_mpi_test(test_golden_bf16_tp${n} ${n} COMMAND $<TARGET_FILE:test_golden_bf16>)
endforeach()
