#include "tp/split.h"

void tpi_split(int64_t n, int64_t unit, int size, int rank, int64_t *begin, int64_t *count)
{
    int64_t units = (n + unit - 1) / unit;
    int64_t base = units / size, extra = units % size;
    int64_t u0 = rank * base + (rank < extra ? rank : extra);
    int64_t nu = base + (rank < extra);
    int64_t b = u0 * unit, e = (u0 + nu) * unit;
    if (b > n)
        b = n;
    if (e > n)
        e = n;
    *begin = b;
    *count = e - b;
}
