#!/usr/bin/env bash
# Issue 18's exploration: which pretraining recipe makes the stack (gbdt on raw blended with the
# embedding models, `evaluate --classifiers ...,stack`) beat gbdt on the raw columns? Runs on a
# validation split carved from the Adult training file only (the test file is never read):
# 75% of adult.data.csv rows (shuffled with seed 2026) pretrain the encoders and provide the
# labelled budgets, the other 25% score them.
#
#   cargo build --all-targets && bash models/explore.sh [variant ...]   # ~8 min per variant on 2 cores
#
# Variants: default (the shipped recipe), layers (hidden layer exported beside the embedding,
# `--feature-layers hidden,embedding`), epochs60 (3x longer pretraining), wide (hidden 256,
# 60 epochs). Prints, per variant and budget, the stack's mean test AUC on the held-out 25% and
# its gain over gbdt on raw (5 seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(default layers epochs60 wide)
out=target/explore
mkdir -p "$out"
python3 models/split_adult.py 2026 0.75 "$out/fit.csv" "$out/holdout.csv"
flags() {
  case $1 in
    default) ;;
    layers) echo "--feature-layers hidden,embedding" ;;
    epochs60) echo "--epochs 60" ;;
    wide) echo "--epochs 60 --hidden 256" ;;
    *) echo "unknown variant $1 (expected default, layers, epochs60 or wide)" >&2; exit 2 ;;
  esac
}
for variant in "${variants[@]}"; do
  extra=$(flags "$variant")
  dir="$out/$variant"
  mkdir -p "$dir/models"
  for args in "vime" "scarf" "dae --p 0.5"; do
    set -- $args
    # shellcheck disable=SC2086 # $extra holds several flags
    target/debug/tabssl pretrain --input "$out/fit.csv" --null-regex '\?' --exclude class --method "$@" \
      --seed 0 --output "$dir/models/$1.onnx" $extra >/dev/null
  done
  target/debug/tabssl evaluate --train "$out/fit.csv" --test "$out/holdout.csv" --null-regex '\?' \
    --models vime,scarf,dae --models-dir "$dir/models" --seeds 5 --output "$dir/evaluation" >/dev/null
done
python3 - "$out" "${variants[@]}" <<'PY'
import json, statistics, sys
out, variants = sys.argv[1], sys.argv[2:]
print("| variant | " + " | ".join(("100", "500", "1000", "all")) + " |")
print("|---|" + "---:|" * 4)
for variant in variants:
    cells = json.load(open(f"{out}/{variant}/evaluation/evaluation.json"))
    def auc(representation, classifier, budget):
        for c in cells:
            if c["classifier"] == classifier and c["budget"] == budget and (
                    representation is None or c["representation"] == representation):
                return c["auc"]
    texts = []
    for budget in ({"Rows": 100}, {"Rows": 500}, {"Rows": 1000}, "All"):
        trees, stack = auc("raw", "gbdt", budget), auc(None, "stack", budget)
        gain = statistics.mean(s - t for s, t in zip(stack, trees))
        texts.append(f"{statistics.mean(stack):.4f} ({gain:+.4f})")
    print(f"| {variant} | " + " | ".join(texts) + " |")
PY
