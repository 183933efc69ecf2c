#!/usr/bin/env bash
# The label figures of docs/validation.md for one classifier and one shapes generator:
#   - the study (2000 pairs per class at PSI, 2 tuning samples per class unless told), sweep and probe with
#     tuning seeds 136 and 137: labels against the probe, the chain, and the planted units when
#     the classifier has them;
#   - randomisation checks, where no unit should be selective:
#     shuffled: the same pairs with w shuffled within each class (seed 0), refitted;
#     untrained: the classifier's architecture at its initial weights (seed 99), pairs unfiltered.
#   - the agreement of the two tuning seeds' labels (Cohen's kappa over all units, "none" a label
#     of its own; and over the units both seeds label).
# Usage: tools/label_figures.sh <linkstyle> <classifier.pt> <generator.pt> <output folder> [psi (1)]
#          [randomisation checks: yes (default) | no] [sweep direction: isolated (default) | conditional]
#          [tuning samples per class (2)]
# Writes probe-<name>.txt, ground_truth-<name>.json and results-<name>.sqlite per run, and
# <output>/figures.txt last.
set -euo pipefail
linkstyle=$1
classifier=$(realpath "$2")
generator=$(realpath "$3")
out=$4
psi=${5:-1}
checks=${6:-yes}
direction=${7:-isolated}
samples=${8:-2}
models=$(cd "$(dirname "$0")/../models/shapes" && pwd)
python=/usr/bin/python3
mkdir -p "$out"
out=$(realpath "$out")

study_with() {  # study_with FOLDER CLASSIFIER [FILTER]
  rm -rf "$1"
  "$linkstyle" init "$1" --classifier "$2" --generator "$generator" --segmenter "$models/segmenter.pt" \
    --samples-per-class 2000 --psi "$psi" --sweep-samples-per-class "$samples" >/dev/null
  if [ -n "${3:-}" ]; then sed -i "s/^filter = .*/filter = \"$3\"/" "$1/study.toml"; fi
  sed -i "s/^direction = .*/direction = \"$direction\"/" "$1/study.toml"
}
sweep_and_probe() {  # sweep_and_probe STUDY NAME SEED
  sed -i "/^\[sweep\]/,/^\[/ s/^seed = [0-9]*/seed = $3/" "$1/study.toml"
  rm -rf "$1/sweeps"
  "$linkstyle" sweep --study "$1" >"$out/sweep-$2.txt"
  # A sweep with no labelled expressible unit has nothing to score: probe says so and stops.
  "$linkstyle" probe --study "$1" --images 3000 >"$out/probe-$2.txt" 2>&1 || true
  cp "$1/sweeps/ground_truth.json" "$out/ground_truth-$2.json" 2>/dev/null || rm -f "$out/ground_truth-$2.json"
  cp "$1/sweeps/results.sqlite" "$out/results-$2.sqlite"
  "$python" - "$1/sweeps/results.sqlite" "$2" >>"$out/selective.txt" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
units, labelled = db.execute("SELECT count(*), sum(label != 'none') FROM units").fetchone()
tests, significant = db.execute("SELECT count(*), sum(significant) FROM selectivity").fetchone()
print(f"{sys.argv[2]}: {labelled} of {units} units labelled ({100 * labelled / units:.1f}%), "
      f"{significant} of {tests} tests significant")
PY
}

: >"$out/selective.txt"
study="$out/study"
study_with "$study" "$classifier"
"$linkstyle" pairs --study "$study" >/dev/null
"$linkstyle" --json fit --study "$study" >"$out/fit.json"
for seed in 136 137; do sweep_and_probe "$study" "seed-$seed" "$seed"; done
echo "seeds 136 / 137: $("$python" "$(dirname "$0")/label_kappa.py" "$out/results-seed-136.sqlite" "$out/results-seed-137.sqlite")" \
  >>"$out/selective.txt"

names="seed-136 seed-137"
if [ "$checks" = yes ]; then
names="$names shuffled untrained"
# Shuffled: w permuted within each class over all shards; the fit recomputes its statistics.
shuffled="$out/shuffled"
rm -rf "$shuffled"
mkdir -p "$shuffled"
cp -r "$study/study.toml" "$study/pairs" "$shuffled/"
sed -i "s|^classifier = .*|classifier = \"$classifier\"|; s|^generator = .*|generator = \"$generator\"|" "$shuffled/study.toml"
"$python" - "$shuffled/pairs" <<'PY'
import json, sys, numpy as np
folder = sys.argv[1]
shards = json.load(open(f"{folder}/manifest.json"))["shards"]
w = [np.load(f"{folder}/{s['latents']}") for s in shards]
labels = np.concatenate([np.load(f"{folder}/{s['labels']}") for s in shards])
all_w = np.concatenate(w)
rng = np.random.default_rng(0)
for c in np.unique(labels):
    rows = np.flatnonzero(labels == c)
    all_w[rows] = all_w[rng.permutation(rows)]
start = 0
for s, part in zip(shards, w):
    np.save(f"{folder}/{s['latents']}", all_w[start:start + len(part)].astype(np.float32))
    start += len(part)
PY
"$linkstyle" fit --study "$shuffled" --recompute >/dev/null
sweep_and_probe "$shuffled" shuffled 136

# Untrained: the architecture at its initial weights (one step at a vanishing learning rate).
"$linkstyle" --threads 1 train classifier --world shapes -o "$out/untrained.pt" --steps 1 --seed 99 \
  --learning-rate 1e-12 --test-images 600 >/dev/null
untrained="$out/untrained-study"
study_with "$untrained" "$out/untrained.pt" none
"$linkstyle" pairs --study "$untrained" >/dev/null
"$linkstyle" fit --study "$untrained" >/dev/null
sweep_and_probe "$untrained" untrained 136
fi

{
  cat "$out/selective.txt"
  for name in $names; do
    echo "== $name"
    grep -E "^probe:|^planted|^  unit|with within-class|^end to end|^profile|^  partial|^  encoding" \
      "$out/probe-$name.txt" || tail -1 "$out/probe-$name.txt"
  done
} >"$out/figures.txt"
cat "$out/figures.txt"
