#!/usr/bin/env bash
# The demo: a study of the shipped shapes-world models (models/shapes), run through every stage:
# pairs -> fit -> reconstruct -> sweep (every unit) -> probe -> export -> report.
# Usage: tools/demo.sh <linkstyle binary> <study folder> [faithful (default) | gan]
# faithful: models/shapes/faithful_generator.pt, trained against the renderer; gan:
# models/shapes/generator.pt, trained adversarially (models/README.md compares them).
set -euo pipefail
linkstyle=$1
study=$2
models=$(cd "$(dirname "$0")/../models/shapes" && pwd)
case "${3:-faithful}" in
  faithful) generator=$models/faithful_generator.pt psi=1 ;;  # it samples the world's own factors at psi 1
  gan) generator=$models/generator.pt psi=0.7 ;;
  *)
    echo "error: GENERATOR: expected faithful or gan, got '$3'" >&2
    exit 2
    ;;
esac
SECONDS=0

"$linkstyle" init "$study" --classifier "$models/classifier.pt" --generator "$generator" \
  --segmenter "$models/segmenter.pt" --judge "$models/judge.pt" --samples-per-class 2000 --psi "$psi" --sweep-samples-per-class 2 --force
# A rerun starts afresh (the shipped models may have changed since the last run).
rm -rf "$study"/{pairs,linking,real,samples,reconstructions,sweeps,counterfactuals,report}
"$linkstyle" info --study "$study"
"$linkstyle" pairs --study "$study"
"$linkstyle" fit --study "$study"
"$linkstyle" render --world shapes --count 6 --seed 2024 -o "$study/real"
"$linkstyle" sample --study "$study" --per-class 1 --seed 1000
"$linkstyle" reconstruct --study "$study" "$study"/real/*.png
"$linkstyle" sweep --study "$study"
"$linkstyle" probe --study "$study" --images 3000
"$linkstyle" export --study "$study" units selectivity concept_top_units
"$linkstyle" report --study "$study"

cat <<TXT

demo finished in ${SECONDS} s. Outputs:
  $study/study.toml                     the study's settings (shipped shapes classifier and generator:
                                        $generator)
  $study/pairs/                         paired data: w-*.npy, r-*.npy shards + manifest.json
  $study/linking/linking.safetensors    the linking network (A, b) with metadata
  $study/linking/fit.json               held-out R^2 (overall and per w dimension), MSE, cosine
  $study/real/*.png                     rendered shapes-world images (labels and factors in images.json)
  $study/samples/*.png                  generator samples, one per class
  $study/reconstructions/*.png|json     image | G(L(r(image))), with the classifier's verdicts
  $study/sweeps/results.sqlite          sweeps of every unit: cycle, part measures, selectivity (docs/sweeps.md)
  $study/sweeps/strips/*.png            the top units' sweeps, step by step
  $study/sweeps/ground_truth.json       sweep labels against the shapes world's known factors
  $study/sweeps/csv/*.csv               units, selectivity and top units per concept as CSV
  $study/report/index.html              the HTML report: open it in a browser (no network needed)

Explore it live: $linkstyle serve --study $study   (then open http://127.0.0.1:8750/)
TXT
