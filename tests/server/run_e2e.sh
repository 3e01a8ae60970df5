#!/usr/bin/env bash
# Runs tests/server/e2e.mjs against `tpinfer serve` at RANKS ranks; skipped
# (exit 77) without node, the openai package (scripts/deps.sh installs it
# into tests/server/node_modules) or the shared models.
# usage: run_e2e.sh TPINFER RANKS WORK_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${TPI_SHARED:-$TPI_SHARED_DEFAULT}
command -v node >/dev/null || { echo "skipped: node is not installed (scripts/deps.sh)"; exit 77; }
command -v curl >/dev/null || { echo "skipped: curl is not installed (scripts/deps.sh)"; exit 77; }
[ -d "$here/node_modules/openai" ] || { echo "skipped: no $here/node_modules/openai (scripts/deps.sh runs npm install)"; exit 77; }
[ -f "$shared/models/stories260K-hf/model.safetensors" ] || { echo "skipped: no $shared/models/stories260K-hf"; exit 77; }
exec node "$here/e2e.mjs" "$1" "$2" "$shared" "$3"
