#!/usr/bin/env bash
# Tunes pretraining on a validation split carved from the Adult training file (the test file
# is never read): 80% of adult.data.csv rows (shuffled with seed 0) pretrain the encoder
# variants and provide the labelled budgets, the other 20% score them.
#
#   cargo build --all-targets && bash models/sweep.sh [vime|scarf|dae]   # ~5 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
method=${1:-vime}
out=target/sweep
mkdir -p "$out/models"
python3 models/split_adult.py 0 0.8 "$out/train.csv" "$out/validation.csv"
pretrain() {
  local name=$1; shift
  target/debug/tabssl pretrain --input "$out/train.csv" --null-regex '\?' --exclude class --method "$method" \
    --seed 0 --output "$out/models/$name.onnx" "$@"
}
pretrain "${method}_default"
pretrain "${method}_dim32" --dim 32
pretrain "${method}_p05" --p 0.5
pretrain "${method}_epochs40" --epochs 40
target/debug/tabssl evaluate --train "$out/train.csv" --test "$out/validation.csv" --null-regex '\?' \
  --models "${method}_default,${method}_dim32,${method}_p05,${method}_epochs40" --models-dir "$out/models" \
  --budgets 100,500,1000 --seeds 3 --classifiers logistic --output "$out/evaluation_$method"
