#ifndef TPI_CORE_CHECKED_H
#define TPI_CORE_CHECKED_H
/* Integer products that report overflow instead of wrapping. Sizes read from
 * files and flags are multiplied into buffer lengths; a wrapped product
 * allocates a small buffer that the code then writes far past. */
#include <stddef.h>
#include <stdint.h>

/* *out = a * b; 1 when the product does not fit (then *out is unusable). */
static inline int tpi_mul_overflow(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

static inline int tpi_mul_size_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/* The product of n non-negative factors into *out; 1 when a factor is
 * negative or the product passes INT64_MAX. */
static inline int tpi_mul_all(const int64_t *factors, int n, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (factors[i] < 0 || __builtin_mul_overflow(p, factors[i], &p))
            return 1;
    *out = p;
    return 0;
}
#endif
