#!/bin/bash
# llama.cpp compatibility of `unicorn quantize` output: for Q4_0, Q8_0 and
# Q4_K_M, quantizes a model, then generates greedily from the same file with
# llama.cpp's llama-simple and with `unicorn run`, and requires the same
# tokens up to near-ties: where the texts part, the token llama.cpp chose
# must be within 5% of the logit standard deviation of Unicorn's choice in
# Unicorn's own logits (tools/llama_compat/divergence.py). The demo model
# is small and its logits often nearly tie: llama.cpp's own CPU paths
# (runtime repacking on and off) part from each other on these prompts, and
# Unicorn's CPU and Vulkan backends differ by up to ~2% of the logit std
# (8-bit vs f32 activations), so a flip under 5% is rounding, not a format
# or model difference (those move logits by O(std) and fail here).
#
#   LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin tools/llama_compat/greedy_compat.sh [BUILD_DIR]
#
# The model is the demo (models/demo) with query_pre_attn_scalar set to
# head_dim (64): GGUF cannot carry the demo's 48 (llama.cpp derives the
# scale from the shape), so with 48 the two engines would run different
# functions. Skips (exit 0, "SKIP: ...") without llama.cpp.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
bin=${LLAMA_CPP_BIN:-}
if [[ -z "$bin" || ! -x "$bin/llama-simple" ]]; then
  echo "SKIP: set LLAMA_CPP_BIN to a llama.cpp build's bin folder with llama-simple"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/model"
cp "$root"/models/demo/*.json "$root"/models/demo/model.safetensors "$tmp/model/"
sed -i 's/"query_pre_attn_scalar": 48/"query_pre_attn_scalar": 64/' "$tmp/model/config.json"
prompts=("The quick brown fox" "Once upon a time" "The river")
fail=0
for type in q4_0 q8_0 q4_k_m; do
  "$build/bin/unicorn" quantize --in "$tmp/model" --out "$tmp/$type.gguf" --type "$type" >/dev/null
  for p in "${prompts[@]}"; do
    ours=$("$build/bin/unicorn" run -m "$tmp/$type.gguf" -p "$p" -n 32 --temp 0 2>/dev/null)
    theirs=$("$bin/llama-simple" -m "$tmp/$type.gguf" -n 32 "$p" 2>/dev/null)
    theirs=${theirs#<bos>}
    theirs=${theirs#"$p"}
    if [[ "$ours" == "$theirs" ]]; then
      echo "OK   $type \"$p\" -> ${ours//$'\n'/\\n}"
      continue
    fi
    where=$("${PYTHON3:-/usr/bin/python3}" "$root/tools/llama_compat/divergence.py" "$build/bin/unicorn" \
      "$tmp/model" "$tmp/$type.gguf" "$p" "$ours" "$theirs")
    margin=$(sed -n 's/.*margin \(-\?[0-9.]*\) .*/\1/p' <<<"$where")
    if [[ -n "$margin" ]] && awk -v m="$margin" 'BEGIN { exit !(m < 0.05) }'; then
      echo "NEAR $type \"$p\": $where"
    else
      echo "DIFF $type \"$p\": $where"
      fail=1
    fi
    echo "  unicorn:   ${ours//$'\n'/\\n}"
    echo "  llama.cpp: ${theirs//$'\n'/\\n}"
  done
done
exit $fail
