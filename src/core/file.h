#ifndef TPI_CORE_FILE_H
#define TPI_CORE_FILE_H
/* Every file the library reads goes through here, so that only regular files
 * are opened and no open can block (a FIFO named config.json, a device). */
#include <stddef.h>

#include "tpinfer.h"

/* Opens `path` read-only for a regular file and returns its descriptor in
 * *fd (caller closes) and its size in *bytes. Anything else is TPI_EIO with a
 * message that says what the path is: "not found" (ENOENT only), "is a
 * directory", "is not a regular file (a FIFO)", "a symlink loop", "permission
 * denied", or the system's words for other errors. */
int tpi_file_open(const char *path, int *fd, size_t *bytes, tpi_error *err);
/* Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). */
int tpi_file_read(const char *path, char **out, size_t *len, tpi_error *err);
/* Read-only memory map of a whole file; tpi_file_unmap releases it. */
int tpi_file_map(const char *path, const void **data, size_t *bytes, tpi_error *err);
void tpi_file_unmap(const void *data, size_t bytes);
/* Drops this process's pages of [data, data + bytes) of a read-only file
 * mapping (the whole pages inside it) from its resident set; the page cache
 * keeps them and a later read maps them again. For bytes a rank has copied
 * out and no longer reads: a row-parallel slice reads every page of its
 * tensor, but keeps only its columns. */
void tpi_file_release(const void *data, size_t bytes);
/* "dir/name" in a malloc'd string. */
char *tpi_path_join(const char *dir, const char *name);
/* 0 only when nothing is at `path` (ENOENT, ENOTDIR); a directory, a FIFO, a
 * symlink loop or an unreadable file count as present, so that opening them
 * reports what they are instead of the caller saying "missing". */
int tpi_file_exists(const char *path);
#endif
