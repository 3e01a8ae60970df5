/* `tpinfer make-model`: writes a Hugging Face checkpoint directory with random
 * weights (normal, never zero) for named shapes, so benchmarks and the demo
 * run without downloading anything. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"

/* <s> and </s> in every shape's vocabulary */
#define BOS_ID 256
#define EOS_ID 257

typedef struct shape {
    const char *name;
    int64_t hidden, intermediate, layers, heads, kv_heads, vocab, max_pos;
    double rope_theta;
} shape;

static const shape shapes[] = {
    /* seconds to run anywhere; the README's default model */
    {"tiny", 128, 344, 4, 8, 4, 258, 2048, 10000.0},
    /* quick benchmarks */
    {"small", 512, 1408, 8, 8, 4, 4096, 2048, 10000.0},
    /* TinyLlama-1.1B's architecture */
    {"llama-1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000.0},
};

const char *const *tpi_make_model_shapes(void)
{
    static const char *names[sizeof shapes / sizeof shapes[0] + 1];
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        names[i] = shapes[i].name;
    return names;
}

/* splitmix64 + Box-Muller: reproducible from the seed on every platform. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_normal(void *buf, tpi_dtype dt, int64_t n, double mean, double std, uint64_t *rng)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(next_u64(rng) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(next_u64(rng) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        double z[2] = {r * cos(2 * M_PI * u2), r * sin(2 * M_PI * u2)};
        for (int k = 0; k < 2 && i + k < n; k++) {
            float f = (float)(mean + std * z[k]);
            if (f == 0.0f)
                f = (float)(std * 1e-3); /* "never zeros" */
            if (dt == TPI_F32) {
                memcpy((float *)buf + i + k, &f, 4);
            } else {
                uint16_t h = dt == TPI_BF16 ? tpi_f32_to_bf16(f) : tpi_f32_to_f16(f);
                if ((h & 0x7fff) == 0)
                    h |= 1;
                memcpy((uint16_t *)buf + i + k, &h, 2);
            }
        }
    }
}

typedef struct builder {
    tpi_st_out *ts;
    char (*names)[96];
    int64_t n, cap;
    tpi_dtype dt;
    uint64_t rng;
    tpi_error *err;
} builder;

/* Appends a [d0] (d1 == 0) or [d0, d1] tensor of N(mean, std^2) values. */
static int add(builder *b, const char *name, int64_t d0, int64_t d1, double mean, double std)
{
    int64_t cnt = d0 * (d1 ? d1 : 1);
    void *buf = malloc((size_t)cnt * tpi_dtype_size(b->dt));
    if (!buf || b->n == b->cap) {
        free(buf);
        return tpi_err(b->err, TPI_ENOMEM, "out of memory for tensor %s", name);
    }
    fill_normal(buf, b->dt, cnt, mean, std, &b->rng);
    tpi_st_out *t = &b->ts[b->n];
    snprintf(b->names[b->n], sizeof b->names[b->n], "%s", name);
    t->name = b->names[b->n];
    t->dtype = b->dt;
    t->n_dims = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = buf;
    b->n++;
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text, tpi_error *err)
{
    char *path = tpi_path_join(dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    int rc = ok ? 0 : tpi_err(err, TPI_EIO, "%s: cannot write: %s", path ? path : name, strerror(errno));
    free(path);
    return rc;
}

static int write_config(const char *dir, const shape *s, const char *torch_dtype, tpi_error *err)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
             "  \"hidden_size\": %lld,\n  \"intermediate_size\": %lld,\n  \"num_hidden_layers\": %lld,\n"
             "  \"num_attention_heads\": %lld,\n  \"num_key_value_heads\": %lld,\n  \"head_dim\": %lld,\n"
             "  \"vocab_size\": %lld,\n  \"max_position_embeddings\": %lld,\n  \"rms_norm_eps\": 1e-05,\n"
             "  \"rope_theta\": %.1f,\n  \"rope_scaling\": null,\n  \"hidden_act\": \"silu\",\n"
             "  \"tie_word_embeddings\": false,\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n"
             "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"torch_dtype\": \"%s\"\n}\n",
             (long long)s->hidden, (long long)s->intermediate, (long long)s->layers, (long long)s->heads,
             (long long)s->kv_heads, (long long)(s->hidden / s->heads), (long long)s->vocab, (long long)s->max_pos,
             s->rope_theta, BOS_ID, EOS_ID, torch_dtype);
    int rc = write_text(dir, "config.json", buf, err);
    snprintf(buf, sizeof buf, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n", BOS_ID, EOS_ID);
    if (!rc)
        rc = write_text(dir, "generation_config.json", buf, err);
    return rc;
}

/* The random models' tokenizer: a byte-level BPE (GPT-2's scheme, "Ġ" marking
 * a space) over a small alphabet, whose other ids are syllables and words of
 * syllables, so that even a random model's output reads as words. The text is
 * lowercased first; decode(encode(s)) == s for any s over the alphabet, and
 * anything else encodes to <unk>. */
