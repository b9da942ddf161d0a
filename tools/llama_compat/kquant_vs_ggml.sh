#!/bin/bash
# Checks model/kquant.cc against ggml itself: our quantizer's bytes are
# dequantized by ggml's to_float and ours (must agree exactly), ggml's
# quantizer's bytes by both (must agree exactly), and both quantizers' RMS
# errors are printed. Needs a llama.cpp source tree and build:
#   LLAMA_CPP_SRC=/path/to/llama.cpp LLAMA_CPP_BIN=/path/to/build/bin tools/llama_compat/kquant_vs_ggml.sh
set -euo pipefail
src=${LLAMA_CPP_SRC:-}
bin=${LLAMA_CPP_BIN:-}
if [[ -z "$src" || -z "$bin" || ! -e "$bin/libggml-base.so" ]]; then
  echo "SKIP: set LLAMA_CPP_SRC (source tree) and LLAMA_CPP_BIN (folder with libggml-base.so)"
  exit 0
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -std=c++20 -O2 -I"$root" -I"$src/ggml/include" "$root/tools/llama_compat/kquant_vs_ggml.cc" \
  "$root/model/kquant.cc" "$root/model/quant.cc" "$root/model/dtype.cc" \
  -L"$bin" -lggml-base -Wl,-rpath,"$bin" -o "$out/check"
"$out/check"
