tpi_test(test_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer.c LIBS tpi_tokenizer tpi_core)

# The tokenize command end to end (only where the shared tokenizers are).
set(tok_models ${TPI_SHARED_DEFAULT}/models)
if(EXISTS ${tok_models}/llama3-tokenizer/tokenizer.json AND EXISTS ${tok_models}/stories260K-hf/tokenizer.json)
  add_test(NAME cli_tokenize_encode
           COMMAND $<TARGET_FILE:tpinfer_cli> tokenize -m ${tok_models}/llama3-tokenizer "Hello world")
  set_tests_properties(cli_tokenize_encode PROPERTIES
                       PASS_REGULAR_EXPRESSION "^128000,9906,1917\n<\\|begin_of_text\\|>\nHello\nĠworld\n$")
  add_test(NAME cli_tokenize_no_special
           COMMAND $<TARGET_FILE:tpinfer_cli> tokenize -m ${tok_models}/stories260K-hf --no-special "Hello")
  set_tests_properties(cli_tokenize_no_special PROPERTIES PASS_REGULAR_EXPRESSION "^346,306,414\n▁He\nll\no\n$")
  add_test(NAME cli_tokenize_decode
           COMMAND $<TARGET_FILE:tpinfer_cli> tokenize -m ${tok_models}/llama3-tokenizer --decode 128000,9906,1917
                   --skip-special)
  set_tests_properties(cli_tokenize_decode PROPERTIES PASS_REGULAR_EXPRESSION "^Hello world\n$")
  # Usage errors exit 2, runtime errors 1 with a message naming the file.
  add_test(NAME cli_tokenize_usage COMMAND sh -c "$0 tokenize x; test $? -eq 2" $<TARGET_FILE:tpinfer_cli>)
  add_test(NAME cli_tokenize_missing
           COMMAND sh -c "$0 tokenize -m /nonexistent x 2>&1; echo exit=$?" $<TARGET_FILE:tpinfer_cli>)
  set_tests_properties(cli_tokenize_missing PROPERTIES
                       PASS_REGULAR_EXPRESSION "nonexistent/tokenizer.json: not found.*exit=1")
endif()

# Streaming decode equals the full decode on random ids, every shared tokenizer,
# and so does generation's text (gen_text.c, hence libtpinfer).
tpi_test(test_detok_stream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_detok_stream.c LIBS tpinfer)