#define SPACE "\xc4\xa0" /* "Ġ", the byte-level form of ' ' */
static const char consonants[] = "bdfghklmnprstvwyz", vowels[] = "aeiou";
static const char *const alphabet[] = {SPACE, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
                                       "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", ".", ",", "!", "?"};
#define N_ALPHABET ((int64_t)(sizeof alphabet / sizeof alphabet[0]))
#define N_SYLLABLES ((int64_t)(sizeof consonants - 1) * (int64_t)(sizeof vowels - 1))

/* Appends the syllables of idx, written in base N_SYLLABLES with n digits. */
static void put_syllables(char *out, int64_t idx, int n)
{
    size_t at = strlen(out);
    for (int i = n - 1; i >= 0; i--) {
        int64_t s = idx;
        for (int k = 0; k < i; k++)
            s /= N_SYLLABLES;
        s %= N_SYLLABLES;
        out[at++] = consonants[s / (sizeof vowels - 1)];
        out[at++] = vowels[s % (sizeof vowels - 1)];
    }
    out[at] = 0;
}

/* The k-th piece after the alphabet and the merge "left right" that makes it:
 * first every syllable ("ka" = "k a") and its word start ("Ġka" = "Ġ ka"), then
 * "Ġa" ... "Ġu", then pieces of n = 2, 3, 4 syllables ("Ġkato" = "Ġka to"),
 * word starts and continuations alternating, shuffled by a stride coprime with
 * their count so a short vocabulary still gets a mix. Returns -1 past them all. */
static int word_piece(int64_t k, char *left, char *right)
{
    left[0] = right[0] = 0;
    if (k < 2 * N_SYLLABLES) {
        int64_t s = k / 2;
        if (k % 2) {
            strcpy(left, SPACE);
            put_syllables(right, s, 1);
        } else {
            snprintf(left, 2, "%c", consonants[s / (sizeof vowels - 1)]);
            snprintf(right, 2, "%c", vowels[s % (sizeof vowels - 1)]);
        }
        return 0;
    }
    k -= 2 * N_SYLLABLES;
    if (k < (int64_t)sizeof vowels - 1) {
        strcpy(left, SPACE);
        snprintf(right, 2, "%c", vowels[k]);
        return 0;
    }
    k -= (int64_t)sizeof vowels - 1;
    int64_t count = N_SYLLABLES;
    for (int n = 2; n <= 4; n++) {
        count *= N_SYLLABLES;
        if (k >= 2 * count) {
            k -= 2 * count;
            continue;
        }
        int64_t idx = (k / 2 * 7919) % count; /* 7919 is prime and divides no count */
        if (k % 2)
            strcpy(left, SPACE);
        put_syllables(left, idx / N_SYLLABLES, n - 1);
        put_syllables(right, idx % N_SYLLABLES, 1);
        return 0;
    }
    return -1;
}

/* Writes the vocabulary (id order) or the merges of the pieces of ids up to vocab. */
static int put_pieces(FILE *f, int64_t vocab, int merges)
{
    int64_t k = 0, n = 0;
    for (int64_t id = 1; id < vocab; id++) {
        if (id == BOS_ID || id == EOS_ID) {
            if (!merges)
                fprintf(f, ",\"%s\":%lld", id == BOS_ID ? "<s>" : "</s>", (long long)id);
            continue;
        }
        if (id <= N_ALPHABET) {
            if (!merges)
                fprintf(f, ",\"%s\":%lld", alphabet[id - 1], (long long)id);
            continue;
        }
        char left[32], right[32];
        if (word_piece(k++, left, right))
            return -1;
        if (merges)
            fprintf(f, "%s\"%s %s\"", n++ ? "," : "", left, right);
        else
            fprintf(f, ",\"%s%s\":%lld", left, right, (long long)id);
    }
    return 0;
}

static void put_added(FILE *f, int64_t id, const char *content, const char *sep)
{
    fprintf(f, "{\"id\":%lld,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
            "\"normalized\":false,\"special\":true}%s", (long long)id, content, sep);
}

