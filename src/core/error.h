#ifndef TPI_CORE_ERROR_H
#define TPI_CORE_ERROR_H
#include "tpinfer.h"

/* Writes a printf-style message and code into err (when not NULL) and returns
 * code, so callers can write `return tpi_err(err, TPI_EFORMAT, "...")`. */
int tpi_err(tpi_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message with more context ("loading X: ..."). */
int tpi_err_prefix(tpi_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
