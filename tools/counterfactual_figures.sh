#!/usr/bin/env bash
# The counterfactual figures of docs/validation.md: every ordered pair of the shapes world's six
# classes on a shapes study (the demo's, with its sweep and probe) with the paper's method, from a
# zero start and with the realistic method (and, with methods "paper realistic adam sparse", six of
# them with adam and sparse), and four pairs of a fashion study with each; the shapes runs are
# judged by models/shapes/judge.pt. Then
# tools/counterfactual_table.py makes the per-pair tables and the picture, and
# tools/counterfactual_comparison.py the side-by-side comparison against real images.
# Usage: tools/counterfactual_figures.sh <linkstyle> <shapes study> <fashion study> <out> [samples] [shapes judge]
#        [max steps] [methods]
set -euo pipefail
mkdir -p "$4"
linkstyle=$(realpath "$1") shapes=$(realpath "$2") fashion=$(realpath "$3") out=$(realpath "$4") samples=${5:-16}
here=$(cd "$(dirname "$0")" && pwd)
judge=$(realpath "${6:-$here/../models/shapes/judge.pt}")
max_steps=${7:-2000} methods=${8:-paper realistic adam sparse}
mkdir -p "$out"
classes=(mushroom car bird house tree flower)
run_world() {  # study method start judge pairs...
  local study=$1 method=$2 start=$3 judge_file=$4
  shift 4
  local judge_flag=()
  [ "$judge_file" != - ] && judge_flag=(--judge "$judge_file")
  while [ $# -gt 0 ]; do
    "$linkstyle" --threads 2 counterfactual --study "$study" --from "$1" --to "$2" --method "$method" \
      --start "$start" --samples "$samples" --max-steps "$max_steps" "${judge_flag[@]}" --fresh | tee -a "$out/log.txt"
    shift 2
  done
}
shape_pairs=()
for a in "${classes[@]}"; do for b in "${classes[@]}"; do [ "$a" != "$b" ] && shape_pairs+=("$a" "$b"); done; done
fashion_pairs=(Shirt T-shirt/top Sneaker "Ankle boot" Pullover Coat Trouser Dress)
some_shape_pairs=(mushroom tree car house bird flower house car tree mushroom flower bird)
for method in $methods; do
  if [ "$method" = paper ] || [ "$method" = realistic ]; then
    run_world "$shapes" "$method" uniform "$judge" "${shape_pairs[@]}"
  else
    run_world "$shapes" "$method" uniform "$judge" "${some_shape_pairs[@]}"
  fi
  run_world "$fashion" "$method" uniform - "${fashion_pairs[@]}"
done
# The paper's method from s = 0 instead of its random start.
run_world "$shapes" paper zero "$judge" "${shape_pairs[@]}"
run_world "$fashion" paper zero - "${fashion_pairs[@]}"
# Real images of each class: what realism is measured against.
"$linkstyle" render --world shapes --count 3000 --resolution 32 -o "$out/real-shapes" > /dev/null
"$linkstyle" render --world fashion --count 10000 -o "$out/real-fashion" > /dev/null
/usr/bin/python3 "$here/counterfactual_table.py" "$shapes" "$fashion" "$out"
(cd "$here" && /usr/bin/python3 counterfactual_comparison.py shapes "$shapes" "$out/real-shapes" "$judge" "$out")
(cd "$here" && /usr/bin/python3 counterfactual_comparison.py fashion "$fashion" "$out/real-fashion" - "$out")
