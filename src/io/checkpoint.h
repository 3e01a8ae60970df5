#ifndef TPI_IO_CHECKPOINT_H
#define TPI_IO_CHECKPOINT_H
/* A checkpoint directory: model.safetensors, or the shards that
 * model.safetensors.index.json names. All files are mapped, none read whole.
 * With an index, its weight_map decides where each tensor comes from: every
 * tensor it names must be in the shard it names, and no shard may hold a
 * tensor the map does not give to it. Shard names must stay inside the
 * directory (no absolute path, no "..", no symlink that resolves outside).
 * A path to a .gguf file opens that file (and its splits) instead, its
 * tensors presented under transformers' names (io/gguf_model.c). */
#include "core/gguf.h"
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
    tpi_gguf *gguf;          /* a GGUF model: files[0] lists its tensors (its map is gguf's) */
    uint64_t file_bytes;     /* the checkpoint's files, all together */
} tpi_ckpt;

/* Opens and validates the checkpoint in `dir` (O(n log n) in the tensors);
 * *out is freed with tpi_ckpt_free. Errors name the index and shard files. */
int tpi_ckpt_open(tpi_ckpt **out, const char *dir, tpi_error *err);
void tpi_ckpt_free(tpi_ckpt *c);
/* The GGUF half of tpi_ckpt_open (io/gguf_model.c): opens `path` into c. */
int tpi_ckpt_open_gguf(tpi_ckpt *c, const char *path, tpi_error *err);
/* Renames a GGUF tensor to transformers' (blk.3.attn_q.weight ->
 * model.layers.3.self_attn.q_proj.weight) into buf; a name it does not know
 * is kept. */
void tpi_gguf_hf_name(char *buf, size_t n, const char *gguf_name);
/* The other way, for messages about a tensor the loader looks for. */
void tpi_gguf_name_of(char *buf, size_t n, const char *hf_name);
/* Finds a tensor in O(log n); *file receives the safetensors file holding it.
 * Returns 1 (no error written) when absent. */
int tpi_ckpt_find(const tpi_ckpt *c, const char *name, const tpi_st_tensor **t, const tpi_st_file **file);
#endif
