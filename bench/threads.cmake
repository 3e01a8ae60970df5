# Whether threads pay for themselves: the parallel region's wake-up cost and
# a small model's decode at 1 and 2 threads (bench_threads.c).
add_executable(bench_threads ${CMAKE_CURRENT_SOURCE_DIR}/bench_threads.c)
target_include_directories(bench_threads PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_threads PRIVATE tpinfer OpenMP::OpenMP_C)
