/* tpinfer: tensor-parallel inference of Hugging Face transformer checkpoints.
 *
 * The only header users include. Conventions:
 * - Functions that can fail return 0 or a negative TPI_E* code and, when `err`
 *   is not NULL, write a message naming the file, tensor or field, what was
 *   expected and what was found.
 * - Whoever creates frees: tpi_x_create/load pairs with tpi_x_free, and every
 *   free function accepts NULL.
 */
#ifndef TPINFER_H
#define TPINFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What libtpinfer.so exports: the functions below and nothing of its
 * internals (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define TPI_API __attribute__((visibility("default")))
#else
#define TPI_API
#endif

/* ---- errors ------------------------------------------------------------ */

enum {
    TPI_OK = 0,
    TPI_EIO = -1,          /* a file could not be opened, read or mapped */
    TPI_EFORMAT = -2,      /* a file's content is malformed */
    TPI_ECONFIG = -3,      /* a config field is missing or has a bad value */
    TPI_ENOMEM = -4,
    TPI_EINVAL = -5,       /* a bad argument from the caller (ids, sizes) */
    TPI_EUNSUPPORTED = -6, /* well-formed, but not something tpinfer runs */
    TPI_ECOMM = -7,        /* the communicator failed */
    TPI_ELIMIT = -8,       /* a context or size limit was reached */
    TPI_ENONFINITE = -9,   /* a weight or a computed value (logits) is NaN or infinite */
    TPI_ETIMEDOUT = -10,   /* a collective waited past tpi_comm_opts.timeout_s: a rank stopped or hung */
    TPI_EINTR = -11,       /* tpi_comm_interrupt ended a collective */
};

typedef struct tpi_error {
    int code;
    char msg[1024];
} tpi_error;

/* ---- communicator (one rank per process; see DESIGN.md) ---------------- */

typedef struct tpi_comm tpi_comm;

enum tpi_allreduce_kind {
    TPI_ALLREDUCE_AUTO = 0, /* through shared memory when every rank is on one machine, else MPI's */
    TPI_ALLREDUCE_MPI = 1,  /* MPI_Allreduce always (to compare, or to test the network path) */
};

/* How an all-reduce's partial sums travel between machines (sums are
 * accumulated in float32 whatever the wire); ranks sharing a machine
 * through shared memory always exchange float32. */
enum tpi_wire_kind {
    TPI_WIRE_F32 = 0,  /* float32: exact */
    TPI_WIRE_BF16 = 1, /* bfloat16: half the bytes, ~3 significant digits */
    TPI_WIRE_Q8 = 2,   /* blocks of 32 int8 with a float32 scale (as Q8_0): 9/32 of the bytes */
};

typedef struct tpi_comm_opts {
    const char *kind; /* "self" (a world of one) or "mpi"; NULL: "self" */
    int allreduce;    /* enum tpi_allreduce_kind; the same on every rank */
    /* The watchdog: seconds one collective may wait for the other ranks
     * (waiting only, not the compute between collectives) before it fails
     * with TPI_ETIMEDOUT; tpi_comm_status then names the ranks that did not
     * arrive. 0: no watchdog (the tpinfer CLI's default is 60). Finite,
     * >= 0; the same on every rank. tpi_comm_bcast_idle is exempt. */
    double timeout_s;
    int wire; /* enum tpi_wire_kind; the same on every rank */
} tpi_comm_opts;

/* Creates the communicator for this process (opts NULL: a world of one).
 * "mpi" initialises MPI with argc/argv (both may be NULL) unless the
 * application already did; started without a launcher it is a world of one.
 * Whether a launcher started the process is the caller's to know (the
 * tpinfer CLI reads the launchers' environment variables). Collective. */
TPI_API int tpi_comm_create(tpi_comm **out, const tpi_comm_opts *opts, int *argc, char ***argv, tpi_error *err);
/* This process's rank and the world size; NULL is a world of one. */
TPI_API int tpi_comm_rank(const tpi_comm *c);
TPI_API int tpi_comm_size(const tpi_comm *c);
/* Ends the whole job (all ranks) with `code`; used when one rank fails. */
TPI_API void tpi_comm_abort(tpi_comm *c, int code);
TPI_API void tpi_comm_free(tpi_comm *c);
/* Ends this rank's waiting: the collective it waits in, or the next it
 * enters, and every later one fail with TPI_EINTR, so a rank blocked in a
 * collective notices a signal. Async-signal-safe: the library installs no
 * signal handlers, the application's handler calls this. code (non-zero,
 * e.g. 128 + the signal) is kept for tpi_comm_status. After TPI_EINTR or
 * TPI_ETIMEDOUT the communicator can only be aborted (ending the job), or
 * freed, which then frees this rank's memory alone (the others may never
 * join a collective teardown) and leaves MPI initialised. */
TPI_API void tpi_comm_interrupt(tpi_comm *c, int code);
/* 0 while c works; after a collective failed with TPI_ETIMEDOUT or
 * TPI_EINTR (or tpi_comm_interrupt was called), that code and, in err, what
 * happened: "rank 1 did not reach collective #5123 (allreduce) within 60 s",
 * "interrupted (code 143) ...". Local. */
TPI_API int tpi_comm_status(const tpi_comm *c, tpi_error *err);

/* Collectives: every rank calls each one, in the same order, with the same
 * root and sizes; `c` NULL is a world of one. They return 0, TPI_EINVAL for a
 * root outside the world or a negative count, TPI_ENOMEM, or TPI_ECOMM when
 * the transport fails (a rank died: end the job with tpi_comm_abort). */

/* Copies `bytes` bytes of buf on `root` into buf on every other rank. */
TPI_API int tpi_comm_bcast(tpi_comm *c, void *buf, size_t bytes, int root);
/* tpi_comm_bcast for ranks that may wait an unbounded time for root (an
 * idle server, a chat waiting for its user's next line): exempt from the
 * watchdog, and the waiting ranks sleep between polls instead of burning a
 * core (a new message waits up to ~2 ms). tpi_comm_interrupt ends it. */
TPI_API int tpi_comm_bcast_idle(tpi_comm *c, void *buf, size_t bytes, int root);
/* Root receives `bytes` bytes from every rank into recv [size * bytes], in
 * rank order; recv is unused (may be NULL) on the other ranks. */
TPI_API int tpi_comm_gather(tpi_comm *c, const void *send, size_t bytes, void *recv, int root);
/* Rank r sends counts[r] floats (counts [size], the same on every rank);
 * root receives them back to back, in rank order, into recv (NULL elsewhere). */
TPI_API int tpi_comm_gatherv(tpi_comm *c, const float *send, float *recv, const int64_t *counts, int root);
/* Returns once every rank has called it. */
TPI_API int tpi_comm_barrier(tpi_comm *c);
/* Element-wise sum of buf [n] over the ranks, in place; every rank gets a
 * bit-identical result. */
TPI_API int tpi_comm_allreduce_sum_f32(tpi_comm *c, float *buf, int64_t n);

/* ---- model ------------------------------------------------------------- */

typedef struct tpi_model tpi_model;

typedef struct tpi_load_opts {
    tpi_comm *comm;           /* NULL: a world of one */
    const char *tp_plan_file; /* NULL: config's base_model_tp_plan, else "auto" */
    int n_threads;            /* kernel threads in this rank; 0: the machine's cores / local_ranks */
    int local_ranks;          /* ranks of comm sharing this machine; 0: all of them */
    /* Tokens per pass of a forward, all sequences together (bounds the
     * activations of a long prompt); 0: 512. The same on every rank (checked). */
    int64_t prefill_chunk;
    /* CPU kernels: NULL or "auto" (the fastest this processor runs), "ref",
     * "avx2" or "avx512". A set the processor cannot run falls back to the
     * fastest it can; tpi_model_info's kernels names the set in use. */
    const char *kernels;
    /* 1: scan every weight this rank holds, as stored (f32, bf16, f16), for
     * NaN and infinity, and fail the load with TPI_ENONFINITE naming the
     * first bad tensor and element. It reads every byte of the slice once.
     * The same on every rank (checked); a rank's failure then fails the
     * load on every rank with that rank's message. */
    int check_weights;
    /* Memory admission (DESIGN.md "Memory admission"): a KV cache or the
     * activations of a generation that would take more than this rank may
     * have is refused with TPI_ENOMEM, naming what it needs and what is
     * available, rather than allocated and OOM-killed later. 0: measure
     * the machine (MemAvailable, the cgroup limit), > 0: this many bytes for
     * the library's KV caches and activations on each rank, -1: no check. */
    int64_t mem_limit_bytes;
    /* NULL or "": weights as stored. "q8_0", "q4_0" or "q4_k": every rank
     * quantizes its slice of each matrix of a safetensors checkpoint to that
     * GGUF block type while loading (as `tpinfer convert --type` would), and
     * computes on the blocks. An unknown name is TPI_EINVAL; a GGUF file
     * refuses it (it is quantized already). */
    const char *quant;
    /* 1: the prefill GEMM of BF16 weights rounds activations to bf16 and runs
     * on the bf16 dot product (AVX512_BF16), as transformers computes a bf16
     * model; 0: fp32 activations (transformers' fp32 numbers). Ignored where
     * the CPU lacks AVX512_BF16 (tpi_model_info.kernels says which runs).
     * Another value is TPI_EINVAL; the same on every rank (checked). */
    int bf16_activations;
} tpi_load_opts;

typedef struct tpi_model_info {
    const char *architecture; /* "LlamaForCausalLM", ... */
    int64_t vocab_size, hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int64_t max_position_embeddings;
    int32_t bos_id;           /* -1 when none */
    int32_t eos_ids[8];
    int n_eos;
    int64_t weight_bytes;     /* bytes of weights this rank holds */
    /* Of weight_bytes, those read in place from the file mapping (the page
     * cache shares them) and those copied or converted into this rank's own
     * memory (strided slices, --quant); and the model files' size. */
    int64_t mapped_bytes, copied_bytes, file_bytes;
    /* Bytes of weights this rank reads per decoded token: all it holds but
     * the embedding table, of which a token reads one row (unless it is tied
     * to the lm_head, which reads it whole). */
    int64_t streamed_bytes;
    /* the CPU kernel set in use: "ref", "avx2", "avx512", or "avx512+bf16"
     * (bf16_activations on a CPU with AVX512_BF16) */
    const char *kernels;
    int n_threads;            /* kernel threads of this rank */
    int64_t prefill_chunk;    /* tokens per pass of a forward */
} tpi_model_info;

/* Loads the checkpoint directory `dir` (config.json, model.safetensors or
 * model.safetensors.index.json). Collective: every rank of opts->comm calls it
 * (opts NULL: all defaults). An option out of range (an unknown kernel set, a
 * negative count, ranks giving different prefill_chunk or check_weights) is
 * TPI_EINVAL naming the field. Without check_weights a NaN or infinite weight
 * loads; generation then fails at the first step whose logits it reaches. */
TPI_API int tpi_model_load(tpi_model **out, const char *dir, const tpi_load_opts *opts, tpi_error *err);
TPI_API void tpi_model_free(tpi_model *m);
/* The most ranks the model in `dir` can be split over with plan
 * tp_plan_file (NULL as in tpi_load_opts), read from config.json alone
 * without loading weights, so a launcher can refuse a world size before
 * starting it: tpi_model_load refuses a larger one. *limited_by names the
 * config.json field that sets the limit ("num_attention_heads": every rank
 * needs whole query heads); *max_ranks 0 and *limited_by NULL when the plan
 * splits nothing that limits it. Errors as tpi_model_load's for a bad
 * config.json or plan. */
TPI_API int tpi_model_max_ranks(const char *dir, const char *tp_plan_file, int64_t *max_ranks,
                                const char **limited_by, tpi_error *err);
TPI_API void tpi_model_get_info(const tpi_model *m, tpi_model_info *info);

/* KV cache of one rank: n_seq sequences of up to max_ctx positions each.
 * Collective: each rank admits its own slice against its memory (see
 * tpi_load_opts.mem_limit_bytes), and a refusal on any rank fails every
 * rank with TPI_ENOMEM and the lowest refusing rank's message. */
typedef struct tpi_kv tpi_kv;
TPI_API int tpi_kv_create(tpi_kv **out, const tpi_model *m, int64_t n_seq, int64_t max_ctx, tpi_error *err);
TPI_API void tpi_kv_free(tpi_kv *kv);
/* Forgets sequence `seq` (or all with seq = -1). */
TPI_API void tpi_kv_clear(tpi_kv *kv, int64_t seq);
/* Number of positions cached for sequence `seq`. */
TPI_API int64_t tpi_kv_len(const tpi_kv *kv, int64_t seq);

/* A KV cache as a pool of fixed-size blocks of positions shared by all its
 * sequences (paged, as vLLM's): a sequence holds only the blocks its
 * positions fill, so n_seq x max_ctx may exceed the pool. Blocks are taken
 * by tpi_model_forward as positions are appended and given back by
 * tpi_kv_clear and tpi_kv_truncate. Every rank holds the same block
 * accounting (the same calls in the same order), so rank 0's view of the
 * pool is every rank's. */
typedef struct tpi_kv_opts {
    int64_t n_seq;           /* sequences (slots), 1 .. 2^20 */
    int64_t max_ctx;         /* positions one sequence may hold, 1 .. 2^32 */
    /* positions the pool holds, all sequences together, rounded up to whole
     * blocks and at most every sequence's whole context; 0: every sequence
     * can fill its context */
    int64_t pool_positions;
    /* positions per block, up to 2^20 and cut to max_ctx; 0: the default
     * (64). A block of max_ctx positions is one block per sequence, the
     * contiguous layout. */
    int64_t block_positions;
} tpi_kv_opts;
/* Collective and admitted against memory (the whole pool, at create) as
 * tpi_kv_create, which is tpi_kv_create_pool with n_seq and max_ctx and the
 * rest 0. An option out of range is TPI_EINVAL naming it; a pool or block
 * table too large to address is TPI_ELIMIT. */
TPI_API int tpi_kv_create_pool(tpi_kv **out, const tpi_model *m, const tpi_kv_opts *o, tpi_error *err);
typedef struct tpi_kv_usage {
    int64_t block_positions; /* positions per block */
    int64_t blocks_total, blocks_free;
    int64_t positions_used;  /* tpi_kv_len summed over the sequences (a shared prefix counts in each) */
} tpi_kv_usage;
TPI_API void tpi_kv_get_usage(const tpi_kv *kv, tpi_kv_usage *u);
/* Free blocks that appending n_new positions to sequence seq would take:
 * the new blocks, plus one when its last block is shared and must be
 * copied before it is written (0 for a bad seq or n_new <= 0). */
TPI_API int64_t tpi_kv_blocks_needed(const tpi_kv *kv, int64_t seq, int64_t n_new);
/* Keeps the first len positions of sequence seq (len <= tpi_kv_len) and
 * gives back the blocks beyond; TPI_EINVAL for a bad seq or len. Local. */
TPI_API int tpi_kv_truncate(tpi_kv *kv, int64_t seq, int64_t len, tpi_error *err);
/* Makes sequence dst hold the first len positions of sequence src (a shared
 * prompt prefix), dst's own positions given back first; full blocks are
 * shared, not copied. TPI_ELIMIT when the pool lacks the blocks. Local. */
TPI_API int tpi_kv_copy_prefix(tpi_kv *kv, int64_t dst, int64_t src, int64_t len, tpi_error *err);

enum tpi_logits_which {
    TPI_LOGITS_ALL = 0,  /* one row per new token */
    TPI_LOGITS_LAST = 1, /* one row per sequence with new tokens: its last */
};

/* Appends n_new[s] tokens to each sequence s of kv (ids concatenated in
 * sequence order, sum(n_new) in all) and runs them through the model in one
 * pass. Collective. On rank 0 `logits` (may be NULL elsewhere) receives float32
 * rows [rows, vocab_size] as chosen by `which`, as computed: NaN or infinity
 * (a bad weight, an overflow) is passed on, and checking is the caller's.
 * A sequence pushed past max_ctx, or a pool without the blocks the new
 * positions need, is TPI_ELIMIT before any work. */
TPI_API int tpi_model_forward(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new,
                      enum tpi_logits_which which, float *logits, tpi_error *err);

/* Like tpi_model_forward with TPI_LOGITS_LAST, but returns on every rank only
 * the argmax token of each sequence with new tokens (ties: lowest id), without
 * gathering the logits. A row with a NaN or an infinity anywhere in the
 * vocabulary (on any rank's slice) gives -1 on every rank. */
TPI_API int tpi_model_forward_argmax(tpi_model *m, tpi_kv *kv, const int32_t *ids, const int64_t *n_new,
                             int32_t *next_ids, tpi_error *err);

/* Convenience: logits of every position of n_seq independent sequences
 * (lengths seq_lens, ids concatenated) into logits [sum(seq_lens), vocab] on
 * rank 0, as computed (not checked for NaN or infinity). Collective. */
TPI_API int tpi_model_logits(tpi_model *m, const int32_t *ids, const int64_t *seq_lens, int64_t n_seq,
                     float *logits, tpi_error *err);

/* ---- checkpoint writing (make-model) ----------------------------------- */

/* Writes a checkpoint directory with random weights for a named shape ("tiny",
 * "llama-1b", ...) in dtype "f32", "bf16" or "f16". */
TPI_API int tpi_make_model(const char *shape, const char *dtype, const char *out_dir, uint64_t seed,
                   tpi_error *err);
/* NULL-terminated list of shape names for make-model. */
TPI_API const char *const *tpi_make_model_shapes(void);

/* ---- GGUF conversion (tpinfer convert) --------------------------------- */

typedef struct tpi_convert_opts {
    const char *model_dir; /* a checkpoint: config.json, safetensors, tokenizer.json */
    /* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k" or "q6_k": the type of the
     * matrices (embedding included); norms and biases are always F32. */
    const char *type;
    const char *out_path;  /* the .gguf; written as OUT.part, renamed when complete */
} tpi_convert_opts;

typedef struct tpi_convert_info {
    int64_t n_tensors;
    uint64_t bytes;          /* size of the file written */
    char tokenizer[32];      /* tokenizer.ggml.model (and pre): "llama", "gpt2 (llama-bpe)" */
    /* Matrices written in another type than asked because their columns are
     * not a multiple of the type's 256-element block, as llama-quantize
     * falls back: "blk.0.ffn_down.weight: 1376 columns, Q4_0 (not Q4_K)"; the
     * first few, n_fallback counts all. */
    int n_fallback;
    char fallback[512];
} tpi_convert_info;

/* Writes the checkpoint in opts->model_dir as one GGUF v3 file that
 * llama.cpp reads: its metadata (general.*, the architecture's
 * hyperparameters, the tokenizer and chat template), llama.cpp's tensor
 * names, Llama's q/k rows permuted for rotation over adjacent pairs. info
 * may be NULL. Errors: TPI_EINVAL (unknown type, naming it), TPI_EUNSUPPORTED
 * (a matrix whose columns no block of the type can hold, naming the tensor;
 * a tokenizer that is neither SentencePiece-style nor byte-level BPE), the
 * checkpoint's load errors, TPI_EIO (the output, naming its path). No
 * partial file is left behind. */
TPI_API int tpi_convert(const tpi_convert_opts *opts, tpi_convert_info *info, tpi_error *err);

/* ---- tokenizer --------------------------------------------------------- */
/* TOKENIZER-API: declarations owned by the tokenizer work (src/tokenizer). */
/* Hugging Face tokenizer.json (BPE: byte-level and SentencePiece-style), with
 * the ids transformers' fast tokenizers give. docs/TOKENIZER.md lists what is
 * supported. A loaded tokenizer is read-only: encode/decode may run on it from
 * several threads at once (each tpi_detok_stream belongs to one thread). */
typedef struct tpi_tokenizer tpi_tokenizer;

/* Loads dir/tokenizer.json, plus dir/tokenizer_config.json (bos/eos tokens,
 * add_bos_token/add_eos_token for the Llama family) and
 * dir/generation_config.json (more eos ids) when present. `dir` is a model
 * directory or one holding only the tokenizer files, or a .gguf file whose
 * tokenizer.ggml.* metadata (docs/TOKENIZER.md "GGUF") gives all of these. */
TPI_API int tpi_tokenizer_load(tpi_tokenizer **out, const char *dir, tpi_error *err);
TPI_API void tpi_tokenizer_free(tpi_tokenizer *t);

/* Encodes `len` bytes of UTF-8 text. add_special: add the post-processor's
 * tokens (BOS, ...) as transformers' add_special_tokens=True; special tokens
 * written in the text are recognised either way. Ill-formed UTF-8 is not an
 * error: each maximal ill-formed subpart is read as U+FFFD (as Python's
 * bytes.decode(errors="replace")). *ids is malloc'd (caller frees). */
TPI_API int tpi_tokenizer_encode(const tpi_tokenizer *t, const char *text, size_t len, int add_special,
                         int32_t **ids, size_t *n_ids, tpi_error *err);
/* Decodes ids into a malloc'd, NUL-terminated *text (caller frees) of *len
 * bytes (len may be NULL). skip_special drops special tokens. An id outside
 * the vocabulary is TPI_EINVAL. */
TPI_API int tpi_tokenizer_decode(const tpi_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                         char **text, size_t *len, tpi_error *err);
/* The token string of id as stored in tokenizer.json ("Ġthe", "▁the",
 * "<0x0A>"), owned by t; NULL when id is not a token. */
TPI_API const char *tpi_tokenizer_piece(const tpi_tokenizer *t, int32_t id);
/* The id of a token string (added tokens first), -1 when none. */
TPI_API int32_t tpi_tokenizer_token_id(const tpi_tokenizer *t, const char *piece);
/* Number of ids: the highest id of the vocabulary or added tokens, plus one. */
TPI_API int64_t tpi_tokenizer_vocab_size(const tpi_tokenizer *t);
/* The bos_token of tokenizer_config.json (GGUF: bos_token_id), -1 when none. */
TPI_API int32_t tpi_tokenizer_bos(const tpi_tokenizer *t);
/* End-of-sequence ids: tokenizer_config.json's eos_token, then
 * generation_config.json's eos_token_id (GGUF: eos_token_id, eot_token_id,
 * eom_token_id); *ids owned by t. Returns the count. */
TPI_API int tpi_tokenizer_eos(const tpi_tokenizer *t, const int32_t **ids);
/* 1 when id is an added token marked special. */
TPI_API int tpi_tokenizer_is_special(const tpi_tokenizer *t, int32_t id);

/* Streaming decode for generation: push ids one at a time and get back only
 * text that ends in whole UTF-8 characters; the concatenation of all pushes
 * and the final flush equals tpi_tokenizer_decode of all the ids. */
typedef struct tpi_detok_stream tpi_detok_stream;
TPI_API int tpi_detok_stream_create(tpi_detok_stream **out, const tpi_tokenizer *t, int skip_special,
                            tpi_error *err);
/* *text (owned by the stream, valid until its next call) receives the newly
 * completed text, "" (len 0) while a character is still incomplete. */
TPI_API int tpi_detok_stream_push(tpi_detok_stream *s, int32_t id, const char **text, size_t *len,
                          tpi_error *err);
/* Whatever is still held back (an incomplete character decodes as U+FFFD);
 * the stream then starts afresh. */
TPI_API int tpi_detok_stream_flush(tpi_detok_stream *s, const char **text, size_t *len, tpi_error *err);
TPI_API void tpi_detok_stream_free(tpi_detok_stream *s);

/* ---- generation ---- */
/* Sampling as transformers' generate applies it: repetition penalty, then
 * temperature, top-k, top-p, min-p. temperature 0 is greedy (argmax, ties to
 * the lowest id). Decided on rank 0 with a seeded xoshiro256** generator. */
typedef struct tpi_sampling {
    double temperature;        /* 0: greedy */
    int64_t top_k;             /* 0: off */
    double top_p;              /* 1: off */
    double min_p;              /* 0: off */
    double repetition_penalty; /* 1: off; over the prompt and the output */
    uint64_t seed;
} tpi_sampling;

enum tpi_stop_reason {
    TPI_STOP_NONE = 0,
    TPI_STOP_EOS = 1,     /* an eos id was generated (kept in ids, not in text) */
    TPI_STOP_STRING = 2,  /* a stop string appeared in the text (cut there) */
    TPI_STOP_LENGTH = 3,  /* max_new_tokens */
    TPI_STOP_CONTEXT = 4, /* prompt + output reached the context */
};

/* Called on rank 0 with newly complete UTF-8 text of sequence `seq`. */
typedef void (*tpi_text_fn)(void *user, int64_t seq, const char *text, size_t len);

typedef struct tpi_gen_opts {
    tpi_sampling sampling;
    int64_t max_new_tokens;
    int64_t max_ctx;                 /* prompt + output limit; 0: max_position_embeddings */
    const int32_t *eos_ids;          /* NULL: the model's (config/generation_config) */
    int n_eos;
    const char *const *stop;         /* stop strings, checked on the decoded text */
    int n_stop;
    const tpi_tokenizer *tokenizer;  /* needed for stop strings, text and on_text */
    int echo_prompt;                 /* the prompt's text goes to on_text and text too */
    tpi_text_fn on_text;
    /* Called on rank 0 when sequence `seq` ends, after its last text. */
    void (*on_done)(void *user, int64_t seq, int stop_reason);
    void *user;
} tpi_gen_opts;

/* Fills *o with transformers' defaults (greedy, top_k 50, top_p 1; 64 new
 * tokens rather than max_length 20), overridden by dir/generation_config.json
 * when present (do_sample, temperature, top_k, top_p, min_p,
 * repetition_penalty, max_new_tokens). do_sample false means greedy. */
TPI_API int tpi_gen_opts_default(tpi_gen_opts *o, const char *dir, tpi_error *err);

typedef struct tpi_gen_result {
    int32_t *ids;     /* new ids (malloc'd), the same on every rank */
    int64_t n_ids;
    int stop_reason;  /* enum tpi_stop_reason */
    char *text;       /* rank 0 with a tokenizer: new text (malloc'd), else NULL */
    size_t text_len;
    double prefill_s, decode_s; /* wall time of the batch's prefill and decode steps */
    int64_t decode_steps;       /* decode passes of the batch */
} tpi_gen_result;

/* Generates continuations of n_seq prompts (ids concatenated, lengths
 * prompt_lens) in one batch: one prefill pass, then one token per step per
 * unfinished sequence. Collective: every rank of the model's communicator
 * calls it with the same prompts and options; the tokens are decided on rank 0
 * and broadcast. A prompt longer than the context is TPI_ELIMIT. Logits that
 * are not finite fail the whole batch, as tpi_gen_state_step does
 * (TPI_ENONFINITE). results [n_seq] receive what each sequence produced;
 * free with tpi_gen_result_free. */
TPI_API int tpi_generate(tpi_model *m, const int32_t *prompts, const int64_t *prompt_lens, int64_t n_seq,
                 const tpi_gen_opts *o, tpi_gen_result *results, tpi_error *err);
TPI_API void tpi_gen_result_free(tpi_gen_result *r);

/* Generation one step at a time, for a caller (a server) that does work
 * between steps; tpi_generate is create, step until done, result, free.
 * Every function that runs a forward is collective: every rank of the
 * model's communicator calls it, in the same order, with the same arguments.
 * The state borrows m and what o points to (eos ids, stop strings,
 * tokenizer, user); they must outlive it. o itself and the prompts are
 * copied. */
typedef struct tpi_gen_state tpi_gen_state;

/* Sets up the generation of n_seq prompts (ids concatenated, lengths
 * prompt_lens) into *out: checks the arguments as tpi_generate does,
 * allocates the KV cache (n_seq x the context) and, on rank 0, the sampler
 * and the text streams; runs no forward. With o->echo_prompt the prompts'
 * text goes to on_text here, and a sequence that can produce nothing
 * (max_new_tokens 0, a prompt filling the context) ends here, with on_done.
 * Collective. On failure *out is NULL. Free with tpi_gen_state_free. */
TPI_API int tpi_gen_state_create(tpi_gen_state **out, tpi_model *m, const int32_t *prompts, const int64_t *prompt_lens,
                         int64_t n_seq, const tpi_gen_opts *o, tpi_error *err);
/* Runs one forward: the first step prefills every prompt and picks each
 * sequence's first token, each later one decodes one token per sequence
 * still running (rank 0 decides, every rank gets the same tokens); on_text
 * and on_done are called on rank 0 as text and stops come. Collective.
 * Returns 1 while a sequence is still running, 0 once none is (a step then
 * runs nothing and returns 0 again), or a negative TPI_E* code, after which
 * the state can only be freed.
 * Non-finite logits: when the logits a running sequence's next token comes
 * from hold a NaN or an infinity anywhere (greedy: found by each rank's
 * argmax over its slice; sampling: rank 0 checks the gathered row), no
 * token is chosen for any sequence and the step returns TPI_ENONFINITE on
 * every rank with the same message, "generate: sequence S, step K: logits
 * are not finite (NaN or infinity)", S the first such sequence, K the step
 * counted from 0 (the prefill), which is also the index of the new token it
 * was choosing. A NaN never becomes a token. */
TPI_API int tpi_gen_state_step(tpi_gen_state *st, tpi_error *err);
/* The new ids of sequence seq so far, the same on every rank: *ids (owned by
 * st, valid until tpi_gen_state_free) and the count as the return value.
 * For seq outside [0, n_seq) 0 and *ids = NULL. */
TPI_API int64_t tpi_gen_state_ids(const tpi_gen_state *st, int64_t seq, const int32_t **ids);
/* The enum tpi_stop_reason of sequence seq: TPI_STOP_NONE while it runs;
 * TPI_EINVAL for seq outside [0, n_seq). */
TPI_API int tpi_gen_state_stop_reason(const tpi_gen_state *st, int64_t seq);
/* Copies what sequence seq has produced so far into *r, as tpi_generate's
 * results (text on rank 0 with a tokenizer; while the sequence runs it may
 * end in the start of a stop string); the times are the batch's. Free *r
 * with tpi_gen_result_free; on failure *r holds nothing. Local: no
 * communication. */
TPI_API int tpi_gen_state_result(const tpi_gen_state *st, int64_t seq, tpi_gen_result *r, tpi_error *err);
/* Frees the state and its KV cache (not m). Local; accepts NULL. */
TPI_API void tpi_gen_state_free(tpi_gen_state *st);

/* The chat formats tpinfer can write, recognised from a chat_template. */
typedef enum tpi_chat_format {
    TPI_CHAT_NONE = 0,
    TPI_CHAT_LLAMA3,
    TPI_CHAT_LLAMA2,
    TPI_CHAT_MISTRAL,
    TPI_CHAT_CHATML,
} tpi_chat_format;

/* Reads dir/tokenizer_config.json's chat_template (dir a .gguf file: its
 * tokenizer.chat_template) and recognises its family;
 * any other is TPI_EUNSUPPORTED with a message listing the supported ones. */
TPI_API int tpi_chat_format_detect(const char *dir, tpi_chat_format *fmt, tpi_error *err);
/* Formats a conversation (roles "system", "user", "assistant"; n_msgs
 * messages) ready for the assistant's reply, into malloc'd *text. The BOS
 * token is not written (the tokenizer adds it). */
TPI_API int tpi_chat_format_apply(tpi_chat_format fmt, const char *const *roles, const char *const *contents,
                          int64_t n_msgs, char **text, tpi_error *err);

/* ---- chat templates (src/chat) ---- */
/* A model's own chat_template, rendered by a Jinja subset written for
 * tpinfer (docs/CHAT.md lists it) as transformers' apply_chat_template
 * renders it: trim_blocks, lstrip_blocks, loop controls, tojson with
 * ensure_ascii false, raise_exception and strftime_now. */
typedef struct tpi_chat_template tpi_chat_template;

/* Parses template source `src` (len bytes, at most 4 MiB); `name` labels
 * messages. A construct outside the subset is TPI_EUNSUPPORTED and a
 * malformed one TPI_EFORMAT, both naming the line. A parsed template is
 * read-only: threads may render with it at once. */
TPI_API int tpi_chat_template_parse(tpi_chat_template **out, const char *src, size_t len, const char *name,
                                    tpi_error *err);
/* Loads dir/chat_template.jinja, else chat_template.json's or
 * tokenizer_config.json's chat_template (a string, or a list of {name,
 * template}: the one named "default"). A directory with none (or only
 * named templates without a default) sets *out NULL and returns 0. A .gguf
 * `dir` gives its tokenizer.chat_template (absent: *out NULL). */
TPI_API int tpi_chat_template_load(tpi_chat_template **out, const char *dir, tpi_error *err);
TPI_API void tpi_chat_template_free(tpi_chat_template *t);

typedef struct tpi_chat_render_opts {
    int add_generation_prompt;
    const char *bos_token, *eos_token; /* NULL: undefined in the template */
    const char *tools_json;            /* a JSON array for `tools` ("null": none); NULL: undefined */
    const char *extra_json;            /* a JSON object of more variables (enable_thinking, ...), or NULL */
    int64_t now; /* the time strftime_now formats (seconds since the epoch, as local time); 0: now */
} tpi_chat_render_opts;

/* Renders a conversation: messages_json is a JSON array of message objects
 * (role, content, and whatever else the template reads), len bytes. The
 * text is malloc'd into *text (caller frees, NUL-terminated), *text_len
 * bytes (text_len may be NULL); o NULL: all defaults. A template's
 * raise_exception is TPI_EINVAL with err->msg exactly its message; a bad
 * messages array or another error of the template (an attribute of an
 * undefined value, ...) is TPI_EINVAL naming the line; past a limit
 * (docs/CHAT.md: 16 MiB of text, steps, nesting) TPI_ELIMIT. On failure
 * *text is NULL. */
TPI_API int tpi_chat_template_render(const tpi_chat_template *t, const char *messages_json, size_t len,
                                     const tpi_chat_render_opts *o, char **text, size_t *text_len,
                                     tpi_error *err);

/* ---- the server (src/server) ---- */
/* An OpenAI-compatible HTTP server over the model's ranks (docs/SERVING.md):
 * rank 0 serves HTTP; every rank runs the same step loop. */
typedef struct tpi_server tpi_server;

typedef struct tpi_serve_opts {
    const char *host;          /* NULL: "127.0.0.1" */
    int port;                  /* 0: 8080; -1: any free port (the log line names it) */
    int parallel;              /* sequences running at once; 0: 4 */
    int64_t ctx;               /* positions per sequence; 0: max_position_embeddings */
    int64_t kv_memory_bytes;   /* the KV pool per rank; 0: what memory admits, capped at parallel x ctx */
    int queue;                 /* requests waiting beyond `parallel`; 0: 64 */
    const char *api_key;       /* NULL: none; else "Authorization: Bearer KEY" is required */
    int64_t max_body_bytes;    /* 0: 1 MiB */
    int timeout_s;             /* idle or slow clients; 0: 60 */
    const char *model_name;    /* the id /v1/models reports; NULL: the directory's last component */
    const char *model_dir;     /* where the tokenizer and chat template come from */
    /* Rank 0's log lines (where it listens, what it loaded, requests), or NULL. */
    void (*on_log)(void *user, const char *line);
    void *user;
} tpi_serve_opts;

/* Collective: loads the tokenizer and chat template, creates the KV pool
 * and, on rank 0, binds the listening socket. */
TPI_API int tpi_server_create(tpi_server **out, tpi_model *m, const tpi_serve_opts *o, tpi_error *err);
/* Collective: serves until tpi_server_stop, then finishes or cancels the
 * open requests and returns 0 on every rank. */
TPI_API int tpi_server_run(tpi_server *s, tpi_error *err);
/* Asks the server to stop; async-signal-safe, from any thread, on rank 0. */
TPI_API void tpi_server_stop(tpi_server *s);
TPI_API void tpi_server_free(tpi_server *s);

/* A session: one conversation's generations on the serving engine (one
 * KV sequence). The KV of the last call's prompt and output stays cached,
 * so a call whose prompt begins with them prefills only the rest (each
 * turn of `tpinfer chat` costs its new tokens). Rank 0 calls
 * tpi_session_generate; the other ranks wait in tpi_session_follow (idle,
 * without burning a core) until rank 0 calls tpi_session_close. */
typedef struct tpi_session tpi_session;

/* Collective. ctx: positions (0: max_position_embeddings); tok is needed
 * on rank 0; eos_ids [n_eos] end a reply (NULL: the model's and the
 * tokenizer's). */
TPI_API int tpi_session_create(tpi_session **out, tpi_model *m, const tpi_tokenizer *tok, int64_t ctx,
                               const int32_t *eos_ids, int n_eos, tpi_error *err);
/* Rank 0: the continuation of prompt ids [n] with o's sampling,
 * max_new_tokens (cut to the context), stop strings and on_text (the
 * session's context, eos ids and tokenizer are used, not o's); *r as
 * tpi_generate's result (ids, stop_reason, text); *cached (may be NULL):
 * the prompt tokens whose KV was reused. A prompt that leaves no room for
 * a reply is TPI_ELIMIT. */
TPI_API int tpi_session_generate(tpi_session *s, const int32_t *ids, int64_t n, const tpi_gen_opts *o,
                                 tpi_gen_result *r, int64_t *cached, tpi_error *err);
/* Ranks other than 0: run rank 0's generations until tpi_session_close. */
TPI_API int tpi_session_follow(tpi_session *s, tpi_error *err);
/* Rank 0: ends the other ranks' tpi_session_follow (0 elsewhere). */
TPI_API int tpi_session_close(tpi_session *s, tpi_error *err);
TPI_API void tpi_session_free(tpi_session *s);

#ifdef __cplusplus
}
#endif
#endif
