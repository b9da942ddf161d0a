#!/bin/bash
# Prepares the folder the device run carries: these scripts, the two tiny
# tokenizers (make_tokenizer.py) and the converter part of llama.cpp.
#
# Usage: stage.sh STAGING_DIR LLAMA_CPP_DIR [GEMMA3_TOKENIZER_DIR]
#   LLAMA_CPP_DIR: a llama.cpp source tree (see README.md for where ours came from)
#   GEMMA3_TOKENIZER_DIR: Gemma 3's tokenizer.json + tokenizer_config.json
#     (default ../shared/gemma3-tokenizer beside the repository)
set -eu -o pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stage="$1"
llama="$2"
gemma="${3:-$(cd "$here/../../.." && pwd)/shared/gemma3-tokenizer}"
rm -rf "$stage"
mkdir -p "$stage/llama.cpp"
cp "$here"/*.py "$here"/*.sh "$stage/"
python3 "$here/make_tokenizer.py" --gemma-dir "$gemma" --vocab 512 --out "$stage/tok512"
python3 "$here/make_tokenizer.py" --gemma-dir "$gemma" --vocab 640 \
  --special '600:<start_of_image>' --special '601:<end_of_image>' \
  --special '602:<image_soft_token>' --out "$stage/tok640"
cp -r "$llama/convert_hf_to_gguf.py" "$llama/conversion" "$llama/gguf-py" "$stage/llama.cpp/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
du -sh "$stage"