static int write_tokenizer(const char *dir, int64_t vocab, tpi_error *err)
{
    char *path = tpi_path_join(dir, "tokenizer.json");
    if (!path)
        return tpi_err(err, TPI_ENOMEM, "out of memory");
    FILE *f = fopen(path, "w");
    if (!f) {
        int rc = tpi_err(err, TPI_EIO, "%s: cannot write: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    fputs("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[", f);
    put_added(f, 0, "<unk>", ",");
    put_added(f, BOS_ID, "<s>", ",");
    put_added(f, EOS_ID, "</s>", "],");
    fprintf(f, "\"normalizer\":{\"type\":\"Lowercase\"},"
          "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},"
          "\"post_processor\":{\"type\":\"TemplateProcessing\","
          "\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
          "\"pair\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
          "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":1}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],"
          "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[%d],\"tokens\":[\"<s>\"]}}},"
          "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
          "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
          "\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
          "\"vocab\":{\"<unk>\":0", BOS_ID);
    int short_of_pieces = put_pieces(f, vocab, 0);
    fputs("},\"merges\":[", f);
    short_of_pieces = short_of_pieces || put_pieces(f, vocab, 1);
    fputs("]}}\n", f);
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    int rc = 0;
    if (short_of_pieces)
        rc = tpi_err(err, TPI_EINVAL, "a vocabulary of %lld is more than the tokenizer has pieces for",
                     (long long)vocab);
    else if (failed)
        rc = tpi_err(err, TPI_EIO, "%s: cannot write: %s", path, strerror(errno));
    free(path);
    if (!rc)
        rc = write_text(dir, "tokenizer_config.json",
                        "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"bos_token\": \"<s>\",\n"
                        "  \"eos_token\": \"</s>\",\n  \"unk_token\": \"<unk>\",\n"
                        "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n", err);
    return rc;
}

int tpi_make_model(const char *shape_name, const char *dtype, const char *out_dir, uint64_t seed, tpi_error *err)
{
    const shape *s = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shape_name, shapes[i].name))
            s = &shapes[i];
    if (!s)
        return tpi_err(err, TPI_EINVAL, "unknown shape \"%s\" (known: tiny, small, llama-1b)", shape_name);
    tpi_dtype dt;
    const char *torch_dtype;
    if (!strcmp(dtype, "f32"))
        dt = TPI_F32, torch_dtype = "float32";
    else if (!strcmp(dtype, "bf16"))
        dt = TPI_BF16, torch_dtype = "bfloat16";
    else if (!strcmp(dtype, "f16"))
        dt = TPI_F16, torch_dtype = "float16";
    else
        return tpi_err(err, TPI_EINVAL, "unknown dtype \"%s\" (expected f32, bf16 or f16)", dtype);
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return tpi_err(err, TPI_EIO, "%s: cannot create directory: %s", out_dir, strerror(errno));

    int64_t H = s->hidden, F = s->intermediate, hd = s->hidden / s->heads, q = s->heads * hd;
    builder b = {.dt = dt, .rng = seed, .cap = 2 + 9 * s->layers + 1, .err = err};
    b.ts = calloc((size_t)b.cap, sizeof *b.ts);
    b.names = calloc((size_t)b.cap, sizeof *b.names);
    int rc = b.ts && b.names ? 0 : tpi_err(err, TPI_ENOMEM, "out of memory");
    /* Matrices N(0, 1/in_features) keep activations O(1) through the layers. */
    double sh = 1.0 / sqrt((double)H);
    rc = rc ? rc : add(&b, "model.embed_tokens.weight", s->vocab, H, 0.0, 1.0);
    for (int64_t l = 0; l < s->layers && !rc; l++) {
        static const struct { const char *suffix; int rows, cols; } parts[] = {
            {"input_layernorm.weight", 'H', 0}, {"self_attn.q_proj.weight", 'Q', 'H'},
            {"self_attn.k_proj.weight", 'K', 'H'}, {"self_attn.v_proj.weight", 'K', 'H'},
            {"self_attn.o_proj.weight", 'H', 'Q'}, {"post_attention_layernorm.weight", 'H', 0},
            {"mlp.gate_proj.weight", 'F', 'H'}, {"mlp.up_proj.weight", 'F', 'H'}, {"mlp.down_proj.weight", 'H', 'F'},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0] && !rc; i++) {
            int64_t dims[2];
            for (int d = 0; d < 2; d++) {
                int c = d ? parts[i].cols : parts[i].rows;
                dims[d] = c == 'H' ? H : c == 'Q' ? q : c == 'K' ? s->kv_heads * hd : c == 'F' ? F : 0;
            }
            char n[96];
            snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, parts[i].suffix);
            rc = dims[1] ? add(&b, n, dims[0], dims[1], 0.0, 1.0 / sqrt((double)dims[1]))
                         : add(&b, n, dims[0], 0, 1.0, 0.1);
        }
    }
    rc = rc ? rc : add(&b, "model.norm.weight", H, 0, 1.0, 0.1);
    rc = rc ? rc : add(&b, "lm_head.weight", s->vocab, H, 0.0, sh);
    if (!rc) {
        char *path = tpi_path_join(out_dir, "model.safetensors");
        rc = path ? tpi_st_write(path, b.ts, b.n, err) : tpi_err(err, TPI_ENOMEM, "out of memory");
        free(path);
    }
    for (int64_t i = 0; i < b.n; i++)
        free((void *)b.ts[i].data);
    free(b.names);
    free(b.ts);
    if (!rc)
        rc = write_config(out_dir, s, torch_dtype, err);
    if (!rc)
        rc = write_tokenizer(out_dir, s->vocab, err);
    return rc;
}
