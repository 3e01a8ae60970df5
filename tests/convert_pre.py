#!/usr/bin/env python3
"""tokenizer.ggml.pre from a real tokenizer's pre-tokenizer: builds a model
directory from a golden checkpoint (vocab 256) with a 256-token tokenizer.json
that carries the pre_tokenizer, normalizer and byte_fallback of
TOKENIZER_DIR's, converts it, and prints convert's tokenizer line.
usage: convert_pre.py TPINFER GOLDEN_MODEL TOKENIZER_DIR WORK_DIR"""
import json, os, shutil, subprocess, sys

tpinfer, golden, tok_dir, work = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
for f in ("config.json", "model.safetensors"):
    os.symlink(os.path.join(golden, f), os.path.join(work, f))
real = json.load(open(os.path.join(tok_dir, "tokenizer.json")))
vocab = {"<0x%02X>" % i if real["model"].get("byte_fallback") else "t%d" % i: i for i in range(256)}
tok = {"model": {"type": "BPE", "vocab": vocab, "merges": [],
                 "byte_fallback": bool(real["model"].get("byte_fallback"))},
       "added_tokens": [], "pre_tokenizer": real.get("pre_tokenizer"), "normalizer": real.get("normalizer")}
json.dump(tok, open(os.path.join(work, "tokenizer.json"), "w"))
r = subprocess.run([tpinfer, "convert", "-m", work, "--type", "f32", "--out", os.path.join(work, "m.gguf")],
                   capture_output=True, text=True)
print(r.stderr.strip())
sys.exit(r.returncode)
