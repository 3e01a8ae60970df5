#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/:
small valid inputs and slightly broken ones, one file each. Run it again after
changing a seed; the files are committed so run.sh needs no Python."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def st_file(header, data=b"", pad=True):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors():
    two = {"__metadata__": {"format": "pt"},
           "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
           "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]}}
    write("safetensors", "valid_two", st_file(two, bytes(range(22))))
    write("safetensors", "valid_empty", st_file({}))
    write("safetensors", "valid_bf16_u8", st_file(
        {"w": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [0, 4]},
         "z": {"dtype": "U8", "shape": [0], "data_offsets": [4, 4]}}, b"\x80\x3f\x00\x40"))
    write("safetensors", "hole", st_file(
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
         "b": {"dtype": "F32", "shape": [4], "data_offsets": [20, 36]}}, bytes(36)))
    write("safetensors", "overlap", st_file(
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
         "z": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}}, bytes(16)))
    write("safetensors", "past_end", st_file(
        {"a": {"dtype": "U8", "shape": [16], "data_offsets": [0, 4611686018427387904]}}, bytes(16)))
    write("safetensors", "shape_overflow", st_file(
        {"a": {"dtype": "U8", "shape": [1 << 40, 1 << 40, 1 << 40], "data_offsets": [0, 0]}}))
    write("safetensors", "truncated", st_file(two, bytes(10)))
    write("safetensors", "not_utf8", st_file(b'{"a\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"))
    write("safetensors", "huge_header", struct.pack("<Q", 1 << 63) + b"{}")
    write("safetensors", "short", b"\x02\x00\x00")


def gg_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gg_kv(key, vtype, value):
    """One key/value: value is already encoded for its type."""
    return gg_str(key) + struct.pack("<I", vtype) + value


def gg_file(kvs, tensors, data, n_tensors=None, n_kv=None, version=3, align=32):
    """tensors: (name, ne list, ggml type, offset)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs)
    for name, ne, t, off in tensors:
        head += gg_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        head += struct.pack("<IQ", t, off)
    head += bytes(-len(head) % align)
    return head + data


def gguf():
    u32 = lambda v: struct.pack("<I", v)
    f32 = lambda v: struct.pack("<f", v)
    llama = [gg_kv("general.architecture", 8, gg_str("llama")),
             gg_kv("llama.embedding_length", 4, u32(32)), gg_kv("llama.feed_forward_length", 4, u32(64)),
             gg_kv("llama.block_count", 4, u32(1)), gg_kv("llama.attention.head_count", 4, u32(4)),
             gg_kv("llama.attention.head_count_kv", 4, u32(2)), gg_kv("llama.context_length", 4, u32(64)),
             gg_kv("llama.attention.layer_norm_rms_epsilon", 6, f32(1e-5)),
             gg_kv("llama.rope.freq_base", 6, f32(10000.0)),
             gg_kv("tokenizer.ggml.tokens", 9, u32(8) + struct.pack("<Q", 3) + gg_str("a") + gg_str("<s>") +
                   gg_str("</s>")),
             gg_kv("tokenizer.ggml.scores", 9, u32(6) + struct.pack("<Q", 3) + f32(0) * 3),
             gg_kv("tokenizer.ggml.bos_token_id", 4, u32(1)), gg_kv("tokenizer.ggml.eos_token_id", 4, u32(2))]
    tensors = [("token_embd.weight", [32, 3], 0, 0), ("output_norm.weight", [32], 0, 384),
               ("blk.0.attn_q.weight", [32, 32], 8, 512), ("blk.0.attn_norm.weight", [32], 1, 1600)]
    data = bytes(range(256)) * 7
    write("gguf", "llama_small", gg_file(llama, tensors, data))
    write("gguf", "empty", gg_file([], [], b""))
    write("gguf", "q4_k", gg_file([gg_kv("general.alignment", 4, u32(64))],
                                  [("w", [256, 2], 12, 0), ("x", [256], 14, 320)], bytes(600), align=64))
    write("gguf", "overlap", gg_file([], [("a", [8], 0, 0), ("b", [8], 0, 0)], bytes(64)))
    write("gguf", "bad_type", gg_file([], [("a", [8], 99, 0)], bytes(64)))
    write("gguf", "unsupported_type", gg_file([], [("a", [256], 13, 0)], bytes(176)))
    write("gguf", "huge_counts", gg_file([], [], b"", n_tensors=1 << 60, n_kv=1 << 60))
    write("gguf", "dup_key", gg_file([gg_kv("k", 4, u32(1)), gg_kv("k", 4, u32(2))], [], b""))
    write("gguf", "truncated", gg_file(llama, tensors, data)[:700])
    write("gguf", "split_first", gg_file([gg_kv("split.count", 2, struct.pack("<H", 2)),
                                          gg_kv("split.no", 2, struct.pack("<H", 0))], [], b""))


def config():
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
             "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 1, "vocab_size": 32, "max_position_embeddings": 64,
             "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "bos_token_id": 1,
             "eos_token_id": 2, "tie_word_embeddings": False, "torch_dtype": "float32"}
    write("config", "llama", json.dumps(llama))
    l3 = dict(llama, eos_token_id=[2, 3], rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 32})
    write("config", "llama3_rope", json.dumps(l3))
    qwen2 = dict(llama, architectures=["Qwen2ForCausalLM"], model_type="qwen2", use_sliding_window=True,
                 sliding_window=8, max_window_layers=1)
    write("config", "qwen2_window", json.dumps(qwen2))
    qwen3 = dict(llama, architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=8)
    write("config", "qwen3_gen", json.dumps(qwen3) + "\0" + json.dumps({"eos_token_id": [2, 5], "top_p": 0.9}))
    write("config", "bad_size", json.dumps(dict(llama, hidden_size=-8)))
    write("config", "bad_product", json.dumps(dict(llama, num_attention_heads=65536, head_dim=16384)))
    write("config", "broken_json", json.dumps(llama)[:-7])


def checkpoint():
    one, two = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    def index(wm):
        return json.dumps({"metadata": {"total_size": 30}, "weight_map": wm})
    write("checkpoint", "valid", index({"a": one, "b": one, "c": two}))
    write("checkpoint", "wrong_shard", index({"a": one, "b": two, "c": two}))
    write("checkpoint", "missing_tensor", index({"a": one, "b": one, "c": two, "d": two}))
    write("checkpoint", "unlisted", index({"a": one, "c": two}))
    write("checkpoint", "dotdot", index({"a": one, "b": one, "c": "../" + two}))
    write("checkpoint", "absolute", index({"a": one, "b": one, "c": "/etc/passwd"}))
    write("checkpoint", "duplicate", '{"weight_map":{"a":"%s","a":"%s","b":"%s","c":"%s"}}' % (one, one, one, two))
    shard = st_file({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                     "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]}}, bytes(22))
    write("checkpoint", "valid_with_shard", index({"a": one, "b": one, "c": two}).encode() + b"\0" + shard)
    write("checkpoint", "bad_shard", index({"a": one, "b": one, "c": two}).encode() + b"\0" + shard[:-3])


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def bpe_bytelevel():
    vocab = {c: i for i, c in enumerate(bytes_to_unicode()[b] for b in range(256))}
    merges = ["Ġ t", "h e", "Ġt he", "l l", "e ll", "ell o", "h ello"]
    for m in merges:
        vocab["".join(m.split(" "))] = len(vocab)
    return {"version": "1.0", "added_tokens": [
                {"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                 "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                               "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "vocab": vocab, "merges": merges}}


def sp_style():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    merges = ["▁ h", "▁h e", "l l", "▁he ll", "▁hell o", "▁ w", "o r"]
    for c in ["▁", "h", "e", "l", "o", "w", "r", "d"]:
        vocab[c] = len(vocab)
    for m in merges:
        vocab["".join(m.split(" "))] = len(vocab)
    special = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    return {"version": "1.0", "added_tokens": special,
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": None,
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                               "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                      "vocab": vocab, "merges": merges}}


def tokenizer():
    bl = json.dumps(bpe_bytelevel(), ensure_ascii=False).encode()
    sp = json.dumps(sp_style(), ensure_ascii=False).encode()
    text = "Hello the world! héllo\n\t 12 <|endoftext|> <s>\U0001F600".encode()
    # flags byte: see fuzz_tokenizer.c
    write("tokenizer", "bpe_bytelevel", b"\x00" + bl + b"\0" + text)
    write("tokenizer", "sp_style", b"\x04" + sp + b"\0" + text)
    write("tokenizer", "sp_style_config", b"\x0c" + sp + b"\0" + text + b"\0" +
          b'{"tokenizer_class":"LlamaTokenizer","bos_token":"<s>","eos_token":{"content":"</s>"},'
          b'"add_bos_token":true,"add_eos_token":true}')
    write("tokenizer", "broken_json", b"\x00" + bl[:200])
    write("tokenizer", "text_bytelevel", b"\x01" + text)
    write("tokenizer", "text_sp", b"\x07" + text)
    write("tokenizer", "text_sp_skip", b"\x0f" + text + b"\xff\xc0\x80 hello")
    write("tokenizer", "ids_sp", b"\x13" + struct.pack("<8h", 1, 75, 206, 260, 270, 2, 3, -1))
    # fuzz_tokenizer's first finding: only skipped specials through Strip (NULL + 0)
    write("tokenizer", "found_decode_only_skipped", b"\x18" + json.dumps({
        "added_tokens": [{"id": 0, "content": "<s>", "special": True, "lstrip": False, "rstrip": False,
                          "normalized": False, "single_word": False}],
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"},
                                                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1}, "merges": []}}).encode() + b"\0" +
        struct.pack("<2h", 0, 0))
    write("tokenizer", "ids_bytelevel", b"\x11" + struct.pack("<6h", 262, 257, 0, 255, 300, 200))


def http_request():
    # flags byte: bit 0 chat, else completions (fuzz_http_request.c)
    comp = {"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9,
            "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "presence_penalty": 0.5,
            "frequency_penalty": -0.5, "seed": 42, "stop": ["\n", "The"], "stream": True,
            "stream_options": {"include_usage": True}, "logprobs": 2, "n": 1, "user": "u", "ignore_eos": False}
    chat = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": [{"type": "text", "text": "h\u00e9llo"}]},
                                       {"role": "assistant", "content": "Hi.", "name": "bot"},
                                       {"role": "user", "content": "More"}],
            "max_completion_tokens": 16, "logprobs": True, "top_logprobs": 3, "response_format": {"type": "text"},
            "tool_choice": "none", "stop": "x"}
    write("http_request", "completion_all", b"\x00" + json.dumps(comp).encode())
    write("http_request", "completion_ids", b"\x00" + json.dumps({"prompt": [[1, 2, 3]], "max_tokens": 2}).encode())
    write("http_request", "chat_all", b"\x01" + json.dumps(chat, ensure_ascii=False).encode())
    write("http_request", "chat_min", b"\x01" + b'{"messages":[{"role":"user","content":"hi"}]}')
    write("http_request", "bad_type", b"\x00" + b'{"prompt":"x","temperature":"0.5"}')
    write("http_request", "bad_range", b"\x00" + b'{"prompt":"x","top_p":0,"max_tokens":1e400}')
    write("http_request", "bad_unknown", b"\x01" + b'{"messages":[{"role":"user","content":"x"}],"tools":[{}],"foo":1}')
    write("http_request", "bad_utf8", b"\x00" + b'{"prompt":"\xff\xc0\x80"}')
    write("http_request", "bad_truncated", b"\x01" + json.dumps(chat).encode()[:60])
    write("http_request", "bad_nested", b"\x00" + b"[" * 2000)
    # fuzz_http_request's first finding: raw NULs in a key, which cJSON read as a shorter key
    write("http_request", "found_nul_key", b'\x01{"' + b"\0" * 40 + b'mesle":"user","messages":[{"role":"user","content":"x"}]}')
    # its second: a parameter given twice leaked the first value
    write("http_request", "found_duplicate", b"\x00" + b'{"prompt": "Once", "model": "m", "prompt": "upon"}')
    write("http_request", "nul_escape", b"\x00" + b'{"temperature\\u0000x":0,"prompt":"a\\\\u0000"}')


def chat_template():
    """Small templates built like the real ones (chatml, llama3 headers, [INST]
    turns with alternation checks, namespaces, macros, tool calls through
    tojson, whitespace control), and conversations after a NUL for the
    fuzzer's fixed template."""
    t = "chat_template"
    write(t, "chatml", "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    write(t, "llama3", "{{- bos_token }}\n{%- if messages[0]['role'] == 'system' %}\n"
          "    {%- set system_message = messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n"
          "{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n"
          "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' }}\n"
          "{%- for message in messages %}\n    {{- '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}\n{%- endfor %}\n"
          "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}\n")
    write(t, "inst_alternate", "{%- set ns = namespace(index=0) %}\n{%- for message in messages %}\n"
          "    {%- if (message['role'] == 'user') != (ns.index % 2 == 0) %}\n"
          "        {{- raise_exception('roles must alternate') }}\n    {%- endif %}\n"
          "    {%- set ns.index = ns.index + 1 %}\n{%- endfor %}\n{{- bos_token }}\n"
          "{%- for message in messages %}{% if message.role == 'user' %}[INST]{{ message.content }}[/INST]"
          "{% else %}{{ message.content + eos_token }}{% endif %}{% endfor %}")
    write(t, "tools_macro", "{%- macro py_type(s) %}{%- if s.type == 'string' %}str{%- elif s.type is iterable %}"
          "Union[{%- for x in s.type %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}]{%- else %}Any"
          "{%- endif %}{%- endmacro %}\n{%- for tool in tools %}{%- set tool = tool.function %}"
          "{{ tool.name }}({% for k, v in tool.parameters.properties | items %}{{ k }}: {{ py_type(v) }}"
          "{% if not loop.last %}, {% endif %}{% endfor %})\n{{ tool | tojson(indent=4) }}\n{% endfor %}"
          "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' / ') }}")
    write(t, "reasoning", "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n"
          "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}"
          "{%- if ns.multi_step_tool and message.role == 'user' %}{%- set ns.multi_step_tool = false %}"
          "{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}\n"
          "{%- for message in messages %}{%- set content = message.content if message.content is string else '' %}"
          "{%- if '</think>' in content %}{%- set reasoning = content.split('</think>')[0].rstrip('\\n')"
          ".split('<think>')[-1].lstrip('\\n') %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
          "{%- endif %}{%- if loop.index0 > ns.last_query_index %}<think>{{ reasoning }}</think>{% endif %}"
          "{{ content }}{%- if message.tool_calls %}{% for tc in message.tool_calls %}"
          "{{ tc.function.arguments if tc.function.arguments is string else tc.function.arguments | tojson }}"
          "{% endfor %}{% endif %}{%- endfor %}{%- if enable_thinking is defined and enable_thinking is false %}"
          "<think>\\n\\n</think>{% endif %}")
    write(t, "gemma_inline", "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
          "{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}"
          "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
          "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")
    write(t, "values", "{% set d = {'a': 1, 'b': [1.5, none, true, 'x\\u00e9']} %}{{ d | tojson }} {{ d.items() | list }}"
          " {{ 7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 'abc'[::-1] }} {{ [3, 1, 2] | sort | first }}"
          " {{ 'a,b'.split(',') }} {{ strftime_now('%d %b %Y') }} {{ x | default('d') }}"
          "{% raw %}{{ raw }}{% endraw %}{# comment #}  {%+ if 1 %}kept{% endif +%}\n")
    write(t, "set_block", "{% set greeting %}Hello {{ messages[0].role }}{% endset %}{{ greeting | upper }}"
          "{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ loop.index }}{% if loop.last %}"
          "{% break %}{% endif %}{% else %}none{% endfor %}")
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>x</think>Yes",
                                                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
            {"role": "tool", "content": "42"}, {"role": "user", "content": "Thanks \u00e9"}]
    write(t, "messages_only", b"\0" + json.dumps(conv).encode())
    write(t, "messages_odd", b"\0" + b'[{"role": "user", "content": [1, 2.0, {"k": null}]}, {"role": "system"}, 5]')
    write(t, "template_and_messages", b"{{ messages | tojson }}\0" + json.dumps(conv[:1]).encode())


def gguf(kvs):
    """A metadata-only GGUF v3 file; kvs: (key, type, value) with type 8 string,
    4 u32, 7 bool, or ("arr", element type, list)."""
    def s(x):
        b = x if isinstance(x, bytes) else x.encode()
        return struct.pack("<Q", len(b)) + b
    def scalar(t, v):
        return s(v) if t == 8 else struct.pack({4: "<I", 5: "<i", 6: "<f", 7: "<B"}[t], v)
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for k, t, v in kvs:
        out += s(k)
        if isinstance(t, tuple):
            out += struct.pack("<IIQ", 9, t[1], len(v)) + b"".join(scalar(t[1], x) for x in v)
        else:
            out += struct.pack("<I", t) + scalar(t, v)
    return out + bytes(-len(out) % 32)


def gguf_tokenizer():
    toks = ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "ab", "\u2581a", "<0x63>", "<ctl>"]
    spm = [("tokenizer.ggml.model", 8, "llama"), ("tokenizer.ggml.tokens", ("arr", 8), toks),
           ("tokenizer.ggml.scores", ("arr", 6), [0, 0, 0, -1, -2, -3, -5, -4, 0, 0]),
           ("tokenizer.ggml.token_type", ("arr", 5), [2, 3, 3, 1, 1, 1, 1, 1, 6, 3]),
           ("tokenizer.ggml.bos_token_id", 4, 1), ("tokenizer.ggml.eos_token_id", 4, 2),
           ("tokenizer.chat_template", 8, "{% for m in messages %}{{ m.content }}{% endfor %}")]
    write("gguf_tokenizer", "spm", gguf(spm))
    write("gguf_tokenizer", "spm_no_space_prefix", gguf(spm + [("tokenizer.ggml.add_space_prefix", 7, 0)]))
    write("gguf_tokenizer", "spm_bad_type", gguf(spm[:3] + [("tokenizer.ggml.token_type", ("arr", 5), [9] * 10)]))
    bl = ["a", "b", "ab", " ", "\u0120", "\u0120a", "1", "<|end|>"]
    for pre in ("gpt-2", "llama-bpe", "qwen2", "other"):
        write("gguf_tokenizer", "bpe_" + pre, gguf([
            ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, pre),
            ("tokenizer.ggml.tokens", ("arr", 8), bl),
            ("tokenizer.ggml.token_type", ("arr", 5), [1, 1, 1, 1, 1, 1, 1, 3]),
            ("tokenizer.ggml.merges", ("arr", 8), ["a b", "\u0120 a"]),
            ("tokenizer.ggml.bos_token_id", 4, 7), ("tokenizer.ggml.add_bos_token", 7, 1)]))
    write("gguf_tokenizer", "truncated", gguf(spm)[:100])


if __name__ == "__main__":
    safetensors()
    gguf()
    config()
    checkpoint()
    tokenizer()
    http_request()
    chat_template()
    gguf_tokenizer()
