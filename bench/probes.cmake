# The register and bandwidth probes (peaks.h), shared by tpinfer-bench and
# bench_kernels. Each probe carries its own target attributes, so the files
# need no ISA flags and the programs run on any x86-64.
add_library(bench_probes STATIC ${CMAKE_CURRENT_SOURCE_DIR}/peaks.c ${CMAKE_CURRENT_SOURCE_DIR}/membw.c)
target_include_directories(bench_probes PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_probes PUBLIC tpi_core OpenMP::OpenMP_C)
target_compile_options(bench_probes PRIVATE -O3)
