# The tokenizer of GGUF files (src/tokenizer/gguf_*.c) and their chat template.
tpi_test(test_gguf_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf_tokenizer.c LIBS tpinfer)

# The tokenize command on a lone .gguf file (only where the shared model is).
set(gguf_tok_model ${TPI_SHARED_DEFAULT}/models/stories260K/stories260K.gguf)
if(EXISTS ${gguf_tok_model})
  add_test(NAME cli_tokenize_gguf COMMAND $<TARGET_FILE:tpinfer_cli> tokenize -m ${gguf_tok_model} "Hello")
  set_tests_properties(cli_tokenize_gguf PROPERTIES PASS_REGULAR_EXPRESSION "^1,346,306,414\n<s>\n▁He\nll\no\n$")
  add_test(NAME cli_tokenize_gguf_decode
           COMMAND $<TARGET_FILE:tpinfer_cli> tokenize -m ${gguf_tok_model} --decode 1,346,306,414 --skip-special)
  set_tests_properties(cli_tokenize_gguf_decode PROPERTIES PASS_REGULAR_EXPRESSION "^Hello\n$")
  add_test(NAME cli_tokenize_gguf_missing
           COMMAND sh -c "$0 tokenize -m /nonexistent/x.gguf hi 2>&1; echo exit=$?" $<TARGET_FILE:tpinfer_cli>)
  set_tests_properties(cli_tokenize_gguf_missing PROPERTIES PASS_REGULAR_EXPRESSION "/nonexistent/x.gguf.*exit=1")
  # A lone .gguf file runs: its tokenizer encodes the prompt and decodes the
  # greedy text of models/stories260K/greedy-reference.md (llama.cpp, llama2.c).
  add_test(NAME cli_generate_gguf_text
           COMMAND $<TARGET_FILE:tpinfer_cli> generate -m ${gguf_tok_model} -p "Once upon a time" -n 64 --temp 0)
  set_tests_properties(cli_generate_gguf_text PROPERTIES PASS_REGULAR_EXPRESSION
    "^Once upon a time, there was a little girl named Lily\\. She loved to play outside in the park\\. One day, she saw a big, red ball\\. She wanted to play with it, but it was too high\\.\nLily's mom said\n")
endif()
