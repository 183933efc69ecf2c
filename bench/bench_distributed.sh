#!/usr/bin/env bash
# The cost of running a stage as a job of many processes (docs/distributed.md): on this machine,
# 2 processes x 1 thread (torchrun) against 1 process x 2 threads and 1 process x 1 thread, for
# pairs, sweep and counterfactual on the shipped shapes models; and what rank 0 receives per
# image, the input of the scaling model in bench/RESULTS.md ("Many processes").
# Usage: bench/bench_distributed.sh <linkstyle binary> [work folder] [repeats]
set -euo pipefail
linkstyle=$(realpath "$1")
work=${2:-/tmp/linkstyle-bench-distributed}
repeats=${3:-3}
models=$(cd "$(dirname "$0")/../models/shapes" && pwd)
python=/usr/bin/python3
rm -rf "$work"
mkdir -p "$work"

"$linkstyle" init "$work/new" --classifier "$models/classifier.pt" --generator "$models/faithful_generator.pt" \
  --segmenter "$models/segmenter.pt" --samples-per-class 500 --psi 1 --sweep-samples-per-class 2 --force >/dev/null
cp -r "$work/new" "$work/fitted"
"$linkstyle" --threads 2 pairs --study "$work/fitted" >/dev/null
"$linkstyle" --threads 2 fit --study "$work/fitted" >/dev/null

declare -A arguments=(
  [pairs]="pairs"
  [sweep]="sweep --units $(seq -s, 0 47)"
  [counterfactual]="counterfactual --from mushroom --to tree --samples 32 --batch-size 4 --max-steps 400")
declare -A base=([pairs]=new [sweep]=fitted [counterfactual]=fitted)

# run <label> <stage>: the best wall time of `repeats` runs, and the last run's JSON summary.
run() {
  local label=$1 stage=$2 best="" json
  for _ in $(seq "$repeats"); do
    rm -rf "$work/run"
    cp -r "$work/${base[$stage]}" "$work/run"
    local start end
    start=$(date +%s.%N)
    case $label in
    1x1) LINKSTYLE_THREADS=1 "$linkstyle" --json ${arguments[$stage]} --study "$work/run" >"$work/out.json" ;;
    1x2) LINKSTYLE_THREADS=2 "$linkstyle" --json ${arguments[$stage]} --study "$work/run" >"$work/out.json" ;;
    2x1)
      LINKSTYLE_THREADS=1 /usr/bin/torchrun --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 \
        --master_port 29870 --redirects 1 --tee 1 --log_dir "$work/logs" --monitor_interval 0.5 --no_python \
        "$linkstyle" --json ${arguments[$stage]} --study "$work/run" 2>/dev/null |
        sed -n 's/^\[default0\]://p' >"$work/out.json"
      ;;
    esac
    end=$(date +%s.%N)
    local took
    took=$($python -c "print(f'{$end - $start:.2f}')")
    if [[ -z "$best" ]] || $python -c "import sys; sys.exit(0 if $took < $best else 1)"; then best=$took; fi
  done
  json=$(cat "$work/out.json")
  $python - "$stage" "$label" "$best" "$json" <<'PY'
import json, sys
stage, label, wall, text = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
summary = json.loads(text)
images = {"pairs": summary.get("drawn"), "sweep": summary.get("images"),
          "counterfactual": summary.get("samples")}[stage]
unit = "sample" if stage == "counterfactual" else "image"
job = summary.get("job")
received = ""
inside = summary.get("seconds")
if job:
    # The workers' share of the items: (P - 1) / P of them.
    share = images * (job["ranks"] - 1) / job["ranks"]
    received = (f"{job['bytes_received'] / 1024:.0f} KiB, {job['bytes_received'] / share:,.0f} B per {unit}; "
                f"rank 0 waited {job['seconds_waiting']:.1f} s, recorded {job['seconds_recording']:.2f} s")
print(f"| {stage} | {label} | {wall:.2f} s | {inside:.2f} s | {images} {unit}s | {received} |")
PY
}

echo "| stage | processes x threads | wall (best of $repeats) | inside the stage | work | received by rank 0 |"
echo "|---|---|---|---|---|---|"
for stage in pairs sweep counterfactual; do
  for label in 1x1 1x2 2x1; do
    run "$label" "$stage"
  done
done
