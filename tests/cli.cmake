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
# -n beyond what the model or the machine takes is refused by the launcher
# before any rank starts (docs/BAD_INPUT.md, "Ranks"): one line, exit 2
function(tpi_cli_ranks name regex)
  add_test(NAME ${name} COMMAND sh -c "'${cli}' \"$@\" 2>&1; echo \"exit=$?\"" sh ${ARGN})
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 30 PASS_REGULAR_EXPRESSION "^${regex}\nexit=2\n$")
endfunction()
tpi_cli_ranks(cli_ranks_too_many "tpinfer: -n 16: the model in [^ ]*cli-tiny splits over at most 8 ranks \\(num_attention_heads = 8: each rank needs whole attention heads\\)"
              -n 16 logits -m ${tiny} --ids 1,2)
tpi_cli_ranks(cli_ranks_too_many_chat "tpinfer: -n 9: the model in [^ ]*cli-tiny splits over at most 8 ranks .*"
              -n 9 chat --model=${tiny})
tpi_cli_ranks(cli_ranks_machine "tpinfer: -n 1048576: at most 8 ranks per core on one machine \\([0-9]+ on its [0-9]+ cores\\): more only share the cores.*"
              -n 1048576 tokenize -m ${tiny} hello)
# memory admission (docs/BAD_INPUT.md, "Memory"): a KV cache past --mem-limit
# is refused before it is allocated, naming both figures, on every rank
set(kv_msg "KV cache of 1 sequences x 1000000 positions needs")
tpi_cli_fail(cli_mem_limit_kv "${kv_msg} 1.9 GiB on rank 0, but 64 MiB is available \\(the limit given, mem_limit_bytes 64 MiB\\)"
             generate -m ${tiny} --ctx 1000000 --mem-limit 64M --ids 1,2)
tpi_cli_fail(cli_mem_limit_kv_np2 "rank [01]: ${kv_msg} 977 MiB on rank 0, but 64 MiB is available"
             -n 2 generate -m ${tiny} --ctx 1000000 --mem-limit 64M --ids 1,2)
set_tests_properties(cli_mem_limit_kv_np2 PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 120)
add_test(NAME cli_mem_limit_fits COMMAND sh -c "'${cli}' generate -m '${tiny}' --ids 1,2 -n 2 --mem-limit 64M >/dev/null 2>&1; echo \"exit=$?\"")
set_tests_properties(cli_mem_limit_fits PROPERTIES FIXTURES_REQUIRED tiny PASS_REGULAR_EXPRESSION "^exit=0\n$")

