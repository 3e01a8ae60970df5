# Across emulated hosts (docs/MULTIHOST.md): the all-reduce's wire encodings,
# and the golden cases, a killed rank and a link taken down across network
# namespaces (scripts/hosts.sh; root only, else "skipped").
tpi_test(test_wire SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_wire.c LIBS tpi_comm tpi_core MPI::MPI_C TIMEOUT 60)
foreach(n 2 3)
  tpi_mpi_test(test_wire_np${n} ${n} FLAGS ${TPI_MPI_TCP} COMMAND $<TARGET_FILE:test_wire> TIMEOUT 120)
endforeach()
set_tests_properties(test_wire test_wire_np2 test_wire_np3 PROPERTIES LABELS "comm;wire")
