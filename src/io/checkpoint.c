#include "io/checkpoint.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

/* A weight_map entry while the index is checked; names point into the JSON. */
typedef struct map_entry {
    const char *name, *shard;
    int file;
    const tpi_st_tensor *t;
} map_entry;

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const map_entry *)a)->name, ((const map_entry *)b)->name);
}

static int cmp_entry_shard(const void *a, const void *b)
{
    return strcmp(((const map_entry *)a)->shard, ((const map_entry *)b)->shard);
}

static int add_file(tpi_ckpt *c, const char *path, tpi_error *err)
{
    tpi_st_file **files = realloc(c->files, (size_t)(c->n_files + 1) * sizeof *files);
    if (!files)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    c->files = files;
    int rc = tpi_st_open(&c->files[c->n_files], path, err);
    if (!rc)
        c->n_files++;
    return rc;
}

/* A shard name must be a plain file name whose real path is inside the real
 * model directory `real_dir`: an index from the internet must not make us map
 * /etc/shadow or ../other-model/x.safetensors. */
static int check_shard(const tpi_ckpt *c, const char *real_dir, const map_entry *e, const char *path,
                       tpi_error *err)
{
    const char *s = e->shard, *ip = c->index_path;
    if (s[0] == '/')
        return tpi_err(err, TPI_EFORMAT, "%s: weight_map[\"%s\"] = \"%s\" is an absolute path; shards must be file "
                       "names in the model directory", ip, e->name, s);
    if (!strcmp(s, "..") || !strncmp(s, "../", 3) || strstr(s, "/../") ||
        (strlen(s) >= 3 && !strcmp(s + strlen(s) - 3, "/..")))
        return tpi_err(err, TPI_EFORMAT, "%s: weight_map[\"%s\"] = \"%s\" has a \"..\" component, which leaves the "
                       "model directory", ip, e->name, s);
    if (!s[0] || strchr(s, '/') || !strcmp(s, "."))
        return tpi_err(err, TPI_EFORMAT, "%s: weight_map[\"%s\"] = \"%s\" must be a file name in the same directory",
                       ip, e->name, s);
    if (!tpi_file_exists(path))
        return tpi_err(err, TPI_EIO, "%s: weight_map names shard \"%s\" (for tensor \"%s\"), which is missing "
                       "(not found): %s", ip, s, e->name, path);
    char *real = realpath(path, NULL);
    if (!real) {
        int fd, e0 = errno;
        size_t bytes;
        /* The open names the cause (a symlink loop, permission denied). */
        int rc = tpi_file_open(path, &fd, &bytes, err);
        if (!rc) {
            close(fd);
            rc = tpi_err(err, TPI_EIO, "%s: cannot resolve: %s", path, strerror(e0));
        }
        tpi_err_prefix(err, "%s: shard \"%s\"", ip, s);
        return rc;
    }
    size_t n = strlen(real_dir);
    int inside = !strncmp(real, real_dir, n) && (real[n] == '/' || (n == 1 && real_dir[0] == '/'));
    int rc = inside ? 0 : tpi_err(err, TPI_EFORMAT, "%s: shard \"%s\" resolves to %s, outside the model "
                                  "directory %s (a symlink leading out)", ip, s, real, real_dir);
    free(real);
    return rc;
}

/* Opens each distinct shard once: entries sorted by shard name put each
 * shard's tensors side by side. */
static int open_shards(tpi_ckpt *c, map_entry *m, int64_t n, tpi_error *err)
{
    char *real_dir = realpath(c->dir, NULL);
    if (!real_dir)
        return tpi_err(err, TPI_EIO, "%s: cannot resolve the model directory: %s", c->dir, strerror(errno));
    qsort(m, (size_t)n, sizeof *m, cmp_entry_shard);
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        if (i && !strcmp(m[i].shard, m[i - 1].shard)) {
            m[i].file = m[i - 1].file;
            continue;
        }
        char *path = tpi_path_join(c->dir, m[i].shard);
        rc = !path ? tpi_err(err, TPI_ENOMEM, "out of memory") : check_shard(c, real_dir, &m[i], path, err);
        if (!rc)
            rc = add_file(c, path, err);
        m[i].file = c->n_files - 1;
        free(path);
    }
    free(real_dir);
    return rc;
}

/* Each way round: the map's tensor is in its shard, and each shard's tensor
 * is one the map gives to that shard. */
