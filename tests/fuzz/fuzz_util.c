#include "fuzz_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

const char *fz_dir(void)
{
    if (dir[0])
        return dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tpi-fuzz-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    atexit(remove_dir);
    return dir;
}

int fz_write(const char *name, const void *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    int rc = (n && fwrite(data, 1, n, f) != n) ? -1 : 0;
    if (fclose(f))
        rc = -1;
    return rc;
}

void fz_remove(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
    unlink(p);
}

size_t fz_split(const uint8_t *data, size_t n, const uint8_t **rest, size_t *rest_n)
{
    const uint8_t *nul = n ? memchr(data, 0, n) : NULL;
    if (!nul) {
        *rest = NULL;
        *rest_n = 0;
        return n;
    }
    *rest = nul + 1;
    *rest_n = n - (size_t)(nul - data) - 1;
    return (size_t)(nul - data);
}

uint8_t *fz_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *n = (size_t)len;
    return buf;
}
