#!/usr/bin/env bash
# The browser tests' study: the shipped shapes models through every stage, small, plus an image
# whose file name is markup (the report must show it as text). Then `linkstyle report`.
# Usage: make_study.sh <linkstyle binary> <study folder>
set -euo pipefail
linkstyle=$1
study=$2
models=$(cd "$(dirname "$0")/../../models/shapes" && pwd)
rm -rf "$study"
"$linkstyle" init "$study" --classifier "$models/classifier.pt" --generator "$models/faithful_generator.pt" \
  --segmenter "$models/segmenter.pt" --samples-per-class 150 --psi 1 --sweep-samples-per-class 1 --force >/dev/null
"$linkstyle" pairs --study "$study" >/dev/null
"$linkstyle" fit --study "$study" >/dev/null
"$linkstyle" render --world shapes --count 2 --seed 2024 -o "$study/real" >/dev/null
cp "$study/real/shapes-0-mushroom.png" "$study/real/<img src=x onerror=window.__xss=1>.png"
"$linkstyle" reconstruct --study "$study" "$study"/real/*.png >/dev/null
"$linkstyle" sweep --study "$study" --units $(seq 0 23) >/dev/null
"$linkstyle" probe --study "$study" --images 300 >/dev/null
"$linkstyle" counterfactual --study "$study" --from mushroom --to tree --samples 2 --max-steps 100 >/dev/null
"$linkstyle" report --study "$study"
