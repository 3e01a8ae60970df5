#!/usr/bin/env bash
# The one-way layering of docs/DESIGN.md "Layering": every `#include "..."` in
# src/, tools/ and examples/ must point to its own directory or to a lower
# level, never up and never sideways; tools/ and examples/ see only tpinfer.h
# (and tools/ its own headers). Prints each violation as FILE:LINE and fails.
# usage: layering.sh SOURCE_DIR
set -euo pipefail
cd "$1"
files=$(find src tools examples -name '*.[ch]' 2>/dev/null | sort)
[ -n "$files" ] || { echo "FAIL: no sources under $1"; exit 1; }
# shellcheck disable=SC2086 # one path per word, none with spaces
awk '
BEGIN {
    # the table of docs/DESIGN.md "Layering"; same number = same level
    n = split("core:0 io:1 tokenizer:1 comm:1 backend:1 tp:2 model:3 generate:4 chat:5 server:6", t, " ")
    for (i = 1; i <= n; i++) {
        split(t[i], kv, ":")
        level[kv[1]] = kv[2]
    }
    bad = 0
}
function report(why) {
    printf "%s:%d: #include \"%s\": %s\n", FILENAME, FNR, inc, why
    bad++
}
function exists(path,    r, line) {
    r = (getline line < path)
    close(path)
    return r >= 0
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    inc = $0
    sub(/^[^"]*"/, "", inc)
    sub(/".*$/, "", inc)
    if (inc == "tpinfer.h")
        next
    split(FILENAME, p, "/")
    top = p[1]
    here = FILENAME
    sub(/\/[^\/]*$/, "", here)
    if (top == "examples") {
        report("examples/ include only tpinfer.h")
        next
    }
    if (top == "tools") {
        if (inc !~ /\// && exists("tools/" inc))
            next
        report("tools/ include only tpinfer.h and tools/ headers")
        next
    }
    # src/<dir>/...: "dir/file.h" names its directory; a bare "file.h" must
    # lie beside the including file
    from = p[2]
    if (inc !~ /\//) {
        if (!exists(here "/" inc))
            report("not beside the including file; name its directory")
        next
    }
    to = inc
    sub(/\/.*$/, "", to)
    if (!(to in level)) {
        report("\"" to "/\" is not a directory of the layering")
        next
    }
    if (to == from)
        next
    if (level[to] == level[from])
        report(from " and " to " are on the same level and must not include each other")
    else if (level[to] > level[from])
        report(from " (level " level[from] ") includes " to " (level " level[to] "), above it")
}
END {
    if (bad) {
        printf "FAIL: %d include(s) break the layering of docs/DESIGN.md \"Layering\"\n", bad
        exit 1
    }
    print "ok: every include points to its own directory or a lower level"
}' $files