# Numbers from flags (docs/BAD_INPUT.md, "Sizes, numbers and config"): a bad
# value is a usage error, exit 2, naming the flag and the value; the value
# parsers (tools/cli.c) refuse overflow, trailing junk, empty strings, NaN,
# infinity and values out of range.
function(tpi_cli_usage name regex)
  add_test(NAME ${name} COMMAND sh -c "'${cli}' \"$@\" 2>&1; rc=$?; echo \"exit=$rc\"" sh ${ARGN})
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED tiny PASS_REGULAR_EXPRESSION "${regex}.*exit=2")
endfunction()
set(gen generate -m ${tiny} --ids 1,2)
tpi_cli_usage(cli_flag_temp_nan "--temp: expected a finite number >= 0, found \"nan\"" ${gen} --temp nan)
tpi_cli_usage(cli_flag_temp_inf "--temp: expected a finite number >= 0, found \"inf\"" ${gen} --temp inf)
tpi_cli_usage(cli_flag_temp_junk "--temp: expected a finite number >= 0, found \"0.7x\"" ${gen} --temp 0.7x)
tpi_cli_usage(cli_flag_top_p_zero "--top-p: expected a number in \\(0, 1\\], found \"0\"" ${gen} --top-p 0)
tpi_cli_usage(cli_flag_min_p_range "--min-p: expected a number in \\[0, 1\\], found \"1.5\"" ${gen} --min-p 1.5)
tpi_cli_usage(cli_flag_repeat_zero "--repeat-penalty: expected a finite number > 0, found \"0\"" ${gen} --repeat-penalty 0)
tpi_cli_usage(cli_flag_max_new_negative "-n/--max-new: expected .*found \"-1\"" ${gen} -n -1)
tpi_cli_usage(cli_flag_ctx_huge "--ctx: expected a context length in \\[1, 2147483648\\], found \"144115188075855872\"" ${gen} --ctx 144115188075855872)
tpi_cli_usage(cli_flag_ctx_empty "--ctx: expected .*found \"\"" ${gen} --ctx=)
tpi_cli_usage(cli_flag_top_k_overflow "--top-k: expected .*found \"99999999999999999999\"" ${gen} --top-k 99999999999999999999)
tpi_cli_usage(cli_flag_seed_negative "--seed: expected .*found \"-1\"" ${gen} --seed -1)
tpi_cli_usage(cli_flag_seed_overflow "--seed: expected .*found \"18446744073709551616\"" ${gen} --seed 18446744073709551616)
tpi_cli_usage(cli_flag_threads_junk "--threads: expected a positive number of threads, found \"abc\"" ${gen} -t abc)
tpi_cli_usage(cli_flag_threads_negative "--threads: expected a positive number of threads, found \"-4\"" ${gen} -t -4)
tpi_cli_usage(cli_flag_ids_negative "--ids: expected comma-separated integers .*found \"1,-2\"" generate -m ${tiny} --ids 1,-2)
tpi_cli_usage(cli_flag_ids_overflow "--ids: expected comma-separated integers .*found \"4294967297\"" logits -m ${tiny} --ids 4294967297)
tpi_cli_usage(cli_flag_logits_top "--top: expected .*found \"2x\"" logits -m ${tiny} --ids 1 --top 2x)
tpi_cli_usage(cli_flag_chat_temp "--temp: expected a finite number >= 0, found \"nan\"" chat -m ${tiny} --temp nan)
tpi_cli_usage(cli_flag_mem_limit_junk "--mem-limit: expected a size such as 512M or 2G .*found \"2x\"" ${gen} --mem-limit 2x)
tpi_cli_usage(cli_flag_mem_limit_overflow "--mem-limit: expected .*found \"9999999999T\"" ${gen} --mem-limit 9999999999T)
tpi_cli_usage(cli_flag_mem_limit_zero "--mem-limit: expected .*found \"0\"" ${gen} --mem-limit 0)
tpi_cli_usage(cli_flag_comm_timeout_nan "--comm-timeout: expected a number of seconds in \\[0, 1e9\\] \\(0: no watchdog\\), found \"nan\"" ${gen} --comm-timeout nan)
tpi_cli_usage(cli_flag_comm_timeout_negative "--comm-timeout: expected .*found \"-1\"" ${gen} --comm-timeout -1)
tpi_cli_usage(cli_flag_ranks_junk "-n: expected a rank count in \\[1, 1048576\\] and a command, found \"2x\"" -n 2x logits)
# the largest seed is a seed: it samples
add_test(NAME cli_flag_seed_max COMMAND sh -c "'${cli}' generate -m '${tiny}' --ids 1,2 -n 2 --temp 1 --seed 18446744073709551615 >/dev/null 2>&1; echo \"exit=$?\"")
set_tests_properties(cli_flag_seed_max PROPERTIES FIXTURES_REQUIRED tiny PASS_REGULAR_EXPRESSION "^exit=0\n$")

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
  # --bf16-activations reaches the workers' load options (the kernel set they
  # report says whether the bf16 dot product ran), and a bad value is refused.
  add_test(NAME cli_bench_bf16_activations COMMAND sh -c "'${bench}' worker -m '${tiny}' --batches 1 --seq 16 --decode-ctx none --reps 1 -t 1 --bf16-activations 1 | head -1 && '${bench}' -m '${tiny}' --bf16-activations 2 2>&1 || echo exit=$?")
  set_tests_properties(cli_bench_bf16_activations PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 60 PASS_REGULAR_EXPRESSION
    "^KERNELS [a-z0-9+]+ bf16_activations=1\n.*--bf16-activations: expected 0 \\(fp32 activations\\) or 1 \\(bf16\\), got '2'.*exit=2\n$")
  # ... and splits N x 1 vs 1 x 1 into factors that multiply back to it.
  add_test(NAME cli_bench_scaling_split COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_split.sh ${bench} ${tiny})
  set_tests_properties(cli_bench_scaling_split PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 120)
endif()
