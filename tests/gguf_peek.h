#ifndef TPI_TESTS_GGUF_PEEK_H
#define TPI_TESTS_GGUF_PEEK_H
/* Just enough of GGUF v3 for the quantization tests to find one tensor's
 * bytes in a file read whole (the library's reader is core/gguf.c's). */
#include <stddef.h>
#include <stdint.h>

typedef struct gguf_peek_tensor {
    uint32_t type;     /* ggml type: 0 F32, 2 Q4_0, 8 Q8_0, 12 Q4_K, 14 Q6_K */
    uint64_t dims[4];  /* dims[0] is the row length (ggml's ne[0]) */
    uint32_t n_dims;
    const uint8_t *data;
} gguf_peek_tensor;

/* Finds tensor `name` in the GGUF image buf[0, bytes); 0, or -1 when the
 * file is malformed or has no such tensor. */
int gguf_peek(const uint8_t *buf, size_t bytes, const char *name, gguf_peek_tensor *out);
#endif
