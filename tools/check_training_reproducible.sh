#!/usr/bin/env bash
# Checks that two linkstyle binaries train the same bytes: short runs of the classifier, segmenter
# and generator trainers (straight, resumed with another length, and killed then resumed), then a
# comparison of every file they wrote (tools/compare_training_files.py): models and previews byte
# for byte; logs, checkpoints and model cards all but the time they record (the seconds column,
# the "seconds" entry, training_seconds and the card's git_revision) and the memory addresses
# that key Adam's state in a checkpoint. Exits 1 on any other difference.
# Usage: tools/check_training_reproducible.sh <old linkstyle> <new linkstyle> <scratch folder>
set -euo pipefail
old=$(realpath "$1")
new=$(realpath "$2")
scratch=$3
compare=$(cd "$(dirname "$0")" && pwd)/compare_training_files.py
rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(realpath "$scratch")

# Every run is started as ./linkstyle with relative paths, so that the model cards' command lines
# match between the binaries.
classifier=(classifier --world shapes --seed 3 --batch-size 8 --test-images 12 --checkpoint-every 4)
segmenter=(segmenter --seed 3 --batch-size 4 --width 8 --test-images 12 --checkpoint-every 4)
generator=(generator --world shapes --classifier classifier.pt --seed 5 --batch-size 4 --checkpoint-every 4
  --eval-samples 2)
train() { ./linkstyle --threads 1 train "$@" > /dev/null; }

# Starts a run, kills it (kill -9) once its log has passed a checkpoint, then resumes it.
interrupted() {
  local output=$1
  shift
  ./linkstyle --threads 1 train "$@" -o "$output" > /dev/null &
  local pid=$!
  until [ "$(cat "$output.log.csv" 2> /dev/null | wc -l)" -ge 7 ]; do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  if [ -e "$output" ]; then
    echo "the run of $output ended before it could be interrupted" >&2
    exit 2
  fi
  echo "  interrupted $output after $(($(wc -l < "$output.log.csv") - 1)) logged steps"
  train "$@" -o "$output"
}

runs() {
  mkdir -p "$scratch/$1"
  cd "$scratch/$1"
  ln -sf "$2" linkstyle
  echo "$1: $2"
  train "${classifier[@]}" -o classifier.pt --steps 12
  train "${classifier[@]}" -o classifier-resumed.pt --steps 6
  train "${classifier[@]}" -o classifier-resumed.pt --steps 10
  train "${classifier[@]}" -o classifier-straight.pt --steps 40
  interrupted classifier-killed.pt "${classifier[@]}" --steps 40
  train "${segmenter[@]}" -o segmenter.pt --steps 12
  train "${segmenter[@]}" -o segmenter-resumed.pt --steps 6
  train "${segmenter[@]}" -o segmenter-resumed.pt --steps 10
  train "${segmenter[@]}" -o segmenter-straight.pt --steps 40
  interrupted segmenter-killed.pt "${segmenter[@]}" --steps 40
  train "${generator[@]}" -o generator.pt --steps 17
  local options=(--minibatch-std 2 --pixel-head --augment translation)
  train "${generator[@]}" "${options[@]}" -o generator-resumed.pt --steps 6
  train "${generator[@]}" "${options[@]}" -o generator-resumed.pt --steps 9
  interrupted generator-killed.pt "${generator[@]}" --steps 17
}

runs old "$old"
runs new "$new"

status=0
echo "old against new:"
python3 "$compare" "$scratch/old" "$scratch/new" || status=1
echo "killed and resumed against straight, each binary:"
for side in old new; do
  for model in classifier segmenter generator; do
    straight=$model-straight.pt
    [ "$model" = generator ] && straight=generator.pt
    python3 "$compare" --pair "$scratch/$side/$model-killed.pt" "$scratch/$side/$straight" || status=1
  done
done
[ "$status" = 0 ] && echo "reproducible: the same bytes" || echo "DIFFERENT bytes (see above)"
exit "$status"
