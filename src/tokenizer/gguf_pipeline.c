/* The normalizer, pre-tokenizer and decoder of a GGUF vocabulary, written as
 * the tokenizer.json objects of the Hugging Face tokenizer it came from. */
#include <string.h>

#include "core/error.h"
#include "tokenizer/gguf_vocab.h"

/* Llama 3's pre-tokenizer pattern (tokenizer.json of meta-llama/Meta-Llama-3-8B). */
static const char llama3_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen2's (and Qwen2.5/Qwen3's): digits one by one. */
static const char qwen2_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The tokenizer.ggml.pre values tpinfer knows, with llama.cpp's aliases. */
static const struct pre_kind {
    const char *name;
    const char *pattern; /* NULL: ByteLevel's own GPT-2 pattern */
    int nfc, ignore_merges, add_bos;
} pre_kinds[] = {
    {"default", NULL, 0, 0, 0},
    {"gpt-2", NULL, 0, 0, 0},
    {"llama-bpe", llama3_pattern, 0, 1, 1},
    {"llama3", llama3_pattern, 0, 1, 1},
    {"llama-v3", llama3_pattern, 0, 1, 1},
    {"qwen2", qwen2_pattern, 1, 0, 0},
    {"deepseek-r1-qwen", qwen2_pattern, 1, 0, 0},
};

static int add_parsed(cJSON *root, const char *key, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    if (!j || !cJSON_AddItemToObject(root, key, j)) {
        cJSON_Delete(j);
        return -1;
    }
    return 0;
}

int tok_gguf_spm_pipeline(cJSON *root, int add_space_prefix)
{
    const char *norm = add_space_prefix
                           ? "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": "
                             "\"\\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
                             "\"content\": \"\\u2581\"}]}"
                           : "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}";
    const char *dec = add_space_prefix
                          ? "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": "
                            "{\"String\": \"\\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, "
                            "{\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, "
                            "\"stop\": 0}]}"
                          : "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": "
                            "{\"String\": \"\\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, "
                            "{\"type\": \"Fuse\"}]}";
    return add_parsed(root, "normalizer", norm) || add_parsed(root, "decoder", dec) ? -1 : 0;
}

/* Split(pattern, Isolated) then ByteLevel without its own regex, as the
 * tokenizer.json of Llama 3 and Qwen2. */
static int split_then_bytelevel(cJSON *root, const char *pattern)
{
    cJSON *pre = cJSON_Parse("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {}, "
                             "\"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                             "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}");
    cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    cJSON *pat = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "pattern");
    if (!pat || !cJSON_AddStringToObject(pat, "Regex", pattern) || !cJSON_AddItemToObject(root, "pre_tokenizer", pre)) {
        cJSON_Delete(pre);
        return -1;
    }
    return 0;
}

int tok_gguf_bpe_pipeline(cJSON *root, const char *path, const char *pre, int *ignore_merges, int *add_bos,
                          tpi_error *err)
{
    const struct pre_kind *k = NULL;
    for (size_t i = 0; i < sizeof pre_kinds / sizeof pre_kinds[0] && !k; i++)
        if (!strcmp(pre ? pre : "default", pre_kinds[i].name))
            k = &pre_kinds[i];
    if (!k)
        return tpi_err(err, TPI_EUNSUPPORTED,
                       "%s: tokenizer.ggml.pre \"%s\" is not supported (supported: default, gpt-2, llama-bpe, "
                       "llama3, llama-v3, qwen2, deepseek-r1-qwen)",
                       path, pre);
    *ignore_merges = k->ignore_merges;
    *add_bos = k->add_bos;
    int rc = k->pattern ? split_then_bytelevel(root, k->pattern)
                        : add_parsed(root, "pre_tokenizer", "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                                                            "\"trim_offsets\": true, \"use_regex\": true}");
    if (!rc && k->nfc)
        rc = add_parsed(root, "normalizer", "{\"type\": \"NFC\"}");
    if (!rc)
        rc = add_parsed(root, "decoder", "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": "
                                         "true, \"use_regex\": true}");
    return rc ? tpi_err(err, TPI_ENOMEM, "%s: tokenizer: out of memory", path) : 0;
}
