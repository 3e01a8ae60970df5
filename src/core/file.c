#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int tpi_file_read(const char *path, char **out, size_t *len, tpi_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return tpi_err(err, TPI_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return tpi_err(err, TPI_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return tpi_err(err, TPI_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    if (fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return tpi_err(err, TPI_EIO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int tpi_file_map(const char *path, const void **data, size_t *bytes, tpi_error *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return tpi_err(err, TPI_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tpi_err(err, TPI_EIO, "%s: not a regular file", path);
    }
    *bytes = (size_t)st.st_size;
    if (*bytes == 0) {
        close(fd);
        *data = NULL;
        return 0;
    }
    void *p = mmap(NULL, *bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return tpi_err(err, TPI_EIO, "%s: cannot map %zu bytes: %s", path, *bytes, strerror(errno));
    *data = p;
    return 0;
}

void tpi_file_unmap(const void *data, size_t bytes)
{
    if (data && bytes)
        munmap((void *)data, bytes);
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
    return stat(path, &st) == 0;
}
