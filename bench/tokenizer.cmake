add_executable(bench_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/bench_tokenizer.c)
target_include_directories(bench_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_tokenizer PRIVATE tpi_tokenizer tpi_core)
target_compile_definitions(bench_tokenizer PRIVATE TPI_SHARED_DEFAULT="${TPI_SHARED_DEFAULT}")
