#ifndef TPI_IO_CHECKPOINT_H
#define TPI_IO_CHECKPOINT_H
/* A checkpoint directory: model.safetensors, or the shards that
 * model.safetensors.index.json names. All files are mapped, none read whole.
 * With an index, its weight_map decides where each tensor comes from: every
 * tensor it names must be in the shard it names, and no shard may hold a
 * tensor the map does not give to it. Shard names must stay inside the
 * directory (no absolute path, no "..", no symlink that resolves outside). */
#include "io/safetensors.h"

/* One weight_map entry, after validation: the tensor and the file holding it. */
typedef struct tpi_ckpt_entry {
    const tpi_st_tensor *t; /* t->name is the key; owned by files[file] */
    int file;
} tpi_ckpt_entry;

typedef struct tpi_ckpt {
    char *dir;
    tpi_st_file **files;
    int n_files;
    char *index_path;        /* NULL for a single file */
    tpi_ckpt_entry *entries; /* sorted by name; NULL for a single file */
    int64_t n_entries;
} tpi_ckpt;

/* Opens and validates the checkpoint in `dir` (O(n log n) in the tensors);
 * *out is freed with tpi_ckpt_free. Errors name the index and shard files. */
int tpi_ckpt_open(tpi_ckpt **out, const char *dir, tpi_error *err);
void tpi_ckpt_free(tpi_ckpt *c);
/* Finds a tensor in O(log n); *file receives the safetensors file holding it.
 * Returns 1 (no error written) when absent. */
int tpi_ckpt_find(const tpi_ckpt *c, const char *name, const tpi_st_tensor **t, const tpi_st_file **file);
#endif
