# GGUF writing (src/io/gguf_write.c, src/io/convert*.c, tools/cmd_convert.c):
# the writer round trip through the reader, and `tpinfer convert` from the
# command line.
tpi_test(test_gguf_write SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_gguf_write.c LIBS tpi_io tpi_core TIMEOUT 60)
