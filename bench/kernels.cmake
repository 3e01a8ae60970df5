# bench_kernels compares our kernels with the FMA peak, OpenBLAS sgemm and the
# read bandwidth, so it needs OpenBLAS (libopenblas-dev); without it, it is skipped.
find_library(TPI_OPENBLAS openblas)
find_path(TPI_CBLAS_DIR cblas.h PATH_SUFFIXES openblas)
if(TPI_OPENBLAS AND TPI_CBLAS_DIR)
  add_executable(bench_kernels ${CMAKE_CURRENT_SOURCE_DIR}/bench_kernels.c ${CMAKE_CURRENT_SOURCE_DIR}/bench_bf16dot.c)
  target_include_directories(bench_kernels PRIVATE ${CMAKE_SOURCE_DIR}/src ${TPI_CBLAS_DIR})
  target_link_libraries(bench_kernels PRIVATE bench_probes tpi_backend_cpu tpi_core ${TPI_OPENBLAS})
  target_compile_options(bench_kernels PRIVATE -O3)
else()
  message(STATUS "OpenBLAS not found: bench_kernels is not built")
endif()

# The decode GEMV's inner loop alone, in cache and from memory (per-function
# target attributes: runs on any x86-64 with AVX2, AVX-512 variant only where present).
add_executable(bench_gemv_loop ${CMAKE_CURRENT_SOURCE_DIR}/bench_gemv_loop.c)
find_package(OpenMP REQUIRED)
target_link_libraries(bench_gemv_loop PRIVATE OpenMP::OpenMP_C)
target_compile_options(bench_gemv_loop PRIVATE -O3)

# Decode attention through a block table (the paged KV cache) against one
# block per sequence, the caches in memory.
add_executable(bench_paged_attn ${CMAKE_CURRENT_SOURCE_DIR}/bench_paged_attn.c)
target_include_directories(bench_paged_attn PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_paged_attn PRIVATE tpi_backend_cpu tpi_core)
target_compile_options(bench_paged_attn PRIVATE -O3)
