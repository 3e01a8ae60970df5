set(model_libs tpinfer)
tpi_test(test_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_golden.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS ${model_libs})
set_tests_properties(test_golden PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
tpi_test(test_errors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_errors.c LIBS ${model_libs})
