#!/bin/bash
# Unpacks a device run's output into tests/data/models/ and describes the GGUF
# files (inspect_gguf.py writes gguf/<file>.json beside each).
#
# Usage: install.sh DEVICE_OUT_DIR LLAMA_CPP_DIR
#   DEVICE_OUT_DIR holds the .tgz files run_device.sh wrote.
# vision-small-google/ (the same weights renamed to Google's dialect) is a
# scratch folder of the run and is not installed; its config.json is kept as
# vision-small/config-google-dialect.json.
set -eu -o pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$(cd "$here/../.." && pwd)/tests/data/models"
src="$1"
llama="$2"
mkdir -p "$dest"
for m in text-small text-1b-like text-27b-like vision-small; do
  rm -rf "${dest:?}/$m"
  tar xzf "$src/$m.tgz" -C "$dest"
done
chmod -R u+w "$dest"
cd "$dest"
python3 "$here/inspect_gguf.py" --llama-cpp "$llama" --hf text-small text-small/gguf/*.gguf
python3 "$here/inspect_gguf.py" --llama-cpp "$llama" --hf vision-small vision-small/gguf/*.gguf
du -sh "$dest"
