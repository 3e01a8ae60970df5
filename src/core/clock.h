#ifndef TPI_CORE_CLOCK_H
#define TPI_CORE_CLOCK_H
/* Seconds on the monotonic clock, for timing (benchmarks, generation
 * statistics): differences only, never a time of day. */
double tpi_seconds(void);
#endif
