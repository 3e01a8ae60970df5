# GGUF writing (src/io/gguf_write.c, src/io/convert*.c, tools/cmd_convert.c):
# the writer round trip through the reader, and `tpinfer convert` from the
# command line.
tpi_test(test_gguf_write SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf_write.c LIBS tpi_io tpi_core TIMEOUT 60)
tpi_test(test_convert SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_convert.c LIBS tpinfer TIMEOUT 300)

# The command line: usage errors exit 2 naming the flag, runtime errors 1
# naming the path or tensor; no partial file is left behind.
set(cvcli $<TARGET_FILE:tpinfer_cli>)
set(stories ${TPI_SHARED_DEFAULT}/models/stories260K-hf)
function(tpi_convert_cli name regex)
  add_test(NAME ${name} COMMAND sh -c "'${cvcli}' convert \"$@\" 2>&1; echo \"exit=$?\"" sh ${ARGN})
  set_tests_properties(${name} PROPERTIES TIMEOUT 60 PASS_REGULAR_EXPRESSION "${regex}")
endfunction()
tpi_convert_cli(convert_cli_bad_type "--type \"q5_k\": expected f32, f16, bf16, q8_0, q4_0, q4_k or q6_k\nexit=2"
                -m ${stories} --type q5_k --out ${CMAKE_CURRENT_BINARY_DIR}/cv-bad.gguf)
tpi_convert_cli(convert_cli_no_out "-m, --type and --out are required.*exit=2" -m ${stories} --type f32)
tpi_convert_cli(convert_cli_unwritable "cv-no-dir/x.gguf.part: cannot create: No such file or directory\nexit=1"
                -m ${stories} --type f32 --out ${CMAKE_CURRENT_BINARY_DIR}/cv-no-dir/x.gguf)
tpi_convert_cli(convert_cli_missing_model "no-such-model/config.json: .*exit=1"
                -m ${CMAKE_CURRENT_BINARY_DIR}/no-such-model --type f32 --out ${CMAKE_CURRENT_BINARY_DIR}/cv-x.gguf)
# stories260K's 172 intermediate features fit no block: the error names the tensor, and no file remains
set(cvq ${CMAKE_CURRENT_BINARY_DIR}/cv-stories-q8.gguf)
add_test(NAME convert_cli_unquantizable COMMAND sh -c "rm -f '${cvq}'; '${cvcli}' convert -m '${stories}' --type q8_0 --out '${cvq}' 2>&1; echo \"exit=$?\"; ls '${cvq}' '${cvq}.part' 2>&1 | grep -c 'No such'")
set_tests_properties(convert_cli_unquantizable PROPERTIES TIMEOUT 60 PASS_REGULAR_EXPRESSION
  "tensor blk.0.ffn_down.weight \\(model.layers.0.mlp.down_proj.weight\\) has 172 columns, not a multiple of Q8_0's block of 32 elements: it cannot be stored as Q8_0; convert with --type f32, f16 or bf16\nexit=1\n2\n")
# a K type falls back to Q4_0 where 256 does not divide the columns, but 172 fits no block
tpi_convert_cli(convert_cli_k_unquantizable "tensor blk.0.ffn_down.weight .*has 172 columns, not a multiple of Q4_0's block of 32 elements: it cannot be stored as Q4_K.*exit=1"
                -m ${stories} --type q4_k --out ${CMAKE_CURRENT_BINARY_DIR}/cv-k.gguf)

# tpinfer-bench's llama-bench table (bench/llama_table.c): pp512 and tg128 at
# 1x1, 1x2 and 2x1, one RESULT line each.
if(TPI_OPENBLAS AND TPI_CBLAS_DIR)
  add_test(NAME bench_llama_table COMMAND sh -c "'$<TARGET_FILE:tpinfer_bench>' -m '${CMAKE_CURRENT_BINARY_DIR}/cli-tiny' --llama-table --reps 1 2>/dev/null | grep '^RESULT' | cut -d' ' -f1-4")
  set_tests_properties(bench_llama_table PROPERTIES FIXTURES_REQUIRED tiny TIMEOUT 300 PASS_REGULAR_EXPRESSION
    "^RESULT 1 1 pp512\nRESULT 1 1 tg128\nRESULT 1 2 pp512\nRESULT 1 2 tg128\nRESULT 2 1 pp512\nRESULT 2 1 tg128\n$")
endif()

# tokenizer.ggml.model and .pre chosen from real tokenizers' pre-tokenizers
find_program(TPI_PYTHON3 python3)
if(TPI_PYTHON3)
  foreach(pair "llama3-tokenizer|gpt2 \\(llama-bpe\\)" "qwen3-tokenizer|gpt2 \\(qwen2\\)" "gpt2-tokenizer|gpt2 \\(gpt-2\\)"
               "mistral-7b-tokenizer|tokenizer llama\n")
    string(REPLACE "|" ";" p "${pair}")
    list(GET p 0 tok)
    list(GET p 1 want)
    add_test(NAME convert_pre_${tok} COMMAND ${TPI_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/convert_pre.py ${cvcli}
             ${TPI_SHARED_DEFAULT}/golden/llama-gqa ${TPI_SHARED_DEFAULT}/models/${tok} ${CMAKE_CURRENT_BINARY_DIR}/cv-pre-${tok})
    set_tests_properties(convert_pre_${tok} PROPERTIES TIMEOUT 60 PASS_REGULAR_EXPRESSION "${want}")
  endforeach()
endif()
