#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static const char *kind_name(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a file";
}

static int open_error(const char *path, int e, tpi_error *err)
{
    switch (e) {
    case ENOENT: return tpi_err(err, TPI_EIO, "%s: not found", path);
    case ENOTDIR: return tpi_err(err, TPI_EIO, "%s: not found (a component of the path is not a directory)", path);
    case EISDIR: return tpi_err(err, TPI_EIO, "%s: is a directory, expected a regular file", path);
    case ELOOP: return tpi_err(err, TPI_EIO, "%s: cannot open: a symlink loop (too many levels of links)", path);
    case EACCES:
    case EPERM: return tpi_err(err, TPI_EIO, "%s: cannot open: permission denied", path);
    default: return tpi_err(err, TPI_EIO, "%s: cannot open: %s", path, strerror(e));
    }
}

int tpi_file_open(const char *path, int *fd, size_t *bytes, tpi_error *err)
{
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever;
     * the file type is checked before anything is read. */
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (d < 0)
        return open_error(path, errno, err);
    struct stat st;
    int rc = 0;
    if (fstat(d, &st) != 0)
        rc = tpi_err(err, TPI_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = tpi_err(err, TPI_EIO, "%s: is a directory, expected a regular file", path);
    else if (!S_ISREG(st.st_mode))
        rc = tpi_err(err, TPI_EIO, "%s: is not a regular file (%s)", path, kind_name(st.st_mode));
    else if ((uint64_t)st.st_size > SIZE_MAX / 2)
        rc = tpi_err(err, TPI_EIO, "%s: %lld bytes is too large to read", path, (long long)st.st_size);
    else if (fcntl(d, F_SETFL, fcntl(d, F_GETFL) & ~O_NONBLOCK) != 0)
        rc = tpi_err(err, TPI_EIO, "%s: cannot clear O_NONBLOCK: %s", path, strerror(errno));
    if (rc) {
        close(d);
        return rc;
    }
    *fd = d;
    *bytes = (size_t)st.st_size;
    return 0;
}

static int read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int tpi_file_read(const char *path, char **out, size_t *len, tpi_error *err)
{
    int fd;
    size_t n;
    int rc = tpi_file_open(path, &fd, &n, err);
    if (rc)
        return rc;
    char *buf = malloc(n + 1);
    if (!buf)
        rc = tpi_err(err, TPI_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    else if (read_all(fd, buf, n) != 0)
        rc = tpi_err(err, TPI_EIO, "%s: short read (expected %zu bytes)", path, n);
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int tpi_file_map(const char *path, const void **data, size_t *bytes, tpi_error *err)
{
    int fd;
    int rc = tpi_file_open(path, &fd, bytes, err);
    if (rc)
        return rc;
    if (*bytes == 0) {
        close(fd);
        *data = NULL;
        return 0;
    }
    void *p = mmap(NULL, *bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return tpi_err(err, TPI_EIO, "%s: cannot map %zu bytes: %s", path, *bytes, strerror(e));
    *data = p;
    return 0;
}

void tpi_file_unmap(const void *data, size_t bytes)
{
    if (data && bytes)
        munmap((void *)data, bytes);
}

void tpi_file_release(const void *data, size_t bytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), b = (uintptr_t)data, e = b + bytes;
    uintptr_t first = (b + page - 1) / page * page, last = e / page * page;
    if (last > first)
        madvise((void *)first, last - first, MADV_DONTNEED);
}

char *tpi_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int tpi_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}
