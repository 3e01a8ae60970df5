# The quantized matmul's decode GB/s against the read bandwidth, and its
# prefill GOP/s, per block type on llama-1b's shapes.
add_executable(bench_quant ${CMAKE_CURRENT_SOURCE_DIR}/bench_quant.c)
target_link_libraries(bench_quant PRIVATE bench_probes tpi_backend_cpu tpi_core)
target_compile_options(bench_quant PRIVATE -O3)

# The packed Q4_K/Q6_K kernels against the unpacked ones, beside the int8
# dot product's peak.
add_executable(bench_quant_pack ${CMAKE_CURRENT_SOURCE_DIR}/bench_quant_pack.c)
target_link_libraries(bench_quant_pack PRIVATE bench_probes tpi_backend_cpu tpi_core)
target_compile_options(bench_quant_pack PRIVATE -O3)
