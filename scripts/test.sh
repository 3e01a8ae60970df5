#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: an
# optimised build, then one under AddressSanitizer + UndefinedBehaviorSanitizer;
# then runs each libFuzzer target for 30 s (tests/fuzz/run.sh).
# Shared golden data is read from $TPI_SHARED (default: ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j 1)

# Open MPI's own allocations live until exit; only our leaks are of interest.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTPI_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ctest --output-on-failure -j 1)

unset LSAN_OPTIONS UBSAN_OPTIONS
bash tests/fuzz/run.sh 30
