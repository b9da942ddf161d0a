#!/bin/bash
# One device run: models + references, then GGUF conversion, then pack the
# results into $OUT (one .tgz per model folder, at most 16 MiB each).
#
# Expects, beside this script (the staging folder the run carries):
#   tok512/ tok640/   tokenizer files from make_tokenizer.py
#   llama.cpp/        convert_hf_to_gguf.py, conversion/, gguf-py/
# Usage: run_device.sh OUT_DIR
set -u -o pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
work="$(mktemp -d)"
export PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=""
{
  nproc; python3 --version
  python3 "$here/make_models.py" --out "$work/models" \
    --tok512 "$here/tok512" --tok640 "$here/tok640"
  echo "make_models exit $?"
  bash "$here/make_gguf.sh" "$here/llama.cpp" "$work/models"
  echo "make_gguf exit $?"
  # the sources the references came from, for reading without another run
  site="$(python3 -c 'import os, transformers; print(os.path.dirname(transformers.__file__))')"
  tar czf "$out/hf_src.tgz" -C "$site" models/gemma3 models/siglip masking_utils.py \
    modeling_rope_utils.py conversion_mapping.py 2>/dev/null
  for d in "$work/models"/*/; do
    tar czf "$out/$(basename "$d").tgz" -C "$work/models" "$(basename "$d")"
  done
  ls -l "$out"
} 2>&1 | tee "$out/log.txt"
