# NaN and infinity in the weights: generation fails naming the sequence and
# the step, --check-weights names the tensor; the library at 1 and 2 ranks,
# then the command line on a poked checkpoint.
tpi_test(test_nonfinite SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nonfinite.c LIBS tpinfer TIMEOUT 120)
set_tests_properties(test_nonfinite PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1")

# tpi_mpi_test comes from tp.cmake, which may be included after this file.
function(tpi_nonfinite_mpi_tests)
  tpi_mpi_test(test_nonfinite_tp2 2 COMMAND $<TARGET_FILE:test_nonfinite> TIMEOUT 120)
endfunction()
cmake_language(DEFER CALL tpi_nonfinite_mpi_tests)

# A tiny f32 checkpoint with a NaN at token 40's embedding, element 5.
set(nf_dir ${CMAKE_CURRENT_BINARY_DIR}/nonfinite-embed-nan)
add_test(NAME nonfinite_make COMMAND sh -c "rm -rf '${nf_dir}' && \"$0\" make '${nf_dir}' f32 model.embed_tokens.weight 5125 nan"
         $<TARGET_FILE:test_nonfinite>)
set_tests_properties(nonfinite_make PROPERTIES FIXTURES_SETUP nonfinite)

set(nf_env "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")
set(nf_step "generate: sequence 0, step 0: logits are not finite \\(NaN or infinity\\)")
# exit code 1 (never 0 with tokens) and the message, at 1 and 2 ranks
function(tpi_nonfinite_cli name regex)
  add_test(NAME ${name} COMMAND sh -c "\"$0\" \"$@\" 2>&1; echo \"exit=$?\"" $<TARGET_FILE:tpinfer_cli> ${ARGN})
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED nonfinite ENVIRONMENT "${nf_env}" TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "${regex}.*exit=1\n$")
endfunction()
foreach(np 1 2)
  # one rank without a launcher, two through tpinfer's -n (mpirun)
  set(launch)
  if(np GREATER 1)
    set(launch -n ${np})
  endif()
  tpi_nonfinite_cli(cli_nonfinite_greedy_np${np} "${nf_step}" ${launch} generate -m ${nf_dir} --ids 1,40,3 -n 8)
  tpi_nonfinite_cli(cli_nonfinite_sampled_np${np} "${nf_step}"
                    ${launch} generate -m ${nf_dir} --ids 1,40,3 -n 8 --temp 0.8 --seed 3)
  tpi_nonfinite_cli(cli_nonfinite_check_weights_np${np}
                    "model.embed_tokens.weight: element 5125 \\(row 40, column 5\\) is NaN"
                    ${launch} generate -m ${nf_dir} --ids 1,2,3 -n 8 --check-weights)
  tpi_nonfinite_cli(cli_nonfinite_logits_np${np}
                    "logits: sequence 0, position 1: logits are not finite" ${launch} logits -m ${nf_dir} --ids 1,40,3)
endforeach()
tpi_nonfinite_cli(cli_nonfinite_logits_check_weights "model.embed_tokens.weight: element 5125"
                  logits -m ${nf_dir} --ids 1,2 --check-weights)

# A clean checkpoint (cli.cmake's tiny, bf16) gives the same output with
# --check-weights as without.
add_test(NAME cli_check_weights_clean
         COMMAND sh -c "a=$(\"$0\" generate -m \"$1\" --ids 1,2,3 -n 8) && b=$(\"$0\" generate -m \"$1\" --ids 1,2,3 -n 8 --check-weights) && test -n \"$a\" && test \"$a\" = \"$b\" && echo \"same: $a\""
                 $<TARGET_FILE:tpinfer_cli> ${CMAKE_CURRENT_BINARY_DIR}/cli-tiny)
set_tests_properties(cli_check_weights_clean PROPERTIES FIXTURES_REQUIRED tiny ENVIRONMENT "OMP_NUM_THREADS=1"
                     PASS_REGULAR_EXPRESSION "same: ")
