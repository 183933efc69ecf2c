#!/usr/bin/env bash
# Many-process jobs on loopback (docs/distributed.md): pairs, sweep and counterfactuals under
# torchrun with 2 and 3 processes give the files and rows of one process; a rank killed with
# SIGKILL stops the others with an error naming it, and a rerun with another process count
# completes the study.
# Usage: jobs.sh <linkstyle binary> <work folder> study|pairs|sweep|counterfactual|killed-rank
# `study` makes the shared study and the one-process references the other cases compare with.
set -euo pipefail
linkstyle=$1
work=$2
case_name=$3
here=$(cd "$(dirname "$0")" && pwd)
models=$(cd "$here/../../models/shapes" && pwd)
export LINKSTYLE_THREADS=1 LINKSTYLE_TIMEOUT=${LINKSTYLE_TIMEOUT:-60}
units=$(seq -s, 0 17)
python=/usr/bin/python3
# Two studies output by output: every table and view row for row, every file (timings aside).
compare="$python $here/../../tools/compare_studies.py"

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# torchrun with n processes on this machine, as docs/distributed.md shows (the underscore flags
# are understood by every torchrun; Debian 12's torchrun needs --redirects and --tee).
run_job() {
  local n=$1 port=$2
  shift 2
  /usr/bin/torchrun --nnodes 1 --nproc_per_node "$n" --master_addr 127.0.0.1 --master_port "$port" \
    --redirects 1 --tee 1 --log_dir "$work/torchrun-logs" --no_python "$linkstyle" "$@"
}

fresh_copy() {  # fresh_copy <from> <to>
  rm -rf "$2"
  cp -r "$1" "$2"
}

case "$case_name" in
study)
  rm -rf "$work"
  mkdir -p "$work"
  "$linkstyle" init "$work/new" --classifier "$models/classifier.pt" --generator "$models/faithful_generator.pt" \
    --segmenter "$models/segmenter.pt" --samples-per-class 40 --psi 1 --sweep-samples-per-class 1 --force >/dev/null
  # Small shards, chunks and batches, so that every process has several of each.
  sed -i -e 's/^shard_size = .*/shard_size = 50/' -e 's/^units_per_chunk = .*/units_per_chunk = 2/' \
    "$work/new/study.toml"
  sed -i '/^\[counterfactual\]/,/^\[/ s/^batch_size = .*/batch_size = 2/' "$work/new/study.toml"
  grep -q '^shard_size = 50' "$work/new/study.toml" || fail "study.toml has no pairs.shard_size to set"
  grep -q '^units_per_chunk = 2' "$work/new/study.toml" || fail "study.toml has no sweep.units_per_chunk to set"
  fresh_copy "$work/new" "$work/fitted"
  "$linkstyle" pairs --study "$work/fitted" >/dev/null
  "$linkstyle" fit --study "$work/fitted" >/dev/null
  fresh_copy "$work/fitted" "$work/one-sweep"
  "$linkstyle" sweep --study "$work/one-sweep" --units "$units" >/dev/null
  fresh_copy "$work/fitted" "$work/one-counterfactual"
  "$linkstyle" counterfactual --study "$work/one-counterfactual" --from mushroom --to tree --samples 6 \
    --max-steps 40 >/dev/null
  ;;

pairs)
  for n in 2 3; do
    fresh_copy "$work/new" "$work/pairs-$n"
    run_job "$n" $((29710 + n)) pairs --study "$work/pairs-$n" >/dev/null
    diff -r "$work/fitted/pairs" "$work/pairs-$n/pairs" || fail "pairs of $n processes differ from one process's"
    shards=$(ls "$work/pairs-$n/pairs" | grep -c '^r-.*\.npy$')
    [[ $shards -ge 3 ]] || fail "only $shards shards: the test needs several"
    echo "pairs, $n processes: the same $(ls "$work/pairs-$n/pairs" | wc -l) files as one process ($shards shards)"
  done
  ;;

sweep)
  for n in 2 3; do
    fresh_copy "$work/fitted" "$work/sweep-$n"
    run_job "$n" $((29720 + n)) sweep --study "$work/sweep-$n" --units "$units" >/dev/null
    $compare "$work/one-sweep" "$work/sweep-$n" || fail "the study swept by $n processes differs from one process's"
    echo "sweep, $n processes: every row and file of one process"
  done
  ;;

counterfactual)
  for n in 2 3; do
    fresh_copy "$work/fitted" "$work/counterfactual-$n"
    run_job "$n" $((29730 + n)) counterfactual --study "$work/counterfactual-$n" --from mushroom --to tree \
      --samples 6 --max-steps 40 >/dev/null
    $compare "$work/one-counterfactual" "$work/counterfactual-$n" ||
      fail "the counterfactuals of $n processes differ from one process's"
    echo "counterfactual, $n processes: every row and file of one process"
  done
  ;;

killed-rank)
  # Three ranks as srun starts them (SLURM_* variables, the first host of the node list); rank 1
  # is killed with SIGKILL once a chunk is committed.
  study=$work/killed
  fresh_copy "$work/fitted" "$study"
  export LINKSTYLE_TIMEOUT=30
  pids=()
  for rank in 0 1 2; do
    SLURM_PROCID=$rank SLURM_NTASKS=3 SLURM_LOCALID=$rank SLURM_TASKS_PER_NODE=3 SLURM_JOB_NODELIST=localhost \
      MASTER_PORT=29741 "$linkstyle" sweep --study "$study" --units "$units" >"$work/killed-$rank.out" \
      2>"$work/killed-$rank.err" &
    pids+=($!)
  done
  committed() {
    $python -c "import sqlite3,sys; db=sqlite3.connect('file:$study/sweeps/results.sqlite?mode=ro', uri=True);
print(db.execute('SELECT count(*) FROM units').fetchone()[0])" 2>/dev/null || echo 0
  }
  for _ in $(seq 600); do
    [[ $(committed) -gt 0 ]] && break
    kill -0 "${pids[1]}" 2>/dev/null || break
    sleep 0.2
  done
  [[ $(committed) -gt 0 ]] || fail "no chunk was committed before rank 1 ended"
  kill -9 "${pids[1]}"
  wait "${pids[1]}" 2>/dev/null || true
  killed_at=$(date +%s)
  for rank in 0 2; do
    status=0
    wait "${pids[$rank]}" || status=$?
    [[ $status -ne 0 ]] || fail "rank $rank exited 0 after rank 1 was killed"
  done
  seconds=$(($(date +%s) - killed_at))
  [[ $seconds -le $LINKSTYLE_TIMEOUT ]] || fail "the other ranks took $seconds s to stop (timeout $LINKSTYLE_TIMEOUT s)"
  grep -q "error: rank 1 of 3: is gone" "$work/killed-0.err" || fail "rank 0 does not name rank 1: $(cat "$work/killed-0.err")"
  grep -q "error: rank 2 of 3: stopped" "$work/killed-2.err" || fail "rank 2 does not say why it stopped: $(cat "$work/killed-2.err")"
  echo "rank 1 killed: ranks 0 and 2 stopped within $seconds s:"
  grep -h "^error" "$work/killed-0.err" "$work/killed-2.err"
  done_before=$(committed)
  # The rerun, with two processes, completes what the three began: nothing missing or doubled.
  run_job 2 29742 sweep --study "$study" --units "$units" >/dev/null
  # (its summary counts the units it resumed)
  $compare --ignore sweeps/summary.json "$work/one-sweep" "$study" || fail "the resumed sweep differs from one process's"
  echo "resumed with 2 processes from $done_before committed units: the rows of one process"
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
