#include "io/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

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
    /* Open each distinct shard once, then check that every tensor the index
     * names is in the shard it names. */
    for (const cJSON *e = map->child; e && !rc; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            rc = tpi_err(err, TPI_EFORMAT, "%s: weight_map[\"%s\"] must be a file name in the same directory",
                         c->index_path, e->string);
            break;
        }
        char *path = tpi_path_join(c->dir, e->valuestring);
        int seen = 0;
        for (int i = 0; i < c->n_files && !seen; i++)
            seen = !strcmp(c->files[i]->path, path);
        if (!seen && !tpi_file_exists(path))
            rc = tpi_err(err, TPI_EIO, "%s: weight_map names shard \"%s\" (for tensor \"%s\"), which is missing: %s",
                         c->index_path, e->valuestring, e->string, path);
        else if (!seen)
            rc = add_file(c, path, err);
        for (int i = 0; i < c->n_files && !rc; i++)
            if (!strcmp(c->files[i]->path, path) && !tpi_st_find(c->files[i], e->string))
                rc = tpi_err(err, TPI_EFORMAT, "%s: weight_map puts tensor \"%s\" in %s, which does not hold it",
                             c->index_path, e->string, path);
        free(path);
    }
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
    char *single = tpi_path_join(dir, "model.safetensors");
    c->index_path = tpi_path_join(dir, "model.safetensors.index.json");
    if (tpi_file_exists(c->index_path)) {
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
        tpi_st_close(c->files[i]);
    free(c->files);
    free(c->index_path);
    free(c->dir);
    free(c);
}

int tpi_ckpt_find(const tpi_ckpt *c, const char *name, const tpi_st_tensor **t, const tpi_st_file **file)
{
    for (int i = 0; i < c->n_files; i++) {
        const tpi_st_tensor *x = tpi_st_find(c->files[i], name);
        if (x) {
            *t = x;
            *file = c->files[i];
            return 0;
        }
    }
    return 1;
}
