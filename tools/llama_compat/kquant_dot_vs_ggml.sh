#!/bin/bash
# The CPU backend's k-quant kernels against ggml-cpu's (kquant_dot_vs_ggml.cc):
# same Q8_K activation bytes, same row dots. Needs a llama.cpp source tree and
# build, and this repository's build (libunicorn_cpu.a and its libraries):
#   LLAMA_CPP_SRC=... LLAMA_CPP_BIN=... tools/llama_compat/kquant_dot_vs_ggml.sh [BUILD_DIR]
set -euo pipefail
src=${LLAMA_CPP_SRC:-}
bin=${LLAMA_CPP_BIN:-}
if [[ -z "$src" || -z "$bin" || ! -e "$bin/libggml-cpu.so" ]]; then
  echo "SKIP: set LLAMA_CPP_SRC (source tree) and LLAMA_CPP_BIN (folder with libggml-cpu.so)"
  exit 0
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -std=c++20 -O2 -I"$root" -I"$src/ggml/include" "$root/tools/llama_compat/kquant_dot_vs_ggml.cc" \
  "$build/lib/libunicorn_cpu.a" "$build/lib/libunicorn_model.a" "$build/lib/libunicorn_common.a" \
  -lhwy -L"$bin" -lggml-cpu -lggml-base -Wl,-rpath,"$bin" -o "$out/check"
"$out/check"
