# Ranks that stop or are signalled, and rank counts refused before a rank
# starts (docs/BAD_INPUT.md, "Ranks"; tests/ranks.sh says what each asserts).
foreach(case stop-chat stop-shm stop-mpi signals idle)
  add_test(NAME test_ranks_${case} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ranks.sh ${case}
           $<TARGET_FILE:tpinfer_cli> $<TARGET_FILE:tp_spin> ${MPIEXEC_EXECUTABLE} ${TPI_MPI_FLAGS})
  set_tests_properties(test_ranks_${case} PROPERTIES ENVIRONMENT "${TPI_MPI_ENV}" TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "(^|\n)passed\n$")
endforeach()
tpi_test(test_comm_opts SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_comm_opts.c LIBS tpinfer TIMEOUT 60)
