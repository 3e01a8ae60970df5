set(model_libs tpinfer)
tpi_test(test_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_golden.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS ${model_libs})
set_tests_properties(test_golden PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
# The golden prompts fit one prefill pass; in chunks of 3 tokens each
# sequence spans several, later chunks attending through the cache.
add_test(NAME test_golden_chunked COMMAND test_golden --prefill-chunk 3)
set_tests_properties(test_golden_chunked PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2"
                     SKIP_RETURN_CODE 77)
# TIMEOUT: the FIFO cases must never block; a hang fails fast instead of at the default.
tpi_test(test_errors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_errors.c LIBS ${model_libs} TIMEOUT 60)
