#!/bin/bash
# The demo model's whole pipeline on one GPU machine (about 7 minutes on an
# H100): tokenizer, tokenized data, four training settings side by side, then
# the Hugging Face folder and the reference data of the best one.
#   usage: run_all.sh DATA_DIR GEMMA_SKELETON WORK_DIR OUT_DIR [TRAIN_BUDGET_S]
# DATA_DIR comes from prep_data.py, GEMMA_SKELETON from gemma_skeleton.py.
# OUT_DIR receives ckpt_<run>.pt (bf16 state dicts; only the chosen one is kept),
# train.txt (training logs) and result.tar.gz (models/demo, tests/data/demo,
# logs and reports).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$1 SKEL=$2 WORK=$3 OUT=$4 BUDGET=${5:-330}
mkdir -p "$WORK" "$OUT"
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0
T0=$(date +%s)
stamp() { echo "=== $1 ($(( $(date +%s) - T0 )) s)"; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
nproc
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
stamp tokenizer
python3 "$HERE/train_tokenizer.py" --skeleton "$SKEL" --train "$DATA/train.txt" \
  --val "$DATA/val.txt" --out "$WORK/tok" || exit 1
stamp tokenize
python3 "$HERE/tokenize_data.py" --data "$DATA" --tok "$WORK/tok" --out "$WORK/ids" || exit 1

stamp train
# The model is far too small to fill the GPU, so the settings run side by side;
# the one with the lowest validation loss is kept. (A first sweep, 25 epochs at
# most: no dropout overfit after ~12 epochs, dropout 0.15 was best.)
run() {
  python3 "$HERE/train_model.py" --ids "$WORK/ids" --name "$1" --ckpt "$OUT/ckpt_$1.pt" \
    --log "$WORK/log_$1.json" --budget "$BUDGET" "${@:2}" >> "$OUT/train.txt" 2>&1
}
run E --dropout 0.15 --epochs 35 --chat-weight 0.3 --seed 21 &
run F --dropout 0.2 --epochs 50 --chat-weight 0.3 --seed 22 &
wait
grep -E "done|ms/step|Error|error" "$OUT/train.txt"

stamp export
FINAL=$WORK/final
python3 "$HERE/export_eval.py" --ckpt-dir "$OUT" --log-dir "$WORK" --tok "$WORK/tok" --data "$DATA" \
  --model-out "$FINAL/models/demo" --ref-out "$FINAL/tests/data/demo" --report "$WORK/report.json"
rc=$?
mkdir -p "$FINAL/logs"
cp "$WORK"/log_*.json "$WORK/tok/tokenizer_report.json" "$WORK/ids/chat_check.json" \
  "$WORK/report.json" "$FINAL/logs/" 2>/dev/null
tar -C "$FINAL" -czf "$OUT/result.tar.gz" .
if [ $rc -eq 0 ]; then
  keep=$(python3 -c "import json; print(json.load(open('$WORK/report.json'))['chosen'])")
  for f in "$OUT"/ckpt_*.pt; do [ "$f" = "$OUT/ckpt_$keep.pt" ] || rm -f "$f"; done
fi
ls -la "$OUT" "$FINAL/models/demo" "$FINAL/tests/data/demo"
stamp end
exit $rc
