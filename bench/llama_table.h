#ifndef TPI_BENCH_LLAMA_TABLE_H
#define TPI_BENCH_LLAMA_TABLE_H
/* pp512 and tg128 at 1x1, 1x2 and 2x1 (ranks x threads), as llama-bench
 * names its tests (llama_table.c). `self` is tpinfer-bench's path (the
 * workers), `model` a .gguf file or a checkpoint directory, bf16_act the
 * workers' --bf16-activations ("0" or "1"). Prints the kernel set that ran,
 * a markdown table and one "RESULT ranks threads test tokens_per_s" line per
 * figure; returns the exit code. */
int bench_llama_table(const char *self, const char *model, int reps, const char *bf16_act);
#endif
