#!/usr/bin/env bash
# Every held-out figure of a model in one run (what the model cards report):
#   bash scripts/eval_model.sh MODEL_DIR [OUT_DIR]
# synthetic held-out (qa eval), real e-commerce and STC-3 held-out grades (bench/real_eval.py), and rule flags
# with and without the model (bench/rules_vs_labels.py). Real sets come from scripts/build_real_sets.py.
set -euo pipefail
model=${1:?model directory}; out=${2:-/tmp/eval-$(basename "$model")}
real=${QA_CACHE:-$HOME/.cache/qa}/real
mkdir -p "$out"
qa eval "$model" data/labelled/eval/*.jsonl --no-baselines > "$out/synthetic.txt" 2>&1
for s in ecom stc3; do
  f="$real/real_eval_$s.jsonl"
  [ -f "$f" ] || { echo "skip $s: $f missing" > "$out/real_$s.txt"; continue; }
  python bench/real_eval.py "$f" --model "$model" > "$out/real_$s.txt" 2>&1
  python bench/rules_vs_labels.py "$f" --model "$model" > "$out/flags_$s.txt" 2>&1
done
python bench/rules_vs_labels.py data/labelled/eval/*.jsonl --model "$model" > "$out/flags_synthetic.txt" 2>&1
echo "wrote $out"
