#ifndef TPI_FUZZ_UTIL_H
#define TPI_FUZZ_UTIL_H
/* Shared by the libFuzzer targets. The library reads models from directories
 * (it has no in-memory entry points), so each input is written into one
 * private temporary directory per process, on /dev/shm when it is there so a
 * run costs no disk I/O; the directory is removed at exit. */
#include <stddef.h>
#include <stdint.h>

/* The directory, created on first use; aborts if it cannot be (a fuzzer that
 * cannot write its input tests nothing). */
const char *fz_dir(void);
/* Writes dir/name with the n bytes of data (replacing it); 0 on success. */
int fz_write(const char *name, const void *data, size_t n);
/* Removes dir/name if present. */
void fz_remove(const char *name);
/* Splits data at its first NUL: returns the length of the part before it and
 * points *rest / *rest_n at what follows (NULL / 0 when there is no NUL). */
size_t fz_split(const uint8_t *data, size_t n, const uint8_t **rest, size_t *rest_n);
/* Reads a whole file into a malloc'd buffer (NULL on failure). */
uint8_t *fz_read(const char *path, size_t *n);

#endif
