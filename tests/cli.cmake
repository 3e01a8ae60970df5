# The command line end to end: make-model writes a loadable checkpoint,
# errors exit non-zero with a message naming the problem; tpinfer-bench
# (bench/) writes its CSV.
set(cli $<TARGET_FILE:tpinfer_cli>)
set(tiny ${CMAKE_CURRENT_BINARY_DIR}/cli-tiny)
add_test(NAME cli_make_model COMMAND sh -c "rm -rf '${tiny}' && '${cli}' make-model --shape tiny --dtype bf16 --out '${tiny}' && '${cli}' logits -m '${tiny}' --ids 256,1,2,3 --top 2")
set_tests_properties(cli_make_model PROPERTIES FIXTURES_SETUP tiny PASS_REGULAR_EXPRESSION "(^|\n)[0-9]+ -?[0-9.]+\n[0-9]+ -?[0-9.]+\n")

# exit code 1 (not 0, not a crash) and the message
function(tpi_cli_fail name regex)
  add_test(NAME ${name} COMMAND sh -c "'${cli}' \"$@\" 2>&1; rc=$?; echo \"exit=$rc\"" sh ${ARGN})
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED tiny PASS_REGULAR_EXPRESSION "${regex}.*exit=1")
endfunction()
tpi_cli_fail(cli_id_outside_vocab "token id 999 at input position 1 is outside the vocabulary" logits -m ${tiny} --ids 1,999)
tpi_cli_fail(cli_missing_config "no-such-dir/config.json: missing" logits -m ${CMAKE_CURRENT_BINARY_DIR}/no-such-dir --ids 1)
tpi_cli_fail(cli_bad_prefill_chunk "TPI_PREFILL_CHUNK: expected a positive number of tokens, found \"0\"" logits -m ${tiny} --ids 1,2)
set_tests_properties(cli_bad_prefill_chunk PROPERTIES ENVIRONMENT "TPI_PREFILL_CHUNK=0")
add_test(NAME cli_bad_ids COMMAND sh -c "'${cli}' logits -m x --ids 1,a 2>&1; echo \"exit=$?\"")
set_tests_properties(cli_bad_ids PROPERTIES PASS_REGULAR_EXPRESSION "--ids: expected comma-separated integers.*exit=2")
# a rank's failure through the -n launcher
tpi_cli_fail(cli_ranks_too_many "cannot split 16 ranks over num_attention_heads = 8" -n 16 logits -m ${tiny} --ids 1,2)
set_tests_properties(cli_ranks_too_many PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 120)

# tpinfer-bench is built where OpenBLAS is found (bench/tpinfer_bench.cmake).
find_library(TPI_OPENBLAS openblas)
find_path(TPI_CBLAS_DIR cblas.h PATH_SUFFIXES openblas)
if(TPI_OPENBLAS AND TPI_CBLAS_DIR)
  set(bench $<TARGET_FILE:tpinfer_bench>)
  add_test(NAME cli_bench_csv COMMAND sh -c "'${bench}' -m '${tiny}' --batches 1,2 --ranks 1,2 --seq 16 --decode-ctx 8 --reps 1 --csv bench.csv --png bench.png >/dev/null && head -1 bench.csv && wc -l < bench.csv")
  set_tests_properties(cli_bench_csv PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "(^|\n)ranks,threads,batch,seq,ms,tokens_per_s,gflops,pct_sgemm,pct_fma_peak,fma_peak_gflops\n5\n$")
  # decode is also judged step by step against the probe pass before each step
  add_test(NAME cli_bench_decode_paired COMMAND ${bench} worker -m ${tiny} --batches none --decode-ctx 8 --reps 1 -t 1)
  set_tests_properties(cli_bench_decode_paired PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "DECODE ranks=1 ctx=8 paired: [0-9.]+% of the read bandwidth, median of 32 steps")
  # --scaling adds the 1 x 1 run (a CSV row per batch) and prints both scaling ratios.
  # A ';' in a PASS_REGULAR_EXPRESSION splits it into alternatives, any of which
  # passes; written "\;" it stays one expression.
  add_test(NAME cli_bench_scaling COMMAND sh -c "'${bench}' -m '${tiny}' --batches 1 --ranks 1,2 --seq 16 --decode-ctx 8 --reps 1 --scaling --csv bench-s.csv --png bench-s.png && cut -d, -f1-3 bench-s.csv")
  set_tests_properties(cli_bench_scaling PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "batch 1: 2 ranks x 1 thread vs 1 x 1: [0-9.]+x \\(ideal 2\; 2 x the slowest core's GEMM over the fastest's, around the two runs: [0-9.]+x\\)\; vs 1 x 2 threads: [0-9.]+x.*ranks,threads,batch\n1,2,1\n2,1,1\n1,1,1\n$")
  # ... and splits N x 1 vs 1 x 1 into factors that multiply back to it.
  add_test(NAME cli_bench_scaling_split COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_split.sh ${bench} ${tiny})
  set_tests_properties(cli_bench_scaling_split PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 120)
endif()
