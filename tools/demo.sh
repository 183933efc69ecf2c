#!/usr/bin/env bash
# The demo: a study on small built-in models, run through every stage that exists:
# pairs -> fit -> reconstruct. Usage: tools/demo.sh <linkstyle binary> <study folder>
set -euo pipefail
linkstyle=$1
study=$2
SECONDS=0

"$linkstyle" init "$study" --tiny --samples-per-class 3000 --shard-size 2048 --force
"$linkstyle" info --study "$study"
"$linkstyle" pairs --study "$study"
"$linkstyle" fit --study "$study"
"$linkstyle" sample --study "$study" --per-class 2 --seed 1000
"$linkstyle" reconstruct --study "$study" "$study"/samples/*.png

cat <<TXT

demo finished in ${SECONDS} s. Outputs:
  $study/study.toml                     the study's settings
  $study/pairs/                         paired data: w-*.npy, r-*.npy shards + manifest.json
  $study/linking/linking.safetensors    the linking network (A, b) with metadata
  $study/linking/fit.json               held-out R^2 (overall and per w dimension), MSE, cosine
  $study/reconstructions/*.png|json     image | G(L(r(image))), with the classifier's verdicts
TXT
