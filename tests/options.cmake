# The library's options (tpi_load_opts, tpi_comm_opts) reach it; no shared data needed.
tpi_test(test_options SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_options.c LIBS tpinfer TIMEOUT 120)
set_tests_properties(test_options PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")

# The CLI maps TPI_KERNELS and --kernels onto tpi_load_opts.kernels (the flag
# wins); generate's summary names the set in use. ref runs everywhere, and a
# processor without AVX2 would fall back to ref too, so the checks hold on any x86-64.
add_test(NAME cli_kernels_env COMMAND sh -c "'${cli}' generate -m '${tiny}' --ids 1,2 -n 1 2>&1 >/dev/null" )
set_tests_properties(cli_kernels_env PROPERTIES FIXTURES_REQUIRED tiny ENVIRONMENT "TPI_KERNELS=ref"
                     PASS_REGULAR_EXPRESSION "\\| kernels: ref x [0-9]+ threads \\|")
add_test(NAME cli_kernels_flag_wins COMMAND sh -c "'${cli}' generate -m '${tiny}' --ids 1,2 -n 1 --kernels ref 2>&1 >/dev/null")
set_tests_properties(cli_kernels_flag_wins PROPERTIES FIXTURES_REQUIRED tiny ENVIRONMENT "TPI_KERNELS=avx2"
                     PASS_REGULAR_EXPRESSION "\\| kernels: ref x [0-9]+ threads \\|")
# A bad flag value is a usage error (exit 2) naming the flag.
add_test(NAME cli_bad_prefill_chunk_flag COMMAND sh -c "'${cli}' logits -m '${tiny}' --ids 1,2 --prefill-chunk 0 2>&1; echo \"exit=$?\"")
set_tests_properties(cli_bad_prefill_chunk_flag PROPERTIES FIXTURES_REQUIRED tiny
                     PASS_REGULAR_EXPRESSION "--prefill-chunk: expected a positive number of tokens, found \"0\".*exit=2")
