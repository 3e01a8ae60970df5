#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

/* Fast kernels register here once they exist (see *_avx2.c). */
const tpi_backend *tpi_backend_cpu(void)
{
    const char *k = getenv("TPI_KERNELS");
    if (k && !strcmp(k, "ref"))
        return tpi_backend_cpu_ref();
    return tpi_backend_cpu_ref();
}
