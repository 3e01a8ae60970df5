# tpinfer serve (docs/SERVING.md): request validation, answers and metrics
# as unit tests; the server end to end with the OpenAI client, curl and raw
# sockets at 1 and 2 ranks (tests/server/e2e.mjs lists what each asserts).
tpi_test(test_server_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_server_http.c LIBS tpinfer)

foreach(ranks 1 2)
  add_test(NAME server_e2e_np${ranks}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/server/run_e2e.sh $<TARGET_FILE:tpinfer_cli> ${ranks}
                   ${CMAKE_CURRENT_BINARY_DIR}/server-e2e-np${ranks})
  set_tests_properties(server_e2e_np${ranks} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE
                       ENVIRONMENT "TPI_SHARED_DEFAULT=${TPI_SHARED_DEFAULT};${TPI_MPI_ENV}"
                       FAIL_REGULAR_EXPRESSION "FAIL - ")
endforeach()
