# tpinfer-bench (build/tpinfer-bench, beside build/tpinfer): prefill, decode
# and all-reduce sweeps over batch sizes and rank counts.

# OpenBLAS sgemm stays a column of the CSV (pct_sgemm); without OpenBLAS
# (libopenblas-dev) tpinfer-bench is not built and its tests are left out.
find_library(TPI_OPENBLAS openblas)
find_path(TPI_CBLAS_DIR cblas.h PATH_SUFFIXES openblas)
if(TPI_OPENBLAS AND TPI_CBLAS_DIR)
  add_executable(tpinfer_bench
    ${CMAKE_CURRENT_SOURCE_DIR}/main.c ${CMAKE_CURRENT_SOURCE_DIR}/sweep.c ${CMAKE_CURRENT_SOURCE_DIR}/report.c
    ${CMAKE_CURRENT_SOURCE_DIR}/llama_table.c
    ${CMAKE_CURRENT_SOURCE_DIR}/worker.c ${CMAKE_CURRENT_SOURCE_DIR}/bench_cores.c
    ${CMAKE_CURRENT_SOURCE_DIR}/timed_comm.c ${CMAKE_CURRENT_SOURCE_DIR}/util.c
    ${CMAKE_SOURCE_DIR}/tools/options.c   # the command line's one mapping of environment to options
    ${CMAKE_SOURCE_DIR}/tools/cli.c       # ... and its number parsers, which options.c uses
    ${CMAKE_SOURCE_DIR}/tools/signals.c)  # ... and the signal handlers engine_comm installs
  set_target_properties(tpinfer_bench PROPERTIES OUTPUT_NAME tpinfer-bench RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  target_include_directories(tpinfer_bench PRIVATE ${TPI_CBLAS_DIR} ${CMAKE_SOURCE_DIR}/tools)
  target_link_libraries(tpinfer_bench PRIVATE tpinfer bench_probes ${TPI_OPENBLAS})
  target_compile_definitions(tpinfer_bench PRIVATE TPI_MPIEXEC="${MPIEXEC_EXECUTABLE}")
else()
  message(STATUS "OpenBLAS not found: tpinfer-bench is not built")
endif()
