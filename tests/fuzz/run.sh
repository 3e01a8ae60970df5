#!/usr/bin/env bash
# Builds the libFuzzer targets (clang; ASan + UBSan) in build-fuzz and runs
# each for SECONDS (default 30), all at once, on a scratch copy of its seed
# corpus in tests/fuzz/corpus/ (the source tree is never written). Fails on any
# crash, leak, timeout or memory blow-up, leaving the input in
# build-fuzz/artifacts/; prints each target's number of executions.
# When $TPI_SHARED is set, its small config.json files join the config seeds.
set -euo pipefail
secs=${1:-30}
cd "$(dirname "$0")/../.."
targets=(safetensors gguf config checkpoint tokenizer http_request chat_template gguf_tokenizer)
CC=clang cmake -S . -B build-fuzz -DTPI_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf build-fuzz/artifacts && mkdir -p build-fuzz/artifacts
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for t in "${targets[@]}"; do
  cp -r "tests/fuzz/corpus/$t" "$work/$t"
  if [ "$t" = config ] && [ -n "${TPI_SHARED:-}" ] && [ -d "$TPI_SHARED" ]; then
    i=0
    while IFS= read -r f; do cp "$f" "$work/$t/shared-$((i++))"; done \
      < <(find "$TPI_SHARED" -name config.json -size -20k 2>/dev/null | head -50)
  fi
  "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$PWD/build-fuzz/artifacts/$t-" "$work/$t" \
    >"$work/$t.log" 2>&1 &
  pids+=($!)
done
fail=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  rc=0
  wait "${pids[$i]}" || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
  if [ "$rc" -ne 0 ]; then
    fail=1
    echo "fuzz_$t: FAILED (exit $rc) after ${execs:-?} executions; input in build-fuzz/artifacts/:"
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written|^ +#[0-9]' "$work/$t.log" | head -40
  else
    echo "fuzz_$t: ${execs:-?} executions in ${secs} s, no crash, leak or timeout"
  fi
done
exit "$fail"
