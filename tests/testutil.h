#ifndef TPI_TESTUTIL_H
#define TPI_TESTUTIL_H
/* Helpers shared by the tests: where ../shared is, temp dirs, file I/O. */
#include <stddef.h>
#include <stdint.h>

/* Directory of the shared golden data: $TPI_SHARED, else the build-time default.
 * Returns NULL (after printing "skipped: ...") when it does not exist. */
const char *tu_shared_dir(void);
/* Exit code that ctest maps to "skipped". */
#define TU_SKIP 77
/* Joins path parts into a static-lifetime-free buffer owned by the caller (free()). */
char *tu_path(const char *a, const char *b);
/* dir/name in one of 4 static buffers, valid until 4 more calls (no free). */
const char *tu_in(const char *dir, const char *name);
/* Reads a whole file; returns malloc'd bytes (NUL-terminated) or NULL. */
void *tu_read_file(const char *path, size_t *bytes);
int tu_write_file(const char *path, const void *data, size_t bytes);
/* dir/file as n float32 values (malloc'd), or NULL when it cannot be read
 * or holds another number of bytes. */
float *tu_read_f32(const char *dir, const char *file, size_t n);
/* Creates a fresh temp directory (malloc'd path); tu_rmdir removes it with its files. */
char *tu_mkdtemp(void);
void tu_rmdir(const char *dir);
/* The communicator kind for this process: "mpi" when an MPI launcher
 * started it (as the tpinfer CLI decides), else "self". */
const char *tu_comm_kind(void);
/* max|a-b| / max|b| over n floats. */
double tu_rel_err(const float *a, const float *b, size_t n);
#endif
