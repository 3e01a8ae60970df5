# GGUF files: the reader and hostile files (test_gguf), and models loaded from
# them against ../shared/golden/gguf at 1, 2 and 3 ranks (test_gguf_model).
tpi_test(test_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf.c LIBS tpinfer PkgConfig::CJSON)
tpi_test(test_gguf_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf_model.c ${CMAKE_CURRENT_SOURCE_DIR}/golden.c
         LIBS tpinfer)

# tpi_mpi_test comes from tp.cmake, included after this file.
function(tpi_gguf_mpi_tests)
  foreach(n 2 3)
    tpi_mpi_test(test_gguf_model_tp${n} ${n} COMMAND $<TARGET_FILE:test_gguf_model>)
  endforeach()
endfunction()
cmake_language(DEFER CALL tpi_gguf_mpi_tests)

# --quant on the command line (tpi_cli_usage and tpi_cli_fail come from
# cli.cmake): a bad type is a usage error; a .gguf file refuses it before
# anything is read; a quantizing load runs and reports its copied bytes.
tpi_cli_usage(cli_quant_bad "--quant: expected q8_0, q4_0 or q4_k, found \"q5_k\"" ${gen} --quant q5_k)
tpi_cli_fail(cli_quant_gguf "quant: .*none.gguf is a GGUF file" logits -m ${CMAKE_CURRENT_BINARY_DIR}/none.gguf
             --quant q8_0 --ids 1)
add_test(NAME cli_quant_generate COMMAND sh -c "'${cli}' generate -m '${tiny}' --ids 1,2 -n 4 --quant q4_k 2>&1")
set_tests_properties(cli_quant_generate PROPERTIES FIXTURES_REQUIRED tiny
                     PASS_REGULAR_EXPRESSION "memory: rank 0: [0-9.]+ MiB weights \\(0.00 mapped, [0-9.]+ copied\\)")
