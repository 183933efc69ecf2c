#!/usr/bin/env bash
# The counterfactual figures of docs/validation.md: every ordered pair of the shapes world's six
# classes on a shapes study (the demo's, with its sweep and probe) with the paper's method, six of
# them with adam and sparse, and four pairs of a fashion study with each method; then
# tools/counterfactual_table.py makes the table and the picture.
# Usage: tools/counterfactual_figures.sh <linkstyle> <shapes study> <fashion study> <out> [samples]
set -euo pipefail
linkstyle=$1 shapes=$2 fashion=$3 out=$4 samples=${5:-16}
mkdir -p "$out"
classes=(mushroom car bird house tree flower)
run_world() {  # world study method pairs...
  local world=$1 study=$2 method=$3
  shift 3
  local start=$SECONDS count=0
  while [ $# -gt 0 ]; do
    "$linkstyle" --threads 2 counterfactual --study "$study" --from "$1" --to "$2" --method "$method" \
      --samples "$samples" --fresh | tee -a "$out/log.txt"
    count=$((count + samples))
    shift 2
  done
  echo "$(( (SECONDS - start) * 100 / count ))" | awk '{printf "%.2f\n", $1 / 100}' >"$out/$world-$method.seconds"
}
shape_pairs=()
for a in "${classes[@]}"; do for b in "${classes[@]}"; do [ "$a" != "$b" ] && shape_pairs+=("$a" "$b"); done; done
fashion_pairs=(Shirt T-shirt/top Sneaker "Ankle boot" Pullover Coat Trouser Dress)
some_shape_pairs=(mushroom tree car house bird flower house car tree mushroom flower bird)
for method in paper adam sparse; do
  if [ "$method" = paper ]; then
    run_world shapes "$shapes" "$method" "${shape_pairs[@]}"
  else
    run_world shapes "$shapes" "$method" "${some_shape_pairs[@]}"
  fi
  run_world fashion "$fashion" "$method" "${fashion_pairs[@]}"
done
/usr/bin/python3 "$(dirname "$0")/counterfactual_table.py" "$shapes" "$fashion" "$out"
