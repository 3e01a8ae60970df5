# Generation: the API at 1, 2 and 3 ranks, and the generate command end to end.
tpi_test(test_generate SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_generate.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer)
set_tests_properties(test_generate PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1")

# tpi_mpi_test comes from tp.cmake, included after this file: add the
# multi-rank runs once the directory is read.
function(tpi_generate_mpi_tests)
  tpi_mpi_test(test_generate_tp2 2 COMMAND $<TARGET_FILE:test_generate>)
  # stories260K has 8 heads and 4 KV heads: 3 ranks split them unevenly.
  tpi_mpi_test(test_generate_tp3 3 COMMAND $<TARGET_FILE:test_generate>)
  set_tests_properties(test_generate_tp3 PROPERTIES ENVIRONMENT "${TPI_MPI_ENV};TPI_GEN_ONLY=stories")
endfunction()
cmake_language(DEFER CALL tpi_generate_mpi_tests)

# The generate command end to end: stdout byte-identical to the llama2.c /
# llama.cpp reference text (plus the final newline), at 1 and 2 ranks.
set(gen_stories ${TPI_SHARED_DEFAULT}/models/stories260K-hf)
set(gen_ref ${TPI_SHARED_DEFAULT}/models/stories260K/greedy-reference.md)
if(EXISTS ${gen_stories}/tokenizer.json AND EXISTS ${gen_ref})
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/cli_generate_check.cmake [=[
# -DCMD=<command list> -DREF=<greedy-reference.md>
file(READ ${REF} md)
string(FIND "${md}" "## Prompt \"Once upon a time\", 64 new tokens" at)
string(SUBSTRING "${md}" ${at} -1 md)
string(FIND "${md}" "```\n" open)
math(EXPR open "${open} + 4")
string(SUBSTRING "${md}" ${open} -1 md)
string(FIND "${md}" "\n```" close)
string(SUBSTRING "${md}" 0 ${close} want)
execute_process(COMMAND ${CMD} OUTPUT_VARIABLE got ERROR_VARIABLE log RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT got STREQUAL "${want}\n")
  message(FATAL_ERROR "exit ${rc}\nstdout:\n[${got}]\nexpected:\n[${want}\n]\nstderr:\n${log}")
endif()
message(STATUS "stdout matches the reference; ${log}")
]=])
  set(gen_cmd generate -m ${gen_stories} -p "Once upon a time" -n 64)
  add_test(NAME cli_generate_stories
           COMMAND ${CMAKE_COMMAND} "-DCMD=$<TARGET_FILE:tpinfer_cli>;${gen_cmd}" -DREF=${gen_ref}
                   -P ${CMAKE_CURRENT_BINARY_DIR}/cli_generate_check.cmake)
  add_test(NAME cli_generate_stories_np2
           COMMAND ${CMAKE_COMMAND} "-DCMD=$<TARGET_FILE:tpinfer_cli>;-n;2;${gen_cmd}" -DREF=${gen_ref}
                   -P ${CMAKE_CURRENT_BINARY_DIR}/cli_generate_check.cmake)
  set_tests_properties(cli_generate_stories_np2 PROPERTIES ENVIRONMENT
                       "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1" TIMEOUT 120)
  # A prompt longer than --ctx: exit 1 with both numbers.
  add_test(NAME cli_generate_ctx_error
           COMMAND sh -c "$0 generate -m $1 -p 'Once upon a time there' --ctx 3 2>&1; echo exit=$?"
                   $<TARGET_FILE:tpinfer_cli> ${gen_stories})
  set_tests_properties(cli_generate_ctx_error PROPERTIES
                       PASS_REGULAR_EXPRESSION "prompt 0 has 6 tokens, longer than the context of 3 tokens.*exit=1")
  add_test(NAME cli_generate_usage COMMAND sh -c "$0 generate -m x; test $? -eq 2" $<TARGET_FILE:tpinfer_cli>)
  # Byte tokens 0x4D 0xCA decode as one invalid group ("\uFFFD\uFFFD"), which
  # rewrites the "M" the first byte alone decodes to: the stream holds it back
  # instead of failing, and the text has the two U+FFFD.
  add_test(NAME cli_generate_byte_ids
           COMMAND sh -c "$0 generate -m $1 --ids 80,205 -n 8 2>&1; echo exit=$?" $<TARGET_FILE:tpinfer_cli>
                   ${gen_stories})
  set_tests_properties(cli_generate_byte_ids PROPERTIES PASS_REGULAR_EXPRESSION "��.*exit=0")
endif()

# The chat command on stories260K with a mistral-style chat_template added
# (the shared instruct tokenizers come without weights): two turns, the same
# replies at 1 and 2 ranks (rank 0 reads stdin and broadcasts each line).
if(EXISTS ${gen_stories}/tokenizer.json)
  set(chat_dir ${CMAKE_CURRENT_BINARY_DIR}/chat-stories260K)
  file(MAKE_DIRECTORY ${chat_dir})
  foreach(f config.json generation_config.json model.safetensors tokenizer.json)
    file(CREATE_LINK ${gen_stories}/${f} ${chat_dir}/${f} SYMBOLIC)
  endforeach()
  file(READ ${gen_stories}/tokenizer_config.json tc)
  string(JSON tc SET "${tc}" chat_template
         "\"{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}\"")
  file(WRITE ${chat_dir}/tokenizer_config.json "${tc}")
  add_test(NAME cli_chat_stories
           COMMAND sh -c "a=$(printf 'Once upon a time\\n\\nLily went\\n' | $0 chat -m $1 -n 12) && b=$(printf 'Once upon a time\\n\\nLily went\\n' | $0 -n 2 chat -m $1 -n 12) && test \"$a\" = \"$b\" && echo \"$a\""
                   $<TARGET_FILE:tpinfer_cli> ${chat_dir})
  set_tests_properties(cli_chat_stories PROPERTIES ENVIRONMENT
                       "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1" TIMEOUT 120
                       PASS_REGULAR_EXPRESSION "(^|\n)\\. Every day, “What \n\\. You can see the ot\n$")
  add_test(NAME cli_chat_no_template COMMAND sh -c "$0 chat -m $1 </dev/null 2>&1; echo exit=$?"
                   $<TARGET_FILE:tpinfer_cli> ${gen_stories})
  set_tests_properties(cli_chat_no_template PROPERTIES
                       PASS_REGULAR_EXPRESSION "no chat_template\; chat supports.*llama3.*llama2.*mistral.*chatml.*exit=1")
endif()
