#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14 and
# AddressSanitizer + UndefinedBehaviorSanitizer in a separate build folder,
# then runs each for a bounded time over its committed seed corpus
# (tests/fuzz/corpus/<target>/; new inputs go to a scratch folder, never into
# the repository). Exits non-zero if any target crashes, leaks or times out;
# the crashing input is kept as <build>/fuzz/<target>-crash-*.
#
# Usage: tools/fuzz.sh
# Environment:
#   FUZZ_SECONDS   seconds per target (default 15: 7 targets, under 2 minutes)
#   FUZZ_TARGETS   targets to run (default: all seven)
#   FUZZ_BUILD_DIR build folder (default build-fuzz)
#   FUZZ_JOBS      parallel compile jobs (default 2)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-15}
targets=${FUZZ_TARGETS:-gguf safetensors config tokenizer image wire request}
jobs=${FUZZ_JOBS:-2}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="-O1 -gline-tables-only" \
  -DCMAKE_C_FLAGS_FUZZ="-O1 -gline-tables-only" -DUNICORN_FUZZ=ON \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >/dev/null
ninja -C "$build" -j"$jobs" $(for t in $targets; do echo "${t}_fuzz"; done)

failed=0
for t in $targets; do
  scratch=$(mktemp -d)
  echo "[fuzz] $t: ${seconds}s over tests/fuzz/corpus/$t"
  set +e
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz/${t}-" \
    "$scratch" "$root/tests/fuzz/corpus/$t" >"$build/fuzz/${t}.log" 2>&1
  rc=$?
  set -e
  rm -rf "$scratch"
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$build/fuzz/${t}.log" | sed "s/^/[fuzz] $t: /" || true
  if [ "$rc" -ne 0 ]; then
    echo "[fuzz] $t: FAILED (exit $rc); log: $build/fuzz/${t}.log"
    tail -n 40 "$build/fuzz/${t}.log"
    failed=1
  fi
done
exit "$failed"
