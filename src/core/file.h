#ifndef TPI_CORE_FILE_H
#define TPI_CORE_FILE_H
#include <stddef.h>

#include "tpinfer.h"

/* Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). */
int tpi_file_read(const char *path, char **out, size_t *len, tpi_error *err);
/* Read-only memory map of a whole file; tpi_file_unmap releases it. */
int tpi_file_map(const char *path, const void **data, size_t *bytes, tpi_error *err);
void tpi_file_unmap(const void *data, size_t bytes);
/* "dir/name" in a malloc'd string. */
char *tpi_path_join(const char *dir, const char *name);
int tpi_file_exists(const char *path);
#endif
