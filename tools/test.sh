#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian 12, apt-get),
# builds warning-free, runs the test suite, then an ASan/UBSan pass over the
# unit tests and bounded fuzzing. Hardware-only (npu) and long (slow) tests
# are left out; run them with `ctest --test-dir build -L slow` / `-L npu`.
#   tools/test.sh            # everything above
#   UNICORN_SKIP_ASAN=1 UNICORN_SKIP_FUZZ=1 tools/test.sh   # quick local loop
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/install-deps.sh

echo "== build (warnings are errors)"
cmake -S . -B build -G Ninja -DUNICORN_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" -LE 'slow|npu'

if [ "${UNICORN_SKIP_ASAN:-0}" != 1 ]; then
  echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -G Ninja -DUNICORN_SANITIZE=ON -DUNICORN_WERROR=ON \
    -DCMAKE_BUILD_TYPE=Debug -DUNICORN_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-asan -j"$jobs" --target unit_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE 'slow|npu|integration|gpu' \
      -E '_NOT_BUILT$'  # labelled tests whose binaries this pass does not build
fi

if [ "${UNICORN_SKIP_FUZZ:-0}" != 1 ] && [ -x tools/fuzz.sh ]; then
  echo "== bounded fuzzing"
  tools/fuzz.sh
fi
echo "== all tests passed"
