#ifndef TPI_CORE_MEM_H
#define TPI_CORE_MEM_H
#include <stddef.h>

/* Memory for buffers that are streamed whole (packed weights, the KV
 * cache, the activations): 64-byte aligned, and from 2 MB on, in 2 MB-aligned
 * blocks that the kernel is asked to back with huge pages. Free with free(). */
void *tpi_alloc_stream(size_t bytes);
#endif
