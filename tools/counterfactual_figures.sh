#!/usr/bin/env bash
# The counterfactual figures of docs/validation.md: every ordered pair of the shapes world's six
# classes on a shapes study (the demo's, with its sweep and probe) with the paper's method, six of
# them with adam and sparse, all of them again from a zero start, and four pairs of a fashion
# study with each; then
# tools/counterfactual_table.py makes the table and the picture.
# Usage: tools/counterfactual_figures.sh <linkstyle> <shapes study> <fashion study> <out> [samples]
set -euo pipefail
linkstyle=$1 shapes=$2 fashion=$3 out=$4 samples=${5:-16}
mkdir -p "$out"
classes=(mushroom car bird house tree flower)
run_world() {  # world study method start pairs...
  local world=$1 study=$2 method=$3 start=$4
  shift 4
  while [ $# -gt 0 ]; do
    "$linkstyle" --threads 2 counterfactual --study "$study" --from "$1" --to "$2" --method "$method" \
      --start "$start" --samples "$samples" --fresh | tee -a "$out/log.txt"
    shift 2
  done
}
shape_pairs=()
for a in "${classes[@]}"; do for b in "${classes[@]}"; do [ "$a" != "$b" ] && shape_pairs+=("$a" "$b"); done; done
fashion_pairs=(Shirt T-shirt/top Sneaker "Ankle boot" Pullover Coat Trouser Dress)
some_shape_pairs=(mushroom tree car house bird flower house car tree mushroom flower bird)
for method in paper adam sparse; do
  if [ "$method" = paper ]; then
    run_world shapes "$shapes" "$method" uniform "${shape_pairs[@]}"
  else
    run_world shapes "$shapes" "$method" uniform "${some_shape_pairs[@]}"
  fi
  run_world fashion "$fashion" "$method" uniform "${fashion_pairs[@]}"
done
# The paper's method from s = 0 instead of its random start.
run_world shapes "$shapes" paper zero "${shape_pairs[@]}"
run_world fashion "$fashion" paper zero "${fashion_pairs[@]}"
/usr/bin/python3 "$(dirname "$0")/counterfactual_table.py" "$shapes" "$fashion" "$out"
