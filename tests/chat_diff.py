#!/usr/bin/env python3
"""Differential check of tpinfer's Jinja subset against jinja2 (Debian's
python3-jinja2), set up the way transformers' apply_chat_template sets it up.

    tests/chat_diff.py BUILD/tests/test_chat_template T1.jinja [T2.jinja ...]

Renders each template with a set of conversations (plain, system, multi-turn,
tool calls with tools, reasoning, odd characters and numbers) through both and
prints every difference; exits 1 if any. A developer's tool, not a ctest: the
project's tests do not depend on Python."""
import datetime
import json
import os
import subprocess
import sys
import tempfile

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Generation(Extension):
    """transformers' AssistantTracker, reduced to rendering the body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.Scope(body, lineno=lineno)


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime(2026, 12, 1, 12, 0, 0).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit"},
        "days": {"type": "integer", "description": "How many days"}},
        "required": ["city"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "query"},
                                                    "top_k": {"type": "number", "description": "k"}},
                   "required": ["q"]}}}
CALL = {"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "ratio": 0.1, "big": 1e20}}}

CONVERSATIONS = {
    "one-turn": dict(messages=[{"role": "user", "content": "Can I help?"}]),
    "system": dict(messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]),
    "multi-turn": dict(messages=[
        {"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me about \u00c9mile \U0001f415, \"quotes\" and \\ backslashes\n\ttabs."}]),
    "reasoning": dict(messages=[
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nSimple sum.\n</think>\n\n4"},
        {"role": "user", "content": "And 3+3?"}], extra={"enable_thinking": False}),
    "tools": dict(messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER, SEARCH]),
    "tool-call": dict(messages=[
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21.5}"},
        {"role": "assistant", "content": "It is 21.5 C."},
        {"role": "user", "content": "Thanks"}], tools=[WEATHER]),
    "tool-call-string-args": dict(messages=[
        {"role": "user", "content": "Search cats"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "abcdefghi", "type": "function", "function": {"name": "search", "arguments": "{\"q\": \"cats\"}"}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": "Cats are great."}], tools=[SEARCH]),
}


def reference(env, src, case):
    try:
        t = env.from_string(src)
    except Exception as e:  # noqa: BLE001 - any parse failure
        return "PARSE-ERROR " + str(e)
    ctx = dict(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"],
               bos_token="<s>", eos_token="</s>")
    if "tools" in case:
        ctx["tools"] = case["tools"]
    ctx.update(case.get("extra", {}))
    try:
        return t.render(**ctx)
    except Exception as e:  # noqa: BLE001 - jinja2 raises many kinds
        return "ERROR " + str(e)


def run_binary(binary, template_path, case, tmp):
    """The binary's render of case, written into tmp as the files it reads."""
    files = {"messages.json": case["messages"], "tools.json": case.get("tools"), "extra.json": case.get("extra"),
             "opts.json": {k: case[k] for k in ("add_generation_prompt", "bos_token", "eos_token")}}
    for name, value in files.items():
        p = os.path.join(tmp, name)
        if value is None:
            if os.path.exists(p):
                os.remove(p)
            continue
        with open(p, "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False)
    out = subprocess.run([binary, "render", template_path, tmp], capture_output=True, check=False).stdout
    return out.decode("utf-8", "replace")


def main():
    binary, templates = sys.argv[1], sys.argv[2:]
    env = make_env()
    bad = total = errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in templates:
            src = open(path, encoding="utf-8").read()
            for name, conv in CONVERSATIONS.items():
                for agp in (True, False):
                    case = dict(conv, add_generation_prompt=agp, bos_token="<s>", eos_token="</s>")
                    want = reference(env, src, case)
                    got = run_binary(binary, path, case, tmp)
                    total += 1
                    errors += want.startswith("ERROR") or want.startswith("PARSE-ERROR")
                    same = got == want or (want.startswith("ERROR") and got.startswith("ERROR")) or \
                        (want.startswith("PARSE-ERROR") and got.startswith("ERROR"))
                    if not same:
                        bad += 1
                        print(f"--- {os.path.basename(path)} {name} agp={agp}\nwant: {want!r}\ngot:  {got!r}")
    print(f"{total - bad}/{total} renders agree ({errors} of them errors in jinja2)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