static int check_map(tpi_ckpt *c, map_entry *m, int64_t n, tpi_error *err)
{
    for (int64_t i = 0; i < n; i++)
        if (!(m[i].t = tpi_st_find(c->files[m[i].file], m[i].name)))
            return tpi_err(err, TPI_EFORMAT, "%s: weight_map puts tensor \"%s\" in %s, which does not hold it",
                           c->index_path, m[i].name, c->files[m[i].file]->path);
    qsort(m, (size_t)n, sizeof *m, cmp_entry_name);
    for (int f = 0; f < c->n_files; f++) {
        const tpi_st_file *sf = c->files[f];
        for (int64_t j = 0; j < sf->n_tensors; j++) {
            map_entry key = {.name = sf->tensors[j].name};
            const map_entry *e = bsearch(&key, m, (size_t)n, sizeof *m, cmp_entry_name);
            if (!e)
                return tpi_err(err, TPI_EFORMAT, "%s holds tensor \"%s\", which %s's weight_map does not list",
                               sf->path, key.name, c->index_path);
            if (e->file != f)
                return tpi_err(err, TPI_EFORMAT, "%s holds tensor \"%s\", but %s's weight_map gives it to %s",
                               sf->path, key.name, c->index_path, c->files[e->file]->path);
        }
    }
    return 0;
}

/* Collects weight_map into m (sorted by name) and refuses non-string values
 * and names listed twice (cJSON keeps both members). */
static int read_map(const tpi_ckpt *c, const cJSON *map, map_entry *m, int64_t n, tpi_error *err)
{
    int64_t i = 0;
    for (const cJSON *e = map->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e))
            return tpi_err(err, TPI_EFORMAT, "%s: weight_map[\"%s\"] must be a shard file name (a string)",
                           c->index_path, e->string);
        m[i] = (map_entry){.name = e->string, .shard = e->valuestring};
    }
    qsort(m, (size_t)n, sizeof *m, cmp_entry_name);
    for (i = 1; i < n; i++)
        if (!strcmp(m[i - 1].name, m[i].name))
            return tpi_err(err, TPI_EFORMAT, "%s: weight_map lists tensor \"%s\" more than once", c->index_path,
                           m[i].name);
    return 0;
}

static int open_index(tpi_ckpt *c, tpi_error *err)
{
    cJSON *root;
    int rc = tpi_json_load_file(c->index_path, &root, err);
    if (rc)
        return rc;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return tpi_err(err, TPI_EFORMAT, "%s: field \"weight_map\" missing or not an object", c->index_path);
    }
    int64_t n = cJSON_GetArraySize(map);
    map_entry *m = calloc((size_t)n + 1, sizeof *m);
    if (!m)
        rc = tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld entries", c->index_path, (long long)n);
    if (!rc)
        rc = read_map(c, map, m, n, err);
    if (!rc)
        rc = open_shards(c, m, n, err);
    if (!rc)
        rc = check_map(c, m, n, err);
    if (!rc && !(c->entries = malloc(((size_t)n + 1) * sizeof *c->entries)))
        rc = tpi_err(err, TPI_ENOMEM, "%s: out of memory for %lld entries", c->index_path, (long long)n);
    for (int64_t i = 0; !rc && i < n; i++)
        c->entries[i] = (tpi_ckpt_entry){.t = m[i].t, .file = m[i].file};
    c->n_entries = rc ? 0 : n;
    free(m);
    cJSON_Delete(root);
    return rc;
}

int tpi_ckpt_open(tpi_ckpt **out, const char *dir, tpi_error *err)
{
    *out = NULL;
    tpi_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    }
    int rc;
    if (tpi_gguf_is_path(dir)) {
        rc = tpi_ckpt_open_gguf(c, dir, err);
        if (rc) {
            tpi_ckpt_free(c);
            return rc;
        }
        *out = c;
        return 0;
    }
    char *single = tpi_path_join(dir, "model.safetensors");
    c->index_path = tpi_path_join(dir, "model.safetensors.index.json");
    if (!single || !c->index_path) {
        rc = tpi_err(err, TPI_ENOMEM, "out of memory");
    } else if (tpi_file_exists(c->index_path)) {
        rc = open_index(c, err);
    } else {
        free(c->index_path);
        c->index_path = NULL;
        if (tpi_file_exists(single))
            rc = add_file(c, single, err);
        else
            rc = tpi_err(err, TPI_EIO, "%s: no model.safetensors or model.safetensors.index.json in this directory",
                         dir);
    }
    free(single);
    for (int i = 0; !rc && i < c->n_files; i++)
        c->file_bytes += c->files[i]->map_bytes;
    if (rc) {
        tpi_ckpt_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void tpi_ckpt_free(tpi_ckpt *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_files; i++)
        tpi_st_close(c->files[i]); /* a GGUF's list has no map of its own */
    tpi_gguf_close(c->gguf);
    free(c->files);
    free(c->entries);
    free(c->index_path);
    free(c->dir);
    free(c);
}

int tpi_ckpt_find(const tpi_ckpt *c, const char *name, const tpi_st_tensor **t, const tpi_st_file **file)
{
    if (!c->entries) {
        const tpi_st_tensor *x = c->n_files ? tpi_st_find(c->files[0], name) : NULL;
        if (!x)
            return 1;
        *t = x;
        *file = c->files[0];
        return 0;
    }
    int64_t lo = 0, hi = c->n_entries;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->entries[mid].t->name, name);
        if (!cmp) {
            *t = c->entries[mid].t;
            *file = c->files[c->entries[mid].file];
            return 0;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 1;
}
