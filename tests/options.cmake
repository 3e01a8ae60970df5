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
# --bf16-activations takes 0 or 1; anything else is a usage error naming the flag.
add_test(NAME cli_bad_bf16_activations COMMAND sh -c "'${cli}' logits -m '${tiny}' --ids 1,2 --bf16-activations yes 2>&1; echo \"exit=$?\"")
set_tests_properties(cli_bad_bf16_activations PROPERTIES FIXTURES_REQUIRED tiny
                     PASS_REGULAR_EXPRESSION "--bf16-activations: expected 0 \\(fp32 activations\\) or 1 \\(bf16\\), found \"yes\".*exit=2")
# With 1, generate's summary names the bf16 variant where the processor has
# AVX512_BF16, else the set it runs and a note that fp32 activations are used.
add_test(NAME cli_bf16_activations COMMAND sh -c "'${cli}' generate -m '${tiny}' --ids 1,2,3,4,5,6,7 -n 1 --bf16-activations 1 2>&1 >/dev/null")
set_tests_properties(cli_bf16_activations PROPERTIES FIXTURES_REQUIRED tiny
                     PASS_REGULAR_EXPRESSION "\\| kernels: avx512\\+bf16 x [0-9]+ threads \\||no bf16 dot product")
