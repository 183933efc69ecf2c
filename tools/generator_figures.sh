#!/usr/bin/env bash
# Every figure docs/validation.md compares shapes generators by, for one generator:
#   - eval generator at psi 0.7 and 1 (agreement, diversity, colour diversity, Frechet distance of
#     the classifier features, part areas per class with the shipped segmenter);
#   - the default study with this generator (2000 pairs per class at PSI): pairs, fit, then
#     reconstructions of 600 rendered images (mean cos(r, r'), share keeping their class);
#   - sweep and probe with tuning seed 136, then again with 137 (the chain, the labels against chance).
# Usage: tools/generator_figures.sh <linkstyle binary> <generator.pt> <output folder> [psi (0.7)]
# (LINKSTYLE_THREADS sets the threads, as for every command.)
# Writes the commands' JSON summaries, probe-<seed>.txt, ground_truth-<seed>.json and, last,
# <output>/figures.txt: the figures in one place.
set -euo pipefail
linkstyle=$1
generator=$2
out=$3
psi=${4:-0.7}
models=$(cd "$(dirname "$0")/../models/shapes" && pwd)
mkdir -p "$out"
run() {  # run NAME COMMAND...: the command's JSON summary to NAME.json
  local name=$1
  shift
  "$linkstyle" --json "$@" >"$out/$name.json"
}

for p in 0.7 1; do
  run "eval-psi-$p" eval generator --world shapes "$generator" --classifier "$models/classifier.pt" \
    --segmenter "$models/segmenter.pt" --psi "$p"
done

study="$out/study"
rm -rf "$study"
"$linkstyle" init "$study" --classifier "$models/classifier.pt" --generator "$generator" \
  --segmenter "$models/segmenter.pt" --samples-per-class 2000 --psi "$psi" >/dev/null
"$linkstyle" pairs --study "$study" >/dev/null
run fit fit --study "$study"
"$linkstyle" render --world shapes --count 600 --seed 2024 -o "$out/rendered" >/dev/null
run reconstruct reconstruct --study "$study" "$out"/rendered/*.png

for seed in 136 137; do
  sed -i "/^\[sweep\]/,/^\[/ s/^seed = [0-9]*/seed = $seed/" "$study/study.toml"
  rm -rf "$study/sweeps"
  "$linkstyle" sweep --study "$study" >/dev/null
  "$linkstyle" probe --study "$study" >"$out/probe-$seed.txt"
  cp "$study/sweeps/ground_truth.json" "$out/ground_truth-$seed.json"
done
/usr/bin/python3 - "$out" <<'PY' | tee "$out/figures.txt"
import json, sys, os
out = sys.argv[1]
load = lambda name: json.load(open(os.path.join(out, name)))
for psi in ("0.7", "1"):
    e = load(f"eval-psi-{psi}.json")
    print(f"psi {psi}: agreement {100*e['agreement']:.2f}%, diversity {100*e['diversity_ratio']:.1f}%, "
          f"colour diversity {100*e['colour_diversity_ratio']:.1f}%, Frechet distance {e['frechet_distance']:.3f}, "
          f"part-area error (worst class) {100*e['part_area_error']:.1f}% "
          f"(per class {', '.join(f'{100*x:.1f}' for x in e['part_area_error_per_class'])})")
f = load("fit.json")
r = load("reconstruct.json")
print(f"fit: {json.dumps({k: v for k, v in f.items() if not isinstance(v, (list, dict))})}")
n = len(r["images"])
print(f"reconstruction of {n} rendered images: mean cos(r, r') {r['mean_feature_cosine']:.3f}, "
      f"same class {round(r['same_class_rate'] * n)}/{n} ({100*r['same_class_rate']:.1f}%)")
for seed in ("136", "137"):
    g = load(f"ground_truth-{seed}.json")
    chain = g["chain"]
    link = sum(c["generator"]["correlation"] for c in chain) / len(chain)
    e2e = sum(c["end_to_end"]["p_bonferroni"] < 0.05 for c in chain)
    fa = g["factor_agreement"]
    print(f"seed {seed}: generator link mean {link:.2f}; end to end significant {e2e} of {len(chain)}; "
          f"labels {g['agreeing']}/{g['units']} vs chance {100*g['chance']:.1f}% (p {g['p_value']:.4f}); "
          f"factor labels {fa['agreeing']}/{fa['units']} vs chance {100*fa['chance']:.1f}% (p {fa['p_value']:.4f})")
    print("  " + "; ".join(f"{c['factor']} g {c['generator']['correlation']:+.2f} e {c['end_to_end']['correlation']:+.2f}"
                           for c in chain))
PY
