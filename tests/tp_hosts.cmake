# Across emulated hosts (docs/MULTIHOST.md): the all-reduce's wire encodings,
# and the golden cases, a killed rank and a link taken down across network
# namespaces (scripts/hosts.sh; root only, else "skipped").
tpi_test(test_wire SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_wire.c LIBS tpi_comm tpi_core MPI::MPI_C TIMEOUT 60)
foreach(n 2 3)
  tpi_mpi_test(test_wire_np${n} ${n} FLAGS ${TPI_MPI_TCP} COMMAND $<TARGET_FILE:test_wire> TIMEOUT 120)
endforeach()
set_tests_properties(test_wire test_wire_np2 test_wire_np3 PROPERTIES LABELS "comm;wire")

# Across emulated hosts: root only (else "skipped"). Each case makes its own
# namespaces. golden-3 and golden-4 take minutes on a 2-core machine (three
# or four ranks share two cores over TCP): -DTPI_TEST_HOSTS_ALL=ON adds them.
option(TPI_TEST_HOSTS_ALL "also run the golden cases across 3 and 4 emulated hosts" OFF)
set(host_cases golden-2 kill linkdown)
if(TPI_TEST_HOSTS_ALL)
  list(APPEND host_cases golden-3 golden-4)
endif()
foreach(case ${host_cases})
  add_test(NAME test_hosts_${case} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hosts_cases.sh ${case} ${CMAKE_BINARY_DIR})
  set_tests_properties(test_hosts_${case} PROPERTIES LABELS "hosts" SKIP_RETURN_CODE 77 TIMEOUT 600
                       ENVIRONMENT "TPI_SHARED=${TPI_SHARED_DEFAULT}")
endforeach()
