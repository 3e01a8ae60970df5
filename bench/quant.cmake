# The quantized matmul's decode GB/s against the read bandwidth, and its
# prefill GOP/s, per block type on llama-1b's shapes.
add_executable(bench_quant ${CMAKE_CURRENT_SOURCE_DIR}/bench_quant.c)
target_link_libraries(bench_quant PRIVATE bench_probes tpi_backend_cpu tpi_core)
target_compile_options(bench_quant PRIVATE -O3)
