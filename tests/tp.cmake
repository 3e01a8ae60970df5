function(tpi_mpi_test name nranks)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;FLAGS;ENV" ${ARGN})
  add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${nranks} ${TPI_MPI_FLAGS} ${T_FLAGS}
           ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 240) # a deadlocked job must not eat the CI budget
  endif()
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${TPI_MPI_ENV};${T_ENV}" SKIP_RETURN_CODE 77 TIMEOUT ${T_TIMEOUT})
endfunction()

foreach(n 2 3 4)
  tpi_mpi_test(test_golden_tp${n} ${n} COMMAND $<TARGET_FILE:test_golden>)
endforeach()
# stories260K-hf has 8 heads and 4 KV heads: at 8 ranks each KV head is held
# by two ranks; the cases with fewer heads check the refusal instead.
tpi_mpi_test(test_golden_tp8 8 COMMAND $<TARGET_FILE:test_golden>)
# The path that crosses machines: TCP only, no shared memory, MPI's all-reduce.
tpi_mpi_test(test_golden_tp2_tcp 2 FLAGS ${TPI_MPI_TCP} COMMAND $<TARGET_FILE:test_golden> --allreduce mpi)
# Chunked prefill split: every rank cuts the same chunks and all-reduces each.
tpi_mpi_test(test_golden_tp2_chunked 2 COMMAND $<TARGET_FILE:test_golden> --prefill-chunk 3)

tpi_test(test_tp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tp.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c LIBS tpinfer)
foreach(n 2 3 4)
  tpi_mpi_test(test_tp_np${n} ${n} COMMAND $<TARGET_FILE:test_tp>)
endforeach()
tpi_mpi_test(test_tp_np2_mpi_allreduce 2 COMMAND $<TARGET_FILE:test_tp> --allreduce mpi)

add_executable(tp_spin ${CMAKE_CURRENT_SOURCE_DIR}/tp_spin.c)
target_link_libraries(tp_spin PRIVATE tpinfer)
add_test(NAME test_tp_failure COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/failure.sh $<TARGET_FILE:tpinfer_cli>
         $<TARGET_FILE:tp_spin> ${MPIEXEC_EXECUTABLE} ${TPI_MPI_FLAGS})
set_tests_properties(test_tp_failure PROPERTIES ENVIRONMENT "${TPI_MPI_ENV}" TIMEOUT 180)

# The slicing arithmetic alone, on the golden shapes: no checkpoint, no MPI.
tpi_test(test_shard SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shard.c LIBS tpi_tp tpi_io tpi_core TIMEOUT 60)
