#!/bin/bash
# Converts the tiny models to GGUF with llama.cpp's own converter, for the GGUF
# reader's cross-check. Needs torch, transformers, sentencepiece, numpy, pyyaml
# (run it on the device machine) and a llama.cpp source tree (only
# convert_hf_to_gguf.py, conversion/ and gguf-py/ are used).
#
# Usage: make_gguf.sh LLAMA_CPP_DIR MODELS_DIR
#   MODELS_DIR holds text-small/, vision-small/ (and vision-small-google/)
#   as make_models.py writes them; the .gguf files go to <model>/gguf/.
set -u -o pipefail
conv="$1/convert_hf_to_gguf.py"
m="$2"
status=0

run() {
  echo "+ $*"
  "$@" || { echo "!! failed: $*"; status=1; return 1; }
}

mkdir -p "$m/text-small/gguf" "$m/vision-small/gguf"
run python3 "$conv" "$m/text-small" --outtype f32 \
  --outfile "$m/text-small/gguf/text-small-f32.gguf"
run python3 "$conv" "$m/text-small" --outtype q8_0 \
  --outfile "$m/text-small/gguf/text-small-q8_0.gguf"
run python3 "$conv" "$m/vision-small" --outtype q8_0 \
  --outfile "$m/vision-small/gguf/vision-small-q8_0.gguf"
if ! run python3 "$conv" "$m/vision-small" --mmproj --outtype f32 \
  --outfile "$m/vision-small/gguf/mmproj-vision-small-f32.gguf"; then
  # The converter may only know Google's tensor names for the vision tower.
  run python3 "$conv" "$m/vision-small-google" --mmproj --outtype f32 \
    --outfile "$m/vision-small/gguf/mmproj-vision-small-f32.gguf" && status=2
fi
ls -l "$m"/*/gguf/
exit $status
