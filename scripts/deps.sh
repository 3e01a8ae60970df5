#!/usr/bin/env bash
# Installs the Debian 12 packages tpinfer builds, tests and benchmarks with
# (README.md says why each is there). Installs only what is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libpcre2-dev libutf8proc-dev libcmocka-dev libmicrohttpd-dev
      libopenmpi-dev openmpi-bin libopenblas-dev gnuplot-nox bc clang libclang-rt-14-dev nodejs curl)
# npm: Debian's, unless a node install already brings its own
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The server tests' OpenAI client (npm's `openai`), into tests/server/node_modules.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/tests/server/node_modules/openai" ]; then
  (cd "$here/tests/server" && npm install --no-audit --no-fund --silent)
fi
