/* Transparent huge pages are often in "madvise" mode, so a large buffer
 * gets them only when asked. A stream over 4 KB pages takes a TLB miss per
 * page, and on a VM each miss is a two-level page walk: the decode GEMV read
 * 23 GB/s on one thread over 4 KB pages against 29-37 over 2 MB pages (a
 * micro-benchmark, commit 61a768d). */
#include <stdlib.h>
#include <sys/mman.h>

#include "core/mem.h"

void *tpi_alloc_stream(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) {
        size_t alloc = (bytes + 63) / 64 * 64;
        return aligned_alloc(64, alloc ? alloc : 64);
    }
    size_t alloc = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, alloc);
#ifdef MADV_HUGEPAGE
    if (p)
        madvise(p, alloc, MADV_HUGEPAGE); /* only a hint: failure leaves 4 KB pages */
#endif
    return p;
}
