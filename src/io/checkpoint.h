#ifndef TPI_IO_CHECKPOINT_H
#define TPI_IO_CHECKPOINT_H
/* A checkpoint directory: model.safetensors, or the shards that
 * model.safetensors.index.json names. All files are mapped, none read whole. */
#include "io/safetensors.h"

typedef struct tpi_ckpt {
    char *dir;
    tpi_st_file **files;
    int n_files;
    char *index_path; /* NULL for a single file */
} tpi_ckpt;

int tpi_ckpt_open(tpi_ckpt **out, const char *dir, tpi_error *err);
void tpi_ckpt_free(tpi_ckpt *c);
/* Finds a tensor; *file receives the safetensors file holding it. Returns 1
 * (no error written) when absent. */
int tpi_ckpt_find(const tpi_ckpt *c, const char *name, const tpi_st_tensor **t, const tpi_st_file **file);
#endif
