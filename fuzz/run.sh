#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets into BUILD_FUZZ (clang++, see fuzz/CMakeLists.txt), runs each
# for FUZZ_SECONDS on its corpus tests/fuzz_corpus/<name> plus fresh seeds, then merges (-merge=1)
# the inputs that add coverage into the corpus. Crash, timeout and out-of-memory inputs go to
# BUILD_FUZZ/findings/<name>/; the script fails when any target found one.
#
#   FUZZ_SECONDS   seconds per target (60)
#   FUZZ_TARGETS   which targets ("npy safetensors study idx pairs")
#   FUZZ_FLAGS     extra libFuzzer flags, e.g. "-fork=2 -ignore_crashes=1" to go on after a crash
#   FUZZ_MINIMISE  if set, minimise the whole corpus instead (smaller, but renews many files)
#   BUILD_FUZZ     build folder (build-fuzz); JOBS: build jobs (2)
#   LINKSTYLE_BUILD the project's build folder, whose library the targets link (build)
#   FUZZ_REPLAY    if set, only build the targets and run each once over its corpus and fresh
#                  seeds (-runs=0), merging nothing: the Fuzz.Replay test of `make test`
#
# tests/fuzz_corpus/<name>/regressions/ holds inputs that once crashed: they are run every time
# and never removed by the minimisation.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-npy safetensors study idx pairs}
FUZZ_FLAGS=${FUZZ_FLAGS:-}
FUZZ_MINIMISE=${FUZZ_MINIMISE:-}
FUZZ_REPLAY=${FUZZ_REPLAY:-}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
LINKSTYLE_BUILD=$(realpath "${LINKSTYLE_BUILD:-build}")
JOBS=${JOBS:-2}

if [[ ! -f "$BUILD_FUZZ/build.ninja" ]]; then
  cmake -S fuzz -B "$BUILD_FUZZ" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE= \
    -DLINKSTYLE_BUILD="$LINKSTYLE_BUILD"
fi
ninja -C "$BUILD_FUZZ" -j"$JOBS"

rm -rf "$BUILD_FUZZ/seeds" "$BUILD_FUZZ/new" "$BUILD_FUZZ/merged"
# The targets write each input to a file in here (RAM when /dev/shm is there).
LINKSTYLE_FUZZ_SCRATCH=$(mktemp -d "$([[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/linkstyle-fuzz.XXXXXX")
export LINKSTYLE_FUZZ_SCRATCH
trap 'rm -rf "$LINKSTYLE_FUZZ_SCRATCH"' EXIT
"$BUILD_FUZZ/make_seeds" "$BUILD_FUZZ/seeds"
mkdir -p "$BUILD_FUZZ/logs"

failed=()
for name in $FUZZ_TARGETS; do
  fuzzer="$BUILD_FUZZ/${name}_fuzzer"
  corpus="tests/fuzz_corpus/$name"
  new="$BUILD_FUZZ/new/$name"
  merged="$BUILD_FUZZ/merged/$name"
  findings="$BUILD_FUZZ/findings/$name"
  log="$BUILD_FUZZ/logs/$name.log"
  rm -rf "$findings"
  mkdir -p "$corpus" "$new" "$merged" "$findings"

  status=0
  if [[ -n "$FUZZ_REPLAY" ]]; then
    echo "fuzz: $name replays its corpus and seeds (log: $log)"
    "$fuzzer" -runs=0 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
      -artifact_prefix="$findings/" "$corpus" "$BUILD_FUZZ/seeds/$name" >"$log" 2>&1 || status=$?
  else
    echo "fuzz: $name for ${FUZZ_SECONDS}s (log: $log)"
    # New inputs go to the first folder; the corpus folders are read recursively.
    # shellcheck disable=SC2086
    "$fuzzer" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
      -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$findings/" $FUZZ_FLAGS \
      "$new" "$corpus" "$BUILD_FUZZ/seeds/$name" >"$log" 2>&1 || status=$?
  fi
  if [[ $status -ne 0 || -n "$(ls -A "$findings")" ]]; then
    failed+=("$name")
    echo "fuzz: $name FOUND A PROBLEM: $(ls "$findings" | tr '\n' ' ')" >&2
    grep -E '^(==[0-9]+==ERROR|==FINDING==|SUMMARY)' "$log" | sort -u | head -5 >&2 || true
  fi
  # Executions and speed (-fork prints no final stats: then the last status line).
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|^#[0-9]+: cov' "$log" | tail -2 |
    sed "s/^/fuzz: $name /" || true

  if [[ -n "$FUZZ_REPLAY" ]]; then
    continue
  elif [[ -n "$FUZZ_MINIMISE" ]]; then
    # Minimise the whole corpus (old, seeds and new inputs) and write it back; regressions/ stays.
    "$fuzzer" -merge=1 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
      "$merged" "$corpus" "$BUILD_FUZZ/seeds/$name" "$new" >"$BUILD_FUZZ/logs/$name-merge.log" 2>&1
    find "$corpus" -maxdepth 1 -type f -delete
    for input in "$merged"/*; do
      [[ -e "$input" ]] || continue
      [[ -e "$corpus/regressions/crash-$(basename "$input")" ]] || cp "$input" "$corpus/"
    done
  else
    # Add the seeds and new inputs that reach something the corpus does not.
    "$fuzzer" -merge=1 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
      "$corpus" "$BUILD_FUZZ/seeds/$name" "$new" >"$BUILD_FUZZ/logs/$name-merge.log" 2>&1
  fi
  echo "fuzz: $name corpus: $(find "$corpus" -type f | wc -l) files, $(cat "$corpus"/* "$corpus"/*/* 2>/dev/null | wc -c) bytes"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: findings in: ${failed[*]} (inputs in $BUILD_FUZZ/findings/, logs in $BUILD_FUZZ/logs/)" >&2
  exit 1
fi
